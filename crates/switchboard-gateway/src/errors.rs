//! How engine errors look to the gateway's clients: one table per face, by [`ErrorClass`].
//!
//! | class               | MCP `tools/call`           | MCP read / get prompt | REST status |
//! |---------------------|----------------------------|-----------------------|-------------|
//! | `unknown_tool`      | JSON-RPC -32602            | -32602                | 404         |
//! | `not_found`         | JSON-RPC -32602            | -32002 (resource) / -32602 (prompt) | 404 |
//! | `invalid_arguments` | result, `isError: true`    | -32602                | 422         |
//! | `session_limit`     | result, `isError: true`    | -32603                | 429         |
//! | `timeout`           | result, `isError: true`    | -32603                | 504         |
//! | `closed`            | result, `isError: true`    | -32603                | 503         |
//! | any other           | result, `isError: true`    | -32603                | 502         |
//!
//! (`tools/list` fails only when the session's own list of a private-list server cannot be
//! had at all: -32603, like a read.)
//!
//! A request the caller got wrong (no such tool or resource) is a JSON-RPC error, as MCP
//! asks. Arguments that do not fit the tool's input schema are a tool result with
//! `isError: true` (MCP 2025-11-25, SEP-1303: input validation errors are tool execution
//! errors, so the model reads what was wrong and corrects its call; nothing was sent to the
//! server). A call that reached for its server and failed there (unreachable,
//! auth, timeout, the server's own refusal) is a tool result with `isError: true`, so the
//! model sees what happened: its text is the error's message and its `_meta`
//! (`io.switchboard/error`) the engine's [`ErrorReport`] (class, server, delivery, ...).
//! Every JSON-RPC error's `data` is that report too. A tool that ran and reported failure
//! is its own outcome (`isError: true`), passed on untouched (REST: 200).
//!
//! REST error bodies are `{"error": ErrorReport}`. Messages never hold header values, env
//! values or URL queries (the engine's rule), so neither do these bodies. The gateway's own
//! refusals before any handler (401/403/413/429) are `inbound/refusals.rs`; both tables are
//! in `docs/gateway.md`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, MetaObject};
use switchboard::{Error, ErrorClass, ErrorReport};

/// The `_meta` key of a tool result that carries an [`ErrorReport`].
pub const ERROR_META_KEY: &str = "io.switchboard/error";

/// What a failed request is in the MCP face.
#[derive(Debug)]
pub enum McpFailure {
    /// A JSON-RPC error.
    Rpc(ErrorData),
    /// A tool result with `isError: true` (tool calls only).
    ToolResult(CallToolResult),
}

/// Which MCP request failed: they map `not_found` differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpRequest {
    ListTools,
    CallTool,
    ReadResource,
    GetPrompt,
}

/// `error` as the answer to an MCP `request` (see the table above).
pub fn to_mcp(error: &Error, request: McpRequest) -> McpFailure {
    let report = error.report();
    let data = serde_json::to_value(&report).ok();
    let message = report.message.clone();
    let code = match (error.class(), request) {
        (ErrorClass::NotFound, McpRequest::ReadResource) => ErrorCode::RESOURCE_NOT_FOUND,
        (ErrorClass::UnknownTool | ErrorClass::NotFound, _) => ErrorCode::INVALID_PARAMS,
        (_, McpRequest::CallTool) => return McpFailure::ToolResult(error_result(&report)),
        (ErrorClass::InvalidArguments, _) => ErrorCode::INVALID_PARAMS,
        _ => ErrorCode::INTERNAL_ERROR,
    };
    McpFailure::Rpc(ErrorData::new(code, message, data))
}

/// A tool result saying the call failed: the message as text, the report in `_meta`.
fn error_result(report: &ErrorReport) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(report.message.clone())]);
    if let Ok(value) = serde_json::to_value(report) {
        let mut meta = MetaObject::new();
        meta.0.insert(ERROR_META_KEY.to_string(), value);
        result.meta = Some(meta);
    }
    result
}

/// The REST status of an error class (see the table above).
pub fn http_status(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::UnknownTool | ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::InvalidArguments => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorClass::SessionLimit => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorClass::Closed => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::Config
        | ErrorClass::Unreachable
        | ErrorClass::Auth
        | ErrorClass::Protocol
        | ErrorClass::ToolError
        | ErrorClass::Discovery => StatusCode::BAD_GATEWAY,
    }
}

/// An engine error as a REST response: its status, `Retry-After` when the server asked
/// for one, and `{"error": ErrorReport}`.
pub struct RestError(pub Error);

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let report = self.0.report();
        let status = http_status(report.class);
        let retry_after = report
            .retry_after
            .map(|d| d.as_secs().max(1).to_string())
            .and_then(|s| HeaderValue::from_str(&s).ok());
        let mut response = (status, Json(serde_json::json!({ "error": report }))).into_response();
        if let Some(value) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_status() {
        for class in ErrorClass::ALL {
            let status = http_status(class);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{class}"
            );
        }
    }

    #[test]
    fn caller_mistakes_are_rpc_errors_and_upstream_failures_tool_results() {
        let unknown = Error::NoSuchTool {
            name: "nope".into(),
            suggestion: None,
        };
        match to_mcp(&unknown, McpRequest::CallTool) {
            McpFailure::Rpc(e) => assert_eq!(e.code, ErrorCode::INVALID_PARAMS),
            other => panic!("{other:?}"),
        }
        let timeout = Error::Timeout {
            server: "kit".into(),
            phase: switchboard::Phase::CallTool,
            after: std::time::Duration::from_secs(1),
        };
        match to_mcp(&timeout, McpRequest::CallTool) {
            McpFailure::ToolResult(r) => {
                assert_eq!(r.is_error, Some(true));
                let meta = r.meta.expect("meta");
                assert_eq!(meta.0[ERROR_META_KEY]["class"], "timeout");
            }
            other => panic!("{other:?}"),
        }
        match to_mcp(&timeout, McpRequest::ReadResource) {
            McpFailure::Rpc(e) => assert_eq!(e.code, ErrorCode::INTERNAL_ERROR),
            other => panic!("{other:?}"),
        }
    }
}
