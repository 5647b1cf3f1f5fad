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

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use super::client::{ClientError, HttpClient, ResponseBody};
use crate::error::{AuthFailure, challenge_param};

/// An `Authorization` header value and the generation of the token in it.
#[derive(Clone)]
pub struct Credential {
    /// `Bearer …`, marked sensitive.
    pub header: HeaderValue,
    /// Which token this is: a refusal names it, so only the first refusal of a token
    /// replaces it.
    pub generation: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
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
    /// authorizer replace the token and sends once more.
    pub(super) async fn send_authorized(
        &self,
        method: Method,
        uri: &Arc<str>,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<ResponseBody>, ClientError> {
        let Some(authorizer) = &self.authorizer else {
            return self.send(method, uri, headers, body).await;
        };
        let sent = attach(authorizer.as_ref(), &mut headers).await?;
        let retry = (method.clone(), headers.clone(), body.clone());
        let response = self.send(method, uri, headers, body).await?;
        let status = response.status();
        if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
            return Ok(response);
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let renewed = match (status, challenge.as_deref()) {
            (StatusCode::UNAUTHORIZED, challenge) => authorizer.refused(sent, challenge).await,
            (_, Some(challenge))
                if challenge_param(challenge, "error").as_deref() == Some("insufficient_scope") =>
            {
                authorizer.insufficient_scope(sent, challenge).await
            }
            _ => Ok(false),
        }
        .map_err(|failure| ClientError::SignIn(Box::new(failure)))?;
        if !renewed {
            return Ok(response);
        }
        drop(response);
        let (method, mut headers, body) = retry;
        let again = attach(authorizer.as_ref(), &mut headers).await?;
        tracing::debug!(
            refused = ?sent,
            now = ?again,
            "the server refused the token; sending the request once more with a new one"
        );
        self.send(method, uri, headers, body).await
    }
}

/// Puts the authorizer's credential on `headers`; returns its generation.
async fn attach(
    authorizer: &dyn Authorizer,
    headers: &mut HeaderMap,
) -> Result<Option<u64>, ClientError> {
    let credential = authorizer
        .credential()
        .await
        .map_err(|failure| ClientError::SignIn(Box::new(failure)))?;
    Ok(credential.map(|credential| {
        headers.insert(AUTHORIZATION, credential.header);
        credential.generation
    }))
}
