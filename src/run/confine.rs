//! What a run's program (and its build) may be and see: a user of its own
//! (as root), and a private view of the file system (as root, or without
//! root in a user namespace where the kernel allows one).
//!
//! The view shows the toolchains read-only: the folders on the program's
//! `PATH` and the homes of Cargo and rustup. Go's build cache is shared by
//! every run through an overlay: netgrade fills it once with the standard
//! library (building a program of its own, never a student's), and each
//! run's writes stay in its own memory, so no submission can plant anything
//! in another's build.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::submission::{Language, cache_dir};
use super::workspace::Workspace;
use crate::rt::blocking;
use crate::sandbox::{self, identity::Identity, view::View};

/// Where a run sees Go's build cache.
const GO_CACHE_IN_VIEW: &str = "/run/netgrade/go-build";

/// The protections a run got, and those this machine could not give.
#[derive(Debug, Default)]
pub struct Confinement {
    /// The run's own user (as root).
    pub identity: Option<Identity>,
    /// The run's view of the file system.
    pub view: Option<View>,
    /// Environment for the view (where the caches are).
    pub env: Vec<(String, String)>,
    /// Why the program must not run at all: as root, netgrade runs no
    /// student code as root, and found no user to run it as.
    pub refused: Option<String>,
}

impl Confinement {
    /// For the report: the protections this run's program did not get, and
    /// why (`None` when it got them all).
    pub fn missing(&self) -> Option<String> {
        let lacking: &[&str] = match (&self.identity, &self.view) {
            (Some(_), Some(_)) => return None,
            (None, Some(_)) => &[
                "a user of its own (it ran as netgrade's user)",
                "a size limit on its work folder",
            ],
            _ => &[
                "a user of its own (it ran as netgrade's user)",
                "a private view of the files (it could read what netgrade's user can)",
                "a PID namespace (what it left running was found by process group only)",
                "a size limit on its work folder",
            ],
        };
        let how = if self.view.is_some() {
            "run netgrade as root to have them"
        } else {
            "run netgrade as root, or where users may make user namespaces, to have them"
        };
        Some(format!(
            "sandbox: this run's program did not get {}; {how}",
            lacking.join(", nor ")
        ))
    }

    /// Whether the program gets a PID namespace of its own (root, or a user
    /// namespace).
    pub fn pid_namespace(&self) -> bool {
        self.view.is_some()
    }
}

/// Whether this process may give runs a view of their own: as root, or
/// where the kernel lets users make user namespaces.
pub fn views_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| nix::unistd::geteuid().is_root() || user_namespaces())
}

/// Tries a user namespace as the sandbox uses one (in a child that exits at
/// once): made, its maps written, and a file system mounted in it. Some
/// systems let the first step succeed and refuse the rest (Ubuntu's
/// AppArmor restriction of unprivileged user namespaces).
fn user_namespaces() -> bool {
    use std::os::unix::process::CommandExt;
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let (Ok(uid_map), Ok(gid_map)) = (
        std::ffi::CString::new(format!("{uid} {uid} 1\n")),
        std::ffi::CString::new(format!("{gid} {gid} 1\n")),
    ) else {
        return false;
    };
    let mut probe = std::process::Command::new("/bin/true");
    // SAFETY: raw system calls on strings made before the fork.
    unsafe {
        probe.pre_exec(move || {
            let fail = || Err(std::io::Error::last_os_error());
            crate::sandbox::init::user_namespace(&uid_map, &gid_map)?;
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return fail();
            }
            let mounted = libc::mount(
                c"none".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            );
            if mounted != 0 {
                return fail();
            }
            Ok(())
        });
    }
    probe
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The run's confinement: an identity owning the work folder (root), and
/// its view, with the toolchains that `env` (the program's environment)
/// points at.
pub async fn confine(
    work: &Workspace,
    language: Language,
    env: &[(String, String)],
    disk: u64,
) -> Confinement {
    let root = nix::unistd::geteuid().is_root();
    if !views_available() {
        return Confinement::default();
    }
    let identity = if root {
        let dir = work.root().to_path_buf();
        match blocking(move || claim(&dir)).await {
            Some(identity) => Some(identity),
            None => {
                return Confinement {
                    refused: Some(format!(
                        "netgrade found no user to run this program as (all {} of its users, {}–{}, are in use by other runs, or its work folder could not be given to one), and it never runs student code as root: grade fewer submissions at once",
                        sandbox::identity::COUNT,
                        sandbox::identity::FIRST,
                        sandbox::identity::FIRST + sandbox::identity::COUNT - 1
                    )),
                    ..Confinement::default()
                };
            }
        }
    } else {
        None
    };
    let scratch = crate::sandbox::janitor::scratch();
    let stage = match sandbox::view::stage_in(&scratch) {
        Ok(stage) => stage,
        // As root, no view means no run: the program would see everything.
        Err(e) if root => {
            return Confinement {
                refused: Some(format!(
                    "netgrade cannot make this run's view of the files ({e} in {}): check that its temporary folder is writable",
                    scratch.display()
                )),
                ..Confinement::default()
            };
        }
        Err(_) => return Confinement::default(),
    };
    let mut view = View {
        stage,
        work: work.root().to_path_buf(),
        read_only: toolchains(env, root),
        hidden: [scratch]
            .into_iter()
            .chain(sandbox::view::hidden())
            .collect(),
        caches: Vec::new(),
        tmp_size: disk,
        owner: identity.as_ref().map(|i| i.id),
    };
    let mut env = Vec::new();
    if language == Language::Go
        && let Some(cache) = warm_go_cache().await
    {
        view.caches.push((cache, GO_CACHE_IN_VIEW.into()));
        env.push(("GOCACHE".into(), GO_CACHE_IN_VIEW.into()));
        env.push(("GOPATH".into(), "/tmp/go".into()));
    }
    Confinement {
        identity,
        view: Some(view),
        env,
        refused: None,
    }
}

/// An identity owning `work`; `None` when netgrade is not root, every
/// identity is taken, or the folder cannot be given to it.
fn claim(work: &Path) -> Option<Identity> {
    let identity = Identity::claim()?;
    identity.own(work).ok()?;
    Some(identity)
}

/// The toolchain folders a program's environment points at: for each
/// folder on its `PATH`, the toolchain around it (`~/.pyenv` for
/// `~/.pyenv/shims`, `/opt/go` for `/opt/go/bin`), and the homes of Cargo and
/// rustup its language sets. As root, only what every user may reach
/// (root's own toolchains stay out of sight, as they are out of reach).
fn toolchains(env: &[(String, String)], root: bool) -> Vec<PathBuf> {
    let get = |key: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let path = get("PATH").or_else(|| std::env::var("PATH").ok());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut out: Vec<PathBuf> = path
        .unwrap_or_default()
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| toolchain_of(Path::new(d), home.as_deref()))
        .filter(|p| !root || reachable_by_all(p))
        .collect();
    // The homes its language asks for (Cargo's and rustup's), even root's.
    for key in ["CARGO_HOME", "RUSTUP_HOME"] {
        out.extend(get(key).map(PathBuf::from).filter(|p| p.is_absolute()));
    }
    out.dedup();
    out
}

/// Whether every user may enter `dir` (and every folder above it).
fn reachable_by_all(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(real) = std::fs::canonicalize(dir) else {
        return false;
    };
    real.ancestors()
        .all(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The toolchain a `PATH` folder belongs to: the parent of a `bin` or
/// `shims` folder, unless that is `/`, a home folder or a system folder.
fn toolchain_of(dir: &Path, home: Option<&Path>) -> PathBuf {
    let named = |n: &str| dir.file_name().is_some_and(|f| f == n);
    match dir.parent() {
        Some(parent)
            if (named("bin") || named("shims"))
                && parent.parent().is_some()
                && Some(parent) != home
                && parent.parent() != Some(Path::new("/home"))
                && !parent.starts_with("/usr") =>
        {
            parent.to_path_buf()
        }
        _ => dir.to_path_buf(),
    }
}

/// Whether the Go cache was filled by this process (or found filled).
static GO_CACHE: tokio::sync::Mutex<Option<Option<PathBuf>>> = tokio::sync::Mutex::const_new(None);

/// A program that uses what the labs' Go programs use, built into the
/// shared cache so that their builds find the standard library compiled.
const GO_WARM_UP: &str = r#"package main

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var _ = []any{bufio.NewReader, tls.Client, base64.StdEncoding, binary.BigEndian,
	flag.Parse, fmt.Println, io.Copy, log.Println, math.Abs, net.Dial, http.Get,
	mail.ReadMessage, smtp.Dial, textproto.NewReader, os.Exit, signal.Notify,
	sort.Ints, strconv.Itoa, strings.Split, sync.WaitGroup{}, time.Now}

func main() {}
"#;

/// The shared Go build cache, filled with the standard library by a build
/// of netgrade's own program (once per process; the first Go run waits for
/// it). `None` when Go cannot build here: runs then build into their own
/// `/tmp`.
async fn warm_go_cache() -> Option<PathBuf> {
    let mut cache = GO_CACHE.lock().await;
    if let Some(known) = &*cache {
        return known.clone();
    }
    let private = cache_dir().join("private");
    let dir = private.join("go-build");
    let built = build_warm_up(&private, &dir).await;
    let found = built.then_some(dir);
    *cache = Some(found.clone());
    found
}

async fn build_warm_up(private: &Path, cache: &Path) -> bool {
    let (private, cache) = (private.to_path_buf(), cache.to_path_buf());
    let made = blocking({
        let (private, cache) = (private.clone(), cache.clone());
        move || -> std::io::Result<tempfile::TempDir> {
            use std::os::unix::fs::PermissionsExt;
            // The cache itself is open to all (the Python environments);
            // `private` is root's alone.
            std::fs::create_dir_all(&cache)?;
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
            let src = tempfile::tempdir()?;
            std::fs::write(src.path().join("warm.go"), GO_WARM_UP)?;
            Ok(src)
        }
    })
    .await;
    let Ok(src) = made else { return false };
    let run = tokio::process::Command::new("go")
        .args(["build", "-o", "/dev/null", "warm.go"])
        .current_dir(src.path())
        .env("GOCACHE", &cache)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "off")
        .env("HOME", src.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let ok = matches!(
        tokio::time::timeout(Duration::from_secs(600), run).await,
        Ok(Ok(s)) if s.success()
    );
    // Each run's user writes into the cache through its overlay: the
    // cache's folders and files must let it (the cache sits in a folder
    // closed to everyone but root).
    ok && blocking(move || open_tree(&cache)).await.is_ok()
}

/// Makes every folder under `dir` writable and every file readable and
/// writable by all (their own overlay copies, that is).
fn open_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_symlink() {
        return Ok(());
    }
    let mode = if meta.is_dir() { 0o777 } else { 0o666 };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            open_tree(&entry?.path())?;
        }
    }
    Ok(())
}

/// The sandbox settings of a command under `confinement`.
pub fn apply(cmd: &mut sandbox::Command, confinement: &Confinement) {
    cmd.user = confinement.identity.as_ref().map(|i| i.id);
    cmd.view = confinement.view.clone();
    cmd.env.extend(confinement.env.iter().cloned());
    cmd.pid_namespace |= confinement.pid_namespace();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toolchains_come_from_the_programs_environment() {
        let env = vec![
            (
                "PATH".to_string(),
                "/opt/go/bin:relative:/usr/bin".to_string(),
            ),
            ("CARGO_HOME".to_string(), "/root/.cargo".to_string()),
        ];
        let found = toolchains(&env, false);
        assert!(found.contains(&PathBuf::from("/opt/go")));
        assert!(found.contains(&PathBuf::from("/root/.cargo")));
        assert!(found.contains(&PathBuf::from("/usr/bin")));
        assert!(!found.iter().any(|p| p == Path::new("relative")));
        let home = Some(Path::new("/home/ann"));
        let of = |d: &str| toolchain_of(Path::new(d), home);
        assert_eq!(of("/home/ann/.pyenv/shims"), Path::new("/home/ann/.pyenv"));
        assert_eq!(of("/home/ann/bin"), Path::new("/home/ann/bin"));
        assert_eq!(of("/bin"), Path::new("/bin"));
        assert_eq!(of("/usr/local/bin"), Path::new("/usr/local/bin"));
    }
}
