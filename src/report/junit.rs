//! The JUnit XML report, for CI test reporters: one test suite per run, one test case per check.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{clean, clean_lines, evidence_line};
use crate::outcome::{CheckOutcome, RunOutcome, RunStatus, Status, fmt_points};

/// Renders `<testsuites name="netgrade">` with a `<testsuite>` per run.
///
/// Test cases are named by check id, with the check's title in `<system-out>`; a failed check
/// carries its message, evidence and hint. A run that netgrade could not carry out has a single
/// `netgrade` test case with an `<error>`.
pub fn render(outs: &[RunOutcome]) -> String {
    let mut report = Report::new("netgrade");
    report.add_test_suites(outs.iter().map(suite));
    report
        .to_string()
        .expect("a JUnit report always serializes to a String")
}

/// The test suite of one run, with its score and program exit as properties.
fn suite(out: &RunOutcome) -> TestSuite {
    let mut suite = TestSuite::new(format!("{} · {}", clean(&out.lab), clean(&out.submission)));
    suite.set_time(Duration::try_from_secs_f64(out.timing.total_ms / 1000.0).unwrap_or_default());
    let status = match out.status {
        RunStatus::Graded => "graded",
        RunStatus::Error => "error",
    };
    suite.add_properties([
        Property::new("status", status),
        Property::new("score", fmt_points(out.score)),
        Property::new("max_score", fmt_points(out.max_score)),
        Property::new("seed", out.seed.to_string()),
        Property::new("lab", clean(&out.lab)),
        Property::new("submission", clean(&out.submission)),
    ]);
    if let Some(program) = &out.program {
        suite.add_property(Property::new(
            "program_exit",
            clean(&program.exit.describe()),
        ));
    }
    let classname = format!("{}.{}", clean(&out.lab), clean(&out.submission));
    let cases: Vec<TestCase> = match out.status {
        RunStatus::Graded => out.checks.iter().map(test_case).collect(),
        RunStatus::Error => {
            let notes: Vec<_> = out.notes.iter().flat_map(|n| clean_lines(n)).collect();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_message(notes.first().map_or("internal error", |n| n.as_ref()))
                .set_description(notes.join("\n"));
            vec![TestCase::new("netgrade", status)]
        }
    };
    suite.add_test_cases(cases.into_iter().map(|mut case| {
        case.set_classname(&classname);
        case
    }));
    suite
}

/// The test case of one check; its points are properties.
fn test_case(check: &CheckOutcome) -> TestCase {
    let message = check.message.as_deref().unwrap_or(&check.title);
    let status = match check.status {
        Status::Pass => TestCaseStatus::success(),
        Status::Skip | Status::Pending => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(clean(message));
            status
        }
        Status::Fail | Status::Error => {
            let kind = if check.status == Status::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut body: Vec<String> = clean_lines(message).map(Into::into).collect();
            body.extend(
                check
                    .evidence
                    .iter()
                    .map(|e| format!("│ {}", evidence_line(e))),
            );
            if let Some(hint) = &check.hint {
                let labels = std::iter::once("hint:").chain(std::iter::repeat("     "));
                body.extend(
                    labels
                        .zip(clean_lines(hint))
                        .map(|(label, line)| format!("{label} {line}")),
                );
            }
            let mut status = TestCaseStatus::non_success(kind);
            status
                .set_message(clean(message))
                .set_type(clean(&check.id))
                .set_description(body.join("\n"));
            status
        }
    };
    // A check that judges one case is named with it: `six-pings [six]`.
    let name = match &check.case {
        Some(c) => format!("{} [{}]", check.id, c),
        None => check.id.clone(),
    };
    let mut case = TestCase::new(clean(&name), status);
    case.set_system_out(clean(&check.title)).add_properties([
        Property::new("points", fmt_points(check.points)),
        Property::new("max_points", fmt_points(check.max_points)),
    ]);
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn junit_has_a_suite_per_run_and_a_case_per_check() {
        insta::assert_snapshot!(render(&sample_outcomes()));
    }

    #[test]
    fn junit_is_well_formed_xml_even_with_hostile_text() {
        let mut outs = sample_outcomes();
        outs[0].checks[1].message = Some("bad \x1b[2J\x00 byte".to_string());
        outs[0].submission.push_str("\x07<&>\"");
        let xml = render(&outs);
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(failure.attribute("message"), Some(r"bad \x1b[2J\0 byte"));
        assert_eq!(failure.attribute("type"), Some("waits-for-timeout"));
        let suites: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 3);
        assert_eq!(
            suites[0].attribute("name"),
            Some(r#"udp-pinger · fixtures/udp-pinger/short-timeout\x07<&>""#)
        );
        let error = suites[2]
            .descendants()
            .find(|n| n.has_tag_name("error"))
            .unwrap();
        assert!(
            error
                .attribute("message")
                .unwrap()
                .contains("network namespace")
        );
    }
}
