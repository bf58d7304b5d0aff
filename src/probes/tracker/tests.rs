use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::bencode::{Value, decode};
use super::reply::{self, PeerForm};
use super::*;

#[test]
fn canonical_bencode_reads_without_departures() {
    let d = decode(b"d8:completei0e8:intervali-5e5:peersl2:abi0eee").unwrap();
    assert!(d.departures.is_empty());
    assert_eq!(d.value.get(b"interval"), Some(&Value::Int(-5)));
    assert_eq!(
        d.value.get(b"peers"),
        Some(&Value::List(vec![
            Value::Bytes(b"ab".to_vec()),
            Value::Int(0)
        ]))
    );
}

#[test]
fn departures_from_the_canonical_form_are_located() {
    let d = decode(b"d8:intervali60e5:peers0:8:completei0ee").unwrap();
    assert_eq!(d.departures.len(), 1);
    assert_eq!(d.departures[0].offset, 24);
    assert!(
        d.departures[0]
            .message
            .contains("\"complete\" comes after \"peers\"")
    );
    let d = decode(b"d1:ai1e1:ai2ee").unwrap();
    assert_eq!(d.value.get(b"a"), Some(&Value::Int(1)));
    assert!(d.departures[0].message.contains("appears twice"));
    let d = decode(b"d1:ai1e1:bi1e1:ai2ee").unwrap();
    assert!(
        d.departures
            .iter()
            .any(|e| e.message.contains("appears twice"))
    );
    assert!(
        decode(b"i03e").unwrap().departures[0]
            .message
            .contains("leading zero")
    );
    assert_eq!(decode(b"i-0e").unwrap().departures[0].offset, 1);
    assert!(
        decode(b"02:ab").unwrap().departures[0]
            .message
            .contains("length 02")
    );
}

#[test]
fn broken_bencode_is_an_error_at_its_offset() {
    let cases: [(&[u8], usize, &str); 8] = [
        (b"", 0, "ends in the middle"),
        (b"de extra", 2, "6 bytes after the end"),
        (b"5:abc", 0, "a string of 5 bytes, but only 3 bytes follow"),
        (b"<html>", 0, "byte '<' cannot start a value"),
        (b"i-e", 2, "without digits"),
        (b"i12x", 3, "byte 'x' in an integer"),
        (b"di1ei2ee", 1, "key must be a byte string"),
        (b"l1:a", 4, "ends in the middle"),
    ];
    for (input, offset, message) in cases {
        let e = decode(input).unwrap_err();
        assert_eq!(e.offset, offset, "{input:?}: {e}");
        assert!(e.message.contains(message), "{input:?}: {e}");
    }
    let deep = [vec![b'l'; 40], vec![b'e'; 40]].concat();
    assert!(decode(&deep).unwrap_err().message.contains("nested"));
}

#[test]
fn escaping_keeps_only_unreserved_bytes() {
    assert_eq!(escape(b"aZ09-._~"), "aZ09-._~");
    assert_eq!(escape(b" &%+=\x80\xff/"), "%20%26%25%2B%3D%80%FF%2F");
}

#[test]
fn fake_peers_are_deterministic_and_distinct() {
    let a = fake_peers(7, 2, 30);
    assert_eq!(a, fake_peers(7, 2, 30));
    assert_ne!(a, fake_peers(8, 2, 30));
    for (i, p) in a.iter().enumerate() {
        assert!(p.peer_id.iter().any(|b| *b >= 0x80));
        assert!(escape(&p.peer_id).contains('%'));
        assert_eq!(p.ip, Ipv4Addr::new(127, 3, 0, i as u8 + 1));
        let others = a
            .iter()
            .filter(|q| q.port == p.port || q.peer_id == p.peer_id);
        assert_eq!(others.count(), 1);
    }
    assert_eq!((a[0].name.as_str(), a[26].name.as_str()), ("A", "P26"));
}

/// A server that answers one connection with `bytes` once the request has
/// come, then closes or holds the connection open for a while.
async fn answer_once(bytes: &'static [u8], close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = s.write_all(bytes).await;
        if close {
            return;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    addr
}

/// A server that sends `first`, waits, then sends `second` and closes.
async fn answer_in_two(first: &'static [u8], second: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(first).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = s.write_all(second).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    addr
}

#[tokio::test]
async fn a_reply_in_pieces_is_read_to_its_end() {
    let addr = answer_in_two(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nd8:in\r\n",
        b"14\r\ntervali60e5:peers0:e\r\n0\r\n\r\n",
    )
    .await;
    let ex = announce(&quick(addr), "A", Ipv4Addr::LOCALHOST, "").await;
    assert_eq!(ex.end, End::Complete);
    assert_eq!(ex.body, b"d8:intervali60e5:peers0:e");
    let addr = answer_in_two(
        b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nd8:inter",
        b"vali60e5:peers0:e",
    )
    .await;
    let ex = announce(&quick(addr), "A", Ipv4Addr::LOCALHOST, "").await;
    assert_eq!((ex.end, ex.body.len()), (End::Complete, 25));
}

fn quick(addr: SocketAddr) -> Target {
    let mut t = Target::new(addr, "/announce", 1);
    t.limits.head = Duration::from_millis(300);
    t.limits.body = Duration::from_millis(300);
    t
}

async fn one(bytes: &'static [u8], close: bool) -> Exchange {
    let addr = answer_once(bytes, close).await;
    announce(&quick(addr), "A", Ipv4Addr::new(127, 9, 0, 1), "port=1").await
}

#[tokio::test]
async fn a_content_length_reply_is_complete_and_kept() {
    let ex = one(
        b"HTTP/1.1 200 OK\r\nContent-Length: 25\r\n\r\nd8:intervali60e5:peers0:e",
        false,
    )
    .await;
    assert_eq!(ex.end, End::Complete);
    assert_eq!(ex.status, Some(200));
    assert_eq!(ex.status_line.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(ex.target, "/announce?port=1");
    assert_eq!(ex.from.unwrap().ip(), Ipv4Addr::new(127, 9, 0, 1));
    let r = reply::read(&ex).unwrap();
    assert_eq!(
        (r.interval, r.form, r.peers.len()),
        (Some(60), PeerForm::Compact, 0)
    );
}

#[tokio::test]
async fn a_chunked_reply_is_dechunked() {
    let ex = one(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nd8:in\r\n14\r\ntervali60e5:peers0:e\r\n0\r\n\r\n",
        false,
    )
    .await;
    assert_eq!(ex.end, End::Complete);
    assert_eq!(ex.body, b"d8:intervali60e5:peers0:e");
    assert!(ex.dict().is_some());
}

#[tokio::test]
async fn keep_alive_without_length_is_read_until_the_deadline() {
    let ex = one(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nd8:intervali60e5:peers0:e",
        false,
    )
    .await;
    assert_eq!(ex.end, End::TimedOut("body"));
    assert!(reply::read(&ex).is_ok());
}

#[tokio::test]
async fn silence_early_close_html_and_refusal_are_told_apart() {
    let ex = one(b"", false).await;
    assert_eq!(ex.end, End::TimedOut("head"));
    assert!(
        reply::not_a_dict(&ex)
            .unwrap()
            .contains("nothing came back")
    );
    let ex = one(b"", true).await;
    assert_eq!(ex.end, End::Closed);
    let ex = one(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n\r\n<html>nope</html>",
        true,
    )
    .await;
    assert_eq!((ex.end.clone(), ex.status), (End::Closed, Some(404)));
    assert!(reply::not_a_dict(&ex).unwrap().contains("HTML"));
    let free = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let ex = announce(&quick(free), "A", Ipv4Addr::LOCALHOST, "").await;
    assert!(matches!(ex.end, End::ConnectFailed(_)), "{:?}", ex.end);
}

#[tokio::test]
async fn a_reply_past_the_size_bound_stops() {
    static BIG: [u8; 4096] = [b'x'; 4096];
    let addr = answer_once(&BIG, false).await;
    let mut t = quick(addr);
    t.limits.max_bytes = 1000;
    let ex = announce(&t, "A", Ipv4Addr::LOCALHOST, "").await;
    assert_eq!((ex.end, ex.received.len()), (End::TooLarge, 1000));
}

fn exchange_with(body: &[u8]) -> Exchange {
    let bytes = [b"HTTP/1.1 200 OK\r\n\r\n".as_slice(), body].concat();
    super::exchange("A", "/a".into(), None, bytes, End::Closed, Duration::ZERO)
}

#[test]
fn peers_are_read_in_both_forms() {
    let r = reply::read(&exchange_with(
        b"d8:intervali9e5:peers6:\x7f\x00\x00\x02\x1a\xe1e",
    ))
    .unwrap();
    assert_eq!(r.show_peers(), "127.0.0.2:6881");
    let dicts =
        b"d8:intervali9e5:peersld2:ip9:127.0.0.27:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eeee";
    let r = reply::read(&exchange_with(dicts)).unwrap();
    assert_eq!(r.form, PeerForm::Dictionaries);
    assert_eq!(r.peers[0].peer_id.as_deref(), Some(&[b'a'; 20][..]));
    let err = reply::read(&exchange_with(b"d5:peers5:abcdee")).unwrap_err();
    assert!(err.contains("not a multiple of 6"), "{err}");
    let err = reply::read(&exchange_with(b"d14:failure reason3:no!e")).unwrap_err();
    assert!(err.contains("failure reason \"no!\""), "{err}");
    let err = reply::read(&exchange_with(b"d8:intervali9ee")).unwrap_err();
    assert!(err.contains("no `peers`"), "{err}");
}

#[test]
fn info_hashes_differ_per_check() {
    let a = info_hash_for(1, "peer-list");
    assert_eq!(a, info_hash_for(1, "peer-list"));
    assert_ne!(a, info_hash_for(1, "events"));
    assert_ne!(a, info_hash_for(2, "peer-list"));
}
