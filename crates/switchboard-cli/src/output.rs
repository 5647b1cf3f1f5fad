//! Plain-text output helpers.

/// The first line of a description, trimmed.
pub fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Prints rows as two left-aligned columns.
pub fn print_table<'a>(rows: impl Iterator<Item = [&'a str; 2]>) {
    let rows: Vec<[&str; 2]> = rows.collect();
    let width = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    for [name, description] in rows {
        if description.is_empty() {
            println!("{name}");
        } else {
            println!("{name:<width$}  {description}");
        }
    }
}
