//! [`Link`] and [`SessionPool`] over in-memory connections to a hand-written responder
//! (`test_responder.rs`): reconnects, what is sent again after a lost connection, backoff,
//! and the pool's sessions, eviction, reaping and per-session variables. The hub-level
//! tests in `tests/it/sessions.rs` run the same machinery against real servers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::test_responder::Responder;
use super::{Link, LinkState, SessionClose, SessionPool};
use crate::config::{ReconnectPolicy, ServerConfig};
use crate::error::{Delivery, Error};
use crate::sync::lock;
use crate::upstream::UpstreamEvent;

/// The bound on any one step; every step here normally takes milliseconds.
const STEP: Duration = Duration::from_secs(10);

fn server(max_sessions: usize) -> Arc<ServerConfig> {
    let mut server = ServerConfig::stdio("mem", "(in memory)", Vec::new());
    server.max_sessions = max_sessions;
    server.reconnect = ReconnectPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
    };
    Arc::new(server)
}

fn n(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::SeqCst)
}

/// Calls `tool` over `link`; the responder's answer (`connection`, `arguments`).
async fn call(link: &Link, tool: &str, repeatable: bool) -> Result<Value, Error> {
    let arguments = json!({"n": 1}).as_object().cloned();
    let deadline = Instant::now() + STEP;
    let outcome = link.call(tool, arguments, repeatable, deadline).await?;
    Ok(serde_json::from_str(&outcome.text()).expect("the responder answers JSON"))
}

/// The connection number `tool`'s answer came over.
async fn connection_of(link: &Link, tool: &str, repeatable: bool) -> u64 {
    let answer = call(link, tool, repeatable)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    answer["connection"].as_u64().expect("a connection number")
}

/// Whether `check` comes to hold within [`STEP`] (polled every 10 ms).
async fn until(check: impl Fn() -> bool) -> bool {
    let polling = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(STEP, polling).await.is_ok()
}

/// A link to a new responder, with no variables.
fn new_link() -> (Arc<Responder>, Link) {
    let responder = Responder::new();
    let link = Link::new(server(1), None, responder.dial());
    (responder, link)
}

/// A pool of at most `max_sessions` sessions on a new responder.
fn new_pool(max_sessions: usize) -> (Arc<Responder>, SessionPool) {
    let responder = Responder::new();
    let pool = SessionPool::new(server(max_sessions), responder.dial());
    (responder, pool)
}

fn variables(user: &str) -> Arc<BTreeMap<String, String>> {
    Arc::new(BTreeMap::from([("user".to_string(), user.to_string())]))
}

// ---------------------------------------------------------------------------------------------
// Link

#[tokio::test]
async fn a_link_reconnects_after_its_connection_closes_and_the_next_call_succeeds() {
    let (responder, link) = new_link();
    assert_eq!(link.status().state, LinkState::Idle);
    let mut events = link.subscribe();

    assert_eq!(connection_of(&link, "echo", false).await, 1);
    assert_eq!(link.status().state, LinkState::Ready);
    let (first, _) = link.upstream(Instant::now() + STEP).await.unwrap();

    responder.drop_connections();
    assert!(
        until(|| !first.is_alive()).await,
        "the client saw its connection end"
    );
    assert_eq!(connection_of(&link, "echo", false).await, 2);
    assert_eq!(n(&responder.connections), 2);
    // The call went out once, on the new connection: the dead one was never written to.
    assert_eq!(n(&responder.calls), 2);
    assert_eq!(link.status().state, LinkState::Ready);
    // The tools may differ on the new connection: subscribers hear about it.
    let event = tokio::time::timeout(STEP, events.recv()).await.unwrap();
    assert!(
        matches!(event, Ok(UpstreamEvent::ToolsChanged)),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_call_lost_after_it_was_read_is_not_sent_again_to_a_tool_that_may_not_repeat() {
    let (responder, link) = new_link();
    responder.hang_ups.store(1, Ordering::SeqCst);

    let error = call(&link, "hang_up", false).await.unwrap_err();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(error.to_string().contains("may have run"), "{error}");
    assert_eq!(n(&responder.calls), 1, "sent once, not again");
    assert_eq!(
        n(&responder.connections),
        1,
        "no reconnect for a call that failed"
    );
    let last = link
        .status()
        .last_error
        .expect("the failure is the link's last error");
    assert!(last.message.contains("connection lost"), "{}", last.message);

    // The link itself recovers: the next call opens a new connection.
    assert_eq!(connection_of(&link, "echo", false).await, 2);
}

#[tokio::test]
async fn a_call_lost_after_it_was_read_is_sent_again_to_a_repeatable_tool() {
    let (responder, link) = new_link();
    responder.hang_ups.store(1, Ordering::SeqCst);

    assert_eq!(connection_of(&link, "hang_up", true).await, 2);
    assert_eq!(
        n(&responder.calls),
        2,
        "read on the first connection, answered on the second"
    );
    assert_eq!(n(&responder.connections), 2);
}

#[tokio::test]
async fn a_failed_reconnect_cycle_backs_off_then_the_next_call_connects() {
    let (responder, link) = new_link();
    let attempts = link.server().reconnect.max_attempts as usize;
    responder.refusals.store(attempts, Ordering::SeqCst);

    let error = call(&link, "echo", false).await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    assert_eq!(error.delivery(), Delivery::NotSent);
    assert_eq!(
        n(&responder.attempts),
        attempts,
        "one cycle: max_attempts dials"
    );
    let LinkState::BackingOff { until: retry_at } = link.status().state else {
        panic!("backing off, not {:?}", link.status().state);
    };

    // While backing off, calls fail at once without dialling.
    let error = call(&link, "echo", false).await.unwrap_err();
    assert!(error.to_string().contains("next attempt in"), "{error}");
    assert_eq!(n(&responder.attempts), attempts);

    tokio::time::sleep_until(retry_at).await;
    assert_eq!(connection_of(&link, "echo", false).await, 1);
    assert_eq!(n(&responder.attempts), attempts + 1);
    assert_eq!(
        n(&responder.calls),
        1,
        "only the call that found a connection was sent"
    );
}

#[tokio::test]
async fn a_closed_link_refuses_calls() {
    let (responder, link) = new_link();
    connection_of(&link, "echo", false).await;
    link.close().await;
    assert!(
        until(|| n(&responder.open) == 0).await,
        "the connection was closed"
    );
    let error = call(&link, "echo", false).await.unwrap_err();
    assert!(matches!(error, Error::Closed { .. }), "{error}");
    assert_eq!(
        n(&responder.connections),
        1,
        "a closed link does not reconnect"
    );
}

// ---------------------------------------------------------------------------------------------
// SessionPool

#[tokio::test]
async fn the_pool_has_one_link_per_session_dialled_with_its_own_variables() {
    let (responder, pool) = new_pool(10);
    let a = pool.lease("a", &variables("alice"), None).unwrap();
    // An existing session keeps the variables it was created with.
    let a_again = pool.lease("a", &variables("mallory"), None).unwrap();
    let b = pool.lease("b", &variables("bob"), None).unwrap();
    assert!(std::ptr::eq(a.link(), a_again.link()));
    assert!(!std::ptr::eq(a.link(), b.link()));
    assert_eq!(pool.len(), 2);

    assert_eq!(connection_of(a.link(), "echo", false).await, 1);
    assert_eq!(connection_of(b.link(), "echo", false).await, 2);
    assert_eq!(connection_of(a_again.link(), "echo", false).await, 1);
    let dialled: Vec<Option<String>> = responder
        .variables
        .lock()
        .unwrap()
        .iter()
        .map(|vars| vars.as_ref().map(|vars| vars["user"].clone()))
        .collect();
    assert_eq!(dialled, [Some("alice".into()), Some("bob".into())]);
}

#[tokio::test]
async fn at_its_limit_the_pool_evicts_the_least_recently_used_idle_session() {
    let (responder, pool) = new_pool(2);
    for id in ["a", "b"] {
        let lease = pool.lease(id, &variables(id), None).unwrap();
        connection_of(lease.link(), "echo", false).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // `a` was used last now, so `b` is the least recently used.
    drop(pool.lease("a", &variables("a"), None).unwrap());

    let c = pool.lease("c", &variables("c"), None).unwrap();
    assert_eq!(pool.len(), 2);
    assert!(
        until(|| n(&responder.open) == 1).await,
        "b's connection was closed"
    );
    let a = pool.lease("a", &variables("a"), None).unwrap();
    assert_eq!(
        connection_of(a.link(), "echo", false).await,
        1,
        "a kept its connection"
    );

    // Every session leased: no room and nothing to evict.
    let error = pool
        .lease("d", &variables("d"), None)
        .err()
        .expect("the limit holds");
    assert!(
        matches!(error, Error::SessionLimit { limit: 2, .. }),
        "{error}"
    );
    drop(c);
}

#[tokio::test]
async fn cleanup_closes_sessions_idle_long_enough_and_spares_leased_ones() {
    let (responder, pool) = new_pool(10);
    let idle = pool.lease("idle", &variables("idle"), None).unwrap();
    let busy = pool.lease("busy", &variables("busy"), None).unwrap();
    connection_of(idle.link(), "echo", false).await;
    let busy_connection = connection_of(busy.link(), "echo", false).await;
    drop(idle);

    assert_eq!(
        pool.cleanup(Duration::from_secs(3600)).await,
        0,
        "not idle long enough"
    );
    assert_eq!(pool.cleanup(Duration::ZERO).await, 1);
    assert_eq!(pool.len(), 1);
    assert!(
        until(|| n(&responder.open) == 1).await,
        "the idle session's connection closed"
    );
    assert_eq!(
        connection_of(busy.link(), "echo", false).await,
        busy_connection
    );

    pool.close().await;
    assert!(
        until(|| n(&responder.open) == 0).await,
        "every connection closed"
    );
    let error = pool
        .lease("new", &variables("new"), None)
        .err()
        .expect("closed");
    assert!(matches!(error, Error::Closed { .. }), "{error}");
}

#[tokio::test]
async fn a_session_is_dialled_for_its_id_and_either_close_mode_takes_it_out() {
    let (responder, pool) = new_pool(10);
    for (id, mode) in [("a", SessionClose::Detach), ("b", SessionClose::End)] {
        let lease = pool.lease(id, &variables(id), None).unwrap();
        connection_of(lease.link(), "echo", false).await;
        drop(lease);
        assert!(pool.end(id, mode).await, "{id} was in the pool");
        assert!(!pool.end(id, mode).await, "{id} is out of it");
    }
    assert_eq!(
        *lock(&responder.sessions),
        [Some("a".to_string()), Some("b".to_string())]
    );
    assert!(
        until(|| n(&responder.open) == 0).await,
        "both connections closed (no shared store: detaching closes like ending)"
    );
    assert_eq!(pool.len(), 0);
}
