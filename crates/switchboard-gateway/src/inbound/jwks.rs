//! The JWKS the gateway verifies bearer JWTs with: read from a file or fetched from a URL,
//! kept for `jwks_cache`, and loaded again when a token names a key it lacks (a provider
//! rotated its keys), at most once per [`MIN_RELOAD_INTERVAL`].
//!
//! A background task ([`KeySet::refresh_in_background`]) loads the keys again before they
//! expire (at nine tenths of `jwks_cache`), so no request waits for a fetch; a refresh that
//! fails is tried again every [`MIN_RELOAD_INTERVAL`] while the keys held stay in use.
//!
//! Reading the keys takes no lock held across I/O: the current set is an `Arc` behind a
//! `RwLock`; one reload at a time runs under an async mutex, and callers that waited for it
//! use what it loaded. A reload that fails keeps the keys already held (and says so in the
//! log); with none held the caller is told the keys are unavailable (503, not 401: the
//! token may be fine).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use switchboard::config::JwksSource;
use tokio::time::Instant;

use crate::inbound::jwt::Jwk;

/// A token naming an unknown key loads the set again at most this often.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// The longest a JWKS request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document accepted.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// The keys could not be had (see the module docs).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the key set for verifying tokens is unavailable: {0}")]
pub struct KeysUnavailable(pub String);

/// A JWKS source and what was last loaded from it.
pub struct KeySet {
    source: JwksSource,
    cache_for: Duration,
    /// [`MIN_RELOAD_INTERVAL`] (tests change it).
    pub(in crate::inbound) min_reload: Duration,
    client: reqwest::Client,
    current: RwLock<Arc<Loaded>>,
    reload: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Loaded {
    keys: Arc<Vec<Jwk>>,
    /// When the keys were loaded (`None`: never).
    at: Option<Instant>,
    /// When a load was last tried, successful or not.
    tried: Option<Instant>,
    /// Why the last load failed (`None` after a success).
    failure: Option<KeysUnavailable>,
}

/// Why the keys are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Any current keys.
    Current,
    /// The held keys lack the token's; reload unless that was tried just now.
    Missing,
}

impl KeySet {
    pub fn new(source: JwksSource, cache_for: Duration) -> KeySet {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        KeySet {
            source,
            cache_for,
            min_reload: MIN_RELOAD_INTERVAL,
            client,
            current: RwLock::new(Arc::default()),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the keys now (at start). The error says what failed, naming the file or URL.
    pub async fn load(&self) -> Result<usize, KeysUnavailable> {
        let _one = self.reload.lock().await;
        self.reload_now().await.map(|()| self.snapshot().keys.len())
    }

    /// The keys to verify with: those held while fresh, else loaded again (see [`Want`]).
    pub async fn keys(&self, want: Want) -> Result<Arc<Vec<Jwk>>, KeysUnavailable> {
        let held = self.snapshot();
        if !self.needs_reload(&held, want) {
            return keys_of(&held);
        }
        let _one = self.reload.lock().await;
        let held_now = self.snapshot();
        // Someone else reloaded while this waited: use theirs.
        if held_now.tried != held.tried || !self.needs_reload(&held_now, want) {
            return keys_of(&held_now);
        }
        match self.reload_now().await {
            Ok(()) => keys_of(&self.snapshot()),
            Err(error) if held_now.at.is_some() => {
                tracing::warn!(%error, "keeping the JWKS already held");
                keys_of(&held_now)
            }
            Err(error) => Err(error),
        }
    }

    /// Keeps `keys` fresh in the background (see the module docs) until they are dropped
    /// (the task holds them only while it loads).
    pub fn refresh_in_background(keys: &Arc<KeySet>) {
        let keys = Arc::downgrade(keys);
        tokio::spawn(async move {
            loop {
                let due = match keys.upgrade() {
                    Some(keys) => keys.next_refresh(),
                    None => return,
                };
                tokio::time::sleep_until(due).await;
                match keys.upgrade() {
                    Some(keys) => keys.refresh().await,
                    None => return,
                }
            }
        });
    }

    /// When the keys held should be loaded again: before they expire, or (no keys, or the
    /// last load failed) once [`MIN_RELOAD_INTERVAL`] has passed since it was tried.
    fn next_refresh(&self) -> Instant {
        let held = self.snapshot();
        let retry = held.tried.map(|tried| tried + self.min_reload);
        match (held.at, &held.failure) {
            (Some(at), None) => {
                let due = at + self.cache_for.mul_f64(0.9);
                retry.map_or(due, |retry| due.max(retry))
            }
            _ => retry.unwrap_or_else(Instant::now),
        }
    }

    /// One background refresh, unless a request reloaded meanwhile.
    async fn refresh(&self) {
        let _one = self.reload.lock().await;
        if self.next_refresh() > Instant::now() {
            return;
        }
        match self.reload_now().await {
            Ok(()) => tracing::debug!("JWKS refreshed before it expired"),
            Err(error) => {
                tracing::warn!(%error, "could not refresh the JWKS: keeping the keys held")
            }
        }
    }

    fn snapshot(&self) -> Arc<Loaded> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn needs_reload(&self, held: &Loaded, want: Want) -> bool {
        let since = |at: Option<Instant>| at.map(|t| t.elapsed());
        // Never more often than `min_reload`, whatever the reason: while the source fails,
        // requests use what is held (or are told the keys are unavailable) without waiting.
        let may_try = since(held.tried).is_none_or(|d| d >= self.min_reload);
        let stale = match want {
            _ if held.at.is_none() => true,
            Want::Current => since(held.at).is_some_and(|d| d >= self.cache_for),
            Want::Missing => true,
        };
        may_try && stale
    }

    /// Loads from the source and stores the result (under the reload lock).
    async fn reload_now(&self) -> Result<(), KeysUnavailable> {
        let loaded = self.fetch().await.and_then(|document| {
            crate::inbound::jwt::parse_jwks(&document).map_err(|p| self.unavailable(&p))
        });
        let held = self.snapshot();
        let now = Instant::now();
        let next = match &loaded {
            Ok(keys) => Loaded {
                keys: Arc::new(keys.clone()),
                at: Some(now),
                tried: Some(now),
                failure: None,
            },
            Err(failure) => Loaded {
                keys: held.keys.clone(),
                at: held.at,
                tried: Some(now),
                failure: Some(failure.clone()),
            },
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        let keys = loaded?;
        tracing::debug!(keys = keys.len(), "JWKS loaded");
        Ok(())
    }

    async fn fetch(&self) -> Result<Vec<u8>, KeysUnavailable> {
        match &self.source {
            JwksSource::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| self.unavailable(&format!("cannot read it ({e})"))),
            JwksSource::Url(url) => {
                let mut response = self
                    .client
                    .get(url)
                    .header(http::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| self.unavailable(&request_problem(&e)))?;
                if !response.status().is_success() {
                    let status = response.status();
                    return Err(self.unavailable(&format!("it answered {status}")));
                }
                let mut body = Vec::new();
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| self.unavailable(&request_problem(&e)))?
                {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_DOCUMENT {
                        return Err(self.unavailable("the document is larger than 1 MiB"));
                    }
                }
                Ok(body)
            }
        }
    }

    /// An error naming the source (a URL without its query, which may hold a secret).
    fn unavailable(&self, problem: &str) -> KeysUnavailable {
        let source = match &self.source {
            JwksSource::File(path) => format!("jwks_file {}", path.display()),
            JwksSource::Url(url) => {
                let bare = url.split(['?', '#']).next().unwrap_or_default();
                format!("jwks_url {bare}")
            }
        };
        KeysUnavailable(format!("{source}: {problem}"))
    }
}

/// The keys held, or why there are none (no load has succeeded yet).
fn keys_of(loaded: &Loaded) -> Result<Arc<Vec<Jwk>>, KeysUnavailable> {
    match (&loaded.at, &loaded.failure) {
        (None, Some(failure)) => Err(failure.clone()),
        (None, None) => Err(KeysUnavailable("not loaded yet".to_string())),
        (Some(_), _) => Ok(loaded.keys.clone()),
    }
}

/// What went wrong with a request, without its URL.
fn request_problem(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("no answer within {FETCH_TIMEOUT:?}")
    } else if error.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    }
}

#[cfg(test)]
mod tests {
    use switchboard_testkit::oauth::TokenIssuer;

    use super::*;

    /// The kids of the keys held now (without loading).
    fn held_kids(keys: &KeySet) -> Vec<String> {
        let held = keys.snapshot();
        held.keys.iter().filter_map(|key| key.kid.clone()).collect()
    }

    #[tokio::test]
    async fn the_keys_are_loaded_again_before_they_expire_without_a_request_asking() {
        let issuer = TokenIssuer::new("https://idp.test");
        let served = issuer.serve_jwks().await.unwrap();
        let mut keys = KeySet::new(JwksSource::Url(served.url()), Duration::from_millis(300));
        keys.min_reload = Duration::from_millis(50);
        let keys = Arc::new(keys);
        keys.load().await.unwrap();
        assert!(!held_kids(&keys).contains(&"ec-2".to_owned()));
        KeySet::refresh_in_background(&keys);
        // The provider publishes a new key; nobody asks for the keys, yet it is held soon.
        let rotated = issuer.rotate();
        issuer.publish();
        let bound = Instant::now() + Duration::from_secs(20);
        while !held_kids(&keys).contains(&rotated) {
            assert!(
                Instant::now() < bound,
                "not refreshed: {:?}",
                held_kids(&keys)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(issuer.fetches() >= 2, "{}", issuer.fetches());
    }
}
