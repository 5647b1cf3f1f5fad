//! One request and its answer, what a tool call, a resource read and a prompt get share:
//! sent against the call's one absolute deadline (a request whose deadline has passed is
//! never sent; one that runs out is cancelled at the server, and so is one whose caller
//! drops the future), with its progress and its server's requests routed to its call
//! (`interaction.rs`).
//!
//! The deadline may move: a call that asked for it has its deadline pushed out by each
//! progress notification (never past its ceiling). rmcp is given the latest moment the call
//! could end as its timeout; the wait below follows the deadline as it is now.

use std::sync::Arc;

use rmcp::model::{
    CancelledNotificationParam, ClientRequest, GetExtensions, RequestId, RequestMetaObject,
    ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, ServiceError};
use tokio::time::Instant;
use tracing::Instrument;

use super::Upstream;
use super::interaction::{self, CallContext};
use crate::config::TransportKind;
use crate::spans::{self, OTEL_TARGET};
use crate::{Error, JsonObject, Phase};

impl Upstream {
    /// Sends `request` for `call` and waits for its answer until the call's deadline (as
    /// progress may have moved it). `Err` only when it was not sent (or ran out of time
    /// waiting: a `phase` timeout, counted from `started`); a failed answer is the inner
    /// `Err`, for the caller to classify.
    pub(super) async fn send(
        &self,
        request: ClientRequest,
        call: &Arc<CallContext>,
        phase: Phase,
        started: Instant,
    ) -> Result<Result<ServerResult, ServiceError>, Error> {
        let span = self.request_span(&request);
        if span.is_disabled() {
            return self.send_in(request, call, phase, started, &span).await;
        }
        let sent = self
            .send_in(request, call, phase, started, &span)
            .instrument(span.clone())
            .await;
        let transport = match &sent {
            Ok(Err(ServiceError::TransportSend(error))) => {
                Some(super::classify::from_transport(self.target(), error).0)
            }
            _ => None,
        };
        spans::record_response(&span, &sent, transport.as_ref());
        sent
    }

    /// The CLIENT span of one upstream request (`crate::spans`), disabled unless a layer
    /// listens to [`OTEL_TARGET`].
    fn request_span(&self, request: &ClientRequest) -> tracing::Span {
        let span = tracing::trace_span!(
            target: OTEL_TARGET,
            "mcp.client",
            otel.name = tracing::field::Empty,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            mcp.method.name = tracing::field::Empty,
            gen_ai.tool.name = tracing::field::Empty,
            gen_ai.prompt.name = tracing::field::Empty,
            gen_ai.operation.name = tracing::field::Empty,
            jsonrpc.request.id = tracing::field::Empty,
            network.transport = tracing::field::Empty,
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            error.type = tracing::field::Empty,
            rpc.response.status_code = tracing::field::Empty,
            switchboard.server = tracing::field::Empty,
        );
        if span.is_disabled() {
            return span;
        }
        let (method, target) = spans::request_target(request);
        match target {
            Some(target) => span.record("otel.name", format!("{method} {target}")),
            None => span.record("otel.name", method),
        };
        span.record("mcp.method.name", method);
        match request {
            ClientRequest::CallToolRequest(_) => {
                span.record("gen_ai.tool.name", target);
                span.record("gen_ai.operation.name", "execute_tool");
            }
            ClientRequest::GetPromptRequest(_) => {
                span.record("gen_ai.prompt.name", target);
            }
            _ => {}
        }
        let transport = match self.transport {
            TransportKind::Stdio => "pipe",
            _ => "tcp",
        };
        span.record("network.transport", transport);
        if let Some((host, port)) = self.address.as_deref().and_then(|a| a.rsplit_once(':')) {
            span.record(
                "server.address",
                host.trim_start_matches('[').trim_end_matches(']'),
            );
            if let Ok(port) = port.parse::<u16>() {
                span.record("server.port", i64::from(port));
            }
        }
        span.record("switchboard.server", &*self.server);
        span
    }

    async fn send_in(
        &self,
        request: ClientRequest,
        call: &Arc<CallContext>,
        phase: Phase,
        started: Instant,
        span: &tracing::Span,
    ) -> Result<Result<ServerResult, ServiceError>, Error> {
        let deadline = call.deadline();
        let now = Instant::now();
        if deadline <= now {
            return Err(self.timed_out(phase, started));
        }
        // rmcp's own timeout is the latest the call could end; ours follows the deadline.
        let latest = call.ceiling().unwrap_or(deadline);
        let mut options = PeerRequestOptions::with_timeout(latest.saturating_duration_since(now));
        if call.session_headers.get().is_some() && !self.carries_sessions() {
            // The connection changed under the session (the server no longer speaks
            // 2026-07-28): never send a session's request with the connection's identity.
            return Err(Error::Closed {
                server: self.server.to_string(),
                reason: Some("the session's shared connection can no longer carry it".to_owned()),
            });
        }
        let mut _session = None;
        let mut meta = None;
        if self.modern {
            // A 2026-07-28 server learns with each request what this call can answer.
            let input = call.input.as_deref().or(self.input.as_deref());
            let mut modern = RequestMetaObject::new();
            let roots = !self.roots.is_empty();
            // Unless the caller passes its own client's capabilities on.
            let capabilities = call.passthrough.get().and_then(|p| p.capabilities.clone());
            modern.set_client_capabilities(
                capabilities
                    .unwrap_or_else(|| interaction::capabilities(self.elicitation, input, roots)),
            );
            // A session sharing this connection: its headers go with this request only.
            if let (Some(headers), Some(sessions)) =
                (call.session_headers.get(), &self.session_headers)
            {
                let registered = sessions.register(headers.clone());
                let (key, value) = registered.tag();
                modern.insert(key, value);
                _session = Some(registered);
            }
            meta = Some(modern);
        }
        // The trace context of this request's span, in its `_meta` (only while traced).
        if let Some(inject) = call.meta_injector.get().filter(|_| !span.is_disabled()) {
            let mut context = JsonObject::new();
            inject(span, &mut context);
            if !context.is_empty() {
                let meta = meta.get_or_insert_with(RequestMetaObject::new);
                for (key, value) in context {
                    meta.insert(key, value);
                }
            }
        }
        if let Some(meta) = meta {
            options = options.with_meta(meta);
        }
        // The transport registers the request as it sends it (`interaction.rs`), so what
        // the server sends for it at once is the call's; `_registered` unregisters it.
        let mut request = request;
        let sent_for = interaction::SentFor::new(call.clone());
        let mut registered = self.calls.waiting_for(&sent_for);
        request.extensions_mut().insert(sent_for);
        // Failing here, the request never reached the transport: not sent.
        let handle = self
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|_| self.lost_before_sending())?;
        if !span.is_disabled() {
            span.record("jsonrpc.request.id", handle.id.to_string());
        }
        registered.sent_as(&handle.id, &handle.progress_token);
        let guard = CancelOnDrop {
            peer: &self.peer,
            id: Some(handle.id.clone()),
        };
        let mut moved = call.watch_deadline();
        let response = handle.await_response();
        tokio::pin!(response);
        loop {
            let deadline = *moved.borrow_and_update();
            tokio::select! {
                response = &mut response => {
                    guard.disarm();
                    return Ok(response);
                }
                () = tokio::time::sleep_until(deadline) => {
                    // Dropping the guard cancels the request at the server.
                    return Err(self.timed_out(phase, started));
                }
                Ok(()) = moved.changed() => {}
            }
        }
    }

    /// A request of `phase` that ran out of time, counted from `started`.
    pub(super) fn timed_out(&self, phase: Phase, started: Instant) -> Error {
        Error::Timeout {
            server: self.server.to_string(),
            phase,
            after: started.elapsed(),
        }
    }
}

/// Sends `notifications/cancelled` for a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        let params =
            CancelledNotificationParam::new(Some(id), Some("the caller stopped waiting".into()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = peer.notify_cancelled(params).await;
            });
        }
    }
}
