//! `switchboard tools --describe NAME`: one tool and its arguments, for a person.
//!
//! Each property of the input schema is one row: name, type, required or optional, then
//! what else the schema says (description, allowed values, default, bounds). Properties of
//! nested objects (and of objects in arrays) follow their parent, indented. Required
//! properties come first, each group in name order. An output schema is shown the same way.

use serde_json::{Map, Value};
use switchboard::ExposedTool;

/// The whole description, lines ending in `\n`.
pub fn describe(tool: &ExposedTool) -> String {
    let mut out = format!("{}\n", tool.name);
    let mut origin = format!("  tool '{}' of server '{}'", tool.original, tool.server);
    if let Some(alias) = &tool.alias {
        origin.push_str(&format!(", alias '{alias}'"));
    }
    out.push_str(&origin);
    out.push('\n');
    if let Some(title) = &tool.title {
        out.push_str(&format!("  title: {title}\n"));
    }
    let hints = hints(tool);
    if !hints.is_empty() {
        out.push_str(&format!("  hints: {}\n", hints.join(", ")));
    }
    out.push('\n');
    for line in tool.description.trim().lines() {
        out.push_str(&format!("{}\n", line.trim_end()));
    }
    out.push('\n');
    section(&mut out, "Arguments", &tool.input_schema);
    if let Some(output) = &tool.output_schema {
        out.push('\n');
        section(&mut out, "Result (structuredContent)", output);
    }
    out
}

fn section(out: &mut String, title: &str, schema: &Map<String, Value>) {
    let mut rows = Vec::new();
    properties(schema, 0, &mut rows);
    if rows.is_empty() {
        out.push_str(&format!("{title}: none\n"));
        return;
    }
    out.push_str(&format!("{title}:\n"));
    let name_width = rows
        .iter()
        .map(|r| 2 * r.depth + r.name.chars().count())
        .max()
        .unwrap_or(0);
    let type_width = rows
        .iter()
        .map(|r| r.kind.chars().count())
        .max()
        .unwrap_or(0);
    for row in rows {
        let name = format!("{}{}", "  ".repeat(row.depth), row.name);
        let required = if row.required { "required" } else { "optional" };
        let line = format!(
            "  {name:<name_width$}  {:<type_width$}  {required}  {}",
            row.kind,
            row.notes.join("; ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// One property.
struct Row {
    depth: usize,
    name: String,
    kind: String,
    required: bool,
    notes: Vec<String>,
}

/// The rows of `schema`'s properties (and their nested properties) at `depth`.
fn properties(schema: &Map<String, Value>, depth: usize, rows: &mut Vec<Row>) {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&String> = props.keys().collect();
    names.sort_by_key(|n| (!required.contains(&n.as_str()), n.as_str()));
    for name in names {
        let Value::Object(prop) = &props[name] else {
            continue;
        };
        rows.push(Row {
            depth,
            name: name.clone(),
            kind: kind(prop),
            required: required.contains(&name.as_str()),
            notes: notes(prop),
        });
        // An object's properties, or those of the objects an array holds.
        let nested = match prop.get("items") {
            Some(Value::Object(items)) if prop.get("properties").is_none() => items,
            _ => prop,
        };
        properties(nested, depth + 1, rows);
    }
}

/// The type as people say it: `string`, `integer`, `string | null`, `array of string`,
/// `"a" | "b"` for an enum without a type, `any` when the schema does not say.
fn kind(prop: &Map<String, Value>) -> String {
    let base = match prop.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => {
            let variants = ["anyOf", "oneOf"]
                .iter()
                .find_map(|k| prop.get(*k).and_then(Value::as_array));
            if let Some(variants) = variants {
                variants
                    .iter()
                    .filter_map(Value::as_object)
                    .map(kind)
                    .collect::<Vec<_>>()
                    .join(" | ")
            } else if prop.contains_key("const") {
                "const".to_string()
            } else if prop.contains_key("enum") {
                "enum".to_string()
            } else if prop.contains_key("properties") {
                "object".to_string()
            } else {
                "any".to_string()
            }
        }
    };
    match prop.get("items") {
        Some(Value::Object(items)) if base == "array" => format!("array of {}", kind(items)),
        _ => base,
    }
}

/// The description's first line, allowed values, default, bounds and format.
fn notes(prop: &Map<String, Value>) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(description) = prop.get("description").and_then(Value::as_str) {
        let first = crate::output::first_line(description);
        if !first.is_empty() {
            notes.push(first);
        }
    }
    if let Some(Value::Array(values)) = prop.get("enum") {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        notes.push(format!("one of {}", values.join(", ")));
    }
    if let Some(value) = prop.get("const") {
        notes.push(format!("always {value}"));
    }
    if let Some(value) = prop.get("default") {
        notes.push(format!("default {value}"));
    }
    for (key, word) in [
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ] {
        if let Some(value) = prop.get(key).filter(|v| v.is_number()) {
            notes.push(format!("{word} {value}"));
        }
    }
    for (key, word) in [
        ("minLength", "length >= {}"),
        ("maxLength", "length <= {}"),
        ("minItems", "items >= {}"),
        ("maxItems", "items <= {}"),
    ] {
        if let Some(n) = prop.get(key).and_then(Value::as_u64) {
            notes.push(word.replace("{}", &n.to_string()));
        }
    }
    if let Some(format) = prop.get("format").and_then(Value::as_str) {
        notes.push(format!("format {format}"));
    }
    if let Some(pattern) = prop.get("pattern").and_then(Value::as_str) {
        notes.push(format!("pattern {pattern}"));
    }
    notes
}

/// The annotations the server set to true, in words.
fn hints(tool: &ExposedTool) -> Vec<&'static str> {
    let Some(a) = &tool.annotations else {
        return Vec::new();
    };
    [
        (a.read_only, "read-only"),
        (a.destructive, "destructive"),
        (a.idempotent, "idempotent"),
        (a.open_world, "open world"),
    ]
    .into_iter()
    .filter(|(set, _)| *set == Some(true))
    .map(|(_, word)| word)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section_of(schema: Value) -> String {
        let mut out = String::new();
        section(&mut out, "Arguments", schema.as_object().unwrap());
        out
    }

    #[test]
    fn nested_objects_are_indented_with_types_requirement_and_notes() {
        let text = section_of(json!({
            "type": "object",
            "required": ["query", "options"],
            "properties": {
                "query": {"type": "string", "description": "What to find.\nMore text.", "minLength": 1},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                "mode": {"enum": ["fast", "full"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "maybe": {"type": ["string", "null"]},
                "options": {
                    "type": "object",
                    "required": ["depth"],
                    "properties": {
                        "depth": {"type": "integer"},
                        "sort": {"type": "string", "enum": ["asc", "desc"], "default": "asc"}
                    }
                },
                "filters": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}}
                }}
            }
        }));
        let expected = "\
Arguments:
  options  object           required
    depth  integer          required
    sort   string           optional  one of \"asc\", \"desc\"; default \"asc\"
  query    string           required  What to find.; length >= 1
  filters  array of object  optional
    field  string           optional
  limit    integer          optional  default 10; >= 1; <= 100
  maybe    string | null    optional
  mode     enum             optional  one of \"fast\", \"full\"
  tags     array of string  optional
";
        assert_eq!(text, expected);
    }

    #[test]
    fn no_properties_says_none() {
        assert_eq!(
            section_of(json!({"type": "object", "properties": {}})),
            "Arguments: none\n"
        );
        assert_eq!(section_of(json!({})), "Arguments: none\n");
    }
}
