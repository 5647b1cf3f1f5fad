//! Signing in to upstream servers with OAuth: the layer between `transport` (which defines
//! the [`Authorizer`](crate::transport::http::Authorizer) every Streamable HTTP request asks for its token) and `upstream`
//! (whose [`Connector`](crate::Connector) holds an [`AuthRegistry`]).
//!
//! Files, by job:
//!
//! - `store.rs`: [`TokenStore`] (pluggable), [`TokenKey`] (server, URL, principal),
//!   [`TokenRecord`], [`MemoryStore`]; `file_store.rs`: [`FileStore`] (0700/0600, atomic).
//! - `cell.rs`: `TokenCell`, one (server, principal)'s token on the request path: read
//!   without I/O, renewed before expiry or after a 401, one renewal at a time.
//! - `metadata.rs`: protected resource and authorization server metadata discovery.
//! - `flow.rs`: the interactive sign-in (authorization code + PKCE); `register.rs`: which
//!   client (pre-registered, metadata document, dynamic registration); `callback.rs`: the
//!   loopback listener; `opener.rs`: [`Opener`], who shows the person the URL.
//! - `revoke.rs`: [`sign_out`], the stored tokens deleted and revoked (RFC 7009).
//! - `machine.rs`: the client-credentials and refresh-token grants; `exchange.rs`: the
//!   JWT-bearer grant (workload identity) and enterprise-managed authorization (token
//!   exchange at the identity provider, then JWT-bearer); `jwt.rs`: the `private_key_jwt`
//!   assertion; `dpop.rs`: DPoP keys and proofs; `http.rs`: metadata GETs and token
//!   POSTs, RFC 6749 errors.
//!
//! Tokens, secrets and assertions never reach a log line or an error: records and secrets
//! have redacted `Debug`, header values are marked sensitive, failures carry the
//! authorization server's `error`/`error_description` and our own words only.

mod callback;
mod cell;
mod dpop;
mod exchange;
mod file_store;
mod flow;
mod http;
mod jwt;
mod machine;
mod metadata;
mod opener;
mod register;
mod revoke;
mod store;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;

pub use file_store::FileStore;
pub use opener::{BrowserOpener, Opener, PrintOpener};
pub use revoke::{Revocation, SignedOut, sign_out};
pub use store::{
    MemoryStore, Registration, RegistrationKey, RenewalLock, StoreError, TokenKey, TokenRecord,
    TokenStore,
};

use crate::Error;
use crate::config::template::render;
use crate::config::{
    AuthConfig, AuthKind, Secret, ServerConfig, TokenSource, TransportKind, Variables,
};
pub(crate) use cell::Attached;
use cell::{CellSettings, Grant, LoginSetup, TokenCell};
use machine::{Client, ClientSecret};

/// Past this many cells, those no connection holds are dropped (their tokens stay in the
/// store).
const MAX_IDLE_CELLS: usize = 4096;

/// The token cells of one connector, by key, and the store they use. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AuthRegistry {
    store: Arc<dyn TokenStore>,
    /// Who shows a person the authorization URL; `None`: never sign in interactively.
    opener: Option<Arc<dyn Opener>>,
    /// Held by the browser sign-in running (one at a time; see `cell::LoginSetup`).
    sign_ins: Arc<tokio::sync::Mutex<()>>,
    /// Each cell with the `[auth]` table it was made from: a server added again with
    /// another table gets a new cell.
    cells: Arc<Mutex<Cells>>,
    /// Set once a task drops the tokens of records the store says were removed.
    watching: Arc<AtomicBool>,
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
            opener: None,
            sign_ins: Arc::default(),
            cells: Arc::default(),
            watching: Arc::default(),
        }
    }

    /// The same registry signing people in through `opener` (cells made from now on).
    pub fn with_opener(mut self, opener: Arc<dyn Opener>) -> Self {
        self.opener = Some(opener);
        self.cells = Arc::default();
        self.watching = Arc::default();
        self
    }

    /// Once, when the store tells of removed records ([`TokenStore::removals`]): a task
    /// that makes the cells of those keys drop their tokens. It ends with the store's
    /// channel, or at the first removal after the registry is gone.
    fn watch_removals(&self) {
        if self.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(mut removals) = self.store.removals() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cells = Arc::downgrade(&self.cells);
        runtime.spawn(async move {
            loop {
                let removed = removals.recv().await;
                let Some(cells) = cells.upgrade() else {
                    return;
                };
                let dropping: Vec<Arc<TokenCell>> = {
                    let cells = cells.lock().unwrap_or_else(|p| p.into_inner());
                    match &removed {
                        Ok(key) => cells.get(key).map(|(_, c)| c.clone()).into_iter().collect(),
                        // Some were missed: every cell reads the store again.
                        Err(RecvError::Lagged(_)) => {
                            cells.values().map(|(_, c)| c.clone()).collect()
                        }
                        Err(RecvError::Closed) => return,
                    }
                };
                for cell in dropping {
                    // Not waiting here: a cell may be signing someone in for minutes.
                    tokio::spawn(async move { cell.drop_token().await });
                }
            }
        });
    }

    /// Whether `server` can be signed in to interactively here.
    pub fn can_login(&self, server: &ServerConfig) -> bool {
        self.opener.is_some() && oauth_config(server).is_some_and(|a| interactive_kind(a.kind))
    }

    /// Signs a person in to `server` (from its 401 `challenge`), storing the tokens its
    /// connections then use.
    pub async fn login(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        http_client: reqwest::Client,
        challenge: Option<&str>,
    ) -> Result<(), Error> {
        let sign_in_error = |failure| Error::SignIn {
            server: server.name.clone(),
            failure,
        };
        let Some(attached) = self.authorizer(server, vars, http_client)? else {
            return Err(sign_in_error(crate::error::AuthFailure::new(
                crate::error::AuthStep::Authorization,
                "this server does not sign in with OAuth (auth kind or an Authorization header)",
            )));
        };
        attached.cell.login(challenge).await.map_err(sign_in_error)
    }

    /// The authorizer of `server`'s shared connection, if it signs in: one cell per (server,
    /// URL, principal), kept across reconnects. The client secret is rendered here (with
    /// `vars`), so a template error is a connect error.
    pub fn authorizer(
        &self,
        server: &ServerConfig,
        vars: Variables<'_>,
        http_client: reqwest::Client,
    ) -> Result<Option<Arc<Attached>>, Error> {
        let Some(auth) = oauth_config(server) else {
            return Ok(None);
        };
        self.watch_removals();
        let auth = &auth;
        let key = TokenKey {
            server: server.name.clone(),
            url: server.url.clone().unwrap_or_default(),
            principal: auth.principal.clone(),
        };
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((made_from, cell)) = cells.get(&key)
            && made_from == auth
        {
            return Ok(Some(Arc::new(Attached::new(cell.clone()))));
        }
        let rendered = |key: &str, template: &Option<Secret>| {
            template
                .as_ref()
                .map(|template| {
                    render(key, template.expose_template(), vars)
                        .map(ClientSecret)
                        .map_err(|source| Error::Template {
                            server: server.name.clone(),
                            source,
                        })
                })
                .transpose()
        };
        let secret = rendered("client_secret", &auth.client_secret)?;
        let client = auth.client_id.clone().map(|id| Client {
            id,
            secret,
            private_key_file: auth.private_key_file.clone(),
            method: auth.token_endpoint_auth_method,
        });
        let login = self
            .opener
            .clone()
            .filter(|_| interactive_kind(auth.kind))
            .map(|opener| LoginSetup {
                config: flow::LoginConfig {
                    server: server.name.clone(),
                    url: key.url.clone(),
                    client: register::ClientChoice {
                        preregistered: client.clone(),
                        client_metadata_url: auth.client_metadata_url.clone(),
                    },
                    scopes: auth.scopes.clone(),
                    redirect_port: auth.redirect_port.unwrap_or(0),
                    timeout: flow::FLOW_TIMEOUT,
                },
                opener,
                one_at_a_time: self.sign_ins.clone(),
            });
        let subject_token = match &auth.subject_token {
            Some(TokenSource::Inline(template)) => {
                let key = match auth.kind {
                    AuthKind::Enterprise => "id_token",
                    _ => "assertion",
                };
                rendered(key, &Some(template.clone()))?.map(exchange::Jwt::Inline)
            }
            Some(TokenSource::File(path)) => Some(exchange::Jwt::File(path.clone())),
            None => None,
        };
        let scopes = auth.scopes.clone();
        let grant = match (auth.kind, client, subject_token) {
            (AuthKind::ClientCredentials, Some(client), _) => {
                Grant::ClientCredentials { client, scopes }
            }
            (AuthKind::JwtBearer, client, Some(assertion)) => Grant::JwtBearer {
                // A workload need not have a client id at the authorization server.
                client: client.unwrap_or_else(Client::anonymous),
                assertion,
                scopes,
            },
            (AuthKind::Enterprise, Some(client), Some(id_token)) => {
                let idp = auth.idp.as_ref().map(|idp| -> Result<_, Error> {
                    let token_endpoint = std::sync::OnceLock::new();
                    if let Some(endpoint) = &idp.token_endpoint {
                        let _ = token_endpoint.set(endpoint.clone());
                    }
                    Ok(exchange::Idp {
                        token_endpoint,
                        issuer: idp.issuer.clone(),
                        client: match &idp.client_id {
                            Some(id) => Some(Client {
                                id: id.clone(),
                                secret: rendered("idp_client_secret", &idp.client_secret)?,
                                private_key_file: None,
                                method: None,
                            }),
                            None => None,
                        },
                    })
                });
                match idp.transpose()? {
                    Some(idp) => Grant::Enterprise {
                        client,
                        idp,
                        id_token,
                        scopes,
                    },
                    None => Grant::Stored {
                        client: Some(client),
                    },
                }
            }
            (_, client, _) => Grant::Stored { client },
        };
        let settings = CellSettings {
            key: key.clone(),
            http: http::AuthHttp::new(http_client).with_dpop(dpop::Dpop::new(auth.dpop)),
            store: self.store.clone(),
            refresh_before: auth.refresh_before,
            token_url: auth.token_url.clone(),
        };
        let mut cell = TokenCell::new(settings, grant);
        if let Some(login) = login {
            cell = cell.with_login(login);
        }
        let cell = Arc::new(cell);
        if cells.len() >= MAX_IDLE_CELLS {
            // Per-session principals come and go: keep the cells a connection still holds.
            cells.retain(|_, (_, cell)| Arc::strong_count(cell) > 1);
        }
        cells.insert(key, (auth.clone(), cell.clone()));
        Ok(Some(Arc::new(Attached::new(cell))))
    }
}

/// The `[auth]` table `server` signs in with, if it does: its own, or `kind = "auto"` for a
/// shared Streamable HTTP server without one that sends no `Authorization` header of its
/// own. A `per_session` server signs in only with a table of its own: its sessions then get
/// their own connections and tokens (`sessions/pool.rs`), while without one they may ride
/// the shared connection, which must never carry a token of the server's.
fn oauth_config(server: &ServerConfig) -> Option<AuthConfig> {
    if server.transport != TransportKind::StreamableHttp {
        return None;
    }
    if server.auth.is_none() && server.session_mode == crate::config::SessionMode::PerSession {
        return None;
    }
    let has_header = server
        .headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case("authorization"));
    let auth = match &server.auth {
        Some(auth) => auth.clone(),
        None if has_header => return None,
        None => AuthConfig::new(AuthKind::Auto),
    };
    match auth.kind {
        AuthKind::None => None,
        AuthKind::Auto if has_header => None,
        _ => Some(auth),
    }
}

/// Kinds a person signs in for.
fn interactive_kind(kind: AuthKind) -> bool {
    matches!(kind, AuthKind::Auto | AuthKind::OAuth)
}
