//! The `TokenStore` contract over Redis, the behaviours the engine's stores are tested for
//! (`crates/switchboard/tests/it/auth_store.rs`, `auth_login.rs`): records per (server, URL,
//! principal) that round-trip and go when removed; a renewal lock held across stores (as
//! across replicas) until released, released only by its owner; a conditional delete that
//! keeps a record someone replaced; registrations per issuer and port. And Redis's own:
//! nothing in key names or values shows a token, user, URL or secret; a value moved under
//! another key reads as nothing; TTLs; a Redis that is down is a clear error.

use std::time::Duration;

use switchboard::auth::{Registration, RegistrationKey, TokenKey, TokenRecord, TokenStore};
use switchboard_redis::{RedisOptions, RedisSetupError, RedisTokenStore};

use crate::contract::dump;
use crate::redis_server::RedisServer;

const STEP: Duration = Duration::from_secs(20);

pub fn options() -> RedisOptions {
    RedisOptions {
        binding_key: Some(b"binding".to_vec()),
        store_key: Some([5; 32]),
        ..RedisOptions::default()
    }
}

fn store(redis: &RedisServer) -> RedisTokenStore {
    RedisTokenStore::new(&redis.url(), options()).expect("a token store")
}

fn key(principal: &str) -> TokenKey {
    TokenKey {
        server: "api".into(),
        url: "http://tenant-one.example:8443/mcp".into(),
        principal: principal.into(),
    }
}

/// A record with every secret field set (fixed times: two calls give equal records).
fn record(access: &str) -> TokenRecord {
    let mut record = TokenRecord::new(access, None).with_refresh(
        format!("{access}-refresh"),
        "http://issuer-one.example/token",
        "client-of-alice",
    );
    (record.issued_at, record.expires_at) = (Some(4_000_000_000), Some(4_000_003_600));
    record.issuer = Some("http://issuer-one.example".into());
    record.client_secret = Some("registered-client-secret".into());
    record
}

async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn records_are_kept_per_key_and_go_when_removed() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let (alice, bob) = (key("alice"), key("bob"));
    assert_eq!(store.load(&alice).await.unwrap(), None);
    store.save(&alice, &record("a1")).await.unwrap();
    assert_eq!(store.load(&alice).await.unwrap(), Some(record("a1")));
    assert_eq!(store.load(&bob).await.unwrap(), None, "another principal");
    let elsewhere = TokenKey {
        url: "http://tenant-two.example:8443/mcp".into(),
        ..alice.clone()
    };
    assert_eq!(store.load(&elsewhere).await.unwrap(), None, "another URL");
    store.save(&alice, &record("a2")).await.unwrap();
    assert_eq!(store.load(&alice).await.unwrap(), Some(record("a2")));
    // Another store on the same Redis (another replica) reads it.
    let replica = self::store(&redis);
    assert_eq!(replica.load(&alice).await.unwrap(), Some(record("a2")));
    replica.remove(&alice).await.unwrap();
    assert_eq!(store.load(&alice).await.unwrap(), None);
    store.remove(&alice).await.unwrap(); // nothing to remove: fine
}

/// The renewal lock holds across stores (as across replicas): the second waits for the
/// first to be dropped; another key is not held up.
#[tokio::test]
async fn the_renewal_lock_holds_across_stores_until_released() {
    let redis = RedisServer::start();
    let (first, second) = (store(&redis), store(&redis));
    let key = key("alice");
    let held = first.lock(&key).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), second.lock(&key)).await;
    assert!(waiting.is_err(), "the second store got a held lock");
    drop(held);
    let got = tokio::time::timeout(STEP, second.lock(&key)).await;
    assert!(matches!(got, Ok(Ok(_))), "the released lock was not taken");
    let _other = tokio::time::timeout(STEP, first.lock(&self::key("bob")))
        .await
        .expect("another key's lock is free")
        .unwrap();
}

/// Dropping a lock deletes it only while it is still its holder's: one that expired and
/// was taken by another replica is left alone.
#[tokio::test]
async fn a_lock_is_released_only_by_its_owner_and_expires() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let key = key("alice");
    let name = store.record_key(&key).replace(":v1:t:", ":v1:tl:");
    let mut connection = raw(&redis).await;
    let held = store.lock(&key).await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 15_000,
        "the lock expires by itself: {ttl}"
    );
    // As if it expired and another replica took it.
    let _: () = redis::cmd("SET")
        .arg(&name)
        .arg("someone-else")
        .query_async(&mut connection)
        .await
        .unwrap();
    drop(held);
    // The release runs in the background: give it ample time, then look.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now: Option<String> = redis::cmd("GET")
            .arg(&name)
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(now.as_deref(), Some("someone-else"));
    }
}

#[tokio::test]
async fn a_conditional_delete_keeps_a_record_someone_replaced() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let key = key("alice");
    let (seen, replaced) = (record("old-access"), record("new-access"));
    assert!(
        !store.remove_if(&key, &seen).await.unwrap(),
        "nothing stored"
    );
    store.save(&key, &replaced).await.unwrap();
    let lock = store.lock(&key).await.unwrap();
    assert!(!store.remove_if(&key, &seen).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), Some(replaced.clone()));
    assert!(store.remove_if(&key, &replaced).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), None);
    drop(lock);
}

#[tokio::test]
async fn registrations_are_kept_per_issuer_and_port() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let at = |issuer: &str, port| RegistrationKey {
        issuer: issuer.into(),
        redirect_port: port,
    };
    let mut client = Registration::new("dc-1", "http://127.0.0.1:8123/callback");
    client.client_secret = Some("registered-client-secret".into());
    let here = at("http://issuer-one.example", None);
    assert_eq!(store.load_registration(&here).await.unwrap(), None);
    store.save_registration(&here, &client).await.unwrap();
    let replica = self::store(&redis);
    assert_eq!(
        replica.load_registration(&here).await.unwrap(),
        Some(client.clone())
    );
    for other in [
        at("http://issuer-two.example", None),
        at("http://issuer-one.example", Some(8123)),
    ] {
        assert_eq!(store.load_registration(&other).await.unwrap(), None);
    }
    replica.remove_registration(&here).await.unwrap();
    assert_eq!(store.load_registration(&here).await.unwrap(), None);
}

#[tokio::test]
async fn redis_shows_no_token_user_url_or_secret_and_a_moved_value_opens_nowhere() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let (alice, bob) = (key("alice@example.com"), key("bob@example.com"));
    store.save(&alice, &record("alice-access")).await.unwrap();
    store.save(&bob, &record("bob-access")).await.unwrap();
    let mut client = Registration::new("dc-1", "http://127.0.0.1:8123/callback");
    client.client_secret = Some("registered-client-secret".into());
    let registration = RegistrationKey {
        issuer: "http://issuer-one.example".into(),
        redirect_port: None,
    };
    store
        .save_registration(&registration, &client)
        .await
        .unwrap();
    let _lock = store.lock(&alice).await.unwrap();
    let seen = dump(&redis.url()).await;
    let mut connection = raw(&redis).await;
    let names: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        names.len(),
        4,
        "two records, a registration, a lock: {names:?}"
    );
    for hidden in [
        "alice", "bob", "access", "refresh", "secret", "tenant", "issuer", "example", "api", "dc-1",
    ] {
        assert!(!seen.contains(hidden), "{hidden} in Redis:\n{seen}");
    }

    // Alice's value copied over Bob's key: Bob gets nothing, never Alice's token.
    let alices: Vec<u8> = redis::cmd("GET")
        .arg(store.record_key(&alice))
        .query_async(&mut connection)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(store.record_key(&bob))
        .arg(alices)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(store.load(&bob).await.unwrap(), None);
    assert_eq!(
        store.load(&alice).await.unwrap(),
        Some(record("alice-access"))
    );
    // Another store key opens nothing either.
    let stranger = RedisTokenStore::new(
        &redis.url(),
        RedisOptions {
            store_key: Some([6; 32]),
            ..options()
        },
    )
    .unwrap();
    assert_eq!(stranger.load(&alice).await.unwrap(), None);
}

#[tokio::test]
async fn records_expire_by_what_they_hold() {
    let redis = RedisServer::start();
    let store = store(&redis);
    let mut connection = raw(&redis).await;
    let mut ttl_of = async |key: &TokenKey| -> i64 {
        redis::cmd("PTTL")
            .arg(store.record_key(key))
            .query_async(&mut connection)
            .await
            .unwrap()
    };
    let month = 30 * 24 * 3600 * 1000;
    store.save(&key("a"), &record("a")).await.unwrap();
    let refreshable = ttl_of(&key("a")).await;
    assert!(
        refreshable > month - 60_000 && refreshable <= month,
        "{refreshable}"
    );
    // Access only: an hour after the access token expires.
    let access_only = TokenRecord::new("b", Some(Duration::from_secs(600)));
    store.save(&key("b"), &access_only).await.unwrap();
    let ttl = ttl_of(&key("b")).await;
    assert!(ttl > 4_140_000 && ttl <= 4_200_000, "{ttl}");
    // No expiry known: kept like a refreshable one.
    store
        .save(&key("c"), &TokenRecord::new("c", None))
        .await
        .unwrap();
    assert!(ttl_of(&key("c")).await > month - 60_000);
}

#[tokio::test]
async fn a_redis_that_is_down_is_a_clear_error_without_user_info() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("redis://admin:hunter2@127.0.0.1:{port}/");
    // Constructing needs no Redis.
    let store = RedisTokenStore::new(&url, options()).unwrap();
    let key = key("alice");
    let errors = [
        store.load(&key).await.map(|_| ()).expect_err("down"),
        store.save(&key, &record("a")).await.expect_err("down"),
        store.lock(&key).await.map(|_| ()).expect_err("down"),
    ];
    for error in errors {
        let text = format!("{error} {error:?} {store:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("admin"),
            "{text}"
        );
        assert!(
            text.contains("token store") && text.contains(&format!("127.0.0.1:{port}")),
            "{text}"
        );
    }
    // Tokens are credentials: no store key, no store.
    let unsealed = RedisTokenStore::new(&url, RedisOptions::default());
    assert!(matches!(unsealed, Err(RedisSetupError::BadOptions(_))));
}

/// Rotating the store key: values sealed under K1 still open once K2 is primary (K1
/// secondary), `rekey` moves them to K2 keeping their TTL, and then a store without K1
/// reads them while one with K1 alone cannot.
#[tokio::test]
async fn the_store_key_rotates_and_rekey_moves_values_to_the_new_key() {
    let redis = RedisServer::start();
    let keyed = |primary: char, key: u8, secondary: Vec<(char, [u8; 32])>| {
        let options = RedisOptions {
            store_key: Some([key; 32]),
            store_key_id: primary,
            secondary_store_keys: secondary,
            ..options()
        };
        RedisTokenStore::new(&redis.url(), options).expect("a token store")
    };
    let k1 = keyed('1', 1, vec![]);
    let alice = key("alice");
    let here = RegistrationKey {
        issuer: "http://issuer-one.example".into(),
        redirect_port: None,
    };
    let client = Registration::new("dc-1", "http://127.0.0.1:8123/callback");
    k1.save(&alice, &record("a1")).await.unwrap();
    k1.save_registration(&here, &client).await.unwrap();
    let _lock = k1.lock(&key("bob")).await.unwrap(); // not a value: left alone

    let k2 = keyed('2', 2, vec![('1', [1; 32])]);
    assert_eq!(k2.load(&alice).await.unwrap(), Some(record("a1")));
    assert_eq!(
        k2.rekey().await.unwrap(),
        2,
        "the record and the registration"
    );
    assert_eq!(k2.rekey().await.unwrap(), 0, "nothing left under K1");

    let only_k2 = keyed('2', 2, vec![]);
    assert_eq!(only_k2.load(&alice).await.unwrap(), Some(record("a1")));
    assert_eq!(
        only_k2.load_registration(&here).await.unwrap(),
        Some(client)
    );
    assert_eq!(k1.load(&alice).await.unwrap(), None, "K1 opens nothing now");
    let mut connection = raw(&redis).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(k2.record_key(&alice))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(ttl > 29 * 24 * 3600 * 1000, "the TTL is kept: {ttl}");
}

/// A removal on one replica reaches the others' `removals` receivers as the key (by its
/// hash, which each store maps back for the keys it has used); a removal that does not
/// happen (`remove_if` of a replaced record) tells nobody.
#[tokio::test]
async fn removals_reach_the_other_replicas() {
    let redis = RedisServer::start();
    let (here, there) = (store(&redis), store(&redis));
    let alice = key("alice");
    let mut heard = there.removals().expect("the Redis store tells of removals");
    // `there` has used alice's key: it can name it when told of its hash.
    assert_eq!(there.load(&alice).await.unwrap(), None);
    // Pub/sub is at most once and the subscription is made in the background: announce
    // again until it is heard (bounded).
    let deadline = tokio::time::Instant::now() + STEP;
    let removed = loop {
        here.save(&alice, &record("a1")).await.unwrap();
        here.remove(&alice).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
            Ok(removed) => break removed.expect("a removed key"),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "never heard"),
        }
    };
    assert_eq!(removed, alice);
    while heard.try_recv().is_ok() {} // earlier announcements
    // A conditional delete that deletes nothing announces nothing; one that deletes does.
    here.save(&alice, &record("a2")).await.unwrap();
    assert!(!here.remove_if(&alice, &record("a1")).await.unwrap());
    assert!(here.remove_if(&alice, &record("a2")).await.unwrap());
    let removed = tokio::time::timeout(STEP, heard.recv()).await;
    assert_eq!(removed.expect("heard in time").unwrap(), alice);
    assert!(
        heard.try_recv().is_err(),
        "one announcement for one removal"
    );
}

/// After Redis restarts, the stores subscribe again: removals are heard again.
#[tokio::test]
async fn removals_are_heard_again_after_redis_restarts() {
    let redis = RedisServer::start();
    let port = redis.port;
    let (here, there) = (store(&redis), store(&redis));
    let alice = key("alice");
    let mut heard = there.removals().expect("the Redis store tells of removals");
    assert_eq!(there.load(&alice).await.unwrap(), None);
    // Announces alice's removal from `here` until `there` hears it (bounded); Redis
    // errors while it comes back count as not heard yet.
    async fn until_heard(
        here: &RedisTokenStore,
        heard: &mut tokio::sync::broadcast::Receiver<TokenKey>,
        alice: &TokenKey,
    ) -> TokenKey {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let _ = here.remove(alice).await;
            if let Ok(Ok(key)) =
                tokio::time::timeout(Duration::from_millis(200), heard.recv()).await
            {
                return key;
            }
            assert!(tokio::time::Instant::now() < deadline, "never heard");
        }
    }
    assert_eq!(until_heard(&here, &mut heard, &alice).await, alice);
    drop(redis);
    let _redis = RedisServer::start_on(port);
    while heard.try_recv().is_ok() {}
    assert_eq!(until_heard(&here, &mut heard, &alice).await, alice);
}
