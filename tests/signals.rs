//! Stopping a batch: Ctrl-C (SIGINT), SIGTERM and SIGKILL of netgrade lose no
//! finished result and leave no process and no work folder behind.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{assert_nothing_left, pinger_fixture, root};

/// A batch with one quick submission and three that hang (one ignores
/// SIGTERM, one leaves a child behind), started in a private scratch folder.
fn start_batch(scratch: &std::path::Path, json: &std::path::Path) -> Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("netgrade"))
        .current_dir(root())
        .env("TMPDIR", scratch)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .args([
            "run",
            "udp-pinger",
            "-j",
            "4",
            "--time-limit",
            "60s",
            "--json",
        ])
        .arg(json)
        .args(["python2", "no-timeout", "ignores-sigterm", "no-timeout"].map(pinger_fixture))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the quick submission's result is in the JSON report.
fn wait_for_first_result(json: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(json).is_ok_and(|t| t.contains("python2")) {
            // Let the hanging programs get going.
            std::thread::sleep(Duration::from_millis(500));
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no result was written within 30 s");
}

fn stop_with(signal: i32) {
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let child = start_batch(scratch.path(), &json);
    wait_for_first_result(&json);
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let started = Instant::now();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "netgrade took {:?} to stop",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted: 1 of 4 submissions graded"),
        "{stderr}"
    );
    // The partial grade book, and the finished result kept in the report.
    assert!(stdout.contains("1 run"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    assert_nothing_left(scratch.path());
    assert_no_cgroup_of(pid);
}

/// Waits (up to 20 s) until no run cgroup of netgrade process `pid` is left.
fn assert_no_cgroup_of(pid: u32) {
    let prefix = format!("netgrade-{pid}-");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<_> = [
            "/sys/fs/cgroup",
            "/sys/fs/cgroup/pids",
            "/sys/fs/cgroup/memory",
        ]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "cgroups left: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_stops_every_run_and_keeps_every_result() {
    stop_with(libc::SIGINT);
}

#[test]
fn sigterm_stops_every_run_and_keeps_every_result() {
    stop_with(libc::SIGTERM);
}

#[test]
fn sigkill_leaves_no_process_and_no_folder() {
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let mut child = start_batch(scratch.path(), &json);
    wait_for_first_result(&json);
    assert!(!common::processes_working_in(scratch.path()).is_empty());
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_nothing_left(scratch.path());
    assert_no_cgroup_of(pid);
}
