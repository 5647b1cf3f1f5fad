//! The `[gateway]` table: the listen address, the session headers, the shutdown delay and
//! drain timeout, the downstream sessions' idle timeout, the allowed hosts and origins, the
//! request limits; `[gateway.auth]` is `gateway_auth.rs`. Listening beyond loopback without
//! `[gateway.auth]` is refused unless `allow_unauthenticated = true`.

use std::net::SocketAddr;

use crate::config::checks::{parse_duration, parse_duration_or_zero};
use crate::config::diagnostics::Ctx;
use crate::config::gateway_security::{HostPattern, OriginPattern, UNAUTHENTICATED_FIX};
use crate::config::raw::RawGateway;
use crate::config::template::is_valid_header_name;
use crate::config::types::GatewayConfig;
use crate::config::validate::gateway_auth::validate_gateway_auth;
use crate::error::ConfigError;

/// Inbound headers that never become session variables, with why.
const REFUSED_SESSION_HEADERS: [(&str, &str); 2] = [
    (
        "authorization",
        "the inbound Authorization header is the gateway's own credential, and forwarding it \
         upstream is token passthrough, which MCP forbids; send the user's upstream credential \
         in a header of its own, e.g. \"X-Upstream-Token\" = \"user_token\"",
    ),
    (
        "mcp-session-id",
        "the MCP session id names the downstream session, not the user; map a header of its \
         own, e.g. \"X-User-Id\" = \"user\"",
    ),
];

pub(super) fn validate_gateway(
    ctx: &Ctx<'_>,
    raw: RawGateway,
) -> Result<GatewayConfig, ConfigError> {
    let err =
        |key: &str, problem: String, fix: String| ctx.error_at(&["gateway", key], problem, fix);
    let mut gateway = GatewayConfig::default();
    if let Some(listen) = raw.listen {
        gateway.listen = listen.trim().parse::<SocketAddr>().map_err(|_| {
            err(
                "listen",
                format!("'listen' is not an address to listen on: {listen:?}"),
                "write IP:PORT, e.g. listen = \"127.0.0.1:8080\" (or \"0.0.0.0:8080\" for every \
                 interface)"
                    .to_string(),
            )
        })?;
    }
    for (header, variable) in raw.session_headers.unwrap_or_default() {
        if !is_valid_header_name(&header) {
            return Err(err(
                "session_headers",
                format!("{header:?} is not a valid HTTP header name"),
                "use only letters, digits and !#$%&'*+-.^_`|~ in header names".to_string(),
            ));
        }
        let lower = header.to_ascii_lowercase();
        if let Some((_, why)) = REFUSED_SESSION_HEADERS.iter().find(|(h, _)| *h == lower) {
            return Err(err(
                "session_headers",
                format!("the header '{header}' cannot be a session variable"),
                why.to_string(),
            ));
        }
        if !is_variable_name(&variable) {
            return Err(err(
                "session_headers",
                format!("the header '{header}' maps to {variable:?}, which is not a variable name"),
                "variable names are letters, digits and '_', not starting with a digit, e.g. \
                 \"X-Upstream-Token\" = \"user_token\""
                    .to_string(),
            ));
        }
        if gateway.session_headers.insert(lower, variable).is_some() {
            return Err(err(
                "session_headers",
                format!("the header '{header}' is listed twice (names differ only in case)"),
                "HTTP header names are case-insensitive; keep one of them".to_string(),
            ));
        }
    }
    if let Some(value) = raw.drain_timeout {
        gateway.drain_timeout = parse_duration("drain_timeout", &value)
            .map_err(|(problem, fix)| err("drain_timeout", problem, fix))?;
    }
    if let Some(value) = raw.shutdown_delay {
        gateway.shutdown_delay = parse_duration_or_zero("shutdown_delay", &value)
            .map_err(|(problem, fix)| err("shutdown_delay", problem, fix))?;
    }
    if let Some(value) = raw.session_idle_timeout {
        gateway.session_idle_timeout = parse_duration("session_idle_timeout", &value)
            .map_err(|(problem, fix)| err("session_idle_timeout", problem, fix))?;
    }
    if let Some(hosts) = raw.allowed_hosts {
        let hosts = hosts
            .iter()
            .map(|h| parse_host(h))
            .collect::<Result<_, _>>();
        gateway.allowed_hosts =
            Some(hosts.map_err(|(problem, fix)| err("allowed_hosts", problem, fix))?);
    }
    if let Some(origins) = raw.allowed_origins {
        gateway.allowed_origins = origins
            .iter()
            .map(|o| parse_origin(o))
            .collect::<Result<_, _>>()
            .map_err(|(problem, fix)| err("allowed_origins", problem, fix))?;
    }
    if let Some(size) = raw.max_body {
        gateway.max_body = parse_size("max_body", &size)
            .map_err(|(problem, fix)| err("max_body", problem, fix))?;
    }
    if let Some(limit) = raw.max_concurrent_calls_per_session {
        let key = "max_concurrent_calls_per_session";
        gateway.max_concurrent_calls_per_session = usize::try_from(limit)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                err(
                    key,
                    format!("'{key}' is {limit}; it must be at least 1"),
                    format!("write a whole number of calls, e.g. {key} = 64"),
                )
            })?;
    }
    gateway.allow_unauthenticated = raw.allow_unauthenticated.unwrap_or(false);
    if let Some(auth) = raw.auth {
        let variables: Vec<&str> = gateway
            .session_headers
            .values()
            .map(String::as_str)
            .collect();
        gateway.auth = Some(Box::new(validate_gateway_auth(ctx, auth, &variables)?));
    }
    if !gateway.listen.ip().is_loopback()
        && gateway.auth.is_none()
        && !gateway.allow_unauthenticated
    {
        return Err(err(
            "listen",
            format!(
                "the gateway would listen on {} without authentication: anyone who can reach \
                 it could use every configured server with its credentials",
                gateway.listen
            ),
            UNAUTHENTICATED_FIX.to_string(),
        ));
    }
    Ok(gateway)
}

/// An `allowed_hosts` entry: `HOST` or `HOST:PORT` (IPv6 in brackets).
fn parse_host(entry: &str) -> Result<HostPattern, (String, String)> {
    let fix = || {
        "write host names as the Host header carries them, e.g. allowed_hosts = \
         [\"mcp.example.com\", \"10.0.0.5:8080\"]"
            .to_string()
    };
    let authority = http::uri::Authority::try_from(entry.trim())
        .ok()
        .filter(|a| !a.host().is_empty() && !a.as_str().contains('@'))
        .ok_or_else(|| (format!("{entry:?} is not a host name or host:port"), fix()))?;
    Ok(HostPattern {
        host: bare_host(authority.host()),
        port: authority.port_u16(),
    })
}

/// An `allowed_origins` entry: `"null"` or `scheme://host[:port]` (`:*`: any port).
fn parse_origin(entry: &str) -> Result<OriginPattern, (String, String)> {
    let entry = entry.trim();
    if entry.eq_ignore_ascii_case("null") {
        return Ok(OriginPattern::Null);
    }
    let problem = || format!("{entry:?} is not an origin");
    let fix = || {
        "write origins as browsers send them, scheme://host[:port] without a path, e.g. \
         allowed_origins = [\"https://app.example.com\", \"http://localhost:*\"]"
            .to_string()
    };
    let (base, any_port) = match entry.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (entry, false),
    };
    let uri = http::Uri::try_from(base).map_err(|_| (problem(), fix()))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err((problem(), fix()));
    };
    let has_path = !matches!(uri.path(), "" | "/") || base.ends_with('/') || uri.query().is_some();
    if has_path || authority.as_str().contains('@') || (any_port && authority.port().is_some()) {
        return Err((problem(), fix()));
    }
    let scheme = scheme.to_ascii_lowercase();
    let port = match (any_port, authority.port_u16()) {
        (true, _) => None,
        (false, Some(port)) => Some(port),
        (false, None) => match OriginPattern::default_port(&scheme) {
            Some(port) => Some(port),
            None => {
                return Err((
                    format!("{entry:?} has no port, and '{scheme}' has no default port"),
                    "add the port, e.g. \"app://host:1234\", or \":*\" for any port".to_string(),
                ));
            }
        },
    };
    Ok(OriginPattern::Tuple {
        scheme,
        host: bare_host(authority.host()),
        port,
    })
}

/// A host lowercase, IPv6 without brackets (how the gateway compares hosts).
fn bare_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// A size in bytes: a whole number with an optional unit (B, KB, KiB, MB, MiB, GB, GiB).
fn parse_size(key: &str, value: &str) -> Result<usize, (String, String)> {
    let fix = || {
        format!(
            "write a size like \"4MiB\", \"512KiB\" or \"1000000\" (bytes), e.g. {key} = \"4MiB\""
        )
    };
    let text = value.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err((format!("'{key}' is not a size: {value:?}"), fix())),
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| (format!("'{key}' is not a size: {value:?}"), fix()))?;
    if bytes == 0 {
        return Err((format!("'{key}' is zero"), fix()));
    }
    Ok(bytes)
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what `${name}` in a template can name.
pub(super) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{problem_of, toml, toml_err};
    use crate::config::{
        DEFAULT_DRAIN_TIMEOUT, DEFAULT_GATEWAY_LISTEN, DEFAULT_MAX_BODY,
        DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION, HostPattern, OriginPattern,
    };

    #[test]
    fn defaults_listen_on_loopback() {
        let config = toml("").unwrap();
        assert_eq!(config.gateway.listen, DEFAULT_GATEWAY_LISTEN);
        assert!(config.gateway.listen.ip().is_loopback());
        assert!(config.gateway.session_headers.is_empty());
        assert_eq!(config.gateway.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
        assert_eq!(config.gateway.shutdown_delay, Duration::ZERO);
        // Zero is how the delay is written off explicitly.
        let off = toml("[gateway]\nshutdown_delay = \"0s\"\n").unwrap();
        assert_eq!(off.gateway.shutdown_delay, Duration::ZERO);
    }

    #[test]
    fn reads_every_key() {
        let config = toml(
            "[gateway]\nlisten = \"0.0.0.0:9000\"\nallow_unauthenticated = true\ndrain_timeout = \"5s\"\n\
             shutdown_delay = \"1500ms\"\nsession_idle_timeout = \"10m\"\n\
             session_headers = { \"X-Upstream-Token\" = \"user_token\", \"x-user\" = \"user\" }\n",
        )
        .unwrap();
        assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.gateway.drain_timeout, Duration::from_secs(5));
        assert_eq!(config.gateway.shutdown_delay, Duration::from_millis(1500));
        assert_eq!(
            config.gateway.session_idle_timeout,
            Duration::from_secs(600)
        );
        let headers: Vec<(&str, &str)> = config
            .gateway
            .session_headers
            .iter()
            .map(|(h, v)| (h.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            [("x-upstream-token", "user_token"), ("x-user", "user")]
        );
    }

    #[test]
    fn reads_the_security_keys() {
        let config = toml(
            "[gateway]\nallowed_hosts = [\"MCP.example.com\", \"10.0.0.5:8080\", \"[::1]\"]\n\
             allowed_origins = [\"https://app.example.com\", \"http://localhost:*\", \"null\"]\n\
             max_body = \"512KiB\"\nmax_concurrent_calls_per_session = 8\n",
        )
        .unwrap();
        let gateway = &config.gateway;
        let hosts = gateway.allowed_hosts.as_ref().unwrap();
        assert_eq!(
            hosts,
            &[
                HostPattern {
                    host: "mcp.example.com".into(),
                    port: None
                },
                HostPattern {
                    host: "10.0.0.5".into(),
                    port: Some(8080)
                },
                HostPattern {
                    host: "::1".into(),
                    port: None
                },
            ]
        );
        assert!(hosts[0].matches("mcp.example.com", Some(443)));
        assert!(hosts[1].matches("10.0.0.5", Some(8080)));
        assert!(!hosts[1].matches("10.0.0.5", Some(8081)));
        let origins = &gateway.allowed_origins;
        assert_eq!(origins[2], OriginPattern::Null);
        // No port: the scheme's default; `:*`: any.
        assert!(origins[0].matches("https", "app.example.com", None));
        assert!(origins[0].matches("https", "app.example.com", Some(443)));
        assert!(!origins[0].matches("https", "app.example.com", Some(8443)));
        assert!(!origins[0].matches("http", "app.example.com", Some(443)));
        assert!(origins[1].matches("http", "localhost", Some(6274)));
        assert!(!origins[1].matches("http", "localhost.evil.com", Some(6274)));
        assert_eq!(gateway.max_body, 512 * 1024);
        assert_eq!(gateway.max_concurrent_calls_per_session, 8);
        let defaults = toml("").unwrap().gateway;
        assert_eq!(defaults.max_body, DEFAULT_MAX_BODY);
        assert_eq!(
            defaults.max_concurrent_calls_per_session,
            DEFAULT_MAX_CONCURRENT_CALLS_PER_SESSION
        );
        assert!(defaults.allowed_hosts.is_none() && defaults.allowed_origins.is_empty());
        assert!(defaults.auth.is_none() && !defaults.allow_unauthenticated);
    }

    #[test]
    fn refuses_what_cannot_work() {
        for (doc, problem, fix) in [
            (
                "[gateway]\nlisten = \"localhost\"\n",
                "'listen' is not an address to listen on: \"localhost\"",
                "write IP:PORT",
            ),
            (
                "[gateway]\nsession_headers = { Authorization = \"token\" }\n",
                "the header 'Authorization' cannot be a session variable",
                "the inbound Authorization header is the gateway's own credential",
            ),
            (
                "[gateway]\nsession_headers = { \"X-Token\" = \"1st\" }\n",
                "the header 'X-Token' maps to \"1st\", which is not a variable name",
                "variable names are",
            ),
            (
                "[gateway]\nsession_headers = { \"X-A\" = \"a\", \"x-a\" = \"b\" }\n",
                "the header 'x-a' is listed twice (names differ only in case)",
                "HTTP header names are case-insensitive",
            ),
            (
                "[gateway]\ndrain_timeout = \"soon\"\n",
                "'drain_timeout' is not a duration: \"soon\"",
                "",
            ),
            (
                "[gateway]\nshutdown_delay = \"later\"\n",
                "'shutdown_delay' is not a duration: \"later\"",
                "",
            ),
            (
                "[gateway]\nallowed_hosts = [\"mcp.example.com/mcp\"]\n",
                "\"mcp.example.com/mcp\" is not a host name or host:port",
                "write host names as the Host header carries them",
            ),
            (
                "[gateway]\nallowed_origins = [\"https://app.example.com/path\"]\n",
                "\"https://app.example.com/path\" is not an origin",
                "write origins as browsers send them",
            ),
            (
                "[gateway]\nallowed_origins = [\"app.example.com\"]\n",
                "\"app.example.com\" is not an origin",
                "write origins as browsers send them",
            ),
            (
                "[gateway]\nallowed_origins = [\"app://host\"]\n",
                "\"app://host\" has no port, and 'app' has no default port",
                "add the port",
            ),
            (
                "[gateway]\nmax_body = \"4 parsecs\"\n",
                "'max_body' is not a size: \"4 parsecs\"",
                "write a size like",
            ),
            (
                "[gateway]\nmax_body = \"0\"\n",
                "'max_body' is zero",
                "write a size like",
            ),
            (
                "[gateway]\nmax_concurrent_calls_per_session = 0\n",
                "'max_concurrent_calls_per_session' is 0; it must be at least 1",
                "write a whole number of calls",
            ),
        ] {
            let err = toml_err(doc);
            assert_eq!(problem_of(&err), problem, "{doc}");
            assert!(err.fix.starts_with(fix), "{doc}: {}", err.fix);
            assert!(
                err.key.as_deref().is_some_and(|k| k.starts_with("gateway")),
                "{doc}: {err}"
            );
        }
    }
}
