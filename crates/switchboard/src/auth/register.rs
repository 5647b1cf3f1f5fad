//! Which client signs in: a pre-registered one (`client_id` [+ secret or key] in the
//! config), else a Client ID Metadata Document (`client_metadata_url` as the client id,
//! only when the authorization server says `client_id_metadata_document_supported`), else
//! one registered now by dynamic client registration (RFC 7591).
//!
//! Dynamic registration asks for a native public client on the loopback redirect URI
//! (`application_type: native`, SEP-837) with the authorization-code and refresh-token
//! grants, and for the token endpoint method the server supports: `none` if listed, else
//! `client_secret_basic`, else `client_secret_post`. What the server answers wins: its
//! `token_endpoint_auth_method`, and a `client_secret` when it issues one.

use serde::Deserialize;
use serde_json::json;

use super::http::AuthHttp;
use super::machine::{Client, ClientSecret};
use super::metadata::ServerMetadata;
use crate::config::TokenAuthMethod;
use crate::error::{AuthFailure, AuthStep};

/// The configured client, if any (from `[servers.X.auth]`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientChoice {
    pub preregistered: Option<Client>,
    pub client_metadata_url: Option<String>,
}

/// How the client was had, for logs and the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registered {
    Preregistered,
    MetadataDocument,
    Dynamic,
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// The client to sign in with at the server `metadata` describes.
pub(crate) async fn client_for(
    http: &AuthHttp,
    choice: &ClientChoice,
    metadata: &ServerMetadata,
    redirect_uri: &str,
    scope: Option<&str>,
) -> Result<(Client, Registered), AuthFailure> {
    if let Some(client) = &choice.preregistered {
        return Ok((client.clone(), Registered::Preregistered));
    }
    if let Some(url) = &choice.client_metadata_url
        && metadata.client_id_metadata_document_supported
    {
        let client = Client {
            id: url.clone(),
            secret: None,
            private_key_file: None,
            method: Some(TokenAuthMethod::None),
        };
        return Ok((client, Registered::MetadataDocument));
    }
    let Some(endpoint) = &metadata.registration_endpoint else {
        return Err(AuthFailure::new(
            AuthStep::Registration,
            "the authorization server supports neither dynamic client registration nor \
             client metadata documents; set client_id (and client_secret) in [servers.NAME.auth]",
        ));
    };
    let wanted = wanted_method(metadata.token_endpoint_auth_methods_supported.as_deref());
    let mut body = json!({
        "client_name": "Switchboard",
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "native",
        "token_endpoint_auth_method": wanted.as_str(),
    });
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    let registered: RegistrationResponse = http.post_json(endpoint, &body).await?;
    let answered = registered
        .token_endpoint_auth_method
        .as_deref()
        .and_then(|m| TokenAuthMethod::ALL.iter().find(|(_, n)| *n == m))
        .map(|(m, _)| *m);
    let method = answered.unwrap_or(wanted);
    tracing::debug!(method = method.as_str(), "registered a client");
    let client = Client {
        id: registered.client_id,
        // A secret is only of use with a method that sends it.
        secret: registered
            .client_secret
            .filter(|_| method != TokenAuthMethod::None)
            .map(ClientSecret),
        private_key_file: None,
        method: Some(method),
    };
    Ok((client, Registered::Dynamic))
}

/// The token endpoint method to ask for at registration.
fn wanted_method(supported: Option<&[String]>) -> TokenAuthMethod {
    let Some(supported) = supported else {
        // Nothing listed: a public native client.
        return TokenAuthMethod::None;
    };
    let listed = |m: &str| supported.iter().any(|s| s == m);
    if listed("none") {
        TokenAuthMethod::None
    } else if listed("client_secret_basic") {
        TokenAuthMethod::ClientSecretBasic
    } else if listed("client_secret_post") {
        TokenAuthMethod::ClientSecretPost
    } else {
        TokenAuthMethod::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_asks_for_a_method_the_server_lists() {
        let list = |m: &[&str]| m.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(wanted_method(None), TokenAuthMethod::None);
        assert_eq!(
            wanted_method(Some(&list(&["client_secret_post", "client_secret_basic"]))),
            TokenAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            wanted_method(Some(&list(&["client_secret_post"]))),
            TokenAuthMethod::ClientSecretPost
        );
        assert_eq!(
            wanted_method(Some(&list(&["none", "client_secret_basic"]))),
            TokenAuthMethod::None
        );
    }
}
