//! The stdio transport: JSON-RPC lines on stdin/stdout (logs go to stderr).

use rmcp::ServiceExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::{Knobs, TestServer};

/// Serves one MCP session on stdin/stdout until stdin closes.
///
/// With `hang_initialize`, reads and ignores everything until stdin closes,
/// so `initialize` is never answered but the process still exits on EOF.
pub async fn serve_stdio(knobs: Knobs) -> anyhow::Result<()> {
    if knobs.hang_initialize {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 8192];
        while stdin.read(&mut buf).await? > 0 {}
        return Ok(());
    }
    if knobs.ignore_discover {
        // Like servers that drop requests they do not know: `server/discover` never
        // reaches the server, and nothing answers it.
        let (requests, server_end) = tokio::io::duplex(64 * 1024);
        tokio::spawn(forward_all_but_discover(requests));
        let running = TestServer::new(knobs)
            .serve((server_end, tokio::io::stdout()))
            .await?;
        running.waiting().await?;
        return Ok(());
    }
    let running = TestServer::new(knobs)
        .serve(rmcp::transport::stdio())
        .await?;
    running.waiting().await?;
    Ok(())
}

/// Copies stdin's lines to `to`, leaving out `server/discover` requests.
async fn forward_all_but_discover(mut to: tokio::io::DuplexStream) -> std::io::Result<()> {
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let message: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        if message.is_some_and(|m| m["method"] == "server/discover") {
            continue;
        }
        to.write_all(line.as_bytes()).await?;
        to.write_all(b"\n").await?;
    }
    Ok(())
}
