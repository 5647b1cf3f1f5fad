//! The hub's health snapshot: what is connected, what is missing and why.
//!
//! A server's [`ServerState`] comes from its registration record (skipped, retrying,
//! disabled) and, once registered, from its shared connection's [`LinkStatus`] (a link that
//! is backing off after failed reconnects shows as `retrying`). An auth failure anywhere
//! shows as `needs_auth`: no retry fixes it, a person has to log in.
//!
//! Everything here serialises (and reads back) as the JSON that `switchboard check --format
//! json` prints and other faces send: enums as their `as_str` names, times as RFC 3339
//! strings (see the crate docs), absent values as `null`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::ErrorClass;
pub use crate::error::ErrorReport;
use crate::sessions::{LinkState, LinkStatus};
use crate::wire;

/// The whole hub at one moment.
///
/// ```json
/// {"overall": "degraded",
///  "servers": [{"name": "files", "display_name": null, "state": "ready", "tools": 4,
///               "last_error": null, "last_success": "2025-01-31T09:15:02.417Z"}, ...],
///  "sources": [{"name": "a365", "ok": true, "servers": 2, "unusable": [],
///               "last_error": null, "last_success": "2025-01-31T09:15:01.003Z"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub overall: Overall,
    /// Every configured or discovered server, in name order.
    pub servers: Vec<ServerHealth>,
    /// Where servers are discovered from (empty without `[discovery]`).
    pub sources: Vec<SourceHealth>,
}

/// One word for the whole hub; serialises as its `as_str` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Every enabled server is ready and every discovery source answered with nothing
    /// unusable.
    Healthy,
    /// Some servers (or a discovery source) are missing; at least one server is ready.
    Degraded,
    /// Servers are enabled (or expected from discovery) and none is ready.
    Unhealthy,
}

impl Overall {
    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Healthy => "healthy",
            Overall::Degraded => "degraded",
            Overall::Unhealthy => "unhealthy",
        }
    }
}

/// One server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub name: String,
    /// For a discovered server: the registry's name for it, when it differs from `name`.
    pub display_name: Option<String>,
    pub state: ServerState,
    /// Tools it has in the current catalogue.
    pub tools: usize,
    pub last_error: Option<ErrorReport>,
    #[serde(with = "wire::option_time")]
    pub last_success: Option<SystemTime>,
    /// The MCP revision its shared connection speaks: `2026-07-28` when the server answered
    /// `server/discover`, else the one agreed in `initialize` (`null` while not connected).
    #[serde(default)]
    pub protocol_version: Option<String>,
}

/// Where a server stands; serialises as its `as_str` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    /// Registered; its tools are in the catalogue and its connection is up (or will be
    /// re-made on the next call).
    Ready,
    /// Registration failed and it is not retried (`retry_skipped_servers = false`, or its
    /// tools cannot join the catalogue under `collisions = "error"`).
    Skipped,
    /// The server refused our credentials; it stays out until someone fixes them.
    NeedsAuth,
    /// Registration (or the last reconnect cycle) failed; tried again in the background.
    Retrying,
    /// `enabled = false` in the config.
    Disabled,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Ready => "ready",
            ServerState::Skipped => "skipped",
            ServerState::NeedsAuth => "needs_auth",
            ServerState::Retrying => "retrying",
            ServerState::Disabled => "disabled",
        }
    }
}

/// A discovery source (a tooling registry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceHealth {
    pub name: String,
    /// Whether the last discovery run succeeded.
    pub ok: bool,
    /// Servers the last successful run returned.
    pub servers: usize,
    /// Entries of the last successful run that cannot be registered (e.g. no URL), by
    /// display name. Each is one JSON object: `name` and the report's fields.
    #[serde(with = "unusable_entries")]
    pub unusable: Vec<(String, ErrorReport)>,
    pub last_error: Option<ErrorReport>,
    #[serde(with = "wire::option_time")]
    pub last_success: Option<SystemTime>,
}

/// `(name, report)` pairs as `{"name": ..., "class": ..., "message": ..., ...}` objects.
mod unusable_entries {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ErrorReport;

    #[derive(Serialize)]
    struct Entry<'a> {
        name: &'a str,
        #[serde(flatten)]
        report: &'a ErrorReport,
    }

    #[derive(Deserialize)]
    struct OwnedEntry {
        name: String,
        #[serde(flatten)]
        report: ErrorReport,
    }

    pub(super) fn serialize<S: Serializer>(
        entries: &[(String, ErrorReport)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(entries.iter().map(|(name, report)| Entry { name, report }))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, ErrorReport)>, D::Error> {
        let entries = Vec::<OwnedEntry>::deserialize(d)?;
        Ok(entries.into_iter().map(|e| (e.name, e.report)).collect())
    }
}

/// What the hub's registration bookkeeping says about a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    Ready,
    /// Failed; `retrying` when a background task tries again.
    Failed {
        retrying: bool,
    },
    Disabled,
}

/// The state shown for a server, from its registration and (when registered) its link.
pub(crate) fn server_state(
    registration: Registration,
    last_error: Option<&ErrorReport>,
    link: Option<&LinkStatus>,
) -> ServerState {
    let auth = |class: Option<ErrorClass>| class == Some(ErrorClass::Auth);
    match registration {
        Registration::Disabled => ServerState::Disabled,
        Registration::Failed { .. } if auth(last_error.map(|e| e.class)) => ServerState::NeedsAuth,
        Registration::Failed { retrying: true } => ServerState::Retrying,
        Registration::Failed { retrying: false } => ServerState::Skipped,
        Registration::Ready => match link {
            Some(status) if matches!(status.state, LinkState::BackingOff { .. }) => {
                if auth(status.last_error.as_ref().map(|e| e.class)) {
                    ServerState::NeedsAuth
                } else {
                    ServerState::Retrying
                }
            }
            _ => ServerState::Ready,
        },
    }
}

/// The one word for the hub: healthy when nothing enabled is missing, unhealthy when
/// something is expected and nothing is ready.
pub(crate) fn overall(servers: &[ServerHealth], sources: &[SourceHealth]) -> Overall {
    let enabled = servers.iter().filter(|s| s.state != ServerState::Disabled);
    let (mut ready, mut missing) = (0, 0);
    for server in enabled {
        if server.state == ServerState::Ready {
            ready += 1;
        } else {
            missing += 1;
        }
    }
    let failed_sources = sources
        .iter()
        .filter(|s| !s.ok || !s.unusable.is_empty())
        .count();
    if missing == 0 && failed_sources == 0 {
        Overall::Healthy
    } else if ready == 0 {
        Overall::Unhealthy
    } else {
        Overall::Degraded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn server(state: ServerState) -> ServerHealth {
        ServerHealth {
            name: "s".into(),
            display_name: None,
            state,
            tools: 0,
            last_error: None,
            last_success: None,
            protocol_version: None,
        }
    }

    fn report(class: ErrorClass) -> ErrorReport {
        ErrorReport {
            class,
            message: "m".into(),
            server: Some("s".into()),
            delivery: crate::Delivery::NotSent,
            retry_after: None,
            resource_metadata: None,
            auth: None,
            at: SystemTime::now(),
        }
    }

    #[test]
    fn states_from_registration_and_link() {
        use Registration::*;
        let auth = report(ErrorClass::Auth);
        let down = report(ErrorClass::Unreachable);
        assert_eq!(
            server_state(Disabled, Some(&auth), None),
            ServerState::Disabled
        );
        assert_eq!(
            server_state(Failed { retrying: true }, Some(&auth), None),
            ServerState::NeedsAuth
        );
        assert_eq!(
            server_state(Failed { retrying: true }, Some(&down), None),
            ServerState::Retrying
        );
        assert_eq!(
            server_state(Failed { retrying: false }, Some(&down), None),
            ServerState::Skipped
        );
        let backing_off = |class| LinkStatus {
            state: LinkState::BackingOff {
                until: Instant::now(),
            },
            last_error: Some(report(class)),
            last_success: None,
            protocol_version: None,
        };
        assert_eq!(
            server_state(Ready, None, Some(&backing_off(ErrorClass::Unreachable))),
            ServerState::Retrying
        );
        assert_eq!(
            server_state(Ready, None, Some(&backing_off(ErrorClass::Auth))),
            ServerState::NeedsAuth
        );
        let ready = LinkStatus {
            state: LinkState::Ready,
            last_error: Some(report(ErrorClass::Timeout)),
            last_success: None,
            protocol_version: Some("2025-11-25".into()),
        };
        assert_eq!(server_state(Ready, None, Some(&ready)), ServerState::Ready);
    }

    #[test]
    fn overall_from_the_servers_and_sources() {
        use ServerState::*;
        let all = |states: &[ServerState]| states.iter().map(|s| server(*s)).collect::<Vec<_>>();
        assert_eq!(overall(&all(&[Ready, Disabled]), &[]), Overall::Healthy);
        assert_eq!(overall(&all(&[Ready, Retrying]), &[]), Overall::Degraded);
        assert_eq!(overall(&all(&[Ready, NeedsAuth]), &[]), Overall::Degraded);
        assert_eq!(overall(&all(&[Skipped, Retrying]), &[]), Overall::Unhealthy);
        assert_eq!(overall(&all(&[Disabled]), &[]), Overall::Healthy);
        let failed_source = SourceHealth {
            name: "a365".into(),
            ok: false,
            servers: 0,
            unusable: Vec::new(),
            last_error: Some(report(ErrorClass::Discovery)),
            last_success: None,
        };
        assert_eq!(
            overall(&all(&[Ready]), std::slice::from_ref(&failed_source)),
            Overall::Degraded
        );
        assert_eq!(overall(&[], &[failed_source]), Overall::Unhealthy);
    }

    #[test]
    fn health_serialises_as_the_check_json_and_reads_back() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_738_314_902_417);
        let mut failed = report(ErrorClass::Unreachable);
        failed.at = at;
        let health = Health {
            overall: Overall::Degraded,
            servers: vec![
                ServerHealth {
                    last_error: Some(failed.clone()),
                    ..server(ServerState::NeedsAuth)
                },
                ServerHealth {
                    name: "t".into(),
                    display_name: Some("T Server".into()),
                    protocol_version: Some("2026-07-28".into()),
                    tools: 3,
                    last_success: Some(at),
                    ..server(ServerState::Ready)
                },
            ],
            sources: vec![SourceHealth {
                name: "a365".into(),
                ok: true,
                servers: 1,
                unusable: vec![("No Url".into(), failed.clone())],
                last_error: None,
                last_success: Some(at),
            }],
        };
        let json = serde_json::to_value(&health).unwrap();
        let report = serde_json::to_value(&failed).unwrap();
        let mut entry = report.as_object().unwrap().clone();
        entry.insert("name".into(), "No Url".into());
        assert_eq!(
            json,
            serde_json::json!({
                "overall": "degraded",
                "servers": [
                    {"name": "s", "display_name": null, "state": "needs_auth", "tools": 0,
                     "last_error": report, "last_success": null, "protocol_version": null},
                    {"name": "t", "display_name": "T Server", "state": "ready", "tools": 3,
                     "last_error": null, "last_success": "2025-01-31T09:15:02.417Z",
                     "protocol_version": "2026-07-28"},
                ],
                "sources": [
                    {"name": "a365", "ok": true, "servers": 1, "unusable": [entry],
                     "last_error": null, "last_success": "2025-01-31T09:15:02.417Z"},
                ],
            })
        );
        let back: Health = serde_json::from_value(json).unwrap();
        assert_eq!(back, health);
        for state in [
            ServerState::Ready,
            ServerState::Skipped,
            ServerState::NeedsAuth,
            ServerState::Retrying,
            ServerState::Disabled,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for overall in [Overall::Healthy, Overall::Degraded, Overall::Unhealthy] {
            assert_eq!(serde_json::to_value(overall).unwrap(), overall.as_str());
        }
    }
}
