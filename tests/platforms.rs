//! The reports grading platforms and CI reporters read, and classes larger
//! than one run: JUnit placed on the student's file and line, CSV, GitHub
//! Classroom, Autolab, reports on standard output, checks hidden from
//! students, partial credit, roster folders, shards merged back, resumed
//! batches and the step summary's size. Every test runs the real binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use common::junit::assert_valid_junit;
use common::*;

/// Copies the folder `from` to `to`, files and folders.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A roster folder `class/` in `dir`: a subfolder per (name, fixture).
fn roster(dir: &Path, members: &[(&str, &str)]) -> PathBuf {
    let class = dir.join("class");
    for (name, fixture) in members {
        copy_dir(&root().join("fixtures").join(fixture), &class.join(name));
    }
    class
}

/// The homework roster: every fixture of `hw-dash`, graded in milliseconds
/// with answers that give the same evidence every run.
fn homework_roster(dir: &Path) -> PathBuf {
    let class = dir.join("class");
    copy_dir(&root().join("fixtures/hw-dash"), &class);
    class
}

/// Standard output of a run as text, asserting its exit code.
fn stdout_of(assert: assert_cmd::assert::Assert, code: i32) -> String {
    let out = assert.code(code).get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

/// A JSON report with what differs between two runs of the same work (the
/// times) taken out.
fn timeless(path: &Path) -> serde_json::Value {
    let mut report = read_json(path);
    for run in report["runs"].as_array_mut().unwrap() {
        run.as_object_mut().unwrap().remove("timing");
        if let Some(p) = run["program"].as_object_mut() {
            p.remove("duration_ms");
        }
    }
    report
}

/// The test cases of a JUnit report: (name, classname, file, line).
fn junit_cases(xml: &str) -> Vec<(String, String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            let attr = |a: &str| n.attribute(a).unwrap_or_default().to_string();
            (attr("name"), attr("classname"), attr("file"), attr("line"))
        })
        .collect()
}

#[test]
fn junit_places_failures_on_the_students_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // A student checks their own repository, from its root.
    let repo = dir.path().join("repo");
    copy_dir(&root().join("fixtures/udp-pinger/short-timeout"), &repo);
    let xml_path = dir.path().join("check.xml");
    netgrade()
        .current_dir(&repo)
        .args(["check", "udp-pinger", "--junit"])
        .arg(&xml_path)
        .assert()
        .code(1);
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    assert_valid_junit(&xml);
    let cases = junit_cases(&xml);
    let waits = cases.iter().find(|c| c.0 == "waits-for-timeout").unwrap();
    // `clientSocket.settimeout(0.5)` is line 10 of the student's file.
    assert_eq!(
        (waits.1.as_str(), waits.2.as_str(), waits.3.as_str()),
        ("udp-pinger.submission", "UDPPingerClient.py", "10"),
        "{xml}"
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        assert!(
            case.attribute("time")
                .is_some_and(|t| t.parse::<f64>().is_ok())
        );
    }

    // A batch of a roster: a crash's traceback names the line, and a
    // dotted folder name stays whole in the classname.
    let class = roster(
        dir.path(),
        &[
            ("ada.lovelace", "udp-pinger/python2"),
            ("bob", "udp-pinger/short-timeout"),
        ],
    );
    let batch = dir.path().join("batch.xml");
    netgrade()
        .current_dir(dir.path())
        .args(["run", "udp-pinger", "--each", "class", "--junit"])
        .arg(&batch)
        .assert()
        .code(1);
    assert!(class.is_dir());
    let xml = std::fs::read_to_string(&batch).unwrap();
    assert_valid_junit(&xml);
    let cases = junit_cases(&xml);
    let runs_of = |classname: &str| -> Vec<&(String, String, String, String)> {
        cases.iter().filter(|c| c.1 == classname).collect()
    };
    let ada = runs_of("udp-pinger.ada_lovelace");
    assert_eq!(ada.len(), 7, "{xml}");
    // Python 3 stops at the Python 2 print statement on line 18.
    for case in &ada {
        assert_eq!(
            (case.2.as_str(), case.3.as_str()),
            ("class/ada.lovelace/UDPPingerClient.py", "18"),
            "{case:?}"
        );
    }
    let bob = runs_of("udp-pinger.bob");
    let waits = bob.iter().find(|c| c.0 == "waits-for-timeout").unwrap();
    assert_eq!(
        (waits.2.as_str(), waits.3.as_str()),
        ("class/bob/UDPPingerClient.py", "10")
    );
}

#[test]
fn reports_go_to_standard_output_and_the_csv_has_a_row_per_submission() {
    let dir = tempfile::tempdir().unwrap();
    homework_roster(dir.path());
    let out = netgrade()
        .current_dir(dir.path())
        .args(["run", "hw-dash", "--each", "class", "--csv", "-"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "name,submission,status,score,max_score,urls,manifest,who-chooses,why"
    );
    assert_eq!(lines.len(), 8, "{csv}");
    assert!(
        lines.contains(&"reference,class/reference,graded,4,4,2,1,1,pending"),
        "{csv}"
    );
    // The console report went to standard error, out of the CSV's way.
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("7 runs: 1 with full marks"), "{stderr}");

    // Two reports cannot share standard output.
    let err = netgrade()
        .current_dir(dir.path())
        .args([
            "run", "hw-dash", "--each", "class", "--csv", "-", "--json", "-",
        ])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains("--json and --csv all write to standard output"),
        "{err}"
    );
}

/// Decodes base64 with Python's own decoder.
fn base64_decode(text: &str) -> String {
    let out = Std::new("python3")
        .args([
            "-c",
            "import base64,sys; sys.stdout.write(base64.b64decode(sys.argv[1]).decode())",
        ])
        .arg(text)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn classroom_gets_its_result_in_github_output() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    copy_dir(&root().join("fixtures/udp-pinger/short-timeout"), &repo);
    let output = dir.path().join("github_output");
    std::fs::write(&output, "earlier=1\n").unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .current_dir(&repo)
        .env("GITHUB_OUTPUT", &output)
        .args(["check", "udp-pinger", "--classroom", "--json"])
        .arg(&json)
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&output).unwrap();
    let line = text.lines().find(|l| l.starts_with("result=")).unwrap();
    assert!(text.starts_with("earlier=1\n"), "appended, not replaced");
    let result: serde_json::Value =
        serde_json::from_str(&base64_decode(line.trim_start_matches("result="))).unwrap();
    let run = &read_json(&json)["runs"][0];
    assert_eq!(result["version"], 1);
    assert_eq!(result["status"], "fail");
    assert_eq!(result["max_score"], run["max_score"]);
    let tests = result["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 7);
    // The reporter adds the tests' scores up: that is the grade.
    let total: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
    assert_eq!(total, run["score"].as_f64().unwrap());
    let waits = tests
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with("waits-for-timeout"))
        .unwrap();
    assert_eq!(waits["status"], "fail");
    assert_eq!(waits["filename"], "UDPPingerClient.py");
    assert_eq!(waits["line_no"], 10);
    assert!(
        waits["message"].as_str().unwrap().contains("hint:"),
        "{waits}"
    );
}

#[test]
fn autolab_reads_the_scores_on_the_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let stdout = stdout_of(
        netgrade()
            .args([
                "run",
                "hw-dash",
                "fixtures/hw-dash/minutes",
                "--autolab",
                "--json",
            ])
            .arg(&json)
            .assert(),
        1,
    );
    let last = stdout.lines().last().unwrap();
    let scores: serde_json::Value = serde_json::from_str(last).unwrap();
    let scores = scores["scores"].as_object().unwrap();
    // The manual question is Autolab's to grade; the rest are here.
    let ids: Vec<&str> = scores.keys().map(String::as_str).collect();
    assert_eq!(ids, ["manifest", "urls", "who-chooses"]);
    let total: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert_eq!(
        total,
        read_json(&json)["runs"][0]["score"].as_f64().unwrap()
    );
    // The feedback comes before it.
    assert!(stdout.contains("score 2/4"), "{stdout}");
    // Autolab grades one submission at a time.
    netgrade()
        .args([
            "run",
            "hw-dash",
            "fixtures/hw-dash/minutes",
            "fixtures/hw-dash/reference",
            "--autolab",
        ])
        .assert()
        .code(2);
}

#[test]
fn hidden_checks_are_never_named_to_students() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    // Prints no reply: it loses `prints-replies`, which the lab hides.
    copy_dir(&root().join("fixtures/udp-pinger/no-reply-print"), &repo);
    let lab = root().join("fixtures/specs/gradescope-hidden.yaml");
    let (staff, student) = (
        dir.path().join("staff.json"),
        dir.path().join("student.json"),
    );
    netgrade()
        .args(["run"])
        .arg(&lab)
        .arg(&repo)
        .arg("--json")
        .arg(&staff)
        .assert()
        .code(1);
    let output = dir.path().join("github_output");
    let console = stdout_of(
        netgrade()
            .current_dir(&repo)
            .env("GITHUB_OUTPUT", &output)
            .arg("check")
            .arg(&lab)
            .args(["--classroom", "--json"])
            .arg(&student)
            .assert(),
        1,
    );
    let staff_run = &read_json(&staff)["runs"][0];
    let hidden = check_of(staff_run, "prints-replies");
    assert_eq!(hidden["visibility"], "hidden");
    assert_eq!(hidden["status"], "fail");
    let message = hidden["message"].as_str().unwrap().to_string();
    let classroom = std::fs::read_to_string(&output).unwrap();
    let classroom = base64_decode(classroom.trim().trim_start_matches("result="));
    let student_json = std::fs::read_to_string(&student).unwrap();
    for (what, text) in [
        ("console", &console),
        ("JSON", &student_json),
        ("Classroom result", &classroom),
    ] {
        for secret in ["prints-replies", "reports-rtt", message.as_str()] {
            assert!(
                !text.contains(secret),
                "the {what} names `{secret}`:\n{text}"
            );
        }
        assert!(text.contains("hidden-checks"), "{what}: {text}");
    }
    // The score is the same: hidden checks count, unnamed.
    let student_run = &read_json(&student)["runs"][0];
    assert_eq!(student_run["score"], staff_run["score"]);
    assert_eq!(student_run["max_score"], staff_run["max_score"]);
    assert!(console.contains("2/3"), "hidden checks' points: {console}");
}

#[test]
fn partial_credit_counts_the_pings_that_were_right() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let console = stdout_of(
        netgrade()
            .args(["run", "fixtures/specs/udp-pinger-partial.yaml"])
            .arg(pinger_fixture("rtt-one-decimal"))
            .arg("--json")
            .arg(&json)
            .assert(),
        1,
    );
    let run = &read_json(&json)["runs"][0];
    let rtt = check_of(run, "reports-rtt");
    let (right, of) = (
        rtt["fraction"]["right"].as_u64().unwrap(),
        rtt["fraction"]["of"].as_u64().unwrap(),
    );
    // Seven answered pings (3, 6 and 7 are lost). Ping 1 (180 ms, printed
    // 0.2) is right and ping 8 (123 ms, printed 0.1) wrong whatever the load.
    assert_eq!(of, 7, "{rtt}");
    assert!((1..7).contains(&right), "{rtt}");
    let points = (2.0 * right as f64 / 7.0 * 100.0).floor() / 100.0;
    assert_eq!(rtt["points"].as_f64().unwrap(), points);
    assert_eq!(rtt["status"], "fail");
    assert_eq!(run["score"].as_f64().unwrap(), 8.0 + points);
    assert!(console.contains(&format!("({right} of 7)")), "{console}");

    // Without `partial: true` the same program earns nothing for it.
    let whole = dir.path().join("whole.json");
    netgrade()
        .args(["run", "udp-pinger"])
        .arg(pinger_fixture("rtt-one-decimal"))
        .arg("--json")
        .arg(&whole)
        .assert()
        .code(1);
    let run = &read_json(&whole)["runs"][0];
    let rtt = check_of(run, "reports-rtt");
    assert_eq!(rtt["points"], 0.0);
    assert!(rtt.get("fraction").is_none(), "{rtt}");
}

#[test]
fn a_folder_of_submissions_needs_each() {
    let out = netgrade()
        .args(["run", "hw-dash", "fixtures/hw-dash"])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(
        err.contains("`fixtures/hw-dash` holds 7 submissions")
            && err.contains("netgrade run hw-dash --each fixtures/hw-dash"),
        "{err}"
    );
    // One submission's folder is graded as before.
    netgrade()
        .args(["run", "hw-dash", "fixtures/hw-dash/reference"])
        .assert()
        .code(0);
    let empty = tempfile::tempdir().unwrap();
    netgrade()
        .args(["run", "hw-dash", "--each"])
        .arg(empty.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("holds no folders"));
}

/// Every report of a run over `class` into `dir/NAME.*`, with extra `args`
/// and `env`; returns the paths' stem.
fn reports(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)], code: i32) -> PathBuf {
    let stem = dir.join(name);
    let mut cmd = netgrade();
    cmd.current_dir(dir).args(args);
    for (ext, flag) in [
        ("json", "--json"),
        ("xml", "--junit"),
        ("csv", "--csv"),
        ("md", "--summary"),
    ] {
        cmd.arg(flag).arg(stem.with_extension(ext));
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.assert().code(code);
    stem
}

/// JUnit with its times taken out.
fn junit_timeless(path: &Path) -> String {
    let xml = std::fs::read_to_string(path).unwrap();
    regex::Regex::new(r#" time="[0-9.]+""#)
        .unwrap()
        .replace_all(&xml, "")
        .into_owned()
}

#[test]
fn shards_graded_apart_merge_into_the_unsharded_batch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    homework_roster(d);
    let each = ["run", "hw-dash", "--each", "class", "-q"];
    let whole = reports(d, "whole", &each, &[], 1);
    // Three shards, each its own process: one told, one from a Kubernetes
    // Indexed Job, one from a Slurm array counting from 1.
    let told = [&each[..], &["--shard", "1/3"]].concat();
    reports(d, "shard-1", &told, &[], 1);
    reports(
        d,
        "shard-2",
        &each,
        &[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "3")],
        1,
    );
    reports(
        d,
        "shard-3",
        &each,
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ],
        1,
    );
    let sizes: Vec<usize> = (1..=3)
        .map(|k| {
            read_json(&d.join(format!("shard-{k}.json")))["runs"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [3, 2, 2], "7 submissions over 3 shards");
    let merged = d.join("merged");
    let mut merge = netgrade();
    merge
        .current_dir(d)
        .args(["merge", "shard-1.json", "shard-2.json", "shard-3.json"]);
    for (ext, flag) in [
        ("json", "--json"),
        ("xml", "--junit"),
        ("csv", "--csv"),
        ("md", "--summary"),
    ] {
        merge.arg(flag).arg(merged.with_extension(ext));
    }
    merge.assert().code(1);
    assert_eq!(
        timeless(&merged.with_extension("json")),
        timeless(&whole.with_extension("json"))
    );
    assert_eq!(
        junit_timeless(&merged.with_extension("xml")),
        junit_timeless(&whole.with_extension("xml"))
    );
    assert_valid_junit(&std::fs::read_to_string(merged.with_extension("xml")).unwrap());
    for ext in ["csv", "md"] {
        assert_eq!(
            std::fs::read_to_string(merged.with_extension(ext)).unwrap(),
            std::fs::read_to_string(whole.with_extension(ext)).unwrap(),
            "{ext}"
        );
    }
    // Shards that overlap, or come from another lab text, are refused.
    netgrade()
        .current_dir(d)
        .args(["merge", "shard-1.json", "shard-1.json", "--json", "x.json"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("graded twice"));
    netgrade()
        .current_dir(d)
        .args(["merge", "shard-1.json", "class/reference/answers.yaml"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is not a netgrade JSON report"));
}

/// A run's submission and each check's (id, status, points).
type Grades = (String, Vec<(String, String, f64)>);

#[test]
fn sharded_pinger_batches_get_the_unsharded_grades() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    roster(
        d,
        &[
            ("ada", "udp-pinger/reference"),
            ("bob", "udp-pinger/short-timeout"),
            ("cy", "udp-pinger/python2"),
        ],
    );
    let each = ["run", "udp-pinger", "--each", "class", "-q", "-j", "3"];
    let whole = reports(d, "whole", &each, &[], 1);
    reports(d, "s1", &[&each[..], &["--shard", "1/2"]].concat(), &[], 1);
    reports(d, "s2", &[&each[..], &["--shard", "2/2"]].concat(), &[], 1);
    let merged = d.join("merged.json");
    netgrade()
        .current_dir(d)
        .args(["merge", "s1.json", "s2.json", "--json"])
        .arg(&merged)
        .assert()
        .code(1);
    let grades = |path: &Path| -> Vec<Grades> {
        read_json(path)["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let checks = r["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| {
                        (
                            c["id"].as_str().unwrap().to_string(),
                            c["status"].as_str().unwrap().to_string(),
                            c["points"].as_f64().unwrap(),
                        )
                    })
                    .collect();
                (r["submission"].as_str().unwrap().to_string(), checks)
            })
            .collect()
    };
    assert_eq!(grades(&merged), grades(&whole.with_extension("json")));
}

#[test]
fn resumed_batches_grade_only_what_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let class = roster(
        d,
        &[
            ("ann", "hw-dash/reference"),
            ("ben", "hw-dash/minutes"),
            ("cat", "hw-dash/markdown"),
        ],
    );
    netgrade()
        .current_dir(d)
        .args(["run", "hw-dash", "--each", "class", "--json", "grades.json"])
        .assert()
        .code(1);
    let before = read_json(&d.join("grades.json"));
    // A late submission joins the roster.
    copy_dir(
        &root().join("fixtures/hw-dash/one-encoding"),
        &class.join("dan"),
    );
    let out = netgrade()
        .current_dir(d)
        .args([
            "run",
            "hw-dash",
            "--each",
            "class",
            "--resume",
            "grades.json",
            "--json",
            "grades.json",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(
        stderr
            .contains("3 of 4 submissions already graded with this lab, seed and netgrade version"),
        "{stderr}"
    );
    // Only the new one was graded (its checks printed); all four are in the book.
    assert!(stdout.contains("hw-dash · class/dan"), "{stdout}");
    assert!(!stdout.contains("hw-dash · class/ann"), "{stdout}");
    assert!(stdout.contains("4 runs:"), "{stdout}");
    let after = read_json(&d.join("grades.json"));
    let runs = after["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    // Taken over as they were, times and all.
    for old in before["runs"].as_array().unwrap() {
        assert!(runs.contains(old), "{old}");
    }
    // Another seed grades everything again.
    let again = netgrade()
        .current_dir(d)
        .args([
            "run",
            "hw-dash",
            "--each",
            "class",
            "--seed",
            "9",
            "--resume",
            "grades.json",
            "-q",
        ])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8(again)
            .unwrap()
            .contains("0 of 4 submissions already graded"),
        "a report of another seed is not taken over"
    );
}

#[test]
fn the_step_summary_stays_under_githubs_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    homework_roster(d);
    // Earlier steps filled the summary up to 6 KiB short of 1 MiB.
    let summary = d.join("step_summary.md");
    let earlier = "x".repeat(1024 * 1024 - 6 * 1024);
    std::fs::write(&summary, &earlier).unwrap();
    netgrade()
        .current_dir(d)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .args([
            "run",
            "hw-dash",
            "--each",
            "class",
            "-q",
            "--summary",
            "grades.md",
        ])
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(text.len() <= 1024 * 1024, "{} bytes", text.len());
    let ours = &text[earlier.len()..];
    assert!(ours.contains("| ✅ | class/reference | 4/4 |"), "{ours}");
    assert!(ours.contains("**Trimmed:**"), "{ours}");
    assert!(ours.contains("`grades.md`"), "{ours}");
    // The file report has everything.
    let full = std::fs::read_to_string(d.join("grades.md")).unwrap();
    assert!(full.len() > ours.len() && !full.contains("Trimmed"));
}
