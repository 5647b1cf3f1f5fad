//! A tiny demo MCP server (`echo`, `add`, `now`) for the Switchboard CLI's
//! built-in demo mode: something real to connect to without installing any
//! third-party server.

use std::time::SystemTime;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::tools::{add_tool, message_tool, schema};

/// The demo server: `echo {message}`, `add {a, b}`, `now {}`.
#[derive(Clone, Debug, Default)]
pub struct DemoServer;

impl DemoServer {
    /// A demo server.
    pub fn new() -> Self {
        Self
    }

    /// The demo tools.
    pub fn tools() -> Vec<Tool> {
        vec![
            message_tool("echo".into(), "Returns `message` unchanged."),
            add_tool(),
            Tool::new(
                "now",
                "The current UTC time (RFC 3339).",
                schema(json!({"type": "object", "properties": {}})),
            ),
        ]
    }
}

/// Serves the demo server on stdin/stdout until stdin closes.
pub async fn serve_demo_stdio() -> anyhow::Result<()> {
    DemoServer
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}

impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build()).with_server_info(
            Implementation::new("switchboard-demo", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        Self::tools().into_iter().find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let text = match request.name.as_ref() {
            "echo" => args
                .get("message")
                .and_then(Value::as_str)
                .ok_or_else(|| McpError::invalid_params("`message` must be a string", None))?
                .to_owned(),
            "add" => {
                let number = |key: &str| {
                    args.get(key).and_then(Value::as_f64).ok_or_else(|| {
                        McpError::invalid_params(format!("`{key}` must be a number"), None)
                    })
                };
                (number("a")? + number("b")?).to_string()
            }
            "now" => humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            other => {
                return Err(McpError::invalid_params(
                    format!("unknown tool `{other}`"),
                    None,
                ));
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}
