//! `/mcp`: the hub as one MCP server, over rmcp's Streamable HTTP server.
//!
//! rmcp serves both lifecycles on one endpoint: a 2025-11-25 client's `initialize` makes a
//! session (`Mcp-Session-Id`, one [`DownstreamSession`] handler for its length, ended by
//! `DELETE` or rmcp's keep-alive expiry); a 2026-07-28 request is served on its own (a
//! handler per request). Each handler is thin over the engine: `tools/list` is the hub's
//! catalogue as the request's session sees it ([`Hub::catalog_in`]: a `per_session` server
//! with a private list shows the session its own), `tools/call` is [`Hub::call_in`] under the request's engine
//! [`Session`] (see [`crate::identity`]), resources and prompts likewise; errors follow
//! [`crate::errors`].
//!
//! A session's handler follows the hub's events and tells its client
//! `notifications/tools/list_changed` (and the resources and prompts ones) when the
//! catalogue changes; a 2026-07-28 client hears the same on its `subscriptions/listen`
//! stream. When the session ends the handler is dropped, which stops that and
//! ends the session's own upstream connections ([`Hub::end_session`]).
//!
//! A session's tool call is relayed both ways (`relay.rs`): what its upstream asks goes to
//! this client, the call's progress and its server's log messages too (at the level the
//! client set), and the client's cancellation stops the call.
//! The same handler serves legacy SSE sessions (`crate::sse`).

mod convert;
mod hot;
mod modern;
mod relay;
mod sessions;

pub(crate) use hot::HotPath;
pub use modern::RequestStateSeal;
pub use relay::UpstreamOffers;
pub use sessions::{HotSessions, LocalBacked, Registry};

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, InitializeRequestParams, InitializeResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressToken, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, RequestId,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
#[allow(deprecated)] // logging (SEP-2577): clients of older revisions still set a level
use rmcp::model::{LoggingLevel, SetLevelRequestParams};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use switchboard::{
    CallOptions, CallStep, Error, Hub, HubEvent, JsonObject, RequestStep, Session, SessionClose,
    SubscribedResource,
};

use relay::{CallNotices, Relay};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use crate::errors::{McpFailure, McpRequest, to_mcp};
use crate::metrics::{call_error_type, error_type};
use crate::otel;
use crate::scale::OwnSessionId;
use crate::scale::token::{Token, now};
use crate::state::GatewayState;
use rmcp::transport::streamable_http_server::session::SessionRestoreMarker;
use switchboard_redis::SessionRecord;

/// How long a new session's `initialize` waits for its record to be written (`[scale]`).
const RECORD_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// The handler of one downstream session (2025-11-25) or one request (2026-07-28).
pub struct DownstreamSession {
    state: Arc<GatewayState>,
    /// Set by `initialize`: the session's own engine session. Unset for requests served
    /// without a session, which take theirs from their own headers.
    own: OnceLock<Session>,
    /// Set when the session's id is sealed (`[scale]`, `/mcp`): it may live on other
    /// replicas, so only its client's `DELETE` ends it upstream.
    sealed: std::sync::atomic::AtomicBool,
    /// Stops the list_changed forwarding when the session ends.
    ended: CancellationToken,
    /// The resources this client subscribed to, by the URI it used, with where each
    /// subscription went: their updates are told to it, and they end with the session.
    subscribed: Subscribed,
    /// The least level of the log messages relayed to the client (`logging/setLevel`).
    /// Shared with the hot path's view of the session (`hot.rs`).
    #[allow(deprecated)] // logging (SEP-2577): clients still set a level
    log_level: Arc<std::sync::Mutex<Option<LoggingLevel>>>,
}

impl DownstreamSession {
    pub fn new(state: Arc<GatewayState>) -> DownstreamSession {
        DownstreamSession {
            state,
            own: OnceLock::new(),
            sealed: std::sync::atomic::AtomicBool::new(false),
            ended: CancellationToken::new(),
            subscribed: Subscribed::default(),
            log_level: Arc::default(),
        }
    }

    fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// The engine session this request runs in.
    fn session(&self, context: &RequestContext<RoleServer>) -> Option<Session> {
        if let Some(own) = self.own.get() {
            return Some(own.clone());
        }
        let parts = context.extensions.get::<Parts>()?;
        self.state
            .identity
            .shared_session(&parts.headers, &parts.extensions)
    }

    /// With `[scale]`: the session's engine session, named by its sealed id (the same on
    /// every replica), with the `initialize` request's variables. A new session's record
    /// is written to the store first (the handshake fails if it cannot be: no other replica
    /// could serve the session); a session restored from its record takes the variables it
    /// remembered when the request carries none.
    async fn sealed_session(
        &self,
        request: &InitializeRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<Session>, ErrorData> {
        let Some(scale) = self.state.scale.as_ref() else {
            return Ok(None);
        };
        let Some(own) = context.extensions.get::<OwnSessionId>() else {
            return Ok(None);
        };
        let Ok(token) = Token::open(&scale.ring, &own.0, now()) else {
            return Ok(None);
        };
        let engine_id = token.engine_id();
        let parts = context.extensions.get::<Parts>();
        let mut variables = parts
            .map(|p| self.state.identity.variables(&p.headers, &p.extensions))
            .unwrap_or_default();
        let restored = context.extensions.get::<SessionRestoreMarker>().is_some();
        let remembered = scale.take_remembered(&engine_id);
        if restored {
            if variables.is_empty() {
                variables = remembered.unwrap_or_default();
            }
        } else if let Some(store) = &scale.store {
            let record = SessionRecord {
                init: serde_json::to_value(request).unwrap_or_default(),
                binding: token.binding.to_vec(),
                variables: scale.remember_variables.then(|| variables.clone()),
            };
            let saved = tokio::time::timeout(RECORD_BUDGET, store.save(&engine_id, &record));
            let failure = match saved.await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some(format!("no answer within {RECORD_BUDGET:?}")),
            };
            if let Some(failure) = failure {
                tracing::warn!(%failure, "a new session's record cannot be written; refusing it");
                return Err(ErrorData::internal_error(
                    format!(
                        "session store unavailable: the session could not be recorded for the \
                         other replicas ({failure}); try again shortly"
                    ),
                    None,
                ));
            }
        }
        scale.hold(&engine_id, own.0.clone());
        self.sealed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(Session::new(engine_id, variables)))
    }

    /// The server span of the request of `context` (`crate::otel::server_span`); a
    /// disabled span, built from nothing, unless traces are exported.
    fn server_span(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
        target: Option<&str>,
    ) -> tracing::Span {
        if !otel::tracing_on() {
            return tracing::Span::none();
        }
        let headers = context.extensions.get::<Parts>().map(|p| &p.headers);
        let session = headers
            .and_then(|h| h.get("mcp-session-id"))
            .and_then(|v| v.to_str().ok());
        otel::server_span(&otel::ServerRequest {
            method,
            target,
            session,
            request_id: Some(&context.id),
            meta: Some(&context.meta.0.0),
            headers,
            protocol: None,
        })
    }

    /// Refuses a new call while the gateway drains (calls in flight are counted by their
    /// HTTP request, see [`crate::drain`]).
    fn enter(&self) -> Result<(), Error> {
        match self.state.drain.is_draining() {
            true => Err(crate::drain::shutting_down()),
            false => Ok(()),
        }
    }
}

impl Drop for DownstreamSession {
    fn drop(&mut self) {
        self.ended.cancel();
        let subscribed: Vec<String> = lock(&self.subscribed).keys().cloned().collect();
        let own = self.own.get().cloned();
        if !subscribed.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // The session's subscriptions end with it (the upstream keeps the others').
            let hub = self.state.hub.clone();
            runtime.spawn(async move {
                for uri in subscribed {
                    let _ = hub.unsubscribe_resource_in(own.as_ref(), &uri, None).await;
                }
            });
        }
        let Some(session) = self.own.take() else {
            return;
        };
        self.state.metrics.session_ended();
        tracing::debug!(session = %session.id, "downstream session ended");
        let hub = self.state.hub.clone();
        // With `[scale]`, only a session its client DELETEd ends upstream; one that expired
        // here or whose replica shuts down detaches: another replica may serve it on.
        let sealed = self.sealed.load(std::sync::atomic::Ordering::Relaxed);
        let mode = match &self.state.scale {
            // (A legacy `/sse` session is this replica's alone: it ends as before.)
            Some(scale) if sealed => {
                scale.forget_local(&session.id);
                match scale.take_ended(&session.id) {
                    true => SessionClose::End,
                    false => SessionClose::Detach,
                }
            }
            _ => SessionClose::End,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let closed = hub.close_session(&session.id, mode).await;
                tracing::debug!(session = %session.id, ?mode, closed, "the session's upstream connections closed");
            });
        }
    }
}

impl ServerHandler for DownstreamSession {
    #[allow(deprecated)] // logging (SEP-2577), see `set_level`
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_logging()
            .build();
        ServerConfig::new(capabilities).with_server_info(Implementation::new(
            "switchboard",
            env!("CARGO_PKG_VERSION"),
        ))
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        let http = context
            .extensions
            .get::<Parts>()
            .map(|p| (&p.headers, &p.extensions));
        let session = match self.sealed_session(&request, &context).await? {
            Some(session) => session,
            None => self.state.identity.own_session(http),
        };
        tracing::debug!(session = %session.id, "downstream session started");
        let negotiated = self.negotiate_initialize(&request);
        // A Streamable HTTP session (not a legacy SSE one) may be served by the hot path.
        if let (Some(tag), Ok(agreed)) = (
            context.extensions.get::<sessions::SessionTag>(),
            &negotiated,
        ) {
            let declared = &request.capabilities;
            // The revision agreed on (rmcp's client asks for a later one than it gets).
            let plain = declared.elicitation.is_none()
                && declared.sampling.is_none()
                && declared.roots.is_none()
                && agreed.protocol_version.as_str() < ProtocolVersion::V_2026_07_28.as_str();
            let level = self.log_level.clone();
            let (peer, ended) = (context.peer.clone(), self.ended.clone());
            tag.register(session.clone(), peer, plain, level, ended);
        }
        if self.own.set(session).is_ok() {
            self.state.metrics.session_started();
        }
        context.peer.set_peer_info(request);
        negotiated
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let events = self.hub().subscribe();
        let ended = self.ended.clone();
        let subscribed = self.subscribed.clone();
        tokio::spawn(forward_changes(events, context.peer, ended, subscribed));
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::default();
        accepted.tools_list_changed = requested.tools_list_changed;
        accepted.resources_list_changed = requested.resources_list_changed;
        accepted.prompts_list_changed = requested.prompts_list_changed;
        Some(accepted)
    }

    /// `subscriptions/listen` (2026-07-28 clients hear of changes only here): the hub's
    /// changes of the kinds the stream accepted, until the client cancels it or the
    /// gateway drains (the stream then ends gracefully).
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let mut events = self.hub().subscribe();
        let sink = subscription.sink();
        let accepted = sink.accepted().clone();
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = subscription.cancelled() => return Ok(()),
                () = self.state.drain.started() => return Ok(()),
            };
            let sent = match event {
                Ok(HubEvent::CatalogChanged { .. })
                | Err(broadcast::error::RecvError::Lagged(_))
                    if accepted.tools_list_changed == Some(true) =>
                {
                    sink.notify_tool_list_changed().await
                }
                Ok(HubEvent::ResourcesChanged { .. })
                    if accepted.resources_list_changed == Some(true) =>
                {
                    sink.notify_resource_list_changed().await
                }
                Ok(HubEvent::PromptsChanged { .. })
                    if accepted.prompts_list_changed == Some(true) =>
                {
                    sink.notify_prompt_list_changed().await
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
            };
            if sent.is_err() {
                return Ok(());
            }
        }
    }

    /// `logging/setLevel`: the session's calls relay their servers' log messages at this
    /// level and above (see [`CallNotices`]). The gateway sends no log messages of its own,
    /// and the level is not passed upstream (a connection may be shared by sessions that
    /// set different levels).
    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *lock(&self.log_level) = Some(request.level);
        Ok(())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let span = self.server_span(&context, "tools/list", None);
        traced(span, record_failure, async move {
            // The session's catalogue: a per_session server with a private list shows its own.
            let started = Instant::now();
            let session = self.session(&context);
            let catalog = Box::pin(self.hub().catalog_in(session.as_ref())).await;
            let metrics = &self.state.metrics;
            metrics.served("tools/list", None, started, error_type(&catalog));
            let catalog = match catalog {
                Ok(catalog) => catalog,
                Err(error) => return Err(rpc_error(&error, McpRequest::ListTools)),
            };
            let tools = catalog.tools().iter().map(|t| convert::tool(t)).collect();
            Ok(ListToolsResult::with_all_items(tools))
        })
        .await
    }

    /// The tool `name` as the catalogue exposes it, from which rmcp checks a 2026-07-28
    /// call's `Mcp-Param-*` headers against the tool's `x-mcp-header` parameters (SEP-2243).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.hub()
            .catalog()
            .get(name)
            .map(|tool| convert::tool(tool))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let span = self.server_span(&context, "tools/call", Some(&request.name));
        traced(span, otel::record_call, async move {
            // A 2026-07-28 client answers what its upstream asks itself (`modern.rs`).
            let modern = self.own.get().is_none() && modern::is_modern(&context.meta);
            let options = match modern {
                true => modern::call_options(
                    &self.state.seal,
                    &modern::Asked::tool(&request),
                    &context.meta,
                    CallOptions::new(),
                )?,
                false => CallOptions::new(),
            };
            let shared = match self.own.get() {
                Some(_) => None,
                None => self.session(&context),
            };
            let call = ToolCall {
                peer: Some(&context.peer),
                id: &context.id,
                cancelled: &context.ct,
                progress: context.meta.get_progress_token(),
                // A 2026-07-28 client sets the level per request.
                log_level: match modern {
                    true => context.meta.log_level(),
                    false => *lock(&self.log_level),
                },
                options,
                modern,
            };
            let answer = serve_call(
                &self.state,
                self.own.get(),
                shared,
                &request.name,
                request.arguments,
                call,
            );
            match Box::pin(answer).await {
                Some(answer) => answer,
                // The client cancelled (or went away): the call was dropped, which cancels
                // it upstream; rmcp sends no answer.
                None => Err(ErrorData::internal_error("the call was cancelled", None)),
            }
        })
        .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let span = self.server_span(&context, "resources/list", None);
        traced(span, record_failure, async move {
            let started = Instant::now();
            let session = self.session(&context);
            let listing = Box::pin(self.hub().resources_in(session.as_ref())).await;
            let metrics = &self.state.metrics;
            metrics.served("resources/list", None, started, None);
            let items = listing.items.iter().map(convert::resource);
            Ok(ListResourcesResult::with_all_items(
                items.collect::<Result<_, _>>()?,
            ))
        })
        .await
    }

    /// `resources/subscribe`: forwarded to the server the URI reads from, on this session's
    /// connection for a `per_session` server (see `switchboard`'s `hub/subscriptions.rs`).
    #[allow(deprecated)] // resources/subscribe: 2025-11-25 clients subscribe so
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let span = self.server_span(&context, "resources/subscribe", None);
        traced(span, record_failure, async move {
            if lock(&self.subscribed).contains_key(&request.uri) {
                return Ok(());
            }
            let session = self.session(&context);
            let hub = self.hub();
            let result = Box::pin(hub.subscribe_resource_in(session.as_ref(), &request.uri, None));
            let subscribed = result
                .await
                .map_err(|e| rpc_error(&e, McpRequest::ReadResource))?;
            let earlier = lock(&self.subscribed).insert(request.uri.clone(), subscribed);
            if earlier.is_some() {
                // Subscribed meanwhile by a request of its own: one subscription is enough.
                let result =
                    Box::pin(hub.unsubscribe_resource_in(session.as_ref(), &request.uri, None));
                let _ = result.await;
            }
            Ok(())
        })
        .await
    }

    /// `resources/unsubscribe`, like [`DownstreamSession::subscribe`].
    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let span = self.server_span(&context, "resources/unsubscribe", None);
        traced(span, record_failure, async move {
            if lock(&self.subscribed).remove(&request.uri).is_none() {
                return Ok(()); // Not subscribed: nothing to end.
            }
            let session = self.session(&context);
            let hub = self.hub();
            let result =
                Box::pin(hub.unsubscribe_resource_in(session.as_ref(), &request.uri, None));
            result
                .await
                .map_err(|e| rpc_error(&e, McpRequest::ReadResource))
        })
        .await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let span = self.server_span(&context, "resources/templates/list", None);
        traced(span, record_failure, async move {
            let started = Instant::now();
            let session = self.session(&context);
            let listing = Box::pin(self.hub().resource_templates_in(session.as_ref())).await;
            let metrics = &self.state.metrics;
            metrics.served("resources/templates/list", None, started, None);
            let items = listing.items.iter().map(convert::resource_template);
            Ok(ListResourceTemplatesResult::with_all_items(
                items.collect::<Result<_, _>>()?,
            ))
        })
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let span = self.server_span(&context, "resources/read", None);
        traced(span, record_failure, async move {
            let started = Instant::now();
            let session = self.session(&context);
            let asked = modern::Asked::read(&request);
            let options = self.request_options(&asked, &context)?;
            let result = match self.enter() {
                Ok(()) => {
                    Box::pin(
                        self.hub()
                            .read_resource_step(session.as_ref(), &request.uri, options),
                    )
                    .await
                }
                Err(closed) => Err(closed),
            };
            let metrics = &self.state.metrics;
            metrics.served("resources/read", None, started, error_type(&result));
            match result {
                Ok(RequestStep::Done(read)) => Ok(convert::read_result(&read)?.into()),
                Ok(RequestStep::InputRequired(handed)) => {
                    Ok(modern::input_required(&self.state.seal, &asked.key, handed)?.into())
                }
                Err(error) => Err(self.request_error(&error, McpRequest::ReadResource, &context)),
            }
        })
        .await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let span = self.server_span(&context, "prompts/list", None);
        traced(span, record_failure, async move {
            let started = Instant::now();
            let session = self.session(&context);
            let listing = Box::pin(self.hub().prompts_in(session.as_ref())).await;
            let metrics = &self.state.metrics;
            metrics.served("prompts/list", None, started, None);
            let items = listing.items.iter().map(convert::prompt);
            Ok(ListPromptsResult::with_all_items(
                items.collect::<Result<_, _>>()?,
            ))
        })
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let span = self.server_span(&context, "prompts/get", Some(&request.name));
        traced(span, record_failure, async move {
            let started = Instant::now();
            let session = self.session(&context);
            let asked = modern::Asked::prompt(&request);
            let options = self.request_options(&asked, &context)?;
            let arguments = request.arguments.clone();
            let result = match self.enter() {
                Ok(()) => {
                    Box::pin(self.hub().get_prompt_step(
                        session.as_ref(),
                        &request.name,
                        arguments,
                        options,
                    ))
                    .await
                }
                Err(closed) => Err(closed),
            };
            let metrics = &self.state.metrics;
            metrics.served("prompts/get", None, started, error_type(&result));
            match result {
                Ok(RequestStep::Done(outcome)) => Ok(convert::prompt_result(&outcome)?.into()),
                Ok(RequestStep::InputRequired(handed)) => {
                    Ok(modern::input_required(&self.state.seal, &asked.key, handed)?.into())
                }
                Err(error) => Err(self.request_error(&error, McpRequest::GetPrompt, &context)),
            }
        })
        .await
    }
}

impl DownstreamSession {
    /// Whether `context` is a 2026-07-28 client's request (served without a session),
    /// which answers what its upstream asks itself (`modern.rs`).
    fn is_modern(&self, context: &RequestContext<RoleServer>) -> bool {
        self.own.get().is_none() && modern::is_modern(&context.meta)
    }

    /// The options of a resource read or prompt get: a 2026-07-28 client's are handed its
    /// upstream's input-required results, and its retry resumes (`modern.rs`).
    fn request_options(
        &self,
        asked: &modern::Asked<'_>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallOptions, ErrorData> {
        match self.is_modern(context) {
            true => {
                modern::call_options(&self.state.seal, asked, &context.meta, CallOptions::new())
            }
            false => Ok(CallOptions::new()),
        }
    }

    /// The JSON-RPC error for a failed read or prompt get (a 2026-07-28 upstream's refusal
    /// for want of a client capability passed on as it came).
    fn request_error(
        &self,
        error: &Error,
        request: McpRequest,
        context: &RequestContext<RoleServer>,
    ) -> ErrorData {
        match modern::missing_capability(error).filter(|_| self.is_modern(context)) {
            Some(refused) => refused,
            None => rpc_error(error, request),
        }
    }
}

/// What one downstream `tools/call` brings besides the tool and its arguments.
pub(crate) struct ToolCall<'a> {
    /// The client's side of its session: what the call's server asks and tells goes there.
    /// `None` for a call whose options carry where its notices go (`hot.rs`, 2026-07-28).
    pub peer: Option<&'a Peer<RoleServer>>,
    /// The client's request.
    pub id: &'a RequestId,
    /// Cancelled when the client cancels the request (or goes away).
    pub cancelled: &'a CancellationToken,
    /// The request's `progressToken`, if any: the call's progress is told under it.
    pub progress: Option<ProgressToken>,
    /// The least level of the server's log messages relayed (`logging/setLevel`, or a
    /// 2026-07-28 request's `_meta` `logLevel`).
    #[allow(deprecated)] // logging (SEP-2577): clients of older revisions still set a level
    pub log_level: Option<LoggingLevel>,
    pub options: CallOptions,
    /// A 2026-07-28 request (`modern.rs`).
    pub modern: bool,
}

/// One downstream `tools/call`, answered: refused while draining, else run by the engine
/// in the client's session (`own`, with a [`Relay`] to its client; else `shared`, the
/// session its headers name), with what the server tells relayed ([`CallNotices`]),
/// measured, and turned into MCP's answer. `None` when the client cancelled first.
///
/// rmcp's pipeline (`call_tool`) and the hot path (`hot.rs`) both answer with it.
pub(crate) async fn serve_call(
    state: &GatewayState,
    own: Option<&Session>,
    shared: Option<Session>,
    name: &str,
    arguments: Option<JsonObject>,
    call: ToolCall<'_>,
) -> Option<Result<CallToolResponse, ErrorData>> {
    let started = Instant::now();
    let modern = call.modern;
    let result = match state.drain.is_draining() {
        false => run_call(state, own, shared, name, arguments, call).await?,
        true => Err(crate::drain::shutting_down()),
    };
    let metrics = &state.metrics;
    let result = match result {
        Ok(CallStep::InputRequired(asked)) => {
            metrics.served("tools/call", Some(name), started, None);
            return Some(modern::input_required(&state.seal, name, asked).map(Into::into));
        }
        Ok(CallStep::Done(outcome)) => Ok(outcome),
        Err(error) => Err(error),
    };
    metrics.served("tools/call", Some(name), started, call_error_type(&result));
    Some(match result {
        Ok(outcome) => convert::call_result(&outcome).map(Into::into),
        Err(error) => {
            if let Some(refused) = modern::missing_capability(&error).filter(|_| modern) {
                return Some(Err(refused));
            }
            match to_mcp(&error, McpRequest::CallTool) {
                McpFailure::ToolResult(result) => Ok(result.into()),
                McpFailure::Rpc(error) => Err(error),
            }
        }
    })
}

/// Runs a tool call for the client of `call`: what its server asks goes to that client (a
/// session's calls only: [`relay`]), its progress too when the request has a
/// `progressToken`. `None` when the client cancelled the request first. A 2026-07-28
/// client's `options` hand input-required results back to it (`modern.rs`).
async fn run_call(
    state: &GatewayState,
    own: Option<&Session>,
    shared: Option<Session>,
    name: &str,
    arguments: Option<JsonObject>,
    call: ToolCall<'_>,
) -> Option<Result<CallStep, Error>> {
    // Questions for the client end with its request (answered or cancelled).
    let over = call.cancelled.child_token();
    let _over_on_return = over.clone().drop_guard();
    let session = match (own, call.peer) {
        (Some(own), Some(peer)) => {
            let relay = Relay::new(peer.clone(), call.id.clone(), over.clone());
            Some(own.clone().with_input_handler(relay))
        }
        // (Not made: only 2026-07-28 calls come without a peer, and those have no session.)
        (Some(own), None) => Some(own.clone()),
        (None, _) => shared,
    };
    let (mut notices, options) = CallNotices::new(
        call.peer.cloned(),
        call.progress,
        call.log_level,
        call.options,
    );
    // The engine's futures are boxed in every handler: they are large, and rmcp moves
    // the handler's future (which would hold them inline) into a task per request,
    // copying all of it.
    let mut running = Box::pin(
        state
            .hub
            .call_step(session.as_ref(), name, arguments, options),
    );
    let result = loop {
        tokio::select! {
            result = &mut running => break result,
            notice = notices.next() => notices.tell(notice).await,
            () = call.cancelled.cancelled() => return None,
        }
    };
    notices.flush().await;
    Some(result)
}

/// Runs a request's `work` in its server `span` (`crate::otel`), then records how it was
/// answered with `record`; off, just `work`.
async fn traced<T>(
    span: tracing::Span,
    record: fn(&tracing::Span, &Result<T, ErrorData>),
    work: impl Future<Output = Result<T, ErrorData>>,
) -> Result<T, ErrorData> {
    if span.is_disabled() {
        return work.await;
    }
    let answer = work.instrument(span.clone()).await;
    record(&span, &answer);
    answer
}

/// `error.type` of a request other than `tools/call`: its JSON-RPC error code.
fn record_failure<T>(span: &tracing::Span, answer: &Result<T, ErrorData>) {
    if let Err(error) = answer {
        otel::record_rpc_error(span, error);
    }
}

/// A JSON-RPC error for a request that has no `isError` result form.
fn rpc_error(error: &Error, request: McpRequest) -> ErrorData {
    match to_mcp(error, request) {
        McpFailure::Rpc(error) => error,
        McpFailure::ToolResult(_) => unreachable!("only tool calls answer with results"),
    }
}

/// A session's resource subscriptions: the URI its client subscribed with, and where the
/// subscription went.
type Subscribed = Arc<std::sync::Mutex<HashMap<String, SubscribedResource>>>;

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Tells `peer` of every catalogue change until the session ends (or its client is gone).
/// A burst of changes (or events missed while lagging) is one notification per kind. An
/// update of a resource the client `subscribed` to is told with the URI it subscribed with.
async fn forward_changes(
    mut events: broadcast::Receiver<HubEvent>,
    peer: Peer<RoleServer>,
    ended: CancellationToken,
    subscribed: Subscribed,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = ended.cancelled() => return,
        };
        let sent = match event {
            Ok(HubEvent::CatalogChanged { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                peer.notify_tool_list_changed().await
            }
            Ok(HubEvent::ResourcesChanged { .. }) => peer.notify_resource_list_changed().await,
            Ok(HubEvent::PromptsChanged { .. }) => peer.notify_prompt_list_changed().await,
            Ok(HubEvent::ResourceUpdated { server, uri }) => {
                let updated = SubscribedResource { server, uri };
                let uris: Vec<String> = lock(&subscribed)
                    .iter()
                    .filter(|(_, to)| **to == updated)
                    .map(|(uri, _)| uri.clone())
                    .collect();
                let mut told = Ok(());
                for uri in uris {
                    let params = ResourceUpdatedNotificationParam::new(uri);
                    told = told.and(peer.notify_resource_updated(params).await);
                }
                told
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if sent.is_err() || peer.is_transport_closed() {
            return;
        }
    }
}
