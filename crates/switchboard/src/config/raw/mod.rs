//! The file shapes, as written: every key optional, nothing interpreted yet.
//!
//! - `toml.rs`: Switchboard's TOML. One serde struct per table, and the shape of every key;
//!   the document is checked against the shapes before serde reads it, so unknown keys and
//!   wrong types are reported in our words with the key's position.
//! - `json.rs`: the `mcpServers` (Claude Desktop, Cursor) and VS Code `servers` JSON
//!   documents, read tolerantly into the same [`RawServer`] as a TOML server table.
//!
//! What the values mean is checked afterwards, by `validate/`.

pub(super) mod json;
pub(super) mod toml;

pub(super) use self::toml::{
    RawAuth, RawCatalog, RawConfig, RawDiscovery, RawGateway, RawGatewayAuth, RawGatewayJwt,
    RawScale, RawServer, RawSessions, RawToolOverride,
};
