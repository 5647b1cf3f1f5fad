//! The loopback listener the browser is redirected to after the person authorizes
//! (RFC 8252 section 7.3): `http://127.0.0.1:PORT/callback`, on the configured
//! `redirect_port` or any free one.
//!
//! It answers every request (a browser may ask for `/favicon.ico` first) and ends at the
//! first `/callback` whose `state` is the flow's own; others get 400 and are ignored, so a
//! stray or forged request cannot end the flow. The query is handed back as is; checking
//! `iss` and reading `code` or `error` is the flow's (`flow.rs`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{AuthFailure, AuthStep};

const PATH: &str = "/callback";
/// The largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener, not yet waiting.
pub(crate) struct Callback {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Callback {
    /// Binds 127.0.0.1:`port` (0: any free port).
    pub async fn bind(port: u16) -> Result<Self, AuthFailure> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .map_err(|e| {
                AuthFailure::new(
                    AuthStep::Authorization,
                    format!("cannot listen for the sign-in callback on 127.0.0.1:{port}: {e}"),
                )
            })?;
        let addr = listener.local_addr().map_err(|e| {
            AuthFailure::new(AuthStep::Authorization, format!("callback listener: {e}"))
        })?;
        Ok(Callback { listener, addr })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Waits (at most `timeout`) for the callback carrying `state`; returns its query
    /// parameters.
    pub async fn wait(
        self,
        state: &str,
        timeout: Duration,
    ) -> Result<HashMap<String, String>, AuthFailure> {
        let accept = async {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else {
                    continue;
                };
                if let Some(query) = serve(stream, state).await {
                    return query;
                }
            }
        };
        tokio::time::timeout(timeout, accept).await.map_err(|_| {
            AuthFailure::new(
                AuthStep::Authorization,
                format!(
                    "no sign-in came back within {}s (the browser never reached the callback)",
                    timeout.as_secs()
                ),
            )
            .needing_login(true)
        })
    }
}

/// Answers one connection; the query when it is the awaited callback.
async fn serve(mut stream: TcpStream, state: &str) -> Option<HashMap<String, String>> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(head)) => head,
        _ => return None,
    };
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let (status, body, done) = if path != PATH {
        ("404 Not Found", "Not found.", false)
    } else if params.get("state").map(String::as_str) != Some(state) {
        tracing::debug!("a sign-in callback with another state was ignored");
        (
            "400 Bad Request",
            "This sign-in link is not the one expected.",
            false,
        )
    } else if params.contains_key("error") {
        (
            "200 OK",
            "Sign-in was refused. You can close this tab.",
            true,
        )
    } else {
        (
            "200 OK",
            "Signed in to Switchboard. You can close this tab.",
            true,
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
         connection: close\r\ncache-control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
    done.then_some(params)
}

/// The request head (up to the blank line), or `None` if it is too long or cut.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8(head).ok();
        }
        if head.len() > MAX_HEAD {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: SocketAddr, target: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn only_the_callback_with_our_state_ends_the_wait() {
        let callback = Callback::bind(0).await.unwrap();
        let addr = callback.addr;
        let waiting = tokio::spawn(callback.wait("s1", Duration::from_secs(5)));
        assert!(get(addr, "/favicon.ico").await.starts_with("HTTP/1.1 404"));
        assert!(
            get(addr, "/callback?code=x&state=other")
                .await
                .starts_with("HTTP/1.1 400")
        );
        assert!(
            get(addr, "/callback?code=c%2B1&state=s1")
                .await
                .starts_with("HTTP/1.1 200")
        );
        let query = waiting.await.unwrap().unwrap();
        assert_eq!(query["code"], "c+1");
    }
}
