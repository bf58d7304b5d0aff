//! The POP3 server: the reference mail server of the pop3-client lab.
//!
//! It serves one mailbox following RFC 1939 — USER/PASS login, STAT, LIST,
//! RETR, DELE, NOOP, RSET, QUIT and the optional UIDL and TOP — plus CAPA
//! from RFC 2449 (APOP is refused). The maildrop lives as long as the server:
//! deletions a session commits with QUIT are gone for the next session, and a
//! session that ends any other way deletes nothing. Like a real server it
//! locks the maildrop while a session has it open. `USER` with a name other
//! than the mailbox's gets `-ERR` at once (RFC 1939 allows either that or
//! failing at `PASS`; this way a student sees which of the two was wrong).
//!
//! Every line in and out is recorded byte for byte in the run's [`Recorder`],
//! and so is every liberty a client takes (a bare LF, an over-long command
//! line). Every wait has a deadline, so a client that sends garbage, never
//! sends, or never reads ends only its own session; at most
//! [`MAX_CONNECTIONS`] sessions run at once (one more gets `-ERR` and is
//! closed), and a connection's buffer holds at most one command line and a read.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, OwnedMutexGuard};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::trace::{Dir, EventKind, Recorder};

/// Longest command line accepted, CRLF included (RFC 2449 §4); longer gets `-ERR`.
const MAX_LINE: usize = 255;
/// Longest received line kept in the trace; longer lines are cut.
const MAX_RECORDED_LINE: usize = 1024;
/// Lines and deviations a server records before it stops (a flooding client).
pub const MAX_RECORDED_EVENTS: u32 = 200_000;
/// Sessions served at once; a client that opens more is answered `-ERR`
/// and closed.
pub const MAX_CONNECTIONS: usize = 32;
/// How much room each read makes in the connection's buffer.
const READ_CHUNK: usize = 4096;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that the kernel does not answer it with a reset
/// that could destroy the last reply before the client reads it.
const LINGER: Duration = Duration::from_secs(1);
/// How long `PASS` waits for another session to release the maildrop: a
/// client that drops one session and opens the next at once should not lose
/// the race against the server noticing.
const LOCK_WAIT: Duration = Duration::from_secs(1);
/// The capabilities CAPA lists (RFC 2449 §6).
const CAPABILITIES: &[u8] = b"USER\r\nUIDL\r\nTOP\r\n";
/// The commands of the TRANSACTION state.
const TRANSACTION: [&str; 8] = [
    "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "UIDL", "TOP",
];

/// How a session ended, as [`EventKind::SessionEnd`] says it.
type How = &'static str;
const CLIENT_QUIT: How = "client-quit";
const CLIENT_CLOSED: How = "client-closed";
const TIMEOUT: How = "timeout";
const ERROR: How = "error";
const SERVER_CLOSED: How = "server-closed";

/// Settings of one POP3 server.
#[derive(Clone, Debug, PartialEq)]
pub struct Pop3Config {
    /// Name in the trace.
    pub name: String,
    /// The user name of the one mailbox; `USER` with any other name gets `-ERR`.
    pub user: String,
    /// Its password: everything after `PASS ` (it may contain spaces).
    pub password: String,
    /// The maildrop, message 1 first, each an RFC 5322 message with CRLF line endings.
    pub messages: Vec<Vec<u8>>,
    /// How long the server waits for each command line before it says `-ERR`
    /// and closes, and for each reply to be written. RFC 1939 asks for at
    /// least 10 minutes; labs want less.
    pub idle_timeout: Duration,
    /// How long a session may last in all.
    pub max_session: Duration,
}

impl Pop3Config {
    /// A server named `name` holding `messages` for `user`, with a 10 s idle
    /// timeout and 60 s sessions.
    pub fn new(
        name: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
        messages: Vec<Vec<u8>>,
    ) -> Self {
        Pop3Config {
            name: name.into(),
            user: user.into(),
            password: password.into(),
            messages,
            idle_timeout: Duration::from_secs(10),
            max_session: Duration::from_secs(60),
        }
    }
}

/// Serves `listener` until the task is aborted, each connection as its own
/// task; aborting this task aborts them all.
///
/// The maildrop is shared across connections of one run: deletions applied by
/// one session's UPDATE state are visible to the next session, which numbers
/// the remaining messages from 1 again. Connections are numbered from 1 in the
/// order they are accepted. Each one records its lines
/// ([`EventKind::Line`]; a received line longer than 1024 octets is cut),
/// deviations ([`EventKind::Deviation`]: `bare-lf`, tolerated, and
/// `line-too-long`, refused), then — if it logged in — an [`EventKind::Maildrop`] whose
/// message numbers are positions in [`Pop3Config::messages`] (so they stay the
/// same across sessions), and last an [`EventKind::SessionEnd`] (`client-quit`,
/// `client-closed`, `timeout` or `error`).
pub async fn run(listener: TcpListener, config: Pop3Config, recorder: Recorder) {
    let uids = config
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| uid(i, m))
        .collect();
    let maildrop = Arc::new(Mutex::new(vec![true; config.messages.len()]));
    let shared = Arc::new(Shared {
        config,
        recorder,
        uids,
        maildrop,
        recorded: AtomicU32::new(0),
    });
    let mut connections = JoinSet::new();
    let mut refusals = JoinSet::new();
    let mut count: u32 = 0;
    loop {
        let (stream, _) = super::accept(&listener).await;
        while connections.try_join_next().is_some() {}
        while refusals.try_join_next().is_some() {}
        count = count.saturating_add(1);
        if connections.len() >= MAX_CONNECTIONS {
            if refusals.len() < MAX_CONNECTIONS {
                refusals.spawn(refuse(shared.clone(), stream, count));
            } else {
                shared.end(count, SERVER_CLOSED);
            }
            continue;
        }
        let conn = Conn {
            end: Instant::now() + shared.config.max_session,
            shared: shared.clone(),
            stream,
            id: count,
            buf: Vec::new(),
            offset: 0,
            state: State::Authorization { named: false },
        };
        connections.spawn(conn.serve());
    }
}

/// Answers connection `id`, one too many, with `-ERR` instead of the
/// greeting (RFC 1939 §4 lets a server refuse that way) and closes it.
async fn refuse(shared: Arc<Shared>, mut stream: TcpStream, id: u32) {
    let reply =
        format!("-ERR too many connections ({MAX_CONNECTIONS} at once), try again later\r\n");
    let at = shared.recorder.now();
    if let Ok(Ok(())) = timeout(LINGER, stream.write_all(reply.as_bytes())).await {
        let line = EventKind::Line {
            server: shared.config.name.clone(),
            conn: id,
            dir: Dir::Out,
            bytes: reply.into_bytes(),
        };
        shared.note_at(at, line);
    }
    shared.end(id, SERVER_CLOSED);
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(1..)) {} };
    let _ = timeout(LINGER, drain).await;
}

/// A unique id for message `index` (RFC 1939 §7): the FNV-1a hash of its
/// position and content in hex, so equal messages still get different ids.
fn uid(index: usize, message: &[u8]) -> String {
    let hash = (index as u64)
        .to_be_bytes()
        .iter()
        .chain(message)
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// What every connection of one server shares.
struct Shared {
    config: Pop3Config,
    recorder: Recorder,
    /// The unique id of each configured message.
    uids: Vec<String>,
    /// Whether each configured message is still in the maildrop; a session
    /// holds the lock from login to its end.
    maildrop: Arc<Mutex<Vec<bool>>>,
    /// Lines and deviations recorded so far, over all connections.
    recorded: AtomicU32,
}

impl Shared {
    /// Records that connection `id` ended `how`.
    fn end(&self, id: u32, how: How) {
        self.recorder.record(EventKind::SessionEnd {
            server: self.config.name.clone(),
            conn: id,
            how: how.into(),
        });
    }

    /// Records a line or deviation unless [`MAX_RECORDED_EVENTS`] are recorded already.
    fn note_at(&self, at: Duration, kind: EventKind) {
        let count = self.recorded.fetch_add(1, Ordering::Relaxed);
        if count < MAX_RECORDED_EVENTS {
            self.recorder.record_at(at, kind);
        } else if count == MAX_RECORDED_EVENTS {
            self.recorder.record_at(
                at,
                EventKind::RecordingCapped {
                    server: self.config.name.clone(),
                    limit: MAX_RECORDED_EVENTS,
                },
            );
        }
    }
}

/// Where a session is (RFC 1939 §3).
enum State {
    /// Before login; `named` once `USER` has named the mailbox.
    Authorization { named: bool },
    /// Logged in, with the maildrop locked.
    Transaction(Open),
}

/// A maildrop opened by a session.
struct Open {
    /// The lock, and whether each configured message is in the maildrop.
    maildrop: OwnedMutexGuard<Vec<bool>>,
    /// The session's messages, message 1 first: configured position and
    /// whether `DELE` marked it.
    messages: Vec<(usize, bool)>,
}

impl Open {
    /// Opens the locked `maildrop` with the messages it still holds.
    fn new(maildrop: OwnedMutexGuard<Vec<bool>>) -> Self {
        let messages = (0..maildrop.len())
            .filter(|&i| maildrop[i])
            .map(|i| (i, false))
            .collect();
        Open { maildrop, messages }
    }

    /// Number and configured position of each message not marked deleted.
    fn listing(&self) -> impl Iterator<Item = (usize, usize)> {
        let live = self.messages.iter().enumerate().filter(|(_, m)| !m.1);
        live.map(|(k, &(index, _))| (k + 1, index))
    }

    /// How many messages are not marked deleted, and their total size.
    fn summary(&self, messages: &[Vec<u8>]) -> (usize, usize) {
        self.listing().fold((0, 0), |(n, octets), (_, i)| {
            (n + 1, octets + messages[i].len())
        })
    }

    /// The number and configured position of the message `arg` names.
    fn find(&self, arg: &str) -> Result<(usize, usize), Reply> {
        let number =
            decimal(arg).ok_or_else(|| Reply::err(format!("invalid message number {arg:?}")))?;
        match number.checked_sub(1).and_then(|k| self.messages.get(k)) {
            None => Err(Reply::err(format!("no such message {arg}"))),
            Some((_, true)) => Err(Reply::err(format!("message {number} already deleted"))),
            Some(&(index, false)) => Ok((number, index)),
        }
    }

    /// Answers a TRANSACTION command.
    fn command(&mut self, shared: &Shared, keyword: &str, rest: Option<&str>) -> Answer {
        let messages = &shared.config.messages;
        Ok(match keyword {
            "STAT" => {
                args::<0>(rest, "STAT")?;
                let (n, octets) = self.summary(messages);
                Reply::ok(format!("{n} {octets}"))
            }
            "LIST" | "UIDL" => {
                let item = |i: usize| match keyword {
                    "LIST" => messages[i].len().to_string(),
                    _ => shared.uids[i].clone(),
                };
                if rest.is_some() {
                    let [arg] = args(rest, &format!("{keyword} [msg]"))?;
                    let (number, i) = self.find(arg)?;
                    return Ok(Reply::ok(format!("{number} {}", item(i))));
                }
                let body: String = self
                    .listing()
                    .map(|(number, i)| format!("{number} {}\r\n", item(i)))
                    .collect();
                let (n, octets) = self.summary(messages);
                let status = match keyword {
                    "LIST" => format!("{n} messages ({octets} octets)"),
                    _ => "unique-id listing follows".into(),
                };
                Reply::multi(status, body.into_bytes())
            }
            "RETR" => {
                let [arg] = args(rest, "RETR msg")?;
                let message = &messages[self.find(arg)?.1];
                Reply::multi(format!("{} octets", message.len()), message.clone())
            }
            "TOP" => {
                let [arg, lines] = args(rest, "TOP msg n")?;
                let (_, i) = self.find(arg)?;
                let lines = decimal(lines)
                    .ok_or_else(|| Reply::err(format!("invalid line count {lines:?}")))?;
                Reply::multi("top of message follows", top(&messages[i], lines).to_vec())
            }
            "DELE" => {
                let [arg] = args(rest, "DELE msg")?;
                let (number, _) = self.find(arg)?;
                self.messages[number - 1].1 = true;
                Reply::ok(format!("message {number} deleted"))
            }
            "NOOP" => {
                args::<0>(rest, "NOOP")?;
                Reply::ok("")
            }
            "RSET" => {
                args::<0>(rest, "RSET")?;
                self.messages.iter_mut().for_each(|m| m.1 = false);
                let (n, octets) = self.summary(messages);
                Reply::ok(format!("maildrop has {n} messages ({octets} octets)"))
            }
            "USER" | "PASS" | "APOP" => return Err(Reply::err("already logged in")),
            _ => return Err(Reply::err("unknown command")),
        })
    }
}

/// `arg` as a decimal number: digits only, no sign.
fn decimal(arg: &str) -> Option<usize> {
    arg.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| arg.parse().ok())?
}

/// Numbers (configured positions from 1) of the messages in `maildrop`.
fn numbers(maildrop: &[bool]) -> Vec<u32> {
    (1..)
        .zip(maildrop)
        .filter(|(_, p)| **p)
        .map(|(n, _)| n)
        .collect()
}

/// The headers, the blank line and the first `lines` body lines of `message` (RFC 1939 §7).
fn top(message: &[u8], lines: usize) -> &[u8] {
    let mut all = message.split_inclusive(|&b| b == b'\n');
    let mut len = 0;
    for line in all.by_ref() {
        len += line.len();
        if line == b"\r\n" || line == b"\n" {
            break;
        }
    }
    len += all.take(lines).map(<[u8]>::len).sum::<usize>();
    &message[..len]
}

/// A reply to send: `+OK` ones as `Ok`, `-ERR` ones as `Err` (so `?` sends them).
type Answer = Result<Reply, Reply>;

/// The exactly `N` space-separated arguments in `rest`, or a `-ERR` with the usage.
fn args<'a, const N: usize>(rest: Option<&'a str>, usage: &str) -> Result<[&'a str; N], Reply> {
    let args: Vec<&str> = rest.map_or_else(Vec::new, |r| r.split(' ').collect());
    match <[&str; N]>::try_from(args) {
        Ok(args) if !args.contains(&"") => Ok(args),
        _ => Err(Reply::err(format!("usage: {usage}"))),
    }
}

/// One reply: a status line and, for multi-line replies, a body.
#[derive(Debug)]
struct Reply {
    /// The status line without its CRLF.
    status: String,
    /// The body of a multi-line reply, before dot-stuffing.
    body: Option<Vec<u8>>,
    /// Whether the session ends once it is sent (QUIT).
    quit: bool,
}

impl Reply {
    /// A single-line reply.
    fn new(status: String) -> Self {
        Reply {
            status,
            body: None,
            quit: false,
        }
    }

    /// `+OK text`, or `+OK` alone if `text` is empty.
    fn ok(text: impl AsRef<str>) -> Self {
        Reply::new(format!("+OK {}", text.as_ref()).trim_end().into())
    }

    /// `-ERR text`.
    fn err(text: impl AsRef<str>) -> Self {
        Reply::new(format!("-ERR {}", text.as_ref()))
    }

    /// `+OK text`, then `body`.
    fn multi(text: impl AsRef<str>, body: Vec<u8>) -> Self {
        Reply {
            body: Some(body),
            ..Reply::ok(text)
        }
    }

    /// The bytes to send: the status line, then any body dot-stuffed, ending
    /// with CRLF, and the terminating `.` line (RFC 1939 §3).
    fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.status).into_bytes();
        if let Some(body) = &self.body {
            for line in body.split_inclusive(|&b| b == b'\n') {
                if line.starts_with(b".") {
                    out.push(b'.');
                }
                out.extend_from_slice(line);
            }
            if !(body.is_empty() || body.ends_with(b"\n")) {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
        }
        out
    }
}

/// One client connection.
struct Conn {
    shared: Arc<Shared>,
    stream: TcpStream,
    id: u32,
    /// Received bytes not yet taken as lines.
    buf: Vec<u8>,
    /// How many bytes came before `buf`: where the next line starts.
    offset: u64,
    /// When the session must end.
    end: Instant,
    state: State,
}

impl Conn {
    /// Runs the session, then records how the maildrop and the session ended.
    async fn serve(mut self) {
        let how = self.session().await;
        let state = std::mem::replace(&mut self.state, State::Authorization { named: false });
        let shared = &self.shared;
        if let State::Transaction(open) = state {
            shared.recorder.record(EventKind::Maildrop {
                server: shared.config.name.clone(),
                conn: self.id,
                updated: false,
                deleted: Vec::new(),
                remaining: numbers(&open.maildrop),
            });
        }
        shared.end(self.id, how);
        if how == CLIENT_QUIT || how == TIMEOUT {
            self.linger().await;
        }
    }

    /// Greets, then answers commands until QUIT, the client leaving, or a deadline.
    async fn session(&mut self) -> How {
        let greeting = Reply::ok("netgrade POP3 server ready");
        if let Err(how) = self.send(&greeting, self.deadline()).await {
            return how;
        }
        loop {
            let reply = match self.next_line(self.deadline()).await {
                Ok((line, len)) => self.answer(&line, len).await,
                Err(TIMEOUT) => {
                    let text = if Instant::now() >= self.end {
                        "session time limit reached, closing"
                    } else {
                        "idle timeout, closing"
                    };
                    let _ = self.send(&Reply::err(text), Instant::now() + LINGER).await;
                    return TIMEOUT;
                }
                Err(how) => return how,
            };
            if let Err(how) = self.send(&reply, self.deadline()).await {
                return how;
            }
            if reply.quit {
                return CLIENT_QUIT;
            }
        }
    }

    /// When the next command must have arrived, or the next reply be sent.
    fn deadline(&self) -> Instant {
        (Instant::now() + self.shared.config.idle_timeout).min(self.end)
    }

    /// Records and answers one received line of `len` octets, given with its
    /// ending (or cut, if longer than [`MAX_RECORDED_LINE`]), noting its deviations.
    async fn answer(&mut self, line: &[u8], len: usize) -> Reply {
        let offset = self.offset;
        self.offset += len as u64;
        let shown = crate::checks::quote(&line[..line.len().min(40)]);
        self.note_at(self.shared.recorder.now(), Dir::In, line);
        if len > MAX_LINE {
            let detail = format!(
                "{len}-octet command line at byte {offset} ({shown}…); \
                 RFC 2449 allows {MAX_LINE} octets with CRLF"
            );
            self.deviation("line-too-long", detail);
            return Reply::err("line too long");
        }
        let text = &line[..line.len() - 1];
        let text = match text.strip_suffix(b"\r") {
            Some(text) => text,
            None => {
                let detail = format!("{shown} at byte {offset} ends with LF alone, not CRLF");
                self.deviation("bare-lf", detail);
                text
            }
        };
        let text = String::from_utf8_lossy(text);
        self.respond(&text).await.unwrap_or_else(|err| err)
    }

    /// Answers the command `line` (without its ending).
    async fn respond(&mut self, line: &str) -> Answer {
        let (keyword, rest) = match line.split_once(' ') {
            Some((keyword, rest)) => (keyword, Some(rest)),
            None => (line, None),
        };
        let keyword = keyword.to_ascii_uppercase();
        let shared = self.shared.clone();
        let config = &shared.config;
        match (keyword.as_str(), &mut self.state) {
            ("CAPA", _) => {
                args::<0>(rest, "CAPA")?;
                Ok(Reply::multi(
                    "capability list follows",
                    CAPABILITIES.to_vec(),
                ))
            }
            ("QUIT", _) => {
                args::<0>(rest, "QUIT")?;
                Ok(self.quit())
            }
            ("USER", State::Authorization { named }) => {
                let [name] = args(rest, "USER name")?;
                *named = name == config.user;
                if *named {
                    Ok(Reply::ok(format!("{name} is a valid mailbox")))
                } else {
                    Err(Reply::err(format!("no mailbox for {name:?}")))
                }
            }
            ("PASS", State::Authorization { named }) => {
                let password = rest
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| Reply::err("usage: PASS string"))?;
                if !std::mem::take(named) {
                    return Err(Reply::err("send USER first"));
                }
                if password != config.password {
                    return Err(Reply::err("invalid password"));
                }
                let lock = shared.maildrop.clone().lock_owned();
                let maildrop = timeout(LOCK_WAIT, lock)
                    .await
                    .map_err(|_| Reply::err("maildrop locked by another session"))?;
                let open = Open::new(maildrop);
                let (n, octets) = open.summary(&config.messages);
                self.state = State::Transaction(open);
                Ok(Reply::ok(format!(
                    "maildrop has {n} messages ({octets} octets)"
                )))
            }
            ("APOP", State::Authorization { .. }) => Err(Reply::err("APOP not supported")),
            (keyword, State::Authorization { .. }) if TRANSACTION.contains(&keyword) => {
                Err(Reply::err("log in first (USER, then PASS)"))
            }
            (_, State::Authorization { .. }) => Err(Reply::err("unknown command")),
            (keyword, State::Transaction(open)) => open.command(&shared, keyword, rest),
        }
    }

    /// Ends the session: in TRANSACTION, commits its deletions (the UPDATE
    /// state) and releases the maildrop before the reply goes out.
    fn quit(&mut self) -> Reply {
        let state = std::mem::replace(&mut self.state, State::Authorization { named: false });
        let text = match state {
            State::Authorization { .. } => "netgrade POP3 server signing off".into(),
            State::Transaction(mut open) => {
                let mut deleted = Vec::new();
                for &(index, marked) in &open.messages {
                    if marked {
                        open.maildrop[index] = false;
                        deleted.push(index as u32 + 1);
                    }
                }
                let remaining = numbers(&open.maildrop);
                let text = format!(
                    "netgrade POP3 server signing off ({} messages left)",
                    remaining.len()
                );
                self.shared.recorder.record(EventKind::Maildrop {
                    server: self.shared.config.name.clone(),
                    conn: self.id,
                    updated: true,
                    deleted,
                    remaining,
                });
                text
            }
        };
        Reply {
            quit: true,
            ..Reply::ok(text)
        }
    }

    /// Reads the next line before `deadline`: its bytes, cut to
    /// [`MAX_RECORDED_LINE`], and its length. Over-long lines are discarded
    /// as they arrive, so the buffer stays small. If the session ends first,
    /// records what arrived of the line.
    async fn next_line(&mut self, deadline: Instant) -> Result<(Vec<u8>, usize), How> {
        let mut line = Vec::new();
        let mut skipped = 0;
        let mut scanned = 0;
        let keep = |line: &mut Vec<u8>, bytes: &[u8]| {
            let room = MAX_RECORDED_LINE.saturating_sub(line.len());
            line.extend_from_slice(&bytes[..room.min(bytes.len())]);
        };
        let end = loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i + 1;
                keep(&mut line, &self.buf[..end]);
                self.buf.drain(..end);
                return Ok((line, skipped + end));
            }
            if self.buf.len() > MAX_LINE {
                keep(&mut line, &self.buf);
                skipped += self.buf.len();
                self.buf.clear();
            }
            scanned = self.buf.len();
            self.buf.reserve(READ_CHUNK);
            match timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(1..)) => {}
                Ok(Ok(0)) => break CLIENT_CLOSED,
                Ok(Err(e)) => break gone(&e),
                Err(_) => break TIMEOUT,
            }
        };
        keep(&mut line, &self.buf);
        if !line.is_empty() {
            self.note_at(self.shared.recorder.now(), Dir::In, &line);
        }
        Err(end)
    }

    /// Sends `reply` before `deadline`, then records its lines.
    async fn send(&mut self, reply: &Reply, deadline: Instant) -> Result<(), How> {
        let out = reply.encode();
        let at = self.shared.recorder.now();
        match timeout_at(deadline, self.stream.write_all(&out)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(gone(&e)),
            Err(_) => return Err(TIMEOUT),
        }
        for line in out.split_inclusive(|&b| b == b'\n') {
            self.note_at(at, Dir::Out, line);
        }
        Ok(())
    }

    /// Records a line as sent or received at `at`.
    fn note_at(&self, at: Duration, dir: Dir, bytes: &[u8]) {
        let (server, conn) = (self.shared.config.name.clone(), self.id);
        let bytes = bytes.to_vec();
        let line = EventKind::Line {
            server,
            conn,
            dir,
            bytes,
        };
        self.shared.note_at(at, line);
    }

    /// Records a deviation of kind `kind`.
    fn deviation(&self, kind: &str, detail: String) {
        let deviation = EventKind::Deviation {
            server: self.shared.config.name.clone(),
            conn: self.id,
            kind: kind.into(),
            detail,
        };
        self.shared.note_at(self.shared.recorder.now(), deviation);
    }

    /// Closes the sending side, then discards what the client still sends
    /// until it closes too or [`LINGER`] passes.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let mut sink = [0u8; READ_CHUNK];
        let drain = async { while matches!(self.stream.read(&mut sink).await, Ok(1..)) {} };
        let _ = timeout(LINGER, drain).await;
    }
}

/// How a session ends on I/O error `e`: a reset or broken pipe is the client leaving.
fn gone(e: &io::Error) -> How {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match e.kind() {
        BrokenPipe | ConnectionAborted | ConnectionReset => CLIENT_CLOSED,
        _ => ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::Command;
    use tokio::task::JoinHandle;

    const USER: &str = "alice";
    const PASS: &str = "open sesame";
    const M1: &[u8] =
        b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: one\r\n\r\nHello Alice.\r\n";
    const M2: &[u8] = b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n";
    const M3: &[u8] = b"Subject: three\r\n\r\nline 1\r\nline 2\r\nline 3\r\n";

    /// A message of about 300 KB whose every seventh line starts with a dot.
    fn large() -> Vec<u8> {
        let mut m = b"Subject: large\r\n\r\n".to_vec();
        for i in 0..4000 {
            let dot = if i % 7 == 0 { "." } else { "" };
            m.extend_from_slice(format!("{dot}{i:05} {}\r\n", "x".repeat(70)).as_bytes());
        }
        m
    }

    /// A running server; stopped when dropped.
    struct Server {
        addr: std::net::SocketAddr,
        rec: Recorder,
        task: JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        fn url(&self, path: &str) -> String {
            format!("pop3://{}{path}", self.addr)
        }

        /// What `pick` takes from each event, in order.
        fn pick<T>(&self, pick: impl FnMut(EventKind) -> Option<T>) -> Vec<T> {
            let events = self.rec.snapshot().events.into_iter();
            events.map(|e| e.kind).filter_map(pick).collect()
        }

        /// `(conn, updated, deleted, remaining)` of every Maildrop event.
        fn maildrops(&self) -> Vec<(u32, bool, Vec<u32>, Vec<u32>)> {
            self.pick(|e| match e {
                EventKind::Maildrop {
                    conn,
                    updated,
                    deleted,
                    remaining,
                    ..
                } => Some((conn, updated, deleted, remaining)),
                _ => None,
            })
        }

        /// How each session ended, in order.
        fn ends(&self) -> Vec<String> {
            self.pick(|e| match e {
                EventKind::SessionEnd { how, .. } => Some(how),
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

        /// The lines received (`Dir::In`) or sent, as text.
        fn lines(&self, dir: Dir) -> Vec<String> {
            self.pick(|e| match e {
                EventKind::Line { dir: d, bytes, .. } if d == dir => Some(text(&bytes)),
                _ => None,
            })
        }

        /// Waits (2 s at most) until `n` sessions have ended.
        async fn ended(&self, n: usize) {
            let deadline = Instant::now() + Duration::from_secs(2);
            while self.ends().len() < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    async fn server(tune: impl FnOnce(&mut Pop3Config)) -> Server {
        let messages = vec![M1.to_vec(), M2.to_vec(), M3.to_vec()];
        let mut config = Pop3Config::new("pop", USER, PASS, messages);
        tune(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rec = Recorder::new();
        let task = tokio::spawn(run(listener, config, rec.clone()));
        Server { addr, rec, task }
    }

    /// Runs `program` with `args` (10 s at most).
    async fn output(program: &str, args: &[&str]) -> std::process::Output {
        timeout(
            Duration::from_secs(10),
            Command::new(program).args(args).kill_on_drop(true).output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// Runs `program` with `args`, which must succeed; its standard output.
    async fn command(program: &str, args: &[&str]) -> Vec<u8> {
        let output = output(program, args).await;
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            text(&output.stderr)
        );
        output.stdout
    }

    /// Runs a Python script that starts with `port` and `login()` (a logged-in
    /// `poplib.POP3`) defined, and the messages as `M1`, `M2`, `M3`.
    async fn poplib(server: &Server, script: &str) -> String {
        let hex = |m: &[u8]| m.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let prelude = format!(
            "import poplib\n\
             M1, M2, M3 = (bytes.fromhex(h) for h in ('{}', '{}', '{}'))\n\
             def login():\n    p = poplib.POP3('127.0.0.1', {}, timeout=5)\n    \
             p.user('{USER}'); p.pass_('{PASS}'); return p\n\
             def whole(lines): return b''.join(l + b'\\r\\n' for l in lines)\n",
            hex(M1),
            hex(M2),
            hex(M3),
            server.addr.port(),
        );
        text(&command("python3", &["-c", &(prelude + script)]).await)
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// A client on a raw socket.
    struct Raw(BufReader<TcpStream>);

    impl Raw {
        /// Connects and reads the greeting.
        async fn connect(server: &Server) -> Raw {
            let mut raw = Raw(BufReader::new(
                TcpStream::connect(server.addr).await.unwrap(),
            ));
            assert_eq!(raw.line().await, "+OK netgrade POP3 server ready\r\n");
            raw
        }

        /// Reads one line (5 s at most); empty at end of stream.
        async fn line(&mut self) -> String {
            let mut line = Vec::new();
            timeout(Duration::from_secs(5), self.0.read_until(b'\n', &mut line))
                .await
                .expect("a line in time")
                .unwrap();
            text(&line)
        }

        /// Reads lines up to and including the `.` line.
        async fn multi(&mut self) -> String {
            let mut all = String::new();
            while !all.ends_with("\r\n.\r\n") {
                let line = self.line().await;
                assert!(!line.is_empty(), "{all}");
                all += &line;
            }
            all
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.0.get_mut().write_all(bytes).await.unwrap();
        }

        /// Sends `command` with CRLF; the first reply line.
        async fn cmd(&mut self, command: &str) -> String {
            self.send(format!("{command}\r\n").as_bytes()).await;
            self.line().await
        }

        /// Logs in.
        async fn login(&mut self) {
            assert!(self.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
            assert!(self.cmd(&format!("PASS {PASS}")).await.starts_with("+OK"));
        }
    }

    #[tokio::test]
    async fn poplib_reads_lists_and_unstuffs() {
        let server = server(|_| {}).await;
        let stdout = poplib(
            &server,
            "p = login()\n\
             print(p.stat())\n\
             print(p.list()[1])\n\
             print(p.list(3))\n\
             print(whole(p.retr(2)[1]) == M2, whole(p.retr(1)[1]) == M1)\n\
             print(p.uidl()[1])\n\
             print(p.top(3, 1)[1], p.top(1, 0)[1][-2:])\n\
             print(p.capa())\n\
             print(p.quit())\n",
        )
        .await;
        let sizes = [M1.len(), M2.len(), M3.len()];
        let uids: Vec<String> = [M1, M2, M3]
            .iter()
            .enumerate()
            .map(|(i, m)| uid(i, m))
            .collect();
        let expected = format!(
            "(3, {})\n\
             [b'1 {}', b'2 {}', b'3 {}']\n\
             b'+OK 3 {}'\n\
             True True\n\
             [b'1 {}', b'2 {}', b'3 {}']\n\
             [b'Subject: three', b'', b'line 1'] [b'Subject: one', b'']\n\
             {{'USER': [], 'UIDL': [], 'TOP': []}}\n\
             b'+OK netgrade POP3 server signing off (3 messages left)'\n",
            sizes.iter().sum::<usize>(),
            sizes[0],
            sizes[1],
            sizes[2],
            sizes[2],
            uids[0],
            uids[1],
            uids[2],
        );
        assert_eq!(stdout, expected);
        server.ended(1).await;
        assert_eq!(server.maildrops(), [(1, true, vec![], vec![1, 2, 3])]);
        assert_eq!(server.ends(), [CLIENT_QUIT]);
        assert!(server.deviations().is_empty());
        let lines = server.lines(Dir::In);
        assert_eq!(
            lines[..2],
            [format!("USER {USER}\r\n"), format!("PASS {PASS}\r\n")]
        );
        let sent = server.lines(Dir::Out);
        assert_eq!(sent[0], "+OK netgrade POP3 server ready\r\n");
        assert!(sent.contains(&"..leading dot\r\n".to_string()), "{sent:?}");
    }

    #[tokio::test]
    async fn deletions_last_only_past_quit() {
        let server = server(|_| {}).await;
        let stdout = poplib(
            &server,
            "p = login(); p.dele(1); p.rset(); p.dele(2)\n\
             print(p.stat(), p.list()[1]); p.quit()\n\
             p = login(); print(p.stat(), whole(p.retr(2)[1]) == M3); p.dele(1); p.close()\n\
             p = login(); print(p.stat(), p.uidl(1)); p.dele(1); p.quit()\n\
             p = login(); print(p.stat(), whole(p.retr(1)[1]) == M3); p.quit()\n",
        )
        .await;
        let (s1, s3) = (M1.len(), M3.len());
        assert_eq!(
            stdout,
            format!(
                "(2, {}) [b'1 {s1}', b'3 {s3}']\n\
                 (2, {}) True\n\
                 (2, {}) b'+OK 1 {}'\n\
                 (1, {s3}) True\n",
                s1 + s3,
                s1 + s3,
                s1 + s3,
                uid(0, M1),
            )
        );
        server.ended(4).await;
        assert_eq!(
            server.maildrops(),
            [
                (1, true, vec![2], vec![1, 3]),
                (2, false, vec![], vec![1, 3]),
                (3, true, vec![1], vec![3]),
                (4, true, vec![], vec![3]),
            ]
        );
        let ends = [CLIENT_QUIT, CLIENT_CLOSED, CLIENT_QUIT, CLIENT_QUIT];
        assert_eq!(server.ends(), ends);
    }

    #[tokio::test]
    async fn curl_retrieves_and_lists() {
        let server = server(|c| c.messages.push(large())).await;
        let auth = format!("{USER}:{PASS}");
        let get = async |path: &str| command("curl", &["-s", &server.url(path), "-u", &auth]).await;
        assert_eq!(get("/2").await, M2);
        assert_eq!(get("/4").await, large());
        let listing = format!(
            "1 {}\r\n2 {}\r\n3 {}\r\n4 {}\r\n",
            M1.len(),
            M2.len(),
            M3.len(),
            large().len()
        );
        assert_eq!(text(&get("/").await), listing);
        let wrong = output("curl", &["-s", &server.url("/1"), "-u", "alice:nope"]).await;
        assert_eq!(wrong.status.code(), Some(67), "login denied");
        server.ended(4).await;
        assert_eq!(server.ends()[..3], [CLIENT_QUIT, CLIENT_QUIT, CLIENT_QUIT]);
        assert!(server.lines(Dir::In).contains(&"CAPA\r\n".to_string()));
        assert!(server.deviations().is_empty());
    }

    #[tokio::test]
    async fn refuses_what_it_must_in_each_state() {
        let server = server(|_| {}).await;
        let mut raw = Raw::connect(&server).await;
        for (command, reply) in [
            ("STAT", "-ERR log in first (USER, then PASS)"),
            ("RETR 1", "-ERR log in first (USER, then PASS)"),
            ("PASS x", "-ERR send USER first"),
            ("USER bob", "-ERR no mailbox for \"bob\""),
            ("USER alice", "+OK alice is a valid mailbox"),
            ("PASS wrong", "-ERR invalid password"),
            (&format!("PASS {PASS}"), "-ERR send USER first"),
            ("FOO", "-ERR unknown command"),
            ("", "-ERR unknown command"),
            (
                "APOP alice c4c9334bac560ecc979e58001b3e22fb",
                "-ERR APOP not supported",
            ),
            ("user alice", "+OK alice is a valid mailbox"),
            (&format!("pass {PASS}"), "+OK maildrop has 3 messages"),
            ("USER alice", "-ERR already logged in"),
            ("LIST 99", "-ERR no such message 99"),
            ("LIST 0", "-ERR no such message 0"),
            ("LIST x", "-ERR invalid message number \"x\""),
            ("LIST -1", "-ERR invalid message number \"-1\""),
            ("LIST 1 2", "-ERR usage: LIST [msg]"),
            ("LIST  1", "-ERR usage: LIST [msg]"),
            ("RETR", "-ERR usage: RETR msg"),
            ("TOP 1", "-ERR usage: TOP msg n"),
            ("TOP 1 x", "-ERR invalid line count \"x\""),
            ("STAT now", "-ERR usage: STAT"),
            ("DELE 1", "+OK message 1 deleted"),
            ("DELE 1", "-ERR message 1 already deleted"),
            ("RETR 1", "-ERR message 1 already deleted"),
            ("LIST 1", "-ERR message 1 already deleted"),
            ("TOP 1 0", "-ERR message 1 already deleted"),
            ("UIDL 1", "-ERR message 1 already deleted"),
            ("list 3", &format!("+OK 3 {}", M3.len())),
            ("Stat", &format!("+OK 2 {}", M2.len() + M3.len())),
            ("NOOP", "+OK"),
        ] {
            let got = raw.cmd(command).await;
            assert!(got.starts_with(reply), "{command:?} got {got:?}");
            assert!(got.ends_with("\r\n"));
        }
        assert_eq!(
            raw.cmd("LIST").await,
            format!("+OK 2 messages ({} octets)\r\n", M2.len() + M3.len())
        );
        let listing = format!("2 {}\r\n3 {}\r\n.\r\n", M2.len(), M3.len());
        assert_eq!(raw.multi().await, listing);
        assert!(
            raw.cmd("RSET")
                .await
                .starts_with("+OK maildrop has 3 messages")
        );
        assert_eq!(raw.cmd("CAPA").await, "+OK capability list follows\r\n");
        assert_eq!(raw.multi().await, "USER\r\nUIDL\r\nTOP\r\n.\r\n");
        assert_eq!(raw.cmd("TOP 2 9").await, "+OK top of message follows\r\n");
        let stuffed = "Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nend\r\n.\r\n";
        assert_eq!(raw.multi().await, stuffed);
        assert!(raw.cmd("QUIT").await.starts_with("+OK"));
        assert_eq!(raw.line().await, "", "closed after QUIT");
        server.ended(1).await;
        assert_eq!(server.maildrops(), [(1, true, vec![], vec![1, 2, 3])]);
    }

    #[tokio::test]
    async fn tolerates_bare_lf_and_survives_long_lines() {
        let server = server(|_| {}).await;
        let mut raw = Raw::connect(&server).await;
        raw.send(b"USER alice\n").await;
        assert!(raw.line().await.starts_with("+OK"));
        raw.send(b"\x00\xff\xfe garbage\r\n").await;
        assert_eq!(raw.line().await, "-ERR unknown command\r\n");
        let long = format!("NOOP {}\r\n", "a".repeat(MAX_LINE));
        assert_eq!(raw.cmd(long.trim_end()).await, "-ERR line too long\r\n");
        let mut huge = b"X".repeat(1_000_000);
        huge.extend_from_slice(format!("\r\nUSER {USER}\r\nPASS {PASS}\r\n").as_bytes());
        // The server reads on while it discards, so the write cannot block for long.
        raw.send(&huge).await;
        assert_eq!(raw.line().await, "-ERR line too long\r\n");
        assert!(raw.line().await.starts_with("+OK alice"));
        assert!(raw.line().await.starts_with("+OK maildrop has 3"));
        raw.0.get_mut().shutdown().await.unwrap();
        assert_eq!(raw.line().await, "");
        server.ended(1).await;
        let lines = server.lines(Dir::In);
        assert_eq!(lines[0], "USER alice\n");
        assert_eq!(lines[2], long);
        assert_eq!(lines[3], "X".repeat(MAX_RECORDED_LINE));
        assert_eq!(lines[4], format!("USER {USER}\r\n"));
        let deviations = server.deviations();
        let kinds: Vec<&str> = deviations.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(kinds, ["bare-lf", "line-too-long", "line-too-long"]);
        assert_eq!(
            deviations[0].1,
            "\"USER alice\\n\" at byte 0 ends with LF alone, not CRLF"
        );
        assert!(
            deviations[2]
                .1
                .starts_with("1000002-octet command line at byte 286 "),
            "{}",
            deviations[2].1
        );
        assert_eq!(server.maildrops(), [(1, false, vec![], vec![1, 2, 3])]);
        assert_eq!(server.ends(), [CLIENT_CLOSED]);
    }

    #[tokio::test]
    async fn sessions_end_by_their_deadlines() {
        let short = Duration::from_millis(300);
        let server = server(|c| {
            c.idle_timeout = short;
            c.max_session = Duration::from_millis(800);
        })
        .await;
        // Half a command, then nothing.
        let start = Instant::now();
        let mut raw = Raw::connect(&server).await;
        raw.send(b"NOO").await;
        assert_eq!(raw.line().await, "-ERR idle timeout, closing\r\n");
        assert_eq!(raw.line().await, "");
        assert!(start.elapsed() >= short);
        // Busy, but for too long.
        let mut raw = Raw::connect(&server).await;
        raw.login().await;
        let start = Instant::now();
        let last = loop {
            let reply = raw.cmd("NOOP").await;
            if reply != "+OK\r\n" {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(last, "-ERR session time limit reached, closing\r\n");
        assert!(start.elapsed() < Duration::from_secs(2));
        server.ended(2).await;
        assert_eq!(server.lines(Dir::In)[0], "NOO");
        assert_eq!(server.lines(Dir::Out).last(), Some(&last));
        assert_eq!(server.ends(), [TIMEOUT, TIMEOUT]);
        assert_eq!(server.maildrops(), [(2, false, vec![], vec![1, 2, 3])]);
    }

    #[tokio::test]
    async fn the_maildrop_is_locked_while_a_session_has_it() {
        let server = server(|_| {}).await;
        let mut first = Raw::connect(&server).await;
        first.login().await;
        assert!(first.cmd("DELE 3").await.starts_with("+OK"));
        let mut second = Raw::connect(&server).await;
        assert!(second.cmd("USER alice").await.starts_with("+OK"));
        let start = Instant::now();
        assert_eq!(
            second.cmd(&format!("PASS {PASS}")).await,
            "-ERR maildrop locked by another session\r\n"
        );
        assert!(start.elapsed() >= LOCK_WAIT);
        assert!(first.cmd("QUIT").await.starts_with("+OK"));
        second.login().await;
        assert_eq!(
            second.cmd("STAT").await,
            format!("+OK 2 {}\r\n", M1.len() + M2.len())
        );
        // Dropped without QUIT, then straight into the next session.
        drop(second);
        let mut third = Raw::connect(&server).await;
        third.login().await;
        server.ended(2).await;
        assert_eq!(
            server.maildrops(),
            [
                (1, true, vec![3], vec![1, 2]),
                (2, false, vec![], vec![1, 2])
            ]
        );
    }

    #[test]
    fn top_keeps_the_headers_and_n_body_lines() {
        assert_eq!(top(M3, 0), b"Subject: three\r\n\r\n");
        assert_eq!(top(M3, 2), b"Subject: three\r\n\r\nline 1\r\nline 2\r\n");
        assert_eq!(top(M3, 99), M3);
        assert_eq!(top(b"Subject: no body\r\n", 1), b"Subject: no body\r\n");
        assert_eq!(top(b"\r\nbody\r\n", 0), b"\r\n");
    }

    #[test]
    fn replies_are_dot_stuffed_and_terminated() {
        let encode = |body: &[u8]| text(&Reply::multi("x", body.to_vec()).encode());
        assert_eq!(encode(b""), "+OK x\r\n.\r\n");
        assert_eq!(
            encode(b".\r\na.b\r\n..\r\n"),
            "+OK x\r\n..\r\na.b\r\n...\r\n.\r\n"
        );
        assert_eq!(encode(b"no ending"), "+OK x\r\nno ending\r\n.\r\n");
        assert_eq!(Reply::ok("").encode(), b"+OK\r\n");
        assert_ne!(uid(0, M1), uid(1, M1), "equal messages get their own ids");
        assert!(uid(0, M1).bytes().all(|b| b.is_ascii_hexdigit()));
    }

    /// Sessions the fuzzer starts from: every command, in both states.
    const FUZZ_CORPUS: &[&[u8]] = &[
        b"USER alice\r\nPASS open sesame\r\nSTAT\r\nLIST\r\nRETR 1\r\nTOP 2 1\r\nUIDL\r\nQUIT\r\n",
        b"CAPA\r\nUSER alice\r\nPASS open sesame\r\nLIST 2\r\nUIDL 3\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n",
        b"USER bob\r\nPASS x\r\nAPOP alice 0123\r\nSTAT\r\nQUIT\r\n",
        b"user alice\npass open sesame\nretr 2\ndele 2\nquit\n",
        b"USER alice\r\nPASS open sesame\r\nDELE 3\r\nRETR 3\r\nTOP 1 99999999999999999999\r\nLIST -1\r\n",
    ];

    /// A correct session (USER, PASS, STAT, LIST, QUIT), retried while the
    /// server is full or the maildrop locked, for 10 s at most; why it
    /// failed, if it did.
    async fn correct_pop3(addr: std::net::SocketAddr) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match timeout(Duration::from_secs(5), correct_pop3_once(addr)).await {
                Ok(Err(why))
                    if (why.contains("too many") || why.contains("locked"))
                        && start.elapsed() < Duration::from_secs(10) =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok(result) => return result,
                Err(_) => return Err("a correct session took over 5 s".into()),
            }
        }
    }

    async fn correct_pop3_once(addr: std::net::SocketAddr) -> Result<(), String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (read, mut write) = stream.into_split();
        let mut read = BufReader::new(read);
        let steps = [
            ("", false),
            ("USER alice\r\n", false),
            ("PASS open sesame\r\n", false),
            ("STAT\r\n", false),
            ("LIST\r\n", true),
            ("QUIT\r\n", false),
        ];
        for (send, multi) in steps {
            write
                .write_all(send.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            read.read_line(&mut line).await.map_err(|e| e.to_string())?;
            if !line.starts_with("+OK") {
                return Err(format!("{line:?} after {send:?}"));
            }
            while multi && line != ".\r\n" {
                line.clear();
                if read.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                    return Err(format!("{send:?}: the listing did not end"));
                }
            }
        }
        Ok(())
    }

    /// A server for fuzzing, recording into `rec`, with short deadlines.
    async fn fuzz_server(rec: Recorder) -> Server {
        let messages = vec![M1.to_vec(), M2.to_vec(), M3.to_vec(), large()];
        let mut config = Pop3Config::new("pop", USER, PASS, messages);
        config.idle_timeout = Duration::from_millis(300);
        config.max_session = Duration::from_secs(2);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(run(listener, config, rec.clone()));
        Server { addr, rec, task }
    }

    #[tokio::test]
    async fn fuzz_pop3_mutated_sessions_leave_it_answering() {
        let server = fuzz_server(Recorder::new()).await;
        let plan = super::super::fuzz::Plan {
            seed: 0x5eed_0003,
            inputs: 100,
            parallel: 8,
            every: 25,
            early: 5,
        };
        let correct = || correct_pop3(server.addr);
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
    }

    /// A long campaign: `NETGRADE_FUZZ_INPUTS` inputs (1 000 000 by default)
    /// against a server recording as `netgrade serve` does.
    #[tokio::test]
    #[ignore = "long: run by bench/fuzz.sh"]
    async fn fuzz_campaign_pop3() {
        use super::super::fuzz;
        let (recorder, drain) = fuzz::serve_recorder();
        let server = fuzz_server(recorder).await;
        let before = fuzz::rss_kib();
        let plan = fuzz::long_plan(0x5eed_0003, 5);
        let correct = || correct_pop3(server.addr);
        let alive = || !server.task.is_finished();
        let findings = fuzz::campaign(server.addr, FUZZ_CORPUS, plan, correct, alive).await;
        fuzz::print("pop3", &findings, before, fuzz::rss_kib());
        drain.abort();
        assert_eq!(findings.crashes(), 0, "{findings:?}");
    }

    #[tokio::test]
    async fn one_connection_too_many_gets_err_and_a_closed_slot_is_free_again() {
        let server = server(|_| {}).await;
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(Raw::connect(&server).await);
        }
        let mut extra = BufReader::new(TcpStream::connect(server.addr).await.unwrap());
        let mut line = String::new();
        extra.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("-ERR too many connections"), "{line:?}");
        line.clear();
        assert_eq!(
            extra.read_line(&mut line).await.unwrap(),
            0,
            "then it closes"
        );
        server.ended(1).await;
        assert_eq!(server.ends(), ["server-closed"]);
        drop(held.remove(0));
        server.ended(2).await;
        Raw::connect(&server).await;
    }
}
