//! PrairieLearn's external grader results (`/grade/results/results.json`):
//! `gradable`, a `score` from 0 to 1, a message, an output, and a test per
//! check with its points, as the `<pl-external-grader-results>` element shows
//! them.
//!
//! PrairieLearn shows every test to the student, so the results are written
//! from [`RunOutcome::student_view`]: checks the lab keeps from students are
//! one `hidden-checks` test, named and explained nowhere.

use std::fmt::Write as _;

use serde::Serialize;

use super::{WRITE_TO_STRING, clean, clean_lines, evidence_line, fraction, program_line};
use crate::outcome::{CheckOutcome, RunOutcome, RunStatus, Status, fmt_points};

/// The whole results file.
#[derive(Serialize)]
struct Results {
    gradable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    message: String,
    output: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tests: Vec<Test>,
}

/// One test: a check.
#[derive(Serialize)]
struct Test {
    name: String,
    description: String,
    points: f64,
    max_points: f64,
    message: String,
    output: String,
}

/// PrairieLearn's results for one run, as pretty JSON ending with a newline.
///
/// The score is the run's score over its maximum (1 for a run with nothing
/// to lose that lost nothing). A run netgrade could not grade is not
/// `gradable`: PrairieLearn then neither awards nor takes points, and does
/// not count the attempt.
pub fn render_run(out: &RunOutcome) -> String {
    let view = out.student_view();
    let results = match view.status {
        RunStatus::Error => Results {
            gradable: false,
            score: None,
            message: "netgrade could not grade this submission; this is not your fault \
                      and costs you no attempt. Tell your instructor, or submit again later."
                .to_string(),
            output: notes(&view),
            tests: Vec::new(),
        },
        RunStatus::Graded => Results {
            gradable: true,
            score: Some(score(&view)),
            message: message(&view),
            output: notes(&view),
            tests: view.checks.iter().map(test).collect(),
        },
    };
    let mut json = serde_json::to_string_pretty(&results).expect("results always serialize");
    json.push('\n');
    json
}

/// Every run's results, one JSON document after another (a single run: its
/// `results.json`).
pub fn render(outs: &[RunOutcome]) -> String {
    outs.iter().map(render_run).collect()
}

/// Score over maximum, from 0 to 1.
fn score(out: &RunOutcome) -> f64 {
    if out.max_score > 0.0 {
        (out.score / out.max_score).clamp(0.0, 1.0)
    } else if out.full_marks() {
        1.0
    } else {
        0.0
    }
}

/// `Score 4.5/10; not passed: waits-for-timeout, prints-replies.`
fn message(out: &RunOutcome) -> String {
    let mut s = format!("Score {}", fraction(out.score, out.max_score));
    let lost: Vec<&str> = out
        .checks
        .iter()
        .filter(|c| !c.passed() && c.status != Status::Pending)
        .map(|c| c.id.as_str())
        .collect();
    if !lost.is_empty() {
        write!(s, "; not passed: {}", clean(&lost.join(", "))).expect(WRITE_TO_STRING);
    }
    let pending = out.pending_points();
    if out.checks.iter().any(|c| c.status == Status::Pending) {
        write!(
            s,
            "; {} points are graded by a person and not in the score yet",
            fmt_points(pending)
        )
        .expect(WRITE_TO_STRING);
    }
    s.push('.');
    s
}

/// The program's line, its diagnoses and the run's notes.
fn notes(out: &RunOutcome) -> String {
    let mut s = String::new();
    if let Some(program) = &out.program {
        writeln!(s, "program: {}", program_line(program)).expect(WRITE_TO_STRING);
        for line in super::instance_lines(program) {
            writeln!(s, "{line}").expect(WRITE_TO_STRING);
        }
    }
    let diagnoses = out.program.iter().flat_map(|p| &p.diagnoses);
    for (label, note) in diagnoses
        .map(|d| ("diagnosis", d))
        .chain(out.notes.iter().map(|n| ("note", n)))
    {
        for line in clean_lines(note) {
            writeln!(s, "{label}: {line}").expect(WRITE_TO_STRING);
        }
    }
    s
}

/// The test of one check.
fn test(c: &CheckOutcome) -> Test {
    let pending = c.status == Status::Pending;
    let mut name = clean(&c.id).into_owned();
    if let Some(case) = &c.case {
        write!(name, " [{}]", clean(case)).expect(WRITE_TO_STRING);
    }
    let mut message = match c.status {
        Status::Pass => "Passed.".to_string(),
        Status::Fail => "Not passed.".to_string(),
        Status::Skip => "Not judged.".to_string(),
        Status::Error => "netgrade could not carry out this check; not your fault.".to_string(),
        Status::Pending => format!(
            "A person grades this check ({} points); its points are not in the score yet.",
            fmt_points(c.max_points)
        ),
    };
    if let Some(f) = c.fraction {
        write!(message, " Partly right: {f}.").expect(WRITE_TO_STRING);
    }
    if let Some(m) = &c.message {
        message.push(' ');
        message.push_str(&clean_lines(m).collect::<Vec<_>>().join(" "));
    }
    let mut output = String::new();
    if !c.passed() {
        for e in &c.evidence {
            writeln!(output, "{}", evidence_line(e)).expect(WRITE_TO_STRING);
        }
        if let Some(hint) = c.hint.as_deref().filter(|_| !pending) {
            for (i, line) in clean_lines(hint).enumerate() {
                let label = if i == 0 { "hint: " } else { "      " };
                writeln!(output, "{label}{line}").expect(WRITE_TO_STRING);
            }
        }
    }
    Test {
        name,
        description: clean_lines(&c.title).collect::<Vec<_>>().join(" "),
        points: if pending { 0.0 } else { c.points },
        max_points: if pending { 0.0 } else { c.max_points },
        message,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Visibility;
    use crate::report::sample_outcomes;

    fn parse(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("valid JSON")
    }

    #[test]
    fn a_run_scores_from_zero_to_one_with_a_test_per_check() {
        let json = render_run(&sample_outcomes()[0]);
        let value = parse(&json);
        assert_eq!(value["gradable"], true);
        assert_eq!(value["score"], 0.45);
        let tests = value["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 6);
        assert_eq!(tests[1]["name"], "waits-for-timeout");
        assert_eq!(tests[1]["points"], 0.0);
        assert_eq!(tests[1]["max_points"], 2.0);
        assert!(tests[1]["output"].as_str().unwrap().contains("hint: call"));
        insta::assert_snapshot!(json);
    }

    #[test]
    fn hidden_checks_are_one_unnamed_test() {
        let mut out = sample_outcomes().remove(0);
        out.checks[1].visibility = Visibility::Hidden;
        let json = render_run(&out);
        assert!(!json.contains("waits-for-timeout"), "{json}");
        let value = parse(&json);
        let tests = value["tests"].as_array().unwrap();
        assert_eq!(tests.last().unwrap()["name"], "hidden-checks");
        assert_eq!(tests.last().unwrap()["max_points"], 2.0);
        assert_eq!(value["score"], 0.45);
    }

    #[test]
    fn a_run_netgrade_could_not_grade_is_not_gradable() {
        let value = parse(&render_run(&sample_outcomes()[2]));
        assert_eq!(value["gradable"], false);
        assert!(value.get("score").is_none());
        assert!(
            value["message"]
                .as_str()
                .unwrap()
                .contains("not your fault")
        );
        assert!(
            value["output"]
                .as_str()
                .unwrap()
                .contains("network namespace")
        );
    }
}
