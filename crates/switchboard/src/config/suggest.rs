//! "Did you mean …?" for misspelt keys and values.
//!
//! Config errors are read by people fixing a typo, so an unknown key or transport name is
//! compared with the known ones and the closest is suggested when it is close enough.

/// Words other MCP clients use for one of ours: `(theirs, ours)`. Checked before edit distance,
/// so `type` suggests `transport` although the two are far apart.
const ALIASES: &[(&str, &str)] = &[
    ("type", "transport"),
    ("disabled", "enabled"),
    ("cmd", "command"),
    ("endpoint", "url"),
    ("serverurl", "url"),
    ("timeout", "tool_call_timeout"),
    ("http", "streamable-http"),
    ("var", "variables"),
    ("vars", "variables"),
    ("mcpservers", "servers"),
];

/// The known word closest to `word`, if one is close enough to be a likely typo.
///
/// Comparison ignores case, `_` and `-`, so `connectTimeout` suggests `connect_timeout`.
/// Distances are optimal-string-alignment edit distances (a swap of two neighbouring letters
/// costs 1); a candidate is suggested when the distance is at most a third of the word's length
/// (and at least 1).
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let norm = normalise(word);
    if let Some((_, ours)) = ALIASES.iter().find(|(theirs, _)| *theirs == norm)
        && let Some(k) = known.iter().find(|k| *k == ours)
    {
        return Some(k);
    }
    let limit = (norm.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (distance(&norm, &normalise(k)), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn normalise(word: &str) -> String {
    word.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
pub(super) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["transport", "command", "args", "url", "connect_timeout"];

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("comand", "command"), 1);
        assert_eq!(distance("ulr", "url"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("comand", KEYS), Some("command"));
        assert_eq!(closest("ulr", KEYS), Some("url"));
        assert_eq!(closest("connectTimeout", KEYS), Some("connect_timeout"));
        assert_eq!(closest("Command", KEYS), Some("command"));
        assert_eq!(closest("type", KEYS), Some("transport"));
        assert_eq!(closest("zzzzzz", KEYS), None);
        // An alias whose target is not among the candidates suggests nothing.
        assert_eq!(closest("disabled", KEYS), None);
    }
}
