//! `/metrics`: what the gateway does, in the Prometheus text format (0.0.4).
//!
//! Names follow the OpenTelemetry MCP semantic conventions as Prometheus renders them
//! (`mcp.server.operation.duration` in seconds → `mcp_server_operation_duration_seconds`):
//!
//! - `mcp_server_operation_duration_seconds` (histogram): each downstream request the
//!   gateway answered (MCP `/mcp` requests and REST tool calls and lists), labels
//!   `mcp_method_name`, `gen_ai_tool_name` (`tools/call`), `error_type` (when it failed);
//! - `mcp_client_operation_duration_seconds` (histogram): each upstream tool call,
//!   resource read and prompt get (the engine's [`CallLayer`]), the same labels (the
//!   tool's own name) and `server`;
//! - `switchboard_downstream_sessions` (gauge): open downstream MCP sessions;
//! - `switchboard_upstream_connections{server}` (gauge): the server's shared connection
//!   (counted while it is `ready`) and its per-session ones, read from the hub at scrape;
//! - `switchboard_server_state{server,state}` (gauge): 1 for the server's current state,
//!   0 for the others ([`ServerState`]);
//! - `switchboard_config_reloads_total{result}` (counter): reloads `applied` or `failed`;
//! - `switchboard_session_rejected_total{reason}` (counter, `[scale]`): session ids the
//!   gate refused (`bad`, `expired`, `unknown_key`, `identity`);
//! - `switchboard_store_up` (gauge, `[scale]` store): 1 while Redis answers.
//!
//! `error_type` is the engine's [`ErrorClass`] name when the engine failed the request
//! (`timeout`, `unreachable`, `unknown_tool`, ...), `tool_error` when the tool answered
//! `isError: true` (OpenTelemetry's own value for that case). The histograms are the only
//! per-call work: one label set (a `String` for the tool, one for the server) and one
//! lookup under a read lock per observation; the hub gauges cost nothing until scraped.
//! A tool name a client made up (`unknown_tool`) is not a label value, so clients cannot
//! grow the series without bound.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use switchboard::hub::{CallInfo, CallLayer, RequestInfo};
use switchboard::{CallOutcome, Error, ErrorClass, Hub, ServerState};

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Histogram buckets (seconds): 100 µs (a catalogue answered from memory) to 60 s (a
/// long tool call), about 2.5x apart.
pub const BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 15.0, 60.0,
];

/// Every [`ServerState`], for the state gauge's zeros.
const STATES: [ServerState; 5] = [
    ServerState::Ready,
    ServerState::Skipped,
    ServerState::NeedsAuth,
    ServerState::Retrying,
    ServerState::Disabled,
];

/// The gateway's metrics. Cheap to clone; every clone is the same set.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    served: Operations,
    upstream: Operations,
    downstream_sessions: Gauge,
    reloads: Family<ReloadLabels, Counter>,
    rejected: Family<RejectedLabels, Counter>,
}

type Operations = Family<Operation, Histogram, fn() -> Histogram>;

/// One operation's labels. `server` is set for upstream operations only.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Operation {
    method: &'static str,
    tool: Option<String>,
    server: Option<String>,
    error: Option<&'static str>,
}

impl EncodeLabelSet for Operation {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), fmt::Error> {
        ("mcp_method_name", self.method).encode(encoder.encode_label())?;
        if let Some(tool) = &self.tool {
            ("gen_ai_tool_name", tool.as_str()).encode(encoder.encode_label())?;
        }
        if let Some(server) = &self.server {
            ("server", server.as_str()).encode(encoder.encode_label())?;
        }
        if let Some(error) = self.error {
            ("error_type", error).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct RejectedLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct StateLabels {
    server: String,
    state: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let served = Operations::new_with_constructor(histogram);
        let upstream = Operations::new_with_constructor(histogram);
        let downstream_sessions = Gauge::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let rejected = Family::<RejectedLabels, Counter>::default();
        registry.register_with_unit(
            "mcp_server_operation_duration",
            "Downstream requests the gateway answered (MCP and REST)",
            Unit::Seconds,
            served.clone(),
        );
        registry.register_with_unit(
            "mcp_client_operation_duration",
            "Tool calls, resource reads and prompt gets the gateway sent to upstream servers",
            Unit::Seconds,
            upstream.clone(),
        );
        registry.register(
            "switchboard_downstream_sessions",
            "Open downstream MCP sessions",
            downstream_sessions.clone(),
        );
        registry.register(
            "switchboard_config_reloads",
            "Config reloads, applied or failed (the old config kept)",
            reloads.clone(),
        );
        registry.register(
            "switchboard_session_rejected",
            "Session ids refused with 404 before reaching a session ([scale]): bad, expired, \
             unknown_key or identity",
            rejected.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                served,
                upstream,
                downstream_sessions,
                reloads,
                rejected,
            }),
        }
    }

    /// The call layer that times upstream tool calls: add it to the hub the gateway serves
    /// (`Hub::builder().layer(metrics.upstream_calls())`).
    pub fn upstream_calls(&self) -> UpstreamCalls {
        UpstreamCalls {
            metrics: self.clone(),
        }
    }

    /// One downstream request answered: `method` (`tools/call`, ...) for `tool`, begun at
    /// `started`, failed with `error` (see [`error_type`]).
    pub(crate) fn served(
        &self,
        method: &'static str,
        tool: Option<&str>,
        started: Instant,
        error: Option<&'static str>,
    ) {
        let operation = Operation {
            method,
            tool: tool_label(tool, error),
            server: None,
            error,
        };
        let elapsed = started.elapsed().as_secs_f64();
        self.inner.served.get_or_create(&operation).observe(elapsed);
    }

    /// A downstream MCP session began; [`Metrics::session_ended`] when it ends.
    pub(crate) fn session_started(&self) {
        self.inner.downstream_sessions.inc();
    }

    pub(crate) fn session_ended(&self) {
        self.inner.downstream_sessions.dec();
    }

    /// A config reload was applied (`true`) or refused (`false`).
    pub(crate) fn reloaded(&self, applied: bool) {
        let result = if applied { "applied" } else { "failed" };
        self.inner
            .reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// A session id refused by the gate (`scale/`), for `reason`.
    pub(crate) fn session_rejected(&self, reason: &'static str) {
        let labels = RejectedLabels { reason };
        self.inner.rejected.get_or_create(&labels).inc();
    }

    /// Everything, with the hub's gauges as they are now.
    pub fn render(&self, hub: &Hub) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.inner.registry);
        let _ = prometheus_text::encode(&mut text, &hub_gauges(hub));
        text
    }
}

/// The hub's gauges, read now: a registry made per scrape.
fn hub_gauges(hub: &Hub) -> Registry {
    let connections = Family::<ServerLabels, Gauge>::default();
    let states = Family::<StateLabels, Gauge>::default();
    for server in hub.health().servers {
        let shared = i64::from(server.state == ServerState::Ready);
        let sessions = i64::try_from(hub.session_count(&server.name)).unwrap_or(i64::MAX);
        connections
            .get_or_create(&ServerLabels {
                server: server.name.clone(),
            })
            .set(shared.saturating_add(sessions));
        for state in STATES {
            let labels = StateLabels {
                server: server.name.clone(),
                state: state.as_str(),
            };
            states
                .get_or_create(&labels)
                .set(i64::from(state == server.state));
        }
    }
    let mut registry = Registry::default();
    registry.register(
        "switchboard_upstream_connections",
        "Open upstream connections per server: the shared one (while ready) and per-session ones",
        connections,
    );
    registry.register(
        "switchboard_server_state",
        "Each server's state: 1 for the current one",
        states,
    );
    registry
}

/// `switchboard_store_up` (`[scale]` with a store): 1 while the session store answers, 0
/// while its breaker is open (Redis failed repeatedly), read at scrape.
pub(crate) fn store_gauge(up: bool) -> String {
    let gauge = Gauge::<i64>::default();
    gauge.set(i64::from(up));
    let mut registry = Registry::default();
    registry.register(
        "switchboard_store_up",
        "Whether the [scale] session store (Redis) answers",
        gauge,
    );
    let mut text = String::new();
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}

/// A tool name is a label value only for a tool that exists: names clients made up would
/// add series without bound.
fn tool_label(tool: Option<&str>, error: Option<&'static str>) -> Option<String> {
    match error {
        Some(class) if class == ErrorClass::UnknownTool.as_str() => None,
        _ => tool.map(str::to_owned),
    }
}

/// `error_type` of a request's result: the error's class, or none.
pub(crate) fn error_type<T>(result: &Result<T, Error>) -> Option<&'static str> {
    result.as_ref().err().map(|error| error.class().as_str())
}

/// `error_type` of a tool call's result: also `tool_error` for an `isError` result.
pub(crate) fn call_error_type(result: &Result<CallOutcome, Error>) -> Option<&'static str> {
    match result {
        Ok(outcome) if outcome.is_error => Some(ErrorClass::ToolError.as_str()),
        _ => error_type(result),
    }
}

/// Times upstream tool calls, reads and prompt gets into `mcp_client_operation_duration_seconds`; from
/// [`Metrics::upstream_calls`].
#[derive(Debug, Clone)]
pub struct UpstreamCalls {
    metrics: Metrics,
}

impl CallLayer for UpstreamCalls {
    fn after(&self, call: &CallInfo<'_>, result: &Result<CallOutcome, Error>, elapsed: Duration) {
        let operation = Operation {
            method: "tools/call",
            tool: Some(call.tool.to_owned()),
            server: Some(call.server.to_owned()),
            error: call_error_type(result),
        };
        self.metrics
            .inner
            .upstream
            .get_or_create(&operation)
            .observe(elapsed.as_secs_f64());
    }

    /// A round that ended with the server asking for input (handed to a 2026-07-28 client)
    /// is an answered request: no error.
    fn handed_back(&self, call: &CallInfo<'_>, elapsed: Duration) {
        let operation = Operation {
            method: "tools/call",
            tool: Some(call.tool.to_owned()),
            server: Some(call.server.to_owned()),
            error: None,
        };
        self.metrics
            .inner
            .upstream
            .get_or_create(&operation)
            .observe(elapsed.as_secs_f64());
    }

    fn after_request(&self, request: &RequestInfo<'_>, error: Option<&Error>, elapsed: Duration) {
        let operation = Operation {
            method: request.method,
            tool: None,
            server: Some(request.server.to_owned()),
            error: error.map(|error| error.class().as_str()),
        };
        self.metrics
            .inner
            .upstream
            .get_or_create(&operation)
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_the_conventions_as_prometheus_renders_them() {
        let metrics = Metrics::new();
        let started = Instant::now();
        metrics.served("tools/call", Some("kit__echo"), started, None);
        metrics.served("tools/call", Some("kit__echo"), started, Some("timeout"));
        metrics.served("tools/call", Some("made_up"), started, Some("unknown_tool"));
        metrics.served("tools/list", None, started, None);
        metrics.session_started();
        metrics.reloaded(false);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &metrics.inner.registry).unwrap();
        assert!(
            text.contains("# TYPE mcp_server_operation_duration_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains(
                "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",\
                 gen_ai_tool_name=\"kit__echo\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",\
                 gen_ai_tool_name=\"kit__echo\",error_type=\"timeout\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("made_up"), "{text}");
        assert!(
            text.contains(
                "mcp_server_operation_duration_seconds_count{mcp_method_name=\"tools/call\",\
                 error_type=\"unknown_tool\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("le=\"0.0001\"") && text.contains("le=\"60\""),
            "{text}"
        );
        assert!(text.contains("switchboard_downstream_sessions 1"), "{text}");
        assert!(
            text.contains("switchboard_config_reloads_total{result=\"failed\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn tool_results_marked_is_error_are_tool_errors() {
        let outcome = |is_error| CallOutcome {
            content: Vec::new(),
            structured_content: None,
            is_error,
        };
        assert_eq!(call_error_type(&Ok(outcome(true))), Some("tool_error"));
        assert_eq!(call_error_type(&Ok(outcome(false))), None);
    }
}
