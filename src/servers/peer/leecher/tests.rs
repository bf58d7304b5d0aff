//! The leecher against the project's seeder and against hand-written fake
//! seeders on loopback: downloads, faults, limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::super::{Behaviour, Content, Seeder, serve};
use super::*;

const PIECE: u32 = 32 * 1024;
const HASH: [u8; 20] = [9; 20];

fn data() -> Vec<u8> {
    (0..3 * PIECE + 100).map(|i| (i * 7 % 251) as u8).collect()
}

fn content() -> Content {
    Content {
        info_hash: HASH,
        piece_length: PIECE,
        data: data(),
    }
}

fn plan() -> LeechPlan {
    let d = data();
    LeechPlan {
        name: "leech".into(),
        conn: 1,
        info_hash: HASH,
        peer_id: *b"-NG0001-leech_______",
        piece_length: PIECE,
        total_length: d.len() as u64,
        piece_hashes: d.chunks(PIECE as usize).map(sha1).collect(),
        expected: Some(Arc::new(d)),
        pipeline: 5,
        pieces: None,
        cancel: false,
        wait: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
    }
}

/// A seeder from this crate behaving as told; its address.
async fn seeder(behaviour: Behaviour, rec: &Recorder) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = Seeder::new("seed", content(), behaviour, rec.clone());
    tokio::spawn(serve(listener, Arc::new(s)));
    addr
}

/// A fake seeder that runs `script` on its one connection.
async fn fake<F, Fut>(script: F) -> SocketAddr
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        script(s).await;
    });
    addr
}

/// Reads the leecher's handshake and answers with one for `hash`.
async fn greet(s: &mut TcpStream, hash: [u8; 20]) -> Decoder {
    let mut d = Decoder::new(Limits::new(4));
    while d.handshake().unwrap().is_none() {
        let mut b = [0u8; 256];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0);
        d.push(&b[..n]);
    }
    let hs = Handshake {
        reserved: [0; 8],
        info_hash: hash,
        peer_id: [b'f'; 20],
    };
    s.write_all(&hs.encode()).await.unwrap();
    d
}

/// The next message from the leecher; `None` once it closes.
async fn recv(s: &mut TcpStream, d: &mut Decoder) -> Option<Message> {
    loop {
        if let Some((m, _)) = d.message().unwrap() {
            return Some(m);
        }
        let mut b = [0u8; 4096];
        match s.read(&mut b).await {
            Ok(n) if n > 0 => d.push(&b[..n]),
            _ => return None,
        }
    }
}

/// Sends the messages back to back.
async fn say(s: &mut TcpStream, msgs: &[Message]) {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
}

/// The block asked for, from the data.
fn answer(index: u32, begin: u32, length: u32) -> Message {
    let start = (index * PIECE + begin) as usize;
    Message::Piece {
        index,
        begin,
        data: data()[start..start + length as usize].to_vec(),
    }
}

fn kinds(r: &LeechReport) -> Vec<&str> {
    r.deviations.iter().map(|(k, _)| k.as_str()).collect()
}

fn peer_messages(rec: &Recorder, dir: Dir, name: &str) -> usize {
    rec.snapshot()
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::PeerMessage { server, dir: d, name: n, .. } if server == "leech" && *d == dir && n == name))
        .count()
}

#[tokio::test]
async fn downloads_everything_from_a_good_seeder() {
    let rec = Recorder::new();
    let addr = seeder(Behaviour::default(), &rec).await;
    let r = leech(addr, &plan(), &rec).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    let hs = r.handshake.clone().unwrap();
    assert_eq!(r.handshake_raw, hs.encode());
    assert_eq!(hs.info_hash, HASH);
    assert_eq!(&hs.peer_id[..8], b"-NG0001-");
    let bf = r.bitfield.clone().unwrap();
    assert_eq!((bf.bits, bf.first), (vec![0xf0], true));
    assert_eq!(r.has, [0, 1, 2, 3]);
    assert_eq!(r.verified(), [0, 1, 2, 3]);
    // Two 16 KiB blocks per piece, and one short block of 100 bytes.
    assert_eq!(r.blocks.len(), 7);
    assert_eq!(r.blocks[6].length, 100);
    assert!(r.blocks.iter().all(|b| b.matches == Some(true)));
    assert!(r.unchoked_at.is_some() && r.interested_at.is_some());
    assert_eq!(r.deviations, []);
    assert_eq!(peer_messages(&rec, Dir::Out, "handshake"), 1);
    assert_eq!(peer_messages(&rec, Dir::In, "handshake"), 1);
    assert_eq!(peer_messages(&rec, Dir::Out, "request"), 7);
    assert_eq!(peer_messages(&rec, Dir::In, "piece"), 7);
}

#[tokio::test]
async fn takes_only_the_pieces_a_partial_seeder_has() {
    let rec = Recorder::new();
    let partial = Behaviour {
        has: Some(vec![0, 2]),
        ..Behaviour::default()
    };
    let r = leech(seeder(partial, &rec).await, &plan(), &rec).await;
    assert_eq!(r.end, End::Completed);
    assert_eq!(r.bitfield.as_ref().unwrap().bits, [0xa0]);
    assert_eq!((r.has.clone(), r.verified()), (vec![0, 2], vec![0, 2]));
    assert_eq!(r.missing, [1, 3]);
    assert!(!r.deviations.iter().any(|d| d.0 == "request-missing-piece"));
}

#[tokio::test]
async fn fetches_only_the_pieces_planned() {
    let rec = Recorder::new();
    let p = LeechPlan {
        pieces: Some(vec![3, 1]),
        ..plan()
    };
    let r = leech(seeder(Behaviour::default(), &rec).await, &p, &rec).await;
    assert!(r.complete(), "{}", r.end);
    assert_eq!(r.verified(), [1, 3]);
    assert_eq!(r.has, [0, 1, 2, 3]);
}

#[tokio::test]
async fn a_corrupted_byte_fails_its_piece_at_its_offset() {
    let rec = Recorder::new();
    let liar = Behaviour {
        corrupt: vec![(1, 20000)],
        ..Behaviour::default()
    };
    let r = leech(seeder(liar, &rec).await, &plan(), &rec).await;
    assert_eq!(r.end, End::Completed);
    assert!(!r.complete());
    let failed = r.failed();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].index, failed[0].first_difference),
        (1, Some(20000))
    );
    assert_eq!(r.verified(), [0, 2, 3]);
    assert_eq!(kinds(&r), ["piece-hash-mismatch"]);
    assert!(
        r.deviations[0].1.contains("offset 20000"),
        "{:?}",
        r.deviations
    );
    let bad: Vec<_> = r
        .blocks
        .iter()
        .filter(|b| b.matches == Some(false))
        .collect();
    assert_eq!((bad.len(), bad[0].index, bad[0].begin), (1, 1, 16384));
}

#[tokio::test]
async fn a_seeder_vanishing_mid_piece_is_reported_so() {
    let rec = Recorder::new();
    let vanishing = Behaviour {
        disconnect_mid_piece: vec![2],
        ..Behaviour::default()
    };
    let r = leech(seeder(vanishing, &rec).await, &plan(), &rec).await;
    let End::Closed {
        mid_piece, partial, ..
    } = &r.end
    else {
        panic!("{}", r.end);
    };
    assert_eq!(*mid_piece, Some(2));
    assert!(
        partial.as_ref().unwrap().contains("piece 2 begin 0"),
        "{partial:?}"
    );
    assert!(r.end.to_string().contains("in the middle of piece 2"));
    assert_eq!(kinds(&r), ["closed-mid-message"]);
    assert_eq!(r.verified(), [0, 1]);
}

#[tokio::test]
async fn a_seeder_choking_until_interested_unchokes_after_it() {
    let rec = Recorder::new();
    let choosy = Behaviour {
        choke_until_interested: true,
        ..Behaviour::default()
    };
    let r = leech(seeder(choosy, &rec).await, &plan(), &rec).await;
    assert!(r.complete(), "{}", r.end);
    assert!(r.interested_at.unwrap() <= r.unchoked_at.unwrap());
    assert!(r.unchoke_delay().is_some());
    assert_eq!(r.deviations, []);
}

#[tokio::test]
async fn a_cancelled_request_and_later_ones_are_handled() {
    let rec = Recorder::new();
    let slow = Behaviour {
        slow: Some(Duration::from_millis(20)),
        ..Behaviour::default()
    };
    let p = LeechPlan {
        cancel: true,
        ..plan()
    };
    let r = leech(seeder(slow, &rec).await, &p, &rec).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    let c = r.cancel.clone().unwrap();
    assert_eq!(c.block, (0, 0, 16384));
    assert!(!c.sent_anyway, "the seeder withdraws a queued request");
    assert_eq!(
        c.served_after, 7,
        "six other blocks and the one asked again"
    );
    assert_eq!(r.blocks[0].requests, 2);
    assert_eq!(peer_messages(&rec, Dir::Out, "cancel"), 1);
}

#[tokio::test]
async fn a_block_sent_despite_its_cancel_is_allowed() {
    let addr = fake(|mut s| async move {
        let mut d = greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0xf0]), Message::Unchoke]).await;
        while let Some(m) = recv(&mut s, &mut d).await {
            if let Message::Request {
                index,
                begin,
                length,
            } = m
            {
                say(&mut s, &[answer(index, begin, length)]).await;
            }
        }
    })
    .await;
    let p = LeechPlan {
        cancel: true,
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    let c = r.cancel.unwrap();
    assert!(c.sent_anyway);
    assert_eq!(c.served_after, 6);
    assert_eq!(r.blocks[0].requests, 1, "not asked again");
    assert_eq!(r.deviations, []);
}

/// A fake that announces its pieces with haves, sends keep-alives, and
/// chokes once after the first block (dropping the requests queued), then
/// unchokes.
async fn choking_fake(mut s: TcpStream) {
    let mut d = greet(&mut s, HASH).await;
    let haves: Vec<Message> = (0..4).map(Message::Have).collect();
    say(&mut s, &haves).await;
    say(&mut s, &[Message::KeepAlive]).await;
    assert_eq!(recv(&mut s, &mut d).await, Some(Message::Interested));
    say(&mut s, &[Message::Unchoke]).await;
    let mut choked_once = false;
    while let Some(m) = recv(&mut s, &mut d).await {
        let Message::Request {
            index,
            begin,
            length,
        } = m
        else {
            continue;
        };
        if choked_once {
            say(&mut s, &[answer(index, begin, length), Message::KeepAlive]).await;
            continue;
        }
        choked_once = true;
        say(&mut s, &[answer(index, begin, length), Message::Choke]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The requests that came meanwhile are dropped, as BEP 3 says.
        let mut b = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut b)).await
        {
            if n == 0 {
                return;
            }
            d.push(&b[..n]);
        }
        while let Ok(Some(_)) = d.message() {}
        say(&mut s, &[Message::Unchoke]).await;
    }
}

#[tokio::test]
async fn a_choke_mid_download_is_waited_out_and_requests_go_again() {
    let rec = Recorder::new();
    let r = leech(fake(choking_fake).await, &plan(), &rec).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    assert_eq!(r.bitfield, None);
    assert_eq!(r.haves, [0, 1, 2, 3]);
    assert_eq!(r.chokes.len(), 1);
    assert!(r.blocks.iter().skip(1).take(4).all(|b| b.requests == 2));
    assert_eq!(r.deviations, []);
    assert!(peer_messages(&rec, Dir::In, "keep-alive") >= 2);
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_named_by_its_bytes() {
    let addr = fake(|mut s| async move {
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    let End::Protocol {
        kind, offset, what, ..
    } = &r.end
    else {
        panic!("{}", r.end);
    };
    assert_eq!((kind.as_str(), *offset), ("bad-handshake", 0));
    assert_eq!(what, "protocol name length 72, expected 19");
    assert!(r.handshake_raw.starts_with(b"HTTP/1.1"));
    assert_eq!(r.handshake, None);
    assert_eq!(kinds(&r), ["bad-handshake"]);
}

#[tokio::test]
async fn a_silent_seeder_times_out_waiting_for_the_handshake() {
    let addr = fake(|s| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(s);
    })
    .await;
    let p = LeechPlan {
        wait: Duration::from_millis(200),
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    let End::TimedOut {
        waiting_for,
        whole_session,
        ..
    } = &r.end
    else {
        panic!("{}", r.end);
    };
    assert_eq!(waiting_for, "the handshake (0 of 68 bytes in)");
    assert!(!whole_session);
}

#[tokio::test]
async fn the_session_deadline_ends_a_trickling_seeder() {
    let addr = fake(|mut s| async move {
        greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0xf0])]).await;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if s.write_all(&[0, 0, 0, 0]).await.is_err() {
                return;
            }
        }
    })
    .await;
    let p = LeechPlan {
        wait: Duration::from_millis(300),
        deadline: Duration::from_millis(250),
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    assert!(
        matches!(&r.end, End::TimedOut { waiting_for, whole_session: true, .. } if waiting_for == "an unchoke"),
        "{}",
        r.end
    );
}

#[tokio::test]
async fn a_seeder_that_never_unchokes_times_out() {
    let addr = fake(|mut s| async move {
        greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0xf0])]).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let p = LeechPlan {
        wait: Duration::from_millis(200),
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    assert!(
        matches!(&r.end, End::TimedOut { waiting_for, whole_session: false, .. } if waiting_for == "an unchoke"),
        "{}",
        r.end
    );
    assert!(r.interested_at.is_some() && r.unchoked_at.is_none());
}

#[tokio::test]
async fn a_handshake_for_another_torrent_is_refused() {
    let addr = fake(|mut s| async move {
        greet(&mut s, [1; 20]).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert!(
        matches!(&r.end, End::Protocol { kind, offset: 28, .. } if kind == "wrong-info-hash"),
        "{}",
        r.end
    );
    assert_eq!(r.handshake.unwrap().info_hash, [1; 20]);
    assert_eq!(r.handshake_raw.len(), 68);
}

#[tokio::test]
async fn a_bitfield_with_spare_bits_set_is_a_bad_bitfield() {
    let addr = fake(|mut s| async move {
        greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0xf1])]).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    let End::Protocol {
        kind,
        offset,
        bytes,
        ..
    } = &r.end
    else {
        panic!("{}", r.end);
    };
    assert_eq!((kind.as_str(), *offset), ("bad-bitfield", 68 + 5));
    assert_eq!(bytes, &[0, 0, 0, 2, 5, 0xf1]);
    assert_eq!(kinds(&r), ["bad-bitfield"]);
}

#[tokio::test]
async fn wrong_and_unrequested_blocks_are_recorded() {
    let addr = fake(|mut s| async move {
        let mut d = greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0x80]), Message::Unchoke]).await;
        while let Some(m) = recv(&mut s, &mut d).await {
            if let Message::Request { index, begin, .. } = m {
                let short = answer(index, begin, 10);
                let outside = Message::Piece {
                    index: 9,
                    begin: 0,
                    data: vec![0; 5],
                };
                say(&mut s, &[answer(2, 0, 5), outside, short]).await;
            }
        }
    })
    .await;
    let p = LeechPlan {
        pipeline: 1,
        wait: Duration::from_millis(300),
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    assert_eq!(
        kinds(&r),
        ["unrequested-block", "wrong-block", "wrong-block"]
    );
    assert!(r.deviations[2].1.contains("10 bytes, 16384 requested"));
    assert!(
        matches!(&r.end, End::TimedOut { waiting_for, .. } if waiting_for == "block 0/0/16384"),
        "{}",
        r.end
    );
}

#[tokio::test]
async fn a_huge_length_prefix_ends_the_session_at_its_offset() {
    let addr = fake(|mut s| async move {
        greet(&mut s, HASH).await;
        s.write_all(&[0xff, 0xff, 0xff, 0xff, 7, 0, 0])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert!(
        matches!(&r.end, End::Protocol { kind, offset: 68, what, .. } if kind == "bad-message" && what.contains("4294967295")),
        "{}",
        r.end
    );
}

#[tokio::test]
async fn no_listener_and_bad_plans_end_at_once() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let r = leech(port, &plan(), &Recorder::new()).await;
    assert!(matches!(r.end, End::ConnectFailed(_)), "{}", r.end);
    let bad = LeechPlan {
        piece_hashes: vec![[0; 20]; 3],
        ..plan()
    };
    let r = leech(port, &bad, &Recorder::new()).await;
    assert_eq!(r.end, End::BadPlan("3 piece hashes for 4 pieces".into()));
}

#[test]
fn a_plan_for_a_torrent_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    std::fs::write(&file, data()).unwrap();
    let meta = crate::torrent::make(&file, PIECE as u64, "http://127.0.0.1:1/a").unwrap();
    let p = LeechPlan::for_torrent("leech", &meta).unwrap();
    assert_eq!(p.piece_hashes, plan().piece_hashes);
    assert_eq!(
        (p.piece_count(), p.piece_len(3), p.piece_len(4)),
        (4, 100, 0)
    );
    assert_eq!(&p.peer_id, b"-NG0001-leech_______");
}

#[tokio::test]
async fn odd_messages_are_recorded_and_the_download_goes_on() {
    let addr = fake(|mut s| async move {
        let mut d = greet(&mut s, HASH).await;
        let odd = [
            Message::Have(0),
            Message::Bitfield(vec![0xf0]),
            Message::Have(99),
            Message::Unknown {
                id: 20,
                payload: vec![0],
            },
            Message::Request {
                index: 0,
                begin: 0,
                length: 1,
            },
            Message::Unchoke,
        ];
        say(&mut s, &odd).await;
        while let Some(m) = recv(&mut s, &mut d).await {
            if let Message::Request {
                index,
                begin,
                length,
            } = m
            {
                say(&mut s, &[answer(index, begin, length)]).await;
            }
        }
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    assert_eq!(
        kinds(&r),
        [
            "late-bitfield",
            "bad-have",
            "unknown-message",
            "request-from-seeder"
        ]
    );
    assert!(!r.bitfield.unwrap().first);
    assert_eq!(r.haves, [0]);
}

#[tokio::test]
async fn a_flood_of_faults_is_counted_not_kept() {
    let addr = fake(|mut s| async move {
        greet(&mut s, HASH).await;
        let flood = vec![
            Message::Unknown {
                id: 99,
                payload: vec![],
            };
            3 * MAX_ENTRIES
        ];
        say(&mut s, &flood).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let p = LeechPlan {
        wait: Duration::from_millis(300),
        ..plan()
    };
    let r = leech(addr, &p, &Recorder::new()).await;
    assert_eq!(r.deviations.len(), MAX_ENTRIES);
    assert_eq!(r.untracked, 2 * MAX_ENTRIES as u64);
    assert!(
        matches!(&r.end, End::TimedOut { waiting_for, .. } if waiting_for == "a bitfield or have"),
        "{}",
        r.end
    );
}

#[tokio::test]
async fn a_seeder_closing_mid_handshake_is_reported_with_its_bytes() {
    let addr = fake(|mut s| async move {
        // Reads the leecher's handshake first: closing with bytes unread
        // would reset the connection instead.
        let mut b = [0u8; 68];
        s.read_exact(&mut b).await.unwrap();
        s.write_all(&[19, b'B']).await.unwrap();
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert_eq!(
        r.end.to_string(),
        "closed by the seeder after 2 bytes, waiting for the handshake (2 of 68 bytes in)"
    );
    assert_eq!(r.handshake_raw, [19, b'B']);
    assert_eq!(r.deviations, []);
}

#[tokio::test]
async fn a_keep_alive_before_the_bitfield_still_leaves_it_first() {
    let addr = fake(|mut s| async move {
        let mut d = greet(&mut s, HASH).await;
        let open = [
            Message::KeepAlive,
            Message::Bitfield(vec![0x10]),
            Message::Unchoke,
        ];
        say(&mut s, &open).await;
        while let Some(m) = recv(&mut s, &mut d).await {
            if let Message::Request {
                index,
                begin,
                length,
            } = m
            {
                say(&mut s, &[answer(index, begin, length)]).await;
            }
        }
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert_eq!(r.end, End::Completed);
    assert!(r.bitfield.as_ref().unwrap().first);
    assert_eq!(r.verified(), [3]);
    assert_eq!(r.deviations, []);
}

#[tokio::test]
async fn a_seeder_flapping_choke_around_every_block_still_gives_everything() {
    let addr = fake(|mut s| async move {
        let mut d = greet(&mut s, HASH).await;
        say(&mut s, &[Message::Bitfield(vec![0xf0]), Message::Unchoke]).await;
        while let Some(m) = recv(&mut s, &mut d).await {
            if let Message::Request {
                index,
                begin,
                length,
            } = m
            {
                // Requests in flight across the choke are served anyway, so
                // some blocks come twice: the race is not the seeder's fault.
                let flap = [
                    answer(index, begin, length),
                    Message::Choke,
                    Message::Unchoke,
                ];
                say(&mut s, &flap).await;
            }
        }
    })
    .await;
    let r = leech(addr, &plan(), &Recorder::new()).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    assert!(!r.chokes.is_empty());
    assert_eq!(r.deviations, []);
}

/// A seeded stream after a valid handshake: messages of every id with
/// fields and lengths now right, now wrong, and raw garbage.
fn random_stream(seed: u64) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for _ in 0..rng.random_range(1..40) {
        let msg = match rng.random_range(0..20) {
            0 => Message::Choke,
            1..=3 => Message::Unchoke,
            4..=6 => Message::Have(rng.random_range(0..6)),
            7 => Message::Bitfield(vec![rng.random(); rng.random_range(0..3)]),
            8..=15 => {
                let len = [16384, 100, rng.random_range(0..40000)][rng.random_range(0..3)];
                let index = rng.random_range(0..5);
                let begin = [0, 16384, rng.random()][rng.random_range(0..3)];
                match rng.random_bool(0.5) {
                    true => answer(index % 4, 0, 100),
                    false => Message::Piece {
                        index,
                        begin,
                        data: vec![7; len],
                    },
                }
            }
            16 => Message::KeepAlive,
            17 => Message::Unknown {
                id: rng.random_range(9..=255),
                payload: vec![0; rng.random_range(0..20)],
            },
            _ => {
                let garbage: Vec<u8> = (0..rng.random_range(1..12)).map(|_| rng.random()).collect();
                out.extend_from_slice(&garbage);
                continue;
            }
        };
        msg.encode(&mut out);
    }
    out
}

#[tokio::test]
async fn no_stream_of_bytes_makes_it_panic_or_hang() {
    for seed in 0..300 {
        let stream = random_stream(seed);
        let addr = fake(move |mut s| async move {
            let mut b = [0u8; 68];
            if s.read_exact(&mut b).await.is_err() {
                return;
            }
            let hs = Handshake {
                reserved: [0; 8],
                info_hash: HASH,
                peer_id: [b'f'; 20],
            };
            let _ = s.write_all(&hs.encode()).await;
            let _ = s.write_all(&stream).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        })
        .await;
        let p = LeechPlan {
            wait: Duration::from_millis(100),
            deadline: Duration::from_millis(500),
            ..plan()
        };
        let r = leech(addr, &p, &Recorder::new()).await;
        assert!(r.handshake.is_some(), "seed {seed}: {}", r.end);
        assert_ne!(r.end, End::Completed, "seed {seed}");
    }
}

#[tokio::test]
async fn without_the_original_data_a_bad_piece_is_found_by_its_hash_alone() {
    let rec = Recorder::new();
    let liar = Behaviour {
        corrupt: vec![(3, 99)],
        ..Behaviour::default()
    };
    let p = LeechPlan {
        expected: None,
        ..plan()
    };
    let r = leech(seeder(liar, &rec).await, &p, &rec).await;
    assert_eq!(r.end, End::Completed);
    let failed = r.failed();
    assert_eq!((failed[0].index, failed[0].first_difference), (3, None));
    assert!(
        r.deviations[0]
            .1
            .ends_with("the original data is not known")
    );
    assert!(r.blocks.iter().all(|b| b.matches.is_none()));
    assert!(!r.complete());
}
