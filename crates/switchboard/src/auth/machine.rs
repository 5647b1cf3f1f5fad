//! Getting a new token without a person: the client-credentials grant (client secret by
//! HTTP Basic or in the form, or `private_key_jwt`) and the refresh-token grant.
//!
//! Ours rather than rmcp's `authenticate_client_credentials`: rmcp's path neither caches
//! nor exchanges again at expiry (it tries a refresh token client credentials never have)
//! and needs a `resource` its discovery keeps private; here both grants are one form POST
//! (`http.rs`) and the token cell (`cell.rs`) decides when.

use std::path::PathBuf;

use super::http::{AuthHttp, Expect, TokenResponse};
use super::jwt::{SigningKey, client_assertion};
use super::metadata::Endpoints;
use super::store::TokenRecord;
use crate::config::TokenAuthMethod;
use crate::error::{AuthFailure, AuthStep};

const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A rendered client secret. `Debug` is `***`.
#[derive(Clone)]
pub(crate) struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Who the client is and how it proves it at the token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: String,
    pub secret: Option<ClientSecret>,
    pub private_key_file: Option<PathBuf>,
    /// The configured method; else chosen from the metadata ([`Client::method`]).
    pub method: Option<TokenAuthMethod>,
}

impl Client {
    /// No client: the request carries no client id nor authentication (a workload whose
    /// JWT is its identity, an identity provider that does not ask).
    pub fn anonymous() -> Self {
        Client {
            id: String::new(),
            secret: None,
            private_key_file: None,
            method: Some(TokenAuthMethod::None),
        }
    }

    /// The method to use with an authorization server that supports `supported`: the
    /// configured one; else `private_key_jwt` with a key; else Basic unless only post is
    /// listed (RFC 8414's default is Basic).
    fn method(&self, supported: &[String]) -> TokenAuthMethod {
        if let Some(method) = self.method {
            return method;
        }
        if self.private_key_file.is_some() {
            return TokenAuthMethod::PrivateKeyJwt;
        }
        if self.secret.is_none() {
            return TokenAuthMethod::None;
        }
        let listed = |m: &str| supported.iter().any(|s| s == m);
        if !listed("client_secret_basic") && listed("client_secret_post") {
            TokenAuthMethod::ClientSecretPost
        } else {
            TokenAuthMethod::ClientSecretBasic
        }
    }
}

/// The client-credentials grant at `endpoints`, asking for `scopes`.
pub(crate) async fn client_credentials(
    http: &AuthHttp,
    client: &Client,
    endpoints: &Endpoints,
    scopes: &[String],
) -> Result<TokenRecord, AuthFailure> {
    let scope = scopes.join(" ");
    let mut form = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    if let Some(resource) = &endpoints.resource {
        form.push(("resource", resource));
    }
    let response = request(http, client, endpoints, form).await?;
    let mut record = record_of(response, endpoints, &client.id);
    // Client credentials are exchanged again, never refreshed (RFC 6749 section 4.4.3).
    record.refresh_token = None;
    Ok(record)
}

/// The refresh-token grant for `record` (which holds the refresh token and where to use
/// it). An `invalid_grant` answer means the refresh token is dead: signing in again is the
/// way out.
pub(crate) async fn refresh(
    http: &AuthHttp,
    client: &Client,
    record: &TokenRecord,
    endpoints: &Endpoints,
) -> Result<TokenRecord, AuthFailure> {
    let refresh_token = record.refresh_token.as_deref().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(resource) = &endpoints.resource {
        form.push(("resource", resource));
    }
    // A DPoP-bound refresh token works only with the key it was issued to.
    if let (Some(dpop), Some(key)) = (http.dpop(), &record.dpop_key) {
        dpop.use_stored_key(key);
    }
    let dpop = http.uses_dpop(&endpoints.dpop_algs, record.dpop_key.is_some());
    let response = send(http, client, endpoints, form, Expect::AccessToken, dpop)
        .await
        .map_err(|failure| {
            let dead = failure.error.as_deref() == Some("invalid_grant");
            failure.needing_login(dead)
        })?;
    let mut fresh = record_of(response, endpoints, &client.id);
    // A server that does not rotate refresh tokens answers without one: keep ours.
    if fresh.refresh_token.is_none() {
        fresh.refresh_token = record.refresh_token.clone();
    }
    if fresh.scopes.is_empty() {
        fresh.scopes = record.scopes.clone();
    }
    // The issuer does not change with a refresh; one stood in by the token endpoint (a
    // record that did not say) is not an issuer.
    if record.issuer.is_some() || endpoints.issuer == endpoints.token_endpoint {
        fresh.issuer = record.issuer.clone();
    }
    Ok(fresh)
}

/// Adds the client's authentication to `form` and POSTs it for an access token (with a
/// DPoP proof when the authorization server takes them).
pub(crate) async fn request(
    http: &AuthHttp,
    client: &Client,
    endpoints: &Endpoints,
    form: Vec<(&str, &str)>,
) -> Result<TokenResponse, AuthFailure> {
    let dpop = http.uses_dpop(&endpoints.dpop_algs, false);
    send(http, client, endpoints, form, Expect::AccessToken, dpop).await
}

/// Adds the client's authentication to `form` and POSTs it, expecting `expect`.
pub(crate) async fn send(
    http: &AuthHttp,
    client: &Client,
    endpoints: &Endpoints,
    mut form: Vec<(&str, &str)>,
    expect: Expect,
    dpop: bool,
) -> Result<TokenResponse, AuthFailure> {
    let secret = client.secret.as_ref().map(|s| s.0.as_str());
    let assertion;
    let mut basic = None;
    match client.method(&endpoints.auth_methods) {
        TokenAuthMethod::ClientSecretBasic => {
            basic = Some((client.id.as_str(), secret.unwrap_or_default()))
        }
        TokenAuthMethod::ClientSecretPost => {
            form.push(("client_id", &client.id));
            form.push(("client_secret", secret.unwrap_or_default()));
        }
        TokenAuthMethod::PrivateKeyJwt => {
            assertion = sign_assertion(client, &endpoints.issuer)?;
            form.push(("client_id", &client.id));
            form.push(("client_assertion_type", JWT_BEARER_ASSERTION));
            form.push(("client_assertion", &assertion));
        }
        // A workload or an anonymous client at an identity provider has no id to send.
        TokenAuthMethod::None if client.id.is_empty() => {}
        TokenAuthMethod::None => form.push(("client_id", &client.id)),
    }
    http.token_request(&endpoints.token_endpoint, &form, basic, expect, dpop)
        .await
}

/// Reads the client's key file (again for every assertion: keys rotate) and signs.
fn sign_assertion(client: &Client, audience: &str) -> Result<String, AuthFailure> {
    let failure = |why: String| AuthFailure::new(AuthStep::Token, why);
    let Some(path) = &client.private_key_file else {
        return Err(failure(
            "private_key_jwt needs private_key_file, which is not set".into(),
        ));
    };
    let pem = std::fs::read_to_string(path).map_err(|e| {
        failure(format!(
            "cannot read private_key_file {}: {e}",
            path.display()
        ))
    })?;
    let key = SigningKey::from_pem(&pem)
        .map_err(|why| failure(format!("private_key_file {}: {why}", path.display())))?;
    client_assertion(&key, &client.id, audience).map_err(failure)
}

pub(crate) fn record_of(
    response: TokenResponse,
    endpoints: &Endpoints,
    client_id: &str,
) -> TokenRecord {
    let expires_in = response.expires_in.map(std::time::Duration::from_secs);
    let mut record = TokenRecord::new(response.access_token, expires_in);
    record.refresh_token = response.refresh_token;
    record.token_type = response.token_type;
    record.dpop_key = response.dpop_key;
    record.scopes = response
        .scope
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    record.issuer = Some(endpoints.issuer.clone());
    record.token_endpoint = Some(endpoints.token_endpoint.clone());
    record.client_id = Some(client_id.to_owned());
    record
}
