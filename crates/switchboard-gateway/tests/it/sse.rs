//! `/sse`: legacy HTTP+SSE downstream clients (the official TypeScript SDK's
//! `SSEClientTransport`, the Python SDK's `sse_client`) list and call the tools of two
//! upstreams as their own user, are asked what upstreams ask, and release their upstream
//! sessions when they disconnect.

use serde_json::{Value, json};

use crate::common::{
    TestGateway, eventually, ok_text, python_program, testkit, ts_program, two_upstreams,
};

fn tool_names(gateway: &TestGateway) -> Vec<String> {
    let catalog = gateway.hub.catalog();
    catalog.tools().iter().map(|t| t.name.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ts_sdk_sse_client_lists_calls_and_is_asked() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, true)).await;
    let answers = ts_program(json!({
        "url": gateway.url("/sse"),
        "transport": "sse",
        "headers": {"X-Upstream-Token": "grace"},
        "capabilities": {"elicitation": {}},
        "answers": {"form": {"name": "Grace", "age": 85}},
        "steps": [
            {"op": "list"},
            {"op": "call", "name": "kit__echo", "arguments": {"message": "over sse"}},
            {"op": "call", "name": "everything__echo", "arguments": {"message": "over sse"}},
            {"op": "call", "name": "private__echo_headers"},
            {"op": "call", "name": "private__ask"},
            {"op": "call_progress", "name": "kit__progress",
             "arguments": {"count": 2, "delay_ms": 10}},
            {"op": "call", "name": "no__such_tool"},
        ],
    }))
    .await;
    assert_eq!(answers[0]["tools"], json!(tool_names(&gateway)));
    assert_eq!(ok_text(&answers[1]), "over sse");
    assert!(ok_text(&answers[2]).contains("over sse"), "{}", answers[2]);
    // The per_session upstream got this client's own credential.
    let headers: Value = serde_json::from_str(ok_text(&answers[3])).unwrap();
    assert_eq!(headers["x-upstream-token"], json!("grace"));
    let asked: Value = serde_json::from_str(ok_text(&answers[4])).unwrap();
    assert_eq!(
        asked,
        json!({"action": "accept", "content": {"name": "Grace", "age": 85}})
    );
    assert_eq!(ok_text(&answers[5]["result"]), "done 2");
    assert_eq!(answers[5]["progress"].as_array().map(Vec::len), Some(2));
    assert_eq!(answers[6]["code"], json!(-32602), "{}", answers[6]);
    // The client closed its stream: its own upstream session is released.
    eventually("the SSE session's upstream session ends", || {
        gateway.hub.session_count("private") == 0
    })
    .await;
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_sse_client_lists_and_calls_two_upstreams() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, true)).await;
    let answers = python_program(json!({
        "url": gateway.url("/sse"),
        "transport": "sse",
        "headers": {"X-Upstream-Token": "linus"},
        "steps": [
            {"op": "list"},
            {"op": "call", "name": "kit__echo", "arguments": {"message": "py over sse"}},
            {"op": "call", "name": "everything__echo", "arguments": {"message": "py over sse"}},
            {"op": "call", "name": "private__echo_headers"},
        ],
    }))
    .await;
    assert_eq!(answers[0]["tools"], json!(tool_names(&gateway)));
    assert_eq!(ok_text(&answers[1]), "py over sse");
    assert!(
        ok_text(&answers[2]).contains("py over sse"),
        "{}",
        answers[2]
    );
    let headers: Value = serde_json::from_str(ok_text(&answers[3])).unwrap();
    assert_eq!(headers["x-upstream-token"], json!("linus"));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_for_an_unknown_session_or_a_foreign_host_are_refused() {
    let kit = testkit().await;
    let gateway = TestGateway::start(&two_upstreams(&kit, &kit, false)).await;
    let http = reqwest::Client::new();
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let unknown = http
        .post(gateway.url("/messages?sessionId=nope"))
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let rebinding = http
        .get(gateway.url("/sse"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), 403);
    gateway.stop().await;
}
