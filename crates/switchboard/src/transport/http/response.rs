//! Reading a Streamable HTTP response: failed statuses as typed errors (rmcp's for auth and
//! 429/5xx with `Retry-After`, ours for the rest), its content type and length, and whole
//! bodies read within a size limit.

use std::borrow::Cow;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, HttpStatusError, InsufficientScopeError, StreamableHttpError,
};

use super::client::{ClientError, ResponseBody};

type HttpError = StreamableHttpError<ClientError>;

/// The longest `Retry-After` value kept (rmcp's bound).
const MAX_RETRY_AFTER: usize = 128;

/// rmcp's typed errors for a 401 or 403 that carries a challenge.
pub(super) fn auth_error(status: StatusCode, headers: &HeaderMap) -> Result<(), HttpError> {
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN {
        return Ok(());
    }
    let Some(header) = headers.get(WWW_AUTHENTICATE) else {
        return Ok(());
    };
    let challenge = header
        .to_str()
        .map_err(|_| {
            StreamableHttpError::UnexpectedServerResponse(Cow::from(
                "invalid www-authenticate header value",
            ))
        })?
        .to_owned();
    if status == StatusCode::UNAUTHORIZED {
        Err(StreamableHttpError::AuthRequired(AuthRequiredError::new(
            challenge,
        )))
    } else {
        let scope = scope_of(&challenge);
        Err(StreamableHttpError::InsufficientScope(
            InsufficientScopeError::new(challenge, scope),
        ))
    }
}

/// The `scope` parameter of a challenge, quoted or not.
pub(super) fn scope_of(challenge: &str) -> Option<String> {
    crate::error::challenge_param(challenge, "scope").filter(|scope| !scope.is_empty())
}

/// 429 and 5xx, with a bounded `Retry-After` (rmcp's `HttpStatusError`).
pub(super) fn status_error(status: StatusCode, headers: &HeaderMap) -> Option<HttpStatusError> {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    let retry_after = headers
        .get(RETRY_AFTER)
        .filter(|v| v.len() <= MAX_RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Some(HttpStatusError::new(status.as_u16(), retry_after))
}

/// Any other failed status, as a typed error.
pub(super) fn failed_status(status: StatusCode, headers: &HeaderMap) -> HttpError {
    let challenge = headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    StreamableHttpError::Client(ClientError::Status {
        status: status.as_u16(),
        challenge,
    })
}

pub(super) fn content_type_is(headers: &HeaderMap, mime: &[u8]) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(mime))
}

/// A response of a content type the request cannot take, named in the error.
pub(super) fn unexpected_content_type(headers: &HeaderMap) -> HttpError {
    let content_type = headers
        .get(CONTENT_TYPE)
        .map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned());
    StreamableHttpError::UnexpectedContentType(content_type)
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads a whole body, failing once it passes `max` bytes.
pub(super) async fn read_bounded(
    mut body: ResponseBody,
    length: Option<u64>,
    max: usize,
) -> Result<Vec<u8>, HttpError> {
    if length.is_some_and(|length| length > max as u64) {
        return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(StreamableHttpError::Client)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > max - bytes.len() {
                return Err(StreamableHttpError::ResponseBodyTooLarge { max_size: max });
            }
            if bytes.is_empty() {
                bytes = Vec::from(data);
            } else {
                bytes.extend_from_slice(&data);
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_is_read_quoted_or_not() {
        assert_eq!(
            scope_of(r#"Bearer error="insufficient_scope", scope="a b""#).as_deref(),
            Some("a b")
        );
        assert_eq!(
            scope_of("Bearer Scope=read:x, realm=y").as_deref(),
            Some("read:x")
        );
        assert_eq!(scope_of("Bearer realm=y"), None);
    }
}
