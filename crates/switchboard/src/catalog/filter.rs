//! `include` / `exclude`: which of a server's tools are exposed.
//!
//! A pattern matches a tool when it matches its original name or its alias. `*` matches any
//! run of characters (also none), `?` exactly one; everything else matches itself. Patterns
//! that match none of the server's tools are reported, since they are usually typos.

use crate::config::ToolFilter;

/// Applies a [`ToolFilter`] and remembers which patterns were used.
pub(super) struct Filter<'a> {
    patterns: &'a [String],
    include: bool,
    matched: Vec<bool>,
}

impl<'a> Filter<'a> {
    pub fn new(filter: &'a ToolFilter) -> Self {
        let (patterns, include): (&[String], bool) = match filter {
            ToolFilter::All => (&[], false),
            ToolFilter::Include(p) => (p, true),
            ToolFilter::Exclude(p) => (p, false),
        };
        Filter {
            patterns,
            include,
            matched: vec![false; patterns.len()],
        }
    }

    /// Whether a tool known by these names (original, then alias if any) is exposed.
    pub fn admits(&mut self, names: &[&str]) -> bool {
        let mut hit = false;
        for (pattern, matched) in self.patterns.iter().zip(&mut self.matched) {
            if names.iter().any(|name| glob_match(pattern, name)) {
                *matched = true;
                hit = true;
            }
        }
        hit == self.include
    }

    /// The key (`include` / `exclude`) and the patterns that matched no tool.
    pub fn unmatched(&self) -> Option<(&'static str, Vec<String>)> {
        let unmatched: Vec<String> = self
            .patterns
            .iter()
            .zip(&self.matched)
            .filter(|(_, matched)| !**matched)
            .map(|(p, _)| p.clone())
            .collect();
        let key = if self.include { "include" } else { "exclude" };
        (!unmatched.is_empty()).then_some((key, unmatched))
    }
}

/// Glob matching with `*` and `?` over characters (iterative, with one backtrack point).
pub(super) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("echo", "echo"));
        assert!(!glob_match("echo", "echo2"));
        assert!(glob_match("search_*", "search_repos"));
        assert!(glob_match("search_*", "search_"));
        assert!(!glob_match("search_*", "research_x"));
        assert!(glob_match("*_issue", "get_issue"));
        assert!(glob_match("*", ""));
        assert!(glob_match("get_?", "get_a"));
        assert!(!glob_match("get_?", "get_ab"));
        assert!(glob_match("a*b*c", "aXXbYYbc"));
        assert!(!glob_match("a*b*c", "aXXbYYb"));
    }

    #[test]
    fn include_keeps_only_matches_and_reports_unused_patterns() {
        let filter = ToolFilter::Include(vec!["get_*".into(), "nope".into()]);
        let mut f = Filter::new(&filter);
        assert!(f.admits(&["get_issue"]));
        assert!(!f.admits(&["delete_repo"]));
        assert_eq!(f.unmatched(), Some(("include", vec!["nope".to_string()])));
    }

    #[test]
    fn exclude_matches_the_alias_too() {
        let filter = ToolFilter::Exclude(vec!["danger".into()]);
        let mut f = Filter::new(&filter);
        assert!(!f.admits(&["delete_repo", "danger"]));
        assert!(f.admits(&["get_issue"]));
        assert_eq!(f.unmatched(), None);
    }

    #[test]
    fn no_filter_admits_everything() {
        let mut f = Filter::new(&ToolFilter::All);
        assert!(f.admits(&["anything"]));
        assert_eq!(f.unmatched(), None);
    }
}
