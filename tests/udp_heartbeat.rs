//! The `udp-heartbeat-client` lab graded for real: netgrade's echo server
//! loses the replies to heartbeats 3 and 9; each fixture gets the verdict
//! an expert would give, differently-right clients included.

mod common;

use common::*;

const LAB: &str = "udp-heartbeat-client";

const CHECKS: [&str; 3] = ["stops", "sends-heartbeats", "no-hang-on-loss"];

const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: ctime, counting from 0 with milliseconds, a sleep
    // after each exchange (paced, never blocked).
    ("ctime", &[], None),
    ("from-zero", &[], None),
    ("sleep-after-reply", &[], None),
    ("burst", &["sends-heartbeats"], None),
    ("no-timestamp", &["sends-heartbeats"], None),
    ("time-once", &["sends-heartbeats"], None),
    // Hangs in recvfrom on the first lost reply: charged once.
    (
        "blocking",
        &["no-hang-on-loss"],
        Some(&["sends-heartbeats"]),
    ),
];

fn fixture(name: &str) -> String {
    format!("fixtures/{LAB}/{name}")
}

#[test]
fn every_heartbeat_client_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("heartbeat.json");
    netgrade()
        .args(["run", LAB, "-j", "8", "--quiet", "--json"])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    let blocking = run_of(&report, &fixture("blocking"));
    assert_eq!(status(blocking, "stops"), "skip", "{blocking}");
    for (name, id, needle) in [
        (
            "blocking",
            "no-hang-on-loss",
            "the reply to heartbeat 3 was lost, and nothing more came for",
        ),
        (
            "burst",
            "sends-heartbeats",
            "ms after the one before; heartbeats go out every 1000 ms",
        ),
        (
            "no-timestamp",
            "sends-heartbeats",
            "has no timestamp the server can read",
        ),
        (
            "time-once",
            "sends-heartbeats",
            "'s timestamp is 0.000 s after the one before",
        ),
        (
            "reference",
            "no-hang-on-loss",
            "after heartbeat 3 (reply lost) the next came",
        ),
        (
            "from-zero",
            "sends-heartbeats",
            "10 heartbeats, sequence 0 to 9",
        ),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

/// Same seed, same transcript: the drops and delays are the lab's, and the
/// client's own times are masked.
#[test]
fn the_same_seed_gives_the_same_transcript() {
    let transcript = || {
        let dir = tempfile::tempdir().unwrap();
        netgrade()
            .args(["run", LAB, "--quiet", "--snapshots"])
            .arg(dir.path())
            .arg(fixture("reference"))
            .assert()
            .code(0);
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        std::fs::read_to_string(file.path()).unwrap()
    };
    let (first, second) = (transcript(), transcript());
    assert_eq!(first, second);
    assert!(
        first.contains("#3   -> \"3 <time>\"\n#3      dropped"),
        "{first}"
    );
}

/// The server side: netgrade's client sends heartbeats 1 to 12 every half
/// second (4, 8 and 9 lost), each timestamp backdated by its seeded one-way
/// delay, falls silent for 6 s, then a second client sends 1 to 3.
const SERVER_LAB: &str = "udp-heartbeat-server";

const SERVER_CHECKS: [&str; 4] = [
    "keeps-running",
    "reports-lost",
    "one-way-delay",
    "detects-stop",
];

const SERVER_EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: delays in ms, lost ranges `8-9`, "client is dead"
    // after three one-second timeouts.
    ("ms-and-ranges", &[], None),
    ("count-only", &["reports-lost"], None),
    ("delay-whole", &["one-way-delay"], None),
    ("inter-arrival", &["one-way-delay"], None),
    ("short-timeout", &["detects-stop"], None),
    ("no-timeout", &["detects-stop"], None),
    ("exits-on-stop", &["keeps-running"], None),
    // A NameError under a bare `except:`: no delay is ever printed, and
    // nothing else is charged for it.
    ("bare-except", &["one-way-delay"], None),
    // A stream socket: charged once, on keeps-running.
    ("tcp-socket", &["keeps-running"], Some(&[])),
];

fn server_fixture(name: &str) -> String {
    format!("fixtures/{SERVER_LAB}/{name}")
}

#[test]
fn every_heartbeat_server_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("heartbeat-server.json");
    netgrade()
        .args(["run", SERVER_LAB, "-j", "10", "--quiet", "--json"])
        .arg(&json)
        .args(SERVER_EXPECTED.iter().map(|(n, _, _)| server_fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, SERVER_EXPECTED, &SERVER_CHECKS, server_fixture);
    let tcp = run_of(&report, &server_fixture("tcp-socket"));
    for id in ["reports-lost", "one-way-delay", "detects-stop"] {
        assert_eq!(status(tcp, id), "skip", "{tcp}");
    }
    for (name, id, needle) in [
        (
            "count-only",
            "reports-lost",
            "heartbeats 4, 8 and 9 never arrived, but the server's loss lines do not name 4, 8 and 9",
        ),
        ("delay-whole", "one-way-delay", "says 0 s (whole seconds)"),
        (
            "inter-arrival",
            "one-way-delay",
            "heartbeat 1 left with a timestamp 0.065 s old (its one-way delay), but line 1",
        ),
        (
            "short-timeout",
            "detects-stop",
            "while it was still sending (a heartbeat every 0.500 s; the longest wait was",
        ),
        (
            "no-timeout",
            "detects-stop",
            "it said so only when the next client's heartbeat came",
        ),
        (
            "exits-on-stop",
            "keeps-running",
            "the server exited with status 0",
        ),
        (
            "bare-except",
            "one-way-delay",
            "printed no delay for any of the 9 heartbeats",
        ),
        ("tcp-socket", "keeps-running", "did not bind a UDP port"),
    ] {
        let m = message(&report, &server_fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    let reference = run_of(&report, &server_fixture("reference"));
    let evidence = reference["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "detects-stop")
        .unwrap()["evidence"]
        .to_string();
    assert!(
        evidence.contains("after the last heartbeat: line 14"),
        "{evidence}"
    );
}

/// Same seed, same heartbeats: the lost ones and every delay are the lab's.
#[test]
fn the_server_lab_s_heartbeats_follow_the_seed() {
    let transcript = |seed: &str| {
        let dir = tempfile::tempdir().unwrap();
        netgrade()
            .args(["run", SERVER_LAB, "--quiet", "--seed", seed, "--snapshots"])
            .arg(dir.path())
            .arg(server_fixture("reference"))
            .assert()
            .code(0);
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .next()
            .unwrap();
        std::fs::read_to_string(file.path()).unwrap()
    };
    let (first, second) = (transcript("12"), transcript("12"));
    assert_eq!(first, second);
    assert!(
        first.contains("heartbeats: client 1 #4 lost (never sent)\n"),
        "{first}"
    );
    assert!(first.contains("probes connect to UDP"), "{first}");
    let other = transcript("13");
    let delays = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.contains("one-way delay") && l.starts_with("heartbeats:"))
            .map(String::from)
            .collect()
    };
    assert_ne!(delays(&first), delays(&other));
}
