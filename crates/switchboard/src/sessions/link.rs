//! A resilient connection to one server (for everybody, or for one session).
//!
//! A [`Link`] holds the current [`Upstream`] and opens a new one when it is lost:
//!
//! - **One reconnect for many failures.** Connecting runs under the link's own async lock;
//!   callers that find the connection gone wait for the one cycle in progress and share its
//!   result. Other links (other sessions, other servers) are never involved.
//! - **Bounded cycles.** A cycle makes up to `reconnect.max_attempts` connects with
//!   exponential backoff between them. When it fails the link *backs off*: calls fail fast
//!   (unreachable, saying when the next attempt is) until the backoff has passed, and the next
//!   call then starts a new cycle. A link is never dead for good.
//! - **Never twice by accident.** What happens after a failed call follows the error's
//!   [`Delivery`], decided by the transport: a call that provably never left (connection
//!   refused or found dead before sending) is sent again after reconnecting. A call that may
//!   have run (any HTTP status, a reset or cut-off answer, a server that died after reading
//!   it) is sent again only when the caller says the tool is safe to repeat (`readOnlyHint` /
//!   `idempotentHint`; resource reads and prompt gets always are: they change nothing),
//!   after the server's `Retry-After` or a short backoff, and only within
//!   the call's deadline; otherwise the caller gets an error that says it may have run. A call
//!   that timed out is never sent again. One call is sent at most [`MAX_SENDS`] times.
//! - **A live connection is kept.** Only a connection that is dead (or refused a request
//!   before it was sent) is replaced; an HTTP error status leaves the session in place.
//! - **Close ends every call at once.** A call still waiting for a connection (or pausing
//!   before a resend) fails with `Closed` and is never sent; one in flight is dropped, which
//!   cancels it at the server, and fails saying it may have run.
//! - **Subscriptions outlive connections.** The resources subscribed to over the link
//!   ([`Link::subscribe_resource`], counted per URI: the server is told to unsubscribe when
//!   the last subscriber leaves) are subscribed to again on each new connection.
//! - **State for health**: [`Link::status`] says connecting / ready / backing off / closed,
//!   with the last error's class and message and the time of the last success.
//!
//! Streamable HTTP session expiry (404 after a server restart) is handled below this layer:
//! rmcp re-initializes and resends once, transparently.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use rmcp::model::{JsonObject, Tool};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;
use crate::error::{Delivery, Error, ErrorReport, Phase};
use crate::sync::lock;
use crate::upstream::interaction::CallContext;
use crate::upstream::listing::{ListKind, ToolList};
use crate::upstream::{
    CacheHints, CallOutcome, PromptOutcome, ResourceRead, SessionClose, SessionRef, Upstream,
    UpstreamEvent,
};

/// Opens a new upstream connection to a server, for a session (its id and variables) when
/// it is a session's own. The hub makes one from a [`crate::Connector`] and the config's
/// variables.
pub type Dial = Arc<
    dyn Fn(Arc<ServerConfig>, Option<SessionRef>) -> BoxFuture<'static, Result<Upstream, Error>>
        + Send
        + Sync,
>;

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected yet (a session's link before its first call).
    Idle,
    Connecting,
    Ready,
    /// The last reconnect cycle failed; the next one starts after `until`.
    BackingOff {
        until: Instant,
    },
    Closed,
}

/// Where a connection stood when a list of tools was taken: which connection, and how many
/// tool changes it had heard of.
pub struct ToolsSeen {
    upstream: std::sync::Weak<Upstream>,
    changes: u64,
}

/// A link's state with its last error and last success, for health views.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    pub state: LinkState,
    pub last_error: Option<ErrorReport>,
    pub last_success: Option<SystemTime>,
    /// The MCP revision the current connection speaks (none while not connected).
    pub protocol_version: Option<String>,
}

/// A resilient connection; see the module docs.
pub struct Link {
    server: Arc<ServerConfig>,
    /// The session whose own connection this is (none: the server's shared one).
    session: Option<SessionRef>,
    dial: Dial,
    current: Mutex<Current>,
    /// Held while connecting: one cycle at a time.
    connecting: tokio::sync::Mutex<()>,
    /// `list_changed` events from whichever upstream is current, plus one of each kind
    /// after a reconnect.
    events: broadcast::Sender<UpstreamEvent>,
    /// Cancelled by [`Link::close`]: wakes every call waiting on this link.
    closing: CancellationToken,
    /// Each new upstream opens its change subscription before it is used
    /// ([`Upstream::listen`]); set on a server's shared link, whose changes the hub follows.
    listens: bool,
    /// The server's URIs subscribed to over this link, with how many subscribers each has.
    subscriptions: Mutex<std::collections::BTreeMap<String, usize>>,
}

struct Current {
    upstream: Option<Arc<Upstream>>,
    /// Bumped for every new upstream, so a failure reported against an old one is ignored.
    generation: u64,
    state: LinkState,
    /// Consecutive failed connect attempts (grows the backoff across cycles).
    failures: u32,
    last_error: Option<ErrorReport>,
    last_success: Option<SystemTime>,
}

/// The most times one call is sent (the first send included).
pub const MAX_SENDS: u32 = 3;

/// Whether a failed call is sent again, and after what.
#[derive(Debug, PartialEq)]
enum Next {
    /// Return the error to the caller.
    Fail,
    /// Reconnect (the connection is gone), then send again.
    Reconnect,
    /// Send again on the same connection after this pause.
    Pause(Duration),
}

impl Link {
    /// A link that connects on first use (for `session`, if it is a session's own).
    pub fn new(server: Arc<ServerConfig>, session: Option<SessionRef>, dial: Dial) -> Link {
        let (events, _) = broadcast::channel(16);
        Link {
            server,
            session,
            dial,
            current: Mutex::new(Current {
                upstream: None,
                generation: 0,
                state: LinkState::Idle,
                failures: 0,
                last_error: None,
                last_success: None,
            }),
            connecting: tokio::sync::Mutex::new(()),
            events,
            closing: CancellationToken::new(),
            listens: false,
            subscriptions: Mutex::default(),
        }
    }

    /// A link over an upstream that is already connected (and listening, if `listens`),
    /// whose later upstreams listen for changes when `listens`.
    pub fn with_upstream(
        server: Arc<ServerConfig>,
        dial: Dial,
        upstream: Upstream,
        listens: bool,
    ) -> Link {
        let mut link = Link::new(server, None, dial);
        link.listens = listens;
        link.install(upstream);
        link
    }

    pub fn server(&self) -> &ServerConfig {
        &self.server
    }

    /// The `list_changed` events of the current upstream, and one of each kind after every
    /// reconnect (what the server offers may differ on the new connection).
    pub fn subscribe(&self) -> broadcast::Receiver<UpstreamEvent> {
        self.events.subscribe()
    }

    /// The current upstream, if connected (no connecting).
    pub fn current(&self) -> Option<Arc<Upstream>> {
        lock(&self.current).upstream.clone()
    }

    /// [`Upstream::tools_stale_after`] of the current upstream, if connected.
    pub fn tools_stale_after(&self) -> Option<Duration> {
        let current = lock(&self.current);
        current.upstream.as_ref()?.tools_stale_after()
    }

    /// [`Upstream::tool_changes`] of the current upstream, if connected.
    pub fn tool_changes(&self) -> Option<u64> {
        lock(&self.current)
            .upstream
            .as_ref()
            .map(|u| u.tool_changes())
    }

    pub fn status(&self) -> LinkStatus {
        let current = lock(&self.current);
        LinkStatus {
            state: current.state,
            last_error: current.last_error.clone(),
            last_success: current.last_success,
            protocol_version: current.upstream.as_ref().and_then(|u| u.protocol_version()),
        }
    }

    /// [`Link::call_with`] a fixed deadline (for tests).
    #[cfg(test)]
    pub async fn call(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        repeatable: bool,
        deadline: Instant,
    ) -> Result<CallOutcome, Error> {
        let call = CallContext::fixed(deadline);
        self.call_with(tool, arguments, repeatable, &call).await
    }

    /// Calls `tool` (the server's own name), reconnecting and resending as the module docs
    /// say. `repeatable`: the tool may run twice (`readOnlyHint` / `idempotentHint`). The
    /// deadline is `call`'s, read each time it matters (progress may move it); its progress
    /// and its server's requests go to it.
    pub async fn call_with(
        &self,
        tool: &str,
        arguments: Option<JsonObject>,
        repeatable: bool,
        call: &Arc<CallContext>,
    ) -> Result<CallOutcome, Error> {
        let mut arguments = arguments;
        let send = |upstream: Arc<Upstream>, last: bool| {
            // The last send needs no copy.
            let sending = if last {
                arguments.take()
            } else {
                arguments.clone()
            };
            async move { upstream.call_tool_with(tool, sending, call).await }
        };
        self.request(tool, repeatable, call, send).await
    }

    /// Reads the resource at `uri` (the server's own URI) for `call` (its deadline, its
    /// input handler). Reading has no effect at the server, so a read lost in flight is sent
    /// again like a read-only tool call.
    pub async fn read_resource(
        &self,
        uri: &str,
        call: &Arc<CallContext>,
    ) -> Result<ResourceRead, Error> {
        let send = |upstream: Arc<Upstream>, _| async move {
            upstream.read_resource_with(uri, call).await
        };
        self.request(uri, true, call, send).await
    }

    /// Subscribes (or unsubscribes) this connection to the resource at `uri`; sent again
    /// after a lost connection like [`Link::read_resource`] (it is idempotent).
    pub async fn subscribe_resource(
        &self,
        uri: &str,
        subscribe: bool,
        call: &Arc<CallContext>,
    ) -> Result<(), Error> {
        if !subscribe {
            let mut subscriptions = lock(&self.subscriptions);
            match subscriptions.get_mut(uri) {
                // Others still subscribed over this link: the server keeps it.
                Some(count) if *count > 1 => {
                    *count -= 1;
                    return Ok(());
                }
                Some(_) => {
                    subscriptions.remove(uri);
                }
                None => {}
            }
        }
        let send = |upstream: Arc<Upstream>, _| async move {
            upstream.subscribe_with(uri, subscribe, call).await
        };
        self.request(uri, true, call, send).await?;
        if subscribe {
            *lock(&self.subscriptions).entry(uri.to_owned()).or_default() += 1;
        }
        Ok(())
    }

    /// Subscribes a new connection to what the link is subscribed to, before anything else
    /// is sent on it, each within the server's `list_timeout` (a failure is logged: the
    /// subscriber hears of no updates until it subscribes again).
    async fn resubscribe(&self, upstream: &Upstream) {
        let uris: Vec<String> = lock(&self.subscriptions).keys().cloned().collect();
        for uri in uris {
            let call = CallContext::fixed(Instant::now() + self.server.list_timeout);
            if let Err(error) = upstream.subscribe_with(&uri, true, &call).await {
                tracing::warn!(
                    server = %self.server.name,
                    uri,
                    "could not subscribe again after reconnecting: {error}"
                );
            }
        }
    }

    /// Gets the prompt `name` (the server's own name); read-only, like
    /// [`Link::read_resource`].
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        call: &Arc<CallContext>,
    ) -> Result<PromptOutcome, Error> {
        let send = |upstream: Arc<Upstream>, _| {
            let arguments = arguments.clone();
            async move { upstream.get_prompt_with(name, arguments, call).await }
        };
        self.request(name, true, call, send).await
    }

    /// Lists the server's tools for `call` (a session's own list: see `hub/private.rs`),
    /// with what the list says of caching it and where the connection stood before the
    /// listing (see [`Link::unchanged_since`]). Read-only, like [`Link::read_resource`].
    pub async fn list_tools(
        &self,
        call: &Arc<CallContext>,
    ) -> Result<(Vec<Tool>, CacheHints, ToolsSeen), Error> {
        let send = |upstream: Arc<Upstream>, _| async move {
            let seen = ToolsSeen {
                changes: upstream.tool_changes(),
                upstream: Arc::downgrade(&upstream),
            };
            let (tools, hints) = upstream.list::<ToolList>(call).await?;
            Ok((tools, hints, seen))
        };
        self.request("tools/list", true, call, send).await
    }

    /// Every item of list `L` for `call` (a session's own list). Read-only, like
    /// [`Link::read_resource`].
    pub async fn list<L: ListKind>(
        &self,
        call: &Arc<CallContext>,
    ) -> Result<(Vec<L::Item>, CacheHints), Error> {
        let send = |upstream: Arc<Upstream>, _| async move { upstream.list::<L>(call).await };
        self.request(L::METHOD, true, call, send).await
    }

    /// Whether the tools listed when `seen` was taken may still be current: the same
    /// connection is up and has heard of no change since (a reconnect may have missed one).
    pub fn unchanged_since(&self, seen: &ToolsSeen) -> bool {
        let current = lock(&self.current);
        current.upstream.as_ref().is_some_and(|now| {
            std::ptr::eq(Arc::as_ptr(now), seen.upstream.as_ptr())
                && now.tool_changes() == seen.changes
        })
    }

    /// Sends one request with `send` (given the upstream and whether this is the last
    /// send), reconnecting and resending as the module docs say, within `call`'s deadline
    /// (read each time it matters: progress may move it). `what` names it in logs;
    /// `repeatable`: running it twice is safe.
    async fn request<T, F, Fut>(
        &self,
        what: &str,
        repeatable: bool,
        call: &Arc<CallContext>,
        mut send: F,
    ) -> Result<T, Error>
    where
        F: FnMut(Arc<Upstream>, bool) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut sends = 0;
        loop {
            let connecting = self.upstream(call.deadline());
            let Some(connected) = self.unless_closing(connecting).await else {
                return Err(self.closing_error());
            };
            let (upstream, generation) = connected?;
            sends += 1;
            let request = send(upstream.clone(), sends == MAX_SENDS);
            let Some(result) = self.unless_closing(request).await else {
                return Err(Error::MayHaveRun {
                    source: Box::new(self.closing_error()),
                });
            };
            let error = match result {
                Ok(outcome) => {
                    lock(&self.current).last_success = Some(SystemTime::now());
                    return Ok(outcome);
                }
                Err(error) => error,
            };
            let alive = upstream.is_alive();
            let next = self.after_failure(&error, alive, repeatable, sends);
            // A dead connection (or one to reconnect) is replaced; either way the failure is
            // the link's last error, unless the server answered.
            if !alive || matches!(next, Next::Reconnect) {
                self.drop_upstream(generation, &error);
            } else if error.delivery() != Delivery::Answered {
                lock(&self.current).last_error = Some(ErrorReport::now(&error));
            }
            match next {
                Next::Fail => return Err(error),
                Next::Reconnect => {}
                Next::Pause(pause) => {
                    if Instant::now() + pause >= call.deadline() {
                        return Err(error);
                    }
                    let pause = tokio::time::sleep(pause);
                    if self.unless_closing(pause).await.is_none() {
                        return Err(self.closing_error());
                    }
                }
            }
            tracing::debug!(
                server = %self.server.name,
                request = what,
                delivery = error.delivery().as_str(),
                "sending the request again: {error}"
            );
        }
    }

    /// `future`'s output, or `None` once the link is closing. Closing is checked first: a
    /// call that fails because its connection is being closed says so.
    async fn unless_closing<F: Future>(&self, future: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            () = self.closing.cancelled() => None,
            output = future => Some(output),
        }
    }

    fn closing_error(&self) -> Error {
        Error::Closed {
            server: self.server.name.clone(),
            reason: Some("closing".to_string()),
        }
    }

    /// What to do after send number `sends` failed with `error`.
    fn after_failure(&self, error: &Error, alive: bool, repeatable: bool, sends: u32) -> Next {
        if sends >= MAX_SENDS {
            return Next::Fail;
        }
        let again = match error.delivery() {
            // Only connection failures are worth a new connection; a refused request
            // (auth, bad URL) would be refused again.
            Delivery::NotSent => matches!(error, Error::Unreachable { .. } | Error::Closed { .. }),
            Delivery::MaybeSent => repeatable && !matches!(error, Error::Timeout { .. }),
            Delivery::Answered => false,
        };
        if !again {
            return Next::Fail;
        }
        if let Some(wait) = error.retry_after() {
            return Next::Pause(wait);
        }
        if !alive || error.delivery() == Delivery::NotSent {
            return Next::Reconnect;
        }
        Next::Pause(self.server.reconnect.backoff(sends))
    }

    /// A usable upstream and its generation, connecting if needed (within `deadline`).
    pub async fn upstream(&self, deadline: Instant) -> Result<(Arc<Upstream>, u64), Error> {
        if let Some(found) = self.usable_or_backoff()? {
            return Ok(found);
        }
        let _cycle = match tokio::time::timeout_at(deadline, self.connecting.lock()).await {
            Ok(guard) => guard,
            Err(_) => return Err(self.connect_timeout()),
        };
        // Someone else's cycle may have finished while we waited.
        if let Some(found) = self.usable_or_backoff()? {
            return Ok(found);
        }
        self.reconnect(deadline).await
    }

    /// The live upstream, or `None` to connect, or the backoff error.
    fn usable_or_backoff(&self) -> Result<Option<(Arc<Upstream>, u64)>, Error> {
        let current = lock(&self.current);
        if let Some(upstream) = current.upstream.as_ref().filter(|u| u.is_alive()) {
            return Ok(Some((upstream.clone(), current.generation)));
        }
        match current.state {
            LinkState::BackingOff { until } if Instant::now() < until => Err(Error::BackingOff {
                server: self.server.name.clone(),
                retry_in: until - Instant::now(),
                last: current.last_error.clone().map(Box::new),
            }),
            LinkState::Closed => Err(Error::Closed {
                server: self.server.name.clone(),
                reason: Some("the connection was closed".to_string()),
            }),
            _ => Ok(None),
        }
    }

    /// One reconnect cycle (the caller holds `connecting`).
    async fn reconnect(&self, deadline: Instant) -> Result<(Arc<Upstream>, u64), Error> {
        let old = {
            let mut current = lock(&self.current);
            current.state = LinkState::Connecting;
            current.upstream.take()
        };
        if let Some(old) = old {
            tokio::spawn(async move { old.close().await });
        }
        let policy = self.server.reconnect;
        let mut last = None;
        for attempt in 1..=policy.max_attempts {
            let dial = (self.dial)(self.server.clone(), self.session.clone());
            let dial = async {
                let upstream = dial.await?;
                if self.listens {
                    upstream.listen().await;
                }
                self.resubscribe(&upstream).await;
                Ok(upstream)
            };
            let error = match tokio::time::timeout_at(deadline, dial).await {
                Ok(Ok(upstream)) => {
                    let (upstream, generation) = self.install(upstream);
                    if generation > 1 {
                        // What the server offers may differ on the new connection.
                        for event in [
                            UpstreamEvent::ToolsChanged,
                            UpstreamEvent::ResourcesChanged,
                            UpstreamEvent::PromptsChanged,
                        ] {
                            let _ = self.events.send(event);
                        }
                    }
                    return Ok((upstream, generation));
                }
                Ok(Err(error)) => error,
                Err(_) => self.connect_timeout(),
            };
            tracing::debug!(server = %self.server.name, attempt, "connect failed: {error}");
            let backoff = {
                let mut current = lock(&self.current);
                current.failures += 1;
                current.last_error = Some(ErrorReport::now(&error));
                policy.backoff(current.failures)
            };
            let timed_out = matches!(error, Error::Timeout { .. }) && Instant::now() >= deadline;
            last = Some(error);
            if timed_out {
                break;
            }
            if attempt < policy.max_attempts {
                if Instant::now() + backoff >= deadline {
                    break;
                }
                tokio::time::sleep(backoff).await;
            }
        }
        let mut current = lock(&self.current);
        let backoff = policy.backoff(current.failures.max(1));
        current.state = LinkState::BackingOff {
            until: Instant::now() + backoff,
        };
        Err(last.unwrap_or_else(|| self.connect_timeout()))
    }

    /// Makes `upstream` the current one; returns it with its generation.
    fn install(&self, upstream: Upstream) -> (Arc<Upstream>, u64) {
        let upstream = Arc::new(upstream);
        let mut events = upstream.subscribe();
        let forward = self.events.clone();
        tokio::spawn(async move {
            // Ends when the upstream (and its sender) is dropped.
            while let Ok(event) = events.recv().await {
                let _ = forward.send(event);
            }
        });
        let mut current = lock(&self.current);
        current.upstream = Some(upstream.clone());
        current.generation += 1;
        current.state = LinkState::Ready;
        current.failures = 0;
        current.last_success = Some(SystemTime::now());
        (upstream, current.generation)
    }

    /// Forgets the upstream of `generation` after a connection failure (closed in the
    /// background); a newer upstream is left alone.
    fn drop_upstream(&self, generation: u64, error: &Error) {
        let old = {
            let mut current = lock(&self.current);
            current.last_error = Some(ErrorReport::now(error));
            if current.generation != generation {
                return;
            }
            current.state = LinkState::Idle;
            current.upstream.take()
        };
        if let Some(old) = old {
            tokio::spawn(async move { old.close().await });
        }
    }

    fn connect_timeout(&self) -> Error {
        Error::Timeout {
            server: self.server.name.clone(),
            phase: Phase::Connect,
            after: self.server.connect_timeout,
        }
    }

    /// Kills the current connection's process group (stdio) at once; see
    /// [`Upstream::kill_process_group`].
    pub fn kill(&self) {
        let current = lock(&self.current).upstream.clone();
        if let Some(upstream) = current {
            upstream.kill_process_group();
        }
    }

    /// Closes the connection; later calls fail with `Closed`. A session's shared upstream
    /// session is only detached from (see [`SessionClose`]).
    pub async fn close(&self) {
        self.close_as(SessionClose::Detach).await;
    }

    /// Closes the connection as `mode` says; later calls fail with `Closed`.
    pub async fn close_as(&self, mode: SessionClose) {
        self.closing.cancel();
        let old = {
            let mut current = lock(&self.current);
            current.state = LinkState::Closed;
            current.upstream.take()
        };
        if let Some(old) = old {
            old.close_as(mode).await;
        }
    }
}

#[cfg(test)]
mod tests;
