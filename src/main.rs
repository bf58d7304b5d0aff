//! The `netgrade` command line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use netgrade::outcome::{RunOutcome, RunStatus};
use netgrade::report::{self, write_atomic};
use netgrade::run::{self, Isolation, Options};
use netgrade::servers::{
    self,
    standalone::{self, Config, Standalone},
};
use netgrade::spec::{self, Dur, Lab, ServerKind, SpecErrors};

/// Exit status: some check failed.
const EXIT_FAILED: u8 = 1;
/// Exit status: usage or spec error.
const EXIT_USAGE: u8 = 2;
/// Exit status: netgrade itself failed.
const EXIT_INTERNAL: u8 = 3;
/// Exit status: interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells do).
const EXIT_INTERRUPTED: u8 = 130;

/// Completes on the first SIGINT or SIGTERM.
async fn stop_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

#[derive(Parser)]
#[command(
    name = "netgrade",
    version,
    about = "Grade network-programming labs against reference servers"
)]
#[command(
    after_help = "Exit status: 0 all full marks, 1 some check failed, 2 usage or spec error, 3 internal error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Grade one or many submissions (directories, or single files).
    Run {
        /// A built-in lab name (see `netgrade labs`) or a lab YAML file.
        lab: String,
        /// Submission directories or files.
        #[arg(required_unless_present = "each", conflicts_with = "each")]
        submissions: Vec<PathBuf>,
        /// Grade every subfolder of DIR as one submission (a roster: GitHub
        /// Classroom's assistant and LMS downloads give one folder per student).
        #[arg(long, value_name = "DIR")]
        each: Option<PathBuf>,
        /// Grade shard K of N: every N-th submission by name, from the K-th
        /// (K from 1). Default: the shard of a Kubernetes Indexed Job
        /// (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) or a Slurm job array
        /// (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT); else every submission.
        #[arg(long, value_name = "K/N")]
        shard: Option<netgrade::class::Shard>,
        /// Take over the runs of this JSON report graded with the same lab,
        /// seed and netgrade version, and grade only the others (a batch
        /// interrupted, or a roster that grew). A missing file is no error.
        #[arg(long, value_name = "FILE")]
        resume: Option<PathBuf>,
        /// How many submissions to grade at once.
        #[arg(short = 'j', long, default_value_t = default_jobs())]
        jobs: usize,
        #[command(flatten)]
        grading: Grading,
    },
    /// Write every report of one batch from the JSON reports of its shards
    /// (`run --shard K/N --json shard-K.json`): the same reports one run of
    /// the whole class writes, but for times.
    Merge {
        /// The shards' JSON reports.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[command(flatten)]
        to: ReportFiles,
    },
    /// Grade the program in the current directory (for students).
    Check {
        /// A built-in lab name or a lab YAML file.
        lab: String,
        /// The folder holding your program.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[command(flatten)]
        grading: Grading,
    },
    /// Run a reference server on its own, printing what it receives and
    /// decides: one server (`serve smtp`), or every server of a lab
    /// (`serve --lab FILE`), each as the lab grades with it.
    #[command(args_conflicts_with_subcommands = true)]
    Serve {
        #[command(subcommand)]
        server: Option<Serve>,
        /// Start every server of this lab (a built-in lab's name or a lab
        /// YAML file), each as the lab grades with it.
        #[arg(long, value_name = "NAME|FILE")]
        lab: Option<String>,
    },
    /// List the built-in labs.
    Labs,
    /// Print a student's homework: the questions of a homework lab
    /// (`program.role: answers`) in Markdown, with that student's numbers.
    Homework {
        /// A built-in homework lab's name or a lab YAML file.
        lab: String,
        /// The student's identity: the name their submission will have
        /// (a folder `ID/`, or a file `ID.yaml`), or what `--student` will say.
        #[arg(long, value_name = "ID")]
        student: String,
        /// The lab's seed instead of its own.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Check lab spec files and report errors with their line and column;
    /// warn about what would cost a correct program points; with
    /// --reference, grade the lab's reference solution and fail unless it
    /// gets full marks.
    Validate {
        /// Lab YAML files (or built-in lab names).
        #[arg(required = true)]
        files: Vec<String>,
        /// The lab's reference solution (a folder or a file): it is graded as
        /// `run` grades, and validation fails unless it gets full marks. With
        /// several labs, give one --reference per lab, in the order of the labs.
        #[arg(long, value_name = "DIR|FILE")]
        reference: Vec<PathBuf>,
        /// Fail (exit status 1) when a lab has warnings.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print the JSON Schema of lab spec files (for editor completion).
    Schema,
    /// Build Gradescope's autograder zip for a lab: setup.sh, run_autograder,
    /// the netgrade binary and, for a lab file, the lab and its data.
    Gradescope {
        /// A built-in lab name or a lab YAML file.
        lab: String,
        /// Where to write the zip.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
        /// The netgrade binary to put in the zip (default: this one); it must
        /// run on Gradescope's Ubuntu image (a static build always does).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Make or show BitTorrent metainfo (.torrent) files.
    Torrent {
        #[command(subcommand)]
        action: TorrentCmd,
    },
    /// Run a reference solution and write its session transcript, the golden
    /// transcript a lab's `transcript` check compares with.
    Golden {
        /// A built-in lab name or a lab YAML file.
        lab: String,
        /// The reference solution (a folder or a file).
        reference: PathBuf,
        /// Write here (e.g. the lab's data folder) instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Seed (default: the lab's).
        #[arg(long)]
        seed: Option<u64>,
    },
}

#[derive(Args, Clone)]
struct Grading {
    /// Seed for loss and delay decisions (default: the lab's).
    #[arg(long)]
    seed: Option<u64>,
    /// How to start the program, e.g. "python3 ping.py {host} {port}" or
    /// "go run {entry} {addr}". Placeholders: {host} {port} {addr} (host:port)
    /// {entry} {stem} {dir}; with {entry} or {stem}, the entry file is found
    /// as without --cmd (or any file in the command's language).
    #[arg(long)]
    cmd: Option<String>,
    /// Override the lab's time limit, e.g. 5s.
    #[arg(long, value_parser = parse_dur)]
    time_limit: Option<Dur>,
    /// Run on the host network even where private network namespaces are available.
    #[arg(long)]
    no_isolation: bool,
    /// For server labs: the port the program listens on, when netgrade cannot
    /// see it (default: the lab's).
    #[arg(long)]
    port: Option<u16>,
    #[command(flatten)]
    to: ReportFiles,
    /// GitHub Classroom: write the result for
    /// classroom-resources/autograding-grading-reporter to $GITHUB_OUTPUT
    /// (as `result`, base64-encoded JSON), as students see it.
    #[arg(long)]
    classroom: bool,
    /// Autolab: end standard output with the line `{"scores": {...}}`, each
    /// check's points under its id, as students see them.
    #[arg(long)]
    autolab: bool,
    /// Write every report as students see it before grades are out: checks
    /// the lab does not make `visible` show as one `hidden-checks` line
    /// (`check` always does).
    #[arg(long)]
    student_view: bool,
    /// Set by `check`: a student is reading.
    #[arg(skip)]
    for_students: bool,
    /// Write each run's normalized transcript into DIR.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Also write each run's transcript unredacted into the --snapshots DIR,
    /// as NAME.raw.txt beside NAME.txt: the real clock text, ports, RTTs and
    /// paths, every line whole (escaped only to be text).
    #[arg(long, requires = "snapshots")]
    raw_transcripts: bool,
    /// Homework: grade the answers with this student's variant of the
    /// lab's parameters (default: each submission's name).
    #[arg(long, value_name = "ID")]
    student: Option<String>,
    /// Print only the final grade book, not each run's checks.
    #[arg(short, long)]
    quiet: bool,
}

/// Where reports go; `-` is standard output (then the console report goes
/// to standard error).
#[derive(Args, Clone, Default)]
struct ReportFiles {
    /// Write the JSON report to FILE (`-`: standard output, as for every
    /// report; the console report then goes to standard error).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown summary to FILE (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Write a CSV grade sheet to FILE: a row per submission (name,
    /// submission, status, score, max_score), a column per check.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write Gradescope's autograder results (results.json) to FILE
    /// (several submissions: a FILE-SUBMISSION file each).
    #[arg(long, value_name = "FILE")]
    gradescope: Option<PathBuf>,
    /// Write PrairieLearn's external grader results (results.json) to FILE
    /// (several submissions: a FILE-SUBMISSION file each).
    #[arg(long, value_name = "FILE")]
    prairielearn: Option<PathBuf>,
}

impl ReportFiles {
    /// Every report file given, with the option that names it.
    fn all(&self) -> impl Iterator<Item = (&'static str, &PathBuf)> {
        [
            ("--json", &self.json),
            ("--junit", &self.junit),
            ("--summary", &self.summary),
            ("--csv", &self.csv),
            ("--gradescope", &self.gradescope),
            ("--prairielearn", &self.prairielearn),
        ]
        .into_iter()
        .filter_map(|(flag, path)| path.as_ref().map(|p| (flag, p)))
    }

    /// The reports written a file per run, with their renderers.
    fn per_run(&self) -> impl Iterator<Item = (&PathBuf, fn(&RunOutcome) -> String)> {
        [
            (
                &self.gradescope,
                report::gradescope::render_run as fn(&RunOutcome) -> String,
            ),
            (&self.prairielearn, report::prairielearn::render_run),
        ]
        .into_iter()
        .filter_map(|(path, render)| path.as_ref().map(|p| (p, render)))
    }

    /// Whether a report goes to standard output.
    fn to_stdout(&self) -> bool {
        self.all().any(|(_, p)| is_stdout(p))
    }

    /// More than one report on standard output cannot be told apart.
    fn check(&self) -> Result<(), String> {
        let on_stdout: Vec<&str> = self
            .all()
            .filter(|(_, p)| is_stdout(p))
            .map(|(f, _)| f)
            .collect();
        if on_stdout.len() > 1 {
            return Err(format!(
                "{} all write to standard output (`-`); give all but one of them a file",
                on_stdout.join(" and ")
            ));
        }
        Ok(())
    }
}

/// Whether `path` is `-`, standard output.
fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What `netgrade torrent` does.
#[derive(Subcommand)]
enum TorrentCmd {
    /// Make a .torrent of a file or a folder (a folder makes a multi-file torrent).
    Make {
        /// The file or folder.
        path: PathBuf,
        /// Bytes per piece: a power of two from 16384 to 16777216.
        #[arg(long, default_value_t = 262_144)]
        piece_length: u64,
        /// The tracker's announce URL.
        #[arg(long)]
        announce: String,
        /// Where to write the .torrent.
        #[arg(short, long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a .torrent's name, info_hash, announce URL, pieces and files.
    Show {
        /// The .torrent file.
        file: PathBuf,
    },
}

/// The servers `netgrade serve` runs. Each serves as the lab named by `--lab`
/// grades with it; every flag given replaces the lab's value.
#[derive(Subcommand)]
enum Serve {
    /// The lossy UDP pinger: upper-cases and echoes datagrams, drops and delays some.
    UdpPinger {
        /// The lab whose pinger to serve, as that lab grades with it: its
        /// port, drop schedule or loss, delays and seed (the flags below
        /// change them). A built-in lab's name or a lab YAML file.
        #[arg(long, default_value = "udp-pinger")]
        lab: String,
        /// Address to bind (default: the lab's).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (default: the lab's; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Drop each datagram with this probability (seeded), instead of the lab's losses.
        #[arg(long)]
        loss: Option<f64>,
        /// Drop exactly these datagrams instead, e.g. 3,6,7 (1-based, in arrival order).
        #[arg(long, value_delimiter = ',', conflicts_with = "loss")]
        drop: Vec<u32>,
        /// Seed for the loss and delay draws (default: the lab's).
        #[arg(long)]
        seed: Option<u64>,
        /// Reply delay: a fixed `50ms` or a seeded range `20ms..200ms` (default: the lab's).
        #[arg(long, value_parser = parse_delay)]
        delay: Option<(Dur, Dur)>,
    },
    /// An SMTP server (RFC 5321) that prints each session and delivered message.
    Smtp {
        /// The lab whose SMTP server to serve, as that lab grades with it: its
        /// port, greeting delay, CRLF strictness, STARTTLS, implicit-TLS port
        /// and injected replies (the flags below change them). A built-in
        /// lab's name or a lab YAML file.
        #[arg(long, default_value = "smtp-client")]
        lab: String,
        /// Address to bind (default: the lab's).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (default: the lab's; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Wait this long before the 220 greeting (default: the lab's).
        #[arg(long, value_parser = parse_dur)]
        greeting_delay: Option<Dur>,
        /// Answer bare-LF lines with 500 and never end DATA on a bare-LF dot
        /// (`--strict-crlf=false`: tolerate them; default: the lab's).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        strict_crlf: Option<bool>,
        /// Reject every recipient with 550, to test a client's error handling
        /// (`--reject-rcpt=false`: drop the lab's replies to RCPT; default: the lab's).
        #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
        reject_rcpt: Option<bool>,
        /// Also serve implicit TLS (SMTPS) on this port, e.g. 465 (0 picks a
        /// free one; default: the lab's, left out with a note when it cannot
        /// be bound, as 465 without root).
        #[arg(long)]
        tls_port: Option<u16>,
        /// Do not offer STARTTLS.
        #[arg(long)]
        no_starttls: bool,
    },
    /// A POP3 server (RFC 1939) for a folder of messages, one per file.
    Pop3 {
        /// The lab whose POP3 server to serve, as that lab grades with it: its
        /// port, user, password and maildrop (the flags below change them). A
        /// built-in lab's name or a lab YAML file.
        #[arg(long, default_value = "pop3-download-delete")]
        lab: String,
        /// Address to bind (default: the lab's).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (default: the lab's; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Folder of messages (RFC 5322, CRLF line endings), in name order,
        /// instead of the lab's maildrop.
        #[arg(long)]
        mailbox: Option<PathBuf>,
        /// User name (default: the lab's).
        #[arg(long)]
        user: Option<String>,
        /// Password (default: the lab's).
        #[arg(long)]
        password: Option<String>,
    },
    /// An HTTP/1.1 server for a folder: persistent connections, conditional GET.
    Http {
        /// The lab whose HTTP server to serve, as that lab grades with it: its
        /// port, its data as the root, its latency and seed (the flags below
        /// change them). Without it: the current folder on port 6789, no latency.
        #[arg(long)]
        lab: Option<String>,
        /// The folder to serve (default: the lab's data, or the current folder).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Address to bind (default: the lab's, or 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (default: the lab's, or 6789; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Delay before each response: a fixed `50ms` or a seeded range
        /// `20ms..200ms` (default: the lab's, or none).
        #[arg(long, value_parser = parse_delay)]
        latency: Option<(Dur, Dur)>,
        /// Seed for the latency draws (default: the lab's, or 1).
        #[arg(long)]
        seed: Option<u64>,
        /// Serve each folder of the root as the site of the host it is named
        /// after (`www.example.com/`), chosen by the request's host, and echo
        /// POSTs: the webproxy lab's origin (default: the lab's, or off).
        #[arg(long)]
        sites: bool,
    },
    /// The BitTorrent tracker (HTTP, BEP 3): prints each announce and what it answered.
    Tracker {
        /// The torrents to track (.torrent files); announces for others fail.
        #[arg(long = "torrent", value_name = "FILE", required = true)]
        torrents: Vec<PathBuf>,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind (0 picks a free one).
        #[arg(long, default_value_t = 6969)]
        port: u16,
        /// Seconds clients are told to wait between announces.
        #[arg(long, default_value_t = 60)]
        interval: u32,
    },
    /// Authoritative DNS name servers for zones (RFC 1034, 1035), over UDP and
    /// TCP, alone or as a hierarchy (root, TLD, authoritative): prints each
    /// query and what it answered.
    Dns {
        /// A YAML file of zones: `zones:` as a lab's dns server lists them
        /// (and, optionally, `hierarchy: true` and `faults:`).
        #[arg(long, value_name = "FILE", conflicts_with = "lab")]
        zone: Option<PathBuf>,
        /// The lab whose DNS server to serve, as that lab grades with it: its
        /// zones, port, delays, faults and seed (the flags below change
        /// them). A built-in lab's name or a lab YAML file.
        #[arg(long)]
        lab: Option<String>,
        /// Serve the zones as a hierarchy: each zone at the 127.x.x.x
        /// addresses of its own name servers, and print where the root hints are.
        #[arg(long)]
        hierarchy: bool,
        /// Address to bind (default: the lab's, or 127.0.0.1; a hierarchy
        /// binds its zones' addresses).
        #[arg(long)]
        host: Option<String>,
        /// Port to bind (default: the lab's, or 53; 0 picks a free one).
        #[arg(long)]
        port: Option<u16>,
        /// Delay of answers over UDP: a fixed `50ms` or a seeded range
        /// `20ms..200ms` (default: the lab's, or none).
        #[arg(long, value_parser = parse_delay)]
        delay: Option<(Dur, Dur)>,
        /// Seed for the delay draws (default: the lab's, or 1).
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// Twice the cores: runs mostly wait on their programs' timeouts.
fn default_jobs() -> usize {
    2 * std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn parse_dur(s: &str) -> Result<Dur, String> {
    Dur::parse(s)
}

fn parse_delay(s: &str) -> Result<(Dur, Dur), String> {
    match s.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (Dur::parse(a)?, Dur::parse(b)?);
            if a > b {
                return Err(format!("the range `{s}` goes backwards; write MIN..MAX"));
            }
            Ok((a, b))
        }
        None => Dur::parse(s).map(|d| (d, d)),
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == netgrade::sandbox::helper::SUBCOMMAND)
    {
        // A program's sandbox, set up in a fresh process of its own.
        return ExitCode::from(netgrade::sandbox::helper::main(&args[2..]) as u8);
    }
    let cli = Cli::parse();
    // Programs start through this binary (see `sandbox::helper`); through
    // /proc/self/exe it is this very file even if it is replaced meanwhile.
    netgrade::sandbox::helper::install("/proc/self/exe".into());
    // Runs keep everything in one scratch folder, watched by a janitor that
    // removes it (and stops what still works there) however netgrade ends.
    let _scratch = match &cli.command {
        Command::Run { .. }
        | Command::Check { .. }
        | Command::Golden { .. }
        | Command::Serve { .. } => scratch(),
        Command::Validate { reference, .. } if !reference.is_empty() => scratch(),
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netgrade: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run {
                lab,
                submissions,
                each,
                shard,
                resume,
                jobs,
                grading,
            } => {
                let pick = Pick {
                    submissions,
                    each,
                    shard,
                    resume,
                    roster_check: true,
                };
                grade(&lab, pick, jobs, grading).await
            }
            Command::Check {
                lab,
                dir,
                mut grading,
            } => {
                grading.for_students = true;
                grade(&lab, Pick::one(dir), 1, grading).await
            }
            Command::Merge { reports, to } => merge(&reports, &to),
            Command::Serve { server, lab } => serve(server, lab).await,
            Command::Labs => labs(),
            Command::Homework { lab, student, seed } => homework(&lab, &student, seed),
            Command::Torrent { action } => torrent(action),
            Command::Validate {
                files,
                reference,
                deny_warnings,
            } => validate(&files, &reference, deny_warnings).await,
            Command::Golden {
                lab,
                reference,
                out,
                seed,
            } => golden(&lab, &reference, out, seed).await,
            Command::Gradescope { lab, out, binary } => gradescope_zip(&lab, &out, binary),
            Command::Schema => {
                let schema = spec::schema::lab_schema();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&schema).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
        }
    })
}

/// The batch's scratch folder, with its janitor. Called before any thread
/// starts. Without one (it cannot be made), runs use the system's
/// temporary directory as before.
fn scratch() -> Option<tempfile::TempDir> {
    let base = tempfile::Builder::new()
        .prefix("netgrade-")
        .tempdir()
        .ok()?;
    // Each run's program, under a user of its own, reaches its own folder
    // here by name; none can list the others.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o711)).ok()?;
    // What netgrade processes that are gone left behind.
    netgrade::sandbox::limits::sweep(None);
    // SAFETY: no other thread exists yet: the runtime starts after this.
    match unsafe { netgrade::sandbox::janitor::start(base.path()) } {
        Ok(()) => Some(base),
        Err(_) => None,
    }
}

fn color_stderr() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != anstream::ColorChoice::Never
}

fn spec_error(e: &SpecErrors) -> ExitCode {
    let _ = writeln!(anstream::stderr(), "{}", e.render(color_stderr()));
    ExitCode::from(EXIT_USAGE)
}

fn usage_error(message: &str) -> ExitCode {
    let _ = writeln!(anstream::stderr(), "netgrade: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// A batch that cannot be prepared (the lab's Python packages): nothing is graded.
fn batch_error(e: &anyhow::Error) -> ExitCode {
    let _ = writeln!(anstream::stderr(), "netgrade: {e:#}");
    ExitCode::from(EXIT_INTERNAL)
}

/// Which submissions a batch grades.
struct Pick {
    /// Given on the command line.
    submissions: Vec<PathBuf>,
    /// `--each`: the subfolders of this roster.
    each: Option<PathBuf>,
    /// `--shard`, else the engine's.
    shard: Option<netgrade::class::Shard>,
    /// `--resume`: runs taken over from this report.
    resume: Option<PathBuf>,
    /// Whether a roster given without `--each` is refused (`run`).
    roster_check: bool,
}

impl Pick {
    /// The one submission `check` grades.
    fn one(dir: PathBuf) -> Self {
        Pick {
            submissions: vec![dir],
            each: None,
            shard: None,
            resume: None,
            roster_check: false,
        }
    }
}

/// The submissions to grade, after `--each`, the roster check and the shard.
fn submissions_of(lab: &Lab, pick: &Pick) -> Result<Vec<PathBuf>, String> {
    let all = match &pick.each {
        Some(dir) => netgrade::class::roster(dir)?,
        None => pick.submissions.clone(),
    };
    for s in &all {
        if !s.exists() {
            return Err(format!(
                "the submission `{}` does not exist; give a folder or a file",
                s.display()
            ));
        }
        if !pick.roster_check || pick.each.is_some() {
            continue;
        }
        let roster = run::submission::roster_of(s, &lab.program);
        if roster.len() > 1 {
            let names: Vec<String> = roster
                .iter()
                .take(3)
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            return Err(format!(
                "`{dir}` holds {n} submissions ({names}{more}), not one; grade each of them with `netgrade run {lab} --each {dir}`, or give the folder that holds the one program",
                dir = s.display(),
                n = roster.len(),
                names = names.join(", "),
                more = if roster.len() > 3 { ", …" } else { "" },
                lab = lab.name,
            ));
        }
    }
    let shard = match pick.shard {
        Some(shard) => Some((shard, "--shard")),
        None if pick.roster_check => netgrade::class::shard_from_env(|v| std::env::var(v).ok())?,
        None => None,
    };
    Ok(match shard {
        Some((shard, from)) => {
            let mine = netgrade::class::share(&all, shard);
            let _ = writeln!(
                anstream::stderr(),
                "netgrade: shard {shard} (from {from}): grading {} of {} submissions",
                mine.len(),
                all.len()
            );
            mine
        }
        None => all,
    })
}

/// The runs of `--resume`'s report that need no grading again, by
/// submission, for the submissions of this batch.
fn resumed(
    lab: &Lab,
    seed: u64,
    submissions: &[PathBuf],
    file: Option<&Path>,
) -> Result<Vec<Option<RunOutcome>>, String> {
    let mut taken = vec![None; submissions.len()];
    let Some(file) = file.filter(|f| f.exists()) else {
        return Ok(taken);
    };
    let report = netgrade::class::read_report(file)?;
    let runs = netgrade::class::resumable(&report, &lab.name, &lab.digest, seed);
    for (slot, path) in taken.iter_mut().zip(submissions) {
        let shown = path.display().to_string();
        *slot = runs.iter().find(|r| r.submission == shown).cloned();
    }
    let n = taken.iter().flatten().count();
    let _ = writeln!(
        anstream::stderr(),
        "netgrade: resuming from {}: {n} of {} submissions already graded with this lab, seed and netgrade version",
        file.display(),
        submissions.len()
    );
    Ok(taken)
}

async fn grade(lab_arg: &str, pick: Pick, jobs: usize, g: Grading) -> ExitCode {
    let lab = match spec::resolve(lab_arg) {
        Ok(lab) => Arc::new(lab),
        Err(e) => return spec_error(&e),
    };
    if let Err(e) = g.to.check() {
        return usage_error(&e);
    }
    let submissions = match submissions_of(&lab, &pick) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    if (g.classroom || g.autolab) && submissions.len() != 1 {
        return usage_error(&format!(
            "--classroom and --autolab report one submission, and this batch has {}; grade each on its own",
            submissions.len()
        ));
    }
    let seed = g.seed.unwrap_or(lab.seed);
    let earlier = match resumed(&lab, seed, &submissions, pick.resume.as_deref()) {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    if let Some(cmd) = &g.cmd
        && shlex::split(cmd).is_none_or(|w| w.is_empty())
    {
        return usage_error(&format!(
            "cannot split --cmd `{cmd}` into words: check its quotes"
        ));
    }
    // No run may see the lab's folder, the class's submissions or the reports.
    if let Some(dir) = &g.snapshots {
        let _ = std::fs::create_dir_all(dir);
    }
    netgrade::sandbox::view::hide(out_of_sight(
        lab_arg,
        &submissions,
        &g,
        pick.resume.as_deref(),
    ));
    let batch = match run::prepare_batch(&lab).await {
        Ok(b) => b,
        Err(e) => return batch_error(&e),
    };
    let opts = Arc::new(Options {
        seed: g.seed,
        cmd: g.cmd.clone(),
        time_limit: g.time_limit,
        port: g.port,
        isolation: if g.no_isolation {
            Isolation::Off
        } else {
            Isolation::Auto
        },
        raw_transcripts: g.raw_transcripts,
        student: g.student.clone(),
        batch,
    });
    let total = submissions.len();
    // Runs taken over by --resume are not graded again.
    let pending: Vec<usize> = (0..total).filter(|&i| earlier[i].is_none()).collect();
    let to_grade: Vec<PathBuf> = pending.iter().map(|&i| submissions[i].clone()).collect();
    let progress = (to_grade.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(to_grade.len() as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} graded  {elapsed}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });

    let mut results: Vec<Option<RunOutcome>> = earlier;
    let mut write_failed = None;
    // Runs taken over from --resume get their per-run files as graded ones do.
    let resumed: Vec<RunOutcome> = results.iter().flatten().map(|o| g.view(o)).collect();
    if let Err(e) = write_per_run(&g.to, &resumed, total > 1) {
        write_failed.get_or_insert(e);
    }
    let console = Console::new(&g.to);
    let report_one = |j: usize, mut outcome: RunOutcome| {
        if !g.quiet {
            let text = report::console::render_run(&g.view(&outcome), console.color);
            match &progress {
                Some(pb) => pb.suspend(|| console.print(&text)),
                None => console.print(&text),
            }
        }
        if let Some(dir) = &g.snapshots {
            let name = report::file_name_of(&outcome.submission);
            // The raw transcript is written and not kept.
            let raw = outcome.raw_transcript.take();
            let shown = g.view(&outcome);
            let files = [
                (format!("{name}.txt"), Some(&shown.transcript)),
                (
                    format!("{name}.raw.txt"),
                    raw.as_ref().filter(|_| !g.students_read()),
                ),
            ];
            for (file, text) in files {
                let Some(text) = text else { continue };
                let file = dir.join(file);
                if let Err(e) = write_atomic(&file, text.as_bytes()) {
                    write_failed.get_or_insert(format!("cannot write {}: {e}", file.display()));
                }
            }
        }
        if let Some(pb) = &progress {
            pb.inc(1);
            pb.set_message(outcome.submission.clone());
        }
        if let Err(e) = write_per_run(&g.to, &[g.view(&outcome)], total > 1) {
            write_failed.get_or_insert(e);
        }
        results[pending[j]] = Some(outcome);
        // Each result is on disk as soon as it is known: a crash later loses nothing.
        let done: Vec<RunOutcome> = results.iter().flatten().cloned().collect();
        if let Err(e) = write_reports(&g, &done) {
            write_failed.get_or_insert(e);
        }
    };
    let end = run::batch::grade(
        lab.clone(),
        &to_grade,
        jobs,
        opts,
        report_one,
        stop_requested(),
    )
    .await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let outcomes: Vec<RunOutcome> = results.into_iter().flatten().collect();
    let shown: Vec<RunOutcome> = outcomes.iter().map(|o| g.view(o)).collect();
    if let run::batch::End::Stopped { in_flight } = end {
        // A second request ends netgrade at once (its janitor still removes
        // the work folders).
        tokio::spawn(async {
            stop_requested().await;
            std::process::exit(EXIT_INTERRUPTED.into());
        });
        console.print(&report::console::render_gradebook(&shown, console.color));
        let _ = finish_reports(&g, &outcomes);
        let _ = writeln!(
            anstream::stderr(),
            "netgrade: interrupted: {} of {total} submissions graded (their results are in the reports); {in_flight} run(s) in progress were stopped and cleaned up, {} not started",
            outcomes.len(),
            total - outcomes.len() - in_flight,
        );
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if outcomes.len() > 1 || g.quiet {
        console.print(&report::console::render_gradebook(&shown, console.color));
    }
    if let Err(e) = finish_reports(&g, &outcomes) {
        write_failed.get_or_insert(e);
    }
    if let Some(e) = write_failed {
        let _ = writeln!(anstream::stderr(), "netgrade: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    exit_status(&outcomes)
}

/// 3 when netgrade could not grade a run, else 0 when every run got full
/// marks, else 1.
fn exit_status(outcomes: &[RunOutcome]) -> ExitCode {
    if outcomes.iter().any(|o| o.status == RunStatus::Error) {
        ExitCode::from(EXIT_INTERNAL)
    } else if outcomes.iter().all(RunOutcome::full_marks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// Where the console report goes: standard output, or standard error when
/// a report file is `-`.
struct Console {
    to_stderr: bool,
    color: bool,
}

impl Console {
    fn new(to: &ReportFiles) -> Self {
        let to_stderr = to.to_stdout();
        let color = if to_stderr {
            color_stderr()
        } else {
            anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
        };
        Console { to_stderr, color }
    }

    fn print(&self, text: &str) {
        if self.to_stderr {
            let _ = write!(anstream::stderr(), "{text}");
        } else {
            let _ = write!(anstream::stdout(), "{text}");
            let _ = anstream::stdout().flush();
        }
    }
}

impl Grading {
    /// Whether every report is as students see it.
    fn students_read(&self) -> bool {
        self.for_students || self.student_view
    }

    /// `out` as this batch's reports show it.
    fn view(&self, out: &RunOutcome) -> RunOutcome {
        if self.students_read() {
            out.student_view()
        } else {
            out.clone()
        }
    }
}

/// The reports written once the batch is over: those on standard output,
/// the step summary, GitHub Classroom's result and Autolab's scores line
/// (last, as Autolab reads it).
fn finish_reports(g: &Grading, outcomes: &[RunOutcome]) -> Result<(), String> {
    let shown: Vec<RunOutcome> = outcomes.iter().map(|o| g.view(o)).collect();
    write_files(&g.to, &shown, true)?;
    step_summary(&g.to, &shown)?;
    if g.classroom
        && let Some(out) = outcomes.first()
    {
        let line = report::classroom::output_line(&out.student_view());
        let path = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty());
        match path {
            Some(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| {
                    format!(
                        "cannot append the Classroom result to $GITHUB_OUTPUT ({}): {e}",
                        Path::new(&path).display()
                    )
                })?,
            None => {
                let _ = writeln!(
                    anstream::stderr(),
                    "netgrade: --classroom: $GITHUB_OUTPUT is not set (not in GitHub Actions), so the result goes to standard error:\n{line}"
                );
            }
        }
    }
    if g.autolab
        && let Some(out) = outcomes.first()
    {
        let _ = anstream::stdout().flush();
        print!("{}", report::autolab::scores_line(&out.student_view()));
    }
    Ok(())
}

/// Appends the Markdown summary to `$GITHUB_STEP_SUMMARY`, trimmed under
/// GitHub's 1 MiB with what is already there counted.
fn step_summary(to: &ReportFiles, shown: &[RunOutcome]) -> Result<(), String> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let path = PathBuf::from(path);
    let used = std::fs::metadata(&path).map_or(0, |m| m.len() as usize);
    let full = match to
        .all()
        .find(|(flag, p)| matches!(*flag, "--summary" | "--json") && !is_stdout(p))
    {
        Some((_, p)) => format!("`{}` (keep it as the job's artifact)", p.display()),
        None => {
            "the reports `--summary FILE` or `--json FILE` write (keep them as the job's artifact)"
                .to_string()
        }
    };
    let limit = report::markdown::STEP_SUMMARY_LIMIT.saturating_sub(used);
    let text = report::markdown::render_within(shown, limit, &full);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            format!(
                "cannot append to $GITHUB_STEP_SUMMARY ({}): {e}",
                path.display()
            )
        })
}

/// What no run may see: the folders of the lab file, of the submissions, of
/// the report resumed from and of the reports (a report written straight into `/` or a top-level folder
/// such as `/var`: the file only), and netgrade's own executable.
fn out_of_sight(
    lab_arg: &str,
    submissions: &[PathBuf],
    g: &Grading,
    resumed: Option<&Path>,
) -> Vec<PathBuf> {
    let folder_of = |p: &Path| {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        match p.parent() {
            Some(parent) if parent.parent().is_some_and(|pp| pp.parent().is_some()) => {
                parent.to_path_buf()
            }
            _ => p,
        }
    };
    let lab = Path::new(lab_arg);
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from);
    lab.is_file()
        .then_some(lab)
        .into_iter()
        .chain(submissions.iter().map(PathBuf::as_path))
        .chain(
            g.to.all()
                .map(|(_, p)| p.as_path())
                .filter(|p| !is_stdout(p)),
        )
        .chain(step_summary.as_deref())
        // The report a batch resumes from holds the class's grades.
        .chain(resumed)
        .map(folder_of)
        .chain(g.snapshots.iter().cloned())
        // netgrade itself: the built-in labs' golden transcripts are in it.
        .chain(std::env::current_exe().ok())
        .collect()
}

fn write_reports(g: &Grading, done: &[RunOutcome]) -> Result<(), String> {
    let shown: Vec<RunOutcome> = done.iter().map(|o| g.view(o)).collect();
    write_files(&g.to, &shown, false)
}

/// Writes every report of `to` that goes to a file (`stdout: false`), or
/// the one that goes to standard output (`stdout: true`).
fn write_files(to: &ReportFiles, done: &[RunOutcome], stdout: bool) -> Result<(), String> {
    let write = |path: &Option<PathBuf>, text: &dyn Fn() -> Result<String, String>| match path {
        Some(p) if is_stdout(p) != stdout => Ok(()),
        Some(p) if stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text()?.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| format!("cannot write a report to standard output: {e}"))
        }
        Some(p) => write_atomic(p, text()?.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", p.display())),
        None => Ok(()),
    };
    write(&to.json, &|| Ok(report::json::render(done)))?;
    write(&to.junit, &|| Ok(report::junit::render(done)))?;
    write(&to.csv, &|| Ok(report::csv::render(done)))?;
    // Gradescope's and PrairieLearn's files are a run's each, written once
    // (`write_per_run`); on standard output they follow one another.
    for (path, render_run) in to.per_run() {
        if is_stdout(path) {
            let path = Some(path.clone());
            write(&path, &|| Ok(done.iter().map(render_run).collect()))?;
        }
    }
    write(&to.summary, &|| match &to.summary {
        Some(path) if !is_stdout(path) => Ok(report::markdown::render(&with_figures(path, done)?)),
        _ => Ok(report::markdown::render(done)),
    })?;
    Ok(())
}

/// Writes the Gradescope and PrairieLearn files of `runs`: a results.json
/// per run, written once when the run is graded (a batch of `several`:
/// a `FILE-SUBMISSION` file each).
fn write_per_run(to: &ReportFiles, runs: &[RunOutcome], several: bool) -> Result<(), String> {
    for (path, render_run) in to.per_run().filter(|(p, _)| !is_stdout(p)) {
        report::gradescope::write_each(path, runs, several, render_run)?;
    }
    Ok(())
}

/// `netgrade merge`: the shards' JSON reports read back, checked to belong
/// together, and every report written as one run of the class would.
fn merge(files: &[PathBuf], to: &ReportFiles) -> ExitCode {
    if let Err(e) = to.check() {
        return usage_error(&e);
    }
    let mut reports = Vec::with_capacity(files.len());
    for file in files {
        match netgrade::class::read_report(file) {
            Ok(r) => reports.push((file.clone(), r)),
            Err(e) => return usage_error(&e),
        }
    }
    let runs = match netgrade::class::merge(&reports) {
        Ok(runs) => runs,
        Err(e) => return usage_error(&e),
    };
    let written = write_files(to, &runs, false)
        .and_then(|()| write_per_run(to, &runs, runs.len() > 1))
        .and_then(|()| write_files(to, &runs, true))
        .and_then(|()| step_summary(to, &runs));
    if let Err(e) = written {
        let _ = writeln!(anstream::stderr(), "netgrade: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    let console = Console::new(to);
    console.print(&report::console::render_gradebook(&runs, console.color));
    exit_status(&runs)
}

/// The runs with their figures (a homework's plot) written beside the
/// Markdown report `path`, as `REPORT-RUN-FIGURE.svg`, for it to link.
fn with_figures(path: &Path, done: &[RunOutcome]) -> Result<Vec<RunOutcome>, String> {
    let stem = path
        .file_stem()
        .map_or_else(|| "summary".into(), |s| s.to_string_lossy().into_owned());
    let mut runs = done.to_vec();
    for (i, run) in runs.iter_mut().enumerate() {
        for (j, figure) in run.figures.iter_mut().enumerate() {
            let name = format!("{stem}-{}-{}.svg", i + 1, j + 1);
            let file = path.with_file_name(&name);
            write_atomic(&file, figure.svg.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            figure.file = Some(name);
        }
    }
    Ok(runs)
}

/// Lab `arg` (a built-in lab's name or a file), which must have a server of
/// `kind`; `example` names a lab that has one.
fn lab_with(arg: &str, kind: ServerKind, example: &str) -> Result<Lab, ExitCode> {
    let lab = spec::resolve(arg).map_err(|e| spec_error(&e))?;
    if !lab.servers.iter().any(|s| s.kind.value == kind) {
        return Err(usage_error(&format!(
            "the lab `{arg}` has no {} server; give a lab that has one (--lab {example})",
            kind.name()
        )));
    }
    Ok(lab)
}

/// Where `lab`'s data is written out for its HTTP server: `staged`, made on
/// first use.
fn staged_root(lab: &Lab, staged: &mut Option<tempfile::TempDir>) -> Result<PathBuf, ExitCode> {
    if staged.is_none() {
        let dir = standalone::stage_data(lab).map_err(|e| {
            eprintln!("netgrade: cannot write the lab's data for its HTTP server: {e}");
            ExitCode::from(EXIT_INTERNAL)
        })?;
        *staged = Some(dir);
    }
    Ok(staged
        .as_ref()
        .map(|d| d.path().to_path_buf())
        .unwrap_or_default())
}

/// The first server of `kind` in `lab`, as the lab grades with it. An HTTP
/// server's root is the lab's data, written out to `staged` (kept alive by
/// the caller), unless `root` replaces it.
fn lab_server(
    lab: &Lab,
    kind: ServerKind,
    root: Option<&Path>,
    staged: &mut Option<tempfile::TempDir>,
) -> Result<Standalone, ExitCode> {
    let Some(spec) = lab.servers.iter().find(|s| s.kind.value == kind) else {
        return Err(usage_error(&format!(
            "the lab `{}` has no {} server",
            lab.name,
            kind.name()
        )));
    };
    let root = match root {
        Some(root) => root.to_path_buf(),
        None if kind == ServerKind::Http => staged_root(lab, staged)?,
        None => PathBuf::new(),
    };
    Ok(Standalone::from_spec(lab, spec, &root))
}

/// The messages of a `--mailbox` folder, one per file, in name order.
fn read_mailbox(mailbox: &Path) -> Result<Vec<Vec<u8>>, ExitCode> {
    let mut names: Vec<PathBuf> = match std::fs::read_dir(mailbox) {
        Ok(d) => d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            return Err(usage_error(&format!(
                "cannot read --mailbox {}: {e}; give a folder holding one message per file",
                mailbox.display()
            )));
        }
    };
    names.sort();
    let messages: Vec<Vec<u8>> = names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if messages.is_empty() {
        return Err(usage_error(&format!(
            "--mailbox {} holds no messages",
            mailbox.display()
        )));
    }
    Ok(messages)
}

/// The servers `netgrade serve` runs: every server of `--lab` as it grades,
/// or one server (of its lab, or configured by flags) with the flags applied.
fn serve_plan(
    server: Option<Serve>,
    lab: Option<String>,
    staged: &mut Option<tempfile::TempDir>,
) -> Result<Vec<Standalone>, ExitCode> {
    let Some(server) = server else {
        let Some(arg) = lab else {
            return Err(usage_error(
                "name a server (udp-pinger, smtp, pop3, http, dns) or a lab whose servers to start (--lab NAME|FILE)",
            ));
        };
        let lab = spec::resolve(&arg).map_err(|e| spec_error(&e))?;
        if lab.servers.is_empty() {
            return Err(usage_error(&format!(
                "the lab `{arg}` has no servers: its students write the server, and netgrade is its client; `netgrade serve http --root DIR` serves a folder to compare with"
            )));
        }
        let mut servers = Vec::new();
        for spec in &lab.servers {
            let root = match spec.kind.value {
                ServerKind::Http => staged_root(&lab, staged)?,
                _ => PathBuf::new(),
            };
            servers.push(Standalone::from_spec(&lab, spec, &root));
        }
        return Ok(servers);
    };
    let served = match server {
        Serve::UdpPinger {
            lab,
            host,
            port,
            loss,
            drop,
            seed,
            delay,
        } => {
            let lab = lab_with(&lab, ServerKind::UdpPinger, "udp-pinger")?;
            let mut served = lab_server(&lab, ServerKind::UdpPinger, None, staged)?;
            let Config::Pinger(config) = &mut served.config else {
                unreachable!("a pinger's config")
            };
            if let Some(seed) = seed {
                config.seed = seed;
            }
            if let Some(loss) = loss {
                if !(0.0..=1.0).contains(&loss) {
                    return Err(usage_error(&format!(
                        "--loss {loss} is not a probability; give a number from 0 to 1, e.g. 0.3"
                    )));
                }
                (config.loss, config.drop) = (loss, Default::default());
            }
            if !drop.is_empty() {
                (config.loss, config.drop) = (0.0, drop.iter().copied().collect());
            }
            if let Some((min, max)) = delay {
                (config.delay_min, config.delay_max) = (min.get(), max.get());
            }
            (served, host, port)
        }
        Serve::Smtp {
            lab,
            host,
            port,
            greeting_delay,
            strict_crlf,
            reject_rcpt,
            tls_port,
            no_starttls,
        } => {
            let lab = lab_with(&lab, ServerKind::Smtp, "smtp-client")?;
            let mut served = lab_server(&lab, ServerKind::Smtp, None, staged)?;
            let Config::Smtp {
                config,
                tls_port: lab_tls_port,
                tls_port_given,
            } = &mut served.config
            else {
                unreachable!("an SMTP server's config")
            };
            if let Some(delay) = greeting_delay {
                config.greeting_delay = delay.get();
            }
            if let Some(strict) = strict_crlf {
                config.strict_crlf = strict;
            }
            if no_starttls {
                config.starttls = false;
            }
            if let Some(reject) = reject_rcpt {
                config
                    .inject
                    .retain(|i| !i.command.eq_ignore_ascii_case("RCPT"));
                if reject {
                    config.inject.push(servers::smtp::Injection {
                        command: "RCPT".into(),
                        reply: "550 5.1.1 Recipient address rejected: User unknown".into(),
                        times: None,
                    });
                }
            }
            if let Some(p) = tls_port {
                (*lab_tls_port, *tls_port_given) = (Some(p), true);
            }
            (served, host, port)
        }
        Serve::Pop3 {
            lab,
            host,
            port,
            mailbox,
            user,
            password,
        } => {
            let lab = lab_with(&lab, ServerKind::Pop3, "pop3-download-delete")?;
            let mut served = lab_server(&lab, ServerKind::Pop3, None, staged)?;
            let Config::Pop3 { config, source } = &mut served.config else {
                unreachable!("a POP3 server's config")
            };
            if let Some(mailbox) = mailbox {
                config.messages = read_mailbox(&mailbox)?;
                *source = format!(
                    "{} message(s) from {}",
                    config.messages.len(),
                    mailbox.display()
                );
            }
            if let Some(user) = user {
                config.user = user;
            }
            if let Some(password) = password {
                config.password = password;
            }
            (served, host, port)
        }
        Serve::Http {
            lab,
            root,
            host,
            port,
            latency,
            seed,
            sites,
        } => {
            if let Some(root) = &root
                && !root.is_dir()
            {
                return Err(usage_error(&format!(
                    "--root {} is not a folder; give the folder to serve",
                    root.display()
                )));
            }
            let mut served = match lab {
                Some(lab) => {
                    let lab = lab_with(&lab, ServerKind::Http, "http-client")?;
                    lab_server(&lab, ServerKind::Http, root.as_deref(), staged)?
                }
                // No lab: a folder on the handout's port, at once.
                None => Standalone {
                    name: "http".into(),
                    host: "127.0.0.1".into(),
                    port: 6789,
                    config: Config::Http {
                        config: servers::http::HttpConfig {
                            seed: 1,
                            ..servers::http::HttpConfig::new(
                                "http",
                                root.clone().unwrap_or_else(|| PathBuf::from(".")),
                            )
                        },
                        source: String::new(),
                    },
                },
            };
            let Config::Http { config, source } = &mut served.config else {
                unreachable!("an HTTP server's config")
            };
            if let Some(root) = root {
                *source = root.display().to_string();
                config.root = root;
            } else if source.is_empty() {
                *source = config.root.display().to_string();
            }
            if let Some((min, max)) = latency {
                (config.latency_min, config.latency_max) = (min.get(), max.get());
            }
            if let Some(seed) = seed {
                config.seed = seed;
            }
            config.sites |= sites;
            (served, host, port)
        }
        Serve::Tracker { .. } => unreachable!("serve() runs the tracker itself"),
        Serve::Dns {
            zone,
            lab,
            hierarchy,
            host,
            port,
            delay,
            seed,
        } => {
            let mut served = dns_server(zone.as_deref(), lab.as_deref(), hierarchy)?;
            let Config::Dns { config, .. } = &mut served.config else {
                unreachable!("a DNS server's config")
            };
            if let Some((min, max)) = delay {
                (config.delay_min, config.delay_max) = (min.get(), max.get());
            }
            if let Some(seed) = seed {
                config.seed = seed;
            }
            (served, host, port)
        }
    };
    let (mut served, host, port) = served;
    if let Some(host) = host {
        served.host = host;
    }
    if let Some(port) = port {
        served.port = port;
    }
    Ok(vec![served])
}

/// The DNS server of `serve dns`: the zones of a zone file, or a lab's DNS
/// server as it grades; `hierarchy` serves them as a hierarchy.
fn dns_server(
    zone: Option<&Path>,
    lab: Option<&str>,
    hierarchy: bool,
) -> Result<Standalone, ExitCode> {
    use servers::dns;
    let (mut served, zones, in_hierarchy) = match (zone, lab) {
        (Some(path), _) => {
            let file = spec::load_zone_file(path).map_err(|e| spec_error(&e))?;
            let config = dns::DnsConfig {
                faults: dns::Faults::from_spec(file.faults.as_ref()),
                ..dns::DnsConfig::new("dns", dns::Zones::default())
            };
            let served = Standalone {
                name: "dns".into(),
                host: "127.0.0.1".into(),
                port: 53,
                config: Config::Dns {
                    config,
                    source: path.display().to_string(),
                },
            };
            (served, file.zones, file.hierarchy == Some(true))
        }
        (None, Some(arg)) => {
            let lab = lab_with(arg, ServerKind::Dns, "a lab with a `kind: dns` server")?;
            let served = lab_server(&lab, ServerKind::Dns, None, &mut None)?;
            let spec = lab
                .servers
                .iter()
                .find(|s| s.kind.value == ServerKind::Dns)
                .expect("lab_with found one");
            let zones = spec.zones.clone().unwrap_or_default();
            (served, zones, spec.hierarchy == Some(true))
        }
        (None, None) => {
            return Err(usage_error(
                "give the zones to serve: --zone FILE (a YAML file with `zones:`, as a lab's dns server lists them) or --lab NAME|FILE",
            ));
        }
    };
    let Config::Dns { config, .. } = &mut served.config else {
        unreachable!("a DNS server's config")
    };
    if zone.is_some() || hierarchy {
        // Checked as the file or lab said; a hierarchy asked for here is checked now.
        let (built, issues) = dns::zone::build(&zones, hierarchy || in_hierarchy);
        if !issues.is_empty() {
            let all: Vec<String> = issues
                .iter()
                .map(|i| format!("{} ({})", i.message, i.help))
                .collect();
            return Err(usage_error(&format!(
                "these zones cannot be served as a hierarchy: {}",
                all.join("; ")
            )));
        }
        config.zones = Arc::new(built);
    }
    Ok(served)
}

async fn serve(server: Option<Serve>, lab: Option<String>) -> ExitCode {
    if let Some(Serve::Tracker {
        torrents,
        host,
        port,
        interval,
    }) = server
    {
        return serve_tracker(&torrents, &host, port, interval).await;
    }
    if server.is_none()
        && let Some(arg) = &lab
    {
        let lab = match spec::resolve(arg) {
            Ok(lab) => lab,
            Err(e) => return spec_error(&e),
        };
        if lab
            .servers
            .iter()
            .any(|s| matches!(s.kind.value, ServerKind::Tracker | ServerKind::Peer))
        {
            return serve_swarm(&lab).await;
        }
    }
    let named = server.is_none();
    // The lab's data for an HTTP server, kept while it serves.
    let mut staged = None;
    let servers = match serve_plan(server, lab, &mut staged) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match standalone::serve(servers, named).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(standalone::Failure::Usage(message)) => usage_error(&message),
        Err(standalone::Failure::Internal(message)) => {
            eprintln!("netgrade: {message}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

/// `netgrade serve tracker`: the tracker of these torrents until SIGINT or
/// SIGTERM, each announce printed.
async fn serve_tracker(torrents: &[PathBuf], host: &str, port: u16, interval: u32) -> ExitCode {
    use netgrade::servers::tracker::{self, Tracker};
    let mut hashes = Vec::new();
    for path in torrents {
        match netgrade::torrent::Metainfo::read(path) {
            Ok(m) => hashes.push((m.info_hash, m.info.name)),
            Err(e) => return usage_error(&format!("{e:#}")),
        }
    }
    let listener = match tokio::net::TcpListener::bind((host, port)).await {
        Ok(l) => l,
        Err(e) => return usage_error(&format!("cannot bind {host}:{port}: {e}")),
    };
    let bound = listener.local_addr().ok();
    let at = bound.map_or_else(|| format!("{host}:{port}"), |a| a.to_string());
    // BEP 15 on the same port number over UDP.
    let udp = match bound {
        Some(a) => tokio::net::UdpSocket::bind(a).await,
        None => Err(std::io::Error::other("no TCP address")),
    };
    let names: Vec<String> = hashes.iter().map(|(h, n)| format!("{n} {h}")).collect();
    println!(
        "tracker listening on TCP {at}: announce URL http://{at}/announce, interval {interval} s, torrents: {}.",
        names.join(", ")
    );
    match &udp {
        Ok(_) => println!("and on UDP {at} (BEP 15): announce URL udp://{at}"),
        Err(e) => println!("no UDP tracker: cannot bind UDP {at}: {e}"),
    }
    let state = std::sync::Arc::new(std::sync::Mutex::new(Tracker::new(
        hashes.into_iter().map(|(h, _)| h),
        interval,
    )));
    let print = std::sync::Arc::new(|rec: tracker::AnnounceRecord| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{rec}");
        let _ = out.flush();
    });
    let udp_served = async {
        match udp {
            // Connection ids are the SHA-1 of this secret and the client's address.
            Ok(socket) => {
                let secret = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    ^ u64::from(std::process::id());
                tracker::udp::serve(socket, state.clone(), secret, print.clone()).await
            }
            Err(_) => std::future::pending().await,
        }
    };
    let served = tracker::serve(listener, state.clone(), print.clone());
    tokio::select! {
        r = served => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("netgrade: tracker: {e}");
                ExitCode::from(EXIT_INTERNAL)
            }
        },
        r = udp_served => match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("netgrade: UDP tracker: {e}");
                ExitCode::from(EXIT_INTERNAL)
            }
        },
        () = stop_requested() => ExitCode::SUCCESS,
    }
}

/// `netgrade serve --lab` of a BitTorrent lab: its tracker and peers as the
/// lab grades (host network, the lab's seed), its torrents written to the
/// current folder; prints each announce and each peer's messages until
/// SIGINT or SIGTERM.
async fn serve_swarm(lab: &Lab) -> ExitCode {
    use netgrade::trace::{EventKind, Recorder};
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let recorder = Recorder::with_tap(tx);
    let running = match servers::start(lab, lab.seed, None, None, None, &recorder) {
        Ok(r) => r,
        Err(e) => return usage_error(&format!("{e:#}")),
    };
    for (name, bytes) in &running.files {
        if let Err(e) = std::fs::write(name, bytes) {
            return usage_error(&format!("cannot write {name} here: {e}"));
        }
        println!("wrote {name}");
    }
    for ((name, at), spec) in running.addrs.iter().zip(&lab.servers) {
        println!("{name}: {} on TCP {at}", spec.kind.value.name());
    }
    let _ = std::io::stdout().flush();
    let print = async {
        while let Some(e) = rx.recv().await {
            let line = match e.kind {
                EventKind::Announce { server, record } => format!("{server}: {record}"),
                EventKind::PeerMessage {
                    server,
                    conn,
                    dir,
                    name,
                    block,
                    ..
                } => format!(
                    "{server}: {}",
                    servers::peer::message_line(conn, dir, &name, block)
                ),
                EventKind::Deviation {
                    server,
                    conn,
                    kind,
                    detail,
                } => format!("{server}: conn {conn} !! {kind}: {detail}"),
                _ => continue,
            };
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    };
    tokio::select! {
        () = print => {}
        () = stop_requested() => {}
    }
    drop(running);
    ExitCode::SUCCESS
}

/// `netgrade torrent make|show`: prints the torrent made or read.
fn torrent(action: TorrentCmd) -> ExitCode {
    use netgrade::torrent::{Metainfo, make};
    let made = match action {
        TorrentCmd::Make {
            path,
            piece_length,
            announce,
            out,
        } => make(&path, piece_length, &announce).and_then(|m| m.write(&out).map(|()| m)),
        TorrentCmd::Show { file } => Metainfo::read(&file),
    };
    match made {
        Ok(m) => {
            print!("{}", m.describe());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("netgrade: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn labs() -> ExitCode {
    for name in spec::builtin_names() {
        match spec::load_builtin(name) {
            Some(Ok(lab)) => {
                let points: f64 = lab.checks.iter().map(|c| c.points).sum();
                println!(
                    "{:<21} {} ({} checks, {} points)",
                    lab.name,
                    lab.title,
                    lab.checks.len(),
                    netgrade::outcome::fmt_points(points)
                );
            }
            Some(Err(e)) => return spec_error(&e),
            None => {}
        }
    }
    ExitCode::SUCCESS
}

/// `netgrade homework`: a student's questions, numbers filled in.
fn homework(lab: &str, student: &str, seed: Option<u64>) -> ExitCode {
    let lab = match spec::resolve(lab) {
        Ok(lab) => lab,
        Err(e) => return spec_error(&e),
    };
    if lab.program.role != spec::Role::Answers {
        return usage_error(&format!(
            "lab `{}` is not a homework (its program's role is not `answers`); `netgrade labs` lists the labs",
            lab.name
        ));
    }
    let variant = netgrade::homework::variant_of(&lab, seed.unwrap_or(lab.seed), student);
    print!("{}", netgrade::homework::sheet(&lab, &variant));
    ExitCode::SUCCESS
}

/// `netgrade validate`: each lab's spec, its warnings, and (with
/// `references`, one per lab in order) the grade of its reference solution,
/// which must be full marks. The exit status is the worst of the labs'.
async fn validate(files: &[String], references: &[PathBuf], deny_warnings: bool) -> ExitCode {
    if !references.is_empty() && references.len() != files.len() {
        return usage_error(&format!(
            "{} --reference for {} lab(s): give one reference solution per lab, in the order of the labs",
            references.len(),
            files.len()
        ));
    }
    for r in references {
        if !r.exists() {
            return usage_error(&format!(
                "the reference solution `{}` does not exist; give a folder or a file",
                r.display()
            ));
        }
    }
    let mut worst = 0u8;
    for (i, f) in files.iter().enumerate() {
        let loaded = if Path::new(f).exists() {
            spec::load(Path::new(f))
        } else {
            spec::resolve(f)
        };
        let lab = match loaded {
            Ok(lab) => lab,
            Err(e) => {
                spec_error(&e);
                worst = worst.max(EXIT_USAGE);
                continue;
            }
        };
        let warnings = spec::lint::warnings(&lab);
        let source = spec::source_text(f).unwrap_or_default();
        for w in &warnings {
            let _ = writeln!(
                anstream::stderr(),
                "{}",
                w.render(f, &source, color_stderr())
            );
        }
        let points: f64 = lab.checks.iter().map(|c| c.points).sum();
        let points = netgrade::outcome::fmt_points(points);
        let summary = format!(
            "{f}: lab `{}`, {} checks, {points} points",
            lab.name,
            lab.checks.len()
        );
        if deny_warnings && !warnings.is_empty() {
            let _ = writeln!(
                anstream::stderr(),
                "error: {summary}: {} warning(s), and --deny-warnings makes them errors",
                warnings.len()
            );
            worst = worst.max(EXIT_FAILED);
            continue;
        }
        let Some(reference) = references.get(i) else {
            println!("ok: {summary}");
            continue;
        };
        match grade_reference(lab, reference).await {
            Ok(outcome) if outcome.full_marks() => println!(
                "ok: {summary}; the reference solution gets {}/{points}",
                netgrade::outcome::fmt_points(outcome.score)
            ),
            Ok(outcome) if outcome.status == RunStatus::Error => {
                let _ = writeln!(
                    anstream::stderr(),
                    "error: {f}: the reference solution {} could not be graded: {}",
                    reference.display(),
                    outcome.notes.join("; ")
                );
                worst = worst.max(EXIT_INTERNAL);
            }
            Ok(outcome) => {
                // The whole report first: the evidence of each lost point.
                let _ = write!(
                    anstream::stdout(),
                    "{}",
                    report::console::render_run(&outcome, false)
                );
                let _ = writeln!(
                    anstream::stderr(),
                    "{}",
                    reference_failed(f, reference, &outcome, !warnings.is_empty())
                );
                worst = worst.max(EXIT_FAILED);
            }
            Err(code) => return code,
        }
    }
    ExitCode::from(worst)
}

/// Grades `reference` on `lab` as `run` grades a submission (a run whose
/// timing netgrade could not keep is graded again).
async fn grade_reference(lab: Lab, reference: &Path) -> Result<RunOutcome, ExitCode> {
    let lab = Arc::new(lab);
    let batch = run::prepare_batch(&lab)
        .await
        .map_err(|e| batch_error(&e))?;
    let opts = Arc::new(Options {
        batch,
        ..Options::default()
    });
    let mut graded = None;
    let end = run::batch::grade(
        lab,
        &[reference.to_path_buf()],
        1,
        opts,
        |_, outcome| graded = Some(outcome),
        stop_requested(),
    )
    .await;
    match (end, graded) {
        (run::batch::End::Completed, Some(outcome)) => Ok(outcome),
        _ => Err(ExitCode::from(EXIT_INTERRUPTED)),
    }
}

/// Why a lab fails its reference solution: each check that lost points and
/// what it said, and what to do.
fn reference_failed(file: &str, reference: &Path, outcome: &RunOutcome, warned: bool) -> String {
    let mut text = format!(
        "error: {file}: the reference solution {} got {}/{} on lab `{}`",
        reference.display(),
        netgrade::outcome::fmt_points(outcome.score),
        netgrade::outcome::fmt_points(outcome.max_score),
        outcome.lab
    );
    for c in outcome.checks.iter().filter(|c| !c.passed()) {
        let lost = c.max_points - c.points;
        let lost = format!(
            "{} point{}",
            netgrade::outcome::fmt_points(lost),
            if lost == 1.0 { "" } else { "s" }
        );
        text.push_str(&format!(
            "\n  `{}` lost {lost} ({}): {}",
            c.id,
            c.status.as_str(),
            c.message.as_deref().unwrap_or("no message")
        ));
    }
    text.push_str(
        "\n   = help: a lab must award full marks to its reference solution: fix the lab or the reference",
    );
    if warned {
        text.push_str(" (the warnings above may say why)");
    }
    text
}

async fn golden(
    lab_arg: &str,
    reference: &Path,
    out: Option<PathBuf>,
    seed: Option<u64>,
) -> ExitCode {
    let lab = match spec::resolve(lab_arg) {
        Ok(lab) => lab,
        Err(e) => return spec_error(&e),
    };
    if !reference.exists() {
        return usage_error(&format!(
            "the reference solution `{}` does not exist",
            reference.display()
        ));
    }
    let batch = match run::prepare_batch(&lab).await {
        Ok(b) => b,
        Err(e) => return batch_error(&e),
    };
    let opts = Options {
        seed,
        batch,
        ..Options::default()
    };
    let shown = reference.display().to_string();
    let (outcome, session) = run::run_with_session(&lab, reference, &shown, &opts).await;
    if outcome.status == RunStatus::Error {
        let _ = writeln!(
            anstream::stderr(),
            "netgrade: the reference solution could not be run: {}",
            outcome.notes.join("; ")
        );
        return ExitCode::from(EXIT_INTERNAL);
    }
    // Checks other than `transcript` must pass: a golden transcript comes from a correct run.
    let failed: Vec<&str> = outcome
        .checks
        .iter()
        .filter(|c| c.status != netgrade::outcome::Status::Pass && c.id != "transcript")
        .map(|c| c.id.as_str())
        .collect();
    if !failed.is_empty() {
        let _ = write!(
            anstream::stdout(),
            "{}",
            report::console::render_run(&outcome, false)
        );
        return usage_error(&format!(
            "the reference solution fails {}; fix it before making a golden transcript from it",
            failed.join(", ")
        ));
    }
    match out {
        Some(path) => match write_atomic(&path, session.as_bytes()) {
            Ok(()) => {
                println!(
                    "wrote {} ({} lines)",
                    path.display(),
                    session.lines().count()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = writeln!(
                    anstream::stderr(),
                    "netgrade: cannot write {}: {e}",
                    path.display()
                );
                ExitCode::from(EXIT_INTERNAL)
            }
        },
        None => {
            print!("{session}");
            ExitCode::SUCCESS
        }
    }
}

/// `netgrade gradescope`: writes the lab's autograder zip to `out`.
fn gradescope_zip(lab: &str, out: &Path, binary: Option<PathBuf>) -> ExitCode {
    let binary = binary.unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    let built = netgrade::autograder::build(lab, &binary).and_then(|a| a.write_zip(out));
    match built {
        Ok(()) => {
            println!(
                "wrote {}: upload it as the assignment's autograder (Configure Autograder → Zip file upload)",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(&e),
    }
}
