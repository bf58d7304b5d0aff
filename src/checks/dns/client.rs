//! Checks of the `dns-client` lab: the student's client builds a query by
//! hand, sends it to the lab's name server and prints the answer.
//!
//! The queries are judged octet by octet from the server's record of them
//! ([`EventKind::DnsMessage`]); the answers the client printed are judged
//! against the responses the server sent, which these checks read again
//! themselves ([`crate::dns_wire`]) to know where each name and each pointer lay.
//!
//! One fault is charged once. Each answer check judges its own case and
//! says "not judged" (skip) when that case gave it nothing to judge: no
//! query reached the server, or the server could not answer the query as it
//! was sent (`query-format` says why). `prints-answers` judges the answers
//! that came whole and undamaged (the faulted cases belong to
//! `retransmits`, `ignores-wrong-id` and `tcp-fallback`); in a CNAME chain
//! it judges the names printed with the addresses, and `cname` the chain.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::checks::{Ctx, Verdict, secs};
use crate::dns_wire::{self as wire, Data, Message, Record, hex_max};
use crate::outcome::ExitKind;
use crate::spec::{CheckSpec, Dur, Lab, ServerKind};
use crate::trace::{Dir, EventKind, Stream, Trace, Transport};

/// The shortest wait before a retransmission `retransmits` accepts by default.
pub const DEFAULT_MIN_RETRY: Dur = Dur(Duration::from_millis(500));
/// The longest.
pub const DEFAULT_MAX_RETRY: Dur = Dur(Duration::from_secs(6));
/// Lines of output shown as evidence.
const SHOWN_LINES: usize = 8;
/// Records of an answer shown as evidence.
const SHOWN_RECORDS: usize = 6;

/// A message to or from one of the lab's DNS servers.
struct Msg<'a> {
    at: Duration,
    dir: Dir,
    transport: Transport,
    index: u32,
    raw: &'a [u8],
    len: usize,
    fault: Option<&'a str>,
}

impl Msg<'_> {
    /// The message read whole, if it reads.
    fn parsed(&self) -> Option<Message> {
        (self.raw.len() == self.len)
            .then(|| wire::parse_whole(self.raw))
            .flatten()
    }

    /// Its first question: the name (plain) and type, if it reads.
    fn question(&self) -> Option<(String, u16)> {
        if self.raw.len() < 12 || u16::from_be_bytes([self.raw[4], self.raw[5]]) == 0 {
            return None;
        }
        let name = wire::read_name(self.raw, 12, "").ok()?;
        let t = self.raw.get(name.end..name.end + 2)?;
        Some((name.plain(), u16::from_be_bytes([t[0], t[1]])))
    }

    /// `UDP query 2` / `TCP query 1`.
    fn label(&self) -> String {
        let what = match self.dir {
            Dir::In => "query",
            Dir::Out => "response",
        };
        format!("{} {what} {}", self.transport.name(), self.index)
    }
}

/// The names of the lab's DNS servers.
fn servers(lab: &Lab) -> Vec<&str> {
    lab.servers
        .iter()
        .filter(|s| s.kind.value == ServerKind::Dns)
        .map(|s| s.name.as_str())
        .collect()
}

/// Every message to or from the lab's DNS servers, in order.
fn messages<'a>(lab: &Lab, trace: &'a Trace) -> Vec<Msg<'a>> {
    let names = servers(lab);
    trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::DnsMessage {
                server,
                dir,
                transport,
                index,
                raw,
                len,
                fault,
                ..
            } if names.contains(&server.as_str()) => Some(Msg {
                at: e.at,
                dir: *dir,
                transport: *transport,
                index: *index,
                raw,
                len: *len,
                fault: fault.as_deref(),
            }),
            _ => None,
        })
        .collect()
}

/// What the program was asked to look up: the name and type among its
/// arguments (`NAME [TYPE] [SERVER]`; type A when none is given).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Asked {
    name: Option<String>,
    qtype: u16,
}

impl Asked {
    fn type_name(&self) -> String {
        wire::type_name(self.qtype)
    }
}

fn asked(lab: &Lab) -> Asked {
    let args = &lab.program.args;
    let plain = |a: &&String| !a.contains('{') && !a.starts_with('-');
    let qtype = args
        .iter()
        .filter(plain)
        .find_map(|a| wire::type_number(a))
        .unwrap_or(1);
    let name = args
        .iter()
        .filter(plain)
        .find(|a| {
            wire::type_number(a).is_none()
                && a.chars().any(|c| c.is_ascii_alphabetic())
                && a.parse::<std::net::IpAddr>().is_err()
                && !a.contains(':')
        })
        .map(|a| wire::plain(a));
    Asked { name, qtype }
}

/// The address of the lab's first DNS server, for messages.
fn server_addr(lab: &Lab) -> String {
    lab.servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Dns)
        .map_or_else(
            || "the lab's server".into(),
            |s| format!("{}:{}", s.host, s.port),
        )
}

/// How the program ended, when not with status 0 (`exited with status 1:
/// IndexError: list index out of range`).
fn bad_ending(trace: &Trace) -> Option<String> {
    let (_, exit) = trace.exit()?;
    if matches!(exit, ExitKind::Exited { code: 0 }) {
        return None;
    }
    let last = trace
        .lines(Stream::Stderr)
        .into_iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    Some(format!("{}{last}", exit.describe()))
}

/// Whether the program ran into the time limit.
fn timed_out(trace: &Trace) -> bool {
    matches!(trace.exit(), Some((_, ExitKind::TimedOut { .. })))
}

/// Output lines shown as evidence.
fn shown_output(trace: &Trace) -> Vec<String> {
    let out = trace.lines(Stream::Stdout);
    if out.is_empty() {
        return vec!["stdout: (nothing)".into()];
    }
    let mut lines: Vec<String> = out
        .iter()
        .take(SHOWN_LINES)
        .map(|l| format!("stdout: {l}"))
        .collect();
    if out.len() > SHOWN_LINES {
        lines.push(format!("stdout: … {} more lines", out.len() - SHOWN_LINES));
    }
    lines
}

/// The answer's records shown as evidence.
fn shown_records(records: &[Record]) -> Vec<String> {
    let mut lines: Vec<String> = records
        .iter()
        .take(SHOWN_RECORDS)
        .map(|r| format!("answer: {}", r.show()))
        .collect();
    if records.len() > SHOWN_RECORDS {
        lines.push(format!(
            "answer: … {} more records",
            records.len() - SHOWN_RECORDS
        ));
    }
    lines
}

// ---------------------------------------------------------------------------
// Reading the output: addresses, names and numbers as whole tokens.

/// Whether `needle` occurs in `text` as a whole token: not preceded by a
/// character of `part` or a dot, not followed by one of `part`, nor by a
/// dot and one of `part` (a final dot may end a sentence or a name).
fn whole(text: &str, needle: &str, part: fn(u8) -> bool) -> bool {
    if needle.is_empty() {
        return false;
    }
    let b = text.as_bytes();
    text.match_indices(needle).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| b[j]);
        let after = b.get(i + needle.len()).copied();
        let after2 = b.get(i + needle.len() + 1).copied();
        let joined_before = before.is_some_and(|c| part(c) || c == b'.');
        let joined_after =
            after.is_some_and(part) || (after == Some(b'.') && after2.is_some_and(part));
        !(joined_before || joined_after)
    })
}

/// Whether `line` shows `addr` as a whole address (not inside `10.0.0.10`).
fn has_addr(line: &str, addr: Ipv4Addr) -> bool {
    whole(line, &addr.to_string(), |c| c.is_ascii_digit())
}

/// Whether `line` shows the name `plain` (lower case, no final dot) as a
/// whole name, with or without its final dot, in any letter case.
fn has_name(line: &str, plain: &str) -> bool {
    whole(&line.to_ascii_lowercase(), plain, |c| {
        c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
    })
}

/// The names `line` shows: words with a letter and a dot inside or at
/// their end that are not addresses (`www.example.com`, `hop.example.net.`,
/// `com.`), lower case, without their final dot.
fn names_in(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_whitespace() || ",;()[]{}<>\"'=|".contains(c))
        .map(|w| w.trim_end_matches(':').trim_start_matches(['.', ':']))
        .filter(|w| {
            let bare = w.trim_end_matches('.');
            (bare.contains('.') || w.ends_with('.'))
                && bare.chars().any(|c| c.is_ascii_alphabetic())
                && bare.parse::<std::net::IpAddr>().is_err()
        })
        .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

/// Whether `line` shows the number `n` as a whole number (not inside
/// `10.0.0.25` or `1200`).
fn has_number(line: &str, n: u64) -> bool {
    whole(line, &n.to_string(), |c| c.is_ascii_digit())
}

// ---------------------------------------------------------------------------
// What there is to judge in a case.

/// The answer a case's question got, sent whole and undamaged.
struct Answer {
    msg: Message,
    raw: Vec<u8>,
}

/// Why a check has nothing to judge in this case, or `None` when it has:
/// no query reached the server.
fn no_query(lab: &Lab, trace: &Trace) -> Option<Verdict> {
    let msgs = messages(lab, trace);
    msgs.iter().all(|m| m.dir != Dir::In).then(|| {
        Verdict::skip(format!(
            "not judged: no query reached the lab's DNS server ({}) in this case (see `query-format`)",
            server_addr(lab)
        ))
    })
}

/// The last answer sent whole (not cut to TC, not damaged on purpose) to
/// the question the case asks; or, as a skip, why there is none to judge.
fn answer(lab: &Lab, trace: &Trace) -> Result<Answer, Verdict> {
    if let Some(v) = no_query(lab, trace) {
        return Err(v);
    }
    let msgs = messages(lab, trace);
    let want = asked(lab);
    let queries: Vec<&Msg> = msgs.iter().filter(|m| m.dir == Dir::In).collect();
    let name = want
        .name
        .clone()
        .or_else(|| queries.iter().find_map(|q| q.question()).map(|q| q.0));
    let Some(name) = name else {
        return Err(Verdict::skip(
            "not judged: no query's question could be read (see `query-format`)",
        ));
    };
    let asks = |q: &(String, u16)| q.0 == name && q.1 == want.qtype;
    if !queries
        .iter()
        .any(|q| q.question().is_some_and(|x| asks(&x)))
    {
        let sent: Vec<String> = queries
            .iter()
            .filter_map(|q| q.question())
            .map(|(n, t)| format!("{n} {}", wire::type_name(t)))
            .collect();
        let what = if sent.is_empty() {
            "no query's question could be read".to_string()
        } else {
            format!("the queries asked for {}", tally(&sent))
        };
        return Err(Verdict::skip(format!(
            "not judged: this case asks for {name} {}, and {what} (see `query-format`)",
            want.type_name()
        )));
    }
    let responses: Vec<(&Msg, Message)> = msgs
        .iter()
        .filter(|m| m.dir == Dir::Out && m.fault.is_none())
        .filter_map(|m| Some((m, m.parsed()?)))
        .filter(|(_, p)| {
            p.questions
                .first()
                .is_some_and(|q| asks(&(q.name.clone(), q.qtype)))
        })
        .collect();
    if let Some((m, p)) = responses
        .iter()
        .rev()
        .find(|(_, p)| !p.header.tc() && matches!(p.header.rcode(), 0 | 3))
    {
        return Ok(Answer {
            msg: p.clone(),
            raw: m.raw.to_vec(),
        });
    }
    if let Some((_, p)) = responses
        .iter()
        .find(|(_, p)| !matches!(p.header.rcode(), 0 | 3))
    {
        return Err(Verdict::skip(format!(
            "not judged: the server could not answer the query as it was sent: it answered {} (see `query-format`)",
            rcode_text(p.header.rcode())
        )));
    }
    if responses.iter().any(|(_, p)| p.header.tc()) {
        return Err(Verdict::skip(
            "not judged: the only answer was truncated (TC), and the program did not fetch it whole over TCP (see `tcp-fallback`)",
        ));
    }
    Err(Verdict::skip(
        "not judged: the server sent no answer to this case's question",
    ))
}

/// An RCODE's mnemonic with its number: `REFUSED (5)`.
fn rcode_text(rcode: u8) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => "RCODE",
    };
    format!("{name} ({rcode})")
}

/// Whether this case's DNS server misbehaves on purpose.
fn has_faults(lab: &Lab) -> bool {
    lab.servers
        .iter()
        .filter(|s| s.kind.value == ServerKind::Dns)
        .filter_map(|s| s.faults.as_ref())
        .any(|f| {
            f.drop_first.unwrap_or(0) > 0
                || !f.wrong_id.is_empty()
                || !f.truncated.is_empty()
                || !f.malformed.is_empty()
        })
}

// ---------------------------------------------------------------------------
// query-format

/// `query-format`: every query has a valid header, one question, RD set,
/// the name as labels, and the type and class asked.
pub fn query_format(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let msgs = messages(ctx.lab, ctx.trace);
    let queries: Vec<&Msg> = msgs.iter().filter(|m| m.dir == Dir::In).collect();
    if queries.is_empty() {
        let why = match bad_ending(ctx.trace) {
            Some(end) => format!("the program {end}"),
            None => format!(
                "send the query over UDP to the server given as the last argument, port 53 ({})",
                server_addr(ctx.lab)
            ),
        };
        return Verdict::fail(format!(
            "no query reached the lab's DNS server ({}): {why}",
            server_addr(ctx.lab)
        ))
        .with_evidence(shown_output(ctx.trace));
    }
    let want = asked(ctx.lab);
    let mut faulty: Vec<(&Msg, Vec<String>)> = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let problems = query_problems(q, &want, i == 0);
        if !problems.is_empty() {
            faulty.push((q, problems));
        }
    }
    let Some((first, problems)) = faulty.first() else {
        return Verdict::pass();
    };
    let mut evidence = vec![format!(
        "{} ({} bytes): {}",
        first.label(),
        first.len,
        hex_max(first.raw, 64)
    )];
    if let Some(name) = &want.name
        && want.qtype != 0
    {
        evidence.push(format!(
            "expected: xx xx 01 00 00 01 00 00 00 00 00 00 {} {}",
            hex_max(&wire::encoded(name), 64),
            hex_max(&[(want.qtype >> 8) as u8, want.qtype as u8, 0, 1], 4)
        ));
    }
    for (q, p) in faulty.iter().skip(1).take(3) {
        evidence.push(format!("also {}: {}", q.label(), p.join("; ")));
    }
    Verdict::fail(format!("{}: {}", first.label(), problems.join("; "))).with_evidence(evidence)
}

/// What is wrong with query `q`, each deviation with its byte offset and
/// its octets. `first`: the case's first query, which must ask the case's
/// name (later ones may follow a CNAME).
fn query_problems(q: &Msg, want: &Asked, first: bool) -> Vec<String> {
    let raw = q.raw;
    let mut out = Vec::new();
    if q.len < 12 {
        return vec![format!(
            "the query is {} bytes long, shorter than the 12-byte header ({})",
            q.len,
            hex_max(raw, 12)
        )];
    }
    let word = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    let (b2, b3) = (raw[2], raw[3]);
    if b2 == 0x00 && b3 == 0x01 {
        out.push(
            "bytes 2–3 (flags) are 00 01: the flags 0x0100 were packed little-endian, so RD (byte 2) is not set and byte 3 says RCODE 1; pack the header in network byte order, `struct.pack('!HHHHHH', id, 0x0100, 1, 0, 0, 0)`".to_string(),
        );
    } else {
        let mut wrong = Vec::new();
        if b2 & 0x80 != 0 {
            wrong.push("QR is set (that marks a response)".to_string());
        }
        if (b2 >> 3) & 0xF != 0 {
            wrong.push(format!(
                "OPCODE is {} (a standard query is 0)",
                (b2 >> 3) & 0xF
            ));
        }
        if b2 & 0x04 != 0 {
            wrong.push("AA is set (only a response says it is authoritative)".into());
        }
        if b2 & 0x02 != 0 {
            wrong.push("TC is set (only a response is truncated)".into());
        }
        if b2 & 0x01 == 0 {
            wrong.push("RD is not set".into());
        }
        if !wrong.is_empty() {
            out.push(format!(
                "byte 2 (flags) is 0x{b2:02x}: {}; send 0x01 in byte 2 (flags 0x0100: a standard query, recursion desired)",
                wrong.join(", ")
            ));
        }
        let mut wrong = Vec::new();
        if b3 & 0x80 != 0 {
            wrong.push("RA is set (only a server says whether recursion is available)");
        }
        if b3 & 0x40 != 0 {
            wrong.push("the reserved Z bit is set");
        }
        if b3 & 0x0F != 0 {
            wrong.push("RCODE is not 0");
        }
        if !wrong.is_empty() {
            out.push(format!(
                "byte 3 (flags) is 0x{b3:02x}: {}; send 0x00 in byte 3",
                wrong.join(", ")
            ));
        }
    }
    match word(4) {
        1 => {}
        0x0100 => out.push(
            "bytes 4–5 (QDCOUNT) are 01 00: 256 questions, the count 1 packed little-endian; send 00 01 (`!H`)".into(),
        ),
        0 => out.push(
            "bytes 4–5 (QDCOUNT) are 00 00: the query announces no question; send 00 01".into(),
        ),
        n => out.push(format!(
            "bytes 4–5 (QDCOUNT) are {}: {n} questions; send exactly one, 00 01",
            hex_max(&raw[4..6], 2)
        )),
    }
    for (at, field) in [(6, "ANCOUNT"), (8, "NSCOUNT")] {
        if word(at) != 0 {
            out.push(format!(
                "bytes {at}–{} ({field}) are {}: a query carries no such records; send 00 00",
                at + 1,
                hex_max(&raw[at..at + 2], 2)
            ));
        }
    }
    let arcount = word(10);
    if arcount > 1 {
        out.push(format!(
            "bytes 10–11 (ARCOUNT) are {}: send 00 00 (or 00 01 with an EDNS OPT record)",
            hex_max(&raw[10..12], 2)
        ));
    }
    let Some(end) = question_problems(raw, want, first, &mut out) else {
        return out;
    };
    // What may follow the question: one OPT record (EDNS), if announced.
    let rest = &raw[end.min(raw.len())..];
    if !rest.is_empty() {
        let opt = arcount == 1 && rest.len() >= 11 && rest[0] == 0 && rest[1..3] == [0, 41];
        if !opt {
            out.push(format!(
                "{} bytes follow the question (from byte {end}: {}): a query ends after QCLASS{}",
                rest.len(),
                hex_max(rest, 12),
                if arcount == 1 {
                    " (ARCOUNT 1 announces an EDNS OPT record, and this is none)"
                } else {
                    ""
                }
            ));
        }
    } else if arcount == 1 {
        out.push(
            "bytes 10–11 (ARCOUNT) are 00 01, but no record follows the question; send 00 00"
                .into(),
        );
    }
    out
}

/// Checks the question at byte 12; returns where it ends when it reads.
fn question_problems(
    raw: &[u8],
    want: &Asked,
    first: bool,
    out: &mut Vec<String>,
) -> Option<usize> {
    let mut pos = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let Some(&len) = raw.get(pos) else {
            out.push(format!(
                "the name from byte 12 never ends: its labels run past the end of the query at byte {}; end the name with a zero octet",
                raw.len()
            ));
            return None;
        };
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xC0 == 0xC0 {
            out.push(format!(
                "byte {pos} is 0x{len:02x}: a compression pointer; a query writes its name out in labels"
            ));
            return None;
        }
        if len > 63 {
            let text_end = raw[12..]
                .iter()
                .position(|&b| b == 0)
                .map_or(raw.len(), |p| 12 + p);
            let text = &raw[12..text_end];
            let printable = !text.is_empty() && text.iter().all(|b| b.is_ascii_graphic());
            if pos == 12 && printable {
                let shown = String::from_utf8_lossy(text);
                out.push(format!(
                    "byte 12 is 0x{len:02x} ('{}'), not a label length: the name is sent as the text \"{shown}\"; send it as labels, each part preceded by its length and a zero octet at the end: {}",
                    len as char,
                    hex_max(&wire::encoded(&shown), 40)
                ));
            } else {
                out.push(format!(
                    "byte {pos} is 0x{len:02x}, which cannot be a label length (at most 63): the name's labels are miscounted"
                ));
            }
            return None;
        }
        let Some(label) = raw.get(pos + 1..pos + 1 + usize::from(len)) else {
            out.push(format!(
                "the label at byte {pos} announces {len} octets, but the query ends at byte {}",
                raw.len()
            ));
            return None;
        };
        if label.contains(&b'.') {
            let shown = String::from_utf8_lossy(label);
            out.push(format!(
                "the label at byte {pos} is \"{shown}\" ({len} octets), dots and all: split the name at its dots, one label per part: {}",
                hex_max(&wire::encoded(&shown), 40)
            ));
        }
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += 1 + usize::from(len);
    }
    let name = labels.join(".");
    let Some(fixed) = raw.get(pos..pos + 4) else {
        out.push(format!(
            "the query ends at byte {} after the name: QTYPE and QCLASS (two octets each) are missing",
            raw.len()
        ));
        return None;
    };
    let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    let names_match = want.name.as_deref().is_none_or(|w| w == name);
    if first
        && !names_match
        && let Some(w) = &want.name
    {
        out.push(format!(
            "the question (from byte 12) asks for \"{name}\", not \"{w}\", the name given on the command line"
        ));
    }
    if names_match && qtype != want.qtype {
        let how = if qtype.swap_bytes() == want.qtype {
            format!(
                "type {} ({}) packed little-endian, which reads as type {qtype}",
                want.type_name(),
                want.qtype
            )
        } else {
            format!(
                "type {} ({qtype}), but the program was asked for {}",
                wire::type_name(qtype),
                want.type_name()
            )
        };
        out.push(format!(
            "bytes {pos}–{} (QTYPE) are {}: {how}; send {}",
            pos + 1,
            hex_max(&fixed[..2], 2),
            hex_max(&want.qtype.to_be_bytes(), 2)
        ));
    }
    if qclass != 1 {
        let how = if qclass == 0x0100 {
            "IN (1) packed little-endian, which reads as class 256".to_string()
        } else {
            format!("class {qclass}")
        };
        out.push(format!(
            "bytes {}–{} (QCLASS) are {}: {how}; the Internet class IN is 00 01",
            pos + 2,
            pos + 3,
            hex_max(&fixed[2..], 2)
        ));
    }
    Some(pos + 4)
}

// ---------------------------------------------------------------------------
// random-id

/// One lookup of a run: a question, and the ID of its first query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// `www.example.com A`.
    pub question: String,
    /// The ID of the first query that asked it.
    pub id: u16,
}

/// The lookups of a run, in order: each question asked (over UDP or TCP)
/// with the ID of its first query. Retransmissions and a fall back to TCP
/// belong to the lookup they repeat (they may keep its ID).
pub fn lookups(lab: &Lab, trace: &Trace) -> Vec<Lookup> {
    let mut out: Vec<Lookup> = Vec::new();
    for m in messages(lab, trace) {
        if m.dir != Dir::In || m.raw.len() < 12 {
            continue;
        }
        let question = m.question().map_or_else(
            || "(a question that does not read)".to_string(),
            |(n, t)| format!("{n} {}", wire::type_name(t)),
        );
        if !out.iter().any(|l| l.question == question) {
            out.push(Lookup {
                question,
                id: u16::from_be_bytes([m.raw[0], m.raw[1]]),
            });
        }
    }
    out
}

/// `random-id`: the ID of each lookup is drawn at random: not one fixed
/// value, not a count from 0 or 1. Judged over every lookup of the run
/// (`random_id`), or of every case of a lab of cases ([`judge_ids`]).
pub fn random_id(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    judge_ids(&[(String::new(), lookups(ctx.lab, ctx.trace))])
}

/// The verdict of `random-id` over the lookups of several runs (each case
/// one run, named; a lab without cases one run, unnamed). The chance that
/// IDs drawn at random fail is below 2^-40 with the seven lookups of the
/// `dns-client` lab.
pub fn judge_ids(runs: &[(String, Vec<Lookup>)]) -> Verdict {
    let all: Vec<(&str, &Lookup)> = runs
        .iter()
        .flat_map(|(case, ls)| ls.iter().map(move |l| (case.as_str(), l)))
        .collect();
    let shown = |(case, l): &(&str, &Lookup)| {
        let within = if case.is_empty() {
            String::new()
        } else {
            format!("case `{case}`: ")
        };
        format!("{within}{}: ID {} (0x{:04x})", l.question, l.id, l.id)
    };
    let evidence: Vec<String> = all.iter().take(10).map(shown).collect();
    if all.is_empty() {
        return Verdict::skip(
            "not judged: no query reached the lab's DNS server (see `query-format`)",
        );
    }
    if all.len() < 2 {
        return Verdict::skip(
            "not judged: the program looked up one name only, so there are no two IDs to compare",
        );
    }
    let ids: Vec<u16> = all.iter().map(|(_, l)| l.id).collect();
    if ids.iter().all(|&i| i == ids[0]) {
        return Verdict::fail(format!(
            "every lookup carried the same ID, {} (0x{:04x}): a fixed ID lets anyone who guesses it answer in the server's place (and a process ID is no better: in a fresh process namespace it is always the same); draw each query's ID at random, e.g. `random.randint(0, 65535)`",
            ids[0], ids[0]
        ))
        .with_evidence(evidence);
    }
    if ids.len() >= 3 && ids.iter().all(|&i| i < 256) {
        return Verdict::fail(format!(
            "the IDs are small numbers ({}): a count from 0 or 1 is as easy to guess as a fixed ID; draw each query's ID at random over all 16 bits, e.g. `random.randint(0, 65535)`",
            first_ids(&ids)
        ))
        .with_evidence(evidence);
    }
    for (case, ls) in runs {
        let ids: Vec<u16> = ls.iter().map(|l| l.id).collect();
        if ids.len() >= 3 && ids.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) {
            let within = if case.is_empty() {
                String::new()
            } else {
                format!(" in case `{case}`")
            };
            return Verdict::fail(format!(
                "the IDs{within} count up by one ({}): the next one is easy to guess; draw each query's ID at random",
                first_ids(&ids)
            ))
            .with_evidence(evidence);
        }
    }
    Verdict::pass()
}

// ---------------------------------------------------------------------------
// prints-answers

/// `prints-answers`: the A records of an answer are printed, each address
/// on a line with its record's name, correctly decoded (names reached
/// through compression pointers too; the TTL, if shown, as 32 bits).
pub fn prints_answers(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(v) = no_query(ctx.lab, ctx.trace) {
        return v;
    }
    if has_faults(ctx.lab) {
        return Verdict::skip(
            "not judged in this case: its server misbehaves on purpose (`retransmits`, `ignores-wrong-id` judge it)",
        );
    }
    let msgs = messages(ctx.lab, ctx.trace);
    if msgs
        .iter()
        .any(|m| m.dir == Dir::Out && m.parsed().is_some_and(|p| p.header.tc()))
    {
        return Verdict::skip(
            "not judged in this case: its answer does not fit UDP (`tcp-fallback` judges it)",
        );
    }
    let ans = match answer(ctx.lab, ctx.trace) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let records: Vec<&Record> = ans
        .msg
        .answers
        .iter()
        .filter(|r| matches!(r.data, Data::A(_)))
        .collect();
    if records.is_empty() {
        return Verdict::skip("not judged in this case: its answer has no A record");
    }
    // In a chain, the addresses belong to `cname`; the names printed with
    // them are judged here.
    let chain = ans.msg.answers.iter().any(|r| r.rtype == 5);
    let out = ctx.trace.lines(Stream::Stdout);
    let mut evidence = shown_records(&ans.msg.answers);
    evidence.extend(shown_output(ctx.trace));
    let mut missing = Vec::new();
    for r in &records {
        let Data::A(addr) = r.data else { continue };
        let owner = r.owner.plain();
        let lines: Vec<&str> = out.iter().copied().filter(|l| has_addr(l, addr)).collect();
        if lines.is_empty() {
            if !chain {
                missing.push(r);
            }
            continue;
        }
        let named: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| has_name(l, &owner))
            .collect();
        if named.is_empty() {
            let printed = names_in(lines[0]);
            let Some(shown) = printed.first() else {
                return Verdict::fail(format!(
                    "the address {addr} is printed without its record's name ({}): print each record on a line with its name, e.g. `{} {} IN A {addr}`",
                    r.owner.text, r.owner.text, r.ttl
                ))
                .with_evidence(evidence);
            };
            return Verdict::fail(wrong_name(&ans.raw, r, shown)).with_evidence(evidence);
        }
        if r.ttl > 0xFFFF
            && !named.iter().any(|l| has_number(l, u64::from(r.ttl)))
            && named
                .iter()
                .any(|l| has_number(l, u64::from(r.ttl & 0xFFFF)))
        {
            return Verdict::fail(format!(
                "the TTL of {owner} is printed as {}, the low 16 bits of its TTL {}: the TTL is a 32-bit field (struct format `I`, four octets after the type and class)",
                r.ttl & 0xFFFF,
                r.ttl
            ))
            .with_evidence(evidence);
        }
    }
    if let Some(first) = missing.first() {
        return Verdict::fail(format!(
            "{} of the answer's {} A records {} not printed, the first: {}; print every record of the answer section (ANCOUNT in bytes 6–7 says how many)",
            missing.len(),
            records.len(),
            if missing.len() == 1 { "is" } else { "are" },
            first.show()
        ))
        .with_evidence(evidence);
    }
    Verdict::pass()
}

/// Why the record `r` of the response `raw` was printed with the name
/// `shown`: the pointer its name was reached through, and what the usual
/// mistakes in following it would have read.
fn wrong_name(raw: &[u8], r: &Record, shown: &str) -> String {
    let owner = r.owner.plain();
    let mut msg = format!(
        "a record's name is printed as `{shown}`, but the record {} is named `{owner}`",
        r.show()
    );
    let Some(&(at, target)) = r.owner.pointers.first() else {
        return msg + ": read each name label by label, as the response writes it";
    };
    let (hi, lo) = (raw[at], raw[at + 1]);
    msg.push_str(&format!(
        ", reached through the compression pointer at byte {at} ({hi:02x} {lo:02x}) to byte {target}: a pointer's offset is its low 14 bits, ((0x{hi:02x} & 0x3F) << 8) | 0x{lo:02x} = {target}, counted from the start of the message"
    ));
    let read_at = |o: usize| wire::read_name(raw, o, "").ok().map(|n| n.plain());
    if target > 255 && read_at(usize::from(lo)).as_deref() == Some(shown) {
        msg.push_str(&format!(
            "; `{shown}` is what byte {lo} holds: the pointer was read from its second octet alone, which loses offsets beyond 255"
        ));
    } else if read_at(target + 12).as_deref() == Some(shown) {
        msg.push_str(&format!(
            "; `{shown}` is what byte {} holds: the offset was counted from the question (byte 12), not from the start of the message",
            target + 12
        ));
    }
    msg
}

// ---------------------------------------------------------------------------
// mx, cname

/// `mx`: each MX record of the answer is printed with its preference and
/// its exchange, on one line.
pub fn mx(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let ans = match answer(ctx.lab, ctx.trace) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let records: Vec<(&Record, u16, String)> = ans
        .msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            Data::Mx(p, n) => Some((r, *p, n.plain())),
            _ => None,
        })
        .collect();
    if records.is_empty() {
        return Verdict::skip("not judged in this case: its answer has no MX record");
    }
    let out = ctx.trace.lines(Stream::Stdout);
    let mut evidence = shown_records(&ans.msg.answers);
    evidence.extend(shown_output(ctx.trace));
    for (r, pref, exchange) in &records {
        let lines: Vec<&str> = out
            .iter()
            .copied()
            .filter(|l| has_name(l, exchange))
            .collect();
        if lines.is_empty() {
            let ending = bad_ending(ctx.trace)
                .map(|e| format!(" (the program {e})"))
                .unwrap_or_default();
            return Verdict::fail(format!(
                "the mail exchanger {exchange} (MX {pref}) is not printed{ending}: an MX record's data is a 16-bit preference, then the exchange's name, which may end in a compression pointer; print both, e.g. `{} {} IN MX {pref} {}`",
                r.owner.text, r.ttl, exchange
            ))
            .with_evidence(evidence);
        }
        if !lines.iter().any(|l| has_number(l, u64::from(*pref))) {
            return Verdict::fail(format!(
                "the mail exchanger {exchange} is printed without its preference {pref}: the first two octets of an MX record's data are the preference (`struct.unpack('!H', …)`), print it with the name"
            ))
            .with_evidence(evidence);
        }
    }
    Verdict::pass()
}

/// `cname`: each link of a CNAME chain is printed (the alias and its
/// target on one line), and the addresses the chain leads to.
pub fn cname(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let ans = match answer(ctx.lab, ctx.trace) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let links: Vec<(&Record, String, String)> = ans
        .msg
        .answers
        .iter()
        .filter(|r| r.rtype == 5)
        .filter_map(|r| match &r.data {
            Data::Name(n) => Some((r, r.owner.plain(), n.plain())),
            _ => None,
        })
        .collect();
    if links.is_empty() {
        return Verdict::skip("not judged in this case: its answer has no CNAME record");
    }
    let out = ctx.trace.lines(Stream::Stdout);
    let mut evidence = shown_records(&ans.msg.answers);
    evidence.extend(shown_output(ctx.trace));
    let ending = bad_ending(ctx.trace)
        .map(|e| format!(" (the program {e})"))
        .unwrap_or_default();
    let printed = |a: &str, b: &str| out.iter().any(|l| has_name(l, a) && has_name(l, b));
    let missing: Vec<&(&Record, String, String)> =
        links.iter().filter(|(_, a, b)| !printed(a, b)).collect();
    if let Some((r, alias, target)) = missing.first() {
        let none = missing.len() == links.len();
        let also = if none && out.iter().any(|l| !names_in(l).is_empty()) {
            " (no link of the chain is printed: records of a type other than A are skipped?)"
        } else {
            ""
        };
        return Verdict::fail(format!(
            "{} of the chain's {} CNAME records {} not printed, the first: {alias} → {target}{also}{ending}: print each CNAME with its name and its target, e.g. `{} {} IN CNAME {}`; a CNAME's data is a name, read like any other (it may end in a compression pointer)",
            missing.len(),
            links.len(),
            if missing.len() == 1 { "is" } else { "are" },
            r.owner.text,
            r.ttl,
            target
        ))
        .with_evidence(evidence);
    }
    let addrs = ans.msg.addresses();
    let lost: Vec<String> = addrs
        .iter()
        .filter(|a| !out.iter().any(|l| has_addr(l, **a)))
        .map(Ipv4Addr::to_string)
        .collect();
    if !lost.is_empty() {
        return Verdict::fail(format!(
            "the chain is printed, but not the {} address{} it leads to ({}){ending}: the A records follow the CNAME records in the same answer section",
            lost.len(),
            if lost.len() == 1 { "" } else { "es" },
            lost.join(", ")
        ))
        .with_evidence(evidence);
    }
    Verdict::pass()
}

// ---------------------------------------------------------------------------
// nxdomain

/// `nxdomain`: an answer with RCODE 3 is reported as a name that does not
/// exist, and the program does not crash on it.
pub fn nxdomain(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let ans = match answer(ctx.lab, ctx.trace) {
        Ok(a) => a,
        Err(v) => return v,
    };
    if ans.msg.header.rcode() != 3 {
        return Verdict::skip("not judged in this case: the name exists");
    }
    let name = ans
        .msg
        .questions
        .first()
        .map_or_else(String::new, |q| q.name.clone());
    let stderr = ctx.trace.lines(Stream::Stderr);
    let mut evidence = shown_output(ctx.trace);
    evidence.extend(
        stderr
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|l| format!("stderr: {l}")),
    );
    let crashed = stderr
        .iter()
        .any(|l| l.contains("Traceback (most recent call last)") || l.contains("panicked at"))
        || matches!(
            ctx.trace.exit(),
            Some((_, ExitKind::Signaled { .. } | ExitKind::TimedOut { .. }))
        );
    if crashed {
        let end = bad_ending(ctx.trace).unwrap_or_else(|| "raised an exception".into());
        return Verdict::fail(format!(
            "the server answered NXDOMAIN for {name}, and the program {end}: such an answer has no records (ANCOUNT 0); read the RCODE, the low 4 bits of byte 3, first, and when it is 3 say that the name does not exist"
        ))
        .with_evidence(evidence);
    }
    let Some(re) = crate::checks::compiled(super::NXDOMAIN_WORDS) else {
        return Verdict::fail("internal: the NXDOMAIN pattern does not compile");
    };
    let said = ctx
        .trace
        .lines(Stream::Stdout)
        .iter()
        .chain(stderr.iter())
        .any(|l| re.is_match(l));
    if !said {
        return Verdict::fail(format!(
            "the server answered NXDOMAIN (RCODE 3: {name} does not exist), and the program did not say so: when the RCODE (the low 4 bits of byte 3) is 3, print that the name does not exist, e.g. `{name}: NXDOMAIN (the name does not exist)`"
        ))
        .with_evidence(evidence);
    }
    Verdict::pass()
}

// ---------------------------------------------------------------------------
// ignores-wrong-id

/// `ignores-wrong-id`: a response whose ID is not the query's is not
/// taken: the program prints the addresses of the right response, which
/// came after it, and not the decoys of the wrong one.
pub fn ignores_wrong_id(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(v) = no_query(ctx.lab, ctx.trace) {
        return v;
    }
    let msgs = messages(ctx.lab, ctx.trace);
    let Some(wrong) = msgs.iter().find(|m| m.fault == Some("wrong-id")) else {
        return Verdict::skip(
            "not judged in this case: the server sent no response with a wrong ID (no query got one)",
        );
    };
    let right = msgs.iter().find(|m| {
        m.dir == Dir::Out
            && m.fault.is_none()
            && m.transport == wrong.transport
            && m.index == wrong.index
    });
    let (Some(decoy), Some(right)) = (wrong.parsed(), right.and_then(Msg::parsed)) else {
        return Verdict::skip("not judged in this case: the responses do not read");
    };
    let good = right.addresses();
    if good.is_empty() {
        return match answer(ctx.lab, ctx.trace) {
            Err(v) => v,
            Ok(_) => Verdict::skip(
                "not judged in this case: the right answer has no address to tell it from the wrong one",
            ),
        };
    }
    let out = ctx.trace.lines(Stream::Stdout);
    let query_id = right.header.id;
    let mut evidence = vec![
        format!(
            "first: a response with ID {} (0x{:04x}), not the query's: {}",
            decoy.header.id,
            decoy.header.id,
            decoy
                .addresses()
                .iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "then: the response with the query's ID {query_id} (0x{query_id:04x}): {}",
            good.iter()
                .map(Ipv4Addr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ];
    evidence.extend(shown_output(ctx.trace));
    let taken: Vec<String> = decoy
        .addresses()
        .into_iter()
        .filter(|a| out.iter().any(|l| has_addr(l, *a)))
        .map(|a| a.to_string())
        .collect();
    if !taken.is_empty() {
        return Verdict::fail(format!(
            "the program printed {}, from the response whose ID, {} (0x{:04x}), is not its query's, {query_id} (0x{query_id:04x}): it took the first datagram that came; compare each response's ID (bytes 0–1) with the query's, and when they differ, ignore it and read again",
            taken.join(", "),
            decoy.header.id,
            decoy.header.id
        ))
        .with_evidence(evidence);
    }
    if good.iter().any(|a| out.iter().any(|l| has_addr(l, *a))) {
        return Verdict::pass();
    }
    let end = bad_ending(ctx.trace)
        .map(|e| format!(": it {e}"))
        .unwrap_or_default();
    Verdict::fail(format!(
        "the program printed neither answer{end}; after a response with another ID, keep reading: the right one follows"
    ))
    .with_evidence(evidence)
}

// ---------------------------------------------------------------------------
// retransmits

/// `retransmits`: a query that got no answer is sent again after a timeout
/// (measured between the two arrivals at the server), and the program then
/// finishes on its own.
pub fn retransmits(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(v) = no_query(ctx.lab, ctx.trace) {
        return v;
    }
    let min = spec.min_wait.unwrap_or(DEFAULT_MIN_RETRY);
    let max = spec.max_wait.unwrap_or(DEFAULT_MAX_RETRY);
    let names = servers(ctx.lab);
    let dropped: Vec<u32> = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Dropped { server, index } if names.contains(&server.as_str()) => {
                Some(*index)
            }
            _ => None,
        })
        .collect();
    let msgs = messages(ctx.lab, ctx.trace);
    let Some(lost) = msgs
        .iter()
        .find(|m| m.dir == Dir::In && m.transport == Transport::Udp && dropped.contains(&m.index))
    else {
        return Verdict::skip("not judged in this case: no query was lost");
    };
    let question = lost.question();
    let again = msgs
        .iter()
        .find(|m| m.dir == Dir::In && m.at > lost.at && m.question() == question);
    let asked_for = question.as_ref().map_or_else(String::new, |(n, t)| {
        format!(" for {n} {}", wire::type_name(*t))
    });
    let mut evidence = vec![format!(
        "{} at {}: dropped on purpose, no answer",
        lost.label(),
        secs(lost.at)
    )];
    let Some(again) = again else {
        if let Some((at, exit)) = ctx.trace.exit() {
            evidence.push(format!("program {} at {}", exit.describe(), secs(at)));
        }
        evidence.extend(shown_output(ctx.trace));
        let msg = if timed_out(ctx.trace) {
            format!(
                "the query{asked_for} was lost, and the program waited for its answer until it was stopped at the time limit: set a timeout on the socket (`sock.settimeout(2)`), and when it expires (`socket.timeout`) send the query again"
            )
        } else {
            format!(
                "the query{asked_for} was lost, and the program gave up without sending it again: after a timeout, send the query again (two or three tries) before giving up"
            )
        };
        return Verdict::fail(msg).with_evidence(evidence);
    };
    let gap = again.at.saturating_sub(lost.at);
    evidence.push(format!(
        "{} at {}: {} later",
        again.label(),
        secs(again.at),
        secs(gap)
    ));
    if gap < min.get() {
        return Verdict::fail(format!(
            "the query was sent again only {} after the first: wait for a timeout first (at least {min}; RFC 1035 suggests 2–5 s), or every lost datagram doubles the traffic at once",
            secs(gap)
        ))
        .with_evidence(evidence);
    }
    if gap > max.get() {
        return Verdict::fail(format!(
            "the query was sent again only after {}: a timeout of at most {max} keeps the user from waiting so long",
            secs(gap)
        ))
        .with_evidence(evidence);
    }
    if timed_out(ctx.trace) {
        evidence.extend(shown_output(ctx.trace));
        return Verdict::fail(format!(
            "the query was sent again after {}, but the program then did not finish: it was stopped at the time limit",
            secs(gap)
        ))
        .with_evidence(evidence);
    }
    Verdict::pass()
}

// ---------------------------------------------------------------------------
// tcp-fallback

/// `tcp-fallback`: after a truncated answer (TC) over UDP the program asks
/// again over TCP and prints every address of the whole answer.
pub fn tcp_fallback(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(v) = no_query(ctx.lab, ctx.trace) {
        return v;
    }
    let msgs = messages(ctx.lab, ctx.trace);
    let Some((tc_at, tc)) = msgs
        .iter()
        .filter(|m| m.dir == Dir::Out && m.transport == Transport::Udp && m.fault.is_none())
        .find_map(|m| Some((m.at, m.parsed().filter(|p| p.header.tc())?)))
    else {
        return match answer(ctx.lab, ctx.trace) {
            Err(v) => v,
            Ok(_) => Verdict::skip("not judged in this case: no answer was truncated"),
        };
    };
    let question = tc.questions.first().map(|q| (q.name.clone(), q.qtype));
    let asked_for = question.as_ref().map_or_else(String::new, |(n, t)| {
        format!(" for {n} {}", wire::type_name(*t))
    });
    let tcp = msgs.iter().find(|m| {
        m.dir == Dir::In
            && m.transport == Transport::Tcp
            && m.at >= tc_at
            && m.question() == question
    });
    let mut evidence = vec![format!(
        "UDP response at {}: TC set, {} records",
        secs(tc_at),
        tc.answers.len()
    )];
    let Some(tcp) = tcp else {
        evidence.extend(shown_output(ctx.trace));
        let end = bad_ending(ctx.trace)
            .map(|e| format!(" (it {e})"))
            .unwrap_or_default();
        return Verdict::fail(format!(
            "the answer{asked_for} came back truncated over UDP (TC, bit 0x02 of byte 2, set; no records), and the program never asked over TCP{end}: when TC is set, send the same query over TCP to port 53, preceded by its length in two octets, and read the answer the same way"
        ))
        .with_evidence(evidence);
    };
    evidence.push(format!("{} at {}", tcp.label(), secs(tcp.at)));
    let whole = msgs
        .iter()
        .find(|m| m.dir == Dir::Out && m.transport == Transport::Tcp && m.index == tcp.index)
        .and_then(Msg::parsed);
    let Some(whole) = whole else {
        return Verdict::skip("not judged: the TCP query got no answer that reads");
    };
    let addrs = whole.addresses();
    let out = ctx.trace.lines(Stream::Stdout);
    let printed = addrs
        .iter()
        .filter(|a| out.iter().any(|l| has_addr(l, **a)))
        .count();
    if printed < addrs.len() {
        evidence.extend(shown_output(ctx.trace));
        let end = bad_ending(ctx.trace)
            .map(|e| format!(" (it {e})"))
            .unwrap_or_default();
        let first = addrs
            .iter()
            .find(|a| !out.iter().any(|l| has_addr(l, **a)))
            .map(Ipv4Addr::to_string)
            .unwrap_or_default();
        return Verdict::fail(format!(
            "the program asked again over TCP, but printed {printed} of the {} addresses of the answer (the first missing: {first}){end}: the answer is {} bytes; read the two-octet length, then read until you have that many bytes (one recv may return fewer)",
            addrs.len(),
            whole_len(&msgs, tcp.index)
        ))
        .with_evidence(evidence);
    }
    Verdict::pass()
}

/// The length of the TCP response to query `index`.
fn whole_len(msgs: &[Msg], index: u32) -> usize {
    msgs.iter()
        .find(|m| m.dir == Dir::Out && m.transport == Transport::Tcp && m.index == index)
        .map_or(0, |m| m.len)
}

/// The first IDs of `ids` as text, `1, 2, 3 … (40 in all)` past [`MAX_IDS`].
fn first_ids(ids: &[u16]) -> String {
    let shown: Vec<String> = ids.iter().take(MAX_IDS).map(u16::to_string).collect();
    if ids.len() > MAX_IDS {
        return format!("{} … ({} in all)", shown.join(", "), ids.len());
    }
    shown.join(", ")
}

/// IDs shown in a message, at most.
const MAX_IDS: usize = 8;

/// Questions shown in a message, at most.
const MAX_SHOWN: usize = 5;

/// `items` said once each, in order of first appearance, with how many
/// times each came when more than once, the first [`MAX_SHOWN`] of them:
/// `www.example.com A (×998), TYPE10126 … and 3 more`.
fn tally(items: &[String]) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for item in items {
        match seen.iter_mut().find(|(s, _)| *s == item.as_str()) {
            Some((_, n)) => *n += 1,
            None => seen.push((item, 1)),
        }
    }
    let mut shown: Vec<String> = seen
        .iter()
        .take(MAX_SHOWN)
        .map(|(s, n)| {
            if *n > 1 {
                format!("{s} (×{n})")
            } else {
                (*s).to_string()
            }
        })
        .collect();
    if seen.len() > MAX_SHOWN {
        shown.push(format!("and {} more", seen.len() - MAX_SHOWN));
    }
    shown.join(", ")
}

#[cfg(test)]
mod tests {

    #[test]
    fn questions_are_tallied_and_capped() {
        let items: Vec<String> = ["a A", "a A", "b MX", "c A", "d A", "e A", "f A", "g A"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(tally(&items), "a A (×2), b MX, c A, d A, e A, and 2 more");
        assert_eq!(tally(&items[..1]), "a A");
        let ids: Vec<u16> = (1..=40).collect();
        assert_eq!(first_ids(&ids), "1, 2, 3, 4, 5, 6, 7, 8 … (40 in all)");
        assert_eq!(first_ids(&ids[..2]), "1, 2");
    }
    use super::*;

    #[test]
    fn output_is_read_as_whole_addresses_names_and_numbers() {
        let a: Ipv4Addr = "10.0.0.1".parse().unwrap();
        assert!(has_addr("www.example.com. 86400 IN A 10.0.0.1", a));
        assert!(has_addr("10.0.0.1, 10.0.0.2", a));
        assert!(!has_addr("10.0.0.10", a));
        assert!(!has_addr("110.0.0.1", a));
        assert!(!has_addr("10.0.0.1.5", a));
        assert!(has_name("WWW.Example.COM. 300 A", "www.example.com"));
        assert!(has_name("name=www.example.com,", "www.example.com"));
        assert!(!has_name("a.www.example.com", "www.example.com"));
        assert!(!has_name("www.example.com.au", "www.example.com"));
        assert!(!has_name("www.example.community", "www.example.com"));
        assert_eq!(
            names_in("alias.example.com. is an alias for www.example.com: 10.0.0.1"),
            ["alias.example.com", "www.example.com"]
        );
        assert_eq!(names_in("com. 86400 IN A 10.0.0.1"), ["com"]);
        assert!(names_in("Answer: 10.0.0.1 (ttl 86400).").is_empty());
        assert!(has_number("MX 10 mx1.example.com", 10));
        assert!(!has_number("10.0.0.25", 10));
        assert!(!has_number("1200", 20));
    }

    #[test]
    fn ids_drawn_at_random_pass_fixed_and_counted_ones_fail() {
        let run = |ids: &[u16]| {
            ids.iter()
                .enumerate()
                .map(|(i, &id)| Lookup {
                    question: format!("n{i}.example.com A"),
                    id,
                })
                .collect::<Vec<_>>()
        };
        let cases = |ids: &[u16]| {
            ids.iter()
                .enumerate()
                .map(|(i, &id)| (format!("c{i}"), run(&[id])))
                .collect::<Vec<_>>()
        };
        use crate::outcome::Status;
        assert_eq!(
            judge_ids(&cases(&[51234, 812, 40211, 9])).status,
            Status::Pass
        );
        let fixed = judge_ids(&cases(&[1234, 1234, 1234]));
        assert_eq!(fixed.status, Status::Fail);
        assert!(fixed.message.unwrap().contains("1234 (0x04d2)"));
        assert_eq!(judge_ids(&cases(&[0, 0, 0])).status, Status::Fail);
        assert_eq!(judge_ids(&cases(&[1, 1, 2])).status, Status::Fail);
        assert_eq!(
            judge_ids(&[(String::new(), run(&[700, 701, 702]))]).status,
            Status::Fail
        );
        assert_eq!(judge_ids(&cases(&[4242])).status, Status::Skip);
    }
}
