//! Checks of the `dns-server` lab: netgrade's DNS probes against the
//! student's name server, read from the probes' exchanges (and, for
//! forwarding, from the record of the lab's upstream `dns` server).
//!
//! Each check owns one aspect of a response, so that one mistake costs one
//! check: `header` the ID, QR, OPCODE, RD and NOTIMP; `question` the
//! question section; `answers` the answer section, its counts and the
//! 512-octet limit of UDP; `nxdomain` the RCODE for a missing name;
//! `compressed-query`, `multiple-questions` and `malformed` their own
//! queries; `forwards` what reaches the upstream and comes back. A check
//! whose query could not be judged because of a fault another check owns
//! says so and is skipped.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::checks::{Ctx, Verdict};
use crate::dns_wire::{self as wire, Message};
use crate::outcome::ExitKind;
use crate::probes::dns as probe_dns;
use crate::spec::{CheckSpec, DnsProbeSpec, DnsTransport, ProbeSpec, ServerKind};
use crate::trace::{Dir, EventKind, ExchangeEnd};

/// The largest DNS message over UDP without EDNS (RFC 1035 §4.2.1).
const UDP_LIMIT: usize = 512;

/// One probe's last exchange, as recorded.
struct Got<'a> {
    spec: &'a ProbeSpec,
    dns: &'a DnsProbeSpec,
    sent: &'a [u8],
    msg: Option<&'a [u8]>,
    end: &'a ExchangeEnd,
    /// When it began and how long it took, on the run's clock.
    at: Duration,
    elapsed: Duration,
}

impl Got<'_> {
    /// The query's questions, as sent.
    fn asked(&self) -> Vec<wire::Question> {
        wire::parse(self.sent).questions
    }

    /// `` `www` (A www.example.com) ``.
    fn label(&self) -> String {
        format!(
            "`{}` ({})",
            self.spec.id.value,
            probe_dns::describe_spec(self.dns)
        )
    }
}

/// The last exchange of probe `id`, if it is a DNS probe that ran.
fn got<'a>(ctx: &Ctx<'a>, id: &str) -> Option<Got<'a>> {
    let spec = ctx.lab.probes.iter().find(|p| p.id.value == id)?;
    let dns = spec.dns.as_ref()?;
    ctx.trace.events.iter().rev().find_map(|e| match &e.kind {
        EventKind::Exchange {
            probe,
            sent,
            received,
            end,
            elapsed,
        } if probe == id => Some(Got {
            spec,
            dns,
            sent,
            msg: probe_dns::message(dns.transport, received),
            end,
            at: e.at,
            elapsed: *elapsed,
        }),
        _ => None,
    })
}

/// How the server ended after probe `id`, with the last line of its
/// traceback, if it did.
fn ended_on(ctx: &Ctx, id: &str) -> Option<String> {
    ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::ServerEnded {
            probe: Some(p),
            exit,
            since,
        } if p == id && *exit != ExitKind::Stopped => {
            let lines = ctx.trace.stderr_between(*since, e.at);
            let last = lines.iter().rev().find(|l| !l.trim().is_empty());
            Some(match last {
                Some(l) => format!("{} ({})", exit.describe(), l.trim()),
                None => exit.describe(),
            })
        }
        _ => None,
    })
}

/// Why a probe got no response, for people.
fn silence(ctx: &Ctx, g: &Got) -> String {
    if let Some(how) = ended_on(ctx, &g.spec.id.value) {
        return format!("the server {how} on {}", g.label());
    }
    match g.end {
        ExchangeEnd::ConnectFailed(why) => format!("{} could not be sent: {why}", g.label()),
        _ => format!(
            "no response to {} within {}",
            g.label(),
            crate::spec::Dur(g.elapsed)
        ),
    }
}

/// Why no probe reached the server, when none did: it never bound a UDP
/// port (or never started serving).
fn never_served(ctx: &Ctx) -> Option<String> {
    ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::NotListening { waited, exited } => Some(format!(
            "the server did not bind a UDP port within {}{}: netgrade sends its queries as UDP datagrams, so bind a SOCK_DGRAM socket (127.0.0.1:2053) and loop on recvfrom",
            crate::spec::Dur(*waited),
            if *exited { " (it had exited)" } else { "" }
        )),
        _ => None,
    })
}

/// The skip of a check that owns no part of a server that never served.
fn skip_unserved(ctx: &Ctx) -> Option<Verdict> {
    never_served(ctx)
        .map(|_| Verdict::skip("not checked: the server never bound a UDP port (see `answers`)"))
}

/// The probes a check names (`probes`, else `probe`), else every DNS probe
/// that passes `keep`.
fn named<'a>(
    spec: &CheckSpec,
    ctx: &Ctx<'a>,
    keep: impl Fn(&DnsProbeSpec) -> bool,
) -> Vec<&'a str> {
    let listed: Vec<&str> = spec
        .probes
        .iter()
        .flatten()
        .chain(spec.probe.iter())
        .map(String::as_str)
        .collect();
    ctx.lab
        .probes
        .iter()
        .filter(|p| {
            if listed.is_empty() {
                p.dns.as_ref().is_some_and(&keep)
            } else {
                listed.contains(&p.id.value.as_str())
            }
        })
        .map(|p| p.id.value.as_str())
        .collect()
}

/// A probe that asks questions (not `hex`).
fn asks(d: &DnsProbeSpec) -> bool {
    d.hex.is_none()
}

/// Where a message stops reading, with the bytes there: `the RDLENGTH of
/// answer 1 at offset 43 (0a 00 00 01): …`.
fn located(msg: &[u8], e: &wire::WireError) -> String {
    format!(
        "{} at offset {} ({}): {}",
        e.field,
        e.offset,
        wire::hex_at(msg, e.offset, 4),
        e.problem
    )
}

/// `field at offset N (hex)` of `msg`.
fn at(msg: &[u8], field: &str, offset: usize, n: usize) -> String {
    format!(
        "{field} at offset {offset} ({})",
        wire::hex_at(msg, offset, n)
    )
}

/// `header`: ID, QR, OPCODE and RD echoed; NOTIMP for another opcode.
pub fn header(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let mut judged = 0;
    for id in named(spec, ctx, asks) {
        let Some(g) = got(ctx, id) else { continue };
        let opcode = g.dns.opcode.unwrap_or(0);
        let Some(msg) = g.msg else {
            if opcode != 0 {
                return Verdict::fail(format!(
                    "{}: a query with an opcode the server does not implement gets a response with RCODE 4 (NOTIMP), the ID and opcode echoed, not silence or a crash",
                    silence(ctx, &g)
                ));
            }
            continue;
        };
        judged += 1;
        if let Some(problem) = header_problem(&g, msg) {
            return Verdict::fail(format!("the response to {}: {problem}", g.label()));
        }
    }
    if judged == 0 {
        return Verdict::skip("not checked: the server answered no query (see `answers`)");
    }
    Verdict::pass()
}

/// The first thing wrong with the header of `msg`, the response to `g`.
fn header_problem(g: &Got, msg: &[u8]) -> Option<String> {
    if msg.len() < 12 {
        return Some(format!(
            "it is {} octet(s) ({}), shorter than the 12-octet header",
            msg.len(),
            wire::hex(msg)
        ));
    }
    let query = wire::parse(g.sent).header;
    let h = wire::parse(msg).header;
    if h.id != query.id {
        return Some(format!(
            "{} is not the query's ID ({:04x}): copy the ID of the query into the response, so the client can match them",
            at(msg, "the ID", 0, 2),
            query.id
        ));
    }
    if !h.qr() {
        return Some(format!(
            "QR is 0 in {}: a response sets QR, the top bit of octet 2 (flags | 0x8000)",
            at(msg, "the flags", 2, 2)
        ));
    }
    if h.opcode() != query.opcode() {
        return Some(format!(
            "OPCODE is {} in {}, the query's is {}: echo the query's opcode (bits 11–14 of the flags)",
            h.opcode(),
            at(msg, "the flags", 2, 2),
            query.opcode()
        ));
    }
    if h.rd() != query.rd() {
        return Some(format!(
            "RD is {} in {}, the query's is {}: copy RD from the query (bit 8 of the flags, 0x0100), do not hard-code the flags",
            u8::from(h.rd()),
            at(msg, "the flags", 2, 2),
            u8::from(query.rd())
        ));
    }
    if query.opcode() != 0 && h.rcode() != 4 {
        return Some(format!(
            "RCODE is {} in {}: a query with opcode {} the server does not implement gets RCODE 4 (NOTIMP)",
            h.rcode(),
            at(msg, "the flags", 2, 2),
            query.opcode()
        ));
    }
    None
}

/// `question`: the question section echoed.
pub fn question(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let mut judged = 0;
    let plain = |d: &DnsProbeSpec| {
        asks(d) && !d.compress && d.questions.len() <= 1 && d.opcode.unwrap_or(0) == 0
    };
    for id in named(spec, ctx, plain) {
        let Some(g) = got(ctx, id) else { continue };
        let Some(msg) = g.msg else { continue };
        judged += 1;
        if let Some(problem) = question_problem(&g, msg) {
            return Verdict::fail(format!("the response to {}: {problem}", g.label()));
        }
    }
    if judged == 0 {
        return Verdict::skip("not checked: the server answered no query (see `answers`)");
    }
    Verdict::pass()
}

/// The first difference between the questions of `msg` and of the query.
fn question_problem(g: &Got, msg: &[u8]) -> Option<String> {
    let asked = g.asked();
    let p = wire::parse(msg);
    if msg.len() < 12 {
        return Some(format!(
            "it is {} octet(s), shorter than a header",
            msg.len()
        ));
    }
    if usize::from(p.header.counts[0]) != asked.len() {
        return Some(format!(
            "{} says {} question(s), the query had {}: echo the question section and its count",
            at(msg, "QDCOUNT", 4, 2),
            p.header.counts[0],
            asked.len()
        ));
    }
    if p.questions.len() < asked.len() {
        let e = p.error.as_ref()?;
        return Some(format!("the question does not read: {}", located(msg, e)));
    }
    for (i, (want, have)) in asked.iter().zip(&p.questions).enumerate() {
        let n = i + 1;
        if want.name != have.name {
            return Some(format!(
                "question {n} at offset {} ({}) names `{}`, the query asked `{}`: write the name back as the query's labels, ending with a zero octet",
                have.at,
                wire::hex_at(msg, have.at, 8),
                have.name,
                want.name
            ));
        }
        if (want.qtype, want.qclass) != (have.qtype, have.qclass) {
            let end = have.at + encoded_len(msg, have.at);
            return Some(format!(
                "question {n} has {} and {}, the query had type {} class {}: echo QTYPE and QCLASS",
                at(msg, "QTYPE", end, 2),
                at(msg, "QCLASS", end + 2, 2),
                want.qtype,
                want.qclass
            ));
        }
    }
    None
}

/// The octets the name at `offset` of `msg` takes in place.
fn encoded_len(msg: &[u8], offset: usize) -> usize {
    wire::read_name(msg, offset, "")
        .map(|n| n.end - offset)
        .unwrap_or(0)
}

/// The student's zone: (name, TTL, address) of each A record in the lab's
/// zone file (master-file lines `NAME TTL [CLASS] A ADDRESS`).
fn zone(ctx: &Ctx, file: &str) -> Vec<(String, u32, Ipv4Addr)> {
    let Some(bytes) = ctx.lab.files.get(file) else {
        return Vec::new();
    };
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            let line = line.split(';').next()?.trim();
            let f: Vec<&str> = line.split_whitespace().collect();
            let f: Vec<&str> = f
                .into_iter()
                .filter(|w| !w.eq_ignore_ascii_case("IN"))
                .collect();
            match f.as_slice() {
                [name, ttl, t, addr] if t.eq_ignore_ascii_case("A") => Some((
                    name.trim_end_matches('.').to_ascii_lowercase(),
                    ttl.parse().ok()?,
                    addr.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// The zone file a check reads (`file`, default `zone.txt`).
fn zone_file(spec: &CheckSpec) -> &str {
    spec.file.as_deref().unwrap_or("zone.txt")
}

/// The origin of the student's zone: the longest suffix all its names share.
fn origin(records: &[(String, u32, Ipv4Addr)]) -> String {
    let mut names = records.iter().map(|(n, _, _)| probe_dns::labels(n));
    let Some(mut common) = names.next() else {
        return String::new();
    };
    for n in names {
        let k = common
            .iter()
            .rev()
            .zip(n.iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        common = common[common.len() - k..].to_vec();
    }
    common.join(".")
}

/// Whether `name` is at or below `origin`.
fn under(name: &str, origin: &str) -> bool {
    !origin.is_empty() && (name == origin || name.ends_with(&format!(".{origin}")))
}

/// The A records (TTL, address) `name` should get: from the zone file when
/// the name is in the student's zone, else from the lab's upstream `dns`
/// server (TTL `None`: a forwarder may pass on a smaller one).
fn expected(ctx: &Ctx, file: &str, name: &str) -> Vec<(Option<u32>, Ipv4Addr)> {
    let records = zone(ctx, file);
    if under(name, &origin(&records)) {
        return records
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, ttl, a)| (Some(*ttl), *a))
            .collect();
    }
    upstream_addresses(ctx, name)
}

/// The addresses the lab's `dns` server holds for `name`.
fn upstream_addresses(ctx: &Ctx, name: &str) -> Vec<(Option<u32>, Ipv4Addr)> {
    use hickory_proto::rr::{Name, RData, RecordType};
    let Some(server) = ctx
        .lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Dns)
    else {
        return Vec::new();
    };
    let (zones, _) = crate::servers::dns::zone::build(
        server.zones.as_deref().unwrap_or_default(),
        server.hierarchy.unwrap_or(false),
    );
    let Ok(qname) = Name::from_ascii(format!("{name}.")) else {
        return Vec::new();
    };
    let view = zones.view_for(std::net::IpAddr::from([127, 0, 0, 1]));
    zones
        .lookup(view, &qname, RecordType::A)
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((None, a.0)),
            _ => None,
        })
        .collect()
}

/// The name of the lab's upstream server and its address.
fn upstream(ctx: &Ctx) -> Option<(String, String)> {
    ctx.lab
        .servers
        .iter()
        .find(|s| s.kind.value == ServerKind::Dns)
        .map(|s| (s.name.clone(), format!("{}:{}", s.host, s.port)))
}

/// What is wrong with the answer to question `q` (0-based) of `msg`, if
/// anything: the answer records for its name must be the expected ones.
fn answer_problem(ctx: &Ctx, file: &str, g: &Got, msg: &[u8], p: &Message) -> Option<String> {
    let udp = g.dns.transport == DnsTransport::Udp;
    if udp && msg.len() > UDP_LIMIT && !p.header.tc() {
        return Some(format!(
            "it is {} octets over UDP, more than 512 (RFC 1035 §4.2.1), and TC is 0 in {}: when the response does not fit 512 octets, send only the records that fit (or none) and set TC (flags | 0x0200) — mind the limit: 512 is allowed, 513 is not",
            msg.len(),
            at(msg, "the flags", 2, 2)
        ));
    }
    if let Some(e) = &p.error {
        let counts = [p.questions.len(), p.answers.len()];
        return Some(format!(
            "it does not read: {}; read so far: {} question(s), {} answer(s), with {}{}",
            located(msg, e),
            counts[0],
            counts[1],
            at(msg, "ANCOUNT", 6, 2),
            if p.header.counts[1] == p.header.counts[0]
                && p.answers.is_empty()
                && e.offset == msg.len()
            {
                " — is ANCOUNT a copy of QDCOUNT? It counts the answer records you send"
            } else {
                ""
            }
        ));
    }
    if p.trailing > 0 {
        return Some(format!(
            "{} octet(s) follow the last record the counts announce, with {}: ANCOUNT is the number of answer records you send (not a copy of QDCOUNT); the other counts are 0 when those sections are empty",
            p.trailing,
            at(msg, "ANCOUNT", 6, 2)
        ));
    }
    if p.header.rcode() != 0 {
        return Some(format!(
            "RCODE is {} in {}, for a name that has records: answer NOERROR (0) with them",
            p.header.rcode(),
            at(msg, "the flags", 2, 2)
        ));
    }
    for q in g.asked() {
        let want = expected(ctx, file, &q.name);
        if let Some(problem) = records_problem(msg, p, &q.name, &want) {
            return Some(problem);
        }
    }
    None
}

/// Whether the A records of `name` in `p` are `want` (all of them, or a
/// part with TC set); what differs.
fn records_problem(
    msg: &[u8],
    p: &Message,
    name: &str,
    want: &[(Option<u32>, Ipv4Addr)],
) -> Option<String> {
    let mine: Vec<&wire::Record> = p
        .answers
        .iter()
        .filter(|r| r.owner.plain() == name)
        .collect();
    let wanted: BTreeSet<Ipv4Addr> = want.iter().map(|(_, a)| *a).collect();
    if mine.is_empty()
        && let Some(other) = p.answers.iter().find(|r| {
            let owner = r.owner.plain();
            owner != name && !p.questions.iter().any(|q| q.name == owner)
        })
    {
        return Some(format!(
            "the answer at offset {} ({}) is for `{}`, not for `{name}`: an answer's name is the question's (a pointer to it, c0 0c, will do)",
            other.at,
            wire::hex_at(msg, other.at, 8),
            other.owner.plain()
        ));
    }
    for r in &mine {
        if r.rtype != 1 || r.class != 1 {
            return Some(format!(
                "the answer at offset {} has type {} class {} ({}): an A record in class IN is type 1, class 1 (00 01 00 01)",
                r.at,
                r.rtype,
                r.class,
                wire::hex_at(msg, r.at + encoded_len(msg, r.at), 4)
            ));
        }
        let Some(a) = r.a() else {
            return Some(format!(
                "the answer at offset {} has {} octet(s) of RDATA ({}): an A record's RDATA is the 4 octets of the address, RDLENGTH 4",
                r.at,
                r.rdata.len(),
                wire::hex(&r.rdata)
            ));
        };
        if !wanted.contains(&a) {
            return Some(format!(
                "the answer at offset {} says {name} is {a} (RDATA {}); the zone says {}",
                r.at,
                wire::hex(&r.rdata),
                show(&wanted)
            ));
        }
        let ttl = want.iter().find(|(_, w)| *w == a).and_then(|(t, _)| *t);
        if let Some(ttl) = ttl.filter(|t| *t != r.ttl) {
            let ttl_at = r.at + encoded_len(msg, r.at) + 4;
            return Some(format!(
                "the answer for {name} has {} = {}; the zone's TTL is {ttl}: send the record's TTL as 4 octets",
                at(msg, "the TTL", ttl_at, 4),
                r.ttl
            ));
        }
    }
    let have: BTreeSet<Ipv4Addr> = mine.iter().filter_map(|r| r.a()).collect();
    if have != wanted && !p.header.tc() {
        let missing: BTreeSet<Ipv4Addr> = wanted.difference(&have).copied().collect();
        return Some(format!(
            "it has {} answer(s) for {name} ({}: {}), the zone has {} ({}); {} missing",
            have.len(),
            at(msg, "ANCOUNT", 6, 2),
            show(&have),
            wanted.len(),
            show(&wanted),
            show(&missing)
        ));
    }
    None
}

fn show(set: &BTreeSet<Ipv4Addr>) -> String {
    let all: Vec<String> = set.iter().map(Ipv4Addr::to_string).collect();
    if all.len() > 4 {
        return format!("{} … {} in all", all[..3].join(", "), all.len());
    }
    if all.is_empty() {
        return "none".into();
    }
    all.join(", ")
}

/// `answers`: the zone's records, counted right, within UDP's 512 octets.
pub fn answers(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(why) = never_served(ctx) {
        return Verdict::fail(why);
    }
    let file = zone_file(spec);
    let ids = named(spec, ctx, |d| {
        asks(d) && d.opcode.unwrap_or(0) == 0 && d.questions.len() <= 1 && !d.compress
    });
    let mut judged = 0;
    for id in ids {
        let Some(g) = got(ctx, id) else { continue };
        let Some(msg) = g.msg else {
            return Verdict::fail(format!(
                "{}: every query for a name in the zone gets a response",
                silence(ctx, &g)
            ));
        };
        judged += 1;
        let p = wire::parse(msg);
        if question_problem(&g, msg).is_some() && p.questions.is_empty() {
            continue; // `question` owns a question section that does not read
        }
        if let Some(problem) = answer_problem(ctx, file, &g, msg, &p) {
            let forwarded = match upstream_saw(ctx, &g).first() {
                Some((_, answered, _, _)) => format!(
                    " — the server forwarded this name of its own zone to the upstream, which answered {answered}: answer the names of your zone from {file}"
                ),
                None => String::new(),
            };
            return Verdict::fail(format!(
                "the response to {}: {problem}{forwarded}",
                g.label()
            ));
        }
    }
    if judged == 0 {
        return Verdict::fail("no query got a response: the server answered nothing");
    }
    Verdict::pass()
}

/// Whether a plain single-question query (for a name of the zone, or
/// outside it when `outside`) got a wrong answer or none: a fault
/// `answers` (or `forwards`) owns, which other checks do not charge again.
fn answers_broken(ctx: &Ctx, file: &str, outside: bool) -> bool {
    let origin = origin(&zone(ctx, file));
    ctx.lab
        .probes
        .iter()
        .filter_map(|p| {
            let d = p.dns.as_ref()?;
            let name = d
                .name
                .as_deref()?
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let plain = d.opcode.unwrap_or(0) == 0 && !d.compress;
            (plain && under(&name, &origin) != outside).then_some(p.id.value.as_str())
        })
        .filter_map(|id| got(ctx, id))
        .filter(|g| {
            let name = g
                .asked()
                .first()
                .map(|q| q.name.clone())
                .unwrap_or_default();
            !expected(ctx, file, &name).is_empty()
        })
        .any(|g| match g.msg {
            None => true,
            Some(msg) => answer_problem(ctx, file, &g, msg, &wire::parse(msg)).is_some(),
        })
}

/// Whether the server fails to read a name that ends in a compression
/// pointer (the `compressed-query` probe got no answer, or an error, or
/// another name).
fn pointers_broken(ctx: &Ctx) -> bool {
    ctx.lab
        .probes
        .iter()
        .filter(|p| p.dns.as_ref().is_some_and(|d| d.compress))
        .filter_map(|p| got(ctx, &p.id.value))
        .any(|g| match g.msg {
            None => true,
            Some(msg) => {
                let p = wire::parse(msg);
                let same =
                    p.questions.first().map(|q| &q.name) == g.asked().first().map(|q| &q.name);
                matches!(p.header.rcode(), 1 | 2) || !same
            }
        })
}

/// `nxdomain`: a name in the zone without records gets RCODE 3.
pub fn nxdomain(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let ids = named(spec, ctx, |_| false);
    let Some(g) = ids.first().and_then(|id| got(ctx, id)) else {
        return Verdict::skip(
            "not checked: the query for a missing name was not sent (the lab names none, or the probing ended first)",
        );
    };
    let Some(msg) = g.msg else {
        return Verdict::fail(format!(
            "{}: a name the zone does not have gets a response with RCODE 3 (NXDOMAIN)",
            silence(ctx, &g)
        ));
    };
    if msg.len() < 4 {
        return Verdict::fail(format!(
            "the response to {} is {} octet(s), shorter than a header",
            g.label(),
            msg.len()
        ));
    }
    let h = wire::parse(msg).header;
    let file = zone_file(spec);
    if h.rcode() != 3 && !upstream_saw(ctx, &g).is_empty() && answers_broken(ctx, file, false) {
        return Verdict::skip(
            "not checked: the server forwards the names of its own zone instead of answering them from zone.txt (see `answers`)",
        );
    }
    if h.rcode() != 3 {
        return Verdict::fail(format!(
            "the response to {} has RCODE {} in {}: a name in your zone that has no records gets RCODE 3 (NXDOMAIN: flags | 3), and no answers",
            g.label(),
            u16::from_be_bytes([msg[2], msg[3]]) & 0xF,
            at(msg, "the flags", 2, 2)
        ));
    }
    Verdict::pass()
}

/// `compressed-query`: a question whose name ends in a compression pointer
/// is read as the name it stands for.
pub fn compressed_query(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let file = zone_file(spec);
    let ids = named(spec, ctx, |d| d.compress);
    let Some(g) = ids.first().and_then(|id| got(ctx, id)) else {
        return Verdict::skip(
            "not checked: the compressed query was not sent (the lab names none, or the probing ended first)",
        );
    };
    let pointer = g
        .sent
        .windows(2)
        .enumerate()
        .skip(12)
        .find(|(_, w)| w[0] & 0xC0 == 0xC0)
        .map_or_else(String::new, |(i, w)| {
            format!(" (the pointer {} at offset {i})", wire::hex(w))
        });
    let advice = "when a length octet starts with two 1 bits (c0 and up), it and the next octet are a pointer: the low 14 bits are an offset from the start of the message, where the rest of the name is; read on there, then continue after the pointer";
    let Some(msg) = g.msg else {
        return Verdict::fail(format!("{}{pointer}: {advice}", silence(ctx, &g)));
    };
    let p = wire::parse(msg);
    let asked = g.asked();
    if p.header.rcode() == 1 || p.header.rcode() == 2 {
        return Verdict::fail(format!(
            "the response to {}{pointer} has RCODE {} ({}): the query is well-formed; {advice}",
            g.label(),
            p.header.rcode(),
            if p.header.rcode() == 1 {
                "FORMERR"
            } else {
                "SERVFAIL"
            }
        ));
    }
    if let (Some(want), Some(have)) = (asked.first(), p.questions.first())
        && want.name != have.name
    {
        return Verdict::fail(format!(
            "the response to {}{pointer} echoes the name `{}`, the query's name is `{}`: {advice}",
            g.label(),
            have.name,
            want.name
        ));
    }
    if let Some(problem) = answer_problem(ctx, file, &g, msg, &p) {
        if answers_broken(ctx, file, false) {
            return Verdict::skip(
                "not checked: the name was read, but the answers to plain queries are wrong too (see `answers`)",
            );
        }
        return Verdict::fail(format!("the response to {}{pointer}: {problem}", g.label()));
    }
    Verdict::pass()
}

/// `multiple-questions`: a query with several questions gets each
/// question echoed and answered (those outside the zone forwarded, one
/// question per upstream query).
pub fn multiple_questions(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let file = zone_file(spec);
    let origin = origin(&zone(ctx, file));
    let mut judged = 0;
    for id in named(spec, ctx, |d| d.questions.len() > 1) {
        let Some(g) = got(ctx, id) else { continue };
        let outside = g.asked().iter().any(|q| !under(&q.name, &origin));
        let n = g.asked().len();
        let Some(msg) = g.msg else {
            return Verdict::fail(format!(
                "{}: a query with {n} questions gets one response, with each question and its answers",
                silence(ctx, &g)
            ));
        };
        let Some(problem) = several_problem(ctx, file, &g, msg) else {
            judged += 1;
            continue;
        };
        // The whole query sent upstream is this check's own fault; other
        // wrong answers are charged once, to `answers` or `forwards`.
        let whole = upstream_saw(ctx, &g).iter().any(|s| s.0 > 1);
        let owned = answers_broken(ctx, file, outside) || (outside && pointers_broken(ctx));
        if !whole && owned {
            continue;
        }
        return Verdict::fail(format!("the response to {}: {problem}", g.label()));
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: single questions are not answered right either (see `answers` and `forwards`)",
        );
    }
    Verdict::pass()
}

/// What is wrong with the response to a query of several questions.
fn several_problem(ctx: &Ctx, file: &str, g: &Got, msg: &[u8]) -> Option<String> {
    let n = g.asked().len();
    let p = wire::parse(msg);
    let upstream = upstream_saw(ctx, g);
    if let Some(seen) = upstream.iter().find(|s| s.0 > 1) {
        return Some(format!(
            "the upstream resolver got the whole query, {} questions in one message, and answered {}: most servers refuse that; send it one query per question and put the answers together",
            seen.0, seen.1
        ));
    }
    if p.header.rcode() != 0 {
        return Some(format!(
            "RCODE is {} in {}: answer each of the {n} questions (RCODE 0), with QDCOUNT {n}",
            p.header.rcode(),
            at(msg, "the flags", 2, 2)
        ));
    }
    if let Some(problem) = question_problem(g, msg) {
        return Some(problem);
    }
    answer_problem(ctx, file, g, msg, &p)
}

/// The queries the lab's upstream server received while probe `g` ran:
/// (QDCOUNT, the RCODE it answered, its well-formedness problem if any,
/// the question).
fn upstream_saw(ctx: &Ctx, g: &Got) -> Vec<(u16, String, Option<String>, Option<String>)> {
    let Some((server, _)) = upstream(ctx) else {
        return Vec::new();
    };
    // The upstream stamps arrivals with the kernel's wall clock, the probes
    // with the run's monotonic one: allow a millisecond of skew, never
    // reaching into the exchange before.
    let skew = Duration::from_millis(1);
    let before = ctx
        .trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Exchange { elapsed, .. } if e.at < g.at => Some(e.at + *elapsed),
            _ => None,
        })
        .max()
        .unwrap_or_default();
    let from = g.at.saturating_sub(skew).max(before);
    let until = g.at + g.elapsed + skew;
    let mut out = Vec::new();
    for e in &ctx.trace.events {
        let EventKind::DnsMessage {
            server: s,
            dir,
            index,
            transport,
            raw,
            summary,
            ..
        } = &e.kind
        else {
            continue;
        };
        if *s != server || *dir != Dir::In || e.at < from || e.at > until {
            continue;
        }
        let answered = ctx.trace.events.iter().find_map(|r| match &r.kind {
            EventKind::DnsMessage {
                server: s2,
                dir: Dir::Out,
                index: i2,
                transport: t2,
                summary: Some(sum),
                ..
            } if *s2 == server && i2 == index && t2 == transport => {
                Some(crate::servers::dns::describe_message(Some(sum), 0, true))
            }
            _ => None,
        });
        let parsed = wire::parse(raw);
        let problem = parsed.error.as_ref().map(|e| located(raw, e));
        let question = summary.as_ref().and_then(|s| s.question.as_ref()).map(|q| {
            format!(
                "{} {}",
                q.qtype,
                q.name.trim_end_matches('.').to_ascii_lowercase()
            )
        });
        out.push((
            parsed.header.counts[0],
            answered.unwrap_or_else(|| "nothing".into()),
            problem,
            question,
        ));
    }
    out
}

/// `forwards`: a name outside the zone is asked of the upstream resolver,
/// in a well-formed query, and its answer comes back to the client.
pub fn forwards(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let file = zone_file(spec);
    let origin = origin(&zone(ctx, file));
    let ids = named(spec, ctx, |d| {
        d.name
            .as_deref()
            .is_some_and(|n| !under(&n.trim_end_matches('.').to_ascii_lowercase(), &origin))
    });
    let Some(g) = ids.first().and_then(|id| got(ctx, id)) else {
        return Verdict::skip(
            "not checked: no query to forward was sent (the lab names none, or the probing ended first)",
        );
    };
    let Some((_, addr)) = upstream(ctx) else {
        return Verdict::skip("not checked: the lab has no upstream `dns` server");
    };
    let asked = g.asked();
    let want = asked.first().map(|q| q.name.clone()).unwrap_or_default();
    let seen = upstream_saw(ctx, &g);
    if seen.is_empty() {
        let got_text = if g.msg.is_some() {
            "answered it itself"
        } else {
            "sent nothing back"
        };
        return Verdict::fail(format!(
            "the upstream resolver at {addr} got no query while netgrade asked {} (outside your zone {origin}), and your server {got_text}: forward names outside your zone to the address given with --resolver and relay the answer",
            g.label()
        ));
    }
    let wanted = format!("{} {want}", type_name(asked.first().map_or(1, |q| q.qtype)));
    let good = seen.iter().find(|(qd, _, problem, question)| {
        *qd == 1 && problem.is_none() && question.as_deref() == Some(wanted.as_str())
    });
    if good.is_none() {
        let (qd, answered, problem, question) = &seen[0];
        let what = match (problem, question) {
            (Some(p), _) => format!("a query that does not read: {p}"),
            _ if *qd != 1 => format!("a query with QDCOUNT {qd}"),
            (None, q) => format!("the question `{}`", q.as_deref().unwrap_or("none")),
        };
        return Verdict::fail(format!(
            "for {}, the upstream resolver at {addr} got {what} (it answered {answered}); it should get one standard query with the question `{wanted}`",
            g.label()
        ));
    }
    let Some(msg) = g.msg else {
        return Verdict::fail(format!(
            "the upstream resolver answered, but {}: relay its answer to the client (with the client's ID)",
            silence(ctx, &g)
        ));
    };
    let p = wire::parse(msg);
    if let Some(problem) = answer_problem(ctx, file, &g, msg, &p) {
        if pointers_broken(ctx) {
            return Verdict::skip(
                "not checked: the upstream's answer names its records with compression pointers, which the server does not follow (see `compressed-query`)",
            );
        }
        if answers_broken(ctx, file, false) {
            return Verdict::skip(
                "not checked: the upstream answered, but the zone's own answers are encoded wrong too (see `answers`)",
            );
        }
        return Verdict::fail(format!(
            "the upstream resolver answered, but the response to {}: {problem}",
            g.label()
        ));
    }
    Verdict::pass()
}

fn type_name(code: u16) -> String {
    hickory_proto::rr::RecordType::from(code).to_string()
}

/// `malformed`: after a truncated or garbage datagram the server is still
/// there and answers the next query.
pub fn malformed(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    if let Some(skip) = skip_unserved(ctx) {
        return skip;
    }
    let ids = named(spec, ctx, |d| d.hex.is_some());
    if ids.is_empty() {
        return Verdict::skip("not checked: the lab names no malformed query");
    }
    let mut judged = 0;
    for id in ids {
        let Some(g) = got(ctx, id) else { continue };
        judged += 1;
        let bytes = format!("{} octet(s): {}", g.sent.len(), wire::hex_at(g.sent, 0, 24));
        if let Some(how) = ended_on(ctx, id) {
            return Verdict::fail(format!(
                "the server {how} on probe `{id}`, a malformed datagram of {bytes}: check lengths before reading (a header is 12 octets; a name may run past the end), bound the pointers you follow, and catch errors per datagram (answer FORMERR or nothing) so that one bad query cannot stop the server"
            ));
        }
        let pos = ctx.lab.probes.iter().position(|p| p.id.value == id);
        let next = pos.and_then(|i| ctx.lab.probes.get(i + 1));
        if let Some(next) = next
            && let Some(after) = got(ctx, &next.id.value)
            && after.msg.is_none()
            && ended_on(ctx, &next.id.value).is_none()
        {
            return Verdict::fail(format!(
                "after probe `{id}`, a malformed datagram of {bytes}, the server answered nothing more: {} — it is stuck (a loop over compression pointers that point at each other?): follow at most a few dozen pointers, and give up on a name that runs past the end",
                silence(ctx, &after)
            ));
        }
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: no malformed datagram was sent (the probing ended first)",
        );
    }
    Verdict::pass()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Status;
    use crate::probes::dns::{Probe, default_id};
    use crate::spec::{Lab, load_builtin};
    use crate::trace::{Event, Trace};

    fn lab() -> Lab {
        load_builtin("dns-server").unwrap().unwrap()
    }

    /// The query probe `id` of the lab sends.
    fn query(lab: &Lab, id: &str) -> Vec<u8> {
        let spec = lab.probes.iter().find(|p| p.id.value == id).unwrap();
        Probe::from_spec(spec, spec.dns.as_ref().unwrap(), lab.seed).bytes
    }

    /// A response to `q` as a correct server writes it: the header echoed
    /// with QR (and `extra` flags), the question, one A record per address
    /// (name compressed), TTL `ttl`.
    fn respond(q: &[u8], extra: u16, ttl: u32, addrs: &[[u8; 4]]) -> Vec<u8> {
        let flags = u16::from_be_bytes([q[2], q[3]]) | 0x8000 | extra;
        let mut r = q[..2].to_vec();
        r.extend_from_slice(&flags.to_be_bytes());
        r.extend_from_slice(&[0, 1]);
        r.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0]);
        r.extend_from_slice(&q[12..]);
        for a in addrs {
            r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
            r.extend_from_slice(&ttl.to_be_bytes());
            r.extend_from_slice(&[0, 4]);
            r.extend_from_slice(a);
        }
        r
    }

    fn trace(exchanges: Vec<(&str, Vec<u8>, Vec<u8>)>) -> Trace {
        Trace {
            events: exchanges
                .into_iter()
                .enumerate()
                .map(|(i, (probe, sent, received))| Event {
                    at: Duration::from_millis(10 * i as u64),
                    kind: EventKind::Exchange {
                        probe: probe.into(),
                        end: if received.is_empty() {
                            ExchangeEnd::TimedOut
                        } else {
                            ExchangeEnd::Complete
                        },
                        sent,
                        received,
                        elapsed: Duration::from_millis(5),
                    },
                })
                .collect(),
        }
    }

    fn verdict(lab: &Lab, trace: &Trace, id: &str) -> Verdict {
        let spec = lab.checks.iter().find(|c| c.id.value == id).unwrap();
        crate::checks::check(spec, &Ctx { trace, lab })
    }

    #[test]
    fn the_zone_file_and_its_origin_are_read() {
        let lab = lab();
        let ctx = Ctx {
            trace: &Trace { events: vec![] },
            lab: &lab,
        };
        let z = zone(&ctx, "zone.txt");
        assert_eq!(z.len(), 33);
        assert_eq!(origin(&z), "example.com");
        assert_eq!(
            expected(&ctx, "zone.txt", "www.example.net"),
            [(None, Ipv4Addr::new(192, 0, 2, 10))]
        );
        assert!(under("big.example.com", "example.com") && !under("example.net", "example.com"));
    }

    #[test]
    fn answers_pass_the_zone_and_name_a_wrong_ttl_with_its_bytes() {
        let lab = lab();
        let (www, mail, big) = (
            query(&lab, "www"),
            query(&lab, "mail-no-rd"),
            query(&lab, "big"),
        );
        let big_answer = respond(&big, 0x0200, 60, &[[10, 0, 1, 1]]);
        let good = trace(vec![
            ("www", www.clone(), respond(&www, 0, 300, &[[10, 0, 0, 1]])),
            (
                "mail-no-rd",
                mail.clone(),
                respond(&mail, 0, 300, &[[10, 0, 0, 26], [10, 0, 0, 25]]),
            ),
            ("big", big.clone(), big_answer.clone()),
        ]);
        assert_eq!(verdict(&lab, &good, "answers").status, Status::Pass);
        assert_eq!(verdict(&lab, &good, "header").status, Status::Pass);
        let ttl = trace(vec![(
            "www",
            www.clone(),
            respond(&www, 0, 299, &[[10, 0, 0, 1]]),
        )]);
        let v = verdict(&lab, &ttl, "answers");
        assert_eq!(v.status, Status::Fail);
        let m = v.message.unwrap();
        assert!(
            m.contains("the TTL at offset 39 (00 00 01 2b) = 299"),
            "{m}"
        );
        // One address of two, without TC.
        let short = trace(vec![(
            "mail-no-rd",
            mail.clone(),
            respond(&mail, 0, 300, &[[10, 0, 0, 25]]),
        )]);
        let m = verdict(&lab, &short, "answers").message.unwrap();
        assert!(m.contains("10.0.0.26 missing"), "{m}");
    }

    #[test]
    fn header_faults_are_named_by_field_offset_and_bytes() {
        let lab = lab();
        let www = query(&lab, "www");
        let mut wrong_id = respond(&www, 0, 300, &[[10, 0, 0, 1]]);
        wrong_id[0] ^= 0xFF;
        let m = verdict(&lab, &trace(vec![("www", www.clone(), wrong_id)]), "header")
            .message
            .unwrap();
        assert!(
            m.contains("the ID at offset 0") && m.contains("copy the ID"),
            "{m}"
        );
        let op = query(&lab, "opcode-3");
        // Opcode echoed but RCODE 0: NOTIMP is asked for.
        let m = verdict(
            &lab,
            &trace(vec![("opcode-3", op.clone(), respond(&op, 0, 300, &[]))]),
            "header",
        )
        .message
        .unwrap();
        assert!(
            m.contains("RCODE 4 (NOTIMP)") && m.contains("opcode 3"),
            "{m}"
        );
        let silent = trace(vec![("opcode-3", op, Vec::new())]);
        let m = verdict(&lab, &silent, "header").message.unwrap();
        assert!(m.contains("no response to `opcode-3`"), "{m}");
        assert_ne!(
            default_id(lab.seed, "opcode-2"),
            default_id(lab.seed, "opcode-3")
        );
    }

    #[test]
    fn nxdomain_reads_the_rcode_alone() {
        let lab = lab();
        let q = query(&lab, "missing");
        // ANCOUNT wrong too: that is `answers`' business, not this check's.
        let mut r = respond(&q, 3, 300, &[]);
        r[7] = 1;
        let v = verdict(&lab, &trace(vec![("missing", q.clone(), r)]), "nxdomain");
        assert_eq!(v.status, Status::Pass);
        let v = verdict(
            &lab,
            &trace(vec![("missing", q.clone(), respond(&q, 0, 300, &[]))]),
            "nxdomain",
        );
        assert!(
            v.message
                .unwrap()
                .contains("RCODE 0 in the flags at offset 2 (81 00)")
        );
    }

    #[test]
    fn nothing_to_judge_is_a_skip_not_a_fail() {
        let lab = lab();
        let empty = Trace { events: vec![] };
        for id in ["header", "question", "multiple-questions", "malformed"] {
            assert_eq!(verdict(&lab, &empty, id).status, Status::Skip, "{id}");
        }
        assert_eq!(verdict(&lab, &empty, "answers").status, Status::Fail);
    }
}
