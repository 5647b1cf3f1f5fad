//! `switchboard resources`, `read`, `prompts` and `prompt`: what servers offer besides
//! tools.
//!
//! Resources are named by exposed URI, `SERVER+URI` (a single `--url`/`--stdio` server's
//! own URIs also work, as its tools keep their own names); prompts by exposed name,
//! `SERVER__PROMPT`. `read` and `prompt` connect only the server the URI or name belongs
//! to. People get text: a resource's text parts as they are, a binary part as its MIME type
//! and size (base64 only with `--json`); a prompt's messages as `role: text`. `--format
//! json` / `--json` print the engine's documents.

use std::time::Duration;

use serde_json::{Map, Value};
use switchboard::catalog::{expose_uri, split_uri};
use switchboard::{
    Deadline, Error, ErrorClass, ErrorReport, ExposedPrompt, Hub, JsonObject, PromptOutcome,
    ResourceRead,
};

use crate::SourceArgs;
use crate::call::{parse_arguments, read_arguments};
use crate::output::{JsonStyle, first_line, print_error, print_json, print_table, with_class};
use crate::progress::Style;
use crate::source::{EXIT_BAD_INPUT, Source};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// `switchboard resources`: every server's resources, then its templates.
pub async fn list_resources(args: &SourceArgs, format: Format, style: JsonStyle) -> u8 {
    let (source, hub) = match connect(args, |s| s).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    let resources = hub.resources().await;
    let templates = hub.resource_templates().await;
    let single = matches!(source, Source::Single(_));
    let mut failures = resources.failures.clone();
    failures.extend(templates.failures.iter().cloned());
    failures.sort_by(|a, b| a.server.cmp(&b.server));
    failures.dedup_by(|a, b| a.server == b.server);
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "resources": resources.items,
                "templates": templates.items,
                "failures": failures,
            });
            print_json(&doc, style);
        }
        Format::Table => {
            let mut rows: Vec<(String, String)> = Vec::new();
            for r in &resources.items {
                let uri = if single { &r.server_uri } else { &r.uri };
                let size = r.size.map(|n| format!("{n} bytes"));
                let about = [
                    Some(r.name.clone()),
                    r.mime_type.clone(),
                    size,
                    describe(&r.description),
                ];
                rows.push((uri.clone(), joined(about)));
            }
            for t in &templates.items {
                let uri = if single {
                    &t.server_uri_template
                } else {
                    &t.uri_template
                };
                let name = Some(format!("{} (template)", t.name));
                let about = [name, t.mime_type.clone(), describe(&t.description)];
                rows.push((uri.clone(), joined(about)));
            }
            print_table(rows.iter().map(|(a, b)| [a.as_str(), b.as_str()]));
        }
    }
    if resources.items.is_empty() && templates.items.is_empty() && failures.is_empty() {
        eprintln!("note: no connected server offers resources");
    }
    finish(&hub, &failures).await
}

/// `switchboard prompts`: every server's prompts and their arguments.
pub async fn list_prompts(args: &SourceArgs, format: Format, style: JsonStyle) -> u8 {
    let hub = match connect(args, |s| s).await {
        Ok((_, hub)) => hub,
        Err(code) => return code,
    };
    let prompts = hub.prompts().await;
    match format {
        Format::Json => {
            let doc = serde_json::json!({"prompts": prompts.items, "failures": prompts.failures});
            print_json(&doc, style);
        }
        Format::Table => {
            let rows: Vec<(String, String)> = prompts
                .items
                .iter()
                .map(|p| (p.name.clone(), about_prompt(p)))
                .collect();
            print_table(rows.iter().map(|(a, b)| [a.as_str(), b.as_str()]));
        }
    }
    if prompts.items.is_empty() && prompts.failures.is_empty() {
        eprintln!("note: no connected server offers prompts");
    }
    finish(&hub, &prompts.failures).await
}

/// What `read` and `prompt` print: text for people, or the engine's JSON.
pub struct Output {
    pub json: bool,
    pub timeout: Option<Duration>,
    pub style: JsonStyle,
}

/// `switchboard read URI`.
pub async fn read(args: &SourceArgs, uri: &str, output: Output) -> u8 {
    if let Some(code) = zero_timeout(output.timeout) {
        return code;
    }
    let owner = split_uri(uri).map(|(server, _)| server.to_owned());
    let (source, hub) = match connect(args, |s| s.for_server(owner.as_deref())).await {
        Ok(connected) => connected,
        Err(code) => return code,
    };
    // A single server's own URIs work as they are.
    let uri = match &source {
        Source::Single(server) if owner.as_deref() != Some(server.name.as_str()) => {
            expose_uri(&server.name, uri)
        }
        _ => uri.to_owned(),
    };
    let deadline = output.timeout.map(Deadline::after);
    let mut result = hub.read_resource(&uri, deadline).await;
    // ... and come back as they were.
    if let (Source::Single(server), Ok(read)) = (&source, &mut result) {
        let prefix = expose_uri(&server.name, "");
        for part in &mut read.contents {
            if let Some(own) = part.uri.strip_prefix(&prefix) {
                part.uri = own.to_owned();
            }
        }
    }
    let code = report(result, &output, print_read);
    hub.close().await;
    code
}

/// `switchboard prompt NAME [ARGS]`: ARGS is one JSON object (or `@FILE`, `-`), or
/// `key=value` words.
pub async fn prompt(args: &SourceArgs, name: &str, words: &[String], output: Output) -> u8 {
    let arguments = match prompt_arguments(words) {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    if let Some(code) = zero_timeout(output.timeout) {
        return code;
    }
    let hub = match connect(args, |s| s.for_tool(name)).await {
        Ok((_, hub)) => hub,
        Err(code) => return code,
    };
    let deadline = output.timeout.map(Deadline::after);
    let result = hub.get_prompt(name, arguments, deadline).await;
    let code = report(result, &output, print_prompt);
    hub.close().await;
    code
}

/// Loads the source, narrows it, and starts the hub (the error is printed, the exit
/// status returned).
async fn connect(
    args: &SourceArgs,
    narrow: impl FnOnce(Source) -> Source,
) -> Result<(Source, Hub), u8> {
    let source = narrow(Source::load(args)?);
    let hub = source
        .connect(Style::Transient, crate::source::signs_in(args))
        .await?;
    Ok((source, hub))
}

/// Says which servers failed (to connect, or to list), closes, and gives the exit status:
/// 1 when no server could answer.
async fn finish(hub: &Hub, listing_failures: &[ErrorReport]) -> u8 {
    for (_, error) in hub.failures() {
        print_error(error);
    }
    for failure in listing_failures {
        eprintln!("error: {}", with_class(&failure.message, failure.class));
    }
    let servers = hub.servers().len();
    hub.close().await;
    u8::from(servers == 0 || listing_failures.len() >= servers)
}

fn zero_timeout(timeout: Option<Duration>) -> Option<u8> {
    if timeout.is_some_and(|t| t.is_zero()) {
        eprintln!("error: --timeout must be more than zero, e.g. --timeout 30s");
        return Some(EXIT_BAD_INPUT);
    }
    None
}

/// Prints what `result` holds (as JSON, or for people with `print`) and gives the exit
/// status: what the user typed being wrong (no such resource or prompt, arguments refused)
/// is bad input (2), any other error a failure (1).
fn report<T: serde::Serialize>(result: Result<T, Error>, output: &Output, print: fn(&T)) -> u8 {
    match result {
        Ok(value) if output.json => print_json(&value, output.style),
        Ok(value) => print(&value),
        Err(error) => {
            print_error(&error);
            return match error.class() {
                ErrorClass::NotFound | ErrorClass::InvalidArguments => EXIT_BAD_INPUT,
                _ => 1,
            };
        }
    }
    0
}

/// A prompt's arguments from the command line: one JSON object (text, `@FILE`, `-`), or
/// `key=value` words (string values).
fn prompt_arguments(words: &[String]) -> Result<Option<JsonObject>, String> {
    match words {
        [] => Ok(None),
        [one] if one.starts_with('{') || one.starts_with('@') || one == "-" => {
            parse_arguments(read_arguments(Some(one))?)
        }
        words => {
            let mut arguments = Map::new();
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    return Err(format!(
                        "prompt arguments are key=value words or one JSON object; '{word}' is neither"
                    ));
                };
                arguments.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            Ok(Some(arguments))
        }
    }
}

fn print_read(read: &ResourceRead) {
    for part in &read.contents {
        if let Some(text) = &part.text {
            println!("{text}");
        }
        if let Some(bytes) = part.blob_len() {
            let mime = part.mime_type.as_deref().unwrap_or("binary");
            eprintln!(
                "note: {} is binary ({mime}, {bytes} bytes), not shown; use --json to get it as base64",
                part.uri
            );
        }
    }
}

fn print_prompt(outcome: &PromptOutcome) {
    for message in &outcome.messages {
        let role = serde_json::to_value(message.role).unwrap_or_default();
        let role = role.as_str().unwrap_or("?");
        match message.content.as_text() {
            Some(text) => println!("{role}: {text}"),
            None => {
                let mime = message.content.mime_type().map(|m| format!(", {m}"));
                println!(
                    "{role}: [{} block{}; use --json to see it]",
                    message.content.kind(),
                    mime.unwrap_or_default()
                );
            }
        }
    }
}

/// `description · arguments: name, [optional]`.
fn about_prompt(prompt: &ExposedPrompt) -> String {
    let arguments: Vec<String> = prompt
        .arguments
        .iter()
        .map(|a| match a.required {
            true => a.name.clone(),
            false => format!("[{}]", a.name),
        })
        .collect();
    let arguments = (!arguments.is_empty()).then(|| format!("arguments: {}", arguments.join(", ")));
    joined([describe(&prompt.description), arguments])
}

fn describe(description: &Option<String>) -> Option<String> {
    description
        .as_deref()
        .map(first_line)
        .filter(|d| !d.is_empty())
}

/// The parts that are there, joined with ` · `.
fn joined<const N: usize>(parts: [Option<String>; N]) -> String {
    parts.into_iter().flatten().collect::<Vec<_>>().join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn prompt_arguments_are_key_value_words_or_one_json_object() {
        let pairs = prompt_arguments(&words(&["name=Ada", "style=a=b"])).unwrap();
        assert_eq!(
            Value::Object(pairs.unwrap()),
            serde_json::json!({"name": "Ada", "style": "a=b"})
        );
        let json = prompt_arguments(&words(&["{\"name\": \"Ada\"}"])).unwrap();
        assert_eq!(
            Value::Object(json.unwrap()),
            serde_json::json!({"name": "Ada"})
        );
        assert_eq!(prompt_arguments(&[]).unwrap(), None);
        let err = prompt_arguments(&words(&["name=Ada", "oops"])).unwrap_err();
        assert!(err.contains("'oops'"), "{err}");
    }
}
