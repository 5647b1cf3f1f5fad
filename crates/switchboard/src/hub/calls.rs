//! The call path and its one extension point.
//!
//! Every [`Hub::call`] passes the same steps: resolve the exposed name, check the arguments,
//! run each [`CallLayer`]'s `before` (outermost first), lease the connection and send, then
//! each layer's `after` (innermost first) with the result. Cross-cutting concerns (timing,
//! metrics, tracing, rate limits, auth) are layers added with
//! [`HubBuilder::layer`](super::HubBuilder::layer), not edits to the call path. Resource
//! reads and prompt gets are told to the layers too, after they were sent
//! ([`CallLayer::after_request`]).
//!
//! [`Hub::call_with`] takes [`CallOptions`]: a progress callback and a deadline that
//! progress pushes out (within a ceiling). Its input handler is the session's, else the
//! hub's (`crate::interaction`).

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::Hub;
use crate::JsonObject;
use crate::deadline::Deadline;
use crate::error::Error;
use crate::interaction::{CallOptions, CallStep};
use crate::sessions::Session;
use crate::spans::{self, OTEL_TARGET};
use crate::upstream::CallOutcome;
use crate::upstream::input::Passthrough;
use crate::upstream::interaction::CallContext;

impl Hub {
    /// Calls the tool exposed as `name` over the shared connections. Arguments are checked
    /// against its schema before anything is sent; `deadline` defaults to now + the server's
    /// `tool_call_timeout`, and a call whose deadline has passed is not sent.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<CallOutcome, Error> {
        self.call_with(None, name, arguments, CallOptions::from(deadline))
            .await
    }

    /// [`Hub::call`] on behalf of `session`: `per_session` servers use the session's own
    /// connection (made with its variables); shared servers the shared one. The name is
    /// resolved in the session's catalogue ([`Hub::catalog_in`]). What servers ask the call
    /// is answered by the session's input handler, else the hub's.
    pub async fn call_in(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        deadline: Option<Deadline>,
    ) -> Result<CallOutcome, Error> {
        self.call_with(session, name, arguments, CallOptions::from(deadline))
            .await
    }

    /// [`Hub::call_in`] with [`CallOptions`]: the deadline (default: now + the server's
    /// `tool_call_timeout`, or now + the progress timeout when progress resets it), a
    /// progress callback, and whether progress pushes the deadline out (within a ceiling).
    pub async fn call_with(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
    ) -> Result<CallOutcome, Error> {
        match self.call_step(session, name, arguments, options).await? {
            CallStep::Done(outcome) => Ok(outcome),
            CallStep::InputRequired(asked) => Err(Error::Protocol {
                server: asked.server,
                reason: "the server asked for input, handed back to a caller that takes none"
                    .to_owned(),
            }),
        }
    }

    /// [`Hub::call_with`] for a caller that answers a 2026-07-28 server's input-required
    /// results itself ([`CallOptions::hand_back_input_required`]): the call ends with its
    /// outcome or with the server's requests ([`CallStep::InputRequired`]); the caller's
    /// retry, with the answers and the server's state ([`CallOptions::resume`]), goes to the
    /// same server (refused when the name now resolves to another). Layers see a handed
    /// back call at [`CallLayer::handed_back`] instead of `after`.
    pub async fn call_step(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
    ) -> Result<CallStep, Error> {
        // The call's span (`crate::spans`): the parent of its upstream requests' spans.
        let span = tracing::trace_span!(
            target: OTEL_TARGET,
            "switchboard.call",
            otel.name = tracing::field::Empty,
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            gen_ai.tool.name = name,
            switchboard.server = tracing::field::Empty,
            error.type = tracing::field::Empty,
        );
        if span.is_disabled() {
            return self
                .call_in_span(session, name, arguments, options, &span)
                .await;
        }
        span.record("otel.name", format!("call {name}"));
        let step = self
            .call_in_span(session, name, arguments, options, &span)
            .instrument(span.clone())
            .await;
        match &step {
            Ok(CallStep::Done(outcome)) => spans::record_call(&span, Ok(outcome)),
            Ok(CallStep::InputRequired(_)) => {}
            Err(error) => spans::record_call(&span, Err(error)),
        }
        step
    }

    async fn call_in_span(
        &self,
        session: Option<&Session>,
        name: &str,
        arguments: Option<JsonObject>,
        options: CallOptions,
        span: &tracing::Span,
    ) -> Result<CallStep, Error> {
        let inner = self.inner();
        let tool = inner.catalog_for(session).await?.resolve(name)?;
        if let Some(resume) = options.resume.as_ref().filter(|r| r.server != tool.server) {
            return Err(Error::InvalidArguments {
                server: tool.server.clone(),
                tool: name.to_owned(),
                problems: vec![format!(
                    "the retry answers server '{}', which no longer serves this tool",
                    resume.server
                )],
            });
        }
        if !span.is_disabled() {
            span.record("switchboard.server", tool.server.as_str());
        }
        let arguments = tool.check_arguments(arguments)?;
        // Counted as in flight until it returns: a removal drains it before closing.
        let clients = inner.enter(&tool.server)?;
        let server = clients.shared().server();
        let timeout = options
            .reset
            .map_or(server.tool_call_timeout, |(timeout, _)| timeout);
        let deadline = options
            .deadline
            .map_or_else(|| Instant::now() + timeout, Deadline::tokio);
        let reset = options
            .reset
            .map(|(timeout, ceiling)| (timeout, ceiling.tokio()));
        let input = session
            .and_then(Session::input_handler)
            .or(inner.input.as_ref())
            .cloned();
        let passthrough = Passthrough::from_options(&options);
        let call = CallContext::new(deadline, reset, options.on_progress, input);
        if let Some(passthrough) = passthrough {
            let _ = call.passthrough.set(passthrough);
        }
        if let Some(on_log) = options.on_log {
            let _ = call.on_log.set(on_log);
        }
        if let Some(injector) = &inner.meta_injector {
            let _ = call.meta_injector.set(injector.clone());
        }
        let repeatable = tool.repeatable();
        let info = CallInfo {
            name,
            server: &tool.server,
            tool: &tool.original,
            session: session.map(|s| s.id.as_str()),
        };
        for layer in &inner.layers {
            layer.before(&info)?;
        }
        let started = Instant::now();
        let mut result = clients
            .call(session, &tool.original, arguments, repeatable, &call)
            .await;
        let elapsed = started.elapsed();
        let asked = call
            .passthrough
            .get()
            .and_then(|p| p.take_asked(&tool.server));
        if let Some(asked) = asked.filter(|_| result.is_ok()) {
            for layer in inner.layers.iter().rev() {
                layer.handed_back(&info, elapsed);
            }
            return Ok(CallStep::InputRequired(asked));
        }
        if let Ok(outcome) = &mut result {
            super::offers::expose_resource_uris(inner, &tool.server, &mut outcome.content);
        }
        for layer in inner.layers.iter().rev() {
            layer.after(&info, &result, elapsed);
        }
        result.map(CallStep::Done)
    }
}

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

/// A resource read or prompt get sent to a server, as layers see it.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The MCP method: `resources/read` or `prompts/get`.
    pub method: &'static str,
    pub server: &'a str,
    /// The server's own resource URI or prompt name.
    pub name: &'a str,
    /// The caller's session id, when it asked on behalf of one.
    pub session: Option<&'a str>,
}

/// Something every call passes through; every method defaults to doing nothing.
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

    /// After a call that ended with the server asking for input, handed back to the caller
    /// ([`Hub::call_step`]), with how long the send took; its retry is a call of its own.
    fn handed_back(&self, call: &CallInfo<'_>, elapsed: Duration) {
        let _ = (call, elapsed);
    }

    /// After a resource read or prompt get was sent (or failed on its way), with its error
    /// if it failed and how long it took.
    fn after_request(&self, request: &RequestInfo<'_>, error: Option<&Error>, elapsed: Duration) {
        let _ = (request, error, elapsed);
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
