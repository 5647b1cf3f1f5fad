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

/// The `message` events of a legacy SSE stream, as JSON, after its `endpoint` event.
struct Events {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: String,
}

impl Events {
    /// The next event's `event` name and `data`.
    async fn next(&mut self) -> (String, String) {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(|value| value.trim_start().to_owned())
                };
                match (field("event:"), field("data:")) {
                    (Some(event), Some(data)) => return (event, data),
                    _ => continue, // a keep-alive comment
                }
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), self.body.next())
                .await
                .expect("an event within the step bound")
                .expect("the stream is open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next `message` that answers request `id`.
    async fn answer(&mut self, id: u64) -> Value {
        loop {
            let (event, data) = self.next().await;
            let message: Value = serde_json::from_str(&data).unwrap_or_default();
            if event == "message" && message["id"] == json!(id) {
                return message;
            }
        }
    }
}

/// A legacy SSE session has the per-session call limit too: its POSTs are answered 202 at
/// once, so a call holds its slot until its answer is on the stream; one call too many
/// gets 429 on its POST (a JSON-RPC error -32029 with its id, as over `/mcp`), and a
/// cancelled call frees its slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_session_has_the_per_session_call_limit() {
    let kit = testkit().await;
    let toml = format!(
        "[gateway]\nmax_concurrent_calls_per_session = 1\n\n[servers.kit]\nurl = {}\n",
        crate::common::toml_string(&kit.url())
    );
    let gateway = TestGateway::start(&toml).await;
    let http = reqwest::Client::new();
    let stream = http.get(gateway.url("/sse")).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let mut events = Events {
        body: futures::StreamExt::boxed(futures::StreamExt::map(stream.bytes_stream(), |chunk| {
            chunk.map(|bytes| bytes.to_vec())
        })),
        buffer: String::new(),
    };
    let (event, endpoint) = events.next().await;
    assert_eq!(event, "endpoint");
    let post = |message: Value| {
        let request = http.post(gateway.url(&endpoint)).json(&message);
        async move { request.send().await.unwrap() }
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {},
        "clientInfo": {"name": "limit-test", "version": "0"}}});
    assert_eq!(post(initialize).await.status(), 202);
    events.answer(1).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(initialized).await.status(), 202);
    let call = |id: u64, tool: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": {"message": "hi"}}})
    };
    // One call in flight (it hangs until cancelled): the next is refused on its POST.
    assert_eq!(post(call(2, "kit__hang")).await.status(), 202);
    let refused = post(call(3, "kit__echo")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["id"], json!(3), "{error}");
    assert_eq!(error["error"]["code"], json!(-32029), "{error}");
    // Cancelled, the hanging call frees its slot; the next call is answered on the stream.
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2}});
    assert_eq!(post(cancel).await.status(), 202);
    assert_eq!(post(call(4, "kit__echo")).await.status(), 202);
    let answer = events.answer(4).await;
    assert_eq!(
        answer["result"]["content"][0]["text"],
        json!("hi"),
        "{answer}"
    );
    // Answered, it holds no slot: one more call is taken.
    assert_eq!(post(call(5, "kit__echo")).await.status(), 202);
    events.answer(5).await;
    drop(events);
    gateway.stop().await;
}
