//! Who a request is for: the session variables its headers and its verified claims carry.
//!
//! `[gateway] session_headers` maps inbound request headers to session variables
//! (`"X-Upstream-Token" = "user_token"`), and `[gateway.auth] claims` maps the claims of the
//! caller's verified credential ([`Identity`], put in the request's extensions by
//! `inbound/`) to more (`sub = "user"`). They are the variables of the engine [`Session`]
//! a request's calls run in, and `per_session` servers' header and env templates use them
//! (`Authorization = "Bearer ${user_token}"`, `X-User = "${user}"`), so a user's
//! credential reaches only that user's upstream connections.
//!
//! - A 2025-11-25 downstream session takes its variables from its `initialize` request and
//!   keeps them for its length; its engine session is its own (a fresh id) and ends with it.
//! - A request without a downstream session (a 2026-07-28 MCP request, a REST call) runs in
//!   the engine session named by a hash of its variables: requests with the same credentials
//!   share upstream connections, which the engine's idle reaper closes. A request that
//!   carries none of the configured headers runs without a session (shared connections).
//!
//! With `[scale]`, a downstream session's engine session is `mcp-<hex of its sealed sid>`
//! (`scale/`), the same on every replica, and `vars-` ids are HMACs under the keyring.
//!
//! Header values are never logged and never part of an id anyone sees in clear.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Extensions, HeaderMap};
use sha2::{Digest, Sha256};
use switchboard::Session;

use crate::inbound::Identity;
use crate::scale::Scale;

/// The configured header → variable mapping (header names lowercase).
#[derive(Debug, Clone, Default)]
pub struct SessionHeaders {
    map: Arc<BTreeMap<String, String>>,
    /// With `[scale]`: `vars-` ids are keyed hashes (they become Redis key names).
    scale: Option<Arc<Scale>>,
}

impl SessionHeaders {
    /// From `[gateway] session_headers` (header name → variable name).
    pub fn new(map: BTreeMap<String, String>) -> SessionHeaders {
        let map = map
            .into_iter()
            .map(|(header, variable)| (header.to_ascii_lowercase(), variable))
            .collect();
        SessionHeaders {
            map: Arc::new(map),
            scale: None,
        }
    }

    /// Names sessions without a downstream session by an HMAC under `scale`'s keys.
    pub fn keyed(mut self, scale: Arc<Scale>) -> SessionHeaders {
        self.scale = Some(scale);
        self
    }

    /// The session variables a request carries: its configured headers (headers that are
    /// not valid UTF-8 are left out, as are configured headers the request does not send)
    /// and its caller's claim variables (`extensions`' [`Identity`]; config validation
    /// keeps the two sets of names apart).
    pub fn variables(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        for (header, variable) in self.map.iter() {
            if let Some(value) = headers.get(header).and_then(|v| v.to_str().ok()) {
                variables.insert(variable.clone(), value.to_owned());
            }
        }
        if let Some(identity) = extensions.get::<Identity>() {
            variables.extend(identity.variables.clone());
        }
        variables
    }

    /// A new downstream session's own engine session (2025-11-25 sessions), from its
    /// `initialize` request's headers and extensions.
    pub fn own_session(&self, request: Option<(&HeaderMap, &Extensions)>) -> Session {
        let variables = request
            .map(|(headers, extensions)| self.variables(headers, extensions))
            .unwrap_or_default();
        Session::new(format!("mcp-{}", uuid::Uuid::new_v4()), variables)
    }

    /// The engine session of a request without a downstream session: one per set of
    /// variables (see the module docs); `None` when it carries none.
    pub fn shared_session(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<Session> {
        let variables = self.variables(headers, extensions);
        if variables.is_empty() {
            return None;
        }
        let id = match &self.scale {
            Some(scale) => scale.variables_id(&variables),
            None => variables_id(&variables),
        };
        Some(Session::new(id, variables))
    }
}

/// `vars-` + the first 128 bits of the SHA-256 of the variables (length-prefixed, so no two
/// different maps hash the same input).
fn variables_id(variables: &BTreeMap<String, String>) -> String {
    let mut hash = Sha256::new();
    for (name, value) in variables {
        for part in [name, value] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("vars-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn mapping() -> SessionHeaders {
        SessionHeaders::new(BTreeMap::from([
            ("X-Upstream-Token".to_string(), "token".to_string()),
            ("x-user".to_string(), "user".to_string()),
        ]))
    }

    #[test]
    fn only_configured_headers_become_variables() {
        let none = Extensions::new();
        let vars = mapping().variables(
            &headers(&[
                ("x-upstream-token", "t1"),
                ("authorization", "Bearer gateway"),
            ]),
            &none,
        );
        assert_eq!(vars, BTreeMap::from([("token".into(), "t1".into())]));
        // A verified caller's claim variables join them.
        let mut verified = Extensions::new();
        verified.insert(Identity {
            principal: "jwt:alice".into(),
            variables: BTreeMap::from([("user".into(), "alice".into())]),
        });
        let vars = mapping().variables(&headers(&[("x-upstream-token", "t1")]), &verified);
        assert_eq!(vars.get("user").map(String::as_str), Some("alice"));
        assert_eq!(vars.len(), 2);
    }

    #[test]
    fn shared_sessions_are_one_per_credential_set() {
        let sessions = mapping();
        let none = Extensions::new();
        let a = sessions.shared_session(&headers(&[("x-upstream-token", "t1")]), &none);
        let again = sessions.shared_session(&headers(&[("x-upstream-token", "t1")]), &none);
        let b = sessions.shared_session(&headers(&[("x-upstream-token", "t2")]), &none);
        let (a, again, b) = (a.unwrap(), again.unwrap(), b.unwrap());
        assert_eq!(a.id, again.id);
        assert_ne!(a.id, b.id);
        assert!(!a.id.contains("t1"));
        assert!(sessions.shared_session(&headers(&[]), &none).is_none());
    }

    #[test]
    fn own_sessions_are_new_each_time() {
        let sessions = mapping();
        let h = headers(&[("x-user", "u")]);
        let none = Extensions::new();
        let (a, b) = (
            sessions.own_session(Some((&h, &none))),
            sessions.own_session(Some((&h, &none))),
        );
        assert_ne!(a.id, b.id);
        assert_eq!(a.variables.get("user").map(String::as_str), Some("u"));
    }
}
