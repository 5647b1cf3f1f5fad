//! A token cell's sign-in by a person: the browser flow (`flow.rs`), a step-up for more
//! scope (403 `insufficient_scope`), and noticing that the server moved to another
//! authorization server (SEP-2352).

use std::time::{Duration, Instant};

use super::super::flow::{self, LoginConfig};
use super::super::metadata;
use super::super::opener::Opener;
use super::{Flow, TokenCell};
use crate::error::{AuthFailure, AuthStep};

/// Step-ups per cell per [`STEP_UP_WINDOW`].
const MAX_STEP_UPS: usize = 2;
const STEP_UP_WINDOW: Duration = Duration::from_secs(60);

/// How a cell signs a person in: the flow's settings and who shows the URL.
pub(crate) struct LoginSetup {
    pub config: LoginConfig,
    pub opener: std::sync::Arc<dyn Opener>,
    /// Held while a browser sign-in runs: the registry's cells share it, so a person is
    /// shown one sign-in at a time (two servers asking at once do not open two tabs).
    pub one_at_a_time: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl TokenCell {
    /// Signs a person in with the browser flow (from the server's 401 `challenge` when
    /// there is one), stores and uses the new tokens. Other requests wait meanwhile.
    pub async fn login(&self, challenge: Option<&str>) -> Result<(), AuthFailure> {
        let mut flow = self.flow.lock().await;
        self.load(&mut flow).await?;
        self.login_locked(&mut flow, challenge).await
    }

    pub(super) async fn login_locked(
        &self,
        flow: &mut Flow,
        challenge: Option<&str>,
    ) -> Result<(), AuthFailure> {
        self.login_scoped(flow, challenge, None).await
    }

    /// [`TokenCell::login_locked`] asking for `scopes` instead of the configured or
    /// discovered ones.
    pub(super) async fn login_scoped(
        &self,
        flow: &mut Flow,
        challenge: Option<&str>,
        scopes: Option<Vec<String>>,
    ) -> Result<(), AuthFailure> {
        let Some(setup) = &self.login else {
            return Err(AuthFailure::new(
                AuthStep::Authorization,
                "this server's tokens are not signed in interactively here",
            )
            .needing_login(true));
        };
        let mut config = setup.config.clone();
        if let Some(scopes) = scopes {
            config.scopes = scopes;
        }
        let _browser = setup.one_at_a_time.lock().await;
        let record = flow::login(
            &self.settings.http,
            self.settings.store.as_ref(),
            &config,
            challenge,
            setup.opener.as_ref(),
        )
        .await?;
        if let Err(e) = self.settings.store.save(&self.settings.key, &record).await {
            tracing::warn!(server = %self.settings.key.server, "could not store the new token: {e}");
        }
        // Refreshes go where this token came from (the server may have moved).
        flow.endpoints = None;
        self.install(flow, record)
    }

    /// Whether the 401 `challenge` leads to another authorization server than the one that
    /// issued the current token (a server that moved, SEP-2352). Only asked when the
    /// challenge names its resource metadata; a discovery failure says no (the refresh
    /// then goes where it went).
    pub(super) async fn issuer_moved(&self, challenge: Option<&str>) -> bool {
        let Some(challenge) = challenge.filter(|c| c.contains("resource_metadata")) else {
            return false;
        };
        let Some(issuer) = self.current().and_then(|c| c.record.issuer.clone()) else {
            return false;
        };
        match metadata::discover_all(
            &self.settings.http,
            &self.settings.key.url,
            Some(challenge),
            false,
        )
        .await
        {
            Ok(found) => {
                found.endpoints.issuer.trim_end_matches('/') != issuer.trim_end_matches('/')
            }
            Err(_) => false,
        }
    }

    /// The server needs more scope than generation `sent` has (403 `insufficient_scope`):
    /// a new authorization asking for the granted scopes and the challenge's (step-up),
    /// at most [`MAX_STEP_UPS`] per minute per cell, so a server that refuses forever
    /// does not open a browser forever.
    pub(super) async fn step_up(
        &self,
        sent: Option<u64>,
        challenge: &str,
    ) -> Result<bool, AuthFailure> {
        let mut flow = self.flow.lock().await;
        if let Some(current) = self.current()
            && Some(current.credential.generation) != sent
        {
            // Another request stepped up meanwhile.
            return Ok(true);
        }
        if !self.can_login() {
            return Ok(false);
        }
        let now = Instant::now();
        flow.step_ups
            .retain(|at| now.duration_since(*at) < STEP_UP_WINDOW);
        if flow.step_ups.len() >= MAX_STEP_UPS {
            tracing::warn!(server = %self.settings.key.server, "the server keeps asking for more scope; not signing in again");
            return Ok(false);
        }
        flow.step_ups.push(now);
        let mut scopes = self
            .current()
            .map(|c| c.record.scopes.clone())
            .unwrap_or_default();
        let wanted = crate::error::challenge_param(challenge, "scope").unwrap_or_default();
        for scope in wanted.split_whitespace() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        tracing::info!(server = %self.settings.key.server, scopes = %scopes.join(" "), "the server needs more scope; signing in again");
        self.login_scoped(&mut flow, Some(challenge), Some(scopes))
            .await?;
        Ok(true)
    }
}
