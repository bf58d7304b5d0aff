//! Zone data: a lab's zones read from its spec, checked, indexed, and the
//! lookups of an authoritative name server over them (RFC 1034 §4.3.2).
//!
//! Names follow master-file rules (RFC 1035 §5.1): `www` is relative to the
//! zone's origin, `@` is the origin, a name ending in `.` is absolute. The
//! same [`build`] serves the spec's validation (every [`Issue`] points at a
//! field of a zone or record) and the server (which only ever gets zones
//! that validated).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::spec::{DnsType, ZoneSpec};

/// TTL of records when neither they nor their zone give one.
pub const DEFAULT_TTL: u32 = 3600;
/// Longest TXT value a record may hold, in bytes.
pub const MAX_TXT: usize = 4096;
/// CNAME records followed in one answer before the chain is cut.
const MAX_CHAIN: usize = 8;
/// TTL of the root hints' records (as in the real `named.root`).
const HINTS_TTL: u32 = 3_600_000;

/// A problem with a lab's zone data, and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The zone (index in `zones`), if the problem is in one.
    pub zone: Option<usize>,
    /// The record (index in the zone's `records`), if in one.
    pub record: Option<usize>,
    /// The field at fault: `origin`, `name`, `type`, `value`, `records`, or
    /// the server's `hierarchy`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

/// One zone, indexed by owner name.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The origin (absolute).
    pub origin: Name,
    /// Its SOA record: the lab's, or one made up (`ns.<origin>
    /// hostmaster.<origin> 1 3600 600 86400 <ttl>`).
    pub soa: Record,
    /// Records by owner name (names compare without regard to case), in
    /// the order the lab gives them.
    pub nodes: BTreeMap<Name, Vec<Record>>,
}

/// Where zones are served: one address (or every address) and the zones
/// the server there holds.
#[derive(Clone, Debug)]
pub struct View {
    /// The address, in a hierarchy; `None`: every address.
    pub addr: Option<Ipv4Addr>,
    /// Indexes into [`Zones::zones`].
    pub zones: Vec<usize>,
}

/// A DNS server's zones and where each is served.
#[derive(Clone, Debug, Default)]
pub struct Zones {
    /// The zones, in the lab's order.
    pub zones: Vec<Zone>,
    /// Where they are served: one view for every address, or (a hierarchy)
    /// one per address, the root's first.
    pub views: Vec<View>,
    /// Whether the zones form a hierarchy (one server per address).
    pub hierarchy: bool,
}

/// What a lookup found, for the trace and the transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Records of the name (possibly after CNAMEs).
    Answer,
    /// A delegation to the name servers of a child zone.
    Referral,
    /// The name exists, without records of the type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The name is in none of this server's zones.
    Refused,
}

/// The records of an answer, section by section.
#[derive(Clone, Debug)]
pub struct Found {
    /// What kind of answer it is.
    pub kind: Kind,
    /// Whether the server answers with authority (AA).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section.
    pub additional: Vec<Record>,
}

impl Found {
    fn new(kind: Kind) -> Found {
        Found {
            kind,
            authoritative: kind != Kind::Refused && kind != Kind::Referral,
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }
}

/// What a zone holds for a name.
enum Node<'z> {
    /// The name's records.
    Records(&'z [Record]),
    /// The name is at or below a delegation point: the cut's name.
    Delegated(&'z Name),
    /// The name has no records but names below it do (an empty non-terminal).
    Empty,
    /// Nothing at or below the name.
    Missing,
}

impl Zone {
    /// What the zone holds at `name` (which is in it).
    fn node(&self, name: &Name) -> Node<'_> {
        let depth = usize::from(self.origin.num_labels());
        for labels in depth + 1..=usize::from(name.num_labels()) {
            let above = name.trim_to(labels);
            if let Some(records) = self.nodes.get(&above)
                && records.iter().any(|r| r.record_type() == RecordType::NS)
            {
                return Node::Delegated(self.nodes.get_key_value(&above).expect("present").0);
            }
        }
        match self.nodes.get(name) {
            Some(records) => Node::Records(records),
            None if self.nodes.keys().any(|k| k != name && name.zone_of(k)) => Node::Empty,
            None => Node::Missing,
        }
    }

    /// The SOA record as a negative answer carries it (RFC 2308 §5: its TTL
    /// no more than its minimum field).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(data) = &soa.data {
            soa.ttl = soa.ttl.min(data.minimum);
        }
        soa
    }

    /// The A and AAAA records at `name`, glue below a delegation included.
    fn addresses(&self, name: &Name) -> Vec<Record> {
        self.nodes
            .get(name)
            .map(|rs| {
                rs.iter()
                    .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Zones {
    /// The view that answers queries sent to `addr`: the view of that
    /// address, else the first (in a hierarchy the root's, so a client that
    /// hard-codes a real root server's address reaches the lab's root).
    pub fn view_for(&self, addr: IpAddr) -> &View {
        let v4 = match addr.to_canonical() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        };
        self.views
            .iter()
            .find(|v| v.addr.is_some() && v.addr == v4)
            .or_else(|| self.views.first())
            .expect("a server has at least one view")
    }

    /// The deepest zone of `view` that `name` is in.
    fn zone_of<'z>(&'z self, view: &View, name: &Name) -> Option<&'z Zone> {
        view.zones
            .iter()
            .map(|i| &self.zones[*i])
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// The answer of the server at `view` to a question for `qname` of
    /// type `qtype` (class IN).
    pub fn lookup(&self, view: &View, qname: &Name, qtype: RecordType) -> Found {
        if matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
            return Found::new(Kind::Refused);
        }
        let Some(mut zone) = self.zone_of(view, qname) else {
            return Found::new(Kind::Refused);
        };
        let mut found = Found::new(Kind::Answer);
        let mut name = qname.clone();
        let mut chain: Vec<Name> = Vec::new();
        loop {
            match zone.node(&name) {
                Node::Delegated(cut) => {
                    if chain.is_empty() {
                        return self.referral(zone, cut);
                    }
                    // A CNAME into a delegated zone: the resolver goes on from there.
                    break;
                }
                Node::Missing => {
                    found.kind = Kind::NxDomain;
                    found.authority.push(zone.negative_soa());
                    break;
                }
                Node::Empty => {
                    found.kind = Kind::NoData;
                    found.authority.push(zone.negative_soa());
                    break;
                }
                Node::Records(records) => {
                    let first = chain.is_empty();
                    let owner = |r: &Record| {
                        let mut r = r.clone();
                        // The first name as the client wrote it (0x20 case and all).
                        if first {
                            r.name = qname.clone();
                        }
                        r
                    };
                    let cname = records
                        .iter()
                        .find(|r| r.record_type() == RecordType::CNAME);
                    if let Some(cname) = cname
                        && !matches!(qtype, RecordType::CNAME | RecordType::ANY)
                    {
                        found.answers.push(owner(cname));
                        chain.push(name.clone());
                        let RData::CNAME(CNAME(target)) = &cname.data else {
                            break;
                        };
                        if chain.len() >= MAX_CHAIN || chain.contains(target) {
                            break;
                        }
                        // The target in a zone this server holds: chased.
                        match self.zone_of(view, target) {
                            Some(next) => (zone, name) = (next, target.clone()),
                            None => break,
                        }
                        continue;
                    }
                    let matching: Vec<Record> = records
                        .iter()
                        .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                        .map(owner)
                        .collect();
                    if matching.is_empty() {
                        found.kind = Kind::NoData;
                        found.authority.push(zone.negative_soa());
                    } else {
                        found.answers.extend(matching);
                    }
                    break;
                }
            }
        }
        found.additional = self.additional(view, &found.answers);
        found
    }

    /// A referral from `zone` to the child zone cut at `cut`: its NS records
    /// in the authority section, and the addresses of those within `zone`
    /// (glue) in the additional section. Name servers outside `zone` get no
    /// glue: a resolver looks their addresses up on its own.
    fn referral(&self, zone: &Zone, cut: &Name) -> Found {
        let mut found = Found::new(Kind::Referral);
        let ns: Vec<&Record> = zone.nodes[cut]
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .collect();
        for r in &ns {
            found.authority.push((*r).clone());
            if let RData::NS(NS(target)) = &r.data
                && zone.origin.zone_of(target)
            {
                for glue in zone.addresses(target) {
                    if !found.additional.contains(&glue) {
                        found.additional.push(glue);
                    }
                }
            }
        }
        found
    }

    /// The additional section for `answers`: the addresses of mail
    /// exchangers and name servers, from the zones of `view`.
    fn additional(&self, view: &View, answers: &[Record]) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        for r in answers {
            let target = match &r.data {
                RData::MX(mx) => &mx.exchange,
                RData::NS(NS(target)) => target,
                _ => continue,
            };
            // Authoritative data or glue: whatever address the zone has.
            let Some(zone) = self.zone_of(view, target) else {
                continue;
            };
            for a in zone.addresses(target) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The root hints of a hierarchy, as a `named.root` file: the root
    /// zone's name servers and their addresses. `None` without a root zone.
    pub fn root_hints(&self) -> Option<String> {
        let root = self.zones.iter().find(|z| z.origin.is_root())?;
        let mut out = String::from(
            "; Root hints of this lab's DNS hierarchy: the root zone's name servers\n\
             ; and their addresses, as in a named.root file.\n",
        );
        for target in apex_ns(root) {
            out.push_str(&format!(".\t{HINTS_TTL}\tIN\tNS\t{target}\n"));
        }
        for target in apex_ns(root) {
            for ip in self.addresses_anywhere(&target) {
                let rtype = if ip.is_ipv4() { "A" } else { "AAAA" };
                out.push_str(&format!("{target}\t{HINTS_TTL}\tIN\t{rtype}\t{ip}\n"));
            }
        }
        Some(out)
    }

    /// Every address any zone gives `name` (authoritative data or glue).
    fn addresses_anywhere(&self, name: &Name) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for zone in &self.zones {
            for r in zone.addresses(name) {
                let ip = match r.data {
                    RData::A(A(v4)) => IpAddr::V4(v4),
                    RData::AAAA(AAAA(v6)) => IpAddr::V6(v6),
                    _ => continue,
                };
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
        out
    }
}

/// The names of `zone`'s own name servers (its NS records at the origin).
fn apex_ns(zone: &Zone) -> Vec<Name> {
    zone.nodes
        .get(&zone.origin)
        .into_iter()
        .flatten()
        .filter_map(|r| match &r.data {
            RData::NS(NS(target)) => Some(target.clone()),
            _ => None,
        })
        .collect()
}

/// `a` or `an`, before a record type's mnemonic.
fn article(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::A | RecordType::AAAA | RecordType::MX | RecordType::NS | RecordType::SOA => {
            "an"
        }
        _ => "a",
    }
}

/// A name as messages show it: absolute, with its final dot.
pub fn show(name: &Name) -> String {
    let mut name = name.clone();
    name.set_fqdn(true);
    name.to_ascii()
}

/// `text` read as a name relative to `origin` (master-file rules).
fn parse_name(text: &str, origin: &Name) -> Result<Name, (String, String)> {
    let text = text.trim();
    if text == "@" {
        return Ok(origin.clone());
    }
    if text.is_empty() {
        return Err((
            "a name is empty".into(),
            "write a name such as `www`, `@` for the zone's origin, or `www.example.com.`".into(),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        let help = if c == '*' {
            "wildcard names are not supported: list each name".to_string()
        } else {
            "a name is made of letters, digits, `-` and `_`, in labels separated by dots".into()
        };
        return Err((
            format!("`{text}` is not a domain name: it holds {c:?}"),
            help,
        ));
    }
    if text.contains("..") || (text.starts_with('.') && text != ".") {
        return Err((
            format!("`{text}` is not a domain name: it has an empty label"),
            "labels are separated by single dots".into(),
        ));
    }
    let name = Name::parse(text, Some(origin)).map_err(|e| {
        (
            format!("`{text}` is not a domain name: {e}"),
            "labels have at most 63 characters, names at most 255".into(),
        )
    })?;
    // `ns1.example.com` without its final dot, in zone example.com, is
    // ns1.example.com.example.com.: almost always a forgotten dot.
    let bare = show(origin);
    let bare = bare.trim_end_matches('.');
    if !text.ends_with('.')
        && !origin.is_root()
        && (text.eq_ignore_ascii_case(bare)
            || text
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", bare.to_ascii_lowercase())))
    {
        return Err((
            format!(
                "`{text}` has no final dot, so it is relative to the zone's origin: it names `{}`",
                show(&name)
            ),
            format!(
                "write `{text}.` (with the final dot) for the name itself, or the part before the origin (`{}`)",
                text[..text.len() - bare.len()]
                    .trim_end_matches('.')
                    .if_empty("@")
            ),
        ));
    }
    Ok(name.to_lowercase())
}

/// `""` as something else.
trait IfEmpty {
    fn if_empty<'a>(&'a self, other: &'a str) -> &'a str;
}

impl IfEmpty for str {
    fn if_empty<'a>(&'a self, other: &'a str) -> &'a str {
        if self.is_empty() { other } else { self }
    }
}

/// A number of seconds, plain or with units (`1h`, `30m`, `1d`).
fn seconds(text: &str) -> Option<u32> {
    text.parse::<u32>()
        .ok()
        .or_else(|| hickory_proto::serialize::txt::parse_ttl(text).ok())
        .filter(|s| *s <= crate::spec::schema::MAX_TTL)
}

/// The record data of `value` for a record of type `rtype` in `origin`.
fn parse_value(rtype: DnsType, value: &str, origin: &Name) -> Result<RData, (String, String)> {
    let text = value.trim();
    let fields: Vec<&str> = text.split_whitespace().collect();
    match rtype {
        DnsType::A => text
            .parse::<Ipv4Addr>()
            .map(|ip| RData::A(A(ip)))
            .map_err(|_| {
                let help = if text.parse::<Ipv6Addr>().is_ok() {
                    "that is an IPv6 address: give it `type: AAAA`".to_string()
                } else {
                    "e.g. `value: 10.0.0.1` (four numbers from 0 to 255)".to_string()
                };
                (format!("`{text}` is not an IPv4 address"), help)
            }),
        DnsType::AAAA => text
            .parse::<Ipv6Addr>()
            .map(|ip| RData::AAAA(AAAA(ip)))
            .map_err(|_| {
                let help = if text.parse::<Ipv4Addr>().is_ok() {
                    "that is an IPv4 address: give it `type: A`".to_string()
                } else {
                    "e.g. `value: 2001:db8::1`".to_string()
                };
                (format!("`{text}` is not an IPv6 address"), help)
            }),
        DnsType::NS | DnsType::CNAME => {
            if text.parse::<IpAddr>().is_ok() {
                return Err((
                    format!(
                        "{} {} record names a host, not an address: `{text}`",
                        if rtype == DnsType::NS { "an" } else { "a" },
                        rtype.name()
                    ),
                    "give the host's name (`ns1.example.com.`), and its address in an A record"
                        .into(),
                ));
            }
            if fields.len() != 1 {
                return Err((
                    format!(
                        "{} {} record holds one name, not `{text}`",
                        if rtype == DnsType::NS { "an" } else { "a" },
                        rtype.name()
                    ),
                    "e.g. `value: ns1.example.com.`".into(),
                ));
            }
            let target = parse_name(text, origin)?;
            Ok(match rtype {
                DnsType::NS => RData::NS(NS(target)),
                _ => RData::CNAME(CNAME(target)),
            })
        }
        DnsType::MX => {
            let (Some(pref), Some(host), None) = (fields.first(), fields.get(1), fields.get(2))
            else {
                return Err((
                    format!("an MX record holds a preference and a name, not `{text}`"),
                    "e.g. `value: \"10 mail.example.com.\"`".into(),
                ));
            };
            let Ok(pref) = pref.parse::<u16>() else {
                return Err((
                    format!("the MX preference `{pref}` is not a number from 0 to 65535"),
                    "e.g. `value: \"10 mail.example.com.\"`".into(),
                ));
            };
            if host.parse::<IpAddr>().is_ok() {
                return Err((
                    format!("an MX record names a host, not an address: `{host}`"),
                    "give the mail server's name, and its address in an A record".into(),
                ));
            }
            Ok(RData::MX(MX::new(pref, parse_name(host, origin)?)))
        }
        DnsType::SOA => {
            let example = "e.g. `value: \"ns1 hostmaster 1 3600 600 86400 300\"` (primary server, contact, serial, refresh, retry, expire, negative TTL)";
            if fields.len() != 7 {
                return Err((
                    format!(
                        "an SOA record holds 7 fields, `{text}` has {}",
                        fields.len()
                    ),
                    example.into(),
                ));
            }
            let mname = parse_name(fields[0], origin)?;
            let rname = parse_name(fields[1], origin)?;
            let mut numbers = [0u32; 5];
            for (n, field) in numbers.iter_mut().zip(&fields[2..]) {
                *n = seconds(field).ok_or_else(|| {
                    (
                        format!("the SOA field `{field}` is not a number of seconds"),
                        example.to_string(),
                    )
                })?;
            }
            let signed = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
            Ok(RData::SOA(SOA::new(
                mname,
                rname,
                numbers[0],
                signed(numbers[1]),
                signed(numbers[2]),
                signed(numbers[3]),
                numbers[4],
            )))
        }
        DnsType::TXT => {
            if value.len() > MAX_TXT {
                return Err((
                    format!(
                        "a TXT value of {} bytes is too long for this server (at most {MAX_TXT})",
                        value.len()
                    ),
                    "split it over several TXT records".into(),
                ));
            }
            let bytes = value.as_bytes();
            let strings: Vec<&[u8]> = if bytes.is_empty() {
                vec![b""]
            } else {
                bytes.chunks(255).collect()
            };
            Ok(RData::TXT(TXT::from_bytes(strings)))
        }
    }
}

/// Where one record came from: its zone and index.
#[derive(Clone, Copy, Debug)]
struct Origin {
    zone: usize,
    record: usize,
}

/// A record as built, with where it came from.
struct Built {
    record: Record,
    at: Origin,
}

/// Reads `specs` into zones served as one server (or, with `hierarchy`, a
/// server per address), with every problem found. Records at fault are left
/// out of the zones.
pub fn build(specs: &[ZoneSpec], hierarchy: bool) -> (Zones, Vec<Issue>) {
    let mut issues = Vec::new();
    let mut issue = |zone: Option<usize>,
                     record: Option<usize>,
                     field: &'static str,
                     (message, help): (String, String)| {
        issues.push(Issue {
            zone,
            record,
            field,
            message,
            help,
        })
    };
    let mut zones: Vec<Zone> = Vec::new();
    // Per zone, its records with where each came from, and its index in `specs`.
    let mut built: Vec<Vec<Built>> = Vec::new();
    let mut spec_of: Vec<usize> = Vec::new();
    for (z, spec) in specs.iter().enumerate() {
        let origin = match parse_origin(&spec.origin) {
            Ok(o) => o,
            Err(e) => {
                issue(Some(z), None, "origin", e);
                continue;
            }
        };
        if zones.iter().any(|other| other.origin == origin) {
            issue(
                Some(z),
                None,
                "origin",
                (
                    format!("two zones have the origin `{}`", show(&origin)),
                    "put all of a zone's records in one zone".into(),
                ),
            );
            continue;
        }
        let zone_ttl = spec.ttl.unwrap_or(DEFAULT_TTL);
        let mut records: Vec<Built> = Vec::new();
        for (i, r) in spec.records.iter().enumerate() {
            let owner = match parse_name(&r.name, &origin) {
                Ok(n) => n,
                Err(e) => {
                    issue(Some(z), Some(i), "name", e);
                    continue;
                }
            };
            if !origin.zone_of(&owner) {
                issue(
                    Some(z),
                    Some(i),
                    "name",
                    (
                        format!("`{}` is outside the zone `{}`", show(&owner), show(&origin)),
                        format!(
                            "a zone holds names at or below its origin; put this record in a zone of its own, or name it relative to `{}`",
                            show(&origin)
                        ),
                    ),
                );
                continue;
            }
            let data = match parse_value(r.rtype, &r.value, &origin) {
                Ok(d) => d,
                Err(e) => {
                    issue(Some(z), Some(i), "value", e);
                    continue;
                }
            };
            let record = Record::from_rdata(owner, r.ttl.unwrap_or(zone_ttl), data);
            records.push(Built {
                record,
                at: Origin { zone: z, record: i },
            });
        }
        let checked = check_zone(&origin, &records);
        for (at, field, e) in checked {
            issue(Some(at.zone), Some(at.record), field, e);
        }
        let soa = records
            .iter()
            .find(|b| b.record.record_type() == RecordType::SOA && b.record.name == origin)
            .map(|b| b.record.clone())
            .unwrap_or_else(|| made_up_soa(&origin, zone_ttl));
        let mut nodes: BTreeMap<Name, Vec<Record>> = BTreeMap::new();
        for b in &records {
            let at = nodes.entry(b.record.name.clone()).or_default();
            if !at.contains(&b.record) {
                at.push(b.record.clone());
            }
        }
        zones.push(Zone { origin, soa, nodes });
        built.push(records);
        spec_of.push(z);
    }
    let mut zones = Zones {
        views: vec![View {
            addr: None,
            zones: (0..zones.len()).collect(),
        }],
        zones,
        hierarchy,
    };
    if hierarchy {
        let (views, found) = hierarchy_views(&zones, &built, &spec_of);
        for (zone, record, field, e) in found {
            issue(zone, record, field, e);
        }
        if !views.is_empty() {
            zones.views = views;
        }
    }
    (zones, issues)
}

/// A zone's origin, always absolute.
fn parse_origin(text: &str) -> Result<Name, (String, String)> {
    let text = text.trim();
    let absolute = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    parse_name(&absolute, &Name::root()).map_err(|(m, _)| {
        (
            m,
            "e.g. `origin: example.com` (or `.` for the root zone)".into(),
        )
    })
}

/// The SOA a zone without one gets.
fn made_up_soa(origin: &Name, ttl: u32) -> Record {
    let at = |label: &str| {
        origin
            .prepend_label(label)
            .unwrap_or_else(|_| origin.clone())
    };
    let data = SOA::new(
        at("ns"),
        at("hostmaster"),
        1,
        3600,
        600,
        86400,
        ttl.min(DEFAULT_TTL),
    );
    Record::from_rdata(origin.clone(), ttl, RData::SOA(data))
}

/// The rules within one zone: one SOA, at the origin; a CNAME alone at its
/// name; below a delegation only the addresses of its name servers; glue
/// for a name server inside the zone it serves.
fn check_zone(origin: &Name, records: &[Built]) -> Vec<(Origin, &'static str, (String, String))> {
    let mut out = Vec::new();
    let cuts: Vec<&Name> = records
        .iter()
        .filter(|b| b.record.record_type() == RecordType::NS && b.record.name != *origin)
        .map(|b| &b.record.name)
        .collect();
    for (i, b) in records.iter().enumerate() {
        let r = &b.record;
        let rtype = r.record_type();
        if rtype == RecordType::SOA {
            if r.name != *origin {
                out.push((
                    b.at,
                    "name",
                    (
                        format!(
                            "an SOA record belongs at the zone's origin `{}`, not at `{}`",
                            show(origin),
                            show(&r.name)
                        ),
                        "write `name: \"@\"`".into(),
                    ),
                ));
            } else if records[..i]
                .iter()
                .any(|e| e.record.record_type() == RecordType::SOA && e.record.name == *origin)
            {
                out.push((
                    b.at,
                    "type",
                    (
                        "the zone has a second SOA record".into(),
                        "a zone has exactly one SOA record; keep one".into(),
                    ),
                ));
            }
        }
        // Each name with a CNAME has nothing else (RFC 1034 §3.6.2, RFC 2181 §10.1).
        if let Some(earlier) = records[..i].iter().find(|e| {
            e.record.name == r.name
                && (rtype == RecordType::CNAME || e.record.record_type() == RecordType::CNAME)
        }) {
            let (cname, other) = if rtype == RecordType::CNAME {
                (b, earlier)
            } else {
                (earlier, b)
            };
            let message = if cname.record.record_type() == other.record.record_type() {
                format!("`{}` has two CNAME records", show(&r.name))
            } else {
                format!(
                    "`{}` has a CNAME record and {} {} record: a name with a CNAME has no other data",
                    show(&r.name),
                    article(other.record.record_type()),
                    other.record.record_type()
                )
            };
            out.push((
                b.at,
                "type",
                (
                    message,
                    "an alias has no records of its own: put them at the canonical name, or drop the CNAME (RFC 1034 §3.6.2)".into(),
                ),
            ));
        }
        // Below a delegation the parent holds only glue (A and AAAA).
        let below = cuts
            .iter()
            .copied()
            .find(|c| c.zone_of(&r.name) && (r.name != **c || rtype != RecordType::NS));
        if let Some(cut) = below
            && !matches!(rtype, RecordType::A | RecordType::AAAA)
        {
            out.push((
                b.at,
                "name",
                (
                    format!(
                        "`{}` is inside `{}`, which this zone delegates (its NS records): only the addresses of its name servers belong here",
                        show(&r.name),
                        show(cut)
                    ),
                    format!(
                        "move the record to the zone `{}`, or remove the delegation",
                        show(cut)
                    ),
                ),
            ));
        }
        // A name server inside the zone it serves needs its address here (glue).
        if rtype == RecordType::NS
            && r.name != *origin
            && let RData::NS(NS(target)) = &r.data
            && r.name.zone_of(target)
            && !records.iter().any(|g| {
                g.record.name == *target
                    && matches!(g.record.record_type(), RecordType::A | RecordType::AAAA)
            })
        {
            out.push((
                b.at,
                "value",
                (
                    format!(
                        "the name server `{}` is inside the zone it serves (`{}`), but this zone has no address for it (glue)",
                        show(target),
                        show(&r.name)
                    ),
                    format!(
                        "add `{{ name: {}, type: A, value: … }}` to this zone, so a referral carries the address",
                        show(target)
                    ),
                ),
            ));
        }
    }
    out
}

/// Where each zone of a hierarchy is served: at the addresses of its own
/// name servers. With the problems found (no root; a zone served nowhere or
/// at an address that is not 127.x; a delegation that leads nowhere).
#[allow(clippy::type_complexity)]
fn hierarchy_views(
    zones: &Zones,
    built: &[Vec<Built>],
    spec_of: &[usize],
) -> (
    Vec<View>,
    Vec<(Option<usize>, Option<usize>, &'static str, (String, String))>,
) {
    let mut issues = Vec::new();
    if !zones.zones.iter().any(|z| z.origin.is_root()) {
        issues.push((
            None,
            None,
            "hierarchy",
            (
                "a hierarchy needs a root zone (`origin: .`), where resolution starts".to_string(),
                "add a zone with `origin: .` that delegates the top-level domains (NS records and their addresses)".to_string(),
            ),
        ));
    }
    let mut views: Vec<View> = Vec::new();
    // The root first, so it answers addresses no zone is served at.
    let mut order: Vec<usize> = (0..zones.zones.len()).collect();
    order.sort_by_key(|i| zones.zones[*i].origin.num_labels());
    for i in order {
        let zone = &zones.zones[i];
        let servers = apex_ns(zone);
        let addrs: Vec<IpAddr> = servers
            .iter()
            .flat_map(|s| zones.addresses_anywhere(s))
            .collect();
        let usable: Vec<Ipv4Addr> = addrs
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V4(v4) if v4.is_loopback() => Some(*v4),
                _ => None,
            })
            .collect();
        if usable.is_empty() {
            let (message, help) = if servers.is_empty() {
                (
                    format!(
                        "in a hierarchy each zone is served at the addresses of its name servers, and `{}` names none",
                        show(&zone.origin)
                    ),
                    "add `{ name: \"@\", type: NS, value: ns1.… }` and an A record (127.0.0.x) for that name".to_string(),
                )
            } else {
                let names: Vec<String> = servers.iter().map(show).collect();
                let why = if addrs.is_empty() {
                    "have no A record in the lab's zones".to_string()
                } else {
                    let shown: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
                    format!("are at {}, not at 127.x.x.x addresses", shown.join(", "))
                };
                (
                    format!(
                        "the zone `{}` is served nowhere: its name servers ({}) {why}",
                        show(&zone.origin),
                        names.join(", ")
                    ),
                    "give each name server an A record with a 127.x.x.x address (e.g. 127.0.0.2 for the root, 127.0.0.3 for a TLD, 127.0.0.4 below), in this zone or its parent".to_string(),
                )
            };
            issues.push((Some(spec_of[i]), None, "origin", (message, help)));
            continue;
        }
        for addr in usable {
            match views.iter_mut().find(|v| v.addr == Some(addr)) {
                Some(v) => v.zones.push(i),
                None => views.push(View {
                    addr: Some(addr),
                    zones: vec![i],
                }),
            }
        }
    }
    // Each delegation leads to a zone of the lab, served at (one of) the
    // addresses of the name servers it names.
    for (i, zone) in zones.zones.iter().enumerate() {
        for b in &built[i] {
            let r = &b.record;
            let RData::NS(NS(target)) = &r.data else {
                continue;
            };
            if r.name == zone.origin {
                continue;
            }
            let Some(child) = zones.zones.iter().position(|z| z.origin == r.name) else {
                issues.push((
                    Some(b.at.zone),
                    Some(b.at.record),
                    "name",
                    (
                        format!(
                            "`{}` delegates `{}`, but the lab has no zone `{}`: the referral would lead nowhere",
                            show(&zone.origin),
                            show(&r.name),
                            show(&r.name)
                        ),
                        format!("add a zone with `origin: {}`", show(&r.name)),
                    ),
                ));
                continue;
            };
            let at = zones.addresses_anywhere(target);
            let serves = at.iter().any(|ip| {
                views
                    .iter()
                    .any(|v| v.addr.map(IpAddr::V4) == Some(*ip) && v.zones.contains(&child))
            });
            if !serves && !at.is_empty() {
                let shown: Vec<String> = at.iter().map(IpAddr::to_string).collect();
                issues.push((
                    Some(b.at.zone),
                    Some(b.at.record),
                    "value",
                    (
                        format!(
                            "the delegation of `{}` names `{}` (at {}), which does not serve `{}`",
                            show(&r.name),
                            show(target),
                            shown.join(", "),
                            show(&r.name)
                        ),
                        format!(
                            "name one of the zone's own name servers (its NS records at `{}`)",
                            show(&r.name)
                        ),
                    ),
                ));
            } else if at.is_empty() {
                issues.push((
                    Some(b.at.zone),
                    Some(b.at.record),
                    "value",
                    (
                        format!(
                            "the name server `{}` of `{}` has no address in the lab's zones",
                            show(target),
                            show(&r.name)
                        ),
                        format!(
                            "add an A record (127.0.0.x) for `{}` to the zone it is in",
                            show(target)
                        ),
                    ),
                ));
            }
        }
    }
    (views, issues)
}
