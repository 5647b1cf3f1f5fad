//! The upstream layer against the testkit server on stdio, legacy SSE and Streamable HTTP:
//! listing, calling, every content block, `isError`, deadlines and cancellation, unknown
//! tools, auth, header/env templating, dropped connections and process cleanup.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchboard::config::Variables;
use switchboard::internals::Upstream;
use switchboard::{CallOutcome, Connector, Delivery, Error, ErrorClass, Phase, ServerConfig};
use switchboard_testkit::{
    HttpMode, Knobs, RunningServer, WWW_AUTHENTICATE_CHALLENGE, serve_sse, serve_streamable_http,
};
use tokio::time::Instant;

use crate::common::{TestkitProcess, eventually, process_alive, testkit_stdio};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Stdio,
    Sse,
    Http,
}

/// A testkit server of the given kind and the config to reach it.
struct Peer {
    config: ServerConfig,
    _server: Option<RunningServer>,
}

async fn peer(kind: Kind, knobs: Knobs) -> Peer {
    match kind {
        Kind::Stdio => {
            let tools = knobs.tools.to_string();
            Peer {
                config: testkit_stdio("kit", &["--tools", &tools]),
                _server: None,
            }
        }
        Kind::Sse => {
            let server = serve_sse(knobs).await.expect("start SSE testkit");
            Peer {
                config: ServerConfig::url("kit", server.url()),
                _server: Some(server),
            }
        }
        Kind::Http => {
            let server = serve_streamable_http(knobs, HttpMode::Stateful)
                .await
                .expect("start HTTP testkit");
            Peer {
                config: ServerConfig::url("kit", server.url()),
                _server: Some(server),
            }
        }
    }
}

async fn connect(config: &ServerConfig) -> Upstream {
    Connector::new()
        .connect(config, Variables::default())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", config.name))
}

fn args(value: Value) -> Option<Map<String, Value>> {
    value.as_object().cloned()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

async fn call(upstream: &Upstream, tool: &str, arguments: Value) -> CallOutcome {
    upstream
        .call_tool(tool, args(arguments), soon())
        .await
        .unwrap_or_else(|e| panic!("call {tool}: {e}"))
}

/// The testkit's execution and cancellation counters.
async fn counts(upstream: &Upstream) -> Value {
    let text = call(upstream, "counts", json!({})).await.text();
    serde_json::from_str(&text).expect("counts is JSON")
}

macro_rules! on_every_transport {
    ($($kind:ident),*) => {$(
        #[allow(non_snake_case)]
        mod $kind {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lists_every_tool() {
                let peer = peer(Kind::$kind, Knobs { tools: 3, ..Knobs::default() }).await;
                let upstream = connect(&peer.config).await;
                let tools = upstream.list_tools().await.unwrap();
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
                for expected in ["echo", "fail", "hang", "structured", "mixed", "tool_0", "tool_2"] {
                    assert!(names.contains(&expected), "{expected} missing from {names:?}");
                }
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn calls_a_tool_and_keeps_every_block() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                let echo = call(&upstream, "echo", json!({"message": "hello, world"})).await;
                assert_eq!(echo.text(), "hello, world");
                assert!(!echo.is_error);

                let mixed = call(&upstream, "mixed", json!({})).await;
                let kinds: Vec<&str> = mixed.content.iter().map(|block| block.kind()).collect();
                assert_eq!(kinds, ["text", "text", "image", "audio", "resource_link", "resource"]);
                assert_eq!(mixed.text(), "first\nsecond");

                let structured = call(&upstream, "structured", json!({})).await;
                assert_eq!(
                    structured.structured_content,
                    Some(json!({"temperature": 21.5, "unit": "C"}))
                );
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_is_error_result_is_kept_and_classified() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                let outcome = call(&upstream, "fail", json!({"message": "nope"})).await;
                assert!(outcome.is_error);
                assert_eq!(outcome.text(), "nope");
                let err = outcome.into_result("kit", "fail").unwrap_err();
                assert_eq!(err.class(), ErrorClass::ToolError);
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_timed_out_call_is_cancelled_at_the_server() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                let deadline = Instant::now() + Duration::from_millis(300);
                let err = upstream.call_tool("hang", args(json!({})), deadline).await.unwrap_err();
                assert!(
                    matches!(err, Error::Timeout { phase: Phase::CallTool, .. }),
                    "{err:?}"
                );
                let mut cancelled = Value::Null;
                for _ in 0..100 {
                    cancelled = counts(&upstream).await["cancelled"]["hang"].clone();
                    if cancelled == json!(1) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                assert_eq!(cancelled, json!(1), "the server never saw the cancellation");
                // The session is still usable after a timeout.
                assert_eq!(call(&upstream, "echo", json!({"message": "after"})).await.text(), "after");
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_call_past_its_deadline_is_never_sent() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                let err = upstream
                    .call_tool("echo", args(json!({"message": "late"})), Instant::now())
                    .await
                    .unwrap_err();
                assert!(matches!(err, Error::Timeout { phase: Phase::CallTool, .. }), "{err:?}");
                assert_eq!(counts(&upstream).await["executions"].get("echo"), None);
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_unlisted_tool_is_an_unknown_tool() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                upstream.list_tools().await.unwrap();
                let err = upstream
                    .call_tool("no_such_tool", args(json!({})), soon())
                    .await
                    .unwrap_err();
                assert_eq!(err.class(), ErrorClass::UnknownTool, "{err}");
                upstream.close().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn close_is_idempotent_and_later_calls_say_closed() {
                let peer = peer(Kind::$kind, Knobs::default()).await;
                let upstream = connect(&peer.config).await;
                assert!(upstream.is_alive());
                upstream.close().await;
                upstream.close().await;
                assert!(!upstream.is_alive());
                let err = upstream.call_tool("echo", args(json!({"message": "x"})), soon()).await;
                assert_eq!(err.unwrap_err().class(), ErrorClass::Closed);
            }
        }
    )*};
}

on_every_transport!(Stdio, Sse, Http);

fn with_headers(mut config: ServerConfig, headers: &[(&str, &str)]) -> ServerConfig {
    config.headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    config
}

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn http_peers_requiring(token: &str) -> Vec<(&'static str, RunningServer)> {
    let knobs = Knobs {
        require_bearer: Some(token.to_owned()),
        ..Knobs::default()
    };
    vec![
        ("sse", serve_sse(knobs.clone()).await.unwrap()),
        (
            "http",
            serve_streamable_http(knobs, HttpMode::Stateful)
                .await
                .unwrap(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_is_an_auth_error_with_the_challenge() {
    for (kind, server) in http_peers_requiring("tok").await {
        let config = ServerConfig::url("kit", server.url());
        let err = Connector::new()
            .connect(&config, Variables::default())
            .await
            .err()
            .unwrap_or_else(|| panic!("{kind}: connected without a token"));
        match err {
            Error::Auth {
                status, challenge, ..
            } => {
                assert_eq!(status, 401, "{kind}");
                assert_eq!(
                    challenge.as_deref(),
                    Some(WWW_AUTHENTICATE_CHALLENGE),
                    "{kind}"
                );
            }
            other => panic!("{kind}: expected an auth error, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_headers_reach_the_server() {
    for (kind, server) in http_peers_requiring("tok").await {
        let config = with_headers(
            ServerConfig::url("kit", server.url()),
            &[
                ("Authorization", "Bearer ${token}"),
                ("X-Api-Key", "rare"),
                ("X-Price", "$$5"),
                ("X-Empty", "${empty}"),
            ],
        );
        let config_vars = vars(&[("token", "wrong"), ("empty", "")]);
        let session_vars = vars(&[("token", "tok")]);
        let variables = Variables {
            connection: Some(&session_vars),
            config: Some(&config_vars),
        };
        let upstream = Connector::new()
            .connect(&config, variables)
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        let seen: Value =
            serde_json::from_str(&call(&upstream, "echo_headers", json!({})).await.text()).unwrap();
        assert_eq!(seen["authorization"], "Bearer tok", "{kind}: {seen}");
        assert_eq!(seen["x-api-key"], "rare", "{kind}");
        assert_eq!(seen["x-price"], "$5", "{kind}");
        assert_eq!(
            seen.get("x-empty"),
            None,
            "{kind}: an empty header must not be sent"
        );
        upstream.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_bearer_header_is_dropped() {
    let server = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let config = with_headers(
        ServerConfig::url("kit", server.url()),
        &[("Authorization", "Bearer ${token}")],
    );
    let config_vars = vars(&[("token", "")]);
    let upstream = Connector::new()
        .connect(
            &config,
            Variables {
                connection: None,
                config: Some(&config_vars),
            },
        )
        .await
        .unwrap();
    let seen: Value =
        serde_json::from_str(&call(&upstream, "echo_headers", json!({})).await.text()).unwrap();
    assert_eq!(seen.get("authorization"), None, "{seen}");
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_variable_fails_before_anything_is_sent() {
    // Nothing listens on port 1: a connection attempt would be an unreachable error.
    let config = with_headers(
        ServerConfig::url("kit", "http://127.0.0.1:1/mcp"),
        &[("Authorization", "Bearer ${token}")],
    );
    let err = Connector::new()
        .connect(&config, Variables::default())
        .await
        .err()
        .expect("connect must fail");
    assert_eq!(err.class(), ErrorClass::Config, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("Authorization") && message.contains("token"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_values_are_templated_for_stdio_servers() {
    let mut config = testkit_stdio("kit", &[]);
    config.env = [(
        "SWITCHBOARD_TESTKIT_TOOLS".to_owned(),
        "${count}".to_owned(),
    )]
    .into();
    let config_vars = vars(&[("count", "2")]);
    let upstream = Connector::new()
        .connect(
            &config,
            Variables {
                connection: None,
                config: Some(&config_vars),
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = upstream
        .list_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"tool_1".to_owned()), "{names:?}");
    assert!(!names.contains(&"tool_2".to_owned()), "{names:?}");
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_leaves_no_process_behind() {
    let upstream = connect(&testkit_stdio("kit", &[])).await;
    let leader = upstream
        .process_id()
        .await
        .expect("a stdio server has a pid");
    let grandchild: i32 = call(&upstream, "spawn_grandchild", json!({}))
        .await
        .text()
        .trim()
        .parse()
        .expect("spawn_grandchild returns a pid");
    assert!(process_alive(leader) && process_alive(grandchild));
    upstream.close().await;
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(leader)
            && !process_alive(grandchild)),
        "server {leader} or grandchild {grandchild} outlived close"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_upstream_also_kills_its_processes() {
    let upstream = connect(&testkit_stdio("kit", &[])).await;
    let leader = upstream.process_id().await.unwrap();
    let grandchild: i32 = call(&upstream, "spawn_grandchild", json!({}))
        .await
        .text()
        .trim()
        .parse()
        .unwrap();
    drop(upstream);
    assert!(
        eventually(Duration::from_secs(5), || !process_alive(leader)
            && !process_alive(grandchild)),
        "server {leader} or grandchild {grandchild} outlived the drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_dropping_mid_call_is_a_clear_error() {
    let upstream = connect(&testkit_stdio("kit", &[])).await;
    let err = upstream
        .call_tool("drop", args(json!({})), soon())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ConnectionLost {
                phase: Phase::CallTool,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!upstream.is_alive());
    let next = upstream
        .call_tool("echo", args(json!({"message": "x"})), soon())
        .await;
    assert_eq!(next.unwrap_err().class(), ErrorClass::Unreachable);
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_dying_mid_call_is_a_clear_error() {
    for transport in ["streamable-http", "sse"] {
        let mut process = TestkitProcess::start(transport, &[]);
        let upstream = connect(&ServerConfig::url("kit", process.url.clone())).await;
        let err = upstream
            .call_tool("drop", args(json!({})), soon())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Unreachable, "{transport}: {err:?}");
        assert_eq!(err.delivery(), Delivery::MaybeSent, "{transport}: {err:?}");
        assert!(err.may_have_run());
        assert!(process.wait_exit(Duration::from_secs(5)).is_some());
        let next = upstream
            .call_tool("echo", args(json!({"message": "x"})), soon())
            .await;
        assert_eq!(
            next.unwrap_err().class(),
            ErrorClass::Unreachable,
            "{transport}"
        );
        upstream.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tools_follows_every_page() {
    let upstream = connect(&testkit_stdio(
        "kit",
        &["--tools", "25", "--page-size", "7"],
    ))
    .await;
    let names: Vec<String> = upstream
        .list_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    for i in 0..25 {
        assert!(
            names.contains(&format!("tool_{i}")),
            "tool_{i} missing: {names:?}"
        );
    }
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "a tool was listed twice: {names:?}"
    );
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_are_classified() {
    let connector = Connector::new();
    let refused = connector
        .connect(
            &ServerConfig::url("kit", "http://127.0.0.1:1/mcp"),
            Variables::default(),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(refused.class(), ErrorClass::Unreachable, "{refused}");
    assert_eq!(refused.delivery(), Delivery::NotSent);
    assert_eq!(
        refused.to_string(),
        "server 'kit' is unreachable: connection refused at 127.0.0.1:1"
    );

    // TLS spoken to a plain-HTTP server fails the handshake.
    let plain = serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .unwrap();
    let https = plain.url().replacen("http://", "https://", 1);
    let tls = connector
        .connect(&ServerConfig::url("kit", https), Variables::default())
        .await
        .err()
        .unwrap();
    assert_eq!(tls.class(), ErrorClass::Unreachable, "{tls}");

    let missing = connector
        .connect(
            &ServerConfig::stdio("kit", "/nonexistent/mcp-server", vec![]),
            Variables::default(),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(missing.class(), ErrorClass::Unreachable, "{missing}");
    assert!(missing.to_string().contains("cannot start"), "{missing}");

    let exits = connector
        .connect(
            &ServerConfig::stdio("kit", "false", vec![]),
            Variables::default(),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(exits.class(), ErrorClass::Unreachable, "{exits}");
    assert!(exits.to_string().contains("exited"), "{exits}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_initialize_times_out_as_connect() {
    let mut config = testkit_stdio("kit", &["--hang-initialize"]);
    config.connect_timeout = Duration::from_millis(300);
    let err = Connector::new()
        .connect(&config, Variables::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::Timeout {
                phase: Phase::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_server_gets_the_probe_then_initialize_with_the_newest_handshake_revision() {
    // A stdio "server" that refuses `server/discover` as a classic server does (method not
    // found), then writes the next message it gets (our initialize) to a file.
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.json");
    let file = dir.path().join("initialize.json");
    let script = format!(
        r#"read -r probe; printf '%s' "$probe" > '{}'
id=$(printf '%s' "$probe" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
printf '{{"jsonrpc":"2.0","id":%s,"error":{{"code":-32601,"message":"Method not found"}}}}\n' "$id"
head -n 1 > '{}'"#,
        probe.display(),
        file.display()
    );
    let mut config = ServerConfig::stdio("kit", "sh", vec!["-c".into(), script]);
    config.connect_timeout = Duration::from_secs(5);
    let err = Connector::new()
        .connect(&config, Variables::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
    let probe: Value = serde_json::from_str(&std::fs::read_to_string(&probe).unwrap()).unwrap();
    assert_eq!(probe["method"], "server/discover", "{probe}");
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(sent["method"], "initialize");
    assert_eq!(sent["params"]["protocolVersion"], "2025-11-25", "{sent}");
}
