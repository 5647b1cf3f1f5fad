//! Attaching to a classic upstream session another replica opened (issue 17, design a.7).
//!
//! rmcp's worker always opens with `initialize` and no session id, sends
//! `notifications/initialized`, opens a GET stream and DELETEs the session when it closes.
//! Every one of those goes through our client, so an [`Attach`] on the client turns them
//! into attaching, with no fork of rmcp:
//!
//! - **Attach.** `initialize` without a session id is answered from the
//!   [`SharedSessions`] record under (downstream session, server) when there is one for this
//!   URL: its stored `initialize` answer, with this request's id, and its session id. No
//!   network; the `initialized` notification that follows is swallowed (the upstream had
//!   one when the session was opened).
//! - **Capture.** Otherwise `initialize` goes out for real, under a claim (the record is
//!   read once more under it: another replica may have published and let go of its claim
//!   since the first read), and the answer and the new `Mcp-Session-Id` are published
//!   (compare-and-set on the generation) once the `initialized` notification has been
//!   accepted: a replica attaching earlier could send a request the upstream reads before
//!   its handshake is done.
//! - **Expired.** A 404 on an attached id marks that id gone; rmcp then re-initializes once
//!   (`reinit_on_expired_session`), and that `initialize` re-reads the record: a newer id
//!   (another replica re-initialized first) is attached to, else this replica claims, opens
//!   the new session and publishes it. A replica that finds the claim taken re-reads every
//!   50 ms for up to [`Attach::wait_within`], then opens a session of its own unpublished.
//! - **Request ids of its own** (`ids.rs`): replicas number their requests alike, and a
//!   server routes answers by id within a session.
//! - **No GET stream**: two replicas holding a GET on one session get 409 from TS-SDK
//!   servers; a per-session link needs none (a call's server requests come on its POST).
//! - **Detach or end.** Closing only detaches (no `DELETE`: another replica may still use
//!   the session) unless [`Attach::end_on_close`] was set: then the replica that first
//!   takes the ending claim of its upstream session id sends the one `DELETE` and forgets
//!   the record. A
//!   session this connection opened but could not share (store down, another replica
//!   published first) is DELETEd on any close: nobody else knows it.
//!
//! A store that fails is logged and worked around: the session is opened locally and not
//! published (a second upstream session at worst, never another session's).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};
use rmcp::transport::streamable_http_client::{StreamableHttpError, StreamableHttpPostResponse};
use tokio::time::Instant;

use super::client::{ClientError, HttpClient};
use super::ids::IdSpace;
use super::shared::{SharedSessions, UpstreamKey, UpstreamRecord};
use crate::sync::lock;

type HttpError = StreamableHttpError<ClientError>;

/// How often a replica waiting for another's re-initialize re-reads the record.
const REREAD_EVERY: Duration = Duration::from_millis(50);

/// How long the claim of the replica that ends a shared session is kept: longer than the
/// other replicas take to hear that the session ended.
const ENDING_CLAIM: Duration = Duration::from_secs(60);

/// One connection's attachment to a shared classic upstream session; see the module docs.
pub struct Attach {
    store: Arc<dyn SharedSessions>,
    key: UpstreamKey,
    url: String,
    /// How long a replica waits for another's claim before opening a session of its own.
    wait_within: Duration,
    state: Mutex<State>,
    /// Close with a `DELETE` (the downstream session ended) instead of detaching.
    end_on_close: AtomicBool,
    /// This connection's request ids, unique among the session's replicas (`ids.rs`).
    ids: IdSpace,
}

#[derive(Default)]
struct State {
    /// An upstream session id this connection saw answered with 404: never attached to.
    gone: Option<String>,
    /// What the next `notifications/initialized` does.
    next_initialized: Initialized,
    /// The shared upstream session this connection is on (attached to, or published);
    /// `None`: one of its own.
    shared: Option<String>,
}

/// What becomes of the next `notifications/initialized`.
#[derive(Default)]
enum Initialized {
    /// It goes out as it is.
    #[default]
    Send,
    /// It is swallowed (the session was attached to: the upstream had one).
    Swallow,
    /// It goes out, and once accepted the new session is published and the claim released.
    Publish(Pending),
}

/// A session this connection opened, waiting for its handshake to end to be published.
struct Pending {
    record: UpstreamRecord,
    /// The generation the record replaces (`None`: no record).
    expected: Option<u64>,
    /// The claim held meanwhile, if one was taken.
    claim: Option<String>,
}

/// What the store said when a new `initialize` was sent.
enum Found {
    /// A record to attach to.
    Attach(UpstreamRecord),
    /// None usable; the generation of the one there (a stale one), if any.
    Open(Option<u64>),
}

impl Attach {
    pub fn new(
        store: Arc<dyn SharedSessions>,
        key: UpstreamKey,
        url: impl Into<String>,
        wait_within: Duration,
    ) -> Attach {
        Attach {
            store,
            key,
            url: url.into(),
            wait_within,
            state: Mutex::new(State::default()),
            end_on_close: AtomicBool::new(false),
            ids: IdSpace::new(),
        }
    }

    /// Closing this connection ends the upstream session (`DELETE`, record forgotten)
    /// instead of detaching from it.
    pub fn end_on_close(&self) {
        self.end_on_close.store(true, Ordering::Release);
    }

    /// Whether closing this connection DELETEs its upstream session: when the session
    /// ends (its record is then forgotten, if it is this session's), or when the session
    /// was never shared (no other replica knows it); not when only detaching from a
    /// shared one. A shared session ends on every replica that holds it (the one its
    /// client's `DELETE` reached, and the others told so): the first to take the claim for
    /// its upstream session id sends the one `DELETE` (a store that fails: this one sends
    /// it too). The claim names the id (hashed): replicas on different ids (one
    /// re-initialized, another not yet told) each end their own.
    pub(crate) async fn closes_session(&self) -> bool {
        let shared = lock(&self.state).shared.clone();
        if !self.end_on_close.load(Ordering::Acquire) {
            return shared.is_none();
        }
        let Some(upstream_id) = shared else {
            return true;
        };
        // A claim of its own (not the one opening sessions takes): server names have no '#'.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, upstream_id.as_bytes());
        let tag: String = digest.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let ending = UpstreamKey {
            session: self.key.session.clone(),
            server: format!("{}#end#{tag}", self.key.server),
        };
        let owner = uuid::Uuid::new_v4().to_string();
        match self.store.claim(&ending, &owner, ENDING_CLAIM).await {
            Ok(false) => return false,
            Ok(true) => {}
            Err(error) => tracing::warn!(server = %self.key.server, "{error}"),
        }
        if let Err(error) = self.store.forget(&self.key).await {
            tracing::warn!(server = %self.key.server, "{error}");
        }
        true
    }

    /// `session_id` was answered with 404: it is gone upstream.
    pub(crate) fn gone(&self, session_id: &str) {
        lock(&self.state).gone = Some(session_id.to_owned());
    }

    /// What to do with `message` if it is the `initialized` notification (taken if so):
    /// `None` when it is not.
    fn initialized(&self, message: &ClientJsonRpcMessage) -> Option<Initialized> {
        let JsonRpcMessage::Notification(notification) = message else {
            return None;
        };
        if !matches!(
            notification.notification,
            ClientNotification::InitializedNotification(_)
        ) {
            return None;
        }
        Some(std::mem::take(&mut lock(&self.state).next_initialized))
    }

    /// Sends a message that is not `initialize`-without-a-session: swallows or sends the
    /// `initialized` notification (publishing the session this connection opened once it
    /// is accepted); anything else goes out as it is.
    pub(crate) async fn post(
        &self,
        client: &HttpClient,
        uri: Arc<str>,
        mut message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let next = self.initialized(&message);
        if let Some(Initialized::Swallow) = next {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        self.ids.outgoing(&mut message);
        let answer = client
            .post_plain(uri, message, session_id, auth_token, custom_headers)
            .await
            .map(|answer| self.ids.incoming_answer(answer));
        if let Some(Initialized::Publish(pending)) = next {
            if answer.is_ok() {
                self.publish(pending.record, pending.expected).await;
            }
            self.release(pending.claim).await;
        }
        answer
    }

    /// Answers `initialize` (sent without a session id): from the shared record, or by
    /// opening a new upstream session and publishing it; see the module docs.
    pub(crate) async fn initialize(
        &self,
        client: &HttpClient,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        let gone = {
            let mut state = lock(&self.state);
            state.shared = None;
            state.gone.take()
        };
        let owner = uuid::Uuid::new_v4().to_string();
        let wait_until = Instant::now() + self.wait_within;
        let mut claim = None;
        let expected = loop {
            match self.find(gone.as_deref()).await {
                Ok(Found::Attach(record)) => {
                    if let Some(answer) = self.replay(&message, &record) {
                        return Ok(answer);
                    }
                    break Some(record.generation); // unreadable: replace it
                }
                Ok(Found::Open(_)) => {
                    match self.store.claim(&self.key, &owner, self.wait_within).await {
                        // Another replica may have published and released its claim since
                        // the read: read again under the claim before opening.
                        Ok(true) => match self.find(gone.as_deref()).await {
                            Ok(Found::Attach(record)) => {
                                if let Some(answer) = self.replay(&message, &record) {
                                    self.release(Some(owner)).await;
                                    return Ok(answer);
                                }
                                claim = Some(owner);
                                break Some(record.generation); // unreadable: replace it
                            }
                            Ok(Found::Open(expected)) => {
                                claim = Some(owner);
                                break expected;
                            }
                            Err(error) => {
                                self.release(Some(owner)).await;
                                break self.unshared(error);
                            }
                        },
                        Ok(false) if Instant::now() + REREAD_EVERY < wait_until => {
                            tokio::time::sleep(REREAD_EVERY).await;
                        }
                        Ok(false) => {
                            tracing::debug!(server = %self.key.server, "another replica's claim outlived the wait: opening a session unshared");
                            return client
                                .post_plain(uri, message, None, auth_token, custom_headers)
                                .await;
                        }
                        Err(error) => break self.unshared(error),
                    }
                }
                Err(error) => break self.unshared(error),
            }
        };
        let answer = client
            .post_plain(uri, message, None, auth_token, custom_headers)
            .await;
        let record = match &answer {
            Ok(StreamableHttpPostResponse::Json(
                response @ JsonRpcMessage::Response(_),
                Some(id),
            )) => self.record(response, id, expected),
            _ => None,
        };
        match record {
            Some(record) => {
                let pending = Pending {
                    record,
                    expected,
                    claim,
                };
                lock(&self.state).next_initialized = Initialized::Publish(pending);
            }
            None => self.release(claim).await,
        }
        answer
    }

    /// Gives up `claim`, if one was taken.
    async fn release(&self, claim: Option<String>) {
        if let Some(owner) = claim
            && let Err(error) = self.store.release(&self.key, &owner).await
        {
            tracing::warn!(server = %self.key.server, "{error}");
        }
    }

    /// A store error while opening: logged; the session is opened without sharing.
    fn unshared(&self, error: super::shared::SharedSessionsError) -> Option<u64> {
        tracing::warn!(server = %self.key.server, "{error}; opening an upstream session of this replica's own");
        None
    }

    /// What the store holds for a new `initialize`, `gone` being an id found expired.
    async fn find(&self, gone: Option<&str>) -> Result<Found, super::shared::SharedSessionsError> {
        Ok(match self.store.get(&self.key).await? {
            Some(record) if record.url == self.url && Some(record.session_id.as_str()) != gone => {
                Found::Attach(record)
            }
            other => Found::Open(other.map(|r| r.generation)),
        })
    }

    /// The stored `initialize` answer as the answer to `request` (its id), with the stored
    /// session id; `None` if the stored answer cannot be read.
    fn replay(
        &self,
        request: &ClientJsonRpcMessage,
        record: &UpstreamRecord,
    ) -> Option<StreamableHttpPostResponse> {
        let JsonRpcMessage::Request(request) = request else {
            return None;
        };
        let mut answer = record.initialize.clone();
        let id = serde_json::to_value(&request.id).ok()?;
        answer.as_object_mut()?.insert("id".to_owned(), id);
        let answer = serde_json::from_value(answer).ok()?;
        {
            let mut state = lock(&self.state);
            state.next_initialized = Initialized::Swallow;
            state.shared = Some(record.session_id.clone());
        }
        tracing::debug!(server = %self.key.server, generation = record.generation, "attached to a shared upstream session");
        Some(StreamableHttpPostResponse::Json(
            answer,
            Some(record.session_id.clone()),
        ))
    }

    /// The record of a session this connection opened (`initialize` answered `response`
    /// with session `session_id`), replacing generation `expected`.
    fn record(
        &self,
        response: &rmcp::model::ServerJsonRpcMessage,
        session_id: &str,
        expected: Option<u64>,
    ) -> Option<UpstreamRecord> {
        Some(UpstreamRecord {
            session_id: session_id.to_owned(),
            url: self.url.clone(),
            initialize: serde_json::to_value(response).ok()?,
            generation: expected.map_or(1, |g| g + 1),
        })
    }

    /// Publishes a session this replica opened, if the record is still at `expected`.
    async fn publish(&self, record: UpstreamRecord, expected: Option<u64>) {
        let id = record.session_id.clone();
        match self.store.publish_if(&self.key, expected, record).await {
            Ok(true) => {
                lock(&self.state).shared = Some(id);
                tracing::debug!(server = %self.key.server, "published a new upstream session")
            }
            Ok(false) => {
                tracing::debug!(server = %self.key.server, "another replica published first; keeping this session unshared")
            }
            Err(error) => tracing::warn!(server = %self.key.server, "{error}"),
        }
    }
}

/// Whether `message` is `initialize`.
pub(crate) fn is_initialize(message: &ClientJsonRpcMessage) -> bool {
    matches!(message, JsonRpcMessage::Request(request)
        if matches!(request.request, ClientRequest::InitializeRequest(_)))
}
