//! `tools/call` on one connection: against the call's one absolute deadline, which progress
//! may move (sending and waiting: `exchange.rs`, shared with resource reads and prompt
//! gets), with its progress and its server's requests routed to it (`interaction.rs`), and,
//! for a 2026-07-28 server, the input-required rounds (`input.rs`).

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, JsonObject, ServerResult,
};
use tokio::time::Instant;

use super::interaction::CallContext;
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
        let passthrough = call.passthrough.get();
        if let Some(passthrough) = passthrough {
            passthrough.resume(&mut params);
        }
        let mut rounds = 0;
        loop {
            // Only a 2026-07-28 server may ask for input and need the call again.
            let again = self.modern.then(|| params.clone());
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            let response = self.send(request, call, Phase::CallTool, started).await?;
            let asked = match (response, again) {
                (Ok(ServerResult::CallToolResult(result)), _) => {
                    return Ok(CallOutcome::from(result));
                }
                (Ok(ServerResult::InputRequiredResult(asked)), Some(again)) => {
                    // A caller asking its own client: the result goes back to it (told by
                    // the call's context), and this call ends without an outcome.
                    let asked = match passthrough {
                        Some(passthrough) => passthrough.hand_back(asked),
                        None => Some(asked),
                    };
                    let Some(asked) = asked else {
                        return Ok(CallOutcome::handed_back());
                    };
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
