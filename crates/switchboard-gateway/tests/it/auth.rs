//! Inbound authentication (`[gateway.auth]`) with the official TypeScript and Python SDK
//! clients and reqwest: API keys, JWTs verified against a JWKS file and a JWKS served over
//! HTTP, refusals (401 + `WWW-Authenticate` + protected resource metadata, 403
//! `insufficient_scope`), claims → session variables → upstream headers, and sessions that
//! serve only their own caller.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_testkit::RunningServer;
use switchboard_testkit::oauth::{Alg, TokenIssuer};

use crate::common::{
    TestGateway, mcp_post, ok_text, open_session, python_client, testkit, toml_string, ts_client,
};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "https://mcp.test/mcp";
/// An API key (the config holds only its SHA-256).
const API_KEY: &str = "ci-secret-key";

/// A shared testkit (`kit`) and a per-session one (`private`) whose connections carry the
/// caller's `sub` claim as `X-User`; `auth` is the `[gateway.auth]` table's body.
fn config(kit: &RunningServer, private: &RunningServer, auth: &str) -> String {
    format!(
        "[gateway.auth]\n{auth}\n\n[variables]\nuser = \"nobody\"\n\n\
         [servers.kit]\nurl = {}\n\n\
         [servers.private]\nurl = {}\nsession_mode = \"per_session\"\n\
         headers = {{ \"X-User\" = \"${{user}}\" }}\n",
        toml_string(&kit.url()),
        toml_string(&private.url()),
    )
}

/// The key's hash as docs/gateway.md says to make it: `printf %s KEY | sha256sum`.
fn api_key_hash() -> String {
    let output = std::process::Command::new("sh")
        .args(["-c", &format!("printf %s '{API_KEY}' | sha256sum")])
        .output()
        .expect("sh and sha256sum run");
    let text = String::from_utf8(output.stdout).unwrap();
    text.split_whitespace().next().expect("a hash").to_string()
}

/// `[gateway.auth]` with the API key and JWTs from `jwks` (`jwks_file = …` or
/// `jwks_url = …`), requiring the scope `mcp`, mapping `sub` to `${user}`.
fn auth_table(jwks: &str) -> String {
    format!(
        "api_keys = {{ ci = \"{}\" }}\nclaims = {{ sub = \"user\" }}\n\n\
         [gateway.auth.jwt]\n{jwks}\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\n\
         required_scopes = [\"mcp\"]\n",
        api_key_hash()
    )
}

fn bearer(token: &str) -> Value {
    json!({ "Authorization": format!("Bearer {token}") })
}

/// A JWKS file for `issuer` in a temporary directory, as a `jwks_file = …` line.
fn jwks_file(issuer: &TokenIssuer, dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, issuer.jwks().to_string()).unwrap();
    format!("jwks_file = {}", toml_string(&path.to_string_lossy()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_lets_the_sdk_clients_in_and_nothing_else_does() {
    let setup = Setup::with_jwks_file().await;
    let gateway = &setup.gateway;
    let url = gateway.url("/mcp");
    let steps = json!([
        {"op": "list"},
        {"op": "call", "name": "kit__echo", "arguments": {"message": "with a key"}},
    ]);

    let ts = ts_client(&url, bearer(API_KEY), steps.clone()).await;
    assert!(
        ts[0]["tools"].as_array().is_some_and(|t| !t.is_empty()),
        "{ts:?}"
    );
    assert_eq!(ok_text(&ts[1]), "with a key");
    let python = python_client(&url, bearer(API_KEY), steps.clone()).await;
    assert_eq!(ok_text(&python[1]), "with a key");

    // Without a credential, or with a wrong one: refused before any MCP.
    for headers in [json!({}), bearer("not-the-key")] {
        let refused = ts_client(&url, headers.clone(), steps.clone()).await;
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0]["code"], json!(401), "{headers}: {refused:?}");
        let refused = python_client(&url, headers.clone(), steps.clone()).await;
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0]["connect_error"].is_string(),
            "{headers}: {refused:?}"
        );
    }

    // What an MCP client sees: 401, a challenge naming the metadata, the metadata.
    let http = reqwest::Client::new();
    let response = http.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        gateway.addr
    );
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"mcp\"")
    );
    let wrong = http.post(&url).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let challenge = wrong.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body = wrong.text().await.unwrap();
    assert!(
        !body.contains("nope"),
        "the credential is not echoed: {body}"
    );

    let metadata: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["resource"],
        json!(format!("http://{}/mcp", gateway.addr))
    );
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert_eq!(metadata["scopes_supported"], json!(["mcp"]));

    // REST takes the same credentials; only /healthz is open.
    let tools = gateway.url("/v1/tools");
    assert_eq!(
        http.get(&tools).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let listed = http.get(&tools).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let call = http
        .post(gateway.url("/v1/tools/kit__echo/call"))
        .bearer_auth(API_KEY)
        .json(&json!({"message": "rest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), StatusCode::OK);
    for (path, status) in [
        ("/healthz", StatusCode::OK),
        // Probes carry no credential (kubelet cannot take one from a Secret).
        ("/readyz", StatusCode::OK),
        ("/v1/health", StatusCode::UNAUTHORIZED),
    ] {
        let response = http.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_verify_against_a_jwks_file_or_url_and_need_their_scopes() {
    let (kit, private) = (testkit().await, testkit().await);
    let issuer = TokenIssuer::new(ISSUER);
    let served = issuer.serve_jwks().await.unwrap();
    let toml = config(
        &kit,
        &private,
        &auth_table(&format!("jwks_url = {}", toml_string(&served.url()))),
    );
    let gateway = TestGateway::start(&toml).await;
    let url = gateway.url("/mcp");
    let steps = json!([{"op": "call", "name": "kit__echo", "arguments": {"message": "jwt"}}]);

    let es256 = issuer.access_token(Alg::Es256, "alice", AUDIENCE, "mcp", json!({}));
    let rs256 = issuer.access_token(Alg::Rs256, "bob", AUDIENCE, "openid mcp", json!({}));
    let ts = ts_client(&url, bearer(&es256), steps.clone()).await;
    assert_eq!(ok_text(&ts[0]), "jwt");
    let python = python_client(&url, bearer(&rs256), steps.clone()).await;
    assert_eq!(ok_text(&python[0]), "jwt");

    // Another audience, another issuer's keys: 401.
    let elsewhere = issuer.access_token(Alg::Es256, "alice", "https://other/mcp", "mcp", json!({}));
    let stranger =
        TokenIssuer::new(ISSUER).access_token(Alg::Es256, "eve", AUDIENCE, "mcp", json!({}));
    for token in [elsewhere, stranger] {
        let refused = ts_client(&url, bearer(&token), steps.clone()).await;
        assert_eq!(refused[0]["code"], json!(401), "{refused:?}");
    }

    // The key set was fetched once (at start or on first use) and kept.
    assert_eq!(issuer.fetches(), 1);

    // Without the required scope: 403 insufficient_scope, naming it.
    let unscoped = issuer.access_token(Alg::Es256, "alice", AUDIENCE, "openid", json!({}));
    let refused = ts_client(&url, bearer(&unscoped), steps.clone()).await;
    assert_eq!(refused[0]["code"], json!(403), "{refused:?}");
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&unscoped)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge
            .starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp\", resource_metadata="),
        "{challenge}"
    );
    gateway.stop().await;

    // The same with the keys in a file.
    let dir = tempfile::tempdir().unwrap();
    let toml = config(&kit, &private, &auth_table(&jwks_file(&issuer, &dir)));
    let gateway = TestGateway::start(&toml).await;
    let ts = ts_client(&gateway.url("/mcp"), bearer(&es256), steps).await;
    assert_eq!(ok_text(&ts[0]), "jwt");
    gateway.stop().await;
}

/// Two testkits behind a gateway with [`auth_table`], its JWTs verified against a JWKS file.
struct Setup {
    _kit: RunningServer,
    _private: RunningServer,
    _dir: tempfile::TempDir,
    issuer: TokenIssuer,
    gateway: TestGateway,
}

impl Setup {
    async fn stop(self) {
        self.gateway.stop().await;
    }

    async fn with_jwks_file() -> Setup {
        let (kit, private) = (testkit().await, testkit().await);
        let issuer = TokenIssuer::new(ISSUER);
        let dir = tempfile::tempdir().unwrap();
        let toml = config(&kit, &private, &auth_table(&jwks_file(&issuer, &dir)));
        let gateway = TestGateway::start(&toml).await;
        Setup {
            _kit: kit,
            _private: private,
            _dir: dir,
            issuer,
            gateway,
        }
    }
}

/// `echo_headers` and `session_info` of `private` for a TS client with `token`.
async fn upstream_view(gateway: &TestGateway, token: &str) -> (Value, String) {
    let answers = ts_client(
        &gateway.url("/mcp"),
        bearer(token),
        json!([
            {"op": "call", "name": "private__echo_headers"},
            {"op": "call", "name": "private__session_info"},
        ]),
    )
    .await;
    let headers: Value = serde_json::from_str(ok_text(&answers[0])).unwrap();
    let info: Value = serde_json::from_str(ok_text(&answers[1])).unwrap();
    (headers, info["session"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_users_claims_reach_only_their_upstream_session_and_the_token_never_goes_upstream() {
    let setup = Setup::with_jwks_file().await;
    let (issuer, gateway) = (&setup.issuer, &setup.gateway);
    let alice = issuer.access_token(Alg::Es256, "alice", AUDIENCE, "mcp", json!({}));
    let bob = issuer.access_token(Alg::Rs256, "bob", AUDIENCE, "mcp", json!({}));
    let ((alice_headers, alice_session), (bob_headers, bob_session), (key_headers, _)) = tokio::join!(
        upstream_view(gateway, &alice),
        upstream_view(gateway, &bob),
        upstream_view(gateway, API_KEY),
    );
    assert_eq!(alice_headers["x-user"], json!("alice"), "{alice_headers}");
    assert_eq!(bob_headers["x-user"], json!("bob"), "{bob_headers}");
    // An API key's identity is its name, as `sub`.
    assert_eq!(key_headers["x-user"], json!("ci"), "{key_headers}");
    assert_ne!(
        alice_session, bob_session,
        "each user has an upstream session of their own"
    );
    for headers in [&alice_headers, &bob_headers, &key_headers] {
        assert!(
            headers.get("authorization").is_none(),
            "token passthrough: {headers}"
        );
        let text = headers.to_string();
        assert!(!text.contains(&alice) && !text.contains(API_KEY), "{text}");
    }

    // REST calls run in the caller's session the same way.
    let rest = |token: String| {
        let request = reqwest::Client::new()
            .post(gateway.url("/v1/tools/private__echo_headers/call"))
            .bearer_auth(token);
        async move {
            let outcome: Value = request.send().await.unwrap().json().await.unwrap();
            let headers: Value = serde_json::from_str(ok_text(&outcome)).unwrap();
            headers
        }
    };
    let (alice_rest, bob_rest) = tokio::join!(rest(alice.clone()), rest(bob.clone()));
    assert_eq!(alice_rest["x-user"], json!("alice"), "{alice_rest}");
    assert_eq!(bob_rest["x-user"], json!("bob"), "{bob_rest}");
    assert!(alice_rest.get("authorization").is_none(), "{alice_rest}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_serves_only_the_caller_that_opened_it() {
    let setup = Setup::with_jwks_file().await;
    let (issuer, gateway) = (&setup.issuer, &setup.gateway);
    let url = gateway.url("/mcp");
    let alice = issuer.access_token(Alg::Es256, "alice", AUDIENCE, "mcp", json!({}));
    let bob = issuer.access_token(Alg::Es256, "bob", AUDIENCE, "mcp", json!({}));
    let http = reqwest::Client::new();
    let session = open_session(&http, &url, Some(&alice)).await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});

    let post = |token: &str| mcp_post(&http, &url, Some(token), Some(&session), &list).send();
    let stolen = post(&bob).await.unwrap();
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    let by_key = post(API_KEY).await.unwrap();
    assert_eq!(by_key.status(), StatusCode::FORBIDDEN);
    let own = post(&alice).await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.unwrap().contains("kit__echo"));
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_sse_session_takes_messages_only_from_the_caller_that_opened_it() {
    let setup = Setup::with_jwks_file().await;
    let (issuer, gateway) = (&setup.issuer, &setup.gateway);
    let alice = issuer.access_token(Alg::Es256, "alice", AUDIENCE, "mcp", json!({}));
    let bob = issuer.access_token(Alg::Es256, "bob", AUDIENCE, "mcp", json!({}));
    let http = reqwest::Client::new();
    let mut stream = http
        .get(gateway.url("/sse"))
        .bearer_auth(&alice)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // The first event names the session's message URL.
    let mut read = String::new();
    let endpoint = loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("the endpoint event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        read.push_str(&String::from_utf8_lossy(&chunk));
        let data = read.lines().find_map(|line| line.strip_prefix("data:"));
        if let Some(path) = data.filter(|_| read.contains("\n\n")) {
            break path.trim().to_string();
        }
    };
    let url = gateway.url(&endpoint);
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let post = |token: &str| http.post(&url).bearer_auth(token).json(&ping).send();
    assert_eq!(post(&bob).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(API_KEY).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(post(&alice).await.unwrap().status(), StatusCode::ACCEPTED);
    drop(stream);
    setup.stop().await;
}
