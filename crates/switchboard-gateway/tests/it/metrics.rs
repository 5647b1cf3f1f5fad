//! `/metrics` after real calls through both faces: the OpenTelemetry MCP histograms count
//! each downstream request and each upstream call with the right labels (an `isError`
//! result as `tool_error`, an engine failure as its class), and the hub's gauges say where
//! each server stands.

use std::collections::BTreeMap;

use serde_json::json;

use crate::common::{TestGateway, scrape, testkit, toml_string, ts_client};

/// The `_count` of a histogram's series with exactly these labels.
fn count(metrics: &BTreeMap<String, f64>, histogram: &str, labels: &str) -> f64 {
    let series = format!("{histogram}_count{{{labels}}}");
    metrics.get(&series).copied().unwrap_or_else(|| {
        let known: Vec<_> = metrics.keys().filter(|k| k.contains("_count")).collect();
        panic!("no {series} among {known:#?}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_calls_with_their_labels() {
    let kit = testkit().await;
    let toml = format!(
        "[servers.kit]\nurl = {}\ntool_call_timeout = \"300ms\"\n",
        toml_string(&kit.url())
    );
    let gateway = TestGateway::start(&toml).await;
    let http = reqwest::Client::new();
    let call = |name: &str, body: serde_json::Value| {
        let request = http
            .post(gateway.url(&format!("/v1/tools/{name}/call")))
            .json(&body);
        async move { request.send().await.expect("POST").status() }
    };
    // Over REST: two good calls, a tool that fails, a call that times out, a tool that
    // does not exist.
    call("kit__echo", json!({"message": "a"})).await;
    call("kit__echo", json!({"message": "b"})).await;
    call("kit__fail", json!({})).await;
    call("kit__sleep", json!({"ms": 3000})).await;
    call("no_such_tool", json!({})).await;
    // Over MCP: a list, a call, a read and a read of nothing.
    let answers = ts_client(
        &gateway.url("/mcp"),
        json!({}),
        json!([
            {"op": "list"},
            {"op": "call", "name": "kit__echo", "arguments": {"message": "c"}},
            {"op": "read", "uri": "kit+testkit://static/hello.txt"},
            {"op": "read", "uri": "kit+testkit://static/nothing.txt"},
            {"op": "terminate"},
        ]),
    )
    .await;
    assert!(answers[2]["contents"].is_array(), "{answers:?}");
    assert!(answers[3]["error"].is_string(), "{answers:?}");
    assert_eq!(answers[4], json!({"terminated": true}));

    let metrics = scrape(&gateway.url("/metrics")).await;
    let served = "mcp_server_operation_duration_seconds";
    let tools_call = "mcp_method_name=\"tools/call\"";
    assert_eq!(
        count(
            &metrics,
            served,
            &format!("{tools_call},gen_ai_tool_name=\"kit__echo\"")
        ),
        3.0
    );
    assert_eq!(
        count(
            &metrics,
            served,
            &format!("{tools_call},gen_ai_tool_name=\"kit__fail\",error_type=\"tool_error\"")
        ),
        1.0
    );
    assert_eq!(
        count(
            &metrics,
            served,
            &format!("{tools_call},gen_ai_tool_name=\"kit__sleep\",error_type=\"timeout\"")
        ),
        1.0
    );
    // A made-up name is no label value.
    assert_eq!(
        count(
            &metrics,
            served,
            &format!("{tools_call},error_type=\"unknown_tool\"")
        ),
        1.0
    );
    assert!(metrics.keys().all(|k| !k.contains("no_such_tool")));
    assert!(count(&metrics, served, "mcp_method_name=\"tools/list\"") >= 1.0);

    // Upstream: the server's own tool names and the server.
    let client = "mcp_client_operation_duration_seconds";
    let upstream = |tool: &str, error: Option<&str>| {
        let error = error.map_or(String::new(), |e| format!(",error_type=\"{e}\""));
        format!("{tools_call},gen_ai_tool_name=\"{tool}\",server=\"kit\"{error}")
    };
    assert_eq!(count(&metrics, client, &upstream("echo", None)), 3.0);
    assert_eq!(
        count(&metrics, client, &upstream("fail", Some("tool_error"))),
        1.0
    );
    assert_eq!(
        count(&metrics, client, &upstream("sleep", Some("timeout"))),
        1.0
    );
    for metric in [served, client] {
        let server = if metric == client {
            ",server=\"kit\""
        } else {
            ""
        };
        let read = format!("mcp_method_name=\"resources/read\"{server}");
        assert_eq!(count(&metrics, metric, &read), 1.0, "{metric}");
        let missing = format!("{read},error_type=\"not_found\"");
        assert_eq!(count(&metrics, metric, &missing), 1.0, "{metric}");
    }
    // The buckets run from 100 µs to 60 s; every call fell in +Inf.
    let inf = format!("{client}_bucket{{{},le=\"+Inf\"}}", upstream("echo", None));
    assert_eq!(metrics[&inf], 3.0);

    // Gauges: the server is ready over its one shared connection; the MCP session ended.
    assert_eq!(
        metrics["switchboard_server_state{server=\"kit\",state=\"ready\"}"],
        1.0
    );
    assert_eq!(
        metrics["switchboard_server_state{server=\"kit\",state=\"retrying\"}"],
        0.0
    );
    assert_eq!(
        metrics["switchboard_upstream_connections{server=\"kit\"}"],
        1.0
    );
    assert_eq!(metrics["switchboard_downstream_sessions"], 0.0);
    gateway.stop().await;
}
