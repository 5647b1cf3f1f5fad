//! What upstream servers ask in the middle of a call, asked of the downstream client that
//! made the call; and the call's progress and its server's log messages, told to it
//! ([`CallNotices`]).
//!
//! A downstream tool call runs with a [`Relay`] as its engine session's input handler
//! ([`switchboard::Session::with_input_handler`]): an upstream's `elicitation/create` (form
//! or URL mode) and `sampling/createMessage` for that call become the same requests to the
//! downstream client, on the downstream request's own response stream, and the client's
//! answer goes back upstream. What the client did not declare at `initialize` is not asked
//! of it: a form is answered by the server's `elicitation` policy, a URL or a sampling
//! request is declined. `roots/list` is asked of a client that declared roots; others'
//! calls get the server's configured `roots`. (A client's `notifications/roots/list_changed`
//! is not passed on: upstream connections may be shared, and servers ask again per call.)
//!
//! The engine routes a server's request to the call it belongs to when the transport says
//! which one (Streamable HTTP); over stdio or SSE with calls of several sessions in flight
//! on one shared connection it cannot tell, and the hub's handler answers:
//! [`UpstreamOffers`], the server's policy.
//!
//! A 2026-07-28 downstream client is served without a session, and the gateway cannot send
//! it requests (it would take input-required results, which the engine answers itself);
//! its calls are answered by the policy too.
//!
//! Sampling and roots are deprecated by SEP-2577 (rmcp marks their types so) but still
//! asked for.
#![allow(deprecated)]

use rmcp::model::{
    ClientResult, CreateMessageRequest, CreateMessageRequestParams, ElicitRequest,
    ElicitRequestParams, ElicitationAction, GetExtensions, ListRootsRequest, LoggingLevel,
    LoggingMessageNotificationParam, Notification, ProgressNotificationParam, ProgressToken,
    RequestId, ServerNotification, ServerRequest,
};
use rmcp::service::{OriginatingRequestId, PeerRequestOptions};
use rmcp::{Peer, RoleServer};
use serde_json::Value;
use switchboard::CallOptions;
use switchboard::interaction::{
    BoxFuture, CallProgress, ElicitAnswer, ElicitMode, ElicitRequest as AskedInput, InputHandler,
    LogMessage, Root, SamplingAnswer, SamplingRequest,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The hub's input handler in a gateway: upstream connections (made once, shared by every
/// downstream session) offer servers form and URL elicitation and sampling, since a
/// downstream client may answer them; what no downstream client answers gets the server's
/// `elicitation` policy (forms) or a refusal (URLs, sampling).
///
/// Build the hub a gateway serves with it: `Hub::builder().input_handler(UpstreamOffers)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamOffers;

impl InputHandler for UpstreamOffers {
    fn answers_form_elicitation(&self) -> bool {
        false
    }

    fn answers_url_elicitation(&self) -> bool {
        true
    }

    fn answers_sampling(&self) -> bool {
        true
    }

    /// Offered so a client's roots can be asked for; the hub's answer is the configured ones.
    fn answers_roots(&self) -> bool {
        true
    }
}

/// One downstream call's input handler: asks the downstream client (see the module docs).
pub(crate) struct Relay {
    peer: Peer<RoleServer>,
    /// The downstream request the call serves: the client's requests ride its stream.
    request: RequestId,
    /// Cancelled when that request is over (answered or cancelled): a question still
    /// waiting for the client's answer then gets none.
    over: CancellationToken,
}

impl Relay {
    pub(crate) fn new(
        peer: Peer<RoleServer>,
        request: RequestId,
        over: CancellationToken,
    ) -> Relay {
        Relay {
            peer,
            request,
            over,
        }
    }

    /// What the client declared it answers, from its `initialize` (none without one).
    fn declared(&self) -> Declared {
        let Some(info) = self.peer.peer_info() else {
            return Declared::default();
        };
        let capabilities = &info.capabilities;
        let elicitation = capabilities.elicitation.as_ref();
        Declared {
            // `elicitation: {}` is form mode (the 2025-06-18 shape).
            form: elicitation.is_some_and(|e| e.form.is_some() || e.url.is_none()),
            url: elicitation.is_some_and(|e| e.url.is_some()),
            sampling: capabilities.sampling.is_some(),
            roots: capabilities.roots.is_some(),
        }
    }

    /// Sends `request` to the client on the call's stream; its answer.
    async fn ask(&self, mut request: ServerRequest) -> Option<ClientResult> {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(self.request.clone()));
        let sent = self
            .peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await;
        match sent {
            Ok(handle) => {
                let answer = tokio::select! {
                    answer = handle.await_response() => answer,
                    () = self.over.cancelled() => return None,
                };
                answer
                    .inspect_err(|e| tracing::debug!(%e, "the downstream client did not answer"))
                    .ok()
            }
            Err(error) => {
                tracing::debug!(%error, "cannot ask the downstream client");
                None
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Declared {
    form: bool,
    url: bool,
    sampling: bool,
    roots: bool,
}

impl InputHandler for Relay {
    fn answers_form_elicitation(&self) -> bool {
        self.declared().form
    }

    fn answers_url_elicitation(&self) -> bool {
        self.declared().url
    }

    fn answers_sampling(&self) -> bool {
        self.declared().sampling
    }

    fn answers_roots(&self) -> bool {
        self.declared().roots
    }

    fn roots(&self) -> BoxFuture<'_, Option<Vec<Root>>> {
        Box::pin(async move {
            let asked = ServerRequest::ListRootsRequest(ListRootsRequest {
                method: Default::default(),
                extensions: Default::default(),
            });
            // No answer: the server gets none rather than roots this client did not give.
            let Some(ClientResult::ListRootsResult(listed)) = self.ask(asked).await else {
                return Some(Vec::new());
            };
            let roots = listed.roots.into_iter().map(|root| Root {
                uri: root.uri,
                name: root.name,
            });
            Some(roots.collect())
        })
    }

    fn elicit(&self, request: AskedInput) -> BoxFuture<'_, ElicitAnswer> {
        Box::pin(async move {
            let declared = self.declared();
            let allowed = match &request.mode {
                ElicitMode::Form { .. } => declared.form,
                ElicitMode::Url { .. } => declared.url,
                _ => false,
            };
            let Some(params) = allowed.then(|| elicit_params(&request)).flatten() else {
                return ElicitAnswer::Decline;
            };
            let asked = ServerRequest::ElicitRequest(ElicitRequest::new(params));
            match self.ask(asked).await {
                Some(ClientResult::ElicitResult(result)) => match result.action {
                    ElicitationAction::Accept => {
                        ElicitAnswer::Accept(result.content.and_then(|c| match c {
                            Value::Object(content) => Some(content),
                            _ => None,
                        }))
                    }
                    ElicitationAction::Cancel => ElicitAnswer::Cancel,
                    _ => ElicitAnswer::Decline,
                },
                _ => ElicitAnswer::Cancel,
            }
        })
    }

    fn sample(&self, request: SamplingRequest) -> BoxFuture<'_, SamplingAnswer> {
        Box::pin(async move {
            if !self.declared().sampling {
                return SamplingAnswer::Decline;
            }
            let params: CreateMessageRequestParams = match serde_json::from_value(Value::Object(
                request.params,
            )) {
                Ok(params) => params,
                Err(error) => {
                    tracing::warn!(server = %request.server, "a sampling request we cannot relay: {error}");
                    return SamplingAnswer::Decline;
                }
            };
            let asked = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
            let Some(ClientResult::CreateMessageResult(result)) = self.ask(asked).await else {
                return SamplingAnswer::Decline;
            };
            let Ok(Value::Object(mut result)) = serde_json::to_value(&result) else {
                return SamplingAnswer::Decline;
            };
            let model = result
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let stop_reason = result.get("stopReason").and_then(Value::as_str);
            let (model, stop_reason) = (model.to_owned(), stop_reason.map(str::to_owned));
            // One block (MCP 2025-11-25 also allows a list: its first block).
            let content = match result.remove("content") {
                Some(Value::Array(mut blocks)) if !blocks.is_empty() => blocks.swap_remove(0),
                Some(block) => block,
                None => return SamplingAnswer::Decline,
            };
            match serde_json::from_value(content) {
                Ok(content) => SamplingAnswer::Message {
                    model,
                    content,
                    stop_reason,
                },
                Err(_) => SamplingAnswer::Decline,
            }
        })
    }
}

/// MCP's `elicitation/create` parameters for `request`.
fn elicit_params(request: &AskedInput) -> Option<ElicitRequestParams> {
    let json = match &request.mode {
        ElicitMode::Form { schema } => serde_json::json!({
            "mode": "form", "message": request.message, "requestedSchema": schema}),
        ElicitMode::Url {
            url,
            elicitation_id,
        } => serde_json::json!({
            "mode": "url", "message": request.message, "url": url,
            "elicitationId": elicitation_id}),
        _ => return None,
    };
    serde_json::from_value(json)
        .inspect_err(|error| tracing::warn!("an elicitation we cannot relay: {error}"))
        .ok()
}

/// What a call's server tells its downstream client while the call runs: progress (under
/// the client's own `progressToken`, when it gave one) and log messages at or above the
/// level the client set (`logging/setLevel`, or a 2026-07-28 request's `_meta` `logLevel`;
/// all without one), in the order they arrived.
pub(crate) struct CallNotices {
    /// `None`: a call without a peer, whose notices go elsewhere ([`told_to`]).
    peer: Option<Peer<RoleServer>>,
    received: mpsc::UnboundedReceiver<ServerNotification>,
}

impl CallNotices {
    /// The notices of one call to `peer`, and `options` with the callbacks that feed them
    /// (`options` as they are without a peer).
    pub(crate) fn new(
        peer: Option<Peer<RoleServer>>,
        token: Option<ProgressToken>,
        level: Option<LoggingLevel>,
        mut options: CallOptions,
    ) -> (CallNotices, CallOptions) {
        let (sender, received) = mpsc::unbounded_channel();
        if peer.is_some() {
            options = told_to(options, token, level, move |notice| {
                let _ = sender.send(notice);
            });
        }
        (CallNotices { peer, received }, options)
    }

    /// The next notice received (pending for ever once the call has dropped its
    /// callbacks). Cancel-safe: give it to [`CallNotices::tell`] outside the `select!` that
    /// waits for it, so a notice being told is not lost when the call returns meanwhile.
    pub(crate) async fn next(&mut self) -> ServerNotification {
        match self.received.recv().await {
            Some(notice) => notice,
            None => std::future::pending().await,
        }
    }

    /// Tells what was received and not told yet (after the call returned, before its
    /// result is sent: nothing of a call follows its result).
    pub(crate) async fn flush(&mut self) {
        while let Ok(notice) = self.received.try_recv() {
            self.tell(notice).await;
        }
    }

    pub(crate) async fn tell(&self, notice: ServerNotification) {
        let Some(peer) = &self.peer else {
            return;
        };
        if let Err(error) = peer.send_notification(notice).await {
            tracing::debug!(%error, "cannot tell the downstream client of a call's progress or log");
        }
    }
}

/// `options` with callbacks that give `tell` the call's progress (under `token`, when the
/// client gave one) and its server's log messages at or above `level` (all without one),
/// as MCP notifications.
pub(crate) fn told_to(
    options: CallOptions,
    token: Option<ProgressToken>,
    level: Option<LoggingLevel>,
    tell: impl Fn(ServerNotification) + Clone + Send + Sync + 'static,
) -> CallOptions {
    let least = level.map_or(0, rank);
    progress_told_to(options, token, tell.clone()).on_log(move |message: &LogMessage| {
        if level_rank(&message.level) >= least {
            let level = serde_json::from_value(Value::String(message.level.clone()));
            let mut params = LoggingMessageNotificationParam::new(
                level.unwrap_or(LoggingLevel::Info),
                message.data.clone(),
            );
            params.logger = message.logger.clone();
            tell(ServerNotification::LoggingMessageNotification(
                Notification::new(params),
            ));
        }
    })
}

/// `options` with a callback that gives `tell` the call's progress under `token`, as MCP
/// notifications (`options` as they are without a token).
pub(crate) fn progress_told_to(
    options: CallOptions,
    token: Option<ProgressToken>,
    tell: impl Fn(ServerNotification) + Send + Sync + 'static,
) -> CallOptions {
    let Some(token) = token else {
        return options;
    };
    options.on_progress(move |progress: &CallProgress| {
        let params = progress_params(token.clone(), progress);
        tell(ServerNotification::ProgressNotification(Notification::new(
            params,
        )));
    })
}

/// MCP's `notifications/progress` parameters for a call's `progress` under `token`.
fn progress_params(token: ProgressToken, progress: &CallProgress) -> ProgressNotificationParam {
    let mut params = ProgressNotificationParam::new(token, progress.progress);
    params.total = progress.total;
    params.message = progress.message.clone();
    params
}

/// `level`'s place in MCP's order (debug lowest).
pub(crate) fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// The rank of a level as the engine gives it (lowercase; an unknown one ranks as info).
fn level_rank(level: &str) -> u8 {
    serde_json::from_value(Value::String(level.to_owned())).map_or(1, rank)
}
