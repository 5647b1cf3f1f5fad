//! One call's side channel: its moving deadline, who hears its progress, and who answers
//! what its server asks (see [`crate::interaction`] for the public side).
//!
//! A connection carries many calls at once, so what arrives for a call is routed to it:
//! `notifications/progress` by the `progressToken` rmcp put in the request's `_meta`, and a
//! server's request by the call it belongs to. Streamable HTTP says which call that is (the
//! request arrives on the call's response stream); stdio and SSE do not, so a request there
//! goes to the one call in flight, or to the handler every call in flight shares, and
//! otherwise to the connection's own (the hub's). Log messages go by the response stream
//! they came on when the transport says (Streamable HTTP), else to the one call in flight.
//! rmcp picks the token and the request id as it queues the request; the request carries
//! its call ([`SentFor`]) to the transport, which registers it before sending it, so
//! whatever a server sends for a call finds it registered.
//!
//! Sampling is deprecated by SEP-2577 (rmcp marks its types so) but still asked for by
//! servers of every revision up to 2026-07-28: hence the `allow(deprecated)`.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    ClientCapabilities, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationCapability, ErrorCode, FormElicitationCapability,
    ProgressNotificationParam, ProgressToken, RequestId, RootsCapabilities, SamplingCapability,
    UrlElicitationCapability,
};
use rmcp::{ErrorData, service::InboundStreamOrigin};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ElicitationPolicy;
use crate::interaction::{
    CallProgress, ElicitAnswer, ElicitMode, ElicitRequest, InputHandler, LogMessage, OnLog,
    OnProgress, SamplingAnswer, SamplingRequest,
};
use crate::sync::lock;

/// One call's deadline (one absolute moment at any time, which only progress moves, and
/// never past the ceiling), its progress callback and its input handler.
pub(crate) struct CallContext {
    deadline: watch::Sender<Instant>,
    /// Each progress notification moves the deadline to `min(now + timeout, ceiling)`.
    reset: Option<(Duration, Instant)>,
    on_progress: Option<OnProgress>,
    /// The session's handler, else the hub's.
    pub(crate) input: Option<Arc<dyn InputHandler>>,
    /// The session's rendered headers, when its requests go over a connection sessions
    /// share ([`Upstream::carries_sessions`](super::Upstream::carries_sessions)).
    pub(crate) session_headers: std::sync::OnceLock<Arc<http::HeaderMap>>,
    /// A 2026-07-28 caller's own part: input-required results handed back, its retry's
    /// answers, its client's capabilities (`input.rs`).
    pub(crate) passthrough: std::sync::OnceLock<super::input::Passthrough>,
    /// Hears the server's log messages while the call is alone on its connection.
    pub(crate) on_log: std::sync::OnceLock<OnLog>,
    /// Writes the trace context into each request's `_meta` (`crate::spans`).
    pub(crate) meta_injector: std::sync::OnceLock<crate::spans::MetaInjector>,
    /// The last progress passed on, and for which request (notifications are handled
    /// concurrently by rmcp; each input-required round is a new request, counting anew).
    last_progress: Mutex<Option<(ProgressToken, f64)>>,
}

impl CallContext {
    pub(crate) fn new(
        deadline: Instant,
        reset: Option<(Duration, Instant)>,
        on_progress: Option<OnProgress>,
        input: Option<Arc<dyn InputHandler>>,
    ) -> Arc<CallContext> {
        let deadline = match reset {
            Some((_, ceiling)) => deadline.min(ceiling),
            None => deadline,
        };
        Arc::new(CallContext {
            deadline: watch::Sender::new(deadline),
            reset,
            on_progress,
            input,
            session_headers: std::sync::OnceLock::new(),
            passthrough: std::sync::OnceLock::new(),
            on_log: std::sync::OnceLock::new(),
            meta_injector: std::sync::OnceLock::new(),
            last_progress: Mutex::new(None),
        })
    }

    /// A call with a fixed deadline and nobody listening.
    pub(crate) fn fixed(deadline: Instant) -> Arc<CallContext> {
        CallContext::new(deadline, None, None, None)
    }

    /// The call's deadline now.
    pub(crate) fn deadline(&self) -> Instant {
        *self.deadline.borrow()
    }

    /// The latest the deadline can move to (`None`: it does not move).
    pub(crate) fn ceiling(&self) -> Option<Instant> {
        self.reset.map(|(_, ceiling)| ceiling)
    }

    /// Wakes when the deadline moves.
    pub(crate) fn watch_deadline(&self) -> watch::Receiver<Instant> {
        self.deadline.subscribe()
    }

    /// The server reported progress: tell the caller (in order; a notification that does
    /// not advance is dropped) and push the deadline out if the call asked for it.
    fn progressed(&self, params: &ProgressNotificationParam) {
        let mut last = lock(&self.last_progress);
        let stale = last.as_ref().is_some_and(|(token, last)| {
            *token == params.progress_token && params.progress <= *last
        });
        if stale {
            return;
        }
        *last = Some((params.progress_token.clone(), params.progress));
        if let Some((timeout, ceiling)) = self.reset {
            let moved = (Instant::now() + timeout).min(ceiling);
            self.deadline.send_if_modified(|deadline| {
                let later = moved > *deadline;
                if later {
                    *deadline = moved;
                }
                later
            });
        }
        if let Some(on_progress) = &self.on_progress {
            // Under `last`, so callbacks run one at a time and in order.
            on_progress(&CallProgress {
                progress: params.progress,
                total: params.total,
                message: params.message.clone(),
            });
        }
    }
}

/// The calls in flight on one connection, by progress token and by request id.
#[derive(Default)]
pub(crate) struct Calls {
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    by_token: HashMap<ProgressToken, Arc<CallContext>>,
    by_request: HashMap<RequestId, Arc<CallContext>>,
}

/// Marks a request (in its extensions, never on the wire) as `call`'s: the transport registers
/// it as it sends it ([`Calls::sent`]), unless its caller stopped waiting first (rmcp queues
/// a request and sends it later, from its own task: a request dropped while queued must not
/// leave its call registered for the connection's life).
#[derive(Clone)]
pub(crate) struct SentFor {
    pub(crate) call: Arc<CallContext>,
    waiting: Arc<AtomicBool>,
}

impl SentFor {
    pub(crate) fn new(call: Arc<CallContext>) -> Self {
        SentFor {
            call,
            waiting: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// A request's registration; dropping it unregisters (the request has been answered, or
/// its caller stopped waiting), and a transport that sends the request after that
/// registers nothing.
pub(crate) struct Registered<'a> {
    calls: &'a Calls,
    waiting: Option<Arc<AtomicBool>>,
    sent: Option<(RequestId, ProgressToken)>,
}

impl Registered<'_> {
    /// The request went to rmcp as `id` with `token`.
    pub(crate) fn sent_as(&mut self, id: &RequestId, token: &ProgressToken) {
        self.sent = Some((id.clone(), token.clone()));
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        // Under the registry's lock, as `Calls::sent` checks `waiting`: once this runs, a
        // late send registers nothing.
        let mut registry = lock(&self.calls.registry);
        if let Some(waiting) = &self.waiting {
            waiting.store(false, Ordering::Relaxed);
        }
        let removed = self.sent.take().map(|(id, token)| {
            let token = registry.by_token.remove(&token);
            let request = registry.by_request.remove(&id);
            (token, request)
        });
        drop(registry);
        drop(removed);
    }
}

impl Calls {
    /// The transport is about to send request `id` (with progress token `token`) for
    /// `context`: from now on what arrives for it is the call's. Called before anything of
    /// the request is written, so nothing a server sends for it can come first. Nothing is
    /// registered when the request's caller has stopped waiting.
    pub(crate) fn sent(&self, id: &RequestId, token: Option<ProgressToken>, context: &SentFor) {
        let mut registry = lock(&self.registry);
        if !context.waiting.load(Ordering::Relaxed) {
            return;
        }
        if let Some(token) = token {
            registry.by_token.insert(token, context.call.clone());
        }
        registry.by_request.insert(id.clone(), context.call.clone());
    }

    /// The registration of the request marked `context`, taken before the request is handed
    /// to rmcp and told its id once it has been ([`Registered::sent_as`]).
    pub(crate) fn waiting_for(&self, context: &SentFor) -> Registered<'_> {
        Registered {
            calls: self,
            waiting: Some(context.waiting.clone()),
            sent: None,
        }
    }

    /// The request sent as `id` with `token` is registered until the guard is dropped (it
    /// was registered by the transport as it sent it, [`Calls::sent`]).
    #[cfg(test)]
    pub(crate) fn registered(&self, id: &RequestId, token: &ProgressToken) -> Registered<'_> {
        Registered {
            calls: self,
            waiting: None,
            sent: Some((id.clone(), token.clone())),
        }
    }

    /// A `notifications/progress` arrived: its call's, by its token (a finished call's is
    /// dropped).
    pub(crate) fn progress(&self, params: ProgressNotificationParam) {
        let context = lock(&self.registry)
            .by_token
            .get(&params.progress_token)
            .cloned();
        if let Some(context) = context {
            context.progressed(&params);
        }
    }

    /// A `notifications/message` arrived, on the response stream of request `stream` when
    /// the transport says so (Streamable HTTP): that request's call's. Otherwise (stdio,
    /// SSE, a standalone stream) the call's when one call alone is in flight (see
    /// [`crate::CallOptions::on_log`]). Else, or when the call does not listen, it is
    /// logged here.
    pub(crate) fn log(&self, message: LogMessage, stream: Option<&RequestId>) {
        let call = {
            let registry = lock(&self.registry);
            match stream {
                Some(id) => registry.by_request.get(id).cloned(),
                None if registry.by_request.len() == 1 => {
                    registry.by_request.values().next().cloned()
                }
                None => None,
            }
        };
        match call.as_ref().and_then(|call| call.on_log.get()) {
            Some(on_log) => on_log(&message),
            None => tracing::info!(
                target: "switchboard::upstream",
                server = %message.server,
                level = %message.level,
                logger = message.logger.as_deref().unwrap_or_default(),
                data = %message.data,
                "the server logged"
            ),
        }
    }

    /// The handler that answers a server request that arrived with `extensions`: its
    /// call's (`None`: the connection's own). Calls are registered before they are sent,
    /// so the call a request is for is always known by the time it arrives.
    pub(crate) fn input_for(
        &self,
        extensions: &rmcp::model::Extensions,
    ) -> Option<Arc<dyn InputHandler>> {
        let registry = lock(&self.registry);
        match extensions.get::<InboundStreamOrigin>() {
            Some(InboundStreamOrigin::OutboundRequest(id)) => registry
                .by_request
                .get(id)
                .and_then(|call| call.input.clone()),
            Some(InboundStreamOrigin::Unassociated) => None,
            None => shared_input(registry.by_request.values()),
        }
    }
}

/// The handler of the call in flight, or the one all calls in flight share (`None`
/// otherwise, and when it is no handler).
fn shared_input<'a>(
    mut calls: impl Iterator<Item = &'a Arc<CallContext>>,
) -> Option<Arc<dyn InputHandler>> {
    let first = calls.next()?.input.clone()?;
    calls
        .all(|call| call.input.as_ref().is_some_and(|h| Arc::ptr_eq(h, &first)))
        .then_some(first)
}

/// What a client answering with `input` (else `policy`) offers: elicitation when someone
/// answers it (URL mode when the handler does), sampling when the handler does, roots when
/// some are configured or the handler answers them.
pub(crate) fn capabilities(
    policy: ElicitationPolicy,
    input: Option<&dyn InputHandler>,
    roots: bool,
) -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    if input.is_some() || policy == ElicitationPolicy::AcceptDefaults {
        let mut elicitation =
            ElicitationCapability::new().with_form(FormElicitationCapability::new());
        if input.is_some_and(|input| input.answers_url_elicitation()) {
            elicitation = elicitation.with_url(UrlElicitationCapability::new());
        }
        capabilities.elicitation = Some(elicitation);
    }
    if input.is_some_and(|input| input.answers_sampling()) {
        capabilities.sampling = Some(SamplingCapability::default());
    }
    if roots || input.is_some_and(|input| input.answers_roots()) {
        capabilities.roots = Some(RootsCapabilities::default());
    }
    capabilities
}

/// The roots `input` gives when it answers roots (and has an answer), else the configured
/// ones.
#[allow(deprecated)] // roots (SEP-2577): still asked for by servers
pub(crate) async fn list_roots(
    input: Option<&dyn InputHandler>,
    configured: &[String],
) -> rmcp::model::ListRootsResult {
    let given = match input.filter(|input| input.answers_roots()) {
        Some(input) => input.roots().await,
        None => None,
    };
    let Some(given) = given else {
        return super::handler::roots(configured);
    };
    let roots = given.into_iter().map(|root| {
        let named = rmcp::model::Root::new(root.uri);
        match root.name {
            Some(name) => named.with_name(name),
            None => named,
        }
    });
    rmcp::model::ListRootsResult::new(roots.collect())
}

/// `server`'s elicitation answered by `input`, else by `policy`.
pub(crate) async fn elicit(
    server: &str,
    input: Option<&dyn InputHandler>,
    policy: ElicitationPolicy,
    params: &ElicitRequestParams,
) -> ElicitResult {
    let is_form = matches!(params, ElicitRequestParams::FormElicitationParams { .. });
    let input = input.filter(|input| !is_form || input.answers_form_elicitation());
    let Some(input) = input else {
        return super::handler::answer_elicitation(policy, server, params);
    };
    let answer = match elicit_request(server, params) {
        Some(request) => input.elicit(request).await,
        None => ElicitAnswer::Decline,
    };
    tracing::info!(
        server,
        action = answer_action(&answer),
        "the server asked for input"
    );
    serde_json::from_value(answer.to_json())
        .unwrap_or_else(|_| ElicitResult::new(rmcp::model::ElicitationAction::Decline))
}

fn answer_action(answer: &ElicitAnswer) -> &'static str {
    match answer {
        ElicitAnswer::Accept(_) => "accept",
        ElicitAnswer::Decline => "decline",
        ElicitAnswer::Cancel => "cancel",
    }
}

/// Our form of rmcp's request (`None` for a mode this version does not know).
fn elicit_request(server: &str, params: &ElicitRequestParams) -> Option<ElicitRequest> {
    let (message, mode) = match params {
        ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } => {
            let schema = match serde_json::to_value(requested_schema) {
                Ok(Value::Object(schema)) => schema,
                _ => return None,
            };
            (message, ElicitMode::Form { schema })
        }
        ElicitRequestParams::UrlElicitationParams {
            message,
            url,
            elicitation_id,
            ..
        } => (
            message,
            ElicitMode::Url {
                url: url.clone(),
                elicitation_id: elicitation_id.clone(),
            },
        ),
        _ => return None,
    };
    Some(ElicitRequest {
        server: server.to_owned(),
        message: message.clone(),
        mode,
    })
}

/// `server`'s `sampling/createMessage` answered by `input` (an error when nobody answers or
/// the handler declines: MCP's "user rejected" code -1).
pub(crate) async fn sample(
    server: &str,
    input: Option<&dyn InputHandler>,
    params: &CreateMessageRequestParams,
) -> Result<CreateMessageResult, ErrorData> {
    let answer = match (input, serde_json::to_value(params)) {
        // Asked even when it said it does not answer (the default declines): a 2026-07-28
        // server asks whatever was offered, and a handler may want to say why it declines.
        (Some(input), Ok(Value::Object(params))) => {
            let request = SamplingRequest {
                server: server.to_owned(),
                params,
            };
            input.sample(request).await
        }
        _ => SamplingAnswer::Decline,
    };
    let result = answer.to_json().and_then(|json| {
        serde_json::from_value::<CreateMessageResult>(json)
            .inspect_err(|e| tracing::warn!(server, "the sampling answer is not valid: {e}"))
            .ok()
    });
    tracing::info!(
        server,
        answered = result.is_some(),
        "the server asked for sampling"
    );
    result.ok_or_else(|| {
        ErrorData::new(
            ErrorCode(-1),
            "the client declined the sampling request",
            None,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rmcp::model::{NumberOrString, ProgressNotificationParam, ProgressToken};
    use tokio::time::Instant;

    use super::{CallContext, Calls, SentFor, lock};
    use crate::interaction::{LogMessage, OnLog, OnProgress};

    fn progress(token: i64, progress: f64) -> ProgressNotificationParam {
        ProgressNotificationParam::new(ProgressToken(NumberOrString::Number(token)), progress)
    }

    /// Says it fills forms only when told to; fills them with `{"name": "handler"}`.
    struct Relay(bool);

    impl crate::interaction::InputHandler for Relay {
        fn answers_form_elicitation(&self) -> bool {
            self.0
        }

        fn elicit(
            &self,
            _request: crate::interaction::ElicitRequest,
        ) -> futures::future::BoxFuture<'_, crate::interaction::ElicitAnswer> {
            let content = serde_json::json!({"name": "handler"});
            let answer = crate::interaction::ElicitAnswer::Accept(content.as_object().cloned());
            Box::pin(std::future::ready(answer))
        }
    }

    #[tokio::test]
    async fn a_handler_that_does_not_fill_forms_leaves_them_to_the_policy() {
        use crate::config::ElicitationPolicy;
        let form: rmcp::model::ElicitRequestParams = serde_json::from_value(serde_json::json!({
            "mode": "form", "message": "Who?", "requestedSchema": {"type": "object",
                "properties": {"name": {"type": "string", "default": "Ada"}}}}))
        .unwrap();
        let cases = [
            (Relay(true), ElicitationPolicy::Decline),
            (Relay(false), ElicitationPolicy::AcceptDefaults),
            (Relay(false), ElicitationPolicy::Decline),
        ];
        let mut answers = Vec::new();
        for (handler, policy) in cases {
            let answer = super::elicit("srv", Some(&handler), policy, &form).await;
            answers.push(serde_json::to_value(answer).unwrap());
        }
        let [filled, defaults, declined] = &answers[..] else {
            unreachable!()
        };
        assert_eq!(filled["content"], serde_json::json!({"name": "handler"}));
        assert_eq!(defaults["content"], serde_json::json!({"name": "Ada"}));
        assert_eq!(declined["action"], serde_json::json!("decline"));
    }

    /// Answers roots with one of its own when `answers_roots`.
    struct Roots(bool);

    impl crate::interaction::InputHandler for Roots {
        fn answers_roots(&self) -> bool {
            self.0
        }

        fn roots(&self) -> futures::future::BoxFuture<'_, Option<Vec<crate::interaction::Root>>> {
            let root = crate::interaction::Root {
                uri: "file:///mine".into(),
                name: Some("mine".into()),
            };
            Box::pin(std::future::ready(Some(vec![root])))
        }
    }

    #[tokio::test]
    async fn roots_are_the_handlers_when_it_answers_them_else_the_configured_ones() {
        let configured = ["file:///configured".to_owned()];
        let uris = |listed: rmcp::model::ListRootsResult| -> Vec<String> {
            listed.roots.into_iter().map(|root| root.uri).collect()
        };
        let answered = super::list_roots(Some(&Roots(true)), &configured).await;
        assert_eq!(uris(answered), ["file:///mine"]);
        let not_answered = super::list_roots(Some(&Roots(false)), &configured).await;
        assert_eq!(uris(not_answered), ["file:///configured"]);
        assert_eq!(
            uris(super::list_roots(None, &configured).await),
            ["file:///configured"]
        );
    }

    #[tokio::test]
    async fn progress_moves_the_deadline_out_by_the_timeout_but_never_past_the_ceiling() {
        let start = Instant::now();
        let timeout = Duration::from_secs(10);
        let ceiling = start + Duration::from_secs(60);
        let call = CallContext::new(start + timeout, Some((timeout, ceiling)), None, None);
        assert_eq!(call.deadline(), start + timeout);
        tokio::time::sleep(Duration::from_millis(20)).await;
        call.progressed(&progress(1, 1.0));
        assert!(call.deadline() >= start + timeout + Duration::from_millis(20));
        assert!(call.deadline() <= Instant::now() + timeout);
        // Never past the ceiling, and a first deadline past it is cut to it.
        let ceiling = start + Duration::from_secs(5);
        let capped = CallContext::new(start + timeout, Some((timeout, ceiling)), None, None);
        assert_eq!(capped.deadline(), ceiling);
        capped.progressed(&progress(1, 1.0));
        assert_eq!(capped.deadline(), ceiling);
        // A fixed deadline does not move.
        let fixed = CallContext::fixed(start + timeout);
        fixed.progressed(&progress(1, 3.0));
        assert_eq!(fixed.deadline(), start + timeout);
    }

    #[tokio::test]
    async fn progress_reaches_its_call_in_order_from_the_moment_it_is_sent() {
        let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
        let sink = seen.clone();
        let on_progress: OnProgress = Arc::new(move |p| sink.lock().unwrap().push(p.progress));
        let deadline = Instant::now() + Duration::from_secs(60);
        let call = SentFor::new(CallContext::new(deadline, None, Some(on_progress), None));
        let calls = Calls::default();
        let token = ProgressToken(NumberOrString::Number(7));
        let id = rmcp::model::RequestId::Number(1);
        calls.sent(&id, Some(token.clone()), &call);
        calls.progress(progress(7, 1.0));
        calls.progress(progress(8, 5.0)); // another call's
        let registered = calls.registered(&id, &token);
        calls.progress(progress(7, 3.0));
        calls.progress(progress(7, 2.0)); // late: dropped
        calls.progress(progress(7, 4.0));
        calls.progress(progress(7, 4.0)); // not an advance: dropped
        drop(registered);
        calls.progress(progress(7, 9.0)); // after the request: nobody
        // The next round of the same call is a new request, counting anew.
        let token = ProgressToken(NumberOrString::Number(9));
        let id = rmcp::model::RequestId::Number(2);
        calls.sent(&id, Some(token.clone()), &call);
        let _again = calls.registered(&id, &token);
        calls.progress(progress(9, 1.0));
        assert_eq!(*seen.lock().unwrap(), [1.0, 3.0, 4.0, 1.0]);
    }

    /// A call whose log messages are collected in `heard`.
    fn listening(heard: &Arc<Mutex<Vec<String>>>) -> SentFor {
        let call = CallContext::fixed(Instant::now() + Duration::from_secs(60));
        let sink = heard.clone();
        let on_log: OnLog = Arc::new(move |m| sink.lock().unwrap().push(m.data.to_string()));
        let _ = call.on_log.set(on_log);
        SentFor::new(call)
    }

    fn logged(data: &str) -> LogMessage {
        LogMessage {
            server: "srv".into(),
            level: "info".into(),
            logger: None,
            data: serde_json::json!(data),
        }
    }

    #[tokio::test]
    async fn a_log_message_goes_to_the_call_whose_stream_it_came_on_among_many() {
        let (first, second) = (Arc::default(), Arc::default());
        let calls = Calls::default();
        let ids = [1, 2].map(rmcp::model::RequestId::Number);
        let tokens = [1, 2].map(|n| ProgressToken(NumberOrString::Number(n)));
        calls.sent(&ids[0], Some(tokens[0].clone()), &listening(&first));
        // Sent, not answered yet: its own stream's messages are its already.
        calls.log(logged("first, at once"), Some(&ids[0]));
        calls.sent(&ids[1], Some(tokens[1].clone()), &listening(&second));
        let _registered = [
            calls.registered(&ids[0], &tokens[0]),
            calls.registered(&ids[1], &tokens[1]),
        ];
        calls.log(logged("second's"), Some(&ids[1]));
        calls.log(logged("first's"), Some(&ids[0]));
        // Two calls in flight and no stream: nobody's.
        calls.log(logged("nobody's"), None);
        calls.log(
            logged("a finished request's"),
            Some(&rmcp::model::RequestId::Number(9)),
        );
        let heard = |h: &Arc<Mutex<Vec<String>>>| h.lock().unwrap().clone();
        assert_eq!(heard(&first), [r#""first, at once""#, r#""first's""#]);
        assert_eq!(heard(&second), [r#""second's""#]);
    }

    /// rmcp queues a request and its task sends it later: a caller that stopped waiting
    /// meanwhile leaves nothing registered (a stale call would take others' log messages
    /// and server requests for the connection's life).
    #[tokio::test]
    async fn a_request_sent_after_its_caller_stopped_waiting_registers_nothing() {
        let calls = Calls::default();
        let call = listening(&Arc::default());
        let id = rmcp::model::RequestId::Number(1);
        let token = ProgressToken(NumberOrString::Number(1));
        drop(calls.waiting_for(&call));
        calls.sent(&id, Some(token.clone()), &call);
        let registry = lock(&calls.registry);
        assert!(registry.by_request.is_empty() && registry.by_token.is_empty());
        drop(registry);
        // Waited for and answered: registered while in flight, then gone.
        let call = listening(&Arc::default());
        let mut waiting = calls.waiting_for(&call);
        calls.sent(&id, Some(token.clone()), &call);
        waiting.sent_as(&id, &token);
        assert_eq!(lock(&calls.registry).by_request.len(), 1);
        drop(waiting);
        assert!(lock(&calls.registry).by_request.is_empty());
    }

    #[tokio::test]
    async fn a_log_message_without_a_stream_goes_to_the_one_call_in_flight() {
        let heard = Arc::default();
        let calls = Calls::default();
        let id = rmcp::model::RequestId::Number(1);
        let token = ProgressToken(NumberOrString::Number(1));
        calls.sent(&id, Some(token.clone()), &listening(&heard));
        calls.log(logged("alone"), None);
        drop(calls.registered(&id, &token));
        calls.log(logged("after"), None);
        assert_eq!(*heard.lock().unwrap(), [r#""alone""#]);
    }
}
