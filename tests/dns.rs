//! DNS labs graded for real: a client on raw sockets against the lab's name
//! server (a dropped first query, a wrong ID, a truncated answer it fetches
//! again over TCP) and an iterative resolver against a hierarchy (root, TLD
//! and authoritative servers on 127.0.0.2–4, the root hints beside it, a
//! delegation without glue). Their transcripts show every query and answer.

mod common;

use std::path::Path;

use common::*;

/// Grades `submission` on `lab`; returns its transcript and JSON run.
fn grade(lab: &str, submission: &str) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    netgrade()
        .args(["run", lab, submission, "--quiet", "--snapshots"])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    let file = dir
        .path()
        .join(format!("{}.txt", submission.replace('/', "_")));
    let transcript = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&file).display()));
    let report = read_json(&json);
    (transcript, run_of(&report, submission).clone())
}

#[test]
fn a_raw_socket_client_copes_with_the_labs_faults_and_truncation() {
    if !as_root("the lab's name servers bind port 53 in a namespace of the run's") {
        return;
    }
    let (transcript, run) = grade("fixtures/specs/dns.yaml", "fixtures/dns/client");
    assert_eq!(status(&run, "runs"), "pass");
    insta::assert_snapshot!("dns-client-transcript", transcript);
}

#[test]
fn an_iterative_resolver_starts_from_the_root_hints_it_is_handed() {
    if !as_root("the lab's name servers bind port 53 in a namespace of the run's") {
        return;
    }
    let (transcript, run) = grade("fixtures/specs/dns-hierarchy.yaml", "fixtures/dns/resolver");
    assert_eq!(status(&run, "runs"), "pass");
    insta::assert_snapshot!("dns-resolver-transcript", transcript);
}
