//! The `dns-resolver` lab graded for real: every fixture of
//! `fixtures/dns-resolver/` (a reference resolver, one on dnspython's
//! messages, one per common mistake, and real tools as programs: unbound
//! behind dig, and `drill -T`) run by the real binary in every case of the
//! built-in lab, each check's verdict asserted for each fixture. The
//! answers the checks expect come from the lab's zones, so the tools and
//! the lab cannot drift apart.

mod common;

use std::path::Path;

use common::*;

/// The lab's checks, in report order.
const CHECKS: [&str; 8] = [
    "starts-at-root",
    "follows-referrals",
    "uses-glue",
    "resolves-glueless-ns",
    "follows-cname",
    "final-answer",
    "caches",
    "nxdomain",
];

/// Each fixture and its verdict on each check of [`CHECKS`], in order.
const EXPECTED: &[(&str, [&str; 8])] = &[
    ("reference", ["pass"; 8]),
    ("dnspython", ["pass"; 8]),
    ("unbound", ["pass"; 8]),
    // Differently right: a real root's address, answered by the lab's root.
    ("hard-coded-root", ["pass"; 8]),
    (
        "starts-at-resolver",
        [
            "fail", "pass", "pass", "pass", "pass", "pass", "pass", "pass",
        ],
    ),
    (
        "rd-set",
        [
            "pass", "fail", "pass", "pass", "pass", "pass", "pass", "pass",
        ],
    ),
    // Crashes on the root's first referral: nothing after it can be judged.
    (
        "no-compression",
        [
            "pass", "fail", "skip", "skip", "skip", "skip", "skip", "skip",
        ],
    ),
    // Only the long name's referrals point past offset 255.
    (
        "pointer-low-byte",
        [
            "pass", "fail", "pass", "pass", "pass", "pass", "pass", "pass",
        ],
    ),
    // Looks a.gtld-servers.net up from the root, again and again.
    (
        "ignores-glue",
        [
            "pass", "skip", "fail", "skip", "skip", "skip", "skip", "skip",
        ],
    ),
    (
        "no-glueless",
        [
            "pass", "pass", "pass", "fail", "pass", "pass", "pass", "pass",
        ],
    ),
    (
        "no-cname",
        [
            "pass", "pass", "pass", "pass", "fail", "pass", "pass", "pass",
        ],
    ),
    (
        "no-cache",
        [
            "pass", "pass", "pass", "pass", "pass", "pass", "fail", "pass",
        ],
    ),
    (
        "crash-on-nxdomain",
        [
            "pass", "pass", "pass", "pass", "pass", "pass", "pass", "fail",
        ],
    ),
    // Waits for the dropped query until the time limit.
    (
        "no-timeout",
        [
            "pass", "pass", "pass", "pass", "pass", "fail", "pass", "pass",
        ],
    ),
    // drill asks the system's resolver (RD set) for a name server without
    // glue, runs once per name (no cache) and prints NXDOMAIN as an SOA.
    (
        "drill-trace",
        [
            "pass", "pass", "pass", "fail", "pass", "pass", "fail", "fail",
        ],
    ),
];

/// What a message must say: fixture, check, words.
const MESSAGES: &[(&str, &str, &[&str])] = &[
    (
        "rd-set",
        "follows-referrals",
        &["byte 2", "0x01", "flags 01 00", "127.0.0.2 (the root)"],
    ),
    (
        "starts-at-resolver",
        "starts-at-root",
        &["8.8.8.8", "not a root server", "named.root (127.0.0.2)"],
    ),
    (
        "no-compression",
        "follows-referrals",
        &["are compressed", "0xC0", "IndexError"],
    ),
    (
        "pointer-low-byte",
        "follows-referrals",
        &["in case `long-name`", "bytes c1 06", "14 bits"],
    ),
    (
        "ignores-glue",
        "uses-glue",
        &[
            "a.gtld-servers.net.'s address, 127.0.0.3",
            "additional section",
        ],
    ),
    (
        "no-glueless",
        "resolves-glueless-ns",
        &[
            "glueless.com. to dns.example.net.",
            "no glue",
            "never looked up",
        ],
    ),
    (
        "no-cname",
        "follows-cname",
        &["in case `cname`", "CNAME www.example.com.", "10.0.0.1"],
    ),
    (
        "no-cache",
        "caches",
        &["mail.example.com.", "127.0.0.2 (the root)", "TTL 3600 s"],
    ),
    (
        "crash-on-nxdomain",
        "nxdomain",
        &["NXDOMAIN", "crashed", "IndexError", "RCODE"],
    ),
    (
        "no-timeout",
        "final-answer",
        &["in case `lost-query`", "drops it on purpose", "settimeout"],
    ),
    (
        "drill-trace",
        "resolves-glueless-ns",
        &["127.0.0.53", "RD set", "dns.example.net."],
    ),
];

/// The servers bind port 53 in the run's own network namespace: root only.
fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!(
            "skipped: the lab's name servers bind port 53 in a namespace of the run's, which needs root"
        );
    }
    root
}

/// Whether `program` is on PATH (or in /usr/sbin).
fn installed(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .any(|d| d.join(program).is_file())
}

fn fixture(name: &str) -> String {
    format!("fixtures/dns-resolver/{name}")
}

#[test]
fn every_fixture_gets_its_verdict_on_every_check() {
    if !as_root() {
        return;
    }
    let tools = [("unbound", "unbound"), ("drill-trace", "drill")];
    let expected: Vec<_> = EXPECTED
        .iter()
        .filter(|(name, _)| {
            let missing = tools.iter().find(|(f, tool)| f == name && !installed(tool));
            if let Some((_, tool)) = missing {
                eprintln!("not graded: {name} needs {tool} (.ci/run installs it)");
            }
            missing.is_none()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    netgrade()
        .args(["run", "dns-resolver", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(expected.iter().map(|(name, _)| fixture(name)))
        .assert()
        .code(1);
    let report = read_json(&json);
    let mut wrong = Vec::new();
    for (name, verdicts) in &expected {
        let run = run_of(&report, &fixture(name));
        for (id, want) in CHECKS.iter().zip(verdicts) {
            let got = status(run, id);
            if got != *want {
                wrong.push(format!(
                    "{name}: {id} is {got}, not {want}: {}",
                    message(&report, &fixture(name), id)
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected verdicts:\n{}",
        wrong.join("\n")
    );
    for (name, id, words) in MESSAGES {
        if !expected.iter().any(|(n, _)| n == name) {
            continue;
        }
        let m = message(&report, &fixture(name), id);
        for w in *words {
            assert!(m.contains(w), "{name}/{id} lacks {w:?}: {m}");
        }
    }
    // A skip names the check that owns the fault.
    let skipped = message(&report, &fixture("no-compression"), "final-answer");
    assert!(skipped.contains("not checked"), "{skipped}");
}

/// Grades the reference solution once; returns its transcript.
fn transcript(seed: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    netgrade()
        .args([
            "run",
            "dns-resolver",
            "--quiet",
            "--seed",
            seed,
            "--snapshots",
        ])
        .arg(dir.path())
        .arg(fixture("reference"))
        .assert()
        .success();
    let file = dir.path().join("fixtures_dns-resolver_reference.txt");
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", Path::new(&file).display()))
}

#[test]
fn two_runs_with_the_same_seed_give_identical_transcripts() {
    if !as_root() {
        return;
    }
    let first = transcript("7");
    let second = transcript("7");
    assert_eq!(first, second);
    // Every case has its section, and the iterative walk shows in it.
    assert_eq!(first.matches("== case ").count(), 8, "{first}");
    assert!(
        first.contains("udp #6   -> 127.0.0.6: query A www.glueless.com."),
        "{first}"
    );
    // The transcript holds no times, ports or IDs: it is snapshotted as it is.
    insta::assert_snapshot!("dns-resolver-reference", first);
}
