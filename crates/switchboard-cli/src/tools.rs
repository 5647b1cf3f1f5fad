//! `switchboard tools`: connect to every enabled server at once and list their tools.

use futures::future::join_all;
use serde::Serialize;
use switchboard::{Connector, Error, ServerConfig};

use crate::SourceArgs;
use crate::output::{first_line, print_table};
use crate::source::{EXIT_BAD_INPUT, Source};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Serialize)]
struct ToolRow {
    name: String,
    server: String,
    tool: String,
    description: String,
}

#[derive(Serialize)]
struct FailureRow {
    server: String,
    class: &'static str,
    message: String,
}

pub async fn run(args: &SourceArgs, format: Format) -> u8 {
    let source = match Source::from_args(args) {
        Ok(source) => source,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let servers = source.servers();
    if servers.is_empty() {
        eprintln!("error: no enabled servers to connect to");
        return 1;
    }
    let connector = Connector::new();
    let listings = join_all(
        servers
            .iter()
            .map(|server| list(&source, &connector, server)),
    )
    .await;

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for (server, listing) in servers.iter().zip(listings) {
        match listing {
            Ok(tools) => rows.extend(tools.into_iter().map(|tool| {
                ToolRow {
                    name: if source.prefixed() {
                        format!("{}__{}", server.name, tool.name)
                    } else {
                        tool.name.to_string()
                    },
                    server: server.name.clone(),
                    tool: tool.name.to_string(),
                    description: tool
                        .description
                        .as_deref()
                        .map(first_line)
                        .unwrap_or_default(),
                }
            })),
            Err(error) => failures.push(FailureRow {
                server: server.name.clone(),
                class: error.class().as_str(),
                message: error.to_string(),
            }),
        }
    }

    match format {
        Format::Table => {
            print_table(
                rows.iter()
                    .map(|r| [r.name.as_str(), r.description.as_str()]),
            );
            for failure in &failures {
                println!(
                    "! {} failed ({}): {}",
                    failure.server, failure.class, failure.message
                );
            }
        }
        Format::Json => {
            let doc = serde_json::json!({ "tools": rows, "failures": failures });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
    }
    if failures.len() == servers.len() {
        1
    } else {
        0
    }
}

async fn list(
    source: &Source,
    connector: &Connector,
    server: &ServerConfig,
) -> Result<Vec<rmcp::model::Tool>, Error> {
    let upstream = source.connect(connector, server).await?;
    let tools = upstream.list_tools().await;
    upstream.close().await;
    tools
}
