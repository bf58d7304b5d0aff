//! The web labs graded for real: student servers driven by netgrade's probes,
//! real servers (Python's http.server, nginx, busybox httpd) as submissions,
//! and student HTTP clients against netgrade's reference server.

mod common;

use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;

const WEB_CHECKS: [&str; 7] = [
    "serves-file",
    "status-line",
    "not-found",
    "keeps-serving",
    "binary-file",
    "large-file",
    "headers",
];

/// fixture → checks that must fail; `None`: every other check passes;
/// `Some(list)`: these must pass (the rest follow from the mistake).
const WEB_EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("minimal-handout", &[], None),
    ("threaded", &[], None),
    ("localhost-only", &[], None),
    ("ignores-sigterm-server", &[], None),
    ("leading-space", &["status-line"], Some(&["serves-file"])),
    (
        "leading-newline",
        &["status-line"],
        Some(&["serves-file", "not-found"]),
    ),
    (
        "lf-only",
        &["status-line"],
        Some(&[
            "serves-file",
            "binary-file",
            "large-file",
            "not-found",
            "headers",
            "keeps-serving",
        ]),
    ),
    (
        "no-blank-line",
        &["serves-file", "status-line", "binary-file", "large-file"],
        None,
    ),
    (
        "404-no-status-line",
        &["not-found"],
        Some(&["serves-file", "binary-file", "large-file", "headers"]),
    ),
    (
        "crash-on-missing",
        &["not-found", "keeps-serving"],
        Some(&["serves-file", "binary-file"]),
    ),
    ("text-mode", &["binary-file"], Some(&["serves-file"])),
    (
        "single-recv",
        &["binary-file", "large-file"],
        Some(&["serves-file", "not-found", "keeps-serving"]),
    ),
    (
        "wrong-content-length",
        &["headers"],
        Some(&["serves-file", "binary-file", "large-file"]),
    ),
    (
        "dies-second-request",
        &["keeps-serving"],
        Some(&["serves-file"]),
    ),
    ("never-listens", &WEB_CHECKS, None),
    ("never-answers", &WEB_CHECKS, None),
    (
        "fixed-routes",
        &["not-found", "binary-file", "large-file"],
        Some(&["serves-file", "keeps-serving"]),
    ),
];

fn web_fixture(name: &str) -> String {
    format!("fixtures/webserver/{name}")
}

#[test]
fn every_webserver_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("web.json");
    netgrade()
        .args(["run", "webserver", "-j", "6", "--quiet", "--json"])
        .arg(&json)
        .args(WEB_EXPECTED.iter().map(|(n, _, _)| web_fixture(n)))
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "{} runs",
            WEB_EXPECTED.len()
        )));
    let report = read_json(&json);
    check_expectations(&report, WEB_EXPECTED, &WEB_CHECKS, web_fixture);

    // The diagnoses name the real mistakes.
    let message = |name: &str, id: &str| {
        let run = run_of(&report, &web_fixture(name));
        let c = run["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        format!("{} {}", c["message"], c["evidence"])
    };
    for (name, id, needle) in [
        ("leading-space", "status-line", "before the status line"),
        ("lf-only", "status-line", "bare LF"),
        (
            "no-blank-line",
            "serves-file",
            "no blank line after the status line",
        ),
        ("404-no-status-line", "not-found", "has no status line"),
        (
            "crash-on-missing",
            "not-found",
            "crashed on a file that does not exist",
        ),
        (
            "never-listens",
            "serves-file",
            "did not listen on any TCP port",
        ),
        (
            "single-recv",
            "large-file",
            "stops after 1024 of the 204848 bytes",
        ),
        ("wrong-content-length", "headers", "Content-Length"),
        (
            "fixed-routes",
            "not-found",
            "answers files that do not exist",
        ),
        ("dies-second-request", "keeps-serving", "while True"),
        (
            "never-answers",
            "serves-file",
            "and kept the connection open",
        ),
    ] {
        let m = message(name, id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    let localhost = run_of(&report, &web_fixture("localhost-only"));
    assert_eq!(localhost["score"], localhost["max_score"]);
}

#[test]
fn the_threaded_lab_tells_one_at_a_time_servers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("threaded.json");
    netgrade()
        .args(["run", "webserver-threaded", "-j", "2", "--quiet", "--json"])
        .arg(&json)
        .args(["threaded", "reference"].map(web_fixture))
        .assert()
        .code(1);
    let report = read_json(&json);
    assert_eq!(
        status(run_of(&report, &web_fixture("threaded")), "concurrent"),
        "pass"
    );
    let single = run_of(&report, &web_fixture("reference"));
    assert_eq!(status(single, "concurrent"), "fail");
    let msg = single["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "concurrent")
        .unwrap()["message"]
        .to_string();
    assert!(msg.contains("one connection at a time"), "{msg}");
    // Holding the first connection open costs the single-threaded server nothing else.
    for id in WEB_CHECKS {
        assert_eq!(status(single, id), "pass", "{id}");
    }
}

/// Real web servers nobody here wrote get full marks on the checks they should pass.
#[test]
fn real_servers_are_graded_fairly() {
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nginx_conf = root().join("fixtures/webserver-real/nginx.conf");
    let cases: Vec<(&str, String)> = vec![
        (
            "python-http.server",
            "python3 -m http.server 8000 --bind 127.0.0.1".to_string(),
        ),
        (
            "nginx",
            format!("nginx -p {{dir}}/ -c {} -e stderr", nginx_conf.display()),
        ),
        (
            "busybox-httpd",
            "busybox httpd -f -p 127.0.0.1:8081 -h .".to_string(),
        ),
    ];
    for (name, cmd) in cases {
        let program = cmd.split(' ').next().unwrap();
        if which(program).is_none() {
            panic!("{program} is not installed; .ci/run installs it");
        }
        let json = dir.path().join(format!("{name}.json"));
        netgrade()
            .args([
                "run",
                "webserver-threaded",
                "--quiet",
                "--cmd",
                &cmd,
                "--json",
            ])
            .arg(&json)
            .arg(empty.path())
            .assert()
            .success();
        let report = read_json(&json);
        let run = &report["runs"][0];
        let checks = run["checks"].as_array().unwrap();
        let failed: Vec<String> = checks
            .iter()
            .filter(|c| c["status"] != "pass")
            .map(|c| format!("{}: {}", c["id"], c["message"]))
            .collect();
        // busybox httpd serves one connection at a time? It forks per connection, so it passes too.
        assert!(
            failed.is_empty(),
            "{name} lost points:\n{}",
            failed.join("\n")
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}

#[test]
fn a_server_that_ignores_sigterm_and_forks_is_stopped_and_cleaned_up() {
    let marker = format!("marker-web-{}", std::process::id());
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args(["run", "webserver", "--quiet", "--cmd"])
        .arg(format!("python3 WebServer.py {marker}"))
        .arg("--json")
        .arg(&json)
        .arg(web_fixture("ignores-sigterm-server"))
        .assert()
        .success();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(200));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker) && !c.contains("netgrade"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let report = read_json(&json);
    assert_eq!(report["runs"][0]["program"]["exit"]["kind"], "stopped");
}

const CLIENT_CHECKS: [&str; 5] = [
    "runs",
    "request-line",
    "host-header",
    "crlf",
    "prints-response",
];

const CLIENT_EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    (
        "no-host",
        &["host-header"],
        Some(&["runs", "request-line", "crlf"]),
    ),
    ("lf-only", &["crlf"], Some(&["request-line", "host-header"])),
    (
        "no-blank-line",
        &["crlf", "prints-response"],
        Some(&["request-line", "host-header", "runs"]),
    ),
    (
        "wrong-target",
        &["request-line"],
        Some(&["runs", "host-header", "crlf"]),
    ),
    ("prints-nothing", &["prints-response"], None),
];

fn client_fixture(name: &str) -> String {
    format!("fixtures/http-client/{name}")
}

#[test]
fn every_http_client_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("client.json");
    netgrade()
        .args(["run", "http-client", "-j", "6", "--quiet", "--json"])
        .arg(&json)
        .args(CLIENT_EXPECTED.iter().map(|(n, _, _)| client_fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, CLIENT_EXPECTED, &CLIENT_CHECKS, client_fixture);
}

#[test]
fn web_transcripts_are_the_same_run_after_run() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let fixtures = ["reference", "lf-only", "crash-on-missing", "no-blank-line"];
    for dir in &dirs {
        netgrade()
            .args(["run", "webserver", "-j", "4", "--quiet", "--snapshots"])
            .arg(dir.path())
            .args(fixtures.map(web_fixture))
            .assert()
            .code(1);
    }
    for name in fixtures {
        let file = format!("fixtures_webserver_{name}.txt");
        let a = std::fs::read_to_string(dirs[0].path().join(&file)).unwrap();
        let b = std::fs::read_to_string(dirs[1].path().join(&file)).unwrap();
        assert_eq!(a, b, "{name}: transcripts differ");
    }
    let reference =
        std::fs::read_to_string(dirs[0].path().join("fixtures_webserver_reference.txt")).unwrap();
    insta::assert_snapshot!("webserver-reference-transcript", reference);

    let clients = ["reference", "no-host", "lf-only"];
    for dir in &dirs {
        netgrade()
            .args(["run", "http-client", "-j", "3", "--quiet", "--snapshots"])
            .arg(dir.path())
            .args(clients.map(client_fixture))
            .assert()
            .code(1);
    }
    for name in clients {
        let file = format!("fixtures_http-client_{name}.txt");
        let a = std::fs::read_to_string(dirs[0].path().join(&file)).unwrap();
        let b = std::fs::read_to_string(dirs[1].path().join(&file)).unwrap();
        assert_eq!(a, b, "http-client {name}: transcripts differ");
    }
    let client =
        std::fs::read_to_string(dirs[0].path().join("fixtures_http-client_reference.txt")).unwrap();
    insta::assert_snapshot!("http-client-reference-transcript", client);
}
