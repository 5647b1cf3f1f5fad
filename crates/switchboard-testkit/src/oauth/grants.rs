//! The test authorization server's JWT grants: the JWT-bearer grant (RFC 7523) with a JWT
//! its identity provider key signed (a workload's JWT, or an ID-JAG), and that identity
//! provider's token exchange (RFC 8693) at `POST /idp/token`, which turns an ID token into
//! an identity assertion grant (ID-JAG) for this server (enterprise-managed authorization,
//! SEP-990).
//!
//! One key stands for every issuer here: tests sign workload JWTs and ID tokens with
//! [`AuthServerHandle::sign_jwt`]. An ID token's `aud` must be the client id the exchange
//! names; the ID-JAG is issued to that same client id at this server.

use std::collections::HashMap;

use axum::{
    Form, Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::{AuthServerHandle, Grant, IssuedTokens, TestClient, lock, oauth_error};

const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

fn invalid_grant(why: &str) -> Box<Response> {
    Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why))
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` for `client`.
pub(crate) fn jwt_bearer(
    h: &AuthServerHandle,
    client: &TestClient,
    form: &HashMap<String, String>,
) -> Result<IssuedTokens, Box<Response>> {
    let assertion = form.get("assertion").map_or("", String::as_str);
    let audiences = [h.0.issuer.clone(), format!("{}/", h.0.issuer)];
    let (claims, typ) =
        h.0.idp
            .verify(assertion, &audiences)
            .map_err(|why| invalid_grant(&format!("the assertion is not valid: {why}")))?;
    if typ == ID_JAG_TYP {
        if claims["client_id"] != client.id.as_str() {
            return Err(invalid_grant("the ID-JAG was issued to another client"));
        }
        if let Some(resource) = form.get("resource")
            && claims["resource"] != resource.as_str()
        {
            return Err(invalid_grant("the ID-JAG names another resource"));
        }
    }
    let Some(subject) = claims["sub"].as_str() else {
        return Err(invalid_grant("the assertion has no sub"));
    };
    let scopes = form
        .get("scope")
        .map(|s| s.split(' ').map(String::from).collect())
        .unwrap_or_else(|| h.0.knobs.scopes_supported.clone());
    let grant = Grant {
        subject: subject.to_owned(),
        client_id: client.id.clone(),
        scopes,
    };
    // The JWT is the credential: exchanged again, never refreshed.
    Ok(h.issue(grant, false))
}

/// `POST /idp/token`: the identity provider's token exchange of an ID token for an ID-JAG.
pub(crate) async fn idp_token(
    State(h): State<AuthServerHandle>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let get = |key: &str| form.get(key).map_or("", String::as_str);
    *lock(&h.0.tokens)
        .requests
        .entry("token-exchange".into())
        .or_default() += 1;
    let bad = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", why);
    if get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only token exchange here",
        );
    }
    if get("requested_token_type") != ID_JAG_TYPE || get("subject_token_type") != ID_TOKEN_TYPE {
        return bad("an ID token is exchanged for an ID-JAG only");
    }
    if get("audience") != h.0.issuer || get("resource").is_empty() {
        return bad("audience must be the authorization server and resource is needed");
    }
    let client_id = get("client_id");
    let claims = match h
        .0
        .idp
        .verify(get("subject_token"), &[client_id.to_owned()])
    {
        Ok((claims, _)) => claims,
        Err(why) => return *invalid_grant(&format!("the ID token is not valid: {why}")),
    };
    let now = super::jwt::unix_now();
    let jag = h.0.idp.sign(
        ID_JAG_TYP,
        &json!({
            "iss": h.idp_issuer(),
            "sub": claims["sub"],
            "aud": h.0.issuer,
            "client_id": client_id,
            "resource": get("resource"),
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        }),
    );
    Json(json!({
        "access_token": jag,
        "issued_token_type": ID_JAG_TYPE,
        "token_type": "N_A",
        "expires_in": 300,
    }))
    .into_response()
}
