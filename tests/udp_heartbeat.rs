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
