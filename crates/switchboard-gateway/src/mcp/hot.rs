//! The hot path: a 2025-11-25 session's plain `tools/call`, answered in front of rmcp's
//! Streamable HTTP server.
//!
//! rmcp's pipeline costs about as much as the call itself: it decodes every message into
//! its full (untagged) model, passes it through the session's worker task and a task per
//! request, and streams the answer back through the worker as a chunked SSE stream with a
//! priming event. The hot path decodes the body once into a narrow struct, runs the call in
//! the request's own task through the same code as rmcp's handler ([`super::serve_call`]:
//! drain check, relays, metrics, error forms; the same OpenTelemetry server span), and
//! writes the answer as one SSE event (no priming event, no event ids). A call still
//! running after 100 ms, or one that tells progress, is streamed: its progress, a comment
//! every 15 s of quiet, then the answer. Unlike rmcp's streams, such a stream cannot be
//! resumed: when the client goes away, the call is cancelled upstream.
//!
//! It serves only what needs nothing else of rmcp: one JSON-RPC `tools/call` request (not a
//! batch) whose `_meta` holds at most a `progressToken` (rmcp's client sends one with every
//! request; the call's progress then streams before its answer), on an open session
//! ([`super::sessions`]) whose client declared none of elicitation, sampling and roots
//! (nothing the call's server asks is then put to the client) and agreed a revision before
//! 2026-07-28, with `Accept`, `Content-Type` and `MCP-Protocol-Version` headers rmcp would
//! take as they are; and the `notifications/cancelled` of the requests it serves. Anything
//! else goes to rmcp unchanged. The checks in front of `/mcp` (hosts, auth, body size, the
//! per-session call limit, the drain's count, `[scale]`'s gate) run for both alike. The
//! server's log messages go to the client's standalone stream, as they do from rmcp's
//! handler.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::{BoxFuture, Either};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use rmcp::ErrorData;
use rmcp::model::{
    Notification, ProgressToken, ProtocolVersion, RequestId, ServerJsonRpcMessage,
    ServerNotification, ServerResult,
};
use serde::Deserialize;
use serde::de::IgnoredAny;
use switchboard::interaction::CallProgress;
use switchboard::{CallOptions, JsonObject};
use sync_wrapper::SyncStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;

use super::sessions::{Registry, SessionEntry};
use super::{ToolCall, lock, relay, serve_call};
use crate::otel;
use crate::state::GatewayState;

/// rmcp's `/mcp` service (`S`), with the hot path in front of it.
#[derive(Clone)]
pub(crate) struct HotPath<S> {
    inner: S,
    hot: Arc<Hot>,
}

/// What the hot path needs: the gateway's state and the sessions.
struct Hot {
    state: Arc<GatewayState>,
    registry: Arc<Registry>,
}

impl<S> HotPath<S> {
    pub(crate) fn new(inner: S, state: Arc<GatewayState>, registry: Arc<Registry>) -> Self {
        HotPath {
            inner,
            hot: Arc::new(Hot { state, registry }),
        }
    }
}

type McpResponse = Response<BoxBody<Bytes, Infallible>>;

impl<S> Service<Request<Body>> for HotPath<S>
where
    S: Service<Request<Body>, Response = McpResponse, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = McpResponse;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<McpResponse, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let Some(entry) = self.hot.session_of(&request) else {
            return Either::Left(self.inner.call(request));
        };
        // Ready: rmcp's service always is (and `poll_ready` asked).
        let mut inner = self.inner.clone();
        let hot = self.hot.clone();
        Either::Right(Box::pin(async move {
            let (parts, body) = request.into_parts();
            // The inbound checks have read the body already (within the size limit).
            let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
                return Ok(plain_status(StatusCode::INTERNAL_SERVER_ERROR));
            };
            match hot.serve(entry, &parts.headers, &bytes).await {
                Some(response) => Ok(response),
                None => {
                    inner
                        .call(Request::from_parts(parts, Body::from(bytes)))
                        .await
                }
            }
        }))
    }
}

/// One JSON-RPC message, as far as the hot path reads it (anything more: not its own).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: Option<RequestId>,
    #[serde(borrow)]
    method: Cow<'a, str>,
    params: Option<Params>,
}

/// The parameters of `tools/call` or `notifications/cancelled`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: Option<String>,
    arguments: Option<JsonObject>,
    #[serde(rename = "requestId")]
    request_id: Option<RequestId>,
    reason: Option<IgnoredAny>,
    #[serde(rename = "_meta")]
    meta: Option<JsonObject>,
}

/// A `tools/call` the hot path serves.
struct Call {
    request: RequestId,
    name: String,
    arguments: Option<JsonObject>,
    progress: Option<ProgressToken>,
}

impl Hot {
    /// The open session `request` is for, when the hot path may serve it.
    fn session_of(&self, request: &Request<Body>) -> Option<Arc<SessionEntry>> {
        if request.method() != Method::POST {
            return None;
        }
        let id = request.headers().get(MCP_SESSION_ID)?.to_str().ok()?;
        let entry = self.registry.get(id)?;
        if !entry.plain || entry.ended.is_cancelled() || !plain_headers(request.headers()) {
            return None;
        }
        Some(entry)
    }

    /// The answer to `body`, if it is the hot path's to give.
    async fn serve(
        self: Arc<Self>,
        entry: Arc<SessionEntry>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<McpResponse> {
        let Ok(message) = serde_json::from_slice::<Message<'_>>(body) else {
            return None;
        };
        let Message {
            jsonrpc,
            id,
            method,
            params: Some(params),
        } = message
        else {
            return None;
        };
        if jsonrpc != "2.0" {
            return None;
        }
        match (method.as_ref(), id, params) {
            (
                "tools/call",
                Some(request),
                Params {
                    name: Some(name),
                    arguments,
                    request_id: None,
                    reason: None,
                    meta,
                },
            ) => {
                let call = Call {
                    request,
                    name,
                    arguments,
                    progress: progress_token(meta)?,
                };
                Some(self.call(entry, headers, call).await)
            }
            (
                "notifications/cancelled",
                None,
                Params {
                    name: None,
                    arguments: None,
                    request_id: Some(request),
                    ..
                },
            ) => cancel(&entry, &request),
            _ => None,
        }
    }

    /// Runs the call and writes its answer: one event in one body, or, once the call's
    /// server tells progress (under the request's `progressToken`) or the call runs long,
    /// a stream of the progress events and then the answer. No answer when the client
    /// cancelled the call first: the stream then ends without one, as rmcp's would.
    async fn call(
        self: Arc<Self>,
        entry: Arc<SessionEntry>,
        headers: &HeaderMap,
        call: Call,
    ) -> McpResponse {
        let span = match otel::tracing_on() {
            true => otel::server_span(&otel::ServerRequest {
                method: "tools/call",
                target: Some(&call.name),
                session: Some(&entry.id),
                request_id: Some(&call.request),
                meta: None,
                headers: Some(headers),
                protocol: None,
            }),
            false => tracing::Span::none(),
        };
        // Progress beyond what the client has read is dropped (rmcp's channels are bounded
        // too); the answer never is.
        let (told, mut progress) = mpsc::channel(PROGRESS_BUFFER);
        let mut options = CallOptions::new();
        if let Some(token) = call.progress {
            options = options.on_progress(move |progress: &CallProgress| {
                let params = relay::progress_params(token.clone(), progress);
                let told_now = ServerNotification::ProgressNotification(Notification::new(params));
                let _ = told.try_send(event(&ServerJsonRpcMessage::notification(told_now)));
            });
        }
        // Cancelled by the client's `notifications/cancelled`, or when the session ends.
        let cancelled = entry.ended.child_token();
        let in_flight = InFlight::new(entry.clone(), &call.request, &cancelled);
        let answer = async move {
            let _in_flight = in_flight;
            let registry = &self.registry;
            registry.touch(&entry).await;
            let tool_call = ToolCall {
                peer: &entry.peer,
                id: &call.request,
                cancelled: &cancelled,
                progress: None,
                log_level: *lock(&entry.log_level),
                options,
                modern: false,
            };
            let answer = serve_call(
                &self.state,
                Some(&entry.own),
                None,
                &call.name,
                call.arguments,
                tool_call,
            );
            // rmcp's idle timer sees neither this call nor its progress: the session is
            // shown to it while the call runs, and when it ends.
            let answer = async {
                tokio::select! {
                    answer = answer => answer,
                    () = registry.keep_alive(&entry) => unreachable!("keeps alive for ever"),
                }
            };
            let answer = match span.is_disabled() {
                true => answer.await,
                false => {
                    let answer = answer.instrument(span.clone()).await;
                    let unanswered =
                        || Err(ErrorData::internal_error("the call was cancelled", None));
                    otel::record_call(&span, &answer.clone().unwrap_or_else(unanswered));
                    answer
                }
            };
            registry.touch(&entry).await;
            let message = match answer {
                // Cancelled: no answer.
                None => return String::new(),
                Some(Ok(response)) => {
                    // What rmcp's handler does for peers of revisions before 2026-07-28.
                    let mut result = ServerResult::from(response);
                    result.strip_result_type_for_legacy_peer();
                    ServerJsonRpcMessage::response(result, call.request)
                }
                Some(Err(error)) => ServerJsonRpcMessage::error(error, Some(call.request)),
            };
            event(&message)
        };
        let mut answer = Box::pin(answer);
        let first = tokio::select! {
            biased;
            Some(told) = progress.recv() => told,
            answer = &mut answer => return sse(BoxBody::new(Full::new(Bytes::from(answer)))),
            // A long call's answer begins now, as rmcp's would (a client may time out
            // waiting for the head).
            () = tokio::time::sleep(STREAM_AFTER) => String::new(),
        };
        // Progress first, or a long call: stream the progress, then the answer (with what
        // was told meanwhile).
        let rest = futures::stream::unfold(Some((answer, progress)), |state| async move {
            let (mut answer, mut progress) = state?;
            tokio::select! {
                biased;
                Some(told) = progress.recv() => Some((told, Some((answer, progress)))),
                // A comment now and then, as rmcp's streams have: proxies keep the
                // connection of a quiet call open.
                () = tokio::time::sleep(SSE_KEEP_ALIVE) => {
                    Some((":\n\n".to_owned(), Some((answer, progress))))
                }
                last = &mut answer => {
                    let mut tail = String::new();
                    while let Ok(told) = progress.try_recv() {
                        tail.push_str(&told);
                    }
                    tail.push_str(&last);
                    Some((tail, None))
                }
            }
        });
        let first = futures::stream::once(std::future::ready(first));
        let events = first
            .chain(rest)
            .filter(|e| std::future::ready(!e.is_empty()))
            .map(|e| Ok::<_, Infallible>(Frame::data(Bytes::from(e))));
        // (rmcp's body type is `Sync`; the call's future is not.)
        sse(BoxBody::new(StreamBody::new(SyncStream::new(events))))
    }
}

/// `message` as one SSE event.
fn event(message: &ServerJsonRpcMessage) -> String {
    match serde_json::to_string(message) {
        Ok(json) => format!("data: {json}\n\n"),
        Err(error) => {
            // Not expected (rmcp's own types): the stream then ends without it.
            tracing::error!(%error, "cannot encode a message for a downstream client");
            String::new()
        }
    }
}

const MCP_SESSION_ID: &str = "mcp-session-id";

/// How long a call may run before its answer's head is sent (then streamed): most calls
/// are answered in one body by then.
const STREAM_AFTER: Duration = Duration::from_millis(100);

/// How long a streamed answer may be quiet before a comment is sent (rmcp's default).
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Progress events waiting for the client to read them.
const PROGRESS_BUFFER: usize = 64;

/// The `progressToken` of a `tools/call`'s `_meta`; `None` (not the hot path's) when the
/// `_meta` holds anything else (a `traceparent`, say, whose span rmcp's path reads).
fn progress_token(meta: Option<JsonObject>) -> Option<Option<ProgressToken>> {
    let Some(mut meta) = meta else {
        return Some(None);
    };
    let token = meta.remove("progressToken");
    if !meta.is_empty() {
        return None;
    }
    match token {
        None => Some(None),
        Some(token) => serde_json::from_value(token).ok().map(Some),
    }
}

/// `Accept`, `Content-Type` and `MCP-Protocol-Version` as rmcp takes them without a word,
/// for a revision before 2026-07-28 (whose requests carry what the hot path leaves to rmcp).
fn plain_headers(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).map(HeaderValue::to_str);
    // A single `Accept` of plain media types (any parameter, a weight say, is left to
    // rmcp's own reading), naming both.
    let mut accept = headers.get_all(header::ACCEPT).iter();
    let accepts = match (accept.next().map(HeaderValue::to_str), accept.next()) {
        (Some(Ok(accept)), None) if !accept.contains([';', '"']) => {
            let types = || accept.split(',').map(str::trim);
            let json = types().any(|t| t.eq_ignore_ascii_case("application/json"));
            json && types().any(|t| t.eq_ignore_ascii_case("text/event-stream"))
        }
        _ => false,
    };
    let json = match text(header::CONTENT_TYPE.as_str()) {
        Some(Ok(kind)) => kind
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
        _ => false,
    };
    let classic = match text("mcp-protocol-version") {
        None => true,
        Some(Ok(version)) => {
            version < ProtocolVersion::V_2026_07_28.as_str()
                && ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .any(|known| known.as_str() == version)
        }
        Some(Err(_)) => false,
    };
    accepts && json && classic
}

/// Cancels the hot path's request `request` of `entry` (`None`: not one of its own).
fn cancel(entry: &SessionEntry, request: &RequestId) -> Option<McpResponse> {
    let (_, cancelled) = lock(&entry.in_flight).remove(request)?;
    cancelled.cancel();
    Some(plain_status(StatusCode::ACCEPTED))
}

fn plain_status(status: StatusCode) -> McpResponse {
    let mut response = Response::new(BoxBody::new(Full::new(Bytes::new())));
    *response.status_mut() = status;
    response
}

/// A `text/event-stream` answer of `events`, as rmcp heads its streams.
fn sse(events: BoxBody<Bytes, Infallible>) -> McpResponse {
    let mut response = Response::new(events);
    let headers = response.headers_mut();
    let stream = HeaderValue::from_static("text/event-stream");
    headers.insert(header::CONTENT_TYPE, stream);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let buffering = http::HeaderName::from_static("x-accel-buffering");
    headers.insert(buffering, HeaderValue::from_static("no"));
    response
}

/// A request being served, cancellable by its client until dropped.
struct InFlight {
    entry: Arc<SessionEntry>,
    request: RequestId,
    number: u64,
}

impl InFlight {
    fn new(entry: Arc<SessionEntry>, request: &RequestId, cancelled: &CancellationToken) -> Self {
        let number = entry.served.fetch_add(1, Ordering::Relaxed);
        let mut in_flight = lock(&entry.in_flight);
        in_flight.insert(request.clone(), (number, cancelled.clone()));
        drop(in_flight);
        InFlight {
            entry,
            request: request.clone(),
            number,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.entry.in_flight);
        // Only its own: a later request may have taken the same id.
        if in_flight
            .get(&self.request)
            .is_some_and(|(n, _)| *n == self.number)
        {
            in_flight.remove(&self.request);
        }
    }
}
