//! The `bt-seed` lab graded for real: netgrade's leecher downloads from the
//! student's peer. The reference seeder, aria2c and libtorrent (real
//! clients from Debian, graded as if students had written them) get full
//! marks; each common mistake loses the check it deserves, and the checks
//! after it say they were not judged.

mod common;

use common::*;

const LAB: &str = "bt-seed";

const CHECKS: [&str; 7] = [
    "runs",
    "handshake-reply",
    "bitfield",
    "unchokes",
    "serves-pieces",
    "handles-cancel",
    "swarm",
];

const EXPECTED: &[Expectation] = &[
    ("bt-seed/reference", &[], None),
    ("bt-seed-real/libtorrent", &[], None),
    (
        "bt-seed/ignores-begin",
        &["serves-pieces"],
        Some(&[
            "runs",
            "handshake-reply",
            "bitfield",
            "unchokes",
            "handles-cancel",
        ]),
    ),
    (
        "bt-seed/padded-last-block",
        &["serves-pieces"],
        Some(&[
            "runs",
            "handshake-reply",
            "bitfield",
            "unchokes",
            "handles-cancel",
        ]),
    ),
    ("bt-seed/fixed-port", &["swarm"], None),
    ("bt-seed/shared-port", &["swarm"], None),
    ("bt-seed/tit-for-tat", &[], None),
    ("bt-seed/never-rotates", &[], None),
    ("bt-seed/slowest-first", &[], None),
    ("bt-seed/closes-on-cancel", &["handles-cancel"], None),
    (
        "bt-seed/never-unchokes",
        &["unchokes"],
        Some(&["runs", "handshake-reply", "bitfield"]),
    ),
    (
        "bt-seed/spare-bits",
        &["bitfield"],
        Some(&["runs", "handshake-reply"]),
    ),
    (
        "bt-seed/no-handshake",
        &["handshake-reply"],
        Some(&["runs"]),
    ),
];

fn fixture(name: &str) -> String {
    format!("fixtures/{name}")
}

#[test]
fn every_bt_seed_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bt-seed.json");
    netgrade()
        .args(["run", LAB, "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    for (name, ids) in [
        (
            "bt-seed/no-handshake",
            &["bitfield", "unchokes", "serves-pieces", "handles-cancel"][..],
        ),
        (
            "bt-seed/spare-bits",
            &["unchokes", "serves-pieces", "handles-cancel"],
        ),
        (
            "bt-seed/never-unchokes",
            &["serves-pieces", "handles-cancel", "swarm"],
        ),
        // One fault charged once: a second seeder serving the same wrong
        // blocks is not charged again.
        ("bt-seed/ignores-begin", &["swarm"]),
    ] {
        let run = run_of(&report, &fixture(name));
        for id in ids {
            assert_eq!(status(run, id), "skip", "{name}/{id}: {run}");
        }
    }
    // tit-for-tat is optional (0 points): judged apart from the checks above.
    for (name, status_wanted, needle) in [
        ("bt-seed/tit-for-tat", "pass", " s unchoked: 1 ("),
        (
            "bt-seed/reference",
            "fail",
            "8 of the 8 interested leechers were unchoked at once",
        ),
        (
            "bt-seed/never-rotates",
            "fail",
            "was ever unchoked in 9 s: every 3000 ms, move the optimistic unchoke",
        ),
        (
            "bt-seed/slowest-first",
            "fail",
            "was choked while slow leecher",
        ),
        ("bt-seed/never-unchokes", "skip", "not judged"),
    ] {
        let run = run_of(&report, &fixture(name));
        assert_eq!(status(run, "tit-for-tat"), status_wanted, "{name}: {run}");
        let check = run["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "tit-for-tat")
            .unwrap();
        assert!(check.to_string().contains(needle), "{name}: {check}");
        // Optional: failing it costs nothing.
        if status_wanted != "skip" {
            assert_eq!(run["score"], run["max_score"], "{name}: {run}");
        }
    }
    // Each instance is reported: instance 2 of fixed-port, with its traceback.
    let second = &run_of(&report, &fixture("bt-seed/fixed-port"))["program"]["instances"][0];
    assert_eq!(second["instance"], 2, "{second}");
    assert_eq!(second["port"], 6882, "{second}");
    assert!(second["listened"].is_null(), "{second}");
    assert_eq!(second["command"][4], "6882", "{second}");
    assert!(
        second["stderr"]
            .as_str()
            .unwrap()
            .contains("File \"seeder.py\", line"),
        "{second}"
    );
    let second = &run_of(&report, &fixture("bt-seed/reference"))["program"]["instances"][0];
    assert_eq!(second["listened"], "127.0.0.1:6882", "{second}");
    for (name, id, needle) in [
        (
            "bt-seed/ignores-begin",
            "serves-pieces",
            "piece 0 came back wrong, first at byte 16384 of the piece",
        ),
        (
            "bt-seed/padded-last-block",
            "serves-pieces",
            "piece 9 begin 0: 16384 bytes, 5088 requested",
        ),
        (
            "bt-seed/closes-on-cancel",
            "handles-cancel",
            "after cancel 0/0/16384",
        ),
        (
            "bt-seed/never-unchokes",
            "unchokes",
            "was never unchoked (timed out waiting for an unchoke",
        ),
        (
            "bt-seed/spare-bits",
            "bitfield",
            "spare bits set in the bitfield's last byte (the torrent has 10 pieces)",
        ),
        (
            "bt-seed/no-handshake",
            "handshake-reply",
            "7 bytes came back: 00 00 00 03 05 ff c0",
        ),
        (
            "bt-seed/fixed-port",
            "swarm",
            "instance 2: it never listened on port 6882, the port it was told; it exited with status 1: OSError: [Errno 98] Address already in use",
        ),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

#[test]
fn aria2c_as_the_students_seeder_gets_full_marks() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("aria2c.json");
    let empty = dir.path().join("aria2c");
    std::fs::create_dir_all(&empty).unwrap();
    netgrade()
        .args(["run", LAB, "--quiet", "--cmd"])
        .arg(
            "aria2c --no-conf --enable-dht=false --enable-dht6=false --bt-enable-lpd=false \
             --enable-peer-exchange=false --seed-ratio=0.0 --check-integrity=true \
             --bt-seed-unverified=true --listen-port={listen} --console-log-level=warn \
             --summary-interval=0 -d . seed.torrent",
        )
        .arg("--json")
        .arg(&json)
        .arg(&empty)
        .assert()
        .code(0);
    let report = read_json(&json);
    let run = &report["runs"][0];
    for id in CHECKS {
        assert_eq!(status(run, id), "pass", "{id}: {run}");
    }
    let m = run["checks"].to_string();
    assert!(m.contains("10 pieces, 19 blocks, all right"), "{m}");
}
