//! The downstream MCP sessions (2025-11-25) as the hot path (`hot.rs`) sees them: each
//! session's engine session, its client's peer, and whether its client declared anything a
//! call might ask of it.
//!
//! [`HotSessions`] wraps the gateway's session manager (rmcp's local one, or `[scale]`'s
//! sealed one): it tags each `initialize` (a new session's, or a restore's replay) with the
//! session's id and rmcp's handle of it; the handler then registers the session
//! ([`SessionTag::register`]). rmcp closes every session through the manager when its
//! service ends, however it ended (`DELETE`, idle expiry, an end announced by another
//! replica, shutdown), and the registry forgets it then. The hot path's
//! calls never reach rmcp's session worker, whose idle timer restarts only on what it
//! sees, so [`Registry::touch`] shows it a session in use now and then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::Stream;
#[allow(deprecated)] // logging (SEP-2577): clients of older revisions still set a level
use rmcp::model::LoggingLevel;
use rmcp::model::{ClientJsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionHandle, LocalSessionManager,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use rmcp::{Peer, RoleServer};
use switchboard::Session;
use tokio_util::sync::CancellationToken;

/// A session manager built on rmcp's `LocalSessionManager` (whose handles [`Registry::touch`]
/// uses).
pub trait LocalBacked {
    fn local(&self) -> &LocalSessionManager;
}

/// The session manager `M`, tagging each `initialize` for the hot path's [`Registry`].
pub struct HotSessions<M> {
    inner: Arc<M>,
    registry: Arc<Registry>,
}

impl<M> HotSessions<M> {
    pub fn new(inner: Arc<M>, registry: Arc<Registry>) -> HotSessions<M> {
        HotSessions { inner, registry }
    }
}

/// Session id -> what the hot path needs of that session.
pub struct Registry {
    sessions: RwLock<HashMap<SessionId, Arc<SessionEntry>>>,
    /// How often a session served only by the hot path is shown to rmcp.
    touch_every: Duration,
}

/// What `initialize` finds in its message's extensions: where to register its session.
#[derive(Clone)]
pub(crate) struct SessionTag {
    registry: Arc<Registry>,
    id: SessionId,
    handle: LocalSessionHandle,
}

/// One downstream session, as the hot path sees it.
pub(crate) struct SessionEntry {
    /// The session's id (`Mcp-Session-Id`).
    pub id: SessionId,
    /// The session's own engine session.
    pub own: Session,
    /// The client's side of the session (log messages go there).
    pub peer: Peer<RoleServer>,
    /// The client declared none of elicitation, sampling and roots, and the revision agreed
    /// is before 2026-07-28: nothing a call may bring needs rmcp's pipeline.
    pub plain: bool,
    /// The session's `logging/setLevel`, shared with its handler.
    #[allow(deprecated)]
    pub log_level: Arc<Mutex<Option<LoggingLevel>>>,
    /// Cancelled when the session ends (its handler is dropped): the hot path's calls in
    /// it end unanswered, as rmcp's handlers would, and it serves no more.
    pub ended: CancellationToken,
    /// The requests the hot path is serving, each with its own number (a client may use an
    /// id twice): cancelled by `notifications/cancelled`.
    pub in_flight: Mutex<HashMap<RequestId, (u64, CancellationToken)>>,
    /// Numbers the requests in `in_flight`.
    pub served: std::sync::atomic::AtomicU64,
    /// rmcp's handle of the session (see [`Registry::touch`]).
    handle: LocalSessionHandle,
    /// When rmcp last saw the session.
    touched: Mutex<Instant>,
}

impl Registry {
    /// For sessions that end after `idle` without requests.
    pub fn new(idle: Duration) -> Registry {
        Registry {
            sessions: RwLock::default(),
            // Often enough that a session in use never reaches `idle` unseen; one that only
            // the hot path served ends at most this much before `idle` has passed.
            touch_every: (idle / 10).min(Duration::from_secs(30)),
        }
    }

    /// The session `id`, if it is open and registered.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<SessionEntry>> {
        let sessions = self.sessions.read().unwrap_or_else(|p| p.into_inner());
        sessions.get(id).cloned()
    }

    /// Shows `entry`'s session to rmcp when it has not seen it for a while, which restarts
    /// its idle timer: rmcp's session worker restarts it on every event it receives (its
    /// loop in `session/local.rs`; not a documented promise, so `it::hot` checks it).
    pub(crate) async fn touch(&self, entry: &SessionEntry) {
        {
            let mut touched = entry.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched.elapsed() < self.touch_every {
                return;
            }
            *touched = Instant::now();
        }
        // Closing a request stream that does not exist is an event that does nothing.
        let _ = entry.handle.close_request_wise_channel(u64::MAX).await;
    }

    /// Touches `entry`'s session for as long as it is polled (a call running).
    pub(crate) async fn keep_alive(&self, entry: &SessionEntry) {
        loop {
            tokio::time::sleep(self.touch_every).await;
            self.touch(entry).await;
        }
    }

    fn forget(&self, id: &SessionId) {
        let mut sessions = self.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.remove(id);
    }
}

impl SessionTag {
    /// Registers the tagged session (its `initialize` is being answered).
    #[allow(deprecated)]
    pub(crate) fn register(
        &self,
        own: Session,
        peer: Peer<RoleServer>,
        plain: bool,
        log_level: Arc<Mutex<Option<LoggingLevel>>>,
        ended: CancellationToken,
    ) {
        let entry = SessionEntry {
            id: self.id.clone(),
            own,
            peer,
            plain,
            log_level,
            ended,
            in_flight: Mutex::default(),
            served: Default::default(),
            handle: self.handle.clone(),
            touched: Mutex::new(Instant::now()),
        };
        let registry = &self.registry;
        let mut sessions = registry.sessions.write().unwrap_or_else(|p| p.into_inner());
        sessions.insert(self.id.clone(), Arc::new(entry));
    }
}

impl<M> SessionManager for HotSessions<M>
where
    M: SessionManager + LocalBacked,
{
    type Error = M::Error;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        let handle = self.inner.local().sessions.read().await.get(id).cloned();
        if let Some(handle) = handle {
            message.insert_extension(SessionTag {
                registry: self.registry.clone(),
                id: id.clone(),
                handle,
            });
        }
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        // (Also called by rmcp when the session's service ends, however it ended.)
        self.registry.forget(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_stream(id, message).await
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
