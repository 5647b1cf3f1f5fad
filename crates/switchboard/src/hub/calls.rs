//! The call path's one extension point.
//!
//! Every [`Hub::call`](super::Hub::call) passes the same steps: resolve the exposed name,
//! check the arguments, run each [`CallLayer`]'s `before` (outermost first), lease the
//! connection and send, then each layer's `after` (innermost first) with the result.
//! Cross-cutting concerns (timing, metrics, tracing, rate limits, auth) are layers added with
//! [`HubBuilder::layer`](super::HubBuilder::layer), not edits to the call path.

use std::time::Duration;

use crate::error::Error;
use crate::upstream::CallOutcome;

/// A resolved call as layers see it.
#[derive(Debug, Clone, Copy)]
pub struct CallInfo<'a> {
    /// The exposed name the caller used.
    pub name: &'a str,
    pub server: &'a str,
    /// The server's own name for the tool.
    pub tool: &'a str,
    /// The caller's session id, when it called on behalf of one.
    pub session: Option<&'a str>,
}

/// Something every call passes through; both methods default to doing nothing.
pub trait CallLayer: Send + Sync + 'static {
    /// Before anything is sent. An error refuses the call: nothing is sent, the caller gets
    /// the error, and no later layer runs.
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Error> {
        let _ = call;
        Ok(())
    }

    /// After the call, with its result and how long the send took.
    fn after(&self, call: &CallInfo<'_>, result: &Result<CallOutcome, Error>, elapsed: Duration) {
        let _ = (call, result, elapsed);
    }
}

/// Logs every call's timing and outcome as one event (target `switchboard::calls`, INFO):
/// `server`, `tool`, `session`, `elapsed_ms`, `outcome` (`ok`, `tool_error` for an
/// `isError` result, or the error class) and `delivery` (`answered` for results).
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceCalls;

/// The log target of [`TraceCalls`].
pub const CALLS_LOG: &str = "switchboard::calls";

impl CallLayer for TraceCalls {
    fn after(&self, call: &CallInfo<'_>, result: &Result<CallOutcome, Error>, elapsed: Duration) {
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        let session = call.session.unwrap_or("-");
        let (outcome, delivery) = match result {
            Ok(outcome) if outcome.is_error => ("tool_error", "answered"),
            Ok(_) => ("ok", "answered"),
            Err(error) => (error.class().as_str(), error.delivery().as_str()),
        };
        tracing::info!(
            target: CALLS_LOG,
            server = call.server,
            tool = call.tool,
            session,
            elapsed_ms,
            outcome,
            delivery,
            "called {}",
            call.name
        );
    }
}
