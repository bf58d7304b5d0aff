//! Transcripts (`--snapshots`), graded for real: they read as sentences, keep
//! addresses, hide what varies from run to run (a program's own clock, the
//! ports the kernel picks) and show an SMTP message as it was sent.

mod common;

use std::path::Path;

use common::*;
use regex::Regex;

/// The transcript of `submission` written into `dir`.
fn transcript(dir: &Path, submission: &str) -> String {
    let file = dir.join(format!("{}.txt", submission.replace('/', "_")));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A program that stamps its pings and its output with the time of day and
/// prints the port its socket got: graded twice, the transcripts are the
/// same bytes, with `<time>` and `<port>` where the clock and the port were,
/// and the addresses as they were.
#[test]
fn a_program_s_own_clock_gives_the_same_transcript_twice() {
    let fixture = pinger_fixture("clock-text");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let json = dirs[0].path().join("report.json");
    for (i, dir) in dirs.iter().enumerate() {
        netgrade()
            .args(["run", "udp-pinger", "--quiet", "--snapshots"])
            .arg(dir.path())
            .args((i == 1).then_some("--raw-transcripts"))
            .args(if i == 0 {
                vec!["--json".as_ref(), json.as_os_str()]
            } else {
                vec![]
            })
            .arg(&fixture)
            .assert()
            .success();
    }
    // The JSON report carries what the program printed, as it printed it,
    // and its notes and diagnoses even when there are none.
    let text = std::fs::read_to_string(&json).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let run = run_of(&report, &fixture);
    let program = &run["program"];
    let stdout = program["stdout"].as_str().unwrap();
    let printed = Regex::new(
        r"^Pinging 127\.0\.0\.1:12000 from 127\.0\.0\.1:\d+ at \d\d:\d\d:\d\d\nReply from 127\.0\.0\.1:12000: PING 1 \d\d:\d\d:\d\d  RTT = 0\.\d{6} s\n[\s\S]*\nDone at \d+\.\d{3}\n$",
    )
    .unwrap();
    assert!(printed.is_match(stdout), "{stdout}");
    assert_eq!(program["stdout_truncated"], false);
    assert_eq!(program["stderr"], "");
    assert_eq!(program["stderr_truncated"], false);
    assert!(text.contains("\"diagnoses\": []"), "{text}");
    assert!(run["notes"].is_array(), "{text}");
    if run["notes"].as_array().unwrap().is_empty() {
        assert!(text.contains("\"notes\": []"), "{text}");
    }
    let first = transcript(dirs[0].path(), &fixture);
    let second = transcript(dirs[1].path(), &fixture);
    assert_eq!(first, second, "two runs, two transcripts");
    // Only when asked for, the raw transcript beside it: the real clock
    // text and port.
    let raw_name = |dir: &Path| dir.join(format!("{}.raw.txt", fixture.replace('/', "_")));
    assert!(!raw_name(dirs[0].path()).exists());
    let raw = std::fs::read_to_string(raw_name(dirs[1].path())).unwrap();
    let real = Regex::new(
        r#"(?m)^#1   -> "Ping 1 \d\d:\d\d:\d\d"$[\s\S]*^Pinging 127\.0\.0\.1:12000 from 127\.0\.0\.1:\d{5} at \d\d:\d\d:\d\d$[\s\S]*RTT = 0\.\d{6} s$[\s\S]*^Done at \d{10}\.\d{3}$"#,
    )
    .unwrap();
    assert!(real.is_match(&raw), "{raw}");
    for placeholder in ["<time>", "<port>", "<num>"] {
        assert!(!raw.contains(placeholder), "{placeholder} in\n{raw}");
    }
    assert_eq!(raw.lines().count(), first.lines().count());
    let clock = Regex::new(r"\d\d:\d\d").unwrap();
    assert!(!clock.is_match(&first), "clock text left in:\n{first}");
    for line in [
        "#1   -> \"Ping 1 <time>\"\n",
        "#10  <- \"PING 10 <time>\"\n",
        "Pinging 127.0.0.1:12000 from 127.0.0.1:<port> at <time>\n",
        "Reply from 127.0.0.1:12000: PING 1 <time>  RTT = <num> s\n",
        "Ping 3: Request timed out at <time>\n",
    ] {
        assert!(first.contains(line), "{line:?} in\n{first}");
    }
}

/// An SMTP transcript shows the message lines the client sent after the 354,
/// up to and including the dot.
#[test]
fn an_smtp_transcript_shows_the_message_as_sent() {
    let fixture = "fixtures/smtp-client/reference";
    let dir = tempfile::tempdir().unwrap();
    netgrade()
        .args(["run", "smtp-client", "--quiet", "--snapshots"])
        .arg(dir.path())
        .arg(fixture)
        .assert()
        .success();
    let text = transcript(dir.path(), fixture);
    let message = "1 S: \"354 End data with <CR><LF>.<CR><LF>\\r\\n\"
1 C: \"From: Alice <address>\\r\\n\"
1 C: \"To: Bob <address>\\r\\n\"
1 C: \"Subject: netgrade lab\\r\\n\"
1 C: \"\\r\\n\"
1 C: \"I love computer networks!\\r\\n\"
1 C: \".\\r\\n\"
";
    assert!(text.contains(message), "{text}");
}

/// Netgrade's own lines are sentences: a probe's ending in words, a refused
/// connection named with its address, never Rust's debug text.
#[test]
fn transcripts_hold_no_debug_text() {
    let dir = tempfile::tempdir().unwrap();
    let web = ["reference", "never-answers"].map(|n| format!("fixtures/webserver/{n}"));
    netgrade()
        .args(["run", "webserver", "-j", "2", "--quiet", "--snapshots"])
        .arg(dir.path())
        .args(&web)
        .assert()
        .code(1);
    let reference = transcript(dir.path(), &web[0]);
    assert!(
        reference.contains(
            "get-html: \"GET /HelloWorld.html HTTP/1.1\" -> 200 OK, 299 body bytes, 0 deviation(s) (complete)\n"
        ),
        "{reference}"
    );
    let silent = transcript(dir.path(), &web[1]);
    assert!(
        silent.contains("get-html: \"GET /HelloWorld.html HTTP/1.1\" -> nothing (timed out)\n"),
        "{silent}"
    );
    // A client that connects to a port where nothing listens (none is handed
    // to the server here): the transcript says where it went.
    let lab_dir = tempfile::tempdir().unwrap();
    let labs = root().join("labs");
    let yaml = std::fs::read_to_string(labs.join("smtp-client.yaml")).unwrap()
        + "\ncapture:\n  redirect_ports: false\n";
    let lab = lab_dir.path().join("smtp-client.yaml");
    std::fs::write(&lab, yaml).unwrap();
    let golden = lab_dir.path().join("mail/golden");
    std::fs::create_dir_all(&golden).unwrap();
    std::fs::copy(
        labs.join("mail/golden/smtp-client.txt"),
        golden.join("smtp-client.txt"),
    )
    .unwrap();
    let refused = "fixtures/smtp-client/port-25";
    netgrade()
        .arg("run")
        .arg(&lab)
        .args(["--quiet", "--snapshots"])
        .arg(dir.path())
        .arg(refused)
        .assert()
        .code(1);
    let port25 = transcript(dir.path(), refused);
    if port25.contains("stray:") {
        let stray = Regex::new(
            r"(?m)^stray: \d+ TCP packet\(s\) to 127\.0\.0\.1:25, where no server listens$",
        );
        assert!(stray.unwrap().is_match(&port25), "{port25}");
    }
    // What Debug formatting of netgrade's types would look like.
    let debug =
        Regex::new(r#"[A-Z][a-z]+[A-Z]\w*\(|\((Complete|Closed|TimedOut|Reset)\)|\[\]|: ""$"#)
            .unwrap();
    for text in [&reference, &silent, &port25] {
        let ours: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("Error") && !l.starts_with("  "))
            .filter(|l| debug.is_match(l))
            .collect();
        assert!(ours.is_empty(), "debug text {ours:?} in\n{text}");
    }
}

/// `--raw-transcripts` writes beside `--snapshots`, so it needs it.
#[test]
fn raw_transcripts_need_a_snapshots_folder() {
    netgrade()
        .args(["run", "udp-pinger", "--raw-transcripts"])
        .arg(pinger_fixture("reference"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--snapshots <DIR>"));
}

/// Output past the limit: the JSON report says what it holds is not all.
#[test]
fn the_json_report_says_when_output_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let fixture = pinger_fixture("flood");
    netgrade()
        .args(["run", "udp-pinger", "--quiet", "--json"])
        .arg(&json)
        .arg(&fixture)
        .assert()
        .code(1);
    let report = read_json(&json);
    let program = &run_of(&report, &fixture)["program"];
    assert_eq!(program["exit"]["kind"], "output-limit");
    assert_eq!(program["stdout_truncated"], true);
    let stdout = program["stdout"].as_str().unwrap();
    assert!(
        !stdout.is_empty() && stdout.len() <= 64 * 1024,
        "{}",
        stdout.len()
    );
    assert_eq!(program["stderr_truncated"], false);
}
