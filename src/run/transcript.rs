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
use crate::trace::{EventKind, Stream, Trace};

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
    for e in &trace.events {
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
            EventKind::Exchange {
                probe,
                sent,
                received,
                end,
                ..
            } => {
                let request = sent
                    .split(|b| *b == b'\r' || *b == b'\n')
                    .next()
                    .unwrap_or_default();
                let parsed =
                    crate::probes::http::parse_response(received, sent.starts_with(b"HEAD "));
                let status = parsed
                    .status_line
                    .as_ref()
                    .map(|l| format!("{} {}", l.code, l.reason))
                    .unwrap_or_else(|| "no status line".into());
                let answer = if received.is_empty() {
                    "nothing".to_string()
                } else {
                    format!(
                        "{status}, {} body bytes, {} deviation(s)",
                        parsed.body.len(),
                        parsed.deviations.len()
                    )
                };
                let _ = writeln!(
                    out,
                    "{probe}: {} -> {answer} ({end:?})",
                    r.apply(&quote(request))
                );
            }
            _ => {}
        }
    }
    for (transport, to, n) in trace.strays() {
        let _ = writeln!(
            out,
            "stray: {n} {} packet(s) to {to}, where no server listens",
            transport.name()
        );
    }
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
            EventKind::Leftovers { count } => {
                let _ = writeln!(out, "left {count} process(es) running; killed");
            }
            EventKind::Exited { exit } => {
                let _ = writeln!(out, "program {}", exit.describe());
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
