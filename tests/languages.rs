//! Choosing and starting the right program: the handout's server left beside
//! the client, Go and Rust clients, `--cmd` with `{entry}` and `{addr}`, and a
//! lab that allows numpy. The real binary grades fixtures/udp-pinger; every
//! Go or Rust fixture is built once per test.

mod common;

use common::*;

const CHECKS: [&str; 7] = [
    "runs",
    "ping-count",
    "ping-format",
    "waits-for-timeout",
    "reports-timeouts",
    "prints-replies",
    "reports-rtt",
];

/// Grades `fixtures` on `lab` (extra arguments before them) and returns the JSON report.
fn grade(lab: &str, extra: &[&str], fixtures: &[&str], code: i32) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    netgrade()
        .args(["run", lab, "-j", "3", "--quiet", "--json"])
        .arg(&json)
        .args(extra)
        .args(fixtures.iter().map(|f| pinger_fixture(f)))
        .assert()
        .code(code);
    read_json(&json)
}

/// Asserts full marks for `fixture`, listing any check that did not pass.
fn assert_full_marks(report: &serde_json::Value, fixture: &str) {
    let run = run_of(report, &pinger_fixture(fixture));
    assert_eq!(run["score"], run["max_score"], "{fixture}: {run:#}");
}

fn words(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect()
}

#[test]
fn the_client_is_graded_not_the_handouts_server_beside_it() {
    let report = grade("udp-pinger", &[], &["with-handout-server"], 0);
    assert_full_marks(&report, "with-handout-server");
    let run = run_of(&report, &pinger_fixture("with-handout-server"));
    assert_eq!(
        words(&run["program"]["command"]),
        ["python3", "pinger_client.py", "127.0.0.1", "12000"]
    );
    let notes = run["notes"].to_string();
    assert!(
        notes.contains("graded pinger_client.py; passed over UDPPingerServer.py: it binds port 12000, the port of the lab's server (line 9: `serverSocket.bind(('', 12000))`)"),
        "{notes}"
    );
}

#[test]
fn go_and_rust_clients_get_full_marks() {
    let fixtures = ["go-client", "rust-client", "rust-cargo"];
    let report = grade("udp-pinger", &[], &fixtures, 0);
    check_expectations(
        &report,
        &[
            ("go-client", &[], None),
            ("rust-client", &[], None),
            ("rust-cargo", &[], None),
        ],
        &CHECKS,
        pinger_fixture,
    );
    let program = |f: &str| run_of(&report, &pinger_fixture(f))["program"].clone();
    let go = program("go-client");
    assert_eq!(
        words(&go["build"]),
        ["go", "build", "-o", "pinger", "pinger.go"]
    );
    assert_eq!(words(&go["command"]), ["./pinger", "127.0.0.1", "12000"]);
    let rust = program("rust-client");
    assert_eq!(
        words(&rust["build"]),
        [
            "rustc",
            "--edition",
            "2021",
            "-O",
            "-o",
            "pinger",
            "pinger.rs"
        ]
    );
    let cargo = program("rust-cargo");
    assert_eq!(
        words(&cargo["build"]),
        [
            "cargo",
            "build",
            "--release",
            "--offline",
            "--target-dir",
            "target"
        ]
    );
    assert_eq!(words(&cargo["command"])[0], "./target/release/udp-pinger");
}

#[test]
fn a_go_client_taking_host_colon_port() {
    // A lab whose `args` are `["{addr}"]`: the module is built, then run.
    let report = grade("fixtures/specs/udp-pinger-addr.yaml", &[], &["go-addr"], 0);
    assert_full_marks(&report, "go-addr");
    let program = &run_of(&report, &pinger_fixture("go-addr"))["program"];
    assert_eq!(words(&program["build"]), ["go", "build", "-o", "main", "."]);
    assert_eq!(words(&program["command"]), ["./main", "127.0.0.1:12000"]);

    // The built-in lab passes `host port`: this program cannot start with that.
    let report = grade("udp-pinger", &[], &["go-addr"], 1);
    let run = run_of(&report, &pinger_fixture("go-addr"));
    assert_eq!(status(run, "runs"), "fail");
    assert_eq!(status(run, "ping-count"), "fail");

    // The built-in lab, started with --cmd: {entry} is found, {addr} filled in.
    let report = grade(
        "udp-pinger",
        &["--cmd", "go run {entry} {addr}"],
        &["go-addr"],
        0,
    );
    assert_full_marks(&report, "go-addr");
    let program = &run_of(&report, &pinger_fixture("go-addr"))["program"];
    assert_eq!(
        words(&program["command"]),
        ["go", "run", "main.go", "127.0.0.1:12000"]
    );
}

#[test]
fn cmd_naming_an_entry_that_is_not_there_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "todo").unwrap();
    let out = netgrade()
        .args([
            "run",
            "udp-pinger",
            "--cmd",
            "python3 {entry} {host} {port}",
        ])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("--cmd `python3 {entry} {host} {port}` needs the entry file ({entry} or {stem}), but none was found: no program to run"),
        "{text}"
    );
    assert!(text.contains("notes.txt"), "{text}");
}

/// Whether the `python3` that runs programs can import numpy without help.
fn host_python_has_numpy() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import numpy"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_lab_that_allows_numpy_runs_python_with_it() {
    let report = grade(
        "fixtures/specs/udp-pinger-stats-numpy.yaml",
        &[],
        &["stats-numpy", "stats-reference"],
        0,
    );
    assert_full_marks(&report, "stats-numpy");
    assert_full_marks(&report, "stats-reference");

    // The plain lab allows only the standard library.
    if host_python_has_numpy() {
        eprintln!(
            "python3 imports numpy without netgrade's environment: the plain lab cannot show a missing module here"
        );
        return;
    }
    let report = grade("udp-pinger-stats", &[], &["stats-numpy"], 1);
    let run = run_of(&report, &pinger_fixture("stats-numpy"));
    assert_eq!(status(run, "runs"), "fail");
    let diagnoses = run["program"]["diagnoses"].to_string();
    assert!(
        diagnoses.contains("the program imports `numpy`, which is not installed here"),
        "{diagnoses}"
    );
}

#[test]
fn python_packages_that_cannot_be_installed_stop_the_batch() {
    // A fresh cache and an index where nothing listens: pip fails at once.
    let cache = tempfile::tempdir().unwrap();
    let out = netgrade()
        .env("XDG_CACHE_HOME", cache.path())
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
        .env("PIP_FIND_LINKS", "")
        .env("PIP_RETRIES", "0")
        .args(["run", "fixtures/specs/udp-pinger-stats-numpy.yaml"])
        .arg(pinger_fixture("stats-numpy"))
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with(
            "netgrade: cannot prepare the lab's Python packages (numpy): `pip install numpy` failed"
        ),
        "{err}"
    );
    assert!(
        err.contains("No matching distribution found for numpy"),
        "{err}"
    );
    assert!(err.contains("PIP_INDEX_URL"), "{err}");
    assert!(out.stdout.is_empty(), "nothing was graded");
    // Nothing half-made is left to be taken for an environment.
    let left: Vec<_> = std::fs::read_dir(cache.path().join("netgrade/python"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.iter().all(|n| n.ends_with(".lock")), "{left:?}");
}
