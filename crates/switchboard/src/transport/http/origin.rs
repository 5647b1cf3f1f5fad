//! Which request a log message belongs to.
//!
//! Over Streamable HTTP, a message the server writes on a request's own response stream
//! belongs to that request; MCP gives log messages (`notifications/message`) no other tie to
//! a request. rmcp merges every stream into one before the engine sees a message (marking
//! only server *requests* with the stream they came on), so a log message read on a POST's
//! response stream is marked here: its `_meta` gets the mark ([`stream_request_key`]), the
//! id of the request the stream answers, which the engine takes out again
//! ([`take_stream_request`]) to hand the message to that request's call. The id is the
//! engine's, taken before a shared session renames it on the wire (`ids.rs`). Progress
//! needs no mark: its token says whose it is. A stream resumed after a break (a GET with
//! `Last-Event-ID`) is not marked: its log messages go by the engine's fallback.
//!
//! The mark's key ends with a random part drawn once per process: a server cannot forge
//! it (on a GET stream, over stdio) to send its log messages to a call they are not part
//! of; a key it makes up is ordinary `_meta`, relayed as it came.

use futures::{Stream, StreamExt};
use rmcp::model::{MetaObject, RequestId};
use serde_json::Value;
use sse_stream::Sse;

/// The `_meta` key of the mark: `switchboard.internal/streamRequest/` and a random part
/// drawn once (immutable after); never leaves this process.
fn stream_request_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        format!(
            "switchboard.internal/streamRequest/{}",
            uuid::Uuid::new_v4().simple()
        )
    })
}

const LOG_METHOD: &str = "notifications/message";

/// `stream`, the response stream of request `id`, with its log messages marked as `id`'s.
pub(crate) fn mark_logs<E>(
    stream: impl Stream<Item = Result<Sse, E>> + Send + 'static,
    id: RequestId,
) -> impl Stream<Item = Result<Sse, E>> + Send + 'static {
    stream.map(move |event| event.map(|sse| mark(sse, &id)))
}

/// `sse` with `id` in its `_meta` when it is a log message (else as it was).
fn mark(mut sse: Sse, id: &RequestId) -> Sse {
    let Some(data) = sse.data.as_deref().filter(|data| data.contains(LOG_METHOD)) else {
        return sse;
    };
    let Ok(mut message) = serde_json::from_str::<Value>(data) else {
        return sse;
    };
    if message.get("method").and_then(Value::as_str) != Some(LOG_METHOD) {
        return sse;
    }
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return sse;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Default::default()));
    let (Some(meta), Ok(id)) = (meta.as_object_mut(), serde_json::to_value(id)) else {
        return sse;
    };
    meta.insert(stream_request_key().to_owned(), id);
    sse.data = Some(message.to_string());
    sse
}

/// The request whose response stream a log message came on, taken out of its `_meta`
/// (`None`: it came another way).
pub fn take_stream_request(meta: &mut MetaObject) -> Option<RequestId> {
    let id = meta.remove(stream_request_key())?;
    serde_json::from_value(id).ok()
}

#[cfg(test)]
mod tests {
    use rmcp::model::{JsonRpcMessage, NotificationMetaObject, ServerJsonRpcMessage};

    use super::*;

    fn event(data: &str) -> Sse {
        Sse::default().data(data)
    }

    #[test]
    fn a_log_message_is_marked_with_its_stream_and_the_mark_comes_out_again() {
        let log = r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"started","_meta":{"theirs":1}}}"#;
        let marked = mark(event(log), &RequestId::Number(7));
        let message: ServerJsonRpcMessage = serde_json::from_str(&marked.data.unwrap()).unwrap();
        let JsonRpcMessage::Notification(mut notification) = message else {
            panic!("not a notification")
        };
        let rmcp::model::ServerNotification::LoggingMessageNotification(logged) =
            &mut notification.notification
        else {
            panic!("not a log message")
        };
        let meta = logged
            .extensions
            .get_mut::<NotificationMetaObject>()
            .unwrap();
        assert_eq!(take_stream_request(meta), Some(RequestId::Number(7)));
        assert_eq!(meta.get("theirs"), Some(&serde_json::json!(1)));
        assert_eq!(take_stream_request(meta), None);
    }

    #[test]
    fn a_mark_a_server_makes_up_is_not_taken_for_one() {
        let mut meta = MetaObject::default();
        meta.insert(
            "switchboard.internal/streamRequest".to_owned(),
            serde_json::json!(7),
        );
        assert_eq!(take_stream_request(&mut meta), None);
        assert_eq!(meta.len(), 1, "left as it came");
    }

    #[test]
    fn other_messages_are_left_as_they_are() {
        let progress = r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1,"message":"notifications/message"}}"#;
        let result = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"notifications/message"}]}}"#;
        for data in [progress, result, "not json notifications/message"] {
            let marked = mark(event(data), &RequestId::Number(7));
            assert_eq!(marked.data.as_deref(), Some(data));
        }
    }
}
