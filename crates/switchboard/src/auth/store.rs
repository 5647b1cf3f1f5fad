//! Where tokens are kept between connections and processes: the [`TokenStore`] trait, its
//! key and record, the clients registered at authorization servers ([`Registration`]), and
//! [`MemoryStore`]. The file store is `file_store.rs`.
//!
//! A record is keyed by (server name, server URL, principal): a server's shared connection
//! uses its configured principal (`shared` by default), a per-session connection its
//! user's, so one person's token never reaches another's requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
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

/// Which registration: an authorization server and the configured callback port (`None`:
/// any; the registration's own port is used again).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegistrationKey {
    pub issuer: String,
    pub redirect_port: Option<u16>,
}

/// A client dynamically registered (RFC 7591) at an authorization server, kept so later
/// sign-ins (any principal, any process) reuse it instead of registering again. `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Registration {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The token endpoint method the server registered (`none`, `client_secret_basic`, ...).
    #[serde(default)]
    pub auth_method: Option<String>,
    /// The redirect URI it was registered with (its loopback port is used again).
    pub redirect_uri: String,
}

impl Registration {
    pub fn new(client_id: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        Registration {
            client_id: client_id.into(),
            client_secret: None,
            auth_method: None,
            redirect_uri: redirect_uri.into(),
        }
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("auth_method", &self.auth_method)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
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
    /// The token type the server said (`Bearer`, `DPoP`).
    #[serde(default)]
    pub token_type: Option<String>,
    /// The private key a `DPoP` token (and its refresh token) is bound to: PKCS#8,
    /// base64url. As secret as the tokens.
    #[serde(default)]
    pub dpop_key: Option<String>,
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
            token_type: None,
            dpop_key: None,
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
            .field("token_type", &self.token_type)
            .field("dpop_key", &self.dpop_key.as_ref().map(|_| "***"))
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
/// engine reads a key once per connection's lifetime (and again before every renewal,
/// since another process may have renewed it) and writes after every new token, never on
/// the request path.
///
/// Renewals of one key are serialized with [`TokenStore::lock`]: with rotating refresh
/// tokens, two processes (or two hubs) refreshing one record at once would leave one of
/// them with a refresh token the server has already replaced. Under the lock the engine
/// reloads the record, uses a token another holder stored meanwhile, and deletes only the
/// record it saw fail ([`TokenStore::remove_if`]).
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

    /// Waits until no one else renews `key`'s token, and holds that until the returned
    /// lock is dropped. Not reentrant. The default locks nothing: a store shared by
    /// several processes or hubs should lock across them.
    fn lock<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<RenewalLock, StoreError>> {
        let _ = key;
        Box::pin(async { Ok(RenewalLock::none()) })
    }

    /// Deletes `key`'s record only if it still is `seen` (a renewal that failed must not
    /// delete the token another holder just stored). Called while holding
    /// [`TokenStore::lock`]; `Ok(true)` when it was deleted. The default loads, compares
    /// and removes.
    fn remove_if<'a>(
        &'a self,
        key: &'a TokenKey,
        seen: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if self.load(key).await?.as_ref() != Some(seen) {
                return Ok(false);
            }
            self.remove(key).await?;
            Ok(true)
        })
    }

    /// Keys whose records were removed (a sign-out, a refused refresh) by any holder of
    /// this store, as it happens: cells holding their tokens drop them and read the store
    /// again. The default (`None`) tells nothing: a removed token is then used until it
    /// expires or is refused. Worth it for stores shared by processes (replicas).
    fn removals(&self) -> Option<tokio::sync::broadcast::Receiver<TokenKey>> {
        None
    }

    /// The client registered at `key`'s authorization server, if one is kept. The default
    /// keeps none (every sign-in registers).
    fn load_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<Option<Registration>, StoreError>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// Keeps a client registered at `key`'s authorization server.
    fn save_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
        registration: &'a Registration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (key, registration);
        Box::pin(async { Ok(()) })
    }

    /// Forgets it (the server refused it).
    fn remove_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = key;
        Box::pin(async { Ok(()) })
    }
}

/// A held renewal lock ([`TokenStore::lock`]); dropping it releases the lock.
#[must_use = "the lock is released when dropped"]
pub struct RenewalLock {
    _held: Box<dyn Send + Sync>,
}

impl RenewalLock {
    /// A lock whose release is dropping `held` (a guard, an open lock file, ...).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        RenewalLock {
            _held: Box::new(held),
        }
    }

    /// A lock that holds nothing.
    pub fn none() -> Self {
        Self::new(())
    }
}

impl std::fmt::Debug for RenewalLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RenewalLock")
    }
}

/// One async mutex per key, for the renewal locks of the stores in this file and
/// `file_store.rs` (in this process; the file store adds a lock across processes). Keys
/// no one holds are dropped as new ones come.
#[derive(Default)]
pub(crate) struct KeyLocks {
    locks: Mutex<HashMap<TokenKey, Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyLocks {
    /// Waits for `key`'s lock.
    pub async fn lock(&self, key: &TokenKey) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            match locks.get(key).and_then(Weak::upgrade) {
                Some(mutex) => mutex,
                None => {
                    locks.retain(|_, held| held.strong_count() > 0);
                    let mutex = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key.clone(), Arc::downgrade(&mutex));
                    mutex
                }
            }
        };
        mutex.lock_owned().await
    }
}

impl std::fmt::Debug for KeyLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyLocks")
    }
}

/// Tokens in memory, gone with the process (the library's default).
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<TokenKey, TokenRecord>>,
    registrations: Mutex<HashMap<RegistrationKey, Registration>>,
    locks: KeyLocks,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, TokenRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn registrations(&self) -> std::sync::MutexGuard<'_, HashMap<RegistrationKey, Registration>> {
        self.registrations.lock().unwrap_or_else(|p| p.into_inner())
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

    fn lock<'a>(&'a self, key: &'a TokenKey) -> BoxFuture<'a, Result<RenewalLock, StoreError>> {
        Box::pin(async move { Ok(RenewalLock::new(self.locks.lock(key).await)) })
    }

    fn remove_if<'a>(
        &'a self,
        key: &'a TokenKey,
        seen: &'a TokenRecord,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut records = self.records();
        let removed = records.get(key) == Some(seen);
        if removed {
            records.remove(key);
        }
        drop(records);
        Box::pin(async move { Ok(removed) })
    }

    fn load_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<Option<Registration>, StoreError>> {
        let found = self.registrations().get(key).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn save_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
        registration: &'a Registration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.registrations()
            .insert(key.clone(), registration.clone());
        Box::pin(async { Ok(()) })
    }

    fn remove_registration<'a>(
        &'a self,
        key: &'a RegistrationKey,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.registrations().remove(key);
        Box::pin(async { Ok(()) })
    }
}
