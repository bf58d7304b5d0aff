//! The udp-pinger labs, graded for real: the binary runs every fixture
//! against the reference server and the reports say what they should.

mod common;

use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;

const CHECKS: [&str; 7] = [
    "runs",
    "ping-count",
    "ping-format",
    "waits-for-timeout",
    "reports-timeouts",
    "prints-replies",
    "reports-rtt",
];

/// fixture → checks that must fail; `None` in the third column means every
/// other check must pass, `Some(list)` names the ones that must pass (the rest
/// depend on the mistake's knock-on effects).
const EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("argv-host-port", &[], None),
    ("count-argument", &[], None),
    ("bytes-print", &[], None),
    ("executable", &[], None),
    ("c-client", &[], None),
    ("java-client", &[], None),
    ("stats-reference", &[], None),
    ("clock-text", &[], None),
    (
        "no-timeout",
        &[
            "runs",
            "ping-count",
            "waits-for-timeout",
            "reports-timeouts",
        ],
        Some(&["ping-format"]),
    ),
    (
        "ignores-sigterm",
        &[
            "runs",
            "ping-count",
            "waits-for-timeout",
            "reports-timeouts",
        ],
        Some(&["ping-format"]),
    ),
    (
        "short-timeout",
        &["waits-for-timeout"],
        Some(&["runs", "ping-count", "ping-format"]),
    ),
    ("seq-from-zero", &["ping-format"], None),
    ("literal-time", &["ping-format"], None),
    ("eleven-pings", &["ping-count"], None),
    ("no-timeout-message", &["reports-timeouts"], None),
    ("no-reply-print", &["prints-replies"], None),
    ("rtt-ms-unlabelled", &["reports-rtt"], None),
    ("rtt-int", &["reports-rtt"], None),
    // No ping reaches the server: `runs` and `ping-count` fail, the rest
    // have nothing to judge and are skipped (see NOTHING_TO_JUDGE).
    ("python2", &["runs", "ping-count"], Some(&[])),
    ("missing-module", &["runs", "ping-count"], Some(&[])),
    ("crash-exit", &["runs", "ping-count"], None),
    ("flood", &["runs"], None),
    ("forks", &["runs"], None),
    ("wrong-port", &[], None),
    ("tcp-socket", &["runs", "ping-count"], Some(&[])),
    // The build fails: `runs` says why, the other checks are skipped.
    ("java-compile-error", &["runs"], Some(&[])),
];

/// For programs whose pings never reach the server, the checks that judge
/// pings are skipped (one fault, charged to `runs` and `ping-count`).
fn assert_nothing_to_judge(report: &serde_json::Value, fixtures: &[&str]) {
    for name in fixtures {
        let run = run_of(report, &pinger_fixture(name));
        for id in &CHECKS[2..] {
            assert_eq!(status(run, id), "skip", "{name}: {id}: {run}");
        }
    }
}

#[test]
fn every_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let mut cmd = netgrade();
    cmd.args([
        "run",
        "udp-pinger",
        "-j",
        "8",
        "--time-limit",
        "12s",
        "--quiet",
    ])
    .arg("--json")
    .arg(&json)
    .arg("--junit")
    .arg(&junit);
    for (name, _, _) in EXPECTED {
        cmd.arg(pinger_fixture(name));
    }
    // Some fixtures fail checks, so the exit status is 1.
    cmd.assert()
        .code(1)
        .stdout(predicate::str::contains(format!("{} runs", EXPECTED.len())));

    let report = read_json(&json);
    check_expectations(&report, EXPECTED, &CHECKS, pinger_fixture);
    assert_nothing_to_judge(&report, &["python2", "missing-module", "tcp-socket"]);
    // The hard-coded port was captured, and the report says so.
    let notes = run_of(&report, &pinger_fixture("wrong-port"))["notes"].to_string();
    assert!(
        notes.contains("sent datagrams to UDP 127.0.0.1:10000")
            && notes.contains("answered in its place"),
        "{notes}"
    );
    for (name, must_fail, _) in EXPECTED {
        let run = run_of(&report, &pinger_fixture(name));
        let full = must_fail.is_empty();
        assert_eq!(
            run["score"] == run["max_score"],
            full,
            "{name}: score {}",
            run["score"]
        );
    }

    // The JUnit file is well-formed XML with one testcase per check and run.
    let xml = std::fs::read_to_string(&junit).unwrap();
    common::junit::assert_valid_junit(&xml);
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is valid XML");
    let cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, EXPECTED.len() * CHECKS.len());
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    let expected_failures: usize = EXPECTED
        .iter()
        .map(|(name, _, _)| {
            let run = run_of(&report, &pinger_fixture(name));
            CHECKS.iter().filter(|id| status(run, id) == "fail").count()
        })
        .sum();
    assert_eq!(failures, expected_failures);
}

/// Output shapes a person reads without trouble, and RTTs the run's own
/// timeline rules out; same reading of the third column as `EXPECTED`.
const SHAPES: &[Expectation] = &[
    // `the ping to 127.0.0.1 is 75.39 ms`, the reply after `('127.0.0.1', 12000)`.
    ("rtt-no-keyword", &[], None),
    // `#0 Ping 0.123456s`, then the reply on the next line.
    ("rtt-before-reply", &[], None),
    // `RTT: 0:00:00.087123`, a datetime difference printed as it is.
    ("rtt-timedelta", &[], None),
    // `Sequence 3 0.0871`: the RTT is read, the sequence number is not.
    ("rtt-sequence-column", &["prints-replies"], None),
    ("stats-packet-loss", &[], None),
    ("stats-windows-style", &[], None),
    // Its only fault is in the summary, which this lab does not grade.
    ("stats-avg-over-timeouts", &[], None),
    ("rtt-from-start", &["reports-rtt"], None),
    ("rtt-includes-sleep", &["reports-rtt"], None),
    ("python2-sendto", &["runs", "ping-count"], Some(&[])),
];

#[test]
fn output_is_read_like_a_person_reads_it_and_rtts_fit_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("shapes.json");
    netgrade()
        .args(["run", "udp-pinger", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(SHAPES.iter().map(|(name, _, _)| pinger_fixture(name)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, SHAPES, &CHECKS, pinger_fixture);
    assert_nothing_to_judge(&report, &["python2-sendto"]);
    for (name, must_fail, _) in SHAPES {
        let run = run_of(&report, &pinger_fixture(name));
        assert_eq!(
            run["score"] == run["max_score"],
            must_fail.is_empty(),
            "{name}: score {}",
            run["score"]
        );
    }
    for (name, id, words) in [
        (
            "rtt-from-start",
            "reports-rtt",
            "the start time seems to be taken once, before the loop",
        ),
        ("rtt-from-start", "reports-rtt", "ping 2"),
        ("rtt-includes-sleep", "reports-rtt", "a sleep"),
        (
            "python2-sendto",
            "runs",
            "this looks like Python 2 code (UDPPingerClient.py, line 14)",
        ),
        ("python2-sendto", "runs", "message.encode()"),
    ] {
        let text = message(&report, &pinger_fixture(name), id);
        assert!(text.contains(words), "{name} {id}: {text}");
    }
}

#[test]
fn the_stats_lab_checks_the_summary_lines() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("stats.json");
    netgrade()
        .args(["run", "udp-pinger-stats", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(
            [
                "stats-reference",
                "stats-wrong-loss",
                "stats-crash-all-lost",
                "reference",
                "stats-packet-loss",
                "stats-windows-style",
                "stats-avg-over-timeouts",
            ]
            .map(pinger_fixture),
        )
        .assert()
        .code(1);
    let report = read_json(&json);
    let stats =
        |name: &str| status(run_of(&report, &pinger_fixture(name)), "reports-stats").to_string();
    assert_eq!(stats("stats-reference"), "pass");
    assert_eq!(stats("stats-wrong-loss"), "fail");
    assert_eq!(stats("stats-crash-all-lost"), "fail");
    assert_eq!(stats("reference"), "fail");
    // `30.0% packet loss` with `rtt min/avg/max = …`, and `Lost = 3 (30% loss)`
    // with `Minimum = 45ms, …` under a "milli-seconds" heading.
    for good in [
        "stats-reference",
        "stats-packet-loss",
        "stats-windows-style",
    ] {
        let run = run_of(&report, &pinger_fixture(good));
        assert_eq!(run["score"], run["max_score"], "{good}: {run}");
    }
    assert_eq!(stats("stats-avg-over-timeouts"), "fail");
    let avg = message(
        &report,
        &pinger_fixture("stats-avg-over-timeouts"),
        "reports-stats",
    );
    assert!(
        avg.contains("the sum of the RTTs divided by all 10 pings"),
        "{avg}"
    );
    let crash = run_of(&report, &pinger_fixture("stats-crash-all-lost"));
    let runs = &crash["checks"][0];
    assert!(
        runs["evidence"].to_string().contains("empty list"),
        "{runs}"
    );
    let wrong = run_of(&report, &pinger_fixture("stats-wrong-loss"));
    let check = wrong["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "reports-stats")
        .unwrap()
        .to_string();
    assert!(check.contains("3 of 10 pings were lost: 30%"), "{check}");
}

/// Fixtures that finish within a few seconds (the hanging ones are covered
/// elsewhere) and do not race the server (short-timeout's 0.5 s timeout does,
/// by design: on a very busy machine a 200 ms reply can miss it).
const QUICK: [&str; 30] = [
    "reference",
    "argv-host-port",
    "bytes-print",
    "executable",
    "c-client",
    "java-client",
    "seq-from-zero",
    "literal-time",
    "eleven-pings",
    "no-timeout-message",
    "no-reply-print",
    "rtt-ms-unlabelled",
    "rtt-int",
    "python2",
    "python2-sendto",
    "missing-module",
    "crash-exit",
    "flood",
    "tcp-socket",
    "wrong-port",
    "hardcoded-remote-ip",
    "hardcoded-hostname-connect",
    "with-handout-server",
    "rtt-no-keyword",
    "rtt-before-reply",
    "rtt-timedelta",
    "rtt-sequence-column",
    "rtt-from-start",
    "rtt-includes-sleep",
    "stats-packet-loss",
];

#[test]
fn same_seed_same_score_and_same_transcript() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        netgrade()
            .args([
                "run",
                "udp-pinger",
                "-j",
                "8",
                "--quiet",
                "--seed",
                "7",
                "--snapshots",
            ])
            .arg(dir.path())
            .args(QUICK.map(pinger_fixture))
            .assert()
            .code(1);
    }
    for name in QUICK {
        let file = format!("fixtures_udp-pinger_{name}.txt");
        let a = std::fs::read_to_string(dirs[0].path().join(&file)).unwrap();
        let b = std::fs::read_to_string(dirs[1].path().join(&file)).unwrap();
        assert_eq!(
            a, b,
            "{name}: transcripts differ between two runs with seed 7"
        );
        assert!(a.contains("seed: 7"));
    }
    let reference =
        std::fs::read_to_string(dirs[0].path().join("fixtures_udp-pinger_reference.txt")).unwrap();
    insta::assert_snapshot!("reference-transcript-seed-7", reference);

    // Another seed draws other delays, so the transcript changes.
    let other = tempfile::tempdir().unwrap();
    netgrade()
        .args(["run", "udp-pinger", "--quiet", "--seed", "8", "--snapshots"])
        .arg(other.path())
        .arg(pinger_fixture("reference"))
        .assert()
        .success();
    let seed8 =
        std::fs::read_to_string(other.path().join("fixtures_udp-pinger_reference.txt")).unwrap();
    assert_ne!(seed8, reference);
}

#[test]
fn each_result_is_written_as_soon_as_it_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let scratch = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netgrade"))
        .current_dir(root())
        .env("TMPDIR", scratch.path())
        .args([
            "run",
            "udp-pinger",
            "-j",
            "2",
            "--quiet",
            "--time-limit",
            "20s",
            "--json",
        ])
        .arg(&json)
        .args(["python2", "no-timeout"].map(pinger_fixture))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // python2 fails at once; no-timeout hangs until its 20 s limit.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = None;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(&json) {
            seen = Some(text);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.expect("the first result was written while the batch ran");
    assert!(still_running, "the batch was still running");
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert_eq!(report["runs"][0]["submission"], pinger_fixture("python2"));
    // netgrade was killed with SIGKILL: its janitor still removes the work
    // folders, and the hanging program died with its run.
    common::assert_nothing_left(scratch.path());
}

#[test]
fn console_report_for_a_student() {
    let out = netgrade()
        .args(["run", "udp-pinger", "--seed", "3"])
        .arg(pinger_fixture("seq-from-zero"))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("console-seq-from-zero", text);
    });
}

#[test]
fn json_and_junit_reports_are_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, summary) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("r.md"),
    );
    netgrade()
        .args(["run", "udp-pinger", "-j", "2", "--quiet", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--summary")
        .arg(&summary)
        .args(["python2", "literal-time"].map(pinger_fixture))
        .assert()
        .code(1);
    common::junit::assert_valid_junit(&std::fs::read_to_string(&junit).unwrap());
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("json-python2-literal-time", std::fs::read_to_string(&json).unwrap());
        insta::assert_snapshot!("junit-python2-literal-time", std::fs::read_to_string(&junit).unwrap());
        insta::assert_snapshot!("summary-python2-literal-time", std::fs::read_to_string(&summary).unwrap());
    });
}

#[test]
fn github_step_summary_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    netgrade()
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args(["run", "udp-pinger", "--quiet"])
        .arg(pinger_fixture("python2"))
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.starts_with("# earlier step\n"), "{text}");
    assert!(text.contains("## netgrade: udp-pinger"), "{text}");
}

/// A marker on the command line lets the test find every process of the run.
fn processes_with(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker) && !c.contains("netgrade"))
        .collect()
}

#[test]
fn hung_flooding_and_forking_programs_are_stopped_and_cleaned_up() {
    for (name, limit, expected) in [
        (
            "no-timeout",
            3,
            "was still running at the time limit (3 s) and was stopped",
        ),
        (
            "ignores-sigterm",
            3,
            "was still running at the time limit (3 s) and was stopped",
        ),
        (
            "flood",
            15,
            "printed more than the output limit (64 KiB) and was stopped",
        ),
        ("forks", 15, "left 1 process running, which netgrade killed"),
    ] {
        let marker = format!("marker-{name}-{}", std::process::id());
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        netgrade()
            .args([
                "run",
                "udp-pinger",
                "--quiet",
                "--time-limit",
                &format!("{limit}s"),
                "--cmd",
            ])
            .arg(format!(
                "python3 UDPPingerClient.py {{host}} {{port}} {marker}"
            ))
            .arg("--json")
            .arg(&json)
            .arg(pinger_fixture(name))
            .assert()
            .code(1);
        let elapsed = started.elapsed();
        // The limit + 0.5 s grace; the margin is for a loaded machine.
        assert!(
            elapsed < Duration::from_secs(limit + 15),
            "{name} took {elapsed:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            processes_with(&marker),
            Vec::<String>::new(),
            "{name} left processes behind"
        );
        let report = read_json(&json);
        let run = &report["runs"][0];
        let runs = &run["checks"][0];
        assert_eq!(runs["id"], "runs");
        assert_eq!(runs["status"], "fail");
        assert!(
            runs["message"].as_str().unwrap().contains(expected),
            "{name}: {}",
            runs["message"]
        );
    }
}

#[test]
fn without_isolation_runs_on_the_same_port_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args([
            "run",
            "udp-pinger",
            "-j",
            "2",
            "--quiet",
            "--no-isolation",
            "--json",
        ])
        .arg(&json)
        .args(["reference", "argv-host-port"].map(pinger_fixture))
        .assert()
        .success();
    let report = read_json(&json);
    let runs = report["runs"].as_array().unwrap();
    assert!(
        runs.iter().all(|r| r["score"] == r["max_score"]),
        "{report}"
    );
    let queued: Vec<f64> = runs
        .iter()
        .map(|r| r["timing"]["queued_ms"].as_f64().unwrap())
        .collect();
    assert!(
        queued.iter().any(|q| *q > 1000.0),
        "one run waited for the other: {queued:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r["notes"].to_string().contains("waited")),
        "{report}"
    );
    // Without a private network nothing hard-coded can be captured: the report says so.
    assert!(
        runs.iter().all(|r| r["notes"]
            .to_string()
            .contains("could not be captured without a private network")),
        "{report}"
    );
}

#[test]
fn check_grades_the_current_directory() {
    let mut cmd = netgrade();
    cmd.current_dir(root().join("fixtures/udp-pinger/reference"))
        .args(["check", "udp-pinger"])
        .assert()
        .success()
        .stdout(predicate::str::contains("score 10/10"));
}

#[test]
fn cmd_override_and_a_lab_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args(["run", "fixtures/specs/custom.yaml", "--quiet", "--json"])
        .arg(&json)
        .arg(pinger_fixture("reference"))
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = &report["runs"][0];
    assert_eq!(run["lab"], "pinger-five");
    assert_eq!(run["seed"], 42);
    assert_eq!(status(run, "runs"), "pass");
    // The reference sends ten pings; this lab wants five.
    assert_eq!(status(run, "five-pings"), "fail");
    assert_eq!(status(run, "rtt"), "pass");
    assert_eq!(
        run["program"]["command"][4], "5",
        "the lab's command line was used"
    );
}

#[test]
fn a_submission_without_a_program_says_what_it_found() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "todo").unwrap();
    let out = netgrade()
        .args(["run", "udp-pinger"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("no program to run"), "{text}");
    assert!(text.contains("notes.txt"), "{text}");
    assert!(
        text.contains("not checked: the program did not start"),
        "{text}"
    );
}
