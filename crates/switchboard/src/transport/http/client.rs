//! Our implementation of rmcp's `StreamableHttpClient`: the HTTP requests under rmcp's
//! Streamable HTTP worker.
//!
//! What it does differently from rmcp's reqwest client, and why (BENCHMARKS.md, "Profiles"):
//!
//! - **One URL parse per upstream.** The URL is parsed once when the transport is built;
//!   reqwest parses it three times per request (the string, its redirect layer, the response).
//! - **hyper directly** for `http://` upstreams without a proxy: hyper-util's pooled client,
//!   no redirect layer, no URL type. `https://` upstreams, and any upstream while a proxy is
//!   configured in the environment, go through reqwest (TLS roots, proxies, redirects as
//!   before).
//! - **The response of an SSE-answered POST is read here.** When the first message event on
//!   the POST's response stream is the response to the request just sent (the usual case),
//!   it is returned as `StreamableHttpPostResponse::Json`, so rmcp's worker neither spawns a
//!   stream task, nor sets up stream resumption, nor arms its 50 ms drain timer for it. Any
//!   other stream (a notification or server request first, or a stream that breaks before
//!   the response) is handed to rmcp unchanged as `Sse`, the events already read first, so
//!   resumption (`Last-Event-ID`) and everything else stays rmcp's.
//! - **Typed decoding** of the response to the request sent ([`super::decode`]).
//!
//! Statuses and errors follow rmcp's reqwest client, except that a status rmcp reports as the
//! text `"HTTP {status}: {body}"` is [`ClientError::Status`] here, so it is classified by its
//! code. Not implemented: rmcp's `server/discover` rejection handling (our handshake is the
//! classic `initialize`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;
use tokio_util::sync::CancellationToken;

use super::decode::{self, Expected};
use super::events::EventReader;
use super::response::{
    auth_error, content_length, content_type_is, failed_status, read_bounded, status_error,
};

/// rmcp's default limit for one SSE event, used when rmcp does not pass one.
const DEFAULT_MAX_SSE_EVENT: usize = 16 * 1024 * 1024;
/// Largest JSON response body read (rmcp's limit).
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;
/// Largest error response body read (rmcp's limit).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest `Retry-After` value kept (rmcp's limit).
/// How many response streams of one upstream may be read to their end in the background at
/// once (see [`HttpClient::finish`]); past that, a stream is dropped with its connection.
const MAX_DRAINS: usize = 16;

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("text/event-stream, application/json");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: &[u8] = b"text/event-stream";
const JSON_TYPE: &[u8] = b"application/json";

pub(crate) type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

/// Builds the hyper client for one connection policy; `idle_per_host` bounds the idle
/// keep-alive connections it keeps.
pub(crate) fn hyper_client(keep_alive: bool, idle_per_host: usize) -> Hyper {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = HyperClient::builder(hyper_util::rt::TokioExecutor::new());
    builder
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90));
    builder.pool_max_idle_per_host(if keep_alive { idle_per_host } else { 0 });
    builder.build(connector)
}

fn default_port(uri: &Uri) -> Option<u16> {
    match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") => Some(443),
        _ => None,
    }
}

/// How requests reach one upstream.
#[derive(Clone)]
pub(crate) enum Backend {
    Hyper(Hyper),
    Reqwest(reqwest::Client),
}

/// A Streamable HTTP client for one upstream URL (cheap to clone).
#[derive(Clone)]
pub struct HttpClient {
    target: Arc<Target>,
}

struct Target {
    url: Arc<str>,
    uri: Uri,
    /// The `Host` header for `uri`, made once (hyper would format it for every request).
    host: Option<HeaderValue>,
    backend: Backend,
    keep_alive: bool,
    /// Response streams being read to their end in the background.
    drains: AtomicUsize,
    /// Cancelled when the last clone of the client goes (the transport closed): ends the
    /// background reads.
    gone: CancellationToken,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.gone.cancel();
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: its query may hold a token.
        f.debug_struct("HttpClient")
            .field(
                "backend",
                &match self.target.backend {
                    Backend::Hyper(_) => "hyper",
                    Backend::Reqwest(_) => "reqwest",
                },
            )
            .field("keep_alive", &self.target.keep_alive)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub(crate) fn new(url: Arc<str>, uri: Uri, backend: Backend, keep_alive: bool) -> Self {
        let host = uri.authority().and_then(|authority| {
            let host = authority.host();
            let value = match authority.port_u16() {
                Some(port) if Some(port) != default_port(&uri) => format!("{host}:{port}"),
                _ => host.to_owned(),
            };
            HeaderValue::try_from(value).ok()
        });
        HttpClient {
            target: Arc::new(Target {
                url,
                uri,
                host,
                backend,
                keep_alive,
                drains: AtomicUsize::new(0),
                gone: CancellationToken::new(),
            }),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &Arc<str>,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<ResponseBody>, ClientError> {
        let own_url = Arc::ptr_eq(url, &self.target.url) || **url == *self.target.url;
        let uri = if own_url {
            self.target.uri.clone()
        } else {
            url.parse().map_err(|_| ClientError::InvalidUrl)?
        };
        match &self.target.backend {
            Backend::Hyper(client) => {
                if own_url && let Some(host) = &self.target.host {
                    headers.insert(HOST, host.clone());
                }
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                *request.headers_mut() = headers;
                let response = client.request(request).await.map_err(ClientError::Send)?;
                Ok(response.map(ResponseBody::Hyper))
            }
            Backend::Reqwest(client) => {
                let mut request = Request::new(body);
                *request.method_mut() = method;
                *request.uri_mut() = uri;
                *request.headers_mut() = headers;
                let request = reqwest::Request::try_from(request).map_err(ClientError::Reqwest)?;
                let response = client
                    .execute(request)
                    .await
                    .map_err(ClientError::Reqwest)?;
                Ok(Response::from(response).map(ResponseBody::Reqwest))
            }
        }
    }
}

/// A request failure below MCP: the `Client` case of rmcp's `StreamableHttpError`.
///
/// Messages carry no URL and no header value.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or got no response (refused, reset, DNS).
    #[error("{}", if .0.is_connect() { "could not connect" } else { "the request failed" })]
    Send(#[source] hyper_util::client::legacy::Error),
    /// The response body broke off.
    #[error("the response body failed")]
    Body(#[source] hyper::Error),
    /// reqwest (https or proxied upstreams) failed; see `classify` for its message.
    #[error("the request failed")]
    Reqwest(#[source] reqwest::Error),
    /// The server answered with a status that ends the request.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// The `WWW-Authenticate` header of a 401/403, if any.
        challenge: Option<String>,
    },
    #[error("the URL is not a valid HTTP URL")]
    InvalidUrl,
    #[error("a header value is not valid in HTTP")]
    InvalidHeader,
}

type HttpError = StreamableHttpError<ClientError>;

/// A response body from either backend.
pub(crate) enum ResponseBody {
    Hyper(hyper::body::Incoming),
    Reqwest(reqwest::Body),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ClientError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientError>>> {
        match self.get_mut() {
            ResponseBody::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(ClientError::Body))),
            ResponseBody::Reqwest(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(ClientError::Reqwest))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Hyper(body) => body.is_end_stream(),
            ResponseBody::Reqwest(body) => body.is_end_stream(),
        }
    }
}

fn base_headers(
    capacity: usize,
    auth_token: Option<String>,
    custom_headers: HashMap<HeaderName, HeaderValue>,
) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::with_capacity(capacity + custom_headers.len());
    for (name, value) in custom_headers {
        // rmcp's rule: these are the transport's; MCP-Protocol-Version is set by rmcp itself.
        if name == ACCEPT || name == SESSION_ID || name == LAST_EVENT_ID {
            return Err(StreamableHttpError::ReservedHeaderConflict(
                name.to_string(),
            ));
        }
        headers.append(name, value);
    }
    headers.insert(ACCEPT, ACCEPT_BOTH);
    if let Some(token) = auth_token {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| StreamableHttpError::Client(ClientError::InvalidHeader))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

fn header_value(value: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::try_from(value)
        .map_err(|_| StreamableHttpError::Client(ClientError::InvalidHeader))
}

fn session_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn expects_no_reply(message: &ClientJsonRpcMessage) -> bool {
    !matches!(message, ClientJsonRpcMessage::Request(_))
}

impl HttpClient {
    /// Reads a POST's SSE response: the response to `expected` if it is the first message
    /// on the stream, else the stream as rmcp takes it.
    async fn read_response_stream(
        &self,
        body: ResponseBody,
        expected: Option<Expected>,
        session_id: Option<String>,
        max_event: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let mut reader = EventReader::new(body, max_event);
        let mut seen: Vec<Result<Sse, SseError>> = Vec::new();
        if let Some(expected) = expected {
            loop {
                match reader.next().await {
                    Some(Ok(event)) if event.is_blank() => match event.into_sse() {
                        Ok(sse) => seen.push(Ok(sse)),
                        Err(e) => {
                            seen.push(Err(e));
                            break;
                        }
                    },
                    Some(Ok(event)) => {
                        let data = event.data.as_deref().unwrap_or_default();
                        if let Ok(message) = decode::decode(data, Some(&expected))
                            && decode::answers(&message, &expected)
                        {
                            self.finish(reader);
                            return Ok(StreamableHttpPostResponse::Json(message, session_id));
                        }
                        seen.push(event.into_sse());
                        break;
                    }
                    Some(Err(e)) => {
                        seen.push(Err(e.into_sse_error()));
                        break;
                    }
                    None => break,
                }
            }
        }
        let stream = futures::stream::iter(seen).chain(reader.into_sse_stream());
        Ok(StreamableHttpPostResponse::Sse(stream.boxed(), session_id))
    }

    /// After the response, lets the rest of the stream (normally just its end, a moment
    /// behind) arrive so a kept-alive connection returns to the pool; per-request
    /// connections are just dropped.
    ///
    /// The rest is read by a small task. It has no timer (rmcp bounds the same wait with a
    /// 50 ms timeout, one timer per call): a server ends a response stream after its
    /// response, and one that does not is bounded by [`MAX_DRAINS`] streams per upstream,
    /// which are all dropped when the upstream closes.
    fn finish(&self, reader: EventReader<ResponseBody>) {
        if !self.target.keep_alive {
            return;
        }
        let Some(mut body) = reader.into_body() else {
            return;
        };
        match body.frame().now_or_never() {
            None => {}
            Some(None | Some(Err(_))) => return,
            Some(Some(Ok(_))) if body.is_end_stream() => return,
            Some(Some(Ok(_))) => {}
        }
        let target = self.target.clone();
        if target.drains.fetch_add(1, Ordering::Relaxed) >= MAX_DRAINS {
            target.drains.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let gone = target.gone.clone();
        // Only the counter is kept, not the client: the task must not keep `Target` alive.
        let counter = Arc::downgrade(&target);
        drop(target);
        tokio::spawn(async move {
            tokio::select! {
                biased;
                () = gone.cancelled() => {}
                () = async { while let Some(Ok(_)) = body.frame().await {} } => {}
            }
            if let Some(target) = counter.upgrade() {
                target.drains.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}

impl StreamableHttpClient for HttpClient {
    type Error = ClientError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.post_message_with_max_sse_event_size(
            uri,
            message,
            session_id,
            auth_token,
            custom_headers,
            DEFAULT_MAX_SSE_EVENT,
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let expected = Expected::of(&message);
        let mut body = Vec::with_capacity(512);
        serde_json::to_writer(&mut body, &message)?;
        let mut headers = base_headers(3, auth_token, custom_headers)?;
        headers.insert(CONTENT_TYPE, JSON);
        let session_was_attached = session_id.is_some();
        if let Some(session_id) = session_id {
            headers.insert(SESSION_ID, header_value(&session_id)?);
        }
        let response = self
            .send(Method::POST, &uri, headers, Bytes::from(body))
            .await
            .map_err(StreamableHttpError::Client)?;
        let (parts, body) = response.into_parts();
        let status = parts.status;
        auth_error(status, &parts.headers)?;
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND && session_was_attached {
            return Err(StreamableHttpError::SessionExpired);
        }
        let is_json = content_type_is(&parts.headers, JSON_TYPE);
        // Rate limits and non-JSON failures end here, unread; a JSON failure may carry a
        // JSON-RPC error worth returning instead.
        let server_error = match status_error(status, &parts.headers) {
            Some(error) if !is_json || status == StatusCode::TOO_MANY_REQUESTS => {
                return Err(error.into());
            }
            other => other,
        };
        let length = content_length(&parts.headers);
        let session_id = session_id_of(&parts.headers);
        // Some servers answer a notification with an empty 200 instead of 202.
        if status.is_success() && length == Some(0) && expects_no_reply(&message) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if !status.is_success() {
            let text = match read_bounded(body, length, MAX_ERROR_BODY).await {
                Ok(bytes) => bytes,
                Err(error @ StreamableHttpError::ResponseBodyTooLarge { .. }) => {
                    return Err(server_error.map(StreamableHttpError::from).unwrap_or(error));
                }
                Err(_) => Vec::new(),
            };
            // A 401/403 without a challenge keeps its status (classified as an auth error).
            let is_auth = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            if !is_auth
                && is_json
                && let Ok(message @ JsonRpcMessage::Error(_)) =
                    serde_json::from_slice::<ServerJsonRpcMessage>(&text)
            {
                return Ok(StreamableHttpPostResponse::Json(message, session_id));
            }
            if let Some(error) = server_error {
                return Err(error.into());
            }
            return Err(failed_status(status, &parts.headers));
        }
        if content_type_is(&parts.headers, EVENT_STREAM) {
            return self
                .read_response_stream(body, expected, session_id, max_sse_event_size)
                .await;
        }
        if is_json {
            let bytes = read_bounded(body, length, MAX_JSON_BODY).await?;
            return match decode::decode(&bytes, expected.as_ref()) {
                Ok(parsed) => Ok(StreamableHttpPostResponse::Json(parsed, session_id)),
                Err(e) if expects_no_reply(&message) => {
                    tracing::warn!(
                        "could not parse a JSON response to a notification, treating it as accepted: {e}"
                    );
                    Ok(StreamableHttpPostResponse::Accepted)
                }
                Err(e) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                    format!("could not parse JSON response as ServerJsonRpcMessage: {e}"),
                ))),
            };
        }
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned());
        Err(StreamableHttpError::UnexpectedContentType(content_type))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        let mut headers = base_headers(2, auth_token, custom_headers)?;
        headers.remove(ACCEPT);
        headers.insert(SESSION_ID, header_value(&session_id)?);
        let response = self
            .send(Method::DELETE, &uri, headers, Bytes::new())
            .await
            .map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the server does not support deleting sessions");
            return Ok(());
        }
        if !status.is_success() {
            return Err(failed_status(status, response.headers()));
        }
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth_token,
            custom_headers,
            DEFAULT_MAX_SSE_EVENT,
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        let mut headers = base_headers(3, auth_token, custom_headers)?;
        if let Some(session_id) = session_id {
            headers.insert(SESSION_ID, header_value(&session_id)?);
        }
        if let Some(last_event_id) = last_event_id {
            headers.insert(LAST_EVENT_ID, header_value(&last_event_id)?);
        }
        let response = self
            .send(Method::GET, &uri, headers, Bytes::new())
            .await
            .map_err(StreamableHttpError::Client)?;
        let (parts, body) = response.into_parts();
        if parts.status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        auth_error(parts.status, &parts.headers)?;
        if let Some(error) = status_error(parts.status, &parts.headers) {
            return Err(error.into());
        }
        if !parts.status.is_success() {
            return Err(failed_status(parts.status, &parts.headers));
        }
        if !content_type_is(&parts.headers, EVENT_STREAM)
            && !content_type_is(&parts.headers, JSON_TYPE)
        {
            let content_type = parts
                .headers
                .get(CONTENT_TYPE)
                .map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned());
            return Err(StreamableHttpError::UnexpectedContentType(content_type));
        }
        Ok(EventReader::new(body, max_sse_event_size)
            .into_sse_stream()
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_refused() {
        for name in ["accept", "mcp-session-id", "last-event-id"] {
            let headers =
                HashMap::from([(HeaderName::from_static(name), HeaderValue::from_static("x"))]);
            assert!(matches!(
                base_headers(0, None, headers),
                Err(StreamableHttpError::ReservedHeaderConflict(_))
            ));
        }
        let allowed = HashMap::from([(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static("2025-06-18"),
        )]);
        assert!(base_headers(0, None, allowed).is_ok());
    }

    #[test]
    fn error_messages_hide_urls_and_values() {
        let status = ClientError::Status {
            status: 401,
            challenge: Some("Bearer secret".into()),
        };
        assert_eq!(status.to_string(), "HTTP 401");
    }
}
