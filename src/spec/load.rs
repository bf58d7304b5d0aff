//! Loading lab specs: built-in by name, or from a YAML file; then validation.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use super::tree::{self, Node, Step};
use super::{
    CheckKind, DataFiles, DnsProbeSpec, Lab, ProbeSpec, Role, ServerKind, SpecError, SpecErrors,
    shape,
};

/// A built-in lab: its name and YAML, embedded in the binary.
pub struct Builtin {
    /// Lab name.
    pub name: &'static str,
    /// The spec.
    pub yaml: &'static str,
}

/// The built-in labs.
pub const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "udp-pinger",
        yaml: include_str!("../../labs/udp-pinger.yaml"),
    },
    Builtin {
        name: "udp-pinger-stats",
        yaml: include_str!("../../labs/udp-pinger-stats.yaml"),
    },
    Builtin {
        name: "udp-heartbeat-client",
        yaml: include_str!("../../labs/udp-heartbeat-client.yaml"),
    },
    Builtin {
        name: "udp-heartbeat-server",
        yaml: include_str!("../../labs/udp-heartbeat-server.yaml"),
    },
    Builtin {
        name: "webserver",
        yaml: include_str!("../../labs/webserver.yaml"),
    },
    Builtin {
        name: "hw-dash",
        yaml: include_str!("../../labs/hw-dash.yaml"),
    },
    Builtin {
        name: "hw-distribution",
        yaml: include_str!("../../labs/hw-distribution.yaml"),
    },
    Builtin {
        name: "hw-http-response",
        yaml: include_str!("../../labs/hw-http-response.yaml"),
    },
    Builtin {
        name: "hw-dns-records",
        yaml: include_str!("../../labs/hw-dns-records.yaml"),
    },
    Builtin {
        name: "hw-response-time",
        yaml: include_str!("../../labs/hw-response-time.yaml"),
    },
    Builtin {
        name: "hw-pop3",
        yaml: include_str!("../../labs/hw-pop3.yaml"),
    },
    Builtin {
        name: "webproxy",
        yaml: include_str!("../../labs/webproxy.yaml"),
    },
    Builtin {
        name: "webserver-threaded",
        yaml: include_str!("../../labs/webserver-threaded.yaml"),
    },
    Builtin {
        name: "dns-server",
        yaml: include_str!("../../labs/dns-server.yaml"),
    },
    Builtin {
        name: "http-client",
        yaml: include_str!("../../labs/http-client.yaml"),
    },
    Builtin {
        name: "smtp-client",
        yaml: include_str!("../../labs/smtp-client.yaml"),
    },
    Builtin {
        name: "smtp-client-reject",
        yaml: include_str!("../../labs/smtp-client-reject.yaml"),
    },
    Builtin {
        name: "pop3-download-delete",
        yaml: include_str!("../../labs/pop3-download-delete.yaml"),
    },
    Builtin {
        name: "pop3-download-keep",
        yaml: include_str!("../../labs/pop3-download-keep.yaml"),
    },
    Builtin {
        name: "dns-client",
        yaml: include_str!("../../labs/dns-client.yaml"),
    },
    Builtin {
        name: "dns-resolver",
        yaml: include_str!("../../labs/dns-resolver.yaml"),
    },
    Builtin {
        name: "bt-download",
        yaml: include_str!("../../labs/bt-download.yaml"),
    },
    Builtin {
        name: "bt-seed",
        yaml: include_str!("../../labs/bt-seed.yaml"),
    },
    Builtin {
        name: "bt-tracker",
        yaml: include_str!("../../labs/bt-tracker.yaml"),
    },
];

/// Data folders of the built-in labs (`data:` value → files), embedded too.
type EmbeddedFiles = &'static [(&'static str, &'static [u8])];
const BUILTIN_DATA: &[(&str, EmbeddedFiles)] = &[
    (
        "dns-server",
        &[("zone.txt", include_bytes!("../../labs/dns-server/zone.txt"))],
    ),
    (
        "webserver/www",
        &[
            (
                "HelloWorld.html",
                include_bytes!("../../labs/webserver/www/HelloWorld.html"),
            ),
            (
                "big.txt",
                include_bytes!("../../labs/webserver/www/big.txt"),
            ),
            (
                "docs/notes.txt",
                include_bytes!("../../labs/webserver/www/docs/notes.txt"),
            ),
            (
                "image.png",
                include_bytes!("../../labs/webserver/www/image.png"),
            ),
        ],
    ),
    (
        "hw-pop3",
        &[
            (
                "maildrop/1.eml",
                include_bytes!("../../labs/hw-pop3/maildrop/1.eml"),
            ),
            (
                "maildrop/2.eml",
                include_bytes!("../../labs/hw-pop3/maildrop/2.eml"),
            ),
        ],
    ),
    (
        "webproxy",
        &[
            (
                "www.example.com/index.html",
                include_bytes!("../../labs/webproxy/www.example.com/index.html"),
            ),
            (
                "www.example.com/news.html",
                include_bytes!("../../labs/webproxy/www.example.com/news.html"),
            ),
            (
                "www.example.com/a/notes.txt",
                include_bytes!("../../labs/webproxy/www.example.com/a/notes.txt"),
            ),
            (
                "www.example.com/b/notes.txt",
                include_bytes!("../../labs/webproxy/www.example.com/b/notes.txt"),
            ),
            (
                "www.example.com/images/logo.png",
                include_bytes!("../../labs/webproxy/www.example.com/images/logo.png"),
            ),
            (
                "www.example.com/files/big.bin",
                include_bytes!("../../labs/webproxy/www.example.com/files/big.bin"),
            ),
            (
                "gaia.cs.umass.edu/wireshark-labs/HTTP-wireshark-file1.html",
                include_bytes!(
                    "../../labs/webproxy/gaia.cs.umass.edu/wireshark-labs/HTTP-wireshark-file1.html"
                ),
            ),
        ],
    ),
    (
        "mail",
        &[
            (
                "golden/pop3-download-delete.txt",
                include_bytes!("../../labs/mail/golden/pop3-download-delete.txt"),
            ),
            (
                "golden/pop3-download-keep.txt",
                include_bytes!("../../labs/mail/golden/pop3-download-keep.txt"),
            ),
            (
                "golden/smtp-client.txt",
                include_bytes!("../../labs/mail/golden/smtp-client.txt"),
            ),
            (
                "maildrop/1.eml",
                include_bytes!("../../labs/mail/maildrop/1.eml"),
            ),
            (
                "maildrop/2.eml",
                include_bytes!("../../labs/mail/maildrop/2.eml"),
            ),
            (
                "maildrop/3.eml",
                include_bytes!("../../labs/mail/maildrop/3.eml"),
            ),
        ],
    ),
];

/// Names of the built-in labs.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|b| b.name)
}

/// Loads a built-in lab by name.
pub fn load_builtin(name: &str) -> Option<Result<Lab, SpecErrors>> {
    let b = BUILTIN.iter().find(|b| b.name == name)?;
    let path = format!("<builtin>/{}.yaml", b.name);
    Some(parse(&path, b.yaml).and_then(|mut parsed| {
        if let Some(data) = &parsed.lab.data {
            let files = BUILTIN_DATA
                .iter()
                .find(|(d, _)| d == data)
                .map(|(_, files)| {
                    files
                        .iter()
                        .map(|(p, b)| (p.to_string(), b.to_vec()))
                        .collect()
                })
                .ok_or_else(|| {
                    SpecError::new(
                        &path,
                        b.yaml,
                        0,
                        0,
                        format!("built-in data `{data}` is missing"),
                    )
                })?;
            parsed.lab.files = DataFiles(files);
        }
        finish(parsed, &path, b.yaml)
    }))
}

/// Loads `arg`: a built-in lab name, or a path to a YAML file.
pub fn resolve(arg: &str) -> Result<Lab, SpecErrors> {
    let looks_like_path = arg.ends_with(".yaml") || arg.ends_with(".yml") || arg.contains('/');
    if !looks_like_path && let Some(lab) = load_builtin(arg) {
        return lab;
    }
    if Path::new(arg).is_file() {
        return load(Path::new(arg));
    }
    let names: Vec<_> = builtin_names().collect();
    Err(SpecError::new(
        arg,
        "",
        0,
        0,
        format!("no lab named `{arg}` and no such file"),
    )
    .with_help(format!(
        "built-in labs: {}; or give the path of a lab YAML file",
        names.join(", ")
    ))
    .into())
}

/// The YAML text of `arg` (a file, or a built-in lab's name), for showing
/// lines of it.
pub fn source_text(arg: &str) -> Option<String> {
    match std::fs::read_to_string(arg) {
        Ok(text) => Some(text),
        Err(_) => BUILTIN
            .iter()
            .find(|b| b.name == arg)
            .map(|b| b.yaml.to_string()),
    }
}

/// Loads and validates a lab YAML file.
pub fn load(path: &Path) -> Result<Lab, SpecErrors> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(&shown, "", 0, 0, format!("cannot read the file: {e}"))
            .with_help("check the path; a lab spec is a UTF-8 YAML file")
    })?;
    load_str(&shown, &text)
}

/// Parses and validates lab YAML `text`, naming it `path` in errors. A `data`
/// folder is read relative to the directory of `path`.
pub fn load_str(path: &str, text: &str) -> Result<Lab, SpecErrors> {
    let mut parsed = parse(path, text)?;
    if let Some(data) = &parsed.lab.data {
        let base = Path::new(path).parent().unwrap_or(Path::new("."));
        let dir = base.join(data);
        let at = parsed
            .tree
            .get(&[Step::Key("data")])
            .map_or((0, 0), |n| (n.line, n.column));
        match read_data(&dir) {
            Ok(files) => parsed.lab.files = files,
            Err(e) => parsed.errors.push(
                SpecError::new(
                    path,
                    text,
                    at.0,
                    at.1,
                    format!("cannot read the lab's data folder {}: {e}", dir.display()),
                )
                .with_help("`data` names a folder next to the lab YAML file"),
            ),
        }
    }
    finish(parsed, path, text)
}

/// Loads and validates a zone file (`netgrade serve dns --zone FILE`): its
/// shape against the zone file's schema, then the zones as the server reads
/// them, every error located as a lab's are.
pub fn load_zone_file(path: &Path) -> Result<super::ZoneFile, SpecErrors> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(&shown, "", 0, 0, format!("cannot read the zone file: {e}"))
            .with_help("check the path; a zone file is a UTF-8 YAML file with `zones:`")
    })?;
    zone_file_str(&shown, &text)
}

/// Parses and validates zone file `text`, naming it `path` in errors.
fn zone_file_str(path: &str, text: &str) -> Result<super::ZoneFile, SpecErrors> {
    static SCHEMA: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(super::schema::zone_file_schema);
    let (root, duplicates) = tree::parse(text).map_err(|e| syntax_error(path, text, &e))?;
    let Some(root) = root else {
        return Err(SpecError::new(path, text, 0, 0, "the zone file is empty")
            .with_help("a zone file lists `zones:`, each with `origin` and `records`, as a lab's dns server does")
            .into());
    };
    let (mut errors, checked) = shape_errors(path, text, &root, &duplicates, &SCHEMA);
    let file: Option<super::ZoneFile> = serde_json::from_value(checked.repaired).ok();
    if let Some(file) = &file
        && !checked.guessed
    {
        let mut r = Rules {
            path,
            text,
            tree: &root,
            errors: Vec::new(),
        };
        zone_rules(&file.zones, file.hierarchy.unwrap_or(false), &[], &mut r);
        if let Some(faults) = &file.faults {
            fault_rules(faults, &[Step::Key("faults")], &mut r);
        }
        for e in r.errors {
            if e.line == 0 || !errors.iter().any(|x| x.line == e.line) {
                errors.push(e);
            }
        }
    }
    match file {
        Some(file) if errors.is_empty() => Ok(file),
        _ if errors.is_empty() => Err(SpecError::new(path, text, 0, 0, "the zone file could not be read")
            .with_help("a zone file lists `zones:`, each with `origin` and `records`, as a lab's dns server does")
            .into()),
        _ => Err(SpecErrors::sorted(errors)),
    }
}

/// The spec's shape errors and its rule errors together (a rule error on a
/// line that already has a shape error is the same fault, charged once).
fn finish(parsed: Parsed, path: &str, text: &str) -> Result<Lab, SpecErrors> {
    let Parsed {
        lab,
        tree,
        mut errors,
        rules_apply,
    } = parsed;
    if rules_apply && let Err(found) = validate(&lab, &tree, path, text) {
        for e in found.0 {
            if e.line == 0 || !errors.iter().any(|x| x.line == e.line) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        let digest = digest(text, &lab.files);
        Ok(Lab { digest, ..lab })
    } else {
        Err(SpecErrors::sorted(errors))
    }
}

/// SHA-1 of a lab's YAML text and data files (each name and length before
/// its bytes, so no two labs share a stream), in hex.
fn digest(text: &str, files: &DataFiles) -> String {
    use sha1::{Digest, Sha1};
    let mut hash = Sha1::new();
    hash.update(text.as_bytes());
    for (name, bytes) in &files.0 {
        hash.update(format!("\0{name}\0{}\0", bytes.len()).as_bytes());
        hash.update(bytes);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every file under `dir` (relative paths with `/`), sorted.
fn read_data(dir: &Path) -> std::io::Result<DataFiles> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(root.join(rel))? {
            let entry = entry?;
            let path = rel.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let name = path
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((name, std::fs::read(root.join(&path))?));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files)?;
    files.sort();
    Ok(DataFiles(files))
}

/// The lab schema, made once.
fn lab_schema() -> &'static serde_json::Value {
    static SCHEMA: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(super::schema::lab_schema);
    &SCHEMA
}

/// A spec as parsed: the typed lab (values at fault left out, required ones
/// filled in), its tree, and the errors so far.
struct Parsed {
    lab: Lab,
    tree: Node,
    errors: Vec<SpecError>,
    /// Whether the rules can be checked: nothing they depend on was guessed.
    rules_apply: bool,
}

/// Parses `text`: its YAML, its shape against the lab schema (every problem
/// at once), then the typed spec.
fn parse(path: &str, text: &str) -> Result<Parsed, SpecErrors> {
    let (root, duplicates) = tree::parse(text).map_err(|e| syntax_error(path, text, &e))?;
    let Some(root) = root else {
        return Err(SpecError::new(path, text, 0, 0, "the file is empty")
            .with_help("a lab needs at least `name`, `title`, `program` and `checks`; see the README's lab spec reference")
            .into());
    };
    let (errors, checked) = shape_errors(path, text, &root, &duplicates, lab_schema());
    if !errors.is_empty() {
        return match serde_json::from_value::<Lab>(checked.repaired) {
            Ok(lab) => Ok(Parsed {
                lab,
                tree: root,
                errors,
                rules_apply: !checked.guessed,
            }),
            Err(_) => Err(SpecErrors::sorted(errors)),
        };
    }
    let lab = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        let message = plain_message(&e.without_snippet().to_string());
        SpecError::new(path, text, line, column, message)
    })?;
    Ok(Parsed {
        lab,
        tree: root,
        errors,
        rules_apply: true,
    })
}

/// The errors of a parsed tree's shape against `schema`: keys given twice,
/// then every problem the walk found; and what the walk made of the tree.
fn shape_errors(
    path: &str,
    text: &str,
    root: &Node,
    duplicates: &[tree::Duplicate],
    schema: &serde_json::Value,
) -> (Vec<SpecError>, shape::Checked) {
    let mut errors: Vec<SpecError> = duplicates
        .iter()
        .map(|d| {
            SpecError::new(
                path,
                text,
                d.key.line,
                d.key.column,
                format!(
                    "`{}` is given twice in this mapping (first on line {})",
                    d.key.text, d.first_line
                ),
            )
            .with_help("keep one of them")
        })
        .collect();
    let mut checked = shape::check(root, schema);
    errors.extend(checked.problems.drain(..).map(|p| {
        let e = SpecError::new(path, text, p.line, p.column, p.message);
        match p.help {
            Some(h) => e.with_help(h),
            None => e,
        }
    }));
    (errors, checked)
}

fn syntax_error(path: &str, text: &str, e: &tree::SyntaxError) -> SpecErrors {
    SpecError::new(
        path,
        text,
        e.line,
        e.column,
        format!("the file is not valid YAML: {}", e.message),
    )
    .with_help(syntax_help(text, e))
    .into()
}

/// What to do about a YAML syntax error: the tab, the misaligned line, the
/// unquoted `: `.
fn syntax_help(text: &str, e: &tree::SyntaxError) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let near = e.line.saturating_sub(1)..(e.line + 1).min(lines.len());
    if let Some(n) = near
        .clone()
        .find(|i| lines[*i].trim_start_matches(' ').starts_with('\t'))
    {
        return format!(
            "line {} is indented with a tab; YAML indents with spaces only: replace the tab with spaces",
            n + 1
        );
    }
    if e.message.contains("mapping values are not allowed") {
        return "a `key: value` cannot follow a value on the same line; put `:` only after keys, and quote text that contains `: `".into();
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let field_column = |l: &str| {
        let t = l.trim_start_matches([' ', '-']);
        l.len() - t.len()
    };
    let here = lines.get(e.line.saturating_sub(1)).copied().unwrap_or("");
    let above = lines[..e.line.saturating_sub(1).min(lines.len())]
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    if let Some(above) = above
        && !here.trim().is_empty()
        && indent(here) < field_column(above)
        && indent(here) >= indent(above).saturating_sub(2)
    {
        return format!(
            "line {} is indented by {} spaces and the fields above it by {}: fields of one mapping line up; indent it by {} to make it a field of the entry above, or start a new entry with `- `",
            e.line,
            indent(here),
            field_column(above),
            field_column(above)
        );
    }
    "check the indentation of this line and the line above it: fields of one mapping line up, and list entries start with `- `".into()
}

/// Strips serde-saphyr's own "at line X column Y" suffix; we show the position ourselves.
fn plain_message(msg: &str) -> String {
    let msg = msg.lines().next().unwrap_or(msg);
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// The rules the schema's shape cannot hold alone, each error pointing at
/// the value at fault; all of them are collected.
struct Rules<'a> {
    path: &'a str,
    text: &'a str,
    tree: &'a Node,
    errors: Vec<SpecError>,
}

impl Rules<'_> {
    /// Records an error at the node at `steps` (or its nearest ancestor that exists).
    fn at(&mut self, steps: &[Step], message: impl Into<String>) -> &mut SpecError {
        let (line, column) = (0..=steps.len())
            .rev()
            .find_map(|n| self.tree.get(&steps[..n]))
            .filter(|_| !steps.is_empty())
            .map_or((0, 0), |n| (n.line, n.column));
        self.errors
            .push(SpecError::new(self.path, self.text, line, column, message));
        self.errors.last_mut().expect("just pushed")
    }

    /// Records an error at the key `key` of the mapping at `steps`.
    fn at_key(&mut self, steps: &[Step], key: &str, message: impl Into<String>) -> &mut SpecError {
        let found = self
            .tree
            .get(steps)
            .and_then(|n| n.entry(key))
            .map(|(k, _)| (k.line, k.column));
        match found {
            Some((line, column)) => {
                self.errors
                    .push(SpecError::new(self.path, self.text, line, column, message));
                self.errors.last_mut().expect("just pushed")
            }
            None => self.at(steps, message),
        }
    }
}

fn validate(lab: &Lab, tree: &Node, path: &str, text: &str) -> Result<(), SpecErrors> {
    let mut r = Rules {
        path,
        text,
        tree,
        errors: Vec::new(),
    };
    program_rules(lab, &mut r);
    for (i, server) in lab.servers.iter().enumerate() {
        server_rules(lab, i, server, &mut r);
    }
    torrent_rules(lab, &mut r);
    probe_rules(lab, &mut r);
    plot_rules(lab, &mut r);
    case_rules(lab, &mut r);
    for (i, check) in lab.checks.iter().enumerate() {
        check_rules(lab, i, check, &mut r);
    }
    if r.errors.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors::sorted(r.errors))
    }
}

/// `program`: its time limit, `server_names`, `python_packages`.
fn program_rules(lab: &Lab, r: &mut Rules) {
    let program = &lab.program;
    let here = [Step::Key("program")];
    if program.time_limit.get().is_zero() {
        r.at(
            &[here[0], Step::Key("time_limit")],
            "`time_limit` is zero: every program would be stopped at once",
        )
        .set_help(
            "give the time a correct program needs, with room to spare, e.g. `time_limit: 20s`",
        );
    }
    if program.server_names.is_some() && program.role == Role::Server {
        r.at_key(
            &here,
            "server_names",
            "`program.server_names` applies to client labs only",
        )
        .set_help("it names the handout's server, which a client lab never grades; remove it");
    }
    for (i, glob) in program.server_names.iter().flatten().enumerate() {
        if glob.trim().is_empty() {
            r.at(
                &[here[0], Step::Key("server_names"), Step::Index(i)],
                "`server_names` has an empty name",
            )
            .set_help("give file names or globs, e.g. `[\"*Server*\"]`");
        }
    }
    instances_rules(lab, r);
    let requirement = regex::Regex::new(super::schema::REQUIREMENT).expect("valid regex");
    let mut seen = HashSet::new();
    for (i, package) in program.python_packages.iter().enumerate() {
        let Some(found) = requirement.captures(package.value.trim()) else {
            continue; // the shape check reports it
        };
        let name = found["name"].to_ascii_lowercase().replace(['_', '.'], "-");
        if !seen.insert(name.clone()) {
            r.at(
                &[here[0], Step::Key("python_packages"), Step::Index(i)],
                format!("`python_packages` lists `{name}` twice"),
            )
            .set_help("keep one requirement per package");
        }
    }
}

/// `program.instances`: 1 to 8, a server's, each told its own port.
fn instances_rules(lab: &Lab, r: &mut Rules) {
    let program = &lab.program;
    let at = [Step::Key("program"), Step::Key("instances")];
    let n = program.instances;
    if !(1..=MAX_INSTANCES).contains(&n) {
        r.at(&at, format!("`instances: {n}` is out of range"))
            .set_help(format!(
                "run 1 to {MAX_INSTANCES} instances of the program side by side"
            ));
        return;
    }
    if n == 1 {
        return;
    }
    if program.role != Role::Server {
        r.at(&at, format!("`instances: {n}` needs `role: server`"))
            .set_help("a client lab runs its program once per case; instances are servers netgrade probes side by side (a swarm of peers)");
    } else if program.port.is_none() {
        r.at(&at, format!("`instances: {n}` needs `program.port`"))
            .set_help(
                "instance k listens on port + k - 1: give the first one's, e.g. `port: 6881`",
            );
    }
    let told = program
        .args
        .iter()
        .chain(&program.command)
        .any(|a| a.contains("{listen}"));
    if !told {
        let args = [Step::Key("program"), Step::Key("args")];
        let at = if tree_has(r.tree, &args[..1], "args") {
            &args[..]
        } else {
            &at[..]
        };
        r.at(at, format!("`instances: {n}`, but the program is never told its port"))
            .set_help("each instance must listen on a port of its own: pass `{listen}` in `program.args` (or `program.command`), e.g. `args: [seed.torrent, seed.bin, \"{listen}\"]`");
    }
}

/// Most instances of the student's program a lab may run.
const MAX_INSTANCES: u8 = 8;

fn server_rules(lab: &Lab, i: usize, server: &super::ServerSpec, r: &mut Rules) {
    let here = [Step::Key("servers"), Step::Index(i)];
    let kind = server.kind.value;
    if lab.servers[..i].iter().any(|s| s.name == server.name) {
        r.at(
            &[here[0], here[1], Step::Key("name")],
            format!("two servers are named `{}`", server.name),
        )
        .set_help("server names appear in transcripts and placeholders; give each its own");
    }
    for other in super::schema::SERVER_KINDS
        .into_iter()
        .filter(|k| *k != kind)
    {
        for field in super::schema::server_only_fields(other) {
            if tree_has(r.tree, &here, field) {
                r.at_key(
                    &here,
                    field,
                    format!(
                        "`{field}` applies to {} servers only; this server is {}",
                        other.name(),
                        kind.name()
                    ),
                )
                .set_help(format!(
                    "remove `{field}`, or change `kind` to `{}`",
                    other.name()
                ));
            }
        }
    }
    match kind {
        ServerKind::Smtp => {
            if server.tls_port.is_some_and(|p| p == server.port && p != 0) {
                r.at(
                    &[here[0], here[1], Step::Key("tls_port")],
                    "`tls_port` is the same as `port`",
                )
                .set_help("implicit TLS needs a port of its own, e.g. `tls_port: 465`");
            }
        }
        ServerKind::Pop3 => {
            for (field, example) in [
                ("user", "user: alice"),
                ("password", "password: wonderland"),
            ] {
                if !tree_has(r.tree, &here, field) {
                    r.at(&here, format!("a pop3 server needs `{field}`"))
                        .set_help(format!("e.g. `{example}`"));
                }
            }
            if server.maildrop_messages(&lab.files).is_empty() {
                let at = if server.maildrop.is_some() {
                    "maildrop"
                } else {
                    "kind"
                };
                r.at(
                    &[here[0], here[1], Step::Key(at)],
                    "a pop3 server needs a `maildrop`: a folder of messages in the lab's data",
                )
                .set_help(
                    "e.g. `maildrop: maildrop` with the messages in `<data>/maildrop/1.eml`, …",
                );
            }
        }
        ServerKind::Http => {
            if lab.data.is_none() {
                r.at(
                    &[here[0], here[1], Step::Key("kind")],
                    "an http server serves the lab's `data` folder, but the lab has none",
                )
                .set_help("add `data: www` (a folder next to the lab file)");
            }
        }
        ServerKind::Dns => dns_rules(server, &here, r),
        ServerKind::Tracker => {
            if lab.torrents.is_empty() {
                r.at_key(&here, "kind", "a tracker needs the lab's `torrents`")
                    .set_help("e.g. `torrents: [{ name: payload, size: 300000 }]`");
            }
        }
        ServerKind::Peer => peer_rules(lab, server, &here, r),
        ServerKind::UdpPinger => {
            if server.drop.is_some() && server.loss.is_some() {
                r.at_key(&here, "loss", "give either `drop` or `loss`, not both")
                    .set_help("`drop: [3, 6]` drops exactly those datagrams; `loss: 0.3` drops at a seeded rate");
            }
        }
    }
    if let Some(d) = &server.delay
        && d.min > d.max
    {
        r.at(
            &[here[0], here[1], Step::Key("delay"), Step::Key("min")],
            format!("`delay.min` ({}) is above `delay.max` ({})", d.min, d.max),
        )
        .set_help("swap them: `min` is the shortest delay, `max` the longest");
    }
}

/// The largest content of a lab's torrent made of seeded bytes.
const MAX_TORRENT_SIZE: u64 = 64 << 20;

/// The lab's torrents: names, piece lengths, and where the content is.
fn torrent_rules(lab: &Lab, r: &mut Rules) {
    use crate::torrent::{MAX_PIECE_LENGTH, MIN_PIECE_LENGTH};
    for (i, t) in lab.torrents.iter().enumerate() {
        let here = [Step::Key("torrents"), Step::Index(i)];
        if lab.torrents[..i].iter().any(|o| o.name == t.name) {
            r.at_key(
                &here,
                "name",
                format!("two torrents are named `{}`", t.name),
            )
            .set_help("each torrent is written as NAME.torrent; give each its own name");
        }
        if !t.piece_length.is_power_of_two()
            || !(MIN_PIECE_LENGTH..=MAX_PIECE_LENGTH).contains(&t.piece_length)
        {
            r.at_key(
                &here,
                "piece_length",
                format!(
                    "`piece_length: {}` is not a power of two from {MIN_PIECE_LENGTH} to {MAX_PIECE_LENGTH}",
                    t.piece_length
                ),
            )
            .set_help("e.g. `piece_length: 32768` (32 KiB)");
        }
        match (t.size, &t.path) {
            (Some(_), Some(_)) => {
                r.at_key(&here, "path", "give either `size` or `path`, not both")
                    .set_help(
                        "`size: 300000` makes seeded bytes; `path: album` takes the lab's data",
                    );
            }
            (None, None) => {
                r.at_key(
                    &here,
                    "name",
                    format!("torrent `{}` has no content", t.name),
                )
                .set_help(
                    "add `size: 300000` (seeded bytes) or `path: FILE` (from the lab's data)",
                );
            }
            (Some(size), None) if size == 0 || size > MAX_TORRENT_SIZE => {
                r.at_key(
                    &here,
                    "size",
                    format!("`size: {size}` is not from 1 to {MAX_TORRENT_SIZE} bytes"),
                )
                .set_help("e.g. `size: 1048576` (1 MiB)");
            }
            (None, Some(path)) if lab_torrent_len(lab, path).is_none() => {
                r.at_key(
                    &here,
                    "path",
                    format!("`{path}` is neither a file nor a folder of the lab's data"),
                )
                .set_help("name a file or folder below the lab's `data` folder");
            }
            _ => {}
        }
    }
}

/// The length of a lab torrent's content from the lab's data, if it is there.
fn lab_torrent_len(lab: &Lab, path: &str) -> Option<u64> {
    let path = path.trim_matches('/');
    let prefix = format!("{path}/");
    let mut found = false;
    let len = lab
        .files
        .0
        .iter()
        .filter(|(p, _)| p == path || p.starts_with(&prefix))
        .inspect(|_| found = true)
        .map(|(_, b)| b.len() as u64)
        .sum();
    found.then_some(len)
}

/// The lab's torrent called `name`, or its first.
fn named_torrent<'a>(lab: &'a Lab, name: Option<&str>) -> Option<&'a super::TorrentSpec> {
    match name {
        Some(name) => lab.torrents.iter().find(|t| t.name == name),
        None => lab.torrents.first(),
    }
}

/// How many pieces a lab's torrent has, when its content is known.
fn torrent_pieces(lab: &Lab, torrent: &super::TorrentSpec) -> Option<u64> {
    let len = match (torrent.size, &torrent.path) {
        (Some(size), _) => Some(size),
        (None, Some(path)) => lab_torrent_len(lab, path),
        _ => None,
    };
    len.map(|l| l.div_ceil(torrent.piece_length.max(1)))
}

/// A peer: the torrent it seeds, and piece numbers within it.
fn peer_rules(lab: &Lab, server: &super::ServerSpec, here: &[Step], r: &mut Rules) {
    let Some(torrent) = named_torrent(lab, server.torrent.as_deref()) else {
        let (at, message) = match &server.torrent {
            Some(name) => (
                "torrent",
                format!("no torrent of the lab is named `{name}`"),
            ),
            None => (
                "kind",
                "a peer needs a torrent to seed: the lab has no `torrents`".into(),
            ),
        };
        let names: Vec<&str> = lab.torrents.iter().map(|t| t.name.as_str()).collect();
        r.at_key(here, at, message).set_help(if names.is_empty() {
            "add `torrents: [{ name: payload, size: 300000 }]` to the lab".to_string()
        } else {
            format!("the lab's torrents: {}", names.join(", "))
        });
        return;
    };
    let Some(pieces) = torrent_pieces(lab, torrent) else {
        return;
    };
    let fields: [(&str, Vec<u32>); 4] = [
        ("has", server.has.clone().unwrap_or_default()),
        ("gains", server.gains.clone().unwrap_or_default()),
        (
            "corrupt_pieces",
            server.corrupt_pieces.clone().unwrap_or_default(),
        ),
        (
            "disconnect_pieces",
            server.disconnect_pieces.clone().unwrap_or_default(),
        ),
    ];
    for (field, indices) in fields {
        if let Some(bad) = indices.iter().find(|&&p| u64::from(p) >= pieces) {
            r.at_key(
                here,
                field,
                format!(
                    "piece {bad} is past the end: torrent `{}` has {pieces} pieces, 0 to {}",
                    torrent.name,
                    pieces.saturating_sub(1)
                ),
            )
            .set_help("pieces are numbered from 0");
        }
    }
}

/// A dns server: its zones (each problem at the field at fault), where a
/// hierarchy is served, and its faults.
fn dns_rules(server: &super::ServerSpec, here: &[Step], r: &mut Rules) {
    let hierarchy = server.hierarchy.unwrap_or(false);
    match &server.zones {
        Some(zones) => zone_rules(zones, hierarchy, here, r),
        None => {
            let mut at = here.to_vec();
            at.push(Step::Key("kind"));
            r.at(&at, "a dns server needs `zones`: the zones it answers for")
                .set_help("e.g. `zones: [{ origin: example.com, records: [{ name: www, type: A, value: 10.0.0.1 }] }]`");
        }
    }
    if hierarchy && tree_has(r.tree, here, "host") {
        r.at_key(
            here,
            "host",
            "a hierarchy is served at the addresses of its zones' name servers, not at `host`",
        )
        .set_help("remove `host`: each zone's NS records and their A records (127.0.0.x) say where it is served");
    }
    if let Some(faults) = &server.faults {
        let mut at = here.to_vec();
        at.push(Step::Key("faults"));
        fault_rules(faults, &at, r);
    }
}

/// The zones of a dns server (or a zone file) at `here`, checked as the
/// server reads them.
fn zone_rules(zones: &[super::ZoneSpec], hierarchy: bool, here: &[Step], r: &mut Rules) {
    let (_, issues) = crate::servers::dns::zone::build(zones, hierarchy);
    for issue in issues {
        let mut at = here.to_vec();
        if let Some(z) = issue.zone {
            at.extend([Step::Key("zones"), Step::Index(z)]);
            if let Some(i) = issue.record {
                at.extend([Step::Key("records"), Step::Index(i)]);
            }
        }
        at.push(Step::Key(issue.field));
        r.at(&at, issue.message).set_help(issue.help);
    }
}

/// A dns server's faults: each query damaged one way, and only if it is answered.
fn fault_rules(faults: &super::DnsFaults, here: &[Step], r: &mut Rules) {
    let lists = [
        ("wrong_id", &faults.wrong_id),
        ("truncated", &faults.truncated),
        ("malformed", &faults.malformed),
    ];
    let dropped = faults.drop_first.unwrap_or(0);
    for (k, (name, list)) in lists.iter().enumerate() {
        for (i, query) in list.iter().enumerate() {
            let mut at = here.to_vec();
            at.extend([Step::Key(name), Step::Index(i)]);
            if let Some((other, _)) = lists[..k].iter().find(|(_, l)| l.contains(query)) {
                r.at(
                    &at,
                    format!("query {query} is in both `{other}` and `{name}`"),
                )
                .set_help("a query gets one fault: keep it in one list");
            } else if list[..i].contains(query) {
                r.at(&at, format!("query {query} is in `{name}` twice"))
                    .set_help("keep one");
            } else if *query <= dropped {
                r.at(
                    &at,
                    format!(
                        "query {query} is dropped (`drop_first: {dropped}`): it gets no response to damage"
                    ),
                )
                .set_help(format!(
                    "name a query after the first {dropped}, e.g. {}",
                    dropped + 1
                ));
            }
        }
    }
}

fn tree_has(tree: &Node, steps: &[Step], field: &str) -> bool {
    tree.get(steps).and_then(|n| n.entry(field)).is_some()
}

/// A homework's plot: a scale it can draw, curves of expressions.
fn plot_rules(lab: &Lab, r: &mut Rules) {
    let Some(plot) = &lab.plot else { return };
    let at = [Step::Key("plot")];
    if plot.from >= plot.to
        || plot.from.is_nan()
        || plot.to.is_nan()
        || (plot.log && plot.from <= 0.0)
    {
        r.at(
            &at,
            format!("the plot runs from {} to {}", plot.from, plot.to),
        )
        .set_help(
            "give `from` below `to`, both above 0 with `log: true`, e.g. `from: 1`, `to: 1000`",
        );
    }
    for (i, series) in plot.series.iter().enumerate() {
        if let Err(e) = crate::homework::expr::Expr::parse(&series.expect) {
            r.at(
                &[at[0], Step::Key("series"), Step::Index(i)],
                format!("curve `{}` is no expression: {e}", series.name),
            )
            .set_help("write it over the lab's `params` and the plot's `x`");
        }
    }
}

fn probe_rules(lab: &Lab, r: &mut Rules) {
    for (i, probe) in lab.probes.iter().enumerate() {
        let here = [Step::Key("probes"), Step::Index(i)];
        if lab.probes[..i].iter().any(|p| p.id.value == probe.id.value) {
            r.at(
                &[here[0], here[1], Step::Key("id")],
                format!("two probes have the id `{}`", probe.id.value),
            )
            .set_help("checks name probes by id; give each its own");
        }
        if probe.raw.is_some()
            && (probe.method.is_some() || probe.target.is_some() || !probe.headers.is_empty())
        {
            r.at_key(
                &here,
                "raw",
                format!(
                    "probe `{}` has both `raw` and method/target/headers",
                    probe.id.value
                ),
            )
            .set_help("`raw` gives the exact bytes; use one or the other");
        }
        if let Some(dns) = &probe.dns {
            dns_probe_rules(probe, dns, &here, r);
        }
        probe_instance_rules(lab, probe, &here, r);
        if let Some(leech) = &probe.leech {
            leech_probe_rules(lab, probe, leech, &here, r);
        }
        if let Some(heartbeat) = &probe.heartbeat {
            heartbeat_probe_rules(probe, heartbeat, &here, r);
        }
        if let Some(announce) = &probe.announce {
            let at = [here[0], here[1], Step::Key("announce")];
            if !super::announce_scenarios().any(|k| k == announce.scenario) {
                r.at_key(
                    &at,
                    "scenario",
                    format!("`{}` is no announce scenario", announce.scenario),
                )
                .set_help(format!(
                    "write one of: {}",
                    super::announce_scenarios().collect::<Vec<_>>().join(", ")
                ));
            }
            if probe.raw.is_some()
                || probe.method.is_some()
                || probe.target.is_some()
                || probe.dns.is_some()
                || probe.leech.is_some()
            {
                r.at(
                    &at,
                    format!(
                        "probe `{}` has both `announce` and another request",
                        probe.id.value
                    ),
                )
                .set_help(
                    "a probe runs announces (`announce:`), or sends one other request, not both",
                );
            }
        }
    }
    if !lab.probes.is_empty() && lab.program.role != Role::Server {
        r.at_key(
            &[],
            "probes",
            "the lab has probes, but `program.role` is not `server`",
        )
        .set_help("probes drive a student's server: add `role: server` under `program:`");
    }
}

/// A heartbeat probe sends heartbeats only; what it loses shows as a gap.
fn heartbeat_probe_rules(
    probe: &ProbeSpec,
    heartbeat: &super::HeartbeatProbeSpec,
    here: &[Step],
    r: &mut Rules,
) {
    let id = &probe.id.value;
    let at = [here[0], here[1], Step::Key("heartbeat")];
    if probe.raw.is_some()
        || probe.method.is_some()
        || probe.target.is_some()
        || probe.dns.is_some()
        || probe.leech.is_some()
        || probe.announce.is_some()
    {
        r.at(
            &at,
            format!("probe `{id}` has both `heartbeat` and another request"),
        )
        .set_help("a probe sends heartbeats (`heartbeat:`), or one other request, not both");
    }
    if !(2..=1000).contains(&heartbeat.count) {
        r.at_key(
            &at,
            "count",
            format!("probe `{id}` sends {} heartbeat(s)", heartbeat.count),
        )
        .set_help("send 2 to 1000 heartbeats, e.g. `count: 12`");
    }
    let every = heartbeat.interval.get();
    if every < Duration::from_millis(10) || every > Duration::from_secs(10) {
        r.at_key(
            &at,
            "interval",
            format!(
                "probe `{id}` sends a heartbeat every {}",
                heartbeat.interval
            ),
        )
        .set_help("give an interval from 10ms to 10s, e.g. `interval: 500ms`");
    }
    if heartbeat.delay.min > heartbeat.delay.max
        || heartbeat.delay.max.get() > Duration::from_secs(60)
    {
        r.at_key(
            &at,
            "delay",
            "the delay's `min` is above its `max`, or `max` is over a minute",
        )
        .set_help("e.g. `delay: { min: 40ms, max: 400ms }`");
    }
    if let Some(bad) = heartbeat
        .lost
        .iter()
        .find(|&&seq| seq == 0 || seq >= heartbeat.count)
    {
        r.at_key(&at, "lost", format!("probe `{id}` cannot lose heartbeat {bad}"))
            .set_help(format!(
                "lose heartbeats 1 to {}: a lost one shows only when a later one arrives, so the last ({}) always arrives",
                heartbeat.count.saturating_sub(1),
                heartbeat.count
            ));
    }
    if heartbeat.then > 1000 {
        r.at_key(
            &at,
            "then",
            format!(
                "probe `{id}` has {} heartbeats of the second client",
                heartbeat.then
            ),
        )
        .set_help("send at most 1000, e.g. `then: 3`");
    }
}

/// A leech probe is a download only, of one of the lab's torrents.
fn leech_probe_rules(
    lab: &Lab,
    probe: &ProbeSpec,
    leech: &super::LeechProbeSpec,
    here: &[Step],
    r: &mut Rules,
) {
    let id = &probe.id.value;
    if probe.raw.is_some()
        || probe.method.is_some()
        || probe.target.is_some()
        || probe.dns.is_some()
    {
        r.at_key(here, "leech", format!("probe `{id}` has both `leech` and another request"))
            .set_help("a probe downloads from a BitTorrent peer (`leech:`), or sends an HTTP request or a DNS query, not both");
    }
    let at = [here[0], here[1], Step::Key("leech")];
    let Some(torrent) = named_torrent(lab, leech.torrent.as_deref()) else {
        let names: Vec<&str> = lab.torrents.iter().map(|t| t.name.as_str()).collect();
        r.at(
            &at,
            format!("probe `{id}` downloads a torrent the lab does not have"),
        )
        .set_help(if names.is_empty() {
            "add `torrents: [{ name: payload, size: 300000 }]` to the lab".to_string()
        } else {
            format!("the lab's torrents: {}", names.join(", "))
        });
        return;
    };
    if let Some(pieces) = torrent_pieces(lab, torrent)
        && let Some(bad) = leech
            .pieces
            .iter()
            .flatten()
            .find(|&&p| u64::from(p) >= pieces)
    {
        r.at_key(
            &at,
            "pieces",
            format!(
                "piece {bad} is past the end: torrent `{}` has {pieces} pieces, 0 to {}",
                torrent.name,
                pieces.saturating_sub(1)
            ),
        )
        .set_help("pieces are numbered from 0");
    }
}

/// A probe's `instance`, and a `swarm` download, need the instances they name.
fn probe_instance_rules(lab: &Lab, probe: &ProbeSpec, here: &[Step], r: &mut Rules) {
    let (id, n) = (&probe.id.value, lab.program.instances);
    if let Some(k) = probe.instance
        && (k == 0 || k > n)
    {
        r.at_key(
            here,
            "instance",
            format!("probe `{id}` goes to instance {k}, which the lab does not run"),
        )
        .set_help(format!(
            "instances are numbered from 1; the lab runs {n} (`program.instances`)"
        ));
    }
    if let Some(leech) = &probe.leech
        && let Some(crowd) = &leech.crowd
    {
        let at = [here[0], here[1], Step::Key("leech")];
        if leech.swarm || leech.cancel || leech.pieces.is_some() {
            r.at_key(&at, "crowd", format!("probe `{id}` is a crowd and a download of its own"))
                .set_help("a crowd's leechers download round the whole torrent until its time is up: remove `swarm`, `cancel` and `pieces`, or make them another probe");
        }
        if crowd.fast == 0 || u16::from(crowd.fast) + u16::from(crowd.slow) > 32 {
            r.at_key(
                &at,
                "crowd",
                format!(
                    "probe `{id}` has a crowd of {} fast and {} slow leechers",
                    crowd.fast, crowd.slow
                ),
            )
            .set_help(
                "give 1 to 32 leechers, at least one fast, e.g. `crowd: { fast: 4, slow: 4 }`",
            );
        }
        if crowd.duration.get() < std::time::Duration::from_secs(1) {
            r.at_key(&at, "crowd", format!("probe `{id}`'s crowd downloads for less than a second"))
                .set_help("give the peer several rechoke intervals, e.g. `duration: 9s` for a 1 s interval and a 3 s optimistic unchoke");
        }
    }
    if probe.leech.as_ref().is_some_and(|l| l.swarm) {
        let at = [here[0], here[1], Step::Key("leech")];
        if n < 2 {
            r.at_key(&at, "swarm", format!("probe `{id}` downloads from a swarm of one"))
                .set_help("a swarm download spreads its pieces over the program's instances: set `program.instances: 2` or more, or remove `swarm`");
        }
        if probe.instance.is_some() {
            r.at_key(
                here,
                "instance",
                format!("probe `{id}` is a swarm download and goes to one instance"),
            )
            .set_help("a swarm download goes to every instance: remove `instance`");
        }
    }
}

/// A DNS probe is a DNS query only: one question, several, or hex; each
/// encodes.
fn dns_probe_rules(probe: &ProbeSpec, dns: &DnsProbeSpec, here: &[Step], r: &mut Rules) {
    let id = &probe.id.value;
    if probe.raw.is_some()
        || probe.method.is_some()
        || probe.target.is_some()
        || !probe.headers.is_empty()
    {
        r.at_key(
            here,
            "dns",
            format!("probe `{id}` has both `dns` and an HTTP request"),
        )
        .set_help(
            "a probe sends a DNS query (`dns:`) or an HTTP request (method/target, raw), not both",
        );
    }
    if probe.hold {
        r.at_key(here, "hold", format!("DNS probe `{id}` cannot be held"))
            .set_help("`hold` keeps an HTTP connection open while the next probe runs; a DNS query is one datagram: remove `hold`");
    }
    let at = [here[0], here[1], Step::Key("dns")];
    let given = [
        dns.hex.is_some(),
        dns.name.is_some(),
        !dns.questions.is_empty(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        r.at(&at, format!("DNS probe `{id}` needs exactly one of `name`, `questions` and `hex`"))
            .set_help("`name` (with `type`, `class`) asks one question, `questions` several, `hex` sends exact bytes");
        return;
    }
    use crate::probes::dns::{class_code, query_bytes, type_code};
    let key = if dns.hex.is_some() {
        "hex"
    } else if dns.name.is_some() {
        "name"
    } else {
        "questions"
    };
    let (key, problem) = match (&dns.qtype, &dns.class) {
        (Some(t), _) if type_code(t).is_err() => ("type", type_code(t).err()),
        (_, Some(c)) if class_code(c).is_err() => ("class", class_code(c).err()),
        _ => (key, query_bytes(dns, 0).err()),
    };
    if let Some(why) = problem {
        r.at_key(&at, key, format!("DNS probe `{id}` does not encode: {why}"))
            .set_help("names are labels of 1–63 octets; types are mnemonics (A, MX …) or TYPE<n>; classes IN, CH, HS, ANY or CLASS<n>; hex is pairs of digits");
    }
}

/// Case ids are unique; the servers a case changes exist and take what it changes.
fn case_rules(lab: &Lab, r: &mut Rules) {
    for (i, case) in lab.cases.iter().enumerate() {
        let here = [Step::Key("cases"), Step::Index(i)];
        if lab.cases[..i].iter().any(|c| c.id.value == case.id.value) {
            r.at(
                &[here[0], here[1], Step::Key("id")],
                format!("two cases have the id `{}`", case.id.value),
            )
            .set_help("reports name cases by id; give each its own");
        }
        for (name, patch) in &case.servers {
            let at = [here[0], here[1], Step::Key("servers")];
            let Some(server) = lab.servers.iter().find(|s| &s.name == name) else {
                let names: Vec<_> = lab.servers.iter().map(|s| s.name.as_str()).collect();
                r.at_key(
                    &at,
                    name,
                    format!(
                        "case `{}` changes server `{name}`, which the lab does not have",
                        case.id.value
                    ),
                )
                .set_help(format!("the lab's servers: {}", names.join(", ")));
                continue;
            };
            let kind = server.kind.value;
            let fields = [
                ("drop", patch.drop.is_some(), &[ServerKind::UdpPinger][..]),
                ("loss", patch.loss.is_some(), &[ServerKind::UdpPinger][..]),
                (
                    "delay",
                    patch.delay.is_some(),
                    &[ServerKind::UdpPinger, ServerKind::Http, ServerKind::Dns][..],
                ),
                (
                    "greeting_delay",
                    patch.greeting_delay.is_some(),
                    &[ServerKind::Smtp][..],
                ),
                ("inject", patch.inject.is_some(), &[ServerKind::Smtp][..]),
                ("faults", patch.faults.is_some(), &[ServerKind::Dns][..]),
            ];
            for (field, given, kinds) in fields {
                if given && !kinds.contains(&kind) {
                    let server_at = [at[0], at[1], at[2], Step::Key(name.as_str())];
                    r.at_key(
                        &server_at,
                        field,
                        format!(
                            "`{field}` does not apply to server `{name}`, a {} server",
                            kind.name()
                        ),
                    )
                    .set_help("a case changes only what its server's kind has");
                }
            }
            if patch.drop.is_some() && patch.loss.is_some() {
                let server_at = [at[0], at[1], at[2], Step::Key(name.as_str())];
                r.at_key(&server_at, "loss", "give either `drop` or `loss`, not both")
                    .set_help("`drop: [3, 6]` drops exactly those datagrams; `loss: 0.3` drops at a seeded rate");
            }
        }
    }
}

/// The check kinds a lab can use: those that read a server kind it has (or
/// none), and probe checks only when the program is a server.
fn fitting_kinds(lab: &Lab) -> Vec<&'static str> {
    CheckKind::ALL
        .into_iter()
        .filter(|k| {
            k.needs_server()
                .is_none_or(|need| lab.servers.iter().any(|s| s.kind.value == need))
        })
        .filter(|k| !k.needs_probes() || lab.program.role == Role::Server)
        .filter(|k| crate::homework::is_answer_kind(*k) == (lab.program.role == Role::Answers))
        .map(CheckKind::name)
        .collect()
}

fn check_rules(lab: &Lab, i: usize, check: &super::CheckSpec, r: &mut Rules) {
    let here = [Step::Key("checks"), Step::Index(i)];
    let id = check.id.value.as_str();
    for (k, req) in check.requires.iter().enumerate() {
        let known = lab.checks.iter().any(|c| &c.id.value == req);
        if req == id || !known {
            let ids: Vec<&str> = lab
                .checks
                .iter()
                .map(|c| c.id.value.as_str())
                .filter(|c| *c != id)
                .collect();
            r.at(
                &[here[0], here[1], Step::Key("requires"), Step::Index(k)],
                if req == id {
                    format!("check `{id}` requires itself")
                } else {
                    format!("`requires` names `{req}`, which is no check of this lab")
                },
            )
            .set_help(format!("name other checks of the lab: {}", ids.join(", ")));
        }
    }
    if lab.checks[..i].iter().any(|c| c.id.value == id) {
        r.at(
            &[here[0], here[1], Step::Key("id")],
            format!("two checks have the id `{id}`"),
        )
        .set_help("check ids must be unique: reports and grade books key on them");
    }
    let Some(kind) = check.kind() else {
        let kinds: Vec<_> = CheckKind::ALL.iter().map(|k| k.name()).collect();
        let near = super::shape::closest(id, kinds.iter().copied())
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        r.at(
            &[here[0], here[1], Step::Key("id")],
            format!("`{id}` is not a check kind, and the check has no `kind`{near}"),
        )
        .set_help(format!(
            "a check whose id is not a kind says which kind it is: add `kind: …` with one of the kinds that read this lab's servers and program: {} (`netgrade schema` lists all {})",
            fitting_kinds(lab).join(", "),
            kinds.len()
        ));
        return;
    };
    for param in super::schema::CHECK_PARAMS {
        if !kind.params().contains(&param) && tree_has(r.tree, &here, param) {
            let takes = if kind.params().is_empty() {
                "no parameters".to_string()
            } else {
                kind.params().join(", ")
            };
            r.at_key(
                &here,
                param,
                format!("`{param}` does not apply to check kind `{}`", kind.name()),
            )
            .set_help(format!("`{}` takes {takes}; remove `{param}`", kind.name()));
        }
    }
    needs_rules(lab, &here, id, kind, r);
    if let Some(case) = &check.case
        && !lab.cases.iter().any(|c| c.id.value == case.value)
    {
        let ids: Vec<_> = lab.cases.iter().map(|c| c.id.value.as_str()).collect();
        let help = if ids.is_empty() {
            "`case` applies to labs of several cases: list them under `cases:`, or remove `case`"
                .to_string()
        } else {
            let near = super::shape::closest(&case.value, ids.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            format!("{near}the lab's cases: {}", ids.join(", "))
        };
        r.at(
            &[here[0], here[1], Step::Key("case")],
            format!(
                "check `{id}` judges case `{}`, which the lab does not define",
                case.value
            ),
        )
        .set_help(help);
    }
    for (j, probe) in check
        .probe
        .iter()
        .chain(check.probes.iter().flatten())
        .enumerate()
    {
        if !lab.probes.iter().any(|p| &p.id.value == probe) {
            let at = if check.probe.is_some() {
                vec![here[0], here[1], Step::Key("probe")]
            } else {
                vec![here[0], here[1], Step::Key("probes"), Step::Index(j)]
            };
            let ids: Vec<_> = lab.probes.iter().map(|p| p.id.value.as_str()).collect();
            r.at(
                &at,
                format!("check `{id}` names probe `{probe}`, which the lab does not define"),
            )
            .set_help(format!("the lab's probes: {}", ids.join(", ")));
        }
    }
    if let Some(file) = &check.file
        && lab.files.get(file).is_none()
    {
        r.at(
            &[here[0], here[1], Step::Key("file")],
            format!("check `{id}` names file `{file}`, which is not in the lab's data"),
        )
        .set_help("name a file under the lab's `data` folder, as a path inside it");
    }
}

/// The servers, golden transcript and probes a check kind reads.
fn needs_rules(lab: &Lab, here: &[Step], id: &str, kind: CheckKind, r: &mut Rules) {
    // The kind's value: `kind:` when given, else the id that names it.
    let key = if tree_has(r.tree, here, "kind") {
        "kind"
    } else {
        "id"
    };
    let at = [here[0], here[1], Step::Key(key)];
    if let Some(server) = kind.needs_server()
        && !lab.servers.iter().any(|s| s.kind.value == server)
    {
        let name = server.name();
        r.at(
            &at,
            format!("check `{id}` reads {name} server traffic, but the lab has no {name} server"),
        )
        .set_help(format!("add a server with `kind: {name}` under `servers:`"));
    }
    if kind == CheckKind::Transcript {
        match &lab.golden {
            None => {
                r.at(&at, format!("check `{id}` compares with a golden transcript, but the lab names none"))
                    .set_help("make one with `netgrade golden LAB REFERENCE -o <data>/golden.txt`, then add `golden: golden.txt`");
            }
            Some(g) if lab.files.get(g).is_none() => {
                r.at(
                    &[Step::Key("golden")],
                    format!("the golden transcript `{g}` is not in the lab's data"),
                )
                .set_help("make it with `netgrade golden LAB REFERENCE -o <data>/<file>`");
            }
            Some(_) => {}
        }
    }
    if kind.needs_probes() && lab.probes.is_empty() {
        r.at(
            &at,
            format!("check `{id}` judges probe exchanges, but the lab has no `probes`"),
        )
        .set_help("list the requests to send under `probes:`, and set `program.role: server`");
    }
    if let Some(spec) = lab.checks.iter().find(|c| c.id.value == id) {
        answer_rules(lab, spec, kind, &at, r);
    }
}

/// A homework's checks are questions, and a question belongs to a homework,
/// with the expected answer its kind reads.
fn answer_rules(lab: &Lab, spec: &super::CheckSpec, kind: CheckKind, at: &[Step], r: &mut Rules) {
    use super::Expected;
    let id = &spec.id.value;
    let homework = lab.program.role == Role::Answers;
    let question = crate::homework::is_answer_kind(kind);
    if homework && !question {
        r.at(at, format!("check `{id}` ({}) needs a program, but the lab's program is an answers file", kind.name()))
            .set_help("a homework's checks are questions: numeric, expression, choice, exact, regex, set or manual");
        return;
    }
    if !question {
        return;
    }
    if !homework {
        r.at(at, format!("check `{id}` is a question ({}), but the lab's program is not an answers file", kind.name()))
            .set_help("set `program.role: answers`, with `entry:` naming the answers file (answers.yaml, answers.md)");
        return;
    }
    let needs = match (kind, &spec.expect) {
        (CheckKind::Manual, _) => None,
        (CheckKind::Numeric, Some(Expected::Number(_))) => None,
        (CheckKind::Numeric, _) => Some("a number, e.g. `expect: 40`"),
        (CheckKind::Expression, Some(Expected::Text(t))) => {
            if let Err(e) = crate::homework::expr::Expr::parse(t) {
                r.at(
                    at,
                    format!("the expected answer of `{id}` is no expression: {e}"),
                )
                .set_help(
                    "write it over the lab's `params`, e.g. `rates * minutes * 60 / segment`",
                );
            }
            None
        }
        (CheckKind::Expression, _) => {
            Some("an expression over the lab's `params`, e.g. `expect: \"N * F / us\"`")
        }
        (CheckKind::Choice, Some(Expected::Text(_) | Expected::Number(_)))
            if !spec.options.is_empty() =>
        {
            None
        }
        (CheckKind::Choice, _) => {
            Some("the right option's letter, with `options:` listing them, e.g. `expect: B`")
        }
        (CheckKind::Exact | CheckKind::Regex, Some(Expected::Text(_))) => None,
        (CheckKind::Exact | CheckKind::Regex, _) => Some("a text, e.g. `expect: MX`"),
        (CheckKind::Set, Some(Expected::List(_))) => None,
        (CheckKind::Pop3Session, Some(Expected::Text(t)))
            if ["delete", "keep", "after-delete", "after-keep"].contains(&t.trim()) =>
        {
            None
        }
        (CheckKind::Pop3Session, _) => Some(
            "the session's mode: `delete` or `keep` (download-and-delete or -keep), `after-delete` or `after-keep` (a second session after one)",
        ),
        (_, _) => Some("a list, e.g. `expect: [A, NS, MX]`"),
    };
    if let Some(example) = needs {
        r.at(
            at,
            format!(
                "question `{id}` ({}) has no expected answer it can use",
                kind.name()
            ),
        )
        .set_help(format!("give `expect:` {example}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait FirstErr {
        fn first_err(self) -> SpecError;
    }

    impl FirstErr for Result<Lab, SpecErrors> {
        fn first_err(self) -> SpecError {
            match self {
                Ok(_) => panic!("the spec was accepted"),
                Err(mut e) => e.0.remove(0),
            }
        }
    }

    const MINIMAL: &str = "\
name: t
title: T
servers:
  - name: pinger
    kind: udp-pinger
    port: 12000
program:
  entry: [client.py]
checks:
  - id: runs
    title: runs
    points: 1
";

    #[test]
    fn builtin_labs_load_and_validate() {
        for name in builtin_names() {
            let lab = load_builtin(name)
                .unwrap()
                .unwrap_or_else(|e| panic!("{}", e.render(false)));
            assert_eq!(lab.name, name);
        }
    }

    #[test]
    fn minimal_lab_loads_with_defaults() {
        let lab = load_str("t.yaml", MINIMAL).unwrap();
        assert_eq!(lab.seed, 1);
        assert_eq!(lab.program.time_limit, super::super::Dur::from_secs(20));
        assert_eq!(lab.checks[0].kind(), Some(CheckKind::Runs));
    }

    #[test]
    fn unknown_field_is_located() {
        let text = MINIMAL.replace("    points: 1\n", "    points: 1\n    pionts: 2\n");
        let e = load_str("t.yaml", &text).first_err();
        assert!(e.message.contains("pionts"), "{}", e.message);
        assert_eq!(e.line, 13, "{e}");
        assert!(e.message.contains("did you mean `points`?"), "{e}");
        assert!(e.render(false).contains("a check has: "));
    }

    #[test]
    fn parameter_of_another_kind_is_rejected() {
        let text = MINIMAL.replace("    points: 1\n", "    points: 1\n    tolerance: 50ms\n");
        let e = load_str("t.yaml", &text).first_err();
        assert!(
            e.message
                .contains("`tolerance` does not apply to check kind `runs`"),
            "{e}"
        );
        assert_eq!(e.line, 13, "at the parameter, not the check");
    }

    #[test]
    fn unknown_check_id_needs_a_kind() {
        let text = MINIMAL.replace("id: runs", "id: exits-ok");
        let e = load_str("t.yaml", &text).first_err();
        assert!(e.message.contains("not a check kind"), "{e}");
        assert!(e.help.unwrap().contains("ping-format"));
        let text = MINIMAL.replace("id: runs", "id: exits-ok\n    kind: runs");
        assert!(load_str("t.yaml", &text).is_ok());
    }

    #[test]
    fn bad_values_are_explained() {
        let text = MINIMAL.replace("port: 12000", "port: 12000\n    loss: 3");
        let e = load_str("t.yaml", &text).first_err();
        assert!(
            e.message.contains("`loss` must be a number from 0 to 1"),
            "{e}"
        );
        let text = MINIMAL.replace(
            "  entry: [client.py]",
            "  entry: [client.py]\n  time_limit: soon",
        );
        let e = load_str("t.yaml", &text).first_err();
        assert!(e.message.contains("not a duration"), "{e}");
        assert_eq!(e.line, 9);
        let text = MINIMAL.replace("port: 12000", "port: 99999");
        assert!(load_str("t.yaml", &text).is_err());
    }

    #[test]
    fn python_packages_are_requirements() {
        let with = |list: &str| {
            MINIMAL.replace(
                "  entry: [client.py]",
                &format!("  entry: [client.py]\n  python_packages: {list}"),
            )
        };
        let lab = load_str(
            "t.yaml",
            &with("[numpy, \"numpy-financial==1.0.0\", \"scipy >= 1.11, <2\", \"pandas[excel]\"]"),
        )
        .unwrap();
        assert_eq!(lab.program.python_packages().len(), 4);
        for bad in [
            "\"--index-url=http://x\"",
            "\"numpy; python_version>'3'\"",
            "\"pkg @ https://x/p.whl\"",
            "\"\"",
        ] {
            let e = load_str("t.yaml", &with(&format!("[{bad}]"))).first_err();
            assert!(
                e.message.contains("not a Python package requirement"),
                "{bad}: {e}"
            );
            assert_eq!(e.line, 9, "{e}");
        }
        let e = load_str("t.yaml", &with("[numpy, NumPy==1.26.4]")).first_err();
        assert!(e.message.contains("`numpy` twice"), "{e}");
    }

    #[test]
    fn server_names_belong_to_client_labs() {
        let text = MINIMAL.replace(
            "  entry: [client.py]",
            "  entry: [client.py]\n  server_names: [\"*Srv*\"]",
        );
        let lab = load_str("t.yaml", &text).unwrap();
        assert_eq!(lab.program.server_names(), ["*Srv*"]);
        let lab = load_str("t.yaml", MINIMAL).unwrap();
        assert_eq!(
            lab.program.server_names(),
            ["*Server*", "*server*", "*SERVER*"]
        );
        let text = text.replace("  server_names", "  role: server\n  server_names");
        let e = load_str("t.yaml", &text).first_err();
        assert!(e.message.contains("client labs only"), "{e}");
    }

    #[test]
    fn resolve_says_what_exists() {
        let e = resolve("no-such-lab").first_err();
        assert!(e.help.unwrap().contains("udp-pinger"));
    }

    /// Broken lab files, made by mutating the built-in ones (deleting,
    /// duplicating, re-indenting and splicing lines and characters), load
    /// to errors with positions inside the file, never a panic.
    #[test]
    fn mutated_specs_give_errors_not_panics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let tokens = [
            ": ", "- ", "\t", "  ", "\"", "'", "[", "]", "{", "}", "&a ", "*a", "<<: *a", "~",
            "99999", "-1", "1e400", ".nan", "!!str ", "#", "\n", "|",
        ];
        for round in 0..3000 {
            let b = &BUILTIN[round % BUILTIN.len()];
            let mut lines: Vec<String> = b.yaml.lines().map(String::from).collect();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..lines.len());
                match rng.random_range(0..5) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let copy = lines[i].clone();
                        lines.insert(i, copy);
                    }
                    2 => lines[i] = format!("  {}", lines[i]),
                    3 => lines[i] = lines[i].trim_start().to_string(),
                    _ => {
                        let at = lines[i]
                            .char_indices()
                            .map(|(k, _)| k)
                            .nth(rng.random_range(0..=lines[i].chars().count().max(1) - 1))
                            .unwrap_or(0);
                        let token = tokens[rng.random_range(0..tokens.len())];
                        lines[i].insert_str(at, token);
                    }
                }
                if lines.is_empty() {
                    lines.push(String::new());
                }
            }
            let text = lines.join("\n");
            if let Err(errors) = load_str("m.yaml", &text) {
                let count = text.lines().count().max(1);
                for e in &errors.0 {
                    assert!(
                        e.line <= count + 1,
                        "line {} of {count}: {e}\n{text}",
                        e.line
                    );
                    let _ = e.render(false);
                }
            }
        }
    }
}
