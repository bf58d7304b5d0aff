//! The tracker over UDP (BEP 15): connect, announce, scrape and error.
//!
//! A client first connects (a 16-byte request with the protocol's magic) and
//! gets a connection id; announces and scrapes must carry it. The id is the
//! first 8 bytes of SHA-1(secret, client address), so it needs no state and
//! a client cannot forge another address's; the secret comes from the seed.
//! A datagram that does not read gets an error (action 3) when its
//! transaction id can be read, else nothing.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;

use super::{Announce, AnnounceEvent, AnnounceRecord, DEFAULT_NUMWANT, MAX_NUMWANT, Tracker};
use crate::torrent::{InfoHash, sha1};

/// BEP 15's magic constant in a connect request.
pub const PROTOCOL_ID: u64 = 0x41727101980;
/// Info hashes in one scrape at most (a reply of 8 + 12·74 bytes).
pub const MAX_SCRAPE: usize = 74;

/// The connection id a client at `from` is given.
pub fn connection_id(secret: u64, from: SocketAddr) -> u64 {
    let mut input = secret.to_be_bytes().to_vec();
    input.extend(from.to_string().as_bytes());
    u64::from_be_bytes(sha1(&input)[..8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn error_reply(tid: u32, message: &str) -> Vec<u8> {
    let mut r = 3u32.to_be_bytes().to_vec();
    r.extend(tid.to_be_bytes());
    r.extend(message.as_bytes());
    r
}

/// Reads an announce request (98 bytes at least).
pub fn parse_announce(b: &[u8]) -> Result<Announce, String> {
    if b.len() < 98 {
        return Err(format!("announce of {} bytes, not 98", b.len()));
    }
    let event = match u32_at(b, 80) {
        0 => None,
        1 => Some(AnnounceEvent::Completed),
        2 => Some(AnnounceEvent::Started),
        3 => Some(AnnounceEvent::Stopped),
        n => return Err(format!("invalid event {n}")),
    };
    let port = u16::from_be_bytes([b[96], b[97]]);
    if port == 0 {
        return Err("invalid port".into());
    }
    let numwant = u32_at(b, 92) as i32;
    Ok(Announce {
        info_hash: InfoHash(b[16..36].try_into().expect("20 bytes")),
        peer_id: b[36..56].try_into().expect("20 bytes"),
        downloaded: u64_at(b, 56),
        left: u64_at(b, 64),
        uploaded: u64_at(b, 72),
        event,
        port,
        compact: true,
        numwant: if numwant < 0 {
            DEFAULT_NUMWANT
        } else {
            (numwant as usize).min(MAX_NUMWANT)
        },
    })
}

/// The reply to one datagram from `from`, and the announce to record when it
/// was one.
pub fn handle(
    tracker: &Mutex<Tracker>,
    secret: u64,
    from: SocketAddr,
    b: &[u8],
) -> (Option<Vec<u8>>, Option<AnnounceRecord>) {
    if b.len() < 16 {
        return (None, None);
    }
    let (cid, action, tid) = (u64_at(b, 0), u32_at(b, 8), u32_at(b, 12));
    if action == 0 {
        if cid != PROTOCOL_ID {
            return (Some(error_reply(tid, "bad protocol id")), None);
        }
        let mut r = 0u32.to_be_bytes().to_vec();
        r.extend(tid.to_be_bytes());
        r.extend(connection_id(secret, from).to_be_bytes());
        return (Some(r), None);
    }
    if cid != connection_id(secret, from) {
        return (Some(error_reply(tid, "unknown connection id")), None);
    }
    let mut t = tracker.lock().unwrap_or_else(|p| p.into_inner());
    match action {
        1 => announce(&mut t, from, tid, b),
        2 => (Some(scrape(&t, tid, b)), None),
        n => (Some(error_reply(tid, &format!("unknown action {n}"))), None),
    }
}

fn announce(
    t: &mut Tracker,
    from: SocketAddr,
    tid: u32,
    b: &[u8],
) -> (Option<Vec<u8>>, Option<AnnounceRecord>) {
    let announce = parse_announce(b);
    let outcome = match (&announce, from.ip()) {
        (Err(e), _) => Err(e.clone()),
        (Ok(a), IpAddr::V4(ip)) => t.update(a, ip, Instant::now()),
        (Ok(_), IpAddr::V6(_)) => Err("IPv6 peers are not tracked".into()),
    };
    let reply = match &outcome {
        Ok(view) => {
            let mut r = 1u32.to_be_bytes().to_vec();
            r.extend(tid.to_be_bytes());
            r.extend(t.interval().to_be_bytes());
            r.extend((view.incomplete as u32).to_be_bytes());
            r.extend((view.complete as u32).to_be_bytes());
            for (_, ip, port) in &view.peers {
                r.extend(ip.octets());
                r.extend(port.to_be_bytes());
            }
            r
        }
        Err(e) => error_reply(tid, e),
    };
    let outcome = outcome.map(|v| v.peers.len());
    (
        Some(reply),
        Some(AnnounceRecord {
            from,
            target: String::new(),
            announce,
            outcome,
        }),
    )
}

fn scrape(t: &Tracker, tid: u32, b: &[u8]) -> Vec<u8> {
    let hashes = &b[16..];
    if hashes.is_empty() || !hashes.len().is_multiple_of(20) || hashes.len() / 20 > MAX_SCRAPE {
        return error_reply(tid, "scrape needs 1 to 74 info hashes");
    }
    let mut r = 2u32.to_be_bytes().to_vec();
    r.extend(tid.to_be_bytes());
    for h in hashes.chunks_exact(20) {
        let (seeders, done, leechers) = t
            .scrape(&InfoHash(h.try_into().expect("20 bytes")))
            .unwrap_or((0, 0, 0));
        r.extend((seeders as u32).to_be_bytes());
        r.extend((done as u32).to_be_bytes());
        r.extend((leechers as u32).to_be_bytes());
    }
    r
}

/// Serves datagrams on `socket` until the task is dropped; each announce is
/// handed to `record` once answered.
pub async fn serve(
    socket: UdpSocket,
    tracker: Arc<Mutex<Tracker>>,
    secret: u64,
    record: Arc<dyn Fn(AnnounceRecord) + Send + Sync>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        let (reply, rec) = handle(&tracker, secret, from, &buf[..n]);
        if let Some(reply) = reply {
            let _ = socket.send_to(&reply, from).await;
        }
        if let Some(rec) = rec {
            record(rec);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(t: &Mutex<Tracker>, from: SocketAddr) -> u64 {
        let mut req = PROTOCOL_ID.to_be_bytes().to_vec();
        req.extend(0u32.to_be_bytes());
        req.extend(7u32.to_be_bytes());
        let (reply, _) = handle(t, 1, from, &req);
        let reply = reply.unwrap();
        assert_eq!(&reply[..8], &[0, 0, 0, 0, 0, 0, 0, 7]);
        u64_at(&reply, 8)
    }

    fn announce_req(cid: u64, hash: [u8; 20], id: u8, left: u64, event: u32, port: u16) -> Vec<u8> {
        let mut r = cid.to_be_bytes().to_vec();
        r.extend(1u32.to_be_bytes());
        r.extend(9u32.to_be_bytes());
        r.extend(hash);
        r.extend([id; 20]);
        r.extend(0u64.to_be_bytes());
        r.extend(left.to_be_bytes());
        r.extend(0u64.to_be_bytes());
        r.extend(event.to_be_bytes());
        r.extend([0; 8]);
        r.extend((-1i32).to_be_bytes());
        r.extend(port.to_be_bytes());
        r
    }

    #[test]
    fn connect_announce_scrape() {
        let hash = [5u8; 20];
        let t = Mutex::new(Tracker::new([InfoHash(hash)], 30));
        let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.3:4001".parse().unwrap();
        let (ca, cb) = (connect(&t, a), connect(&t, b));
        assert_ne!(ca, cb);
        let (r, rec) = handle(&t, 1, a, &announce_req(ca, hash, 1, 0, 2, 6881));
        assert_eq!(
            r.unwrap(),
            [&[0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 1][..]].concat()
        );
        assert_eq!(rec.unwrap().outcome, Ok(0));
        let (r, _) = handle(&t, 1, b, &announce_req(cb, hash, 2, 10, 2, 6882));
        assert_eq!(
            &r.unwrap()[8..],
            &[
                0, 0, 0, 30, 0, 0, 0, 1, 0, 0, 0, 1, 127, 0, 0, 2, 0x1a, 0xe1
            ]
        );
        handle(&t, 1, b, &announce_req(cb, hash, 2, 0, 1, 6882));
        let mut s = cb.to_be_bytes().to_vec();
        s.extend(2u32.to_be_bytes());
        s.extend(4u32.to_be_bytes());
        s.extend(hash);
        let (r, _) = handle(&t, 1, b, &s);
        assert_eq!(
            r.unwrap(),
            [0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn errors_carry_the_transaction_id() {
        let t = Mutex::new(Tracker::new([], 30));
        let a: SocketAddr = "127.0.0.2:4000".parse().unwrap();
        let (r, _) = handle(&t, 1, a, &announce_req(12345, [0; 20], 1, 0, 2, 1));
        assert_eq!(r.unwrap(), error_reply(9, "unknown connection id"));
        let cid = connect(&t, a);
        let (r, rec) = handle(&t, 1, a, &announce_req(cid, [0; 20], 1, 0, 2, 1));
        assert_eq!(r.unwrap(), error_reply(9, "unknown torrent"));
        assert_eq!(rec.unwrap().outcome, Err("unknown torrent".into()));
        let (r, _) = handle(&t, 1, a, &announce_req(cid, [0; 20], 1, 0, 2, 1)[..50]);
        assert_eq!(r.unwrap(), error_reply(9, "announce of 50 bytes, not 98"));
        assert_eq!(handle(&t, 1, a, b"short").0, None);
    }
}
