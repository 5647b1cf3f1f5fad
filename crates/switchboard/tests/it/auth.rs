//! OAuth against the testkit's authorization server and its MCP server as a protected
//! resource, over loopback: machine identities (client credentials with a secret or a
//! private key), caching, renewal before expiry, a 401 forcing a new token, refresh of a
//! stored user token, the file store's permissions, and no token or secret in errors.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use crate::common::Captured;
use serde_json::{Value, json};
use switchboard::auth::{FileStore, MemoryStore, TokenKey, TokenRecord, TokenStore};
use switchboard::{AuthStep, Config, ErrorClass, Hub};
use switchboard_testkit::{
    AuthKnobs, AuthServer, HttpMode, Knobs, Lifecycle, RunningServer, TestClient,
    serve_streamable_http,
};

pub(crate) const STEP: Duration = Duration::from_secs(20);
const SECRET: &str = "s3cret-of-the-bot";

/// An authorization server knowing `clients`, and an MCP server that needs its tokens.
pub(crate) async fn protected(knobs: AuthKnobs) -> (AuthServer, RunningServer) {
    protected_speaking(knobs, Lifecycle::Classic).await
}

/// [`protected`] with an MCP server speaking `lifecycle`.
async fn protected_speaking(knobs: AuthKnobs, lifecycle: Lifecycle) -> (AuthServer, RunningServer) {
    let auth = AuthServer::start(knobs).await.expect("auth server");
    let server = serve_streamable_http(
        Knobs {
            oauth: Some(auth.handle()),
            lifecycle,
            ..Knobs::default()
        },
        HttpMode::Stateful,
    )
    .await
    .expect("mcp server");
    (auth, server)
}

fn bot_with_secret() -> AuthKnobs {
    AuthKnobs {
        clients: vec![TestClient::with_secret("bot", SECRET)],
        ..AuthKnobs::default()
    }
}

/// A config with one server `api` at `url` and its `[auth]` table.
pub(crate) fn config(url: &str, auth: &str) -> Config {
    let text = format!("[servers.api]\nurl = \"{url}\"\n[servers.api.auth]\n{auth}\n");
    Config::from_toml_str(&text, None).expect("config")
}

fn cc_secret(secret: &str) -> String {
    format!("kind = \"client_credentials\"\nclient_id = \"bot\"\nclient_secret = \"{secret}\"")
}

pub(crate) async fn start(config: &Config, store: Arc<dyn TokenStore>) -> Hub {
    tokio::time::timeout(
        STEP,
        Hub::builder().config(config).token_store(store).start(),
    )
    .await
    .expect("hub start within the step bound")
    .expect("hub start")
}

pub(crate) async fn whoami(hub: &Hub) -> Value {
    let outcome = tokio::time::timeout(STEP, hub.call("api__whoami", None, None))
        .await
        .expect("call within the step bound")
        .unwrap_or_else(|e| panic!("whoami: {e} [{}]", e.class()));
    serde_json::from_str(&outcome.text()).expect("whoami answers JSON")
}

pub(crate) fn assert_started(hub: &Hub) {
    if let Some((server, error)) = hub.failures().first() {
        panic!("server '{server}' failed: {error}");
    }
}

#[tokio::test]
async fn client_credentials_token_is_obtained_once_and_reused() {
    let (auth, server) = protected(bot_with_secret()).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    for _ in 0..5 {
        assert_eq!(
            whoami(&hub).await,
            json!({"subject": "bot", "client_id": "bot"})
        );
    }
    assert_eq!(auth.token_requests("client_credentials"), 1);
    let last = auth.last_token_request();
    assert_eq!(last["auth_method"], "client_secret_basic");
    // RFC 8707: the resource the protected resource metadata names.
    assert_eq!(last["resource"], server.url());
    hub.close().await;
}

#[tokio::test]
async fn client_secret_post_when_the_server_takes_only_post() {
    let knobs = AuthKnobs {
        auth_methods: vec!["client_secret_post".into()],
        ..bot_with_secret()
    };
    let (auth, server) = protected(knobs).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "bot");
    assert_eq!(
        auth.last_token_request()["auth_method"],
        "client_secret_post"
    );
    hub.close().await;
}

#[tokio::test]
async fn private_key_jwt_client_credentials() {
    let (client, pem) = TestClient::with_es256_key("signer");
    let knobs = AuthKnobs {
        clients: vec![client],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, pem).unwrap();
    let table = format!(
        "kind = \"client_credentials\"\nclient_id = \"signer\"\nprivate_key_file = \"{}\"",
        key.display()
    );
    let hub = start(&config(&server.url(), &table), Arc::new(MemoryStore::new())).await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "signer");
    assert_eq!(auth.last_token_request()["auth_method"], "private_key_jwt");
    hub.close().await;
}

#[tokio::test]
async fn a_short_lived_token_is_replaced_before_it_expires_without_a_401() {
    let knobs = AuthKnobs {
        access_ttl: Duration::from_secs(2),
        ..bot_with_secret()
    };
    let (auth, server) = protected(knobs).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    whoami(&hub).await;
    let refused = auth.rejected();
    let exchanges = auth.token_requests("client_credentials");
    // refresh_before (60 s) is clamped to half the 2 s lifetime: renewed after ~1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(whoami(&hub).await["subject"], "bot");
    assert!(auth.token_requests("client_credentials") > exchanges);
    assert_eq!(
        auth.rejected(),
        refused,
        "no request went out with an expired token"
    );
    hub.close().await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_then_exchanged_again() {
    let (auth, server) = protected(bot_with_secret()).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    whoami(&hub).await;
    let refused = auth.rejected();
    auth.revoke_all_access();
    // The next call meets a 401, gets one new token and goes through (NAT kept the
    // revoked token until it expired).
    assert_eq!(whoami(&hub).await["subject"], "bot");
    assert_eq!(auth.rejected(), refused + 1);
    assert_eq!(auth.token_requests("client_credentials"), 2);
    hub.close().await;
}

#[tokio::test]
async fn a_bad_secret_fails_at_token_with_the_servers_error_and_never_the_secret() {
    let (_auth, server) = protected(bot_with_secret()).await;
    let wrong = "wrong-secret-7f3a";
    let hub = start(
        &config(&server.url(), &cc_secret(wrong)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    let (_, error) = hub
        .failures()
        .first()
        .expect("the server fails to register");
    assert_eq!(error.class(), ErrorClass::Auth);
    let message = error.to_string();
    assert!(
        message.contains("sign-in failed at token: invalid_client (Invalid client credentials)"),
        "{message}"
    );
    let report = error.report();
    let failure = report.auth.clone().expect("the report says what failed");
    assert_eq!(failure.step, AuthStep::Token);
    assert_eq!(failure.error.as_deref(), Some("invalid_client"));
    for text in [
        message,
        format!("{error:?}"),
        serde_json::to_string(&report).unwrap(),
    ] {
        assert!(!text.contains(wrong), "the secret leaked: {text}");
        assert!(!text.contains(SECRET), "a secret leaked: {text}");
    }
    hub.close().await;
}

#[tokio::test]
async fn a_stored_user_token_is_used_and_refreshed_after_revocation() {
    let knobs = AuthKnobs {
        clients: vec![TestClient {
            id: "app".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into()],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let tokens = auth.login("app", "alice");
    let record = TokenRecord::new(tokens.access_token.clone(), Some(tokens.expires_in))
        .with_refresh(
            tokens.refresh_token.clone().unwrap(),
            auth.token_endpoint(),
            "app",
        );
    let store = Arc::new(MemoryStore::new());
    let key = TokenKey {
        server: "api".into(),
        url: server.url(),
        principal: "shared".into(),
    };
    store.save(&key, &record).await.unwrap();
    let hub = start(&config(&server.url(), "kind = \"oauth\""), store.clone()).await;
    assert_started(&hub);
    assert_eq!(whoami(&hub).await["subject"], "alice");
    auth.revoke(&tokens.access_token);
    assert_eq!(whoami(&hub).await["subject"], "alice");
    assert_eq!(auth.token_requests("refresh_token"), 1);
    // The new token was written back; the refresh token kept.
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_ne!(stored.access_token, tokens.access_token);
    assert_eq!(stored.refresh_token, tokens.refresh_token);
    hub.close().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_a_login_and_no_token_shows_in_the_error() {
    let knobs = AuthKnobs {
        clients: vec![TestClient {
            id: "app".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into()],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let tokens = auth.login("app", "alice");
    let refresh = tokens.refresh_token.clone().unwrap();
    let record = TokenRecord::new(tokens.access_token.clone(), Some(tokens.expires_in))
        .with_refresh(refresh.clone(), auth.token_endpoint(), "app");
    let store = Arc::new(MemoryStore::new());
    let key = TokenKey {
        server: "api".into(),
        url: server.url(),
        principal: "shared".into(),
    };
    store.save(&key, &record).await.unwrap();
    auth.revoke(&tokens.access_token);
    auth.revoke(&refresh);
    let hub = start(&config(&server.url(), "kind = \"oauth\""), store.clone()).await;
    let (_, error) = hub
        .failures()
        .first()
        .expect("the server fails to register");
    let failure = error.report().auth.expect("a sign-in failure");
    assert_eq!(failure.step, AuthStep::Token);
    assert_eq!(failure.error.as_deref(), Some("invalid_grant"));
    assert!(failure.needs_login);
    let text = format!(
        "{error} {error:?} {}",
        serde_json::to_string(&error.report()).unwrap()
    );
    assert!(
        !text.contains(&tokens.access_token) && !text.contains(&refresh),
        "{text}"
    );
    // The dead record is gone, so the next run does not try it again.
    assert!(store.load(&key).await.unwrap().is_none());
    assert_eq!(auth.token_requests("refresh_token"), 1, "no loop");
    hub.close().await;
}

#[tokio::test]
async fn the_file_store_keeps_tokens_private_and_refuses_readable_files() {
    let (auth, server) = protected(bot_with_secret()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()));
    let config = config(&server.url(), &cc_secret(SECRET));
    let hub = start(&config, store.clone()).await;
    assert_started(&hub);
    whoami(&hub).await;
    hub.close().await;

    let key = TokenKey {
        server: "api".into(),
        url: server.url(),
        principal: "shared".into(),
    };
    let file = store.path_of(&key);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let stored = std::fs::read_to_string(&file).unwrap();
    assert!(
        !stored.contains(SECRET),
        "the client secret is never stored"
    );

    // Another hub (another process, as far as the store knows) reuses the stored token.
    let again = start(&config, store.clone()).await;
    assert_started(&again);
    whoami(&again).await;
    assert_eq!(auth.token_requests("client_credentials"), 1);
    again.close().await;

    // A token file others can read is refused, with the command that fixes it.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = start(&config, store.clone()).await;
    let (_, error) = refused
        .failures()
        .first()
        .expect("a readable token file is refused");
    let failure = error.report().auth.expect("a sign-in failure");
    assert_eq!(failure.step, AuthStep::Store);
    assert!(error.to_string().contains("chmod 600"), "{error}");
    assert!(!error.to_string().contains(&stored), "{error}");
    refused.close().await;
}

#[tokio::test]
async fn calls_refused_at_once_share_one_new_token() {
    let (auth, server) = protected(bot_with_secret()).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    whoami(&hub).await;
    auth.revoke_all_access();
    let calls = (0..8).map(|_| whoami(&hub));
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer["subject"], "bot");
    }
    // One exchange at start, one after the revocation, however many calls were refused.
    assert_eq!(auth.token_requests("client_credentials"), 2);
    hub.close().await;
}

#[tokio::test]
async fn no_token_or_secret_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    // The engine's own lines and its HTTP clients', at every level (the testkit's servers
    // log in this process too, and are not the engine).
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "switchboard=trace,reqwest=trace,hyper_util=trace,rmcp::transport::streamable_http_client=trace",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let (auth, server) = protected(bot_with_secret()).await;
    let hub = start(
        &config(&server.url(), &cc_secret(SECRET)),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert_started(&hub);
    whoami(&hub).await;
    auth.revoke_all_access();
    whoami(&hub).await;
    hub.close().await;
    let wrong = start(
        &config(&server.url(), &cc_secret("wrong-s3cret")),
        Arc::new(MemoryStore::new()),
    )
    .await;
    assert!(!wrong.failures().is_empty());
    wrong.close().await;
    drop(guard);

    let logs = captured.text();
    assert!(logs.contains("the server refused the token"), "{logs}");
    for secret in [SECRET, "wrong-s3cret", "Basic "] {
        assert!(!logs.contains(secret), "{secret:?} in the logs:\n{logs}");
    }
    // The testkit's access tokens are `at-` and 32 hex digits.
    let token_like = logs.match_indices("at-").any(|(i, _)| {
        let rest = &logs[i + 3..];
        rest.len() >= 32 && rest[..32].chars().all(|c| c.is_ascii_hexdigit())
    });
    assert!(!token_like, "an access token in the logs:\n{logs}");
}

#[tokio::test]
async fn per_session_connections_use_each_sessions_own_token() {
    sessions_use_their_own_tokens(Lifecycle::Classic).await;
}

/// A 2026-07-28 server's sessions could ride the shared connection as headers; a server
/// that signs in gives each its own connection instead, so no request carries the
/// server's token for a session.
#[tokio::test]
async fn per_session_tokens_on_a_2026_server_never_ride_the_shared_connection() {
    sessions_use_their_own_tokens(Lifecycle::Both).await;
}

async fn sessions_use_their_own_tokens(lifecycle: Lifecycle) {
    let knobs = AuthKnobs {
        clients: vec![TestClient {
            id: "app".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into()],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected_speaking(knobs, lifecycle).await;
    let store = Arc::new(MemoryStore::new());
    // The shared connection signs in as the server's principal, each session as itself.
    for (principal, subject) in [("shared", "service"), ("alice", "alice"), ("bob", "bob")] {
        let tokens = auth.login("app", subject);
        let record = TokenRecord::new(tokens.access_token, Some(tokens.expires_in)).with_refresh(
            tokens.refresh_token.unwrap(),
            auth.token_endpoint(),
            "app",
        );
        let key = TokenKey {
            server: "api".into(),
            url: server.url(),
            principal: principal.into(),
        };
        store.save(&key, &record).await.unwrap();
    }
    let text = format!(
        "[servers.api]\nurl = \"{}\"\nsession_mode = \"per_session\"\n[servers.api.auth]\nkind = \"oauth\"\n",
        server.url()
    );
    let config = Config::from_toml_str(&text, None).unwrap();
    let hub = start(&config, store).await;
    assert_started(&hub);
    let who = |session: Option<switchboard::Session>| {
        let hub = hub.clone();
        async move {
            let outcome = hub
                .call_in(session.as_ref(), "api__whoami", None, None)
                .await
                .unwrap_or_else(|e| panic!("whoami: {e}"));
            serde_json::from_str::<Value>(&outcome.text()).unwrap()["subject"].clone()
        }
    };
    let alice = switchboard::Session::new("alice", Default::default());
    let bob = switchboard::Session::new("bob", Default::default());
    assert_eq!(who(Some(alice.clone())).await, "alice");
    assert_eq!(who(Some(bob)).await, "bob");
    assert_eq!(who(None).await, "service");
    assert_eq!(who(Some(alice)).await, "alice");
    hub.close().await;
}
