//! The validated `[servers.NAME.auth]` table: how Switchboard signs in to an HTTP server
//! with OAuth. Plain data like `types.rs`; `validate/auth.rs` reads the table into it.

use std::path::PathBuf;
use std::time::Duration;

/// How long before an access token expires it is replaced, unless `refresh_before` says
/// otherwise (clamped to half the token's lifetime when used).
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(60);

/// The principal a server's shared connection signs in as, unless `principal` says
/// otherwise.
pub const SHARED_PRINCIPAL: &str = "shared";

config_enum! {
    /// `kind`: how tokens are obtained.
    pub enum AuthKind {
        /// OAuth when the server asks for it (a 401 with a Bearer challenge); tokens already
        /// in the store are used.
        #[default]
        Auto = "auto",
        /// A person signs in (authorization code with PKCE); tokens already in the store are
        /// used and refreshed.
        OAuth = "oauth",
        /// A machine identity: the client-credentials grant with a client secret or a
        /// private key (`private_key_jwt`).
        ClientCredentials = "client_credentials",
        /// A workload identity: the JWT-bearer grant (RFC 7523) with a JWT the platform
        /// issues (`assertion` or `assertion_file`), exchanged again when it expires.
        JwtBearer = "jwt_bearer",
        /// Enterprise-managed authorization (SEP-990): the person's ID token is exchanged
        /// at their identity provider (RFC 8693) for an identity assertion grant (ID-JAG),
        /// then that at the server's authorization server (JWT-bearer grant).
        Enterprise = "enterprise",
        /// Never sign in: a 401 is an error.
        None = "none",
    }
}

config_enum! {
    /// `token_endpoint_auth_method`: how the client authenticates at the token endpoint.
    pub enum TokenAuthMethod {
        /// HTTP Basic with the client id and secret (RFC 6749 section 2.3.1).
        #[default]
        ClientSecretBasic = "client_secret_basic",
        /// The client id and secret in the form body.
        ClientSecretPost = "client_secret_post",
        /// A JWT signed with the client's private key (RFC 7523).
        PrivateKeyJwt = "private_key_jwt",
        /// A public client: only the client id.
        None = "none",
    }
}

config_enum! {
    /// `dpop`: whether access tokens are bound to a key of Switchboard's (RFC 9449).
    pub enum DpopMode {
        /// When the authorization server lists ES256 in `dpop_signing_alg_values_supported`.
        #[default]
        Auto = "auto",
        /// Always send DPoP proofs to the token endpoint (the server decides the token type).
        Always = "always",
        /// Never: Bearer tokens only.
        Never = "never",
    }
}

/// Where a JWT handed to Switchboard comes from (a workload's `assertion`, a person's
/// `id_token`).
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// A template (`${env:WORKLOAD_JWT}`), rendered when the server is connected to.
    Inline(Secret),
    /// A file read again for every exchange (platform tokens rotate), resolved against the
    /// config file's directory.
    File(PathBuf),
}

/// The identity provider of `kind = "enterprise"`: its token endpoint, or its issuer to
/// find it in the metadata (at least one).
#[derive(Debug, Clone, PartialEq)]
pub struct IdpConfig {
    /// Where the ID token is exchanged (RFC 8693).
    pub token_endpoint: Option<String>,
    /// The identity provider's issuer (its metadata names the token endpoint).
    pub issuer: Option<String>,
    /// Switchboard's client id at the identity provider.
    pub client_id: Option<String>,
    /// Its secret there (a template).
    pub client_secret: Option<Secret>,
}

/// A secret as written in the config: a template (`${env:CLIENT_SECRET}`) rendered when it
/// is used. Its `Debug` and `Display` are `***`, so a config printed or logged never shows
/// it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(template: impl Into<String>) -> Self {
        Secret(template.into())
    }

    /// The template as written (may be a literal secret): render it, never print it.
    pub fn expose_template(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[servers.NAME.auth]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub kind: AuthKind,
    /// A pre-registered client id.
    pub client_id: Option<String>,
    /// The client secret (a template).
    pub client_secret: Option<Secret>,
    /// A PKCS#8 PEM private key (ES256 or RS256) for `private_key_jwt`, resolved against
    /// the config file's directory.
    pub private_key_file: Option<PathBuf>,
    /// Scopes to ask for (none: the server's choice).
    pub scopes: Vec<String>,
    /// An https URL used as the client id (a Client ID Metadata Document).
    pub client_metadata_url: Option<String>,
    /// The loopback port of the browser sign-in's callback (none: any free port).
    pub redirect_port: Option<u16>,
    /// Replace an access token this long before it expires.
    pub refresh_before: Duration,
    /// How to authenticate at the token endpoint (none: from the authorization server's
    /// metadata, or `private_key_jwt` when a private key is given).
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// The token endpoint, skipping metadata discovery (client credentials).
    pub token_url: Option<String>,
    /// Whose tokens the server's shared connection uses.
    pub principal: String,
    /// The JWT to exchange: `assertion`/`assertion_file` (`jwt_bearer`) or
    /// `id_token`/`id_token_file` (`enterprise`).
    pub subject_token: Option<TokenSource>,
    /// The identity provider (`enterprise`).
    pub idp: Option<IdpConfig>,
    /// Whether tokens are DPoP-bound.
    pub dpop: DpopMode,
}

impl AuthConfig {
    /// An `[auth]` table of `kind` with everything else left out.
    pub fn new(kind: AuthKind) -> Self {
        AuthConfig {
            kind,
            client_id: None,
            client_secret: None,
            private_key_file: None,
            scopes: Vec::new(),
            client_metadata_url: None,
            redirect_port: None,
            refresh_before: DEFAULT_REFRESH_BEFORE,
            token_endpoint_auth_method: None,
            token_url: None,
            principal: SHARED_PRINCIPAL.to_owned(),
            subject_token: None,
            idp: None,
            dpop: DpopMode::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        let mut auth = AuthConfig::new(AuthKind::ClientCredentials);
        auth.client_secret = Some(secret);
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
