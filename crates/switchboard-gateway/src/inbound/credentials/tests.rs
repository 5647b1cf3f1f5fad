use std::time::Duration;

use serde_json::json;
use switchboard::config::{JwksSource, KeyHash};
use switchboard_testkit::oauth::{Alg, TokenIssuer};

use super::*;

const ISS: &str = "https://idp.test";
const AUD: &str = "https://mcp.test/mcp";

fn config(jwks: &std::path::Path) -> InboundAuthConfig {
    let hash: [u8; 32] = Sha256::digest(b"ci-key").into();
    InboundAuthConfig {
        resource: None,
        api_keys: BTreeMap::from([("ci".to_string(), KeyHash(hash))]),
        claims: BTreeMap::from([
            ("sub".to_string(), "user".to_string()),
            ("https://x/tenant".to_string(), "tenant".to_string()),
        ]),
        jwt: Some(JwtConfig {
            jwks: JwksSource::File(jwks.to_path_buf()),
            issuer: ISS.into(),
            audience: AUD.into(),
            required_scopes: vec!["mcp".into()],
            jwks_cache: Duration::from_secs(300),
            authorization_servers: vec![ISS.into()],
        }),
    }
}

/// An issuer and a directory holding its `jwks.json`.
fn issuer_with_jwks_file() -> (TokenIssuer, tempfile::TempDir) {
    let issuer = TokenIssuer::new(ISS);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jwks.json"), issuer.jwks().to_string()).unwrap();
    (issuer, dir)
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}

#[tokio::test]
async fn api_keys_and_tokens_become_identities_with_claim_variables() {
    let (issuer, dir) = issuer_with_jwks_file();
    let jwks = dir.path().join("jwks.json");
    let auth = Authenticator::new(&config(&jwks));
    assert_eq!(auth.load_keys().await.unwrap(), Some(2));

    let key = auth.authenticate(&bearer_headers("ci-key")).await.unwrap();
    assert_eq!(&*key.principal, "key:ci");
    assert_eq!(
        key.variables,
        BTreeMap::from([("user".into(), "ci".into())])
    );

    let token = issuer.access_token(
        Alg::Rs256,
        "alice",
        AUD,
        "read mcp",
        json!({"https://x/tenant": "acme", "groups": ["a"]}),
    );
    let alice = auth.authenticate(&bearer_headers(&token)).await.unwrap();
    assert_eq!(&*alice.principal, "jwt:alice");
    assert_eq!(alice.variables["user"], "alice");
    assert_eq!(alice.variables["tenant"], "acme");
}

#[tokio::test]
async fn refusals_say_why() {
    let (issuer, dir) = issuer_with_jwks_file();
    let jwks = dir.path().join("jwks.json");
    let auth = Authenticator::new(&config(&jwks));

    let missing = auth.authenticate(&HeaderMap::new()).await.unwrap_err();
    assert!(matches!(missing, Refusal::Missing), "{missing}");
    let mut basic = HeaderMap::new();
    basic.insert(
        http::header::AUTHORIZATION,
        "Basic Y2k6a2V5".parse().unwrap(),
    );
    assert!(matches!(
        auth.authenticate(&basic).await,
        Err(Refusal::Missing)
    ));

    let wrong = auth
        .authenticate(&bearer_headers("wrong-key"))
        .await
        .unwrap_err();
    assert!(matches!(wrong, Refusal::Invalid(_)), "{wrong}");
    assert!(!wrong.to_string().contains("wrong-key"), "{wrong}");

    let unscoped = issuer.access_token(Alg::Es256, "bob", AUD, "read", json!({}));
    match auth.authenticate(&bearer_headers(&unscoped)).await {
        Err(Refusal::InsufficientScope(missing)) => assert_eq!(missing, ["mcp"]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rotated_key_is_found_by_reloading_the_set() {
    let (issuer, dir) = issuer_with_jwks_file();
    let jwks = dir.path().join("jwks.json");
    let served = issuer.serve_jwks().await.unwrap();
    // From the file.
    rotation(&issuer, Authenticator::new(&config(&jwks)), || {
        issuer.publish();
        std::fs::write(&jwks, issuer.jwks().to_string()).unwrap();
    })
    .await;
    // From the URL.
    let mut by_url = config(&jwks);
    by_url.jwt.as_mut().unwrap().jwks = JwksSource::Url(served.url());
    let fetched = issuer.fetches();
    rotation(&issuer, Authenticator::new(&by_url), || issuer.publish()).await;
    assert_eq!(
        issuer.fetches() - fetched,
        2,
        "loaded at first use and after the rotation"
    );
}

/// A token signed with a key the set lacks is refused until the set is reloaded, which
/// happens at most every `min_reload`. `publish` makes the new key part of the set.
async fn rotation(issuer: &TokenIssuer, mut auth: Authenticator, publish: impl Fn()) {
    let min_reload = |auth: &mut Authenticator, every: Duration| {
        let keys = &mut auth.jwt.as_mut().unwrap().1;
        Arc::get_mut(keys).expect("not shared yet").min_reload = every;
    };
    min_reload(&mut auth, Duration::from_secs(3600));
    // The set is loaded on first use.
    let before = issuer.access_token(Alg::Es256, "alice", AUD, "mcp", json!({}));
    auth.authenticate(&bearer_headers(&before)).await.unwrap();

    issuer.rotate();
    publish();
    let after = issuer.access_token(Alg::Es256, "alice", AUD, "mcp", json!({}));
    // The set was loaded less than the reload interval ago: the unknown kid is refused
    // without loading it again...
    let refused = auth
        .authenticate(&bearer_headers(&after))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("no key of the key set"),
        "{refused}"
    );
    // ... and found once the interval has passed.
    min_reload(&mut auth, Duration::ZERO);
    auth.authenticate(&bearer_headers(&after)).await.unwrap();
    // A token of a key nobody published is refused after its reload too.
    let unknown = TokenIssuer::new(ISS);
    unknown.rotate();
    let stranger = unknown.access_token(Alg::Es256, "eve", AUD, "mcp", json!({}));
    assert!(auth.authenticate(&bearer_headers(&stranger)).await.is_err());
    min_reload(&mut auth, Duration::from_secs(3600));
}

#[tokio::test]
async fn tokens_are_unavailable_not_invalid_while_no_keys_can_be_had() {
    let (issuer, dir) = issuer_with_jwks_file();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut down = config(&dir.path().join("jwks.json"));
    down.jwt.as_mut().unwrap().jwks = JwksSource::Url(format!(
        "http://127.0.0.1:{port}/jwks.json?key=secret-query"
    ));
    let auth = Authenticator::new(&down);
    assert!(auth.load_keys().await.is_err());
    let token = issuer.access_token(Alg::Es256, "alice", AUD, "mcp", json!({}));
    match auth.authenticate(&bearer_headers(&token)).await {
        // Not 401: the token may be fine.
        Err(Refusal::Unavailable(why)) => {
            let text = why.to_string();
            assert!(
                text.contains(&format!(
                    "jwks_url http://127.0.0.1:{port}/jwks.json: cannot connect"
                )),
                "{text}"
            );
            assert!(!text.contains("secret-query"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // API keys still work.
    assert!(auth.authenticate(&bearer_headers("ci-key")).await.is_ok());
}
