//! The hot path: a plain `tools/call`, answered in front of rmcp's Streamable HTTP server.
//!
//! rmcp's pipeline costs about as much as the call itself: it decodes every message into
//! its full (untagged) model, passes it through the session's worker task (or, without a
//! session, a service of its own) and a task per request, and streams the answer back
//! through channels. The hot path decodes the body once into a narrow struct, runs the call
//! in the request's own task through the same code as rmcp's handler ([`super::serve_call`]:
//! drain check, relays, metrics, error forms; the same OpenTelemetry server span), and
//! writes the answer as rmcp's handler would have it written. It serves two kinds of client:
//!
//! - **A 2025-11-25 session's**: an open session ([`super::sessions`]) whose client declared
//!   none of elicitation, sampling and roots (nothing the call's server asks is then put to
//!   the client) and agreed a revision before 2026-07-28. The answer is one SSE event (no
//!   priming event, no event ids). A call still running after 100 ms, or one that tells
//!   progress, is streamed: its progress, a comment every 15 s of quiet, then the answer.
//!   Unlike rmcp's streams, such a stream cannot be resumed: when the client goes away, the
//!   call is cancelled upstream. The server's log messages go to the client's standalone
//!   stream, as they do from rmcp's handler. The session's `notifications/cancelled` of the
//!   requests the hot path serves are its own too.
//! - **A 2026-07-28 request** (stateless, no session): its `MCP-Protocol-Version` names a
//!   revision from 2026-07-28 on, its `_meta` the same revision and the client's
//!   capabilities, and its SEP-2243 headers are the ones rmcp checks, as rmcp wants them:
//!   `Mcp-Method: tools/call` and `Mcp-Name` the tool's name, plainly, once each; a tool
//!   without `x-mcp-header` parameters and no `Mcp-Param-*` header at all (rmcp checks
//!   those headers against the tool's schema, `DownstreamSession::get_tool`). A retry's `requestState` and `inputResponses` are
//!   served as rmcp's handler serves them (`modern.rs`). The answer is one JSON body with
//!   rmcp's HTTP status for it; once the call tells progress or a log message (at or above
//!   the request's `logLevel`), an SSE stream of those and then the answer. When the client
//!   goes away, the call is cancelled upstream, as in rmcp.
//!
//! Only what needs nothing else of rmcp is served: one JSON-RPC request (not a batch) whose
//! `_meta` holds only the keys above and a `progressToken` (rmcp's client sends one with
//! every request), with `Accept` and `Content-Type` headers rmcp would take as they are.
//! Anything else, including every request rmcp would refuse, goes to rmcp unchanged. The
//! checks in front of `/mcp` (hosts, auth, body size, the per-session call limit, the
//! drain's count, `[scale]`'s gate) run for both alike.
#![allow(deprecated)] // logging (SEP-2577): 2026-07-28 clients still set a level per request

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::future::{BoxFuture, Either};
use futures::{FutureExt, StreamExt};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use rmcp::ErrorData;
use rmcp::model::{
    ErrorCode, InputResponses, LoggingLevel, MetaObject, ProgressToken, ProtocolVersion, RequestId,
    RequestMetaObject, ServerJsonRpcMessage, ServerNotification, ServerResult,
};
use serde::Deserialize;
use serde::de::IgnoredAny;
use switchboard::{CallOptions, JsonObject};
use sync_wrapper::SyncStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::Instrument;

use super::sessions::{Registry, SessionEntry};
use super::{ToolCall, lock, modern, relay, serve_call};
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
    /// Cancelled when the gateway has drained: the 2026-07-28 calls still running end then,
    /// as rmcp's do.
    shutdown: CancellationToken,
}

impl<S> HotPath<S> {
    pub(crate) fn new(
        inner: S,
        state: Arc<GatewayState>,
        registry: Arc<Registry>,
        shutdown: CancellationToken,
    ) -> Self {
        HotPath {
            inner,
            hot: Arc::new(Hot {
                state,
                registry,
                shutdown,
            }),
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
        let Some(caller) = self.hot.caller_of(&request) else {
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
            match hot.serve(caller, &parts, &bytes).await {
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

/// Whose request the hot path may serve.
enum Caller {
    /// A 2025-11-25 session's client.
    Session(Arc<SessionEntry>),
    /// A 2026-07-28 client, served without a session.
    Stateless,
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
    /// A 2026-07-28 retry's parts (`modern.rs`).
    #[serde(rename = "requestState")]
    request_state: Option<String>,
    #[serde(rename = "inputResponses")]
    input_responses: Option<InputResponses>,
}

/// A `tools/call` the hot path serves.
struct Call {
    request: RequestId,
    name: String,
    arguments: Option<JsonObject>,
}

/// What a 2026-07-28 `tools/call` brings besides the tool and its arguments.
struct Stateless {
    meta: RequestMetaObject,
    progress: Option<ProgressToken>,
    level: Option<LoggingLevel>,
    request_state: Option<String>,
    input_responses: Option<InputResponses>,
}

impl Hot {
    /// Whose request `request` is, when the hot path may serve it.
    fn caller_of(&self, request: &Request<Body>) -> Option<Caller> {
        let headers = request.headers();
        if request.method() != Method::POST || !plain_media(headers) {
            return None;
        }
        let Some(id) = headers.get(MCP_SESSION_ID) else {
            return stateless_headers(headers).then_some(Caller::Stateless);
        };
        let entry = self.registry.get(id.to_str().ok()?)?;
        if !entry.plain || entry.ended.is_cancelled() || !classic_version(headers) {
            return None;
        }
        Some(Caller::Session(entry))
    }

    /// The answer to `body`, if it is the hot path's to give.
    async fn serve(
        self: Arc<Self>,
        caller: Caller,
        parts: &Parts,
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
        let Params {
            name,
            arguments,
            request_id,
            reason,
            meta,
            request_state,
            input_responses,
        } = params;
        match (method.as_ref(), id, caller) {
            ("tools/call", Some(request), caller) if request_id.is_none() && reason.is_none() => {
                let call = Call {
                    request,
                    name: name?,
                    arguments,
                };
                match caller {
                    Caller::Session(entry) => {
                        if request_state.is_some() || input_responses.is_some() {
                            return None;
                        }
                        let progress = progress_token(meta)?;
                        Some(self.call(entry, &parts.headers, call, progress).await)
                    }
                    Caller::Stateless => {
                        if !named_in_headers(&parts.headers, &call.name)
                            || self.declares_header_params(&call.name)
                        {
                            return None;
                        }
                        let version = parts.headers.get(MCP_PROTOCOL_VERSION)?.to_str().ok()?;
                        let (meta, progress, level) = stateless_meta(meta?, version)?;
                        let stateless = Stateless {
                            meta,
                            progress,
                            level,
                            request_state,
                            input_responses,
                        };
                        Some(self.call_stateless(parts, call, stateless).await)
                    }
                }
            }
            ("notifications/cancelled", None, Caller::Session(entry))
                if name.is_none() && arguments.is_none() =>
            {
                cancel(&entry, &request_id?)
            }
            _ => None,
        }
    }

    /// Whether the tool `name` has `x-mcp-header` parameters, whose `Mcp-Param-*` headers
    /// rmcp checks.
    fn declares_header_params(&self, name: &str) -> bool {
        let catalog = self.state.hub.catalog();
        catalog
            .get(name)
            .is_some_and(|tool| header_params(tool.input_schema.get("properties")))
    }

    /// The server span of a hot call (disabled unless traces are exported).
    fn span(
        &self,
        call: &Call,
        session: Option<&str>,
        meta: Option<&JsonObject>,
        headers: &HeaderMap,
    ) -> tracing::Span {
        match otel::tracing_on() {
            true => otel::server_span(&otel::ServerRequest {
                method: "tools/call",
                target: Some(&call.name),
                session,
                request_id: Some(&call.request),
                meta,
                headers: Some(headers),
                protocol: None,
            }),
            false => tracing::Span::none(),
        }
    }

    /// A session's call: runs it and writes its answer, one event in one body, or, once the
    /// call's server tells progress (under the request's `progressToken`) or the call runs
    /// long, a stream of the progress events and then the answer. No answer when the client
    /// cancelled the call first: the stream then ends without one, as rmcp's would.
    async fn call(
        self: Arc<Self>,
        entry: Arc<SessionEntry>,
        headers: &HeaderMap,
        call: Call,
        progress: Option<ProgressToken>,
    ) -> McpResponse {
        let span = self.span(&call, Some(&entry.id), None, headers);
        // Nothing told is lost (rmcp's streams wait for their reader instead).
        let (told, mut progress_told) = mpsc::unbounded_channel();
        let options = relay::progress_told_to(CallOptions::new(), progress, as_events(told));
        // Cancelled by the client's `notifications/cancelled`, or when the session ends.
        let cancelled = entry.ended.child_token();
        let in_flight = InFlight::new(entry.clone(), &call.request, &cancelled);
        let answer = async move {
            let _in_flight = in_flight;
            let registry = &self.registry;
            registry.touch(&entry).await;
            let tool_call = ToolCall {
                peer: Some(&entry.peer),
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
            let answer = traced(span, answer).await;
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
            Some(told) = progress_told.recv() => told,
            answer = &mut answer => return sse(BoxBody::new(Full::new(Bytes::from(answer)))),
            // A long call's answer begins now, as rmcp's would (a client may time out
            // waiting for the head).
            () = tokio::time::sleep(STREAM_AFTER) => String::new(),
        };
        streamed(first, answer, progress_told)
    }

    /// A 2026-07-28 call: runs it and answers as rmcp's handler would, with the answer
    /// alone as JSON, or with what the call's server told first, as an SSE stream of that
    /// and then the answer. A call cancelled by the gateway's shutdown ends unanswered.
    async fn call_stateless(
        self: Arc<Self>,
        parts: &Parts,
        call: Call,
        stateless: Stateless,
    ) -> McpResponse {
        let span = self.span(&call, None, Some(&stateless.meta.0.0), &parts.headers);
        let shared = self
            .state
            .identity
            .shared_session(&parts.headers, &parts.extensions);
        let (told, mut progress_told) = mpsc::unbounded_channel();
        let cancelled = self.shutdown.child_token();
        let answer = async move {
            let asked = modern::Asked {
                key: call.name.clone(),
                request_state: stateless.request_state.as_deref(),
                input_responses: stateless.input_responses.as_ref(),
            };
            let options = modern::call_options(
                &self.state.seal,
                &asked,
                &stateless.meta,
                CallOptions::new(),
            );
            let answer = async {
                let options = match options {
                    Ok(options) => options,
                    Err(refused) => return Some(Err(refused)),
                };
                let (progress, level) = (stateless.progress, stateless.level);
                let options = relay::told_to(options, progress, level, as_events(told));
                let tool_call = ToolCall {
                    peer: None,
                    id: &call.request,
                    cancelled: &cancelled,
                    progress: None,
                    log_level: None,
                    options,
                    modern: true,
                };
                let answer = serve_call(
                    &self.state,
                    None,
                    shared,
                    &call.name,
                    call.arguments,
                    tool_call,
                );
                Box::pin(answer).await
            };
            let answer = traced(span, answer).await?;
            // What rmcp's handler does for peers of 2026-07-28 and later.
            Some(match answer {
                Ok(response) => {
                    let mut result = ServerResult::from(response);
                    // (Nothing to fill in a call's result today: kept as rmcp's handler has it.)
                    result.fill_missing_cache_hints();
                    ServerJsonRpcMessage::response(result, call.request)
                }
                Err(mut error) => {
                    if error.code == ErrorCode::RESOURCE_NOT_FOUND {
                        error.code = ErrorCode::INVALID_PARAMS;
                    }
                    ServerJsonRpcMessage::error(error, Some(call.request))
                }
            })
        };
        let mut answer = Box::pin(answer);
        let first = tokio::select! {
            biased;
            Some(told) = progress_told.recv() => told,
            answer = &mut answer => return match answer {
                Some(answer) => json(&answer),
                None => plain_status(StatusCode::INTERNAL_SERVER_ERROR),
            },
        };
        let answer = answer.map(|answer| answer.map_or_else(String::new, |a| event(&a)));
        streamed(first, answer, progress_told)
    }
}

/// Runs a call's `answer` (`None`: cancelled) in its server `span`, which records how it
/// ended; off, just `answer`.
async fn traced(
    span: tracing::Span,
    answer: impl Future<Output = Option<Result<rmcp::model::CallToolResponse, ErrorData>>>,
) -> Option<Result<rmcp::model::CallToolResponse, ErrorData>> {
    if span.is_disabled() {
        return answer.await;
    }
    // A call dropped unanswered (its client went away) is recorded as cancelled too.
    let mut record = RecordCall(Some(span.clone()));
    let answer = answer.instrument(span).await;
    record.answered(answer.clone());
    answer
}

/// Records a call's outcome on its span once: its answer, else (dropped or cancelled) that
/// it was cancelled, as rmcp's handler records it.
struct RecordCall(Option<tracing::Span>);

impl RecordCall {
    fn answered(&mut self, answer: Option<Result<rmcp::model::CallToolResponse, ErrorData>>) {
        if let Some(span) = self.0.take() {
            let unanswered = || Err(ErrorData::internal_error("the call was cancelled", None));
            otel::record_call(&span, &answer.unwrap_or_else(unanswered));
        }
    }
}

impl Drop for RecordCall {
    fn drop(&mut self) {
        self.answered(None);
    }
}

/// An SSE stream of `first`, then what the call tells (`told`) until its `answer`, then
/// that; a comment every 15 s of quiet.
fn streamed(
    first: String,
    answer: impl Future<Output = String> + Send + 'static,
    told: mpsc::UnboundedReceiver<String>,
) -> McpResponse {
    let answer = Box::pin(answer);
    let rest = futures::stream::unfold(Some((answer, told)), |state| async move {
        let (mut answer, mut told) = state?;
        tokio::select! {
            biased;
            Some(now) = told.recv() => Some((now, Some((answer, told)))),
            // A comment now and then, as rmcp's streams have: proxies keep the
            // connection of a quiet call open.
            () = tokio::time::sleep(SSE_KEEP_ALIVE) => {
                Some((":\n\n".to_owned(), Some((answer, told))))
            }
            last = &mut answer => {
                let mut tail = String::new();
                while let Ok(now) = told.try_recv() {
                    tail.push_str(&now);
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

/// What a call tells, sent to `told` as SSE events.
fn as_events(
    told: mpsc::UnboundedSender<String>,
) -> impl Fn(ServerNotification) + Clone + Send + Sync + 'static {
    move |notice| {
        let _ = told.send(event(&ServerJsonRpcMessage::notification(notice)));
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

/// `message` as rmcp answers a 2026-07-28 request with one message: JSON, with the HTTP
/// status rmcp gives it (400 for a missing client capability, 404 for an unknown method).
/// rmcp's 400 for invalid params of a request with malformed `_meta` cannot arise: the hot
/// path serves only well-formed `_meta` (`stateless_meta`).
fn json(message: &ServerJsonRpcMessage) -> McpResponse {
    let Ok(body) = serde_json::to_vec(message) else {
        return plain_status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let status = match message {
        ServerJsonRpcMessage::Error(error) => match error.error.code {
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
            | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
            | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
            ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        },
        _ => StatusCode::OK,
    };
    let mut response = Response::new(BoxBody::new(Full::new(Bytes::from(body))));
    *response.status_mut() = status;
    let kind = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, kind);
    response
}

const MCP_SESSION_ID: &str = "mcp-session-id";
const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// How long a call may run before its answer's head is sent (then streamed): most calls
/// are answered in one body by then.
const STREAM_AFTER: Duration = Duration::from_millis(100);

/// How long a streamed answer may be quiet before a comment is sent (rmcp's default).
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `progressToken` of a session's `tools/call` `_meta`; `None` (not the hot path's)
/// when the `_meta` holds anything else (a `traceparent`, say, whose span rmcp's path reads).
fn progress_token(meta: Option<JsonObject>) -> Option<Option<ProgressToken>> {
    let Some(mut meta) = meta else {
        return Some(None);
    };
    let token = meta.remove(PROGRESS_TOKEN);
    if !meta.is_empty() {
        return None;
    }
    match token {
        None => Some(None),
        Some(token) => serde_json::from_value(token).ok().map(Some),
    }
}

const PROGRESS_TOKEN: &str = "progressToken";

/// The `_meta` keys of a 2026-07-28 request the hot path serves.
const STATELESS_META: [&str; 5] = [
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/logLevel",
    PROGRESS_TOKEN,
];

/// A 2026-07-28 request's `_meta`, with its `progressToken` and log level, when it names
/// `version` (its `MCP-Protocol-Version`) and the client's capabilities, and holds nothing
/// the hot path leaves to rmcp (any other key, or one of these malformed).
fn stateless_meta(
    meta: JsonObject,
    version: &str,
) -> Option<(
    RequestMetaObject,
    Option<ProgressToken>,
    Option<LoggingLevel>,
)> {
    if meta
        .keys()
        .any(|key| !STATELESS_META.contains(&key.as_str()))
    {
        return None;
    }
    let meta = RequestMetaObject(MetaObject(meta));
    let named = meta.protocol_version()?;
    if named.as_str() != version || meta.client_capabilities().is_none() {
        return None;
    }
    let present = |key: &str| meta.0.0.contains_key(key);
    if present(STATELESS_META[2]) && meta.client_info().is_none() {
        return None;
    }
    let level = match present(STATELESS_META[3]) {
        true => Some(meta.log_level()?),
        false => None,
    };
    let progress = match meta.0.0.get(PROGRESS_TOKEN) {
        Some(token) => Some(serde_json::from_value(token.clone()).ok()?),
        None => None,
    };
    Some((meta, progress, level))
}

/// The single value of `name` in `headers`, as text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    match values.next() {
        Some(_) => None,
        None => value.to_str().ok(),
    }
}

/// `Accept` and `Content-Type` as rmcp takes them without a word.
fn plain_media(headers: &HeaderMap) -> bool {
    // A single `Accept` of plain media types (any parameter, a weight say, is left to
    // rmcp's own reading), naming both.
    let accepts = match single(headers, header::ACCEPT.as_str()) {
        Some(accept) if !accept.contains([';', '"']) => {
            let types = || accept.split(',').map(str::trim);
            let json = types().any(|t| t.eq_ignore_ascii_case("application/json"));
            json && types().any(|t| t.eq_ignore_ascii_case("text/event-stream"))
        }
        _ => false,
    };
    let json = match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        Some(Ok(kind)) => kind
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
        _ => false,
    };
    accepts && json
}

/// Whether `version` is a revision rmcp knows.
fn known(version: &str) -> bool {
    ProtocolVersion::KNOWN_VERSIONS
        .iter()
        .any(|known| known.as_str() == version)
}

/// A session request's `MCP-Protocol-Version` (if any) names a known revision before
/// 2026-07-28 (whose requests carry what the hot path leaves to rmcp).
fn classic_version(headers: &HeaderMap) -> bool {
    match headers.get(MCP_PROTOCOL_VERSION).map(HeaderValue::to_str) {
        None => true,
        Some(Ok(version)) => version < ProtocolVersion::V_2026_07_28.as_str() && known(version),
        Some(Err(_)) => false,
    }
}

/// A 2026-07-28 `tools/call`'s headers as rmcp takes them without a word: a known revision
/// from 2026-07-28 on, `Mcp-Method: tools/call`, each once, and no `Mcp-Param-*` header.
fn stateless_headers(headers: &HeaderMap) -> bool {
    let modern = single(headers, MCP_PROTOCOL_VERSION)
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28.as_str() && known(version));
    modern
        && single(headers, "mcp-method") == Some("tools/call")
        && !headers
            .keys()
            .any(|key| key.as_str().starts_with("mcp-param-"))
}

/// Whether a property of `properties`, or of theirs, down `properties` chains, is
/// annotated `x-mcp-header` (as rmcp reads a tool's schema).
fn header_params(properties: Option<&serde_json::Value>) -> bool {
    let Some(serde_json::Value::Object(properties)) = properties else {
        return false;
    };
    properties.values().any(|property| {
        property.get("x-mcp-header").is_some() || header_params(property.get("properties"))
    })
}

/// Whether the request's `Mcp-Name` is `name` itself, once (a Base64-wrapped one is rmcp's
/// to read).
fn named_in_headers(headers: &HeaderMap, name: &str) -> bool {
    single(headers, "mcp-name").is_some_and(|named| named == name && !named.starts_with("=?"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const MODERN: [(&str, &str); 2] = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
    ];

    #[test]
    fn only_a_2026_tools_call_with_its_headers_once_is_taken_without_a_session() {
        assert!(stateless_headers(&headers(&MODERN)));
        let classic = [("mcp-protocol-version", "2025-11-25"), MODERN[1]];
        let unknown = [("mcp-protocol-version", "2099-01-01"), MODERN[1]];
        let listed = [MODERN[0], ("mcp-method", "tools/list")];
        let twice = [MODERN[0], MODERN[1], MODERN[1]];
        let param = [MODERN[0], MODERN[1], ("mcp-param-region", "eu")];
        for refused in [
            &classic[..],
            &unknown,
            &listed,
            &twice,
            &param,
            &MODERN[..1],
        ] {
            assert!(!stateless_headers(&headers(refused)), "{refused:?}");
        }
    }

    #[test]
    fn mcp_name_must_be_the_tool_s_own_plainly() {
        assert!(named_in_headers(
            &headers(&[("mcp-name", "kit__echo")]),
            "kit__echo"
        ));
        for refused in [
            &[("mcp-name", "kit__add")][..],
            &[("mcp-name", "=?base64?a2l0X19lY2hv?=")],
            &[("mcp-name", "kit__echo"), ("mcp-name", "kit__echo")],
            &[],
        ] {
            assert!(
                !named_in_headers(&headers(refused), "kit__echo"),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn x_mcp_header_parameters_are_found_down_properties_chains() {
        let found = |schema: serde_json::Value| header_params(schema.get("properties"));
        assert!(found(
            json!({"properties": {"region": {"x-mcp-header": "Region"}}})
        ));
        let nested = json!({"properties": {"where": {"properties": {
            "region": {"type": "string", "x-mcp-header": "Region"}}}}});
        assert!(found(nested));
        assert!(!found(
            json!({"properties": {"region": {"type": "string"}}})
        ));
        assert!(!found(json!({"type": "object"})));
    }

    fn meta(extra: serde_json::Value) -> JsonObject {
        let mut meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        for (key, value) in extra.as_object().unwrap() {
            meta[key] = value.clone();
        }
        meta.as_object().unwrap().clone()
    }

    #[test]
    fn a_2026_meta_is_the_hot_path_s_when_it_holds_only_what_it_serves() {
        let served = meta(json!({
            "io.modelcontextprotocol/clientInfo": {"name": "c", "version": "1"},
            "io.modelcontextprotocol/logLevel": "warning",
            "progressToken": 7,
        }));
        let (_, progress, level) = stateless_meta(served, "2026-07-28").expect("served");
        assert_eq!(
            progress,
            Some(ProgressToken(rmcp::model::NumberOrString::Number(7)))
        );
        assert_eq!(level, Some(LoggingLevel::Warning));
        assert!(stateless_meta(meta(json!({})), "2026-07-28").is_some());
        // Another revision than the header's, no capabilities, a malformed level, a key
        // rmcp's path reads (a trace's parent): rmcp's.
        assert!(stateless_meta(meta(json!({})), "2026-08-01").is_none());
        let mut bare = meta(json!({}));
        bare.remove("io.modelcontextprotocol/clientCapabilities");
        assert!(stateless_meta(bare, "2026-07-28").is_none());
        let loud = meta(json!({"io.modelcontextprotocol/logLevel": "loud"}));
        assert!(stateless_meta(loud, "2026-07-28").is_none());
        let traced =
            meta(json!({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}));
        assert!(stateless_meta(traced, "2026-07-28").is_none());
    }
}
