//! Checks over the requests a student's HTTP client sent to the reference server.

use super::{Ctx, Verdict, quote};
use crate::spec::{CheckSpec, ServerKind};
use crate::trace::{EventKind, Stream};

/// The bytes of the first request the lab's http server received.
fn first_request<'a>(ctx: &'a Ctx) -> Result<&'a [u8], Verdict> {
    let server = ctx
        .lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Http)
        .map(|s| (s.name.as_str(), format!("{}:{}", s.host, s.port)));
    let (name, addr) = server.unwrap_or(("web", String::new()));
    let raw = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Request { server, raw, .. } if server == name && !raw.is_empty() => {
            Some(raw.as_slice())
        }
        _ => None,
    });
    raw.ok_or_else(|| {
        let why = match ctx.trace.exit() {
            Some((_, exit)) if !matches!(exit, crate::outcome::ExitKind::Exited { code: 0 }) => {
                format!("the program {} (see `runs`)", exit.describe())
            }
            _ => format!(
                "connect to the host and port given as arguments (TCP {addr}) and send the request"
            ),
        };
        Verdict::fail(format!("the server received no request: {why}"))
    })
}

/// The head of a request: everything up to the first empty line, or all of it.
fn head(raw: &[u8]) -> &[u8] {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
        .unwrap_or(raw.len());
    &raw[..end]
}

fn lines(head: &[u8]) -> Vec<String> {
    head.split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

pub(super) fn request_line(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let raw = match first_request(ctx) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let file = spec.file.as_deref().unwrap_or("HelloWorld.html");
    let first = lines(head(raw)).into_iter().next().unwrap_or_default();
    let want = format!("/{}", file.trim_start_matches('/'));
    let parts: Vec<&str> = first.split(' ').collect();
    let problem = match parts.as_slice() {
        [method, target, version] => {
            if *method != "GET" {
                Some(if method.eq_ignore_ascii_case("GET") {
                    format!("the method is `{method}`; methods are case-sensitive: write GET")
                } else {
                    format!("the method is `{method}`; expected GET")
                })
            } else if *target != want {
                Some(
                    if target.trim_start_matches('/') == want.trim_start_matches('/') {
                        format!("the target `{target}` lacks its leading slash: request `{want}`")
                    } else {
                        format!(
                            "the target is `{target}`; expected `{want}` (the file named on the command line)"
                        )
                    },
                )
            } else if !matches!(*version, "HTTP/1.1" | "HTTP/1.0") {
                Some(format!("the version is `{version}`; expected HTTP/1.1"))
            } else {
                None
            }
        }
        _ => Some(format!(
            "the request line has {} space-separated part(s); expected three: `GET {want} HTTP/1.1`",
            parts.len()
        )),
    };
    match problem {
        None => Verdict::pass(),
        Some(p) => Verdict::fail(p)
            .with_evidence(vec![format!("request line: {}", quote(first.as_bytes()))]),
    }
}

pub(super) fn host_header(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let raw = match first_request(ctx) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let all = lines(head(raw));
    let host = all.iter().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim().to_string())
    });
    match host {
        Some(v) if !v.is_empty() => Verdict::pass(),
        Some(_) => {
            let addr = super::params::server(ctx.lab, ServerKind::Http)
                .map_or("<host>:<port>".to_string(), |s| format!("{}:{}", s.host, s.port));
            Verdict::fail(format!("the Host header is empty; name the server, e.g. `Host: {addr}`"))
        }
        None => Verdict::fail("the request has no Host header, which HTTP/1.1 requires (the server answers 400 Bad Request): add `Host: <host>:<port>`")
            .with_evidence(all.iter().take(6).map(|l| format!("request: {l}")).collect()),
    }
}

pub(super) fn crlf(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let raw = match first_request(ctx) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let head = head(raw);
    let bare: Vec<usize> = head
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' && (*i == 0 || head[i - 1] != b'\r'))
        .map(|(i, _)| i)
        .collect();
    if let Some(&at) = bare.first() {
        let from = at.saturating_sub(20);
        return Verdict::fail(format!(
            "{} line(s) of the request end with a bare LF (\\n) instead of CRLF (\\r\\n); the first at byte {at}: {}",
            bare.len(),
            quote(&head[from..(at + 1).min(head.len())])
        ));
    }
    if !head.ends_with(b"\r\n\r\n") {
        let tail = &head[head.len().saturating_sub(30)..];
        return Verdict::fail(format!(
            "the request never ends with an empty line (\\r\\n\\r\\n), so the server keeps waiting for more headers; it ends with {}",
            quote(tail)
        ));
    }
    Verdict::pass()
}

pub(super) fn prints_response(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let file = spec.file.as_deref().unwrap_or("HelloWorld.html");
    let Some(expected) = ctx.lab.files.get(file) else {
        return Verdict::fail(format!("the lab has no data file {file}"));
    };
    let out = ctx.trace.lines(Stream::Stdout).join("\n");
    // The status line the server sent must show; for a 200, the page too.
    let status_line = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Response { head, status, .. } => {
            let first = head
                .split(|b| *b == b'\r' || *b == b'\n')
                .next()
                .unwrap_or_default();
            Some((String::from_utf8_lossy(first).into_owned(), *status))
        }
        _ => None,
    });
    if let Some((line, status)) = &status_line {
        if !out.contains(line.as_str()) {
            let shown = ctx.trace.lines(Stream::Stdout);
            return Verdict::fail(format!(
                "the output does not show the server's response: its status line {} is missing{}",
                quote(line.as_bytes()),
                if shown.is_empty() {
                    " (the program printed nothing)"
                } else {
                    ""
                }
            ))
            .with_evidence(
                shown
                    .iter()
                    .take(6)
                    .map(|l| format!("stdout: {l}"))
                    .collect(),
            );
        }
        if *status != 200 {
            return Verdict::pass();
        }
    }
    let mut rest = out.as_str();
    for line in String::from_utf8_lossy(expected)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        match rest.find(line) {
            Some(i) => rest = &rest[i + line.len()..],
            None => {
                let shown = ctx.trace.lines(Stream::Stdout);
                return Verdict::fail(format!(
                    "the output does not show the page the server sent: the line {} of {file} is missing{}",
                    quote(line.as_bytes()),
                    if shown.is_empty() { " (the program printed nothing)" } else { "" }
                ))
                .with_evidence(shown.iter().take(6).map(|l| format!("stdout: {l}")).collect());
            }
        }
    }
    Verdict::pass()
}
