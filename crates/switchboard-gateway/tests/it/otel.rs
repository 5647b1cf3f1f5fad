//! OpenTelemetry traces (`src/otel.rs`): `switchboard serve` with the standard `OTEL_*`
//! variables pointing at the testkit's OTLP/HTTP receiver, the official Python SDK client
//! sending a W3C `traceparent` in `params._meta`, and the testkit upstream's `echo_meta`
//! showing what the gateway forwarded.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_testkit::{OtlpReceiver, ReceivedSpan};

use crate::common::serve::{ServeProcess, workspace_bin};
use crate::common::{ok_text, python_client, testkit, toml_string};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";
const REST_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const REST_PARENT: &str = "b7ad6b7169203331";

fn traceparent(trace: &str, parent: &str) -> String {
    format!("00-{trace}-{parent}-01")
}

fn config(dir: &tempfile::TempDir, kit_url: &str) -> std::path::PathBuf {
    let config = dir.path().join("switchboard.toml");
    let toml = format!("[servers.kit]\nurl = {}\n", toml_string(kit_url));
    std::fs::write(&config, toml).unwrap();
    config
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str, trace: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name && s.trace_id == trace)
        .unwrap_or_else(|| panic!("no span {name:?} in trace {trace}: {spans:#?}"))
}

fn child_of<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_traced_from_the_client_through_the_gateway_to_the_upstream() {
    let kit = testkit().await;
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = receiver.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ];
    let mut serve = ServeProcess::start_with_env(&config(&dir, &kit.url()), &env).await;
    let meta = json!({"traceparent": traceparent(TRACE, PARENT)});
    let steps = json!([
        {"op": "call", "name": "kit__echo_meta", "meta": meta},
        {"op": "call", "name": "kit__fail", "meta": meta},
        {"op": "call", "name": "no__such_tool", "meta": meta},
        {"op": "call", "name": "kit__echo", "arguments": {"message": "an-argument-never-recorded"}},
    ]);
    let answers = python_client(&serve.url, json!({}), steps).await;
    let upstream_meta: Value = serde_json::from_str(ok_text(&answers[0])).unwrap();
    assert_eq!(answers[1]["isError"], json!(true), "{}", answers[1]);
    assert_eq!(answers[2]["code"], json!(-32602), "{}", answers[2]);
    assert_eq!(ok_text(&answers[3]), "an-argument-never-recorded");

    // REST: the parent comes from the HTTP `traceparent` header.
    let rest = serve.at("/v1/tools/kit__echo/call");
    let answer = reqwest::Client::new()
        .post(&rest)
        .header("traceparent", traceparent(REST_TRACE, REST_PARENT))
        .json(&json!({"message": "over rest"}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());

    // The last spans are sent when the gateway stops (the batch's 5 s delay has not passed).
    serve.signal(libc::SIGTERM);
    assert!(serve.stopped().await.success());
    let spans = receiver
        .wait_for(Duration::from_secs(10), |spans| {
            spans
                .iter()
                .any(|s| s.trace_id == REST_TRACE && s.kind == "client")
        })
        .await;

    // The server span's parent is the client's traceparent from `_meta`.
    let server = named(&spans, "tools/call kit__echo_meta", TRACE);
    assert_eq!(server.kind, "server");
    assert_eq!(server.parent_span_id, PARENT);
    assert_eq!(server.service_name.as_deref(), Some("switchboard"));
    assert_eq!(server.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(server.attr("gen_ai.tool.name"), Some("kit__echo_meta"));
    assert_eq!(server.attr("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(server.attr("network.transport"), Some("tcp"));
    assert!(server.attr("jsonrpc.request.id").is_some(), "{server:#?}");
    let session = server.attr("mcp.session.id").expect("a session id");
    assert!(
        session.len() == 32 && session.bytes().all(|b| b.is_ascii_hexdigit()),
        "a hash, not the id: {session}"
    );
    assert_eq!(server.status, "unset");

    // Under it, the hub's call span, then the CLIENT span of the upstream request.
    let hub = child_of(&spans, server);
    assert_eq!(hub.len(), 1, "{hub:#?}");
    assert_eq!(hub[0].name, "call kit__echo_meta");
    assert_eq!(hub[0].kind, "internal");
    assert_eq!(hub[0].attr("switchboard.server"), Some("kit"));
    let client = child_of(&spans, hub[0]);
    assert_eq!(client.len(), 1, "{client:#?}");
    let client = client[0];
    assert_eq!(client.kind, "client");
    assert_eq!(client.name, "tools/call echo_meta");
    assert_eq!(client.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(client.attr("gen_ai.tool.name"), Some("echo_meta"));
    assert_eq!(client.attr("network.transport"), Some("tcp"));
    assert_eq!(client.attr("server.address"), Some("127.0.0.1"));
    let port: u16 = kit
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(client.attributes["server.port"], json!(i64::from(port)));
    assert_eq!(client.attr("switchboard.server"), Some("kit"));
    assert!(client.attr("jsonrpc.request.id").is_some(), "{client:#?}");

    // The upstream got the client span's context in `_meta`, not the downstream's.
    assert_eq!(
        upstream_meta["traceparent"],
        json!(traceparent(TRACE, &client.span_id)),
        "{upstream_meta}"
    );

    // isError: `tool_error` on both sides; a JSON-RPC error: its code.
    let failed = named(&spans, "tools/call kit__fail", TRACE);
    assert_eq!(failed.attr("error.type"), Some("tool_error"));
    assert_eq!(failed.status, "error");
    let failed_upstream = named(&spans, "tools/call fail", TRACE);
    assert_eq!(failed_upstream.kind, "client");
    assert_eq!(failed_upstream.attr("error.type"), Some("tool_error"));
    let unknown = named(&spans, "tools/call no__such_tool", TRACE);
    assert_eq!(unknown.attr("error.type"), Some("-32602"));
    assert_eq!(unknown.status, "error");

    // A request without a traceparent starts its own trace.
    let own = spans
        .iter()
        .find(|s| {
            s.name == "tools/call kit__echo" && s.kind == "server" && s.trace_id != REST_TRACE
        })
        .expect("the span of the call without _meta");
    assert_ne!(own.trace_id, TRACE);
    assert!(own.parent_span_id.is_empty(), "{own:#?}");

    // REST: same server span, parent from the header, `network.protocol.name = http`.
    let rest = named(&spans, "tools/call kit__echo", REST_TRACE);
    assert_eq!(rest.kind, "server");
    assert_eq!(rest.parent_span_id, REST_PARENT);
    assert_eq!(rest.attr("network.protocol.name"), Some("http"));

    // Arguments and results are never recorded.
    let everything = serde_json::to_string(&spans).unwrap();
    assert!(!everything.contains("an-argument-never-recorded"));
    assert!(!everything.contains("over rest"));
    assert!(!everything.contains("failed on purpose"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_otel_variables_nothing_is_exported_nor_forwarded() {
    let kit = testkit().await;
    // Where an OTLP exporter sends by default, and one told where to send but `none`.
    let default_port = OtlpReceiver::start_on(4318)
        .await
        .expect("127.0.0.1:4318 (the OTLP/HTTP default) is free for this test");
    let named = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = named.endpoint();
    let meta = json!({"traceparent": traceparent(TRACE, PARENT)});
    let steps = json!([{"op": "call", "name": "kit__echo_meta", "meta": meta}]);
    let none = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_EXPORTER", "none"),
    ];
    for env in [&[][..], &none[..]] {
        let mut serve = ServeProcess::start_with_env(&config(&dir, &kit.url()), env).await;
        let answers = python_client(&serve.url, json!({}), steps.clone()).await;
        let upstream_meta: Value = serde_json::from_str(ok_text(&answers[0])).unwrap();
        assert!(
            upstream_meta.get("traceparent").is_none(),
            "the downstream's trace context is not forwarded: {upstream_meta}"
        );
        serve.signal(libc::SIGTERM);
        assert!(serve.stopped().await.success());
    }
    assert_eq!(default_port.requests(), 0);
    assert_eq!(named.requests(), 0);
}

#[tokio::test]
async fn grpc_is_refused_at_start_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(workspace_bin("switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config(&dir, "http://127.0.0.1:9/mcp"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc") && stderr.contains("http/protobuf"),
        "{stderr}"
    );
}
