//! How the test server tells clients that a list changed (tools, resources, prompts):
//! unasked to a classic client (which initialized its session), and on every open
//! `subscriptions/listen` stream that accepted that kind (2026-07-28 clients hear of changes
//! only there), which the `listening` and `end_listens` tools count and end.

use std::sync::Mutex;

use rmcp::model::{
    PromptListChangedNotification, ResourceListChangedNotification, ServerNotification,
    SubscriptionFilter, Tool, ToolListChangedNotification,
};
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

    /// Keeps `subscription`'s stream open (its sink reachable by [`Listeners::changed`])
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

    /// Says the `kind` list changed: unasked to a classic client (which initialized this
    /// session), and on every open `subscriptions/listen` stream that accepted the kind.
    pub(crate) async fn changed(&self, kind: Kind, context: &RequestContext<RoleServer>) {
        let classic = context
            .peer
            .peer_info()
            .is_some_and(|client| client.protocol_version.has_initialize());
        if classic {
            let peer = &context.peer;
            let sent = match kind {
                Kind::Tools => peer.notify_tool_list_changed().await,
                Kind::Resources => peer.notify_resource_list_changed().await,
                Kind::Prompts => peer.notify_prompt_list_changed().await,
            };
            if let Err(error) = sent {
                tracing::warn!(%error, "could not send {kind:?} list_changed");
            }
        }
        let listeners = lock(&self.sinks).clone();
        for sink in listeners
            .iter()
            .filter(|sink| kind.accepted(sink.accepted()))
        {
            if let Err(error) = sink.send(kind.notification()).await {
                tracing::debug!(%error, "could not send {kind:?} list_changed on a listen stream");
            }
        }
    }
}

/// A list whose changes are told.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Tools,
    Resources,
    Prompts,
}

impl Kind {
    /// Whether a stream that accepted `filter` hears of this kind's changes.
    fn accepted(self, filter: &SubscriptionFilter) -> bool {
        let flag = match self {
            Kind::Tools => filter.tools_list_changed,
            Kind::Resources => filter.resources_list_changed,
            Kind::Prompts => filter.prompts_list_changed,
        };
        flag == Some(true)
    }

    fn notification(self) -> ServerNotification {
        match self {
            Kind::Tools => ToolListChangedNotification::default().into(),
            Kind::Resources => ResourceListChangedNotification::default().into(),
            Kind::Prompts => PromptListChangedNotification::default().into(),
        }
    }
}

/// What a `subscriptions/listen` gets: the changes of tools, resources and prompts it asked
/// for.
pub(crate) fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut accepted = SubscriptionFilter::default();
    accepted.tools_list_changed = requested.tools_list_changed;
    accepted.resources_list_changed = requested.resources_list_changed;
    accepted.prompts_list_changed = requested.prompts_list_changed;
    accepted
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
