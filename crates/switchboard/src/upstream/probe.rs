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
//! itself with "method not found", so `initialize` follows in time. Should the real answer
//! still come after that, it is dropped: rmcp, waiting for `initialize`'s answer by then,
//! would take it for a wrong answer and fail the connection ("conflict initialized
//! response id"). A server that then refuses `initialize` is opened once more with
//! `server/discover` alone, within what is left of the connect timeout (`gave_up`): it may
//! speak only 2026-07-28 and just have been slow (a loaded machine).
//!
//! Everything else passes through untouched.

use rmcp::RoleClient;
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorCode, ErrorData, JsonRpcError, JsonRpcMessage,
    ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The longest the probe waits for its answer.
const MAX_PATIENCE: Duration = Duration::from_secs(5);

/// `T` with the answer to its `server/discover` normalised; see the module docs.
pub(crate) struct DiscoverProbe<T> {
    inner: T,
    /// The `server/discover` request awaiting its answer, and until when it waits.
    probe: Option<(RequestId, Instant)>,
    /// The probe given up on (answered by us): its real answer, if it comes, is dropped.
    abandoned: Option<RequestId>,
    /// How long the probe waits; `None`: as long as the connect may take (a server known
    /// to speak 2026-07-28 is not probed but opened with `server/discover`).
    patience: Option<Duration>,
    /// Set when the probe was given up on: a server that then refuses `initialize` may
    /// speak only 2026-07-28 and have been slow (see `Connector::connect_once`).
    gave_up: Arc<AtomicBool>,
}

impl<T> DiscoverProbe<T> {
    /// `probing`: the connection probes (rmcp's `Auto`) within the server's
    /// `connect_timeout`; the probe then waits half of it, at most 5 s.
    pub(crate) fn new(inner: T, probing: Option<Duration>) -> Self {
        DiscoverProbe {
            inner,
            probe: None,
            abandoned: None,
            patience: probing.map(|connect_timeout| (connect_timeout / 2).min(MAX_PATIENCE)),
            gave_up: Arc::default(),
        }
    }

    /// Whether the probe was given up on (read after the connection attempt ended).
    pub(crate) fn gave_up(&self) -> Arc<AtomicBool> {
        self.gave_up.clone()
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
        let Some((probe, until)) = self.probe.clone() else {
            return self.next_message().await;
        };
        let Ok(message) = tokio::time::timeout_at(until, self.next_message()).await else {
            self.probe = None;
            self.abandoned = Some(probe.clone());
            self.gave_up.store(true, Ordering::Relaxed);
            let why = "server/discover was not answered in time";
            return Some(method_not_found(probe, why));
        };
        let message = message?;
        if answer_id(&message) != Some(&probe) {
            return Some(message);
        }
        self.probe = None;
        Some(match classic_answer(&message) {
            Some(why) => method_not_found(probe, why),
            None => message,
        })
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

impl<T: Transport<RoleClient>> DiscoverProbe<T> {
    /// The inner transport's next message, less a late answer to an abandoned probe.
    async fn next_message(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let message = self.inner.receive().await?;
            if self.abandoned.is_some() && answer_id(&message) == self.abandoned.as_ref() {
                self.abandoned = None;
                tracing::debug!("dropped the late answer to an abandoned server/discover");
                continue;
            }
            return Some(message);
        }
    }
}

/// The request `message` answers, if it is an answer.
fn answer_id(message: &ServerJsonRpcMessage) -> Option<&RequestId> {
    match message {
        JsonRpcMessage::Response(response) => Some(&response.id),
        JsonRpcMessage::Error(error) => error.id.as_ref(),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use serde_json::json;

    fn server(message: serde_json::Value) -> ServerJsonRpcMessage {
        serde_json::from_value(message).expect("a server message")
    }

    #[tokio::test]
    async fn a_late_answer_to_an_abandoned_probe_is_dropped() {
        let (to_server, mut at_server) = mpsc::channel::<TxJsonRpcMessage<RoleClient>>(4);
        let (mut from_server, at_client) = mpsc::channel::<RxJsonRpcMessage<RoleClient>>(4);
        let inner = rmcp::transport::sink_stream::SinkStreamTransport::new(to_server, at_client);
        let mut probe = DiscoverProbe::new(inner, Some(Duration::from_millis(100)));
        let discover: ClientJsonRpcMessage = serde_json::from_value(json!({
            "jsonrpc": "2.0", "id": 0, "method": "server/discover", "params": {}
        }))
        .expect("a discover request");
        probe.send(discover).await.expect("sent");
        assert!(at_server.next().await.is_some());

        // Unanswered within its patience: "method not found" for id 0, from the wrapper.
        let given_up = probe.receive().await.expect("an answer");
        assert_eq!(answer_id(&given_up), Some(&RequestId::Number(0)));
        assert!(matches!(given_up, JsonRpcMessage::Error(_)), "{given_up:?}");

        // The real answer comes late, then the answer to initialize (id 1): rmcp sees only
        // the latter.
        let late = server(json!({"jsonrpc": "2.0", "id": 0, "result": {}}));
        let initialized = server(json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        from_server.send(late).await.unwrap();
        from_server.send(initialized).await.unwrap();
        let next = probe.receive().await.expect("the next message");
        assert_eq!(answer_id(&next), Some(&RequestId::Number(1)));
    }
}
