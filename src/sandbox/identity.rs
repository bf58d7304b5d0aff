//! An unprivileged identity per run: when netgrade runs as root, each
//! program runs as its own user and group, taken from a range netgrade owns
//! (64000 to 64499, below `nobody`), so no program runs as root, none can
//! signal or read another run's processes or files, and everything a run
//! owns is found by its uid.
//!
//! A uid is held by an exclusive `flock` on a file of its own under
//! `/run/netgrade-ids` (made by root, closed to others), so netgrade
//! processes running at the same time never hand out the same one; the
//! kernel releases the lock when the holder ends, however it ends.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The first uid (and gid) of the range.
pub const FIRST: u32 = 64000;
/// How many identities the range holds.
pub const COUNT: u32 = 500;

/// A uid and gid held for one run; released when dropped.
#[derive(Debug)]
pub struct Identity {
    /// The user and group id.
    pub id: u32,
    _lock: File,
}

impl Identity {
    /// A free identity, when netgrade runs as root; `None` otherwise or
    /// when all are taken.
    pub fn claim() -> Option<Identity> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let dir = locks_dir()?;
        // Each claim starts where the last one of this process ended, so a
        // batch does not try every id its other runs hold.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let start = NEXT.load(Ordering::Relaxed);
        let identity = (0..COUNT)
            .map(|n| (start + n) % COUNT)
            .find_map(|n| Identity::try_take(&dir, FIRST + n))?;
        NEXT.store((identity.id - FIRST + 1) % COUNT, Ordering::Relaxed);
        Some(identity)
    }

    fn try_take(dir: &Path, id: u32) -> Option<Identity> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(id.to_string()))
            .ok()?;
        // SAFETY: flock on a descriptor we own.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        locked.then_some(Identity { id, _lock: file })
    }

    /// Gives `path` and everything under it to this identity (symbolic
    /// links themselves, never what they point to), and closes its top to
    /// everyone else.
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        chown_tree(path, self.id)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
    }
}

impl Drop for Identity {
    /// Removes what the run's user left in the shared temporary folders,
    /// so the next run under the same identity finds none of it.
    fn drop(&mut self) {
        for dir in SHARED_TMP {
            remove_owned(Path::new(dir), self.id);
        }
    }
}

/// Folders every user may write to.
const SHARED_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Removes the entries of `dir` owned by `id`.
fn remove_owned(dir: &Path, id: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.uid() != id {
            continue;
        }
        let _ = if meta.is_dir() {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
    }
}

/// The folder of the lock files, made if needed.
fn locks_dir() -> Option<PathBuf> {
    let dir = PathBuf::from("/run/netgrade-ids");
    let made = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    (made.is_ok() || dir.is_dir()).then_some(dir)
}

fn chown_tree(path: &Path, id: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(id), Some(id))?;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), id)?;
        }
    }
    Ok(())
}

/// Becomes user and group `id`, with no supplementary groups and no way to
/// gain privileges back (setuid binaries stay powerless). Only raw system
/// calls: fit between fork and exec.
pub fn become_user(id: u32) -> std::io::Result<()> {
    // SAFETY: raw system calls with plain arguments.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setresgid(id, id, id) != 0
            || libc::setresuid(id, id, id) != 0
            || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_claims_never_share_an_identity() {
        let (Some(a), Some(b)) = (Identity::claim(), Identity::claim()) else {
            return; // not root here
        };
        assert_ne!(a.id, b.id);
        assert!((FIRST..FIRST + COUNT).contains(&a.id));
        let taken = a.id;
        drop(a);
        let dir = locks_dir().unwrap();
        assert!(
            Identity::try_take(&dir, taken).is_some(),
            "a released id is free again"
        );
        assert!(
            Identity::try_take(&dir, b.id).is_none(),
            "a held one is not"
        );
    }

    #[test]
    fn what_the_user_left_in_tmp_goes_with_the_identity() {
        let Some(me) = Identity::claim() else {
            return;
        };
        let mine = Path::new("/tmp").join(format!("netgrade-left-{}", me.id));
        std::fs::create_dir_all(mine.join("deep")).unwrap();
        std::fs::write(mine.join("deep/f"), "x").unwrap();
        chown_tree(&mine, me.id).unwrap();
        let theirs = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        drop(me);
        assert!(!mine.exists());
        assert!(theirs.path().exists(), "files of other users stay");
    }

    #[test]
    fn a_tree_is_given_to_the_identity_and_closed() {
        let Some(me) = Identity::claim() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        me.own(dir.path()).unwrap();
        use std::os::unix::fs::MetadataExt;
        for p in ["", "sub", "sub/f"] {
            assert_eq!(std::fs::metadata(dir.path().join(p)).unwrap().uid(), me.id);
        }
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);
        assert_eq!(std::fs::metadata(dir.path()).unwrap().mode() & 0o777, 0o700);
    }
}
