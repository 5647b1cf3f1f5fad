//! Configuration: which servers to connect to and how.
//!
//! Switchboard reads its own TOML format (`switchboard.toml`) and, unchanged, the JSON files
//! people already have: the `mcpServers` shape of Claude Desktop and Cursor, and the `servers`
//! shape of VS Code. Every file becomes one validated [`Config`]; a file that cannot be used
//! gives a [`ConfigError`] naming the file, the server and the key, and saying what to do.
//!
//! # Files, by job
//!
//! Each file uses only the files listed before it (and `crate::error`, below all of them):
//!
//! 1. `types.rs`: the validated public types ([`Config`], [`ServerConfig`],
//!    [`DiscoveryConfig`], ...), plain data with defaults; `gateway_security.rs` (before it)
//!    those of the gateway's security keys ([`InboundAuthConfig`], [`HostPattern`], ...).
//! 2. `suggest.rs`: "did you mean": the known word closest to a typo.
//! 3. `template.rs`: `${var}` / `${env:X}` in header and env values, rendered at connect time.
//! 4. `diagnostics.rs`: where an error points (file, key path, line and column, found from
//!    the parsed TOML document's spans), syntax errors from the parsers' typed errors, and
//!    the fix texts every check shares (unknown key, one of, wrong type, duration).
//! 5. `checks.rs`: checks shared by every reader and by front ends: the one http(s) URL
//!    check ([`check_server_url`] for a URL from the command line), header names and values,
//!    env names, server names, durations.
//! 6. `raw/`: the file shapes. `raw/toml.rs` holds the serde structs of the TOML tables and
//!    the shape of every key, checked against the document before serde reads it (so unknown
//!    keys and wrong types are reported in our words); `raw/json.rs` reads the
//!    `mcpServers` / VS Code JSON shapes into the same raw server.
//! 7. `validate/`: raw tables into the types of `types.rs`, one function per table:
//!    `validate/server.rs` (`[servers.NAME]`, also for JSON servers),
//!    `validate/discovery.rs` (`[discovery]`), `validate/gateway.rs` (`[gateway]`),
//!    `validate/gateway_auth.rs` (`[gateway.auth]`), `validate/scale.rs` (`[scale]`), `validate/mod.rs` (the top level, `[catalog]`,
//!    `[sessions]`, and the names and warnings of JSON servers).
//! 8. `load.rs`: reading a file and picking the format ([`Config::load`],
//!    [`Config::from_toml_str`], [`Config::from_json_str`]).
//!
//! [`ConfigError`] and [`TemplateError`] are defined in `crate::error` (so the engine's
//! [`Error`](crate::Error) can hold them without depending on this module) and re-exported
//! here.
//!
//! To add a key: add an `Option` field to the raw struct of its table and its shape to the
//! table's key list (`raw/toml.rs`; a test keeps the two equal), then read it in the table's
//! validate function.

mod checks;
mod diagnostics;
mod gateway_security;
mod load;
mod raw;
pub(crate) mod suggest;
pub(crate) mod template;
mod types;
mod validate;

pub use crate::error::ConfigError;
pub use checks::check_server_url;
pub use gateway_security::{
    DEFAULT_JWKS_CACHE, DEFAULT_MAX_BODY, DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION, HostPattern,
    InboundAuthConfig, JwksSource, JwtConfig, KeyHash, OriginPattern, UNAUTHENTICATED_FIX,
};
pub use template::{TemplateError, Variables};
pub use types::{
    A365Api, AuthConfig, AuthKind, CatalogConfig, CollisionPolicy, Config, ConfigWarning,
    DEFAULT_CONFIG_FILE, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISCOVERY_TIMEOUT,
    DEFAULT_DOWNSTREAM_IDLE_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_GATEWAY_LISTEN,
    DEFAULT_LIST_TIMEOUT, DEFAULT_MAX_NAME_LENGTH, DEFAULT_MAX_SESSIONS, DEFAULT_REAPER_INTERVAL,
    DEFAULT_REFRESH_BEFORE, DEFAULT_SEPARATOR, DEFAULT_SESSION_IDLE_TIMEOUT,
    DEFAULT_TOOL_CALL_TIMEOUT, DiscoveryConfig, ElicitationPolicy, GatewayConfig, HttpConnections,
    MAX_NAME_LENGTH_RANGE, PrefixMode, ProtocolPin, ReconnectPolicy, RegistrationConfig,
    RegistrationPolicy, RegistryKind, SHARED_PRINCIPAL, Secret, ServerConfig, SessionMode,
    SessionsConfig, TokenAuthMethod, ToolFilter, ToolOverride, TransportKind,
};
// The `[scale]` table.
pub use types::{
    DEFAULT_KEY_PREFIX, DEFAULT_MAX_SESSION_LIFETIME, DEFAULT_REDIS_URL_ENV, ScaleConfig,
    ScaleStore,
};
// The `[auth]` table's parts (kept apart from the list above).
pub use types::{DpopMode, IdpConfig, TokenSource};

pub(crate) use checks::{is_http_url, unique_server_names};

#[cfg(test)]
mod test_support;
