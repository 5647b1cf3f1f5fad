//! Per-session connections and reconnects through the [`Hub`], against the testkit over real
//! transports: many sessions each with its own server-side session, idle reaping that spares
//! leased sessions, LRU eviction and the session limit, a hanging connect that delays no
//! other session, a server restarted mid-run, a timed-out call that is not sent again, and a
//! crashed stdio server brought back on the next call, concurrent failures sharing one
//! reconnect, concurrent first calls of a new session sharing one connect, and a Streamable
//! HTTP session expiry (404) handled in place; private tool lists kept per session.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{TestkitProcess, free_port, testkit_stdio};
use futures::future::join_all;
use serde_json::{Value, json};
use switchboard::config::{ReconnectPolicy, SessionMode};
use switchboard::hub::ConnectEvent;
use switchboard::{Config, Deadline, ErrorClass, Hub, ServerConfig, Session};
use tokio::time::Instant;

const STEP: Duration = Duration::from_secs(30);

async fn start(config: Config) -> Hub {
    let hub = tokio::time::timeout(STEP, Hub::builder().config(&config).start())
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    if let Some((server, error)) = hub.failures().first() {
        panic!("server '{server}' failed: {error}");
    }
    hub
}

fn config_with(servers: Vec<ServerConfig>) -> Config {
    let mut config = Config::default();
    for server in servers {
        config.servers.insert(server.name.clone(), server);
    }
    config
}

fn per_session(mut server: ServerConfig, max_sessions: usize) -> ServerConfig {
    server.session_mode = SessionMode::PerSession;
    server.max_sessions = max_sessions;
    server
}

fn session(id: &str) -> Session {
    Session::new(id, BTreeMap::from([("user".to_string(), id.to_string())]))
}

fn args(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

async fn text_in(hub: &Hub, session: Option<&Session>, tool: &str, arguments: Value) -> String {
    let outcome = tokio::time::timeout(STEP, hub.call_in(session, tool, args(arguments), None))
        .await
        .expect("call within the step bound")
        .unwrap_or_else(|e| panic!("{tool}: {e} [{}]", e.class()));
    assert!(!outcome.is_error, "{tool}: {}", outcome.text());
    outcome.text()
}

/// The server-side MCP session id this session's calls arrive on.
async fn server_session(hub: &Hub, session: &Session) -> String {
    let text = text_in(hub, Some(session), "kit__session_info", json!({})).await;
    let info: Value = serde_json::from_str(&text).expect("session_info JSON");
    info["session"].as_str().expect("session id").to_string()
}

/// Polls `check` every 20 ms for up to `within` without blocking the runtime's workers
/// (the hub's tasks must keep running meanwhile); true as soon as it holds.
async fn until(within: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn counts(hub: &Hub) -> Value {
    serde_json::from_str(&text_in(hub, None, "kit__counts", json!({})).await).expect("counts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_sessions_each_get_their_own_server_session() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 2000);
    server.headers.insert("X-User".into(), "${user}".into());
    let mut config = config_with(vec![server]);
    config.variables.insert("user".into(), "nobody".into());
    let hub = start(config).await;

    let sessions: Vec<Session> = (0..1000).map(|i| session(&format!("user{i}"))).collect();
    let ids = join_all(sessions.iter().map(|s| server_session(&hub, s))).await;
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        1000,
        "sessions shared a server-side session"
    );
    assert_eq!(hub.session_count("kit"), 1000);

    // Each session's connection was made with its own variables.
    let headers = text_in(&hub, Some(&sessions[7]), "kit__echo_headers", json!({})).await;
    let headers: Value = serde_json::from_str(&headers).expect("headers JSON");
    assert_eq!(headers["x-user"], "user7", "{headers}");
    // Later calls reuse the session's connection.
    assert_eq!(server_session(&hub, &sessions[7]).await, ids[7]);
    // Calls without a session use the shared connection, made with the config's variables.
    let shared = text_in(&hub, None, "kit__echo_headers", json!({})).await;
    assert!(shared.contains("\"x-user\":\"nobody\""), "{shared}");

    assert_eq!(hub.cleanup_sessions(Duration::ZERO).await, 1000);
    assert_eq!(hub.session_count("kit"), 0);
    hub.close().await;
}

/// The testkit's counters for the scale-out tests (issue 17): `tick` executions per id and
/// upstream sessions created per `X-User`, as a per_session server's sessions produce them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testkit_counts_ticks_per_id_and_sessions_per_user() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 10);
    server.headers.insert("X-User".into(), "${user}".into());
    let mut config = config_with(vec![server]);
    config.variables.insert("user".into(), "nobody".into());
    let hub = start(config).await;
    let (alice, bob) = (session("alice"), session("bob"));

    for (who, id) in [(&alice, "a1"), (&alice, "a2"), (&bob, "b1"), (&bob, "b1")] {
        assert_eq!(
            text_in(&hub, Some(who), "kit__tick", json!({"id": id})).await,
            id
        );
    }
    let seen = counts(&hub).await;
    assert_eq!(seen["ticks"], json!({"a1": 1, "a2": 1, "b1": 2}), "{seen}");
    assert_eq!(seen["executions"]["tick"], json!(4), "{seen}");
    // One upstream session per engine session, and the hub's shared one (config variables).
    assert_eq!(
        seen["sessions_created"],
        json!({"alice": 1, "bob": 1, "nobody": 1}),
        "{seen}"
    );
    // A second engine session of the same user is a session of its own.
    let alice_again = Session::new(
        "alice-2",
        BTreeMap::from([("user".to_string(), "alice".to_string())]),
    );
    text_in(&hub, Some(&alice_again), "kit__tick", json!({"id": "a3"})).await;
    assert_eq!(counts(&hub).await["sessions_created"]["alice"], json!(2));
    hub.close().await;
}

/// The testkit flags of a server speaking only 2026-07-28.
const MODERN: [&str; 2] = ["--lifecycle", "modern"];

/// On a 2026-07-28 server without server sessions a session is only its own headers: its
/// calls go over the hub's one connection, each request carrying its session's variables,
/// and the pool counts and reaps sessions the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_a_modern_server_each_carry_their_own_headers() {
    let kit = TestkitProcess::start("streamable-http-stateless", &MODERN);
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 500);
    server.headers.insert("X-User".into(), "${user}".into());
    let mut config = config_with(vec![server]);
    config.variables.insert("user".into(), "nobody".into());
    let (hub, dials) = start_counting_dials(config).await;

    let sessions: Vec<Session> = (0..200).map(|i| session(&format!("user{i}"))).collect();
    let seen = join_all(sessions.iter().map(|s| async {
        let text = text_in(&hub, Some(s), "kit__echo_headers", json!({})).await;
        let headers: Value = serde_json::from_str(&text).expect("headers JSON");
        headers["x-user"].as_str().unwrap_or_default().to_string()
    }))
    .await;
    for (i, user) in seen.iter().enumerate() {
        assert_eq!(user, &format!("user{i}"));
    }
    assert_eq!(hub.session_count("kit"), 200);
    let shared = text_in(&hub, None, "kit__echo_headers", json!({})).await;
    assert!(shared.contains("\"x-user\":\"nobody\""), "{shared}");
    // One connection for all: the sessions opened none of their own.
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    // Only the shared connection listens for changes; sessions hold no stream.
    assert_eq!(text_in(&hub, None, "kit__listening", json!({})).await, "1");
    assert_eq!(hub.cleanup_sessions(Duration::ZERO).await, 200);
    assert_eq!(hub.session_count("kit"), 0);
    // A session whose variables leave the header empty sends none: never the shared
    // connection's value.
    let blank = Session::new(
        "blank",
        BTreeMap::from([("user".to_string(), String::new())]),
    );
    let text = text_in(&hub, Some(&blank), "kit__echo_headers", json!({})).await;
    let headers: Value = serde_json::from_str(&text).expect("headers JSON");
    assert!(headers.get("x-user").is_none(), "{headers}");
    hub.close().await;
}

/// The exposed names of `session`'s catalogue that start with `kit__mine_`.
async fn own_tools(hub: &Hub, session: Option<&Session>) -> Vec<String> {
    let catalog = hub
        .catalog_in(session)
        .await
        .expect("the session's catalogue");
    let names = catalog.tools().iter().map(|t| t.name.clone());
    names.filter(|n| n.starts_with("kit__mine_")).collect()
}

/// A server whose lists are private (`cacheScope: "private"`) shows each session the list
/// it gives that session, never the hub's nor another session's; names resolve against it.
async fn private_lists_stay_with_their_session(transport: &str, flags: &[&str]) {
    let mut args = vec!["--private-lists"];
    args.extend_from_slice(flags);
    let kit = TestkitProcess::start(transport, &args);
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 10);
    server.headers.insert("X-User".into(), "${user}".into());
    let mut config = config_with(vec![server]);
    config.variables.insert("user".into(), "nobody".into());
    let hub = start(config).await;
    let (alice, bob) = (session("alice"), session("bob"));

    assert_eq!(own_tools(&hub, None).await, ["kit__mine_nobody"]);
    assert_eq!(own_tools(&hub, Some(&alice)).await, ["kit__mine_alice"]);
    assert_eq!(own_tools(&hub, Some(&bob)).await, ["kit__mine_bob"]);
    assert_eq!(
        text_in(&hub, Some(&alice), "kit__mine_alice", json!({})).await,
        "alice"
    );
    // Resources and prompts the same way.
    for (who, user) in [
        (None, "nobody"),
        (Some(&alice), "alice"),
        (Some(&bob), "bob"),
    ] {
        let resources = hub.resources_in(who).await;
        let uris = resources.items.iter().map(|r| r.uri.as_str());
        let mine: Vec<&str> = uris.filter(|u| u.contains("testkit://mine/")).collect();
        assert_eq!(mine, [format!("kit+testkit://mine/{user}")]);
        let prompts = hub.prompts_in(who).await;
        let names = prompts.items.iter().map(|p| p.name.as_str());
        let mine: Vec<&str> = names.filter(|n| n.starts_with("kit__mine_")).collect();
        assert_eq!(mine, [format!("kit__mine_{user}")]);
    }
    for (who, name) in [(&bob, "kit__mine_alice"), (&alice, "kit__mine_nobody")] {
        let call = hub.call_in(Some(who), name, None, None).await;
        let error = call.expect_err("another context's tool is not the session's");
        assert_eq!(error.class(), ErrorClass::UnknownTool, "{error}");
    }
    // Kept while fresh: the same catalogue, not a new listing per call.
    let first = hub.catalog_in(Some(&alice)).await.expect("catalogue");
    let again = hub.catalog_in(Some(&alice)).await.expect("catalogue");
    assert!(Arc::ptr_eq(&first, &again));
    // A change the server announces reaches the session's list (on its own connection, or
    // through the hub's listen stream and relist).
    text_in(&hub, Some(&alice), "kit__notify_list_changed", json!({})).await;
    let mut changed = false;
    for _ in 0..100 {
        let catalog = hub.catalog_in(Some(&alice)).await.expect("catalogue");
        if catalog.get("kit__added_1").is_some() {
            assert!(catalog.get("kit__mine_alice").is_some());
            changed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(changed, "the session never saw the added tool");
    // A session that was reaped lists again when it comes back.
    assert_eq!(hub.cleanup_sessions(Duration::ZERO).await, 2);
    assert_eq!(own_tools(&hub, Some(&bob)).await, ["kit__mine_bob"]);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_lists_stay_with_their_session_on_a_modern_server() {
    private_lists_stay_with_their_session("streamable-http-stateless", &MODERN).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_lists_stay_with_their_session_on_a_classic_server() {
    private_lists_stay_with_their_session("streamable-http", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_list_the_session_cannot_get_leaves_the_server_out_and_says_why() {
    let kit = TestkitProcess::start(
        "streamable-http",
        &["--private-lists", "--require-bearer", "letmein"],
    );
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 10);
    server
        .headers
        .insert("Authorization".into(), "Bearer ${token}".into());
    let mut config = config_with(vec![server]);
    config.variables.insert("token".into(), "letmein".into());
    let hub = start(config).await;
    let token = |t: &str| BTreeMap::from([("token".to_string(), t.to_string())]);
    let (good, bad) = (
        Session::new("good", token("letmein")),
        Session::new("bad", token("nope")),
    );

    assert!(
        hub.catalog_in(Some(&good))
            .await
            .expect("catalogue")
            .get("kit__echo")
            .is_some()
    );
    let catalog = hub.catalog_in(Some(&bad)).await.expect("catalogue");
    assert!(
        catalog.tools().is_empty(),
        "the hub's private list was shown to another context"
    );
    let call = hub.call_in(Some(&bad), "kit__echo", args(json!({"message": "x"})), None);
    let error = call.await.expect_err("the session's server is out");
    // Why, not "no such tool": the session's link waits to reconnect after a 401, and says
    // so as the auth failure it is (with when to try again).
    assert!(error.to_string().contains("HTTP 401"), "{error}");
    assert_eq!(error.class(), ErrorClass::Auth, "{error}");
    assert!(error.retry_after().is_some(), "{error}");
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_server_s_private_list_is_the_hub_s() {
    let kit = TestkitProcess::start("streamable-http", &["--private-lists"]);
    let hub = start(config_with(vec![ServerConfig::url("kit", kit.url.clone())])).await;
    let alice = session("alice");
    let mine = hub.catalog_in(Some(&alice)).await.expect("catalogue");
    assert!(Arc::ptr_eq(&mine, &hub.catalog()));
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_closes_idle_sessions_and_spares_leased_ones() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let hub = start(config_with(vec![per_session(
        ServerConfig::url("kit", kit.url.clone()),
        10,
    )]))
    .await;
    let (busy, idle) = (session("busy"), session("idle"));
    server_session(&hub, &idle).await;
    let hub2 = hub.clone();
    let busy2 = busy.clone();
    let long_call = tokio::spawn(async move {
        text_in(&hub2, Some(&busy2), "kit__sleep", json!({"ms": 1500})).await
    });
    // Wait until the busy session exists (its call is in flight).
    assert!(
        until(Duration::from_secs(10), || hub.session_count("kit") == 2).await,
        "the busy session never appeared"
    );
    assert_eq!(hub.cleanup_sessions(Duration::ZERO).await, 1);
    assert_eq!(hub.session_count("kit"), 1);
    long_call.await.expect("the leased session's call finished");
    assert_eq!(hub.cleanup_sessions(Duration::ZERO).await, 1);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_closes_only_its_own_connection() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let hub = start(config_with(vec![per_session(
        ServerConfig::url("kit", kit.url.clone()),
        10,
    )]))
    .await;
    let (ended, kept) = (session("ended"), session("kept"));
    let first = server_session(&hub, &ended).await;
    let kept_id = server_session(&hub, &kept).await;
    assert_eq!(hub.session_count("kit"), 2);
    assert_eq!(hub.end_session(&ended.id).await, 1);
    assert_eq!(hub.session_count("kit"), 1);
    assert_eq!(hub.end_session("never-seen").await, 0);
    // The kept session is untouched; the ended one connects afresh if it calls again.
    assert_eq!(server_session(&hub, &kept).await, kept_id);
    assert_ne!(server_session(&hub, &ended).await, first);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_closes_sessions_after_their_idle_timeout() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let mut server = per_session(ServerConfig::url("kit", kit.url.clone()), 10);
    server.session_idle_timeout = Duration::from_millis(200);
    let mut config = config_with(vec![server]);
    config.sessions.reaper_interval = Duration::from_millis(100);
    let hub = start(config).await;
    server_session(&hub, &session("a")).await;
    server_session(&hub, &session("b")).await;
    assert_eq!(hub.session_count("kit"), 2);
    assert!(
        until(Duration::from_secs(10), || hub.session_count("kit") == 0).await,
        "idle sessions were not reaped"
    );
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_the_lru_idle_session_goes_and_all_leased_is_an_error() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let hub = start(config_with(vec![per_session(
        ServerConfig::url("kit", kit.url.clone()),
        2,
    )]))
    .await;
    let (a, b, c) = (session("a"), session("b"), session("c"));
    let id_a = server_session(&hub, &a).await;
    let id_b = server_session(&hub, &b).await;
    server_session(&hub, &b).await; // b is now more recently used than a
    let id_c = server_session(&hub, &c).await;
    assert_eq!(hub.session_count("kit"), 2);
    // b survived with its connection; a was evicted and comes back as a new session.
    assert_eq!(server_session(&hub, &b).await, id_b);
    let id_a2 = server_session(&hub, &a).await; // evicts c (LRU now)
    assert_ne!(id_a2, id_a);
    assert_ne!(id_c, id_a2);

    // Both sessions busy: a third one is refused, naming the limit.
    let calls: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            let hub = hub.clone();
            tokio::spawn(async move {
                hub.call_in(Some(&s), "kit__sleep", args(json!({"ms": 1500})), None)
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = hub
        .call_in(
            Some(&session("d")),
            "kit__echo",
            args(json!({"message": "x"})),
            None,
        )
        .await
        .expect_err("session limit");
    assert_eq!(err.class(), ErrorClass::SessionLimit);
    assert!(err.to_string().contains("max_sessions = 2"), "{err}");
    for call in calls {
        call.await.expect("join").expect("leased call completes");
    }
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_connect_for_one_session_does_not_delay_another() {
    // The session variable `hang` reaches the testkit's environment: session A's server
    // never answers initialize.
    let mut server = per_session(testkit_stdio("kit", &[]), 10);
    server.env.insert(
        "SWITCHBOARD_TESTKIT_HANG_INITIALIZE".into(),
        "${hang}".into(),
    );
    server.connect_timeout = Duration::from_secs(3);
    let mut config = config_with(vec![server]);
    config.variables.insert("hang".into(), "false".into());
    let hub = start(config).await;

    let a = Session::new(
        "a",
        BTreeMap::from([("hang".to_string(), "true".to_string())]),
    );
    let b = Session::new(
        "b",
        BTreeMap::from([("hang".to_string(), "false".to_string())]),
    );
    let hub_a = hub.clone();
    let a_call = tokio::spawn(async move {
        hub_a
            .call_in(Some(&a), "kit__echo", args(json!({"message": "a"})), None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    for i in 0..100 {
        let text = text_in(
            &hub,
            Some(&b),
            "kit__echo",
            json!({"message": format!("b{i}")}),
        )
        .await;
        assert_eq!(text, format!("b{i}"));
    }
    assert!(
        !a_call.is_finished(),
        "A's connect ended before B's calls did"
    );
    println!(
        "B: 100 calls in {:?} while A's connect hangs",
        started.elapsed()
    );
    let a_result = a_call.await.expect("join");
    assert_eq!(
        a_result.expect_err("A times out").class(),
        ErrorClass::Timeout
    );
    hub.close().await;
}

fn reconnect_fast(server: &mut ServerConfig) {
    server.reconnect = ReconnectPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(300),
    };
    server.tool_call_timeout = Duration::from_secs(5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restarted_mid_run_fails_fast_then_recovers_and_nothing_runs_twice() {
    server_restarted_mid_run("streamable-http", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modern_server_restarted_mid_run_fails_fast_then_recovers_and_nothing_runs_twice() {
    server_restarted_mid_run("streamable-http-stateless", &MODERN).await;
}

async fn server_restarted_mid_run(mode: &str, flags: &[&str]) {
    let port = free_port();
    let kit = TestkitProcess::start_on(mode, port, flags);
    let mut server = ServerConfig::url("kit", kit.url.clone());
    reconnect_fast(&mut server);
    let hub = start(config_with(vec![server])).await;
    assert_eq!(
        text_in(&hub, None, "kit__echo", json!({"message": "before"})).await,
        "before"
    );

    drop(kit);
    let mut outage_errors = 0;
    for i in 0..5 {
        let started = Instant::now();
        let err = hub
            .call(
                "kit__echo",
                args(json!({"message": format!("down{i}")})),
                None,
            )
            .await
            .expect_err("the server is down");
        assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "not fast: {:?}",
            started.elapsed()
        );
        outage_errors += 1;
    }
    assert_eq!(outage_errors, 5);

    let _kit = TestkitProcess::start_on(mode, port, flags);
    let mut succeeded = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while succeeded < 3 {
        assert!(Instant::now() < deadline, "never recovered");
        match hub
            .call(
                "kit__echo",
                args(json!({"message": format!("after{succeeded}")})),
                None,
            )
            .await
        {
            Ok(outcome) => {
                assert_eq!(outcome.text(), format!("after{succeeded}"));
                succeeded += 1;
            }
            Err(err) => {
                assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // The restarted server ran each successful call exactly once.
    assert_eq!(counts(&hub).await["executions"]["echo"], 3);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_call_is_not_sent_again() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let hub = start(config_with(vec![ServerConfig::url("kit", kit.url.clone())])).await;
    let deadline = Deadline::after(Duration::from_millis(300));
    let err = hub
        .call("kit__sleep", args(json!({"ms": 1000})), Some(deadline))
        .await
        .expect_err("timeout");
    assert_eq!(err.class(), ErrorClass::Timeout);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(counts(&hub).await["executions"]["sleep"], 1);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_stdio_server_is_reconnected_on_the_next_call() {
    let mut server = testkit_stdio("kit", &[]);
    reconnect_fast(&mut server);
    let hub = start(config_with(vec![server])).await;
    let before = Arc::new(text_in(&hub, None, "kit__session_info", json!({})).await);
    let err = hub
        .call("kit__drop", None, None)
        .await
        .expect_err("the server died");
    assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
    let after = text_in(&hub, None, "kit__session_info", json!({})).await;
    assert_ne!(*before, after, "the same server process answered");
    assert_eq!(
        text_in(&hub, None, "kit__echo", json!({"message": "back"})).await,
        "back"
    );
    hub.close().await;
}

/// A hub whose dial counts every connection attempt it is asked for.
async fn start_counting_dials(config: Config) -> (Hub, Arc<AtomicUsize>) {
    let dials = Arc::new(AtomicUsize::new(0));
    let counter = dials.clone();
    let hub = Hub::builder()
        .config(&config)
        .on_connect(move |event| {
            if let ConnectEvent::Opening { .. } = event {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
        .start()
        .await
        .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    (hub, dials)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_calls_failing_at_once_cause_one_reconnect() {
    let mut server = testkit_stdio("kit", &[]);
    reconnect_fast(&mut server);
    let (hub, dials) = start_counting_dials(config_with(vec![server])).await;
    assert_eq!(dials.load(Ordering::SeqCst), 1);
    hub.call("kit__drop", None, None)
        .await
        .expect_err("the server died");

    // Twenty calls find the connection dead at the same moment: one reconnect serves all.
    let calls = (0..20).map(|i| {
        let hub = hub.clone();
        async move { text_in(&hub, None, "kit__echo", json!({"message": format!("m{i}")})).await }
    });
    let texts = join_all(calls).await;
    assert_eq!(texts.len(), 20);
    assert_eq!(
        dials.load(Ordering::SeqCst),
        2,
        "one reconnect, not one per call"
    );
    assert_eq!(
        counts(&hub).await["executions"]["echo"],
        20,
        "each call ran once"
    );

    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_during_an_outage_share_one_reconnect_cycle() {
    let port = free_port();
    let kit = TestkitProcess::start_on("streamable-http", port, &[]);
    let mut server = ServerConfig::url("kit", kit.url.clone());
    reconnect_fast(&mut server);
    let (hub, dials) = start_counting_dials(config_with(vec![server])).await;
    drop(kit);

    let calls = (0..20).map(|_| {
        let hub = hub.clone();
        async move {
            hub.call("kit__echo", args(json!({"message": "x"})), None)
                .await
        }
    });
    for result in join_all(calls).await {
        let err = result.expect_err("the server is down");
        assert_eq!(err.class(), ErrorClass::Unreachable, "{err}");
    }
    // The first connection, then one cycle of `max_attempts` (2) tries for all twenty.
    assert_eq!(dials.load(Ordering::SeqCst), 1 + 2);
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_streamable_http_session_is_reinitialized_transparently() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let (hub, dials) =
        start_counting_dials(config_with(vec![ServerConfig::url("kit", kit.url.clone())])).await;
    let first = text_in(&hub, None, "kit__session_info", json!({})).await;
    text_in(&hub, None, "kit__expire_session", json!({})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // The server now answers the old session id with 404; the call still succeeds.
    assert_eq!(
        text_in(&hub, None, "kit__echo", json!({"message": "still here"})).await,
        "still here"
    );
    let second = text_in(&hub, None, "kit__session_info", json!({})).await;
    assert_ne!(first, second, "the server-side session was not renewed");
    assert_eq!(
        dials.load(Ordering::SeqCst),
        1,
        "the transport re-initialized in place; the hub did not reconnect"
    );
    assert_eq!(counts(&hub).await["executions"]["echo"], 1, "sent once");
    hub.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_calls_of_a_new_session_share_one_connect() {
    let kit = TestkitProcess::start("streamable-http", &[]);
    let server = per_session(ServerConfig::url("kit", kit.url.clone()), 10);
    let (hub, dials) = start_counting_dials(config_with(vec![server])).await;
    let fresh = session("fresh");
    let ids = join_all((0..10).map(|_| server_session(&hub, &fresh))).await;
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    // The shared connection at start, then exactly one for the new session.
    assert_eq!(dials.load(Ordering::SeqCst), 2);
    assert_eq!(hub.session_count("kit"), 1);
    hub.close().await;
}
