//! What happens between a call's request and its result: a server may ask the caller for
//! input (elicitation: a form to fill or a URL to visit; sampling: an LLM completion) and
//! tell it how far along it is (progress).
//!
//! An [`InputHandler`] answers a server's requests. A hub takes one
//! ([`HubBuilder::input_handler`](crate::hub::HubBuilder::input_handler)), and so does a
//! [`Session`](crate::Session) ([`Session::with_input_handler`](crate::Session::with_input_handler)):
//! the session's handler answers what its calls are asked, the hub's everything else. With
//! neither, a server's `elicitation` policy answers (`decline` by default) and sampling is
//! refused. Every method defaults to the safe answer: decline, not supported.
//!
//! What the client offers servers follows who can answer: elicitation (form mode) when the
//! server's policy accepts or the hub has a handler, URL mode and sampling only when the hub's
//! handler says it answers them. A classic (initialize) connection is shared by every
//! session, so it offers what the hub's handler can answer; a 2026-07-28 server is told on
//! each call what that call's handler can answer.
//!
//! [`CallOptions`] carries a call's deadline, a progress callback (`notifications/progress`
//! for the call, as [`CallProgress`]), a log callback (`notifications/message` sent while
//! the call is in flight, as [`LogMessage`]) and, optionally, a deadline that each progress
//! notification pushes out again, never past a ceiling.
//!
//! None of these types is rmcp's: requests and answers are plain data or MCP's JSON.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

/// What [`InputHandler`]'s methods return: a boxed, sendable future (`Box::pin(async
/// move { ... })`).
pub use futures::future::BoxFuture;

use crate::JsonObject;
use crate::deadline::Deadline;
use crate::upstream::Content;

/// Answers what servers ask the caller in the middle of a call. Every method defaults to
/// the safe answer, so implement only what you answer.
///
/// ```
/// use switchboard::interaction::{
///     BoxFuture, ElicitAnswer, ElicitMode, ElicitRequest, InputHandler,
/// };
///
/// /// Fills every form with the same name.
/// struct Ada;
///
/// impl InputHandler for Ada {
///     fn elicit(&self, request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
///         Box::pin(async move {
///             match request.mode {
///                 ElicitMode::Form { .. } => {
///                     let content = serde_json::json!({"name": "Ada"});
///                     ElicitAnswer::Accept(content.as_object().cloned())
///                 }
///                 // URL mode (and modes this version does not know yet).
///                 _ => ElicitAnswer::Decline,
///             }
///         })
///     }
/// }
/// ```
pub trait InputHandler: Send + Sync + 'static {
    /// Whether [`InputHandler::elicit`] answers URL-mode requests (the client then offers
    /// URL elicitation). Default: no.
    fn answers_url_elicitation(&self) -> bool {
        false
    }

    /// Whether [`InputHandler::elicit`] answers form-mode requests. Default: yes. A handler
    /// that says no leaves forms to the server's `elicitation` policy (a relay whose own
    /// client cannot fill forms, say); the client still offers form elicitation, since a
    /// session's handler may answer what the hub's does not.
    fn answers_form_elicitation(&self) -> bool {
        true
    }

    /// Whether [`InputHandler::sample`] answers (the client then offers sampling).
    /// Default: no. A server may ask anyway (2026-07-28 servers put requests in their
    /// results whatever was offered); `sample` is then called all the same.
    fn answers_sampling(&self) -> bool {
        false
    }

    /// Whether [`InputHandler::roots`] answers (the client then offers roots). Default: no.
    fn answers_roots(&self) -> bool {
        false
    }

    /// A server asks which roots the client offers (`roots/list`). Default: `None`, the
    /// server's configured `roots` (so does a handler that does not answer roots).
    fn roots(&self) -> BoxFuture<'_, Option<Vec<Root>>> {
        Box::pin(std::future::ready(None))
    }

    /// A server asks for input (`elicitation/create`). Default: decline.
    fn elicit(&self, request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        let _ = request;
        Box::pin(std::future::ready(ElicitAnswer::Decline))
    }

    /// A server asks for an LLM completion (`sampling/createMessage`). Default: decline.
    fn sample(&self, request: SamplingRequest) -> BoxFuture<'_, SamplingAnswer> {
        let _ = request;
        Box::pin(std::future::ready(SamplingAnswer::Decline))
    }
}

/// A root the client offers servers (`roots/list`): a `file://` URI, and a name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub uri: String,
    pub name: Option<String>,
}

/// A server asking for input.
#[derive(Debug, Clone, PartialEq)]
pub struct ElicitRequest {
    /// The server's name (as configured).
    pub server: String,
    /// What the server says to the person asked.
    pub message: String,
    pub mode: ElicitMode,
}

/// What kind of input a server asks for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ElicitMode {
    /// Fill a form: `schema` is MCP's restricted JSON schema (an object of primitive
    /// properties, with `title`, `description`, `default`, `enum` as the server gave them).
    Form { schema: JsonObject },
    /// Visit `url` (to sign in, pay, consent) outside the client; `elicitation_id` names
    /// this request in the server's later completion notice.
    Url { url: String, elicitation_id: String },
}

/// The answer to an [`ElicitRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum ElicitAnswer {
    /// Accepted: a form's values (`None` for URL mode).
    Accept(Option<JsonObject>),
    /// Explicitly declined.
    Decline,
    /// Dismissed without a choice.
    Cancel,
}

impl ElicitAnswer {
    /// MCP's `ElicitResult` JSON: `{"action": ..., "content": {...}}`.
    pub fn to_json(&self) -> Value {
        match self {
            ElicitAnswer::Accept(Some(content)) => {
                serde_json::json!({"action": "accept", "content": content})
            }
            ElicitAnswer::Accept(None) => serde_json::json!({"action": "accept"}),
            ElicitAnswer::Decline => serde_json::json!({"action": "decline"}),
            ElicitAnswer::Cancel => serde_json::json!({"action": "cancel"}),
        }
    }
}

/// A server asking for an LLM completion: MCP's `sampling/createMessage` parameters as JSON
/// (`messages`, `systemPrompt`, `maxTokens`, `modelPreferences`, ...), with readers for the
/// common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingRequest {
    /// The server's name (as configured).
    pub server: String,
    pub params: JsonObject,
}

impl SamplingRequest {
    /// `messages`: each `{"role": ..., "content": ...}`.
    pub fn messages(&self) -> &[Value] {
        self.params
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    pub fn system_prompt(&self) -> Option<&str> {
        self.params.get("systemPrompt").and_then(Value::as_str)
    }

    pub fn max_tokens(&self) -> Option<u64> {
        self.params.get("maxTokens").and_then(Value::as_u64)
    }

    /// The text of every message's text content, one message a line.
    pub fn text(&self) -> String {
        let texts = self.messages().iter().flat_map(|message| {
            let content = message.get("content");
            let blocks: Vec<&Value> = match content {
                Some(Value::Array(blocks)) => blocks.iter().collect(),
                Some(block) => vec![block],
                None => Vec::new(),
            };
            blocks
                .into_iter()
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
        });
        texts.collect::<Vec<_>>().join("\n")
    }
}

/// The answer to a [`SamplingRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum SamplingAnswer {
    /// The assistant's message: `model` that wrote it, one content block, and why it
    /// stopped (`endTurn`, `maxTokens`, ...).
    Message {
        model: String,
        content: Content,
        stop_reason: Option<String>,
    },
    /// Refused (the server gets an error, or the call fails on a 2026-07-28 server).
    Decline,
}

impl SamplingAnswer {
    /// A text answer from `model` that ended its turn.
    pub fn text(model: impl Into<String>, text: impl Into<String>) -> SamplingAnswer {
        SamplingAnswer::Message {
            model: model.into(),
            content: Content::text(text),
            stop_reason: Some("endTurn".to_owned()),
        }
    }

    /// MCP's `CreateMessageResult` JSON, `None` for a refusal.
    pub fn to_json(&self) -> Option<Value> {
        let SamplingAnswer::Message {
            model,
            content,
            stop_reason,
        } = self
        else {
            return None;
        };
        let mut result = serde_json::json!({
            "role": "assistant", "content": content.as_json(), "model": model});
        if let Some(reason) = stop_reason {
            result["stopReason"] = Value::String(reason.clone());
        }
        Some(result)
    }
}

/// A server's `notifications/progress` for a call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallProgress {
    /// How far along (increases with every notification).
    pub progress: f64,
    /// Out of how much, when the server knows.
    pub total: Option<f64>,
    pub message: Option<String>,
}

/// Told of a call's progress, in order (a notification that does not advance `progress`
/// is not passed on).
pub type OnProgress = Arc<dyn Fn(&CallProgress) + Send + Sync>;

/// A server's log message (`notifications/message`) sent while a call was in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMessage {
    /// The server's name (as configured).
    pub server: String,
    /// MCP's level, lowercase: `debug`, `info`, `notice`, `warning`, `error`, `critical`,
    /// `alert` or `emergency`.
    pub level: String,
    /// The name of the logger, when the server gave one.
    pub logger: Option<String>,
    /// What the server logged (any JSON).
    pub data: Value,
}

/// Told of the log messages a server sends while a call is in flight.
pub type OnLog = Arc<dyn Fn(&LogMessage) + Send + Sync>;

/// How one call runs: its deadline, who hears its progress and its server's log messages,
/// and whether progress extends its deadline. `CallOptions::default()` is a call with the
/// server's `tool_call_timeout`.
#[derive(Clone, Default)]
pub struct CallOptions {
    pub(crate) deadline: Option<Deadline>,
    pub(crate) on_progress: Option<OnProgress>,
    pub(crate) on_log: Option<OnLog>,
    /// Each progress notification moves the deadline to now + this, never past the ceiling.
    pub(crate) reset: Option<(Duration, Deadline)>,
    /// A 2026-07-28 caller that answers input-required results itself.
    pub(crate) hand_back: bool,
    /// This call continues one that was handed back.
    pub(crate) resume: Option<InputResume>,
    /// What a 2026-07-28 server is told this call's client can answer.
    pub(crate) client_capabilities: Option<JsonObject>,
}

impl CallOptions {
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Finish by `deadline` (default: now + the server's `tool_call_timeout`).
    pub fn deadline(mut self, deadline: impl Into<Deadline>) -> CallOptions {
        self.deadline = Some(deadline.into());
        self
    }

    /// Calls `on_progress` with the call's progress notifications, in order, on the
    /// runtime's threads (keep it short). Every request carries a `progressToken`, so a
    /// server may send progress whether or not anyone listens.
    pub fn on_progress(
        mut self,
        on_progress: impl Fn(&CallProgress) + Send + Sync + 'static,
    ) -> CallOptions {
        self.on_progress = Some(Arc::new(on_progress));
        self
    }

    /// Calls `on_log` with the call's server's log messages (`notifications/message`), in
    /// the order they arrive and before the call returns: those the server writes on the
    /// call's own response stream (Streamable HTTP), from the first, whatever else the
    /// connection carries; and, since MCP ties a log message to no request otherwise (stdio,
    /// SSE, a standalone stream), those it sends while the call is the only request in
    /// flight on its connection. Others are logged (`tracing`, target
    /// `switchboard::upstream`) like every message outside calls.
    pub fn on_log(mut self, on_log: impl Fn(&LogMessage) + Send + Sync + 'static) -> CallOptions {
        self.on_log = Some(Arc::new(on_log));
        self
    }

    /// A deadline that progress keeps alive: the call must finish within `timeout` of its
    /// start or of its last progress notification, and by `ceiling` whatever happens. The
    /// call still has one absolute deadline at any moment (nothing is sent past it); each
    /// progress notification moves it to `min(now + timeout, ceiling)`. A
    /// [`CallOptions::deadline`] set too is the first deadline instead of now + `timeout`.
    pub fn reset_on_progress(mut self, timeout: Duration, ceiling: impl Into<Deadline>) -> Self {
        self.reset = Some((timeout, ceiling.into()));
        self
    }

    /// A 2026-07-28 server's input-required result (SEP-2322) comes back to the caller as
    /// [`CallStep::InputRequired`] ([`Hub::call_step`](crate::Hub::call_step)), or
    /// [`RequestStep::InputRequired`] for a resource read or prompt get
    /// ([`Hub::read_resource_step`](crate::Hub::read_resource_step),
    /// [`Hub::get_prompt_step`](crate::Hub::get_prompt_step)), instead of being answered by
    /// the input handlers: for a caller that asks its own client, such as a gateway serving
    /// a 2026-07-28 client. A classic server's requests in mid-call are still answered by
    /// the handlers.
    pub fn hand_back_input_required(mut self) -> CallOptions {
        self.hand_back = true;
        self
    }

    /// This call is the retry of one handed back: it carries the answers to the server's
    /// input requests and the server's `requestState`. The call is refused when its name no
    /// longer resolves to the server that asked.
    pub fn resume(mut self, resume: InputResume) -> CallOptions {
        self.resume = Some(resume);
        self
    }

    /// Tells a 2026-07-28 server these client capabilities (MCP's `ClientCapabilities` as
    /// JSON) with the call instead of what the input handlers can answer: for a caller
    /// passing its own client's capabilities on, so the server refuses (-32021) what that
    /// client cannot answer. Classic servers learned capabilities at `initialize`.
    pub fn client_capabilities(mut self, capabilities: JsonObject) -> CallOptions {
        self.client_capabilities = Some(capabilities);
        self
    }
}

/// What [`Hub::call_step`](crate::Hub::call_step) ends with: the call's outcome, or the
/// server's request for input, handed back.
#[derive(Debug, Clone, PartialEq)]
pub enum CallStep {
    Done(crate::CallOutcome),
    InputRequired(InputRequired),
}

/// What [`Hub::read_resource_step`](crate::Hub::read_resource_step) and
/// [`Hub::get_prompt_step`](crate::Hub::get_prompt_step) end with: the answer, or the
/// server's request for input, handed back (as [`CallStep`] for tool calls).
#[derive(Debug, Clone, PartialEq)]
pub enum RequestStep<T> {
    Done(T),
    InputRequired(InputRequired),
}

impl<T> RequestStep<T> {
    /// The answer; a request for input is an error (for a caller that takes none).
    pub fn done(self) -> Result<T, crate::Error> {
        match self {
            RequestStep::Done(answer) => Ok(answer),
            RequestStep::InputRequired(asked) => Err(crate::Error::Protocol {
                server: asked.server,
                reason: "the server asked for input, handed back to a caller that takes none"
                    .to_owned(),
            }),
        }
    }
}

/// A server's input-required result (SEP-2322), handed back to the caller: answer
/// `requests` and call again with [`CallOptions::resume`].
#[derive(Debug, Clone, PartialEq)]
pub struct InputRequired {
    /// The server that asked.
    pub server: String,
    /// Each request by its key, as MCP's JSON (`{"method": "elicitation/create", "params":
    /// ...}`, `sampling/createMessage`, `roots/list`).
    pub requests: JsonObject,
    /// The server's `requestState`, opaque, to echo verbatim.
    pub state: Option<String>,
}

/// The retry of a call handed back: the answers by request key (each the result as MCP's
/// JSON) and the server's `requestState` as it was given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputResume {
    /// The server that asked ([`InputRequired::server`]).
    pub server: String,
    pub responses: Option<JsonObject>,
    pub state: Option<String>,
}

impl fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallOptions")
            .field("deadline", &self.deadline)
            .field("on_progress", &self.on_progress.is_some())
            .field("on_log", &self.on_log.is_some())
            .field("reset", &self.reset)
            .field("hand_back", &self.hand_back)
            .field("resume", &self.resume.is_some())
            .finish()
    }
}

impl From<Option<Deadline>> for CallOptions {
    fn from(deadline: Option<Deadline>) -> CallOptions {
        CallOptions {
            deadline,
            ..CallOptions::default()
        }
    }
}
