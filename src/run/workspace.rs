//! Phase `workspace`: the submission copied into a private directory, its
//! entry file found, and the lab's data staged where the run needs it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempDir;

use super::Plan;
use super::submission::{Entry, copy_submission, find_entry, find_entry_for_command, uses_entry};
use crate::outcome::ExitKind;
use crate::sandbox::janitor;
use crate::trace::{EventKind, Recorder};

/// The run's private copy of the submission.
#[derive(Debug)]
pub struct Workspace {
    /// The size-limited memory file system the folder is, as root (unmounted
    /// first when the workspace is dropped).
    disk: Option<Disk>,
    /// The temporary directory; removed when the workspace is dropped.
    pub dir: TempDir,
    /// The entry file, when one was found.
    pub entry: Option<Entry>,
}

impl Workspace {
    /// The directory the program runs in: its entry's folder, or the root.
    pub fn cwd(&self) -> PathBuf {
        self.entry
            .as_ref()
            .map(|e| e.dir.clone())
            .unwrap_or_else(|| self.root().to_path_buf())
    }

    /// Whether the folder is a file system of the run's disk limit.
    pub fn disk_limited(&self) -> bool {
        self.disk.is_some()
    }

    /// The root of the copy.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// Copies the submission and finds its entry. A submission that cannot be
/// copied, or has no entry, is recorded as a program that did not start
/// (unless `--cmd` says how to start it without naming the entry).
pub fn prepare(plan: &Plan, recorder: &Recorder, notes: &mut Vec<String>) -> Result<Workspace> {
    plan.opts.batch.check(plan.lab)?;
    let dir = tempfile::Builder::new()
        .prefix("netgrade-")
        .tempdir_in(janitor::scratch())
        .context("cannot create a work directory")?;
    let did_not_start = |reason: String| {
        recorder.record(EventKind::Exited {
            exit: ExitKind::DidNotStart { reason },
        });
    };
    let limit = plan.lab.program.limits.resolve().disk;
    let disk = Disk::mount(dir.path(), limit);
    let entry = match copy_submission(plan.submission, dir.path()) {
        Ok(()) => entry(plan, dir.path()).unwrap_or_else(|reason| {
            did_not_start(reason);
            None
        }),
        Err(reason) => {
            did_not_start(too_big(reason, limit, disk.is_some()));
            None
        }
    };
    if let Some(note) = entry.as_ref().and_then(|e| e.note.clone()) {
        notes.push(note);
    }
    let work = Workspace { disk, dir, entry };
    // A student's server serves the lab's files (its web root) from its own
    // folder, unless the lab's web servers serve them (a proxy's origins).
    let origins = plan
        .lab
        .servers
        .iter()
        .any(|s| s.kind.value == crate::spec::ServerKind::Http);
    if plan.is_server() && !origins {
        plan.lab
            .files
            .write_to(&work.cwd())
            .context("cannot copy the lab's data next to the program")?;
    }
    Ok(work)
}

/// Instance `k` of a lab of several (`program.instances`): a copy of
/// `work` as it is now (after the build), in a folder of its own of the
/// same size limit, with the entry at the same place.
pub fn replicate(plan: &Plan, work: &Workspace, k: u8) -> Result<Workspace> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("netgrade-{k}-"))
        .tempdir_in(janitor::scratch())
        .context("cannot create a work directory for another instance")?;
    let disk = Disk::mount(dir.path(), plan.lab.program.limits.resolve().disk);
    super::submission::copy_submission(work.root(), dir.path()).map_err(|reason| {
        anyhow::anyhow!("cannot copy the work folder for instance {k}: {reason}")
    })?;
    let moved = |p: &Path| {
        p.strip_prefix(work.root())
            .map(|rel| dir.path().join(rel))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    let entry = work.entry.as_ref().map(|e| Entry {
        dir: moved(&e.dir),
        module: e.module.as_deref().map(moved),
        ..e.clone()
    });
    Ok(Workspace { disk, dir, entry })
}

/// A work folder that is a memory file system of a fixed size: what the
/// run's program writes there is bounded, and freed when the run ends.
#[derive(Debug)]
struct Disk {
    path: std::ffi::CString,
}

impl Disk {
    /// Mounts a file system of `size` bytes on `dir` (as root; `None` otherwise).
    fn mount(dir: &Path, size: u64) -> Option<Disk> {
        use std::os::unix::ffi::OsStrExt;
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let options = std::ffi::CString::new(format!("size={size},mode=0700")).ok()?;
        // SAFETY: mount(2) with valid strings.
        let r = unsafe {
            libc::mount(
                c"netgrade-work".as_ptr(),
                path.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        (r == 0).then_some(Disk { path })
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // SAFETY: umount2(2) with a valid string.
        unsafe {
            libc::umount2(self.path.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// Why a submission could not be copied, said plainly when it is bigger
/// than the run's disk.
fn too_big(reason: String, limit: u64, limited: bool) -> String {
    if limited && reason.contains("No space left on device") {
        return format!(
            "the submission is larger than the run's disk ({}): remove large files (videos, data sets, build output) from it, or raise the lab's `program.limits.disk`",
            crate::outcome::human_bytes(limit)
        );
    }
    reason
}

/// The submission's entry in `root`. `Ok(None)`: none, and `--cmd` does not
/// need one; `Err`: why the program cannot start.
fn entry(plan: &Plan, root: &Path) -> Result<Option<Entry>, String> {
    let ports: Vec<u16> = plan.lab.servers.iter().map(|s| s.port).collect();
    let program = &plan.lab.program;
    let Some(cmd) = &plan.opts.cmd else {
        return find_entry(root, program, &ports).map(Some);
    };
    match find_entry_for_command(root, program, &ports, cmd) {
        Ok(e) => Ok(Some(e)),
        Err(reason) if uses_entry(cmd) => Err(format!(
            "--cmd `{cmd}` needs the entry file ({{entry}} or {{stem}}), but none was found: {reason}"
        )),
        Err(_) => Ok(None),
    }
}

/// Writes the lab's data to a directory of its own, for reference servers
/// that serve it (the HTTP server's web root). `None` when the lab has none.
pub fn stage_lab_data(plan: &Plan, _work: &Workspace) -> Result<Option<TempDir>> {
    if plan.lab.files.0.is_empty() {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("netgrade-data-")
        .tempdir_in(janitor::scratch())
        .context("cannot create a directory for the lab's data")?;
    plan.lab
        .files
        .write_to(dir.path())
        .context("cannot write the lab's data")?;
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Options;

    fn lab(role: &str) -> crate::spec::Lab {
        let yaml = format!(
            "name: t\ntitle: t\nprogram:\n  entry: [client.py]\n  role: {role}\nchecks:\n  - {{ id: runs, title: r, points: 1 }}\n"
        );
        let mut lab = crate::spec::load_str("t.yaml", &yaml).unwrap();
        lab.files = crate::spec::DataFiles(vec![("www/index.html".into(), b"hi".to_vec())]);
        lab
    }

    #[test]
    fn a_submission_is_copied_and_its_entry_found() {
        let sub = tempfile::tempdir().unwrap();
        std::fs::create_dir(sub.path().join("src")).unwrap();
        std::fs::write(sub.path().join("src/client.py"), "print(1)").unwrap();
        let lab = lab("client");
        let opts = Options::default();
        let plan = Plan::new(&lab, sub.path(), "s", &opts);
        let rec = Recorder::new();
        let mut notes = Vec::new();
        let work = prepare(&plan, &rec, &mut notes).unwrap();
        assert!(work.cwd().ends_with("src"));
        assert!(work.cwd().join("client.py").is_file());
        assert!(rec.snapshot().exit().is_none());
        // A client lab's data is not put next to the program.
        assert!(!work.cwd().join("www").exists());
        let staged = stage_lab_data(&plan, &work).unwrap().unwrap();
        assert!(staged.path().join("www/index.html").is_file());
    }

    #[test]
    fn no_entry_is_a_program_that_did_not_start() {
        let sub = tempfile::tempdir().unwrap();
        std::fs::write(sub.path().join("notes.txt"), "").unwrap();
        let lab = lab("server");
        let opts = Options::default();
        let plan = Plan::new(&lab, sub.path(), "s", &opts);
        let rec = Recorder::new();
        let work = prepare(&plan, &rec, &mut Vec::new()).unwrap();
        assert!(work.entry.is_none());
        assert!(matches!(
            rec.snapshot().exit(),
            Some((_, ExitKind::DidNotStart { .. }))
        ));
        // A server lab's data goes where the server runs.
        assert!(work.root().join("www/index.html").is_file());
    }

    #[test]
    fn cmd_with_entry_placeholders_needs_an_entry() {
        let sub = tempfile::tempdir().unwrap();
        std::fs::write(sub.path().join("notes.txt"), "").unwrap();
        let lab = lab("client");
        let run = |cmd: &str| {
            let opts = Options {
                cmd: Some(cmd.into()),
                ..Options::default()
            };
            let plan = Plan::new(&lab, sub.path(), "s", &opts);
            let rec = Recorder::new();
            let work = prepare(&plan, &rec, &mut Vec::new()).unwrap();
            (
                work.entry.is_some(),
                rec.snapshot().exit().map(|(_, e)| e.clone()),
            )
        };
        // Without placeholders the command needs no entry: it starts.
        assert_eq!(run("python3 /tmp/ping.py {addr}"), (false, None));
        match run("python3 {entry} {host} {port}") {
            (false, Some(ExitKind::DidNotStart { reason })) => {
                assert!(reason.starts_with("--cmd `python3 {entry} {host} {port}` needs the entry file ({entry} or {stem}), but none was found: no program to run"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Found anyway, in the language of the command, under another name.
        std::fs::write(sub.path().join("ping.py"), "").unwrap();
        assert_eq!(run("python3 {entry}"), (true, None));
    }
}
