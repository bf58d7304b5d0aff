//! The HTTP probe: netgrade as an HTTP client against a student's web server.
//!
//! [`exchange`] sends a probe's bytes over a raw TCP connection and records
//! exactly what came back as one [`EventKind::Exchange`]. It stops reading when
//! the response is complete, when the server closes or resets the connection,
//! when nothing arrives for a while, or at the deadline: many student servers
//! send the file without `Content-Length` and never close. After a complete
//! response it keeps reading for a moment ([`AFTER_END`]) or until the server
//! closes, so bytes sent past the end (a trailing `\r\n` after a
//! `Content-Length` body) are recorded too.
//!
//! [`hold`] and [`release`] split an exchange in two: the connection is opened
//! and kept idle, with nothing sent, while another probe runs; then the
//! request is sent and its response read.
//!
//! When the server closed first, netgrade ends the connection with a reset
//! instead of a FIN: the server's side then skips TIME_WAIT, so a student's
//! server without `SO_REUSEADDR` that has to be restarted can bind its port
//! again at once.
//!
//! [`parse_response`] reads recorded bytes strictly but leniently. It extracts
//! the status line, the header fields and the body the way a forgiving browser
//! would, even from LF-only lines, leading whitespace or a missing blank line,
//! and lists every departure from RFC 9112 as a [`Deviation`] with its byte
//! offset, so a check can say "the body is right, but the lines end in LF".

use std::io::ErrorKind;
use std::mem::discriminant;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::sandbox::NetNs;
use crate::spec::Dur;
use crate::trace::{EventKind, ExchangeEnd, Recorder};

/// Deviations of one kind kept per response; later ones are dropped, so that
/// a garbage response does not list one per line.
pub const MAX_DEVIATIONS_PER_KIND: usize = 32;
/// How long netgrade keeps reading after a complete response, unless the
/// server closes first: long enough for the next `send()` of a server that
/// sends more than it announced, short for one that keeps the connection open.
pub const AFTER_END: Duration = Duration::from_millis(250);
/// Bytes kept on each side of a deviation's offset in [`Deviation::context`].
const CONTEXT: usize = 12;
/// Longest piece of a response quoted inside a message.
const SNIPPET: usize = 40;
/// Size of one read from the socket.
const READ_CHUNK: usize = 16 * 1024;

/// One HTTP request to send to the student's server.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Probe id from the lab spec.
    pub name: String,
    /// Exactly what to send.
    pub bytes: Vec<u8>,
    /// The request is HEAD: the response has no body.
    pub head: bool,
    /// Deadline for the whole exchange: connect, send and read.
    pub timeout: Duration,
    /// End the read when no byte arrives for this long.
    pub idle: Duration,
    /// Most bytes kept; reading stops there.
    pub max_bytes: usize,
}

/// How an exchange went, for the caller's bookkeeping (the trace holds the bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// How it ended.
    pub end: ExchangeEnd,
    /// Bytes received.
    pub received: usize,
}

impl Summary {
    /// The connection died without a byte of answer: refused, reset or closed.
    pub fn died_silent(&self) -> bool {
        self.received == 0
            && matches!(
                self.end,
                ExchangeEnd::ConnectFailed(_) | ExchangeEnd::Reset | ExchangeEnd::Closed
            )
    }

    /// The request cannot have reached the server's code: the connection was
    /// refused, or reset before a byte came back (a connection still in the
    /// backlog of a listening socket that closes is reset).
    pub fn never_reached(&self) -> bool {
        self.received == 0 && matches!(self.end, ExchangeEnd::ConnectFailed(_) | ExchangeEnd::Reset)
    }
}

/// Runs `probe` against `addr` (inside `netns` when given) and records one
/// [`EventKind::Exchange`], stamped when the exchange began. A connection at
/// [`Probe::max_bytes`] without a complete response ends as
/// [`ExchangeEnd::TimedOut`], with exactly `max_bytes` kept.
pub async fn exchange(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    recorder: &Recorder,
) -> Summary {
    exchange_keeping(addr, netns, probe, recorder).await.0
}

/// Like [`exchange`], and also returns the connection when the server kept it
/// open without answering ([`ExchangeEnd::TimedOut`] with nothing received),
/// so that the caller can read a late answer with [`drain`] instead of
/// hanging up on a server that will still answer.
pub async fn exchange_keeping(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    recorder: &Recorder,
) -> (Summary, Option<TcpStream>) {
    let at = recorder.now();
    let start = Instant::now();
    let deadline = start + probe.timeout;
    match timeout_at(deadline, super::connect(addr, netns, probe.timeout)).await {
        Ok(Ok(stream)) => {
            let (summary, stream) = converse(stream, probe, recorder, at, start, deadline).await;
            let kept = (summary.end == ExchangeEnd::TimedOut && summary.received == 0)
                .then_some(stream)
                .flatten();
            (summary, kept)
        }
        failed => {
            let why = match failed {
                Ok(Err(e)) => io_reason(&e),
                _ => format!("no answer within {}", Dur(probe.timeout)),
            };
            let summary = connect_failed(probe, recorder, at, start, why);
            (summary, None)
        }
    }
}

/// A probe's connection, opened and idle: nothing has been sent on it.
pub struct Held {
    /// The connection, or why it could not be opened.
    stream: Result<TcpStream, String>,
}

/// Opens `probe`'s connection and sends nothing on it yet; records
/// [`EventKind::Holding`], or the failed [`EventKind::Exchange`] when the
/// connection cannot be opened. `until` names the probe run meanwhile.
pub async fn hold(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    until: Option<&str>,
    recorder: &Recorder,
) -> Held {
    let at = recorder.now();
    let start = Instant::now();
    let deadline = start + probe.timeout;
    let why = match timeout_at(deadline, super::connect(addr, netns, probe.timeout)).await {
        Ok(Ok(stream)) => {
            recorder.record_at(
                at,
                EventKind::Holding {
                    probe: probe.name.clone(),
                    until: until.map(str::to_string),
                },
            );
            return Held { stream: Ok(stream) };
        }
        Ok(Err(e)) => io_reason(&e),
        Err(_) => format!("no answer within {}", Dur(probe.timeout)),
    };
    connect_failed(probe, recorder, at, start, why.clone());
    Held { stream: Err(why) }
}

/// Sends a held probe's request, reads the response and records the
/// [`EventKind::Exchange`], stamped now. For a connection that could not be
/// opened (already recorded), returns that failure.
pub async fn release(held: Held, probe: &Probe, recorder: &Recorder) -> Summary {
    let stream = match held.stream {
        Ok(stream) => stream,
        Err(why) => {
            return Summary {
                end: ExchangeEnd::ConnectFailed(why),
                received: 0,
            };
        }
    };
    let at = recorder.now();
    let start = Instant::now();
    converse(stream, probe, recorder, at, start, start + probe.timeout)
        .await
        .0
}

/// Reads what a kept connection (from [`exchange_keeping`]) still brings,
/// until the server closes, goes quiet for [`Probe::idle`], or
/// [`Probe::timeout`] passes; records it as [`EventKind::LateResponse`].
pub async fn drain(mut stream: TcpStream, probe: &Probe, recorder: &Recorder) {
    let deadline = Instant::now() + probe.timeout;
    let mut received = Vec::new();
    let (end, eof) = receive(&mut stream, probe, deadline, &mut received).await;
    close(stream, eof);
    recorder.record(EventKind::LateResponse {
        probe: probe.name.clone(),
        received,
        end,
    });
}

/// Records an exchange whose connection could not be opened.
fn connect_failed(
    probe: &Probe,
    recorder: &Recorder,
    at: Duration,
    start: Instant,
    why: String,
) -> Summary {
    let end = ExchangeEnd::ConnectFailed(why);
    recorder.record_at(
        at,
        EventKind::Exchange {
            probe: probe.name.clone(),
            sent: Vec::new(),
            received: Vec::new(),
            end: end.clone(),
            elapsed: start.elapsed(),
        },
    );
    Summary { end, received: 0 }
}

/// Sends the probe's bytes on `stream`, reads the response, records the
/// exchange at `at`. Returns the stream when it is still open.
async fn converse(
    mut stream: TcpStream,
    probe: &Probe,
    recorder: &Recorder,
    at: Duration,
    start: Instant,
    deadline: Instant,
) -> (Summary, Option<TcpStream>) {
    let mut sent = 0;
    let mut received = Vec::new();
    let (end, eof) = match send(&mut stream, &probe.bytes, &mut sent, deadline).await {
        Err(ExchangeEnd::TimedOut) => (ExchangeEnd::TimedOut, false),
        // A server may answer and close before reading the whole request:
        // what it sent is still worth reading.
        result => {
            let (end, eof) = receive(&mut stream, probe, deadline, &mut received).await;
            // A write that failed has taken the reset's error: say so.
            match (result, end) {
                (Err(_), ExchangeEnd::Closed) if received.is_empty() => (ExchangeEnd::Reset, eof),
                (_, end) => (end, eof),
            }
        }
    };
    let summary = Summary {
        end: end.clone(),
        received: received.len(),
    };
    recorder.record_at(
        at,
        EventKind::Exchange {
            probe: probe.name.clone(),
            sent: probe.bytes[..sent].to_vec(),
            received,
            end,
            elapsed: start.elapsed(),
        },
    );
    let open = !eof && !matches!(summary.end, ExchangeEnd::Reset);
    if open {
        (summary, Some(stream))
    } else {
        close(stream, eof);
        (summary, None)
    }
}

/// Closes a connection. After the server has closed its side, with a reset:
/// the server's socket then goes straight to CLOSED instead of holding its
/// port in TIME_WAIT for a minute.
fn close(stream: TcpStream, server_closed: bool) {
    if server_closed {
        let _ = stream.set_zero_linger();
    }
    drop(stream);
}

/// Writes `bytes`, counting in `sent` what the kernel took.
async fn send(
    stream: &mut TcpStream,
    bytes: &[u8],
    sent: &mut usize,
    deadline: Instant,
) -> Result<(), ExchangeEnd> {
    while *sent < bytes.len() {
        match timeout_at(deadline, stream.write(&bytes[*sent..])).await {
            Err(_) => return Err(ExchangeEnd::TimedOut),
            Ok(Ok(0) | Err(_)) => return Err(ExchangeEnd::Reset),
            Ok(Ok(n)) => *sent += n,
        }
    }
    Ok(())
}

/// Reads into `received` until the response is complete or the connection
/// ends; says how, and whether the server closed its side.
async fn receive(
    stream: &mut TcpStream,
    probe: &Probe,
    deadline: Instant,
    received: &mut Vec<u8>,
) -> (ExchangeEnd, bool) {
    let mut framer = Framer::new(probe.head);
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let room = probe
            .max_bytes
            .saturating_sub(received.len())
            .min(READ_CHUNK);
        if room == 0 {
            return (ExchangeEnd::TimedOut, false);
        }
        let limit = deadline.min(Instant::now() + probe.idle);
        match timeout_at(limit, stream.read(&mut buf[..room])).await {
            Err(_) => return (ExchangeEnd::TimedOut, false),
            Ok(Ok(0)) => return (ExchangeEnd::Closed, true),
            Ok(Ok(n)) => {
                received.extend_from_slice(&buf[..n]);
                if framer.feed(received) {
                    let eof = read_past_end(stream, probe, deadline, received, &mut buf).await;
                    return (ExchangeEnd::Complete, eof);
                }
            }
            Ok(Err(_)) => return (ExchangeEnd::Reset, false),
        }
    }
}

/// After a complete response: keeps what arrives within [`AFTER_END`] (bytes
/// past the end are the server's mistake and worth recording); true when the
/// server closed.
async fn read_past_end(
    stream: &mut TcpStream,
    probe: &Probe,
    deadline: Instant,
    received: &mut Vec<u8>,
    buf: &mut [u8],
) -> bool {
    let until = deadline.min(Instant::now() + AFTER_END);
    loop {
        let room = probe
            .max_bytes
            .saturating_sub(received.len())
            .min(buf.len());
        if room == 0 {
            return false;
        }
        match timeout_at(until, stream.read(&mut buf[..room])).await {
            Ok(Ok(0)) => return true,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) | Ok(Err(_)) => return false,
        }
    }
}

/// `connection refused` rather than `Connection refused (os error 111)` where the kind says it all.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        kind @ (ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable
        | ErrorKind::TimedOut) => kind.to_string(),
        _ => e.to_string(),
    }
}

/// Decides, as bytes arrive, whether the response is complete, without rereading what it has read.
struct Framer {
    head_request: bool,
    head: HeadScanner,
    state: BodyState,
    /// Deviations found on the way; the exchange records bytes, not judgements.
    sink: Deviations,
}

/// What the framer waits for.
enum BodyState {
    /// The end of the head.
    Head,
    /// The response ends at this offset.
    Length(usize),
    /// The last chunk.
    Chunks(Dechunker),
    /// The server closing (or going quiet).
    UntilClose,
    /// Nothing: the response is complete.
    Done,
}

impl Framer {
    fn new(head_request: bool) -> Self {
        Framer {
            head_request,
            head: HeadScanner::default(),
            state: BodyState::Head,
            sink: Deviations::default(),
        }
    }

    /// Takes all bytes received so far; true once they hold a complete response.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if let BodyState::Head = self.state {
            self.state = match self.head.feed(bytes, false, &mut self.sink) {
                None => return false,
                Some(HeadEnd::NoBlank(_)) => BodyState::UntilClose,
                Some(HeadEnd::Blank(end)) => {
                    let head = &self.head;
                    match framing(head, self.head_request, bytes, &mut self.sink) {
                        Framing::NoBody => BodyState::Done,
                        Framing::ContentLength(n) => BodyState::Length(
                            usize::try_from(n)
                                .ok()
                                .and_then(|n| end.checked_add(n))
                                .unwrap_or(usize::MAX),
                        ),
                        Framing::Chunked => BodyState::Chunks(Dechunker::new(end)),
                        Framing::UntilClose => BodyState::UntilClose,
                    }
                }
            };
        }
        match &mut self.state {
            BodyState::Head | BodyState::UntilClose => false,
            BodyState::Done => true,
            BodyState::Length(end) => bytes.len() >= *end,
            BodyState::Chunks(chunks) => match chunks.feed(bytes, false, &mut self.sink) {
                None => false,
                Some(ChunksEnd::Done(_)) => true,
                Some(ChunksEnd::Broken(_)) => {
                    self.state = BodyState::UntilClose;
                    false
                }
            },
        }
    }
}

/// A response as [`parse_response`] understood it.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The status line; `None` when there is none (the response starts with `<html>`)
    /// or it has no status code.
    pub status_line: Option<StatusLine>,
    /// Header fields as sent (name case preserved), values trimmed.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Offset just past the blank line that ends the head, if one does.
    pub head_end: Option<usize>,
    /// The body after framing (de-chunked), as received.
    pub body: Vec<u8>,
    /// How the body's end was determined.
    pub framing: Framing,
    /// Everything not per RFC 9112, in offset order, at most
    /// [`MAX_DEVIATIONS_PER_KIND`] of each kind.
    pub deviations: Vec<Deviation>,
}

impl Parsed {
    /// The value of the first header field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A status line, read leniently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    /// The version as sent, e.g. `HTTP/1.1`.
    pub version: String,
    /// The status code.
    pub code: u16,
    /// The reason phrase, possibly empty.
    pub reason: String,
    /// Offset of the line's first byte.
    pub offset: usize,
}

/// How the end of the body is found (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length` bytes.
    ContentLength(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes; also when the head never ends.
    UntilClose,
    /// No body: a response to HEAD, or 1xx, 204, 304.
    NoBody,
}

/// One departure from RFC 9112.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deviation {
    /// Where in the response.
    pub offset: usize,
    /// What.
    pub kind: DeviationKind,
    /// The bytes around `offset`, up to 12 on each side.
    pub context: Vec<u8>,
}

/// What is wrong at a [`Deviation`]'s offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviationKind {
    /// Nothing was received at all.
    Empty,
    /// Spaces or line breaks before the status line.
    LeadingWhitespace,
    /// A line of the head (or of the chunked framing) ends with LF alone.
    BareLf,
    /// A CR not followed by LF.
    BareCr,
    /// The response does not start with a status line.
    NoStatusLine,
    /// The status line breaks the grammar; why.
    MalformedStatusLine(String),
    /// The head never ends with a blank line: the body, if any, would be read as header lines.
    NoBlankLine,
    /// A header line breaks the grammar; why.
    BadHeaderLine(String),
    /// A `Content-Length` value that is not a number (the value, escaped).
    BadContentLength(String),
    /// More than one `Content-Length` value.
    DuplicateContentLength,
    /// The body is not as long as `Content-Length` says.
    ContentLengthMismatch {
        /// What `Content-Length` says.
        declared: u64,
        /// Bytes after the head.
        received: u64,
    },
    /// Both `Content-Length` and `Transfer-Encoding` are sent.
    ContentLengthWithTransferEncoding,
    /// Bytes after a head that allows no body (HEAD, 1xx, 204, 304); how many.
    UnexpectedBody(u64),
    /// The chunked framing is broken; why. The rest of the response is taken as body.
    BadChunk(String),
    /// Bytes after the end of a chunked body; how many.
    BytesAfterEnd(u64),
}

impl DeviationKind {
    /// One sentence for people, e.g. "line ends with a bare LF (\n) instead of CRLF (\r\n)".
    pub fn describe(&self) -> String {
        match self {
            DeviationKind::Empty => "the response is empty: the server sent nothing".into(),
            DeviationKind::LeadingWhitespace => {
                "whitespace before the status line: `HTTP/` must be the very first bytes".into()
            }
            DeviationKind::BareLf => r"line ends with a bare LF (\n) instead of CRLF (\r\n)".into(),
            DeviationKind::BareCr => r"a bare CR (\r) that is not followed by LF (\n)".into(),
            DeviationKind::NoStatusLine => {
                "no status line: a response starts with a line like `HTTP/1.1 200 OK`".into()
            }
            DeviationKind::MalformedStatusLine(why) => format!("malformed status line: {why}"),
            DeviationKind::NoBlankLine => {
                r"no blank line (\r\n) ends the header lines, so the body cannot be told from them"
                    .into()
            }
            DeviationKind::BadHeaderLine(why) => format!("bad header line: {why}"),
            DeviationKind::BadContentLength(value) => {
                format!("Content-Length `{value}` is not a number of bytes")
            }
            DeviationKind::DuplicateContentLength => "Content-Length is sent more than once".into(),
            DeviationKind::ContentLengthMismatch { declared, received } if received < declared => {
                format!(
                    "Content-Length says {} but only {} arrived",
                    count(*declared),
                    count(*received)
                )
            }
            DeviationKind::ContentLengthMismatch { declared, received } => format!(
                "Content-Length says {} but {} followed the head",
                count(*declared),
                count(*received)
            ),
            DeviationKind::ContentLengthWithTransferEncoding => {
                "both Content-Length and Transfer-Encoding are sent (Transfer-Encoding wins)".into()
            }
            DeviationKind::UnexpectedBody(n) => format!(
                "{} after a head that allows no body (a response to HEAD, or 1xx, 204, 304)",
                count(*n)
            ),
            DeviationKind::BadChunk(why) => format!("bad chunked encoding: {why}"),
            DeviationKind::BytesAfterEnd(n) => {
                format!("{} after the end of the chunked body", count(*n))
            }
        }
    }
}

/// `1 byte`, `5 bytes`.
fn count(n: u64) -> String {
    if n == 1 {
        "1 byte".into()
    } else {
        format!("{n} bytes")
    }
}

/// Reads `bytes`, a whole response as received, strictly but leniently; never panics.
///
/// `head_request` says the request was HEAD, so the response has no body.
pub fn parse_response(bytes: &[u8], head_request: bool) -> Parsed {
    let mut deviations = Deviations::default();
    let mut head = HeadScanner::default();
    let end = head
        .feed(bytes, true, &mut deviations)
        .unwrap_or(HeadEnd::NoBlank(bytes.len()));
    let (head_end, framing, body) = match end {
        HeadEnd::NoBlank(start) => (None, Framing::UntilClose, bytes[start..].to_vec()),
        HeadEnd::Blank(end) => {
            let framing = framing(&head, head_request, bytes, &mut deviations);
            let body = frame_body(bytes, end, framing, &mut deviations);
            (Some(end), framing, body)
        }
    };
    let mut deviations = deviations.0;
    deviations.sort_by_key(|d| d.offset);
    Parsed {
        status_line: head.status_line,
        headers: head.fields.into_iter().map(|f| (f.name, f.value)).collect(),
        head_end,
        body,
        framing,
        deviations,
    }
}

/// The body of a response whose head ends at `start`.
fn frame_body(bytes: &[u8], start: usize, framing: Framing, dev: &mut Deviations) -> Vec<u8> {
    let rest = &bytes[start..];
    let received = rest.len() as u64;
    match framing {
        Framing::UntilClose => rest.to_vec(),
        Framing::NoBody => {
            if !rest.is_empty() {
                dev.push(bytes, start, DeviationKind::UnexpectedBody(received));
            }
            Vec::new()
        }
        Framing::ContentLength(declared) => {
            let kept = declared.min(received) as usize;
            if declared != received {
                let at = if received < declared {
                    bytes.len()
                } else {
                    start + kept
                };
                let kind = DeviationKind::ContentLengthMismatch { declared, received };
                dev.push(bytes, at, kind);
            }
            rest[..kept].to_vec()
        }
        Framing::Chunked => {
            let mut chunks = Dechunker::new(start);
            match chunks.feed(bytes, true, dev) {
                Some(ChunksEnd::Done(end)) if end < bytes.len() => {
                    let after = (bytes.len() - end) as u64;
                    dev.push(bytes, end, DeviationKind::BytesAfterEnd(after));
                }
                Some(ChunksEnd::Broken(at)) => chunks.body.extend_from_slice(&bytes[at..]),
                _ => {}
            }
            chunks.body
        }
    }
}

/// Quotes the bytes at `offset` with escapes (`\r`, `\n`, `\xNN`) and what
/// precedes them, on one line:
/// `at byte 15: "\nContent-Length: 5\n\nhello" (after "HTTP/1.1 200 OK")`;
/// the quoted bytes stop after 40, the preceding ones go back 24.
pub fn evidence(bytes: &[u8], offset: usize) -> String {
    let offset = offset.min(bytes.len());
    let from = offset.saturating_sub(2 * CONTEXT);
    let before = escape(&bytes[from..offset]);
    let before = if from > 0 {
        format!("…{before}")
    } else {
        before
    };
    let mut s = if offset == bytes.len() {
        format!("at byte {offset}, the end of the response")
    } else {
        format!("at byte {offset}: \"{}\"", snippet(&bytes[offset..]))
    };
    if offset > 0 {
        s.push_str(&format!(" (after \"{before}\")"));
    }
    s
}

/// Bytes as text, escaping all but printable ASCII: `\r`, `\n`, `\t`, `\"`, `\\`, `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str(r"\r"),
            b'\n' => s.push_str(r"\n"),
            b'\t' => s.push_str(r"\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str(r"\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!(r"\x{b:02x}")),
        }
    }
    s
}

/// The first bytes of `bytes`, escaped, with `…` when cut.
fn snippet(bytes: &[u8]) -> String {
    if bytes.len() > SNIPPET {
        format!("{}…", escape(&bytes[..SNIPPET]))
    } else {
        escape(bytes)
    }
}

/// Collects deviations, at most [`MAX_DEVIATIONS_PER_KIND`] of each kind.
#[derive(Default)]
struct Deviations(Vec<Deviation>);

impl Deviations {
    fn push(&mut self, bytes: &[u8], offset: usize, kind: DeviationKind) {
        let same = discriminant(&kind);
        let seen = self
            .0
            .iter()
            .filter(|d| discriminant(&d.kind) == same)
            .count();
        if seen < MAX_DEVIATIONS_PER_KIND {
            let from = offset.saturating_sub(CONTEXT).min(bytes.len());
            let to = offset.saturating_add(CONTEXT).min(bytes.len());
            let context = bytes[from..to].to_vec();
            self.0.push(Deviation {
                offset,
                kind,
                context,
            });
        }
    }
}

/// A line: its content in `start..end`, then its line ending up to `next`
/// (`next == end` for a last line cut off by the end of the response).
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

impl Line {
    fn content(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start..self.end]
    }

    /// The content with each bare CR read as a space (RFC 9112 §2.2).
    fn text(self, bytes: &[u8]) -> Vec<u8> {
        let text = self.content(bytes).iter();
        text.map(|&b| if b == b'\r' { b' ' } else { b }).collect()
    }

    /// Whether the line has no line ending (the response ended first).
    fn cut(self) -> bool {
        self.next == self.end
    }

    /// Records the bare CRs inside the line and a bare LF ending it.
    fn check_endings(self, bytes: &[u8], dev: &mut Deviations) {
        for (i, &b) in self.content(bytes).iter().enumerate() {
            if b == b'\r' {
                dev.push(bytes, self.start + i, DeviationKind::BareCr);
            }
        }
        if self.next == self.end + 1 {
            dev.push(bytes, self.end, DeviationKind::BareLf);
        }
    }
}

/// Splits bytes into lines as they arrive; a line ends at LF, with or without CR.
#[derive(Default)]
struct Lines {
    /// Start of the next line.
    pos: usize,
    /// `pos..searched` holds no LF: a long line is searched once, not once per read.
    searched: usize,
}

impl Lines {
    /// Lines from offset `pos` on.
    fn at(pos: usize) -> Self {
        Lines { pos, searched: pos }
    }

    /// The next complete line, or at `eof` the unterminated rest.
    fn next(&mut self, bytes: &[u8], eof: bool) -> Option<Line> {
        let from = self.searched.max(self.pos);
        match bytes[from..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let lf = from + i;
                let end = if lf > self.pos && bytes[lf - 1] == b'\r' {
                    lf - 1
                } else {
                    lf
                };
                let line = Line {
                    start: self.pos,
                    end,
                    next: lf + 1,
                };
                self.pos = line.next;
                self.searched = line.next;
                Some(line)
            }
            None => {
                self.searched = bytes.len();
                let line = (eof && self.pos < bytes.len()).then_some(Line {
                    start: self.pos,
                    end: bytes.len(),
                    next: bytes.len(),
                });
                if line.is_some() {
                    self.pos = bytes.len();
                }
                line
            }
        }
    }
}

/// A header field with the offset of its line.
struct Field {
    name: String,
    value: Vec<u8>,
    offset: usize,
}

/// Where the head ended.
#[derive(Clone, Copy)]
enum HeadEnd {
    /// At a blank line; the body starts at this offset.
    Blank(usize),
    /// Without a blank line; whatever starts at this offset is the body.
    NoBlank(usize),
}

/// Reads the head line by line as bytes arrive.
#[derive(Default)]
struct HeadScanner {
    lines: Lines,
    /// Whether the status line was taken.
    started: bool,
    status_line: Option<StatusLine>,
    fields: Vec<Field>,
}

impl HeadScanner {
    /// Takes the complete lines of `bytes` (at `eof`, all of them) and says
    /// where the head ended once that is known; at `eof` it always is.
    fn feed(&mut self, bytes: &[u8], eof: bool, dev: &mut Deviations) -> Option<HeadEnd> {
        if !self.started {
            let pos = self.lines.pos;
            let Some(skip) = bytes[pos..].iter().position(|b| !is_space(*b)) else {
                self.lines.pos = bytes.len();
                return eof.then(|| {
                    let kind = if bytes.is_empty() {
                        DeviationKind::Empty
                    } else {
                        DeviationKind::NoStatusLine
                    };
                    dev.push(bytes, 0, kind);
                    HeadEnd::NoBlank(0)
                });
            };
            let start = pos + skip;
            self.lines.pos = start;
            let prefix = &bytes[start..bytes.len().min(start + 4)];
            if !b"HTTP"[..prefix.len()].eq_ignore_ascii_case(prefix) || (eof && prefix.len() < 4) {
                dev.push(bytes, start, DeviationKind::NoStatusLine);
                return Some(HeadEnd::NoBlank(0));
            }
            let line = self.lines.next(bytes, eof)?;
            self.started = true;
            if start > 0 {
                dev.push(bytes, 0, DeviationKind::LeadingWhitespace);
            }
            line.check_endings(bytes, dev);
            self.status_line = status_line(&line.text(bytes), line.start, bytes, dev);
        }
        while let Some(line) = self.lines.next(bytes, eof) {
            if let Some(end) = self.header_line(bytes, line, dev) {
                return Some(end);
            }
        }
        eof.then(|| {
            dev.push(bytes, bytes.len(), DeviationKind::NoBlankLine);
            HeadEnd::NoBlank(bytes.len())
        })
    }

    /// Takes one line after the status line; says where the head ended if this line ends it.
    fn header_line(&mut self, bytes: &[u8], line: Line, dev: &mut Deviations) -> Option<HeadEnd> {
        let text = line.text(bytes);
        let bad = |dev: &mut Deviations, why: String| {
            dev.push(bytes, line.start, DeviationKind::BadHeaderLine(why));
        };
        let Some(&first) = text.first() else {
            line.check_endings(bytes, dev);
            return Some(HeadEnd::Blank(line.next));
        };
        let colon = text.iter().position(|&b| b == b':');
        let name = &text[..colon.unwrap_or(text.len())];
        if !is_space(first)
            && !text.starts_with(b"HTTP/")
            && (colon.is_none() || !name.iter().all(|&b| is_tchar(b) || is_space(b)))
        {
            // Not even a broken header field: the body, sent without a blank line.
            dev.push(bytes, line.start, DeviationKind::NoBlankLine);
            return Some(HeadEnd::NoBlank(line.start));
        }
        line.check_endings(bytes, dev);
        if is_space(first) {
            match self.fields.last_mut() {
                None => bad(
                    dev,
                    "a line starting with whitespace right after the status line".into(),
                ),
                Some(field) => {
                    let why = format!(
                        "obsolete line folding: a line starting with whitespace continues `{}`",
                        snippet(field.name.as_bytes())
                    );
                    field.value.push(b' ');
                    field.value.extend_from_slice(text.trim_ascii());
                    bad(dev, why);
                }
            }
            return None;
        }
        if text.starts_with(b"HTTP/") {
            bad(dev, "a second status line among the header lines".into());
            return None;
        }
        let mut raw = text.clone();
        raw.extend_from_slice(b"\r\n\r\n");
        let mut slot = [httparse::EMPTY_HEADER; 1];
        let field = match httparse::parse_headers(&raw, &mut slot) {
            Ok(httparse::Status::Complete((_, [h]))) => Field {
                name: h.name.to_string(),
                value: h.value.to_vec(),
                offset: line.start,
            },
            _ => {
                let trimmed = name.trim_ascii();
                let why = if trimmed.is_empty() {
                    "no field name before the colon".into()
                } else if name.last().copied().is_some_and(is_space) {
                    format!(
                        "whitespace between the field name `{}` and the colon",
                        snippet(trimmed)
                    )
                } else if trimmed.iter().copied().any(is_space) {
                    format!("whitespace inside the field name `{}`", snippet(trimmed))
                } else {
                    format!("a control character in the value of `{}`", snippet(trimmed))
                };
                bad(dev, why);
                let value = colon.map_or(&[][..], |c| &text[c + 1..]);
                Field {
                    name: String::from_utf8_lossy(trimmed).into_owned(),
                    value: value.trim_ascii().to_vec(),
                    offset: line.start,
                }
            }
        };
        self.fields.push(field);
        None
    }
}

/// SP, HTAB, CR or LF.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A byte allowed in a field name (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads a status line (its `text`, at `offset`): `HTTP/1.1 200 OK` (RFC 9112 §4).
fn status_line(
    text: &[u8],
    offset: usize,
    bytes: &[u8],
    dev: &mut Deviations,
) -> Option<StatusLine> {
    let mut bad = |at: usize, why: String| {
        dev.push(bytes, offset + at, DeviationKind::MalformedStatusLine(why));
    };
    let version_len = text.iter().position(|&b| is_space(b)).unwrap_or(text.len());
    let version = &text[..version_len];
    let is_version = |v: &[u8]| {
        matches!(v, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit())
    };
    if !is_version(version) {
        let why = if is_version(&version.to_ascii_uppercase()) {
            format!("the version `{}` must be upper-case", snippet(version))
        } else {
            format!(
                "`{}` is not an HTTP version like `HTTP/1.1`",
                snippet(version)
            )
        };
        bad(0, why);
    }
    let gap = text[version_len..]
        .iter()
        .take_while(|b| is_space(**b))
        .count();
    if gap > 0 && &text[version_len..version_len + gap] != b" " {
        bad(
            version_len,
            "the version must be followed by exactly one space".into(),
        );
    }
    let code_at = version_len + gap;
    let digits = text[code_at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let code_text = &text[code_at..code_at + digits];
    if digits == 0 {
        bad(code_at, "no status code after the version".into());
        return None;
    }
    if digits != 3 {
        let why = format!(
            "the status code `{}` is not three digits",
            snippet(code_text)
        );
        bad(code_at, why);
    }
    let code = std::str::from_utf8(code_text).ok()?.parse().ok()?;
    let after = code_at + digits;
    let reason = match text.get(after) {
        None => {
            let why = "no space after the status code (the reason phrase may be empty, the space may not)";
            bad(after, why.into());
            &[][..]
        }
        Some(b' ') => &text[after + 1..],
        Some(_) => {
            bad(
                after,
                "no space between the status code and the reason phrase".into(),
            );
            &text[after..]
        }
    };
    if let Some(i) = reason
        .iter()
        .position(|&b| b != b'\t' && b.is_ascii_control())
    {
        let at = text.len() - reason.len() + i;
        bad(at, "a control character in the reason phrase".into());
    }
    Some(StatusLine {
        version: String::from_utf8_lossy(version).into_owned(),
        code,
        reason: String::from_utf8_lossy(reason).into_owned(),
        offset,
    })
}

/// How the body of a response with this head ends (RFC 9112 §6.3).
fn framing(head: &HeadScanner, head_request: bool, bytes: &[u8], dev: &mut Deviations) -> Framing {
    let code = head.status_line.as_ref().map(|s| s.code);
    if head_request || matches!(code, Some(100..=199 | 204 | 304)) {
        return Framing::NoBody;
    }
    let named = |name: &'static str| {
        head.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    };
    if let Some(te) = named("transfer-encoding").next_back() {
        if let Some(cl) = named("content-length").next() {
            dev.push(
                bytes,
                cl.offset,
                DeviationKind::ContentLengthWithTransferEncoding,
            );
        }
        let last = te.value.rsplit(|&b| b == b',').next().unwrap_or_default();
        return if last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        };
    }
    let mut declared = None;
    for field in named("content-length") {
        for value in field.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            let number = std::str::from_utf8(value)
                .ok()
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()));
            match number.and_then(|v| v.parse::<u64>().ok()) {
                None => {
                    dev.push(
                        bytes,
                        field.offset,
                        DeviationKind::BadContentLength(snippet(value)),
                    );
                    return Framing::UntilClose;
                }
                Some(_) if declared.is_some() => {
                    dev.push(bytes, field.offset, DeviationKind::DuplicateContentLength);
                }
                Some(n) => declared = Some(n),
            }
        }
    }
    declared.map_or(Framing::UntilClose, Framing::ContentLength)
}

/// Where a chunked body ended.
enum ChunksEnd {
    /// Properly, at this offset.
    Done(usize),
    /// The framing broke at this offset: the rest is not chunked.
    Broken(usize),
}

/// What the dechunker expects next.
#[derive(Clone, Copy)]
enum Chunk {
    /// A chunk-size line.
    Size,
    /// Chunk data up to this offset.
    Data(usize),
    /// The CRLF after chunk data.
    DataEnd,
    /// Trailer lines, up to a blank line.
    Trailers,
}

/// Decodes a chunked body (RFC 9112 §7.1) as bytes arrive.
struct Dechunker {
    lines: Lines,
    state: Chunk,
    /// The chunk data so far.
    body: Vec<u8>,
}

impl Dechunker {
    /// A dechunker for a body starting at `start`.
    fn new(start: usize) -> Self {
        Dechunker {
            lines: Lines::at(start),
            state: Chunk::Size,
            body: Vec::new(),
        }
    }

    /// Takes what has arrived (at `eof`, everything); says where the body ended once known.
    fn feed(&mut self, bytes: &[u8], eof: bool, dev: &mut Deviations) -> Option<ChunksEnd> {
        loop {
            match self.state {
                Chunk::Size => {
                    let Some(line) = self.lines.next(bytes, eof) else {
                        let why = "the response ends before the last chunk (`0`)";
                        return eof.then(|| broken(bytes, bytes.len(), why.into(), dev));
                    };
                    line.check_endings(bytes, dev);
                    let mut raw = line.text(bytes);
                    raw.extend_from_slice(b"\r\n");
                    self.state = match httparse::parse_chunk_size(&raw) {
                        Ok(_) if line.cut() => {
                            let why = "the response ends inside a chunk-size line".into();
                            return Some(broken(bytes, line.start, why, dev));
                        }
                        Ok(httparse::Status::Complete((_, 0))) => Chunk::Trailers,
                        Ok(httparse::Status::Complete((_, size))) => {
                            match usize::try_from(size)
                                .ok()
                                .and_then(|n| line.next.checked_add(n))
                            {
                                Some(end) => Chunk::Data(end),
                                None => {
                                    let why = "the chunk size is too large".into();
                                    return Some(broken(bytes, line.start, why, dev));
                                }
                            }
                        }
                        _ => {
                            let why = format!(
                                "`{}` is not a chunk size (hexadecimal digits, then CRLF)",
                                snippet(line.content(bytes))
                            );
                            return Some(broken(bytes, line.start, why, dev));
                        }
                    };
                }
                Chunk::Data(end) => {
                    let start = self.lines.pos;
                    if bytes.len() < end {
                        let why = format!(
                            "the response ends inside a chunk: {} of {} arrived",
                            count((bytes.len() - start) as u64),
                            count((end - start) as u64)
                        );
                        return eof.then(|| broken(bytes, start, why, dev));
                    }
                    self.body.extend_from_slice(&bytes[start..end]);
                    self.lines = Lines::at(end);
                    self.state = Chunk::DataEnd;
                }
                Chunk::DataEnd => {
                    let pos = self.lines.pos;
                    let rest = &bytes[pos..];
                    let skip = if rest.starts_with(b"\r\n") {
                        2
                    } else if rest.starts_with(b"\n") {
                        dev.push(bytes, pos, DeviationKind::BareLf);
                        1
                    } else if !eof && matches!(rest, [] | [b'\r']) {
                        return None;
                    } else {
                        let why = "the chunk data is not followed by CRLF: the chunk size does not match the data";
                        return Some(broken(bytes, pos, why.into(), dev));
                    };
                    self.lines = Lines::at(pos + skip);
                    self.state = Chunk::Size;
                }
                Chunk::Trailers => {
                    // A line cut off by the end of the response only comes at `eof`.
                    let line = match self.lines.next(bytes, eof) {
                        Some(line) if !line.cut() => line,
                        _ => {
                            let why =
                                "the response ends without the blank line after the last chunk";
                            return eof.then(|| broken(bytes, bytes.len(), why.into(), dev));
                        }
                    };
                    line.check_endings(bytes, dev);
                    if line.start == line.end {
                        return Some(ChunksEnd::Done(line.next));
                    }
                }
            }
        }
    }
}

/// Records why the chunked framing broke at `at`.
fn broken(bytes: &[u8], at: usize, why: String, dev: &mut Deviations) -> ChunksEnd {
    dev.push(bytes, at, DeviationKind::BadChunk(why));
    ChunksEnd::Broken(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use crate::trace::Event;

    fn kinds(p: &Parsed) -> Vec<(usize, DeviationKind)> {
        p.deviations
            .iter()
            .map(|d| (d.offset, d.kind.clone()))
            .collect()
    }

    #[test]
    fn a_correct_response_has_no_deviations() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello";
        let p = parse_response(r, false);
        let status = p.status_line.as_ref().unwrap();
        assert_eq!(
            (status.version.as_str(), status.code, status.reason.as_str()),
            ("HTTP/1.1", 200, "OK")
        );
        assert_eq!(
            p.headers[0],
            ("Content-Type".to_string(), b"text/html".to_vec())
        );
        assert_eq!(p.header("content-length"), Some(&b"5"[..]));
        assert_eq!(p.head_end, Some(r.len() - 5));
        assert_eq!(p.framing, Framing::ContentLength(5));
        assert_eq!(p.body, b"hello");
        assert_eq!(p.deviations, vec![]);
    }

    #[test]
    fn chunked_bodies_are_decoded_with_extensions_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\nX-T: y\r\n\r\n";
        let p = parse_response(r, false);
        assert_eq!(p.framing, Framing::Chunked);
        assert_eq!(p.body, b"hello, world");
        assert_eq!(p.deviations, vec![]);
    }

    #[test]
    fn a_false_chunked_claim_keeps_the_raw_body() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n<html>hi</html>";
        let p = parse_response(r, false);
        assert_eq!(p.body, b"<html>hi</html>");
        let [d] = &p.deviations[..] else {
            panic!("{:?}", p.deviations)
        };
        assert_eq!(d.offset, r.len() - 15);
        assert_eq!(
            d.kind.describe(),
            "bad chunked encoding: `<html>hi</html>` is not a chunk size (hexadecimal digits, then CRLF)"
        );
        let short = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            false,
        );
        assert_eq!(short.body, b"hel");
        assert!(
            short.deviations[0]
                .kind
                .describe()
                .ends_with("3 bytes of 5 bytes arrived"),
            "{:?}",
            short.deviations
        );
        let extra = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nxyz",
            false,
        );
        assert_eq!(kinds(&extra), vec![(52, DeviationKind::BytesAfterEnd(3))]);
    }

    #[test]
    fn head_204_and_304_have_no_body() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        let p = parse_response(r, true);
        assert_eq!(
            (p.framing, p.body.len(), p.deviations.len()),
            (Framing::NoBody, 0, 0)
        );
        let with_body = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true);
        assert_eq!(
            kinds(&with_body),
            vec![(38, DeviationKind::UnexpectedBody(5))]
        );
        for code in ["204 No Content", "304 Not Modified", "100 Continue"] {
            let r = format!("HTTP/1.1 {code}\r\nETag: \"x\"\r\n\r\n");
            let p = parse_response(r.as_bytes(), false);
            assert_eq!(
                (p.framing, p.deviations.len()),
                (Framing::NoBody, 0),
                "{code}"
            );
        }
    }

    #[test]
    fn lf_only_lines_are_read_and_each_reported() {
        let r = b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello";
        let p = parse_response(r, false);
        assert_eq!(p.status_line.as_ref().unwrap().code, 200);
        assert_eq!(p.body, b"hello");
        assert_eq!(p.head_end, Some(35));
        assert_eq!(
            kinds(&p),
            vec![
                (15, DeviationKind::BareLf),
                (33, DeviationKind::BareLf),
                (34, DeviationKind::BareLf)
            ]
        );
        assert_eq!(p.deviations[0].context, b"P/1.1 200 OK\nContent-Len");
        assert_eq!(
            p.deviations[0].kind.describe(),
            r"line ends with a bare LF (\n) instead of CRLF (\r\n)"
        );
    }

    #[test]
    fn leading_whitespace_is_reported_once_and_skipped() {
        for lead in [&b" "[..], b"\r\n", b"\n\n  "] {
            let mut r = lead.to_vec();
            r.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
            let p = parse_response(&r, false);
            assert_eq!(
                kinds(&p),
                vec![(0, DeviationKind::LeadingWhitespace)],
                "{lead:?}"
            );
            assert_eq!(p.status_line.as_ref().unwrap().offset, lead.len());
            assert_eq!(p.body, b"hi");
        }
    }

    #[test]
    fn a_missing_blank_line_swallows_the_body() {
        let r = b"HTTP/1.1 200 OK\r\n<html><body>hi</body></html>";
        let p = parse_response(r, false);
        assert_eq!(p.status_line.as_ref().unwrap().code, 200);
        assert_eq!((p.head_end, p.framing), (None, Framing::UntilClose));
        assert_eq!(p.body, b"<html><body>hi</body></html>");
        assert_eq!(kinds(&p), vec![(17, DeviationKind::NoBlankLine)]);
        let r = b"HTTP/1.1 200 OK\nContent-Type: text/html\n<a href=\"http://x\">x</a>\n";
        let p = parse_response(r, false);
        assert_eq!(p.headers.len(), 1);
        assert_eq!(p.body, b"<a href=\"http://x\">x</a>\n");
        assert_eq!(
            p.deviations.last().unwrap().kind,
            DeviationKind::NoBlankLine
        );
        let cut = parse_response(b"HTTP/1.1 200 OK\r\nServer: x\r\n", false);
        assert_eq!(kinds(&cut), vec![(28, DeviationKind::NoBlankLine)]);
    }

    #[test]
    fn a_404_without_status_line_is_all_body() {
        let r = b"<html>404 Not Found</html>";
        let p = parse_response(r, false);
        assert_eq!((p.status_line.as_ref(), p.head_end), (None, None));
        assert_eq!(p.body, r);
        assert_eq!(kinds(&p), vec![(0, DeviationKind::NoStatusLine)]);
        assert_eq!(
            kinds(&parse_response(b"", false)),
            vec![(0, DeviationKind::Empty)]
        );
        assert_eq!(
            kinds(&parse_response(b"\r\n", false)),
            vec![(0, DeviationKind::NoStatusLine)]
        );
    }

    #[test]
    fn content_length_larger_or_smaller_than_the_body() {
        let larger = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", false);
        assert_eq!(larger.body, b"hello");
        let kind = DeviationKind::ContentLengthMismatch {
            declared: 10,
            received: 5,
        };
        assert_eq!(kinds(&larger), vec![(44, kind.clone())]);
        assert_eq!(
            kind.describe(),
            "Content-Length says 10 bytes but only 5 bytes arrived"
        );
        let smaller = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhello", false);
        assert_eq!(smaller.body, b"hel");
        let kind = DeviationKind::ContentLengthMismatch {
            declared: 3,
            received: 5,
        };
        assert_eq!(kinds(&smaller), vec![(41, kind)]);
    }

    #[test]
    fn content_length_twice_or_garbled() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi";
        let p = parse_response(r, false);
        assert_eq!(
            (p.framing, p.body.as_slice()),
            (Framing::ContentLength(2), &b"hi"[..])
        );
        assert_eq!(kinds(&p), vec![(36, DeviationKind::DuplicateContentLength)]);
        let p = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2 bytes\r\n\r\nhi",
            false,
        );
        assert_eq!(p.framing, Framing::UntilClose);
        assert_eq!(
            kinds(&p),
            vec![(17, DeviationKind::BadContentLength("2 bytes".into()))]
        );
    }

    #[test]
    fn bare_cr_is_reported_and_read_as_space() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\r\n\r\nhi";
        let p = parse_response(r, false);
        assert_eq!(p.body, b"hi");
        assert_eq!(p.header("Content-Length"), Some(&b"2"[..]));
        assert_eq!(kinds(&p), vec![(34, DeviationKind::BareCr)]);
    }

    #[test]
    fn malformed_status_lines_are_explained_but_read() {
        let cases: [(&[u8], u16, &str); 5] = [
            (
                b"HTTP/1.1 200\r\n\r\n",
                200,
                "no space after the status code (the reason phrase may be empty, the space may not)",
            ),
            (
                b"http/1.1 200 OK\r\n\r\n",
                200,
                "the version `http/1.1` must be upper-case",
            ),
            (
                b"HTTP/1.1  404 Not Found\r\n\r\n",
                404,
                "the version must be followed by exactly one space",
            ),
            (
                b"HTTP/1.1 2000 OK\r\n\r\n",
                2000,
                "the status code `2000` is not three digits",
            ),
            (
                b"HTTP/1 200OK\r\n\r\n",
                200,
                "`HTTP/1` is not an HTTP version like `HTTP/1.1`",
            ),
        ];
        for (r, code, why) in cases {
            let p = parse_response(r, false);
            assert_eq!(p.status_line.as_ref().map(|s| s.code), Some(code));
            assert_eq!(
                p.deviations[0].kind,
                DeviationKind::MalformedStatusLine(why.into())
            );
        }
        let ok = parse_response(b"HTTP/1.1 200 \r\n\r\n", false);
        assert_eq!(
            (ok.status_line.unwrap().reason.as_str(), ok.deviations.len()),
            ("", 0)
        );
        let none = parse_response(b"HTTP/1.1 OK\r\n\r\n", false);
        assert_eq!((none.status_line, none.head_end), (None, Some(15)));
    }

    #[test]
    fn broken_header_lines_are_kept() {
        let r = b"HTTP/1.1 200 OK\r\nHTTP/1.1 200 OK\r\nContent-Type : text/html\r\nX-A: a\r\n  b\r\n\r\n";
        let p = parse_response(r, false);
        let whys: Vec<String> = p.deviations.iter().map(|d| d.kind.describe()).collect();
        assert_eq!(
            whys,
            [
                "bad header line: a second status line among the header lines",
                "bad header line: whitespace between the field name `Content-Type` and the colon",
                "bad header line: obsolete line folding: a line starting with whitespace continues `X-A`",
            ]
        );
        assert_eq!(p.header("content-type"), Some(&b"text/html"[..]));
        assert_eq!(p.header("x-a"), Some(&b"a b"[..]));
        let utf8 = parse_response("HTTP/1.1 200 OK\r\nX-B: é \r\n\r\n".as_bytes(), false);
        assert_eq!(
            (utf8.header("x-b"), utf8.deviations.len()),
            (Some("é".as_bytes()), 0)
        );
        assert_eq!(p.head_end, Some(r.len()));
    }

    #[test]
    fn evidence_quotes_bytes_around_the_offset() {
        let r = b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello";
        assert_eq!(
            evidence(r, 15),
            r#"at byte 15: "\nContent-Length: 5\n\nhello" (after "HTTP/1.1 200 OK")"#
        );
        assert_eq!(evidence(b"\xff\x00x", 0), r#"at byte 0: "\xff\x00x""#);
        let long = [b'a'; 100];
        assert_eq!(
            evidence(&long, 100),
            format!(
                "at byte 100, the end of the response (after \"…{}\")",
                "a".repeat(24)
            )
        );
        assert!(evidence(&long, 50).contains(&format!(": \"{}…\"", "a".repeat(40))));
    }

    #[test]
    fn garbage_never_panics_and_stays_fast() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut noise = vec![0u8; 1 << 20];
        rng.fill(&mut noise[..]);
        let mut lines = b"HTTP/1.1 200 OK\n".to_vec();
        while lines.len() < 1 << 20 {
            lines.extend_from_slice(b"a:\rb\n");
        }
        let mut chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        while chunks.len() < 1 << 20 {
            chunks.extend_from_slice(b"1\n\n\n");
        }
        let started = std::time::Instant::now();
        for input in [&noise, &lines, &chunks] {
            let p = parse_response(input, false);
            assert!(p.deviations.len() <= 15 * MAX_DEVIATIONS_PER_KIND);
            let mut framer = Framer::new(false);
            for end in (0..input.len()).step_by(997).chain([input.len()]) {
                framer.feed(&input[..end]);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn random_http_shaped_input_never_panics() {
        let pieces: [&[u8]; 16] = [
            b"HTTP/1.1 ",
            b"200 OK",
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b":",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"0",
            b"5;x",
            b"abc",
            b"\xff",
            b"HTTP/",
            b"<html>",
            b"304",
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..5000 {
            let mut input = Vec::new();
            for _ in 0..rng.random_range(0..24) {
                input.extend_from_slice(pieces[rng.random_range(0..pieces.len())]);
            }
            let head = rng.random();
            let p = parse_response(&input, head);
            assert!(p.deviations.is_sorted_by_key(|d| d.offset));
            assert!(p.head_end.is_none_or(|e| e <= input.len()));
            assert!(p.body.len() <= input.len());
            for d in &p.deviations {
                assert!(d.offset <= input.len());
                evidence(&input, d.offset);
                d.kind.describe();
            }
            // Bytes arriving one by one frame the response as they do all at
            // once, and as the parser does.
            let complete = Framer::new(head).feed(&input);
            let mut framer = Framer::new(head);
            let early = (0..=input.len()).find(|&n| framer.feed(&input[..n]));
            let shown = String::from_utf8_lossy(&input);
            assert_eq!(early.is_some(), complete, "{shown:?}");
            if complete {
                assert!(p.head_end.is_some(), "{shown:?}");
                assert_ne!(p.framing, Framing::UntilClose, "{shown:?}");
            }
        }
    }

    // ---- exchanges against misbehaving servers ----

    const SECOND: Duration = Duration::from_secs(1);

    fn probe(bytes: &[u8]) -> Probe {
        Probe {
            name: "p".into(),
            bytes: bytes.to_vec(),
            head: false,
            timeout: 10 * SECOND,
            idle: 5 * SECOND,
            max_bytes: 1 << 20,
        }
    }

    const GET: &[u8] = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n";

    /// A server that hands each accepted connection to `handler`, one at a time or concurrently.
    async fn server<F, Fut>(concurrent: bool, handler: F) -> (SocketAddr, JoinHandle<()>)
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let serving = handler(stream);
                if concurrent {
                    tokio::spawn(serving);
                } else {
                    serving.await;
                }
            }
        });
        (addr, task)
    }

    /// Reads up to the blank line ending a request; false if the connection ends first.
    async fn read_request(stream: &mut TcpStream) -> bool {
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    /// The one exchange `recorder` holds: sent, received, end, elapsed.
    fn exchanged(recorder: &Recorder) -> (Vec<u8>, Vec<u8>, ExchangeEnd, Duration) {
        let events = recorder.snapshot().events;
        let [
            Event {
                kind:
                    EventKind::Exchange {
                        sent,
                        received,
                        end,
                        elapsed,
                        ..
                    },
                ..
            },
        ] = &events[..]
        else {
            panic!("not one exchange: {events:?}");
        };
        (sent.clone(), received.clone(), end.clone(), *elapsed)
    }

    async fn run(addr: SocketAddr, probe: &Probe) -> (Vec<u8>, Vec<u8>, ExchangeEnd, Duration) {
        let recorder = Recorder::new();
        let summary = exchange(addr, None, probe, &recorder).await;
        let recorded = exchanged(&recorder);
        assert_eq!(
            summary,
            Summary {
                end: recorded.2.clone(),
                received: recorded.1.len()
            }
        );
        recorded
    }

    #[tokio::test]
    async fn a_close_without_content_length_ends_the_body() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello")
                .await
                .unwrap();
        })
        .await;
        let (sent, received, end, _) = run(addr, &probe(GET)).await;
        assert_eq!((sent.as_slice(), end), (GET, ExchangeEnd::Closed));
        let p = parse_response(&received, false);
        assert_eq!(
            (p.framing, p.body.as_slice(), p.deviations.len()),
            (Framing::UntilClose, &b"hello"[..], 0)
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_server_that_never_closes_is_left_after_idle() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").await.unwrap();
            tokio::time::sleep(60 * SECOND).await;
        })
        .await;
        let idle = Duration::from_millis(300);
        let (_, received, end, elapsed) = run(addr, &Probe { idle, ..probe(GET) }).await;
        assert_eq!(
            (received.as_slice(), end),
            (&b"HTTP/1.1 200 OK\r\n\r\nhello"[..], ExchangeEnd::TimedOut)
        );
        assert!(elapsed >= idle && elapsed < 3 * SECOND, "{elapsed:?}");
        task.abort();
    }

    #[tokio::test]
    async fn framed_responses_complete_without_waiting_for_close() {
        let cases: [(&[u8], bool); 4] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true),
            (b"\r\n HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false),
            (
                b"HTTP/1.1 404 Not Found\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
                false,
            ),
        ];
        for (response, head) in cases {
            let (addr, task) = server(false, move |mut s| async move {
                read_request(&mut s).await;
                s.write_all(response).await.unwrap();
                tokio::time::sleep(60 * SECOND).await;
            })
            .await;
            let (_, received, end, elapsed) = run(addr, &Probe { head, ..probe(GET) }).await;
            assert_eq!(
                (received.as_slice(), end),
                (response, ExchangeEnd::Complete)
            );
            assert!(elapsed < 2 * SECOND, "{elapsed:?}");
            task.abort();
        }
    }

    #[tokio::test]
    async fn a_byte_by_byte_sender_is_read_to_the_end() {
        let responses: [&[u8]; 2] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, world",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
        ];
        for response in responses {
            let (addr, task) = server(false, move |mut s| async move {
                read_request(&mut s).await;
                s.set_nodelay(true).unwrap();
                for b in response {
                    s.write_all(&[*b]).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                tokio::time::sleep(60 * SECOND).await;
            })
            .await;
            let (_, received, end, _) = run(addr, &probe(GET)).await;
            assert_eq!(
                (received.as_slice(), end),
                (response, ExchangeEnd::Complete)
            );
            assert_eq!(parse_response(&received, false).body, b"hello, world");
            task.abort();
        }
    }

    #[tokio::test]
    async fn a_reset_is_recorded() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                .await
                .unwrap();
            s.set_zero_linger().unwrap();
        })
        .await;
        let (_, _, end, _) = run(addr, &probe(GET)).await;
        assert_eq!(end, ExchangeEnd::Reset);
        task.abort();
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_failure() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let (sent, received, end, _) = run(addr, &probe(GET)).await;
        assert_eq!((sent.len(), received.len()), (0, 0));
        assert_eq!(end, ExchangeEnd::ConnectFailed("connection refused".into()));
    }

    #[tokio::test]
    async fn the_cap_stops_the_read() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(&[b'x'; 100_000]).await.unwrap();
            tokio::time::sleep(60 * SECOND).await;
        })
        .await;
        let (_, received, end, elapsed) = run(
            addr,
            &Probe {
                max_bytes: 1000,
                ..probe(GET)
            },
        )
        .await;
        assert_eq!((received.len(), end), (1000, ExchangeEnd::TimedOut));
        assert!(elapsed < 2 * SECOND, "{elapsed:?}");
        task.abort();
    }

    /// A server answering every complete request with 200, counting them.
    async fn counting_server(concurrent: bool) -> (SocketAddr, JoinHandle<()>, Arc<AtomicUsize>) {
        let served = Arc::new(AtomicUsize::new(0));
        let count = served.clone();
        let (addr, task) = server(concurrent, move |mut s| {
            let count = count.clone();
            async move {
                if read_request(&mut s).await {
                    count.fetch_add(1, Ordering::SeqCst);
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
            }
        })
        .await;
        (addr, task, served)
    }

    #[tokio::test]
    async fn a_silent_connection_blocks_only_a_sequential_server() {
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        for concurrent in [true, false] {
            let (addr, task, served) = counting_server(concurrent).await;
            let recorder = Recorder::new();
            let held = Probe {
                name: "held".into(),
                ..probe(GET)
            };
            let during = Probe {
                name: "during".into(),
                idle: Duration::from_millis(300),
                ..probe(GET)
            };
            let open = hold(addr, None, &held, Some("during"), &recorder).await;
            let (summary, kept) = exchange_keeping(addr, None, &during, &recorder).await;
            // The held request is not sent yet: only `during` can have been served.
            let first = served.load(Ordering::SeqCst);
            let released = release(open, &held, &recorder).await;
            assert_eq!(
                released,
                Summary {
                    end: ExchangeEnd::Complete,
                    received: OK.len()
                }
            );
            if let Some(stream) = kept {
                drain(stream, &during, &recorder).await;
            }
            let kinds: Vec<EventKind> = recorder
                .snapshot()
                .events
                .into_iter()
                .map(|e| e.kind)
                .collect();
            assert!(matches!(
                &kinds[0],
                EventKind::Holding { probe, until } if probe == "held" && until.as_deref() == Some("during")
            ));
            let late = kinds.iter().find_map(|k| match k {
                EventKind::LateResponse { received, end, .. } => {
                    Some((received.clone(), end.clone()))
                }
                _ => None,
            });
            if concurrent {
                assert_eq!(summary.end, ExchangeEnd::Complete);
                assert_eq!(first, 1);
                assert_eq!(late, None);
            } else {
                // Stuck reading the silent connection: `during` waits, and is
                // answered once the held request has been.
                assert_eq!(
                    summary,
                    Summary {
                        end: ExchangeEnd::TimedOut,
                        received: 0
                    }
                );
                assert_eq!(first, 0);
                assert_eq!(late, Some((OK.to_vec(), ExchangeEnd::Complete)));
            }
            assert_eq!(served.load(Ordering::SeqCst), 2);
            task.abort();
        }
    }

    #[tokio::test]
    async fn bytes_past_a_content_length_body_are_recorded() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"\r\n").await.unwrap();
        })
        .await;
        let (_, received, end, _) = run(addr, &probe(GET)).await;
        assert_eq!(end, ExchangeEnd::Complete);
        assert!(received.ends_with(b"hello\r\n"), "{received:?}");
        let p = parse_response(&received, false);
        assert_eq!(p.body, b"hello");
        assert_eq!(
            kinds(&p),
            vec![(
                received.len() - 2,
                DeviationKind::ContentLengthMismatch {
                    declared: 5,
                    received: 7
                }
            )]
        );
        task.abort();
    }

    #[tokio::test]
    async fn a_connection_reset_from_the_backlog_never_reached_the_server() {
        // Connections wait in the backlog of a listener that never accepts,
        // and are reset when it closes: what a server that is ending does.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(listener);
        });
        let recorder = Recorder::new();
        let summary = exchange(addr, None, &probe(GET), &recorder).await;
        assert_eq!(
            summary,
            Summary {
                end: ExchangeEnd::Reset,
                received: 0
            }
        );
        assert!(summary.never_reached() && summary.died_silent());
        closer.await.unwrap();
        let refused = exchange(addr, None, &probe(GET), &recorder).await;
        assert!(refused.never_reached(), "{refused:?}");
    }

    /// Sockets in TIME_WAIT whose local port is `port`, from /proc/net/tcp.
    fn time_wait_on(port: u16) -> usize {
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
        text.lines()
            .skip(1)
            .filter(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                f.len() > 3
                    && f[3] == "06"
                    && f[1]
                        .rsplit_once(':')
                        .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                        == Some(port)
            })
            .count()
    }

    #[tokio::test]
    async fn a_server_that_closes_first_is_left_without_time_wait() {
        let (addr, task) = server(false, |mut s| async move {
            read_request(&mut s).await;
            s.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").await.unwrap();
        })
        .await;
        let (_, _, end, _) = run(addr, &probe(GET)).await;
        assert_eq!(end, ExchangeEnd::Closed);
        // The server's FIN was answered with a reset: no TIME_WAIT on its port,
        // so a server without SO_REUSEADDR can bind it again at once.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(time_wait_on(addr.port()), 0);
        // What a plain close after the server's would have left (the control).
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain.write_all(GET).await.unwrap();
        let mut sink = Vec::new();
        plain.read_to_end(&mut sink).await.unwrap();
        drop(plain);
        let until = Instant::now() + 5 * SECOND;
        while time_wait_on(addr.port()) == 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(time_wait_on(addr.port()), 1);
        task.abort();
    }

    #[tokio::test]
    async fn pythons_http_server_is_read_exactly() {
        use tokio::io::AsyncBufReadExt;
        use tokio::process::Command;

        let dir = tempfile::tempdir().unwrap();
        let file: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(dir.path().join("data.bin"), &file).unwrap();
        let mut python = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let mut lines = tokio::io::BufReader::new(python.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(10 * SECOND, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let port: u16 = line
            .split("port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let requests: [(&[u8], bool, u16, &[u8]); 3] = [
            (
                b"GET /data.bin HTTP/1.1\r\nHost: localhost\r\n\r\n",
                false,
                200,
                &file,
            ),
            (
                b"HEAD /data.bin HTTP/1.1\r\nHost: localhost\r\n\r\n",
                true,
                200,
                b"",
            ),
            (
                b"GET /missing.html HTTP/1.1\r\nHost: localhost\r\n\r\n",
                false,
                404,
                b"",
            ),
        ];
        for (request, head, code, body) in requests {
            let (_, received, end, _) = run(
                addr,
                &Probe {
                    head,
                    ..probe(request)
                },
            )
            .await;
            assert_eq!(end, ExchangeEnd::Complete);
            let p = parse_response(&received, head);
            assert_eq!(p.deviations, vec![]);
            assert_eq!(p.status_line.unwrap().code, code);
            if code == 200 {
                assert_eq!(p.body, body);
            }
        }
        python.kill().await.unwrap();
    }
}
