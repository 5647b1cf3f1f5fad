//! The built-in demo server (`echo`, `add`, `now`) that `switchboard` falls back to when there
//! is no config: something real to connect to without installing any server.
//!
//! Why hand-written: serving three tools through rmcp's server side (it used to be
//! `switchboard-testkit`'s) links axum, schemars, rmcp's server code and the testkit into the
//! `switchboard` binary, and minutes into a newcomer's first build, for a fallback. So this
//! file answers newline-delimited JSON-RPC itself, with serde_json and tokio only. It speaks just the MCP the engine's client needs from it:
//! `initialize`, `ping`, `tools/list` (one page) and `tools/call`; notifications are read and
//! ignored. rmcp stays the protocol foundation of the engine's client, and
//! `switchboard-testkit` (on rmcp's server) is the full server the tests use.
//!
//! [`connect`] starts a server on an in-memory stream and returns the client's end; [`respond`]
//! is the whole protocol: one line in, at most one line out.

use std::time::SystemTime;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// The protocol revisions we answer `initialize` with when the client asks for one of them
/// (the ones that have an `initialize` handshake).
const KNOWN_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// What we answer a client asking for any other revision.
const LATEST_VERSION: &str = "2025-11-25";

// JSON-RPC 2.0 error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Starts a demo server on the current tokio runtime and returns the client's end of its
/// stream. The server ends when the client drops its end.
pub fn connect() -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        // The only failure is the stream breaking, which means the client is gone.
        let _ = serve(server).await;
    });
    client
}

/// Answers what arrives on `stream`, one JSON-RPC message per line, until it closes.
async fn serve(stream: DuplexStream) -> std::io::Result<()> {
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(reply) = respond(&line) {
            let mut reply = reply.to_string();
            reply.push('\n');
            writer.write_all(reply.as_bytes()).await?;
            writer.flush().await?;
        }
    }
    Ok(())
}

/// The reply to one line from the client: a result or an error for a request, nothing for a
/// notification, a response (we send no requests) or a blank line.
fn respond(line: &str) -> Option<Value> {
    if line.trim().is_empty() {
        return None;
    }
    let message = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(message)) => message,
        Ok(_) => return Some(failure(&Value::Null, invalid_request())),
        Err(e) => {
            let error = RpcError::new(PARSE_ERROR, format!("parse error: {e}"));
            return Some(failure(&Value::Null, error));
        }
    };
    let id = message.get("id");
    // An id we cannot echo (an object, `null`) is answered as no id at all.
    let reply_id = id
        .filter(|id| id.is_string() || id.is_number())
        .unwrap_or(&Value::Null);
    if message.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Some(failure(reply_id, invalid_request()));
    }
    match (message.get("method").and_then(Value::as_str), id) {
        // `notifications/initialized`, `notifications/cancelled`, ...: nothing to answer.
        (Some(_), None) => None,
        (Some(method), Some(_)) if !reply_id.is_null() => {
            Some(match handle(method, message.get("params")) {
                Ok(result) => json!({"jsonrpc": "2.0", "id": reply_id, "result": result}),
                Err(error) => failure(reply_id, error),
            })
        }
        (None, Some(_)) if message.contains_key("result") || message.contains_key("error") => None,
        _ => Some(failure(reply_id, invalid_request())),
    }
}

/// The result of request `method`.
fn handle(method: &str, params: Option<&Value>) -> Result<Value, RpcError> {
    let params = object(params, "params")?;
    match method {
        "initialize" => {
            let requested = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_params("`protocolVersion` must be a string"))?;
            let version = KNOWN_VERSIONS
                .into_iter()
                .find(|known| *known == requested)
                .unwrap_or(LATEST_VERSION);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "switchboard-demo", "version": env!("CARGO_PKG_VERSION")},
            }))
        }
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": tools()})),
        "tools/call" => {
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid_params("`name` must be a string"))?;
            let text = call(name, &object(params.get("arguments"), "arguments")?)?;
            Ok(json!({"content": [{"type": "text", "text": text}], "isError": false}))
        }
        other => Err(RpcError::new(
            METHOD_NOT_FOUND,
            format!("method not found: {other}"),
        )),
    }
}

/// The demo's tools, as `tools/list` describes them.
fn tools() -> Value {
    json!([
        {
            "name": "echo",
            "description": "Returns `message` unchanged.",
            "inputSchema": {
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"],
            },
        },
        {
            "name": "add",
            "description": "Returns the sum of `a` and `b`.",
            "inputSchema": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
        {
            "name": "now",
            "description": "The current UTC time (RFC 3339).",
            "inputSchema": {"type": "object", "properties": {}},
        },
    ])
}

/// The text tool `name` answers `args` with.
fn call(name: &str, args: &Map<String, Value>) -> Result<String, RpcError> {
    let number = |key: &str| {
        args.get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid_params(format!("`{key}` must be a number")))
    };
    match name {
        "echo" => args
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid_params("`message` must be a string")),
        "add" => Ok((number("a")? + number("b")?).to_string()),
        "now" => Ok(humantime::format_rfc3339_seconds(SystemTime::now()).to_string()),
        other => Err(invalid_params(format!("unknown tool `{other}`"))),
    }
}

/// `value` as an object; absent or `null` is an empty one.
fn object(value: Option<&Value>, what: &str) -> Result<Map<String, Value>, RpcError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(invalid_params(format!("`{what}` must be an object"))),
    }
}

/// A JSON-RPC error object.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

fn invalid_params(message: impl Into<String>) -> RpcError {
    RpcError::new(INVALID_PARAMS, message)
}

fn invalid_request() -> RpcError {
    RpcError::new(
        INVALID_REQUEST,
        "invalid request: not a JSON-RPC 2.0 message",
    )
}

fn failure(id: &Value, error: RpcError) -> Value {
    json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": error.code, "message": error.message},
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{Lines, ReadHalf};

    use super::*;

    /// The reply to a request, which must have one.
    fn reply(request: Value) -> Value {
        respond(&request.to_string()).expect("a request gets a reply")
    }

    fn request(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    }

    fn call_tool(name: &str, arguments: Value) -> Value {
        reply(request(
            "tools/call",
            json!({"name": name, "arguments": arguments}),
        ))
    }

    fn error_code(reply: &Value) -> i64 {
        reply["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {reply}"))
    }

    #[test]
    fn initialize_answers_a_known_version_and_names_the_server() {
        let params = json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        });
        let answer = reply(request("initialize", params));
        assert_eq!(answer["jsonrpc"], "2.0");
        assert_eq!(answer["id"], 7);
        let result = &answer["result"];
        assert_eq!(result["protocolVersion"], "2025-06-18");
        assert_eq!(result["capabilities"], json!({"tools": {}}));
        assert_eq!(result["serverInfo"]["name"], "switchboard-demo");
    }

    #[test]
    fn initialize_answers_an_unknown_version_with_the_latest() {
        for asked in ["2026-07-28", "1999-01-01"] {
            let answer = reply(request("initialize", json!({"protocolVersion": asked})));
            assert_eq!(answer["result"]["protocolVersion"], "2025-11-25", "{asked}");
        }
        let answer = reply(request("initialize", json!({})));
        assert_eq!(error_code(&answer), INVALID_PARAMS);
    }

    #[test]
    fn notifications_and_responses_get_no_reply() {
        for line in [
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            "",
            "  ",
        ] {
            assert_eq!(respond(line), None, "{line}");
        }
    }

    #[test]
    fn ping_answers_an_empty_result_with_the_same_id() {
        let answer = reply(json!({"jsonrpc": "2.0", "id": "p-1", "method": "ping"}));
        assert_eq!(answer, json!({"jsonrpc": "2.0", "id": "p-1", "result": {}}));
    }

    #[test]
    fn tools_list_lists_the_three_tools_with_their_schemas() {
        let answer = reply(request("tools/list", json!({})));
        let tools = answer["result"]["tools"].as_array().expect("a list");
        let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
        assert_eq!(names, ["echo", "add", "now"]);
        assert_eq!(tools[0]["description"], "Returns `message` unchanged.");
        assert_eq!(tools[0]["inputSchema"]["required"], json!(["message"]));
        assert_eq!(tools[1]["inputSchema"]["required"], json!(["a", "b"]));
        assert_eq!(
            tools[2]["inputSchema"],
            json!({"type": "object", "properties": {}})
        );
        // No params and a cursor are the same single page.
        let bare = reply(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}));
        assert_eq!(bare, answer);
    }

    #[test]
    fn echo_returns_the_message_as_text() {
        let answer = call_tool("echo", json!({"message": "hi"}));
        assert_eq!(
            answer["result"],
            json!({"content": [{"type": "text", "text": "hi"}], "isError": false})
        );
    }

    #[test]
    fn add_returns_the_sum() {
        let answer = call_tool("add", json!({"a": 2, "b": 3}));
        assert_eq!(answer["result"]["content"][0]["text"], "5");
        let answer = call_tool("add", json!({"a": 0.5, "b": -2}));
        assert_eq!(answer["result"]["content"][0]["text"], "-1.5");
    }

    #[test]
    fn now_returns_the_utc_time_in_rfc_3339() {
        let answer = call_tool("now", json!({}));
        let text = answer["result"]["content"][0]["text"]
            .as_str()
            .expect("text");
        // e.g. 2025-01-02T03:04:05Z
        assert_eq!(text.len(), 20, "{text}");
        assert!(text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
        assert!(humantime::parse_rfc3339(text).is_ok(), "{text}");
        // Arguments may be left out.
        let answer = reply(request("tools/call", json!({"name": "now"})));
        assert!(
            answer["result"]["content"][0]["text"].is_string(),
            "{answer}"
        );
    }

    #[test]
    fn bad_arguments_are_invalid_params() {
        for (name, arguments, message) in [
            ("echo", json!({}), "`message` must be a string"),
            ("echo", json!({"message": 1}), "`message` must be a string"),
            ("add", json!({"a": 1}), "`b` must be a number"),
            ("add", json!({"a": "1", "b": 2}), "`a` must be a number"),
            ("echo", json!([1]), "`arguments` must be an object"),
        ] {
            let answer = call_tool(name, arguments);
            assert_eq!(error_code(&answer), INVALID_PARAMS, "{answer}");
            assert_eq!(answer["error"]["message"], message);
            assert_eq!(answer["id"], 7);
        }
        let answer = reply(request("tools/call", json!({"arguments": {}})));
        assert_eq!(error_code(&answer), INVALID_PARAMS);
        let answer = reply(request("tools/list", json!("x")));
        assert_eq!(error_code(&answer), INVALID_PARAMS);
    }

    #[test]
    fn an_unknown_tool_is_invalid_params() {
        let answer = call_tool("nosuch", json!({}));
        assert_eq!(error_code(&answer), INVALID_PARAMS);
        assert_eq!(answer["error"]["message"], "unknown tool `nosuch`");
    }

    #[test]
    fn an_unknown_method_is_method_not_found() {
        let answer = reply(request("resources/list", json!({})));
        assert_eq!(error_code(&answer), METHOD_NOT_FOUND);
        assert_eq!(answer["id"], 7);
    }

    #[test]
    fn a_malformed_line_is_a_parse_error_and_not_json_rpc_an_invalid_request() {
        let answer = respond(r#"{"jsonrpc":"2.0","id":1,"method":"#).expect("a reply");
        assert_eq!(error_code(&answer), PARSE_ERROR);
        assert_eq!(answer["id"], Value::Null);
        for line in [
            "[1,2]",
            "42",
            r#"{"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            let answer = respond(line).expect("a reply");
            assert_eq!(error_code(&answer), INVALID_REQUEST, "{line}");
        }
        let answer = respond(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#).expect("a reply");
        assert_eq!(answer["id"], 3);
    }

    async fn next(lines: &mut Lines<BufReader<ReadHalf<DuplexStream>>>) -> Value {
        let line = lines.next_line().await.unwrap().expect("a line");
        serde_json::from_str(&line).unwrap()
    }

    #[tokio::test]
    async fn the_stream_answers_line_by_line_and_survives_a_bad_line() {
        let stream = connect();
        let (reader, mut writer) = tokio::io::split(stream);
        let mut lines = BufReader::new(reader).lines();
        let sent = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            "not json",
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
        ];
        for line in sent {
            writer
                .write_all(format!("{line}\n").as_bytes())
                .await
                .unwrap();
        }
        assert_eq!(
            next(&mut lines).await["result"]["protocolVersion"],
            "2025-11-25"
        );
        assert_eq!(error_code(&next(&mut lines).await), PARSE_ERROR);
        let answer = next(&mut lines).await;
        assert_eq!(answer["id"], 2);
        assert_eq!(answer["result"]["content"][0]["text"], "hi");
        // Hanging up ends the server; nothing more arrives.
        writer.shutdown().await.unwrap();
        drop(writer);
        assert!(lines.next_line().await.unwrap().is_none());
    }
}
