//! Turning rmcp's and the transports' errors into [`Error`] variants.
//!
//! Classification looks at error *types* and status codes (downcasting through rmcp's
//! type-erased transport error), never at message text. Our Streamable HTTP client reports
//! every failed status as a typed [`ClientError::Status`].
//!
//! Messages built here never include URLs (they may carry tokens in the query) or headers.

use std::error::Error as StdError;
use std::time::Duration;

use rmcp::model::ErrorCode;
use rmcp::service::{ClientInitializeError, ServiceError};
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::StreamableHttpError;

use crate::error::describe_chain;
use crate::transport::http::ClientError;
use crate::transport::sse::SseConnectError;
use crate::{Error, Phase};

type HttpError = StreamableHttpError<ClientError>;

/// An error from the `initialize` handshake.
pub(crate) fn from_init(server: &str, error: ClientInitializeError) -> Error {
    match error {
        ClientInitializeError::TransportError { error, .. } => from_transport(server, &error),
        ClientInitializeError::ConnectionClosed(_) => Error::Unreachable {
            server: server.to_owned(),
            reason: "the connection closed before initialize completed".to_owned(),
        },
        ClientInitializeError::JsonRpcError(data) => Error::Protocol {
            server: server.to_owned(),
            reason: format!(
                "initialize was rejected: {} (JSON-RPC {})",
                data.message, data.code.0
            ),
        },
        ClientInitializeError::NoCompatibleProtocolVersion {
            server_supported, ..
        } => Error::Protocol {
            server: server.to_owned(),
            reason: format!(
                "no protocol version in common (the server supports {server_supported:?})"
            ),
        },
        ClientInitializeError::Cancelled => Error::Closed {
            server: server.to_owned(),
            reason: Some("connect was cancelled".to_owned()),
        },
        other => Error::Protocol {
            server: server.to_owned(),
            reason: format!("initialize failed: {other}"),
        },
    }
}

/// An error from a request after initialize. `budget` is the time the phase was given.
pub(crate) fn from_service(
    server: &str,
    error: ServiceError,
    phase: Phase,
    budget: Duration,
    tool: Option<&str>,
) -> Error {
    match error {
        ServiceError::Timeout { .. } => Error::Timeout {
            server: server.to_owned(),
            phase,
            after: budget,
        },
        ServiceError::TransportClosed => Error::ConnectionLost {
            server: server.to_owned(),
            phase,
        },
        ServiceError::TransportSend(error) => from_transport(server, &error),
        ServiceError::McpError(data) => match tool {
            Some(tool) => Error::Tool {
                server: server.to_owned(),
                tool: tool.to_owned(),
                message: data.message.into_owned(),
                code: Some(data.code.0),
            },
            None if data.code == ErrorCode::METHOD_NOT_FOUND => Error::Protocol {
                server: server.to_owned(),
                reason: format!("the server does not implement {phase}"),
            },
            None => Error::Protocol {
                server: server.to_owned(),
                reason: format!(
                    "{phase} failed: {} (JSON-RPC {})",
                    data.message, data.code.0
                ),
            },
        },
        ServiceError::Cancelled { .. } => Error::Closed {
            server: server.to_owned(),
            reason: Some(format!("{phase} was cancelled")),
        },
        other => Error::Protocol {
            server: server.to_owned(),
            reason: format!("{phase}: {other}"),
        },
    }
}

/// A transport failure, whichever transport produced it.
pub(crate) fn from_transport(server: &str, error: &DynamicTransportError) -> Error {
    let inner: &(dyn StdError + 'static) = error.error.as_ref();
    if let Some(http) = inner.downcast_ref::<HttpError>() {
        return from_streamable_http(server, http);
    }
    if let Some(sse) = inner.downcast_ref::<crate::transport::sse::SseTransportError>() {
        return from_sse_transport(server, sse);
    }
    if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        return Error::Unreachable {
            server: server.to_owned(),
            reason: format!("the connection failed: {io}"),
        };
    }
    Error::Protocol {
        server: server.to_owned(),
        reason: format!("transport error: {}", describe_chain(inner)),
    }
}

fn from_streamable_http(server: &str, error: &HttpError) -> Error {
    let server_name = server.to_owned();
    match error {
        StreamableHttpError::AuthRequired(e) => Error::Auth {
            server: server_name,
            status: 401,
            challenge: Some(e.www_authenticate_header.clone()),
        },
        StreamableHttpError::InsufficientScope(e) => Error::Auth {
            server: server_name,
            status: 403,
            challenge: Some(e.www_authenticate_header.clone()),
        },
        StreamableHttpError::Client(e) => from_client(server, e),
        StreamableHttpError::HttpStatus(e) => from_status(server, e.status, None),
        StreamableHttpError::UnexpectedServerResponse(text) => Error::Protocol {
            server: server_name,
            reason: format!("unexpected response: {}", truncate(text, 200)),
        },
        StreamableHttpError::SessionExpired => Error::ConnectionLost {
            server: server_name,
            phase: Phase::CallTool,
        },
        StreamableHttpError::Io(e) => Error::Unreachable {
            server: server_name,
            reason: e.to_string(),
        },
        StreamableHttpError::TransportChannelClosed => Error::Closed {
            server: server_name,
            reason: None,
        },
        other => Error::Protocol {
            server: server_name,
            reason: other.to_string(),
        },
    }
}

fn from_client(server: &str, error: &ClientError) -> Error {
    match error {
        ClientError::Status { status, challenge } => {
            from_status(server, *status, challenge.clone())
        }
        ClientError::Reqwest(e) => from_reqwest(server, e),
        ClientError::Send(_) | ClientError::Body(_) => Error::Unreachable {
            server: server.to_owned(),
            reason: describe_chain(error),
        },
        ClientError::InvalidUrl | ClientError::InvalidHeader => Error::Protocol {
            server: server.to_owned(),
            reason: error.to_string(),
        },
    }
}

/// The legacy SSE transport failed to open its event stream.
pub(crate) fn from_sse_connect(server: &str, error: SseConnectError) -> Error {
    match error {
        SseConnectError::Status { status, challenge } => from_status(server, status, challenge),
        SseConnectError::Request(e) => from_reqwest(server, &e),
        SseConnectError::Protocol(reason) => Error::Protocol {
            server: server.to_owned(),
            reason,
        },
    }
}

fn from_sse_transport(server: &str, error: &crate::transport::sse::SseTransportError) -> Error {
    use crate::transport::sse::SseTransportError;
    match error {
        SseTransportError::Status { status, challenge } => {
            from_status(server, *status, challenge.clone())
        }
        SseTransportError::Request(e) => from_reqwest(server, e),
        SseTransportError::Closed => Error::Closed {
            server: server.to_owned(),
            reason: None,
        },
        other => Error::Protocol {
            server: server.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// An HTTP status that ended a request.
fn from_status(server: &str, status: u16, challenge: Option<String>) -> Error {
    let server = server.to_owned();
    match status {
        401 | 403 => Error::Auth {
            server,
            status,
            challenge,
        },
        404 => Error::Protocol {
            server,
            reason: "HTTP 404: no MCP endpoint at this URL; check the server's url".to_owned(),
        },
        429 | 500..=599 => Error::Unreachable {
            server,
            reason: format!("HTTP {status}"),
        },
        _ => Error::Protocol {
            server,
            reason: format!("HTTP {status}"),
        },
    }
}

fn from_reqwest(server: &str, error: &reqwest::Error) -> Error {
    // reqwest's own message includes the URL, whose query may hold a token: leave it out.
    let reason = describe_chain(&ReqwestWithoutUrl(error));
    if error.is_timeout() {
        return Error::Unreachable {
            server: server.to_owned(),
            reason: format!("request timed out: {reason}"),
        };
    }
    Error::Unreachable {
        server: server.to_owned(),
        reason,
    }
}

/// A reqwest error shown as its kind and its sources, without the URL.
struct ReqwestWithoutUrl<'a>(&'a reqwest::Error);

impl std::fmt::Debug for ReqwestWithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for ReqwestWithoutUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if self.0.is_connect() {
            "could not connect"
        } else if self.0.is_timeout() {
            "timed out"
        } else if self.0.is_body() || self.0.is_decode() {
            "the response body failed"
        } else {
            "the request failed"
        };
        f.write_str(kind)
    }
}

impl StdError for ReqwestWithoutUrl<'_> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
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
    fn statuses_map_to_classes() {
        assert_eq!(from_status("s", 401, None).class(), ErrorClass::Auth);
        assert_eq!(from_status("s", 403, None).class(), ErrorClass::Auth);
        assert_eq!(from_status("s", 503, None).class(), ErrorClass::Unreachable);
        assert_eq!(from_status("s", 404, None).class(), ErrorClass::Protocol);
    }

    #[test]
    fn a_timeout_names_its_phase_and_budget() {
        let err = from_service(
            "s",
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
