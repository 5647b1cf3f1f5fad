//! The REST face under `/v1/`, and the probes.
//!
//! - `GET /v1/tools?format=json|openai|openai-responses|anthropic`: the catalogue as the
//!   request's session sees it, as `ExposedTool` rows (`json`, the default) or a provider's
//!   function-calling form.
//! - `POST /v1/tools/{name}/call`: the body is the arguments (a JSON object; empty for
//!   none); the answer is the `CallOutcome` (200, also when the tool reported failure:
//!   `isError: true`), or `{"error": ErrorReport}` with the status of its class
//!   ([`crate::errors`]). Calls run in the engine session of the request's session headers
//!   and verified claims ([`crate::identity`]).
//! - `GET /v1/health`: the hub's `Health`; 200 when `healthy` or `degraded` (the body says
//!   which: a gateway that still serves most tools stays in its load balancer), 503 when
//!   `unhealthy`.
//! - `GET /healthz`: 200 while the process serves (liveness).
//! - `GET /readyz`: 200 once the hub has started under its registration policy (the
//!   gateway listens only after that) and until shutdown begins (SIGTERM, before any
//!   `shutdown_delay`); then 503.
//!
//! With a `[scale]` store, both say whether it answers (`"store"`); a store that is down
//! makes `/v1/health` `degraded` but `/readyz` stays 200.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard::{ExportFormat, JsonObject, Overall};
use tracing::Instrument;

use crate::errors::RestError;
use crate::metrics::{call_error_type, error_type};
use crate::otel;
use crate::state::GatewayState;

pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/v1/tools", get(list_tools))
        .route("/v1/tools/{name}/call", post(call_tool))
        .route("/v1/health", get(health))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

#[derive(Deserialize)]
struct ToolsQuery {
    format: Option<String>,
}

/// The formats `GET /v1/tools` takes.
const FORMATS: &str = "json, openai, openai-responses, anthropic";

async fn list_tools(
    State(state): State<Arc<GatewayState>>,
    Query(query): Query<ToolsQuery>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    // The catalogue as the caller's session sees it (private lists of per_session servers).
    let started = Instant::now();
    let session = state.identity.shared_session(&headers, &extensions);
    let catalog = state.hub.catalog_in(session.as_ref()).await;
    let failure = error_type(&catalog);
    state.metrics.served("tools/list", None, started, failure);
    let catalog = match catalog {
        Ok(catalog) => catalog,
        Err(error) => return RestError(error).into_response(),
    };
    let export = |format| Json(catalog.export(format)).into_response();
    match query.format.as_deref().unwrap_or("json") {
        "json" => Json(catalog.tools()).into_response(),
        "openai" => export(ExportFormat::OpenAiChat),
        "openai-responses" => export(ExportFormat::OpenAiResponses),
        "anthropic" => export(ExportFormat::Anthropic),
        other => bad_request(format!("unknown format {other:?}: use one of {FORMATS}")),
    }
}

async fn call_tool(
    State(state): State<Arc<GatewayState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let arguments = match arguments(&body) {
        Ok(arguments) => arguments,
        Err(problem) => return bad_request(problem),
    };
    if state.drain.is_draining() {
        return RestError(crate::drain::shutting_down()).into_response();
    }
    let started = Instant::now();
    let session = state.identity.shared_session(&headers, &extensions);
    let call = state.hub.call_in(session.as_ref(), &name, arguments, None);
    let span = match otel::tracing_on() {
        true => otel::server_span(&otel::ServerRequest {
            method: "tools/call",
            target: Some(&name),
            headers: Some(&headers),
            protocol: Some("http"),
            ..otel::ServerRequest::default()
        }),
        false => tracing::Span::none(),
    };
    let result = match span.is_disabled() {
        true => call.await,
        false => call.instrument(span.clone()).await,
    };
    let failure = call_error_type(&result);
    // REST answers errors as reports of their class, not JSON-RPC codes.
    match &result {
        Ok(outcome) if outcome.is_error => otel::record_error(&span, "tool_error", ""),
        Ok(_) => {}
        Err(error) => otel::record_error(&span, error.class().as_str(), &error.to_string()),
    }
    state
        .metrics
        .served("tools/call", Some(&name), started, failure);
    match result {
        Ok(outcome) => Json(outcome).into_response(),
        Err(error) => RestError(error).into_response(),
    }
}

/// The request body as arguments: empty or `null` for none, else a JSON object.
fn arguments(body: &[u8]) -> Result<Option<JsonObject>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(arguments)) => Ok(Some(arguments)),
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err("the body must be a JSON object of arguments".to_string()),
        Err(error) => Err(format!("the body is not JSON: {error}")),
    }
}

/// A request the gateway cannot read: 400 with the same `{"error": {...}}` shape.
fn bad_request(message: String) -> Response {
    let body = json!({ "error": { "class": "invalid_request", "message": message } });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn health(State(state): State<Arc<GatewayState>>) -> Response {
    let health = state.hub.health();
    let status = match health.overall {
        Overall::Healthy | Overall::Degraded => StatusCode::OK,
        Overall::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = serde_json::to_value(&health).unwrap_or_default();
    // [scale] store: a store that is down degrades the gateway (sessions it holds still
    // work; others and new ones do not) but does not take it out of its load balancer.
    if let Some(up) = state.scale.as_ref().and_then(|s| s.store_up()) {
        body["store"] = json!({ "kind": "redis", "up": up });
        if !up && health.overall == Overall::Healthy {
            body["overall"] = json!("degraded");
        }
    }
    (status, Json(body)).into_response()
}

async fn ready(State(state): State<Arc<GatewayState>>) -> Response {
    if !state.drain.is_ready() {
        let body = json!({ "ready": false, "reason": "shutting down" });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let mut body = json!({ "ready": true });
    // Said, not acted on: every replica shares the store, so taking them all out of the
    // load balancer would also stop the sessions that still work (b.6).
    if let Some(up) = state.scale.as_ref().and_then(|s| s.store_up()) {
        body["store"] = json!(if up { "up" } else { "down" });
    }
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::arguments;

    #[test]
    fn bodies_are_objects_or_nothing() {
        assert_eq!(arguments(b"").unwrap(), None);
        assert_eq!(arguments(b" null ").unwrap(), None);
        assert_eq!(arguments(br#"{"a":1}"#).unwrap().unwrap()["a"], 1);
        assert!(arguments(b"[1]").is_err());
        assert!(arguments(b"{").is_err());
    }
}
