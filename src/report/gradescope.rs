//! Gradescope's autograder results (`results.json`, "Autograder
//! Specifications"): the run's score, a Markdown summary for the student,
//! and a test per check with its own points, output and visibility.
//!
//! The summary is written from [`RunOutcome::student_view`], so a check the
//! lab keeps `hidden` (or shows only after the due date, or once grades are
//! published) is never named there; its own test carries its visibility and
//! Gradescope shows it only when that visibility allows.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::markdown::{Place, inline, longest_backtick_run};
use super::{WRITE_TO_STRING, clean, clean_lines, evidence_line, fraction, program_line};
use crate::outcome::{CheckOutcome, RunOutcome, RunStatus, Status, fmt_points};

/// The whole results file.
#[derive(Serialize)]
struct Results {
    score: f64,
    execution_time: u64,
    output: String,
    output_format: &'static str,
    test_output_format: &'static str,
    tests: Vec<Test>,
}

/// One test: a check.
#[derive(Serialize)]
struct Test {
    name: String,
    number: String,
    /// Absent for a check a person grades: Gradescope then counts no points.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_score: Option<f64>,
    /// `passed` or `failed`; absent for a check a person grades.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    output: String,
    visibility: &'static str,
}

/// Gradescope's results for one run, as pretty JSON ending with a newline.
///
/// A run netgrade could not grade scores 0, has no tests, and its output says
/// why and that it is not the student's fault.
pub fn render_run(out: &RunOutcome) -> String {
    let results = Results {
        score: out.score,
        execution_time: (out.timing.total_ms / 1000.0).round().max(0.0) as u64,
        output: summary(out),
        output_format: "md",
        test_output_format: "md",
        tests: match out.status {
            RunStatus::Graded => out
                .checks
                .iter()
                .enumerate()
                .map(|(i, c)| test(i + 1, c))
                .collect(),
            RunStatus::Error => Vec::new(),
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

/// Writes `render_run`'s results of each run to `path`; for runs of a
/// batch of `several`, a `FILE-SUBMISSION` file each, so none overwrites
/// another (whether the batch has several runs, not how many are graded
/// yet, decides the name).
pub fn write_each(
    path: &Path,
    outs: &[RunOutcome],
    several: bool,
    render_run: fn(&RunOutcome) -> String,
) -> Result<(), String> {
    let targets: Vec<(PathBuf, &RunOutcome)> = outs
        .iter()
        .map(|o| {
            let target = if several {
                per_run_path(path, o)
            } else {
                path.to_path_buf()
            };
            (target, o)
        })
        .collect();
    for (target, out) in targets {
        super::write_atomic(&target, render_run(out).as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    Ok(())
}

/// `results.json` → `results-SUBMISSION.json`, the submission's name made
/// safe for a file name.
fn per_run_path(path: &Path, out: &RunOutcome) -> PathBuf {
    let name = super::file_name_of(&out.submission);
    let stem = path
        .file_stem()
        .map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    let file = match path.extension() {
        Some(ext) => format!("{stem}-{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{name}"),
    };
    path.with_file_name(file)
}

/// The top-level output, from the student's view of the run only.
fn summary(out: &RunOutcome) -> String {
    let view = out.student_view();
    let mut s = String::new();
    if view.status == RunStatus::Error {
        s.push_str(
            "**netgrade could not grade this submission.** This is not your fault: \
             netgrade itself failed, so the score of 0 says nothing about your work. \
             Tell your instructor, or submit again later.\n\n",
        );
        push_notes(&mut s, &view);
        return s;
    }
    writeln!(
        s,
        "**Score: {}** (lab `{}`)\n",
        fraction(view.score, view.max_score),
        code_text(&view.lab)
    )
    .expect(WRITE_TO_STRING);
    if let Some(program) = &view.program {
        writeln!(s, "**Program:** {}\n", md_text(&program_line(program))).expect(WRITE_TO_STRING);
        for line in super::instance_lines(program) {
            writeln!(s, "{}\n", md_text(&line)).expect(WRITE_TO_STRING);
        }
    }
    let passed = view.checks.iter().filter(|c| c.passed()).count();
    let pending: Vec<&CheckOutcome> = view
        .checks
        .iter()
        .filter(|c| c.status == Status::Pending)
        .collect();
    let lost: Vec<String> = view
        .checks
        .iter()
        .filter(|c| !c.passed() && c.status != Status::Pending)
        .map(|c| format!("`{}`", code_text(&c.id)))
        .collect();
    write!(s, "**Checks:** {passed} of {} passed", view.checks.len()).expect(WRITE_TO_STRING);
    if !lost.is_empty() {
        write!(s, "; not passed: {}", lost.join(", ")).expect(WRITE_TO_STRING);
    }
    s.push_str("\n\n");
    if !pending.is_empty() {
        writeln!(
            s,
            "{} {} graded by a person; {} points are not in the score until then.\n",
            pending.len(),
            if pending.len() == 1 {
                "check is"
            } else {
                "checks are"
            },
            fmt_points(view.pending_points())
        )
        .expect(WRITE_TO_STRING);
    }
    push_notes(&mut s, &view);
    s
}

/// The program's diagnoses and the run's notes, as a list.
fn push_notes(s: &mut String, out: &RunOutcome) {
    let diagnoses = out.program.iter().flat_map(|p| &p.diagnoses);
    for (label, note) in diagnoses
        .map(|d| ("diagnosis", d))
        .chain(out.notes.iter().map(|n| ("note", n)))
    {
        writeln!(s, "- {label}: {}", md_text(note)).expect(WRITE_TO_STRING);
    }
}

/// The test of check number `number`.
fn test(number: usize, c: &CheckOutcome) -> Test {
    let pending = c.status == Status::Pending;
    let mut name = clean(&c.id).into_owned();
    if let Some(case) = &c.case {
        write!(name, " [{}]", clean(case)).expect(WRITE_TO_STRING);
    }
    write!(
        name,
        ": {}",
        clean_lines(&c.title).collect::<Vec<_>>().join(" ")
    )
    .expect(WRITE_TO_STRING);
    Test {
        name,
        number: number.to_string(),
        score: (!pending).then_some(c.points),
        max_score: (!pending).then_some(c.max_points),
        status: match c.status {
            Status::Pass => Some("passed"),
            Status::Pending => None,
            Status::Fail | Status::Error | Status::Skip => Some("failed"),
        },
        output: test_output(c),
        visibility: c.visibility.as_str(),
    }
}

/// A test's Markdown: what was found, the evidence, the hint.
fn test_output(c: &CheckOutcome) -> String {
    let mut s = String::new();
    match c.status {
        Status::Pending => writeln!(
            s,
            "A person grades this check ({} points); its points are not in the score until then.\n",
            fmt_points(c.max_points)
        )
        .expect(WRITE_TO_STRING),
        Status::Error => {
            s.push_str("netgrade could not carry out this check; this is not your fault.\n\n")
        }
        Status::Skip => s.push_str("Not judged.\n\n"),
        Status::Pass | Status::Fail => {}
    }
    if let Some(f) = c.fraction {
        writeln!(
            s,
            "**Partly right: {f}**, worth {} of {} points.\n",
            fmt_points(c.points),
            fmt_points(c.max_points)
        )
        .expect(WRITE_TO_STRING);
    }
    if let Some(message) = &c.message {
        writeln!(s, "{}\n", md_text(message)).expect(WRITE_TO_STRING);
    }
    if !c.passed() && !c.evidence.is_empty() {
        let lines: Vec<_> = c.evidence.iter().map(|e| evidence_line(e)).collect();
        let fence = "`".repeat(longest_backtick_run(&lines.concat()).max(2) + 1);
        writeln!(s, "{fence}text\n{}\n{fence}\n", lines.join("\n")).expect(WRITE_TO_STRING);
    }
    if let Some(hint) = c.hint.as_deref().filter(|_| !c.passed() && !pending(c)) {
        writeln!(s, "_Hint:_ {}\n", md_text(hint)).expect(WRITE_TO_STRING);
    }
    if s.is_empty() {
        s.push_str("Passed.\n");
    }
    s
}

/// Whether a person grades `c`.
fn pending(c: &CheckOutcome) -> bool {
    c.status == Status::Pending
}

/// Text inside a code span of ours: backticks, which would end it, become `'`.
fn code_text(raw: &str) -> String {
    clean(raw).replace('`', "'")
}

/// Text as Markdown that reads as written: lines [`clean`]ed and joined as
/// separate lines; code spans (backtick runs closed by a run of the same
/// length) kept; everything else that Markdown or HTML would act on escaped.
fn md_text(raw: &str) -> String {
    clean_lines(raw)
        .map(|line| inline(&line, Place::Block))
        .collect::<Vec<_>>()
        .join("  \n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Fraction, Visibility};
    use crate::report::sample_outcomes;

    fn parse(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("valid JSON")
    }

    /// The sample's partial run with a hidden, an after-due-date, a pending
    /// and a partly right check.
    fn with_visibility() -> RunOutcome {
        let mut out = sample_outcomes().remove(0);
        out.checks[1].visibility = Visibility::Hidden;
        out.checks[2].visibility = Visibility::AfterDueDate;
        out.checks[3].fraction = Some(Fraction { right: 1, of: 4 });
        out.checks[5].status = Status::Pending;
        out.checks[5].max_points = 3.0;
        out
    }

    #[test]
    fn a_run_has_a_test_per_check_with_its_score_and_visibility() {
        let json = render_run(&with_visibility());
        let value = parse(&json);
        assert_eq!(value["score"], 4.5);
        assert_eq!(value["execution_time"], 3);
        assert_eq!(value["output_format"], "md");
        assert_eq!(value["test_output_format"], "md");
        let tests = value["tests"].as_array().unwrap();
        assert_eq!(tests.len(), 6);
        assert_eq!(
            tests[1]["name"],
            "waits-for-timeout: After a lost ping, the client waits about one second"
        );
        assert_eq!(tests[1]["number"], "2");
        assert_eq!(tests[1]["status"], "failed");
        assert_eq!(tests[1]["max_score"], 2.0);
        assert_eq!(tests[1]["visibility"], "hidden");
        assert_eq!(tests[2]["visibility"], "after_due_date");
        assert_eq!(tests[0]["status"], "passed");
        assert_eq!(tests[0]["visibility"], "visible");
        // Partial credit says how much was right.
        let partial = tests[3]["output"].as_str().unwrap();
        assert!(partial.contains("**Partly right: 1 of 4**, worth 0.5 of 2 points"));
        // A check graded by hand has no points and says who grades it.
        assert!(tests[5].get("score").is_none() && tests[5].get("max_score").is_none());
        assert!(tests[5].get("status").is_none());
        assert!(
            tests[5]["output"]
                .as_str()
                .unwrap()
                .contains("A person grades")
        );
        insta::assert_snapshot!(json);
    }

    #[test]
    fn the_summary_never_names_a_hidden_check() {
        let value = parse(&render_run(&with_visibility()));
        let output = value["output"].as_str().unwrap();
        assert!(output.contains("**Score: 4.5/10**"), "{output}");
        assert!(!output.contains("waits-for-timeout"), "{output}");
        assert!(!output.contains("ping-format"), "{output}");
        assert!(output.contains("`hidden-checks`"), "{output}");
        assert!(output.contains("`prints-replies`"), "{output}");
        assert!(
            output.contains("1 check is graded by a person; 3 points"),
            "{output}"
        );
    }

    #[test]
    fn student_text_is_escaped_and_fenced() {
        let value = parse(&render_run(&sample_outcomes()[0]));
        let echo = value["tests"][3]["output"].as_str().unwrap();
        // The evidence holds three backticks: the fence is longer.
        assert!(
            echo.contains("````text\nline 2: \\x1b[31mPWNED\\0 | <b>&</b> ```\n"),
            "{echo}"
        );
        assert!(
            echo.contains("_Hint:_ print the reply exactly as received:  \nprint(reply.decode())")
        );
        assert_eq!(
            md_text("a <b> *c* `x_y` ``z"),
            r"a &lt;b&gt; \*c\* `x_y` \`\`z"
        );
    }

    #[test]
    fn a_run_netgrade_could_not_grade_is_not_held_against_the_student() {
        let value = parse(&render_run(&sample_outcomes()[2]));
        assert_eq!(value["score"], 0.0);
        assert_eq!(value["tests"].as_array().unwrap().len(), 0);
        let output = value["output"].as_str().unwrap();
        assert!(output.contains("netgrade could not grade this submission"));
        assert!(output.contains("This is not your fault"));
        assert!(output.contains("could not create a network namespace"));
    }

    #[test]
    fn several_runs_go_to_a_file_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        let outs = sample_outcomes();
        write_each(&path, &outs[..1], false, render_run).unwrap();
        assert_eq!(
            parse(&std::fs::read_to_string(&path).unwrap())["score"],
            4.5
        );
        write_each(&path, &outs[..2], true, render_run).unwrap();
        let good = dir.path().join("results-fixtures_udp-pinger_good.json");
        assert_eq!(parse(&std::fs::read_to_string(good).unwrap())["score"], 4.0);
    }
}
