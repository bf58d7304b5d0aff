//! Checks over a POP3 client's session, the maildrop it left, and the files it saved.

use super::session::{Cmd, around, session};
use super::{Ctx, Verdict, quote};
use crate::spec::{CheckSpec, ServerKind};
use crate::trace::{EventKind, Stream};

fn commands<'a>(ctx: &'a Ctx) -> Result<Vec<Cmd<'a>>, Verdict> {
    session(ctx, ServerKind::Pop3).map(|s| s.commands())
}

/// The maildrop's original messages.
fn originals(ctx: &Ctx) -> Vec<Vec<u8>> {
    ctx.lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Pop3)
        .map(|s| s.maildrop_messages(&ctx.lab.files))
        .unwrap_or_default()
}

/// The maildrop state after the last session: (updated, deleted, remaining).
fn maildrop(ctx: &Ctx) -> Option<(bool, Vec<u32>, Vec<u32>)> {
    ctx.trace.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Maildrop {
            updated,
            deleted,
            remaining,
            ..
        } => Some((*updated, deleted.clone(), remaining.clone())),
        _ => None,
    })
}

pub(super) fn login(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let user = cmds.iter().position(|c| c.line.verb() == "USER");
    let pass = cmds.iter().position(|c| c.line.verb() == "PASS");
    match (user, pass) {
        (None, _) => {
            let user = super::params::server(ctx.lab, ServerKind::Pop3)
                .and_then(|s| s.user.as_deref())
                .unwrap_or("<user>");
            Verdict::fail(format!(
                "the client never sent USER: log in with `USER {user}\\r\\n`, then `PASS …\\r\\n`"
            ))
        }
        (Some(u), _) if !cmds[u].ok() => Verdict::fail(format!(
            "{} was answered {}",
            quote(cmds[u].line.bytes),
            quote(cmds[u].reply_text().as_bytes())
        ))
        .with_evidence(around(&cmds, u)),
        (Some(_), None) => Verdict::fail("the client sent USER but never PASS"),
        (Some(_), Some(p)) if !cmds[p].ok() => Verdict::fail(format!(
            "PASS was answered {}: check the password (the lab gives it as an argument) and stop when the server says -ERR",
            quote(cmds[p].reply_text().as_bytes())
        ))
        .with_evidence(around(&cmds, p)),
        (Some(_), Some(_)) => Verdict::pass(),
    }
}

pub(super) fn lists(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    match cmds
        .iter()
        .find(|c| matches!(c.line.verb().as_str(), "LIST" | "STAT" | "UIDL"))
    {
        Some(c) if c.ok() => Verdict::pass(),
        Some(c) => Verdict::fail(format!(
            "{} was answered {} (was the login accepted?)",
            quote(c.line.bytes),
            quote(c.reply_text().as_bytes())
        )),
        None => Verdict::fail(
            "the client never asked which messages there are: send `LIST\\r\\n` (or STAT) after logging in",
        ),
    }
}

pub(super) fn retrieves_all(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let total = originals(ctx).len() as u32;
    let retrieved: Vec<u32> = cmds
        .iter()
        .filter(|c| c.line.verb() == "RETR" && c.ok())
        .filter_map(|c| c.line.text().split_whitespace().nth(1)?.parse().ok())
        .collect();
    let missing: Vec<String> = (1..=total)
        .filter(|n| !retrieved.contains(n))
        .map(|n| n.to_string())
        .collect();
    if missing.is_empty() {
        return Verdict::pass();
    }
    let failed: Vec<String> = cmds
        .iter()
        .filter(|c| c.line.verb() == "RETR" && !c.ok())
        .map(|c| {
            format!(
                "{} → {}",
                quote(c.line.bytes),
                quote(c.reply_text().as_bytes())
            )
        })
        .collect();
    Verdict::fail(format!(
        "the maildrop has {total} messages; message(s) {} were never retrieved: RETR each number LIST gives",
        missing.join(", ")
    ))
    .with_evidence(failed)
}

/// Where message `m` shows up: a saved file equal to it, or stdout containing it.
fn saved_or_printed(ctx: &Ctx, m: &[u8]) -> bool {
    let files = ctx.trace.events.iter().filter_map(|e| match &e.kind {
        EventKind::FileWritten { bytes, .. } => Some(bytes.as_slice()),
        _ => None,
    });
    if files.into_iter().any(|f| f == m) {
        return true;
    }
    let out = ctx.trace.lines(Stream::Stdout).join("\n");
    let text = String::from_utf8_lossy(m).replace("\r\n", "\n");
    out.contains(text.trim_end())
}

pub(super) fn saves_exact(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Err(v) = commands(ctx) {
        return v;
    }
    let originals = originals(ctx);
    let files: Vec<(&str, &[u8])> = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::FileWritten { path, bytes } => Some((path.as_str(), bytes.as_slice())),
            _ => None,
        })
        .collect();
    for (n, m) in originals.iter().enumerate() {
        if saved_or_printed(ctx, m) {
            continue;
        }
        let n = n + 1;
        // The closest saved file: the one that agrees longest with the original.
        let closest = files
            .iter()
            .map(|(p, f)| {
                (
                    p,
                    f,
                    f.iter().zip(m.iter()).take_while(|(a, b)| a == b).count(),
                )
            })
            .max_by_key(|(_, _, common)| *common);
        let detail = match closest {
            Some((path, f, at)) if at > 0 => {
                let stuffed_dot = f.get(at) == Some(&b'.') && at > 0 && f[at - 1] == b'.';
                let why = if stuffed_dot {
                    "; a line that starts with \"..\" on the wire has its first dot removed (dot-stuffing)"
                } else if f.len() == at && f.len() < m.len() {
                    "; it stops there: read until the line that is a lone \".\", not with one recv()"
                } else if f.get(at) == Some(&b'\n') && m.get(at) == Some(&b'\r') {
                    "; the file lost the \\r of CRLF line endings: write the bytes as received (open the file \"wb\")"
                } else {
                    ""
                };
                format!(
                    "{path} ({} bytes) differs from message {n} ({} bytes) at byte {at}: it has {}, the original {}{why}",
                    f.len(),
                    m.len(),
                    quote(&f[at..f.len().min(at + 16)]),
                    quote(&m[at..m.len().min(at + 16)])
                )
            }
            _ => format!(
                "message {n} ({} bytes) was neither saved to a file nor printed",
                m.len()
            ),
        };
        return Verdict::fail(detail).with_evidence(
            files
                .iter()
                .map(|(p, f)| format!("saved {p}: {} bytes", f.len()))
                .collect(),
        );
    }
    Verdict::pass()
}

pub(super) fn deletes(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    let total = originals(ctx).len();
    let dele = cmds
        .iter()
        .filter(|c| c.line.verb() == "DELE" && c.ok())
        .count();
    match maildrop(ctx) {
        Some((true, deleted, _)) if deleted.len() == total => Verdict::pass(),
        Some((false, _, _)) if dele > 0 => Verdict::fail(format!(
            "the client marked {dele} message(s) with DELE but never sent QUIT, so nothing was deleted: deletions take effect only when QUIT ends the session (RFC 1939 UPDATE state)"
        )),
        Some((_, deleted, remaining)) => Verdict::fail(format!(
            "{} of {total} messages were deleted; still in the maildrop: {:?}: DELE each message after retrieving it, then QUIT",
            deleted.len(),
            remaining
        )),
        None => Verdict::fail("the session never ended in a way that changed the maildrop"),
    }
}

pub(super) fn keeps(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    match maildrop(ctx) {
        Some((_, deleted, _)) if !deleted.is_empty() => Verdict::fail(format!(
            "message(s) {deleted:?} were deleted; in download-and-keep mode the client must not send DELE"
        ))
        .with_evidence(cmds.iter().filter(|c| c.line.verb() == "DELE").map(|c| format!("C: {}", quote(c.line.bytes))).collect()),
        _ => Verdict::pass(),
    }
}

pub(super) fn quit_pop3(ctx: &Ctx) -> Verdict {
    let cmds = match commands(ctx) {
        Ok(c) => c,
        Err(v) => return v,
    };
    match cmds.iter().position(|c| c.line.verb() == "QUIT") {
        Some(i) if cmds[i].ok() => Verdict::pass(),
        Some(i) => Verdict::fail(format!(
            "QUIT was answered {}",
            quote(cmds[i].reply_text().as_bytes())
        )),
        None => Verdict::fail(
            "the client never sent QUIT: without it the session never reaches the UPDATE state (deletions are lost); end with `QUIT\\r\\n`",
        ),
    }
}
