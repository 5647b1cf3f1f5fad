//! A tooling-registry emulator: the Agent 365 discovery endpoints (v1 and v2 shapes) and a
//! plain `mcpServers` document, with knobs for the failures discovery must survive.
//!
//! Routes, on `http://127.0.0.1:PORT`:
//!
//! - `GET /agents/{agent_id}/mcpServers` — v1: `{"mcpServers":[{"mcpServerName",
//!   "mcpServerUniqueName"}]}` (entries carry only the fields that are set).
//! - `GET /agents/v2/{agent_id}/mcpServers` — v2: the same wrapper (or a bare array, see
//!   [`RegistryKnobs::v2_bare_array`]) with `url`, `headers`, `audience`, `scope`, `publisher`.
//! - `GET /mcpServers.json` — `{"mcpServers":{NAME:{"url", "headers"}}}` built from the
//!   entries that have a URL (keyed by name, else unique name, else `server-N`), or
//!   [`RegistryKnobs::document`] verbatim.
//!
//! Knobs apply to every route, in this order: `delay`, then the bearer check (401 with an
//! optional `WWW-Authenticate`), then `force_status`, then `malformed`. Every request's
//! path and headers are recorded (see [`RegistryEmulator::requests`]).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::ServerTask;

/// One server the registry lists. `None` fields are left out of the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryEntry {
    pub name: Option<String>,
    pub unique_name: Option<String>,
    pub url: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub publisher: Option<String>,
}

impl RegistryEntry {
    /// A named entry with a unique name and no URL (the v1 shape).
    pub fn v1(name: &str, unique_name: &str) -> Self {
        RegistryEntry {
            name: Some(name.into()),
            unique_name: Some(unique_name.into()),
            ..Default::default()
        }
    }

    /// A named entry with a URL.
    pub fn with_url(name: &str, url: &str) -> Self {
        RegistryEntry {
            name: Some(name.into()),
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// Adds a header the registry hands out for this server.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    fn v1_json(&self) -> Value {
        let mut obj = Map::new();
        put(&mut obj, "mcpServerName", &self.name);
        put(&mut obj, "mcpServerUniqueName", &self.unique_name);
        Value::Object(obj)
    }

    fn v2_json(&self) -> Value {
        let mut obj = Map::new();
        put(&mut obj, "mcpServerName", &self.name);
        put(&mut obj, "mcpServerUniqueName", &self.unique_name);
        put(&mut obj, "url", &self.url);
        if !self.headers.is_empty() {
            obj.insert("headers".into(), json!(self.headers));
        }
        put(&mut obj, "audience", &self.audience);
        put(&mut obj, "scope", &self.scope);
        put(&mut obj, "publisher", &self.publisher);
        Value::Object(obj)
    }
}

fn put(obj: &mut Map<String, Value>, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        obj.insert(key.into(), Value::String(v.clone()));
    }
}

/// How the registry behaves; change it at any time with [`RegistryEmulator::configure`].
#[derive(Clone, Debug, Default)]
pub struct RegistryKnobs {
    /// Answer 401 unless `Authorization: Bearer <token>`.
    pub require_token: Option<String>,
    /// `WWW-Authenticate` sent with that 401 (and with a forced 401/403).
    pub challenge: Option<String>,
    /// Answer this status (with a short text body) instead of the list.
    pub force_status: Option<u16>,
    /// Answer 200 with a body that is not JSON.
    pub malformed: bool,
    /// Wait this long before answering.
    pub delay: Duration,
    /// v2 answers a bare array instead of `{"mcpServers": [...]}`.
    pub v2_bare_array: bool,
    /// `/mcpServers.json` serves this instead of a document built from the entries.
    pub document: Option<Value>,
}

/// One request the registry received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The path, e.g. `/agents/v2/agent-1/mcpServers`.
    pub path: String,
    /// Header names lower-cased; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Default)]
struct RegistryState {
    entries: Vec<RegistryEntry>,
    knobs: RegistryKnobs,
    requests: Vec<RecordedRequest>,
}

type Shared = Arc<Mutex<RegistryState>>;

fn lock(state: &Shared) -> MutexGuard<'_, RegistryState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running registry on 127.0.0.1. Dropping it stops the server.
pub struct RegistryEmulator {
    pub addr: SocketAddr,
    state: Shared,
    task: ServerTask,
}

impl RegistryEmulator {
    /// Starts an empty registry on a free port.
    pub async fn start() -> std::io::Result<RegistryEmulator> {
        Self::start_on(0).await
    }

    /// Starts an empty registry on `127.0.0.1:port` (0 picks a free one).
    pub async fn start_on(port: u16) -> std::io::Result<RegistryEmulator> {
        let state = Shared::default();
        let router = Router::new()
            .route("/agents/v2/{agent_id}/mcpServers", get(v2))
            .route("/agents/{agent_id}/mcpServers", get(v1))
            .route("/mcpServers.json", get(document))
            .with_state(state.clone());
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let task = ServerTask::spawn(
            listener,
            router,
            CancellationToken::new(),
            "registry emulator",
        );
        Ok(RegistryEmulator { addr, state, task })
    }

    /// The base URL, to use as the A365 `endpoint`: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/mcpServers.json`.
    pub fn document_url(&self) -> String {
        format!("{}/mcpServers.json", self.endpoint())
    }

    /// Replaces the listed servers.
    pub fn set_servers(&self, entries: Vec<RegistryEntry>) {
        lock(&self.state).entries = entries;
    }

    /// Changes the behaviour, e.g. `registry.configure(|k| k.force_status = Some(500))`.
    pub fn configure(&self, change: impl FnOnce(&mut RegistryKnobs)) {
        change(&mut lock(&self.state).knobs);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// The latest request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.state).requests.last().cloned()
    }

    /// Stops accepting and waits (at most 5 s) for the server task.
    pub async fn shutdown(self) {
        self.task.shutdown().await;
    }
}

impl std::fmt::Debug for RegistryEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEmulator")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
enum Shape {
    V1,
    V2,
    Document,
}

async fn v1(
    State(state): State<Shared>,
    Path(_): Path<String>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    answer(state, Shape::V1, uri, h).await
}

async fn v2(
    State(state): State<Shared>,
    Path(_): Path<String>,
    uri: Uri,
    h: HeaderMap,
) -> Response {
    answer(state, Shape::V2, uri, h).await
}

async fn document(State(state): State<Shared>, uri: Uri, h: HeaderMap) -> Response {
    answer(state, Shape::Document, uri, h).await
}

async fn answer(state: Shared, shape: Shape, uri: Uri, headers: HeaderMap) -> Response {
    let knobs = {
        let mut s = lock(&state);
        s.requests.push(record(&uri, &headers));
        s.knobs.clone()
    };
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    let challenge = |status: StatusCode| {
        let mut response = (status, "unauthorized").into_response();
        if let Some(c) = knobs.challenge.as_deref().and_then(|c| c.parse().ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        response
    };
    if let Some(token) = &knobs.require_token {
        let expected = format!("Bearer {token}");
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return challenge(StatusCode::UNAUTHORIZED);
        }
    }
    if let Some(code) = knobs.force_status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return challenge(status);
        }
        return (status, "registry failure").into_response();
    }
    if knobs.malformed {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"mcpServers\": [ this is not json",
        )
            .into_response();
    }
    let entries = lock(&state).entries.clone();
    let body = match shape {
        Shape::V1 => {
            json!({ "mcpServers": entries.iter().map(RegistryEntry::v1_json).collect::<Vec<_>>() })
        }
        Shape::V2 => {
            let list: Vec<Value> = entries.iter().map(RegistryEntry::v2_json).collect();
            if knobs.v2_bare_array {
                Value::Array(list)
            } else {
                json!({ "mcpServers": list })
            }
        }
        Shape::Document => knobs
            .document
            .clone()
            .unwrap_or_else(|| mcp_servers_document(&entries)),
    };
    axum::Json(body).into_response()
}

fn mcp_servers_document(entries: &[RegistryEntry]) -> Value {
    let mut servers = Map::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(url) = &entry.url else { continue };
        let key = entry
            .name
            .clone()
            .or_else(|| entry.unique_name.clone())
            .unwrap_or_else(|| format!("server-{i}"));
        let mut server = json!({ "url": url });
        if !entry.headers.is_empty() {
            server["headers"] = json!(entry.headers);
        }
        servers.insert(key, server);
    }
    json!({ "mcpServers": servers })
}

fn record(uri: &Uri, headers: &HeaderMap) -> RecordedRequest {
    let mut recorded: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        recorded
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    RecordedRequest {
        path: uri.path().to_string(),
        headers: recorded,
    }
}
