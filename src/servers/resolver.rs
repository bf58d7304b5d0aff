//! The DNS server of a captured run: every name leads to the lab's servers.
//!
//! Programs are handed in with the names and name servers of the real world
//! hard-coded (`smtp.gmail.com`, `8.8.8.8`). In a captured run the program's
//! `/etc/resolv.conf` names this server and queries for any name server reach
//! it, and it answers for every name, authoritatively:
//!
//! - `A`: the lab's IPv4 addresses; `AAAA`: its IPv6 addresses, or no data.
//! - `MX`: one exchanger, `mx.<name>` (preference 10), whose addresses (the
//!   lab's) come in the additional section, so a client that looks up the
//!   mail exchanger first still gets there.
//! - `ANY`: the `A` and `AAAA` records.
//! - `PTR` for the reverse name of a lab address: the lab's host name
//!   (`netgrade.test`); other reverse names under `arpa.` do not exist
//!   (NXDOMAIN), except those above a lab address (RFC 8020).
//! - Names under `localhost.` (RFC 6761 §6.3): `127.0.0.1` and `::1`, and no
//!   data of other types; names under `invalid.` (§6.4) do not exist
//!   (NXDOMAIN), so a program's handling of a host that does not resolve
//!   can be graded.
//! - Anything else: no data (NOERROR without answers).
//!
//! A negative answer carries an SOA record in its authority section, so
//! resolvers can cache it (RFC 2308). Replies echo the ID, the opcode, RD, CD
//! and the question, and set QR, AA (on answers) and RA.
//!
//! The protocol: RFC 1035 over UDP, replying from the address the query was
//! sent to (see [`super::udp`]), and over TCP with the 2-octet length prefix,
//! several queries per connection and an idle timeout (RFC 7766). EDNS(0)
//! (RFC 6891): a query with an OPT record gets one back (version 0, payload
//! [`EDNS_PAYLOAD`], DO copied), a version above 0 gets BADVERS. Over UDP a
//! reply larger than 512 octets, or than the query's EDNS payload size, first
//! loses its additional section, then everything but the question, with TC
//! set (RFC 2181 §9). A query whose header is readable but the rest is not
//! gets FORMERR, an opcode other than QUERY gets NOTIMP, a class other than
//! IN (or ANY) gets REFUSED; datagrams shorter than a header, and responses,
//! are not answered (a connection sending one is closed).
//!
//! Every query is recorded as an [`EventKind::NameLookup`], at most
//! [`MAX_RECORDED_LOOKUPS`] per server, then one [`EventKind::RecordingCapped`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, MX, PTR, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use super::udp::UdpServerSocket;
use crate::trace::{EventKind, Recorder, Trace, Transport};

/// Queries recorded per server before it stops recording (a flooding client).
pub const MAX_RECORDED_LOOKUPS: u32 = 300;
/// The UDP payload size this server announces in its OPT records (the
/// DNS flag day 2020 default): the most it sends over UDP to an EDNS client.
pub const EDNS_PAYLOAD: u16 = 1232;
/// Largest UDP reply to a query without EDNS (RFC 1035 §4.2.1).
pub(super) const PLAIN_UDP_LIMIT: usize = 512;
/// TCP connections served at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// How long one TCP connection may last in all.
const MAX_SESSION: Duration = Duration::from_secs(60);
/// How long writing one reply to a TCP client may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Addresses of each family put in one answer.
const MAX_ADDRESSES: usize = 64;
/// The preference of the one MX record.
const MX_PREFERENCE: u16 = 10;
/// The label that makes a name's mail exchanger: `mx.<name>`.
const MX_LABEL: &str = "mx";

/// Settings of one DNS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolverConfig {
    /// Name in the trace.
    pub name: String,
    /// The lab's IPv4 addresses: every `A` answer (at most 64 are used).
    pub v4: Vec<Ipv4Addr>,
    /// The lab's IPv6 addresses: every `AAAA` answer (at most 64 are used).
    pub v6: Vec<Ipv6Addr>,
    /// TTL of every record, and of negative answers.
    pub ttl: u32,
    /// The name the lab's addresses map back to (`PTR`), also the SOA's
    /// primary server; if not a valid name, `netgrade.test`.
    pub hostname: String,
    /// How long a TCP connection may stay silent between queries.
    pub idle_timeout: Duration,
}

impl ResolverConfig {
    /// A server named `name` answering with these addresses, a TTL of 60 s,
    /// host name `netgrade.test`, and a 10 s idle timeout on TCP.
    pub fn new(name: impl Into<String>, v4: Vec<Ipv4Addr>, v6: Vec<Ipv6Addr>) -> Self {
        ResolverConfig {
            name: name.into(),
            v4,
            v6,
            ttl: 60,
            hostname: "netgrade.test".into(),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves queries on `udp` and `tcp` until the task is aborted (which ends
/// every connection too).
pub async fn run(
    udp: UdpServerSocket,
    tcp: TcpListener,
    config: ResolverConfig,
    recorder: Recorder,
) {
    let shared = Arc::new(Shared {
        zone: Zone::new(&config),
        config,
        recorder,
        recorded: AtomicU32::new(0),
    });
    tokio::join!(serve_udp(udp, shared.clone()), serve_tcp(tcp, shared));
}

/// What the UDP and TCP sides share.
struct Shared {
    config: ResolverConfig,
    zone: Zone,
    recorder: Recorder,
    /// Queries seen so far (recorded or not).
    recorded: AtomicU32,
}

impl Shared {
    /// Records a query and what was made of it, within the cap.
    fn record(&self, transport: Transport, from: SocketAddr, to: SocketAddr, outcome: Outcome) {
        let n = self
            .recorded
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .unwrap_or(u32::MAX);
        let server = self.config.name.clone();
        if n < MAX_RECORDED_LOOKUPS {
            self.recorder.record(EventKind::NameLookup {
                server,
                transport,
                from,
                to,
                name: outcome.name,
                qtype: outcome.qtype,
                rcode: outcome.rcode.map(rcode_name),
                answers: outcome.answers,
                truncated: outcome.truncated,
            });
        } else if n == MAX_RECORDED_LOOKUPS {
            self.recorder.record(EventKind::RecordingCapped {
                server,
                limit: MAX_RECORDED_LOOKUPS,
            });
        }
    }
}

/// Answers datagrams, each from the address it was sent to.
async fn serve_udp(socket: UdpServerSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, peer, local)) = socket.recv(&mut buf).await else {
            // Nothing a failed read says is about the next datagram; do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let outcome = respond(&shared.zone, &buf[..n], Transport::Udp);
        let reply = outcome.reply.clone();
        shared.record(Transport::Udp, peer, local, outcome);
        if let Some(reply) = reply {
            let _ = socket.send_from(&reply, peer, local).await;
        }
    }
}

/// Accepts TCP connections, each served as its own task.
async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        let (stream, peer) = super::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        if sessions.len() >= MAX_CONNECTIONS {
            continue; // dropping the stream closes it
        }
        sessions.spawn(session(shared.clone(), stream, peer));
    }
}

/// Answers the queries of one connection in order until the client closes,
/// goes quiet, or sends what cannot be answered.
async fn session(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let end = Instant::now() + MAX_SESSION;
    loop {
        let idle = end.min(Instant::now() + shared.config.idle_timeout);
        let Ok(Some(query)) = timeout_at(idle, read_message(&mut stream)).await else {
            break;
        };
        let outcome = respond(&shared.zone, &query, Transport::Tcp);
        let reply = outcome.reply.clone();
        shared.record(Transport::Tcp, peer, local, outcome);
        let Some(reply) = reply else { break };
        let mut framed = Vec::with_capacity(2 + reply.len());
        framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        framed.extend_from_slice(&reply);
        if !matches!(
            timeout(WRITE_TIMEOUT, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            break;
        }
    }
    let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
}

/// One length-prefixed message; `None` at the end of the stream or on an error.
pub(super) async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.ok()?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await.ok()?;
    Some(message)
}

/// The data every answer is made from, prepared once.
#[derive(Debug)]
struct Zone {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    ttl: u32,
    hostname: Name,
    /// The reverse names of the lab's addresses.
    reverse: Vec<Name>,
}

impl Zone {
    fn new(config: &ResolverConfig) -> Zone {
        let v4: Vec<Ipv4Addr> = config.v4.iter().copied().take(MAX_ADDRESSES).collect();
        let v6: Vec<Ipv6Addr> = config.v6.iter().copied().take(MAX_ADDRESSES).collect();
        let mut hostname = Name::from_ascii(&config.hostname)
            .ok()
            .filter(|n| !n.is_root())
            .unwrap_or_else(|| Name::from_ascii("netgrade.test.").expect("a valid name"));
        hostname.set_fqdn(true);
        let reverse = v4
            .iter()
            .map(|ip| Name::from(*ip))
            .chain(v6.iter().map(|ip| Name::from(*ip)))
            .collect();
        Zone {
            v4,
            v6,
            ttl: config.ttl,
            hostname,
            reverse,
        }
    }
}

/// What the server made of one query.
#[derive(Debug, Default)]
struct Outcome {
    /// The reply to send, if any.
    reply: Option<Vec<u8>>,
    /// The name asked for, as shown in the trace.
    name: String,
    /// The type asked for, as shown in the trace.
    qtype: String,
    /// The response code sent.
    rcode: Option<ResponseCode>,
    /// The answer records' data, as shown in the trace.
    answers: Vec<String>,
    /// Whether the reply was cut (TC).
    truncated: bool,
}

/// The header fields a reply echoes, read without trusting the rest.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawHeader {
    pub(super) id: u16,
    pub(super) response: bool,
    pub(super) opcode: u8,
    pub(super) rd: bool,
    pub(super) cd: bool,
    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT.
    pub(super) counts: [u16; 4],
}

impl RawHeader {
    /// The header of `message`, if it is long enough to have one.
    pub(super) fn read(message: &[u8]) -> Option<RawHeader> {
        let word = |i: usize| u16::from_be_bytes([message[i], message[i + 1]]);
        if message.len() < 12 {
            return None;
        }
        let flags = word(2);
        Some(RawHeader {
            id: word(0),
            response: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xF) as u8,
            rd: flags & 0x0100 != 0,
            cd: flags & 0x0010 != 0,
            counts: [word(4), word(6), word(8), word(10)],
        })
    }

    /// Whether `len` octets can hold what the counts announce (a question
    /// takes at least 5 octets, a record 11): decoding is then bounded by
    /// the input, whatever the counts say.
    pub(super) fn counts_fit(&self, len: usize) -> bool {
        let [q, an, ns, ar] = self.counts.map(usize::from);
        12 + 5 * q + 11 * (an + ns + ar) <= len
    }
}

/// The reply to `query` (if it gets one) and what to record of it.
fn respond(zone: &Zone, query: &[u8], transport: Transport) -> Outcome {
    let Some(header) = RawHeader::read(query) else {
        return Outcome::default();
    };
    if header.response {
        return Outcome::default();
    }
    let request = if header.counts_fit(query.len()) {
        Message::from_vec(query).ok()
    } else {
        None
    };
    if header.opcode != 0 {
        // Other opcodes give the sections other meanings: echo what reads.
        let question = request.as_ref().and_then(|r| r.queries.first().cloned());
        let edns = request.as_ref().and_then(|r| r.edns.as_ref());
        return refuse(&header, question, edns, ResponseCode::NotImp, transport);
    }
    let Some(request) = request else {
        return refuse(
            &header,
            first_question(query),
            None,
            ResponseCode::FormErr,
            transport,
        );
    };
    let question = request.queries.first().cloned();
    let edns = request.edns.as_ref();
    if request.queries.len() != 1 {
        return refuse(&header, question, edns, ResponseCode::FormErr, transport);
    }
    if edns.is_some_and(|e| e.version() > 0) {
        return refuse(&header, question, edns, ResponseCode::BADVERS, transport);
    }
    answer(zone, &header, &request.queries[0], edns, transport)
}

/// The question of a message that does not decode in full, if it does.
pub(super) fn first_question(query: &[u8]) -> Option<Query> {
    let header = RawHeader::read(query)?;
    if header.counts[0] == 0 {
        return None;
    }
    let mut decoder = BinDecoder::new(&query[12..]);
    Query::read(&mut decoder).ok()
}

/// A reply without data: `rcode`, the question echoed when known.
fn refuse(
    header: &RawHeader,
    question: Option<Query>,
    edns: Option<&Edns>,
    rcode: ResponseCode,
    transport: Transport,
) -> Outcome {
    let mut reply = reply_to(header, edns);
    reply.metadata.op_code = OpCode::from_u8(header.opcode);
    reply.metadata.response_code = rcode;
    let mut outcome = Outcome {
        rcode: Some(rcode),
        ..Outcome::default()
    };
    if let Some(q) = question {
        (outcome.name, outcome.qtype) = (show_name(q.name()), show_type(q.query_type()));
        reply.add_query(q);
    }
    finish(reply, limit(edns, transport), outcome)
}

/// A reply to a standard query of `question`.
fn answer(
    zone: &Zone,
    header: &RawHeader,
    question: &Query,
    edns: Option<&Edns>,
    transport: Transport,
) -> Outcome {
    let mut reply = reply_to(header, edns);
    let name = question.name();
    let data = lookup(zone, name, question.query_type(), question.query_class());
    reply.metadata.response_code = data.rcode;
    reply.metadata.authoritative = data.rcode != ResponseCode::Refused;
    let outcome = Outcome {
        name: show_name(name),
        qtype: show_type(question.query_type()),
        rcode: Some(data.rcode),
        answers: data.answers.iter().map(|r| show_data(&r.data)).collect(),
        ..Outcome::default()
    };
    if data.answers.is_empty() && data.rcode != ResponseCode::Refused {
        reply.add_authority(soa(zone, name));
    }
    reply.add_query(question.clone());
    reply.add_answers(data.answers);
    reply.add_additionals(data.additionals);
    finish(reply, limit(edns, transport), outcome)
}

/// A response to `header`'s query with its ID, RD and CD, RA set, and an
/// OPT record if the query had one.
fn reply_to(header: &RawHeader, edns: Option<&Edns>) -> Message {
    let mut reply = Message::response(header.id, OpCode::Query);
    reply.metadata.recursion_desired = header.rd;
    reply.metadata.checking_disabled = header.cd;
    reply.metadata.recursion_available = true;
    if let Some(theirs) = edns {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        ours.set_version(0);
        ours.set_dnssec_ok(theirs.flags().dnssec_ok);
        reply.set_edns(ours);
    }
    reply
}

/// The largest reply the client takes over `transport`.
pub(super) fn limit(edns: Option<&Edns>, transport: Transport) -> usize {
    match (transport, edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => PLAIN_UDP_LIMIT,
        (Transport::Udp, Some(e)) => {
            usize::from(e.max_payload().min(EDNS_PAYLOAD)).max(PLAIN_UDP_LIMIT)
        }
    }
}

/// Encodes `reply` within `limit` octets: without its additional records if
/// that is enough, else with only its question and TC set.
fn finish(mut reply: Message, limit: usize, mut outcome: Outcome) -> Outcome {
    let mut bytes = reply.to_vec().ok();
    if bytes.as_ref().is_some_and(|b| b.len() > limit) {
        reply.additionals.clear();
        bytes = reply.to_vec().ok();
    }
    if bytes.as_ref().is_none_or(|b| b.len() > limit) {
        reply.answers.clear();
        reply.authorities.clear();
        reply.metadata.truncation = true;
        outcome.truncated = true;
        bytes = reply.to_vec().ok();
    }
    outcome.reply = bytes.filter(|b| b.len() <= limit);
    outcome
}

/// Records answering one question.
#[derive(Debug)]
struct Data {
    rcode: ResponseCode,
    answers: Vec<Record>,
    additionals: Vec<Record>,
}

impl Data {
    /// NOERROR with these answers.
    fn found(answers: Vec<Record>) -> Data {
        Data {
            rcode: ResponseCode::NoError,
            answers,
            additionals: Vec::new(),
        }
    }
}

/// What the zone holds for `name` of type `qtype`.
fn lookup(zone: &Zone, name: &Name, qtype: RecordType, class: DNSClass) -> Data {
    if class != DNSClass::IN && class != DNSClass::ANY {
        return Data {
            rcode: ResponseCode::Refused,
            answers: Vec::new(),
            additionals: Vec::new(),
        };
    }
    let arpa = Name::from_ascii("arpa.").expect("a valid name");
    if name.is_localhost() {
        let addresses = match qtype {
            RecordType::A => vec![IpAddr::from(Ipv4Addr::LOCALHOST)],
            RecordType::AAAA => vec![Ipv6Addr::LOCALHOST.into()],
            RecordType::ANY => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
            _ => Vec::new(),
        };
        return Data::found(address_records(name, &addresses, zone.ttl));
    }
    if arpa.zone_of(name) {
        return reverse(zone, name, qtype);
    }
    // RFC 6761 §6.4: names under `invalid.` never exist.
    let invalid = Name::from_ascii("invalid.").expect("a valid name");
    if invalid.zone_of(name) {
        return Data {
            rcode: ResponseCode::NXDomain,
            answers: Vec::new(),
            additionals: Vec::new(),
        };
    }
    let v4 = zone.v4.iter().map(|ip| IpAddr::from(*ip));
    let v6 = zone.v6.iter().map(|ip| IpAddr::from(*ip));
    let addresses: Vec<IpAddr> = match qtype {
        RecordType::A => v4.collect(),
        RecordType::AAAA => v6.collect(),
        RecordType::ANY => v4.chain(v6).collect(),
        RecordType::MX => return mail_exchanger(zone, name),
        _ => Vec::new(),
    };
    Data::found(address_records(name, &addresses, zone.ttl))
}

/// The one MX record of `name`, with the exchanger's addresses as additional records.
fn mail_exchanger(zone: &Zone, name: &Name) -> Data {
    // A name already at the length limit has no room for the label: no data.
    let Ok(exchange) = name.prepend_label(MX_LABEL) else {
        return Data::found(Vec::new());
    };
    let mx = Record::from_rdata(
        name.clone(),
        zone.ttl,
        RData::MX(MX::new(MX_PREFERENCE, exchange.clone())),
    );
    let addresses: Vec<IpAddr> = zone
        .v4
        .iter()
        .map(|ip| IpAddr::from(*ip))
        .chain(zone.v6.iter().map(|ip| IpAddr::from(*ip)))
        .collect();
    Data {
        rcode: ResponseCode::NoError,
        answers: vec![mx],
        additionals: address_records(&exchange, &addresses, zone.ttl),
    }
}

/// A name under `arpa.`: the PTR of a lab address, an empty ancestor of
/// one, or a name that does not exist.
fn reverse(zone: &Zone, name: &Name, qtype: RecordType) -> Data {
    if !zone.reverse.iter().any(|r| name.zone_of(r)) {
        return Data {
            rcode: ResponseCode::NXDomain,
            answers: Vec::new(),
            additionals: Vec::new(),
        };
    }
    let exact = zone.reverse.iter().any(|r| r == name);
    if exact && matches!(qtype, RecordType::PTR | RecordType::ANY) {
        let ptr = RData::PTR(PTR(zone.hostname.clone()));
        return Data::found(vec![Record::from_rdata(name.clone(), zone.ttl, ptr)]);
    }
    Data::found(Vec::new())
}

/// A and AAAA records of `name`.
fn address_records(name: &Name, addresses: &[IpAddr], ttl: u32) -> Vec<Record> {
    addresses
        .iter()
        .map(|ip| {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(*v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
            };
            Record::from_rdata(name.clone(), ttl, data)
        })
        .collect()
}

/// The SOA record of the zone `name` is in, for the authority section of a
/// negative answer. Every name outside `arpa.` and `localhost.` is the apex
/// of its own zone.
fn soa(zone: &Zone, name: &Name) -> Record {
    let apex = ["localhost.", "arpa."]
        .iter()
        .filter_map(|a| Name::from_ascii(a).ok())
        .find(|a| a.zone_of(name))
        .unwrap_or_else(|| name.clone());
    let contact = zone
        .hostname
        .prepend_label("hostmaster")
        .unwrap_or_else(|_| zone.hostname.clone());
    let ttl = i32::try_from(zone.ttl).unwrap_or(i32::MAX);
    let data = SOA::new(
        zone.hostname.clone(),
        contact,
        1,
        ttl,
        ttl,
        ttl.saturating_mul(10),
        zone.ttl,
    );
    Record::from_rdata(apex, zone.ttl, RData::SOA(data))
}

/// The DNS queries of a run as the transcript shows them: one line per
/// distinct query in order of first sight (a client's retries and its 0x20
/// letter case would make transcripts of the same program differ), then a
/// line for each server that stopped recording.
pub fn transcript(trace: &Trace) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut servers: Vec<&str> = Vec::new();
    for e in &trace.events {
        if let EventKind::NameLookup { server, .. } = &e.kind {
            let line = lookup_line(&e.kind);
            if !lines.contains(&line) {
                lines.push(line);
            }
            if !servers.contains(&server.as_str()) {
                servers.push(server);
            }
        }
    }
    for server in servers {
        if let Some(limit) = trace.capped(server) {
            lines.push(format!(
                "lookup: … more than {limit} queries to {server}; the rest are not recorded"
            ));
        }
    }
    lines
}

/// One lookup: `lookup: A smtp.gmail.com → 127.0.0.1 (UDP to 8.8.8.8)`.
fn lookup_line(event: &EventKind) -> String {
    let EventKind::NameLookup {
        transport,
        to,
        name,
        qtype,
        rcode,
        answers,
        truncated,
        ..
    } = event
    else {
        return String::new();
    };
    let question = if name.is_empty() {
        "(unreadable question)".to_string()
    } else {
        format!("{qtype} {}", name.to_lowercase())
    };
    let answer = match rcode.as_deref() {
        None => "not answered (not a DNS query)".to_string(),
        Some("NOERROR") if answers.is_empty() => "no data".to_string(),
        Some("NOERROR") => answers.join(", ").to_lowercase(),
        Some(code) => code.to_string(),
    };
    let cut = if *truncated { ", truncated" } else { "" };
    let line = format!(
        "lookup: {question} → {answer} ({} to {}{cut})",
        transport.name(),
        to.ip()
    );
    line.chars().filter(|c| !c.is_control()).collect()
}

/// A name as the trace shows it: without the final dot, `.` for the root.
fn show_name(name: &Name) -> String {
    let text = name.to_ascii();
    match text.strip_suffix('.') {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => text,
    }
}

/// A record type's mnemonic, or `TYPEnn` (RFC 3597).
pub(super) fn show_type(qtype: RecordType) -> String {
    match qtype {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        known => known.to_string(),
    }
}

/// Record data as the trace shows it.
fn show_data(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::MX(mx) => format!("{} {}", mx.preference, show_name(&mx.exchange)),
        RData::PTR(ptr) => show_name(&ptr.0),
        other => other.to_string(),
    }
}

/// A response code's mnemonic (RFC 6895 §2.3).
pub(super) fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::BADVERS => "BADVERS".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::MessageType;

    const LAB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

    fn zone() -> Zone {
        Zone::new(&ResolverConfig::new("dns", vec![LAB], Vec::new()))
    }

    /// A query for `name` of type `qtype`, with RD set and an ID of 0x1234.
    fn query(name: &str, qtype: RecordType) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m
    }

    /// Sends `message` over `transport` and decodes the reply.
    fn ask(zone: &Zone, message: &Message, transport: Transport) -> (Message, Outcome) {
        let outcome = respond(zone, &message.to_vec().unwrap(), transport);
        let reply = Message::from_vec(outcome.reply.as_ref().expect("a reply")).unwrap();
        (reply, outcome)
    }

    fn names(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {}", r.name, show_data(&r.data)))
            .collect()
    }

    #[test]
    fn an_address_query_gets_the_lab_with_the_header_echoed() {
        let (reply, outcome) = ask(
            &zone(),
            &query("Smtp.Gmail.com.", RecordType::A),
            Transport::Udp,
        );
        assert_eq!(reply.id, 0x1234);
        assert_eq!(reply.message_type, MessageType::Response);
        assert!(reply.authoritative && reply.recursion_desired && reply.recursion_available);
        assert!(!reply.truncation);
        assert_eq!(reply.response_code, ResponseCode::NoError);
        assert_eq!(
            reply.queries,
            query("Smtp.Gmail.com.", RecordType::A).queries
        );
        assert_eq!(names(&reply.answers), ["Smtp.Gmail.com. 127.0.0.1"]);
        assert!(reply.edns.is_none(), "no OPT unless the query had one");
        assert_eq!(
            (outcome.name.as_str(), outcome.qtype.as_str()),
            ("Smtp.Gmail.com", "A")
        );
        assert_eq!(outcome.answers, ["127.0.0.1"]);
    }

    #[test]
    fn no_ipv6_address_is_no_data_with_an_soa_for_negative_caching() {
        let (reply, outcome) = ask(
            &zone(),
            &query("pop.163.com.", RecordType::AAAA),
            Transport::Udp,
        );
        assert_eq!(reply.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
        assert_eq!(reply.authorities.len(), 1);
        let soa = &reply.authorities[0];
        assert_eq!(soa.name.to_ascii(), "pop.163.com.");
        let RData::SOA(data) = &soa.data else {
            panic!("{soa:?}")
        };
        assert_eq!(data.minimum, 60);
        assert_eq!(data.mname.to_ascii(), "netgrade.test.");
        assert!(outcome.answers.is_empty());
        let with_v6 = Zone::new(&ResolverConfig::new(
            "dns",
            vec![LAB],
            vec![Ipv6Addr::LOCALHOST],
        ));
        let (reply, _) = ask(
            &with_v6,
            &query("pop.163.com.", RecordType::AAAA),
            Transport::Udp,
        );
        assert_eq!(names(&reply.answers), ["pop.163.com. ::1"]);
    }

    #[test]
    fn mx_names_one_exchanger_whose_address_is_the_labs() {
        let (reply, _) = ask(
            &zone(),
            &query("gmail.com.", RecordType::MX),
            Transport::Udp,
        );
        assert_eq!(names(&reply.answers), ["gmail.com. 10 mx.gmail.com"]);
        assert_eq!(names(&reply.additionals), ["mx.gmail.com. 127.0.0.1"]);
        let (reply, _) = ask(
            &zone(),
            &query("mx.gmail.com.", RecordType::A),
            Transport::Udp,
        );
        assert_eq!(names(&reply.answers), ["mx.gmail.com. 127.0.0.1"]);
    }

    #[test]
    fn reverse_names_of_lab_addresses_only() {
        let (reply, _) = ask(
            &zone(),
            &query("1.0.0.127.in-addr.arpa.", RecordType::PTR),
            Transport::Udp,
        );
        assert_eq!(
            names(&reply.answers),
            ["1.0.0.127.in-addr.arpa. netgrade.test"]
        );
        let (reply, _) = ask(
            &zone(),
            &query("2.0.0.127.in-addr.arpa.", RecordType::PTR),
            Transport::Udp,
        );
        assert_eq!(reply.response_code, ResponseCode::NXDomain);
        assert_eq!(reply.authorities[0].name.to_ascii(), "arpa.");
        // An ancestor of a lab address exists (RFC 8020): no data, not NXDOMAIN.
        let (reply, _) = ask(
            &zone(),
            &query("0.127.in-addr.arpa.", RecordType::PTR),
            Transport::Udp,
        );
        assert_eq!(reply.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
    }

    #[test]
    fn localhost_names_are_loopback_whatever_the_lab() {
        let lab = Zone::new(&ResolverConfig::new(
            "dns",
            vec![Ipv4Addr::new(10, 9, 8, 7)],
            Vec::new(),
        ));
        let (reply, _) = ask(&lab, &query("db.localhost.", RecordType::A), Transport::Udp);
        assert_eq!(names(&reply.answers), ["db.localhost. 127.0.0.1"]);
        let (reply, _) = ask(&lab, &query("localhost.", RecordType::AAAA), Transport::Udp);
        assert_eq!(names(&reply.answers), ["localhost. ::1"]);
        let (reply, _) = ask(&lab, &query("localhost.", RecordType::MX), Transport::Udp);
        assert!(reply.answers.is_empty());
        assert_eq!(reply.authorities[0].name.to_ascii(), "localhost.");
        let (reply, _) = ask(&lab, &query("example.com.", RecordType::A), Transport::Udp);
        assert_eq!(names(&reply.answers), ["example.com. 10.9.8.7"]);
    }

    #[test]
    fn other_types_are_no_data_and_other_classes_refused() {
        for qtype in [
            RecordType::TXT,
            RecordType::NS,
            RecordType::CNAME,
            RecordType::Unknown(65),
        ] {
            let (reply, outcome) = ask(&zone(), &query("example.com.", qtype), Transport::Udp);
            assert_eq!(reply.response_code, ResponseCode::NoError, "{qtype}");
            assert!(reply.answers.is_empty());
            assert_eq!(reply.authorities.len(), 1);
            assert_ne!(outcome.qtype, "Unknown");
        }
        let mut chaos = query("version.bind.", RecordType::TXT);
        chaos.queries[0].set_query_class(DNSClass::CH);
        let (reply, _) = ask(&zone(), &chaos, Transport::Udp);
        assert_eq!(reply.response_code, ResponseCode::Refused);
        assert!(reply.authorities.is_empty());
    }

    #[test]
    fn edns_is_answered_with_opt_and_an_unknown_version_with_badvers() {
        let mut q = query("example.com.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        edns.set_dnssec_ok(true);
        q.set_edns(edns.clone());
        let (reply, _) = ask(&zone(), &q, Transport::Udp);
        let opt = reply.edns.as_ref().expect("an OPT record");
        assert_eq!((opt.max_payload(), opt.version()), (EDNS_PAYLOAD, 0));
        assert!(opt.flags().dnssec_ok, "DO is copied (RFC 3225)");
        edns.set_version(1);
        q.set_edns(edns);
        let (reply, outcome) = ask(&zone(), &q, Transport::Udp);
        // RCODE 16 (hickory reads it back as BADSIG, which shares the number).
        assert_eq!(u16::from(reply.response_code), 16);
        assert_eq!(reply.edns.as_ref().unwrap().version(), 0);
        assert!(reply.answers.is_empty());
        assert_eq!(outcome.rcode, Some(ResponseCode::BADVERS));
    }

    #[test]
    fn a_large_answer_is_truncated_over_udp_unless_edns_allows_it() {
        let many: Vec<Ipv4Addr> = (1..=40).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let lab = Zone::new(&ResolverConfig::new("dns", many, Vec::new()));
        let q = query("www.example.com.", RecordType::A);
        let (reply, outcome) = ask(&lab, &q, Transport::Udp);
        assert!(reply.truncation && outcome.truncated);
        assert!(reply.answers.is_empty());
        assert_eq!(reply.queries, q.queries);
        let (reply, _) = ask(&lab, &q, Transport::Tcp);
        assert!(!reply.truncation);
        assert_eq!(reply.answers.len(), 40);
        let mut big = q.clone();
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        big.set_edns(edns);
        let (reply, _) = ask(&lab, &big, Transport::Udp);
        assert!(!reply.truncation);
        assert_eq!(reply.answers.len(), 40);
        // Only the additional section does not fit: dropped, without TC.
        let (reply, outcome) = ask(&lab, &query("example.com.", RecordType::MX), Transport::Udp);
        assert!(!reply.truncation && !outcome.truncated);
        assert_eq!(reply.answers.len(), 1);
        assert!(reply.additionals.is_empty());
    }

    #[test]
    fn other_opcodes_get_notimp() {
        let mut q = query("example.com.", RecordType::A);
        q.metadata.op_code = OpCode::Status;
        let (reply, outcome) = ask(&zone(), &q, Transport::Udp);
        assert_eq!(reply.response_code, ResponseCode::NotImp);
        assert_eq!(reply.op_code, OpCode::Status);
        assert_eq!(reply.id, 0x1234);
        assert!(reply.answers.is_empty());
        assert_eq!(outcome.rcode, Some(ResponseCode::NotImp));
    }

    #[test]
    fn malformed_queries_get_formerr_when_the_header_reads_and_nothing_else() {
        let zone = zone();
        // Shorter than a header; a response: no reply.
        for bytes in [
            &b"\x12\x34\x01"[..],
            b"",
            &[0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let outcome = respond(&zone, bytes, Transport::Udp);
            assert!(
                outcome.reply.is_none() && outcome.rcode.is_none(),
                "{bytes:?}"
            );
        }
        // A header announcing 65535 questions in 12 octets; two questions;
        // a name that runs past the end.
        let mut two = query("a.example.", RecordType::A);
        two.add_query(Query::query(
            Name::from_ascii("b.example.").unwrap(),
            RecordType::A,
        ));
        let cut = query("example.com.", RecordType::A).to_vec().unwrap()[..20].to_vec();
        let cases = [
            vec![0xab, 0xcd, 0x01, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0, 0],
            two.to_vec().unwrap(),
            cut,
        ];
        for bytes in cases {
            let outcome = respond(&zone, &bytes, Transport::Udp);
            let reply = Message::from_vec(outcome.reply.as_ref().expect("FORMERR")).unwrap();
            assert_eq!(reply.response_code, ResponseCode::FormErr);
            assert_eq!(reply.id, u16::from_be_bytes([bytes[0], bytes[1]]));
            assert!(reply.recursion_desired);
            assert!(reply.answers.is_empty());
        }
    }

    #[test]
    fn lookups_are_recorded_up_to_the_cap_then_once_capped() {
        let rec = Recorder::new();
        let shared = Shared {
            zone: zone(),
            config: ResolverConfig::new("dns", vec![LAB], Vec::new()),
            recorder: rec.clone(),
            recorded: AtomicU32::new(0),
        };
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let to: SocketAddr = "8.8.8.8:53".parse().unwrap();
        let q = query("smtp.gmail.com.", RecordType::A).to_vec().unwrap();
        for _ in 0..MAX_RECORDED_LOOKUPS + 50 {
            shared.record(
                Transport::Udp,
                peer,
                to,
                respond(&shared.zone, &q, Transport::Udp),
            );
        }
        let trace = rec.snapshot();
        let lookups = trace
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::NameLookup { .. }))
            .count();
        assert_eq!(lookups, MAX_RECORDED_LOOKUPS as usize);
        assert_eq!(trace.capped("dns"), Some(MAX_RECORDED_LOOKUPS));
        assert_eq!(
            transcript(&trace),
            [
                "lookup: A smtp.gmail.com → 127.0.0.1 (UDP to 8.8.8.8)",
                "lookup: … more than 300 queries to dns; the rest are not recorded"
            ]
        );
    }

    #[test]
    fn the_transcript_shows_each_distinct_lookup_once() {
        let rec = Recorder::new();
        let lookup = |name: &str, qtype: &str, rcode: Option<&str>, answers: &[&str], transport| {
            rec.record(EventKind::NameLookup {
                server: "dns".into(),
                transport,
                from: "127.0.0.1:40000".parse().unwrap(),
                to: "127.0.0.53:53".parse().unwrap(),
                name: name.into(),
                qtype: qtype.into(),
                rcode: rcode.map(String::from),
                answers: answers.iter().map(|a| a.to_string()).collect(),
                truncated: false,
            })
        };
        lookup(
            "smtp.gmail.COM",
            "A",
            Some("NOERROR"),
            &["127.0.0.1"],
            Transport::Udp,
        );
        lookup(
            "smtp.gmail.com",
            "A",
            Some("NOERROR"),
            &["127.0.0.1"],
            Transport::Udp,
        );
        lookup(
            "smtp.gmail.com",
            "AAAA",
            Some("NOERROR"),
            &[],
            Transport::Udp,
        );
        lookup(
            "gmail.com",
            "MX",
            Some("NOERROR"),
            &["10 mx.gmail.com"],
            Transport::Tcp,
        );
        lookup("", "", Some("FORMERR"), &[], Transport::Udp);
        lookup("", "", None, &[], Transport::Udp);
        assert_eq!(
            transcript(&rec.snapshot()),
            [
                "lookup: A smtp.gmail.com → 127.0.0.1 (UDP to 127.0.0.53)",
                "lookup: AAAA smtp.gmail.com → no data (UDP to 127.0.0.53)",
                "lookup: MX gmail.com → 10 mx.gmail.com (TCP to 127.0.0.53)",
                "lookup: (unreadable question) → FORMERR (UDP to 127.0.0.53)",
                "lookup: (unreadable question) → not answered (not a DNS query) (UDP to 127.0.0.53)",
            ]
        );
    }
}

/// The server against clients nobody here wrote: dig, dnspython, glibc.
#[cfg(test)]
mod peers {
    use super::*;
    use crate::sandbox::NetNs;

    /// A resolver on port 53 of every address of a captured namespace.
    struct Server {
        ns: NetNs,
        rec: Recorder,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    /// `None` without the privileges for namespaces.
    fn start(v4: Vec<Ipv4Addr>) -> Option<Server> {
        let ns = super::super::udp::tests::capture_ns()?;
        let any: SocketAddr = "0.0.0.0:53".parse().unwrap();
        let udp = UdpServerSocket::bind(any, Some(&ns)).unwrap();
        let tcp = super::super::bind_tcp(any, Some(&ns)).unwrap();
        let rec = Recorder::new();
        let config = ResolverConfig::new("dns", v4, Vec::new());
        let task = tokio::spawn(run(udp, tcp, config, rec.clone()));
        Some(Server { ns, rec, task })
    }

    fn lab() -> Option<Server> {
        start(vec![Ipv4Addr::new(127, 0, 0, 1)])
    }

    impl Server {
        /// Runs `program` in the namespace and returns its standard output;
        /// it must succeed.
        async fn run(&self, program: &str, args: &[&str]) -> String {
            let mut cmd = self.ns.command(program);
            cmd.args(args);
            let output = timeout(Duration::from_secs(30), cmd.output())
                .await
                .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
                .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "{program} {args:?}: {stdout}{stderr}"
            );
            stdout
        }

        /// `dig` with one try and a deadline.
        async fn dig(&self, args: &[&str]) -> String {
            let mut all = vec!["+tries=1", "+time=10"];
            all.extend_from_slice(args);
            self.run("dig", &all).await
        }

        /// A Python script.
        async fn python(&self, script: &str) -> String {
            self.run("python3", &["-c", script]).await
        }

        /// The recorded lookups.
        fn lookups(&self) -> Vec<Seen> {
            self.rec
                .snapshot()
                .events
                .into_iter()
                .filter_map(|e| match e.kind {
                    EventKind::NameLookup {
                        transport,
                        to,
                        name,
                        qtype,
                        rcode,
                        ..
                    } => Some((transport, to, name, qtype, rcode)),
                    _ => None,
                })
                .collect()
        }
    }

    /// A recorded lookup: transport, to, name, type, rcode.
    type Seen = (Transport, SocketAddr, String, String, Option<String>);

    /// Whether `text` has a line whose fields are `fields`, whitespace aside.
    fn has_line(text: &str, fields: &str) -> bool {
        let want: Vec<&str> = fields.split_whitespace().collect();
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == want)
    }

    #[tokio::test]
    async fn dig_gets_the_lab_for_every_name_from_any_name_server() {
        let Some(server) = lab() else { return };
        let out = server
            .dig(&["@127.0.0.53", "-p", "53", "smtp.gmail.com", "A"])
            .await;
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains(";; flags: qr aa rd ra;"), "{out}");
        assert!(
            out.contains("; EDNS: version: 0, flags:; udp: 1232"),
            "{out}"
        );
        assert!(has_line(&out, "smtp.gmail.com. 60 IN A 127.0.0.1"), "{out}");
        // A hard-coded public name server: the reply comes from it.
        let out = server.dig(&["@8.8.8.8", "smtp.163.com", "A"]).await;
        assert!(has_line(&out, "smtp.163.com. 60 IN A 127.0.0.1"), "{out}");
        let out = server.dig(&["@127.0.0.53", "smtp.gmail.com", "AAAA"]).await;
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("ANSWER: 0, AUTHORITY: 1"), "{out}");
        assert!(
            has_line(
                &out,
                "smtp.gmail.com. 60 IN SOA netgrade.test. hostmaster.netgrade.test. 1 60 60 600 60"
            ),
            "{out}"
        );
        let out = server.dig(&["@127.0.0.53", "gmail.com", "MX"]).await;
        assert!(
            has_line(&out, "gmail.com. 60 IN MX 10 mx.gmail.com."),
            "{out}"
        );
        assert!(has_line(&out, "mx.gmail.com. 60 IN A 127.0.0.1"), "{out}");
        let out = server.dig(&["@127.0.0.53", "-x", "127.0.0.1"]).await;
        assert!(
            has_line(&out, "1.0.0.127.in-addr.arpa. 60 IN PTR netgrade.test."),
            "{out}"
        );
        let out = server.dig(&["@127.0.0.53", "-x", "192.0.2.1"]).await;
        assert!(out.contains("status: NXDOMAIN"), "{out}");
        let out = server
            .dig(&["@127.0.0.53", "no-such-host.invalid", "A"])
            .await;
        assert!(out.contains("status: NXDOMAIN"), "{out}");
        let seen: Vec<(Transport, SocketAddr, String, String)> = server
            .lookups()
            .into_iter()
            .map(|(t, to, name, qtype, ..)| (t, to, name, qtype))
            .collect();
        let to = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert_eq!(
            seen[0],
            (
                Transport::Udp,
                to("127.0.0.53:53"),
                "smtp.gmail.com".into(),
                "A".into()
            )
        );
        assert_eq!(
            seen[1],
            (
                Transport::Udp,
                to("8.8.8.8:53"),
                "smtp.163.com".into(),
                "A".into()
            )
        );
        assert_eq!(seen.len(), 7, "{seen:?}");
    }

    #[tokio::test]
    async fn dig_over_tcp_asks_several_questions_on_one_connection() {
        let Some(server) = lab() else { return };
        let out = server
            .dig(&[
                "+tcp",
                "+keepopen",
                "@127.0.0.53",
                "a.example",
                "A",
                "b.example",
                "MX",
            ])
            .await;
        assert!(has_line(&out, "a.example. 60 IN A 127.0.0.1"), "{out}");
        assert!(
            has_line(&out, "b.example. 60 IN MX 10 mx.b.example."),
            "{out}"
        );
        let trace = server.rec.snapshot();
        let from: Vec<SocketAddr> = trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::NameLookup {
                    transport: Transport::Tcp,
                    from,
                    ..
                } => Some(*from),
                _ => None,
            })
            .collect();
        assert_eq!(from.len(), 2, "{trace:?}");
        assert_eq!(from[0], from[1], "one connection");
    }

    #[tokio::test]
    async fn dig_sees_edns_opcodes_and_truncation_handled() {
        let many: Vec<Ipv4Addr> = (1..=40).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
        let Some(server) = start(many) else { return };
        let out = server.dig(&["+noedns", "@127.0.0.53", "a.example"]).await;
        assert!(!out.contains("OPT PSEUDOSECTION"), "{out}");
        assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
        assert!(out.contains("ANSWER: 40,"), "{out}");
        let out = server
            .dig(&["+noedns", "+ignore", "@127.0.0.53", "b.example"])
            .await;
        assert!(out.contains(";; flags: qr aa tc rd ra;"), "{out}");
        assert!(out.contains("ANSWER: 0,"), "{out}");
        let out = server
            .dig(&["+bufsize=600", "+ignore", "@127.0.0.53", "c.example"])
            .await;
        assert!(out.contains(";; flags: qr aa tc rd ra;"), "{out}");
        let out = server
            .dig(&["+bufsize=4096", "@127.0.0.53", "d.example"])
            .await;
        assert!(out.contains(";; flags: qr aa rd ra;"), "{out}");
        assert!(out.contains("ANSWER: 40,"), "{out}");
        let out = server
            .dig(&["+edns=1", "+noednsneg", "@127.0.0.53", "e.example"])
            .await;
        assert!(out.contains("status: BADVERS"), "{out}");
        let out = server
            .dig(&["+opcode=status", "@127.0.0.53", "f.example"])
            .await;
        assert!(out.contains("opcode: STATUS, status: NOTIMP"), "{out}");
    }

    #[tokio::test]
    async fn dnspython_resolves_through_the_server() {
        let Some(server) = lab() else { return };
        let out = server
            .python(
                r#"
import dns.resolver, dns.rdatatype
r = dns.resolver.Resolver(configure=False)
r.nameservers = ["8.8.8.8"]
r.lifetime = 10
print("A", [a.address for a in r.resolve("smtp.gmail.com", "A")])
try:
    r.resolve("smtp.gmail.com", "AAAA")
except dns.resolver.NoAnswer:
    print("AAAA none")
mx = r.resolve("gmail.com", "MX")
print("MX", [(m.preference, str(m.exchange)) for m in mx])
print("MX-A", [a.address for a in r.resolve(mx[0].exchange, "A")])
print("TCP", [a.address for a in r.resolve("pop.gmail.com", "A", tcp=True)])
print("PTR", [str(p) for p in r.resolve_address("127.0.0.1")])
try:
    r.resolve_address("192.0.2.7")
except dns.resolver.NXDOMAIN:
    print("PTR nxdomain")
"#,
            )
            .await;
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "A ['127.0.0.1']",
                "AAAA none",
                "MX [(10, 'mx.gmail.com.')]",
                "MX-A ['127.0.0.1']",
                "TCP ['127.0.0.1']",
                "PTR ['netgrade.test.']",
                "PTR nxdomain",
            ]
        );
    }

    #[tokio::test]
    async fn garbage_gets_formerr_or_nothing_and_the_server_goes_on() {
        let Some(server) = lab() else { return };
        let out = server
            .python(
                r#"
import socket, struct, dns.message, dns.rcode
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.connect(("127.0.0.53", 53))
s.send(b"junk")                                   # no header: no reply
s.send(bytes(12))                                 # a header with nothing to ask: FORMERR
s.send(b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc")  # a name cut short
s.send(b"\xbe\xef\x81\x80" + bytes(8))            # a response: no reply
s.send(dns.message.make_query("ok.example", "A", id=7).to_wire())
for _ in range(3):
    m = dns.message.from_wire(s.recv(4096))
    print("udp", m.id, dns.rcode.to_text(m.rcode()))
t = socket.create_connection(("127.0.0.53", 53), timeout=10)
def ask(wire):
    t.sendall(struct.pack("!H", len(wire)) + wire)
    n = struct.unpack("!H", t.recv(2, socket.MSG_WAITALL))[0]
    return dns.message.from_wire(t.recv(n, socket.MSG_WAITALL))
m = ask(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff")
print("tcp", m.id, dns.rcode.to_text(m.rcode()))
m = ask(dns.message.make_query("ok.example", "A", id=8).to_wire())
print("tcp", m.id, dns.rcode.to_text(m.rcode()), m.answer[0][0].address)
t.sendall(b"\x00\x03abc")                          # no header: the server closes
print("closed", t.recv(10) == b"")
"#,
            )
            .await;
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "udp 0 FORMERR",
                "udp 48879 FORMERR",
                "udp 7 NOERROR",
                "tcp 4660 FORMERR",
                "tcp 8 NOERROR 127.0.0.1",
                "closed True",
            ]
        );
        let unanswered = server.lookups().iter().filter(|l| l.4.is_none()).count();
        assert_eq!(unanswered, 3, "junk, the response, the 3 octets");
    }

    /// Runs `script` in a private mount namespace of the server's network
    /// namespace where /etc/resolv.conf names the server and the hosts
    /// database is `files dns`, as a captured run sees them.
    async fn with_glibc_config(server: &Server, script: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let resolv = dir.path().join("resolv.conf");
        let nsswitch = dir.path().join("nsswitch.conf");
        std::fs::write(
            &resolv,
            "nameserver 127.0.0.53\noptions timeout:5 attempts:1\n",
        )
        .unwrap();
        std::fs::write(&nsswitch, "hosts: files dns\n").unwrap();
        let script = format!(
            "mount --bind {} /etc/resolv.conf && mount --bind {} /etc/nsswitch.conf && {script}",
            resolv.display(),
            nsswitch.display()
        );
        server
            .run("unshare", &["--mount", "sh", "-c", &script])
            .await
    }

    #[tokio::test]
    async fn glibc_resolves_hard_coded_names_to_the_lab() {
        let Some(server) = lab() else { return };
        let out = with_glibc_config(&server, "getent ahosts smtp.gmail.com").await;
        assert!(has_line(&out, "127.0.0.1 STREAM smtp.gmail.com"), "{out}");
        assert!(out.lines().all(|l| l.starts_with("127.0.0.1 ")), "{out}");
        let out = with_glibc_config(
            &server,
            "python3 -c 'import socket; print(sorted({a[4][0] for a in socket.getaddrinfo(\"smtp.163.com\", 25)}))'",
        )
        .await;
        assert_eq!(out.trim(), "['127.0.0.1']");
        let seen: Vec<(SocketAddr, String, String)> = server
            .lookups()
            .into_iter()
            .map(|(_, to, name, qtype, ..)| (to, name, qtype))
            .collect();
        let to: SocketAddr = "127.0.0.53:53".parse().unwrap();
        for name in ["smtp.gmail.com", "smtp.163.com"] {
            for qtype in ["A", "AAAA"] {
                assert!(
                    seen.contains(&(to, name.into(), qtype.into())),
                    "{name} {qtype}: {seen:?}"
                );
            }
        }
    }
}
