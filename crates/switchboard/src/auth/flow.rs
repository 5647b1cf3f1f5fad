//! The interactive sign-in: OAuth 2.1 authorization code with PKCE, for a person.
//!
//! Steps, each failing as its own [`AuthStep`]:
//!
//! 1. **Metadata** (`metadata.rs`): the protected resource metadata from the server's 401
//!    challenge (else the well-known URLs), its authorization server's metadata (RFC 8414 /
//!    OpenID, the 2025-03-26 fallbacks); a PRM `resource` that is not this server is
//!    refused before anything is sent to the authorization server; PKCE S256 must be
//!    supported.
//! 2. **Scopes**: the configured `scopes`; else the challenge's `scope`; else the PRM's
//!    `scopes_supported`; else none (no `scope` parameter). `offline_access` is added when
//!    the authorization server lists it (so a refresh token comes), with `prompt=consent`.
//! 3. **Registration** (`register.rs`): pre-registered > client metadata document > a
//!    client registered here before (kept in the store per issuer) > DCR.
//! 4. **Authorization**: a loopback listener (`callback.rs`), the authorization URL
//!    (`response_type=code`, `client_id`, `redirect_uri`, S256 `code_challenge`, `state`,
//!    `scope`, RFC 8707 `resource` when there is a PRM) handed to the [`Opener`]; the
//!    callback must carry our `state`, and `iss` (RFC 9207) must be the issuer exactly
//!    when the server advertises it, and when present at all.
//! 5. **Token**: the code exchanged with the verifier (`machine.rs` authenticates the
//!    client); the record keeps the registered client, so a refresh in another process
//!    works.
//!
//! Ours rather than rmcp's `AuthorizationManager`: see docs/oauth-design.md (S3 notes).
//! The code, verifier and tokens never reach a log line or an error.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use url::Url;

use super::http::AuthHttp;
use super::machine::{self, Client};
use super::metadata::{self, Discovery};
use super::opener::Opener;
use super::register::{self, ClientChoice, Registered};
use super::store::{TokenRecord, TokenStore};
use crate::error::{AuthFailure, AuthStep, challenge_param};

/// How long a person has to complete the browser step.
pub(crate) const FLOW_TIMEOUT: Duration = Duration::from_secs(300);

const OFFLINE_ACCESS: &str = "offline_access";

/// What the sign-in of one server needs besides the network.
#[derive(Debug, Clone)]
pub(crate) struct LoginConfig {
    /// The server's name (for the opener's message) and URL.
    pub server: String,
    pub url: String,
    pub client: ClientChoice,
    /// Configured scopes (override discovery's choice).
    pub scopes: Vec<String>,
    /// The loopback callback's port (0: any).
    pub redirect_port: u16,
    pub timeout: Duration,
}

/// Signs in: every step above; the new tokens as a record to store.
pub(crate) async fn login(
    http: &AuthHttp,
    store: &dyn TokenStore,
    config: &LoginConfig,
    challenge: Option<&str>,
    opener: &dyn Opener,
) -> Result<TokenRecord, AuthFailure> {
    let found = metadata::discover_all(http, &config.url, challenge, true).await?;
    let meta = &found.server;
    if found.found {
        let s256 = meta
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"));
        if !s256 {
            return Err(AuthFailure::new(
                AuthStep::Metadata,
                "the authorization server does not list PKCE S256 in \
                 code_challenge_methods_supported; refusing to sign in without it",
            ));
        }
    }
    // Checked before registering anything.
    let Some(authorization_endpoint) = meta.authorization_endpoint.clone() else {
        return Err(AuthFailure::new(
            AuthStep::Metadata,
            "the authorization server metadata has no authorization_endpoint",
        ));
    };
    let scope = select_scope(config, challenge, &found);
    let signing = register::client_with_callback(
        http,
        store,
        &config.client,
        meta,
        &found.endpoints.issuer,
        config.redirect_port,
        scope.as_deref(),
    )
    .await?;
    let registered = signing.registered;
    let key = signing.key.clone();
    tracing::info!(server = %config.server, issuer = %found.endpoints.issuer, ?registered, "signing in");
    let signed_in = authorize(
        http,
        config,
        opener,
        &found,
        (&authorization_endpoint, scope),
        signing,
    )
    .await;
    if let Err(failure) = &signed_in
        && registered == Registered::Kept
    {
        register::forget_kept(store, &key, failure).await;
    }
    signed_in
}

/// Steps 4 and 5 with `signing`'s client and listener.
async fn authorize(
    http: &AuthHttp,
    config: &LoginConfig,
    opener: &dyn Opener,
    found: &Discovery,
    (authorization_endpoint, scope): (&str, Option<String>),
    signing: register::Signing,
) -> Result<TokenRecord, AuthFailure> {
    let register::Signing {
        client,
        registered,
        callback,
        ..
    } = signing;
    let redirect_uri = callback.redirect_uri();

    let verifier = random_token(32)?;
    let state = random_token(16)?;
    let challenge_s256 = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    let mut url = Url::parse(authorization_endpoint).map_err(|_| {
        AuthFailure::new(
            AuthStep::Metadata,
            "the authorization_endpoint is not a URL",
        )
    })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("code_challenge", &challenge_s256)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", &state);
        if let Some(scope) = &scope {
            query.append_pair("scope", scope);
            // OpenID Connect (Core section 11) grants offline_access only with consent
            // asked for; other servers ignore `prompt` (the TypeScript SDK does the same).
            if scope.split(' ').any(|s| s == OFFLINE_ACCESS) {
                query.append_pair("prompt", "consent");
            }
        }
        if let Some(resource) = &found.endpoints.resource {
            query.append_pair("resource", resource);
        }
        if let Some(dpop) = http
            .dpop()
            .filter(|_| http.uses_dpop(&found.endpoints.dpop_algs, false))
        {
            query.append_pair("dpop_jkt", &dpop.thumbprint()?);
        }
    }
    opener
        .open(&config.server, url.as_str())
        .map_err(|why| AuthFailure::new(AuthStep::Authorization, why))?;
    let answer = callback.wait(&state, config.timeout).await?;
    check_issuer(found, answer.get("iss").map(String::as_str))?;
    if let Some(error) = answer.get("error") {
        return Err(AuthFailure::from_server(
            AuthStep::Authorization,
            Some(error),
            answer.get("error_description").map(String::as_str),
            "the authorization server refused the sign-in",
        ));
    }
    let code = answer.get("code").ok_or_else(|| {
        AuthFailure::new(
            AuthStep::Authorization,
            "the callback carried neither a code nor an error",
        )
    })?;

    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(resource) = &found.endpoints.resource {
        form.push(("resource", resource));
    }
    let response = machine::request(http, &client, &found.endpoints, form).await?;
    let mut record = machine::record_of(response, &found.endpoints, &client.id);
    record.resource = found.endpoints.resource.clone();
    if record.scopes.is_empty() {
        // RFC 6749 section 5.1: no `scope` in the answer means the requested ones.
        record.scopes = scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
    }
    remember_client(&mut record, &client, registered);
    tracing::info!(server = %config.server, refresh = record.refresh_token.is_some(), "signed in");
    Ok(record)
}

/// Keeps what refreshing needs of a client the configuration does not hold.
fn remember_client(record: &mut TokenRecord, client: &Client, registered: Registered) {
    record.client_auth_method = client.method.map(|m| m.as_str().to_owned());
    if matches!(registered, Registered::Dynamic | Registered::Kept) {
        record.client_secret = client.secret.as_ref().map(|s| s.0.clone());
    }
}

/// The `scope` parameter (see the module docs), `None` to leave it out.
fn select_scope(
    config: &LoginConfig,
    challenge: Option<&str>,
    found: &Discovery,
) -> Option<String> {
    let mut scopes: Vec<String> = if !config.scopes.is_empty() {
        config.scopes.clone()
    } else if let Some(scope) = challenge.and_then(|c| challenge_param(c, "scope")) {
        scope.split_whitespace().map(String::from).collect()
    } else {
        found.prm_scopes.clone().unwrap_or_default()
    };
    let offered = found
        .server
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| s == OFFLINE_ACCESS));
    if offered && !scopes.is_empty() && !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS.to_owned());
    }
    if offered && scopes.is_empty() {
        scopes.push(OFFLINE_ACCESS.to_owned());
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// RFC 9207: `iss` must be the issuer exactly when the server advertises it, and must
/// match when present anyway.
fn check_issuer(found: &Discovery, iss: Option<&str>) -> Result<(), AuthFailure> {
    let expected = &found.endpoints.issuer;
    let advertised = found.server.authorization_response_iss_parameter_supported;
    match iss {
        Some(iss) if iss == expected => Ok(()),
        Some(iss) => Err(AuthFailure::new(
            AuthStep::Authorization,
            format!(
                "the authorization response came from issuer {iss:?}, not {expected:?} \
                 (RFC 9207); the code was not used"
            ),
        )),
        None if advertised => Err(AuthFailure::new(
            AuthStep::Authorization,
            "the authorization server advertises the iss parameter but the response has \
             none (RFC 9207); the code was not used",
        )),
        None => Ok(()),
    }
}

/// `bytes` random bytes, base64url (a PKCE verifier of 32 bytes is 43 characters).
fn random_token(bytes: usize) -> Result<String, AuthFailure> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).map_err(|_| {
        AuthFailure::new(AuthStep::Authorization, "no randomness for PKCE and state")
    })?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::metadata::{Endpoints, ServerMetadata};

    fn discovery(prm_scopes: Option<&[&str]>, as_scopes: Option<&[&str]>) -> Discovery {
        let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Discovery {
            endpoints: Endpoints {
                issuer: "http://as".into(),
                token_endpoint: "http://as/token".into(),
                auth_methods: vec![],
                resource: None,
                dpop_algs: vec![],
            },
            server: ServerMetadata {
                scopes_supported: as_scopes.map(strings),
                authorization_response_iss_parameter_supported: true,
                ..ServerMetadata::default()
            },
            found: true,
            prm_scopes: prm_scopes.map(strings),
        }
    }

    fn config() -> LoginConfig {
        LoginConfig {
            server: "s".into(),
            url: "http://rs/mcp".into(),
            client: ClientChoice::default(),
            scopes: vec![],
            redirect_port: 0,
            timeout: FLOW_TIMEOUT,
        }
    }

    #[test]
    fn scope_comes_from_the_challenge_then_the_prm_then_nowhere() {
        let found = discovery(Some(&["a", "b"]), Some(&["a", "b", "c"]));
        let challenge = r#"Bearer resource_metadata="x", scope="mcp:basic""#;
        assert_eq!(
            select_scope(&config(), Some(challenge), &found).as_deref(),
            Some("mcp:basic")
        );
        assert_eq!(
            select_scope(&config(), Some("Bearer"), &found).as_deref(),
            Some("a b")
        );
        // Never the authorization server's own list.
        assert_eq!(
            select_scope(&config(), None, &discovery(None, Some(&["c"]))),
            None
        );
        let offline = discovery(Some(&["a"]), Some(&["a", "offline_access"]));
        assert_eq!(
            select_scope(&config(), None, &offline).as_deref(),
            Some("a offline_access")
        );
    }

    #[test]
    fn iss_must_be_the_issuer_exactly() {
        let found = discovery(None, None);
        assert!(check_issuer(&found, Some("http://as")).is_ok());
        assert!(check_issuer(&found, Some("http://as/")).is_err());
        assert!(check_issuer(&found, None).is_err());
        let mut quiet = found.clone();
        quiet.server.authorization_response_iss_parameter_supported = false;
        assert!(check_issuer(&quiet, None).is_ok());
        assert!(check_issuer(&quiet, Some("https://evil.example.com")).is_err());
    }
}
