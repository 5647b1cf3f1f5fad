//! Change notifications from 2026-07-28 servers. Those have no GET stream and send nothing
//! unasked: a client that wants `notifications/tools/list_changed` (or the `resources/` and
//! `prompts/` ones) opens a `subscriptions/listen` request, whose response stream carries
//! them for as long as it stays open. [`Upstream::listen`] opens one (rmcp's `Peer::listen`)
//! for every list the server says can change and turns what arrives into the same
//! [`UpstreamEvent`]s a classic server's unsolicited notifications give, so the hub's
//! watcher does not know which revision a server speaks.
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
    /// On a 2026-07-28 connection whose server says its tools, resources or prompts can
    /// change (`listChanged` in its capabilities), opens a `subscriptions/listen` for those
    /// and waits (within `list_timeout`) for the server's acknowledgment, so a change after
    /// this returns is never missed. What arrives then becomes
    /// [`UpstreamEvent::ToolsChanged`] (counted in [`Upstream::tool_changes`]),
    /// [`UpstreamEvent::ResourcesChanged`] or [`UpstreamEvent::PromptsChanged`] until the
    /// connection closes. If the server ends the subscription, it is opened again (a few
    /// times, with pauses) and one event of each kind covers the gap, as after a reconnect.
    ///
    /// Returns whether a subscription is open. A server that refuses or does not answer is
    /// logged and left without one: its lists are still listed, just not followed.
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
                tracing::info!(server = %self.server, "the server refused subscriptions/listen: {error}; its changes are not followed");
                return false;
            }
            Err(_) => {
                tracing::info!(server = %self.server, "subscriptions/listen was not acknowledged within {:?}; its changes are not followed", self.list_timeout);
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

/// The list changes worth hearing of: those the server says can happen (tools, resources,
/// prompts with `listChanged: true`).
fn wanted(capabilities: &ServerCapabilities) -> SubscriptionFilter {
    let changes = |list_changed: Option<Option<bool>>| list_changed.flatten() == Some(true);
    let tools = changes(capabilities.tools.as_ref().map(|t| t.list_changed));
    let resources = changes(capabilities.resources.as_ref().map(|r| r.list_changed));
    let prompts = changes(capabilities.prompts.as_ref().map(|p| p.list_changed));
    let mut filter = SubscriptionFilter::default();
    filter.tools_list_changed = tools.then_some(true);
    filter.resources_list_changed = resources.then_some(true);
    filter.prompts_list_changed = prompts.then_some(true);
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
    fn changed(&self, event: UpstreamEvent) {
        if event == UpstreamEvent::ToolsChanged {
            self.tool_changes.fetch_add(1, Ordering::AcqRel);
        }
        // No subscriber is fine: the tool count tells a late one.
        let _ = self.events.send(event);
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
                Ok(Some(notification)) => {
                    if let Some(event) = event_of(&notification) {
                        tracing::debug!(server = %changes.server, "{event:?} (listen)");
                        changes.changed(event);
                    }
                }
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
            tracing::warn!(server = %changes.server, "the server keeps ending subscriptions/listen; its changes are no longer followed");
            return;
        };
        tokio::time::sleep(*pause).await;
        if peer.is_transport_closed() {
            return;
        }
        match peer.listen(filter.clone()).await {
            Ok(next) => {
                subscription = next;
                // Changes between the old subscription's end and this one were not heard:
                // every list may differ, as after a reconnect.
                for event in [
                    UpstreamEvent::ToolsChanged,
                    UpstreamEvent::ResourcesChanged,
                    UpstreamEvent::PromptsChanged,
                ] {
                    changes.changed(event);
                }
            }
            Err(error) => {
                tracing::info!(server = %changes.server, "subscriptions/listen could not be opened again: {error}; its changes are no longer followed");
                return;
            }
        }
    }
}

/// The event a listen stream's notification gives, if it is a list change.
fn event_of(notification: &ServerNotification) -> Option<UpstreamEvent> {
    match notification {
        ServerNotification::ToolListChangedNotification(_) => Some(UpstreamEvent::ToolsChanged),
        ServerNotification::ResourceListChangedNotification(_) => {
            Some(UpstreamEvent::ResourcesChanged)
        }
        ServerNotification::PromptListChangedNotification(_) => Some(UpstreamEvent::PromptsChanged),
        ServerNotification::ResourceUpdatedNotification(updated) => {
            Some(UpstreamEvent::ResourceUpdated {
                uri: updated.params.uri.clone(),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ServerCapabilities;

    use super::wanted;

    #[test]
    fn listen_asks_for_the_lists_the_server_says_can_change() {
        let all = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .build();
        let filter = wanted(&all);
        assert_eq!(filter.tools_list_changed, Some(true));
        assert_eq!(filter.resources_list_changed, Some(true));
        assert_eq!(filter.prompts_list_changed, Some(true));

        // Resources that do not change, prompts not offered: only the tools.
        let some = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_resources()
            .build();
        let filter = wanted(&some);
        assert_eq!(filter.tools_list_changed, Some(true));
        assert_eq!(filter.resources_list_changed, None);
        assert_eq!(filter.prompts_list_changed, None);
    }
}
