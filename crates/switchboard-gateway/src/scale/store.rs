//! rmcp's `SessionStore` over the Redis session records (docs/scale-out-design.md a.6): what
//! lets rmcp restore, on a replica that has not seen it, a session made on another.
//!
//! - `load`: the sealed id's engine session's record, if its binding is the id's; the
//!   session's remembered variables are kept for its handler's replayed `initialize`.
//! - `store`: nothing. The handler's `initialize` writes the record itself and fails the
//!   handshake if it cannot (rmcp only warns when `store` fails, and would hand out an id no
//!   other replica can restore).
//! - `delete` (a client's `DELETE`): removes the record.

use std::sync::Arc;

use rmcp::model::InitializeRequestParams;
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};

use super::Scale;
use super::token::{Token, now};

/// See the module docs.
pub struct SessionRecords {
    pub scale: Arc<Scale>,
}

#[async_trait::async_trait]
impl SessionStore for SessionRecords {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let scale = &self.scale;
        let (Some(store), Ok(token)) = (&scale.store, Token::open(&scale.ring, session_id, now()))
        else {
            return Ok(None);
        };
        let engine_id = token.engine_id();
        let Some(record) = store.load(&engine_id).await? else {
            return Ok(None);
        };
        if record.binding != token.binding {
            tracing::warn!(session = %engine_id, "a session record's identity is not its id's; ignored");
            return Ok(None);
        }
        let params: InitializeRequestParams = match serde_json::from_value(record.init) {
            Ok(params) => params,
            Err(error) => {
                tracing::warn!(session = %engine_id, %error, "a session record's initialize params are not readable; ignored");
                return Ok(None);
            }
        };
        if let Some(variables) = record.variables {
            scale.remembered(engine_id, variables);
        }
        Ok(Some(SessionState::new(params)))
    }

    async fn store(
        &self,
        _session_id: &str,
        _state: &SessionState,
    ) -> Result<(), SessionStoreError> {
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        let scale = &self.scale;
        let (Some(store), Ok(token)) = (&scale.store, Token::open(&scale.ring, session_id, now()))
        else {
            return Ok(());
        };
        Ok(store.delete(&token.engine_id()).await?)
    }
}
