//! The legacy HTTP+SSE server, spoken to over raw HTTP.

use crate::common::{SseClient, eventually, first_text};
use serde_json::{Value, json};
use switchboard_testkit::{Knobs, WWW_AUTHENTICATE_CHALLENGE, serve_sse};

#[tokio::test]
async fn sse_session_round_trip() {
    let server = serve_sse(Knobs {
        require_bearer: Some("tok".into()),
        ..Knobs::default()
    })
    .await
    .unwrap();
    assert!(server.url().ends_with("/sse"));

    let http = reqwest::Client::new();
    let unauthorized = http.get(server.url()).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        unauthorized.headers()["www-authenticate"],
        WWW_AUTHENTICATE_CHALLENGE
    );

    let mut client = SseClient::connect(&server.url(), Some("tok")).await;
    assert!(client.endpoint.starts_with("/message?sessionId="));

    // POSTs need the token too.
    let base = server.url().trim_end_matches("/sse").to_owned();
    let anonymous_post = http
        .post(format!("{base}{}", client.endpoint))
        .header("content-type", "application/json")
        .body(crate::common::initialize_request(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_post.status(), 401);

    let init = client.initialize().await;
    assert_eq!(init["capabilities"]["tools"]["listChanged"], json!(true));

    let echo = client.call("echo", json!({"message": "over sse"})).await;
    assert_eq!(first_text(&echo), "over sse");

    let headers: Value =
        serde_json::from_str(&first_text(&client.call("echo_headers", json!({})).await)).unwrap();
    assert_eq!(headers["x-testkit"], "yes");

    let info: Value =
        serde_json::from_str(&first_text(&client.call("session_info", json!({})).await)).unwrap();
    assert!(client.endpoint.ends_with(info["session"].as_str().unwrap()));

    let (added, before) = client
        .request_with_preceding(
            "tools/call",
            json!({"name": "notify_list_changed", "arguments": {}}),
        )
        .await;
    assert_eq!(first_text(&added), "added added_1");
    assert!(
        before
            .iter()
            .any(|m| m["method"] == "notifications/tools/list_changed"),
        "no list_changed notification before the result: {before:?}"
    );

    // Unknown session: 404.
    let unknown = http
        .post(format!("{base}/message?sessionId=nope"))
        .bearer_auth("tok")
        .header("content-type", "application/json")
        .body(crate::common::initialize_request(1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    assert_eq!(server.counts()["executions"]["echo"], json!(1));

    // Dropping the GET stream ends the session: its endpoint becomes unknown.
    let endpoint = format!("{base}{}", client.endpoint);
    client.disconnect();
    let gone = eventually(|| {
        let http = http.clone();
        let endpoint = endpoint.clone();
        async move {
            http.post(&endpoint)
                .bearer_auth("tok")
                .header("content-type", "application/json")
                .body(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string())
                .send()
                .await
                .unwrap()
                .status()
                == 404
        }
    })
    .await;
    assert!(gone, "session still alive after the SSE stream was dropped");
    server.shutdown().await;
}
