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
        "starts-at-tld",
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
    // Takes pointers as counted from the question: lost at the first referral.
    (
        "pointer-from-question",
        [
            "pass", "fail", "skip", "skip", "skip", "skip", "skip", "skip",
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
        &[
            "8.8.8.8",
            "not a root server",
            "asked for recursion",
            "named.root (127.0.0.2)",
        ],
    ),
    (
        "starts-at-tld",
        "starts-at-root",
        &["192.5.6.30", "a real TLD server's address"],
    ),
    (
        "no-compression",
        "follows-referrals",
        &["are compressed", "0xC0", "IndexError"],
    ),
    (
        "pointer-from-question",
        "follows-referrals",
        &["bytes c0 18", "counts from the message's first byte"],
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
    if !as_root("the lab's name servers bind port 53 in a namespace of the run's") {
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
    if !as_root("the lab's name servers bind port 53 in a namespace of the run's") {
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

/// One case's section of a transcript: the servers' lines, by query
/// number, and what the program printed.
struct Section {
    id: String,
    /// (query number, where the query went, the response line).
    exchanges: Vec<(String, String, String)>,
    stdout: Vec<String>,
}

fn sections(transcript: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut in_stdout = false;
    for line in transcript.lines() {
        if let Some(rest) = line.strip_prefix("== case ") {
            let id = rest.split(':').next().unwrap().trim_end_matches(" ==");
            out.push(Section {
                id: id.to_string(),
                exchanges: Vec::new(),
                stdout: Vec::new(),
            });
            continue;
        }
        let Some(s) = out.last_mut() else { continue };
        if line.starts_with("== ") {
            in_stdout = line.starts_with("== stdout");
            continue;
        }
        if in_stdout {
            s.stdout.push(line.to_string());
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 3 && fields[0] == "udp" && fields[2] == "->" {
            s.exchanges.push((
                fields[1].into(),
                fields[3].trim_end_matches(':').into(),
                String::new(),
            ));
        } else if fields.len() > 2
            && fields[0] == "udp"
            && fields[2] == "<-"
            && let Some(e) = s.exchanges.iter_mut().rev().find(|e| e.0 == fields[1])
        {
            e.2 = line.to_string();
        }
    }
    out
}

/// The records (`owner TTL TYPE data`) a response line lists after `section: `.
fn records<'a>(response: &'a str, section: &str) -> Vec<Vec<&'a str>> {
    let Some(rest) = response.split(&format!("{section}: ")).nth(1) else {
        return Vec::new();
    };
    let rest = rest.split(", additional: ").next().unwrap();
    rest.split("; ")
        .map(|r| r.split_whitespace().collect())
        .collect()
}

/// The case ids of the lab's YAML.
fn lab_cases() -> Vec<String> {
    let yaml = std::fs::read_to_string(root().join("labs/dns-resolver.yaml")).unwrap();
    let cases = yaml.split("\ncases:\n").nth(1).unwrap();
    let cases = cases.split("\nchecks:\n").next().unwrap();
    cases
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- id: "))
        .map(str::to_string)
        .collect()
}

/// unbound (behind dig) prints, in every case of the lab, the addresses the
/// lab's authoritative servers answered with (or NXDOMAIN), and `drill -T`
/// prints the referrals the hierarchy gave it, hop by hop: real resolvers
/// walk the same hierarchy the checks expect.
#[test]
fn real_resolvers_walk_the_labs_hierarchy_to_its_answers() {
    if !as_root("the lab's name servers bind port 53 in a namespace of the run's")
        || !installed("unbound")
        || !installed("drill")
    {
        eprintln!("skipped: needs root, unbound and drill (.ci/run installs them)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    netgrade()
        .args(["run", "dns-resolver", "-j", "2", "--quiet", "--snapshots"])
        .arg(dir.path())
        .args([fixture("unbound"), fixture("drill-trace")])
        .assert()
        .code(1);
    let read = |name: &str| {
        let file = dir.path().join(format!("fixtures_dns-resolver_{name}.txt"));
        sections(&std::fs::read_to_string(file).unwrap())
    };
    let unbound = read("unbound");
    let ids: Vec<String> = unbound.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, lab_cases());
    for s in &unbound {
        let stdout = s.stdout.join("\n");
        let finals: Vec<&(String, String, String)> = s
            .exchanges
            .iter()
            .filter(|e| e.2.contains("<- NOERROR aa") || e.2.contains("<- NXDOMAIN aa"))
            .collect();
        let last = finals
            .last()
            .unwrap_or_else(|| panic!("{}: no answer", s.id));
        if last.2.contains("NXDOMAIN") {
            assert!(stdout.contains("status: NXDOMAIN"), "{}: {stdout}", s.id);
            continue;
        }
        let addresses: Vec<&str> = records(&last.2, "answer")
            .into_iter()
            .filter(|r| r.len() == 4 && r[2] == "A")
            .map(|r| r[3])
            .collect();
        assert!(!addresses.is_empty(), "{}: {}", s.id, last.2);
        for a in addresses {
            assert!(
                s.stdout.iter().any(|l| l.ends_with(&format!("\t{a}"))),
                "{}: unbound did not print {a}: {stdout}",
                s.id
            );
        }
    }
    let hierarchy = [
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.4",
        "127.0.0.5",
        "127.0.0.6",
    ];
    let mut referrals = 0;
    for s in read("drill-trace") {
        for (_, to, response) in &s.exchanges {
            if !hierarchy.contains(&to.as_str()) {
                continue;
            }
            for r in records(response, "authority") {
                if r.len() != 4 || r[2] != "NS" {
                    continue;
                }
                referrals += 1;
                let printed = s.stdout.iter().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() == 5 && f[0] == r[0] && f[3] == "NS" && f[4] == r[3]
                });
                assert!(
                    printed,
                    "{}: drill did not print {r:?}: {:?}",
                    s.id, s.stdout
                );
            }
        }
    }
    assert!(referrals >= 16, "{referrals} referrals");
}
