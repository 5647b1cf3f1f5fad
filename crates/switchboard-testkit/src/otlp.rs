//! An OTLP/HTTP trace receiver: `POST /v1/traces` with an `ExportTraceServiceRequest` in
//! protobuf (what `opentelemetry-otlp`'s `http/protobuf` exporter sends), decoded with
//! `opentelemetry-proto`; every span is kept for tests to assert on ([`OtlpReceiver::spans`])
//! and every request counted ([`OtlpReceiver::requests`]). `switchboard-testkit otlp` runs
//! one and prints each span as a JSON line.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::http::ServerTask;

/// One received span, flattened; ids are lowercase hex (`parent_span_id` empty for a root).
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedSpan {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    pub attributes: BTreeMap<String, Value>,
    /// `unset`, `ok` or `error`.
    pub status: &'static str,
    pub status_message: String,
    /// The `(trace_id, span_id)` of each link.
    pub links: Vec<(String, String)>,
    /// The resource's `service.name`.
    pub service_name: Option<String>,
}

impl ReceivedSpan {
    /// A string attribute's value.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

#[derive(Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    requests: usize,
}

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Received>>,
    /// Bumped after each request, for [`OtlpReceiver::wait_for`].
    changed: watch::Sender<usize>,
    /// Each span as it arrives (the `otlp` subcommand prints them).
    tap: Option<tokio::sync::mpsc::UnboundedSender<ReceivedSpan>>,
}

/// A running receiver on 127.0.0.1. Dropping it stops the server.
pub struct OtlpReceiver {
    pub addr: SocketAddr,
    shared: Shared,
    _task: ServerTask,
}

impl OtlpReceiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> std::io::Result<OtlpReceiver> {
        Self::start_tapped(0, None).await
    }

    /// Starts a receiver on `127.0.0.1:port` (0 picks a free one).
    pub async fn start_on(port: u16) -> std::io::Result<OtlpReceiver> {
        Self::start_tapped(port, None).await
    }

    async fn start_tapped(
        port: u16,
        tap: Option<tokio::sync::mpsc::UnboundedSender<ReceivedSpan>>,
    ) -> std::io::Result<OtlpReceiver> {
        let shared = Shared {
            received: Arc::default(),
            changed: watch::Sender::new(0),
            tap,
        };
        let router = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(shared.clone());
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let task = ServerTask::spawn(listener, router, CancellationToken::new(), "otlp receiver");
        Ok(OtlpReceiver {
            addr,
            shared,
            _task: task,
        })
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    /// How many export requests arrived (decodable or not).
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Waits until `done` holds for the spans received, or `timeout` passes; returns them.
    pub async fn wait_for(
        &self,
        timeout: std::time::Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let mut changed = self.shared.changed.subscribe();
        let waiting = async {
            loop {
                if done(&self.lock().spans) {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, waiting).await;
        self.spans()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        lock(&self.shared.received)
    }
}

fn lock(received: &Mutex<Received>) -> std::sync::MutexGuard<'_, Received> {
    received.lock().unwrap_or_else(|e| e.into_inner())
}

async fn traces(State(shared): State<Shared>, body: Bytes) -> Response {
    let decoded = ExportTraceServiceRequest::decode(body);
    let spans = decoded.as_ref().map(flatten).unwrap_or_default();
    {
        let mut received = lock(&shared.received);
        received.requests += 1;
        received.spans.extend(spans.iter().cloned());
    }
    if let Some(tap) = &shared.tap {
        for span in spans {
            let _ = tap.send(span);
        }
    }
    shared.changed.send_modify(|n| *n += 1);
    match decoded {
        Ok(_) => {
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            ([(header::CONTENT_TYPE, "application/x-protobuf")], answer).into_response()
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            format!("not OTLP protobuf: {error}"),
        )
            .into_response(),
    }
}

fn flatten(request: &ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        let service_name = resource_spans.resource.as_ref().and_then(|r| {
            r.attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
        });
        for scope in &resource_spans.scope_spans {
            for span in &scope.spans {
                let status = span.status.as_ref();
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    kind: match span.kind {
                        1 => "internal",
                        2 => "server",
                        3 => "client",
                        4 => "producer",
                        5 => "consumer",
                        _ => "unspecified",
                    },
                    attributes: attributes(&span.attributes),
                    status: match status.map_or(0, |s| s.code) {
                        1 => "ok",
                        2 => "error",
                        _ => "unset",
                    },
                    status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
                    links: span
                        .links
                        .iter()
                        .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                        .collect(),
                    service_name: service_name.clone(),
                });
            }
        }
    }
    out
}

fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, Value> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, json)))
        .collect()
}

fn json(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::from(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(any_value::Value::ArrayValue(a)) => Value::Array(a.values.iter().map(json).collect()),
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `switchboard-testkit otlp`: prints `listening http://127.0.0.1:PORT`, then each span
/// received as one JSON line, until interrupted.
pub async fn run(port: u16) -> anyhow::Result<()> {
    let (tap, mut spans) = tokio::sync::mpsc::unbounded_channel();
    let receiver = OtlpReceiver::start_tapped(port, Some(tap)).await?;
    println!("listening {}", receiver.endpoint());
    loop {
        tokio::select! {
            span = spans.recv() => match span {
                Some(span) => println!("{}", serde_json::to_string(&span)?),
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
