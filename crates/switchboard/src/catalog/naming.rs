//! Provider-safe names: `^[a-zA-Z0-9_-]{1,max}$`, deterministic, the same for the same tool,
//! and readable by a model even when the server's name is long.
//!
//! Model providers reject tool names with other characters or longer than 64 (OpenAI,
//! Anthropic). The exposed name of a tool is `{server}{separator}{tool}` (just `{tool}` with
//! `prefix = "never"`), made safe in steps:
//!
//! 1. every character outside `[a-zA-Z0-9_-]` becomes `_` (`github.search/repos` →
//!    `github_search_repos`), in the server name, the separator and the tool name alike. A
//!    name that now fits in `max` is used as it is.
//! 2. Too long: the **server part** is shortened first, so the tool name stays whole. It
//!    becomes the server name's first characters, `_` and 6 hex digits of the hash of the
//!    whole server name, in the room the tool leaves (`{head}_{hash6}`, the head as long as
//!    fits, less any `_` or `-` it ends in, which would read as a separator). With under 8
//!    characters of room the server part is the 6-digit hash alone. The hash is the same for
//!    every tool of the server, so its tools still share a recognisable start.
//! 3. Only when the tool name does not fit even next to a 6-character server part is the
//!    **tool part** shortened: the server part takes its shortest readable form (the server
//!    name itself up to 11 characters, else its first 4, `_` and the 6-digit hash) and the
//!    tool keeps its first characters, then `_` and 8 hex digits of the hash of the whole
//!    tool name (`{tool head}_{hash8}`), filling `max`. If even that leaves the tool under 4
//!    characters of head, the server part is the 6-digit hash alone.
//! 4. Only for budgets too small for any of that (a short `max` with a long separator): the
//!    whole safe name keeps its first `max - 9` characters, then `_` and 8 hex digits of the
//!    hash of the whole unsanitised name.
//!
//! With `prefix = "never"` only the tool part applies: a tool name over `max` keeps its first
//! `max - 9` characters and gets `_` plus its 8-digit hash.
//!
//! So with the default `max = 64` and separator `__`, any tool name of up to 56 characters
//! is visible in full whatever the server is called (in general: whenever it fits in half of
//! `max` and the separator leaves 6 characters of the other half for the server part).
//!
//! Examples (`max = 64`, separator `__`; `S80` is the 80-character server name
//! `server_with_a_really_long_descriptive_name_that_goes_past_the_64_character_limit`):
//!
//! | server, tool | exposed name |
//! | --- | --- |
//! | `github`, `search_repositories` | `github__search_repositories` (fits: unchanged) |
//! | `S80`, `echo` | `server_with_a_really_long_descriptive_name_that_goe_8b35a7__echo` |
//! | `S80`, `get-env` | `server_with_a_really_long_descriptive_name_that_8b35a7__get-env` |
//! | `S80`, a 69-character tool | `serv_8b35a7__list_open_pull_requests_of_a_repository_wi_0a205534` |
//!
//! (Until this scheme the whole name was cut, so `S80` + `echo` and `S80` + `get-env` were
//! `server_with_a_really_long_descriptive_name_that_goes_pa_a5adbf0d` and `..._63d902b5`.)
//!
//! Hashes are FNV-1a (64-bit, folded to 32 bits; a 6-digit hash is the first 6 of the 8 hex
//! digits) over the *unsanitised* UTF-8 name, so two names that differ only in replaced
//! characters or past the cut still get different hashes; FNV-1a is stable across builds
//! and platforms, unlike std's hasher. These names are part of what users pin in prompts and
//! allow-lists: the unit tests below fix example outputs, and a change to them is a breaking
//! change.
//!
//! Collisions that remain after this (equal safe names, or a hash collision) are the
//! catalogue's business (see `mod.rs`).

/// Hex digits of the hash in a shortened server part (`{head}_{hash6}`).
const SERVER_HASH_DIGITS: usize = 6;
/// Hex digits of the hash in a shortened tool part, and in a whole name cut as a last resort.
const TOOL_HASH_DIGITS: usize = 8;
/// The fewest server characters kept in front of the hash when the tool part is shortened.
const MIN_SERVER_HEAD: usize = 4;
/// The fewest tool characters kept in front of the hash when the tool part is shortened.
const MIN_TOOL_HEAD: usize = 4;

/// Whether `c` may appear in an exposed tool name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `name` is a valid exposed name under `max` characters (what the tests check
/// every name the catalogue makes against).
#[cfg(test)]
pub fn is_valid_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.chars().all(is_name_char)
}

/// The exposed name of `tool` of `server` with `prefix = "always"`:
/// `{server}{separator}{tool}` made safe and fitted into `max` (see the module docs).
/// `max` is at least 16 (the config keeps it there).
pub fn prefixed_name(server: &str, separator: &str, tool: &str, max: usize) -> String {
    let (s, sep, t) = (sanitise(server), sanitise(separator), sanitise(tool));
    if s.len() + sep.len() + t.len() <= max {
        return nonempty(format!("{s}{sep}{t}"));
    }
    // The server part shortened so that the tool stays whole.
    if let Some(short) = server_part(&s, server, max.saturating_sub(sep.len() + t.len())) {
        return format!("{short}{sep}{t}");
    }
    // The tool is too long by itself: both parts shortened.
    let readable = if s.len() <= MIN_SERVER_HEAD + 1 + SERVER_HASH_DIGITS {
        s.clone()
    } else {
        server_with_hash(s[..MIN_SERVER_HEAD].trim_end_matches(['_', '-']), server)
    };
    let hash_only = hash_hex(server, SERVER_HASH_DIGITS);
    for short in [readable, hash_only] {
        let room = max.saturating_sub(short.len() + sep.len());
        if room >= MIN_TOOL_HEAD + 1 + TOOL_HASH_DIGITS && short.len() <= s.len() {
            return format!("{short}{sep}{}", fit(&t, tool, room));
        }
    }
    // A budget too small for both parts.
    fit(
        &format!("{s}{sep}{t}"),
        &format!("{server}{separator}{tool}"),
        max,
    )
}

/// The exposed name of `tool` with `prefix = "never"`: the tool part alone (see the module
/// docs).
pub fn bare_name(tool: &str, max: usize) -> String {
    nonempty(fit(&sanitise(tool), tool, max))
}

/// Whether [`prefixed_name`] can have made `name` for some tool of `server`: `name` starts
/// with the safe server name and separator, or with a shortened server part (a head of the
/// safe server name, then `_` and its hash, or the hash alone) and the separator, or (a
/// budget too small for both parts) with as much of `{server}{separator}` as a cut name
/// keeps. Collision suffixes and tool shortening only change the end, so they never matter.
pub fn may_belong_to(name: &str, server: &str, separator: &str, max: usize) -> bool {
    let (s, sep) = (sanitise(server), sanitise(separator));
    let after = |prefix: &str| name.len() > prefix.len() && name.starts_with(prefix);
    if after(&format!("{s}{sep}")) {
        return true;
    }
    let hashed = format!("{}{sep}", hash_hex(server, SERVER_HASH_DIGITS));
    if after(&hashed) {
        return true;
    }
    let marker = format!("_{hashed}");
    let shortened = name.match_indices(&marker).any(|(at, _)| {
        let head = &name[..at];
        name.len() > at + marker.len() && s.starts_with(head)
    });
    if shortened {
        return true;
    }
    let whole = format!("{s}{sep}");
    let kept = &whole[..whole.len().min(max.saturating_sub(TOOL_HASH_DIGITS + 1))];
    name.len() == max && name.starts_with(kept)
}

/// `base` with `_{n}` appended, shortened first so the result fits in `max`.
pub fn with_suffix(base: &str, n: usize, max: usize) -> String {
    let suffix = format!("_{n}");
    let keep = max.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}

/// Every character outside `[a-zA-Z0-9_-]` replaced by `_`: one ASCII character for each
/// character, so byte and character positions agree afterwards.
fn sanitise(raw: &str) -> String {
    raw.chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect()
}

fn nonempty(name: String) -> String {
    if name.is_empty() { "_".into() } else { name }
}

/// The server part in `room` characters, shorter than the safe server name `safe`: its head,
/// `_` and the 6-digit hash of `raw`, or the hash alone under 8 characters; `None` under 6.
fn server_part(safe: &str, raw: &str, room: usize) -> Option<String> {
    if safe.len() <= room {
        return Some(safe.to_string());
    }
    if room < SERVER_HASH_DIGITS {
        return None;
    }
    let head = safe[..room.saturating_sub(SERVER_HASH_DIGITS + 1)].trim_end_matches(['_', '-']);
    Some(server_with_hash(head, raw))
}

/// `{head}_{hash6}`, or the hash alone when `head` is empty. `head` should not end in `_` or
/// `-`, which would read as a separator.
fn server_with_hash(head: &str, raw: &str) -> String {
    if head.is_empty() {
        hash_hex(raw, SERVER_HASH_DIGITS)
    } else {
        with_hash(head, raw, SERVER_HASH_DIGITS)
    }
}

/// The safe `text` if it fits in `room`, else its head, `_` and the 8-digit hash of `raw`
/// (`room` must leave space for the hash: 9 or more).
fn fit(text: &str, raw: &str, room: usize) -> String {
    if text.len() <= room {
        return text.to_string();
    }
    let keep = room.saturating_sub(TOOL_HASH_DIGITS + 1);
    with_hash(&text[..keep], raw, TOOL_HASH_DIGITS)
}

/// `{head}_{hash}` with `digits` hex digits of the hash of `raw`.
fn with_hash(head: &str, raw: &str, digits: usize) -> String {
    format!("{head}_{}", hash_hex(raw, digits))
}

/// The first `digits` (at most 8) of the 8 hex digits of [`short_hash`].
fn hash_hex(raw: &str, digits: usize) -> String {
    let mut hex = format!("{:08x}", short_hash(raw));
    hex.truncate(digits);
    hex
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
pub(super) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Cases per property: enough to reach every branch, few enough to stay fast.
    pub(in crate::catalog) const CASES: u32 = 256;

    /// A server or tool name of 1 to 200 characters: name characters, separators and
    /// punctuation that must be replaced, and arbitrary unicode; often short, so that the
    /// names that fit are tried as much as the ones that do not.
    pub(in crate::catalog) fn raw_name() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            6 => proptest::char::range('a', 'z'),
            1 => proptest::sample::select(vec!['A', 'Z', '0', '9', '_', '-', '.', '/', ' ', ':']),
            1 => any::<char>(),
        ];
        prop_oneof![
            proptest::collection::vec(c.clone(), 1..16),
            proptest::collection::vec(c, 1..200),
        ]
        .prop_map(String::from_iter)
    }

    /// `max_name_length`: OpenAI's 64, small budgets, and anything the config allows.
    pub(in crate::catalog) fn budget() -> impl Strategy<Value = usize> {
        prop_oneof![Just(64), 16..=80usize, 16..=1024usize]
    }

    /// A separator the config accepts: 1 to 8 name characters, `__` most often.
    pub(in crate::catalog) fn separator() -> impl Strategy<Value = String> {
        let c = proptest::sample::select(vec!['_', '-', 'x', '0']);
        prop_oneof![
            3 => Just("__".to_string()),
            1 => proptest::collection::vec(c, 1..=8).prop_map(String::from_iter),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn prefixed_names_are_safe_deterministic_and_keep_short_tools_whole(
            server in raw_name(),
            tool in raw_name(),
            separator in separator(),
            max in budget(),
        ) {
            let name = prefixed_name(&server, &separator, &tool, max);
            prop_assert!(is_valid_name(&name, max), "{name:?} (max {max})");
            prop_assert_eq!(&name, &prefixed_name(&server, &separator, &tool, max));
            let (s, t) = (sanitise(&server), sanitise(&tool));
            let whole = format!("{s}{separator}{t}");
            if whole.len() <= max {
                prop_assert_eq!(&name, &whole);
            }
            // A tool name that fits in half the budget is visible in full, when the
            // separator leaves the other half room for a 6-character server part.
            if t.len() <= max / 2 && separator.len() + SERVER_HASH_DIGITS <= max - max / 2 {
                let tail = format!("{separator}{t}");
                prop_assert!(name.ends_with(&tail), "{name:?} lacks {tail:?}");
                // ... and so is the server's name when it fits, else its hash.
                let part = &name[..name.len() - tail.len()];
                prop_assert!(
                    part == s || part.ends_with(&hash_hex(&server, SERVER_HASH_DIGITS)),
                    "server part {part:?} of {server:?}"
                );
            }
        }

        #[test]
        fn bare_names_are_safe_and_whole_when_they_fit(tool in raw_name(), max in budget()) {
            let name = bare_name(&tool, max);
            prop_assert!(is_valid_name(&name, max), "{name:?} (max {max})");
            prop_assert_eq!(&name, &bare_name(&tool, max));
            let t = sanitise(&tool);
            if t.len() <= max {
                prop_assert_eq!(name, t);
            }
        }

        #[test]
        fn suffixed_names_respect_the_budget(
            server in raw_name(),
            tool in raw_name(),
            max in budget(),
            n in 2usize..10_000,
        ) {
            let name = with_suffix(&prefixed_name(&server, "__", &tool, max), n, max);
            prop_assert!(is_valid_name(&name, max), "{name:?} (max {max})");
            let suffix = format!("_{n}");
            prop_assert!(name.ends_with(&suffix));
        }
    }

    /// An 80-character server name: with any tool, too long for 64.
    const S80: &str =
        "server_with_a_really_long_descriptive_name_that_goes_past_the_64_character_limit";

    #[test]
    fn characters_outside_the_set_become_underscores() {
        assert_eq!(
            prefixed_name("gh", "__", "search/repos v2", 64),
            "gh__search_repos_v2"
        );
        assert_eq!(prefixed_name("fs", "__", "read.file", 64), "fs__read_file");
        assert_eq!(prefixed_name("a", "__", "ünï", 64), "a___n_");
        assert_eq!(bare_name("", 64), "_");
        assert_eq!(bare_name("ok-name_1", 64), "ok-name_1");
    }

    #[test]
    fn names_that_fit_are_unchanged() {
        assert_eq!(
            prefixed_name("github", "__", "search_repositories", 64),
            "github__search_repositories"
        );
        let exact = format!("{}__{}", "s".repeat(30), "t".repeat(32));
        assert_eq!(exact.len(), 64);
        assert_eq!(
            prefixed_name(&"s".repeat(30), "__", &"t".repeat(32), 64),
            exact
        );
        let long = "s".repeat(70);
        assert_eq!(
            prefixed_name(&long, "__", "echo", 128),
            format!("{long}__echo")
        );
    }

    #[test]
    fn a_long_server_name_is_shortened_and_the_tool_stays_whole() {
        assert_eq!(S80.len(), 80);
        let echo = prefixed_name(S80, "__", "echo", 64);
        let get_env = prefixed_name(S80, "__", "get-env", 64);
        // Fixed values: exposed names must not change between releases.
        assert_eq!(
            echo,
            "server_with_a_really_long_descriptive_name_that_goe_8b35a7__echo"
        );
        // The head loses the `_` it would end in (it would read as a separator).
        assert_eq!(
            get_env,
            "server_with_a_really_long_descriptive_name_that_8b35a7__get-env"
        );
        assert_eq!((echo.len(), get_env.len()), (64, 63));
        // The server part ends in the same hash for every tool of the server.
        let hash = format!("_{}__", hash_hex(S80, 6));
        assert!(
            echo.contains(&hash) && get_env.contains(&hash),
            "{echo} {get_env}"
        );
        // With little room the server part is the hash alone.
        let tool = "t".repeat(56);
        assert_eq!(
            prefixed_name(S80, "__", &tool, 64),
            format!("{}__{tool}", hash_hex(S80, 6))
        );
    }

    #[test]
    fn a_tool_name_too_long_by_itself_is_shortened_too() {
        let tool = "list_open_pull_requests_of_a_repository_with_their_reviews_and_checks";
        assert_eq!(tool.len(), 69);
        assert_eq!(
            prefixed_name(S80, "__", tool, 64),
            "serv_8b35a7__list_open_pull_requests_of_a_repository_wi_0a205534"
        );
        // A short server keeps its whole name.
        let name = prefixed_name("github", "__", tool, 64);
        assert_eq!(
            name,
            "github__list_open_pull_requests_of_a_repository_with_th_0a205534"
        );
        assert!(
            name.starts_with("github__list_open_pull_requests_"),
            "{name}"
        );
        assert_eq!(name.len(), 64);
        // prefix = "never": only the tool part.
        assert_eq!(bare_name(tool, 32), "list_open_pull_requests_0a205534");
        assert_eq!(bare_name(tool, 128), tool);
    }

    #[test]
    fn long_names_sharing_a_start_stay_apart() {
        let a = prefixed_name(S80, "__", &format!("{}_alpha", "x".repeat(80)), 64);
        let b = prefixed_name(S80, "__", &format!("{}_beta", "x".repeat(80)), 64);
        assert_ne!(a, b);
        assert_eq!((a.len(), b.len()), (64, 64));
        let c = prefixed_name(&format!("{S80}_one"), "__", "echo", 64);
        let d = prefixed_name(&format!("{S80}_two"), "__", "echo", 64);
        assert_ne!(c, d);
        assert!(c.ends_with("__echo") && d.ends_with("__echo"));
    }

    #[test]
    fn tiny_budgets_and_long_separators_still_give_valid_names() {
        let tool = "search_repositories";
        // No room for a readable tool part: the whole name is cut (the old rule).
        let name = prefixed_name("github", "__", tool, 16);
        assert_eq!(name, "github__10bb1335");
        assert_eq!(name.len(), 16);
        // The longest separator: the server part is one character and the hash.
        assert_eq!(
            prefixed_name(S80, "--------", "echo", 20),
            "s_8b35a7--------echo"
        );
        for max in 16..=40 {
            for sep in ["_", "__", "--------"] {
                for tool in ["e", "echo", tool, &"t".repeat(50)] {
                    let name = prefixed_name(S80, sep, tool, max);
                    assert!(is_valid_name(&name, max), "{max} {sep} {tool}: {name}");
                }
            }
        }
    }

    #[test]
    fn the_hash_is_fnv1a_folded() {
        // FNV-1a 64 of "abc" is 0xe71fa2190541574b; names must not change between releases.
        assert_eq!(short_hash("abc"), 0xe71fa219 ^ 0x0541574b);
        assert_eq!(
            hash_hex("abc", 8),
            format!("{:08x}", 0xe71fa219u32 ^ 0x0541574b)
        );
        assert_eq!(hash_hex("abc", 6), hash_hex("abc", 8)[..6]);
    }

    #[test]
    fn names_are_traced_back_to_their_servers() {
        assert!(may_belong_to("gh__search", "gh", "__", 64));
        assert!(may_belong_to("my_srv__x", "my.srv", "__", 64));
        assert!(
            !may_belong_to("gh__", "gh", "__", 64),
            "nothing after the prefix"
        );
        assert!(!may_belong_to("ghx_search", "gh", "__", 64));
        // Long server names are shortened in different ways for different tools.
        let server = "s".repeat(70);
        for tool in ["tool", &"t".repeat(30), &"u".repeat(80)] {
            let name = prefixed_name(&server, "__", tool, 64);
            assert!(may_belong_to(&name, &server, "__", 64), "{name}");
            assert!(!may_belong_to(&name, &"s".repeat(69), "__", 64), "{name}");
        }
        for max in 16..40 {
            let name = prefixed_name(&server, "________", "tool", max);
            assert!(
                may_belong_to(&name, &server, "________", max),
                "{max}: {name}"
            );
        }
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
