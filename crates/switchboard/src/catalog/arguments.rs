//! Argument checks: a call's arguments are checked against the tool's `inputSchema` before
//! anything is sent.
//!
//! - The schema is compiled once, on the tool's first call (draft-07, 2019-09 and 2020-12 are
//!   recognised by `$schema`; without one, 2020-12, the MCP default). Remote `$ref`s are never
//!   fetched. A schema that does not compile is reported once and calls then go unchecked:
//!   a server's odd schema must not make its tool uncallable.
//! - `null` values of properties whose schema does not allow `null` are dropped first, also
//!   in nested objects: models send them for "not set", and some servers reject explicit
//!   nulls.
//! - Every problem is reported, each with the JSON pointer of the offending value. Messages
//!   never repeat argument values (they may be secrets): jsonschema's masked form is used.

use std::sync::OnceLock;

use jsonschema::Validator;
use rmcp::model::JsonObject;
use serde_json::Value;

/// A tool's input schema, compiled on first use.
pub(crate) struct ArgumentSchema {
    schema: Value,
    /// `(server, tool)`, for the one warning about a schema that does not compile.
    owner: (String, String),
    compiled: OnceLock<Result<Validator, String>>,
}

impl std::fmt::Debug for ArgumentSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgumentSchema")
            .field("compiled", &self.compiled.get().map(|c| c.is_ok()))
            .finish()
    }
}

/// What checking arguments found.
#[derive(Debug, PartialEq)]
pub(crate) enum Checked {
    /// The arguments to send (nulls dropped).
    Valid(Option<JsonObject>),
    /// Every problem, as `"/pointer: message"`.
    Invalid(Vec<String>),
}

impl ArgumentSchema {
    pub fn new(schema: Value, server: &str, tool: &str) -> Self {
        ArgumentSchema {
            schema,
            owner: (server.to_string(), tool.to_string()),
            compiled: OnceLock::new(),
        }
    }

    fn validator(&self) -> Result<&Validator, &str> {
        self.compiled
            .get_or_init(|| {
                jsonschema::validator_for(&self.schema).map_err(|e| {
                    let reason = e.masked().to_string();
                    tracing::warn!(
                        server = %self.owner.0,
                        tool = %self.owner.1,
                        "the tool's input schema does not compile ({reason}); its arguments are sent unchecked"
                    );
                    reason
                })
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Drops disallowed nulls, then validates.
    pub fn check(&self, arguments: Option<JsonObject>) -> Checked {
        let mut arguments = arguments;
        if let Some(object) = &mut arguments {
            drop_disallowed_nulls(&self.schema, &self.schema, object);
        }
        let Ok(validator) = self.validator() else {
            return Checked::Valid(arguments);
        };
        // Validated in place and handed back: no copy of the arguments on the call path.
        let given = arguments.is_some();
        let instance = Value::Object(arguments.unwrap_or_default());
        let problems: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| {
                let path = e.instance_path();
                let path = if path.is_empty() { "/" } else { path.as_str() };
                format!("{path}: {}", e.masked())
            })
            .collect();
        if !problems.is_empty() {
            return Checked::Invalid(problems);
        }
        match instance {
            Value::Object(object) if given => Checked::Valid(Some(object)),
            _ => Checked::Valid(None),
        }
    }
}

/// Removes `null` members of `object` whose property schema does not accept `null`; recurses
/// into members that are objects with a schema of their own.
fn drop_disallowed_nulls(root: &Value, schema: &Value, object: &mut JsonObject) {
    let schema = resolve(root, schema);
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    object.retain(|key, value| match properties.get(key) {
        Some(property) if value.is_null() => allows_null(root, property, 0),
        _ => true,
    });
    for (key, value) in object.iter_mut() {
        if let (Value::Object(inner), Some(property)) = (value, properties.get(key)) {
            drop_disallowed_nulls(root, property, inner);
        }
    }
}

/// Whether `schema` accepts `null`. Unknown shapes count as accepting it (the validator has
/// the last word; this only decides what is dropped).
fn allows_null(root: &Value, schema: &Value, depth: usize) -> bool {
    if depth > 16 {
        return true; // a $ref cycle
    }
    let schema = resolve(root, schema);
    let Value::Object(o) = schema else {
        return schema.as_bool().unwrap_or(true);
    };
    if o.get("nullable").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    if let Some(t) = o.get("type") {
        let has_null = match t {
            Value::String(s) => s == "null",
            Value::Array(types) => types.iter().any(|t| t == "null"),
            _ => true,
        };
        if !has_null {
            return false;
        }
    }
    if let Some(c) = o.get("const") {
        return c.is_null();
    }
    if let Some(Value::Array(values)) = o.get("enum") {
        return values.iter().any(Value::is_null);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = o.get(key) {
            return branches.iter().any(|b| allows_null(root, b, depth + 1));
        }
    }
    if let Some(Value::Array(branches)) = o.get("allOf") {
        return branches.iter().all(|b| allows_null(root, b, depth + 1));
    }
    true
}

/// Follows a local `$ref` (`#/$defs/X`, `#/definitions/X`); anything else is returned as is.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut current = schema;
    for _ in 0..16 {
        let Some(pointer) = current
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        else {
            return current;
        };
        match root.pointer(pointer) {
            Some(target) => current = target,
            None => return current,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    impl ArgumentSchema {
        fn new_for_test(schema: Value) -> Self {
            ArgumentSchema::new(schema, "s", "t")
        }
    }

    fn object(v: Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    fn schema() -> ArgumentSchema {
        ArgumentSchema::new_for_test(json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1},
                "limit": {"type": "integer", "minimum": 1},
                "cursor": {"type": ["string", "null"]},
                "since": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "filter": {
                    "type": "object",
                    "properties": {"label": {"type": "string"}, "open": {"type": "boolean"}}
                },
                "sort": {"$ref": "#/$defs/sort"}
            },
            "required": ["query"],
            "additionalProperties": false,
            "$defs": {"sort": {"enum": ["asc", "desc"]}}
        }))
    }

    #[test]
    fn valid_arguments_pass_unchanged() {
        let args = object(json!({"query": "x", "limit": 3, "sort": "asc"}));
        assert_eq!(schema().check(args.clone()), Checked::Valid(args));
    }

    #[test]
    fn nulls_not_allowed_are_dropped_allowed_ones_kept() {
        let args = object(json!({
            "query": "x", "limit": null, "cursor": null, "since": null, "sort": null,
            "filter": {"label": null, "open": true}
        }));
        let expected = object(json!({
            "query": "x", "cursor": null, "since": null, "filter": {"open": true}
        }));
        assert_eq!(schema().check(args), Checked::Valid(expected));
    }

    #[test]
    fn every_problem_is_listed_with_its_path_and_no_value() {
        let args =
            object(json!({"query": "", "limit": 0, "filter": {"open": "s3cret"}, "extra": 1}));
        let Checked::Invalid(problems) = schema().check(args) else {
            panic!("expected problems");
        };
        let text = problems.join("\n");
        assert!(problems.iter().any(|p| p.starts_with("/query: ")), "{text}");
        assert!(problems.iter().any(|p| p.starts_with("/limit: ")), "{text}");
        assert!(
            problems.iter().any(|p| p.starts_with("/filter/open: ")),
            "{text}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("/: ") && p.contains("extra")),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(problems.len(), 4, "{text}");
    }

    #[test]
    fn missing_required_property_is_reported_at_the_root() {
        let Checked::Invalid(problems) = schema().check(None) else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("/: ") && problems[0].contains("query"),
            "{problems:?}"
        );
    }

    #[test]
    fn draft_07_schemas_are_understood() {
        let s = ArgumentSchema::new_for_test(json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"n": {"type": "number", "exclusiveMaximum": 10}},
            "definitions": {"unused": {}}
        }));
        assert!(matches!(
            s.check(object(json!({"n": 10}))),
            Checked::Invalid(_)
        ));
        assert!(matches!(
            s.check(object(json!({"n": 9}))),
            Checked::Valid(_)
        ));
    }

    #[test]
    fn a_schema_that_does_not_compile_leaves_calls_unchecked() {
        let s = ArgumentSchema::new_for_test(
            json!({"type": "object", "properties": {"a": {"type": 12}}}),
        );
        assert!(s.validator().is_err());
        let args = object(json!({"a": 1}));
        assert_eq!(s.check(args.clone()), Checked::Valid(args));
    }
}
