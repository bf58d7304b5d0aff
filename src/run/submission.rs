//! Finding and preparing a submission: copy it into a private work directory,
//! pick its entry file, and build its command line from a language preset.

use std::path::{Path, PathBuf};

use crate::spec::ProgramSpec;

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
    /// An executable file (a binary or a script with `#!`).
    Executable,
}

impl Language {
    /// The language of `path`, from its extension or its executable bit.
    pub fn of(path: &Path) -> Option<Language> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("py") => Some(Language::Python),
            Some("java") => Some(Language::Java),
            Some("c") => Some(Language::C),
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
    /// File name of the entry inside `dir`.
    pub file: String,
    /// Its language.
    pub language: Language,
    /// Why this file was chosen, when there was a choice.
    pub note: Option<String>,
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

/// Picks the entry file in `root` following the spec's candidates.
pub fn find_entry(root: &Path, spec: &ProgramSpec) -> Result<Entry, String> {
    let files = list_files(root);
    for pattern in &spec.entry {
        let matches: Vec<&PathBuf> = files
            .iter()
            .filter(|f| {
                f.file_name()
                    .is_some_and(|n| glob_match(pattern, &n.to_string_lossy()))
            })
            .filter(|f| Language::of(&root.join(f)).is_some())
            .collect();
        if matches.is_empty() {
            continue;
        }
        let preferred: Vec<&PathBuf> = match &spec.contains {
            Some(needle) => matches
                .iter()
                .copied()
                .filter(|f| {
                    std::fs::read(root.join(f)).is_ok_and(|b| contains(&b, needle.as_bytes()))
                })
                .collect(),
            None => Vec::new(),
        };
        let pool = if preferred.is_empty() {
            &matches
        } else {
            &preferred
        };
        let chosen = pool[0];
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
        let dir = root.join(chosen.parent().unwrap_or(Path::new("")));
        let file = chosen
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let language = Language::of(&root.join(chosen)).unwrap_or(Language::Executable);
        return Ok(Entry {
            dir,
            file,
            language,
            note,
        });
    }
    let seen: Vec<String> = files
        .iter()
        .take(12)
        .map(|f| f.display().to_string())
        .collect();
    Err(format!(
        "no program to run: looked for {} and found {}; name your program like the handout does, or pass --cmd",
        spec.entry.join(", "),
        if seen.is_empty() {
            "no files at all".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Values for `{host}`, `{port}`, `{entry}`, `{stem}`, `{dir}`.
#[derive(Clone, Debug, Default)]
pub struct Placeholders {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: String,
    /// Entry file name.
    pub entry: String,
    /// Entry file name without extension.
    pub stem: String,
    /// The directory the program runs in (absolute).
    pub dir: String,
}

impl Placeholders {
    /// Replaces every placeholder in `s`.
    pub fn fill(&self, s: &str) -> String {
        s.replace("{host}", &self.host)
            .replace("{port}", &self.port)
            .replace("{entry}", &self.entry)
            .replace("{stem}", &self.stem)
            .replace("{dir}", &self.dir)
    }
}

/// Splits a command string like a POSIX shell would (quotes, escapes), then fills placeholders.
pub fn split_command(command: &str, ph: &Placeholders) -> Result<Vec<String>, String> {
    let words = shlex::split(command)
        .ok_or_else(|| format!("cannot split `{command}` into words: check its quotes"))?;
    if words.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(words.iter().map(|w| ph.fill(w)).collect())
}

/// The build and run command lines for `entry`.
pub fn commands(
    entry: &Entry,
    spec: &ProgramSpec,
    ph: &Placeholders,
) -> Result<(Option<Vec<String>>, Vec<String>), String> {
    let sources = |ext: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&entry.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(ext))
            .collect();
        v.sort();
        v
    };
    let build = match (&spec.build, entry.language) {
        (Some(b), _) => Some(split_command(b, ph)?),
        (None, Language::Java) => {
            let mut cmd: Vec<String> = ["javac", "-encoding", "UTF-8", "-d", "."]
                .map(String::from)
                .into();
            cmd.extend(sources(".java"));
            Some(cmd)
        }
        (None, Language::C) => {
            let mut cmd: Vec<String> =
                vec!["cc".into(), "-O2".into(), "-o".into(), ph.stem.clone()];
            cmd.extend(sources(".c"));
            cmd.push("-lm".into());
            Some(cmd)
        }
        (None, _) => None,
    };
    let mut run = match (&spec.command, entry.language) {
        (Some(c), _) => split_command(c, ph)?,
        (None, Language::Python) => vec!["python3".into(), entry.file.clone()],
        (None, Language::Java) => vec!["java".into(), "-cp".into(), ".".into(), ph.stem.clone()],
        (None, Language::C) => vec![format!("./{}", ph.stem)],
        (None, Language::Executable) => vec![format!("./{}", entry.file)],
    };
    if spec.command.is_none() {
        run.extend(spec.args.iter().map(|a| ph.fill(a)));
    }
    Ok((build, run))
}

/// Environment variables a language needs for honest, unbuffered output.
pub fn language_env(language: Language) -> Vec<(String, String)> {
    match language {
        Language::Python => vec![
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONIOENCODING".into(), "utf-8".into()),
        ],
        _ => Vec::new(),
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
        )
        .unwrap();
        assert_eq!(e.file, "ping.py");
        assert!(e.note.unwrap().contains("contains `SOCK_DGRAM`"));
        std::fs::write(dir.path().join("UDPPingerClient.py"), "").unwrap();
        let e = find_entry(
            dir.path(),
            &spec(&["UDPPingerClient.py", "*.py"], Some("SOCK_DGRAM")),
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
        let e = find_entry(dir.path(), &spec(&["UDPPingerClient.py"], None)).unwrap();
        assert!(e.dir.ends_with("lab2/src"));
    }

    #[test]
    fn nothing_found_lists_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let err = find_entry(dir.path(), &spec(&["*.py"], None)).unwrap_err();
        assert!(err.contains("notes.txt"), "{err}");
        assert!(err.contains("--cmd"), "{err}");
    }

    #[test]
    fn presets_build_commands() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("UDPPinger.java"), "").unwrap();
        let e = find_entry(dir.path(), &spec(&["*.java"], None)).unwrap();
        let ph = Placeholders {
            host: "127.0.0.1".into(),
            port: "12000".into(),
            entry: e.file.clone(),
            stem: "UDPPinger".into(),
            dir: String::new(),
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
            entry: "a b.py".into(),
            stem: "a b".into(),
            dir: "/w".into(),
        };
        assert_eq!(
            split_command("python3 '{entry}' {host} {port} {dir}", &ph).unwrap(),
            ["python3", "a b.py", "h", "1", "/w"]
        );
        assert!(split_command("python3 'unclosed", &ph).is_err());
    }
}
