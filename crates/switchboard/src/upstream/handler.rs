//! Our side of the MCP session: what we tell a server about ourselves, and what we do with
//! the notifications it sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rmcp::ClientHandler;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::{NotificationContext, RoleClient};
use tokio::sync::broadcast;

/// Something an upstream server told us that its owner may act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// The server sent `notifications/tools/list_changed`.
    ToolsChanged,
}

#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) server: Arc<str>,
    pub(crate) events: broadcast::Sender<UpstreamEvent>,
    /// How many `tools/list_changed` arrived so far (events sent before anyone subscribed
    /// are lost; this count is not).
    pub(crate) tool_changes: Arc<AtomicU64>,
}

impl ClientHandler for Handler {
    /// Offers the newest revision that has an `initialize` handshake (rmcp's default, its
    /// `LATEST`, is 2026-07-28, which has none); a server answering with an older revision is
    /// accepted as rmcp negotiates it.
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tools/list_changed");
        self.tool_changes.fetch_add(1, Ordering::AcqRel);
        // No subscriber is fine: the count above tells a late subscriber.
        let _ = self.events.send(UpstreamEvent::ToolsChanged);
    }
}
