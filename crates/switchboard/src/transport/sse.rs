//! Legacy HTTP+SSE client transport (MCP protocol revision 2024-11-05).
//!
//! rmcp dropped its client for this transport, so this is ours, behind rmcp's `Transport` trait:
//! GET the SSE URL; the first `endpoint` event names the URL to POST messages to; `message`
//! events carry the server's JSON-RPC. The configured headers go on the GET and every POST.
//!
//! Secrets: configured header values are marked sensitive and never logged; reqwest errors are
//! stripped of their URL (a query may carry a session id or a key) before they leave this
//! module; the endpoint must be on the SSE URL's origin, so the headers never go elsewhere.
//! Redirects follow the caller's `reqwest::Client` policy.

mod limit;

use std::borrow::Cow;
use std::future::Future;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::header::{
    ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Request, Response, StatusCode, Url};
use rmcp::RoleClient;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use sse_stream::{Sse, SseStream};

use self::limit::{EventSizeLimiter, TooLarge};
use super::headers::header_map;

const EVENT_STREAM: &str = "text/event-stream";
const JSON: &str = "application/json";

/// How much of a POST response body is read (and discarded) so the connection can be reused.
/// A longer body is dropped unread, which costs that connection and nothing else.
const MAX_DRAINED_BODY: usize = 64 * 1024;

/// A connected legacy SSE session.
///
/// Sends may run concurrently: each `send` future owns a clone of the (cheap, shared) client,
/// the endpoint and the precomputed headers. Messages are received in order from the one
/// event stream. Dropping the transport, or [`Transport::close`], ends the event stream.
pub struct SseClientTransport {
    client: reqwest::Client,
    /// Where messages are POSTed: the `endpoint` event's URL, resolved and same-origin.
    endpoint: Url,
    /// The configured headers plus `Content-Type: application/json`, built once at connect.
    post_headers: HeaderMap,
    /// The server's events; `None` once closed or ended.
    events: Option<EventStream>,
    closed: bool,
}

type EventStream = BoxStream<'static, Result<Sse, sse_stream::Error>>;

impl std::fmt::Debug for SseClientTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No query (session id) and no header values.
        f.debug_struct("SseClientTransport")
            .field("origin", &self.endpoint.origin().ascii_serialization())
            .field("endpoint_path", &self.endpoint.path())
            .field("stream_open", &self.events.is_some())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Why [`SseClientTransport::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SseConnectError {
    /// The server answered the GET with a non-success status.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// The `WWW-Authenticate` header of a 401/403, if any.
        challenge: Option<String>,
    },
    /// The request failed before a response (refused, DNS, TLS, ...).
    #[error("{0}")]
    Request(#[source] reqwest::Error),
    /// The server answered but not as a legacy SSE MCP endpoint.
    #[error("{0}")]
    Protocol(String),
}

/// Why a [`Transport::send`] or [`Transport::close`] on an [`SseClientTransport`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseTransportError {
    /// The server answered the POST with a non-success status.
    #[error("POST answered HTTP {status}")]
    Status {
        status: u16,
        /// The `WWW-Authenticate` header of a 401/403, if any.
        challenge: Option<String>,
        /// The `Retry-After` header, as sent (a 429 or 503 may carry one).
        retry_after: Option<String>,
    },
    /// The POST failed before a response (refused, reset, TLS, ...). Its URL is stripped.
    #[error("POST failed: {0}")]
    Request(#[source] reqwest::Error),
    /// The message could not be serialized to JSON.
    #[error("could not serialize the message: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The transport was closed before this send.
    #[error("the SSE transport is closed")]
    Closed,
}

impl SseTransportError {
    /// The HTTP status the server answered, if that is why the send failed.
    pub fn status(&self) -> Option<u16> {
        match self {
            SseTransportError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl SseClientTransport {
    /// The largest single server-sent event accepted; a larger one ends the stream.
    pub const MAX_EVENT_SIZE: usize = 16 * 1024 * 1024;

    /// Opens the event stream and waits for the `endpoint` event.
    ///
    /// Not time-bounded by itself beyond the client's own timeouts: wrap it in a timeout. It
    /// does return (a `Protocol` error) if the stream ends before the `endpoint` event.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Self, SseConnectError> {
        let sse_url = Url::parse(url)
            .map_err(|e| SseConnectError::Protocol(format!("invalid SSE URL: {e}")))?;
        if !matches!(sse_url.scheme(), "http" | "https") {
            return Err(SseConnectError::Protocol(format!(
                "SSE URL scheme must be http or https, not '{}'",
                sse_url.scheme()
            )));
        }
        // Values are marked sensitive (never shown by Debug).
        let base = header_map(headers).map_err(|e| SseConnectError::Protocol(e.to_string()))?;

        let mut get_headers = base.clone();
        get_headers.insert(ACCEPT, HeaderValue::from_static(EVENT_STREAM));
        let mut request = Request::new(Method::GET, sse_url.clone());
        *request.headers_mut() = get_headers;
        let response = client
            .execute(request)
            .await
            .map_err(|e| SseConnectError::Request(e.without_url()))?;

        let status = response.status();
        if !status.is_success() {
            return Err(SseConnectError::Status {
                status: status.as_u16(),
                challenge: challenge(status, response.headers()),
            });
        }
        check_content_type(response.headers())?;
        // Relative endpoints resolve against where the stream actually came from (after any
        // redirect); the origin check is against what was configured.
        let stream_url = response.url().clone();
        let mut events = event_stream(response);

        let endpoint = loop {
            match events.next().await {
                Some(Ok(event)) => match event.event.as_deref() {
                    Some("endpoint") => {
                        break resolve_endpoint(&sse_url, &stream_url, event.data.as_deref())?;
                    }
                    None | Some("") | Some("message") => {
                        tracing::warn!(
                            "legacy SSE server sent a message before its endpoint; ignored"
                        );
                    }
                    Some(_) => {}
                },
                Some(Err(e)) => {
                    return Err(SseConnectError::Protocol(format!(
                        "event stream failed before the endpoint event: {e}"
                    )));
                }
                None => {
                    return Err(SseConnectError::Protocol(
                        "event stream ended before the endpoint event".to_owned(),
                    ));
                }
            }
        };

        let mut post_headers = base;
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
        Ok(Self {
            client,
            endpoint,
            post_headers,
            events: Some(events),
            closed: false,
        })
    }

    /// The URL messages are POSTed to (it usually carries the session id in its query).
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }
}

impl Transport<RoleClient> for SseClientTransport {
    type Error = SseTransportError;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed("legacy-sse")
    }

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // Everything borrowed from `self` is prepared here, so the future owns what it needs.
        let prepared = if self.closed {
            Err(SseTransportError::Closed)
        } else {
            serde_json::to_vec(&item)
                .map_err(SseTransportError::Serialize)
                .map(|body| {
                    let mut request = Request::new(Method::POST, self.endpoint.clone());
                    *request.headers_mut() = self.post_headers.clone();
                    *request.body_mut() = Some(body.into());
                    (self.client.clone(), request)
                })
        };
        async move {
            let (client, request) = prepared?;
            let mut response = client
                .execute(request)
                .await
                .map_err(|e| SseTransportError::Request(e.without_url()))?;
            let status = response.status();
            let failure = (!status.is_success()).then(|| SseTransportError::Status {
                status: status.as_u16(),
                challenge: challenge(status, response.headers()),
                retry_after: response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| v.len() <= 128)
                    .map(str::to_owned),
            });
            drain(&mut response).await;
            match failure {
                None => Ok(()),
                Some(error) => Err(error),
            }
        }
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        // Cancel-safe: all state lives in the stream; `next()` loses nothing when dropped.
        let events = self.events.as_mut()?;
        loop {
            match events.next().await {
                Some(Ok(event)) => {
                    if !matches!(event.event.as_deref(), None | Some("") | Some("message")) {
                        continue;
                    }
                    let Some(data) = event.data else { continue };
                    match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                        Ok(message) => return Some(message),
                        // serde's message can quote the payload; log only where and what kind.
                        Err(e) => tracing::warn!(
                            category = ?e.classify(),
                            line = e.line(),
                            column = e.column(),
                            len = data.len(),
                            "skipping a legacy SSE message that is not server JSON-RPC"
                        ),
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "legacy SSE event stream failed");
                    self.events = None;
                    return None;
                }
                None => {
                    tracing::debug!("legacy SSE event stream ended");
                    self.events = None;
                    return None;
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Dropping the body of the GET closes its connection, so the server sees the stream end.
        self.closed = true;
        self.events = None;
        Ok(())
    }
}

/// The `WWW-Authenticate` challenge of a 401/403, if it is readable text.
fn challenge(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return None;
    }
    let values: Vec<&str> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), SseConnectError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(SseConnectError::Protocol(
            "the SSE response has no Content-Type (expected text/event-stream)".to_owned(),
        ));
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match essence {
        Some(mime) if mime.eq_ignore_ascii_case(EVENT_STREAM) => Ok(()),
        _ => Err(SseConnectError::Protocol(format!(
            "the SSE response has Content-Type '{}', expected text/event-stream",
            String::from_utf8_lossy(value.as_bytes())
        ))),
    }
}

/// Resolves the `endpoint` event's data and refuses one on another origin than `sse_url`.
fn resolve_endpoint(
    sse_url: &Url,
    stream_url: &Url,
    data: Option<&str>,
) -> Result<Url, SseConnectError> {
    let data = data.map(str::trim).unwrap_or_default();
    if data.is_empty() {
        return Err(SseConnectError::Protocol(
            "the endpoint event has no URL".to_owned(),
        ));
    }
    let endpoint = stream_url
        .join(data)
        .map_err(|e| SseConnectError::Protocol(format!("invalid endpoint URL: {e}")))?;
    if endpoint.origin() != sse_url.origin() {
        return Err(SseConnectError::Protocol(format!(
            "the endpoint is on another origin ({}) than the SSE URL ({}); refusing to send \
             the configured headers there",
            endpoint.origin().ascii_serialization(),
            sse_url.origin().ascii_serialization()
        )));
    }
    Ok(endpoint)
}

/// Why the event stream's body failed (the reqwest error has its URL stripped).
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("an event exceeded {} bytes", SseClientTransport::MAX_EVENT_SIZE)]
    EventTooLarge,
}

/// Parses the response body as server-sent events, failing on an oversized event.
fn event_stream(response: Response) -> EventStream {
    let mut limiter = EventSizeLimiter::new(SseClientTransport::MAX_EVENT_SIZE);
    let bytes = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(|e| BodyError::Http(e.without_url()))?;
        limiter
            .observe(&chunk)
            .map_err(|TooLarge| BodyError::EventTooLarge)?;
        Ok::<Bytes, BodyError>(chunk)
    });
    SseStream::from_bytes_stream(bytes).boxed()
}

/// Reads a POST response's (short) body so its connection can go back to the pool.
async fn drain(response: &mut Response) {
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_DRAINED_BODY {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn relative_endpoint_resolves_against_the_stream_url() {
        let sse = url("http://127.0.0.1:3001/sse");
        let endpoint = resolve_endpoint(&sse, &sse, Some("/message?sessionId=abc\n")).unwrap();
        assert_eq!(
            endpoint.as_str(),
            "http://127.0.0.1:3001/message?sessionId=abc"
        );
        let sub = url("https://h.example/api/v1/sse");
        let endpoint = resolve_endpoint(&sub, &sub, Some("messages?s=1")).unwrap();
        assert_eq!(endpoint.as_str(), "https://h.example/api/v1/messages?s=1");
    }

    #[test]
    fn absolute_endpoint_on_the_same_origin_is_accepted() {
        let sse = url("https://h.example/sse");
        let endpoint = resolve_endpoint(&sse, &sse, Some("https://h.example:443/m")).unwrap();
        assert_eq!(endpoint.as_str(), "https://h.example/m");
    }

    #[test]
    fn endpoint_on_another_origin_is_refused() {
        let sse = url("http://127.0.0.1:3001/sse");
        for other in [
            "http://evil.example/message",
            "https://127.0.0.1:3001/message",
            "http://127.0.0.1:3002/message",
            "//evil.example/message",
        ] {
            let err = resolve_endpoint(&sse, &sse, Some(other)).unwrap_err();
            assert!(
                matches!(err, SseConnectError::Protocol(_)),
                "{other}: {err}"
            );
        }
    }

    #[test]
    fn empty_endpoint_is_refused() {
        let sse = url("http://127.0.0.1:3001/sse");
        assert!(resolve_endpoint(&sse, &sse, None).is_err());
        assert!(resolve_endpoint(&sse, &sse, Some("  ")).is_err());
    }

    fn one_header(name: http::HeaderName, value: &'static str) -> HeaderMap {
        HeaderMap::from_iter([(name, HeaderValue::from_static(value))])
    }

    #[test]
    fn content_type_check_accepts_parameters_and_case() {
        let mut headers = one_header(CONTENT_TYPE, "Text/Event-Stream; charset=utf-8");
        assert!(check_content_type(&headers).is_ok());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(check_content_type(&headers).is_err());
        assert!(check_content_type(&HeaderMap::new()).is_err());
    }

    #[test]
    fn challenge_only_for_401_and_403() {
        let headers = one_header(WWW_AUTHENTICATE, "Bearer realm=\"x\"");
        assert_eq!(
            challenge(StatusCode::UNAUTHORIZED, &headers).as_deref(),
            Some("Bearer realm=\"x\"")
        );
        assert!(challenge(StatusCode::FORBIDDEN, &headers).is_some());
        assert!(challenge(StatusCode::NOT_FOUND, &headers).is_none());
        assert!(challenge(StatusCode::UNAUTHORIZED, &HeaderMap::new()).is_none());
    }
}
