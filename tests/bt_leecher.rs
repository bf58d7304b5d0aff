//! The reference leecher against real BitTorrent seeders nobody here wrote:
//! aria2c and libtorrent (Debian's python3-libtorrent) seed a file on
//! loopback, and the leecher must end with every piece verified, byte for
//! byte, after a valid handshake and a right bitfield.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netgrade::servers::peer::leecher::{End, LeechPlan, LeechReport, leech};
use netgrade::torrent::Metainfo;
use netgrade::trace::{Dir, EventKind, Recorder};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bt/libtorrent_seed.py");

/// A child killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deterministic data of `len` bytes (a xorshift stream: no two pieces alike).
fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The file `share.bin` of `len` bytes in `dir`, its torrent (16 KiB pieces,
/// a tracker nobody listens on) and a plan to fetch it all.
fn setup(dir: &Path, len: usize) -> (std::path::PathBuf, LeechPlan) {
    let bytes = data(len);
    let file = dir.join("share.bin");
    std::fs::write(&file, &bytes).unwrap();
    let meta = netgrade::torrent::make(&file, 16384, "http://127.0.0.1:1/announce").unwrap();
    let torrent = dir.join("share.torrent");
    meta.write(&torrent).unwrap();
    let meta = Metainfo::read(&torrent).unwrap();
    let mut plan = LeechPlan::for_torrent("leech", &meta).unwrap();
    plan.expected = Some(Arc::new(bytes));
    plan.wait = Duration::from_secs(20);
    plan.deadline = Duration::from_secs(60);
    (torrent, plan)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// aria2c seeding `torrent` from `dir` on `port`, loopback only.
fn aria2c(torrent: &Path, dir: &Path, port: u16) -> Killed {
    let child = Command::new("aria2c")
        .args([
            "--no-conf",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--console-log-level=warn",
            "--summary-interval=0",
            "--seed-ratio=0.0",
            "--check-integrity=true",
            "--bt-seed-unverified=true",
        ])
        .arg(format!("--listen-port={port}"))
        .arg("-d")
        .arg(dir)
        .arg(torrent)
        .arg(format!("--log={}", dir.join("aria2c.log").display()))
        .arg("--log-level=notice")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aria2c runs (install aria2)");
    Killed(child)
}

/// libtorrent seeding `torrent` from `dir`; the port it listens on.
fn libtorrent(torrent: &Path, dir: &Path) -> (Killed, u16) {
    let mut child = Command::new("/usr/bin/python3")
        .arg(SEED)
        .arg(torrent)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (install python3-libtorrent)");
    let out = BufReader::new(child.stdout.take().unwrap());
    let child = Killed(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("libtorrent seeds within 30 s");
    (child, line.trim().parse().unwrap())
}

/// aria2c seeding `torrent` from `dir`, and where it listens. A port free
/// when picked may be taken before aria2c binds it (by any connection's
/// local port); aria2c then logs so and listens on IPv6 only, and another
/// port is tried.
async fn aria2c_seeding(torrent: &Path, dir: &Path) -> (Killed, SocketAddr) {
    let log = dir.join("aria2c.log");
    for _ in 0..3 {
        let port = free_port();
        let child = aria2c(torrent, dir, port);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return (child, addr);
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(&format!("failed to bind TCP port {port}")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let log = std::fs::read_to_string(&log);
    panic!("aria2c never listened on 127.0.0.1; its log: {log:?}");
}

/// Waits until something listens on `port`.
async fn listening(port: u16) -> SocketAddr {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let end = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < end, "nothing listens on {port} after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    addr
}

/// What every good seeder's session shows.
fn assert_whole_file(r: &LeechReport, plan: &LeechPlan) {
    assert_eq!(r.end, End::Completed, "{}: {:?}", r.end, r.deviations);
    assert!(r.complete(), "{r:#?}");
    let hs = r.handshake.as_ref().unwrap();
    assert_eq!(r.handshake_raw.len(), 68);
    assert_eq!(&r.handshake_raw[..20], b"\x13BitTorrent protocol");
    assert_eq!(hs.info_hash, plan.info_hash);
    let pieces = plan.piece_count();
    let all: Vec<u32> = (0..pieces).collect();
    assert_eq!(r.has, all);
    assert_eq!(r.verified(), all);
    let bits = &r.bitfield.as_ref().expect("a bitfield").bits;
    assert_eq!(bits.len(), pieces.div_ceil(8) as usize);
    assert!(r.bitfield.as_ref().unwrap().first, "bitfield first");
    let received: u64 = r.blocks.iter().map(|b| b.length as u64).sum();
    assert_eq!(received, plan.total_length);
    assert!(r.blocks.iter().all(|b| b.matches == Some(true)));
    assert_eq!(r.deviations, []);
}

fn count(rec: &Recorder, dir: Dir, name: &str) -> usize {
    rec.snapshot()
        .events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::PeerMessage { dir: d, name: n, .. } if *d == dir && n == name))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_a_file_from_aria2c() {
    let dir = tempfile::tempdir().unwrap();
    // 100000 bytes: 6 pieces of 16 KiB and a short one.
    let (torrent, plan) = setup(dir.path(), 100_000);
    let (_aria2c, addr) = aria2c_seeding(&torrent, dir.path()).await;
    let rec = Recorder::new();
    let r = leech(addr, &plan, &rec).await;
    assert_whole_file(&r, &plan);
    assert_eq!(r.blocks.len(), 7);
    assert_eq!(count(&rec, Dir::In, "piece"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_a_file_from_libtorrent() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, plan) = setup(dir.path(), 20 * 16384 + 777);
    let (_seeder, port) = libtorrent(&torrent, dir.path());
    let rec = Recorder::new();
    let r = leech(listening(port).await, &plan, &rec).await;
    assert_whole_file(&r, &plan);
    assert_eq!(r.blocks.len(), 21);
    assert_eq!(count(&rec, Dir::Out, "request"), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_goes_on_serving_after_a_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, plan) = setup(dir.path(), 8 * 16384);
    let (_seeder, port) = libtorrent(&torrent, dir.path());
    let plan = LeechPlan {
        cancel: true,
        ..plan
    };
    let r = leech(listening(port).await, &plan, &Recorder::new()).await;
    assert_whole_file(&r, &plan);
    let c = r.cancel.unwrap();
    assert_eq!(c.block, (0, 0, 16384));
    // Whether the block came anyway is the race BEP 3 allows; the others
    // must all come after the cancel.
    assert!(c.served_after >= 7, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aria2c_serves_the_pieces_asked_for_after_a_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let (torrent, plan) = setup(dir.path(), 100_000);
    let (_aria2c, addr) = aria2c_seeding(&torrent, dir.path()).await;
    let plan = LeechPlan {
        pieces: Some(vec![1, 3, 6]),
        cancel: true,
        ..plan
    };
    let r = leech(addr, &plan, &Recorder::new()).await;
    assert!(r.complete(), "{}: {:?}", r.end, r.deviations);
    assert_eq!(r.verified(), [1, 3, 6]);
    assert_eq!(r.has, (0..7).collect::<Vec<_>>());
    let c = r.cancel.unwrap();
    assert_eq!(c.block, (1, 0, 16384));
    assert!(c.served_after >= 2, "{c:?}");
    assert_eq!(r.deviations, []);
}
