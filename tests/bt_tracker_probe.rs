//! The tracker probe against real trackers on loopback: the reference
//! tracker passes every check, opentracker is graded like a student's
//! tracker, and small broken trackers fail the check they break.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netgrade::probes::tracker::udp::{Retry, udp_tracker};
use netgrade::probes::tracker::{self, CHECKS, Outcome, Target, info_hash_for};
use netgrade::servers::tracker::{Tracker, serve};
use netgrade::torrent::InfoHash;

const SEED: u64 = 2026;

/// One torrent per HTTP check.
fn hashes() -> Vec<InfoHash> {
    CHECKS.iter().map(|c| info_hash_for(SEED, c)).collect()
}

/// The torrent of the UDP check.
fn udp_hash() -> InfoHash {
    info_hash_for(SEED, "udp-tracker")
}

/// Every torrent the trackers under test serve.
fn all_hashes() -> Vec<InfoHash> {
    [hashes(), vec![udp_hash()]].concat()
}

fn show(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    for o in outcomes {
        match &o.judgement {
            Ok(ev) => s.push_str(&format!("PASS {}: {}\n", o.check, ev.join("\n    "))),
            Err(f) => s.push_str(&format!(
                "FAIL {}: {}\n    {}\n",
                o.check,
                f.message,
                f.evidence.join("\n    ")
            )),
        }
    }
    s
}

/// The reference tracker on 127.0.0.1, serving `hashes`.
async fn reference(hashes: Vec<InfoHash>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let t = Arc::new(Mutex::new(Tracker::new(hashes, 60)));
    let task = tokio::spawn(async move {
        let _ = serve(listener, t, Arc::new(|_| {})).await;
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_tracker_passes_every_check() {
    let (addr, task) = reference(hashes()).await;
    let target = Target::new(addr, "/announce", SEED);
    let outcomes = tracker::run_all(&target, &hashes()).await;
    task.abort();
    let report = show(&outcomes);
    assert!(outcomes.iter().all(|o| o.judgement.is_ok()), "{report}");
}

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// opentracker on 127.0.0.1 with `hashes` whitelisted (Debian builds it in
/// whitelist mode); TCP and UDP on the returned port.
fn opentracker(dir: &std::path::Path, hashes: &[InfoHash]) -> (Killed, u16) {
    let list: String = hashes.iter().map(|h| format!("{}\n", h.hex())).collect();
    std::fs::write(dir.join("whitelist"), list).unwrap();
    let port = free_port();
    let child = Command::new("opentracker")
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-P",
            &port.to_string(),
        ])
        .arg("-d")
        .arg(dir)
        // Read after opentracker chroots into `dir`.
        .args(["-w", "/whitelist"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("opentracker installed");
    let child = Killed(child);
    // The whitelist is loaded by a thread of its own: wait until the first
    // hash is accepted (announced with a peer id no check uses).
    let probe = format!(
        "GET /announce?info_hash={}&peer_id=readyreadyreadyready&port=1&left=1 HTTP/1.0\r\n\r\n",
        tracker::escape(&hashes[0].0)
    );
    for _ in 0..100 {
        if let Some(reply) = get(port, &probe)
            && reply.contains("intervali")
        {
            let stop = probe.replace("left=1", "left=1&event=stopped");
            get(port, &stop);
            return (child, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("opentracker did not come up on port {port}");
}

/// Sends `request` to 127.0.0.1:`port` and reads the reply to the close.
fn get(port: u16, request: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn opentracker_graded_as_a_student_tracker() {
    if Command::new("opentracker").arg("-h").output().is_err() {
        eprintln!("opentracker is not installed; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let (_child, port) = opentracker(dir.path(), &all_hashes());
    let target = Target::new(([127, 0, 0, 1], port).into(), "/announce", SEED);
    let outcomes = tracker::run_all(&target, &hashes()).await;
    let report = show(&outcomes);
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.judgement.is_err())
        .map(|o| o.check)
        .collect();
    // opentracker lists the requester itself (peer-list), and answers a
    // malformed info_hash or port with an HTML page and accepts a missing
    // port (failure-reason): real departures, not misjudgements.
    assert_eq!(failed, ["peer-list", "failure-reason"], "{report}");
    let m = message_of(&outcomes, "peer-list");
    assert!(m.contains("lists the requesting peer A itself"), "{m}");
    let m = message_of(&outcomes, "failure-reason");
    assert!(m.contains("4 of 5 bad announces"), "{m}");
    let f = outcomes[4].judgement.as_ref().unwrap_err();
    assert!(
        f.evidence
            .iter()
            .any(|e| e.starts_with("no port: the tracker accepted it")),
        "{report}"
    );
    let udp = udp_tracker(
        ([127, 0, 0, 1], port).into(),
        None,
        udp_hash(),
        SEED,
        Retry::default(),
    )
    .await;
    assert!(udp.judgement.is_ok(), "{:#?}", udp);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reference_udp_tracker_passes() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let t = Arc::new(Mutex::new(Tracker::new(all_hashes(), 60)));
    let task = tokio::spawn(async move {
        let _ = netgrade::servers::tracker::udp::serve(socket, t, 7, Arc::new(|_| {})).await;
    });
    let udp = udp_tracker(addr, None, udp_hash(), SEED, Retry::default()).await;
    task.abort();
    assert!(udp.judgement.is_ok(), "{:#?}", udp);
    assert_eq!(udp.datagrams.len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_udp_tracker_fails_after_retransmissions() {
    // Bound but never answering: the connect is sent `tries` times.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let retry = Retry {
        base: Duration::from_millis(20),
        tries: 3,
    };
    let udp = udp_tracker(addr, None, udp_hash(), SEED, retry).await;
    let f = udp.judgement.unwrap_err();
    assert!(f.message.contains("A connect: no reply"), "{}", f.message);
    assert_eq!(udp.datagrams[0].tries, 3);
    let mut buf = [0u8; 64];
    let mut got = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await
    {
        got += 1;
    }
    assert_eq!(got, 3, "each try is one datagram");
}

/// The mistakes a broken tracker makes.
#[derive(Clone, Copy, Debug, Default)]
struct Flaws {
    /// Dictionary keys out of order.
    unsorted: bool,
    /// An HTML page for a bad request.
    html_errors: bool,
    /// The requester in its own peer list.
    include_self: bool,
    /// `stopped` treated like a regular announce.
    keep_stopped: bool,
    /// One connection at a time, waiting for each request without a deadline.
    serial: bool,
    /// `complete` and `incomplete` swapped.
    swapped_counts: bool,
    /// `interval` as a string.
    string_interval: bool,
    /// An HTML 400 for `compact=0`.
    compact_only: bool,
    /// No Content-Length, and the connection kept open after the body.
    no_length: bool,
}

/// A tracker built on the reference swarm logic, with `flaws`.
async fn flawed(flaws: Flaws) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let t = Arc::new(Mutex::new(Tracker::new(all_hashes(), 60)));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                return;
            };
            let t = t.clone();
            if flaws.serial {
                answer(stream, from, &t, flaws).await;
            } else {
                tokio::spawn(async move { answer(stream, from, &t, flaws).await });
            }
        }
    });
    (addr, task)
}

async fn answer(
    mut stream: tokio::net::TcpStream,
    from: SocketAddr,
    t: &Mutex<Tracker>,
    flaws: Flaws,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let target = line.split(' ').nth(1).unwrap_or("");
    let (status, kind, body) = match netgrade::servers::tracker::parse_announce(target) {
        Err(_) if flaws.html_errors => (
            "400 Bad Request",
            "text/html",
            b"<html><body><h1>400 Bad Request</h1></body></html>".to_vec(),
        ),
        Err(e) => (
            "200 OK",
            "text/plain",
            netgrade::servers::tracker::encode_failure(&e),
        ),
        Ok(a) if flaws.compact_only && !a.compact => (
            "400 Bad Request",
            "text/html",
            b"<title>Invalid Request</title>".to_vec(),
        ),
        Ok(mut a) => {
            if flaws.keep_stopped
                && a.event == Some(netgrade::servers::tracker::AnnounceEvent::Stopped)
            {
                a.event = None;
            }
            let std::net::IpAddr::V4(ip) = from.ip() else {
                return;
            };
            let view = t.lock().unwrap().update(&a, ip, std::time::Instant::now());
            let body = match view {
                Ok(view) => reply(&view, ip, a.port, flaws),
                Err(e) => netgrade::servers::tracker::encode_failure(&e),
            };
            ("200 OK", "text/plain", body)
        }
    };
    if flaws.no_length {
        let head =
            format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nConnection: keep-alive\r\n\r\n");
        let _ = stream.write_all(&[head.into_bytes(), body].concat()).await;
        // Wait for the client to give up and close.
        let _ = stream.read(&mut buf).await;
        return;
    }
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.shutdown().await;
}

/// A compact reply, with the mistakes `flaws` says.
fn reply(
    view: &netgrade::servers::tracker::SwarmView,
    ip: std::net::Ipv4Addr,
    port: u16,
    flaws: Flaws,
) -> Vec<u8> {
    let mut peers: Vec<u8> = Vec::new();
    for (_, ip, port) in &view.peers {
        peers.extend(ip.octets());
        peers.extend(port.to_be_bytes());
    }
    if flaws.include_self {
        peers.extend(ip.octets());
        peers.extend(port.to_be_bytes());
    }
    let (complete, incomplete) = if flaws.swapped_counts {
        (view.incomplete, view.complete)
    } else {
        (view.complete, view.incomplete)
    };
    let interval = if flaws.string_interval {
        b"8:interval2:60".to_vec()
    } else {
        b"8:intervali60e".to_vec()
    };
    let mut fields = [
        format!("8:completei{complete}e").into_bytes(),
        format!("10:incompletei{incomplete}e").into_bytes(),
        interval,
        [format!("5:peers{}:", peers.len()).into_bytes(), peers].concat(),
    ];
    if flaws.unsorted {
        fields.reverse();
    }
    [b"d".to_vec(), fields.concat(), b"e".to_vec()].concat()
}

/// The checks a flawed tracker fails, and the report.
async fn failed_checks(flaws: Flaws) -> (Vec<&'static str>, Vec<Outcome>) {
    let (addr, task) = flawed(flaws).await;
    let mut target = Target::new(addr, "/announce", SEED);
    target.limits.head = Duration::from_secs(2);
    target.limits.body = Duration::from_millis(200);
    let outcomes = tracker::run_all(&target, &hashes()).await;
    task.abort();
    eprintln!("{flaws:?}\n{}", show(&outcomes));
    let failed = outcomes
        .iter()
        .filter(|o| o.judgement.is_err())
        .map(|o| o.check)
        .collect();
    (failed, outcomes)
}

fn message_of<'a>(outcomes: &'a [Outcome], check: &str) -> &'a str {
    let o = outcomes.iter().find(|o| o.check == check).unwrap();
    &o.judgement.as_ref().unwrap_err().message
}

#[tokio::test(flavor = "multi_thread")]
async fn unsorted_keys_fail_bencoded_alone() {
    let (failed, outcomes) = failed_checks(Flaws {
        unsorted: true,
        ..Flaws::default()
    })
    .await;
    assert_eq!(failed, ["bencoded"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "bencoded");
    assert!(m.contains("not in canonical form"), "{m}");
    assert!(m.contains("sorted as raw byte strings"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_html_error_page_fails_failure_reason_alone() {
    let (failed, outcomes) = failed_checks(Flaws {
        html_errors: true,
        ..Flaws::default()
    })
    .await;
    assert_eq!(failed, ["failure-reason"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "failure-reason");
    assert!(m.contains("5 of 5 bad announces"), "{m}");
    assert!(m.contains("the body is HTML"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_the_requester_fails_peer_list_alone() {
    let (failed, outcomes) = failed_checks(Flaws {
        include_self: true,
        ..Flaws::default()
    })
    .await;
    assert_eq!(failed, ["peer-list"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "peer-list");
    assert!(m.contains("lists the requesting peer A itself"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn keeping_stopped_peers_fails_events_alone() {
    let (failed, outcomes) = failed_checks(Flaws {
        keep_stopped: true,
        ..Flaws::default()
    })
    .await;
    assert_eq!(failed, ["events"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "events");
    assert!(m.contains("still lists peer B"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_at_a_time_fails_concurrent_announces_alone() {
    let (failed, outcomes) = failed_checks(Flaws {
        serial: true,
        ..Flaws::default()
    })
    .await;
    assert_eq!(failed, ["concurrent-announces"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "concurrent-announces");
    assert!(
        m.contains("of 20 announces sent at once got no usable reply"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_reaches_a_tracker_inside_a_network_namespace() {
    if !common::as_root("a network namespace") {
        return;
    }
    let ns = Arc::new(netgrade::sandbox::NetNs::new().unwrap());
    let (tcp, udp) = ns
        .run(|| {
            let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let udp = std::net::UdpSocket::bind(tcp.local_addr().unwrap()).unwrap();
            tcp.set_nonblocking(true).unwrap();
            udp.set_nonblocking(true).unwrap();
            (tcp, udp)
        })
        .unwrap();
    let addr = tcp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::from_std(tcp).unwrap();
    let udp = tokio::net::UdpSocket::from_std(udp).unwrap();
    let t = Arc::new(Mutex::new(Tracker::new(all_hashes(), 60)));
    let served = (t.clone(), t);
    let http = tokio::spawn(serve(tcp, served.0, Arc::new(|_| {})));
    let bep15 = tokio::spawn(netgrade::servers::tracker::udp::serve(
        udp,
        served.1,
        7,
        Arc::new(|_| {}),
    ));
    let mut target = Target::new(addr, "/announce", SEED);
    target.netns = Some(ns.clone());
    let outcomes = tracker::run_all(&target, &hashes()).await;
    let udp = udp_tracker(addr, Some(&ns), udp_hash(), SEED, Retry::default()).await;
    http.abort();
    bep15.abort();
    assert!(
        outcomes.iter().all(|o| o.judgement.is_ok()),
        "{}",
        show(&outcomes)
    );
    assert!(udp.judgement.is_ok(), "{udp:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn swapped_counts_fail_events_alone() {
    let flaws = Flaws {
        swapped_counts: true,
        ..Flaws::default()
    };
    let (failed, outcomes) = failed_checks(flaws).await;
    assert_eq!(failed, ["events"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "events");
    assert!(m.contains("`complete` is 3 (want 0)"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_written_as_a_string_fails_interval_alone() {
    let flaws = Flaws {
        string_interval: true,
        ..Flaws::default()
    };
    let (failed, outcomes) = failed_checks(flaws).await;
    assert_eq!(failed, ["interval"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "interval");
    assert!(
        m.contains("`interval` is a byte string, not an integer"),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refusing_compact_0_fails_peer_list_alone() {
    let flaws = Flaws {
        compact_only: true,
        ..Flaws::default()
    };
    let (failed, outcomes) = failed_checks(flaws).await;
    assert_eq!(failed, ["peer-list"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "peer-list");
    assert!(m.contains("D's announce (compact=0)"), "{m}");
    assert!(m.contains("BEP 23"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reply_that_never_ends_fails_bencoded_alone() {
    let flaws = Flaws {
        no_length: true,
        ..Flaws::default()
    };
    let (failed, outcomes) = failed_checks(flaws).await;
    assert_eq!(failed, ["bencoded"], "{}", show(&outcomes));
    let m = message_of(&outcomes, "bencoded");
    assert!(
        m.contains("the reply never ended: it has no Content-Length"),
        "{m}"
    );
}

/// A BEP 15 tracker on the reference logic that takes any connection id
/// (`any_id`) or answers with the transaction id zeroed (`lose_tid`).
async fn flawed_udp(any_id: bool, lose_tid: bool) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use netgrade::servers::tracker::udp::{connection_id, handle};
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let t = Mutex::new(Tracker::new(all_hashes(), 60));
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut req = buf[..n].to_vec();
            if any_id && req.len() >= 16 && req[8..12] != [0, 0, 0, 0] {
                req[..8].copy_from_slice(&connection_id(7, from).to_be_bytes());
            }
            if let (Some(mut reply), _) = handle(&t, 7, from, &req) {
                if lose_tid {
                    reply[4..8].fill(0);
                }
                let _ = socket.send_to(&reply, from).await;
            }
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_udp_tracker_that_takes_any_connection_id_fails() {
    let (addr, task) = flawed_udp(true, false).await;
    let udp = udp_tracker(addr, None, udp_hash(), SEED, Retry::default()).await;
    task.abort();
    let f = udp.judgement.unwrap_err();
    assert!(
        f.message.contains("a connection id never given"),
        "{}",
        f.message
    );
    assert!(f.message.contains("instead of an error"), "{}", f.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_udp_tracker_that_drops_the_transaction_id_fails() {
    let (addr, task) = flawed_udp(false, true).await;
    let retry = Retry {
        base: Duration::from_millis(50),
        tries: 2,
    };
    let udp = udp_tracker(addr, None, udp_hash(), SEED, retry).await;
    task.abort();
    let f = udp.judgement.unwrap_err();
    assert!(
        f.message.contains("none with the request's transaction id"),
        "{}",
        f.message
    );
}
