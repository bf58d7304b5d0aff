//! The mail labs graded for real: SMTP and POP3 clients against netgrade's
//! reference servers, golden transcripts, and hostile clients.

mod common;

use std::time::{Duration, Instant};

use common::*;

const SMTP_CHECKS: [&str; 11] = [
    "runs",
    "waits-for-greeting",
    "helo",
    "mail-from",
    "rcpt-to",
    "data",
    "end-of-data",
    "quit",
    "crlf",
    "waits-for-replies",
    "delivered",
];

/// fixture → checks that must fail; `None`: every other check passes;
/// `Some(list)`: these must pass (the rest follow from the mistake).
const SMTP_EXPECTED: &[Expectation] = &[
    ("reference", &[], None),
    ("ehlo-multiline", &[], None),
    ("lowercase-commands", &[], None),
    ("hardcoded-localhost", &[], None),
    ("bytes-vs-str", &[], None),
    // Both talk before the greeting and then read one reply per command,
    // a reply behind: one fault, the same every run.
    ("helo-before-greeting", &["waits-for-greeting"], None),
    ("one-reply-behind", &["waits-for-greeting"], None),
    ("lf-endings", &["crlf"], Some(&["waits-for-greeting"])),
    (
        "no-read-after-dot",
        &["waits-for-replies"],
        Some(&[
            "helo",
            "mail-from",
            "rcpt-to",
            "data",
            "end-of-data",
            "delivered",
        ]),
    ),
    (
        "no-quit",
        &["quit"],
        Some(&[
            "helo",
            "mail-from",
            "rcpt-to",
            "data",
            "end-of-data",
            "delivered",
        ]),
    ),
    (
        "no-dot",
        &["end-of-data", "delivered"],
        Some(&["helo", "mail-from", "rcpt-to", "data"]),
    ),
    ("wrong-order", &["rcpt-to", "delivered"], Some(&["helo"])),
    // Sends QUIT and closes at once: it never reads the 221.
    ("quit-no-read", &["quit"], None),
    // `RCPT TO:<>` is refused and the client goes on regardless: one fault
    // (and nothing delivered); DATA and the end of data are not judged.
    (
        "empty-recipient",
        &["rcpt-to", "delivered"],
        Some(&[
            "runs",
            "waits-for-greeting",
            "helo",
            "mail-from",
            "quit",
            "crlf",
            "waits-for-replies",
        ]),
    ),
    (
        "flood",
        &["waits-for-replies", "helo", "delivered"],
        Some(&["waits-for-greeting", "quit"]),
    ),
    ("garbage", &["delivered"], Some(&["waits-for-greeting"])),
    (
        "long-line",
        &["helo", "delivered"],
        Some(&["waits-for-greeting"]),
    ),
    (
        "never-closes",
        &["runs"],
        Some(&[
            "helo",
            "mail-from",
            "rcpt-to",
            "data",
            "end-of-data",
            "quit",
            "delivered",
        ]),
    ),
];

const POP3_CHECKS: [&str; 7] = [
    "runs",
    "login",
    "lists",
    "retrieves-all",
    "saves-exact",
    "deletes",
    "quits",
];

const POP3_EXPECTED: &[Expectation] = &[
    ("delete", &[], None),
    (
        "no-quit-delete",
        &["deletes", "quits"],
        Some(&["login", "lists", "retrieves-all", "saves-exact"]),
    ),
    (
        "no-unstuff",
        &["saves-exact"],
        Some(&["login", "lists", "retrieves-all"]),
    ),
    (
        "wrong-password",
        &["login", "retrieves-all", "saves-exact", "deletes"],
        Some(&[]),
    ),
    ("retr-deleted", &["runs"], Some(&["login", "lists"])),
];

/// TLS, AUTH and the textbook's address forms: fixture → checks that must
/// fail (every other check, `transcript` included, must pass).
const TLS_EXPECTED: &[Expectation] = &[
    ("starttls-login", &[], None),
    ("starttls-plain", &[], None),
    ("implicit-tls", &[], None),
    ("java-starttls", &[], None),
    ("space-after-colon", &[], None),
    ("bare-address", &["mail-from", "rcpt-to"], None),
];

/// The passwords the TLS fixtures log in with, and their base64.
const PASSWORDS: [&str; 8] = [
    "app-password-1234",
    "YXBwLXBhc3N3b3JkLTEyMzQ=",
    "plain-secret-5678",
    "AGFsaWNlQGdtYWlsLmNvbQBwbGFpbi1zZWNyZXQtNTY3OA==",
    "tls-on-connect-pw",
    "dGxzLW9uLWNvbm5lY3QtcHc=",
    "java-app-password",
    "amF2YS1hcHAtcGFzc3dvcmQ=",
];

fn smtp_fixture(name: &str) -> String {
    format!("fixtures/smtp-client/{name}")
}

fn pop3_fixture(name: &str) -> String {
    format!("fixtures/pop3-client/{name}")
}

#[test]
fn every_smtp_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("smtp.json");
    let started = Instant::now();
    netgrade()
        .args([
            "run",
            "smtp-client",
            "-j",
            "8",
            "--quiet",
            "--time-limit",
            "6s",
            "--json",
        ])
        .arg(&json)
        .args(SMTP_EXPECTED.iter().map(|(n, _, _)| smtp_fixture(n)))
        .assert()
        .code(1);
    // `never-closes` is stopped at its limit; nothing else may hold the batch up.
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    let report = read_json(&json);
    check_expectations(&report, SMTP_EXPECTED, &SMTP_CHECKS, smtp_fixture);
    let broken = run_of(&report, &smtp_fixture("empty-recipient"));
    for id in ["data", "end-of-data", "transcript"] {
        assert_eq!(status(broken, id), "skip", "{id}: {broken}");
    }
    assert_eq!(
        status(run_of(&report, &smtp_fixture("reference")), "transcript"),
        "pass"
    );
    for (name, id, needle) in [
        (
            "helo-before-greeting",
            "waits-for-greeting",
            "before the server's 220 greeting",
        ),
        ("lf-endings", "crlf", "CRLF"),
        (
            "no-read-after-dot",
            "waits-for-replies",
            "before the reply to its previous command",
        ),
        ("no-quit", "quit", "never sent QUIT"),
        ("no-dot", "end-of-data", "never ended"),
        ("wrong-order", "rcpt-to", "503"),
    ] {
        let m = message(&report, &smtp_fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }
    // A session that differs from the reference solution's shows a unified diff.
    let diff = message(&report, &smtp_fixture("no-quit"), "transcript");
    assert!(diff.contains("@@") && diff.contains("QUIT"), "{diff}");
}

#[test]
fn clients_over_tls_with_auth_and_loose_addresses_get_the_grade_they_deserve() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit) = (dir.path().join("tls.json"), dir.path().join("tls.xml"));
    let (summary, snapshots) = (dir.path().join("tls.md"), dir.path().join("snapshots"));
    let console = netgrade()
        .args(["run", "smtp-client", "-j", "3", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--summary")
        .arg(&summary)
        .arg("--snapshots")
        .arg(&snapshots)
        .args(TLS_EXPECTED.iter().map(|(n, _, _)| smtp_fixture(n)))
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let report = read_json(&json);
    let mut checks = SMTP_CHECKS.to_vec();
    checks.push("transcript");
    check_expectations(&report, TLS_EXPECTED, &checks, smtp_fixture);
    let bare = message(&report, &smtp_fixture("bare-address"), "rcpt-to");
    assert!(
        bare.contains("RFC 5321 §4.1.2") && bare.contains("RCPT TO:<bob@hamburger.edu>"),
        "{bare}"
    );
    let spaced = message(&report, &smtp_fixture("space-after-colon"), "mail-from");
    assert!(
        spaced.contains("note: ") && spaced.contains("space after the colon"),
        "{spaced}"
    );
    // Transcripts show the TLS and the login; the JVM's notice about
    // netgrade's JAVA_TOOL_OPTIONS is not the program's output.
    let transcript = |name: &str| {
        let file = snapshots.join(format!("fixtures_smtp-client_{name}.txt"));
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    };
    let login = transcript("starttls-login");
    assert!(
        login.contains("1 tls: TLS 1.3, after STARTTLS, no SNI\n"),
        "{login}"
    );
    assert!(
        login.contains("1 auth: LOGIN as \"alice@gmail.com\", under TLS\n"),
        "{login}"
    );
    let implicit = transcript("implicit-tls");
    assert!(
        implicit.contains("1 tls: TLS 1.3, implicit TLS, no SNI\n1 S: \"220 "),
        "{implicit}"
    );
    let java = transcript("java-starttls");
    assert!(
        java.contains("== stderr (0 lines) ==") && java.contains("after STARTTLS"),
        "{java}"
    );
    // No password, and no base64 of one, in any report.
    let mut reports = vec![String::from_utf8(console).unwrap()];
    for file in [&json, &junit, &summary] {
        reports.push(std::fs::read_to_string(file).unwrap());
    }
    common::junit::assert_valid_junit(&reports[2]);
    for name in [
        "starttls-login",
        "starttls-plain",
        "implicit-tls",
        "java-starttls",
    ] {
        reports.push(transcript(name));
    }
    for secret in PASSWORDS {
        assert!(
            reports.iter().all(|r| !r.contains(secret)),
            "{secret} in a report"
        );
    }
}

#[test]
fn a_rejected_recipient_is_noticed_or_the_loop_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("reject.json");
    netgrade()
        .args([
            "run",
            "smtp-client-reject",
            "-j",
            "2",
            "--quiet",
            "--time-limit",
            "5s",
            "--json",
        ])
        .arg(&json)
        .args(["stops-on-reject", "infinite-resend"].map(smtp_fixture))
        .assert()
        .code(1);
    let report = read_json(&json);
    let good = run_of(&report, &smtp_fixture("stops-on-reject"));
    assert_eq!(good["score"], good["max_score"], "{good}");
    let looping = run_of(&report, &smtp_fixture("infinite-resend"));
    assert_eq!(status(looping, "handles-rejection"), "fail");
    let m = message(
        &report,
        &smtp_fixture("infinite-resend"),
        "handles-rejection",
    );
    assert!(m.contains("more time(s)") && m.contains("permanent"), "{m}");
}

#[test]
fn every_pop3_fixture_gets_the_grade_it_deserves() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("pop3.json");
    netgrade()
        .args([
            "run",
            "pop3-download-delete",
            "-j",
            "6",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .args(POP3_EXPECTED.iter().map(|(n, _, _)| pop3_fixture(n)))
        .assert()
        .code(1);
    let report = read_json(&json);
    check_expectations(&report, POP3_EXPECTED, &POP3_CHECKS, pop3_fixture);
    assert_eq!(
        status(run_of(&report, &pop3_fixture("delete")), "transcript"),
        "pass"
    );
    for (name, id, needle) in [
        ("no-quit-delete", "deletes", "never sent QUIT"),
        ("no-unstuff", "saves-exact", "dot-stuffing"),
    ] {
        let m = message(&report, &pop3_fixture(name), id);
        assert!(m.contains(needle), "{name}/{id}: {m}");
    }

    let keep_json = dir.path().join("keep.json");
    netgrade()
        .args(["run", "pop3-download-keep", "-j", "3", "--quiet", "--json"])
        .arg(&keep_json)
        .args(["keep", "delete", "single-recv"].map(pop3_fixture))
        .assert()
        .code(1);
    let keep = read_json(&keep_json);
    let good = run_of(&keep, &pop3_fixture("keep"));
    assert_eq!(good["score"], good["max_score"], "{good}");
    assert_eq!(
        status(run_of(&keep, &pop3_fixture("delete")), "keeps"),
        "fail"
    );
    let truncated = message(&keep, &pop3_fixture("single-recv"), "saves-exact");
    assert!(truncated.contains("stops there"), "{truncated}");
}

#[test]
fn golden_transcripts_are_reproduced_by_the_reference_solutions() {
    for (lab, reference) in [
        ("smtp-client", smtp_fixture("reference")),
        ("pop3-download-delete", pop3_fixture("delete")),
        ("pop3-download-keep", pop3_fixture("keep")),
    ] {
        let out = netgrade()
            .args(["golden", lab, &reference])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let golden =
            std::fs::read_to_string(root().join(format!("labs/mail/golden/{lab}.txt"))).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            golden,
            "{lab}: regenerate with `netgrade golden {lab} {reference} -o labs/mail/golden/{lab}.txt`"
        );
    }
    // A failing solution cannot become a golden transcript.
    netgrade()
        .args(["golden", "smtp-client", &smtp_fixture("no-quit")])
        .assert()
        .code(2);
}

/// Clients nobody here wrote get full marks where they should.
#[test]
fn real_mail_clients_are_graded_fairly() {
    let empty = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let smtplib = "python3 -c \"import smtplib,sys; s=smtplib.SMTP(sys.argv[1], int(sys.argv[2])); s.sendmail('alice@crepes.fr', ['bob@hamburger.edu'], 'Subject: netgrade lab\\r\\n\\r\\nI love computer networks!\\r\\n'); s.quit()\" {host} {port}";
    let swaks = "swaks --server {host}:{port} --from alice@crepes.fr --to bob@hamburger.edu --header 'Subject: netgrade lab' --body 'I love computer networks!'";
    let starttls = "python3 -c \"import smtplib,ssl,sys; s=smtplib.SMTP(sys.argv[1], int(sys.argv[2])); s.starttls(context=ssl.create_default_context()); s.login('alice@gmail.com', 'smtplib-secret-99'); s.sendmail('alice@gmail.com', ['bob@hamburger.edu'], 'Subject: netgrade lab\\r\\n\\r\\nI love computer networks!\\r\\n'); s.quit()\" {host} {port}";
    let swaks_tls = "swaks --server {host}:{port} --tls --tls-verify --auth LOGIN --auth-user alice@gmail.com --auth-password swaks-secret-99 --from alice@crepes.fr --to bob@hamburger.edu --header 'Subject: netgrade lab' --body 'I love computer networks!'";
    let curl_smtps = "sh -c \"printf 'Subject: netgrade lab\\r\\n\\r\\nI love computer networks!\\r\\n' | curl -sS --ssl-reqd smtps://$0:465 --user alice@mail.com:curl-secret-99 --mail-from alice@mail.com --mail-rcpt bob@hamburger.edu -T -\" {host}";
    let poplib = "python3 -c \"import poplib,sys; p=poplib.POP3(sys.argv[1], int(sys.argv[2])); p.user('alice'); p.pass_('wonderland'); n=len(p.list()[1]); [open('msg%d.eml'%i,'wb').write(b'\\r\\n'.join(p.retr(i)[1])+b'\\r\\n') for i in range(1,n+1)]; [p.dele(i) for i in range(1,n+1)]; p.quit()\" {host} {port}";
    for (lab, name, cmd, exempt) in [
        ("smtp-client", "smtplib", smtplib, &["transcript"][..]),
        ("smtp-client", "swaks", swaks, &["transcript"][..]),
        (
            "smtp-client",
            "smtplib-starttls",
            starttls,
            &["transcript"][..],
        ),
        ("smtp-client", "swaks-tls", swaks_tls, &["transcript"][..]),
        ("smtp-client", "curl-smtps", curl_smtps, &["transcript"][..]),
        (
            "pop3-download-delete",
            "poplib",
            poplib,
            &["transcript"][..],
        ),
    ] {
        let json = dir.path().join(format!("{name}.json"));
        let snapshots = dir.path().join(name);
        netgrade()
            .args(["run", lab, "--quiet", "--cmd", cmd, "--json"])
            .arg(&json)
            .arg("--snapshots")
            .arg(&snapshots)
            .arg(empty.path())
            .output()
            .expect("netgrade runs");
        let report = read_json(&json);
        let run = &report["runs"][0];
        let failed: Vec<String> = run["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] != "pass" && !exempt.contains(&c["id"].as_str().unwrap()))
            .map(|c| format!("{}: {} {}", c["id"], c["message"], c["evidence"]))
            .collect();
        assert!(
            failed.is_empty(),
            "{name} lost points:\n{}",
            failed.join("\n")
        );
        // The password is in the command line given here, but never in what was recorded.
        let file = std::fs::read_dir(&snapshots)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let transcript = std::fs::read_to_string(file).unwrap();
        let session = transcript.split_once("\n== mail").map_or("", |s| s.1);
        assert!(session.contains(" end: client-quit"), "{transcript}");
        for secret in ["smtplib-secret-99", "swaks-secret-99", "curl-secret-99"] {
            assert!(!session.contains(secret), "{secret} in {transcript}");
        }
        if name.contains("tls") || name.contains("smtps") {
            assert!(
                session.contains(" tls: TLS 1.3") && session.contains(" auth: "),
                "{transcript}"
            );
        }
    }
}

#[test]
fn hostile_clients_leave_the_servers_standing() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("hostile.json");
    let started = Instant::now();
    netgrade()
        .args([
            "run",
            "smtp-client",
            "-j",
            "4",
            "--quiet",
            "--time-limit",
            "6s",
            "--json",
        ])
        .arg(&json)
        .args(["flood", "garbage", "long-line", "never-closes"].map(smtp_fixture))
        .assert()
        .code(1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    let report = read_json(&json);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(run["status"], "graded", "{run}");
    }
    let never = run_of(&report, &smtp_fixture("never-closes"));
    assert_eq!(never["program"]["exit"]["kind"], "timed-out");
    let long = message(&report, &smtp_fixture("long-line"), "helo");
    assert!(long.contains("500"), "{long}");
}
