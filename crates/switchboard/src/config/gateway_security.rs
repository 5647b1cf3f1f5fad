//! The validated types of the gateway's security keys: `[gateway]` `allowed_hosts`,
//! `allowed_origins`, the request limits, and `[gateway.auth]` (API keys, JWT, claims).
//! Plain data with defaults, like `types.rs`; `validate/gateway*.rs` fills them in and the
//! gateway (`switchboard-gateway`'s `inbound/`) enforces them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default `max_body`: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// The default `max_concurrent_calls_per_session`.
pub const DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION: usize = 64;
/// The default `[gateway.auth.jwt] jwks_cache`: how long a fetched key set is used before
/// it is fetched again.
pub const DEFAULT_JWKS_CACHE: Duration = Duration::from_secs(300);

/// How to make a gateway listening beyond loopback acceptable: said by config validation
/// (`[gateway] listen`) and by the gateway (`--listen`).
pub const UNAUTHENTICATED_FIX: &str = "add a [gateway.auth] table (api_keys and/or jwt), or set allow_unauthenticated = true \
     under [gateway] if something in front of the gateway authenticates its callers";

/// One `allowed_hosts` entry: a `Host` header the gateway answers (DNS-rebinding guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// The host name or IP, lowercase, IPv6 without brackets.
    pub host: String,
    /// `None`: any port.
    pub port: Option<u16>,
}

/// One `allowed_origins` entry: a browser origin allowed to call the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `"null"`: the opaque origin of sandboxed documents and local files.
    Null,
    /// `scheme://host[:port]` (no port: the scheme's default; `:*`: any port).
    Tuple {
        /// Lowercase.
        scheme: String,
        /// Lowercase, IPv6 without brackets.
        host: String,
        /// `None`: any port (`:*`); otherwise the port, the scheme's default when not written.
        port: Option<u16>,
    },
}

impl HostPattern {
    /// Whether a `Host` header's host (lowercase, no brackets) and port match.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && self.port.is_none_or(|p| port == Some(p))
    }
}

impl OriginPattern {
    /// The port an origin without one has (RFC 6454).
    pub fn default_port(scheme: &str) -> Option<u16> {
        match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        }
    }

    /// Whether an `Origin` header's scheme and host (lowercase, no brackets) and port (the
    /// scheme's default when it has none) match.
    pub fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        match self {
            OriginPattern::Null => false,
            OriginPattern::Tuple {
                scheme: s,
                host: h,
                port: p,
            } => {
                let port = port.or_else(|| OriginPattern::default_port(scheme));
                s == scheme && h == host && p.is_none_or(|p| port == Some(p))
            }
        }
    }
}

/// `[gateway.auth]`: who may use the gateway. When it is set, every endpoint but
/// `/healthz` and the protected resource metadata needs a credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundAuthConfig {
    /// The MCP endpoint's canonical URL (`https://mcp.example.com/mcp`), the `resource` of
    /// the protected resource metadata; `None`: `http://HOST/mcp` from the request.
    pub resource: Option<String>,
    /// API key name -> the SHA-256 of the key (keys themselves are never in the config).
    /// A key's name is its caller's identity, seen as the claim `sub`.
    pub api_keys: BTreeMap<String, KeyHash>,
    /// Verified claim name -> session variable (`sub = "user"`), for `${user}` templates.
    pub claims: BTreeMap<String, String>,
    /// Bearer JWTs, verified against a JWKS.
    pub jwt: Option<JwtConfig>,
}

/// A SHA-256 digest of an API key. Its `Debug` prints only its first 4 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let head: String = self.0[..4].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "KeyHash({head}…)")
    }
}

/// `[gateway.auth.jwt]`: how bearer JWTs are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// Where the signing keys are.
    pub jwks: JwksSource,
    /// The `iss` every token must have.
    pub issuer: String,
    /// The `aud` every token must have (one of its values).
    pub audience: String,
    /// Scopes every token must grant (`scope` string or `scp` array), else 403.
    pub required_scopes: Vec<String>,
    /// How long a fetched key set is used before it is fetched again.
    pub jwks_cache: Duration,
    /// The protected resource metadata's `authorization_servers` (default: the issuer).
    pub authorization_servers: Vec<String>,
}

/// Where a JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A file (relative paths resolved against the config file's directory), read at
    /// start and again when a token names a key it lacks.
    File(PathBuf),
    /// An http(s) URL, fetched at start, cached for `jwks_cache`, and again when a token
    /// names a key it lacks (at most every few seconds).
    Url(String),
}
