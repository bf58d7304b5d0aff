//! Loading lab specs: built-in by name, or from a YAML file; then validation.

use std::collections::HashSet;
use std::path::Path;

use serde_saphyr::Location;

use super::{CheckKind, DataFiles, Lab, Role, ServerKind, SpecError};

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
        name: "webserver",
        yaml: include_str!("../../labs/webserver.yaml"),
    },
    Builtin {
        name: "webserver-threaded",
        yaml: include_str!("../../labs/webserver-threaded.yaml"),
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
];

/// Data folders of the built-in labs (`data:` value → files), embedded too.
type EmbeddedFiles = &'static [(&'static str, &'static [u8])];
const BUILTIN_DATA: &[(&str, EmbeddedFiles)] = &[
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
pub fn load_builtin(name: &str) -> Option<Result<Lab, SpecError>> {
    let b = BUILTIN.iter().find(|b| b.name == name)?;
    let path = format!("<builtin>/{}.yaml", b.name);
    Some(parse(&path, b.yaml).and_then(|mut lab| {
        if let Some(data) = &lab.data {
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
            lab.files = DataFiles(files);
        }
        validate(&lab, &path, b.yaml)?;
        Ok(lab)
    }))
}

/// Loads `arg`: a built-in lab name, or a path to a YAML file.
pub fn resolve(arg: &str) -> Result<Lab, SpecError> {
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
    )))
}

/// Loads and validates a lab YAML file.
pub fn load(path: &Path) -> Result<Lab, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(&shown, "", 0, 0, format!("cannot read the file: {e}"))
            .with_help("check the path; a lab spec is a UTF-8 YAML file")
    })?;
    load_str(&shown, &text)
}

/// Parses and validates lab YAML `text`, naming it `path` in errors. A `data`
/// folder is read relative to the directory of `path`.
pub fn load_str(path: &str, text: &str) -> Result<Lab, SpecError> {
    let mut lab = parse(path, text)?;
    if let Some(data) = &lab.data {
        let base = Path::new(path).parent().unwrap_or(Path::new("."));
        let dir = base.join(data);
        lab.files = read_data(&dir).map_err(|e| {
            SpecError::new(
                path,
                text,
                0,
                0,
                format!("cannot read the lab's data folder {}: {e}", dir.display()),
            )
            .with_help("`data` names a folder next to the lab YAML file")
        })?;
    }
    validate(&lab, path, text)?;
    Ok(lab)
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

fn parse(path: &str, text: &str) -> Result<Lab, SpecError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        let message = plain_message(&e.without_snippet().to_string());
        let help = help_for(&message);
        let err = SpecError::new(path, text, line, column, message);
        match help {
            Some(h) => err.with_help(h),
            None => err,
        }
    })
}

/// Strips serde-saphyr's own "at line X column Y" suffix; we show the position ourselves.
fn plain_message(msg: &str) -> String {
    let msg = msg.lines().next().unwrap_or(msg);
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn help_for(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        Some("check the spelling; `netgrade schema` prints every field a lab may have".into())
    } else if message.contains("missing field") {
        Some("add the field; see the lab spec reference in the README".into())
    } else if message.contains("unknown variant") {
        Some("use one of the values the message lists".into())
    } else {
        None
    }
}

fn at(path: &str, text: &str, loc: &Location, message: String) -> SpecError {
    SpecError::new(
        path,
        text,
        loc.line() as usize,
        loc.column() as usize,
        message,
    )
}

/// A pip requirement netgrade accepts: a name, optional extras, optional
/// version specifiers; no URLs, markers or options.
const REQUIREMENT: &str = r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[A-Za-z0-9._-]+(?:\s*,\s*[A-Za-z0-9._-]+)*\])?(?:\s*(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+(?:\s*,\s*(?:===|==|!=|<=|>=|~=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?$";

/// `server_names` and `python_packages`.
fn validate_program(lab: &Lab, path: &str, text: &str) -> Result<(), SpecError> {
    let program = &lab.program;
    if program.server_names.is_some() && program.role == Role::Server {
        return Err(SpecError::new(
            path,
            text,
            0,
            0,
            "`program.server_names` applies to client labs only",
        )
        .with_help("it names the handout's server, which a client lab never grades; remove it"));
    }
    if let Some(glob) = program
        .server_names
        .iter()
        .flatten()
        .find(|g| g.trim().is_empty())
    {
        return Err(SpecError::new(
            path,
            text,
            0,
            0,
            format!("`program.server_names` has an empty name `{glob}`"),
        ));
    }
    let requirement = regex::Regex::new(REQUIREMENT).expect("valid regex");
    let mut seen = HashSet::new();
    for package in &program.python_packages {
        let loc = &package.referenced;
        let Some(found) = requirement.captures(package.value.trim()) else {
            return Err(at(
                path,
                text,
                loc,
                format!("`{}` is not a Python package requirement", package.value),
            )
            .with_help(
                "write a package name, optionally with versions: `numpy`, `numpy==1.26.4`, `scipy>=1.11,<2`",
            ));
        };
        let name = found["name"].to_ascii_lowercase().replace(['_', '.'], "-");
        if !seen.insert(name.clone()) {
            return Err(at(
                path,
                text,
                loc,
                format!("`python_packages` lists `{name}` twice"),
            ));
        }
    }
    Ok(())
}

fn validate(lab: &Lab, path: &str, text: &str) -> Result<(), SpecError> {
    let top = |message: String| SpecError::new(path, text, 0, 0, message);
    if lab.name.trim().is_empty() {
        return Err(top("`name` is empty".into()));
    }
    if lab.checks.is_empty() {
        return Err(
            top("the lab has no checks".into()).with_help("add at least one entry under `checks:`")
        );
    }
    if lab.program.entry.is_empty() {
        return Err(top("`program.entry` lists no entry files".into())
            .with_help("list the file names students use, e.g. [UDPPingerClient.py, \"*.py\"]"));
    }
    if lab.program.time_limit.get().is_zero() {
        return Err(top("`program.time_limit` is zero".into()));
    }
    validate_program(lab, path, text)?;

    let mut names = HashSet::new();
    for server in &lab.servers {
        let loc = &server.kind.referenced;
        if !names.insert(server.name.as_str()) {
            return Err(at(
                path,
                text,
                loc,
                format!("two servers are named `{}`", server.name),
            ));
        }
        let smtp_only = [
            ("greeting_delay", server.greeting_delay.is_some()),
            ("strict_crlf", server.strict_crlf.is_some()),
            ("pipelining", server.pipelining.is_some()),
            ("inject", !server.inject.is_empty()),
            ("starttls", server.starttls.is_some()),
            ("tls_port", server.tls_port.is_some()),
        ];
        let pop3_only = [
            ("user", server.user.is_some()),
            ("password", server.password.is_some()),
            ("maildrop", server.maildrop.is_some()),
        ];
        let pinger_only = [
            ("drop", server.drop.is_some()),
            ("loss", server.loss.is_some()),
        ];
        for (field, kinds, given) in smtp_only
            .iter()
            .map(|(f, g)| (f, ServerKind::Smtp, g))
            .chain(pop3_only.iter().map(|(f, g)| (f, ServerKind::Pop3, g)))
            .chain(
                pinger_only
                    .iter()
                    .map(|(f, g)| (f, ServerKind::UdpPinger, g)),
            )
        {
            if *given && server.kind.value != kinds {
                return Err(at(
                    path,
                    text,
                    loc,
                    format!("`{field}` applies to {} servers only", kinds.name()),
                ));
            }
        }
        match server.kind.value {
            ServerKind::Smtp => {
                if server.tls_port.is_some_and(|p| p == server.port && p != 0) {
                    return Err(
                        at(path, text, loc, "`tls_port` is the same as `port`".into()).with_help(
                            "implicit TLS needs a port of its own, e.g. `tls_port: 465`",
                        ),
                    );
                }
            }
            ServerKind::Pop3 => {
                if server.user.is_none() || server.password.is_none() {
                    return Err(at(
                        path,
                        text,
                        loc,
                        "a pop3 server needs `user` and `password`".into(),
                    )
                    .with_help("e.g. `user: alice` and `password: wonderland`"));
                }
                if server.maildrop_messages(&lab.files).is_empty() {
                    return Err(at(
                        path,
                        text,
                        loc,
                        "a pop3 server needs a `maildrop`: a folder of messages in the lab's data"
                            .into(),
                    )
                    .with_help(
                        "e.g. `maildrop: maildrop` with the messages in `<data>/maildrop/1.eml`, …",
                    ));
                }
            }
            ServerKind::Http => {
                if lab.data.is_none() {
                    return Err(at(
                        path,
                        text,
                        loc,
                        "an http server serves the lab's `data` folder, but the lab has none"
                            .into(),
                    )
                    .with_help("add `data: www` (a folder next to the lab file)"));
                }
            }
            ServerKind::UdpPinger => {
                if let Some(loss) = server.loss
                    && !(0.0..=1.0).contains(&loss)
                {
                    return Err(at(
                        path,
                        text,
                        loc,
                        format!("`loss: {loss}` is not a probability"),
                    )
                    .with_help(
                        "write a number from 0 (never drop) to 1 (drop everything), e.g. 0.3",
                    ));
                }
                if let Some(drop) = &server.drop
                    && drop.contains(&0)
                {
                    return Err(at(
                        path,
                        text,
                        loc,
                        "`drop` counts datagrams from 1; it contains 0".into(),
                    ));
                }
                if server.drop.is_some() && server.loss.is_some() {
                    return Err(at(path, text, loc, "give either `drop` or `loss`, not both".into())
                        .with_help("`drop: [3, 6]` drops exactly those datagrams; `loss: 0.3` drops at a seeded rate"));
                }
                if let Some(d) = &server.delay
                    && d.min > d.max
                {
                    return Err(at(
                        path,
                        text,
                        loc,
                        format!("`delay.min` ({}) is above `delay.max` ({})", d.min, d.max),
                    ));
                }
            }
        }
    }

    let mut probe_ids = HashSet::new();
    for probe in &lab.probes {
        let loc = &probe.id.referenced;
        if !probe_ids.insert(probe.id.value.as_str()) {
            return Err(at(
                path,
                text,
                loc,
                format!("two probes have the id `{}`", probe.id.value),
            ));
        }
        if probe.raw.is_some()
            && (probe.method.is_some() || probe.target.is_some() || !probe.headers.is_empty())
        {
            return Err(at(
                path,
                text,
                loc,
                format!(
                    "probe `{}` has both `raw` and method/target/headers",
                    probe.id.value
                ),
            )
            .with_help("`raw` gives the exact bytes; use one or the other"));
        }
    }
    if !lab.probes.is_empty() && lab.program.role != Role::Server {
        return Err(
            top("the lab has probes, but `program.role` is not `server`".into())
                .with_help("probes drive a student's server: add `role: server` under `program:`"),
        );
    }
    let mut ids = HashSet::new();
    for check in &lab.checks {
        let loc = &check.id.referenced;
        let id = check.id.value.as_str();
        if !ids.insert(id) {
            return Err(
                at(path, text, loc, format!("two checks have the id `{id}`"))
                    .with_help("check ids must be unique: reports and grade books key on them"),
            );
        }
        let Some(kind) = check.kind() else {
            let kinds: Vec<_> = CheckKind::ALL.iter().map(|k| k.name()).collect();
            return Err(at(
                path,
                text,
                loc,
                format!("`{id}` is not a check kind, and the check has no `kind`"),
            )
            .with_help(format!("add `kind: …` with one of: {}", kinds.join(", "))));
        };
        if !(check.points.is_finite() && check.points >= 0.0) {
            return Err(at(
                path,
                text,
                loc,
                format!(
                    "check `{id}` has points {}; points must be 0 or more",
                    check.points
                ),
            ));
        }
        let given = [
            ("count", check.count.is_some()),
            ("first_seq", check.first_seq.is_some()),
            ("min_wait", check.min_wait.is_some()),
            ("max_wait", check.max_wait.is_some()),
            ("tolerance", check.tolerance.is_some()),
            ("pattern", check.pattern.is_some()),
            ("exit_code", check.exit_code.is_some()),
            ("probe", check.probe.is_some()),
            ("probes", check.probes.is_some()),
            ("file", check.file.is_some()),
            ("status", check.status.is_some()),
        ];
        for (param, present) in given {
            if present && !kind.params().contains(&param) {
                let takes = if kind.params().is_empty() {
                    "no parameters".to_string()
                } else {
                    kind.params().join(", ")
                };
                return Err(at(
                    path,
                    text,
                    loc,
                    format!("`{param}` does not apply to check kind `{}`", kind.name()),
                )
                .with_help(format!("`{}` takes {takes}", kind.name())));
            }
        }
        if let Some(p) = &check.pattern
            && let Err(e) = regex::Regex::new(p)
        {
            return Err(at(
                path,
                text,
                loc,
                format!("`pattern` of check `{id}` is not a valid regex: {e}"),
            ));
        }
        if let Some(server) = kind.needs_server()
            && !lab.servers.iter().any(|s| s.kind.value == server)
        {
            let name = server.name();
            return Err(at(
                path,
                text,
                loc,
                format!(
                    "check `{id}` reads {name} server traffic, but the lab has no {name} server"
                ),
            )
            .with_help(format!("add a server with `kind: {name}` under `servers:`")));
        }
        if kind == CheckKind::Transcript {
            match &lab.golden {
                None => {
                    return Err(at(path, text, loc, format!("check `{id}` compares with a golden transcript, but the lab names none"))
                        .with_help("make one with `netgrade golden LAB REFERENCE -o <data>/golden.txt`, then add `golden: golden.txt`"));
                }
                Some(g) if lab.files.get(g).is_none() => {
                    return Err(at(
                        path,
                        text,
                        loc,
                        format!("the golden transcript `{g}` is not in the lab's data"),
                    )
                    .with_help("make it with `netgrade golden LAB REFERENCE -o <data>/<file>`"));
                }
                Some(_) => {}
            }
        }
        if kind.needs_probes() && lab.probes.is_empty() {
            return Err(at(
                path,
                text,
                loc,
                format!("check `{id}` judges probe exchanges, but the lab has no `probes`"),
            )
            .with_help(
                "list the requests to send under `probes:`, and set `program.role: server`",
            ));
        }
        for probe in check.probe.iter().chain(check.probes.iter().flatten()) {
            if !probe_ids.contains(probe.as_str()) {
                return Err(at(
                    path,
                    text,
                    loc,
                    format!("check `{id}` names probe `{probe}`, which the lab does not define"),
                ));
            }
        }
        if let Some(file) = &check.file
            && lab.files.get(file).is_none()
        {
            return Err(at(
                path,
                text,
                loc,
                format!("check `{id}` names file `{file}`, which is not in the lab's data"),
            ));
        }
    }
    for r in &lab.transcript.redact {
        if let Err(e) = regex::Regex::new(&r.pattern) {
            return Err(top(format!(
                "transcript redaction `{}` is not a valid regex: {e}",
                r.pattern
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(e.message.contains("pionts"), "{}", e.message);
        assert_eq!(e.line, 13, "{e}");
        assert!(e.render(false).contains("netgrade schema"));
    }

    #[test]
    fn parameter_of_another_kind_is_rejected() {
        let text = MINIMAL.replace("    points: 1\n", "    points: 1\n    tolerance: 50ms\n");
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(
            e.message
                .contains("`tolerance` does not apply to check kind `runs`"),
            "{e}"
        );
        assert_eq!(e.line, 10);
    }

    #[test]
    fn unknown_check_id_needs_a_kind() {
        let text = MINIMAL.replace("id: runs", "id: exits-ok");
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(e.message.contains("not a check kind"), "{e}");
        assert!(e.help.unwrap().contains("ping-format"));
        let text = MINIMAL.replace("id: runs", "id: exits-ok\n    kind: runs");
        assert!(load_str("t.yaml", &text).is_ok());
    }

    #[test]
    fn bad_values_are_explained() {
        let text = MINIMAL.replace("port: 12000", "port: 12000\n    loss: 3");
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(e.message.contains("not a probability"), "{e}");
        let text = MINIMAL.replace(
            "  entry: [client.py]",
            "  entry: [client.py]\n  time_limit: soon",
        );
        let e = load_str("t.yaml", &text).unwrap_err();
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
            let e = load_str("t.yaml", &with(&format!("[{bad}]"))).unwrap_err();
            assert!(
                e.message.contains("not a Python package requirement"),
                "{bad}: {e}"
            );
            assert_eq!(e.line, 9, "{e}");
        }
        let e = load_str("t.yaml", &with("[numpy, NumPy==1.26.4]")).unwrap_err();
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
        let e = load_str("t.yaml", &text).unwrap_err();
        assert!(e.message.contains("client labs only"), "{e}");
    }

    #[test]
    fn resolve_says_what_exists() {
        let e = resolve("no-such-lab").unwrap_err();
        assert!(e.help.unwrap().contains("udp-pinger"));
    }
}
