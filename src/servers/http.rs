//! The HTTP/1.1 file server: the reference web server of the web-proxy and
//! web-client labs.
//!
//! It serves the files under one directory to `GET` and `HEAD` following
//! RFC 9110 and RFC 9112: persistent connections (HTTP/1.1 by default,
//! HTTP/1.0 with `Connection: keep-alive`), pipelining, absolute-form targets,
//! conditional `GET` with `If-Modified-Since`, and a precise status for every
//! request it refuses. Every response waits a seeded delay, so the grader
//! knows how long the server held each request. Every request and response is
//! recorded byte for byte in the run's [`Recorder`]; every wait has a
//! deadline, so a client that sends garbage, never sends, or never closes
//! ends only its own connection.
//!
//! What an attacking client can make it hold is bounded: at most
//! [`MAX_CONNECTIONS`] connections at a time (more are answered 503 and
//! closed), a request head of 16 KiB, the first [`KEPT_BODY`]
//! bytes of a body (the rest is read and discarded), and files are sent in
//! chunks. Only regular files are ever opened: a FIFO, device or socket in
//! the web root is answered 403 at once.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::trace::{EventKind, Recorder};

/// Longest request head (request line and header fields) accepted; longer gets 431.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields accepted in one request; more gets 431.
const MAX_HEADERS: usize = 100;
/// Longest request body read (and discarded); longer gets 413.
const MAX_BODY: u64 = 1024 * 1024;
/// Bytes of a request body kept in memory (and in the trace); the rest of
/// the body is read and discarded as it comes.
pub const KEPT_BODY: usize = 16 * 1024;
/// Connections served at once; the next ones are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Bytes of a file read and sent at a time.
const FILE_CHUNK: usize = 16 * 1024;
/// How long the 503 to a connection over [`MAX_CONNECTIONS`] may take.
const BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest request kept in the trace; longer requests are cut.
const MAX_RECORDED_REQUEST: usize = 64 * 1024;
/// Requests (with their responses) recorded per server by default; then
/// one [`EventKind::RecordingCapped`] and no more.
pub const MAX_RECORDED_REQUESTS: u32 = 1000;
/// Bytes of requests recorded per server by default; past them, the same.
pub const MAX_RECORDED_BYTES: usize = 8 * 1024 * 1024;
/// How much room each read makes in the connection's buffer.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that the kernel does not answer it with a reset
/// that could destroy the response before the client reads it.
const LINGER: Duration = Duration::from_secs(1);

/// Settings of one HTTP server.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Name in the trace.
    pub name: String,
    /// The directory served.
    pub root: PathBuf,
    /// Delay before each response, drawn uniformly from `[latency_min, latency_max]`.
    pub latency_min: Duration,
    /// Upper end of the delay range.
    pub latency_max: Duration,
    /// Seed of the delay draws.
    pub seed: u64,
    /// How long a connection may wait for the first byte of its next request
    /// (or of its first) before the server closes it.
    pub idle_timeout: Duration,
    /// How long a request may take from its first byte to its last, and how
    /// long writing one response may take.
    pub request_timeout: Duration,
    /// Requests (with their responses) recorded before the server stops
    /// recording, [`MAX_RECORDED_REQUESTS`] by default; a `serve` session
    /// whose recorder keeps nothing can lift it.
    pub max_recorded_requests: u32,
    /// Bytes of requests recorded before the same, [`MAX_RECORDED_BYTES`] by default.
    pub max_recorded_bytes: usize,
    /// Each folder of `root` is the site of the host it is named after
    /// (`www.example.com/`): a request is served by the site its host names
    /// (the absolute-form target's, else `Host`'s), else by the first site,
    /// in name order, that has the path; and `POST` is answered 200 with an
    /// echo of its body ([`post_echo`]). A web proxy's origin servers.
    pub sites: bool,
}

impl HttpConfig {
    /// A server named `name` serving `root` with no delay, seed 0, a 5 s idle
    /// timeout, a 10 s request timeout and the default recording limits.
    pub fn new(name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        HttpConfig {
            name: name.into(),
            root: root.into(),
            latency_min: Duration::ZERO,
            latency_max: Duration::ZERO,
            seed: 0,
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_recorded_requests: MAX_RECORDED_REQUESTS,
            max_recorded_bytes: MAX_RECORDED_BYTES,
            sites: false,
        }
    }
}

/// The delay before response number `index` (1-based, counted over the
/// whole server, not per connection), in whole milliseconds.
///
/// It comes from a generator seeded by `seed` and the index alone, so it never
/// depends on timing or on which connection the response belongs to.
pub fn latency(config: &HttpConfig, index: u32) -> Duration {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (u64::from(index) << 32));
    let span = config.latency_max.saturating_sub(config.latency_min);
    let delay = config.latency_min + span.mul_f64(rng.random::<f64>());
    Duration::from_millis(delay.as_millis() as u64)
}

/// Serves `listener` until the task is aborted, each connection as its own
/// task; aborting this task aborts them all.
///
/// Connections are numbered from 1 in the order they are accepted. Every
/// response is preceded in the trace by the [`EventKind::Request`] of the
/// bytes it answers: a whole request (its body cut after [`KEPT_BODY`]
/// bytes), or for a refused one (status 400, 408, 411, 413, 431 or 505,
/// after which the connection closes) whatever had arrived of it. A
/// connection accepted while [`MAX_CONNECTIONS`] are being served gets a
/// recorded 503 without a request, then is closed. The interim
/// `100 Continue` sent to a request with `Expect: 100-continue` is not
/// recorded.
pub async fn run(listener: TcpListener, config: HttpConfig, recorder: Recorder) {
    let root = tokio::fs::canonicalize(&config.root)
        .await
        .unwrap_or_else(|_| config.root.clone());
    let shared = Arc::new(Shared {
        config,
        root,
        recorder,
        responses: AtomicU32::new(0),
        recorded: std::sync::Mutex::new(Recorded::default()),
    });
    let mut connections = JoinSet::new();
    // Connections answered 503, each for at most [`BUSY_TIMEOUT`] and [`LINGER`].
    let mut refused = JoinSet::new();
    let mut count: u32 = 0;
    loop {
        let (stream, peer) = super::accept(&listener).await;
        while connections.try_join_next().is_some() {}
        count = count.saturating_add(1);
        if connections.len() >= MAX_CONNECTIONS {
            while refused.try_join_next().is_some() {}
            // Past both limits the connection is closed without a word.
            if refused.len() < MAX_CONNECTIONS {
                refused.spawn(busy(shared.clone(), stream, peer, count));
            }
            continue;
        }
        let conn = Conn {
            shared: shared.clone(),
            stream,
            peer,
            id: count,
            buf: Vec::new(),
            recording: false,
        };
        connections.spawn(conn.serve());
    }
}

/// Answers a connection over [`MAX_CONNECTIONS`] 503 and closes it.
async fn busy(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, id: u32) {
    let mut conn = Conn {
        shared,
        stream,
        peer,
        id,
        buf: Vec::new(),
        recording: false,
    };
    conn.recording = conn.shared.claim(0);
    let mut response = Response::error(503, false);
    response.headers.push(("Retry-After", "1".into()));
    let _ = timeout(BUSY_TIMEOUT, conn.send(response, Some("close"))).await;
    conn.linger().await;
}

/// What every connection of one server shares.
struct Shared {
    config: HttpConfig,
    /// `config.root`, canonical, so resolved paths can be checked against it.
    root: PathBuf,
    recorder: Recorder,
    /// Responses started so far, over all connections: the latency index.
    responses: AtomicU32,
    /// What has been recorded so far, over all connections.
    recorded: std::sync::Mutex<Recorded>,
}

/// What a server has recorded so far.
#[derive(Default)]
struct Recorded {
    /// Requests recorded.
    count: u32,
    /// Bytes of requests recorded.
    bytes: usize,
    /// Whether recording has stopped (and the trace says so).
    capped: bool,
}

impl Shared {
    /// Whether a request of `len` bytes (and its response) is recorded:
    /// while within the configured limits.
    /// The first time not, records [`EventKind::RecordingCapped`].
    fn claim(&self, len: usize) -> bool {
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = recorded.bytes.saturating_add(len);
        let config = &self.config;
        if recorded.capped
            || recorded.count >= config.max_recorded_requests
            || bytes > config.max_recorded_bytes
        {
            if !recorded.capped {
                recorded.capped = true;
                self.recorder.record(EventKind::RecordingCapped {
                    server: config.name.clone(),
                    limit: recorded.count,
                });
            }
            return false;
        }
        recorded.count += 1;
        recorded.bytes = bytes;
        true
    }
}

/// One client connection.
struct Conn {
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u32,
    /// Received bytes not yet answered (pipelined requests wait here).
    buf: Vec<u8>,
    /// Whether the request being answered was recorded (its response is then too).
    recording: bool,
}

/// What reading the next request gave.
enum Next {
    /// A whole request, spanning the first `len` bytes of the buffer.
    Request(RequestHead, usize),
    /// A request to refuse with `status`, then close.
    Refuse {
        /// Status to answer.
        status: u16,
        /// Whether it was a `HEAD` request, whose response has no body.
        is_head: bool,
    },
    /// The client closed, failed, or stayed idle: close without a word.
    Quiet,
}

impl Conn {
    /// Answers requests in order until the connection should close.
    async fn serve(mut self) {
        loop {
            let (head, len) = match self.next().await {
                Next::Quiet => return,
                Next::Refuse { status, is_head } => {
                    self.record_request(self.buf.len());
                    self.send(Response::error(status, is_head), Some("close"))
                        .await;
                    self.linger().await;
                    return;
                }
                Next::Request(head, len) => (head, len),
            };
            self.record_request(len);
            let body = self.buf[head.len.min(len)..len].to_vec();
            self.buf.drain(..len);
            let keep_alive = head.keep_alive();
            let connection = match (keep_alive, head.minor) {
                (false, _) => Some("close"),
                (true, 0) => Some("keep-alive"),
                (true, _) => None,
            };
            let response = respond(&self.shared, &head, &body).await;
            if !self.send(response, connection).await {
                return;
            }
            if !keep_alive {
                self.linger().await;
                return;
            }
        }
    }

    /// Reads until the buffer starts with a whole request (head and body).
    async fn next(&mut self) -> Next {
        let config = &self.shared.config;
        let (idle, request) = (config.idle_timeout, config.request_timeout);
        if self.buf.is_empty() && !matches!(timeout(idle, self.read()).await, Ok(Ok(1..))) {
            return Next::Quiet;
        }
        let deadline = Instant::now() + request;
        let (head, head_len) = loop {
            let status = match parse_head(&self.buf) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) if self.buf.len() > MAX_HEAD => 431,
                Ok(None) => match self.read_by(deadline, false).await {
                    Some(end) => return end,
                    None => continue,
                },
                Err(status) => status,
            };
            return Next::Refuse {
                status,
                is_head: false,
            };
        };
        let is_head = head.method == "HEAD";
        let body = match head.check_host().and_then(|()| head.body_length()) {
            Ok(body) => body,
            Err(status) => return Next::Refuse { status, is_head },
        };
        let arrived = (self.buf.len() - head_len) as u64;
        if body > arrived && head.expects_continue() && !self.send_continue(deadline).await {
            return Next::Quiet;
        }
        match self.read_body(head_len, body, deadline, is_head).await {
            Ok(len) => Next::Request(head, len),
            Err(end) => end,
        }
    }

    /// Sends the interim `100 Continue` (RFC 9110 §15.2.1) before `deadline`;
    /// whether it was sent.
    async fn send_continue(&mut self, deadline: Instant) -> bool {
        let write = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        matches!(timeout_at(deadline, write).await, Ok(Ok(())))
    }

    /// Reads the `body` bytes after the head (`head_len` bytes) before
    /// `deadline`, keeping the first [`KEPT_BODY`] of them in the buffer and
    /// discarding the rest; how many bytes the request spans in the buffer,
    /// or how it ends.
    async fn read_body(
        &mut self,
        head_len: usize,
        body: u64,
        deadline: Instant,
        is_head: bool,
    ) -> Result<usize, Next> {
        let keep = head_len + body.min(KEPT_BODY as u64) as usize;
        let mut skip = body - (keep - head_len) as u64;
        loop {
            if skip > 0 && self.buf.len() > keep {
                let n = ((self.buf.len() - keep) as u64).min(skip) as usize;
                self.buf.drain(keep..keep + n);
                skip -= n as u64;
            }
            if skip == 0 && self.buf.len() >= keep {
                return Ok(keep);
            }
            if let Some(end) = self.read_by(deadline, is_head).await {
                return Err(end);
            }
        }
    }

    /// Reads more before `deadline`; `None` if that worked, else how the request ends.
    async fn read_by(&mut self, deadline: Instant, is_head: bool) -> Option<Next> {
        let status = match timeout_at(deadline, self.read()).await {
            Ok(Ok(0)) => 400,
            Ok(Ok(_)) => return None,
            Ok(Err(_)) => return Some(Next::Quiet),
            Err(_) => 408,
        };
        Some(Next::Refuse { status, is_head })
    }

    /// Appends what the socket has (at most [`READ_CHUNK`] bytes) to the
    /// buffer; 0 at end of stream.
    /// The buffer changes only once a read has completed, so a read cut
    /// short by a deadline loses nothing.
    async fn read(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Records the first `len` bytes of the buffer as a request.
    /// Nothing once the server's recording is capped.
    fn record_request(&mut self, len: usize) {
        let len = len.min(MAX_RECORDED_REQUEST);
        self.recording = self.shared.claim(len);
        if !self.recording {
            return;
        }
        self.shared.recorder.record(EventKind::Request {
            server: self.shared.config.name.clone(),
            conn: self.id,
            peer: self.peer,
            raw: self.buf[..len].to_vec(),
        });
    }

    /// Waits the response's latency, then sends it with `Connection: connection`
    /// if given; whether it was sent before the deadline.
    async fn send(&mut self, response: Response, connection: Option<&str>) -> bool {
        let shared = &self.shared;
        let index = shared.responses.fetch_add(1, Ordering::Relaxed) + 1;
        let delay = latency(&shared.config, index);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let status = response.status;
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\nDate: {}\r\nServer: netgrade\r\n",
            reason(status),
            http_date(unix_secs(SystemTime::now())),
        );
        for (name, value) in &response.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some(connection) = connection {
            let _ = write!(head, "Connection: {connection}\r\n");
        }
        head.push_str("\r\n");
        let head = head.into_bytes();
        // Stamped before sending, like the pinger's replies: the recorded hold
        // time is then a lower bound of what the client saw.
        let at = shared.recorder.now();
        let deadline = Instant::now() + shared.config.request_timeout;
        let (stream, body) = (&mut self.stream, response.body);
        let body_len = body.len();
        let write = async move {
            match body {
                Body::Bytes(bytes) => stream.write_all(&[&head[..], &bytes].concat()).await?,
                file => {
                    stream.write_all(&head).await?;
                    file.write_to(stream).await?;
                }
            }
            io::Result::Ok(head)
        };
        let Ok(Ok(head)) = timeout_at(deadline, write).await else {
            return false;
        };
        if !self.recording {
            return true;
        }
        let shared = &self.shared;
        shared.recorder.record_at(
            at,
            EventKind::Response {
                server: shared.config.name.clone(),
                conn: self.id,
                status,
                head,
                body_len,
            },
        );
        true
    }

    /// Closes the sending side, then discards what the client still sends
    /// until it closes too or [`LINGER`] passes.
    async fn linger(&mut self) {
        let mut sink = [0u8; READ_CHUNK];
        let drain = async {
            let _ = self.stream.shutdown().await;
            while matches!(self.stream.read(&mut sink).await, Ok(1..)) {}
        };
        let _ = timeout(LINGER, drain).await;
    }
}

/// A parsed request head, owned.
#[derive(Debug)]
struct RequestHead {
    /// Bytes of the head, up to and including its blank line.
    len: usize,
    method: String,
    target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    minor: u8,
    /// Field names lower-cased, values without surrounding whitespace.
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    /// The values of every `name` field (lower-case name).
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The comma-separated list members of every `name` field, lower-cased.
    fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = String> {
        self.values(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|t| String::from_utf8_lossy(t.trim_ascii()).to_ascii_lowercase())
            .filter(|t| !t.is_empty())
    }

    /// The value of the `name` field if there is exactly one.
    fn single<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.values(name);
        match (values.next(), values.next()) {
            (Some(value), None) => std::str::from_utf8(value).ok(),
            _ => None,
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body
    /// (RFC 9110 §10.1.1; an HTTP/1.0 client is never sent one).
    fn expects_continue(&self) -> bool {
        self.minor == 1 && self.tokens("expect").any(|t| t == "100-continue")
    }

    /// Whether the connection stays open after this request (RFC 9112 §9.3).
    fn keep_alive(&self) -> bool {
        let has = |token: &str| self.tokens("connection").any(|t| t == token);
        !has("close") && (self.minor == 1 || has("keep-alive"))
    }

    /// 400 unless `Host` is valid: exactly one in HTTP/1.1, at most one in
    /// HTTP/1.0, with a plausible value (RFC 9112 §3.2).
    fn check_host(&self) -> Result<(), u16> {
        let hosts: Vec<&[u8]> = self.values("host").collect();
        let valid = |h: &[u8]| {
            h.iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b))
        };
        match hosts[..] {
            [] if self.minor == 0 => Ok(()),
            [host] if valid(host) => Ok(()),
            _ => Err(400),
        }
    }

    /// The length of the request body, or the status that refuses it
    /// (RFC 9112 §6.3): a transfer coding is not read (411 if the body is
    /// chunked, else 400), conflicting lengths are 400, more than [`MAX_BODY`] is 413.
    fn body_length(&self) -> Result<u64, u16> {
        if self.values("transfer-encoding").next().is_some() {
            let chunked = self.tokens("transfer-encoding").last().as_deref() == Some("chunked");
            return Err(if chunked && self.minor == 1 { 411 } else { 400 });
        }
        let mut length = None;
        for member in self
            .values("content-length")
            .flat_map(|v| v.split(|&b| b == b','))
        {
            let member = member.trim_ascii();
            if member.is_empty() || !member.iter().all(u8::is_ascii_digit) {
                return Err(400);
            }
            let n: u64 = std::str::from_utf8(member)
                .ok()
                .and_then(|m| m.parse().ok())
                .ok_or(400u16)?;
            if length.is_some_and(|l| l != n) {
                return Err(400);
            }
            length = Some(n);
        }
        match length.unwrap_or(0) {
            n if n > MAX_BODY => Err(413),
            n => Ok(n),
        }
    }
}

/// Parses a request head at the start of `buf`: the head and its length,
/// `None` while incomplete, or the status that refuses it.
fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(431),
        Ok(httparse::Status::Complete(len)) => {
            let head = RequestHead {
                len,
                method: req.method.unwrap_or_default().to_owned(),
                target: req.path.unwrap_or_default().to_owned(),
                minor: req.version.unwrap_or_default(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.trim_ascii().to_vec()))
                    .collect(),
            };
            Ok(Some((head, len)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(431),
        Err(httparse::Error::Version) => version_error(buf),
        Err(_) => Err(400),
    }
}

/// httparse refuses every version but 1.0 and 1.1: a well-formed request line
/// with another `HTTP/d.d` gets 505, anything else 400. Waits for the whole line.
fn version_error(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, u16> {
    let start = buf
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(buf.len());
    let Some(end) = buf[start..].iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    let line = &buf[start..start + end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.split(|&b| b == b' ').collect::<Vec<_>>()[..] {
        [
            method,
            target,
            [b'H', b'T', b'T', b'P', b'/', major, b'.', minor],
        ] if !method.is_empty()
            && !target.is_empty()
            && major.is_ascii_digit()
            && minor.is_ascii_digit() =>
        {
            Err(505)
        }
        _ => Err(400),
    }
}

/// A response before its status line, `Date`, `Server` and `Connection`.
#[derive(Debug)]
struct Response {
    status: u16,
    /// Fields in order, `Content-Length` among them when it applies.
    headers: Vec<(&'static str, String)>,
    /// What follows the head: empty for `HEAD` and 304.
    body: Body,
}

/// The body of a response.
#[derive(Debug)]
enum Body {
    /// Bytes in memory (an error page, or nothing).
    Bytes(Vec<u8>),
    /// The first `len` bytes of a regular file, read a chunk at a time.
    File(tokio::fs::File, u64),
}

impl Body {
    /// How many bytes the body has.
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, len) => *len,
        }
    }

    /// Writes the body to `stream`; an error if the file ends early.
    async fn write_to(self, stream: &mut TcpStream) -> io::Result<()> {
        let (mut file, mut left) = match self {
            Body::Bytes(bytes) => return stream.write_all(&bytes).await,
            Body::File(file, len) => (file, len),
        };
        let mut chunk = vec![0u8; FILE_CHUNK];
        while left > 0 {
            let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = file.read(&mut chunk[..want]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            stream.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        Ok(())
    }
}

impl Response {
    /// A small HTML page saying `status`; without the page itself for `HEAD`.
    fn error(status: u16, is_head: bool) -> Self {
        let title = format!("{status} {}", reason(status));
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>{title}</title></head>\
             <body><h1>{title}</h1></body></html>\n"
        );
        Response {
            status,
            headers: vec![
                ("Content-Type", "text/html; charset=utf-8".into()),
                ("Content-Length", page.len().to_string()),
            ],
            body: Body::Bytes(if is_head { Vec::new() } else { page.into() }),
        }
    }
}

/// The response to a well-framed request (whose body, or its first
/// [`KEPT_BODY`] bytes, is `body`).
async fn respond(shared: &Shared, head: &RequestHead, body: &[u8]) -> Response {
    let is_head = head.method == "HEAD";
    let sites = shared.config.sites;
    if sites && head.method == "POST" {
        let path = target_path(&head.target).unwrap_or_default();
        let echo = post_echo(&path.to_string_lossy(), body);
        return Response {
            status: 200,
            headers: vec![
                ("Content-Type", "text/plain; charset=utf-8".into()),
                ("Content-Length", echo.len().to_string()),
            ],
            body: Body::Bytes(echo),
        };
    }
    if !is_head && head.method != "GET" {
        let mut response = Response::error(501, false);
        let allow = if sites {
            "GET, HEAD, POST"
        } else {
            "GET, HEAD"
        };
        response.headers.push(("Allow", allow.into()));
        return response;
    }
    let root = match sites {
        true => site_root(&shared.root, head).await,
        false => shared.root.clone(),
    };
    file_response(&root, head, is_head)
        .await
        .unwrap_or_else(|status| Response::error(status, is_head))
}

/// What a server of sites answers a `POST` to `path` (relative, without
/// its leading slash) with: `POST /form: 21 bytes` and the body.
pub fn post_echo(path: &str, body: &[u8]) -> Vec<u8> {
    let mut echo = format!("POST /{path}: {} bytes\n", body.len()).into_bytes();
    echo.extend_from_slice(body);
    echo
}

/// The host a request names: its absolute-form target's authority, else
/// its `Host` field; without the port, lower-cased.
fn request_host(head: &RequestHead) -> Option<String> {
    let authority = match head.target.split_once("://") {
        Some((_, rest)) => rest.split(['/', '?', '#']).next().map(str::to_owned),
        None => head.single("host").map(str::to_owned),
    }?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority.as_str()
            }
        });
    Some(host.to_ascii_lowercase())
}

/// Which of `sites` serves a request for `path` naming `host`: the site
/// named `host`, else the first (in name order) that `has` the path.
pub fn choose_site<'a>(
    sites: &'a [String],
    host: Option<&str>,
    has: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let named = host.and_then(|h| sites.iter().find(|s| s.eq_ignore_ascii_case(h)));
    named
        .or_else(|| sites.iter().find(|s| has(s)))
        .map(String::as_str)
}

/// The folder of the site that serves `head` (see [`HttpConfig::sites`]);
/// `root` itself when no site has the path (the answer is then 404).
async fn site_root(root: &Path, head: &RequestHead) -> PathBuf {
    let host = request_host(head);
    let relative = target_path(&head.target).unwrap_or_default();
    let (root, fallback) = (root.to_path_buf(), root.to_path_buf());
    let chosen = tokio::task::spawn_blocking(move || {
        let mut sites: Vec<String> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        sites.sort();
        let has = |site: &str| root.join(site).join(&relative).is_file();
        let site = choose_site(&sites, host.as_deref(), has).map(str::to_owned);
        site.map_or(root.clone(), |s| root.join(s))
    })
    .await;
    chosen.unwrap_or(fallback)
}

/// The file `head` asks for, 304 if the client's copy is current, or the error status.
async fn file_response(root: &Path, head: &RequestHead, is_head: bool) -> Result<Response, u16> {
    let (path, file, meta) = open(root, &target_path(&head.target)?).await?;
    // A modification time in the future is not to be sent (RFC 9110 §8.8.2.1).
    let now = unix_secs(SystemTime::now());
    let modified = meta.modified().ok().map(|t| unix_secs(t).min(now));
    if not_modified(head, modified) {
        return Ok(Response {
            status: 304,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
        });
    }
    let length = meta.len();
    let body = if is_head {
        Body::Bytes(Vec::new())
    } else if length <= FILE_CHUNK as u64 {
        // A small file goes out with the head in one write, as servers
        // send it: a reader's single recv then sees the whole response
        // every time, never by chance only its head.
        let mut bytes = Vec::with_capacity(length as usize);
        let mut file = file;
        file.read_to_end(&mut bytes).await.map_err(io_status)?;
        if bytes.len() as u64 != length {
            return Err(404);
        }
        Body::Bytes(bytes)
    } else {
        Body::File(file, length)
    };
    let mut headers = vec![
        ("Content-Type", content_type(&path).to_owned()),
        ("Content-Length", length.to_string()),
    ];
    if let Some(modified) = modified {
        headers.push(("Last-Modified", http_date(modified)));
    }
    Ok(Response {
        status: 200,
        headers,
        body,
    })
}

/// Whether the preconditions of `head` make the answer 304 (RFC 9110 §13.2.2).
///
/// The server sends no entity tags, so `If-None-Match` matches only `*`, and
/// when present it overrides `If-Modified-Since`. A date that is invalid or
/// given more than once is ignored; `modified` is in whole seconds.
fn not_modified(head: &RequestHead, modified: Option<u64>) -> bool {
    if head.values("if-none-match").next().is_some() {
        return head.tokens("if-none-match").any(|t| t == "*");
    }
    let since = head.single("if-modified-since").and_then(parse_http_date);
    matches!((modified, since), (Some(m), Some(s)) if m <= s)
}

/// The relative file path a request target names: origin-form `/path?query`
/// or absolute-form `http://host/path`, percent-decoded. 400 for a malformed
/// target or an encoded NUL, 404 for any `..` segment.
fn target_path(target: &str) -> Result<PathBuf, u16> {
    let path = if target.starts_with('/') {
        target
    } else {
        let (scheme, rest) = target.split_once("://").ok_or(400u16)?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(400);
        }
        match rest.find(['/', '?', '#']).unwrap_or(rest.len()) {
            0 => return Err(400),
            authority => &rest[authority..],
        }
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut relative = PathBuf::new();
    for segment in percent_decode(path)?.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => return Err(404),
            name => relative.push(OsStr::from_bytes(name)),
        }
    }
    Ok(relative)
}

/// Decodes `%XX` escapes; 400 for a broken escape or a NUL byte.
fn percent_decode(s: &str) -> Result<Vec<u8>, u16> {
    let hex = |digit: Option<u8>| digit.and_then(|d| char::from(d).to_digit(16)).ok_or(400u16);
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(byte) = bytes.next() {
        let byte = match byte {
            b'%' => (hex(bytes.next())? * 16 + hex(bytes.next())?) as u8,
            other => other,
        };
        if byte == 0 {
            return Err(400);
        }
        out.push(byte);
    }
    Ok(out)
}

/// Opens the file `relative` names under the canonical `root`, or the
/// `index.html` of a directory: the path as named (for its type), the file
/// and its metadata. 403 for what resolves outside `root` (a symbolic link)
/// and for what is neither a regular file nor a directory (a FIFO, device
/// or socket), 404 for a directory without `index.html`.
///
/// Nothing but a regular file is opened: the type is checked before the
/// open, the open does not wait (`O_NONBLOCK`, so a FIFO swapped in
/// meanwhile cannot hang it) and the type is checked again on the open file.
async fn open(
    root: &Path,
    relative: &Path,
) -> Result<(PathBuf, tokio::fs::File, std::fs::Metadata), u16> {
    let mut path = root.join(relative);
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    let real = tokio::fs::canonicalize(&path).await.map_err(io_status)?;
    if !real.starts_with(root) {
        return Err(403);
    }
    let kind = tokio::fs::symlink_metadata(&real)
        .await
        .map_err(io_status)?;
    regular(&kind)?;
    let file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&real)
        .await
        .map_err(io_status)?;
    let meta = file.metadata().await.map_err(io_status)?;
    regular(&meta)?;
    Ok((path, file, meta))
}

/// `Ok` for a regular file, 404 for a directory, 403 for anything else.
fn regular(meta: &std::fs::Metadata) -> Result<(), u16> {
    match meta.file_type() {
        t if t.is_file() => Ok(()),
        t if t.is_dir() => Err(404),
        _ => Err(403),
    }
}

/// The status for a file that cannot be read: 403 if not allowed, else 404.
fn io_status(error: io::Error) -> u16 {
    match error.kind() {
        io::ErrorKind::PermissionDenied => 403,
        _ => 404,
    }
}

/// The media type of a file, from its extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The reason phrase of each status the server sends.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Full weekday names, Monday first; the short ones are their first three letters.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
/// Month abbreviations, January first.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Whole seconds since the Unix epoch (0 before it).
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Index into [`WEEKDAYS`] of a day counted from 1970-01-01, a Thursday.
fn weekday(days: i64) -> usize {
    (days + 3).rem_euclid(7) as usize
}

/// Year, month (1-12) and day (1-31) of a day counted from 1970-01-01
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (era * 400 + yoe + i64::from(month <= 2), month, day)
}

/// The day, counted from 1970-01-01, of a date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch as an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let time = secs % 86_400;
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        &WEEKDAYS[weekday(days)][..3],
        MONTHS[month as usize - 1],
        time / 3600,
        time / 60 % 60,
        time % 60,
    )
}

/// Parses an HTTP-date in any of its three forms (RFC 9110 §5.6.7) into
/// seconds since the epoch: IMF-fixdate, RFC 850 (a two-digit year means the
/// one no more than 50 years ahead) and asctime. `None` for anything invalid,
/// a wrong weekday included.
fn parse_http_date(text: &str) -> Option<u64> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let (weekday_name, day, month, year, time) = match fields[..] {
        [weekday, day, month, year, time, "GMT"] => (
            weekday.strip_suffix(',')?,
            number(day, 2)?,
            month,
            i64::from(number(year, 4)?),
            time,
        ),
        [weekday, date, time, "GMT"] => {
            let [day, month, year] = date.split('-').collect::<Vec<_>>()[..] else {
                return None;
            };
            let year = full_year(number(year, 2)?, unix_secs(SystemTime::now()));
            (
                weekday.strip_suffix(',')?,
                number(day, 2)?,
                month,
                year,
                time,
            )
        }
        [weekday, month, day, time, year] => (
            weekday,
            number(day, 1).or_else(|| number(day, 2))?,
            month,
            i64::from(number(year, 4)?),
            time,
        ),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let [h, m, s] = time.split(':').collect::<Vec<_>>()[..] else {
        return None;
    };
    let (h, m, s) = (number(h, 2)?, number(m, 2)?, number(s, 2)?);
    let days = days_from_civil(year, month, day);
    let name = WEEKDAYS[weekday(days)];
    let valid = civil_from_days(days) == (year, month, day)
        && (weekday_name == name || weekday_name == &name[..3])
        && h < 24
        && m < 60
        && s <= 60;
    (valid && days >= 0).then(|| days as u64 * 86_400 + u64::from(h * 3600 + m * 60 + s))
}

/// `text` as a number if it is exactly `digits` ASCII digits.
fn number(text: &str, digits: usize) -> Option<u32> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// The year a two-digit RFC 850 year means at time `now`: the one with those
/// last digits that is at most 50 years ahead (RFC 9110 §5.6.7).
fn full_year(two_digits: u32, now: u64) -> i64 {
    let (this_year, ..) = civil_from_days((now / 86_400) as i64);
    let mut year = this_year - this_year % 100 + i64::from(two_digits);
    if year > this_year + 50 {
        year -= 100;
    } else if year + 100 <= this_year + 50 {
        year += 100;
    }
    year
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;
    use tempfile::TempDir;
    use tokio::process::Command;
    use tokio::task::JoinHandle;

    const INDEX: &[u8] = b"<!DOCTYPE html>\n<title>netgrade</title><p>hello</p>\n";
    const PAGE: &[u8] = b"a page in a folder\n";
    /// 1994-11-06 08:49:37 UTC, the RFC's example date: index.html's mtime.
    const OLD: u64 = 784_111_777;
    const OLD_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    fn binary() -> Vec<u8> {
        (0..=255u8).cycle().take(256 * 300).collect()
    }

    /// A running server over a fresh directory; stopped when dropped.
    struct Site {
        root: TempDir,
        _outside: TempDir,
        addr: SocketAddr,
        rec: Recorder,
        task: JoinHandle<()>,
    }

    impl Drop for Site {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Site {
        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn trace(&self) -> Trace {
            self.rec.snapshot()
        }

        /// `(conn, raw)` of every recorded request.
        fn requests(&self) -> Vec<(u32, Vec<u8>)> {
            self.trace()
                .events
                .into_iter()
                .filter_map(|e| match e.kind {
                    EventKind::Request { conn, raw, .. } => Some((conn, raw)),
                    _ => None,
                })
                .collect()
        }

        /// `(conn, status, body_len)` of every recorded response.
        fn responses(&self) -> Vec<(u32, u16, u64)> {
            self.trace()
                .events
                .into_iter()
                .filter_map(|e| match e.kind {
                    EventKind::Response {
                        conn,
                        status,
                        body_len,
                        ..
                    } => Some((conn, status, body_len)),
                    _ => None,
                })
                .collect()
        }
    }

    /// Serves index.html (mtime [`OLD`]), data.bin, sub/page.txt, an empty
    /// folder and a symbolic link to a file outside the root.
    async fn site(tune: impl FnOnce(&mut HttpConfig)) -> Site {
        let root = TempDir::new().unwrap();
        let outside = TempDir::new().unwrap();
        let dir = root.path();
        std::fs::write(dir.join("index.html"), INDEX).unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.join("index.html"))
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(OLD))
            .unwrap();
        std::fs::write(dir.join("data.bin"), binary()).unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("empty")).unwrap();
        std::fs::write(dir.join("sub/page.txt"), PAGE).unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.join("escape.txt"))
            .unwrap();
        let mut config = HttpConfig::new("web", dir);
        tune(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = Recorder::new();
        let task = tokio::spawn(run(listener, config, rec.clone()));
        Site {
            root,
            _outside: outside,
            addr,
            rec,
            task,
        }
    }

    /// Sites are chosen by the request's host (curl through it as a proxy
    /// sends the absolute form), else by who has the path; POST is echoed.
    #[tokio::test]
    async fn sites_are_chosen_by_host_and_posts_echoed() {
        let root = TempDir::new().unwrap();
        for (path, text) in [
            ("www.example.com/index.html", "example\n"),
            ("gaia.cs.umass.edu/index.html", "gaia\n"),
            ("gaia.cs.umass.edu/only.txt", "only at gaia\n"),
        ] {
            let path = root.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let config = HttpConfig {
            sites: true,
            ..HttpConfig::new("origin", root.path())
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(run(listener, config, Recorder::new()));
        let url = |p: &str| format!("http://{addr}{p}");
        let get = |args: Vec<String>| async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            command("curl", &[&["-s", "--noproxy", ""][..], &args].concat()).await
        };
        let host = |h: &str, p: &str| vec!["-H".into(), format!("Host: {h}"), url(p)];
        assert_eq!(
            get(host("www.example.com", "/index.html")).await,
            "example\n"
        );
        assert_eq!(
            get(host("GAIA.cs.umass.edu:80", "/index.html")).await,
            "gaia\n"
        );
        let proxied = vec![
            "-x".into(),
            format!("http://{addr}"),
            "http://www.example.com/index.html".into(),
        ];
        assert_eq!(get(proxied).await, "example\n");
        // An unknown host: the first site, in name order, that has the path.
        assert_eq!(
            get(host("example.com", "/only.txt")).await,
            "only at gaia\n"
        );
        assert_eq!(get(host("example.com", "/index.html")).await, "gaia\n");
        let missing = vec![
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
        ];
        let missing = [missing, host("www.example.com", "/only.txt")].concat();
        assert_eq!(get(missing).await, "404");
        let post = vec!["-d".into(), "name=ada".into(), url("/form")];
        assert_eq!(get(post).await, "POST /form: 8 bytes\nname=ada");
        task.abort();
    }

    /// Runs `program` with `args` (10 s at most); its standard output.
    async fn command(program: &str, args: &[&str]) -> String {
        let output = timeout(
            Duration::from_secs(10),
            Command::new(program).args(args).kill_on_drop(true).output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Sends `request` on a new connection and reads until the server closes (5 s at most).
    async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut response = Vec::new();
        timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
            .await
            .expect("the server closes the connection")
            .unwrap();
        response
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    #[tokio::test]
    async fn curl_gets_files_byte_for_byte_on_one_connection() {
        let site = site(|_| {}).await;
        let out = site.root.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (a, b) = (out.join("a"), out.join("b"));
        let stdout = command(
            "curl",
            &[
                "-s",
                "-w",
                "%{http_code} %{num_connects}\\n",
                "-o",
                a.to_str().unwrap(),
                "-o",
                b.to_str().unwrap(),
                &site.url("/data.bin"),
                &site.url("/sub/page.txt?x=1"),
            ],
        )
        .await;
        assert_eq!(stdout, "200 1\n200 0\n");
        assert_eq!(std::fs::read(a).unwrap(), binary());
        assert_eq!(std::fs::read(b).unwrap(), PAGE);
        let requests = site.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|(conn, _)| *conn == 1));
        assert!(text(&requests[0].1).starts_with("GET /data.bin HTTP/1.1\r\n"));
        assert!(text(&requests[1].1).ends_with("\r\n\r\n"));
        assert_eq!(
            site.responses(),
            vec![(1, 200, binary().len() as u64), (1, 200, PAGE.len() as u64)]
        );
    }

    #[tokio::test]
    async fn curl_head_missing_and_conditional_get() {
        let site = site(|_| {}).await;
        let head = command("curl", &["-s", "-I", &site.url("/")]).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        for field in [
            format!("Content-Length: {}\r\n", INDEX.len()),
            "Content-Type: text/html; charset=utf-8\r\n".into(),
            format!("Last-Modified: {OLD_DATE}\r\n"),
            "Server: netgrade\r\n".into(),
        ] {
            assert!(head.contains(&field), "{field:?} in {head}");
        }
        let code = async |args: &[&str], path: &str| {
            let url = site.url(path);
            let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
            all.extend_from_slice(args);
            all.push(&url);
            command("curl", &all).await
        };
        assert_eq!(code(&[], "/missing.html").await, "404");
        assert_eq!(code(&[], "/empty/").await, "404");
        let ims = "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(code(&["-H", ims], "/index.html").await, "304");
        let earlier = "If-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT";
        assert_eq!(code(&["-H", earlier], "/index.html").await, "200");
        assert_eq!(code(&["-z", OLD_DATE], "/index.html").await, "304");
        assert_eq!(code(&["-z", "1 Jan 1990"], "/index.html").await, "200");
        let invalid = "If-Modified-Since: Sun, 31 Feb 2099 08:49:37 GMT";
        assert_eq!(code(&["-H", invalid], "/index.html").await, "200");
        let statuses: Vec<u16> = site.responses().iter().map(|r| r.1).collect();
        assert_eq!(statuses, [200, 404, 404, 304, 200, 304, 200, 200]);
        assert_eq!(site.responses()[0].2, 0, "HEAD sends no body");
        assert_eq!(site.responses()[3].2, 0, "304 sends no body");
    }

    #[tokio::test]
    async fn curl_http10_closes_unless_asked_to_keep_alive() {
        let site = site(|_| {}).await;
        let head = command(
            "curl",
            &[
                "-s",
                "--http1.0",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &site.url("/"),
            ],
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Connection: close\r\n"), "{head}");
        let stdout = command(
            "curl",
            &[
                "-s",
                "--http1.0",
                "-H",
                "Connection: keep-alive",
                "-w",
                "%{num_connects}\\n",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                &site.url("/"),
                &site.url("/data.bin"),
            ],
        )
        .await;
        assert_eq!(stdout, "1\n0\n");
        let requests = site.requests();
        assert!(text(&requests[0].1).starts_with("GET / HTTP/1.0\r\n"));
        let conns: Vec<u32> = requests.iter().map(|r| r.0).collect();
        assert_eq!(conns, [1, 2, 2]);
        let heads: Vec<String> = site
            .trace()
            .events
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Response { head, .. } => Some(text(&head)),
                _ => None,
            })
            .collect();
        assert!(
            heads[1].ends_with("\r\nConnection: keep-alive\r\n\r\n"),
            "{}",
            heads[1]
        );
    }

    #[tokio::test]
    async fn python_http_client_keeps_one_connection() {
        let site = site(|_| {}).await;
        let script = format!(
            "import http.client\n\
             c = http.client.HTTPConnection('127.0.0.1', {port}, timeout=5)\n\
             c.request('GET', '/index.html'); r = c.getresponse(); a = r.read()\n\
             c.request('GET', '/data.bin'); r2 = c.getresponse(); b = r2.read()\n\
             c.request('GET', '/index.html', headers={{'If-Modified-Since': r.getheader('Last-Modified')}})\n\
             r3 = c.getresponse(); r3.read()\n\
             c.request('HEAD', '/sub/page.txt'); r4 = c.getresponse(); r4.read()\n\
             print(r.status, a == b{index:?}, r2.status, b == bytes(range(256)) * 300, r3.status, \
             r4.status, r4.getheader('Content-Length'), r4.getheader('Content-Type'))\n",
            port = site.addr.port(),
            index = text(INDEX),
        );
        let stdout = command("python3", &["-c", &script]).await;
        assert_eq!(
            stdout,
            format!(
                "200 True 200 True 304 200 {} text/plain; charset=utf-8\n",
                PAGE.len()
            )
        );
        let responses = site.responses();
        assert_eq!(responses.len(), 4);
        assert!(responses.iter().all(|r| r.0 == 1), "{responses:?}");
    }

    #[tokio::test]
    async fn refuses_what_it_must_and_never_leaves_the_root() {
        let site = site(|_| {}).await;
        let cases: &[(&str, &str)] = &[
            (
                "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
                "505 HTTP Version Not Supported",
            ),
            (
                "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                "505 HTTP Version Not Supported",
            ),
            ("\x00\x01\x02 garbage\r\n\r\n", "400 Bad Request"),
            ("GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                "400 Bad Request",
            ),
            ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400 Bad Request"),
            ("GET /../etc/passwd HTTP/1.0\r\n\r\n", "404 Not Found"),
            (
                "GET /%2e%2e/%2E%2E/etc/passwd HTTP/1.0\r\n\r\n",
                "404 Not Found",
            ),
            ("GET /sub/..%2f..%2fetc HTTP/1.0\r\n\r\n", "404 Not Found"),
            ("GET /escape.txt HTTP/1.0\r\n\r\n", "403 Forbidden"),
            ("GET /a%00b HTTP/1.0\r\n\r\n", "400 Bad Request"),
            ("GET /%zz HTTP/1.0\r\n\r\n", "400 Bad Request"),
            ("GET index.html HTTP/1.0\r\n\r\n", "400 Bad Request"),
            ("GET http://x/sub/page%2Etxt HTTP/1.0\r\n\r\n", "200 OK"),
            ("DELETE / HTTP/1.0\r\n\r\n", "501 Not Implemented"),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                "411 Length Required",
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n",
                "400 Bad Request",
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n",
                "413 Content Too Large",
            ),
        ];
        for (request, status) in cases {
            let response = text(&exchange(site.addr, request.as_bytes()).await);
            assert!(
                response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{request:?} got {response:?}"
            );
            let (head, body) = response.split_once("\r\n\r\n").unwrap();
            assert!(head.contains("Connection: close"), "{request:?} {head:?}");
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap();
            assert_eq!(length, body.len().to_string(), "{request:?}");
        }
        let allow = text(&exchange(site.addr, b"DELETE / HTTP/1.0\r\n\r\n").await);
        assert!(allow.contains("\r\nAllow: GET, HEAD\r\n"), "{allow}");
        let head = exchange(site.addr, b"HEAD /nope HTTP/1.0\r\n\r\n").await;
        assert!(text(&head).ends_with("\r\n\r\n"), "no body for HEAD");
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: y\r\n")).collect();
        let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
        let response = text(&exchange(site.addr, many.as_bytes()).await);
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
        let requests = site.requests();
        assert_eq!(requests.len(), cases.len() + 3);
        assert_eq!(requests[2].1, b"\x00\x01\x02 garbage\r\n\r\n");
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_in_order_and_bodies_skipped() {
        let site = site(|_| {}).await;
        let requests = "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
                        GET /sub/page.txt HTTP/1.1\r\nHost: x\r\n\r\n\
                        HEAD /data.bin HTTP/1.1\r\nHost: x\r\n\r\n\
                        GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let response = text(&exchange(site.addr, requests.as_bytes()).await);
        let statuses: Vec<&str> = response
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &response[i + 9..i + 12])
            .collect();
        assert_eq!(statuses, ["501", "200", "200", "200"], "{response}");
        assert!(response.ends_with(&text(INDEX)));
        let recorded = site.requests();
        assert_eq!(
            recorded[0].1,
            b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        );
        assert!(text(&recorded[3].1).starts_with("GET / HTTP/1.1\r\n"));
        let responses = site.responses();
        assert_eq!(responses[2], (1, 200, 0));
        assert_eq!(responses[3], (1, 200, INDEX.len() as u64));
    }

    #[tokio::test]
    async fn survives_a_megabyte_header_line() {
        let site = site(|_| {}).await;
        let stream = TcpStream::connect(site.addr).await.unwrap();
        let (mut rx, mut tx) = stream.into_split();
        let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        request.resize(request.len() + 1_000_000, b'a');
        request.extend_from_slice(b"\r\n\r\n");
        let writer = tokio::spawn(async move { tx.write_all(&request).await });
        let mut response = Vec::new();
        timeout(Duration::from_secs(5), rx.read_to_end(&mut response))
            .await
            .expect("closed by the server")
            .unwrap();
        let response = text(&response);
        assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
        let _ = writer.await;
        let next = exchange(site.addr, b"GET / HTTP/1.0\r\n\r\n").await;
        assert!(text(&next).starts_with("HTTP/1.1 200 OK\r\n"));
        let recorded = site.requests();
        assert!(text(&recorded[0].1).starts_with("GET / HTTP/1.1\r\nHost: x\r\nX-Big: aaa"));
        assert!((MAX_HEAD..=MAX_RECORDED_REQUEST).contains(&recorded[0].1.len()));
        assert_eq!(recorded[1].0, 2);
    }

    #[tokio::test]
    async fn idle_and_slow_connections_end_by_their_deadlines() {
        let short = Duration::from_millis(300);
        let site = site(|c| {
            c.idle_timeout = short;
            c.request_timeout = short;
        })
        .await;
        // Never sends: closed quietly once idle.
        let start = Instant::now();
        assert_eq!(exchange(site.addr, b"").await, b"");
        assert!(start.elapsed() >= short);
        // Kept alive after a response, then closed once idle.
        let start = Instant::now();
        let response = exchange(site.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(text(&response).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(start.elapsed() >= short);
        // Half a request: 408 once the request deadline passes.
        let response = exchange(site.addr, b"GET / HTTP/1.1\r\nHost:").await;
        assert!(text(&response).starts_with("HTTP/1.1 408 "));
        // A body that never comes.
        let partial = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
        let response = exchange(site.addr, partial).await;
        assert!(text(&response).starts_with("HTTP/1.1 408 "));
        assert_eq!(site.requests()[2].1, partial);
    }

    #[tokio::test]
    async fn every_response_waits_its_seeded_latency() {
        let delay = Duration::from_millis(150);
        let site = site(|c| {
            c.latency_min = delay;
            c.latency_max = delay;
        })
        .await;
        let start = Instant::now();
        let response = exchange(site.addr, b"GET /missing HTTP/1.0\r\n\r\n").await;
        assert!(start.elapsed() >= delay);
        assert!(text(&response).starts_with("HTTP/1.1 404 "));
        let events = site.trace().events;
        assert_eq!(events.len(), 2);
        assert!(events[1].at - events[0].at >= delay);
    }

    /// Reads from `stream` until `pattern` has arrived (5 s at most); all read.
    async fn read_until(stream: &mut TcpStream, pattern: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while super::super::fuzz::bytes::find(&got, pattern).is_none() {
            let n = timeout(Duration::from_secs(5), stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("no {:?} in {:?}", text(pattern), text(&got)))
                .unwrap();
            assert!(n > 0, "closed before {:?}: {:?}", text(pattern), text(&got));
            got.extend_from_slice(&chunk[..n]);
        }
        got
    }

    #[tokio::test]
    async fn fifos_sockets_and_folders_in_the_root_are_refused_at_once() {
        let site = site(|_| {}).await;
        let dir = site.root.path();
        nix::unistd::mkfifo(&dir.join("pipe.html"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::create_dir(dir.join("piped")).unwrap();
        nix::unistd::mkfifo(&dir.join("piped/index.html"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("sock.txt")).unwrap();
        std::os::unix::fs::symlink(dir.join("pipe.html"), dir.join("link.html")).unwrap();
        for (path, status) in [
            ("/pipe.html", "403 Forbidden"),
            ("/piped/", "403 Forbidden"),
            ("/sock.txt", "403 Forbidden"),
            ("/link.html", "403 Forbidden"),
            ("/empty/", "404 Not Found"),
            ("/index.html", "200 OK"),
        ] {
            for method in ["GET", "HEAD"] {
                let request = format!("{method} {path} HTTP/1.0\r\n\r\n");
                let response = text(&exchange(site.addr, request.as_bytes()).await);
                assert!(
                    response.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                    "{request:?} got {response:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn expect_100_continue_is_answered_before_the_body() {
        let site = site(|_| {}).await;
        let head = "POST /form HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
                    Content-Length: 5\r\n\r\n";
        let mut stream = TcpStream::connect(site.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server must speak first: the client sends nothing more until it does.
        let interim = read_until(&mut stream, b"\r\n\r\n").await;
        assert_eq!(text(&interim), "HTTP/1.1 100 Continue\r\n\r\n");
        stream
            .write_all(b"helloGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        let rest = text(&rest);
        assert!(rest.starts_with("HTTP/1.1 501 "), "{rest}");
        assert!(rest.contains("</html>\nHTTP/1.1 200 OK\r\n"), "{rest}");
        assert_eq!(site.requests()[0].1, format!("{head}hello").as_bytes());
        assert_eq!(
            site.responses().len(),
            2,
            "the interim response is not recorded"
        );
        // Refused at once, and no 100 for HTTP/1.0 or a body already sent.
        for request in [
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n",
            "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
            "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\nhi",
        ] {
            let response = text(&exchange(site.addr, request.as_bytes()).await);
            assert!(!response.contains(" 100 "), "{request:?} got {response:?}");
        }
    }

    #[tokio::test]
    async fn curl_waits_for_100_continue_and_a_long_body_is_kept_short() {
        let site = site(|_| {}).await;
        let upload = site.root.path().join("upload.bin");
        std::fs::write(&upload, vec![b'u'; 200_000]).unwrap();
        let data = format!("@{}", upload.display());
        let output = timeout(
            Duration::from_secs(20),
            Command::new("curl")
                .args([
                    "-sv",
                    "--expect100-timeout",
                    "15",
                    "-H",
                    "Expect: 100-continue",
                ])
                .args([
                    "--data-binary",
                    &data,
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg(site.url("/form"))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("curl ends")
        .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(text(&output.stdout), "501", "{stderr}");
        assert!(stderr.contains("< HTTP/1.1 100 Continue"), "{stderr}");
        let raw = &site.requests()[0].1;
        let head_len = super::super::fuzz::bytes::find(raw, b"\r\n\r\n").unwrap() + 4;
        assert_eq!(raw.len(), head_len + KEPT_BODY, "the body is cut");
    }

    #[tokio::test]
    async fn a_long_body_is_discarded_and_the_next_request_answered() {
        let site = site(|_| {}).await;
        let mut request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n".to_vec();
        let head_len = request.len();
        request.resize(head_len + 900_000, b'b');
        request.extend_from_slice(
            b"GET /sub/page.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let stream = TcpStream::connect(site.addr).await.unwrap();
        let (mut rx, mut tx) = stream.into_split();
        let writer = tokio::spawn(async move { tx.write_all(&request).await });
        let mut response = Vec::new();
        timeout(Duration::from_secs(10), rx.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap().unwrap();
        let response = text(&response);
        assert!(response.starts_with("HTTP/1.1 501 "), "{response}");
        assert!(response.ends_with(&text(PAGE)), "{response}");
        let requests = site.requests();
        assert_eq!(requests[0].1.len(), head_len + KEPT_BODY);
        assert!(text(&requests[1].1).starts_with("GET /sub/page.txt "));
    }

    #[tokio::test]
    async fn recording_stops_after_its_limit_and_says_so() {
        let site = site(|_| {}).await;
        let total = MAX_RECORDED_REQUESTS as usize + 5;
        let mut requests = "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n".repeat(total - 1);
        requests.push_str("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let stream = TcpStream::connect(site.addr).await.unwrap();
        let (mut rx, mut tx) = stream.into_split();
        let writer = tokio::spawn(async move { tx.write_all(requests.as_bytes()).await });
        let mut response = Vec::new();
        timeout(Duration::from_secs(30), rx.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        writer.await.unwrap().unwrap();
        let response = text(&response);
        assert_eq!(response.matches("HTTP/1.1 404 ").count(), total - 1);
        assert!(
            response.ends_with(&text(INDEX)),
            "every request is answered"
        );
        assert_eq!(site.requests().len(), MAX_RECORDED_REQUESTS as usize);
        assert_eq!(site.responses().len(), MAX_RECORDED_REQUESTS as usize);
        let capped: Vec<u32> = site
            .trace()
            .events
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::RecordingCapped { limit, .. } => Some(limit),
                _ => None,
            })
            .collect();
        assert_eq!(capped, [MAX_RECORDED_REQUESTS], "noted once");
    }

    #[tokio::test]
    async fn connections_past_the_limit_get_503_until_one_ends() {
        let site = site(|c| c.idle_timeout = Duration::from_secs(60)).await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut stream = TcpStream::connect(site.addr).await.unwrap();
            // A request answered proves the server has taken the connection.
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            read_until(&mut stream, INDEX).await;
            held.push(stream);
        }
        let busy = text(&exchange(site.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await);
        assert!(
            busy.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{busy}"
        );
        assert!(busy.contains("\r\nConnection: close\r\n"), "{busy}");
        assert!(busy.contains("\r\nRetry-After: 1\r\n"), "{busy}");
        let statuses: Vec<u16> = site.responses().iter().map(|r| r.1).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 1);
        assert_eq!(
            site.responses().last().unwrap().0,
            MAX_CONNECTIONS as u32 + 1
        );
        held.truncate(MAX_CONNECTIONS - 1);
        // Once the server has seen one close, a new client is served again.
        let mut tries = 0;
        loop {
            let response = text(&exchange(site.addr, b"GET / HTTP/1.0\r\n\r\n").await);
            if response.starts_with("HTTP/1.1 200 OK\r\n") {
                break;
            }
            assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
            tries += 1;
            assert!(tries < 500, "still busy after a connection closed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The files whose panics a fuzz test counts.
    const PANIC_FILES: &[&str] = &["servers/http.rs"];

    /// The inputs the HTTP fuzz tests damage.
    const FUZZ_SEEDS: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /sub/page.txt?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"HEAD /data.bin HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
        b"GET http://x/index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    ];

    /// Sends one damaged input on its own connection, closes the sending
    /// side and reads whatever comes back; false if the server neither
    /// answered nor closed within 10 s.
    async fn fuzz_one(addr: SocketAddr, input: &[u8], cuts: &[usize]) -> bool {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return false;
        };
        let mut from = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            if stream.write_all(&input[from..cut]).await.is_err() {
                break;
            }
            from = cut;
            tokio::task::yield_now().await;
        }
        let _ = stream.shutdown().await;
        let mut sink = vec![0u8; 64 * 1024];
        let drained = async { while matches!(stream.read(&mut sink).await, Ok(1..)) {} };
        let ended = timeout(Duration::from_secs(10), drained).await.is_ok();
        // No TIME_WAIT left behind: a campaign opens a million connections.
        let reset = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &reset);
        ended
    }

    /// Whether a correct client still gets data.bin byte for byte, twice on
    /// one connection.
    async fn correct_client_served(addr: SocketAddr) -> bool {
        let request = b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n\
                        GET /data.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return false;
        };
        let mut response = Vec::new();
        let exchanged = async {
            stream.write_all(request).await?;
            stream.read_to_end(&mut response).await
        };
        if !matches!(timeout(Duration::from_secs(10), exchanged).await, Ok(Ok(_))) {
            return false;
        }
        let body = binary();
        let mut rest = &response[..];
        for _ in 0..2 {
            let Some(end) = super::super::fuzz::bytes::find(rest, b"\r\n\r\n") else {
                return false;
            };
            let (head, tail) = rest.split_at(end + 4);
            let length = format!("\r\nContent-Length: {}\r\n", body.len());
            if !head.starts_with(b"HTTP/1.1 200 OK\r\n")
                || super::super::fuzz::bytes::find(head, length.as_bytes()).is_none()
                || !tail.starts_with(&body)
            {
                return false;
            }
            rest = &tail[body.len()..];
        }
        rest.is_empty()
    }

    /// Sends `inputs` damaged inputs from `seed`, eight connections at a
    /// time, checking a correct client every 256; the panics and failed
    /// checks (a hang or a wrong answer) seen.
    async fn fuzz_http(seed: u64, inputs: u64) -> (u64, u64) {
        let panics = super::super::fuzz::bytes::server_panics(PANIC_FILES);
        let site = site(|c| {
            c.idle_timeout = Duration::from_secs(2);
            c.request_timeout = Duration::from_secs(2);
        })
        .await;
        let (workers, batch) = (8u64, 256u64);
        let mut failed = 0;
        let mut done = 0;
        while done < inputs {
            let n = batch.min(inputs - done);
            let mut set = JoinSet::new();
            for w in 0..workers {
                let addr = site.addr;
                let first = done;
                set.spawn(async move {
                    let mut m = super::super::fuzz::bytes::Mutator::new(seed ^ (first << 8) ^ w);
                    let mut failed = 0;
                    for _ in (w..n).step_by(workers as usize) {
                        let input = m.input(FUZZ_SEEDS);
                        let cuts = m.splits(input.len());
                        failed += u64::from(!fuzz_one(addr, &input, &cuts).await);
                    }
                    failed
                });
            }
            failed += set.join_all().await.into_iter().sum::<u64>();
            failed += u64::from(!correct_client_served(site.addr).await);
            done += n;
        }
        assert!(!site.task.is_finished(), "the server ended");
        (
            super::super::fuzz::bytes::server_panics(PANIC_FILES) - panics,
            failed,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fuzzed_requests_leave_the_server_answering_correctly() {
        assert_eq!(fuzz_http(0x6e67_7264, 600).await, (0, 0));
    }

    /// A long campaign: `NETGRADE_FUZZ_INPUTS` inputs (a million by default).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a long fuzz campaign; bench/fuzz.sh runs it"]
    async fn fuzz_campaign_http() {
        let inputs = super::super::fuzz::campaign_inputs();
        let before = super::super::fuzz::rss_kib().0;
        let (panics, failed) = fuzz_http(0x6874_7470, inputs).await;
        let after = super::super::fuzz::rss_kib().0;
        println!(
            "fuzz_campaign_http: {inputs} inputs, {} crashes ({panics} panics, {failed} failed \
             correct-client checks or hangs), RSS {} MiB before, {} MiB after",
            panics + failed,
            before / 1024,
            after / 1024
        );
        assert_eq!((panics, failed), (0, 0));
    }

    #[test]
    fn latency_is_seeded_per_response_index() {
        let mut config = HttpConfig::new("web", "/srv");
        config.latency_min = Duration::from_millis(20);
        config.latency_max = Duration::from_millis(300);
        config.seed = 9;
        let draws: Vec<Duration> = (1..=50).map(|i| latency(&config, i)).collect();
        assert_eq!(
            draws,
            (1..=50).map(|i| latency(&config, i)).collect::<Vec<_>>()
        );
        assert!(draws.iter().all(|d| (20..=300).contains(&d.as_millis())));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
        config.seed = 10;
        assert_ne!(
            draws,
            (1..=50).map(|i| latency(&config, i)).collect::<Vec<_>>()
        );
        assert_eq!(latency(&HttpConfig::new("web", "/srv"), 1), Duration::ZERO);
    }

    #[test]
    fn dates_in_all_three_forms() {
        assert_eq!(http_date(OLD), OLD_DATE);
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_825_600), "Tue, 29 Feb 2000 12:00:00 GMT");
        for secs in [0, OLD, 951_825_600, 4_102_444_799, 1_700_000_000] {
            assert_eq!(parse_http_date(&http_date(secs)), Some(secs));
        }
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(OLD));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(OLD));
        for invalid in [
            "",
            "yesterday",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Thu, 29 Feb 2001 00:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(invalid), None, "{invalid:?}");
        }
        let in_2026 = 1_767_225_600;
        assert_eq!(full_year(94, in_2026), 1994);
        assert_eq!(full_year(26, in_2026), 2026);
        assert_eq!(full_year(76, in_2026), 2076);
        assert_eq!(full_year(77, in_2026), 1977);
    }

    #[test]
    fn targets_map_to_relative_paths() {
        let ok = |t: &str| target_path(t).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(ok("/"), Ok(String::new()));
        assert_eq!(ok("/a/./b//c.txt?q=1#f"), Ok("a/b/c.txt".into()));
        assert_eq!(ok("/hello%20world.html"), Ok("hello world.html".into()));
        assert_eq!(ok("http://example.com"), Ok(String::new()));
        assert_eq!(ok("HTTP://example.com:8080/x?y"), Ok("x".into()));
        assert_eq!(ok("/a/../b"), Err(404));
        assert_eq!(ok("/%2e%2E"), Err(404));
        assert_eq!(ok("/%00"), Err(400));
        assert_eq!(ok("/%4"), Err(400));
        assert_eq!(ok("*"), Err(400));
        assert_eq!(ok("ftp://x/y"), Err(400));
        assert_eq!(ok("http:///y"), Err(400));
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("a/INDEX.HTM")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("notes.txt")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("app.js")), "text/javascript");
        assert_eq!(content_type(Path::new("photo.jpeg")), "image/jpeg");
        assert_eq!(
            content_type(Path::new("Makefile")),
            "application/octet-stream"
        );
    }
}
