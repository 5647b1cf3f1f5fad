//! Two hubs (replicas) sharing classic upstream sessions through one Redis, against the
//! real stateful testkit over Streamable HTTP (mirrors the engine's
//! `tests/it/shared_sessions.rs`, which uses `MemorySharedSessions`): one upstream session
//! per downstream session; Redis killed mid-run leaves calls working (each hub on a
//! session of its own); Redis back, sharing resumes; replicas started before Redis serve,
//! and share once it is up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard::config::SessionMode;
use switchboard::{Config, Hub, ServerConfig, Session, SharedSessions};
use switchboard_redis::{RedisOptions, RedisSharedSessions};
use switchboard_testkit::{HttpMode, Knobs, RunningServer, serve_streamable_http};
use tokio::time::Instant;

use crate::contract::key;
use crate::redis_server::RedisServer;

const STEP: Duration = Duration::from_secs(30);

async fn upstream() -> RunningServer {
    serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .expect("start the stateful testkit")
}

/// A hub on `upstream` sharing classic upstream sessions through `store`.
async fn hub(upstream: &RunningServer, store: &Arc<RedisSharedSessions>) -> Hub {
    let mut server = ServerConfig::url("kit", upstream.url());
    server.session_mode = SessionMode::PerSession;
    let mut config = Config::default();
    config.servers.insert(server.name.clone(), server);
    let start = Hub::builder()
        .config(&config)
        .shared_sessions(store.clone())
        .start();
    let hub = tokio::time::timeout(STEP, start)
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    hub
}

fn session(id: &str) -> Session {
    Session::new(id, BTreeMap::from([("user".to_string(), id.to_string())]))
}

/// The upstream (server-side) session id `session`'s calls arrive on through `hub`.
async fn upstream_session(hub: &Hub, session: &Session) -> String {
    let call = hub.call_in(Some(session), "kit__session_info", None, None);
    let outcome = tokio::time::timeout(STEP, call)
        .await
        .expect("call within the step bound")
        .unwrap_or_else(|e| panic!("session_info: {e} [{}]", e.class()));
    assert!(!outcome.is_error, "session_info: {}", outcome.text());
    let info: Value = serde_json::from_str(&outcome.text()).expect("session_info JSON");
    info["session"].as_str().expect("a session id").to_string()
}

fn sealed_store(redis: &RedisServer) -> Arc<RedisSharedSessions> {
    let options = RedisOptions {
        binding_key: Some(b"binding".to_vec()),
        store_key: Some([3; 32]),
        ..RedisOptions::default()
    };
    Arc::new(RedisSharedSessions::new(&redis.url(), options).expect("a store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_one_upstream_session_per_downstream_session() {
    let redis = RedisServer::start();
    let upstream = upstream().await;
    // Each hub its own connection to Redis, as replicas have.
    let (store_a, store_b) = (sealed_store(&redis), sealed_store(&redis));
    let (a, b) = (
        hub(&upstream, &store_a).await,
        hub(&upstream, &store_b).await,
    );
    let alice = session("mcp-alice");

    let on_a = upstream_session(&a, &alice).await;
    let on_b = upstream_session(&b, &alice).await;
    assert_eq!(on_a, on_b, "the second hub attaches to the first's session");
    assert_eq!(upstream_session(&a, &alice).await, on_a);
    assert_eq!(upstream_session(&b, &alice).await, on_a);

    let bob = session("mcp-bob");
    let bob_on_b = upstream_session(&b, &bob).await;
    assert_ne!(bob_on_b, on_a);
    assert_eq!(upstream_session(&a, &bob).await, bob_on_b);
    let record = store_a.get(&key("mcp-bob")).await.expect("Redis answers");
    assert_eq!(record.expect("bob's record").session_id, bob_on_b);

    // The downstream session ends on B: the record goes with it.
    assert_eq!(b.end_session(&alice.id).await, 1);
    let gone = store_a.get(&key("mcp-alice")).await.expect("Redis answers");
    assert!(gone.is_none(), "the record goes with the session");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_leaves_calls_working_and_sharing_resumes_when_it_is_back() {
    let redis = RedisServer::start();
    let port = redis.port;
    let upstream = upstream().await;
    let (store_a, store_b) = (sealed_store(&redis), sealed_store(&redis));
    let (a, b) = (
        hub(&upstream, &store_a).await,
        hub(&upstream, &store_b).await,
    );
    let alice = session("mcp-alice");
    let shared = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, shared);

    drop(redis);
    // Sessions the hubs hold need no Redis.
    assert_eq!(upstream_session(&a, &alice).await, shared);
    assert_eq!(upstream_session(&b, &alice).await, shared);
    // A new downstream session works on each hub, on an upstream session of its own.
    let bob = session("mcp-bob");
    let bob_on_a = upstream_session(&a, &bob).await;
    let bob_on_b = upstream_session(&b, &bob).await;
    assert_ne!(bob_on_a, bob_on_b, "nothing can be shared without Redis");
    assert_eq!(upstream_session(&a, &bob).await, bob_on_a);
    assert!(store_a.get(&key("mcp-bob")).await.is_err(), "Redis is down");

    // Redis back (empty: no persistence) on the same port; once each hub's connection
    // answers again, new sessions are shared again.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + STEP;
    for store in [&store_a, &store_b] {
        while store.get(&key("probe")).await.is_err() {
            assert!(Instant::now() < deadline, "the store never reconnected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let carol = session("mcp-carol");
    let carol_on_a = upstream_session(&a, &carol).await;
    assert_eq!(upstream_session(&b, &carol).await, carol_on_a);
    // And the sessions opened while Redis was down keep working.
    assert_eq!(upstream_session(&a, &bob).await, bob_on_a);
    assert_eq!(upstream_session(&b, &bob).await, bob_on_b);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_start_and_serve_before_redis_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let store = || Arc::new(RedisSharedSessions::new(&url, RedisOptions::default()).unwrap());
    let upstream = upstream().await;
    // Nothing listens yet: the stores are made and the hubs start and answer.
    let (store_a, store_b) = (store(), store());
    let (a, b) = (
        hub(&upstream, &store_a).await,
        hub(&upstream, &store_b).await,
    );
    let alice = session("mcp-alice");
    assert_ne!(
        upstream_session(&a, &alice).await,
        upstream_session(&b, &alice).await
    );

    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + STEP;
    for store in [&store_a, &store_b] {
        while store.get(&key("probe")).await.is_err() {
            assert!(Instant::now() < deadline, "the store never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let bob = session("mcp-bob");
    let bob_on_a = upstream_session(&a, &bob).await;
    assert_eq!(upstream_session(&b, &bob).await, bob_on_a);
    a.close().await;
    b.close().await;
}
