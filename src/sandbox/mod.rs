//! Student processes: process group, deadline, output cap, namespace, clean-up.
//!
//! [`run`] starts a command as the leader of a new process group, optionally
//! inside a private network namespace, with a small, fixed environment. It
//! enforces a wall-clock deadline (SIGTERM to the group, a grace period, then
//! SIGKILL), caps stdout + stderr (a program that prints past the cap is
//! stopped), records each output line in the trace, and when the program is
//! done kills whatever it left behind: the rest of its process group, and
//! every process still inside its network namespace.

pub mod capture;
pub mod diagnose;
pub mod helper;
pub mod identity;
pub mod init;
pub mod janitor;
pub mod limits;
mod netns;
pub mod ports;
pub mod view;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

pub use limits::{Cgroup, Enforcement, Limits};
pub use netns::NetNs;

use crate::outcome::ExitKind;
use crate::trace::{EventKind, Recorder, Stream};

/// How long a program asked to stop may take to finish ending on its own.
const EXIT_SETTLE: Duration = Duration::from_millis(100);

/// What to run and under which limits.
#[derive(Clone, Debug)]
pub struct Command {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Environment added to the fixed base (PATH, HOME, LANG, TERM).
    pub env: Vec<(String, String)>,
    /// Bytes for standard input; `None` gives an empty stdin.
    pub stdin: Option<Vec<u8>>,
    /// Wall-clock limit.
    pub time_limit: Duration,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Cap on stdout + stderr bytes.
    pub output_limit: u64,
    /// Network namespace to run in.
    pub netns: Option<Arc<NetNs>>,
    /// Files bound over others in a private mount namespace, `(source, target)`
    /// (the capture's `/etc/resolv.conf`, `/etc/hosts` …).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Start the program as PID 2 of its own PID namespace under netgrade's
    /// init, so nothing it starts outlives the run (needs root).
    pub pid_namespace: bool,
    /// Other programs share the network namespace (instances of a lab of
    /// several): with a PID namespace, the program's processes are that
    /// namespace's, not every process of the network namespace.
    pub netns_shared: bool,
    /// Record each output line in the trace (the program under test, not a build step).
    pub record_output: bool,
    /// Processes, memory, CPU time, file size and open files.
    pub limits: Limits,
    /// Run as this user and group (root only; see [`identity`]).
    pub user: Option<u32>,
    /// The program's own view of the file system (see [`view`]).
    pub view: Option<view::View>,
}

/// How a command ended and what it printed.
#[derive(Clone, Debug)]
pub struct Finished {
    /// How it ended.
    pub exit: ExitKind,
    /// From spawn to the end of the leader process.
    pub duration: Duration,
    /// Standard output, up to the cap.
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    pub stderr: Vec<u8>,
    /// Whether standard output and standard error lost bytes past the cap.
    pub cut: [bool; 2],
    /// Processes it left behind, killed afterwards.
    pub leftovers: u32,
    /// Which limit stopped it, when one did: `stopped: used more than 1 GiB
    /// of memory (the run's limit)`.
    pub limit: Option<String>,
    /// How the process count and memory were limited.
    pub enforcement: Option<Enforcement>,
    /// Whether the run was held to its CPU share.
    pub cpu_limited: bool,
}

/// Shared, capped capture of one stream.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    partial: Vec<u8>,
    /// Bytes were dropped past the cap.
    cut: bool,
}

/// Runs `cmd` to completion under its limits. Never hangs past
/// `time_limit + grace + ~1 s`.
pub async fn run(cmd: &Command, recorder: &Recorder) -> Finished {
    match spawn(cmd, recorder) {
        Ok(running) => running.wait().await,
        Err(finished) => *finished,
    }
}

/// A started program: its process group, output readers and limits.
pub struct Running {
    child: Box<dyn ChildWrapper>,
    pgid: Option<i32>,
    started: Instant,
    readers: Vec<tokio::task::JoinHandle<()>>,
    captures: [Arc<Mutex<Capture>>; 2],
    total: Arc<AtomicU64>,
    over: Arc<tokio::sync::Notify>,
    cmd: Command,
    recorder: Recorder,
    reaper: Reaper,
    /// The run's cgroup, if this machine gives one (dropped last: it kills
    /// whatever is still in it).
    cgroup: Option<Cgroup>,
}

/// Kills a program's processes if it is dropped before it was waited for
/// (its run was stopped: Ctrl-C, a batch interrupted).
struct Reaper {
    pgid: Option<i32>,
    netns: Option<Arc<NetNs>>,
    armed: bool,
}

impl Command {
    /// The network namespace whose every process is this program's: its
    /// own, unless it shares it with other programs in PID namespaces of
    /// their own.
    fn sweeps(&self) -> Option<&Arc<NetNs>> {
        self.netns
            .as_ref()
            .filter(|_| !(self.netns_shared && self.pid_namespace))
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.armed {
            clean_up(self.pgid, self.netns.as_deref());
        }
    }
}

/// Starts `cmd`; a program that cannot start comes back as its [`Finished`].
pub fn spawn(cmd: &Command, recorder: &Recorder) -> Result<Running, Box<Finished>> {
    let started = Instant::now();
    let fail = |reason: String| {
        let finished = not_started(reason);
        if cmd.record_output {
            recorder.record(EventKind::Exited {
                exit: finished.exit.clone(),
            });
        }
        Err(Box::new(finished))
    };
    let Some((program, args)) = cmd.argv.split_first() else {
        return fail("the command is empty".into());
    };
    let path_env = cmd
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| {
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        });
    let cgroup = crate::rt::now(|| Cgroup::create(&cmd.limits));
    let launch = match launcher(cmd, program, args, cgroup.as_ref()) {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot prepare the sandbox: {e}")),
    };
    if launch.helper && !helper::findable(program, &path_env, &cmd.cwd) {
        return fail(format!(
            "`{program}` was not found (is it installed and on PATH?)"
        ));
    }
    let mut wrap = CommandWrap::with_new(&launch.program, |c| {
        c.args(&launch.args)
            .current_dir(&cmd.cwd)
            .env_clear()
            .env("PATH", &path_env)
            .env("HOME", &cmd.cwd)
            .env("LANG", "C.UTF-8")
            .env("TERM", "dumb")
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(setup) = launch.in_child {
            let limits = cmd.limits.for_process(!launch.cgroups.is_empty());
            let cgroups = launch.cgroups;
            // SAFETY: only async-signal-safe calls (open/write, setrlimit,
            // and the setup's raw system calls on values prepared before the
            // fork) between fork and exec.
            unsafe {
                c.pre_exec(move || {
                    limits::join(&cgroups)?;
                    limits.apply(!cgroups.is_empty());
                    setup.enter()
                });
            }
        }
    });
    wrap.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    // Stamped before spawning: nothing the program does can come earlier.
    let started_at = recorder.now();
    let mut child = match crate::rt::now(|| wrap.spawn()) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::rt::now(|| clean_up(None, cmd.sweeps().map(|n| &**n)));
            return fail(format!(
                "`{program}` was not found (is it installed and on PATH?)"
            ));
        }
        Err(e) => {
            crate::rt::now(|| clean_up(None, cmd.sweeps().map(|n| &**n)));
            return fail(format!("cannot start `{program}`: {e}"));
        }
    };
    let pgid = child.id().map(|p| p as i32);
    if cmd.record_output {
        recorder.record_at(
            started_at,
            EventKind::Started {
                command: cmd.argv.clone(),
            },
        );
    }

    if let (Some(input), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin().take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
    }

    let total = Arc::new(AtomicU64::new(0));
    let over = Arc::new(tokio::sync::Notify::new());
    let captures = [
        Arc::new(Mutex::new(Capture::default())),
        Arc::new(Mutex::new(Capture::default())),
    ];
    let mut readers = Vec::new();
    let streams: [(Option<Box<dyn AsyncRead + Unpin + Send>>, Stream); 2] = [
        (
            child.stdout().take().map(|s| Box::new(s) as _),
            Stream::Stdout,
        ),
        (
            child.stderr().take().map(|s| Box::new(s) as _),
            Stream::Stderr,
        ),
    ];
    for ((pipe, stream), capture) in streams.into_iter().zip(captures.iter()) {
        let Some(pipe) = pipe else { continue };
        readers.push(tokio::spawn(read_stream(
            pipe,
            stream,
            capture.clone(),
            total.clone(),
            cmd.output_limit,
            over.clone(),
            cmd.record_output.then(|| recorder.clone()),
        )));
    }

    Ok(Running {
        child,
        pgid,
        started,
        readers,
        captures,
        total,
        over,
        cmd: cmd.clone(),
        recorder: recorder.clone(),
        reaper: Reaper {
            pgid,
            netns: cmd.sweeps().cloned(),
            armed: true,
        },
        cgroup,
    })
}

impl Running {
    /// PID of the program (the leader of its process group).
    pub fn pid(&self) -> Option<i32> {
        self.pgid
    }

    /// Whether the program has ended (its leader is gone or a zombie).
    pub fn has_exited(&self) -> bool {
        let Some(pid) = self.pgid else { return true };
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }

    /// Every live process of the program: its group, and its namespaces.
    pub fn processes(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.pgid.map(group_members).unwrap_or_default();
        let netns = self.cmd.sweeps();
        if let Some(ns) = netns {
            pids.extend(ns.processes());
        }
        // The run's PID namespace, where no network namespace finds it.
        if let Some(pgid) = self
            .pgid
            .filter(|_| self.cmd.pid_namespace && netns.is_none())
        {
            pids.extend(
                init::namespace_members(pgid)
                    .into_iter()
                    .filter(|p| !init::is_namespace_init(*p)),
            );
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Waits for the program to end by itself, under its time and output limits.
    pub async fn wait(self) -> Finished {
        self.finish(false).await
    }

    /// Stops the program now (SIGTERM, grace, SIGKILL). One still running is
    /// reported as [`ExitKind::Stopped`]; one that had ended, as it ended.
    pub async fn stop(self) -> Finished {
        self.finish(true).await
    }

    async fn finish(mut self, stop_now: bool) -> Finished {
        let cmd = &self.cmd;
        let child = &mut self.child;
        let remaining = cmd.time_limit.saturating_sub(self.started.elapsed());
        let over_limit = |total: &AtomicU64| total.load(Ordering::Relaxed) > cmd.output_limit;
        let mut forced: Option<ExitKind> = None;
        let status = if stop_now {
            // A program that is already on its way out (it crashed a moment
            // ago) ends by itself within this grace; report how it ended.
            let ended = tokio::time::timeout(EXIT_SETTLE, child.wait()).await;
            match ended {
                Ok(status) => status,
                Err(_) => {
                    forced = Some(if over_limit(&self.total) {
                        ExitKind::OutputLimit {
                            limit_bytes: cmd.output_limit,
                        }
                    } else {
                        ExitKind::Stopped
                    });
                    stop(child.as_mut(), cmd.grace).await
                }
            }
        } else {
            tokio::select! {
                status = child.wait() => status,
                _ = tokio::time::sleep(remaining) => {
                    forced = Some(ExitKind::TimedOut { limit_ms: cmd.time_limit.as_millis() as u64 });
                    stop(child.as_mut(), cmd.grace).await
                }
                _ = self.over.notified() => {
                    forced = Some(ExitKind::OutputLimit { limit_bytes: cmd.output_limit });
                    stop(child.as_mut(), Duration::ZERO).await
                }
            }
        };
        let duration = self.started.elapsed();

        let leftovers =
            crate::rt::blocking(|| clean_up(self.pgid, cmd.sweeps().map(|n| &**n))).await;
        self.reaper.armed = false;

        // Output pipes close once every holder is dead; a process that escaped
        // both the group and the namespace could keep one open, so bound the wait.
        for reader in self.readers {
            let abort = reader.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), reader)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let [(out, out_cut), (err, err_cut)] = self.captures.map(|c| {
            let mut c = c.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut c.bytes), c.cut)
        });

        let exit = forced.unwrap_or_else(|| match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                match (s.code(), s.signal()) {
                    (Some(code), _) => ExitKind::Exited { code },
                    (None, Some(signal)) => ExitKind::Signaled { signal },
                    _ => ExitKind::Exited { code: -1 },
                }
            }
            Err(e) => ExitKind::DidNotStart {
                reason: format!("waiting for the program failed: {e}"),
            },
        });
        let usage = self.cgroup.as_ref().map(Cgroup::usage);
        let cpu_limited = self.cgroup.as_ref().is_some_and(Cgroup::limits_cpu);
        let enforcement = Some(
            self.cgroup
                .as_ref()
                .map_or(Enforcement::Rlimits, Cgroup::kind),
        );
        if let Some(group) = self.cgroup.take() {
            crate::rt::blocking(move || drop(group)).await;
        }
        let signal = match exit {
            ExitKind::Signaled { signal } => Some(signal),
            _ => None,
        };
        let exit = match cmd.limits.exceeded(signal, usage.as_ref()) {
            Some(limit) => ExitKind::LimitExceeded { limit },
            None => exit,
        };
        if cmd.record_output {
            self.recorder
                .record(EventKind::Exited { exit: exit.clone() });
        }
        // A program stopped for memory is told so once, by its exit.
        let stopped = matches!(exit, ExitKind::LimitExceeded { .. });
        let usage = usage.map(|u| limits::Usage {
            oom_killed: u.oom_killed && !stopped,
            ..u
        });
        Finished {
            limit: usage.and_then(|u| cmd.limits.explain(&u)),
            enforcement,
            cpu_limited,
            exit,
            duration,
            stdout: out,
            stderr: err,
            cut: [out_cut, err_cut],
            leftovers,
        }
    }
}

/// A program that could not start, and why.
pub(crate) fn not_started(reason: String) -> Finished {
    Finished {
        exit: ExitKind::DidNotStart { reason },
        duration: Duration::ZERO,
        stdout: Vec::new(),
        stderr: Vec::new(),
        cut: [false; 2],
        leftovers: 0,
        limit: None,
        enforcement: None,
        cpu_limited: false,
    }
}

/// How a program is started: through netgrade's helper binary (a cheap
/// `posix_spawn`), or with the setup run between fork and exec.
struct Launch {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    helper: bool,
    in_child: Option<init::ChildSetup>,
    /// The `cgroup.procs` files the child joins (fork path).
    cgroups: Vec<std::ffi::CString>,
}

fn launcher(
    cmd: &Command,
    program: &str,
    args: &[String],
    cgroup: Option<&Cgroup>,
) -> std::io::Result<Launch> {
    let cgroups = cgroup.map(Cgroup::procs_files).unwrap_or_default();
    if let Some(exe) = helper::path() {
        let setup = helper::Setup {
            netns: cmd.netns.as_ref().map(|ns| helper::fd_path(ns.raw_fd())),
            binds: cmd.binds.clone(),
            lifeline: if cmd.pid_namespace {
                let fd = init::lifeline()
                    .ok_or_else(|| std::io::Error::other("cannot make a lifeline pipe"))?;
                Some(helper::fd_path(fd))
            } else {
                None
            },
            limits: cmd.limits.for_process(!cgroups.is_empty()),
            cgroups,
            user: cmd.user,
            view: cmd.view.clone(),
        };
        return Ok(Launch {
            program: exe.into(),
            args: helper::args(&setup, &cmd.argv),
            helper: true,
            in_child: None,
            cgroups: Vec::new(),
        });
    }
    use std::os::unix::ffi::OsStrExt;
    let cgroups = cgroups
        .iter()
        .map(|p| std::ffi::CString::new(p.as_os_str().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(std::io::Error::other)?;
    Ok(Launch {
        program: program.into(),
        args: args.iter().map(Into::into).collect(),
        helper: false,
        cgroups,
        in_child: Some(
            init::ChildSetup::new(
                cmd.netns.as_ref().map(|ns| ns.raw_fd()),
                &cmd.binds,
                cmd.pid_namespace,
            )?
            .as_user(cmd.user)
            .with_view(
                cmd.view
                    .as_ref()
                    .map(|v| view::Plan::new(v, &cmd.binds, &cmd.cwd, cmd.pid_namespace))
                    .transpose()?,
            ),
        ),
    })
}

/// SIGTERM to the group, `grace`, then SIGKILL; returns the leader's status.
async fn stop(
    child: &mut dyn ChildWrapper,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    if !grace.is_zero() {
        let _ = child.signal(Signal::SIGTERM as i32);
        if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
            return status;
        }
    }
    let _ = child.signal(Signal::SIGKILL as i32);
    match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
        Ok(status) => status,
        Err(_) => Err(std::io::Error::other(
            "the process did not die after SIGKILL",
        )),
    }
}

/// Kills what the program left: its process group and everything in its
/// namespace. Returns how many processes were found (netgrade's own init of
/// the run's PID namespace is killed, not counted).
fn clean_up(pgid: Option<i32>, netns: Option<&NetNs>) -> u32 {
    let mut victims: Vec<i32> = pgid.map(group_members).unwrap_or_default();
    if let Some(ns) = netns {
        victims.extend(ns.processes());
    }
    // The run's PID namespace, where no network namespace finds it.
    if let Some(pgid) = pgid.filter(|_| netns.is_none()) {
        victims.extend(init::namespace_members(pgid));
    }
    victims.sort_unstable();
    victims.dedup();
    let inits: Vec<i32> = victims
        .iter()
        .copied()
        .filter(|pid| init::is_namespace_init(*pid))
        .collect();
    // Processes already dying of netgrade's SIGKILL (a stopped program's
    // group) were not left behind by the program.
    let dying = victims.iter().filter(|pid| is_dying(**pid)).count();
    if let Some(pgid) = pgid {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    for pid in &victims {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    for pid in &inits {
        init::reap(*pid);
    }
    victims.len().saturating_sub(inits.len() + dying) as u32
}

/// Whether `pid` is a zombie, or has SIGKILL pending: it is on its way out.
fn is_dying(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let kill_bit = 1u64 << (libc::SIGKILL - 1);
    let pending =
        |name: &str| u64::from_str_radix(&field(name), 16).is_ok_and(|m| m & kill_bit != 0);
    field("State:").starts_with(['Z', 'X']) || pending("SigPnd:") || pending("ShdPnd:")
}

/// Live (non-zombie) processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the last ')': state ppid pgrp …
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
            state != Some("Z") && pgrp == Some(pgid)
        })
        .collect()
}

async fn read_stream(
    mut pipe: Box<dyn AsyncRead + Unpin + Send>,
    stream: Stream,
    capture: Arc<Mutex<Capture>>,
    total: Arc<AtomicU64>,
    limit: u64,
    over: Arc<tokio::sync::Notify>,
    recorder: Option<Recorder>,
) {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let before = total.fetch_add(n as u64, Ordering::Relaxed);
        let room = limit.saturating_sub(before) as usize;
        let keep = &buf[..n.min(room)];
        {
            let mut c = capture.lock().unwrap_or_else(|p| p.into_inner());
            c.bytes.extend_from_slice(keep);
            c.cut |= keep.len() < n;
            if let Some(rec) = &recorder {
                for &b in keep {
                    if b == b'\n' {
                        let line = std::mem::take(&mut c.partial);
                        rec.record(EventKind::Output {
                            stream,
                            line: line_text(&line),
                        });
                    } else {
                        c.partial.push(b);
                    }
                }
            }
        }
        if before + n as u64 > limit {
            over.notify_one();
            // Keep draining so the program never blocks on a full pipe before it is stopped.
        }
    }
    let mut c = capture.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rec) = &recorder
        && !c.partial.is_empty()
    {
        let line = std::mem::take(&mut c.partial);
        rec.record(EventKind::Output {
            stream,
            line: line_text(&line),
        });
    }
}

fn line_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, limit: Duration) -> Command {
        Command {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![],
            stdin: None,
            time_limit: limit,
            grace: Duration::from_millis(300),
            output_limit: 4096,
            netns: None,
            binds: Vec::new(),
            pid_namespace: false,
            netns_shared: false,
            record_output: true,
            limits: Limits::default(),
            user: None,
            view: None,
        }
    }

    #[tokio::test]
    async fn captures_lines_and_status() {
        let rec = Recorder::new();
        let f = run(
            &sh(
                "echo one; echo two >&2; printf three; exit 3",
                Duration::from_secs(10),
            ),
            &rec,
        )
        .await;
        assert_eq!(f.exit, ExitKind::Exited { code: 3 });
        assert_eq!(f.stdout, b"one\nthree");
        assert_eq!(f.cut, [false, false]);
        let trace = rec.snapshot();
        assert_eq!(trace.lines(Stream::Stdout), vec!["one", "three"]);
        assert_eq!(trace.lines(Stream::Stderr), vec!["two"]);
    }

    #[tokio::test]
    async fn deadline_kills_the_whole_group_even_when_sigterm_is_ignored() {
        let rec = Recorder::new();
        let script = "trap '' TERM; (trap '' TERM; sleep 600) & sleep 600";
        let f = run(&sh(script, Duration::from_millis(300)), &rec).await;
        assert_eq!(f.exit, ExitKind::TimedOut { limit_ms: 300 });
        assert!(f.duration < Duration::from_secs(5), "{:?}", f.duration);
    }

    #[tokio::test]
    async fn output_flood_is_stopped_at_the_cap() {
        let rec = Recorder::new();
        let f = run(&sh("yes flood", Duration::from_secs(30)), &rec).await;
        assert_eq!(f.exit, ExitKind::OutputLimit { limit_bytes: 4096 });
        assert!(f.stdout.len() <= 4096);
        assert_eq!(f.cut, [true, false], "only stdout lost bytes");
    }

    #[tokio::test]
    async fn leftover_children_are_counted_and_killed() {
        let rec = Recorder::new();
        let marker = format!("netgrade-leftover-{}", std::process::id());
        let script = format!("sh -c 'sleep 600; :' {marker} >/dev/null 2>&1 & echo started");
        let f = run(&sh(&script, Duration::from_secs(10)), &rec).await;
        assert_eq!(f.exit, ExitKind::Exited { code: 0 });
        assert!(f.leftovers >= 1, "{}", f.leftovers);
        std::thread::sleep(Duration::from_millis(100));
        let alive = std::process::Command::new("pgrep")
            .arg("-f")
            .arg(&marker)
            .output();
        if let Ok(out) = alive {
            assert!(
                out.stdout.is_empty(),
                "left behind: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    #[tokio::test]
    async fn a_process_that_left_the_group_is_found_by_its_namespace() {
        let Ok(ns) = NetNs::new() else {
            eprintln!("skipped: no permission to create network namespaces");
            return;
        };
        let rec = Recorder::new();
        let marker = format!("netgrade-escapee-{}", std::process::id());
        let mut cmd = sh(
            &format!("setsid sh -c 'sleep 600; :' {marker} >/dev/null 2>&1 & sleep 0.2"),
            Duration::from_secs(10),
        );
        cmd.netns = Some(Arc::new(ns));
        let f = run(&cmd, &rec).await;
        assert_eq!(f.exit, ExitKind::Exited { code: 0 });
        assert!(f.leftovers >= 1, "{}", f.leftovers);
        std::thread::sleep(Duration::from_millis(100));
        let alive = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .any(|c| String::from_utf8_lossy(&c).contains(&marker));
        assert!(!alive, "the setsid'd process survived");
    }

    /// A command in a fresh network namespace and PID namespace, when allowed.
    fn isolated(script: &str, limit: Duration) -> Option<Command> {
        let ns = NetNs::new().ok()?;
        let mut cmd = sh(script, limit);
        cmd.netns = Some(Arc::new(ns));
        cmd.pid_namespace = true;
        Some(cmd)
    }

    #[tokio::test]
    async fn in_a_pid_namespace_the_program_ends_as_it_ended() {
        let Some(cmd) = isolated("echo $$; exit 7", Duration::from_secs(10)) else {
            eprintln!("skipped: no permission to create namespaces");
            return;
        };
        let rec = Recorder::new();
        let f = run(&cmd, &rec).await;
        assert_eq!(f.exit, ExitKind::Exited { code: 7 });
        // The program is PID 2 of its namespace: netgrade's init is PID 1.
        assert_eq!(f.stdout, b"2\n");
        assert_eq!(f.leftovers, 0, "the init is not a leftover");
        let cmd = isolated("kill -SEGV $$", Duration::from_secs(10)).unwrap();
        let f = run(&cmd, &rec).await;
        assert_eq!(f.exit, ExitKind::Signaled { signal: 11 });
    }

    #[tokio::test]
    async fn in_a_pid_namespace_daemons_are_counted_and_die_with_the_run() {
        let marker = format!("netgrade-daemon-{}", std::process::id());
        let script = format!(
            "setsid sh -c 'sleep 600; :' {marker} >/dev/null 2>&1 & (sh -c 'sleep 600; :' {marker} &) ; sleep 0.2"
        );
        let Some(cmd) = isolated(&script, Duration::from_secs(10)) else {
            eprintln!("skipped: no permission to create namespaces");
            return;
        };
        let rec = Recorder::new();
        let f = run(&cmd, &rec).await;
        assert_eq!(f.exit, ExitKind::Exited { code: 0 });
        assert!(f.leftovers >= 2, "{}", f.leftovers);
        let alive = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .any(|c| String::from_utf8_lossy(&c).contains(&marker))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "a daemon survived the run");
    }

    #[tokio::test]
    async fn in_a_pid_namespace_sigterm_still_reaches_the_program() {
        let Some(cmd) = isolated(
            "trap 'echo bye; exit 5' TERM; sleep 600 & wait",
            Duration::from_millis(300),
        ) else {
            eprintln!("skipped: no permission to create namespaces");
            return;
        };
        let rec = Recorder::new();
        let f = run(&cmd, &rec).await;
        assert_eq!(f.exit, ExitKind::TimedOut { limit_ms: 300 });
        assert_eq!(f.stdout, b"bye\n", "the program handled SIGTERM");
    }

    #[tokio::test]
    async fn missing_program_does_not_start() {
        let rec = Recorder::new();
        let mut cmd = sh("", Duration::from_secs(1));
        cmd.argv = vec!["no-such-interpreter-xyz".into()];
        let f = run(&cmd, &rec).await;
        assert!(
            matches!(f.exit, ExitKind::DidNotStart { ref reason } if reason.contains("not found"))
        );
    }
}
