//! End-to-end tests of the engine against `@modelcontextprotocol/server-everything`, the MCP
//! reference server (npm, pinned in `tests/package.json`; `npm ci --prefix tests`).
//!
//! They prove that one [`Connector`] reaches the same real server over all three transports
//! (stdio, legacy HTTP+SSE, Streamable HTTP), lists its tools, and calls them with nothing
//! lost: text, structured content, images, and a multi-second operation. They also prove the
//! "done when" path a user takes: a TOML config file, and a Claude-Desktop-style
//! `mcpServers` JSON file, each naming one server per transport, loaded with [`Config::load`]
//! and driven end to end. Every failure message names the transport and the step.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::{NodePeer, eventually, process_alive, repo_root};
use serde_json::{Map, Value, json};
use switchboard::config::Variables;
use switchboard::internals::Upstream;
use switchboard::{CallOutcome, Config, Connector, Error, ServerConfig, TransportKind};
use tokio::time::Instant;

/// Upper bound for any one step (connect, list, one call). Not a timing assertion.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

const EXPECTED_TOOLS: &[&str] = &[
    "echo",
    "get-sum",
    "get-structured-content",
    "get-tiny-image",
    "trigger-long-running-operation",
];

/// server-everything's entry point, as an absolute path.
fn entry() -> PathBuf {
    let entry = repo_root()
        .join("tests/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "npm test peers are not installed ({} is missing): run `npm ci --prefix tests` \
         at the repository root",
        entry.display()
    );
    entry.canonicalize().expect("canonical entry path")
}

pub(crate) fn stdio_config(name: &str) -> ServerConfig {
    ServerConfig::stdio(
        name,
        "node",
        vec![entry().to_string_lossy().into_owned(), "stdio".to_owned()],
    )
}

fn args(value: Value) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => panic!("test bug: arguments must be an object, got {other}"),
    }
}

/// Runs one step with an upper bound; panics naming the transport and step on error.
async fn step<T>(label: &str, what: &str, f: impl Future<Output = Result<T, Error>>) -> T {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Err(_) => panic!("[{label}] {what}: did not finish within {STEP_TIMEOUT:?}"),
        Ok(Err(e)) => panic!("[{label}] {what}: {e} [{}]", e.class()),
        Ok(Ok(value)) => value,
    }
}

async fn connect(label: &str, server: &ServerConfig, vars: Variables<'_>) -> Upstream {
    step(label, "connect", Connector::new().connect(server, vars)).await
}

async fn call(label: &str, upstream: &Upstream, tool: &str, arguments: Value) -> CallOutcome {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let arguments = if arguments.is_null() {
        None
    } else {
        args(arguments)
    };
    let outcome = step(
        label,
        &format!("call {tool}"),
        upstream.call_tool(tool, arguments, deadline),
    )
    .await;
    assert!(
        !outcome.is_error,
        "[{label}] call {tool}: the tool reported failure: {outcome:?}"
    );
    outcome
}

async fn assert_lists_expected_tools(label: &str, upstream: &Upstream) {
    let tools = step(label, "list_tools", upstream.list_tools()).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in EXPECTED_TOOLS {
        assert!(
            names.contains(expected),
            "[{label}] list_tools: '{expected}' missing from {names:?}"
        );
    }
}

async fn assert_echo(label: &str, upstream: &Upstream, message: &str) {
    let outcome = call(label, upstream, "echo", json!({ "message": message })).await;
    let text = outcome.text();
    assert!(
        text.contains(message),
        "[{label}] echo: text {text:?} does not contain {message:?}"
    );
}

/// Every step of the per-transport test, on an already connected upstream.
async fn exercise_all_tools(label: &str, upstream: &Upstream) {
    assert_lists_expected_tools(label, upstream).await;

    assert_echo(label, upstream, "hi").await;

    let sum = call(label, upstream, "get-sum", json!({"a": 2, "b": 3})).await;
    assert!(
        sum.text().contains('5'),
        "[{label}] get-sum: text {:?} does not contain 5",
        sum.text()
    );

    let weather = call(
        label,
        upstream,
        "get-structured-content",
        json!({"location": "New York"}),
    )
    .await;
    let structured = weather.structured_content.as_ref().unwrap_or_else(|| {
        panic!("[{label}] get-structured-content: no structured_content in {weather:?}")
    });
    assert!(
        structured.is_object(),
        "[{label}] get-structured-content: structured_content is not an object: {structured}"
    );
    assert!(
        structured["temperature"].is_number(),
        "[{label}] get-structured-content: no number 'temperature' in {structured}"
    );

    let image = call(label, upstream, "get-tiny-image", Value::Null).await;
    assert!(
        image.content.iter().any(|b| b.kind() == "image"
            && b.mime_type() == Some("image/png")
            && b.as_json()["data"].as_str().is_some_and(|d| !d.is_empty())),
        "[{label}] get-tiny-image: no non-empty image/png block in {:?}",
        image.content
    );

    let long = call(
        label,
        upstream,
        "trigger-long-running-operation",
        json!({"duration": 1, "steps": 2}),
    )
    .await;
    assert!(
        long.text().contains("completed"),
        "[{label}] trigger-long-running-operation: text {:?} does not contain 'completed'",
        long.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_lists_and_calls_every_kind_of_tool_then_closes() {
    let label = "stdio";
    let server = stdio_config("everything");
    assert_eq!(server.transport, TransportKind::Stdio);
    let upstream = connect(label, &server, Variables::default()).await;
    let pid = upstream
        .process_id()
        .await
        .unwrap_or_else(|| panic!("[{label}] connect: no process id for a stdio server"));
    assert!(
        process_alive(pid),
        "[{label}] server process {pid} not alive"
    );

    exercise_all_tools(label, &upstream).await;

    close_and_check(label, &upstream).await;
    assert!(
        eventually(Duration::from_secs(10), || !process_alive(pid)),
        "[{label}] close: server process {pid} still alive after close"
    );
}

/// Closes `upstream` within the step bound and checks it is closed for good.
async fn close_and_check(label: &str, upstream: &Upstream) {
    tokio::time::timeout(STEP_TIMEOUT, upstream.close())
        .await
        .unwrap_or_else(|_| panic!("[{label}] close: did not finish within {STEP_TIMEOUT:?}"));
    assert!(
        !upstream.is_alive(),
        "[{label}] close: upstream still alive"
    );
    let err = upstream.list_tools().await.unwrap_err();
    assert_eq!(
        err.class(),
        switchboard::ErrorClass::Closed,
        "[{label}] list_tools after close: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_lists_and_calls_every_kind_of_tool_then_closes() {
    let label = "sse";
    let peer = NodePeer::start("sse");
    let server = ServerConfig::url("everything", peer.url("/sse"));
    assert_eq!(server.transport, TransportKind::Sse);
    let upstream = connect(label, &server, Variables::default()).await;

    exercise_all_tools(label, &upstream).await;

    close_and_check(label, &upstream).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_lists_and_calls_every_kind_of_tool_then_closes() {
    let label = "streamableHttp";
    let peer = NodePeer::start("streamableHttp");
    let server = ServerConfig::url("everything", peer.url("/mcp"));
    assert_eq!(server.transport, TransportKind::StreamableHttp);
    let upstream = connect(label, &server, Variables::default()).await;

    exercise_all_tools(label, &upstream).await;

    close_and_check(label, &upstream).await;
}

/// Loads `path`, checks it names the three servers with the right transports, then connects
/// to each, lists its tools and calls `echo`.
async fn drive_config_file(kind: &str, path: &std::path::Path) {
    let config = Config::load(path).unwrap_or_else(|e| panic!("[{kind}] Config::load failed: {e}"));
    let names: Vec<&str> = config.servers.keys().map(String::as_str).collect();
    assert_eq!(names, ["ev_http", "ev_sse", "ev_stdio"], "[{kind}] servers");
    for (name, transport) in [
        ("ev_stdio", TransportKind::Stdio),
        ("ev_sse", TransportKind::Sse),
        ("ev_http", TransportKind::StreamableHttp),
    ] {
        assert_eq!(
            config.servers[name].transport, transport,
            "[{kind}] transport of {name}"
        );
    }
    for (name, server) in &config.servers {
        let label = format!("{kind} {name}");
        let upstream = connect(&label, server, Variables::from_config(&config.variables)).await;
        assert_eq!(upstream.server(), name, "[{label}] upstream name");
        assert_lists_expected_tools(&label, &upstream).await;
        assert_echo(&label, &upstream, &format!("hello {name}")).await;
        upstream.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_when_a_toml_config_with_all_three_transports_works_end_to_end() {
    let sse = NodePeer::start("sse");
    let http = NodePeer::start("streamableHttp");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("switchboard.toml");
    // Debug formatting of a &str is a valid TOML basic string for these plain paths and URLs.
    let toml = format!(
        "[servers.ev_stdio]\n\
         command = \"node\"\n\
         args = [{entry:?}, \"stdio\"]\n\
         \n\
         [servers.ev_sse]\n\
         url = {sse:?}\n\
         \n\
         [servers.ev_http]\n\
         url = {http:?}\n",
        entry = entry().to_string_lossy(),
        sse = sse.url("/sse"),
        http = http.url("/mcp"),
    );
    std::fs::write(&path, toml).expect("write the TOML config");
    drive_config_file("toml", &path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn done_when_a_claude_desktop_mcp_servers_json_with_all_three_transports_works() {
    let sse = NodePeer::start("sse");
    let http = NodePeer::start("streamableHttp");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("claude_desktop_config.json");
    let doc = json!({
        "mcpServers": {
            "ev_stdio": {
                "command": "node",
                "args": [entry().to_string_lossy(), "stdio"],
            },
            "ev_sse": { "type": "sse", "url": sse.url("/sse") },
            "ev_http": { "type": "http", "url": http.url("/mcp") },
        }
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap())
        .expect("write the JSON config");
    drive_config_file("mcpServers json", &path).await;
}
