//! Request ids unique across the replicas sharing one upstream session (`attach.rs`).
//!
//! rmcp numbers a connection's requests from 0, so two replicas attached to one upstream
//! session send `tools/call` with the same id; servers route a response to the POST that
//! carries its request by id (rmcp's and the TypeScript SDK's do), and one of the two calls
//! never gets its answer (seen: a call hung until its deadline). So a shared session's
//! connection sends its request ids in a space of its own, `sb-<random>-n<N>`, and maps the
//! answers back before rmcp sees them: outgoing requests and `notifications/cancelled`,
//! incoming responses and errors (as one message, or on an SSE stream). Server requests keep
//! the server's ids (a response to one is in the server's space).

use futures::StreamExt;
use futures::stream::BoxStream;
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, JsonRpcMessage, NumberOrString};
use rmcp::model::{RequestId, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_client::{SseError, StreamableHttpPostResponse};
use sse_stream::Sse;

/// One connection's request id space.
#[derive(Clone)]
pub(crate) struct IdSpace {
    /// `sb-<12 hex>-`: random per connection.
    prefix: std::sync::Arc<str>,
}

impl IdSpace {
    pub(crate) fn new() -> IdSpace {
        let random = uuid::Uuid::new_v4().simple().to_string();
        IdSpace {
            prefix: format!("sb-{}-", &random[..12]).into(),
        }
    }

    fn out(&self, id: &RequestId) -> RequestId {
        let id = match id {
            NumberOrString::Number(n) => format!("{}n{n}", self.prefix),
            NumberOrString::String(s) => format!("{}s{s}", self.prefix),
        };
        NumberOrString::String(id.into())
    }

    /// The id rmcp sent, if `id` is one of ours.
    fn back(&self, id: &RequestId) -> Option<RequestId> {
        let NumberOrString::String(id) = id else {
            return None;
        };
        let rest = id.strip_prefix(&*self.prefix)?;
        match rest.split_at_checked(1)? {
            ("n", n) => n.parse().ok().map(NumberOrString::Number),
            ("s", s) => Some(NumberOrString::String(s.into())),
            _ => None,
        }
    }

    /// Moves `message`'s request id (or the id a cancellation names) into this space.
    pub(crate) fn outgoing(&self, message: &mut ClientJsonRpcMessage) {
        match message {
            JsonRpcMessage::Request(request) => request.id = self.out(&request.id),
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &mut notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    cancelled.params.request_id = Some(self.out(id));
                }
            }
            _ => {}
        }
    }

    /// `message` with the id of a response or error to one of our requests moved back.
    fn incoming(&self, mut message: ServerJsonRpcMessage) -> ServerJsonRpcMessage {
        match &mut message {
            JsonRpcMessage::Response(response) => {
                if let Some(id) = self.back(&response.id) {
                    response.id = id;
                }
            }
            JsonRpcMessage::Error(error) => {
                if let Some(id) = error.id.as_ref().and_then(|id| self.back(id)) {
                    error.id = Some(id);
                }
            }
            _ => {}
        }
        message
    }

    /// One SSE event with a response's id moved back (events that name none of our ids
    /// are passed on untouched, unparsed).
    fn incoming_event(&self, mut event: Sse) -> Sse {
        let Some(data) = event.data.as_deref().filter(|d| d.contains(&*self.prefix)) else {
            return event;
        };
        if let Ok(message) = serde_json::from_str::<ServerJsonRpcMessage>(data)
            && matches!(
                message,
                JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_)
            )
            && let Ok(data) = serde_json::to_string(&self.incoming(message))
        {
            event.data = Some(data);
        }
        event
    }

    /// A POST's answer with the ids of responses to our requests moved back.
    pub(crate) fn incoming_answer(
        &self,
        answer: StreamableHttpPostResponse,
    ) -> StreamableHttpPostResponse {
        match answer {
            StreamableHttpPostResponse::Json(message, session) => {
                StreamableHttpPostResponse::Json(self.incoming(message), session)
            }
            StreamableHttpPostResponse::Sse(stream, session) => {
                let ids = self.clone();
                let stream: BoxStream<'static, Result<Sse, SseError>> = stream
                    .map(move |event| event.map(|e| ids.incoming_event(e)))
                    .boxed();
                StreamableHttpPostResponse::Sse(stream, session)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_out_unique_per_connection_and_come_back_as_sent() {
        let (a, b) = (IdSpace::new(), IdSpace::new());
        let sent = NumberOrString::Number(1);
        let (on_a, on_b) = (a.out(&sent), b.out(&sent));
        assert_ne!(on_a, on_b, "two replicas' request 1 differ upstream");
        assert_eq!(a.back(&on_a), Some(sent));
        assert_eq!(b.back(&on_a), None, "another connection's id is not ours");
        let text = NumberOrString::String("x-1".into());
        assert_eq!(a.back(&a.out(&text)), Some(text));
        assert_eq!(a.back(&NumberOrString::Number(1)), None);
    }

    #[test]
    fn an_sse_response_gets_its_id_back_and_server_requests_keep_theirs() {
        let ids = IdSpace::new();
        let ours = ids.out(&NumberOrString::Number(7));
        let event = |data: String| Sse {
            event: None,
            data: Some(data),
            id: None,
            retry: None,
        };
        let response = serde_json::json!({"jsonrpc": "2.0", "id": ours, "result": {}});
        let back = ids.incoming_event(event(response.to_string()));
        let back: serde_json::Value = serde_json::from_str(back.data.as_deref().unwrap()).unwrap();
        assert_eq!(back["id"], 7);
        let request = serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}).to_string();
        assert_eq!(
            ids.incoming_event(event(request.clone())).data,
            Some(request)
        );
    }
}
