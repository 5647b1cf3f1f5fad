//! Input-required results (SEP-2322, protocol revision 2026-07-28): a server that needs
//! input to finish a call answers with requests for it instead of a result. The call is then
//! sent again, under a new JSON-RPC id, with our answers and the server's `requestState`
//! echoed verbatim (and none when it sent none), at most [`MAX_ROUNDS`] times within the
//! call's one deadline (`Upstream::call_tool`; resource reads and prompt gets the same way,
//! `resources.rs`).
//!
//! Answers follow the server's configuration: an elicitation gets what its `elicitation`
//! policy says (`handler.rs`), a roots request its `roots`. Sampling is not offered, so a call
//! that needs it fails, saying so. rmcp's own round driver (`call_tool_with_mrtr_max_rounds`)
//! is not used: it takes no deadline and does not cancel at the server on timeout.

use rmcp::model::{InputRequest, InputRequests, InputResponses};
use serde_json::json;

use super::handler::{answer_elicitation, roots};
use crate::config::ElicitationPolicy;
use crate::error::Error;

/// The most times one call is sent while the server keeps asking for input.
pub(crate) const MAX_ROUNDS: usize = 10;

/// Our answers to `requests` from `server`, or why the call cannot go on.
pub(crate) fn answers(
    server: &str,
    policy: ElicitationPolicy,
    configured_roots: &[String],
    requests: InputRequests,
) -> Result<Option<InputResponses>, Error> {
    let mut answers = InputResponses::new();
    for (key, request) in requests {
        let answer = match request {
            InputRequest::Elicitation(request) => {
                serde_json::to_value(answer_elicitation(policy, server, &request.params))
                    .unwrap_or_default()
            }
            InputRequest::ListRoots(_) => serde_json::to_value(roots(configured_roots))
                .unwrap_or_else(|_| json!({"roots": []})),
            // Sampling (`CreateMessage`), or a kind of request this version does not know.
            _ => {
                return Err(Error::Protocol {
                    server: server.to_owned(),
                    reason: "the server needs sampling (an LLM completion from the client) \
                             to finish, which Switchboard does not offer"
                        .to_owned(),
                });
            }
        };
        answers.insert(key, answer);
    }
    Ok((!answers.is_empty()).then_some(answers))
}
