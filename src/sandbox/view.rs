//! A private view of the file system per run.
//!
//! A program sees a root of its own, built in its own mount namespace and
//! entered with `pivot_root`:
//!
//! | path | what it is |
//! |---|---|
//! | `/usr`, `/bin`, `/lib*`, `/sbin`, `/etc`, `/opt`, `/var` | the system's, read-only |
//! | the run's work folder, at its own path | writable, the only place that is |
//! | `/tmp`, `/var/tmp`, `/dev/shm` | private, empty, size-limited memory file systems |
//! | `/dev` | `null`, `zero`, `full`, `random`, `urandom`, `tty` and the `fd` links |
//! | `/proc` | the run's own processes (with a PID namespace), `/sys` read-only |
//! | `/run` | empty |
//! | toolchains (folders on the program's `PATH`, Cargo's and rustup's homes …) | read-only |
//! | shared build caches (Go's) | writable views of the cache whose writes stay in the run |
//!
//! Nothing else exists: not `/home` or `/root`, not netgrade's scratch
//! folder (other runs' work, the capture's files), and where the lab's
//! folder, the reports or the submissions lie inside a visible folder, an
//! empty folder (or `/dev/null`) covers them ([`hide`]).
//!
//! The view is planned before the fork ([`Plan::new`]: the stat calls and
//! every string), then made in the child with raw system calls only
//! ([`Plan::enter`]).

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Top-level folders of the system every run sees, read-only (those that exist).
const SYSTEM: [&str; 10] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "opt", "var",
];

/// The device files a run may use.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Where a run's private temporary folders are.
const PRIVATE_TMP: [&str; 3] = ["/tmp", "/var/tmp", "/dev/shm"];

/// Paths no run may see: the lab's folder, the reports, the submissions.
static HIDDEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Adds `paths` to what no run of this process may see.
pub fn hide(paths: impl IntoIterator<Item = PathBuf>) {
    let mut hidden = HIDDEN.lock().unwrap_or_else(|p| p.into_inner());
    for path in paths {
        let path = std::path::absolute(&path).unwrap_or(path);
        if !hidden.contains(&path) {
            hidden.push(path);
        }
    }
}

/// What no run of this process may see.
pub fn hidden() -> Vec<PathBuf> {
    HIDDEN.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// What a run sees of the file system.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// An empty folder the view's root is built on (in the run's own mount
    /// namespace: any number of runs share it).
    pub stage: PathBuf,
    /// The run's work folder: writable, at its own path.
    pub work: PathBuf,
    /// More folders or files to show read-only (toolchains).
    pub read_only: Vec<PathBuf>,
    /// Paths never shown, wherever they are.
    pub hidden: Vec<PathBuf>,
    /// Shared caches shown writable, `(cache, path in the view)`: the run
    /// reads the cache, and what it writes stays in its own memory.
    pub caches: Vec<(PathBuf, PathBuf)>,
    /// Bytes each private temporary folder may hold.
    pub tmp_size: u64,
    /// The user who may write the caches' private layers.
    pub owner: Option<u32>,
}

impl View {
    /// The helper's arguments for this view.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut out: Vec<std::ffi::OsString> = vec![
            "--stage".into(),
            self.stage.clone().into(),
            "--work".into(),
            self.work.clone().into(),
        ];
        for p in &self.read_only {
            out.extend(["--ro".into(), p.into()]);
        }
        for p in &self.hidden {
            out.extend(["--hide".into(), p.into()]);
        }
        for (cache, at) in &self.caches {
            out.extend(["--cache".into(), cache.into(), at.into()]);
        }
        out.extend(["--tmp-size".into(), self.tmp_size.to_string().into()]);
        if let Some(id) = self.owner {
            out.extend(["--owner".into(), id.to_string().into()]);
        }
        out
    }

    /// Takes one of [`View::to_args`]'s options (`flag`, with its values
    /// from `next`); `false` when `flag` is not one of them.
    pub fn parse_arg(
        &mut self,
        flag: &str,
        next: &mut dyn FnMut() -> Result<std::ffi::OsString, String>,
    ) -> Result<bool, String> {
        let number = |s: std::ffi::OsString, what: &str| {
            s.to_str()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(format!("{what} needs a number"))
        };
        match flag {
            "--stage" => self.stage = next()?.into(),
            "--work" => self.work = next()?.into(),
            "--ro" => self.read_only.push(next()?.into()),
            "--hide" => self.hidden.push(next()?.into()),
            "--cache" => {
                let cache = next()?.into();
                self.caches.push((cache, next()?.into()));
            }
            "--tmp-size" => self.tmp_size = number(next()?, flag)?,
            "--owner" => self.owner = Some(number(next()?, flag)? as u32),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// One step of making the view, with every string ready.
#[derive(Debug)]
enum Op {
    /// A folder (mode 0755); one already there is fine.
    Dir(CString),
    /// An empty file to bind something over; one already there is fine.
    File(CString),
    /// A symbolic link `path` → `target`.
    Link { target: CString, path: CString },
    /// A memory file system with `options`.
    Tmpfs { path: CString, options: CString },
    /// `source` bound at `path` (with what is mounted below it).
    Bind {
        source: CString,
        path: CString,
        read_only: bool,
    },
    /// An overlay file system with `options`.
    Overlay { path: CString, options: CString },
    /// `path` given to user and group `id`.
    Own { path: CString, id: u32 },
    /// The mount at `path` made read-only (and those below it, when `below`).
    ReadOnly { path: CString, below: bool },
    /// A fresh `/proc` at `path` (the process's PID namespace).
    Proc(CString),
}

/// A view, planned: the steps the child takes, then `pivot_root`.
#[derive(Debug)]
pub struct Plan {
    stage: CString,
    ops: Vec<Op>,
    cwd: CString,
}

fn cstring(p: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::other(e.to_string()))
}

/// An empty folder to build views on, under `dir` (made if needed).
pub fn stage_in(dir: &Path) -> io::Result<PathBuf> {
    let stage = dir.join(".netgrade-root");
    match std::fs::create_dir(&stage) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    Ok(stage)
}

/// Builds the steps of a [`Plan`], paths relative to the new root.
struct Planner {
    stage: PathBuf,
    ops: Vec<Op>,
    /// Host folders shown read-only (what is below them is visible).
    shown: Vec<PathBuf>,
}

impl Planner {
    fn at(&self, path: &Path) -> PathBuf {
        self.stage.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn push(&mut self, op: impl FnOnce(&Self) -> io::Result<Op>) -> io::Result<()> {
        let op = op(self)?;
        self.ops.push(op);
        Ok(())
    }

    fn dir(&mut self, path: &Path) -> io::Result<()> {
        self.push(|p| Ok(Op::Dir(cstring(&p.at(path))?)))
    }

    /// Every folder from the root down to `path`, `path` included.
    fn dirs(&mut self, path: &Path) -> io::Result<()> {
        let mut chain: Vec<&Path> = path.ancestors().filter(|a| a.parent().is_some()).collect();
        chain.reverse();
        for folder in chain {
            self.dir(folder)?;
        }
        Ok(())
    }

    fn tmpfs(&mut self, path: &Path, options: &str) -> io::Result<()> {
        self.dir(path)?;
        let options = CString::new(options).map_err(io::Error::other)?;
        self.push(|p| {
            Ok(Op::Tmpfs {
                path: cstring(&p.at(path))?,
                options,
            })
        })
    }

    fn bind(&mut self, source: &Path, path: &Path, read_only: bool) -> io::Result<()> {
        self.push(|p| {
            Ok(Op::Bind {
                source: cstring(source)?,
                path: cstring(&p.at(path))?,
                read_only,
            })
        })
    }

    /// Whether `path` (on the host) is seen through a folder already shown.
    fn visible(&self, path: &Path) -> bool {
        self.shown.iter().any(|s| path.starts_with(s))
    }

    /// Shows host folder or file `path` read-only at the same place; when
    /// `again`, also where a cover hides it.
    fn show(&mut self, path: &Path, again: bool) -> io::Result<()> {
        let Ok(real) = std::fs::canonicalize(path) else {
            return Ok(());
        };
        if self.visible(&real) && !again {
            return Ok(());
        }
        if let Some(parent) = real.parent() {
            self.dirs(parent)?;
        }
        if real.is_dir() {
            self.dir(&real)?;
        } else {
            self.push(|p| Ok(Op::File(cstring(&p.at(&real))?)))?;
        }
        self.bind(&real, &real, true)?;
        self.shown.push(real);
        Ok(())
    }

    /// The system's folders, read-only; its top-level links, as links.
    fn system(&mut self) -> io::Result<()> {
        for name in SYSTEM {
            let host = Path::new("/").join(name);
            let Ok(meta) = host.symlink_metadata() else {
                continue;
            };
            if meta.is_symlink() {
                let target = std::fs::read_link(&host)?;
                self.push(|p| {
                    Ok(Op::Link {
                        target: cstring(&target)?,
                        path: cstring(&p.at(&host))?,
                    })
                })?;
            } else if meta.is_dir() {
                self.dir(&host)?;
                self.bind(&host, &host, true)?;
                self.shown.push(host);
            }
        }
        Ok(())
    }

    /// A small `/dev`, `/proc`, `/sys`, an empty `/run`, and the private
    /// temporary folders.
    fn kernel(&mut self, tmp_size: u64, new_proc: bool) -> io::Result<()> {
        let dev = Path::new("/dev");
        self.tmpfs(dev, "mode=0755,size=64k")?;
        for name in DEVICES {
            let host = dev.join(name);
            if host.exists() {
                self.push(|p| Ok(Op::File(cstring(&p.at(&host))?)))?;
                self.bind(&host, &host, false)?;
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let path = dev.join(name);
            self.push(|p| {
                Ok(Op::Link {
                    target: cstring(Path::new(target))?,
                    path: cstring(&p.at(&path))?,
                })
            })?;
        }
        let private = format!("mode=1777,size={tmp_size}");
        for tmp in PRIVATE_TMP {
            let tmp = Path::new(tmp);
            // `/var/tmp` only where `/var` is shown.
            if tmp
                .parent()
                .is_some_and(|p| p == dev || p == Path::new("/") || self.visible(p))
            {
                self.tmpfs(tmp, &private)?;
            }
        }
        self.tmpfs(Path::new("/run"), "mode=0755,size=1m")?;
        let proc = Path::new("/proc");
        self.dir(proc)?;
        if new_proc {
            self.push(|p| Ok(Op::Proc(cstring(&p.at(proc))?)))?;
        } else {
            self.bind(proc, proc, false)?;
        }
        let sys = Path::new("/sys");
        self.dir(sys)?;
        self.bind(sys, sys, true)
    }

    /// Covers `path` where it is visible: an empty folder, or `/dev/null`.
    fn cover(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        let Ok(real) = std::fs::canonicalize(path) else {
            return Ok(None);
        };
        // In a private temporary folder, a folder is covered all the same:
        // the scratch folder shows the run's own work folder, and nothing
        // else, not even room to write.
        let in_tmp = PRIVATE_TMP.iter().any(|t| real.starts_with(t)) && real.is_dir();
        if !self.visible(&real) && !in_tmp {
            return Ok(None);
        }
        if real.is_dir() {
            if let Some(parent) = real.parent() {
                self.dirs(parent)?;
            }
            self.tmpfs(&real, "mode=0755,size=4k")?;
            Ok(Some(real))
        } else {
            self.bind(Path::new("/dev/null"), &real, true)?;
            Ok(None)
        }
    }

    /// Shared caches, each an overlay whose upper layer is the run's own.
    fn caches(
        &mut self,
        caches: &[(PathBuf, PathBuf)],
        size: u64,
        owner: Option<u32>,
    ) -> io::Result<()> {
        if caches.is_empty() {
            return Ok(());
        }
        let layers = Path::new("/run/netgrade");
        self.tmpfs(layers, &format!("mode=0755,size={size}"))?;
        for (n, (cache, at)) in caches.iter().enumerate() {
            let upper = layers.join(format!(".{n}/upper"));
            let work = layers.join(format!(".{n}/work"));
            self.dirs(&upper)?;
            self.dir(&work)?;
            if let Some(id) = owner {
                self.push(|p| {
                    Ok(Op::Own {
                        path: cstring(&p.at(&upper))?,
                        id,
                    })
                })?;
            }
            self.dirs(at)?;
            let options = format!(
                "lowerdir={},upperdir={},workdir={}",
                cache.display(),
                self.at(&upper).display(),
                self.at(&work).display()
            );
            let options = CString::new(options).map_err(io::Error::other)?;
            self.push(|p| {
                Ok(Op::Overlay {
                    path: cstring(&p.at(at))?,
                    options,
                })
            })?;
        }
        Ok(())
    }

    /// Files bound over others: at the target's real place, made when the
    /// view does not have it (a link into `/run`).
    fn binds(&mut self, binds: &[(PathBuf, PathBuf)]) -> io::Result<()> {
        for (source, target) in binds {
            let real = resolve(target);
            if !self.visible(&real) {
                if let Some(parent) = real.parent() {
                    self.dirs(parent)?;
                }
                self.push(|p| Ok(Op::File(cstring(&p.at(&real))?)))?;
            }
            self.bind(source, &real, true)?;
        }
        Ok(())
    }
}

/// `path` with its links followed as far as they exist on the host.
fn resolve(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    for _ in 0..16 {
        match std::fs::read_link(&path) {
            Ok(target) => {
                path = path.parent().unwrap_or(Path::new("/")).join(target);
            }
            Err(_) => break,
        }
    }
    std::fs::canonicalize(&path).unwrap_or_else(|_| {
        // A link to a file that does not exist: tidy `..` by hand.
        let mut out = PathBuf::new();
        for c in path.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    })
}

impl Plan {
    /// Plans `view`, with `binds` (`(source, target)`: files bound over
    /// others), for a program that starts in `cwd`; `new_proc`: mount a
    /// `/proc` of the program's PID namespace.
    pub fn new(
        view: &View,
        binds: &[(PathBuf, PathBuf)],
        cwd: &Path,
        new_proc: bool,
    ) -> io::Result<Plan> {
        let stage = view.stage.clone();
        let mut p = Planner {
            stage: stage.clone(),
            ops: Vec::new(),
            shown: Vec::new(),
        };
        p.system()?;
        p.kernel(view.tmp_size, new_proc)?;
        for path in &view.read_only {
            p.show(path, false)?;
        }
        // Outer folders first; what lies inside one already covered is hidden.
        let mut hidden: Vec<PathBuf> = view
            .hidden
            .iter()
            .map(|h| std::fs::canonicalize(h).unwrap_or_else(|_| h.clone()))
            .collect();
        hidden.sort_by_key(|h| h.components().count());
        let mut covers: Vec<PathBuf> = Vec::new();
        for path in &hidden {
            if !covers.iter().any(|c| path.starts_with(c)) {
                covers.extend(p.cover(path)?);
            }
        }
        // What the run is given by name shows through the covers (the
        // run's trust files in the scratch folder, a file `--cmd` names).
        for path in &view.read_only {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if covers.iter().any(|c| real.starts_with(c)) {
                p.show(&real, true)?;
            }
        }
        p.caches(&view.caches, view.tmp_size, view.owner)?;
        p.binds(binds)?;
        let work = std::fs::canonicalize(&view.work)?;
        if let Some(parent) = work.parent() {
            p.dirs(parent)?;
        }
        p.dir(&work)?;
        p.bind(&work, &work, false)?;
        for cover in covers {
            let path = cstring(&p.at(&cover))?;
            p.ops.push(Op::ReadOnly { path, below: false });
        }
        p.ops.push(Op::ReadOnly {
            path: cstring(&stage)?,
            below: false,
        });
        Ok(Plan {
            stage: cstring(&stage)?,
            ops: p.ops,
            cwd: cstring(cwd)?,
        })
    }

    /// Makes the view and enters it. Runs in the child, in its own mount
    /// namespace (already private), before it gives up root.
    ///
    /// # Safety
    /// Raw system calls only: fit between fork and exec.
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: raw system calls on strings prepared before the fork.
        unsafe {
            libc::umask(0o022);
            mount(c"tmpfs", &self.stage, c"tmpfs", 0, c"mode=0755,size=1m")?;
            for op in &self.ops {
                step(op)?;
            }
            check(libc::chdir(self.stage.as_ptr()))?;
            check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as i32)?;
            check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
            check(libc::chdir(self.cwd.as_ptr()))?;
        }
        Ok(())
    }
}

/// One step of the view.
unsafe fn step(op: &Op) -> io::Result<()> {
    let tolerate = |r: libc::c_int| {
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: raw system calls on prepared strings.
    unsafe {
        match op {
            Op::Dir(path) => tolerate(libc::mkdir(path.as_ptr(), 0o755)),
            Op::File(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                tolerate(fd)?;
                if fd >= 0 {
                    libc::close(fd);
                }
                Ok(())
            }
            Op::Link { target, path } => tolerate(libc::symlink(target.as_ptr(), path.as_ptr())),
            Op::Tmpfs { path, options } => mount(c"tmpfs", path, c"tmpfs", NOSUID_NODEV, options),
            Op::Bind {
                source,
                path,
                read_only: ro,
            } => {
                let flags = libc::MS_BIND | libc::MS_REC;
                check(libc::mount(
                    source.as_ptr(),
                    path.as_ptr(),
                    std::ptr::null(),
                    flags,
                    std::ptr::null(),
                ))?;
                if *ro {
                    read_only(path, true)?;
                }
                Ok(())
            }
            Op::Overlay { path, options } => {
                mount(c"overlay", path, c"overlay", NOSUID_NODEV, options)
            }
            Op::Own { path, id } => check(libc::chown(path.as_ptr(), *id, *id)),
            Op::ReadOnly { path, below } => read_only(path, *below),
            Op::Proc(path) => mount(c"proc", path, c"proc", NOSUID_NODEV | libc::MS_NOEXEC, c""),
        }
    }
}

unsafe fn mount(
    source: &std::ffi::CStr,
    path: &std::ffi::CStr,
    fstype: &std::ffi::CStr,
    flags: libc::c_ulong,
    options: &std::ffi::CStr,
) -> io::Result<()> {
    // SAFETY: mount(2) with valid strings.
    check(unsafe {
        libc::mount(
            source.as_ptr(),
            path.as_ptr(),
            fstype.as_ptr(),
            flags,
            options.as_ptr().cast(),
        )
    })
}

/// `mount_setattr(2)`'s argument.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the mount at `path` read-only, and every mount below it when `below`.
unsafe fn read_only(path: &std::ffi::CStr, below: bool) -> io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr(2) (Linux 5.12) with a valid argument; before
    // it, a remount of the top mount only.
    unsafe {
        let r = libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            if below { AT_RECURSIVE } else { 0 },
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        );
        if r == 0 {
            return Ok(());
        }
        check(libc::mount(
            std::ptr::null(),
            path.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID,
            std::ptr::null(),
        ))
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let view = View {
            stage: "/tmp/s".into(),
            work: "/tmp/w".into(),
            read_only: vec!["/opt/go".into()],
            hidden: vec!["/srv/lab".into()],
            caches: vec![("/var/cache/x".into(), "/run/netgrade/x".into())],
            tmp_size: 1 << 20,
            owner: Some(64000),
        };
        let args = view.to_args();
        let mut back = View::default();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut next = || it.next().ok_or_else(|| "missing".to_string());
            assert!(back.parse_arg(flag.to_str().unwrap(), &mut next).unwrap());
        }
        assert_eq!(back, view);
    }

    #[test]
    fn links_are_followed_to_where_the_file_would_be() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("../run/x/resolv.conf", dir.path().join("etc/resolv.conf"))
            .unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            resolve(&dir.path().join("etc/resolv.conf")),
            real.join("run/x/resolv.conf")
        );
    }
}
