//! Reload without downtime, on the real `switchboard serve`: a server added to the config
//! file joins (a connected client hears `tools/list_changed` and sees its tools) while a
//! call on an untouched server goes on to its end; SIGHUP applies a removal and a change;
//! a file that does not load keeps the running config and the log says why (file, key).

use std::path::Path;
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};

use crate::common::serve::ServeProcess;
use crate::common::{eventually, ok_text, scrape, testkit, toml_string, ts_client_started};

fn server_table(name: &str, url: &str) -> String {
    format!("[servers.{name}]\nurl = {}\n", toml_string(url))
}

/// The exposed names `GET /v1/tools` lists now.
async fn rest_tools(serve: &ServeProcess) -> Vec<String> {
    let rows: Vec<Value> = reqwest::get(serve.at("/v1/tools"))
        .await
        .expect("GET /v1/tools")
        .json()
        .await
        .expect("rows");
    rows.iter()
        .map(|row| row["name"].as_str().expect("a name").to_string())
        .collect()
}

/// Rewrites `path` with `text` so that a watcher cannot tell: same size (padded with a
/// comment), same modification time, same inode. Only SIGHUP can apply it.
fn rewrite_unseen(path: &Path, text: &str) {
    let meta = std::fs::metadata(path).unwrap();
    let size = usize::try_from(meta.len()).unwrap();
    let mut text = format!("{text}#");
    assert!(text.len() < size, "the new text must be shorter");
    text.push_str(&"-".repeat(size - text.len() - 1));
    text.push('\n');
    std::fs::write(path, &text).unwrap();
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(meta.modified().unwrap()).unwrap();
}

/// When the log line containing `text` was written (its timestamp), in Unix ms.
fn logged_at(log: &str, text: &str) -> u64 {
    let line = log.lines().find(|line| line.contains(text)).expect(text);
    let stamp = line.split_whitespace().next().expect("a timestamp");
    let at = humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{e}: {line}"));
    let since = at.duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_keeps_the_running_config_when_the_file_is_bad() {
    let (kit, extra) = (testkit().await, testkit().await);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    let kit_table = server_table("kit", &kit.url());
    let extra_table = server_table("extra", &extra.url());
    std::fs::write(&config, &kit_table).unwrap();
    let mut serve = ServeProcess::start(&config).await;
    serve
        .wait_log("config reloads on SIGHUP and when the file changes")
        .await;

    // A connected client with a long call in flight on `kit`.
    let client = ts_client_started(
        &serve.url,
        json!({}),
        json!([
            {"op": "list"},
            {"op": "call", "name": "kit__sleep", "arguments": {"ms": 4000}},
            {"op": "wait_list_changed"},
            {"op": "list"},
        ]),
    );
    eventually("the call reaches kit", || {
        kit.counts()["executions"]["sleep"] == json!(1)
    })
    .await;
    let metrics = scrape(&serve.at("/metrics")).await;
    assert_eq!(metrics["switchboard_downstream_sessions"], 1.0);

    // The file gains a server: the watcher sees it.
    std::fs::write(&config, format!("{kit_table}{extra_table}")).unwrap();
    let applied = "config reload (the file changed) applied";
    serve.wait_log(applied).await;
    let applied_at = logged_at(&serve.log(), applied);
    let answers = client.finish().await;
    assert_eq!(ok_text(&answers[1]), "slept 4000 ms", "{answers:?}");
    assert!(
        answers[1]["structuredContent"]["ended_ms"]
            .as_u64()
            .unwrap()
            > applied_at,
        "the call was still in flight when the reload had been applied: {answers:?}"
    );
    assert_eq!(answers[2], json!({"list_changed": true}));
    let listed: Vec<&str> = answers[3]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(listed.contains(&"extra__echo"), "{listed:?}");
    assert!(listed.contains(&"kit__echo"), "{listed:?}");
    assert_eq!(
        kit.counts()["cancelled"],
        json!({}),
        "nothing on kit was cut off: {}",
        kit.counts()
    );

    // On SIGHUP (the file's stamp is kept, so the watcher cannot see it) `kit` leaves and
    // `extra`, changed, is replaced.
    let extra_table = format!("{extra_table}tool_call_timeout = \"20s\"\n");
    rewrite_unseen(&config, &extra_table);
    serve.signal(libc::SIGHUP);
    serve.wait_log("config reload (SIGHUP) applied").await;
    assert!(
        serve
            .log()
            .contains(r#"removed=["kit"] replaced=["extra"]"#),
        "{}",
        serve.log()
    );
    let tools = rest_tools(&serve).await;
    assert!(tools.iter().all(|t| !t.starts_with("kit__")), "{tools:?}");
    assert!(tools.contains(&"extra__echo".to_string()), "{tools:?}");

    // A file that does not load: the running config stays, the log says where and why.
    std::fs::write(
        &config,
        format!(
            "{extra_table}[servers.kit]\nurll = {}\n",
            toml_string(&kit.url())
        ),
    )
    .unwrap();
    serve
        .wait_log("config reload (the file changed) failed, the running config stays")
        .await;
    let log = serve.log();
    let failed = log
        .lines()
        .find(|line| line.contains("failed, the running config stays"))
        .unwrap();
    assert!(
        failed.contains(&config.display().to_string()) && failed.contains("urll"),
        "{failed}"
    );
    let tools = rest_tools(&serve).await;
    assert!(tools.contains(&"extra__echo".to_string()), "{tools:?}");

    let metrics = scrape(&serve.at("/metrics")).await;
    assert_eq!(
        metrics["switchboard_config_reloads_total{result=\"applied\"}"],
        2.0
    );
    assert_eq!(
        metrics["switchboard_config_reloads_total{result=\"failed\"}"],
        1.0
    );
    assert!(
        !metrics.contains_key("switchboard_server_state{server=\"kit\",state=\"ready\"}"),
        "kit is gone from the gauges too"
    );

    serve.signal(libc::SIGTERM);
    let status = serve.stopped().await;
    assert!(status.success(), "{status}");
}
