//! `switchboard call`: call one tool and print what it returned. While it runs, the server's
//! progress is a line on stderr (a terminal only, erased at the end); what the server asks is
//! asked of the person at the terminal (`ask.rs`), else answered by the config's policy.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard::{CallOptions, CallOutcome, Deadline, Error, JsonObject, Phase};

use crate::SourceArgs;
use crate::ask::Terminal;
use crate::output::{JsonStyle, print_error, print_json};
use crate::progress::{CallLine, Style};
use crate::resolve::resolve;
use crate::source::{EXIT_BAD_INPUT, Source};

/// What `call` was asked to do, besides where the servers come from.
pub struct Request<'a> {
    pub name: &'a str,
    /// A JSON object, `@FILE`, or `-` for stdin.
    pub arguments: Option<&'a str>,
    pub timeout: Option<Duration>,
    pub json: bool,
    pub style: JsonStyle,
}

pub async fn run(args: &SourceArgs, request: Request<'_>) -> u8 {
    let arguments = match read_arguments(request.arguments).and_then(parse_arguments) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    if request.timeout.is_some_and(|t| t.is_zero()) {
        eprintln!("error: --timeout must be more than zero, e.g. --timeout 30s");
        return EXIT_BAD_INPUT;
    }
    let source = match Source::load(args) {
        Ok(source) => source.for_tool(request.name),
        Err(code) => return code,
    };
    let line = Arc::new(CallLine::new(request.name));
    let asker = Terminal::if_interactive(line.clone());
    let sign_in = crate::source::signs_in(args);
    let hub = match source
        .connect_asking(Style::Transient, asker, sign_in)
        .await
    {
        Ok(hub) => hub,
        Err(code) => return code,
    };
    let code = match resolve(&hub, request.name) {
        Ok(tool) => {
            // The timeout is the call's own; connecting had its connect_timeout.
            let mut options = CallOptions::new().on_progress({
                let line = line.clone();
                move |progress| line.show(progress)
            });
            if let Some(timeout) = request.timeout {
                options = options.deadline(Deadline::after(timeout));
            }
            let result = hub.call_with(None, &tool.name, arguments, options).await;
            line.clear();
            report(result, &request)
        }
        Err(code) => code,
    };
    hub.close().await;
    code
}

fn report(result: Result<CallOutcome, Error>, request: &Request<'_>) -> u8 {
    match result {
        Ok(outcome) => {
            print_outcome(&outcome, request);
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
        // The time the call had is the --timeout given: a deadline that passed before the
        // request went out says 0s otherwise.
        Err(Error::Timeout {
            server,
            phase: Phase::CallTool,
            after,
        }) => {
            let after = request.timeout.unwrap_or(after);
            print_error(&Error::Timeout {
                server,
                phase: Phase::CallTool,
                after,
            });
            1
        }
        Err(error) => {
            print_error(&error);
            1
        }
    }
}

/// Where the arguments come from: the text itself, `@FILE`, or `-` (stdin). Returns the
/// JSON text and where it came from (for messages).
pub fn read_arguments(text: Option<&str>) -> Result<Option<(String, Option<String>)>, String> {
    match text {
        None => Ok(None),
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map(|text| Some((text, Some("stdin".to_string()))))
            .map_err(|e| format!("cannot read the arguments from stdin: {e}")),
        Some(text) => match text.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map(|text| Some((text, Some(path.to_string()))))
                .map_err(|e| format!("cannot read the arguments file '{path}': {e}")),
            None => Ok(Some((text.to_string(), None))),
        },
    }
}

/// Parses the arguments JSON, which must be an object; errors say where it went wrong (and
/// in which file, when it came from one).
pub fn parse_arguments(
    text: Option<(String, Option<String>)>,
) -> Result<Option<JsonObject>, String> {
    let Some((text, origin)) = text else {
        return Ok(None);
    };
    let from = origin.map(|o| format!(" in {o}")).unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(other) => Err(format!(
            "the arguments{from} must be a JSON object like '{{\"message\": \"hi\"}}', not {}",
            kind(&other)
        )),
        // serde_json's message ends with "at line L column C".
        Err(e) => Err(format!("invalid JSON arguments{from}: {e}")),
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

fn print_outcome(outcome: &CallOutcome, request: &Request<'_>) {
    if request.json {
        print_json(outcome, request.style);
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

    fn given(text: &str, origin: Option<&str>) -> Option<(String, Option<String>)> {
        Some((text.to_string(), origin.map(str::to_string)))
    }

    #[test]
    fn invalid_json_reports_the_position() {
        let err = parse_arguments(given("{\"a\": }", None)).unwrap_err();
        assert!(err.starts_with("invalid JSON arguments:"), "{err}");
        assert!(err.ends_with("at line 1 column 7"), "{err}");
        let err = parse_arguments(given("{", Some("args.json"))).unwrap_err();
        assert!(
            err.starts_with("invalid JSON arguments in args.json:"),
            "{err}"
        );
    }

    #[test]
    fn arguments_must_be_an_object() {
        let err = parse_arguments(given("[1]", None)).unwrap_err();
        assert!(err.contains("not an array"), "{err}");
        assert_eq!(parse_arguments(None).unwrap(), None);
    }
}
