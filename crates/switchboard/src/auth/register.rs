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
//!
//! A dynamically registered client is kept in the token store per (issuer, configured
//! callback port) and reused by every later sign-in there, any principal, any process
//! ([`client_with_callback`]): on its own loopback port again (a strict server compares
//! redirect URIs exactly), registering anew when that port is taken. A server that moved
//! is another issuer, so it gets its own registration (SEP-2352). When a sign-in with a
//! kept client fails (the server may have dropped it: it answers `invalid_client`, or never
//! redirects back), the flow forgets it ([`forget_kept`]) and the next sign-in registers.

use serde::Deserialize;
use serde_json::json;

use super::callback::Callback;
use super::http::AuthHttp;
use super::machine::{Client, ClientSecret};
use super::metadata::ServerMetadata;
use super::store::{Registration, RegistrationKey, TokenStore};
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
    /// Registered dynamically by an earlier sign-in, kept in the store.
    Kept,
}

/// The client to sign in with and the listener for its redirect URI.
pub(crate) struct Signing {
    pub client: Client,
    pub registered: Registered,
    pub callback: Callback,
    /// Where the registration is kept.
    pub key: RegistrationKey,
}

/// The client and the loopback listener for a sign-in at `issuer` (see the module docs):
/// a kept registration on its own port when there is one, else a listener on
/// `redirect_port` (0: any) and [`client_for`], whose dynamic registration is then kept.
pub(crate) async fn client_with_callback(
    http: &AuthHttp,
    store: &dyn TokenStore,
    choice: &ClientChoice,
    metadata: &ServerMetadata,
    issuer: &str,
    redirect_port: u16,
    scope: Option<&str>,
) -> Result<Signing, AuthFailure> {
    let key = RegistrationKey {
        issuer: issuer.to_owned(),
        redirect_port: (redirect_port != 0).then_some(redirect_port),
    };
    let dynamic = choice.preregistered.is_none()
        && !(choice.client_metadata_url.is_some()
            && metadata.client_id_metadata_document_supported);
    if dynamic && let Some(kept) = kept(store, &key).await {
        let port = url::Url::parse(&kept.redirect_uri)
            .ok()
            .and_then(|u| u.port());
        if let Some(port) = port
            && let Ok(callback) = Callback::bind(port).await
            && callback.redirect_uri() == kept.redirect_uri
        {
            tracing::debug!(issuer, "using the client registered there before");
            let method = kept
                .auth_method
                .as_deref()
                .and_then(|m| TokenAuthMethod::ALL.iter().find(|(_, n)| *n == m))
                .map(|(m, _)| *m);
            let client = Client {
                id: kept.client_id,
                secret: kept.client_secret.map(ClientSecret),
                private_key_file: None,
                method,
            };
            return Ok(Signing {
                client,
                registered: Registered::Kept,
                callback,
                key,
            });
        }
        tracing::debug!(
            issuer,
            "the kept registration's callback port is taken; registering anew"
        );
    }
    let callback = Callback::bind(redirect_port).await?;
    let redirect_uri = callback.redirect_uri();
    let (client, registered) = client_for(http, choice, metadata, &redirect_uri, scope).await?;
    if registered == Registered::Dynamic {
        let mut registration = Registration::new(client.id.clone(), redirect_uri);
        registration.client_secret = client.secret.as_ref().map(|s| s.0.clone());
        registration.auth_method = client.method.map(|m| m.as_str().to_owned());
        if let Err(e) = store.save_registration(&key, &registration).await {
            tracing::warn!(issuer, "could not keep the client registration: {e}");
        }
    }
    Ok(Signing {
        client,
        registered,
        callback,
        key,
    })
}

async fn kept(store: &dyn TokenStore, key: &RegistrationKey) -> Option<Registration> {
    store.load_registration(key).await.unwrap_or_else(|e| {
        tracing::warn!(issuer = %key.issuer, "could not read the kept client registration: {e}");
        None
    })
}

/// After a failed sign-in with a kept client: forget it unless the person refused, so the
/// next sign-in registers again.
pub(crate) async fn forget_kept(
    store: &dyn TokenStore,
    signing: &RegistrationKey,
    failure: &AuthFailure,
) {
    if failure.error.as_deref() == Some("access_denied") {
        return;
    }
    tracing::info!(issuer = %signing.issuer, "the sign-in with the kept client failed; it will register again");
    if let Err(e) = store.remove_registration(signing).await {
        tracing::warn!(issuer = %signing.issuer, "could not forget the client registration: {e}");
    }
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
