//! Who a request comes from: its `Authorization: Bearer` credential checked against
//! `[gateway.auth]`, as an [`Identity`] (or why not, as a [`Refusal`]).
//!
//! - **API keys**: the presented key's SHA-256 is compared with every configured hash in
//!   constant time (the config holds only hashes). A key's name is its caller's identity,
//!   seen as the claim `sub`; API keys are not scoped.
//! - **JWTs**: signature against the JWKS ([`KeySet`]), then `exp`/`nbf`/`iss`/`aud`/`sub`
//!   ([`jwt::check_claims`]), then `required_scopes` (403 `insufficient_scope` when any is
//!   missing).
//!
//! The claims named in `[gateway.auth] claims` become session variables (strings as they
//! are, numbers and booleans as their JSON text; other values are left out).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use http::HeaderMap;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchboard::config::{InboundAuthConfig, JwtConfig};

use crate::inbound::jwks::{KeySet, KeysUnavailable, Want};
use crate::inbound::jwt::{self, TokenError};

/// A caller the gateway has authenticated. Request handlers find it in the request's
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Who, for comparing callers (`key:NAME`, `jwt:SUB`); never a secret.
    pub principal: Arc<str>,
    /// Session variables from verified claims (`[gateway.auth] claims`).
    pub variables: BTreeMap<String, String>,
}

/// Why a request is not let in.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this endpoint needs a credential: send Authorization: Bearer TOKEN")]
    Missing,
    #[error("the credential is not accepted: {0}")]
    Invalid(String),
    #[error("the token lacks the scopes {0:?}")]
    InsufficientScope(Vec<String>),
    #[error("cannot verify tokens now: {0}")]
    Unavailable(KeysUnavailable),
}

/// `[gateway.auth]`, ready to check requests.
pub struct Authenticator {
    api_keys: Vec<(String, [u8; 32])>,
    claims: BTreeMap<String, String>,
    jwt: Option<(JwtConfig, Arc<KeySet>)>,
}

impl Authenticator {
    pub fn new(config: &InboundAuthConfig) -> Authenticator {
        Authenticator {
            api_keys: config
                .api_keys
                .iter()
                .map(|(name, hash)| (name.clone(), hash.0))
                .collect(),
            claims: config.claims.clone(),
            jwt: config.jwt.as_ref().map(|jwt| {
                let keys = KeySet::new(jwt.jwks.clone(), jwt.jwks_cache);
                (jwt.clone(), Arc::new(keys))
            }),
        }
    }

    /// The JWT settings, when tokens are verified.
    pub fn jwt(&self) -> Option<&JwtConfig> {
        self.jwt.as_ref().map(|(config, _)| config)
    }

    /// Loads the JWKS (at start) and keeps it fresh from then on (in the background, for
    /// as long as this authenticator lives). `Ok(None)` without JWT verification.
    pub async fn load_keys(&self) -> Result<Option<usize>, KeysUnavailable> {
        let Some((_, keys)) = &self.jwt else {
            return Ok(None);
        };
        let loaded = keys.load().await;
        KeySet::refresh_in_background(keys);
        loaded.map(Some)
    }

    /// Checks the request's credential.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Refusal> {
        let token = bearer(headers).ok_or(Refusal::Missing)?;
        if let Some(name) = self.api_key(token) {
            let sub = Map::from_iter([("sub".to_string(), Value::String(name.to_string()))]);
            return Ok(Identity {
                principal: format!("key:{name}").into(),
                variables: self.variables(&sub),
            });
        }
        let Some((config, keys)) = &self.jwt else {
            return Err(Refusal::Invalid("not a known API key".to_string()));
        };
        let token = jwt::decode(token).map_err(|error| match error {
            TokenError::Malformed if !self.api_keys.is_empty() => {
                Refusal::Invalid("neither a known API key nor a JWT".to_string())
            }
            other => invalid(other),
        })?;
        let held = keys
            .keys(Want::Current)
            .await
            .map_err(Refusal::Unavailable)?;
        let verified = match token.verify(&held) {
            Err(TokenError::UnknownKey(_)) => {
                // The provider may have rotated its keys since they were loaded.
                let reloaded = keys
                    .keys(Want::Missing)
                    .await
                    .map_err(Refusal::Unavailable)?;
                token.verify(&reloaded)
            }
            other => other,
        };
        verified.map_err(invalid)?;
        jwt::check_claims(&token.claims, &config.issuer, &config.audience).map_err(invalid)?;
        let granted = jwt::scopes(&token.claims);
        let missing: Vec<String> = config
            .required_scopes
            .iter()
            .filter(|s| !granted.contains(&s.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope(missing));
        }
        let sub = token.claims.get("sub").and_then(Value::as_str);
        Ok(Identity {
            principal: format!("jwt:{}", sub.unwrap_or_default()).into(),
            variables: self.variables(&token.claims),
        })
    }

    /// The name of the API key `token` is, comparing its hash with every key's in constant
    /// time.
    fn api_key(&self, token: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (name, hash) in &self.api_keys {
            if verify_slices_are_equal(&digest, hash).is_ok() {
                found = Some(name.as_str());
            }
        }
        found
    }

    fn variables(&self, claims: &Map<String, Value>) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        for (claim, variable) in &self.claims {
            let value = match claims.get(claim) {
                Some(Value::String(text)) => text.clone(),
                Some(value @ (Value::Number(_) | Value::Bool(_))) => value.to_string(),
                _ => continue,
            };
            variables.insert(variable.clone(), value);
        }
        variables
    }
}

fn invalid(error: TokenError) -> Refusal {
    Refusal::Invalid(error.to_string())
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
