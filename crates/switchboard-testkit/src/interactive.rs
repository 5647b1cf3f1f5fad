//! Tools that need the client in the middle of a call, for both lifecycles: a classic
//! (initialize) client is asked with a server-to-client request; a 2026-07-28 client, which
//! may not be sent requests, gets an input-required result carrying the same request, and
//! the call sent again with `inputResponses` returns the answer.
//!
//! - `ask`: a form (name, age, both with defaults); returns the answer (`ElicitResult`) as JSON.
//! - `visit`: a URL-mode elicitation; returns the answer as JSON.
//! - `sample`: `sampling/createMessage` (one user message, `prompt`); returns the client's
//!   `CreateMessageResult` as JSON.
//! - `progress`: sends `count` progress notifications (`delay_ms` apart, and `delay_ms`
//!   after the last), then returns `done <count>`. Cancelled, it stops. With `log: true`
//!   each step also logs (`notifications/message`, logger `testkit`): `step N of COUNT` at
//!   `debug`, then at `info`.
//!
//! Also `confirm` (2026-07-28 clients only: an input-required result whatever the client
//! offers; run from `tools.rs`) and its form, which the `confirm` prompt asks too.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, InputRequiredResult,
    JsonObject, ProgressNotificationParam, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use serde_json::{Value, json};

use crate::tools::schema;

/// The names of the tools this module runs.
pub(crate) const TOOLS: [&str; 4] = ["ask", "visit", "sample", "progress"];

pub(crate) fn tools() -> Vec<Tool> {
    let empty = || schema(json!({"type": "object", "properties": {}}));
    vec![
        Tool::new(
            "ask",
            "Asks the client for input (a form: name, age, both with defaults) and returns its answer as JSON.",
            empty(),
        ),
        Tool::new(
            "visit",
            "Asks the client to visit a URL (URL-mode elicitation) and returns its answer as JSON.",
            empty(),
        ),
        Tool::new(
            "sample",
            "Asks the client for an LLM completion of `prompt` (sampling/createMessage) and returns its answer as JSON.",
            schema(json!({"type": "object",
                "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]})),
        ),
        Tool::new(
            "progress",
            "Sends `count` progress notifications, `delay_ms` apart (and after the last), then returns `done <count>`.",
            schema(json!({"type": "object", "properties": {
                "count": {"type": "integer", "minimum": 0},
                "delay_ms": {"type": "integer", "minimum": 0},
                "log": {"type": "boolean"}}})),
        ),
    ]
}

/// Runs one of [`TOOLS`].
pub(crate) async fn run(
    request: CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let name = request.name.to_string();
    let args = request.arguments.clone().unwrap_or_default();
    if name == "progress" {
        return progress(&args, context).await.map(CallToolResponse::from);
    }
    let (method, params) = match name.as_str() {
        "ask" => (
            "elicitation/create",
            json!({"mode": "form", "message": "Who is calling?",
                "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "default": "Ada"},
                    "age": {"type": "integer", "default": 36}}}}),
        ),
        "visit" => (
            "elicitation/create",
            json!({"mode": "url", "message": "Sign in to continue",
                "url": "https://example.com/sign-in", "elicitationId": "visit-1"}),
        ),
        _ => {
            let prompt = args.get("prompt").and_then(Value::as_str).unwrap_or("hi");
            (
                "sampling/createMessage",
                json!({"messages": [{"role": "user",
                    "content": {"type": "text", "text": prompt}}], "maxTokens": 100}),
            )
        }
    };
    let modern = context
        .protocol_version()
        .is_some_and(|v| !v.has_initialize());
    if modern {
        return Ok(ask_modern(request, method, params));
    }
    let answer = ask_classic(method, params, context).await;
    Ok(CallToolResponse::from(text(answer)))
}

/// A 2026-07-28 client: ask in an input-required result; sent again, return the answer.
fn ask_modern(request: CallToolRequestParams, method: &str, params: Value) -> CallToolResponse {
    match request.input_responses {
        Some(mut answers) => {
            let answer = answers.remove("input").unwrap_or(Value::Null);
            CallToolResponse::from(text(answer.to_string()))
        }
        None => {
            let asked = json!({"input": {"method": method, "params": params}});
            match serde_json::from_value(asked) {
                Ok(asked) => CallToolResponse::InputRequired(InputRequiredResult::new(
                    Some(asked),
                    Some("asked".to_owned()),
                )),
                Err(error) => {
                    CallToolResponse::from(CallToolResult::error(vec![ContentBlock::text(
                        format!("bad input request: {error}"),
                    )]))
                }
            }
        }
    }
}

/// A classic client: send it the request; the answer (or why none came) as text.
async fn ask_classic(method: &str, params: Value, context: &RequestContext<RoleServer>) -> String {
    let peer = &context.peer;
    let answer = if method == "elicitation/create" {
        match serde_json::from_value(params) {
            Ok(params) => peer
                .create_elicitation(params)
                .await
                .map(|answer| serde_json::to_string(&answer).unwrap_or_default()),
            Err(error) => return format!("bad elicitation: {error}"),
        }
    } else {
        #[allow(deprecated)] // sampling (SEP-2577): still what clients answer
        match serde_json::from_value(params) {
            Ok(params) => peer
                .create_message(params)
                .await
                .map(|answer| serde_json::to_string(&answer).unwrap_or_default()),
            Err(error) => return format!("bad sampling request: {error}"),
        }
    };
    answer.unwrap_or_else(|error| format!("{method} failed: {error}"))
}

async fn progress(
    args: &JsonObject,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let count = args.get("count").and_then(Value::as_u64).unwrap_or(3);
    let delay = Duration::from_millis(args.get("delay_ms").and_then(Value::as_u64).unwrap_or(50));
    let token = context.meta.get_progress_token();
    let log = args.get("log").and_then(Value::as_bool).unwrap_or(false);
    for step in 1..=count {
        if log {
            log_step(context, step, count).await;
        }
        if let Some(token) = &token {
            let mut params = ProgressNotificationParam::new(token.clone(), step as f64);
            params.total = Some(count as f64);
            params.message = Some(format!("step {step} of {count}"));
            if let Err(error) = context.peer.notify_progress(params).await {
                tracing::warn!(%error, "could not send progress");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = context.ct.cancelled() => {
                return Err(McpError::internal_error("request cancelled", None));
            }
        }
    }
    Ok(text(format!("done {count}")))
}

/// `step N of COUNT` logged at `debug`, then at `info`.
#[allow(deprecated)] // logging (SEP-2577): servers still log
async fn log_step(context: &RequestContext<RoleServer>, step: u64, count: u64) {
    use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
    for level in [LoggingLevel::Debug, LoggingLevel::Info] {
        let mut params =
            LoggingMessageNotificationParam::new(level, json!(format!("step {step} of {count}")));
        params.logger = Some("testkit".to_owned());
        if let Err(error) = context.peer.notify_logging_message(params).await {
            tracing::warn!(%error, "could not log");
        }
    }
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// `confirm` (2026-07-28 clients): the first call asks for input (a form with a default,
/// and state `round-1`); the call sent again with answers returns what it got back.
pub(crate) fn confirm(request: CallToolRequestParams) -> Result<CallToolResponse, McpError> {
    let Some(answers) = request.input_responses else {
        return Ok(CallToolResponse::InputRequired(confirm_form()?));
    };
    let got = json!({"answers": answers, "state": request.request_state});
    Ok(CallToolResponse::from(text(got.to_string())))
}

/// The input `confirm` asks for: a form with a default (`go`), and state `round-1`.
pub(crate) fn confirm_form() -> Result<InputRequiredResult, McpError> {
    let form = json!({"method": "elicitation/create", "params": {"mode": "form",
        "message": "Go ahead?", "requestedSchema": {"type": "object",
            "properties": {"go": {"type": "boolean", "default": true}}}}});
    let asked = serde_json::from_value(json!({"confirm": form}))
        .map_err(|e| McpError::internal_error(format!("bad input request: {e}"), None))?;
    let state = Some("round-1".to_owned());
    Ok(InputRequiredResult::new(Some(asked), state))
}
