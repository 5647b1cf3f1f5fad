//! HTTP for signing in: metadata GETs and token endpoint POSTs over the shared reqwest
//! client (TLS roots and proxies as every upstream), each bounded in time and size. A
//! token endpoint's error answer is read as RFC 6749 JSON (`error`, `error_description`)
//! into an [`AuthFailure`]; bodies are never logged or put in messages otherwise. Token
//! requests carry a DPoP proof when asked (`dpop.rs`), and one refused with
//! `use_dpop_nonce` is sent once more with the server's nonce.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;

use super::dpop::Dpop;
use crate::error::{AuthFailure, AuthStep};

/// One request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest metadata or token response read.
const MAX_BODY: usize = 1024 * 1024;

/// A metadata GET's outcome.
pub(crate) enum Fetched<T> {
    Found(T),
    /// Not there (4xx, not JSON of that shape): try the next candidate.
    Missing(String),
    /// The server could not be reached or failed (5xx): stop.
    Failed(String),
}

/// The HTTP client of the auth layer (one per token cell: it holds the cell's DPoP key).
#[derive(Clone)]
pub(crate) struct AuthHttp {
    client: reqwest::Client,
    dpop: Option<Arc<Dpop>>,
}

/// What a token endpoint's answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// An access token for the server: `Bearer`, or `DPoP` when the request had a proof.
    AccessToken,
    /// Anything (a token exchange's `N_A` identity assertion grant).
    AnyToken,
}

/// A token endpoint's successful answer (RFC 6749 section 5.1).
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// RFC 8693's `issued_token_type`.
    #[serde(default)]
    pub issued_token_type: Option<String>,
    /// The DPoP key a `DPoP` token is bound to, as stored (not from the answer).
    #[serde(skip)]
    pub dpop_key: Option<String>,
}

#[derive(serde::Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

impl AuthHttp {
    pub fn new(client: reqwest::Client) -> Self {
        AuthHttp { client, dpop: None }
    }

    /// The same client binding tokens with `dpop`.
    pub fn with_dpop(mut self, dpop: Dpop) -> Self {
        self.dpop = Some(Arc::new(dpop));
        self
    }

    /// The DPoP state, when DPoP may be used.
    pub fn dpop(&self) -> Option<&Dpop> {
        self.dpop.as_deref()
    }

    /// Whether token requests to an authorization server listing `algs` carry a proof
    /// (`stored_key`: the token being refreshed is bound to a key).
    pub fn uses_dpop(&self, algs: &[String], stored_key: bool) -> bool {
        self.dpop().is_some_and(|d| d.applies(algs, stored_key))
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Fetched<T> {
        let request = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT);
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Fetched::Failed(network_cause("metadata", &e)),
        };
        let status = response.status();
        if status.is_server_error() {
            return Fetched::Failed(format!("HTTP {} from a metadata URL", status.as_u16()));
        }
        if !status.is_success() {
            return Fetched::Missing(format!("HTTP {}", status.as_u16()));
        }
        match read_bounded(response).await {
            Ok(body) => match serde_json::from_slice(&body) {
                Ok(found) => Fetched::Found(found),
                Err(_) => Fetched::Missing("not a metadata document".into()),
            },
            Err(why) => Fetched::Failed(why),
        }
    }

    /// POSTs a JSON `body` (dynamic client registration, RFC 7591); the answer's JSON on
    /// 200/201, else a failure at `registration` with the server's `error`.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &serde_json::Value,
    ) -> Result<T, AuthFailure> {
        let request = self
            .client
            .post(endpoint)
            .header(http::header::ACCEPT, "application/json")
            .timeout(REQUEST_TIMEOUT)
            .json(body);
        let response = send_once_more_if_cut(request).await.map_err(|e| {
            AuthFailure::new(AuthStep::Registration, network_cause("registration", &e))
        })?;
        let status = response.status();
        let body = read_bounded(response)
            .await
            .map_err(|why| AuthFailure::new(AuthStep::Registration, why))?;
        if !status.is_success() {
            let said: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
            let (error, description) = said
                .map(|e| (e.error, e.error_description))
                .unwrap_or_default();
            return Err(AuthFailure::from_server(
                AuthStep::Registration,
                error.as_deref(),
                description.as_deref(),
                format!("HTTP {} from the registration endpoint", status.as_u16()),
            ));
        }
        serde_json::from_slice(&body).map_err(|_| {
            AuthFailure::new(
                AuthStep::Registration,
                "the registration endpoint's answer is not a client registration",
            )
        })
    }

    /// POSTs `form` to the token endpoint, with `basic` (id, secret) as HTTP Basic when
    /// given (RFC 6749 section 2.3.1: both form-urlencoded first), and a DPoP proof when
    /// `dpop`.
    pub async fn token_request(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        expect: Expect,
        dpop: bool,
    ) -> Result<TokenResponse, AuthFailure> {
        let dpop = self.dpop().filter(|_| dpop);
        let body = form_encode(form);
        let mut nonce_retry = dpop.is_some();
        let (status, body) = loop {
            let mut request = self
                .client
                .post(endpoint)
                .header(http::header::ACCEPT, "application/json")
                .header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .timeout(REQUEST_TIMEOUT)
                .body(body.clone());
            if let Some((id, secret)) = basic {
                let user = form_encode_part(id);
                let password = form_encode_part(secret);
                request = request.basic_auth(user, Some(password));
            }
            if let Some(dpop) = dpop {
                request = request.header("DPoP", dpop.token_proof(endpoint)?);
            }
            let response = send_once_more_if_cut(request)
                .await
                .map_err(|e| AuthFailure::new(AuthStep::Token, network_cause("token", &e)))?;
            let status = response.status();
            let nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = read_bounded(response)
                .await
                .map_err(|why| AuthFailure::new(AuthStep::Token, why))?;
            if let (Some(dpop), Some(nonce)) = (dpop, nonce.as_deref()) {
                dpop.set_as_nonce(nonce);
                // RFC 9449 section 8: refused for want of the nonce it now gave.
                if status == StatusCode::BAD_REQUEST
                    && nonce_retry
                    && error_code(&body).as_deref() == Some("use_dpop_nonce")
                {
                    nonce_retry = false;
                    continue;
                }
            }
            break (status, body);
        };
        if status != StatusCode::OK {
            let said: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
            let (error, description) = said
                .map(|e| (e.error, e.error_description))
                .unwrap_or_default();
            return Err(AuthFailure::from_server(
                AuthStep::Token,
                error.as_deref(),
                description.as_deref(),
                format!("HTTP {} from the token endpoint", status.as_u16()),
            ));
        }
        let mut token: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
            AuthFailure::new(
                AuthStep::Token,
                "the token endpoint's answer is not a token response",
            )
        })?;
        match (expect, token.token_type.as_deref(), dpop) {
            (Expect::AnyToken, _, _) => Ok(token),
            (_, Some(kind), _) if kind.eq_ignore_ascii_case("bearer") => Ok(token),
            (_, Some(kind), Some(dpop)) if kind.eq_ignore_ascii_case("dpop") => {
                token.dpop_key = Some(dpop.stored_key()?);
                Ok(token)
            }
            (_, other, _) => Err(AuthFailure::new(
                AuthStep::Token,
                format!("the token endpoint issued a token of type {other:?}, not Bearer"),
            )),
        }
    }
}

impl AuthHttp {
    /// POSTs a revocation request (RFC 7009) to `endpoint`; `Ok` on 200.
    pub async fn revoke(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(), AuthFailure> {
        let mut request = self
            .client
            .post(endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .timeout(REQUEST_TIMEOUT)
            .body(form_encode(form));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(form_encode_part(id), Some(form_encode_part(secret)));
        }
        let response = request
            .send()
            .await
            .map_err(|e| AuthFailure::new(AuthStep::Token, network_cause("revocation", &e)))?;
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(());
        }
        let body = read_bounded(response).await.unwrap_or_default();
        let said: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
        let (error, description) = said
            .map(|e| (e.error, e.error_description))
            .unwrap_or_default();
        Err(AuthFailure::from_server(
            AuthStep::Token,
            error.as_deref(),
            description.as_deref(),
            format!("HTTP {} from the revocation endpoint", status.as_u16()),
        ))
    }
}

/// The `error` of an RFC 6749 error answer.
fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorResponse>(body).ok()?.error
}

/// Sends `request`; when it failed without an answer and not by timing out (typically a
/// kept-alive connection the server had just closed), sends it once more. An answered
/// request is never sent again.
async fn send_once_more_if_cut(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, reqwest::Error> {
    let again = request.try_clone();
    match request.send().await {
        Err(e) if !e.is_timeout() && again.is_some() => {
            tracing::debug!(
                "an authorization server request failed without an answer; sending it once more"
            );
            again.expect("checked").send().await
        }
        other => other,
    }
}

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| network_cause("response", &e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err("the answer is larger than 1 MiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest failure in words, without the URL (its query may hold a secret).
fn network_cause(what: &str, error: &reqwest::Error) -> String {
    let cause = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("the {what} request {cause}")
}

fn form_encode(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", form_encode_part(k), form_encode_part(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encode_part(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
