//! `tools/call` on one connection: against the call's one absolute deadline (a call whose
//! deadline has passed is never sent; one that runs out is cancelled at the server), with
//! its progress and its server's requests routed to it (`interaction.rs`), and, for a
//! 2026-07-28 server, the input-required rounds (`input.rs`).
//!
//! The deadline may move: a call that asked for it has its deadline pushed out by each
//! progress notification (never past its ceiling). rmcp is given the latest moment the call
//! could end as its timeout; the wait below follows the deadline as it is now.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientRequest, JsonObject,
    RequestId, RequestMetaObject, ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, ServiceError};
use tokio::time::Instant;

use super::interaction::{self, CallContext};
use super::{CallOutcome, Upstream, classify, input};
use crate::sync::lock;
use crate::{Error, Phase};

impl Upstream {
    /// Calls `tool` with `arguments`, finishing by `deadline`. A deadline already passed
    /// means the call is not sent. `isError` results are returned as `Ok` with
    /// `is_error: true`; use [`CallOutcome::into_result`] to treat them as errors.
    pub async fn call_tool(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        deadline: Instant,
    ) -> Result<CallOutcome, Error> {
        self.call_tool_with(tool, arguments, &CallContext::fixed(deadline))
            .await
    }

    /// [`Upstream::call_tool`] for `call`: its deadline (which progress may move), its
    /// progress callback and its input handler.
    pub(crate) async fn call_tool_with(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        call: &Arc<CallContext>,
    ) -> Result<CallOutcome, Error> {
        let started = Instant::now();
        if call.deadline() <= started {
            return Err(Error::Timeout {
                server: self.server.to_string(),
                phase: Phase::CallTool,
                after: Duration::ZERO,
            });
        }
        self.check_usable()?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments;
        let mut rounds = 0;
        loop {
            // Only a 2026-07-28 server may ask for input and need the call again.
            let again = self.modern.then(|| params.clone());
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let response = self.send(request, call, started).await?;
            let asked = match (response, again) {
                (Ok(ServerResult::CallToolResult(result)), _) => {
                    return Ok(CallOutcome::from(result));
                }
                (Ok(ServerResult::InputRequiredResult(asked)), Some(again)) => {
                    params = again;
                    asked
                }
                (Ok(_), _) => {
                    return Err(classify::may_have_run(Error::Protocol {
                        server: self.server.to_string(),
                        reason: "tools/call returned a result of another type".to_owned(),
                    }));
                }
                (Err(e), _) => {
                    let error = classify::from_call(self.target(), e, started.elapsed(), tool);
                    return Err(self.unknown_or(error, tool).await);
                }
            };
            rounds += 1;
            if rounds == input::MAX_ROUNDS {
                return Err(classify::may_have_run(Error::Protocol {
                    server: self.server.to_string(),
                    reason: format!("the tool asked for input {rounds} times without finishing"),
                }));
            }
            let requests = asked.input_requests.unwrap_or_default();
            let by = input::Answering {
                server: &self.server,
                input: call.input.as_deref().or(self.input.as_deref()),
                policy: self.elicitation,
                roots: &self.roots,
            };
            params.input_responses = input::answers(&by, requests)
                .await
                .map_err(classify::may_have_run)?;
            params.request_state = asked.request_state;
        }
    }

    /// Sends `request` for `call` and waits for its answer until the call's deadline (as
    /// progress may have moved it). `Err` only when it was not sent (or ran out of time
    /// waiting); a failed answer is the inner `Err`.
    async fn send(
        &self,
        request: ClientRequest,
        call: &Arc<CallContext>,
        started: Instant,
    ) -> Result<Result<ServerResult, ServiceError>, Error> {
        let deadline = call.deadline();
        let now = Instant::now();
        if deadline <= now {
            return Err(self.timed_out(started));
        }
        // rmcp's own timeout is the latest the call could end; ours follows the deadline.
        let latest = call.ceiling().unwrap_or(deadline);
        let mut options = PeerRequestOptions::with_timeout(latest.saturating_duration_since(now));
        if self.modern {
            // A 2026-07-28 server learns with each request what this call can answer.
            let input = call.input.as_deref().or(self.input.as_deref());
            let mut meta = RequestMetaObject::new();
            let roots = !self.roots.is_empty();
            meta.set_client_capabilities(interaction::capabilities(self.elicitation, input, roots));
            options = options.with_meta(meta);
        }
        let sending = self.calls.sending();
        // Failing here, the request never reached the transport: not sent.
        let handle = self
            .peer
            .send_request_with_option(request, options)
            .await
            .map_err(|_| self.lost_before_sending())?;
        let _registered = self
            .calls
            .register(&handle.id, &handle.progress_token, call);
        drop(sending);
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
                    return Err(self.timed_out(started));
                }
                Ok(()) = moved.changed() => {}
            }
        }
    }

    fn timed_out(&self, started: Instant) -> Error {
        Error::Timeout {
            server: self.server.to_string(),
            phase: Phase::CallTool,
            after: started.elapsed(),
        }
    }

    /// A server that rejects a call with a JSON-RPC error may simply not have the tool. Tell
    /// the two apart from the tool list (listed now if it never was): only on this error path.
    async fn unknown_or(&self, error: Error, tool: &str) -> Error {
        if !matches!(error, Error::Tool { code: Some(_), .. }) {
            return error;
        }
        if lock(&self.listed_tools).is_none() {
            let _ = self.list_tools().await;
        }
        let unlisted = lock(&self.listed_tools)
            .as_ref()
            .is_some_and(|names| !names.contains(tool));
        if unlisted {
            Error::UnknownTool {
                server: self.server.to_string(),
                tool: tool.to_owned(),
            }
        } else {
            error
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
