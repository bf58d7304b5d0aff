//! Checks over an SMTP client's session with the reference server.

use std::sync::LazyLock;

use regex::Regex;

use super::session::{Cmd, around, session};
use super::{Ctx, Verdict, quote};
use crate::outcome::{ExitKind, Status};
use crate::spec::{CheckSpec, ServerKind};
use crate::trace::EventKind;

/// The body text the handout's message carries.
/// Characters of a deviation's detail quoted in a message.
const MAX_DETAIL: usize = 200;
/// A body with something in it.
const ANY_BODY: &str = r"\S";

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

/// Like [`smtp`], for checks that judge every line or command of a session:
/// with no session there is nothing to judge, and the fault is charged by
/// the checks that need something to happen (`helo`, `delivered` …).
fn smtp_or_skip<'a>(ctx: &'a Ctx) -> Result<(super::session::Session<'a>, Smtp<'a>), Verdict> {
    smtp(ctx).map_err(|v| Verdict::skip(format!("not checked: {}", v.message.unwrap_or_default())))
}

/// Where the mail transaction broke, if it did: DATA was refused because a
/// MAIL or every RCPT before it had been refused. That refusal is charged
/// by `mail-from` or `rcpt-to`; what followed from it (DATA refused, the
/// message read as commands) is not charged again.
struct Break {
    /// The refused MAIL or RCPT.
    refused: usize,
    /// The refused DATA.
    data: usize,
}

impl Smtp<'_> {
    fn broke(&self) -> Option<Break> {
        let (data, cmd) = self.find("DATA")?;
        if cmd.code() == Some(354) {
            return None;
        }
        let before: Vec<(usize, &Cmd)> = self.commands().take_while(|(j, _)| *j < data).collect();
        let refused = |verb: &str| {
            before
                .iter()
                .find(|(_, c)| c.line.verb() == verb && c.code().is_some_and(|code| code >= 400))
                .map(|(j, _)| *j)
        };
        let any_rcpt = before
            .iter()
            .any(|(_, c)| c.line.verb() == "RCPT" && matches!(c.code(), Some(250 | 251)));
        let refused = refused("MAIL").or_else(|| (!any_rcpt).then(|| refused("RCPT")).flatten())?;
        Some(Break { refused, data })
    }

    /// Session lines up to and including the reply to command `i`.
    fn lines_through(&self, i: usize) -> usize {
        self.cmds[..=i].iter().map(|c| 1 + c.reply.len()).sum()
    }

    /// A note for checks not charged after a break.
    fn break_note(&self, b: &Break) -> String {
        let c = &self.cmds[b.refused];
        format!(
            "the mail transaction had already failed: {} was answered {}",
            quote(c.line.bytes),
            quote(c.reply_text().as_bytes())
        )
    }
}

/// Whether the SMTP session's transaction broke (see [`Break`]), and why:
/// the golden comparison is not made then.
pub(super) fn transaction_broke(ctx: &Ctx) -> Option<String> {
    let (_, m) = smtp(ctx).ok()?;
    m.broke().map(|b| m.break_note(&b))
}

/// The detail of the first deviation of `kind` recorded before the session's
/// `lines`-th line.
fn deviation_before(
    ctx: &Ctx,
    s: &super::session::Session,
    kind: &str,
    lines: usize,
) -> Option<String> {
    let mut seen = 0usize;
    for e in &ctx.trace.events {
        match &e.kind {
            EventKind::Line { server, conn, .. } if server == s.server && *conn == s.conn => {
                seen += 1;
                if seen > lines {
                    return None;
                }
            }
            EventKind::Deviation {
                server,
                conn,
                kind: k,
                detail,
            } if server == s.server && *conn == s.conn && k == kind => {
                return Some(detail.chars().take(MAX_DETAIL).collect());
            }
            _ => {}
        }
    }
    None
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
    Some(if detail.chars().count() > MAX_DETAIL {
        format!("{}…", detail.chars().take(MAX_DETAIL).collect::<String>())
    } else {
        detail.to_string()
    })
}

pub(super) fn waits_for_greeting(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (s, _) = match smtp_or_skip(ctx) {
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
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, first)) = m.commands().next() else {
        return Verdict::fail(format!(
            "the client connected but sent nothing: send `HELO <your domain>\\r\\n` after the greeting{}",
            s.cut_short(ctx)
        ));
    };
    if let Some(detail) = deviation(ctx, &s, "no-ehlo-after-starttls") {
        let i = m.find("STARTTLS").map_or(i, |(j, _)| j);
        return Verdict::fail(format!(
            "{detail}: after STARTTLS the session starts over (RFC 3207 §4.2), so send EHLO again once TLS is up, before AUTH or MAIL FROM; netgrade went on, but many servers answer 503"
        ))
        .with_evidence(around(&m.cmds, i));
    }
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

/// `MAIL FROM:<a@b>` as RFC 5321 §4.1.1.2 and §4.1.1.3 write it.
static PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(MAIL FROM|RCPT TO):<[^<>]*>").unwrap());
/// `MAIL FROM: <a@b>`: white space after the colon, as the textbook's sample sessions write it.
static SPACED_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(MAIL FROM|RCPT TO):\s+<[^<>]*>").unwrap());
/// `MAIL FROM:a@b` or `MAIL FROM: a@b`: no angle brackets.
static BARE_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(MAIL FROM|RCPT TO):\s*[^\s<>]+(\s|$)").unwrap());

/// mail-from and rcpt-to: the command is there, well formed, and accepted.
fn envelope(ctx: &Ctx, verb: &str, example: &str) -> Verdict {
    let (s, m) = match smtp(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some((i, cmd)) = m.find(verb) else {
        return Verdict::fail(format!(
            "the client never sent {verb}: send `{example}\\r\\n`{}",
            s.cut_short(ctx)
        ));
    };
    let text = cmd.line.text();
    let accepted = matches!(cmd.code(), Some(250 | 251));
    if BARE_PATH.is_match(&text) {
        return Verdict::fail(format!(
            "{} has no angle brackets around the address: RFC 5321 §4.1.2 writes a path as \"<\" mailbox \">\", so send `{example}\\r\\n`{}",
            quote(cmd.line.bytes),
            if accepted {
                " (netgrade accepted it and judged the rest of the session, but many servers answer 501)"
            } else {
                ""
            }
        ))
        .with_evidence(around(&m.cmds, i));
    }
    let spaced = SPACED_PATH.is_match(&text);
    if !PATH.is_match(&text) && !spaced {
        return Verdict::fail(format!(
            "{} is not `{example}`: write the colon right after the keyword and the address in angle brackets",
            quote(cmd.line.bytes)
        ))
        .with_evidence(around(&m.cmds, i));
    }
    if !accepted {
        return Verdict::fail(format!(
            "{} was answered {}",
            quote(cmd.line.bytes),
            quote(cmd.reply_text().as_bytes())
        ))
        .with_evidence(around(&m.cmds, i));
    }
    let mut pass = Verdict::pass();
    if spaced {
        pass = pass.with_evidence(vec![format!(
            "note: {} has a space after the colon, as the textbook's sample sessions write it; RFC 5321 has none (`{example}`), but servers accept it",
            quote(cmd.line.bytes)
        )]);
    }
    pass
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
        return Verdict::fail(format!(
            "the client never sent DATA: after RCPT TO is accepted, send `DATA\\r\\n` and wait for 354{}",
            s.cut_short(ctx)
        ));
    };
    if let Some(b) = m.broke() {
        return Verdict::skip(format!("not checked: {}", m.break_note(&b)));
    }
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
        if let Some(b) = m.broke() {
            return Verdict::skip(format!("not checked: {}", m.break_note(&b)));
        }
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
    // A client whose reads fell out of step (it talked before a reply) may
    // read a stale reply after QUIT and close: that fault is the check's that
    // owns it (`waits-for-greeting`, `waits-for-replies`), not quit's.
    let out_of_step = ["early-command", "pipelined", "data-before-354"]
        .iter()
        .any(|k| deviation(ctx, &s, k).is_some())
        || m.broke().is_some();
    if let (Some(b), Some(_)) = (m.broke(), m.find("QUIT")) {
        return Verdict {
            status: Status::Pass,
            message: Some(format!(
                "QUIT was sent; what came after the failed transaction is not judged ({})",
                m.break_note(&b)
            )),
            evidence: Vec::new(),
            share: None,
        };
    }
    if deviation(ctx, &s, "closed-before-221").is_some() && !out_of_step {
        let evidence = m
            .find("QUIT")
            .map(|(i, _)| around(&m.cmds, i))
            .unwrap_or_default();
        return Verdict::fail(
            "the client closed the connection right after sending QUIT, without reading the server's 221 reply: read the reply to QUIT (`recv`), then close",
        )
        .with_evidence(evidence);
    }
    match m.find("QUIT") {
        Some((_, cmd)) if cmd.code() == Some(221) => Verdict::pass(),
        // A QUIT without its CRLF never was a whole command: that is `crlf`'s fault.
        Some((_, cmd)) if cmd.reply.is_empty() && !cmd.line.crlf() => Verdict {
            status: Status::Pass,
            message: Some("QUIT was sent without its CRLF, so the server never took it as a command (charged to `crlf`)".into()),
            evidence: Vec::new(),
            share: None,
        },
        Some((i, cmd)) if cmd.reply.is_empty() => Verdict::fail(
            "the client sent QUIT but closed the connection before the server's 221 reply: read the reply to QUIT, then close",
        )
        .with_evidence(around(&m.cmds, i)),
        Some((i, cmd)) => Verdict::fail(format!("QUIT was answered {}", quote(cmd.reply_text().as_bytes())))
            .with_evidence(around(&m.cmds, i)),
        None => Verdict::fail(format!(
            "the client never sent QUIT (the session ended: {}); end with `QUIT\\r\\n` and read the 221{}",
            s.end(ctx).unwrap_or("unknown"),
            s.cut_short(ctx)
        )),
    }
}

pub(super) fn crlf_smtp(ctx: &Ctx) -> Verdict {
    let (s, m) = match smtp_or_skip(ctx) {
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
    let (s, m) = match smtp_or_skip(ctx) {
        Ok(v) => v,
        Err(v) => return v,
    };
    // After a broken transaction the client sends its message as commands:
    // only what it sent ahead of replies before that counts.
    let pipelined = match m.broke() {
        Some(b) => deviation_before(ctx, &s, "pipelined", m.lines_through(b.data)),
        None => deviation(ctx, &s, "pipelined"),
    };
    match pipelined {
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

/// delivered: a message arrived, with headers, an empty line and a body;
/// with `pattern`, a body that matches it (the handout's own text is an
/// example, so the built-in labs ask for none).
pub(super) fn delivered(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pattern = spec.pattern.as_deref().unwrap_or(ANY_BODY);
    let re = super::compiled(pattern)
        .or_else(|| super::compiled(ANY_BODY))
        .expect("ANY_BODY is a regex");
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
            Ok((s, _)) => Verdict::fail(format!(
                "no message was delivered: the server accepts one after HELO, MAIL FROM, RCPT TO, DATA, the message and \\r\\n.\\r\\n{}",
                s.cut_short(ctx)
            )),
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
    let message = if headers_only {
        "the delivered message has no blank line, so everything in it reads as headers and its body is empty; put an empty line (`\\r\\n`) between the headers and the body".to_string()
    } else if spec.pattern.is_none() {
        "the delivered message's body is empty; put the text after the headers and an empty line"
            .to_string()
    } else {
        format!("the delivered message's body does not match `{pattern}`, which this lab asks for")
    };
    Verdict::fail(message).with_evidence(
        text.lines()
            .take(8)
            .map(|l| format!("message: {l}"))
            .collect(),
    )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::outcome::{CheckOutcome, ExitKind, Status};
    use crate::trace::{Dir, Event, EventKind, Trace};

    /// A trace of a client that exited 0 after one session on server `mail`:
    /// `S: line` and `C: line` (CRLF added), `! kind detail` a deviation,
    /// `tls` TLS after STARTTLS, `failed REASON` a failed handshake,
    /// `delivered` the handout's message delivered.
    fn trace(script: &str) -> Trace {
        let mut kinds = vec![EventKind::Started {
            command: vec!["client".into()],
        }];
        for step in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (server, conn) = ("mail".to_string(), 1);
            let (head, rest) = step.split_once(' ').unwrap_or((step, ""));
            kinds.push(match head {
                "S:" | "C:" => EventKind::Line {
                    server,
                    conn,
                    dir: if head == "S:" { Dir::Out } else { Dir::In },
                    bytes: format!("{rest}\r\n").into_bytes(),
                },
                "!" => {
                    let (kind, detail) = rest.split_once(' ').unwrap();
                    let (kind, detail) = (kind.into(), detail.into());
                    EventKind::Deviation {
                        server,
                        conn,
                        kind,
                        detail,
                    }
                }
                "tls" => EventKind::TlsStarted {
                    server,
                    conn,
                    version: "TLS 1.3".into(),
                    sni: None,
                    implicit: false,
                },
                "failed" => EventKind::TlsFailed {
                    server,
                    conn,
                    implicit: true,
                    reason: rest.into(),
                },
                "delivered" => EventKind::Delivered {
                    server,
                    conn,
                    from: "alice@crepes.fr".into(),
                    to: vec!["bob@hamburger.edu".into()],
                    data: b"Subject: x\r\n\r\nI love computer networks!\r\n".to_vec(),
                },
                _ => EventKind::SessionEnd {
                    server,
                    conn,
                    how: rest.into(),
                },
            });
        }
        kinds.push(EventKind::Exited {
            exit: ExitKind::Exited { code: 0 },
        });
        let events = kinds.into_iter().enumerate();
        let at = |i: usize| Duration::from_millis(i as u64);
        Trace {
            events: events.map(|(i, kind)| Event { at: at(i), kind }).collect(),
        }
    }

    fn grade(script: &str) -> Vec<CheckOutcome> {
        let lab = crate::spec::load_builtin("smtp-client").unwrap().unwrap();
        crate::checks::evaluate(&lab, &trace(script))
    }

    /// The ids of the checks that did not pass.
    fn failed(outcomes: &[CheckOutcome]) -> Vec<&str> {
        let failed = outcomes.iter().filter(|c| c.status != Status::Pass);
        failed.map(|c| c.id.as_str()).collect()
    }

    fn check<'a>(outcomes: &'a [CheckOutcome], id: &str) -> &'a CheckOutcome {
        outcomes.iter().find(|c| c.id == id).unwrap()
    }

    /// A session after its HELO, with `mail` and `rcpt` for the envelope.
    fn rest(mail: &str, rcpt: &str) -> String {
        format!(
            "C: {mail}
             S: 250 2.1.0 Ok
             C: {rcpt}
             S: 250 2.1.5 Ok
             C: DATA
             S: 354 End data with <CR><LF>.<CR><LF>
             C: Subject: x
             C:
             C: I love computer networks!
             C: .
             delivered
             S: 250 2.0.0 Ok: queued as 1.1
             C: QUIT
             S: 221 2.0.0 Bye
             end client-quit"
        )
    }

    const GREETING: &str = "S: 220 netgrade.test ESMTP netgrade";

    #[test]
    fn a_client_over_starttls_with_auth_gets_full_marks() {
        let script = format!(
            "{GREETING}
             C: EHLO alice
             S: 250-netgrade.test
             S: 250-STARTTLS
             S: 250 HELP
             C: STARTTLS
             S: 220 2.0.0 Ready to start TLS
             tls
             C: EHLO alice
             S: 250-netgrade.test
             S: 250 HELP
             C: AUTH LOGIN
             S: 334 VXNlcm5hbWU6
             C: <user name \"alice\" in base64>
             S: 334 UGFzc3dvcmQ6
             C: <password hidden>
             S: 235 2.7.0 Authentication successful
             {}",
            rest("MAIL FROM:<alice@crepes.fr>", "RCPT TO:<bob@hamburger.edu>")
        );
        assert_eq!(failed(&grade(&script)), [""; 0]);
    }

    #[test]
    fn a_space_after_the_colon_passes_with_a_note_and_a_bare_address_fails_alone() {
        let spaced = rest(
            "MAIL FROM: <alice@crepes.fr>",
            "RCPT TO: <bob@hamburger.edu>",
        );
        let devs = "! space-after-colon MAIL FROM: <alice@crepes.fr>\n! space-after-colon RCPT TO: <bob@hamburger.edu>";
        let outcomes = grade(&format!(
            "{GREETING}\nC: HELO alice\nS: 250 netgrade.test\n{devs}\n{spaced}"
        ));
        assert_eq!(failed(&outcomes), [""; 0]);
        let note = &check(&outcomes, "mail-from").evidence;
        assert!(
            note[0].starts_with("note: \"MAIL FROM: <alice@crepes.fr>\\r\\n\" has a space"),
            "{note:?}"
        );
        let bare = rest("MAIL FROM:alice@crepes.fr", "RCPT TO: bob@hamburger.edu");
        let outcomes = grade(&format!(
            "{GREETING}\nC: HELO alice\nS: 250 netgrade.test\n{bare}"
        ));
        assert_eq!(failed(&outcomes), ["mail-from", "rcpt-to"]);
        let message = check(&outcomes, "rcpt-to").message.clone().unwrap();
        assert!(
            message.contains("RFC 5321 §4.1.2")
                && message.contains("send `RCPT TO:<bob@hamburger.edu>\\r\\n`"),
            "{message}"
        );
        assert!(message.contains("netgrade accepted it"), "{message}");
    }

    #[test]
    fn no_ehlo_after_starttls_costs_helo_only() {
        let script = format!(
            "{GREETING}
             C: EHLO alice
             S: 250-netgrade.test
             S: 250 STARTTLS
             C: STARTTLS
             S: 220 2.0.0 Ready to start TLS
             tls
             ! no-ehlo-after-starttls MAIL FROM:<alice@crepes.fr> came after the TLS handshake with no new EHLO
             {}",
            rest("MAIL FROM:<alice@crepes.fr>", "RCPT TO:<bob@hamburger.edu>")
        );
        let outcomes = grade(&script);
        assert_eq!(failed(&outcomes), ["helo"]);
        let message = check(&outcomes, "helo").message.clone().unwrap();
        assert!(
            message.contains("RFC 3207 §4.2") && message.contains("send EHLO again"),
            "{message}"
        );
        assert!(
            check(&outcomes, "helo")
                .evidence
                .iter()
                .any(|e| e.contains("STARTTLS"))
        );
    }

    #[test]
    fn a_failed_handshake_is_the_reason_every_session_check_gives() {
        let reason = "the client sent nothing for 10 s instead of starting TLS: on this port …";
        let outcomes = grade(&format!("failed {reason}\nend tls-failed"));
        for id in ["helo", "mail-from", "quit", "crlf", "delivered"] {
            let message = check(&outcomes, id).message.clone().unwrap_or_default();
            assert!(
                message.contains("TLS connection to the SMTP server failed")
                    && message.contains(reason),
                "{id}: {message}"
            );
        }
        // After STARTTLS the session has lines; the checks say where it stopped.
        let script = format!(
            "{GREETING}
             C: EHLO alice
             S: 250 netgrade.test
             C: STARTTLS
             S: 220 2.0.0 Ready to start TLS
             failed the client's TLS handshake failed: received fatal alert: UnknownCA
             end tls-failed"
        );
        let outcomes = grade(&script);
        let message = check(&outcomes, "mail-from").message.clone().unwrap();
        assert!(
            message.contains("never sent MAIL") && message.contains("UnknownCA"),
            "{message}"
        );
        assert_eq!(check(&outcomes, "helo").status, Status::Pass);
    }
}
