//! The normalized transcript of a run: what `--snapshots` writes.
//!
//! Everything that varies between two runs of the same submission with the
//! same seed — timestamps in payloads, measured RTTs, ports, paths — is
//! redacted by the lab's rules or left out, so instructors can diff runs.

use std::fmt::Write as _;

use regex::Regex;

use crate::checks::quote;
use crate::outcome::{CheckOutcome, ExitKind, fmt_points};
use crate::spec::{Lab, ServerKind};
use crate::trace::{Dir, EventKind, Stream, Trace};

/// Output lines shown per stream before the rest is summarized.
const MAX_LINES: usize = 200;

/// Applies the lab's redaction rules in order.
pub struct Redactor(Vec<(Regex, String)>);

impl Redactor {
    /// Compiles the lab's rules (validated at load time).
    pub fn new(lab: &Lab) -> Self {
        Redactor(
            lab.transcript
                .redact
                .iter()
                .filter_map(|r| Some((Regex::new(&r.pattern).ok()?, r.replace.clone())))
                .collect(),
        )
    }

    /// `text` with every rule applied.
    pub fn apply(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (re, with) in &self.0 {
            s = re.replace_all(&s, with.as_str()).into_owned();
        }
        s
    }
}

/// Everything the transcript shows besides the trace.
pub struct Header<'a> {
    /// The submission as named on the command line.
    pub submission: &'a str,
    /// The seed.
    pub seed: u64,
    /// The command run, if any.
    pub command: Option<&'a [String]>,
}

/// Renders the normalized transcript.
pub fn render(lab: &Lab, header: &Header, trace: &Trace, checks: &[CheckOutcome]) -> String {
    let r = Redactor::new(lab);
    let mut out = String::new();
    let _ = writeln!(out, "lab: {}", lab.name);
    let _ = writeln!(out, "submission: {}", header.submission);
    let _ = writeln!(out, "seed: {}", header.seed);
    if let Some(cmd) = header.command {
        let _ = writeln!(out, "command: {}", cmd.join(" "));
    }
    out.push_str(&session(lab, trace));
    // Where the output was cut at the limit, how many lines fit depends on the
    // width of what came before (timestamps vary), so counts are left out.
    let cut = matches!(trace.exit(), Some((_, ExitKind::OutputLimit { .. })));
    for stream in [Stream::Stdout, Stream::Stderr] {
        let lines = trace.lines(stream);
        if cut {
            let _ = writeln!(out, "\n== {} (cut at the output limit) ==", stream.name());
        } else {
            let _ = writeln!(out, "\n== {} ({} lines) ==", stream.name(), lines.len());
        }
        for line in lines.iter().take(MAX_LINES) {
            let _ = writeln!(out, "{}", r.apply(&escape_controls(line)));
        }
        if lines.len() > MAX_LINES {
            if cut {
                let _ = writeln!(out, "… more lines");
            } else {
                let _ = writeln!(out, "… {} more lines", lines.len() - MAX_LINES);
            }
        }
    }
    let _ = writeln!(out, "\n== end ==");
    for e in &trace.events {
        match &e.kind {
            EventKind::BuildFailed { command, .. } => {
                let _ = writeln!(out, "build failed: {}", command.join(" "));
            }
            EventKind::FileWritten { path, bytes } => {
                let _ = writeln!(out, "wrote {path} ({} bytes)", bytes.len());
            }
            EventKind::Leftovers { count } => {
                let _ = writeln!(out, "left {count} process(es) running; killed");
            }
            EventKind::Exited { exit } => {
                let _ = writeln!(out, "program {}", exit.describe());
            }
            EventKind::ServerRestarted { attempt, .. } => {
                let _ = writeln!(out, "program started again ({attempt})");
            }
            _ => {}
        }
    }
    let _ = writeln!(out, "\n== checks ==");
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    let (mut got, mut max) = (0.0, 0.0);
    for c in checks {
        got += c.points;
        max += c.max_points;
        let _ = writeln!(
            out,
            "{:<4} {:<width$} {}/{}",
            c.status.as_str(),
            c.id,
            fmt_points(c.points),
            fmt_points(c.max_points)
        );
    }
    let _ = writeln!(out, "score {}/{}", fmt_points(got), fmt_points(max));
    out
}

/// The servers' side of a run, normalized: datagrams with the server's
/// decisions, HTTP requests, SMTP and POP3 sessions line by line. This is what
/// a lab's golden transcript holds, and it opens every `--snapshots` file.
pub fn session(lab: &Lab, trace: &Trace) -> String {
    let r = Redactor::new(lab);
    let mut out = String::new();
    for server in &lab.servers {
        match server.kind.value {
            ServerKind::Http => {
                let _ = writeln!(
                    out,
                    "\n== {} (http, TCP {}:{}) ==",
                    server.name, server.host, server.port
                );
                for e in &trace.events {
                    match &e.kind {
                        EventKind::Request {
                            server: s,
                            conn,
                            raw,
                            ..
                        } if *s == server.name => {
                            let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
                            let first = first.strip_suffix(b"\r").unwrap_or(first);
                            let _ = writeln!(
                                out,
                                "conn {conn} -> {} ({} bytes)",
                                r.apply(&quote(first)),
                                raw.len()
                            );
                        }
                        EventKind::Response {
                            server: s,
                            conn,
                            status,
                            body_len,
                            ..
                        } if *s == server.name => {
                            let _ = writeln!(out, "conn {conn} <- {status}, {body_len} body bytes");
                        }
                        _ => {}
                    }
                }
            }
            ServerKind::Smtp | ServerKind::Pop3 => {
                let _ = writeln!(
                    out,
                    "\n== {} ({}, TCP {}:{}) ==",
                    server.name,
                    server.kind.value.name(),
                    server.host,
                    server.port
                );
                lines(&mut out, &r, &server.name, trace);
            }
            ServerKind::UdpPinger => {
                let _ = writeln!(
                    out,
                    "\n== {} (udp-pinger, UDP {}:{}) ==",
                    server.name, server.host, server.port
                );
                for e in &trace.events {
                    match &e.kind {
                        EventKind::Datagram {
                            server: s,
                            dir,
                            index,
                            data,
                            ..
                        } if *s == server.name => {
                            let arrow = match dir {
                                crate::trace::Dir::In => "->",
                                crate::trace::Dir::Out => "<-",
                            };
                            let _ = writeln!(out, "#{index:<3} {arrow} {}", r.apply(&quote(data)));
                        }
                        EventKind::Dropped { server: s, index } if *s == server.name => {
                            let _ = writeln!(out, "#{index:<3}    dropped");
                        }
                        EventKind::Delayed {
                            server: s,
                            index,
                            delay,
                        } if *s == server.name => {
                            let _ = writeln!(
                                out,
                                "#{index:<3}    reply delayed {} ms",
                                delay.as_millis()
                            );
                        }
                        EventKind::RecordingCapped { server: s, limit } if *s == server.name => {
                            let _ = writeln!(
                                out,
                                "…    more than {limit} datagrams; the rest are not recorded"
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    if !lab.probes.is_empty() {
        let _ = writeln!(out, "\n== probes ==");
    }
    for (i, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::Listening { addr, .. } => {
                let _ = writeln!(out, "server listening; probes connect to TCP {addr}");
            }
            EventKind::NotListening { exited, .. } => {
                let _ = writeln!(
                    out,
                    "server never listened{}",
                    if *exited { " (it had exited)" } else { "" }
                );
            }
            EventKind::Holding { probe, until } => {
                let until = until.as_deref().unwrap_or("the next probe");
                let _ = writeln!(
                    out,
                    "{probe}: connection opened; nothing sent until {until} has finished"
                );
            }
            EventKind::LateResponse {
                probe,
                received,
                end,
            } => {
                let _ = writeln!(
                    out,
                    "{probe}: afterwards -> {} ({end:?})",
                    answer(received, false)
                );
            }
            EventKind::ServerEnded { probe, exit, since } => {
                let after = probe.as_deref().unwrap_or("its start");
                let _ = writeln!(
                    out,
                    "server ended after {after}: {} ({} stderr line(s))",
                    exit.describe(),
                    trace.stderr_between(*since, e.at).len()
                );
            }
            EventKind::ServerRestarted { attempt, addr } => match addr {
                Some(addr) => {
                    let _ = writeln!(
                        out,
                        "server started again ({attempt}); probes connect to TCP {addr}"
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "server started again ({attempt}) but did not listen in time"
                    );
                }
            },
            EventKind::Exchange {
                probe,
                sent,
                received,
                end,
                ..
            } => {
                // Nothing sent (the connection failed): the request it would have sent.
                let planned = lab
                    .probes
                    .iter()
                    .find(|p| sent.is_empty() && p.id.value == *probe)
                    .map(|p| p.bytes("host", 0))
                    .unwrap_or_default();
                let request = if sent.is_empty() { &planned } else { sent }
                    .split(|b| *b == b'\r' || *b == b'\n')
                    .next()
                    .unwrap_or_default();
                // A first try that found the server gone, sent again after the
                // restart, is left out: whether it was refused, reset or not
                // needed depends on how far the server had got in ending.
                let again = trace.events[i + 1..].iter().any(
                    |later| matches!(&later.kind, EventKind::Exchange { probe: p, .. } if p == probe),
                );
                if again {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{probe}: {} -> {} ({end:?})",
                    r.apply(&quote(request)),
                    answer(received, sent.starts_with(b"HEAD "))
                );
            }
            _ => {}
        }
    }
    for line in crate::servers::resolver::transcript(trace) {
        let _ = writeln!(out, "{}", r.apply(&line));
    }
    for (transport, to, server, n) in trace.captured() {
        let _ = writeln!(
            out,
            "captured: {n} {} flow(s) to {to}, answered by {server}",
            transport.name()
        );
    }
    for (transport, to, n) in trace.strays() {
        let _ = writeln!(
            out,
            "stray: {n} {} packet(s) to {to}, where no server listens",
            transport.name()
        );
    }
    out
}

/// A response in one phrase: `200 OK, 299 body bytes, 0 deviation(s)`, or `nothing`.
fn answer(received: &[u8], head: bool) -> String {
    if received.is_empty() {
        return "nothing".to_string();
    }
    let parsed = crate::probes::http::parse_response(received, head);
    let status = parsed
        .status_line
        .as_ref()
        .map(|l| format!("{} {}", l.code, l.reason))
        .unwrap_or_else(|| "no status line".into());
    format!(
        "{status}, {} body bytes, {} deviation(s)",
        parsed.body.len(),
        parsed.deviations.len()
    )
}

/// Lines of one direction shown in a row before the rest are summarized
/// (a whole message or a long listing says little line by line).
const RUN_SHOWN: usize = 8;

/// A line-based session: `C:`/`S:` lines, deviations, deliveries, endings.
fn lines(out: &mut String, r: &Redactor, server: &str, trace: &Trace) {
    let mut run: Option<(Dir, usize, usize)> = None; // direction, lines in the run, bytes beyond RUN_SHOWN
    let flush = |out: &mut String, run: &mut Option<(Dir, usize, usize)>| {
        if let Some((_, n, bytes)) = run.take()
            && n > RUN_SHOWN
        {
            let _ = writeln!(out, "   … {} more line(s), {bytes} bytes", n - RUN_SHOWN);
        }
    };
    // An SMTP message is the student's own text: the session shows where it
    // was, not what it said (the `delivered` check reads it).
    let mut in_message = false;
    for e in &trace.events {
        match &e.kind {
            EventKind::Line {
                server: s,
                conn,
                dir,
                bytes,
            } if s == server => {
                if *dir == Dir::Out && bytes.starts_with(b"354") {
                    in_message = true;
                } else if in_message && *dir == Dir::In {
                    if bytes
                        .strip_suffix(b"\n")
                        .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
                        != Some(b".")
                    {
                        continue;
                    }
                    in_message = false;
                    flush(out, &mut run);
                    let _ = writeln!(out, "{conn} C: (the message)");
                    run = Some((Dir::In, 1, 0));
                } else if *dir == Dir::Out {
                    in_message = false;
                }
                match &mut run {
                    Some((d, n, b)) if d == dir => {
                        *n += 1;
                        if *n > RUN_SHOWN {
                            *b += bytes.len();
                            continue;
                        }
                    }
                    _ => {
                        flush(out, &mut run);
                        run = Some((*dir, 1, 0));
                    }
                }
                let who = if *dir == Dir::In { "C" } else { "S" };
                let _ = writeln!(out, "{conn} {who}: {}", r.apply(&quote(bytes)));
            }
            EventKind::Deviation {
                server: s,
                conn,
                kind,
                detail,
            } if s == server => {
                flush(out, &mut run);
                let _ = writeln!(out, "{conn} !  {kind}: {}", r.apply(detail));
            }
            EventKind::Delivered {
                server: s,
                conn,
                from,
                to,
                ..
            } if s == server => {
                flush(out, &mut run);
                let to: Vec<String> = to.iter().map(|t| r.apply(&format!("<{t}>"))).collect();
                let _ = writeln!(
                    out,
                    "{conn} delivered from {} to {}",
                    r.apply(&format!("<{from}>")),
                    to.join(", ")
                );
            }
            EventKind::RecordingCapped { server: s, limit } if s == server => {
                flush(out, &mut run);
                let _ = writeln!(out, "…  more than {limit} lines; the rest are not recorded");
            }
            EventKind::SessionEnd {
                server: s,
                conn,
                how,
            } if s == server => {
                flush(out, &mut run);
                let _ = writeln!(out, "{conn} end: {how}");
            }
            EventKind::Maildrop {
                server: s,
                conn,
                updated,
                deleted,
                remaining,
            } if s == server => {
                flush(out, &mut run);
                let _ = writeln!(
                    out,
                    "{conn} maildrop: {} deleted {deleted:?}, remaining {remaining:?}",
                    if *updated {
                        "updated,"
                    } else {
                        "not updated (no QUIT),"
                    }
                );
            }
            _ => {}
        }
    }
    flush(out, &mut run);
}

/// Makes control characters visible so a transcript is plain, safe text.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}
