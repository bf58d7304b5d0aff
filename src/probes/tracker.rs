//! The tracker probe: netgrade's fake peers announce to a student's
//! BitTorrent HTTP tracker (BEP 3, BEP 23) and the answers are judged.
//!
//! [`announce`] sends one real HTTP/1.1 `GET` announce from a fake peer,
//! from the peer's own loopback address (127.x.y.z) when it can be bound, so
//! that peers differ by address as well as by port. It reads the whole
//! response under deadlines (connect, head, body; at most
//! [`Limits::max_bytes`]), copes with trackers that close early, answer
//! HTML, chunk the body, keep the connection open without `Content-Length`
//! or send nothing, and keeps the [`Exchange`]: request target, status line,
//! headers, raw body, its strict bencode reading ([`bencode`]) and timing.
//!
//! Each scenario ([`scenarios`]) runs a fixed series of announces and judges
//! them: [`Outcome::judgement`] holds the evidence of a pass, or a
//! [`Finding`] whose message names the problem, quotes the offending bytes
//! and says what to fix, with the requests and responses as evidence. Peer
//! ids and ports come from a seed, so a scenario sends the same requests in
//! the same order every time. Each scenario wants a torrent of its own
//! ([`info_hash_for`]); a student's tracker must accept any info hash.
//!
//! What the scenarios require, where BEP 3 and BEP 23 leave room:
//! - `compact` is advisory (BEP 23): either peer-list form is accepted
//!   whatever the client asked, but a request with `compact=0` must still be
//!   answered with a peer list, not refused.
//! - In the dictionary form, `peer id` must be present and right unless the
//!   client sent `no_peer_id=1`; `ip` must be the address the peer announced
//!   from, as text.
//! - A peer is never given itself. Only `peer-list` judges this, so that one
//!   mistake fails one check; the others ignore the requester's own entry.
//! - `complete` and `incomplete` are optional, but when sent they must count
//!   the swarm right (seeders: peers whose last `left` was 0).
//! - A bad request gets a bencoded dictionary with `failure reason`, under
//!   any HTTP status; a good announce gets `200 OK`.
//! - A reply must end: by `Content-Length`, chunks, or closing.

pub mod bencode;
pub mod reply;
pub mod scenarios;
pub mod udp;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{Instant, timeout_at};

use crate::probes::http::{self, Framing};
use crate::sandbox::NetNs;
use crate::torrent::InfoHash;

pub use scenarios::*;

/// Deadlines and size bound of one announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// To open the connection.
    pub connect: Duration,
    /// From the request sent to the end of the response head.
    pub head: Duration,
    /// From the end of the head to the end of the body.
    pub body: Duration,
    /// Most bytes of response kept; reading stops there.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A listen backlog of 5 (Python's socketserver) overflows when
            // twenty peers connect at once: Linux sends a dropped SYN again
            // after 1 s and 3 s, so a tracker that accepts promptly is
            // reached within 4 s.
            connect: Duration::from_secs(4),
            head: Duration::from_secs(5),
            body: Duration::from_secs(5),
            max_bytes: 1 << 20,
        }
    }
}

/// The tracker under test.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The network namespace it runs in (the run's), or `None` for the
    /// host network.
    pub netns: Option<Arc<NetNs>>,
    /// The announce path, e.g. `/announce`.
    pub path: String,
    /// Seed of the fake peers' ids and ports.
    pub seed: u64,
    /// Deadlines of each announce.
    pub limits: Limits,
}

impl Target {
    /// A tracker at `addr`, announce path `path`, default limits.
    pub fn new(addr: SocketAddr, path: &str, seed: u64) -> Target {
        Target {
            addr,
            netns: None,
            path: path.to_string(),
            seed,
            limits: Limits::default(),
        }
    }
}

/// One of netgrade's fake peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePeer {
    /// A short name for messages: `A`, `B`…
    pub name: String,
    /// Its 20-byte id; some bytes are ≥ 0x80 or need escaping in a URL.
    pub peer_id: [u8; 20],
    /// The loopback address it announces from (when it can be bound).
    pub ip: Ipv4Addr,
    /// The port it says it listens on.
    pub port: u16,
}

/// `count` fake peers for scenario number `scenario`, all derived from
/// `seed`: distinct ids, distinct ports, addresses 127.`scenario+1`.0.`i+1`.
pub fn fake_peers(seed: u64, scenario: u8, count: usize) -> Vec<FakePeer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(scenario) << 56));
    let mut peers: Vec<FakePeer> = Vec::with_capacity(count);
    while peers.len() < count {
        let i = peers.len();
        let mut peer_id = [0u8; 20];
        peer_id[..8].copy_from_slice(b"-NG0001-");
        rng.fill(&mut peer_id[8..]);
        // Bytes that must be escaped: a space, '&', '%', '+' and high bytes.
        peer_id[8] = [b' ', b'&', b'%', b'+', b'='][i % 5];
        peer_id[9] |= 0x80;
        let port = rng.random_range(10_000..60_000);
        let clash = |p: &FakePeer| p.port == port || p.peer_id == peer_id;
        if peers.iter().any(clash) {
            continue;
        }
        peers.push(FakePeer {
            name: peer_name(i),
            peer_id,
            ip: Ipv4Addr::new(
                127,
                scenario.wrapping_add(1),
                (i / 250) as u8,
                (i % 250 + 1) as u8,
            ),
            port,
        });
    }
    peers
}

/// `A`…`Z`, then `P26`, `P27`…
fn peer_name(i: usize) -> String {
    match u8::try_from(i) {
        Ok(n) if n < 26 => char::from(b'A' + n).to_string(),
        _ => format!("P{i}"),
    }
}

/// Percent-escapes every byte but the unreserved ones (RFC 3986).
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// No event: a regular announce.
    None,
    /// `started`.
    Started,
    /// `completed`.
    Completed,
    /// `stopped`.
    Stopped,
}

/// The query of a well-formed announce; `extra` is appended as is
/// (`&compact=1`…).
pub fn query(hash: &InfoHash, peer: &FakePeer, left: u64, event: Event, extra: &str) -> String {
    let event = match event {
        Event::None => "",
        Event::Started => "&event=started",
        Event::Completed => "&event=completed",
        Event::Stopped => "&event=stopped",
    };
    format!(
        "info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={left}{event}{extra}",
        escape(&hash.0),
        escape(&peer.peer_id),
        peer.port
    )
}

/// How an exchange ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The response was complete by its framing.
    Complete,
    /// The tracker closed the connection (the response is what came before).
    Closed,
    /// The connection was reset.
    Reset,
    /// The connection could not be opened; why.
    ConnectFailed(String),
    /// A deadline passed: `connect`, `head` or `body`.
    TimedOut(&'static str),
    /// [`Limits::max_bytes`] arrived without the response's end.
    TooLarge,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Complete => write!(f, "complete response"),
            End::Closed => write!(f, "the tracker closed the connection"),
            End::Reset => write!(f, "the connection was reset"),
            End::ConnectFailed(why) => write!(f, "could not connect: {why}"),
            End::TimedOut(stage) => write!(f, "no {stage} before the deadline"),
            End::TooLarge => write!(f, "the response exceeded the size limit"),
        }
    }
}

/// One announce and what came back.
#[derive(Clone, Debug, PartialEq)]
pub struct Exchange {
    /// The fake peer's name (`A`…) or what the request tests.
    pub who: String,
    /// The request target sent: `/announce?info_hash=…`.
    pub target: String,
    /// The address the request came from, when connected.
    pub from: Option<SocketAddr>,
    /// Everything received.
    pub received: Vec<u8>,
    /// The status line, without its CRLF, when there is one.
    pub status_line: Option<String>,
    /// The status code, when the status line has one.
    pub status: Option<u16>,
    /// Header fields as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body after framing (de-chunked).
    pub body: Vec<u8>,
    /// How the body's end was found, when the head ended.
    pub framing: Option<Framing>,
    /// The body read as bencode.
    pub bencode: Result<bencode::Decoded, bencode::Error>,
    /// How the exchange ended.
    pub end: End,
    /// From the start of the connect to the end.
    pub elapsed: Duration,
}

impl Exchange {
    /// `GET /announce?… from 127.1.0.1:40000`, for messages.
    pub fn request(&self) -> String {
        match self.from {
            Some(from) => format!("GET {} (peer {}, from {from})", self.target, self.who),
            None => format!("GET {} (peer {})", self.target, self.who),
        }
    }

    /// What came back, in one line: status, size, and the first bytes.
    pub fn response(&self) -> String {
        if self.received.is_empty() {
            return format!("nothing came back ({})", self.end);
        }
        let status = self.status_line.as_deref().unwrap_or("no status line");
        format!(
            "{status}; body of {} bytes: {} ({})",
            self.body.len(),
            quote(&self.body, 120),
            self.end
        )
    }

    /// The request and the response, for evidence.
    pub fn evidence(&self) -> String {
        format!("{} -> {}", self.request(), self.response())
    }

    /// The dictionary the body holds, whether or not it is canonical.
    pub fn dict(&self) -> Option<&bencode::Value> {
        match &self.bencode {
            Ok(d) if matches!(d.value, bencode::Value::Dict(_)) => Some(&d.value),
            _ => None,
        }
    }
}

/// Bytes as escaped text in quotes, cut after `max` bytes.
pub fn quote(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let more = if bytes.len() > max { "…" } else { "" };
    format!("\"{}\"{more}", shown.escape_ascii())
}

/// Sends one announce with query `query` to `target` as `who`, from
/// `from` when that address can be bound, and reads the response.
pub async fn announce(target: &Target, who: &str, from: Ipv4Addr, query: &str) -> Exchange {
    let path = format!("{}?{query}", target.path);
    let start = Instant::now();
    let limits = &target.limits;
    let mut received = Vec::new();
    let netns = target.netns.as_deref();
    let (end, local) = match connect(target.addr, netns, from, limits.connect).await {
        Err(why) => (End::ConnectFailed(why), None),
        Ok(mut stream) => {
            let local = stream.local_addr().ok();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netgrade\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
                target.addr
            );
            let end = converse(&mut stream, request.as_bytes(), limits, &mut received).await;
            (end, local)
        }
    };
    exchange(who, path, local, received, end, start.elapsed())
}

/// Builds the [`Exchange`] from what was received.
fn exchange(
    who: &str,
    target: String,
    from: Option<SocketAddr>,
    received: Vec<u8>,
    end: End,
    elapsed: Duration,
) -> Exchange {
    let parsed = http::parse_response(&received, false);
    let status_line = parsed.status_line.as_ref().map(|s| {
        let line = &received[s.offset..];
        let len = line.iter().position(|b| *b == b'\r' || *b == b'\n');
        String::from_utf8_lossy(&line[..len.unwrap_or(line.len())]).into_owned()
    });
    Exchange {
        who: who.to_string(),
        target,
        from,
        status: parsed.status_line.as_ref().map(|s| s.code),
        status_line,
        framing: parsed.head_end.map(|_| parsed.framing),
        bencode: bencode::decode(&parsed.body),
        body: parsed.body,
        headers: parsed.headers,
        received,
        end,
        elapsed,
    }
}

/// Opens a connection to `addr` (inside `netns` when given) from `from`
/// (any port), or from wherever the system chooses when `from` cannot be
/// bound.
pub async fn connect(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    from: Ipv4Addr,
    limit: Duration,
) -> Result<TcpStream, String> {
    let socket = in_netns(netns, TcpSocket::new_v4)
        .await
        .map_err(|e| e.to_string())?;
    if addr.ip().is_loopback() {
        // Some systems give only 127.0.0.1: then all peers share it.
        let _ = socket.bind(SocketAddr::V4(SocketAddrV4::new(from, 0)));
    }
    match tokio::time::timeout(limit, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no connection within {limit:?}")),
    }
}

/// Runs `make` (which creates a socket) inside `netns`, or here: a socket
/// belongs to the namespace it is created in.
pub async fn in_netns<T: Send + 'static>(
    netns: Option<&NetNs>,
    make: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let Some(ns) = netns else { return make() };
    let ns = ns.try_clone()?;
    tokio::task::spawn_blocking(move || ns.run(make))
        .await
        .map_err(std::io::Error::other)??
}

/// Sends `request` and reads the response into `received`.
async fn converse(
    stream: &mut TcpStream,
    request: &[u8],
    limits: &Limits,
    received: &mut Vec<u8>,
) -> End {
    let sent_by = Instant::now() + limits.head;
    // A write that fails is not the end: a tracker may answer and close
    // before reading the whole request.
    if timeout_at(sent_by, stream.write_all(request))
        .await
        .is_err()
    {
        return End::TimedOut("head");
    }
    let end = receive(stream, limits, received).await;
    if end != End::Complete {
        let _ = stream.set_zero_linger();
    }
    end
}

/// Reads until the response is complete, the connection ends, a deadline
/// passes or the size bound is reached.
async fn receive(stream: &mut TcpStream, limits: &Limits, received: &mut Vec<u8>) -> End {
    let mut deadline = Instant::now() + limits.head;
    let mut stage = "head";
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let room = limits
            .max_bytes
            .saturating_sub(received.len())
            .min(buf.len());
        if room == 0 {
            return End::TooLarge;
        }
        match timeout_at(deadline, stream.read(&mut buf[..room])).await {
            Err(_) => return End::TimedOut(stage),
            Ok(Ok(0)) => return End::Closed,
            Ok(Err(_)) => return End::Reset,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
        match completeness(received) {
            Progress::Head => {}
            Progress::Body if stage == "head" => {
                stage = "body";
                deadline = Instant::now() + limits.body;
            }
            Progress::Body => {}
            Progress::Done => return End::Complete,
        }
    }
}

/// How far a response has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// The head has not ended.
    Head,
    /// The head has ended, the body has not.
    Body,
    /// The response is complete by its framing.
    Done,
}

fn completeness(bytes: &[u8]) -> Progress {
    let p = http::parse_response(bytes, false);
    let Some(end) = p.head_end else {
        return Progress::Head;
    };
    let done = match p.framing {
        Framing::NoBody => true,
        Framing::ContentLength(n) => (bytes.len() - end) as u64 >= n,
        Framing::Chunked => !p
            .deviations
            .iter()
            .any(|d| matches!(d.kind, http::DeviationKind::BadChunk(_))),
        Framing::UntilClose => false,
    };
    if done { Progress::Done } else { Progress::Body }
}

/// A problem found, for the student: what is wrong, why, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The problem, the evidence in brief, and the fix.
    pub message: String,
    /// Requests and responses that show it.
    pub evidence: Vec<String>,
}

impl Finding {
    /// A finding with `message` and `evidence`.
    pub fn new(message: impl Into<String>, evidence: Vec<String>) -> Finding {
        Finding {
            message: message.into(),
            evidence,
        }
    }
}

/// A scenario's verdict: the evidence of a pass, or what failed.
pub type Judgement = Result<Vec<String>, Finding>;

/// A scenario's announces and verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The check's name, e.g. `peer-list`.
    pub check: &'static str,
    /// Every announce, in the order sent.
    pub exchanges: Vec<Exchange>,
    /// The verdict.
    pub judgement: Judgement,
}

#[cfg(test)]
mod tests;
