//! Streamable HTTP: rmcp's transport worker over our own HTTP client ([`HttpClient`]), with
//! our headers and our choice of connection reuse.
//!
//! rmcp's default HTTP client opens a new TCP connection for every POST, because a pooled
//! connection can stall about 40 ms when the previous response was an SSE body that was not
//! fully drained. Keep-alive saves a TCP handshake per call; [`HttpConnections`] (the
//! server's `http_connections` key) makes that a per-upstream choice. BENCHMARKS.md has the
//! figures behind the default. `client.rs` says what our client does instead of rmcp's
//! reqwest client, and why.

mod attach;
mod authorize;
mod client;
mod decode;
mod events;
mod ids;
mod origin;
mod requests;
mod response;
mod sessions;
mod shared;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};

use super::headers::{InvalidHeader, header_map};
use crate::config::HttpConnections;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

pub use attach::Attach;
pub use authorize::{Authorizer, Credential, Proof};
use client::{Backend, Hyper};
pub use client::{ClientError, HttpClient};
pub use origin::take_stream_request;
pub use sessions::{Registered, SessionHeaders};
pub use shared::{
    MemorySharedSessions, SharedSessions, SharedSessionsError, UpstreamKey, UpstreamRecord,
};

/// Headers that rmcp manages itself and a user must not set.
const RESERVED: &[&str] = &["accept", "mcp-session-id", "last-event-id", "content-type"];

/// A header name that the transport sets itself, if `headers` contains one.
pub fn reserved_header(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .map(|(name, _)| name.as_str())
        .find(|name| RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)))
}

/// Idle keep-alive connections kept per host. Unbounded (the clients' default), closing
/// 10,000 sessions at once left 10,000 idle sockets and their buffers (~37 KB each) for 90 s.
const IDLE_CONNECTIONS_PER_HOST: usize = 256;

/// How long an idle keep-alive connection is kept for reuse. Under the 5 s after which
/// Node.js servers (the TypeScript SDK's, so many MCP servers) close idle connections: a
/// connection reused just as the server closes it fails a request that may have been sent
/// (seen after a browser sign-in left the first connection idle). A busy upstream keeps its
/// connections; an idle one costs a new connection after 4 s.
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Redirects are followed only to the same scheme, host and port (at most 5): custom
/// headers (API keys, tokens from templates) must never travel to another host, which
/// reqwest would allow for every header but `Authorization` and cookies.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt.previous().last().is_some_and(|previous| {
            let next = attempt.url();
            previous.scheme() == next.scheme()
                && previous.host_str() == next.host_str()
                && previous.port_or_known_default() == next.port_or_known_default()
        });
        if same_origin && attempt.previous().len() <= 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// TLS cannot verify servers on this machine: it has no CA certificates (a minimal
/// container). Plain `http://` still works; `https://` fails with this error.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "cannot verify TLS certificates: {0}; install the system's CA certificates (Debian/Ubuntu: `apt-get install ca-certificates`) or set SSL_CERT_FILE to a PEM bundle"
)]
pub struct TlsUnavailable(Arc<str>);

/// One reqwest client for the policy, and why TLS is unavailable if it is. Without system
/// CA certificates the platform verifier cannot be built; the client is then built without
/// trusted roots, good for plain HTTP only.
fn reqwest_client(policy: HttpConnections) -> (reqwest::Client, Option<TlsUnavailable>) {
    let builder = || {
        let builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .redirect(same_origin_redirects());
        match policy {
            HttpConnections::PerRequest => builder.pool_max_idle_per_host(0),
            HttpConnections::KeepAlive => builder.pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST),
        }
    };
    let error = match builder().build() {
        Ok(client) => return (client, None),
        Err(error) => error,
    };
    let reason = crate::error::describe_chain(&error);
    tracing::warn!("HTTPS is unavailable: {reason}");
    let plain = builder()
        .tls_certs_only(std::iter::empty())
        .build()
        .unwrap_or_default();
    (plain, Some(TlsUnavailable(Arc::from(reason))))
}

/// The HTTP clients all upstreams share, one set per connection policy: a hyper client for
/// plain `http://` upstreams and a reqwest client (TLS, proxies) for the rest, built on first
/// use because loading the TLS roots is the most expensive part of starting up. Cheap to
/// clone; clones share the connection pools.
#[derive(Clone)]
pub struct Clients {
    keep_alive: Pools,
    per_request: Pools,
}

#[derive(Clone)]
struct Pools {
    policy: HttpConnections,
    hyper: Hyper,
    reqwest: Arc<OnceLock<(reqwest::Client, Option<TlsUnavailable>)>>,
}

impl Pools {
    fn new(policy: HttpConnections) -> Self {
        Pools {
            policy,
            hyper: client::hyper_client(
                policy == HttpConnections::KeepAlive,
                IDLE_CONNECTIONS_PER_HOST,
            ),
            reqwest: Arc::default(),
        }
    }

    fn reqwest(&self) -> &(reqwest::Client, Option<TlsUnavailable>) {
        self.reqwest.get_or_init(|| reqwest_client(self.policy))
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            keep_alive: Pools::new(HttpConnections::KeepAlive),
            per_request: Pools::new(HttpConnections::PerRequest),
        }
    }
}

impl Clients {
    fn pools(&self, policy: HttpConnections) -> &Pools {
        match policy {
            HttpConnections::KeepAlive => &self.keep_alive,
            HttpConnections::PerRequest => &self.per_request,
        }
    }

    /// The reqwest client for `policy` to reach `url` (the legacy SSE transport and the
    /// tooling registry use it); an `https` URL fails when TLS is unavailable.
    pub fn reqwest(
        &self,
        policy: HttpConnections,
        url: &str,
    ) -> Result<reqwest::Client, TlsUnavailable> {
        let (client, tls) = self.pools(policy).reqwest();
        match tls {
            Some(unavailable) if is_https(url) => Err(unavailable.clone()),
            _ => Ok(client.clone()),
        }
    }

    /// The reqwest client for `policy`, whether or not it can verify TLS.
    pub fn reqwest_any(&self, policy: HttpConnections) -> reqwest::Client {
        self.pools(policy).reqwest().0.clone()
    }

    /// A client for the Streamable HTTP upstream at `url`.
    pub fn for_url(
        &self,
        policy: HttpConnections,
        url: Arc<str>,
    ) -> Result<HttpClient, ClientSetupError> {
        // Parsed the way reqwest does (`url` normalizes, then `http::Uri` takes the result),
        // once per upstream.
        let parsed = url::Url::parse(&url).map_err(|_| BadUrl)?;
        let uri = Uri::try_from(parsed.as_str()).map_err(|_| BadUrl)?;
        let pools = self.pools(policy);
        let backend = match parsed.scheme() {
            "http" if !proxy_configured() => Backend::Hyper(pools.hyper.clone()),
            "http" | "https" => Backend::Reqwest(self.reqwest(policy, &url)?),
            _ => return Err(BadUrl.into()),
        };
        Ok(HttpClient::new(
            url,
            uri,
            backend,
            policy == HttpConnections::KeepAlive,
        ))
    }
}

/// Whether the environment names a proxy for plain HTTP (reqwest honours these; our hyper
/// client does not, so such upstreams go through reqwest).
fn proxy_configured() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The server's URL is not an `http` or `https` URL.
#[derive(Debug, thiserror::Error)]
#[error("the url is not a valid http or https URL")]
pub struct BadUrl;

/// Why no HTTP client could be set up for an upstream.
#[derive(Debug, thiserror::Error)]
pub enum ClientSetupError {
    #[error(transparent)]
    BadUrl(#[from] BadUrl),
    #[error(transparent)]
    Tls(#[from] TlsUnavailable),
    #[error(transparent)]
    Header(#[from] InvalidHeader),
}

/// A Streamable HTTP transport to `url` sending the rendered `headers` on every request
/// (values marked sensitive, see `headers::header_map`).
pub fn transport(
    clients: &Clients,
    policy: HttpConnections,
    url: &str,
    headers: Vec<(String, String)>,
) -> Result<StreamableHttpClientTransport<HttpClient>, ClientSetupError> {
    transport_with_sessions(clients, policy, url, headers, Links::default())
}

/// What a connection's requests may carry besides its headers.
#[derive(Default)]
pub struct Links {
    /// A session's headers ([`SessionHeaders`]), for sessions sharing the connection.
    pub sessions: Option<Arc<SessionHeaders>>,
    /// Where the `Authorization` token comes from (see `authorize.rs`).
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// The shared upstream session to attach to (see `attach.rs`).
    pub attach: Option<Arc<Attach>>,
}

/// [`transport`] whose requests may carry a session's headers, a token, and an attachment
/// to a shared upstream session ([`Links`]).
pub fn transport_with_sessions(
    clients: &Clients,
    policy: HttpConnections,
    url: &str,
    headers: Vec<(String, String)>,
    links: Links,
) -> Result<StreamableHttpClientTransport<HttpClient>, ClientSetupError> {
    // rmcp takes its custom headers as a `HashMap`; the values keep their sensitive mark.
    let headers: HashMap<HeaderName, HeaderValue> = header_map(headers)?
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // The same Arc goes to rmcp's config and our client, so the client sees its own URL
    // come back with every request and uses the URI it parsed once.
    let url: Arc<str> = Arc::from(url);
    let mut client = clients.for_url(policy, url.clone())?;
    client.sessions = links.sessions;
    client.authorizer = links.authorizer;
    client.attach = links.attach;
    let mut config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(headers)
        .reinit_on_expired_session(true);
    config.retry_config = Arc::new(stream_retry());
    Ok(StreamableHttpClientTransport::with_client(client, config))
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
