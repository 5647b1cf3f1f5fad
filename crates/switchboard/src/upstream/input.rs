//! Input-required results (SEP-2322, protocol revision 2026-07-28): a server that needs
//! input to finish a call answers with requests for it instead of a result. The call is then
//! sent again, under a new JSON-RPC id, with our answers and the server's `requestState`
//! echoed verbatim (and none when it sent none), at most [`MAX_ROUNDS`] times within the
//! call's one deadline (`Upstream::call_tool`; resource reads and prompt gets the same way,
//! `resources.rs`).
//!
//! Answers come from the call's input handler (the session's, else the hub's), else the
//! server's configuration: an elicitation gets what its `elicitation` policy says
//! (`handler.rs`), a roots request the handler's roots, else its configured `roots`. A sampling request nobody answers fails the
//! call, saying so. rmcp's own round driver (`call_tool_with_mrtr_max_rounds`) is not used:
//! it takes no deadline and does not cancel at the server on timeout.
//!
//! A caller that asks its own client instead ([`Passthrough`], from
//! [`CallOptions::hand_back_input_required`](crate::CallOptions::hand_back_input_required))
//! gets the first input-required result back, and its retry carries the answers and the
//! server's state ([`Passthrough::resume`]): for tool calls, resource reads and prompt gets
//! alike.

use std::sync::Mutex;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, InputRequest, InputRequests, InputRequiredResult,
    InputResponses,
};
use serde_json::json;

use super::interaction;
use crate::JsonObject;
use crate::config::ElicitationPolicy;
use crate::error::Error;
use crate::interaction::{CallOptions, InputHandler, InputRequired};
use crate::sync::lock;

/// A 2026-07-28 caller's own part in a call: whether input-required results go back to it,
/// the answers its retry carries, and its client's capabilities.
pub(crate) struct Passthrough {
    hand_back: bool,
    resume: Option<(Option<InputResponses>, Option<String>)>,
    pub(crate) capabilities: Option<ClientCapabilities>,
    asked: Mutex<Option<InputRequiredResult>>,
}

impl Passthrough {
    /// The caller's part in `options`, if it has one.
    pub(crate) fn from_options(options: &CallOptions) -> Option<Passthrough> {
        let resume = options.resume.as_ref().map(|resume| {
            let responses = resume
                .responses
                .as_ref()
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
            (responses, resume.state.clone())
        });
        let capabilities = options.client_capabilities.as_ref().and_then(|given| {
            let parsed = serde_json::from_value(given.clone().into());
            parsed
                .inspect_err(|e| tracing::debug!("client capabilities not passed on: {e}"))
                .ok()
        });
        let wanted = options.hand_back || resume.is_some() || capabilities.is_some();
        wanted.then(|| Passthrough {
            hand_back: options.hand_back,
            resume,
            capabilities,
            asked: Mutex::new(None),
        })
    }

    /// Puts the retry's answers and state into the call's first request.
    pub(crate) fn resume(&self, params: &mut CallToolRequestParams) {
        let (responses, state) = self.resumed();
        if responses.is_some() || state.is_some() {
            params.input_responses = responses;
            params.request_state = state;
        }
    }

    /// The retry's answers and state (none when the call is not a retry).
    pub(crate) fn resumed(&self) -> (Option<InputResponses>, Option<String>) {
        self.resume.clone().unwrap_or_default()
    }

    /// Keeps `asked` for the caller when it takes input-required results itself, else gives
    /// it back to be answered here.
    pub(crate) fn hand_back(&self, asked: InputRequiredResult) -> Option<InputRequiredResult> {
        if !self.hand_back {
            return Some(asked);
        }
        *lock(&self.asked) = Some(asked);
        None
    }

    /// The input-required result handed back, as the caller sees it.
    pub(crate) fn take_asked(&self, server: &str) -> Option<InputRequired> {
        let asked = lock(&self.asked).take()?;
        let requests = asked.input_requests.unwrap_or_default();
        let requests: JsonObject = requests
            .into_iter()
            .map(|(key, request)| (key, serde_json::to_value(request).unwrap_or_default()))
            .collect();
        Some(InputRequired {
            server: server.to_owned(),
            requests,
            state: asked.request_state,
        })
    }
}

/// The most times one call is sent while the server keeps asking for input.
pub(crate) const MAX_ROUNDS: usize = 10;

/// Who answers a call's input requests, and with what.
pub(crate) struct Answering<'a> {
    pub(crate) server: &'a str,
    pub(crate) input: Option<&'a dyn InputHandler>,
    pub(crate) policy: ElicitationPolicy,
    pub(crate) roots: &'a [String],
}

/// Our answers to `requests`, or why the call cannot go on.
pub(crate) async fn answers(
    by: &Answering<'_>,
    requests: InputRequests,
) -> Result<Option<InputResponses>, Error> {
    let mut answers = InputResponses::new();
    for (key, request) in requests {
        let answer = match request {
            InputRequest::Elicitation(request) => {
                let answer = interaction::elicit(by.server, by.input, by.policy, &request.params);
                serde_json::to_value(answer.await).unwrap_or_default()
            }
            InputRequest::ListRoots(_) => {
                let roots = interaction::list_roots(by.input, by.roots).await;
                serde_json::to_value(roots).unwrap_or_else(|_| json!({"roots": []}))
            }
            InputRequest::CreateMessage(request) => {
                match interaction::sample(by.server, by.input, &request.params).await {
                    Ok(result) => serde_json::to_value(result).unwrap_or_default(),
                    Err(_) => return Err(no_sampling(by.server)),
                }
            }
            _ => {
                return Err(Error::Protocol {
                    server: by.server.to_owned(),
                    reason: "the server asked for a kind of input this version does not know"
                        .to_owned(),
                });
            }
        };
        answers.insert(key, answer);
    }
    Ok((!answers.is_empty()).then_some(answers))
}

fn no_sampling(server: &str) -> Error {
    Error::Protocol {
        server: server.to_owned(),
        reason: "the server needs sampling (an LLM completion from the client) to finish, \
                 which no input handler answered"
            .to_owned(),
    }
}
