//! Homework: the chapter's written problems, graded from an answers file.
//!
//! A homework lab (`program.role: answers`) has no program: the submission
//! is an answers file ([`answers`]), found by `program.entry`. Its
//! questions are checks of the answer kinds (`numeric`, `expression`,
//! `choice`, `exact`, `regex`, `set`, `manual`), whose numbers come from
//! the student's variant ([`variant`]): parameters drawn from the lab's
//! seed and the student's identity. [`record`] puts the variant and the
//! answers in the run's trace; the checks read them there, like every
//! other check. [`sheet`] writes a student's questions (`netgrade
//! homework`).

pub mod answers;
pub mod expr;
pub mod plot;
pub mod quantity;
pub mod replay;
pub mod variant;

use std::path::Path;
use std::time::SystemTime;

use crate::spec::{CheckKind, CheckSpec, Expected, Lab, ParamValue};
use crate::trace::{EventKind, Recorder};
use variant::Variant;

/// Whether `kind` is one of a homework's.
pub fn is_answer_kind(kind: CheckKind) -> bool {
    matches!(
        kind,
        CheckKind::Numeric
            | CheckKind::Expression
            | CheckKind::Choice
            | CheckKind::Exact
            | CheckKind::Regex
            | CheckKind::Set
            | CheckKind::Manual
            | CheckKind::Pop3Session
    )
}

/// The identity a student's variant is drawn for: `given` (`--student`),
/// else the submission's name (its folder's, or a file's without the
/// extension).
pub fn student_of(submission: &Path, given: Option<&str>) -> String {
    if let Some(id) = given.map(str::trim).filter(|s| !s.is_empty()) {
        return id.to_string();
    }
    let path = std::fs::canonicalize(submission).unwrap_or_else(|_| submission.to_path_buf());
    let name = if path.is_dir() {
        path.file_name()
    } else {
        path.file_stem()
    };
    name.map_or_else(|| "student".into(), |n| n.to_string_lossy().into_owned())
}

/// The questions of `lab`, each with the labels its answer may have: its
/// `label` (else its number among the questions, from 1) and its id.
pub fn labels(lab: &Lab) -> Vec<(&CheckSpec, Vec<String>)> {
    lab.checks
        .iter()
        .filter(|c| c.kind().is_some_and(is_answer_kind))
        .enumerate()
        .map(|(i, c)| {
            let label = c.label.clone().unwrap_or_else(|| (i + 1).to_string());
            (c, vec![label, c.id.value.clone()])
        })
        .collect()
}

/// The variant of `student` for `lab` with `seed`.
pub fn variant_of(lab: &Lab, seed: u64, student: &str) -> Variant {
    Variant::draw(&lab.params, seed, student)
}

/// Each question's answer among `answers`: the last one labelled with one
/// of its labels, by question id.
pub fn answered(lab: &Lab, answers: &[answers::Answer]) -> Vec<(String, answers::Answer)> {
    labels(lab)
        .into_iter()
        .filter_map(|(spec, labels)| {
            answers
                .iter()
                .rev()
                .find(|a| {
                    labels
                        .iter()
                        .any(|l| l.eq_ignore_ascii_case(a.label.trim()))
                })
                .map(|a| (spec.id.value.clone(), a.clone()))
        })
        .collect()
}

/// Reads the answers file `file` (its name in the submission is `shown`)
/// and records the student's variant and the answers; returns the answers.
pub fn record(
    lab: &Lab,
    seed: u64,
    student: &str,
    file: Option<(&Path, &str)>,
    recorder: &Recorder,
) -> Vec<answers::Answer> {
    let variant = variant_of(lab, seed, student);
    recorder.record(EventKind::Variant {
        student: variant.student.clone(),
        values: variant
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    });
    let known: Vec<String> = labels(lab).into_iter().flat_map(|(_, l)| l).collect();
    let (name, answers, problem) = match file {
        None => (
            String::new(),
            Vec::new(),
            Some("no answers file".to_string()),
        ),
        Some((path, name)) => match read_bounded(path) {
            Ok(text) => match answers::read(name, &text, &known) {
                Ok(a) => (name.to_string(), a, None),
                Err(e) => (name.to_string(), Vec::new(), Some(e)),
            },
            Err(e) => (name.to_string(), Vec::new(), Some(e)),
        },
    };
    recorder.record(EventKind::Answers {
        file: name,
        answers: answers.clone(),
        problem,
    });
    answers
}

/// The file's text, at most [`answers::MAX_FILE`] bytes of it.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Vec::new();
    // Never through a symbolic link (the work folder's copy has none; this
    // keeps it so), and never a FIFO that would wait for ever.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(f)
            } else {
                Err(std::io::Error::other("it is not a regular file"))
            }
        })
        .and_then(|f| f.take(answers::MAX_FILE as u64).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read the answers file: {e}"))?;
    String::from_utf8(bytes).or_else(|e| Ok(String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// A parameter's value for people.
pub fn shown(v: &ParamValue) -> String {
    match v {
        ParamValue::Number(n) => variant::number(*n),
        ParamValue::Text(t) => t.clone(),
    }
}

/// The expected value of a numeric or expression question for `variant`.
pub fn expected_number(spec: &CheckSpec, variant: &Variant) -> Result<f64, String> {
    match &spec.expect {
        Some(Expected::Number(n)) => Ok(*n),
        Some(Expected::Text(t)) => {
            let e = expr::Expr::parse(t)?;
            e.eval(&variant.numbers())
        }
        _ => Err("the question has no expected number".into()),
    }
}

/// Whether reports may show expected answers at `now` (the lab's
/// `show_expected`: `never`, `always`, or the date after which they may).
pub fn show_expected(lab: &Lab, now: SystemTime) -> bool {
    match lab.show_expected.as_deref().map(str::trim) {
        None | Some("never") => false,
        Some("always") => true,
        Some(date) => parse_utc(date).is_some_and(|t| now >= t),
    }
}

/// `2026-12-10`, `2026-12-10T23:59`, `2026-12-10T23:59:00Z` (UTC).
pub fn parse_utc(text: &str) -> Option<SystemTime> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once(['T', ' ']).unwrap_or((text, "00:00"));
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let ([y, m, day], [h, min, rest @ ..]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    if !(1..=12).contains(m)
        || !(1..=31).contains(day)
        || !(0..24).contains(h)
        || !(0..60).contains(min)
    {
        return None;
    }
    let sec = rest.first().copied().unwrap_or(0);
    let days = crate::servers::http::days_from_civil(*y, *m as u32, *day as u32);
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s))
}

/// A student's questions in Markdown, numbers filled in: the sheet
/// `netgrade homework LAB --student ID` prints.
pub fn sheet(lab: &Lab, variant: &Variant) -> String {
    let mut out = format!("# {}\n\n", lab.title);
    if !lab.description.trim().is_empty() {
        out.push_str(&variant.fill(lab.description.trim()));
        out.push_str("\n\n");
    }
    out.push_str(&maildrop(lab));
    out.push_str(&format!("Variant of `{}`.\n", variant.student));
    for (spec, labels) in labels(lab) {
        let points = crate::outcome::fmt_points(spec.points);
        let unit = spec
            .unit
            .as_deref()
            .map(|u| format!(" (in {u})"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n## {}. {}{unit} — {points} point{}\n\n",
            labels[0],
            variant.fill(&spec.title),
            if spec.points == 1.0 { "" } else { "s" }
        ));
        if let Some(q) = &spec.question {
            out.push_str(variant.fill(q).trim_end());
            out.push('\n');
        }
        for (i, option) in spec.options.iter().enumerate() {
            out.push_str(&format!("\n{}. {}", letter(i), variant.fill(option)));
        }
        if !spec.options.is_empty() {
            out.push('\n');
        }
    }
    out
}

/// The maildrop a lab's POP3 questions refer to: each message's number,
/// size in octets (as LIST gives it) and subject.
fn maildrop(lab: &Lab) -> String {
    let Some(server) = lab
        .servers
        .iter()
        .find(|s| s.kind.value == crate::spec::ServerKind::Pop3)
    else {
        return String::new();
    };
    let messages = server.maildrop_messages(&lab.files);
    let mut out = format!(
        "The POP3 server's maildrop of `{}` (password `{}`):\n\n| message | octets | subject |\n|--:|--:|---|\n",
        server.user.as_deref().unwrap_or_default(),
        server.password.as_deref().unwrap_or_default()
    );
    for (i, m) in messages.iter().enumerate() {
        let text = String::from_utf8_lossy(m);
        let subject = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| l.strip_prefix("Subject:"))
            .unwrap_or_default()
            .trim();
        out.push_str(&format!("| {} | {} | {subject} |\n", i + 1, m.len()));
    }
    out.push('\n');
    out
}

/// `A`, `B`, … for option `i`.
pub fn letter(i: usize) -> char {
    char::from(b'A' + (i % 26) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_read_in_utc() {
        let t = parse_utc("2026-12-10T23:59:00Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_796_947_140);
        assert_eq!(parse_utc("2026-12-10"), parse_utc("2026-12-10T00:00"));
        assert_eq!(parse_utc("2026-13-10"), None);
        assert_eq!(parse_utc("soon"), None);
    }

    #[test]
    fn a_student_is_named_by_the_submission_unless_told() {
        assert_eq!(
            student_of(Path::new("submissions/ada-lovelace/"), None),
            "ada-lovelace"
        );
        assert_eq!(student_of(Path::new("x/ada.yaml"), None), "ada");
        assert_eq!(
            student_of(Path::new("x/ada.yaml"), Some(" s1234 ")),
            "s1234"
        );
    }
}
