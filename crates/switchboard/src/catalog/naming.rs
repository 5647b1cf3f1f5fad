//! Provider-safe names: `^[a-zA-Z0-9_-]{1,max}$`, deterministic, the same for the same tool.
//!
//! Model providers reject tool names with other characters or longer than 64 (OpenAI,
//! Anthropic). A name is made safe in two steps:
//!
//! 1. every character outside `[a-zA-Z0-9_-]` becomes `_` (`github.search/repos` →
//!    `github_search_repos`);
//! 2. a name still over the limit keeps its first `max - 9` characters and gets `_` plus an
//!    8-hex-digit hash of the *whole unsanitised* name, so two long names that share a start
//!    stay apart, and the same tool always gets the same name (FNV-1a: stable across builds
//!    and platforms, unlike std's hasher).
//!
//! Collisions that remain after this are the catalogue's business (see `mod.rs`).

/// Length of the hash suffix, `_` included.
const HASH_SUFFIX_LEN: usize = 9;

/// Whether `c` may appear in an exposed tool name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `name` is a valid exposed name under `max` characters.
pub fn is_valid_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.chars().all(is_name_char)
}

/// `raw` made provider-safe (see the module docs). `max` must leave room for the hash
/// suffix (the config keeps it at 16 or more).
pub fn safe_name(raw: &str, max: usize) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    if name.is_empty() {
        name.push('_');
    }
    if name.len() > max {
        // Only ASCII is left, so byte and character positions agree.
        name.truncate(max.saturating_sub(HASH_SUFFIX_LEN));
        name.push_str(&format!("_{:08x}", short_hash(raw)));
    }
    name
}

/// Whether a name made by [`safe_name`] from a raw name that starts with `raw_prefix` can
/// be `name`: `name` starts with the safe form of the prefix (only as much of it as a name
/// cut to `max` keeps) and has more after it.
pub fn may_start_with(name: &str, raw_prefix: &str, max: usize) -> bool {
    let prefix: String = raw_prefix
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    let kept = &prefix[..prefix.len().min(max.saturating_sub(HASH_SUFFIX_LEN))];
    name.len() > kept.len() && name.starts_with(kept)
}

/// `base` with `_{n}` appended, shortened first so the result fits in `max`.
pub fn with_suffix(base: &str, n: usize, max: usize) -> String {
    let suffix = format!("_{n}");
    let keep = max.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}

/// 32 bits of FNV-1a (64-bit) over the UTF-8 bytes, upper and lower halves folded.
fn short_hash(text: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    ((hash >> 32) ^ hash) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_outside_the_set_become_underscores() {
        assert_eq!(safe_name("gh__search/repos v2", 64), "gh__search_repos_v2");
        assert_eq!(safe_name("fs__read.file", 64), "fs__read_file");
        assert_eq!(safe_name("a__ünï", 64), "a___n_");
        assert_eq!(safe_name("", 64), "_");
        assert_eq!(safe_name("ok-name_1", 64), "ok-name_1");
    }

    #[test]
    fn long_names_are_capped_with_a_stable_hash() {
        let long = format!("{}__{}", "s".repeat(70), "tool");
        let name = safe_name(&long, 64);
        assert_eq!(name.len(), 64);
        assert!(is_valid_name(&name, 64), "{name}");
        assert!(name.starts_with(&"s".repeat(55)));
        // The same input always gives the same name (a fixed value: stable across releases).
        assert_eq!(name, safe_name(&long, 64));
        assert_eq!(&name[55..], format!("_{:08x}", short_hash(&long)));
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b; names must not change between releases.
        assert_eq!(short_hash("abc"), 0xe71fa219 ^ 0x0541574b);
    }

    #[test]
    fn long_names_sharing_a_start_stay_apart() {
        let a = safe_name(&format!("{}_alpha", "x".repeat(80)), 64);
        let b = safe_name(&format!("{}_beta", "x".repeat(80)), 64);
        assert_ne!(a, b);
        assert_eq!((a.len(), b.len()), (64, 64));
    }

    #[test]
    fn the_limit_is_configurable() {
        let raw = "t".repeat(100);
        assert_eq!(safe_name(&raw, 128), raw);
        assert_eq!(safe_name(&raw, 64).len(), 64);
        assert_eq!(safe_name(&raw, 16).len(), 16);
    }

    #[test]
    fn prefixes_of_safe_names() {
        assert!(may_start_with("gh__search", "gh__", 64));
        assert!(may_start_with("my_srv__x", "my.srv__", 64));
        assert!(
            !may_start_with("gh__", "gh__", 64),
            "nothing after the prefix"
        );
        assert!(!may_start_with("ghx_search", "gh__", 64));
        // A long prefix is only as long as a cut name keeps it.
        let server = "s".repeat(70);
        let name = safe_name(&format!("{server}__tool"), 64);
        assert!(may_start_with(&name, &format!("{server}__"), 64));
    }

    #[test]
    fn suffixes_fit_the_limit() {
        assert_eq!(with_suffix("a__echo", 2, 64), "a__echo_2");
        let base = "b".repeat(64);
        let named = with_suffix(&base, 12, 64);
        assert_eq!(named.len(), 64);
        assert!(named.ends_with("b_12"));
    }
}
