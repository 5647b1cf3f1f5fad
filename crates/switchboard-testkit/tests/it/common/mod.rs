//! A deliberately small raw MCP client (reqwest + hand-parsed SSE) so the
//! testkit's own tests check the wire format rather than trusting an SDK.

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Waits up to 10 s for `check` to hold (no timing assertions: only a cap).
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn initialize_request(id: u64) -> Value {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "testkit-tests", "version": "0"}
        }
    })
}

pub fn call_request(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

/// The text of the first content block of a `tools/call` result.
pub fn first_text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text block in {result}"))
        .to_owned()
}

/// JSON values carried by the `data:` lines of an SSE body.
pub fn sse_data(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str(data).ok())
        .collect()
}

/// Streamable HTTP client.
pub struct HttpClient {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub bearer: Option<String>,
    next_id: u64,
}

impl HttpClient {
    pub fn new(url: String, bearer: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url,
            session: None,
            bearer: bearer.map(str::to_owned),
            next_id: 1,
        }
    }

    pub fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .header("x-testkit", "yes")
            .body(body.to_string());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request
    }

    /// Sends one JSON-RPC message; returns every JSON-RPC message answered.
    pub async fn send(&mut self, body: &Value) -> Vec<Value> {
        let response = self.post(body).send().await.expect("POST");
        assert!(
            response.status().is_success(),
            "POST {body} -> {}",
            response.status()
        );
        if let Some(session) = response.headers().get("mcp-session-id") {
            self.session = Some(session.to_str().unwrap().to_owned());
        }
        let is_json = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let text = response.text().await.expect("body");
        if is_json {
            vec![serde_json::from_str(&text).expect("JSON body")]
        } else {
            sse_data(&text)
        }
    }

    /// Sends a request and returns its `result` (panics on a JSON-RPC error).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let messages = self.send(&body).await;
        let response = messages
            .into_iter()
            .find(|m| m["id"] == json!(id))
            .unwrap_or_else(|| panic!("no response to {method}"));
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    pub async fn initialize(&mut self) -> Value {
        let result = self.request_initialize().await;
        self.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        result
    }

    async fn request_initialize(&mut self) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let messages = self.send(&initialize_request(id)).await;
        messages
            .into_iter()
            .find(|m| m["id"] == json!(id))
            .expect("initialize response")["result"]
            .clone()
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }
}

/// Legacy SSE client: one GET stream, POSTs to the announced endpoint.
pub struct SseClient {
    pub http: reqwest::Client,
    pub base: String,
    pub endpoint: String,
    pub bearer: Option<String>,
    events: mpsc::UnboundedReceiver<(String, String)>,
    reader: tokio::task::JoinHandle<()>,
    next_id: u64,
}

impl SseClient {
    /// Opens `GET url` and waits for the `endpoint` event.
    pub async fn connect(url: &str, bearer: Option<&str>) -> Self {
        let http = reqwest::Client::new();
        let mut request = http.get(url).header("accept", "text/event-stream");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET /sse");
        assert_eq!(response.status(), 200);
        let (tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            let mut body = response.bytes_stream();
            let mut buffer = String::new();
            let (mut event, mut data) = (String::new(), String::new());
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find('\n') {
                    let line = buffer[..end].trim_end_matches('\r').to_owned();
                    buffer.drain(..=end);
                    if line.is_empty() {
                        if !data.is_empty() || !event.is_empty() {
                            let _ =
                                tx.send((std::mem::take(&mut event), std::mem::take(&mut data)));
                        }
                    } else if let Some(value) = line.strip_prefix("event:") {
                        event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
            }
        });
        let (event, endpoint) = events.recv().await.expect("endpoint event");
        assert_eq!(event, "endpoint");
        let base = url.trim_end_matches("/sse").to_owned();
        Self {
            http,
            base,
            endpoint,
            bearer: bearer.map(str::to_owned),
            events,
            reader,
            next_id: 1,
        }
    }

    /// POSTs one message to the session endpoint; returns the HTTP status.
    pub async fn post(&self, body: &Value) -> reqwest::StatusCode {
        let mut request = self
            .http
            .post(format!("{}{}", self.base, self.endpoint))
            .header("content-type", "application/json")
            .header("x-testkit", "yes")
            .body(body.to_string());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("POST /message").status()
    }

    /// The next `message` event, parsed.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let (event, data) = self.events.recv().await.expect("SSE stream ended");
            if event == "message" {
                return serde_json::from_str(&data).expect("JSON message");
            }
        }
    }

    /// Sends a request; returns its response and any messages seen before it.
    pub async fn request_with_preceding(
        &mut self,
        method: &str,
        params: Value,
    ) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        assert_eq!(self.post(&body).await, reqwest::StatusCode::ACCEPTED);
        let mut before = Vec::new();
        loop {
            let message = self.next_message().await;
            if message["id"] == json!(id) {
                assert!(message.get("error").is_none(), "{method} failed: {message}");
                return (message["result"].clone(), before);
            }
            before.push(message);
        }
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_with_preceding(method, params).await.0
    }

    pub async fn initialize(&mut self) -> Value {
        let result = self
            .request("initialize", initialize_request(0)["params"].clone())
            .await;
        let status = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED);
        result
    }

    pub async fn call(&mut self, tool: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": tool, "arguments": args}))
            .await
    }

    /// Drops the GET stream (ends the session on the server).
    pub fn disconnect(self) {
        self.reader.abort();
    }
}
