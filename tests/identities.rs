//! As root, netgrade never runs student code as root: when it has no user
//! of its own to give a run, the program does not start, and the report
//! says why. (A file of its own: it holds every identity while it runs.)

mod common;

use common::{netgrade, read_json, run_of};

#[test]
fn with_every_identity_taken_no_program_runs_as_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // identities are root's to give
    }
    let held: Vec<_> = std::iter::from_fn(netgrade::sandbox::identity::Identity::claim).collect();
    assert_eq!(held.len() as u32, netgrade::sandbox::identity::COUNT);
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    netgrade()
        .args(["run", "udp-pinger", "--quiet", "--json"])
        .arg(&json)
        .arg("fixtures/udp-pinger/reference")
        .assert()
        .code(1);
    drop(held);
    let report = read_json(&json);
    let run = run_of(&report, "fixtures/udp-pinger/reference");
    assert_eq!(run["program"]["exit"]["kind"], "did-not-start", "{run}");
    let reason = run["program"]["exit"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("never runs student code as root"),
        "{reason}"
    );
}
