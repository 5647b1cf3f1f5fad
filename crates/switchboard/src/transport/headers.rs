//! Rendered headers into an HTTP header map: the one place configured (and registry-sent)
//! header values become `HeaderValue`s, for Streamable HTTP, legacy SSE and discovery.
//!
//! Every value is marked sensitive, so `Debug` of a map or a request prints `Sensitive`
//! instead of it and HTTP/2 never indexes it (HPACK). Errors name the header, never the
//! value: values are secrets.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Why a rendered header cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    /// The name is not an HTTP token.
    #[error("invalid header name '{}'", .0.escape_debug())]
    Name(String),
    /// The value holds bytes a header cannot carry (a control character, a line break).
    #[error("invalid value for header '{0}'")]
    Value(String),
}

/// The header map of rendered `headers` (name, value), every value marked sensitive. Names
/// are unique (config validation and discovery make them so); a repeated name keeps its last
/// value.
pub fn header_map(headers: Vec<(String, String)>) -> Result<HeaderMap, InvalidHeader> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(InvalidHeader::Name(name));
        };
        let Ok(mut header_value) = HeaderValue::try_from(value) else {
            return Err(InvalidHeader::Value(name));
        };
        header_value.set_sensitive(true);
        map.insert(header_name, header_value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_sensitive_and_errors_name_the_header_only() {
        let map = header_map(vec![
            ("Authorization".into(), "Bearer s3cret".into()),
            ("X-Other".into(), "plain".into()),
        ])
        .unwrap();
        assert!(map["authorization"].is_sensitive());
        assert!(map["x-other"].is_sensitive());
        assert!(!format!("{map:?}").contains("s3cret"));

        let err = header_map(vec![("X-Key".into(), "bad\nvalue s3cret".into())]).unwrap_err();
        assert_eq!(err, InvalidHeader::Value("X-Key".into()));
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = header_map(vec![("bad name".into(), "v".into())]).unwrap_err();
        assert_eq!(err.to_string(), "invalid header name 'bad name'");
    }
}
