//! GitHub Classroom: the result of a test runner, as
//! `classroom-resources/autograding-grading-reporter` reads it from an
//! output named `result` (base64-encoded JSON).

use serde::Serialize;

use crate::outcome::{RunOutcome, RunStatus, Status};

/// A runner's result.
#[derive(Serialize)]
struct Result<'a> {
    version: u32,
    status: &'static str,
    max_score: f64,
    tests: Vec<Test<'a>>,
}

/// One test of it: a check.
#[derive(Serialize)]
struct Test<'a> {
    name: String,
    status: &'static str,
    score: f64,
    message: String,
    test_code: String,
    filename: &'a str,
    line_no: u32,
    duration: u64,
}

/// The result JSON of one run, as students see it ([`RunOutcome::student_view`]
/// is the caller's to apply). Checks a person grades are left out: the
/// reporter counts every test it is given. The reporter sums the tests'
/// scores over `max_score`, so partial credit counts as it does here.
pub fn render_json(out: &RunOutcome) -> String {
    let filename = out.entry.as_deref().unwrap_or(out.submission.as_str());
    let checks: Vec<_> = out
        .checks
        .iter()
        .filter(|c| c.status != Status::Pending)
        .collect();
    let duration = (out.timing.total_ms / checks.len().max(1) as f64).round() as u64;
    let mut tests: Vec<Test> = checks
        .iter()
        .map(|c| Test {
            name: match &c.case {
                Some(case) => format!("{} [{case}]: {}", c.id, c.title),
                None => format!("{}: {}", c.id, c.title),
            },
            status: match c.status {
                Status::Pass => "pass",
                Status::Error => "error",
                _ => "fail",
            },
            score: c.points,
            message: message(c),
            test_code: format!("netgrade check {} # {}", out.lab, c.id),
            filename,
            line_no: c.line.unwrap_or(1),
            duration,
        })
        .collect();
    let status = match out.status {
        RunStatus::Error => "error",
        RunStatus::Graded if out.full_marks() => "pass",
        RunStatus::Graded => "fail",
    };
    if out.status == RunStatus::Error {
        tests.push(Test {
            name: "netgrade".into(),
            status: "error",
            score: 0.0,
            message: format!(
                "netgrade could not grade this run (not your program's fault): {}",
                out.notes.join("; ")
            ),
            test_code: format!("netgrade check {}", out.lab),
            filename,
            line_no: 1,
            duration: out.timing.total_ms.round() as u64,
        });
    }
    let result = Result {
        version: 1,
        status,
        max_score: out.max_score,
        tests,
    };
    serde_json::to_string(&result).expect("a result always serializes")
}

/// The message of a check that did not pass: what was wrong, the evidence,
/// the hint; with the share of a partly right check.
fn message(c: &crate::outcome::CheckOutcome) -> String {
    let mut lines = Vec::new();
    if let Some(f) = c.fraction {
        lines.push(format!("partly right: {f}"));
    }
    if c.status != Status::Pass {
        lines.extend(c.message.clone());
        lines.extend(c.evidence.iter().map(|e| format!("│ {e}")));
        lines.extend(c.hint.as_ref().map(|h| format!("hint: {h}")));
    }
    lines.join("\n")
}

/// The line for `$GITHUB_OUTPUT`: `result=<base64 of the JSON>`.
pub fn output_line(out: &RunOutcome) -> String {
    format!("result={}\n", base64(render_json(out).as_bytes()))
}

/// Standard base64 (RFC 4648 §4), with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn the_result_is_what_the_reporter_reads() {
        let outs = sample_outcomes();
        let v: serde_json::Value = serde_json::from_str(&render_json(&outs[0])).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["status"], "fail");
        assert_eq!(v["max_score"], 10.0);
        let tests = v["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 6);
        let total: f64 = tests.iter().map(|t| t["score"].as_f64().unwrap()).sum();
        assert_eq!(total, 4.5, "the reporter sums the scores");
        assert_eq!(tests[1]["status"], "fail");
        assert_eq!(tests[1]["filename"], "UDPPingerClient.py");
        assert_eq!(tests[1]["line_no"], 1);
        assert!(tests[1]["message"].as_str().unwrap().contains("hint: call"));
        assert_eq!(tests[5]["status"], "error");
        let broken: serde_json::Value = serde_json::from_str(&render_json(&outs[2])).unwrap();
        assert_eq!(broken["status"], "error");
        assert!(
            broken["tests"][0]["message"]
                .as_str()
                .unwrap()
                .contains("network namespace")
        );
    }
}
