//! `switchboard tools`: connect to every enabled server at once and print the catalogue.
//!
//! `table` and `json` show the exposed names with their server and original tool name, the
//! servers that failed, and the catalogue's diagnostics (collisions, unknown overrides,
//! unmatched filters). The provider formats print only the JSON array of tool objects on
//! stdout; failures and diagnostics go to stderr.

use serde::Serialize;
use switchboard::{Connector, ExportFormat, Hub};

use crate::SourceArgs;
use crate::output::{first_line, print_table};
use crate::source::{Source, start_failed};

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

#[derive(Serialize)]
struct ToolRow<'a> {
    name: &'a str,
    server: &'a str,
    tool: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a rmcp::model::ToolAnnotations>,
}

#[derive(Serialize)]
struct FailureRow {
    server: String,
    class: &'static str,
    message: String,
}

pub async fn run(args: &SourceArgs, format: Format) -> u8 {
    let source = match Source::load(args) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let servers = source.servers().iter().filter(|s| s.enabled).count();
    if servers == 0 && !source.has_discovery() {
        eprintln!("error: no enabled servers to connect to");
        return 1;
    }
    let hub = match source.hub(&Connector::new()).await {
        Ok(hub) => hub,
        Err(error) => return start_failed(&error),
    };
    print(&hub, format);
    // Every server failed (or discovery found none that worked).
    let none_registered = hub.servers().is_empty();
    hub.close().await;
    u8::from(none_registered)
}

fn print(hub: &Hub, format: Format) {
    let catalog = hub.catalog();
    let failures: Vec<FailureRow> = hub
        .failures()
        .iter()
        .map(|(server, error)| FailureRow {
            server: server.clone(),
            class: error.class().as_str(),
            message: error.to_string(),
        })
        .collect();
    let notes: Vec<String> = failures
        .iter()
        .map(|f| format!("! {} failed ({}): {}", f.server, f.class, f.message))
        .chain(catalog.diagnostics().iter().map(|d| format!("! {d}")))
        .collect();

    let export = match format {
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
            for note in &notes {
                println!("{note}");
            }
            return;
        }
        Format::Json => {
            let tools: Vec<ToolRow> = catalog
                .tools()
                .iter()
                .map(|t| ToolRow {
                    name: &t.name,
                    server: &t.server,
                    tool: &t.original,
                    alias: t.alias.as_deref(),
                    description: &t.description,
                    annotations: t.annotations.as_ref(),
                })
                .collect();
            let doc = serde_json::json!({
                "tools": tools,
                "failures": failures,
                "diagnostics": catalog.diagnostics(),
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            for note in &notes {
                eprintln!("{note}");
            }
            return;
        }
        Format::Openai => ExportFormat::OpenAiChat,
        Format::OpenaiResponses => ExportFormat::OpenAiResponses,
        Format::Anthropic => ExportFormat::Anthropic,
    };
    let doc = catalog.export(export);
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    for note in &notes {
        eprintln!("{note}");
    }
}
