//! Servers that come from a discovery source (a tooling registry) instead of the config.
//!
//! The hub asks the source once at start (its servers are registered with the configured
//! ones, under the same policy). Afterwards one task per source keeps it current: after a
//! failure it asks again with backoff; with a `refresh_interval` it asks again every
//! interval, registers new servers, drains and closes removed ones, and re-registers servers
//! whose settings changed (all at once, not one after another). Each answer swaps the
//! catalogue through the hub's usual paths.
//!
//! A registry never touches a configured server: a discovered server with a configured
//! server's name is left out. Entries it lists that cannot be registered (no usable URL)
//! belong to the source's health, replaced with every answer; they never become server
//! records, whose names they could clash with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use futures::future::{BoxFuture, join_all};

use tokio::time::Instant;

use super::Progress;
use super::health::SourceHealth;
use super::registration::log_skip;
use super::state::{Inner, State};
use crate::catalog::REGISTRATION_LOG;
use crate::config::{ReconnectPolicy, RegistrationPolicy, ServerConfig};
use crate::discovery::{Discovery, RegistryClient};
use crate::error::{Error, ErrorReport};

/// Asks a registry which servers to use. The answer is the discovery layer's [`Discovery`]:
/// servers with unique valid names, the entries that cannot be registered (registration
/// failures under the policy) and display names (shown in health).
pub type Discover = Arc<dyn Fn() -> BoxFuture<'static, Result<Discovery, Error>> + Send + Sync>;

/// A discovery source as the hub runs it.
#[derive(Clone)]
pub struct Source {
    /// Shown in health and logs (e.g. `a365`).
    pub name: String,
    pub discover: Discover,
    /// Ask again this often (`None`: only until the first success).
    pub refresh_interval: Option<Duration>,
    /// Backoff after a failed request.
    pub retry: ReconnectPolicy,
}

impl Source {
    /// The source for a config's `[discovery]` registry, asked through `registry`.
    pub fn registry(registry: RegistryClient) -> Source {
        let config = registry.config();
        Source {
            name: registry.name().to_string(),
            refresh_interval: config.refresh_interval,
            retry: ReconnectPolicy::default(),
            discover: Arc::new(move || {
                let registry = registry.clone();
                Box::pin(async move { registry.discover().await })
            }),
        }
    }
}

/// What the first request to a source gave.
pub(super) struct FirstAnswer {
    pub source: Source,
    /// The servers to register, by name.
    pub known: BTreeMap<String, ServerConfig>,
    /// Entries without a usable URL, by display name.
    pub unusable: Vec<(String, Error)>,
    /// How many servers it gave, or why it failed.
    pub outcome: Result<usize, Error>,
    /// Server name → display name, where they differ.
    pub display_names: BTreeMap<String, String>,
}

/// Asks `source` once, at start. Under `fail_fast` a failed request, and an entry that
/// cannot be registered, end the start; otherwise they are logged and kept for health.
pub(super) async fn first_answer(
    source: Source,
    policy: RegistrationPolicy,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> Result<FirstAnswer, Error> {
    progress(Progress::Discovering {
        source: &source.name,
    });
    let started = Instant::now();
    let answer = (source.discover)().await;
    let elapsed = started.elapsed();
    let discovered = match answer {
        Ok(discovered) => discovered,
        Err(error) => {
            progress(Progress::DiscoveryFailed {
                source: &source.name,
                error: &error,
                elapsed,
            });
            if policy == RegistrationPolicy::FailFast {
                return Err(error);
            }
            log_failure(&source.name, policy, &error);
            return Ok(FirstAnswer {
                source,
                known: BTreeMap::new(),
                unusable: Vec::new(),
                outcome: Err(error),
                display_names: BTreeMap::new(),
            });
        }
    };
    progress(Progress::Discovered {
        source: &source.name,
        servers: discovered.servers.len(),
        elapsed,
    });
    let display_names = discovered.display_names;
    let mut failures = discovered.failures;
    if policy == RegistrationPolicy::FailFast && !failures.is_empty() {
        let (name, error) = failures.swap_remove(0);
        return Err(Error::Registration {
            server: name,
            source: Box::new(error),
        });
    }
    for (name, error) in &failures {
        log_skip(name, policy, error);
    }
    let known: BTreeMap<String, ServerConfig> = discovered
        .servers
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    Ok(FirstAnswer {
        source,
        outcome: Ok(known.len()),
        known,
        unusable: failures,
        display_names,
    })
}

impl Inner {
    /// Records the first answer in health and starts the task that follows the source.
    /// `unusable` are the answer's unusable entries (taken out of `first`).
    pub(super) fn follow_source(
        self: &Arc<Self>,
        first: FirstAnswer,
        unusable: Vec<(String, ErrorReport)>,
        configured: BTreeSet<String>,
    ) {
        let name = first.source.name.clone();
        let names = unusable.iter().map(|(name, _)| name.clone()).collect();
        self.state().display_names.extend(first.display_names);
        match &first.outcome {
            Ok(count) => self.source_succeeded(&name, *count, unusable),
            Err(error) => self.source_failed(&name, error),
        }
        let follow = Follow {
            failed: first.outcome.is_err(),
            unusable: names,
            source: first.source,
            known: first.known,
            configured,
        };
        let task = follow_task(Arc::downgrade(self), follow);
        self.spawn(self.shutdown.clone(), task);
    }

    fn source_succeeded(&self, name: &str, servers: usize, unusable: Vec<(String, ErrorReport)>) {
        let mut state = self.state();
        let health = source_health(&mut state, name);
        health.ok = true;
        health.servers = servers;
        health.unusable = unusable;
        health.last_success = Some(SystemTime::now());
    }

    fn source_failed(&self, name: &str, error: &Error) {
        let mut state = self.state();
        let health = source_health(&mut state, name);
        health.ok = false;
        health.last_error = Some(ErrorReport::now(error));
    }
}

pub(super) fn reports(failures: &[(String, Error)]) -> Vec<(String, ErrorReport)> {
    failures
        .iter()
        .map(|(name, error)| (name.clone(), ErrorReport::now(error)))
        .collect()
}

/// The health record of source `name`, made empty if it has none yet.
fn source_health<'s>(state: &'s mut State, name: &str) -> &'s mut SourceHealth {
    state
        .sources
        .entry(name.to_string())
        .or_insert_with(|| SourceHealth {
            name: name.to_string(),
            ok: false,
            servers: 0,
            unusable: Vec::new(),
            last_error: None,
            last_success: None,
        })
}

/// Logs a failed discovery run under the config's policy (it never fails the hub once
/// started).
fn log_failure(source: &str, policy: RegistrationPolicy, error: &Error) {
    log_skip(&format!("discovery:{source}"), policy, error);
}

/// Leaves out discovered servers named like a configured one (the configured one wins; a
/// registry must never replace or remove a server of the config file).
pub(super) fn without_configured(
    discovered: BTreeMap<String, ServerConfig>,
    configured: &BTreeSet<String>,
) -> BTreeMap<String, ServerConfig> {
    discovered
        .into_iter()
        .filter(|(name, _)| {
            let clash = configured.contains(name);
            if clash {
                tracing::warn!(target: REGISTRATION_LOG, server = %name,
                    "a configured server has this name; the discovered one is left out");
            }
            !clash
        })
        .collect()
}

/// What the follow task starts from.
struct Follow {
    source: Source,
    /// The servers of the last successful answer.
    known: BTreeMap<String, ServerConfig>,
    /// Display names of the last answer's unusable entries (logged once each).
    unusable: BTreeSet<String>,
    /// Names of the config's own servers, which discovery never touches.
    configured: BTreeSet<String>,
    /// Whether the first request failed (then the next one comes after a backoff).
    failed: bool,
}

/// Keeps a source's servers current; see the module docs. Ends with the hub (and is
/// stopped from outside when it closes).
async fn follow_task(inner: Weak<Inner>, follow: Follow) {
    let Follow {
        source,
        mut known,
        mut unusable,
        configured,
        failed,
    } = follow;
    let mut failures: u32 = u32::from(failed);
    loop {
        let wait = match (failures, source.refresh_interval) {
            (0, Some(interval)) => interval,
            (0, None) => return,
            (n, _) => source.retry.backoff(n),
        };
        tokio::time::sleep(wait).await;
        if inner.strong_count() == 0 {
            return;
        }
        let answer = (source.discover)().await;
        let Some(inner) = inner.upgrade() else { return };
        let policy = inner.settings.registration.on_error;
        match answer {
            Ok(discovered) => {
                failures = 0;
                for (name, error) in &discovered.failures {
                    if !unusable.contains(name) {
                        log_skip(name, policy, error);
                    }
                }
                unusable = discovered.failures.iter().map(|(n, _)| n.clone()).collect();
                let now = discovered
                    .servers
                    .into_iter()
                    .map(|s| (s.name.clone(), s))
                    .collect();
                let now = without_configured(now, &configured);
                inner.source_succeeded(&source.name, now.len(), reports(&discovered.failures));
                inner.state().display_names.extend(discovered.display_names);
                known = apply(&inner, known, now).await;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                log_failure(&source.name, policy, &error);
                inner.source_failed(&source.name, &error);
            }
        }
    }
}

/// Moves the hub from the `known` servers to `now`: removed and changed ones are drained
/// and closed, then new and changed ones registered, each group all at once. Returns `now`.
async fn apply(
    inner: &Arc<Inner>,
    known: BTreeMap<String, ServerConfig>,
    now: BTreeMap<String, ServerConfig>,
) -> BTreeMap<String, ServerConfig> {
    let leaving = known
        .iter()
        .filter(|(name, old)| now.get(*name) != Some(*old));
    join_all(leaving.map(|(name, old)| {
        tracing::info!(server = %name, "no longer discovered (or changed): removing");
        inner.remove(name, old.tool_call_timeout)
    }))
    .await;
    let joining = now
        .iter()
        .filter(|(name, server)| known.get(*name) != Some(*server));
    join_all(joining.map(|(name, server)| {
        tracing::info!(server = %name, "discovered: registering");
        inner.add(server.clone())
    }))
    .await;
    now
}
