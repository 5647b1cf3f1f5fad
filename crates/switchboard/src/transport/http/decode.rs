//! Decoding a server's JSON-RPC message when we know which request it answers.
//!
//! rmcp decodes every server message as `ServerJsonRpcMessage`, whose `result` is the untagged
//! `ServerResult`: serde buffers the whole message, then tries each result type in turn, and
//! every type that does not match formats an error message that is thrown away (a
//! `tools/call` result is the 16th candidate). When the POST we sent was a `tools/call` or
//! `tools/list` and the body is the response to it, we decode the result type that
//! request expects directly and wrap it in its `ServerResult` variant. Anything else (another
//! message, another id, a result that does not fit, an error response) takes rmcp's generic
//! decode, so the typed path can only ever produce what rmcp's own call site would accept.

use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, JsonRpcVersion2_0, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// What the request we sent expects back, if it is one with a typed fast path.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub id: RequestId,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CallTool,
    ListTools,
    /// A request without a fast path: only its id is used.
    Other,
}

impl Expected {
    /// For a request, its id and the result type it expects; `None` for other messages.
    pub fn of(message: &ClientJsonRpcMessage) -> Option<Expected> {
        let ClientJsonRpcMessage::Request(request) = message else {
            return None;
        };
        let kind = match &request.request {
            ClientRequest::CallToolRequest(_) => Kind::CallTool,
            ClientRequest::ListToolsRequest(_) => Kind::ListTools,
            _ => Kind::Other,
        };
        Some(Expected {
            id: request.id.clone(),
            kind,
        })
    }
}

/// A JSON-RPC response with a known result type. `method` and `error` are read only to tell
/// a well-formed response from a message that merely has a `result` field too.
#[derive(Deserialize)]
struct Response<R> {
    #[allow(dead_code)]
    jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    result: Option<R>,
    #[serde(default)]
    method: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

fn typed<'a, R>(
    bytes: &'a [u8],
    expected: &Expected,
    wrap: fn(R) -> ServerResult,
) -> Option<ServerJsonRpcMessage>
where
    R: Deserialize<'a>,
{
    let response: Response<R> = serde_json::from_slice(bytes).ok()?;
    if response.method.is_some() || response.error.is_some() || response.id != expected.id {
        return None;
    }
    Some(ServerJsonRpcMessage::response(
        wrap(response.result?),
        response.id,
    ))
}

/// Decodes one server message, taking the typed path when `expected` allows it.
pub(crate) fn decode(
    bytes: &[u8],
    expected: Option<&Expected>,
) -> Result<ServerJsonRpcMessage, serde_json::Error> {
    let fast = expected.and_then(|expected| match expected.kind {
        Kind::CallTool => typed(bytes, expected, ServerResult::CallToolResult),
        Kind::ListTools => typed(bytes, expected, ServerResult::ListToolsResult),
        Kind::Other => None,
    });
    match fast {
        Some(message) => Ok(message),
        None => serde_json::from_slice(bytes),
    }
}

/// Whether `message` is the response (or error response) to the request `expected`.
pub(crate) fn answers(message: &ServerJsonRpcMessage, expected: &Expected) -> bool {
    match message {
        ServerJsonRpcMessage::Response(response) => response.id == expected.id,
        ServerJsonRpcMessage::Error(error) => error.id.as_ref() == Some(&expected.id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolRequest, CallToolRequestParams, ClientRequest};
    use serde_json::json;

    fn call(id: i64) -> Expected {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new("echo"),
        ));
        Expected::of(&ClientJsonRpcMessage::request(
            request,
            RequestId::Number(id),
        ))
        .unwrap()
    }

    fn generic(value: &serde_json::Value) -> ServerJsonRpcMessage {
        serde_json::from_value(value.clone()).unwrap()
    }

    fn same(a: &ServerJsonRpcMessage, b: &ServerJsonRpcMessage) -> bool {
        serde_json::to_value(a).unwrap() == serde_json::to_value(b).unwrap()
    }

    #[test]
    fn a_tool_result_decodes_as_rmcp_would() {
        let value = json!({"jsonrpc": "2.0", "id": 7, "result": {
            "content": [{"type": "text", "text": "hello"}],
            "structuredContent": {"n": 1}, "isError": false, "_meta": {"k": "v"}}});
        let bytes = serde_json::to_vec(&value).unwrap();
        let fast = decode(&bytes, Some(&call(7))).unwrap();
        let ServerJsonRpcMessage::Response(response) = &fast else {
            panic!("{fast:?}")
        };
        assert!(matches!(response.result, ServerResult::CallToolResult(_)));
        assert!(same(&fast, &generic(&value)));
        assert!(answers(&fast, &call(7)));
    }

    #[test]
    fn anything_else_takes_the_generic_decode() {
        let cases = [
            // another id
            json!({"jsonrpc": "2.0", "id": 8, "result": {"content": []}}),
            // an error response
            json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "bad"}}),
            // a notification on the response stream
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                   "params": {"progressToken": 1, "progress": 0.5}}),
            // a result that is not a CallToolResult (a task, SEP-1686)
            json!({"jsonrpc": "2.0", "id": 7, "result": {"resultType": "task",
                   "task": {"taskId": "t", "status": "working", "createdAt": "2026-01-01T00:00:00Z",
                   "lastUpdatedAt": "2026-01-01T00:00:00Z", "ttl": null}}}),
        ];
        for value in cases {
            let bytes = serde_json::to_vec(&value).unwrap();
            let fast = decode(&bytes, Some(&call(7)));
            let slow = serde_json::from_slice::<ServerJsonRpcMessage>(&bytes);
            match (fast, slow) {
                (Ok(a), Ok(b)) => assert!(same(&a, &b), "{value}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{value}: {a:?} vs {b:?}"),
            }
        }
    }
}
