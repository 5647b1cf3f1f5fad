//! The `server/discover` probe, made safe to fall back from.
//!
//! rmcp's `Auto` lifecycle sends `server/discover` first and falls back to `initialize`
//! when the server answers it with a JSON-RPC error. Two answers from servers that only
//! speak the classic revisions would instead end the connection, so this transport wrapper
//! turns them into "method not found" before rmcp sees them (rmcp has no hook for it):
//!
//! - a success that is not a discover result (`{"result": {}}`: servers that answer every
//!   unknown request with an empty result, like some test servers);
//! - "unsupported protocol version" (-32022) listing only revisions that have `initialize`
//!   (current SDKs' servers configured for the classic revisions answer so: rmcp would give
//!   up with "no protocol version in common").
//!
//! A server that never answers (some classic servers drop requests they do not know) would
//! hold the probe for rmcp's fixed 10 s, the whole default `connect_timeout`: the wrapper
//! gives up sooner (half the server's `connect_timeout`, at most 5 s) and answers the probe
//! itself with "method not found", so `initialize` follows in time.
//!
//! Everything after the probe's answer passes through untouched.

use rmcp::RoleClient;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData, JsonRpcError, JsonRpcMessage,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use std::time::Duration;
use tokio::time::Instant;

/// The longest the probe waits for its answer.
const MAX_PATIENCE: Duration = Duration::from_secs(5);

/// `T` with the answer to its `server/discover` normalised; see the module docs.
pub(crate) struct DiscoverProbe<T> {
    inner: T,
    /// The `server/discover` request awaiting its answer, and until when it waits.
    probe: Option<(RequestId, Instant)>,
    /// How long the probe waits; `None`: as long as the connect may take (a server known
    /// to speak 2026-07-28 is not probed but opened with `server/discover`).
    patience: Option<Duration>,
}

impl<T> DiscoverProbe<T> {
    /// `probing`: the connection probes (rmcp's `Auto`) within the server's
    /// `connect_timeout`; the probe then waits half of it, at most 5 s.
    pub(crate) fn new(inner: T, probing: Option<Duration>) -> Self {
        DiscoverProbe {
            inner,
            probe: None,
            patience: probing.map(|connect_timeout| (connect_timeout / 2).min(MAX_PATIENCE)),
        }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for DiscoverProbe<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let ClientJsonRpcMessage::Request(request) = &item
            && matches!(request.request, ClientRequest::DiscoverRequest(_))
        {
            let far = Duration::from_secs(24 * 3600);
            let until = Instant::now() + self.patience.unwrap_or(far);
            self.probe = Some((request.id.clone(), until));
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let Some((probe, until)) = &self.probe else {
            return self.inner.receive().await;
        };
        let Ok(message) = tokio::time::timeout_at(*until, self.inner.receive()).await else {
            let id = probe.clone();
            self.probe = None;
            let why = "server/discover was not answered in time";
            return Some(method_not_found(id, why));
        };
        let message = message?;
        let Some((probe, _)) = &self.probe else {
            return Some(message);
        };
        let answers_probe = match &message {
            JsonRpcMessage::Response(response) => &response.id == probe,
            JsonRpcMessage::Error(error) => error.id.as_ref() == Some(probe),
            _ => false,
        };
        if !answers_probe {
            return Some(message);
        }
        let id = probe.clone();
        self.probe = None;
        Some(match classic_answer(&message) {
            Some(why) => method_not_found(id, why),
            None => message,
        })
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// The answer rmcp falls back to `initialize` from.
fn method_not_found(id: RequestId, why: &'static str) -> ServerJsonRpcMessage {
    ServerJsonRpcMessage::Error(JsonRpcError {
        jsonrpc: Default::default(),
        id: Some(id),
        error: ErrorData::new(ErrorCode::METHOD_NOT_FOUND, why, None),
    })
}

/// Why `answer` (to `server/discover`) says the server speaks only the classic revisions,
/// when it says so in a way rmcp would not fall back from.
fn classic_answer(answer: &ServerJsonRpcMessage) -> Option<&'static str> {
    match answer {
        JsonRpcMessage::Response(response)
            if !matches!(response.result, ServerResult::DiscoverResult(_)) =>
        {
            Some("server/discover answered with something other than a discover result")
        }
        JsonRpcMessage::Error(error)
            if error.error.code == ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
                && only_classic(error.error.data.as_ref()?) =>
        {
            Some("the server supports only revisions with initialize")
        }
        _ => None,
    }
}

/// Whether an "unsupported protocol version" error's `data.supported` lists versions, all
/// of them opened with `initialize`.
fn only_classic(data: &serde_json::Value) -> bool {
    let Some(supported) = data.get("supported").and_then(|s| s.as_array()) else {
        return false;
    };
    let versions: Vec<ProtocolVersion> = supported
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    !versions.is_empty() && versions.iter().all(ProtocolVersion::has_initialize)
}
