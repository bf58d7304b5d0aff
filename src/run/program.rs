//! Phase `program`: the student's program built once, then run against the
//! reference servers (a client) or started and probed (a server).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::capture::Capture;
use super::network::Network;
use super::submission::{self, Entry, Placeholders, commands, language_env};
use super::workspace::Workspace;
use super::{Plan, confine, probing};
use crate::outcome::{ExitKind, ProgramSummary};
use crate::rt::blocking;
use crate::sandbox::{
    self,
    diagnose::{diagnose, diagnose_allowing},
};
use crate::servers::RunningServers;
use crate::trace::{EventKind, Recorder};

/// Time between SIGTERM and SIGKILL when a program overruns.
const GRACE: Duration = Duration::from_millis(500);
/// Build output kept for the report.
const BUILD_OUTPUT_LIMIT: u64 = 16 * 1024;
/// Files recorded as written by one program, at most.
const MAX_WRITTEN_FILES: usize = 50;
/// Bytes kept of each written file.
const MAX_WRITTEN_BYTES: u64 = 4 << 20;

/// What the program phase produced.
#[derive(Debug, Default)]
pub struct ProgramRun {
    /// The program's command, exit and diagnoses; `None` when nothing was started.
    pub summary: Option<ProgramSummary>,
    /// Time spent in the student's processes (build and run).
    pub time: Duration,
    /// When the program (not its build) started, if it did.
    pub started: Option<std::time::Instant>,
    /// Notes for the report (the protections the program did not get).
    pub notes: Vec<String>,
    /// The work folders of the other instances, by number (gone after the run).
    pub other_roots: Vec<(u8, std::path::PathBuf)>,
}

/// The command lines a run uses: an optional build step, then the program.
#[derive(Debug, PartialEq)]
pub struct Commands {
    /// The build step, for compiled languages.
    pub build: Option<Vec<String>>,
    /// The program and its arguments.
    pub run: Vec<String>,
}

/// Builds and runs the program. Everything that goes wrong is recorded.
pub async fn execute(
    plan: &Plan<'_>,
    work: &Workspace,
    net: &Network,
    capture: &Capture,
    trust_env: &[(String, String)],
    servers: &RunningServers,
    recorder: &Recorder,
) -> ProgramRun {
    let placeholders = placeholders(plan, work, servers);
    let commands = match plan_commands(plan, work.entry.as_ref(), &placeholders) {
        Ok(Some(c)) => c,
        Ok(None) => return ProgramRun::default(),
        Err(reason) => {
            recorder.record(EventKind::Exited {
                exit: ExitKind::DidNotStart { reason },
            });
            return ProgramRun::default();
        }
    };
    let mut base = base_command(plan, work);
    // As root, the build and the program run as a user of their own, owning
    // the work folder; as root or in a user namespace, in a view of the
    // file system of their own.
    let confinement = confine::confine(work, language(work), &base.env, base.limits.disk).await;
    if let Some(reason) = confinement.refused.clone() {
        recorder.record(EventKind::Exited {
            exit: ExitKind::DidNotStart { reason },
        });
        return ProgramRun::default();
    }
    confine::apply(&mut base, &confinement);
    // Files the command names by their full path (`--cmd "nginx -c /course/nginx.conf"`).
    if let Some(view) = &mut base.view {
        let words = commands.run.iter().chain(commands.build.iter().flatten());
        view.read_only.extend(
            words
                .map(Path::new)
                .filter(|p| p.is_absolute() && p.exists())
                .map(Path::to_path_buf),
        );
    }
    base.netns = net.shared();
    let mut done = ProgramRun {
        notes: confinement.missing().into_iter().collect(),
        ..Default::default()
    };
    if let Some(build) = &commands.build {
        let (time, failed) = build_step(build, &commands.run, &base, recorder).await;
        done.time += time;
        if failed.is_some() {
            done.summary = failed;
            return done;
        }
    }
    let mut cmd = sandbox::Command {
        // The program (not its build) trusts the run's certificate authority.
        env: [&base.env[..], trust_env].concat(),
        argv: commands.run.clone(),
        stdin: plan
            .lab
            .program
            .stdin
            .as_ref()
            .map(|s| s.as_bytes().to_vec()),
        time_limit: plan.time_limit.get(),
        output_limit: plan.lab.program.output_limit.0,
        binds: capture.binds.clone(),
        pid_namespace: base.pid_namespace || net.namespace().is_some(),
        // Instances of a lab of several share the run's network.
        netns_shared: plan.is_server() && plan.lab.program.instances > 1,
        record_output: true,
        ..base
    };
    // It sees the files that name that authority.
    if let Some(view) = &mut cmd.view {
        view.read_only.extend(
            trust_env
                .iter()
                .filter(|(k, _)| k == "SSL_CERT_FILE")
                .filter_map(|(_, v)| Path::new(v).parent().map(Path::to_path_buf)),
        );
    }
    // Other instances (a swarm of the student's peers) run in copies of
    // this folder, as it is after the build.
    let (others, kept) = other_instances(plan, work, &cmd, &placeholders).await;
    done.other_roots = kept
        .iter()
        .map(|(k, w, _)| (*k, w.root().to_path_buf()))
        .collect();
    let before = blocking(|| file_stamps(&cmd.cwd)).await;
    done.started = Some(std::time::Instant::now());
    let (finished, others) = if plan.is_server() {
        let fallback = plan.opts.port.or(plan.lab.program.port);
        let (lab, ns) = (plan.lab, net.namespace());
        probing::drive_server(lab, &cmd, (fallback, &others), ns, recorder, plan.seed).await
    } else {
        (sandbox::run(&cmd, recorder).await, Vec::new())
    };
    done.time += finished.duration;
    for (path, bytes) in blocking(|| changed_files(&cmd.cwd, &before)).await {
        recorder.record(EventKind::FileWritten { path, bytes });
    }
    if finished.leftovers > 0 {
        recorder.record(EventKind::Leftovers {
            count: finished.leftovers,
        });
    }
    let (stdout, stdout_cut) = crate::outcome::shown_output(&finished.stdout);
    let (stderr, stderr_cut) = crate::outcome::shown_output(&finished.stderr);
    done.summary = Some(ProgramSummary {
        command: commands.run,
        build: commands.build,
        exit: finished.exit.clone(),
        duration_ms: finished.duration.as_millis() as u64,
        leftover_processes: finished.leftovers,
        diagnoses: finished
            .limit
            .clone()
            .into_iter()
            .chain(disk_full(
                &[&finished.stderr[..], &finished.stdout[..]].concat(),
                &cmd,
            ))
            .chain(refused(&finished.stderr, plan.lab, recorder))
            .chain(diagnose_allowing(
                &String::from_utf8_lossy(&finished.stderr),
                &plan.lab.program.python_packages(),
            ))
            .chain(probing::restart_notes(plan.lab, recorder))
            .collect(),
        limits: limits_in_force(&cmd.limits, &finished, work.disk_limited()),
        stdout,
        stdout_truncated: stdout_cut || finished.cut[0],
        stderr,
        stderr_truncated: stderr_cut || finished.cut[1],
        instances: others,
    });
    done
}

/// What other instances hold while they run: their folders and users.
type Kept = Vec<(u8, Workspace, confine::Confinement)>;

/// The other instances of a lab of several (`program.instances`): each in
/// a copy of the work folder, as a user of its own, told its own port
/// (`{listen}`) and number (`{instance}`). One that cannot be prepared
/// comes with the reason, and is reported as not started.
async fn other_instances(
    plan: &Plan<'_>,
    work: &Workspace,
    cmd: &sandbox::Command,
    ph: &Placeholders,
) -> (Vec<probing::OtherInstance>, Kept) {
    let (mut others, mut kept) = (Vec::new(), Vec::new());
    if !plan.is_server() {
        return (others, kept);
    }
    let first = plan.opts.port.or(plan.lab.program.port).unwrap_or(0);
    for number in 2..=plan.lab.program.instances {
        let port = first.saturating_add(u16::from(number) - 1);
        let prepared = other_instance(plan, work, cmd, ph, (number, port)).await;
        let cmd = prepared.map(|(cmd, copy, confinement)| {
            kept.push((number, copy, confinement));
            cmd
        });
        others.push(probing::OtherInstance { number, port, cmd });
    }
    (others, kept)
}

/// Instance `number`'s folder, user and command.
async fn other_instance(
    plan: &Plan<'_>,
    work: &Workspace,
    cmd: &sandbox::Command,
    ph: &Placeholders,
    (number, port): (u8, u16),
) -> Result<(sandbox::Command, Workspace, confine::Confinement), String> {
    let copy = blocking(|| super::workspace::replicate(plan, work, number))
        .await
        .map_err(|e| format!("{e:#}"))?;
    let mut ph = Placeholders {
        listen: port.to_string(),
        instance: number.to_string(),
        dir: copy.cwd().display().to_string(),
        args: Vec::new(),
        ..ph.clone()
    };
    ph.args = filled_args(plan, &ph);
    let run = plan_commands(plan, copy.entry.as_ref(), &ph)?
        .ok_or("the program has no entry to run")?
        .run;
    let confinement = confine::confine(&copy, language(&copy), &cmd.env, cmd.limits.disk).await;
    if let Some(reason) = confinement.refused.clone() {
        return Err(reason);
    }
    let mut other = sandbox::Command {
        argv: run,
        cwd: copy.cwd(),
        record_output: false,
        ..cmd.clone()
    };
    other.user = confinement.identity.as_ref().map(|i| i.id);
    // The same toolchains and files as the first instance, and its own folder.
    other.view = confinement.view.clone().map(|mut view| {
        if let Some(first) = &cmd.view {
            view.read_only = first.read_only.clone();
        }
        view
    });
    Ok((other, copy, confinement))
}

/// A diagnosis for a program whose connection was refused: where it went
/// (what the run's network saw, else the lab's transport) and where the
/// lab's server is.
fn refused(stderr: &[u8], lab: &crate::spec::Lab, recorder: &Recorder) -> Option<String> {
    use crate::spec::ServerKind;
    use crate::trace::Transport;
    let text = String::from_utf8_lossy(stderr);
    let said = ["Connection refused", "ConnectException", "PortUnreachable"];
    if !said.iter().any(|s| text.contains(s)) {
        return None;
    }
    let server = lab.servers.first()?;
    let (name, transport) = match server.kind.value {
        ServerKind::UdpPinger => ("pinger".to_string(), Transport::Udp),
        ServerKind::Dns => ("DNS server".to_string(), Transport::Udp),
        kind => (
            format!("{} server", kind.name().to_uppercase()),
            Transport::Tcp,
        ),
    };
    let at = format!("{}:{}", server.host, server.port);
    let went = match (recorder.snapshot().strays().first(), transport) {
        (Some((Transport::Tcp, to, _)), _) => {
            format!("connected over TCP to {to}, where nothing listens")
        }
        (Some((Transport::Udp, to, _)), _) => {
            format!("sent a datagram to {to}, where nothing listens (ICMP port unreachable)")
        }
        (None, Transport::Tcp) => "connected over TCP to a port where nothing listens".into(),
        (None, Transport::Udp) => {
            "sent a datagram to a port where nothing listens (ICMP port unreachable)".into()
        }
    };
    let catch = if transport == Transport::Udp {
        "; with a timeout set, catch ConnectionRefusedError (an OSError) too"
    } else {
        ""
    };
    Some(format!(
        "the connection was refused: the program {went}; the lab's {name} is at {at} (given as arguments): use them{catch}"
    ))
}

/// A diagnosis for a program that filled its disk (and said so).
fn disk_full(output: &[u8], cmd: &sandbox::Command) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let full = text.contains("No space left on device") || text.contains("Errno 28");
    (full && cmd.view.is_some()).then(|| {
        format!(
            "the run ran out of disk: its work folder, /tmp and /dev/shm may each hold {} (the run's limit; a loop that writes without end?)",
            crate::outcome::human_bytes(cmd.limits.disk)
        )
    })
}

/// The limits in force, and how they were enforced, for the report.
fn limits_in_force(
    limits: &sandbox::Limits,
    finished: &sandbox::Finished,
    disk: bool,
) -> Option<String> {
    use crate::outcome::human_bytes as size;
    let how = finished.enforcement?;
    let mut text = format!(
        "{} processes and {} of memory, by {}; {} s of CPU time, {} files and {} open files per process (resource limits)",
        limits.processes,
        size(limits.memory),
        how.describe(),
        limits.cpu.as_secs(),
        size(limits.file_size),
        limits.open_files
    );
    if finished.cpu_limited {
        text.push_str(&format!(
            "; {} CPU for the whole run (the cgroup's CPU share)",
            limits.cpu_share as f64 / 1000.0
        ));
    }
    if disk {
        text.push_str(&format!(
            "; {} of disk in the work folder, and in each of /tmp and /dev/shm",
            size(limits.disk)
        ));
    }
    Some(text)
}

/// Values for the placeholders of commands and arguments.
/// `{host}` and `{port}` are the first server's; in a server lab without
/// servers, `{port}` is the port the program is expected to listen on
/// (`--port`, else the lab's `program.port`).
fn placeholders(plan: &Plan, work: &Workspace, servers: &RunningServers) -> Placeholders {
    let primary = servers.primary().or_else(|| {
        let port = plan.opts.port.or(plan.lab.program.port)?;
        plan.is_server()
            .then(|| std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    });
    let entry = work.entry.as_ref();
    let listen = plan.opts.port.or(plan.lab.program.port);
    let mut ph = Placeholders {
        listen: listen.map(|p| p.to_string()).unwrap_or_default(),
        instance: "1".into(),
        host: primary.map(|a| a.ip().to_string()).unwrap_or_default(),
        port: primary.map(|a| a.port().to_string()).unwrap_or_default(),
        addr: primary.map(|a| a.to_string()).unwrap_or_default(),
        entry: entry.map(|e| e.file.clone()).unwrap_or_default(),
        stem: entry.map(|e| e.stem.clone()).unwrap_or_default(),
        dir: work.cwd().display().to_string(),
        args: Vec::new(),
    };
    ph.args = filled_args(plan, &ph);
    ph
}

/// The lab's (the case's) arguments with the placeholders filled, for
/// `{args}` and `{argN}`.
fn filled_args(plan: &Plan, ph: &Placeholders) -> Vec<String> {
    plan.lab.program.args.iter().map(|a| ph.fill(a)).collect()
}

/// The commands to run: `--cmd` when given, else the entry's language
/// preset. `Ok(None)`: nothing to run (already recorded by `workspace`,
/// also when `--cmd` names an entry that is not there).
fn plan_commands(
    plan: &Plan,
    entry: Option<&Entry>,
    ph: &Placeholders,
) -> Result<Option<Commands>, String> {
    let (build, run) = match (&plan.opts.cmd, entry) {
        (Some(cmd), None) if submission::uses_entry(cmd) => return Ok(None),
        (Some(cmd), _) => (None, submission::split_command(cmd, ph)?),
        (None, Some(e)) => commands(e, &plan.lab.program, ph)?,
        (None, None) => return Ok(None),
    };
    Ok(Some(Commands { build, run }))
}

/// The language of the submission's entry (Python without one).
fn language(work: &Workspace) -> submission::Language {
    work.entry
        .as_ref()
        .map(|e| e.language)
        .unwrap_or(submission::Language::Python)
}

/// The sandbox settings shared by the build step and the program.
fn base_command(plan: &Plan, work: &Workspace) -> sandbox::Command {
    let env = language_env(language(work))
        .into_iter()
        .chain(plan.opts.batch.program_env())
        .chain(
            plan.lab
                .program
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        )
        .collect();
    sandbox::Command {
        argv: Vec::new(),
        cwd: work.cwd(),
        env,
        stdin: None,
        time_limit: plan.lab.program.build_time_limit.get(),
        grace: GRACE,
        output_limit: BUILD_OUTPUT_LIMIT,
        netns: None,
        binds: Vec::new(),
        pid_namespace: false,
        netns_shared: false,
        record_output: false,
        limits: plan.lab.program.limits.resolve(),
        user: None,
        view: None,
    }
}

/// Runs the build step. Returns the time it took and, when it failed, the
/// program's summary (the failure is recorded in the trace).
async fn build_step(
    build: &[String],
    run: &[String],
    base: &sandbox::Command,
    recorder: &Recorder,
) -> (Duration, Option<ProgramSummary>) {
    let cmd = sandbox::Command {
        argv: build.to_vec(),
        ..base.clone()
    };
    let done = sandbox::run(&cmd, recorder).await;
    if done.exit == (ExitKind::Exited { code: 0 }) {
        return (done.duration, None);
    }
    let mut output = String::from_utf8_lossy(&done.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&done.stdout));
    let reason = match &done.exit {
        ExitKind::DidNotStart { reason } => reason.clone(),
        other => format!(
            "the build `{}` failed: it {}",
            build.join(" "),
            other.describe()
        ),
    };
    recorder.record(EventKind::BuildFailed {
        command: build.to_vec(),
        output: output.clone(),
    });
    recorder.record(EventKind::Exited {
        exit: ExitKind::DidNotStart { reason },
    });
    let summary = ProgramSummary {
        command: run.to_vec(),
        build: Some(build.to_vec()),
        exit: ExitKind::DidNotStart {
            reason: "build failed".into(),
        },
        duration_ms: 0,
        leftover_processes: 0,
        diagnoses: diagnose(&output),
        ..ProgramSummary::did_not_start(String::new())
    };
    (done.duration, Some(summary))
}

type Stamps = HashMap<std::path::PathBuf, (u64, std::time::SystemTime)>;

/// Size and modification time of every file under `dir` (three levels deep).
fn file_stamps(dir: &Path) -> Stamps {
    fn walk(dir: &Path, depth: usize, out: &mut Stamps) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() && depth < 3 {
                walk(&e.path(), depth + 1, out);
            } else if meta.is_file() {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.insert(e.path(), (meta.len(), modified));
            }
        }
    }
    let mut out = Stamps::new();
    walk(dir, 0, &mut out);
    out
}

/// Files under `dir` created or changed since `before`, relative paths in name order.
fn changed_files(dir: &Path, before: &Stamps) -> Vec<(String, Vec<u8>)> {
    let mut changed: Vec<_> = file_stamps(dir)
        .into_iter()
        .filter(|(p, stamp)| before.get(p) != Some(stamp))
        .map(|(p, _)| p)
        .collect();
    changed.sort();
    changed
        .into_iter()
        .take(MAX_WRITTEN_FILES)
        .filter_map(|p| {
            use std::io::Read;
            let mut bytes = Vec::new();
            std::fs::File::open(&p)
                .ok()?
                .take(MAX_WRITTEN_BYTES)
                .read_to_end(&mut bytes)
                .ok()?;
            let rel = p.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
            Some((rel, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_found_by_size_or_time() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kept.txt"), "same").unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        let before = file_stamps(dir.path());
        std::fs::write(dir.path().join("out/msg1.txt"), "new").unwrap();
        let changed = changed_files(dir.path(), &before);
        assert_eq!(changed, vec![("out/msg1.txt".to_string(), b"new".to_vec())]);
    }

    #[test]
    fn cmd_overrides_the_preset_and_fills_placeholders() {
        let lab = crate::spec::load_builtin("udp-pinger").unwrap().unwrap();
        let opts = super::super::Options {
            cmd: Some("python3 ping.py {host} {port}".into()),
            ..Default::default()
        };
        let plan = Plan::new(&lab, Path::new("."), "s", &opts);
        let ph = Placeholders {
            host: "127.0.0.1".into(),
            port: "12000".into(),
            ..Default::default()
        };
        let c = plan_commands(&plan, None, &ph).unwrap().unwrap();
        assert_eq!(c.run, ["python3", "ping.py", "127.0.0.1", "12000"]);
        assert_eq!(c.build, None);
        // `{entry}` without an entry: `workspace` has recorded why; nothing runs.
        let opts = super::super::Options {
            cmd: Some("python3 {entry} {addr}".into()),
            ..Default::default()
        };
        let plan = Plan::new(&lab, Path::new("."), "s", &opts);
        assert_eq!(plan_commands(&plan, None, &ph), Ok(None));
        let plain = super::super::Options::default();
        let plan = Plan::new(&lab, Path::new("."), "s", &plain);
        assert_eq!(plan_commands(&plan, None, &ph), Ok(None));
    }
}
