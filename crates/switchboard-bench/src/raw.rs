//! A downstream MCP session spoken to with raw JSON-RPC over HTTP (reqwest), so the bench
//! picks the replica each request goes to, which an MCP client library does not let it do:
//! `initialize` on one replica, the next call on another.

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The revision the sessions ask for.
const PROTOCOL: &str = "2025-11-25";

/// A downstream session spoken to with raw JSON-RPC over HTTP, so each request can go to the
/// replica the bench picks.
pub struct RawSession {
    id: String,
    version: String,
    next_id: u64,
}

/// POSTs one JSON-RPC message; the `Mcp-Session-Id` it was answered with and the response
/// (`None` for a notification's 202). A JSON-RPC error is an error.
async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&RawSession>,
    message: Value,
) -> anyhow::Result<(Option<String>, Option<Value>)> {
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(&message);
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", &session.id)
            .header("mcp-protocol-version", &session.version);
    }
    let response = request.send().await?;
    let status = response.status();
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    if message.get("id").is_none() {
        return Ok((id, None));
    }
    let answer =
        parse_answer(&body).with_context(|| format!("{url} sent no JSON-RPC answer: {body:?}"))?;
    if let Some(error) = answer.get("error") {
        bail!("{url} answered a JSON-RPC error: {error}");
    }
    Ok((id, Some(answer)))
}

/// The JSON-RPC answer in a body that is JSON or an SSE stream (its `data:` lines).
fn parse_answer(body: &str) -> Option<Value> {
    if let Ok(value) = serde_json::from_str::<Value>(body) {
        return Some(value);
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|v| v.get("result").is_some() || v.get("error").is_some())
}

impl RawSession {
    /// `initialize` + `notifications/initialized` at `url`.
    pub async fn open(http: &reqwest::Client, url: &str) -> anyhow::Result<RawSession> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "switchboard-bench", "version": "0"}}});
        let (id, answer) = post(http, url, None, init).await?;
        let id = id.context("initialize was answered without an Mcp-Session-Id")?;
        let version = answer
            .as_ref()
            .and_then(|a| a["result"]["protocolVersion"].as_str())
            .unwrap_or(PROTOCOL)
            .to_owned();
        let session = RawSession {
            id,
            version,
            next_id: 1,
        };
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        post(http, url, Some(&session), initialized).await?;
        Ok(session)
    }

    /// One `kit__echo` call at `url`.
    pub async fn call(&mut self, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "kit__echo", "arguments": {"message": "hello from switchboard-bench"}}});
        post(http, url, Some(self), call).await?;
        Ok(())
    }

    /// DELETE: the client ends the session.
    pub async fn end(&self, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
        let response = http
            .delete(url)
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", &self.version)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "DELETE at {url} answered {}",
            response.status()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_json_and_from_sse() {
        let json = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25"}}"#;
        assert_eq!(parse_answer(json).unwrap()["id"], 1);
        let sse = "event: message\nid: 0\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n\
                   data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\n";
        assert_eq!(parse_answer(sse).unwrap()["id"], 3);
        assert!(parse_answer("data: not json\n").is_none());
    }
}
