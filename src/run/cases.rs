//! Labs of several cases: the program runs once per case, each run a whole
//! pipeline with the case's arguments, input and server settings, and the
//! runs become one outcome.
//!
//! A check scoped to a case (`case:`) takes its outcome from that case's run,
//! and carries the case's id. A check of every case passes when it passes in
//! each (a case where it had nothing to judge does not count against it);
//! otherwise its message names the first case it failed in and its evidence
//! the others, so one fault is charged once per check, not once per case.
//! A few kinds compare the cases with each other instead (`random-id`: a
//! fixed ID shows only across runs), from what each case's run kept
//! ([`CaseEvidence`]).

use std::path::Path;

use crate::checks::CaseEvidence;
use crate::outcome::{CaseRun, CheckOutcome, RunOutcome, RunStatus, Status, Timing};
use crate::spec::{CaseSpec, Lab};

use super::Options;

/// One case's run: the case and what its run produced.
struct Done<'a> {
    case: &'a CaseSpec,
    outcome: RunOutcome,
    session: String,
    evidence: CaseEvidence,
}

/// Runs every case of `lab` on `submission`, one after the other, and merges them.
pub(super) async fn run(
    lab: &Lab,
    submission: &Path,
    shown: &str,
    opts: &Options,
) -> (RunOutcome, String) {
    let mut done = Vec::new();
    for case in &lab.cases {
        let case_lab = lab.for_case(case);
        let (outcome, session, evidence) =
            super::run_single(&case_lab, submission, shown, opts).await;
        done.push(Done {
            case,
            outcome,
            session,
            evidence,
        });
    }
    merge(lab, done)
}

fn merge(lab: &Lab, done: Vec<Done>) -> (RunOutcome, String) {
    let compared: Vec<(&str, &CaseEvidence)> = done
        .iter()
        .filter(|d| d.outcome.status != RunStatus::Error)
        .map(|d| (d.case.id.value.as_str(), &d.evidence))
        .collect();
    let mut checks: Vec<CheckOutcome> = lab
        .checks
        .iter()
        .map(|c| crate::checks::across_cases(c, lab, &compared).unwrap_or_else(|| check(c, &done)))
        .collect();
    crate::checks::apply_requires(lab, &mut checks);
    let first = &done[0].outcome;
    let mut notes: Vec<String> = Vec::new();
    for d in &done {
        for n in &d.outcome.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let sum = |f: fn(&Timing) -> f64| done.iter().map(|d| f(&d.outcome.timing)).sum::<f64>();
    let timing = Timing {
        total_ms: sum(|t| t.total_ms),
        program_ms: sum(|t| t.program_ms),
        queued_ms: sum(|t| t.queued_ms),
        overhead_ms: sum(|t| t.overhead_ms),
        late_ms: done
            .iter()
            .map(|d| d.outcome.timing.late_ms)
            .fold(0.0, f64::max),
    };
    let status = if done.iter().any(|d| d.outcome.status == RunStatus::Error) {
        RunStatus::Error
    } else {
        RunStatus::Graded
    };
    let section = |d: &Done, text: &str| format!("{}\n{text}", heading(d.case));
    let transcript = done
        .iter()
        .map(|d| section(d, &d.outcome.transcript))
        .collect::<Vec<_>>()
        .join("\n");
    let raw_transcript = first.raw_transcript.as_ref().map(|_| {
        done.iter()
            .map(|d| section(d, d.outcome.raw_transcript.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let session = done
        .iter()
        .map(|d| section(d, &d.session))
        .collect::<Vec<_>>()
        .join("\n");
    let outcome = RunOutcome {
        lab: lab.name.clone(),
        submission: first.submission.clone(),
        status,
        score: checks.iter().map(|c| c.points).sum(),
        max_score: checks
            .iter()
            .filter(|c| c.status != crate::outcome::Status::Pending)
            .map(|c| c.max_points)
            .sum(),
        seed: first.seed,
        lab_digest: first.lab_digest.clone(),
        entry: first.entry.clone(),
        program: first.program.clone(),
        notes,
        timing,
        cases: done.iter().map(case_run).collect(),
        transcript,
        raw_transcript,
        disturbed: done.iter().find_map(|d| d.outcome.disturbed.clone()),
        figures: Vec::new(),
        checks,
    };
    (outcome, session)
}

/// `== case mx-record: An MX record ==`.
fn heading(case: &CaseSpec) -> String {
    match &case.title {
        Some(t) => format!("== case {}: {t} ==", case.id.value),
        None => format!("== case {} ==", case.id.value),
    }
}

fn case_run(d: &Done) -> CaseRun {
    CaseRun {
        id: d.case.id.value.clone(),
        title: d.case.title.clone(),
        status: d.outcome.status,
        program: d.outcome.program.clone(),
        notes: d.outcome.notes.clone(),
        timing: d.outcome.timing.clone(),
    }
}

/// The outcome of `spec` over the cases it judges.
fn check(spec: &crate::spec::CheckSpec, done: &[Done]) -> CheckOutcome {
    let id = spec.id.value.as_str();
    let mut judged: Vec<(&str, &CheckOutcome)> = done
        .iter()
        .filter_map(|d| {
            let o = d.outcome.checks.iter().find(|c| c.id == id)?;
            Some((d.case.id.value.as_str(), o))
        })
        .collect();
    let Some(&(first_case, first)) = judged.first() else {
        // Every case's run failed before its checks (an internal error).
        return CheckOutcome {
            id: id.to_string(),
            title: spec.title.clone(),
            status: Status::Error,
            points: 0.0,
            max_points: spec.points,
            message: Some("no case's run reached its checks".into()),
            evidence: Vec::new(),
            hint: None,
            case: spec.case.as_ref().map(|c| c.value.clone()),
            visibility: spec.visibility,
            fraction: None,
            line: None,
        };
    };
    if spec.case.is_some() {
        let mut o = first.clone();
        o.case = Some(first_case.to_string());
        return o;
    }
    let failed: Vec<(&str, &CheckOutcome)> = judged
        .iter()
        .copied()
        .filter(|(_, o)| matches!(o.status, Status::Fail | Status::Error))
        .collect();
    if let Some(&(case, worst)) = failed.first() {
        let mut o = worst.clone();
        o.case = None;
        o.message = Some(format!(
            "in case `{case}`: {}",
            worst.message.as_deref().unwrap_or("did not pass")
        ));
        for (other, f) in &failed[1..] {
            o.evidence.push(format!(
                "also in case `{other}`: {}",
                f.message.as_deref().unwrap_or("did not pass")
            ));
        }
        return o;
    }
    judged.retain(|(_, o)| o.status == Status::Pass);
    match judged.first() {
        // Passed wherever there was something to judge.
        Some(&(_, pass)) => {
            let mut o = pass.clone();
            o.case = None;
            o
        }
        // Nothing to judge in any case: the first case's skip says why.
        None => {
            let mut o = first.clone();
            o.case = None;
            o
        }
    }
}
