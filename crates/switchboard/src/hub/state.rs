//! What the hub knows, behind one lock; and the tasks it runs in the background.
//!
//! Every piece of the hub that changes after start lives in one [`State`] behind one
//! `std::sync::Mutex` (`Inner::state`): the registered servers' clients, the registration
//! records, the tool listings with the catalogue built from them, each server name's
//! epoch, the discovery sources, display names and the closed flag. One lock means there is
//! no lock order to get wrong between them, and a change that touches several (a server
//! joining: clients, record, listing, catalogue) is seen whole or not at all.
//!
//! **Lock order: the state lock is a leaf.** Nothing else of ours is locked while it is
//! held, and it is never taken while a sessions-layer lock (a link's state, a pool's map) is
//! held: sessions know nothing of the hub. The rules for holding it:
//!
//! - **Never across an `.await`**, and **no I/O under it**, network or process (no
//!   connect, list, call or close; no log line either where it can be avoided). Take what
//!   you need (clone an `Arc`), drop the guard, then work.
//! - **Code under it only reads and writes `State`** (tokio's own leaf locks inside
//!   `CancellationToken::cancel` and a `watch` send aside). A link's status, a pool's
//!   sessions: clone the `Arc`s out and read them after dropping the guard.
//! - **The catalogue is built outside it.** A change to the listings takes a copy, builds
//!   the catalogue from the copy without the lock, and commits listings + catalogue (plus
//!   whatever goes with them) under the lock only if the listings did not change meanwhile
//!   (`listings_version`); otherwise it starts over. See [`Inner::swap_catalog`].
//!
//! The invariants it keeps:
//!
//! - **The catalogue swaps one `Arc`.** Readers clone `State::catalog` out and keep a
//!   snapshot that never changes.
//! - **Epochs.** Each server name has an epoch: a [`CancellationToken`], child of the hub's
//!   `shutdown` token. Whatever works for that name in the background (its watcher, its
//!   retry) runs under the epoch; whatever registers it (`add`, a retry) checks the epoch,
//!   and a relist that the server is still the one registered, under the lock before it
//!   commits. `remove` cancels the name's epoch (and `close` the root) under the lock, so a
//!   removed server cannot come back through an add, retry or relist that was in flight,
//!   and its tasks stop.
//! - **Removal before close.** A server is taken out of `servers` (into `draining`, under
//!   the lock) before its connections are closed (outside it). Calls hold an [`InFlight`]
//!   guard taken under the lock, so a drain waits for exactly the calls that found the
//!   server, and is woken by the last one (no polling).
//! - **Close vs join.** `closed` is set, the shutdown token cancelled and the servers taken
//!   out in one critical section; a join checks and inserts in one critical section. A
//!   server that registers while the hub closes is closed by whoever registered it.
//!
//! Background tasks (watchers, retries, discovery sources, the session reaper) run under a
//! [`TaskTracker`] and a token each ([`Inner::spawn`]): a server's tasks under its epoch,
//! the others under `shutdown`. They hold only a `Weak<Inner>` (upgraded while they work),
//! so they never keep the hub alive between steps, and the last handle's drop does not
//! depend on them: it is seen by `Owner` (held by `Hub` handles only).
//!
//! How the hub ends: [`Inner::shut`] sets `closed`, cancels `shutdown` (every task stops
//! where it waits) and takes the servers (draining ones too) out, in one critical section.
//! `Hub::close_within` then waits, up to its deadline, for the tracker to empty and the
//! connections to close, and kills whatever stdio process group is left. Dropping the last
//! `Hub` handle shuts the same way, kills stdio process groups synchronously (no runtime
//! needed), and closes the rest on the current runtime, if there is one.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::calls::CallLayer;
use super::health::SourceHealth;
use super::offers::Shelves;
use super::registration::Record;
use super::{HubEvent, HubSettings};
use crate::catalog::{Catalog, ServerTools};
use crate::error::Error;
use crate::interaction::InputHandler;
use crate::sessions::{Dial, InFlight, ServerClients};
use crate::sync::lock;

/// Every server's last tool list: the catalogue's input.
pub(super) type Listings = BTreeMap<String, Arc<ServerTools>>;

/// The hub behind every [`Hub`](super::Hub) handle.
pub(super) struct Inner {
    pub settings: HubSettings,
    pub dial: Dial,
    /// Every call passes these (see `calls.rs`).
    pub layers: Vec<Arc<dyn CallLayer>>,
    /// Answers what servers ask calls without a session handler (see `interaction`).
    pub input: Option<Arc<dyn InputHandler>>,
    /// Writes the trace context into upstream requests' `_meta` (`crate::spans`).
    pub meta_injector: Option<crate::spans::MetaInjector>,
    /// Servers that failed to register at start, with why (never changes).
    pub start_failures: Vec<(String, Error)>,
    pub events: broadcast::Sender<HubEvent>,
    /// All that changes; see the module docs.
    pub state: std::sync::Mutex<State>,
    /// Cancelled (under the state lock) when the hub closes; every epoch is its child.
    pub shutdown: CancellationToken,
    /// Every background task, so `close` can wait for them to end.
    pub tasks: TaskTracker,
}

/// The hub's mutable state; see the module docs for how it is locked.
pub(super) struct State {
    /// Set by `close` (or the last handle's drop): nothing joins after it.
    pub closed: bool,
    /// Registered servers' connections.
    pub servers: BTreeMap<String, Arc<ServerClients>>,
    /// Removed servers whose calls in flight are still draining: closing the hub closes
    /// (or dropping it kills) them too.
    pub draining: Vec<Arc<ServerClients>>,
    /// Every server the hub knows (registered, failed or disabled), for health.
    pub records: BTreeMap<String, Record>,
    /// The last tool list of every registered server.
    pub listings: Listings,
    /// Bumped with every change of `listings`.
    pub listings_version: u64,
    /// Built from `listings`; replaced whole, never changed.
    pub catalog: Arc<Catalog>,
    /// Each server name's epoch (see the module docs); removed (and cancelled) with the
    /// name.
    pub epochs: BTreeMap<String, CancellationToken>,
    /// Discovery sources, for health.
    pub sources: BTreeMap<String, SourceHealth>,
    /// Discovered servers' display names (the registry's), where they differ from the name.
    pub display_names: BTreeMap<String, String>,
    /// Whether the reaper of idle per-session connections runs.
    pub reaper: bool,
    /// Every server's resources, templates and prompts, as last listed (`offers.rs`).
    pub shelves: Shelves,
}

impl State {
    /// The epoch of `name`, made (as a child of `shutdown`) if it has none.
    pub fn epoch(&mut self, name: &str, shutdown: &CancellationToken) -> CancellationToken {
        self.epochs
            .entry(name.to_string())
            .or_insert_with(|| shutdown.child_token())
            .clone()
    }
}

/// How [`Inner::swap_catalog`] ended.
pub(super) enum Swap {
    /// The new catalogue (and the caller's commit) is in place.
    Done,
    /// `allowed` said no, or the edit changed nothing: nothing was changed.
    Skipped,
    /// The catalogue cannot be built (`collisions = "error"`); nothing was changed.
    Failed(Error),
}

impl Inner {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The current catalogue.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.state().catalog.clone()
    }

    pub fn clients(&self, server: &str) -> Option<Arc<ServerClients>> {
        self.state().servers.get(server).cloned()
    }

    /// Every registered server's clients.
    pub fn all_clients(&self) -> Vec<(String, Arc<ServerClients>)> {
        let state = self.state();
        let all = state.servers.iter();
        all.map(|(name, c)| (name.clone(), c.clone())).collect()
    }

    /// `server`'s clients for one call, counted as in flight until the guard drops (taken
    /// under the lock, so a removal either sees this call or the call does not find the
    /// server).
    pub fn enter(&self, server: &str) -> Result<InFlight, Error> {
        let state = self.state();
        if state.closed {
            return Err(Error::Closed {
                server: server.to_string(),
                reason: Some("the hub is closed".to_string()),
            });
        }
        match state.servers.get(server) {
            Some(clients) => Ok(clients.enter()),
            None => Err(Error::Closed {
                server: server.to_string(),
                reason: Some("the server is no longer connected".to_string()),
            }),
        }
    }

    /// Closes the hub's state: sets `closed`, cancels every task's token, and takes the
    /// servers out, draining ones included (for the caller to close), all in one critical
    /// section.
    pub fn shut(&self) -> Vec<Arc<ServerClients>> {
        let mut state = self.state();
        state.closed = true;
        self.shutdown.cancel();
        state.epochs.clear();
        let mut all = std::mem::take(&mut state.draining);
        all.extend(std::mem::take(&mut state.servers).into_values());
        all
    }

    /// Runs `task` in the background until it ends or `token` is cancelled (then it is
    /// dropped where it waits). Tracked, so `close` can wait for it.
    pub fn spawn(&self, token: CancellationToken, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(async move {
            token.run_until_cancelled_owned(task).await;
        });
    }

    /// Changes the catalogue: `edit` changes a copy of the listings (false: nothing to
    /// change), the catalogue is built from it outside the lock, and under the lock the
    /// listings, the catalogue and `commit` go in together, if `allowed` still says yes.
    /// `allowed` is asked under the lock before the build and again before the commit. If
    /// the listings changed meanwhile, it all starts over (so `edit` may run more than
    /// once). A catalogue that cannot be built changes nothing. On success a
    /// [`HubEvent::CatalogChanged`] for `server` goes out and new diagnostics are logged.
    pub fn swap_catalog(
        &self,
        server: &str,
        allowed: impl Fn(&State) -> bool,
        edit: impl Fn(&mut Listings) -> bool,
        commit: impl FnOnce(&mut State),
    ) -> Swap {
        loop {
            let (mut listings, version) = {
                let state = self.state();
                if !allowed(&state) {
                    return Swap::Skipped;
                }
                (state.listings.clone(), state.listings_version)
            };
            if !edit(&mut listings) {
                return Swap::Skipped;
            }
            let built = Catalog::build(&self.settings.catalog, listings.values().map(|l| &**l));
            let (new, old) = {
                let mut state = self.state();
                if state.listings_version != version {
                    continue; // someone else changed the listings: build again on theirs
                }
                if !allowed(&state) {
                    return Swap::Skipped;
                }
                let catalog = match built {
                    Ok(catalog) => Arc::new(catalog),
                    Err(error) => return Swap::Failed(error),
                };
                commit(&mut state);
                state.listings = listings;
                state.listings_version += 1;
                let old = std::mem::replace(&mut state.catalog, catalog.clone());
                (catalog, old)
            };
            new.warn_new_diagnostics(Some(&old));
            let _ = self.events.send(HubEvent::CatalogChanged {
                server: server.to_string(),
            });
            return Swap::Done;
        }
    }
}
