//! The `[scale]` table: replicas sharing sessions (docs/scale-out-design.md). `keys_file`
//! is required (sealed session ids need keys); the file itself is read when the gateway
//! starts, which reports a bad keyring by its line.

use std::path::Path;

use crate::config::checks::{one_of, parse_duration};
use crate::config::diagnostics::Ctx;
use crate::config::raw::RawScale;
use crate::config::types::{
    Config, DEFAULT_KEY_PREFIX, DEFAULT_MAX_SESSION_LIFETIME, DEFAULT_REDIS_URL_ENV, ScaleConfig,
    ScaleStore, SessionMode, TransportKind,
};
use crate::error::ConfigError;

pub(super) fn validate_scale(ctx: &Ctx<'_>, raw: RawScale) -> Result<ScaleConfig, ConfigError> {
    let err = |key: &str, problem: String, fix: String| ctx.error_at(&["scale", key], problem, fix);
    let store = match raw.store {
        Some(store) => Some(
            one_of(&store, &ScaleStore::ALL, "session store")
                .map_err(|(problem, fix)| err("store", problem, fix))?,
        ),
        None => None,
    };
    let Some(file) = raw.keys_file else {
        return Err(err(
            "keys_file",
            "[scale] has no 'keys_file': sealed session ids need keys".to_string(),
            "add keys_file = \"PATH\", a file of lines kid=<base64 of 32 random bytes>, e.g. \
             made with: echo \"1=$(head -c 32 /dev/urandom | base64)\" > keys"
                .to_string(),
        ));
    };
    let path = Path::new(&file);
    let keys_file = match ctx.file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    };
    let redis_url_env = raw
        .redis_url_env
        .unwrap_or_else(|| DEFAULT_REDIS_URL_ENV.to_string());
    let is_env_name = !redis_url_env.is_empty()
        && !redis_url_env.starts_with(|c: char| c.is_ascii_digit())
        && redis_url_env
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !is_env_name {
        return Err(err(
            "redis_url_env",
            format!("'redis_url_env' is {redis_url_env:?}, not an environment variable name"),
            format!(
                "name the variable holding the Redis URL (not the URL itself), e.g. \
                 redis_url_env = \"{DEFAULT_REDIS_URL_ENV}\""
            ),
        ));
    }
    let key_prefix = raw
        .key_prefix
        .unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_string());
    let usable = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key_prefix.is_empty() || key_prefix.len() > 32 || !key_prefix.chars().all(usable) {
        return Err(err(
            "key_prefix",
            format!("'key_prefix' {key_prefix:?} is not usable in Redis key names"),
            "use 1 to 32 letters, digits, '_', '-' or '.', e.g. key_prefix = \"sb\"".to_string(),
        ));
    }
    let max_session_lifetime = match raw.max_session_lifetime {
        Some(value) => parse_duration("max_session_lifetime", &value)
            .map_err(|(problem, fix)| err("max_session_lifetime", problem, fix))?,
        None => DEFAULT_MAX_SESSION_LIFETIME,
    };
    Ok(ScaleConfig {
        store,
        redis_url_env,
        keys_file,
        key_prefix,
        remember_variables: raw.remember_variables.unwrap_or(false),
        max_session_lifetime,
    })
}

/// With a shared store, a `per_session` server over stdio or legacy SSE still has its
/// session on one replica only (a process, a GET stream): its state does not follow the
/// downstream session to another replica (design a.8). Said before anything connects.
pub(super) fn per_replica_warnings(ctx: &Ctx<'_>, config: &Config) -> Vec<ConfigError> {
    let shared = config.scale.as_ref().is_some_and(|s| s.store.is_some());
    if !shared {
        return Vec::new();
    }
    config
        .servers
        .iter()
        .filter(|(_, server)| server.session_mode == SessionMode::PerSession)
        .filter(|(_, server)| server.transport != TransportKind::StreamableHttp)
        .map(|(name, server)| {
            ctx.server_error(
                name,
                Some("session_mode"),
                format!(
                    "a per_session {} server's sessions stay on the replica that opened them: \
                     with [scale] store, a downstream session served by several replicas \
                     meets up to one instance of this server per replica",
                    server.transport.as_str()
                ),
                "run it as a Streamable HTTP service of its own, or route its users to one \
                 replica (affinity on Mcp-Session-Id)"
                    .to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(toml: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_toml_str(toml, None)
    }

    #[test]
    fn defaults_and_typos() {
        let config = load("[scale]\nstore = \"redis\"\nkeys_file = \"/run/keys\"\n").unwrap();
        let scale = config.scale.unwrap();
        assert_eq!(scale.redis_url_env, "SWITCHBOARD_REDIS_URL");
        assert_eq!(scale.key_prefix, "sb");
        assert!(!scale.remember_variables);
        assert_eq!(scale.max_session_lifetime.as_secs(), 24 * 3600);
        assert!(load("").unwrap().scale.is_none());

        let typo = load("[scale]\nstore = \"redsi\"\nkeys_file = \"k\"\n").unwrap_err();
        let text = typo.to_string();
        assert!(
            text.contains("scale.store") || text.contains("store"),
            "{text}"
        );
        assert!(text.contains("redis"), "did you mean: {text}");
        let key = load("[scale]\nkeys_fil = \"k\"\n").unwrap_err().to_string();
        assert!(key.contains("keys_file"), "{key}");
        let missing = load("[scale]\nstore = \"redis\"\n")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("keys_file"), "{missing}");
        let url = load("[scale]\nkeys_file = \"k\"\nredis_url_env = \"redis://h:6379\"\n");
        assert!(url.unwrap_err().to_string().contains("not the URL itself"));
        let prefix = load("[scale]\nkeys_file = \"k\"\nkey_prefix = \"a b\"\n");
        assert!(prefix.unwrap_err().to_string().contains("key_prefix"));
    }

    #[test]
    fn per_session_stdio_servers_are_warned_of_with_a_store() {
        let servers = "[servers.repl]\ncommand = \"repl\"\nsession_mode = \"per_session\"\n\
                       [servers.web]\nurl = \"http://127.0.0.1:1/mcp\"\nsession_mode = \"per_session\"\n";
        let shared = load(&format!(
            "{servers}[scale]\nstore = \"redis\"\nkeys_file = \"k\"\n"
        ));
        let warnings = shared.unwrap().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let text = warnings[0].to_string();
        assert!(
            text.contains("repl") && text.contains("per_session stdio"),
            "{text}"
        );
        let sealed_only = load(&format!("{servers}[scale]\nkeys_file = \"k\"\n"));
        assert!(sealed_only.unwrap().warnings.is_empty());
    }
}
