//! The JUnit XML report, for CI test reporters: one test suite per run, one test case per check.
//!
//! The file keeps to the Jenkins JUnit schema (junit-10.xsd) and gives the
//! usual reporters (mikepenz/action-junit-report, dorny/test-reporter,
//! GitLab, Jenkins) what they place annotations with: each test case's
//! `file` (the graded entry file), `line` (where a traceback or compiler
//! pointed, or the code the check is about; else 1) and `time`, and a
//! classname of the lab and the submission that no reporter cuts at a dot.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{clean, clean_lines, evidence_line, fraction};
use crate::outcome::{CheckOutcome, RunOutcome, RunStatus, Status, fmt_points};

/// Longest failure `message` attribute, in characters: the whole message,
/// evidence and hint are in the element's text.
const MESSAGE_CHARS: usize = 160;

/// Renders `<testsuites name="netgrade">` with a `<testsuite>` per run.
///
/// Test cases are named by check id, with the check's title and points in
/// `<system-out>`; a failed check carries its message, evidence and hint. A
/// run that netgrade could not carry out has a single `netgrade` test case
/// with an `<error>`.
pub fn render(outs: &[RunOutcome]) -> String {
    let mut report = Report::new("netgrade");
    report.add_test_suites(outs.iter().map(suite));
    let total: f64 = outs.iter().map(|o| o.timing.total_ms).sum();
    report.set_time(seconds(total));
    let xml = report
        .to_string()
        .expect("a JUnit report always serializes to a String");
    without_root_skipped(xml)
}

/// The Jenkins schema has no `skipped` count on `<testsuites>` (each
/// `<testsuite>` keeps its own), which quick-junit always writes.
fn without_root_skipped(xml: String) -> String {
    let Some(start) = xml.find("<testsuites ") else {
        return xml;
    };
    let end = xml[start..].find('>').map_or(xml.len(), |e| start + e);
    let tag = &xml[start..end];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml;
    };
    let close = tag[at + 10..]
        .find('"')
        .map_or(tag.len(), |c| at + 10 + c + 1);
    format!("{}{}{}", &xml[..start + at], &tag[close..], &xml[end..])
}

/// Milliseconds as a `Duration`, 0 for anything that is not a time.
fn seconds(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or_default()
}

/// `udp-pinger.ada_lovelace`: the lab and the submission's own name (its
/// folder or file, as a roster names the student) with every character
/// but letters, digits, `-` and `_` made `_`, so that a reporter that takes
/// the part after the last dot as the class gets the whole name. Never
/// empty: `.` (the current folder) is `submission`.
pub fn classname(lab: &str, submission: &str) -> String {
    let name = super::submission_name(submission);
    format!(
        "{}.{}",
        identifier(lab, "lab"),
        identifier(name, "submission")
    )
}

/// `text` with runs of characters other than letters, digits, `-` and `_`
/// made one `_`, trimmed of `_`; `empty` when nothing is left.
fn identifier(text: &str, empty: &str) -> String {
    let trimmed = text.trim_start_matches("./").trim_end_matches('/');
    let mut out = String::with_capacity(trimmed.len());
    for c in trimmed.chars() {
        if c.is_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_matches('_');
    if out.is_empty() {
        empty.to_string()
    } else {
        out.to_string()
    }
}

/// The test suite of one run, with its score and program exit as properties.
fn suite(out: &RunOutcome) -> TestSuite {
    let mut suite = TestSuite::new(format!("{} · {}", clean(&out.lab), clean(&out.submission)));
    suite.set_time(seconds(out.timing.total_ms));
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
    let classname = classname(&out.lab, &out.submission);
    let file = out
        .entry
        .clone()
        .unwrap_or_else(|| out.submission.trim_start_matches("./").to_string());
    let mut cases: Vec<(TestCase, Option<u32>)> = match out.status {
        RunStatus::Graded => out.checks.iter().map(|c| (test_case(c), c.line)).collect(),
        RunStatus::Error => {
            let notes: Vec<_> = out.notes.iter().flat_map(|n| clean_lines(n)).collect();
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status
                .set_message(short(
                    notes.first().map_or("internal error", |n| n.as_ref()),
                ))
                .set_description(notes.join("\n"));
            vec![(TestCase::new("netgrade", status), None)]
        }
    };
    // The run's time, shared by its test cases: they add up to the suite's.
    let share = seconds(out.timing.total_ms / cases.len().max(1) as f64);
    for (case, line) in &mut cases {
        case.set_classname(&classname).set_time(share);
        case.extra
            .insert("file".into(), clean(&file).as_ref().into());
        case.extra
            .insert("line".into(), line.unwrap_or(1).to_string().into());
    }
    suite.add_test_cases(cases.into_iter().map(|(case, _)| case));
    suite
}

/// The first line of `message`, cut to [`MESSAGE_CHARS`] characters.
fn short(message: &str) -> String {
    let first = clean(message.lines().next().unwrap_or_default()).into_owned();
    match first.char_indices().nth(MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &first[..cut]),
        None => first,
    }
}

/// `2/2 points`, `1.43/2 points (5 of 7 right)`, `graded by hand (2 points)`.
fn points_line(check: &CheckOutcome) -> String {
    match (check.status, check.fraction) {
        (Status::Pending, _) => format!("graded by hand ({} points)", fmt_points(check.max_points)),
        (_, Some(f)) => format!(
            "{} points ({f} right)",
            fraction(check.points, check.max_points)
        ),
        _ => format!("{} points", fraction(check.points, check.max_points)),
    }
}

/// The test case of one check; its title and points are its `<system-out>`.
fn test_case(check: &CheckOutcome) -> TestCase {
    let message = check.message.as_deref().unwrap_or(&check.title);
    let status = match check.status {
        Status::Pass => TestCaseStatus::success(),
        Status::Skip | Status::Pending => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(short(message));
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
                .set_message(short(message))
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
    case.set_system_out(format!("{}\n{}", clean(&check.title), points_line(check)));
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
    fn classnames_keep_the_whole_submission_name_without_dots() {
        assert_eq!(
            classname("udp-pinger", "ada.lovelace/"),
            "udp-pinger.ada_lovelace"
        );
        assert_eq!(classname("udp-pinger", "."), "udp-pinger.submission");
        assert_eq!(classname("udp-pinger", "./"), "udp-pinger.submission");
        assert_eq!(
            classname("udp-pinger", "./subs/ada lovelace"),
            "udp-pinger.ada_lovelace"
        );
        assert_eq!(
            classname("udp-pinger", "/tmp/class/bob.py"),
            "udp-pinger.bob_py"
        );
        assert_eq!(classname("my.lab", "..."), "my_lab.submission");
    }

    #[test]
    fn test_cases_carry_file_line_and_time_and_no_properties() {
        let mut outs = sample_outcomes();
        outs[0].checks[1].line = Some(17);
        let xml = render(&outs);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("skipped"), None, "{xml}");
        assert!(root.attribute("time").is_some());
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        for case in &cases {
            assert!(case.attribute("time").is_some());
            assert!(case.attribute("line").is_some());
            assert!(!case.children().any(|c| c.has_tag_name("properties")));
        }
        let waits = cases
            .iter()
            .find(|c| c.attribute("name") == Some("waits-for-timeout"))
            .unwrap();
        assert_eq!(waits.attribute("file"), Some("UDPPingerClient.py"));
        assert_eq!(waits.attribute("line"), Some("17"));
        assert_eq!(
            waits.attribute("classname"),
            Some("udp-pinger.short-timeout")
        );
        // Without an entry file, the submission stands for it.
        let broken = cases.last().unwrap();
        assert_eq!(broken.attribute("file"), Some("fixtures/udp-pinger/broken"));
        assert_eq!(broken.attribute("line"), Some("1"));
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
