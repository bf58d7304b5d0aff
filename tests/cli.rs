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

/// `netgrade serve udp-pinger` against Python's socket module as the client.
#[test]
fn serve_runs_the_pinger_for_students() {
    let served = Served::start(&[
        "udp-pinger",
        "--port",
        "0",
        "--drop",
        "2",
        "--delay",
        "30ms",
    ]);
    let (banner, port) = (served.line("udp-pinger"), served.port("udp-pinger"));
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
    let log = served
        .until("#3   reply to", Duration::from_secs(10))
        .join("\n");
    assert!(log.contains("#2   dropped (no reply)"), "{log}");
    assert!(log.contains("#3   will reply in 30 ms"), "{log}");
    assert!(log.contains("reply to 127.0.0.1:"), "{log}");
}

/// With no flags, `serve udp-pinger` is the pinger the lab grades with: its
/// drop schedule (3, 6, 7), its delays (40–200 ms) and its seed.
#[test]
fn serve_runs_the_pinger_as_the_lab_grades() {
    let served = Served::start(&["udp-pinger", "--port", "0"]);
    let (banner, port) = (served.line("udp-pinger"), served.port("udp-pinger"));
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
    drop(served);
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
    let served = Served::start(&["http", "--root", "labs/webserver/www", "--port", "0"]);
    let port = served.port("http");
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
    let log = served.until("<- 304", Duration::from_secs(10)).join("\n");
    assert!(
        log.contains("\"GET /HelloWorld.html HTTP/1.1\\r\""),
        "{log}"
    );
    assert!(log.contains("<- 304"), "{log}");
}

/// The port of the first `127.0.0.1:PORT` in a banner line.
fn port_in(banner: &str) -> Option<u16> {
    let after = banner.split("127.0.0.1:").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `netgrade serve smtp` takes a message from Python's smtplib and prints the session.
#[test]
fn serve_smtp_prints_each_session() {
    let served = Served::start(&["smtp", "--tls-port", "0", "--port", "0"]);
    let port = served.port("smtp");
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
    let log = served
        .until("end: client-quit", Duration::from_secs(10))
        .join("\n");
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
    let served = Served::start(&["pop3", "--mailbox", "labs/mail/maildrop", "--port", "0"]);
    let port = served.port("pop3");
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
    let log = served.until("end:", Duration::from_secs(10)).join("\n");
    assert!(log.contains("C: \"RETR 2\\r\\n\""), "{log}");
}

/// The built-in labs validate without a warning.
#[test]
fn validate_finds_nothing_to_warn_about_in_the_built_in_labs() {
    let labs: Vec<String> = std::fs::read_dir(root().join("labs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("labs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    assert!(labs.len() >= 9, "{labs:?}");
    netgrade()
        .arg("validate")
        .args(&labs)
        .arg("--deny-warnings")
        .assert()
        .success()
        .stderr("");
}

/// A five-ping variant whose 20 % loss, with seed 1, loses none of the five
/// pings: `validate` warns, says what to change, and `--deny-warnings` fails.
#[test]
fn validate_warns_about_a_loss_rate_that_loses_no_ping() {
    let lab = "fixtures/specs/udp-pinger-five.yaml";
    let out = netgrade()
        .args(["validate", lab])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok: fixtures/specs/udp-pinger-five.yaml: lab `udp-pinger-five`, 7 checks, 10 points",
        ))
        .get_output()
        .stderr
        .clone();
    let warning = String::from_utf8(out).unwrap();
    assert!(
        warning.contains(
            "with the lab's seed 1, `loss: 0.2` drops none of the 5 pings the lab expects, so a correct client gets no points for `waits-for-timeout` and `reports-timeouts` (3 points)"
        ),
        "{warning}"
    );
    assert!(
        warning.contains("--> fixtures/specs/udp-pinger-five.yaml:18:11")
            && warning.contains("loss: 0.2"),
        "{warning}"
    );
    assert!(warning.contains("`drop: [3]`"), "{warning}");
    netgrade()
        .args(["validate", lab, "--deny-warnings"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "1 warning(s), and --deny-warnings makes them errors",
        ));
}

/// The seed a warning suggests, from its `seed: N`.
fn suggested_seed(warning: &str) -> u64 {
    warning
        .split("`seed: ")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seed suggested in {warning}"))
}

/// `validate --reference` grades the reference solution: full marks pass;
/// a lab that cannot give them fails and says which checks lost what; the
/// seed its warning suggests makes the same lab give full marks.
#[test]
fn validate_grades_the_reference_solution() {
    netgrade()
        .args([
            "validate",
            "labs/udp-pinger.yaml",
            "--reference",
            "fixtures/udp-pinger/reference",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "ok: labs/udp-pinger.yaml: lab `udp-pinger`, 7 checks, 10 points; the reference solution gets 10/10",
        ));
    let five = "fixtures/specs/udp-pinger-five.yaml";
    let failed = netgrade()
        .args([
            "validate",
            five,
            "--reference",
            "fixtures/udp-pinger/count-argument",
        ])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(failed.stderr).unwrap();
    for said in [
        "error: fixtures/specs/udp-pinger-five.yaml: the reference solution fixtures/udp-pinger/count-argument got 7/10 on lab `udp-pinger-five`",
        "`waits-for-timeout` lost 2 points (skip): the server lost none of the 5 pings in this run, so there was no timeout to measure",
        "`reports-timeouts` lost 1 point (skip): no ping was lost in this run",
        "a lab must award full marks to its reference solution: fix the lab or the reference",
    ] {
        assert!(stderr.contains(said), "{said}\nnot in\n{stderr}");
    }
    assert!(
        !stderr.contains("`ping-count` lost"),
        "the reference sends the five pings: {stderr}"
    );
    // The report shows the evidence.
    let stdout = String::from_utf8(failed.stdout).unwrap();
    assert!(stdout.contains("score 7/10"), "{stdout}");
    // The seed the warning suggests, with everything else the same.
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("udp-pinger-five.yaml");
    let seed = suggested_seed(&stderr);
    let text = std::fs::read_to_string(root().join(five)).unwrap();
    assert!(text.contains("\nseed: 1\n"));
    std::fs::write(
        &fixed,
        text.replace("\nseed: 1\n", &format!("\nseed: {seed}\n")),
    )
    .unwrap();
    netgrade()
        .arg("validate")
        .arg(&fixed)
        .args(["--reference", "fixtures/udp-pinger/count-argument"])
        .assert()
        .success()
        .stderr("")
        .stdout(predicate::str::contains(
            "the reference solution gets 10/10",
        ));
}

/// A 5-ping lab's messages and hints name its numbers: `range(1, 6)`, not
/// the ten-ping lab's `range(1, 11)`.
#[test]
fn a_five_ping_lab_says_range_1_6() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args([
            "run",
            "fixtures/specs/udp-pinger-five.yaml",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .arg(pinger_fixture("reference"))
        .assert()
        .code(1);
    let report = read_json(&json);
    let check = report["runs"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "ping-count")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "fail", "the reference sends ten: {check}");
    assert_eq!(check["title"], "Exactly 5 pings reach the server");
    assert_eq!(
        check["message"],
        "10 pings reached the server; expected exactly 5: check the bounds of your loop, e.g. `for seq in range(1, 6)`"
    );
    assert_eq!(
        check["hint"],
        "Loop exactly 5 times, e.g. `for seq in range(1, 6):`."
    );
    assert!(!report.to_string().contains("range(1, 11)"), "{report}");
}

#[test]
fn validate_needs_one_reference_per_lab() {
    netgrade()
        .args([
            "validate",
            "udp-pinger",
            "udp-pinger-stats",
            "--reference",
            "fixtures/udp-pinger/reference",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "1 --reference for 2 lab(s): give one reference solution per lab, in the order of the labs",
        ));
    netgrade()
        .args(["validate", "udp-pinger", "--reference", "fixtures/none"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the reference solution `fixtures/none` does not exist",
        ));
}

/// A `netgrade serve` process: its banner, then its output read with a
/// deadline; stopped when dropped.
struct Served {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    banner: Vec<String>,
}

impl Served {
    /// Starts `netgrade serve ARGS` and reads its banner (up to "Ctrl-C to stop.").
    fn start(args: &[&str]) -> Served {
        let bin = assert_cmd::cargo::cargo_bin("netgrade");
        let mut child = std::process::Command::new(bin)
            .arg("serve")
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            lines,
            banner: Vec::new(),
        };
        served.banner = served.until("Ctrl-C to stop.", Duration::from_secs(30));
        served
    }

    /// The lines up to the first that contains `text`, within `limit`.
    fn until(&self, text: &str, limit: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line.contains(text);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} within {limit:?}; printed:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    /// The banner line of the server `label` names (`smtp`, `mail (smtp)`).
    fn line(&self, label: &str) -> &str {
        self.banner
            .iter()
            .find(|l| l.starts_with(&format!("{label} listening on ")))
            .unwrap_or_else(|| panic!("no {label} in {:?}", self.banner))
    }

    /// The port the server `label` names listens on.
    fn port(&self, label: &str) -> u16 {
        let line = self.line(label);
        port_in(line).unwrap_or_else(|| panic!("no port in {line}"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait_timeout_or_kill(Duration::from_secs(5));
    }
}

/// Runs a Python script (each of its socket operations has a timeout) and
/// returns what it printed.
fn python(script: &str) -> String {
    let out = assert_cmd::Command::new("python3")
        .args(["-c", script])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// smtplib against `serve smtp` at `port`: whether the greeting took 250
/// ms or more, and what became of a message to bob.
fn smtplib_send(port: u16) -> String {
    python(&format!(
        r#"
import smtplib, time
t = time.time()
s = smtplib.SMTP("127.0.0.1", {port}, timeout=5)
print("greeting after 250 ms:", time.time() - t >= 0.25)
try:
    s.sendmail("alice@crepes.fr", ["bob@hamburger.edu"], "Subject: hi\r\n\r\nI love computer networks!\r\n")
    print("accepted")
except smtplib.SMTPRecipientsRefused as e:
    code, text = e.recipients["bob@hamburger.edu"]
    print("refused", code, text.decode())
s.quit()
"#
    ))
}

/// `serve smtp --lab smtp-client-reject` is that lab's server: its greeting
/// delay, its 550 to RCPT, its implicit TLS; flags replace what they name.
#[test]
fn serve_smtp_serves_as_the_lab_grades() {
    let served = Served::start(&[
        "smtp",
        "--lab",
        "smtp-client-reject",
        "--port",
        "0",
        "--tls-port",
        "0",
    ]);
    let banner = served.line("smtp");
    assert!(
        banner.contains("greets after 300 ms, offers STARTTLS"),
        "{banner}"
    );
    assert_eq!(
        smtplib_send(served.port("smtp")),
        "greeting after 250 ms: True\nrefused 550 5.1.1 <bob@hamburger.edu>: Recipient address rejected: User unknown\n"
    );
    // Implicit TLS on the port given, with a certificate the printed authority signed.
    let tls_port = banner
        .split("implicit TLS (SMTPS) on TCP ")
        .nth(1)
        .and_then(port_in)
        .unwrap_or_else(|| panic!("{banner}"));
    let pem = served
        .banner
        .iter()
        .find_map(|l| l.split("trust ").nth(1)?.split(' ').next())
        .unwrap_or_else(|| panic!("{:?}", served.banner))
        .to_string();
    let tls = python(&format!(
        r#"
import smtplib, ssl
s = smtplib.SMTP_SSL("127.0.0.1", {tls_port}, timeout=5, context=ssl.create_default_context(cafile="{pem}"))
print(s.noop()[0], s.sock.version())
s.quit()
"#
    ));
    assert!(tls.starts_with("250 TLS"), "{tls}");
    let log = served
        .until("TLS started", Duration::from_secs(10))
        .join("\n");
    assert!(
        log.contains("conn 2 TLS started (TLS 1.3, implicit"),
        "{log}"
    );
    drop(served);

    // The flags replace the lab's delay and rejection.
    let served = Served::start(&[
        "smtp",
        "--lab",
        "smtp-client-reject",
        "--port",
        "0",
        "--tls-port",
        "0",
        "--greeting-delay",
        "0ms",
        "--reject-rcpt=false",
    ]);
    assert!(
        served.line("smtp").contains("greets at once"),
        "{}",
        served.line("smtp")
    );
    assert_eq!(
        smtplib_send(served.port("smtp")),
        "greeting after 250 ms: False\naccepted\n"
    );
}

/// `serve pop3` is the built-in POP3 lab's server: its user, password and
/// maildrop; `--user` replaces the user and keeps the lab's password.
#[test]
fn serve_pop3_serves_the_labs_maildrop_to_poplib() {
    let served = Served::start(&["pop3", "--lab", "pop3-download-keep", "--port", "0"]);
    assert!(
        served.line("pop3").contains(
            "user \"alice\", password \"wonderland\", 3 messages of lab `pop3-download-keep`"
        ),
        "{}",
        served.line("pop3")
    );
    let original = root().join("labs/mail/maildrop/2.eml");
    let got = python(&format!(
        r#"
import poplib
p = poplib.POP3("127.0.0.1", {port}, timeout=5)
p.user("alice"); p.pass_("wonderland")
print(p.stat()[0])
resp, lines, octets = p.retr(2)
print(b"\r\n".join(lines) + b"\r\n" == open("{original}", "rb").read())
p.quit()
"#,
        port = served.port("pop3"),
        original = original.display()
    ));
    assert_eq!(got, "3\nTrue\n");
    drop(served);

    let served = Served::start(&["pop3", "--user", "bob", "--port", "0"]);
    let got = python(&format!(
        r#"
import poplib
for user in ("alice", "bob"):
    p = poplib.POP3("127.0.0.1", {port}, timeout=5)
    try:
        p.user(user); p.pass_("wonderland")
        print(user, p.stat()[0])
    except poplib.error_proto as e:
        print(user, "refused")
    p.quit()
"#,
        port = served.port("pop3")
    ));
    assert_eq!(got, "alice refused\nbob 3\n");
}

/// `serve http --lab http-client` serves that lab's web root.
#[test]
fn serve_http_serves_the_labs_data() {
    let served = Served::start(&["http", "--lab", "http-client", "--port", "0"]);
    let banner = served.line("http");
    assert!(
        banner.contains("serves the data of lab `http-client` (webserver/www"),
        "{banner}"
    );
    let got = python(&format!(
        r#"
import http.client
h = http.client.HTTPConnection("127.0.0.1", {port}, timeout=5)
h.request("GET", "/image.png")
r = h.getresponse()
print(r.status, r.read() == open("{png}", "rb").read())
"#,
        port = served.port("http"),
        png = root().join("labs/webserver/www/image.png").display()
    ));
    assert_eq!(got, "200 True\n");
}

/// `serve --lab FILE` starts every server of the lab, as it grades, and
/// each does what the lab says: a real client for each.
#[test]
fn serve_a_lab_starts_all_its_servers() {
    let served = Served::start(&["--lab", "fixtures/specs/every-server.yaml"]);
    let pinger = served.line("pinger (udp-pinger)");
    assert!(
        pinger.contains("drops datagrams 2, replies after 30 ms"),
        "{pinger}"
    );
    let mail = served.line("mail (smtp)");
    assert!(
        mail.contains("greets after 100 ms")
            && mail.contains("answers bare-LF lines with 500 (strict CRLF)")
            && mail.contains("answers MAIL with \"451 4.3.0 Try again later\" (once)")
            && mail.contains("implicit TLS (SMTPS) on TCP 127.0.0.1:"),
        "{mail}"
    );
    let script = format!(
        r#"
import socket, poplib, http.client, time
# The pinger drops datagram 2 and answers the others after 30 ms.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
for seq in (1, 2, 3):
    t = time.time()
    s.sendto(f"Ping {{seq}} {{t}}".encode(), ("127.0.0.1", {pinger}))
    try:
        data, _ = s.recvfrom(1024)
        print("pinger", seq, data.decode().split()[0], time.time() - t >= 0.029)
    except socket.timeout:
        print("pinger", seq, "timeout")
# SMTP greets after 100 ms, refuses bare LF, answers the first MAIL with 451.
c = socket.create_connection(("127.0.0.1", {smtp}), timeout=5)
f = c.makefile("rb")
t = time.time()
print("smtp greeting", f.readline()[:3].decode(), time.time() - t >= 0.09)
for line in (b"HELO bare\n", b"HELO crlf\r\n", b"MAIL FROM:<a@b.c>\r\n", b"MAIL FROM:<a@b.c>\r\n", b"QUIT\r\n"):
    c.sendall(line)
    print("smtp", line.split()[0].decode(), f.readline()[:3].decode())
# POP3: bob's maildrop of one message.
p = poplib.POP3("127.0.0.1", {pop3}, timeout=5)
p.user("bob"); p.pass_("builder")
print("pop3", p.stat()[0], b"The only message of this maildrop." in b"\n".join(p.retr(1)[1]))
p.quit()
# HTTP: the lab's data, after 50 ms.
h = http.client.HTTPConnection("127.0.0.1", {web}, timeout=5)
t = time.time()
h.request("GET", "/index.html")
r = h.getresponse()
body = r.read()
print("http", r.status, time.time() - t >= 0.049, body == open("{index}", "rb").read())
"#,
        pinger = served.port("pinger (udp-pinger)"),
        smtp = served.port("mail (smtp)"),
        pop3 = served.port("mailbox (pop3)"),
        web = served.port("web (http)"),
        index = root()
            .join("fixtures/specs/every-server/index.html")
            .display()
    );
    assert_eq!(
        python(&script),
        "pinger 1 PING True\npinger 2 timeout\npinger 3 PING True\n\
         smtp greeting 220 True\nsmtp HELO 500\nsmtp HELO 250\nsmtp MAIL 451\nsmtp MAIL 250\nsmtp QUIT 221\n\
         pop3 1 True\n\
         http 200 True True\n"
    );
    // Each printed line names its server.
    let log = served
        .until("web conn 1 <- 200", Duration::from_secs(10))
        .join("\n");
    for said in [
        "pinger #2   dropped (no reply)",
        "mail conn 1 C: \"HELO bare\\n\"",
        "mailbox conn 1 C: \"USER bob\\r\\n\"",
    ] {
        assert!(log.contains(said), "{said} not in\n{log}");
    }
}

#[test]
fn serve_says_what_it_needs() {
    netgrade()
        .arg("serve")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "name a server (udp-pinger, smtp, pop3, http, dns) or a lab whose servers to start (--lab NAME|FILE)",
        ));
    netgrade()
        .args(["serve", "--lab", "webserver"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the lab `webserver` has no servers",
        ));
    for (server, example) in [
        ("smtp", "smtp-client"),
        ("pop3", "pop3-download-delete"),
        ("http", "http-client"),
    ] {
        netgrade()
            .args(["serve", server, "--lab", "udp-pinger"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(format!(
                "the lab `udp-pinger` has no {server} server; give a lab that has one (--lab {example})"
            )));
    }
}

/// Whether `text` has a line whose fields are `fields`, whitespace aside.
fn has_line(text: &str, fields: &str) -> bool {
    let want: Vec<&str> = fields.split_whitespace().collect();
    text.lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
}

/// `dig` against a `serve dns` server on `port` of `server`; its output.
fn dig(server: &str, port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let out = assert_cmd::Command::new("dig")
        .args([
            "-4",
            "+tries=2",
            "+time=2",
            &format!("@{server}"),
            "-p",
            &port,
        ])
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `serve dns --zone FILE` answers dig from the file's zones and prints each
/// query and its answer; a broken zone file is a located error.
#[test]
fn serve_dns_serves_a_zone_file() {
    let served = Served::start(&["dns", "--zone", "fixtures/dns/zones.yaml", "--port", "0"]);
    let banner = served.line("dns");
    assert!(
        banner
            .contains("zones of fixtures/dns/zones.yaml: authoritative for 1 zone (example.com.)"),
        "{banner}"
    );
    let port = served.port("dns");
    let out = dig("127.0.0.1", port, &["alias.example.com"]);
    assert!(out.contains("flags: qr aa rd;"), "{out}");
    assert!(
        has_line(&out, "www.example.com. 300 IN A 10.0.0.1"),
        "{out}"
    );
    let printed = served.until("answer to", Duration::from_secs(10));
    let query = printed
        .iter()
        .find(|l| l.contains("UDP query from 127.0.0.1:"))
        .unwrap();
    assert!(
        query.ends_with(": query A alias.example.com. (rd edns 1232)"),
        "{query}"
    );
    let answer = printed.last().unwrap();
    assert!(
        answer.ends_with("NOERROR aa rd edns 1232, answer: alias.example.com. 300 CNAME www.example.com.; www.example.com. 300 A 10.0.0.1"),
        "{answer}"
    );
    let out = dig("127.0.0.1", port, &["+tcp", "nope.example.com"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    served.until("TCP conn 1 answer to", Duration::from_secs(10));
    drop(served);
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("zones.yaml");
    std::fs::write(
        &broken,
        "zones:\n  - origin: example.com\n    records:\n      - { name: www, type: A, value: 10.0.0.1 }\n      - { name: www, type: CNAME, value: web }\n",
    )
    .unwrap();
    netgrade()
        .args(["serve", "dns", "--zone"])
        .arg(&broken)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "`www.example.com.` has a CNAME record and an A record",
        ))
        .stderr(predicate::str::contains("zones.yaml:5:"));
    netgrade()
        .args(["serve", "dns"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "give the zones to serve: --zone FILE",
        ));
}

/// `serve dns --lab` is the lab's server: its faults said and in effect; a
/// hierarchy binds each level's address and hands out its root hints.
#[test]
fn serve_dns_serves_a_labs_servers_and_hierarchy() {
    let served = Served::start(&["dns", "--lab", "fixtures/specs/dns.yaml", "--port", "0"]);
    let banner = served.line("dns");
    assert!(
        banner.contains("answers over UDP after 10 ms–50 ms (seed 4), drops the first 1 query, answers queries 2 with a wrong ID first"),
        "{banner}"
    );
    let out = dig("127.0.0.1", served.port("dns"), &["www.example.com"]);
    assert!(out.contains("10.0.0.1"), "{out}");
    let printed = served.until("[fault: wrong-id]", Duration::from_secs(10));
    assert!(
        printed
            .iter()
            .any(|l| l.contains("#1   dropped (no reply)")),
        "{printed:?}"
    );
    drop(served);
    let served = Served::start(&[
        "dns",
        "--lab",
        "fixtures/specs/dns-hierarchy.yaml",
        "--port",
        "0",
    ]);
    let banner = served.line("dns");
    let port: u16 = banner
        .split("127.0.0.2:")
        .nth(1)
        .and_then(|a| a.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {banner}"));
    for level in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert!(banner.contains(&format!("{level}:{port}")), "{banner}");
    }
    assert!(
        banner.contains("a hierarchy of 6 zones: . at 127.0.0.2, com. net. at 127.0.0.3"),
        "{banner}"
    );
    let hints = served
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("Root hints (as a resolver's named.root): "))
        .expect("the hints' path");
    let hints = std::fs::read_to_string(hints.trim_end_matches(" Ctrl-C to stop.")).unwrap();
    assert!(
        has_line(&hints, "a.root-servers.net. 3600000 IN A 127.0.0.2"),
        "{hints}"
    );
    let out = dig("127.0.0.2", port, &["+norec", "www.example.com"]);
    assert!(out.contains("flags: qr;"), "{out}");
    assert!(
        has_line(&out, "a.gtld-servers.net. 3600 IN A 127.0.0.3"),
        "{out}"
    );
    let out = dig("127.0.0.4", port, &["+norec", "www.example.com"]);
    assert!(out.contains("flags: qr aa;"), "{out}");
}
