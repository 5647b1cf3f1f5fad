//! The `[gateway]` table: the listen address, the session headers, the drain timeout, the
//! downstream sessions' idle timeout.

use std::net::SocketAddr;

use crate::config::checks::parse_duration;
use crate::config::diagnostics::Ctx;
use crate::config::raw::RawGateway;
use crate::config::template::is_valid_header_name;
use crate::config::types::GatewayConfig;
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
    if let Some(value) = raw.session_idle_timeout {
        gateway.session_idle_timeout = parse_duration("session_idle_timeout", &value)
            .map_err(|(problem, fix)| err("session_idle_timeout", problem, fix))?;
    }
    Ok(gateway)
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what `${name}` in a template can name.
fn is_variable_name(name: &str) -> bool {
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
    use crate::config::{DEFAULT_DRAIN_TIMEOUT, DEFAULT_GATEWAY_LISTEN};

    #[test]
    fn defaults_listen_on_loopback() {
        let config = toml("").unwrap();
        assert_eq!(config.gateway.listen, DEFAULT_GATEWAY_LISTEN);
        assert!(config.gateway.listen.ip().is_loopback());
        assert!(config.gateway.session_headers.is_empty());
        assert_eq!(config.gateway.drain_timeout, DEFAULT_DRAIN_TIMEOUT);
    }

    #[test]
    fn reads_every_key() {
        let config = toml(
            "[gateway]\nlisten = \"0.0.0.0:9000\"\ndrain_timeout = \"5s\"\n\
             session_idle_timeout = \"10m\"\n\
             session_headers = { \"X-Upstream-Token\" = \"user_token\", \"x-user\" = \"user\" }\n",
        )
        .unwrap();
        assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.gateway.drain_timeout, Duration::from_secs(5));
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
