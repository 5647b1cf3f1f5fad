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
//!
//! All the hub's changing state is behind one lock, never held across an `.await` and
//! never over I/O; background tasks run under cancellation tokens and a task tracker
//! (`state.rs` says how, and which invariants that keeps). [`Hub::close`] stops every task
//! and closes every connection within a deadline; dropping the last [`Hub`] handle without
//! it kills stdio servers' process groups at once and closes the rest in the background.

mod background;
mod builder;
mod calls;
mod health;
mod offers;
mod private;
mod registration;
mod sources;
mod state;
mod subscriptions;
mod uris;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::future::join_all;
use futures::stream::FuturesUnordered;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use builder::{ConnectEvent, HubBuilder};
pub use calls::{CALLS_LOG, CallInfo, CallLayer, RequestInfo, TraceCalls};
pub use health::{ErrorReport, Health, Overall, ServerHealth, ServerState, SourceHealth};
pub use offers::Listing;
pub use sources::{Discover, Source};
pub use subscriptions::SubscribedResource;

use crate::catalog::{Catalog, ServerTools};
use crate::config::{
    CatalogConfig, Config, RegistrationConfig, RegistrationPolicy, ServerConfig, SessionsConfig,
};
use crate::error::Error;
use crate::interaction::InputHandler;
use crate::sessions::{Dial, ServerClients, SessionClose};
use crate::spans::MetaInjector;
use health::Registration;
use registration::{Listed, Record, log_skip, policy, register};
use state::{Inner, Listings, State};

/// How long [`Hub::close`] waits for background tasks and connections to close before it
/// kills what is left (stdio process groups) and returns.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// The engine-wide settings a hub runs with (from [`Config`]).
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub catalog: CatalogConfig,
    pub sessions: SessionsConfig,
    pub registration: RegistrationConfig,
    /// Whether the catalogue follows servers' tool changes. Classic servers send
    /// `list_changed` unasked; 2026-07-28 servers only on a `subscriptions/listen` stream,
    /// which the hub opens on each server's shared connection when this is on (default).
    /// A one-shot user (the CLI) turns it off and saves the round trip.
    pub follow_changes: bool,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            catalog: CatalogConfig::default(),
            sessions: SessionsConfig::default(),
            registration: RegistrationConfig::default(),
            follow_changes: true,
        }
    }
}

impl From<&Config> for HubSettings {
    fn from(config: &Config) -> Self {
        HubSettings {
            catalog: config.catalog.clone(),
            sessions: config.sessions.clone(),
            registration: config.registration.clone(),
            follow_changes: true,
        }
    }
}

/// Something that changed in the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubEvent {
    /// A server's tools changed, or a server joined or left: a new catalogue is in place.
    CatalogChanged { server: String },
    /// A server said its resources or resource templates changed (or it reconnected,
    /// joined or left); [`Hub::resources`] and [`Hub::resource_templates`] give the new
    /// ones.
    ResourcesChanged { server: String },
    /// A server said its prompts changed (or it reconnected, joined or left);
    /// [`Hub::prompts`] gives the new ones.
    PromptsChanged { server: String },
    /// A resource subscribed to over the server's shared connection changed
    /// (`notifications/resources/updated`); `uri` is the server's own URI, as in the
    /// [`SubscribedResource`] that [`Hub::subscribe_resource_in`] returned.
    ResourceUpdated { server: String, uri: String },
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
///
/// Call [`Hub::close`] when done. Dropping the last handle without it still closes the
/// hub: background tasks stop, stdio servers' process groups are killed at once, and the
/// other connections are closed in the background (on the runtime the drop runs in, if
/// any).
#[derive(Clone)]
pub struct Hub {
    owner: Arc<Owner>,
}

/// Held by [`Hub`] handles only (background tasks hold a `Weak<Inner>`): its drop is the
/// last handle going away.
struct Owner {
    inner: Arc<Inner>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let servers = self.inner.shut();
        self.inner.tasks.close();
        if servers.is_empty() {
            return;
        }
        tracing::debug!(
            servers = servers.len(),
            "the last hub handle was dropped without close(): closing"
        );
        // Whatever happens to the rest, no server process outlives the hub.
        for clients in &servers {
            clients.kill();
        }
        // Politely end the other sessions (e.g. an HTTP DELETE), if a runtime can run it;
        // if not (or it shuts down first), dropping the clients is all there is.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let closes = join_all(servers.iter().map(|c| c.close()));
                let _ = tokio::time::timeout(CLOSE_WITHIN, closes).await;
            });
        }
    }
}

/// What [`HubBuilder::start`] hands the hub.
struct Parts {
    settings: HubSettings,
    servers: Vec<ServerConfig>,
    source: Option<Source>,
    dial: Dial,
    layers: Vec<Arc<dyn CallLayer>>,
    input: Option<Arc<dyn InputHandler>>,
    meta_injector: Option<MetaInjector>,
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
            input,
            meta_injector,
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
                let attempt = register(dial.clone(), config.clone(), settings.follow_changes);
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

        let mut listings = Listings::new();
        for (config, listed) in &mut registered {
            let tools = std::mem::take(&mut listed.tools);
            let private = listed.upstream.tools_cache_hints().private;
            let listing = Arc::new(ServerTools::new(config, tools, private));
            listings.insert(config.name.clone(), listing);
        }
        let catalog = match Catalog::build(&settings.catalog, listings.values().map(|l| &**l)) {
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
            let clients = ServerClients::new(
                config.clone(),
                dial.clone(),
                listed.upstream,
                settings.follow_changes,
            );
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

        let shutdown = CancellationToken::new();
        let mut state = State {
            closed: false,
            servers: connected,
            draining: Vec::new(),
            records,
            listings,
            listings_version: 0,
            catalog: Arc::new(catalog),
            epochs: BTreeMap::new(),
            sources: BTreeMap::new(),
            display_names: BTreeMap::new(),
            reaper: false,
            shelves: Default::default(),
        };
        // Every registered server is watched, every skipped one retried (when retries are
        // on), each under its name's epoch.
        let mut watches = Vec::new();
        for (name, clients) in state.servers.clone() {
            let epoch = state.epoch(&name, &shutdown);
            watches.push((clients, seen[&name], epoch));
        }
        let mut retries = Vec::new();
        let skipped = state
            .records
            .values()
            .filter(|r| r.registration == Registration::Failed { retrying: true });
        for config in skipped.map(|r| r.config.clone()).collect::<Vec<_>>() {
            let epoch = state.epoch(&config.name, &shutdown);
            retries.push((config, epoch));
        }
        let (events, _) = broadcast::channel(64);
        let inner = Arc::new(Inner {
            settings,
            dial,
            layers,
            input,
            meta_injector,
            start_failures,
            events,
            state: std::sync::Mutex::new(state),
            shutdown,
            tasks: TaskTracker::new(),
        });
        for (clients, seen, epoch) in watches {
            inner.watch(&clients, seen, epoch);
        }
        for (config, epoch) in retries {
            inner.retry_later(config, epoch);
        }
        if inner.all_clients().iter().any(|(_, c)| c.pool().is_some()) {
            inner.ensure_reaper();
        }
        if let Some((first, reports, configured)) = source_run {
            inner.follow_source(first, reports, configured);
        }
        Ok(Hub {
            owner: Arc::new(Owner { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.owner.inner
    }

    /// The current catalogue: a snapshot that stays valid while held.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner().catalog()
    }

    /// Servers that could not be registered when the hub started, with why, in name order.
    /// [`Hub::health`] says where every server stands now.
    pub fn failures(&self) -> &[(String, Error)] {
        &self.inner().start_failures
    }

    /// Names of the registered servers.
    pub fn servers(&self) -> Vec<String> {
        self.inner().state().servers.keys().cloned().collect()
    }

    /// Catalogue changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.inner().events.subscribe()
    }

    /// Where every server stands, and the one word for the whole hub.
    pub fn health(&self) -> Health {
        self.inner().health()
    }

    /// Per-session connections open for `server` (0 for shared servers).
    pub fn session_count(&self, server: &str) -> usize {
        self.inner()
            .clients(server)
            .and_then(|c| c.pool().map(|p| p.len()))
            .unwrap_or(0)
    }

    /// Closes per-session connections idle for at least `max_age` now; returns how many.
    pub async fn cleanup_sessions(&self, max_age: Duration) -> usize {
        self.inner().cleanup_sessions(Some(max_age)).await
    }

    /// Ends `session`'s own connections to every `per_session` server now (they close;
    /// shared connections are untouched), instead of waiting for the idle reaper: for a
    /// caller whose user session is over (a gateway's downstream session closed or
    /// expired). The session's next call, if any, connects again. Returns how many
    /// connections were ended.
    pub async fn end_session(&self, session: &str) -> usize {
        self.close_session(session, SessionClose::End).await
    }

    /// Closes `session`'s own connections as `mode` says: [`SessionClose::Detach`] when
    /// the session goes on elsewhere (another replica shares its upstream sessions: see
    /// [`HubBuilder::shared_sessions`]),
    /// [`SessionClose::End`] when it is over; returns how many it had.
    pub async fn close_session(&self, session: &str, mode: SessionClose) -> usize {
        let all = self.inner().all_clients();
        let ends = all.iter().map(|(_, c)| c.end_session(session, mode));
        join_all(ends)
            .await
            .into_iter()
            .filter(|ended| *ended)
            .count()
    }

    /// Registers one more server (as at start, under its policy, but never failing: a
    /// server that does not come up is recorded and, if enabled, retried).
    pub async fn add_server(&self, config: ServerConfig) {
        self.inner().add(config).await;
    }

    /// Replaces the registered server of `config.name` with `config` (a changed config)
    /// without a gap: the new one connects and lists its tools while the old one still
    /// serves, then one catalogue change swaps them, and the old one's calls in flight
    /// finish on it (within its `tool_call_timeout`) before it closes; returns then. If
    /// the new one does not come up, the old one is taken out (drained) and the failure
    /// recorded and retried as for [`Hub::add_server`]. A name not serving now (unknown,
    /// failed, retrying) or a disabled `config` is [`Hub::add_server`].
    pub async fn replace_server(&self, config: ServerConfig) {
        self.inner().replace(config).await;
    }

    /// Takes `server` out: no new calls reach it, the catalogue is rebuilt without it, its
    /// watcher and retry stop, and its connections close as soon as the calls in flight
    /// have finished (or once `drain` has passed, whichever comes first).
    pub async fn remove_server(&self, server: &str, drain: Duration) {
        self.inner().remove(server, drain).await;
    }

    /// Stops every background task (watchers, retries, discovery, the reaper) and closes
    /// every connection; [`Hub::close_within`] with [`CLOSE_WITHIN`]. Later calls fail
    /// with [`Error::Closed`].
    pub async fn close(&self) {
        self.close_within(CLOSE_WITHIN).await;
    }

    /// [`Hub::close`], waiting at most `within`: background tasks are cancelled and waited
    /// for, connections closed (stdio servers get SIGTERM, then SIGKILL after a grace
    /// period; HTTP sessions are ended). Whatever has not closed when `within` has passed
    /// is killed (stdio process groups) or dropped.
    pub async fn close_within(&self, within: Duration) {
        let inner = self.inner();
        let deadline = Instant::now() + within;
        let servers = inner.shut();
        inner.tasks.close();
        let tasks = tokio::time::timeout_at(deadline, inner.tasks.wait());
        let closes = tokio::time::timeout_at(deadline, join_all(servers.iter().map(|c| c.close())));
        let (tasks, closes) = futures::join!(tasks, closes);
        if tasks.is_err() {
            tracing::warn!(
                running = inner.tasks.len(),
                "background tasks still running when the hub's close deadline passed"
            );
        }
        if closes.is_err() {
            tracing::warn!(
                "connections still closing when the hub's close deadline passed: killing them"
            );
            for clients in &servers {
                clients.kill();
            }
        }
    }
}

impl Inner {
    fn health(&self) -> Health {
        let (catalog, clients, records, display_names, sources) = {
            let state = self.state();
            let records: Vec<(
                String,
                Registration,
                Option<ErrorReport>,
                Option<SystemTime>,
            )> = state
                .records
                .iter()
                .map(|(name, r)| {
                    (
                        name.clone(),
                        r.registration,
                        r.last_error.clone(),
                        r.last_success,
                    )
                })
                .collect();
            (
                state.catalog.clone(),
                state.servers.clone(),
                records,
                state.display_names.clone(),
                state
                    .sources
                    .values()
                    .cloned()
                    .collect::<Vec<SourceHealth>>(),
            )
        };
        let mut tools: BTreeMap<&str, usize> = BTreeMap::new();
        for tool in catalog.tools() {
            *tools.entry(tool.server.as_str()).or_default() += 1;
        }
        let links = clients
            .iter()
            .map(|(name, c)| (name.clone(), c.shared().status()))
            .collect::<BTreeMap<_, _>>();
        let servers: Vec<ServerHealth> = records
            .into_iter()
            .map(|(name, registration, mut last_error, mut last_success)| {
                let link = links.get(&name);
                if let Some(link) = link {
                    last_error = latest(last_error, link.last_error.clone());
                    last_success = link.last_success.max(last_success);
                }
                ServerHealth {
                    protocol_version: link.and_then(|l| l.protocol_version.clone()),
                    display_name: display_names.get(&name).filter(|d| **d != name).cloned(),
                    state: health::server_state(registration, last_error.as_ref(), link),
                    tools: tools.get(name.as_str()).copied().unwrap_or(0),
                    name,
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
}

/// The later of two error reports.
fn latest(a: Option<ErrorReport>, b: Option<ErrorReport>) -> Option<ErrorReport> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.at >= a.at { b } else { a }),
        (a, b) => a.or(b),
    }
}
