//! The hot path (`mcp/hot.rs`): a plain session's `tools/call` answered without rmcp's
//! pipeline, over raw JSON-RPC with reqwest — in one SSE event, with its progress streamed
//! first when the request has a `progressToken`, keeping the session alive although rmcp
//! never sees those calls, and cancellable by `notifications/cancelled`. A 2026-07-28
//! request's `tools/call` answered exactly as rmcp answers it, and refused by rmcp's checks
//! as before.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestGateway, mcp_post, ok_text, open_session, testkit, toml_string};

/// The `data:` payloads of an SSE body, as JSON (priming events, with no data, left out).
fn events(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .map(|data| serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}")))
        .collect()
}

fn call(id: u64, name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments}})
}

/// POSTs `message` on `session`.
async fn post(
    http: &reqwest::Client,
    mcp: &str,
    session: &str,
    message: &Value,
) -> reqwest::Response {
    let request = mcp_post(http, mcp, None, Some(session), message);
    request.send().await.unwrap()
}

/// A gateway over a testkit (`idle`: its `session_idle_timeout`), with a client.
struct Setup {
    _kit: switchboard_testkit::RunningServer,
    gateway: TestGateway,
    http: reqwest::Client,
    mcp: String,
}

async fn setup(idle: Option<&str>) -> Setup {
    let kit = testkit().await;
    let gateway_table = match idle {
        Some(idle) => format!("[gateway]\nsession_idle_timeout = \"{idle}\"\n\n"),
        None => String::new(),
    };
    let toml = format!(
        "{gateway_table}[servers.kit]\nurl = {}\n",
        toml_string(&kit.url())
    );
    let gateway = TestGateway::start(&toml).await;
    let mcp = gateway.url("/mcp");
    Setup {
        _kit: kit,
        gateway,
        http: reqwest::Client::new(),
        mcp,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_answer_in_one_event_and_keep_their_session_alive() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(Some("1s")).await;
    let session = open_session(&http, &mcp, None).await;
    // Calls for three times as long as the session may idle: only the hot path sees them.
    for id in 2..14 {
        let message = format!("hello {id}");
        let echo = call(id, "kit__echo", json!({"message": message}));
        let response = post(&http, &mcp, &session, &echo).await;
        assert_eq!(response.status(), StatusCode::OK, "call {id}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "call {id}"
        );
        let body = response.text().await.unwrap();
        // One event, the answer (rmcp's streams begin with a priming event: `retry:`).
        assert!(!body.contains("retry:"), "{body}");
        let answers = events(&body);
        assert_eq!(answers.len(), 1, "{body}");
        assert_eq!(answers[0]["id"], json!(id), "{body}");
        assert_eq!(ok_text(&answers[0]["result"]), message);
        // A 2025-11-25 client gets the result in its revision's shape.
        assert!(answers[0]["result"].get("resultType").is_none(), "{body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // rmcp still knows the session.
    let list = json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"});
    let listed = post(&http, &mcp, &session, &list).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let answers = events(&listed.text().await.unwrap());
    assert!(
        answers[0]["result"]["tools"].as_array().is_some(),
        "{answers:?}"
    );
    // A call of an unknown tool is answered as rmcp's handler answers it.
    let unknown = call(100, "kit__nope", json!({}));
    let response = post(&http, &mcp, &session, &unknown).await;
    let answers = events(&response.text().await.unwrap());
    assert_eq!(answers[0]["id"], json!(100));
    assert!(
        answers[0].get("error").is_some() || answers[0]["result"]["isError"] == json!(true),
        "{answers:?}"
    );
    // Once the session is ended, its calls get rmcp's 404.
    let ended = http
        .delete(&mcp)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success());
    let late = post(&http, &mcp, &session, &call(101, "kit__echo", json!({}))).await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_hot_path_served_still_expires_when_idle() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(Some("1s")).await;
    let session = open_session(&http, &mcp, None).await;
    let echo = call(2, "kit__echo", json!({"message": "once"}));
    let response = post(&http, &mcp, &session, &echo).await;
    let body = response.text().await.unwrap();
    assert!(!body.contains("retry:"), "served by the hot path: {body}");
    assert_eq!(ok_text(&events(&body)[0]["result"]), "once");
    // Idle for twice its timeout: rmcp ends it, and the hot path forgets it with its handler.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = call(3, "kit__echo", json!({"message": "late"}));
    let response = post(&http, &mcp, &session, &late).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_before_the_answer_and_a_cancelled_call_ends_unanswered() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(None).await;
    // Asking for 2026-07-28 in `initialize`, as rmcp's client does: the session runs at
    // 2025-11-25, the revision agreed on.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2026-07-28", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let opened = http
        .post(&mcp)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let agreed = events(&opened.text().await.unwrap());
    assert_eq!(
        agreed[0]["result"]["protocolVersion"],
        json!("2025-11-25"),
        "{agreed:?}"
    );
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let noted = mcp_post(&http, &mcp, None, Some(&session), &initialized);
    assert_eq!(noted.send().await.unwrap().status(), StatusCode::ACCEPTED);

    let mut progress = call(2, "kit__progress", json!({"count": 3, "delay_ms": 20}));
    progress["params"]["_meta"] = json!({"progressToken": "p-2"});
    let response = post(&http, &mcp, &session, &progress).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    let told = events(&body);
    assert_eq!(told.len(), 4, "{body}");
    for (i, note) in told[..3].iter().enumerate() {
        assert_eq!(note["method"], json!("notifications/progress"), "{body}");
        assert_eq!(note["params"]["progressToken"], json!("p-2"), "{body}");
        assert_eq!(note["params"]["progress"], json!((i + 1) as f64), "{body}");
    }
    assert_eq!(told[3]["id"], json!(2));
    assert_eq!(ok_text(&told[3]["result"]), "done 3");
    // Served by the hot path: no priming event (`retry:`) opens the stream.
    assert!(!body.contains("retry:"), "{body}");

    // A hanging call: its head comes, then the client cancels it.
    let hanging = post(&http, &mcp, &session, &call(3, "kit__hang", json!({}))).await;
    assert_eq!(hanging.status(), StatusCode::OK);
    let cancel =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}});
    let cancelled = post(&http, &mcp, &session, &cancel).await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    // The stream ends without an answer.
    let mut stream = hanging.bytes_stream();
    let mut rest = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the cancelled call's stream ends")
    {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(events(&rest).is_empty(), "{rest}");
    // The session still calls.
    let echo = call(4, "kit__echo", json!({"message": "after"}));
    let response = post(&http, &mcp, &session, &echo).await;
    let answers = events(&response.text().await.unwrap());
    assert_eq!(ok_text(&answers[0]["result"]), "after");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_longer_than_the_idle_timeout_keeps_its_session_and_a_session_s_end_ends_its_calls()
{
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(Some("1s")).await;
    let session = open_session(&http, &mcp, None).await;
    // 2.5 s in one call, rmcp seeing nothing of it: the session is shown to its idle timer.
    let slow = call(2, "kit__sleep", json!({"ms": 2500}));
    let response = post(&http, &mcp, &session, &slow).await;
    let body = response.text().await.unwrap();
    let answers = events(&body);
    assert_eq!(answers.len(), 1, "{body}");
    assert_eq!(ok_text(&answers[0]["result"]), "slept 2500 ms");
    assert!(!body.contains("retry:"), "served by the hot path: {body}");
    // The session outlives the call by its idle timeout, not less.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let echo = call(3, "kit__echo", json!({"message": "still here"}));
    let response = post(&http, &mcp, &session, &echo).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        ok_text(&events(&response.text().await.unwrap())[0]["result"]),
        "still here"
    );

    // A `notifications/cancelled` with a `_meta` cancels a hot call too.
    let hanging = post(&http, &mcp, &session, &call(4, "kit__hang", json!({}))).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 4, "reason": "enough", "_meta": {}}});
    let cancelled = post(&http, &mcp, &session, &cancel).await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    let rest = tokio::time::timeout(Duration::from_secs(20), hanging.text())
        .await
        .expect("the cancelled call's stream ends")
        .unwrap();
    assert!(events(&rest).is_empty(), "{rest}");

    // A call in flight when its session is ended gets no answer: its stream ends.
    let hanging = post(&http, &mcp, &session, &call(5, "kit__hang", json!({}))).await;
    let ended = http
        .delete(&mcp)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success());
    let rest = tokio::time::timeout(Duration::from_secs(20), hanging.text())
        .await
        .expect("the ended session's call stream ends")
        .unwrap();
    assert!(events(&rest).is_empty(), "{rest}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_header_rmcp_refuses_is_refused_on_the_hot_path_too() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(None).await;
    let session = open_session(&http, &mcp, None).await;
    for accept in [
        "application/json-seq, text/event-stream",
        "application/json, text/event-stream;q=0",
    ] {
        let echo = call(2, "kit__echo", json!({"message": "hi"}));
        let response = http
            .post(&mcp)
            .header("accept", accept)
            .header("content-type", "application/json")
            .header("mcp-session-id", &session)
            .json(&echo)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE, "{accept}");
    }
    gateway.stop().await;
}

/// POSTs a 2026-07-28 `tools/call` of `name` (no session), with the `_meta` a client of
/// that revision sends and the entries of `meta` besides; `headers` replace the SEP-2243
/// headers it would send.
async fn post_2026(
    http: &reqwest::Client,
    mcp: &str,
    id: u64,
    name: &str,
    arguments: Value,
    meta: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut all_meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    for (key, value) in meta.as_object().into_iter().flatten() {
        all_meta[key] = value.clone();
    }
    let message = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": all_meta}});
    let mut sent = reqwest::header::HeaderMap::new();
    let defaults = [
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", name),
    ];
    for (header, value) in defaults.iter().chain(headers) {
        let header = reqwest::header::HeaderName::from_bytes(header.as_bytes()).unwrap();
        sent.insert(header, value.parse().unwrap());
    }
    let request = http.post(mcp).headers(sent).json(&message);
    request.send().await.unwrap()
}

/// The status, media type and messages (one JSON body, or the events of a stream) of an
/// answer.
async fn answered(response: reqwest::Response) -> (StatusCode, String, Vec<Value>) {
    let status = response.status();
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    let messages = match kind.as_str() {
        "text/event-stream" => events(&body),
        _ => vec![serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))],
    };
    (status, kind, messages)
}

/// `messages` without the time their errors' data carry, the notifications of each kind in
/// the order they came (the engine tells a call's progress and its log messages apart, in
/// no order between the two), then the answer.
fn untimed(messages: &[Value]) -> Vec<Value> {
    let mut messages = messages.to_vec();
    let told = messages.len().saturating_sub(1);
    messages[..told].sort_by_key(|m| m["method"].as_str().map(str::to_owned));
    for message in &mut messages {
        if let Some(data) = message
            .pointer_mut("/error/data")
            .and_then(Value::as_object_mut)
        {
            data.remove("at");
        }
    }
    messages
}

/// A `traceparent` in `_meta` leaves a request to rmcp's pipeline (the hot path serves
/// only the keys it knows): the same request answered both ways.
const TO_RMCP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_call_is_answered_as_rmcp_answers_it() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(None).await;
    let steps = json!({"count": 2, "delay_ms": 10, "log": true});
    let cases = [
        ("kit__echo", json!({"message": "hi"}), json!({})),
        ("kit__fail", json!({}), json!({})),
        ("kit__nope", json!({}), json!({})),
        // Progress, and log messages at or above the request's level (`info`: each step's
        // `debug` message is not told).
        (
            "kit__progress",
            steps,
            json!({"progressToken": "p", "io.modelcontextprotocol/logLevel": "info"}),
        ),
    ];
    for (id, (name, arguments, meta)) in (1..).zip(cases) {
        let hot = post_2026(&http, &mcp, id, name, arguments.clone(), meta.clone(), &[]);
        let (status, kind, messages) = answered(hot.await).await;
        let mut meta = meta;
        meta["traceparent"] = json!(TO_RMCP);
        let rmcp = post_2026(&http, &mcp, id, name, arguments, meta, &[]).await;
        let (rmcp_status, rmcp_kind, rmcp_messages) = answered(rmcp).await;
        assert_eq!((status, &kind), (rmcp_status, &rmcp_kind), "{name}");
        assert_eq!(untimed(&messages), untimed(&rmcp_messages), "{name}");
        let answer = messages.last().unwrap();
        assert_eq!(answer["id"], json!(id), "{name}: {messages:?}");
        match name {
            "kit__echo" => {
                assert_eq!(kind, "application/json");
                assert_eq!(ok_text(&answer["result"]), "hi");
            }
            "kit__fail" => assert_eq!(answer["result"]["isError"], json!(true), "{answer}"),
            "kit__nope" => assert!(answer.get("error").is_some(), "{answer}"),
            _ => {
                assert_eq!(kind, "text/event-stream");
                let sorted = untimed(&messages);
                let told: Vec<&str> = sorted[..sorted.len() - 1]
                    .iter()
                    .map(|m| m["method"].as_str().unwrap())
                    .collect();
                let log = "notifications/message";
                let progress = "notifications/progress";
                assert_eq!(told, [log, log, progress, progress], "{messages:?}");
                assert_eq!(sorted[0]["params"]["level"], json!("info"));
                assert_eq!(sorted[1]["params"]["level"], json!("info"));
                assert_eq!(ok_text(&answer["result"]), "done 2");
            }
        }
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_still_refuses_a_2026_call_its_checks_refuse() {
    let Setup {
        _kit,
        gateway,
        http,
        mcp,
    } = setup(None).await;
    let echo = json!({"message": "hi"});
    let refused = |headers: &'static [(&'static str, &'static str)], meta: Value| {
        let (http, mcp, echo) = (&http, &mcp, echo.clone());
        async move {
            let response = post_2026(http, mcp, 7, "kit__echo", echo, meta, headers).await;
            let (status, _, messages) = answered(response).await;
            (status, messages[0]["error"]["code"].clone())
        }
    };
    let mismatch = json!(-32020);
    // Mcp-Name naming another tool than the body's.
    let other_name = refused(&[("mcp-name", "kit__add")], json!({})).await;
    assert_eq!(other_name, (StatusCode::BAD_REQUEST, mismatch.clone()));
    // `_meta` naming another revision than the header.
    let other_revision = json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"});
    let other_revision = refused(&[], other_revision).await;
    assert_eq!(other_revision, (StatusCode::BAD_REQUEST, mismatch));
    // The client's capabilities missing.
    let no_capabilities = json!({"io.modelcontextprotocol/clientCapabilities": null});
    let (status, _) = refused(&[], no_capabilities).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    gateway.stop().await;
}

/// A tool with an `x-mcp-header` parameter (the testkit's `route`, `region` as
/// `Mcp-Param-Region`): a 2026-07-28 call's header must agree with the body (SEP-2243),
/// downstream and upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_call_s_param_headers_are_checked_against_the_tool_s_schema() {
    // The testkit speaks 2026-07-28 too, so the gateway's own call of `route` must carry
    // the header upstream as well.
    let knobs = switchboard_testkit::Knobs {
        header_params: true,
        lifecycle: switchboard_testkit::Lifecycle::Both,
        ..Default::default()
    };
    let kit =
        switchboard_testkit::serve_streamable_http(knobs, switchboard_testkit::HttpMode::Stateful)
            .await
            .expect("testkit serves");
    let toml = format!("[servers.kit]\nurl = {}\n", toml_string(&kit.url()));
    let gateway = TestGateway::start(&toml).await;
    let (http, mcp) = (reqwest::Client::new(), gateway.url("/mcp"));
    let eu = json!({"region": "eu"});
    let route = |headers: &'static [(&'static str, &'static str)]| {
        let (http, mcp, eu) = (&http, &mcp, eu.clone());
        async move {
            let response = post_2026(http, mcp, 1, "kit__route", eu, json!({}), headers).await;
            answered(response).await
        }
    };
    let (status, _, messages) = route(&[("mcp-param-region", "eu")]).await;
    assert_eq!(status, StatusCode::OK, "{messages:?}");
    assert_eq!(ok_text(&messages[0]["result"]), "eu");
    for refused in [&[][..], &[("mcp-param-region", "us")]] {
        let (status, _, messages) = route(refused).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused:?}: {messages:?}");
        assert_eq!(messages[0]["error"]["code"], json!(-32020), "{messages:?}");
    }
    gateway.stop().await;
}
