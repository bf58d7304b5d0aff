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
use crate::probes;
use crate::sandbox::ports;
use crate::sandbox::{self, NetNs, diagnose::diagnose};
use crate::spec::{Dur, Lab, Role};
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
    /// A student server's port, when netgrade cannot see it (overrides the lab's).
    pub port: Option<u16>,
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
    run_with_session(lab, submission, shown, opts).await.0
}

/// Like [`run_one`], also returning the run's normalized session transcript
/// (what a golden transcript holds).
pub async fn run_with_session(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
) -> (RunOutcome, String) {
    let seed = opts.seed.unwrap_or(lab.seed);
    match grade(lab, submission, shown, opts, seed).await {
        Ok(done) => done,
        Err(e) => (
            RunOutcome::internal_error(&lab.name, shown, seed, format!("{e:#}")),
            String::new(),
        ),
    }
}

async fn grade(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
    seed: u64,
) -> Result<(RunOutcome, String)> {
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
    let netns = if opts.isolation == Isolation::Auto
        && (!lab.servers.is_empty() || lab.program.role == Role::Server)
    {
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
    let needs_network = !lab.servers.is_empty() || lab.program.role == Role::Server;
    if netns.is_none() && needs_network {
        let mut ports: Vec<u16> = lab
            .servers
            .iter()
            .map(|s| s.port)
            .filter(|p| *p != 0)
            .collect();
        ports.extend(lab.servers.iter().filter_map(|s| s.tls_port)); // TLS: implicit-TLS ports
        // Students' servers pick their own ports: on a shared network they take turns.
        if lab.program.role == Role::Server {
            ports.push(0);
        }
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

    // The lab's data: next to a student's server (its web root), and on disk
    // for reference servers that serve it.
    let data_root = if lab.files.0.is_empty() {
        None
    } else {
        let dir = tempfile::Builder::new()
            .prefix("netgrade-data-")
            .tempdir()
            .context("cannot create a directory for the lab's data")?;
        lab.files
            .write_to(dir.path())
            .context("cannot write the lab's data")?;
        Some(dir)
    };
    let cwd = entry
        .as_ref()
        .map(|e| e.dir.clone())
        .unwrap_or_else(|| root.to_path_buf());
    if lab.program.role == Role::Server {
        lab.files
            .write_to(&cwd)
            .context("cannot copy the lab's data next to the program")?;
    }
    // TLS: the run's certificate authority, for the servers and trusted by the program.
    let trust = crate::servers::trust(lab, &mut notes);
    let servers = crate::servers::start(
        lab,
        seed,
        netns.as_deref(),
        data_root.as_ref().map(|d| d.path()),
        trust.as_ref().map(|t| &t.ca),
        &recorder,
    )?;
    notes.extend(servers.notes.iter().cloned()); // TLS: an implicit-TLS port left out
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
        dir: cwd.display().to_string(),
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
            let env: Vec<(String, String)> = entry
                .as_ref()
                .map(|e| language_env(e.language))
                .unwrap_or_else(|| language_env(submission::Language::Python))
                .into_iter()
                .chain(lab.program.env.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect();
            let base = sandbox::Command {
                argv: Vec::new(),
                cwd: cwd.clone(),
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
                    // TLS: the program trusts the run's certificate authority (not the build).
                    env: [&base.env[..], trust.as_ref().map_or(&[], |t| &t.env[..])].concat(),
                    argv: run.clone(),
                    stdin: lab.program.stdin.as_ref().map(|s| s.as_bytes().to_vec()),
                    time_limit: opts.time_limit.unwrap_or(lab.program.time_limit).get(),
                    output_limit: lab.program.output_limit.0,
                    netns: netns.clone(),
                    record_output: true,
                    ..base
                };
                let before = file_stamps(&cwd);
                let done = match lab.program.role {
                    Role::Client => sandbox::run(&cmd, &recorder).await,
                    Role::Server => {
                        let fallback = opts.port.or(lab.program.port);
                        drive_server(lab, &cmd, fallback, netns.as_deref(), &recorder).await
                    }
                };
                program_time += done.duration;
                for (path, bytes) in changed_files(&cwd, &before) {
                    recorder.record(EventKind::FileWritten { path, bytes });
                }
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
    servers.stop(&recorder).await;
    drop(_port_guards);
    drop(data_root);

    // The work directory is gone after the run: show paths relative to it.
    let root_text = root.display().to_string();
    if let Some(p) = &mut program {
        for arg in p.command.iter_mut().chain(p.build.iter_mut().flatten()) {
            *arg = arg.replace(&root_text, ".");
        }
    }
    let mut trace = recorder.snapshot();
    if let Some(t) = &trust {
        t.drop_jvm_notices(&mut trace); // TLS: the JVM's notice of JAVA_TOOL_OPTIONS
    }
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
    let session = transcript::session(lab, &trace);
    let score = checks.iter().map(|c| c.points).sum();
    let max_score = checks.iter().map(|c| c.max_points).sum();
    drop(workdir);
    let total = t0.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let outcome = RunOutcome {
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
    };
    Ok((outcome, session))
}

/// How often netgrade looks for the student's listening socket.
const LISTEN_POLL: Duration = Duration::from_millis(20);

/// Starts a student's server, waits until it listens, runs the lab's probes
/// against it, and stops it. Every step has a deadline.
async fn drive_server(
    lab: &Lab,
    cmd: &sandbox::Command,
    fallback: Option<u16>,
    netns: Option<&NetNs>,
    recorder: &Recorder,
) -> sandbox::Finished {
    let running = match sandbox::spawn(cmd, recorder) {
        Ok(r) => r,
        Err(finished) => return finished,
    };
    let started = Instant::now();
    let deadline = started + lab.program.ready_timeout.get();
    let target = loop {
        let all = ports::listening(&running.processes());
        // Prefer the handout's port when the program listens on several.
        let chosen = all
            .iter()
            .find(|a| Some(a.port()) == fallback)
            .or(all.first())
            .copied();
        if let Some(addr) = chosen {
            let target = ports::connect_addr(addr);
            recorder.record(EventKind::Listening { addr: target, all });
            break Some(target);
        }
        if running.has_exited() || Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(LISTEN_POLL).await;
    };
    // Unseen, but maybe listening where the lab says (another user's process, an odd stack).
    let target = match (target, fallback) {
        (None, Some(port)) if !running.has_exited() => {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            probes::connect(addr, netns, Duration::from_secs(1))
                .await
                .ok()
                .map(|_| {
                    recorder.record(EventKind::Listening { addr, all: vec![] });
                    addr
                })
        }
        (t, _) => t,
    };
    let Some(target) = target else {
        recorder.record(EventKind::NotListening {
            waited: started.elapsed(),
            exited: running.has_exited(),
        });
        return running.stop().await;
    };
    let mut held = Vec::new();
    // The program's time limit bounds the probing too (each probe has its own deadline).
    let stop_at = started + cmd.time_limit;
    for spec in &lab.probes {
        if Instant::now() >= stop_at {
            break;
        }
        let probe = probes::http::Probe {
            name: spec.id.value.clone(),
            bytes: spec.bytes(&target.ip().to_string(), target.port()),
            hold: spec.hold,
            head: spec.is_head(),
            timeout: spec.timeout.get(),
            idle: spec.idle.get(),
            max_bytes: PROBE_RESPONSE_LIMIT,
        };
        if let Some(stream) = probes::http::exchange(target, netns, &probe, recorder).await {
            held.push(stream);
        }
    }
    drop(held);
    // Let the server finish what it prints after the last request ("Ready to
    // serve..." before accept()), so transcripts do not depend on scheduling.
    let settle_until = Instant::now() + OUTPUT_SETTLE_MAX;
    while Instant::now() < settle_until {
        let last = recorder.last_output().unwrap_or_default();
        if recorder.now().saturating_sub(last) >= OUTPUT_QUIET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    running.stop().await
}

/// A server counts as done printing after this long without output …
const OUTPUT_QUIET: Duration = Duration::from_millis(150);
/// … or after this long, whichever comes first.
const OUTPUT_SETTLE_MAX: Duration = Duration::from_secs(1);

/// Most response bytes a probe keeps.
const PROBE_RESPONSE_LIMIT: usize = 4 << 20;

/// Files recorded as written by one program, at most.
const MAX_WRITTEN_FILES: usize = 50;
/// Bytes kept of each written file.
const MAX_WRITTEN_BYTES: u64 = 4 << 20;

type Stamps = HashMap<std::path::PathBuf, (u64, std::time::SystemTime)>;

/// Size and modification time of every file under `dir` (three levels deep).
fn file_stamps(dir: &Path) -> Stamps {
    fn walk(dir: &Path, depth: usize, out: &mut Stamps) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() && depth < 3 {
                walk(&e.path(), depth + 1, out);
            } else if meta.is_file() {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.insert(e.path(), (meta.len(), modified));
            }
        }
    }
    let mut out = Stamps::new();
    walk(dir, 0, &mut out);
    out
}

/// Files under `dir` created or changed since `before`, relative paths in name order.
fn changed_files(dir: &Path, before: &Stamps) -> Vec<(String, Vec<u8>)> {
    let mut changed: Vec<_> = file_stamps(dir)
        .into_iter()
        .filter(|(p, stamp)| before.get(p) != Some(stamp))
        .map(|(p, _)| p)
        .collect();
    changed.sort();
    changed
        .into_iter()
        .take(MAX_WRITTEN_FILES)
        .filter_map(|p| {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(&p)
                .ok()?
                .take(MAX_WRITTEN_BYTES)
                .read_to_end(&mut bytes)
                .ok()?;
            let rel = p.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
            Some((rel, bytes))
        })
        .collect()
}
