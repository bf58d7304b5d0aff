//! What happens in a student's process between fork and exec: the run's
//! network namespace, a private mount namespace with the capture's files
//! bound over `/etc`, and a PID namespace whose first process is netgrade's.
//!
//! With a PID namespace the process tree of a run is
//!
//! ```text
//! netgrade ── relay (host PID namespace: what netgrade waits for)
//!               └── init (PID 1 of the run's namespace)
//!                     └── the program, and everything it starts
//! ```
//!
//! - The *program* is PID 2 or more: it cannot escape the namespace (setsid,
//!   double forks and daemons stay inside), and it cannot signal or see
//!   netgrade's processes as its own.
//! - *init* reaps orphans, reports the program's wait status to the relay,
//!   and lives until netgrade kills it after counting what the program left
//!   behind. When init dies the kernel kills every process of the namespace.
//!   It also watches a lifeline pipe whose only writer is netgrade: if
//!   netgrade dies in any way (even SIGKILL), init exits, and the run with it.
//! - The *relay* ignores SIGTERM (the program gets it through the process
//!   group), and ends the way the program ended (same status, same signal),
//!   so netgrade sees the program's exit as its child's.
//!
//! Everything here runs in a forked child of a multithreaded process: only
//! raw system calls, no allocation. Init is a child of netgrade itself
//! (`CLONE_PARENT`), so netgrade reaps it when the run ends.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// The per-process lifeline: netgrade holds the write end for its whole
/// life; every run's init polls the read end and exits on end-of-file.
struct Lifeline {
    read: OwnedFd,
    _write: OwnedFd,
}

static LIFELINE: OnceLock<Option<Lifeline>> = OnceLock::new();

/// The lifeline's read end (made on first use).
pub fn lifeline() -> Option<RawFd> {
    LIFELINE
        .get_or_init(|| {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
            Some(Lifeline {
                read,
                _write: write,
            })
        })
        .as_ref()
        .map(|l| l.read.as_raw_fd())
}

/// Everything the child needs, prepared (and allocated) before the fork.
#[derive(Debug)]
pub struct ChildSetup {
    netns: Option<RawFd>,
    binds: Vec<(CString, CString)>,
    pid_namespace: Option<RawFd>,
    /// The user and group the program runs as (see [`super::identity`]).
    user: Option<u32>,
    /// The run's own view of the file system (see [`super::view`]).
    view: Option<super::view::Plan>,
    /// Without root: a user namespace mapping netgrade's user to itself.
    userns: Option<UserNs>,
}

/// The maps of a user namespace in which the program is netgrade's user.
#[derive(Debug)]
struct UserNs {
    uid_map: CString,
    gid_map: CString,
}

impl ChildSetup {
    /// Prepares the setup: join `netns`, bind each `(source, target)` over
    /// the file system in a private mount namespace, and start a PID
    /// namespace with netgrade's init when `pid_namespace` is set.
    pub fn new(
        netns: Option<RawFd>,
        binds: &[(std::path::PathBuf, std::path::PathBuf)],
        pid_namespace: bool,
    ) -> io::Result<ChildSetup> {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &std::path::Path| {
            CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::other(e.to_string()))
        };
        let binds = binds
            .iter()
            .map(|(s, t)| Ok((c(s)?, c(t)?)))
            .collect::<io::Result<Vec<_>>>()?;
        let pid_namespace = if pid_namespace {
            Some(lifeline().ok_or_else(|| io::Error::other("cannot make a lifeline pipe"))?)
        } else {
            None
        };
        Ok(ChildSetup {
            netns,
            binds,
            pid_namespace,
            user: None,
            view: None,
            userns: None,
        })
    }

    /// The program sees `view` of the file system. Without root, this needs
    /// a user namespace of its own, in which the program keeps netgrade's
    /// user (and so no capability once it runs).
    pub fn with_view(mut self, view: Option<super::view::Plan>) -> Self {
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if view.is_some() && uid != 0 {
            let map = |id: u32| CString::new(format!("{id} {id} 1\n")).expect("no NUL");
            self.userns = Some(UserNs {
                uid_map: map(uid),
                gid_map: map(gid),
            });
        }
        self.view = view;
        self
    }

    /// The program becomes user and group `id` last, after the namespaces.
    pub fn as_user(mut self, id: Option<u32>) -> Self {
        self.user = id;
        self
    }

    /// Like [`ChildSetup::new`], with the lifeline's read end given (a PID
    /// namespace is wanted when it is).
    pub fn with_lifeline(
        netns: Option<RawFd>,
        binds: &[(std::path::PathBuf, std::path::PathBuf)],
        lifeline: Option<RawFd>,
    ) -> io::Result<ChildSetup> {
        let mut setup = ChildSetup::new(netns, binds, false)?;
        setup.pid_namespace = lifeline;
        Ok(setup)
    }

    /// Runs in the child between fork and exec.
    ///
    /// # Safety
    /// Only in a freshly forked child: it may fork again and never returns
    /// in the relay and init processes.
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: raw system calls on values prepared before the fork.
        unsafe {
            if let Some(maps) = &self.userns {
                user_namespace(&maps.uid_map, &maps.gid_map)?;
            }
            if let Some(fd) = self.netns {
                check(libc::setns(fd, libc::CLONE_NEWNET))?;
            }
            if !self.binds.is_empty() || self.view.is_some() {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Our mounts stay ours, and the host's changes stay out.
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                // With a view, the binds are part of it.
                for (source, target) in self.binds.iter().filter(|_| self.view.is_none()) {
                    check(libc::mount(
                        source.as_ptr(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND,
                        std::ptr::null(),
                    ))?;
                }
            }
            if let Some(lifeline) = self.pid_namespace {
                pid_namespace(lifeline)?;
            }
            // In the program, inside its PID namespace: its `/proc` is its own.
            if let Some(view) = &self.view {
                view.enter()?;
            }
        }
        if let Some(id) = self.user {
            super::identity::become_user(id)?;
        }
        Ok(())
    }
}

/// Enters a new user namespace with these maps (`"ID ID 1\n"`: the process
/// keeps its user and group). Raw system calls only.
///
/// # Safety
/// In a single-threaded process (a fresh fork, or the helper).
pub unsafe fn user_namespace(uid_map: &std::ffi::CStr, gid_map: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: raw system calls on strings prepared before the fork.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWUSER))?;
        write_file(c"/proc/self/setgroups", c"deny")?;
        write_file(c"/proc/self/uid_map", uid_map)?;
        write_file(c"/proc/self/gid_map", gid_map)
    }
}

unsafe fn write_file(path: &std::ffi::CStr, text: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: open/write/close with valid strings.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let bytes = text.to_bytes();
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written != bytes.len() as isize {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Forks the relay / init / program chain; returns only in the program.
///
/// # Safety
/// See [`ChildSetup::enter`].
unsafe fn pid_namespace(lifeline: RawFd) -> io::Result<()> {
    // SAFETY: raw system calls; the relay and init never return.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWPID))?;
        let mut status = [0 as RawFd; 2];
        check(libc::pipe2(status.as_mut_ptr(), libc::O_CLOEXEC))?;
        // Init is made netgrade's own child (CLONE_PARENT), so netgrade reaps
        // it after killing it, whatever the relay did meanwhile.
        let relay_pid = libc::getpid();
        let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
        match libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) {
            -1 => return Err(io::Error::last_os_error()),
            0 => {}
            _init => relay(status[0]),
        }
        // PID 1 of the new namespace.
        libc::close(status[0]);
        match libc::fork() {
            -1 => libc::_exit(127),
            0 => {
                libc::close(status[1]);
                Ok(())
            }
            program => init(program, status[1], lifeline, relay_pid),
        }
    }
}

/// The relay: waits for init's report, then ends like the program.
unsafe fn relay(status: RawFd) -> ! {
    // SAFETY: raw system calls in a process that never returns to Rust code.
    unsafe {
        close_all_but(&[status]);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(signal, libc::SIG_IGN);
        }
        let mut word = [0u8; 4];
        let mut got = 0usize;
        while got < 4 {
            let n = libc::read(status, word[got..].as_mut_ptr().cast(), 4 - got);
            if n > 0 {
                got += n as usize;
            } else if n == 0 || *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        // No report: init was killed before the program ended.
        let wait_status = if got == 4 {
            i32::from_ne_bytes(word)
        } else {
            libc::SIGKILL
        };
        if libc::WIFEXITED(wait_status) {
            libc::_exit(libc::WEXITSTATUS(wait_status));
        }
        let signal = if libc::WIFSIGNALED(wait_status) {
            libc::WTERMSIG(wait_status)
        } else {
            libc::SIGKILL
        };
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::kill(libc::getpid(), libc::SIGKILL);
        libc::_exit(128 + signal)
    }
}

/// The name of the init whose relay is `relay`: `ng-init-<relay's pid>`,
/// how netgrade finds the namespace of a run (see [`namespace_members`]).
fn init_name(relay: libc::pid_t) -> [u8; 16] {
    let mut name = *b"ng-init-\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 7];
    let mut n = relay.max(0) as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for i in 0..len {
        name[8 + i] = digits[len - 1 - i];
    }
    name
}

/// Every process in the PID namespace of the run whose relay (the
/// program's process group) is `relay`, its init included.
pub fn namespace_members(relay: i32) -> Vec<i32> {
    let name = init_name(relay);
    let wanted = std::ffi::CStr::from_bytes_until_nul(&name)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pids: Vec<i32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let comm = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(init) = pids.iter().copied().find(|p| comm(*p).trim_end() == wanted) else {
        return Vec::new();
    };
    let Some(theirs) = ns(init) else {
        return Vec::new();
    };
    pids.into_iter()
        .filter(|p| ns(*p).as_ref() == Some(&theirs))
        .collect()
}

/// Init: reaps every process of the namespace, reports the program's wait
/// status, and exits when netgrade's lifeline closes.
unsafe fn init(program: libc::pid_t, status: RawFd, lifeline: RawFd, relay: libc::pid_t) -> ! {
    // SAFETY: raw system calls in a process that never returns to Rust code.
    unsafe {
        let name = init_name(relay);
        libc::prctl(libc::PR_SET_NAME, name.as_ptr());
        // Out of the program's process group (the program, forked before,
        // stays in it): netgrade waits for that group, and init outlives it.
        libc::setpgid(0, 0);
        close_all_but(&[status, lifeline]);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let children = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        let mut reported = false;
        loop {
            loop {
                let mut wait_status = 0;
                let pid = libc::waitpid(-1, &mut wait_status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == program && !reported {
                    let word = wait_status.to_ne_bytes();
                    libc::write(status, word.as_ptr().cast(), 4);
                    libc::close(status);
                    reported = true;
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: lifeline,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: children,
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a signalfd, look for exited children now and then.
            let wait = if children < 0 { 100 } else { -1 };
            if libc::poll(fds.as_mut_ptr(), 2, wait) < 0 {
                continue;
            }
            if fds[0].revents != 0 {
                libc::_exit(0);
            }
            if fds[1].revents != 0 {
                let mut info = [0u8; 128];
                libc::read(children, info.as_mut_ptr().cast(), info.len());
            }
        }
    }
}

/// Closes every descriptor but `keep` (at most two).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut kept = [RawFd::MAX; 2];
    for (slot, fd) in kept.iter_mut().zip(keep) {
        *slot = *fd;
    }
    if kept[0] > kept[1] {
        kept.swap(0, 1);
    }
    let mut from: RawFd = 0;
    // SAFETY: close_range(2) on ranges that exclude the kept descriptors.
    unsafe {
        for fd in kept {
            if fd == RawFd::MAX {
                break;
            }
            if fd > from {
                close_range(from, fd - 1);
            }
            from = fd + 1;
        }
        close_range(from, RawFd::MAX);
    }
}

unsafe fn close_range(first: RawFd, last: RawFd) {
    // SAFETY: closing descriptors this process owns.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0) < 0 {
            // Before Linux 5.9: close them one by one (up to a sane bound).
            for fd in first..last.min(4096) {
                libc::close(fd);
            }
        }
    }
}

/// Waits for netgrade's killed init `pid` (its child) in the background, so
/// no zombie is left: the init's exit waits for its whole namespace to go.
pub fn reap(pid: i32) {
    let wait = move || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn_blocking(wait)),
        Err(_) => drop(std::thread::spawn(wait)),
    }
}

/// Whether `pid` is the init of its PID namespace (its innermost PID is 1).
pub fn is_namespace_init(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("NSpid:")).map(|ids| {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                ids.len() > 1 && ids.last() == Some(&"1")
            })
        })
        .unwrap_or(false)
}
