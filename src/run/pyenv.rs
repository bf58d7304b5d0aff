//! The Python packages a lab allows (`program.python_packages`), installed
//! once into a virtual environment in netgrade's cache and shared by every
//! run and every later batch.
//!
//! The environment's folder is keyed by the package list and the Python
//! that runs the programs (version and executable). Several netgrade
//! processes may prepare it at once: one takes a lock file and builds the
//! environment in a temporary folder, renamed into place when complete;
//! the others wait for the lock, then find it ready.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};

use super::submission::cache_dir;

/// How long `python3 -m venv` may take.
const VENV_LIMIT: Duration = Duration::from_secs(180);
/// How long `pip install` may take (downloads, maybe a build).
const PIP_LIMIT: Duration = Duration::from_secs(900);
/// How long to wait for another netgrade preparing the same environment.
const LOCK_LIMIT: Duration = Duration::from_secs(1200);
/// Lines of a failed tool's output shown in the error.
const OUTPUT_LINES: usize = 15;
/// The file, in a complete environment, that lists its packages.
const MARKER: &str = "netgrade-packages.txt";

/// A virtual environment holding a lab's packages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PythonEnv {
    /// The environment's folder (`bin/python3` inside).
    pub dir: PathBuf,
    /// Its packages, normalized (spaces removed, sorted, without duplicates).
    pub packages: Vec<String>,
}

impl PythonEnv {
    /// `PATH` (the environment's `bin` first) and `VIRTUAL_ENV`, so that
    /// `python3` is the environment's.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        vec![
            (
                "PATH".into(),
                format!("{}:{path}", self.dir.join("bin").display()),
            ),
            ("VIRTUAL_ENV".into(), self.dir.display().to_string()),
        ]
    }
}

/// The package list as a key: spaces removed, sorted, without duplicates.
pub fn normalize(packages: &[String]) -> Vec<String> {
    let mut out: Vec<String> = packages
        .iter()
        .map(|p| p.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|p| !p.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The environment with `packages`, made now if the cache does not have it.
/// `None` when there are no packages.
pub async fn prepare(packages: &[String]) -> Result<Option<PythonEnv>> {
    let packages = normalize(packages);
    if packages.is_empty() {
        return Ok(None);
    }
    let python = python_identity().await?;
    let key = format!(
        "{:016x}",
        fnv1a(format!("{}\n{python}", packages.join("\n")).as_bytes())
    );
    let base = cache_dir().join("python");
    let list = packages.join(", ");
    let dir = ensure(&base, &key, &packages.join("\n"), |tmp| {
        let packages = packages.clone();
        async move { build(&tmp, &packages).await }
    })
    .await
    .with_context(|| format!("cannot prepare the lab's Python packages ({list})"))?;
    Ok(Some(PythonEnv { dir, packages }))
}

/// The `python3` programs run: as root, where each program runs as a user
/// of its own, the first on PATH that every user may run (tools such as
/// pyenv keep theirs in root's home, which others cannot enter, and a
/// program's search of PATH passes over it); otherwise `python3`.
pub fn program_python() -> String {
    if !nix::unistd::geteuid().is_root() {
        return "python3".into();
    }
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join("python3"))
        .find(|p| open_to_all(p))
        .map_or_else(|| "python3".into(), |p| p.display().to_string())
}

/// Whether every user may run `path`: the file (through its links) is
/// executable by others, and so is every folder above it searchable.
fn open_to_all(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let others =
        |p: &Path, bit: u32| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & bit != 0);
    let Ok(real) = std::fs::canonicalize(path) else {
        return false;
    };
    let folders_open = [path, real.as_path()]
        .iter()
        .all(|p| p.ancestors().skip(1).all(|a| others(a, 0o001)));
    real.is_file() && others(&real, 0o001) && folders_open
}

/// `python3`'s version and real executable: what an environment is made from.
async fn python_identity() -> Result<String> {
    let script =
        "import os, sys; print(sys.version.split()[0]); print(os.path.realpath(sys.executable))";
    let out = run_tool(&program_python(), &["-c", script], Duration::from_secs(60))
        .await
        .map_err(|e| {
            anyhow!("{e}; netgrade runs Python programs with `python3`, so it must be on PATH")
        })?;
    Ok(out.trim().to_string())
}

/// The folder `base/key`, built by `build` (into a temporary folder, then
/// renamed) unless it is already complete. One builder at a time, across
/// processes.
async fn ensure<F, Fut>(base: &Path, key: &str, marker: &str, build: F) -> Result<PathBuf>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let done = base.join(key);
    if done.join(MARKER).is_file() {
        return Ok(done);
    }
    std::fs::create_dir_all(base)
        .with_context(|| format!("cannot create netgrade's cache folder {}", base.display()))?;
    let lock_path = base.join(format!("{key}.lock"));
    let _lock = lock(&lock_path).await?;
    if done.join(MARKER).is_file() {
        return Ok(done);
    }
    let tmp = base.join(format!("{key}.tmp-{}", std::process::id()));
    remove_dir(&tmp)?;
    if let Err(e) = build(tmp.clone()).await {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join(MARKER), format!("{marker}\n"))
        .with_context(|| format!("cannot write into {}", tmp.display()))?;
    // An incomplete folder from a process that died half-way is replaced.
    remove_dir(&done)?;
    std::fs::rename(&tmp, &done)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), done.display()))?;
    Ok(done)
}

/// Removes `dir` if it exists.
fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// An exclusive lock on `path`, released when dropped (or when the process dies).
async fn lock(path: &Path) -> Result<Flock<std::fs::File>> {
    let deadline = Instant::now() + LOCK_LIMIT;
    loop {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => bail!(
                "another netgrade has been preparing the same environment for {} minutes (it holds {}); \
                 wait for it, or stop it",
                LOCK_LIMIT.as_secs() / 60,
                path.display()
            ),
            Err((_, e)) => bail!("cannot lock {}: {e}", path.display()),
        }
    }
}

/// Makes a virtual environment in `dir` and installs `packages` into it.
async fn build(dir: &Path, packages: &[String]) -> Result<()> {
    let shown = dir.display().to_string();
    run_tool(&program_python(), &["-m", "venv", &shown], VENV_LIMIT)
        .await
        .map_err(|e| {
            anyhow!(
                "`python3 -m venv` failed: {e}\nhelp: install Python's venv module (Debian, Ubuntu: \
                 `apt-get install python3-venv`), or remove `program.python_packages` from the lab"
            )
        })?;
    let python = dir.join("bin").join("python3").display().to_string();
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
    ];
    args.extend(packages.iter().map(String::as_str));
    run_tool(&python, &args, PIP_LIMIT).await.map_err(|e| {
        anyhow!(
            "`pip install {}` failed: {e}\nhelp: netgrade downloads the packages once, from PyPI or the \
             index your pip configuration names (PIP_INDEX_URL, PIP_FIND_LINKS): connect to the network \
             and check the names and versions in `program.python_packages`; later batches use the cached \
             environment without the network",
            packages.join(" ")
        )
    })?;
    Ok(())
}

/// Runs a tool of the instructor's (not a student's program) to its end
/// within `limit`; its standard output, or an error with the end of its output.
async fn run_tool(program: &str, args: &[&str], limit: Duration) -> Result<String, String> {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(limit, child).await {
        Err(_) => return Err(format!("it did not finish within {} s", limit.as_secs())),
        Ok(Err(e)) => return Err(format!("cannot run `{program}`: {e}")),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    // Progress goes to stdout, errors to stderr: the errors come last.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(OUTPUT_LINES)..];
    Err(format!(
        "it ended with {}; the end of its output:\n{}",
        out.status,
        tail.join("\n")
    ))
}

/// FNV-1a: a stable 64-bit hash for cache keys.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn package_lists_are_keys() {
        let a = normalize(&["numpy == 1.26.4".into(), "scipy".into(), "scipy".into()]);
        assert_eq!(a, ["numpy==1.26.4", "scipy"]);
        assert_eq!(normalize(&["scipy".into(), "numpy==1.26.4".into()]), a);
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"numpy"), fnv1a(b"scipy"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_preparations_build_once() {
        let base = tempfile::tempdir().unwrap();
        let builds = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (base, builds) = (base.path().to_path_buf(), builds.clone());
            tasks.push(tokio::spawn(async move {
                ensure(&base, "k", "numpy", |tmp| async move {
                    builds.fetch_add(1, Ordering::SeqCst);
                    std::fs::create_dir_all(tmp.join("bin"))?;
                    // Others must wait for the lock, not see a half-built folder.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    std::fs::write(tmp.join("bin/python3"), "")?;
                    Ok(())
                })
                .await
            }));
        }
        for t in tasks {
            let dir = t.await.unwrap().unwrap();
            assert!(dir.join("bin/python3").is_file());
            assert_eq!(
                std::fs::read_to_string(dir.join(MARKER)).unwrap(),
                "numpy\n"
            );
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        // Only the environment and its lock file are left.
        let mut left: Vec<String> = std::fs::read_dir(base.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["k", "k.lock"]);
    }

    #[tokio::test]
    async fn a_failed_build_leaves_nothing_and_is_retried() {
        let base = tempfile::tempdir().unwrap();
        let e = ensure(base.path(), "k", "x", |tmp| async move {
            std::fs::create_dir_all(&tmp)?;
            bail!("no network")
        })
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "no network");
        assert!(!base.path().join("k").exists());
        // A folder left incomplete (no marker) is rebuilt.
        std::fs::create_dir_all(base.path().join("k/bin")).unwrap();
        let dir = ensure(base.path(), "k", "x", |tmp| async move {
            std::fs::create_dir_all(tmp)?;
            Ok(())
        })
        .await
        .unwrap();
        assert!(dir.join(MARKER).is_file() && !dir.join("bin").exists());
    }

    #[tokio::test]
    async fn a_failing_tool_shows_the_end_of_its_output() {
        let e = run_tool(
            "python3",
            &["-c", "import sys; print('x'); sys.exit('boom')"],
            Duration::from_secs(60),
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("ended with exit status: 1") && e.ends_with("\nboom"),
            "{e}"
        );
        let e = run_tool(
            "python3",
            &["-c", "import time; time.sleep(30)"],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        let e = run_tool("no-such-tool-here", &[], Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.contains("cannot run `no-such-tool-here`"), "{e}");
    }
}
