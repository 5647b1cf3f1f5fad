//! Exports, against golden files (`UPDATE_GOLDEN=1 cargo test -p switchboard catalog`
//! rewrites them after a deliberate change).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

fn export_fixture() -> Catalog {
    let mut s = server("weather", &["forecast", "bare"]);
    s.tools[0].input_schema = Arc::new(
        json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"]
        })
        .as_object()
        .cloned()
        .unwrap(),
    );
    s.tools[0].description = Some("Forecast for a city.".into());
    s.tools[1].description = None;
    build(&[s])
}

fn golden(file: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/catalog/golden")
        .join(file);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(text, expected, "export differs from {}", path.display());
}

#[test]
fn openai_chat_export_matches_golden() {
    golden(
        "openai.json",
        &export_fixture().export(ExportFormat::OpenAiChat),
    );
}

#[test]
fn openai_responses_export_matches_golden() {
    golden(
        "openai-responses.json",
        &export_fixture().export(ExportFormat::OpenAiResponses),
    );
}

#[test]
fn anthropic_export_matches_golden() {
    golden(
        "anthropic.json",
        &export_fixture().export(ExportFormat::Anthropic),
    );
}
