//! OpenTelemetry traces: OTLP export configured by the standard `OTEL_*` variables, off
//! unless they ask for it.
//!
//! [`from_env`] decides and builds, at `switchboard serve`'s start: on when
//! `OTEL_TRACES_EXPORTER` names `otlp` or an OTLP endpoint variable is set (and
//! `OTEL_SDK_DISABLED` is not `true`). Then a `tracing` layer (listening only to
//! [`OTEL_TARGET`]) turns the engine's spans and the gateway's server spans into OTel spans,
//! batched and sent by `opentelemetry-otlp` over HTTP/protobuf (which reads the endpoint,
//! headers, timeout, compression, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER*` and `OTEL_BSP_*` itself), and [`injector`] puts each upstream
//! request's trace context into its `params._meta`. Off, none of that exists: the spans'
//! callsites are disabled and nothing is extracted or injected.
//!
//! [`server_span`] opens the SERVER span of one downstream request (every MCP method and
//! the REST call); its parent is the W3C `traceparent`/`tracestate` of the request's
//! `params._meta` (SEP-414), else of its HTTP headers (with `_meta`, a header context is a
//! link). Arguments, results and session ids are never recorded (`mcp.session.id` is a hash
//! of the session id: the id itself lets its holder use the session).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use rmcp::ErrorData;
use rmcp::model::CallToolResponse;
use sha2::{Digest, Sha256};
use switchboard::{JsonObject, MetaInjector, OTEL_TARGET};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// How long shutdown waits for the last spans to be sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The layer [`from_env`] builds, for a `tracing_subscriber::Registry`.
pub type OtelLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Why the `OTEL_*` variables cannot be honoured (`switchboard serve` refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error(
        "{var}={value}: switchboard exports traces over OTLP/HTTP only (http/protobuf; gRPC is \
         not built in). Unset {var} or set it to http/protobuf, and point \
         OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port (usually 4318)"
    )]
    Protocol { var: &'static str, value: String },
    #[error(
        "OTEL_TRACES_EXPORTER={0}: switchboard exports traces with `otlp` only; set it to otlp \
         or none"
    )]
    Exporter(String),
    #[error(
        "OTEL_PROPAGATORS={0}: switchboard propagates W3C trace context only; set it to \
         tracecontext (baggage is accepted and not propagated)"
    )]
    Propagator(String),
    #[error("cannot build the OTLP trace exporter: {0}")]
    Build(String),
}

/// The running trace pipeline; [`Tracing::shutdown`] sends what is left.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracing")
    }
}

/// Whether the variables (read through `var`) turn export on; errors for what we do not
/// support. Separate from [`from_env`] so it can be tested without the process environment.
pub fn enabled(var: impl Fn(&str) -> Option<String>) -> Result<bool, OtelError> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    let mut on = None;
    if let Some(exporters) = set("OTEL_TRACES_EXPORTER") {
        for exporter in exporters.split(',').map(str::trim) {
            match exporter {
                "otlp" => on = Some(true),
                "none" => on = on.or(Some(false)),
                _ => return Err(OtelError::Exporter(exporters.clone())),
            }
        }
    }
    let endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    if !on.unwrap_or(endpoint) {
        return Ok(false);
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(value) = set(name) {
            if value != "http/protobuf" {
                return Err(OtelError::Protocol { var: name, value });
            }
            break;
        }
    }
    if let Some(propagators) = set("OTEL_PROPAGATORS") {
        let known = |p: &str| matches!(p.trim(), "tracecontext" | "baggage");
        if !propagators.split(',').all(known) || !propagators.contains("tracecontext") {
            return Err(OtelError::Propagator(propagators));
        }
    }
    Ok(true)
}

/// The trace pipeline the process environment asks for: `None` when export is off. Must
/// run inside the Tokio runtime that serves (the batch processor is a task of it).
pub fn from_env() -> Result<Option<(OtelLayer, Tracing)>, OtelError> {
    if !enabled(|name| std::env::var(name).ok())? {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| OtelError::Build(e.to_string()))?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("switchboard");
    }
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("switchboard");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(Targets::new().with_target(OTEL_TARGET, LevelFilter::TRACE));
    Ok(Some((Box::new(layer), Tracing { provider })))
}

impl Tracing {
    /// Sends the spans still queued, waiting at most 2 s (a collector that is down must not
    /// hold shutdown).
    pub async fn shutdown(self) {
        let (done, finished) = tokio::sync::oneshot::channel();
        let provider = self.provider;
        // The SDK blocks its caller until the batch task has exported: not on a runtime
        // thread, and not on a blocking-pool thread the runtime's shutdown would wait for.
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = done.send(provider.shutdown());
            });
        if spawned.is_err() {
            return;
        }
        match tokio::time::timeout(FLUSH_TIMEOUT, finished).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!("sending the last traces failed: {error}"),
            Ok(Err(_)) => {}
            Err(_) => tracing::warn!(
                "gave up sending the last traces after {}s",
                FLUSH_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The hub's [`MetaInjector`]: the W3C trace context of an upstream request's span.
pub fn injector() -> MetaInjector {
    Arc::new(|span, meta| {
        let context = span.context();
        TraceContextPropagator::new().inject_context(&context, &mut MetaWriter(meta));
    })
}

struct MetaWriter<'a>(&'a mut JsonObject);

impl Injector for MetaWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value.into());
    }
}

struct MetaReader<'a>(&'a JsonObject);

impl Extractor for MetaReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct HeaderReader<'a>(&'a http::HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// One downstream request, as its server span records it.
#[derive(Default)]
pub struct ServerRequest<'a> {
    /// The MCP method (`tools/call`, …).
    pub method: &'a str,
    /// The tool or prompt name, when there is one: the span is named `{method} {target}`.
    pub target: Option<&'a str>,
    /// The MCP session id (recorded hashed), when the request belongs to a session.
    pub session: Option<&'a str>,
    /// The JSON-RPC request id.
    pub request_id: Option<&'a dyn Display>,
    /// The request's `params._meta`.
    pub meta: Option<&'a JsonObject>,
    /// The request's HTTP headers.
    pub headers: Option<&'a http::HeaderMap>,
    /// `http` for the REST API (`network.protocol.name`); MCP requests leave it unset.
    pub protocol: Option<&'static str>,
}

/// Whether server spans are being recorded (export is on): callers skip gathering a
/// [`ServerRequest`] when not.
pub fn tracing_on() -> bool {
    tracing::enabled!(target: OTEL_TARGET, tracing::Level::TRACE)
}

/// The SERVER span of one downstream request; a disabled span (costing nothing) unless
/// traces are exported. Run the request's work inside it (`.instrument`), then tell it how
/// the request ended ([`record_error`], [`record_call`]). Used by every MCP handler in
/// `mcp/` and by the REST call.
pub fn server_span(request: &ServerRequest<'_>) -> tracing::Span {
    let span = tracing::trace_span!(
        target: OTEL_TARGET,
        "mcp.server",
        otel.name = tracing::field::Empty,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        mcp.method.name = request.method,
        gen_ai.tool.name = tracing::field::Empty,
        gen_ai.prompt.name = tracing::field::Empty,
        gen_ai.operation.name = tracing::field::Empty,
        mcp.session.id = tracing::field::Empty,
        jsonrpc.request.id = tracing::field::Empty,
        network.transport = "tcp",
        network.protocol.name = request.protocol,
        error.type = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    match request.target {
        Some(target) => span.record("otel.name", format!("{} {target}", request.method)),
        None => span.record("otel.name", request.method),
    };
    match request.method {
        "tools/call" => {
            span.record("gen_ai.tool.name", request.target);
            span.record("gen_ai.operation.name", "execute_tool");
        }
        "prompts/get" => {
            span.record("gen_ai.prompt.name", request.target);
        }
        _ => {}
    }
    if let Some(session) = request.session {
        span.record("mcp.session.id", session_hash(session));
    }
    if let Some(id) = request.request_id {
        span.record("jsonrpc.request.id", id.to_string());
    }
    let propagator = TraceContextPropagator::new();
    let from_meta = request
        .meta
        .map(|meta| propagator.extract(&MetaReader(meta)))
        .filter(|cx| cx.span().span_context().is_valid());
    let from_headers = request
        .headers
        .map(|headers| propagator.extract(&HeaderReader(headers)))
        .filter(|cx| cx.span().span_context().is_valid());
    match (from_meta, from_headers) {
        (Some(parent), link) => {
            let _ = span.set_parent(parent);
            if let Some(link) = link {
                span.add_link(link.span().span_context().clone());
            }
        }
        (None, Some(parent)) => {
            let _ = span.set_parent(parent);
        }
        (None, None) => {}
    }
    span
}

/// `mcp.session.id`: the first 16 bytes of the id's SHA-256, hex (the id is a credential).
fn session_hash(session: &str) -> String {
    let digest = Sha256::digest(session.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Records a failed request: `error.type` and the span's status (with `message`, if any).
pub fn record_error(span: &tracing::Span, error_type: &str, message: &str) {
    if span.is_disabled() {
        return;
    }
    span.record("error.type", error_type);
    match message.is_empty() {
        true => span.record("otel.status_code", "error"),
        false => span.record("otel.status_description", message),
    };
}

/// Records a JSON-RPC error answer: its code as `error.type`.
pub fn record_rpc_error(span: &tracing::Span, error: &ErrorData) {
    if span.is_disabled() {
        return;
    }
    record_error(span, &error.code.0.to_string(), &error.message);
}

/// Records how a `tools/call` was answered: a JSON-RPC error's code, or `tool_error` for an
/// `isError` result (whose content is never recorded).
pub fn record_call(span: &tracing::Span, answer: &Result<CallToolResponse, ErrorData>) {
    if span.is_disabled() {
        return;
    }
    match answer {
        Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "error");
        }
        Ok(_) => {}
        Err(error) => record_rpc_error(span, error),
    }
}

#[cfg(test)]
mod tests {
    use super::{OtelError, enabled};

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn off_unless_asked() {
        assert!(!enabled(vars(&[])).unwrap());
        assert!(!enabled(vars(&[("OTEL_SERVICE_NAME", "x")])).unwrap());
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(enabled(vars(&[endpoint])).unwrap());
        assert!(enabled(vars(&[("OTEL_TRACES_EXPORTER", "otlp")])).unwrap());
        assert!(!enabled(vars(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")])).unwrap());
        assert!(!enabled(vars(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")])).unwrap());
    }

    #[test]
    fn grpc_and_others_are_refused_clearly() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317");
        let grpc = enabled(vars(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]));
        let message = grpc.unwrap_err().to_string();
        assert!(
            message.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
            "{message}"
        );
        assert!(message.contains("http/protobuf"), "{message}");
        // The traces-specific variable wins over the general one.
        let specific = vars(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ]);
        assert!(enabled(specific).unwrap());
        let zipkin = enabled(vars(&[("OTEL_TRACES_EXPORTER", "zipkin")]));
        assert!(matches!(zipkin, Err(OtelError::Exporter(_))));
        let b3 = enabled(vars(&[endpoint, ("OTEL_PROPAGATORS", "b3")]));
        assert!(matches!(b3, Err(OtelError::Propagator(_))));
        let usual = vars(&[endpoint, ("OTEL_PROPAGATORS", "tracecontext,baggage")]);
        assert!(enabled(usual).unwrap());
        // Off, nothing is checked: the variables may be meant for other programs.
        assert!(!enabled(vars(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap());
    }
}
