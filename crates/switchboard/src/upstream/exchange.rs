//! One request and its answer, cancelled at the server when its caller stops waiting: what
//! a tool call, a resource read and a prompt get share.

use std::time::Duration;

use rmcp::model::{CancelledNotificationParam, ClientRequest, RequestId, ServerResult};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, ServiceError};

use super::Upstream;
use crate::Error;

impl Upstream {
    /// Sends `request` with `budget` as its timeout (rmcp cancels it at the server when it
    /// runs out) and waits for the answer; dropping the future cancels it too. The outer
    /// error is a request that never reached the transport (not sent); the inner one is
    /// rmcp's, for the caller to classify.
    pub(super) async fn exchange(
        &self,
        request: ClientRequest,
        budget: Duration,
    ) -> Result<Result<ServerResult, ServiceError>, Error> {
        let handle = self
            .peer
            .send_request_with_option(request, PeerRequestOptions::with_timeout(budget))
            .await
            .map_err(|_| self.lost_before_sending())?;
        let guard = CancelOnDrop {
            peer: &self.peer,
            id: Some(handle.id.clone()),
        };
        let response = handle.await_response().await;
        guard.disarm();
        Ok(response)
    }
}

/// Sends `notifications/cancelled` for a request whose caller stopped waiting.
struct CancelOnDrop<'a> {
    peer: &'a Peer<RoleClient>,
    id: Option<RequestId>,
}

impl CancelOnDrop<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        let params =
            CancelledNotificationParam::new(Some(id), Some("the caller stopped waiting".into()));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = peer.notify_cancelled(params).await;
            });
        }
    }
}
