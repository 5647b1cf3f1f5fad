//! Output: each measured row as one JSON object per line (with `--json`) the moment it is
//! measured, and a readable table of all rows at the end (stdout, or stderr with `--json`
//! so stdout stays machine-readable). Progress notes always go to stderr.

use serde_json::Value;

/// One measured row: named fields, in display order.
#[derive(Debug, Clone, Default)]
pub struct Row(Vec<(&'static str, Value)>);

impl Row {
    pub fn new(scenario: &str) -> Row {
        Row(vec![("scenario", Value::from(scenario))])
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Row {
        self.0.push((key, value.into()));
        self
    }

    /// A float rounded to `digits` decimals (JSON keeps it a number).
    pub fn num(self, key: &'static str, value: f64, digits: i32) -> Row {
        let scale = 10f64.powi(digits);
        let rounded = (value * scale).round() / scale;
        let value = if digits == 0 {
            Value::from(rounded as i64)
        } else {
            Value::from(rounded)
        };
        self.with(key, value)
    }

    /// The `scenario` field (first of every row).
    fn scenario(&self) -> &Value {
        &self.0[0].1
    }

    fn to_json(&self) -> String {
        let fields: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(*k), v))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}

/// Collects rows; prints JSON as it goes and the table at the end.
pub struct Report {
    json: bool,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(json: bool) -> Report {
        Report {
            json,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        if self.json {
            println!("{}", row.to_json());
        } else {
            eprintln!("  measured: {}", row.to_json());
        }
        self.rows.push(row);
    }

    /// Prints every row as a table with the union of all rows' columns.
    pub fn finish(&self) {
        let table = self.table();
        if self.json {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }

    /// One table per scenario name (`gateway` and `gateway-idle` rows have different
    /// columns), in the order they were first measured.
    fn table(&self) -> String {
        let mut names: Vec<&Value> = Vec::new();
        for row in &self.rows {
            let name = row.scenario();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
            .into_iter()
            .map(|name| {
                let rows: Vec<&Row> = self.rows.iter().filter(|r| r.scenario() == name).collect();
                table_of(&rows)
            })
            .collect()
    }
}

/// A table of `rows` with the union of their columns.
fn table_of(rows: &[&Row]) -> String {
    let mut columns: Vec<&'static str> = Vec::new();
    for row in rows {
        for (key, _) in &row.0 {
            if !columns.contains(key) {
                columns.push(key);
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| {
                    row.0
                        .iter()
                        .find(|(k, _)| k == c)
                        .map(|(_, v)| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = String::from("\n");
    out.push_str(&line(columns.clone()));
    out.push_str(&format!(
        "|{}|\n",
        widths
            .iter()
            .map(|w| format!("{}:", "-".repeat(w + 1)))
            .collect::<Vec<_>>()
            .join("|")
    ));
    for row in &cells {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A progress note on stderr.
pub fn note(message: impl AsRef<str>) {
    eprintln!("{}", message.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_field_order_in_json() {
        let row = Row::new("calls")
            .with("transport", "stdio")
            .num("ratio", 0.91234, 3);
        assert_eq!(
            row.to_json(),
            r#"{"scenario":"calls","transport":"stdio","ratio":0.912}"#
        );
    }

    #[test]
    fn table_has_header_and_rows() {
        let mut report = Report::new(false);
        report.rows.push(Row::new("calls").with("concurrency", 16));
        let table = report.table();
        assert!(table.contains("scenario"));
        assert!(table.contains("calls"));
        assert!(table.contains("16"));
    }

    #[test]
    fn each_scenario_gets_its_own_table() {
        let mut report = Report::new(false);
        report.rows.push(Row::new("scale").with("concurrency", 16));
        report.rows.push(Row::new("scale-idle").with("bytes", 100));
        report.rows.push(Row::new("scale").with("concurrency", 1));
        let table = report.table();
        assert_eq!(table.matches("scenario |").count(), 2, "{table}");
        let idle = table
            .split("\n\n")
            .find(|t| t.contains("scale-idle"))
            .unwrap();
        assert!(!idle.contains("concurrency"), "{table}");
    }
}
