//! The README's examples are real output: the console report at its top and
//! the JSON report under "Reports" are produced again here, for the same
//! submission, and must match line for line and field for field. Durations
//! (`0.501 s`, `2263` ms), the program's output and the machine's limits vary
//! from run to run; everything else must be as the README shows it.

mod common;

use common::*;
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md")
}

/// The lines of the fenced block that starts right after the line holding `marker`.
fn block_after(text: &str, marker: &str) -> Vec<String> {
    let start = text
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("the README has no `{marker}`"));
    let mut lines = text.lines().skip(start);
    if !marker.starts_with("$ ") {
        lines.find(|l| l.trim_start().starts_with("```"));
    } else {
        lines.next();
    }
    let body: Vec<String> = lines
        .take_while(|l| !l.trim_start().starts_with("```"))
        .map(String::from)
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.into_iter()
        .map(|l| l.get(indent..).unwrap_or("").to_string())
        .collect()
}

/// Durations as written in reports, which vary from run to run.
fn timeless(s: &str) -> String {
    let re = regex::Regex::new(r"\b\d+(\.\d+)? (s|ms)\b").unwrap();
    re.replace_all(s, "<duration>").into_owned()
}

#[test]
fn the_console_example_is_real() {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("fixtures/udp-pinger/short-timeout/UDPPingerClient.py");
    std::fs::copy(&src, dir.path().join("UDPPingerClient.py")).unwrap();
    let out = netgrade()
        .args(["check", "udp-pinger"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    let real = String::from_utf8(out.stdout).unwrap();
    let shown = block_after(&readme(), "$ netgrade check udp-pinger");
    // A busy machine may have the run graded again, which its notes say.
    let real: Vec<String> = real
        .lines()
        .filter(|l| !l.trim_start().starts_with("note: regraded:"))
        .map(timeless)
        .collect();
    let shown: Vec<String> = shown.iter().map(|l| timeless(l)).collect();
    assert_eq!(
        shown, real,
        "the README's console example differs from real output"
    );
}

/// Fields that vary from run to run or machine to machine: compared by type.
const VARYING: [&str; 9] = [
    "duration_ms",
    // Changes with every edit of the lab's YAML.
    "lab_digest",
    "total_ms",
    "program_ms",
    "queued_ms",
    "overhead_ms",
    "late_ms",
    "limits",
    "stdout",
];

fn same(shown: &Value, real: &Value, path: &str, diffs: &mut Vec<String>) {
    let key = path.rsplit('.').next().unwrap_or("");
    match (shown, real) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<_> = a.keys().collect();
            let kb: Vec<_> = b.keys().collect();
            if ka != kb {
                diffs.push(format!(
                    "{path}: fields {ka:?} in the README, {kb:?} for real"
                ));
            }
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    same(v, w, &format!("{path}.{k}"), diffs);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                diffs.push(format!(
                    "{path}: {} items in the README, {} for real",
                    a.len(),
                    b.len()
                ));
            }
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                same(v, w, &format!("{path}[{i}]"), diffs);
            }
        }
        _ if VARYING.contains(&key) => {
            if std::mem::discriminant(shown) != std::mem::discriminant(real) {
                diffs.push(format!("{path}: {shown} in the README, {real} for real"));
            }
        }
        (Value::String(a), Value::String(b)) => {
            if timeless(a) != timeless(b) {
                diffs.push(format!("{path}: {a:?} in the README, {b:?} for real"));
            }
        }
        _ => {
            if shown != real {
                diffs.push(format!("{path}: {shown} in the README, {real} for real"));
            }
        }
    }
}

#[test]
fn the_json_example_is_real() {
    let block = block_after(&readme(), "- **JSON** (`--json FILE`)").join("\n");
    let shown: Value = serde_json::from_str(&block).expect("the README's JSON example is JSON");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    netgrade()
        .args([
            "run",
            "udp-pinger",
            "fixtures/udp-pinger/short-timeout",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .assert()
        .code(1);
    let mut real = read_json(&json);
    // A busy machine may have the run graded again, which its notes say.
    if let Some(notes) = real["runs"][0]["notes"].as_array_mut() {
        notes.retain(|n| !n.as_str().is_some_and(|n| n.starts_with("regraded:")));
    }
    let mut diffs = Vec::new();
    same(&shown, &real, "$", &mut diffs);
    assert!(
        diffs.is_empty(),
        "the README's JSON example differs from real output:\n{}",
        diffs.join("\n")
    );
}
