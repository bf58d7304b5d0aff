//! Labs of several cases (fixtures/specs/udp-pinger-cases.yaml): the program
//! runs once per case with the case's arguments and server settings; checks
//! judge one case or every case; every report names the case.

mod common;

use common::*;

const LAB: &str = "fixtures/specs/udp-pinger-cases.yaml";

fn check<'a>(run: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}"))
}

#[test]
fn each_case_runs_with_its_settings_and_every_report_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, snaps) = (
        dir.path().join("r.json"),
        dir.path().join("r.xml"),
        dir.path().join("snaps"),
    );
    let out = netgrade()
        .args(["run", LAB])
        .args(["count-argument", "reference", "no-timeout-message"].map(pinger_fixture))
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--snapshots")
        .arg(&snaps)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let console = String::from_utf8(out.stdout).unwrap();
    let report = read_json(&json);

    // A client that takes the count from its third argument: full marks,
    // each case run with its own arguments.
    let good = run_of(&report, "fixtures/udp-pinger/count-argument");
    assert_eq!(good["score"], 4.0, "{good:#}");
    let commands: Vec<String> = good["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["id"].as_str().unwrap(), c["program"]["command"]))
        .collect();
    assert_eq!(
        commands,
        [
            r#"three ["python3","UDPPingerClient.py","127.0.0.1","12000","3"]"#,
            r#"six ["python3","UDPPingerClient.py","127.0.0.1","12000","6"]"#
        ]
    );

    // The reference client always sends ten: each scoped check fails in its case.
    let fixed = run_of(&report, "fixtures/udp-pinger/reference");
    assert_eq!(fixed["score"], 2.0);
    for (id, case) in [("three-pings", "three"), ("six-pings", "six")] {
        let c = check(fixed, id);
        assert_eq!(
            (c["status"].as_str(), c["case"].as_str()),
            (Some("fail"), Some(case))
        );
    }
    assert!(
        check(fixed, "runs").get("case").is_none(),
        "a check of every case has none"
    );
    assert!(
        console.contains("Exactly 3 pings reach the server (case three)"),
        "{console}"
    );
    assert!(console.contains("  case six: python3 UDPPingerClient.py 127.0.0.1 12000 6"));

    // A check of every case that fails in both is charged once, naming both.
    let silent = run_of(&report, "fixtures/udp-pinger/no-timeout-message");
    let timeouts = check(silent, "reports-timeouts");
    assert_eq!(timeouts["points"], 0.0);
    assert!(
        timeouts["message"]
            .as_str()
            .unwrap()
            .starts_with("in case `three`: "),
        "{timeouts:#}"
    );
    assert!(
        timeouts["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("also in case `six`: ")),
        "{timeouts:#}"
    );

    // JUnit names a scoped check with its case.
    let xml = std::fs::read_to_string(&junit).unwrap();
    common::junit::assert_valid_junit(&xml);
    assert!(xml.contains(r#"<testcase name="six-pings [six]""#), "{xml}");
    assert!(xml.contains(r#"<testcase name="runs""#));

    // The transcript has a section per case, and the six-ping case's server
    // dropped what that case asks (4 and 5), not the lab's 2.
    let text =
        std::fs::read_to_string(snaps.join("fixtures_udp-pinger_count-argument.txt")).unwrap();
    let six = text
        .split("== case six: Six pings, the fourth and fifth lost ==")
        .nth(1)
        .expect("a section for case six");
    let three = text
        .split("== case three: Three pings, the second lost ==")
        .nth(1)
        .expect("a section for case three");
    assert!(
        six.contains("#4      dropped") && six.contains("#5      dropped"),
        "{six}"
    );
    assert!(!six.contains("#2      dropped"), "{six}");
    assert!(three.contains("#2      dropped"), "{three}");
}
