//! `[servers.NAME]`: one raw server (from TOML or JSON) into a [`ServerConfig`].
//!
//! What is checked: the transport (explicit, or `command` → stdio and `url` → by its path),
//! that the keys fit it (no `url` on a stdio server, no `command` on an HTTP one) and that
//! the one it needs is there; the URL, header and env checks of `checks.rs`; durations,
//! modes and policies by name; the session keys and `[reconnect]`; `include`/`exclude`; and
//! tool overrides (usable, unique aliases).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::checks::{
    SERVER_URL, check_env, check_headers, check_http_url, is_valid_server_name,
    normalise_server_name, one_of, parse_duration,
};
use crate::config::diagnostics::{Ctx, one_of_fix};
use crate::config::raw::{RawServer, RawToolOverride};
use crate::config::types::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_LIST_TIMEOUT, DEFAULT_MAX_SESSIONS,
    DEFAULT_SESSION_IDLE_TIMEOUT, DEFAULT_TOOL_CALL_TIMEOUT, ElicitationPolicy, HttpConnections,
    ProtocolPin, ReconnectPolicy, RegistrationPolicy, ServerConfig, SessionMode, ToolFilter,
    ToolOverride, TransportKind,
};
use crate::error::ConfigError;

/// One `[servers.NAME]` table (also used for servers read from JSON).
pub(in crate::config) fn validate_server(
    ctx: &Ctx<'_>,
    name: &str,
    raw: RawServer,
) -> Result<ServerConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| {
        ctx.server_error(name, (!key.is_empty()).then_some(key), problem, fix)
    };

    let explicit = match raw.transport.as_deref() {
        None => None,
        Some(t) => Some(parse_transport(t).ok_or_else(|| {
            err(
                "transport",
                format!("unknown transport \"{t}\""),
                one_of_fix(t, &["stdio", "sse", "streamable-http"]),
            )
        })?),
    };

    let transport = match (explicit, &raw.command, &raw.url) {
        (Some(t), _, _) => t,
        (None, Some(_), Some(_)) => {
            return Err(err(
                "url",
                "the server has both 'command' and 'url'".to_string(),
                "a server is either a program to run over stdio ('command') or an HTTP endpoint \
                 ('url'); remove one of them, or make two servers"
                    .to_string(),
            ));
        }
        (None, Some(_), None) => TransportKind::Stdio,
        (None, None, Some(url)) => TransportKind::for_url(url),
        (None, None, None) => {
            return Err(err(
                "",
                "the server has neither 'command' nor 'url'".to_string(),
                "add 'command' (a program to run over stdio, e.g. \"npx\") or 'url' (an http(s) \
                 endpoint, e.g. \"http://127.0.0.1:3001/mcp\")"
                    .to_string(),
            ));
        }
    };

    // Keys that do not apply to the transport.
    let present = |key: &str| match key {
        "command" => raw.command.is_some(),
        "args" => raw.args.is_some(),
        "env" => raw.env.is_some(),
        "cwd" => raw.cwd.is_some(),
        "url" => raw.url.is_some(),
        "headers" => raw.headers.is_some(),
        "http_connections" => raw.http_connections.is_some(),
        _ => false,
    };
    let (not_applicable, needed): (&[&str], &str) = match transport {
        TransportKind::Stdio => (&["url", "headers", "http_connections"], "command"),
        TransportKind::Sse => (
            &["command", "args", "env", "cwd", "http_connections"],
            "url",
        ),
        TransportKind::StreamableHttp => (&["command", "args", "env", "cwd"], "url"),
    };
    if let Some(key) = not_applicable.iter().find(|k| present(k)) {
        let (kind, fix) = if transport == TransportKind::Stdio {
            (
                "URL servers (sse, streamable-http)",
                "remove it; a stdio server is started with 'command', 'args', 'env' and 'cwd'",
            )
        } else {
            (
                "stdio servers",
                "remove it; an HTTP server is reached with 'url' and 'headers'",
            )
        };
        return Err(err(
            key,
            format!("'{key}' only applies to {kind}, but this server uses {transport}"),
            fix.to_string(),
        ));
    }
    if !present(needed) {
        return Err(err(
            needed,
            format!("transport {transport} needs '{needed}', which is missing"),
            if needed == "url" {
                "add url = \"http://HOST:PORT/PATH\"".to_string()
            } else {
                "add command = \"PROGRAM\" (and args = [...] if it takes arguments)".to_string()
            },
        ));
    }

    if let Some(command) = &raw.command
        && command.trim().is_empty()
    {
        return Err(err(
            "command",
            "'command' is empty".to_string(),
            "set it to the program to run, e.g. command = \"npx\"".to_string(),
        ));
    }
    if let Some(url) = &raw.url {
        check_http_url(url, &SERVER_URL).map_err(|(problem, fix)| err("url", problem, fix))?;
    }
    if let Some(headers) = &raw.headers {
        check_headers(headers).map_err(|(problem, fix)| err("headers", problem, fix))?;
    }
    if let Some(env) = &raw.env {
        check_env(env).map_err(|(problem, fix)| err("env", problem, fix))?;
    }

    let http_connections = match raw.http_connections.as_deref() {
        None => HttpConnections::default(),
        Some(value) => one_of(value, &HttpConnections::ALL, "connection policy")
            .map_err(|(problem, fix)| err("http_connections", problem, fix))?,
    };

    let elicitation = match raw.elicitation.as_deref() {
        None => ElicitationPolicy::default(),
        Some(value) => one_of(value, &ElicitationPolicy::ALL, "elicitation policy")
            .map_err(|(problem, fix)| err("elicitation", problem, fix))?,
    };
    let protocol_version = match raw.protocol_version.as_deref() {
        None => ProtocolPin::default(),
        Some(value) => one_of(value, &ProtocolPin::ALL, "MCP revision")
            .map_err(|(problem, fix)| err("protocol_version", problem, fix))?,
    };
    if transport == TransportKind::Sse && protocol_version == ProtocolPin::V2026_07_28 {
        return Err(err(
            "protocol_version",
            "legacy HTTP+SSE has no 2026-07-28 revision".to_string(),
            "use the server's Streamable HTTP URL, or a revision up to \"2025-11-25\"".to_string(),
        ));
    }
    let roots = raw.roots.clone().unwrap_or_default();
    if let Some(bad) = roots.iter().find(|root| !root.starts_with("file://")) {
        return Err(err(
            "roots",
            format!("\"{bad}\" is not a file:// URI"),
            "write each root as a file:// URI, e.g. \"file:///home/me/project\"".to_string(),
        ));
    }
    let (session_mode, session_idle_timeout, max_sessions, reconnect) =
        validate_session_keys(ctx, name, &raw)?;
    let tool_filter = validate_filter(ctx, name, raw.include, raw.exclude)?;
    let tool_overrides = validate_overrides(ctx, name, raw.tool_overrides.unwrap_or_default())?;
    let auth = raw
        .auth
        .map(|auth| super::auth::validate_auth(ctx, name, transport, auth))
        .transpose()?;

    let duration = |key: &str, value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(v) => parse_duration(key, v).map_err(|(problem, fix)| err(key, problem, fix)),
    };

    Ok(ServerConfig {
        name: name.to_string(),
        transport,
        connect_timeout: duration(
            "connect_timeout",
            &raw.connect_timeout,
            DEFAULT_CONNECT_TIMEOUT,
        )?,
        list_timeout: duration("list_timeout", &raw.list_timeout, DEFAULT_LIST_TIMEOUT)?,
        tool_call_timeout: duration(
            "tool_call_timeout",
            &raw.tool_call_timeout,
            DEFAULT_TOOL_CALL_TIMEOUT,
        )?,
        command: raw.command,
        args: raw.args.unwrap_or_default(),
        env: raw.env.unwrap_or_default(),
        cwd: raw.cwd.map(PathBuf::from),
        url: raw.url,
        headers: raw.headers.unwrap_or_default(),
        http_connections,
        tool_overrides,
        tool_filter,
        session_mode,
        elicitation,
        protocol_version,
        roots,
        session_idle_timeout,
        max_sessions,
        reconnect,
        enabled: raw.enabled.unwrap_or(true),
        on_registration_error: match raw.on_server_registration_error.as_deref() {
            Some(value) => Some(registration_policy(
                ctx,
                &["servers", name, "on_server_registration_error"],
                value,
            )?),
            None => None,
        },
        auth,
    })
}

/// Parses a transport name as written in TOML (`stdio`, `sse`, `streamable-http`).
fn parse_transport(name: &str) -> Option<TransportKind> {
    [
        TransportKind::Stdio,
        TransportKind::Sse,
        TransportKind::StreamableHttp,
    ]
    .into_iter()
    .find(|t| t.as_str() == name)
}

/// `session_mode`, `session_idle_timeout`, `max_sessions` and `[servers.NAME.reconnect]`.
fn validate_session_keys(
    ctx: &Ctx<'_>,
    server: &str,
    raw: &RawServer,
) -> Result<(SessionMode, Duration, usize, ReconnectPolicy), ConfigError> {
    let err = |path: &[&str], problem: String, fix: String| {
        let mut full = vec!["servers", server];
        full.extend(path);
        ctx.error_at(&full, problem, fix)
    };
    let mode = match raw.session_mode.as_deref() {
        None => SessionMode::default(),
        Some(value) => one_of(value, &SessionMode::ALL, "session mode")
            .map_err(|(problem, fix)| err(&["session_mode"], problem, fix))?,
    };
    let duration = |path: &[&str], value: &Option<String>, default: Duration| match value {
        None => Ok(default),
        Some(v) => parse_duration(path[path.len() - 1], v)
            .map_err(|(problem, fix)| err(path, problem, fix)),
    };
    let idle = duration(
        &["session_idle_timeout"],
        &raw.session_idle_timeout,
        DEFAULT_SESSION_IDLE_TIMEOUT,
    )?;
    let max_sessions = match raw.max_sessions {
        None => DEFAULT_MAX_SESSIONS,
        Some(n) if n >= 1 => n as usize,
        Some(n) => {
            return Err(err(
                &["max_sessions"],
                format!("'max_sessions' is {n}; it must be at least 1"),
                "use a positive number, e.g. max_sessions = 100".to_string(),
            ));
        }
    };
    let mut reconnect = ReconnectPolicy::default();
    if let Some(r) = &raw.reconnect {
        if let Some(n) = r.max_attempts {
            reconnect.max_attempts =
                u32::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                    err(
                        &["reconnect", "max_attempts"],
                        format!("'max_attempts' is {n}; it must be at least 1"),
                        "use a small positive number, e.g. max_attempts = 2".to_string(),
                    )
                })?;
        }
        reconnect.initial_backoff = duration(
            &["reconnect", "initial_backoff"],
            &r.initial_backoff,
            reconnect.initial_backoff,
        )?;
        reconnect.max_backoff = duration(
            &["reconnect", "max_backoff"],
            &r.max_backoff,
            reconnect.max_backoff,
        )?;
        if reconnect.max_backoff < reconnect.initial_backoff {
            return Err(err(
                &["reconnect", "max_backoff"],
                "'max_backoff' is shorter than 'initial_backoff'".to_string(),
                "make max_backoff at least as long as initial_backoff".to_string(),
            ));
        }
    }
    Ok((mode, idle, max_sessions, reconnect))
}

/// An `on_server_registration_error` value, at `path` (top level or in a server table).
pub(super) fn registration_policy(
    ctx: &Ctx<'_>,
    path: &[&str],
    value: &str,
) -> Result<RegistrationPolicy, ConfigError> {
    one_of(value, &RegistrationPolicy::ALL, "registration policy")
        .map_err(|(problem, fix)| ctx.error_at(path, problem, fix))
}

/// `include` / `exclude`: at most one of them; patterns non-empty; duplicates dropped.
fn validate_filter(
    ctx: &Ctx<'_>,
    server: &str,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
) -> Result<ToolFilter, ConfigError> {
    let check = |key: &str, mut patterns: Vec<String>| {
        if patterns.iter().any(|p| p.trim().is_empty()) {
            return Err(ctx.server_error(
                server,
                Some(key),
                format!("'{key}' has an empty pattern"),
                "remove it; patterns are tool names, aliases or globs like \"search_*\""
                    .to_string(),
            ));
        }
        patterns.sort();
        patterns.dedup();
        Ok(patterns)
    };
    match (include, exclude) {
        (Some(_), Some(_)) => Err(ctx.server_error(
            server,
            Some("exclude"),
            "'include' and 'exclude' are both set".to_string(),
            "use one of them: 'include' lists the tools to expose, 'exclude' the tools to hide"
                .to_string(),
        )),
        (Some(include), None) => Ok(ToolFilter::Include(check("include", include)?)),
        (None, Some(exclude)) => Ok(ToolFilter::Exclude(check("exclude", exclude)?)),
        (None, None) => Ok(ToolFilter::All),
    }
}

/// `[servers.NAME.tool_overrides.ORIGINAL]`: aliases must be usable names and must not take
/// the name of another overridden tool or another alias. (Clashes with tools the server
/// lists are found when the catalogue is built.) Empty values mean "keep the original".
fn validate_overrides(
    ctx: &Ctx<'_>,
    server: &str,
    raw: BTreeMap<String, RawToolOverride>,
) -> Result<BTreeMap<String, ToolOverride>, ConfigError> {
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let overrides: BTreeMap<String, ToolOverride> = raw
        .into_iter()
        .map(|(tool, o)| {
            let o = ToolOverride {
                alias: non_empty(o.alias).filter(|alias| *alias != tool),
                description: non_empty(o.description),
            };
            (tool, o)
        })
        .collect();
    let mut aliases: BTreeMap<&str, &str> = BTreeMap::new();
    for (tool, o) in &overrides {
        let Some(alias) = o.alias.as_deref() else {
            continue;
        };
        let err = |problem: String, fix: String| {
            ctx.error_at(
                &["servers", server, "tool_overrides", tool, "alias"],
                problem,
                fix,
            )
        };
        if !is_valid_server_name(alias) {
            return Err(err(
                format!("the alias {alias:?} contains characters model providers reject"),
                format!(
                    "use only letters, digits, '_' and '-', e.g. alias = \"{}\"",
                    normalise_server_name(alias)
                ),
            ));
        }
        if overrides.contains_key(alias) {
            return Err(err(
                format!(
                    "the alias '{alias}' of tool '{tool}' is the name of the server's tool '{alias}'"
                ),
                "choose an alias that is not the name of another tool of this server".to_string(),
            ));
        }
        if let Some(other) = aliases.insert(alias, tool) {
            return Err(err(
                format!("the tools '{other}' and '{tool}' both have the alias '{alias}'"),
                "give each tool its own alias".to_string(),
            ));
        }
    }
    Ok(overrides)
}
