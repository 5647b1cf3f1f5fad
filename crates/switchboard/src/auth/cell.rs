//! [`TokenCell`]: one (server, principal)'s token on the request path.
//!
//! Every request reads the current token under a read lock, without I/O, while it is
//! fresh. A token is renewed `refresh_before` its expiry (clamped to half its lifetime, so
//! a short-lived token is not renewed at once), or when the server refuses it (401). Only
//! one renewal runs at a time (the flow lock), and each token has a generation: a request
//! that was refused with generation *g* renews only if the cell still holds *g*; if another
//! request already replaced it, the new one is used. So N requests refused at once cause
//! one token request.
//!
//! How a new token is had ([`Grant`]): a refresh token when the record holds one; else the
//! machine grant (client credentials, a workload's JWT, enterprise-managed); else, when
//! the cell may sign in interactively ([`LoginSetup`]) and the request allows it, the
//! browser flow (`flow.rs`); else none (a person must sign in: the 401 stands). The first
//! use reads the store once; every renewal reads it again under the store's renewal lock
//! (`renew.rs`), and so does the first use after the store said the record was removed
//! elsewhere ([`TokenCell::drop_token`]); every new token is written back. Sign-in,
//! step-up and a server that moved: `login.rs`.

mod login;
mod renew;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::HeaderValue;
use tokio::sync::Mutex;

use super::exchange::{Idp, Jwt};
use super::http::AuthHttp;
use super::machine::Client;
use super::metadata::Endpoints;
use super::store::{TokenKey, TokenRecord, TokenStore, unix_now};
use crate::error::{AuthFailure, AuthStep};
use crate::transport::http::{Authorizer, Credential};
pub(crate) use login::LoginSetup;

/// How new tokens are had.
#[derive(Debug)]
pub(crate) enum Grant {
    /// A machine identity: the client-credentials grant.
    ClientCredentials { client: Client, scopes: Vec<String> },
    /// A workload identity: the JWT-bearer grant with the workload's JWT.
    JwtBearer {
        client: Client,
        assertion: Jwt,
        scopes: Vec<String>,
    },
    /// Enterprise-managed: the person's ID token exchanged at `idp`, then JWT-bearer.
    Enterprise {
        client: Client,
        idp: Idp,
        id_token: Jwt,
        scopes: Vec<String>,
    },
    /// Tokens a person signed in for (in the store), refreshed with `client` when they
    /// have a refresh token.
    Stored { client: Option<Client> },
}

impl Grant {
    /// A grant that gets a token without a person or a refresh token.
    fn is_machine(&self) -> bool {
        !matches!(self, Grant::Stored { .. })
    }
}

/// What the cell's settings are, besides the grant.
pub(crate) struct CellSettings {
    pub key: TokenKey,
    pub http: AuthHttp,
    pub store: Arc<dyn TokenStore>,
    pub refresh_before: Duration,
    /// A configured token endpoint (no metadata discovery).
    pub token_url: Option<String>,
}

struct Current {
    credential: Credential,
    /// When to replace it (`None`: no expiry known).
    renew_at: Option<Instant>,
    record: TokenRecord,
}

impl Current {
    fn is_fresh(&self) -> bool {
        self.renew_at.is_none_or(|at| Instant::now() < at)
    }
}

#[derive(Default)]
struct Flow {
    /// The store has been read.
    loaded: bool,
    /// The authorization server's endpoints, once discovered.
    endpoints: Option<Endpoints>,
    generation: u64,
    /// When the last step-ups ran (see [`TokenCell::step_up`]).
    step_ups: Vec<Instant>,
}

/// One (server, principal)'s token (see the module docs).
pub(crate) struct TokenCell {
    settings: CellSettings,
    grant: Grant,
    login: Option<LoginSetup>,
    current: RwLock<Option<Arc<Current>>>,
    flow: Mutex<Flow>,
}

impl TokenCell {
    pub fn new(settings: CellSettings, grant: Grant) -> Self {
        TokenCell {
            settings,
            grant,
            login: None,
            current: RwLock::new(None),
            flow: Mutex::new(Flow::default()),
        }
    }

    /// The same cell, able to sign a person in (see [`TokenCell::login`]).
    pub fn with_login(mut self, login: LoginSetup) -> Self {
        self.login = Some(login);
        self
    }

    /// Whether the cell can sign a person in.
    pub fn can_login(&self) -> bool {
        self.login.is_some()
    }

    fn current(&self) -> Option<Arc<Current>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_current(&self, current: Option<Arc<Current>>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = current;
    }

    /// The credential for the next request (see [`Authorizer::credential`]).
    async fn credential_slow(&self) -> Result<Option<Credential>, AuthFailure> {
        let mut flow = self.flow.lock().await;
        self.load(&mut flow).await?;
        // Another request may have renewed it while this one waited for the lock.
        if let Some(current) = self.current()
            && current.is_fresh()
        {
            return Ok(Some(current.credential.clone()));
        }
        let can_start = self.grant.is_machine()
            && (flow.endpoints.is_some() || self.settings.token_url.is_some());
        let renewable = self
            .current()
            .is_some_and(|c| c.record.refresh_token.is_some());
        if can_start || renewable {
            self.renew(&mut flow, None).await?;
        }
        // Without a way to renew, the old token goes out anyway: the server decides.
        Ok(self.current().map(|c| c.credential.clone()))
    }

    /// The server refused generation `sent` (see [`Authorizer::refused`]).
    async fn refused_slow(
        &self,
        sent: Option<u64>,
        challenge: Option<&str>,
        inline: bool,
    ) -> Result<bool, AuthFailure> {
        let mut flow = self.flow.lock().await;
        self.load(&mut flow).await?;
        if let Some(current) = self.current()
            && Some(current.credential.generation) != sent
            && current.is_fresh()
        {
            // Another request renewed it meanwhile.
            return Ok(true);
        }
        if sent.is_some() {
            tracing::info!(server = %self.settings.key.server, "the server refused the token; getting a new one");
        }
        match &self.grant {
            Grant::ClientCredentials { .. }
            | Grant::JwtBearer { .. }
            | Grant::Enterprise { .. } => {}
            Grant::Stored { .. } => {
                let refreshable = self
                    .current()
                    .is_some_and(|c| c.record.refresh_token.is_some());
                if !refreshable {
                    if sent.is_some() {
                        let seen = self.current().map(|c| c.record.clone());
                        self.forget(seen.as_ref()).await;
                    }
                    if inline && self.can_login() {
                        self.login_locked(&mut flow, challenge).await?;
                        return Ok(true);
                    }
                    return Ok(false);
                }
                if sent.is_some() && self.issuer_moved(challenge).await {
                    // Its refresh token belongs to the old server: sign in (and register)
                    // at the new one.
                    tracing::info!(server = %self.settings.key.server, "the server names another authorization server now; signing in there");
                    let seen = self.current().map(|c| c.record.clone());
                    self.forget(seen.as_ref()).await;
                    flow.endpoints = None;
                    if inline && self.can_login() {
                        self.login_locked(&mut flow, challenge).await?;
                        return Ok(true);
                    }
                    return Err(AuthFailure::new(
                        AuthStep::Metadata,
                        "the server now uses another authorization server",
                    )
                    .needing_login(true));
                }
            }
        }
        match self.renew(&mut flow, challenge).await {
            Err(failure) if failure.needs_login && inline && self.can_login() => {
                tracing::info!(server = %self.settings.key.server, "the refresh token was refused ({failure}); signing in again");
                self.login_locked(&mut flow, challenge).await?;
            }
            other => other?,
        }
        Ok(true)
    }

    /// Drops the token held, and reads the store again before the next request: its record
    /// was removed elsewhere (see [`TokenStore::removals`]).
    pub async fn drop_token(&self) {
        let mut flow = self.flow.lock().await;
        tracing::debug!(server = %self.settings.key.server, "the stored token was removed; dropping it");
        flow.loaded = false;
        self.set_current(None);
    }

    /// Reads the store once.
    async fn load(&self, flow: &mut Flow) -> Result<(), AuthFailure> {
        if flow.loaded {
            return Ok(());
        }
        let record = self
            .settings
            .store
            .load(&self.settings.key)
            .await
            .map_err(store_failure)?;
        flow.loaded = true;
        if let Some(record) = record {
            self.install(flow, record)?;
        }
        Ok(())
    }

    fn install(&self, flow: &mut Flow, record: TokenRecord) -> Result<(), AuthFailure> {
        // A DPoP-bound token goes with its key and a proof per request (`dpop.rs`).
        let dpop = match (self.settings.http.dpop(), &record.dpop_key) {
            (Some(dpop), Some(key))
                if record
                    .token_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("dpop")) =>
            {
                dpop.use_stored_key(key);
                Some(dpop.resource_proof(&record.access_token)?)
            }
            _ => None,
        };
        let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
        let mut header = HeaderValue::try_from(format!("{scheme} {}", record.access_token))
            .map_err(|_| {
                AuthFailure::new(
                    AuthStep::Token,
                    "the access token has characters not allowed in an HTTP header",
                )
            })?;
        header.set_sensitive(true);
        flow.generation += 1;
        let renew_at = renew_at(&record, self.settings.refresh_before);
        self.set_current(Some(Arc::new(Current {
            credential: Credential {
                header,
                generation: flow.generation,
                proof: dpop,
            },
            renew_at,
            record,
        })));
        Ok(())
    }
}

fn store_failure(error: super::store::StoreError) -> AuthFailure {
    AuthFailure::new(AuthStep::Store, error.0)
}

/// When to replace `record`'s token: `refresh_before` its expiry, at most half its
/// lifetime before.
fn renew_at(record: &TokenRecord, refresh_before: Duration) -> Option<Instant> {
    let expires_at = record.expires_at?;
    let now = unix_now();
    let lifetime = expires_at.saturating_sub(record.issued_at.unwrap_or(now));
    let margin = refresh_before.min(Duration::from_secs(lifetime) / 2);
    let left = Duration::from_secs(expires_at.saturating_sub(now));
    Some(Instant::now() + left.saturating_sub(margin))
}

impl Authorizer for TokenCell {
    fn credential(&self) -> BoxFuture<'_, Result<Option<Credential>, AuthFailure>> {
        if let Some(current) = self.current()
            && current.is_fresh()
        {
            let credential = current.credential.clone();
            return Box::pin(async move { Ok(Some(credential)) });
        }
        Box::pin(self.credential_slow())
    }

    fn refused<'a>(
        &'a self,
        sent: Option<u64>,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, AuthFailure>> {
        Box::pin(self.refused_slow(sent, challenge, true))
    }
}

/// A cell as one connection uses it: until the connection is established a 401 that only
/// a sign-in would fix stands (the connector signs in outside the connect timeout, then
/// connects again); afterwards the sign-in happens inline, within the request's deadline.
pub(crate) struct Attached {
    pub cell: Arc<TokenCell>,
    connected: std::sync::atomic::AtomicBool,
}

impl Attached {
    pub fn new(cell: Arc<TokenCell>) -> Self {
        Attached {
            cell,
            connected: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The connection is established: sign in inline from now on.
    pub fn connected(&self) {
        self.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Authorizer for Attached {
    fn credential(&self) -> BoxFuture<'_, Result<Option<Credential>, AuthFailure>> {
        self.cell.credential()
    }

    fn refused<'a>(
        &'a self,
        sent: Option<u64>,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, AuthFailure>> {
        let inline = self.connected.load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(self.cell.refused_slow(sent, challenge, inline))
    }

    fn insufficient_scope<'a>(
        &'a self,
        sent: Option<u64>,
        challenge: &'a str,
    ) -> BoxFuture<'a, Result<bool, AuthFailure>> {
        Box::pin(async move {
            if !self.connected.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(false);
            }
            self.cell.step_up(sent, challenge).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_refresh_before_expiry_clamped_to_half_the_lifetime() {
        let long = TokenRecord::new("t", Some(Duration::from_secs(3600)));
        let at = renew_at(&long, Duration::from_secs(60)).unwrap();
        let left = at - Instant::now();
        assert!(left > Duration::from_secs(3535) && left <= Duration::from_secs(3540));
        let short = TokenRecord::new("t", Some(Duration::from_secs(10)));
        let left = renew_at(&short, Duration::from_secs(60)).unwrap() - Instant::now();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
        assert_eq!(
            renew_at(&TokenRecord::new("t", None), Duration::from_secs(60)),
            None
        );
    }
}
