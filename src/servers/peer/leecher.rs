//! A reference BitTorrent leecher: connects to one seeder, downloads what it
//! is told to and reports in detail what the seeder did — its handshake
//! bytes, its bitfield and haves, when it unchoked, every block asked for and
//! what came back, every piece checked against the torrent's SHA-1s (and
//! against the original data when known), how a cancelled request was
//! handled and how the session ended.
//!
//! Every wait has a limit ([`LeechPlan::wait`], and [`LeechPlan::deadline`]
//! for the whole session), every buffer is bounded (the wire [`Decoder`]
//! refuses over-long messages), and any input ends the session with a reason
//! ([`End`]) rather than a panic. Every message both ways is recorded as an
//! [`EventKind::PeerMessage`] (`Dir::In`: received by the leecher), every
//! protocol fault as an [`EventKind::Deviation`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

use super::wire::{BLOCK_MAX, Decoder, HANDSHAKE_LEN, Handshake, Limits, Message, WireError};
use super::{block_of, hex};
use crate::torrent::{MAX_PIECE_LENGTH, Metainfo, sha1};
use crate::trace::{Dir, EventKind, Recorder};

/// The default limit on each single wait (connect, handshake, bitfield,
/// unchoke, each block).
pub const WAIT: Duration = Duration::from_secs(10);
/// The default limit on a whole session.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// The default number of requests outstanding at once.
pub const PIPELINE: usize = 5;
/// Bytes read from the socket at a time.
const READ_BUF: usize = 64 * 1024;
/// Bytes of a message kept in a trace event or a report.
const HEAD: usize = 32;
/// Entries kept in each of the report's haves, chokes and deviations; more
/// are counted in [`LeechReport::untracked`].
pub const MAX_ENTRIES: usize = 256;

/// What to download, from whom, within which limits.
#[derive(Debug, Clone)]
pub struct LeechPlan {
    /// Recorded as the `server` of every event.
    pub name: String,
    /// Recorded as the `conn` of every event.
    pub conn: u32,
    /// The torrent's info_hash, sent in the handshake and expected back.
    pub info_hash: [u8; 20],
    /// The leecher's peer id.
    pub peer_id: [u8; 20],
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u32,
    /// The torrent's length in bytes.
    pub total_length: u64,
    /// SHA-1 of each piece.
    pub piece_hashes: Vec<[u8; 20]>,
    /// The original data, when known: blocks are compared with it and a
    /// failed piece's first differing byte is found.
    pub expected: Option<Arc<Vec<u8>>>,
    /// Requests outstanding at once (at least one).
    pub pipeline: usize,
    /// Which pieces to fetch; `None` for all the seeder has.
    pub pieces: Option<Vec<u32>>,
    /// Requests one block and cancels it at once, then goes on.
    pub cancel: bool,
    /// The limit on each single wait.
    pub wait: Duration,
    /// The limit on the whole session.
    pub deadline: Duration,
}

impl LeechPlan {
    /// A plan to fetch every piece of `meta` with the default limits; the
    /// peer id is `-NG0001-` and `name`, padded. A multi-file torrent is
    /// fetched as its files' bytes laid end to end, as the wire carries them.
    pub fn for_torrent(name: &str, meta: &Metainfo) -> Result<LeechPlan, String> {
        let piece_length = u32::try_from(meta.info.piece_length)
            .map_err(|_| format!("piece length {} too long", meta.info.piece_length))?;
        let mut peer_id = *b"-NG0001-____________";
        for (d, s) in peer_id[8..].iter_mut().zip(name.bytes()) {
            *d = s;
        }
        let plan = LeechPlan {
            name: name.to_string(),
            conn: 1,
            info_hash: meta.info_hash.0,
            peer_id,
            piece_length,
            total_length: meta.info.total_length(),
            piece_hashes: meta.info.pieces.clone(),
            expected: None,
            pipeline: PIPELINE,
            pieces: None,
            cancel: false,
            wait: WAIT,
            deadline: DEADLINE,
        };
        plan.check().map(|()| plan)
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.piece_hashes.len() as u32
    }

    /// Length of piece `index` (0 past the end).
    pub fn piece_len(&self, index: u32) -> u32 {
        let start = index as u64 * self.piece_length as u64;
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length as u64) as u32
    }

    /// Whether the numbers describe a torrent.
    fn check(&self) -> Result<(), String> {
        let want = self.total_length.div_ceil(self.piece_length.max(1) as u64);
        if self.piece_length == 0 || self.total_length == 0 {
            return Err("piece length and total length must not be 0".into());
        }
        if self.piece_length as u64 > MAX_PIECE_LENGTH {
            return Err(format!(
                "piece length {}, more than {MAX_PIECE_LENGTH}",
                self.piece_length
            ));
        }
        if want != self.piece_hashes.len() as u64 {
            return Err(format!(
                "{} piece hashes for {want} pieces",
                self.piece_hashes.len()
            ));
        }
        if let Some(e) = &self.expected
            && e.len() as u64 != self.total_length
        {
            return Err(format!(
                "the original data is {} bytes, the torrent {}",
                e.len(),
                self.total_length
            ));
        }
        match self.pieces.iter().flatten().find(|&&p| p >= want as u32) {
            Some(p) => Err(format!("piece {p} wanted, the torrent has {want}")),
            None => Ok(()),
        }
    }
}

/// The bitfield the seeder sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitfieldSeen {
    /// Its bytes, as sent.
    pub bits: Vec<u8>,
    /// When it came, since the session started.
    pub at: Duration,
    /// Whether it was the first message after the handshake (keep-alives
    /// aside).
    pub first: bool,
}

/// One block asked for (or about to be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLog {
    /// Piece index.
    pub index: u32,
    /// Offset in the piece.
    pub begin: u32,
    /// Block length.
    pub length: u32,
    /// When it was first requested.
    pub requested: Option<Duration>,
    /// How many times it was requested (again after a choke or a cancel).
    pub requests: u32,
    /// When it came back.
    pub received: Option<Duration>,
    /// Whether its bytes are the original data's (`None`: not known, or
    /// not received).
    pub matches: Option<bool>,
    /// Whether it is the block requested and at once cancelled.
    pub cancelled: bool,
}

/// One piece whose blocks all came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceLog {
    /// Piece index.
    pub index: u32,
    /// Whether its SHA-1 is the torrent's.
    pub verified: bool,
    /// The first byte (offset in the piece) that differs from the original
    /// data, when that is known.
    pub first_difference: Option<u32>,
    /// When its last block came, since the session started.
    pub at: Duration,
}

/// What became of the block requested and at once cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelLog {
    /// Index, begin and length of the block.
    pub block: (u32, u32, u32),
    /// When the cancel was sent, since the session started.
    pub at: Duration,
    /// The seeder sent the block anyway (allowed: the cancel may come late).
    pub sent_anyway: bool,
    /// Blocks the seeder served after the cancel (the cancelled one aside).
    pub served_after: u32,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every block requested came back.
    Completed,
    /// The seeder offered none of the pieces wanted.
    NothingOffered,
    /// The plan does not describe a torrent.
    BadPlan(String),
    /// No TCP connection.
    ConnectFailed(String),
    /// The seeder closed (or reset) the connection.
    Closed {
        /// Bytes received in all.
        received: u64,
        /// What the leecher was waiting for.
        waiting_for: String,
        /// The socket error, for a reset (or a write refused) rather than a
        /// close.
        error: Option<String>,
        /// The piece left incomplete: the one whose message was cut, or else
        /// the first with only some of its blocks in.
        mid_piece: Option<u32>,
        /// The message cut short, described.
        partial: Option<String>,
    },
    /// What the leecher waited for did not come in time.
    TimedOut {
        /// What it was waiting for.
        waiting_for: String,
        /// How long it waited.
        waited: Duration,
        /// Whether the session's deadline rather than one wait's ran out.
        whole_session: bool,
    },
    /// The seeder broke the protocol (or answered for another torrent).
    Protocol {
        /// The deviation's kind (`bad-handshake`, `bad-bitfield` …).
        kind: String,
        /// Offset of the offending byte in the stream.
        offset: u64,
        /// What was wrong.
        what: String,
        /// The offending message's first bytes.
        bytes: Vec<u8>,
    },
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Completed => f.write_str("completed"),
            End::NothingOffered => f.write_str("the seeder offered none of the pieces wanted"),
            End::BadPlan(why) => write!(f, "bad plan: {why}"),
            End::ConnectFailed(why) => write!(f, "could not connect: {why}"),
            End::Closed { .. } => self.fmt_closed(f),
            End::TimedOut {
                waiting_for,
                waited,
                whole_session,
            } => write!(
                f,
                "timed out waiting for {waiting_for} after {:.1} s{}",
                waited.as_secs_f64(),
                if *whole_session {
                    " (session deadline)"
                } else {
                    ""
                }
            ),
            End::Protocol {
                kind,
                offset,
                what,
                bytes,
            } => write!(f, "{kind} at byte {offset}: {what} [{}]", hex(bytes)),
        }
    }
}

impl End {
    fn fmt_closed(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let End::Closed {
            received,
            waiting_for,
            error,
            mid_piece,
            partial,
        } = self
        else {
            return Ok(());
        };
        match error {
            Some(e) => write!(f, "connection broken ({e})")?,
            None => f.write_str("closed by the seeder")?,
        }
        write!(f, " after {received} bytes, waiting for {waiting_for}")?;
        if let Some(p) = mid_piece {
            write!(f, ", in the middle of piece {p}")?;
        }
        match partial {
            Some(p) => write!(f, " ({p})"),
            None => Ok(()),
        }
    }
}

/// Everything the leecher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeechReport {
    /// The first bytes the seeder sent (at most 68), whatever they were.
    pub handshake_raw: Vec<u8>,
    /// The seeder's handshake, when it was one.
    pub handshake: Option<Handshake>,
    /// When the handshake came, since the session started.
    pub handshake_at: Option<Duration>,
    /// The bitfield, if one came.
    pub bitfield: Option<BitfieldSeen>,
    /// Pieces announced by have messages, in order (at most
    /// [`MAX_ENTRIES`]).
    pub haves: Vec<u32>,
    /// Pieces the seeder said it has (bitfield and haves), sorted.
    pub has: Vec<u32>,
    /// Pieces wanted that the seeder never offered.
    pub missing: Vec<u32>,
    /// When the leecher said interested.
    pub interested_at: Option<Duration>,
    /// When the seeder first unchoked.
    pub unchoked_at: Option<Duration>,
    /// When the seeder choked after having unchoked (at most
    /// [`MAX_ENTRIES`]).
    pub chokes: Vec<Duration>,
    /// Every block queued, requested or not, in the order queued.
    pub blocks: Vec<BlockLog>,
    /// Every piece whose blocks all came back, in order of completion.
    pub pieces: Vec<PieceLog>,
    /// The cancelled request, when the plan asked for one.
    pub cancel: Option<CancelLog>,
    /// Protocol faults: (kind, detail), as recorded (at most
    /// [`MAX_ENTRIES`]).
    pub deviations: Vec<(String, String)>,
    /// Haves, chokes and deviations not kept, their lists being full.
    pub untracked: u64,
    /// Bytes received.
    pub received: u64,
    /// Bytes sent.
    pub sent: u64,
    /// How the session ended.
    pub end: End,
    /// How long the session took.
    pub elapsed: Duration,
}

impl Default for LeechReport {
    fn default() -> Self {
        LeechReport::new()
    }
}

impl LeechReport {
    /// An empty report: nothing seen yet.
    pub fn new() -> Self {
        LeechReport {
            handshake_raw: Vec::new(),
            handshake: None,
            handshake_at: None,
            bitfield: None,
            haves: Vec::new(),
            has: Vec::new(),
            missing: Vec::new(),
            interested_at: None,
            unchoked_at: None,
            chokes: Vec::new(),
            blocks: Vec::new(),
            pieces: Vec::new(),
            cancel: None,
            deviations: Vec::new(),
            untracked: 0,
            received: 0,
            sent: 0,
            end: End::Completed,
            elapsed: Duration::ZERO,
        }
    }

    /// Pieces whose SHA-1 matched, sorted.
    pub fn verified(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .pieces
            .iter()
            .filter(|p| p.verified)
            .map(|p| p.index)
            .collect();
        v.sort_unstable();
        v
    }

    /// Pieces whose SHA-1 did not match.
    pub fn failed(&self) -> Vec<&PieceLog> {
        self.pieces.iter().filter(|p| !p.verified).collect()
    }

    /// Whether the session completed with every piece wanted offered and
    /// verified, and no block differing from the original data.
    pub fn complete(&self) -> bool {
        self.end == End::Completed
            && self.missing.is_empty()
            && self.failed().is_empty()
            && self.blocks.iter().all(|b| b.matches != Some(false))
    }

    /// How long after the leecher said interested the seeder unchoked (zero
    /// if it had unchoked before).
    pub fn unchoke_delay(&self) -> Option<Duration> {
        Some(self.unchoked_at?.saturating_sub(self.interested_at?))
    }

    /// Whether a deviation of `kind` was seen.
    pub fn saw(&self, kind: &str) -> bool {
        self.deviations.iter().any(|(k, _)| k == kind)
    }
}

/// Connects to `addr`, downloads as `plan` says and reports what happened;
/// returns within `plan.deadline`.
pub async fn leech(addr: SocketAddr, plan: &LeechPlan, recorder: &Recorder) -> LeechReport {
    let start = Instant::now();
    let stream = match plan.check() {
        Ok(()) => connect(addr, plan, start).await,
        Err(why) => Err(End::BadPlan(why)),
    };
    let mut report = LeechReport::new();
    match stream {
        Ok(stream) => {
            let mut s = Session::new(plan, recorder, start, stream, report);
            let end = s.exchange().await.unwrap_or_else(|e| e);
            s.finish(end)
        }
        Err(end) => {
            report.end = end;
            report.elapsed = start.elapsed();
            report
        }
    }
}

/// Like [`leech`], over a connection already made (from inside a run's
/// network namespace, say).
pub async fn leech_over(stream: TcpStream, plan: &LeechPlan, recorder: &Recorder) -> LeechReport {
    let start = Instant::now();
    let mut report = LeechReport::new();
    if let Err(why) = plan.check() {
        report.end = End::BadPlan(why);
        return report;
    }
    let _ = stream.set_nodelay(true);
    let mut s = Session::new(plan, recorder, start, stream, report);
    let end = s.exchange().await.unwrap_or_else(|e| e);
    s.finish(end)
}

/// A connection to `addr` within one wait.
async fn connect(addr: SocketAddr, plan: &LeechPlan, start: Instant) -> Result<TcpStream, End> {
    let end_at = start + plan.deadline;
    let until = (start + plan.wait).min(end_at);
    match timeout_at(until, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(End::ConnectFailed(format!("{addr}: {e}"))),
        Err(_) => Err(End::TimedOut {
            waiting_for: format!("a connection to {addr}"),
            waited: start.elapsed(),
            whole_session: until == end_at,
        }),
    }
}

/// A piece being assembled.
struct PieceBuf {
    data: Vec<u8>,
    missing: u32,
}

/// One session's state.
struct Session<'a> {
    plan: &'a LeechPlan,
    rec: &'a Recorder,
    start: Instant,
    end_at: Instant,
    /// When the current wait began.
    clock: Instant,
    input: OwnedReadHalf,
    out: OwnedWriteHalf,
    buf: Vec<u8>,
    dec: Decoder,
    /// The bytes pushed to the decoder and not yet decoded, mirrored.
    tail: Vec<u8>,
    report: LeechReport,
    /// Messages received after the handshake, keep-alives aside.
    messages: u64,
    offered: Vec<bool>,
    wanted: Vec<bool>,
    /// Index in `report.blocks` of each (piece, begin) queued.
    at: HashMap<(u32, u32), usize>,
    queue: VecDeque<usize>,
    outstanding: Vec<usize>,
    bufs: HashMap<u32, PieceBuf>,
    choked: bool,
    interested: bool,
}

impl<'a> Session<'a> {
    fn new(
        plan: &'a LeechPlan,
        rec: &'a Recorder,
        start: Instant,
        stream: TcpStream,
        report: LeechReport,
    ) -> Self {
        let (input, out) = stream.into_split();
        let n = plan.piece_count() as usize;
        let mut wanted = vec![plan.pieces.is_none(); n];
        for &p in plan.pieces.iter().flatten() {
            wanted[p as usize] = true;
        }
        Session {
            plan,
            rec,
            start,
            end_at: start + plan.deadline,
            clock: Instant::now(),
            input,
            out,
            buf: vec![0; READ_BUF],
            dec: Decoder::new(Limits::new(plan.piece_count())),
            tail: Vec::new(),
            report,
            messages: 0,
            offered: vec![false; n],
            wanted,
            at: HashMap::new(),
            queue: VecDeque::new(),
            outstanding: Vec::new(),
            bufs: HashMap::new(),
            choked: true,
            interested: false,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Handshake, then messages until every block wanted is in.
    async fn exchange(&mut self) -> Result<End, End> {
        self.handshake().await?;
        loop {
            self.pump().await?;
            if let Some(end) = self.settled() {
                return Ok(end);
            }
            let msg = self.next().await?;
            self.handle(msg);
        }
    }

    /// The report, with what is known only at the end.
    fn finish(mut self, end: End) -> LeechReport {
        let r = &mut self.report;
        if r.handshake.is_none() {
            r.handshake_raw = self.tail[..self.tail.len().min(HANDSHAKE_LEN)].to_vec();
        }
        r.missing = (0..self.plan.piece_count())
            .filter(|&i| self.wanted[i as usize] && !self.offered[i as usize])
            .collect();
        r.has.sort_unstable();
        r.end = end;
        r.elapsed = self.start.elapsed();
        self.report
    }

    /// Sends the handshake and reads the seeder's.
    async fn handshake(&mut self) -> Result<(), End> {
        let ours = Handshake {
            reserved: [0; 8],
            info_hash: self.plan.info_hash,
            peer_id: self.plan.peer_id,
        }
        .encode();
        self.write(&ours).await?;
        self.event(Dir::Out, "handshake", None, &ours);
        let hs = loop {
            match self.dec.handshake() {
                Ok(Some(hs)) => break hs,
                Ok(None) => self.read_more().await?,
                Err(e) => return Err(self.wire_fault("bad-handshake", e)),
            }
        };
        let raw = self.tail[..HANDSHAKE_LEN].to_vec();
        self.sync_tail();
        self.event(Dir::In, "handshake", None, &raw);
        self.report.handshake_raw = raw;
        self.report.handshake_at = Some(self.now());
        self.report.handshake = Some(hs.clone());
        self.clock = Instant::now();
        if hs.info_hash != self.plan.info_hash {
            return Err(self.wrong_hash(&hs));
        }
        Ok(())
    }

    fn wrong_hash(&mut self, hs: &Handshake) -> End {
        let what = format!(
            "info_hash {}, expected {}",
            hex(&hs.info_hash),
            hex(&self.plan.info_hash)
        );
        self.deviation("wrong-info-hash", what.clone());
        End::Protocol {
            kind: "wrong-info-hash".into(),
            offset: 28,
            what,
            bytes: hs.info_hash.to_vec(),
        }
    }

    /// The next message, reading as needed within the current wait.
    async fn next(&mut self) -> Result<Message, End> {
        loop {
            match self.dec.message() {
                Ok(Some((msg, _))) => {
                    self.sync_tail();
                    return Ok(msg);
                }
                Ok(None) => self.read_more().await?,
                Err(e) => {
                    // The codec names the bitfield in both of its checks
                    // (length, spare bits), whatever the read sizes were.
                    let kind = match e.what.contains("bitfield") {
                        true => "bad-bitfield",
                        false => "bad-message",
                    };
                    return Err(self.wire_fault(kind, e));
                }
            }
        }
    }

    /// Reads what the seeder sent, waiting at most until the current wait
    /// or the session runs out.
    async fn read_more(&mut self) -> Result<(), End> {
        let due = self.clock + self.plan.wait;
        let until = due.min(self.end_at);
        match timeout_at(until, self.input.read(&mut self.buf)).await {
            Err(_) => Err(End::TimedOut {
                waiting_for: self.waiting_for(),
                waited: self.clock.elapsed(),
                whole_session: until == self.end_at,
            }),
            Ok(Err(e)) => Err(self.closed(Some(e.to_string()))),
            Ok(Ok(0)) => Err(self.closed(None)),
            Ok(Ok(n)) => {
                self.report.received += n as u64;
                self.dec.push(&self.buf[..n]);
                self.tail.extend_from_slice(&self.buf[..n]);
                Ok(())
            }
        }
    }

    /// Drops from the mirror what the decoder consumed.
    fn sync_tail(&mut self) {
        let done = self.tail.len().saturating_sub(self.dec.pending());
        self.tail.drain(..done);
    }

    /// What the leecher is waiting for now, for people.
    fn waiting_for(&self) -> String {
        if self.report.handshake.is_none() {
            return format!(
                "the handshake ({} of 68 bytes in)",
                self.tail.len().min(HANDSHAKE_LEN)
            );
        }
        if self.report.bitfield.is_none() && self.report.haves.is_empty() {
            return "a bitfield or have".into();
        }
        if self.choked && self.interested {
            return "an unchoke".into();
        }
        match self.outstanding.first() {
            Some(&i) => {
                let b = &self.report.blocks[i];
                format!("block {}/{}/{}", b.index, b.begin, b.length)
            }
            None => "a have for the pieces not yet offered".into(),
        }
    }

    /// The session's end for a protocol fault in the stream.
    fn wire_fault(&mut self, kind: &str, e: WireError) -> End {
        let bytes = self.tail[..self.tail.len().min(HEAD)].to_vec();
        self.deviation(
            kind,
            format!(
                "{e} (the message at byte {} begins {})",
                self.dec.offset(),
                hex(&bytes)
            ),
        );
        End::Protocol {
            kind: kind.into(),
            offset: e.offset,
            what: e.what,
            bytes,
        }
    }

    /// The session's end when the seeder closes or resets the connection.
    fn closed(&mut self, error: Option<String>) -> End {
        let (cut, partial) = match self.report.handshake {
            Some(_) => self.partial(),
            None => (None, None),
        };
        if let Some(p) = &partial {
            self.deviation("closed-mid-message", p.clone());
        }
        let open = self.bufs.keys().min().copied();
        End::Closed {
            received: self.report.received,
            waiting_for: self.waiting_for(),
            error,
            mid_piece: cut.or(open),
            partial,
        }
    }

    /// The piece of a message cut short, and the message described.
    fn partial(&self) -> (Option<u32>, Option<String>) {
        let t = &self.tail;
        if t.is_empty() {
            return (None, None);
        }
        let Some(len) = t
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return (
                None,
                Some(format!("{} of a length prefix's 4 bytes", t.len())),
            );
        };
        let got = t.len() - 4;
        let u = |i: usize| u32::from_be_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
        if t.get(4) == Some(&7) && t.len() >= 13 {
            let (index, begin) = (u(5), u(9));
            let what = format!(
                "a piece message for piece {index} begin {begin} cut after {got} of its {len} bytes"
            );
            return (Some(index), Some(what));
        }
        let id = t.get(4).map_or("?".to_string(), |i| i.to_string());
        (
            None,
            Some(format!(
                "a message (id {id}) cut after {got} of its {len} bytes"
            )),
        )
    }

    /// Acts on one message from the seeder.
    fn handle(&mut self, msg: Message) {
        self.event_msg(Dir::In, &msg);
        let first = self.messages == 0;
        if msg != Message::KeepAlive {
            self.messages += 1;
        }
        match msg {
            Message::Choke => self.choke(),
            Message::Unchoke => self.unchoke(),
            Message::Have(i) => self.have(i),
            Message::Bitfield(bits) => self.bitfield(bits, first),
            Message::Piece { index, begin, data } => self.block(index, begin, data),
            Message::Request { .. } => self.deviation(
                "request-from-seeder",
                "a request to a leecher that has no pieces".into(),
            ),
            Message::Unknown { id, .. } => self.deviation(
                "unknown-message",
                format!("message id {id}, though the leecher announced no extension"),
            ),
            _ => {}
        }
    }

    fn choke(&mut self) {
        if !self.choked {
            self.choked = true;
            let now = self.now();
            keep(&mut self.report.chokes, now, &mut self.report.untracked);
            self.clock = Instant::now();
        }
        // The seeder drops what was asked; ask again after the next unchoke.
        for &i in self.outstanding.iter().rev() {
            self.queue.push_front(i);
        }
        self.outstanding.clear();
    }

    fn unchoke(&mut self) {
        if self.choked {
            self.choked = false;
            self.report.unchoked_at.get_or_insert(self.now());
            self.clock = Instant::now();
        }
    }

    fn have(&mut self, index: u32) {
        if index >= self.plan.piece_count() {
            return self.deviation(
                "bad-have",
                format!(
                    "have {index}, the torrent has {} pieces",
                    self.plan.piece_count()
                ),
            );
        }
        if self.report.bitfield.is_none() && self.report.haves.is_empty() {
            self.clock = Instant::now();
        }
        keep(&mut self.report.haves, index, &mut self.report.untracked);
        self.offer(index);
    }

    fn bitfield(&mut self, bits: Vec<u8>, first: bool) {
        if !first || self.report.bitfield.is_some() {
            self.deviation(
                "late-bitfield",
                format!(
                    "a bitfield after {} other messages; BEP 3 sends it first only",
                    self.messages - 1
                ),
            );
        }
        if self.report.bitfield.is_none() && self.report.haves.is_empty() {
            self.clock = Instant::now();
        }
        for i in 0..self.plan.piece_count() {
            if bits
                .get(i as usize / 8)
                .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
            {
                self.offer(i);
            }
        }
        let at = self.now();
        self.report
            .bitfield
            .get_or_insert(BitfieldSeen { bits, at, first });
    }

    /// Notes that the seeder has `index`; queues its blocks if wanted.
    fn offer(&mut self, index: u32) {
        if std::mem::replace(&mut self.offered[index as usize], true) {
            return;
        }
        self.report.has.push(index);
        if !self.wanted[index as usize] {
            return;
        }
        let len = self.plan.piece_len(index);
        for begin in (0..len).step_by(BLOCK_MAX as usize) {
            self.at.insert((index, begin), self.report.blocks.len());
            self.queue.push_back(self.report.blocks.len());
            self.report.blocks.push(BlockLog {
                index,
                begin,
                length: BLOCK_MAX.min(len - begin),
                requested: None,
                requests: 0,
                received: None,
                matches: None,
                cancelled: false,
            });
        }
    }

    /// The end, once every block queued is in and nothing more will be
    /// offered.
    fn settled(&self) -> Option<End> {
        if !self.queue.is_empty() || !self.outstanding.is_empty() {
            return None;
        }
        let all_offered = (0..self.offered.len()).all(|i| self.offered[i] || !self.wanted[i]);
        if !all_offered && self.report.bitfield.is_none() {
            return None;
        }
        Some(match self.report.blocks.is_empty() {
            true => End::NothingOffered,
            false => End::Completed,
        })
    }

    /// Says interested, cancels a request if the plan says so, and keeps
    /// the pipeline full.
    async fn pump(&mut self) -> Result<(), End> {
        if !self.interested && !self.queue.is_empty() {
            self.interested = true;
            self.send(&[Message::Interested]).await?;
            self.report.interested_at = Some(self.now());
            self.clock = Instant::now();
        }
        if self.choked {
            return Ok(());
        }
        if self.plan.cancel && self.report.cancel.is_none() {
            self.cancel_one().await?;
        }
        let mut batch = Vec::new();
        while self.outstanding.len() < self.plan.pipeline.max(1)
            && let Some(i) = self.queue.pop_front()
        {
            if self.report.blocks[i].received.is_some() {
                continue;
            }
            batch.push(self.requested(i));
            self.outstanding.push(i);
        }
        if batch.len() == self.outstanding.len() && !batch.is_empty() {
            self.clock = Instant::now();
        }
        self.send(&batch).await
    }

    /// Notes block `i` as requested now; the request message.
    fn requested(&mut self, i: usize) -> Message {
        let now = self.now();
        let b = &mut self.report.blocks[i];
        b.requested.get_or_insert(now);
        b.requests = b.requests.saturating_add(1);
        Message::Request {
            index: b.index,
            begin: b.begin,
            length: b.length,
        }
    }

    /// Requests the first block queued and cancels it at once; the block
    /// is asked for again after all the others, unless it comes anyway.
    async fn cancel_one(&mut self) -> Result<(), End> {
        let Some(i) = self.queue.pop_front() else {
            return Ok(());
        };
        let request = self.requested(i);
        let b = &mut self.report.blocks[i];
        b.cancelled = true;
        let block = (b.index, b.begin, b.length);
        let cancel = Message::Cancel {
            index: block.0,
            begin: block.1,
            length: block.2,
        };
        self.queue.push_back(i);
        self.send(&[request, cancel]).await?;
        self.report.cancel = Some(CancelLog {
            block,
            at: self.now(),
            sent_anyway: false,
            served_after: 0,
        });
        Ok(())
    }

    /// A piece message from the seeder.
    fn block(&mut self, index: u32, begin: u32, data: Vec<u8>) {
        let Some(&i) = self.at.get(&(index, begin)) else {
            return self.stray(index, begin, data.len());
        };
        let b = &self.report.blocks[i];
        let (want, asked, got) = (b.length, b.requested.is_some(), b.received.is_some());
        // A block asked for again (after a choke or a cancel) may come
        // twice without the seeder being at fault.
        let asked_again = b.cancelled || b.requests > 1;
        if data.len() != want as usize {
            self.deviation(
                "wrong-block",
                format!(
                    "piece {index} begin {begin}: {} bytes, {want} requested",
                    data.len()
                ),
            );
        } else if !asked {
            self.deviation(
                "unrequested-block",
                format!("piece {index} begin {begin}: not requested yet"),
            );
        } else if got {
            if !asked_again {
                self.deviation(
                    "duplicate-block",
                    format!("piece {index} begin {begin}: sent again"),
                );
            }
        } else {
            self.accept(i, data);
        }
    }

    /// A block for no (piece, begin) queued.
    fn stray(&mut self, index: u32, begin: u32, len: usize) {
        let inside = index < self.plan.piece_count()
            && begin as u64 + len as u64 <= self.plan.piece_len(index) as u64;
        let (kind, why) = match inside {
            true => ("unrequested-block", "never requested"),
            false => ("wrong-block", "not a block of the torrent"),
        };
        self.deviation(
            kind,
            format!("piece {index} begin {begin} length {len}: {why}"),
        );
    }

    /// Takes block `i`; checks its piece when the piece is whole.
    fn accept(&mut self, i: usize, data: Vec<u8>) {
        let now = self.now();
        self.clock = Instant::now();
        self.outstanding.retain(|&o| o != i);
        let expected = self.plan.expected.clone();
        let piece_length = self.plan.piece_length as usize;
        let b = &mut self.report.blocks[i];
        b.received = Some(now);
        let start = b.index as usize * piece_length + b.begin as usize;
        b.matches = expected.map(|e| e[start..start + data.len()] == data[..]);
        let (index, begin, requests, cancelled) = (b.index, b.begin, b.requests, b.cancelled);
        if let Some(c) = &mut self.report.cancel {
            match cancelled && requests == 1 {
                true => c.sent_anyway = true,
                false => c.served_after += 1,
            }
        }
        let len = self.plan.piece_len(index);
        let piece = self.bufs.entry(index).or_insert_with(|| PieceBuf {
            data: vec![0; len as usize],
            missing: len.div_ceil(BLOCK_MAX),
        });
        piece.data[begin as usize..begin as usize + data.len()].copy_from_slice(&data);
        piece.missing = piece.missing.saturating_sub(1);
        if piece.missing == 0 {
            self.verify(index);
        }
    }

    /// Checks a whole piece against its SHA-1 and the original data.
    fn verify(&mut self, index: u32) {
        let Some(piece) = self.bufs.remove(&index) else {
            return;
        };
        let got = sha1(&piece.data);
        let verified = got == self.plan.piece_hashes[index as usize];
        let diff = self.difference(index, &piece.data);
        self.report.pieces.push(PieceLog {
            index,
            verified,
            first_difference: diff.map(|d| d as u32),
            at: self.now(),
        });
        if !verified {
            self.mismatch(index, got, &piece.data, diff);
        }
    }

    /// The first byte of piece `index` that differs from the original data.
    fn difference(&self, index: u32, data: &[u8]) -> Option<usize> {
        let start = index as usize * self.plan.piece_length as usize;
        let orig = self
            .plan
            .expected
            .as_ref()?
            .get(start..start + data.len())?;
        orig.iter().zip(data).position(|(a, b)| a != b)
    }

    /// Records a piece whose SHA-1 is not the torrent's.
    fn mismatch(&mut self, index: u32, got: [u8; 20], data: &[u8], diff: Option<usize>) {
        let start = index as usize * self.plan.piece_length as usize;
        let at = match (diff, &self.plan.expected) {
            (Some(d), Some(e)) => format!(
                "first differing byte at offset {d} of the piece: {:#04x}, expected {:#04x}",
                data[d],
                e[start + d]
            ),
            (None, Some(_)) => "the bytes are the original data's".into(),
            (_, None) => "the original data is not known".into(),
        };
        let want = hex(&self.plan.piece_hashes[index as usize]);
        self.deviation(
            "piece-hash-mismatch",
            format!("piece {index}: SHA-1 {}, expected {want}; {at}", hex(&got)),
        );
    }

    /// Sends messages, recording each.
    async fn send(&mut self, msgs: &[Message]) -> Result<(), End> {
        if msgs.is_empty() {
            return Ok(());
        }
        let mut raw = Vec::new();
        for m in msgs {
            m.encode(&mut raw);
        }
        self.write(&raw).await?;
        for m in msgs {
            self.event_msg(Dir::Out, m);
        }
        Ok(())
    }

    /// Writes bytes within one wait.
    async fn write(&mut self, raw: &[u8]) -> Result<(), End> {
        let until = (Instant::now() + self.plan.wait).min(self.end_at);
        match timeout_at(until, self.out.write_all(raw)).await {
            Err(_) => Err(End::TimedOut {
                waiting_for: "the seeder to take what the leecher sent".into(),
                waited: self.plan.wait,
                whole_session: until == self.end_at,
            }),
            Ok(Err(e)) => Err(self.closed(Some(e.to_string()))),
            Ok(Ok(())) => {
                self.report.sent += raw.len() as u64;
                Ok(())
            }
        }
    }

    fn event_msg(&self, dir: Dir, msg: &Message) {
        self.event(dir, msg.name(), block_of(msg), &msg.to_bytes());
    }

    fn event(&self, dir: Dir, name: &str, block: Option<(u32, u32, u32)>, raw: &[u8]) {
        self.rec.record(EventKind::PeerMessage {
            server: self.plan.name.clone(),
            conn: self.plan.conn,
            dir,
            name: name.into(),
            block,
            head: raw[..raw.len().min(HEAD)].to_vec(),
        });
    }

    fn deviation(&mut self, kind: &str, detail: String) {
        self.rec.record(EventKind::Deviation {
            server: self.plan.name.clone(),
            conn: self.plan.conn,
            kind: kind.into(),
            detail: detail.clone(),
        });
        let r = &mut self.report;
        keep(&mut r.deviations, (kind.into(), detail), &mut r.untracked);
    }
}

/// Appends `item` unless `list` is full; then counts it in `untracked`.
fn keep<T>(list: &mut Vec<T>, item: T, untracked: &mut u64) {
    match list.len() < MAX_ENTRIES {
        true => list.push(item),
        false => *untracked += 1,
    }
}

#[cfg(test)]
mod tests;
