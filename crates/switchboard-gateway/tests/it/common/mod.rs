//! Shared helpers for the gateway's integration tests: a gateway in this process over real
//! upstream servers, and the real downstream clients that talk to it.
//!
//! - upstreams: the testkit (in process, Streamable HTTP) and `@modelcontextprotocol/
//!   server-everything` (stdio, from `tests/node_modules`: `npm ci --prefix tests`);
//! - downstream: the official TypeScript SDK client (`client.cjs`, the SDK pinned in
//!   `tests/package.json`), and reqwest for the REST API;
//! - `switchboard serve` itself (the CLI binary) for the signal tests.

#![allow(dead_code)]

pub mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use switchboard::{Config, Hub};
use switchboard_gateway::{Gateway, GatewayError, GatewaySettings, Metrics, UpstreamOffers};
use switchboard_testkit::{HttpMode, Knobs, RunningServer, serve_streamable_http};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The longest a downstream client program may run.
pub const CLIENT_BOUND: Duration = Duration::from_secs(60);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn node_modules() -> PathBuf {
    let dir = repo_root().join("tests/node_modules");
    assert!(
        dir.join("@modelcontextprotocol/sdk/package.json").is_file(),
        "npm test peers are not installed: run `npm ci --prefix tests` at the repository root"
    );
    dir
}

/// server-everything over stdio, as a TOML server table's keys.
pub fn everything_stdio_keys() -> String {
    let entry = node_modules().join("@modelcontextprotocol/server-everything/dist/index.js");
    let entry = entry.canonicalize().expect("server-everything entry");
    format!(
        "command = \"node\"\nargs = [{}, \"stdio\"]\n",
        toml_string(&entry.to_string_lossy())
    )
}

/// `text` as a TOML basic string.
pub fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// A gateway serving on 127.0.0.1 (a free port) in this process; stopped on drop.
pub struct TestGateway {
    pub hub: Hub,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), GatewayError>>>,
}

impl TestGateway {
    /// Starts a hub from `toml` (a whole config file) and serves it.
    pub async fn start(toml: &str) -> TestGateway {
        let config = Config::from_toml_str(toml, None).expect("test config");
        let metrics = Metrics::new();
        let hub = Hub::builder()
            .config(&config)
            .layer(metrics.upstream_calls())
            .input_handler(UpstreamOffers)
            .start()
            .await
            .expect("hub starts");
        let mut settings = GatewaySettings::from(&*config.gateway);
        settings.listen = "127.0.0.1:0".parse().unwrap();
        let listener = switchboard_gateway::bind(settings.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let gateway = Gateway::with_metrics(hub.clone(), settings, metrics);
        let task = tokio::spawn(gateway.serve(listener, async move {
            let _ = stopped.await;
        }));
        TestGateway {
            hub,
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts the gateway down (drain, sessions, hub) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
            stopped
                .expect("the gateway stops within 30 s")
                .expect("the gateway task")
                .expect("the gateway serves without error");
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A TypeScript SDK client running `steps` against `url` with `headers`; its answers, one
/// per step (see `client.cjs`).
pub async fn ts_client(url: &str, headers: Value, steps: Value) -> Vec<Value> {
    ts_client_started(url, headers, steps).finish().await
}

/// A client program (TypeScript or Python SDK), running.
pub struct TsClient {
    child: tokio::process::Child,
}

/// Starts a TypeScript SDK client program (see [`ts_client`]).
pub fn ts_client_started(url: &str, headers: Value, steps: Value) -> TsClient {
    let program = serde_json::json!({ "url": url, "headers": headers, "steps": steps });
    ts_program_started(program)
}

/// A TypeScript SDK client running a whole `program` (`url`, `steps`, and the optional
/// keys `client.cjs` describes: `headers`, `transport`, `capabilities`, `answers`); its
/// answers, one per step.
pub async fn ts_program(program: Value) -> Vec<Value> {
    ts_program_started(program).finish().await
}

/// Starts a TypeScript SDK client program (see [`ts_program`]).
pub fn ts_program_started(program: Value) -> TsClient {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/client.cjs");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .arg(program.to_string())
        .env("NODE_PATH", node_modules())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node (is Node.js installed?): {e}"));
    TsClient { child }
}

impl TsClient {
    /// Waits (at most [`CLIENT_BOUND`]) for the program's answers.
    pub async fn finish(self) -> Vec<Value> {
        let output = tokio::time::timeout(CLIENT_BOUND, self.child.wait_with_output())
            .await
            .expect("the client finishes within its bound")
            .expect("the client's output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "the client failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

/// The Python test venv (`target/pyvenv`, made by ./scripts/test with the official Python
/// SDK from `crates/switchboard-py/tests/requirements.txt`).
pub fn venv_python() -> PathBuf {
    let python = repo_root().join("target/pyvenv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run ./scripts/test, or `python3 -m venv target/pyvenv && \
         target/pyvenv/bin/pip install -r crates/switchboard-py/tests/requirements.txt`",
        python.display()
    );
    python
}

/// An official Python SDK client running `steps` against `url` with `headers` (see
/// `client.py`); its answers, one per step.
pub async fn python_client(url: &str, headers: Value, steps: Value) -> Vec<Value> {
    let program = serde_json::json!({ "url": url, "headers": headers, "steps": steps });
    python_program(program).await
}

/// An official Python SDK client running a whole `program` (`url`, `headers`, `steps`, and
/// `"transport": "sse"` for legacy HTTP+SSE; see `client.py`).
pub async fn python_program(program: Value) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/client.py");
    let child = tokio::process::Command::new(venv_python())
        .arg(script)
        .arg(program.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the Python client starts");
    TsClient { child }.finish().await
}

/// The text of a `CallToolResult`'s first content block, asserting it succeeded.
pub fn ok_text(result: &Value) -> &str {
    assert_eq!(result["isError"], Value::Bool(false), "{result}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text: {result}"))
}

/// Waits (at most 20 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A stateful Streamable HTTP testkit.
pub async fn testkit() -> RunningServer {
    serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .expect("testkit serves")
}

/// A gateway over a shared testkit (`kit`), a per-session testkit whose connections carry
/// the caller's `X-Upstream-Token` (`private`), and optionally server-everything.
pub fn two_upstreams(kit: &RunningServer, private: &RunningServer, everything: bool) -> String {
    let mut toml = format!(
        "[gateway]\nsession_headers = {{ \"X-Upstream-Token\" = \"user_token\" }}\n\n\
         [variables]\nuser_token = \"nobody\"\n\n\
         [servers.kit]\nurl = {}\n\n\
         [servers.private]\nurl = {}\nsession_mode = \"per_session\"\n\
         headers = {{ \"X-Upstream-Token\" = \"${{user_token}}\" }}\n",
        toml_string(&kit.url()),
        toml_string(&private.url()),
    );
    if everything {
        toml.push_str(&format!(
            "\n[servers.everything]\n{}",
            everything_stdio_keys()
        ));
    }
    toml
}

/// A JSON-RPC message POSTed to `url` (`/mcp`) as a 2025-11-25 client would, with a bearer
/// `token` and a `session` id when given.
pub fn mcp_post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    session: Option<&str>,
    message: &Value,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(message);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    request
}

/// Opens a 2025-11-25 session at `url` (`initialize`, `notifications/initialized`); its id.
pub async fn open_session(http: &reqwest::Client, url: &str, token: Option<&str>) -> String {
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"}}});
    let response = mcp_post(http, url, token, None, &init)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = response.text().await;
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = mcp_post(http, url, token, Some(&session), &initialized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    session
}

/// `GET url` (a gateway's `/metrics`) as series → value: `name{labels}` (labels as the
/// text has them) or `name`, comments left out.
pub async fn scrape(url: &str) -> std::collections::BTreeMap<String, f64> {
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
    assert!(
        content_type.to_str().unwrap().starts_with("text/plain"),
        "{content_type:?}"
    );
    let text = response.text().await.expect("the metrics text");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value = value.parse().unwrap_or_else(|e| panic!("{e}: {line}"));
            (series.to_string(), value)
        })
        .collect()
}
