//! Redis-backed stores for Switchboard gateway replicas (issue 17, `docs/scale-out-design.md`
//! (b)): [`RedisSharedSessions`], the engine's
//! [`SharedSessions`](switchboard::SharedSessions) over Redis, so replicas serving one
//! downstream session share one classic upstream session; [`RedisTokenStore`], the
//! engine's OAuth [`TokenStore`](switchboard::auth::TokenStore), so replicas share tokens,
//! renew each one once (a lock in Redis) and share client registrations; and
//! [`RedisSessionStore`], the downstream sessions' records (the client's `initialize`, its
//! identity binding), so a replica that has not seen a session can restore it.
//!
//! The connection ([`RedisConnection`], one per replica, shared by its stores) is a
//! redis-rs `ConnectionManager` created lazily (a replica starts, and serves, without
//! Redis), multiplexed and reconnecting in the background; every command is bounded by the
//! response timeout, and after repeated connection failures a circuit breaker fails
//! operations at once for a second. A Redis that is down makes each operation fail: the
//! engine answers a [`SharedSessionsError`](switchboard::SharedSessionsError) by opening
//! an upstream session of its own (b.6), a [`StoreError`](switchboard::auth::StoreError)
//! by failing the sign-in or renewal. The Redis URL's user info never appears in an error
//! or a log line.
//!
//! A gateway replica: `let connection = RedisConnection::open(url, &options)?;` then
//! `RedisSharedSessions::with_connection(connection.clone(), options.clone())?` and
//! `RedisTokenStore::with_connection(connection, options)?`.

mod breaker;
mod connection;
mod keys;
mod moves;
mod records;
mod seal;
mod store;
mod tokens;

use std::time::Duration;

pub use connection::RedisConnection;
pub use records::{RedisSessionStore, SessionRecord};
pub use store::{Announcement, EndedSessions, RedisSharedSessions};
pub use tokens::RedisTokenStore;

/// How the stores name, seal and expire their keys.
#[derive(Clone)]
pub struct RedisOptions {
    /// First part of every key (`[scale] key_prefix`; default `sb`).
    pub key_prefix: String,
    /// A session record lives this long after its last write or read (sliding; the
    /// gateway's `session_idle_timeout`, 5 min by default).
    pub idle_ttl: Duration,
    /// HMAC key for session ids and token keys in key names (`k_bind`). `None`: plain
    /// SHA-256, which hides them from `SCAN` output but lets anyone who knows an id (or a
    /// server, URL and user) find its key.
    pub binding_key: Option<Vec<u8>>,
    /// The keyring's other `k_bind`s (rotation, `keys.rs`): values are also looked for
    /// under the names these give (and moved to `binding_key`'s), claims and locks taken
    /// under them too. Ignored without `binding_key`.
    pub older_binding_keys: Vec<Vec<u8>>,
    /// AES-256-GCM key sealing records at rest (`k_store`). `None`: records are plain
    /// JSON, upstream session ids readable by anyone who can read Redis. Required by
    /// [`RedisTokenStore`].
    pub store_key: Option<[u8; 32]>,
    /// The id stored with each value sealed under `store_key` (the keyring's kid, one of
    /// `[0-9a-z]`; default `0`).
    pub store_key_id: char,
    /// Keys that open values but never seal, by id (key rotation, `seal.rs`): the next
    /// key before it becomes primary, the previous one until nothing is under it.
    pub secondary_store_keys: Vec<(char, [u8; 32])>,
    /// A token record with a refresh token (or no known expiry), and a client
    /// registration, is kept this long after its last write (a registration: its last
    /// use). Default 30 days; at least a minute.
    pub token_ttl: Duration,
    /// Bound on each command's answer (redis-rs default 500 ms).
    pub response_timeout: Duration,
    /// Bound on each connection attempt (redis-rs default 1 s).
    pub connect_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: "sb".into(),
            idle_ttl: Duration::from_secs(300),
            binding_key: None,
            older_binding_keys: Vec::new(),
            store_key: None,
            store_key_id: '0',
            secondary_store_keys: Vec::new(),
            token_ttl: Duration::from_secs(30 * 24 * 3600),
            response_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("key_prefix", &self.key_prefix)
            .field("idle_ttl", &self.idle_ttl)
            .field("binding_key", &self.binding_key.as_ref().map(|_| "<set>"))
            .field("older_binding_keys", &self.older_binding_keys.len())
            .field("store_key", &self.store_key.as_ref().map(|_| "<set>"))
            .field("store_key_id", &self.store_key_id)
            .field(
                "secondary_store_keys",
                &self
                    .secondary_store_keys
                    .iter()
                    .map(|(id, _)| id)
                    .collect::<Vec<_>>(),
            )
            .field("token_ttl", &self.token_ttl)
            .field("response_timeout", &self.response_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A Redis store could not be set up. The URL in the message has its user info redacted.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("the Redis URL `{url}` is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("the Redis options are not usable: {0}")]
    BadOptions(String),
}

/// `text` with `url`'s user name and password replaced by `***`, and `url` itself shown
/// without them.
pub(crate) fn redact(text: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        // Not a URL: say nothing about it.
        return text.replace(url, "<redis url>");
    };
    let mut out = text.replace(url, &redacted_url(url));
    // redis-rs also reads `user` and `pass` from the query of `unix://` URLs.
    let query = parsed
        .query_pairs()
        .filter(|(key, _)| key == "user" || key == "pass");
    let query: Vec<String> = query.map(|(_, value)| value.into_owned()).collect();
    let secrets = [parsed.password().unwrap_or(""), parsed.username()];
    for secret in secrets.into_iter().chain(query.iter().map(String::as_str)) {
        if !secret.is_empty() {
            out = out.replace(secret, "***");
        }
    }
    out
}

/// `url` without its user info (or a placeholder if it is no URL).
pub(crate) fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if !parsed.username().is_empty() || parsed.password().is_some() {
                let _ = parsed.set_username("***");
                let _ = parsed.set_password(None);
            }
            // redis-rs also reads `user` and `pass` from the query (`unix://` URLs).
            if parsed.query().is_some() {
                let kept: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| match key.as_ref() {
                        "user" | "pass" => (key.into_owned(), "***".to_owned()),
                        _ => (key.into_owned(), value.into_owned()),
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(kept);
            }
            parsed.to_string()
        }
        Err(_) => "<redis url>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_never_shows() {
        let url = "redis://admin:hunter2@127.0.0.1:6379/0";
        let shown = redact(&format!("cannot reach {url}: hunter2 refused"), url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("admin"),
            "{shown}"
        );
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
        assert_eq!(redacted_url(url), "redis://***@127.0.0.1:6379/0");
        assert_eq!(redacted_url("redis://127.0.0.1:1/"), "redis://127.0.0.1:1/");
    }

    #[test]
    fn credentials_in_a_unix_url_s_query_never_show() {
        let url = "redis+unix:///run/redis.sock?db=1&user=admin&pass=hunter2";
        let shown = redact(&format!("cannot reach {url}: hunter2 refused"), url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("admin"),
            "{shown}"
        );
        let shown = redacted_url(url);
        assert!(
            !shown.contains("hunter2") && !shown.contains("admin"),
            "{shown}"
        );
        assert!(
            shown.contains("db=1") && shown.contains("/run/redis.sock"),
            "{shown}"
        );
    }
}
