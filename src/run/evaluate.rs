//! Phase `evaluate`: checks over the trace, the transcript, and the outcome.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Plan;
use super::program::ProgramRun;
use super::transcript;
use super::workspace::Workspace;
use crate::checks;
use crate::outcome::{ExitKind, ProgramSummary, RunOutcome, RunStatus, Timing};
use crate::servers::tls::RunTrust;
use crate::trace::Recorder;

/// The entry file as reports name it, with each check that did not pass
/// pointed at the line of it that best explains why (see [`super::locate`]).
fn located(
    plan: &Plan,
    work: &Workspace,
    summary: Option<&ProgramSummary>,
    checks: &mut [crate::outcome::CheckOutcome],
) -> Option<String> {
    let entry = work.entry.as_ref()?;
    let file = entry.dir.join(&entry.file);
    let inside = file
        .strip_prefix(work.root())
        .unwrap_or(Path::new(&entry.file));
    let stderr = summary.map_or("", |p| p.stderr.as_str());
    // The entry is read only when a check did not pass: lines are for failures.
    let failed = checks.iter().any(|c| !c.passed());
    let source = failed.then(|| super::locate::read_entry(&file)).flatten();
    super::locate::mark_lines(plan.lab, checks, &entry.file, source.as_deref(), stderr);
    Some(super::locate::entry_path(
        plan.shown,
        plan.submission.is_file(),
        inside,
    ))
}

/// When the run started, how long it queued, and what it noted on the way.
#[derive(Debug)]
pub struct Timeline {
    /// When the run started.
    pub started: Instant,
    /// Time spent waiting for the host's ports.
    pub queued: Duration,
    /// The most the servers ran behind schedule while the program ran.
    pub late: Duration,
    /// Notes for the report.
    pub notes: Vec<String>,
}

/// Why the run cannot be graded from its evidence: netgrade's servers ran
/// further behind schedule than the lab tolerates.
fn disturbed(plan: &Plan, late: Duration) -> Option<String> {
    let tolerance = plan.lab.timing.tolerance;
    (late > tolerance.get()).then(|| {
        format!(
            "netgrade's servers ran up to {} behind their schedule (the lab tolerates {tolerance}): the machine was too busy",
            crate::spec::Dur(late)
        )
    })
}

/// Whether the program and netgrade's servers or probes exchanged anything.
fn met_servers(trace: &crate::trace::Trace) -> bool {
    use crate::trace::EventKind as K;
    trace.events.iter().any(|e| {
        matches!(
            e.kind,
            K::Datagram { .. }
                | K::Request { .. }
                | K::Exchange { .. }
                | K::Line { .. }
                | K::NameLookup { .. }
                | K::Stray { .. }
                | K::Captured { .. }
                | K::DnsMessage { .. }
        )
    })
}

/// Evaluates the checks and assembles the outcome, the session transcript
/// and what a lab of cases compares across them. Removes the work directory.
pub fn finish(
    plan: &Plan,
    work: Workspace,
    program: ProgramRun,
    recorder: Recorder,
    trust: Option<&RunTrust>,
    timeline: Timeline,
) -> (RunOutcome, String, checks::CaseEvidence) {
    // The work directory is gone after the run: show paths relative to it.
    let root = format!("{}", work.root().display());
    let others: Vec<(u8, String)> = program
        .other_roots
        .iter()
        .map(|(k, r)| (*k, format!("{}", r.display())))
        .collect();
    let mut summary = program.summary;
    if let Some(p) = &mut summary {
        for arg in p.command.iter_mut().chain(p.build.iter_mut().flatten()) {
            *arg = arg.replace(&root, ".");
        }
        for text in p.diagnoses.iter_mut().chain([&mut p.stdout, &mut p.stderr]) {
            *text = text.replace(&format!("{root}/"), "");
        }
        for i in &mut p.instances {
            let Some((_, other)) = others.iter().find(|(k, _)| *k == i.instance) else {
                continue;
            };
            for arg in &mut i.command {
                *arg = arg.replace(other, ".");
            }
            for text in [&mut i.stdout, &mut i.stderr] {
                *text = text.replace(&format!("{other}/"), "");
            }
        }
    }
    let mut trace = recorder.snapshot();
    if let Some(t) = trust {
        // The JVM's notice of JAVA_TOOL_OPTIONS is netgrade's doing.
        t.drop_jvm_notices(&mut trace);
    }
    // The raw transcript shows paths as the program printed them.
    let raw_trace = plan.opts.raw_transcripts.then(|| trace.clone());
    for root in std::iter::once(&root).chain(others.iter().map(|(_, r)| r)) {
        trace.replace_in_output(&format!("{root}/"), "");
    }
    if summary.is_none()
        && let Some((_, ExitKind::DidNotStart { reason })) = trace.exit()
    {
        summary = Some(ProgramSummary::did_not_start(reason.clone()));
    }
    let lab = plan.lab;
    let late = timeline.late.max(trace.reply_lateness());
    let mut notes = timeline.notes;
    notes.extend(super::capture::notes(plan, &trace));
    notes.extend(trace.cut_note());
    let mut checks = checks::evaluate(lab, &trace);
    let entry = located(plan, &work, summary.as_ref(), &mut checks);
    let evidence = checks::CaseEvidence::of(lab, &trace);
    let header = transcript::Header {
        submission: plan.shown,
        seed: plan.seed,
        command: summary
            .as_ref()
            .map(|p| p.command.as_slice())
            .filter(|c| !c.is_empty()),
    };
    let transcript = transcript::render(lab, &header, &trace, &checks);
    let raw_transcript = raw_trace.map(|raw| transcript::render_raw(lab, &header, &raw, &checks));
    let session = transcript::session(lab, &trace);
    drop(work);
    let total = timeline.started.elapsed();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let outcome = RunOutcome {
        lab: lab.name.clone(),
        submission: plan.shown.to_string(),
        status: RunStatus::Graded,
        score: checks.iter().map(|c| c.points).sum(),
        max_score: checks
            .iter()
            .filter(|c| c.status != crate::outcome::Status::Pending)
            .map(|c| c.max_points)
            .sum(),
        seed: plan.seed,
        lab_digest: lab.digest.clone(),
        entry,
        checks,
        program: summary,
        notes,
        timing: Timing {
            total_ms: ms(total),
            program_ms: ms(program.time),
            queued_ms: ms(timeline.queued),
            overhead_ms: ms(total
                .saturating_sub(program.time)
                .saturating_sub(timeline.queued)),
            late_ms: ms(late),
        },
        cases: Vec::new(),
        transcript,
        raw_transcript,
        // Late servers cannot have changed a run in which nothing reached
        // them and nothing of theirs reached the program.
        disturbed: disturbed(plan, late).filter(|_| met_servers(&trace)),
        figures: Vec::new(),
    };
    (outcome, session, evidence)
}
