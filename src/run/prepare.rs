//! What a batch prepares once, before any of its runs: today the Python
//! packages a lab allows, installed into a cached virtual environment.

use anyhow::{Result, bail};

use super::pyenv::{self, PythonEnv};
use crate::spec::Lab;

/// What a batch prepared for its runs (see [`prepare_batch`]); runs get it
/// through [`Options::batch`](super::Options::batch).
#[derive(Clone, Debug, Default)]
pub struct BatchEnv {
    /// The virtual environment with the lab's Python packages, if it allows any.
    pub python: Option<PythonEnv>,
}

impl BatchEnv {
    /// Environment variables for the program and its build.
    pub fn program_env(&self) -> Vec<(String, String)> {
        self.python.as_ref().map(PythonEnv::env).unwrap_or_default()
    }

    /// Fails when `lab` needs something this batch did not prepare (its
    /// Python packages): an error in how netgrade was called, not in a submission.
    pub fn check(&self, lab: &Lab) -> Result<()> {
        let wanted = pyenv::normalize(&lab.program.python_packages());
        if wanted.is_empty() {
            return Ok(());
        }
        match &self.python {
            Some(env) if env.packages == wanted => Ok(()),
            _ => bail!(
                "the lab allows the Python packages {}, but this batch has no environment with them: \
                 call `run::prepare_batch(&lab)` before the runs and pass its result as `Options::batch`",
                wanted.join(", ")
            ),
        }
    }
}

/// Prepares what every run of `lab` needs, once per batch: with
/// `program.python_packages`, a virtual environment holding them (made on
/// first use, then taken from netgrade's cache). The error says what the
/// instructor can do about it.
pub async fn prepare_batch(lab: &Lab) -> Result<BatchEnv> {
    let packages = lab.program.python_packages();
    Ok(BatchEnv {
        python: pyenv::prepare(&packages).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(packages: &str) -> Lab {
        let yaml = format!(
            "name: t\ntitle: t\nprogram:\n  entry: [c.py]\n  python_packages: {packages}\nchecks:\n  - {{ id: runs, title: r, points: 1 }}\n"
        );
        crate::spec::load_str("t.yaml", &yaml).unwrap()
    }

    #[tokio::test]
    async fn a_lab_without_packages_needs_nothing() {
        let plain = lab("[]");
        let env = prepare_batch(&plain).await.unwrap();
        assert!(env.python.is_none());
        assert!(env.program_env().is_empty());
        assert!(env.check(&plain).is_ok());
    }

    #[test]
    fn runs_refuse_a_batch_prepared_for_other_packages() {
        let numpy = lab("[numpy]");
        let e = BatchEnv::default().check(&numpy).unwrap_err().to_string();
        assert!(e.contains("Python packages numpy"), "{e}");
        assert!(e.contains("prepare_batch"), "{e}");
        let other = BatchEnv {
            python: Some(PythonEnv {
                dir: "/nowhere".into(),
                packages: vec!["scipy".into()],
            }),
        };
        assert!(other.check(&numpy).is_err());
        let same = BatchEnv {
            python: Some(PythonEnv {
                dir: "/nowhere".into(),
                packages: vec!["numpy".into()],
            }),
        };
        assert!(same.check(&numpy).is_ok());
        let env = same.program_env();
        assert!(env.contains(&("VIRTUAL_ENV".into(), "/nowhere".into())));
        assert!(
            env.iter()
                .any(|(k, v)| k == "PATH" && v.starts_with("/nowhere/bin:"))
        );
    }
}
