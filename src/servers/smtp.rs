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
//! Choices the RFC leaves open:
//! - `AUTH PLAIN` and `AUTH LOGIN` accept any credentials (the lab's optional
//!   part); there is no `STARTTLS` (502).
//! - A message with a text line over 1000 octets, or larger than the SIZE
//!   advertised, is read to its lone dot and then refused (500 or 552).
//! - A line over its limit is recorded as its first octets (as many as the
//!   limit) and its line ending; its deviation gives its real length.
//! - Injection counts (`times`) are shared by all of a server's connections.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::trace::{Dir, EventKind, Recorder};

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
/// Longest deviation detail, in octets of the offending bytes.
const MAX_DETAIL: usize = 300;
/// How much room each read makes in the connection's buffer.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that its last reply is not destroyed by a reset.
const LINGER: Duration = Duration::from_secs(1);
/// Commands of RFC 5321 and common extensions that this server refuses with 502.
const UNIMPLEMENTED: &[&str] = &[
    "STARTTLS", "EXPN", "TURN", "ETRN", "ATRN", "BDAT", "SEND", "SOML", "SAML",
];

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
    /// How long a session may last in all before the server sends 421 and closes.
    pub max_session: Duration,
}

impl SmtpConfig {
    /// A server named `name`, greeting as `netgrade.test` at once, tolerating
    /// bare LF, injecting nothing, without PIPELINING, with a 10 s idle
    /// timeout and 60 s sessions.
    pub fn new(name: impl Into<String>) -> Self {
        SmtpConfig {
            name: name.into(),
            hostname: "netgrade.test".into(),
            greeting_delay: Duration::ZERO,
            strict_crlf: false,
            inject: Vec::new(),
            pipelining: false,
            idle_timeout: Duration::from_secs(10),
            max_session: Duration::from_secs(60),
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

/// Serves `listener` until the task is aborted, each connection as its own
/// task; aborting this task aborts them all. Connections are numbered from 1
/// in the order they are accepted.
pub async fn run(listener: TcpListener, config: SmtpConfig, recorder: Recorder) {
    let used = config.inject.iter().map(|_| AtomicU32::new(0)).collect();
    let shared = Arc::new(Shared {
        config,
        recorder,
        used,
    });
    let mut sessions = JoinSet::new();
    let mut count: u32 = 0;
    loop {
        let (stream, _) = super::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        count = count.saturating_add(1);
        sessions.spawn(Session::new(shared.clone(), stream, count).serve());
    }
}

/// What every connection of one server shares.
struct Shared {
    config: SmtpConfig,
    recorder: Recorder,
    /// How many times each injection was used.
    used: Vec<AtomicU32>,
}

impl Shared {
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

/// One client connection and its SMTP state.
struct Session {
    shared: Arc<Shared>,
    stream: TcpStream,
    id: u32,
    /// When the whole session must end.
    deadline: Instant,
    /// Received bytes not yet read as lines.
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
    /// `None` before HELO or EHLO, else whether it was EHLO.
    hello: Option<bool>,
    /// Whether AUTH succeeded.
    authenticated: bool,
    /// The reverse-path of the mail transaction under way.
    from: Option<String>,
    /// Its forward-paths.
    to: Vec<String>,
    /// Messages delivered so far.
    delivered: u32,
}

impl Session {
    /// Connection number `id`, just accepted.
    fn new(shared: Arc<Shared>, stream: TcpStream, id: u32) -> Self {
        Session {
            deadline: Instant::now() + shared.config.max_session,
            shared,
            stream,
            id,
            buf: Vec::new(),
            received: 0,
            reported: 0,
            early: None,
            recorded: 0,
            storage_left: MAX_DELIVERED,
            broken: false,
            hello: None,
            authenticated: false,
            from: None,
            to: Vec::new(),
            delivered: 0,
        }
    }

    /// Runs the session, records how it ended, and closes.
    async fn serve(mut self) {
        let Err(end) = self.converse().await;
        self.shared.recorder.record(EventKind::SessionEnd {
            server: self.shared.config.name.clone(),
            conn: self.id,
            how: end.how().into(),
        });
        let _ = self.stream.shutdown().await;
        let mut sink = [0u8; READ_CHUNK];
        let drain = async { while matches!(self.stream.read(&mut sink).await, Ok(1..)) {} };
        let _ = timeout(LINGER, drain).await;
    }

    /// The greeting, then commands until the session ends.
    async fn converse(&mut self) -> Result<Infallible, End> {
        let delay = self.shared.config.greeting_delay;
        tokio::time::sleep_until(self.deadline.min(Instant::now() + delay)).await;
        self.poll_ready();
        if !self.buf.is_empty() {
            self.deviate("early-command", show(&self.buf));
        }
        let greeting = format!("220 {} ESMTP netgrade", self.shared.config.hostname);
        self.reply(&greeting).await?;
        loop {
            let line = self.line(MAX_COMMAND_LINE).await?;
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
                show(&line.bytes)
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
            "MAIL" => self.mail(arg),
            "RCPT" => self.rcpt(arg),
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
            "HELP" => {
                "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY AUTH HELP QUIT".into()
            }
            "AUTH" if self.hello.is_none() => "503 5.5.1 Send HELO or EHLO first".into(),
            "AUTH" if self.authenticated => "503 5.5.1 Already authenticated".into(),
            "AUTH" if self.from.is_some() => "503 5.5.1 No AUTH during a mail transaction".into(),
            "AUTH" => return self.auth(arg).await,
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                return Err(End::Quit);
            }
            verb if UNIMPLEMENTED.contains(&verb) => "502 5.5.1 Command not implemented".into(),
            _ => "500 5.5.2 Command not recognized".into(),
        };
        self.reply(&reply).await
    }

    /// The reply to HELO or EHLO (`verb`), which also ends any mail transaction.
    fn helo(&mut self, verb: &str, domain: &str) -> String {
        if domain.is_empty() {
            return format!("501 5.5.4 Syntax: {verb} <domain>");
        }
        let ehlo = verb == "EHLO";
        self.hello = Some(ehlo);
        self.from = None;
        self.to.clear();
        let config = &self.shared.config;
        if !ehlo {
            return format!("250 {}", config.hostname);
        }
        let pipelining = if config.pipelining {
            "250-PIPELINING\n"
        } else {
            ""
        };
        format!(
            "250-{}\n250-8BITMIME\n250-SIZE {MAX_MESSAGE}\n250-ENHANCEDSTATUSCODES\n\
             250-AUTH PLAIN LOGIN\n{pipelining}250 HELP",
            config.hostname
        )
    }

    /// The reply to `MAIL <arg>`.
    fn mail(&mut self, arg: &str) -> String {
        if self.hello.is_none() {
            return "503 5.5.1 Send HELO or EHLO first".into();
        }
        if self.from.is_some() {
            return "503 5.5.1 Nested MAIL command".into();
        }
        match path(arg, "FROM") {
            Some(path) => {
                self.from = Some(path.into());
                "250 2.1.0 Ok".into()
            }
            None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
        }
    }

    /// The reply to `RCPT <arg>`.
    fn rcpt(&mut self, arg: &str) -> String {
        if self.from.is_none() {
            return "503 5.5.1 Need MAIL before RCPT".into();
        }
        match path(arg, "TO") {
            None | Some("") => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
            Some(_) if self.to.len() >= MAX_RECIPIENTS => "452 4.5.3 Too many recipients".into(),
            Some(path) => {
                self.to.push(path.into());
                "250 2.1.5 Ok".into()
            }
        }
    }

    /// After an accepted DATA (whose line ended in CRLF if `after_crlf`): 354,
    /// the message up to its lone dot, then its delivery and 250, or a refusal.
    async fn data(&mut self, mut after_crlf: bool) -> Result<(), End> {
        self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
        let strict = self.shared.config.strict_crlf;
        let mut message = Vec::new();
        let mut refusal = None;
        loop {
            let line = self.line(MAX_TEXT_LINE).await?;
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
                message.extend_from_slice(text.unwrap_or(line.text()));
                message.extend_from_slice(b"\r\n");
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
        self.storage_left = left;
        self.delivered += 1;
        self.shared.recorder.record(EventKind::Delivered {
            server: self.shared.config.name.clone(),
            conn: self.id,
            from,
            to,
            data: message,
        });
        let reply = format!("250 2.0.0 Ok: queued as {}.{}", self.id, self.delivered);
        self.reply(&reply).await
    }

    /// After an AUTH in the right place (RFC 4954): PLAIN and LOGIN, with or
    /// without an initial response, accept any well-formed credentials.
    async fn auth(&mut self, arg: &str) -> Result<(), End> {
        let mut words = arg.split_ascii_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let mut initial = words.next();
        let prompts: &[&str] = match mechanism.as_str() {
            "PLAIN" => &[""],
            "LOGIN" => &["VXNlcm5hbWU6", "UGFzc3dvcmQ6"],
            "" => return self.reply("501 5.5.4 Syntax: AUTH <mechanism>").await,
            _ => return self.reply("504 5.5.4 Unknown authentication type").await,
        };
        for prompt in prompts {
            let response = match initial.take() {
                Some(response) => response.to_owned(),
                None => {
                    self.reply(&format!("334 {prompt}")).await?;
                    let line = self.line(MAX_COMMAND_LINE).await?;
                    String::from_utf8_lossy(line.text()).trim().to_owned()
                }
            };
            if response == "*" {
                return self.reply("501 5.0.0 Authentication cancelled").await;
            }
            if !is_base64(&response) {
                return self.reply("501 5.5.2 Cannot decode response").await;
            }
        }
        self.authenticated = true;
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

    /// Reads the next line (up to LF) and records it. Without a whole line
    /// before the idle or session deadline, sends 421.
    async fn line(&mut self, limit: usize) -> Result<Line, End> {
        let idle = Instant::now() + self.shared.config.idle_timeout;
        let deadline = idle.min(self.deadline);
        let mut line = Line::default();
        loop {
            if let Some(lf) = self.buf.iter().position(|&b| b == b'\n') {
                line.push(&self.buf[..=lf], limit);
                self.buf.drain(..=lf);
                line.finish();
                self.record_line(self.shared.recorder.now(), Dir::In, line.bytes.clone());
                if !line.crlf() {
                    self.deviate("bare-lf", show(&line.bytes));
                }
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
                self.record_line(self.shared.recorder.now(), Dir::In, line.bytes);
            }
            if end == End::Timeout {
                let host = &self.shared.config.hostname;
                let reply = format!("421 4.4.2 {host} Timeout, closing connection");
                self.reply(&reply).await?;
            }
            return Err(end);
        }
    }

    /// Appends what the socket has to the buffer; 0 at end of stream.
    async fn read(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        let n = self.stream.read_buf(&mut self.buf).await?;
        self.received += n as u64;
        Ok(n)
    }

    /// Moves what the socket already holds into the buffer, without waiting.
    ///
    /// It reads through a duplicate of the socket: tokio's own `try_read`
    /// trusts readiness cached at the last poll and would miss bytes that
    /// arrived since.
    fn poll_ready(&mut self) {
        let Ok(fd) = self.stream.as_fd().try_clone_to_owned() else {
            return;
        };
        let mut socket = std::net::TcpStream::from(fd);
        let start = self.buf.len();
        self.buf.resize(start + READ_CHUNK, 0);
        let n = match socket.set_nonblocking(true) {
            Ok(()) => socket.read(&mut self.buf[start..]).unwrap_or(0),
            Err(_) => 0,
        };
        self.buf.truncate(start + n);
        self.received += n as u64;
    }

    /// What the client already sent beyond the line just read, unless that
    /// was reported already.
    fn unanswered(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            self.poll_ready();
        }
        let new = !self.buf.is_empty() && self.received > self.reported;
        new.then(|| {
            self.reported = self.received;
            show(&self.buf)
        })
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

/// The address of `FROM:<address> [parameters]` (keyword `FROM`) or
/// `TO:<address> [parameters]` (keyword `TO`). Spaces after the colon are
/// tolerated, as by most servers; parameters are ignored.
fn path<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    let rest = arg[keyword.len()..].strip_prefix(':')?.trim_start();
    let (path, params) = rest.strip_prefix('<')?.split_once('>')?;
    let valid = head.eq_ignore_ascii_case(keyword)
        && !path.contains(['<', ' '])
        && (params.is_empty() || params.starts_with(' '));
    valid.then_some(path)
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
    use tokio::process::Command;
    use tokio::task::JoinHandle;

    /// A running server; stopped when dropped.
    struct Server {
        addr: SocketAddr,
        rec: Recorder,
        task: JoinHandle<()>,
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
        let task = tokio::spawn(run(listener, config, rec.clone()));
        Server { addr, rec, task }
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

    /// Runs a Python script, `PORT` replaced by the server's port.
    async fn python(server: &Server, script: &str) -> String {
        let script = script.replace("PORT", &server.addr.port().to_string());
        command("python3", &["-c", &script]).await
    }

    /// A raw client that reads whole replies.
    struct Client {
        stream: TcpStream,
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
             s.user, s.password = 'bob', 'pw'\n\
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
        let lines = server.lines(2);
        let auth = lines.iter().skip_while(|l| !l.starts_with("In: AUTH"));
        let auth: Vec<&str> = auth.map(|l| &l[..l.len().min(13)]).take(6).collect();
        let login = ["In: AUTH LOGI", "Out: 334 VXNl", "In: Ym9i\\r\\n"];
        assert_eq!(
            auth,
            [
                login[0],
                login[1],
                login[2],
                "Out: 334 UGFz",
                "In: cHc=\\r\\n",
                "Out: 235 2.7."
            ]
        );
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
                     MAIL FROM:a@x.test 501|MAIL TO:<a@x.test> 501|mail from:<> BODY=8BITMIME 250|\
                     MAIL FROM:<c@x.test> 503|DATA 503|RCPT TO:<> 501|RCPT TO: <b@y.test> 250|\
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
        assert_eq!(path("FROM:<a@b>", "FROM"), Some("a@b"));
        assert_eq!(path("from: <a@b> SIZE=10", "FROM"), Some("a@b"));
        assert_eq!(path("FROM:<>", "FROM"), Some(""));
        let bad = [
            "FROM:",
            "FROM <a@b>",
            "FROM:a@b",
            "FROM:<a@b",
            "FROM:<a b@c>",
        ];
        for bad in bad.into_iter().chain(["FROM:<a@b>x", "TO:<a@b>", "FRÖ"]) {
            assert_eq!(path(bad, "FROM"), None, "{bad}");
        }
        for good in ["", "=", "YQ==", "YWI=", "YWJj", "AGFsaWNlAHNlY3JldA=="] {
            assert!(is_base64(good), "{good}");
        }
        for bad in ["Y", "YQ=", "Y===", "a!bc", "YQ==YQ=="] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
