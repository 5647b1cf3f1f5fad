//! `switchboard check`: connect to every server, show progress while they connect, then
//! print the hub's health. Exit status: 0 healthy, 3 degraded, 1 unhealthy (or a
//! `fail_fast` server failed), 2 bad config or arguments (no enabled server included).
//!
//! It checks once: a server that failed is `skipped`, as nothing is left running to retry
//! it. `--format json` prints the engine's [`Health`] as it serialises.

use std::time::SystemTime;

use clap::ValueEnum;
use switchboard::{ErrorReport, Health, Overall, ServerState};

use crate::SourceArgs;
use crate::output::{JsonStyle, one_line, print_json, with_class};
use crate::progress::Style;
use crate::source::Source;

pub const EXIT_UNHEALTHY: u8 = 1;
pub const EXIT_DEGRADED: u8 = 3;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub async fn run(args: &SourceArgs, format: Format, style: JsonStyle) -> u8 {
    let source = match Source::load(args) {
        Ok(source) => source,
        Err(code) => return code,
    };
    // check never opens a browser: it says which command signs in.
    let hub = match source.connect(Style::Kept, false).await {
        Ok(hub) => hub,
        Err(code) => return code,
    };
    let health = hub.health();
    hub.close().await;
    match format {
        Format::Table => {
            print_table(&health);
            print_login_hints(&health, args);
        }
        Format::Json => print_json(&health, style),
    }
    match health.overall {
        Overall::Healthy => 0,
        Overall::Degraded => EXIT_DEGRADED,
        Overall::Unhealthy => EXIT_UNHEALTHY,
    }
}

fn print_table(health: &Health) {
    let mut rows = vec![[
        "SERVER".to_string(),
        "STATE".to_string(),
        "TOOLS".to_string(),
        "LAST SUCCESS".to_string(),
        "LAST ERROR".to_string(),
    ]];
    for server in &health.servers {
        let name = match &server.display_name {
            Some(display) => format!("{} ({display})", server.name),
            None => server.name.clone(),
        };
        rows.push([
            name,
            server.state.as_str().to_string(),
            server.tools.to_string(),
            server.last_success.map_or("-".to_string(), time),
            server
                .last_error
                .as_ref()
                .map_or("-".to_string(), error_cell),
        ]);
    }
    for source in &health.sources {
        rows.push([
            format!("(discovery) {}", source.name),
            if source.ok { "ok" } else { "failed" }.to_string(),
            source.servers.to_string(),
            source.last_success.map_or("-".to_string(), time),
            source
                .last_error
                .as_ref()
                .map_or("-".to_string(), error_cell),
        ]);
        for (name, error) in &source.unusable {
            rows.push([
                format!("(discovery) {name}"),
                "unusable".to_string(),
                "0".to_string(),
                "-".to_string(),
                error_cell(error),
            ]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        println!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
    let enabled = health
        .servers
        .iter()
        .filter(|s| s.state != ServerState::Disabled);
    let (ready, total) = enabled.fold((0, 0), |(ready, total), s| {
        (
            ready + usize::from(s.state == ServerState::Ready),
            total + 1,
        )
    });
    println!(
        "overall: {} ({ready} of {total} enabled servers ready)",
        health.overall.as_str()
    );
}

/// For each server that needs a person to sign in, the command that does it.
fn print_login_hints(health: &Health, args: &SourceArgs) {
    let source = match (&args.config, &args.url) {
        (Some(config), _) => format!(" --config {}", config.display()),
        (None, Some(url)) => format!(" --url {url}"),
        (None, None) => String::new(),
    };
    for server in &health.servers {
        if server.state == ServerState::NeedsAuth {
            let name = if args.url.is_some() {
                String::new()
            } else {
                format!(" {}", server.name)
            };
            println!(
                "{}: needs a sign-in; run: switchboard auth login{name}{source}",
                server.name
            );
        }
    }
}

fn error_cell(error: &ErrorReport) -> String {
    one_line(&with_class(&error.message, error.class))
}

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}
