//! A small OAuth 2.1 authorization server for tests, on 127.0.0.1.
//!
//! - Metadata (RFC 8414) at `/.well-known/oauth-authorization-server` (and the same document
//!   at `/.well-known/openid-configuration`); the issuer is `http://127.0.0.1:PORT`.
//! - `GET /authorize`, `POST /register` and the `authorization_code` grant with PKCE
//!   (`code.rs`), for the interactive sign-in.
//! - The JWT-bearer grant and an identity provider's token exchange at `/idp/token`
//!   (`grants.rs`); DPoP-bound tokens with nonces when [`AuthKnobs::dpop`] says
//!   (`dpop.rs`).
//! - `POST /revoke` (RFC 7009), counted.
//! - `POST /token`: `client_credentials` and `refresh_token` grants; client authentication
//!   by `client_secret_basic`, `client_secret_post`, `private_key_jwt` (ES256/RS256
//!   assertions, `jwt.rs`) or none (public clients), limited to [`AuthKnobs::auth_methods`].
//!   Errors are RFC 6749 JSON (`invalid_client` with 401, `invalid_grant`, ...).
//! - Knobs ([`AuthKnobs`]): access token lifetime, refresh tokens (and their rotation),
//!   allowed methods, scopes, registered clients.
//! - Control, in process ([`AuthServer`], [`AuthServerHandle`]) and over HTTP for CLI tests
//!   (`POST /control/revoke_all`, `POST /control/expire_all`, `GET /control/counts`):
//!   revoke a token or all, expire all, counters of token requests per grant, the last
//!   token request's parameters (never its secrets), seeding a user's tokens.
//!
//! The MCP test server becomes its protected resource with [`crate::Knobs::oauth`]
//! (`resource.rs`).

pub(crate) mod code;
pub mod dpop;
pub(crate) mod grants;
pub mod issuer;
pub mod jwt;
pub(crate) mod resource;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::{
    Form, Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::ServerTask;
pub use dpop::DpopKnob;
pub use issuer::{Alg, JwksServer, TokenIssuer};
pub use jwt::{PublicKey, generate_es256};
pub use resource::PRM_PATH;

/// A client the authorization server knows.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    /// For `client_secret_basic` / `client_secret_post`.
    pub secret: Option<String>,
    /// For `private_key_jwt`.
    pub public_key: Option<PublicKey>,
}

impl TestClient {
    /// A confidential client with a secret.
    pub fn with_secret(id: &str, secret: &str) -> Self {
        TestClient {
            id: id.into(),
            secret: Some(secret.into()),
            public_key: None,
        }
    }

    /// A client with a fresh ES256 key; also returns the private key as PKCS#8 PEM.
    pub fn with_es256_key(id: &str) -> (Self, String) {
        let (pem, public) = generate_es256();
        let client = TestClient {
            id: id.into(),
            secret: None,
            public_key: Some(public),
        };
        (client, pem)
    }
}

/// Behaviour of the authorization server.
#[derive(Clone, Debug)]
pub struct AuthKnobs {
    /// Lifetime of access tokens (`expires_in`).
    pub access_ttl: Duration,
    /// Whether the refresh grant and seeded logins give refresh tokens.
    pub issue_refresh_tokens: bool,
    /// Whether a refresh answers with a new refresh token and revokes the one presented
    /// (rotation, OAuth 2.1 section 4.3.1): presenting it again is `invalid_grant`.
    pub rotate_refresh_tokens: bool,
    /// Token endpoint client authentication methods accepted (and advertised).
    pub auth_methods: Vec<String>,
    /// `scopes_supported` (also in the resource's metadata).
    pub scopes_supported: Vec<String>,
    pub clients: Vec<TestClient>,
    /// Tools whose `tools/call` needs a scope: (tool, scope). A token without it gets 403
    /// `insufficient_scope` naming the scope (step-up tests).
    pub tool_scopes: Vec<(String, String)>,
    /// DPoP-bound tokens (RFC 9449), and whether nonces are required.
    pub dpop: DpopKnob,
}

impl Default for AuthKnobs {
    fn default() -> Self {
        AuthKnobs {
            access_ttl: Duration::from_secs(3600),
            issue_refresh_tokens: true,
            rotate_refresh_tokens: false,
            auth_methods: [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ]
            .map(String::from)
            .to_vec(),
            scopes_supported: vec!["mcp".into()],
            clients: Vec::new(),
            tool_scopes: Vec::new(),
            dpop: DpopKnob::Off,
        }
    }
}

/// Who a valid access token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// An access token and, when issued, a refresh token (from [`AuthServerHandle::login`]).
#[derive(Clone, Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Duration,
}

struct Issued {
    grant: Grant,
    expires_at: Instant,
    /// The DPoP key (P-256 point) the token is bound to.
    key: Option<Vec<u8>>,
}

#[derive(Default)]
struct Tokens {
    access: HashMap<String, Issued>,
    refresh: HashMap<String, Grant>,
    /// Token requests per grant type (`client_credentials`, `refresh_token`, ...), failed
    /// ones included.
    requests: BTreeMap<String, usize>,
    /// Requests the resource server refused (no, bad, expired or revoked token).
    rejected: usize,
    /// The last token request's non-secret parameters and client auth method.
    last: BTreeMap<String, String>,
    /// DPoP-bound tokens issued.
    dpop_tokens: usize,
    /// `use_dpop_nonce` answers given (token endpoint and resource).
    dpop_nonce_challenges: usize,
    /// Tokens revoked at `/revoke`.
    revocations: usize,
}

struct Inner {
    issuer: String,
    knobs: AuthKnobs,
    tokens: Mutex<Tokens>,
    /// Registered clients and pending codes (`code.rs`).
    flows: Mutex<code::Flows>,
    /// The identity provider's signing key (`grants.rs`).
    idp: jwt::JwtSigner,
}

/// A cheap handle on a running authorization server: control and token checks.
#[derive(Clone)]
pub struct AuthServerHandle(Arc<Inner>);

impl std::fmt::Debug for AuthServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthServerHandle")
            .field("issuer", &self.0.issuer)
            .finish_non_exhaustive()
    }
}

/// The authorization server, running until dropped or shut down.
pub struct AuthServer {
    pub addr: SocketAddr,
    handle: AuthServerHandle,
    task: ServerTask,
}

impl AuthServer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start(knobs: AuthKnobs) -> std::io::Result<AuthServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let handle = AuthServerHandle(Arc::new(Inner {
            issuer: format!("http://{addr}"),
            knobs,
            tokens: Mutex::default(),
            flows: Mutex::default(),
            idp: jwt::JwtSigner::default(),
        }));
        let router = routes(handle.clone());
        let task = ServerTask::spawn(listener, router, CancellationToken::new(), "auth server");
        Ok(AuthServer { addr, handle, task })
    }

    pub fn handle(&self) -> AuthServerHandle {
        self.handle.clone()
    }

    pub async fn shutdown(self) {
        self.task.shutdown().await;
    }
}

impl std::ops::Deref for AuthServer {
    type Target = AuthServerHandle;
    fn deref(&self) -> &AuthServerHandle {
        &self.handle
    }
}

impl AuthServerHandle {
    /// `http://127.0.0.1:PORT`, the issuer and base of every endpoint.
    pub fn issuer(&self) -> &str {
        &self.0.issuer
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.0.issuer)
    }

    pub fn scopes_supported(&self) -> &[String] {
        &self.0.knobs.scopes_supported
    }

    /// The grant behind a valid (issued, unexpired, unrevoked) access token.
    pub fn check(&self, access_token: &str) -> Option<Grant> {
        self.check_bound(access_token).map(|(grant, _)| grant)
    }

    /// [`AuthServerHandle::check`], with the DPoP key the token is bound to.
    pub(crate) fn check_bound(&self, access_token: &str) -> Option<(Grant, Option<Vec<u8>>)> {
        let tokens = lock(&self.0.tokens);
        let issued = tokens.access.get(access_token)?;
        (Instant::now() < issued.expires_at).then(|| (issued.grant.clone(), issued.key.clone()))
    }

    /// Binds an issued access token to a DPoP key.
    fn bind(&self, access_token: &str, key: Vec<u8>) {
        let mut tokens = lock(&self.0.tokens);
        if let Some(issued) = tokens.access.get_mut(access_token) {
            issued.key = Some(key);
            tokens.dpop_tokens += 1;
        }
    }

    pub(crate) fn count_nonce_challenge(&self) {
        lock(&self.0.tokens).dpop_nonce_challenges += 1;
    }

    /// A JWT signed by this server's identity provider key (`typ` `JWT`): a workload's
    /// JWT (`aud` = the issuer) or an ID token (`aud` = the client id the exchange names).
    pub fn sign_jwt(&self, claims: &Value) -> String {
        self.0.idp.sign("JWT", claims)
    }

    /// The identity provider's issuer (its metadata: OpenID discovery, path inserted).
    pub fn idp_issuer(&self) -> String {
        format!("{}/idp", self.0.issuer)
    }

    /// The identity provider's token exchange endpoint.
    pub fn idp_token_endpoint(&self) -> String {
        format!("{}/idp/token", self.0.issuer)
    }

    /// Revokes one access or refresh token.
    pub fn revoke(&self, token: &str) {
        let mut tokens = lock(&self.0.tokens);
        tokens.access.remove(token);
        tokens.refresh.remove(token);
    }

    /// Revokes every access token (refresh tokens stay valid).
    pub fn revoke_all_access(&self) {
        lock(&self.0.tokens).access.clear();
    }

    /// Makes every access token expired now.
    pub fn expire_all(&self) {
        let now = Instant::now();
        for issued in lock(&self.0.tokens).access.values_mut() {
            issued.expires_at = now;
        }
    }

    /// How many token requests used `grant_type` (failed ones included).
    pub fn token_requests(&self, grant_type: &str) -> usize {
        lock(&self.0.tokens)
            .requests
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// How many requests the protected resource refused for want of a valid token.
    pub fn rejected(&self) -> usize {
        lock(&self.0.tokens).rejected
    }

    pub(crate) fn count_rejected(&self) {
        lock(&self.0.tokens).rejected += 1;
    }

    /// The last token request's parameters (`grant_type`, `scope`, `resource`,
    /// `client_id`, and `auth_method`), never its secrets.
    pub fn last_token_request(&self) -> BTreeMap<String, String> {
        lock(&self.0.tokens).last.clone()
    }

    /// Tokens for `subject` using `client_id`, as if they had signed in (for tests of the
    /// store and refresh without a browser).
    pub fn login(&self, client_id: &str, subject: &str) -> IssuedTokens {
        let grant = Grant {
            subject: subject.into(),
            client_id: client_id.into(),
            scopes: self.0.knobs.scopes_supported.clone(),
        };
        self.issue(grant, self.0.knobs.issue_refresh_tokens)
    }

    /// Counters as JSON: `{"token_requests": {grant: n}, "rejected": n, "access_tokens": n,
    /// "dpop_tokens": n, "dpop_nonce_challenges": n, "revocations": n}`.
    pub fn counts(&self) -> Value {
        let tokens = lock(&self.0.tokens);
        json!({
            "token_requests": tokens.requests,
            "rejected": tokens.rejected,
            "access_tokens": tokens.access.len(),
            "dpop_tokens": tokens.dpop_tokens,
            "dpop_nonce_challenges": tokens.dpop_nonce_challenges,
            "revocations": tokens.revocations,
        })
    }

    fn issue(&self, grant: Grant, with_refresh: bool) -> IssuedTokens {
        let ttl = self.0.knobs.access_ttl;
        let access_token = format!("at-{}", uuid::Uuid::new_v4().simple());
        let refresh_token = with_refresh.then(|| format!("rt-{}", uuid::Uuid::new_v4().simple()));
        let mut tokens = lock(&self.0.tokens);
        tokens.access.insert(
            access_token.clone(),
            Issued {
                grant: grant.clone(),
                expires_at: Instant::now() + ttl,
                key: None,
            },
        );
        if let Some(refresh) = &refresh_token {
            tokens.refresh.insert(refresh.clone(), grant);
        }
        IssuedTokens {
            access_token,
            refresh_token,
            expires_in: ttl,
        }
    }

    fn metadata(&self) -> Value {
        let issuer = &self.0.issuer;
        let mut metadata = json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/token"),
            "authorization_endpoint": format!("{issuer}/authorize"),
            "registration_endpoint": format!("{issuer}/register"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "authorization_response_iss_parameter_supported": true,
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code", "refresh_token", "client_credentials",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ],
            "token_endpoint_auth_methods_supported": self.0.knobs.auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "scopes_supported": self.0.knobs.scopes_supported,
            "code_challenge_methods_supported": ["S256"],
        });
        if self.0.knobs.dpop != DpopKnob::Off {
            metadata["dpop_signing_alg_values_supported"] = json!(["ES256"]);
        }
        metadata
    }
}

fn routes(handle: AuthServerHandle) -> Router {
    let metadata = |State(h): State<AuthServerHandle>| async move { Json(h.metadata()) };
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/token", post(token))
        .route("/idp/token", post(grants::idp_token))
        .route(
            "/.well-known/openid-configuration/idp",
            get(|State(h): State<AuthServerHandle>| async move {
                Json(json!({
                    "issuer": h.idp_issuer(),
                    "token_endpoint": h.idp_token_endpoint(),
                    "grant_types_supported": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                }))
            }),
        )
        .route("/revoke", post(revoke))
        .route("/authorize", get(code::authorize))
        .route("/register", post(code::register))
        .route(
            "/control/revoke_all",
            post(|State(h): State<AuthServerHandle>| async move { h.revoke_all_access() }),
        )
        .route(
            "/control/expire_all",
            post(|State(h): State<AuthServerHandle>| async move { h.expire_all() }),
        )
        .route(
            "/control/counts",
            get(|State(h): State<AuthServerHandle>| async move { Json(h.counts()) }),
        )
        .with_state(handle)
}

/// An RFC 6749 error answer.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (status, Json(body)).into_response()
}

fn invalid_client(description: &str) -> Response {
    oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
}

async fn token(
    State(h): State<AuthServerHandle>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let (client, method) = match authenticate(&h, &headers, &form) {
        Ok(found) => found,
        Err(why) => {
            record(&h, &grant_type, &form, "failed");
            return invalid_client(&why);
        }
    };
    record(&h, &grant_type, &form, method);
    let bound = match dpop_proof(&h, &headers) {
        Ok(bound) => bound,
        Err(response) => return *response,
    };
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split(' ').map(String::from).collect())
        .unwrap_or_else(|| h.0.knobs.scopes_supported.clone());
    let issued = match grant_type.as_str() {
        "client_credentials" if method == "none" => {
            return invalid_client("client_credentials needs a confidential client");
        }
        "client_credentials" => {
            let grant = Grant {
                subject: client.id.clone(),
                client_id: client.id.clone(),
                scopes,
            };
            // RFC 6749 section 4.4.3: no refresh token for client credentials.
            h.issue(grant, false)
        }
        "authorization_code" => match code::exchange(&h, &client, &form, bound.as_deref()) {
            Ok(issued) => issued,
            Err(response) => return *response,
        },
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            match grants::jwt_bearer(&h, &client, &form) {
                Ok(issued) => issued,
                Err(response) => return *response,
            }
        }
        "refresh_token" => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            let rotate = h.0.knobs.rotate_refresh_tokens;
            let grant = {
                let mut tokens = lock(&h.0.tokens);
                if rotate {
                    tokens.refresh.remove(&presented)
                } else {
                    tokens.refresh.get(&presented).cloned()
                }
            };
            match grant {
                // Kept (not rotated): no refresh token in the answer; rotated: a new one.
                Some(grant) if grant.client_id == client.id => h.issue(grant, rotate),
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "the refresh token is unknown, revoked or not this client's",
                    );
                }
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant_type {other:?} is not supported here"),
            );
        }
    };
    let token_type = match bound {
        Some(key) => {
            h.bind(&issued.access_token, key);
            "DPoP"
        }
        None => "Bearer",
    };
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": token_type,
        "expires_in": issued.expires_in.as_secs(),
    });
    if let Some(refresh) = issued.refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response()
}

/// `POST /revoke` (RFC 7009): the client authenticates as at the token endpoint; the token
/// (access or refresh) is revoked if it is one; 200 either way.
async fn revoke(
    State(h): State<AuthServerHandle>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(why) = authenticate(&h, &headers, &form) {
        return invalid_client(&why);
    }
    let token = form.get("token").map_or("", String::as_str);
    let mut tokens = lock(&h.0.tokens);
    let known = tokens.access.remove(token).is_some() | tokens.refresh.remove(token).is_some();
    if known {
        tokens.revocations += 1;
    }
    StatusCode::OK.into_response()
}

/// The key a token request's DPoP proof binds the token to (`None`: no proof, or DPoP is
/// off), or the error answer (a bad proof; a missing nonce when required).
fn dpop_proof(h: &AuthServerHandle, headers: &HeaderMap) -> Result<Option<Vec<u8>>, Box<Response>> {
    let proof = headers.get("dpop").and_then(|v| v.to_str().ok());
    let (Some(proof), false) = (proof, h.0.knobs.dpop == DpopKnob::Off) else {
        return Ok(None);
    };
    let checked = dpop::check(proof, "POST", &h.token_endpoint(), None).map_err(|why| {
        Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            &why,
        ))
    })?;
    if h.0.knobs.dpop == DpopKnob::RequireNonce && checked.nonce.as_deref() != Some(dpop::AS_NONCE)
    {
        h.count_nonce_challenge();
        let mut response = oauth_error(
            StatusCode::BAD_REQUEST,
            "use_dpop_nonce",
            "this server requires a DPoP nonce",
        );
        response.headers_mut().insert(
            "dpop-nonce",
            header::HeaderValue::from_static(dpop::AS_NONCE),
        );
        return Err(Box::new(response));
    }
    Ok(Some(checked.key))
}

/// The client and the method it authenticated with, or why it is `invalid_client`.
fn authenticate(
    h: &AuthServerHandle,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(TestClient, &'static str), String> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, method, secret) = if let Some(pair) = basic {
        let (id, secret) = pair.split_once(':').unwrap_or((&pair, ""));
        let decode = |s: &str| form_urlencoded_decode(s);
        (decode(id), "client_secret_basic", Some(decode(secret)))
    } else if form.contains_key("client_assertion") {
        let id = form.get("client_id").cloned().unwrap_or_default();
        (id, "private_key_jwt", None)
    } else if let Some(secret) = form.get("client_secret") {
        let id = form.get("client_id").cloned().unwrap_or_default();
        (id, "client_secret_post", Some(secret.clone()))
    } else {
        let id = form.get("client_id").cloned().unwrap_or_default();
        (id, "none", None)
    };
    if !h.0.knobs.auth_methods.iter().any(|m| m == method) {
        return Err(format!(
            "client authentication method {method} is not allowed here"
        ));
    }
    // private_key_jwt may leave client_id out: it is the assertion's subject then.
    let id = if id.is_empty() && method == "private_key_jwt" {
        assertion_subject(form).unwrap_or_default()
    } else {
        id
    };
    let known = h.0.knobs.clients.iter().find(|c| c.id == id).cloned();
    let Some(client) = known.or_else(|| h.registered_client(&id)) else {
        return Err("unknown client".into());
    };
    match method {
        "client_secret_basic" | "client_secret_post" => {
            if client.secret.is_none() || client.secret != secret {
                return Err("Invalid client credentials".into());
            }
        }
        "private_key_jwt" => {
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return Err("Invalid client_assertion_type".into());
            }
            let Some(key) = &client.public_key else {
                return Err("this client has no registered key".into());
            };
            let audiences = [
                h.0.issuer.clone(),
                format!("{}/", h.0.issuer),
                h.token_endpoint(),
            ];
            let assertion = form.get("client_assertion").map_or("", String::as_str);
            jwt::verify_assertion(assertion, key, &client.id, &audiences)
                .map_err(|why| format!("JWT verification failed: {why}"))?;
        }
        _ => {
            if client.secret.is_some() || client.public_key.is_some() {
                return Err("this client must authenticate".into());
            }
        }
    }
    Ok((client, method))
}

/// The `sub` of the (unverified) client assertion, to find the client by.
fn assertion_subject(form: &HashMap<String, String>) -> Option<String> {
    let body = form.get("client_assertion")?.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .ok()?,
    )
    .ok()?;
    claims["sub"].as_str().map(String::from)
}

fn record(h: &AuthServerHandle, grant_type: &str, form: &HashMap<String, String>, method: &str) {
    let mut tokens = lock(&h.0.tokens);
    *tokens.requests.entry(grant_type.to_owned()).or_default() += 1;
    tokens.last = ["grant_type", "scope", "resource", "client_id"]
        .iter()
        .filter_map(|k| form.get(*k).map(|v| (k.to_string(), v.clone())))
        .chain([("auth_method".to_string(), method.to_string())])
        .collect();
}

/// `application/x-www-form-urlencoded` decoding of a Basic credential part (RFC 6749
/// section 2.3.1).
fn form_urlencoded_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
