//! Resources and prompts of one server (listed by `listing.rs`): reading a resource and
//! getting a prompt (against one absolute deadline, sent and awaited
//! like a tool call by `exchange.rs`: a request whose deadline has passed is not sent, one
//! that runs out of time is cancelled at the server; what the server asks is answered by
//! the call's input handler).
//!
//! A server that does not declare the `resources` (`prompts`) capability is not asked:
//! reading from it is [`Error::NotFound`] at once.
//!
//! Reads and prompts come back as the engine's own [`ResourceRead`] and
//! [`PromptOutcome`].
//!
//! A server that answers a read or a prompt with a JSON-RPC error is
//! [`Error::Rejected`], except when it has no such thing ([`Error::NotFound`]): for
//! `resources/read`, whose only parameter is the URI, "resource not found" (-32002) and
//! "invalid params" (-32602, what the TypeScript SDK answers); for `prompts/get`, whose
//! -32602 may also be about the arguments, when the prompt is not in the server's list.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    ClientRequest, GetPromptRequest, GetPromptRequestParams, InputRequiredResult, InputResponses,
    JsonObject, ReadResourceRequest, ReadResourceRequestParams, ServerResult,
    SubscribeRequestParams, UnsubscribeRequestParams,
};
#[allow(deprecated)] // resources/subscribe: what 2025-11-25 servers take
use rmcp::model::{SubscribeRequest, UnsubscribeRequest};
use tokio::time::Instant;

use super::interaction::CallContext;
use super::listing::PromptList;
use super::outcome::{PromptOutcome, ResourceRead};
use super::{Upstream, classify, input};
use crate::{Error, Phase};

/// JSON-RPC "resource not found" (MCP).
const RESOURCE_NOT_FOUND: i32 = -32002;
/// JSON-RPC "invalid params".
const INVALID_PARAMS: i32 = -32602;

impl Upstream {
    /// Whether the server offers resources (the `resources` capability).
    pub fn offers_resources(&self) -> bool {
        let info = self.peer.peer_info();
        info.is_some_and(|info| info.capabilities.resources.is_some())
    }

    /// Whether the server offers prompts (the `prompts` capability).
    pub fn offers_prompts(&self) -> bool {
        let info = self.peer.peer_info();
        info.is_some_and(|info| info.capabilities.prompts.is_some())
    }

    /// Reads the resource at `uri` (the server's own URI), finishing by `deadline`.
    pub async fn read_resource(&self, uri: &str, deadline: Instant) -> Result<ResourceRead, Error> {
        self.read_resource_with(uri, &CallContext::fixed(deadline))
            .await
    }

    /// [`Upstream::read_resource`] for `call`: its deadline and its input handler.
    pub(crate) async fn read_resource_with(
        &self,
        uri: &str,
        call: &Arc<CallContext>,
    ) -> Result<ResourceRead, Error> {
        if !self.offers_resources() {
            return Err(self.not_offered(format!("resource '{uri}'"), "resources"));
        }
        let request = |responses, state| {
            let mut params = ReadResourceRequestParams::new(uri);
            params.input_responses = responses;
            params.request_state = state;
            ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params))
        };
        let what = format!("resources/read '{uri}'");
        match self
            .request(Phase::ReadResource, request, &what, call)
            .await
        {
            Ok(ServerResult::ReadResourceResult(result)) => Ok(ResourceRead::from(result)),
            // Handed back to the caller (`request`, 2026-07-28 servers only): the hub answers
            // with that instead. From a classic server it is unexpected (below).
            Ok(ServerResult::InputRequiredResult(_)) if self.modern => {
                Ok(ResourceRead { contents: vec![] })
            }
            Ok(_) => Err(self.unexpected(&what)),
            Err(Error::Rejected { code, .. })
                if [RESOURCE_NOT_FOUND, INVALID_PARAMS].contains(&code) =>
            {
                Err(Error::NotFound {
                    server: Some(self.server.to_string()),
                    what: format!("resource '{uri}'"),
                    suggestion: None,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Subscribes (`subscribe`, else unsubscribes) this connection to updates of the
    /// resource at `uri` (the server's own URI): `resources/subscribe` (legacy: a 2026-07-28
    /// server has none and refuses it). Counts as the read phase for timeouts.
    #[allow(deprecated)] // resources/subscribe: what 2025-11-25 servers take
    pub(crate) async fn subscribe_with(
        &self,
        uri: &str,
        subscribe: bool,
        call: &Arc<CallContext>,
    ) -> Result<(), Error> {
        if !self.offers_resources() {
            return Err(self.not_offered(format!("resource '{uri}'"), "resources"));
        }
        let request = |_, _| match subscribe {
            true => ClientRequest::SubscribeRequest(SubscribeRequest::new(
                SubscribeRequestParams::new(uri),
            )),
            false => ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(
                UnsubscribeRequestParams::new(uri),
            )),
        };
        let method = if subscribe {
            "subscribe"
        } else {
            "unsubscribe"
        };
        let what = format!("resources/{method} '{uri}'");
        // `{}` (whatever variant rmcp reads it as): nothing in it to look at.
        self.request(Phase::ReadResource, request, &what, call)
            .await
            .map(drop)
    }

    /// Gets the prompt `name` (the server's own name) with `arguments`, finishing by
    /// `deadline`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Instant,
    ) -> Result<PromptOutcome, Error> {
        self.get_prompt_with(name, arguments, &CallContext::fixed(deadline))
            .await
    }

    /// [`Upstream::get_prompt`] for `call`: its deadline and its input handler.
    pub(crate) async fn get_prompt_with(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        call: &Arc<CallContext>,
    ) -> Result<PromptOutcome, Error> {
        if !self.offers_prompts() {
            return Err(self.not_offered(format!("prompt '{name}'"), "prompts"));
        }
        let request = |responses, state| {
            let mut params = GetPromptRequestParams::new(name);
            params.arguments = arguments.clone();
            params.input_responses = responses;
            params.request_state = state;
            ClientRequest::GetPromptRequest(GetPromptRequest::new(params))
        };
        let what = format!("prompts/get '{name}'");
        match self.request(Phase::GetPrompt, request, &what, call).await {
            Ok(ServerResult::GetPromptResult(result)) => Ok(PromptOutcome::from(result)),
            // Handed back to the caller (`request`, 2026-07-28 servers only): the hub answers
            // with that instead. From a classic server it is unexpected (below).
            Ok(ServerResult::InputRequiredResult(_)) if self.modern => Ok(PromptOutcome {
                description: None,
                messages: vec![],
            }),
            Ok(_) => Err(self.unexpected(&what)),
            // Only on this error path: is it the name or the arguments?
            Err(error @ Error::Rejected { .. }) => match self.list_all::<PromptList>().await {
                Ok((prompts, _)) if !prompts.iter().any(|p| p.name == name) => {
                    Err(Error::NotFound {
                        server: Some(self.server.to_string()),
                        what: format!("prompt '{name}'"),
                        suggestion: None,
                    })
                }
                _ => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// Sends one read-only request made by `request` (given our answers and the server's
    /// state, after it asked for input) for `call`: by its deadline (not sent if it has
    /// passed; cancelled at the server if it runs out or the future is dropped, as
    /// `exchange.rs` does for tool calls). A 2026-07-28 server that asks for input
    /// (SEP-2322) is answered as for a tool call (`input.rs`: the call's input handler,
    /// else the hub's, else the server's policies), at most `MAX_ROUNDS` times.
    pub(super) async fn request(
        &self,
        phase: Phase,
        request: impl Fn(Option<InputResponses>, Option<String>) -> ClientRequest,
        what: &str,
        call: &Arc<CallContext>,
    ) -> Result<ServerResult, Error> {
        let started = Instant::now();
        if call.deadline() <= started {
            return Err(Error::Timeout {
                server: self.server.to_string(),
                phase,
                after: Duration::ZERO,
            });
        }
        self.check_usable()?;
        // A retry of a request handed back starts with its caller's answers.
        let passthrough = call.passthrough.get();
        let (mut responses, mut state) = passthrough.map(|p| p.resumed()).unwrap_or_default();
        for _ in 0..input::MAX_ROUNDS {
            let sent = request(responses.take(), state.take());
            match self.send(sent, call, phase, started).await? {
                Ok(ServerResult::InputRequiredResult(asked)) if self.modern => {
                    // A caller asking its own client: the result goes back to it (kept in
                    // the call's context), and this request ends with it.
                    let asked = match passthrough {
                        Some(passthrough) => passthrough.hand_back(asked.clone()),
                        None => Some(asked),
                    };
                    let Some(asked) = asked else {
                        let handed = InputRequiredResult::new(None, None);
                        return Ok(ServerResult::InputRequiredResult(handed));
                    };
                    let requests = asked.input_requests.unwrap_or_default();
                    let by = input::Answering {
                        server: &self.server,
                        input: call.input.as_deref().or(self.input.as_deref()),
                        policy: self.elicitation,
                        roots: &self.roots,
                    };
                    responses = input::answers(&by, requests).await?;
                    state = asked.request_state;
                }
                Ok(result) => return Ok(result),
                Err(e) => {
                    let (target, elapsed) = (self.target(), started.elapsed());
                    return Err(classify::from_request(target, e, phase, elapsed, what));
                }
            }
        }
        Err(Error::Protocol {
            server: self.server.to_string(),
            reason: format!(
                "{what} asked for input {} times without finishing",
                input::MAX_ROUNDS
            ),
        })
    }

    /// `what` of a server that does not declare the capability for `kind`: not asked.
    fn not_offered(&self, what: String, kind: &str) -> Error {
        Error::NotFound {
            server: Some(self.server.to_string()),
            what: format!("{what}: it offers no {kind}"),
            suggestion: None,
        }
    }

    /// A result of another type than the request's.
    pub(super) fn unexpected(&self, what: &str) -> Error {
        Error::Protocol {
            server: self.server.to_string(),
            reason: format!("{what} returned a result of another type"),
        }
    }
}
