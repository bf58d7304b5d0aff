//! The seeder against a hand-driven client on loopback: faults and limits.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::wire::{Decoder, Handshake, Limits, Message};
use super::*;

const PIECE: u32 = 32 * 1024;

fn content() -> Content {
    Content {
        info_hash: [9; 20],
        piece_length: PIECE,
        data: (0..3 * PIECE + 100).map(|i| (i % 251) as u8).collect(),
    }
}

async fn start(behaviour: Behaviour) -> (TcpStream, Recorder) {
    let rec = Recorder::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        Arc::new(Seeder::new("s", content(), behaviour, rec.clone())),
    ));
    (TcpStream::connect(addr).await.unwrap(), rec)
}

/// Sends a handshake for `hash`; returns a decoder past the seeder's handshake.
async fn greet(s: &mut TcpStream, hash: [u8; 20]) -> Decoder {
    let hs = Handshake {
        reserved: [0; 8],
        info_hash: hash,
        peer_id: [b'c'; 20],
    };
    s.write_all(&hs.encode()).await.unwrap();
    let mut d = Decoder::new(Limits::new(4));
    loop {
        if let Some(h) = d.handshake().unwrap() {
            assert_eq!(h.info_hash, hash);
            return d;
        }
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).await.unwrap();
        assert!(n > 0, "closed before the handshake");
        d.push(&b[..n]);
    }
}

/// Messages until `want` of them are in, or the stream closes, or 2 s pass.
async fn read(s: &mut TcpStream, d: &mut Decoder, want: usize) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while got.len() < want {
        while let Some((m, _)) = d.message().unwrap() {
            got.push(m);
        }
        if got.len() >= want {
            break;
        }
        let mut b = [0u8; 65536];
        match tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => d.push(&b[..n]),
            _ => break,
        }
    }
    got
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 65536];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

fn deviations(rec: &Recorder) -> Vec<(String, String)> {
    rec.snapshot()
        .events
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Deviation { kind, detail, .. } => Some((kind, detail)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn wrong_info_hash_is_recorded_and_closed() {
    let (mut s, rec) = start(Behaviour::default()).await;
    let hs = Handshake {
        reserved: [0; 8],
        info_hash: [1; 20],
        peer_id: [b'c'; 20],
    };
    s.write_all(&hs.encode()).await.unwrap();
    assert!(closed(&mut s).await);
    let d = deviations(&rec);
    assert_eq!(d[0].0, "connection");
    assert!(d[0].1.contains("info_hash 0101"), "{d:?}");
}

#[tokio::test]
async fn huge_length_prefix_is_recorded_with_its_offset() {
    let (mut s, rec) = start(Behaviour::default()).await;
    greet(&mut s, [9; 20]).await;
    s.write_all(&[0x80, 0, 0, 0, 7]).await.unwrap();
    assert!(closed(&mut s).await);
    let d = deviations(&rec);
    assert!(
        d[0].1
            .starts_with("bad message: byte 68: length prefix 2147483648"),
        "{d:?}"
    );
}

#[tokio::test]
async fn serves_valid_blocks_and_refuses_bad_requests() {
    let (mut s, rec) = start(Behaviour::default()).await;
    let mut d = greet(&mut s, [9; 20]).await;
    assert_eq!(
        read(&mut s, &mut d, 2).await,
        [Message::Bitfield(vec![0xf0]), Message::Unchoke]
    );
    let mut out = Vec::new();
    for (index, begin, length) in [
        (0, 0, 32768),
        (1, 30000, 4000),
        (9, 0, 10),
        (3, 0, 16384),
        (3, 50, 50),
    ] {
        Message::Request {
            index,
            begin,
            length,
        }
        .encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
    let got = read(&mut s, &mut d, 1).await;
    let data = content().data[3 * PIECE as usize + 50..][..50].to_vec();
    assert_eq!(
        got,
        [Message::Piece {
            index: 3,
            begin: 50,
            data
        }]
    );
    let kinds: Vec<String> = deviations(&rec).into_iter().map(|d| d.0).collect();
    assert_eq!(
        kinds,
        [
            "bad-request-length",
            "request-past-piece-end",
            "request-missing-piece",
            "request-past-piece-end"
        ]
    );
}

#[tokio::test]
async fn choked_until_interested() {
    let (mut s, rec) = start(Behaviour {
        choke_until_interested: true,
        ..Behaviour::default()
    })
    .await;
    let mut d = greet(&mut s, [9; 20]).await;
    assert_eq!(
        read(&mut s, &mut d, 1).await,
        [Message::Bitfield(vec![0xf0])]
    );
    s.write_all(
        &Message::Request {
            index: 0,
            begin: 0,
            length: 10,
        }
        .to_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(read(&mut s, &mut d, 1).await, []);
    assert_eq!(deviations(&rec)[0].0, "request-while-choked");
    s.write_all(&Message::Interested.to_bytes()).await.unwrap();
    assert_eq!(read(&mut s, &mut d, 1).await, [Message::Unchoke]);
}

#[tokio::test]
async fn slow_peer_spaces_its_blocks_and_cancel_withdraws() {
    let slow = Duration::from_millis(150);
    let (mut s, _rec) = start(Behaviour {
        slow: Some(slow),
        ..Behaviour::default()
    })
    .await;
    let mut d = greet(&mut s, [9; 20]).await;
    read(&mut s, &mut d, 2).await;
    let t = std::time::Instant::now();
    let mut out = Vec::new();
    for begin in [0, 100, 200] {
        Message::Request {
            index: 0,
            begin,
            length: 100,
        }
        .encode(&mut out);
    }
    Message::Cancel {
        index: 0,
        begin: 200,
        length: 100,
    }
    .encode(&mut out);
    s.write_all(&out).await.unwrap();
    let got = read(&mut s, &mut d, 3).await;
    assert_eq!(got.len(), 2, "the cancelled block is not sent: {got:?}");
    assert!(t.elapsed() >= 2 * slow, "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_full_queue_holds_back_reading_and_loses_nothing() {
    let (mut s, rec) = start(Behaviour::default()).await;
    let mut d = greet(&mut s, [9; 20]).await;
    read(&mut s, &mut d, 2).await;
    let n = 3 * MAX_QUEUE;
    let mut out = Vec::new();
    for i in 0..n as u32 {
        Message::Request {
            index: 0,
            begin: i,
            length: 1,
        }
        .encode(&mut out);
    }
    s.write_all(&out).await.unwrap();
    let got = read(&mut s, &mut d, n).await;
    let begins: Vec<u32> = got
        .iter()
        .map(|m| match m {
            Message::Piece { begin, data, .. } => {
                assert_eq!(data.len(), 1);
                *begin
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        begins,
        (0..n as u32).collect::<Vec<_>>(),
        "every request served, in order"
    );
    assert_eq!(deviations(&rec), []);
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_recorded_at_its_byte() {
    let (mut s, rec) = start(Behaviour::default()).await;
    s.write_all(b"\x13BitTorrent protocoX").await.unwrap();
    assert!(closed(&mut s).await);
    let d = deviations(&rec);
    assert_eq!(
        d[0].1,
        "bad handshake: byte 19: 'X' in the protocol name, expected 'l' (\"BitTorrent protocol\")"
    );
    let (mut s, rec) = start(Behaviour::default()).await;
    s.write_all(&[19, b'B']).await.unwrap();
    s.shutdown().await.unwrap();
    assert!(closed(&mut s).await);
    assert_eq!(
        deviations(&rec)[0].1,
        "closed after 2 bytes, before the handshake ended"
    );
}

#[test]
fn seeded_choices_are_stable_and_in_range() {
    let c = content();
    let has = Behaviour::seeded_has(5, 4, 2);
    assert_eq!(has, Behaviour::seeded_has(5, 4, 2));
    assert_eq!(has.len(), 2);
    assert!(has.iter().all(|&i| i < 4));
    let (piece, at) = Behaviour::seeded_corrupt(5, &c);
    assert!(at < c.piece_len(piece));
    assert_eq!(
        Behaviour {
            has: Some(vec![0, 3]),
            ..Behaviour::default()
        }
        .bitfield(4),
        [0b1001_0000]
    );
    assert_eq!(c.piece_len(3), 100);
    assert_eq!(c.piece_len(4), 0);
}
