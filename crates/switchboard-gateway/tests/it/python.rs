//! `/mcp` with the official Python SDK client (2025-11-25 sessions).

use serde_json::{Value, json};

use crate::common::{TestGateway, ok_text, python_client, testkit, two_upstreams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_lists_and_calls_two_upstreams_as_its_own_user() {
    let (kit, private) = (testkit().await, testkit().await);
    let gateway = TestGateway::start(&two_upstreams(&kit, &private, true)).await;
    let steps = json!([
        {"op": "list"},
        {"op": "call", "name": "kit__echo", "arguments": {"message": "from python"}},
        {"op": "call", "name": "everything__echo", "arguments": {"message": "from python"}},
        {"op": "call", "name": "private__echo_headers"},
        {"op": "call", "name": "no__such_tool"},
    ]);
    let answers = python_client(
        &gateway.url("/mcp"),
        json!({"X-Upstream-Token": "frank"}),
        steps,
    )
    .await;
    let expected: Vec<String> = gateway
        .hub
        .catalog()
        .tools()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(answers[0]["tools"], json!(expected));
    assert_eq!(ok_text(&answers[1]), "from python");
    assert!(
        ok_text(&answers[2]).contains("from python"),
        "{}",
        answers[2]
    );
    let headers: Value = serde_json::from_str(ok_text(&answers[3])).unwrap();
    assert_eq!(headers["x-upstream-token"], json!("frank"));
    assert_eq!(answers[4]["code"], json!(-32602), "{}", answers[4]);
    gateway.stop().await;
}
