//! The `switchboard-testkit` binary: stdio protocol, env-var knobs, the
//! `listening <url>` line, and `drop` killing the process.

use std::{process::Stdio, time::Duration};

use crate::common::first_text;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, ChildStdout, Command},
};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard-testkit");

struct StdioServer {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

impl StdioServer {
    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn testkit");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn response(&mut self, id: u64) -> Value {
        loop {
            let line = self
                .stdout
                .next_line()
                .await
                .unwrap()
                .expect("stdout closed");
            let message: Value = serde_json::from_str(&line).expect("stdout is JSON-RPC only");
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    async fn call(&mut self, id: u64, tool: &str, args: Value) -> Value {
        self.send(crate::common::call_request(id, tool, args)).await;
        self.response(id).await["result"].clone()
    }

    async fn initialize(&mut self) {
        self.send(crate::common::initialize_request(0)).await;
        let init = self.response(0).await;
        assert_eq!(init["result"]["serverInfo"]["name"], "switchboard-testkit");
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
    }
}

#[tokio::test]
async fn stdio_serves_tools_configured_by_env() {
    let mut server = StdioServer::spawn(Command::new(BIN).env("SWITCHBOARD_TESTKIT_TOOLS", "3"));
    server.initialize().await;

    server
        .send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .await;
    let tools = server.response(1).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"tool_2") && !names.contains(&"tool_3"));

    let echo = server.call(2, "echo", json!({"message": "stdio ok"})).await;
    assert_eq!(first_text(&echo), "stdio ok");
    let headers = server.call(3, "echo_headers", json!({})).await;
    assert_eq!(first_text(&headers), "{}");
    let counts: Value =
        serde_json::from_str(&first_text(&server.call(4, "counts", json!({})).await)).unwrap();
    assert_eq!(counts["executions"]["echo"], json!(1));
    assert_eq!(counts["executions"]["echo_headers"], json!(1));

    // Closing stdin ends the server cleanly.
    drop(server.stdin);
    let status = server.child.wait().await.unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn drop_tool_kills_the_process() {
    let mut server = StdioServer::spawn(&mut Command::new(BIN));
    server.initialize().await;
    server
        .send(crate::common::call_request(1, "drop", json!({})))
        .await;
    let status = server.child.wait().await.unwrap();
    assert_eq!(status.code(), Some(switchboard_testkit::DROP_EXIT_CODE));
}

#[tokio::test]
async fn crash_once_crashes_the_first_execution_only() {
    for tool in ["crash_once", "crash_once_idempotent"] {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let marker_arg = json!({"marker": marker.to_str().unwrap()});

        let mut first = StdioServer::spawn(&mut Command::new(BIN));
        first.initialize().await;
        first
            .send(crate::common::call_request(1, tool, marker_arg.clone()))
            .await;
        let status = tokio::time::timeout(Duration::from_secs(10), first.child.wait())
            .await
            .expect("the first execution exits the process")
            .unwrap();
        assert_eq!(status.code(), Some(switchboard_testkit::DROP_EXIT_CODE));
        // It died without answering.
        assert_eq!(first.stdout.next_line().await.unwrap(), None);
        let lines = std::fs::read_to_string(&marker).unwrap();
        assert_eq!(lines.lines().count(), 1, "{lines}");

        // A restarted server sees the marker and answers.
        let mut second = StdioServer::spawn(&mut Command::new(BIN));
        second.initialize().await;
        let result = second.call(1, tool, marker_arg.clone()).await;
        assert_eq!(first_text(&result), "ok after restart");
        let result = second.call(2, tool, marker_arg).await;
        assert_eq!(first_text(&result), "ok after restart");
        let lines = std::fs::read_to_string(&marker).unwrap();
        assert_eq!(lines.lines().count(), 3, "{lines}");
    }
}

#[tokio::test]
async fn http_modes_announce_their_url_on_stdout() {
    for (transport, path) in [
        ("sse", "/sse"),
        ("streamable-http", "/mcp"),
        ("streamable-http-stateless", "/mcp"),
        ("streamable-http-stateless-json", "/mcp"),
    ] {
        let mut server = StdioServer::spawn(Command::new(BIN).args(["--transport", transport]));
        let line = server.stdout.next_line().await.unwrap().expect("a line");
        let url = line.strip_prefix("listening ").expect("listening prefix");
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        assert!(url.ends_with(path), "{line}");
        let port: u16 = url["http://127.0.0.1:".len()..url.len() - path.len()]
            .parse()
            .unwrap();
        assert_ne!(port, 0);
        server.child.kill().await.unwrap();
    }
}
