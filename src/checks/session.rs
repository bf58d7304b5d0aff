//! Line-based sessions (SMTP, POP3) as the reference server recorded them,
//! paired into commands and replies for the mail checks.

use super::{Ctx, Verdict};
use crate::outcome::ExitKind;
use crate::spec::ServerKind;
use crate::trace::{Dir, EventKind};

/// One recorded line.
#[derive(Clone, Copy, Debug)]
pub(super) struct Line<'a> {
    /// Who sent it.
    pub dir: Dir,
    /// The exact bytes, line ending included.
    pub bytes: &'a [u8],
}

impl Line<'_> {
    /// The text without its line ending.
    pub fn text(&self) -> String {
        let b = self.bytes.strip_suffix(b"\n").unwrap_or(self.bytes);
        let b = b.strip_suffix(b"\r").unwrap_or(b);
        String::from_utf8_lossy(b).into_owned()
    }

    /// The upper-cased first word (the command verb).
    pub fn verb(&self) -> String {
        self.text()
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase()
    }

    /// Whether it ends with CRLF.
    pub fn crlf(&self) -> bool {
        self.bytes.ends_with(b"\r\n")
    }
}

/// A client command and the server's reply lines.
#[derive(Clone, Debug)]
pub(super) struct Cmd<'a> {
    /// The command line.
    pub line: Line<'a>,
    /// The reply, in order (empty for message lines inside DATA).
    pub reply: Vec<Line<'a>>,
}

impl Cmd<'_> {
    /// The reply's first line, as text.
    pub fn reply_text(&self) -> String {
        self.reply.first().map(Line::text).unwrap_or_default()
    }

    /// An SMTP reply code (of the last reply line), if any.
    pub fn code(&self) -> Option<u16> {
        self.reply
            .last()
            .and_then(|l| l.text().get(..3)?.parse().ok())
    }

    /// Whether a POP3 reply is `+OK`.
    pub fn ok(&self) -> bool {
        self.reply_text().starts_with("+OK")
    }
}

/// One session of the lab's `kind` server.
pub(super) struct Session<'a> {
    /// Server name.
    pub server: &'a str,
    /// Connection number.
    pub conn: u32,
    /// Every line, in order.
    pub lines: Vec<Line<'a>>,
}

impl<'a> Session<'a> {
    /// Client lines paired with the server lines that follow them.
    pub fn commands(&self) -> Vec<Cmd<'a>> {
        let mut out: Vec<Cmd<'a>> = Vec::new();
        for l in &self.lines {
            match l.dir {
                Dir::In => out.push(Cmd {
                    line: *l,
                    reply: Vec::new(),
                }),
                Dir::Out => {
                    if let Some(last) = out.last_mut() {
                        last.reply.push(*l);
                    }
                }
            }
        }
        out
    }

    /// Deviations the server recorded for this session: (kind, detail).
    pub fn deviations<'b>(&self, ctx: &'b Ctx) -> Vec<(&'b str, &'b str)> {
        ctx.trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Deviation {
                    server,
                    conn,
                    kind,
                    detail,
                } if server == self.server && *conn == self.conn => {
                    Some((kind.as_str(), detail.as_str()))
                }
                _ => None,
            })
            .collect()
    }

    /// Why the session's TLS handshake failed, if it did (the session ended there).
    pub fn tls_failure<'b>(&self, ctx: &'b Ctx) -> Option<&'b str> {
        tls_failures(ctx, self.server)
            .into_iter()
            .find(|(conn, _)| *conn == self.conn)
            .map(|(_, reason)| reason)
    }

    /// ` (the session ended: <why>)` when a failed TLS handshake ended it, else nothing.
    pub fn cut_short(&self, ctx: &Ctx) -> String {
        self.tls_failure(ctx)
            .map(|why| format!(" (the session ended there: {why})"))
            .unwrap_or_default()
    }

    /// How the session ended, as the server recorded it.
    pub fn end<'b>(&self, ctx: &'b Ctx) -> Option<&'b str> {
        ctx.trace.events.iter().find_map(|e| match &e.kind {
            EventKind::SessionEnd { server, conn, how }
                if server == self.server && *conn == self.conn =>
            {
                Some(how.as_str())
            }
            _ => None,
        })
    }
}

/// The first session in which the client said something (else the first one),
/// or a failing verdict that says why there is none.
pub(super) fn session<'a>(ctx: &'a Ctx, kind: ServerKind) -> Result<Session<'a>, Verdict> {
    let Some(spec) = ctx.lab.servers.iter().find(|s| s.kind.value == kind) else {
        return Err(Verdict::fail(format!(
            "the lab has no {} server",
            kind.name()
        )));
    };
    let name = spec.name.as_str();
    let mut conns: Vec<u32> = Vec::new();
    let mut talked: Option<u32> = None;
    for e in &ctx.trace.events {
        if let EventKind::Line {
            server, conn, dir, ..
        } = &e.kind
            && server == name
        {
            if !conns.contains(conn) {
                conns.push(*conn);
            }
            if *dir == Dir::In && talked.is_none() {
                talked = Some(*conn);
            }
        }
    }
    let Some(conn) = talked.or(conns.first().copied()) else {
        if let Some((_, reason)) = tls_failures(ctx, name).first() {
            return Err(Verdict::fail(format!(
                "the client's TLS connection to the {} server failed: {reason}",
                kind.name().to_ascii_uppercase()
            )));
        }
        let why = match ctx.trace.exit() {
            Some((_, exit)) if *exit != (ExitKind::Exited { code: 0 }) => {
                format!(
                    "the program {} before connecting (see `runs`)",
                    exit.describe()
                )
            }
            _ if ctx.trace.strays().is_empty() && ctx.trace.captured().is_empty() => format!(
                "the program ended without opening any connection; it must connect to TCP {}:{} (the host and port given as arguments)",
                spec.host, spec.port
            ),
            _ => format!(
                "connect to the host and port given as arguments (TCP {}:{})",
                spec.host, spec.port
            ),
        };
        return Err(Verdict::fail(format!(
            "the {} server never saw a connection: {why}",
            kind.name().to_ascii_uppercase()
        )));
    };
    let lines = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Line {
                server,
                conn: c,
                dir,
                bytes,
            } if server == name && *c == conn => Some(Line { dir: *dir, bytes }),
            _ => None,
        })
        .collect();
    Ok(Session {
        server: name,
        conn,
        lines,
    })
}

/// The failed TLS handshakes of server `server`: (connection, reason).
fn tls_failures<'c>(ctx: &'c Ctx, server: &str) -> Vec<(u32, &'c str)> {
    let failures = ctx.trace.events.iter().filter_map(|e| match &e.kind {
        EventKind::TlsFailed {
            server: s,
            conn,
            reason,
            ..
        } if s == server => Some((*conn, reason.as_str())),
        _ => None,
    });
    failures.collect()
}

/// Evidence lines showing the session around command `i` (`C:`/`S:` prefixes).
pub(super) fn around(cmds: &[Cmd], i: usize) -> Vec<String> {
    let from = i.saturating_sub(2);
    cmds[from..(i + 2).min(cmds.len())]
        .iter()
        .flat_map(|c| {
            std::iter::once(format!("C: {}", super::quote(c.line.bytes))).chain(
                c.reply
                    .iter()
                    .take(3)
                    .map(|r| format!("S: {}", super::quote(r.bytes))),
            )
        })
        .collect()
}
