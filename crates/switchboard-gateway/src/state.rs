//! What every request handler shares: the hub, who a request is for, and the drain.

use switchboard::Hub;

use crate::drain::Drain;
use crate::identity::SessionHeaders;

pub struct GatewayState {
    pub hub: Hub,
    pub identity: SessionHeaders,
    pub drain: Drain,
}
