//! The engine's documents as rmcp's wire types, for the MCP face.
//!
//! Tools are built field by field (the engine names annotation hints its own way). Call
//! outcomes, reads, prompt results, resources, templates and prompts already serialise in
//! MCP's shapes (the engine's `wire` rule), so they go through serde into rmcp's types: one
//! conversion, no field lists to keep in step.

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate,
    ResultType, Tool, ToolAnnotations,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use switchboard::{
    CallOutcome, ExposedPrompt, ExposedResource, ExposedResourceTemplate, ExposedTool,
    PromptOutcome, ResourceRead,
};

/// An exposed tool as MCP's `Tool`: its exposed name, the catalogue's description and
/// schemas, the server's annotations.
pub fn tool(exposed: &ExposedTool) -> Tool {
    let mut tool = Tool::new(
        exposed.name.clone(),
        exposed.description.clone(),
        exposed.input_schema.clone(),
    );
    tool.title = exposed.title.clone();
    tool.output_schema = exposed.output_schema.clone();
    tool.annotations = exposed.annotations.as_ref().map(|a| {
        ToolAnnotations::from_raw(
            a.title.clone(),
            a.read_only,
            a.destructive,
            a.idempotent,
            a.open_world,
        )
    });
    tool
}

// A result made through serde has no `resultType` (an older revision's shape); rmcp's
// constructors say `complete`, which 2026-07-28 requires, and rmcp drops it again for
// peers of older revisions. So do the same.

pub fn call_result(outcome: &CallOutcome) -> Result<CallToolResult, ErrorData> {
    let mut result: CallToolResult = reshape(outcome)?;
    result.result_type = Some(ResultType::COMPLETE);
    Ok(result)
}

pub fn read_result(read: &ResourceRead) -> Result<ReadResourceResult, ErrorData> {
    let mut result: ReadResourceResult = reshape(read)?;
    result.result_type = Some(ResultType::COMPLETE);
    Ok(result)
}

pub fn prompt_result(outcome: &PromptOutcome) -> Result<GetPromptResult, ErrorData> {
    let mut result: GetPromptResult = reshape(outcome)?;
    result.result_type = Some(ResultType::COMPLETE);
    Ok(result)
}

/// An exposed resource as MCP's `Resource`, under its exposed URI (`SERVER+URI`, or the
/// server's own with `prefix = "never"`).
pub fn resource(exposed: &ExposedResource) -> Result<Resource, ErrorData> {
    reshape(&json!({
        "uri": exposed.uri,
        "name": exposed.name,
        "title": exposed.title,
        "description": exposed.description,
        "mimeType": exposed.mime_type,
        "size": exposed.size,
    }))
}

pub fn resource_template(exposed: &ExposedResourceTemplate) -> Result<ResourceTemplate, ErrorData> {
    reshape(&json!({
        "uriTemplate": exposed.uri_template,
        "name": exposed.name,
        "title": exposed.title,
        "description": exposed.description,
        "mimeType": exposed.mime_type,
    }))
}

/// An exposed prompt as MCP's `Prompt`, under its exposed name (`SERVER__PROMPT`).
pub fn prompt(exposed: &ExposedPrompt) -> Result<Prompt, ErrorData> {
    reshape(&json!({
        "name": exposed.name,
        "title": exposed.title,
        "description": exposed.description,
        "arguments": exposed.arguments,
    }))
}

/// `value` read back as `T` (the same JSON shape); nulls are dropped first, since MCP's
/// optional fields are absent rather than null.
fn reshape<T: DeserializeOwned>(value: &impl Serialize) -> Result<T, ErrorData> {
    let mut json = serde_json::to_value(value).map_err(internal)?;
    drop_nulls(&mut json);
    serde_json::from_value(json).map_err(internal)
}

fn drop_nulls(value: &mut serde_json::Value) {
    if let serde_json::Value::Object(map) = value {
        map.retain(|_, v| !v.is_null());
    }
}

fn internal(error: serde_json::Error) -> ErrorData {
    ErrorData::internal_error(
        format!("the gateway could not convert a result: {error}"),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_arguments_keep_their_shape() {
        let exposed: ExposedPrompt = serde_json::from_value(json!({
            "name": "kit__greet", "server": "kit", "prompt": "greet",
            "arguments": [{"name": "name", "required": true}],
        }))
        .unwrap();
        let prompt = prompt(&exposed).unwrap();
        assert_eq!(prompt.name, "kit__greet");
        let arguments = prompt.arguments.unwrap();
        assert_eq!(arguments[0].name, "name");
        assert_eq!(arguments[0].required, Some(true));
    }

    #[test]
    fn resources_keep_the_exposed_uri() {
        let exposed: ExposedResource = serde_json::from_value(json!({
            "uri": "kit+testkit://static/hello.txt", "server": "kit",
            "server_uri": "testkit://static/hello.txt", "name": "hello", "mime_type": "text/plain",
        }))
        .unwrap();
        let resource = resource(&exposed).unwrap();
        assert_eq!(resource.uri, "kit+testkit://static/hello.txt");
        assert_eq!(resource.mime_type.as_deref(), Some("text/plain"));
    }
}
