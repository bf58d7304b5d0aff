//! The normalized transcript of a run: what `--snapshots` writes.
//!
//! Everything that varies between two runs of the same submission with the
//! same seed — timestamps in payloads, measured RTTs, ports, paths — is
//! redacted by the lab's rules or left out, so instructors can diff runs.
//!
//! The servers' side comes in two views. The full one opens every
//! transcript. The golden one ([`session`]) is what a lab's golden transcript
//! holds and what the `transcript` check compares: for an SMTP session it
//! leaves out what other checks judge or what a correct client may do either
//! way, so one fault is charged to one check:
//! - the TLS negotiation: of the exchange before STARTTLS only the greeting
//!   and the first HELO or EHLO stay, and a HELO or EHLO right after the
//!   handshake goes (implicit TLS has nothing to leave out);
//! - an AUTH exchange;
//! - the extension lines of a multi-line reply (EHLO's): it shows as its
//!   first line, and EHLO shows as HELO;
//! - how an address was written: `MAIL FROM: <a@b>` and `MAIL FROM:a@b` show
//!   as `MAIL FROM:<a@b>`;
//! - deviations: each is judged by the check that owns it (`crlf` bare LF,
//!   `waits-for-greeting` early commands, `waits-for-replies` pipelining,
//!   `mail-from`/`rcpt-to` address forms, `helo` a missing EHLO after
//!   STARTTLS …);
//! - and, for every lab, where the program's traffic went (names it looked up,
//!   hard-coded hosts and ports the capture answered): what it hard-coded,
//!   not how it talked.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

use crate::checks::quote;
use crate::outcome::{CheckOutcome, ExitKind, fmt_points};
use crate::spec::{Lab, ServerKind};
use crate::trace::{Dir, EventKind, Stream, Trace};

/// Output lines shown per stream before the rest is summarized.
const MAX_LINES: usize = 200;

/// Applies the lab's redaction rules in order.
///
/// A rule replaces a whole IPv4 address or leaves it alone, never a piece
/// of one: `\d+\.\d+` turns `0.130` into `<num>` but keeps `127.0.0.1`
/// readable, while a rule written for addresses still replaces them whole.
pub struct Redactor {
    rules: Vec<(Regex, String)>,
    /// No rules, and lines shown whole (`--raw-transcripts`).
    raw: bool,
}

/// An IPv4 address in dotted-quad form.
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap());

/// Where `text` holds IPv4 addresses: dotted quads that are not part of a
/// longer run of dotted numbers (`1.2.3.4.5` is a version, not an address).
fn addresses(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let dotted_digit = |at: usize| {
        bytes.get(at) == Some(&b'.') && bytes.get(at + 1).is_some_and(u8::is_ascii_digit)
    };
    IPV4.find_iter(text)
        .filter(|m| {
            let before = m.start().checked_sub(1).map(|i| bytes[i]);
            before != Some(b'.') && !dotted_digit(m.end())
        })
        .map(|m| (m.start(), m.end()))
        .collect()
}

impl Redactor {
    /// Compiles the lab's rules (validated at load time).
    pub fn new(lab: &Lab) -> Self {
        Redactor {
            rules: lab
                .transcript
                .redact
                .iter()
                .filter_map(|r| Some((crate::checks::compiled(&r.pattern)?, r.replace.clone())))
                .collect(),
            raw: false,
        }
    }

    /// No rules: text stays as it is, and quoted lines are not cut.
    pub fn raw() -> Self {
        Redactor {
            rules: Vec::new(),
            raw: true,
        }
    }

    /// `bytes` quoted (cut to one screen line unless raw), every rule applied.
    pub fn quoted(&self, bytes: &[u8]) -> String {
        if self.raw {
            return crate::checks::quote_all(bytes);
        }
        self.apply(&quote(bytes))
    }

    /// `text` with every rule applied.
    pub fn apply(&self, text: &str) -> String {
        let mut s = text.to_string();
        for (re, with) in &self.rules {
            if !re.is_match(&s) {
                continue;
            }
            let kept = addresses(&s);
            s = re
                .replace_all(&s, |caps: &regex::Captures| {
                    let m = caps.get(0).expect("a match");
                    let (start, end) = (m.start(), m.end());
                    let splits = kept
                        .iter()
                        .any(|&(a, b)| start < b && end > a && !(start <= a && end >= b));
                    let mut out = String::new();
                    if splits {
                        out.push_str(m.as_str());
                    } else {
                        caps.expand(with, &mut out);
                    }
                    out
                })
                .into_owned();
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
    render_with(&Redactor::new(lab), lab, header, trace, checks)
}

/// Renders the raw transcript (`--raw-transcripts`): the same account with
/// nothing redacted or left out for being different every run (clocks,
/// ports, RTTs, paths, a probe's first try before a restart), and quoted
/// lines whole. The same limits on the number of lines apply.
pub fn render_raw(lab: &Lab, header: &Header, trace: &Trace, checks: &[CheckOutcome]) -> String {
    render_with(&Redactor::raw(), lab, header, trace, checks)
}

fn render_with(
    r: &Redactor,
    lab: &Lab,
    header: &Header,
    trace: &Trace,
    checks: &[CheckOutcome],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "lab: {}", lab.name);
    let _ = writeln!(out, "submission: {}", header.submission);
    let _ = writeln!(out, "seed: {}", header.seed);
    if let Some(cmd) = header.command {
        let _ = writeln!(out, "command: {}", cmd.join(" "));
    }
    out.push_str(&session_view(lab, trace, View::Full, r));
    // Where the output was cut at the limit, how many lines fit depends on the
    // width of what came before (timestamps vary), so counts are left out.
    let over = matches!(trace.exit(), Some((_, ExitKind::OutputLimit { .. })));
    let cut = over && !r.raw;
    for stream in [Stream::Stdout, Stream::Stderr] {
        let lines = trace.lines(stream);
        if cut {
            let _ = writeln!(out, "\n== {} (cut at the output limit) ==", stream.name());
        } else if over {
            let _ = writeln!(
                out,
                "\n== {} ({} lines, cut at the output limit) ==",
                stream.name(),
                lines.len()
            );
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
            EventKind::RecordingCut {
                budget,
                limit,
                dropped,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "recording cut at {} of {} ({dropped} events not recorded)",
                    crate::outcome::human_bytes(*limit),
                    budget.name()
                );
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

/// Which view of the servers' side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    /// Everything, for people.
    Full,
    /// What the golden comparison compares (see the module's docs).
    Golden,
}

/// The servers' side of a run, normalized: datagrams with the server's
/// decisions, HTTP requests, SMTP and POP3 sessions line by line, in the
/// golden view (see the module's docs). This is what a lab's golden
/// transcript holds; the full view opens every `--snapshots` file.
pub fn session(lab: &Lab, trace: &Trace) -> String {
    session_view(lab, trace, View::Golden, &Redactor::new(lab))
}

fn session_view(lab: &Lab, trace: &Trace, view: View, r: &Redactor) -> String {
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
                                r.quoted(first),
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
                let canon = (view == View::Golden && server.kind.value == ServerKind::Smtp)
                    .then(|| Canon::new(&server.name, trace));
                lines(
                    &mut out,
                    r,
                    &server.name,
                    server.kind.value == ServerKind::Smtp,
                    trace,
                    canon,
                );
            }
            kind @ (ServerKind::Tracker | ServerKind::Peer) => {
                let _ = writeln!(
                    out,
                    "\n== {} ({}, TCP {}:{}) ==",
                    server.name,
                    kind.name(),
                    server.host,
                    server.port
                );
                let lines = match kind {
                    ServerKind::Tracker => crate::servers::tracker::transcript(&server.name, trace),
                    _ => crate::servers::peer::transcript(&server.name, trace),
                };
                for line in lines {
                    let _ = writeln!(out, "{}", r.apply(&line));
                }
            }
            ServerKind::Dns => {
                let at = if server.hierarchy == Some(true) {
                    format!("a hierarchy on port {}", server.port)
                } else {
                    format!("UDP and TCP {}:{}", server.host, server.port)
                };
                let _ = writeln!(out, "\n== {} (dns, {at}) ==", server.name);
                for line in crate::servers::dns::transcript(&server.name, trace) {
                    let _ = writeln!(out, "{}", r.apply(&line));
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
                            let _ = writeln!(out, "#{index:<3} {arrow} {}", r.quoted(data));
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
                let _ = writeln!(
                    out,
                    "server listening; probes connect to {} {addr}",
                    crate::probes::dns::probes_transport(lab)
                );
            }
            EventKind::NotListening { exited, .. } => {
                let _ = writeln!(
                    out,
                    "server never listened{}",
                    if *exited { " (it had exited)" } else { "" }
                );
            }
            EventKind::InstanceStarted {
                instance,
                port,
                addr,
                ..
            } => {
                let _ = match addr {
                    Some(addr) => writeln!(
                        out,
                        "instance {instance} (told port {port}) listening; probes connect to {addr}"
                    ),
                    None => writeln!(out, "instance {instance} (told port {port}) never listened"),
                };
            }
            EventKind::InstanceEnded { instance, exit, .. } => {
                let _ = writeln!(out, "instance {instance}: {}", exit.describe());
            }
            EventKind::Heartbeat {
                probe,
                client,
                seq,
                delay,
                lost,
                ..
            } => {
                let _ = if *lost {
                    writeln!(out, "{probe}: client {client} #{seq} lost (never sent)")
                } else {
                    writeln!(
                        out,
                        "{probe}: client {client} #{seq} -> \"{seq} <time>\" (one-way delay {} ms)",
                        delay.as_millis()
                    )
                };
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
                    "{probe}: afterwards -> {} ({end})",
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
                        "server started again ({attempt}); probes connect to {} {addr}",
                        crate::probes::dns::probes_transport(lab)
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
                if again && !r.raw {
                    continue;
                }
                if let Some(dns) = lab
                    .probes
                    .iter()
                    .find(|p| p.id.value == *probe)
                    .and_then(|p| p.dns.as_ref())
                {
                    let line = crate::probes::dns::describe_exchange(dns, sent, received, end);
                    let _ = writeln!(out, "{probe}: {line}");
                    continue;
                }
                let request = match (request.is_empty(), sent.is_empty()) {
                    (true, _) => "(nothing)".to_string(),
                    (false, false) => r.quoted(request),
                    (false, true) => format!("{} (not sent)", r.quoted(request)),
                };
                let _ = writeln!(
                    out,
                    "{probe}: {request} -> {} ({end})",
                    answer(received, sent.starts_with(b"HEAD "))
                );
            }
            _ => {}
        }
    }
    // Where the program's traffic went: what it hard-coded, not how it
    // talked, so the golden view leaves it out.
    if view == View::Full {
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

/// The golden view of an SMTP server's lines (see the module's docs).
struct Canon {
    /// Per connection, the index of the event where TLS began after STARTTLS.
    starttls_at: HashMap<u32, usize>,
    /// Per connection, where its lines are.
    conns: HashMap<u32, ConnCanon>,
}

/// Where the golden view is in one connection's lines.
#[derive(Debug, Default)]
struct ConnCanon {
    /// A line was shown already (the greeting is the first).
    seen: bool,
    /// Inside an AUTH exchange.
    auth: bool,
    /// Inside a message (after 354).
    message: bool,
    /// Inside a multi-line reply.
    multiline: bool,
    /// The HELO or EHLO before STARTTLS was shown.
    hello: bool,
    /// The reply under way is shown (else left out) …
    reply: Option<bool>,
    /// … and the first command after TLS was looked at.
    after_tls: bool,
}

/// A path in MAIL or RCPT, however it was written.
static ANY_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(MAIL FROM|RCPT TO):\s*<?([^<>\s]*)>?").unwrap());

impl Canon {
    fn new(server: &str, trace: &Trace) -> Self {
        let starttls_at = trace
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.kind {
                EventKind::TlsStarted {
                    server: s,
                    conn,
                    implicit: false,
                    ..
                } if s == server => Some((*conn, i)),
                _ => None,
            });
        Canon {
            starttls_at: starttls_at.collect(),
            conns: HashMap::new(),
        }
    }

    /// Line event `index` of connection `conn` as the golden view shows it,
    /// or `None` to leave it out. In a STARTTLS session the HELO or EHLO
    /// shown is the one before STARTTLS: the rest before TLS, and a HELO or
    /// EHLO right after it, are left out.
    fn line(&mut self, index: usize, conn: u32, dir: Dir, bytes: &[u8]) -> Option<Vec<u8>> {
        let tls = self.starttls_at.get(&conn).map(|&at| index > at);
        let c = self.conns.entry(conn).or_default();
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let verb = text
            .split(|b| *b == b' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let hello = dir == Dir::In && (verb == b"HELO" || verb == b"EHLO");
        if !std::mem::replace(&mut c.seen, true) || c.message {
            c.message &= !(dir == Dir::In && text == b".");
            return Some(bytes.to_vec());
        }
        if dir == Dir::Out
            && let Some(shown) = c.reply
        {
            c.reply = bytes.get(3).is_some_and(|b| *b == b'-').then_some(shown);
            return if shown { c.reply_line(bytes) } else { None };
        }
        match tls {
            Some(false) if hello && !c.hello => c.hello = true,
            Some(false) => return None,
            Some(true) if dir == Dir::In && !std::mem::replace(&mut c.after_tls, true) && hello => {
                c.reply = Some(false);
                return None;
            }
            _ => {}
        }
        if c.auth {
            c.auth = dir != Dir::Out || bytes.starts_with(b"334");
            return None;
        }
        match dir {
            Dir::In => c.command(text, bytes),
            Dir::Out => c.reply_line(bytes),
        }
    }
}

impl ConnCanon {
    /// A command line, canonical (`None`: left out).
    fn command(&mut self, text: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
        let verb = text.split(|b| *b == b' ').next().unwrap_or_default();
        self.reply = Some(true);
        if verb.eq_ignore_ascii_case(b"AUTH") {
            self.auth = true;
            self.reply = None;
            return None;
        }
        let ending = &bytes[text.len()..];
        // Commands are case-insensitive (RFC 5321 §2.4): `helo` is `HELO`.
        let verb_upper = verb.to_ascii_uppercase();
        if verb_upper == b"EHLO" {
            return Some([b"HELO".as_slice(), &text[4..], ending].concat());
        }
        let line = String::from_utf8_lossy(text);
        match ANY_PATH.captures(&line) {
            Some(c) => {
                let rest = &line[c.get(0).map_or(0, |m| m.end())..];
                // How the path is written is `mail-from`'s and `rcpt-to`'s to judge.
                let path = if c[2].is_empty() { "" } else { "address" };
                let path = format!("{}:<{path}>{rest}", c[1].to_ascii_uppercase());
                Some([path.as_bytes(), ending].concat())
            }
            None => Some([&verb_upper[..], &text[verb.len()..], ending].concat()),
        }
    }

    /// A reply line: a multi-line reply shows as its first line (`None`: left out).
    fn reply_line(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let more = bytes.get(3) == Some(&b'-');
        if std::mem::replace(&mut self.multiline, more) {
            return None;
        }
        self.message |= bytes.starts_with(b"354");
        let mut shown = bytes.to_vec();
        if more {
            shown[3] = b' ';
        }
        Some(shown)
    }
}

/// Message lines shown in the full view of an SMTP session before the rest
/// of the message is summarized.
const MESSAGE_SHOWN: usize = 50;

/// Where the full view is in a message: lines shown, then lines and bytes
/// left out.
#[derive(Default)]
struct Message {
    shown: usize,
    more: usize,
    bytes: usize,
}

/// A line-based session: `C:`/`S:` lines, deviations, deliveries, endings;
/// in the golden view of an SMTP session when `canon` is given.
fn lines(
    out: &mut String,
    r: &Redactor,
    server: &str,
    smtp: bool,
    trace: &Trace,
    mut canon: Option<Canon>,
) {
    // Direction, lines in the run, bytes beyond RUN_SHOWN; and the message
    // under way, whose left-out lines are summarized where it ends.
    type Run = Option<(Dir, usize, usize)>;
    let flush_run = |out: &mut String, run: &mut Run| {
        if let Some((_, n, bytes)) = run.take()
            && n > RUN_SHOWN
        {
            let _ = writeln!(out, "   … {} more line(s), {bytes} bytes", n - RUN_SHOWN);
        }
    };
    let flush = |out: &mut String, run: &mut Run, message: &mut Option<Message>| {
        flush_run(out, run);
        if let Some(m) = message.take()
            && m.more > 0
        {
            let _ = writeln!(
                out,
                "   … {} more line(s) of the message, {} bytes, not shown",
                m.more, m.bytes
            );
        }
    };
    let mut run: Run = None;
    // An SMTP message (the lines after the 354, up to the dot) is shown as
    // the client sent it, its first MESSAGE_SHOWN lines; the golden view
    // shows where it was, not what it said (the `delivered` check reads it).
    let mut in_message = false;
    let mut message: Option<Message> = None;
    for (index, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::Line {
                server: s,
                conn,
                dir,
                bytes,
            } if s == server => {
                let canonical = match &mut canon {
                    Some(canon) => match canon.line(index, *conn, *dir, bytes) {
                        Some(shown) => Some(shown),
                        None => continue,
                    },
                    None => None,
                };
                let bytes = canonical.as_deref().unwrap_or(bytes);
                if smtp && *dir == Dir::Out && bytes.starts_with(b"354") {
                    in_message = true;
                } else if in_message && *dir == Dir::In {
                    let dot = bytes
                        .strip_suffix(b"\n")
                        .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
                        == Some(b".");
                    if canon.is_some() {
                        // The golden view: the message in one line.
                        if !dot {
                            continue;
                        }
                        in_message = false;
                        flush(out, &mut run, &mut message);
                        let _ = writeln!(out, "{conn} C: (the message)");
                        run = Some((Dir::In, 1, 0));
                    } else if dot {
                        in_message = false;
                        flush(out, &mut run, &mut message);
                    } else {
                        if message.is_none() {
                            flush(out, &mut run, &mut message);
                        }
                        let m = message.get_or_insert_default();
                        if m.shown < MESSAGE_SHOWN {
                            m.shown += 1;
                            let _ = writeln!(out, "{conn} C: {}", r.quoted(bytes));
                        } else {
                            m.more += 1;
                            m.bytes += bytes.len();
                        }
                        continue;
                    }
                } else if *dir == Dir::Out {
                    in_message = false;
                    if message.is_some() {
                        flush(out, &mut run, &mut message);
                    }
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
                        flush(out, &mut run, &mut message);
                        run = Some((*dir, 1, 0));
                    }
                }
                let who = if *dir == Dir::In { "C" } else { "S" };
                let _ = writeln!(out, "{conn} {who}: {}", r.quoted(bytes));
            }
            EventKind::Deviation {
                server: s,
                conn,
                kind,
                detail,
            } if s == server && canon.is_none() => {
                flush_run(out, &mut run);
                let _ = writeln!(out, "{conn} !  {kind}: {}", r.apply(detail));
            }
            EventKind::Delivered {
                server: s,
                conn,
                from,
                to,
                ..
            } if s == server => {
                flush_run(out, &mut run);
                // The golden view shows paths the way it shows MAIL and RCPT.
                let path = |p: &str| match (&canon, p.is_empty()) {
                    (Some(_), true) => "<>".to_string(),
                    (Some(_), false) => "<address>".to_string(),
                    (None, _) => r.apply(&format!("<{p}>")),
                };
                let to: Vec<String> = to.iter().map(|t| path(t)).collect();
                let _ = writeln!(
                    out,
                    "{conn} delivered from {} to {}",
                    path(from),
                    to.join(", ")
                );
            }
            EventKind::RecordingCapped { server: s, limit } if s == server => {
                flush(out, &mut run, &mut message);
                let _ = writeln!(out, "…  more than {limit} lines; the rest are not recorded");
            }
            EventKind::SessionEnd {
                server: s,
                conn,
                how,
            } if s == server => {
                flush(out, &mut run, &mut message);
                let _ = writeln!(out, "{conn} end: {how}");
            }
            EventKind::TlsFailed {
                server: s,
                conn,
                reason,
                ..
            } if s == server => {
                flush_run(out, &mut run);
                let _ = writeln!(out, "{conn} tls failed: {reason}");
            }
            EventKind::TlsStarted {
                server: s,
                conn,
                version,
                sni,
                implicit,
            } if s == server && canon.is_none() => {
                flush_run(out, &mut run);
                let how = if *implicit {
                    "implicit TLS"
                } else {
                    "after STARTTLS"
                };
                let sni = sni
                    .as_ref()
                    .map_or("no SNI".into(), |n| format!("SNI {}", quote(n.as_bytes())));
                let _ = writeln!(out, "{conn} tls: {version}, {how}, {sni}");
            }
            EventKind::Authenticated {
                server: s,
                conn,
                mechanism,
                user,
                encrypted,
                starttls_offered,
            } if s == server && canon.is_none() => {
                flush_run(out, &mut run);
                let how = match (encrypted, starttls_offered) {
                    (true, _) => "under TLS",
                    (false, true) => "without TLS, though the server offered STARTTLS",
                    (false, false) => "without TLS",
                };
                let _ = writeln!(
                    out,
                    "{conn} auth: {mechanism} as {}, {how}",
                    quote(user.as_bytes())
                );
            }
            EventKind::Maildrop {
                server: s,
                conn,
                updated,
                deleted,
                remaining,
            } if s == server => {
                flush_run(out, &mut run);
                let _ = writeln!(
                    out,
                    "{conn} maildrop: {}; deleted: {}; remaining: {}",
                    if *updated {
                        "updated"
                    } else {
                        "not updated (no QUIT)"
                    },
                    numbers(deleted),
                    numbers(remaining)
                );
            }
            _ => {}
        }
    }
    flush(out, &mut run, &mut message);
}

/// Message numbers as a list for people: `1, 2, 3`, or `none`.
fn numbers(list: &[u32]) -> String {
    if list.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = list.iter().map(u32::to_string).collect();
    shown.join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::ExchangeEnd;
    use std::time::Duration;

    /// The full view of the servers' side, normalized.
    fn full_view(lab: &Lab, trace: &Trace) -> String {
        session_view(lab, trace, View::Full, &Redactor::new(lab))
    }

    /// A trace of one SMTP session on server `mail`, from a script: `S: line`
    /// and `C: line` (CRLF added), `tls` / `tls-implicit`, `auth USER`.
    fn smtp_trace(script: &str) -> Trace {
        let mut events = Vec::new();
        for (i, step) in script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            let (server, conn) = ("mail".to_string(), 1);
            let kind = match step.split_once(' ') {
                Some(("S:", text)) | Some(("C:", text)) => EventKind::Line {
                    server,
                    conn,
                    dir: if step.starts_with('S') {
                        Dir::Out
                    } else {
                        Dir::In
                    },
                    bytes: format!("{text}\r\n").into_bytes(),
                },
                Some(("auth", user)) => EventKind::Authenticated {
                    server,
                    conn,
                    mechanism: "LOGIN".into(),
                    user: user.into(),
                    encrypted: true,
                    starttls_offered: false,
                },
                _ => EventKind::TlsStarted {
                    server,
                    conn,
                    version: "TLS 1.3".into(),
                    sni: Some("smtp.gmail.com".into()),
                    implicit: step == "tls-implicit",
                },
            };
            let at = Duration::from_millis(i as u64);
            events.push(crate::trace::Event { at, kind });
        }
        Trace { events }
    }

    const PLAIN: &str = "S: 220 netgrade.test ESMTP netgrade
        C: HELO alice
        S: 250 netgrade.test
        C: MAIL FROM:<alice@crepes.fr>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@hamburger.edu>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 End data with <CR><LF>.<CR><LF>
        C: EHLO is not a command in a message
        C: AUTH neither
        C: .
        S: 250 2.0.0 Ok: queued as 1.1
        C: QUIT
        S: 221 2.0.0 Bye";

    const EHLO_REPLY: &str = "S: 250-netgrade.test
        S: 250-8BITMIME
        S: 250-STARTTLS
        S: 250 HELP";

    /// `PLAIN` after its greeting, with EHLO, AUTH LOGIN and the addresses written loosely.
    fn encrypted_session(before: &str) -> String {
        let rest = PLAIN
            .split_once("C: HELO alice\n        S: 250 netgrade.test")
            .unwrap()
            .1;
        let rest = rest.replace(
            "MAIL FROM:<alice@crepes.fr>",
            "MAIL FROM: <alice@crepes.fr>",
        );
        let rest = rest.replace("RCPT TO:<bob@hamburger.edu>", "RCPT TO:bob@hamburger.edu");
        format!(
            "{before}
             C: EHLO alice
             {EHLO_REPLY}
             C: AUTH LOGIN
             S: 334 VXNlcm5hbWU6
             C: <user name \"alice\" in base64>
             S: 334 UGFzc3dvcmQ6
             C: <password hidden>
             auth alice
             S: 235 2.7.0 Authentication successful
             {rest}"
        )
    }

    /// Every probe of the web server lab, each ended as `end`: sent and
    /// answered when `answered`, else never sent.
    fn probe_trace(end: ExchangeEnd, answered: bool) -> Trace {
        let lab = crate::spec::load_builtin("webserver").unwrap().unwrap();
        let events = lab
            .probes
            .iter()
            .enumerate()
            .map(|(i, p)| crate::trace::Event {
                at: Duration::from_millis(i as u64),
                kind: EventKind::Exchange {
                    probe: p.id.value.clone(),
                    sent: if answered {
                        p.bytes("127.0.0.1:6789", 0)
                    } else {
                        Vec::new()
                    },
                    received: if answered {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi".to_vec()
                    } else {
                        Vec::new()
                    },
                    end: end.clone(),
                    elapsed: Duration::from_millis(1),
                },
            })
            .collect();
        Trace { events }
    }

    #[test]
    fn probe_endings_are_words_not_debug_text() {
        let lab = crate::spec::load_builtin("webserver").unwrap().unwrap();
        let refused = ExchangeEnd::ConnectFailed("connection refused".into());
        let text = full_view(&lab, &probe_trace(refused, false));
        assert!(
            text.contains("get-html: \"GET /HelloWorld.html HTTP/1.1\" (not sent) -> nothing (connect failed: connection refused)\n"),
            "{text}"
        );
        let cases = [
            (ExchangeEnd::Complete, "(complete)"),
            (ExchangeEnd::Closed, "(closed by the server)"),
            (ExchangeEnd::TimedOut, "(timed out)"),
            (ExchangeEnd::Reset, "(connection reset)"),
        ];
        let mut texts = vec![text];
        for (end, said) in cases {
            let text = full_view(&lab, &probe_trace(end, true));
            let line = format!(
                "get-missing: \"GET /missing.html HTTP/1.1\" -> 200 OK, 2 body bytes, 0 deviation(s) {said}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
            texts.push(text);
        }
        for text in texts {
            for debug in [
                "ConnectFailed",
                "(\"",
                "Complete",
                "Closed",
                "TimedOut",
                "Reset",
            ] {
                assert!(!text.contains(debug), "{debug} in {text}");
            }
        }
    }

    #[test]
    fn a_maildrop_lists_its_messages_in_words() {
        let lab = crate::spec::load_builtin("pop3-download-delete")
            .unwrap()
            .unwrap();
        let maildrop = |updated, deleted: Vec<u32>, remaining: Vec<u32>| {
            let kind = EventKind::Maildrop {
                server: lab.servers[0].name.clone(),
                conn: 1,
                updated,
                deleted,
                remaining,
            };
            let trace = Trace {
                events: vec![crate::trace::Event {
                    at: Duration::ZERO,
                    kind,
                }],
            };
            full_view(&lab, &trace)
        };
        let text = maildrop(true, vec![1, 2, 3], vec![]);
        assert!(
            text.contains("1 maildrop: updated; deleted: 1, 2, 3; remaining: none\n"),
            "{text}"
        );
        let text = maildrop(false, vec![], vec![1, 2]);
        assert!(
            text.contains("1 maildrop: not updated (no QUIT); deleted: none; remaining: 1, 2\n"),
            "{text}"
        );
    }

    #[test]
    fn the_full_view_shows_the_message_as_sent_up_to_the_dot() {
        let lab = crate::spec::load_builtin("smtp-client").unwrap().unwrap();
        let full = full_view(&lab, &smtp_trace(PLAIN));
        let message = "1 S: \"354 End data with <CR><LF>.<CR><LF>\\r\\n\"
1 C: \"EHLO <domain>\\r\\n\"
1 C: \"AUTH neither\\r\\n\"
1 C: \".\\r\\n\"
1 S: \"250 2.0.0 Ok: queued as <id>.1\\r\\n\"
";
        // (The lab's rules redact every line alike: this one looks like an EHLO.)
        assert!(full.contains(message), "{full}");
        assert!(!full.contains("(the message)"), "{full}");
        // A long message: its first lines, how much was left out, the dot.
        let body: String = (1..=MESSAGE_SHOWN + 7)
            .map(|i| format!("C: line {i:03}\n"))
            .collect();
        let long = PLAIN.replace("C: EHLO is not a command in a message", body.trim_end());
        let full = full_view(&lab, &smtp_trace(&long));
        let last = format!("1 C: \"line {MESSAGE_SHOWN:03}\\r\\n\"\n");
        let cut = "   … 8 more line(s) of the message, 84 bytes, not shown\n1 C: \".\\r\\n\"\n";
        assert!(full.contains(&format!("{last}{cut}")), "{full}");
        assert!(!full.contains(&format!("line {:03}", MESSAGE_SHOWN + 1)));
        // A message that never ends says so where the session ends.
        let unended = long.split("C: .").next().unwrap().to_string();
        let full = full_view(&lab, &smtp_trace(&unended));
        assert!(
            full.ends_with("   … 8 more line(s) of the message, 84 bytes, not shown\n"),
            "{full}"
        );
    }

    #[test]
    fn the_default_rules_keep_addresses_and_sequence_numbers_and_hide_clocks() {
        let lab = crate::spec::load_builtin("udp-pinger").unwrap().unwrap();
        let r = Redactor::new(&lab);
        for (text, shown) in [
            ("Ping 1 02:21:03", "Ping 1 <time>"),
            ("Ping 10 02:21:03.250612", "Ping 10 <time>"),
            ("Ping 1 1733150463.123", "Ping 1 <time>"),
            ("Ping 3 1733150463123", "Ping 3 <time>"),
            ("Ping 1 Mon Dec  2 02:21:03 2024", "Ping 1 <date>"),
            ("RTT: 0.000173315046312 s", "RTT: <num> s"),
            ("RTT = 0.130 s", "RTT = <num> s"),
            (
                "Reply from 127.0.0.1:12000: PING 4",
                "Reply from 127.0.0.1:12000: PING 4",
            ),
            ("sent from 127.0.0.1:54321", "sent from 127.0.0.1:<port>"),
            ("('127.0.0.1', 49152)", "('127.0.0.1', <port>)"),
            ("to 10.0.0.1 in 0.5 s", "to 10.0.0.1 in <num> s"),
            ("version 1.2.3.4.5", "version <num>.<num>.5"),
            ("id a1b2c3d1234567890", "id a1b2c3d1234567890"),
        ] {
            assert_eq!(r.apply(text), shown, "{text}");
        }
    }

    #[test]
    fn a_rule_replaces_an_address_whole_or_not_at_all() {
        let rule = |pattern: &str, replace: &str| Redactor {
            rules: vec![(Regex::new(pattern).unwrap(), replace.into())],
            raw: false,
        };
        let ip = rule(r"\d+\.\d+\.\d+\.\d+", "<ip>");
        assert_eq!(ip.apply("from 127.0.0.1:54321"), "from <ip>:54321");
        let num = rule(r"\d+\.\d+", "<num>");
        assert_eq!(
            num.apply("127.0.0.1 0.25 192.168.1.20"),
            "127.0.0.1 <num> 192.168.1.20"
        );
        assert_eq!(
            Redactor::raw().apply("127.0.0.1 02:21:03"),
            "127.0.0.1 02:21:03"
        );
    }

    #[test]
    fn every_built_in_lab_keeps_loopback_and_hides_the_clock() {
        for name in crate::spec::builtin_names() {
            let lab = crate::spec::load_builtin(name).unwrap().unwrap();
            let r = Redactor::new(&lab);
            let text = "\"at 02:21:03 (1733150463.5) from 127.0.0.1:54321 to 127.0.0.1:12000\"";
            assert_eq!(
                r.apply(text),
                "\"at <time> (<time>) from 127.0.0.1:<port> to 127.0.0.1:12000\"",
                "{name}"
            );
        }
    }

    #[test]
    fn the_raw_transcript_redacts_nothing_and_cuts_no_line() {
        let lab = crate::spec::load_builtin("udp-pinger").unwrap().unwrap();
        let long = format!("Ping 1 02:21:03 {}", "x".repeat(200));
        let event = |ms, kind| crate::trace::Event {
            at: Duration::from_millis(ms),
            kind,
        };
        let trace = Trace {
            events: vec![
                event(
                    1,
                    EventKind::Datagram {
                        server: lab.servers[0].name.clone(),
                        dir: Dir::In,
                        peer: "127.0.0.1:54321".parse().unwrap(),
                        index: 1,
                        data: long.clone().into_bytes(),
                    },
                ),
                event(
                    2,
                    EventKind::Output {
                        stream: Stream::Stdout,
                        line: "from 127.0.0.1:54321 RTT 0.130 at 1733150463.5\u{7}".into(),
                    },
                ),
            ],
        };
        let header = Header {
            submission: "s",
            seed: 1,
            command: None,
        };
        let raw = render_raw(&lab, &header, &trace, &[]);
        assert!(raw.contains(&format!("#1   -> \"{long}\"\n")), "{raw}");
        assert!(
            raw.contains("\nfrom 127.0.0.1:54321 RTT 0.130 at 1733150463.5\\u{7}\n"),
            "{raw}"
        );
        let normalized = render(&lab, &header, &trace, &[]);
        assert!(
            normalized.contains("#1   -> \"Ping 1 <time> xxx"),
            "{normalized}"
        );
        assert!(normalized.contains("xxx…\"\n"), "{normalized}");
        assert!(
            normalized.contains("\nfrom 127.0.0.1:<port> RTT <num> at <time>\\u{7}\n"),
            "{normalized}"
        );
    }

    #[test]
    fn a_cut_recording_says_so_in_the_transcript() {
        let lab = crate::spec::load_builtin("smtp-client").unwrap().unwrap();
        let mut trace = smtp_trace("S: 220 netgrade.test ESMTP netgrade");
        trace.events.push(crate::trace::Event {
            at: std::time::Duration::from_secs(3),
            kind: EventKind::RecordingCut {
                budget: crate::trace::Budget::Traffic,
                limit: 64 << 20,
                dropped: 12,
                dropped_bytes: 5000,
            },
        });
        let header = Header {
            submission: "s",
            seed: 1,
            command: None,
        };
        let text = render(&lab, &header, &trace, &[]);
        assert!(
            text.contains("recording cut at 64 MiB of traffic (12 events not recorded)"),
            "{text}"
        );
    }

    #[test]
    fn the_golden_view_leaves_out_tls_auth_ehlo_extensions_and_address_forms() {
        let lab = crate::spec::load_builtin("smtp-client").unwrap().unwrap();
        let golden = session(&lab, &smtp_trace(PLAIN));
        let starttls = encrypted_session(&format!(
            "S: 220 netgrade.test ESMTP netgrade
             C: EHLO alice
             {EHLO_REPLY}
             C: STARTTLS
             S: 220 2.0.0 Ready to start TLS
             tls"
        ));
        let implicit = encrypted_session("tls-implicit\nS: 220 netgrade.test ESMTP netgrade");
        for script in [&starttls, &implicit] {
            assert_eq!(session(&lab, &smtp_trace(script)), golden, "{script}");
        }
        assert!(
            golden.contains("1 C: \"HELO <domain>\\r\\n\"\n1 S: \"250 netgrade.test\\r\\n\"\n")
        );
        let message =
            "1 C: (the message)\n1 C: \".\\r\\n\"\n1 S: \"250 2.0.0 Ok: queued as <id>.1\\r\\n\"";
        assert!(golden.contains(message), "{golden}");
        // The full view shows all of it, the credentials as recorded.
        let full = session_view(
            &lab,
            &smtp_trace(&starttls),
            View::Full,
            &Redactor::new(&lab),
        );
        for line in [
            "1 C: \"STARTTLS\\r\\n\"",
            "1 tls: TLS 1.3, after STARTTLS, SNI \"smtp.gmail.com\"",
            "1 C: \"<password hidden>\\r\\n\"",
            "1 auth: LOGIN as \"alice\", under TLS",
            "1 S: \"250-STARTTLS\\r\\n\"",
            "1 C: \"MAIL FROM: <address>\\r\\n\"",
        ] {
            assert!(full.contains(line), "{line} in {full}");
        }
        // What the comparison must still see: a command missing, another added.
        let no_quit = PLAIN.replace("C: QUIT\n        S: 221 2.0.0 Bye", "");
        assert_ne!(session(&lab, &smtp_trace(&no_quit)), golden);
        let extra = PLAIN.replace("C: DATA", "C: NOOP\nS: 250 2.0.0 Ok\nC: DATA");
        assert_ne!(session(&lab, &smtp_trace(&extra)), golden);
    }
}
