//! The `dns-client` lab graded for real: the reference solution on raw
//! sockets and a dnspython client get full marks; each common mistake
//! (fixtures/dns-client/README.md) loses the checks it deserves to lose,
//! with a message that names the byte or the response at fault; a run is
//! the same transcript every time.

mod common;

use common::*;

const LAB: &str = "dns-client";

const CHECKS: [&str; 10] = [
    "runs",
    "query-format",
    "random-id",
    "prints-answers",
    "mx",
    "cname",
    "nxdomain",
    "ignores-wrong-id",
    "retransmits",
    "tcp-fallback",
];

/// The answer checks: skipped, not failed, when the server could not
/// answer the query as it was sent (`query-format` says why).
const ANSWER_CHECKS: [&str; 6] = [
    "prints-answers",
    "mx",
    "cname",
    "nxdomain",
    "ignores-wrong-id",
    "tcp-fallback",
];

/// fixture → checks that must fail; `None`: every other check passes;
/// `Some(list)`: these must pass (the rest follow from the mistake).
const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("dnspython", &[], None),
    // Asks 8.8.8.8 whatever the command line says: captured to the lab's
    // server, graded on its logic, and told so.
    ("hardcoded-google", &[], None),
    // Prints like host(1), its own test server beside it: differently right.
    ("own-wording", &[], None),
    // Pointers beyond byte 255 only in the CNAME case: the A records'
    // names there, and nothing else.
    ("low-byte-pointer", &["prints-answers"], None),
    ("id-not-compared", &["ignores-wrong-id"], None),
    // Hangs in the case whose first query is lost; every other case is
    // judged as usual, `runs` (case `a`) included.
    ("no-timeout", &["retransmits"], None),
    ("rd-not-set", &["query-format"], None),
    ("ttl-16-bits", &["prints-answers"], None),
    ("udp-512-no-tcp", &["tcp-fallback"], None),
    ("nxdomain-crash", &["nxdomain"], None),
    ("fixed-id", &["random-id"], None),
    ("counted-id", &["random-id"], None),
    // The server cannot read the question (FORMERR) or refuses the class
    // (REFUSED): `query-format` fails, the answer checks are not judged.
    (
        "dotted-name",
        &["query-format"],
        Some(&["runs", "random-id", "retransmits"]),
    ),
    (
        "wrong-type-class",
        &["query-format"],
        Some(&["runs", "random-id", "retransmits"]),
    ),
    // Every name through a pointer is wrong; the addresses are right.
    (
        "pointer-from-question",
        &["prints-answers", "mx", "cname"],
        Some(&[
            "runs",
            "query-format",
            "random-id",
            "nxdomain",
            "ignores-wrong-id",
            "retransmits",
        ]),
    ),
    // Both crash on every answer with a pointer (all but NXDOMAIN's, for
    // the first) or on every answer (the second); the queries are right.
    (
        "no-compression",
        &[
            "runs",
            "prints-answers",
            "mx",
            "cname",
            "ignores-wrong-id",
            "tcp-fallback",
        ],
        Some(&["query-format", "random-id", "nxdomain", "retransmits"]),
    ),
    // Hostile: 20 000 datagrams, garbage and one query over and over.
    (
        "flood",
        &["query-format", "prints-answers"],
        Some(&["runs"]),
    ),
    (
        "python2-ord",
        &[
            "runs",
            "prints-answers",
            "mx",
            "cname",
            "nxdomain",
            "ignores-wrong-id",
            "tcp-fallback",
        ],
        Some(&["query-format", "random-id", "retransmits"]),
    ),
];

fn fixture(name: &str) -> String {
    format!("fixtures/dns-client/{name}")
}

#[test]
fn every_dns_client_fixture_gets_the_grade_it_deserves() {
    if !as_root("the lab's name server binds port 53 in a namespace of the run's") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("dns-client.json");
    let started = std::time::Instant::now();
    netgrade()
        .args([
            "run",
            LAB,
            "-j",
            "8",
            "--quiet",
            "--time-limit",
            "4s",
            "--json",
        ])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1);
    // `no-timeout` is stopped at its limit in one case; nothing else may
    // hold the batch up.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(150),
        "took {:?}",
        started.elapsed()
    );
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    for name in ["dotted-name", "wrong-type-class"] {
        let run = run_of(&report, &fixture(name));
        for id in ANSWER_CHECKS {
            assert_eq!(status(run, id), "skip", "{name}/{id}: {run}");
        }
        let m = message(&report, &fixture(name), "mx");
        assert!(m.contains("see `query-format`"), "{name}: {m}");
    }
    for (name, id, needle) in [
        (
            "rd-not-set",
            "query-format",
            "byte 2 (flags) is 0x00: RD is not set; send 0x01 in byte 2",
        ),
        (
            "dotted-name",
            "query-format",
            "byte 12 is 0x77 ('w'), not a label length: the name is sent as the text \\\"www.example.com\\\"",
        ),
        (
            "dotted-name",
            "query-format",
            "03 77 77 77 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00",
        ),
        (
            "wrong-type-class",
            "query-format",
            "bytes 29–30 (QTYPE) are 01 00: type A (1) packed little-endian",
        ),
        ("fixed-id", "random-id", "the same ID, 1234 (0x04d2)"),
        ("counted-id", "random-id", "the same ID, 1 (0x0001)"),
        (
            "low-byte-pointer",
            "prints-answers",
            "in case `cname`: a record's name is printed as `alias.example.com`",
        ),
        ("low-byte-pointer", "prints-answers", "(c1 0c) to byte 268"),
        ("low-byte-pointer", "prints-answers", "second octet alone"),
        (
            "pointer-from-question",
            "prints-answers",
            "counted from the question",
        ),
        (
            "ttl-16-bits",
            "prints-answers",
            "printed as 20864, the low 16 bits of its TTL 86400",
        ),
        ("no-compression", "prints-answers", "not printed"),
        (
            "id-not-compared",
            "ignores-wrong-id",
            "the program printed 192.0.2.1, 192.0.2.2, from the response whose ID",
        ),
        (
            "no-timeout",
            "retransmits",
            "until it was stopped at the time limit",
        ),
        ("udp-512-no-tcp", "tcp-fallback", "never asked over TCP"),
        (
            "nxdomain-crash",
            "nxdomain",
            "IndexError: list index out of range",
        ),
        ("python2-ord", "runs", "this looks like Python 2 code"),
        ("python2-ord", "runs", "drop the ord()"),
    ] {
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    // A flood is told in a line, not a thousand.
    let m = message(&report, &fixture("flood"), "mx");
    assert!(m.contains("www.example.com A (×") && m.len() < 400, "{m}");
    let google = run_of(&report, &fixture("hardcoded-google"));
    assert!(
        google["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("UDP 8.8.8.8:53; netgrade's DNS server `dns` answered in its place")),
        "{google}"
    );
    // One case's hang is that case's: the program line of every other case
    // of `no-timeout` shows a clean exit.
    let hang = run_of(&report, &fixture("no-timeout"));
    for case in hang["cases"].as_array().unwrap() {
        let exit = case["program"]["exit"].to_string();
        assert_eq!(
            case["id"] == "dropped",
            exit.contains("timed-out"),
            "{case}"
        );
    }
}

#[test]
fn the_reference_runs_the_same_every_time_and_its_transcript_shows_every_case() {
    if !as_root("the lab's name server binds port 53 in a namespace of the run's") {
        return;
    }
    let transcript = |dir: &std::path::Path| {
        netgrade()
            .args(["run", LAB, &fixture("reference"), "--quiet", "--snapshots"])
            .arg(dir)
            .assert()
            .success();
        std::fs::read_to_string(dir.join("fixtures_dns-client_reference.txt")).unwrap()
    };
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = transcript(one.path());
    assert_eq!(
        first,
        transcript(two.path()),
        "two runs with the same seed differ"
    );
    for case in [
        "== case a: ",
        "== case dropped: ",
        "udp #1      dropped (no answer)",
        "[fault: a wrong ID, sent first]",
        "udp #1   <- NOERROR aa tc rd",
        "tcp #1   -> 127.0.0.1 (connection 1): query A many.example.com. (rd)",
    ] {
        assert!(first.contains(case), "{case}: {first}");
    }
    insta::assert_snapshot!("dns-client-reference-transcript", first);
}
