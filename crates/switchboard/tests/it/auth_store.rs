//! Several holders of one token store: two hubs on one file store directory (each with
//! its own `FileStore`, so only the lock file serializes them, as between two processes)
//! renewing a record whose refresh token the authorization server rotates; the stores'
//! renewal lock and conditional delete; and signing out (the record deleted, its tokens
//! revoked at the authorization server).

use std::sync::Arc;
use std::time::Duration;

use switchboard::auth::{
    FileStore, MemoryStore, Revocation, TokenKey, TokenRecord, TokenStore, sign_out,
};
use switchboard_testkit::{AuthKnobs, TestClient};

use crate::auth::{STEP, assert_started, config, protected, start, whoami};

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

fn key(url: &str) -> TokenKey {
    TokenKey {
        server: "api".into(),
        url: url.into(),
        principal: "shared".into(),
    }
}

#[tokio::test]
async fn two_hubs_on_one_file_store_share_a_rotated_refresh_token() {
    let (auth, server) = protected(public_app()).await;
    let tokens = auth.login("app", "alice");
    let first_refresh = tokens.refresh_token.clone().unwrap();
    let seeded = TokenRecord::new(tokens.access_token.clone(), Some(tokens.expires_in))
        .with_refresh(first_refresh.clone(), auth.token_endpoint(), "app");
    let dir = tempfile::tempdir().unwrap();
    let key = key(&server.url());
    FileStore::new(dir.path())
        .save(&key, &seeded)
        .await
        .unwrap();

    let config = config(&server.url(), "kind = \"oauth\"");
    let one = start(&config, Arc::new(FileStore::new(dir.path()))).await;
    let two = start(&config, Arc::new(FileStore::new(dir.path()))).await;
    assert_started(&one);
    assert_started(&two);
    for round in 1..=3 {
        // Both hubs' tokens die at once; both are refused and renew at the same time.
        auth.revoke_all_access();
        let (a, b) = tokio::join!(whoami(&one), whoami(&two));
        assert_eq!(a["subject"], "alice", "round {round}");
        assert_eq!(b["subject"], "alice", "round {round}");
        // One refresh per round: the second hub found the first's new token in the store
        // instead of spending the refresh token the first had already rotated.
        assert_eq!(auth.token_requests("refresh_token"), round, "round {round}");
    }
    let stored = FileStore::new(dir.path())
        .load(&key)
        .await
        .unwrap()
        .expect("the record is kept");
    assert_ne!(
        stored.refresh_token.as_deref(),
        Some(first_refresh.as_str())
    );
    // And it is the live one: a third holder can refresh with it.
    auth.revoke_all_access();
    let three = start(&config, Arc::new(FileStore::new(dir.path()))).await;
    assert_started(&three);
    assert_eq!(whoami(&three).await["subject"], "alice");
    assert_eq!(auth.token_requests("refresh_token"), 4);
    for hub in [one, two, three] {
        hub.close().await;
    }
}

/// The file store's renewal lock holds across `FileStore` values (as across processes):
/// the second waits for the first to be dropped.
#[tokio::test]
async fn the_file_lock_holds_across_stores_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let key = key("http://127.0.0.1:1/mcp");
    let first = FileStore::new(dir.path());
    let second = FileStore::new(dir.path());
    let held = first.lock(&key).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), second.lock(&key)).await;
    assert!(waiting.is_err(), "the second store got a held lock");
    drop(held);
    let got = tokio::time::timeout(STEP, second.lock(&key)).await;
    assert!(matches!(got, Ok(Ok(_))), "the released lock was not taken");
    // Another key is not held up.
    let other = TokenKey {
        principal: "bob".into(),
        ..key.clone()
    };
    let _other = tokio::time::timeout(STEP, first.lock(&other))
        .await
        .expect("another key's lock is free")
        .unwrap();
}

#[tokio::test]
async fn a_conditional_delete_keeps_a_record_someone_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn TokenStore>; 2] = [
        Arc::new(MemoryStore::new()),
        Arc::new(FileStore::new(dir.path())),
    ];
    let key = key("http://127.0.0.1:1/mcp");
    for store in stores {
        let seen = TokenRecord::new("old-access", None);
        let replaced = TokenRecord::new("new-access", None);
        store.save(&key, &replaced).await.unwrap();
        let lock = store.lock(&key).await.unwrap();
        assert!(!store.remove_if(&key, &seen).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap(), Some(replaced.clone()));
        assert!(store.remove_if(&key, &replaced).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap(), None);
        drop(lock);
    }
}

#[tokio::test]
async fn signing_out_deletes_the_record_and_revokes_its_tokens() {
    let (auth, server) = protected(public_app()).await;
    let tokens = auth.login("app", "alice");
    let mut record = TokenRecord::new(tokens.access_token.clone(), Some(tokens.expires_in))
        .with_refresh(
            tokens.refresh_token.clone().unwrap(),
            auth.token_endpoint(),
            "app",
        );
    record.issuer = Some(auth.issuer().to_owned());
    let store = MemoryStore::new();
    let key = key(&server.url());
    store.save(&key, &record).await.unwrap();

    let done = sign_out(&store, &key).await.unwrap();
    assert!(done.had_tokens);
    assert_eq!(done.revocation, Revocation::Revoked);
    assert_eq!(
        auth.counts()["revocations"],
        2,
        "the refresh and the access token"
    );
    assert!(auth.check(&tokens.access_token).is_none());
    assert_eq!(store.load(&key).await.unwrap(), None);

    let again = sign_out(&store, &key).await.unwrap();
    assert!(!again.had_tokens);
    assert_eq!(again.revocation, Revocation::NotTried);
}

#[tokio::test]
async fn signing_out_waits_for_a_renewal_under_way_and_deletes_what_it_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::new(dir.path());
    let key = key("http://127.0.0.1:1/mcp");
    store
        .save(&key, &TokenRecord::new("old", None))
        .await
        .unwrap();
    // A renewal holds the lock, and stores its new token before letting go.
    let renewal = store.lock(&key).await.unwrap();
    let signing_out = sign_out(&store, &key);
    tokio::pin!(signing_out);
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut signing_out).await;
    assert!(waited.is_err(), "signed out under a renewal's lock");
    store
        .save(&key, &TokenRecord::new("renewed", None))
        .await
        .unwrap();
    drop(renewal);
    let done = signing_out.await.unwrap();
    assert!(done.had_tokens);
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "the renewed token is gone too"
    );
}
