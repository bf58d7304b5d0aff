//! Reference BitTorrent peers: the peer wire protocol ([`wire`]) and a
//! seeder ([`serve`]) with seeded behaviours ([`Behaviour`]): a peer that
//! has only some pieces, one that stays choked until the other side is
//! interested, one that corrupts a block, one that disconnects in the middle
//! of a piece, one slow peer. Every message both ways is recorded as an
//! [`EventKind::PeerMessage`]; every protocol fault as an
//! [`EventKind::Deviation`].

pub mod crowd;
pub mod leecher;
pub mod wire;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until, timeout};

use crate::trace::{Dir, EventKind, Recorder};
use wire::{BLOCK_MAX, Decoder, Handshake, Limits, Message};

/// How long a connection may stay silent before the seeder closes it.
pub const IDLE: Duration = Duration::from_secs(120);
/// How often the seeder sends a keep-alive on a quiet connection.
pub const KEEP_ALIVE: Duration = Duration::from_secs(60);
/// How long the other side has to send its handshake.
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// Requests queued per connection; while the queue is full the seeder reads
/// nothing more from that connection (the other side waits, nothing is lost).
pub const MAX_QUEUE: usize = 256;
/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 32;

/// What a seeder shares: the torrent's info_hash, piece length and the data.
#[derive(Debug, Clone)]
pub struct Content {
    /// SHA-1 of the bencoded info dictionary.
    pub info_hash: [u8; 20],
    /// Bytes per piece (the last piece may be shorter).
    pub piece_length: u32,
    /// The whole payload.
    pub data: Vec<u8>,
}

impl Content {
    /// Number of pieces.
    pub fn pieces(&self) -> u32 {
        self.data.len().div_ceil(self.piece_length as usize) as u32
    }

    /// Length of piece `index` (0 past the end).
    pub fn piece_len(&self, index: u32) -> u32 {
        let start = index as u64 * self.piece_length as u64;
        (self.data.len() as u64)
            .saturating_sub(start)
            .min(self.piece_length as u64) as u32
    }
}

/// How a reference peer misbehaves; the default is a well-behaved seeder
/// that has every piece and unchokes at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Only these pieces (sorted); `None` for all.
    pub has: Option<Vec<u32>>,
    /// Stays choked until the other side says interested.
    pub choke_until_interested: bool,
    /// These bytes (piece, offset in the piece) are sent flipped every time,
    /// so those pieces' SHA-1 fails.
    pub corrupt: Vec<(u32, u32)>,
    /// Asked for a block of one of these pieces, sends half the piece
    /// message and closes.
    pub disconnect_mid_piece: Vec<u32>,
    /// Waits this long before sending each block.
    pub slow: Option<Duration>,
    /// Pieces missing at first and gained during a connection: after every
    /// [`GAIN_EVERY`] blocks it serves, the peer has the next one and says
    /// so with a `have`.
    pub gains: Vec<u32>,
}

/// Where a `piece` message is split in two writes.
pub const SPLIT_AT: usize = 4096;
/// The pause between the two writes of a `piece` message.
pub const SPLIT_PAUSE: Duration = Duration::from_millis(1);

/// Blocks served between two pieces a peer gains ([`Behaviour::gains`]).
pub const GAIN_EVERY: u32 = 4;

impl Behaviour {
    /// `keep` pieces of `pieces`, chosen by `seed`.
    pub fn seeded_has(seed: u64, pieces: u32, keep: u32) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut all: Vec<u32> = (0..pieces).collect();
        for i in (1..all.len()).rev() {
            all.swap(i, rng.random_range(0..=i));
        }
        let mut kept: Vec<u32> = all.into_iter().take(keep as usize).collect();
        kept.sort_unstable();
        kept
    }

    /// A byte to corrupt, chosen by `seed`: (piece, offset in the piece).
    pub fn seeded_corrupt(seed: u64, content: &Content) -> (u32, u32) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc0de);
        let piece = rng.random_range(0..content.pieces().max(1));
        let offset = rng.random_range(0..content.piece_len(piece).max(1));
        (piece, offset)
    }

    fn has(&self, index: u32) -> bool {
        self.has
            .as_ref()
            .is_none_or(|h| h.binary_search(&index).is_ok())
            && !self.gains.contains(&index)
    }

    /// The bitfield of the pieces this peer has.
    pub fn bitfield(&self, pieces: u32) -> Vec<u8> {
        let mut bits = vec![0u8; pieces.div_ceil(8) as usize];
        for i in (0..pieces).filter(|&i| self.has(i)) {
            bits[i as usize / 8] |= 0x80 >> (i % 8);
        }
        bits
    }
}

/// One reference seeder: what it shares, how it behaves, where it records.
#[derive(Debug)]
pub struct Seeder {
    /// Server name in the trace.
    pub name: String,
    /// What it shares.
    pub content: Content,
    /// How it behaves.
    pub behaviour: Behaviour,
    /// Its peer id.
    pub peer_id: [u8; 20],
    /// Where it records.
    pub recorder: Recorder,
    conns: AtomicU32,
    /// Connections being served.
    active: AtomicU32,
    slots: Arc<Semaphore>,
}

impl Seeder {
    /// A seeder named `name`; its peer id is `-NG0001-` and the name, padded.
    pub fn new(name: &str, content: Content, behaviour: Behaviour, recorder: Recorder) -> Self {
        let mut peer_id = *b"-NG0001-____________";
        for (d, s) in peer_id[8..].iter_mut().zip(name.bytes()) {
            *d = s;
        }
        Seeder {
            name: name.to_string(),
            content,
            behaviour,
            peer_id,
            recorder,
            conns: AtomicU32::new(0),
            active: AtomicU32::new(0),
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    /// Connections being served now.
    pub fn open_connections(&self) -> usize {
        self.active.load(Ordering::Acquire) as usize
    }

    fn deviation(&self, conn: u32, kind: &str, detail: String) {
        self.recorder.record(EventKind::Deviation {
            server: self.name.clone(),
            conn,
            kind: kind.into(),
            detail,
        });
    }

    fn message(&self, conn: u32, dir: Dir, name: &str, block: Option<(u32, u32, u32)>, raw: &[u8]) {
        self.recorder.record(EventKind::PeerMessage {
            server: self.name.clone(),
            conn,
            dir,
            name: name.into(),
            block,
            head: raw[..raw.len().min(32)].to_vec(),
        });
    }
}

/// Accepts connections on `listener` and serves each until it ends; runs
/// until the task is dropped.
pub async fn serve(listener: TcpListener, seeder: Arc<Seeder>) {
    loop {
        let Ok(permit) = seeder.slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let seeder = seeder.clone();
        let conn = seeder.conns.fetch_add(1, Ordering::Relaxed) + 1;
        seeder.active.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = Conn::run(&seeder, conn, stream).await {
                seeder.deviation(conn, "connection", e);
            }
            seeder.active.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// One connection's state.
struct Conn<'a> {
    seeder: &'a Seeder,
    conn: u32,
    out: OwnedWriteHalf,
    choked: bool,
    queue: VecDeque<(u32, u32, u32)>,
    /// Blocks served on this connection.
    served: u32,
    /// How many of the behaviour's `gains` this connection has announced.
    gained: usize,
}

impl Conn<'_> {
    /// Handshake, bitfield, then messages until the other side closes, goes
    /// silent for [`IDLE`] or breaks the protocol. The error says why it ended
    /// early.
    async fn run(seeder: &Seeder, conn: u32, stream: TcpStream) -> Result<(), String> {
        let (mut input, out) = stream.into_split();
        let mut c = Conn {
            seeder,
            conn,
            out,
            choked: true,
            queue: VecDeque::new(),
            served: 0,
            gained: 0,
        };
        let mut dec = Decoder::new(Limits::new(seeder.content.pieces()));
        let mut buf = vec![0u8; 32 * 1024];
        let deadline = Instant::now() + HANDSHAKE_WAIT;
        let hs = loop {
            if let Some(hs) = dec.handshake().map_err(|e| format!("bad handshake: {e}"))? {
                break hs;
            }
            let n = timeout_at(deadline, input.read(&mut buf))
                .await
                .ok_or("no handshake within 10 s")?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!(
                    "closed after {} bytes, before the handshake ended",
                    dec.pending()
                ));
            }
            dec.push(&buf[..n]);
        };
        c.seeder
            .message(conn, Dir::In, "handshake", None, &hs.encode());
        if hs.info_hash != seeder.content.info_hash {
            return Err(format!(
                "info_hash {} is not this torrent's",
                hex(&hs.info_hash)
            ));
        }
        c.open().await?;
        let mut keep_alive = Instant::now() + KEEP_ALIVE;
        let mut serve_at = None;
        loop {
            while c.queue.len() < MAX_QUEUE
                && let Some((msg, _)) = dec.message().map_err(|e| format!("bad message: {e}"))?
            {
                c.received(msg).await?;
            }
            let room = c.queue.len() < MAX_QUEUE;
            // The next block is due `slow` after the previous one (or after
            // the request), however many messages arrive meanwhile.
            serve_at = match c.queue.is_empty() || c.choked {
                true => None,
                false => serve_at
                    .or_else(|| Some(Instant::now() + seeder.behaviour.slow.unwrap_or_default())),
            };
            tokio::select! {
                biased;
                r = timeout(IDLE, input.read(&mut buf)), if room => {
                    let n = r.map_err(|_| "idle for 120 s".to_string())?.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Ok(());
                    }
                    dec.push(&buf[..n]);
                }
                _ = sleep_until(serve_at.unwrap_or(keep_alive)), if serve_at.is_some() => {
                    serve_at = None;
                    c.serve_one().await?;
                }
                _ = sleep_until(keep_alive) => {
                    c.send(&Message::KeepAlive).await?;
                    keep_alive = Instant::now() + KEEP_ALIVE;
                }
            }
        }
    }

    /// Sends the handshake, the bitfield and, unless told to wait for
    /// interest, an unchoke.
    async fn open(&mut self) -> Result<(), String> {
        let s = self.seeder;
        let hs = Handshake {
            reserved: [0; 8],
            info_hash: s.content.info_hash,
            peer_id: s.peer_id,
        };
        self.out
            .write_all(&hs.encode())
            .await
            .map_err(|e| e.to_string())?;
        s.message(self.conn, Dir::Out, "handshake", None, &hs.encode());
        let bits = s.behaviour.bitfield(s.content.pieces());
        if bits.iter().any(|&b| b != 0) {
            self.send(&Message::Bitfield(bits)).await?;
        }
        if !s.behaviour.choke_until_interested {
            self.choked = false;
            self.send(&Message::Unchoke).await?;
        }
        Ok(())
    }

    /// Acts on one message from the other side.
    async fn received(&mut self, msg: Message) -> Result<(), String> {
        let raw = msg.to_bytes();
        self.seeder
            .message(self.conn, Dir::In, msg.name(), block_of(&msg), &raw);
        match msg {
            Message::Interested if self.choked => {
                self.choked = false;
                self.send(&Message::Unchoke).await?;
            }
            Message::Request {
                index,
                begin,
                length,
            } => self.request(index, begin, length),
            Message::Cancel {
                index,
                begin,
                length,
            } => self.queue.retain(|&q| q != (index, begin, length)),
            _ => {}
        }
        Ok(())
    }

    /// Queues a valid request; records and drops any other.
    fn request(&mut self, index: u32, begin: u32, length: u32) {
        let s = self.seeder;
        let fault = if self.choked {
            Some(("request-while-choked", "the peer is choked".to_string()))
        } else if length == 0 || length > BLOCK_MAX {
            Some((
                "bad-request-length",
                format!("length {length}, expected 1 to {BLOCK_MAX}"),
            ))
        } else if index >= s.content.pieces()
            || !(s.behaviour.has(index) || s.behaviour.gains[..self.gained].contains(&index))
        {
            Some((
                "request-missing-piece",
                format!("piece {index} is not one this peer has"),
            ))
        } else if begin as u64 + length as u64 > s.content.piece_len(index) as u64 {
            Some((
                "request-past-piece-end",
                format!(
                    "begin {begin} + length {length} past the piece's {} bytes",
                    s.content.piece_len(index)
                ),
            ))
        } else {
            None
        };
        match fault {
            Some((kind, why)) => s.deviation(
                self.conn,
                kind,
                format!("request {index}/{begin}/{length} not served: {why}"),
            ),
            None => self.queue.push_back((index, begin, length)),
        }
    }

    /// Sends the oldest queued block (or, for the disconnecting peer, half of it).
    async fn serve_one(&mut self) -> Result<(), String> {
        let Some((index, begin, length)) = self.queue.pop_front() else {
            return Ok(());
        };
        let s = self.seeder;
        let start = index as usize * s.content.piece_length as usize + begin as usize;
        let mut data = s.content.data[start..start + length as usize].to_vec();
        if let Some(&(_, at)) = s
            .behaviour
            .corrupt
            .iter()
            .find(|(piece, at)| *piece == index && (begin..begin + length).contains(at))
        {
            data[(at - begin) as usize] ^= 0xff;
            s.deviation(
                self.conn,
                "corrupted-on-purpose",
                format!("piece {index} byte {at} sent flipped"),
            );
        }
        let msg = Message::Piece { index, begin, data };
        if s.behaviour.disconnect_mid_piece.contains(&index) {
            let raw = msg.to_bytes();
            let half = &raw[..raw.len() / 2];
            self.out.write_all(half).await.map_err(|e| e.to_string())?;
            s.message(
                self.conn,
                Dir::Out,
                "piece (cut)",
                Some((index, begin, length)),
                half,
            );
            return Err(format!(
                "disconnected on purpose in the middle of piece {index}"
            ));
        }
        self.send_split(&msg).await?;
        self.served += 1;
        let gains = &s.behaviour.gains;
        if self.served.is_multiple_of(GAIN_EVERY) && self.gained < gains.len() {
            self.gained += 1;
            self.send(&Message::Have(gains[self.gained - 1])).await?;
        }
        Ok(())
    }

    /// Sends a message in two writes, [`SPLIT_PAUSE`] apart, its first
    /// [`SPLIT_AT`] bytes first: a reader must gather a message whatever
    /// one `recv` returns, as it must over any real network.
    async fn send_split(&mut self, msg: &Message) -> Result<(), String> {
        let raw = msg.to_bytes();
        let (head, tail) = raw.split_at(raw.len().min(SPLIT_AT));
        self.out.write_all(head).await.map_err(|e| e.to_string())?;
        if !tail.is_empty() {
            tokio::time::sleep(SPLIT_PAUSE).await;
            self.out.write_all(tail).await.map_err(|e| e.to_string())?;
        }
        self.seeder
            .message(self.conn, Dir::Out, msg.name(), block_of(msg), &raw);
        Ok(())
    }

    async fn send(&mut self, msg: &Message) -> Result<(), String> {
        let raw = msg.to_bytes();
        self.out.write_all(&raw).await.map_err(|e| e.to_string())?;
        self.seeder
            .message(self.conn, Dir::Out, msg.name(), block_of(msg), &raw);
        Ok(())
    }
}

/// Index, begin and length of a message that names a block.
fn block_of(msg: &Message) -> Option<(u32, u32, u32)> {
    match msg {
        Message::Have(i) => Some((*i, 0, 0)),
        Message::Request {
            index,
            begin,
            length,
        }
        | Message::Cancel {
            index,
            begin,
            length,
        } => Some((*index, *begin, *length)),
        Message::Piece { index, begin, data } => Some((*index, *begin, data.len() as u32)),
        _ => None,
    }
}

async fn timeout_at<F: std::future::Future>(at: Instant, f: F) -> Option<F::Output> {
    tokio::time::timeout_at(at, f).await.ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One recorded message for people: `conn 1 -> request 3/0/16384` (`->`
/// sent by the other side, `<-` by the reference peer).
pub fn message_line(conn: u32, dir: Dir, name: &str, block: Option<(u32, u32, u32)>) -> String {
    let arrow = if dir == Dir::In { "->" } else { "<-" };
    match (name, block) {
        ("have", Some((i, _, _))) => format!("conn {conn} {arrow} have {i}"),
        (_, Some((i, b, l))) => format!("conn {conn} {arrow} {name} {i}/{b}/{l}"),
        _ => format!("conn {conn} {arrow} {name}"),
    }
}

/// What peer `server` exchanged, connection by connection, a line per
/// message, for transcripts: `conn 1 -> request 3/0/16384` (`->` sent by
/// the other side, `<-` by the peer).
pub fn transcript(server: &str, trace: &crate::trace::Trace) -> Vec<String> {
    let mut lines: Vec<(u32, String)> = Vec::new();
    for e in &trace.events {
        match &e.kind {
            EventKind::PeerMessage {
                server: s,
                conn,
                dir,
                name,
                block,
                ..
            } if s == server => lines.push((*conn, message_line(*conn, *dir, name, *block))),
            EventKind::Deviation {
                server: s,
                conn,
                kind,
                detail,
            } if s == server => lines.push((*conn, format!("conn {conn} !! {kind}: {detail}"))),
            _ => {}
        }
    }
    // Connections one after another (they interleave differently run to run).
    lines.sort_by_key(|(conn, _)| *conn);
    lines.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests;
