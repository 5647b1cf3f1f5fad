//! Inbound security: one middleware in front of every route ([`Inbound::around`]), in this
//! order, so a refused request costs no body read and reaches no handler:
//!
//! 1. `Host` and `Origin` allow-lists (`hosts.rs`; DNS rebinding, browsers): 403;
//! 2. the credential, when `[gateway.auth]` is set (`credentials.rs`: API keys, JWTs):
//!    401 with `WWW-Authenticate` pointing at the protected resource metadata, 403
//!    `insufficient_scope`; the caller's [`Identity`] goes into the request's extensions,
//!    where the handlers take its claim variables from (`identity.rs`);
//! 3. the body, read up to `max_body` (413 beyond);
//! 4. the MCP session's owner (`limits.rs`): with auth, a session serves only the caller
//!    that initialized it (403);
//! 5. calls in flight per session (`limits.rs`): a JSON-RPC request (or REST call) over
//!    `max_concurrent_calls_per_session` gets 429 with `Retry-After`; the slot is held until
//!    the response body has been sent (a legacy SSE POST's slot goes to `sse.rs` in the
//!    request's extensions, [`StreamedCallSlot`], held until the answer is on the stream).
//!
//! CORS (`hosts.rs`) wraps it all when `allowed_origins` lists browser origins: it answers
//! their preflight requests and adds the `Access-Control-*` headers to the rest.
//!
//! The probes `/healthz` and `/readyz` pass untouched: kubelet and load balancers send
//! whatever `Host` they like and cannot send a credential from a Secret, and the answers say
//! nothing but "ok" / ready or shutting down, and with `[scale]` whether the shared store
//! answers (`/v1/health`, which names servers, is checked). The protected resource metadata (`/.well-known/oauth-protected-resource[/mcp]`) passes 1 but
//! needs no credential (RFC 9728). Responses: `refusals.rs`.
//!
//! The inbound `Authorization` header is checked here and never forwarded: upstream
//! requests are built from each server's own config (`identity.rs`, the engine's
//! templates), so no gateway credential reaches a server.

mod credentials;
mod hosts;
mod jwks;
mod jwt;
mod limits;
mod refusals;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use serde_json::Value;
use switchboard::config::{
    GatewayConfig, HostPattern, InboundAuthConfig, OriginPattern, UNAUTHENTICATED_FIX,
};

pub use credentials::Identity;

use crate::GatewayError;
use credentials::Authenticator;
use hosts::HostCheck;
use limits::{CallLimits, SessionOwners};
pub(crate) use limits::{CallSlot, StreamedCallSlot};

/// The session header of MCP's Streamable HTTP transport.
const MCP_SESSION_ID: &str = "mcp-session-id";

/// The security part of [`crate::GatewaySettings`] (from `[gateway]`, see
/// [`GatewayConfig`]).
#[derive(Debug, Clone)]
pub struct InboundSettings {
    /// `None`: loopback names when listening on loopback, any host otherwise.
    pub allowed_hosts: Option<Vec<HostPattern>>,
    pub allowed_origins: Vec<OriginPattern>,
    pub max_body: usize,
    pub max_concurrent_calls_per_session: usize,
    pub allow_unauthenticated: bool,
    pub auth: Option<InboundAuthConfig>,
}

impl From<&GatewayConfig> for InboundSettings {
    fn from(config: &GatewayConfig) -> Self {
        InboundSettings {
            allowed_hosts: config.allowed_hosts.clone(),
            allowed_origins: config.allowed_origins.clone(),
            max_body: config.max_body,
            max_concurrent_calls_per_session: config.max_concurrent_calls_per_session,
            allow_unauthenticated: config.allow_unauthenticated,
            auth: config.auth.as_deref().cloned(),
        }
    }
}

/// Whether a gateway with `settings` may serve on `local`: beyond loopback only with
/// `[gateway.auth]`, or with `allow_unauthenticated` (something in front authenticates).
/// `switchboard serve` asks before starting the servers; [`crate::Gateway::serve`] again.
pub fn check_exposure(settings: &InboundSettings, local: SocketAddr) -> Result<(), GatewayError> {
    if local.ip().is_loopback() || settings.auth.is_some() || settings.allow_unauthenticated {
        return Ok(());
    }
    Err(GatewayError::Unauthenticated {
        addr: local,
        fix: UNAUTHENTICATED_FIX,
    })
}

/// The checks, ready to run (one per gateway).
pub struct Inbound {
    settings: InboundSettings,
    auth: Option<Authenticator>,
    calls: Arc<CallLimits>,
    owners: SessionOwners,
}

impl Inbound {
    /// `session_idle`: how long a downstream session lives without requests.
    pub fn new(settings: InboundSettings, session_idle: Duration) -> Inbound {
        Inbound {
            auth: settings.auth.as_ref().map(Authenticator::new),
            calls: CallLimits::new(settings.max_concurrent_calls_per_session),
            owners: SessionOwners::new(session_idle),
            settings,
        }
    }

    /// Before serving on `local`: refuses to serve beyond loopback without authentication
    /// (unless allowed), says what protects the gateway, and loads the JWKS (a file that
    /// cannot be read fails the start; a URL that does not answer is tried again on use).
    pub async fn prepare(&self, local: SocketAddr) -> Result<(), GatewayError> {
        check_exposure(&self.settings, local)?;
        let Some(auth) = &self.auth else {
            if local.ip().is_loopback() {
                tracing::info!("no [gateway.auth]: serving unauthenticated on loopback only");
                return Ok(());
            }
            tracing::warn!(
                "serving WITHOUT AUTHENTICATION on {local} (allow_unauthenticated = true): \
                 whoever reaches it uses every configured server with its credentials"
            );
            return Ok(());
        };
        let from_file = matches!(
            auth.jwt().map(|j| &j.jwks),
            Some(switchboard::config::JwksSource::File(_))
        );
        match auth.load_keys().await {
            Ok(Some(keys)) => tracing::info!(keys, "JWT verification keys loaded"),
            Ok(None) => {}
            Err(error) if from_file => return Err(GatewayError::Keys(error.to_string())),
            Err(error) => tracing::warn!(%error, "will fetch the JWKS again when a token comes"),
        }
        let api_keys = self.settings.auth.as_ref().map_or(0, |a| a.api_keys.len());
        tracing::info!(
            api_keys,
            jwt = auth.jwt().is_some(),
            "inbound authentication required on every endpoint but /healthz and /readyz"
        );
        Ok(())
    }

    /// `router` behind the checks, plus the protected resource metadata (with auth).
    /// `local` is the listening address (the default `Host` allow-list depends on it).
    pub fn around(self: &Arc<Self>, router: Router, local: SocketAddr) -> Router {
        let mut router = router;
        if self.settings.auth.is_some() {
            let metadata = get(serve_metadata).with_state(self.clone());
            router = router
                .route(refusals::METADATA_PATH, metadata.clone())
                .route(refusals::METADATA_ROOT_PATH, metadata);
        }
        let guard = Arc::new(Guard {
            inbound: self.clone(),
            hosts: HostCheck::new(
                self.settings.allowed_hosts.as_deref(),
                &self.settings.allowed_origins,
                local,
            ),
        });
        let router = router
            // The body limit is ours (step 3), for MCP and REST alike.
            .layer(DefaultBodyLimit::disable())
            .layer(middleware::from_fn_with_state(guard, check));
        // Outermost: a browser's preflight carries no credential.
        match hosts::cors(&self.settings.allowed_origins) {
            Some(cors) => router.layer(cors),
            None => router,
        }
    }

    /// The largest body accepted (also given to rmcp, so both agree).
    pub fn max_body(&self) -> usize {
        self.settings.max_body
    }
}

struct Guard {
    inbound: Arc<Inbound>,
    hosts: HostCheck,
}

async fn serve_metadata(State(inbound): State<Arc<Inbound>>, headers: HeaderMap) -> Response {
    let Some(config) = &inbound.settings.auth else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let resource = refusals::resource(config, &headers);
    axum::Json(refusals::metadata(config, resource)).into_response()
}

/// The middleware (see the module docs for the steps).
async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(request).await;
    }
    let inbound = &guard.inbound;
    if let Err(refused) = guard.hosts.check(request.uri(), request.headers()) {
        tracing::debug!(%refused, "refused a request");
        return refusals::refusal(StatusCode::FORBIDDEN, "forbidden", &refused.to_string());
    }
    let public = path.starts_with(refusals::METADATA_ROOT_PATH);
    let identity = match inbound.identify(request.headers(), public).await {
        Ok(identity) => identity,
        Err(refused) => return refused,
    };
    let (mut parts, body) = request.into_parts();
    let (body, bytes) =
        match read_body(&parts.method, &parts.headers, body, inbound.max_body()).await {
            Ok(read) => read,
            Err(refused) => return refused,
        };
    let session = parts
        .headers
        .get(MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let (Some(session), Some(identity)) = (&session, &identity)
        && !inbound.owners.may_use(session, &identity.principal)
    {
        tracing::info!(principal = %identity.principal, "refused a request on another caller's MCP session");
        let message =
            "this MCP session belongs to another caller: initialize a session of your own";
        return refusals::refusal(StatusCode::FORBIDDEN, "forbidden", message);
    }
    let sse_session = sse_session_of(&parts);
    let key = session
        .as_deref()
        .map(|s| format!("session:{s}"))
        .or_else(|| sse_session.map(|s| format!("sse:{s}")));
    let slot = match inbound.enter_call(&parts, bytes.as_ref(), key, identity.as_ref()) {
        Ok(slot) => slot,
        Err(mcp_id) => return refusals::too_many_calls(inbound.calls.max(), mcp_id),
    };
    // A legacy SSE POST is answered at once; its call's answer comes on the stream, so
    // `sse.rs` holds the slot until then.
    let slot = match (slot, sse_session) {
        (Some(slot), Some(_)) => {
            parts.extensions.insert(StreamedCallSlot::new(slot));
            None
        }
        (slot, _) => slot,
    };
    let principal = identity.as_ref().map(|i| i.principal.clone());
    if let Some(identity) = identity {
        parts.extensions.insert(identity);
    }
    let method = parts.method.clone();
    let response = next.run(Request::from_parts(parts, body)).await;
    if let Some(principal) = principal {
        inbound.note_owner(principal, session.as_deref(), &method, &response);
    }
    match slot {
        Some(slot) => crate::drain::hold_until_sent(response, slot),
        None => response,
    }
}

impl Inbound {
    /// Step 2: the caller's identity (`None` without `[gateway.auth]` or on a `public`
    /// path), or the refusal to answer with.
    async fn identify(
        &self,
        headers: &HeaderMap,
        public: bool,
    ) -> Result<Option<Identity>, Response> {
        let (Some(auth), Some(config)) = (&self.auth, &self.settings.auth) else {
            return Ok(None);
        };
        if public {
            return Ok(None);
        }
        match auth.authenticate(headers).await {
            Ok(identity) => Ok(Some(identity)),
            Err(refused) => {
                tracing::debug!(%refused, "refused a request");
                let url = refusals::metadata_url(&refusals::resource(config, headers));
                let scopes = config.jwt.as_ref().map_or(&[][..], |j| &j.required_scopes);
                Err(refusals::challenge(&refused, &url, scopes))
            }
        }
    }

    /// Step 5: a slot for the request when it is a call of a session (`session`: its key;
    /// an MCP or a legacy SSE session) or of an authenticated caller without one, or the id
    /// of the MCP request (`None`: REST) that is one call too many.
    fn enter_call(
        &self,
        parts: &http::request::Parts,
        body: Option<&Bytes>,
        session: Option<String>,
        identity: Option<&Identity>,
    ) -> Result<Option<CallSlot>, Option<Value>> {
        let Some(mcp_id) = call_of(&parts.method, parts.uri.path(), body) else {
            return Ok(None);
        };
        let key = session.or_else(|| identity.map(|i| format!("caller:{}", i.principal)));
        let Some(key) = key else {
            return Ok(None);
        };
        match self.calls.enter(key.into()) {
            Some(slot) => Ok(Some(slot)),
            None => Err(mcp_id),
        }
    }

    /// After step 4's request was answered: a session it opened is `principal`'s, one it
    /// ended (`DELETE`) is forgotten.
    fn note_owner(
        &self,
        principal: Arc<str>,
        session: Option<&str>,
        method: &Method,
        response: &Response,
    ) {
        match (session, response.headers().get(MCP_SESSION_ID)) {
            (None, Some(made)) => {
                if let Ok(made) = made.to_str() {
                    self.owners.bind(made, principal);
                }
            }
            (Some(ended), _) if method == Method::DELETE && response.status().is_success() => {
                self.owners.forget(ended);
            }
            _ => {}
        }
    }
}

/// The request body, read whole (and its bytes) when it is at most `max` bytes (413
/// otherwise). A `GET`, `HEAD` or `DELETE` body is not read (only its declared length
/// checked).
async fn read_body(
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    max: usize,
) -> Result<(Body, Option<Bytes>), Response> {
    let too_large = || {
        let message = format!("the request body is larger than {max} bytes ([gateway] max_body)");
        refusals::refusal(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message)
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    if matches!(*method, Method::GET | Method::DELETE | Method::HEAD) {
        return Ok((body, None));
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            Ok((Body::from(bytes.clone()), Some(bytes)))
        }
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(_) => Err(refusals::refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        )),
    }
}

/// The legacy SSE session a `POST /messages?sessionId=ID` posts to.
fn sse_session_of(parts: &http::request::Parts) -> Option<&str> {
    if parts.method != Method::POST || parts.uri.path() != crate::sse::MESSAGES_PATH {
        return None;
    }
    let query = parts.uri.query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sessionId="))
        .filter(|id| !id.is_empty())
}

/// Whether a request is a call that counts against its session's limit: a JSON-RPC
/// request (not a notification, a response or a `subscriptions/listen` stream) POSTed to
/// `/mcp` — `Some(its id)` — or a REST tool call — `Some(None)`.
fn call_of(method: &Method, path: &str, body: Option<&Bytes>) -> Option<Option<Value>> {
    if *method != Method::POST {
        return None;
    }
    if !path.starts_with("/mcp") && path != crate::sse::MESSAGES_PATH {
        return path.starts_with("/v1/tools/").then_some(None);
    }
    #[derive(Deserialize)]
    struct Probe<'a> {
        id: Option<Value>,
        #[serde(borrow)]
        method: Option<Cow<'a, str>>,
    }
    match serde_json::from_slice::<Probe<'_>>(body?) {
        // A listen stream lives as long as its client wants: not a call.
        Ok(Probe {
            method: Some(method),
            ..
        }) if method == "subscriptions/listen" => None,
        Ok(Probe {
            id: Some(id),
            method: Some(_),
        }) => Some(Some(id)),
        Ok(_) => None,
        // Not one JSON-RPC message (a batch, or not JSON): the MCP server answers it.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests;
