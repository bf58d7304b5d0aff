//! Checks of the `dns-resolver` lab: an iterative resolver judged by the
//! queries the lab's hierarchy received (which server each went to, its
//! flags and question, when) and by what the program printed.
//!
//! Each check owns one step of iterative resolution, and a program that
//! stops at a step is charged by that step's check alone: the others say
//! "not checked" (a skip) where the step they judge never came. The answer
//! a name must get, and the way to it, are worked out from the lab's zones
//! ([`Expected`]), so a lab with other zones needs no other code.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_proto::rr::rdata::{A, CNAME, NS};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::checks::{Ctx, Verdict, compiled, last_lines, secs};
use crate::outcome::ExitKind;
use crate::servers::dns::zone::{self, Kind, Zones};
use crate::spec::{CheckSpec, ServerKind};
use crate::trace::{Dir, DnsSummary, EventKind, Stream};

/// The real root servers' addresses (a– to m.root-servers.net, IPv4, and
/// b's former one), which students hard-code; the lab's root answers them.
const REAL_ROOTS: &[&str] = &[
    "198.41.0.4",
    "170.247.170.2",
    "199.9.14.201",
    "192.33.4.12",
    "199.7.91.13",
    "192.203.230.10",
    "192.5.5.241",
    "192.112.36.4",
    "198.97.190.53",
    "192.36.148.17",
    "192.58.128.30",
    "193.0.14.129",
    "199.7.83.42",
    "202.12.27.33",
];

/// The real TLD servers of com and net (a- to m.gtld-servers.net), which
/// students hard-code to skip the root; the lab's root answers them.
const REAL_GTLDS: &[&str] = &[
    "192.5.6.30",
    "192.33.14.30",
    "192.26.92.30",
    "192.31.80.30",
    "192.12.94.30",
    "192.35.51.30",
    "192.42.93.30",
    "192.54.112.30",
    "192.43.172.30",
    "192.48.79.30",
    "192.52.178.30",
    "192.41.162.30",
    "192.55.83.30",
];

/// Evidence lines of queries shown at most.
const MAX_EVIDENCE: usize = 12;

/// Referrals and CNAMEs followed when working out a name's answer.
const MAX_STEPS: usize = 32;

/// The lab's hierarchy: its zones, and where the root is.
struct Hierarchy {
    zones: Zones,
    roots: Vec<Ipv4Addr>,
}

/// Which level of the hierarchy a server is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Root,
    Tld,
    Authoritative,
}

impl Hierarchy {
    /// The hierarchy of the lab's `dns` server, if it has one.
    fn of(ctx: &Ctx) -> Option<Hierarchy> {
        let spec = ctx
            .lab
            .servers
            .iter()
            .find(|s| s.kind.value == ServerKind::Dns && s.hierarchy == Some(true))?;
        let (zones, _) = zone::build(spec.zones.as_deref().unwrap_or_default(), true);
        let roots = zones.views.first()?.addr.into_iter().collect();
        Some(Hierarchy { zones, roots })
    }

    /// The level of the server that answers queries sent to `ip`.
    fn level(&self, ip: IpAddr) -> Level {
        let view = self.zones.view_for(ip);
        let origins = || view.zones.iter().map(|i| &self.zones.zones[*i].origin);
        if origins().any(Name::is_root) {
            Level::Root
        } else if origins().all(|o| o.num_labels() == 1) {
            Level::Tld
        } else {
            Level::Authoritative
        }
    }

    /// `127.0.0.3 (the servers of com., net.)`; an address of no server
    /// says the root answered in its place.
    fn describe(&self, ip: IpAddr) -> String {
        let view = self.zones.view_for(ip);
        let own = view.addr.map(IpAddr::V4) == Some(ip);
        let zones: Vec<String> = view
            .zones
            .iter()
            .map(|i| zone::show(&self.zones.zones[*i].origin))
            .collect();
        let what = match self.level(ip) {
            Level::Root => "the root".to_string(),
            Level::Tld => format!("the TLD servers of {}", zones.join(", ")),
            Level::Authoritative => format!("the servers of {}", zones.join(", ")),
        };
        if own {
            format!("{ip} ({what})")
        } else {
            format!("{ip} (answered by the lab's root)")
        }
    }

    /// Whether `ip` is the address of one of the hierarchy's servers.
    fn serves(&self, ip: IpAddr) -> bool {
        self.zones
            .views
            .iter()
            .any(|v| v.addr.map(IpAddr::V4) == Some(ip))
    }

    /// Whether `ip` is a root server's: the lab's root hints or a real one.
    fn is_root_address(&self, ip: IpAddr) -> bool {
        self.roots.iter().any(|r| IpAddr::V4(*r) == ip)
            || REAL_ROOTS.iter().any(|r| *r == ip.to_string())
    }
}

/// What resolving a name through the lab's zones gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Expected {
    /// The addresses (empty when the name does not exist or has none).
    addresses: Vec<Ipv4Addr>,
    /// The name does not exist.
    nxdomain: bool,
    /// Name servers looked up for want of glue.
    glueless: Vec<String>,
    /// CNAME targets resolved afresh (in another zone's servers).
    cname_targets: Vec<String>,
}

impl Hierarchy {
    /// Resolves `name` (type A) as an iterative resolver would, over the
    /// lab's zones, from the root.
    fn expect(&self, name: &str) -> Expected {
        let mut out = Expected::default();
        if let Ok(name) = Name::from_ascii(name) {
            self.walk(name, 0, &mut out);
        }
        out
    }

    fn walk(&self, mut name: Name, depth: usize, out: &mut Expected) -> Vec<Ipv4Addr> {
        let Some(&root) = self.roots.first() else {
            return Vec::new();
        };
        let mut server = root;
        for _ in 0..MAX_STEPS {
            if depth > 4 {
                break;
            }
            let found = self.zones.lookup(
                self.zones.view_for(IpAddr::V4(server)),
                &name,
                RecordType::A,
            );
            match found.kind {
                Kind::Answer => {
                    let addresses = addresses_of(&found.answers);
                    if !addresses.is_empty() {
                        if depth == 0 {
                            out.addresses = addresses.clone();
                        }
                        return addresses;
                    }
                    let Some(RData::CNAME(CNAME(target))) = found.answers.last().map(|r| &r.data)
                    else {
                        break;
                    };
                    if depth == 0 {
                        out.cname_targets.push(zone::show(target));
                    }
                    (name, server) = (target.clone(), root);
                }
                Kind::Referral => {
                    let glue = addresses_of(&found.additional);
                    if let Some(first) = glue.first() {
                        server = *first;
                        continue;
                    }
                    let Some(RData::NS(NS(ns))) = found.authority.first().map(|r| &r.data) else {
                        break;
                    };
                    out.glueless.push(zone::show(ns));
                    match self.walk(ns.clone(), depth + 1, out).first() {
                        Some(ip) => server = *ip,
                        None => break,
                    }
                }
                Kind::NxDomain => {
                    out.nxdomain = depth == 0;
                    break;
                }
                Kind::NoData | Kind::Refused => break,
            }
        }
        Vec::new()
    }
}

fn addresses_of(records: &[hickory_proto::rr::Record]) -> Vec<Ipv4Addr> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

/// A record of a summary's section, read back from its text
/// (`example.com. 3600 IN NS ns1.example.com.`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rr {
    owner: String,
    ttl: u32,
    rtype: String,
    data: String,
}

fn rrs(lines: &[String]) -> Vec<Rr> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 5).then(|| Rr {
                owner: f[0].to_ascii_lowercase(),
                ttl: f[1].parse().unwrap_or(0),
                rtype: f[3].to_string(),
                data: f[4..].join(" ").to_ascii_lowercase(),
            })
        })
        .collect()
}

/// A response the program got.
struct Reply<'t> {
    at: Duration,
    raw: &'t [u8],
    summary: &'t DnsSummary,
}

impl Reply<'_> {
    fn answers(&self) -> Vec<Rr> {
        rrs(&self.summary.answers)
    }

    /// A referral: no answer, NS records in the authority section.
    fn referral(&self) -> Option<Referral> {
        if self.summary.rcode() != 0 || !self.summary.answers.is_empty() {
            return None;
        }
        let ns: Vec<Rr> = rrs(&self.summary.authority)
            .into_iter()
            .filter(|r| r.rtype == "NS")
            .collect();
        let first = ns.first()?;
        let names: Vec<String> = ns.iter().map(|r| r.data.clone()).collect();
        let glue = rrs(&self.summary.additional)
            .into_iter()
            .filter(|r| r.rtype == "A" && names.contains(&r.owner))
            .map(|r| (r.owner, r.data))
            .collect();
        Some(Referral {
            zone: first.owner.clone(),
            ttl: first.ttl,
            names,
            glue,
        })
    }
}

/// What a referral said.
struct Referral {
    zone: String,
    ttl: u32,
    names: Vec<String>,
    /// (name server, address) pairs of the additional section.
    glue: Vec<(String, String)>,
}

impl Referral {
    fn show(&self) -> String {
        let glue = if self.glue.is_empty() {
            "no glue".to_string()
        } else {
            let g: Vec<String> = self.glue.iter().map(|(n, a)| format!("{n} {a}")).collect();
            format!("glue {}", g.join(", "))
        };
        format!("{} NS {}, {glue}", self.zone, self.names.join(" "))
    }
}

/// One query the program sent, and the response it got.
struct Ask<'t> {
    /// The query's number in the transcript (`udp #3`).
    index: u32,
    tcp: bool,
    at: Duration,
    to: IpAddr,
    raw: &'t [u8],
    summary: &'t DnsSummary,
    /// Its name, lower case, with the final dot.
    name: String,
    reply: Option<Reply<'t>>,
    /// The lab dropped it on purpose.
    dropped: bool,
}

impl Ask<'_> {
    fn label(&self) -> String {
        let t = if self.tcp { "tcp" } else { "udp" };
        format!("query {t} #{} at {}", self.index, secs(self.at))
    }

    fn line(&self, h: &Hierarchy) -> String {
        let got = match &self.reply {
            None if self.dropped => "no answer (dropped on purpose)".to_string(),
            None => "no answer".to_string(),
            Some(r) => match r.referral() {
                Some(f) => format!("referral: {}", f.show()),
                None => {
                    let rcode = match r.summary.rcode() {
                        0 => "NOERROR".to_string(),
                        3 => "NXDOMAIN".to_string(),
                        n => format!("rcode {n}"),
                    };
                    let a: Vec<String> = r
                        .answers()
                        .iter()
                        .map(|a| format!("{} {}", a.rtype, a.data))
                        .collect();
                    format!("{rcode} {}", a.join(", "))
                }
            },
        };
        format!(
            "{} -> {}: A {} <- {}",
            self.label(),
            h.describe(self.to),
            self.name,
            got.trim_end()
        )
    }
}

/// The program's queries in order of arrival, each with its response.
fn asks<'t>(ctx: &Ctx<'t>) -> Vec<Ask<'t>> {
    let mut out: Vec<Ask> = Vec::new();
    for e in &ctx.trace.events {
        let EventKind::DnsMessage {
            dir,
            index,
            conn,
            local,
            raw,
            summary: Some(summary),
            fault,
            ..
        } = &e.kind
        else {
            continue;
        };
        let tcp = conn.is_some();
        match dir {
            Dir::In => {
                let Some(q) = &summary.question else { continue };
                out.push(Ask {
                    index: *index,
                    tcp,
                    at: e.at,
                    to: local.ip().to_canonical(),
                    raw,
                    summary,
                    name: q.name.to_ascii_lowercase(),
                    reply: None,
                    dropped: false,
                });
            }
            Dir::Out => {
                // A response with a wrong ID (a fault) is not the answer.
                if fault.as_deref() == Some("wrong-id") {
                    continue;
                }
                if let Some(a) = out
                    .iter_mut()
                    .rev()
                    .find(|a| a.index == *index && a.tcp == tcp)
                {
                    a.reply = Some(Reply {
                        at: e.at,
                        raw,
                        summary,
                    });
                }
            }
        }
    }
    // A query the lab dropped on purpose, and never answered.
    let dropped: BTreeSet<u32> = dropped_queries(ctx);
    for a in &mut out {
        a.dropped = a.reply.is_none() && !a.tcp && dropped.contains(&a.index);
    }
    out
}

/// The UDP queries the lab drops (its `drop_first`).
fn dropped_queries(ctx: &Ctx) -> BTreeSet<u32> {
    ctx.lab
        .servers
        .iter()
        .filter(|s| s.kind.value == ServerKind::Dns)
        .filter_map(|s| s.faults.as_ref()?.drop_first)
        .flat_map(|n| 1..=n)
        .collect()
}

/// The names the case asks the program to resolve: its arguments.
fn names(ctx: &Ctx) -> Vec<String> {
    ctx.lab
        .program
        .args
        .iter()
        .filter(|a| !a.contains('{') && a.contains('.'))
        .map(|a| format!("{}.", a.trim_end_matches('.').to_ascii_lowercase()))
        .collect()
}

/// How the program ended, for messages: `; it exited with status 1 (stderr: …)`.
fn ending(ctx: &Ctx) -> String {
    let last_err = ctx
        .trace
        .lines(Stream::Stderr)
        .last()
        .map(|l| {
            format!(
                " (its last error line: {})",
                crate::checks::quote(l.as_bytes())
            )
        })
        .unwrap_or_default();
    match ctx.trace.exit() {
        Some((at, ExitKind::Exited { code: 0 })) => format!("; it exited at {}", secs(at)),
        Some((at, ExitKind::Exited { code })) => {
            format!("; it exited with status {code} at {}{last_err}", secs(at))
        }
        Some((_, ExitKind::TimedOut { limit_ms })) => format!(
            "; it was still waiting at the time limit ({}) and was stopped",
            secs(Duration::from_millis(*limit_ms))
        ),
        Some((at, ExitKind::Signaled { signal })) => {
            format!("; it was killed by signal {signal} at {}", secs(at))
        }
        Some((_, other)) => format!("; it ended: {other:?}"),
        None => String::new(),
    }
}

/// Compression pointers in `raw` that point past offset 255, as
/// `(offset of the pointer, its two bytes)`; the first few.
fn far_pointers(raw: &[u8]) -> Vec<(usize, u8, u8)> {
    let mut out = Vec::new();
    let mut i = 12;
    while i + 1 < raw.len() && out.len() < 3 {
        let (b0, b1) = (raw[i], raw[i + 1]);
        let target = (usize::from(b0 & 0x3F) << 8) | usize::from(b1);
        if b0 & 0xC0 == 0xC0
            && target > 255
            && target < i
            && raw[target] & 0xC0 != 0xC0
            && raw[target] < 64
        {
            out.push((i, b0, b1));
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// A sentence about compression pointers past offset 255 in `raw`, if any.
fn pointer_note(raw: &[u8]) -> String {
    let Some(&(off, b0, b1)) = far_pointers(raw).first() else {
        return String::new();
    };
    let target = (usize::from(b0 & 0x3F) << 8) | usize::from(b1);
    format!(
        "; its names use compression pointers past offset 255 (at offset {off}: bytes {b0:02x} {b1:02x}, pointing at offset {target}): a pointer's offset is 14 bits, ((b0 & 0x3F) << 8) | b1, not the second byte alone"
    )
}

/// A sentence about compression pointers in `raw` at all, if any.
fn any_pointer_note(raw: &[u8]) -> String {
    let far = pointer_note(raw);
    if !far.is_empty() {
        return far;
    }
    let at = (12..raw.len().saturating_sub(1))
        .find(|&i| raw[i] & 0xC0 == 0xC0 && usize::from(raw[i + 1]) < i && i > 16);
    match at {
        Some(i) => format!(
            "; its names are compressed (at offset {i}: bytes {:02x} {:02x}, a pointer to offset {}): a length byte with its top two bits set (0xC0) is a pointer, not a label, and its offset counts from the message's first byte (the ID's), not from the question",
            raw[i],
            raw[i + 1],
            (usize::from(raw[i] & 0x3F) << 8) | usize::from(raw[i + 1])
        ),
        None => String::new(),
    }
}

/// Evidence: the program's queries, one line each.
fn evidence(h: &Hierarchy, asks: &[Ask]) -> Vec<String> {
    let mut lines: Vec<String> = asks.iter().take(MAX_EVIDENCE).map(|a| a.line(h)).collect();
    if asks.len() > MAX_EVIDENCE {
        lines.push(format!("… {} more queries", asks.len() - MAX_EVIDENCE));
    }
    lines
}

/// The common start of every check: the hierarchy and the queries, or why
/// there is nothing to judge.
fn start<'t>(ctx: &Ctx<'t>) -> Result<(Hierarchy, Vec<Ask<'t>>), Verdict> {
    let Some(h) = Hierarchy::of(ctx) else {
        return Err(Verdict::skip("not checked: the lab has no DNS hierarchy"));
    };
    let asks = asks(ctx);
    if asks.is_empty() {
        return Err(Verdict::skip(
            "not checked: the program sent no query (see `starts-at-root`)",
        ));
    }
    Ok((h, asks))
}

/// `starts-at-root`: the first query goes to a root server.
pub fn starts_at_root(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let Some(h) = Hierarchy::of(ctx) else {
        return Verdict::skip("not checked: the lab has no DNS hierarchy");
    };
    let asks = asks(ctx);
    let hints: Vec<String> = h.roots.iter().map(ToString::to_string).collect();
    let Some(first) = asks.first() else {
        let out = last_lines(ctx.trace.lines(Stream::Stderr), 5, "stderr");
        return Verdict::fail(format!(
            "the program sent no DNS query to any server{}; named.root, beside it, gives the root's address ({})",
            ending(ctx),
            hints.join(", ")
        ))
        .with_evidence(out);
    };
    if h.is_root_address(first.to) {
        return Verdict::pass();
    }
    let what = if REAL_GTLDS.iter().any(|g| *g == first.to.to_string()) {
        format!(
            "{}, a real TLD server's address (x.gtld-servers.net, com and net), not a root server: the lab's root answered in its place",
            first.to
        )
    } else if h.serves(first.to) {
        format!("{}, not a root server", h.describe(first.to))
    } else {
        format!(
            "{}, which is not a root server: {} (a public resolver resolves for you, and an iterative resolver does the work itself)",
            first.to,
            if first.summary.recursion_desired() {
                "it asked for recursion"
            } else {
                "the lab's root answered in its place"
            }
        )
    };
    Verdict::fail(format!(
        "the first query ({}, A {}) went to {what}; start at a root server of named.root ({})",
        first.label(),
        first.name,
        hints.join(", ")
    ))
    .with_evidence(evidence(&h, &asks))
}

/// What the program did after a referral it stopped at.
enum After {
    /// It went on: the name's chain has a later query.
    Followed,
    /// It looked up a name server of the referral (glue's or glueless's business).
    LookedUpNs,
    /// It stopped.
    Stopped,
}

fn after_referral(asks: &[Ask], i: usize, r: &Referral) -> After {
    let later = &asks[i + 1..];
    if later.iter().any(|a| a.name == asks[i].name) {
        After::Followed
    } else if later.iter().any(|a| r.names.contains(&a.name)) {
        After::LookedUpNs
    } else {
        After::Stopped
    }
}

/// `follows-referrals`: no RD, and each referral followed to the next level.
pub fn follows_referrals(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    if let Some(v) = recursion_desired(&h, &asks) {
        return v;
    }
    let mut wanted = names(ctx);
    for a in &asks {
        for t in cname_targets(a) {
            if asks.iter().any(|b| b.name == t) && !wanted.contains(&t) {
                wanted.push(t);
            }
        }
    }
    let mut judged = 0;
    for name in &wanted {
        match chain_verdict(ctx, &h, &asks, name) {
            Some(Ok(())) => judged += 1,
            Some(Err(v)) => return v.with_evidence(evidence(&h, &asks)),
            None => {}
        }
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: no name's resolution got past a step other checks judge (a lost query, glue, a name server without glue, a CNAME)",
        );
    }
    Verdict::pass()
}

/// The first query with RD set, as a failure.
fn recursion_desired(h: &Hierarchy, asks: &[Ask]) -> Option<Verdict> {
    let rd: Vec<&Ask> = asks
        .iter()
        .filter(|a| a.summary.recursion_desired() && !to_resolver(h, a))
        .collect();
    let first = rd.first()?;
    let off = if first.tcp { 4 } else { 2 };
    let (b2, b3) = (
        first.raw.get(off).copied().unwrap_or(0),
        first.raw.get(off + 1).copied().unwrap_or(0),
    );
    Some(
        Verdict::fail(format!(
            "{} of {} queries have RD (recursion desired) set; the first, {} to {} for {}, has byte 2 (the flags' first byte) = 0x{b2:02x} (flags {b2:02x} {b3:02x}): bit 0x01 of byte 2 is RD, which asks the server to resolve the name for you; an iterative resolver sends it cleared (flags 00 00) and follows the referrals itself",
            rd.len(),
            asks.len(),
            first.label(),
            h.describe(first.to),
            first.name
        ))
        .with_evidence(evidence(h, asks)),
    )
}

/// Whether `a` went to a recursive resolver (an address of no server of
/// the hierarchy, nor a root's): `starts-at-root` judges it when it starts
/// the resolution, `resolves-glueless-ns` when it looks up a name server,
/// RD and all.
fn to_resolver(h: &Hierarchy, a: &Ask) -> bool {
    !h.serves(a.to) && !h.is_root_address(a.to)
}

/// CNAME targets an answer gives without their address.
fn cname_targets(a: &Ask) -> Vec<String> {
    let Some(r) = &a.reply else { return Vec::new() };
    let answers = r.answers();
    let mut name = a.name.clone();
    for _ in 0..answers.len() {
        match answers
            .iter()
            .find(|x| x.owner == name && x.rtype == "CNAME")
        {
            Some(c) => name = c.data.clone(),
            None => break,
        }
    }
    let has_address = answers.iter().any(|x| x.owner == name && x.rtype == "A");
    if name != a.name && !has_address {
        vec![name]
    } else {
        Vec::new()
    }
}

/// Whether the queries for `name` went where referrals pointed, up to an
/// answer: `None` when another check owns where it stopped.
fn chain_verdict(
    ctx: &Ctx,
    h: &Hierarchy,
    asks: &[Ask],
    name: &str,
) -> Option<Result<(), Verdict>> {
    let chain: Vec<usize> = (0..asks.len()).filter(|&i| asks[i].name == name).collect();
    let Some(&last) = chain.last() else {
        if names(ctx).iter().any(|n| n == name) {
            return Some(Err(Verdict::fail(format!(
                "the program never asked any server for {name}{}: send the name from the command line, as it is, to a root server of named.root",
                ending(ctx)
            ))));
        }
        return None;
    };
    for (k, &i) in chain.iter().enumerate().skip(1) {
        let a = &asks[i];
        let prev = &asks[chain[k - 1]];
        if a.to == prev.to || h.is_root_address(a.to) || pointed_at(&asks[..i], a.to) {
            continue;
        }
        return Some(Err(Verdict::fail(format!(
            "{} for {name} went to {}, which no referral named; after a referral, ask one of the name servers it names (the addresses in its additional section, or found by looking up their names)",
            a.label(),
            h.describe(a.to)
        ))));
    }
    let a = &asks[last];
    let r = a.reply.as_ref()?;
    let Some(referral) = r.referral() else {
        return Some(Ok(()));
    };
    match after_referral(asks, last, &referral) {
        After::Followed | After::LookedUpNs => None,
        After::Stopped if referral.glue.is_empty() => None,
        After::Stopped => Some(Err(Verdict::fail(format!(
            "after the referral for {name} from {}, in response to {} ({}), the program asked none of those servers{}{}",
            h.describe(a.to),
            a.label(),
            referral.show(),
            ending(ctx),
            any_pointer_note(r.raw)
        )))),
    }
}

/// Whether a referral among `asks` (or a name server's address looked up)
/// named `ip`.
fn pointed_at(asks: &[Ask], ip: IpAddr) -> bool {
    let ip = ip.to_string();
    let mut ns_names: Vec<String> = Vec::new();
    for a in asks {
        let Some(r) = &a.reply else { continue };
        if let Some(f) = r.referral() {
            if f.glue.iter().any(|(_, g)| *g == ip) {
                return true;
            }
            ns_names.extend(f.names);
        }
        if ns_names.contains(&a.name) && r.answers().iter().any(|x| x.rtype == "A" && x.data == ip)
        {
            return true;
        }
    }
    false
}

/// `uses-glue`: the addresses a referral gives are used, not looked up.
pub fn uses_glue(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let mut used = 0;
    for (i, a) in asks.iter().enumerate() {
        let Some(r) = &a.reply else { continue };
        let Some(f) = r.referral() else { continue };
        if f.glue.is_empty() {
            continue;
        }
        let later = &asks[i + 1..];
        if let Some(b) = later
            .iter()
            .find(|b| f.glue.iter().any(|(n, _)| *n == b.name))
        {
            let addr = f
                .glue
                .iter()
                .find(|(n, _)| *n == b.name)
                .map(|(_, g)| g.as_str())
                .unwrap_or("");
            return Verdict::fail(format!(
                "the referral from {}, in response to {}, gave {}'s address, {addr}, in its additional section (glue), yet the program looked that name up: {} to {}; ask {addr} the question instead{}",
                h.describe(a.to),
                a.label(),
                b.name,
                b.label(),
                h.describe(b.to),
                pointer_note(r.raw)
            ))
            .with_evidence(evidence(&h, &asks));
        }
        if later
            .iter()
            .any(|b| f.glue.iter().any(|(_, g)| *g == b.to.to_string()))
        {
            used += 1;
        }
    }
    if used == 0 {
        return Verdict::skip(
            "not checked: the program followed no referral with glue (see `follows-referrals`)",
        );
    }
    Verdict::pass()
}

/// `resolves-glueless-ns`: a name server without glue is looked up, then asked.
pub fn resolves_glueless_ns(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let mut judged = 0;
    for (i, a) in asks.iter().enumerate() {
        let Some(f) = a.reply.as_ref().and_then(Reply::referral) else {
            continue;
        };
        if !f.glue.is_empty() {
            continue;
        }
        judged += 1;
        if let Err(v) = glueless_followed(ctx, &h, &asks, i, &f) {
            return v.with_evidence(evidence(&h, &asks));
        }
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: no referral without glue reached the program in this case",
        );
    }
    Verdict::pass()
}

fn glueless_followed(
    ctx: &Ctx,
    h: &Hierarchy,
    asks: &[Ask],
    i: usize,
    f: &Referral,
) -> Result<(), Verdict> {
    let a = &asks[i];
    let later = &asks[i + 1..];
    let said = format!(
        "the referral from {}, in response to {}, delegates {} to {} and gives no address for it (no glue)",
        h.describe(a.to),
        a.label(),
        f.zone,
        f.names.join(" ")
    );
    if !later.iter().any(|b| f.names.contains(&b.name)) {
        return Err(Verdict::fail(format!(
            "{said}; the program never looked up {}'s address{}: resolve that name from the root like any name, then ask its address the question",
            f.names[0],
            ending(ctx)
        )));
    }
    let found = later.iter().find_map(|b| {
        let r = b.reply.as_ref()?;
        if !f.names.contains(&b.name) {
            return None;
        }
        r.answers()
            .into_iter()
            .find(|x| x.rtype == "A")
            .map(|x| (b, x.data))
    });
    let Some((b, ip)) = found else {
        let via = later
            .iter()
            .find(|b| f.names.contains(&b.name) && !h.serves(b.to))
            .map(|b| {
                format!(
                    " (it asked {}, which is no server of the hierarchy{}, in {})",
                    b.to,
                    if b.summary.recursion_desired() {
                        ", with RD set: a recursive resolver"
                    } else {
                        ""
                    },
                    b.label()
                )
            })
            .unwrap_or_default();
        return Err(Verdict::fail(format!(
            "{said}; the program asked for {}'s address but never got it{via}: resolve it from the root like any name{}",
            f.names[0],
            ending(ctx)
        )));
    };
    if later
        .iter()
        .any(|c| c.name == a.name && c.to.to_string() == ip)
    {
        return Ok(());
    }
    Err(Verdict::fail(format!(
        "{said}; the program learned its address, {ip} (response to {}), but never asked {ip} for {}{}",
        b.label(),
        a.name,
        ending(ctx)
    )))
}

/// `follows-cname`: a CNAME without its target's address is resolved further.
pub fn follows_cname(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let mut judged = 0;
    for (i, a) in asks.iter().enumerate() {
        for target in cname_targets(a) {
            judged += 1;
            if asks[i + 1..].iter().any(|b| b.name == target) {
                continue;
            }
            return Verdict::fail(format!(
                "{} answered {} with a CNAME to {target} and no address for it (the target is on other servers); the program never asked for {target}{}: resolve the target from the root (or from what you have cached) and print its address",
                h.describe(a.to),
                a.name,
                ending(ctx)
            ))
            .with_evidence(evidence(&h, &asks));
        }
    }
    if let Some(v) = cname_in_answer(ctx, &h, &asks, &mut judged) {
        return v;
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: no answer with a CNAME reached the program in this case",
        );
    }
    Verdict::pass()
}

/// An answer that gives a CNAME and its target's address together: the
/// target's address must be printed.
fn cname_in_answer(ctx: &Ctx, h: &Hierarchy, asks: &[Ask], judged: &mut usize) -> Option<Verdict> {
    let printed = printed_addresses(ctx);
    for name in names(ctx) {
        let Some((a, answers)) = asks.iter().find_map(|a| {
            let answers = a.reply.as_ref()?.answers();
            (a.name == name && answers.iter().any(|x| x.rtype == "CNAME")).then_some((a, answers))
        }) else {
            continue;
        };
        let addresses: Vec<&str> = answers
            .iter()
            .filter(|x| x.rtype == "A")
            .map(|x| x.data.as_str())
            .collect();
        if addresses.is_empty() {
            continue;
        }
        *judged += 1;
        if addresses.iter().all(|x| printed.iter().any(|p| p == x)) {
            continue;
        }
        let chain: Vec<String> = answers
            .iter()
            .map(|x| format!("{} {} {}", x.owner, x.rtype, x.data))
            .collect();
        let mut ev = last_lines(ctx.trace.lines(Stream::Stdout), 6, "stdout");
        ev.extend(evidence(h, asks));
        return Some(
            Verdict::fail(format!(
                "{} answered {name} with a CNAME and its target's address in the same response ({}; in response to {}), but the program did not print {}: the answer's first record is owned by the name asked and is a CNAME; the A record is owned by its target{}",
                h.describe(a.to),
                chain.join("; "),
                a.label(),
                addresses.join(", "),
                ending(ctx)
            ))
            .with_evidence(ev),
        );
    }
    None
}

/// The printed dotted quads of the program's standard output.
fn printed_addresses(ctx: &Ctx) -> Vec<String> {
    let Some(re) = compiled(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b") else {
        return Vec::new();
    };
    ctx.trace
        .lines(Stream::Stdout)
        .iter()
        .flat_map(|l| {
            re.find_iter(l)
                .map(|m| m.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `final-answer`: each name's address is printed.
pub fn final_answer(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let printed = printed_addresses(ctx);
    let mut judged = 0;
    for name in names(ctx) {
        let expected = h.expect(&name);
        if expected.addresses.is_empty() {
            continue;
        }
        let want: Vec<String> = expected.addresses.iter().map(ToString::to_string).collect();
        if want.iter().all(|w| printed.contains(w)) {
            judged += 1;
            continue;
        }
        if let Some(v) = wrong_answer(ctx, &h, &asks, &name, &want, &printed) {
            return v;
        }
        if let Some(v) = unanswered(ctx, &h, &asks, &name) {
            return v;
        }
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: the program never received the address it was to print (see `follows-referrals`, `resolves-glueless-ns`, `follows-cname`)",
        );
    }
    Verdict::pass()
}

/// The program got `name`'s address and did not print it.
fn wrong_answer(
    ctx: &Ctx,
    h: &Hierarchy,
    asks: &[Ask],
    name: &str,
    want: &[String],
    printed: &[String],
) -> Option<Verdict> {
    let got = asks.iter().find(|a| {
        a.reply.as_ref().is_some_and(|r| {
            r.answers()
                .iter()
                .any(|x| x.rtype == "A" && want.contains(&x.data))
        })
    })?;
    if got
        .reply
        .as_ref()
        .is_some_and(|r| r.answers().iter().any(|x| x.rtype == "CNAME"))
    {
        // Reading an answer through its CNAME is `follows-cname`'s to judge.
        return None;
    }
    let others: Vec<&String> = printed.iter().filter(|p| !want.contains(p)).collect();
    let instead = if others.is_empty() {
        "it printed no address".to_string()
    } else {
        format!(
            "it printed {} instead",
            others
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut ev = last_lines(ctx.trace.lines(Stream::Stdout), 6, "stdout");
    ev.extend(evidence(h, asks));
    Some(
        Verdict::fail(format!(
            "{name} is {}: {} gave it, in response to {} (for {}), but {instead}{}: print the data of the answer section's A records (4 bytes each, dotted: socket.inet_ntoa)",
            want.join(", "),
            h.describe(got.to),
            got.label(),
            got.name,
            ending(ctx)
        ))
        .with_evidence(ev),
    )
}

/// The program's last query went unanswered (the lab dropped it) and it
/// never asked again.
fn unanswered(ctx: &Ctx, h: &Hierarchy, asks: &[Ask], name: &str) -> Option<Verdict> {
    let (i, a) = asks.iter().enumerate().find(|(_, a)| a.dropped)?;
    let again = asks[i + 1..].iter().any(|b| b.name == a.name);
    if again {
        return None;
    }
    Some(
        Verdict::fail(format!(
            "{name} was never printed: {} to {} for {} got no answer (the lab drops it on purpose, as a network may) and the program never asked again{}; set a timeout on the socket (e.g. sock.settimeout(2)) and send the query again when it expires",
            a.label(),
            h.describe(a.to),
            a.name,
            ending(ctx)
        ))
        .with_evidence(evidence(h, asks)),
    )
}

/// `caches`: a later name in a zone already known skips the root and TLD.
pub fn caches(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let names = names(ctx);
    if names.len() < 2 {
        return Verdict::skip("not checked: this case gives the program one name");
    }
    let mut judged = 0;
    for name in &names[1..] {
        let Some(first) = asks.iter().position(|a| a.name == *name) else {
            continue;
        };
        let Some((learned_at, f, from)) = known_zone(&asks[..first], name) else {
            continue;
        };
        judged += 1;
        let miss = asks[first..].iter().filter(|a| a.name == *name).find(|a| {
            h.level(a.to) != Level::Authoritative
                && a.at.saturating_sub(learned_at) < Duration::from_secs(u64::from(f.ttl))
        });
        if let Some(a) = miss {
            return Verdict::fail(format!(
                "{} asked {} for {name}, though {} had already named {}'s servers at {} (NS {}, TTL {} s, still valid): keep what referrals teach in a cache and start each name at the closest zone you know",
                a.label(),
                h.describe(a.to),
                h.describe(from),
                f.zone,
                secs(learned_at),
                f.names.join(" "),
                f.ttl
            ))
            .with_evidence(evidence(&h, &asks));
        }
    }
    if judged == 0 {
        return Verdict::skip(
            "not checked: the program did not reach the second name's zone with the first name (see `follows-referrals` and `final-answer`)",
        );
    }
    Verdict::pass()
}

/// The latest referral among `asks` to a zone holding `name`, below the TLDs.
fn known_zone(asks: &[Ask], name: &str) -> Option<(Duration, Referral, IpAddr)> {
    asks.iter().rev().find_map(|a| {
        let r = a.reply.as_ref()?;
        let f = r.referral()?;
        let inside = name == f.zone || name.ends_with(&format!(".{}", f.zone));
        (inside && f.zone.matches('.').count() >= 2).then_some((r.at, f, a.to))
    })
}

/// `nxdomain`: a name that does not exist is reported, without a crash.
pub fn nxdomain(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let (h, asks) = match start(ctx) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let missing: Vec<String> = names(ctx)
        .into_iter()
        .filter(|n| h.expect(n).nxdomain)
        .collect();
    let Some(got) = asks.iter().find(|a| {
        missing.contains(&a.name) && a.reply.as_ref().is_some_and(|r| r.summary.rcode() == 3)
    }) else {
        return Verdict::skip(
            "not checked: no NXDOMAIN answer reached the program (see `follows-referrals`)",
        );
    };
    let said = format!(
        "{} answered {} with NXDOMAIN (RCODE 3: the name does not exist; response to {})",
        h.describe(got.to),
        got.name,
        got.label()
    );
    let stderr = ctx.trace.lines(Stream::Stderr);
    let mut ev = last_lines(stderr.iter().copied(), 6, "stderr");
    ev.extend(last_lines(ctx.trace.lines(Stream::Stdout), 4, "stdout"));
    let crashed = stderr.iter().any(|l| {
        l.contains("Traceback (most recent call last)") || l.contains("Exception in thread")
    });
    let abnormal = matches!(
        ctx.trace.exit(),
        Some((_, ExitKind::Signaled { .. } | ExitKind::TimedOut { .. }))
    );
    if crashed || abnormal {
        return Verdict::fail(format!(
            "{said}, and the program crashed{}: check the RCODE (the low 4 bits of byte 3) before reading the answer and authority sections",
            ending(ctx)
        ))
        .with_evidence(ev);
    }
    let said_so = compiled(super::NXDOMAIN_WORDS).is_some_and(|re| {
        ctx.trace
            .lines(Stream::Stdout)
            .iter()
            .chain(stderr.iter())
            .any(|l| re.is_match(l))
    });
    if said_so {
        return Verdict::pass();
    }
    Verdict::fail(format!(
        "{said}, but the program's output never says so (e.g. \"NXDOMAIN\" or \"does not exist\"){}",
        ending(ctx)
    ))
    .with_evidence(ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> crate::spec::Lab {
        crate::spec::load_builtin("dns-resolver").unwrap().unwrap()
    }

    fn hierarchy() -> Hierarchy {
        let lab = lab();
        let trace = crate::trace::Trace::default();
        Hierarchy::of(&Ctx {
            trace: &trace,
            lab: &lab,
        })
        .unwrap()
    }

    #[test]
    fn the_expected_answers_come_from_the_labs_zones() {
        let h = hierarchy();
        let www = h.expect("www.example.com.");
        assert_eq!(www.addresses, vec![Ipv4Addr::new(10, 0, 0, 1)]);
        assert!(www.glueless.is_empty() && www.cname_targets.is_empty());
        let glueless = h.expect("www.glueless.com.");
        assert_eq!(glueless.addresses, vec![Ipv4Addr::new(10, 0, 0, 2)]);
        assert_eq!(glueless.glueless, vec!["dns.example.net.".to_string()]);
        let alias = h.expect("alias.example.com.");
        assert_eq!(alias.addresses, vec![Ipv4Addr::new(10, 0, 0, 3)]);
        assert_eq!(alias.cname_targets, vec!["www.example.org.".to_string()]);
        assert!(h.expect("nothing.example.com.").nxdomain);
    }

    #[test]
    fn levels_and_addresses_are_named() {
        let h = hierarchy();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(h.level(ip("127.0.0.2")), Level::Root);
        assert_eq!(h.level(ip("127.0.0.3")), Level::Tld);
        assert_eq!(h.level(ip("127.0.0.6")), Level::Authoritative);
        assert_eq!(h.level(ip("198.41.0.4")), Level::Root);
        assert!(h.is_root_address(ip("198.41.0.4")) && !h.is_root_address(ip("8.8.8.8")));
        assert_eq!(
            h.describe(ip("8.8.8.8")),
            "8.8.8.8 (answered by the lab's root)"
        );
        assert_eq!(
            h.describe(ip("127.0.0.3")),
            "127.0.0.3 (the TLD servers of com., net., org.)"
        );
    }

    #[test]
    fn far_pointers_are_found_and_near_ones_are_not() {
        let mut msg = vec![0u8; 300];
        msg[12] = 3;
        msg[270] = 3; // a label at 270
        msg[290] = 0xC1;
        msg[291] = 0x0E; // -> 270
        msg[295] = 0xC0;
        msg[296] = 0x0C; // -> 12
        assert_eq!(far_pointers(&msg), vec![(290, 0xC1, 0x0E)]);
        assert!(pointer_note(&msg).contains("offset 290: bytes c1 0e"));
    }

    /// A DNS message event: a query to `to` (flags `flags`) or, when a
    /// section is given, the response answering it.
    fn message(
        index: u32,
        to: &str,
        name: &str,
        flags: u16,
        authority: &[&str],
    ) -> crate::trace::Event {
        response(index, to, name, flags, [&[], authority, &[]])
    }

    /// Like [`message`], with the answer, authority and additional sections.
    fn response(
        index: u32,
        to: &str,
        name: &str,
        flags: u16,
        sections: [&[&str]; 3],
    ) -> crate::trace::Event {
        let out = sections.iter().any(|s| !s.is_empty());
        let mut raw = vec![0u8; 12];
        raw[2..4].copy_from_slice(&flags.to_be_bytes());
        let text = |s: &[&str]| s.iter().map(ToString::to_string).collect();
        crate::trace::Event {
            at: Duration::from_millis(u64::from(index) * 10 + u64::from(out)),
            kind: EventKind::DnsMessage {
                server: "dns".into(),
                dir: if out { Dir::Out } else { Dir::In },
                transport: crate::trace::Transport::Udp,
                index,
                conn: None,
                peer: "127.0.0.1:40000".parse().unwrap(),
                local: format!("{to}:53").parse().unwrap(),
                len: raw.len(),
                raw,
                summary: Some(DnsSummary {
                    flags,
                    question: Some(crate::trace::DnsQuestion {
                        name: name.into(),
                        qtype: "A".into(),
                        qclass: "IN".into(),
                    }),
                    answers: text(sections[0]),
                    authority: text(sections[1]),
                    additional: text(sections[2]),
                    ..DnsSummary::default()
                }),
                fault: None,
            },
        }
    }

    /// Queries and responses: `(to, name, [answer, authority, additional])`.
    fn exchanges(steps: &[(&str, &str, [&[&str]; 3])]) -> Vec<crate::trace::Event> {
        let mut events = Vec::new();
        for (i, (to, name, sections)) in steps.iter().enumerate() {
            let n = i as u32 + 1;
            events.push(message(n, to, name, 0, &[]));
            events.push(response(n, to, name, 0x8000, *sections));
        }
        events
    }

    const COM: &str = "com. 3600 IN NS a.gtld-servers.net.";
    const COM_GLUE: &str = "a.gtld-servers.net. 3600 IN A 127.0.0.3";
    const EXAMPLE: &str = "example.com. 3600 IN NS ns1.example.com.";
    const EXAMPLE_GLUE: &str = "ns1.example.com. 3600 IN A 127.0.0.4";

    fn judge_caches(events: Vec<crate::trace::Event>) -> Verdict {
        let lab = lab();
        let case = lab.cases.iter().find(|c| c.id.value == "caches").unwrap();
        let lab = lab.for_case(case);
        let trace = crate::trace::Trace { events };
        caches(
            &lab.checks[0],
            &Ctx {
                trace: &trace,
                lab: &lab,
            },
        )
    }

    #[test]
    fn a_second_name_at_the_root_is_a_cache_miss_and_one_at_its_zone_is_not() {
        let first: Vec<(&str, &str, [&[&str]; 3])> = vec![
            ("127.0.0.2", "www.example.com.", [&[], &[COM], &[COM_GLUE]]),
            (
                "127.0.0.3",
                "www.example.com.",
                [&[], &[EXAMPLE], &[EXAMPLE_GLUE]],
            ),
            (
                "127.0.0.4",
                "www.example.com.",
                [&["www.example.com. 300 IN A 10.0.0.1"], &[], &[]],
            ),
        ];
        let mail = [&["mail.example.com. 300 IN A 10.0.0.25"][..], &[], &[]];
        let mut cached = first.clone();
        cached.push(("127.0.0.4", "mail.example.com.", mail));
        assert_eq!(
            judge_caches(exchanges(&cached)).status,
            crate::outcome::Status::Pass
        );
        let mut again = first.clone();
        again.push(("127.0.0.2", "mail.example.com.", [&[], &[COM], &[COM_GLUE]]));
        let v = judge_caches(exchanges(&again));
        assert_eq!(v.status, crate::outcome::Status::Fail);
        let m = v.message.unwrap();
        assert!(
            m.contains("query udp #4")
                && m.contains("127.0.0.2 (the root)")
                && m.contains("TTL 3600 s"),
            "{m}"
        );
    }

    #[test]
    fn looking_up_a_name_server_whose_glue_came_is_charged_to_uses_glue_alone() {
        let steps: Vec<(&str, &str, [&[&str]; 3])> = vec![
            ("127.0.0.2", "www.example.com.", [&[], &[COM], &[COM_GLUE]]),
            (
                "127.0.0.2",
                "a.gtld-servers.net.",
                [&[], &["net. 3600 IN NS a.gtld-servers.net."], &[COM_GLUE]],
            ),
        ];
        let v = judge(exchanges(&steps), uses_glue);
        assert_eq!(v.status, crate::outcome::Status::Fail);
        assert!(
            v.message
                .unwrap()
                .contains("a.gtld-servers.net.'s address, 127.0.0.3")
        );
        // The referral was not followed for want of glue's use: not follows-referrals' fault.
        assert_eq!(
            judge(exchanges(&steps), follows_referrals).status,
            crate::outcome::Status::Skip
        );
    }

    fn judge(events: Vec<crate::trace::Event>, check: fn(&CheckSpec, &Ctx) -> Verdict) -> Verdict {
        let lab = lab().for_case(&lab().cases[0]);
        let trace = crate::trace::Trace { events };
        check(
            &lab.checks[0],
            &Ctx {
                trace: &trace,
                lab: &lab,
            },
        )
    }

    #[test]
    fn a_query_with_rd_is_named_with_its_byte() {
        let com = "com. 3600 IN NS a.gtld-servers.net.";
        let v = judge(
            vec![
                message(1, "127.0.0.2", "www.example.com.", 0x0100, &[]),
                message(1, "127.0.0.2", "www.example.com.", 0x8100, &[com]),
            ],
            follows_referrals,
        );
        assert_eq!(v.status, crate::outcome::Status::Fail);
        let m = v.message.unwrap();
        assert!(
            m.contains("byte 2") && m.contains("0x01") && m.contains("127.0.0.2 (the root)"),
            "{m}"
        );
    }

    #[test]
    fn a_real_roots_address_starts_at_the_root_and_a_resolvers_does_not() {
        let first = |to: &str| {
            judge(
                vec![message(1, to, "www.example.com.", 0, &[])],
                starts_at_root,
            )
        };
        assert_eq!(first("198.41.0.4").status, crate::outcome::Status::Pass);
        assert_eq!(first("127.0.0.2").status, crate::outcome::Status::Pass);
        let v = first("8.8.8.8");
        assert_eq!(v.status, crate::outcome::Status::Fail);
        assert!(
            v.message
                .unwrap()
                .contains("8.8.8.8, which is not a root server")
        );
        let v = first("127.0.0.3");
        assert!(v.message.unwrap().contains("the TLD servers of com."));
    }

    #[test]
    fn summary_records_read_back() {
        let r = rrs(&["Example.com. 3600 IN NS ns1.example.com.".to_string()]);
        assert_eq!(r[0].owner, "example.com.");
        assert_eq!(r[0].ttl, 3600);
        assert_eq!(r[0].rtype, "NS");
    }
}
