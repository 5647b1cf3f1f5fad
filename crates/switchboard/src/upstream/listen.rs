//! Change notifications from 2026-07-28 servers. Those have no GET stream and send nothing
//! unasked: a client that wants `notifications/tools/list_changed` opens a
//! `subscriptions/listen` request, whose response stream carries them for as long as it
//! stays open. [`Upstream::listen`] opens one (rmcp's `Peer::listen`) and turns what arrives
//! into the same [`UpstreamEvent`]s a classic server's unsolicited notifications give, so the
//! hub's watcher does not know which revision a server speaks.
//!
//! Only the hub's shared connection to a server listens; per-session connections do not
//! (a modern per-session connection holds no stream at all while idle).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{ServerCapabilities, ServerNotification, SubscriptionFilter};
use rmcp::service::{Peer, RoleClient, Subscription};
use tokio::sync::broadcast;

use super::{Upstream, UpstreamEvent};

/// Pauses before opening a subscription again after the server ended one (the connection
/// still up), doubling; after the last one the upstream stops listening.
const RELISTEN: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
];

impl Upstream {
    /// On a 2026-07-28 connection whose server says its tools can change, opens a
    /// `subscriptions/listen` for them and waits (within `list_timeout`) for the server's
    /// acknowledgment, so a change after this returns is never missed. What arrives then
    /// becomes [`UpstreamEvent::ToolsChanged`] (and counts in [`Upstream::tool_changes`])
    /// until the connection closes. If the server ends the subscription, it is opened again
    /// (a few times, with pauses) and a `ToolsChanged` covers the gap.
    ///
    /// Returns whether a subscription is open. A server that refuses or does not answer is
    /// logged and left without one: its tools are still listed, just not followed.
    /// Does nothing on classic connections (their server sends notifications unasked).
    pub async fn listen(&self) -> bool {
        if !self.modern {
            return false;
        }
        let filter = match self.peer.peer_info() {
            Some(info) => wanted(&info.capabilities),
            None => return false,
        };
        if filter == SubscriptionFilter::default() {
            return false;
        }
        let opened = tokio::time::timeout(self.list_timeout, self.peer.listen(filter.clone()));
        let subscription = match opened.await {
            Ok(Ok(subscription)) => subscription,
            Ok(Err(error)) => {
                tracing::info!(server = %self.server, "the server refused subscriptions/listen: {error}; its tools are not followed");
                return false;
            }
            Err(_) => {
                tracing::info!(server = %self.server, "subscriptions/listen was not acknowledged within {:?}; its tools are not followed", self.list_timeout);
                return false;
            }
        };
        let changes = Changes {
            server: self.server.clone(),
            events: self.events.clone(),
            tool_changes: self.tool_changes.clone(),
            following: self.follows_tools.clone(),
        };
        let follows = subscription.acknowledged().tools_list_changed == Some(true);
        changes.following.store(follows, Ordering::Release);
        tokio::spawn(follow(self.peer.clone(), filter, subscription, changes));
        true
    }
}

/// The list changes worth hearing of, among those the server says can happen.
fn wanted(capabilities: &ServerCapabilities) -> SubscriptionFilter {
    let tools = capabilities
        .tools
        .as_ref()
        .is_some_and(|t| t.list_changed == Some(true));
    let mut filter = SubscriptionFilter::default();
    filter.tools_list_changed = tools.then_some(true);
    filter
}

/// Where a subscription's notifications go: the upstream's events and change count.
struct Changes {
    server: Arc<str>,
    events: broadcast::Sender<UpstreamEvent>,
    tool_changes: Arc<AtomicU64>,
    /// [`Upstream::follows_tools`]: cleared when the stream is gone for good.
    following: Arc<AtomicBool>,
}

impl Changes {
    fn tools_changed(&self) {
        self.tool_changes.fetch_add(1, Ordering::AcqRel);
        // No subscriber is fine: the count tells a late one.
        let _ = self.events.send(UpstreamEvent::ToolsChanged);
    }
}

/// Forwards `subscription`'s notifications until the connection closes, opening the
/// subscription again when the server ends it.
async fn follow(
    peer: Peer<RoleClient>,
    filter: SubscriptionFilter,
    subscription: Subscription,
    changes: Changes,
) {
    forward(&peer, &filter, subscription, &changes).await;
    // Without a stream, the tools' `ttlMs` says when to list them again.
    changes.following.store(false, Ordering::Release);
}

async fn forward(
    peer: &Peer<RoleClient>,
    filter: &SubscriptionFilter,
    mut subscription: Subscription,
    changes: &Changes,
) {
    let mut pauses = RELISTEN.iter();
    loop {
        loop {
            match subscription.next().await {
                Ok(Some(ServerNotification::ToolListChangedNotification(_))) => {
                    tracing::debug!(server = %changes.server, "tools/list_changed (listen)");
                    changes.tools_changed();
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(server = %changes.server, "subscriptions/listen failed: {error}");
                    break;
                }
            }
        }
        if peer.is_transport_closed() {
            return;
        }
        let Some(pause) = pauses.next() else {
            tracing::warn!(server = %changes.server, "the server keeps ending subscriptions/listen; its tools are no longer followed");
            return;
        };
        tokio::time::sleep(*pause).await;
        if peer.is_transport_closed() {
            return;
        }
        match peer.listen(filter.clone()).await {
            Ok(next) => {
                subscription = next;
                // Changes between the old subscription's end and this one were not heard.
                changes.tools_changed();
            }
            Err(error) => {
                tracing::info!(server = %changes.server, "subscriptions/listen could not be opened again: {error}; its tools are no longer followed");
                return;
            }
        }
    }
}
