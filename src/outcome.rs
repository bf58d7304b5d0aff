//! The outcome model: what a run learned, in the form every reporter reads.
//!
//! A [`RunOutcome`] is produced once per submission × lab. Reporters never run
//! anything; they only turn outcomes into text, JSON, JUnit XML or Markdown.

use serde::{Deserialize, Serialize};

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The check passed: full points.
    Pass,
    /// The check failed: the submission did something wrong.
    Fail,
    /// The check could not be evaluated because netgrade itself failed.
    Error,
    /// The check was not evaluated (for instance the program never started).
    Skip,
    /// A person grades it (a homework's `manual` question): never counted
    /// as passed or failed, and its points are not in the score until then.
    Pending,
}

impl Status {
    /// Lower-case name, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skip => "skip",
            Status::Pending => "pending",
        }
    }
}

/// Who may see a check: the lab's `visibility`, in Gradescope's words.
///
/// Only `visible` checks are named to students before grades are out
/// (`netgrade check`, `--classroom`, `--autolab`, `--student-view`); the
/// others count in their score as one `hidden checks` line. Gradescope's
/// results carry each check's own visibility and Gradescope keeps to it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Students always see it.
    #[default]
    Visible,
    /// Students never see it.
    Hidden,
    /// Students see it after the due date.
    AfterDueDate,
    /// Students see it once the grades are published.
    AfterPublished,
}

impl Visibility {
    /// Whether students see it at once.
    pub fn is_visible(&self) -> bool {
        *self == Visibility::Visible
    }

    /// The name as in the lab and in Gradescope's results.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Visible => "visible",
            Visibility::Hidden => "hidden",
            Visibility::AfterDueDate => "after_due_date",
            Visibility::AfterPublished => "after_published",
        }
    }
}

/// How much of a `partial: true` check was right: `right` of `of` items
/// (answered pings, say), which earns that share of its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fraction {
    /// Items right.
    pub right: u32,
    /// Items judged.
    pub of: u32,
}

impl std::fmt::Display for Fraction {
    /// `5 of 7`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {}", self.right, self.of)
    }
}

/// One graded check of a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// Stable check id from the lab spec, e.g. `ping-format`.
    pub id: String,
    /// Human title from the lab spec.
    pub title: String,
    /// pass / fail / error / skip.
    pub status: Status,
    /// Points earned.
    pub points: f64,
    /// Points available.
    pub max_points: f64,
    /// One-line explanation of the result (what was expected, what was seen).
    /// Present on everything but a plain pass.
    pub message: Option<String>,
    /// Multi-line evidence taken from the trace: datagrams, output lines, timings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The lab's hint for students, shown when the check did not pass.
    pub hint: Option<String>,
    /// In a lab of several cases: the one case this check judges (`case:` in
    /// the lab); absent for a check of every case, whose message names the
    /// case it failed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Who may see it (absent: visible).
    #[serde(default, skip_serializing_if = "Visibility::is_visible")]
    pub visibility: Visibility,
    /// For a `partial: true` check that was partly right: how much was,
    /// which earned that share of its points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<Fraction>,
    /// The line of the entry file that best explains a failure: where a
    /// traceback or a compiler pointed, else the first line the check's
    /// `code` pattern matches (absent when neither is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

impl CheckOutcome {
    /// Whether the check earned all of its points.
    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}

/// How the student's program ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ExitKind {
    /// Exited by itself with this status code.
    Exited {
        /// Exit status.
        code: i32,
    },
    /// Killed by a signal it did not ask for (a crash, e.g. SIGSEGV).
    Signaled {
        /// Signal number.
        signal: i32,
    },
    /// Still running at the time limit; stopped by netgrade.
    TimedOut {
        /// The time limit in milliseconds.
        limit_ms: u64,
    },
    /// Printed more than the output limit; stopped by netgrade.
    OutputLimit {
        /// The limit in bytes.
        limit_bytes: u64,
    },
    /// Could not be started or built at all.
    DidNotStart {
        /// Why.
        reason: String,
    },
    /// A server program that was still running when netgrade stopped it (normal for servers).
    Stopped,
    /// Stopped by one of the run's limits (memory, CPU time, file size).
    LimitExceeded {
        /// Which, e.g. `used more than 1 GiB of memory (the run's limit)`.
        limit: String,
    },
}

impl ExitKind {
    /// Short human description, e.g. "exited with status 1".
    pub fn describe(&self) -> String {
        match self {
            ExitKind::Exited { code } => format!("exited with status {code}"),
            ExitKind::Signaled { signal } => {
                format!("was killed by signal {signal} ({})", signal_name(*signal))
            }
            ExitKind::TimedOut { limit_ms } => {
                format!(
                    "was still running at the time limit ({}) and was stopped",
                    crate::spec::Dur::from_millis(*limit_ms)
                )
            }
            ExitKind::OutputLimit { limit_bytes } => format!(
                "printed more than the output limit ({}) and was stopped",
                human_bytes(*limit_bytes)
            ),
            ExitKind::DidNotStart { reason } => format!("did not start: {reason}"),
            ExitKind::Stopped => "was stopped by netgrade after the checks".to_string(),
            ExitKind::LimitExceeded { limit } => format!("was stopped: it {limit}"),
        }
    }
}

/// Name of a signal number, for messages.
pub fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

/// Formats a byte count as `64 KiB`, `3 MiB`, `1 GiB` or `512 bytes`.
pub fn human_bytes(n: u64) -> String {
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{} GiB", n >> 30)
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

/// What netgrade knows about the student's program in this run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProgramSummary {
    /// The command line that was run (relative to the work directory).
    pub command: Vec<String>,
    /// The build command, when the language needed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Vec<String>>,
    /// How it ended.
    pub exit: ExitKind,
    /// Wall time from spawn to exit, in milliseconds.
    pub duration_ms: u64,
    /// Number of processes left behind by the program and killed by netgrade.
    pub leftover_processes: u32,
    /// Diagnoses of the program's error output (Python 2 syntax, missing
    /// module …); an empty list when there are none.
    pub diagnoses: Vec<String>,
    /// The limits in force, and how they were enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<String>,
    /// What the program wrote on standard output (as UTF-8, invalid bytes
    /// replaced), at most [`OUTPUT_SHOWN`] bytes of it.
    pub stdout: String,
    /// Whether `stdout` is not all the program wrote there: it was cut at
    /// [`OUTPUT_SHOWN`], or bytes were lost at the output limit.
    pub stdout_truncated: bool,
    /// What the program wrote on standard error, as `stdout`.
    pub stderr: String,
    /// Whether `stderr` is not all the program wrote there, as `stdout_truncated`.
    pub stderr_truncated: bool,
    /// The other instances of a lab of several (`program.instances`),
    /// from instance 2 on; the fields above are instance 1's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceSummary>,
}

/// One more instance of the student's server in a lab of several.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceSummary {
    /// Its number, from 2.
    pub instance: u8,
    /// Its command line.
    pub command: Vec<String>,
    /// The port it was told to listen on.
    pub port: u16,
    /// Where it listened; `None` when it listened nowhere in time.
    pub listened: Option<std::net::SocketAddr>,
    /// How it ended ([`ExitKind::Stopped`]: netgrade stopped it after the probes).
    pub exit: ExitKind,
    /// Wall time from spawn to exit, in milliseconds.
    pub duration_ms: u64,
    /// What it wrote on standard output, as [`ProgramSummary::stdout`].
    pub stdout: String,
    /// What it wrote on standard error.
    pub stderr: String,
    /// Whether either stream was cut.
    pub truncated: bool,
}

/// How much of each of the program's streams a report carries.
pub const OUTPUT_SHOWN: usize = 64 * 1024;

/// `bytes` as text for a report, at most [`OUTPUT_SHOWN`] bytes of it (cut at
/// a character's boundary), and whether it was cut.
pub fn shown_output(bytes: &[u8]) -> (String, bool) {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if text.len() <= OUTPUT_SHOWN {
        return (text, false);
    }
    let mut end = OUTPUT_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

impl ProgramSummary {
    /// A program that never started, and why.
    pub fn did_not_start(reason: String) -> Self {
        ProgramSummary {
            command: Vec::new(),
            build: None,
            exit: ExitKind::DidNotStart { reason },
            duration_ms: 0,
            leftover_processes: 0,
            diagnoses: Vec::new(),
            limits: None,
            stdout: String::new(),
            stdout_truncated: false,
            stderr: String::new(),
            stderr_truncated: false,
            instances: Vec::new(),
        }
    }
}

/// Where the time of a run went.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Timing {
    /// Whole run, from planning to the last check, in milliseconds.
    pub total_ms: f64,
    /// The student's program (build + run), in milliseconds.
    pub program_ms: f64,
    /// Waiting for a fixed port shared with other runs (no network namespace).
    pub queued_ms: f64,
    /// total − program − queued: netgrade's own cost.
    pub overhead_ms: f64,
    /// The most netgrade's servers ran behind their schedule while the
    /// program ran (a busy machine); past the lab's tolerance the run is
    /// regraded.
    pub late_ms: f64,
}

/// One case's run, in a lab of several cases.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseRun {
    /// The case's id.
    pub id: String,
    /// The case's title, when it has one.
    pub title: Option<String>,
    /// graded or error.
    pub status: RunStatus,
    /// The program in this case, when one was found.
    pub program: Option<ProgramSummary>,
    /// Notes about this case's run.
    pub notes: Vec<String>,
    /// Where this case's time went.
    pub timing: Timing,
}

/// Overall state of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Checks ran; the score is meaningful.
    Graded,
    /// netgrade failed for this run (internal error); the score is 0 and says nothing.
    Error,
}

/// Everything one run produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Lab name.
    pub lab: String,
    /// Submission as given on the command line.
    pub submission: String,
    /// graded or error.
    pub status: RunStatus,
    /// Points earned.
    pub score: f64,
    /// Points available.
    pub max_score: f64,
    /// Seed used for loss and delay decisions.
    pub seed: u64,
    /// A digest of the lab (its YAML and data files): `--resume` grades a
    /// submission again when its lab changed.
    #[serde(default)]
    pub lab_digest: String,
    /// The graded entry file, relative to the submission
    /// (`UDPPingerClient.py`; empty when the submission is that file);
    /// absent when none was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// One entry per check, in the spec's order.
    pub checks: Vec<CheckOutcome>,
    /// The student's program, when one was found.
    pub program: Option<ProgramSummary>,
    /// Notes about the run itself (isolation, queueing, internal errors);
    /// an empty list when there are none.
    pub notes: Vec<String>,
    /// Where the time went.
    pub timing: Timing,
    /// In a lab of several cases, each case's run (its program, notes and
    /// timing); absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cases: Vec<CaseRun>,
    /// The normalized transcript (what `--snapshots` writes). Not in JSON.
    #[serde(skip)]
    pub transcript: String,
    /// The same transcript unredacted, when asked for (`--raw-transcripts`).
    /// Not in JSON.
    #[serde(skip)]
    pub raw_transcript: Option<String>,
    /// Why the run's evidence cannot be trusted (netgrade could not keep its
    /// own timing), when it cannot: the batch grades it again. Not in JSON.
    #[serde(skip)]
    pub disturbed: Option<String>,
    /// Figures of the run (a homework's plot, as SVG), which the Markdown
    /// report links once written beside it. Not in JSON.
    #[serde(skip)]
    pub figures: Vec<Figure>,
}

/// A figure of a run: its title, its SVG, and the file it was written to
/// (set by whoever writes the Markdown report beside it).
#[derive(Clone, Debug, Default)]
pub struct Figure {
    /// The title, the image's alternative text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
    /// Where it was written, relative to the Markdown report.
    pub file: Option<String>,
}

impl RunOutcome {
    /// An outcome for a run that netgrade could not carry out at all.
    pub fn internal_error(lab: &str, submission: &str, seed: u64, error: String) -> Self {
        RunOutcome {
            lab: lab.to_string(),
            submission: submission.to_string(),
            status: RunStatus::Error,
            score: 0.0,
            max_score: 0.0,
            seed,
            lab_digest: String::new(),
            entry: None,
            checks: Vec::new(),
            program: None,
            notes: vec![format!("internal error: {error}")],
            timing: Timing::default(),
            cases: Vec::new(),
            transcript: String::new(),
            raw_transcript: None,
            disturbed: None,
            figures: Vec::new(),
        }
    }

    /// Whether every check with points passed (optional ones, of 0 points, aside).
    pub fn full_marks(&self) -> bool {
        // An optional check (0 points) is reported, never held against a run.
        self.status == RunStatus::Graded
            && self
                .checks
                .iter()
                .all(|c| c.passed() || c.max_points == 0.0 || c.status == Status::Pending)
    }

    /// What a student may see before grades are out: checks that are not
    /// `visible` become one `hidden-checks` line with their points, named
    /// and explained nowhere. The score stays the same.
    pub fn student_view(&self) -> RunOutcome {
        let (shown, hidden): (Vec<&CheckOutcome>, Vec<&CheckOutcome>) =
            self.checks.iter().partition(|c| c.visibility.is_visible());
        if hidden.is_empty() {
            return self.clone();
        }
        let points: f64 = hidden.iter().map(|c| c.points).sum();
        let max_points: f64 = hidden.iter().map(|c| c.max_points).sum();
        let all = hidden
            .iter()
            .all(|c| c.passed() || c.max_points == 0.0 || c.status == Status::Pending);
        let plural = if hidden.len() == 1 { "check" } else { "checks" };
        let summary = CheckOutcome {
            id: HIDDEN_CHECKS.to_string(),
            title: format!("{} {plural} the course shows after grading", hidden.len()),
            status: if all { Status::Pass } else { Status::Fail },
            points,
            max_points,
            message: (!all).then(|| {
                format!(
                    "{} of {} points in checks the course keeps hidden until grades are out",
                    fmt_points(points),
                    fmt_points(max_points)
                )
            }),
            evidence: Vec::new(),
            hint: None,
            case: None,
            visibility: Visibility::Visible,
            fraction: None,
            line: None,
        };
        let mut view = self.clone();
        view.checks = shown.into_iter().cloned().collect();
        view.checks.push(summary);
        // The transcript lists every check by name.
        view.transcript = String::new();
        view.raw_transcript = None;
        view
    }

    /// The points of the checks a person has still to grade.
    pub fn pending_points(&self) -> f64 {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Pending)
            .map(|c| c.max_points)
            .sum()
    }
}

/// The id of the line that stands for a student's hidden checks.
pub const HIDDEN_CHECKS: &str = "hidden-checks";

/// Formats points without a trailing `.0`: `2`, `0.5`.
pub fn fmt_points(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        let s = format!("{p:.2}");
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_formatted_without_noise() {
        assert_eq!(fmt_points(2.0), "2");
        assert_eq!(fmt_points(0.5), "0.5");
        assert_eq!(fmt_points(1.25), "1.25");
    }

    #[test]
    fn output_is_shown_up_to_64_kib_cut_between_characters() {
        assert_eq!(
            shown_output(b"hi\n\xff"),
            ("hi\n\u{fffd}".to_string(), false)
        );
        let exact = vec![b'a'; OUTPUT_SHOWN];
        assert_eq!(shown_output(&exact), ("a".repeat(OUTPUT_SHOWN), false));
        // 'é' is two bytes: one straddling the cap goes whole.
        let mut long = vec![b'a'; OUTPUT_SHOWN - 1];
        long.extend("é and more".as_bytes());
        let (text, cut) = shown_output(&long);
        assert!(cut);
        assert_eq!(text, "a".repeat(OUTPUT_SHOWN - 1));
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(65536), "64 KiB");
        assert_eq!(human_bytes(3 << 20), "3 MiB");
        assert_eq!(human_bytes(100), "100 bytes");
    }
}
