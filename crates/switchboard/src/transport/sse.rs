//! Legacy HTTP+SSE client transport (MCP protocol revision 2024-11-05).
//!
//! rmcp dropped its client for this transport, so this is ours, behind rmcp's `Transport` trait:
//! GET the SSE URL; the first `endpoint` event names the URL to POST messages to; `message`
//! events carry the server's JSON-RPC. The configured headers go on the GET and every POST.

/// A connected legacy SSE session.
pub struct SseClientTransport {}

/// Why [`SseClientTransport::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SseConnectError {
    /// The server answered the GET with a non-success status.
    #[error("HTTP {status}")]
    Status {
        status: u16,
        /// The `WWW-Authenticate` header of a 401/403, if any.
        challenge: Option<String>,
    },
    /// The request failed before a response (refused, DNS, TLS, ...).
    #[error("{0}")]
    Request(#[source] reqwest::Error),
    /// The server answered but not as a legacy SSE MCP endpoint.
    #[error("{0}")]
    Protocol(String),
}

impl SseClientTransport {
    /// Opens the event stream and waits for the `endpoint` event.
    pub async fn connect(
        client: reqwest::Client,
        url: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Self, SseConnectError> {
        let _ = (client, url, headers);
        todo!("legacy SSE connect")
    }
}

/// A failure after connect (a POST or the event stream).
#[derive(Debug, thiserror::Error)]
pub enum SseTransportError {
    #[error("HTTP {status}")]
    Status {
        status: u16,
        challenge: Option<String>,
    },
    #[error("{0}")]
    Request(#[source] reqwest::Error),
}

impl rmcp::transport::Transport<rmcp::RoleClient> for SseClientTransport {
    type Error = SseTransportError;

    fn send(
        &mut self,
        _item: rmcp::service::TxJsonRpcMessage<rmcp::RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        async { todo!("legacy SSE send") }
    }

    async fn receive(&mut self) -> Option<rmcp::service::RxJsonRpcMessage<rmcp::RoleClient>> {
        todo!("legacy SSE receive")
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        todo!("legacy SSE close")
    }
}
