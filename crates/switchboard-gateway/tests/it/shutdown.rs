//! `switchboard serve` itself: SIGTERM with a call in flight lets it finish, then stops and
//! leaves no upstream process behind; with `[gateway] shutdown_delay`, it first keeps serving
//! while `/readyz` says 503.

use serde_json::json;
use switchboard_testkit::{HttpMode, Knobs, serve_streamable_http};

use crate::common::serve::{ServeProcess, process_gone, workspace_bin};
use crate::common::{eventually, ok_text, toml_string, ts_client_started};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_call_in_flight_finish_then_stops() {
    let kit = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\ndrain_timeout = \"30s\"\n[servers.kit]\nurl = {}\n\
             [servers.local]\ncommand = {}\n",
            toml_string(&kit.url()),
            toml_string(&workspace_bin("switchboard-testkit").to_string_lossy()),
        ),
    )
    .unwrap();
    let mut serve = ServeProcess::start(&config).await;
    let url = serve.url.clone();

    // A process in the stdio server's process group, which closing the hub must end too.
    let rest = url.replace("/mcp", "/v1/tools/local__spawn_grandchild/call");
    let spawned: serde_json::Value = reqwest::Client::new()
        .post(&rest)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grandchild: i32 = ok_text(&spawned).parse().expect("a pid");
    assert!(!process_gone(grandchild));

    let client = ts_client_started(
        &url,
        json!({}),
        json!([{"op": "call", "name": "kit__sleep", "arguments": {"ms": 1500}}]),
    );
    eventually("the call reaches the upstream", || {
        kit.counts()["executions"]["sleep"] == json!(1)
    })
    .await;
    serve.signal(libc::SIGTERM);

    let answers = client.finish().await;
    assert_eq!(
        ok_text(&answers[0]),
        "slept 1500 ms",
        "the call in flight finished"
    );
    let status = serve.stopped().await;
    assert!(status.success(), "{status}");
    let log = serve.log();
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("gateway stopped"), "{log}");
    assert_eq!(
        kit.counts()["cancelled"],
        json!({}),
        "nothing was cut off: {}",
        kit.counts()
    );
    eventually("the stdio server's process group is gone", || {
        process_gone(grandchild)
    })
    .await;
    // Nothing listens there any more.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_string();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// A config of one stateful testkit upstream with `[gateway] shutdown_delay = delay`.
fn delayed_config(dir: &tempfile::TempDir, kit_url: &str, delay: &str) -> std::path::PathBuf {
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nshutdown_delay = {}\ndrain_timeout = \"30s\"\n\
             [servers.kit]\nurl = {}\n",
            toml_string(delay),
            toml_string(kit_url),
        ),
    )
    .unwrap();
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_shutdown_delay_readyz_is_503_and_calls_are_served() {
    let kit = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Far longer than the test: the delay ends by the second SIGTERM below.
    let config = delayed_config(&dir, &kit.url(), "10m");
    let mut serve = ServeProcess::start(&config).await;
    let http = reqwest::Client::new();
    let ready = http.get(serve.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    serve.signal(libc::SIGTERM);
    serve
        .wait_log("shutting down in 600s: /readyz says 503 from now on, requests are still served")
        .await;
    let ready = http.get(serve.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready once SIGTERM arrived");
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap(),
        json!({"ready": false, "reason": "shutting down"})
    );
    // New calls still work: REST, and a new MCP session over a new connection.
    let echoed: serde_json::Value = http
        .post(serve.at("/v1/tools/kit__echo/call"))
        .json(&json!({"message": "still here"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok_text(&echoed), "still here");
    let answers = ts_client_started(
        &serve.url,
        json!({}),
        json!([{"op": "call", "name": "kit__echo", "arguments": {"message": "new session"}}]),
    )
    .finish()
    .await;
    assert_eq!(ok_text(&answers[0]), "new session");

    // A call in flight when the delay ends still finishes: the drain runs as without a delay.
    let client = ts_client_started(
        &serve.url,
        json!({}),
        json!([{"op": "call", "name": "kit__sleep", "arguments": {"ms": 1500}}]),
    );
    eventually("the call reaches the upstream", || {
        kit.counts()["executions"]["sleep"] == json!(1)
    })
    .await;
    serve.signal(libc::SIGTERM);
    let answers = client.finish().await;
    assert_eq!(ok_text(&answers[0]), "slept 1500 ms");
    let status = serve.stopped().await;
    assert!(status.success(), "{status}");
    let log = serve.log();
    let at = |text: &str| {
        log.find(text)
            .unwrap_or_else(|| panic!("the log says {text:?}: {log}"))
    };
    assert!(at("shutdown delay cut short") < at("shutting down: no new connections"));
    assert!(at("shutting down: no new connections") < at("gateway stopped"));
    assert_eq!(kit.counts()["cancelled"], json!({}), "{}", kit.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_delay_ends_by_itself_then_the_drain_runs() {
    let kit = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = delayed_config(&dir, &kit.url(), "300ms");
    let mut serve = ServeProcess::start(&config).await;
    serve.signal(libc::SIGTERM);
    let status = serve.stopped().await;
    assert!(status.success(), "{status}");
    let log = serve.log();
    let at = |text: &str| {
        log.find(text)
            .unwrap_or_else(|| panic!("the log says {text:?}: {log}"))
    };
    assert!(at("shutting down in 300ms") < at("shutdown delay over"));
    assert!(at("shutdown delay over") < at("shutting down: no new connections"));
    assert!(at("shutting down: no new connections") < at("gateway stopped"));
}
