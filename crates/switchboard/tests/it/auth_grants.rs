//! The grants that exchange someone else's JWT, and DPoP, against the testkit's
//! authorization server: a workload's JWT (`kind = "jwt_bearer"`, the file re-read at
//! every exchange, no retry after a refusal), enterprise-managed authorization (`kind =
//! "enterprise"`: the ID token exchanged at the identity provider for an ID-JAG, then the
//! JWT-bearer grant), and DPoP-bound tokens with the servers' nonces, kept across hubs.

use std::sync::Arc;

use serde_json::json;
use switchboard::AuthStep;
use switchboard::auth::{FileStore, MemoryStore};
use switchboard_testkit::{AuthKnobs, DpopKnob, TestClient};

use crate::auth::{assert_started, config, protected, start, whoami};
use crate::auth_login::{Browser, start as start_signing_in};

fn workload_knobs() -> AuthKnobs {
    AuthKnobs {
        clients: vec![TestClient {
            id: "workload".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into(), "client_secret_basic".into()],
        ..AuthKnobs::default()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_workload_jwt_is_exchanged_and_its_file_read_again_for_the_next_token() {
    let (auth, server) = protected(workload_knobs()).await;
    let jwt = |subject: &str| {
        auth.sign_jwt(&json!({"iss": "https://platform.example", "sub": subject,
            "aud": auth.issuer(), "exp": now() + 300}))
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workload.jwt");
    std::fs::write(&file, jwt("pod-1")).unwrap();
    let table = format!(
        "kind = \"jwt_bearer\"\nclient_id = \"workload\"\nassertion_file = \"{}\"",
        file.display()
    );
    let hub = start(&config(&server.url(), &table), Arc::new(MemoryStore::new())).await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "pod-1");
    assert_eq!(whoami(&hub).await["subject"], "pod-1");
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    assert_eq!(auth.token_requests(grant), 1, "the token is reused");
    assert_eq!(auth.last_token_request()["resource"], server.url());
    // The platform rotates the JWT; the next exchange uses the new one.
    std::fs::write(&file, jwt("pod-2")).unwrap();
    auth.revoke_all_access();
    assert_eq!(whoami(&hub).await["subject"], "pod-2");
    assert_eq!(auth.token_requests(grant), 2);
    hub.close().await;
}

#[tokio::test]
async fn a_refused_workload_jwt_fails_at_token_once_and_never_shows() {
    let (auth, server) = protected(workload_knobs()).await;
    let expired = auth.sign_jwt(&json!({"sub": "pod-1", "aud": auth.issuer(), "exp": now() - 600}));
    let table =
        format!("kind = \"jwt_bearer\"\nclient_id = \"workload\"\nassertion = \"{expired}\"");
    let hub = start(&config(&server.url(), &table), Arc::new(MemoryStore::new())).await;
    let failures = hub.failures();
    let (_, error) = failures.first().expect("the server fails");
    let failure = error.report().auth.expect("a sign-in failure");
    assert_eq!(failure.step, AuthStep::Token);
    assert_eq!(failure.error.as_deref(), Some("invalid_grant"));
    let grant = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    assert_eq!(auth.token_requests(grant), 1, "no retry, no other grant");
    assert_eq!(auth.token_requests("client_credentials"), 0);
    let text = format!(
        "{error} {error:?} {}",
        serde_json::to_string(&error.report()).unwrap()
    );
    assert!(!text.contains(&expired), "{text}");
    hub.close().await;
}

#[tokio::test]
async fn enterprise_sign_in_exchanges_the_id_token_for_an_id_jag_then_a_token() {
    // The identity provider is named by its issuer: its token endpoint is in its metadata.
    let knobs = AuthKnobs {
        clients: vec![TestClient::with_secret("app", "app-secret")],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    // An ID token the identity provider issued to "app" for alice.
    let id_token = auth.sign_jwt(
        &json!({"iss": "https://idp.example", "sub": "alice@example.com",
        "aud": "app", "exp": now() + 300}),
    );
    let table = format!(
        "kind = \"enterprise\"\nclient_id = \"app\"\nclient_secret = \"app-secret\"\n\
         id_token = \"{id_token}\"\nidp_issuer = \"{}\"\nidp_client_id = \"app\"",
        auth.idp_issuer()
    );
    let hub = start(&config(&server.url(), &table), Arc::new(MemoryStore::new())).await;
    assert_started(&hub);
    assert_eq!(
        whoami(&hub).await,
        json!({"subject": "alice@example.com", "client_id": "app"})
    );
    assert_eq!(auth.token_requests("token-exchange"), 1);
    assert_eq!(
        auth.token_requests("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        1
    );
    let last = auth.last_token_request();
    assert_eq!(last["auth_method"], "client_secret_basic");
    assert_eq!(last["resource"], server.url());
    hub.close().await;
}

fn dpop_bot(dpop: DpopKnob) -> AuthKnobs {
    AuthKnobs {
        clients: vec![TestClient::with_secret("bot", "bot-secret")],
        dpop,
        ..AuthKnobs::default()
    }
}

const BOT: &str =
    "kind = \"client_credentials\"\nclient_id = \"bot\"\nclient_secret = \"bot-secret\"";

#[tokio::test]
async fn dpop_bound_tokens_with_nonces_at_both_servers_and_kept_across_hubs() {
    let (auth, server) = protected(dpop_bot(DpopKnob::RequireNonce)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server.url(), BOT);
    let hub = start(&config, Arc::new(FileStore::new(dir.path()))).await;
    assert_started(&hub);
    for _ in 0..3 {
        assert_eq!(whoami(&hub).await["subject"], "bot");
    }
    let counts = auth.counts();
    assert_eq!(counts["dpop_tokens"], 1);
    // One use_dpop_nonce from each server; the nonces are kept for later proofs.
    assert_eq!(counts["dpop_nonce_challenges"], 2, "{counts}");
    let rejected = auth.rejected();
    hub.close().await;

    // Another hub on the same store uses the stored token with its stored key.
    let again = start(&config, Arc::new(FileStore::new(dir.path()))).await;
    assert_started(&again);
    assert_eq!(whoami(&again).await["subject"], "bot");
    assert_eq!(auth.counts()["dpop_tokens"], 1, "no new token");
    assert_eq!(
        auth.rejected(),
        rejected,
        "the stored key signed for the stored token"
    );
    again.close().await;
}

#[tokio::test]
async fn dpop_is_used_when_advertised_unless_configured_never() {
    let (auth, server) = protected(dpop_bot(DpopKnob::On)).await;
    let hub = start(&config(&server.url(), BOT), Arc::new(MemoryStore::new())).await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "bot");
    assert_eq!(auth.counts()["dpop_tokens"], 1);
    hub.close().await;

    let never = format!("{BOT}\ndpop = \"never\"");
    let hub = start(&config(&server.url(), &never), Arc::new(MemoryStore::new())).await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "bot");
    assert_eq!(auth.counts()["dpop_tokens"], 1, "a Bearer token this time");
    hub.close().await;
}

#[tokio::test]
async fn a_browser_sign_in_binds_the_code_and_the_token_to_the_dpop_key() {
    let knobs = AuthKnobs {
        dpop: DpopKnob::RequireNonce,
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let hub = start_signing_in(
        &config(&server.url(), "kind = \"oauth\""),
        Arc::new(MemoryStore::new()),
        Some(Arc::new(Browser::default())),
    )
    .await;
    assert_eq!(whoami(&hub).await["subject"], "user");
    // The code was bound to the key (dpop_jkt), which the testkit checks at the exchange.
    assert!(auth.last_authorization().contains_key("dpop_jkt"));
    assert_eq!(auth.counts()["dpop_tokens"], 1);
    // The refresh proves the same key; the new token is bound too.
    auth.revoke_all_access();
    assert_eq!(whoami(&hub).await["subject"], "user");
    assert_eq!(auth.token_requests("refresh_token"), 1);
    assert_eq!(auth.counts()["dpop_tokens"], 2);
    hub.close().await;
}
