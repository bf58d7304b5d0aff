//! Lab specs: the YAML an instructor writes, its validation, and the built-in labs.
//!
//! A lab names its reference servers ([`ServerSpec`]), how to find and run the
//! submission ([`ProgramSpec`]), its checks ([`CheckSpec`]) and how transcripts
//! are normalized ([`TranscriptSpec`]). Parsing rejects unknown fields; every
//! error carries the file, line and column and is rendered as a snippet.

mod dur;
mod error;
mod load;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use dur::{Dur, Size, trim_float};
pub use error::SpecError;
pub use load::{BUILTIN, builtin_names, load, load_builtin, load_str, resolve};

/// A lab: one assignment, as a YAML file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// Short name, used on the command line and in reports, e.g. `udp-pinger`.
    pub name: String,
    /// One-line title for people.
    pub title: String,
    /// Longer description (shown by `netgrade labs`).
    #[serde(default)]
    pub description: String,
    /// Default seed for loss and delay decisions; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Reference servers that netgrade starts for the run.
    #[serde(default)]
    pub servers: Vec<ServerSpec>,
    /// How to find, build and run the student's program.
    pub program: ProgramSpec,
    /// The checks, in report order.
    pub checks: Vec<CheckSpec>,
    /// How transcripts (snapshots) are normalized.
    #[serde(default)]
    pub transcript: TranscriptSpec,
}

fn default_seed() -> u64 {
    1
}

/// A reference server started for each run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// Name used in placeholders and transcripts, e.g. `pinger`.
    pub name: String,
    /// Which server: `udp-pinger`.
    #[schemars(with = "ServerKind")]
    pub kind: Spanned<ServerKind>,
    /// Address to bind. Default `127.0.0.1`.
    #[serde(default = "default_host")]
    pub host: String,
    /// Port to bind. With network isolation every run can use the handout's fixed port.
    pub port: u16,
    /// udp-pinger: drop exactly these datagrams (1-based, in order of arrival).
    #[serde(default)]
    pub drop: Option<Vec<u32>>,
    /// udp-pinger: drop each datagram with this probability (seeded), when `drop` is not given.
    #[serde(default)]
    pub loss: Option<f64>,
    /// udp-pinger: the delay before each reply, drawn uniformly (seeded) from this range.
    #[serde(default)]
    pub delay: Option<DelayRange>,
}

fn default_host() -> String {
    "127.0.0.1".to_string()
}

/// The kinds of reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// The lossy UDP pinger: upper-cases and echoes datagrams, drops and delays some.
    UdpPinger,
}

/// A range of delays; `min == max` gives a fixed delay.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DelayRange {
    /// Shortest delay.
    pub min: Dur,
    /// Longest delay.
    pub max: Dur,
}

/// How to find and run the submission.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Entry-file candidates, tried in order; globs like `*.py` allowed.
    pub entry: Vec<String>,
    /// When a glob matches several files, prefer those containing this text (e.g. `SOCK_DGRAM`).
    #[serde(default)]
    pub contains: Option<String>,
    /// Arguments appended to the language's run command. Placeholders:
    /// `{host}`, `{port}` (the first server), `{entry}`, `{stem}`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Full command instead of the language preset (same placeholders), e.g. `python3 {entry}`.
    #[serde(default)]
    pub command: Option<String>,
    /// Build command instead of the language preset's (Java, C).
    #[serde(default)]
    pub build: Option<String>,
    /// Text given on standard input (default: none, stdin is empty).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Wall-clock limit for the program; it is stopped (whole process group) after it.
    #[serde(default = "default_time_limit")]
    pub time_limit: Dur,
    /// Wall-clock limit for the build step.
    #[serde(default = "default_build_limit")]
    pub build_time_limit: Dur,
    /// Cap on stdout and stderr together; a program printing more is stopped.
    #[serde(default = "default_output_limit")]
    pub output_limit: Size,
}

fn default_time_limit() -> Dur {
    Dur::from_secs(20)
}
fn default_build_limit() -> Dur {
    Dur::from_secs(60)
}
fn default_output_limit() -> Size {
    Size(64 * 1024)
}

/// One check: what it looks for, what it is worth, and what to tell a student.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Stable id used in every report, e.g. `ping-format`.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// The check kind; defaults to the id (see the README's check vocabulary).
    #[serde(default)]
    #[schemars(with = "Option<CheckKind>")]
    pub kind: Option<Spanned<CheckKind>>,
    /// One-line title.
    pub title: String,
    /// Points for a pass.
    pub points: f64,
    /// Advice shown to students when the check does not pass.
    #[serde(default)]
    pub hint: Option<String>,
    /// ping-count, ping-format, reports-stats: how many pings the handout asks for (default 10).
    #[serde(default)]
    pub count: Option<u32>,
    /// ping-format: the first sequence number (default 1).
    #[serde(default)]
    pub first_seq: Option<u32>,
    /// waits-for-timeout: shortest acceptable wait after a lost ping (default 0.75s).
    #[serde(default)]
    pub min_wait: Option<Dur>,
    /// waits-for-timeout: longest acceptable wait after a lost ping (default 3s).
    #[serde(default)]
    pub max_wait: Option<Dur>,
    /// reports-rtt, reports-stats: how far above the server-side RTT a reported value may be (default 100ms).
    #[serde(default)]
    pub tolerance: Option<Dur>,
    /// reports-timeouts: regex for a timeout line (default: "request timed out" in any case).
    #[serde(default)]
    pub pattern: Option<String>,
    /// runs: the exit status expected (default 0).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl CheckSpec {
    /// The kind of check, from `kind` or else from the id.
    pub fn kind(&self) -> Option<CheckKind> {
        match &self.kind {
            Some(k) => Some(k.value),
            None => CheckKind::from_id(&self.id.value),
        }
    }
}

/// The vocabulary of check kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The program exits on its own, with the expected status, within the time limit.
    Runs,
    /// Exactly `count` pings reach the server.
    PingCount,
    /// Each ping is `Ping <seq> <time>`, sequence `first_seq`.. in order.
    PingFormat,
    /// After a dropped ping the client waits about one second, no less, and does not hang.
    WaitsForTimeout,
    /// A "Request timed out" line for each dropped ping.
    ReportsTimeouts,
    /// The server's reply is printed for each answered ping.
    PrintsReplies,
    /// An RTT for each answered ping, matching the server-side RTT.
    ReportsRtt,
    /// Minimum, maximum and average RTT and the loss rate match what happened.
    ReportsStats,
}

impl CheckKind {
    /// All kinds, in documentation order.
    pub const ALL: [CheckKind; 8] = [
        CheckKind::Runs,
        CheckKind::PingCount,
        CheckKind::PingFormat,
        CheckKind::WaitsForTimeout,
        CheckKind::ReportsTimeouts,
        CheckKind::PrintsReplies,
        CheckKind::ReportsRtt,
        CheckKind::ReportsStats,
    ];

    /// The kebab-case name used in YAML.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Runs => "runs",
            CheckKind::PingCount => "ping-count",
            CheckKind::PingFormat => "ping-format",
            CheckKind::WaitsForTimeout => "waits-for-timeout",
            CheckKind::ReportsTimeouts => "reports-timeouts",
            CheckKind::PrintsReplies => "prints-replies",
            CheckKind::ReportsRtt => "reports-rtt",
            CheckKind::ReportsStats => "reports-stats",
        }
    }

    /// The kind whose name is `id`, if any.
    pub fn from_id(id: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.name() == id)
    }

    /// The optional parameters this kind reads.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            CheckKind::Runs => &["exit_code"],
            CheckKind::PingCount => &["count"],
            CheckKind::PingFormat => &["count", "first_seq"],
            CheckKind::WaitsForTimeout => &["min_wait", "max_wait"],
            CheckKind::ReportsTimeouts => &["pattern"],
            CheckKind::PrintsReplies => &[],
            CheckKind::ReportsRtt => &["tolerance"],
            CheckKind::ReportsStats => &["count", "tolerance"],
        }
    }

    /// Whether the check reads the traffic of a udp-pinger server.
    pub fn needs_pinger(self) -> bool {
        !matches!(self, CheckKind::Runs)
    }
}

/// How transcripts are normalized so that repeated runs compare equal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptSpec {
    /// Replacements applied, in order, to every datagram and output line.
    #[serde(default = "default_redactions")]
    pub redact: Vec<Redaction>,
}

impl Default for TranscriptSpec {
    fn default() -> Self {
        TranscriptSpec {
            redact: default_redactions(),
        }
    }
}

/// One normalization rule: every match of `pattern` becomes `replace`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// A regular expression (Rust `regex` syntax).
    pub pattern: String,
    /// Its replacement, e.g. `<time>`.
    pub replace: String,
}

fn default_redactions() -> Vec<Redaction> {
    vec![
        Redaction {
            pattern: r"(?i)\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d+ \d\d:\d\d:\d\d \d{4}\b".into(),
            replace: "<date>".into(),
        },
        Redaction {
            pattern: r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?".into(),
            replace: "<date>".into(),
        },
        Redaction {
            pattern: r"\d+\.\d+(e-?\d+)?".into(),
            replace: "<num>".into(),
        },
        Redaction {
            pattern: r"\b\d{10,}\b".into(),
            replace: "<num>".into(),
        },
    ]
}
