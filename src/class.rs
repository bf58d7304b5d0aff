//! Classes larger than one run: a roster folder's submissions, shards of
//! them graded on several machines, shard reports merged into one, and a
//! batch resumed from an earlier report.
//!
//! A shard is a share of the submissions by name: sorted by name, the
//! k-th submission goes to shard k mod N. Every shard must see the same
//! roster (one checkout, one volume); then the shards grade each
//! submission exactly once, and [`merge`] puts their reports back together
//! in the order one unsharded run gives.

use std::collections::HashSet;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::outcome::{RunOutcome, RunStatus};

/// The largest JSON report read back (a shard of a large class with every
/// program's output).
pub const REPORT_LIMIT: u64 = 1 << 30;

/// One shard of N: `index` counts from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which, from 1 to `count`.
    pub index: usize,
    /// How many.
    pub count: usize,
}

impl fmt::Display for Shard {
    /// `2/4`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `K/N`, with 1 ≤ K ≤ N.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a shard: write K/N, e.g. 2/4 for the second of four shards (K from 1 to N)"
            )
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// The shard a batch engine gives this process, and which engine: a
/// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX` from 0 of
/// `JOB_COMPLETIONS`) or a Slurm job array (`SLURM_ARRAY_TASK_ID` from
/// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`). `env` reads a
/// variable. An engine's variables that do not make a shard are an error.
pub fn shard_from_env(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(Shard, &'static str)>, String> {
    let number = |name: &str| -> Result<Option<usize>, String> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                format!("{name}={v:?} is not a number; netgrade takes its shard from it")
            }),
        }
    };
    let shard = |index0: usize, count: usize, from: &'static str| {
        if count == 0 || index0 >= count {
            return Err(format!(
                "{from} gives shard {} of {count}, which does not exist; give --shard K/N to override",
                index0 + 1
            ));
        }
        Ok(Some((
            Shard {
                index: index0 + 1,
                count,
            },
            from,
        )))
    };
    if let (Some(index), Some(count)) =
        (number("JOB_COMPLETION_INDEX")?, number("JOB_COMPLETIONS")?)
    {
        return shard(
            index,
            count,
            "the Kubernetes Indexed Job (JOB_COMPLETION_INDEX)",
        );
    }
    if let (Some(id), Some(count)) = (
        number("SLURM_ARRAY_TASK_ID")?,
        number("SLURM_ARRAY_TASK_COUNT")?,
    ) {
        let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let Some(index) = id.checked_sub(min) else {
            return Err(format!(
                "SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"
            ));
        };
        return shard(index, count, "the Slurm job array (SLURM_ARRAY_TASK_ID)");
    }
    Ok(None)
}

/// The name a submission is sharded and merged by: its last path
/// component (the student's folder in a roster), then the whole path.
fn key(submission: &str) -> (String, String) {
    let name = crate::report::submission_name(submission);
    (name.to_string(), submission.to_string())
}

/// The submissions of `shard`, in their order: those whose place among
/// all of them sorted by name is `index − 1` modulo `count`.
pub fn share(submissions: &[PathBuf], shard: Shard) -> Vec<PathBuf> {
    let mut order: Vec<usize> = (0..submissions.len()).collect();
    order.sort_by_cached_key(|&i| key(&submissions[i].display().to_string()));
    let mut mine: Vec<usize> = order
        .iter()
        .enumerate()
        .filter(|(place, _)| place % shard.count == shard.index - 1)
        .map(|(_, &i)| i)
        .collect();
    mine.sort_unstable();
    mine.into_iter().map(|i| submissions[i].clone()).collect()
}

/// The subfolders of a roster `dir`, one submission each, sorted by name;
/// hidden folders (`.git`) aside.
pub fn roster(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot read the roster folder {}: {e}; --each takes a folder holding one folder per submission",
            dir.display()
        )
    })?;
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(format!(
            "the roster folder {} holds no folders; --each grades each subfolder as one submission (give a single submission without --each)",
            dir.display()
        ));
    }
    Ok(folders)
}

/// A JSON report read back.
#[derive(Debug, Deserialize)]
pub struct Report {
    /// The netgrade version that wrote it.
    pub netgrade: String,
    /// Its runs.
    pub runs: Vec<RunOutcome>,
}

/// Reads the JSON report at `path` (at most [`REPORT_LIMIT`] bytes).
pub fn read_report(path: &Path) -> Result<Report, String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(REPORT_LIMIT + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > REPORT_LIMIT {
        return Err(format!(
            "{} is larger than 1 GiB; it is not a netgrade JSON report",
            path.display()
        ));
    }
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a netgrade JSON report (line {}, column {}: {e}); give the files `--json` wrote",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// The runs of shard reports, checked to belong together (one lab, one lab
/// text, one seed, one netgrade version, no submission twice) and put in
/// the order of one unsharded run of the whole roster.
pub fn merge(reports: &[(PathBuf, Report)]) -> Result<Vec<RunOutcome>, String> {
    let Some((first_path, first)) = reports.first() else {
        return Err("nothing to merge: give the JSON reports of the shards".into());
    };
    let mut runs: Vec<(&Path, &RunOutcome)> = Vec::new();
    for (path, report) in reports {
        if report.netgrade != first.netgrade {
            return Err(format!(
                "{} was written by netgrade {} and {} by netgrade {}: grade every shard with one version",
                path.display(),
                report.netgrade,
                first_path.display(),
                first.netgrade
            ));
        }
        runs.extend(report.runs.iter().map(|r| (path.as_path(), r)));
    }
    if let Some((path, run)) = runs.iter().find(|(_, r)| r.lab != runs[0].1.lab) {
        return Err(format!(
            "{} graded lab `{}` and {} lab `{}`: merge the shards of one lab",
            path.display(),
            run.lab,
            runs[0].0.display(),
            runs[0].1.lab
        ));
    }
    let graded = |r: &&(&Path, &RunOutcome)| r.1.status == RunStatus::Graded;
    if let Some(base) = runs.iter().find(graded) {
        for (path, run) in runs.iter().filter(graded) {
            if run.lab_digest != base.1.lab_digest || run.seed != base.1.seed {
                return Err(format!(
                    "{} graded `{}` with another lab text or seed than {} graded `{}`: grade every shard with the same lab file and seed",
                    path.display(),
                    run.submission,
                    base.0.display(),
                    base.1.submission
                ));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for (path, run) in &runs {
        if !seen.insert(&run.submission) {
            return Err(format!(
                "`{}` was graded twice (again in {}): the shards overlap; give each shard its own --shard K/N of the same N",
                run.submission,
                path.display()
            ));
        }
    }
    let mut merged: Vec<RunOutcome> = runs.into_iter().map(|(_, r)| r.clone()).collect();
    merged.sort_by_cached_key(|r| r.submission.clone());
    Ok(merged)
}

/// The runs of `report` that `--resume` takes over instead of grading
/// again: graded (not failed by netgrade) with this netgrade version, the
/// lab `lab` of text `digest`, and `seed`.
pub fn resumable(report: &Report, lab: &str, digest: &str, seed: u64) -> Vec<RunOutcome> {
    if report.netgrade != env!("CARGO_PKG_VERSION") {
        return Vec::new();
    }
    report
        .runs
        .iter()
        .filter(|r| {
            r.status == RunStatus::Graded
                && r.lab == lab
                && r.lab_digest == digest
                && r.seed == seed
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_what_is_not_one() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_share_every_submission_once_and_evenly() {
        let subs: Vec<PathBuf> = (0..101)
            .map(|i| PathBuf::from(format!("class/s{:03}", (i * 37) % 101)))
            .collect();
        let shares: Vec<Vec<PathBuf>> = (1..=3)
            .map(|k| share(&subs, Shard { index: k, count: 3 }))
            .collect();
        let mut all: Vec<&PathBuf> = shares.iter().flatten().collect();
        assert_eq!(all.len(), subs.len());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), subs.len(), "no submission in two shards");
        for s in &shares {
            assert!((33..=34).contains(&s.len()), "{}", s.len());
        }
        // By name, wherever the roster is: the same share from another folder.
        let moved: Vec<PathBuf> = subs
            .iter()
            .map(|p| Path::new("/mnt/roster").join(p.file_name().unwrap()))
            .collect();
        let names = |v: &[PathBuf]| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(&share(&moved, Shard { index: 2, count: 3 })),
            names(&shares[1])
        );
    }

    #[test]
    fn engines_give_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let k8s = shard_from_env(env(&[
            ("JOB_COMPLETION_INDEX", "0"),
            ("JOB_COMPLETIONS", "4"),
        ]));
        assert_eq!(k8s.unwrap().unwrap().0, Shard { index: 1, count: 4 });
        let slurm = shard_from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]));
        assert_eq!(slurm.unwrap().unwrap().0, Shard { index: 4, count: 4 });
        let zero_based = shard_from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]));
        assert_eq!(zero_based.unwrap().unwrap().0, Shard { index: 1, count: 2 });
        assert_eq!(shard_from_env(env(&[])), Ok(None));
        let past = shard_from_env(env(&[
            ("JOB_COMPLETION_INDEX", "4"),
            ("JOB_COMPLETIONS", "4"),
        ]));
        assert!(past.unwrap_err().contains("does not exist"));
        let junk = shard_from_env(env(&[
            ("JOB_COMPLETION_INDEX", "x"),
            ("JOB_COMPLETIONS", "4"),
        ]));
        assert!(junk.unwrap_err().contains("not a number"));
    }

    #[test]
    fn merging_refuses_overlaps_and_mixed_labs() {
        let run = |sub: &str, lab: &str| {
            let mut r = RunOutcome::internal_error(lab, sub, 1, "x".into());
            r.status = RunStatus::Graded;
            r.lab_digest = "d".into();
            r
        };
        let report = |runs: Vec<RunOutcome>| Report {
            netgrade: env!("CARGO_PKG_VERSION").into(),
            runs,
        };
        let a = (
            PathBuf::from("shard-1.json"),
            report(vec![run("c/b", "l"), run("c/d", "l")]),
        );
        let b = (
            PathBuf::from("shard-2.json"),
            report(vec![run("c/a", "l"), run("c/c", "l")]),
        );
        let merged = merge(&[a, b]).unwrap();
        let order: Vec<&str> = merged.iter().map(|r| r.submission.as_str()).collect();
        assert_eq!(order, ["c/a", "c/b", "c/c", "c/d"]);
        let twice = merge(&[
            (PathBuf::from("1.json"), report(vec![run("c/a", "l")])),
            (PathBuf::from("2.json"), report(vec![run("c/a", "l")])),
        ]);
        assert!(twice.unwrap_err().contains("graded twice"));
        let mixed = merge(&[
            (PathBuf::from("1.json"), report(vec![run("c/a", "l")])),
            (PathBuf::from("2.json"), report(vec![run("c/b", "m")])),
        ]);
        assert!(mixed.unwrap_err().contains("merge the shards of one lab"));
        let mut other = run("c/b", "l");
        other.seed = 9;
        let seeds = merge(&[
            (PathBuf::from("1.json"), report(vec![run("c/a", "l")])),
            (PathBuf::from("2.json"), report(vec![other])),
        ]);
        assert!(seeds.unwrap_err().contains("same lab file and seed"));
    }
}
