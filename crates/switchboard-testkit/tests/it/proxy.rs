//! The fault-injection proxy in front of real testkit servers: pass-through
//! (Streamable HTTP, legacy SSE, streaming), every fault mode, `times`, and the
//! binary's `proxy` subcommand.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use crate::common::{HttpClient, SseClient, eventually, first_text, sse_data};
use futures::StreamExt;
use serde_json::{Value, json};
use switchboard_testkit::{
    Fault, FaultProxy, FaultRule, HttpMode, Knobs, RunningServer, WWW_AUTHENTICATE_CHALLENGE,
    serve_sse, serve_streamable_http,
};
use tokio::io::AsyncBufReadExt;

/// Every test's cap; nothing here should come near it.
const LIMIT: Duration = Duration::from_secs(30);

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("the test did not finish within its time limit")
}

/// A stateful Streamable HTTP server and a proxy in front of it with `rules`.
async fn streamable(rules: Vec<FaultRule>) -> (RunningServer, FaultProxy) {
    let server = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let proxy = FaultProxy::start(&server.url(), rules).await.unwrap();
    (server, proxy)
}

/// An initialized client talking to the server through the proxy.
async fn client(proxy: &FaultProxy) -> HttpClient {
    let mut client = HttpClient::new(proxy.url("/mcp"), None);
    client.initialize().await;
    client
}

fn executions(server: &RunningServer, tool: &str) -> u64 {
    server.counts()["executions"][tool].as_u64().unwrap_or(0)
}

fn echo(id: u64) -> Value {
    crate::common::call_request(id, "echo", json!({"message": "hi"}))
}

/// Whether a connection reset (a real RST) is somewhere in `error`'s causes.
fn is_reset(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(error) = source {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset)
        {
            return true;
        }
        source = error.source();
    }
    false
}

#[tokio::test]
async fn streamable_http_passes_through() {
    bounded(async {
        let server = serve_streamable_http(
            Knobs {
                require_bearer: Some("s3cret".into()),
                ..Knobs::default()
            },
            HttpMode::Stateful,
        )
        .await
        .unwrap();
        // A full URL: its path is ignored, requests keep their own.
        let proxy = FaultProxy::start(&server.url(), vec![]).await.unwrap();
        assert_eq!(proxy.url("/mcp"), format!("http://{}/mcp", proxy.addr()));

        // The upstream's 401 and its challenge come through.
        let anonymous = HttpClient::new(proxy.url("/mcp"), None);
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

        let mut client = HttpClient::new(proxy.url("/mcp"), Some("s3cret"));
        client.initialize().await;
        let session = client
            .session
            .clone()
            .expect("the session header came through");

        // A tools/call answered as SSE.
        let response = client.post(&echo(10)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let messages = sse_data(&response.text().await.unwrap());
        let answer = messages.iter().find(|m| m["id"] == 10).expect("the answer");
        assert_eq!(first_text(&answer["result"]), "hi");

        // Request headers reach the upstream; Host names the upstream.
        let headers: Value =
            serde_json::from_str(&first_text(&client.call("echo_headers", json!({})).await))
                .unwrap();
        assert_eq!(headers["authorization"], "Bearer s3cret");
        assert_eq!(headers["mcp-session-id"], json!(session));
        assert_eq!(
            headers["mcp-protocol-version"],
            crate::common::PROTOCOL_VERSION
        );
        assert_eq!(headers["x-testkit"], "yes");
        assert_eq!(headers["host"], json!(server.addr.to_string()));
        let info: Value =
            serde_json::from_str(&first_text(&client.call("session_info", json!({})).await))
                .unwrap();
        assert_eq!(info["session"], json!(session));

        // The GET stream flows unbuffered: a notification arrives while it stays open.
        let get = client
            .http
            .get(proxy.url("/mcp"))
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", crate::common::PROTOCOL_VERSION)
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200);
        let mut stream = get.bytes_stream();
        let added = client.call("notify_list_changed", json!({})).await;
        assert_eq!(first_text(&added), "added added_1");
        let mut seen = String::new();
        while !seen.contains("notifications/tools/list_changed") {
            let chunk = stream.next().await.expect("the GET stream ended").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }

        assert_eq!(executions(&server, "echo"), 1);
        assert_eq!(proxy.faults_fired(), 0);
        assert!(proxy.requests() >= 8, "{}", proxy.requests());
        proxy.shutdown().await;
        server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn json_answers_pass_through() {
    bounded(async {
        let server = serve_streamable_http(Knobs::default(), HttpMode::StatelessJson)
            .await
            .unwrap();
        let proxy = FaultProxy::start(&format!("http://{}", server.addr), vec![])
            .await
            .unwrap();
        let mut client = client(&proxy).await;
        assert_eq!(client.session, None);
        let response = client.post(&echo(5)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(first_text(&answer["result"]), "hi");
        assert_eq!(
            first_text(&client.call("payload", json!({"bytes": 100_000})).await).len(),
            100_000
        );
        assert_eq!(executions(&server, "echo"), 1);
    })
    .await;
}

#[tokio::test]
async fn legacy_sse_passes_through() {
    bounded(async {
        let server = serve_sse(Knobs {
            require_bearer: Some("tok".into()),
            ..Knobs::default()
        })
        .await
        .unwrap();
        let proxy = FaultProxy::start(&server.url(), vec![]).await.unwrap();
        let mut client = SseClient::connect(&proxy.url("/sse"), Some("tok")).await;
        assert!(client.endpoint.starts_with("/message?sessionId="));
        client.initialize().await;
        let echo = client.call("echo", json!({"message": "via proxy"})).await;
        assert_eq!(first_text(&echo), "via proxy");
        let headers: Value =
            serde_json::from_str(&first_text(&client.call("echo_headers", json!({})).await))
                .unwrap();
        assert_eq!(headers["authorization"], "Bearer tok");
        assert_eq!(executions(&server, "echo"), 1);
        assert_eq!(proxy.faults_fired(), 0);
    })
    .await;
}

/// An upstream whose SSE `endpoint` event is an absolute URL to itself.
#[tokio::test]
async fn absolute_sse_endpoint_is_rewritten_to_the_proxy() {
    bounded(async {
        use axum::{response::sse::Event, routing::get};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        let endpoint = format!("http://{upstream}/message?sessionId=abc");
        let router = axum::Router::new().route(
            "/sse",
            get(move || {
                let endpoint = endpoint.clone();
                async move {
                    let first = futures::stream::once(async move {
                        Ok::<_, std::convert::Infallible>(
                            Event::default().event("endpoint").data(endpoint),
                        )
                    });
                    // Then stays open: the client must get the event anyway.
                    axum::response::Sse::new(first.chain(futures::stream::pending()))
                }
            }),
        );
        let serve = tokio::spawn(async move { axum::serve(listener, router).await });

        let proxy = FaultProxy::start(&format!("http://{upstream}"), vec![])
            .await
            .unwrap();
        let response = reqwest::get(proxy.url("/sse")).await.unwrap();
        let mut stream = response.bytes_stream();
        let mut seen = String::new();
        while !seen.contains("\n\n") {
            let chunk = stream.next().await.expect("stream ended").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(
            seen.contains(&format!("data: {}/message?sessionId=abc", proxy.url(""))),
            "{seen}"
        );
        assert!(!seen.contains(&upstream.to_string()), "{seen}");
        serve.abort();
    })
    .await;
}

#[tokio::test]
async fn status_before_forward_never_reaches_the_upstream() {
    bounded(async {
        let fault = Fault::StatusBeforeForward {
            status: 503,
            retry_after: Some(7),
        };
        let (server, proxy) = streamable(vec![FaultRule::call("echo", fault)]).await;
        let mut client = client(&proxy).await;
        let response = client.post(&echo(1)).send().await.unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "7");
        assert_eq!(executions(&server, "echo"), 0);
        assert_eq!(proxy.faults_fired(), 1);

        // times: Some(1) — the next call goes through.
        assert_eq!(
            first_text(&client.call("echo", json!({"message": "ok"})).await),
            "ok"
        );
        assert_eq!(executions(&server, "echo"), 1);
        assert_eq!(proxy.faults_fired(), 1);
    })
    .await;
}

#[tokio::test]
async fn status_after_forward_runs_the_call_once() {
    bounded(async {
        let fault = Fault::StatusAfterForward {
            status: 502,
            retry_after: Some(2),
        };
        let (server, proxy) = streamable(vec![FaultRule::call("echo", fault)]).await;
        let client = client(&proxy).await;
        let response = client.post(&echo(1)).send().await.unwrap();
        assert_eq!(response.status(), 502);
        assert_eq!(response.headers()["retry-after"], "2");
        assert!(response.headers().get("mcp-session-id").is_none());
        assert!(!response.text().await.unwrap().contains("\"result\""));
        // The upstream's whole answer was read before the 502: the call ran.
        assert_eq!(executions(&server, "echo"), 1);
        assert_eq!(proxy.faults_fired(), 1);
    })
    .await;
}

#[tokio::test]
async fn cut_body_breaks_an_sse_answer() {
    bounded(async {
        let fault = Fault::CutBody { keep_bytes: 10 };
        let (server, proxy) = streamable(vec![FaultRule::call("echo", fault)]).await;
        let client = client(&proxy).await;
        let response = client.post(&echo(1)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut body = response.bytes_stream();
        let mut received = Vec::new();
        let error = loop {
            match body.next().await {
                Some(Ok(chunk)) => received.extend_from_slice(&chunk),
                Some(Err(error)) => break error,
                None => panic!("the body ended cleanly: {received:?}"),
            }
        };
        assert!(error.is_body() || error.is_decode(), "{error:?}");
        assert!(received.len() <= 10, "{received:?}");
        assert!(sse_data(&String::from_utf8_lossy(&received)).is_empty());
        assert!(
            eventually(|| async { executions(&server, "echo") == 1 }).await,
            "{}",
            server.counts()
        );
        assert_eq!(proxy.faults_fired(), 1);
    })
    .await;
}

#[tokio::test]
async fn cut_body_always_withholds_the_end() {
    bounded(async {
        let server = serve_streamable_http(Knobs::default(), HttpMode::StatelessJson)
            .await
            .unwrap();
        // More than the whole answer: still cut before its last byte.
        let rule = FaultRule::call(
            "echo",
            Fault::CutBody {
                keep_bytes: 1 << 20,
            },
        );
        let proxy = FaultProxy::start(&server.url(), vec![rule]).await.unwrap();
        let client = client(&proxy).await;
        let response = client.post(&echo(1)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/json");
        let length: usize = response.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut body = response.bytes_stream();
        let mut received = Vec::new();
        let error = loop {
            match body.next().await {
                Some(Ok(chunk)) => received.extend_from_slice(&chunk),
                Some(Err(error)) => break error,
                None => panic!("the body ended cleanly"),
            }
        };
        assert!(error.is_body() || error.is_decode(), "{error:?}");
        assert_eq!(received.len(), length - 1);
        assert!(serde_json::from_slice::<Value>(&received).is_err());
        assert_eq!(executions(&server, "echo"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_before_forward_resets_without_forwarding() {
    bounded(async {
        let rule = FaultRule::call("echo", Fault::ResetBeforeForward);
        let (server, proxy) = streamable(vec![rule]).await;
        let client = client(&proxy).await;
        let error = client.post(&echo(1)).send().await.unwrap_err();
        assert!(is_reset(&error), "not a connection reset: {error:?}");
        assert_eq!(proxy.faults_fired(), 1, "the request was sent again");
        assert_eq!(executions(&server, "echo"), 0);

        // Other requests and later calls are unaffected.
        let mut client = client;
        assert_eq!(
            first_text(&client.call("echo", json!({"message": "ok"})).await),
            "ok"
        );
        assert_eq!(executions(&server, "echo"), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_after_forward_runs_the_call_then_resets() {
    bounded(async {
        let rule = FaultRule::call("echo", Fault::ResetAfterForward);
        let (server, proxy) = streamable(vec![rule]).await;
        let client = client(&proxy).await;
        let error = client.post(&echo(1)).send().await.unwrap_err();
        assert!(is_reset(&error), "not a connection reset: {error:?}");
        assert_eq!(proxy.faults_fired(), 1, "the request was sent again");
        assert!(
            eventually(|| async { executions(&server, "echo") == 1 }).await,
            "{}",
            server.counts()
        );
        // Exactly once, even after a while.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(executions(&server, "echo"), 1);
    })
    .await;
}

#[tokio::test]
async fn delay_holds_then_forwards() {
    bounded(async {
        let delay = Duration::from_millis(300);
        let rule = FaultRule::method("tools/call", Fault::Delay(delay));
        let (server, proxy) = streamable(vec![rule]).await;
        let mut client = client(&proxy).await;
        assert_eq!(proxy.faults_fired(), 0, "initialize is no tools/call");
        let started = Instant::now();
        assert_eq!(
            first_text(&client.call("echo", json!({"message": "late"})).await),
            "late"
        );
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
        assert_eq!(executions(&server, "echo"), 1);
        assert_eq!(proxy.faults_fired(), 1);
    })
    .await;
}

#[tokio::test]
async fn times_limits_and_set_rules_replaces() {
    bounded(async {
        let fault = Fault::StatusBeforeForward {
            status: 503,
            retry_after: None,
        };
        let rule = FaultRule::call("echo", fault.clone()).times(Some(2));
        let (server, proxy) = streamable(vec![rule]).await;
        let mut client = client(&proxy).await;
        let status = |client: &HttpClient, id| {
            let request = client.post(&echo(id));
            async move { request.send().await.unwrap().status() }
        };
        // Another tool is not matched.
        assert_eq!(
            first_text(&client.call("lookup", json!({"message": "r"})).await),
            "r"
        );
        assert_eq!(status(&client, 1).await, 503);
        assert_eq!(status(&client, 2).await, 503);
        assert_eq!(status(&client, 3).await, 200);
        assert_eq!(status(&client, 4).await, 200);
        assert_eq!(proxy.faults_fired(), 2);
        assert_eq!(executions(&server, "echo"), 2);

        // New rules, fresh budgets; `times: None` fires every time.
        proxy.set_rules(vec![FaultRule::call("echo", fault).times(None)]);
        for id in 5..8 {
            assert_eq!(status(&client, id).await, 503);
        }
        assert_eq!(proxy.faults_fired(), 5);
        proxy.set_rules(vec![]);
        assert_eq!(status(&client, 8).await, 200);
        assert_eq!(executions(&server, "echo"), 3);
    })
    .await;
}

#[tokio::test]
async fn binary_proxy_mode_injects_faults_from_specs() {
    bounded(async {
        let server = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
            .await
            .unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-testkit"))
            .args(["proxy", "--upstream", &server.url()])
            .args(["--fault", "tools/call:echo=status-before:429,retry-after=3"])
            .args(["--fault", "tools/call:put=reset-before,times=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = stdout.next_line().await.unwrap().expect("a listening line");
        let base = line.strip_prefix("listening ").expect("listening prefix");
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");

        let mut client = HttpClient::new(format!("{base}/mcp"), None);
        client.initialize().await;
        for id in 1..3 {
            let response = client.post(&echo(id)).send().await.unwrap();
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "3");
        }
        let put = crate::common::call_request(3, "put", json!({"message": "p"}));
        let error = client.post(&put).send().await.unwrap_err();
        assert!(is_reset(&error), "not a connection reset: {error:?}");
        assert_eq!(
            first_text(&client.call("put", json!({"message": "p"})).await),
            "p"
        );
        assert_eq!(executions(&server, "echo"), 0);
        assert_eq!(executions(&server, "put"), 1);
        child.kill().await.unwrap();
    })
    .await;
}
