//! Hostile submissions are contained: the run's limits stop them with a
//! clear outcome, nothing of theirs outlives the batch, and the good
//! submissions graded beside them keep their full marks.

mod common;

use std::process::Stdio;

use common::{assert_nothing_left, read_json, root, run_of, status};

/// netgrade, from the repository root, making its scratch folder in
/// `scratch`, quiet.
fn batch(scratch: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("netgrade"));
    cmd.current_dir(root())
        .env("TMPDIR", scratch)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

fn hostile(name: &str) -> String {
    format!("fixtures/hostile/{name}")
}

/// Whether netgrade can make cgroups on this machine (as root, with the
/// `pids` and `memory` controllers, v2 or v1).
fn cgroups() -> bool {
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.subtree_control")
        .is_ok_and(|c| c.contains("pids") && c.contains("memory"));
    let v1 = std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
        && std::path::Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists();
    // SAFETY: geteuid has no preconditions.
    (v2 || v1) && unsafe { libc::geteuid() } == 0
}

#[test]
fn a_fork_bomb_and_a_memory_hog_are_stopped_and_the_good_runs_keep_full_marks() {
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let good = "fixtures/udp-pinger/reference";
    let mut child = batch(scratch.path())
        .args(["run", "udp-pinger", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args([
            hostile("fork-bomb"),
            hostile("memory-hog"),
            good.into(),
            good.into(),
        ])
        .spawn()
        .unwrap();
    let netgrade_pid = child.id();
    let status_code = child.wait().unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for run in runs
        .iter()
        .filter(|r| r["submission"].as_str().unwrap().ends_with(good))
    {
        assert_eq!(run["score"], run["max_score"], "{run}");
    }

    let bomb = run_of(&report, &hostile("fork-bomb"));
    assert_eq!(status(bomb, "runs"), "fail");
    let hog = run_of(&report, &hostile("memory-hog"));
    assert_eq!(status(hog, "runs"), "fail");
    let limits = hog["program"]["limits"].as_str().unwrap_or_default();
    assert!(limits.contains("1 GiB of memory"), "{hog}");
    if cgroups() {
        // The whole run shares one memory limit, enforced by the kernel.
        assert_eq!(
            hog["program"]["exit"]["kind"], "limit-exceeded",
            "{}",
            hog["program"]
        );
        let exit = hog["program"]["exit"]["limit"].as_str().unwrap();
        assert!(exit.contains("more than 1 GiB of memory"), "{exit}");
        let said = bomb["program"]["diagnoses"].to_string();
        assert!(
            said.contains("limit of 256 processes") || said.contains("1 GiB of memory"),
            "{said}"
        );
    } else {
        // Each process's writable memory is capped: the allocation fails.
        let stderr = hog["program"]["diagnoses"].to_string();
        assert!(stderr.contains("MemoryError"), "{hog}");
    }
    assert_nothing_left(scratch.path());
    // Every cgroup of the batch is gone (they are named after netgrade's pid).
    let prefix = format!("netgrade-{netgrade_pid}-");
    let cgroups_left: Vec<_> = [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/memory",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flatten()
    .flatten()
    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    .map(|e| e.path())
    .collect();
    assert!(cgroups_left.is_empty(), "{cgroups_left:?}");
    // The hog's gigabyte went with its processes (checked above) and with
    // the run's size-limited folder: no mount of the batch is left (a
    // per-run test: other work on the machine may use memory meanwhile).
    let scratch_path = scratch.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(scratch_path.as_str()))
        .collect();
    assert!(left.is_empty(), "mounts left after the batch: {left:?}");
}

#[test]
fn kill_all_a_daemon_and_100_000_open_files_are_contained() {
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let good = "fixtures/udp-pinger/reference";
    let hostiles = ["kill-all", "daemon", "open-files"].map(hostile);
    let status_code = batch(scratch.path())
        .args(["run", "udp-pinger", "-j", "4", "--quiet", "--json"])
        .arg(&json)
        .args(&hostiles)
        .arg(good)
        .status()
        .unwrap();
    // netgrade itself was not killed, and wrote its report.
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    let good_run = run_of(&report, good);
    assert_eq!(good_run["score"], good_run["max_score"], "{good_run}");
    // The daemon it left was found and killed with the run.
    let daemon = run_of(&report, &hostile("daemon"));
    assert_eq!(daemon["program"]["leftover_processes"], 1, "{daemon}");
    assert_eq!(status(daemon, "runs"), "fail");
    let files = run_of(&report, &hostile("open-files"));
    let said = files["program"]["diagnoses"].to_string();
    assert!(said.contains("Too many open files"), "{said}");
    assert!(!said.contains("/tmp/"), "work paths are not shown: {said}");
    assert_eq!(
        status(run_of(&report, &hostile("kill-all")), "runs"),
        "fail"
    );
    assert_nothing_left(scratch.path());
}

#[test]
fn a_program_runs_as_a_user_of_its_own_that_reaches_nothing_of_the_others() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // identities are made by root only
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let snapshots = out.path().join("snap");
    let status_code = batch(scratch.path())
        .args(["run", "udp-pinger", "-j", "2", "--quiet", "--json"])
        .arg(&json)
        .arg("--snapshots")
        .arg(&snapshots)
        .arg(hostile("reads-secrets"))
        .arg("fixtures/udp-pinger/reference")
        .status()
        .unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    // It exits 0 only when every attempt was refused.
    let run = run_of(&report, &hostile("reads-secrets"));
    assert_eq!(status(run, "runs"), "pass", "{run}");
    let transcript: String = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    let uid = transcript
        .lines()
        .find_map(|l| l.strip_prefix("running as uid "))
        .and_then(|n| n.trim().parse::<u32>().ok())
        .expect("the program says which user it ran as");
    assert_ne!(uid, 0);
    let good = run_of(&report, "fixtures/udp-pinger/reference");
    assert_eq!(good["score"], good["max_score"], "{good}");
    assert_nothing_left(scratch.path());
}

/// A class laid out where the system's folders are visible (`/var/lib`):
/// the lab file beside its answers, the submissions, the reports.
struct Class {
    dir: tempfile::TempDir,
}

impl Class {
    fn new() -> Class {
        let dir = tempfile::Builder::new()
            .prefix("netgrade-class-")
            .tempdir_in("/var/lib")
            .unwrap();
        for sub in ["lab", "subs", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::copy(
            root().join("labs/udp-pinger.yaml"),
            dir.path().join("lab/udp-pinger.yaml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("lab/golden.txt"), "the answers").unwrap();
        Class { dir }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join(rel)
    }

    /// Copies fixture `from` into the class as `name`, with `targets`.
    fn submit(&self, from: &str, name: &str, targets: &[std::path::PathBuf]) -> std::path::PathBuf {
        let to = self.path(&format!("subs/{name}"));
        std::fs::create_dir(&to).unwrap();
        for entry in std::fs::read_dir(root().join(from)).unwrap().flatten() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        let list: String = targets
            .iter()
            .map(|t| format!("{}\n", t.display()))
            .collect();
        std::fs::write(to.join("targets.txt"), list).unwrap();
        to
    }
}

#[test]
fn no_program_reads_or_writes_the_answers_the_reports_or_another_submission() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // the class is laid out in /var/lib
    }
    let class = Class::new();
    let json = class.path("out/r.json");
    std::fs::write(&json, "{}").unwrap();
    let good = class.submit("fixtures/udp-pinger/reference", "good", &[]);
    let targets = [
        class.path("lab/golden.txt"),
        class.path("lab"),
        json.clone(),
        class.path("out"),
        good.clone(),
        good.join("UDPPingerClient.py"),
        class.path("subs"),
    ];
    let reader = class.submit("fixtures/hostile/reads-secrets", "reader", &targets);
    let writer = class.submit("fixtures/hostile/writes-report", "writer", &targets);
    let scratch = tempfile::tempdir().unwrap();
    let lab = class.path("lab/udp-pinger.yaml");
    let before = std::fs::read(&lab).unwrap();
    let status_code = batch(scratch.path())
        .arg("run")
        .arg(&lab)
        .args(["-j", "3", "--quiet", "--json"])
        .arg(&json)
        .args([&reader, &writer, &good])
        .status()
        .unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    for hostile in [&reader, &writer] {
        let run = run_of(&report, &hostile.display().to_string());
        // Each exits 0 only when every attempt was refused.
        assert_eq!(status(run, "runs"), "pass", "{run}");
    }
    let good_run = run_of(&report, &good.display().to_string());
    assert_eq!(good_run["score"], good_run["max_score"], "{good_run}");
    // Nothing was planted anywhere, and the lab is as it was.
    assert_eq!(std::fs::read(&lab).unwrap(), before);
    let planted: Vec<_> = walk(class.dir.path())
        .into_iter()
        .chain(["/etc", "/var", "/usr/local"].map(std::path::PathBuf::from))
        .filter(|p| p.join("planted.json").exists() || p.join("netgrade-planted").exists())
        .collect();
    assert!(planted.is_empty(), "{planted:?}");
    assert_nothing_left(scratch.path());
}

/// Every folder under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

#[test]
fn a_disk_filler_fills_only_its_own_small_disks() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // work folders are size-limited file systems only as root
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let lab = out.path().join("small-disk.yaml");
    let yaml = std::fs::read_to_string(root().join("labs/udp-pinger.yaml")).unwrap();
    let yaml = yaml.replacen(
        "  output_limit: 64KiB\n",
        "  output_limit: 64KiB\n  limits:\n    disk: 32MiB\n",
        1,
    );
    std::fs::write(&lab, yaml).unwrap();
    let json = out.path().join("r.json");
    let good = "fixtures/udp-pinger/reference";
    let status_code = batch(scratch.path())
        .arg("run")
        .arg(&lab)
        .args(["-j", "2", "--quiet", "--json"])
        .arg(&json)
        .args([&hostile("disk-filler"), good])
        .status()
        .unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    let good_run = run_of(&report, good);
    assert_eq!(good_run["score"], good_run["max_score"], "{good_run}");
    let filler = run_of(&report, &hostile("disk-filler"));
    let said = filler.to_string();
    for folder in [".", "/tmp", "/dev/shm"] {
        assert!(
            said.contains(&format!(
                "{folder}: stopped after 32 MiB: No space left on device"
            )) || said.contains(&format!(
                "{folder}: stopped after 31 MiB: No space left on device"
            )),
            "{folder}: {said}"
        );
    }
    let diagnoses = filler["program"]["diagnoses"].to_string();
    assert!(diagnoses.contains("ran out of disk"), "{diagnoses}");
    // The disk is as it was: nothing of the batch is left, not even a
    // mounted work folder.
    assert_nothing_left(scratch.path());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let scratch_path = scratch.path().display().to_string();
    assert!(!mounts.contains(&scratch_path), "{mounts}");
}

/// Whether `uid` may make user namespaces here (as that user, when root).
fn user_namespaces_for(uid: Option<u32>) -> bool {
    let mut cmd = std::process::Command::new("unshare");
    if let Some(uid) = uid {
        cmd = std::process::Command::new("setpriv");
        cmd.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "unshare",
        ]);
    }
    cmd.args(["--user", "--mount", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn without_root_the_same_programs_are_contained() {
    // As root, the batch runs as `nobody`; otherwise as the user running the tests.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let user = root.then_some(65534u32);
    if root
        && std::process::Command::new("setpriv")
            .arg("--version")
            .output()
            .is_err()
    {
        return; // no way to drop root here
    }
    // Everything the run needs, where that user may read it.
    let place = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(place.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = place.path().join("netgrade");
    std::fs::copy(assert_cmd::cargo::cargo_bin("netgrade"), &exe).unwrap();
    // Without a user namespace nothing keeps a program from signalling
    // netgrade (the same user) or from leaving a daemon: the report says so,
    // and those two are not run.
    let namespaces = user_namespaces_for(user);
    let names: &[&str] = if namespaces {
        &[
            "reads-secrets",
            "kill-all",
            "daemon",
            "fork-bomb",
            "memory-hog",
        ]
    } else {
        &["reads-secrets", "fork-bomb", "memory-hog"]
    };
    let copy = |from: &std::path::Path, to: &std::path::Path| {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    };
    for name in names {
        copy(&root_dir().join(hostile(name)), &place.path().join(name));
    }
    copy(
        &root_dir().join("fixtures/udp-pinger/reference"),
        &place.path().join("good"),
    );
    let scratch = place.path().join("scratch");
    let home = place.path().join("home");
    let out = place.path().join("out");
    for dir in [&scratch, &home, &out] {
        std::fs::create_dir(dir).unwrap();
        if let Some(uid) = user {
            std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
        }
    }
    let mut cmd = match user {
        Some(uid) => {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    let status_code = cmd
        .current_dir(place.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TMPDIR", &scratch)
        .env("NO_COLOR", "1")
        .args([
            "run",
            "udp-pinger",
            "-j",
            "3",
            "--quiet",
            "--json",
            "out/r.json",
        ])
        .args(names)
        .arg("good")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&out.join("r.json"));
    let good = run_of(&report, "good");
    assert_eq!(good["score"], good["max_score"], "{good}");
    let notes = |name: &str| run_of(&report, name)["notes"].to_string();
    for name in names.iter().filter(|n| **n != "reads-secrets") {
        assert_eq!(status(run_of(&report, name), "runs"), "fail", "{name}");
    }
    if namespaces {
        // A user namespace gives the run its own view of the files and its
        // own PID namespace: the secrets are out of sight, the daemon dies
        // with the run.
        let reader = run_of(&report, "reads-secrets");
        assert_eq!(status(reader, "runs"), "pass", "{reader}");
        let daemon = run_of(&report, "daemon");
        assert_eq!(daemon["program"]["leftover_processes"], 1, "{daemon}");
        assert!(
            notes("good").contains("did not get a user of its own"),
            "{}",
            notes("good")
        );
        assert!(!notes("good").contains("private view"), "{}", notes("good"));
    } else {
        assert!(notes("good").contains("a private view of the files"));
    }
    assert_nothing_left(&scratch);
}

fn root_dir() -> std::path::PathBuf {
    root()
}

#[test]
fn a_program_that_reaches_for_the_world_finds_only_loopback() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // without root there is no private network: it must not run
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("r.json");
    let good = "fixtures/udp-pinger/reference";
    let status_code = batch(scratch.path())
        .args(["run", "udp-pinger", "-j", "2", "--quiet", "--json"])
        .arg(&json)
        .arg("--snapshots")
        .arg(out.path().join("snap"))
        .args([&hostile("reaches-out"), good])
        .status()
        .unwrap();
    assert_eq!(status_code.code(), Some(1));
    let report = read_json(&json);
    let reacher = run_of(&report, &hostile("reaches-out"));
    // It exits 0 only with loopback alone, every attempt ending on this machine.
    assert_eq!(status(reacher, "runs"), "pass", "{reacher}");
    let said: String = std::fs::read_dir(out.path().join("snap"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(said.contains("interfaces: lo\n"), "{said}");
    // Refused on this machine, and seen by netgrade's watcher there.
    for host in ["10.0.0.1", "93.184.216.34"] {
        let refused = format!("tcp {host}:80: refused on this machine\n");
        assert!(said.contains(&refused), "{said}");
        let seen = format!("stray: 1 TCP packet(s) to {host}:80, where no server listens");
        assert!(said.contains(&seen), "{said}");
    }
    let good_run = run_of(&report, good);
    assert_eq!(good_run["score"], good_run["max_score"], "{good_run}");
    assert_nothing_left(scratch.path());
}
