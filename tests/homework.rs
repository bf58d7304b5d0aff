//! Homework labs graded for real: answers files (YAML and Markdown) read
//! with each student's variant of the lab's numbers; every fixture gets the
//! verdict an expert would give, the same student always the same variant
//! and grade, and a `manual` question stays pending.

mod common;

use common::*;

const DASH_CHECKS: [&str; 3] = ["urls", "manifest", "who-chooses"];

/// Every fixture answers the variant of student `reference` (a 90-minute
/// movie, 4 rates, 15 s segments: 1440 URLs).
const DASH: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: Markdown, `1,440 URLs (…working…)`, `The MPD (…)`, `b) the client`.
    ("markdown", &[], None),
    ("one-encoding", &["urls"], None),
    ("with-manifest", &["urls"], None),
    ("minutes", &["urls"], None),
    ("unanswered", &["who-chooses"], None),
    ("wrong-choice", &["manifest", "who-chooses"], None),
];

fn dash(name: &str) -> String {
    format!("fixtures/hw-dash/{name}")
}

#[test]
fn every_dash_answer_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("dash.json");
    netgrade()
        .args([
            "run",
            "hw-dash",
            "--student",
            "reference",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .args(DASH.iter().map(|(n, _, _)| dash(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, DASH, &DASH_CHECKS, dash);
    for (name, id, needle) in [
        (
            "one-encoding",
            "urls",
            "the answer `360` (line 1) is 360 URLs: that is the number of segments of one encoding; each of the 4 rates has its own URL for every segment",
        ),
        ("with-manifest", "urls", "that counts the manifest too"),
        (
            "minutes",
            "urls",
            "the movie's length is in minutes and the segments' in seconds",
        ),
        (
            "unanswered",
            "who-chooses",
            "answers.md has no answer labelled `3` (or `who-chooses`); its labels are: 1, 2, 4",
        ),
        ("wrong-choice", "who-chooses", "chooses A. The server"),
    ] {
        let m = message(&report, &dash(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    // The lab never shows expected answers: no failure gives 1440 away.
    for name in ["one-encoding", "with-manifest", "minutes"] {
        let m = message(&report, &dash(name), "urls");
        assert!(!m.contains("1440"), "{name}: {m}");
    }
    // The manual question is pending, outside the score, and costs nothing.
    let reference = run_of(&report, &dash("reference"));
    assert_eq!(status(reference, "why"), "pending", "{reference}");
    assert_eq!(reference["score"], reference["max_score"], "{reference}");
    assert_eq!(reference["max_score"].as_f64(), Some(4.0));
}

/// The same student always gets the same variant and the same grade; a
/// neighbour gets other numbers, so the reference's answers are wrong for them.
#[test]
fn a_student_s_variant_is_theirs_alone() {
    let sheet = |student: &str| {
        let out = netgrade()
            .args(["homework", "hw-dash", "--student", student])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let reference = sheet("reference");
    assert_eq!(reference, sheet("reference"));
    assert!(
        reference.contains(
            "A 90-minute movie is encoded at 4 different rates and cut into segments of 15 seconds"
        ),
        "{reference}"
    );
    assert!(reference.contains("\nB. The client\n"), "{reference}");
    assert!(
        reference.contains("## 4. Why adapting the rate helps — 2 points"),
        "{reference}"
    );
    assert_ne!(sheet("alan"), reference);
    let grade = |student: &str| {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        netgrade()
            .args(["run", "hw-dash", "--quiet", "--student", student, "--json"])
            .arg(&json)
            .arg(dash("reference"))
            .output()
            .unwrap();
        let report = read_json(&json);
        let run = &report["runs"][0];
        (
            run["score"].as_f64().unwrap(),
            status(run, "urls").to_string(),
        )
    };
    assert_eq!(grade("reference"), (4.0, "pass".to_string()));
    assert_eq!(grade("reference"), (4.0, "pass".to_string()));
    assert_eq!(grade("alan").1, "fail");
    // Without --student, a submission is its folder's name: `reference`.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args(["run", "hw-dash", "--quiet", "--json"])
        .arg(&json)
        .arg(dash("reference"))
        .assert()
        .code(0);
    let notes = read_json(&json)["runs"][0]["notes"].to_string();
    assert!(
        notes.contains("graded with the numbers of student `reference`, the submission's name"),
        "{notes}"
    );
}

#[test]
fn homework_refuses_a_lab_that_is_not_one() {
    netgrade()
        .args(["homework", "udp-pinger", "--student", "ada"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is not a homework"));
}

/// File distribution, every fixture answering the variant of `reference`
/// (F = 20 Gbit, N = 1000, u_s = 50 Mbps, d_min = 1 Mbps, u = 700 kbps:
/// D_cs = 400 000 s, D_P2P ≈ 26 667 s).
const DISTRIBUTION: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: hours, with the working before the result.
    ("hours", &[], None),
    ("one-copy", &["client-server"], None),
    ("sum", &["client-server"], None),
    ("no-peer-bound", &["p2p"], None),
    ("gbit-as-mbit", &["p2p"], None),
];

fn distribution(name: &str) -> String {
    format!("fixtures/hw-distribution/{name}")
}

#[test]
fn every_distribution_answer_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("distribution.json");
    netgrade()
        .args([
            "run",
            "hw-distribution",
            "--student",
            "reference",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .args(DISTRIBUTION.iter().map(|(n, _, _)| distribution(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(
        &report,
        DISTRIBUTION,
        &["client-server", "p2p"],
        distribution,
    );
    for (name, id, needle) in [
        (
            "one-copy",
            "client-server",
            "F/u_s is the time to upload one copy; the server uploads N copies",
        ),
        (
            "sum",
            "client-server",
            "D_cs is the larger of the two bounds, not their sum",
        ),
        (
            "no-peer-bound",
            "p2p",
            "the peers' total upload bound is missing",
        ),
        ("gbit-as-mbit", "p2p", "off by a factor of 1000"),
    ] {
        let m = message(&report, &distribution(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

/// Reading an HTTP response of the student's own variant.
const RESPONSE: &[Expectation] = &[
    ("reference", &[], None),
    // Differently right: Markdown, `Yes, the status is 200 OK`, a date in
    // lower case with a period, `6,295 bytes`, the bytes in backticks.
    ("markdown", &[], None),
    ("dates-swapped", &["sent", "modified"], None),
    ("status-line-bytes", &["first-bytes", "persistent"], None),
];

fn response(name: &str) -> String {
    format!("fixtures/hw-http-response/{name}")
}

#[test]
fn every_http_response_answer_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("response.json");
    netgrade()
        .args([
            "run",
            "hw-http-response",
            "--student",
            "reference",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .args(RESPONSE.iter().map(|(n, _, _)| response(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    let checks = [
        "found",
        "sent",
        "modified",
        "length",
        "first-bytes",
        "persistent",
    ];
    check_expectations(&report, RESPONSE, &checks, response);
    for (name, id, needle) in [
        (
            "dates-swapped",
            "sent",
            "that is when the document was last changed (Last-Modified)",
        ),
        (
            "dates-swapped",
            "modified",
            "that is when the response was sent (Date)",
        ),
        (
            "status-line-bytes",
            "first-bytes",
            "those are the first bytes of the response's status line",
        ),
    ] {
        let m = message(&report, &response(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
}

/// A lab that shows expected answers (`show_expected: always`, or a
/// deadline that has passed) names them in its messages; one that does not
/// (`never`, the default, or a deadline still ahead) never does.
#[test]
fn expected_answers_are_shown_only_when_the_lab_says() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = std::fs::read_to_string(root().join("labs/hw-dash.yaml")).unwrap();
    let submission = root().join(dash("wrong-choice"));
    let shown = submission.display().to_string();
    let grade = |show: &str| {
        let lab = dir.path().join("shown.yaml");
        std::fs::write(&lab, format!("{yaml}\nshow_expected: \"{show}\"\n")).unwrap();
        let json = dir.path().join("r.json");
        let out = netgrade()
            .args(["run", "--student", "reference", "--quiet", "--json"])
            .arg(&json)
            .arg(&lab)
            .arg(&submission)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        message(&read_json(&json), &shown, "who-chooses")
    };
    let said = "; the expected answer is B. The client";
    for show in ["always", "2020-01-01T00:00:00Z"] {
        let m = grade(show);
        assert!(m.contains(said), "{show}: {m}");
    }
    for show in ["never", "2999-01-01"] {
        let m = grade(show);
        assert!(
            m.contains("chooses A. The server") && !m.contains(said),
            "{show}: {m}"
        );
    }
}

/// A lab, its fixtures' expectations, their paths and the checks compared.
type LabCase<'a> = (
    &'a str,
    &'a [Expectation],
    fn(&str) -> String,
    &'a [&'a str],
);

/// HTTP response times for the variant of `reference` (6 objects, RTT 40 ms),
/// and DNS records.
#[test]
fn response_times_and_dns_records_get_the_grades_they_deserve() {
    let dir = tempfile::tempdir().unwrap();
    let times: &[Expectation] = &[
        ("reference", &[], None),
        // Differently right: seconds, with the working before the result.
        ("seconds", &[], None),
        ("one-rtt-per-object", &["non-persistent"], None),
        ("forgot-html", &["non-persistent"], None),
        ("pipelined", &["persistent"], None),
        // Seconds where the question asks for ms, without a unit.
        (
            "seconds-as-ms",
            &["non-persistent", "persistent", "parallel"],
            None,
        ),
    ];
    let records: &[Expectation] = &[
        ("reference", &[], None),
        // Differently right: `A and CNAME`, `its authoritative name server`.
        ("a-record", &["mail-record"], None),
        (
            "extra-record",
            &["shared-name", "web-records", "authoritative"],
            None,
        ),
    ];
    fn time(name: &str) -> String {
        format!("fixtures/hw-response-time/{name}")
    }
    fn record(name: &str) -> String {
        format!("fixtures/hw-dns-records/{name}")
    }
    let cases: [LabCase; 2] = [
        (
            "hw-response-time",
            times,
            time,
            &["non-persistent", "persistent", "parallel"],
        ),
        (
            "hw-dns-records",
            records,
            record,
            &["mail-record", "shared-name", "web-records", "authoritative"],
        ),
    ];
    for (lab, expected, path, checks) in cases {
        let json = dir.path().join(format!("{lab}.json"));
        netgrade()
            .args(["run", lab, "--student", "reference", "--quiet", "--json"])
            .arg(&json)
            .args(expected.iter().map(|(n, _, _)| path(n)))
            .assert()
            .code(1);
        let report = read_json(&json);
        check_expectations(&report, expected, checks, path);
    }
    let report = read_json(&dir.path().join("hw-response-time.json"));
    let m = message(&report, &time("pipelined"), "persistent");
    assert!(
        m.contains(
            "that is persistent HTTP with pipelining; without it each of the 5 images waits"
        ),
        "{m}"
    );
    let m = message(&report, &time("seconds-as-ms"), "non-persistent");
    assert!(
        m.contains("is 0.48 ms, not the expected value — off by a factor of 1000"),
        "{m}"
    );
    let report = read_json(&dir.path().join("hw-dns-records.json"));
    let m = message(&report, &record("a-record"), "mail-record");
    assert!(m.contains("named by its MX record"), "{m}");
    let m = message(&report, &record("extra-record"), "web-records");
    assert!(m.contains("mx should not be there"), "{m}");
}

/// Every built-in homework's reference answers get full marks as
/// `validate --reference` grades them (the folder's name is the student).
#[test]
fn the_reference_answers_get_full_marks() {
    for lab in [
        "hw-dash",
        "hw-distribution",
        "hw-http-response",
        "hw-response-time",
        "hw-dns-records",
    ] {
        netgrade()
            .args(["validate", "--reference"])
            .arg(format!("fixtures/{lab}/reference"))
            .arg(format!("labs/{lab}.yaml"))
            .assert()
            .success();
    }
}

/// POP3 transcripts: the client lines of each are replayed against
/// netgrade's POP3 server with the lab's maildrop, and the server lines the
/// student wrote are compared with what it really said.
#[test]
fn pop3_transcripts_are_replayed_against_the_real_server() {
    let pop3: &[Expectation] = &[
        ("reference", &[], None),
        ("keep-deletes", &["keep-mode"], None),
        ("no-quit", &["delete-mode"], None),
        ("wrong-sizes", &["delete-mode"], None),
        ("retr-deleted", &["delete-mode"], None),
        ("next-lists-both", &["next-session"], None),
    ];
    fn path(name: &str) -> String {
        format!("fixtures/hw-pop3/{name}")
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pop3.json");
    netgrade()
        .args(["run", "hw-pop3", "--quiet", "--json"])
        .arg(&json)
        .args(pop3.iter().map(|(n, _, _)| path(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(
        &report,
        pop3,
        &["delete-mode", "keep-mode", "next-session"],
        path,
    );
    for (name, id, needle) in [
        (
            "keep-deletes",
            "keep-mode",
            "in download-and-keep mode nothing is deleted, but `dele 1` (line 9) deletes a message at QUIT",
        ),
        ("no-quit", "delete-mode", "the session never reaches QUIT"),
        (
            "wrong-sizes",
            "delete-mode",
            "`S: 1 498`: to `list` the server lists `1 130`, `2 178`",
        ),
        (
            "retr-deleted",
            "delete-mode",
            "`S: +OK`: to `retr 1` the server answers `-ERR message 1 already deleted`",
        ),
        (
            "next-lists-both",
            "next-session",
            "after QUIT in download-and-delete mode every message is gone for good, so the next session's LIST shows none",
        ),
    ] {
        let m = message(&report, &path(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    netgrade()
        .args([
            "validate",
            "--reference",
            "fixtures/hw-pop3/reference",
            "labs/hw-pop3.yaml",
        ])
        .assert()
        .success();
}

/// The distribution lab's plot, drawn with the student's numbers, is
/// written beside the Markdown report and linked from it.
#[test]
fn the_distribution_plot_is_linked_from_the_markdown_report() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("report.md");
    netgrade()
        .args(["run", "hw-distribution", "--quiet", "--summary"])
        .arg(&summary)
        .arg(distribution("reference"))
        .assert()
        .code(0);
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(
        markdown.contains(
            "(F = 20 Gbit, u\\_s = 50 Mbps, d\\_min = 1 Mbps, u = 700 kbps)](report-1-1.svg)"
        ),
        "{markdown}"
    );
    let svg = std::fs::read_to_string(dir.path().join("report-1-1.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    let curves: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .collect();
    assert_eq!(curves.len(), 2, "{svg}");
    for name in ["client-server", "P2P"] {
        assert!(doc.descendants().any(|n| n.text() == Some(name)), "{name}");
    }
}
