//! Checks over an SMTP client's session with the reference server.

use std::sync::LazyLock;

use regex::Regex;

use super::session::{Cmd, around, session};
use super::{Ctx, Verdict, quote};
use crate::outcome::ExitKind;
use crate::spec::{CheckSpec, ServerKind};
use crate::trace::EventKind;

/// The body text the handout's message carries.
const DEFAULT_BODY: &str = "(?i)I love computer networks";

/// Commands of the session outside the message, and the message's lines.
struct Smtp<'a> {
    cmds: Vec<Cmd<'a>>,
    /// Index of the DATA command whose 354 started a message, if any.
    data: Option<usize>,
    /// Index of the line that ended the message (a lone dot), if any.
    dot: Option<usize>,
}

fn smtp<'a>(ctx: &'a Ctx) -> Result<(super::session::Session<'a>, Smtp<'a>), Verdict> {
    let s = session(ctx, ServerKind::Smtp)?;
    let cmds = s.commands();
    let data = cmds
        .iter()
        .position(|c| c.line.verb() == "DATA" && c.code() == Some(354));
    let dot = data.and_then(|d| {
        cmds.iter()
            .enumerate()
            .skip(d + 1)
            .find(|(_, c)| c.line.text() == "." && c.code().is_some())
            .map(|(i, _)| i)
    });
    Ok((s, Smtp { cmds, data, dot }))
}

impl Smtp<'_> {
    /// Commands outside the message (index, command).
    fn commands(&self) -> impl Iterator<Item = (usize, &Cmd<'_>)> {
        self.cmds
            .iter()
            .enumerate()
            .filter(|(i, _)| match (self.data, self.dot) {
                (Some(d), Some(e)) => *i <= d || *i > e,
                (Some(d), None) => *i <= d,
                _ => true,
            })
    }

    fn find(&self, verb: &str) -> Option<(usize, &Cmd<'_>)> {
        self.commands()
            .find(|(_, c)| c.line.verb() == verb || c.line.verb().starts_with(&format!("{verb}:")))
    }
}

/// The detail of the first deviation of `kind`, shortened for a message.
fn deviation(ctx: &Ctx, s: &super::session::Session, kind: &str) -> Option<String> {
    let detail = s
        .deviations(ctx)
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, d)| d)?;
    Some(if detail.chars().count() > 80 {
        format!("{}…", detail.chars().take(80).collect::<String>())
    } else {
        detail.to_string()
    })
}

pub(super) fn waits_for_greeting(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (s, _) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    match deviation(ctx, &s, "early-command") {
        Some(detail) => Verdict::fail(format!(
            "the client sent {detail} before the server's 220 greeting: read the greeting first (recv until the line ends with \\r\\n), then send HELO"
        )),
        None => Verdict::pass(),
    }
}

pub(super) fn helo(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (_, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, first)) = m.commands().next() else {
        return Verdict::fail(
            "the client connected but sent nothing: send `HELO <your domain>\\r\\n` after the greeting",
        );
    };
    let verb = first.line.verb();
    if verb != "HELO" && verb != "EHLO" {
        return Verdict::fail(format!(
            "the first command is {}; a session starts with HELO (or EHLO) and your domain",
            quote(first.line.bytes)
        ))
        .with_evidence(around(&m.cmds, i));
    }
    match first.code() {
        Some(250) => Verdict::pass(),
        _ => Verdict::fail(format!(
            "{} was answered {}: give a domain, e.g. `HELO alice.example\\r\\n`",
            quote(first.line.bytes),
            quote(first.reply_text().as_bytes())
        )),
    }
}

static PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(MAIL FROM|RCPT TO):<[^<>]*>").unwrap());

/// mail-from and rcpt-to: the command is there, well formed, and accepted.
fn envelope(ctx: &Ctx, verb: &str, example: &str) -> Verdict {
    let (_, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, cmd)) = m.find(verb) else {
        return Verdict::fail(format!(
            "the client never sent {verb}: send `{example}\\r\\n`"
        ));
    };
    let text = cmd.line.text();
    if !PATH.is_match(&text) {
        return Verdict::fail(format!(
            "{} is not `{example}`: write the colon right after the keyword and the address in angle brackets",
            quote(cmd.line.bytes)
        ))
        .with_evidence(around(&m.cmds, i));
    }
    match cmd.code() {
        Some(250 | 251) => Verdict::pass(),
        _ => Verdict::fail(format!(
            "{} was answered {}",
            quote(cmd.line.bytes),
            quote(cmd.reply_text().as_bytes())
        ))
        .with_evidence(around(&m.cmds, i)),
    }
}

pub(super) fn mail_from(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    envelope(ctx, "MAIL", "MAIL FROM:<alice@crepes.fr>")
}

pub(super) fn rcpt_to(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    envelope(ctx, "RCPT", "RCPT TO:<bob@hamburger.edu>")
}

pub(super) fn data(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, cmd)) = m.find("DATA") else {
        return Verdict::fail(
            "the client never sent DATA: after RCPT TO is accepted, send `DATA\\r\\n` and wait for 354",
        );
    };
    if cmd.code() != Some(354) {
        let before_rcpt = !m
            .commands()
            .take_while(|(j, _)| *j < i)
            .any(|(_, c)| c.line.verb() == "RCPT" && c.code() == Some(250));
        return Verdict::fail(format!(
            "DATA was answered {}{}",
            quote(cmd.reply_text().as_bytes()),
            if before_rcpt {
                ": send DATA only after a recipient was accepted"
            } else {
                ""
            }
        ))
        .with_evidence(around(&m.cmds, i));
    }
    if let Some(detail) = deviation(ctx, &s, "data-before-354") {
        return Verdict::fail(format!(
            "the message was sent before the server's 354 reply to DATA arrived ({detail}): wait for 354, then send the message"
        ))
        .with_evidence(around(&m.cmds, i));
    }
    Verdict::pass()
}

pub(super) fn end_of_data(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some(d) = m.data else {
        return Verdict::fail("no message was sent (DATA was never accepted), so it could not end");
    };
    if let Some(detail) = deviation(ctx, &s, "bare-lf-dot") {
        return Verdict::fail(format!(
            "the message ends with a bare-LF dot line ({detail}); a message ends with \\r\\n.\\r\\n — a server must not accept \\n.\\n"
        ));
    }
    match m.dot {
        Some(e) if m.cmds[e].line.bytes == b".\r\n" => Verdict::pass(),
        Some(e) => Verdict::fail(format!(
            "the message ends with {}; end it with \\r\\n.\\r\\n",
            quote(m.cmds[e].line.bytes)
        )),
        None => {
            let last = m
                .cmds
                .last()
                .map(|c| quote(c.line.bytes))
                .unwrap_or_default();
            Verdict::fail(format!(
                "the message never ended: after DATA the server waited for a line with a lone dot, and the last line was {last}; send \\r\\n.\\r\\n after the message"
            ))
            .with_evidence(around(&m.cmds, m.cmds.len().saturating_sub(1).max(d)))
        }
    }
}

pub(super) fn quit_smtp(ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    match m.find("QUIT") {
        Some((_, cmd)) if cmd.code() == Some(221) => Verdict::pass(),
        Some((i, cmd)) if cmd.reply.is_empty() => Verdict::fail(
            "the client sent QUIT but closed the connection before the server's 221 reply: read the reply to QUIT, then close",
        )
        .with_evidence(around(&m.cmds, i)),
        Some((i, cmd)) => Verdict::fail(format!("QUIT was answered {}", quote(cmd.reply_text().as_bytes())))
            .with_evidence(around(&m.cmds, i)),
        None => Verdict::fail(format!(
            "the client never sent QUIT (the session ended: {}); end with `QUIT\\r\\n` and read the 221",
            s.end(ctx).unwrap_or("unknown")
        )),
    }
}

pub(super) fn crlf_smtp(ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let bare: Vec<(usize, &Cmd)> = m
        .cmds
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.line.crlf())
        .collect();
    match bare.first() {
        None => {
            if let Some(detail) = deviation(ctx, &s, "bare-lf") {
                return Verdict::fail(format!("a line ends with a bare LF: {detail}; end every line with \\r\\n"));
            }
            Verdict::pass()
        }
        Some((i, c)) => Verdict::fail(format!(
            "{} line(s) do not end with CRLF; the first: {}; end every command and message line with \\r\\n (bare \\n is not a line end in SMTP)",
            bare.len(),
            quote(c.line.bytes)
        ))
        .with_evidence(around(&m.cmds, *i)),
    }
}

pub(super) fn waits_for_replies(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    match deviation(ctx, &s, "pipelined") {
        None => Verdict::pass(),
        Some(detail) => {
            let i = m
                .cmds
                .iter()
                .position(|c| detail.starts_with(c.line.text().as_str()))
                .unwrap_or(0);
            Verdict::fail(format!(
                "the client sent {detail} before the reply to its previous command arrived (the server did not offer PIPELINING): read each reply — every line up to the one with a space after the code — before the next command"
            ))
            .with_evidence(around(&m.cmds, i))
        }
    }
}

pub(super) fn delivered(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pattern = spec.pattern.as_deref().unwrap_or(DEFAULT_BODY);
    let re = Regex::new(pattern).unwrap_or_else(|_| Regex::new(DEFAULT_BODY).unwrap());
    let messages: Vec<&[u8]> = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Delivered { data, .. } => Some(data.as_slice()),
            _ => None,
        })
        .collect();
    let Some(first) = messages.first() else {
        return match smtp(ctx) {
            Err(v) => v,
            Ok(_) => Verdict::fail(
                "no message was delivered: the server accepts one after HELO, MAIL FROM, RCPT TO, DATA, the message and \\r\\n.\\r\\n",
            ),
        };
    };
    for m in &messages {
        let body = match mailparse::parse_mail(m) {
            Ok(parsed) => parsed.get_body().unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(m).into_owned(),
        };
        if re.is_match(&body) {
            return Verdict::pass();
        }
    }
    let text = String::from_utf8_lossy(first);
    let headers_only = !text.contains("\r\n\r\n") && !text.contains("\n\n");
    Verdict::fail(format!(
        "the delivered message's body does not match `{pattern}`{}",
        if headers_only {
            ": the message has no blank line, so everything in it reads as headers; put an empty line between the headers and the body"
        } else {
            ""
        }
    ))
    .with_evidence(text.lines().take(8).map(|l| format!("message: {l}")).collect())
}

pub(super) fn handles_rejection(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (_, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, rejected)) = m
        .commands()
        .find(|(_, c)| c.code().is_some_and(|code| code >= 500))
    else {
        return Verdict::fail(
            "no command was rejected in this session, so the client's handling could not be seen",
        );
    };
    let verb = rejected.line.verb();
    let after: Vec<&Cmd> = m
        .commands()
        .filter(|(j, _)| *j > i)
        .map(|(_, c)| c)
        .collect();
    let repeats = after.iter().filter(|c| c.line.verb() == verb).count();
    if repeats >= 3 || matches!(ctx.trace.exit(), Some((_, ExitKind::TimedOut { .. }))) {
        return Verdict::fail(format!(
            "after {} was answered {}, the client sent it {repeats} more time(s){}: a 5xx reply is permanent; stop, send QUIT and report the error",
            quote(rejected.line.bytes),
            quote(rejected.reply_text().as_bytes()),
            if matches!(ctx.trace.exit(), Some((_, ExitKind::TimedOut { .. }))) { " and was still at it at the time limit" } else { "" }
        ))
        .with_evidence(around(&m.cmds, i + 1));
    }
    if let Some(data) = after.iter().find(|c| c.line.verb() == "DATA") {
        return Verdict::fail(format!(
            "after the recipient was rejected ({}), the client went on to DATA ({}): with no accepted recipient there is nothing to send; QUIT instead",
            quote(rejected.reply_text().as_bytes()),
            quote(data.reply_text().as_bytes())
        ));
    }
    if !after.iter().any(|c| c.line.verb() == "QUIT") {
        return Verdict::fail(format!(
            "after the rejection ({}), the client never sent QUIT: end the session cleanly",
            quote(rejected.reply_text().as_bytes())
        ));
    }
    Verdict::pass()
}
