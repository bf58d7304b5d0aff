//! The command line: labs, validate, schema, serve, usage errors and exit codes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use predicates::prelude::*;

#[test]
fn labs_lists_the_built_in_labs() {
    netgrade()
        .arg("labs")
        .assert()
        .success()
        .stdout(predicate::str::contains("udp-pinger "))
        .stdout(predicate::str::contains("udp-pinger-stats"));
}

#[test]
fn validate_accepts_good_specs_and_locates_errors() {
    netgrade()
        .args([
            "validate",
            "labs/udp-pinger.yaml",
            "labs/udp-pinger-stats.yaml",
            "fixtures/specs/custom.yaml",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok: labs/udp-pinger.yaml: lab `udp-pinger`, 7 checks, 10 points",
        ));
}

#[test]
fn run_with_a_bad_spec_or_path_is_a_usage_error() {
    netgrade()
        .args([
            "run",
            "fixtures/specs/broken/unknown-field.yaml",
            "fixtures/udp-pinger/reference",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown-field.yaml:14:5"));
    netgrade()
        .args(["run", "no-such-lab", "fixtures/udp-pinger/reference"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "built-in labs: udp-pinger, udp-pinger-stats",
        ));
    netgrade()
        .args(["run", "udp-pinger", "fixtures/udp-pinger/does-not-exist"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    netgrade().args(["run", "udp-pinger"]).assert().code(2);
}

#[test]
fn unwritable_report_is_an_internal_error_but_the_run_is_still_shown() {
    netgrade()
        .args(["run", "udp-pinger", "--json", "/proc/netgrade/report.json"])
        .arg(pinger_fixture("python2"))
        .assert()
        .code(3)
        .stdout(predicate::str::contains("score 0/10"))
        .stderr(predicate::str::contains(
            "cannot write /proc/netgrade/report.json",
        ));
}

#[test]
fn schema_describes_the_lab_format() {
    let out = netgrade()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let schema: serde_json::Value = serde_json::from_slice(&out).expect("schema is JSON");
    let props = &schema["properties"];
    for key in ["name", "servers", "program", "checks", "transcript"] {
        assert!(props.get(key).is_some(), "schema lacks {key}");
    }
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("waits-for-timeout"),
        "check kinds are enumerated"
    );
}

type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `netgrade serve udp-pinger ARGS`: the process, the rest of its
/// output, its banner and the port it bound.
fn serve_pinger(args: &[&str]) -> (std::process::Child, Lines, String, u16) {
    let bin = assert_cmd::cargo::cargo_bin("netgrade");
    let mut server = std::process::Command::new(bin)
        .args(["serve", "udp-pinger"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let banner = lines.next().unwrap().unwrap();
    let port: u16 = banner
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {banner}"));
    (server, lines, banner, port)
}

/// `netgrade serve udp-pinger` against Python's socket module as the client.
#[test]
fn serve_runs_the_pinger_for_students() {
    let (mut server, mut lines, banner, port) =
        serve_pinger(&["--port", "0", "--drop", "2", "--delay", "30ms"]);
    assert!(
        banner.contains("drops datagrams 2, replies after 30 ms"),
        "{banner}"
    );
    let client = format!(
        r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for seq in (1, 2, 3):
    start = time.time()
    s.sendto(f"Ping {{seq}} {{start}}".encode(), ("127.0.0.1", {port}))
    try:
        data, _ = s.recvfrom(1024)
        print(data.decode().split()[0], seq, round(time.time() - start, 3) >= 0.03)
    except socket.timeout:
        print("timeout", seq)
"#
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &client])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        printed,
        "PING 1 True\ntimeout 2\nPING 3 True\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(lines.next().unwrap().unwrap());
    }
    let _ = server.kill();
    let _ = server.wait_timeout_or_kill(Duration::from_secs(5));
    let log = seen.join("\n");
    assert!(log.contains("#2   dropped (no reply)"), "{log}");
    assert!(log.contains("#3   will reply in 30 ms"), "{log}");
    assert!(log.contains("reply to 127.0.0.1:"), "{log}");
}

/// With no flags, `serve udp-pinger` is the pinger the lab grades with: its
/// drop schedule (3, 6, 7), its delays (40–200 ms) and its seed.
#[test]
fn serve_runs_the_pinger_as_the_lab_grades() {
    let (mut server, _lines, banner, port) = serve_pinger(&["--port", "0"]);
    assert!(
        banner.contains("drops datagrams 3, 6, 7, replies after 40 ms–200 ms (seed 1)"),
        "{banner}"
    );
    let client = format!(
        r#"
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for seq in range(1, 9):
    start = time.time()
    s.sendto(f"Ping {{seq}} {{start}}".encode(), ("127.0.0.1", {port}))
    try:
        s.recvfrom(1024)
        print(seq, "reply", time.time() - start >= 0.04)
    except socket.timeout:
        print(seq, "timeout")
"#
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &client])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait_timeout_or_kill(Duration::from_secs(5));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let expected: String = (1..=8)
        .map(|seq| match seq {
            3 | 6 | 7 => format!("{seq} timeout\n"),
            _ => format!("{seq} reply True\n"),
        })
        .collect();
    assert_eq!(
        printed,
        expected,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_takes_the_pinger_of_a_lab_and_says_when_it_has_none() {
    netgrade()
        .args(["serve", "udp-pinger", "--lab", "webserver"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "the lab `webserver` has no udp-pinger server",
        ));
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> std::io::Result<()>;
}

impl WaitTimeout for std::process::Child {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> std::io::Result<()> {
        let deadline = std::time::Instant::now() + d;
        while std::time::Instant::now() < deadline {
            if self.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()
    }
}

/// `netgrade serve http` against curl: a file, a 404, and a conditional GET.
#[test]
fn serve_http_serves_a_folder_to_curl() {
    let (mut server, mut lines, port) = serve(&["http", "--root", "labs/webserver/www"]);
    let url = format!("http://127.0.0.1:{port}/");
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "5"])
            .args(args)
            .output()
            .expect("curl is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = curl(&[&format!("{url}HelloWorld.html")]);
    let file = std::fs::read_to_string(root().join("labs/webserver/www/HelloWorld.html")).unwrap();
    assert_eq!(page, file);
    assert_eq!(
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{url}missing.html")
        ]),
        "404"
    );
    let later = "Fri, 01 Jan 2100 00:00:00 GMT";
    let code = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("If-Modified-Since: {later}"),
        &format!("{url}HelloWorld.html"),
    ]);
    assert_eq!(code, "304");
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(lines.next().unwrap().unwrap());
    }
    let _ = server.kill();
    let _ = server.wait_timeout_or_kill(Duration::from_secs(5));
    let log = seen.join("\n");
    assert!(
        log.contains("\"GET /HelloWorld.html HTTP/1.1\\r\""),
        "{log}"
    );
    assert!(log.contains("<- 304"), "{log}");
}

/// Starts `netgrade serve ARGS… --port 0` and returns it with the port from its banner.
fn serve(
    args: &[&str],
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    u16,
) {
    let bin = assert_cmd::cargo::cargo_bin("netgrade");
    let mut server = std::process::Command::new(bin)
        .arg("serve")
        .args(args)
        .args(["--port", "0"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let banner = loop {
        let line = lines.next().unwrap().unwrap();
        if line.contains("listening on TCP") {
            break line;
        }
    };
    let port = banner
        .rsplit(':')
        .next()
        .and_then(|p| p.split('.').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {banner}"));
    (server, lines, port)
}

/// `netgrade serve smtp` takes a message from Python's smtplib and prints the session.
#[test]
fn serve_smtp_prints_each_session() {
    let (mut server, mut lines, port) = serve(&["smtp"]);
    let client = format!(
        "import smtplib; s = smtplib.SMTP('127.0.0.1', {port}, timeout=5); s.sendmail('alice@crepes.fr', ['bob@hamburger.edu'], 'Subject: hi\\r\\n\\r\\n.leading dot\\r\\n'); s.quit()"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &client])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut log = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.contains("end: client-quit");
        log.push(line);
        if done {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait_timeout_or_kill(Duration::from_secs(5));
    let log = log.join("\n");
    assert!(
        log.contains("C: \"..leading dot\\r\\n\""),
        "dot-stuffed on the wire: {log}"
    );
    assert!(
        log.contains("delivered from <alice@crepes.fr> to <bob@hamburger.edu>"),
        "{log}"
    );
}

/// `netgrade serve pop3` serves a folder of messages to curl's POP3 client.
#[test]
fn serve_pop3_serves_a_mailbox_to_curl() {
    let (mut server, mut lines, port) = serve(&["pop3", "--mailbox", "labs/mail/maildrop"]);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "-u",
            "alice:wonderland",
            &format!("pop3://127.0.0.1:{port}/2"),
        ])
        .output()
        .expect("curl is installed (.ci/run installs it)");
    let original = std::fs::read(root().join("labs/mail/maildrop/2.eml")).unwrap();
    assert_eq!(
        out.stdout, original,
        "curl un-stuffs the dots; the message is byte for byte the original"
    );
    let mut log = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let done = line.contains("end:");
        log.push(line);
        if done {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait_timeout_or_kill(Duration::from_secs(5));
    let log = log.join("\n");
    assert!(log.contains("C: \"RETR 2\\r\\n\""), "{log}");
}
