//! `switchboard serve` itself: SIGTERM with a call in flight lets it finish, then stops and
//! leaves no upstream process behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use switchboard_testkit::{HttpMode, Knobs, serve_streamable_http};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{eventually, ok_text, toml_string, ts_client_started};

/// A binary of the workspace (`switchboard`, `switchboard-testkit`). `cargo nextest run
/// --workspace` builds them; with `-p switchboard-gateway` build them first (`cargo build -p
/// switchboard-cli -p switchboard-testkit`), or the test runs a stale one.
fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p switchboard-cli -p switchboard-testkit` \
         (./scripts/test does)",
        bin.display()
    );
    bin
}

/// Whether `pid` is gone (or a zombie nobody has reaped yet).
fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

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
    let mut serve = tokio::process::Command::new(workspace_bin("switchboard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .spawn()
        .expect("switchboard serve starts");
    // The log says where /mcp listens.
    let mut log = BufReader::new(serve.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = log.next_line().await.unwrap() {
            if let Some(at) = line.find("listening on http://") {
                let url = line[at + "listening on ".len()..].trim().to_string();
                if url.ends_with("/mcp") {
                    return url;
                }
            }
        }
        panic!("switchboard serve ended without saying where it listens");
    })
    .await
    .expect("switchboard serve listens within 30 s");
    let rest_of_log = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = log.next_line().await {
            lines.push(line);
        }
        lines
    });

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
    let pid = serve.id().expect("pid") as i32;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let answers = client.finish().await;
    assert_eq!(
        ok_text(&answers[0]),
        "slept 1500 ms",
        "the call in flight finished"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), serve.wait())
        .await
        .expect("switchboard serve stops within 30 s")
        .unwrap();
    assert!(status.success(), "{status}");
    let log = rest_of_log.await.unwrap().join("\n");
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
