//! How the test server tells clients that its tools changed: unasked to a classic client
//! (which initialized its session), and on every open `subscriptions/listen` stream
//! (2026-07-28 clients), which the `listening` and `end_listens` tools count and end.

use std::sync::Mutex;

use rmcp::model::{ServerNotification, SubscriptionFilter, Tool, ToolListChangedNotification};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSink};
use rmcp::{ErrorData as McpError, RoleServer};
use tokio::sync::Notify;

use crate::tools::empty_schema;

/// `listening` and `end_listens` (run by `tools.rs`).
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "listening",
            "How many subscriptions/listen streams are open.",
            empty_schema(),
        ),
        Tool::new(
            "end_listens",
            "Ends every open subscriptions/listen stream gracefully (2026-07-28 clients).",
            empty_schema(),
        ),
    ]
}

/// The open `subscriptions/listen` streams of one server (all its sessions).
#[derive(Default)]
pub(crate) struct Listeners {
    sinks: Mutex<Vec<SubscriptionSink>>,
    /// Wakes every open `subscriptions/listen` to end it gracefully (`end_listens`).
    end: Notify,
}

impl Listeners {
    /// How many streams are open.
    pub(crate) fn count(&self) -> usize {
        lock(&self.sinks).len()
    }

    /// Ends every open stream gracefully; returns how many were open.
    pub(crate) fn end_all(&self) -> usize {
        let open = self.count();
        self.end.notify_waiters();
        open
    }

    /// Keeps `subscription`'s stream open (its sink reachable by [`Listeners::tools_changed`])
    /// until the client cancels it, or `end_listens` ends it gracefully.
    pub(crate) async fn hold(&self, subscription: SubscriptionContext) -> Result<(), McpError> {
        let id = subscription.sink().id().clone();
        lock(&self.sinks).push(subscription.sink().clone());
        tokio::select! {
            () = subscription.cancelled() => {}
            () = self.end.notified() => {}
        }
        lock(&self.sinks).retain(|sink| sink.id() != &id);
        Ok(())
    }

    /// Says the tools changed: unasked to a classic client (which initialized this
    /// session), and on every open `subscriptions/listen` stream that asked for it.
    pub(crate) async fn tools_changed(&self, context: &RequestContext<RoleServer>) {
        let classic = context
            .peer
            .peer_info()
            .is_some_and(|client| client.protocol_version.has_initialize());
        if classic && let Err(error) = context.peer.notify_tool_list_changed().await {
            tracing::warn!(%error, "could not send tools/list_changed");
        }
        let listeners = lock(&self.sinks).clone();
        for sink in listeners {
            let changed = ServerNotification::ToolListChangedNotification(
                ToolListChangedNotification::default(),
            );
            if let Err(error) = sink.send(changed).await {
                tracing::debug!(%error, "could not send tools/list_changed on a listen stream");
            }
        }
    }
}

/// What a `subscriptions/listen` gets: the tool changes, if it asked for them.
pub(crate) fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut accepted = SubscriptionFilter::default();
    accepted.tools_list_changed = requested.tools_list_changed;
    accepted
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
