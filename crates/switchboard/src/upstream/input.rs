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

use rmcp::model::{InputRequest, InputRequests, InputResponses};
use serde_json::json;

use super::interaction;
use crate::config::ElicitationPolicy;
use crate::error::Error;
use crate::interaction::InputHandler;

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
