//! Streamable HTTP: rmcp's client, given our headers and our choice of connection reuse.
//!
//! rmcp's default HTTP client opens a new TCP connection for every POST, because a pooled
//! connection can stall about 40 ms when the previous response was an SSE body that was not
//! fully drained. Keep-alive saves a TCP handshake per call; [`HttpConnections`] (the
//! server's `http_connections` key) makes that a per-upstream choice. BENCHMARKS.md has the
//! figures behind the default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::config::HttpConnections;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

/// Headers that rmcp manages itself and a user must not set.
const RESERVED: &[&str] = &["accept", "mcp-session-id", "last-event-id", "content-type"];

/// A header name that the transport sets itself, if `headers` contains one.
pub fn reserved_header(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .map(|(name, _)| name.as_str())
        .find(|name| RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)))
}

/// Idle keep-alive connections kept per host. Unbounded (reqwest's default), closing 10,000
/// sessions at once left 10,000 idle sockets and their buffers (~37 KB each) for 90 s.
const IDLE_CONNECTIONS_PER_HOST: usize = 256;

/// Builds one reqwest client for the policy. Clients are cheap to clone and share a pool,
/// so callers build one per policy and reuse it for every upstream.
pub fn client(policy: HttpConnections) -> reqwest::Client {
    let builder = reqwest::Client::builder().tcp_nodelay(true);
    let builder = match policy {
        HttpConnections::PerRequest => builder.pool_max_idle_per_host(0),
        HttpConnections::KeepAlive => builder.pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST),
    };
    builder
        .build()
        .expect("a reqwest client with default TLS settings always builds")
}

/// Why a header could not be used.
#[derive(Debug, thiserror::Error)]
#[error("header '{0}' is not a valid HTTP header")]
pub struct InvalidHeader(pub String);

/// Converts rendered headers into the typed form HTTP clients take.
pub fn header_map(
    headers: Vec<(String, String)>,
) -> Result<HashMap<HeaderName, HeaderValue>, InvalidHeader> {
    headers
        .into_iter()
        .map(|(name, value)| {
            let parsed_name =
                HeaderName::try_from(name.as_str()).map_err(|_| InvalidHeader(name.clone()))?;
            let parsed_value =
                HeaderValue::try_from(value).map_err(|_| InvalidHeader(name.clone()))?;
            Ok((parsed_name, parsed_value))
        })
        .collect()
}

/// A Streamable HTTP transport to `url` sending `headers` on every request.
pub fn transport(
    client: reqwest::Client,
    url: &str,
    headers: HashMap<HeaderName, HeaderValue>,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(headers)
        .reinit_on_expired_session(true);
    config.retry_config = Arc::new(stream_retry());
    StreamableHttpClientTransport::with_client(client, config)
}

/// How often a broken response stream is resumed before the call is given up as lost.
///
/// rmcp retries forever by default, so a call whose server died waited out its whole
/// deadline. Three tries over about 1.4 s ride out a blip and still fail a dead server fast.
fn stream_retry() -> ExponentialBackoff {
    let mut retry = ExponentialBackoff::default();
    retry.max_times = Some(3);
    retry.base_duration = Duration::from_millis(200);
    retry.max_delay = Some(Duration::from_secs(1));
    retry
}
