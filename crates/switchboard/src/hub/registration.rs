//! Registration bookkeeping: connecting and listing a server, what its policy does when
//! that fails, the background retry of skipped servers, and servers joining and leaving a
//! running hub (a leaving server is drained: its calls in flight finish first).

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use rmcp::model::Tool;
use tokio::time::Instant;

use super::Inner;
use super::health::Registration;
use crate::catalog::{REGISTRATION_LOG, ServerTools};
use crate::config::{RegistrationConfig, RegistrationPolicy, ServerConfig};
use crate::error::{Error, ErrorReport};
use crate::sessions::{Dial, ServerClients};
use crate::sync::lock;
use crate::upstream::Upstream;

/// How often a drained server is checked for calls still in flight.
const DRAIN_POLL: Duration = Duration::from_millis(20);

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
/// fails).
pub(super) async fn register(dial: Dial, config: Arc<ServerConfig>) -> Result<Listed, Error> {
    let upstream = dial(config, None).await?;
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
    /// The current registration epoch of `name`: bumped whenever the name is removed, so a
    /// registration that started before a removal never lands after it.
    pub(super) fn epoch(&self, name: &str) -> u64 {
        lock(&self.epochs).get(name).copied().unwrap_or(0)
    }

    /// A registered server joins: its clients go in, the catalogue is rebuilt with its
    /// tools, and it is watched. It does not join when the hub closed or the name was
    /// removed since `epoch`. A catalogue that cannot be built with it (`collisions =
    /// "error"`) leaves it out for good: that is a config problem, not a passing one.
    pub(super) async fn join(
        self: &Arc<Self>,
        config: Arc<ServerConfig>,
        listed: Listed,
        epoch: u64,
    ) {
        let Listed {
            upstream,
            tools,
            seen,
        } = listed;
        let name = config.name.clone();
        let listing = ServerTools::new(&config, tools);
        let clients = Arc::new(ServerClients::new(
            config.clone(),
            self.dial.clone(),
            upstream,
        ));
        {
            // Checked and inserted under the servers lock, which `remove` and `close` hold
            // while they bump the epoch or close: no removal or close can slip in between.
            let mut servers = self.servers.write().unwrap_or_else(|e| e.into_inner());
            if self.is_closed() || self.epoch(&name) != epoch {
                drop(servers);
                clients.close().await;
                return;
            }
            // Record and clients first: a subscriber woken by the catalogue event must find
            // both.
            let mut record = Record::new(config.clone(), Registration::Ready);
            record.last_success = Some(SystemTime::now());
            lock(&self.records).insert(name.clone(), record);
            servers.insert(name.clone(), clients.clone());
        }
        if let Err(error) = self.rebuild(&name, |listings| {
            listings.insert(name.clone(), listing);
            true
        }) {
            self.servers
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
            clients.close().await;
            tracing::error!(target: REGISTRATION_LOG, server = %name, "cannot join the catalogue: {error}");
            let mut record = Record::new(config, Registration::Failed { retrying: false });
            record.last_error = Some(ErrorReport::now(&error));
            lock(&self.records).insert(name, record);
            return;
        }
        self.watch(&name, seen);
        if clients.pool().is_some() {
            self.ensure_reaper();
        }
        tracing::info!(target: REGISTRATION_LOG, server = %name, "registered");
    }

    /// Records a failed registration and, when retries are on, schedules one.
    pub(super) fn registration_failed(
        self: &Arc<Self>,
        config: Arc<ServerConfig>,
        error: &Error,
        epoch: u64,
    ) {
        let retrying = self.settings.registration.retry_skipped && !self.is_closed();
        {
            let mut records = lock(&self.records);
            let record = records
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
    /// backoff, until it comes up (or the hub closes, or the server is removed).
    pub(super) fn retry_later(self: &Arc<Self>, config: Arc<ServerConfig>, epoch: u64) {
        let key = format!("retry:{}", config.name);
        let task = retry(Arc::downgrade(self), config, epoch);
        self.keep_task(key, tokio::spawn(task).abort_handle());
    }

    /// Registers one more server; see [`Hub::add_server`]. A server of the same name
    /// (registered, failed or retrying) is removed first.
    pub(super) async fn add(self: &Arc<Self>, config: ServerConfig) {
        let previous = lock(&self.records)
            .get(&config.name)
            .map(|r| r.config.tool_call_timeout);
        if let Some(drain) = previous {
            self.remove(&config.name, drain).await;
        }
        let config = Arc::new(config);
        if !config.enabled {
            let record = Record::new(config.clone(), Registration::Disabled);
            lock(&self.records).insert(config.name.clone(), record);
            return;
        }
        let epoch = self.epoch(&config.name);
        match register(self.dial.clone(), config.clone()).await {
            Ok(listed) => self.join(config, listed, epoch).await,
            Err(error) => {
                if self.epoch(&config.name) != epoch {
                    return; // removed meanwhile
                }
                let policy = policy(&self.settings.registration, &config);
                log_skip(&config.name, policy, &error);
                self.registration_failed(config, &error, epoch);
            }
        }
    }

    /// Takes a server out; see [`Hub::remove_server`].
    pub(super) async fn remove(&self, server: &str, drain: Duration) {
        for kind in ["watch", "retry"] {
            if let Some(task) = lock(&self.tasks).remove(&format!("{kind}:{server}")) {
                task.abort();
            }
        }
        let clients = {
            let mut servers = self.servers.write().unwrap_or_else(|e| e.into_inner());
            *lock(&self.epochs).entry(server.to_string()).or_default() += 1;
            lock(&self.records).remove(server);
            servers.remove(server)
        };
        if let Err(error) = self.rebuild(server, |listings| listings.remove(server).is_some()) {
            // Removing tools cannot create a collision; keep going if it somehow fails.
            tracing::error!(
                server,
                "catalogue not rebuilt after removing the server: {error}"
            );
        }
        let Some(clients) = clients else { return };
        // Calls in flight hold a clone of the Arc: wait for them, up to `drain`.
        let until = Instant::now() + drain;
        while Arc::strong_count(&clients) > 1 && Instant::now() < until {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        clients.close().await;
        tracing::info!(target: REGISTRATION_LOG, server, "removed");
    }
}

/// Tries to register a skipped server again, after its reconnect backoff (growing with
/// each failure, up to its `max_backoff`), until it joins. Ends with the hub, or when the
/// server is removed (`epoch` moved on).
async fn retry(inner: Weak<Inner>, config: Arc<ServerConfig>, epoch: u64) {
    let mut failures = 1;
    loop {
        tokio::time::sleep(config.reconnect.backoff(failures)).await;
        let Some(dial) = inner.upgrade().map(|i| i.dial.clone()) else {
            return;
        };
        let result = register(dial, config.clone()).await;
        let Some(inner) = inner.upgrade() else { return };
        match result {
            Ok(listed) => {
                inner.forget_own_task(&format!("retry:{}", config.name));
                inner.join(config, listed, epoch).await;
                return;
            }
            Err(error) => {
                tracing::debug!(target: REGISTRATION_LOG, server = %config.name, class = %error.class(), "retry failed: {error}");
                if inner.epoch(&config.name) != epoch {
                    return;
                }
                if let Some(record) = lock(&inner.records).get_mut(&config.name) {
                    record.last_error = Some(ErrorReport::now(&error));
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}
