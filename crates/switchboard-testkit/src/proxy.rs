//! An HTTP fault-injection proxy: sits between an MCP client and an upstream
//! (HTTP/1.1, `http://` only) and fails chosen requests the way nginx or Envoy
//! do when the upstream dies: an error status before or after the upstream got
//! the request, a body cut mid-way, a TCP reset, or a delay.
//!
//! Every request body is read whole and matched against the [`FaultRule`]s as
//! JSON-RPC (`method`, and `params.name` for `tools/call`); the first rule that
//! matches and has not used up its `times` fires. Everything else is passed
//! through: headers both ways (hop-by-hop headers dropped, `Host` set to the
//! upstream), and response bodies streamed frame by frame, so SSE streams
//! (legacy `GET /sse`, Streamable HTTP `GET` streams and SSE POST answers) flow
//! unbuffered. A legacy SSE `endpoint` event carrying an absolute URL to the
//! upstream is rewritten to point at the proxy (relative ones pass unchanged).
//!
//! A reset is a real RST (`SO_LINGER` 0 on close), so clients see a connection
//! reset, never a clean response. When the upstream got the request but the
//! client is failed (`StatusAfterForward`, `ResetAfterForward`, `CutBody` on a
//! POST), the proxy still reads the upstream's answer to its end in the
//! background, so the upstream finishes the work it started exactly as if the
//! client had stayed: execution counters are deterministic.

use std::{
    convert::Infallible,
    net::{Ipv4Addr, SocketAddr},
    pin::Pin,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, stream};
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
    request::Parts, uri::Authority,
};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo, TokioTimer},
};
use serde_json::Value;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

/// How long a cut body waits after its last kept bytes before breaking the
/// connection, so hyper flushes those bytes first.
const CUT_FLUSH: Duration = Duration::from_millis(20);
/// Longest the proxy keeps reading an answer the client will never get.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// Most bytes held back while looking for an SSE `endpoint` event to rewrite.
const ENDPOINT_SCAN_LIMIT: usize = 8 * 1024;

/// What the proxy does to a request a [`FaultRule`] matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer `status` without forwarding (the upstream never sees the request).
    StatusBeforeForward {
        status: u16,
        /// Seconds, sent as `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Forward, wait for the upstream's full response, then answer `status`
    /// instead (what a proxy does when the upstream died after it got the request).
    /// A response that never ends (a GET stream) is waited for at most 60 s.
    StatusAfterForward {
        status: u16,
        /// Seconds, sent as `Retry-After`.
        retry_after: Option<u64>,
    },
    /// Forward, send the upstream's status and headers and only the first
    /// `keep_bytes` bytes of its body, then break the connection. At least the
    /// body's last byte is always withheld, so a complete body (or a complete
    /// final SSE event) never reaches the client, whatever `keep_bytes` says.
    CutBody { keep_bytes: usize },
    /// Reset the TCP connection (RST, `SO_LINGER` 0) without forwarding.
    ResetBeforeForward,
    /// Forward, wait for the upstream's response head, then reset the connection.
    ResetAfterForward,
    /// Wait, then forward normally.
    Delay(Duration),
}

/// Which requests get a [`Fault`], and how many times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// JSON-RPC method of the POST body, e.g. `tools/call`; `None` = any request
    /// (with `tool` also `None`: every request, GETs included).
    pub method: Option<String>,
    /// `params.name` must equal this (meant for `tools/call`).
    pub tool: Option<String>,
    pub fault: Fault,
    /// Fire at most this many times in total, then pass through (`None` = always).
    pub times: Option<usize>,
}

impl FaultRule {
    /// The first `tools/call` of `tool` gets `fault` (`times: Some(1)`).
    pub fn call(tool: &str, fault: Fault) -> FaultRule {
        FaultRule {
            method: Some("tools/call".into()),
            tool: Some(tool.into()),
            fault,
            times: Some(1),
        }
    }

    /// Every request with JSON-RPC method `method` gets `fault` (`times: None`).
    pub fn method(method: &str, fault: Fault) -> FaultRule {
        FaultRule {
            method: Some(method.into()),
            tool: None,
            fault,
            times: None,
        }
    }

    /// Every request, whatever it carries, gets `fault` (`times: None`).
    pub fn any(fault: Fault) -> FaultRule {
        FaultRule {
            method: None,
            tool: None,
            fault,
            times: None,
        }
    }

    /// Fire at most `n` times (`None`: always).
    pub fn times(self, n: Option<usize>) -> Self {
        FaultRule { times: n, ..self }
    }

    /// Whether this rule applies to a request whose body parsed as `body`
    /// (`None`: empty or not JSON).
    fn matches(&self, body: Option<&Value>) -> bool {
        if self.method.is_none() && self.tool.is_none() {
            return true;
        }
        let one = |message: &Value| {
            self.method
                .as_deref()
                .is_none_or(|method| message["method"] == method)
                && self
                    .tool
                    .as_deref()
                    .is_none_or(|tool| message["params"]["name"] == tool)
        };
        match body {
            Some(Value::Array(batch)) => batch.iter().any(one),
            Some(message) => one(message),
            None => false,
        }
    }
}

/// The CLI's fault SPEC: `MATCH=FAULT[,OPTION]...`.
///
/// - MATCH: `*` (every request), `METHOD` (a JSON-RPC method) or `METHOD:TOOL`
///   (`params.name` too).
/// - FAULT: `status-before:CODE`, `status-after:CODE`, `cut-body:BYTES`,
///   `reset-before`, `reset-after`, `delay:DURATION` (e.g. `200ms`).
/// - OPTION: `times=N` (fire at most N times; default: always),
///   `retry-after=SECONDS` (status faults only).
///
/// Examples: `tools/call:echo=status-after:502`, `tools/call=reset-before`,
/// `*=delay:200ms`, `tools/call:lookup=cut-body:10,times=1`,
/// `tools/call=status-before:429,retry-after=2`.
impl FromStr for FaultRule {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (matcher, rest) = spec.split_once('=').ok_or_else(|| {
            format!("`{spec}`: expected MATCH=FAULT, e.g. tools/call=reset-before")
        })?;
        let (method, tool) = match matcher.trim() {
            "" => return Err(format!("`{spec}`: empty MATCH (use `*` for every request)")),
            "*" => (None, None),
            m => match m.split_once(':') {
                Some((method, tool)) if !method.is_empty() && !tool.is_empty() => {
                    (Some(method.to_owned()), Some(tool.to_owned()))
                }
                Some(_) => return Err(format!("`{spec}`: expected METHOD:TOOL")),
                None => (Some(m.to_owned()), None),
            },
        };
        let mut parts = rest.split(',').map(str::trim);
        let fault_spec = parts.next().unwrap_or_default();
        let (kind, value) = match fault_spec.split_once(':') {
            Some((kind, value)) => (kind, Some(value)),
            None => (fault_spec, None),
        };
        let need = |what: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("`{spec}`: `{kind}` needs :{what}"))
        };
        let status = || -> Result<u16, String> {
            let code = need("STATUS")?;
            code.parse::<u16>()
                .ok()
                .filter(|code| (100..=999).contains(code))
                .ok_or_else(|| format!("`{spec}`: `{code}` is not an HTTP status"))
        };
        let no_value = || match value {
            Some(_) => Err(format!("`{spec}`: `{kind}` takes no value")),
            None => Ok(()),
        };
        let mut fault = match kind {
            "status-before" => Fault::StatusBeforeForward {
                status: status()?,
                retry_after: None,
            },
            "status-after" => Fault::StatusAfterForward {
                status: status()?,
                retry_after: None,
            },
            "cut-body" => Fault::CutBody {
                keep_bytes: need("BYTES")?
                    .parse()
                    .map_err(|_| format!("`{spec}`: cut-body needs a byte count"))?,
            },
            "reset-before" => {
                no_value()?;
                Fault::ResetBeforeForward
            }
            "reset-after" => {
                no_value()?;
                Fault::ResetAfterForward
            }
            "delay" => Fault::Delay(
                humantime::parse_duration(need("DURATION")?)
                    .map_err(|error| format!("`{spec}`: bad delay: {error}"))?,
            ),
            other => {
                return Err(format!(
                    "`{spec}`: unknown fault `{other}` (status-before, status-after, cut-body, \
                     reset-before, reset-after, delay)"
                ));
            }
        };
        let mut times = None;
        for option in parts {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| format!("`{spec}`: expected KEY=VALUE, got `{option}`"))?;
            match key {
                "times" => {
                    times = Some(
                        value
                            .parse()
                            .map_err(|_| format!("`{spec}`: times needs a count"))?,
                    );
                }
                "retry-after" => {
                    let seconds: u64 = value
                        .parse()
                        .map_err(|_| format!("`{spec}`: retry-after needs seconds"))?;
                    match &mut fault {
                        Fault::StatusBeforeForward { retry_after, .. }
                        | Fault::StatusAfterForward { retry_after, .. } => {
                            *retry_after = Some(seconds);
                        }
                        _ => {
                            return Err(format!(
                                "`{spec}`: retry-after only goes with status-before/status-after"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "`{spec}`: unknown option `{other}` (times, retry-after)"
                    ));
                }
            }
        }
        Ok(FaultRule {
            method,
            tool,
            fault,
            times,
        })
    }
}

/// A rule and how often it fired.
struct Armed {
    rule: FaultRule,
    fired: usize,
}

struct ProxyState {
    upstream: Authority,
    /// `http://<upstream authority>`, as an absolute SSE endpoint would start.
    upstream_origin: String,
    /// `http://127.0.0.1:<proxy port>`.
    proxy_origin: String,
    client: UpstreamClient,
    rules: Mutex<Vec<Armed>>,
    fired: AtomicUsize,
    requests: AtomicUsize,
}

/// A running fault-injection proxy on 127.0.0.1. Dropping it stops it (and
/// every connection through it); [`FaultProxy::shutdown`] stops it and waits.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    ct: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.state.upstream_origin)
            .field("faults_fired", &self.faults_fired())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Proxies every request to `upstream` (a base like `http://127.0.0.1:PORT`,
    /// or a full URL whose path is ignored) on `127.0.0.1:<free port>`.
    pub async fn start(upstream: &str, rules: Vec<FaultRule>) -> anyhow::Result<FaultProxy> {
        FaultProxy::start_on(0, upstream, rules).await
    }

    /// Like [`FaultProxy::start`] on a given port (0 picks a free one).
    pub async fn start_on(
        port: u16,
        upstream: &str,
        rules: Vec<FaultRule>,
    ) -> anyhow::Result<FaultProxy> {
        let uri: Uri = upstream
            .parse()
            .with_context(|| format!("`{upstream}` is not a URL"))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http"),
            "the upstream must be an http:// URL, got `{upstream}`"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("`{upstream}` has no host"))?
            .clone();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
        let addr = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(connector);
        let state = Arc::new(ProxyState {
            upstream_origin: format!("http://{authority}"),
            upstream: authority,
            proxy_origin: format!("http://{addr}"),
            client,
            rules: Mutex::new(arm(rules)),
            fired: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
        });
        let ct = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, state.clone(), ct.clone()));
        Ok(FaultProxy {
            addr,
            state,
            ct,
            task: Some(task),
        })
    }

    /// The bound address (always 127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PROXYPORT` + `path` (e.g. `proxy.url("/mcp")`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Replaces the rules (their `times` budgets start afresh); requests
    /// already past matching keep the fault they got.
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        *lock(&self.state.rules) = arm(rules);
    }

    /// How many times faults fired in total (across [`FaultProxy::set_rules`]).
    pub fn faults_fired(&self) -> usize {
        self.state.fired.load(Ordering::SeqCst)
    }

    /// How many requests reached the proxy (faulted or not).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting, drops every connection and waits (at most 5 s) for the
    /// accept task.
    pub async fn shutdown(mut self) {
        self.ct.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.ct.cancel();
    }
}

fn arm(rules: Vec<FaultRule>) -> Vec<Armed> {
    rules
        .into_iter()
        .map(|rule| Armed { rule, fired: 0 })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, state: Arc<ProxyState>, ct: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = ct.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(serve_connection(tcp, state.clone(), ct.child_token()));
            }
            Err(error) => {
                tracing::warn!(%error, "fault proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Per-connection switch a request handler flips to reset its connection.
#[derive(Default)]
struct ConnControl {
    reset: AtomicBool,
    notify: Notify,
}

impl ConnControl {
    /// Resets the connection (its task drops it, the socket closes with RST);
    /// never returns, so no response is written.
    async fn reset<T>(&self) -> T {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
        std::future::pending().await
    }
}

/// The client's socket; closes with an RST when its connection was reset.
struct ResettableTcp {
    tcp: TcpStream,
    control: Arc<ConnControl>,
}

impl Drop for ResettableTcp {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst)
            && let Err(error) = self.tcp.set_zero_linger()
        {
            tracing::warn!(%error, "fault proxy: cannot set SO_LINGER 0");
        }
    }
}

impl AsyncRead for ResettableTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

async fn serve_connection(tcp: TcpStream, state: Arc<ProxyState>, ct: CancellationToken) {
    let control = Arc::new(ConnControl::default());
    let io = TokioIo::new(ResettableTcp {
        tcp,
        control: control.clone(),
    });
    let handler_control = control.clone();
    let service = hyper::service::service_fn(move |request| {
        handle(state.clone(), handler_control.clone(), request)
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "fault proxy: connection ended with an error");
            }
        }
        // Dropping the connection drops the socket, which closes with an RST.
        _ = control.notify.notified() => {}
        _ = ct.cancelled() => {}
    }
}

async fn handle(
    state: Arc<ProxyState>,
    control: Arc<ConnControl>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Ok(text_response(
                StatusCode::BAD_REQUEST,
                format!("fault proxy: cannot read the request body: {error}"),
            ));
        }
    };
    let is_post = parts.method == Method::POST;
    let response = match state.take_fault(&body) {
        None => state.pass_through(&parts, body).await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            state.pass_through(&parts, body).await
        }
        Some(Fault::StatusBeforeForward {
            status,
            retry_after,
        }) => injected_status(status, retry_after),
        Some(Fault::StatusAfterForward {
            status,
            retry_after,
        }) => {
            match state.forward(&parts, body).await {
                Ok(response) => {
                    let drained =
                        tokio::time::timeout(DRAIN_LIMIT, response.into_body().collect()).await;
                    if !matches!(drained, Ok(Ok(_))) {
                        tracing::debug!("fault proxy: the upstream's answer did not end cleanly");
                    }
                }
                Err(error) => tracing::debug!(%error, "fault proxy: upstream request failed"),
            }
            injected_status(status, retry_after)
        }
        Some(Fault::CutBody { keep_bytes }) => match state.forward(&parts, body).await {
            Ok(response) => {
                let (mut head, body) = response.into_parts();
                strip_hop_by_hop(&mut head.headers);
                Response::from_parts(head, cut_body(body, keep_bytes, is_post))
            }
            Err(error) => bad_gateway(&error),
        },
        Some(Fault::ResetBeforeForward) => return control.reset().await,
        Some(Fault::ResetAfterForward) => {
            match state.forward(&parts, body).await {
                Ok(response) if is_post => {
                    tokio::spawn(drain(BodyStream::new(response.into_body())));
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "fault proxy: upstream request failed"),
            }
            return control.reset().await;
        }
    };
    Ok(response)
}

impl ProxyState {
    /// The fault of the first rule that matches `body` and has budget left
    /// (counted as fired), if any.
    fn take_fault(&self, body: &[u8]) -> Option<Fault> {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let mut rules = lock(&self.rules);
        let armed = rules.iter_mut().find(|armed| {
            armed.rule.times.is_none_or(|times| armed.fired < times)
                && armed.rule.matches(parsed.as_ref())
        })?;
        armed.fired += 1;
        self.fired.fetch_add(1, Ordering::SeqCst);
        Some(armed.rule.fault.clone())
    }

    /// Sends the request to the upstream (same method, path, query, headers
    /// and body; `Host` set to the upstream) and returns its response head.
    async fn forward(&self, parts: &Parts, body: Bytes) -> Result<Response<Incoming>, BoxError> {
        let path = parts.uri.path_and_query().map_or("/", |path| path.as_str());
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.clone())
            .path_and_query(path)
            .build()?;
        let mut headers = parts.headers.clone();
        strip_hop_by_hop(&mut headers);
        // hyper sets the length of the (whole) body itself, and the body is already
        // here: no `100 Continue` to wait for.
        headers.remove(header::CONTENT_LENGTH);
        headers.remove(header::EXPECT);
        headers.insert(header::HOST, HeaderValue::from_str(self.upstream.as_str())?);
        let mut request = Request::builder()
            .method(parts.method.clone())
            .uri(uri)
            .body(Full::new(body))?;
        *request.headers_mut() = headers;
        Ok(self.client.request(request).await?)
    }

    /// Forwards and streams the upstream's answer back as it comes.
    async fn pass_through(&self, parts: &Parts, body: Bytes) -> Response<ProxyBody> {
        let response = match self.forward(parts, body).await {
            Ok(response) => response,
            Err(error) => return bad_gateway(&error),
        };
        let (mut head, body) = response.into_parts();
        strip_hop_by_hop(&mut head.headers);
        let body = if parts.method == Method::GET && is_event_stream(&head.headers) {
            rewrite_endpoint(
                body,
                self.upstream_origin.clone(),
                self.proxy_origin.clone(),
            )
        } else {
            body.map_err(BoxError::from).boxed_unsync()
        };
        Response::from_parts(head, body)
    }
}

/// Removes the headers that describe one connection, not the message.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("text/event-stream"))
}

fn text_response(status: StatusCode, text: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(text))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn injected_status(status: u16, retry_after: Option<u64>) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = text_response(status, format!("fault proxy: injected {status}"));
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn bad_gateway(error: &BoxError) -> Response<ProxyBody> {
    tracing::debug!(%error, "fault proxy: upstream request failed");
    text_response(
        StatusCode::BAD_GATEWAY,
        format!("fault proxy: upstream request failed: {error}"),
    )
}

/// Reads (and discards) the rest of an answer nobody will see, so the
/// upstream finishes it; bounded by [`DRAIN_LIMIT`].
async fn drain(mut frames: BodyStream<Incoming>) {
    let _ = tokio::time::timeout(DRAIN_LIMIT, async {
        while let Some(Ok(_)) = frames.next().await {}
    })
    .await;
}

/// The upstream's body, cut after `keep_bytes` bytes (always before its last
/// byte), then an error, which makes hyper drop the connection mid-body. The
/// rest of a POST's answer is drained in the background.
fn cut_body(body: Incoming, keep_bytes: usize, drain_rest: bool) -> ProxyBody {
    struct Cut {
        frames: BodyStream<Incoming>,
        budget: usize,
        /// The last byte seen, withheld until more data shows it is not the last.
        held: Option<Bytes>,
        drain_rest: bool,
    }
    let start = Cut {
        frames: BodyStream::new(body),
        budget: keep_bytes,
        held: None,
        drain_rest,
    };
    let frames = stream::unfold(Some(start), |cut| async move {
        let mut cut = cut?;
        while cut.budget > 0 {
            match cut.frames.next().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    let mut out = BytesMut::new();
                    if let Some(held) = cut.held.take() {
                        out.extend_from_slice(&held);
                    }
                    out.extend_from_slice(&data[..data.len() - 1]);
                    cut.held = Some(data.slice(data.len() - 1..));
                    let n = out.len().min(cut.budget);
                    if n > 0 {
                        cut.budget -= n;
                        let out = out.freeze().slice(..n);
                        return Some((Ok(Frame::data(out)), Some(cut)));
                    }
                }
                Some(Err(error)) => return Some((Err(BoxError::from(error)), None)),
                None => break,
            }
        }
        if cut.drain_rest {
            tokio::spawn(drain(cut.frames));
        }
        // Let hyper flush what was kept, then break the connection.
        tokio::time::sleep(CUT_FLUSH).await;
        Some((Err(BoxError::from("body cut by the fault proxy")), None))
    });
    StreamBody::new(frames).boxed_unsync()
}

/// Passes an SSE body through, but first rewrites an absolute `endpoint` URL
/// to the upstream (`from`, e.g. `http://127.0.0.1:UP`) into one to the proxy
/// (`to`). Holds back bytes only until the first event is complete (at most
/// [`ENDPOINT_SCAN_LIMIT`]); everything after flows unchanged.
fn rewrite_endpoint(body: Incoming, from: String, to: String) -> ProxyBody {
    struct Scan {
        frames: BodyStream<Incoming>,
        /// `Some` while the first event is still being gathered.
        head: Option<Vec<u8>>,
    }
    let rewrite = move |head: Vec<u8>| -> Bytes {
        match String::from_utf8(head) {
            Ok(text) if text.contains("event: endpoint") || text.contains("event:endpoint") => {
                Bytes::from(text.replace(&from, &to))
            }
            Ok(text) => Bytes::from(text),
            Err(error) => Bytes::from(error.into_bytes()),
        }
    };
    let start = Scan {
        frames: BodyStream::new(body),
        head: Some(Vec::new()),
    };
    let frames = stream::unfold(start, move |mut scan| {
        let rewrite = rewrite.clone();
        async move {
            loop {
                let next = scan.frames.next().await;
                let Some(mut head) = scan.head.take() else {
                    return next.map(|frame| (frame.map_err(BoxError::from), scan));
                };
                match next {
                    Some(Ok(frame)) => {
                        let data = match frame.into_data() {
                            Ok(data) => data,
                            // Trailers end the scan; they are dropped (SSE has none).
                            Err(_) => return Some((Ok(Frame::data(rewrite(head))), scan)),
                        };
                        head.extend_from_slice(&data);
                        if first_event_complete(&head) || head.len() > ENDPOINT_SCAN_LIMIT {
                            return Some((Ok(Frame::data(rewrite(head))), scan));
                        }
                        scan.head = Some(head);
                    }
                    Some(Err(error)) => return Some((Err(BoxError::from(error)), scan)),
                    None if head.is_empty() => return None,
                    None => return Some((Ok(Frame::data(rewrite(head))), scan)),
                }
            }
        }
    });
    StreamBody::new(frames).boxed_unsync()
}

fn first_event_complete(data: &[u8]) -> bool {
    data.windows(2).any(|w| w == b"\n\n" || w == b"\r\r")
        || data.windows(4).any(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let rule: FaultRule = "tools/call:echo=status-after:502".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule {
                method: Some("tools/call".into()),
                tool: Some("echo".into()),
                fault: Fault::StatusAfterForward {
                    status: 502,
                    retry_after: None
                },
                times: None,
            }
        );
        let rule: FaultRule = "tools/call=reset-before".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule::method("tools/call", Fault::ResetBeforeForward)
        );
        let rule: FaultRule = "*=delay:200ms".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule::any(Fault::Delay(Duration::from_millis(200)))
        );
        let rule: FaultRule = "tools/call:lookup=cut-body:10,times=1".parse().unwrap();
        assert_eq!(
            rule,
            FaultRule::call("lookup", Fault::CutBody { keep_bytes: 10 })
        );
        let rule: FaultRule = "tools/call=status-before:429,retry-after=2,times=3"
            .parse()
            .unwrap();
        assert_eq!(
            rule,
            FaultRule::method(
                "tools/call",
                Fault::StatusBeforeForward {
                    status: 429,
                    retry_after: Some(2)
                }
            )
            .times(Some(3))
        );
        assert_eq!(
            "initialize=reset-after".parse::<FaultRule>().unwrap(),
            FaultRule::method("initialize", Fault::ResetAfterForward)
        );
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            "",
            "tools/call",
            "=reset-before",
            "tools/call:=reset-before",
            "tools/call=explode",
            "tools/call=status-before",
            "tools/call=status-before:42",
            "tools/call=status-before:abc",
            "tools/call=reset-before:1",
            "tools/call=cut-body:-1",
            "tools/call=delay:soon",
            "tools/call=reset-before,retry-after=2",
            "tools/call=status-after:502,times=x",
            "tools/call=status-after:502,color=red",
            "tools/call=status-after:502,times",
        ] {
            assert!(spec.parse::<FaultRule>().is_err(), "accepted `{spec}`");
        }
    }

    #[test]
    fn rules_match_json_rpc_bodies() {
        let call = |tool: &str| {
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                               "params": {"name": tool, "arguments": {}}})
        };
        let rule = FaultRule::call("echo", Fault::ResetBeforeForward);
        assert!(rule.matches(Some(&call("echo"))));
        assert!(!rule.matches(Some(&call("lookup"))));
        assert!(!rule.matches(None));
        let batch = Value::Array(vec![call("lookup"), call("echo")]);
        assert!(rule.matches(Some(&batch)));
        assert!(!rule.matches(Some(&Value::Array(vec![call("lookup")]))));
        let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
        assert!(!FaultRule::method("tools/call", Fault::ResetBeforeForward).matches(Some(&list)));
        assert!(FaultRule::any(Fault::ResetBeforeForward).matches(None));
    }

    #[test]
    fn first_event_detection() {
        assert!(!first_event_complete(b"event: endpoint\ndata: /m"));
        assert!(first_event_complete(b"event: endpoint\ndata: /m\n\n"));
        assert!(first_event_complete(b"event: endpoint\r\ndata: /m\r\n\r\n"));
    }
}
