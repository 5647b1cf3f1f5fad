//! What our Streamable HTTP client sends and how it reads the answers: rmcp's
//! `StreamableHttpClient` on top of [`HttpClient`] (`client.rs`).
//!
//! What it does differently from rmcp's reqwest client, and why (BENCHMARKS.md, "Profiles"):
//!
//! - **The response of an SSE-answered POST is read here.** When the first message event on
//!   the POST's response stream is the response to the request just sent (the usual case),
//!   it is returned as `StreamableHttpPostResponse::Json`, so rmcp's worker neither spawns a
//!   stream task, nor sets up stream resumption, nor arms its 50 ms drain timer for it. Any
//!   other stream (a notification or server request first, or a stream that breaks before
//!   the response) is handed to rmcp unchanged as `Sse`, the events already read first, so
//!   resumption (`Last-Event-ID`) and everything else stays rmcp's.
//! - **Typed decoding** of the response to the request sent ([`super::decode`]).
//!
//! Statuses and errors follow rmcp's reqwest client, except that a status rmcp reports as the
//! text `"HTTP {status}: {body}"` is [`ClientError::Status`] here, so it is classified by its
//! code, and a 4xx answer to the `server/discover` probe becomes a JSON-RPC error for it (as
//! in rmcp's clients), so the lifecycle falls back to `initialize`. rmcp's `*_with_max_sse_event_size` variants keep their defaults,
//! which call these methods: we never change rmcp's `max_sse_event_size`, whose default is
//! [`DEFAULT_MAX_SSE_EVENT`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rmcp::model::{
    ClientJsonRpcMessage, ClientRequest, ErrorData, JsonRpcMessage, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use sse_stream::Sse;

use super::attach::is_initialize;
use super::client::{ClientError, HttpClient, ResponseBody};
use super::decode::{self, Expected};
use super::events::EventReader;
use super::response::{
    auth_error, content_length, content_type_is, failed_status, read_bounded, status_error,
    unexpected_content_type,
};

/// rmcp's default limit for one SSE event.
const DEFAULT_MAX_SSE_EVENT: usize = 16 * 1024 * 1024;
/// Largest JSON response body read (rmcp's limit).
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;
/// Largest error response body read (rmcp's limit).
const MAX_ERROR_BODY: usize = 64 * 1024;

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("text/event-stream, application/json");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: &[u8] = b"text/event-stream";
const JSON_TYPE: &[u8] = b"application/json";

type HttpError = StreamableHttpError<ClientError>;

/// A classic server's refusal of our `server/discover` probe (a 4xx without a session, e.g.
/// "Bad Request: No valid session ID provided") as a JSON-RPC error answering it, so the
/// lifecycle falls back to `initialize` (rmcp's own HTTP clients do the same). `None` when
/// `message` is not the probe.
fn discover_rejected(
    message: &ClientJsonRpcMessage,
    status: StatusCode,
    body: &[u8],
) -> Option<ServerJsonRpcMessage> {
    let JsonRpcMessage::Request(request) = message else {
        return None;
    };
    if !matches!(request.request, ClientRequest::DiscoverRequest(_)) {
        return None;
    }
    let error = match serde_json::from_slice::<ServerJsonRpcMessage>(body) {
        Ok(JsonRpcMessage::Error(error)) => error.error,
        _ => {
            ErrorData::invalid_request(format!("server/discover rejected with HTTP {status}"), None)
        }
    };
    Some(ServerJsonRpcMessage::error(error, Some(request.id.clone())))
}

fn base_headers(
    capacity: usize,
    auth_token: Option<String>,
    custom_headers: HashMap<HeaderName, HeaderValue>,
) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::with_capacity(capacity + custom_headers.len());
    for (name, value) in custom_headers {
        // rmcp's rule: these are the transport's; MCP-Protocol-Version is set by rmcp itself.
        if name == ACCEPT || name == SESSION_ID || name == LAST_EVENT_ID {
            return Err(StreamableHttpError::ReservedHeaderConflict(
                name.to_string(),
            ));
        }
        headers.append(name, value);
    }
    headers.insert(ACCEPT, ACCEPT_BOTH);
    if let Some(token) = auth_token {
        let mut value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| StreamableHttpError::Client(ClientError::InvalidHeader))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

fn header_value(value: &str) -> Result<HeaderValue, HttpError> {
    HeaderValue::try_from(value)
        .map_err(|_| StreamableHttpError::Client(ClientError::InvalidHeader))
}

fn session_id_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn expects_no_reply(message: &ClientJsonRpcMessage) -> bool {
    !matches!(message, ClientJsonRpcMessage::Request(_))
}

impl HttpClient {
    /// Reads a POST's SSE response: the response to `expected` if it is the first message
    /// on the stream, else the stream as rmcp takes it.
    async fn read_response_stream(
        &self,
        body: ResponseBody,
        expected: Option<Expected>,
        session_id: Option<String>,
        max_event: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let mut reader = EventReader::new(body, max_event);
        let mut seen: Vec<Result<Sse, SseError>> = Vec::new();
        if let Some(expected) = expected {
            loop {
                match reader.next().await {
                    Some(Ok(event)) if event.is_blank() => match event.into_sse() {
                        Ok(sse) => seen.push(Ok(sse)),
                        Err(e) => {
                            seen.push(Err(e));
                            break;
                        }
                    },
                    Some(Ok(event)) => {
                        let data = event.data.as_deref().unwrap_or_default();
                        if let Ok(message) = decode::decode(data, Some(&expected))
                            && decode::answers(&message, &expected)
                        {
                            self.finish(reader);
                            return Ok(StreamableHttpPostResponse::Json(message, session_id));
                        }
                        seen.push(event.into_sse());
                        break;
                    }
                    Some(Err(e)) => {
                        seen.push(Err(e.into_sse_error()));
                        break;
                    }
                    None => break,
                }
            }
        }
        let stream = futures::stream::iter(seen).chain(reader.into_sse_stream());
        Ok(StreamableHttpPostResponse::Sse(stream.boxed(), session_id))
    }
}

impl HttpClient {
    /// Sends `message` as it is (no attaching; see `attach.rs`).
    pub(crate) async fn post_plain(
        &self,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let expected = Expected::of(&message);
        let session = self.sessions.as_ref().and_then(|s| s.take(&mut message));
        let mut body = Vec::with_capacity(512);
        serde_json::to_writer(&mut body, &message)?;
        // A session's request carries the session's headers instead of the connection's
        // (none of the connection's: a header the session's variables leave empty must not
        // go out with the connection's value).
        let mut custom_headers = custom_headers;
        if let (Some(_), Some(sessions)) = (&session, &self.sessions) {
            custom_headers.retain(|name, _| !sessions.is_configured(name.as_str()));
        }
        let mut headers = base_headers(3, auth_token, custom_headers)?;
        for (name, value) in session.iter().flat_map(|h| h.iter()) {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(CONTENT_TYPE, JSON);
        let session_was_attached = session_id.is_some();
        if let Some(session_id) = &session_id {
            headers.insert(SESSION_ID, header_value(session_id)?);
        }
        let response = self
            .send_authorized(Method::POST, &uri, headers, Bytes::from(body))
            .await
            .map_err(StreamableHttpError::Client)?;
        let (parts, body) = response.into_parts();
        let status = parts.status;
        auth_error(status, &parts.headers)?;
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == StatusCode::NOT_FOUND
            && let Some(session_id) = &session_id
        {
            if let Some(attach) = &self.attach {
                attach.gone(session_id);
            }
            return Err(StreamableHttpError::SessionExpired);
        }
        let is_json = content_type_is(&parts.headers, JSON_TYPE);
        // Rate limits and non-JSON failures end here, unread; a JSON failure may carry a
        // JSON-RPC error worth returning instead.
        let server_error = match status_error(status, &parts.headers) {
            Some(error) if !is_json || status == StatusCode::TOO_MANY_REQUESTS => {
                return Err(error.into());
            }
            other => other,
        };
        let length = content_length(&parts.headers);
        let session_id = session_id_of(&parts.headers);
        // Some servers answer a notification with an empty 200 instead of 202.
        if status.is_success() && length == Some(0) && expects_no_reply(&message) {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if !status.is_success() {
            let text = match read_bounded(body, length, MAX_ERROR_BODY).await {
                Ok(bytes) => bytes,
                Err(error @ StreamableHttpError::ResponseBodyTooLarge { .. }) => {
                    return Err(server_error.map(StreamableHttpError::from).unwrap_or(error));
                }
                Err(_) => Vec::new(),
            };
            // A 401/403 without a challenge keeps its status (classified as an auth error).
            let is_auth = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            if !is_auth
                && !session_was_attached
                && status.is_client_error()
                && let Some(rejected) = discover_rejected(&message, status, &text)
            {
                return Ok(StreamableHttpPostResponse::Json(rejected, None));
            }
            if !is_auth
                && is_json
                && let Ok(message @ JsonRpcMessage::Error(_)) =
                    serde_json::from_slice::<ServerJsonRpcMessage>(&text)
            {
                return Ok(StreamableHttpPostResponse::Json(message, session_id));
            }
            if let Some(error) = server_error {
                return Err(error.into());
            }
            return Err(failed_status(status, &parts.headers));
        }
        if content_type_is(&parts.headers, EVENT_STREAM) {
            return self
                .read_response_stream(body, expected, session_id, DEFAULT_MAX_SSE_EVENT)
                .await;
        }
        if is_json {
            let bytes = read_bounded(body, length, MAX_JSON_BODY).await?;
            return match decode::decode(&bytes, expected.as_ref()) {
                Ok(parsed) => Ok(StreamableHttpPostResponse::Json(parsed, session_id)),
                Err(e) if expects_no_reply(&message) => {
                    tracing::warn!(
                        "could not parse a JSON response to a notification, treating it as accepted: {e}"
                    );
                    Ok(StreamableHttpPostResponse::Accepted)
                }
                Err(e) => Err(StreamableHttpError::UnexpectedServerResponse(Cow::Owned(
                    format!("could not parse JSON response as ServerJsonRpcMessage: {e}"),
                ))),
            };
        }
        Err(unexpected_content_type(&parts.headers))
    }
}

impl StreamableHttpClient for HttpClient {
    type Error = ClientError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        // The request's id as the engine knows it (a shared session sends another).
        let request = match &message {
            ClientJsonRpcMessage::Request(request) => Some(request.id.clone()),
            _ => None,
        };
        let answer = if let Some(attach) = &self.attach {
            if session_id.is_none() && is_initialize(&message) {
                attach
                    .initialize(self, uri, message, auth_token, custom_headers)
                    .await
            } else {
                attach
                    .post(self, uri, message, session_id, auth_token, custom_headers)
                    .await
            }
        } else {
            self.post_plain(uri, message, session_id, auth_token, custom_headers)
                .await
        };
        // Log messages on the request's own response stream are the request's (`origin.rs`).
        match (answer, request) {
            (Ok(StreamableHttpPostResponse::Sse(stream, session)), Some(id)) => {
                Ok(StreamableHttpPostResponse::Sse(
                    super::origin::mark_logs(stream, id).boxed(),
                    session,
                ))
            }
            (answer, _) => answer,
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        // Detaching from a shared session: another replica may still use it.
        if let Some(attach) = &self.attach
            && !attach.closes_session().await
        {
            return Ok(());
        }
        let mut headers = base_headers(2, auth_token, custom_headers)?;
        headers.remove(ACCEPT);
        headers.insert(SESSION_ID, header_value(&session_id)?);
        let response = self
            .send_authorized(Method::DELETE, &uri, headers, Bytes::new())
            .await
            .map_err(StreamableHttpError::Client)?;
        let status = response.status();
        if status == StatusCode::METHOD_NOT_ALLOWED {
            tracing::debug!("the server does not support deleting sessions");
            return Ok(());
        }
        if !status.is_success() {
            return Err(failed_status(status, response.headers()));
        }
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        if self.attach.is_some() {
            // A shared session's connections open no GET stream (see `attach.rs`).
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        let mut headers = base_headers(3, auth_token, custom_headers)?;
        if let Some(session_id) = session_id {
            headers.insert(SESSION_ID, header_value(&session_id)?);
        }
        if let Some(last_event_id) = last_event_id {
            headers.insert(LAST_EVENT_ID, header_value(&last_event_id)?);
        }
        let response = self
            .send_authorized(Method::GET, &uri, headers, Bytes::new())
            .await
            .map_err(StreamableHttpError::Client)?;
        let (parts, body) = response.into_parts();
        if parts.status == StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        auth_error(parts.status, &parts.headers)?;
        if let Some(error) = status_error(parts.status, &parts.headers) {
            return Err(error.into());
        }
        if !parts.status.is_success() {
            return Err(failed_status(parts.status, &parts.headers));
        }
        if !content_type_is(&parts.headers, EVENT_STREAM)
            && !content_type_is(&parts.headers, JSON_TYPE)
        {
            return Err(unexpected_content_type(&parts.headers));
        }
        Ok(EventReader::new(body, DEFAULT_MAX_SSE_EVENT)
            .into_sse_stream()
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_refused() {
        for name in ["accept", "mcp-session-id", "last-event-id"] {
            let headers =
                HashMap::from([(HeaderName::from_static(name), HeaderValue::from_static("x"))]);
            assert!(matches!(
                base_headers(0, None, headers),
                Err(StreamableHttpError::ReservedHeaderConflict(_))
            ));
        }
        let allowed = HashMap::from([(
            HeaderName::from_static("mcp-protocol-version"),
            HeaderValue::from_static("2025-06-18"),
        )]);
        assert!(base_headers(0, None, allowed).is_ok());
    }
}
