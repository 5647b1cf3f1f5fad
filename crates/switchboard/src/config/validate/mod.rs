//! Raw tables into the validated types of `types.rs`, one function per table.
//!
//! A TOML document: [`toml_config`] (the top level), `[catalog]`, `[sessions]`, each server
//! (`server.rs`), `[discovery]` (`discovery.rs`) and `[gateway]` (`gateway.rs`). A JSON document: [`json_config`] gives
//! each server a valid unique name, turns unknown keys into warnings and validates each
//! server like a TOML one. Every error is placed by the [`Ctx`] (file, key, line).

use std::collections::BTreeMap;

use crate::config::checks::{
    check_server_name, is_valid_server_name, one_of, parse_duration, unique_server_names,
};
use crate::config::diagnostics::{Ctx, unknown_key_fix};
use crate::config::raw::json::{JsonServer, SERVER_KEYS};
use crate::config::raw::{RawCatalog, RawConfig, RawServer, RawSessions};
use crate::config::types::{
    CatalogConfig, CollisionPolicy, Config, ConfigWarning, MAX_NAME_LENGTH_RANGE, PrefixMode,
    RegistrationConfig, RegistrationPolicy, ServerConfig, SessionsConfig,
};
use crate::error::ConfigError;

mod auth;
mod discovery;
mod gateway;
mod gateway_auth;
mod scale;
mod server;

pub(super) use server::validate_server;

use server::registration_policy;

/// A TOML document: the top-level table.
pub(super) fn toml_config(ctx: &Ctx<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    let mut config = toml_tables(ctx, raw)?;
    config.warnings = scale::per_replica_warnings(ctx, &config);
    Ok(config)
}

fn toml_tables(ctx: &Ctx<'_>, raw: RawConfig) -> Result<Config, ConfigError> {
    Ok(Config {
        servers: validate_servers(ctx, raw.servers.unwrap_or_default())?,
        variables: raw.variables.unwrap_or_default(),
        catalog: validate_catalog(ctx, raw.catalog.unwrap_or_default())?,
        sessions: validate_sessions(ctx, raw.sessions.unwrap_or_default())?,
        registration: RegistrationConfig {
            on_error: match raw.on_server_registration_error {
                Some(value) => registration_policy(ctx, &["on_server_registration_error"], &value)?,
                None => RegistrationPolicy::default(),
            },
            retry_skipped: raw.retry_skipped_servers.unwrap_or(true),
        },
        discovery: match raw.discovery {
            Some(d) => Some(Box::new(discovery::validate_discovery(ctx, d)?)),
            None => None,
        },
        gateway: Box::new(gateway::validate_gateway(
            ctx,
            raw.gateway.unwrap_or_default(),
        )?),
        scale: match raw.scale {
            Some(raw) => Some(Box::new(scale::validate_scale(ctx, raw)?)),
            None => None,
        },
        source: None,
        warnings: Vec::new(),
    })
}

/// The `[catalog]` table.
fn validate_catalog(ctx: &Ctx<'_>, raw: RawCatalog) -> Result<CatalogConfig, ConfigError> {
    let err =
        |key: &str, problem: String, fix: String| ctx.error_at(&["catalog", key], problem, fix);
    let mut catalog = CatalogConfig::default();
    if let Some(separator) = raw.separator {
        if separator.is_empty() || separator.len() > 8 || !is_valid_server_name(&separator) {
            return Err(err(
                "separator",
                format!("the separator {separator:?} is not usable in tool names"),
                "model providers accept only letters, digits, '_' and '-' in tool names; use 1 to \
                 8 of those, e.g. separator = \"__\""
                    .to_string(),
            ));
        }
        catalog.separator = separator;
    }
    if let Some(prefix) = raw.prefix {
        catalog.prefix = one_of(&prefix, &PrefixMode::ALL, "prefix mode")
            .map_err(|(problem, fix)| err("prefix", problem, fix))?;
    }
    if let Some(policy) = raw.collisions {
        catalog.collisions = one_of(&policy, &CollisionPolicy::ALL, "collision policy")
            .map_err(|(problem, fix)| err("collisions", problem, fix))?;
    }
    if let Some(length) = raw.max_name_length {
        let range = MAX_NAME_LENGTH_RANGE;
        catalog.max_name_length = usize::try_from(length)
            .ok()
            .filter(|l| range.contains(l))
            .ok_or_else(|| {
                err(
                    "max_name_length",
                    format!("'max_name_length' is {length}, outside {}..={}", range.start(), range.end()),
                    "use 64 (OpenAI's and Anthropic's limit) or, for providers that allow more, e.g. 128"
                        .to_string(),
                )
            })?;
    }
    Ok(catalog)
}

/// The `[sessions]` table.
fn validate_sessions(ctx: &Ctx<'_>, raw: RawSessions) -> Result<SessionsConfig, ConfigError> {
    let mut sessions = SessionsConfig::default();
    if let Some(value) = raw.reaper_interval {
        sessions.reaper_interval =
            parse_duration("reaper_interval", &value).map_err(|(problem, fix)| {
                ctx.error_at(&["sessions", "reaper_interval"], problem, fix)
            })?;
    }
    Ok(sessions)
}

/// The `[servers]` table: names, then each server.
fn validate_servers(
    ctx: &Ctx<'_>,
    raw: BTreeMap<String, RawServer>,
) -> Result<BTreeMap<String, ServerConfig>, ConfigError> {
    let mut servers = BTreeMap::new();
    for (name, server) in raw {
        check_server_name(&name)
            .map_err(|(problem, fix)| ctx.server_error(&name, None, problem, fix))?;
        let server = validate_server(ctx, &name, server)?;
        servers.insert(name, server);
    }
    Ok(servers)
}

/// A JSON document's servers: named (see `raw/json.rs`), their unknown keys made warnings,
/// each validated like a TOML server. Errors name the server as written in the file.
pub(super) fn json_config(ctx: &Ctx<'_>, entries: Vec<JsonServer>) -> Result<Config, ConfigError> {
    let names = assign_names(entries.iter().map(|e| e.name.as_str()));
    let mut servers = BTreeMap::new();
    let mut warnings: Vec<ConfigWarning> = Vec::new();
    for (server, name) in entries.into_iter().zip(names) {
        let JsonServer {
            name: original,
            entry,
        } = server;
        if name != original {
            tracing::debug!(original = %original, name = %name, "renamed server from JSON config");
        }
        let (raw, unknown) = entry?;
        warnings.extend(unknown.into_iter().map(|key| {
            let fix = unknown_key_fix(&key, SERVER_KEYS);
            ConfigError::new("unknown key, ignored", fix)
                .with_file(ctx.file)
                .with_server(original.clone())
                .with_key(key)
        }));
        let server = validate_server(ctx, &name, raw).map_err(|mut e| {
            e.server = Some(original.clone());
            e
        })?;
        servers.insert(name, server);
    }
    Ok(Config {
        servers,
        warnings,
        ..Config::default()
    })
}

/// Unique valid names for the servers of a JSON file, whatever order its entries are in:
/// the names are given in the sorted order of the originals. One name per input, in input
/// order.
pub(super) fn assign_names<'a>(originals: impl Iterator<Item = &'a str>) -> Vec<String> {
    let originals: Vec<&str> = originals.collect();
    let mut order: Vec<usize> = (0..originals.len()).collect();
    order.sort_by_key(|&i| (originals[i], i));
    let sorted: Vec<&str> = order.iter().map(|&i| originals[i]).collect();
    let mut names = vec![String::new(); originals.len()];
    for (i, name) in order.into_iter().zip(unique_server_names(&sorted)) {
        names[i] = name;
    }
    names
}

#[cfg(test)]
mod tests;
