//! Our Streamable HTTP client (`transport/http/client.rs`) against a scripted HTTP server:
//! the cases the testkit does not produce. SSE answers that carry other messages before the
//! response, JSON answers, events split across writes, auth statuses with and without a
//! challenge, a 404 for an expired session (re-initialize and retry), the session DELETE on
//! close, and reserved headers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::internals::Upstream;
use switchboard::{Connector, Error, ErrorClass, ServerConfig, config::Variables};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// One request the scripted server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Lower-cased request head.
    head: String,
    body: Value,
}

impl Seen {
    fn rpc_method(&self) -> &str {
        self.body["method"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map(str::trim)
    }
}

/// What the server answers: the raw bytes, written in the given pieces with a pause between
/// them (the connection closes after each response).
type Script = dyn Fn(&Seen, &[Seen]) -> Vec<Vec<u8>> + Send + Sync;

struct Scripted {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    async fn start(
        script: impl Fn(&Seen, &[Seen]) -> Vec<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(serve(socket, script.clone(), log.clone()));
            }
        });
        Scripted { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut socket: TcpStream, script: Arc<Script>, log: Arc<Mutex<Vec<Seen>>>) {
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let earlier = {
        let mut log = log.lock().unwrap();
        let earlier = log.clone();
        log.push(request.clone());
        earlier
    };
    for (i, piece) in script(&request, &earlier).into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if socket.write_all(&piece).await.is_err() {
            return;
        }
    }
    let _ = socket.shutdown().await;
}

async fn read_request(socket: &mut TcpStream) -> Option<Seen> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let method = head
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let body = serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or(Value::Null);
    Some(Seen { method, head, body })
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    out.into_bytes()
}

/// An SSE response head; the body follows in further pieces, ended by closing.
fn sse_head(session: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: text/event-stream\r\n\
         mcp-session-id: {session}\r\n\r\n"
    )
    .into_bytes()
}

fn event(message: &Value) -> Vec<u8> {
    format!("event: message\ndata: {message}\n\n").into_bytes()
}

fn initialize_result(id: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "scripted", "version": "1"}}})
}

fn tool_result(id: &Value, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "content": [{"type": "text", "text": text}], "isError": false}})
}

/// The lifecycle every script shares: `server/discover` refused as a classic server does,
/// initialize (session `s1`, or `s2` the second time),
/// `notifications/initialized`, no GET stream, DELETE accepted. `None` for a tool call.
fn lifecycle(request: &Seen, earlier: &[Seen]) -> Option<Vec<Vec<u8>>> {
    match (request.method.as_str(), request.rpc_method()) {
        ("POST", "initialize") => {
            let n = earlier
                .iter()
                .filter(|s| s.rpc_method() == "initialize")
                .count();
            let session = format!("s{}", n + 1);
            Some(vec![response(
                "200 OK",
                &[
                    ("content-type", "application/json"),
                    ("mcp-session-id", &session),
                ],
                &initialize_result(&request.body["id"]).to_string(),
            )])
        }
        // What classic servers built on the TypeScript SDK answer the 2026-07-28 probe.
        ("POST", "server/discover") => Some(vec![response(
            "400 Bad Request",
            &[("content-type", "application/json")],
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: No valid session ID provided"},"id":null}"#,
        )]),
        ("POST", method) if method.starts_with("notifications/") => {
            Some(vec![response("202 Accepted", &[], "")])
        }
        ("GET", _) => Some(vec![response("405 Method Not Allowed", &[], "")]),
        ("DELETE", _) => Some(vec![response("200 OK", &[], "")]),
        _ => None,
    }
}

async fn connect(url: &str) -> Result<Upstream, Error> {
    connect_with(ServerConfig::url("scripted", url)).await
}

async fn connect_with(config: ServerConfig) -> Result<Upstream, Error> {
    Connector::new()
        .connect(&config, Variables::default())
        .await
}

async fn echo(upstream: &Upstream) -> Result<String, Error> {
    let mut args = serde_json::Map::new();
    args.insert("message".into(), json!("hi"));
    let deadline = Instant::now() + Duration::from_secs(5);
    Ok(upstream
        .call_tool("echo", Some(args), deadline)
        .await?
        .text())
}

#[tokio::test]
async fn sse_answers_with_other_messages_first_and_split_events_arrive() {
    let server = Scripted::start(|request, earlier| {
        if let Some(answer) = lifecycle(request, earlier) {
            return answer;
        }
        let id = &request.body["id"];
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "info", "data": "working"}});
        let result = event(&tool_result(id, "done")).to_vec();
        let (a, b) = result.split_at(result.len() / 2);
        vec![
            sse_head("s1"),
            b"id: 0\nretry: 3000\ndata:\n\n".to_vec(),
            event(&progress),
            a.to_vec(),
            b.to_vec(),
        ]
    })
    .await;
    let upstream = connect(&server.url).await.unwrap();
    assert_eq!(echo(&upstream).await.unwrap(), "done");
    upstream.close().await;
}

#[tokio::test]
async fn the_response_first_on_the_stream_and_a_json_answer_both_work() {
    let server = Scripted::start(|request, earlier| {
        if let Some(answer) = lifecycle(request, earlier) {
            return answer;
        }
        let id = &request.body["id"];
        let calls = earlier
            .iter()
            .filter(|s| s.rpc_method() == "tools/call")
            .count();
        if calls % 2 == 0 {
            vec![
                sse_head("s1"),
                b"id: 0\nretry: 3000\ndata:\n\n".to_vec(),
                event(&tool_result(id, "sse")),
            ]
        } else {
            vec![response(
                "200 OK",
                &[("content-type", "application/json")],
                &tool_result(id, "json").to_string(),
            )]
        }
    })
    .await;
    let upstream = connect(&server.url).await.unwrap();
    for expected in ["sse", "json", "sse", "json"] {
        assert_eq!(echo(&upstream).await.unwrap(), expected);
    }
    upstream.close().await;
}

#[tokio::test]
async fn a_403_with_a_challenge_and_a_401_without_one_are_auth_errors() {
    let challenge = r#"Bearer error="insufficient_scope", scope="tools""#;
    let server = Scripted::start(move |request, earlier| {
        if let Some(answer) = lifecycle(request, earlier) {
            return answer;
        }
        vec![response(
            "403 Forbidden",
            &[("www-authenticate", challenge)],
            "",
        )]
    })
    .await;
    let upstream = connect(&server.url).await.unwrap();
    match echo(&upstream).await.unwrap_err() {
        Error::Auth {
            status: 403,
            challenge: Some(c),
            ..
        } => assert_eq!(c, challenge),
        other => panic!("{other:?}"),
    }
    upstream.close().await;

    let bare = Scripted::start(|_, _| vec![response("401 Unauthorized", &[], "no")]).await;
    match connect(&bare.url).await.err().expect("401") {
        Error::Auth {
            status: 401,
            challenge: None,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_expired_session_is_reinitialized_and_the_call_retried() {
    let server = Scripted::start(|request, earlier| {
        if let Some(answer) = lifecycle(request, earlier) {
            return answer;
        }
        // The server "restarted" after the first call: session s1 is gone.
        if request.header("mcp-session-id") == Some("s1")
            && earlier.iter().any(|s| s.rpc_method() == "tools/call")
        {
            return vec![response("404 Not Found", &[], "")];
        }
        let id = &request.body["id"];
        vec![sse_head("s2"), event(&tool_result(id, "again"))]
    })
    .await;
    let upstream = connect(&server.url).await.unwrap();
    assert_eq!(echo(&upstream).await.unwrap(), "again");
    assert_eq!(echo(&upstream).await.unwrap(), "again");
    let seen = server.seen();
    let inits = seen
        .iter()
        .filter(|s| s.rpc_method() == "initialize")
        .count();
    assert_eq!(inits, 2, "{seen:#?}");
    let last = seen.iter().rev().find(|s| s.rpc_method() == "tools/call");
    assert_eq!(last.and_then(|s| s.header("mcp-session-id")), Some("s2"));
    upstream.close().await;
}

#[tokio::test]
async fn a_connector_probes_a_classic_server_once_and_then_goes_straight_to_initialize() {
    let server = Scripted::start(|request, earlier| {
        lifecycle(request, earlier).unwrap_or_else(|| vec![response("500 Oops", &[], "")])
    })
    .await;
    let connector = Connector::new();
    let config = ServerConfig::url("scripted", server.url.clone());
    for _ in 0..3 {
        let upstream = connector
            .connect(&config, Variables::default())
            .await
            .unwrap();
        assert_eq!(upstream.protocol_version().as_deref(), Some("2025-06-18"));
        upstream.close().await;
    }
    let count = |method: &str| {
        let seen = server.seen();
        seen.iter().filter(|s| s.rpc_method() == method).count()
    };
    assert_eq!(count("server/discover"), 1, "probed once");
    assert_eq!(count("initialize"), 3);
    // Another connector has not seen it yet.
    let upstream = connect_with(config).await.unwrap();
    upstream.close().await;
    assert_eq!(count("server/discover"), 2);
}

#[tokio::test]
async fn close_deletes_the_session_with_the_configured_headers() {
    let server = Scripted::start(|request, earlier| {
        lifecycle(request, earlier).unwrap_or_else(|| vec![response("500 Oops", &[], "")])
    })
    .await;
    let mut config = ServerConfig::url("scripted", server.url.clone());
    config.headers = [("X-Team".to_owned(), "blue".to_owned())].into();
    let upstream = connect_with(config).await.unwrap();
    upstream.close().await;
    let seen = server.seen();
    let delete = seen
        .iter()
        .find(|s| s.method == "DELETE")
        .expect("a DELETE");
    assert_eq!(delete.header("mcp-session-id"), Some("s1"));
    assert_eq!(delete.header("x-team"), Some("blue"));
    // Every request carried the configured header and, after initialize, the session.
    assert_eq!(seen[0].rpc_method(), "server/discover");
    for request in &seen {
        assert_eq!(request.header("x-team"), Some("blue"), "{request:?}");
        if !matches!(request.rpc_method(), "server/discover" | "initialize") {
            assert_eq!(request.header("mcp-session-id"), Some("s1"), "{request:?}");
        }
    }
}

#[tokio::test]
async fn a_server_error_is_unreachable_and_a_reserved_header_is_refused() {
    let server = Scripted::start(|request, earlier| {
        lifecycle(request, earlier).unwrap_or_else(|| vec![response("503 Busy", &[], "")])
    })
    .await;
    let upstream = connect(&server.url).await.unwrap();
    assert_eq!(
        echo(&upstream).await.unwrap_err().class(),
        ErrorClass::Unreachable
    );
    upstream.close().await;

    let mut config = ServerConfig::url("scripted", server.url.clone());
    config.headers = [("Mcp-Session-Id".to_owned(), "mine".to_owned())].into();
    let err = connect_with(config).await.err().expect("reserved");
    assert_eq!(err.class(), ErrorClass::Protocol, "{err}");
}
