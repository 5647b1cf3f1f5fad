//! The test authorization server on its own: metadata, the token endpoint's grants and
//! client authentication, errors in RFC 6749 form, control and counters; and the MCP
//! server as its protected resource (401 challenge, PRM).

use std::time::Duration;

use serde_json::Value;
use switchboard_testkit::oauth::PRM_PATH;
use switchboard_testkit::{
    AuthKnobs, AuthServer, HttpMode, Knobs, TestClient, serve_streamable_http,
};

async fn server() -> AuthServer {
    AuthServer::start(AuthKnobs {
        clients: vec![TestClient::with_secret("bot", "pw")],
        access_ttl: Duration::from_secs(60),
        ..AuthKnobs::default()
    })
    .await
    .unwrap()
}

async fn token(
    auth: &AuthServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('%', "%25").replace('&', "%26")))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = reqwest::Client::new()
        .post(auth.token_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn metadata_names_the_issuer_and_the_token_endpoint() {
    let auth = server().await;
    let url = format!("{}/.well-known/oauth-authorization-server", auth.issuer());
    let metadata: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], auth.issuer());
    assert_eq!(metadata["token_endpoint"], auth.token_endpoint());
}

#[tokio::test]
async fn client_credentials_by_basic_or_post_and_bad_secrets_are_invalid_client() {
    let auth = server().await;
    let grant = [("grant_type", "client_credentials")];
    let (status, body) = token(&auth, &grant, Some(("bot", "pw"))).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(auth.check(access).unwrap().subject, "bot");
    assert!(body.get("refresh_token").is_none());
    let post = [
        ("grant_type", "client_credentials"),
        ("client_id", "bot"),
        ("client_secret", "pw"),
    ];
    assert_eq!(token(&auth, &post, None).await.0, 200);
    let (status, body) = token(&auth, &grant, Some(("bot", "nope"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(auth.token_requests("client_credentials"), 3);
    auth.revoke(access);
    assert!(auth.check(access).is_none());
}

#[tokio::test]
async fn refresh_tokens_work_until_revoked_and_expire_all_expires() {
    let auth = AuthServer::start(AuthKnobs {
        clients: vec![TestClient {
            id: "app".into(),
            secret: None,
            public_key: None,
        }],
        auth_methods: vec!["none".into()],
        ..AuthKnobs::default()
    })
    .await
    .unwrap();
    let tokens = auth.login("app", "alice");
    let refresh = tokens.refresh_token.clone().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", "app"),
    ];
    let (status, body) = token(&auth, &form, None).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(auth.check(&fresh).unwrap().subject, "alice");
    auth.expire_all();
    assert!(auth.check(&fresh).is_none());
    auth.revoke(&refresh);
    let (status, body) = token(&auth, &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn the_protected_resource_challenges_and_serves_its_metadata() {
    let auth = server().await;
    let mcp = serve_streamable_http(
        Knobs {
            oauth: Some(auth.handle()),
            ..Knobs::default()
        },
        HttpMode::Stateless,
    )
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .post(mcp.url())
        .header("authorization", "Bearer made-up")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    let prm_url = format!("http://{}{PRM_PATH}", mcp.addr);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let prm: Value = reqwest::get(prm_url).await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], mcp.url());
    assert_eq!(prm["authorization_servers"][0], auth.issuer());
    assert_eq!(auth.rejected(), 1);
}
