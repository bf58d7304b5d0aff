//! Reporters: turn [`RunOutcome`]s into text for people, JSON, JUnit XML and Markdown.
//!
//! Reporters never run anything. Text that may come from a student (evidence, messages,
//! submission names) goes through `clean` first, so it cannot inject terminal escapes or
//! characters that XML forbids.

pub mod autolab;
pub mod classroom;
pub mod console;
pub mod csv;
pub mod gradescope;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod prairielearn;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::outcome::{ExitKind, ProgramSummary, RunOutcome, RunStatus, Status, fmt_points};
use crate::spec::{Dur, trim_float};

/// Longest evidence line shown, in characters, before it is cut with `…`.
const EVIDENCE_CHARS: usize = 200;

/// Writing to a `String` only fails if a `Display` impl fails, which ours never do.
const WRITE_TO_STRING: &str = "writing to a String cannot fail";

/// Writes `contents` to `path` atomically (temp file in the same dir + rename), creating parent dirs.
///
/// Readers see either the old file or the whole new one, never a partial report.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fs::File::create_new(&tmp).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    });
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Whether `c` must not reach a terminal or an XML file as is: control characters other than
/// tab, and the bidirectional formatting characters that can reorder what a reader sees.
fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Replaces unsafe characters (see [`is_unsafe`]) with visible escapes such as `\x1b`, `\n`
/// or `\u{202e}`, so the text stays on one line and shows exactly what was sent.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_ascii() && is_unsafe(c) => {
                write!(out, "\\x{:02x}", c as u32).expect(WRITE_TO_STRING)
            }
            c if is_unsafe(c) => write!(out, "\\u{{{:x}}}", c as u32).expect(WRITE_TO_STRING),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Splits text that may span lines (messages, hints, notes) and [`clean`]s each line.
pub(crate) fn clean_lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.lines().map(clean)
}

/// One evidence line, [`clean`]ed and cut to [`EVIDENCE_CHARS`] characters with `…`.
pub(crate) fn evidence_line(line: &str) -> Cow<'_, str> {
    let cleaned = clean(line);
    match cleaned.char_indices().nth(EVIDENCE_CHARS) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &cleaned[..cut])),
        None => cleaned,
    }
}

/// A submission as a file name: the path as given, without a leading
/// `./` or a trailing `/`, every character but ASCII letters, digits, `-`,
/// `_` and `.` made `_` (`fixtures_udp-pinger_good`); `submission` for the
/// current folder. Names snapshots and a batch's per-run result files.
pub fn file_name_of(shown: &str) -> String {
    let trimmed = shown.trim_start_matches("./").trim_end_matches('/');
    let name: String = trimmed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name == "." {
        "submission".into()
    } else {
        name
    }
}

/// A submission's own name: its last path component (`ada` for
/// `class/ada/`), the folder a roster gives each student. Names CSV rows
/// and JUnit classnames, and orders shards.
pub fn submission_name(submission: &str) -> &str {
    let trimmed = submission.trim_end_matches('/');
    trimmed
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != ".")
        .unwrap_or(trimmed)
}

/// `earned/available`, e.g. `8/10` or `0.5/1`.
pub(crate) fn fraction(earned: f64, available: f64) -> String {
    format!("{}/{}", fmt_points(earned), fmt_points(available))
}

/// Ids of the checks that did not pass (fail, error or skip), in order.
pub(crate) fn lost_ids(out: &RunOutcome) -> Vec<String> {
    out.checks
        .iter()
        .filter(|c| !c.passed())
        .map(|c| match c.status {
            Status::Pending => format!("{} (pending)", c.id),
            _ => c.id.clone(),
        })
        .collect()
}

/// The command as one line: arguments joined with spaces, quoted when they need it.
fn command_line(command: &[String]) -> String {
    let quoted: Vec<Cow<'_, str>> = command
        .iter()
        .map(|arg| {
            if !arg.is_empty()
                && !arg.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c))
            {
                clean(arg)
            } else {
                Cow::Owned(format!("'{}'", clean(&arg.replace('\'', r"'\''"))))
            }
        })
        .collect();
    quoted.join(" ")
}

/// `python3 client.py — exited with status 0 in 2.3 s; left 1 process behind (killed)`.
///
/// Diagnoses are not included; each reporter lists them on lines of their own.
pub(crate) fn program_line(program: &ProgramSummary) -> String {
    let mut line = format!(
        "{} — {}",
        command_line(&program.command),
        clean(&program.exit.describe())
    );
    if !matches!(program.exit, ExitKind::DidNotStart { .. }) {
        write!(line, " in {}", Dur::from_millis(program.duration_ms)).expect(WRITE_TO_STRING);
    }
    match program.leftover_processes {
        0 => {}
        1 => line.push_str("; left 1 process behind (killed)"),
        n => write!(line, "; left {n} processes behind (killed)").expect(WRITE_TO_STRING),
    }
    line
}

/// One line per other instance of a lab of several: its command, where it
/// listened, how it ended and, when it ended by itself, its last stderr line.
pub(crate) fn instance_lines(program: &ProgramSummary) -> Vec<String> {
    program
        .instances
        .iter()
        .map(|i| {
            let listened = match i.listened {
                Some(at) if at.port() == i.port => format!("listened on {at}"),
                Some(at) => format!("listened on {at}, not on port {}", i.port),
                None => format!("never listened on port {}", i.port),
            };
            let mut line = format!(
                "instance {}: {} — {listened}; {}",
                i.instance,
                command_line(&i.command),
                clean(&i.exit.describe())
            );
            let last = i.stderr.lines().map(str::trim).rfind(|l| !l.is_empty());
            if let (false, Some(last)) = (i.exit == ExitKind::Stopped, last) {
                write!(line, " ({})", clean(last)).expect(WRITE_TO_STRING);
            }
            line
        })
        .collect()
}

/// Counts over a batch of runs, for the last line of a grade book.
#[derive(Default)]
pub(crate) struct Totals {
    runs: usize,
    full: usize,
    lost: usize,
    not_graded: usize,
    /// Sum of score / max score over graded runs with points available.
    ratio_sum: f64,
    /// How many runs `ratio_sum` adds up.
    ratios: usize,
}

impl Totals {
    /// Counts `outs`.
    pub(crate) fn of<'a>(outs: impl IntoIterator<Item = &'a RunOutcome>) -> Self {
        let mut totals = Totals::default();
        for out in outs {
            totals.runs += 1;
            match out.status {
                RunStatus::Error => totals.not_graded += 1,
                RunStatus::Graded if out.full_marks() => totals.full += 1,
                RunStatus::Graded => totals.lost += 1,
            }
            if out.status == RunStatus::Graded && out.max_score > 0.0 {
                totals.ratio_sum += out.score / out.max_score;
                totals.ratios += 1;
            }
        }
        totals
    }
}

impl fmt::Display for Totals {
    /// `3 runs: 1 with full marks, 1 with points lost, 1 not graded; mean 72.5%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.runs == 1 { "" } else { "s" };
        write!(
            f,
            "{} run{plural}: {} with full marks, {} with points lost",
            self.runs, self.full, self.lost
        )?;
        if self.not_graded > 0 {
            write!(f, ", {} not graded", self.not_graded)?;
        }
        if self.ratios > 0 {
            let mean = 100.0 * self.ratio_sum / self.ratios as f64;
            write!(f, "; mean {}%", trim_float(mean, 1))?;
        }
        Ok(())
    }
}

/// Hand-made outcomes shared by the reporters' tests.
#[cfg(test)]
pub(crate) fn sample_outcomes() -> Vec<RunOutcome> {
    use crate::outcome::{CheckOutcome, ExitKind, Status, Timing};

    fn check(id: &str, title: &str, status: Status, points: f64, max_points: f64) -> CheckOutcome {
        CheckOutcome {
            id: id.to_string(),
            title: title.to_string(),
            status,
            points,
            max_points,
            message: None,
            evidence: Vec::new(),
            hint: None,
            case: None,
            visibility: crate::outcome::Visibility::Visible,
            fraction: None,
            line: None,
        }
    }
    fn program(exit: ExitKind, duration_ms: u64) -> Option<ProgramSummary> {
        Some(ProgramSummary {
            command: ["python3", "UDPPingerClient.py", "127.0.0.1", "12000"]
                .map(String::from)
                .to_vec(),
            build: None,
            exit,
            duration_ms,
            leftover_processes: 0,
            diagnoses: Vec::new(),
            limits: None,
            stdout: "PING 1 1795258519.7335\nRTT: 0.127264 s\n".into(),
            stdout_truncated: false,
            stderr: String::new(),
            stderr_truncated: false,
            instances: Vec::new(),
        })
    }

    let runs = check(
        "runs",
        "The program exits on its own with status 0",
        Status::Pass,
        1.0,
        1.0,
    );
    let format = check(
        "ping-format",
        "Each ping is `Ping <n> <time>`",
        Status::Pass,
        3.0,
        3.0,
    );
    let mut waits = check(
        "waits-for-timeout",
        "After a lost ping, the client waits about one second",
        Status::Fail,
        0.0,
        2.0,
    );
    waits.message = Some(
        "after ping 3 was lost the next ping came 0.2 s later; expected about 1 s (at least 0.75 s)"
            .to_string(),
    );
    waits.evidence = vec![
        "ping 3 received at 0.312 s, dropped".to_string(),
        "ping 4 received at 0.514 s".to_string(),
    ];
    waits.hint = Some("call clientSocket.settimeout(1) once, before the loop".to_string());
    let mut echo = check(
        "prints-replies",
        "The client prints each reply",
        Status::Fail,
        0.5,
        2.0,
    );
    echo.message = Some("1 of 4 replies was printed as sent".to_string());
    echo.evidence = vec![
        "line 2: \x1b[31mPWNED\x00 | <b>&</b> ```".to_string(),
        format!("line 3: {}", "x".repeat(300)),
    ];
    echo.hint = Some("print the reply exactly as received:\nprint(reply.decode())".to_string());
    let mut rtt = check(
        "reports-rtt",
        "The client reports round-trip times",
        Status::Skip,
        0.0,
        2.0,
    );
    rtt.message = Some("skipped: no reply was printed".to_string());
    let mut server = check(
        "server-up",
        "The echo server answers",
        Status::Error,
        0.0,
        0.0,
    );
    server.message =
        Some("netgrade's server could not bind 127.0.0.1:12000: address in use".to_string());

    let partial = RunOutcome {
        lab: "udp-pinger".to_string(),
        submission: "fixtures/udp-pinger/short-timeout".to_string(),
        status: RunStatus::Graded,
        score: 4.5,
        max_score: 10.0,
        seed: 1,
        lab_digest: "5f1d".to_string(),
        entry: Some("UDPPingerClient.py".to_string()),
        checks: vec![runs.clone(), waits, format.clone(), echo, rtt, server],
        program: program(ExitKind::Exited { code: 0 }, 2300).map(|p| ProgramSummary {
            leftover_processes: 1,
            diagnoses: vec![
                "the program printed a Python warning: ResourceWarning: unclosed socket"
                    .to_string(),
            ],
            ..p
        }),
        notes: vec!["no network namespace: ran on 127.0.0.1 and queued for port 12000".to_string()],
        timing: Timing {
            total_ms: 2912.5,
            program_ms: 2300.0,
            queued_ms: 0.0,
            overhead_ms: 612.5,
            late_ms: 0.0,
        },
        cases: Vec::new(),
        transcript: String::new(),
        raw_transcript: None,
        disturbed: None,
        figures: Vec::new(),
    };
    let full = RunOutcome {
        submission: "fixtures/udp-pinger/good".to_string(),
        score: 4.0,
        max_score: 4.0,
        seed: 7,
        checks: vec![runs, format],
        program: program(ExitKind::Exited { code: 0 }, 10_250),
        notes: Vec::new(),
        timing: Timing {
            total_ms: 10_400.0,
            program_ms: 10_250.0,
            ..Timing::default()
        },
        ..partial.clone()
    };
    let broken = RunOutcome::internal_error(
        "udp-pinger",
        "fixtures/udp-pinger/broken",
        1,
        "could not create a network namespace: permission denied".to_string(),
    );
    vec![partial, full, broken]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_makes_control_characters_visible() {
        assert_eq!(clean("a\tb"), "a\tb");
        assert!(matches!(clean("plain"), Cow::Borrowed("plain")));
        assert_eq!(clean("\x1b[31mred\x00\r\n\x7f"), r"\x1b[31mred\0\r\n\x7f");
        assert_eq!(clean("\u{9b}2J \u{202e}abc"), r"\u{9b}2J \u{202e}abc");
    }

    #[test]
    fn evidence_lines_are_capped() {
        let long = "é".repeat(EVIDENCE_CHARS + 1);
        let line = evidence_line(&long);
        assert_eq!(line.chars().count(), EVIDENCE_CHARS + 1);
        assert!(line.ends_with("é…"));
        assert_eq!(evidence_line(&long[2..]), long[2..]);
    }

    #[test]
    fn commands_are_quoted_only_when_needed() {
        let cmd = ["python3", "my client.py", "", "it's"].map(String::from);
        assert_eq!(command_line(&cmd), r#"python3 'my client.py' '' 'it'\''s'"#);
    }

    #[test]
    fn totals_count_and_average_graded_runs() {
        let totals = Totals::of(&sample_outcomes()).to_string();
        assert_eq!(
            totals,
            "3 runs: 1 with full marks, 1 with points lost, 1 not graded; mean 72.5%"
        );
    }

    #[test]
    fn write_atomic_creates_dirs_and_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/report.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["report.json"]);
    }
}
