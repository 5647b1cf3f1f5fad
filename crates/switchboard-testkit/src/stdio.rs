//! The stdio transport: JSON-RPC lines on stdin/stdout (logs go to stderr).

use rmcp::ServiceExt;
use tokio::io::AsyncReadExt;

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
    let running = TestServer::new(knobs)
        .serve(rmcp::transport::stdio())
        .await?;
    running.waiting().await?;
    Ok(())
}
