//! The hub: many servers behind one catalogue.
//!
//! [`Hub::start`] connects to every server at once (one slow or broken server never holds up
//! or takes down the rest), lists their tools and builds the [`Catalog`]. [`Hub::call`]
//! resolves an exposed name, checks the arguments and calls the server's own tool.
//!
//! When a server sends `notifications/tools/list_changed` (or its shared connection was
//! re-established), a watcher task lists its tools again and swaps in a new catalogue. The
//! swap replaces one `Arc`: callers that already resolved a tool keep their snapshot and
//! finish; subscribers get a [`HubEvent`].
//!
//! Connections are the sessions layer's business (see `sessions/`): each server has a shared
//! link that reconnects by itself, and `per_session` servers a pool of per-session links that
//! a reaper task trims every `reaper_interval`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures::future::join_all;
use rmcp::model::JsonObject;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::catalog::{Catalog, REGISTRATION_LOG, ServerTools};
use crate::config::{CatalogConfig, Config, ServerConfig, SessionMode, SessionsConfig, Variables};
use crate::error::Error;
use crate::sessions::{Dial, LinkStatus, ServerClients, Session};
use crate::sync::lock;
use crate::upstream::{CallOutcome, Connector, UpstreamEvent};

/// The engine-wide settings a hub runs with (from [`Config`]).
#[derive(Debug, Clone, Default)]
pub struct HubSettings {
    pub catalog: CatalogConfig,
    pub sessions: SessionsConfig,
}

impl From<&Config> for HubSettings {
    fn from(config: &Config) -> Self {
        HubSettings {
            catalog: config.catalog.clone(),
            sessions: config.sessions.clone(),
        }
    }
}

/// Something that changed in the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A server's tools changed and a new catalogue is in place.
    CatalogChanged { server: String },
}

/// Many upstream servers, one catalogue. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    catalog_config: CatalogConfig,
    servers: BTreeMap<String, ServerClients>,
    /// Servers that could not be connected or listed.
    failures: Vec<(String, Error)>,
    /// The last tool list of every connected server: the catalogue's input.
    listings: Mutex<BTreeMap<String, ServerTools>>,
    catalog: RwLock<Arc<Catalog>>,
    events: broadcast::Sender<HubEvent>,
    watchers: Mutex<Vec<AbortHandle>>,
}

impl Hub {
    /// Connects to the enabled servers of `config` through `connector`.
    pub async fn connect(config: &Config, connector: &Connector) -> Result<Hub, Error> {
        let servers = config.servers.values().filter(|s| s.enabled).cloned();
        Hub::start(HubSettings::from(config), servers, dial(config, connector)).await
    }

    /// Connects to `servers` with `dial` (all at once), lists their tools and builds the
    /// catalogue. Servers that fail are kept in [`Hub::failures`]; the only error is a
    /// catalogue that cannot be built (`collisions = "error"`).
    pub async fn start(
        settings: HubSettings,
        servers: impl IntoIterator<Item = ServerConfig>,
        dial: Dial,
    ) -> Result<Hub, Error> {
        let attempts = servers.into_iter().map(|config| {
            let config = Arc::new(config);
            let upstream = dial(config.clone(), None);
            async move {
                let upstream = match upstream.await {
                    Ok(upstream) => upstream,
                    Err(error) => return Err((config.name.clone(), error)),
                };
                match upstream.list_tools().await {
                    Ok(tools) => Ok((config, upstream, tools)),
                    Err(error) => {
                        upstream.close().await;
                        Err((config.name.clone(), error))
                    }
                }
            }
        });
        let mut connected = BTreeMap::new();
        let mut listings = BTreeMap::new();
        let mut failures = Vec::new();
        for result in join_all(attempts).await {
            match result {
                Ok((config, upstream, tools)) => {
                    listings.insert(config.name.clone(), ServerTools::new(&config, tools));
                    let clients = ServerClients::new(config.clone(), dial.clone(), upstream);
                    connected.insert(config.name.clone(), clients);
                }
                Err((server, error)) => {
                    tracing::warn!(target: REGISTRATION_LOG, server = %server, class = %error.class(), "{error}");
                    failures.push((server, error));
                }
            }
        }
        let catalog = match Catalog::build(&settings.catalog, listings.values()) {
            Ok(catalog) => catalog,
            Err(error) => {
                join_all(connected.values().map(|c| c.close())).await;
                return Err(error);
            }
        };
        catalog.warn_new_diagnostics(None);

        let (events, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            catalog_config: settings.catalog,
            servers: connected,
            failures,
            listings: Mutex::new(listings),
            catalog: RwLock::new(Arc::new(catalog)),
            events,
            watchers: Mutex::new(Vec::new()),
        });
        let mut tasks: Vec<AbortHandle> = inner
            .servers
            .iter()
            .map(|(name, c)| {
                let task = watch(Arc::downgrade(&inner), name.clone(), c.shared().subscribe());
                tokio::spawn(task).abort_handle()
            })
            .collect();
        let per_session = inner
            .servers
            .values()
            .any(|c| c.shared().server().session_mode == SessionMode::PerSession);
        if per_session {
            let reaper = reap(Arc::downgrade(&inner), settings.sessions.reaper_interval);
            tasks.push(tokio::spawn(reaper).abort_handle());
        }
        *lock(&inner.watchers) = tasks;
        Ok(Hub { inner })
    }

    /// The current catalogue: a snapshot that stays valid while held.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Servers that could not be connected or listed, with why.
    pub fn failures(&self) -> &[(String, Error)] {
        &self.inner.failures
    }

    /// Names of the connected servers.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.inner.servers.keys().map(String::as_str)
    }

    /// Catalogue changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// Calls the tool exposed as `name` over the shared connections. Arguments are checked
    /// against its schema before anything is sent; `deadline` defaults to now + the server's
    /// `tool_call_timeout`.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Instant>,
    ) -> Result<CallOutcome, Error> {
        self.call_in(None, name, arguments, deadline).await
    }

    /// [`Hub::call`] on behalf of `session`: `per_session` servers use the session's own
    /// connection (made with its variables); shared servers the shared one.
    pub async fn call_in(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Instant>,
    ) -> Result<CallOutcome, Error> {
        let tool = self.catalog().resolve(name)?;
        let arguments = tool.check_arguments(arguments)?;
        let Some(clients) = self.inner.servers.get(&tool.server) else {
            return Err(Error::Closed {
                server: tool.server.clone(),
                reason: Some("the server is no longer connected".to_string()),
            });
        };
        let server = clients.shared().server();
        let deadline = deadline.unwrap_or_else(|| Instant::now() + server.tool_call_timeout);
        let repeatable = tool
            .annotations
            .as_ref()
            .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));
        clients
            .call(session, &tool.original, arguments, repeatable, deadline)
            .await
    }

    /// The state of each connected server's shared connection.
    pub fn link_status(&self) -> BTreeMap<String, LinkStatus> {
        self.inner
            .servers
            .iter()
            .map(|(name, c)| (name.clone(), c.shared().status()))
            .collect()
    }

    /// Per-session connections open for `server` (0 for shared servers).
    pub fn session_count(&self, server: &str) -> usize {
        self.inner
            .servers
            .get(server)
            .and_then(|c| c.pool())
            .map_or(0, |p| p.len())
    }

    /// Closes per-session connections idle for at least `max_age` now; returns how many.
    pub async fn cleanup_sessions(&self, max_age: Duration) -> usize {
        self.inner.cleanup_sessions(Some(max_age)).await
    }

    /// Stops watching and closes every connection.
    pub async fn close(&self) {
        for watcher in lock(&self.inner.watchers).drain(..) {
            watcher.abort();
        }
        join_all(self.inner.servers.values().map(|c| c.close())).await;
    }
}

impl Inner {
    /// Closes idle per-session connections: idle for `max_age`, or for each server's own
    /// `session_idle_timeout` when `None`.
    async fn cleanup_sessions(&self, max_age: Option<Duration>) -> usize {
        let cleanups = self.servers.values().map(|c| {
            let age = max_age.unwrap_or(c.shared().server().session_idle_timeout);
            c.cleanup(age)
        });
        join_all(cleanups).await.into_iter().sum()
    }

    /// Lists `server`'s tools again and swaps in a catalogue built with them. On failure the
    /// old catalogue stays.
    async fn relist(&self, server: &str) {
        let Some(clients) = self.servers.get(server) else {
            return;
        };
        let link = clients.shared();
        let listed = match link
            .upstream(Instant::now() + link.server().connect_timeout)
            .await
        {
            Ok((upstream, _)) => upstream.list_tools().await,
            Err(error) => Err(error),
        };
        let tools = match listed {
            Ok(tools) => tools,
            Err(error) => {
                tracing::warn!(
                    server,
                    "tools changed but could not be listed again: {error}"
                );
                return;
            }
        };
        let rebuilt = {
            // Held while building so two servers' rebuilds cannot lose each other's update.
            let mut listings = lock(&self.listings);
            listings.insert(server.to_string(), ServerTools::new(link.server(), tools));
            Catalog::build(&self.catalog_config, listings.values()).map(|catalog| {
                let mut current = self.catalog.write().unwrap_or_else(|e| e.into_inner());
                catalog.warn_new_diagnostics(Some(&current));
                *current = Arc::new(catalog);
            })
        };
        match rebuilt {
            Ok(()) => {
                tracing::info!(server, "tools changed; catalogue updated");
                let _ = self.events.send(HubEvent::CatalogChanged {
                    server: server.to_string(),
                });
            }
            Err(error) => {
                tracing::error!(server, "tools changed but the catalogue was kept: {error}")
            }
        }
    }
}

/// Rebuilds the catalogue whenever `server` says its tools changed; a burst of
/// notifications is one rebuild. Ends when the hub or the upstream is gone.
async fn watch(inner: Weak<Inner>, server: String, mut events: broadcast::Receiver<UpstreamEvent>) {
    use broadcast::error::{RecvError, TryRecvError};
    loop {
        match events.recv().await {
            Ok(UpstreamEvent::ToolsChanged) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        loop {
            match events.try_recv() {
                Ok(_) | Err(TryRecvError::Lagged(_)) => continue,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.relist(&server).await;
    }
}

/// Closes idle per-session connections every `interval`. Ends with the hub.
async fn reap(inner: Weak<Inner>, interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let closed = inner.cleanup_sessions(None).await;
        if closed > 0 {
            tracing::debug!(closed, "closed idle sessions");
        }
    }
}

/// A [`Dial`] over `connector` with the config's `[variables]`.
pub fn dial(config: &Config, connector: &Connector) -> Dial {
    let connector = connector.clone();
    let variables = Arc::new(config.variables.clone());
    Arc::new(move |server, session_variables| {
        let connector = connector.clone();
        let variables = variables.clone();
        Box::pin(async move {
            let vars = Variables {
                connection: session_variables.as_deref(),
                config: Some(&variables),
            };
            connector.connect(&server, vars).await
        })
    })
}
