//! Grants that exchange a JWT someone else issued: a workload's (RFC 7523 JWT-bearer,
//! SEP-1933 workload identity federation) and a person's ID token, exchanged first at
//! their identity provider for an identity assertion grant (RFC 8693 token exchange, then
//! JWT-bearer: SEP-990 enterprise-managed authorization).
//!
//! The JWT is read when it is needed (a file again every time: platforms rotate them) and
//! never logged; a refused exchange is reported with the server's `error`, not tried again
//! nor with another grant (the suite's `wif-no-retry`).

use std::path::PathBuf;

use super::http::{AuthHttp, Expect};
use super::machine::{self, Client, ClientSecret};
use super::metadata::Endpoints;
use super::store::TokenRecord;
use crate::error::{AuthFailure, AuthStep};

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// A JWT handed to Switchboard, rendered or as a file. `Debug` never shows it.
#[derive(Clone)]
pub(crate) enum Jwt {
    Inline(ClientSecret),
    File(PathBuf),
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Jwt::Inline(_) => f.write_str("Inline(***)"),
            Jwt::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Jwt {
    fn read(&self, what: &str) -> Result<ClientSecret, AuthFailure> {
        let failure = |why: String| AuthFailure::new(AuthStep::Token, why);
        let jwt = match self {
            Jwt::Inline(secret) => secret.clone(),
            Jwt::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    failure(format!(
                        "cannot read the {what} file {}: {e}",
                        path.display()
                    ))
                })?;
                ClientSecret(text.trim().to_owned())
            }
        };
        if jwt.0.is_empty() {
            return Err(failure(format!("the {what} is empty")));
        }
        Ok(jwt)
    }
}

/// The identity provider of enterprise-managed authorization.
#[derive(Debug)]
pub(crate) struct Idp {
    /// Its token endpoint: configured, else found in the metadata of `issuer` once.
    pub token_endpoint: std::sync::OnceLock<String>,
    pub issuer: Option<String>,
    /// Switchboard at the identity provider (no id: the request carries none).
    pub client: Option<Client>,
}

impl Idp {
    /// Where ID tokens are exchanged: configured, else from the issuer's metadata.
    async fn token_endpoint(&self, http: &AuthHttp) -> Result<String, AuthFailure> {
        if let Some(endpoint) = self.token_endpoint.get() {
            return Ok(endpoint.clone());
        }
        let issuer = self.issuer.as_deref().unwrap_or_default();
        let found = super::metadata::server_metadata(http, issuer)
            .await
            .and_then(|metadata| metadata.token_endpoint)
            .ok_or_else(|| {
                AuthFailure::new(
                    AuthStep::Metadata,
                    format!(
                        "the identity provider's metadata ({issuer}) names no token endpoint; \
                         set idp_token_endpoint"
                    ),
                )
            })?;
        Ok(self.token_endpoint.get_or_init(|| found).clone())
    }
}

/// The JWT-bearer grant at `endpoints` with `assertion`, asking for `scopes`.
pub(crate) async fn jwt_bearer(
    http: &AuthHttp,
    client: &Client,
    endpoints: &Endpoints,
    assertion: &Jwt,
    scopes: &[String],
) -> Result<TokenRecord, AuthFailure> {
    let assertion = assertion.read("assertion")?;
    bearer_grant(http, client, endpoints, &assertion, scopes).await
}

/// Enterprise-managed authorization: `id_token` exchanged at `idp` for an ID-JAG naming
/// the server's authorization server and resource, then the JWT-bearer grant with it.
pub(crate) async fn enterprise(
    http: &AuthHttp,
    client: &Client,
    idp: &Idp,
    endpoints: &Endpoints,
    id_token: &Jwt,
    scopes: &[String],
) -> Result<TokenRecord, AuthFailure> {
    let id_token = id_token.read("ID token")?;
    let idp_token_endpoint = idp.token_endpoint(http).await?;
    let scope = scopes.join(" ");
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("requested_token_type", ID_JAG_TYPE),
        ("subject_token", id_token.0.as_str()),
        ("subject_token_type", ID_TOKEN_TYPE),
        ("audience", endpoints.issuer.as_str()),
    ];
    if let Some(resource) = &endpoints.resource {
        form.push(("resource", resource));
    }
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let idp_endpoints = Endpoints {
        issuer: idp
            .issuer
            .clone()
            .unwrap_or_else(|| idp_token_endpoint.clone()),
        token_endpoint: idp_token_endpoint,
        auth_methods: Vec::new(),
        resource: None,
        dpop_algs: Vec::new(),
    };
    let anonymous = Client::anonymous();
    let idp_client = idp.client.as_ref().unwrap_or(&anonymous);
    // Never with a DPoP proof: the key binds the server's tokens, not the IdP's.
    let answer = machine::send(
        http,
        idp_client,
        &idp_endpoints,
        form,
        Expect::AnyToken,
        false,
    )
    .await
    .map_err(|mut failure| {
        failure.detail = failure
            .detail
            .map(|detail| format!("at the identity provider: {detail}"));
        failure
    })?;
    if answer
        .issued_token_type
        .as_deref()
        .is_some_and(|kind| kind != ID_JAG_TYPE)
    {
        return Err(AuthFailure::new(
            AuthStep::Token,
            "the identity provider did not issue an identity assertion grant (ID-JAG)",
        ));
    }
    let grant = ClientSecret(answer.access_token);
    bearer_grant(http, client, endpoints, &grant, scopes).await
}

async fn bearer_grant(
    http: &AuthHttp,
    client: &Client,
    endpoints: &Endpoints,
    assertion: &ClientSecret,
    scopes: &[String],
) -> Result<TokenRecord, AuthFailure> {
    let scope = scopes.join(" ");
    let mut form = vec![
        ("grant_type", JWT_BEARER_GRANT),
        ("assertion", assertion.0.as_str()),
    ];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    if let Some(resource) = &endpoints.resource {
        form.push(("resource", resource));
    }
    let response = machine::request(http, client, endpoints, form).await?;
    let mut record = machine::record_of(response, endpoints, &client.id);
    // Exchanged again when it expires, never refreshed (the JWT is the credential).
    record.refresh_token = None;
    Ok(record)
}
