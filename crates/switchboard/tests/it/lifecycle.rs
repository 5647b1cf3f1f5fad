//! Both MCP lifecycles against the testkit: a server that speaks only the 2026-07-28
//! revision (`server/discover`, `_meta` on every request), one that speaks only the classic
//! `initialize`, and one that speaks both (current SDKs), over stdio and Streamable HTTP
//! (with and without server sessions). The engine probes with `server/discover` and falls
//! back to `initialize`; either way, listing and calling tools through a hub works the same.

use std::time::Duration;

use serde_json::json;
use switchboard::config::{ProtocolPin, SessionMode, Variables};
use switchboard::{Config, Connector, Hub, ServerConfig, Session};
use switchboard_testkit::{HttpMode, Knobs, Lifecycle, serve_streamable_http};
use tokio::time::Instant;

use crate::common::testkit_stdio;

const BOUND: Duration = Duration::from_secs(30);

fn lifecycle_arg(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Classic => "classic",
        Lifecycle::Modern => "modern",
        Lifecycle::Both => "both",
    }
}

/// The revision a server with `lifecycle` ends up speaking with us.
fn expected_version(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Classic => "2025-11-25",
        Lifecycle::Modern | Lifecycle::Both => "2026-07-28",
    }
}

const LIFECYCLES: [Lifecycle; 3] = [Lifecycle::Classic, Lifecycle::Modern, Lifecycle::Both];

/// Connects one upstream, lists and calls, and checks the revision agreed.
async fn check_upstream(server: &ServerConfig, lifecycle: Lifecycle) {
    let upstream = tokio::time::timeout(
        BOUND,
        Connector::new().connect(server, Variables::default()),
    )
    .await
    .expect("connect within the bound")
    .unwrap_or_else(|e| panic!("{lifecycle:?}: {e}"));
    assert_eq!(
        upstream.protocol_version().as_deref(),
        Some(expected_version(lifecycle)),
        "{lifecycle:?}"
    );
    let tools = upstream.list_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "echo"), "{lifecycle:?}");
    let arguments = json!({"message": "hi"}).as_object().cloned();
    let deadline = Instant::now() + BOUND;
    let outcome = upstream
        .call_tool("echo", arguments, deadline)
        .await
        .unwrap();
    assert_eq!(outcome.text(), "hi", "{lifecycle:?}");
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_servers_of_each_lifecycle() {
    for lifecycle in LIFECYCLES {
        let server = testkit_stdio("kit", &["--lifecycle", lifecycle_arg(lifecycle)]);
        check_upstream(&server, lifecycle).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_servers_of_each_lifecycle_with_and_without_sessions() {
    for mode in [HttpMode::Stateful, HttpMode::Stateless] {
        for lifecycle in LIFECYCLES {
            let knobs = Knobs {
                lifecycle,
                ..Knobs::default()
            };
            let running = serve_streamable_http(knobs, mode).await.unwrap();
            check_upstream(&ServerConfig::url("kit", running.url()), lifecycle).await;
            running.shutdown().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_over_a_modern_and_a_classic_server_lists_and_calls_both() {
    let modern = serve_streamable_http(
        Knobs {
            lifecycle: Lifecycle::Modern,
            ..Knobs::default()
        },
        HttpMode::Stateless,
    )
    .await
    .unwrap();
    let mut config = Config::default();
    let mut per_user = ServerConfig::url("modern", modern.url());
    per_user.session_mode = SessionMode::PerSession;
    config.servers.insert("modern".into(), per_user);
    config
        .servers
        .insert("classic".into(), testkit_stdio("classic", &[]));
    let hub = Hub::builder().config(&config).start().await.unwrap();
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    let names: Vec<String> = hub
        .catalog()
        .tools()
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(names.contains(&"modern__echo".to_string()), "{names:?}");
    assert!(names.contains(&"classic__echo".to_string()), "{names:?}");
    for (name, session) in [
        ("modern__echo", None),
        (
            "modern__echo",
            Some(Session::new("alice", Default::default())),
        ),
        ("classic__echo", None),
    ] {
        let arguments = json!({"message": name}).as_object().cloned();
        let outcome = hub
            .call_in(session.as_ref(), name, arguments, None)
            .await
            .unwrap();
        assert_eq!(outcome.text(), name);
    }
    assert_eq!(hub.session_count("modern"), 1);
    // Health says which revision each server speaks.
    let health = hub.health();
    let version = |name: &str| {
        let server = health.servers.iter().find(|s| s.name == name).unwrap();
        server.protocol_version.clone()
    };
    assert_eq!(version("modern").as_deref(), Some("2026-07-28"));
    assert_eq!(version("classic").as_deref(), Some("2025-11-25"));
    hub.close().await;
    modern.shutdown().await;
}

/// A classic server that never answers `server/discover` still connects within its
/// `connect_timeout`: the probe gives up at half of it and `initialize` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_ignoring_the_probe_is_initialized_within_the_connect_timeout() {
    let mut server = testkit_stdio("kit", &["--ignore-discover"]);
    server.connect_timeout = Duration::from_secs(4);
    let connector = Connector::new();
    let upstream = connector
        .connect(&server, Variables::default())
        .await
        .expect("initialize after the unanswered probe");
    assert_eq!(upstream.protocol_version().as_deref(), Some("2025-11-25"));
    upstream.close().await;
    // Learned: the next connection does not probe (it would wait the same 2 s again, and
    // with a 1 s connect timeout it could not succeed otherwise).
    server.connect_timeout = Duration::from_secs(1);
    let again = connector
        .connect(&server, Variables::default())
        .await
        .expect("straight to initialize");
    again.close().await;
}

/// A 2026-07-28-only server slow to answer its first `server/discover` (a loaded machine)
/// refuses the `initialize` that follows the given-up probe; the connect then opens with
/// `server/discover` alone within what is left of its `connect_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_server_slow_to_answer_the_probe_still_connects() {
    let knobs = Knobs {
        lifecycle: Lifecycle::Modern,
        slow_first_discover: Some(Duration::from_secs(2)),
        ..Knobs::default()
    };
    let modern = serve_streamable_http(knobs, HttpMode::Stateless)
        .await
        .unwrap();
    let mut server = ServerConfig::url("modern", modern.url());
    server.connect_timeout = Duration::from_secs(3);
    let upstream = Connector::new()
        .connect(&server, Variables::default())
        .await
        .expect("server/discover after the refused initialize");
    assert_eq!(upstream.protocol_version().as_deref(), Some("2026-07-28"));
    upstream.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_version_pins_the_lifecycle_and_revision() {
    // A server speaking both, pinned to a classic revision: initialize, offering it.
    let mut both = testkit_stdio("kit", &["--lifecycle", "both"]);
    both.protocol_version = ProtocolPin::V2025_06_18;
    let upstream = Connector::new()
        .connect(&both, Variables::default())
        .await
        .unwrap();
    assert_eq!(upstream.protocol_version().as_deref(), Some("2025-06-18"));
    upstream.close().await;
    // Pinned to 2026-07-28, a classic server is refused rather than spoken to in another
    // revision.
    let mut classic = testkit_stdio("kit", &["--lifecycle", "classic"]);
    classic.protocol_version = ProtocolPin::V2026_07_28;
    let error = Connector::new()
        .connect(&classic, Variables::default())
        .await
        .err()
        .expect("a classic server cannot speak 2026-07-28");
    assert_eq!(error.class(), switchboard::ErrorClass::Protocol, "{error}");
}

#[test]
fn protocol_version_is_read_and_checked_from_the_config() {
    let config = Config::from_toml_str(
        "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\nprotocol_version = \"2026-07-28\"\n",
        None,
    )
    .unwrap();
    assert_eq!(
        config.servers["a"].protocol_version,
        ProtocolPin::V2026_07_28
    );
    let sse = Config::from_toml_str(
        "[servers.a]\nurl = \"http://127.0.0.1:1/sse\"\nprotocol_version = \"2026-07-28\"\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        sse.contains("protocol_version") && sse.contains("SSE"),
        "{sse}"
    );
    let typo = Config::from_toml_str(
        "[servers.a]\nurl = \"http://127.0.0.1:1/mcp\"\nprotocol_version = \"2025-11-24\"\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        typo.contains("2025-11-25"),
        "suggests the revision meant: {typo}"
    );
}
