//! Gradescope's autograder zip for a lab (`netgrade gradescope`): `setup.sh`,
//! which installs the toolchains the lab's programs need and netgrade itself
//! on Gradescope's Ubuntu image; `run_autograder`, which grades
//! `/autograder/submission` into `/autograder/results/results.json` and
//! leaves a results file even when netgrade cannot grade; the netgrade
//! binary; and a lab given as a file, with its data folder.
//!
//! The zip is written here: stored (uncompressed) entries with their CRC-32,
//! Unix modes and a central directory, which is all Gradescope's unzip needs.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::spec::{self, Lab};

/// The most a lab's data folder may hold in the zip.
pub const MAX_DATA_BYTES: u64 = 100 << 20;

/// The most one file may hold in a zip without ZIP64 extensions.
const MAX_ENTRY_BYTES: u64 = u32::MAX as u64;

/// What goes into the zip for a lab.
pub struct Autograder {
    /// Entries in the order they are written.
    pub entries: Vec<Entry>,
}

/// One file of the zip.
pub struct Entry {
    /// Its path inside the zip, with `/` separators.
    pub name: String,
    /// Its Unix permission bits, e.g. `0o755`.
    pub mode: u32,
    /// Its contents.
    pub source: Source,
}

/// Where an entry's bytes come from.
pub enum Source {
    /// These bytes.
    Bytes(Vec<u8>),
    /// This file, read as the zip is written.
    File(PathBuf),
}

/// The autograder of lab `lab_arg` (a built-in lab's name or a lab YAML
/// file), with `binary` as the netgrade it runs.
pub fn build(lab_arg: &str, binary: &Path) -> Result<Autograder, String> {
    let lab = spec::resolve(lab_arg).map_err(|e| {
        format!(
            "the lab `{lab_arg}` does not load:\n{}\nfix it (`netgrade validate {lab_arg}`) and build the autograder again",
            e.render(false)
        )
    })?;
    let meta = std::fs::metadata(binary).map_err(|e| {
        format!(
            "cannot read the netgrade binary {}: {e}; give --binary the path of a netgrade executable",
            binary.display()
        )
    })?;
    if meta.len() > MAX_ENTRY_BYTES {
        return Err(format!(
            "the netgrade binary {} is {} bytes, more than a zip without ZIP64 holds (4 GiB); give --binary a release build",
            binary.display(),
            meta.len()
        ));
    }
    let mut entries = Vec::new();
    let lab_path = match builtin(lab_arg) {
        true => lab_arg.to_string(),
        false => {
            let file = Path::new(lab_arg);
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| format!("the lab path `{lab_arg}` has no file name"))?;
            let yaml = std::fs::read(file)
                .map_err(|e| format!("cannot read the lab file {lab_arg}: {e}"))?;
            entries.push(Entry {
                name: format!("lab/{name}"),
                mode: 0o644,
                source: Source::Bytes(yaml),
            });
            entries.extend(data_entries(&lab, lab_arg)?);
            format!("$AUTOGRADER/source/lab/{name}")
        }
    };
    entries.insert(
        0,
        Entry {
            name: "setup.sh".into(),
            mode: 0o755,
            source: Source::Bytes(setup_sh(&apt_packages(&lab)).into_bytes()),
        },
    );
    entries.insert(
        1,
        Entry {
            name: "run_autograder".into(),
            mode: 0o755,
            source: Source::Bytes(run_autograder(&lab_path).into_bytes()),
        },
    );
    entries.insert(
        2,
        Entry {
            name: "netgrade".into(),
            mode: 0o755,
            source: Source::File(binary.to_path_buf()),
        },
    );
    Ok(Autograder { entries })
}

/// Whether `arg` names a built-in lab, as [`spec::resolve`] reads it.
fn builtin(arg: &str) -> bool {
    let looks_like_path = arg.ends_with(".yaml") || arg.ends_with(".yml") || arg.contains('/');
    !looks_like_path && spec::builtin_names().any(|n| n == arg)
}

/// The lab's data files under `lab/DATA/`, at most [`MAX_DATA_BYTES`].
fn data_entries(lab: &Lab, lab_arg: &str) -> Result<Vec<Entry>, String> {
    let Some(data) = &lab.data else {
        return Ok(Vec::new());
    };
    let folder = Path::new(data);
    if folder.is_absolute()
        || folder.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        return Err(format!(
            "the lab {lab_arg} names its data folder `{data}`, which is not inside the lab's folder; \
             move the folder next to the lab YAML file and write `data: FOLDER`"
        ));
    }
    let total: u64 = lab.files.0.iter().map(|(_, b)| b.len() as u64).sum();
    if total > MAX_DATA_BYTES {
        return Err(format!(
            "the lab's data folder `{data}` holds {} MiB, more than the {} MiB an autograder may carry; \
             keep only the files the lab serves and compares",
            total >> 20,
            MAX_DATA_BYTES >> 20
        ));
    }
    let prefix = data.trim_start_matches("./").trim_end_matches('/');
    Ok(lab
        .files
        .0
        .iter()
        .map(|(path, bytes)| Entry {
            name: format!("lab/{prefix}/{}", path.trim_start_matches('/')),
            mode: 0o644,
            source: Source::Bytes(bytes.clone()),
        })
        .collect())
}

/// The Ubuntu packages the lab's programs need: Python always (netgrade
/// makes a lab's Python environment with `venv`), and the compilers of the
/// languages the lab's `program` names in its entry files, its command and
/// its build; all of them when it names none it knows (`*`, an executable).
pub fn apt_packages(lab: &Lab) -> Vec<&'static str> {
    let program = &lab.program;
    let mut words: Vec<String> = program.entry.clone();
    for command in [&program.command, &program.build].into_iter().flatten() {
        words.extend(shlex::split(command).unwrap_or_default());
    }
    let mut c = false;
    let mut java = false;
    let mut go = false;
    let mut rust = false;
    let mut known = false;
    for word in &words {
        let name = word.rsplit('/').next().unwrap_or(word);
        let ext = name.rsplit_once('.').map(|(_, e)| e);
        match (name, ext) {
            (_, Some("py")) | ("python3" | "python", _) => {}
            (_, Some("c" | "h")) | ("cc" | "gcc" | "make", _) => c = true,
            (_, Some("java" | "jar")) | ("java" | "javac", _) => java = true,
            (_, Some("go")) | ("go" | "go.mod", _) => go = true,
            (_, Some("rs")) | ("Cargo.toml" | "cargo" | "rustc", _) => rust = true,
            _ => continue,
        }
        known = true;
    }
    if !known {
        (c, java, go, rust) = (true, true, true, true);
    }
    let mut packages = vec!["python3", "python3-venv"];
    if c {
        packages.extend(["gcc", "libc6-dev"]);
    }
    if java {
        packages.push("default-jdk-headless");
    }
    if go {
        packages.push("golang-go");
    }
    if rust {
        packages.extend(["rustc", "cargo"]);
    }
    packages
}

/// `setup.sh`: installs `packages` with apt-get and netgrade into
/// `/usr/local/bin`, and fails, saying why, when netgrade cannot run there.
pub fn setup_sh(packages: &[&str]) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image:
# the toolchains the lab's programs need, then netgrade.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends {packages}

here="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
install -m 0755 "$here/netgrade" /usr/local/bin/netgrade
if ! version="$(/usr/local/bin/netgrade --version 2>&1)"; then
  echo "setup.sh: netgrade does not run on this image:" >&2
  echo "  $version" >&2
  echo "  A binary built on a newer system than this image fails with 'GLIBC_2.xx not found'." >&2
  echo "  Fix: build netgrade on the image's Ubuntu release, or build a static one" >&2
  echo "  (cargo build --release --target x86_64-unknown-linux-musl) and pass it to" >&2
  echo "  'netgrade gradescope LAB -o autograder.zip --binary PATH'." >&2
  exit 1
fi
echo "setup.sh: $version installed"
"#,
        packages = packages.join(" ")
    )
}

/// `run_autograder`: grades the submission with lab `lab_path` (a built-in
/// lab's name, or a path under `$AUTOGRADER/source`), and leaves a results
/// file however netgrade ends.
pub fn run_autograder(lab_path: &str) -> String {
    format!(
        r#"#!/usr/bin/env bash
# Gradescope runs this for each submission. netgrade exits 0 (full marks) or
# 1 (points lost) with results.json written; on any other status this makes
# sure Gradescope gets results that say the autograder failed.
set -u
AUTOGRADER="${{AUTOGRADER:-/autograder}}"
results="$AUTOGRADER/results/results.json"
mkdir -p "$AUTOGRADER/results"
rm -f "$results"
netgrade="$(command -v netgrade || echo "$AUTOGRADER/source/netgrade")"

"$netgrade" run "{lab_path}" "$AUTOGRADER/submission" --gradescope "$results" --quiet
status=$?
case "$status" in
  0|1) exit 0 ;;
esac
echo "run_autograder: netgrade exited with status $status" >&2
if [ ! -s "$results" ]; then
  cat > "$results" <<EOF
{{
  "score": 0,
  "output": "**The autograder failed: netgrade could not grade this submission (exit status $status).** This is not your fault; the score of 0 says nothing about your work. Tell your instructor, who can read why in the autograder's output.",
  "output_format": "md",
  "tests": []
}}
EOF
fi
exit 0
"#
    )
}

impl Autograder {
    /// Writes the zip to `path` (through a temporary file beside it).
    pub fn write_zip(&self, path: &Path) -> Result<(), String> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
        let mut zip = ZipWriter::new(BufWriter::new(tmp.as_file()));
        for entry in &self.entries {
            let written = match &entry.source {
                Source::Bytes(bytes) => zip.add(&entry.name, entry.mode, bytes),
                Source::File(file) => zip.add_file(&entry.name, entry.mode, file),
            };
            written.map_err(|e| format!("cannot add {} to the zip: {e}", entry.name))?;
        }
        zip.finish()
            .and_then(|mut w| w.flush())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        tmp.persist(path)
            .map_err(|e| format!("cannot write {}: {}", path.display(), e.error))?;
        Ok(())
    }
}

/// CRC-32 (IEEE, reflected, as zip and gzip use it), table driven.
#[derive(Clone, Copy)]
pub struct Crc32(u32);

/// The table of [`Crc32`]: the CRC of each byte value.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Default for Crc32 {
    fn default() -> Self {
        Crc32(0xFFFF_FFFF)
    }
}

impl Crc32 {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The CRC of everything added.
    pub fn value(self) -> u32 {
        !self.0
    }

    /// The CRC of `bytes`.
    pub fn of(bytes: &[u8]) -> u32 {
        let mut crc = Crc32::default();
        crc.update(bytes);
        crc.value()
    }
}

/// A zip of stored entries written to `W`.
pub struct ZipWriter<W: Write> {
    out: W,
    offset: u64,
    central: Vec<u8>,
    count: u16,
}

/// DOS date of every entry, 1980-01-01 (time 00:00): the same lab makes the
/// same zip.
const DOS_DATE: u16 = (1 << 5) | 1;

impl<W: Write> ZipWriter<W> {
    /// A zip written to `out`.
    pub fn new(out: W) -> Self {
        ZipWriter {
            out,
            offset: 0,
            central: Vec::new(),
            count: 0,
        }
    }

    /// Adds a file `name` of `bytes`, with Unix permissions `mode`.
    pub fn add(&mut self, name: &str, mode: u32, bytes: &[u8]) -> io::Result<()> {
        self.add_from(name, mode, bytes.len() as u64, Crc32::of(bytes), bytes)
    }

    /// Adds the file at `path` as `name`, reading it twice (its CRC, then its bytes).
    pub fn add_file(&mut self, name: &str, mode: u32, path: &Path) -> io::Result<()> {
        let mut file = File::open(path)?;
        let mut crc = Crc32::default();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            crc.update(&buf[..n]);
            size += n as u64;
        }
        file.rewind()?;
        self.add_from(name, mode, size, crc.value(), file.take(size))
    }

    /// Writes an entry's local header, then `size` bytes from `data`.
    fn add_from(
        &mut self,
        name: &str,
        mode: u32,
        size: u64,
        crc: u32,
        mut data: impl Read,
    ) -> io::Result<()> {
        let too_big = |what: &str| io::Error::other(format!("{what} needs ZIP64, not written"));
        let size32 = u32::try_from(size).map_err(|_| too_big("a file over 4 GiB"))?;
        let offset32 = u32::try_from(self.offset).map_err(|_| too_big("a zip over 4 GiB"))?;
        self.count = self
            .count
            .checked_add(1)
            .ok_or_else(|| too_big("more than 65535 files"))?;
        let name_len = u16::try_from(name.len()).map_err(|_| too_big("a name this long"))?;
        // General purpose flag bit 11: the name is UTF-8.
        let flags: u16 = if name.is_ascii() { 0 } else { 1 << 11 };

        let mut local = Vec::with_capacity(30 + name.len());
        local.extend(0x0403_4b50u32.to_le_bytes());
        local.extend(20u16.to_le_bytes()); // version needed: 2.0
        local.extend(flags.to_le_bytes());
        local.extend(0u16.to_le_bytes()); // method: stored
        local.extend(0u16.to_le_bytes()); // time
        local.extend(DOS_DATE.to_le_bytes());
        local.extend(crc.to_le_bytes());
        local.extend(size32.to_le_bytes()); // compressed size
        local.extend(size32.to_le_bytes());
        local.extend(name_len.to_le_bytes());
        local.extend(0u16.to_le_bytes()); // extra field length
        local.extend(name.as_bytes());
        self.out.write_all(&local)?;
        let copied = io::copy(&mut data, &mut self.out)?;
        if copied != size {
            return Err(io::Error::other(format!(
                "{name} changed while it was added ({size} bytes, then {copied})"
            )));
        }

        let c = &mut self.central;
        c.extend(0x0201_4b50u32.to_le_bytes());
        c.extend(((3u16 << 8) | 20).to_le_bytes()); // made by: Unix, 2.0
        c.extend(20u16.to_le_bytes());
        c.extend(flags.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(DOS_DATE.to_le_bytes());
        c.extend(crc.to_le_bytes());
        c.extend(size32.to_le_bytes());
        c.extend(size32.to_le_bytes());
        c.extend(name_len.to_le_bytes());
        c.extend(0u16.to_le_bytes()); // extra
        c.extend(0u16.to_le_bytes()); // comment
        c.extend(0u16.to_le_bytes()); // disk number
        c.extend(0u16.to_le_bytes()); // internal attributes
        c.extend(((0o100000 | (mode & 0o7777)) << 16).to_le_bytes()); // a regular file
        c.extend(offset32.to_le_bytes());
        c.extend(name.as_bytes());
        self.offset += local.len() as u64 + size;
        Ok(())
    }

    /// Writes the central directory and its end record; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let offset = u32::try_from(self.offset)
            .map_err(|_| io::Error::other("a zip over 4 GiB needs ZIP64, not written"))?;
        let size = u32::try_from(self.central.len())
            .map_err(|_| io::Error::other("a central directory over 4 GiB"))?;
        self.out.write_all(&self.central)?;
        let mut end = Vec::with_capacity(22);
        end.extend(0x0605_4b50u32.to_le_bytes());
        end.extend(0u16.to_le_bytes()); // this disk
        end.extend(0u16.to_le_bytes()); // disk of the central directory
        end.extend(self.count.to_le_bytes());
        end.extend(self.count.to_le_bytes());
        end.extend(size.to_le_bytes());
        end.extend(offset.to_le_bytes());
        end.extend(0u16.to_le_bytes()); // comment length
        self.out.write_all(&end)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(Crc32::of(b"123456789"), 0xCBF4_3926);
        assert_eq!(Crc32::of(b""), 0);
        let mut crc = Crc32::default();
        crc.update(b"1234");
        crc.update(b"56789");
        assert_eq!(crc.value(), 0xCBF4_3926);
    }

    #[test]
    fn a_zip_lists_its_entries_with_their_modes() {
        let mut zip = ZipWriter::new(Vec::new());
        zip.add("run_autograder", 0o755, b"#!/bin/sh\n").unwrap();
        zip.add("lab/é.yaml", 0o644, b"name: x\n").unwrap();
        let bytes = zip.finish().unwrap();
        // Local header, name, data; then the central directory and end record.
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(&bytes[30..44], b"run_autograder");
        assert_eq!(&bytes[44..54], b"#!/bin/sh\n");
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let central = u32::from_le_bytes(end[16..20].try_into().unwrap()) as usize;
        let first = &bytes[central..];
        assert_eq!(&first[..4], b"PK\x01\x02");
        assert_eq!(first[5], 3, "made by Unix");
        let attrs = u32::from_le_bytes(first[38..42].try_into().unwrap());
        assert_eq!(attrs >> 16, 0o100755);
        assert_eq!(
            u32::from_le_bytes(first[16..20].try_into().unwrap()),
            Crc32::of(b"#!/bin/sh\n")
        );
    }

    #[test]
    fn packages_follow_the_languages_a_lab_names() {
        let lab = |entry: &str, command: Option<&str>| {
            let yaml = format!(
                "name: t\ntitle: t\nprogram:\n  entry: [{entry}]\n{}checks:\n  - id: runs\n    title: runs\n    points: 1\n",
                command.map_or(String::new(), |c| format!("  command: \"{c}\"\n"))
            );
            spec::load_str("t.yaml", &yaml).unwrap_or_else(|e| panic!("{}", e.render(false)))
        };
        assert_eq!(
            apt_packages(&lab("client.py", None)),
            ["python3", "python3-venv"]
        );
        assert_eq!(
            apt_packages(&lab("\"*.c\", Client.java", None)),
            [
                "python3",
                "python3-venv",
                "gcc",
                "libc6-dev",
                "default-jdk-headless"
            ]
        );
        assert_eq!(
            apt_packages(&lab("client", Some("go run {entry}"))),
            ["python3", "python3-venv", "golang-go"]
        );
        assert_eq!(
            apt_packages(&lab("\"*\"", None)),
            [
                "python3",
                "python3-venv",
                "gcc",
                "libc6-dev",
                "default-jdk-headless",
                "golang-go",
                "rustc",
                "cargo"
            ]
        );
    }

    #[test]
    fn a_data_folder_outside_the_lab_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("www")).unwrap();
        std::fs::write(dir.path().join("www/index.html"), "hi").unwrap();
        let yaml = "name: t\ntitle: t\ndata: www\nprogram:\n  entry: [client.py]\nchecks:\n  - id: runs\n    title: runs\n    points: 1\n";
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, yaml).unwrap();
        let lab = spec::load(&path).unwrap();
        let entries = data_entries(&lab, "t.yaml").unwrap();
        assert_eq!(entries[0].name, "lab/www/index.html");
        let mut outside = lab;
        outside.data = Some("../www".into());
        let err = data_entries(&outside, "t.yaml").err().unwrap();
        assert!(err.contains("not inside the lab's folder"), "{err}");
    }
}
