//! Our side of the MCP session: what we tell a server about ourselves, and what we do with
//! the notifications it sends.

use std::sync::Arc;

use rmcp::ClientHandler;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
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
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        tracing::debug!(server = %self.server, "tools/list_changed");
        // No subscriber is fine: nobody is interested yet.
        let _ = self.events.send(UpstreamEvent::ToolsChanged);
    }
}
