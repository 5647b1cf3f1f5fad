//! Our HTTP client under rmcp's Streamable HTTP worker: how requests reach one upstream.
//! `requests.rs` is what the client sends and how it reads the answers (rmcp's
//! `StreamableHttpClient`).
//!
//! What it does differently from rmcp's reqwest client, and why (BENCHMARKS.md, "Profiles"):
//!
//! - **One URL parse per upstream.** The URL is parsed once when the transport is built;
//!   reqwest parses it three times per request (the string, its redirect layer, the response).
//! - **hyper directly** for `http://` upstreams without a proxy: hyper-util's pooled client,
//!   no redirect layer, no URL type. `https://` upstreams, and any upstream while a proxy is
//!   configured in the environment, go through reqwest (TLS roots, proxies, redirects as
//!   before).
//! - **Kept-alive connections go back to the pool** after an SSE-answered response without a
//!   timer per call ([`HttpClient::finish`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::FutureExt;
use http::header::HOST;
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio_util::sync::CancellationToken;

use super::events::EventReader;

/// How many response streams of one upstream may be read to their end in the background at
/// once (see [`HttpClient::finish`]); past that, a stream is dropped with its connection.
const MAX_DRAINS: usize = 16;

pub(crate) type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

/// Builds the hyper client for one connection policy; `idle_per_host` bounds the idle
/// keep-alive connections it keeps.
pub(crate) fn hyper_client(keep_alive: bool, idle_per_host: usize) -> Hyper {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = HyperClient::builder(hyper_util::rt::TokioExecutor::new());
    builder
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(super::POOL_IDLE_TIMEOUT);
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
    /// Where requests find their session's headers, when sessions share this connection.
    pub(crate) sessions: Option<Arc<super::sessions::SessionHeaders>>,
    /// Where requests get their `Authorization` header, when the server is signed in to.
    pub(crate) authorizer: Option<Arc<dyn super::Authorizer>>,
    /// The shared upstream session this connection attaches to (`attach.rs`).
    pub(crate) attach: Option<Arc<super::attach::Attach>>,
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
            sessions: None,
            authorizer: None,
            attach: None,
        }
    }

    pub(super) async fn send(
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

    /// After the response, lets the rest of the stream (normally just its end, a moment
    /// behind) arrive so a kept-alive connection returns to the pool; per-request
    /// connections are just dropped.
    ///
    /// The rest is read by a small task. It has no timer (rmcp bounds the same wait with a
    /// 50 ms timeout, one timer per call): a server ends a response stream after its
    /// response, and one that does not is bounded by [`MAX_DRAINS`] streams per upstream,
    /// which are all dropped when the upstream closes.
    pub(super) fn finish(&self, reader: EventReader<ResponseBody>) {
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
    /// Signing in to the server failed (no token could be had, or a refused one could not
    /// be replaced).
    #[error("{0}")]
    SignIn(Box<crate::error::AuthFailure>),
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_hide_urls_and_values() {
        let status = ClientError::Status {
            status: 401,
            challenge: Some("Bearer secret".into()),
        };
        assert_eq!(status.to_string(), "HTTP 401");
    }
}
