//! The reference BitTorrent tracker over HTTP (BEP 3, compact peer lists of
//! BEP 23).
//!
//! A client announces with `GET /announce?info_hash=…&peer_id=…&port=…` (the
//! 20-byte ids percent-escaped) and gets a canonical bencoded dictionary:
//! `interval`, `complete` (seeders), `incomplete` (leechers) and `peers`,
//! either compact (6 bytes each: IPv4 address and port) or a list of
//! dictionaries (`ip`, `peer id`, `port`), never the requester itself. A bad
//! request gets `failure reason`. Peers are kept per torrent in memory, at
//! most [`MAX_PEERS`] a torrent, forgotten after two intervals of silence.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bendy::encoding::Encoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::torrent::{InfoHash, hex};

pub mod udp;

/// Peers kept per torrent; a new peer beyond this is refused.
pub const MAX_PEERS: usize = 1000;
/// Peers returned when the client names no `numwant`.
pub const DEFAULT_NUMWANT: usize = 50;
/// Peers returned at most, whatever `numwant` asks.
pub const MAX_NUMWANT: usize = 200;
/// The longest request head read.
const MAX_HEAD: usize = 8192;
/// The longest request target kept in an [`AnnounceRecord`].
pub const MAX_TARGET: usize = 1024;
/// How long a client has to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 64;

/// The `event` of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// The first announce of a download.
    Started,
    /// The download finished.
    Completed,
    /// The client leaves the swarm.
    Stopped,
}

impl AnnounceEvent {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
        }
    }
}

/// An announce's decoded fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// The client's id.
    pub peer_id: [u8; 20],
    /// The port the client accepts peers on.
    pub port: u16,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes left to download.
    pub left: u64,
    /// `started`, `completed`, `stopped`, or none (a regular announce).
    pub event: Option<AnnounceEvent>,
    /// Whether the client asked for a compact peer list.
    pub compact: bool,
    /// How many peers the client wants.
    pub numwant: usize,
}

impl Announce {
    /// The fields for people, ids as text or hex: `info_hash=… peer_id=…
    /// port=… uploaded=… downloaded=… left=… event=… compact=…`.
    pub fn fields(&self) -> String {
        format!(
            "info_hash={} peer_id={} port={} uploaded={} downloaded={} left={} event={} compact={}",
            self.info_hash,
            printable(&self.peer_id),
            self.port,
            self.uploaded,
            self.downloaded,
            self.left,
            self.event.map_or("none", AnnounceEvent::as_str),
            u8::from(self.compact),
        )
    }
}

/// Percent-decodes a query component (`+` stays `+`).
fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn id20(params: &HashMap<&str, Vec<u8>>, key: &str) -> Result<[u8; 20], String> {
    let v = params.get(key).ok_or_else(|| format!("missing {key}"))?;
    v.as_slice()
        .try_into()
        .map_err(|_| format!("{key} is {} bytes, not 20", v.len()))
}

fn number(params: &HashMap<&str, Vec<u8>>, key: &str) -> Result<Option<u64>, String> {
    params
        .get(key)
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("invalid {key}"))
        })
        .transpose()
}

/// Reads an announce from a request target (`/announce?…`). The error is
/// the `failure reason` to send.
pub fn parse_announce(target: &str) -> Result<Announce, String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(k, percent_decode(v)?);
    }
    let port = number(&params, "port")?.ok_or("missing port")?;
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or("invalid port")?;
    let event = match params.get("event").map(Vec::as_slice) {
        None | Some(b"") | Some(b"empty") => None,
        Some(b"started") => Some(AnnounceEvent::Started),
        Some(b"completed") => Some(AnnounceEvent::Completed),
        Some(b"stopped") => Some(AnnounceEvent::Stopped),
        Some(_) => return Err("invalid event".into()),
    };
    Ok(Announce {
        info_hash: InfoHash(id20(&params, "info_hash")?),
        peer_id: id20(&params, "peer_id")?,
        port,
        uploaded: number(&params, "uploaded")?.unwrap_or(0),
        downloaded: number(&params, "downloaded")?.unwrap_or(0),
        left: number(&params, "left")?.unwrap_or(0),
        event,
        compact: params.get("compact").is_none_or(|v| v != b"0"),
        numwant: number(&params, "numwant")?
            .map_or(DEFAULT_NUMWANT, |n| (n as usize).min(MAX_NUMWANT)),
    })
}

/// One peer of a swarm.
#[derive(Clone, Debug)]
struct Peer {
    ip: Ipv4Addr,
    port: u16,
    left: u64,
    seen: Instant,
    /// A peer of the lab's own, listed until the end (never forgotten).
    pinned: bool,
}

/// The tracker's state: the torrents it serves and their swarms.
#[derive(Debug)]
pub struct Tracker {
    swarms: HashMap<InfoHash, BTreeMap<[u8; 20], Peer>>,
    completed: HashMap<InfoHash, u64>,
    interval: u32,
}

/// What the tracker did with one announce, as it is recorded and printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnounceRecord {
    /// Where the request came from.
    pub from: SocketAddr,
    /// The request line's target as sent (its first [`MAX_TARGET`] bytes,
    /// invalid UTF-8 replaced); empty when no request line was read.
    pub target: String,
    /// The announce, or the failure reason of a request that did not read.
    pub announce: Result<Announce, String>,
    /// Peers returned, or the failure reason sent.
    pub outcome: Result<usize, String>,
}

impl fmt::Display for AnnounceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "announce from {}: ", self.from)?;
        if let Ok(a) = &self.announce {
            write!(f, "{} numwant={} ", a.fields(), a.numwant)?;
        }
        match &self.outcome {
            Ok(n) => write!(f, "-> {n} peers"),
            Err(reason) => write!(f, "-> failure: {reason}"),
        }
    }
}

/// A peer id for people: as text when it is printable ASCII, else hex.
pub fn printable(id: &[u8]) -> String {
    if id.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(id).into_owned()
    } else {
        hex(id)
    }
}

impl Tracker {
    /// A tracker of these torrents, telling clients to come back every
    /// `interval` seconds.
    pub fn new(torrents: impl IntoIterator<Item = InfoHash>, interval: u32) -> Tracker {
        Tracker {
            swarms: torrents.into_iter().map(|h| (h, BTreeMap::new())).collect(),
            completed: HashMap::new(),
            interval,
        }
    }

    /// Handles one announce from `ip`: the bencoded reply and the number of
    /// peers in it, or the failure reason.
    pub fn announce(
        &mut self,
        a: &Announce,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Result<(Vec<u8>, usize), String> {
        let view = self.update(a, ip, now)?;
        let body = encode_reply(self.interval, &view, a.compact);
        Ok((body, view.peers.len()))
    }

    /// The same tracker telling clients to come back every `interval` seconds.
    pub fn with_interval(mut self, interval: u32) -> Tracker {
        self.interval = interval;
        self
    }

    /// Lists a peer of the lab's own in the swarm of `info_hash` (a
    /// seeder that never announces and is never forgotten).
    pub fn pin(&mut self, info_hash: InfoHash, peer_id: [u8; 20], ip: Ipv4Addr, port: u16) {
        let peer = Peer {
            ip,
            port,
            left: 0,
            seen: Instant::now(),
            pinned: true,
        };
        self.swarms
            .entry(info_hash)
            .or_default()
            .insert(peer_id, peer);
    }

    /// Seconds clients are told to wait between announces.
    pub fn interval(&self) -> u32 {
        self.interval
    }

    /// Applies one announce from `ip` to its swarm: what to answer, or the
    /// failure reason.
    pub fn update(
        &mut self,
        a: &Announce,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Result<SwarmView, String> {
        let horizon = Duration::from_secs(2 * u64::from(self.interval.max(1)));
        let swarm = self.swarms.get_mut(&a.info_hash).ok_or("unknown torrent")?;
        swarm.retain(|_, p| p.pinned || now.duration_since(p.seen) <= horizon);
        if a.event == Some(AnnounceEvent::Stopped) {
            swarm.remove(&a.peer_id);
        } else {
            if !swarm.contains_key(&a.peer_id) && swarm.len() >= MAX_PEERS {
                return Err(format!("swarm full ({MAX_PEERS} peers)"));
            }
            let peer = Peer {
                ip,
                port: a.port,
                left: a.left,
                seen: now,
                pinned: false,
            };
            swarm.insert(a.peer_id, peer);
        }
        if a.event == Some(AnnounceEvent::Completed) {
            *self.completed.entry(a.info_hash).or_default() += 1;
        }
        let complete = swarm.values().filter(|p| p.left == 0).count();
        let wanted = if a.event == Some(AnnounceEvent::Stopped) {
            0
        } else {
            a.numwant
        };
        let peers = swarm
            .iter()
            .filter(|(id, _)| **id != a.peer_id)
            .take(wanted)
            .map(|(id, p)| (*id, p.ip, p.port))
            .collect();
        Ok(SwarmView {
            complete,
            incomplete: swarm.len() - complete,
            peers,
        })
    }

    /// Seeders, completed downloads and leechers of a torrent (BEP 15's
    /// scrape), or `None` for a torrent not tracked.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<(usize, u64, usize)> {
        let swarm = self.swarms.get(info_hash)?;
        let seeders = swarm.values().filter(|p| p.left == 0).count();
        let done = self.completed.get(info_hash).copied().unwrap_or(0);
        Some((seeders, done, swarm.len() - seeders))
    }
}

/// What an announce is answered: the swarm's counts and some of its peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmView {
    /// Peers with nothing left to download.
    pub complete: usize,
    /// The other peers.
    pub incomplete: usize,
    /// Peers for the requester (never itself): id, address, port.
    pub peers: Vec<([u8; 20], Ipv4Addr, u16)>,
}

fn encode_reply(interval: u32, view: &SwarmView, compact: bool) -> Vec<u8> {
    let peers = &view.peers;
    let mut e = Encoder::new();
    e.emit_dict(|mut d| {
        d.emit_pair(b"complete", view.complete)?;
        d.emit_pair(b"incomplete", view.incomplete)?;
        d.emit_pair(b"interval", interval)?;
        if compact {
            let mut b = Vec::with_capacity(peers.len() * 6);
            for (_, ip, port) in peers {
                b.extend(ip.octets());
                b.extend(port.to_be_bytes());
            }
            d.emit_pair_with(b"peers", |e| e.emit_bytes(&b))
        } else {
            d.emit_pair_with(b"peers", |e| {
                e.emit_list(|l| {
                    peers.iter().try_for_each(|(id, ip, port)| {
                        l.emit_dict(|mut pd| {
                            pd.emit_pair(b"ip", ip.to_string())?;
                            pd.emit_pair_with(b"peer id", |e| e.emit_bytes(&id[..]))?;
                            pd.emit_pair(b"port", port)
                        })
                    })
                })
            })
        }
    })
    .expect("a tracker reply always encodes");
    e.get_output().expect("a tracker reply always encodes")
}

/// The bencoded `failure reason` reply.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut e = Encoder::new();
    e.emit_dict(|mut d| d.emit_pair(b"failure reason", reason))
        .expect("a failure always encodes");
    e.get_output().expect("a failure always encodes")
}

/// Reads a request head (up to [`MAX_HEAD`] bytes, within
/// [`READ_DEADLINE`]) and returns its request target; the error says what
/// was wrong, with the request line when there was one.
async fn read_target(stream: &mut TcpStream) -> Result<String, (String, String)> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return Err(format!("request head longer than {MAX_HEAD} bytes"));
            }
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the request's end".into());
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    let line = |head: &[u8]| {
        let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        String::from_utf8_lossy(&line[..line.len().min(MAX_TARGET)]).into_owned()
    };
    match tokio::time::timeout(READ_DEADLINE, read).await {
        Err(_) => return Err(("no whole request within 5 s".into(), line(&head))),
        Ok(Err(e)) => return Err((e, line(&head))),
        Ok(Ok(())) => {}
    }
    let line = line(&head);
    match line.split(' ').collect::<Vec<_>>()[..] {
        ["GET", target, v] if v.starts_with("HTTP/1.") => Ok(target.to_string()),
        _ => Err((format!("not an HTTP GET request: {line:?}"), line.clone())),
    }
}

/// Serves one connection: one announce, recorded through `record`.
async fn serve_connection(
    mut stream: TcpStream,
    from: SocketAddr,
    tracker: Arc<Mutex<Tracker>>,
    record: &(dyn Fn(AnnounceRecord) + Send + Sync),
) {
    let refused = |target: String, why: String| AnnounceRecord {
        from,
        target,
        announce: Err(why.clone()),
        outcome: Err(why),
    };
    let (status, body, rec) = match read_target(&mut stream).await {
        Err((e, line)) if line.is_empty() && e.starts_with("connection closed") => {
            ("400 Bad Request", e.into_bytes(), None)
        }
        Err((e, line)) => (
            "400 Bad Request",
            e.clone().into_bytes(),
            Some(refused(line, e)),
        ),
        Ok(t) if t.split('?').next() != Some("/announce") => {
            let why = format!("{t:?} is not /announce");
            (
                "404 Not Found",
                b"only /announce here".to_vec(),
                Some(refused(t, why)),
            )
        }
        Ok(t) => {
            let announce = parse_announce(&t);
            let reply = match (&announce, from.ip()) {
                (Err(e), _) => Err(e.clone()),
                (Ok(a), IpAddr::V4(ip)) => {
                    let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
                    t.announce(a, ip, Instant::now())
                }
                (Ok(_), IpAddr::V6(_)) => Err("IPv6 peers are not tracked".into()),
            };
            let (body, outcome) = match reply {
                Ok((body, n)) => (body, Ok(n)),
                Err(e) => (encode_failure(&e), Err(e)),
            };
            (
                "200 OK",
                body,
                Some(AnnounceRecord {
                    from,
                    target: t.chars().take(MAX_TARGET).collect(),
                    announce,
                    outcome,
                }),
            )
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(READ_DEADLINE, write).await;
    if !status.starts_with("200") {
        linger(&mut stream).await;
    }
    if let Some(rec) = rec {
        record(rec);
    }
}

/// Reads and drops what a refused client still sends (64 KiB, 1 s at most),
/// so that closing does not reset the connection before it reads the reply.
async fn linger(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    let drain = async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Serves announces on `listener` until the task is dropped; each announce
/// is handed to `record` once answered.
pub async fn serve(
    listener: TcpListener,
    tracker: Arc<Mutex<Tracker>>,
    record: Arc<dyn Fn(AnnounceRecord) + Send + Sync>,
) -> std::io::Result<()> {
    serve_counted(listener, tracker, record, Arc::default()).await
}

/// [`serve`], counting in `open` the connections being served.
pub async fn serve_counted(
    listener: TcpListener,
    tracker: Arc<Mutex<Tracker>>,
    record: Arc<dyn Fn(AnnounceRecord) + Send + Sync>,
    open: Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    use std::sync::atomic::Ordering;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let (stream, from) = listener.accept().await?;
        let (tracker, record, open) = (tracker.clone(), record.clone(), open.clone());
        open.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            serve_connection(stream, from, tracker, &*record).await;
            open.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
        });
    }
}

/// The announces tracker `server` answered, a line each, for transcripts.
pub fn transcript(server: &str, trace: &crate::trace::Trace) -> Vec<String> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            crate::trace::EventKind::Announce { server: s, record } if s == server => {
                Some(announce_line(record))
            }
            _ => None,
        })
        .collect()
}

/// One announce for a transcript: the fields (ids as text or hex) and the
/// outcome, without the client's address (its port changes run to run).
fn announce_line(r: &AnnounceRecord) -> String {
    let asked = match &r.announce {
        Ok(a) => a.fields(),
        Err(_) => format!("{:?}", r.target),
    };
    match &r.outcome {
        Ok(n) => format!("announce {asked} -> {n} peers"),
        Err(why) => format!("announce {asked} -> failure: {why}"),
    }
}

#[cfg(test)]
mod tests;
