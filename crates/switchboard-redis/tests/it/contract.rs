//! The `SharedSessions` contract (as `MemorySharedSessions` keeps it) over Redis: records
//! change only by compare-and-set on their generation, one claim at a time owned by a
//! nonce until released or expired, forget, sliding expiry; sealed records unreadable in
//! Redis and unopenable under another key; errors without the URL's user info; the
//! breaker opening when Redis is down.

use std::time::Duration;

use switchboard::{SharedSessions, UpstreamKey, UpstreamRecord};
use switchboard_redis::{Announcement, RedisOptions, RedisSharedSessions};

use crate::redis_server::RedisServer;

pub fn key(session: &str) -> UpstreamKey {
    UpstreamKey {
        session: session.into(),
        server: "kit".into(),
    }
}

fn record(id: &str, generation: u64) -> UpstreamRecord {
    UpstreamRecord {
        session_id: id.into(),
        url: "http://127.0.0.1:1/mcp".into(),
        initialize: serde_json::json!({"jsonrpc": "2.0", "id": 0, "result": {}}),
        generation,
    }
}

fn sealed() -> RedisOptions {
    RedisOptions {
        binding_key: Some(b"binding".to_vec()),
        store_key: Some([9; 32]),
        ..RedisOptions::default()
    }
}

/// Every key and value in the Redis at `url`, as text.
pub async fn dump(url: &str) -> String {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    let mut out = String::new();
    for name in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&name)
            .query_async(&mut connection)
            .await
            .unwrap();
        let mut command = redis::cmd(if kind == "hash" { "HGETALL" } else { "MGET" });
        command.arg(&name);
        let value: Vec<Vec<u8>> = command.query_async(&mut connection).await.unwrap();
        out.push_str(&name);
        for v in value {
            out.push(' ');
            out.push_str(&String::from_utf8_lossy(&v));
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn records_change_only_from_the_generation_expected() {
    let redis = RedisServer::start();
    let store = RedisSharedSessions::new(&redis.url(), RedisOptions::default()).unwrap();
    let key = key("mcp-1");
    assert!(store.get(&key).await.unwrap().is_none());
    assert!(store.publish_if(&key, None, record("a", 1)).await.unwrap());
    // A replica that read nothing (or an older generation) loses.
    assert!(!store.publish_if(&key, None, record("b", 1)).await.unwrap());
    let stale = store.publish_if(&key, Some(2), record("b", 3)).await;
    assert!(!stale.unwrap());
    let next = store.publish_if(&key, Some(1), record("c", 2)).await;
    assert!(next.unwrap());
    let now = store.get(&key).await.unwrap().expect("a record");
    assert_eq!(now, record("c", 2));
    // Another server of the same session is another record.
    let other = UpstreamKey {
        server: "other".into(),
        ..key.clone()
    };
    assert!(store.get(&other).await.unwrap().is_none());
    assert!(
        store
            .publish_if(&other, None, record("d", 1))
            .await
            .unwrap()
    );
    store.forget(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    assert_eq!(store.get(&other).await.unwrap(), Some(record("d", 1)));
    // Forgotten: the next session starts from no record again.
    assert!(store.publish_if(&key, None, record("e", 3)).await.unwrap());
}

#[tokio::test]
async fn one_claim_at_a_time_until_released_or_expired() {
    let redis = RedisServer::start();
    let store = RedisSharedSessions::new(&redis.url(), RedisOptions::default()).unwrap();
    let key = key("mcp-1");
    let long = Duration::from_secs(60);
    assert!(store.claim(&key, "a", long).await.unwrap());
    assert!(!store.claim(&key, "b", long).await.unwrap());
    assert!(
        store.claim(&key, "a", long).await.unwrap(),
        "the owner again"
    );
    store.release(&key, "b").await.unwrap(); // not b's: stays
    assert!(!store.claim(&key, "b", long).await.unwrap());
    store.release(&key, "a").await.unwrap();
    assert!(
        store
            .claim(&key, "b", Duration::from_millis(50))
            .await
            .unwrap()
    );
    // An expired claim is free (bounded wait: Redis expires it within its TTL + a tick).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !store.claim(&key, "c", long).await.unwrap() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the claim never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A zero TTL is taken (as the shortest one).
    assert!(
        store
            .claim(&self::key("mcp-2"), "z", Duration::ZERO)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn records_expire_when_idle() {
    let redis = RedisServer::start();
    let options = RedisOptions {
        idle_ttl: Duration::from_millis(200),
        ..RedisOptions::default()
    };
    let store = RedisSharedSessions::new(&redis.url(), options).unwrap();
    let key = key("mcp-1");
    assert!(store.publish_if(&key, None, record("a", 1)).await.unwrap());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.get(&key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the record never expired"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn sealed_records_show_nothing_in_redis_and_open_only_with_their_key() {
    let redis = RedisServer::start();
    let store = RedisSharedSessions::new(&redis.url(), sealed()).unwrap();
    let key = key("mcp-alice");
    let secret = record("upstream-secret-id", 1);
    assert!(store.publish_if(&key, None, secret.clone()).await.unwrap());
    assert!(
        store
            .claim(&key, "nonce", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let seen = dump(&redis.url()).await;
    for hidden in ["upstream-secret-id", "mcp-alice", "127.0.0.1:1"] {
        assert!(!seen.contains(hidden), "{hidden} in Redis:\n{seen}");
    }
    assert_eq!(store.get(&key).await.unwrap(), Some(secret));

    // Another store key cannot open it: the record reads as absent.
    let other = RedisOptions {
        store_key: Some([1; 32]),
        ..sealed()
    };
    let stranger = RedisSharedSessions::new(&redis.url(), other).unwrap();
    assert!(stranger.get(&key).await.unwrap().is_none());
}

#[tokio::test]
async fn a_redis_that_is_down_is_an_error_without_user_info() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis://admin:hunter2@127.0.0.1:{port}/");
    // Constructing needs no Redis.
    let store = RedisSharedSessions::new(&url, RedisOptions::default()).unwrap();
    let error = store.get(&key("mcp-1")).await.expect_err("nothing listens");
    let text = format!("{error} {error:?} {store:?}");
    assert!(
        !text.contains("hunter2") && !text.contains("admin"),
        "{text}"
    );
    // Failing again and again opens the breaker: operations stop trying Redis a while.
    let mut tries = 1;
    loop {
        let claim = store
            .claim(&key("mcp-1"), "a", Duration::from_secs(1))
            .await;
        if claim.expect_err("down").reason.contains("not tried again") {
            break;
        }
        tries += 1;
        assert!(tries <= 3, "the breaker never opened");
    }
    let bad = RedisSharedSessions::new("redis://admin:hunter2@[::1", RedisOptions::default());
    let text = format!("{}", bad.expect_err("not a URL"));
    assert!(!text.contains("hunter2"), "{text}");
}

/// Session records (a.4): written, read (sealed, nothing readable in Redis), shared with the
/// upstream records' hash, and deleted with an announcement every store hears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_records_round_trip_sealed_and_their_end_is_announced() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use switchboard_redis::SessionRecord;

    let redis = RedisServer::start();
    let a = Arc::new(RedisSharedSessions::new(&redis.url(), sealed()).unwrap());
    let b = Arc::new(RedisSharedSessions::new(&redis.url(), sealed()).unwrap());
    let (records_a, records_b) = (a.session_store(), b.session_store());
    let mut ended_on_b = b.ended_sessions();
    let session = SessionRecord {
        init: serde_json::json!({"protocolVersion": "2025-11-25", "clientInfo": {"name": "c"}}),
        binding: vec![7; 16],
        variables: Some(BTreeMap::from([("user".into(), "alice-secret".into())])),
    };
    assert_eq!(records_b.load("mcp-s1").await.unwrap(), None);
    records_a.save("mcp-s1", &session).await.unwrap();
    assert!(
        a.publish_if(&key("mcp-s1"), None, record("u1", 1))
            .await
            .unwrap()
    );
    assert_eq!(
        records_b.load("mcp-s1").await.unwrap().as_ref(),
        Some(&session)
    );
    records_b.touch("mcp-s1").await.unwrap();
    let shown = dump(&redis.url()).await;
    assert!(
        !shown.contains("alice-secret") && !shown.contains("clientInfo"),
        "{shown}"
    );
    assert!(!shown.contains("mcp-s1"), "{shown}");
    // Wait until B's subscription is in place (made in the background at start).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        records_a.delete("mcp-s0").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), ended_on_b.next()).await {
            Ok(Some(_)) => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "B never subscribed"),
        }
    }
    records_a.delete("mcp-s1").await.unwrap();
    let announced = tokio::time::timeout(Duration::from_secs(10), ended_on_b.next()).await;
    assert_eq!(
        announced.unwrap(),
        Some(Announcement::Ended(b.session_key("mcp-s1")))
    );
    assert_eq!(records_b.load("mcp-s1").await.unwrap(), None);
    assert_eq!(
        b.get(&key("mcp-s1")).await.unwrap(),
        None,
        "the upstream record went too"
    );
}

#[tokio::test]
async fn a_replica_disconnected_from_redis_is_told_it_may_have_missed_announcements() {
    let redis = RedisServer::start();
    let a = std::sync::Arc::new(RedisSharedSessions::new(&redis.url(), sealed()).unwrap());
    let b = std::sync::Arc::new(RedisSharedSessions::new(&redis.url(), sealed()).unwrap());
    let records_a = a.session_store();
    let mut ended_on_b = b.ended_sessions();
    // B subscribed (in the background at start) once it hears an announcement.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        records_a.delete("mcp-s0").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), ended_on_b.next()).await {
            Ok(Some(_)) => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "B never subscribed"),
        }
    }
    while tokio::time::timeout(Duration::from_millis(100), ended_on_b.next())
        .await
        .is_ok()
    {}
    // Redis drops every client: B subscribes again and says what it cannot know.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut killer = client.get_multiplexed_async_connection().await.unwrap();
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut killer)
        .await
        .unwrap_or(redis::Value::Nil);
    let heard = tokio::time::timeout(Duration::from_secs(10), ended_on_b.next()).await;
    assert_eq!(heard.expect("within 10 s"), Some(Announcement::Missed));
}
