//! The result of one tool call, with nothing dropped.
//!
//! The systems we replace kept only the first text block (or only text), lost images and
//! `structuredContent`, and turned `isError` into a Python repr. [`CallOutcome`] keeps every
//! content block as the server sent it, and offers [`CallOutcome::text`] for the common case.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;
use serde_json::Value;

use crate::Error;

/// Everything a server returned for one `tools/call`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallOutcome {
    /// Every content block: text, image, audio, resource link, embedded resource.
    pub content: Vec<ContentBlock>,
    /// The structured result, when the tool returned one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured_content: Option<Value>,
    /// The tool reported failure.
    pub is_error: bool,
}

impl CallOutcome {
    /// All text blocks joined with newlines (other blocks are skipped).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for block in &self.content {
            if let Some(text) = block.as_text() {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&text.text);
            }
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
            })
        } else {
            Ok(self)
        }
    }
}

impl From<CallToolResult> for CallOutcome {
    fn from(result: CallToolResult) -> Self {
        CallOutcome {
            content: result.content,
            structured_content: result.structured_content,
            is_error: result.is_error.unwrap_or(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ContentBlock, ImageContent, TextContent};

    #[test]
    fn text_joins_every_text_block_and_skips_others() {
        let outcome = CallOutcome {
            content: vec![
                ContentBlock::Text(TextContent::new("one")),
                ContentBlock::Image(ImageContent::new("AAAA", "image/png")),
                ContentBlock::Text(TextContent::new("two")),
            ],
            structured_content: None,
            is_error: false,
        };
        assert_eq!(outcome.text(), "one\ntwo");
    }

    #[test]
    fn into_result_turns_is_error_into_a_tool_error_with_the_text() {
        let outcome = CallOutcome {
            content: vec![ContentBlock::Text(TextContent::new("boom"))],
            structured_content: None,
            is_error: true,
        };
        let err = outcome.into_result("s", "t").unwrap_err();
        assert_eq!(err.class(), crate::ErrorClass::ToolError);
        assert_eq!(err.to_string(), "server 's': tool 't' failed: boom");
    }
}
