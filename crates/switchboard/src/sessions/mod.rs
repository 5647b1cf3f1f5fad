//! Who uses which connection: one shared connection per server, or one per user session.
//!
//! Every server has a shared [`Link`] (its tools are listed over it, and calls without a
//! session use it). A `session_mode = "per_session"` server also has a [`SessionPool`]: calls
//! that carry a [`Session`] get that session's own connection, created on its first call with
//! the session's variables (e.g. the user's token in a header template), reused by its later
//! calls, and closed when idle (see `pool.rs`). Links reconnect on their own (see `link.rs`).
//!
//! [`ServerClients`] also counts the calls in flight: the hub takes an [`InFlight`] guard
//! for every call, and a server taken out of the hub waits for [`ServerClients::drained`]
//! (woken when the count reaches zero) before it closes its connections.

mod link;
mod pool;
#[cfg(test)]
mod test_responder;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::JsonObject;
use tokio::sync::watch;
use tokio::time::Instant;

pub use crate::transport::http::{
    MemorySharedSessions, SharedSessions, SharedSessionsError, UpstreamKey, UpstreamRecord,
};
pub use crate::upstream::{SessionClose, SessionRef};
pub use link::{Dial, Link, LinkState, LinkStatus, ToolsSeen};
pub use pool::SessionPool;

use crate::catalog::{Catalog, ServerTools};
use crate::config::{ServerConfig, SessionMode};
use crate::error::Error;
use crate::interaction::InputHandler;
use crate::sync::lock;
use crate::upstream::interaction::CallContext;
use crate::upstream::listing::ListKind;
use crate::upstream::{CacheHints, CallOutcome, PromptOutcome, ResourceRead, Upstream};

/// The caller's session: its id, the variables its connections are made with, and the
/// handler that answers what servers ask its calls (elicitation, sampling), which wins over
/// the hub's.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub variables: Arc<BTreeMap<String, String>>,
    input: Option<Arc<dyn InputHandler>>,
    /// The catalogue built for this session from its private lists (`hub/private.rs`).
    catalog: Arc<Mutex<Option<Arc<SessionCatalog>>>>,
}

/// A catalogue built for one session, and what it was built from.
pub(crate) struct SessionCatalog {
    /// The hub's catalogue at the time.
    base: Arc<Catalog>,
    /// The session's own lists that replaced the hub's.
    lists: Vec<Arc<ServerTools>>,
    pub catalog: Arc<Catalog>,
}

impl SessionCatalog {
    pub(crate) fn new(
        base: Arc<Catalog>,
        lists: Vec<Arc<ServerTools>>,
        catalog: Arc<Catalog>,
    ) -> Self {
        SessionCatalog {
            base,
            lists,
            catalog,
        }
    }

    /// Whether it was built from exactly these.
    pub(crate) fn built_from(&self, base: &Arc<Catalog>, lists: &[Arc<ServerTools>]) -> bool {
        Arc::ptr_eq(&self.base, base)
            && self.lists.len() == lists.len()
            && self.lists.iter().zip(lists).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Session {
    pub fn new(id: impl Into<String>, variables: BTreeMap<String, String>) -> Session {
        Session {
            id: id.into(),
            variables: Arc::new(variables),
            input: None,
            catalog: Arc::default(),
        }
    }

    /// The catalogue last built for this session (`hub/private.rs`).
    pub(crate) fn kept_catalog(&self) -> Option<Arc<SessionCatalog>> {
        lock(&self.catalog).clone()
    }

    pub(crate) fn keep_catalog(&self, catalog: SessionCatalog) {
        *lock(&self.catalog) = Some(Arc::new(catalog));
    }

    /// This session's calls are answered by `handler` instead of the hub's (see
    /// [`crate::interaction`]).
    pub fn with_input_handler(mut self, handler: impl InputHandler) -> Session {
        self.input = Some(Arc::new(handler));
        self
    }

    /// The session's own input handler, if it has one.
    pub fn input_handler(&self) -> Option<&Arc<dyn InputHandler>> {
        self.input.as_ref()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("variables", &self.variables)
            .field("input_handler", &self.input.is_some())
            .finish()
    }
}

/// The link a request goes over, holding the session it runs for (if any) meanwhile.
enum Route<'a> {
    /// The session's own connection.
    Own(pool::Lease),
    /// The shared connection: for no session, or for a session that is only its headers
    /// (held, so it is neither reaped nor evicted while its request runs).
    Shared(&'a Link, Option<pool::Lease>),
}

/// A session's own list of a server's tools (see `hub/private.rs`), and what says whether
/// it is still fresh.
pub struct SessionTools {
    listing: Arc<ServerTools>,
    /// The hub's list it stands in for: a relist of the server makes this one stale too.
    shared: Arc<ServerTools>,
    seen: ToolsSeen,
    /// When its `ttlMs` runs out.
    fresh_until: Option<Instant>,
}

impl Route<'_> {
    /// The session held for the request, if it runs for one.
    fn lease(&self) -> Option<&pool::Lease> {
        match self {
            Route::Own(lease) | Route::Shared(_, Some(lease)) => Some(lease),
            Route::Shared(_, None) => None,
        }
    }

    fn link(&self) -> &Link {
        match self {
            Route::Shared(link, _) => link,
            Route::Own(lease) => match lease.conn() {
                Ok(link) => link,
                Err(_) => unreachable!("`Own` holds only sessions with their own connection"),
            },
        }
    }
}

/// The connections of one server.
pub struct ServerClients {
    shared: Link,
    pool: Option<SessionPool>,
    /// Calls in flight (one per live [`InFlight`]); receivers wait for it to reach zero.
    calls: watch::Sender<usize>,
}

/// One call in flight on a server's clients: counted from creation to drop, so a server
/// being drained knows when its last call has returned. Derefs to the clients.
pub struct InFlight {
    clients: Arc<ServerClients>,
}

impl Deref for InFlight {
    type Target = ServerClients;

    fn deref(&self) -> &ServerClients {
        &self.clients
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.clients.calls.send_modify(|calls| *calls -= 1);
    }
}

impl ServerClients {
    /// Clients of `server`, whose shared connection is `upstream` (already connected).
    /// `follow`: the shared connection listens for changes again after each reconnect (see
    /// [`Link::with_upstream`]).
    pub fn new(
        server: Arc<ServerConfig>,
        dial: Dial,
        upstream: Upstream,
        follow: bool,
    ) -> ServerClients {
        let pool = (server.session_mode == SessionMode::PerSession)
            .then(|| SessionPool::new(server.clone(), dial.clone()));
        ServerClients {
            shared: Link::with_upstream(server, dial, upstream, follow),
            pool,
            calls: watch::Sender::new(0),
        }
    }

    /// Counts one call in flight until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.calls.send_modify(|calls| *calls += 1);
        InFlight {
            clients: self.clone(),
        }
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        *self.calls.borrow()
    }

    /// Returns once no call is in flight (at once if none is). Woken by the last
    /// [`InFlight`] being dropped; nothing polls.
    pub async fn drained(&self) {
        let mut calls = self.calls.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = calls.wait_for(|calls| *calls == 0).await;
    }

    /// The shared connection.
    pub fn shared(&self) -> &Link {
        &self.shared
    }

    /// The per-session connections, for `per_session` servers.
    pub fn pool(&self) -> Option<&SessionPool> {
        self.pool.as_ref()
    }

    /// Calls `tool` over the session's connection (per-session servers, with a session) or
    /// the shared one. `repeatable`: see [`Link::call`].
    pub async fn call(
        &self,
        session: Option<&Session>,
        tool: &str,
        arguments: Option<JsonObject>,
        repeatable: bool,
        call: &Arc<CallContext>,
    ) -> Result<CallOutcome, Error> {
        let link = self.link_for(session, call)?;
        link.link()
            .call_with(tool, arguments, repeatable, call)
            .await
    }

    /// The link a request on behalf of `session` goes over: on `per_session` servers the
    /// session's own (leased for as long as the request runs), or the shared one carrying
    /// the session's headers (set on `call`) when the server keeps nothing per session;
    /// else the shared one.
    fn link_for(&self, session: Option<&Session>, call: &CallContext) -> Result<Route<'_>, Error> {
        let (Some(pool), Some(session)) = (&self.pool, session) else {
            return Ok(Route::Shared(&self.shared, None));
        };
        let sharing = self.shared.current().filter(|u| u.carries_sessions());
        let lease = pool.lease(&session.id, &session.variables, sharing.as_deref())?;
        match lease.conn() {
            Ok(_) => Ok(Route::Own(lease)),
            Err(headers) => {
                // One call, one session: set once (a retry keeps it).
                let _ = call.session_headers.set(headers.clone());
                Ok(Route::Shared(&self.shared, Some(lease)))
            }
        }
    }

    /// `session`'s own list of this server's tools (for a private list: see
    /// `hub/private.rs`), listed over the session's route within the server's
    /// `list_timeout`, or the one kept with the session while it is fresh: the hub's list
    /// (`shared`) is the same one, the route's connection heard of no change, and its
    /// `ttlMs` has not run out.
    pub async fn session_tools(
        &self,
        session: &Session,
        shared: &Arc<ServerTools>,
    ) -> Result<Arc<ServerTools>, Error> {
        let server = self.shared.server();
        let call = CallContext::fixed(Instant::now() + server.list_timeout);
        let route = self.link_for(Some(session), &call)?;
        let Some(lease) = route.lease() else {
            return Ok(shared.clone()); // not a per-session server: its list is the hub's
        };
        let link = route.link();
        if let Some(kept) = lease.tools() {
            let fresh = kept.fresh_until.is_none_or(|until| Instant::now() < until);
            if fresh && Arc::ptr_eq(&kept.shared, shared) && link.unchanged_since(&kept.seen) {
                return Ok(kept.listing.clone());
            }
        }
        let (tools, hints, seen) = link.list_tools(&call).await?;
        let listing = Arc::new(ServerTools::new(server, tools, hints.private));
        lease.keep_tools(Arc::new(SessionTools {
            listing: listing.clone(),
            shared: shared.clone(),
            seen,
            fresh_until: hints.fresh_for().map(|ttl| Instant::now() + ttl),
        }));
        Ok(listing)
    }

    /// Every item of list `L` as `session` gets it: over its route (as
    /// [`ServerClients::call`]), within the server's `list_timeout`.
    pub async fn list<L: ListKind>(
        &self,
        session: &Session,
    ) -> Result<(Vec<L::Item>, CacheHints), Error> {
        let call = CallContext::fixed(Instant::now() + self.shared.server().list_timeout);
        let route = self.link_for(Some(session), &call)?;
        route.link().list::<L>(&call).await
    }

    /// Reads the resource at `uri` (the server's own URI) over the session's connection or
    /// the shared one, like [`ServerClients::call`].
    pub async fn read_resource(
        &self,
        session: Option<&Session>,
        uri: &str,
        call: &Arc<CallContext>,
    ) -> Result<ResourceRead, Error> {
        let link = self.link_for(session, call)?;
        link.link().read_resource(uri, call).await
    }

    /// Subscribes (or unsubscribes) `session`'s connection (the shared one for a shared
    /// server) to the resource at `uri` (the server's own URI).
    pub async fn subscribe_resource(
        &self,
        session: Option<&Session>,
        uri: &str,
        subscribe: bool,
        call: &Arc<CallContext>,
    ) -> Result<(), Error> {
        let link = self.link_for(session, call)?;
        link.link().subscribe_resource(uri, subscribe, call).await
    }

    /// Gets the prompt `name` (the server's own name), like [`ServerClients::call`].
    pub async fn get_prompt(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        call: &Arc<CallContext>,
    ) -> Result<PromptOutcome, Error> {
        let link = self.link_for(session, call)?;
        link.link().get_prompt(name, arguments, call).await
    }

    /// Closes per-session connections idle for at least `max_age`; returns how many.
    pub async fn cleanup(&self, max_age: Duration) -> usize {
        match &self.pool {
            Some(pool) => pool.cleanup(max_age).await,
            None => 0,
        }
    }

    /// Closes session `id`'s own connection as `mode` says (see [`SessionPool::end`]);
    /// whether it had one.
    pub async fn end_session(&self, id: &str, mode: SessionClose) -> bool {
        match &self.pool {
            Some(pool) => pool.end(id, mode).await,
            None => false,
        }
    }

    pub async fn close(&self) {
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
        self.shared.close().await;
    }

    /// Kills the process groups of stdio connections at once (SIGKILL), synchronously,
    /// leaving the rest to [`ServerClients::close`] if it still runs. For a hub dropped
    /// without `close`, and for a close that ran out of time.
    pub fn kill(&self) {
        if let Some(pool) = &self.pool {
            pool.kill();
        }
        self.shared.kill();
    }
}
