//! What a run's program may use: processes, memory, CPU time, file size and
//! open files.
//!
//! Each limit is enforced the strongest way this machine allows. With a
//! cgroup (v2 where the machine delegates the `pids` and `memory`
//! controllers, else the v1 hierarchies when they are mounted and
//! writable, as root) the whole run shares `pids.max` and the memory limit,
//! and netgrade learns afterwards whether the kernel had to enforce them.
//! Otherwise, and always for CPU time, file size and open files, resource
//! limits (`setrlimit`) hold each process: `RLIMIT_NPROC` counts processes
//! per user (never for root), `RLIMIT_DATA` caps each process's writable
//! memory. [`Enforcement`] says which was in force, for the report.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::outcome::human_bytes;

/// The limits of one run's program (and of its build step).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Processes and threads at once.
    pub processes: u64,
    /// Memory, bytes.
    pub memory: u64,
    /// CPU time of each process.
    pub cpu: Duration,
    /// Largest file it may write, bytes.
    pub file_size: u64,
    /// Open files of each process.
    pub open_files: u64,
    /// Bytes the work folder, and each private temporary folder, may hold.
    pub disk: u64,
    /// CPUs the whole run may keep busy at once, in thousandths (1000: one CPU).
    pub cpu_share: u64,
}

impl Default for Limits {
    /// 256 processes, 1 GiB of memory, 60 s of CPU, 256 MiB files, 1024
    /// open files, 512 MiB of disk, one CPU.
    fn default() -> Self {
        Limits {
            processes: 256,
            memory: 1 << 30,
            cpu: Duration::from_secs(60),
            file_size: 256 << 20,
            open_files: 1024,
            disk: 512 << 20,
            cpu_share: 1000,
        }
    }
}

impl Limits {
    /// Sets the resource limits of the calling process: no core dumps, and
    /// each limit (`processes`/`memory` only when no cgroup holds them).
    /// Only async-signal-safe calls: fit between fork and exec.
    pub fn apply(&self, cgroup: bool) {
        let set = |resource, value: u64| {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            // SAFETY: setrlimit on our own process with a valid struct.
            unsafe { libc::setrlimit(resource, &limit) };
        };
        set(libc::RLIMIT_CORE, 0);
        set(libc::RLIMIT_FSIZE, self.file_size);
        set(libc::RLIMIT_NOFILE, self.open_files);
        // The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL.
        let cpu = self.cpu.as_secs().max(1);
        let limit = libc::rlimit {
            rlim_cur: cpu,
            rlim_max: cpu + 1,
        };
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_CPU, &limit) };
        if !cgroup {
            set(libc::RLIMIT_NPROC, self.processes);
            set(libc::RLIMIT_DATA, self.memory);
        }
    }

    /// The limits to set in a program's processes: without a cgroup,
    /// `RLIMIT_NPROC` counts every process of the user, so the user's
    /// processes running now are added to the run's allowance (root is not
    /// held by it at all).
    pub fn for_process(&self, cgroup: bool) -> Limits {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if cgroup || uid == 0 {
            return *self;
        }
        Limits {
            processes: self.processes + user_processes(uid),
            ..*self
        }
    }

    /// The run's CPU time per [`CPU_PERIOD_US`], microseconds.
    fn cpu_quota_us(&self) -> u64 {
        (CPU_PERIOD_US * self.cpu_share / 1000).max(1_000)
    }

    /// The limits as arguments of the sandbox helper (those a process sets).
    pub fn to_args(&self) -> String {
        format!(
            "{},{},{},{},{}",
            self.processes,
            self.memory,
            self.cpu.as_millis(),
            self.file_size,
            self.open_files
        )
    }

    /// Parses [`Limits::to_args`].
    pub fn from_args(text: &str) -> Option<Limits> {
        let v: Vec<u64> = text
            .split(',')
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        let [processes, memory, cpu_ms, file_size, open_files] = v[..] else {
            return None;
        };
        Some(Limits {
            processes,
            memory,
            cpu: Duration::from_millis(cpu_ms),
            file_size,
            open_files,
            ..Limits::default()
        })
    }

    /// The limit that stopped a program, from how it ended and what the
    /// cgroup saw: `used more than 1 GiB of memory (the run's limit)`.
    pub fn exceeded(&self, signal: Option<i32>, cgroup: Option<&Usage>) -> Option<String> {
        match signal {
            Some(libc::SIGKILL) if cgroup.is_some_and(|u| u.oom_killed) => Some(format!(
                "used more than {} of memory (the run's limit)",
                human_bytes(self.memory)
            )),
            Some(libc::SIGXCPU) => Some(format!(
                "used more than {} s of CPU time (the run's limit)",
                self.cpu.as_secs()
            )),
            Some(libc::SIGXFSZ) => Some(format!(
                "tried to write a file larger than {} (the run's limit)",
                human_bytes(self.file_size)
            )),
            _ => None,
        }
    }

    /// A diagnosis for a run whose cgroup refused a process or killed one
    /// for memory (the program may have ended some other way).
    pub fn explain(&self, cgroup: &Usage) -> Option<String> {
        if cgroup.pids_refused {
            return Some(format!(
                "the run reached its limit of {} processes: a fork or a new thread was refused (a loop that starts processes or threads without end?)",
                self.processes
            ));
        }
        cgroup.oom_killed.then(|| {
            format!(
                "a process of the run was killed for using more than {} of memory (the run's limit)",
                human_bytes(self.memory)
            )
        })
    }
}

/// How the process count and memory limits were enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// A cgroup v2 of the run.
    CgroupV2,
    /// cgroup v1 `pids` and `memory` groups of the run.
    CgroupV1,
    /// Per-process resource limits only.
    Rlimits,
}

impl Enforcement {
    /// For the report: how processes and memory were limited.
    pub fn describe(self) -> &'static str {
        match self {
            Enforcement::CgroupV2 => "a cgroup (v2) for the whole run",
            Enforcement::CgroupV1 => "cgroups (v1 pids and memory) for the whole run",
            Enforcement::Rlimits => {
                "per-process resource limits only (no cgroup available: processes are counted per user, and not at all for root)"
            }
        }
    }
}

/// What the kernel had to enforce in a run's cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// A process was killed for memory.
    pub oom_killed: bool,
    /// A fork was refused at `pids.max`.
    pub pids_refused: bool,
}

/// The cgroup(s) of one run, removed (with anything left in them killed)
/// when dropped.
#[derive(Debug)]
pub struct Cgroup {
    kind: Enforcement,
    /// The run's directories: one (v2) or `pids`, `memory` and `cpu` (v1).
    dirs: Vec<PathBuf>,
    /// Whether the run's CPU share is enforced (the `cpu` controller).
    cpu: bool,
}

const ROOT: &str = "/sys/fs/cgroup";
/// The period of the CPU share, microseconds: short, so that a program
/// held to its share (a JVM starting its threads) waits at most a few
/// milliseconds at a time, never long enough to change a timing verdict.
const CPU_PERIOD_US: u64 = 10_000;

impl Cgroup {
    /// Makes the run's cgroup with `limits`, if this machine lets netgrade.
    pub fn create(limits: &Limits) -> Option<Cgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "netgrade-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Cgroup::v2(&name, limits)
            .or_else(|_| Cgroup::v1(&name, limits))
            .ok()
    }

    fn v2(name: &str, limits: &Limits) -> io::Result<Cgroup> {
        let root = Path::new(ROOT);
        let controllers = std::fs::read_to_string(root.join("cgroup.subtree_control"))?;
        let has = |c: &str| controllers.split_whitespace().any(|w| w == c);
        if !(has("pids") && has("memory")) {
            return Err(io::Error::other("pids and memory are not delegated"));
        }
        let dir = root.join(name);
        std::fs::create_dir(&dir)?;
        let mut group = Cgroup {
            kind: Enforcement::CgroupV2,
            dirs: vec![dir.clone()],
            cpu: false,
        };
        std::fs::write(dir.join("pids.max"), limits.processes.to_string())?;
        std::fs::write(dir.join("memory.max"), limits.memory.to_string())?;
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        // Where the `cpu` controller is delegated too.
        group.cpu = std::fs::write(
            dir.join("cpu.max"),
            format!("{} {CPU_PERIOD_US}", limits.cpu_quota_us()),
        )
        .is_ok();
        Ok(group)
    }

    fn v1(name: &str, limits: &Limits) -> io::Result<Cgroup> {
        let pids = Path::new(ROOT).join("pids").join(name);
        let memory = Path::new(ROOT).join("memory").join(name);
        std::fs::create_dir(&pids)?;
        let mut group = Cgroup {
            kind: Enforcement::CgroupV1,
            dirs: vec![pids.clone()],
            cpu: false,
        };
        std::fs::create_dir(&memory)?;
        group.dirs.push(memory.clone());
        std::fs::write(pids.join("pids.max"), limits.processes.to_string())?;
        std::fs::write(
            memory.join("memory.limit_in_bytes"),
            limits.memory.to_string(),
        )?;
        let _ = std::fs::write(
            memory.join("memory.memsw.limit_in_bytes"),
            limits.memory.to_string(),
        );
        // The CPU share, where the `cpu` hierarchy is mounted.
        let cpu = Path::new(ROOT).join("cpu").join(name);
        if std::fs::create_dir(&cpu).is_ok() {
            group.dirs.push(cpu.clone());
            std::fs::write(cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US.to_string())?;
            std::fs::write(
                cpu.join("cpu.cfs_quota_us"),
                limits.cpu_quota_us().to_string(),
            )?;
            group.cpu = true;
        }
        Ok(group)
    }

    /// How it enforces the limits.
    pub fn kind(&self) -> Enforcement {
        self.kind
    }

    /// Whether it holds the run to its CPU share.
    pub fn limits_cpu(&self) -> bool {
        self.cpu
    }

    /// The files a process writes `0` into to join the run's cgroup(s).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// What the kernel had to enforce so far.
    pub fn usage(&self) -> Usage {
        let read = |dir: &PathBuf, file: &str| std::fs::read_to_string(dir.join(file));
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut usage = Usage::default();
        for dir in &self.dirs {
            if let Ok(events) = read(dir, "memory.events") {
                usage.oom_killed |= field(&events, "oom_kill ") > 0;
            }
            if let Ok(events) = read(dir, "pids.events") {
                usage.pids_refused |= field(&events, "max ") > 0;
            }
            if let Ok(control) = read(dir, "memory.oom_control") {
                usage.oom_killed |= field(&control, "oom_kill ") > 0;
            }
        }
        usage
    }

    /// Kills every process still in the run's cgroup(s).
    pub fn kill_all(&self) {
        for _ in 0..100 {
            let pids = self.members();
            if pids.is_empty() {
                return;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn members(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self
            .procs_files()
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        for dir in &self.dirs {
            // A cgroup whose last process is still exiting cannot go yet.
            for _ in 0..200 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// How many processes (and threads) user `uid` has now.
fn user_processes(uid: u32) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .filter(|status| {
            status.lines().any(|l| {
                l.strip_prefix("Uid:")
                    .and_then(|r| r.split_whitespace().next())
                    .is_some_and(|real| real == uid.to_string())
            })
        })
        .map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:")?.trim().parse::<u64>().ok())
                .unwrap_or(1)
        })
        .sum()
}

/// Removes the run cgroups (`netgrade-<pid>-<n>`) of netgrade process
/// `owner`, and of every netgrade process that is gone, killing what is
/// still in them: what a netgrade that was killed, or that exited while a
/// run's processes were still ending, left behind.
pub fn sweep(owner: Option<u32>) {
    for root in [
        ROOT,
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/cpu",
    ] {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("netgrade-")
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let gone = !Path::new(&format!("/proc/{pid}")).exists();
            if Some(pid) == owner || gone {
                drop(Cgroup {
                    kind: Enforcement::CgroupV1,
                    dirs: vec![entry.path()],
                    cpu: false,
                });
            }
        }
    }
}

/// Joins the cgroups whose `cgroup.procs` files are `files` (prepared before
/// the fork): writes `0`, "this process". Only raw system calls.
///
/// # Safety
/// Each pointer is a valid NUL-terminated path.
pub unsafe fn join(files: &[std::ffi::CString]) -> io::Result<()> {
    for file in files {
        // SAFETY: a valid path; open, write and close are async-signal-safe.
        unsafe {
            let fd = libc::open(file.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let written = libc::write(fd, c"0".as_ptr().cast(), 1);
            libc::close(fd);
            if written != 1 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_trip_through_the_helpers_arguments() {
        let limits = Limits {
            processes: 7,
            memory: 3 << 20,
            cpu: Duration::from_millis(2500),
            file_size: 9,
            open_files: 64,
            ..Limits::default()
        };
        assert_eq!(Limits::from_args(&limits.to_args()), Some(limits));
        assert_eq!(Limits::from_args("1,2,3"), None);
        assert_eq!(Limits::from_args("1,2,x,4,5"), None);
    }

    #[test]
    fn the_outcome_names_the_limit() {
        let limits = Limits::default();
        let oom = Usage {
            oom_killed: true,
            ..Usage::default()
        };
        let said = limits.exceeded(Some(libc::SIGKILL), Some(&oom)).unwrap();
        assert_eq!(said, "used more than 1 GiB of memory (the run's limit)");
        assert_eq!(limits.exceeded(Some(libc::SIGKILL), None), None);
        let cpu = limits.exceeded(Some(libc::SIGXCPU), None).unwrap();
        assert!(cpu.contains("60 s of CPU time"), "{cpu}");
        let file = limits.exceeded(Some(libc::SIGXFSZ), None).unwrap();
        assert!(file.contains("256 MiB"), "{file}");
        assert_eq!(limits.exceeded(Some(libc::SIGSEGV), None), None);
        let forks = Usage {
            pids_refused: true,
            ..Usage::default()
        };
        assert!(limits.explain(&forks).unwrap().contains("256 processes"));
        assert_eq!(limits.explain(&Usage::default()), None);
    }

    #[test]
    fn a_gone_netgrades_cgroups_are_swept() {
        let Some(group) = Cgroup::create(&Limits::default()) else {
            return;
        };
        // Named as if a netgrade that has ended had made it.
        let stale: Vec<PathBuf> = group
            .dirs
            .iter()
            .map(|d| d.with_file_name(format!("netgrade-{}-0", u32::MAX - 7)))
            .collect();
        drop(group);
        for dir in &stale {
            std::fs::create_dir(dir).unwrap();
        }
        sweep(None);
        assert!(stale.iter().all(|d| !d.exists()), "{stale:?}");
    }

    #[test]
    fn a_cgroup_holds_its_processes_and_goes_away() {
        let limits = Limits {
            processes: 4,
            ..Limits::default()
        };
        let Some(group) = Cgroup::create(&limits) else {
            return; // no cgroup for netgrade on this machine
        };
        let dirs = group.dirs.clone();
        let files: Vec<std::ffi::CString> = group
            .procs_files()
            .iter()
            .map(|p| std::ffi::CString::new(p.to_str().unwrap()).unwrap())
            .collect();
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sh");
        // Six sleepers in a group that allows four processes.
        cmd.args(["-c", "for i in 1 2 3 4 5 6; do sleep 30 & done; wait"]);
        // SAFETY: `join` only makes raw system calls on prepared paths.
        unsafe { cmd.pre_exec(move || join(&files)) };
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !group.usage().pids_refused && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(group.usage().pids_refused);
        assert!(group.members().len() <= 4, "{:?}", group.members());
        drop(group);
        let _ = child.wait();
        assert!(dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    }
}
