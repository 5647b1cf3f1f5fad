//! Reading a config file: pick the format by the file name, read it, hand it on.
//!
//! TOML goes through the parser (syntax errors with line and column), the key and type check
//! and serde (`raw/toml.rs`), then `validate/`. JSON goes through `raw/json.rs`, then
//! `validate/`. Both end in one [`Config`].

use std::path::Path;

use toml::de::DeTable;

use super::diagnostics::{Ctx, toml_syntax_error};
use super::raw;
use super::types::Config;
use super::validate;
use crate::error::ConfigError;

impl Config {
    /// Reads and validates a config file. `.json` files are read as `mcpServers` (Claude
    /// Desktop, Cursor) or `servers` (VS Code) documents; anything else as Switchboard TOML.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| read_error(path, &e))?;
        let is_json = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let mut config = if is_json {
            Config::from_json_str(&text, Some(path))?
        } else {
            Config::from_toml_str(&text, Some(path))?
        };
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses Switchboard TOML; `origin` names the source in error messages (and becomes
    /// [`Config::source`]).
    pub fn from_toml_str(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let doc = DeTable::parse(text).map_err(|e| toml_syntax_error(&e, text, origin))?;
        let ctx = Ctx {
            file: origin,
            toml: Some((text, doc.get_ref())),
        };
        let raw = raw::toml::read(&ctx, &doc)?;
        let mut config = validate::toml_config(&ctx, raw)?;
        config.source = origin.map(Path::to_path_buf);
        Ok(config)
    }

    /// Parses an `mcpServers` / VS Code `servers` JSON document (see `raw/json.rs` for the
    /// shapes accepted and the tolerance rules); `origin` names the source in error messages
    /// (and becomes [`Config::source`]).
    pub fn from_json_str(text: &str, origin: Option<&Path>) -> Result<Config, ConfigError> {
        let ctx = Ctx {
            file: origin,
            toml: None,
        };
        let servers = raw::json::read(&ctx, text)?;
        let mut config = validate::json_config(&ctx, servers)?;
        config.source = origin.map(Path::to_path_buf);
        Ok(config)
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    use std::io::ErrorKind;
    let (problem, fix) = match e.kind() {
        ErrorKind::NotFound => (
            "the config file does not exist".to_string(),
            "create it, or pass the path of an existing config file".to_string(),
        ),
        ErrorKind::PermissionDenied => (
            "the config file cannot be read: permission denied".to_string(),
            "make the file readable by this user".to_string(),
        ),
        ErrorKind::InvalidData => (
            "the config file is not valid UTF-8 text".to_string(),
            "save the file as UTF-8".to_string(),
        ),
        ErrorKind::IsADirectory => (
            "the config path is a directory".to_string(),
            "pass the path of a config file, e.g. switchboard.toml".to_string(),
        ),
        _ => (
            format!("the config file cannot be read: {e}"),
            "check that the path is a readable file".to_string(),
        ),
    };
    ConfigError::new(problem, fix).with_file(Some(path))
}

#[cfg(test)]
mod tests;
