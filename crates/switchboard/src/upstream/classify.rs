//! Turning rmcp's and the transports' errors into [`Error`] variants.
//!
//! Classification looks at error *types* and status codes (downcasting through rmcp's
//! type-erased transport error), never at message text. Our Streamable HTTP client reports
//! every failed status as a typed [`ClientError::Status`] or rmcp's `HttpStatusError`.
//!
//! It also decides **delivery** (see [`crate::Delivery`]) where it is known: a transport
//! failure is *not written* only when it provably happened before any byte of the request
//! went out (connect refused, DNS, TLS, a closed channel); every other failure of a
//! `tools/call` becomes [`Error::MayHaveRun`] around its real cause.
//!
//! Messages built here never include URLs (they may carry tokens in the query) or headers;
//! network failures name the server's `host:port`.

use std::error::Error as StdError;
use std::time::Duration;

use rmcp::model::ErrorCode;
use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::StreamableHttpError;

use crate::error::describe_chain;
use crate::transport::http::ClientError;
use crate::transport::sse::{SseConnectError, SseTransportError};
use crate::{Error, Phase};

type HttpError = StreamableHttpError<ClientError>;

/// The longest `Retry-After` we take seriously; longer waits are capped (the call's deadline
/// bounds it anyway).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Who an error concerns: the server's name and, for network servers, its `host:port`.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub server: &'a str,
    pub address: Option<&'a str>,
}

impl Target<'_> {
    fn name(&self) -> String {
        self.server.to_owned()
    }

    fn protocol(&self, reason: impl Into<String>) -> Error {
        Error::Protocol {
            server: self.name(),
            reason: reason.into(),
        }
    }

    fn unreachable(&self, reason: impl Into<String>) -> Error {
        Error::Unreachable {
            server: self.name(),
            reason: reason.into(),
        }
    }

    fn auth(&self, status: u16, challenge: &str) -> Error {
        Error::Auth {
            server: self.name(),
            status,
            challenge: Some(challenge.to_owned()),
        }
    }

    /// `cause` with ` at host:port` when the address is known.
    fn at(&self, cause: String) -> String {
        match self.address {
            Some(address) => format!("{cause} at {address}"),
            None => cause,
        }
    }
}

/// Whether the request may have been written to the connection before the failure.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Written {
    /// Provably not: the failure came before any byte of the request went out.
    No,
    /// Possibly (or certainly): the request was handed to the connection.
    Maybe,
}

/// An error from the `initialize` handshake.
pub(crate) fn from_init(target: Target<'_>, error: ClientInitializeError) -> Error {
    match error {
        ClientInitializeError::TransportError { error, .. } => from_transport(target, &error).0,
        ClientInitializeError::ConnectionClosed(_) => {
            target.unreachable("the connection closed before initialize completed")
        }
        ClientInitializeError::JsonRpcError(data) => target.protocol(format!(
            "initialize was rejected: {} (JSON-RPC {})",
            data.message, data.code.0
        )),
        ClientInitializeError::NoCompatibleProtocolVersion {
            server_supported, ..
        } => target.protocol(format!(
            "no protocol version in common (the server supports {server_supported:?})"
        )),
        // `server/discover` failed and so did `initialize`: the latter is the answer of a
        // server that speaks only the classic revisions, the one that says what is wrong.
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => {
            tracing::debug!(server = %target.name(), "server/discover failed: {discover}");
            from_init(target, *fallback)
        }
        ClientInitializeError::Cancelled => Error::Closed {
            server: target.name(),
            reason: Some("connect was cancelled".to_owned()),
        },
        other => target.protocol(format!("initialize failed: {other}")),
    }
}

/// An error from a request after initialize. `budget` is the time the phase was given.
pub(crate) fn from_service(
    target: Target<'_>,
    error: ServiceError,
    phase: Phase,
    budget: Duration,
    tool: Option<&str>,
) -> Error {
    match error {
        ServiceError::Timeout { .. } => Error::Timeout {
            server: target.name(),
            phase,
            after: budget,
        },
        ServiceError::TransportClosed => Error::ConnectionLost {
            server: target.name(),
            phase,
        },
        ServiceError::TransportSend(error) => from_transport(target, &error).0,
        ServiceError::McpError(data) => match tool {
            Some(tool) => Error::Tool {
                server: target.name(),
                tool: tool.to_owned(),
                code: Some(data.code.0),
                data: data.data,
                message: data.message.into_owned(),
            },
            None if data.code == ErrorCode::METHOD_NOT_FOUND => {
                target.protocol(format!("the server does not implement {phase}"))
            }
            None => target.protocol(format!(
                "{phase} failed: {} (JSON-RPC {})",
                data.message, data.code.0
            )),
        },
        ServiceError::Cancelled { .. } => Error::Closed {
            server: target.name(),
            reason: Some(format!("{phase} was cancelled")),
        },
        other => target.protocol(format!("{phase}: {other}")),
    }
}

/// An error from a `tools/call` whose request was handed to rmcp: a transport failure after
/// the request may have been written becomes [`Error::MayHaveRun`] around its cause.
pub(crate) fn from_call(
    target: Target<'_>,
    error: ServiceError,
    budget: Duration,
    tool: &str,
) -> Error {
    match error {
        ServiceError::TransportSend(error) => match from_transport(target, &error) {
            (error, Written::No) => error,
            (error, Written::Maybe) => may_have_run(error),
        },
        other => {
            let error = from_service(target, other, Phase::CallTool, budget, Some(tool));
            match error {
                Error::Protocol { .. } => may_have_run(error),
                error => error,
            }
        }
    }
}

/// An error from a read-only request (`resources/read`, `prompts/get`) handed to rmcp:
/// transport failures as for a tool call (with their delivery, so the link knows whether
/// it left); a JSON-RPC error is the server's answer, [`Error::Rejected`].
pub(crate) fn from_request(
    target: Target<'_>,
    error: ServiceError,
    phase: Phase,
    budget: Duration,
    request: &str,
) -> Error {
    match error {
        ServiceError::McpError(data) => Error::Rejected {
            server: target.name(),
            request: request.to_owned(),
            message: data.message.into_owned(),
            code: data.code.0,
        },
        ServiceError::TransportSend(error) => match from_transport(target, &error) {
            (error, Written::No) => error,
            (error, Written::Maybe) => may_have_run(error),
        },
        other => match from_service(target, other, phase, budget, None) {
            error @ Error::Protocol { .. } => may_have_run(error),
            error => error,
        },
    }
}

/// Marks a failure that came after the request went out.
pub(crate) fn may_have_run(error: Error) -> Error {
    match error {
        Error::MayHaveRun { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } => error,
        error => Error::MayHaveRun {
            source: Box::new(error),
        },
    }
}

/// A transport failure, whichever transport produced it, and whether the request may have
/// been written.
pub(super) fn from_transport(
    target: Target<'_>,
    error: &DynamicTransportError,
) -> (Error, Written) {
    let inner: &(dyn StdError + 'static) = error.error.as_ref();
    if let Some(http) = inner.downcast_ref::<HttpError>() {
        return from_streamable_http(target, http);
    }
    if let Some(sse) = inner.downcast_ref::<SseTransportError>() {
        return from_sse_transport(target, sse);
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        // stdio: a write to the server's stdin failed; part of the message may be out.
        let error = target.unreachable(format!("the connection failed: {}", io_cause(io)));
        return (error, Written::Maybe);
    }
    let error = target.protocol(format!("transport error: {}", describe_chain(inner)));
    (error, Written::Maybe)
}

fn from_streamable_http(target: Target<'_>, error: &HttpError) -> (Error, Written) {
    match error {
        // 401 and 403 with a challenge, refused before anything ran.
        StreamableHttpError::AuthRequired(e) => {
            (target.auth(401, &e.www_authenticate_header), Written::No)
        }
        StreamableHttpError::InsufficientScope(e) => {
            (target.auth(403, &e.www_authenticate_header), Written::No)
        }
        StreamableHttpError::Client(e) => from_client(target, e),
        StreamableHttpError::HttpStatus(e) => {
            from_status(target, e.status, None, e.retry_after.as_deref())
        }
        StreamableHttpError::UnexpectedServerResponse(text) => (
            target.protocol(format!("unexpected response: {}", truncate(text, 200))),
            Written::Maybe,
        ),
        StreamableHttpError::SessionExpired => (
            Error::ConnectionLost {
                server: target.name(),
                phase: Phase::CallTool,
            },
            Written::Maybe,
        ),
        StreamableHttpError::Io(e) => (target.unreachable(target.at(io_cause(e))), Written::Maybe),
        StreamableHttpError::TransportChannelClosed => (
            Error::Closed {
                server: target.name(),
                reason: None,
            },
            Written::No,
        ),
        other => (target.protocol(other.to_string()), Written::Maybe),
    }
}

fn from_client(target: Target<'_>, error: &ClientError) -> (Error, Written) {
    match error {
        ClientError::Status { status, challenge } => {
            from_status(target, *status, challenge.clone(), None)
        }
        ClientError::Reqwest(e) => from_reqwest(target, e),
        ClientError::Send(e) => {
            let written = if e.is_connect() {
                Written::No
            } else {
                Written::Maybe
            };
            let error = target.unreachable(target.at(network_cause(e)));
            (error, written)
        }
        ClientError::Body(e) => (
            target.unreachable(target.at(format!("the response broke off: {}", network_cause(e)))),
            Written::Maybe,
        ),
        ClientError::InvalidUrl | ClientError::InvalidHeader => {
            (target.protocol(error.to_string()), Written::No)
        }
        // Signing in failed before the request went out (or after a 401, which means the
        // server did not run it).
        ClientError::SignIn(failure) => (
            Error::SignIn {
                server: target.name(),
                failure: (**failure).clone(),
            },
            Written::No,
        ),
    }
}

/// The legacy SSE transport failed to open its event stream.
pub(crate) fn from_sse_connect(target: Target<'_>, error: SseConnectError) -> Error {
    match error {
        SseConnectError::Status { status, challenge } => {
            from_status(target, status, challenge, None).0
        }
        SseConnectError::Request(e) => from_reqwest(target, &e).0,
        SseConnectError::Protocol(reason) => Error::Protocol {
            server: target.name(),
            reason,
        },
    }
}

fn from_sse_transport(target: Target<'_>, error: &SseTransportError) -> (Error, Written) {
    match error {
        SseTransportError::Status {
            status,
            challenge,
            retry_after,
        } => from_status(target, *status, challenge.clone(), retry_after.as_deref()),
        SseTransportError::Request(e) => from_reqwest(target, e),
        SseTransportError::Closed => (
            Error::Closed {
                server: target.name(),
                reason: None,
            },
            Written::No,
        ),
        SseTransportError::Serialize(_) => (target.protocol(error.to_string()), Written::No),
    }
}

/// An HTTP status that ended a request. Auth failures and a missing endpoint mean the
/// request was refused before anything ran; any other status may come from a proxy that
/// already forwarded it.
fn from_status(
    target: Target<'_>,
    status: u16,
    challenge: Option<String>,
    retry_after: Option<&str>,
) -> (Error, Written) {
    let server = target.name();
    match status {
        401 | 403 => (
            Error::Auth {
                server,
                status,
                challenge,
            },
            Written::No,
        ),
        404 => (
            Error::Protocol {
                server,
                reason: "HTTP 404: no MCP endpoint at this URL; check the server's url".to_owned(),
            },
            Written::No,
        ),
        _ => (
            Error::Http {
                server,
                status,
                retry_after: retry_after.and_then(parse_retry_after),
            },
            Written::Maybe,
        ),
    }
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 section 10.2.3), capped.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn from_reqwest(target: Target<'_>, error: &reqwest::Error) -> (Error, Written) {
    let written = if error.is_connect() {
        Written::No
    } else {
        Written::Maybe
    };
    // reqwest's own message includes the URL, whose query may hold a token: only its
    // sources are shown.
    let below = cause_below(error).unwrap_or_else(|| "the request failed".to_owned());
    let cause = if error.is_timeout() {
        "the request timed out".to_owned()
    } else if error.is_body() || error.is_decode() {
        format!("the response broke off: {below}")
    } else {
        below
    };
    let error = target.unreachable(target.at(cause));
    (error, written)
}

/// A network failure in plain words: the I/O error at the bottom of the chain when there is
/// one (`connection refused`), otherwise the innermost message, without the client
/// library's own framing (`client error (Connect)`).
fn network_cause(error: &(dyn StdError + 'static)) -> String {
    plain_cause(error)
        .or_else(|| cause_below(error))
        .unwrap_or_else(|| error.to_string())
}

/// The plain cause among `error`'s sources (not `error` itself), or the innermost source's
/// message; `None` when it has no source.
fn cause_below(error: &(dyn StdError + 'static)) -> Option<String> {
    let source = error.source()?;
    Some(network_cause(source))
}

/// An I/O error or an incomplete HTTP message anywhere in the chain, in plain words.
fn plain_cause(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io_cause(io));
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return Some("the connection closed before the response was complete".to_owned());
        }
        current = e.source();
    }
    None
}

/// An I/O error by its kind; the OS's own text only for kinds without a plain name.
fn io_cause(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let plain = match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset by peer",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::BrokenPipe => "the connection closed (broken pipe)",
        ErrorKind::UnexpectedEof => "the connection closed early",
        ErrorKind::TimedOut => "connect timed out",
        ErrorKind::HostUnreachable => "host unreachable",
        ErrorKind::NetworkUnreachable => "network unreachable",
        ErrorKind::AddrNotAvailable => "address not available",
        _ => return error.to_string(),
    };
    plain.to_owned()
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorClass;

    #[test]
    fn statuses_map_to_classes_and_delivery() {
        let t = Target {
            server: "s",
            address: None,
        };
        let class = |status| from_status(t, status, None, None).0.class();
        assert_eq!(class(401), ErrorClass::Auth);
        assert_eq!(class(403), ErrorClass::Auth);
        assert_eq!(class(503), ErrorClass::Unreachable);
        assert_eq!(class(429), ErrorClass::Unreachable);
        assert_eq!(class(404), ErrorClass::Protocol);
        assert_eq!(class(418), ErrorClass::Protocol);
        // A proxy answers 502 after forwarding: only auth and a missing endpoint are refusals.
        assert_eq!(from_status(t, 502, None, None).1, Written::Maybe);
        assert_eq!(from_status(t, 401, None, None).1, Written::No);
        let (error, _) = from_status(t, 503, None, Some("7"));
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(
            error.to_string(),
            "server 's': HTTP 503 Service Unavailable"
        );
        assert_eq!(
            may_have_run(error).to_string(),
            "server 's': HTTP 503 Service Unavailable; the call was sent and may have run"
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
        let soon = std::time::SystemTime::now() + Duration::from_secs(30);
        let wait = parse_retry_after(&httpdate::fmt_http_date(soon)).unwrap();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30));
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn io_failures_read_as_plain_words_with_the_address() {
        let t = Target {
            server: "s",
            address: Some("127.0.0.1:1"),
        };
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            t.at(network_cause(&refused)),
            "connection refused at 127.0.0.1:1"
        );
    }

    #[test]
    fn a_timeout_names_its_phase_and_budget() {
        let err = from_service(
            Target {
                server: "s",
                address: None,
            },
            ServiceError::Timeout {
                timeout: Duration::from_millis(5),
            },
            Phase::CallTool,
            Duration::from_secs(2),
            Some("t"),
        );
        assert_eq!(err.to_string(), "server 's': tool call timed out after 2s");
    }
}
