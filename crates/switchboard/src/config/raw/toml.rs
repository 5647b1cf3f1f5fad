//! Switchboard's TOML, as written: one serde struct per table, and the shape of every key.
//!
//! [`read`] first walks the parsed document against the key lists ([`RawConfig::KEYS`] and
//! the tables it names): a key not in its table's list is an unknown key (with the closest
//! known key and the list), a value of the wrong type says what type it must be, both at the
//! key's or value's own line. Only then does serde read the document into [`RawConfig`],
//! which can no longer fail on a key or a type; so no serde message needs rewording (serde's
//! texts would also echo values, which may be secrets). The structs keep
//! `deny_unknown_fields` as a second guard. One list of `key: Shape` per table declares its
//! struct (the shape gives the field's type) and its key list (`raw_table!`), and a test
//! checks serde reads exactly those keys.
//!
//! Durations and names of modes are strings here; `validate/` parses them, so that their
//! errors can say what form is accepted.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::config::diagnostics::{Ctx, DURATION_FIX, unknown_key_fix};
use crate::error::ConfigError;

/// Declares a table twice over from one list of `key: Shape`: its serde struct (`Raw…`,
/// every field public, an `Option` of the Rust type the shape is read as) and its key list
/// (`KEYS`, the keys in field order with their shapes). So the two cannot disagree on a key,
/// its order or its type. A `Table(Raw…)` value is that table; `TableOf(…)` a table keyed
/// by names whose values all have the inner shape.
macro_rules! raw_table {
    (
        $(#[doc = $doc:literal])*
        $name:ident {
            $($(#[$attr:meta])* $key:ident: $kind:ident $(($($inner:tt)+))?,)*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(in crate::config) struct $name {
            $($(#[$attr])* pub $key: Option<raw_type!($kind $(($($inner)+))?)>,)*
        }

        impl $name {
            #[doc = concat!("The keys of [`", stringify!($name), "`].")]
            pub(in crate::config) const KEYS: Keys =
                &[$((stringify!($key), raw_shape!($kind $(($($inner)+))?))),*];
        }
    };
}

/// The Rust type serde reads a value of this shape into (see [`raw_table!`]).
macro_rules! raw_type {
    (String) => { String };
    (Duration) => { String };
    (Integer) => { i64 };
    (Bool) => { bool };
    (Strings) => { Vec<String> };
    (StringTable) => { BTreeMap<String, String> };
    (Table($raw:ident)) => { $raw };
    (TableOf($($inner:tt)+)) => { BTreeMap<String, raw_type!($($inner)+)> };
}

/// The [`Shape`] of a value written as in [`raw_table!`].
macro_rules! raw_shape {
    (Table($raw:ident)) => { Shape::Table($raw::KEYS) };
    (TableOf($($inner:tt)+)) => { Shape::TableOf(&raw_shape!($($inner)+)) };
    ($shape:ident) => { Shape::$shape };
}

raw_table! {
    /// The top-level table.
    RawConfig {
        servers: TableOf(Table(RawServer)),
        /// String values only: they are substituted into header and env values.
        variables: StringTable,
        catalog: Table(RawCatalog),
        sessions: Table(RawSessions),
        on_server_registration_error: String,
        retry_skipped_servers: Bool,
        discovery: Table(RawDiscovery),
        gateway: Table(RawGateway),
        scale: Table(RawScale),
    }
}

raw_table! {
    /// The `[scale]` table: replicas sharing sessions.
    RawScale {
        store: String,
        redis_url_env: String,
        keys_file: String,
        key_prefix: String,
        remember_variables: Bool,
        max_session_lifetime: Duration,
    }
}

raw_table! {
    /// The `[gateway]` table: what `switchboard serve` listens on and how it maps inbound
    /// requests to sessions.
    RawGateway {
        listen: String,
        /// Inbound request header name -> session variable name.
        session_headers: StringTable,
        drain_timeout: Duration,
        shutdown_delay: Duration,
        session_idle_timeout: Duration,
        allowed_hosts: Strings,
        allowed_origins: Strings,
        /// A size: `"4MiB"`, `"512KiB"`, `"1000000"` (bytes).
        max_body: String,
        max_concurrent_calls_per_session: Integer,
        allow_unauthenticated: Bool,
        auth: Table(RawGatewayAuth),
    }
}

raw_table! {
    /// The `[gateway.auth]` table: inbound authentication.
    RawGatewayAuth {
        resource: String,
        /// API key name -> hex SHA-256 of the key.
        api_keys: StringTable,
        /// Verified claim name -> session variable name.
        claims: StringTable,
        jwt: Table(RawGatewayJwt),
    }
}

raw_table! {
    /// The `[gateway.auth.jwt]` table: bearer JWTs verified against a JWKS.
    RawGatewayJwt {
        jwks_file: String,
        jwks_url: String,
        issuer: String,
        audience: String,
        required_scopes: Strings,
        jwks_cache: Duration,
        authorization_servers: Strings,
    }
}

raw_table! {
    /// The `[sessions]` table.
    RawSessions {
        reaper_interval: Duration,
    }
}

raw_table! {
    /// One `[servers.NAME.reconnect]` table.
    RawReconnect {
        max_attempts: Integer,
        initial_backoff: Duration,
        max_backoff: Duration,
    }
}

raw_table! {
    /// The `[catalog]` table.
    RawCatalog {
        separator: String,
        prefix: String,
        max_name_length: Integer,
        collisions: String,
    }
}

raw_table! {
    /// One `[servers.NAME.tool_overrides.ORIGINAL]` table.
    RawToolOverride {
        alias: String,
        description: String,
    }
}

raw_table! {
    /// One `[servers.NAME]` table (also what a JSON server entry is read into).
    RawServer {
        transport: String,
        command: String,
        args: Strings,
        env: StringTable,
        cwd: String,
        url: String,
        headers: StringTable,
        connect_timeout: Duration,
        list_timeout: Duration,
        tool_call_timeout: Duration,
        http_connections: String,
        include: Strings,
        exclude: Strings,
        tool_overrides: TableOf(Table(RawToolOverride)),
        session_mode: String,
        session_idle_timeout: Duration,
        max_sessions: Integer,
        reconnect: Table(RawReconnect),
        enabled: Bool,
        on_server_registration_error: String,
        elicitation: String,
        protocol_version: String,
        roots: Strings,
        auth: Table(RawAuth),
    }
}

raw_table! {
    /// One `[servers.NAME.auth]` table: how to sign in with OAuth.
    RawAuth {
        kind: String,
        client_id: String,
        client_secret: String,
        private_key_file: String,
        scopes: Strings,
        client_metadata_url: String,
        redirect_port: Integer,
        refresh_before: Duration,
        token_endpoint_auth_method: String,
        token_url: String,
        principal: String,
        assertion: String,
        assertion_file: String,
        id_token: String,
        id_token_file: String,
        idp_token_endpoint: String,
        idp_issuer: String,
        idp_client_id: String,
        idp_client_secret: String,
        dpop: String,
    }
}

raw_table! {
    /// The `[discovery]` table.
    RawDiscovery {
        kind: String,
        endpoint: String,
        agent_id: String,
        auth_token: String,
        api: String,
        url: String,
        headers: StringTable,
        refresh_interval: Duration,
        request_timeout: Duration,
        server_auth: TableOf(StringTable),
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes

/// What a key's value must be.
#[derive(Debug)]
pub(in crate::config) enum Shape {
    String,
    /// A string holding a duration (`"30s"`).
    Duration,
    Integer,
    Bool,
    /// An array of strings.
    Strings,
    /// A table of strings (`env`, `headers`, `[variables]`).
    StringTable,
    /// A table with these keys.
    Table(Keys),
    /// A table keyed by names (servers, tools) whose values all have this shape.
    TableOf(&'static Shape),
}

/// A table's keys, in the order of its struct's fields (the order error messages list them
/// in), with the shape of each value.
pub(in crate::config) type Keys = &'static [(&'static str, Shape)];

// ---------------------------------------------------------------------------------------------
// Reading

/// Reads a parsed TOML document (`doc`, also in `ctx` for positions): keys and types first,
/// then serde.
pub(in crate::config) fn read(
    ctx: &Ctx<'_>,
    doc: &toml::Spanned<DeTable<'_>>,
) -> Result<RawConfig, ConfigError> {
    check_table(ctx, doc.get_ref(), RawConfig::KEYS, &mut Vec::new())?;
    RawConfig::deserialize(toml::de::Deserializer::from(doc.clone()))
        .map_err(|e| ctx.serde_error(&e))
}

/// Checks every key of `table` (at `path`) against `keys`, in document order.
fn check_table<'d>(
    ctx: &Ctx<'_>,
    table: &'d DeTable<'d>,
    keys: Keys,
    path: &mut Vec<&'d str>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        path.push(name);
        let Some((_, shape)) = keys.iter().find(|(k, _)| *k == name) else {
            let known: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            let fix = unknown_key_fix(name, &known);
            return Err(ctx.error_at_span(path, key.span(), "unknown key".to_string(), fix));
        };
        check_value(ctx, value.get_ref(), value.span(), shape, path)?;
        path.pop();
    }
    Ok(())
}

/// Checks that the value at `path` (its last key) has `shape`.
fn check_value<'d>(
    ctx: &Ctx<'_>,
    value: &'d DeValue<'d>,
    span: Range<usize>,
    shape: &Shape,
    path: &mut Vec<&'d str>,
) -> Result<(), ConfigError> {
    let wrong = |path: &[&str], span: Range<usize>, found: &DeValue<'_>, expected: &Shape| {
        let key = path.last().copied().unwrap_or_default();
        let problem = format!(
            "'{key}' must be {}, not {}",
            expected.name(),
            found_type(found)
        );
        ctx.error_at_span(path, span, problem, expected.fix(key))
    };
    match (shape, value) {
        (Shape::String | Shape::Duration, DeValue::String(_))
        | (Shape::Bool, DeValue::Boolean(_)) => Ok(()),
        (Shape::Integer, DeValue::Integer(n)) => {
            if i64::from_str_radix(n.as_str(), n.radix()).is_ok() {
                Ok(())
            } else {
                let key = path.last().copied().unwrap_or_default();
                Err(ctx.error_at_span(
                    path,
                    span,
                    format!("'{key}' is too large a number"),
                    "use a smaller number".to_string(),
                ))
            }
        }
        (Shape::Strings, DeValue::Array(items)) => {
            match items.iter().find(|item| !item.get_ref().is_str()) {
                None => Ok(()),
                Some(item) => {
                    let key = path.last().copied().unwrap_or_default();
                    let problem = format!(
                        "'{key}' must contain only strings, not {}",
                        found_type(item.get_ref())
                    );
                    Err(ctx.error_at_span(path, item.span(), problem, shape.fix(key)))
                }
            }
        }
        (Shape::StringTable, DeValue::Table(table)) => {
            for (key, value) in table.iter() {
                if !value.get_ref().is_str() {
                    path.push(key.get_ref());
                    return Err(wrong(path, value.span(), value.get_ref(), &Shape::String));
                }
            }
            Ok(())
        }
        (Shape::Table(keys), DeValue::Table(table)) => check_table(ctx, table, keys, path),
        (Shape::TableOf(inner), DeValue::Table(table)) => {
            for (key, value) in table.iter() {
                path.push(key.get_ref());
                check_value(ctx, value.get_ref(), value.span(), inner, path)?;
                path.pop();
            }
            Ok(())
        }
        (expected, found) => Err(wrong(path, span, found, expected)),
    }
}

impl Shape {
    /// The type a value must have, in TOML words.
    fn name(&self) -> &'static str {
        match self {
            Shape::String | Shape::Duration => "a string",
            Shape::Integer => "an integer",
            Shape::Bool => "true or false",
            Shape::Strings => "an array",
            Shape::StringTable | Shape::Table(_) | Shape::TableOf(_) => "a table",
        }
    }

    /// How to write a value of this shape for `key`.
    fn fix(&self, key: &str) -> String {
        match self {
            Shape::Duration => DURATION_FIX.replace("KEY", key),
            Shape::String => format!("put the value in quotes: {key} = \"...\""),
            Shape::Integer => format!("write a whole number, e.g. {key} = 2"),
            Shape::Bool => format!("write {key} = true or {key} = false"),
            Shape::Strings => format!("write it as an array, e.g. {key} = [\"a\", \"b\"]"),
            Shape::StringTable | Shape::Table(_) | Shape::TableOf(_) => {
                format!("write it as a table, e.g. {key} = {{ NAME = \"value\" }}")
            }
        }
    }
}

/// A value's type in TOML words (never the value).
fn found_type(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true/false",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests;
