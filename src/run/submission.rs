//! Finding and preparing a submission: copy it into a private work directory,
//! pick its entry file, and build its command line from a language preset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::roles;
use crate::spec::{ProgramSpec, Role};

/// Most files copied from one submission.
const MAX_FILES: usize = 2000;
/// Most bytes copied from one submission.
const MAX_BYTES: u64 = 64 << 20;
/// How deep entry files are searched for (students zip folders in folders).
const MAX_DEPTH: usize = 3;

/// The languages netgrade knows how to build and run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// `python3 FILE`
    Python,
    /// `javac *.java`, then `java -cp . CLASS`
    Java,
    /// `cc -O2 -o NAME *.c -lm`, then `./NAME`
    C,
    /// `go build -o NAME` (the folder's files, or the module), then `./NAME`
    Go,
    /// `rustc --edition 2021 -O -o NAME FILE.rs`, then `./NAME`
    Rust,
    /// A Cargo project: `cargo build --release --offline`, then its binary
    Cargo,
    /// An executable file (a binary or a script with `#!`).
    Executable,
}

impl Language {
    /// The language of `path`, from its extension or its executable bit.
    /// Go test files (`*_test.go`) are never programs.
    pub fn of(path: &Path) -> Option<Language> {
        let name = path.file_name()?.to_string_lossy();
        if name == "Cargo.toml" {
            return Some(Language::Cargo);
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("py") => Some(Language::Python),
            Some("java") => Some(Language::Java),
            Some("c") => Some(Language::C),
            Some("go") => (!name.ends_with("_test.go")).then_some(Language::Go),
            Some("rs") => Some(Language::Rust),
            _ => {
                use std::os::unix::fs::PermissionsExt;
                let meta = std::fs::metadata(path).ok()?;
                (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                    .then_some(Language::Executable)
            }
        }
    }
}

/// The chosen entry file.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Directory the program runs in (the entry's folder inside the work directory).
    pub dir: PathBuf,
    /// File name of the entry inside `dir` (`Cargo.toml` for a Cargo project).
    pub file: String,
    /// The program's name: the file name without extension, or a Cargo
    /// project's binary.
    pub stem: String,
    /// Its language.
    pub language: Language,
    /// The folder of the Go module (`go.mod`) the entry belongs to, if any.
    pub module: Option<PathBuf>,
    /// Why this file was chosen, when there was a choice.
    pub note: Option<String>,
}

/// netgrade's cache: `$XDG_CACHE_HOME/netgrade`, else as root
/// `/var/cache/netgrade`, else `~/.cache/netgrade` (Go's build cache, the
/// labs' Python environments).
pub fn cache_dir() -> PathBuf {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(xdg) = absolute(std::env::var_os("XDG_CACHE_HOME")) {
        return xdg.join("netgrade");
    }
    // As root, programs run as users of their own: the cache (a lab's
    // Python packages) must be readable by them, which root's home is not.
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/cache/netgrade");
    }
    if let Some(home) = absolute(std::env::var_os("HOME")) {
        return home.join(".cache").join("netgrade");
    }
    let uid = nix::unistd::getuid();
    std::env::temp_dir().join(format!("netgrade-cache-{uid}"))
}

/// Copies `src` (a directory or a single file) into `dst`, skipping VCS and cache folders.
pub fn copy_submission(src: &Path, dst: &Path) -> Result<(), String> {
    let mut files = 0usize;
    let mut bytes = 0u64;
    if src.is_file() {
        let name = src
            .file_name()
            .ok_or("the submission path has no file name")?;
        std::fs::copy(src, dst.join(name))
            .map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
        return Ok(());
    }
    copy_dir(src, dst, 0, &mut files, &mut bytes)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    depth: usize,
    files: &mut usize,
    bytes: &mut u64,
) -> Result<(), String> {
    let entries =
        std::fs::read_dir(src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if matches!(
            name_str.as_ref(),
            ".git" | "__pycache__" | ".venv" | "venv" | "node_modules" | ".idea" | ".vscode"
        ) {
            continue;
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let target = dst.join(&name);
        if kind.is_dir() && depth < 6 {
            std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
            copy_dir(&entry.path(), &target, depth + 1, files, bytes)?;
        } else if kind.is_file() {
            *files += 1;
            *bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            if *files > MAX_FILES || *bytes > MAX_BYTES {
                return Err(format!(
                    "the submission is too large (over {MAX_FILES} files or {} MiB); submit only your source files",
                    MAX_BYTES >> 20
                ));
            }
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("cannot copy {}: {e}", entry.path().display()))?;
        }
        // Symlinks are not followed: a submission cannot pull in files from elsewhere.
    }
    Ok(())
}

/// Matches `name` against a glob with `*` and `?`.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn list_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let path = rel.join(e.file_name());
            if kind.is_file() {
                out.push(path);
            } else if kind.is_dir() && depth < MAX_DEPTH {
                walk(root, &path, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), 0, &mut out);
    out.sort_by_key(|p| (p.components().count(), p.clone()));
    out
}

/// The subfolders of `dir` that each hold a file the lab would take for
/// its entry (sorted by name, hidden folders aside), when `dir` itself has
/// no such file at its top: a roster of submissions, as GitHub Classroom's
/// assistant and LMS downloads lay them out, not one submission.
pub fn roster_of(dir: &Path, spec: &ProgramSpec) -> Vec<PathBuf> {
    let matches = |name: &std::ffi::OsStr| {
        let name = name.to_string_lossy();
        spec.entry.iter().any(|p| glob_match(p, &name))
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut folders = Vec::new();
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_file() && matches(&e.file_name()) {
            return Vec::new();
        }
        if kind.is_dir() && !e.file_name().to_string_lossy().starts_with('.') {
            folders.push(e.path());
        }
    }
    folders.retain(|f| {
        list_files(f)
            .iter()
            .any(|file| file.file_name().is_some_and(matches))
    });
    folders.sort();
    folders
}

/// Picks the entry file in `root` following the spec's candidates. In a
/// client lab, a file that looks like the lab's server (it binds one of
/// `server_ports`, listens for connections, or is named like the handout's
/// server) is never chosen while a client is there.
pub fn find_entry(root: &Path, spec: &ProgramSpec, server_ports: &[u16]) -> Result<Entry, String> {
    find_entry_among(root, spec, server_ports, &spec.entry)
}

/// Like [`find_entry`] for a run started with `--cmd`: when none of the
/// lab's entry names is there, any program in the command's language (any
/// language netgrade knows, when the command does not say) will do.
pub fn find_entry_for_command(
    root: &Path,
    spec: &ProgramSpec,
    server_ports: &[u16],
    command: &str,
) -> Result<Entry, String> {
    let lab_named = find_entry(root, spec, server_ports);
    if lab_named.is_ok() {
        return lab_named;
    }
    let patterns = command_patterns(command);
    match find_entry_among(root, spec, server_ports, &patterns) {
        Ok(mut entry) => {
            let taken = format!(
                "no file has a name the lab expects ({}); took {}, a program in the language of --cmd",
                spec.entry.join(", "),
                entry.file
            );
            entry.note = Some(match entry.note {
                Some(n) => format!("{taken}; {n}"),
                None => taken,
            });
            Ok(entry)
        }
        Err(_) => lab_named,
    }
}

/// Entry names for the language a command runs (`python3 …` → `*.py`).
fn command_patterns(command: &str) -> Vec<String> {
    let program = shlex::split(command)
        .and_then(|w| w.into_iter().next())
        .unwrap_or_default();
    let program = Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let patterns: &[&str] = match program.as_str() {
        p if p.starts_with("python") => &["*.py"],
        "java" | "javac" => &["*.java"],
        "go" => &["*.go"],
        "cargo" => &["Cargo.toml"],
        "rustc" => &["*.rs"],
        "cc" | "gcc" | "clang" => &["*.c"],
        _ => &["*.py", "*.java", "*.go", "Cargo.toml", "*.rs", "*.c"],
    };
    patterns.iter().map(|p| p.to_string()).collect()
}

/// A file the entry search passed over, and why.
struct PassedOver {
    file: PathBuf,
    why: String,
}

fn find_entry_among(
    root: &Path,
    spec: &ProgramSpec,
    server_ports: &[u16],
    patterns: &[String],
) -> Result<Entry, String> {
    let files = list_files(root);
    let client_lab = spec.role == Role::Client;
    let names = spec.server_names();
    let mut judged: HashMap<PathBuf, Option<String>> = HashMap::new();
    let mut passed: Vec<PassedOver> = Vec::new();
    let mut only_server: Option<(&PathBuf, String)> = None;
    for pattern in patterns {
        let matches: Vec<&PathBuf> = files
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| glob_match(pattern, &n.to_string_lossy()))
            })
            // A homework's entry is its answers file, in no language.
            .filter(|f| spec.role == Role::Answers || Language::of(&root.join(f)).is_some())
            .collect();
        let mut clients = Vec::new();
        for f in matches {
            let why = judged
                .entry(f.clone())
                .or_insert_with(|| {
                    client_lab
                        .then(|| roles::server_evidence(root, f, &names, server_ports))
                        .flatten()
                })
                .clone();
            match why {
                Some(why) => {
                    if !passed.iter().any(|p| &p.file == f) {
                        only_server.get_or_insert((f, why.clone()));
                        passed.push(PassedOver {
                            file: f.clone(),
                            why,
                        });
                    }
                }
                None => clients.push(f),
            }
        }
        if clients.is_empty() {
            continue;
        }
        let (chosen, mut note) = choose(root, spec, pattern, &clients);
        if !passed.is_empty() {
            let over: Vec<String> = passed
                .iter()
                .map(|p| format!("passed over {}: {}", p.file.display(), p.why))
                .collect();
            let graded = format!("graded {}; {}", chosen.display(), over.join("; "));
            note = Some(match note {
                Some(n) => format!("{graded}; {n}"),
                None => graded,
            });
        }
        return entry_for(root, chosen, note);
    }
    if let Some((server, why)) = only_server {
        let note = format!(
            "graded {}, although it looks like the lab's server ({why}): no other program was found; this lab grades your client",
            server.display()
        );
        return entry_for(root, server, Some(note));
    }
    let seen: Vec<String> = files
        .iter()
        .take(12)
        .map(|f| f.display().to_string())
        .collect();
    Err(format!(
        "no program to run: looked for {} and found {}; name your program like the handout does, or pass --cmd",
        patterns.join(", "),
        if seen.is_empty() {
            "no files at all".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

/// The first of `matches` (which all match `pattern`), preferring those that
/// contain the spec's `contains`, and C or Go files that have a `main`; and
/// a note when there was a choice.
fn choose<'a>(
    root: &Path,
    spec: &ProgramSpec,
    pattern: &str,
    matches: &[&'a PathBuf],
) -> (&'a PathBuf, Option<String>) {
    let runnable: Vec<&PathBuf> = matches
        .iter()
        .copied()
        .filter(|f| has_main(&root.join(f)))
        .collect();
    let pool = if runnable.is_empty() {
        matches
    } else {
        &runnable
    };
    let preferred: Vec<&PathBuf> = match &spec.contains {
        Some(needle) => pool
            .iter()
            .copied()
            .filter(|f| std::fs::read(root.join(f)).is_ok_and(|b| contains(&b, needle.as_bytes())))
            .collect(),
        None => Vec::new(),
    };
    let chosen = preferred.first().copied().unwrap_or(pool[0]);
    let note = (matches.len() > 1).then(|| {
        let names: Vec<String> = matches.iter().map(|m| m.display().to_string()).collect();
        format!(
            "several files match `{pattern}` ({}); graded {}{}",
            names.join(", "),
            chosen.display(),
            if preferred.is_empty() {
                String::new()
            } else {
                format!(
                    " (it contains `{}`)",
                    spec.contains.as_deref().unwrap_or_default()
                )
            }
        )
    });
    (chosen, note)
}

/// The entry for `chosen` (relative to `root`): a Rust file inside a Cargo
/// project becomes the project; a Go file notes its module.
fn entry_for(root: &Path, chosen: &Path, note: Option<String>) -> Result<Entry, String> {
    let path = root.join(chosen);
    let language = Language::of(&path).unwrap_or(Language::Executable);
    let folder = chosen.parent().unwrap_or(Path::new(""));
    let enclosing = |marker: &str| {
        folder
            .ancestors()
            .find(|d| root.join(d).join(marker).is_file())
            .map(|d| root.join(d))
    };
    let file = chosen
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if matches!(language, Language::Rust | Language::Cargo)
        && let Some(project) = enclosing("Cargo.toml")
    {
        let stem = cargo_binary(&project.join("Cargo.toml")).unwrap_or_else(|| {
            project
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "main".into())
        });
        return Ok(Entry {
            dir: project,
            file: "Cargo.toml".into(),
            stem,
            language: Language::Cargo,
            module: None,
            note,
        });
    }
    let stem = Path::new(&file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Entry {
        dir: root.join(folder),
        file,
        stem,
        language,
        module: (language == Language::Go)
            .then(|| enclosing("go.mod"))
            .flatten(),
        note,
    })
}

/// The binary a Cargo project builds: its first `[[bin]]`'s name, else the
/// package's name.
fn cargo_binary(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let mut section = String::new();
    let (mut package, mut bin) = (None, None);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "name" {
            continue;
        }
        let value = value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_string();
        match section.as_str() {
            "[package]" => package = package.or(Some(value)),
            "[[bin]]" => bin = bin.or(Some(value)),
            _ => {}
        }
    }
    bin.or(package).filter(|n| !n.is_empty())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Values for `{host}`, `{port}`, `{addr}`, `{entry}`, `{stem}`, `{dir}`,
/// `{listen}` and `{instance}`.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: String,
    /// `host:port` (an IPv6 host in brackets).
    pub addr: String,
    /// Entry file name.
    pub entry: String,
    /// Entry file name without extension (a Cargo project's binary).
    pub stem: String,
    /// The directory the program runs in (absolute).
    pub dir: String,
    /// A server's port to listen on: this instance's (`program.port` + instance − 1).
    pub listen: String,
    /// This instance's number, from 1.
    pub instance: String,
    /// The lab's (or the case's) `program.args`, filled: `{args}` (all of
    /// them, as separate words), `{arg1}`, `{arg2}` … (one each).
    pub args: Vec<String>,
}

impl Placeholders {
    /// Replaces every placeholder in `s`.
    pub fn fill(&self, s: &str) -> String {
        let s = s
            .replace("{host}", &self.host)
            .replace("{port}", &self.port)
            .replace("{addr}", &self.addr)
            .replace("{entry}", &self.entry)
            .replace("{stem}", &self.stem)
            .replace("{dir}", &self.dir)
            .replace("{listen}", &self.listen)
            .replace("{instance}", &self.instance);
        self.fill_args(s)
    }

    /// Replaces `{arg1}`, `{arg2}` … (an argument the lab does not give is empty).
    fn fill_args(&self, mut s: String) -> String {
        while let Some(at) = s.find("{arg") {
            let rest = &s[at + 4..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || rest.as_bytes().get(digits) != Some(&b'}') {
                break;
            }
            let n: usize = rest[..digits].parse().unwrap_or(0);
            let value = n.checked_sub(1).and_then(|i| self.args.get(i)).cloned();
            s.replace_range(at..at + 4 + digits + 1, &value.unwrap_or_default());
        }
        s
    }
}

/// Whether a command needs the entry file (`{entry}` or `{stem}`).
pub fn uses_entry(command: &str) -> bool {
    command.contains("{entry}") || command.contains("{stem}")
}

/// Splits a command string like a POSIX shell would (quotes, escapes), then fills placeholders.
pub fn split_command(command: &str, ph: &Placeholders) -> Result<Vec<String>, String> {
    let words = shlex::split(command)
        .ok_or_else(|| format!("cannot split `{command}` into words: check its quotes"))?;
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words
        .iter()
        .flat_map(|w| match w.as_str() {
            "{args}" => ph.args.clone(),
            w => vec![ph.fill(w)],
        })
        .collect())
}

/// The build and run command lines for `entry`.
pub fn commands(
    entry: &Entry,
    spec: &ProgramSpec,
    ph: &Placeholders,
) -> Result<(Option<Vec<String>>, Vec<String>), String> {
    let build = match &spec.build {
        Some(b) => Some(split_command(b, ph)?),
        None => preset_build(entry, ph),
    };
    let mut run = match (&spec.command, entry.language) {
        (Some(c), _) => split_command(c, ph)?,
        (None, Language::Python) => vec!["python3".into(), entry.file.clone()],
        (None, Language::Java) => vec!["java".into(), "-cp".into(), ".".into(), ph.stem.clone()],
        (None, Language::C | Language::Go | Language::Rust) => vec![format!("./{}", ph.stem)],
        (None, Language::Cargo) => vec![format!("./target/release/{}", ph.stem)],
        (None, Language::Executable) => vec![format!("./{}", entry.file)],
    };
    if spec.command.is_none() {
        run.extend(spec.args.iter().map(|a| ph.fill(a)));
    }
    Ok((build, run))
}

/// The language preset's build step, if the language has one.
fn preset_build(entry: &Entry, ph: &Placeholders) -> Option<Vec<String>> {
    let words = |w: &[&str]| -> Vec<String> { w.iter().map(|s| s.to_string()).collect() };
    let cmd = match entry.language {
        Language::Java => {
            let mut cmd = words(&["javac", "-encoding", "UTF-8", "-d", "."]);
            cmd.extend(sources(&entry.dir, ".java"));
            cmd
        }
        Language::C => {
            let mut cmd = words(&["cc", "-O2", "-o", &ph.stem]);
            cmd.extend(program_sources(entry, ".c", c_main));
            cmd.push("-lm".into());
            cmd
        }
        Language::Go => {
            let mut cmd = words(&["go", "build", "-o", &ph.stem]);
            match entry.module {
                Some(_) => cmd.push(".".into()),
                None => cmd.extend(program_sources(entry, ".go", go_main)),
            }
            cmd
        }
        Language::Rust => words(&[
            "rustc",
            "--edition",
            "2021",
            "-O",
            "-o",
            &ph.stem,
            &entry.file,
        ]),
        Language::Cargo => words(&[
            "cargo",
            "build",
            "--release",
            "--offline",
            "--target-dir",
            "target",
        ]),
        Language::Python | Language::Executable => return None,
    };
    Some(cmd)
}

/// The files of `dir` whose names end with `ext`, in name order.
fn sources(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

/// The files of the entry's folder ending in `ext`, without other programs:
/// another file with its own `main` (`defines_main` says so for one line),
/// such as the handout's server, would not link with the entry.
fn program_sources(entry: &Entry, ext: &str, defines_main: fn(&str) -> bool) -> Vec<String> {
    let has_main = |file: &str| {
        std::fs::read_to_string(entry.dir.join(file))
            .is_ok_and(|text| text.lines().any(defines_main))
    };
    sources(&entry.dir, ext)
        .into_iter()
        .filter(|f| !f.ends_with("_test.go"))
        .filter(|f| *f == entry.file || !has_main(f))
        .collect()
}

/// Whether `path` can be a program's entry: a C or Go file must define
/// `main`; other files can.
fn has_main(path: &Path) -> bool {
    let defines_main: fn(&str) -> bool = match path.extension().and_then(|e| e.to_str()) {
        Some("c") => c_main,
        Some("go") => go_main,
        _ => return true,
    };
    std::fs::read_to_string(path).is_ok_and(|text| text.lines().any(defines_main))
}

/// `func main()` at the start of a Go line.
fn go_main(line: &str) -> bool {
    line.starts_with("func main()") || line.starts_with("func main ()")
}

/// `int main(` or `void main(` at the start of a C line.
fn c_main(line: &str) -> bool {
    let mut words = line.split_whitespace();
    matches!(words.next(), Some("int" | "void"))
        && words
            .next()
            .is_some_and(|w| w == "main" || w.starts_with("main("))
}

/// Environment variables a language needs: honest, unbuffered output;
/// builds that download nothing; the toolchains and caches of the user
/// running netgrade (the program's own `HOME` is its work directory).
pub fn language_env(language: Language) -> Vec<(String, String)> {
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let from_env_or_home = |var: &str, under_home: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(under_home)))
            .map(|p| (var.to_string(), p.display().to_string()))
    };
    match language {
        Language::Python => vec![
            pair("PYTHONUNBUFFERED", "1"),
            pair("PYTHONDONTWRITEBYTECODE", "1"),
            pair("PYTHONIOENCODING", "utf-8"),
        ],
        Language::Go => {
            let mut env = vec![
                pair(
                    "GOCACHE",
                    &cache_dir().join("go-build").display().to_string(),
                ),
                pair("GOPROXY", "off"),
                pair("GOTOOLCHAIN", "local"),
                pair("GOFLAGS", "-mod=mod"),
            ];
            env.extend(from_env_or_home("GOPATH", "go"));
            env
        }
        Language::Rust | Language::Cargo => {
            let mut env = vec![pair("CARGO_NET_OFFLINE", "true")];
            env.extend(from_env_or_home("CARGO_HOME", ".cargo"));
            env.extend(from_env_or_home("RUSTUP_HOME", ".rustup"));
            env.extend(
                std::env::var("RUSTUP_TOOLCHAIN")
                    .ok()
                    .map(|t| pair("RUSTUP_TOOLCHAIN", &t)),
            );
            env
        }
        Language::Java | Language::C | Language::Executable => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(entry: &[&str], contains: Option<&str>) -> ProgramSpec {
        let yaml = format!(
            "entry: [{}]\n{}args: [\"{{host}}\", \"{{port}}\"]\n",
            entry
                .iter()
                .map(|e| format!("\"{e}\""))
                .collect::<Vec<_>>()
                .join(", "),
            contains
                .map(|c| format!("contains: {c}\n"))
                .unwrap_or_default()
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob_match("*.py", "client.py"));
        assert!(!glob_match("*.py", "client.pyc"));
        assert!(glob_match("UDP?inger*", "UDPPingerClient.py"));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn named_candidate_wins_then_contains_breaks_ties() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("helper.py"), "x = 1").unwrap();
        std::fs::write(dir.path().join("ping.py"), "socket.SOCK_DGRAM").unwrap();
        let e = find_entry(
            dir.path(),
            &spec(&["UDPPingerClient.py", "*.py"], Some("SOCK_DGRAM")),
            &[],
        )
        .unwrap();
        assert_eq!(e.file, "ping.py");
        assert!(e.note.unwrap().contains("contains `SOCK_DGRAM`"));
        std::fs::write(dir.path().join("UDPPingerClient.py"), "").unwrap();
        let e = find_entry(
            dir.path(),
            &spec(&["UDPPingerClient.py", "*.py"], Some("SOCK_DGRAM")),
            &[],
        )
        .unwrap();
        assert_eq!(e.file, "UDPPingerClient.py");
        assert_eq!(e.language, Language::Python);
    }

    #[test]
    fn entries_in_a_subfolder_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lab2/src")).unwrap();
        std::fs::write(dir.path().join("lab2/src/UDPPingerClient.py"), "").unwrap();
        let e = find_entry(dir.path(), &spec(&["UDPPingerClient.py"], None), &[]).unwrap();
        assert!(e.dir.ends_with("lab2/src"));
    }

    #[test]
    fn nothing_found_lists_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let err = find_entry(dir.path(), &spec(&["*.py"], None), &[]).unwrap_err();
        assert!(err.contains("notes.txt"), "{err}");
        assert!(err.contains("--cmd"), "{err}");
    }

    #[test]
    fn presets_build_commands() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("UDPPinger.java"), "").unwrap();
        let e = find_entry(dir.path(), &spec(&["*.java"], None), &[]).unwrap();
        let ph = Placeholders {
            host: "127.0.0.1".into(),
            port: "12000".into(),
            addr: "127.0.0.1:12000".into(),
            entry: e.file.clone(),
            stem: "UDPPinger".into(),
            dir: String::new(),
            ..Default::default()
        };
        let (build, run) = commands(&e, &spec(&["*.java"], None), &ph).unwrap();
        assert_eq!(
            build.unwrap(),
            ["javac", "-encoding", "UTF-8", "-d", ".", "UDPPinger.java"]
        );
        assert_eq!(run, ["java", "-cp", ".", "UDPPinger", "127.0.0.1", "12000"]);
    }

    #[test]
    fn command_strings_split_like_a_shell() {
        let ph = Placeholders {
            host: "h".into(),
            port: "1".into(),
            addr: "h:1".into(),
            entry: "a b.py".into(),
            stem: "a b".into(),
            dir: "/w".into(),
            args: Vec::new(),
            listen: "6882".into(),
            instance: "2".into(),
        };
        assert_eq!(
            split_command("python3 '{entry}' {host} {port} {dir} {addr}", &ph).unwrap(),
            ["python3", "a b.py", "h", "1", "/w", "h:1"]
        );
        assert_eq!(
            split_command("./{stem} --listen {listen} --name peer{instance}", &ph).unwrap(),
            ["./a b", "--listen", "6882", "--name", "peer2"]
        );
        // The lab's arguments, reordered or all at once.
        let ph = Placeholders {
            args: vec!["swarm.torrent".into(), "out file.bin".into()],
            ..ph
        };
        assert_eq!(
            split_command("python3 x.py download -o {arg2} {arg1} {arg3}", &ph).unwrap(),
            [
                "python3",
                "x.py",
                "download",
                "-o",
                "out file.bin",
                "swarm.torrent",
                ""
            ]
        );
        assert_eq!(
            split_command("python3 x.py {args} --verbose", &ph).unwrap(),
            [
                "python3",
                "x.py",
                "swarm.torrent",
                "out file.bin",
                "--verbose"
            ]
        );
        assert_eq!(ph.fill("{argument}{arg}"), "{argument}{arg}");
        assert!(uses_entry("python3 {entry}") && uses_entry("./{stem}"));
        assert!(!uses_entry("python3 ping.py {addr}"));
        assert!(split_command("python3 'unclosed", &ph).is_err());
    }

    const PINGER_ENTRY: &[&str] = &[
        "UDPPingerClient.py",
        "pinger.py",
        "client.py",
        "*.py",
        "*.java",
        "*.go",
        "Cargo.toml",
        "*.rs",
    ];

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const HANDOUT_SERVER: &str = "import random\nfrom socket import *\nserverSocket = socket(AF_INET, SOCK_DGRAM)\nserverSocket.bind(('', 12000))\nwhile True:\n    message, address = serverSocket.recvfrom(1024)\n    serverSocket.sendto(message.upper(), address)\n";
    const CLIENT: &str = "from socket import *\nserverName = 'localhost'\nserverPort = 12000\nclientSocket = socket(AF_INET, SOCK_DGRAM)\nclientSocket.sendto(b'Ping 1', (serverName, serverPort))\n";

    #[test]
    fn the_handouts_server_beside_the_client_is_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "UDPPingerServer.py", HANDOUT_SERVER);
        write(dir.path(), "ping_client.py", CLIENT);
        let e = find_entry(
            dir.path(),
            &spec(PINGER_ENTRY, Some("SOCK_DGRAM")),
            &[12000],
        )
        .unwrap();
        assert_eq!(e.file, "ping_client.py");
        let note = e.note.unwrap();
        assert!(
            note.starts_with(
                "graded ping_client.py; passed over UDPPingerServer.py: it binds port 12000"
            ),
            "{note}"
        );
        assert!(
            note.contains("line 4: `serverSocket.bind(('', 12000))`"),
            "{note}"
        );
    }

    #[test]
    fn a_server_named_like_the_client_pattern_is_still_passed_over() {
        // The server even matches an earlier entry name than the client.
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "pinger.py", HANDOUT_SERVER);
        write(dir.path(), "client_to_server.py", CLIENT);
        let e = find_entry(dir.path(), &spec(PINGER_ENTRY, None), &[12000]).unwrap();
        assert_eq!(e.file, "client_to_server.py");
        assert!(e.note.unwrap().contains("passed over pinger.py"));
    }

    #[test]
    fn a_server_by_name_alone() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a_server.py", "print('not finished')\n");
        write(dir.path(), "b.py", CLIENT);
        let e = find_entry(dir.path(), &spec(&["*.py"], None), &[12000]).unwrap();
        assert_eq!(e.file, "b.py");
        assert!(e.note.unwrap().contains(
            "passed over a_server.py: its name is like the handout's server's (`*server*`)"
        ));
    }

    #[test]
    fn the_only_program_is_graded_even_if_it_is_a_server() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "UDPPingerServer.py", HANDOUT_SERVER);
        let e = find_entry(dir.path(), &spec(PINGER_ENTRY, None), &[12000]).unwrap();
        assert_eq!(e.file, "UDPPingerServer.py");
        let note = e.note.unwrap();
        assert!(
            note.contains("although it looks like the lab's server"),
            "{note}"
        );
        assert!(note.contains("this lab grades your client"), "{note}");
    }

    #[test]
    fn a_server_lab_grades_servers() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "WebServer.py",
            "s.bind(('', 6789))\ns.listen(1)\n",
        );
        write(dir.path(), "client.py", CLIENT);
        let mut server_lab = spec(&["*.py"], None);
        server_lab.role = Role::Server;
        let e = find_entry(dir.path(), &server_lab, &[]).unwrap();
        assert_eq!(e.file, "WebServer.py");
        assert_eq!(
            e.note.unwrap(),
            "several files match `*.py` (WebServer.py, client.py); graded WebServer.py"
        );
    }

    #[test]
    fn go_and_rust_entries() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "go/pinger.go", "package main\nfunc main() {}\n");
        write(dir.path(), "go/util.go", "package main\nfunc helper() {}\n");
        write(dir.path(), "go/pinger_test.go", "package main\n");
        write(
            dir.path(),
            "go/udpserver.go",
            "package main\nfunc main() {}\n",
        );
        let go = find_entry(&dir.path().join("go"), &spec(&["*.go"], None), &[12000]).unwrap();
        assert_eq!(
            (go.file.as_str(), go.language, go.module.is_none()),
            ("pinger.go", Language::Go, true)
        );
        let ph = Placeholders {
            stem: go.stem.clone(),
            ..Default::default()
        };
        let (build, run) = commands(&go, &spec(&["*.go"], None), &ph).unwrap();
        // Not the test file, and not the other program with its own main().
        assert_eq!(
            build.unwrap(),
            ["go", "build", "-o", "pinger", "pinger.go", "util.go"]
        );
        assert_eq!(run[0], "./pinger");
        write(
            dir.path(),
            "mod/go.mod",
            "module example.com/p\n\ngo 1.19\n",
        );
        write(
            dir.path(),
            "mod/cmd/ping/main.go",
            "package main\nfunc main() {}\n",
        );
        let m = find_entry(&dir.path().join("mod"), &spec(&["*.go"], None), &[]).unwrap();
        assert!(m.dir.ends_with("mod/cmd/ping") && m.module.as_ref().unwrap().ends_with("mod"));
        let ph = Placeholders {
            stem: m.stem.clone(),
            ..Default::default()
        };
        assert_eq!(
            commands(&m, &spec(&["*.go"], None), &ph)
                .unwrap()
                .0
                .unwrap(),
            ["go", "build", "-o", "main", "."]
        );

        write(dir.path(), "rs/pinger.rs", "fn main() {}\n");
        let r = find_entry(
            &dir.path().join("rs"),
            &spec(&["Cargo.toml", "*.rs"], None),
            &[],
        )
        .unwrap();
        let ph = Placeholders {
            stem: r.stem.clone(),
            ..Default::default()
        };
        let (build, run) = commands(&r, &spec(&["*.rs"], None), &ph).unwrap();
        assert_eq!(
            build.unwrap(),
            [
                "rustc",
                "--edition",
                "2021",
                "-O",
                "-o",
                "pinger",
                "pinger.rs"
            ]
        );
        assert_eq!(run, ["./pinger", "", ""]);

        write(
            dir.path(),
            "cargo/Cargo.toml",
            "[package]\nname = \"udp-ping\" # the crate\nversion = \"0.1.0\"\n\n[dependencies]\n",
        );
        write(dir.path(), "cargo/src/main.rs", "fn main() {}\n");
        for patterns in [&["Cargo.toml"][..], &["*.rs"][..]] {
            let c = find_entry(&dir.path().join("cargo"), &spec(patterns, None), &[]).unwrap();
            assert_eq!(
                (c.file.as_str(), c.stem.as_str(), c.language),
                ("Cargo.toml", "udp-ping", Language::Cargo)
            );
            assert!(c.dir.ends_with("cargo"));
            let ph = Placeholders {
                stem: c.stem.clone(),
                ..Default::default()
            };
            let (build, run) = commands(&c, &spec(patterns, None), &ph).unwrap();
            assert_eq!(
                build.unwrap(),
                [
                    "cargo",
                    "build",
                    "--release",
                    "--offline",
                    "--target-dir",
                    "target"
                ]
            );
            assert_eq!(run[0], "./target/release/udp-ping");
        }
    }

    #[test]
    fn c_builds_leave_out_other_programs() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "pinger.c",
            "#include <stdio.h>\nint main(int argc, char *argv[])\n{\n}\n",
        );
        write(dir.path(), "net.c", "int open_socket(void) { return 0; }\n");
        write(
            dir.path(),
            "UDPPingerServer.c",
            "int main (void) {\n  bind(fd, &a, sizeof a);\n}\n",
        );
        let e = find_entry(dir.path(), &spec(&["*.c"], None), &[12000]).unwrap();
        assert_eq!(e.file, "pinger.c");
        let ph = Placeholders {
            stem: e.stem.clone(),
            ..Default::default()
        };
        let (build, _) = commands(&e, &spec(&["*.c"], None), &ph).unwrap();
        assert_eq!(
            build.unwrap(),
            ["cc", "-O2", "-o", "pinger", "net.c", "pinger.c", "-lm"]
        );
        assert!(
            c_main("void main() {") && c_main("int main(void)") && !c_main("int mainloop(void)")
        );
    }

    #[test]
    fn cargo_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = 'pkg'\n[[bin]]\nname = \"pinger\"\npath = \"src/p.rs\"\n",
        )
        .unwrap();
        assert_eq!(cargo_binary(&manifest).as_deref(), Some("pinger"));
        std::fs::write(&manifest, "[workspace]\n").unwrap();
        assert_eq!(cargo_binary(&manifest), None);
    }

    #[test]
    fn toolchains_download_nothing_and_share_a_cache() {
        let go = language_env(Language::Go);
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&go, "GOPROXY").as_deref(), Some("off"));
        assert_eq!(get(&go, "GOTOOLCHAIN").as_deref(), Some("local"));
        assert!(get(&go, "GOCACHE").unwrap().ends_with("netgrade/go-build"));
        let rust = language_env(Language::Cargo);
        assert_eq!(get(&rust, "CARGO_NET_OFFLINE").as_deref(), Some("true"));
        assert!(get(&rust, "CARGO_HOME").is_some());
    }

    #[test]
    fn cmd_finds_a_program_in_its_language() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "ping.go", "package main\nfunc main() {}\n");
        write(dir.path(), "notes.py", "print(1)\n");
        let lab = spec(&["UDPPingerClient.py"], None);
        let e = find_entry_for_command(dir.path(), &lab, &[], "go run {entry} {addr}").unwrap();
        assert_eq!(e.file, "ping.go");
        assert!(
            e.note
                .unwrap()
                .contains("no file has a name the lab expects (UDPPingerClient.py); took ping.go")
        );
        let err = find_entry_for_command(dir.path(), &lab, &[], "java {stem}").unwrap_err();
        assert!(err.contains("looked for UDPPingerClient.py"), "{err}");
        assert_eq!(command_patterns("/usr/bin/python3.11 x"), ["*.py"]);
    }
}
