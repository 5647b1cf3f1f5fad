//! `switchboard call`: call one tool and print what it returned.

use std::time::Duration;

use serde_json::{Map, Value};
use switchboard::{CallOutcome, Connector, Error, Hub};
use tokio::time::Instant;

use crate::SourceArgs;
use crate::source::{EXIT_BAD_INPUT, Source, start_failed};

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
    let source = match Source::load(args) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let hub = match source.hub(&Connector::new()).await {
        Ok(hub) => hub,
        Err(error) => return start_failed(&error),
    };
    let separator = source.catalog_config().separator;
    let code = match resolve(&hub, name, &separator) {
        Ok(exposed) => {
            // The timeout is the call's own; connecting had its connect_timeout.
            let deadline = timeout.map(|t| Instant::now() + t);
            let result = hub.call(&exposed, arguments, deadline).await;
            report(result, json)
        }
        Err(code) => code,
    };
    hub.close().await;
    code
}

/// The exposed name to call for NAME: NAME itself, or, when NAME is a server's own tool
/// name or alias that exactly one exposed tool has, that tool (with a note). Prints why
/// not and returns the exit code otherwise.
fn resolve(hub: &Hub, name: &str, separator: &str) -> Result<String, u8> {
    let catalog = hub.catalog();
    let error = match catalog.resolve(name) {
        Ok(tool) => return Ok(tool.name.clone()),
        Err(error) => error,
    };
    let mut short: Vec<_> = catalog
        .tools()
        .iter()
        .filter(|t| t.original == name || t.alias.as_deref() == Some(name))
        .collect();
    if short.len() == 1 {
        let tool = short.remove(0);
        eprintln!("note: '{name}' is exposed as '{}'", tool.name);
        return Ok(tool.name.clone());
    }
    // A tool of a server that failed: say why that server is not there.
    if let Some((server, failure)) = hub
        .failures()
        .iter()
        .find(|(server, _)| name.starts_with(&format!("{server}{separator}")))
    {
        eprintln!(
            "error: server '{server}' is not available: {failure} [{}]",
            failure.class()
        );
        return Err(1);
    }
    eprintln!("error: {error} [{}]", error.class());
    if short.len() > 1 {
        let names: Vec<&str> = short.iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "note: several servers have a tool '{name}': {}",
            names.join(", ")
        );
    } else {
        let servers = hub.servers();
        eprintln!(
            "note: connected servers: {}; `switchboard tools` lists every tool",
            if servers.is_empty() {
                "none".to_string()
            } else {
                servers.join(", ")
            }
        );
    }
    Err(EXIT_BAD_INPUT)
}

fn report(result: Result<CallOutcome, Error>, json: bool) -> u8 {
    match result {
        Ok(outcome) => {
            print_outcome(&outcome, json);
            if outcome.is_error { 1 } else { 0 }
        }
        Err(Error::InvalidArguments { tool, problems, .. }) => {
            eprintln!(
                "error: the arguments do not match the input schema of '{tool}' (nothing was sent):"
            );
            for problem in problems {
                eprintln!("  {problem}");
            }
            EXIT_BAD_INPUT
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
