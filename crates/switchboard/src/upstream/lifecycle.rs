//! Which MCP lifecycle a connection opens with, and what a [`Connector`](super::Connector)
//! has learned about each upstream.
//!
//! The 2026-07-28 revision has no handshake (`server/discover` answers what the server
//! speaks, and every request carries its version and capabilities in `_meta`); older ones
//! open with `initialize`. An upstream not seen before is probed (rmcp's `Auto`:
//! `server/discover` first; a JSON-RPC error, or no answer within 10 s, gets `initialize`,
//! see `probe.rs`). Its answer is remembered, so reconnects and every per-session connection
//! go straight to the lifecycle it speaks; a connect that fails forgets it (a server may
//! have been upgraded or downgraded), so the next one probes again. Legacy HTTP+SSE exists
//! only in the classic revisions: it always opens with `initialize`. A server's
//! `protocol_version` pins the lifecycle and revision instead (no probe, nothing learned).

use std::collections::HashMap;
use std::sync::Mutex;

use rmcp::ClientLifecycleMode;
use rmcp::model::ProtocolVersion;

use super::Upstream;
use crate::config::{ProtocolPin, ServerConfig, TransportKind};
use crate::sync::lock;

/// The lifecycles upstreams were found to speak, by upstream.
#[derive(Default)]
pub(crate) struct Learned {
    speaks: Mutex<HashMap<String, Speaks>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaks {
    /// `server/discover` and `_meta` (2026-07-28).
    Modern,
    /// `initialize`.
    Classic,
}

impl Learned {
    /// How to open the next connection to `server`.
    pub(crate) fn mode(&self, server: &ServerConfig) -> ClientLifecycleMode {
        match server.protocol_version {
            ProtocolPin::Auto if server.transport != TransportKind::Sse => {}
            ProtocolPin::V2026_07_28 => return modern(),
            _ => return ClientLifecycleMode::Initialize,
        }
        match lock(&self.speaks).get(&key(server)) {
            Some(Speaks::Modern) => modern(),
            Some(Speaks::Classic) => ClientLifecycleMode::Initialize,
            None => probe(),
        }
    }

    /// Remembers what `connected` speaks, or forgets `server` when the connect failed.
    pub(crate) fn record(&self, server: &ServerConfig, connected: Option<&Upstream>) {
        let mut speaks = lock(&self.speaks);
        match connected.and_then(|u| u.peer.peer_info()) {
            Some(info) if info.protocol_version.has_initialize() => {
                speaks.insert(key(server), Speaks::Classic);
            }
            Some(_) => {
                speaks.insert(key(server), Speaks::Modern);
            }
            None => {
                speaks.remove(&key(server));
            }
        }
    }
}

/// The revision `initialize` offers `server`: its pinned one, else the newest that has it.
pub(crate) fn offered(server: &ServerConfig) -> ProtocolVersion {
    let pinned = serde_json::Value::from(server.protocol_version.as_str());
    match server.protocol_version {
        ProtocolPin::Auto | ProtocolPin::V2026_07_28 => ProtocolVersion::LATEST_WITH_INITIALIZE,
        _ => serde_json::from_value(pinned).unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE),
    }
}

/// `server/discover` only.
pub(crate) fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// `server/discover` first, `initialize` (offering the newest revision that has it) if the
/// server does not speak 2026-07-28.
pub(crate) fn probe() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
    }
}

/// One upstream: its name and where it is (a connector may serve several hubs).
fn key(server: &ServerConfig) -> String {
    match (&server.url, &server.command) {
        (Some(url), _) => format!("{}\n{url}", server.name),
        // The same program with other arguments or environment may be another server.
        (None, command) => format!(
            "{}\n{}\n{:?}\n{:?}\n{:?}",
            server.name,
            command.as_deref().unwrap_or_default(),
            server.args,
            server.env,
            server.cwd,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_program_with_other_arguments_is_another_upstream() {
        let classic = ServerConfig::stdio("kit", "testkit", vec![]);
        let modern = ServerConfig::stdio("kit", "testkit", vec!["--lifecycle".into()]);
        assert_ne!(key(&classic), key(&modern));
        let mut other_env = classic.clone();
        other_env.env.insert("MODE".into(), "modern".into());
        assert_ne!(key(&classic), key(&other_env));
        assert_eq!(key(&classic), key(&classic.clone()));
        let a = ServerConfig::url("kit", "http://127.0.0.1:1/mcp");
        let b = ServerConfig::url("kit", "http://127.0.0.1:2/mcp");
        assert_ne!(key(&a), key(&b));
    }
}
