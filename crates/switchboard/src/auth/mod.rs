//! Signing in to upstream servers with OAuth: the layer between `transport` (which defines
//! the [`Authorizer`] every Streamable HTTP request asks for its token) and `upstream`
//! (whose [`Connector`](crate::Connector) holds an [`AuthRegistry`]).
//!
//! Files, by job:
//!
//! - `store.rs`: [`TokenStore`] (pluggable), [`TokenKey`] (server, URL, principal),
//!   [`TokenRecord`], [`MemoryStore`]; `file_store.rs`: [`FileStore`] (0700/0600, atomic).
//! - `cell.rs`: `TokenCell`, one (server, principal)'s token on the request path: read
//!   without I/O, renewed before expiry or after a 401, one renewal at a time.
//! - `metadata.rs`: protected resource and authorization server metadata discovery.
//! - `machine.rs`: the client-credentials and refresh-token grants; `jwt.rs`: the
//!   `private_key_jwt` assertion; `http.rs`: metadata GETs and token POSTs, RFC 6749 errors.
//!
//! Tokens, secrets and assertions never reach a log line or an error: records and secrets
//! have redacted `Debug`, header values are marked sensitive, failures carry the
//! authorization server's `error`/`error_description` and our own words only.

mod cell;
mod file_store;
mod http;
mod jwt;
mod machine;
mod metadata;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use file_store::FileStore;
pub use store::{MemoryStore, StoreError, TokenKey, TokenRecord, TokenStore};

use crate::Error;
use crate::config::template::render;
use crate::config::{AuthConfig, AuthKind, ServerConfig, TransportKind, Variables};
use crate::transport::http::Authorizer;
use cell::{CellSettings, Grant, TokenCell};
use machine::{Client, ClientSecret};

/// Past this many cells, those no connection holds are dropped (their tokens stay in the
/// store).
const MAX_IDLE_CELLS: usize = 4096;

/// The token cells of one connector, by key, and the store they use. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AuthRegistry {
    store: Arc<dyn TokenStore>,
    /// Each cell with the `[auth]` table it was made from: a server added again with
    /// another table gets a new cell.
    cells: Arc<Mutex<Cells>>,
}

/// Each key's cell and the `[auth]` table it was made from.
type Cells = HashMap<TokenKey, (AuthConfig, Arc<TokenCell>)>;

impl Default for AuthRegistry {
    fn default() -> Self {
        Self::new(Arc::new(MemoryStore::new()))
    }
}

impl AuthRegistry {
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        AuthRegistry {
            store,
            cells: Arc::default(),
        }
    }

    /// The authorizer of `server`'s shared connection, if it signs in: one cell per (server,
    /// URL, principal), kept across reconnects. The client secret is rendered here (with
    /// `vars`), so a template error is a connect error.
    pub fn authorizer(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        http_client: reqwest::Client,
    ) -> Result<Option<Arc<dyn Authorizer>>, Error> {
        let Some(auth) = &server.auth else {
            return Ok(None);
        };
        if auth.kind == AuthKind::None || server.transport != TransportKind::StreamableHttp {
            return Ok(None);
        }
        let key = TokenKey {
            server: server.name.clone(),
            url: server.url.clone().unwrap_or_default(),
            principal: auth.principal.clone(),
        };
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((made_from, cell)) = cells.get(&key)
            && made_from == auth
        {
            return Ok(Some(cell.clone() as Arc<dyn Authorizer>));
        }
        let secret = match &auth.client_secret {
            Some(template) => Some(ClientSecret(
                render("client_secret", template.expose_template(), vars).map_err(|source| {
                    Error::Template {
                        server: server.name.clone(),
                        source,
                    }
                })?,
            )),
            None => None,
        };
        let client = auth.client_id.clone().map(|id| Client {
            id,
            secret,
            private_key_file: auth.private_key_file.clone(),
            method: auth.token_endpoint_auth_method,
        });
        let grant = match (auth.kind, client) {
            (AuthKind::ClientCredentials, Some(client)) => Grant::ClientCredentials {
                client,
                scopes: auth.scopes.clone(),
            },
            (_, client) => Grant::Stored { client },
        };
        let settings = CellSettings {
            key: key.clone(),
            http: http::AuthHttp::new(http_client),
            store: self.store.clone(),
            refresh_before: auth.refresh_before,
            token_url: auth.token_url.clone(),
        };
        let cell = Arc::new(TokenCell::new(settings, grant));
        if cells.len() >= MAX_IDLE_CELLS {
            // Per-session principals come and go: keep the cells a connection still holds.
            cells.retain(|_, (_, cell)| Arc::strong_count(cell) > 1);
        }
        cells.insert(key, (auth.clone(), cell.clone()));
        Ok(Some(cell as Arc<dyn Authorizer>))
    }
}
