//! The `netgrade` command line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use netgrade::outcome::{RunOutcome, RunStatus};
use netgrade::report::{self, write_atomic};
use netgrade::run::{self, Isolation, Options};
use netgrade::servers::{self, pinger::PingerConfig};
use netgrade::spec::{self, Dur, Lab, SpecError};
use netgrade::trace::{Dir, EventKind, Recorder};

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
        #[arg(required = true)]
        submissions: Vec<PathBuf>,
        /// How many submissions to grade at once.
        #[arg(short = 'j', long, default_value_t = default_jobs())]
        jobs: usize,
        #[command(flatten)]
        grading: Grading,
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
    /// Run a reference server on its own, printing what it receives and decides.
    Serve {
        #[command(subcommand)]
        server: Serve,
    },
    /// List the built-in labs.
    Labs,
    /// Check lab spec files and report errors with their line and column.
    Validate {
        /// Lab YAML files (or built-in lab names).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print the JSON Schema of lab spec files (for editor completion).
    Schema,
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
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a Markdown summary to FILE (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Write each run's normalized transcript into DIR.
    #[arg(long, value_name = "DIR")]
    snapshots: Option<PathBuf>,
    /// Also write each run's transcript unredacted into the --snapshots DIR,
    /// as NAME.raw.txt beside NAME.txt: the real clock text, ports, RTTs and
    /// paths, every line whole (escaped only to be text).
    #[arg(long, requires = "snapshots")]
    raw_transcripts: bool,
    /// Print only the final grade book, not each run's checks.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Serve {
    /// The lossy UDP pinger: upper-cases and echoes datagrams, drops and delays some.
    UdpPinger {
        /// The lab whose pinger to serve, as that lab grades with it: its
        /// port, drop schedule or loss, delays and seed (the flags below
        /// change them). A built-in lab's name or a lab YAML file.
        #[arg(long, default_value = "udp-pinger")]
        lab: String,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
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
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind (0 picks a free one).
        #[arg(long, default_value_t = 2525)]
        port: u16,
        /// Wait this long before the 220 greeting.
        #[arg(long, default_value = "0ms", value_parser = parse_dur)]
        greeting_delay: Dur,
        /// Answer bare-LF lines with 500 and never end DATA on a bare-LF dot.
        #[arg(long)]
        strict_crlf: bool,
        /// Reject every recipient with 550 (to test a client's error handling).
        #[arg(long)]
        reject_rcpt: bool,
        /// Also serve implicit TLS (SMTPS) on this port, e.g. 465 (0 picks a free one).
        #[arg(long)]
        tls_port: Option<u16>,
        /// Do not offer STARTTLS.
        #[arg(long)]
        no_starttls: bool,
    },
    /// A POP3 server (RFC 1939) for a folder of messages, one per file.
    Pop3 {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind (0 picks a free one).
        #[arg(long, default_value_t = 1110)]
        port: u16,
        /// Folder of messages (RFC 5322, CRLF line endings), in name order.
        #[arg(long)]
        mailbox: PathBuf,
        /// User name.
        #[arg(long, default_value = "alice")]
        user: String,
        /// Password.
        #[arg(long, default_value = "wonderland")]
        password: String,
    },
    /// An HTTP/1.1 server for a folder: persistent connections, conditional GET.
    Http {
        /// The folder to serve.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind (0 picks a free one).
        #[arg(long, default_value_t = 6789)]
        port: u16,
        /// Delay before each response: a fixed `50ms` or a seeded range `20ms..200ms`.
        #[arg(long, default_value = "0ms", value_parser = parse_delay)]
        latency: (Dur, Dur),
        /// Seed for the latency draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
                jobs,
                grading,
            } => grade(&lab, submissions, jobs, grading).await,
            Command::Check { lab, dir, grading } => grade(&lab, vec![dir], 1, grading).await,
            Command::Serve { server } => serve(server).await,
            Command::Labs => labs(),
            Command::Validate { files } => validate(&files),
            Command::Golden {
                lab,
                reference,
                out,
                seed,
            } => golden(&lab, &reference, out, seed).await,
            Command::Schema => {
                let schema = schemars::schema_for!(Lab);
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

fn spec_error(e: &SpecError) -> ExitCode {
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

/// A file-name-safe key for a submission's snapshot.
fn snapshot_name(shown: &str) -> String {
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

async fn grade(lab_arg: &str, submissions: Vec<PathBuf>, jobs: usize, g: Grading) -> ExitCode {
    let lab = match spec::resolve(lab_arg) {
        Ok(lab) => Arc::new(lab),
        Err(e) => return spec_error(&e),
    };
    for s in &submissions {
        if !s.exists() {
            return usage_error(&format!(
                "the submission `{}` does not exist; give a folder or a file",
                s.display()
            ));
        }
    }
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
    netgrade::sandbox::view::hide(out_of_sight(lab_arg, &submissions, &g));
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
        batch,
    });
    let total = submissions.len();
    let progress = (total > 1 && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new(total as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} graded  {elapsed}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });

    let mut results: Vec<Option<RunOutcome>> = vec![None; total];
    let stdout_color =
        anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never;
    let mut write_failed = None;
    let report_one = |i: usize, mut outcome: RunOutcome| {
        if !g.quiet {
            let text = report::console::render_run(&outcome, stdout_color);
            let print = || {
                let _ = write!(anstream::stdout(), "{text}");
                let _ = anstream::stdout().flush();
            };
            match &progress {
                Some(pb) => pb.suspend(print),
                None => print(),
            }
        }
        if let Some(dir) = &g.snapshots {
            let name = snapshot_name(&outcome.submission);
            // The raw transcript is written and not kept.
            let raw = outcome.raw_transcript.take();
            let files = [
                (format!("{name}.txt"), Some(&outcome.transcript)),
                (format!("{name}.raw.txt"), raw.as_ref()),
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
        results[i] = Some(outcome);
        // Each result is on disk as soon as it is known: a crash later loses nothing.
        let done: Vec<RunOutcome> = results.iter().flatten().cloned().collect();
        if let Err(e) = write_reports(&g, &done) {
            write_failed.get_or_insert(e);
        }
    };
    let end = run::batch::grade(
        lab.clone(),
        &submissions,
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
    if let run::batch::End::Stopped { in_flight } = end {
        // A second request ends netgrade at once (its janitor still removes
        // the work folders).
        tokio::spawn(async {
            stop_requested().await;
            std::process::exit(EXIT_INTERRUPTED.into());
        });
        let _ = write!(
            anstream::stdout(),
            "{}",
            report::console::render_gradebook(&outcomes, stdout_color)
        );
        let _ = writeln!(
            anstream::stderr(),
            "netgrade: interrupted: {} of {total} submissions graded (their results are in the reports); {in_flight} run(s) in progress were stopped and cleaned up, {} not started",
            outcomes.len(),
            total - outcomes.len() - in_flight,
        );
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if outcomes.len() > 1 || g.quiet {
        let _ = write!(
            anstream::stdout(),
            "{}",
            report::console::render_gradebook(&outcomes, stdout_color)
        );
    }
    if let Ok(path) = std::env::var("GITHUB_STEP_SUMMARY")
        && !path.is_empty()
    {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(report::markdown::render(&outcomes).as_bytes()));
        if let Err(e) = appended {
            write_failed.get_or_insert(format!(
                "cannot append to $GITHUB_STEP_SUMMARY ({path}): {e}"
            ));
        }
    }
    if let Some(e) = write_failed {
        let _ = writeln!(anstream::stderr(), "netgrade: {e}");
        return ExitCode::from(EXIT_INTERNAL);
    }
    if outcomes.iter().any(|o| o.status == RunStatus::Error) {
        ExitCode::from(EXIT_INTERNAL)
    } else if outcomes.iter().all(RunOutcome::full_marks) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

/// What no run may see: the folders of the lab file, of the submissions and
/// of the reports (a report written straight into `/` or a top-level folder
/// such as `/var`: the file only), and netgrade's own executable.
fn out_of_sight(lab_arg: &str, submissions: &[PathBuf], g: &Grading) -> Vec<PathBuf> {
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
            [&g.json, &g.junit, &g.summary]
                .into_iter()
                .flatten()
                .map(PathBuf::as_path),
        )
        .chain(step_summary.as_deref())
        .map(folder_of)
        .chain(g.snapshots.iter().cloned())
        // netgrade itself: the built-in labs' golden transcripts are in it.
        .chain(std::env::current_exe().ok())
        .collect()
}

fn write_reports(g: &Grading, done: &[RunOutcome]) -> Result<(), String> {
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), String> {
        match path {
            Some(p) => write_atomic(p, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", p.display())),
            None => Ok(()),
        }
    };
    write(&g.json, report::json::render(done))?;
    write(&g.junit, report::junit::render(done))?;
    write(&g.summary, report::markdown::render(done))?;
    Ok(())
}

/// The port and pinger settings of lab `arg`'s first pinger server, as the
/// lab grades with them (its seed included).
fn lab_pinger(arg: &str) -> Result<(u16, PingerConfig), ExitCode> {
    let lab = spec::resolve(arg).map_err(|e| spec_error(&e))?;
    let server = lab
        .servers
        .iter()
        .find(|s| s.kind.value == spec::ServerKind::UdpPinger)
        .ok_or_else(|| {
            usage_error(&format!(
                "the lab `{arg}` has no udp-pinger server; give a lab that has one (--lab udp-pinger)"
            ))
        })?;
    Ok((server.port, servers::pinger_config(server, lab.seed)))
}

/// What a pinger does, for people: `drops datagrams 3, 6, 7, replies after
/// 40 ms–200 ms (seed 1)`.
fn describe_pinger(config: &PingerConfig) -> String {
    let seed = config.seed;
    let losses = if !config.drop.is_empty() {
        let mut drop: Vec<u32> = config.drop.iter().copied().collect();
        drop.sort_unstable();
        let listed: Vec<String> = drop.iter().map(u32::to_string).collect();
        format!("drops datagrams {}", listed.join(", "))
    } else if config.loss > 0.0 {
        format!(
            "loses {:.0}% of datagrams (seed {seed})",
            config.loss * 100.0
        )
    } else {
        "loses no datagram".to_string()
    };
    let (min, max) = (Dur(config.delay_min), Dur(config.delay_max));
    let delays = if min == max {
        format!("replies after {min}")
    } else {
        format!("replies after {min}–{max} (seed {seed})")
    };
    format!("{losses}, {delays}")
}

async fn serve(server: Serve) -> ExitCode {
    let (host, port, config) = match server {
        Serve::UdpPinger {
            lab,
            host,
            port,
            loss,
            drop,
            seed,
            delay,
        } => {
            let (lab_port, mut config) = match lab_pinger(&lab) {
                Ok(found) => found,
                Err(code) => return code,
            };
            if let Some(seed) = seed {
                config.seed = seed;
            }
            if let Some(loss) = loss {
                if !(0.0..=1.0).contains(&loss) {
                    return usage_error(&format!(
                        "--loss {loss} is not a probability; give a number from 0 to 1, e.g. 0.3"
                    ));
                }
                (config.loss, config.drop) = (loss, Default::default());
            }
            if !drop.is_empty() {
                (config.loss, config.drop) = (0.0, drop.iter().copied().collect());
            }
            if let Some((min, max)) = delay {
                (config.delay_min, config.delay_max) = (min.get(), max.get());
            }
            (host, port.unwrap_or(lab_port), config)
        }
        Serve::Http {
            root,
            host,
            port,
            latency,
            seed,
        } => return serve_http(root, host, port, latency, seed).await,
        Serve::Smtp {
            host,
            port,
            greeting_delay,
            strict_crlf,
            reject_rcpt,
            tls_port,
            no_starttls,
        } => {
            let mut config = servers::smtp::SmtpConfig::new("smtp");
            config.greeting_delay = greeting_delay.get();
            config.strict_crlf = strict_crlf;
            config.starttls = !no_starttls;
            if reject_rcpt {
                config.inject.push(servers::smtp::Injection {
                    command: "RCPT".into(),
                    reply: "550 5.1.1 Recipient address rejected: User unknown".into(),
                    times: None,
                });
            }
            let (tls, _trust) = match smtp_tls(&host, tls_port) {
                Ok(tls) => tls,
                Err(code) => return code,
            };
            return serve_session(&host, port, "smtp", |listener, recorder| {
                tokio::spawn(servers::smtp::run(listener, tls, config, recorder))
            })
            .await;
        }
        Serve::Pop3 {
            host,
            port,
            mailbox,
            user,
            password,
        } => {
            let mut names: Vec<PathBuf> = match std::fs::read_dir(&mailbox) {
                Ok(d) => d
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect(),
                Err(e) => {
                    return usage_error(&format!(
                        "cannot read --mailbox {}: {e}; give a folder holding one message per file",
                        mailbox.display()
                    ));
                }
            };
            names.sort();
            let messages: Vec<Vec<u8>> =
                names.iter().filter_map(|p| std::fs::read(p).ok()).collect();
            if messages.is_empty() {
                return usage_error(&format!(
                    "--mailbox {} holds no messages",
                    mailbox.display()
                ));
            }
            println!(
                "maildrop: {} message(s) from {}, user {user}",
                messages.len(),
                mailbox.display()
            );
            let config = servers::pop3::Pop3Config::new("pop3", user, password, messages);
            return serve_session(&host, port, "pop3", |listener, recorder| {
                tokio::spawn(servers::pop3::run(listener, config, recorder))
            })
            .await;
        }
    };
    let addr = match listen_addr(&host, port) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let socket = match servers::bind_udp(addr, None) {
        Ok(s) => s,
        Err(e) => {
            return usage_error(&format!(
                "cannot bind UDP {addr}: {e}; is another server already using the port? pick another with --port"
            ));
        }
    };
    let bound = socket.local_addr().unwrap_or(addr);
    println!(
        "udp-pinger listening on UDP {bound}: {}. Ctrl-C to stop.",
        describe_pinger(&config)
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(TAP_EVENTS);
    let recorder = Recorder::with_tap(tx);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let socket = match servers::udp::UdpServerSocket::from_tokio(socket, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netgrade: cannot set up the pinger's socket: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let tap = recorder.clone();
    let task = tokio::spawn(servers::pinger::run(socket, config, recorder, stopped));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = rx.recv() => {
                let Some(e) = event else { break };
                not_shown(&tap);
                let t = format!("[{:>8.3}s]", e.at.as_secs_f64());
                let line = match e.kind {
                    EventKind::Datagram { dir: Dir::In, peer, index, data, .. } => {
                        format!("{t} #{index:<3} from {peer}  {}", netgrade::checks::quote(&data))
                    }
                    EventKind::Datagram { dir: Dir::Out, peer, index, data, .. } => {
                        format!("{t} #{index:<3} reply to {peer}  {}", netgrade::checks::quote(&data))
                    }
                    EventKind::Dropped { index, .. } => format!("{t} #{index:<3} dropped (no reply)"),
                    EventKind::Delayed { index, delay, .. } => format!("{t} #{index:<3} will reply in {}", Dur(delay)),
                    EventKind::RecordingCapped { limit, .. } => format!("{t} more than {limit} datagrams; no longer printing each"),
                    _ => continue,
                };
                println!("{line}");
            }
        }
    }
    task.abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
    ExitCode::SUCCESS
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

fn validate(files: &[String]) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for f in files {
        let loaded = if Path::new(f).exists() {
            spec::load(Path::new(f))
        } else {
            spec::resolve(f)
        };
        match loaded {
            Ok(lab) => {
                let points: f64 = lab.checks.iter().map(|c| c.points).sum();
                println!(
                    "ok: {f}: lab `{}`, {} checks, {} points",
                    lab.name,
                    lab.checks.len(),
                    netgrade::outcome::fmt_points(points)
                );
            }
            Err(e) => status = spec_error(&e),
        }
    }
    status
}

async fn serve_http(
    root: PathBuf,
    host: String,
    port: u16,
    latency: (Dur, Dur),
    seed: u64,
) -> ExitCode {
    if !root.is_dir() {
        return usage_error(&format!(
            "--root {} is not a folder; give the folder to serve",
            root.display()
        ));
    }
    let config = servers::http::HttpConfig {
        latency_min: latency.0.get(),
        latency_max: latency.1.get(),
        seed,
        // serve prints each event and keeps none: nothing to bound.
        max_recorded_requests: u32::MAX,
        max_recorded_bytes: usize::MAX,
        ..servers::http::HttpConfig::new("http", &root)
    };
    println!("serving {} over HTTP/1.1", root.display());
    serve_session(&host, port, "http", |listener, recorder| {
        tokio::spawn(servers::http::run(listener, config, recorder))
    })
    .await
}

/// Events a `serve` printer may fall behind by before events are dropped.
const TAP_EVENTS: usize = 10_000;

/// Says how many events were not shown because printing fell behind.
fn not_shown(tap: &Recorder) {
    let dropped = tap.take_dropped();
    if dropped > 0 {
        println!("({dropped} events not shown: printing could not keep up)");
    }
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

/// Binds `host:port`, starts a TCP reference server, and prints what it records.
async fn serve_session(
    host: &str,
    port: u16,
    kind: &str,
    start: impl FnOnce(tokio::net::TcpListener, Recorder) -> tokio::task::JoinHandle<()>,
) -> ExitCode {
    let addr = match listen_addr(host, port) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let listener = match servers::bind_tcp(addr, None) {
        Ok(l) => l,
        Err(e) => {
            return usage_error(&format!(
                "cannot bind TCP {addr}: {e}; is another server already using the port? pick another with --port"
            ));
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    println!("{kind} listening on TCP {bound}. Ctrl-C to stop.");
    let (tx, mut rx) = tokio::sync::mpsc::channel(TAP_EVENTS);
    let tap = Recorder::with_tap(tx);
    let task = start(listener, tap.clone());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = rx.recv() => {
                let Some(e) = event else { break };
                not_shown(&tap);
                let t = format!("[{:>8.3}s]", e.at.as_secs_f64());
                let line = match e.kind {
                    EventKind::Line { conn, dir, bytes, .. } => {
                        let who = if dir == Dir::In { "C" } else { "S" };
                        format!("{t} conn {conn} {who}: {}", netgrade::checks::quote(&bytes))
                    }
                    EventKind::Deviation { conn, kind, detail, .. } => format!("{t} conn {conn} !  {kind}: {detail}"),
                    EventKind::Delivered { conn, from, to, data, .. } => format!(
                        "{t} conn {conn} delivered from <{from}> to <{}>, {} bytes",
                        to.join(">, <"),
                        data.len()
                    ),
                    EventKind::Maildrop { conn, updated, deleted, remaining, .. } => format!(
                        "{t} conn {conn} maildrop {}: deleted {deleted:?}, remaining {remaining:?}",
                        if updated { "updated" } else { "unchanged (no QUIT)" }
                    ),
                    EventKind::SessionEnd { conn, how, .. } => format!("{t} conn {conn} end: {how}"),
                    EventKind::TlsStarted { conn, version, sni, implicit, .. } => format!(
                        "{t} conn {conn} TLS started ({version}, {}, SNI {})",
                        if implicit { "implicit" } else { "STARTTLS" },
                        sni.as_deref().unwrap_or("none")
                    ),
                    EventKind::TlsFailed { conn, reason, .. } => format!("{t} conn {conn} TLS failed: {reason}"),
                    EventKind::Authenticated { conn, mechanism, user, encrypted, .. } => format!(
                        "{t} conn {conn} logged in: {mechanism} as {user:?}{}",
                        if encrypted { "" } else { " (without TLS)" }
                    ),
                    EventKind::Request { conn, peer, raw, .. } => {
                        let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
                        format!("{t} conn {conn} from {peer}: {}", netgrade::checks::quote(first))
                    }
                    EventKind::Response { conn, status, body_len, .. } => {
                        format!("{t} conn {conn} <- {status} ({body_len} bytes)")
                    }
                    _ => continue,
                };
                println!("{line}");
            }
        }
    }
    task.abort();
    ExitCode::SUCCESS
}

/// TLS for `serve smtp`: a certificate authority whose certificate file is
/// printed (for a client to trust), and the implicit-TLS listener on
/// `tls_port` if given. The authority's files stay while the returned
/// [`servers::tls::RunTrust`] lives.
fn smtp_tls(
    host: &str,
    tls_port: Option<u16>,
) -> Result<(Option<servers::smtp::Tls>, servers::tls::RunTrust), ExitCode> {
    let trust = servers::tls::RunTrust::new()
        .map_err(|e| usage_error(&format!("cannot make a certificate authority: {e:#}")))?;
    let implicit = match tls_port {
        Some(port) => {
            let addr = listen_addr(host, port)?;
            let listener = servers::bind_tcp(addr, None).map_err(|e| {
                usage_error(&format!(
                    "cannot bind TCP {addr} for implicit TLS: {e}; ports below 1024 need root: pick another with --tls-port"
                ))
            })?;
            let bound = listener.local_addr().unwrap_or(addr);
            println!("smtp listening for implicit TLS (SMTPS) on TCP {bound}.");
            Some(listener)
        }
        None => None,
    };
    let pem = trust.pem_path();
    println!(
        "TLS certificates come from a certificate authority made for this server: trust {} (e.g. SSL_CERT_FILE={} python3 client.py).",
        pem.display(),
        pem.display()
    );
    let ca = trust.ca.clone();
    Ok((Some(servers::smtp::Tls { ca, implicit }), trust))
}

/// The address `--host` and `--port` name, or the usage error that says why not.
fn listen_addr(host: &str, port: u16) -> Result<std::net::SocketAddr, ExitCode> {
    host.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, port))
        .map_err(|_| {
            usage_error(&format!(
                "--host `{host}` is not an IP address; use e.g. 127.0.0.1 or 0.0.0.0"
            ))
        })
}
