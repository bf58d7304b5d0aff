//! The `bt-tracker` lab graded for real: fake peers announce to the
//! student's tracker. The reference tracker gets full marks; each common
//! mistake loses exactly the check it breaks; opentracker (Debian's),
//! graded as a student's tracker, loses exactly the two checks whose rules
//! it does not follow (it lists the requester among its peers, and answers
//! bad requests with an HTML page).

mod common;

use common::*;

const LAB: &str = "bt-tracker";

const CHECKS: [&str; 8] = [
    "runs",
    "bencoded",
    "interval",
    "peer-list",
    "events",
    "failure-reason",
    "concurrent-announces",
    "udp-tracker",
];

const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("http-only", &["udp-tracker"], None),
    ("unsorted-keys", &["bencoded"], None),
    ("interval-string", &["interval"], None),
    ("returns-self", &["peer-list"], None),
    ("never-forgets", &["events"], None),
    ("html-errors", &["failure-reason"], None),
    ("single-threaded", &["concurrent-announces"], None),
];

fn fixture(name: &str) -> String {
    format!("fixtures/bt-tracker/{name}")
}

#[test]
fn every_bt_tracker_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bt-tracker.json");
    netgrade()
        .args(["run", LAB, "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    let http_only = run_of(&report, &fixture("http-only"));
    assert_eq!(http_only["score"], http_only["max_score"], "{http_only}");
    for (name, id, needle) in [
        ("unsorted-keys", "bencoded", "sorted"),
        ("returns-self", "peer-list", "it lists the requesting peer"),
        ("never-forgets", "events", "stopped"),
        (
            "html-errors",
            "failure-reason",
            "the body is HTML, not bencode",
        ),
        ("single-threaded", "concurrent-announces", "20"),
        ("interval-string", "interval", "interval"),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

#[test]
fn opentracker_as_the_students_tracker() {
    // Debian builds opentracker to serve listed torrents only: list the
    // torrent of each scenario (derived from the lab's seed, 1).
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("opentracker");
    std::fs::create_dir_all(&sub).unwrap();
    let list: String = CHECKS[1..]
        .iter()
        .map(|s| format!("{}\n", netgrade::probes::tracker::info_hash_for(1, s).hex()))
        .collect();
    std::fs::write(sub.join("whitelist"), list).unwrap();
    let json = dir.path().join("opentracker.json");
    netgrade()
        .args(["run", LAB, "--quiet", "--cmd"])
        .arg("opentracker -i 0.0.0.0 -p 6969 -P 6969 -w whitelist")
        .arg("--json")
        .arg(&json)
        .arg(&sub)
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = &report["runs"][0];
    for id in CHECKS {
        let want = if ["peer-list", "failure-reason"].contains(&id) {
            "fail"
        } else {
            "pass"
        };
        assert_eq!(status(run, id), want, "{id}: {run}");
    }
    let m = run["checks"].to_string();
    assert!(m.contains("it lists the requesting peer A itself"), "{m}");
    assert!(m.contains("<title>Invalid Request</title>"), "{m}");
}
