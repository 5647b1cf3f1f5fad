//! A hand-written MCP server for the unit tests of [`super::Link`] and [`super::SessionPool`]:
//! newline-delimited JSON-RPC over an in-memory duplex (no process, no socket), answering
//! `initialize`, `ping`, `tools/list` and `tools/call`, and counting what it sees.
//!
//! Its tools: `echo` answers `{"connection": N, "arguments": ...}` (N counts the connections
//! from 1, so a test sees which connection a call went over); `hang_up` does the same,
//! except that while [`Responder::hang_ups`] is above zero it reads the call and closes the
//! connection without answering (a server that died after reading a request: the call may
//! have run).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio_util::sync::CancellationToken;

use super::Dial;
use crate::error::Error;
use crate::sync::lock;
use crate::upstream::Upstream;

#[derive(Default)]
pub(super) struct Responder {
    /// Dials made, refused ones included.
    pub attempts: AtomicUsize,
    /// Connections opened (dials not refused).
    pub connections: AtomicUsize,
    /// Connections open now.
    pub open: AtomicUsize,
    /// `tools/call` requests read, all connections together.
    pub calls: AtomicUsize,
    /// How many more `hang_up` calls close their connection instead of answering.
    pub hang_ups: AtomicUsize,
    /// How many more dials fail as unreachable (a server that is down).
    pub refusals: AtomicUsize,
    /// The variables of each connection's dial, in dial order.
    pub variables: Mutex<Vec<Option<BTreeMap<String, String>>>>,
    /// The session each connection was dialled for, in dial order.
    pub sessions: Mutex<Vec<Option<String>>>,
    /// Cancelled by [`Responder::drop_connections`]: every connection open then closes.
    gone: Mutex<CancellationToken>,
}

impl Responder {
    pub fn new() -> Arc<Responder> {
        Arc::new(Responder::default())
    }

    /// Opens connections to this responder (the engine's `Dial`), recording each dial's
    /// variables.
    pub fn dial(self: &Arc<Self>) -> Dial {
        let responder = self.clone();
        Arc::new(move |server, session| {
            let responder = responder.clone();
            Box::pin(async move {
                responder.attempts.fetch_add(1, Ordering::SeqCst);
                if take_one(&responder.refusals) {
                    return Err(Error::Unreachable {
                        server: server.name.clone(),
                        reason: "connection refused".to_string(),
                    });
                }
                lock(&responder.sessions).push(session.as_ref().map(|s| s.id.to_string()));
                let variables = session.map(|s| (*s.variables).clone());
                lock(&responder.variables).push(variables);
                let stream = responder.open();
                Upstream::serve(&server, stream).await
            })
        })
    }

    /// Closes every open connection from the server's side.
    pub fn drop_connections(&self) {
        std::mem::take(&mut *lock(&self.gone)).cancel();
    }

    /// Starts serving a new connection; returns the client's end.
    fn open(self: &Arc<Self>) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let number = self.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let gone = lock(&self.gone).clone();
        self.open.fetch_add(1, Ordering::SeqCst);
        let responder = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = gone.cancelled() => {}
                () = responder.serve(server, number) => {}
            }
            // The stream is dropped by now: the client sees the connection end.
            responder.open.fetch_sub(1, Ordering::SeqCst);
        });
        client
    }

    /// Answers one connection until the client closes it or a `hang_up` ends it.
    async fn serve(&self, stream: DuplexStream, connection: usize) {
        let (reader, mut writer) = tokio::io::split(stream);
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                return;
            };
            // Notifications and responses need no answer.
            let (Some(id), Some(method)) = (message.get("id"), message["method"].as_str()) else {
                continue;
            };
            let mut reply = match self.answer(method, &message["params"], connection) {
                Some(Ok(result)) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                // Like a classic server: `server/discover` is unknown too.
                Some(Err(())) => json!({"jsonrpc": "2.0", "id": id,
                    "error": {"code": -32601, "message": format!("method not found: {method}")}}),
                None => return,
            }
            .to_string();
            reply.push('\n');
            if writer.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The result of request `method` (`Err` for an unknown method), or `None` to hang up.
    fn answer(&self, method: &str, params: &Value, connection: usize) -> Option<Result<Value, ()>> {
        let tool = |name: &str| json!({"name": name, "inputSchema": {"type": "object"}});
        Some(Ok(match method {
            "initialize" => json!({
                "protocolVersion": params["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "test-responder", "version": "1"},
            }),
            "tools/list" => json!({"tools": [tool("echo"), tool("hang_up")]}),
            "tools/call" => {
                self.calls.fetch_add(1, Ordering::SeqCst);
                if params["name"] == "hang_up" && take_one(&self.hang_ups) {
                    return None;
                }
                let text = json!({"connection": connection, "arguments": params["arguments"]});
                json!({"content": [{"type": "text", "text": text.to_string()}], "isError": false})
            }
            "ping" => json!({}),
            _ => return Some(Err(())),
        }))
    }
}

/// Takes one from `counter` if it is above zero.
fn take_one(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
