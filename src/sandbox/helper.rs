//! `netgrade __sandbox`: the small process that puts a student's program in
//! its sandbox.
//!
//! netgrade is a large process with many threads; copying it with `fork` to
//! start every program holds its memory map locked while page tables are
//! copied, and at fifty programs at once the reference servers' threads wait
//! on that lock and fall behind schedule. So when netgrade runs as its own
//! binary it starts programs through itself: `posix_spawn` (a `vfork`,
//! nothing copied) of `netgrade __sandbox [setup] -- PROGRAM ARGS…`, a fresh
//! single-threaded process that joins the run's namespaces, sets limits,
//! becomes the relay of [`super::init`] and finally `exec`s the program.
//! (Without the binary, in the library's own tests, the same setup runs
//! between fork and exec instead.)

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::init::ChildSetup;

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__sandbox";

static HELPER: OnceLock<PathBuf> = OnceLock::new();

/// Makes `exe` (netgrade's own binary) the helper every program starts through.
pub fn install(exe: PathBuf) {
    let _ = HELPER.set(exe);
}

/// The helper binary, when installed.
pub fn path() -> Option<&'static Path> {
    HELPER.get().map(PathBuf::as_path)
}

/// What the helper must set up before it runs the program.
#[derive(Debug, Default)]
pub struct Setup {
    /// A path that opens the run's network namespace (`/proc/PID/fd/N`).
    pub netns: Option<PathBuf>,
    /// Files bound over others, `(source, target)`.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// A path that opens netgrade's lifeline (PID namespace wanted).
    pub lifeline: Option<PathBuf>,
    /// The program's limits.
    pub limits: super::Limits,
    /// `cgroup.procs` files to join first.
    pub cgroups: Vec<PathBuf>,
    /// The user and group to run the program as.
    pub user: Option<u32>,
    /// The program's view of the file system.
    pub view: Option<super::view::View>,
}

/// A path through which another process opens this process's descriptor `fd`.
pub fn fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/{}/fd/{fd}", std::process::id()))
}

/// The helper's arguments for `setup`, then `argv`.
pub fn args(setup: &Setup, argv: &[String]) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![SUBCOMMAND.into()];
    if let Some(ns) = &setup.netns {
        out.extend(["--netns".into(), ns.into()]);
    }
    for (source, target) in &setup.binds {
        out.extend(["--bind".into(), source.into(), target.into()]);
    }
    if let Some(lifeline) = &setup.lifeline {
        out.extend(["--pidns".into(), lifeline.into()]);
    }
    for file in &setup.cgroups {
        out.extend(["--cgroup".into(), file.into()]);
    }
    out.extend(["--limits".into(), setup.limits.to_args().into()]);
    if let Some(id) = setup.user {
        out.extend(["--user".into(), id.to_string().into()]);
    }
    if let Some(view) = &setup.view {
        out.extend(view.to_args());
    }
    out.push("--".into());
    out.extend(argv.iter().map(OsString::from));
    out
}

/// Parses the helper's arguments (after the subcommand).
fn parse(args: &[OsString]) -> Result<(Setup, Vec<OsString>), String> {
    let mut setup = Setup::default();
    let mut it = args.iter();
    let next = |what: &str, it: &mut std::slice::Iter<OsString>| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{what} needs a value"))
    };
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--netns") => setup.netns = Some(next("--netns", &mut it)?.into()),
            Some("--bind") => {
                let source = next("--bind", &mut it)?;
                let target = next("--bind", &mut it)?;
                setup.binds.push((source.into(), target.into()));
            }
            Some("--pidns") => setup.lifeline = Some(next("--pidns", &mut it)?.into()),
            Some("--cgroup") => setup.cgroups.push(next("--cgroup", &mut it)?.into()),
            Some("--user") => {
                let id = next("--user", &mut it)?;
                setup.user = Some(
                    id.to_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or("--user needs a number")?,
                );
            }
            Some("--limits") => {
                setup.limits = next("--limits", &mut it)?
                    .to_str()
                    .and_then(super::Limits::from_args)
                    .ok_or("--limits needs five numbers")?;
            }
            Some("--") => return Ok((setup, it.cloned().collect())),
            Some(flag) => {
                let mut value = || next(flag, &mut it);
                let view = setup.view.get_or_insert_with(Default::default);
                if !view.parse_arg(flag, &mut value)? {
                    return Err(format!("unexpected argument {arg:?}"));
                }
            }
            None => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    Err("no program after `--`".into())
}

/// The helper's `main`: sets the sandbox up and becomes the program.
/// Returns only on failure, with the exit status to use.
pub fn main(args: &[OsString]) -> i32 {
    match run(args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("netgrade: cannot start the program: {e}");
            127
        }
    }
}

fn run(args: &[OsString]) -> Result<std::convert::Infallible, String> {
    use std::os::unix::process::CommandExt;
    let (setup, argv) = parse(args)?;
    let open =
        |p: &Path| std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()));
    let netns = setup.netns.as_deref().map(open).transpose()?;
    let lifeline = setup.lifeline.as_deref().map(open).transpose()?;
    use std::os::unix::ffi::OsStrExt;
    let cgroups = setup
        .cgroups
        .iter()
        .map(|p| std::ffi::CString::new(p.as_os_str().as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    // SAFETY: valid paths.
    unsafe { super::limits::join(&cgroups) }
        .map_err(|e| format!("cannot join the run's cgroup: {e}"))?;
    setup.limits.apply(!cgroups.is_empty());
    let view = match &setup.view {
        Some(view) => {
            let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
            let plan = super::view::Plan::new(view, &setup.binds, &cwd, setup.lifeline.is_some())
                .map_err(|e| format!("cannot plan the run's view of the files: {e}"))?;
            Some(plan)
        }
        None => None,
    };
    let child = ChildSetup::with_lifeline(
        netns.as_ref().map(|f| f.as_raw_fd()),
        &setup.binds,
        lifeline.as_ref().map(|f| f.as_raw_fd()),
    )
    .map_err(|e| e.to_string())?
    .as_user(setup.user)
    .with_view(view);
    // SAFETY: this process has one thread; `enter` forks the relay and init
    // (which never return) and returns in the process that becomes the program.
    unsafe { child.enter() }.map_err(|e| format!("cannot enter the sandbox: {e}"))?;
    drop((netns, lifeline));
    let (program, rest) = argv.split_first().ok_or("the command is empty")?;
    let e = std::process::Command::new(program).args(rest).exec();
    Err(format!("cannot run {program:?}: {e}"))
}

/// Whether `program` can be started with `path` (the program's PATH) from
/// `cwd`: a name is looked up in PATH, a path must be an executable file.
pub fn findable(program: &str, path: &str, cwd: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(&cwd.join(program));
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .any(|d| executable(&Path::new(d).join(program)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_round_trip() {
        let setup = Setup {
            netns: Some("/proc/1/fd/3".into()),
            binds: vec![("/tmp/a".into(), "/etc/hosts".into())],
            lifeline: Some("/proc/1/fd/4".into()),
            limits: super::super::Limits {
                file_size: 1 << 20,
                ..Default::default()
            },
            cgroups: vec!["/sys/fs/cgroup/x/cgroup.procs".into()],
            user: Some(64001),
            view: Some(super::super::view::View {
                work: "/tmp/w".into(),
                tmp_size: 4096,
                ..Default::default()
            }),
        };
        let argv = vec!["python3".to_string(), "--".into(), "x y".into()];
        let args = args(&setup, &argv);
        assert_eq!(args[0], SUBCOMMAND);
        let (back, program) = parse(&args[1..]).unwrap();
        assert_eq!(back.netns, setup.netns);
        assert_eq!(back.binds, setup.binds);
        assert_eq!(back.lifeline, setup.lifeline);
        assert_eq!(back.limits, setup.limits);
        assert_eq!(back.cgroups, setup.cgroups);
        assert_eq!(back.user, Some(64001));
        assert_eq!(back.view, setup.view);
        assert_eq!(program, ["python3", "--", "x y"]);
        assert!(parse(&["--netns".into()]).is_err());
        assert!(
            parse(&["--limits".into(), "1,2,3,4,5".into()]).is_err(),
            "no program"
        );
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(findable("sh", "/usr/bin:/bin", dir.path()));
        assert!(!findable(
            "no-such-interpreter-xyz",
            "/usr/bin:/bin",
            dir.path()
        ));
        assert!(!findable("./client", "/bin", dir.path()));
        let exe = dir.path().join("client");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(findable("./client", "/bin", dir.path()));
    }
}
