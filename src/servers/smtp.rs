//! The SMTP server: the reference mail server of the mail-client lab.
//!
//! It speaks RFC 5321 with the 8BITMIME, SIZE, ENHANCEDSTATUSCODES and AUTH
//! extensions (and PIPELINING when configured), accepts every well-formed
//! message and delivers it nowhere: each is recorded as an
//! [`EventKind::Delivered`]. Every line in either direction is recorded as an
//! [`EventKind::Line`], and whatever a client does that the RFC does not
//! allow — talking before the greeting, bare LF line endings, a bare-LF dot,
//! overlong lines, commands sent before the reply to the previous one — as an
//! [`EventKind::Deviation`], whether the server tolerated it or refused it.
//! Configured replies can replace the normal ones to see how a client copes
//! with errors. Every wait has a deadline and every buffer a cap, so a client
//! that sends garbage, floods or goes silent ends only its own session.
//!
//! With a certificate authority ([`Tls`]) it offers STARTTLS (RFC 3207) and
//! can serve implicit TLS (RFC 8314) on a second listener; the session is the
//! same either way, and the trace holds its decrypted lines, with an
//! [`EventKind::TlsStarted`] where TLS began. A handshake that fails ends the
//! session with an [`EventKind::TlsFailed`] that says why.
//!
//! Choices the RFC leaves open:
//! - `AUTH PLAIN` and `AUTH LOGIN` (RFC 4954) accept any credentials (the
//!   lab's optional part), with or without TLS; each login is recorded as an
//!   [`EventKind::Authenticated`]. No secret is ever recorded: the lines
//!   that carry credentials are recorded as readable text with the password
//!   hidden, and so is any line after an AUTH that could be one.
//! - After STARTTLS the session starts over (RFC 3207 §4.2); a client that
//!   goes on without a new EHLO is answered as if it had sent the one before,
//!   and the deviation (`no-ehlo-after-starttls`) recorded.
//! - `MAIL FROM: <a@b>` (a space after the colon, as the textbook's sample
//!   sessions write it) and bare addresses (`MAIL FROM:a@b`) are accepted and
//!   recorded as deviations (`space-after-colon`, `bare-address`).
//! - A message with a text line over 1000 octets, or larger than the SIZE
//!   advertised, is read to its lone dot and then refused (500 or 552).
//! - A line over its limit is recorded as its first octets (as many as the
//!   limit) and its line ending; its deviation gives its real length.
//! - Injection counts (`times`) are shared by all of a server's connections.
//! - MAIL takes the parameters of what the EHLO reply advertised (`SIZE=`,
//!   `BODY=7BIT` or `BODY=8BITMIME`) and `AUTH=` (RFC 4954 §5); any other
//!   MAIL or RCPT parameter, and any after HELO, gets 555 (§4.1.1.11).
//! - At most [`MAX_CONNECTIONS`] sessions at once; one more is answered
//!   `421 4.7.0` and closed (RFC 5321 §3.8). A server holds at most
//!   [`MAX_STORED`] octets of messages, being received or delivered into a
//!   run's trace, over all its connections; a message that does not fit gets
//!   452 and a `storage-full` deviation.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use super::diag::SockDiag;
use super::tls::{Conn, HandshakeError, RunCa};
use crate::trace::{Budget, Dir, EventKind, Recorder};

/// Longest command line, CRLF included (RFC 5321 §4.5.3.1.4).
const MAX_COMMAND_LINE: usize = 512;
/// Longest text line of a message, CRLF included (§4.5.3.1.6).
const MAX_TEXT_LINE: usize = 1000;
/// Largest message accepted, as advertised with SIZE.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// Most recipients of one message (the minimum §4.5.3.1.8 asks for).
const MAX_RECIPIENTS: usize = 100;
/// Lines and deviations recorded per connection; then one `RecordingCapped`.
const MAX_RECORDED_LINES: u32 = 50_000;
/// Message bytes one connection may deliver; beyond, messages get 452.
const MAX_DELIVERED: usize = 4 * MAX_MESSAGE;
/// Sessions served at once; a client that opens more is answered
/// `421 4.7.0 Too many connections` and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// Message bytes a server holds at once, being received or delivered into a
/// run's trace (however many connections bring them); also bounded by what
/// the trace has room for. Beyond, messages get 452.
pub const MAX_STORED: u64 = crate::trace::MAX_MESSAGE_BYTES;
/// Longest deviation detail, in octets of the offending bytes.
const MAX_DETAIL: usize = 300;
/// How much room each read makes in the connection's buffer.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that its last reply is not destroyed by a reset.
const LINGER: Duration = Duration::from_secs(1);
/// How long, in all, replies to a client that talked before the greeting
/// may wait for it to read the ones before (`Session::pace`).
const PACE_BUDGET: Duration = Duration::from_secs(2);
/// How often `Session::pace` asks whether the client has read.
const PACE_POLL: Duration = Duration::from_millis(1);
/// Commands of RFC 5321 and common extensions that this server refuses with
/// 502 (STARTTLS when it has no certificate authority or does not offer it).
const UNIMPLEMENTED: &[&str] = &[
    "STARTTLS", "EXPN", "TURN", "ETRN", "ATRN", "BDAT", "SEND", "SOML", "SAML",
];
/// Commands this server answers.
const KNOWN: &[&str] = &[
    "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "AUTH", "QUIT",
];
/// Longest user name recorded for a login, in characters.
const MAX_USER: usize = 100;

/// Settings of one SMTP server.
#[derive(Clone, Debug, PartialEq)]
pub struct SmtpConfig {
    /// Name in the trace.
    pub name: String,
    /// Host name in the greeting and the EHLO reply.
    pub hostname: String,
    /// Wait before sending the 220 greeting, to catch clients that talk first.
    pub greeting_delay: Duration,
    /// Answer command lines that end in a bare LF with 500, and end a message
    /// only on CRLF.CRLF (RFC 5321 §2.3.8, §4.1.1.4). Otherwise bare LF is
    /// tolerated; it is recorded as a deviation either way.
    pub strict_crlf: bool,
    /// Replies that replace the normal ones.
    pub inject: Vec<Injection>,
    /// Advertise PIPELINING (RFC 2920) in the EHLO reply.
    pub pipelining: bool,
    /// How long the server waits for each line before it sends 421 and closes.
    pub idle_timeout: Duration,
    /// How long the server waits, after QUIT and before its 221, to see
    /// whether the client closes without reading the reply.
    pub quit_watch: Duration,
    /// How long a session may last in all before the server sends 421 and closes.
    pub max_session: Duration,
    /// Offer STARTTLS in the EHLO reply (when the server has a certificate authority).
    pub starttls: bool,
}

impl SmtpConfig {
    /// A server named `name`, greeting as `netgrade.test` at once, tolerating
    /// bare LF, injecting nothing, without PIPELINING, with a 10 s idle
    /// timeout and 60 s sessions, offering STARTTLS when it can.
    pub fn new(name: impl Into<String>) -> Self {
        SmtpConfig {
            name: name.into(),
            hostname: "netgrade.test".into(),
            greeting_delay: Duration::ZERO,
            strict_crlf: false,
            inject: Vec::new(),
            pipelining: false,
            idle_timeout: Duration::from_secs(10),
            quit_watch: Duration::from_millis(200),
            max_session: Duration::from_secs(60),
            starttls: true,
        }
    }
}

/// A reply sent instead of the normal one; the command then has no effect
/// (a refused RCPT adds no recipient, a refused DATA starts no message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The command verb it answers, case-insensitive (`RCPT`), or `.` for the
    /// end of a message (the message is then not delivered).
    pub command: String,
    /// The reply line, without its ending (`550 5.1.1 No such user`). A 421
    /// reply also closes the connection.
    pub reply: String,
    /// How many times, counted over all of the server's connections; `None`: always.
    pub times: Option<u32>,
}

/// TLS for a server: the run's certificate authority, and the listener for
/// implicit TLS (SMTPS, RFC 8314) if there is one.
#[derive(Debug)]
pub struct Tls {
    /// Signs the certificate each connection presents.
    pub ca: Arc<RunCa>,
    /// Connections here start with the TLS handshake.
    pub implicit: Option<TcpListener>,
}

/// Serves `listener` (and the implicit-TLS listener of `tls`) until the task
/// is aborted, each connection as its own task; aborting this task aborts
/// them all. Connections of both listeners are numbered together from 1 in
/// the order they are accepted.
pub async fn run(listener: TcpListener, tls: Option<Tls>, config: SmtpConfig, recorder: Recorder) {
    let used = config.inject.iter().map(|_| AtomicU32::new(0)).collect();
    let (ca, implicit) = tls.map_or((None, None), |t| (Some(t.ca), t.implicit));
    let diag = SockDiag::beside(&listener).ok().map(Mutex::new);
    let room = recorder
        .room(Budget::Messages)
        .map_or(MAX_STORED, |r| r.min(MAX_STORED));
    let shared = Arc::new(Shared {
        config,
        recorder,
        used,
        ca,
        diag,
        storage: AtomicU64::new(room),
    });
    let mut sessions = JoinSet::new();
    let mut refusals = JoinSet::new();
    let mut count: u32 = 0;
    loop {
        let (stream, implicit) = tokio::select! {
            (stream, _) = super::accept(&listener) => (stream, false),
            (stream, _) = accept_if(implicit.as_ref()) => (stream, true),
        };
        while sessions.try_join_next().is_some() {}
        while refusals.try_join_next().is_some() {}
        count = count.saturating_add(1);
        if sessions.len() < MAX_CONNECTIONS {
            sessions.spawn(Session::new(shared.clone(), stream, count, implicit).serve());
        } else if refusals.len() < MAX_CONNECTIONS {
            refusals.spawn(refuse(shared.clone(), stream, count, implicit));
        } else {
            shared.end(count, End::ServerClosed);
        }
    }
}

/// Answers connection `id`, one too many, with 421 (RFC 5321 §3.8) and
/// closes it; one on the implicit-TLS port is closed at once.
async fn refuse(shared: Arc<Shared>, mut stream: TcpStream, id: u32, implicit: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if !implicit {
        let reply = format!(
            "421 4.7.0 {} Too many connections ({MAX_CONNECTIONS} at once), try again later\r\n",
            shared.config.hostname
        );
        let at = shared.recorder.now();
        if let Ok(Ok(())) = timeout(LINGER, stream.write_all(reply.as_bytes())).await {
            shared.recorder.record_at(
                at,
                EventKind::Line {
                    server: shared.config.name.clone(),
                    conn: id,
                    dir: Dir::Out,
                    bytes: reply.into_bytes(),
                },
            );
        }
    }
    shared.end(id, End::ServerClosed);
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(1..)) {} };
    let _ = timeout(LINGER, drain).await;
}

/// The next connection of `listener`; without one, never.
async fn accept_if(listener: Option<&TcpListener>) -> (TcpStream, std::net::SocketAddr) {
    match listener {
        Some(listener) => super::accept(listener).await,
        None => std::future::pending().await,
    }
}

/// What every connection of one server shares.
struct Shared {
    config: SmtpConfig,
    recorder: Recorder,
    /// How many times each injection was used.
    used: Vec<AtomicU32>,
    /// The run's certificate authority, for STARTTLS and implicit TLS.
    ca: Option<Arc<RunCa>>,
    /// Asks the kernel what a client has not read yet, to pace the replies
    /// to one that talked before the greeting; `None` if it cannot.
    diag: Option<Mutex<SockDiag>>,
    /// Message bytes the server may still hold (see [`MAX_STORED`]).
    storage: AtomicU64,
}

impl Shared {
    /// Takes `bytes` from the server's storage; `false` if there is not that much left.
    fn reserve(&self, bytes: u64) -> bool {
        let take = |left: u64| left.checked_sub(bytes);
        let taken = self
            .storage
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, take);
        taken.is_ok()
    }

    /// Gives `bytes` back to the server's storage.
    fn release(&self, bytes: u64) {
        self.storage.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records that connection `id` ended `how`.
    fn end(&self, id: u32, how: End) {
        self.recorder.record(EventKind::SessionEnd {
            server: self.config.name.clone(),
            conn: id,
            how: how.how().into(),
        });
    }

    /// The injected reply to `verb`, if one is due; it counts as used.
    fn injected(&self, verb: &str) -> Option<String> {
        let inject = &self.config.inject;
        inject.iter().zip(&self.used).find_map(|(injection, used)| {
            let due = injection.command.eq_ignore_ascii_case(verb)
                && used
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        injection.times.is_none_or(|t| n < t).then(|| n + 1)
                    })
                    .is_ok();
            due.then(|| injection.reply.clone())
        })
    }
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The client sent QUIT.
    Quit,
    /// The client closed (or reset) the connection.
    Closed,
    /// An injected 421 closed it.
    ServerClosed,
    /// A deadline passed.
    Timeout,
    /// The connection failed.
    Error,
    /// The TLS handshake failed.
    TlsFailed,
}

impl End {
    /// The `how` of [`EventKind::SessionEnd`].
    fn how(self) -> &'static str {
        match self {
            End::Quit => "client-quit",
            End::Closed => "client-closed",
            End::ServerClosed => "server-closed",
            End::Timeout => "timeout",
            End::Error => "error",
            End::TlsFailed => "tls-failed",
        }
    }
}

/// One received line.
#[derive(Debug, Default)]
struct Line {
    /// The line, or for one over its limit the first octets and its ending.
    bytes: Vec<u8>,
    /// Its real length in octets, ending included.
    len: usize,
    /// Its last two octets.
    tail: [u8; 2],
}

impl Line {
    /// Appends received bytes, keeping at most `limit` of them.
    fn push(&mut self, chunk: &[u8], limit: usize) {
        let keep = limit.saturating_sub(self.bytes.len()).min(chunk.len());
        self.bytes.extend_from_slice(&chunk[..keep]);
        self.len += chunk.len();
        match chunk {
            [.., a, b] => self.tail = [*a, *b],
            [b] => self.tail = [self.tail[1], *b],
            [] => {}
        }
    }

    /// Ends the kept octets of an overlong line with its real ending.
    fn finish(&mut self) {
        if self.len > self.bytes.len() {
            if self.bytes.last() == Some(&b'\r') {
                self.bytes.pop();
            }
            let ending: &[u8] = if self.crlf() { b"\r\n" } else { b"\n" };
            self.bytes.extend_from_slice(ending);
        }
    }

    /// Whether it ends with CRLF (otherwise with a bare LF).
    fn crlf(&self) -> bool {
        self.tail == *b"\r\n"
    }

    /// The line without its ending.
    fn text(&self) -> &[u8] {
        let text = self.bytes.strip_suffix(b"\n").unwrap_or(&self.bytes);
        text.strip_suffix(b"\r").unwrap_or(text)
    }
}

/// A message being received, its octets taken from the server's storage
/// (given back when it is dropped, unless it went into a kept trace).
struct Held {
    shared: Arc<Shared>,
    data: Vec<u8>,
    /// Octets taken from the storage.
    taken: u64,
}

impl Held {
    /// An empty message.
    fn new(shared: Arc<Shared>) -> Self {
        Held {
            shared,
            data: Vec::new(),
            taken: 0,
        }
    }

    /// Its length in octets.
    fn len(&self) -> usize {
        self.data.len()
    }

    /// Appends a text line and its CRLF; `false` if the storage has no room.
    fn push(&mut self, text: &[u8]) -> bool {
        let more = text.len() as u64 + 2;
        if !self.shared.reserve(more) {
            return false;
        }
        self.taken += more;
        self.data.extend_from_slice(text);
        self.data.extend_from_slice(b"\r\n");
        true
    }

    /// Drops the octets received so far.
    fn clear(&mut self) {
        self.shared.release(self.taken);
        self.taken = 0;
        self.data = Vec::new();
    }

    /// `delivered` (an [`EventKind::Delivered`]) with the message as its
    /// data, once the storage also has room for its bookkeeping; `None` if not.
    fn deliver(mut self, mut delivered: EventKind) -> Option<EventKind> {
        let data = std::mem::take(&mut self.data);
        let weight = crate::trace::weight(&delivered).map_or(0, |w| w.1);
        if !self.shared.reserve(weight) {
            return None;
        }
        if let EventKind::Delivered { data: d, .. } = &mut delivered {
            *d = data;
        }
        if self.shared.recorder.keeps() {
            self.taken = 0;
        } else {
            self.shared.release(weight);
        }
        Some(delivered)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.release(self.taken);
    }
}

/// One client connection and its SMTP state.
struct Session {
    shared: Arc<Shared>,
    stream: Conn,
    id: u32,
    /// Whether the connection came in on the implicit-TLS listener.
    implicit: bool,
    /// When the whole session must end.
    deadline: Instant,
    /// Received bytes not yet read as lines (decrypted under TLS).
    buf: Vec<u8>,
    /// Bytes received so far.
    received: u64,
    /// `received` when the client was last caught sending ahead of a reply.
    reported: u64,
    /// What the client sent ahead of the reply now due, not yet recorded.
    early: Option<String>,
    /// Lines and deviations this connection recorded (or tried to).
    recorded: u32,
    /// Message bytes this connection may still deliver.
    storage_left: usize,
    /// Writing failed: the client is gone, but what it sent is still read.
    broken: bool,
    /// The connection's own address and the client's.
    addrs: Option<(SocketAddr, SocketAddr)>,
    /// How much longer replies may wait for the client to read the ones
    /// before; zero unless it talked before the greeting (see `pace`).
    pace_left: Duration,
    /// How many lines the client sent before the greeting, if any.
    talked_first: Option<usize>,
    /// `None` before HELO or EHLO, else whether it was EHLO.
    hello: Option<bool>,
    /// The HELO or EHLO in force before STARTTLS reset the session.
    hello_before_tls: Option<bool>,
    /// Whether AUTH succeeded.
    authenticated: bool,
    /// Whether the client has tried AUTH: from then on a line that could be
    /// a credential is not recorded as sent.
    auth_seen: bool,
    /// The reverse-path of the mail transaction under way.
    from: Option<String>,
    /// Its forward-paths.
    to: Vec<String>,
    /// Messages delivered so far.
    delivered: u32,
}

/// What the next line from the client is, for recording it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// A command.
    Command,
    /// A line of a message.
    Text,
    /// The response to AUTH PLAIN's 334: the credentials.
    PlainResponse,
    /// The response to AUTH LOGIN's first 334: the user name.
    LoginUser,
    /// The response to AUTH LOGIN's second 334: the password.
    LoginPassword,
}

impl Session {
    /// Connection number `id`, just accepted (on the implicit-TLS listener if `implicit`).
    fn new(shared: Arc<Shared>, stream: TcpStream, id: u32, implicit: bool) -> Self {
        let addrs = stream.local_addr().ok().zip(stream.peer_addr().ok());
        Session {
            deadline: Instant::now() + shared.config.max_session,
            shared,
            stream: Conn::Plain(stream),
            id,
            implicit,
            buf: Vec::new(),
            received: 0,
            reported: 0,
            early: None,
            recorded: 0,
            storage_left: MAX_DELIVERED,
            broken: false,
            addrs,
            pace_left: Duration::ZERO,
            talked_first: None,
            hello: None,
            hello_before_tls: None,
            authenticated: false,
            auth_seen: false,
            from: None,
            to: Vec::new(),
            delivered: 0,
        }
    }

    /// Runs the session, records how it ended, and closes.
    async fn serve(mut self) {
        let Err(end) = self.converse().await;
        self.shared.end(self.id, end);
        self.stream.shutdown().await;
        let mut sink = Vec::with_capacity(READ_CHUNK);
        let drain = async {
            while matches!(self.stream.read_buf(&mut sink).await, Ok(1..)) {
                sink.clear();
            }
        };
        let _ = timeout(LINGER, drain).await;
    }

    /// The greeting (after the TLS handshake on the implicit-TLS port), then
    /// commands until the session ends.
    async fn converse(&mut self) -> Result<Infallible, End> {
        if self.implicit {
            self.start_tls().await?;
        }
        let delay = self.shared.config.greeting_delay;
        tokio::time::sleep_until(self.deadline.min(Instant::now() + delay)).await;
        self.poll_ready();
        if !self.buf.is_empty() {
            self.deviate("early-command", self.scrub(&self.buf));
            self.pace_left = PACE_BUDGET;
            self.talked_first = Some(self.buf.iter().filter(|&&b| b == b'\n').count());
            // A single early command is the greeting check's fault alone;
            // more than one is also sending ahead of the replies.
            if self.talked_first == Some(1) {
                self.reported = self.received;
            }
        }
        let greeting = format!("220 {} ESMTP netgrade", self.shared.config.hostname);
        self.reply(&greeting).await?;
        loop {
            let line = self.line(MAX_COMMAND_LINE, Reading::Command).await?;
            self.command(&line).await?;
        }
    }

    /// Answers one command line.
    async fn command(&mut self, line: &Line) -> Result<(), End> {
        self.early = self.unanswered();
        if line.len > MAX_COMMAND_LINE {
            let detail = format!(
                "a command line of {} octets: {}",
                line.len,
                self.scrub(&line.bytes)
            );
            self.deviate("line-too-long", detail);
            return self.reply("500 5.5.2 Line too long").await;
        }
        if self.shared.config.strict_crlf && !line.crlf() {
            return self.reply("500 5.5.2 Bare LF: end lines with CRLF").await;
        }
        let text = String::from_utf8_lossy(line.text());
        let (verb, arg) = text.split_once(' ').unwrap_or((text.as_ref(), ""));
        let (verb, arg) = (verb.to_ascii_uppercase(), arg.trim());
        if let Some(reply) = self.shared.injected(&verb) {
            return self.injected(&reply).await;
        }
        let reply = match verb.as_str() {
            "HELO" | "EHLO" => self.helo(&verb, arg),
            "MAIL" => self.mail(&text, arg),
            "RCPT" => self.rcpt(&text, arg),
            "DATA" if !arg.is_empty() => "501 5.5.4 Syntax: DATA".into(),
            "DATA" if self.from.is_none() => "503 5.5.1 Need MAIL command".into(),
            "DATA" if self.to.is_empty() => "503 5.5.1 Need RCPT command".into(),
            "DATA" => return self.data(line.crlf()).await,
            "RSET" => {
                self.from = None;
                self.to.clear();
                "250 2.0.0 Ok".into()
            }
            "NOOP" => "250 2.0.0 Ok".into(),
            "VRFY" if arg.is_empty() => "501 5.5.4 Syntax: VRFY <address>".into(),
            "VRFY" => "252 2.5.0 Cannot VRFY user, but will accept message".into(),
            "HELP" => self.help(),
            "AUTH" if !self.greeted(&text) => "503 5.5.1 Send HELO or EHLO first".into(),
            "AUTH" if self.authenticated => "503 5.5.1 Already authenticated".into(),
            "AUTH" if self.from.is_some() => "503 5.5.1 No AUTH during a mail transaction".into(),
            "AUTH" => return self.auth(arg).await,
            "STARTTLS" if self.stream.is_tls() => "503 5.5.1 TLS already active".into(),
            "STARTTLS" if self.starttls_offered() && !arg.is_empty() => {
                "501 5.5.4 Syntax: STARTTLS".into()
            }
            "STARTTLS" if self.starttls_offered() => return self.starttls().await,
            "QUIT" => {
                self.watch_for_close().await;
                self.reply("221 2.0.0 Bye").await?;
                return Err(End::Quit);
            }
            verb if UNIMPLEMENTED.contains(&verb) => "502 5.5.1 Command not implemented".into(),
            _ => "500 5.5.2 Command not recognized".into(),
        };
        self.reply(&reply).await
    }

    /// Whether STARTTLS is offered now: the server has a certificate
    /// authority, offers it, and TLS is not on yet.
    fn starttls_offered(&self) -> bool {
        self.shared.ca.is_some() && self.shared.config.starttls && !self.stream.is_tls()
    }

    /// The reply to HELP.
    fn help(&self) -> String {
        let tls = if self.starttls_offered() {
            " STARTTLS"
        } else {
            ""
        };
        format!("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY AUTH{tls} HELP QUIT")
    }

    /// The reply to HELO or EHLO (`verb`), which also ends any mail transaction.
    fn helo(&mut self, verb: &str, domain: &str) -> String {
        if domain.is_empty() {
            return format!("501 5.5.4 Syntax: {verb} <domain>");
        }
        let ehlo = verb == "EHLO";
        self.hello = Some(ehlo);
        self.hello_before_tls = None;
        self.from = None;
        self.to.clear();
        let config = &self.shared.config;
        if !ehlo {
            return format!("250 {}", config.hostname);
        }
        let mut lines = vec![
            config.hostname.clone(),
            "8BITMIME".into(),
            format!("SIZE {MAX_MESSAGE}"),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.starttls_offered() {
            lines.push("STARTTLS".into());
        }
        lines.push("AUTH PLAIN LOGIN".into());
        if config.pipelining {
            lines.push("PIPELINING".into());
        }
        lines.push("HELP".into());
        let last = lines.len() - 1;
        let reply = lines.iter().enumerate().map(|(i, l)| {
            let sep = if i == last { ' ' } else { '-' };
            format!("250{sep}{l}")
        });
        reply.collect::<Vec<_>>().join("\n")
    }

    /// Whether a HELO or EHLO is in force for `command` (the whole line). A
    /// client that goes on after STARTTLS without a new EHLO (RFC 3207 §4.2
    /// asks for one) is taken at its word from before, and the deviation recorded.
    fn greeted(&mut self, command: &str) -> bool {
        if self.hello.is_none()
            && let Some(before) = self.hello_before_tls.take()
        {
            let command = self.scrub(command.as_bytes());
            let detail = format!("{command} came after the TLS handshake with no new EHLO");
            self.deviate("no-ehlo-after-starttls", detail);
            self.hello = Some(before);
        }
        self.hello.is_some()
    }

    /// The reply to MAIL (`text` the whole line, `arg` what follows the verb).
    fn mail(&mut self, text: &str, arg: &str) -> String {
        if !self.greeted(text) {
            return "503 5.5.1 Send HELO or EHLO first".into();
        }
        if self.from.is_some() {
            return "503 5.5.1 Nested MAIL command".into();
        }
        match path(arg, "FROM") {
            Some(_) if let Some(refused) = self.refused_parameter("MAIL", arg) => refused,
            Some((path, form)) => {
                self.lenient(form, text);
                self.from = Some(path.into());
                "250 2.1.0 Ok".into()
            }
            None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
        }
    }

    /// The reply to RCPT (`text` the whole line, `arg` what follows the verb).
    fn rcpt(&mut self, text: &str, arg: &str) -> String {
        if self.from.is_none() {
            return "503 5.5.1 Need MAIL before RCPT".into();
        }
        match path(arg, "TO") {
            None | Some(("", _)) => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
            Some(_) if let Some(refused) = self.refused_parameter("RCPT", arg) => refused,
            Some(_) if self.to.len() >= MAX_RECIPIENTS => "452 4.5.3 Too many recipients".into(),
            Some((path, form)) => {
                self.lenient(form, text);
                self.to.push(path.into());
                "250 2.1.5 Ok".into()
            }
        }
    }

    /// The reply to the parameters of MAIL or RCPT (`verb`; `arg` what
    /// follows the verb) when one is not right: 555 for one this server
    /// neither advertised nor implements (RFC 5321 §4.1.1.11) — every RCPT
    /// parameter, and any after HELO — and 501 or 552 for a bad `SIZE=`
    /// (RFC 1870) or `BODY=` (RFC 6152). `AUTH=` is taken (RFC 4954 §5).
    fn refused_parameter(&self, verb: &str, arg: &str) -> Option<String> {
        let ehlo = verb == "MAIL" && self.hello == Some(true);
        for param in parameters(arg) {
            let (key, value) = param
                .split_once('=')
                .map_or((param, None), |(k, v)| (k, Some(v)));
            let key = key.to_ascii_uppercase();
            let value = value.map(str::to_ascii_uppercase);
            let refused = match (key.as_str(), value.as_deref()) {
                _ if !ehlo => Some(format!(
                    "555 5.5.4 {verb} parameter {} not supported: this server advertised no {verb} parameters{}",
                    show(param.as_bytes()),
                    if verb == "MAIL" {
                        " (the session began with HELO: no extension is in force)"
                    } else {
                        ""
                    }
                )),
                ("SIZE", size) => size_refused(size),
                ("BODY", Some("7BIT" | "8BITMIME")) | ("AUTH", Some(_)) => None,
                ("BODY", _) => Some("501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME".into()),
                _ => Some(format!(
                    "555 5.5.4 MAIL parameter {} not supported: this server's EHLO reply advertised SIZE and 8BITMIME (BODY=) only",
                    show(param.as_bytes())
                )),
            };
            if refused.is_some() {
                return refused;
            }
        }
        None
    }

    /// Records how a path in `command` strayed from RFC 5321's form, if it did.
    fn lenient(&mut self, form: Form, command: &str) {
        let kind = match form {
            Form::Exact => return,
            Form::SpaceAfterColon => "space-after-colon",
            Form::Bare => "bare-address",
        };
        self.deviate(kind, show(command.as_bytes()));
    }

    /// After STARTTLS (RFC 3207): 220, the handshake, then a session that
    /// starts over. Plain text the client sent after STARTTLS is dropped
    /// (§5: it must not be carried into TLS).
    async fn starttls(&mut self) -> Result<(), End> {
        self.reply("220 2.0.0 Ready to start TLS").await?;
        self.buf.clear();
        self.start_tls().await?;
        self.hello_before_tls = self.hello.take();
        self.from = None;
        self.to.clear();
        self.authenticated = false;
        Ok(())
    }

    /// The TLS handshake, recorded; a failure ends the session.
    async fn start_tls(&mut self) -> Result<(), End> {
        let ca = self.shared.ca.clone().ok_or(End::Error)?;
        let deadline = self
            .deadline
            .min(Instant::now() + self.shared.config.idle_timeout);
        let (server, conn, implicit) = (self.shared.config.name.clone(), self.id, self.implicit);
        match self.stream.start_tls(&ca, deadline).await {
            Ok(negotiated) => {
                self.shared.recorder.record(EventKind::TlsStarted {
                    server,
                    conn,
                    version: negotiated.version,
                    sni: negotiated.sni,
                    implicit,
                });
                Ok(())
            }
            Err(error) => {
                let reason = self.handshake_failure(&error);
                let kind = EventKind::TlsFailed {
                    server,
                    conn,
                    implicit,
                    reason,
                };
                self.shared.recorder.record(kind);
                Err(End::TlsFailed)
            }
        }
    }

    /// Why the handshake failed, for the student.
    fn handshake_failure(&self, error: &HandshakeError) -> String {
        let idle = crate::spec::Dur(self.shared.config.idle_timeout);
        let start = if self.implicit {
            "on this port the session starts with a TLS handshake from the client (implicit TLS, RFC 8314): wrap the socket with TLS right after connect(), e.g. `ssl.create_default_context().wrap_socket(sock, server_hostname=host)`, and read the 220 greeting through it"
        } else {
            "after the 220 reply to STARTTLS the client must start the TLS handshake (RFC 3207): wrap the socket, e.g. `ssl.create_default_context().wrap_socket(sock, server_hostname=host)`, then send EHLO again"
        };
        match error {
            HandshakeError::NotTls(bytes) => format!(
                "the client sent {} in plain text instead of a TLS handshake: {start}",
                crate::checks::quote(bytes)
            ),
            HandshakeError::Closed => {
                format!("the client closed the connection instead of starting TLS: {start}")
            }
            HandshakeError::Silent => {
                format!("the client sent nothing for {idle} instead of starting TLS: {start}")
            }
            HandshakeError::TimedOut => {
                format!("the client's TLS handshake did not finish within {idle}")
            }
            HandshakeError::Failed(why) if error.refused_certificate() => format!(
                "the client's TLS handshake failed: {why} (does it trust netgrade's certificate authority? netgrade sets SSL_CERT_FILE and, for Java, a trust store in JAVA_TOOL_OPTIONS: use the default trust settings, e.g. `ssl.create_default_context()`)"
            ),
            HandshakeError::Failed(why) => format!("the client's TLS handshake failed: {why}"),
        }
    }

    /// After an accepted DATA (whose line ended in CRLF if `after_crlf`): 354,
    /// the message up to its lone dot, then its delivery and 250, or a refusal.
    async fn data(&mut self, mut after_crlf: bool) -> Result<(), End> {
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let strict = self.shared.config.strict_crlf;
        let mut message = Held::new(self.shared.clone());
        let mut refusal = None;
        loop {
            let line = self.line(MAX_TEXT_LINE, Reading::Text).await?;
            let text = line.text();
            if text == b"." {
                let proper = after_crlf && line.crlf();
                if !proper {
                    let before: &[u8] = if after_crlf { b"\r\n" } else { b"\n" };
                    self.deviate("bare-lf-dot", show(&[before, &line.bytes].concat()));
                }
                if proper || !strict {
                    break;
                }
            }
            after_crlf = line.crlf();
            if line.len > MAX_TEXT_LINE {
                let detail = format!("a text line of {} octets: {}", line.len, show(&line.bytes));
                self.deviate("line-too-long", detail);
                refusal.get_or_insert("500 5.5.2 Line too long: at most 1000 octets");
            } else if message.len() + text.len() + 2 > MAX_MESSAGE {
                if refusal.is_none() {
                    let detail = format!("a message of more than {MAX_MESSAGE} octets");
                    self.deviate("message-too-large", detail);
                }
                refusal.get_or_insert("552 5.3.4 Message too big");
            } else if refusal.is_none() {
                // Dot-unstuffing (§4.5.2).
                let text = text.strip_prefix(b".").filter(|t| !t.is_empty());
                if !message.push(text.unwrap_or(line.text())) {
                    self.storage_full(message.len());
                    refusal = Some("452 4.3.1 Insufficient system storage");
                    message.clear();
                }
            }
        }
        self.early = self.unanswered();
        let from = self.from.take().unwrap_or_default();
        let to = std::mem::take(&mut self.to);
        if let Some(refusal) = refusal {
            return self.reply(refusal).await;
        }
        if let Some(reply) = self.shared.injected(".") {
            return self.injected(&reply).await;
        }
        let Some(left) = self.storage_left.checked_sub(message.len()) else {
            return self.reply("452 4.3.1 Insufficient system storage").await;
        };
        let delivered = EventKind::Delivered {
            server: self.shared.config.name.clone(),
            conn: self.id,
            from,
            to,
            data: Vec::new(),
        };
        let len = message.len();
        let Some(kind) = message.deliver(delivered) else {
            self.storage_full(len);
            return self.reply("452 4.3.1 Insufficient system storage").await;
        };
        self.storage_left = left;
        self.delivered += 1;
        self.shared.recorder.record(kind);
        let reply = format!("250 2.0.0 Ok: queued as {}.{}", self.id, self.delivered);
        self.reply(&reply).await
    }

    /// Records that a message of at least `len` octets found the server's
    /// storage full.
    fn storage_full(&mut self, len: usize) {
        let detail = format!(
            "the server holds at most {} MiB of messages (received or delivered) in a run; a message of at least {len} octets did not fit and was refused with 452",
            MAX_STORED / (1024 * 1024)
        );
        self.deviate("storage-full", detail);
    }

    /// After an AUTH in the right place (RFC 4954): PLAIN and LOGIN, with or
    /// without an initial response, accept any well-formed credentials. The
    /// login is recorded; the password never is.
    async fn auth(&mut self, arg: &str) -> Result<(), End> {
        let mut words = arg.split_ascii_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let mut initial = words.next();
        let steps: &[(&str, Reading)] = match mechanism.as_str() {
            "PLAIN" => &[("", Reading::PlainResponse)],
            "LOGIN" => &[
                ("VXNlcm5hbWU6", Reading::LoginUser),
                ("UGFzc3dvcmQ6", Reading::LoginPassword),
            ],
            "" => return self.reply("501 5.5.4 Syntax: AUTH <mechanism>").await,
            _ => return self.reply("504 5.5.4 Unknown authentication type").await,
        };
        let mut user = String::new();
        for &(prompt, reading) in steps {
            let response = match initial.take() {
                Some(response) => response.to_owned(),
                None => {
                    self.reply(&format!("334 {prompt}")).await?;
                    let line = self.line(MAX_COMMAND_LINE, reading).await?;
                    String::from_utf8_lossy(line.text()).trim().to_owned()
                }
            };
            if response == "*" {
                return self.reply("501 5.0.0 Authentication cancelled").await;
            }
            let Some(decoded) = decode_base64(&response) else {
                return self.reply("501 5.5.2 Cannot decode response").await;
            };
            match reading {
                Reading::PlainResponse => match plain_user(&decoded) {
                    Some(name) => user = name,
                    None => {
                        let reply = "501 5.5.2 Malformed PLAIN credentials: send base64 of [authzid] NUL user NUL password";
                        return self.reply(reply).await;
                    }
                },
                Reading::LoginUser => user = printable(&decoded),
                _ => {}
            }
        }
        self.authenticated = true;
        self.shared.recorder.record(EventKind::Authenticated {
            server: self.shared.config.name.clone(),
            conn: self.id,
            mechanism,
            user,
            encrypted: self.stream.is_tls(),
            starttls_offered: self.starttls_offered(),
        });
        self.reply("235 2.7.0 Authentication successful").await
    }

    /// Sends an injected reply; a 421 closes the connection.
    async fn injected(&mut self, reply: &str) -> Result<(), End> {
        self.reply(reply).await?;
        if reply.starts_with("421") {
            return Err(End::ServerClosed);
        }
        Ok(())
    }

    /// Reads the next line (up to LF), which is a `reading`, and records it
    /// (credentials hidden). Without a whole line before the idle or session
    /// deadline, sends 421.
    async fn line(&mut self, limit: usize, reading: Reading) -> Result<Line, End> {
        let idle = Instant::now() + self.shared.config.idle_timeout;
        let deadline = idle.min(self.deadline);
        let mut line = Line::default();
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                line.push(&self.buf[..=lf], limit);
                self.buf.drain(..=lf);
                line.finish();
                let shown = self.shown(&line.bytes, reading);
                if !line.crlf() {
                    self.deviate("bare-lf", show(&shown));
                }
                self.record_line(self.shared.recorder.now(), Dir::In, shown);
                return Ok(line);
            }
            line.push(&self.buf, limit);
            self.buf.clear();
            let end = match timeout_at(deadline, self.read()).await {
                Ok(Ok(0)) => End::Closed,
                Ok(Ok(_)) => continue,
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => End::Closed,
                Ok(Err(_)) => End::Error,
                Err(_) => End::Timeout,
            };
            if line.len > 0 {
                let shown = self.shown(&line.bytes, reading);
                self.record_line(self.shared.recorder.now(), Dir::In, shown);
            }
            if end == End::Timeout {
                let host = &self.shared.config.hostname;
                let reply = format!("421 4.4.2 {host} Timeout, closing connection");
                self.reply(&reply).await?;
            }
            return Err(end);
        }
    }

    /// `bytes`, a line that is a `reading`, as it may be recorded: with
    /// credentials replaced by a description (its line ending kept).
    fn shown(&mut self, bytes: &[u8], reading: Reading) -> Vec<u8> {
        let (text, ending) = split_ending(bytes);
        let text = String::from_utf8_lossy(text);
        let hidden = match reading {
            Reading::Text => None,
            Reading::Command => {
                let words: Vec<&str> = text.split_ascii_whitespace().collect();
                if words
                    .first()
                    .is_some_and(|w| w.eq_ignore_ascii_case("AUTH"))
                {
                    self.auth_seen = true;
                }
                hide_command(&words, self.auth_seen)
            }
            _ if text.trim() == "*" => None,
            reading => Some(describe_response(text.trim(), reading)),
        };
        match hidden {
            Some(hidden) => [hidden.as_bytes(), ending].concat(),
            None => bytes.to_vec(),
        }
    }

    /// `bytes` the client sent (one or more lines of commands) for a
    /// deviation's detail: shown as [`show`] does, with what could be
    /// credentials hidden.
    fn scrub(&self, bytes: &[u8]) -> String {
        let mut auth = self.auth_seen;
        let mut out = Vec::new();
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let (text, ending) = split_ending(line);
            let text = String::from_utf8_lossy(text);
            let words: Vec<&str> = text.split_ascii_whitespace().collect();
            auth |= words
                .first()
                .is_some_and(|w| w.eq_ignore_ascii_case("AUTH"));
            match hide_command(&words, auth) {
                Some(hidden) => out.extend_from_slice(&[hidden.as_bytes(), ending].concat()),
                None => out.extend_from_slice(line),
            }
        }
        show(&out)
    }

    /// Before answering QUIT, watches a moment for the client closing the
    /// connection: one that does so right after sending QUIT never reads the
    /// 221 (RFC 5321 §4.1.1.10), which is recorded as `closed-before-221`.
    async fn watch_for_close(&mut self) {
        let watch = self.shared.config.quit_watch;
        if watch.is_zero() || !self.buf.is_empty() {
            return;
        }
        if let Ok(Ok(0)) = timeout(watch, self.read()).await {
            self.deviate(
                "closed-before-221",
                "the client closed the connection right after QUIT".into(),
            );
        }
    }

    /// Appends what the socket has to the buffer; 0 at end of stream.
    async fn read(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        let n = self.stream.read_buf(&mut self.buf).await?;
        self.received += n as u64;
        Ok(n)
    }

    /// Moves what the client already sent into the buffer, without waiting.
    fn poll_ready(&mut self) {
        let n = self.stream.read_now(&mut self.buf);
        self.received += n as u64;
    }

    /// What the client already sent beyond the line just read, unless that
    /// was reported already. A client that sent one command before the
    /// greeting and then reads one reply per command stays a reply behind:
    /// it sends each line once it has read the reply before the one now
    /// due, so whether that line arrives before this reply leaves is a
    /// matter of scheduling, and the fault is the early command's. Such a
    /// line is not reported when the client has read every reply sent so far.
    fn unanswered(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            self.poll_ready();
        }
        let new = !self.buf.is_empty() && self.received > self.reported;
        if !new {
            return None;
        }
        self.reported = self.received;
        let behind = self.talked_first == Some(1) && self.read_everything();
        (!behind).then(|| self.scrub(&self.buf))
    }

    /// Whether the client has read all that was sent to it (`true` when
    /// the kernel cannot say).
    fn read_everything(&self) -> bool {
        !matches!(self.unread(), Some(1..))
    }

    /// Bytes sent to the client that it has not read, when the kernel says.
    fn unread(&self) -> Option<u32> {
        let (diag, (local, peer)) = (self.shared.diag.as_ref()?, self.addrs?);
        diag.lock().ok()?.unread(local, peer).ok()?
    }

    /// Sends `text`, whose lines are separated by `\n`, each ending in CRLF,
    /// and records them. First records what the client sent ahead of it:
    /// `data-before-354` ahead of a 354, otherwise `pipelined` unless
    /// PIPELINING was offered.
    async fn reply(&mut self, text: &str) -> Result<(), End> {
        if let Some(early) = self.early.take() {
            if text.starts_with("354") {
                self.deviate("data-before-354", early);
            } else if !(self.shared.config.pipelining && self.hello == Some(true)) {
                self.deviate("pipelined", early);
            }
        }
        if self.broken {
            return Ok(());
        }
        self.pace().await;
        let lines: Vec<Vec<u8>> = text
            .split('\n')
            .map(|l| [l.trim_end_matches('\r').as_bytes(), b"\r\n"].concat())
            .collect();
        // Stamped before sending: the reply cannot have reached the client earlier.
        let at = self.shared.recorder.now();
        let out = lines.concat();
        match timeout(self.shared.config.idle_timeout, self.stream.write_all(&out)).await {
            Ok(Ok(())) => {
                for line in lines {
                    self.record_line(at, Dir::Out, line);
                }
                Ok(())
            }
            Ok(Err(_)) => {
                self.broken = true;
                Ok(())
            }
            Err(_) => Err(End::Timeout),
        }
    }

    /// Waits, within the session's budget, until the client has read all
    /// that was sent to it. A client that talked before the greeting and
    /// reads one reply per command stays a reply behind; across a network
    /// the round trip keeps each reply in a read of its own, and so does
    /// this, where on loopback two replies could meet in one read or not by
    /// the scheduler's whim, and the client's course with them.
    async fn pace(&mut self) {
        let start = Instant::now();
        while start.elapsed() < self.pace_left && !self.read_everything() {
            tokio::time::sleep(PACE_POLL).await;
        }
        self.pace_left = self.pace_left.saturating_sub(start.elapsed());
    }

    /// Records a line unless the connection recorded too many.
    fn record_line(&mut self, at: Duration, dir: Dir, bytes: Vec<u8>) {
        if self.count_record() {
            let server = self.shared.config.name.clone();
            let (conn, recorder) = (self.id, &self.shared.recorder);
            recorder.record_at(
                at,
                EventKind::Line {
                    server,
                    conn,
                    dir,
                    bytes,
                },
            );
        }
    }

    /// Records a deviation of kind `kind` unless the connection recorded too many.
    fn deviate(&mut self, kind: &str, detail: String) {
        if self.count_record() {
            self.shared.recorder.record(EventKind::Deviation {
                server: self.shared.config.name.clone(),
                conn: self.id,
                kind: kind.into(),
                detail,
            });
        }
    }

    /// Whether one more line or deviation may be recorded; records
    /// `RecordingCapped` the first time not.
    fn count_record(&mut self) -> bool {
        self.recorded = self.recorded.saturating_add(1);
        if self.recorded == MAX_RECORDED_LINES + 1 {
            self.shared.recorder.record(EventKind::RecordingCapped {
                server: self.shared.config.name.clone(),
                limit: MAX_RECORDED_LINES,
            });
        }
        self.recorded <= MAX_RECORDED_LINES
    }
}

/// How a path was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `FROM:<a@b>`, as RFC 5321 §4.1.2 has it.
    Exact,
    /// `FROM: <a@b>`: white space after the colon (the textbook's sample sessions).
    SpaceAfterColon,
    /// `FROM:a@b` or `FROM: a@b`: no angle brackets.
    Bare,
}

/// The address of `FROM:<address> [parameters]` (keyword `FROM`) or
/// `TO:<address> [parameters]` (keyword `TO`), and how it was written:
/// white space after the colon and an address without angle brackets are
/// tolerated, as by most servers; parameters are ignored.
fn path<'a>(arg: &'a str, keyword: &str) -> Option<(&'a str, Form)> {
    let head = arg.get(..keyword.len())?;
    let after = arg[keyword.len()..].strip_prefix(':')?;
    let rest = after.trim_start();
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    if let Some(inner) = rest.strip_prefix('<') {
        let (path, params) = inner.split_once('>')?;
        let valid = !path.contains(['<', ' ']) && (params.is_empty() || params.starts_with(' '));
        let form = if rest.len() == after.len() {
            Form::Exact
        } else {
            Form::SpaceAfterColon
        };
        return valid.then_some((path, form));
    }
    let path = rest.split(' ').next().unwrap_or_default();
    let valid = !path.is_empty() && !path.contains(['<', '>']);
    valid.then_some((path, Form::Bare))
}

/// The reply to MAIL's `SIZE=` with `value` (RFC 1870) if it is refused:
/// 501 unless it is a number, 552 over [`MAX_MESSAGE`].
fn size_refused(value: Option<&str>) -> Option<String> {
    let digits = value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    match digits.map(str::parse::<u64>) {
        Some(Ok(n)) if n <= MAX_MESSAGE as u64 => None,
        Some(_) => Some(format!(
            "552 5.3.4 Message size exceeds fixed maximum message size ({MAX_MESSAGE} octets)"
        )),
        None => Some("501 5.5.4 Syntax: SIZE=<octets>".into()),
    }
}

/// The parameters after the path in `arg` (`FROM:<a@b> SIZE=10 BODY=8BITMIME`).
fn parameters(arg: &str) -> Vec<&str> {
    let rest = arg.split_once(':').map_or("", |(_, r)| r.trim_start());
    let after = match rest.strip_prefix('<') {
        Some(inner) => inner.split_once('>').map_or("", |(_, p)| p),
        None => rest.split_once(' ').map_or("", |(_, p)| p),
    };
    after.split_ascii_whitespace().collect()
}

/// A line's text and its ending (`\r\n`, `\n`, or none for a partial line).
fn split_ending(bytes: &[u8]) -> (&[u8], &[u8]) {
    let cut = if bytes.ends_with(b"\r\n") {
        2
    } else {
        usize::from(bytes.ends_with(b"\n"))
    };
    bytes.split_at(bytes.len() - cut)
}

/// What a command line (split in `words`) is recorded as, if it could hold
/// credentials: the response in `AUTH <mechanism> <response>`, and after
/// any AUTH (`auth`) a line of one word that is no command (a base64
/// credential sent out of turn, or a password in plain text).
fn hide_command(words: &[&str], auth: bool) -> Option<String> {
    match words {
        [verb, mechanism, response, ..] if verb.eq_ignore_ascii_case("AUTH") => {
            let reading = match mechanism.to_ascii_uppercase().as_str() {
                "PLAIN" => Reading::PlainResponse,
                "LOGIN" => Reading::LoginUser,
                _ => Reading::LoginPassword,
            };
            let described = describe_response(response, reading);
            Some(format!("{verb} {mechanism} {described}"))
        }
        [word] if auth && *word != "*" && *word != "." => {
            let command = KNOWN.iter().chain(UNIMPLEMENTED);
            let known = command.clone().any(|c| c.eq_ignore_ascii_case(word));
            (!known).then(|| "<a line after AUTH, hidden: it may hold a password>".into())
        }
        _ => None,
    }
}

/// A description of an AUTH response that hides the password.
fn describe_response(response: &str, reading: Reading) -> String {
    let decoded = decode_base64(response);
    match (reading, decoded) {
        (_, None) => format!("<not base64 ({} octets), hidden>", response.len()),
        (Reading::PlainResponse, Some(d)) => match plain_user(&d) {
            Some(user) => format!(
                "<credentials of user {}, password hidden>",
                quote_user(&user)
            ),
            None => "<malformed PLAIN credentials, hidden>".into(),
        },
        (Reading::LoginUser, Some(d)) => {
            format!("<user name {} in base64>", quote_user(&printable(&d)))
        }
        _ => "<password hidden>".into(),
    }
}

/// The user (authentication identity) of PLAIN credentials (RFC 4616:
/// `[authzid] NUL authcid NUL passwd`).
fn plain_user(decoded: &[u8]) -> Option<String> {
    let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    match parts[..] {
        [_, user, _] if !user.is_empty() => Some(printable(user)),
        _ => None,
    }
}

/// A user name as text, control characters escaped, at most [`MAX_USER`] characters.
fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text: String = text
        .chars()
        .flat_map(char::escape_default)
        .take(MAX_USER)
        .collect();
    text
}

/// A user name in double quotes (its quotes escaped already by [`printable`]).
fn quote_user(user: &str) -> String {
    format!("\"{user}\"")
}

/// The bytes base64 `text` (RFC 4648, padded) stands for; `=` is empty
/// (RFC 4954's empty response).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    if !is_base64(text) {
        return None;
    }
    let value = |b: u8| match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let data = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(value(b)) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Whether `text` is base64 (RFC 4648), or `=`, the empty initial response.
fn is_base64(text: &str) -> bool {
    let data = text.trim_end_matches('=');
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    text == "="
        || (text.len().is_multiple_of(4)
            && text.len() - data.len() <= 2
            && data.bytes().all(alphabet))
}

/// Bytes for people: printable ASCII as is, `\r`, `\n`, `\t`, else `\xNN`;
/// at most [`MAX_DETAIL`] of them, then `…`.
fn show(bytes: &[u8]) -> String {
    let mut text = String::new();
    for &b in &bytes[..bytes.len().min(MAX_DETAIL)] {
        match b {
            b'\r' => text.push_str("\\r"),
            b'\n' => text.push_str("\\n"),
            b'\t' => text.push_str("\\t"),
            b' '..=b'~' => text.push(char::from(b)),
            _ => {
                let _ = write!(text, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > MAX_DETAIL {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::process::Command;
    use tokio::task::JoinHandle;

    /// A running server; stopped when dropped.
    struct Server {
        addr: SocketAddr,
        rec: Recorder,
        task: JoinHandle<()>,
        /// With TLS: the implicit-TLS address, and the authority's certificate file.
        tls: Option<TlsInfo>,
    }

    /// How to reach and trust a test server's TLS.
    struct TlsInfo {
        /// The implicit-TLS listener.
        addr: SocketAddr,
        /// The authority's certificate, PEM.
        pem: String,
        ca: Arc<RunCa>,
        _dir: tempfile::TempDir,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        /// What `pick` takes from the events so far.
        fn pick<T>(&self, pick: impl FnMut(EventKind) -> Option<T>) -> Vec<T> {
            let events = self.rec.snapshot().events.into_iter();
            events.map(|e| e.kind).filter_map(pick).collect()
        }

        /// `(from, to, data)` of every delivered message.
        fn delivered(&self) -> Vec<(String, Vec<String>, Vec<u8>)> {
            self.pick(|e| match e {
                EventKind::Delivered { from, to, data, .. } => Some((from, to, data)),
                _ => None,
            })
        }

        /// `(kind, detail)` of every deviation.
        fn deviations(&self) -> Vec<(String, String)> {
            self.pick(|e| match e {
                EventKind::Deviation { kind, detail, .. } => Some((kind, detail)),
                _ => None,
            })
        }

        /// Asserts no event holds any of `secrets`: no line, deviation, login or TLS record.
        fn assert_no_secret(&self, secrets: &[&str]) {
            let texts = self.pick(|e| match e {
                EventKind::Line { bytes, .. } => Some(String::from_utf8_lossy(&bytes).into_owned()),
                EventKind::Deviation { detail, .. } => Some(detail),
                EventKind::Authenticated { user, .. } => Some(user),
                EventKind::TlsFailed { reason, .. } => Some(reason),
                EventKind::Delivered { .. } | EventKind::SessionEnd { .. } => None,
                EventKind::TlsStarted { .. } | EventKind::RecordingCapped { .. } => None,
                other => Some(format!("{other:?}")),
            });
            assert!(!texts.is_empty());
            for secret in secrets {
                let found = texts.iter().find(|l| l.contains(secret));
                assert!(found.is_none(), "{secret} in {found:?}");
            }
        }

        /// The TLS of a [`tls_server`].
        fn tls(&self) -> &TlsInfo {
            self.tls.as_ref().expect("a server with TLS")
        }

        /// `(conn, version, sni, implicit)` of each TLS session.
        fn tls_sessions(&self) -> Vec<(u32, String, Option<String>, bool)> {
            self.pick(|e| match e {
                EventKind::TlsStarted {
                    conn,
                    version,
                    sni,
                    implicit,
                    ..
                } => Some((conn, version, sni, implicit)),
                _ => None,
            })
        }

        /// `(conn, reason)` of each failed handshake.
        fn tls_failures(&self) -> Vec<(u32, String)> {
            self.pick(|e| match e {
                EventKind::TlsFailed { conn, reason, .. } => Some((conn, reason)),
                _ => None,
            })
        }

        /// `(conn, mechanism, user, encrypted)` of each login.
        fn logins(&self) -> Vec<(u32, String, String, bool)> {
            self.pick(|e| match e {
                EventKind::Authenticated {
                    conn,
                    mechanism,
                    user,
                    encrypted,
                    ..
                } => Some((conn, mechanism, user, encrypted)),
                _ => None,
            })
        }

        fn kinds(&self) -> Vec<String> {
            self.deviations().into_iter().map(|d| d.0).collect()
        }

        /// The lines of connection `conn`, `C: ` from the client, `S: ` from the server.
        fn lines(&self, conn: u32) -> Vec<String> {
            self.pick(|e| match e {
                EventKind::Line {
                    conn: c,
                    dir,
                    bytes,
                    ..
                } if c == conn => Some(format!("{dir:?}: {}", show(&bytes))),
                _ => None,
            })
        }

        /// How connection `conn` ended, once it has (5 s at most).
        async fn end(&self, conn: u32) -> String {
            for _ in 0..500 {
                let ended = self.pick(|e| match e {
                    EventKind::SessionEnd { conn: c, how, .. } if c == conn => Some(how),
                    _ => None,
                });
                if let Some(how) = ended.into_iter().next() {
                    return how;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("session {conn} did not end");
        }
    }

    async fn server(tune: impl FnOnce(&mut SmtpConfig)) -> Server {
        let mut config = SmtpConfig::new("mail");
        tune(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = Recorder::new();
        let task = tokio::spawn(run(listener, None, config, rec.clone()));
        Server {
            addr,
            rec,
            task,
            tls: None,
        }
    }

    /// A server with a certificate authority: STARTTLS, and implicit TLS on a second port.
    async fn tls_server(tune: impl FnOnce(&mut SmtpConfig)) -> Server {
        tls_server_with(Recorder::new(), tune).await
    }

    /// A [`tls_server`] recording into `rec`.
    async fn tls_server_with(rec: Recorder, tune: impl FnOnce(&mut SmtpConfig)) -> Server {
        let mut config = SmtpConfig::new("mail");
        tune(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let implicit = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, tls_addr) = (
            listener.local_addr().unwrap(),
            implicit.local_addr().unwrap(),
        );
        let ca = Arc::new(RunCa::new().unwrap());
        let dir = tempfile::tempdir().unwrap();
        ca.write_trust(dir.path()).unwrap();
        let pem = dir
            .path()
            .join(super::super::tls::CA_PEM)
            .display()
            .to_string();
        let tls = Tls {
            ca: ca.clone(),
            implicit: Some(implicit),
        };
        let task = tokio::spawn(run(listener, Some(tls), config, rec.clone()));
        let tls = Some(TlsInfo {
            addr: tls_addr,
            pem,
            ca,
            _dir: dir,
        });
        Server {
            addr,
            rec,
            task,
            tls,
        }
    }

    /// Runs `program` with `args` (10 s at most) and expects success; its standard output.
    async fn command(program: &str, args: &[&str]) -> String {
        let run = Command::new(program).args(args).kill_on_drop(true).output();
        let output = timeout(Duration::from_secs(10), run)
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{program}: {stdout}{stderr}");
        stdout
    }

    /// Runs a Python script, `PORT` replaced by the server's port (and with
    /// TLS `TLSPORT` by the implicit-TLS port, `CAFILE` by the authority's certificate).
    async fn python(server: &Server, script: &str) -> String {
        let mut script = script.to_string();
        if let Some(tls) = &server.tls {
            script = script.replace("TLSPORT", &tls.addr.port().to_string());
            script = script.replace("CAFILE", &tls.pem);
        }
        let script = script.replace("PORT", &server.addr.port().to_string());
        command("python3", &["-c", &script]).await
    }

    /// A raw client that reads whole replies, over TCP or TLS.
    struct Client<S = TcpStream> {
        stream: S,
        buf: Vec<u8>,
    }

    impl Client {
        async fn connect(addr: SocketAddr) -> Self {
            let stream = TcpStream::connect(addr).await.unwrap();
            let buf = Vec::new();
            Client { stream, buf }
        }

        /// Connects, reads the greeting and says HELO.
        async fn hello(addr: SocketAddr) -> Self {
            let mut client = Client::connect(addr).await;
            client.reply().await;
            client.expect("HELO client.test\r\n", "250 ").await;
            client
        }

        /// Starts TLS trusting only `ca`, asking for `name`; the handshake's result.
        async fn upgrade(
            self,
            ca: &RunCa,
            name: &str,
        ) -> io::Result<Client<tokio_rustls::client::TlsStream<TcpStream>>> {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.ca_der().clone()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
            let connect = connector.connect(name, self.stream);
            let stream = timeout(Duration::from_secs(5), connect).await??;
            Ok(Client {
                stream,
                buf: self.buf,
            })
        }
    }

    impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> Client<S> {
        async fn send(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).await.unwrap();
        }

        /// The next reply, every line, CRLF included; empty at end of stream (5 s at most).
        async fn reply(&mut self) -> String {
            let mut end = 0;
            loop {
                while let Some(lf) = self.buf[end..].iter().position(|&b| b == b'\n') {
                    let last = self.buf.get(end + 3) != Some(&b'-');
                    end += lf + 1;
                    if last {
                        let reply = self.buf.drain(..end).collect::<Vec<u8>>();
                        return String::from_utf8(reply).unwrap();
                    }
                }
                let read = timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf));
                if read.await.expect("a reply within 5 s").unwrap() == 0 {
                    return String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
                }
            }
        }

        /// Sends `line` and returns the reply.
        async fn talk(&mut self, line: &str) -> String {
            self.send(line.as_bytes()).await;
            self.reply().await
        }

        /// Sends `line` and checks that the reply starts with `start`.
        async fn expect(&mut self, line: &str, start: &str) {
            let reply = self.talk(line).await;
            assert!(reply.starts_with(start), "{line:?} got {reply:?}");
        }

        /// MAIL, RCPT and DATA, accepted.
        async fn envelope(&mut self) {
            self.expect("MAIL FROM:<a@x.test>\r\n", "250 ").await;
            self.expect("RCPT TO:<b@y.test>\r\n", "250 ").await;
            self.expect("DATA\r\n", "354 ").await;
        }
    }

    #[tokio::test]
    async fn smtplib_sends_over_ehlo_and_dots_round_trip() {
        let server = server(|_| {}).await;
        let message = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast\r\n";
        let stdout = python(
            &server,
            "import smtplib\n\
             s = smtplib.SMTP('127.0.0.1', PORT, timeout=5)\n\
             print(s.ehlo('client.test')[0], sorted(s.esmtp_features))\n\
             msg = b'Subject: dots\\r\\n\\r\\n.leading dot\\r\\n..two dots\\r\\n.\\r\\nlast\\r\\n'\n\
             print(s.sendmail('alice@crepes.fr', ['bob@hamburger.edu', 'carol@x.test'], msg))\n\
             print(s.rset()[0], s.noop()[0], s.verify('bob')[0], s.docmd('HELP')[0])\n\
             print(s.quit()[0])\n",
        )
        .await;
        let features = "['8bitmime', 'auth', 'enhancedstatuscodes', 'help', 'size']";
        assert_eq!(
            stdout,
            format!("250 {features}\n{{}}\n250 250 252 214\n221\n")
        );
        let to = vec!["bob@hamburger.edu".into(), "carol@x.test".into()];
        let expected = ("alice@crepes.fr".into(), to, message.to_vec());
        assert_eq!(server.delivered(), [expected]);
        let lines = server.lines(1);
        for line in [
            "Out: 220 netgrade.test ESMTP netgrade\\r\\n",
            "In: ehlo client.test\\r\\n",
            "Out: 250-netgrade.test\\r\\n",
            "Out: 250 HELP\\r\\n",
            "In: ..leading dot\\r\\n",
            "In: ...two dots\\r\\n",
            "In: ..\\r\\n",
            "Out: 250 2.0.0 Ok: queued as 1.1\\r\\n",
        ] {
            assert!(lines.iter().any(|l| l == line), "{line} in {lines:#?}");
        }
        assert_eq!(server.end(1).await, "client-quit");
        assert_eq!(server.kinds(), [""; 0]);
    }

    #[tokio::test]
    async fn smtplib_helo_and_refused_commands() {
        let server = server(|_| {}).await;
        let stdout = python(
            &server,
            "import smtplib\n\
             s = smtplib.SMTP('127.0.0.1', PORT, timeout=5)\n\
             print(s.helo('client.test')[0])\n\
             print(s.sendmail('a@x.test', 'b@y.test', 'Subject: hi\\n\\nhello\\n'))\n\
             bad = [('TURN',), ('XYZZY',), ('EHLO',), ('MAIL', 'FROM:')]\n\
             print(*(s.docmd(*c)[0] for c in bad))\n\
             s.quit()\n",
        )
        .await;
        assert_eq!(stdout, "250\n{}\n502 500 501 501\n");
        let helo = ["In: helo client.test\\r\\n", "Out: 250 netgrade.test\\r\\n"];
        assert_eq!(
            server.lines(1)[1..4],
            [helo[0], helo[1], "In: mail FROM:<a@x.test>\\r\\n"]
        );
        let message = b"Subject: hi\r\n\r\nhello\r\n".to_vec();
        let expected = ("a@x.test".into(), vec!["b@y.test".into()], message);
        assert_eq!(server.delivered(), [expected]);
    }

    #[tokio::test]
    async fn smtplib_sees_injected_rejections_and_logs_in() {
        let server = server(|c| {
            let reply = "550 5.1.1 No such user".into();
            let (command, times) = ("rcpt".into(), Some(1));
            c.inject = vec![Injection {
                command,
                reply,
                times,
            }];
        })
        .await;
        let stdout = python(
            &server,
            "import smtplib\n\
             s = smtplib.SMTP('127.0.0.1', PORT, timeout=5)\n\
             try:\n    s.sendmail('a@x.test', ['nobody@y.test'], b'one\\r\\n')\n\
             except smtplib.SMTPRecipientsRefused as e:\n    print('refused', e.recipients)\n\
             print(s.sendmail('a@x.test', ['bob@y.test'], b'two\\r\\n'))\n\
             print(s.login('alice', 'secret')[0])\n\
             s.quit()\n\
             s = smtplib.SMTP('127.0.0.1', PORT, timeout=5)\n\
             s.ehlo()\n\
             s.user, s.password = 'bob', 'opensesame'\n\
             print(s.auth('LOGIN', s.auth_login, initial_response_ok=False)[0])\n\
             s.quit()\n",
        )
        .await;
        let refused = "{'nobody@y.test': (550, b'5.1.1 No such user')}";
        assert_eq!(stdout, format!("refused {refused}\n{{}}\n235\n235\n"));
        let expected = (
            "a@x.test".into(),
            vec!["bob@y.test".into()],
            b"two\r\n".to_vec(),
        );
        assert_eq!(server.delivered(), [expected]);
        let lines = server.lines(1);
        let auth = lines.iter().find(|l| l.starts_with("In: AUTH"));
        let plain = "In: AUTH PLAIN <credentials of user \"alice\", password hidden>\\r\\n";
        assert_eq!(auth.map(String::as_str), Some(plain));
        let lines = server.lines(2);
        let auth = lines.iter().skip_while(|l| !l.starts_with("In: AUTH"));
        let auth: Vec<&str> = auth.map(String::as_str).take(6).collect();
        let expected = [
            "In: AUTH LOGIN\\r\\n",
            "Out: 334 VXNlcm5hbWU6\\r\\n",
            "In: <user name \"bob\" in base64>\\r\\n",
            "Out: 334 UGFzc3dvcmQ6\\r\\n",
            "In: <password hidden>\\r\\n",
            "Out: 235 2.7.0 Authentication successful\\r\\n",
        ];
        assert_eq!(auth, expected);
        let logins = server.pick(|e| match e {
            EventKind::Authenticated {
                conn,
                mechanism,
                user,
                encrypted,
                ..
            } => Some((conn, mechanism, user, encrypted)),
            _ => None,
        });
        let alice = (1, "PLAIN".to_string(), "alice".to_string(), false);
        assert_eq!(logins, [alice, (2, "LOGIN".into(), "bob".into(), false)]);
        server.assert_no_secret(&[
            "secret",
            "AGFsaWNlAHNlY3JldA==",
            "opensesame",
            "b3BlbnNlc2FtZQ==",
        ]);
    }

    #[tokio::test]
    async fn swaks_delivers_with_and_without_pipelining() {
        for pipelining in [false, true] {
            let server = server(|c| c.pipelining = pipelining).await;
            let addr = server.addr.to_string();
            let mut args = vec!["--server", &addr, "--from", "a@x.test", "--to", "b@y.test"];
            args.extend(["--body", "first\n.dot\nlast", "--timeout", "5"]);
            if pipelining {
                args.push("--pipeline");
            }
            let transcript = command("swaks", &args).await;
            let group = "-> MAIL FROM:<a@x.test>\n -> RCPT TO:<b@y.test>\n -> DATA\n";
            assert_eq!(transcript.contains(group), pipelining, "{transcript}");
            let delivered = server.delivered();
            assert_eq!(delivered.len(), 1, "{transcript}");
            let data = String::from_utf8(delivered[0].2.clone()).unwrap();
            assert!(
                data.contains("\r\n\r\nfirst\r\n.dot\r\nlast\r\n"),
                "{data:?}"
            );
            assert_eq!(server.kinds(), [""; 0]);
            assert_eq!(server.end(1).await, "client-quit");
        }
    }

    #[tokio::test]
    async fn talking_before_the_greeting_is_recorded_and_still_answered() {
        let delay = Duration::from_millis(300);
        let server = server(|c| c.greeting_delay = delay).await;
        let start = Instant::now();
        let mut client = Client::connect(server.addr).await;
        client.send(b"HELO early.test\r\n").await;
        assert_eq!(client.reply().await, "220 netgrade.test ESMTP netgrade\r\n");
        assert!(start.elapsed() >= delay);
        assert_eq!(client.reply().await, "250 netgrade.test\r\n");
        client.expect("QUIT\r\n", "221 ").await;
        drop(Client::hello(server.addr).await);
        assert_eq!(server.end(2).await, "client-closed");
        let early = ("early-command".into(), "HELO early.test\\r\\n".into());
        assert_eq!(server.deviations(), [early]);
    }

    #[tokio::test]
    async fn a_client_that_talked_first_reads_each_reply_on_its_own() {
        use tokio::io::AsyncReadExt;
        let server = server(|c| c.greeting_delay = Duration::from_millis(50)).await;
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client.write_all(b"HELO early.test\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.write_all(b"MAIL FROM:<a@x.test>\r\n").await.unwrap();
        // Time enough for the server to answer both commands, were it not
        // waiting for the client to read the greeting first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut read = async || {
            let mut buf = [0u8; 1024];
            let n = timeout(Duration::from_secs(5), client.read(&mut buf)).await;
            String::from_utf8_lossy(&buf[..n.unwrap().unwrap()]).into_owned()
        };
        assert_eq!(read().await, "220 netgrade.test ESMTP netgrade\r\n");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(read().await, "250 netgrade.test\r\n");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(read().await, "250 2.1.0 Ok\r\n");
    }

    #[tokio::test]
    async fn a_client_one_reply_behind_is_charged_once_and_one_further_ahead_twice() {
        use tokio::io::AsyncReadExt;
        // One command before the greeting, then each line after reading a
        // reply: a reply behind, and that is the only deviation.
        let behind = server(|c| c.greeting_delay = Duration::from_millis(50)).await;
        let mut client = TcpStream::connect(behind.addr).await.unwrap();
        let mut buf = [0u8; 1024];
        for line in [
            "HELO early.test\r\n",
            "MAIL FROM:<a@x.test>\r\n",
            "QUIT\r\n",
        ] {
            client.write_all(line.as_bytes()).await.unwrap();
            timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
        }
        drop(client);
        behind.end(1).await;
        // (It never reads the 221: the quit check knows why.)
        assert_eq!(behind.kinds(), ["early-command", "closed-before-221"]);
        // Two commands before the greeting: also ahead of the replies.
        let ahead = server(|c| c.greeting_delay = Duration::from_millis(50)).await;
        let mut client = Client::connect(ahead.addr).await;
        client
            .send(b"HELO early.test\r\nMAIL FROM:<a@x.test>\r\n")
            .await;
        client.reply().await;
        client.reply().await;
        client.expect("QUIT\r\n", "250 ").await;
        drop(client);
        ahead.end(1).await;
        let kinds = ["early-command", "pipelined", "closed-before-221"];
        assert_eq!(ahead.kinds(), kinds);
    }

    #[tokio::test]
    async fn bare_lf_is_tolerated_or_refused_but_never_ends_data_when_strict() {
        for strict in [false, true] {
            let server = server(|c| c.strict_crlf = strict).await;
            let mut client = Client::connect(server.addr).await;
            client.reply().await;
            let helo = client.talk("HELO lf.test\n").await;
            if strict {
                assert_eq!(helo, "500 5.5.2 Bare LF: end lines with CRLF\r\n");
                client.expect("HELO lf.test\r\n", "250 ").await;
            } else {
                assert_eq!(helo, "250 netgrade.test\r\n");
            }
            client.envelope().await;
            client.expect("one\n.\ntwo\r\n.\r\n", "250 ").await;
            let mut kinds = vec!["bare-lf", "bare-lf", "bare-lf", "bare-lf-dot"];
            let mut details = vec!["HELO lf.test\\n", "one\\n", ".\\n", "\\n.\\n"];
            let data: &[&[u8]] = if strict {
                client.envelope().await;
                client.expect("x\n.\r\n.\r\n", "250 ").await;
                kinds.extend(["bare-lf", "bare-lf-dot"]);
                details.extend(["x\\n", "\\n.\\r\\n"]);
                &[b"one\r\n.\r\ntwo\r\n", b"x\r\n.\r\n"]
            } else {
                // What follows the bare-LF dot is read as commands.
                assert!(client.reply().await.starts_with("500 "));
                assert!(client.reply().await.starts_with("500 "));
                kinds.push("pipelined");
                details.push("two\\r\\n.\\r\\n");
                &[b"one\r\n"]
            };
            let expected = kinds.into_iter().zip(details);
            let expected = expected.map(|(k, d)| (k.to_string(), d.to_string()));
            assert_eq!(server.deviations(), expected.collect::<Vec<_>>());
            let delivered: Vec<Vec<u8>> = server.delivered().into_iter().map(|d| d.2).collect();
            assert_eq!(delivered, data);
        }
    }

    #[tokio::test]
    async fn commands_out_of_order_or_malformed_are_refused() {
        let server = server(|_| {}).await;
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        let cases = "MAIL FROM:<a@x.test> 503|AUTH PLAIN 503|HELO 501|EHLO client.test 250|\
                     RCPT TO:<b@y.test> 503|DATA 503|MAIL FROM: 501|MAIL FROM <a@x.test> 501|\
                     MAIL FROM:<a@x.test 501|MAIL TO:<a@x.test> 501|mail from:<> BODY=8BITMIME 250|\
                     MAIL FROM:<c@x.test> 503|DATA 503|RCPT TO:<> 501|RCPT TO:<b@y.test> 250|\
                     DATA now 501|AUTH PLAIN 503|RSET 250|DATA 503|XYZZY 500| 500|\
                     \u{0}\u{7f} garbage 500|TURN 502|STARTTLS 502|EXPN staff 502|VRFY 501|\
                     VRFY bob 252|NOOP 250|HELP 214|AUTH CRAM-MD5 504|AUTH PLAIN !!!! 501|\
                     AUTH LOGIN 334|* 501|AUTH PLAIN 334|AGFsaWNlAHNlY3JldA== 235|AUTH LOGIN 503|\
                     QUIT 221";
        for case in cases.split('|') {
            let (command, code) = case.rsplit_once(' ').unwrap();
            client.expect(&format!("{command}\r\n"), code).await;
        }
        assert_eq!(client.reply().await, "", "closed after QUIT");
        assert_eq!(server.end(1).await, "client-quit");
        assert_eq!(server.kinds(), [""; 0]);
    }

    #[tokio::test]
    async fn overlong_lines_are_refused_and_the_server_stays_up() {
        let server = server(|_| {}).await;
        let mut client = Client::hello(server.addr).await;
        let mut big = b"HELO ".to_vec();
        big.resize(1_000_000, b'a');
        client.send(&[&big[..], b"\r\n"].concat()).await;
        assert_eq!(client.reply().await, "500 5.5.2 Line too long\r\n");
        let garbage = (0..=255u8).filter(|&b| b != b'\n').cycle().take(65_536);
        client
            .send(&garbage.chain(*b"\r\n").collect::<Vec<u8>>())
            .await;
        assert_eq!(client.reply().await, "500 5.5.2 Line too long\r\n");
        let long = format!("{}\r\n", "x".repeat(MAX_TEXT_LINE - 1));
        client.envelope().await;
        let reply = client.talk(&format!("ok\r\n{long}.\r\n")).await;
        assert_eq!(reply, "500 5.5.2 Line too long: at most 1000 octets\r\n");
        client.envelope().await;
        client.expect(&format!("{}.\r\n", &long[1..]), "250 ").await;
        assert_eq!(server.delivered()[0].2, &long.as_bytes()[1..]);
        Client::hello(server.addr)
            .await
            .expect("QUIT\r\n", "221 ")
            .await;
        assert_eq!(server.end(2).await, "client-quit");
        let details: Vec<String> = server.deviations().into_iter().map(|d| d.1).collect();
        assert_eq!(details.len(), 3, "{details:?}");
        assert!(details[0].starts_with("a command line of 1000002 octets: HELO aaa"));
        assert!(details[1].starts_with("a command line of 65538 octets: \\x00\\x01"));
        assert!(details[2].starts_with("a text line of 1001 octets: xxx"));
        let recorded = server.pick(|e| match e {
            EventKind::Line { bytes, .. } if bytes.starts_with(b"HELO aaa") => Some(bytes),
            _ => None,
        });
        assert_eq!(recorded, [[&big[..MAX_COMMAND_LINE], b"\r\n"].concat()]);
    }

    #[tokio::test]
    async fn idle_and_long_sessions_end_with_421() {
        let idle = Duration::from_millis(300);
        let server = server(|c| {
            c.idle_timeout = idle;
            c.max_session = Duration::from_secs(1);
        })
        .await;
        let start = Instant::now();
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        let reply = client.talk("HELO half").await;
        assert_eq!(
            reply,
            "421 4.4.2 netgrade.test Timeout, closing connection\r\n"
        );
        assert!((idle..idle * 3).contains(&start.elapsed()));
        assert_eq!(client.reply().await, "", "closed after 421");
        assert_eq!(server.end(1).await, "timeout");
        assert_eq!(server.lines(1)[1], "In: HELO half");
        let start = Instant::now();
        let mut client = Client::hello(server.addr).await;
        let reply = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let reply = client.talk("NOOP\r\n").await;
            if reply != "250 2.0.0 Ok\r\n" {
                break reply;
            }
        };
        assert!(reply.starts_with("421 4.4.2 "), "{reply}");
        let elapsed = start.elapsed().as_millis();
        assert!((1000..2000).contains(&elapsed), "{elapsed} ms");
        assert_eq!(server.end(2).await, "timeout");
    }

    #[tokio::test]
    async fn commands_ahead_of_replies_are_answered_in_order_and_recorded() {
        let server = server(|c| {
            c.inject = [
                ("data", "451 4.3.0 Try again later", Some(1)),
                (".", "554 5.7.1 Rejected", Some(1)),
                ("NOOP", "421 4.3.2 Shutting down", None),
            ]
            .map(|(command, reply, times)| Injection {
                command: command.into(),
                reply: reply.into(),
                times,
            })
            .into();
        })
        .await;
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        let ahead = "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n";
        client
            .send(format!("HELO a.test\r\n{ahead}").as_bytes())
            .await;
        for start in ["250 netgrade", "250 2.1.0", "250 2.1.5"] {
            assert!(client.reply().await.starts_with(start));
        }
        client
            .expect("DATA\r\n", "451 4.3.0 Try again later\r\n")
            .await;
        client.expect("hello\r\n", "500 ").await;
        let message = "Subject: x\r\n\r\nbody\r\n.\r\n";
        client.send(format!("DATA\r\n{message}").as_bytes()).await;
        assert!(client.reply().await.starts_with("354 "));
        assert_eq!(client.reply().await, "554 5.7.1 Rejected\r\n");
        client.expect("RCPT TO:<b@y.test>\r\n", "503 ").await;
        client.envelope().await;
        client
            .expect("body\r\n.\r\n", "250 2.0.0 Ok: queued as 1.1\r\n")
            .await;
        client
            .expect("NOOP\r\n", "421 4.3.2 Shutting down\r\n")
            .await;
        assert_eq!(client.reply().await, "");
        assert_eq!(server.end(1).await, "server-closed");
        assert_eq!(server.delivered().len(), 1);
        let pipelined = ("pipelined".into(), show(ahead.as_bytes()));
        let early_data = ("data-before-354".into(), show(message.as_bytes()));
        assert_eq!(server.deviations(), [pipelined, early_data]);
    }

    #[tokio::test]
    async fn a_flood_is_answered_in_order_and_its_recording_capped() {
        let server = server(|_| {}).await;
        let client = Client::hello(server.addr).await;
        let flood = "NOOP\r\n".repeat(30_000) + "QUIT\r\n";
        let (mut rx, mut tx) = client.stream.into_split();
        let writer = tokio::spawn(async move { tx.write_all(flood.as_bytes()).await });
        let mut replies = Vec::new();
        let read = timeout(Duration::from_secs(30), rx.read_to_end(&mut replies));
        read.await.expect("closed after QUIT").unwrap();
        writer.await.unwrap().unwrap();
        let replies = String::from_utf8(replies).unwrap();
        assert_eq!(replies.matches("250 2.0.0 Ok\r\n").count(), 30_000);
        assert!(replies.ends_with("\r\n221 2.0.0 Bye\r\n"));
        assert_eq!(server.end(1).await, "client-quit");
        let recorded = server.pick(|e| match e {
            EventKind::Line { .. } | EventKind::Deviation { .. } => Some(0),
            EventKind::RecordingCapped { limit, .. } => Some(limit),
            _ => None,
        });
        assert_eq!(recorded.len(), MAX_RECORDED_LINES as usize + 1);
        assert_eq!(recorded.iter().sum::<u32>(), MAX_RECORDED_LINES);
        assert!(server.kinds().iter().all(|k| k == "pipelined"));
    }

    #[test]
    fn paths_and_base64() {
        let exact = |p| Some((p, Form::Exact));
        assert_eq!(path("FROM:<a@b>", "FROM"), exact("a@b"));
        assert_eq!(path("FROM:<>", "FROM"), exact(""));
        let spaced = Some(("a@b", Form::SpaceAfterColon));
        assert_eq!(path("from: <a@b> SIZE=10", "FROM"), spaced);
        assert_eq!(path("FROM:\t<a@b>", "FROM"), spaced);
        let bare = Some(("a@b", Form::Bare));
        for form in ["FROM:a@b", "FROM: a@b", "from:  a@b SIZE=10"] {
            assert_eq!(path(form, "FROM"), bare, "{form}");
        }
        let bad = ["FROM:", "FROM: ", "FROM <a@b>", "FROM:<a@b", "FROM:<a b@c>"];
        for bad in bad
            .into_iter()
            .chain(["FROM:<a@b>x", "TO:<a@b>", "FRÖ", "FROM:a>b"])
        {
            assert_eq!(path(bad, "FROM"), None, "{bad}");
        }
        assert_eq!(
            parameters("FROM:<a@b> SIZE=10  BODY=8BITMIME"),
            ["SIZE=10", "BODY=8BITMIME"]
        );
        assert_eq!(parameters("from:  a@b SIZE=10"), ["SIZE=10"]);
        assert!(parameters("TO:<a@b>").is_empty());
        assert!(parameters("FROM:a@b").is_empty());
        for good in ["", "=", "YQ==", "YWI=", "YWJj", "AGFsaWNlAHNlY3JldA=="] {
            assert!(is_base64(good), "{good}");
        }
        for bad in ["Y", "YQ=", "Y===", "a!bc", "YQ==YQ=="] {
            assert!(!is_base64(bad), "{bad}");
            assert_eq!(decode_base64(bad), None);
        }
        let decoded = ["YQ==", "YWI=", "YWJj", "AGFsaWNlAHNlY3JldA==", "="].map(decode_base64);
        let expected: [&[u8]; 5] = [b"a", b"ab", b"abc", b"\0alice\0secret", b""];
        assert_eq!(decoded, expected.map(|e| Some(e.to_vec())));
    }

    #[test]
    fn credentials_are_described_never_shown() {
        let words = |s: &'static str| s.split_ascii_whitespace().collect::<Vec<_>>();
        let plain = hide_command(&words("auth plain AGFsaWNlAHNlY3JldA=="), false);
        let plain_shown = "auth plain <credentials of user \"alice\", password hidden>";
        assert_eq!(plain.as_deref(), Some(plain_shown));
        let login = hide_command(&words("AUTH LOGIN YWxpY2VAZ21haWwuY29t"), false);
        let login_shown = "AUTH LOGIN <user name \"alice@gmail.com\" in base64>";
        assert_eq!(login.as_deref(), Some(login_shown));
        let other = hide_command(&words("AUTH XOAUTH2 dXNlcj1h"), false);
        assert_eq!(other.as_deref(), Some("AUTH XOAUTH2 <password hidden>"));
        let raw = hide_command(&words("AUTH PLAIN alice:secret"), false);
        assert_eq!(
            raw.as_deref(),
            Some("AUTH PLAIN <not base64 (12 octets), hidden>")
        );
        // After an AUTH, one word that is no command could be a credential.
        for line in ["c2VjcmV0", "secret", "hunter2!"] {
            assert!(hide_command(&words(line), true).is_some(), "{line}");
            assert!(hide_command(&words(line), false).is_none(), "{line}");
        }
        for line in [
            "QUIT",
            "data",
            "RSET",
            "STARTTLS",
            "*",
            ".",
            "MAIL FROM:<a@b>",
        ] {
            assert!(hide_command(&words(line), true).is_none(), "{line}");
        }
        let malformed = describe_response("YWxpY2UAc2VjcmV0", Reading::PlainResponse);
        assert_eq!(malformed, "<malformed PLAIN credentials, hidden>");
        let odd_user = describe_response("ImEiCg==", Reading::LoginUser);
        assert_eq!(odd_user, "<user name \"\\\"a\\\"\\n\" in base64>");
        let password = describe_response("c2VjcmV0", Reading::LoginPassword);
        assert_eq!(password, "<password hidden>");
    }

    /// The password the TLS tests log in with, its base64, and PLAIN credentials holding it.
    const SECRETS: [&str; 3] = [
        "hunter2hunter2",
        "aHVudGVyMmh1bnRlcjI=",
        "AGFsaWNlQGdtYWlsLmNvbQBodW50ZXIyaHVudGVyMg==",
    ];

    #[tokio::test]
    async fn smtplib_starttls_verifies_the_name_it_asked_for_and_logs_in() {
        let server = tls_server(|_| {}).await;
        let stdout = python(
            &server,
            "import smtplib, ssl\n\
             ctx = ssl.create_default_context(cafile='CAFILE')\n\
             for mech in ['LOGIN', 'PLAIN']:\n\
             \x20   s = smtplib.SMTP(timeout=5)\n\
             \x20   s.connect('127.0.0.1', PORT)\n\
             \x20   s._host = 'smtp.gmail.com'\n\
             \x20   s.ehlo('client.test')\n\
             \x20   print('starttls' in s.esmtp_features, s.starttls(context=ctx)[0], end=' ')\n\
             \x20   s.ehlo('client.test')\n\
             \x20   print('starttls' in s.esmtp_features, end=' ')\n\
             \x20   s.user, s.password = 'alice@gmail.com', 'hunter2hunter2'\n\
             \x20   print(s.auth(mech, getattr(s, 'auth_' + mech.lower()))[0], end=' ')\n\
             \x20   msg = b'Subject: tls\\r\\n\\r\\nI love computer networks!\\r\\n'\n\
             \x20   print(s.sendmail('alice@gmail.com', ['bob@hamburger.edu'], msg), s.quit()[0])\n",
        )
        .await;
        assert_eq!(stdout, "True 220 False 235 {} 221\n".repeat(2));
        let gmail = Some("smtp.gmail.com".to_string());
        let tls = |conn| (conn, "TLS 1.3".to_string(), gmail.clone(), false);
        assert_eq!(server.tls_sessions(), [tls(1), tls(2)]);
        let user = "alice@gmail.com".to_string();
        let login = |conn, m: &str| (conn, m.to_string(), user.clone(), true);
        assert_eq!(server.logins(), [login(1, "LOGIN"), login(2, "PLAIN")]);
        assert_eq!(server.delivered().len(), 2);
        assert_eq!(server.kinds(), [""; 0]);
        let lines = server.lines(1);
        let starttls = lines
            .iter()
            .position(|l| l == "In: STARTTLS\\r\\n")
            .unwrap();
        assert_eq!(
            lines[starttls + 1],
            "Out: 220 2.0.0 Ready to start TLS\\r\\n"
        );
        assert_eq!(lines[starttls + 2], "In: ehlo client.test\\r\\n");
        let auth = "In: AUTH LOGIN <user name \"alice@gmail.com\" in base64>\\r\\n";
        assert!(lines.contains(&auth.to_string()), "{lines:#?}");
        assert!(lines.contains(&"In: <password hidden>\\r\\n".to_string()));
        server.assert_no_secret(&SECRETS);
    }

    #[tokio::test]
    async fn smtp_ssl_speaks_implicit_tls_from_the_first_byte() {
        let server = tls_server(|c| c.greeting_delay = Duration::from_millis(100)).await;
        let stdout = python(
            &server,
            "import smtplib, ssl\n\
             ctx = ssl.create_default_context(cafile='CAFILE')\n\
             s = smtplib.SMTP_SSL('127.0.0.1', TLSPORT, context=ctx, timeout=5)\n\
             s.ehlo('client.test')\n\
             print('starttls' in s.esmtp_features, s.docmd('STARTTLS')[0])\n\
             print(s.login('alice@gmail.com', 'hunter2hunter2')[0])\n\
             print(s.sendmail('alice@gmail.com', ['bob@hamburger.edu'], b'hello\\r\\n'))\n\
             s.quit()\n",
        )
        .await;
        assert_eq!(stdout, "False 503\n235\n{}\n");
        assert_eq!(server.tls_sessions(), [(1, "TLS 1.3".into(), None, true)]);
        assert_eq!(
            server.lines(1)[0],
            "Out: 220 netgrade.test ESMTP netgrade\\r\\n"
        );
        assert_eq!(server.logins().len(), 1);
        assert_eq!(server.delivered().len(), 1);
        assert_eq!(server.kinds(), [""; 0]);
        assert_eq!(server.end(1).await, "client-quit");
        server.assert_no_secret(&SECRETS);
    }

    #[tokio::test]
    async fn swaks_verifies_over_starttls_and_tls_on_connect() {
        let server = tls_server(|_| {}).await;
        let tls = server.tls();
        let (plain, implicit) = (server.addr.to_string(), tls.addr.to_string());
        for (addr, mode, mech) in [(&plain, "--tls", "LOGIN"), (&implicit, "--tlsc", "PLAIN")] {
            let mut args = vec![
                "--server",
                addr,
                mode,
                "--tls-verify",
                "--tls-ca-path",
                &tls.pem,
            ];
            args.extend([
                "--tls-sni",
                "smtp.163.com",
                "--auth",
                mech,
                "--auth-user",
                "alice@gmail.com",
            ]);
            args.extend([
                "--auth-password",
                SECRETS[0],
                "--from",
                "a@x.test",
                "--to",
                "b@y.test",
            ]);
            args.extend(["--timeout", "5"]);
            let transcript = command("swaks", &args).await;
            assert!(transcript.contains("<~  235 2.7.0"), "{transcript}");
        }
        let sni = Some("smtp.163.com".to_string());
        let sessions = [
            (1, "TLS 1.3".into(), sni.clone(), false),
            (2, "TLS 1.3".into(), sni, true),
        ];
        assert_eq!(server.tls_sessions(), sessions);
        let mechanisms: Vec<String> = server.logins().into_iter().map(|l| l.1).collect();
        assert_eq!(mechanisms, ["LOGIN", "PLAIN"]);
        assert_eq!(server.delivered().len(), 2);
        assert_eq!(server.kinds(), [""; 0]);
        server.assert_no_secret(&SECRETS);
    }

    #[tokio::test]
    async fn openssl_and_curl_verify_the_certificate_for_the_name_they_resolved() {
        let server = tls_server(|_| {}).await;
        let tls = server.tls();
        let connect = server.addr.to_string();
        let mut args = vec![
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            &connect,
            "-crlf",
        ];
        args.extend([
            "-servername",
            "smtp.mail.com",
            "-verify_hostname",
            "smtp.mail.com",
        ]);
        args.extend([
            "-verify_return_error",
            "-CAfile",
            &tls.pem,
            "-ign_eof",
            "-quiet",
        ]);
        let session = "EHLO c.test\nMAIL FROM:<a@x.test>\nRCPT TO:<b@y.test>\nDATA\nhi\n.\nQUIT\n";
        let mut openssl = Command::new("openssl");
        openssl.args(&args).kill_on_drop(true);
        openssl
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = openssl
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(session.as_bytes())
            .await
            .unwrap();
        let out = timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.contains("250 2.0.0 Ok: queued as 1.1") && out.contains("221 "),
            "{out}"
        );
        let resolve = format!("smtp.mail.com:{}:127.0.0.1", server.addr.port());
        let url = format!("smtp://smtp.mail.com:{}", server.addr.port());
        let resolve_tls = format!("smtp.mail.com:{}:127.0.0.1", tls.addr.port());
        let url_tls = format!("smtps://smtp.mail.com:{}", tls.addr.port());
        let user = format!("alice@gmail.com:{}", SECRETS[0]);
        let message = tls._dir.path().join("message.txt");
        std::fs::write(
            &message,
            "Subject: curl\r\n\r\nI love computer networks!\r\n",
        )
        .unwrap();
        let message = message.display().to_string();
        for (resolve, url) in [(&resolve, &url), (&resolve_tls, &url_tls)] {
            let mut args = vec![
                "-sS",
                "--ssl-reqd",
                "--cacert",
                &tls.pem,
                "--resolve",
                resolve,
                url,
            ];
            args.extend([
                "--mail-from",
                "a@x.test",
                "--mail-rcpt",
                "b@y.test",
                "--user",
                &user,
            ]);
            args.extend(["--upload-file", &message, "--max-time", "10"]);
            command("curl", &args).await;
        }
        let sni = Some("smtp.mail.com".to_string());
        let sessions: Vec<(u32, Option<String>, bool)> = server
            .tls_sessions()
            .into_iter()
            .map(|(c, _, s, i)| (c, s, i))
            .collect();
        assert_eq!(
            sessions,
            [
                (1, sni.clone(), false),
                (2, sni.clone(), false),
                (3, sni, true)
            ]
        );
        assert_eq!(server.delivered().len(), 3);
        assert_eq!(server.logins().len(), 2);
        server.assert_no_secret(&SECRETS);
    }

    #[tokio::test]
    async fn starttls_follows_rfc_3207() {
        let server = tls_server(|_| {}).await;
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        let ehlo = client.talk("EHLO a.test\r\n").await;
        assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
        assert!(client.talk("HELP\r\n").await.contains(" STARTTLS "));
        client.expect("STARTTLS now\r\n", "501 5.5.4").await;
        client.expect("MAIL FROM:<a@x.test>\r\n", "250 ").await;
        // Plain text sent behind STARTTLS is dropped, not read inside TLS.
        let injected = "STARTTLS\r\nRCPT TO:<evil@x.test>\r\n";
        assert_eq!(
            client.talk(injected).await,
            "220 2.0.0 Ready to start TLS\r\n"
        );
        let mut client = client
            .upgrade(&server.tls().ca, "smtp.gmail.com")
            .await
            .unwrap();
        let ehlo = client.talk("EHLO a.test\r\n").await;
        assert!(
            !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
            "{ehlo}"
        );
        client
            .expect("STARTTLS\r\n", "503 5.5.1 TLS already active")
            .await;
        assert!(!client.talk("HELP\r\n").await.contains("STARTTLS"));
        client.expect("RCPT TO:<b@y.test>\r\n", "503 ").await;
        client.expect("MAIL FROM:<a@x.test>\r\n", "250 ").await;
        client.expect("QUIT\r\n", "221 ").await;
        assert_eq!(server.end(1).await, "client-quit");
        let pipelined = (
            "pipelined".to_string(),
            "RCPT TO:<evil@x.test>\\r\\n".to_string(),
        );
        assert_eq!(server.deviations(), [pipelined]);
        let lines = server.lines(1);
        assert!(
            !lines.iter().any(|l| l.starts_with("In: RCPT TO:<evil")),
            "{lines:#?}"
        );
        // Without a certificate authority there is no STARTTLS.
        let plain = server_with_no_tls().await;
        let mut client = Client::connect(plain.addr).await;
        client.reply().await;
        assert!(!client.talk("EHLO a.test\r\n").await.contains("STARTTLS"));
        client.expect("STARTTLS\r\n", "502 ").await;
    }

    async fn server_with_no_tls() -> Server {
        server(|_| {}).await
    }

    #[tokio::test]
    async fn mail_after_tls_without_a_new_ehlo_is_taken_and_recorded() {
        let server = tls_server(|_| {}).await;
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        client.expect("EHLO a.test\r\n", "250").await;
        client.expect("STARTTLS\r\n", "220 ").await;
        let mut client = client.upgrade(&server.tls().ca, "localhost").await.unwrap();
        client.expect("MAIL FROM:<a@x.test>\r\n", "250 ").await;
        client.expect("RCPT TO:<b@y.test>\r\n", "250 ").await;
        client.expect("DATA\r\n", "354 ").await;
        client.expect("hi\r\n.\r\n", "250 ").await;
        client.expect("QUIT\r\n", "221 ").await;
        let detail = "MAIL FROM:<a@x.test> came after the TLS handshake with no new EHLO";
        assert_eq!(
            server.deviations(),
            [("no-ehlo-after-starttls".into(), detail.into())]
        );
        // Without any HELO or EHLO, before TLS or after, MAIL is refused.
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        client.expect("STARTTLS\r\n", "220 ").await;
        let mut client = client.upgrade(&server.tls().ca, "localhost").await.unwrap();
        client.expect("MAIL FROM:<a@x.test>\r\n", "503 ").await;
        assert_eq!(server.deviations().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_handshake_ends_the_session_and_says_why() {
        let server = tls_server(|c| c.idle_timeout = Duration::from_millis(500)).await;
        // Plain text after STARTTLS's 220.
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        client.expect("STARTTLS\r\n", "220 ").await;
        client.send(b"EHLO a.test\r\n").await;
        assert_eq!(server.end(1).await, "tls-failed");
        // Plain text on the implicit-TLS port.
        let mut client = Client::connect(server.tls().addr).await;
        client.send(b"EHLO a.test\r\n").await;
        assert_eq!(server.end(2).await, "tls-failed");
        // Nothing at all on the implicit-TLS port (a client waiting for a greeting).
        let _silent = Client::connect(server.tls().addr).await;
        assert_eq!(server.end(3).await, "tls-failed");
        // A client that trusts other authorities only.
        let stdout = python(
            &server,
            "import smtplib, ssl\n\
             try:\n    smtplib.SMTP_SSL('127.0.0.1', TLSPORT, context=ssl.create_default_context(), timeout=5)\n\
             except ssl.SSLCertVerificationError as e:\n    print(e.verify_message)\n",
        )
        .await;
        assert_eq!(stdout, "unable to get local issuer certificate\n");
        assert_eq!(server.end(4).await, "tls-failed");
        let failures = server.tls_failures();
        let reasons: Vec<&str> = failures.iter().map(|f| f.1.as_str()).collect();
        assert!(reasons[0].starts_with("the client sent \"EHLO a.test\\r\\n\" in plain text instead of a TLS handshake: after the 220 reply to STARTTLS"), "{}", reasons[0]);
        assert!(
            reasons[1].contains("in plain text") && reasons[1].contains("implicit TLS, RFC 8314"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].starts_with("the client sent nothing for 500 ms instead of starting TLS"),
            "{}",
            reasons[2]
        );
        assert!(
            reasons[3].contains("UnknownCA")
                && reasons[3].contains("does it trust netgrade's certificate authority?"),
            "{}",
            reasons[3]
        );
        assert!(server.lines(2).is_empty() && server.lines(4).is_empty());
    }

    #[tokio::test]
    async fn talking_out_of_turn_is_seen_through_tls() {
        let server = tls_server(|c| c.greeting_delay = Duration::from_millis(300)).await;
        let client = Client::connect(server.tls().addr).await;
        let mut early = client
            .upgrade(&server.tls().ca, "smtp.mail.com")
            .await
            .unwrap();
        early.send(b"EHLO early.test\r\n").await;
        assert!(early.reply().await.starts_with("220 "));
        assert!(early.reply().await.starts_with("250-"));
        early.expect("QUIT\r\n", "221 ").await;
        let client = Client::connect(server.tls().addr).await;
        let mut client = client
            .upgrade(&server.tls().ca, "smtp.mail.com")
            .await
            .unwrap();
        assert!(client.reply().await.starts_with("220 "));
        assert!(client.talk("EHLO ahead.test\r\n").await.starts_with("250-"));
        client
            .send(b"MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n")
            .await;
        assert!(client.reply().await.starts_with("250 "));
        assert!(client.reply().await.starts_with("250 "));
        client
            .send(b"DATA\r\nSubject: x\r\n\r\nearly\r\n.\r\n")
            .await;
        assert!(client.reply().await.starts_with("354 "));
        assert!(client.reply().await.starts_with("250 "));
        client.expect("QUIT\r\n", "221 ").await;
        let kinds = ["early-command", "pipelined", "data-before-354"];
        let details = [
            "EHLO early.test\\r\\n",
            "RCPT TO:<b@y.test>\\r\\n",
            "Subject: x\\r\\n\\r\\nearly\\r\\n.\\r\\n",
        ];
        let expected: Vec<(String, String)> = kinds
            .iter()
            .zip(details)
            .map(|(k, d)| (k.to_string(), d.to_string()))
            .collect();
        assert_eq!(server.deviations(), expected);
        assert_eq!(server.delivered().len(), 1);
    }

    #[tokio::test]
    async fn no_credential_is_recorded_however_it_is_sent() {
        let server = server(|_| {}).await;
        let (user, password) = ("YWxpY2VAZ21haWwuY29t", SECRETS[1]);
        // AUTH LOGIN with both responses sent at once, the password with a bare LF.
        let mut client = Client::hello(server.addr).await;
        client
            .send(format!("AUTH LOGIN\r\n{user}\r\n{password}\n").as_bytes())
            .await;
        for code in ["334 ", "334 ", "235 "] {
            assert!(client.reply().await.starts_with(code));
        }
        client.expect("QUIT\r\n", "221 ").await;
        // PLAIN credentials pipelined with MAIL; then a cancelled LOGIN, a
        // password in plain text out of turn, and a second AUTH refused.
        let mut client = Client::hello(server.addr).await;
        let plain = format!("AUTH PLAIN {}\r\nMAIL FROM:<a@x.test>\r\n", SECRETS[2]);
        client.send(plain.as_bytes()).await;
        assert!(client.reply().await.starts_with("235 "));
        assert!(client.reply().await.starts_with("250 "));
        client.expect("RSET\r\n", "250 ").await;
        client
            .expect(&format!("AUTH LOGIN {user}\r\n"), "503 ")
            .await;
        client.expect(&format!("{password}\r\n"), "500 ").await;
        client.expect(&format!("{}\r\n", SECRETS[0]), "500 ").await;
        client.expect("QUIT\r\n", "221 ").await;
        let mut client = Client::hello(server.addr).await;
        client.expect("AUTH LOGIN\r\n", "334 ").await;
        client.expect("hunter2hunter2\r\n", "501 ").await;
        client.expect("AUTH PLAIN\r\n", "334 ").await;
        client.expect("*\r\n", "501 5.0.0").await;
        client.expect("QUIT\r\n", "221 ").await;
        assert_eq!(server.end(3).await, "client-quit");
        server.assert_no_secret(&SECRETS);
        let kinds = server.kinds();
        assert_eq!(kinds, ["pipelined", "bare-lf", "pipelined"]);
        let shown = server.lines(1)[5..7].to_vec();
        let login = [
            "In: <user name \"alice@gmail.com\" in base64>\\r\\n",
            "Out: 334 UGFzc3dvcmQ6\\r\\n",
        ];
        assert_eq!(shown, login);
        assert_eq!(server.lines(1)[7], "In: <password hidden>\\n");
        let hidden = "In: <a line after AUTH, hidden: it may hold a password>\\r\\n";
        assert_eq!(server.lines(2).iter().filter(|l| *l == hidden).count(), 2);
        assert!(server.lines(3).contains(&"In: *\\r\\n".to_string()));
    }

    #[tokio::test]
    async fn addresses_with_a_space_or_without_brackets_are_taken_and_recorded() {
        let server = server(|_| {}).await;
        let mut client = Client::hello(server.addr).await;
        client
            .expect("MAIL FROM: <alice@crepes.fr>\r\n", "250 ")
            .await;
        client.expect("RCPT TO:bob@hamburger.edu\r\n", "250 ").await;
        client.expect("RCPT TO: carol@x.test\r\n", "250 ").await;
        client.expect("DATA\r\n", "354 ").await;
        client.expect("hi\r\n.\r\n", "250 ").await;
        // Parameters need EHLO (RFC 5321 §4.1.1.11).
        client
            .expect("MAIL FROM:<a@x.test> SIZE=10\r\n", "555 ")
            .await;
        client.expect("EHLO client.test\r\n", "250").await;
        client
            .expect("MAIL FROM:alice@crepes.fr SIZE=10\r\n", "250 ")
            .await;
        client.expect("RCPT TO:<>\r\n", "501 ").await;
        client.expect("RCPT TO: \r\n", "501 ").await;
        client.expect("QUIT\r\n", "221 ").await;
        let to = vec!["bob@hamburger.edu".to_string(), "carol@x.test".to_string()];
        assert_eq!(
            server.delivered(),
            [("alice@crepes.fr".into(), to, b"hi\r\n".to_vec())]
        );
        let expected = [
            ("space-after-colon", "MAIL FROM: <alice@crepes.fr>"),
            ("bare-address", "RCPT TO:bob@hamburger.edu"),
            ("bare-address", "RCPT TO: carol@x.test"),
            ("bare-address", "MAIL FROM:alice@crepes.fr SIZE=10"),
        ];
        let expected = expected.map(|(k, d)| (k.to_string(), d.to_string()));
        assert_eq!(server.deviations(), expected);
    }

    #[tokio::test]
    async fn parameters_not_advertised_get_555_and_advertised_ones_are_checked() {
        let server = server(|_| {}).await;
        let mut client = Client::connect(server.addr).await;
        client.reply().await;
        client.expect("EHLO client.test\r\n", "250").await;
        let refused = [
            ("MAIL FROM:<a@x.test> SMTPUTF8\r\n", "555 5.5.4"),
            ("MAIL FROM:<a@x.test> RET=HDRS\r\n", "555 5.5.4"),
            ("MAIL FROM:<a@x.test> SIZE=99999999999\r\n", "552 5.3.4"),
            ("MAIL FROM:<a@x.test> SIZE=ten\r\n", "501 5.5.4"),
            ("MAIL FROM:<a@x.test> BODY=BINARYMIME\r\n", "501 5.5.4"),
        ];
        for (line, reply) in refused {
            client.expect(line, reply).await;
        }
        let taken = "MAIL FROM:<a@x.test> size=12 BODY=8bitmime AUTH=<>\r\n";
        client.expect(taken, "250 ").await;
        client
            .expect("RCPT TO:<b@y.test> NOTIFY=NEVER\r\n", "555 5.5.4")
            .await;
        client.expect("RCPT TO:<b@y.test>\r\n", "250 ").await;
        client.expect("DATA\r\n", "354 ").await;
        client.expect("hi\r\n.\r\n", "250 ").await;
        client.expect("QUIT\r\n", "221 ").await;
        assert_eq!(server.delivered().len(), 1);
    }

    #[tokio::test]
    async fn one_connection_too_many_gets_421_and_a_closed_slot_is_free_again() {
        let server = server(|_| {}).await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut client = Client::connect(server.addr).await;
            assert!(client.reply().await.starts_with("220 "));
            held.push(client);
        }
        let mut extra = Client::connect(server.addr).await;
        let reply = extra.reply().await;
        assert!(reply.starts_with("421 4.7.0 "), "{reply:?}");
        assert_eq!(extra.reply().await, "", "then the connection closes");
        let conn = u32::try_from(MAX_CONNECTIONS).unwrap() + 1;
        assert_eq!(server.end(conn).await, "server-closed");
        held[0].expect("QUIT\r\n", "221 ").await;
        drop(held.remove(0));
        server.end(1).await;
        let mut again = Client::connect(server.addr).await;
        assert!(again.reply().await.starts_with("220 "));
    }

    #[tokio::test]
    async fn a_full_storage_refuses_messages_with_452_and_says_so() {
        let config = SmtpConfig::new("mail");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = Recorder::with_limits(1 << 24, 10_000);
        let task = tokio::spawn(run(listener, None, config, rec.clone()));
        let server = Server {
            addr,
            rec,
            task,
            tls: None,
        };
        let mut client = Client::hello(server.addr).await;
        let body = format!("{}\r\n", "x".repeat(998)).repeat(6);
        for expect in ["250 ", "452 4.3.1", "250 "] {
            let body = if expect == "250 " && !server.delivered().is_empty() {
                "small\r\n".to_string()
            } else {
                body.clone()
            };
            client.envelope().await;
            client.expect(&format!("{body}.\r\n"), expect).await;
        }
        let sizes: Vec<usize> = server.delivered().iter().map(|d| d.2.len()).collect();
        assert_eq!(sizes, [6000, 7]);
        assert!(server.kinds().contains(&"storage-full".to_string()));
        assert!(
            server.rec.snapshot().cut_note().is_none(),
            "nothing was cut"
        );
    }

    /// Sessions the fuzzer starts from: plain, pipelined, with parameters,
    /// logins, STARTTLS, and every other command.
    const FUZZ_CORPUS: &[&[u8]] = &[
        b"EHLO c.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\nSubject: hi\r\n\r\n.dot\r\nbody\r\n.\r\nQUIT\r\n",
        b"HELO c.test\r\nMAIL FROM: <a@x.test>\r\nRCPT TO:b@y.test\r\nRSET\r\nNOOP\r\nVRFY bob\r\nHELP\r\nEXPN x\r\nQUIT\r\n",
        b"EHLO c.test\r\nMAIL FROM:<a@x.test> SIZE=20 BODY=8BITMIME AUTH=<>\r\nRCPT TO:<b@y.test> NOTIFY=NEVER\r\nRCPT TO:<c@y.test>\r\nDATA\r\nx\r\n.\r\n",
        b"EHLO c.test\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n\r\n.\r\nQUIT\r\n",
        b"EHLO c.test\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nAUTH PLAIN\r\n*\r\nQUIT\r\n",
        b"EHLO c.test\r\nSTARTTLS\r\n\x16\x03\x01\x00\x05hello",
        b"ehlo c.test\nmail from:<a@x.test>\nrcpt to:<b@y.test>\ndata\nline\n.\nquit\n",
    ];

    /// A correct session (EHLO, one message, QUIT), retried while the
    /// server is full (421), for 10 s at most; why it failed, if it did.
    async fn correct_smtp(addr: SocketAddr) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match timeout(Duration::from_secs(5), correct_smtp_once(addr)).await {
                Ok(Err(why))
                    if why.starts_with("421") && start.elapsed() < Duration::from_secs(10) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(result) => return result,
                Err(_) => return Err("a correct session took over 5 s".into()),
            }
        }
    }

    async fn correct_smtp_once(addr: SocketAddr) -> Result<(), String> {
        use tokio::io::AsyncBufReadExt;
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (read, mut write) = stream.into_split();
        let mut read = tokio::io::BufReader::new(read);
        let steps: [(&str, &str); 8] = [
            ("", "220 "),
            ("EHLO c.test\r\n", "250 "),
            ("MAIL FROM:<a@x.test> SIZE=30\r\n", "250 "),
            ("RCPT TO:<b@y.test>\r\n", "250 "),
            ("DATA\r\n", "354 "),
            ("Subject: ok\r\n\r\nhello\r\n", ""),
            (".\r\n", "250 "),
            ("QUIT\r\n", "221 "),
        ];
        for (send, expect) in steps {
            write
                .write_all(send.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            if expect.is_empty() {
                continue;
            }
            loop {
                let mut line = String::new();
                read.read_line(&mut line).await.map_err(|e| e.to_string())?;
                if line.starts_with(expect) {
                    break;
                }
                if !(line.len() > 4 && line.as_bytes()[3] == b'-') {
                    return Err(format!("{line:?} after {send:?}, expected {expect:?}"));
                }
            }
        }
        Ok(())
    }

    /// A server for fuzzing: short deadlines, TLS, recording into `rec`.
    async fn fuzz_server(rec: Recorder) -> Server {
        tls_server_with(rec, |c| {
            c.idle_timeout = Duration::from_millis(300);
            c.max_session = Duration::from_secs(2);
            c.quit_watch = Duration::ZERO;
            c.pipelining = true;
        })
        .await
    }

    #[tokio::test]
    async fn fuzz_smtp_mutated_sessions_leave_it_answering() {
        let server = fuzz_server(Recorder::new()).await;
        let plan = super::super::fuzz::Plan {
            seed: 0x5eed_0005,
            inputs: 100,
            parallel: 8,
            every: 25,
            early: 5,
        };
        let correct = || correct_smtp(server.addr);
        let alive = || !server.task.is_finished();
        let findings =
            super::super::fuzz::campaign(server.addr, FUZZ_CORPUS, plan, correct, alive).await;
        assert_eq!(findings.crashes(), 0, "{findings:?}");
        assert_eq!(findings.inputs, 100);
        // The inputs reach the command parser: nearly every session sent
        // lines (all but a few after the greeting).
        let mut talked = server.pick(|e| match e {
            EventKind::Line {
                conn, dir: Dir::In, ..
            } => Some(conn),
            _ => None,
        });
        talked.sort_unstable();
        talked.dedup();
        assert!(talked.len() >= 90, "{} sessions sent lines", talked.len());
        let early = server
            .kinds()
            .iter()
            .filter(|k| *k == "early-command")
            .count();
        assert!(early > 0, "no input came before the greeting");
    }

    /// A long campaign: `NETGRADE_FUZZ_INPUTS` inputs (1 000 000 by default)
    /// against a server recording as `netgrade serve` does.
    #[tokio::test]
    #[ignore = "long: run by bench/fuzz.sh"]
    async fn fuzz_campaign_smtp() {
        use super::super::fuzz;
        let (recorder, drain) = fuzz::serve_recorder();
        let server = fuzz_server(recorder).await;
        let before = fuzz::rss_kib();
        let plan = fuzz::long_plan(0x5eed_0005, 2);
        let correct = || correct_smtp(server.addr);
        let alive = || !server.task.is_finished();
        let findings = fuzz::campaign(server.addr, FUZZ_CORPUS, plan, correct, alive).await;
        fuzz::print("smtp", &findings, before, fuzz::rss_kib());
        drain.abort();
        assert_eq!(findings.crashes(), 0, "{findings:?}");
    }

    #[tokio::test]
    async fn smtplib_sends_size_and_body_8bitmime_over_starttls_and_login() {
        let server = tls_server(|_| {}).await;
        let stdout = python(
            &server,
            "import smtplib, ssl\n\
             from email.message import EmailMessage\n\
             m = EmailMessage()\n\
             m['From'] = 'alice@crepes.fr'; m['To'] = 'bob@hamburger.edu'; m['Subject'] = 'caf\\u00e9'\n\
             m.set_content('cr\\u00e8me br\\u00fbl\\u00e9e\\n', cte='8bit')\n\
             ctx = ssl.create_default_context(cafile='CAFILE')\n\
             s = smtplib.SMTP('127.0.0.1', PORT, timeout=5)\n\
             s.starttls(context=ctx)\n\
             print(s.login('alice', 'secret')[0])\n\
             print(s.send_message(m, mail_options=['BODY=8BITMIME']))\n\
             s.quit()\n",
        )
        .await;
        assert_eq!(stdout, "235\n{}\n");
        let mail = server
            .lines(1)
            .into_iter()
            .find(|l| l.starts_with("In: mail FROM:") || l.starts_with("In: MAIL FROM:"))
            .unwrap();
        assert!(mail.contains(" size="), "{mail}");
        assert!(mail.contains(" BODY=8BITMIME"), "{mail}");
        let delivered = server.delivered();
        assert_eq!(delivered.len(), 1);
        assert!(String::from_utf8_lossy(&delivered[0].2).contains("crème brûlée"));
    }
}
