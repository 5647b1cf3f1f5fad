//! Private tool lists (`cacheScope: "private"`, 2026-07-28): a list that belongs to one
//! authorization context is never shown to, nor resolved for, another.
//!
//! The hub's catalogue is built from each server's list as its shared connection sees it.
//! When a `per_session` server says that list is private, a session does not use it:
//! [`Hub::catalog_in`] lists the server on the session's own route (its own connection,
//! or its headers on the shared one) and builds the session's catalogue with that list in
//! place of the hub's; [`Hub::call_in`](super::Hub::call_in) resolves names against it.
//! Shared servers need none of this: their one connection is the only authorization
//! context their list is used for.
//!
//! - The session's list is kept with the session's entry in the server's pool (so it goes
//!   when the session is reaped or evicted), and listed again when its `ttlMs` runs out,
//!   when the route's connection heard that the tools changed (or reconnected), or when
//!   the hub listed the server again.
//! - The session's catalogue is kept in the [`Session`] value and reused while the hub's
//!   catalogue and the session's lists are the ones it was built from.
//! - A server whose list cannot be listed for the session is left out of the session's
//!   catalogue (and logged); a call to one of its tools fails with why, not "no such tool".

use std::sync::Arc;

use futures::future::join_all;

use super::Hub;
use super::state::Inner;
use crate::catalog::{Catalog, ExposedTool, ServerTools};
use crate::error::Error;
use crate::sessions::{ServerClients, Session, SessionCatalog};

impl Hub {
    /// The catalogue as `session` sees it: the hub's ([`Hub::catalog`]), except that a
    /// `per_session` server whose list is private (`cacheScope: "private"`) shows the list
    /// it gives the session. A server that cannot list its tools for the session is left
    /// out (and logged).
    pub async fn catalog_in(&self, session: Option<&Session>) -> Result<Arc<Catalog>, Error> {
        Ok(self.inner().catalog_for(session).await?.catalog)
    }
}

/// A catalogue as one session sees it, and the servers left out of it.
pub(super) struct View {
    pub catalog: Arc<Catalog>,
    /// Servers whose private list could not be listed for the session, with why.
    failures: Vec<(String, Error)>,
    /// The hub's catalogue, when `catalog` is another.
    base: Option<Arc<Catalog>>,
}

impl View {
    /// The tool exposed as `name`; for a tool of a server left out, why it was.
    pub fn resolve(self, name: &str) -> Result<Arc<ExposedTool>, Error> {
        let error = match self.catalog.resolve(name) {
            Ok(tool) => return Ok(tool),
            Err(error) => error,
        };
        let server = self
            .base
            .and_then(|base| base.get(name).map(|tool| tool.server.clone()));
        let left_out = self
            .failures
            .into_iter()
            .find(|(s, _)| Some(s) == server.as_ref());
        Err(left_out.map_or(error, |(_, why)| why))
    }
}

impl Inner {
    /// The catalogue as `session` sees it (see the module docs).
    pub(super) async fn catalog_for(&self, session: Option<&Session>) -> Result<View, Error> {
        let Some(session) = session else {
            return Ok(View::shared(self.catalog()));
        };
        let (base, private, mut listings) = {
            let state = self.state();
            let base = state.catalog.clone();
            let private: Vec<(Arc<ServerTools>, Arc<ServerClients>)> = state
                .listings
                .iter()
                .filter(|(_, listing)| listing.private)
                .filter_map(|(name, listing)| {
                    let clients = state.servers.get(name)?;
                    clients.pool().map(|_| (listing.clone(), clients.clone()))
                })
                .collect();
            if private.is_empty() {
                return Ok(View::shared(base));
            }
            (base, private, state.listings.clone())
        };
        let listed = private
            .iter()
            .map(|(shared, clients)| clients.session_tools(session, shared));
        let mut own = Vec::new();
        let mut failures = Vec::new();
        for ((shared, _), listed) in private.iter().zip(join_all(listed).await) {
            match listed {
                Ok(listing) => own.push(listing),
                Err(error) => {
                    tracing::warn!(
                        server = shared.server,
                        session = session.id,
                        "the server's tools could not be listed for the session: {error}"
                    );
                    failures.push((shared.server.clone(), error));
                }
            }
        }
        if failures.is_empty()
            && let Some(kept) = session.kept_catalog()
            && kept.built_from(&base, &own)
        {
            return Ok(View {
                catalog: kept.catalog.clone(),
                failures,
                base: Some(base),
            });
        }
        for listing in &own {
            listings.insert(listing.server.clone(), listing.clone());
        }
        for (server, _) in &failures {
            listings.remove(server);
        }
        let catalog = Catalog::build(&self.settings.catalog, listings.values().map(|l| &**l));
        let catalog = Arc::new(catalog?);
        if failures.is_empty() {
            session.keep_catalog(SessionCatalog::new(base.clone(), own, catalog.clone()));
        }
        Ok(View {
            catalog,
            failures,
            base: Some(base),
        })
    }
}

impl View {
    fn shared(catalog: Arc<Catalog>) -> View {
        View {
            catalog,
            failures: Vec::new(),
            base: None,
        }
    }
}
