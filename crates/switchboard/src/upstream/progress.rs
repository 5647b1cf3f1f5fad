//! Progress in order with results.
//!
//! rmcp hands each notification to the handler on a task of its own but a response to its
//! request at once, so `notifications/progress` a server sends just before a call's result
//! could reach the call after it had returned (and be dropped: nobody waits for it any
//! more). This transport wrapper passes progress to its call ([`Calls::progress`]) as it
//! is read, before anything read after it, and does not hand it to rmcp (the engine keeps
//! its own deadlines: rmcp's progress-reset timeouts are not used). Log messages
//! (`notifications/message`) likewise go to the call they are for ([`Calls::log`]) as they
//! are read, so a call hears them before its result: by the response stream they came on
//! when the transport marked it (Streamable HTTP, [`crate::transport::http::take_stream_request`]).
//!
//! On the way out, a request sent for a call ([`SentFor`]) is registered here, before the
//! transport writes it: nothing the server sends for it can arrive before its call is known.

use std::sync::Arc;

use rmcp::RoleClient;
use rmcp::model::{
    GetExtensions, GetMeta, JsonRpcMessage, NotificationMetaObject, ServerNotification,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

use super::interaction::{Calls, SentFor};
use crate::interaction::LogMessage;

/// `T`, with progress passed to its call as it arrives (see the module docs).
pub(crate) struct InOrderProgress<T> {
    inner: T,
    calls: Arc<Calls>,
    /// The server's name, for its log messages.
    server: Arc<str>,
}

impl<T> InOrderProgress<T> {
    pub(crate) fn new(inner: T, calls: Arc<Calls>, server: Arc<str>) -> Self {
        InOrderProgress {
            inner,
            calls,
            server,
        }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for InOrderProgress<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        if let JsonRpcMessage::Request(request) = &mut item
            && let Some(call) = request.request.extensions_mut().remove::<SentFor>()
        {
            let token = request.request.get_meta().get_progress_token();
            self.calls.sent(&request.id, token, &call);
        }
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.inner.receive().await? {
                JsonRpcMessage::Notification(notification) => match notification.notification {
                    ServerNotification::ProgressNotification(progress) => {
                        self.calls.progress(progress.params);
                    }
                    #[allow(deprecated)] // logging (SEP-2577): servers still log
                    ServerNotification::LoggingMessageNotification(mut logged) => {
                        let stream = logged
                            .extensions
                            .get_mut::<NotificationMetaObject>()
                            .and_then(|meta| crate::transport::http::take_stream_request(meta));
                        let params = logged.params;
                        let level = serde_json::to_value(params.level).ok();
                        let level = level.as_ref().and_then(|l| l.as_str()).unwrap_or("info");
                        self.calls.log(
                            LogMessage {
                                server: self.server.to_string(),
                                level: level.to_owned(),
                                logger: params.logger,
                                data: params.data,
                            },
                            stream.as_ref(),
                        );
                    }
                    other => {
                        let notification = rmcp::model::JsonRpcNotification {
                            notification: other,
                            ..notification
                        };
                        return Some(JsonRpcMessage::Notification(notification));
                    }
                },
                message => return Some(message),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
