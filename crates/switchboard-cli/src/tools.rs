//! `switchboard tools`: connect to every enabled server at once and print the catalogue.
//!
//! stdout carries only the tools: `table` is one line per exposed name with its
//! description, `json` one document with every tool (each as the engine's `ExposedTool`
//! serialises: server, original name, description, input and output schemas, annotations),
//! the servers that failed (as the engine's `ErrorReport`s) and the catalogue's
//! diagnostics, and the provider formats the JSON array of tool objects. Failed servers and
//! diagnostics (collisions, unknown overrides, unmatched filters) are also said on stderr.
//!
//! `--describe NAME` shows one tool instead, connecting only the server a `SERVER__TOOL`
//! name belongs to: its arguments in words (table), or its entry in the chosen JSON form.

use serde_json::Value;
use switchboard::{ErrorReport, ExportFormat, ExposedTool, Hub};

use crate::SourceArgs;
use crate::describe::describe;
use crate::output::{JsonStyle, first_line, print_json, print_table, with_class};
use crate::progress::Style;
use crate::resolve::resolve;
use crate::source::Source;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// OpenAI chat completions `tools` (`{"type":"function","function":{...}}`).
    Openai,
    /// OpenAI Responses API `tools` (`{"type":"function","name":...}`).
    OpenaiResponses,
    /// Anthropic messages `tools` (`{"name","description","input_schema"}`).
    Anthropic,
}

impl Format {
    fn export(self) -> Option<ExportFormat> {
        match self {
            Format::Table | Format::Json => None,
            Format::Openai => Some(ExportFormat::OpenAiChat),
            Format::OpenaiResponses => Some(ExportFormat::OpenAiResponses),
            Format::Anthropic => Some(ExportFormat::Anthropic),
        }
    }
}

pub async fn run(
    args: &SourceArgs,
    format: Format,
    describe: Option<&str>,
    style: JsonStyle,
) -> u8 {
    let mut source = match Source::load(args) {
        Ok(source) => source,
        Err(code) => return code,
    };
    if let Some(name) = describe {
        source = source.for_tool(name);
    }
    let hub = match source
        .connect(Style::Transient, crate::source::signs_in(args))
        .await
    {
        Ok(hub) => hub,
        Err(code) => return code,
    };
    let code = match describe {
        Some(name) => match resolve(&hub, name) {
            Ok(tool) => {
                print_one(&tool, format, style);
                0
            }
            Err(code) => code,
        },
        None => {
            print(&hub, format, style);
            // Every server failed (or discovery found none that worked).
            u8::from(hub.servers().is_empty())
        }
    };
    hub.close().await;
    code
}

fn print_one(tool: &ExposedTool, format: Format, style: JsonStyle) {
    match format {
        Format::Table => print!("{}", describe(tool)),
        Format::Json => print_json(tool, style),
        provider => {
            if let Some(export) = provider.export() {
                print_json(&tool.export(export), style);
            }
        }
    }
}

fn print(hub: &Hub, format: Format, style: JsonStyle) {
    let catalog = hub.catalog();
    let mut failures: Vec<ErrorReport> = hub
        .failures()
        .iter()
        .map(|(server, error)| {
            let mut report = error.report();
            // An unusable registry entry is named by its display name.
            report.server = Some(server.clone());
            report
        })
        .collect();
    // Tooling registries that could not be asked: their servers are missing too.
    failures.extend(
        hub.health()
            .sources
            .into_iter()
            .filter(|s| !s.ok)
            .filter_map(|s| {
                s.last_error.map(|mut report| {
                    report.server = Some(s.name);
                    report
                })
            }),
    );

    match format {
        Format::Table => {
            let descriptions: Vec<String> = catalog
                .tools()
                .iter()
                .map(|t| first_line(&t.description))
                .collect();
            print_table(
                catalog
                    .tools()
                    .iter()
                    .zip(&descriptions)
                    .map(|(t, d)| [t.name.as_str(), d.as_str()]),
            );
        }
        Format::Json => {
            let tools: Vec<&ExposedTool> = catalog.tools().iter().map(|t| &**t).collect();
            let doc = serde_json::json!({
                "tools": tools,
                "failures": failures,
                "diagnostics": catalog.diagnostics(),
            });
            print_json(&doc, style);
        }
        provider => {
            let doc: Value = provider
                .export()
                .map_or(Value::Null, |export| catalog.export(export));
            print_json(&doc, style);
        }
    }
    for failure in &failures {
        eprintln!("error: {}", with_class(&failure.message, failure.class));
    }
    for diagnostic in catalog.diagnostics() {
        eprintln!("warning: {diagnostic}");
    }
}
