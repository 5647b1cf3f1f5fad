//! Templating of header and environment values.
//!
//! `${name}` and `$name` come from the per-connection variables, then from the config's
//! `[variables]` table; `${env:NAME}` comes from the process environment; `$$` is a literal `$`.
//! An unknown variable is an error naming the field and the variable, so a request never goes
//! out with `Bearer ${token}` in it.

use std::collections::BTreeMap;

/// Where template variables come from, in lookup order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Variables<'a> {
    /// Per-connection (per-session) variables given through the API; looked up first.
    pub connection: Option<&'a BTreeMap<String, String>>,
    /// The config's `[variables]` table.
    pub config: Option<&'a BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "{field} uses the unknown variable '{variable}'; define it in [variables] or pass it with the connection"
    )]
    UnknownVariable { field: String, variable: String },
    #[error("{field} uses the environment variable '{variable}', which is not set")]
    UnsetEnv { field: String, variable: String },
    #[error("{field} has a malformed placeholder at byte {position}; write $$ for a literal '$'")]
    Syntax { field: String, position: usize },
    #[error(
        "{field} contains a line break after substitution; header and env values must be one line"
    )]
    LineBreak { field: String },
}

/// Renders one value. `field` names it in errors, e.g. `header 'Authorization'`.
pub fn render(field: &str, template: &str, vars: Variables<'_>) -> Result<String, TemplateError> {
    let _ = (field, template, vars);
    todo!("render")
}

/// Renders every header, rejects values with CR/LF, and drops a header whose value is empty
/// or exactly `Bearer` after substitution.
pub fn render_headers(
    headers: &BTreeMap<String, String>,
    vars: Variables<'_>,
) -> Result<Vec<(String, String)>, TemplateError> {
    let _ = (headers, vars);
    todo!("render_headers")
}

/// Renders every env value (stdio servers).
pub fn render_env(
    env: &BTreeMap<String, String>,
    vars: Variables<'_>,
) -> Result<Vec<(String, String)>, TemplateError> {
    let _ = (env, vars);
    todo!("render_env")
}
