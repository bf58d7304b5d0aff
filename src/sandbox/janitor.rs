//! The janitor: when netgrade ends in any way — even SIGKILL, where no
//! destructor runs — nothing of its runs may remain. The janitor is a small
//! process of its own session (a signal to netgrade's process group does
//! not reach it), forked before netgrade starts any thread. It waits on the
//! read end of netgrade's lifeline pipe; when netgrade is gone the pipe
//! reports end-of-file, and the janitor kills every process still working
//! in netgrade's scratch folder and removes the folder.
//!
//! Runs inside PID namespaces die by themselves at that moment (their init
//! watches the same lifeline); the janitor covers the rest: work folders,
//! and programs run without a PID namespace (no root).

use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static SCRATCH: OnceLock<PathBuf> = OnceLock::new();

/// Where runs make their temporary folders: the janitor's folder when one
/// was set up, else the system's temporary directory.
pub fn scratch() -> PathBuf {
    SCRATCH.get().cloned().unwrap_or_else(std::env::temp_dir)
}

/// Makes `base` the scratch folder and starts its janitor.
///
/// # Safety
/// Must be called while the process has a single thread (before the async
/// runtime starts): the janitor is a fork that allocates.
pub unsafe fn start(base: &Path) -> io::Result<()> {
    let lifeline =
        super::init::lifeline().ok_or_else(|| io::Error::other("cannot make the lifeline pipe"))?;
    let _ = SCRATCH.set(base.to_path_buf());
    // SAFETY: single-threaded (the caller's promise), so the child may run
    // ordinary code, allocation included.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            janitor(lifeline, base);
            // SAFETY: leaving the janitor without running the parent's exit code.
            unsafe { libc::_exit(0) }
        }
        _ => Ok(()),
    }
}

fn janitor(lifeline: RawFd, base: &Path) {
    // SAFETY: getppid has no preconditions; netgrade is alive now.
    let netgrade = unsafe { libc::getppid() } as u32;
    // SAFETY: plain system calls on our own process.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_NAME, c"netgrade-janitor".as_ptr());
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_IGN);
        }
        for fd in 0..1024 {
            if fd != lifeline {
                libc::close(fd);
            }
        }
        let mut byte = 0u8;
        while libc::read(lifeline, (&raw mut byte).cast(), 1) != 0 {
            if *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
    }
    if base.exists() {
        kill_working_in(base);
        unmount_under(base);
        let _ = std::fs::remove_dir_all(base);
    }
    super::limits::sweep(Some(netgrade));
}

/// Unmounts every file system mounted inside `base` (the runs' work folders).
pub fn unmount_under(base: &Path) {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(base) && p != base)
        .collect();
    // The deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        use std::os::unix::ffi::OsStrExt;
        if let Ok(path) = std::ffi::CString::new(point.as_os_str().as_bytes()) {
            // SAFETY: umount2(2) with a valid string.
            unsafe {
                libc::umount2(path.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// Kills every process whose working directory is inside `base`.
pub fn kill_working_in(base: &Path) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()) {
        let inside = std::fs::read_link(format!("/proc/{pid}/cwd"))
            .map(|cwd| cwd.starts_with(base))
            .unwrap_or(false);
        if inside {
            // SAFETY: kill(2).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}
