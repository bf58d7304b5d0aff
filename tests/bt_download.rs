//! The `bt-download` lab graded for real: the reference client gets full
//! marks; each common mistake loses the checks it deserves to lose, with a
//! message that names the request, piece or announce at fault; hostile
//! clients (a flood of connections, garbage, a client that never ends) are
//! contained and told what they did; the lab's side of a run is the same
//! every time.

mod common;

use common::*;

const LAB: &str = "bt-download";

const CHECKS: [&str; 13] = [
    "runs",
    "announce",
    "handshake",
    "interested-before-request",
    "respects-choke",
    "requests-blocks",
    "file-exact",
    "completed-event",
    "verifies-pieces",
    "survives-peer-loss",
    "multiple-peers",
    "pipelining",
    "rarest-first",
];

/// The checks after the announce: not judged when the announce failed.
const AFTER_ANNOUNCE: [&str; 11] = [
    "handshake",
    "interested-before-request",
    "respects-choke",
    "requests-blocks",
    "file-exact",
    "completed-event",
    "verifies-pieces",
    "survives-peer-loss",
    "multiple-peers",
    "pipelining",
    "rarest-first",
];

/// fixture → checks that must fail; `None`: every other check passes;
/// `Some(list)`: these must pass (the rest follow from the mistake).
const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    // Announces to a public tracker it hard-coded: steered to the lab's.
    ("fixed-tracker", &[], None),
    ("sequential", &["pipelining", "rarest-first"], None),
    ("no-sha1", &["verifies-pieces"], None),
    ("exact-multiple", &["file-exact"], None),
    ("zero-peer-id", &["announce"], None),
    ("no-completed", &["completed-event"], None),
    ("dead-peer-abort", &["survives-peer-loss"], None),
    // Hangs on a `have` in the middle of a batch: the swarm's download.
    ("have-hang", &["file-exact"], None),
    (
        "no-interested",
        &["interested-before-request"],
        Some(&["announce", "handshake", "requests-blocks"]),
    ),
    (
        "whole-piece",
        &["requests-blocks"],
        Some(&["announce", "handshake", "interested-before-request"]),
    ),
    // Port 6881 (0x1ae1) does not survive a reply read as text.
    (
        "text-tracker",
        &["handshake"],
        Some(&["runs", "announce", "file-exact"]),
    ),
    // A message that comes in two segments is misread: the program fails
    // outright, charged by `runs`; what builds on a download is not judged.
    ("raw-recv", &["runs"], Some(&["announce", "handshake"])),
    ("hex-info-hash", &["announce"], Some(&[])),
    // Hostile.
    ("garbage", &["handshake"], Some(&["runs", "announce"])),
    ("flood", &["runs", "handshake"], Some(&["announce"])),
    ("never-ends", &["runs", "handshake"], Some(&["announce"])),
];

/// A child killed when the test ends, however it ends.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Lines = std::io::Lines<std::io::BufReader<std::process::ChildStdout>>;

/// `netgrade serve --lab LAB` in `cwd`, once it has printed the line that
/// starts with `last` (the lines so far); what it prints next comes
/// through the lines.
fn serve_lab(
    lab: &std::path::Path,
    cwd: &std::path::Path,
    last: &str,
) -> (Kill, Vec<String>, Lines) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netgrade"))
        .args(["serve", "--lab"])
        .arg(lab)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let child = Kill(child);
    let mut lines = std::io::BufReader::new(out).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.starts_with(last);
        seen.push(line);
        if done {
            return (child, seen, lines);
        }
    }
    panic!("`netgrade serve --lab` ended before printing `{last}…`: {seen:?}");
}

/// The bt-download lab written into `dir` with every port moved up by
/// `by`, so that a test serves it beside anything else. Ports stay below
/// Linux's ephemeral range (32768–60999): a port there may be any
/// connection's local end at that moment.
fn moved_lab(dir: &std::path::Path, by: u32) -> std::path::PathBuf {
    let yaml = std::fs::read_to_string(root().join("labs/bt-download.yaml")).unwrap();
    let lab = dir.join("lab.yaml");
    let moved = regex::Regex::new(r"port: (\d+)")
        .unwrap()
        .replace_all(&yaml, |c: &regex::Captures| {
            format!("port: {}", c[1].parse::<u32>().unwrap() + by)
        });
    std::fs::write(&lab, moved.as_ref()).unwrap();
    lab
}

fn fixture(name: &str) -> String {
    format!("fixtures/bt-download/{name}")
}

#[test]
fn every_bt_download_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bt-download.json");
    netgrade()
        .args([
            "run",
            LAB,
            "-j",
            "4",
            "--quiet",
            "--time-limit",
            "8s",
            "--json",
        ])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    let fixed = run_of(&report, &fixture("fixed-tracker"));
    assert!(
        fixed["notes"]
            .to_string()
            .contains("connected to tracker.opentrackr.org:1337"),
        "{fixed}"
    );
    let hex = run_of(&report, &fixture("hex-info-hash"));
    for id in AFTER_ANNOUNCE {
        assert_eq!(status(hex, id), "skip", "hex-info-hash/{id}: {hex}");
    }
    assert_eq!(status(hex, "runs"), "skip", "{hex}");
    for (name, id) in [
        ("raw-recv", "file-exact"),
        ("raw-recv", "verifies-pieces"),
        ("raw-recv", "survives-peer-loss"),
        ("whole-piece", "file-exact"),
        ("whole-piece", "survives-peer-loss"),
        ("no-interested", "respects-choke"),
        ("text-tracker", "verifies-pieces"),
    ] {
        let run = run_of(&report, &fixture(name));
        assert_eq!(status(run, id), "skip", "{name}/{id}: {run}");
    }
    for (name, id, needle) in [
        (
            "hex-info-hash",
            "announce",
            "info_hash is 40 bytes, not 20 (40 hex digits)",
        ),
        (
            "zero-peer-id",
            "announce",
            "the peer_id is 20 bytes of 0x00",
        ),
        (
            "exact-multiple",
            "file-exact",
            "though every one of the 8 pieces reached it (262144 bytes is exactly 8 × 32768",
        ),
        (
            "whole-piece",
            "requests-blocks",
            "32768 bytes at once: peers serve blocks of at most 16384 bytes",
        ),
        (
            "no-sha1",
            "verifies-pieces",
            "came from liar with a byte flipped, and went into downloaded.bin",
        ),
        (
            "dead-peer-abort",
            "survives-peer-loss",
            "dropper closed connection",
        ),
        (
            "no-interested",
            "interested-before-request",
            "with no interested before it",
        ),
        ("sequential", "pipelining", "never more than one request"),
        (
            "sequential",
            "rarest-first",
            "first pieces asked on each connection",
        ),
        (
            "no-completed",
            "completed-event",
            "no announce said event=completed",
        ),
        ("garbage", "handshake", "bad handshake: byte 0"),
        (
            "flood",
            "handshake",
            "connections the program opened to the lab's peers",
        ),
        ("never-ends", "runs", "still running at the time limit"),
        (
            "text-tracker",
            "handshake",
            "connected to none of the peers the tracker listed",
        ),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

/// A client with another command line (`client.py download -o OUT
/// TORRENT`): as handed in it gets a usage error, charged by `runs` alone;
/// `--cmd` with each case's arguments reordered grades its download.
#[test]
fn a_client_with_its_own_command_line_is_graded_through_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("subcommand.json");
    netgrade()
        .args(["run", LAB, "--quiet", "--time-limit", "8s", "--json"])
        .arg(&json)
        .arg(fixture("subcommand"))
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(status(run, "runs"), "fail", "{run}");
    let m = message(&report, &fixture("subcommand"), "runs");
    assert!(m.contains("status 2"), "{m}");
    assert!(
        run.to_string().contains("invalid choice: 'single.torrent'"),
        "{run}"
    );
    for id in AFTER_ANNOUNCE {
        assert_ne!(status(run, id), "pass", "{id}: {run}");
    }
    netgrade()
        .args(["run", LAB, "--quiet", "--time-limit", "8s", "--cmd"])
        .arg("python3 {entry} download -o {arg2} {arg1}")
        .arg("--json")
        .arg(&json)
        .arg(fixture("subcommand"))
        .assert()
        .code(0);
    let report = read_json(&json);
    let run = &report["runs"][0];
    for id in CHECKS {
        assert_eq!(status(run, id), "pass", "{id}: {run}");
    }
    assert_eq!(
        run["cases"][4]["program"]["command"],
        serde_json::json!([
            "python3",
            "client.py",
            "download",
            "-o",
            "downloaded.bin",
            "swarm.torrent"
        ]),
        "{run}"
    );
}

#[test]
fn the_lab_side_of_a_run_is_the_same_every_time() {
    // `sequential` asks in a fixed order: everything but its random
    // peer_id is netgrade's (torrents, corrupted bytes, pieces, haves).
    let transcript = |dir: &std::path::Path| {
        netgrade()
            .args(["run", LAB, &fixture("sequential"), "--quiet", "--snapshots"])
            .arg(dir)
            .assert()
            .code(1);
        let text =
            std::fs::read_to_string(dir.join("fixtures_bt-download_sequential.txt")).unwrap();
        let peer_id = regex::Regex::new(r"peer_id=\S+").unwrap();
        peer_id.replace_all(&text, "peer_id=<id>").into_owned()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (first, second) = (transcript(a.path()), transcript(b.path()));
    assert_eq!(first, second);
    for needle in [
        "== case swarm:",
        "== tracker (tracker, TCP 127.0.0.1:6969) ==",
        "announce info_hash=74a2434efcb362ce042a47666aa3bab7fb06596e peer_id=<id> port=6881",
        "event=completed",
        "corrupted-on-purpose: piece 0 byte",
        "piece (cut)",
        "conn 1 -> request 9/0/5088",
    ] {
        assert!(first.contains(needle), "{needle}\n{first}");
    }
}

#[test]
fn serve_runs_the_swarm_and_writes_the_torrents() {
    let dir = tempfile::tempdir().unwrap();
    // Ports of their own, so that the test runs beside anything else.
    let lab = moved_lab(dir.path(), 11000);
    let (child, seen, mut lines) = serve_lab(&lab, dir.path(), "delta:");
    assert!(
        seen.contains(&"wrote single.torrent".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l == "tracker: tracker on TCP 127.0.0.1:17969"),
        "{seen:?}"
    );
    let client = std::process::Command::new("python3")
        .arg(root().join("fixtures/bt-download/reference/client.py"))
        .args(["swarm.torrent", "out.bin"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("out.bin")).unwrap().len(),
        1 << 20
    );
    // What it printed: the announces and the peers' messages.
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("event=completed");
        printed.push(line);
        if done {
            break;
        }
    }
    assert!(
        printed
            .iter()
            .any(|l| l.starts_with("alpha: conn 1 <- bitfield")),
        "{printed:?}"
    );
    drop(child);
}

#[test]
fn libtorrent_downloads_a_multi_file_torrent_from_a_labs_peers() {
    let dir = tempfile::tempdir().unwrap();
    // A lab whose torrent is a folder of its data: three files, the middle
    // one shorter than a block, pieces spanning the files.
    let album = dir.path().join("data/album");
    std::fs::create_dir_all(album.join("disc")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "a.txt",
            (0..40000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("disc/b.txt", b"five!".to_vec()),
        (
            "c.bin",
            (0..70000u32).map(|i| (i * 13 % 241) as u8).collect(),
        ),
    ];
    for (p, bytes) in &files {
        std::fs::write(album.join(p), bytes).unwrap();
    }
    let lab = dir.path().join("album.yaml");
    std::fs::write(
        &lab,
        "name: album\ntitle: A multi-file torrent\ndata: data\n\
         torrents:\n  - { name: album, path: album, piece_length: 16384 }\n\
         servers:\n  - { name: tracker, kind: tracker, port: 27971 }\n\
         \x20 - { name: left, kind: peer, port: 27972, has: [0, 1, 2, 3] }\n\
         \x20 - { name: right, kind: peer, port: 27973, has: [4, 5, 6] }\n\
         program:\n  entry: [client.py]\n\
         checks:\n  - { id: runs, title: r, points: 1 }\n",
    )
    .unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let (_child, _, _lines) = serve_lab(&lab, &work, "right:");
    let got = dir.path().join("got");
    std::fs::create_dir_all(&got).unwrap();
    let client = std::process::Command::new("/usr/bin/python3")
        .arg(root().join("tests/bt/libtorrent_client.py"))
        .arg("track")
        .arg(work.join("album.torrent"))
        .arg(&got)
        .output()
        .expect("python3-libtorrent");
    assert!(
        client.status.success(),
        "{}{}",
        String::from_utf8_lossy(&client.stdout),
        String::from_utf8_lossy(&client.stderr)
    );
    for (p, bytes) in &files {
        assert_eq!(
            &std::fs::read(got.join("album").join(p)).unwrap(),
            bytes,
            "{p}"
        );
    }
}

#[test]
fn aria2c_and_ctorrent_download_from_the_labs_peers_through_its_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let lab = moved_lab(dir.path(), 12000);
    let (_child, _, mut lines) = serve_lab(&lab, dir.path(), "delta:");
    // Keep reading what it prints, so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let run = |what: &str, mut cmd: std::process::Command, limit: u64| {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut child = Kill(child);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(limit);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                assert!(status.success(), "{what}: {status}");
                return;
            }
            assert!(std::time::Instant::now() < end, "{what} still running");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let aria = dir.path().join("aria2c");
    for torrent in ["swarm.torrent", "liars.torrent", "vanishing.torrent"] {
        let mut cmd = std::process::Command::new("aria2c");
        cmd.args([
            "--no-conf",
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--seed-time=0",
            "--listen-port=19101",
        ])
        .arg("-d")
        .arg(&aria)
        .arg(dir.path().join(torrent));
        run(&format!("aria2c {torrent}"), cmd, 60);
    }
    // ctorrent keeps one connection per address: each lab peer has its own.
    let ct = dir.path().join("ctorrent");
    std::fs::create_dir_all(&ct).unwrap();
    let mut cmd = std::process::Command::new("ctorrent");
    cmd.args(["-e", "0", "-p", "19102"])
        .arg(dir.path().join("swarm.torrent"))
        .current_dir(&ct)
        .stdin(std::process::Stdio::null());
    run("ctorrent", cmd, 90);
    let a = std::fs::read(aria.join("swarm.bin")).unwrap();
    assert_eq!(a.len(), 1 << 20);
    assert_eq!(a, std::fs::read(ct.join("swarm.bin")).unwrap());
    // aria2c got past the liar and the dropper: whole files (it checks
    // every piece itself before it says it is done).
    assert_eq!(
        std::fs::metadata(aria.join("liars.bin")).unwrap().len(),
        200000
    );
    assert_eq!(
        std::fs::metadata(aria.join("vanishing.bin")).unwrap().len(),
        600000
    );
}
