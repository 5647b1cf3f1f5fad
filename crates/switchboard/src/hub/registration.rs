//! Registration bookkeeping: connecting and listing a server, what its policy does when
//! that fails, the background retry of skipped servers, and servers joining and leaving a
//! running hub (a leaving server is drained: its calls in flight finish first).
//!
//! Every registration of a name runs under that name's epoch (see `state.rs`): it commits
//! only if the epoch is still live, so a removal (or close) wins over whatever was in
//! flight for the name.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use rmcp::model::Tool;
use tokio_util::sync::CancellationToken;

use super::HubEvent;
use super::health::Registration;
use super::state::{Inner, Listings, State, Swap};
use crate::catalog::{REGISTRATION_LOG, ServerTools};
use crate::config::{RegistrationConfig, RegistrationPolicy, ServerConfig};
use crate::error::{Error, ErrorReport};
use crate::sessions::{Dial, ServerClients};
use crate::upstream::Upstream;

/// The registration bookkeeping of one server.
pub(super) struct Record {
    pub config: Arc<ServerConfig>,
    pub registration: Registration,
    pub last_error: Option<ErrorReport>,
    pub last_success: Option<SystemTime>,
}

impl Record {
    pub(super) fn new(config: Arc<ServerConfig>, registration: Registration) -> Record {
        Record {
            config,
            registration,
            last_error: None,
            last_success: None,
        }
    }
}

/// A server that answered `initialize` and `tools/list`.
pub(super) struct Listed {
    pub upstream: Upstream,
    pub tools: Vec<Tool>,
    /// [`Upstream::tool_changes`] before the listing: if it moved by the time the server
    /// is watched, a change was missed and the watcher lists again at once.
    pub seen: u64,
}

/// Connects to `config`'s server and lists its tools (closing the connection if listing
/// fails). `follow`: first open the server's change subscription (2026-07-28 servers), so
/// no change after the listing goes unheard.
pub(super) async fn register(
    dial: Dial,
    config: Arc<ServerConfig>,
    follow: bool,
) -> Result<Listed, Error> {
    let upstream = dial(config, None).await?;
    if follow {
        upstream.listen().await;
    }
    let seen = upstream.tool_changes();
    match upstream.list_tools().await {
        Ok(tools) => Ok(Listed {
            upstream,
            tools,
            seen,
        }),
        Err(error) => {
            upstream.close().await;
            Err(error)
        }
    }
}

/// The registration policy of `server`: its own, else the config's.
pub(super) fn policy(
    registration: &RegistrationConfig,
    server: &ServerConfig,
) -> RegistrationPolicy {
    server
        .on_registration_error
        .unwrap_or(registration.on_error)
}

/// The log line of a skipped server: WARN under `skip_with_warning`, DEBUG otherwise.
pub(super) fn log_skip(server: &str, policy: RegistrationPolicy, error: &Error) {
    let class = error.class();
    match policy {
        RegistrationPolicy::SkipSilently => tracing::debug!(
            target: REGISTRATION_LOG, server, %class,
            "skipping MCP server after registration failure (policy=skip_silently): {error}"
        ),
        _ => tracing::warn!(
            target: REGISTRATION_LOG, server, %class,
            "skipping MCP server after registration failure (policy={}): {error}",
            policy.as_str()
        ),
    }
}

impl Inner {
    /// A registered server joins: its clients, record and tools go in with a catalogue
    /// built with them, and it is watched. It does not join when its `epoch` is over (the
    /// name was removed, or the hub closed, meanwhile): its connection is closed instead. A
    /// catalogue that cannot be built with it (`collisions = "error"`) leaves it out for
    /// good: that is a config problem, not a passing one.
    pub(super) async fn join(
        self: &Arc<Self>,
        config: Arc<ServerConfig>,
        listed: Listed,
        epoch: CancellationToken,
    ) {
        let Listed {
            upstream,
            tools,
            seen,
        } = listed;
        let name = config.name.clone();
        let private = upstream.tools_cache_hints().private;
        let listing = Arc::new(ServerTools::new(&config, tools, private));
        let clients = Arc::new(ServerClients::new(
            config.clone(),
            self.dial.clone(),
            upstream,
            self.settings.follow_changes,
        ));
        let live = |state: &State| !state.closed && !epoch.is_cancelled();
        let edit = |listings: &mut Listings| {
            listings.insert(name.clone(), listing.clone());
            true
        };
        let mut replaced = None;
        // Clients and record go in with the catalogue: a subscriber woken by its event
        // finds both.
        let commit = |state: &mut State| {
            let mut record = Record::new(config.clone(), Registration::Ready);
            record.last_success = Some(SystemTime::now());
            state.records.insert(name.clone(), record);
            replaced = state.servers.insert(name.clone(), clients.clone());
            state.draining.extend(replaced.clone());
        };
        match self.swap_catalog(&name, live, edit, commit) {
            Swap::Done => {}
            Swap::Skipped => {
                clients.close().await;
                return;
            }
            Swap::Failed(error) => {
                clients.close().await;
                tracing::error!(target: REGISTRATION_LOG, server = %name, "cannot join the catalogue: {error}");
                let mut record = Record::new(config, Registration::Failed { retrying: false });
                record.last_error = Some(ErrorReport::now(&error));
                let mut state = self.state();
                if live(&state) {
                    state.records.insert(name, record);
                }
                return;
            }
        }
        self.offers_moved(&name);
        self.watch(&clients, seen, epoch);
        if clients.pool().is_some() {
            self.ensure_reaper();
        }
        tracing::info!(target: REGISTRATION_LOG, server = %name, "registered");
        if let Some(replaced) = replaced {
            // A replacement (or two adds of one name that raced): the new one stays, the
            // old one finishes its calls in flight and leaves.
            let drain = replaced.shared().server().tool_call_timeout;
            self.drain_and_close(&name, replaced, drain).await;
        }
    }

    /// Records a failed registration and, when retries are on, schedules one under the
    /// name's `epoch`. Nothing is recorded once the epoch is over.
    pub(super) fn registration_failed(
        self: &Arc<Self>,
        config: Arc<ServerConfig>,
        error: &Error,
        epoch: CancellationToken,
    ) {
        let retrying = self.settings.registration.retry_skipped;
        {
            let mut state = self.state();
            if state.closed || epoch.is_cancelled() {
                return;
            }
            let record = state
                .records
                .entry(config.name.clone())
                .or_insert_with(|| Record::new(config.clone(), Registration::Ready));
            record.config = config.clone();
            record.registration = Registration::Failed { retrying };
            record.last_error = Some(ErrorReport::now(error));
        }
        if retrying {
            self.retry_later(config, epoch);
        }
    }

    /// Retries registering `config`'s server in the background, with its reconnect
    /// backoff, until it comes up. The task runs under `epoch`, so it stops when the server
    /// is removed or the hub closes.
    pub(super) fn retry_later(
        self: &Arc<Self>,
        config: Arc<ServerConfig>,
        epoch: CancellationToken,
    ) {
        let task = retry(Arc::downgrade(self), config, epoch.clone());
        self.spawn(epoch, task);
    }

    /// Registers one more server; see [`Hub::add_server`](super::Hub::add_server). A server
    /// of the same name (registered, failed or retrying) is removed first.
    pub(super) async fn add(self: &Arc<Self>, config: ServerConfig) {
        let previous = self
            .state()
            .records
            .get(&config.name)
            .map(|r| r.config.tool_call_timeout);
        if let Some(drain) = previous {
            self.remove(&config.name, drain).await;
        }
        let config = Arc::new(config);
        let epoch = {
            let mut state = self.state();
            if state.closed {
                return;
            }
            if !config.enabled {
                let record = Record::new(config.clone(), Registration::Disabled);
                state.records.insert(config.name.clone(), record);
                return;
            }
            state.epoch(&config.name, &self.shutdown)
        };
        match register(
            self.dial.clone(),
            config.clone(),
            self.settings.follow_changes,
        )
        .await
        {
            Ok(listed) => self.join(config, listed, epoch).await,
            Err(error) => {
                if epoch.is_cancelled() {
                    return; // removed meanwhile
                }
                let policy = policy(&self.settings.registration, &config);
                log_skip(&config.name, policy, &error);
                self.registration_failed(config, &error, epoch);
            }
        }
    }

    /// Replaces a registered server with `config`; see
    /// [`Hub::replace_server`](super::Hub::replace_server). The new one is connected and
    /// listed while the old one serves, under the name's epoch (so a removal meanwhile
    /// wins), and [`Inner::join`] swaps them in one commit and drains the old one.
    pub(super) async fn replace(self: &Arc<Self>, config: ServerConfig) {
        let epoch = {
            let mut state = self.state();
            let serving = state.servers.contains_key(&config.name);
            match !state.closed && serving && config.enabled {
                true => Some(state.epoch(&config.name, &self.shutdown)),
                false => None,
            }
        };
        // Nothing serving to keep (absent, failed, retrying) or a server turned off: as add.
        let Some(epoch) = epoch else {
            return self.add(config).await;
        };
        let config = Arc::new(config);
        let follow = self.settings.follow_changes;
        match register(self.dial.clone(), config.clone(), follow).await {
            Ok(listed) => self.join(config, listed, epoch).await,
            Err(_) if epoch.is_cancelled() => {} // removed meanwhile
            Err(error) => {
                // The new config does not come up: the old server leaves (drained) and the
                // new one is recorded, and retried, as a failed add.
                let old = self.clients(&config.name);
                let drain = old.map_or(config.tool_call_timeout, |old| {
                    old.shared().server().tool_call_timeout
                });
                self.remove(&config.name, drain).await;
                let epoch = {
                    let mut state = self.state();
                    if state.closed {
                        return;
                    }
                    state.epoch(&config.name, &self.shutdown)
                };
                log_skip(
                    &config.name,
                    policy(&self.settings.registration, &config),
                    &error,
                );
                self.registration_failed(config, &error, epoch);
            }
        }
    }

    /// Takes a server out; see [`Hub::remove_server`](super::Hub::remove_server). Its epoch
    /// ends (its watcher and retry stop, registrations in flight for it will not land), it
    /// leaves the map and the catalogue, and once its calls in flight are done (or `drain`
    /// has passed) its connections close.
    pub(super) async fn remove(&self, server: &str, drain: Duration) {
        let clients = {
            let mut state = self.state();
            if let Some(epoch) = state.epochs.remove(server) {
                epoch.cancel();
            }
            state.records.remove(server);
            let clients = state.servers.remove(server);
            state.draining.extend(clients.clone());
            clients
        };
        // The listing goes unless the name came back meanwhile (a newer server's listing).
        let gone = |state: &State| !state.servers.contains_key(server);
        let edit = |listings: &mut Listings| listings.remove(server).is_some();
        if let Swap::Failed(error) = self.swap_catalog(server, gone, edit, |_| {}) {
            // Removing tools cannot create a collision; keep going if it somehow fails.
            tracing::error!(
                server,
                "catalogue not rebuilt after removing the server: {error}"
            );
        }
        if let Some(clients) = clients {
            self.offers_moved(server);
            self.drain_and_close(server, clients, drain).await;
            tracing::info!(target: REGISTRATION_LOG, server, "removed");
        }
    }

    /// A server joined or left (or was replaced): its resources and prompts came or went
    /// with it, which subscribers hear as for a change the server told.
    fn offers_moved(&self, server: &str) {
        let server = server.to_owned();
        let _ = self.events.send(HubEvent::ResourcesChanged {
            server: server.clone(),
        });
        let _ = self.events.send(HubEvent::PromptsChanged { server });
    }

    /// Closes a server's `clients` (already taken out, and in `draining`) once its calls
    /// in flight are done, or once `drain` has passed.
    async fn drain_and_close(&self, server: &str, clients: Arc<ServerClients>, drain: Duration) {
        if tokio::time::timeout(drain, clients.drained())
            .await
            .is_err()
        {
            tracing::warn!(
                target: REGISTRATION_LOG,
                server,
                in_flight = clients.in_flight(),
                "calls still running after the drain period: closing anyway"
            );
        }
        self.state()
            .draining
            .retain(|draining| !Arc::ptr_eq(draining, &clients));
        clients.close().await;
    }
}

/// Tries to register a skipped server again, after its reconnect backoff (growing with
/// each failure, up to its `max_backoff`), until it joins. Ends with the hub, or when the
/// server is removed (`epoch` cancelled; the task is also stopped from outside then).
async fn retry(inner: Weak<Inner>, config: Arc<ServerConfig>, epoch: CancellationToken) {
    let mut failures = 1;
    loop {
        tokio::time::sleep(config.reconnect.backoff(failures)).await;
        let Some((dial, follow)) = inner
            .upgrade()
            .map(|i| (i.dial.clone(), i.settings.follow_changes))
        else {
            return;
        };
        let result = register(dial, config.clone(), follow).await;
        let Some(inner) = inner.upgrade() else { return };
        match result {
            Ok(listed) => {
                inner.join(config, listed, epoch).await;
                return;
            }
            Err(error) => {
                tracing::debug!(target: REGISTRATION_LOG, server = %config.name, class = %error.class(), "retry failed: {error}");
                let mut state = inner.state();
                if epoch.is_cancelled() {
                    return;
                }
                if let Some(record) = state.records.get_mut(&config.name) {
                    record.last_error = Some(ErrorReport::now(&error));
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}
