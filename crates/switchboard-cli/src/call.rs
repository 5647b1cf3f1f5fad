//! `switchboard call`: call one tool and print what it returned.

use std::time::Duration;

use serde_json::{Map, Value};
use switchboard::{CallOutcome, Connector, ServerConfig};
use tokio::time::Instant;

use crate::SourceArgs;
use crate::source::{EXIT_BAD_INPUT, Source};

pub async fn run(
    args: &SourceArgs,
    name: &str,
    arguments: Option<&str>,
    timeout: Option<Duration>,
    json: bool,
) -> u8 {
    let arguments = match parse_arguments(arguments) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let source = match Source::from_args(args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let (server, tool) = match resolve(&source, name) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };

    let connector = Connector::new();
    let upstream = match source.connect(&connector, &server).await {
        Ok(upstream) => upstream,
        Err(error) => {
            eprintln!("error: {error} [{}]", error.class());
            return 1;
        }
    };
    // The timeout is the call's own; connecting had its connect_timeout.
    let deadline = Instant::now() + timeout.unwrap_or(server.tool_call_timeout);
    let result = upstream.call_tool(&tool, arguments, deadline).await;
    upstream.close().await;
    match result {
        Ok(outcome) => {
            print_outcome(&outcome, json);
            if outcome.is_error { 1 } else { 0 }
        }
        Err(error) => {
            eprintln!("error: {error} [{}]", error.class());
            1
        }
    }
}

/// Parses the arguments JSON, which must be an object; errors say where it went wrong.
fn parse_arguments(text: Option<&str>) -> Result<Option<Map<String, Value>>, String> {
    let Some(text) = text else { return Ok(None) };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object like '{{\"message\": \"hi\"}}', not {}",
            kind(&other)
        )),
        // serde_json's message ends with "at line L column C".
        Err(e) => Err(format!("invalid JSON arguments: {e}")),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Finds the server and the server's own tool name for NAME.
fn resolve(source: &Source, name: &str) -> Result<(ServerConfig, String), String> {
    let servers = source.servers();
    if !source.prefixed() {
        return Ok((servers[0].clone(), name.to_owned()));
    }
    // The longest server name that prefixes NAME wins, so `a__b__tool` can reach server `a__b`.
    let found = servers
        .iter()
        .filter_map(|s| {
            let tool = name.strip_prefix(s.name.as_str())?.strip_prefix("__")?;
            Some((s, tool))
        })
        .max_by_key(|(s, _)| s.name.len());
    match found {
        Some((server, tool)) if !tool.is_empty() => Ok((server.clone(), tool.to_owned())),
        _ => {
            let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
            Err(format!(
                "'{name}' does not name a tool as SERVER__TOOL of an enabled server (servers: {}); `switchboard tools` lists them",
                names.join(", ")
            ))
        }
    }
}

fn print_outcome(outcome: &CallOutcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(outcome).unwrap_or_default()
        );
        return;
    }
    let text = outcome.text();
    if outcome.is_error {
        eprintln!("error: the tool reported failure: {text}");
        return;
    }
    if !text.is_empty() {
        println!("{text}");
    }
    let others = outcome
        .content
        .iter()
        .filter(|b| b.as_text().is_none())
        .count();
    if others > 0 {
        eprintln!("note: {others} non-text content block(s) not shown; use --json to see them");
    }
    if text.is_empty()
        && let Some(structured) = &outcome.structured_content
    {
        println!("{structured}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_reports_the_position() {
        let err = parse_arguments(Some("{\"a\": }")).unwrap_err();
        assert!(err.starts_with("invalid JSON arguments:"), "{err}");
        assert!(err.ends_with("at line 1 column 7"), "{err}");
    }

    #[test]
    fn arguments_must_be_an_object() {
        let err = parse_arguments(Some("[1]")).unwrap_err();
        assert!(err.contains("not an array"), "{err}");
        assert_eq!(parse_arguments(None).unwrap(), None);
    }
}
