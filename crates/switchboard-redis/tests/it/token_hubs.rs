//! Hubs (replicas) sharing OAuth tokens through one Redis, against the testkit's
//! authorization server and its MCP server as the protected resource (mirrors the
//! engine's file-store test in `crates/switchboard/tests/it/auth_store.rs`): two hubs
//! renewing a rotating refresh token at once renew it once per round, with no
//! `invalid_grant` and no sign-in; Redis shows no token, user or URL; Redis killed makes a
//! renewal fail clearly at the store, and once it is back renewals work; replicas signing
//! different people in share one registered client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchboard::auth::{Opener, TokenKey, TokenRecord, TokenStore};
use switchboard::{AuthStep, Config, Error, Hub};
use switchboard_redis::RedisTokenStore;
use switchboard_testkit::{
    AuthKnobs, AuthServer, HttpMode, Knobs, RunningServer, TestClient, serve_streamable_http,
};
use tokio::time::Instant;

use crate::contract::dump;
use crate::redis_server::RedisServer;
use crate::tokens::options;

const STEP: Duration = Duration::from_secs(20);

/// An authorization server knowing `knobs`' clients, and an MCP server that needs its
/// tokens.
async fn protected(knobs: AuthKnobs) -> (AuthServer, RunningServer) {
    let auth = AuthServer::start(knobs).await.expect("auth server");
    let knobs = Knobs {
        oauth: Some(auth.handle()),
        ..Knobs::default()
    };
    let server = serve_streamable_http(knobs, HttpMode::Stateful)
        .await
        .expect("mcp server");
    (auth, server)
}

/// A public client `app`, refresh tokens rotated at every use.
fn public_app() -> AuthKnobs {
    AuthKnobs {
        clients: vec![TestClient {
            id: "app".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into()],
        rotate_refresh_tokens: true,
        ..AuthKnobs::default()
    }
}

/// `api` at `url` with the `[auth]` table `auth`.
fn config(url: &str, auth: &str) -> Config {
    let text = format!("[servers.api]\nurl = \"{url}\"\n[servers.api.auth]\n{auth}\n");
    Config::from_toml_str(&text, None).expect("config")
}

/// A replica's store: its own connection to `redis`.
fn store(redis: &RedisServer) -> Arc<RedisTokenStore> {
    Arc::new(RedisTokenStore::new(&redis.url(), options()).expect("a token store"))
}

async fn start(config: &Config, store: Arc<dyn TokenStore>, opener: Option<Arc<Browser>>) -> Hub {
    let mut builder = Hub::builder().config(config).token_store(store);
    if let Some(opener) = opener {
        builder = builder.opener(opener);
    }
    let hub = tokio::time::timeout(STEP, builder.start())
        .await
        .expect("hub start within the step bound")
        .expect("hub start");
    if let Some((server, error)) = hub.failures().first() {
        panic!("server '{server}' failed: {error}");
    }
    hub
}

async fn whoami(hub: &Hub) -> Result<Value, Error> {
    let outcome = tokio::time::timeout(STEP, hub.call("api__whoami", None, None))
        .await
        .expect("call within the step bound")?;
    Ok(serde_json::from_str(&outcome.text()).expect("whoami answers JSON"))
}

fn key(server: &RunningServer) -> TokenKey {
    TokenKey {
        server: "api".into(),
        url: server.url(),
        principal: "shared".into(),
    }
}

/// Alice signed in (as `switchboard auth login` would have), kept in `store`.
async fn seed(auth: &AuthServer, server: &RunningServer, store: &RedisTokenStore) -> TokenRecord {
    let tokens = auth.login("app", "alice");
    let seeded = TokenRecord::new(tokens.access_token.clone(), Some(tokens.expires_in))
        .with_refresh(
            tokens.refresh_token.clone().unwrap(),
            auth.token_endpoint(),
            "app",
        );
    store.save(&key(server), &seeded).await.unwrap();
    seeded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_redis_store_share_a_rotated_refresh_token() {
    let redis = RedisServer::start();
    let (auth, server) = protected(public_app()).await;
    let seeded = seed(&auth, &server, &store(&redis)).await;

    let config = config(&server.url(), "kind = \"oauth\"");
    // No opener: a renewal that needed a sign-in would fail the call.
    let one = start(&config, store(&redis), None).await;
    let two = start(&config, store(&redis), None).await;
    for round in 1..=3 {
        // Both hubs' tokens die at once; both are refused and renew at the same time.
        auth.revoke_all_access();
        let (a, b) = tokio::join!(whoami(&one), whoami(&two));
        assert_eq!(a.expect("hub one")["subject"], "alice", "round {round}");
        assert_eq!(b.expect("hub two")["subject"], "alice", "round {round}");
        // One refresh per round: the second hub found the first's new token in Redis
        // instead of spending the refresh token the first had already rotated (which would
        // have been a second, refused, request: `invalid_grant`).
        assert_eq!(auth.token_requests("refresh_token"), round, "round {round}");
    }
    let stored = store(&redis)
        .load(&key(&server))
        .await
        .unwrap()
        .expect("the record is kept");
    assert_ne!(stored.refresh_token, seeded.refresh_token);
    // And it is the live one: a third replica can refresh with it.
    auth.revoke_all_access();
    let three = start(&config, store(&redis), None).await;
    assert_eq!(whoami(&three).await.expect("hub three")["subject"], "alice");
    assert_eq!(auth.token_requests("refresh_token"), 4);

    // Nothing in Redis names the token, the user, the server or its URL.
    let now = store(&redis).load(&key(&server)).await.unwrap().unwrap();
    let seen = dump(&redis.url()).await;
    let url = server.url();
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    for hidden in [
        now.access_token.as_str(),
        now.refresh_token.as_deref().unwrap(),
        seeded.access_token.as_str(),
        "alice",
        "shared",
        "api",
        url.as_str(),
        &format!("127.0.0.1:{port}"),
    ] {
        assert!(!seen.contains(hidden), "{hidden} in Redis:\n{seen}");
    }
    for hub in [one, two, three] {
        hub.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_a_renewal_clearly_and_renewals_work_once_it_is_back() {
    let redis = RedisServer::start();
    let port = redis.port;
    let (auth, server) = protected(public_app()).await;
    let store = store(&redis);
    seed(&auth, &server, &store).await;
    let hub = start(
        &config(&server.url(), "kind = \"oauth\""),
        store.clone(),
        None,
    )
    .await;
    assert_eq!(whoami(&hub).await.expect("signed in")["subject"], "alice");

    drop(redis);
    // The token the hub holds needs no Redis.
    assert_eq!(whoami(&hub).await.expect("held token")["subject"], "alice");
    // A renewal does: it fails, at the store, saying so; it spends no refresh token.
    auth.revoke_all_access();
    let error = whoami(&hub).await.expect_err("the renewal needs Redis");
    let failure = error.auth_failure().expect("an auth failure");
    assert_eq!(failure.step, AuthStep::Store, "{error}");
    assert!(!failure.needs_login, "{error}");
    let text = error.to_string();
    assert!(text.contains("token store"), "{text}");
    assert_eq!(auth.token_requests("refresh_token"), 0);

    // Redis back (empty: no persistence). Once the connection answers again, the next
    // call renews with the refresh token the hub holds, and stores the new record.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + STEP;
    let me = loop {
        match whoami(&hub).await {
            Ok(me) => break me,
            Err(error) => {
                let step = error.auth_failure().map(|f| f.step);
                assert_eq!(step, Some(AuthStep::Store), "{error}");
                assert!(Instant::now() < deadline, "never renewed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(me["subject"], "alice");
    assert_eq!(auth.token_requests("refresh_token"), 1);
    let kept = store.load(&key(&server)).await.unwrap();
    assert!(kept.is_some(), "the renewed record is stored again");
    hub.close().await;
}

/// A token removed from the store by one replica (a sign-out that could not revoke it at
/// the authorization server) is dropped by the other replicas' cells: their next call
/// has no token, where without the event they would go on with the one they hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_removed_on_one_replica_is_dropped_by_the_others() {
    let redis = RedisServer::start();
    let (auth, server) = protected(public_app()).await;
    let (here, there) = (store(&redis), store(&redis));
    seed(&auth, &server, &here).await;
    let config = config(&server.url(), "kind = \"oauth\"");
    let hub = start(&config, there, None).await;
    assert_eq!(whoami(&hub).await.expect("signed in")["subject"], "alice");

    here.remove(&key(&server)).await.unwrap();
    // The event arrives in the background; pub/sub is at most once, so announce again
    // until the hub has dropped the token (bounded).
    let deadline = Instant::now() + STEP;
    let error = loop {
        match whoami(&hub).await {
            Err(error) => break error,
            Ok(_) => {
                assert!(Instant::now() < deadline, "the hub kept the removed token");
                here.remove(&key(&server)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let failure = error.auth_failure().expect("a sign-in is needed");
    assert!(failure.needs_login, "{error}");
    assert_eq!(
        auth.token_requests("refresh_token"),
        0,
        "nothing to refresh with"
    );
    hub.close().await;
}

/// A browser that follows the authorization server's redirect to the engine's loopback
/// callback, as a person's would; counts the URLs it opened.
#[derive(Default)]
struct Browser {
    opened: AtomicUsize,
}

impl Opener for Browser {
    fn open(&self, _server: &str, url: &str) -> Result<(), String> {
        self.opened.fetch_add(1, Ordering::SeqCst);
        let url = url.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let answer = client.get(&url).send().await.expect("the callback answers");
            assert!(
                answer.status().is_success(),
                "callback said {}",
                answer.status()
            );
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_signing_people_in_share_one_registered_client() {
    let redis = RedisServer::start();
    let (auth, server) = protected(AuthKnobs::default()).await;
    let browser = Arc::new(Browser::default());
    auth.set_next_subject("alice");
    let alice = start(
        &config(&server.url(), "kind = \"oauth\""),
        store(&redis),
        Some(browser.clone()),
    )
    .await;
    let first = whoami(&alice).await.expect("alice signed in");
    auth.set_next_subject("bob");
    let bob = start(
        &config(&server.url(), "kind = \"oauth\"\nprincipal = \"bob\""),
        store(&redis),
        Some(browser.clone()),
    )
    .await;
    let second = whoami(&bob).await.expect("bob signed in");
    assert_eq!(
        (first["subject"].as_str(), second["subject"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert_eq!(first["client_id"], second["client_id"], "one client");
    assert_eq!((auth.registrations(), auth.authorizations()), (1, 2));
    assert_eq!(browser.opened.load(Ordering::SeqCst), 2);
    let seen = dump(&redis.url()).await;
    let client_id = first["client_id"].as_str().unwrap();
    for hidden in [client_id, "alice", "bob"] {
        assert!(!seen.contains(hidden), "{hidden} in Redis:\n{seen}");
    }
    alice.close().await;
    bob.close().await;
}
