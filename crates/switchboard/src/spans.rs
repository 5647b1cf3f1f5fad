//! Spans for distributed tracing, with no OpenTelemetry in the engine.
//!
//! The hub opens a `tracing` span around each tool call (`hub/calls.rs`) and the upstream
//! layer one around each request it sends (`upstream/exchange.rs`), at TRACE under the
//! target [`OTEL_TARGET`], with the field names of the OpenTelemetry MCP semantic
//! conventions (`mcp.method.name`, `gen_ai.tool.name`, `error.type`, …, and `otel.name`,
//! `otel.kind`, `otel.status_code` as `tracing-opentelemetry` reads them). Nothing listens to
//! that target unless a face installs a layer for it (the gateway does when OTLP export is
//! configured); then a span's parent is whatever span the caller runs the call in.
//!
//! Off, a span costs one check of the callsite's cached interest: no field is computed,
//! no `_meta` is injected. Arguments and results are never recorded.
//!
//! [`MetaInjector`] (set with `HubBuilder::meta_injector`) writes the trace context of the
//! request's span into the `params._meta` of every upstream request (W3C `traceparent`,
//! `tracestate`).

use std::sync::Arc;

use rmcp::model::{ClientRequest, ServerResult};
use rmcp::service::ServiceError;

use crate::{Error, JsonObject};

/// The `tracing` target of the engine's spans (and the gateway's server spans).
pub const OTEL_TARGET: &str = "switchboard::otel";

/// Writes the trace context of `span` (an upstream request's span) into the request's
/// `_meta`. Called only while that span is enabled.
pub type MetaInjector = Arc<dyn Fn(&tracing::Span, &mut JsonObject) + Send + Sync>;

/// `error.type` of a failed call or request: our error class (`timeout`, `unreachable`,
/// …), or the server's JSON-RPC code when it answered with an error.
pub(crate) fn error_type(error: &Error) -> String {
    match error {
        Error::Tool {
            code: Some(code), ..
        }
        | Error::Rejected { code, .. } => code.to_string(),
        _ => error.class().as_str().to_owned(),
    }
}

/// Records how a call ended on its span: `error.type` (`tool_error` for an `isError`
/// result) and the span's status.
pub(crate) fn record_call(span: &tracing::Span, result: Result<&crate::CallOutcome, &Error>) {
    match result {
        Ok(outcome) if outcome.is_error => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        Ok(_) => {}
        Err(error) => record_error(span, &error_type(error), &error.to_string()),
    }
}

fn record_error(span: &tracing::Span, error_type: &str, message: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_description", message);
}

/// The name of an upstream request's span, `{method} {target}`, and its target: the tool
/// or prompt name; a resource read is named by its method only (a URI may carry anything).
pub(crate) fn request_target(request: &ClientRequest) -> (&str, Option<&str>) {
    let target = match request {
        ClientRequest::CallToolRequest(call) => Some(call.params.name.as_ref()),
        ClientRequest::GetPromptRequest(get) => Some(get.params.name.as_str()),
        _ => None,
    };
    (request.method(), target)
}

/// Records an upstream request's answer on its span: `error.type` = the JSON-RPC code of
/// an error answer, `tool_error` for an `isError` tool result, else the error class.
/// `transport` is a transport failure as the engine classified it: its class and message
/// are recorded, never rmcp's own text (which may hold a URL).
pub(crate) fn record_response(
    span: &tracing::Span,
    sent: &Result<Result<ServerResult, ServiceError>, Error>,
    transport: Option<&Error>,
) {
    match sent {
        Ok(Ok(ServerResult::CallToolResult(result))) if result.is_error == Some(true) => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        Ok(Ok(_)) => {}
        Ok(Err(ServiceError::McpError(error))) => {
            let code = error.code.0;
            span.record("rpc.response.status_code", code.to_string());
            record_error(span, &code.to_string(), &error.message);
        }
        Ok(Err(ServiceError::Timeout { .. })) => record_error(span, "timeout", "timed out"),
        Ok(Err(ServiceError::TransportClosed)) => {
            record_error(span, "unreachable", "the connection closed")
        }
        Ok(Err(ServiceError::Cancelled { .. })) => record_error(span, "closed", "cancelled"),
        Ok(Err(_)) => match transport {
            Some(error) => record_error(span, &error_type(error), &error.to_string()),
            None => record_error(span, "protocol", "unexpected answer"),
        },
        Err(error) => record_error(span, &error_type(error), &error.to_string()),
    }
}
