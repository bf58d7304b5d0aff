//! A crowd of reference leechers downloading from one seeder at once, for
//! judging its choking (tit-for-tat, BEP 3 "Choking and optimistic
//! unchoking"): some leechers read as fast as they can, others slowly, and
//! every one records when it was choked and unchoked and what it got.
//!
//! A seeder's tit-for-tat unchokes the peers it uploads to fastest: the fast
//! leechers, whose rate is set by how fast they ask (the next block a few
//! milliseconds after the last), not by the machine. The slow ones wait
//! much longer between blocks (250 ms by default): dozens of times slower,
//! only an optimistic unchoke serves them. Every leecher keeps asking, round
//! the torrent's blocks, until the crowd's time is up.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::leecher::LeechPlan;
use super::wire::{BLOCK_MAX, Decoder, Handshake, Limits, Message};

/// Bytes read at once.
const READ_BUF: usize = 64 * 1024;
/// The span over which received bytes are added up.
pub const BUCKET: Duration = Duration::from_millis(100);
/// A fast leecher's wait after each block: a few MB/s each, many times a
/// slow one's, without keeping the machine busy.
const FAST_GAP: Duration = Duration::from_millis(4);
/// Buckets kept per leecher (10 minutes).
const MAX_BUCKETS: usize = 6000;
/// Chokes and unchokes kept per leecher.
pub const MAX_CHOKES: usize = 1000;

/// How one leecher of the crowd asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Whether it is one of the fast ones.
    pub fast: bool,
    /// Requests kept in flight while unchoked.
    pub pipeline: usize,
    /// The wait after each block before the next request.
    pub gap: Duration,
    /// When it connects, after the crowd starts.
    pub join: Duration,
}

/// The crowd: the torrent (and the peer id prefix), each leecher's pace,
/// and how long they all download.
#[derive(Clone, Debug)]
pub struct CrowdPlan {
    /// The torrent, as a leech probe sees it.
    pub torrent: LeechPlan,
    /// One pace per leecher, numbered from 1 in this order.
    pub paces: Vec<Pace>,
    /// How long the crowd downloads.
    pub duration: Duration,
    /// The limit on connecting and on the handshake.
    pub wait: Duration,
}

/// What one leecher of the crowd saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Its number, from 1.
    pub number: u8,
    /// Its pace.
    pub fast: bool,
    /// When it connected and shook hands, since the crowd started; `None`
    /// when it never did.
    pub joined: Option<Duration>,
    /// Each choke (`false`) and unchoke (`true`), with when it came (at
    /// most [`MAX_CHOKES`]).
    pub chokes: Vec<(Duration, bool)>,
    /// Bytes of blocks received in each [`BUCKET`] since the crowd started.
    pub received: Vec<u64>,
    /// Blocks received in all.
    pub blocks: u64,
    /// How it ended, for people (`time up` when it ran to the end).
    pub end: String,
}

impl Member {
    /// Whether it was unchoked at `t`.
    pub fn unchoked_at(&self, t: Duration) -> bool {
        self.chokes
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .is_some_and(|(_, unchoked)| *unchoked)
    }

    /// Bytes received in `[from, to)`, to a [`BUCKET`].
    pub fn bytes_between(&self, from: Duration, to: Duration) -> u64 {
        let slot = |t: Duration| (t.as_millis() / BUCKET.as_millis()) as usize;
        self.received
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= slot(from) && *i < slot(to))
            .map(|(_, n)| n)
            .sum()
    }
}

/// What the crowd saw, member by member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrowdReport {
    /// The leechers, in the plan's order.
    pub members: Vec<Member>,
    /// How long the crowd downloaded.
    pub duration: Duration,
}

/// Runs the crowd against the seeder: `connect` opens each leecher's
/// connection (from inside the run's network, say).
pub async fn crowd<F, Fut>(plan: &CrowdPlan, connect: F) -> CrowdReport
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<TcpStream>>,
{
    let start = Instant::now();
    let stop = start + plan.duration;
    let sessions = plan.paces.iter().enumerate().map(|(i, pace)| {
        let number = i as u8 + 1;
        let connect = &connect;
        async move {
            tokio::time::sleep_until(start + pace.join).await;
            let connecting = connect();
            let mut member = Member {
                number,
                fast: pace.fast,
                ..Member::default()
            };
            let until = (Instant::now() + plan.wait).min(stop);
            member.end = match timeout_at(until, connecting).await {
                Ok(Ok(stream)) => {
                    let mut s = Session::new(plan, number, *pace, stream, (start, stop));
                    let end = s.run(&mut member).await;
                    end.unwrap_or_else(|e| e)
                }
                Ok(Err(e)) => format!("could not connect: {e}"),
                Err(_) => "could not connect in time".into(),
            };
            member
        }
    });
    let members = futures_join_all(sessions).await;
    CrowdReport {
        members,
        duration: plan.duration,
    }
}

/// Awaits every future, keeping their order.
async fn futures_join_all<T>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T>>,
) -> Vec<T> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<T>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// One leecher's connection.
struct Session<'a> {
    plan: &'a CrowdPlan,
    number: u8,
    pace: Pace,
    stream: TcpStream,
    start: Instant,
    stop: Instant,
    dec: Decoder,
    buf: Vec<u8>,
    /// Every block of the torrent: (index, begin, length).
    blocks: Vec<(u32, u32, u32)>,
    /// The next block to ask for, counted round the torrent.
    cursor: usize,
    in_flight: usize,
    unchoked: bool,
    /// No request before this (the slow pace's gap).
    next_ask: Instant,
}

impl<'a> Session<'a> {
    fn new(
        plan: &'a CrowdPlan,
        number: u8,
        pace: Pace,
        stream: TcpStream,
        (start, stop): (Instant, Instant),
    ) -> Self {
        let _ = stream.set_nodelay(true);
        let t = &plan.torrent;
        let blocks = (0..t.piece_count())
            .flat_map(|index| {
                let len = t.piece_len(index);
                (0..len.div_ceil(BLOCK_MAX))
                    .map(move |k| (index, k * BLOCK_MAX, (len - k * BLOCK_MAX).min(BLOCK_MAX)))
            })
            .collect();
        Session {
            plan,
            number,
            pace,
            stream,
            start,
            stop,
            dec: Decoder::new(Limits::new(plan.torrent.piece_count())),
            buf: vec![0; READ_BUF],
            blocks,
            // Leechers start at different places, as real ones would.
            cursor: usize::from(number) * 7,
            in_flight: 0,
            unchoked: false,
            next_ask: start,
        }
    }

    /// Handshake, interested, then blocks until the time is up.
    async fn run(&mut self, member: &mut Member) -> Result<String, String> {
        let mut peer_id = self.plan.torrent.peer_id;
        peer_id[19] = b'a' + self.number;
        let ours = Handshake {
            reserved: [0; 8],
            info_hash: self.plan.torrent.info_hash,
            peer_id,
        };
        self.write(&ours.encode()).await?;
        let until = (Instant::now() + self.plan.wait).min(self.stop);
        loop {
            match self.dec.handshake() {
                Ok(Some(_)) => break,
                Ok(None) if self.read(until).await? => {}
                Ok(None) => return Err("no handshake came in time".into()),
                Err(e) => return Err(format!("bad handshake: {e}")),
            }
        }
        member.joined = Some(self.start.elapsed());
        self.write(&Message::Interested.to_bytes()).await?;
        loop {
            self.ask().await?;
            let msg = loop {
                match self.dec.message() {
                    Ok(Some((msg, _))) => break msg,
                    Ok(None) => {
                        // A slow leecher wakes to ask when its gap is over.
                        let wake = if self.unchoked && self.in_flight < self.pace.pipeline {
                            self.next_ask.min(self.stop)
                        } else {
                            self.stop
                        };
                        if !self.read(wake).await? {
                            if Instant::now() >= self.stop {
                                return Ok("time up".into());
                            }
                            self.ask().await?;
                        }
                    }
                    Err(e) => return Err(format!("bad message: {e}")),
                }
            };
            self.handle(msg, member);
            if Instant::now() >= self.stop {
                return Ok("time up".into());
            }
        }
    }

    /// Acts on one message.
    fn handle(&mut self, msg: Message, member: &mut Member) {
        let now = self.start.elapsed();
        match msg {
            Message::Choke if self.unchoked => {
                self.unchoked = false;
                // BEP 3: a choke drops every request in flight.
                self.in_flight = 0;
                self.next_ask = Instant::now();
                if member.chokes.len() < MAX_CHOKES {
                    member.chokes.push((now, false));
                }
            }
            Message::Unchoke if !self.unchoked => {
                self.unchoked = true;
                if member.chokes.len() < MAX_CHOKES {
                    member.chokes.push((now, true));
                }
            }
            Message::Piece { data, .. } => {
                let slot = (now.as_millis() / BUCKET.as_millis()) as usize;
                if slot < MAX_BUCKETS {
                    if member.received.len() <= slot {
                        member.received.resize(slot + 1, 0);
                    }
                    member.received[slot] += data.len() as u64;
                }
                member.blocks += 1;
                self.in_flight = self.in_flight.saturating_sub(1);
                self.next_ask = Instant::now() + self.pace.gap;
            }
            _ => {}
        }
    }

    /// Keeps the pipeline full while unchoked and the gap is over.
    async fn ask(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        while self.unchoked
            && self.in_flight < self.pace.pipeline
            && Instant::now() >= self.next_ask
        {
            let Some(&(index, begin, length)) =
                self.blocks.get(self.cursor % self.blocks.len().max(1))
            else {
                return Ok(());
            };
            self.cursor += 1;
            Message::Request {
                index,
                begin,
                length,
            }
            .encode(&mut out);
            self.in_flight += 1;
            if !self.pace.gap.is_zero() {
                self.next_ask = self.stop;
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        self.write(&out).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match timeout_at(
            self.stop.max(Instant::now() + self.plan.wait),
            self.stream.write_all(bytes),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the connection broke: {e}")),
            Err(_) => Err("a write did not go through in time".into()),
        }
    }

    /// Reads more, until `until` at most: `false` when nothing came by then.
    async fn read(&mut self, until: Instant) -> Result<bool, String> {
        match timeout_at(until, self.stream.read(&mut self.buf)).await {
            Err(_) => Ok(false),
            Ok(Err(e)) => Err(format!("the connection broke: {e}")),
            Ok(Ok(0)) => Err("the seeder closed the connection".into()),
            Ok(Ok(n)) => {
                self.dec.push(&self.buf[..n]);
                Ok(true)
            }
        }
    }
}

/// Who was unchoked at `t`, by number.
pub fn unchoked_at(members: &[Member], t: Duration) -> Vec<u8> {
    members
        .iter()
        .filter(|m| m.unchoked_at(t))
        .map(|m| m.number)
        .collect()
}

/// The paces of a crowd of `fast` fast and `slow` slow leechers, fast
/// first; the slow ones join `stagger` after the fast ones, so a peer that
/// unchokes by rate finds the fast ones already in its regular slots.
pub fn paces(fast: u8, slow: u8, gap: Duration, stagger: Duration) -> Vec<Pace> {
    let quick = Pace {
        fast: true,
        pipeline: 1,
        gap: FAST_GAP,
        join: Duration::ZERO,
    };
    let slow_pace = Pace {
        fast: false,
        pipeline: 1,
        gap,
        join: stagger,
    };
    std::iter::repeat_n(quick, fast.into())
        .chain(std::iter::repeat_n(slow_pace, slow.into()))
        .collect()
}
