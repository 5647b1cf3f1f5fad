//! [`SealedSessions`]: rmcp's session manager with sealed ids (docs/scale-out-design.md
//! a.6). It is rmcp's `LocalSessionManager` in all but two things: `create_session` mints
//! a sealed id (for the identity [`SessionGate`](super::gate) computed from the
//! `initialize` request, handed over in a task-local while rmcp handles that request), and
//! `initialize_session` tells the handler its own id (an [`OwnSessionId`] extension on the
//! `initialize` message, also on a restore's replay). And a session restored here gets
//! `notifications/tools/list_changed` (and the resources and prompts ones) first on its
//! first standalone GET stream here, opened or resumed (design a.6-6): whatever changed
//! while its client's stream was on another replica was told there, or lost with it; a
//! relist is cheap and correct.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use rmcp::model::{
    ClientJsonRpcMessage, PromptListChangedNotification, ResourceListChangedNotification,
    ServerJsonRpcMessage, ServerNotification, ToolListChangedNotification,
};
use rmcp::transport::WorkerTransport;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError, LocalSessionWorker, create_local_session,
};
use rmcp::transport::streamable_http_server::session::{
    RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

use super::Scale;
use super::token::{Token, now};
use crate::lost_streams::{create_stream, resume, standalone};

tokio::task_local! {
    /// The binding of the identity whose `initialize` rmcp is handling (set by the gate).
    pub(super) static MINTING: [u8; 16];
}

/// The sealed id of the session an `initialize` message opens (or restores).
#[derive(Debug, Clone)]
pub struct OwnSessionId(pub SessionId);

/// See the module docs.
pub struct SealedSessions {
    inner: LocalSessionManager,
    scale: Arc<Scale>,
    /// Sessions restored here that have not opened a standalone stream since.
    restored: Mutex<HashSet<SessionId>>,
}

impl SealedSessions {
    /// `inner` carries the session config (keep-alive).
    pub fn new(inner: LocalSessionManager, scale: Arc<Scale>) -> SealedSessions {
        SealedSessions {
            inner,
            scale,
            restored: Mutex::new(HashSet::new()),
        }
    }

    fn restored(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        // A plain set: still usable after a panic elsewhere.
        self.restored.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a restored session's first standalone stream starts with.
fn relist() -> Vec<ServerSseMessage> {
    [
        ServerNotification::ToolListChangedNotification(ToolListChangedNotification::default()),
        ServerNotification::ResourceListChangedNotification(
            ResourceListChangedNotification::default(),
        ),
        ServerNotification::PromptListChangedNotification(PromptListChangedNotification::default()),
    ]
    .into_iter()
    .map(|n| ServerSseMessage::from_message(ServerJsonRpcMessage::notification(n)))
    .collect()
}

impl crate::mcp::LocalBacked for SealedSessions {
    fn local(&self) -> &LocalSessionManager {
        &self.inner
    }
}

impl SessionManager for SealedSessions {
    type Error = LocalSessionManagerError;
    type Transport = WorkerTransport<LocalSessionWorker>;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let scale = &self.scale;
        let binding = MINTING
            .try_with(|binding| *binding)
            .unwrap_or_else(|_| scale.anonymous_binding());
        let lifetime = scale.lifetime.as_secs();
        let token = Token::new(&scale.ring, binding, now(), lifetime);
        let id: SessionId = token.seal(&scale.ring).into();
        let (handle, worker) = create_local_session(id.clone(), self.inner.session_config.clone());
        self.inner.sessions.write().await.insert(id.clone(), handle);
        Ok((id, WorkerTransport::spawn(worker)))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        message.insert_extension(OwnSessionId(id.clone()));
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.restored().remove(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        create_stream(&self.inner, id, message).await
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
        let stream = standalone(&self.inner, id).await?;
        let first = match self.restored().remove(id) {
            true => relist(),
            false => Vec::new(),
        };
        Ok(futures::stream::iter(first).chain(stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // The standalone stream's event ids have no `/` (a request stream's do): a client
        // reconnecting that stream after its first event resumes it rather than opening it.
        let standalone = !last_event_id.contains('/');
        let resumed = match resume(&self.inner, id, last_event_id).await {
            Ok(stream) => stream,
            Err(error) => {
                // rmcp answers a failed resume with an empty 200 stream; we say 410.
                crate::lost_streams::note_failed_resume();
                return Err(error);
            }
        };
        let first = match standalone && self.restored().remove(id) {
            true => relist(),
            false => Vec::new(),
        };
        Ok(futures::stream::iter(first).chain(resumed))
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        let outcome = self.inner.restore_session(id.clone()).await?;
        if matches!(outcome, RestoreOutcome::Restored(_)) {
            // Sessions that idled out before their client opened a stream go here.
            let live = self.inner.sessions.read().await;
            let mut restored = self.restored();
            restored.retain(|held| live.contains_key(held));
            restored.insert(id);
        }
        Ok(outcome)
    }
}
