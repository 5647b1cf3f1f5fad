//! Signing requests in: the [`Authorizer`] a connection may have (the `auth` layer
//! implements it), and [`HttpClient::send_authorized`], which every request of the
//! Streamable HTTP client goes through.
//!
//! Per request: the authorizer's current `Authorization` value (no I/O while its token is
//! fresh) is set, marked sensitive. On a 401 the authorizer is told which token generation
//! was refused and the challenge; if it has a new token (it refreshed or exchanged again,
//! or another request already did) the same request is sent once more with it. A 401
//! means the server did not run the request, so sending it again keeps the rule that a
//! request is resent only when it provably did not run. Anything else (a second 401, a
//! sign-in failure) goes back to the caller. A 403 with `error="insufficient_scope"` is
//! the same with [`Authorizer::insufficient_scope`] (step-up: a new authorization with
//! more scope), also at most once per request.
//!
//! A DPoP-bound credential (RFC 9449) has a [`Proof`]: every request (and the resent one)
//! gets a fresh `DPoP` proof header; a `DPoP-Nonce` in any answer is kept for the next
//! proofs, and a 401 `error="use_dpop_nonce"` that brought a new nonce is answered by
//! sending the request once more (the server did not run it).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, HeaderName, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::client::{ClientError, HttpClient, ResponseBody};
use crate::error::{AuthFailure, challenge_param};

const DPOP: HeaderName = HeaderName::from_static("dpop");
const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// An `Authorization` header value and the generation of the token in it.
#[derive(Clone)]
pub struct Credential {
    /// `Bearer …` or `DPoP …`, marked sensitive.
    pub header: HeaderValue,
    /// Which token this is: a refusal names it, so only the first refusal of a token
    /// replaces it.
    pub generation: u64,
    /// For a DPoP-bound token: what makes each request's proof.
    pub proof: Option<Arc<dyn Proof>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("generation", &self.generation)
            .field("dpop", &self.proof.is_some())
            .finish_non_exhaustive()
    }
}

/// Proof of possession for a DPoP-bound token (RFC 9449).
pub trait Proof: Send + Sync + 'static {
    /// A fresh `DPoP` header value for a request with `method` to `url` (`None`: it could
    /// not be made; the request goes without and the server refuses it).
    fn header(&self, method: &Method, url: &str) -> Option<HeaderValue>;

    /// The server's `DPoP-Nonce`, for the next proofs; `true` when it is a new one.
    fn nonce(&self, nonce: &str) -> bool;
}

/// Where one connection's requests get their credentials.
pub trait Authorizer: Send + Sync + 'static {
    /// The credential for the next request. Without I/O while the current token is fresh;
    /// one that is about to expire is replaced first. `None`: send without one (the
    /// server's challenge will say how to sign in).
    fn credential(&self) -> BoxFuture<'_, Result<Option<Credential>, AuthFailure>>;

    /// The server answered 401 to a request that carried generation `sent` (`None`: no
    /// credential). `Ok(true)`: a new credential is ready, send once more; `Ok(false)`:
    /// nothing to do, the 401 stands.
    fn refused<'a>(
        &'a self,
        sent: Option<u64>,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, AuthFailure>>;

    /// The server answered 403 `insufficient_scope` to a request that carried generation
    /// `sent`; `challenge` names the scope it needs. `Ok(true)`: a token with more scope is
    /// ready (step-up), send once more. The default: nothing to do.
    fn insufficient_scope<'a>(
        &'a self,
        sent: Option<u64>,
        challenge: &'a str,
    ) -> BoxFuture<'a, Result<bool, AuthFailure>> {
        let _ = (sent, challenge);
        Box::pin(async { Ok(false) })
    }
}

impl HttpClient {
    /// Sets this connection's attached token on `headers`, sends, and on a 401 lets the
    /// authorizer replace the token and sends once more (and once more for a DPoP nonce).
    pub(super) async fn send_authorized(
        &self,
        method: Method,
        uri: &Arc<str>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<ResponseBody>, ClientError> {
        let Some(authorizer) = &self.authorizer else {
            return self.send(method, uri, headers, body).await;
        };
        let (mut renewals, mut nonces) = (1, 1);
        loop {
            let mut sending = headers.clone();
            let sent = attach(authorizer.as_ref(), &method, uri, &mut sending).await?;
            let response = self
                .send(method.clone(), uri, sending, body.clone())
                .await?;
            let new_nonce = took_nonce(sent.as_ref(), response.headers());
            let status = response.status();
            if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
                return Ok(response);
            }
            let sent = sent.map(|credential| credential.generation);
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let error = challenge
                .as_deref()
                .and_then(|challenge| challenge_param(challenge, "error"));
            let again = match (status, error.as_deref()) {
                // The proof lacked the nonce the server just gave: the same token, a new
                // proof.
                (StatusCode::UNAUTHORIZED, Some("use_dpop_nonce")) if new_nonce && nonces > 0 => {
                    nonces -= 1;
                    Ok(true)
                }
                _ if renewals == 0 => Ok(false),
                (StatusCode::UNAUTHORIZED, _) => {
                    renewals -= 1;
                    authorizer.refused(sent, challenge.as_deref()).await
                }
                (_, Some("insufficient_scope")) => {
                    renewals -= 1;
                    let challenge = challenge.as_deref().unwrap_or_default();
                    authorizer.insufficient_scope(sent, challenge).await
                }
                _ => Ok(false),
            }
            .map_err(|failure| ClientError::SignIn(Box::new(failure)))?;
            if !again {
                return Ok(response);
            }
            tracing::debug!(
                refused = ?sent,
                "the server refused the token; sending the request once more"
            );
        }
    }
}

/// Keeps the `DPoP-Nonce` of an answer to a request that carried a proof; whether it is
/// new.
fn took_nonce(sent: Option<&Credential>, headers: &HeaderMap) -> bool {
    let Some(proof) = sent.and_then(|credential| credential.proof.as_ref()) else {
        return false;
    };
    headers
        .get(DPOP_NONCE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|nonce| proof.nonce(nonce))
}

/// Puts the authorizer's credential (and its proof for `method` on `uri`) on `headers`.
async fn attach(
    authorizer: &dyn Authorizer,
    method: &Method,
    uri: &str,
    headers: &mut HeaderMap,
) -> Result<Option<Credential>, ClientError> {
    let credential = authorizer
        .credential()
        .await
        .map_err(|failure| ClientError::SignIn(Box::new(failure)))?;
    if let Some(credential) = &credential {
        headers.insert(AUTHORIZATION, credential.header.clone());
        match credential
            .proof
            .as_ref()
            .and_then(|p| p.header(method, uri))
        {
            Some(proof) => {
                headers.insert(DPOP, proof);
            }
            None => {
                headers.remove(DPOP);
            }
        }
    }
    Ok(credential)
}
