//! `switchboard serve` itself: SIGTERM with a call in flight lets it finish, then stops and
//! leaves no upstream process behind.

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
