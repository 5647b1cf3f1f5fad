//! The hub's background work: a watcher task per server that lists its tools (resources,
//! prompts) again when they change, and the reaper that closes idle per-session connections.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::join_all;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::state::{Inner, Listings, State, Swap};
use crate::catalog::ServerTools;
use crate::sessions::ServerClients;
use crate::upstream::UpstreamEvent;

impl Inner {
    /// Closes idle per-session connections: idle for `max_age`, or for each server's own
    /// `session_idle_timeout` when `None`.
    pub(super) async fn cleanup_sessions(&self, max_age: Option<Duration>) -> usize {
        let all = self.all_clients();
        let cleanups = all.iter().map(|(_, c)| {
            let age = max_age.unwrap_or(c.shared().server().session_idle_timeout);
            c.cleanup(age)
        });
        join_all(cleanups).await.into_iter().sum()
    }

    /// Lists `clients`' server's tools again and swaps in a catalogue built with them. On
    /// failure, when the tools are the same, or when the server was removed or replaced
    /// meanwhile, nothing changes.
    pub(super) async fn relist(&self, server: &str, clients: &Arc<ServerClients>) {
        let link = clients.shared();
        let listed = match link
            .upstream(Instant::now() + link.server().connect_timeout)
            .await
        {
            Ok((upstream, _)) => upstream
                .list_tools()
                .await
                .map(|tools| (tools, upstream.tools_cache_hints().private)),
            Err(error) => Err(error),
        };
        let (tools, private) = match listed {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(
                    server,
                    "tools changed but could not be listed again: {error}"
                );
                return;
            }
        };
        let listing = Arc::new(ServerTools::new(link.server(), tools, private));
        // Only while the server is still the one listed (not removed or replaced).
        let current = |state: &State| {
            state
                .servers
                .get(server)
                .is_some_and(|c| Arc::ptr_eq(c, clients))
        };
        // An unchanged list (a reconnect, a `ttlMs` refresh) keeps the catalogue as it is.
        let edit = |listings: &mut Listings| {
            let old = listings.insert(server.to_string(), listing.clone());
            old.is_none_or(|old| old.tools != listing.tools || old.private != listing.private)
        };
        match self.swap_catalog(server, current, edit, |_| {}) {
            Swap::Done => tracing::info!(server, "tools changed; catalogue updated"),
            Swap::Skipped => {}
            Swap::Failed(error) => {
                tracing::error!(server, "tools changed but the catalogue was kept: {error}")
            }
        }
    }

    /// Starts the task that relists `clients`' server when its tools change, under the
    /// server's `epoch`. `seen` is the server's change count before its tools were listed:
    /// if it moved since, the task lists at once (the notification came before anyone was
    /// subscribed).
    pub(super) fn watch(
        self: &Arc<Self>,
        clients: &Arc<ServerClients>,
        seen: u64,
        epoch: CancellationToken,
    ) {
        let link = clients.shared();
        let events = link.subscribe();
        let missed = link.tool_changes().is_some_and(|now| now != seen);
        let server = link.server().name.clone();
        let watcher = watch(
            Arc::downgrade(self),
            Arc::downgrade(clients),
            server,
            events,
            missed,
        );
        self.spawn(epoch, watcher);
    }

    /// Starts the reaper of idle per-session connections, unless it runs already.
    pub(super) fn ensure_reaper(self: &Arc<Self>) {
        if std::mem::replace(&mut self.state().reaper, true) {
            return;
        }
        let reaper = reap(Arc::downgrade(self), self.settings.sessions.reaper_interval);
        self.spawn(self.shutdown.clone(), reaper);
    }
}

/// Rebuilds the catalogue whenever `server` says its tools changed (and at once when a
/// change was `missed` before subscribing), and relists its resources or prompts when it
/// says they changed; a burst of notifications is one relist of each kind. A tool listing
/// whose `ttlMs` runs out with no listen stream to bring changes is listed again then. Ends
/// when the hub, the clients or the upstream is gone (or its epoch is cancelled).
async fn watch(
    inner: Weak<Inner>,
    clients: Weak<ServerClients>,
    server: String,
    mut events: broadcast::Receiver<UpstreamEvent>,
    mut missed: bool,
) {
    use broadcast::error::{RecvError, TryRecvError};
    loop {
        // Tools, resources, prompts.
        let mut changed = [std::mem::take(&mut missed), false, false];
        if !changed[0] {
            let stale_after = clients
                .upgrade()
                .and_then(|c| c.shared().tools_stale_after());
            let stale = async {
                match stale_after {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                event = events.recv() => match event {
                    Ok(UpstreamEvent::ResourceUpdated { uri }) => {
                        updated(&inner, &server, uri);
                        continue;
                    }
                    Ok(event) => note(&mut changed, Some(event)),
                    Err(RecvError::Lagged(_)) => note(&mut changed, None),
                    Err(RecvError::Closed) => return,
                },
                () = stale => {
                    tracing::debug!(server, "the tool list's ttlMs ran out");
                    changed[0] = true;
                }
            }
        }
        loop {
            match events.try_recv() {
                Ok(UpstreamEvent::ResourceUpdated { uri }) => updated(&inner, &server, uri),
                Ok(event) => note(&mut changed, Some(event)),
                Err(TryRecvError::Lagged(_)) => note(&mut changed, None),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        let (Some(inner), Some(clients)) = (inner.upgrade(), clients.upgrade()) else {
            return;
        };
        let [tools, resources, prompts] = changed;
        if tools {
            inner.relist(&server, &clients).await;
        }
        if resources {
            inner.offers_changed(&server, &clients, true).await;
        }
        if prompts {
            inner.offers_changed(&server, &clients, false).await;
        }
    }
}

/// Marks what `event` says changed (tools, resources, prompts); `None` (events were lost)
/// marks everything.
fn note(changed: &mut [bool; 3], event: Option<UpstreamEvent>) {
    match event {
        Some(UpstreamEvent::ToolsChanged) => changed[0] = true,
        Some(UpstreamEvent::ResourcesChanged) => changed[1] = true,
        Some(UpstreamEvent::PromptsChanged) => changed[2] = true,
        Some(UpstreamEvent::ResourceUpdated { .. }) => {}
        None => *changed = [true; 3],
    }
}

/// Tells the hub's followers that `server`'s resource `uri` (its own URI) was updated: at
/// once, not batched like list changes (each update is news to its subscribers).
fn updated(inner: &Weak<Inner>, server: &str, uri: String) {
    if let Some(inner) = inner.upgrade() {
        let server = server.to_owned();
        let _ = inner
            .events
            .send(super::HubEvent::ResourceUpdated { server, uri });
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
