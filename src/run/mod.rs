//! One run (a submission × a lab) from start to outcome.
//!
//! A run is a short pipeline of named phases over a [`Plan`]:
//!
//! ```text
//! Plan ─▶ workspace  (copy the submission, find its entry, stage the lab's data)
//!      ─▶ network    (a private namespace where every address is local, or
//!                     the host network and a port queue)
//!      ─▶ servers    (the lab's reference servers, inside the namespace)
//!      ─▶ capture    (steering of hard-coded hosts and ports, the program's
//!                     resolver, the traffic watcher)
//!      ─▶ program    (build once; run the client, or start the server and probe it)
//!      ─▶ stop       (servers drain in order; the namespace goes)
//!      ─▶ evaluate   (checks over the trace) ─▶ RunOutcome
//! ```
//!
//! Each phase is a function of its own module. A phase that fails records why
//! in the trace and the run goes on to `evaluate`, so whatever goes wrong, a
//! run returns a [`RunOutcome`] that says so.

pub mod batch;
mod capture;
mod cases;
mod confine;
mod evaluate;
pub mod locate;
mod network;
mod prepare;
mod probing;
mod program;
mod pyenv;
mod roles;
pub mod submission;
pub mod transcript;
mod workspace;

pub use prepare::{BatchEnv, prepare_batch};
pub use pyenv::PythonEnv;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::outcome::RunOutcome;
use crate::rt::blocking;
use crate::spec::{Dur, Lab, Role};
use crate::trace::Recorder;

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
    /// Also render each run's transcript raw, unredacted ([`RunOutcome::raw_transcript`]).
    pub raw_transcripts: bool,
    /// Homework: the student whose variant grades the answers (default:
    /// the submission's name).
    pub student: Option<String>,
    /// What the batch prepared for its runs ([`prepare_batch`]).
    pub batch: BatchEnv,
}

/// What a run will do, decided from the lab, the submission and the options
/// before anything starts.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The lab.
    pub lab: &'a Lab,
    /// The submission: a directory or a single file.
    pub submission: &'a Path,
    /// How the submission is named in reports.
    pub shown: &'a str,
    /// Batch-wide settings.
    pub opts: &'a Options,
    /// The seed of every loss and delay decision.
    pub seed: u64,
    /// Whether the run needs a network at all (servers, or a student's server).
    pub needs_network: bool,
    /// The program's wall-clock limit.
    pub time_limit: Dur,
    /// Whether traffic for ports no server uses goes to the lab's server for
    /// that protocol (inside a namespace).
    pub redirect_ports: bool,
}

impl<'a> Plan<'a> {
    /// The plan for grading `submission` on `lab`.
    pub fn new(lab: &'a Lab, submission: &'a Path, shown: &'a str, opts: &'a Options) -> Self {
        Plan {
            lab,
            submission,
            shown,
            opts,
            seed: opts.seed.unwrap_or(lab.seed),
            needs_network: !lab.servers.is_empty() || lab.program.role == Role::Server,
            time_limit: opts.time_limit.unwrap_or(lab.program.time_limit),
            redirect_ports: lab
                .capture
                .redirect_ports
                .unwrap_or(lab.program.role == Role::Client),
        }
    }

    /// Whether the program is a server that netgrade probes.
    pub fn is_server(&self) -> bool {
        self.lab.program.role == Role::Server
    }
}

/// Grades `submission` (a directory or a single file) on `lab`. Never fails:
/// problems become part of the outcome.
pub async fn run_one(lab: &Lab, submission: &Path, shown: &str, opts: &Options) -> RunOutcome {
    run_with_session(lab, submission, shown, opts).await.0
}

/// Like [`run_one`], also returning the run's normalized session transcript
/// (what a golden transcript holds). A lab of several cases runs the
/// program once per case and merges the runs (see `cases.rs`).
pub async fn run_with_session(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
) -> (RunOutcome, String) {
    if lab.cases.is_empty() {
        let (outcome, session, _) = run_single(lab, submission, shown, opts).await;
        (outcome, session)
    } else {
        cases::run(lab, submission, shown, opts).await
    }
}

/// One run of the program: the whole pipeline; its outcome, its session
/// and what checks across cases compare.
async fn run_single(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
) -> (RunOutcome, String, crate::checks::CaseEvidence) {
    let plan = Plan::new(lab, submission, shown, opts);
    match grade(&plan).await {
        Ok(done) => done,
        Err(e) => (
            RunOutcome::internal_error(&lab.name, shown, plan.seed, format!("{e:#}")),
            String::new(),
            crate::checks::CaseEvidence::default(),
        ),
    }
}

/// The pipeline. Errors here are netgrade's own (no temporary directory, a
/// server that cannot bind); everything the submission does is in the trace.
async fn grade(plan: &Plan<'_>) -> Result<(RunOutcome, String, crate::checks::CaseEvidence)> {
    let started = Instant::now();
    let recorder = Recorder::new();
    let mut notes = Vec::new();

    let work = blocking(|| workspace::prepare(plan, &recorder, &mut notes)).await?;
    if plan.lab.program.role == Role::Answers {
        return Ok(answers(plan, work, recorder, started, notes).await);
    }
    let net = network::enter(plan, &mut notes).await;
    let (data, trust, mut servers) = blocking(|| -> Result<_> {
        let data = workspace::stage_lab_data(plan, &work)?;
        // The run's certificate authority: servers speak TLS with it, the
        // program trusts it.
        let trust = crate::servers::trust(plan.lab, &mut notes);
        let servers = crate::servers::start(
            plan.lab,
            plan.seed,
            net.namespace(),
            data.as_ref().map(|d| d.path()),
            trust.as_ref().map(|t| &t.ca),
            &recorder,
        )?;
        notes.extend(servers.notes.iter().cloned());
        // What the servers hand the program (a DNS hierarchy's root hints).
        for (name, bytes) in &servers.files {
            let path = work.cwd().join(name);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot make {} for the program", dir.display()))?;
            }
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {} for the program", path.display()))?;
        }
        Ok((data, trust, servers))
    })
    .await?;
    let capture =
        blocking(|| capture::engage(plan, &net, &mut servers, &recorder, &mut notes)).await?;
    let trust_env = trust.as_ref().map_or(&[][..], |t| &t.env[..]);
    let program =
        program::execute(plan, &work, &net, &capture, trust_env, &servers, &recorder).await;
    servers.stop(&recorder).await;
    notes.extend(program.notes.iter().cloned());
    let late = program
        .started
        .map(crate::servers::clock::lateness_since)
        .unwrap_or_default();
    let queued = net.leave();
    Ok(blocking(|| {
        drop((capture, data));
        evaluate::finish(
            plan,
            work,
            program,
            recorder,
            trust.as_ref(),
            evaluate::Timeline {
                started,
                queued,
                late,
                notes,
            },
        )
    })
    .await)
}

/// A homework's run: the answers file is read with the student's variant,
/// and the checks judge it; nothing runs, no network, no servers.
async fn answers(
    plan: &Plan<'_>,
    work: workspace::Workspace,
    recorder: Recorder,
    started: Instant,
    mut notes: Vec<String>,
) -> (RunOutcome, String, crate::checks::CaseEvidence) {
    let student = crate::homework::student_of(plan.submission, plan.opts.student.as_deref());
    if plan.opts.student.is_none() && !plan.lab.params.is_empty() {
        notes.push(format!(
            "graded with the numbers of student `{student}`, the submission's name (`netgrade homework {} --student {student}` prints them; `--student ID` grades with another's)",
            plan.lab.name
        ));
    }
    let file = work
        .entry
        .as_ref()
        .map(|e| (e.dir.join(&e.file), e.file.clone()));
    let read = blocking(|| {
        crate::homework::record(
            plan.lab,
            plan.seed,
            &student,
            file.as_ref().map(|(p, n)| (p.as_path(), n.as_str())),
            &recorder,
        )
    })
    .await;
    // Transcript answers are replayed against the lab's real POP3 server.
    let answered = crate::homework::answered(plan.lab, &read);
    crate::homework::replay::run(plan.lab, &answered, &recorder).await;
    let figures = figures(plan.lab, plan.seed, &student);
    let (mut outcome, session, evidence) = blocking(|| {
        evaluate::finish(
            plan,
            work,
            program::ProgramRun::default(),
            recorder,
            None,
            evaluate::Timeline {
                started,
                queued: std::time::Duration::ZERO,
                late: std::time::Duration::ZERO,
                notes,
            },
        )
    })
    .await;
    match figures {
        Ok(f) => outcome.figures = f,
        Err(e) => outcome
            .notes
            .push(format!("the lab's plot cannot be drawn: {e}")),
    }
    (outcome, session, evidence)
}

/// A homework's plot for `student`, if the lab has one.
fn figures(lab: &Lab, seed: u64, student: &str) -> Result<Vec<crate::outcome::Figure>, String> {
    let Some(spec) = &lab.plot else {
        return Ok(Vec::new());
    };
    let variant = crate::homework::variant_of(lab, seed, student);
    Ok(vec![crate::outcome::Figure {
        title: variant.fill(&spec.title),
        svg: crate::homework::plot::svg(spec, &variant)?,
        file: None,
    }])
}
