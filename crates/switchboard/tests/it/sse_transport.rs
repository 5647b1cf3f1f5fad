//! Integration tests of the legacy HTTP+SSE client transport.
//!
//! They exist to prove the transport against a real legacy SSE server (server-everything, an
//! npm peer pinned in `tests/package.json`; install with `npm ci --prefix tests`), and its
//! connect errors against a port where nothing listens and a tiny hand-written HTTP server.

use std::time::{Duration, Instant};

use crate::common::{NodePeer, free_port};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use switchboard::internals::sse::{SseClientTransport, SseConnectError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STEP_TIMEOUT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(STEP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP_TIMEOUT:?}"))
}

fn echo(message: &str) -> CallToolRequestParams {
    let args = serde_json::json!({ "message": message });
    CallToolRequestParams::new("echo").with_arguments(args.as_object().unwrap().clone())
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_calls_tools_on_server_everything() {
    let peer = NodePeer::start("sse");
    let transport = within(
        "connect",
        SseClientTransport::connect(
            reqwest::Client::new(),
            &peer.url("/sse"),
            vec![("X-Test-Header".to_owned(), "value".to_owned())],
        ),
    )
    .await
    .expect("connect to server-everything over legacy SSE");
    assert_eq!(transport.endpoint().path(), "/message");
    assert!(
        transport
            .endpoint()
            .query()
            .unwrap_or("")
            .contains("sessionId=")
    );

    let client = within("initialize", ().serve(transport))
        .await
        .expect("MCP initialize over legacy SSE");

    let tools = within("tools/list", client.peer().list_tools(None))
        .await
        .expect("tools/list");
    assert!(
        tools.tools.iter().any(|t| t.name == "echo"),
        "no echo tool in {:?}",
        tools.tools.iter().map(|t| &t.name).collect::<Vec<_>>()
    );

    let result = within("tools/call echo", client.peer().call_tool(echo("hi")))
        .await
        .expect("tools/call echo");
    assert_ne!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(text.contains("hi"), "echo answered {text:?}");

    // Sends run concurrently, and each answer finds its request.
    let calls = (0..8).map(|i| {
        let peer = client.peer().clone();
        async move { (i, peer.call_tool(echo(&format!("msg-{i}"))).await) }
    });
    for (i, result) in within("8 concurrent echo calls", futures::future::join_all(calls)).await {
        let text = text_of(&result.expect("concurrent echo"));
        assert!(text.contains(&format!("msg-{i}")), "call {i} got {text:?}");
    }

    // Closing drops the GET: the server sees the session end.
    within("cancel", client.cancel()).await.expect("cancel");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !peer.output().contains("Client Disconnected") {
        assert!(
            Instant::now() < deadline,
            "server did not see the SSE stream close; its output:\n{}",
            peer.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn nothing_listening_is_a_connect_request_error() {
    let url = format!("http://127.0.0.1:{}/sse", free_port());
    let err = within(
        "connect",
        SseClientTransport::connect(reqwest::Client::new(), &url, vec![]),
    )
    .await
    .expect_err("nothing listens there");
    match err {
        SseConnectError::Request(e) => assert!(e.is_connect(), "not a connect error: {e:?}"),
        other => panic!("expected SseConnectError::Request, got {other:?}"),
    }
}

/// Serves one connection: reads the request head, answers `response`, closes.
/// Returns the URL of `/sse` on it and the request head it received.
async fn one_shot_server(response: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    (url, task)
}

#[tokio::test]
async fn unauthorized_is_a_status_error_with_the_challenge() {
    let (url, server) = one_shot_server(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let err = within(
        "connect",
        SseClientTransport::connect(
            reqwest::Client::new(),
            &url,
            vec![("Authorization".to_owned(), "Bearer wrong".to_owned())],
        ),
    )
    .await
    .expect_err("401");
    match err {
        SseConnectError::Status { status, challenge } => {
            assert_eq!(status, 401);
            assert_eq!(challenge.as_deref(), Some("Bearer realm=\"x\""));
        }
        other => panic!("expected SseConnectError::Status, got {other:?}"),
    }
    let head = server.await.unwrap().to_ascii_lowercase();
    assert!(head.starts_with("get /sse "), "{head}");
    assert!(head.contains("accept: text/event-stream"), "{head}");
    assert!(head.contains("authorization: bearer wrong"), "{head}");
}

#[tokio::test]
async fn an_endpoint_on_another_origin_is_refused() {
    let (url, _server) = one_shot_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n\
         : hello\n\nevent: endpoint\ndata: http://elsewhere.invalid/message?sessionId=1\n\n",
    )
    .await;
    let err = within(
        "connect",
        SseClientTransport::connect(reqwest::Client::new(), &url, vec![]),
    )
    .await
    .expect_err("cross-origin endpoint");
    assert!(matches!(err, SseConnectError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn a_stream_that_ends_before_the_endpoint_is_a_protocol_error() {
    let (url, _server) = one_shot_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n\
         event: ping\ndata: {}\n\n",
    )
    .await;
    let err = within(
        "connect",
        SseClientTransport::connect(reqwest::Client::new(), &url, vec![]),
    )
    .await
    .expect_err("no endpoint event");
    assert!(matches!(err, SseConnectError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn a_non_event_stream_response_is_a_protocol_error() {
    let (url, _server) = one_shot_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\nhi",
    )
    .await;
    let err = within(
        "connect",
        SseClientTransport::connect(reqwest::Client::new(), &url, vec![]),
    )
    .await
    .expect_err("text/html");
    assert!(matches!(err, SseConnectError::Protocol(_)), "{err:?}");
}

/// Reads one HTTP/1.1 request (head, then a `Content-Length` body).
async fn read_request(socket: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed inside a request head");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while data.len() < head_end + length {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed inside a request body");
        data.extend_from_slice(&buf[..n]);
    }
    (head, data[head_end..head_end + length].to_vec())
}

#[tokio::test]
async fn send_and_receive_against_a_scripted_server() {
    use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage};
    use rmcp::transport::Transport;
    use switchboard::internals::sse::SseTransportError;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sse", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        // The event stream.
        let (mut stream, _) = listener.accept().await.unwrap();
        let (get_head, _) = read_request(&mut stream).await;
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\
                  : comment\n\nevent: endpoint\ndata: /message?sessionId=s1\n\n",
            )
            .await
            .unwrap();
        // First POST: accepted; its answer comes on the stream, after some noise.
        let (mut post, _) = listener.accept().await.unwrap();
        let (post_head, post_body) = read_request(&mut post).await;
        post.write_all(
            b"HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\nConnection: close\r\n\r\nAccepted",
        )
        .await
        .unwrap();
        stream
            .write_all(
                b"data: not json\n\nevent: other\ndata: {}\n\n: keep-alive\n\n\
                  event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n",
            )
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        drop(stream);
        // Second POST: refused.
        let (mut post, _) = listener.accept().await.unwrap();
        read_request(&mut post).await;
        post.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\n\
              Content-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        (get_head, post_head, post_body)
    });

    let mut transport = within(
        "connect",
        SseClientTransport::connect(
            reqwest::Client::new(),
            &url,
            vec![("X-Api-Key".to_owned(), "k1".to_owned())],
        ),
    )
    .await
    .expect("connect");
    let ping: ClientJsonRpcMessage =
        serde_json::from_str(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap();

    within("send", transport.send(ping.clone()))
        .await
        .expect("202 is success");
    let message = within("receive", transport.receive()).await;
    assert!(
        matches!(message, Some(JsonRpcMessage::Response(_))),
        "{message:?}"
    );
    assert!(
        within("receive at end", transport.receive())
            .await
            .is_none(),
        "the stream ended"
    );

    let err = within("send", transport.send(ping.clone()))
        .await
        .expect_err("401");
    match err {
        SseTransportError::Status {
            status, challenge, ..
        } => {
            assert_eq!(status, 401);
            assert_eq!(challenge.as_deref(), Some("Bearer error=\"invalid_token\""));
        }
        other => panic!("expected SseTransportError::Status, got {other:?}"),
    }

    within("close", transport.close()).await.expect("close");
    assert!(matches!(
        transport.send(ping).await,
        Err(SseTransportError::Closed)
    ));

    let (get_head, post_head, post_body) = within("server", server).await.unwrap();
    assert!(get_head.contains("x-api-key: k1"), "{get_head}");
    assert!(
        post_head.starts_with("post /message?sessionid=s1 "),
        "{post_head}"
    );
    assert!(post_head.contains("x-api-key: k1"), "{post_head}");
    assert!(
        post_head.contains("content-type: application/json"),
        "{post_head}"
    );
    let body: serde_json::Value = serde_json::from_slice(&post_body).unwrap();
    assert_eq!(body["method"], "ping");
    assert_eq!(body["id"], 1);
}
