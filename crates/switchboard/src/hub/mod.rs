//! The hub: many servers behind one catalogue.
//!
//! [`Hub::builder`] (`builder.rs`) starts a hub. Every enabled server is registered at once
//! (connect, then list tools, each within its own timeouts), so one slow or broken server
//! never holds up or takes down the rest. What happens to a server that fails is its `on_server_registration_error` policy:
//! `fail_fast` ends the start with an error (connections already made are closed, connects
//! still running are dropped); the skip policies log it (WARN or DEBUG) and keep it in the
//! health view, and unless `retry_skipped_servers = false` a background task retries it
//! with the server's reconnect backoff until it comes up and joins the catalogue.
//!
//! [`Hub::call`] resolves an exposed name, checks the arguments and calls the server's own
//! tool. When a server sends `notifications/tools/list_changed` (or its shared connection
//! was re-established), a watcher task lists its tools again and swaps in a new catalogue.
//! Every swap replaces one `Arc`: callers that already resolved a tool keep their snapshot
//! and finish; subscribers get a [`HubEvent`]. A server taken out (`remove_server`) is
//! drained: calls in flight finish before its connections close.
//!
//! Started with a [`Config`], a hub also registers the servers its `[discovery]` registry
//! lists (`sources.rs`: asked at start under the same policy, then followed: new servers
//! join, removed ones drain, a failing registry is asked again with backoff). Every call
//! passes the builder's call layers (`calls.rs`).
//!
//! Connections are the sessions layer's business (see `sessions/`): each server has a shared
//! link that reconnects by itself, and `per_session` servers a pool of per-session links that
//! a reaper task trims every `reaper_interval`. [`Hub::health`] is the snapshot of it all.

mod builder;
mod calls;
mod health;
mod registration;
mod sources;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio::time::Instant;

pub use builder::{ConnectEvent, HubBuilder};
pub use calls::{CALLS_LOG, CallInfo, CallLayer, TraceCalls};
pub use health::{ErrorReport, Health, Overall, ServerHealth, ServerState, SourceHealth};
pub use sources::{Discover, Discovered, Source};

use crate::JsonObject;
use crate::catalog::{Catalog, ServerTools};
use crate::config::{
    CatalogConfig, Config, RegistrationConfig, RegistrationPolicy, ServerConfig, SessionsConfig,
};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::sessions::{Dial, ServerClients, Session};
use crate::sync::lock;
use crate::upstream::{CallOutcome, UpstreamEvent};
use health::Registration;
use registration::{Listed, Record, log_skip, policy, register};

/// The engine-wide settings a hub runs with (from [`Config`]).
#[derive(Debug, Clone, Default)]
pub struct HubSettings {
    pub catalog: CatalogConfig,
    pub sessions: SessionsConfig,
    pub registration: RegistrationConfig,
}

impl From<&Config> for HubSettings {
    fn from(config: &Config) -> Self {
        HubSettings {
            catalog: config.catalog.clone(),
            sessions: config.sessions.clone(),
            registration: config.registration.clone(),
        }
    }
}

/// Something that changed in the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A server's tools changed, or a server joined or left: a new catalogue is in place.
    CatalogChanged { server: String },
}

/// What happens to each server while the hub starts, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    Connecting {
        server: &'a str,
    },
    Ready {
        server: &'a str,
        tools: usize,
        elapsed: Duration,
    },
    Failed {
        server: &'a str,
        error: &'a Error,
        elapsed: Duration,
    },
    Disabled {
        server: &'a str,
    },
    /// Asking a discovery source for its servers.
    Discovering {
        source: &'a str,
    },
    Discovered {
        source: &'a str,
        servers: usize,
        elapsed: Duration,
    },
    DiscoveryFailed {
        source: &'a str,
        error: &'a Error,
        elapsed: Duration,
    },
}

/// Many upstream servers, one catalogue. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

/// What [`HubBuilder::start`] hands the hub.
struct Parts {
    settings: HubSettings,
    servers: Vec<ServerConfig>,
    source: Option<Source>,
    dial: Dial,
    layers: Vec<Arc<dyn CallLayer>>,
}

struct Inner {
    settings: HubSettings,
    dial: Dial,
    /// Every call passes these (see `calls.rs`).
    layers: Vec<Arc<dyn CallLayer>>,
    /// Registered servers' connections. Calls clone the `Arc` out, so a removed server's
    /// clients live until its last call returns.
    servers: RwLock<BTreeMap<String, Arc<ServerClients>>>,
    /// Every server the hub knows (registered, failed or disabled), for health.
    records: Mutex<BTreeMap<String, Record>>,
    /// Servers that failed to register at start, with why.
    start_failures: Vec<(String, Error)>,
    /// The last tool list of every registered server: the catalogue's input.
    listings: Mutex<BTreeMap<String, ServerTools>>,
    catalog: RwLock<Arc<Catalog>>,
    events: broadcast::Sender<HubEvent>,
    /// Per server name, bumped when the name is removed (see `registration.rs`). Written
    /// only while holding the `servers` write lock.
    epochs: Mutex<BTreeMap<String, u64>>,
    /// Discovery sources, for health.
    sources: Mutex<BTreeMap<String, SourceHealth>>,
    /// Discovered servers' display names (the registry's), where they differ from the name.
    display_names: Mutex<BTreeMap<String, String>>,
    /// Watchers, retries, sources and the reaper, by what they do (`watch:NAME`,
    /// `retry:NAME`, `source:NAME`, `reaper`).
    tasks: Mutex<BTreeMap<String, AbortHandle>>,
    closed: AtomicBool,
}

impl Hub {
    /// Registers every server of `parts` and builds the catalogue; see
    /// [`HubBuilder::start`].
    async fn start_parts(
        parts: Parts,
        progress: &(dyn Fn(Progress<'_>) + Sync),
    ) -> Result<Hub, Error> {
        let Parts {
            settings,
            mut servers,
            source,
            dial,
            layers,
        } = parts;
        let policy_default = settings.registration.on_error;
        let mut records = BTreeMap::new();
        let mut failed = Vec::new();
        let mut start_failures = Vec::new();
        let source_run = match source {
            Some(source) => {
                let mut first = sources::first_answer(source, policy_default, progress).await?;
                // Unusable entries are the source's business (its health), never records:
                // their display names may equal a configured or discovered server's name.
                let unusable = std::mem::take(&mut first.unusable);
                let reports = sources::reports(&unusable);
                start_failures.extend(unusable);
                let configured: BTreeSet<String> = servers.iter().map(|s| s.name.clone()).collect();
                first.known = sources::without_configured(first.known, &configured);
                servers.extend(first.known.values().cloned());
                Some((first, reports, configured))
            }
            None => None,
        };

        let mut attempts = FuturesUnordered::new();
        for config in servers {
            let config = Arc::new(config);
            if config.enabled {
                progress(Progress::Connecting {
                    server: &config.name,
                });
                let started = Instant::now();
                let attempt = register(dial.clone(), config.clone());
                attempts.push(async move { (config, attempt.await, started.elapsed()) });
            } else {
                progress(Progress::Disabled {
                    server: &config.name,
                });
                let record = Record::new(config.clone(), Registration::Disabled);
                records.insert(config.name.clone(), record);
            }
        }

        let mut registered: Vec<(Arc<ServerConfig>, Listed)> = Vec::new();
        while let Some((config, result, elapsed)) = attempts.next().await {
            match result {
                Ok(listed) => {
                    progress(Progress::Ready {
                        server: &config.name,
                        tools: listed.tools.len(),
                        elapsed,
                    });
                    registered.push((config, listed));
                }
                Err(error) => {
                    progress(Progress::Failed {
                        server: &config.name,
                        error: &error,
                        elapsed,
                    });
                    let policy = policy(&settings.registration, &config);
                    if policy == RegistrationPolicy::FailFast {
                        drop(attempts); // connects still running are dropped, and end
                        join_all(registered.iter().map(|(_, listed)| listed.upstream.close()))
                            .await;
                        return Err(Error::Registration {
                            server: config.name.clone(),
                            source: Box::new(error),
                        });
                    }
                    log_skip(&config.name, policy, &error);
                    failed.push((config, error));
                }
            }
        }

        let mut listings = BTreeMap::new();
        for (config, listed) in &mut registered {
            let tools = std::mem::take(&mut listed.tools);
            listings.insert(config.name.clone(), ServerTools::new(config, tools));
        }
        let catalog = match Catalog::build(&settings.catalog, listings.values()) {
            Ok(catalog) => catalog,
            Err(error) => {
                join_all(registered.iter().map(|(_, listed)| listed.upstream.close())).await;
                return Err(error);
            }
        };
        catalog.warn_new_diagnostics(None);

        let now = SystemTime::now();
        let mut connected = BTreeMap::new();
        let mut seen = BTreeMap::new();
        for (config, listed) in registered {
            let mut record = Record::new(config.clone(), Registration::Ready);
            record.last_success = Some(now);
            records.insert(config.name.clone(), record);
            seen.insert(config.name.clone(), listed.seen);
            let clients = ServerClients::new(config.clone(), dial.clone(), listed.upstream);
            connected.insert(config.name.clone(), Arc::new(clients));
        }
        let retrying = settings.registration.retry_skipped;
        for (config, error) in failed {
            let mut record = Record::new(config.clone(), Registration::Failed { retrying });
            record.last_error = Some(ErrorReport::now(&error));
            records.insert(config.name.clone(), record);
            start_failures.push((config.name.clone(), error));
        }
        start_failures.sort_by(|a, b| a.0.cmp(&b.0));

        let (events, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            settings,
            dial,
            layers,
            servers: RwLock::new(connected),
            records: Mutex::new(records),
            start_failures,
            listings: Mutex::new(listings),
            catalog: RwLock::new(Arc::new(catalog)),
            events,
            epochs: Mutex::new(BTreeMap::new()),
            sources: Mutex::new(BTreeMap::new()),
            display_names: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
        });
        for (name, seen) in seen {
            inner.watch(&name, seen);
        }
        let retries: Vec<Arc<ServerConfig>> = lock(&inner.records)
            .values()
            .filter(|r| r.registration == Registration::Failed { retrying: true })
            .map(|r| r.config.clone())
            .collect();
        for config in retries {
            inner.retry_later(config, 0);
        }
        if inner.servers().values().any(|c| c.pool().is_some()) {
            inner.ensure_reaper();
        }
        if let Some((first, reports, configured)) = source_run {
            inner.follow_source(first, reports, configured);
        }
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

    /// Servers that could not be registered when the hub started, with why, in name order.
    /// [`Hub::health`] says where every server stands now.
    pub fn failures(&self) -> &[(String, Error)] {
        &self.inner.start_failures
    }

    /// Names of the registered servers.
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers().keys().cloned().collect()
    }

    /// Catalogue changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// Calls the tool exposed as `name` over the shared connections. Arguments are checked
    /// against its schema before anything is sent; `deadline` defaults to now + the server's
    /// `tool_call_timeout`, and a call whose deadline has passed is not sent.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
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
        deadline: Option<Deadline>,
    ) -> Result<CallOutcome, Error> {
        let tool = self.catalog().resolve(name)?;
        let arguments = tool.check_arguments(arguments)?;
        if self.inner.is_closed() {
            return Err(Error::Closed {
                server: tool.server.clone(),
                reason: Some("the hub is closed".to_string()),
            });
        }
        let Some(clients) = self.inner.clients(&tool.server) else {
            return Err(Error::Closed {
                server: tool.server.clone(),
                reason: Some("the server is no longer connected".to_string()),
            });
        };
        let server = clients.shared().server();
        let deadline = deadline.map_or_else(
            || Instant::now() + server.tool_call_timeout,
            Deadline::tokio,
        );
        let repeatable = tool.repeatable();
        let info = CallInfo {
            name,
            server: &tool.server,
            tool: &tool.original,
            session: session.map(|s| s.id.as_str()),
        };
        for layer in &self.inner.layers {
            layer.before(&info)?;
        }
        let started = Instant::now();
        let result = clients
            .call(session, &tool.original, arguments, repeatable, deadline)
            .await;
        let elapsed = started.elapsed();
        for layer in self.inner.layers.iter().rev() {
            layer.after(&info, &result, elapsed);
        }
        result
    }

    /// Where every server stands, and the one word for the whole hub.
    pub fn health(&self) -> Health {
        let sources = lock(&self.inner.sources).values().cloned().collect();
        self.inner.health(sources)
    }

    /// Per-session connections open for `server` (0 for shared servers).
    pub fn session_count(&self, server: &str) -> usize {
        self.inner
            .clients(server)
            .and_then(|c| c.pool().map(|p| p.len()))
            .unwrap_or(0)
    }

    /// Closes per-session connections idle for at least `max_age` now; returns how many.
    pub async fn cleanup_sessions(&self, max_age: Duration) -> usize {
        self.inner.cleanup_sessions(Some(max_age)).await
    }

    /// Registers one more server (as at start, under its policy, but never failing: a
    /// server that does not come up is recorded and, if enabled, retried).
    pub async fn add_server(&self, config: ServerConfig) {
        self.inner.add(config).await;
    }

    /// Takes `server` out: no new calls reach it, the catalogue is rebuilt without it, and
    /// its connections close once the calls in flight have finished (or after `drain`).
    pub async fn remove_server(&self, server: &str, drain: Duration) {
        self.inner.remove(server, drain).await;
    }

    /// Stops watching and retrying and closes every connection.
    pub async fn close(&self) {
        let all: Vec<Arc<ServerClients>> = {
            // Under the servers lock, so no server can join after this (see `join`).
            let mut servers = self
                .inner
                .servers
                .write()
                .unwrap_or_else(|e| e.into_inner());
            self.inner.closed.store(true, Ordering::Release);
            std::mem::take(&mut *servers).into_values().collect()
        };
        for (_, task) in std::mem::take(&mut *lock(&self.inner.tasks)) {
            task.abort();
        }
        join_all(all.iter().map(|c| c.close())).await;
    }
}

impl Inner {
    /// A read view of the registered servers; never held across an await.
    fn servers(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ServerClients>>> {
        self.servers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn clients(&self, server: &str) -> Option<Arc<ServerClients>> {
        self.servers().get(server).cloned()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn health(&self, sources: Vec<SourceHealth>) -> Health {
        let catalog = self
            .catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut tools: BTreeMap<&str, usize> = BTreeMap::new();
        for tool in catalog.tools() {
            *tools.entry(tool.server.as_str()).or_default() += 1;
        }
        let links = self
            .servers()
            .iter()
            .map(|(name, c)| (name.clone(), c.shared().status()))
            .collect::<BTreeMap<_, _>>();
        let display_names = lock(&self.display_names).clone();
        let servers: Vec<ServerHealth> = lock(&self.records)
            .iter()
            .map(|(name, record)| {
                let link = links.get(name);
                let mut last_error = record.last_error.clone();
                let mut last_success = record.last_success;
                if let Some(link) = link {
                    last_error = latest(last_error, link.last_error.clone());
                    last_success = link.last_success.max(last_success);
                }
                ServerHealth {
                    name: name.clone(),
                    display_name: display_names.get(name).filter(|d| *d != name).cloned(),
                    state: health::server_state(record.registration, last_error.as_ref(), link),
                    tools: tools.get(name.as_str()).copied().unwrap_or(0),
                    last_error,
                    last_success,
                }
            })
            .collect();
        Health {
            overall: health::overall(&servers, &sources),
            servers,
            sources,
        }
    }

    /// Closes idle per-session connections: idle for `max_age`, or for each server's own
    /// `session_idle_timeout` when `None`.
    async fn cleanup_sessions(&self, max_age: Option<Duration>) -> usize {
        let all: Vec<Arc<ServerClients>> = self.servers().values().cloned().collect();
        let cleanups = all.iter().map(|c| {
            let age = max_age.unwrap_or(c.shared().server().session_idle_timeout);
            c.cleanup(age)
        });
        join_all(cleanups).await.into_iter().sum()
    }

    /// Builds a catalogue from the listings after `change` and swaps it in; on error the
    /// old catalogue stays and nothing is changed. `change` returns false to change nothing
    /// (it runs under the listings lock, so it can check what still holds).
    fn rebuild(
        &self,
        server: &str,
        change: impl FnOnce(&mut BTreeMap<String, ServerTools>) -> bool,
    ) -> Result<(), Error> {
        // Held while building so two servers' rebuilds cannot lose each other's update.
        let mut listings = lock(&self.listings);
        let mut changed = listings.clone();
        if !change(&mut changed) {
            return Ok(());
        }
        let catalog = Catalog::build(&self.settings.catalog, changed.values())?;
        *listings = changed;
        let mut current = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        catalog.warn_new_diagnostics(Some(&current));
        *current = Arc::new(catalog);
        drop(current);
        let _ = self.events.send(HubEvent::CatalogChanged {
            server: server.to_string(),
        });
        Ok(())
    }

    /// Lists `server`'s tools again and swaps in a catalogue built with them. On failure the
    /// old catalogue stays.
    async fn relist(&self, server: &str) {
        let Some(clients) = self.clients(server) else {
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
        let listing = ServerTools::new(link.server(), tools);
        match self.rebuild(server, |listings| {
            // Only if the server is still the one listed (not removed or replaced meanwhile).
            let current = self.servers().get(server).cloned();
            if !current.is_some_and(|c| Arc::ptr_eq(&c, &clients)) {
                return false;
            }
            listings.insert(server.to_string(), listing);
            true
        }) {
            Ok(()) => tracing::info!(server, "tools changed; catalogue updated"),
            Err(error) => {
                tracing::error!(server, "tools changed but the catalogue was kept: {error}")
            }
        }
    }

    /// Starts the task that relists `server` when its tools change. `seen` is the server's
    /// change count before its tools were listed: if it moved since, the task lists at once
    /// (the notification came before anyone was subscribed).
    fn watch(self: &Arc<Self>, server: &str, seen: u64) {
        let Some(clients) = self.clients(server) else {
            return;
        };
        let link = clients.shared();
        let events = link.subscribe();
        let missed = link.tool_changes().is_some_and(|now| now != seen);
        let task = watch(Arc::downgrade(self), server.to_string(), events, missed);
        self.keep_task(format!("watch:{server}"), tokio::spawn(task).abort_handle());
    }

    /// Keeps a task's handle under `key` (aborting the task it replaces), so `remove` and
    /// `close` can stop it.
    fn keep_task(&self, key: String, handle: AbortHandle) {
        if self.is_closed() {
            handle.abort();
            return;
        }
        if let Some(old) = lock(&self.tasks).insert(key, handle) {
            old.abort();
        }
    }

    /// Called by a task about to finish: forgets its own handle, but not a newer task's
    /// kept under the same key.
    fn forget_own_task(&self, key: &str) {
        let mut tasks = lock(&self.tasks);
        if tasks.get(key).map(AbortHandle::id) == tokio::task::try_id() {
            tasks.remove(key);
        }
    }

    /// Starts the reaper of idle per-session connections, unless it runs already.
    fn ensure_reaper(self: &Arc<Self>) {
        if lock(&self.tasks).contains_key("reaper") {
            return;
        }
        let reaper = reap(Arc::downgrade(self), self.settings.sessions.reaper_interval);
        self.keep_task("reaper".into(), tokio::spawn(reaper).abort_handle());
    }
}

/// The later of two error reports.
fn latest(a: Option<ErrorReport>, b: Option<ErrorReport>) -> Option<ErrorReport> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at >= a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Rebuilds the catalogue whenever `server` says its tools changed (and at once when a
/// change was `missed` before subscribing); a burst of notifications is one rebuild. Ends
/// when the hub or the upstream is gone.
async fn watch(
    inner: Weak<Inner>,
    server: String,
    mut events: broadcast::Receiver<UpstreamEvent>,
    mut missed: bool,
) {
    use broadcast::error::{RecvError, TryRecvError};
    loop {
        if !std::mem::take(&mut missed) {
            match events.recv().await {
                Ok(UpstreamEvent::ToolsChanged) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
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
