//! The `dns-server` lab graded for real: student name servers (Python, one
//! per common mistake) driven by netgrade's DNS probes over UDP, forwarding
//! to the lab's upstream name server; and dnsmasq, a real DNS forwarder,
//! graded as if it were a student's server.

mod common;

use common::*;
use predicates::prelude::*;

const CHECKS: [&str; 8] = [
    "header",
    "question",
    "answers",
    "nxdomain",
    "forwards",
    "compressed-query",
    "multiple-questions",
    "malformed",
];

/// fixture → checks that must fail; `None`: every other check passes;
/// `Some(list)`: only these must pass (the others are skipped: the fault
/// belongs to a failed check, and is not charged again).
const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    // One question, one answer: right by chance. Two addresses: 16 octets
    // past the count; the compressed query (two addresses too) is skipped.
    (
        "ancount-from-qdcount",
        &["answers"],
        Some(&[
            "header",
            "question",
            "nxdomain",
            "forwards",
            "multiple-questions",
            "malformed",
        ]),
    ),
    // Every answer misreads: the checks that reuse the encoding are skipped.
    (
        "ttl-16-bit",
        &["answers"],
        Some(&["header", "question", "nxdomain", "malformed"]),
    ),
    ("crash-on-opcode", &["header"], None),
    ("forwards-whole-query", &["multiple-questions"], None),
    // The upstream's answers use pointers too: forwarding is skipped.
    (
        "no-pointers",
        &["compressed-query"],
        Some(&[
            "header",
            "question",
            "answers",
            "nxdomain",
            "multiple-questions",
            "malformed",
        ]),
    ),
    ("overflow-513", &["answers"], None),
    ("id-not-echoed", &["header"], None),
    ("rd-not-echoed", &["header"], None),
    ("qr-not-set", &["header"], None),
    ("crash-on-garbage", &["malformed"], None),
    // Differently right: another port and address; names never compressed.
    ("other-port", &[], None),
    // In Go, names in full, records cut at 512 octets with TC.
    ("go", &[], None),
    ("uncompressed", &[], None),
    // A dual-stack IPv6 socket on [::]:2053: probed at [::1].
    ("ipv6-any", &[], None),
    // Pointers followed from the question, 12 octets off: as no pointers.
    (
        "pointer-from-question",
        &["compressed-query"],
        Some(&[
            "header",
            "question",
            "answers",
            "nxdomain",
            "multiple-questions",
            "malformed",
        ]),
    ),
    // Stuck in a pointer loop: the next query gets nothing.
    ("hangs-on-pointer-loop", &["malformed"], None),
    // Its own zone forwarded (the upstream refuses it): `answers` pays;
    // NXDOMAIN and the compressed query depend on the zone and are skipped.
    (
        "forwards-everything",
        &["answers"],
        Some(&[
            "header",
            "question",
            "forwards",
            "multiple-questions",
            "malformed",
        ]),
    ),
    // Python 2 code: every answer crashes on sendto(str); netgrade starts
    // it again for each query, and every check that owns a query fails.
    (
        "sendto-str",
        &[
            "header",
            "answers",
            "nxdomain",
            "forwards",
            "compressed-query",
            "multiple-questions",
            "malformed",
        ],
        Some(&[]),
    ),
    // A TCP server: no UDP port, nothing to judge but that.
    ("tcp-instead-of-udp", &["answers"], Some(&[])),
];

fn fixture(name: &str) -> String {
    format!("fixtures/dns-server/{name}")
}

#[test]
fn every_dns_server_fixture_gets_the_grade_it_deserves() {
    if !as_root("the lab's upstream name server runs in a namespace of the run's") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("dns-server.json");
    netgrade()
        .args(["run", "dns-server", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(EXPECTED.iter().map(|(n, _, _)| fixture(n)))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!("{} runs", EXPECTED.len())));
    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, fixture);
    let skipped = |name: &str, id: &str, why: &str| {
        let run = run_of(&report, &fixture(name));
        assert_eq!(status(run, id), "skip", "{name}: {id}");
        let m = message(&report, &fixture(name), id);
        assert!(m.contains(why), "{name}/{id}: {m}");
    };
    skipped(
        "ancount-from-qdcount",
        "compressed-query",
        "(see `answers`)",
    );
    skipped("ttl-16-bit", "forwards", "(see `answers`)");
    skipped("ttl-16-bit", "compressed-query", "(see `answers`)");
    skipped(
        "ttl-16-bit",
        "multiple-questions",
        "(see `answers` and `forwards`)",
    );
    skipped("no-pointers", "forwards", "(see `compressed-query`)");
    skipped(
        "pointer-from-question",
        "forwards",
        "(see `compressed-query`)",
    );
    skipped("forwards-everything", "nxdomain", "(see `answers`)");
    for id in CHECKS.iter().filter(|id| **id != "answers") {
        skipped("tcp-instead-of-udp", id, "never bound a UDP port");
    }

    // Each message names the field, where it is, its bytes, and the fix.
    for (name, id, needles) in [
        (
            "ancount-from-qdcount",
            "answers",
            &["ANCOUNT at offset 6 (00 01)", "not a copy of QDCOUNT"][..],
        ),
        (
            "ttl-16-bit",
            "answers",
            &[
                "RDLENGTH of answer 1 at offset 43",
                "packed in 2 octets (01 2c)",
                "'>I'",
            ],
        ),
        (
            "crash-on-opcode",
            "header",
            &["KeyError: 3", "`opcode-3`", "NOTIMP"],
        ),
        (
            "forwards-whole-query",
            "multiple-questions",
            &[
                "2 questions in one message",
                "FORMERR",
                "one query per question",
            ],
        ),
        (
            "no-pointers",
            "compressed-query",
            &["the pointer c0 0b at offset 29", "FORMERR", "low 14 bits"],
        ),
        (
            "overflow-513",
            "answers",
            &[
                "513 octets over UDP",
                "TC is 0 in the flags at offset 2 (81 00)",
                "512 is allowed",
            ],
        ),
        (
            "id-not-echoed",
            "header",
            &["the ID at offset 0 (04 d2)", "copy the ID"],
        ),
        (
            "rd-not-echoed",
            "header",
            &[
                "`mail-no-rd`",
                "RD is 1 in the flags at offset 2 (81 00)",
                "copy RD",
            ],
        ),
        (
            "qr-not-set",
            "header",
            &["QR is 0 in the flags at offset 2 (01 00)", "0x8000"],
        ),
        (
            "hangs-on-pointer-loop",
            "malformed",
            &[
                "18 octet(s): ab ce 01 00",
                "answered nothing more",
                "it is stuck",
            ],
        ),
        (
            "forwards-everything",
            "answers",
            &[
                "RCODE is 5 in the flags at offset 2 (81 05)",
                "forwarded this name of its own zone",
                "REFUSED",
            ],
        ),
        (
            "tcp-instead-of-udp",
            "answers",
            &["did not bind a UDP port", "SOCK_DGRAM"],
        ),
        (
            "crash-on-garbage",
            "malformed",
            &[
                "struct.error",
                "5 octet(s): de ad be ef 00",
                "catch errors per datagram",
            ],
        ),
    ] {
        let m = message(&report, &fixture(name), id);
        for needle in needles {
            assert!(m.contains(needle), "{name}/{id}: {needle:?} not in {m}");
        }
    }

    // A crash is charged once, and the server started again for the rest.
    let program = &run_of(&report, &fixture("crash-on-garbage"))["program"];
    assert_eq!(program["exit"]["kind"], "stopped", "{program}");
    let diagnoses = program["diagnoses"].to_string();
    assert!(
        diagnoses.contains("started the server again 1 time(s)")
            && diagnoses.contains("after 5 bytes given in hex"),
        "{diagnoses}"
    );
}

/// Grades `submission` with `--snapshots`; its transcript.
fn transcript(submission: &str, seed: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    netgrade()
        .args([
            "run",
            "dns-server",
            submission,
            "--quiet",
            "--seed",
            seed,
            "--snapshots",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let file = dir
        .path()
        .join(format!("{}.txt", submission.replace('/', "_")));
    std::fs::read_to_string(file).unwrap()
}

#[test]
fn transcripts_show_each_exchange_and_repeat_with_the_seed() {
    if !as_root("the lab's upstream name server runs in a namespace of the run's") {
        return;
    }
    let first = transcript(&fixture("reference"), "53");
    let second = transcript(&fixture("reference"), "53");
    assert_eq!(first, second);
    // Another seed, other IDs.
    let other = transcript(&fixture("reference"), "54");
    assert_ne!(first, other);
    insta::assert_snapshot!("dns-server-reference-transcript", first);
}

/// dnsmasq, a real DNS forwarder, graded as a student's server: the zone's
/// records as host records, example.com local, the rest forwarded. It gets
/// every check but `multiple-questions`: it sends nothing back to a query
/// with more than one question (standard queries carry one: RFC 9619; the
/// lab asks for several, as the challenge does). Other opcodes it
/// forwards, and relays the upstream's NOTIMP.
#[test]
fn dnsmasq_gets_full_marks_where_it_implements_what_is_asked() {
    if !as_root("the lab's upstream name server runs in a namespace of the run's") {
        return;
    }
    assert!(
        ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .iter()
            .any(|p| std::path::Path::new(p).exists()),
        "dnsmasq is not installed: apt-get install dnsmasq-base (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("dnsmasq.json");
    let submission = "fixtures/dns-server-real/dnsmasq";
    netgrade()
        .args(["run", "dns-server", submission, "--quiet", "--json"])
        .arg(&json)
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = run_of(&report, submission);
    for id in CHECKS {
        let want = if id == "multiple-questions" {
            "fail"
        } else {
            "pass"
        };
        assert_eq!(status(run, id), want, "{id}: {run}");
    }
    let m = message(&report, submission, "multiple-questions");
    assert!(m.contains("no response to `two-questions`"), "{m}");
}

/// The console report of one mistake, as a student sees it: the field, its
/// offset and bytes, the fix; the checks that reuse the fault skipped.
#[test]
fn the_console_report_names_the_field_and_its_bytes() {
    if !as_root("the lab's upstream name server runs in a namespace of the run's") {
        return;
    }
    let out = netgrade()
        .args(["run", "dns-server", &fixture("ttl-16-bit")])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("console-dns-server-ttl-16-bit", text);
    });
}

/// Unbound, a real recursive server, as a student's server: the zone as
/// static local data, every other name forwarded. It refuses a compression
/// pointer in a query's question and a query with two questions (FORMERR
/// both); it gets every other check.
#[test]
fn unbound_gets_full_marks_where_it_implements_what_is_asked() {
    if !as_root("the lab's upstream name server runs in a namespace of the run's") {
        return;
    }
    assert!(
        ["/usr/sbin/unbound", "/usr/bin/unbound"]
            .iter()
            .any(|p| std::path::Path::new(p).exists()),
        "unbound is not installed: apt-get install unbound (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("unbound.json");
    let submission = "fixtures/dns-server-real/unbound";
    netgrade()
        .args(["run", "dns-server", submission, "--quiet", "--json"])
        .arg(&json)
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = run_of(&report, submission);
    let refused = ["compressed-query", "multiple-questions"];
    for id in CHECKS {
        let want = if refused.contains(&id) {
            "fail"
        } else {
            "pass"
        };
        assert_eq!(status(run, id), want, "{id}: {run}");
    }
    for id in refused {
        let m = message(&report, submission, id);
        assert!(
            m.contains("FORMERR") || m.contains("RCODE is 1"),
            "{id}: {m}"
        );
    }
}
