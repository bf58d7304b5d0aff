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
///
/// A request that ends the server costs only the check that owns it: netgrade
/// starts the server again for the next request, so the other checks are
/// judged on their own requests.
const WEB_EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("minimal-handout", &[], None),
    ("threaded", &[], None),
    ("localhost-only", &[], None),
    ("ignores-sigterm-server", &[], None),
    // The handout's trailing "\r\n" after the file, without Content-Length: accepted.
    ("handout-crlf", &[], None),
    // Always `Content-Type: text/html`, so the image's type is wrong too.
    ("leading-space", &["status-line", "headers"], None),
    ("leading-newline", &["status-line"], None),
    ("lf-only", &["status-line"], None),
    (
        "no-blank-line",
        // The page cannot show (serves-file) and the head is malformed
        // (status-line); the image and the large file still arrive whole.
        &["serves-file", "status-line"],
        None,
    ),
    (
        "404-no-status-line",
        &["not-found"],
        Some(&["serves-file", "binary-file", "large-file", "headers"]),
    ),
    ("crash-on-missing", &["not-found"], None),
    ("exits-after-404", &["not-found"], None),
    ("text-mode", &["binary-file"], None),
    ("handout-text-mode", &["binary-file"], None),
    ("single-recv", &["binary-file", "large-file"], None),
    ("wrong-content-length", &["headers"], None),
    ("crlf-content-length", &["headers"], None),
    // Sends the file again after a Content-Length response: once netgrade
    // has hung up, the server dies of the broken pipe; headers pays, once.
    ("sends-twice", &["headers"], None),
    ("dies-second-request", &["keeps-serving"], None),
    ("closes-listening-socket", &["keeps-serving"], None),
    // Nothing answered: the checks that own a request fail; status-line,
    // keeps-serving and headers have no response to judge and are skipped.
    (
        "never-listens",
        &["serves-file", "not-found", "binary-file", "large-file"],
        Some(&[]),
    ),
    (
        "never-answers",
        &["serves-file", "not-found", "binary-file", "large-file"],
        Some(&[]),
    ),
    // Takes its port from the command line: netgrade passes the handout's.
    ("port-from-argv", &[], None),
    // Python 2 code: every request crashes on send(str), the 404 too.
    (
        "send-str",
        &["serves-file", "not-found", "binary-file", "large-file"],
        Some(&[]),
    ),
    // The header goes out, then the body's send(str) crashes: the requests'
    // own checks pay, not keeps-serving (the same crash on /docs/notes.txt).
    (
        "body-send-str",
        &["serves-file", "binary-file", "large-file"],
        None,
    ),
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
    for name in ["never-listens", "never-answers", "send-str"] {
        let run = run_of(&report, &web_fixture(name));
        for id in ["status-line", "keeps-serving", "headers"] {
            assert_eq!(status(run, id), "skip", "{name}: {id}: {run}");
        }
    }

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
        // The crash is charged with its traceback, and the advice fits it.
        ("text-mode", "binary-file", "UnicodeDecodeError"),
        (
            "handout-text-mode",
            "binary-file",
            "open it with \\\"rb\\\"",
        ),
        ("crash-on-missing", "not-found", "FileNotFoundError"),
        (
            "exits-after-404",
            "not-found",
            "a missing file must not end the server",
        ),
        (
            "closes-listening-socket",
            "keeps-serving",
            "Bad file descriptor",
        ),
        ("crlf-content-length", "headers", "2 more byte(s)"),
        // A pass with a note: the skeleton's own trailing CRLF.
        ("handout-crlf", "serves-file", "the handout's own"),
        ("handout-text-mode", "large-file", "the handout's own"),
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
        ("dies-second-request", "keeps-serving", "exited (status 0)"),
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

    // The program's account: the last instance stopped after the checks, the
    // crashed one and the restart in the diagnoses.
    let text_mode = &run_of(&report, &web_fixture("text-mode"))["program"];
    assert_eq!(text_mode["exit"]["kind"], "stopped", "{text_mode}");
    let diagnoses = text_mode["diagnoses"].to_string();
    assert!(
        diagnoses.contains("started the server again 1 time(s)")
            && diagnoses.contains("exited with status 1 after GET /image.png"),
        "{diagnoses}"
    );
    let reference = &run_of(&report, &web_fixture("reference"))["program"];
    assert_eq!(reference["diagnoses"], serde_json::json!([]), "{reference}");
}

#[test]
fn the_threaded_lab_tells_one_at_a_time_servers_apart() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("threaded.json");
    // `reference` reads up to the blank line; `minimal-handout` reads with one
    // recv(1024). Both serve one connection at a time.
    netgrade()
        .args(["run", "webserver-threaded", "-j", "3", "--quiet", "--json"])
        .arg(&json)
        .args(["threaded", "reference", "minimal-handout"].map(web_fixture))
        .assert()
        .code(1);
    let report = read_json(&json);
    assert_eq!(
        status(run_of(&report, &web_fixture("threaded")), "concurrent"),
        "pass"
    );
    for name in ["reference", "minimal-handout"] {
        let single = run_of(&report, &web_fixture(name));
        assert_eq!(status(single, "concurrent"), "fail", "{name}");
        let msg = message(&report, &web_fixture(name), "concurrent");
        assert!(msg.contains("one connection at a time"), "{name}: {msg}");
        assert!(
            msg.contains("answered only after the first client's request"),
            "{name}: {msg}"
        );
        // Holding the first connection open costs the single-threaded server nothing else.
        for id in WEB_CHECKS {
            assert_eq!(status(single, id), "pass", "{name}: {id}");
        }
        assert_eq!(single["program"]["exit"]["kind"], "stopped", "{name}");
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
    let fixtures = [
        "reference",
        "lf-only",
        "crash-on-missing",
        "no-blank-line",
        "handout-text-mode",
        "closes-listening-socket",
    ];
    for dir in &dirs {
        netgrade()
            .args(["run", "webserver", "-j", "6", "--quiet", "--snapshots"])
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
    // A crash, the restart, and the requests after it.
    let crash = std::fs::read_to_string(
        dirs[0]
            .path()
            .join("fixtures_webserver_handout-text-mode.txt"),
    )
    .unwrap();
    insta::assert_snapshot!("webserver-handout-text-mode-transcript", crash);

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
