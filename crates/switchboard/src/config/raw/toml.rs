//! Switchboard's TOML, as written: one serde struct per table, and the shape of every key.
//!
//! [`read`] lets serde read the parsed document into [`RawConfig`]; `deny_unknown_fields`
//! rejects unknown keys, and `diagnostics.rs` rewords serde's errors.
//!
//! Durations and names of modes are strings here; `validate/` parses them, so that their
//! errors can say what form is accepted.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::de::DeTable;

use crate::config::diagnostics::Ctx;
use crate::error::ConfigError;

/// The top-level table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawConfig {
    #[serde(default)]
    pub servers: BTreeMap<String, RawServer>,
    /// String values only: they are substituted into header and env values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    pub catalog: Option<RawCatalog>,
    pub sessions: Option<RawSessions>,
    pub on_server_registration_error: Option<String>,
    pub retry_skipped_servers: Option<bool>,
    pub discovery: Option<RawDiscovery>,
}

/// The `[sessions]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawSessions {
    pub reaper_interval: Option<String>,
}

/// One `[servers.NAME.reconnect]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawReconnect {
    pub max_attempts: Option<i64>,
    pub initial_backoff: Option<String>,
    pub max_backoff: Option<String>,
}

/// The `[catalog]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawCatalog {
    pub separator: Option<String>,
    pub prefix: Option<String>,
    pub max_name_length: Option<i64>,
    pub collisions: Option<String>,
}

/// One `[servers.NAME.tool_overrides.ORIGINAL]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawToolOverride {
    pub alias: Option<String>,
    pub description: Option<String>,
}

/// One `[servers.NAME]` table (also what a JSON server entry is read into).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawServer {
    pub transport: Option<String>,
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub connect_timeout: Option<String>,
    pub list_timeout: Option<String>,
    pub tool_call_timeout: Option<String>,
    pub http_connections: Option<String>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub tool_overrides: Option<BTreeMap<String, RawToolOverride>>,
    pub session_mode: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub max_sessions: Option<i64>,
    pub reconnect: Option<RawReconnect>,
    pub enabled: Option<bool>,
    pub on_server_registration_error: Option<String>,
}

/// The `[discovery]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawDiscovery {
    pub kind: Option<String>,
    pub endpoint: Option<String>,
    pub agent_id: Option<String>,
    pub auth_token: Option<String>,
    pub api: Option<String>,
    pub url: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub refresh_interval: Option<String>,
    pub request_timeout: Option<String>,
    pub server_auth: Option<BTreeMap<String, BTreeMap<String, String>>>,
}

/// Reads a parsed TOML document (`doc`, also in `ctx` for positions) into the raw structs.
pub(in crate::config) fn read(
    ctx: &Ctx<'_>,
    doc: &toml::Spanned<DeTable<'_>>,
) -> Result<RawConfig, ConfigError> {
    RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
        .map_err(|e| ctx.toml_error(&e))
}
