//! The hub: many servers behind one catalogue.
//!
//! [`Hub::start`] connects to every server at once (one slow or broken server never holds up
//! or takes down the rest), lists their tools and builds the [`Catalog`]. [`Hub::call`]
//! resolves an exposed name, checks the arguments and calls the server's own tool.
//!
//! When a server sends `notifications/tools/list_changed`, a watcher task lists its tools
//! again and swaps in a new catalogue. The swap replaces one `Arc`: callers that already
//! resolved a tool keep their snapshot and finish; subscribers get a [`HubEvent`].

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock, Weak};

use futures::future::join_all;
use rmcp::model::JsonObject;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::catalog::{Catalog, REGISTRATION_LOG, ServerTools};
use crate::config::{CatalogConfig, Config, ServerConfig, Variables};
use crate::error::Error;
use crate::upstream::{CallOutcome, Connector, Upstream, UpstreamEvent};

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
    servers: BTreeMap<String, Connected>,
    /// Servers that could not be connected or listed.
    failures: Vec<(String, Error)>,
    /// The last tool list of every connected server: the catalogue's input.
    listings: Mutex<BTreeMap<String, ServerTools>>,
    catalog: RwLock<Arc<Catalog>>,
    events: broadcast::Sender<HubEvent>,
    watchers: Mutex<Vec<AbortHandle>>,
}

struct Connected {
    config: ServerConfig,
    upstream: Upstream,
}

impl Hub {
    /// Connects to the enabled servers of `config` through `connector`.
    pub async fn connect(config: &Config, connector: &Connector) -> Result<Hub, Error> {
        let servers = config.servers.values().filter(|s| s.enabled).cloned();
        Hub::start(config.catalog.clone(), servers, |server| async move {
            let variables = Variables {
                connection: None,
                config: Some(&config.variables),
            };
            connector.connect(&server, variables).await
        })
        .await
    }

    /// Connects to `servers` with `connect` (all at once), lists their tools and builds the
    /// catalogue. Servers that fail are kept in [`Hub::failures`]; the only error is a
    /// catalogue that cannot be built (`collisions = "error"`).
    pub async fn start<F, Fut>(
        catalog_config: CatalogConfig,
        servers: impl IntoIterator<Item = ServerConfig>,
        connect: F,
    ) -> Result<Hub, Error>
    where
        F: Fn(ServerConfig) -> Fut,
        Fut: Future<Output = Result<Upstream, Error>>,
    {
        let attempts = servers.into_iter().map(|config| {
            let upstream = connect(config.clone());
            async move {
                let upstream = match upstream.await {
                    Ok(upstream) => upstream,
                    Err(error) => return Err((config.name, error)),
                };
                match upstream.list_tools().await {
                    Ok(tools) => Ok((config, upstream, tools)),
                    Err(error) => {
                        upstream.close().await;
                        Err((config.name, error))
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
                    connected.insert(config.name.clone(), Connected { config, upstream });
                }
                Err((server, error)) => {
                    tracing::warn!(target: REGISTRATION_LOG, server = %server, class = %error.class(), "{error}");
                    failures.push((server, error));
                }
            }
        }
        let listing_values: Vec<ServerTools> = listings.values().cloned().collect();
        let catalog = match Catalog::build(&catalog_config, &listing_values) {
            Ok(catalog) => catalog,
            Err(error) => {
                join_all(connected.values().map(|c| c.upstream.close())).await;
                return Err(error);
            }
        };
        catalog.warn_new_diagnostics(None);

        let (events, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            catalog_config,
            servers: connected,
            failures,
            listings: Mutex::new(listings),
            catalog: RwLock::new(Arc::new(catalog)),
            events,
            watchers: Mutex::new(Vec::new()),
        });
        let watchers = inner
            .servers
            .iter()
            .map(|(name, c)| {
                let task = watch(Arc::downgrade(&inner), name.clone(), c.upstream.subscribe());
                tokio::spawn(task).abort_handle()
            })
            .collect();
        *lock(&inner.watchers) = watchers;
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

    /// Calls the tool exposed as `name`. Arguments are checked against its schema before
    /// anything is sent; `deadline` defaults to now + the server's `tool_call_timeout`.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Instant>,
    ) -> Result<CallOutcome, Error> {
        let tool = self.catalog().resolve(name)?;
        let arguments = tool.check_arguments(arguments)?;
        let Some(server) = self.inner.servers.get(&tool.server) else {
            return Err(Error::Closed {
                server: tool.server.clone(),
                reason: Some("the server is no longer connected".to_string()),
            });
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + server.config.tool_call_timeout);
        server
            .upstream
            .call_tool(&tool.original, arguments, deadline)
            .await
    }

    /// Stops watching and closes every connection.
    pub async fn close(&self) {
        for watcher in lock(&self.inner.watchers).drain(..) {
            watcher.abort();
        }
        join_all(self.inner.servers.values().map(|c| c.upstream.close())).await;
    }
}

impl Inner {
    /// Lists `server`'s tools again and swaps in a catalogue built with them. On failure the
    /// old catalogue stays.
    async fn relist(&self, server: &str) {
        let Some(connected) = self.servers.get(server) else {
            return;
        };
        let tools = match connected.upstream.list_tools().await {
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
            listings.insert(
                server.to_string(),
                ServerTools::new(&connected.config, tools),
            );
            let listings: Vec<ServerTools> = listings.values().cloned().collect();
            Catalog::build(&self.catalog_config, &listings).map(|catalog| {
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
