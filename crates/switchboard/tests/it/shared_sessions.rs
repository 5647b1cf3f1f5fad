//! Classic upstream sessions shared between hubs (replicas) through one
//! [`MemorySharedSessions`], against the real stateful testkit over Streamable HTTP: the same
//! downstream session on two hubs (or three at once) uses ONE upstream session (the testkit's `session_info`
//! names the server-side `Mcp-Session-Id` each call arrived on), with calls at once from
//! every hub answered (request ids kept distinct); an upstream session that
//! expires, or an upstream restarted, is re-initialized once for both; detaching leaves the upstream session to the
//! other hub (no `DELETE`), ending it deletes it upstream; a store that is down leaves every
//! hub working on a session of its own.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestkitProcess, free_port};
use futures::future::BoxFuture;
use serde_json::Value;
use switchboard::config::SessionMode;
use switchboard::{
    Config, ErrorClass, Hub, MemorySharedSessions, ServerConfig, Session, SessionClose,
    SharedSessions, SharedSessionsError, UpstreamKey, UpstreamRecord,
};
use switchboard_testkit::{HttpMode, Knobs, RunningServer, serve_streamable_http};
use tokio::time::Instant;

const STEP: Duration = Duration::from_secs(30);

async fn upstream() -> RunningServer {
    serve_streamable_http(Knobs::default(), HttpMode::Stateful)
        .await
        .expect("start the stateful testkit")
}

fn config(upstream: &RunningServer) -> Config {
    let mut server = ServerConfig::url("kit", upstream.url());
    server.session_mode = SessionMode::PerSession;
    let mut config = Config::default();
    config.servers.insert(server.name.clone(), server);
    config
}

/// A hub on `upstream`, sharing classic upstream sessions through `store` if given.
async fn hub(upstream: &RunningServer, store: Option<&Arc<MemorySharedSessions>>) -> Hub {
    let config = config(upstream);
    let mut builder = Hub::builder().config(&config);
    if let Some(store) = store {
        builder = builder.shared_sessions(store.clone());
    }
    let hub = tokio::time::timeout(STEP, builder.start())
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    hub
}

/// Three hubs on `upstream` sharing `store`.
async fn three_hubs(upstream: &RunningServer, store: &Arc<MemorySharedSessions>) -> [Hub; 3] {
    let (a, b) = two_hubs(upstream, store).await;
    [a, b, hub(upstream, Some(store)).await]
}

/// Two hubs on `upstream` sharing `store`.
async fn two_hubs(upstream: &RunningServer, store: &Arc<MemorySharedSessions>) -> (Hub, Hub) {
    (
        hub(upstream, Some(store)).await,
        hub(upstream, Some(store)).await,
    )
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_share_one_upstream_session_per_downstream_session() {
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let (a, b) = two_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");

    let on_a = upstream_session(&a, &alice).await;
    let on_b = upstream_session(&b, &alice).await;
    assert_eq!(on_a, on_b, "the second hub attaches to the first's session");
    // Again, both ways: still the one session.
    assert_eq!(upstream_session(&a, &alice).await, on_a);
    assert_eq!(upstream_session(&b, &alice).await, on_a);

    // Another downstream session gets its own upstream session, shared as well.
    let bob = session("mcp-bob");
    let bob_on_b = upstream_session(&b, &bob).await;
    assert_ne!(bob_on_b, on_a);
    assert_eq!(upstream_session(&a, &bob).await, bob_on_b);
    assert_eq!(store.len(), 2, "one record per (session, server)");

    // A hub without the store opens its own upstream session, as before.
    let alone = hub(&upstream, None).await;
    assert_ne!(upstream_session(&alone, &alice).await, on_a);
    for hub in [a, b, alone] {
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_calls_at_once_on_three_hubs_open_one_upstream_session() {
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let hubs = three_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    // One claims and initializes; the others wait for its record and attach.
    let ids = futures::future::join_all(hubs.iter().map(|h| upstream_session(h, &alice))).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    // Calls at once from every hub on the one session: each hub numbers its requests from
    // the same start, so the ids must be made distinct or the server loses answers.
    for _ in 0..5 {
        let again =
            futures::future::join_all(hubs.iter().map(|h| upstream_session(h, &alice))).await;
        assert!(again.iter().all(|id| *id == ids[0]), "{again:?}");
    }
    for hub in hubs {
        hub.close().await;
    }
}

/// Has the upstream forget `session`'s upstream session `first` (as after a restart; its
/// next request gets 404, 100 ms after the answer) and waits until `hub`, calling again,
/// has re-initialized in place: the new id.
async fn expire_and_reinitialize(hub: &Hub, session: &Session, first: &str) -> String {
    let expire = hub.call_in(Some(session), "kit__expire_session", None, None);
    let outcome = tokio::time::timeout(STEP, expire).await.expect("bounded");
    assert!(!outcome.expect("expire_session").is_error);
    let deadline = Instant::now() + STEP;
    loop {
        let now = upstream_session(hub, session).await;
        if now != first {
            return now;
        }
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_session_gone_is_reinitialized_once_for_every_hub() {
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let (a, b) = two_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    let first = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, first);

    // The upstream forgets the session (as after a restart): A finds out on a later call
    // and re-initializes in place; the call succeeds.
    let second = expire_and_reinitialize(&a, &alice, &first).await;
    // Hub B's request on the old session gets 404 too; it finds A's new session in the
    // store and attaches to it: one re-initialize, not one per hub.
    assert_eq!(upstream_session(&b, &alice).await, second);
    assert_eq!(upstream_session(&a, &alice).await, second);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detaching_keeps_the_upstream_session_and_ending_deletes_it() {
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let (a, b) = two_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    let shared = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, shared);

    // A detaches (idle, evicted, shutting down): no DELETE, so B's session lives on.
    assert_eq!(a.close_session(&alice.id, SessionClose::Detach).await, 1);
    assert_eq!(upstream_session(&b, &alice).await, shared);
    // A's next call attaches again, to the same session.
    assert_eq!(upstream_session(&a, &alice).await, shared);
    // A hub that shuts down only detaches too.
    a.close().await;
    assert_eq!(upstream_session(&b, &alice).await, shared);
    assert_eq!(store.len(), 1);

    // The downstream session ends on B: the upstream session is deleted and forgotten.
    assert_eq!(b.end_session(&alice.id).await, 1);
    assert!(store.is_empty(), "the record goes with the session");
    let c = hub(&upstream, Some(&store)).await;
    // The same session id again is a new session upstream (the old one was deleted: a
    // request on it would be 404, see the test above).
    let again = upstream_session(&c, &alice).await;
    assert_ne!(again, shared);
    let stale = upstream_session(&b, &alice).await;
    assert_eq!(stale, again, "B attaches to the new session");
    b.close().await;
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_deleted_upstream() {
    // Without attaching back: the old id answers 404 at the server after `End`.
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let (a, b) = two_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    let shared = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, shared);
    assert_eq!(a.end_session(&alice.id).await, 1);
    // B still holds the deleted id: its next call gets 404, finds no record and opens a
    // new session (the call itself succeeds).
    let after = upstream_session(&b, &alice).await;
    assert_ne!(after, shared, "the ended session was deleted upstream");
    b.close().await;
    a.close().await;
}

/// The testkit's count of upstream sessions DELETEd, asked through `counter`.
async fn deleted_upstream(counter: &Hub) -> u64 {
    let asking = session("mcp-counter");
    let call = counter.call_in(Some(&asking), "kit__counts", None, None);
    let outcome = tokio::time::timeout(STEP, call)
        .await
        .expect("bounded")
        .expect("counts");
    let counts: Value = serde_json::from_str(&outcome.text()).expect("counts JSON");
    counts["sessions_deleted"].as_object().map_or(0, |by_user| {
        by_user.values().filter_map(Value::as_u64).sum()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_on_every_hub_is_deleted_upstream_once() {
    // The gateway ends a downstream session on every replica holding it (the one its
    // client's DELETE reached, the others told so): one DELETE reaches the upstream.
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let hubs = three_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    let shared = upstream_session(&hubs[0], &alice).await;
    for hub in &hubs[1..] {
        assert_eq!(upstream_session(hub, &alice).await, shared);
    }
    let counter = hub(&upstream, None).await;
    let before = deleted_upstream(&counter).await;
    let ended = futures::future::join_all(hubs.iter().map(|h| h.end_session(&alice.id))).await;
    assert_eq!(ended, [1, 1, 1]);
    assert_eq!(deleted_upstream(&counter).await, before + 1, "one DELETE");
    assert!(store.is_empty(), "the record goes with the session");
    for hub in hubs {
        hub.close().await;
    }
    counter.close().await;
}

/// The upstream session `session`'s calls arrive on through `hub`, once the upstream is
/// reachable again (connection errors while it restarts are retried; nothing else is).
async fn upstream_session_after_restart(hub: &Hub, session: &Session) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let call = hub.call_in(Some(session), "kit__session_info", None, None);
        match tokio::time::timeout(STEP, call).await.expect("bounded") {
            Ok(outcome) => {
                assert!(!outcome.is_error, "session_info: {}", outcome.text());
                let info: Value = serde_json::from_str(&outcome.text()).expect("JSON");
                return info["session"].as_str().expect("a session id").to_string();
            }
            Err(error) => {
                assert_eq!(error.class(), ErrorClass::Unreachable, "{error}");
                assert!(Instant::now() < deadline, "never recovered: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_restarted_gets_one_new_session_for_both_hubs() {
    let port = free_port();
    let kit = TestkitProcess::start_on("streamable-http", port, &[]);
    let mut server = ServerConfig::url("kit", kit.url.clone());
    server.session_mode = SessionMode::PerSession;
    server.reconnect.initial_backoff = Duration::from_millis(20);
    server.reconnect.max_backoff = Duration::from_millis(100);
    let mut config = Config::default();
    config.servers.insert(server.name.clone(), server);
    let store = Arc::new(MemorySharedSessions::new());
    let start = || {
        Hub::builder()
            .config(&config)
            .shared_sessions(store.clone())
            .start()
    };
    let a = tokio::time::timeout(STEP, start())
        .await
        .expect("bounded")
        .expect("hub a");
    let b = tokio::time::timeout(STEP, start())
        .await
        .expect("bounded")
        .expect("hub b");
    let alice = session("mcp-alice");
    let before = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, before);

    // A new process on the same port knows none of the old sessions.
    drop(kit);
    let _kit = TestkitProcess::start_on("streamable-http", port, &[]);
    let after = upstream_session_after_restart(&a, &alice).await;
    assert_ne!(after, before);
    // B finds the session gone too, and attaches to A's new one.
    assert_eq!(upstream_session_after_restart(&b, &alice).await, after);
    assert_eq!(upstream_session(&a, &alice).await, after);
    let record = store
        .get(&UpstreamKey {
            session: alice.id.clone(),
            server: "kit".into(),
        })
        .await
        .expect("the store answers")
        .expect("a record");
    assert_eq!(record.generation, 2, "one re-initialize after the first");
    a.close().await;
    b.close().await;
}

/// A store that is down: every operation fails.
struct DownStore;

impl SharedSessions for DownStore {
    fn get<'a>(
        &'a self,
        _: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<Option<UpstreamRecord>, SharedSessionsError>> {
        Box::pin(async { Err(down()) })
    }
    fn publish_if<'a>(
        &'a self,
        _: &'a UpstreamKey,
        _: Option<u64>,
        _: UpstreamRecord,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        Box::pin(async { Err(down()) })
    }
    fn claim<'a>(
        &'a self,
        _: &'a UpstreamKey,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        Box::pin(async { Err(down()) })
    }
    fn release<'a>(
        &'a self,
        _: &'a UpstreamKey,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        Box::pin(async { Err(down()) })
    }
    fn forget<'a>(&'a self, _: &'a UpstreamKey) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        Box::pin(async { Err(down()) })
    }
}

fn down() -> SharedSessionsError {
    SharedSessionsError {
        reason: "connection refused".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_leaves_each_hub_its_own_working_session() {
    let upstream = upstream().await;
    let config = config(&upstream);
    let start = || {
        Hub::builder()
            .config(&config)
            .shared_sessions(Arc::new(DownStore))
            .start()
    };
    let a = tokio::time::timeout(STEP, start())
        .await
        .expect("bounded")
        .expect("hub a");
    let b = tokio::time::timeout(STEP, start())
        .await
        .expect("bounded")
        .expect("hub b");
    let alice = session("mcp-alice");
    // Calls work; nothing can be shared, so each hub opens its own upstream session.
    let on_a = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&a, &alice).await, on_a);
    assert_ne!(upstream_session(&b, &alice).await, on_a);
    // An unshared session is closed like any other (nobody else knows it).
    assert_eq!(a.close_session(&alice.id, SessionClose::Detach).await, 1);
    assert_ne!(upstream_session(&a, &alice).await, on_a);
    a.close().await;
    b.close().await;
}

/// The shared store as a slow replica sees it: every read is taken at once and answered
/// `late` after (another replica can publish and release its claim meanwhile).
struct LateReads {
    store: Arc<MemorySharedSessions>,
    late: Duration,
}

impl SharedSessions for LateReads {
    fn get<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<Option<UpstreamRecord>, SharedSessionsError>> {
        let read = self.store.get(key);
        Box::pin(async move {
            let found = read.await;
            tokio::time::sleep(self.late).await;
            found
        })
    }
    fn publish_if<'a>(
        &'a self,
        key: &'a UpstreamKey,
        expected: Option<u64>,
        record: UpstreamRecord,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        self.store.publish_if(key, expected, record)
    }
    fn claim<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, SharedSessionsError>> {
        self.store.claim(key, owner, ttl)
    }
    fn release<'a>(
        &'a self,
        key: &'a UpstreamKey,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        self.store.release(key, owner)
    }
    fn forget<'a>(
        &'a self,
        key: &'a UpstreamKey,
    ) -> BoxFuture<'a, Result<(), SharedSessionsError>> {
        self.store.forget(key)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_read_before_another_published_attaches_to_its_session() {
    // B reads "no record", then A claims, opens, publishes and releases its claim before B's
    // answer arrives; B's claim then succeeds. B must read again under its claim and attach,
    // not open a second upstream session.
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let a = hub(&upstream, Some(&store)).await;
    let late = LateReads {
        store: store.clone(),
        late: Duration::from_millis(800),
    };
    let b = tokio::time::timeout(
        STEP,
        Hub::builder()
            .config(&config(&upstream))
            .shared_sessions(Arc::new(late))
            .start(),
    )
    .await
    .expect("bounded")
    .expect("hub b");
    let alice = session("mcp-alice");
    let on_b = upstream_session(&b, &alice);
    let on_a = async {
        // After B's first read went out.
        tokio::time::sleep(Duration::from_millis(100)).await;
        upstream_session(&a, &alice).await
    };
    let (on_a, on_b) = tokio::join!(on_a, on_b);
    assert_eq!(on_a, on_b, "B attached to the session A published");
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubs_on_different_upstream_sessions_each_end_their_own() {
    // A re-initialized after the upstream forgot the session; B has not called since, so
    // it is still on the old id. The session ends on B first, then on A: the new upstream
    // session must be DELETEd (B's DELETE of the old id does not stand for it).
    let upstream = upstream().await;
    let store = Arc::new(MemorySharedSessions::new());
    let (a, b) = two_hubs(&upstream, &store).await;
    let alice = session("mcp-alice");
    let first = upstream_session(&a, &alice).await;
    assert_eq!(upstream_session(&b, &alice).await, first);
    expire_and_reinitialize(&a, &alice, &first).await;
    let live = upstream.server().http_session_count().await;
    assert_eq!(b.end_session(&alice.id).await, 1);
    assert_eq!(a.end_session(&alice.id).await, 1);
    let deadline = Instant::now() + STEP;
    while upstream.server().http_session_count().await != live - 1 {
        assert!(
            Instant::now() < deadline,
            "A's upstream session was not DELETEd"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await;
    b.close().await;
}
