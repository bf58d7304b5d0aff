//! Batches: many submissions graded at once, on time, and interruptible.
//!
//! The scheduler keeps at most `limit` runs going. A run whose evidence
//! netgrade could not trust (its servers fell behind schedule: the machine
//! was too busy) is not reported: the limit halves and the submission is
//! graded again, first in line. After enough clean runs the limit grows
//! back, one run at a time, up to `-j`. A submission whose timing could not
//! be kept even alone is reported as an error, never graded wrong.
//!
//! A stop request (Ctrl-C, SIGTERM) stops every run in flight: each run's
//! processes, namespaces and work directory go with it. Results already
//! reported stay reported.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::{Options, run_one};
use crate::outcome::{RunOutcome, RunStatus};
use crate::spec::Lab;

/// How many times a submission is graded before its disturbed outcome is
/// reported as an error.
pub const MAX_ATTEMPTS: u32 = 4;

/// How a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every submission was reported.
    Completed,
    /// A stop was requested; runs in flight were stopped and not reported.
    Stopped {
        /// How many runs were in flight.
        in_flight: usize,
    },
}

/// The concurrency limit: halves on a disturbed run, grows by one after as
/// many clean runs in a row as the limit is.
#[derive(Debug)]
struct Limit {
    current: usize,
    max: usize,
    clean: usize,
}

impl Limit {
    fn new(max: usize) -> Self {
        Limit {
            current: max.max(1),
            max: max.max(1),
            clean: 0,
        }
    }

    /// A run started while the limit was `then` could not keep its timing:
    /// half of that is the most the machine keeps. (Runs of the same wave
    /// report one after another; they halve the limit once, not each.)
    fn disturbed(&mut self, then: usize) {
        self.current = self.current.min((then / 2).max(1));
        self.clean = 0;
    }

    fn clean(&mut self) {
        self.clean += 1;
        if self.clean >= self.current && self.current < self.max {
            self.current += 1;
            self.clean = 0;
        }
    }
}

/// One submission to grade.
struct Job {
    index: usize,
    path: PathBuf,
    attempt: u32,
    /// The concurrency limit when this attempt started.
    started_under: usize,
    /// Why earlier attempts were not trusted.
    reasons: Vec<String>,
}

/// Grades `submissions` with up to `jobs` at once, calling `report` with each
/// outcome (and its index in `submissions`) as soon as it is final, until
/// done or until `stop` completes.
pub async fn grade(
    lab: Arc<Lab>,
    submissions: &[PathBuf],
    jobs: usize,
    opts: Arc<Options>,
    mut report: impl FnMut(usize, RunOutcome),
    stop: impl Future<Output = ()>,
) -> End {
    let mut queue: VecDeque<Job> = submissions
        .iter()
        .enumerate()
        .map(|(index, path)| Job {
            index,
            path: path.clone(),
            attempt: 1,
            started_under: jobs,
            reasons: Vec::new(),
        })
        .collect();
    let mut limit = Limit::new(jobs);
    let mut running: JoinSet<RunOutcome> = JoinSet::new();
    let mut in_flight: HashMap<tokio::task::Id, Job> = HashMap::new();
    tokio::pin!(stop);
    loop {
        while running.len() < limit.current
            && let Some(mut job) = queue.pop_front()
        {
            job.started_under = limit.current;
            let (lab, opts, path) = (lab.clone(), opts.clone(), job.path.clone());
            let shown = path.display().to_string();
            let task = running.spawn(async move { run_one(&lab, &path, &shown, &opts).await });
            in_flight.insert(task.id(), job);
        }
        let done = tokio::select! {
            done = running.join_next_with_id() => done,
            () = &mut stop => {
                let stopped = running.len();
                running.abort_all();
                // A run is dropped with its processes, namespace and folder
                // before its task counts as finished.
                while running.join_next().await.is_some() {}
                return End::Stopped { in_flight: stopped };
            }
        };
        let (mut job, outcome) = match done {
            None => return End::Completed,
            Some(Ok((id, outcome))) => match in_flight.remove(&id) {
                Some(job) => (job, outcome),
                None => continue,
            },
            // A panic while grading one submission becomes that submission's
            // error, not everyone's.
            Some(Err(e)) => match in_flight.remove(&e.id()) {
                Some(job) => {
                    let outcome = RunOutcome::internal_error(
                        &lab.name,
                        &job.path.display().to_string(),
                        opts.seed.unwrap_or(lab.seed),
                        format!("the grader crashed on this submission: {e}"),
                    );
                    (job, outcome)
                }
                None => continue,
            },
        };
        match &outcome.disturbed {
            Some(why) if job.attempt < MAX_ATTEMPTS => {
                limit.disturbed(job.started_under);
                job.reasons.push(why.clone());
                job.attempt += 1;
                queue.push_front(job);
            }
            _ => {
                if outcome.disturbed.is_none() {
                    limit.clean();
                }
                report(job.index, finalize(outcome, &job.reasons));
            }
        }
    }
}

/// The outcome as reported: regrades noted; a run still disturbed after
/// every attempt is an error, not a grade.
fn finalize(mut outcome: RunOutcome, earlier: &[String]) -> RunOutcome {
    if let Some(why) = outcome.disturbed.clone() {
        outcome.status = RunStatus::Error;
        outcome.notes.push(format!(
            "not graded: {why}, in all {MAX_ATTEMPTS} attempts, the last ones with fewer runs at once; grade it again on a quieter machine"
        ));
    } else if let Some(first) = earlier.first() {
        outcome.notes.push(format!(
            "regraded: {} earlier attempt{} could not be trusted ({first}); this grade comes from a run that kept its timing",
            earlier.len(),
            if earlier.len() == 1 { "" } else { "s" },
        ));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_halves_then_grows_back_slowly() {
        let mut l = Limit::new(8);
        l.disturbed(8);
        assert_eq!(l.current, 4);
        // Others of the same wave do not halve it again.
        l.disturbed(8);
        l.disturbed(8);
        assert_eq!(l.current, 4);
        l.disturbed(4);
        l.disturbed(2);
        l.disturbed(1);
        assert_eq!(l.current, 1, "never below one");
        l.clean();
        assert_eq!(l.current, 2);
        l.clean();
        assert_eq!(l.current, 2);
        l.clean();
        assert_eq!(l.current, 3);
        for _ in 0..100 {
            l.clean();
        }
        assert_eq!(l.current, 8, "never above -j");
    }

    #[test]
    fn a_regraded_run_says_so_and_a_hopeless_one_is_an_error() {
        let good = RunOutcome::internal_error("lab", "s", 1, "x".into());
        let good = RunOutcome {
            status: RunStatus::Graded,
            notes: Vec::new(),
            ..good
        };
        let out = finalize(good.clone(), &["servers ran 2 s late".into()]);
        assert_eq!(out.status, RunStatus::Graded);
        assert!(
            out.notes[0].starts_with("regraded: 1 earlier attempt"),
            "{:?}",
            out.notes
        );
        let bad = RunOutcome {
            disturbed: Some("servers ran 2 s late".into()),
            figures: Vec::new(),
            ..good
        };
        let out = finalize(bad, &[]);
        assert_eq!(out.status, RunStatus::Error);
        assert!(out.notes[0].starts_with("not graded:"), "{:?}", out.notes);
    }
}
