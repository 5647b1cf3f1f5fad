//! What every request handler shares: the hub, who a request is for, the drain, and the
//! metrics.

use switchboard::Hub;

use crate::drain::Drain;
use crate::identity::SessionHeaders;
use crate::metrics::Metrics;

pub struct GatewayState {
    pub hub: Hub,
    pub identity: SessionHeaders,
    pub drain: Drain,
    pub metrics: Metrics,
    /// Seals the `requestState` a 2026-07-28 client is handed (`mcp/modern.rs`).
    pub seal: crate::mcp::RequestStateSeal,
    /// `[scale]`, when set (see [`crate::scale`]).
    pub scale: Option<std::sync::Arc<crate::scale::Scale>>,
}
