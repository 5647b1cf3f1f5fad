//! `call` at a terminal: what a server asks in the middle of a call is asked of the person
//! running it. A form is filled field by field (its title, description, type, choices and
//! default shown; values checked against the field's type); a URL is shown and the person
//! confirms they opened it; sampling is declined with a line saying why (the CLI has no
//! model). Without a terminal on both stdin and stderr nobody is asked: each server's
//! `elicitation` policy answers (decline by default).
//!
//! Prompts go to stderr, answers come from stdin, one request at a time; the call's progress
//! line is erased and held while a question is on screen. End of input cancels.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use serde_json::{Map, Value};
use switchboard::interaction::{
    BoxFuture, ElicitAnswer, ElicitMode, ElicitRequest, InputHandler, SamplingAnswer,
    SamplingRequest,
};

use crate::progress::CallLine;

/// Asks the person at the terminal.
pub struct Terminal {
    line: Arc<CallLine>,
    /// One question at a time.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl Terminal {
    /// A terminal asker when stdin and stderr are both terminals; `None` otherwise (the
    /// config's policy answers). `line` is held while a question is asked.
    pub fn if_interactive(line: Arc<CallLine>) -> Option<Terminal> {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        interactive.then(|| Terminal {
            line,
            turn: Arc::default(),
        })
    }
}

impl InputHandler for Terminal {
    fn answers_url_elicitation(&self) -> bool {
        true
    }

    fn elicit(&self, request: ElicitRequest) -> BoxFuture<'_, ElicitAnswer> {
        Box::pin(async move {
            let _turn = self.turn.lock().await;
            self.line.pause();
            let asked = tokio::task::spawn_blocking(move || {
                let mut stdin = std::io::stdin().lock();
                let mut stderr = std::io::stderr().lock();
                ask(&request, &mut stdin, &mut stderr)
            });
            let answer = asked.await.unwrap_or(ElicitAnswer::Cancel);
            self.line.resume();
            answer
        })
    }

    fn sample(&self, request: SamplingRequest) -> BoxFuture<'_, SamplingAnswer> {
        self.line.clear();
        eprintln!(
            "note: server '{}' asked for an LLM completion (sampling); the CLI has no model, \
             so it declined",
            clean(&request.server)
        );
        Box::pin(std::future::ready(SamplingAnswer::Decline))
    }
}

/// Asks `request` on `output`, reading answers from `input`.
fn ask(request: &ElicitRequest, input: &mut impl BufRead, output: &mut impl Write) -> ElicitAnswer {
    let server = clean(&request.server);
    let message = clean(&request.message);
    match &request.mode {
        ElicitMode::Form { schema } => {
            let _ = writeln!(output, "server '{server}' asks: {message}");
            match read(input, output, "Answer? [Y]es, [n]o (decline), [c]ancel: ") {
                None => ElicitAnswer::Cancel,
                Some(choice) => match choice.to_ascii_lowercase().as_str() {
                    "" | "y" | "yes" => fill(schema, input, output),
                    "n" | "no" => ElicitAnswer::Decline,
                    _ => ElicitAnswer::Cancel,
                },
            }
        }
        ElicitMode::Url { url, .. } => {
            let _ = writeln!(
                output,
                "server '{server}' asks you to open a URL: {message}"
            );
            let _ = writeln!(output, "  {}", clean(url));
            let confirmed = read(input, output, "Opened it and done? [y/N]: ");
            match confirmed.as_deref().map(str::to_ascii_lowercase).as_deref() {
                None => ElicitAnswer::Cancel,
                Some("y" | "yes") => ElicitAnswer::Accept(None),
                Some(_) => ElicitAnswer::Decline,
            }
        }
        _ => ElicitAnswer::Decline,
    }
}

/// Asks for every field of a form schema; `Cancel` when the input ends.
fn fill(
    schema: &Map<String, Value>,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> ElicitAnswer {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut content = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, field) in properties.into_iter().flatten() {
        let needed = required.contains(&name.as_str());
        let prompt = prompt(name, field, needed);
        loop {
            let Some(text) = read(input, output, &prompt) else {
                return ElicitAnswer::Cancel;
            };
            match value(field, &text, needed) {
                Ok(Some(value)) => {
                    content.insert(name.clone(), value);
                    break;
                }
                Ok(None) => break,
                Err(problem) => {
                    let _ = writeln!(output, "  {problem}");
                }
            }
        }
    }
    ElicitAnswer::Accept(Some(content))
}

/// `  Title (description) [type, one of a|b, default x, required]: `
fn prompt(name: &str, field: &Value, required: bool) -> String {
    let label = field.get("title").and_then(Value::as_str).unwrap_or(name);
    let mut text = format!("  {}", clean(label));
    if let Some(description) = field.get("description").and_then(Value::as_str) {
        text.push_str(&format!(" ({})", clean(description)));
    }
    let mut facts = vec![kind(field).to_owned()];
    if let Some(choices) = choices(field) {
        facts.push(format!("one of {}", choices.join("|")));
    }
    if let Some(default) = field.get("default") {
        facts.push(format!("default {}", clean(&shown(default))));
    }
    if required {
        facts.push("required".to_owned());
    }
    text.push_str(&format!(" [{}]: ", facts.join(", ")));
    text
}

fn kind(field: &Value) -> &str {
    field
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("string")
}

/// An enum's values (`enum`, or `oneOf` entries' `const`).
fn choices(field: &Value) -> Option<Vec<String>> {
    if let Some(values) = field.get("enum").and_then(Value::as_array) {
        return Some(values.iter().map(|v| clean(&shown(v))).collect());
    }
    let options = field
        .get("oneOf")
        .or_else(|| field.get("anyOf"))?
        .as_array()?;
    let consts: Vec<String> = options
        .iter()
        .filter_map(|o| o.get("const"))
        .map(|v| clean(&shown(v)))
        .collect();
    (!consts.is_empty()).then_some(consts)
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What `text` means for `field`: a value, nothing (left empty, not required, no default),
/// or why it is not acceptable.
fn value(field: &Value, text: &str, required: bool) -> Result<Option<Value>, String> {
    if text.is_empty() {
        return match field.get("default") {
            Some(default) => Ok(Some(default.clone())),
            None if required => Err("a value is required".to_owned()),
            None => Ok(None),
        };
    }
    let value = match kind(field) {
        "boolean" => match text.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" => Value::Bool(true),
            "n" | "no" | "false" => Value::Bool(false),
            _ => return Err("answer y or n".to_owned()),
        },
        "integer" => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("'{text}' is not a whole number"))?,
        "number" => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("'{text}' is not a number"))?,
        _ => Value::String(text.to_owned()),
    };
    if let Some(choices) = choices(field)
        && !choices.contains(&shown(&value))
    {
        return Err(format!("answer one of {}", choices.join("|")));
    }
    Ok(Some(value))
}

/// One line from `input` after showing `prompt` (`None` at the end of input).
fn read(input: &mut impl BufRead, output: &mut impl Write, prompt: &str) -> Option<String> {
    let _ = write!(output, "{prompt}");
    let _ = output.flush();
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()),
    }
}

/// Server-given text without control characters (no terminal escapes from a server).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn form(schema: Value) -> ElicitRequest {
        ElicitRequest {
            server: "kit".into(),
            message: "Who\x1b[2J is calling?".into(),
            mode: ElicitMode::Form {
                schema: schema.as_object().cloned().unwrap(),
            },
        }
    }

    fn answer(request: &ElicitRequest, typed: &str) -> (ElicitAnswer, String) {
        let mut output = Vec::new();
        let answer = ask(request, &mut typed.as_bytes(), &mut output);
        (answer, String::from_utf8(output).unwrap())
    }

    #[test]
    fn a_form_is_filled_field_by_field_with_defaults_types_and_choices_checked() {
        let request = form(json!({"type": "object", "properties": {
            "age": {"type": "integer", "title": "Age", "default": 36},
            "color": {"type": "string", "enum": ["red", "blue"]},
            "name": {"type": "string", "description": "your name"},
            "ok": {"type": "boolean"}}, "required": ["name"]}));
        let (got, shown) = answer(&request, "y\nold\n\ngreen\nblue\n\nBob\nmaybe\nyes\n");
        let expected = json!({"age": 36, "color": "blue", "name": "Bob", "ok": true});
        assert_eq!(got, ElicitAnswer::Accept(expected.as_object().cloned()));
        assert!(
            shown.contains("server 'kit' asks: Who[2J is calling?"),
            "{shown}"
        );
        assert!(shown.contains("Age [integer, default 36]: "), "{shown}");
        assert!(shown.contains("'old' is not a whole number"), "{shown}");
        assert!(shown.contains("[string, one of red|blue]"), "{shown}");
        assert!(shown.contains("answer one of red|blue"), "{shown}");
        assert!(
            shown.contains("name (your name) [string, required]"),
            "{shown}"
        );
        assert!(shown.contains("a value is required"), "{shown}");
        assert!(shown.contains("answer y or n"), "{shown}");
    }

    #[test]
    fn a_form_can_be_declined_or_cancelled_and_end_of_input_cancels() {
        let request = form(json!({"properties": {"name": {"type": "string"}}}));
        assert_eq!(answer(&request, "n\n").0, ElicitAnswer::Decline);
        assert_eq!(answer(&request, "c\n").0, ElicitAnswer::Cancel);
        assert_eq!(answer(&request, "").0, ElicitAnswer::Cancel);
        assert_eq!(answer(&request, "y\n").0, ElicitAnswer::Cancel);
    }

    #[test]
    fn a_url_is_shown_and_accepted_only_when_confirmed() {
        let request = ElicitRequest {
            server: "kit".into(),
            message: "Sign in".into(),
            mode: ElicitMode::Url {
                url: "https://example.com/sign-in".into(),
                elicitation_id: "1".into(),
            },
        };
        let (got, shown) = answer(&request, "y\n");
        assert_eq!(got, ElicitAnswer::Accept(None));
        assert!(shown.contains("  https://example.com/sign-in\n"), "{shown}");
        assert_eq!(answer(&request, "\n").0, ElicitAnswer::Decline);
        assert_eq!(answer(&request, "").0, ElicitAnswer::Cancel);
    }
}
