//! The file shapes, as written: every key optional, nothing interpreted yet.
//!
//! - `toml.rs`: Switchboard's TOML, one serde struct per table (`deny_unknown_fields`).
//! - `json.rs`: the `mcpServers` (Claude Desktop, Cursor) and VS Code `servers` JSON
//!   documents, read tolerantly into the same [`RawServer`] as a TOML server table.
//!
//! What the values mean is checked afterwards, by `validate/`.

pub(super) mod json;
pub(super) mod toml;

pub(super) use self::toml::{
    RawCatalog, RawConfig, RawDiscovery, RawServer, RawSessions, RawToolOverride,
};
