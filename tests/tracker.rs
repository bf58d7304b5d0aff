//! `netgrade serve tracker` with real BitTorrent clients: an aria2c seeder
//! and an aria2c leecher find each other through the reference tracker on
//! loopback only (no DHT, local peer discovery or peer exchange), and the
//! download is the seeder's file byte for byte.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Std, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// A child killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn make(path: &Path, announce: &str, out: &Path) {
    let o = netgrade()
        .args(["torrent", "make"])
        .arg(path)
        .args(["--piece-length", "16384", "--announce", announce, "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The real binary, for a child whose output is read as it comes.
fn netgrade_child() -> Std {
    Std::new(assert_cmd::cargo::cargo_bin("netgrade"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn aria2c(torrent: &Path, dir: &Path, port: u16, extra: &[&str]) -> Std {
    let mut c = Std::new("aria2c");
    c.args([
        "--no-conf",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--seed-ratio=0.0",
    ])
    .arg(format!("--listen-port={port}"))
    .arg("-d")
    .arg(dir)
    .args(extra)
    .arg(torrent)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// The child's exit status, or a failed test if it is still running after `limit`.
fn wait_at_most(child: Child, limit: Duration) -> std::process::ExitStatus {
    let mut child = Killed(child);
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < end, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines the tracker prints, until `done` holds of all of them or the deadline.
fn lines_until(
    rx: &mpsc::Receiver<String>,
    deadline: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let end = Instant::now() + deadline;
    let mut lines = Vec::new();
    while !done(&lines) {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    lines
}

#[test]
fn aria2c_downloads_from_an_aria2c_seeder_through_the_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, leech) = (dir.path().join("seed"), dir.path().join("leech"));
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::create_dir_all(&leech).unwrap();
    // 100000 bytes: 6 whole pieces and a short one.
    let data: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(seed.join("a.bin"), &data).unwrap();
    let first = dir.path().join("first.torrent");
    make(&seed.join("a.bin"), "http://127.0.0.1:1/announce", &first);

    let mut tracker = netgrade_child()
        .args([
            "serve",
            "tracker",
            "--port",
            "0",
            "--interval",
            "5",
            "--torrent",
        ])
        .arg(&first)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(tracker.stdout.take().unwrap());
    let tracker = Killed(tracker);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let banner = rx.recv_timeout(Duration::from_secs(20)).expect("a banner");
    let url = banner
        .split("announce URL ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no announce URL in {banner}"))
        .to_string();
    // The same info dictionary, so the same info_hash, announcing to it.
    let torrent = dir.path().join("a.torrent");
    make(&seed.join("a.bin"), &url, &torrent);

    let (seed_port, leech_port) = (free_port(), free_port());
    let _seeder = Killed(
        aria2c(&torrent, &seed, seed_port, &["-V", "--seed-time=2"])
            .spawn()
            .expect("aria2c (aria2)"),
    );
    let seeded = format!("port={seed_port} uploaded=0 downloaded=0 left=0 event=started");
    let mut lines = lines_until(&rx, Duration::from_secs(30), |l| {
        l.iter().any(|l| l.contains(&seeded))
    });
    assert!(lines.iter().any(|l| l.contains(&seeded)), "{lines:#?}");

    // The leecher seeds 3 s after it completes, so it announces `completed`.
    let leecher = aria2c(&torrent, &leech, leech_port, &["--seed-time=0.05"])
        .spawn()
        .unwrap();
    let status = wait_at_most(leecher, Duration::from_secs(90));
    assert!(status.success(), "aria2c leecher: {status}");
    assert_eq!(std::fs::read(leech.join("a.bin")).unwrap(), data);

    let leeched = format!("port={leech_port} uploaded=0 downloaded=0 left=100000 event=started");
    let completed =
        format!("port={leech_port} uploaded=0 downloaded=100000 left=0 event=completed");
    let stopped = format!("port={leech_port} ");
    lines.extend(lines_until(&rx, Duration::from_secs(10), |l| {
        l.iter()
            .any(|l| l.contains(&stopped) && l.contains("event=stopped"))
    }));
    let has = |s: &str| lines.iter().find(|l| l.contains(s)).cloned();
    let started = has(&leeched).unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        started.ends_with("-> 1 peers"),
        "the leecher is told of the seeder: {started}"
    );
    assert!(has(&completed).is_some(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&stopped) && l.contains("event=stopped")),
        "{lines:#?}"
    );
    drop(tracker);
}

/// The tracker's two announce URLs from its banner: HTTP and UDP.
fn urls(rx: &mpsc::Receiver<String>) -> (String, String) {
    let banner = rx.recv_timeout(Duration::from_secs(20)).expect("a banner");
    let http = banner
        .split("announce URL ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no announce URL in {banner}"))
        .to_string();
    let udp_line = rx.recv_timeout(Duration::from_secs(5)).expect("a UDP line");
    let udp = udp_line
        .split("announce URL ")
        .nth(1)
        .unwrap_or_else(|| panic!("no UDP tracker: {udp_line}"))
        .to_string();
    (http, udp)
}

#[test]
fn libtorrent_finds_an_aria2c_seeder_through_the_udp_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, leech) = (dir.path().join("seed"), dir.path().join("leech"));
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::create_dir_all(&leech).unwrap();
    let data: Vec<u8> = (0..70_000u32)
        .map(|i| (i.wrapping_mul(2246822519) >> 11) as u8)
        .collect();
    std::fs::write(seed.join("b.bin"), &data).unwrap();
    let first = dir.path().join("first.torrent");
    make(&seed.join("b.bin"), "http://127.0.0.1:1/announce", &first);
    let mut tracker = netgrade_child()
        .args([
            "serve",
            "tracker",
            "--port",
            "0",
            "--interval",
            "5",
            "--torrent",
        ])
        .arg(&first)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(tracker.stdout.take().unwrap());
    let tracker = Killed(tracker);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (http, udp) = urls(&rx);
    assert!(udp.starts_with("udp://127.0.0.1:"), "{udp}");
    // The same info dictionary: aria2c announces over HTTP, libtorrent over UDP.
    let (over_http, over_udp) = (dir.path().join("h.torrent"), dir.path().join("u.torrent"));
    make(&seed.join("b.bin"), &http, &over_http);
    make(&seed.join("b.bin"), &udp, &over_udp);
    let seed_port = free_port();
    let _seeder = Killed(
        aria2c(&over_http, &seed, seed_port, &["-V", "--seed-time=2"])
            .spawn()
            .expect("aria2c (aria2)"),
    );
    let seeded = format!("port={seed_port} uploaded=0 downloaded=0 left=0 event=started");
    let mut lines = lines_until(&rx, Duration::from_secs(30), |l| {
        l.iter().any(|l| l.contains(&seeded))
    });
    assert!(lines.iter().any(|l| l.contains(&seeded)), "{lines:#?}");
    let client = Std::new("/usr/bin/python3")
        .arg(root().join("tests/bt/libtorrent_client.py"))
        .arg("track")
        .arg(&over_udp)
        .arg(&leech)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3-libtorrent");
    let done = Killed(client);
    let status = {
        let mut done = done;
        let end = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(s) = done.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "libtorrent still running after 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(status.success(), "libtorrent: {status}");
    assert_eq!(std::fs::read(leech.join("b.bin")).unwrap(), data);
    // Its announce came over UDP: no HTTP target, so no `numwant` of 50 …
    // but the tracker printed it like any other, and told it of the seeder.
    lines.extend(lines_until(&rx, Duration::from_secs(2), |_| false));
    let leeched = lines
        .iter()
        .find(|l| l.contains("left=70000 event=started"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(leeched.ends_with("-> 1 peers"), "{leeched}");
    drop(tracker);
}

#[test]
fn bad_announces_get_a_failure_reason_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    std::fs::write(&file, b"x").unwrap();
    let torrent = dir.path().join("x.torrent");
    make(&file, "http://127.0.0.1:1/announce", &torrent);
    let mut child = netgrade_child()
        .args(["serve", "tracker", "--port", "0", "--torrent"])
        .arg(&torrent)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _child = Killed(child);
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    let url = banner
        .split("announce URL ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap();
    let get = |query: &str| {
        let o = Std::new("curl")
            .args(["-s", "--max-time", "10", &format!("{url}?{query}")])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let id = "peer_id=-XX0000-000000000000";
    assert_eq!(
        get(&format!("info_hash=abc&{id}&port=1")),
        "d14:failure reason28:info_hash is 3 bytes, not 20e"
    );
    let unknown = format!("info_hash={}&{id}&port=1", "%AA".repeat(20));
    assert_eq!(get(&unknown), "d14:failure reason15:unknown torrente");
    assert_eq!(
        get(&format!("info_hash={}&{id}", "%AA".repeat(20))),
        "d14:failure reason12:missing porte"
    );
    let mut udp = String::new();
    out.read_line(&mut udp).unwrap();
    assert!(udp.starts_with("and on UDP 127.0.0.1:"), "{udp}");
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(
        line.ends_with("-> failure: info_hash is 3 bytes, not 20\n"),
        "{line}"
    );
}

#[test]
fn garbage_and_floods_get_400_and_the_tracker_goes_on() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x");
    std::fs::write(&file, b"x").unwrap();
    let torrent = dir.path().join("x.torrent");
    make(&file, "http://127.0.0.1:1/announce", &torrent);
    let mut child = netgrade_child()
        .args(["serve", "tracker", "--port", "0", "--torrent"])
        .arg(&torrent)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _child = Killed(child);
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    let at = banner
        .split("TCP ")
        .nth(1)
        .and_then(|s| s.split(':').nth(1))
        .unwrap();
    let addr = format!("127.0.0.1:{at}");
    let exchange = |bytes: &[u8]| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(bytes);
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply).into_owned()
    };
    let flood = vec![b'A'; 64 * 1024];
    let reply = exchange(&flood);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.ends_with("request head longer than 8192 bytes"),
        "{reply}"
    );
    let reply = exchange(b"\x00\xff garbage\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let reply = exchange(b"GET /scrape HTTP/1.1\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    let reply = exchange(b"GET /announce?port=1 HTTP/1.1\r\n\r\n");
    assert!(
        reply.ends_with("d14:failure reason17:missing info_hashe"),
        "{reply}"
    );
}
