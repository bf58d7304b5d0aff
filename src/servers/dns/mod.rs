//! The lab's DNS name servers: authoritative answers from zones in the lab
//! (RFC 1034, RFC 1035), over UDP and TCP, alone or as a hierarchy.
//!
//! A `dns` server holds the lab's zones ([`zone`]) and answers for them:
//!
//! - a name with records of the type asked: them, with AA set; MX and NS
//!   answers bring the addresses of their hosts in the additional section;
//! - a name with a CNAME: the CNAME, and, when its target is in a zone the
//!   server holds (another zone too), the target's records, chased through
//!   the chain (at most 8 links; a loop stops it);
//! - a name that does not exist: NXDOMAIN (RCODE 3), and one that exists
//!   without that type: NOERROR without answers (NODATA); both with the
//!   zone's SOA in the authority section, its TTL no more than the SOA's
//!   minimum (RFC 2308);
//! - a name below a delegation (NS records of a child zone): a referral,
//!   without AA: the NS records in the authority section, the addresses of
//!   those of them inside the zone (glue) in the additional section;
//! - a name in none of its zones: REFUSED.
//!
//! Replies echo the ID, the opcode, RD, CD and the question, and never set
//! RA (the servers do not recurse). EDNS, truncation and malformed queries
//! are handled as the capture's resolver handles them (see
//! [`super::resolver`]): a query with an OPT record gets one back, version
//! above 0 gets BADVERS; over UDP a reply larger than 512 octets (or than
//! the EDNS payload size) first loses its additional section (a referral
//! keeps its glue), then everything but the question, with TC set; a query
//! whose header reads and whose rest does not gets FORMERR, another opcode
//! NOTIMP, another class than IN REFUSED; datagrams shorter than a header,
//! and responses, get nothing (a TCP connection sending one is closed).
//! Over TCP (RFC 7766) messages carry the 2-octet length prefix, several per
//! connection, with an idle timeout.
//!
//! In a hierarchy each zone is served at the addresses of its own name
//! servers (root at 127.0.0.2, a TLD at 127.0.0.3 …): one socket per
//! address, and each query is answered by the server of the address it was
//! sent to, whichever socket received it (in a run's namespace all of port
//! 53 reaches the first one). A query for any other address (a hard-coded
//! real root server, `8.8.8.8`) is answered by the root.
//!
//! Faults ([`Faults`]) and the delay apply to queries over UDP, numbered
//! from 1 in order of arrival; each decision follows from the seed and the
//! number alone ([`decide`]). Every query and response is recorded raw and
//! decoded as an [`EventKind::DnsMessage`] (the first
//! [`MAX_RECORDED_QUERIES`] queries and their responses).

#[cfg(test)]
mod peers;
#[cfg(test)]
mod tests;
pub mod zone;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use super::resolver::{self, EDNS_PAYLOAD, RawHeader};
use super::udp::UdpServerSocket;
use crate::trace::{Dir, DnsQuestion, DnsSummary, EventKind, Recorder, Trace, Transport};
pub use zone::{Issue, Kind, Zones};

/// Queries recorded per server (with their responses) before it stops recording.
pub const MAX_RECORDED_QUERIES: u32 = 1000;
/// Bytes of each message the trace keeps.
pub const MAX_RECORDED_BYTES: usize = 4096;
/// Records of each section a summary lists.
const MAX_SUMMARY_RECORDS: usize = 32;
/// TCP connections served at once; further ones are closed at once.
const MAX_CONNECTIONS: usize = 32;
/// How long one TCP connection may last in all.
const MAX_SESSION: Duration = Duration::from_secs(60);
/// How long writing one reply to a TCP client may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Delayed replies waiting at once; a query arriving while this many wait
/// is answered at once.
const MAX_PENDING: usize = 256;
/// A reply sent later than this after it was due is recorded as late.
const LATE_NOTICE: Duration = Duration::from_millis(5);
/// What a wrong-ID response's ID differs from the query's by (XOR).
const WRONG_ID_MASK: u16 = 0x5a5a;

/// What a DNS server gets wrong on purpose, by query number (UDP, from 1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// The first this many queries get no answer.
    pub drop_first: u32,
    /// These first get a response with another ID (and decoy addresses,
    /// see [`decoy_addresses`]), then the right one.
    pub wrong_id: BTreeSet<u32>,
    /// These get a response cut off inside its first record instead.
    pub truncated: BTreeSet<u32>,
    /// These get a malformed response instead: a compression pointer
    /// pointing at itself.
    pub malformed: BTreeSet<u32>,
}

impl Faults {
    /// The faults a lab's `faults:` names (none without it).
    pub fn from_spec(spec: Option<&crate::spec::DnsFaults>) -> Faults {
        let Some(spec) = spec else {
            return Faults::default();
        };
        Faults {
            drop_first: spec.drop_first.unwrap_or(0),
            wrong_id: spec.wrong_id.iter().copied().collect(),
            truncated: spec.truncated.iter().copied().collect(),
            malformed: spec.malformed.iter().copied().collect(),
        }
    }
}

/// Settings of one DNS server (all its addresses).
#[derive(Clone, Debug)]
pub struct DnsConfig {
    /// Name in the trace.
    pub name: String,
    /// The zones, and where each is served.
    pub zones: Arc<Zones>,
    /// Delay range of answers over UDP (seeded per query).
    pub delay_min: Duration,
    /// Delay range of answers over UDP.
    pub delay_max: Duration,
    /// Seed of the delay draws.
    pub seed: u64,
    /// Faults over UDP.
    pub faults: Faults,
    /// How long a TCP connection may stay silent between queries.
    pub idle_timeout: Duration,
}

impl DnsConfig {
    /// A server named `name` for `zones`, answering at once, without faults,
    /// with a 10 s idle timeout on TCP.
    pub fn new(name: impl Into<String>, zones: Zones) -> Self {
        DnsConfig {
            name: name.into(),
            zones: Arc::new(zones),
            delay_min: Duration::ZERO,
            delay_max: Duration::ZERO,
            seed: 1,
            faults: Faults::default(),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// A response a fault replaces (or precedes) the answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A response with another ID, and decoy addresses, sent before the
    /// right one.
    WrongId,
    /// The answer cut off inside its first record, sent instead of it.
    Truncated,
    /// A response whose first record's name is a compression pointer to
    /// itself, sent instead of the answer.
    Malformed,
}

impl Fault {
    /// The name the trace gives it.
    pub fn name(self) -> &'static str {
        match self {
            Fault::WrongId => "wrong-id",
            Fault::Truncated => "truncated",
            Fault::Malformed => "malformed",
        }
    }
}

/// What the server does with UDP query `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// No answer at all.
    pub dropped: bool,
    /// How long the answer waits (whole milliseconds).
    pub delay: Duration,
    /// What is wrong with the response, if anything.
    pub fault: Option<Fault>,
}

/// What the server does with UDP query `index` (from 1). The delay comes
/// from a generator seeded by the seed and the index alone, as the pinger's
/// ([`super::pinger::decide`]): it never depends on timing or on other traffic.
pub fn decide(config: &DnsConfig, index: u32) -> Decision {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (u64::from(index) << 32));
    let span = config.delay_max.saturating_sub(config.delay_min);
    let delay = config.delay_min + span.mul_f64(rng.random::<f64>());
    let f = &config.faults;
    let fault = if f.malformed.contains(&index) {
        Some(Fault::Malformed)
    } else if f.truncated.contains(&index) {
        Some(Fault::Truncated)
    } else if f.wrong_id.contains(&index) {
        Some(Fault::WrongId)
    } else {
        None
    };
    Decision {
        dropped: index <= f.drop_first,
        delay: Duration::from_millis(delay.as_millis() as u64),
        fault,
    }
}

/// What the UDP and TCP sides of a server share.
#[derive(Debug)]
pub struct Shared {
    config: DnsConfig,
    recorder: Recorder,
    /// UDP queries so far.
    udp_queries: AtomicU32,
    /// TCP queries so far.
    tcp_queries: AtomicU32,
    /// Queries seen so far, both transports (for the recording cap).
    seen: AtomicU32,
    /// TCP connections so far.
    conns: AtomicU32,
    /// TCP connections being served now.
    open: AtomicU32,
}

impl Shared {
    /// The state of a server with `config`, recording into `recorder`.
    pub fn new(config: DnsConfig, recorder: Recorder) -> Arc<Shared> {
        Arc::new(Shared {
            config,
            recorder,
            udp_queries: AtomicU32::new(0),
            tcp_queries: AtomicU32::new(0),
            seen: AtomicU32::new(0),
            conns: AtomicU32::new(0),
            open: AtomicU32::new(0),
        })
    }

    /// How many TCP connections the server is serving now (a client that
    /// is gone still counts until its connection has been read to its end).
    pub fn tcp_open(&self) -> u32 {
        self.open.load(Ordering::Acquire)
    }

    /// Counts a query; whether it (and its responses) are recorded. Past
    /// the cap, the first time, says so.
    fn admit(&self) -> bool {
        let n = self
            .seen
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .unwrap_or(u32::MAX);
        if n == MAX_RECORDED_QUERIES && self.recorder.keeps() {
            self.recorder.record(EventKind::RecordingCapped {
                server: self.config.name.clone(),
                limit: MAX_RECORDED_QUERIES,
            });
        }
        n < MAX_RECORDED_QUERIES || !self.recorder.keeps()
    }

    /// Records a message at `at`.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        at: Duration,
        dir: Dir,
        transport: Transport,
        index: u32,
        conn: Option<u32>,
        peer: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
        fault: Option<Fault>,
    ) {
        self.recorder.record_at(
            at,
            EventKind::DnsMessage {
                server: self.config.name.clone(),
                dir,
                transport,
                index,
                conn,
                peer,
                local,
                raw: bytes[..bytes.len().min(MAX_RECORDED_BYTES)].to_vec(),
                len: bytes.len(),
                summary: summarize(bytes),
                fault: fault.map(|f| f.name().to_string()),
            },
        );
    }
}

/// Answers datagrams on `socket`, each from the address it was sent to and
/// as the server of that address, until `stop` fires; then records the
/// queries the kernel still holds (sent before the program ended) and
/// returns without answering them.
pub async fn serve_udp(
    socket: UdpServerSocket,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; 65536];
    let mut pending: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            received = socket.recv_timed(&mut buf) => {
                // ICMP errors surface here; they say nothing about the next datagram.
                let Ok(got) = received else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                while pending.try_join_next().is_some() {}
                let recorder = &shared.recorder;
                let arrived = got.arrived.map_or_else(|| recorder.now(), |t| recorder.at_wall(t));
                let query = buf[..got.len].to_vec();
                let index = shared.udp_queries.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                let recorded = shared.admit();
                if recorded {
                    shared.record(arrived, Dir::In, Transport::Udp, index, None, got.peer, got.local, &query, None);
                }
                let zones = &shared.config.zones;
                let Some(reply) = respond(zones, got.local, &query, Transport::Udp) else {
                    continue;
                };
                let decision = decide(&shared.config, index);
                let server = shared.config.name.clone();
                if decision.dropped {
                    if recorded {
                        recorder.record_at(arrived, EventKind::Dropped { server, index });
                    }
                    continue;
                }
                let send = Send { shared: shared.clone(), socket: socket.clone(), index, peer: got.peer, local: got.local, recorded };
                if decision.delay.is_zero() || pending.len() >= MAX_PENDING {
                    send.reply(reply, decision.fault, None).await;
                } else {
                    if recorded {
                        recorder.record_at(arrived, EventKind::Delayed { server, index, delay: decision.delay });
                    }
                    let due = arrived + decision.delay;
                    pending.spawn(async move {
                        let wait = due.saturating_sub(send.shared.recorder.now());
                        tokio::time::sleep(wait).await;
                        send.reply(reply, decision.fault, Some(due)).await;
                    });
                }
            }
            _ = stop.changed() => break,
        }
    }
    pending.abort_all();
    while let Ok(got) = socket.try_recv_timed(&mut buf) {
        let recorder = &shared.recorder;
        let arrived = got
            .arrived
            .map_or_else(|| recorder.now(), |t| recorder.at_wall(t));
        let index = shared
            .udp_queries
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if shared.admit() {
            let query = &buf[..got.len];
            shared.record(
                arrived,
                Dir::In,
                Transport::Udp,
                index,
                None,
                got.peer,
                got.local,
                query,
                None,
            );
        }
    }
}

/// Where a UDP reply goes, and what to record of it.
struct Send {
    shared: Arc<Shared>,
    socket: Arc<UdpServerSocket>,
    index: u32,
    peer: SocketAddr,
    local: SocketAddr,
    recorded: bool,
}

impl Send {
    /// Sends `reply` (after a wrong-ID copy, or replaced by a damaged one,
    /// as `fault` says), recording each datagram; `due` is when it was due,
    /// if it waited.
    async fn reply(self, reply: Vec<u8>, fault: Option<Fault>, due: Option<Duration>) {
        let datagrams: Vec<(Vec<u8>, Option<Fault>)> = match fault {
            None => vec![(reply, None)],
            Some(Fault::WrongId) => vec![
                (damage(&reply, Fault::WrongId), Some(Fault::WrongId)),
                (reply, None),
            ],
            Some(f) => vec![(damage(&reply, f), Some(f))],
        };
        let recorder = self.shared.recorder.clone();
        for (bytes, fault) in datagrams {
            let at = recorder.now();
            let sent = self.socket.send_from(&bytes, self.peer, self.local).await;
            if sent.is_ok() && self.recorded {
                self.shared.record(
                    at,
                    Dir::Out,
                    Transport::Udp,
                    self.index,
                    None,
                    self.peer,
                    self.local,
                    &bytes,
                    fault,
                );
            }
        }
        if let Some(due) = due {
            let late = recorder.now().saturating_sub(due);
            if late > LATE_NOTICE && self.recorded {
                recorder.record(EventKind::LateReply {
                    server: self.shared.config.name.clone(),
                    index: self.index,
                    late,
                });
            }
        }
    }
}

/// Accepts TCP connections on `listener`, each served as its own task,
/// until the task is aborted (which ends every connection too).
pub async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    let mut sessions = JoinSet::new();
    loop {
        let (stream, peer) = super::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        if sessions.len() >= MAX_CONNECTIONS {
            continue; // dropping the stream closes it
        }
        let conn = shared
            .conns
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        shared.open.fetch_add(1, Ordering::AcqRel);
        let open = Open(shared.clone());
        sessions.spawn(async move {
            session(open.0.clone(), stream, peer, conn).await;
            drop(open);
        });
    }
}

/// A connection being served: counted in [`Shared::tcp_open`] until dropped
/// (when its session ends, or is aborted with the server).
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers the queries of one connection in order until the client closes,
/// goes quiet, or sends what cannot be answered.
async fn session(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr, conn: u32) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let local = SocketAddr::new(local.ip().to_canonical(), local.port());
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let end = Instant::now() + MAX_SESSION;
    loop {
        let idle = end.min(Instant::now() + shared.config.idle_timeout);
        let Ok(Some(query)) = timeout_at(idle, resolver::read_message(&mut stream)).await else {
            break;
        };
        let index = shared
            .tcp_queries
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let recorded = shared.admit();
        let at = shared.recorder.now();
        if recorded {
            shared.record(
                at,
                Dir::In,
                Transport::Tcp,
                index,
                Some(conn),
                peer,
                local,
                &query,
                None,
            );
        }
        let Some(reply) = respond(&shared.config.zones, local, &query, Transport::Tcp) else {
            break;
        };
        let mut framed = Vec::with_capacity(2 + reply.len());
        framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        framed.extend_from_slice(&reply);
        let at = shared.recorder.now();
        if !matches!(
            timeout(WRITE_TIMEOUT, stream.write_all(&framed)).await,
            Ok(Ok(()))
        ) {
            break;
        }
        if recorded {
            shared.record(
                at,
                Dir::Out,
                Transport::Tcp,
                index,
                Some(conn),
                peer,
                local,
                &reply,
                None,
            );
        }
    }
    let _ = timeout(WRITE_TIMEOUT, stream.shutdown()).await;
}

/// The reply to `query`, sent to `to` over `transport`, if it gets one: not
/// when it is shorter than a header or is a response.
pub fn respond(
    zones: &Zones,
    to: SocketAddr,
    query: &[u8],
    transport: Transport,
) -> Option<Vec<u8>> {
    let header = RawHeader::read(query)?;
    if header.response {
        return None;
    }
    let request = if header.counts_fit(query.len()) {
        Message::from_vec(query).ok()
    } else {
        None
    };
    let edns = request.as_ref().and_then(|r| r.edns.as_ref());
    let limit = resolver::limit(edns, transport);
    if header.opcode != 0 {
        // Other opcodes give the sections other meanings: echo what reads.
        let question = request.as_ref().and_then(|r| r.queries.first().cloned());
        return refuse(&header, question, edns, ResponseCode::NotImp, limit);
    }
    let Some(request) = request.as_ref() else {
        return refuse(
            &header,
            resolver::first_question(query),
            None,
            ResponseCode::FormErr,
            limit,
        );
    };
    let question = request.queries.first().cloned();
    if request.queries.len() != 1 {
        return refuse(&header, question, edns, ResponseCode::FormErr, limit);
    }
    if edns.is_some_and(|e| e.version() > 0) {
        return refuse(&header, question, edns, ResponseCode::BADVERS, limit);
    }
    let q = &request.queries[0];
    if !matches!(q.query_class(), DNSClass::IN | DNSClass::ANY) {
        return refuse(&header, question, edns, ResponseCode::Refused, limit);
    }
    let view = zones.view_for(to.ip());
    let found = zones.lookup(view, q.name(), q.query_type());
    let mut reply = reply_to(&header, edns);
    reply.metadata.response_code = match found.kind {
        Kind::NxDomain => ResponseCode::NXDomain,
        Kind::Refused => ResponseCode::Refused,
        _ => ResponseCode::NoError,
    };
    reply.metadata.authoritative = found.authoritative;
    reply.add_query(q.clone());
    reply.add_answers(found.answers);
    reply.add_authorities(found.authority);
    reply.add_additionals(found.additional);
    let keep_glue = found.kind == Kind::Referral;
    match fit(reply.clone(), limit, keep_glue) {
        Some(bytes) => Some(bytes),
        // Too large even for TCP: say so rather than send nothing.
        None => refuse(
            &header,
            Some(q.clone()),
            edns,
            ResponseCode::ServFail,
            limit,
        ),
    }
}

/// A reply without data: `rcode`, the question echoed when known.
fn refuse(
    header: &RawHeader,
    question: Option<Query>,
    edns: Option<&Edns>,
    rcode: ResponseCode,
    limit: usize,
) -> Option<Vec<u8>> {
    let mut reply = reply_to(header, edns);
    reply.metadata.op_code = OpCode::from_u8(header.opcode);
    reply.metadata.response_code = rcode;
    if let Some(q) = question {
        reply.add_query(q);
    }
    fit(reply, limit, false)
}

/// A response to `header`'s query with its ID, RD and CD (never RA), and an
/// OPT record if the query had one.
fn reply_to(header: &RawHeader, edns: Option<&Edns>) -> Message {
    let mut reply = Message::response(header.id, OpCode::Query);
    reply.metadata.recursion_desired = header.rd;
    reply.metadata.checking_disabled = header.cd;
    reply.metadata.recursion_available = false;
    if let Some(theirs) = edns {
        let mut ours = Edns::new();
        ours.set_max_payload(EDNS_PAYLOAD);
        ours.set_version(0);
        ours.set_dnssec_ok(theirs.flags().dnssec_ok);
        reply.set_edns(ours);
    }
    reply
}

/// `reply` encoded within `limit` octets: whole if it fits; else without
/// its additional section (unless `keep_additional`: a referral's glue);
/// else only its question, with TC set. `None` if it cannot be encoded.
fn fit(mut reply: Message, limit: usize, keep_additional: bool) -> Option<Vec<u8>> {
    let bytes = reply
        .to_vec()
        .ok()
        .filter(|b| b.len() <= usize::from(u16::MAX));
    if let Some(bytes) = bytes.as_ref().filter(|b| b.len() <= limit) {
        return Some(bytes.clone());
    }
    if !keep_additional && !reply.additionals.is_empty() {
        reply.additionals.clear();
        if let Some(bytes) = reply.to_vec().ok().filter(|b| b.len() <= limit) {
            return Some(bytes);
        }
    }
    if bytes.is_none() && limit >= usize::from(u16::MAX) {
        return None;
    }
    reply.answers.clear();
    reply.authorities.clear();
    reply.additionals.clear();
    reply.metadata.truncation = true;
    reply.to_vec().ok().filter(|b| b.len() <= limit)
}

/// Where the question of `message` ends (12 when it has none or it does not read).
fn question_end(message: &[u8]) -> usize {
    if message.len() <= 12 || u16::from_be_bytes([message[4], message[5]]) == 0 {
        return message.len().min(12);
    }
    let mut decoder = BinDecoder::new(&message[12..]);
    match Query::read(&mut decoder) {
        Ok(_) => 12 + decoder.index(),
        Err(_) => 12,
    }
}

/// `reply` damaged as `fault` says.
pub fn damage(reply: &[u8], fault: Fault) -> Vec<u8> {
    let mut out = reply.to_vec();
    if out.len() < 12 {
        return out;
    }
    match fault {
        Fault::WrongId => {
            let id = u16::from_be_bytes([out[0], out[1]]) ^ WRONG_ID_MASK;
            out[..2].copy_from_slice(&id.to_be_bytes());
            // A decoy: what a client that takes it prints is not the answer.
            decoy_addresses(&mut out);
        }
        Fault::Truncated => {
            // The counts stay as they were: the message ends inside the
            // first record they announce (or inside the question).
            let q = question_end(&out);
            let rest = out.len() - q;
            let cut = if rest > 0 {
                q + (rest / 2).clamp(1, 6)
            } else {
                12 + (q - 12) / 2
            };
            out.truncate(cut.max(12));
            if out.len() == reply.len() {
                out.pop();
            }
        }
        Fault::Malformed => {
            // Header, question, then one answer whose name is a pointer to
            // itself: a decoder that follows pointers blindly never ends.
            let q = question_end(&out);
            out.truncate(q);
            let counts = [u16::from(q > 12), 1, 0, 0];
            for (i, c) in counts.iter().enumerate() {
                out[4 + 2 * i..6 + 2 * i].copy_from_slice(&c.to_be_bytes());
            }
            let at = out.len() as u16 & 0x3FFF;
            out.extend_from_slice(&(0xC000 | at).to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
    }
    out
}

/// Moves every address record of `message` elsewhere, in place: an A
/// record's address into 192.0.2.0/24 (TEST-NET-1, RFC 5737), keeping its
/// last octet, an AAAA's into 100::/64 (the discard prefix, RFC 6666),
/// keeping its last 8 octets. Lengths, names and counts stay as they were;
/// a message that does not read to its end is changed as far as it reads.
pub fn decoy_addresses(message: &mut [u8]) {
    if message.len() < 12 {
        return;
    }
    let count = |i: usize| usize::from(u16::from_be_bytes([message[i], message[i + 1]]));
    let (questions, records) = (count(4), count(6) + count(8) + count(10));
    let mut at = 12;
    for _ in 0..questions {
        let Some(end) = skip_name(message, at) else {
            return;
        };
        at = end + 4;
    }
    for _ in 0..records {
        let Some(end) = skip_name(message, at) else {
            return;
        };
        let Some(fixed) = message.get(end..end + 10) else {
            return;
        };
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = end + 10;
        let Some(rdata) = message.get_mut(data..data + rdlen) else {
            return;
        };
        match (rtype, rdlen) {
            (1, 4) => rdata[..3].copy_from_slice(&[192, 0, 2]),
            (28, 16) => rdata[..8].copy_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]),
            _ => {}
        }
        at = data + rdlen;
    }
}

/// Where the name at `at` ends (after its zero octet or its pointer).
fn skip_name(message: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *message.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xC0 == 0xC0 => return (at + 2 <= message.len()).then_some(at + 2),
            l if l & 0xC0 != 0 => return None,
            l => at += 1 + usize::from(l),
        }
    }
}

/// The decoded fields of `message`, as far as it reads; `None` when it is
/// shorter than a header.
pub fn summarize(message: &[u8]) -> Option<DnsSummary> {
    let header = RawHeader::read(message)?;
    let mut summary = DnsSummary {
        id: header.id,
        flags: u16::from_be_bytes([message[2], message[3]]),
        counts: header.counts,
        question: resolver::first_question(message).map(|q| DnsQuestion {
            name: q.name().to_ascii(),
            qtype: resolver::show_type(q.query_type()),
            qclass: match q.query_class() {
                DNSClass::Unknown(c) => format!("CLASS{c}"),
                other => other.to_string(),
            },
        }),
        ..DnsSummary::default()
    };
    let decoded = if header.counts_fit(message.len()) {
        Message::from_vec(message).map_err(|e| e.to_string())
    } else {
        Err("the header announces more records than the message can hold".to_string())
    };
    match decoded {
        Ok(m) => {
            let text = |records: &[hickory_proto::rr::Record]| -> Vec<String> {
                records
                    .iter()
                    .take(MAX_SUMMARY_RECORDS)
                    .map(|r| r.to_string())
                    .collect()
            };
            summary.answers = text(&m.answers);
            summary.authority = text(&m.authorities);
            summary.additional = text(&m.additionals);
            summary.edns = m.edns.as_ref().map(|e| e.max_payload());
        }
        Err(e) => summary.error = Some(e),
    }
    Some(summary)
}

/// The response code's mnemonic.
fn rcode_text(rcode: u8) -> String {
    resolver::rcode_name(ResponseCode::from_low(rcode))
}

/// A message in one line, for the transcript and `serve`: for a query
/// `A www.example.com (rd)`, for a response `NOERROR aa, answer:
/// www.example.com. 300 A 10.0.0.1`. Names lower-cased when `lower` (a
/// client's letter case varies run to run).
pub fn describe_message(summary: Option<&DnsSummary>, len: usize, lower: bool) -> String {
    let Some(s) = summary else {
        return format!("not a DNS message ({len} bytes, shorter than a header)");
    };
    let case = |t: &str| {
        if lower {
            t.to_lowercase()
        } else {
            t.to_string()
        }
    };
    let question = s.question.as_ref().map_or_else(
        || "(no question)".to_string(),
        |q| {
            let class = if q.qclass == "IN" {
                String::new()
            } else {
                format!(" {}", q.qclass)
            };
            format!("{}{class} {}", q.qtype, case(&q.name))
        },
    );
    let mut flags: Vec<String> = Vec::new();
    if s.opcode() != 0 {
        flags.push(format!("opcode {}", s.opcode()));
    }
    for (on, name) in [
        (s.authoritative(), "aa"),
        (s.truncated(), "tc"),
        (s.recursion_desired(), "rd"),
        (s.recursion_available(), "ra"),
    ] {
        if on {
            flags.push(name.into());
        }
    }
    if let Some(size) = s.edns {
        flags.push(format!("edns {size}"));
    }
    let flags = flags.join(" ");
    if !s.response() {
        let mut line = format!("query {question}");
        if !flags.is_empty() {
            line.push_str(&format!(" ({flags})"));
        }
        if let Some(e) = &s.error {
            line.push_str(&format!(" — does not decode: {e}"));
        }
        return line;
    }
    let mut line = rcode_text(s.rcode());
    if !flags.is_empty() {
        line.push_str(&format!(" {flags}"));
    }
    if let Some(e) = &s.error {
        let [q, an, ns, ar] = s.counts;
        line.push_str(&format!(
            " for {question}; counts {q}/{an}/{ns}/{ar}; does not decode: {e}"
        ));
        return line;
    }
    for (name, records) in [
        ("answer", &s.answers),
        ("authority", &s.authority),
        ("additional", &s.additional),
    ] {
        if records.is_empty() {
            continue;
        }
        // Only the owner's case varies (the client's); the rest is the zone's.
        let shown: Vec<String> = records
            .iter()
            .take(4)
            .map(|r| match compact(r).split_once(' ') {
                Some((owner, rest)) => format!("{} {rest}", case(owner)),
                None => compact(r),
            })
            .collect();
        let more = records.len().saturating_sub(4);
        let more = if more > 0 {
            format!(" … {more} more")
        } else {
            String::new()
        };
        line.push_str(&format!(", {name}: {}{more}", shown.join("; ")));
    }
    line.chars().filter(|c| !c.is_control()).collect()
}

/// A record's text without its class: `www.example.com. 300 A 10.0.0.1`.
fn compact(record: &str) -> String {
    record.replacen(" IN ", " ", 1)
}

/// The transcript of server `server`: each query and what became of it, in
/// order, numbered as the server numbers them. Client ports, IDs and the
/// letter case of names are left out (they vary from run to run).
pub fn transcript(server: &str, trace: &Trace) -> Vec<String> {
    let mut lines = Vec::new();
    for e in &trace.events {
        match &e.kind {
            EventKind::DnsMessage {
                server: s,
                dir,
                transport,
                index,
                conn,
                local,
                len,
                summary,
                fault,
                ..
            } if s == server => {
                let who = match transport {
                    Transport::Tcp => format!("tcp #{index:<3}"),
                    Transport::Udp => format!("udp #{index:<3}"),
                };
                let text = describe_message(summary.as_ref(), *len, true);
                let line = match dir {
                    Dir::In => {
                        let over = conn.map_or(String::new(), |c| format!(" (connection {c})"));
                        format!("{who} -> {}{over}: {text}", local.ip())
                    }
                    Dir::Out => {
                        let why = match fault.as_deref() {
                            Some("wrong-id") => " [fault: a wrong ID, sent first]",
                            Some("truncated") => " [fault: cut short]",
                            Some("malformed") => " [fault: malformed, a pointer loop]",
                            _ => "",
                        };
                        format!("{who} <- {text}{why}")
                    }
                };
                lines.push(line);
            }
            EventKind::Dropped { server: s, index } if s == server => {
                lines.push(format!("udp #{index:<3}    dropped (no answer)"));
            }
            EventKind::Delayed {
                server: s,
                index,
                delay,
            } if s == server => {
                lines.push(format!(
                    "udp #{index:<3}    answer delayed {} ms",
                    delay.as_millis()
                ));
            }
            EventKind::RecordingCapped { server: s, limit } if s == server => {
                lines.push(format!(
                    "…    more than {limit} queries; the rest are not recorded"
                ));
            }
            _ => {}
        }
    }
    lines
}

/// What a server does, for people: its zones and where each is served,
/// its delay and its faults.
pub fn describe(config: &DnsConfig) -> String {
    let zones = &config.zones;
    let mut parts = Vec::new();
    if zones.hierarchy {
        let at: Vec<String> = zones
            .views
            .iter()
            .map(|v| {
                let names: Vec<String> = v
                    .zones
                    .iter()
                    .map(|i| zone::show(&zones.zones[*i].origin))
                    .collect();
                format!(
                    "{} at {}",
                    names.join(" "),
                    v.addr.map_or("every address".into(), |a| a.to_string())
                )
            })
            .collect();
        parts.push(format!(
            "a hierarchy of {}: {}",
            count(zones.zones.len(), "zone"),
            at.join(", ")
        ));
    } else {
        let names: Vec<String> = zones.zones.iter().map(|z| zone::show(&z.origin)).collect();
        parts.push(format!(
            "authoritative for {} ({})",
            count(zones.zones.len(), "zone"),
            names.join(", ")
        ));
    }
    let (min, max) = (
        crate::spec::Dur(config.delay_min),
        crate::spec::Dur(config.delay_max),
    );
    if !max.get().is_zero() {
        parts.push(if min == max {
            format!("answers over UDP after {min}")
        } else {
            format!("answers over UDP after {min}–{max} (seed {})", config.seed)
        });
    }
    let f = &config.faults;
    let list = |set: &BTreeSet<u32>| {
        set.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if f.drop_first > 0 {
        parts.push(format!(
            "drops the first {} quer{}",
            f.drop_first,
            if f.drop_first == 1 { "y" } else { "ies" }
        ));
    }
    if !f.wrong_id.is_empty() {
        parts.push(format!(
            "answers queries {} with a wrong ID first",
            list(&f.wrong_id)
        ));
    }
    if !f.truncated.is_empty() {
        parts.push(format!(
            "answers queries {} with a cut-short datagram",
            list(&f.truncated)
        ));
    }
    if !f.malformed.is_empty() {
        parts.push(format!(
            "answers queries {} with a malformed datagram",
            list(&f.malformed)
        ));
    }
    parts.join(", ")
}

/// `1 zone`, `3 zones`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The settings a lab's spec entry describes, with the run's seed.
pub fn config(spec: &crate::spec::ServerSpec, seed: u64) -> DnsConfig {
    let hierarchy = spec.hierarchy.unwrap_or(false);
    let (zones, _issues) = zone::build(spec.zones.as_deref().unwrap_or_default(), hierarchy);
    let delay = spec.delay.unwrap_or_default();
    DnsConfig {
        delay_min: delay.min.get(),
        delay_max: delay.max.get(),
        seed,
        faults: Faults::from_spec(spec.faults.as_ref()),
        ..DnsConfig::new(&spec.name, zones)
    }
}
