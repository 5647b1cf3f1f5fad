//! The Streamable HTTP server, stateful and stateless, spoken to over raw HTTP.

use crate::common::{HttpClient, eventually, first_text};
use serde_json::{Value, json};
use switchboard_testkit::{HttpMode, Knobs, WWW_AUTHENTICATE_CHALLENGE, serve_streamable_http};

fn knobs() -> Knobs {
    Knobs {
        tools: 2,
        require_bearer: Some("s3cret".into()),
        ..Knobs::default()
    }
}

#[tokio::test]
async fn stateful_session_serves_every_basic_tool() {
    let server = serve_streamable_http(knobs(), HttpMode::Stateful)
        .await
        .unwrap();
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(server.url().ends_with("/mcp"));

    // No token: 401 with the challenge, on POST and on GET.
    let mut anonymous = HttpClient::new(server.url(), None);
    let response = anonymous
        .post(&crate::common::initialize_request(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        WWW_AUTHENTICATE_CHALLENGE
    );
    let get = anonymous.http.get(server.url()).send().await.unwrap();
    assert_eq!(get.status(), 401);
    anonymous.bearer = Some("wrong".into());
    let response = anonymous
        .post(&crate::common::initialize_request(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let mut client = HttpClient::new(server.url(), Some("s3cret"));
    let init = client.initialize().await;
    assert_eq!(init["capabilities"]["tools"]["listChanged"], json!(true));
    let session = client
        .session
        .clone()
        .expect("stateful mode returns a session id");

    let tools = client.request("tools/list", json!({})).await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in ["echo", "add", "hang", "drop", "counts", "tool_0", "tool_1"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(!names.contains(&"tool_2"));

    let echo = client.call("echo", json!({"message": "hello there"})).await;
    assert_eq!(first_text(&echo), "hello there");
    assert_eq!(
        first_text(&client.call("add", json!({"a": 2, "b": 3.5})).await),
        "5.5"
    );
    assert_eq!(
        first_text(&client.call("tool_1", json!({"message": "gen"})).await),
        "gen"
    );

    let fail = client.call("fail", json!({})).await;
    assert_eq!(fail["isError"], json!(true));
    assert_eq!(first_text(&fail), "the tool failed on purpose");

    let structured = client.call("structured", json!({})).await;
    assert_eq!(
        structured["structuredContent"],
        json!({"temperature": 21.5, "unit": "C"})
    );

    let mixed = client.call("mixed", json!({})).await;
    let kinds: Vec<&str> = mixed["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "text",
            "text",
            "image",
            "audio",
            "resource_link",
            "resource"
        ]
    );

    let payload = client.call("payload", json!({"bytes": 1000})).await;
    assert_eq!(first_text(&payload).len(), 1000);

    let headers: Value =
        serde_json::from_str(&first_text(&client.call("echo_headers", json!({})).await)).unwrap();
    assert_eq!(headers["x-testkit"], "yes");
    assert_eq!(headers["authorization"], "Bearer s3cret");

    let info: Value =
        serde_json::from_str(&first_text(&client.call("session_info", json!({})).await)).unwrap();
    assert_eq!(info["session"], json!(session));

    let added = client.call("notify_list_changed", json!({})).await;
    assert_eq!(first_text(&added), "added added_1");
    let tools = client.request("tools/list", json!({})).await;
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "added_1")
    );

    let counts: Value =
        serde_json::from_str(&first_text(&client.call("counts", json!({})).await)).unwrap();
    assert_eq!(counts["executions"]["echo"], json!(1));
    assert_eq!(counts["executions"]["add"], json!(1));
    assert!(counts["executions"].get("counts").is_none());
    assert_eq!(server.counts()["executions"]["echo"], json!(1));

    server.shutdown().await;
}

#[tokio::test]
async fn stateful_hang_is_cancelled_and_counted() {
    let server = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let mut client = HttpClient::new(server.url(), None);
    client.initialize().await;

    let hang = client.post(&crate::common::call_request(99, "hang", json!({})));
    let pending = tokio::spawn(async move { hang.send().await });
    assert!(
        eventually(|| async { server.counts()["executions"]["hang"] == json!(1) }).await,
        "hang never started"
    );
    client
        .send(&json!({
            "jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 99, "reason": "test"}
        }))
        .await;
    assert!(
        eventually(|| async { server.counts()["cancelled"]["hang"] == json!(1) }).await,
        "cancellation not counted: {}",
        server.counts()
    );
    pending.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn stateless_serves_calls_without_a_session() {
    let server = serve_streamable_http(knobs(), HttpMode::Stateless)
        .await
        .unwrap();
    let anonymous = HttpClient::new(server.url(), None);
    let response = anonymous
        .post(&crate::common::initialize_request(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let mut client = HttpClient::new(server.url(), Some("s3cret"));
    client.initialize().await;
    assert_eq!(
        client.session, None,
        "stateless mode must not create sessions"
    );

    let echo = client.call("echo", json!({"message": "stateless"})).await;
    assert_eq!(first_text(&echo), "stateless");
    let headers: Value =
        serde_json::from_str(&first_text(&client.call("echo_headers", json!({})).await)).unwrap();
    assert_eq!(headers["x-testkit"], "yes");
    client.call("echo", json!({"message": "again"})).await;

    let counts: Value =
        serde_json::from_str(&first_text(&client.call("counts", json!({})).await)).unwrap();
    assert_eq!(counts["executions"]["echo"], json!(2));
    server.shutdown().await;
}

#[tokio::test]
async fn retry_semantics_tools_carry_their_annotations() {
    let server = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let mut client = HttpClient::new(server.url(), None);
    client.initialize().await;
    let tools = client.request("tools/list", json!({})).await;
    let annotations = |name: &str| {
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .get("annotations")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(annotations("echo"), Value::Null);
    assert_eq!(annotations("lookup"), json!({"readOnlyHint": true}));
    assert_eq!(annotations("put"), json!({"idempotentHint": true}));
    assert_eq!(annotations("crash_once"), Value::Null);
    assert_eq!(
        annotations("crash_once_idempotent"),
        json!({"idempotentHint": true})
    );

    for tool in ["lookup", "put"] {
        let result = client.call(tool, json!({"message": tool})).await;
        assert_eq!(first_text(&result), tool);
    }
    let counts = server.counts();
    assert_eq!(counts["executions"]["lookup"], json!(1));
    assert_eq!(counts["executions"]["put"], json!(1));
}
