//! The `udp-tracker` check (BEP 15): connect, announce, scrape, and an
//! error for a connection id the tracker never gave.
//!
//! Each request is retransmitted when no reply with its transaction id
//! comes: after `base`, then `2·base`, `4·base`… ([`Retry`]); BEP 15 says
//! 15 s, a grader uses a much shorter base on loopback. Listing the
//! requester itself is left to the HTTP `peer-list` check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

use super::{FakePeer, Finding, Judgement, fake_peers, in_netns, quote};
use crate::sandbox::NetNs;
use crate::torrent::InfoHash;

/// BEP 15's magic constant in a connect request.
pub const PROTOCOL_ID: u64 = 0x41727101980;

/// How often and how patiently a request is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Wait for the first reply; doubled at each retransmission.
    pub base: Duration,
    /// Sends at most, the first included.
    pub tries: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            base: Duration::from_millis(250),
            tries: 4,
        }
    }
}

/// One request and its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Who sent it and what it is: `A connect`…
    pub what: String,
    /// The request.
    pub sent: Vec<u8>,
    /// The reply whose transaction id matched, if one came.
    pub reply: Option<Vec<u8>>,
    /// Times the request was sent.
    pub tries: u32,
    /// Datagrams that came back without the request's transaction id.
    pub stray: Vec<Vec<u8>>,
    /// From the first send to the reply (or giving up).
    pub elapsed: Duration,
}

impl Datagram {
    /// The request and the reply in hex, for evidence.
    pub fn evidence(&self) -> String {
        let reply = match &self.reply {
            Some(r) => format!("reply {}", crate::torrent::hex(r)),
            None => format!("no reply after {} tries", self.tries),
        };
        format!(
            "{}: sent {} -> {reply}",
            self.what,
            crate::torrent::hex(&self.sent)
        )
    }
}

/// The datagrams of the `udp-tracker` check and its verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpOutcome {
    /// Every request, in order.
    pub datagrams: Vec<Datagram>,
    /// The verdict.
    pub judgement: Judgement,
}

/// A fake peer's socket, bound to its own loopback address when it can be.
struct Client {
    peer: FakePeer,
    socket: UdpSocket,
    retry: Retry,
    tid: u32,
}

impl Client {
    async fn new(
        peer: FakePeer,
        tracker: SocketAddr,
        netns: Option<&NetNs>,
        retry: Retry,
    ) -> std::io::Result<Client> {
        let local = SocketAddr::V4(SocketAddrV4::new(peer.ip, 0));
        let bind = move || -> std::io::Result<std::net::UdpSocket> {
            let s = std::net::UdpSocket::bind(local)
                .or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0"))?;
            s.connect(tracker)?;
            s.set_nonblocking(true)?;
            Ok(s)
        };
        let socket = UdpSocket::from_std(in_netns(netns, bind).await?)?;
        let tid = u32::from_be_bytes([peer.peer_id[10], peer.peer_id[11], peer.peer_id[12], 1]);
        Ok(Client {
            peer,
            socket,
            retry,
            tid,
        })
    }

    fn ip(&self) -> Ipv4Addr {
        match self.socket.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V4(ip)) if !ip.is_unspecified() => ip,
            _ => Ipv4Addr::LOCALHOST,
        }
    }

    fn next_tid(&mut self) -> u32 {
        self.tid = self.tid.wrapping_add(1);
        self.tid
    }

    /// Sends `sent` (transaction id at bytes 12..16) until a reply with
    /// that id comes or the tries run out.
    async fn ask(&self, what: String, sent: Vec<u8>) -> Datagram {
        let start = Instant::now();
        let tid = &sent[12..16];
        let mut wait = self.retry.base;
        let mut buf = vec![0u8; 2048];
        let mut stray = Vec::new();
        for n in 1..=self.retry.tries.max(1) {
            let _ = self.socket.send(&sent).await;
            let until = Instant::now() + wait;
            while let Ok(Ok(len)) = timeout_at(until, self.socket.recv(&mut buf)).await {
                if len >= 8 && &buf[4..8] == tid {
                    let reply = Some(buf[..len].to_vec());
                    let elapsed = start.elapsed();
                    return Datagram {
                        what,
                        sent,
                        reply,
                        tries: n,
                        stray,
                        elapsed,
                    };
                }
                stray.push(buf[..len].to_vec());
            }
            wait *= 2;
        }
        let tries = self.retry.tries.max(1);
        Datagram {
            what,
            sent,
            reply: None,
            tries,
            stray,
            elapsed: start.elapsed(),
        }
    }

    fn connect_request(&mut self) -> Vec<u8> {
        let mut r = PROTOCOL_ID.to_be_bytes().to_vec();
        r.extend(0u32.to_be_bytes());
        r.extend(self.next_tid().to_be_bytes());
        r
    }

    fn announce_request(&mut self, cid: u64, hash: &InfoHash, left: u64) -> Vec<u8> {
        let mut r = cid.to_be_bytes().to_vec();
        r.extend(1u32.to_be_bytes());
        r.extend(self.next_tid().to_be_bytes());
        r.extend(hash.0);
        r.extend(self.peer.peer_id);
        r.extend(0u64.to_be_bytes()); // downloaded
        r.extend(left.to_be_bytes());
        r.extend(0u64.to_be_bytes()); // uploaded
        r.extend(2u32.to_be_bytes()); // started
        r.extend(0u32.to_be_bytes()); // IP: the sender's
        r.extend(self.tid.to_be_bytes()); // key
        r.extend((-1i32).to_be_bytes()); // numwant: default
        r.extend(self.peer.port.to_be_bytes());
        r
    }

    fn scrape_request(&mut self, cid: u64, hash: &InfoHash) -> Vec<u8> {
        let mut r = cid.to_be_bytes().to_vec();
        r.extend(2u32.to_be_bytes());
        r.extend(self.next_tid().to_be_bytes());
        r.extend(hash.0);
        r
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The reply's action, checked against `want` and the request's
/// transaction id; an error reply's message is quoted.
fn expect_action(d: &Datagram, want: u32, min_len: usize) -> Result<&[u8], Finding> {
    let fail = |m: String| Finding::new(m, vec![d.evidence()]);
    let Some(r) = d.reply.as_deref() else {
        if let Some(other) = d.stray.first() {
            return Err(fail(format!(
                "{}: {} replies came, none with the request's transaction id (bytes 12-15 of the request, {}); the first was {}. Copy the transaction id into bytes 4-7 of the reply.",
                d.what,
                d.stray.len(),
                crate::torrent::hex(&d.sent[12..16]),
                crate::torrent::hex(other)
            )));
        }
        return Err(fail(format!(
            "{}: no reply with the request's transaction id after {} tries ({:?}). Echo the transaction id (bytes 12-15 of the request) at bytes 4-7 of the reply.",
            d.what, d.tries, d.elapsed
        )));
    };
    let action = (r.len() >= 4).then(|| u32_at(r, 0));
    if action == Some(3) && want != 3 {
        return Err(fail(format!(
            "{}: the tracker answered with an error (action 3): {}",
            d.what,
            quote(&r[8..], 80)
        )));
    }
    if action != Some(want) || r.len() < min_len {
        return Err(fail(format!(
            "{}: the reply is {} bytes with action {}; BEP 15 wants action {want} and at least {min_len} bytes",
            d.what,
            r.len(),
            action.map_or("missing".into(), |a| a.to_string())
        )));
    }
    Ok(r)
}

/// `udp-tracker`: over BEP 15 at `tracker` (inside `netns` when given), A
/// connects and announces as a leecher, B connects and announces as a
/// seeder and is given A, A scrapes (1 seeder, 1 leecher), and an announce
/// with a made-up connection id gets an error (action 3).
pub async fn udp_tracker(
    tracker: SocketAddr,
    netns: Option<&NetNs>,
    hash: InfoHash,
    seed: u64,
    retry: Retry,
) -> UdpOutcome {
    let peers = fake_peers(seed, 6, 2);
    let mut datagrams = Vec::new();
    let at = (tracker, netns);
    let judgement = steps(at, &hash, peers, retry, &mut datagrams).await;
    UdpOutcome {
        datagrams,
        judgement,
    }
}

async fn steps(
    (tracker, netns): (SocketAddr, Option<&NetNs>),
    hash: &InfoHash,
    peers: Vec<FakePeer>,
    retry: Retry,
    log: &mut Vec<Datagram>,
) -> Judgement {
    let mut it = peers.into_iter();
    let io = |e: std::io::Error| Finding::new(format!("could not open a UDP socket: {e}"), vec![]);
    let mut a = Client::new(it.next().expect("two peers"), tracker, netns, retry)
        .await
        .map_err(io)?;
    let mut b = Client::new(it.next().expect("two peers"), tracker, netns, retry)
        .await
        .map_err(io)?;
    let mut evidence = Vec::new();
    let cid_a = connect(&mut a, log).await?;
    let req = a.announce_request(cid_a, hash, 1000);
    log.push(a.ask("A announce (started, left=1000)".into(), req).await);
    evidence.push(announce_reply(log.last().expect("pushed"))?.text);
    let cid_b = connect(&mut b, log).await?;
    let req = b.announce_request(cid_b, hash, 0);
    log.push(b.ask("B announce (started, left=0)".into(), req).await);
    evidence.push(b_sees_a(log.last().expect("pushed"), &a)?);
    let req = a.scrape_request(cid_a, hash);
    log.push(a.ask("A scrape".into(), req).await);
    evidence.push(scrape_reply(log.last().expect("pushed"))?);
    let bogus = cid_a ^ 0x5a5a_5a5a_5a5a_5a5a;
    let req = a.announce_request(bogus, hash, 1000);
    log.push(
        a.ask("A announce with a connection id never given".into(), req)
            .await,
    );
    evidence.push(bad_connection_id(log.last().expect("pushed"))?);
    Ok(evidence)
}

/// Connects; the connection id.
async fn connect(c: &mut Client, log: &mut Vec<Datagram>) -> Result<u64, Finding> {
    let req = c.connect_request();
    log.push(c.ask(format!("{} connect", c.peer.name), req).await);
    let r = expect_action(log.last().expect("pushed"), 0, 16)?;
    Ok(u64::from_be_bytes(r[8..16].try_into().expect("8 bytes")))
}

/// An announce reply as read.
struct Announced {
    /// Interval and counts, for evidence.
    text: String,
    leechers: u32,
    seeders: u32,
    peers: Vec<(Ipv4Addr, u16)>,
}

/// Interval, leechers, seeders and peers of an announce reply.
fn announce_reply(d: &Datagram) -> Result<Announced, Finding> {
    let r = expect_action(d, 1, 20)?;
    let fail = |m: String| Finding::new(m, vec![d.evidence()]);
    let interval = u32_at(r, 8);
    if interval == 0 {
        return Err(fail(format!(
            "{}: interval is 0; it must be a number of seconds > 0",
            d.what
        )));
    }
    if !(r.len() - 20).is_multiple_of(6) {
        return Err(fail(format!(
            "{}: {} bytes of peers after the 20-byte header, not a multiple of 6",
            d.what,
            r.len() - 20
        )));
    }
    let peers = r[20..]
        .chunks_exact(6)
        .map(|e| {
            (
                Ipv4Addr::new(e[0], e[1], e[2], e[3]),
                u16::from_be_bytes([e[4], e[5]]),
            )
        })
        .collect();
    let (leechers, seeders) = (u32_at(r, 12), u32_at(r, 16));
    let text = format!(
        "{}: interval {interval}, leechers {leechers}, seeders {seeders}",
        d.what
    );
    Ok(Announced {
        text,
        leechers,
        seeders,
        peers,
    })
}

/// B's announce lists A and counts one leecher and one seeder.
fn b_sees_a(d: &Datagram, a: &Client) -> Result<String, Finding> {
    let Announced {
        text,
        leechers,
        seeders,
        peers,
    } = announce_reply(d)?;
    let want = (a.ip(), a.peer.port);
    let fail = |m: String| Finding::new(m, vec![d.evidence()]);
    if !peers.contains(&want) {
        let listed: Vec<String> = peers.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        return Err(fail(format!(
            "{}: A ({}:{}) is not among the peers ({}): list each peer as 4 address bytes and 2 port bytes, big-endian",
            d.what,
            want.0,
            want.1,
            if listed.is_empty() {
                "none".into()
            } else {
                listed.join(", ")
            }
        )));
    }
    if (leechers, seeders) != (1, 1) {
        return Err(fail(format!(
            "{}: leechers {leechers} and seeders {seeders}, but the swarm has 1 leecher (A, left=1000) and 1 seeder (B, left=0); the reply holds leechers at bytes 12-15, then seeders at 16-19",
            d.what
        )));
    }
    Ok(text)
}

/// A scrape of the torrent: 1 seeder, 1 leecher.
fn scrape_reply(d: &Datagram) -> Result<String, Finding> {
    let r = expect_action(d, 2, 20)?;
    let (seeders, completed, leechers) = (u32_at(r, 8), u32_at(r, 12), u32_at(r, 16));
    if (seeders, leechers) != (1, 1) {
        return Err(Finding::new(
            format!(
                "{}: seeders {seeders} and leechers {leechers}, but the swarm has 1 of each; a scrape reply holds, per info hash, seeders, completed, leechers (4 bytes each)",
                d.what
            ),
            vec![d.evidence()],
        ));
    }
    Ok(format!(
        "{}: seeders {seeders}, completed {completed}, leechers {leechers}",
        d.what
    ))
}

/// A made-up connection id gets an error.
fn bad_connection_id(d: &Datagram) -> Result<String, Finding> {
    let fail = |m: String| Finding::new(m, vec![d.evidence()]);
    match d.reply.as_deref() {
        Some(r) if r.len() >= 8 && u32_at(r, 0) == 3 => {
            Ok(format!("{}: error {}", d.what, quote(&r[8..], 80)))
        }
        Some(r) => Err(fail(format!(
            "{}: the tracker answered with action {} instead of an error: check the connection id of every announce and scrape against the ones you gave out, and answer action 3 with a message",
            d.what,
            if r.len() >= 4 {
                u32_at(r, 0).to_string()
            } else {
                "?".into()
            }
        ))),
        None => Err(fail(format!(
            "{}: no reply after {} tries; answer an unknown connection id with an error (action 3, the transaction id, a message)",
            d.what, d.tries
        ))),
    }
}
