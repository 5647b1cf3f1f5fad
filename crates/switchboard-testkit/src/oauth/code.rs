//! The test authorization server's interactive side: dynamic client registration
//! (`POST /register`, RFC 7591), `GET /authorize` and the `authorization_code` grant with
//! PKCE S256.
//!
//! `/authorize` is the "browser" step done at once: it checks the client, its redirect
//! URI, `response_type=code`, an S256 `code_challenge` and a `state`, then answers 302 to
//! the redirect URI with a one-time `code`, the `state` and `iss` (RFC 9207). Who "signed
//! in" is [`AuthServerHandle::set_next_subject`]'s subject (default `user`). The code is
//! bound to the client, redirect URI, challenge, scopes and `resource`; the token request
//! must repeat them and send the matching `code_verifier`.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::{AuthServerHandle, Grant, IssuedTokens, TestClient, lock, oauth_error};

/// A dynamically registered client.
#[derive(Clone, Debug)]
struct Registered {
    client: TestClient,
    redirect_uris: Vec<String>,
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    grant: Grant,
    resource: Option<String>,
    /// RFC 9449 section 10: the DPoP key (thumbprint) the code is bound to.
    dpop_jkt: Option<String>,
}

/// The interactive side's state (in the server's `Inner`).
pub(crate) struct Flows {
    registered: HashMap<String, Registered>,
    codes: HashMap<String, PendingCode>,
    next_subject: String,
    pub registrations: usize,
    pub authorizations: usize,
    /// The last authorization request's query (no secrets in it).
    pub last_authorize: HashMap<String, String>,
}

impl Default for Flows {
    fn default() -> Self {
        Flows {
            registered: HashMap::new(),
            codes: HashMap::new(),
            next_subject: "user".into(),
            registrations: 0,
            authorizations: 0,
            last_authorize: HashMap::new(),
        }
    }
}

impl AuthServerHandle {
    /// Who the next `/authorize` signs in.
    pub fn set_next_subject(&self, subject: &str) {
        lock(&self.0.flows).next_subject = subject.into();
    }

    /// How many clients registered dynamically.
    pub fn registrations(&self) -> usize {
        lock(&self.0.flows).registrations
    }

    /// How many `/authorize` requests came (valid or not).
    pub fn authorizations(&self) -> usize {
        lock(&self.0.flows).authorizations
    }

    /// The last `/authorize` request's query parameters.
    pub fn last_authorization(&self) -> HashMap<String, String> {
        lock(&self.0.flows).last_authorize.clone()
    }

    /// A dynamically registered client, for the token endpoint's client check.
    pub(crate) fn registered_client(&self, id: &str) -> Option<TestClient> {
        lock(&self.0.flows)
            .registered
            .get(id)
            .map(|r| r.client.clone())
    }
}

/// `POST /register`.
pub(crate) async fn register(
    State(h): State<AuthServerHandle>,
    Json(body): Json<Value>,
) -> Response {
    let redirect_uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if redirect_uris.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris is required",
        );
    }
    let method = body["token_endpoint_auth_method"]
        .as_str()
        .unwrap_or("client_secret_basic")
        .to_owned();
    if method != "none" && !h.0.knobs.auth_methods.contains(&method) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            &format!("token_endpoint_auth_method {method} is not supported"),
        );
    }
    let id = format!("dc-{}", uuid::Uuid::new_v4().simple());
    let secret = (method != "none").then(|| format!("ds-{}", uuid::Uuid::new_v4().simple()));
    let client = TestClient {
        id: id.clone(),
        secret: secret.clone(),
        public_key: None,
    };
    let mut flows = lock(&h.0.flows);
    flows.registrations += 1;
    flows.registered.insert(
        id.clone(),
        Registered {
            client,
            redirect_uris: redirect_uris.clone(),
        },
    );
    let mut answer = json!({
        "client_id": id,
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": ["authorization_code", "refresh_token"],
    });
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET /authorize`: checks the request and redirects at once with a code.
pub(crate) async fn authorize(
    State(h): State<AuthServerHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let mut flows = lock(&h.0.flows);
    flows.authorizations += 1;
    flows.last_authorize = query.clone();
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    let (client_id, redirect_uri) = (get("client_id"), get("redirect_uri"));
    let known_redirect = match flows.registered.get(&client_id) {
        Some(registered) => registered.redirect_uris.contains(&redirect_uri),
        // Pre-registered clients may use any loopback redirect (RFC 8252 section 7.3).
        None if h.0.knobs.clients.iter().any(|c| c.id == client_id) => {
            redirect_uri.starts_with("http://127.0.0.1:")
        }
        None => false,
    };
    let target = url::Url::parse(&redirect_uri)
        .ok()
        .filter(|_| known_redirect);
    let Some(mut target) = target else {
        // Never redirect to an unknown URI: an error page.
        return (
            StatusCode::BAD_REQUEST,
            "unknown client or redirect_uri".to_owned(),
        )
            .into_response();
    };
    let problem = if get("response_type") != "code" {
        Some("response_type must be code")
    } else if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        Some("PKCE with S256 is required")
    } else if get("state").is_empty() {
        Some("state is required")
    } else {
        None
    };
    {
        let mut pairs = target.query_pairs_mut();
        if let Some(problem) = problem {
            pairs
                .append_pair("error", "invalid_request")
                .append_pair("error_description", problem);
        } else {
            let code = format!("ac-{}", uuid::Uuid::new_v4().simple());
            let scopes = query
                .get("scope")
                .map(|s| s.split(' ').map(String::from).collect())
                .unwrap_or_default();
            let grant = Grant {
                subject: flows.next_subject.clone(),
                client_id: client_id.clone(),
                scopes,
            };
            let pending = PendingCode {
                client_id,
                redirect_uri: redirect_uri.clone(),
                challenge: get("code_challenge"),
                grant,
                resource: query.get("resource").cloned(),
                dpop_jkt: query.get("dpop_jkt").cloned(),
            };
            flows.codes.insert(code.clone(), pending);
            pairs.append_pair("code", &code);
        }
        pairs
            .append_pair("state", &get("state"))
            .append_pair("iss", &h.0.issuer);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

/// The `authorization_code` grant for the authenticated `client`.
/// `proof_key`: the key of the request's DPoP proof, if it had one.
pub(crate) fn exchange(
    h: &AuthServerHandle,
    client: &TestClient,
    form: &HashMap<String, String>,
    proof_key: Option<&[u8]>,
) -> Result<IssuedTokens, Box<Response>> {
    let invalid = |why: &str| Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why));
    let code = form.get("code").cloned().unwrap_or_default();
    // One use only, whatever happens next.
    let Some(pending) = lock(&h.0.flows).codes.remove(&code) else {
        return Err(invalid("the code is unknown or was used"));
    };
    if pending.client_id != client.id {
        return Err(invalid("the code was issued to another client"));
    }
    if form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return Err(invalid(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if form.get("resource") != pending.resource.as_ref() {
        return Err(invalid("resource differs from the authorization request's"));
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        verifier.as_bytes(),
    ));
    if computed != pending.challenge {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    if let Some(jkt) = &pending.dpop_jkt
        && proof_key.map(super::dpop::thumbprint).as_ref() != Some(jkt)
    {
        return Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "the code is bound to another DPoP key (dpop_jkt)",
        )));
    }
    Ok(h.issue(pending.grant, h.0.knobs.issue_refresh_tokens))
}
