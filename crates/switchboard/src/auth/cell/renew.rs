//! A token cell's renewal: refresh, or the cell's machine grant, under the store's renewal
//! lock (see [`TokenCell::renew`]); dropping a dead token; where tokens are asked for.

use std::time::Instant;

use super::super::exchange;
use super::super::machine::{self, Client, ClientSecret};
use super::super::metadata::{self, Endpoints};
use super::super::store::TokenRecord;
use super::{Flow, Grant, TokenCell, renew_at, store_failure};
use crate::error::{AuthFailure, AuthStep};

impl TokenCell {
    /// Gets a new token: refresh when possible, else the grant; stores and installs it.
    ///
    /// Under the store's renewal lock for the key, after reading the record again: another
    /// process (or hub) on the same store may have renewed it meanwhile, and with rotating
    /// refresh tokens ours is then already spent. A fresh token stored by another is used
    /// as it is; a stale one is renewed with the refresh token stored with it; a refresh
    /// refused for good deletes the record only if it still is the one that failed.
    pub(super) async fn renew(
        &self,
        flow: &mut Flow,
        challenge: Option<&str>,
    ) -> Result<(), AuthFailure> {
        let store = &self.settings.store;
        let key = &self.settings.key;
        let _lock = store.lock(key).await.map_err(store_failure)?;
        let held = self.current().map(|c| c.record.clone());
        let stored = store.load(key).await.map_err(store_failure)?;
        if let Some(stored) = &stored
            && Some(stored) != held.as_ref()
            && renew_at(stored, self.settings.refresh_before).is_none_or(|at| Instant::now() < at)
        {
            tracing::debug!(server = %key.server, "another process renewed the token; using its one");
            return self.install(flow, stored.clone());
        }
        // The stored record when there is one (its refresh token is the live one).
        let old = stored.or(held);
        let mut refreshed = None;
        if let Some(old) = old.as_ref().filter(|r| r.refresh_token.is_some()) {
            let endpoints = self.endpoints_for_refresh(flow, old, challenge).await?;
            let client = self.refresh_client(old);
            match machine::refresh(&self.settings.http, &client, old, &endpoints).await {
                Ok(record) => refreshed = Some(record),
                Err(failure) if failure.needs_login => {
                    self.forget_locked(old).await;
                    if !self.grant.is_machine() {
                        return Err(failure);
                    }
                }
                Err(failure) => return Err(failure),
            }
        }
        let record = match (refreshed, &self.grant) {
            (Some(record), _) => record,
            (None, Grant::ClientCredentials { client, scopes }) => {
                let endpoints = self.endpoints(flow, challenge).await?;
                machine::client_credentials(&self.settings.http, client, &endpoints, scopes).await?
            }
            (
                None,
                Grant::JwtBearer {
                    client,
                    assertion,
                    scopes,
                },
            ) => {
                let endpoints = self.endpoints(flow, challenge).await?;
                let http = &self.settings.http;
                exchange::jwt_bearer(http, client, &endpoints, assertion, scopes).await?
            }
            (
                None,
                Grant::Enterprise {
                    client,
                    idp,
                    id_token,
                    scopes,
                },
            ) => {
                let endpoints = self.endpoints(flow, challenge).await?;
                let http = &self.settings.http;
                exchange::enterprise(http, client, idp, &endpoints, id_token, scopes).await?
            }
            (None, Grant::Stored { .. }) => {
                return Err(AuthFailure::new(
                    AuthStep::Token,
                    "no refresh token is stored for this server",
                )
                .needing_login(true));
            }
        };
        if let Err(e) = store.save(key, &record).await {
            // The token works in memory; the next process will have to get its own.
            tracing::warn!(server = %key.server, "could not store the new token: {e}");
        }
        self.install(flow, record)
    }

    /// Drops the current token `seen`, in memory and (under the renewal lock) in the store
    /// unless another process replaced it there.
    pub(super) async fn forget(&self, seen: Option<&TokenRecord>) {
        match self.settings.store.lock(&self.settings.key).await {
            Ok(_lock) => match seen {
                Some(seen) => self.forget_locked(seen).await,
                None => self.set_current(None),
            },
            Err(e) => {
                self.set_current(None);
                tracing::warn!(server = %self.settings.key.server, "could not remove a dead token: {e}");
            }
        }
    }

    /// [`TokenCell::forget`] for a caller holding the renewal lock.
    pub(super) async fn forget_locked(&self, seen: &TokenRecord) {
        self.set_current(None);
        if let Err(e) = self
            .settings
            .store
            .remove_if(&self.settings.key, seen)
            .await
        {
            tracing::warn!(server = %self.settings.key.server, "could not remove a dead token: {e}");
        }
    }

    pub(super) async fn endpoints(
        &self,
        flow: &mut Flow,
        challenge: Option<&str>,
    ) -> Result<Endpoints, AuthFailure> {
        if let Some(endpoints) = &flow.endpoints {
            return Ok(endpoints.clone());
        }
        let endpoints = match &self.settings.token_url {
            Some(token_url) => Endpoints {
                issuer: token_url.clone(),
                token_endpoint: token_url.clone(),
                auth_methods: Vec::new(),
                resource: None,
                dpop_algs: Vec::new(),
            },
            None => {
                metadata::discover(&self.settings.http, &self.settings.key.url, challenge).await?
            }
        };
        tracing::debug!(server = %self.settings.key.server, token_endpoint = %endpoints.token_endpoint, "found the authorization server");
        flow.endpoints = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// Where `record` is refreshed: as stored, else discovered.
    pub(super) async fn endpoints_for_refresh(
        &self,
        flow: &mut Flow,
        record: &TokenRecord,
        challenge: Option<&str>,
    ) -> Result<Endpoints, AuthFailure> {
        match (&record.token_endpoint, &flow.endpoints) {
            (_, Some(endpoints)) => Ok(endpoints.clone()),
            (Some(token_endpoint), None) => Ok(Endpoints {
                issuer: record
                    .issuer
                    .clone()
                    .unwrap_or_else(|| token_endpoint.clone()),
                token_endpoint: token_endpoint.clone(),
                auth_methods: Vec::new(),
                resource: record.resource.clone(),
                dpop_algs: Vec::new(),
            }),
            (None, None) => self.endpoints(flow, challenge).await,
        }
    }

    /// The client that refreshes `record`: the configured one, else the one the record
    /// was issued to (a client registered at sign-in keeps its secret and method there).
    pub(super) fn refresh_client(&self, record: &TokenRecord) -> Client {
        let configured = match &self.grant {
            Grant::ClientCredentials { client, .. }
            | Grant::JwtBearer { client, .. }
            | Grant::Enterprise { client, .. } => Some(client),
            Grant::Stored { client } => client.as_ref(),
        };
        configured.cloned().unwrap_or_else(|| Client {
            id: record.client_id.clone().unwrap_or_default(),
            secret: record.client_secret.clone().map(ClientSecret),
            private_key_file: None,
            method: record.client_auth_method.as_deref().and_then(|m| {
                crate::config::TokenAuthMethod::ALL
                    .iter()
                    .find(|(_, name)| *name == m)
                    .map(|(method, _)| *method)
            }),
        })
    }
}
