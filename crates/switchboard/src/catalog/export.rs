//! The catalogue in the function-calling forms of model providers.
//!
//! - OpenAI chat completions: `{"type":"function","function":{"name","description","parameters"}}`
//! - OpenAI Responses: `{"type":"function","name","description","parameters"}`
//! - Anthropic messages: `{"name","description","input_schema"}`
//!
//! Names are already provider-safe (see `naming.rs`). A tool without a schema gets
//! `{"type":"object","properties":{}}`, which every provider accepts.

use serde_json::{Value, json};

use super::ExposedTool;

/// A provider's function-calling form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    OpenAiChat,
    OpenAiResponses,
    Anthropic,
}

impl ExposedTool {
    /// This tool in `format`.
    pub fn export(&self, format: ExportFormat) -> Value {
        let parameters = self.parameters();
        match format {
            ExportFormat::OpenAiChat => json!({
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": parameters,
                }
            }),
            ExportFormat::OpenAiResponses => json!({
                "type": "function",
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            }),
            ExportFormat::Anthropic => json!({
                "name": self.name,
                "description": self.description,
                "input_schema": parameters,
            }),
        }
    }

    /// The input schema as providers want it: an object schema with `properties`.
    pub fn parameters(&self) -> Value {
        let mut schema = (*self.input_schema).clone();
        if !schema.contains_key("type") {
            schema.insert("type".into(), "object".into());
        }
        if schema.get("type") == Some(&Value::from("object")) && !schema.contains_key("properties")
        {
            schema.insert("properties".into(), json!({}));
        }
        Value::Object(schema)
    }
}
