//! A 2026-07-28 client's tool call, resource read or prompt get: what its upstream asks
//! comes back to it.
//!
//! Such a client cannot be sent requests in mid-call, so an upstream's input-required
//! result (SEP-2322) goes to it as ours ([`Hub::call_step`], `read_resource_step` and
//! `get_prompt_step` hand it back), and its retry, carrying `inputResponses` and our
//! `requestState`, goes to the same upstream with that upstream's own `requestState`
//! ([`CallOptions::resume`]). Our `requestState` wraps the upstream's: what was asked (the
//! exposed tool name, `resources/read URI` or `prompts/get NAME`), the server and the
//! upstream's state, as JSON, with an HMAC-SHA256 tag under a key made when the gateway
//! starts, or with `[scale]` derived from the keyring so any replica opens it
//! ([`RequestStateSeal`]). A client can read it (the upstream's state was the
//! client's to hold anyway) but not change it, so a retry cannot be redirected to another
//! server, tool, resource or prompt, nor carry state the upstream did not give; a state
//! from before a restart (without `[scale]`) is refused, and the client starts again.
//!
//! The call also tells a 2026-07-28 upstream the client's own capabilities (its request's
//! `_meta`), not what the gateway offers every client, so the upstream refuses (-32021,
//! which we pass on: HTTP 400) what this client could not answer.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rmcp::ErrorData;
use rmcp::model::{CallToolRequestParams, ErrorCode, InputRequiredResult, RequestMetaObject};
use serde::{Deserialize, Serialize};
use switchboard::{CallOptions, Error, InputRequired, InputResume, JsonObject};

/// Seals and opens our `requestState` (see the module docs).
pub struct RequestStateSeal {
    /// The key that seals first, then the others that still open.
    keys: Vec<hmac::Key>,
}

/// What our `requestState` carries.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Sealed {
    /// What the client asked: the exposed tool name it called, or `resources/read URI`,
    /// `prompts/get NAME` ([`Asked::key`]).
    tool: String,
    /// The server that asked.
    server: String,
    /// The server's own `requestState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
}

impl RequestStateSeal {
    /// A seal with a fresh random key.
    pub fn new() -> RequestStateSeal {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .expect("the system's random source works");
        RequestStateSeal { keys: vec![key] }
    }

    /// A seal under the given keys (`[scale]`: every replica derives them from the one
    /// keyring, so a retry may reach any replica): the first seals, every one opens.
    pub fn keyed<'a>(keys: impl IntoIterator<Item = &'a [u8; 32]>) -> RequestStateSeal {
        let keys: Vec<hmac::Key> = keys
            .into_iter()
            .map(|key| hmac::Key::new(hmac::HMAC_SHA256, key))
            .collect();
        assert!(!keys.is_empty(), "a keyring has a primary key");
        RequestStateSeal { keys }
    }

    fn seal(&self, sealed: &Sealed) -> String {
        let payload = serde_json::to_vec(sealed).unwrap_or_default();
        let tag = hmac::sign(&self.keys[0], &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// What `state` carries, if we sealed it.
    fn open(&self, state: &str) -> Option<Sealed> {
        let (payload, tag) = state.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let opens = |key: &hmac::Key| hmac::verify(key, &payload, &tag).is_ok();
        if !self.keys.iter().any(opens) {
            return None;
        }
        serde_json::from_slice(&payload).ok()
    }
}

impl Default for RequestStateSeal {
    fn default() -> Self {
        RequestStateSeal::new()
    }
}

/// Whether a request comes from a 2026-07-28 (stateless) client: its `_meta` names a
/// revision without `initialize`.
pub fn is_modern(meta: &RequestMetaObject) -> bool {
    meta.protocol_version()
        .is_some_and(|version| !version.has_initialize())
}

/// A 2026-07-28 client's request that may be handed input-required results: what it asks
/// for, and the retry's parts.
pub struct Asked<'a> {
    /// The exposed tool name, or `resources/read URI`, `prompts/get NAME`.
    pub key: String,
    pub request_state: Option<&'a str>,
    pub input_responses: Option<&'a rmcp::model::InputResponses>,
}

impl<'a> Asked<'a> {
    pub fn tool(request: &'a CallToolRequestParams) -> Asked<'a> {
        Asked {
            key: request.name.to_string(),
            request_state: request.request_state.as_deref(),
            input_responses: request.input_responses.as_ref(),
        }
    }

    pub fn read(request: &'a rmcp::model::ReadResourceRequestParams) -> Asked<'a> {
        Asked {
            key: format!("resources/read {}", request.uri),
            request_state: request.request_state.as_deref(),
            input_responses: request.input_responses.as_ref(),
        }
    }

    pub fn prompt(request: &'a rmcp::model::GetPromptRequestParams) -> Asked<'a> {
        Asked {
            key: format!("prompts/get {}", request.name),
            request_state: request.request_state.as_deref(),
            input_responses: request.input_responses.as_ref(),
        }
    }
}

/// The options of a 2026-07-28 client's `request`: input-required results come back, a
/// retry resumes the request it continues, and the client's capabilities go upstream.
/// Refused (invalid params) when the retry's `requestState` is not one we sealed for this
/// very tool, resource or prompt.
pub fn call_options(
    seal: &RequestStateSeal,
    request: &Asked<'_>,
    meta: &RequestMetaObject,
    options: CallOptions,
) -> Result<CallOptions, ErrorData> {
    let mut options = options.hand_back_input_required();
    if let Some(capabilities) = meta.client_capabilities()
        && let Ok(serde_json::Value::Object(capabilities)) = serde_json::to_value(capabilities)
    {
        options = options.client_capabilities(capabilities);
    }
    let Some(state) = request.request_state else {
        return Ok(options);
    };
    let sealed = seal
        .open(state)
        .filter(|sealed| sealed.tool == request.key)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                "requestState was not issued by this gateway for this request (or the \
                 gateway restarted since): send the request again without it",
                None,
            )
        })?;
    let responses = request
        .input_responses
        .map(|responses| responses.clone().into_iter().collect::<JsonObject>());
    Ok(options.resume(InputResume {
        server: sealed.server,
        responses,
        state: sealed.state,
    }))
}

/// Our input-required result for the client's request `key` ([`Asked::key`]): the
/// upstream's requests as they were, and the upstream's state sealed into ours.
pub fn input_required(
    seal: &RequestStateSeal,
    key: &str,
    asked: InputRequired,
) -> Result<InputRequiredResult, ErrorData> {
    let requests = serde_json::from_value(asked.requests.into()).map_err(|e| {
        ErrorData::internal_error(format!("the server's input requests: {e}"), None)
    })?;
    let sealed = Sealed {
        tool: key.to_owned(),
        server: asked.server,
        state: asked.state,
    };
    Ok(InputRequiredResult::new(
        Some(requests),
        Some(seal.seal(&sealed)),
    ))
}

/// An upstream's refusal for want of a client capability (-32021), passed on as it came
/// (rmcp answers it with HTTP 400), else `None`.
pub fn missing_capability(error: &Error) -> Option<ErrorData> {
    let code = ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY;
    match error {
        Error::Tool {
            message,
            code: Some(refused),
            data,
            ..
        } if *refused == code.0 => Some(ErrorData::new(code, message.clone(), data.clone())),
        Error::Rejected {
            message,
            code: refused,
            ..
        } if *refused == code.0 => Some(ErrorData::new(code, message.clone(), None)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Sealed {
        Sealed {
            tool: "ask".into(),
            server: "kit".into(),
            state: Some("asked".into()),
        }
    }

    #[test]
    fn a_sealed_state_opens_to_what_was_sealed() {
        let seal = RequestStateSeal::new();
        assert_eq!(seal.open(&seal.seal(&sealed())), Some(sealed()));
    }

    #[test]
    fn replicas_with_one_keyring_open_each_other_s_states() {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        let state = RequestStateSeal::keyed([&k1]).seal(&sealed());
        assert_eq!(RequestStateSeal::keyed([&k1]).open(&state), Some(sealed()));
        // After rotation (k2 primary, k1 kept): still opens; a ring without k1 does not.
        assert_eq!(
            RequestStateSeal::keyed([&k2, &k1]).open(&state),
            Some(sealed())
        );
        assert_eq!(RequestStateSeal::keyed([&k2]).open(&state), None);
        assert_eq!(RequestStateSeal::new().open(&state), None);
    }

    #[test]
    fn a_changed_state_or_another_gateway_s_does_not_open() {
        let seal = RequestStateSeal::new();
        let state = seal.seal(&sealed());
        let (_, tag) = state.split_once('.').unwrap();
        let mut other = sealed();
        other.server = "elsewhere".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(seal.open(&format!("{payload}.{tag}")), None);
        assert_eq!(RequestStateSeal::new().open(&state), None);
        assert_eq!(seal.open("asked"), None);
    }

    #[test]
    fn a_missing_capability_refusal_passes_on_with_its_data() {
        let required = serde_json::json!({"requiredCapabilities": {"sampling": {}}});
        let refused = Error::Tool {
            server: "kit".into(),
            tool: "t".into(),
            message: "needs sampling".into(),
            code: Some(-32021),
            data: Some(required.clone()),
        };
        let passed = missing_capability(&refused).expect("passed on");
        assert_eq!(passed.code, ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY);
        assert_eq!(passed.data, Some(required));
        let other = Error::Tool {
            server: "kit".into(),
            tool: "t".into(),
            message: "no".into(),
            code: Some(-32602),
            data: None,
        };
        assert!(missing_capability(&other).is_none());
    }
}
