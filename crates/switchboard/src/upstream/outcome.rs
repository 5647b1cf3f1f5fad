//! The result of one tool call (and of reading a resource or getting a prompt), with
//! nothing dropped, in the engine's own types.
//!
//! The systems we replace kept only the first text block (or only text), lost images and
//! `structuredContent`, and turned `isError` into a Python repr. [`CallOutcome`] keeps every
//! content block as the server sent it (a [`Content`] is the block's MCP JSON, so block
//! types and fields the engine does not know yet survive too), and offers
//! [`CallOutcome::text`] for the common case. No rmcp type is part of it: faces (gateway,
//! Python) pass it on or serialise it without knowing the MCP library underneath.

use rmcp::model::CallToolResult;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

/// Everything a server returned for one `tools/call`.
///
/// Serialises in MCP's wire shape (a `CallToolResult`):
/// `{"content": [...], "structuredContent": {...}, "isError": false}`, `structuredContent`
/// left out when there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutcome {
    /// Every content block: text, image, audio, resource link, embedded resource.
    pub content: Vec<Content>,
    /// The structured result, when the tool returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// The tool reported failure.
    #[serde(default)]
    pub is_error: bool,
}

impl CallOutcome {
    /// All text blocks joined with newlines (other blocks are skipped).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for text in self.content.iter().filter_map(Content::as_text) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(text);
        }
        out
    }

    /// `Err(Error::Tool)` carrying the text when the tool reported failure, else `Ok(self)`.
    pub fn into_result(self, server: &str, tool: &str) -> Result<CallOutcome, Error> {
        if self.is_error {
            Err(Error::Tool {
                server: server.to_owned(),
                tool: tool.to_owned(),
                message: self.text(),
                code: None,
                data: None,
            })
        } else {
            Ok(self)
        }
    }
}

impl CallOutcome {
    /// What a call whose input-required result went back to its caller ends with at the
    /// connection (the hub gives the caller that result instead: `input.rs`).
    pub(crate) fn handed_back() -> CallOutcome {
        CallOutcome {
            content: Vec::new(),
            structured_content: None,
            is_error: false,
        }
    }
}

impl From<CallToolResult> for CallOutcome {
    fn from(result: CallToolResult) -> Self {
        CallOutcome {
            content: result
                .content
                .iter()
                .map(|block| Content(serde_json::to_value(block).unwrap_or_default()))
                .collect(),
            structured_content: result.structured_content,
            is_error: result.is_error.unwrap_or(false),
        }
    }
}

/// One content block of a tool result, as the MCP JSON object the server sent
/// (`{"type": "text", "text": "..."}`, `{"type": "image", "data": "...", "mimeType":
/// "image/png"}`, ...), with its `annotations` and `_meta` if any. Serialises as that object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Content(Value);

impl Content {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Content {
        let mut block = Map::new();
        block.insert("type".into(), "text".into());
        block.insert("text".into(), Value::String(text.into()));
        Content(Value::Object(block))
    }

    /// The block's `type`: `text`, `image`, `audio`, `resource_link`, `resource`, or
    /// whatever newer kind the server sent (empty when it sent none).
    pub fn kind(&self) -> &str {
        self.0
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The text of a text block.
    pub fn as_text(&self) -> Option<&str> {
        if self.kind() != "text" {
            return None;
        }
        self.0.get("text").and_then(Value::as_str)
    }

    /// The MIME type of an image, audio or embedded resource block, when it has one.
    pub fn mime_type(&self) -> Option<&str> {
        let block = match self.kind() {
            "resource" => self.0.get("resource")?,
            _ => &self.0,
        };
        block.get("mimeType").and_then(Value::as_str)
    }

    /// The URI of a resource link or an embedded resource block, to change in place.
    pub(crate) fn resource_uri_mut(&mut self) -> Option<&mut String> {
        let block = match self.kind() {
            "resource_link" => &mut self.0,
            "resource" => self.0.get_mut("resource")?,
            _ => return None,
        };
        match block.get_mut("uri")? {
            Value::String(uri) => Some(uri),
            _ => None,
        }
    }

    /// The block as MCP JSON.
    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The block as MCP JSON, owned.
    pub fn into_json(self) -> Value {
        self.0
    }
}

impl From<Value> for Content {
    /// A block from its MCP JSON (not checked: the engine passes on what servers send).
    fn from(block: Value) -> Content {
        Content(block)
    }
}

/// What a server returned for one `resources/read`: every part of the resource (one, or
/// several for a resource that has parts). Serialises in MCP's wire shape
/// (`{"contents": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRead {
    pub contents: Vec<ResourceContents>,
}

impl ResourceRead {
    /// The text of every text part, joined with newlines (blobs are skipped).
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .contents
            .iter()
            .filter_map(|c| c.text.as_deref())
            .collect();
        texts.join("\n")
    }
}

/// One part of a read resource (MCP's `TextResourceContents` or `BlobResourceContents`):
/// `text`, or `blob` (base64), with its URI and MIME type. Serialises as MCP's object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceContents {
    /// The part's URI. From a hub this is the exposed URI (`SERVER+URI`); from one
    /// server's session, the server's own.
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Binary content, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<String>,
}

impl ResourceContents {
    /// How many bytes `blob` decodes to (from its base64 length and padding), if a blob.
    pub fn blob_len(&self) -> Option<usize> {
        let blob = self.blob.as_deref()?.trim_end();
        let padding = blob.bytes().rev().take_while(|b| *b == b'=').count();
        Some((blob.len() / 4 * 3 + blob.len() % 4 * 3 / 4).saturating_sub(padding))
    }
}

impl From<rmcp::model::ReadResourceResult> for ResourceRead {
    fn from(result: rmcp::model::ReadResourceResult) -> Self {
        use rmcp::model::ResourceContents as Raw;
        let contents = result.contents.into_iter().map(|part| match part {
            Raw::TextResourceContents {
                uri,
                mime_type,
                text,
                ..
            } => ResourceContents {
                uri,
                mime_type,
                text: Some(text),
                blob: None,
            },
            Raw::BlobResourceContents {
                uri,
                mime_type,
                blob,
                ..
            } => ResourceContents {
                uri,
                mime_type,
                text: None,
                blob: Some(blob),
            },
            // A kind rmcp knows and we do not: its JSON, in our shape as far as it goes.
            other => serde_json::to_value(other)
                .and_then(serde_json::from_value)
                .unwrap_or(ResourceContents {
                    uri: String::new(),
                    mime_type: None,
                    text: None,
                    blob: None,
                }),
        });
        ResourceRead {
            contents: contents.collect(),
        }
    }
}

/// What a server returned for one `prompts/get`: the messages to put in front of a model.
/// Serialises in MCP's wire shape (`{"description": "...", "messages": [...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

impl PromptOutcome {
    /// The text blocks of every message, one message per line (other blocks are skipped).
    pub fn text(&self) -> String {
        let texts: Vec<&str> = self
            .messages
            .iter()
            .filter_map(|m| m.content.as_text())
            .collect();
        texts.join("\n")
    }
}

/// One message of a prompt: who says it and one content block (a [`Content`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl From<rmcp::model::GetPromptResult> for PromptOutcome {
    fn from(result: rmcp::model::GetPromptResult) -> Self {
        let messages = result.messages.into_iter().map(|message| PromptMessage {
            role: match message.role {
                rmcp::model::Role::User => Role::User,
                rmcp::model::Role::Assistant => Role::Assistant,
            },
            content: Content(serde_json::to_value(&message.content).unwrap_or_default()),
        });
        PromptOutcome {
            description: result.description,
            messages: messages.collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, ImageContent, TextContent};
    use serde_json::json;

    fn outcome(blocks: Vec<ContentBlock>, is_error: bool) -> CallOutcome {
        let mut result = CallToolResult::success(blocks);
        result.is_error = Some(is_error);
        CallOutcome::from(result)
    }

    fn text(text: &str) -> ContentBlock {
        ContentBlock::Text(TextContent::new(text))
    }

    /// A 70-byte PNG.
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

    fn png() -> ContentBlock {
        ContentBlock::Image(ImageContent::new("AAAA", "image/png"))
    }

    #[test]
    fn text_joins_every_text_block_and_skips_others() {
        let outcome = outcome(vec![text("one"), png(), text("two")], false);
        assert_eq!(outcome.text(), "one\ntwo");
        let kinds: Vec<&str> = outcome.content.iter().map(Content::kind).collect();
        assert_eq!(kinds, ["text", "image", "text"]);
        assert_eq!(outcome.content[1].mime_type(), Some("image/png"));
        assert_eq!(outcome.content[0], Content::text("one"));
    }

    #[test]
    fn it_serialises_in_the_mcp_wire_shape_and_reads_back() {
        let outcome = outcome(vec![text("hi"), png()], false);
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(
            json,
            json!({
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                ],
                "isError": false,
            })
        );
        let back: CallOutcome = serde_json::from_value(json).unwrap();
        assert_eq!(back, outcome);
    }

    #[test]
    fn blob_len_is_the_decoded_size() {
        let part = |blob: &str| ResourceContents {
            uri: "x".into(),
            mime_type: None,
            text: None,
            blob: Some(blob.into()),
        };
        assert_eq!(part("").blob_len(), Some(0));
        assert_eq!(part("YQ==").blob_len(), Some(1));
        assert_eq!(part("YWI=").blob_len(), Some(2));
        assert_eq!(part("YWJj").blob_len(), Some(3));
        assert_eq!(part(PNG).blob_len(), Some(70));
        let text = ResourceContents {
            blob: None,
            text: Some("t".into()),
            ..part("")
        };
        assert_eq!(text.blob_len(), None);
    }

    #[test]
    fn into_result_turns_is_error_into_a_tool_error_with_the_text() {
        let outcome = outcome(vec![text("boom")], true);
        let err = outcome.into_result("s", "t").unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::ToolError);
        assert_eq!(err.to_string(), "server 's': tool 't' failed: boom");
    }
}
