//! Output helpers: JSON layout, error lines, plain-text tables.

use std::io::IsTerminal;

use serde::Serialize;
use switchboard::{Error, ErrorClass};

/// How JSON documents are laid out on stdout (`--json-style`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonStyle {
    /// Indented, one key per line.
    Pretty,
    /// One line.
    Compact,
}

impl JsonStyle {
    /// The style asked for; without one, pretty when stdout is a terminal (a person reads
    /// it) and compact when it is piped or redirected (a program does).
    pub fn or_default(asked: Option<JsonStyle>) -> JsonStyle {
        asked.unwrap_or_else(|| {
            if std::io::stdout().is_terminal() {
                JsonStyle::Pretty
            } else {
                JsonStyle::Compact
            }
        })
    }
}

/// Prints `value` as one JSON document on stdout.
pub fn print_json(value: &impl Serialize, style: JsonStyle) {
    let text = match style {
        JsonStyle::Pretty => serde_json::to_string_pretty(value),
        JsonStyle::Compact => serde_json::to_string(value),
    };
    println!("{}", text.unwrap_or_default());
}

/// `message [class]`, the class at the end of the first line (a message may go on with
/// indented lines, e.g. a server's stderr).
pub fn with_class(message: &str, class: ErrorClass) -> String {
    match message.split_once('\n') {
        Some((first, rest)) => format!("{first} [{class}]\n{rest}"),
        None => format!("{message} [{class}]"),
    }
}

/// Prints `error: MESSAGE [class]` on stderr.
pub fn print_error(error: &Error) {
    eprintln!("error: {}", with_class(&error.to_string(), error.class()));
}

/// `text` on one line, its line breaks shown as ` | ` (for table cells).
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_goes_after_the_first_line() {
        assert_eq!(
            with_class("server 's' is down", ErrorClass::Unreachable),
            "server 's' is down [unreachable]"
        );
        assert_eq!(
            with_class("exited (stderr follows)\n    oops", ErrorClass::Unreachable),
            "exited (stderr follows) [unreachable]\n    oops"
        );
        assert_eq!(one_line("a (b)\n    c\n    d"), "a (b) | c | d");
    }
}
