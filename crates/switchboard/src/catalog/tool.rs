//! [`ExposedTool`]: one tool as the catalogue exposes it, in the engine's own types (no rmcp
//! type in it), with its [`ToolAnnotations`] and its argument check.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::arguments::{ArgumentSchema, Checked};
use crate::JsonObject;
use crate::error::Error;

/// A tool as the catalogue exposes it.
///
/// Serialises as one row of `switchboard tools --format json` (and reads back):
///
/// ```json
/// {"name": "files__read", "server": "files", "tool": "read", "title": "Read a file",
///  "description": "...", "input_schema": {...}, "output_schema": {...},
///  "annotations": {"read_only": true}}
/// ```
///
/// `tool` is [`original`](ExposedTool::original); `alias`, `title`, `output_schema` and
/// `annotations` are left out when absent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "ToolRow")]
pub struct ExposedTool {
    /// The exposed, provider-safe name.
    pub name: String,
    pub server: String,
    /// The server's own name for the tool: what upstream calls use.
    #[serde(rename = "tool")]
    pub original: String,
    /// The alias from `tool_overrides`, if one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The override, else the server's description, else one naming the tool and server.
    pub description: String,
    /// The JSON Schema of the arguments (`inputSchema`).
    pub input_schema: Arc<JsonObject>,
    /// The JSON Schema of `structuredContent` (`outputSchema`), when the tool declares one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Arc<JsonObject>>,
    /// What the server says about the tool's behaviour, as it gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotations>,
    #[serde(skip)]
    pub(super) arguments: ArgumentSchema,
}

/// What a server says about a tool's behaviour (MCP's `ToolAnnotations`): hints, not
/// guarantees, each `None` when the server did not say. MCP's defaults for an unset hint:
/// not read-only, destructive, not idempotent, open world.
///
/// Serialises with these field names (`read_only`, not MCP's `readOnlyHint`), unset ones
/// left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolAnnotations {
    /// A human-readable title for the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `readOnlyHint`: the tool does not modify its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `destructiveHint`: the tool may delete or overwrite (when not read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destructive: Option<bool>,
    /// `idempotentHint`: calling it again with the same arguments has no further effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// `openWorldHint`: the tool reaches outside systems (the web, other services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_world: Option<bool>,
}

impl ToolAnnotations {
    /// Whether running the tool twice is safe by the server's word (read-only or
    /// idempotent), so a call lost in flight may be sent again.
    pub fn repeatable(&self) -> bool {
        self.read_only == Some(true) || self.idempotent == Some(true)
    }
}

impl From<&rmcp::model::ToolAnnotations> for ToolAnnotations {
    fn from(a: &rmcp::model::ToolAnnotations) -> Self {
        ToolAnnotations {
            title: a.title.clone(),
            read_only: a.read_only_hint,
            destructive: a.destructive_hint,
            idempotent: a.idempotent_hint,
            open_world: a.open_world_hint,
        }
    }
}

/// An [`ExposedTool`] as read from JSON, before its argument checks are set up.
#[derive(Deserialize)]
struct ToolRow {
    name: String,
    server: String,
    tool: String,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    title: Option<String>,
    description: String,
    input_schema: Arc<JsonObject>,
    #[serde(default)]
    output_schema: Option<Arc<JsonObject>>,
    #[serde(default)]
    annotations: Option<ToolAnnotations>,
}

impl From<ToolRow> for ExposedTool {
    fn from(row: ToolRow) -> Self {
        let arguments = ArgumentSchema::new(
            Value::Object((*row.input_schema).clone()),
            &row.server,
            &row.tool,
        );
        ExposedTool {
            name: row.name,
            server: row.server,
            original: row.tool,
            alias: row.alias,
            title: row.title,
            description: row.description,
            input_schema: row.input_schema,
            output_schema: row.output_schema,
            annotations: row.annotations,
            arguments,
        }
    }
}

impl ExposedTool {
    /// Whether a call lost in flight may be sent again: the server says the tool is
    /// read-only or idempotent ([`ToolAnnotations::repeatable`]).
    pub fn repeatable(&self) -> bool {
        self.annotations
            .as_ref()
            .is_some_and(ToolAnnotations::repeatable)
    }

    /// Checks `arguments` against the input schema (see `arguments.rs`): returns what to
    /// send, with disallowed nulls dropped, or every problem found.
    pub fn check_arguments(
        &self,
        arguments: Option<JsonObject>,
    ) -> Result<Option<JsonObject>, Error> {
        match self.arguments.check(arguments) {
            Checked::Valid(arguments) => Ok(arguments),
            Checked::Invalid(problems) => Err(Error::InvalidArguments {
                server: self.server.clone(),
                tool: self.name.clone(),
                problems,
            }),
        }
    }
}
