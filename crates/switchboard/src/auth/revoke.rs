//! Signing out: a key's stored tokens deleted, and revoked at the authorization server
//! (RFC 7009) when its metadata names a `revocation_endpoint`. Revocation is best effort:
//! the local record goes regardless, and [`SignedOut`] says what the server did.
//!
//! The refresh token is revoked (which, RFC 7009 section 2.1, should end its access tokens
//! too), then the access token. The client is the one the record was issued to: a
//! registered client's stored secret is used; a configured secret is never stored, so a
//! confidential pre-registered client's revocation may be refused (then `Failed`).
//!
//! All of it under the store's renewal lock for the key: a renewal under way elsewhere (a
//! gateway replica, another process on the same store) finishes first, and its new tokens
//! are the ones revoked and deleted, instead of being stored after the sign-out.

use super::http::AuthHttp;
use super::metadata;
use super::store::{StoreError, TokenKey, TokenRecord, TokenStore};
use crate::config::TokenAuthMethod;

/// What signing out did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedOut {
    /// Tokens were stored (and are now deleted).
    pub had_tokens: bool,
    pub revocation: Revocation,
}

/// What the authorization server was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// It revoked the tokens.
    Revoked,
    /// Its metadata names no revocation endpoint (or could not be read).
    NotOffered,
    /// It was asked and refused, or could not be reached: why (never a token).
    Failed(String),
    /// Nothing to revoke.
    NotTried,
}

/// Signs `key` out of `store` (see the module docs).
pub async fn sign_out(store: &dyn TokenStore, key: &TokenKey) -> Result<SignedOut, StoreError> {
    let _renewals_wait = store.lock(key).await?;
    let Some(record) = store.load(key).await? else {
        return Ok(SignedOut {
            had_tokens: false,
            revocation: Revocation::NotTried,
        });
    };
    // The engine's own HTTP client settings (TLS roots, proxies), one connection.
    let http_client = crate::transport::http::Clients::default()
        .reqwest_any(crate::config::HttpConnections::PerRequest);
    let revocation = revoke(&AuthHttp::new(http_client), &record).await;
    store.remove(key).await?;
    Ok(SignedOut {
        had_tokens: true,
        revocation,
    })
}

async fn revoke(http: &AuthHttp, record: &TokenRecord) -> Revocation {
    let Some(issuer) = &record.issuer else {
        return Revocation::NotOffered;
    };
    let Some(endpoint) = metadata::server_metadata(http, issuer)
        .await
        .and_then(|m| m.revocation_endpoint)
    else {
        return Revocation::NotOffered;
    };
    let client_id = record.client_id.as_deref().unwrap_or_default();
    let secret = record.client_secret.as_deref();
    let method = record.client_auth_method.as_deref();
    let post = method == Some(TokenAuthMethod::ClientSecretPost.as_str());
    let tokens = [
        (record.refresh_token.as_deref(), "refresh_token"),
        (Some(record.access_token.as_str()), "access_token"),
    ];
    for (token, hint) in tokens {
        let Some(token) = token else { continue };
        let mut form = vec![("token", token), ("token_type_hint", hint)];
        let basic = match secret {
            Some(secret) if !post => Some((client_id, secret)),
            Some(secret) => {
                form.extend([("client_id", client_id), ("client_secret", secret)]);
                None
            }
            None if !client_id.is_empty() => {
                form.push(("client_id", client_id));
                None
            }
            None => None,
        };
        if let Err(failure) = http.revoke(&endpoint, &form, basic).await {
            return Revocation::Failed(failure.to_string());
        }
    }
    Revocation::Revoked
}
