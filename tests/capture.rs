//! Hard-coded destinations reach the lab's servers inside a run's network
//! namespace, the report names what the program used, and a lab can charge
//! it with `uses-arguments`. (Needs root: without network namespaces the
//! capture is off, and these tests only check that the report says so.)

mod common;

use common::{netgrade, pinger_fixture, read_json, run_of, status};

/// Whether this machine gives runs a private network (root).
fn isolated(report: &serde_json::Value) -> bool {
    !report.to_string().contains("no private network")
}

/// Grades `submissions` on `lab` (with `extra` arguments); the JSON report,
/// or `None` (and a note) where runs get no private network.
fn grade(
    lab: &str,
    submissions: &[String],
    extra: &[&std::ffi::OsStr],
) -> Option<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    netgrade()
        .args(["run", lab, "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(extra)
        .args(submissions)
        .output()
        .unwrap();
    let report = read_json(&json);
    if isolated(&report) {
        Some(report)
    } else {
        eprintln!("skipped: no network namespaces here");
        None
    }
}

#[test]
fn hard_coded_hosts_and_ports_reach_the_pinger_and_are_named() {
    let fixtures = [
        "hardcoded-remote-ip",
        "hardcoded-hostname-connect",
        "wrong-port",
        "reference",
    ];
    let Some(report) = grade("udp-pinger", &fixtures.map(pinger_fixture), &[]) else {
        return;
    };
    for name in fixtures {
        let run = run_of(&report, &pinger_fixture(name));
        assert_eq!(run["score"], run["max_score"], "{name}: {run}");
    }
    let notes = |name: &str| run_of(&report, &pinger_fixture(name))["notes"].to_string();
    assert!(
        notes("hardcoded-remote-ip").contains("sent datagrams to UDP 191.101.232.165:12000"),
        "{}",
        notes("hardcoded-remote-ip")
    );
    assert!(
        notes("hardcoded-hostname-connect").contains("looked up `pinger.cs.example.edu`"),
        "{}",
        notes("hardcoded-hostname-connect")
    );
    assert!(notes("wrong-port").contains("127.0.0.1:10000"));
    let reference = run_of(&report, &pinger_fixture("reference"));
    assert!(
        reference["notes"].as_array().is_none_or(|n| n.is_empty()),
        "{reference}"
    );
}

#[test]
fn a_lab_can_charge_hard_coded_destinations_once() {
    let fixtures = [
        "hardcoded-remote-ip",
        "hardcoded-hostname-connect",
        "wrong-port",
        "argv-host-port",
    ];
    let lab = "fixtures/specs/udp-pinger-uses-arguments.yaml";
    let Some(report) = grade(lab, &fixtures.map(pinger_fixture), &[]) else {
        return;
    };
    for name in fixtures {
        let run = run_of(&report, &pinger_fixture(name));
        for id in ["runs", "ping-count", "reports-rtt"] {
            assert_eq!(status(run, id), "pass", "{name}: {id}: {run}");
        }
        let expected = if name == "argv-host-port" {
            "pass"
        } else {
            "fail"
        };
        assert_eq!(status(run, "uses-arguments"), expected, "{name}: {run}");
    }
    let message = common::message(
        &report,
        &pinger_fixture("hardcoded-remote-ip"),
        "uses-arguments",
    );
    assert!(
        message.contains("191.101.232.165:12000") && message.contains("sys.argv"),
        "{message}"
    );
}

#[test]
fn mail_clients_that_hard_code_their_provider_are_graded_on_their_logic() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let snapshots = dir.path().join("snapshots");
    let fixtures = [
        "gmail-hardcoded",
        "163-hardcoded",
        "mailcom-smtps-hardcoded",
    ];
    let out = netgrade()
        .args(["run", "smtp-client", "-j", "3", "--json"])
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--snapshots")
        .arg(&snapshots)
        .args(fixtures.map(|f| format!("fixtures/smtp-client/{f}")))
        .output()
        .unwrap();
    let report = read_json(&json);
    if !isolated(&report) {
        eprintln!("skipped: no network namespaces here");
        return;
    }
    let shown = |f: &str| format!("fixtures/smtp-client/{f}");
    for f in fixtures {
        let run = run_of(&report, &shown(f));
        assert_eq!(run["score"], run["max_score"], "{f}: {run}");
    }
    let notes = |f: &str| run_of(&report, &shown(f))["notes"].to_string();
    assert!(
        notes("gmail-hardcoded").contains("connected to smtp.gmail.com:587"),
        "{}",
        notes("gmail-hardcoded")
    );
    assert!(notes("163-hardcoded").contains("connected to smtp.163.com:25"));
    assert!(notes("mailcom-smtps-hardcoded").contains("looked up `smtp.mail.com`"));
    // The passwords never reach a report, in clear or in base64.
    let mut everything = String::from_utf8_lossy(&out.stdout).into_owned();
    everything.push_str(&std::fs::read_to_string(&json).unwrap());
    let xml = std::fs::read_to_string(&junit).unwrap();
    common::junit::assert_valid_junit(&xml);
    everything.push_str(&xml);
    for entry in std::fs::read_dir(&snapshots).unwrap() {
        everything.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for secret in [
        "qwer tyui opas dfgh",
        "cXdlciB0eXVpIG9wYXMgZGZnaA==",
        "AUTHCODE9988",
        "QVVUSENPREU5OTg4",
        "S3cret-for-lab",
        "AGtyLnN0dWRlbnRAbWFpbC5jb20AUzNjcmV0LWZvci1sYWI=",
    ] {
        assert!(!everything.contains(secret), "{secret} appears in a report");
    }
}

#[test]
fn mail_clients_get_the_same_transcript_run_after_run() {
    let fixtures = [
        "gmail-hardcoded",
        "163-hardcoded",
        "mailcom-smtps-hardcoded",
        "starttls-login",
        "implicit-tls",
        "space-after-colon",
        "bare-address",
    ];
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for dir in &dirs {
        netgrade()
            .args(["run", "smtp-client", "-j", "4", "--quiet", "--snapshots"])
            .arg(dir.path())
            .args(fixtures.map(|f| format!("fixtures/smtp-client/{f}")))
            .output()
            .unwrap();
    }
    for f in fixtures {
        let file = format!("fixtures_smtp-client_{f}.txt");
        let a = std::fs::read_to_string(dirs[0].path().join(&file)).unwrap();
        let b = std::fs::read_to_string(dirs[1].path().join(&file)).unwrap();
        assert_eq!(a, b, "{f}: transcripts differ between two runs");
    }
}

/// A lab that hands no other port to its server: a client that hard-codes
/// SMTP's port 25 is refused, and told where it went and where the server is.
#[test]
fn a_refused_connection_is_told_where_it_went_and_where_the_server_is() {
    let lab_dir = tempfile::tempdir().unwrap();
    let labs = common::root().join("labs");
    let yaml = std::fs::read_to_string(labs.join("smtp-client.yaml")).unwrap()
        + "\ncapture:\n  redirect_ports: false\n";
    std::fs::write(lab_dir.path().join("smtp-client.yaml"), yaml).unwrap();
    let golden = lab_dir.path().join("mail/golden");
    std::fs::create_dir_all(&golden).unwrap();
    for entry in std::fs::read_dir(labs.join("mail/golden"))
        .unwrap()
        .flatten()
    {
        std::fs::copy(entry.path(), golden.join(entry.file_name())).unwrap();
    }
    let lab = lab_dir.path().join("smtp-client.yaml");
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    netgrade()
        .arg("run")
        .arg(&lab)
        .args(["--quiet", "--json"])
        .arg(&json)
        .arg("fixtures/smtp-client/port-25")
        .assert()
        .code(1);
    let report = read_json(&json);
    let run = run_of(&report, "fixtures/smtp-client/port-25");
    let said = run["program"]["diagnoses"].to_string();
    let went = if isolated(&report) {
        "connected over TCP to 127.0.0.1:25, where nothing listens"
    } else {
        "connected over TCP to a port where nothing listens"
    };
    assert!(said.contains(went), "{said}");
    assert!(
        said.contains("the lab's SMTP server is at 127.0.0.1:2525 (given as arguments)"),
        "{said}"
    );
    assert!(!said.contains("datagram"), "{said}");
}
