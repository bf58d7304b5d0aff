//! One run (a submission × a lab) from start to outcome, and batches of runs.
//!
//! A run copies the submission into a private work directory, finds and
//! builds its entry file, creates a network namespace (or, without one,
//! queues for the lab's fixed ports), starts the reference servers, runs the
//! program under the sandbox's limits, then evaluates the checks over the
//! trace. Whatever goes wrong, a run returns a [`RunOutcome`] that says so.

pub mod submission;
pub mod transcript;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::checks;
use crate::outcome::{ExitKind, ProgramSummary, RunOutcome, RunStatus, Timing};
use crate::sandbox::{self, NetNs, diagnose::diagnose};
use crate::spec::{Dur, Lab};
use crate::trace::{EventKind, Recorder};
use submission::{Placeholders, commands, copy_submission, find_entry, language_env};

/// Time between SIGTERM and SIGKILL when a program overruns.
const GRACE: Duration = Duration::from_millis(500);
/// Build output kept for the report.
const BUILD_OUTPUT_LIMIT: u64 = 16 * 1024;

/// Whether runs get their own network namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// A namespace per run when the OS allows, else the host network with port queueing.
    #[default]
    Auto,
    /// Always the host network (runs sharing a fixed port wait for each other).
    Off,
}

/// Settings that apply to every run of a batch.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Overrides the lab's seed.
    pub seed: Option<u64>,
    /// Overrides how the program is started (placeholders allowed).
    pub cmd: Option<String>,
    /// Overrides the lab's time limit.
    pub time_limit: Option<Dur>,
    /// Network isolation.
    pub isolation: Isolation,
}

/// Per-port locks for runs on the host network.
static PORT_LOCKS: LazyLock<Mutex<HashMap<u16, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn port_lock(port: u16) -> Arc<tokio::sync::Mutex<()>> {
    PORT_LOCKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(port)
        .or_default()
        .clone()
}

/// Grades `submission` (a directory or a single file) on `lab`. Never fails:
/// problems become part of the outcome.
pub async fn run_one(lab: &Lab, submission: &Path, shown: &str, opts: &Options) -> RunOutcome {
    let seed = opts.seed.unwrap_or(lab.seed);
    match grade(lab, submission, shown, opts, seed).await {
        Ok(outcome) => outcome,
        Err(e) => RunOutcome::internal_error(&lab.name, shown, seed, format!("{e:#}")),
    }
}

async fn grade(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
    seed: u64,
) -> Result<RunOutcome> {
    let t0 = Instant::now();
    let recorder = Recorder::new();
    let mut notes = Vec::new();
    let workdir = tempfile::Builder::new()
        .prefix("netgrade-")
        .tempdir()
        .context("cannot create a work directory")?;
    let root = workdir.path();

    let copied = copy_submission(submission, root);
    let entry = copied.and_then(|()| find_entry(root, &lab.program));
    let entry = match entry {
        Ok(e) => Some(e),
        Err(reason) if opts.cmd.is_none() => {
            recorder.record(EventKind::Exited {
                exit: ExitKind::DidNotStart { reason },
            });
            None
        }
        Err(_) => None,
    };
    if let Some(note) = entry.as_ref().and_then(|e| e.note.clone()) {
        notes.push(note);
    }

    // Network: a private namespace per run, or the host network and a queue.
    let mut queued = Duration::ZERO;
    let mut _port_guards = Vec::new();
    let netns = if opts.isolation == Isolation::Auto && !lab.servers.is_empty() {
        match NetNs::new() {
            Ok(ns) => Some(Arc::new(ns)),
            Err(e) => {
                notes.push(format!(
                    "no private network for this run ({e}; network namespaces need root): ran on the host network, and runs using the same port waited for each other"
                ));
                None
            }
        }
    } else {
        None
    };
    if netns.is_none() && !lab.servers.is_empty() {
        let mut ports: Vec<u16> = lab
            .servers
            .iter()
            .map(|s| s.port)
            .filter(|p| *p != 0)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let waited = Instant::now();
        for port in ports {
            _port_guards.push(port_lock(port).lock_owned().await);
        }
        queued = waited.elapsed();
        if queued > Duration::from_millis(50) {
            notes.push(format!(
                "waited {} for the lab's port to be free",
                Dur(queued)
            ));
        }
    }

    let servers = crate::servers::start(lab, seed, netns.as_deref(), &recorder)?;
    let primary = servers.primary();
    let ph = Placeholders {
        host: primary.map(|a| a.ip().to_string()).unwrap_or_default(),
        port: primary.map(|a| a.port().to_string()).unwrap_or_default(),
        entry: entry.as_ref().map(|e| e.file.clone()).unwrap_or_default(),
        stem: entry
            .as_ref()
            .and_then(|e| {
                Path::new(&e.file)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_default(),
    };

    let mut program: Option<ProgramSummary> = None;
    let mut program_time = Duration::ZERO;
    let planned = match (&opts.cmd, &entry) {
        (Some(cmd), _) => submission::split_command(cmd, &ph).map(|run| (None, run)),
        (None, Some(e)) => commands(e, &lab.program, &ph),
        (None, None) => Err(String::new()),
    };
    match planned {
        Err(reason) if !reason.is_empty() => {
            recorder.record(EventKind::Exited {
                exit: ExitKind::DidNotStart { reason },
            });
        }
        Err(_) => {}
        Ok((build, run)) => {
            let cwd = entry
                .as_ref()
                .map(|e| e.dir.clone())
                .unwrap_or_else(|| root.to_path_buf());
            let env: Vec<(String, String)> = entry
                .as_ref()
                .map(|e| language_env(e.language))
                .unwrap_or_else(|| language_env(submission::Language::Python))
                .into_iter()
                .chain(lab.program.env.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect();
            let base = sandbox::Command {
                argv: Vec::new(),
                cwd,
                env,
                stdin: None,
                time_limit: lab.program.build_time_limit.get(),
                grace: GRACE,
                output_limit: BUILD_OUTPUT_LIMIT,
                netns: None,
                record_output: false,
            };
            let mut built = true;
            if let Some(build_cmd) = &build {
                let done = sandbox::run(
                    &sandbox::Command {
                        argv: build_cmd.clone(),
                        ..base.clone()
                    },
                    &recorder,
                )
                .await;
                program_time += done.duration;
                if done.exit != (ExitKind::Exited { code: 0 }) {
                    built = false;
                    let mut output = String::from_utf8_lossy(&done.stderr).into_owned();
                    output.push_str(&String::from_utf8_lossy(&done.stdout));
                    let reason = match &done.exit {
                        ExitKind::DidNotStart { reason } => reason.clone(),
                        other => format!(
                            "the build `{}` failed: it {}",
                            build_cmd.join(" "),
                            other.describe()
                        ),
                    };
                    recorder.record(EventKind::BuildFailed {
                        command: build_cmd.clone(),
                        output: output.clone(),
                    });
                    recorder.record(EventKind::Exited {
                        exit: ExitKind::DidNotStart { reason },
                    });
                    program = Some(ProgramSummary {
                        command: run.clone(),
                        build: Some(build_cmd.clone()),
                        exit: ExitKind::DidNotStart {
                            reason: "build failed".into(),
                        },
                        duration_ms: 0,
                        leftover_processes: 0,
                        diagnoses: diagnose(&output),
                    });
                }
            }
            if built {
                let cmd = sandbox::Command {
                    argv: run.clone(),
                    stdin: lab.program.stdin.as_ref().map(|s| s.as_bytes().to_vec()),
                    time_limit: opts.time_limit.unwrap_or(lab.program.time_limit).get(),
                    output_limit: lab.program.output_limit.0,
                    netns: netns.clone(),
                    record_output: true,
                    ..base
                };
                let done = sandbox::run(&cmd, &recorder).await;
                program_time += done.duration;
                if done.leftovers > 0 {
                    recorder.record(EventKind::Leftovers {
                        count: done.leftovers,
                    });
                }
                program = Some(ProgramSummary {
                    command: run,
                    build,
                    exit: done.exit.clone(),
                    duration_ms: done.duration.as_millis() as u64,
                    leftover_processes: done.leftovers,
                    diagnoses: diagnose(&String::from_utf8_lossy(&done.stderr)),
                });
            }
        }
    }
    drop(servers);
    drop(_port_guards);

    let mut trace = recorder.snapshot();
    trace.replace_in_output(&format!("{}/", root.display()), "");
    if program.is_none()
        && let Some((_, ExitKind::DidNotStart { reason })) = trace.exit()
    {
        program = Some(ProgramSummary {
            command: Vec::new(),
            build: None,
            exit: ExitKind::DidNotStart {
                reason: reason.clone(),
            },
            duration_ms: 0,
            leftover_processes: 0,
            diagnoses: Vec::new(),
        });
    }
    let checks = checks::evaluate(lab, &trace);
    let transcript = transcript::render(
        lab,
        &transcript::Header {
            submission: shown,
            seed,
            command: program
                .as_ref()
                .map(|p| p.command.as_slice())
                .filter(|c| !c.is_empty()),
        },
        &trace,
        &checks,
    );
    let score = checks.iter().map(|c| c.points).sum();
    let max_score = checks.iter().map(|c| c.max_points).sum();
    drop(workdir);
    let total = t0.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(RunOutcome {
        lab: lab.name.clone(),
        submission: shown.to_string(),
        status: RunStatus::Graded,
        score,
        max_score,
        seed,
        checks,
        program,
        notes,
        timing: Timing {
            total_ms: ms(total),
            program_ms: ms(program_time),
            queued_ms: ms(queued),
            overhead_ms: ms(total.saturating_sub(program_time).saturating_sub(queued)),
        },
        transcript,
    })
}
