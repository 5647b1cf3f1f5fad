//! How times and durations look in the engine's serialised state (health, error reports).
//!
//! One rule for every face (CLI JSON, gateway, Python): a moment is an RFC 3339 string in
//! UTC with millisecond precision (`2025-01-31T09:15:02.417Z`), a duration is a whole
//! number of milliseconds in a field whose name ends in `_ms`. Both read back with serde.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serializer};

/// `at` as RFC 3339, UTC, milliseconds.
pub(crate) fn format_time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn parse_time<E: serde::de::Error>(text: &str) -> Result<SystemTime, E> {
    humantime::parse_rfc3339(text)
        .map_err(|e| E::custom(format!("'{text}' is not an RFC 3339 UTC time: {e}")))
}

/// Reads a [`SystemTime`] from an RFC 3339 string (written with [`format_time`]).
pub(crate) fn deserialize_time<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    parse_time(&String::deserialize(d)?)
}

/// An optional [`SystemTime`] as an RFC 3339 string or `null`.
pub(crate) mod option_time {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        at: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_some(&format_time(*at)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_time(&text))
            .transpose()
    }
}

/// Reads an optional [`Duration`] from whole milliseconds or `null` (written with
/// [`millis`]).
pub(crate) fn deserialize_option_millis<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
}

/// Whole milliseconds, saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_milliseconds_and_read_back() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_738_314_902_417);
        assert_eq!(format_time(at), "2025-01-31T09:15:02.417Z");
        let back: SystemTime = parse_time::<serde_json::Error>("2025-01-31T09:15:02.417Z").unwrap();
        assert_eq!(back, at);
        assert!(parse_time::<serde_json::Error>("yesterday").is_err());
    }
}
