//! Gradescope's autograder, run for real: `netgrade gradescope` builds the
//! zip, Python's zipfile unpacks it into a folder laid out as Gradescope's
//! `/autograder`, and `run_autograder` grades a fixture there (setup.sh is
//! only checked, it installs packages). PrairieLearn's results too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Checks of udp-pinger, in order.
const CHECKS: [&str; 7] = [
    "runs",
    "ping-count",
    "ping-format",
    "waits-for-timeout",
    "reports-timeouts",
    "prints-replies",
    "reports-rtt",
];

/// The fixture that loses exactly `prints-replies`.
const FIXTURE: &str = "no-reply-print";

/// Unpacks `zip` into `dir` with Python's zipfile, each file with the Unix
/// mode the zip gives it; returns `name mode` lines. Fails unless every
/// entry's CRC is right.
fn unpack(zip: &Path, dir: &Path) -> Vec<String> {
    let script = r#"
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
bad = z.testzip()
assert bad is None, f"bad CRC: {bad}"
for i in z.infolist():
    path = z.extract(i, sys.argv[2])
    os.chmod(path, (i.external_attr >> 16) & 0o7777)
    print(i.filename, oct((i.external_attr >> 16) & 0o7777), i.create_system)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(zip)
        .arg(dir)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Builds the autograder of `lab` and lays it out as Gradescope does:
/// `source/` (the zip), `submission/` (a copy of the fixture), `results/`.
/// Returns the folder and the zip's listing.
fn autograder(lab: &str, dir: &Path) -> (PathBuf, Vec<String>) {
    let zip = dir.join("autograder.zip");
    netgrade()
        .args(["gradescope", lab, "-o"])
        .arg(&zip)
        .assert()
        .success();
    let ag = dir.join("autograder");
    let listing = unpack(&zip, &ag.join("source"));
    let submission = ag.join("submission");
    std::fs::create_dir_all(&submission).unwrap();
    std::fs::create_dir_all(ag.join("results")).unwrap();
    let fixture = root().join(pinger_fixture(FIXTURE));
    for file in std::fs::read_dir(&fixture).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), submission.join(file.file_name())).unwrap();
    }
    (ag, listing)
}

/// Runs `run_autograder` with `AUTOGRADER` set to `ag` and the unpacked
/// netgrade first on `PATH`; returns results.json.
fn run_autograder(ag: &Path) -> serde_json::Value {
    let path = format!(
        "{}:{}",
        ag.join("source").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(ag.join("source/run_autograder"))
        .env("AUTOGRADER", ag)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .current_dir(ag)
        .output()
        .expect("run_autograder runs");
    assert!(
        out.status.success(),
        "run_autograder failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    read_json(&ag.join("results/results.json"))
}

/// The score `netgrade run LAB FIXTURE --json` gives.
fn json_score(lab: &str, dir: &Path) -> f64 {
    let json = dir.join("report.json");
    netgrade()
        .args(["run", lab, &pinger_fixture(FIXTURE), "--quiet", "--json"])
        .arg(&json)
        .assert()
        .code(1);
    let report = read_json(&json);
    run_of(&report, &pinger_fixture(FIXTURE))["score"]
        .as_f64()
        .unwrap()
}

/// Each test's check id (its name up to `:`), status and visibility.
fn tests_of(results: &serde_json::Value) -> Vec<(String, String, String)> {
    results["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            (
                name.split(':').next().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
                t["visibility"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_built_in_lab_autograder_grades_as_run_does() {
    let dir = tempfile::tempdir().unwrap();
    let (ag, listing) = autograder("udp-pinger", dir.path());
    // Unix entries: the scripts and the binary executable.
    assert_eq!(
        listing,
        [
            "setup.sh 0o755 3",
            "run_autograder 0o755 3",
            "netgrade 0o755 3"
        ]
    );
    let results = run_autograder(&ag);
    assert_eq!(
        results["score"].as_f64().unwrap(),
        json_score("udp-pinger", dir.path())
    );
    assert_eq!(results["score"], 9.0);
    assert_eq!(results["output_format"], "md");
    assert!(results["execution_time"].as_u64().is_some());
    let tests = tests_of(&results);
    let ids: Vec<&str> = tests.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(ids, CHECKS);
    for (id, status, visibility) in &tests {
        let expected = if id == "prints-replies" {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(status, expected, "{id}");
        assert_eq!(visibility, "visible", "{id}");
    }
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("not passed: `prints-replies`"), "{output}");
}

#[test]
fn a_lab_file_autograder_keeps_hidden_checks_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let lab = "fixtures/specs/gradescope-hidden.yaml";
    let (ag, listing) = autograder(lab, dir.path());
    assert!(
        listing.contains(&"lab/gradescope-hidden.yaml 0o644 3".to_string()),
        "{listing:?}"
    );
    let run = std::fs::read_to_string(ag.join("source/run_autograder")).unwrap();
    assert!(
        run.contains(
            r#"run "$AUTOGRADER/source/lab/gradescope-hidden.yaml" "$AUTOGRADER/submission""#
        ),
        "{run}"
    );
    let results = run_autograder(&ag);
    assert_eq!(
        results["score"].as_f64().unwrap(),
        json_score(lab, dir.path())
    );
    let tests = tests_of(&results);
    assert_eq!(tests.len(), CHECKS.len());
    let find = |id: &str| tests.iter().find(|t| t.0 == id).unwrap().clone();
    assert_eq!(
        find("prints-replies"),
        ("prints-replies".into(), "failed".into(), "hidden".into())
    );
    assert_eq!(
        find("reports-rtt"),
        (
            "reports-rtt".into(),
            "passed".into(),
            "after_due_date".into()
        )
    );
    assert_eq!(find("runs").2, "visible");
    // The summary students see names neither check.
    let output = results["output"].as_str().unwrap();
    assert!(!output.contains("prints-replies"), "{output}");
    assert!(!output.contains("reports-rtt"), "{output}");
    assert!(output.contains("`hidden-checks`"), "{output}");
}

#[test]
fn run_autograder_leaves_results_when_netgrade_cannot_grade() {
    let dir = tempfile::tempdir().unwrap();
    let (ag, _) = autograder("fixtures/specs/gradescope-hidden.yaml", dir.path());
    std::fs::write(
        ag.join("source/lab/gradescope-hidden.yaml"),
        "name: [not closed\n",
    )
    .unwrap();
    let results = run_autograder(&ag);
    assert_eq!(results["score"], 0);
    assert_eq!(results["tests"].as_array().unwrap().len(), 0);
    let output = results["output"].as_str().unwrap();
    assert!(output.contains("The autograder failed"), "{output}");
    assert!(output.contains("exit status 2"), "{output}");
    assert!(output.contains("not your fault"), "{output}");
}

/// `setup.sh` of `lab`, built with a small stand-in for the binary.
fn setup_sh(lab: &str, dir: &Path) -> String {
    let binary = dir.join("fake-netgrade");
    std::fs::write(&binary, "#!/bin/sh\necho netgrade 0.0.0\n").unwrap();
    let zip = dir.join("small.zip");
    netgrade()
        .args(["gradescope", lab, "-o"])
        .arg(&zip)
        .arg("--binary")
        .arg(&binary)
        .assert()
        .success();
    let unpacked = dir.join("small");
    let listing = unpack(&zip, &unpacked);
    assert!(listing.contains(&"netgrade 0o755 3".to_string()));
    assert_eq!(
        std::fs::read(unpacked.join("netgrade")).unwrap(),
        std::fs::read(&binary).unwrap()
    );
    let setup = unpacked.join("setup.sh");
    let syntax = Command::new("bash").arg("-n").arg(&setup).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    std::fs::read_to_string(setup).unwrap()
}

/// The packages of setup.sh's `apt-get install` line.
fn installed(setup: &str) -> Vec<String> {
    let line = setup
        .lines()
        .find(|l| l.starts_with("apt-get install"))
        .expect("an apt-get install line");
    line.split_whitespace()
        .skip(2)
        .filter(|w| !w.starts_with('-'))
        .map(String::from)
        .collect()
}

#[test]
fn setup_installs_what_the_labs_languages_need() {
    let dir = tempfile::tempdir().unwrap();
    // udp-pinger takes Python, Java, C, Go and Rust programs.
    let setup = setup_sh("udp-pinger", dir.path());
    assert_eq!(
        installed(&setup),
        [
            "python3",
            "python3-venv",
            "gcc",
            "libc6-dev",
            "default-jdk-headless",
            "golang-go",
            "rustc",
            "cargo"
        ]
    );
    assert!(setup.contains("install -m 0755 \"$here/netgrade\" /usr/local/bin/netgrade"));
    assert!(setup.contains("/usr/local/bin/netgrade --version"));
    assert!(setup.contains("--binary"));
    // A lab of Python programs only needs Python.
    let python = tempfile::tempdir().unwrap();
    let setup = setup_sh("fixtures/specs/custom.yaml", python.path());
    assert_eq!(installed(&setup), ["python3", "python3-venv"]);
}

#[test]
fn a_lab_that_does_not_load_makes_no_autograder() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("autograder.zip");
    netgrade()
        .args(["gradescope", "fixtures/specs/no-such-lab.yaml", "-o"])
        .arg(&zip)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not load"));
    assert!(!zip.exists());
}

#[test]
fn prairielearn_results_score_from_zero_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let (json, pl) = (dir.path().join("r.json"), dir.path().join("pl.json"));
    netgrade()
        .args(["run", "udp-pinger", &pinger_fixture(FIXTURE), "--quiet"])
        .arg("--json")
        .arg(&json)
        .arg("--prairielearn")
        .arg(&pl)
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = run_of(&report, &pinger_fixture(FIXTURE));
    let results = read_json(&pl);
    assert_eq!(results["gradable"], true);
    let expected = run["score"].as_f64().unwrap() / run["max_score"].as_f64().unwrap();
    assert!((results["score"].as_f64().unwrap() - expected).abs() < 1e-9);
    let tests = results["tests"].as_array().unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, CHECKS);
    let lost = &tests[5];
    assert_eq!(
        (lost["points"].as_f64(), lost["max_points"].as_f64()),
        (Some(0.0), Some(1.0))
    );
}
