//! `[scale]`: `switchboard serve` replicas sharing sessions through one real `redis-server`
//! (no load balancer: the client sends each request to the replica the test picks, with the
//! same `Mcp-Session-Id`), the official Python SDK client (`scale_client.py`) and one stateful
//! testkit as a `per_session` server, whose `session_info` tool names the upstream session a
//! call arrived on.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use crate::common::serve::ServeProcess;
use crate::common::{CLIENT_BOUND, ok_text, testkit, toml_string, venv_python};

const KEYS: &str = "# test keys\n1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

/// A real `redis-server` on a free loopback port, no persistence; killed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
    /// Its TLS port's CA certificate (`start_tls`).
    tls_ca: Option<std::path::PathBuf>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        Self::spawn(false)
    }

    /// Speaking TLS only, with a certificate for 127.0.0.1 from a CA of its own
    /// (`openssl`, in its temp dir); [`RedisServer::url`] is then `rediss://`.
    fn start_tls() -> RedisServer {
        Self::spawn(true)
    }

    fn spawn(tls: bool) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut command = std::process::Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path());
        let tls_ca = tls.then(|| {
            let (ca, cert, key) = test_certificates(dir.path());
            command
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-auth-clients", "no", "--tls-cert-file"])
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(&ca);
            ca
        });
        if !tls {
            command.args(["--port", &port.to_string()]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}); install it: apt-get install -y redis-server")
            });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child,
            port,
            tls_ca,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA, and a certificate and key for 127.0.0.1 it signed, made with `openssl` in `dir`:
/// (CA certificate, certificate, key).
fn test_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "redis.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("redis.pem"),
        dir.join("redis.key"),
    )
}

/// A config: `X-User` → `user`, templated into the per_session testkit's headers.
fn config(dir: &Path, kit_url: &str) -> std::path::PathBuf {
    config_named(dir, kit_url, "switchboard.toml", "")
}

/// [`config`] in file `name`, with `gateway` added to its `[gateway]` table.
fn config_named(dir: &Path, kit_url: &str, name: &str, gateway: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("keys"), KEYS).unwrap();
    let toml = format!(
        "[gateway]\nsession_headers = {{ \"X-User\" = \"user\" }}\n{gateway}\n\
         [variables]\nuser = \"nobody\"\n\n\
         [scale]\nstore = \"redis\"\nkeys_file = \"keys\"\n\n\
         [servers.kit]\nurl = {}\nsession_mode = \"per_session\"\n\
         headers = {{ \"X-User\" = \"${{user}}\" }}\n",
        toml_string(kit_url)
    );
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap();
    path
}

async fn replica(config: &Path, redis: &RedisServer) -> ServeProcess {
    let url = redis.url();
    ServeProcess::start_with_env(config, &[("SWITCHBOARD_REDIS_URL", url.as_str())]).await
}

/// The Python SDK client running `scale_client.py`, step by step.
struct Client {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Client {
    fn start(urls: &[&str], user: &str, steps: Value) -> Client {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/scale_client.py");
        let program = json!({"urls": urls, "headers": {"X-User": user}, "steps": steps});
        let mut child = tokio::process::Command::new(venv_python())
            .arg(script)
            .arg(program.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the Python client starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Client { child, lines }
    }

    /// The next step's answer.
    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(CLIENT_BOUND, self.lines.next_line())
            .await
            .expect("the client answers within its bound")
            .expect("the client's output")
            .expect("the client ended early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Lets a paused client go on.
    async fn resume(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    async fn finish(mut self) {
        drop(self.child.stdin.take());
        let status = tokio::time::timeout(CLIENT_BOUND, self.child.wait())
            .await
            .expect("the client ends")
            .unwrap();
        assert!(status.success(), "the client failed: {status}");
    }
}

fn upstream_session(answer: &Value) -> String {
    let info: Value = serde_json::from_str(ok_text(answer)).unwrap();
    info["session"]
        .as_str()
        .expect("an upstream session id")
        .to_string()
}

/// A raw `tools/list` POST in session `id` on `gateway` as `user`: the HTTP status and
/// `Retry-After`.
async fn raw_list(gateway: &ServeProcess, id: &str, user: &str) -> (u16, Option<String>) {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"});
    let response = reqwest::Client::new()
        .post(&gateway.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-user", user)
        .body(body.to_string())
        .send()
        .await
        .expect("the gateway answers");
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_served_by_every_replica_on_one_upstream_session_until_deleted() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    // Each says how many upstream sessions of a per_session server it keeps.
    a.wait_log("max_sessions=100").await;
    // C never sees the session before it ends.
    let c = replica(&config, &redis).await;
    // The replicas' own connections (catalogue), before any downstream session.
    let before = kit.server().http_session_count().await;
    let steps = json!([
        {"op": "call", "name": "kit__session_info"},
        {"op": "via", "to": 1},
        {"op": "call", "name": "kit__session_info"},
        {"op": "call", "name": "kit__echo_headers"},
        {"op": "session"},
        {"op": "pause"},
        {"op": "via", "to": 0},
        {"op": "call", "name": "kit__session_info"},
        {"op": "via", "to": 1},
        {"op": "delete"},
        {"op": "call", "name": "kit__session_info"},
    ]);
    let mut client = Client::start(&[&a.url, &b.url], "alice", steps);
    let on_a = upstream_session(&client.next().await);
    assert_eq!(client.next().await, json!({"via": 1}));
    let on_b = upstream_session(&client.next().await);
    assert_eq!(
        on_a, on_b,
        "B attached to A's upstream session, not a new one"
    );
    let headers: Value = serde_json::from_str(ok_text(&client.next().await)).unwrap();
    assert_eq!(headers["x-user"], json!("alice"), "B serves it as alice");
    let id = client.next().await["session_id"]
        .as_str()
        .expect("a session id")
        .to_string();
    assert_eq!(id.len(), 106, "a sealed id: {id}");
    assert_eq!(client.next().await, json!({"paused": true}));
    assert_eq!(
        kit.server().http_session_count().await,
        before + 1,
        "one upstream session for the downstream session, whichever replica served it"
    );

    // Another identity with the same id: 404 on both replicas, before any call.
    assert_eq!(raw_list(&a, &id, "mallory").await.0, 404);
    assert_eq!(raw_list(&b, &id, "mallory").await.0, 404);
    // A forged id (one byte changed) and a UUID: 404.
    let mut forged = id.clone().into_bytes();
    forged[50] = if forged[50] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(raw_list(&b, &forged, "alice").await.0, 404);
    assert_eq!(
        raw_list(&a, "0f3e5a9c-1111-4222-8333-944455556666", "alice")
            .await
            .0,
        404
    );
    let metrics = reqwest::get(a.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchboard_session_rejected_total{reason=\"identity\"} 1"),
        "{metrics}"
    );
    // The owner still gets through.
    assert_eq!(raw_list(&b, &id, "alice").await.0, 200);
    client.resume().await;
    assert_eq!(client.next().await, json!({"resumed": true}));

    assert_eq!(client.next().await, json!({"via": 0}));
    assert_eq!(
        upstream_session(&client.next().await),
        on_a,
        "back on A, same session"
    );
    assert_eq!(client.next().await, json!({"via": 1}));
    let deleted = client.next().await;
    assert!(
        matches!(deleted["status"].as_u64(), Some(200 | 202 | 204)),
        "{deleted}"
    );
    let after = client.next().await;
    assert!(
        after.get("failed").is_some() || after.get("error").is_some(),
        "{after}"
    );
    client.finish().await;
    // Ended: B and a replica that never saw it answer 404 (the record is gone), and A,
    // which held it, ends it once B's announcement arrives.
    assert_eq!(raw_list(&b, &id, "alice").await.0, 404);
    assert_eq!(raw_list(&c, &id, "alice").await.0, 404);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while raw_list(&a, &id, "alice").await.0 != 404 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never heard the session ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_and_a_redis_outage_leave_held_sessions_working() {
    let mut redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (mut a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    let c = replica(&config, &redis).await;
    let steps = json!([
        {"op": "call", "name": "kit__session_info"},
        {"op": "session"},
        {"op": "pause"},
        {"op": "via", "to": 1},
        {"op": "call", "name": "kit__session_info"},
        {"op": "pause"},
        {"op": "call", "name": "kit__echo", "arguments": {"message": "still here"}},
    ]);
    let mut client = Client::start(&[&a.url, &b.url], "alice", steps);
    let on_a = upstream_session(&client.next().await);
    let id = client.next().await["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(client.next().await, json!({"paused": true}));

    // A dies without a word: B serves the session, on the same upstream session.
    a.signal(libc::SIGKILL);
    a.stopped().await;
    client.resume().await;
    assert_eq!(client.next().await, json!({"resumed": true}));
    assert_eq!(client.next().await, json!({"via": 1}));
    assert_eq!(upstream_session(&client.next().await), on_a);
    assert_eq!(client.next().await, json!({"paused": true}));

    // Redis goes away: B (which holds the session now) still serves it; C, which never
    // saw it, answers 503 with Retry-After; a new session cannot start.
    redis.stop();
    let (status, retry) = raw_list(&c, &id, "alice").await;
    assert_eq!((status, retry.as_deref()), (503, Some("1")));
    client.resume().await;
    assert_eq!(client.next().await, json!({"resumed": true}));
    assert_eq!(ok_text(&client.next().await), "still here");
    client.finish().await;
    let mut fresh = Client::start(&[&b.url], "bob", json!([]));
    let refused = fresh.next().await;
    let message = refused["connect_error"].as_str().unwrap_or_default();
    assert!(message.contains("session store unavailable"), "{refused}");
    fresh.finish().await;
    let health: Value = reqwest::get(b.at("/v1/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["store"]["kind"], json!("redis"), "{health}");
    let metrics = reqwest::get(b.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchboard_store_up"), "{metrics}");
    let ready = reqwest::get(b.at("/readyz")).await.unwrap();
    assert_eq!(
        ready.status().as_u16(),
        200,
        "Redis down keeps replicas in the balancer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_keyring_or_a_missing_redis_url_refuses_to_start_saying_where() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "http://127.0.0.1:9/mcp");
    let serve = |env: Option<&str>| {
        let mut command =
            std::process::Command::new(crate::common::serve::workspace_bin("switchboard"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .env_remove("SWITCHBOARD_REDIS_URL");
        if let Some(url) = env {
            command.env("SWITCHBOARD_REDIS_URL", url);
        }
        command.output().expect("switchboard serve runs")
    };
    let missing = serve(None);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SWITCHBOARD_REDIS_URL"), "{stderr}");

    let secret = "c2VjcmV0LWJ1dC1zaG9ydA==";
    std::fs::write(dir.path().join("keys"), format!("{KEYS}2={secret}\n")).unwrap();
    let bad = serve(Some("redis://127.0.0.1:9/"));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("keys:3: the key is not 32 bytes long"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_shutting_down_lets_go_of_its_sessions_without_ending_them() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (mut a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    let steps = json!([
        {"op": "call", "name": "kit__session_info"},
        {"op": "pause"},
        {"op": "via", "to": 1},
        {"op": "call", "name": "kit__session_info"},
    ]);
    let mut client = Client::start(&[&a.url, &b.url], "alice", steps);
    let on_a = upstream_session(&client.next().await);
    assert_eq!(client.next().await, json!({"paused": true}));
    // SIGTERM: A drains, ends its local sessions and closes its hub: detaching, not
    // DELETEing, the upstream session another replica goes on with.
    a.signal(libc::SIGTERM);
    assert!(a.stopped().await.success());
    client.resume().await;
    assert_eq!(client.next().await, json!({"resumed": true}));
    assert_eq!(client.next().await, json!({"via": 1}));
    // Had A ended it, B's call would have met a 404 upstream and opened a new one.
    assert_eq!(upstream_session(&client.next().await), on_a);
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idling_out_on_one_replica_lives_on_on_another() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let quick = config_named(
        dir.path(),
        &kit.url(),
        "quick.toml",
        "session_idle_timeout = \"1s\"",
    );
    let url = redis.url();
    let env = [
        ("SWITCHBOARD_REDIS_URL", url.as_str()),
        ("RUST_LOG", "info,switchboard_gateway=debug"),
    ];
    let (a, b) = (
        ServeProcess::start_with_env(&quick, &env).await,
        replica(&config(dir.path(), &kit.url()), &redis).await,
    );
    let steps = json!([
        {"op": "call", "name": "kit__session_info"},
        {"op": "via", "to": 1},
        {"op": "call", "name": "kit__session_info"},
        {"op": "pause"},
        {"op": "call", "name": "kit__session_info"},
    ]);
    let mut client = Client::start(&[&a.url, &b.url], "alice", steps);
    let on_a = upstream_session(&client.next().await);
    assert_eq!(client.next().await, json!({"via": 1}));
    assert_eq!(upstream_session(&client.next().await), on_a);
    assert_eq!(client.next().await, json!({"paused": true}));
    // A's copy idles out (its keep-alive): it lets go of the upstream session, which B,
    // still serving the session, goes on with.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = reqwest::get(a.at("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("switchboard_downstream_sessions 0") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's session never idled out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A's close runs after the session's handler went: wait until it is done.
    a.wait_log("mode=Detach closed=1").await;
    client.resume().await;
    assert_eq!(client.next().await, json!({"resumed": true}));
    // Had A ended it, B's call would have met a 404 upstream and opened a new one.
    assert_eq!(upstream_session(&client.next().await), on_a);
    client.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_oauth_tokens_through_redis() {
    use switchboard_testkit::{AuthKnobs, AuthServer, HttpMode, Knobs, serve_streamable_http};
    let redis = RedisServer::start();
    let auth = AuthServer::start(AuthKnobs::default()).await.unwrap();
    let knobs = Knobs {
        oauth: Some(auth.handle()),
        ..Knobs::default()
    };
    let kit = serve_streamable_http(knobs, HttpMode::Stateful)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keys"), KEYS).unwrap();
    let config = dir.path().join("switchboard.toml");
    let toml = format!(
        "[scale]\nstore = \"redis\"\nkeys_file = \"keys\"\n\n[servers.kit]\nurl = {}\n",
        toml_string(&kit.url())
    );
    std::fs::write(&config, toml).unwrap();
    let url = redis.url();
    let whoami = |serve: &ServeProcess| {
        let at = serve.at("/v1/tools/kit__whoami/call");
        async move {
            let answer = reqwest::Client::new()
                .post(at)
                .json(&json!({}))
                .send()
                .await;
            let answer: Value = answer.unwrap().json().await.unwrap();
            assert_eq!(answer["isError"], json!(false), "{answer}");
        }
    };
    // A signs in (through the named browser); its state directory is its own.
    let (state_a, state_b) = (dir.path().join("a"), dir.path().join("b"));
    let browser = "curl -s -L --noproxy * -o /dev/null %s";
    let a = ServeProcess::start_with_env(
        &config,
        &[
            ("SWITCHBOARD_REDIS_URL", url.as_str()),
            ("SWITCHBOARD_STATE_DIR", state_a.to_str().unwrap()),
            ("SWITCHBOARD_BROWSER", browser),
        ],
    )
    .await;
    whoami(&a).await;
    // B, with another (empty) state directory and no browser, uses the token A stored.
    let b = ServeProcess::start_with_env(
        &config,
        &[
            ("SWITCHBOARD_REDIS_URL", url.as_str()),
            ("SWITCHBOARD_STATE_DIR", state_b.to_str().unwrap()),
        ],
    )
    .await;
    whoami(&b).await;
    let counts = auth.handle().counts();
    assert_eq!(
        counts["token_requests"]["authorization_code"],
        json!(1),
        "one sign-in for both replicas: {counts}"
    );
}

/// A raw POST of `body` in session `id` (none: a new one) on `gateway` as alice: the
/// response's session id header, if any.
async fn raw_post(gateway: &ServeProcess, id: Option<&str>, body: Value) -> Option<String> {
    let mut request = reqwest::Client::new()
        .post(&gateway.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-user", "alice");
    if let Some(id) = id {
        request = request.header("mcp-session-id", id);
    }
    let response = request.body(body.to_string()).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let _ = response.bytes().await;
    session
}

/// A new session on `gateway` as alice, opened with raw requests: its id.
async fn raw_session(gateway: &ServeProcess) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let id = raw_post(gateway, None, initialize)
        .await
        .expect("a session id");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    raw_post(gateway, Some(&id), initialized).await;
    id
}

/// A GET of session `id`'s standalone stream on `gateway` as alice, to send.
fn raw_get(gateway: &ServeProcess, id: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .get(&gateway.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .header("x-user", "alice")
}

/// The methods of the first `n` messages on session `id`'s standalone GET stream on
/// `gateway` (resumed after event `last`, if given).
async fn first_on_get_stream(
    gateway: &ServeProcess,
    id: &str,
    last: Option<&str>,
    n: usize,
) -> Vec<String> {
    let mut request = raw_get(gateway, id);
    if let Some(last) = last {
        request = request.header("last-event-id", last);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut methods = Vec::new();
    while methods.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a message within 10 s")
            .expect("the stream goes on")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        methods = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .filter_map(|message| message["method"].as_str().map(str::to_owned))
            .collect();
    }
    methods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_session_s_first_get_stream_tells_its_client_to_relist() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    let id = raw_session(&a).await;
    // B restores the session on its first request, here the GET stream itself: what
    // changed while the client listened on A is not known here, so it relists.
    let relist = [
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/prompts/list_changed",
    ];
    assert_eq!(first_on_get_stream(&b, &id, None, 3).await, relist);
    // So does a client reconnecting its stream after the first event (`Last-Event-ID`).
    let resumed = raw_session(&a).await;
    assert_eq!(
        first_on_get_stream(&b, &resumed, Some("0"), 3).await,
        relist
    );
    // A, where the session began, and B's next stream, have nothing to say first.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    raw_post(&b, Some(&id), list).await;
    for gateway in [&a, &b] {
        let response = raw_get(gateway, &id).send().await.unwrap();
        // Everything the stream says within half a second (a relist would come at once).
        let mut stream = response.bytes_stream();
        let mut said = String::new();
        let quiet = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(quiet);
        loop {
            tokio::select! {
                chunk = stream.next() => match chunk {
                    Some(Ok(chunk)) => said.push_str(&String::from_utf8_lossy(&chunk)),
                    _ => break,
                },
                () = &mut quiet => break,
            }
        }
        assert!(!said.contains("list_changed"), "{said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_sessions_through_a_redis_that_speaks_tls() {
    let redis = RedisServer::start_tls();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let url = redis.url();
    let ca = redis.tls_ca.as_ref().unwrap().to_str().unwrap().to_owned();
    // The CA is trusted the standard way for a private CA: SSL_CERT_FILE.
    let env = [
        ("SWITCHBOARD_REDIS_URL", url.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
    ];
    let (a, b) = (
        ServeProcess::start_with_env(&config, &env).await,
        ServeProcess::start_with_env(&config, &env).await,
    );
    let steps = json!([
        {"op": "call", "name": "kit__session_info"},
        {"op": "via", "to": 1},
        {"op": "call", "name": "kit__session_info"},
    ]);
    let mut client = Client::start(&[&a.url, &b.url], "alice", steps);
    let on_a = upstream_session(&client.next().await);
    assert_eq!(client.next().await, json!({"via": 1}));
    assert_eq!(
        upstream_session(&client.next().await),
        on_a,
        "B restored it over TLS"
    );
    client.finish().await;

    // A replica that does not trust the CA refuses new sessions, saying why.
    let untrusted =
        ServeProcess::start_with_env(&config, &[("SWITCHBOARD_REDIS_URL", url.as_str())]).await;
    let mut fresh = Client::start(&[&untrusted.url], "bob", json!([]));
    let refused = fresh.next().await;
    let message = refused["connect_error"].as_str().unwrap_or_default();
    assert!(message.contains("session store unavailable"), "{refused}");
    assert!(message.to_lowercase().contains("certificate"), "{refused}");
    fresh.finish().await;
}

/// A GET in session `id` on `gateway` resuming after event `last`: its status.
async fn resume_status(gateway: &ServeProcess, id: &str, last: &str) -> u16 {
    let response = raw_get(gateway, id).header("last-event-id", last);
    response.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_request_stream_that_is_not_here_is_refused_so_the_client_gives_up() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    let id = raw_session(&a).await;
    // B never had the stream (it restores the session first); A has no stream 999.
    assert_eq!(resume_status(&b, &id, "0/1").await, 410);
    assert_eq!(resume_status(&a, &id, "0/999").await, 410);
    // The standalone stream's resume keeps rmcp's answer (a stream: the client goes on).
    assert_eq!(resume_status(&a, &id, "0").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_gateway_refuses_a_request_stream_it_does_not_have_too() {
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    let toml = format!("[servers.kit]\nurl = {}\n", toml_string(&kit.url()));
    std::fs::write(&config, toml).unwrap();
    let gateway = ServeProcess::start(&config).await;
    let id = raw_session(&gateway).await;
    // Without `[scale]` too: a stream that never was (or ended) is 410, not an empty 200.
    assert_eq!(resume_status(&gateway, &id, "0/999").await, 410);
    assert_eq!(resume_status(&gateway, &id, "0").await, 200);
}

/// `redis-cli` against `redis` with `args`: its output.
fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_may_have_missed_a_session_s_end_check_its_record() {
    let redis = RedisServer::start();
    let kit = testkit().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &kit.url());
    let (a, b) = (
        replica(&config, &redis).await,
        replica(&config, &redis).await,
    );
    let ended = raw_session(&a).await;
    let records = redis_cli(&redis, &["--scan", "--pattern", "sb:v1:s:*"]);
    let ended_record = records.lines().find(|k| !k.is_empty()).unwrap().to_owned();
    let lost = raw_session(&a).await;
    for id in [&ended, &lost] {
        assert_eq!(raw_list(&a, id, "alice").await.0, 200);
        assert_eq!(raw_list(&b, id, "alice").await.0, 200, "B restored it");
    }
    // While no replica listens: one session is ended by its client (its record goes and
    // its end is marked, as a DELETE on a third replica does, but the announcement is
    // lost); the other's record is merely lost (as in a Redis without persistence).
    let mark = ended_record.replacen(":v1:s:", ":v1:e:", 1);
    redis_cli(&redis, &["SET", &mark, "1", "PX", "60000"]);
    redis_cli(&redis, &["DEL", &ended_record]);
    let records = redis_cli(&redis, &["--scan", "--pattern", "sb:v1:s:*"]);
    for record in records.lines().filter(|k| !k.is_empty()) {
        redis_cli(&redis, &["DEL", record]);
    }
    redis_cli(&redis, &["CLIENT", "KILL", "SKIPME", "yes"]);
    // Each replica subscribes again, checks the sessions it holds, and ends the ended one.
    for gateway in [&a, &b] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while raw_list(gateway, &ended, "alice").await.0 != 404 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a replica still serves a session its client ended"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The other goes on where it is held (its record is not an end).
        assert_eq!(raw_list(gateway, &lost, "alice").await.0, 200);
    }
}
