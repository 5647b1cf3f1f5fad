//! The interactive sign-in (authorization code + PKCE) against the testkit's authorization
//! server (dynamic registration, `/authorize` that redirects at once, PKCE checked at the
//! token endpoint) and its MCP server as the protected resource, over loopback. The
//! "browser" is an [`Opener`] that GETs the authorization URL and follows the redirect to
//! the engine's loopback callback, as a person's browser would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use switchboard::auth::{
    FileStore, MemoryStore, Opener, RegistrationKey, TokenKey, TokenRecord, TokenStore,
};
use switchboard::{AuthStep, Config, Error, ErrorClass, Hub};
use switchboard_testkit::{
    AuthKnobs, AuthServer, HttpMode, Knobs, RunningServer, serve_streamable_http,
};

const STEP: Duration = Duration::from_secs(20);

/// A browser that follows the authorization server's redirect; counts the URLs it opened.
#[derive(Default)]
pub(crate) struct Browser {
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

/// `api` at `url`, with an `[auth]` table when `auth` is given (else `kind = "auto"`, as
/// an `mcpServers` entry with only a URL).
fn config(url: &str, auth: Option<&str>) -> Config {
    let table = auth.map_or(String::new(), |a| format!("[servers.api.auth]\n{a}\n"));
    Config::from_toml_str(&format!("[servers.api]\nurl = \"{url}\"\n{table}"), None)
        .expect("config")
}

pub(crate) async fn start(
    config: &Config,
    store: Arc<dyn TokenStore>,
    browser: Option<Arc<Browser>>,
) -> Hub {
    let mut builder = Hub::builder().config(config).token_store(store);
    if let Some(browser) = browser {
        builder = builder.opener(browser);
    }
    tokio::time::timeout(STEP, builder.start())
        .await
        .expect("hub start within the step bound")
        .expect("hub start")
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

async fn stored(store: &MemoryStore, server: &RunningServer) -> TokenRecord {
    store
        .load(&key(server))
        .await
        .unwrap()
        .expect("a stored record")
}

#[tokio::test]
async fn a_url_only_server_signs_in_through_the_opener_then_calls() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    auth.set_next_subject("alice");
    let store = Arc::new(MemoryStore::new());
    let browser = Arc::new(Browser::default());
    let hub = start(
        &config(&server.url(), None),
        store.clone(),
        Some(browser.clone()),
    )
    .await;
    let me = whoami(&hub).await.expect("whoami after signing in");
    assert_eq!(me["subject"], "alice");
    assert!(me["client_id"].as_str().unwrap().starts_with("dc-"), "{me}");
    assert_eq!(browser.opened.load(Ordering::SeqCst), 1);
    assert_eq!((auth.registrations(), auth.authorizations()), (1, 1));
    let asked = auth.last_authorization();
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["resource"], server.url());
    assert_eq!(asked["scope"], "mcp", "the PRM's scopes_supported");
    assert!(asked["redirect_uri"].starts_with("http://127.0.0.1:"));
    // The registered client (Basic: the server does not list `none`) is kept for refresh.
    let record = stored(&store, &server).await;
    assert!(record.refresh_token.is_some() && record.client_secret.is_some());
    assert_eq!(
        record.client_auth_method.as_deref(),
        Some("client_secret_basic")
    );
    hub.close().await;
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_without_signing_in_again() {
    let knobs = AuthKnobs {
        access_ttl: Duration::from_secs(2),
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let store = Arc::new(MemoryStore::new());
    let browser = Arc::new(Browser::default());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let hub = start(&cfg, store.clone(), Some(browser.clone())).await;
    whoami(&hub).await.expect("first call");
    // Renewed at half the 2 s lifetime, before the server would refuse it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    whoami(&hub).await.expect("call after the refresh");
    assert_eq!(auth.token_requests("refresh_token"), 1);
    assert_eq!(auth.token_requests("authorization_code"), 1);
    assert_eq!(
        browser.opened.load(Ordering::SeqCst),
        1,
        "no second sign-in"
    );
    assert_eq!(
        auth.rejected(),
        1,
        "only the first, tokenless request was refused"
    );
    hub.close().await;
}

#[tokio::test]
async fn a_revoked_refresh_token_is_a_sign_in_error_at_token_without_a_loop() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    let store = Arc::new(MemoryStore::new());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let first = start(&cfg, store.clone(), Some(Arc::new(Browser::default()))).await;
    whoami(&first).await.expect("signed in");
    first.close().await;
    let record = stored(&store, &server).await;
    auth.revoke(&record.access_token);
    auth.revoke(record.refresh_token.as_deref().unwrap());

    // No opener (a gateway, CI): the dead refresh token is the end of it.
    let hub = start(&cfg, store.clone(), None).await;
    let (_, error) = hub.failures().first().expect("the server needs a sign-in");
    let failure = error.auth_failure().expect("a sign-in failure");
    assert_eq!(failure.step, AuthStep::Token);
    assert_eq!(failure.error.as_deref(), Some("invalid_grant"));
    assert!(failure.needs_login);
    assert_eq!(error.class(), ErrorClass::Auth);
    let text = error.to_string();
    assert!(
        !text.contains(&record.access_token) && !text.contains("rt-"),
        "{text}"
    );
    assert_eq!(
        auth.token_requests("refresh_token"),
        1,
        "one refresh, no loop"
    );
    assert_eq!(auth.authorizations(), 1);
    assert!(
        store.load(&key(&server)).await.unwrap().is_none(),
        "the dead record is gone"
    );
    hub.close().await;
}

#[tokio::test]
async fn with_an_opener_a_revoked_refresh_token_signs_in_again_once() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    let store = Arc::new(MemoryStore::new());
    let browser = Arc::new(Browser::default());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let hub = start(&cfg, store.clone(), Some(browser.clone())).await;
    whoami(&hub).await.expect("signed in");
    let record = stored(&store, &server).await;
    auth.revoke(&record.access_token);
    auth.revoke(record.refresh_token.as_deref().unwrap());
    auth.set_next_subject("bob");
    // Mid-session: the 401, the refused refresh, then one inline sign-in and the resend.
    let me = whoami(&hub).await.expect("call after signing in again");
    assert_eq!(me["subject"], "bob");
    assert_eq!(browser.opened.load(Ordering::SeqCst), 2);
    assert_eq!(auth.token_requests("refresh_token"), 1);
    assert_eq!(auth.registrations(), 1, "the kept client signs in again");
    hub.close().await;
}

#[tokio::test]
async fn a_registered_client_is_kept_per_issuer_and_reused_by_every_principal() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::new(dir.path()));
    let browser = Arc::new(Browser::default());
    auth.set_next_subject("alice");
    let alice = start(
        &config(&server.url(), Some("kind = \"oauth\"")),
        store.clone(),
        Some(browser.clone()),
    )
    .await;
    let first = whoami(&alice).await.expect("alice signed in");
    alice.close().await;
    auth.set_next_subject("bob");
    let bob = start(
        &config(&server.url(), Some("kind = \"oauth\"\nprincipal = \"bob\"")),
        store.clone(),
        Some(browser.clone()),
    )
    .await;
    let second = whoami(&bob).await.expect("bob signed in");
    bob.close().await;
    assert_eq!(
        (first["subject"].as_str(), second["subject"].as_str()),
        (Some("alice"), Some("bob"))
    );
    assert_eq!(first["client_id"], second["client_id"], "one client");
    assert_eq!((auth.registrations(), auth.authorizations()), (1, 2));
    let kept = store.registration_path(&RegistrationKey {
        issuer: auth.issuer().to_owned(),
        redirect_port: None,
    });
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&kept).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_kept_client_the_server_refuses_is_forgotten_and_registered_again() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    let store = Arc::new(MemoryStore::new());
    let browser = Arc::new(Browser::default());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let hub = start(&cfg, store.clone(), Some(browser.clone())).await;
    whoami(&hub).await.expect("signed in");
    hub.close().await;
    // The server no longer takes the kept client's secret (rotated, or the client dropped).
    let kept_at = RegistrationKey {
        issuer: auth.issuer().to_owned(),
        redirect_port: None,
    };
    let mut kept = store
        .load_registration(&kept_at)
        .await
        .unwrap()
        .expect("kept");
    kept.client_secret = Some("stale".into());
    store.save_registration(&kept_at, &kept).await.unwrap();
    store.remove(&key(&server)).await.unwrap();

    let refused = start(&cfg, store.clone(), Some(browser.clone())).await;
    let failures = refused.failures();
    let (_, error) = failures.first().expect("the sign-in fails");
    let failure = error.auth_failure().expect("a sign-in failure");
    assert_eq!(
        (failure.step, failure.error.as_deref()),
        (AuthStep::Token, Some("invalid_client"))
    );
    assert!(!error.to_string().contains("stale"), "{error}");
    assert!(
        store.load_registration(&kept_at).await.unwrap().is_none(),
        "forgotten"
    );
    refused.close().await;

    let again = start(&cfg, store.clone(), Some(browser)).await;
    whoami(&again)
        .await
        .expect("signed in with a new registration");
    assert_eq!(auth.registrations(), 2);
    again.close().await;
}

#[tokio::test]
async fn without_an_opener_a_server_that_asks_needs_auth_and_nothing_is_sent_to_the_as() {
    let (auth, server) = protected(AuthKnobs::default()).await;
    let hub = start(
        &config(&server.url(), None),
        Arc::new(MemoryStore::new()),
        None,
    )
    .await;
    let (_, error) = hub.failures().first().expect("the server needs a sign-in");
    assert_eq!(error.class(), ErrorClass::Auth);
    assert!(error.auth_failure().unwrap().needs_login);
    assert_eq!((auth.registrations(), auth.authorizations()), (0, 0));
    hub.close().await;
}

#[tokio::test]
async fn a_call_needing_more_scope_steps_up_once_with_the_union_of_scopes() {
    let knobs = AuthKnobs {
        tool_scopes: vec![("whoami".into(), "admin".into())],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let browser = Arc::new(Browser::default());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let hub = start(&cfg, Arc::new(MemoryStore::new()), Some(browser.clone())).await;
    assert_eq!(auth.last_authorization()["scope"], "mcp");
    // 403 insufficient_scope "admin": one more authorization, for both scopes, then resent.
    whoami(&hub).await.expect("whoami after the step-up");
    assert_eq!(browser.opened.load(Ordering::SeqCst), 2);
    assert_eq!(auth.last_authorization()["scope"], "mcp admin");
    whoami(&hub).await.expect("the stepped-up token is kept");
    assert_eq!(auth.authorizations(), 2);
    hub.close().await;
}

#[tokio::test]
async fn a_server_that_moved_to_another_authorization_server_gets_a_new_sign_in_there() {
    // Tokens from the old authorization server are stored; the server now names a new one.
    let old = AuthServer::start(AuthKnobs::default()).await.unwrap();
    let (new, server) = protected(AuthKnobs::default()).await;
    let issued = old.login("old-client", "alice");
    let mut record = TokenRecord::new(issued.access_token, Some(issued.expires_in)).with_refresh(
        issued.refresh_token.unwrap(),
        old.token_endpoint(),
        "old-client",
    );
    record.issuer = Some(old.issuer().to_owned());
    let store = Arc::new(MemoryStore::new());
    store.save(&key(&server), &record).await.unwrap();
    new.set_next_subject("alice-at-new");
    let browser = Arc::new(Browser::default());
    let cfg = config(&server.url(), Some("kind = \"oauth\""));
    let hub = start(&cfg, store.clone(), Some(browser.clone())).await;
    let me = whoami(&hub)
        .await
        .expect("whoami after signing in at the new server");
    assert_eq!(me["subject"], "alice-at-new");
    assert_eq!(
        old.token_requests("refresh_token"),
        0,
        "the old server is left alone"
    );
    assert_eq!(
        (new.registrations(), browser.opened.load(Ordering::SeqCst)),
        (1, 1)
    );
    let now = stored(&store, &server).await;
    assert_eq!(now.issuer.as_deref(), Some(new.issuer()));
    hub.close().await;
}

#[tokio::test]
async fn a_pre_registered_client_with_a_private_key_signs_in_and_refreshes_with_private_key_jwt() {
    let (client, pem) = switchboard_testkit::TestClient::with_es256_key("signer");
    let knobs = AuthKnobs {
        clients: vec![client],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, pem).unwrap();
    let table = format!(
        "kind = \"oauth\"\nclient_id = \"signer\"\nprivate_key_file = \"{}\"",
        key_file.display()
    );
    let store = Arc::new(MemoryStore::new());
    let hub = start(
        &config(&server.url(), Some(&table)),
        store.clone(),
        Some(Arc::new(Browser::default())),
    )
    .await;
    assert_eq!(
        whoami(&hub).await.expect("signed in")["client_id"],
        "signer"
    );
    assert_eq!(auth.token_requests("authorization_code"), 1);
    assert_eq!(auth.last_token_request()["auth_method"], "private_key_jwt");
    assert_eq!(
        auth.registrations(),
        0,
        "a pre-registered client registers nothing"
    );
    let record = stored(&store, &server).await;
    auth.revoke(&record.access_token);
    whoami(&hub).await.expect("refreshed");
    assert_eq!(auth.token_requests("refresh_token"), 1);
    assert_eq!(auth.last_token_request()["auth_method"], "private_key_jwt");
    hub.close().await;
}

/// A browser that notes, at each sign-in it is shown, how many codes the authorization
/// server has exchanged by then.
struct CountingBrowser {
    auth: switchboard_testkit::AuthServerHandle,
    seen: std::sync::Mutex<Vec<usize>>,
}

impl Opener for CountingBrowser {
    fn open(&self, server: &str, url: &str) -> Result<(), String> {
        let exchanged = self.auth.token_requests("authorization_code");
        self.seen.lock().unwrap().push(exchanged);
        Browser::default().open(server, url)
    }
}

#[tokio::test]
async fn two_servers_asking_at_once_are_signed_in_one_after_the_other() {
    let (auth, one) = protected(AuthKnobs::default()).await;
    let two = serve_streamable_http(
        Knobs {
            oauth: Some(auth.handle()),
            ..Knobs::default()
        },
        HttpMode::Stateful,
    )
    .await
    .expect("mcp server");
    let text = format!(
        "[servers.one]\nurl = \"{}\"\n[servers.two]\nurl = \"{}\"\n",
        one.url(),
        two.url()
    );
    let config = Config::from_toml_str(&text, None).expect("config");
    let browser = Arc::new(CountingBrowser {
        auth: auth.handle(),
        seen: Default::default(),
    });
    let hub = tokio::time::timeout(
        STEP,
        Hub::builder()
            .config(&config)
            .token_store(Arc::new(MemoryStore::new()))
            .opener(browser.clone())
            .start(),
    )
    .await
    .expect("hub start within the step bound")
    .expect("hub start");
    assert!(hub.failures().is_empty(), "{:?}", hub.failures());
    // The second sign-in was shown only after the first one's code was exchanged.
    assert_eq!(*browser.seen.lock().unwrap(), [0, 1]);
    hub.close().await;
}

#[tokio::test]
async fn offline_access_is_asked_for_with_consent_when_offered() {
    let knobs = AuthKnobs {
        scopes_supported: vec!["mcp".into(), "offline_access".into()],
        ..AuthKnobs::default()
    };
    let (auth, server) = protected(knobs).await;
    let hub = start(
        &config(&server.url(), None),
        Arc::new(MemoryStore::new()),
        Some(Arc::new(Browser::default())),
    )
    .await;
    whoami(&hub).await.expect("signed in");
    let asked = auth.last_authorization();
    assert_eq!(asked["scope"], "mcp offline_access");
    assert_eq!(asked["prompt"], "consent");
    hub.close().await;
}
