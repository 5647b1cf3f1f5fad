//! The checks every request passes before a handler (without auth): `Host` (DNS
//! rebinding) and `Origin` allow-lists, the body size limit, and the per-session limit of
//! calls in flight — over MCP (raw JSON-RPC with reqwest, and the TS SDK client) and REST.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    TestGateway, eventually, mcp_post, ok_text, open_session, testkit, toml_string, ts_client,
};

/// One shared testkit behind a gateway with `gateway` (the `[gateway]` table's body).
async fn gateway_with(gateway: &str) -> (TestGateway, switchboard_testkit::RunningServer) {
    let kit = testkit().await;
    let toml = format!(
        "[gateway]\n{gateway}\n\n[servers.kit]\nurl = {}\n",
        toml_string(&kit.url())
    );
    (TestGateway::start(&toml).await, kit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_and_hosts_are_refused_on_every_route() {
    let (gateway, _kit) =
        gateway_with("allowed_origins = [\"https://app.example.com\", \"http://localhost:*\"]")
            .await;
    let http = reqwest::Client::new();
    let mcp = gateway.url("/mcp");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let send = |path: &str, header: &'static str, value: &str| {
        let request = mcp_post(&http, &gateway.url(path), None, None, &init).header(header, value);
        async move { request.send().await.unwrap().status() }
    };
    // An Origin not listed: 403, on /mcp and REST alike.
    for path in ["/mcp", "/v1/tools/kit__echo/call"] {
        assert_eq!(
            send(path, "origin", "https://evil.example.com").await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            send(path, "origin", "http://app.example.com").await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        send("/mcp", "origin", "https://app.example.com").await,
        StatusCode::OK
    );
    assert_eq!(
        send("/mcp", "origin", "http://localhost:6274").await,
        StatusCode::OK
    );
    // A Host that is not this loopback gateway's (DNS rebinding): 403 everywhere but the
    // probes.
    for path in ["/mcp", "/v1/tools/kit__echo/call"] {
        assert_eq!(
            send(path, "host", "evil.example.com").await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    for path in ["/v1/tools", "/v1/health"] {
        let response = http
            .get(gateway.url(path))
            .header("host", "rebound.example.com")
            .send()
            .await;
        assert_eq!(response.unwrap().status(), StatusCode::FORBIDDEN, "{path}");
    }
    // Kubelet probes the pod's IP.
    for path in ["/healthz", "/readyz"] {
        let probe = http
            .get(gateway.url(path))
            .header("host", "10.1.2.3:8080")
            .send()
            .await;
        assert_eq!(probe.unwrap().status(), StatusCode::OK, "{path}");
    }
    let local = format!("localhost:{}", gateway.addr.port());
    assert_eq!(send("/mcp", "host", &local).await, StatusCode::OK);

    // A browser at an allowed origin: its preflight is answered (no credential needed) and
    // it may read the answer and the session id; another origin gets no CORS grant.
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, &mcp)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, mcp-session-id",
            )
            .send()
    };
    let granted = preflight("https://app.example.com").await.unwrap();
    assert!(granted.status().is_success(), "{}", granted.status());
    let headers = granted.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("mcp-session-id"),
        "{allowed}"
    );
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(
        denied
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let answered = mcp_post(&http, &mcp, None, None, &init)
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        answered.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let exposed = answered.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("mcp-session-id"), "{exposed}");

    // The TS SDK client (no Origin header: not a browser) is let in.
    let answers = ts_client(
        &mcp,
        json!({}),
        json!([{"op": "call", "name": "kit__echo", "arguments": {"message": "hi"}}]),
    )
    .await;
    assert_eq!(ok_text(&answers[0]), "hi");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_max_body_are_413() {
    let (gateway, _kit) = gateway_with("max_body = \"2KiB\"").await;
    let http = reqwest::Client::new();
    let mcp = gateway.url("/mcp");
    let session = open_session(&http, &mcp, None).await;
    let call = |message: &str| {
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "kit__echo", "arguments": {"message": message}}})
    };
    let big = "x".repeat(4096);

    let small = mcp_post(&http, &mcp, None, Some(&session), &call("small"))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    let large = mcp_post(&http, &mcp, None, Some(&session), &call(&big))
        .send()
        .await
        .unwrap();
    assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = large.json().await.unwrap();
    assert_eq!(body["error"]["class"], json!("payload_too_large"), "{body}");

    // Without Content-Length (chunked): counted as it arrives.
    let rest = gateway.url("/v1/tools/kit__echo/call");
    let chunks =
        futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(bytes_of(&"y".repeat(512)))));
    // New connections from here: a refused request's connection is closed by the gateway
    // (its body was not read to the end), and a pooled reuse of it races that close.
    let chunked = reqwest::Client::new()
        .post(&rest)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let ok = reqwest::Client::new()
        .post(&rest)
        .json(&json!({"message": "fits"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    gateway.stop().await;
}

fn bytes_of(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_session_limit_get_429_until_one_finishes() {
    let (gateway, _kit) = gateway_with("max_concurrent_calls_per_session = 1").await;
    let http = reqwest::Client::new();
    let mcp = gateway.url("/mcp");
    let session = open_session(&http, &mcp, None).await;
    let call = |id: u64, tool: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
    };

    // One call in flight (it hangs until cancelled); its response has begun (SSE).
    let hanging = mcp_post(&http, &mcp, None, Some(&session), &call(2, "kit__hang"))
        .send()
        .await
        .unwrap();
    assert_eq!(hanging.status(), StatusCode::OK);
    let refused = mcp_post(&http, &mcp, None, Some(&session), &call(3, "kit__echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["id"], json!(3), "{error}");
    assert_eq!(error["error"]["code"], json!(-32029), "{error}");
    // Notifications are not calls: they pass (a cancellation must reach a full session).
    let note =
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}});
    let noted = mcp_post(&http, &mcp, None, Some(&session), &note)
        .send()
        .await
        .unwrap();
    assert_eq!(noted.status(), StatusCode::ACCEPTED);
    // Another session has its own limit.
    let other = open_session(&http, &mcp, None).await;
    let echo = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "kit__echo", "arguments": {"message": "other"}}});
    let answered = mcp_post(&http, &mcp, None, Some(&other), &echo)
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), StatusCode::OK);

    // The hanging call ends (its response stream is read to its end or dropped): the
    // session may call again.
    let mut stream = hanging.bytes_stream();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    drop(stream);
    let http2 = http.clone();
    let (mcp2, session2) = (mcp.clone(), session.clone());
    let status = std::sync::Arc::new(std::sync::Mutex::new(StatusCode::TOO_MANY_REQUESTS));
    let seen = status.clone();
    let poller = tokio::spawn(async move {
        for id in 10.. {
            let echo = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "kit__echo", "arguments": {"message": "again"}}});
            let response = mcp_post(&http2, &mcp2, None, Some(&session2), &echo)
                .send()
                .await
                .unwrap();
            *seen.lock().unwrap() = response.status();
            if response.status() == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    eventually("the session may call again", || {
        *status.lock().unwrap() == StatusCode::OK
    })
    .await;
    poller.abort();
    gateway.stop().await;
}
