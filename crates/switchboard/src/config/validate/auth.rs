//! `[servers.NAME.auth]`: one raw auth table into an [`AuthConfig`].
//!
//! What is checked: that the server is a Streamable HTTP one (stdio servers have no HTTP to
//! sign in on; legacy SSE is not signed in to yet), the kind and the token endpoint method
//! by name, that the credentials fit them (a secret needs a `client_id`; client credentials
//! need a secret or a private key; `private_key_jwt` needs a key file that can be read),
//! template syntax of the secret (never its value), the URLs, the port and the duration.

use std::path::{Path, PathBuf};

use crate::config::checks::{UrlWording, check_http_url, one_of, parse_duration};
use crate::config::diagnostics::Ctx;
use crate::config::raw::RawAuth;
use crate::config::template::check_syntax;
use crate::config::types::{
    AuthConfig, AuthKind, DpopMode, IdpConfig, Secret, TokenAuthMethod, TokenSource, TransportKind,
};
use crate::error::ConfigError;

/// Validates the `auth` table of server `server`, whose transport is `transport`.
pub(super) fn validate_auth(
    ctx: &Ctx<'_>,
    server: &str,
    transport: TransportKind,
    raw: RawAuth,
) -> Result<AuthConfig, ConfigError> {
    let err = |key: Option<&str>, problem: String, fix: String| {
        let mut path = vec!["servers", server, "auth"];
        path.extend(key);
        ctx.error_at(&path, problem, fix)
    };
    match transport {
        TransportKind::StreamableHttp => {}
        TransportKind::Stdio => {
            return Err(err(
                None,
                "'auth' only applies to URL servers, but this server uses stdio".to_string(),
                "remove the [auth] table; a stdio server gets its credentials through 'env' \
                 (e.g. env = { API_KEY = \"${env:API_KEY}\" })"
                    .to_string(),
            ));
        }
        TransportKind::Sse => {
            return Err(err(
                None,
                "signing in is not supported for legacy HTTP+SSE servers yet".to_string(),
                "use the server's Streamable HTTP URL, or send a token with headers = \
                 { Authorization = \"Bearer ${env:TOKEN}\" }"
                    .to_string(),
            ));
        }
    }

    let mut auth = AuthConfig::new(match raw.kind.as_deref() {
        None => AuthKind::default(),
        Some(value) => one_of(value, &AuthKind::ALL, "auth kind")
            .map_err(|(problem, fix)| err(Some("kind"), problem, fix))?,
    });
    auth.token_endpoint_auth_method = match raw.token_endpoint_auth_method.as_deref() {
        None => None,
        Some(value) => Some(
            one_of(value, &TokenAuthMethod::ALL, "token endpoint auth method")
                .map_err(|(problem, fix)| err(Some("token_endpoint_auth_method"), problem, fix))?,
        ),
    };
    auth.dpop = match raw.dpop.as_deref() {
        None => DpopMode::default(),
        Some(value) => one_of(value, &DpopMode::ALL, "dpop mode")
            .map_err(|(problem, fix)| err(Some("dpop"), problem, fix))?,
    };
    auth.client_id = raw.client_id.filter(|id| !id.trim().is_empty());
    let secret = |key: &'static str, value: Option<String>| {
        value
            .map(|value| {
                check_syntax(key, &value)
                    .map(|()| Secret::new(value))
                    .map_err(|e| {
                        err(
                            Some(key),
                            e.to_string(),
                            "write the secret as ${env:NAME} (or $$ for a literal $)".to_string(),
                        )
                    })
            })
            .transpose()
    };
    auth.client_secret = secret("client_secret", raw.client_secret)?;
    auth.private_key_file = raw
        .private_key_file
        .map(|file| resolve(ctx.file, &file))
        .transpose()
        .map_err(|(problem, fix)| err(Some("private_key_file"), problem, fix))?;
    let (token_key, file_key) = match auth.kind {
        AuthKind::Enterprise => ("id_token", "id_token_file"),
        _ => ("assertion", "assertion_file"),
    };
    let (inline, file, other) = match auth.kind {
        AuthKind::Enterprise => (
            raw.id_token,
            raw.id_token_file,
            raw.assertion.or(raw.assertion_file).map(|_| "assertion"),
        ),
        _ => (
            raw.assertion,
            raw.assertion_file,
            raw.id_token.or(raw.id_token_file).map(|_| "id_token"),
        ),
    };
    if let Some(other) = other {
        return Err(err(
            Some(other),
            format!(
                "'{other}' does not apply to kind = \"{}\"",
                auth.kind.as_str()
            ),
            "a workload's JWT is kind = \"jwt_bearer\" with 'assertion'; a person's ID \
             token is kind = \"enterprise\" with 'id_token'"
                .to_string(),
        ));
    }
    auth.subject_token = match (secret(token_key, inline)?, file) {
        (Some(_), Some(_)) => {
            return Err(err(
                Some(file_key),
                format!("both '{token_key}' and '{file_key}' are set"),
                format!(
                    "keep one: the token itself ({token_key} = \"${{env:NAME}}\") or the file it is in"
                ),
            ));
        }
        (Some(inline), None) => Some(TokenSource::Inline(inline)),
        (None, Some(file)) => Some(TokenSource::File(beside(ctx.file, &file))),
        (None, None) => None,
    };
    let idp_url = |key: &'static str, value: Option<String>, example: &'static str| {
        value
            .map(|url| {
                let wording = UrlWording {
                    subject: key,
                    example,
                };
                check_http_url(&url, &wording)
                    .map(|()| url)
                    .map_err(|(problem, fix)| err(Some(key.trim_matches('\'')), problem, fix))
            })
            .transpose()
    };
    let token_endpoint = idp_url(
        "'idp_token_endpoint'",
        raw.idp_token_endpoint,
        "idp_token_endpoint = \"https://idp.example.com/oauth2/token\"",
    )?;
    let issuer = idp_url(
        "'idp_issuer'",
        raw.idp_issuer,
        "idp_issuer = \"https://idp.example.com\"",
    )?;
    if token_endpoint.is_some() || issuer.is_some() {
        auth.idp = Some(IdpConfig {
            token_endpoint,
            issuer,
            client_id: raw.idp_client_id.filter(|id| !id.trim().is_empty()),
            client_secret: secret("idp_client_secret", raw.idp_client_secret)?,
        });
    }
    auth.scopes = raw.scopes.unwrap_or_default();
    if let Some(scope) = auth.scopes.iter().find(|s| s.is_empty() || s.contains(' ')) {
        return Err(err(
            Some("scopes"),
            format!("the scope {scope:?} is empty or contains a space"),
            "list each scope on its own, e.g. scopes = [\"read\", \"write\"]".to_string(),
        ));
    }
    if let Some(url) = raw.client_metadata_url {
        if !url.starts_with("https://") {
            return Err(err(
                Some("client_metadata_url"),
                "'client_metadata_url' must be an https URL".to_string(),
                "use the https URL of your client metadata document, e.g. \
                 client_metadata_url = \"https://example.com/switchboard.json\""
                    .to_string(),
            ));
        }
        let wording = UrlWording {
            subject: "'client_metadata_url'",
            example: "client_metadata_url = \"https://example.com/switchboard.json\"",
        };
        check_http_url(&url, &wording)
            .map_err(|(problem, fix)| err(Some("client_metadata_url"), problem, fix))?;
        auth.client_metadata_url = Some(url);
    }
    if let Some(url) = raw.token_url {
        let wording = UrlWording {
            subject: "'token_url'",
            example: "token_url = \"https://login.example.com/oauth2/token\"",
        };
        check_http_url(&url, &wording)
            .map_err(|(problem, fix)| err(Some("token_url"), problem, fix))?;
        auth.token_url = Some(url);
    }
    if let Some(port) = raw.redirect_port {
        auth.redirect_port = Some(u16::try_from(port).map_err(|_| {
            err(
                Some("redirect_port"),
                format!("'redirect_port' is {port}; it must be a port number (0 to 65535)"),
                "use a free local port, e.g. redirect_port = 8765, or leave it out for any \
                 free port"
                    .to_string(),
            )
        })?)
        .filter(|port| *port != 0);
    }
    if let Some(value) = raw.refresh_before {
        auth.refresh_before = parse_duration("refresh_before", &value)
            .map_err(|(problem, fix)| err(Some("refresh_before"), problem, fix))?;
    }
    if let Some(principal) = raw.principal {
        if principal.trim().is_empty() {
            return Err(err(
                Some("principal"),
                "'principal' is empty".to_string(),
                "name whose tokens the shared connection uses, e.g. principal = \"ci-bot\", \
                 or leave it out"
                    .to_string(),
            ));
        }
        auth.principal = principal;
    }
    check_credentials(&auth).map_err(|(key, problem, fix)| err(Some(key), problem, fix))?;
    Ok(auth)
}

/// That the credentials fit the kind and the token endpoint method.
fn check_credentials(auth: &AuthConfig) -> Result<(), (&'static str, String, String)> {
    check_exchange(auth)?;
    if auth.client_id.is_none() {
        for (present, key) in [
            (auth.client_secret.is_some(), "client_secret"),
            (auth.private_key_file.is_some(), "private_key_file"),
        ] {
            if present {
                return Err((
                    key,
                    format!("'{key}' is set but 'client_id' is not"),
                    "add the client id the authorization server gave you, e.g. \
                     client_id = \"my-client\""
                        .to_string(),
                ));
            }
        }
    }
    if auth.client_secret.is_some() && auth.private_key_file.is_some() {
        return Err((
            "private_key_file",
            "both 'client_secret' and 'private_key_file' are set".to_string(),
            "keep one: a client authenticates with a secret or with a private key".to_string(),
        ));
    }
    match auth.token_endpoint_auth_method {
        Some(TokenAuthMethod::PrivateKeyJwt) if auth.private_key_file.is_none() => {
            return Err((
                "token_endpoint_auth_method",
                "private_key_jwt needs 'private_key_file', which is missing".to_string(),
                "add private_key_file = \"PATH\" (a PKCS#8 PEM key, ES256 or RS256)".to_string(),
            ));
        }
        Some(TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost)
            if auth.client_secret.is_none() =>
        {
            return Err((
                "token_endpoint_auth_method",
                "this method needs 'client_secret', which is missing".to_string(),
                "add client_secret = \"${env:CLIENT_SECRET}\"".to_string(),
            ));
        }
        _ => {}
    }
    if auth.kind == AuthKind::ClientCredentials {
        if auth.client_id.is_none() {
            return Err((
                "client_id",
                "kind = \"client_credentials\" needs 'client_id', which is missing".to_string(),
                "add client_id and client_secret (or private_key_file) of the service account"
                    .to_string(),
            ));
        }
        if auth.client_secret.is_none() && auth.private_key_file.is_none() {
            return Err((
                "client_secret",
                "kind = \"client_credentials\" needs 'client_secret' or 'private_key_file'"
                    .to_string(),
                "add client_secret = \"${env:CLIENT_SECRET}\", or private_key_file = \"PATH\" \
                 for private_key_jwt"
                    .to_string(),
            ));
        }
    }
    Ok(())
}

/// That the JWT to exchange and the identity provider fit the kind.
fn check_exchange(auth: &AuthConfig) -> Result<(), (&'static str, String, String)> {
    let missing = |key: &'static str, what: &str, fix: &str| {
        Err((
            key,
            format!(
                "kind = \"{}\" needs {what}, which is missing",
                auth.kind.as_str()
            ),
            fix.to_string(),
        ))
    };
    match auth.kind {
        AuthKind::JwtBearer if auth.subject_token.is_none() => missing(
            "assertion",
            "'assertion' or 'assertion_file'",
            "add the workload's JWT: assertion = \"${env:WORKLOAD_JWT}\", or \
             assertion_file = \"/var/run/secrets/tokens/mcp\"",
        ),
        AuthKind::Enterprise if auth.subject_token.is_none() => missing(
            "id_token",
            "'id_token' or 'id_token_file'",
            "add the person's ID token from your identity provider: \
             id_token = \"${env:ID_TOKEN}\", or id_token_file = \"PATH\"",
        ),
        AuthKind::Enterprise if auth.idp.is_none() => missing(
            "idp_token_endpoint",
            "'idp_token_endpoint' or 'idp_issuer'",
            "add your identity provider's token endpoint, e.g. \
             idp_token_endpoint = \"https://idp.example.com/oauth2/token\", or its issuer \
             (idp_issuer = \"https://idp.example.com\") to find it in its metadata",
        ),
        AuthKind::Enterprise if auth.client_id.is_none() => missing(
            "client_id",
            "'client_id'",
            "add the client id the server's authorization server gave you",
        ),
        AuthKind::JwtBearer | AuthKind::Enterprise => Ok(()),
        _ if auth.subject_token.is_some() || auth.idp.is_some() => Err((
            "kind",
            format!(
                "assertion, id_token and idp_* keys are for kind = \"jwt_bearer\" or \
                 \"enterprise\", not \"{}\"",
                auth.kind.as_str()
            ),
            "set kind = \"jwt_bearer\" (a workload's JWT) or kind = \"enterprise\" (an ID \
             token exchanged at your identity provider), or remove those keys"
                .to_string(),
        )),
        _ => Ok(()),
    }
}

/// `file` against the config file's directory (not read now: it is read at every
/// exchange, and a platform may write it later).
fn beside(config: Option<&Path>, file: &str) -> PathBuf {
    let path = Path::new(file);
    match config.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// `file` against the config file's directory, checked to be a readable file.
fn resolve(config: Option<&Path>, file: &str) -> Result<PathBuf, (String, String)> {
    let path = Path::new(file);
    let path = match config.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    match std::fs::File::open(&path) {
        Ok(_) if path.is_file() => Ok(path),
        Ok(_) => Err((
            format!("'private_key_file' is not a file: {}", path.display()),
            "point it at a PKCS#8 PEM private key file".to_string(),
        )),
        Err(e) => Err((
            format!(
                "'private_key_file' cannot be read: {} ({e})",
                path.display()
            ),
            "check the path (relative paths start at the config file's directory) and that \
             the file is readable by you"
                .to_string(),
        )),
    }
}

#[cfg(test)]
mod tests;
