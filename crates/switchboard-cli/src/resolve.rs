//! From the name a user typed to one tool of the catalogue (for `call` and
//! `tools --describe`), or the truth about why there is none.

use std::sync::Arc;

use switchboard::{ErrorClass, ExposedTool, Hub, Lookup, ServerState};

use crate::output::with_class;
use crate::source::EXIT_BAD_INPUT;

/// The tool `name` stands for ([`switchboard::Catalog::lookup`]): its exposed name, or a
/// server's own tool name or alias that exactly one exposed tool has (with a note saying its
/// exposed name). Otherwise prints why not and returns the exit status:
///
/// - every server that could have it failed to connect: their errors, exit 1;
/// - some did: "no tool is named" and, as notes, why those are missing, exit 1 (the tool
///   may well be theirs);
/// - none did: "no tool is named" with the closest name, the servers that have a tool of
///   that name or the connected and disabled servers, exit 2.
///
/// The servers that "could have it" are the hub's: `call` and `--describe` connect only the
/// ones a `SERVER__TOOL` name belongs to.
pub fn resolve(hub: &Hub, name: &str) -> Result<Arc<ExposedTool>, u8> {
    let (error, same_name) = match hub.catalog().lookup(name) {
        Lookup::Exposed(tool) => return Ok(tool),
        Lookup::ByToolName(tool) => {
            eprintln!("note: '{name}' is exposed as '{}'", tool.name);
            return Ok(tool);
        }
        Lookup::NotFound { error, same_name } => (error, same_name),
    };

    let missing = missing(hub);
    if !missing.is_empty() && hub.servers().is_empty() {
        for (message, class) in &missing {
            eprintln!("error: {}", with_class(message, *class));
        }
        return Err(1);
    }
    eprintln!("error: {}", with_class(&error.to_string(), error.class()));
    if !missing.is_empty() {
        for (message, class) in &missing {
            eprintln!(
                "note: not connected, so its tools are unknown: {}",
                with_class(message, *class)
            );
        }
        return Err(1);
    }
    if !same_name.is_empty() {
        let names: Vec<&str> = same_name.iter().map(|t| t.name.as_str()).collect();
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
        let disabled: Vec<String> = hub
            .health()
            .servers
            .into_iter()
            .filter(|s| s.state == ServerState::Disabled)
            .map(|s| s.name)
            .collect();
        if !disabled.is_empty() {
            eprintln!("note: disabled servers: {}", disabled.join(", "));
        }
    }
    Err(EXIT_BAD_INPUT)
}

/// What failed while the hub started, each with its class: servers that could not be
/// registered (and unusable registry entries), then tooling registries that failed.
fn missing(hub: &Hub) -> Vec<(String, ErrorClass)> {
    let servers = hub
        .failures()
        .iter()
        .map(|(_, error)| (error.to_string(), error.class()));
    let sources = hub
        .health()
        .sources
        .into_iter()
        .filter(|s| !s.ok)
        .filter_map(|s| s.last_error)
        .map(|e| (e.message, e.class));
    servers.chain(sources).collect()
}
