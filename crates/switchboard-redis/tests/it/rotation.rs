//! Key rotation (docs/scale-out-design.md a.3, `keys.rs`): key names are HMACs under the
//! primary key, so making K2 primary renames everything. Values written under K1-primary
//! are found by a K2-primary ring (K2, K1) and moved to K2's names; `rekey` moves what no
//! one read; afterwards nothing is under a K1 name and a ring of K2 alone reads it all.
//! Claims and renewal locks exclude each other across replicas whose primaries differ.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use switchboard::auth::{Registration, RegistrationKey, TokenKey, TokenRecord, TokenStore};
use switchboard::{SharedSessions, UpstreamRecord};
use switchboard_redis::{
    Announcement, RedisOptions, RedisSharedSessions, RedisTokenStore, SessionRecord,
};

use crate::contract::key;
use crate::redis_server::RedisServer;

/// A keyring key's (k_bind, k_store).
type Key = ([u8; 32], [u8; 32]);

const K1: Key = ([1; 32], [11; 32]);
const K2: Key = ([2; 32], [22; 32]);

/// A replica's options for the ring `ring` (kid, key), primary first.
fn ring(ring: &[(char, Key)]) -> RedisOptions {
    let (kid, (bind, store)) = ring[0];
    RedisOptions {
        binding_key: Some(bind.to_vec()),
        older_binding_keys: ring[1..].iter().map(|(_, (b, _))| b.to_vec()).collect(),
        store_key: Some(store),
        store_key_id: kid,
        secondary_store_keys: ring[1..].iter().map(|(id, (_, s))| (*id, *s)).collect(),
        ..RedisOptions::default()
    }
}

struct Replica {
    shared: Arc<RedisSharedSessions>,
    tokens: RedisTokenStore,
}

fn replica(redis: &RedisServer, options: RedisOptions) -> Replica {
    Replica {
        shared: Arc::new(RedisSharedSessions::new(&redis.url(), options.clone()).unwrap()),
        tokens: RedisTokenStore::new(&redis.url(), options).unwrap(),
    }
}

fn session(user: &str) -> SessionRecord {
    SessionRecord {
        init: serde_json::json!({"protocolVersion": "2025-11-25", "clientInfo": {"name": user}}),
        binding: vec![7; 16],
        variables: Some(BTreeMap::from([("user".into(), user.into())])),
    }
}

fn upstream(id: &str) -> UpstreamRecord {
    UpstreamRecord {
        session_id: id.into(),
        url: "http://127.0.0.1:1/mcp".into(),
        initialize: serde_json::json!({"jsonrpc": "2.0", "id": 0, "result": {}}),
        generation: 1,
    }
}

fn token_key(principal: &str) -> TokenKey {
    TokenKey {
        server: "api".into(),
        url: "http://tenant.example/mcp".into(),
        principal: principal.into(),
    }
}

fn registration_key(issuer: &str) -> RegistrationKey {
    RegistrationKey {
        issuer: issuer.into(),
        redirect_port: Some(8123),
    }
}

async fn names(redis: &RedisServer) -> BTreeSet<String> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    keys.into_iter().collect()
}

/// Everything alice's and bob's sessions and sign-ins left in Redis, written by `k1`.
async fn write_all(k1: &Replica) {
    let records = k1.shared.session_store();
    for user in ["alice", "bob"] {
        let id = format!("mcp-{user}");
        records.save(&id, &session(user)).await.unwrap();
        assert!(
            (k1.shared)
                .publish_if(&key(&id), None, upstream(&format!("up-{user}")))
                .await
                .unwrap()
        );
        let token = TokenRecord::new(format!("{user}-token"), None);
        k1.tokens.save(&token_key(user), &token).await.unwrap();
        let client = Registration::new(format!("client-{user}"), "http://127.0.0.1:8123/cb");
        let issuer = format!("http://{user}-issuer.example");
        (k1.tokens)
            .save_registration(&registration_key(&issuer), &client)
            .await
            .unwrap();
    }
}

/// Reads (and checks) what `write_all` wrote for `user` through `replica`.
async fn read_all(replica: &Replica, user: &str) {
    let id = format!("mcp-{user}");
    let records = replica.shared.session_store();
    assert_eq!(
        records.load(&id).await.unwrap(),
        Some(session(user)),
        "{user}"
    );
    let record = replica.shared.get(&key(&id)).await.unwrap();
    assert_eq!(
        record.map(|r| r.session_id),
        Some(format!("up-{user}")),
        "{user}"
    );
    let token = replica.tokens.load(&token_key(user)).await.unwrap();
    assert_eq!(
        token.map(|t| t.access_token),
        Some(format!("{user}-token")),
        "{user}"
    );
    let issuer = format!("http://{user}-issuer.example");
    let client = (replica.tokens)
        .load_registration(&registration_key(&issuer))
        .await
        .unwrap();
    assert_eq!(
        client.map(|c| c.client_id),
        Some(format!("client-{user}")),
        "{user}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_primary_key_finds_and_moves_everything_and_rekey_leaves_nothing_under_the_old() {
    let redis = RedisServer::start();
    write_all(&replica(&redis, ring(&[('1', K1)]))).await;
    let under_k1 = names(&redis).await;
    assert_eq!(
        under_k1.len(),
        6,
        "2 × (session hash, token, registration): {under_k1:?}"
    );

    // Step 2: K2 primary, K1 still in the ring. Alice's values are read: found, moved.
    let k2 = replica(&redis, ring(&[('2', K2), ('1', K1)]));
    read_all(&k2, "alice").await;
    let now = names(&redis).await;
    assert_eq!(now.len(), 6, "moved, not copied: {now:?}");
    assert_eq!(
        now.difference(&under_k1).count(),
        3,
        "alice's three: {now:?}"
    );
    read_all(&k2, "alice").await;

    // Bob's were not read: `rekey` moves them (his session hash; his token and
    // registration), and then nothing is under a K1 name.
    assert_eq!(k2.shared.rekey().await.unwrap(), 1);
    assert_eq!(k2.tokens.rekey().await.unwrap(), 2);
    assert_eq!(k2.shared.rekey().await.unwrap(), 0);
    assert_eq!(k2.tokens.rekey().await.unwrap(), 0);
    let now = names(&redis).await;
    assert_eq!(now.len(), 6, "{now:?}");
    assert!(now.is_disjoint(&under_k1), "left under K1: {now:?}");

    // Step 3: K1 dropped. Everyone's state reads with K2 alone.
    let only_k2 = replica(&redis, ring(&[('2', K2)]));
    read_all(&only_k2, "alice").await;
    read_all(&only_k2, "bob").await;
}

/// During step 2's rolling update some replicas have K1 primary and some K2: the same
/// session's claim (and a user's renewal lock) must exclude across them, and a record
/// published under one primary is seen by the other's compare-and-set. In step 3, a
/// replica with K2 alone excludes one with (K2, K1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_locks_exclude_replicas_whose_primaries_differ() {
    let redis = RedisServer::start();
    let k1_first = replica(&redis, ring(&[('1', K1), ('2', K2)]));
    let k2_first = replica(&redis, ring(&[('2', K2), ('1', K1)]));
    let k2_only = replica(&redis, ring(&[('2', K2)]));
    let s = key("mcp-s");
    let ttl = Duration::from_secs(30);

    assert!(k1_first.shared.claim(&s, "a", ttl).await.unwrap());
    assert!(!k2_first.shared.claim(&s, "b", ttl).await.unwrap());
    k1_first.shared.release(&s, "a").await.unwrap();
    assert!(k2_first.shared.claim(&s, "b", ttl).await.unwrap());
    assert!(!k1_first.shared.claim(&s, "a", ttl).await.unwrap());
    assert!(!k2_only.shared.claim(&s, "c", ttl).await.unwrap());
    k2_first.shared.release(&s, "b").await.unwrap();
    assert!(k2_only.shared.claim(&s, "c", ttl).await.unwrap());
    assert!(!k2_first.shared.claim(&s, "b", ttl).await.unwrap());

    // A record published by the K1-primary replica: the K2-primary one cannot publish
    // "no record yet" over it, only the generation it reads.
    assert!(
        (k1_first.shared)
            .publish_if(&s, None, upstream("u1"))
            .await
            .unwrap()
    );
    assert!(
        !(k2_first.shared)
            .publish_if(&s, None, upstream("u2"))
            .await
            .unwrap()
    );
    let seen = k2_first.shared.get(&s).await.unwrap().unwrap();
    assert_eq!(seen.session_id, "u1");
    let next = UpstreamRecord {
        generation: 2,
        ..upstream("u2")
    };
    assert!(
        (k2_first.shared)
            .publish_if(&s, Some(1), next)
            .await
            .unwrap()
    );
    let seen = k1_first.shared.get(&s).await.unwrap().unwrap();
    assert_eq!((seen.session_id.as_str(), seen.generation), ("u2", 2));

    // A renewal lock held by the K1-primary replica keeps the K2-primary one waiting
    // until it is released.
    let alice = token_key("alice");
    let held = k1_first.tokens.lock(&alice).await.unwrap();
    let k2_tokens = Arc::new(k2_first.tokens);
    let waiting = tokio::spawn({
        let tokens = k2_tokens.clone();
        let alice = alice.clone();
        async move { tokens.lock(&alice).await.map(drop) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the lock was taken twice");
    drop(held);
    tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the lock is free once released")
        .unwrap()
        .unwrap();
}

/// A session's end is announced by its hash under every key of the ring: a replica whose
/// primary is the other key (it holds the session by that key's hash) hears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_announced_under_one_primary_is_heard_under_the_other() {
    let redis = RedisServer::start();
    let k1_first = replica(&redis, ring(&[('1', K1), ('2', K2)]));
    let k2_first = replica(&redis, ring(&[('2', K2), ('1', K1)]));
    assert_ne!(
        k1_first.shared.session_key("mcp-s"),
        k2_first.shared.session_key("mcp-s")
    );
    let records = k1_first.shared.session_store();
    let mut ended = k2_first.shared.ended_sessions();
    // Wait until the subscription is in place (made in the background at start).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        records.delete("mcp-warm-up").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), ended.next()).await {
            Ok(Some(_)) => break,
            _ => assert!(tokio::time::Instant::now() < deadline, "never subscribed"),
        }
    }
    while tokio::time::timeout(Duration::from_millis(100), ended.next())
        .await
        .is_ok()
    {}
    records.delete("mcp-s").await.unwrap();
    let wanted = k2_first.shared.session_key("mcp-s");
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(announced) = ended.next().await {
            if announced == Announcement::Ended(wanted.clone()) {
                return true;
            }
        }
        false
    });
    assert!(
        heard.await.unwrap(),
        "the K2-primary replica's key was announced"
    );
}

/// A token removed by a K1-primary replica is announced under every key's hash: a
/// K2-primary replica (which knows the key by K2's hash) drops it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_removed_under_one_primary_is_heard_once_under_the_other() {
    let redis = RedisServer::start();
    let k1_first = replica(&redis, ring(&[('1', K1), ('2', K2)]));
    let k2_first = replica(&redis, ring(&[('2', K2), ('1', K1)]));
    let alice = token_key("alice");
    let mut heard = k2_first.tokens.removals().expect("removals are told");
    assert_eq!(k2_first.tokens.load(&alice).await.unwrap(), None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let removed = loop {
        let token = TokenRecord::new("alice-token", None);
        k1_first.tokens.save(&alice, &token).await.unwrap();
        k1_first.tokens.remove(&alice).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
            Ok(removed) => break removed.expect("a removed key"),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "never heard"),
        }
    };
    assert_eq!(removed, alice);
    while heard.try_recv().is_ok() {} // earlier rounds' announcements
    let token = TokenRecord::new("alice-token", None);
    k1_first.tokens.save(&alice, &token).await.unwrap();
    k1_first.tokens.remove(&alice).await.unwrap();
    let removed = tokio::time::timeout(Duration::from_secs(20), heard.recv()).await;
    assert_eq!(removed.expect("heard in time").unwrap(), alice);
    // Both hashes were announced; the K1 one names nothing this replica knows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(heard.try_recv().is_err(), "one removal heard once");
}
