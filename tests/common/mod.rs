//! Helpers shared by the integration tests: run the real binary on fixtures.

#![allow(dead_code)]

pub mod junit;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The repository root (where `fixtures/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/udp-pinger/NAME`, relative to the root (paths in reports stay short).
pub fn pinger_fixture(name: &str) -> String {
    format!("fixtures/udp-pinger/{name}")
}

/// The netgrade binary, run from the repository root, with a clean environment
/// for reports (no step summary from the surrounding CI).
pub fn netgrade() -> Command {
    let mut cmd = Command::cargo_bin("netgrade").expect("binary built");
    cmd.current_dir(root())
        .env_remove("GITHUB_STEP_SUMMARY")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(300));
    cmd
}

/// Parses a JSON report.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("JSON report written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// The run of `submission` in a JSON report.
pub fn run_of<'a>(report: &'a serde_json::Value, submission: &str) -> &'a serde_json::Value {
    report["runs"]
        .as_array()
        .expect("runs array")
        .iter()
        .find(|r| r["submission"] == submission)
        .unwrap_or_else(|| panic!("no run for {submission}"))
}

/// Check `id` of `run` in a JSON report.
pub fn check_of<'a>(run: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    run["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

/// Status of check `id` in `run`.
pub fn status<'a>(run: &'a serde_json::Value, id: &str) -> &'a str {
    check_of(run, id)["status"].as_str().expect("status string")
}

/// Redactions for console/JSON/JUnit snapshots: times, temp paths, epoch values.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        // A run graded again because the machine was too busy says so; the
        // grade is the same.
        (r"(?m)^ *note: regraded: .*\n", ""),
        (r#""notes": \[\s*"regraded: [^"]*"\s*\]"#, r#""notes": []"#),
        (r#""regraded: [^"]*",?\s*"#, ""),
        (r"\d+\.\d+(e-?\d+)?", "[num]"),
        (r"\b\d{10,}\b", "[num]"),
        (r"in \d+ ms", "in [time]"),
        (r"\d+ ms", "[ms]"),
        (r"netgrade-[A-Za-z0-9]{6}", "netgrade-[tmp]"),
        (
            r#""(total_ms|program_ms|overhead_ms|queued_ms|late_ms|duration_ms)": [0-9.]+"#,
            r#""$1": "[ms]""#,
        ),
        (r#"time="[0-9.]+""#, r#"time="[time]""#),
        (r#"timestamp="[^"]+""#, r#"timestamp="[time]""#),
        (r#""netgrade": "[^"]+""#, r#""netgrade": "[version]""#),
        // The lab's digest changes with every edit of its YAML.
        (
            r#""lab_digest": "[0-9a-f]*""#,
            r#""lab_digest": "[digest]""#,
        ),
        // How limits are enforced depends on the machine (cgroups or not).
        (r#""limits": "[^"]+""#, r#""limits": "[limits]""#),
    ]
}

/// A fixture, the checks it must fail, and the checks it must pass: `None`
/// means every other check; `Some(list)` only those (the rest follow from the
/// mistake and are left free).
pub type Expectation = (
    &'static str,
    &'static [&'static str],
    Option<&'static [&'static str]>,
);

/// Asserts every expectation against a JSON report, listing all mismatches at once.
pub fn check_expectations(
    report: &serde_json::Value,
    expected: &[Expectation],
    checks: &[&str],
    path: fn(&str) -> String,
) {
    let mut wrong = Vec::new();
    for (name, must_fail, must_pass) in expected {
        let run = run_of(report, &path(name));
        for id in checks {
            let st = status(run, id);
            let should_fail = must_fail.contains(id);
            let should_pass = match must_pass {
                None => !should_fail,
                Some(list) => list.contains(id),
            };
            if (should_fail && st != "fail") || (should_pass && st != "pass") {
                let check = run["checks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["id"] == *id)
                    .unwrap();
                wrong.push(format!("{name}: {id} is {st}: {check}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected results:\n{}",
        wrong.join("\n")
    );
}

/// Message and evidence of check `id` in the run of `submission`.
pub fn message(report: &serde_json::Value, submission: &str, id: &str) -> String {
    let run = run_of(report, submission);
    let c = run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap();
    format!("{} {}", c["message"], c["evidence"])
}

/// Processes whose working directory is inside `dir`.
pub fn processes_working_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            cwd.starts_with(dir).then(|| {
                format!(
                    "{pid}: {}",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                )
            })
        })
        .collect()
}

/// Waits (up to 20 s) until no process works in `scratch` and the folder
/// is empty: what netgrade leaves after it ends, however it ends.
pub fn assert_nothing_left(scratch: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let procs = processes_working_in(scratch);
        let files: Vec<String> = std::fs::read_dir(scratch)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if procs.is_empty() && files.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: processes {procs:?}, files {files:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether the tests run as root; if not, says which test is skipped and
/// why (`needs`: what needs root).
pub fn as_root(needs: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: {needs}, which needs root");
    }
    root
}

/// Where `program` is on the PATH, if it is.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}
