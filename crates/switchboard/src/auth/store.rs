//! Where tokens are kept between connections and processes: the [`TokenStore`] trait, its
//! key and record, and [`MemoryStore`]. The file store is `file_store.rs`.
//!
//! A record is keyed by (server name, server URL, principal): a server's shared connection
//! uses its configured principal (`shared` by default), a per-session connection its
//! user's, so one person's token never reaches another's requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// Whose token, for which server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    /// The server's name in the config.
    pub server: String,
    /// The server's URL (a server renamed to another URL does not reuse tokens).
    pub url: String,
    /// Who the token is for: `shared` (or the `principal` key) for a server's shared
    /// connection, a user for their session's.
    pub principal: String,
}

/// What is stored for one key. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    pub access_token: String,
    /// When the access token expires (seconds since the Unix epoch), if the server said.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// When it was issued (seconds since the Unix epoch): with `expires_at`, its lifetime.
    #[serde(default)]
    pub issued_at: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Granted scopes, when the server said.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The authorization server that issued it.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Where it is refreshed.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The client it was issued to.
    #[serde(default)]
    pub client_id: Option<String>,
    /// That client's secret, when the authorization server registered it with one
    /// (dynamic registration): refreshing needs it. A configured secret is never stored.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// How that client authenticates at the token endpoint (`client_secret_basic`, ...),
    /// when registration said.
    #[serde(default)]
    pub client_auth_method: Option<String>,
    /// The RFC 8707 `resource` the token is for (sent again when refreshing).
    #[serde(default)]
    pub resource: Option<String>,
}

impl TokenRecord {
    /// A record for `access_token`, which expires `expires_in` from now if given.
    pub fn new(access_token: impl Into<String>, expires_in: Option<Duration>) -> Self {
        let now = unix_now();
        TokenRecord {
            access_token: access_token.into(),
            expires_at: expires_in.map(|d| now + d.as_secs()),
            issued_at: Some(now),
            refresh_token: None,
            scopes: Vec::new(),
            issuer: None,
            token_endpoint: None,
            client_id: None,
            client_secret: None,
            client_auth_method: None,
            resource: None,
        }
    }

    /// The same record with a refresh token, where it is used and by which client.
    pub fn with_refresh(
        mut self,
        refresh_token: impl Into<String>,
        token_endpoint: impl Into<String>,
        client_id: impl Into<String>,
    ) -> Self {
        self.refresh_token = Some(refresh_token.into());
        self.token_endpoint = Some(token_endpoint.into());
        self.client_id = Some(client_id.into());
        self
    }
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("access_token", &"***")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("scopes", &self.scopes)
            .field("issuer", &self.issuer)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Why the store could not be read or written. The message names the file and says what
/// to do; never a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where tokens live. Implement it to keep tokens in a database or a secret manager; the
/// engine reads a key once per connection's lifetime (and after another process may have
/// refreshed it) and writes after every new token, never on the request path.
pub trait TokenStore: Send + Sync + 'static {
    fn load<'a>(
        &'a self,
        key: &'a TokenKey,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>>;
    fn save<'a>(
        &'a self,
        key: &'a TokenKey,
        record: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn remove<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Tokens in memory, gone with the process (the library's default).
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<TokenKey, TokenRecord>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, TokenRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(
        &'a self,
        key: &'a TokenKey,
    ) -> BoxFuture<'a, Result<Option<TokenRecord>, StoreError>> {
        let found = self.records().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save<'a>(
        &'a self,
        key: &'a TokenKey,
        record: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.records().insert(key.clone(), record.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<(), StoreError>> {
        self.records().remove(key);
        Box::pin(async { Ok(()) })
    }
}
