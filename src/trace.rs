//! The event record of a run.
//!
//! Servers, the sandbox and probes append [`Event`]s through a [`Recorder`];
//! checks read the finished [`Trace`] and never touch sockets. Every event
//! carries its time since the start of the run, taken on netgrade's side.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::outcome::ExitKind;

/// Direction of a datagram, seen from the reference server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Received by the server.
    In,
    /// Sent by the server.
    Out,
}

/// Which output stream of the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Transport {
    /// `UDP` or `TCP`.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// Something that happened during a run.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// A UDP datagram to or from a reference server. `index` counts the
    /// datagrams the server received, from 1; a reply carries its request's index.
    Datagram {
        /// Server name from the spec.
        server: String,
        /// In (received) or out (sent).
        dir: Dir,
        /// The other end.
        peer: SocketAddr,
        /// Which received datagram this is, or answers.
        index: u32,
        /// The payload.
        data: Vec<u8>,
    },
    /// A reply left the server later than it was due (measured after the
    /// send, so time lost inside the send counts): evidence that netgrade's
    /// timing slipped. Only past a few milliseconds.
    LateReply {
        /// Server name.
        server: String,
        /// Which received datagram it answers.
        index: u32,
        /// How late.
        late: Duration,
    },
    /// The server dropped received datagram `index` on purpose (the
    /// pinger's, or a DNS server's query).
    Dropped {
        /// Server name.
        server: String,
        /// Index of the dropped datagram.
        index: u32,
    },
    /// The server will answer datagram `index` after `delay` (the pinger's,
    /// or a DNS server's query).
    Delayed {
        /// Server name.
        server: String,
        /// Index of the datagram.
        index: u32,
        /// The chosen delay.
        delay: Duration,
    },
    /// The server stopped recording datagrams (or session lines) because there were too many.
    RecordingCapped {
        /// Server name.
        server: String,
        /// How many were recorded.
        limit: u32,
    },
    /// The run's trace reached its cap of `limit` bytes of `budget`: events
    /// of that budget after this one were dropped (their count and bytes are
    /// kept up to date here as the run goes on).
    RecordingCut {
        /// What was cut.
        budget: Budget,
        /// The cap, in bytes.
        limit: u64,
        /// How many events were dropped.
        dropped: u64,
        /// How many bytes they held.
        dropped_bytes: u64,
    },
    /// Traffic on the run's network that no reference server was there to
    /// receive: a UDP datagram to another port, or a TCP connection attempt.
    Stray {
        /// UDP datagram or TCP SYN.
        transport: Transport,
        /// Sender.
        from: SocketAddr,
        /// Where it was going.
        to: SocketAddr,
    },
    /// The run's network captures hard-coded destinations (every address is
    /// local, names resolve to the lab, steering is in force): where the
    /// program sends is known.
    Capturing {
        /// Whether traffic for ports no server uses goes to the lab's servers.
        redirect_ports: bool,
    },
    /// Traffic the program sent to an address or port no server is bound to,
    /// which the capture handed to server `server` instead (a hard-coded
    /// `smtp.gmail.com:587`, a lab machine's IP, another handout's port).
    Captured {
        /// UDP datagram or TCP connection.
        transport: Transport,
        /// Sender.
        from: SocketAddr,
        /// Where the program sent it.
        to: SocketAddr,
        /// The server that answered in its place.
        server: String,
    },
    /// A reference server (e.g. `http`) read a whole request on connection `conn`.
    Request {
        /// Server name.
        server: String,
        /// Connection number, from 1, per server.
        conn: u32,
        /// The client.
        peer: SocketAddr,
        /// The request's bytes exactly as received (head and body), capped.
        raw: Vec<u8>,
    },
    /// A reference server answered on connection `conn`.
    Response {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// Status code sent.
        status: u16,
        /// The status line and headers exactly as sent.
        head: Vec<u8>,
        /// Body length sent.
        body_len: u64,
    },
    /// netgrade, as a client, ran probe `probe` against the student's server.
    Exchange {
        /// Probe id from the spec.
        probe: String,
        /// Bytes sent, exactly.
        sent: Vec<u8>,
        /// Bytes received, exactly (capped).
        received: Vec<u8>,
        /// How the exchange ended.
        end: ExchangeEnd,
        /// From connecting to the end.
        elapsed: Duration,
    },
    /// The student's server was found listening here (netgrade connects to it).
    Listening {
        /// The address netgrade's probes connect to.
        addr: SocketAddr,
        /// Every TCP address the program listened on.
        all: Vec<SocketAddr>,
    },
    /// A probe opened its connection and sends nothing on it until probe
    /// `until` has finished (its `Exchange` follows then).
    Holding {
        /// The held probe.
        probe: String,
        /// The probe run while it is held, if any.
        until: Option<String>,
    },
    /// What a probe's connection brought after its exchange was recorded:
    /// the answer to a request that had timed out while another connection
    /// was held, read once the held request was answered.
    LateResponse {
        /// Probe id.
        probe: String,
        /// Bytes received, exactly (capped).
        received: Vec<u8>,
        /// How the connection ended.
        end: ExchangeEnd,
    },
    /// An instance of the student's server ended (exited, or stopped
    /// listening and was stopped by netgrade) during probing.
    ServerEnded {
        /// The last probe whose request reached this instance; `None` when it
        /// ended before any did.
        probe: Option<String>,
        /// How it ended.
        exit: ExitKind,
        /// When that probe began: what the instance printed from then on (its
        /// `Output` events up to this one) is its traceback.
        since: Duration,
    },
    /// netgrade started the student's server again after it ended, with the
    /// same command in the same directory and network.
    ServerRestarted {
        /// Which restart, from 1.
        attempt: u32,
        /// Where the new instance listens; `None` when it did not listen in time.
        addr: Option<SocketAddr>,
    },
    /// Another instance of the student's server (instance 2 and on, in a
    /// lab of `program.instances`) was started in a folder of its own.
    InstanceStarted {
        /// Its number, from 2.
        instance: u8,
        /// The port it was told to listen on (`{listen}`).
        port: u16,
        /// Where it listens (its port if it listens there, else the first
        /// one found); `None` when it listened nowhere in time.
        addr: Option<SocketAddr>,
        /// How long netgrade waited for it to listen.
        waited: Duration,
    },
    /// Another instance ended: by itself, or stopped after the last probe.
    InstanceEnded {
        /// Its number, from 2.
        instance: u8,
        /// How it ended ([`ExitKind::Stopped`]: netgrade stopped it).
        exit: ExitKind,
        /// The end of what it printed on stderr (its traceback).
        stderr: String,
    },
    /// The student's server did not listen on any TCP port in time.
    NotListening {
        /// How long netgrade waited.
        waited: Duration,
        /// Whether the program had already ended.
        exited: bool,
    },
    /// Bytes of a line-based session (SMTP, POP3) as the reference server saw
    /// them: one event per line, exactly as received or sent (line ending included).
    Line {
        /// Server name.
        server: String,
        /// Connection number, from 1, per server.
        conn: u32,
        /// In: from the client. Out: from the server.
        dir: Dir,
        /// The exact bytes (a final partial line has no ending).
        bytes: Vec<u8>,
    },
    /// Something a reference server tolerated or refused that the RFC does not
    /// allow, with where it happened.
    Deviation {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// A stable key, e.g. `bare-lf`, `early-command`, `line-too-long`.
        kind: String,
        /// For people: what was seen, e.g. the offending bytes.
        detail: String,
    },
    /// A BitTorrent peer wire message to or from a reference peer (the
    /// handshake counts as one, named `handshake`), decoded.
    PeerMessage {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// In (received by the reference peer) or out (sent).
        dir: Dir,
        /// The message's name (`handshake`, `bitfield`, `request`, `piece` …).
        name: String,
        /// Piece index, `begin` and length (a piece's block length) where the
        /// message has them.
        block: Option<(u32, u32, u32)>,
        /// The message's first bytes on the wire (at most 32).
        head: Vec<u8>,
    },
    /// A torrent of the lab, as the run made it (its pieces' SHA-1s are what
    /// a download is checked against).
    Torrent {
        /// The lab's name for it (`NAME.torrent`).
        name: String,
        /// Its metainfo.
        meta: crate::torrent::Metainfo,
    },
    /// A download netgrade's leecher made from a student's peer (a `leech`
    /// probe), as it went.
    Leech {
        /// The probe's id.
        probe: String,
        /// The instance of the student's program it downloaded from, from 1.
        instance: u8,
        /// What the peer did.
        report: Box<crate::servers::peer::leecher::LeechReport>,
    },
    /// A crowd of netgrade's leechers downloading from a student's peer at
    /// once (a `leech: { crowd }` probe): who was choked when, and what
    /// each received.
    Crowd {
        /// The probe's id.
        probe: String,
        /// What each leecher saw.
        report: Box<crate::servers::peer::crowd::CrowdReport>,
    },
    /// A scenario of announces netgrade's fake peers made to a student's
    /// tracker (an `announce` probe), and its judgement.
    TrackerScenario {
        /// The probe's id.
        probe: String,
        /// The scenario (a check's name).
        scenario: String,
        /// Each request and what came back, in words, in order (bounded).
        exchanges: Vec<String>,
        /// Evidence of a pass, or the finding.
        judgement: crate::probes::tracker::Judgement,
    },
    /// An announce the reference tracker answered (or refused), decoded.
    Announce {
        /// Server name.
        server: String,
        /// What was asked and what the tracker did.
        record: crate::servers::tracker::AnnounceRecord,
    },
    /// The SMTP server accepted a message (after the lone dot).
    Delivered {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// The reverse-path of MAIL FROM.
        from: String,
        /// The forward-paths of RCPT TO.
        to: Vec<String>,
        /// The message, dot-unstuffed, with CRLF line endings.
        data: Vec<u8>,
    },
    /// A session ended.
    SessionEnd {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// Who ended it: `client-quit`, `client-closed`, `server-closed`,
        /// `timeout`, `error`, `tls-failed`.
        how: String,
    },
    /// A session switched to TLS: from its first byte (implicit TLS, RFC
    /// 8314) or after STARTTLS (RFC 3207). Its lines from here on are recorded
    /// decrypted, like any others.
    TlsStarted {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// The protocol version, e.g. `TLS 1.3`.
        version: String,
        /// The server name the client asked for (SNI), if it sent one.
        sni: Option<String>,
        /// Implicit TLS (true) or STARTTLS (false).
        implicit: bool,
    },
    /// A session's TLS handshake did not succeed; the session ended there.
    TlsFailed {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// Implicit TLS (true) or STARTTLS (false).
        implicit: bool,
        /// What went wrong and what to change, for the student.
        reason: String,
    },
    /// A client logged in (SMTP AUTH, RFC 4954). The password is never recorded.
    Authenticated {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// The SASL mechanism: `PLAIN` or `LOGIN`.
        mechanism: String,
        /// The user name the client gave.
        user: String,
        /// Whether the session was under TLS.
        encrypted: bool,
        /// Whether the server offered STARTTLS at the time (so the client
        /// could have protected its password and did not).
        starttls_offered: bool,
    },
    /// The POP3 maildrop after a session: the messages deleted (applied only
    /// after QUIT) and the numbers still there.
    Maildrop {
        /// Server name.
        server: String,
        /// Connection number.
        conn: u32,
        /// Whether the session reached the UPDATE state (QUIT in TRANSACTION).
        updated: bool,
        /// Message numbers deleted for good (empty unless `updated`).
        deleted: Vec<u32>,
        /// Message numbers left in the maildrop.
        remaining: Vec<u32>,
    },
    /// The DNS server received a query and answered it (or could not read it).
    NameLookup {
        /// Server name.
        server: String,
        /// UDP or TCP.
        transport: Transport,
        /// The client.
        from: SocketAddr,
        /// Where the client sent the query: the name server it was set up with or hard-coded.
        to: SocketAddr,
        /// The name asked for, as sent, without the final dot (`.` for the
        /// root); empty when the question could not be read.
        name: String,
        /// The type asked for (`A`, `AAAA`, `MX`, `TYPE65`); empty when the
        /// question could not be read.
        qtype: String,
        /// The response code sent (`NOERROR`, `NXDOMAIN`, `FORMERR`,
        /// `NOTIMP`, ...); `None` when nothing could be answered.
        rcode: Option<String>,
        /// The data of each answer record sent (`127.0.0.1`, `10 mx.smtp.gmail.com`).
        answers: Vec<String>,
        /// Whether the reply was cut to fit a UDP datagram (TC set).
        truncated: bool,
    },
    /// A DNS message to or from a lab's DNS server (`kind: dns`): a query
    /// it received or a response it sent, raw and decoded.
    DnsMessage {
        /// Server name.
        server: String,
        /// In: a query from the client. Out: a response from the server.
        dir: Dir,
        /// UDP or TCP.
        transport: Transport,
        /// Which query this is, or answers: over UDP the datagram's number in
        /// order of arrival from 1 (the number the lab's faults name), over
        /// TCP the message's, counted apart from 1.
        index: u32,
        /// The TCP connection, numbered from 1 per server; `None` over UDP.
        conn: Option<u32>,
        /// The client.
        peer: SocketAddr,
        /// The server's address the query was sent to (and the response left from).
        local: SocketAddr,
        /// The message's first bytes (at most 4 KiB), exactly.
        raw: Vec<u8>,
        /// Its whole length.
        len: usize,
        /// Its decoded fields; `None` when it is shorter than a header.
        summary: Option<DnsSummary>,
        /// What the server got wrong on purpose in this response (a fault
        /// of the lab's): `wrong-id`, `truncated` or `malformed`.
        fault: Option<String>,
    },
    /// A heartbeat netgrade's client sent a student's heartbeat server, or
    /// would have sent had it not been lost; stamped when it left (was due).
    Heartbeat {
        /// The probe.
        probe: String,
        /// Which client: 1, or 2 after the silence.
        client: u8,
        /// Its sequence number.
        seq: u32,
        /// The datagram (empty for a lost one).
        data: Vec<u8>,
        /// Its one-way delay: how long before it left its timestamp is.
        delay: Duration,
        /// Never sent: lost on the way.
        lost: bool,
    },
    /// Homework: the student whose variant of the lab's parameters the
    /// questions use, and its values.
    Variant {
        /// The student's identity (`--student`, else the submission's name).
        student: String,
        /// Each parameter and its value.
        values: Vec<(String, crate::spec::ParamValue)>,
    },
    /// Homework: a transcript question's client lines were replayed
    /// against a POP3 server of its own, whose lines are recorded under
    /// `server`.
    Replayed {
        /// The question's id.
        question: String,
        /// The server's name in the trace.
        server: String,
        /// Commands netgrade sent first (a login the transcript left out).
        prepended: u32,
    },
    /// Homework: the answers file as read.
    Answers {
        /// Its name in the submission.
        file: String,
        /// The answers, in the file's order.
        answers: Vec<crate::homework::answers::Answer>,
        /// Why it could not be read, when it could not.
        problem: Option<String>,
    },
    /// A file the program created or changed in its work directory.
    FileWritten {
        /// Path relative to the work directory.
        path: String,
        /// Its content (capped).
        bytes: Vec<u8>,
    },
    /// The program was started.
    Started {
        /// Its command line.
        command: Vec<String>,
    },
    /// One line of program output (without the line ending; lossy UTF-8).
    Output {
        /// Which stream.
        stream: Stream,
        /// The line text.
        line: String,
    },
    /// The build step failed; its combined output.
    BuildFailed {
        /// The build command.
        command: Vec<String>,
        /// What it printed (capped).
        output: String,
    },
    /// Processes the program left running after it ended, killed by netgrade.
    Leftovers {
        /// How many.
        count: u32,
    },
    /// The program ended.
    Exited {
        /// How.
        exit: ExitKind,
    },
}

/// The fields of a DNS message, as far as it could be read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsSummary {
    /// The message ID.
    pub id: u16,
    /// The header's flags word: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// QDCOUNT, ANCOUNT, NSCOUNT and ARCOUNT, as the header gives them.
    pub counts: [u16; 4],
    /// The first question, if it could be read.
    pub question: Option<DnsQuestion>,
    /// The answer section's records as text (`www.example.com. 300 IN A
    /// 10.0.0.1`), when the message decoded in full (at most 32).
    pub answers: Vec<String>,
    /// The authority section's records, likewise.
    pub authority: Vec<String>,
    /// The additional section's records (not the OPT record), likewise.
    pub additional: Vec<String>,
    /// The UDP payload size of the message's OPT record (EDNS), if it has one.
    pub edns: Option<u16>,
    /// Why the message did not decode in full, if it did not.
    pub error: Option<String>,
}

impl DnsSummary {
    /// QR: a response.
    pub fn response(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// The OPCODE (0 for a standard query).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }

    /// AA: an authoritative answer.
    pub fn authoritative(&self) -> bool {
        self.flags & 0x0400 != 0
    }

    /// TC: truncated.
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// RD: recursion desired.
    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// RA: recursion available.
    pub fn recursion_available(&self) -> bool {
        self.flags & 0x0080 != 0
    }

    /// The RCODE of the header (without EDNS's extension).
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }
}

/// The question of a DNS message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsQuestion {
    /// The name as sent, letter case kept, with its final dot (`.` for the root).
    pub name: String,
    /// The type's mnemonic (`A`, `MX`, `TYPE65`).
    pub qtype: String,
    /// The class's mnemonic (`IN`, `CH`, `CLASS7`).
    pub qclass: String,
}

/// How a probe's exchange ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeEnd {
    /// A complete response was read (framed by Content-Length, chunks, or close).
    Complete,
    /// The server closed the connection (the response, if any, ends there).
    Closed,
    /// The server stopped sending before the deadline; the response is incomplete.
    TimedOut,
    /// The connection was reset.
    Reset,
    /// The connection could not be opened.
    ConnectFailed(String),
}

impl std::fmt::Display for ExchangeEnd {
    /// How the exchange ended, in words: `complete`, `closed by the
    /// server`, `connect failed: connection refused` …
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeEnd::Complete => f.write_str("complete"),
            ExchangeEnd::Closed => f.write_str("closed by the server"),
            ExchangeEnd::TimedOut => f.write_str("timed out"),
            ExchangeEnd::Reset => f.write_str("connection reset"),
            ExchangeEnd::ConnectFailed(why) => write!(f, "connect failed: {why}"),
        }
    }
}

/// An event and when it happened, relative to the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Time since the run started.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind,
}

/// Most bytes a run's trace keeps of traffic and output: session lines,
/// requests, datagrams, exchanges, program output, files (each event counted
/// with its bookkeeping). Past it such events are dropped, and one
/// [`EventKind::RecordingCut`] says so.
pub const MAX_TRAFFIC_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes of delivered messages ([`EventKind::Delivered`]) a run's trace keeps.
pub const MAX_MESSAGE_BYTES: u64 = 64 * 1024 * 1024;

/// What a run's trace keeps within a cap of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Everything seen on the wire, printed or written, except delivered messages.
    Traffic,
    /// Messages a mail server accepted.
    Messages,
}

impl Budget {
    /// `traffic` or `delivered messages`.
    pub fn name(self) -> &'static str {
        match self {
            Budget::Traffic => "traffic",
            Budget::Messages => "delivered messages",
        }
    }

    /// Its index in [`Store`]'s arrays.
    fn index(self) -> usize {
        match self {
            Budget::Traffic => 0,
            Budget::Messages => 1,
        }
    }
}

/// How many bytes `kind` weighs against which budget of a [`Recorder`]; `None` for the few
/// events that say how the run went (started, ended, restarted, cut), which
/// are kept whatever the budgets and are few by nature.
pub fn weight(kind: &EventKind) -> Option<(Budget, u64)> {
    use EventKind as K;
    let base = std::mem::size_of::<Event>();
    let (budget, payload) = match kind {
        K::Started { .. }
        | K::Exited { .. }
        | K::BuildFailed { .. }
        | K::Leftovers { .. }
        | K::Listening { .. }
        | K::NotListening { .. }
        | K::ServerEnded { .. }
        | K::ServerRestarted { .. }
        | K::InstanceStarted { .. }
        | K::Capturing { .. }
        | K::RecordingCapped { .. }
        | K::RecordingCut { .. } => return None,
        K::Delivered { from, to, data, .. } => (
            Budget::Messages,
            data.len() + from.len() + to.iter().map(|t| t.len() + 24).sum::<usize>(),
        ),
        K::Datagram { data, .. } => (Budget::Traffic, data.len()),
        K::Request { raw, .. } => (Budget::Traffic, raw.len()),
        K::Response { head, .. } => (Budget::Traffic, head.len()),
        K::Exchange { sent, received, .. } => (Budget::Traffic, sent.len() + received.len()),
        K::LateResponse { received, .. } => (Budget::Traffic, received.len()),
        K::Line { bytes, .. } => (Budget::Traffic, bytes.len()),
        K::Deviation { kind, detail, .. } => (Budget::Traffic, kind.len() + detail.len()),
        K::FileWritten { path, bytes } => (Budget::Traffic, path.len() + bytes.len()),
        K::Output { line, .. } => (Budget::Traffic, line.len()),
        K::Heartbeat { probe, data, .. } => (Budget::Traffic, probe.len() + data.len()),
        K::Answers { answers, .. } => (
            Budget::Traffic,
            answers
                .iter()
                .map(|a| a.text.len() + a.label.len() + 32)
                .sum(),
        ),
        K::PeerMessage { name, head, .. } => (Budget::Traffic, name.len() + head.len()),
        K::Announce { record, .. } => (Budget::Traffic, record.target.len() + 96),
        K::TrackerScenario {
            exchanges,
            judgement,
            ..
        } => (
            Budget::Traffic,
            exchanges.iter().map(String::len).sum::<usize>()
                + match judgement {
                    Ok(e) => e.iter().map(String::len).sum(),
                    Err(f) => f.message.len() + f.evidence.iter().map(String::len).sum::<usize>(),
                },
        ),
        K::Leech { report, .. } => (
            Budget::Traffic,
            report.blocks.len() * 48 + report.pieces.len() * 24 + report.handshake_raw.len() + 256,
        ),
        K::Torrent { meta, .. } => (Budget::Traffic, meta.info.pieces.len() * 20 + 128),
        K::TlsFailed { reason, .. } => (Budget::Traffic, reason.len()),
        K::InstanceEnded { stderr, .. } => (Budget::Traffic, stderr.len()),
        K::Crowd { report, .. } => (
            Budget::Traffic,
            report
                .members
                .iter()
                .map(|m| m.chokes.len() * 16 + m.received.len() * 8 + 64)
                .sum(),
        ),
        K::DnsMessage { raw, summary, .. } => (
            Budget::Traffic,
            raw.len()
                + summary.as_ref().map_or(0, |s| {
                    s.answers
                        .iter()
                        .chain(&s.authority)
                        .chain(&s.additional)
                        .map(|r| r.len() + 24)
                        .sum::<usize>()
                        + s.question.as_ref().map_or(0, |q| q.name.len())
                        + 96
                }),
        ),
        K::NameLookup { name, answers, .. } => (
            Budget::Traffic,
            name.len() + answers.iter().map(|a| a.len() + 24).sum::<usize>(),
        ),
        _ => (Budget::Traffic, 64),
    };
    Some((budget, (base + payload) as u64))
}

/// The events a [`Recorder`] keeps, and what they weigh.
#[derive(Debug)]
struct Store {
    events: Vec<Event>,
    /// The cap of each [`Budget`], in bytes.
    limits: [u64; 2],
    /// Bytes kept per [`Budget`].
    kept: [u64; 2],
    /// Where each budget's [`EventKind::RecordingCut`] is in `events`, once cut.
    cut: [Option<usize>; 2],
    /// When the last event was recorded.
    last: Option<Duration>,
    /// When the program last printed a line.
    last_output: Option<Duration>,
}

impl Store {
    /// Keeps `event` if its budget has room for it; otherwise counts it in
    /// its budget's [`EventKind::RecordingCut`] (made the first time).
    fn keep(&mut self, event: Event) {
        let Some((budget, weight)) = weight(&event.kind) else {
            self.events.push(event);
            return;
        };
        let i = budget.index();
        let limit = self.limits[i];
        if self.cut[i].is_none() && self.kept[i] + weight <= limit {
            self.kept[i] += weight;
            self.events.push(event);
            return;
        }
        let at = match self.cut[i] {
            Some(at) => at,
            None => {
                self.events.push(Event {
                    at: event.at,
                    kind: EventKind::RecordingCut {
                        budget,
                        limit,
                        dropped: 0,
                        dropped_bytes: 0,
                    },
                });
                self.cut[i] = Some(self.events.len() - 1);
                self.events.len() - 1
            }
        };
        if let EventKind::RecordingCut {
            dropped,
            dropped_bytes,
            ..
        } = &mut self.events[at].kind
        {
            *dropped += 1;
            *dropped_bytes += weight;
        }
    }
}

/// Appends events to a run's trace; cheap to clone and share between tasks.
///
/// A run's recorder keeps its events within [`MAX_TRAFFIC_BYTES`] and
/// [`MAX_MESSAGE_BYTES`]; one made for `netgrade serve` ([`Recorder::with_tap`])
/// hands each event to its tap and keeps none, so a server that runs for
/// days does not grow.
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    /// The wall clock when `start` was taken.
    wall: std::time::SystemTime,
    store: Arc<Mutex<Store>>,
    tap: Option<Tap>,
}

/// Where a `serve` recorder sends its events: a bounded channel, and the
/// count of events it could not take because the printer fell behind.
#[derive(Clone, Debug)]
struct Tap {
    tx: tokio::sync::mpsc::Sender<Event>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder::with_limits(MAX_TRAFFIC_BYTES, MAX_MESSAGE_BYTES)
    }

    /// A recorder whose clock starts now, that keeps at most `traffic` bytes
    /// of [`Budget::Traffic`] and `messages` of [`Budget::Messages`].
    pub fn with_limits(traffic: u64, messages: u64) -> Self {
        let store = Store {
            events: Vec::new(),
            limits: [traffic, messages],
            kept: [0; 2],
            cut: [None; 2],
            last: None,
            last_output: None,
        };
        let (start, wall) = clock_pair();
        Recorder {
            start,
            wall,
            store: Arc::new(Mutex::new(store)),
            tap: None,
        }
    }

    /// How many more bytes of `budget` the trace keeps; `None` when it keeps
    /// nothing (a recorder with a tap), so nothing need be saved for it.
    pub fn room(&self, budget: Budget) -> Option<u64> {
        if !self.keeps() {
            return None;
        }
        let store = self.lock();
        let i = budget.index();
        Some(match store.cut[i] {
            Some(_) => 0,
            None => store.limits[i].saturating_sub(store.kept[i]),
        })
    }

    /// The run time of a wall-clock instant (a kernel timestamp of a
    /// datagram's arrival), never before the run started.
    pub fn at_wall(&self, t: std::time::SystemTime) -> Duration {
        t.duration_since(self.wall).unwrap_or_default()
    }

    /// A recorder that sends each event to `tap` as it happens and keeps
    /// none (for `netgrade serve`): its [`Recorder::snapshot`] is empty.
    /// When the channel is full (its reader fell behind: a stalled
    /// terminal or pipe), the event is dropped and counted
    /// ([`Recorder::take_dropped`]): the server never waits for its printer
    /// and never piles events up.
    pub fn with_tap(tap: tokio::sync::mpsc::Sender<Event>) -> Self {
        Recorder {
            tap: Some(Tap {
                tx: tap,
                dropped: Arc::default(),
            }),
            ..Recorder::new()
        }
    }

    /// How many events the tap dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.tap.as_ref().map_or(0, |t| {
            t.dropped.swap(0, std::sync::atomic::Ordering::Relaxed)
        })
    }

    /// Whether the events recorded are kept for a trace (not so with a tap).
    pub fn keeps(&self) -> bool {
        self.tap.is_none()
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The instant the run started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Records `kind` as happening now.
    pub fn record(&self, kind: EventKind) {
        self.record_at(self.now(), kind);
    }

    /// Records `kind` as having happened at `at`.
    pub fn record_at(&self, at: Duration, kind: EventKind) {
        let event = Event { at, kind };
        let mut store = self.lock();
        store.last = store.last.max(Some(at));
        if matches!(event.kind, EventKind::Output { .. }) {
            store.last_output = store.last_output.max(Some(at));
        }
        match &self.tap {
            Some(tap) => {
                drop(store);
                if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = tap.tx.try_send(event)
                {
                    tap.dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            None => store.keep(event),
        }
    }

    /// The store, even if a task panicked holding it.
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the last event was recorded, if any.
    pub fn last_event(&self) -> Option<Duration> {
        self.lock().last
    }

    /// When the program last printed a line, if it has.
    pub fn last_output(&self) -> Option<Duration> {
        self.lock().last_output
    }

    /// The trace so far, ordered by time.
    pub fn snapshot(&self) -> Trace {
        let mut events = self.lock().events.clone();
        events.sort_by_key(|e| e.at);
        Trace { events }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// The monotonic clock and the wall clock read at one moment: a pair read
/// with a preemption between its two reads would shift every kernel
/// timestamp ([`Recorder::at_wall`]) against the run's own times, and
/// reorder a datagram and the reply it answers. The tightest of a few
/// tries is kept (the wall clock read on both sides of the monotonic one).
fn clock_pair() -> (Instant, std::time::SystemTime) {
    let mut best: Option<(Duration, Instant, std::time::SystemTime)> = None;
    for _ in 0..16 {
        let before = std::time::SystemTime::now();
        let mono = Instant::now();
        let after = std::time::SystemTime::now();
        let gap = after.duration_since(before).unwrap_or_default();
        let wall = before + gap / 2;
        if best.is_none_or(|(g, _, _)| gap < g) {
            best = Some((gap, mono, wall));
        }
        if gap < Duration::from_micros(20) {
            break;
        }
    }
    let (_, mono, wall) = best.expect("at least one try");
    (mono, wall)
}

/// The finished record of a run, ordered by time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// All events.
    pub events: Vec<Event>,
}

/// One ping as the pinger server saw it, assembled from the trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Ping {
    /// Arrival order at the server, from 1.
    pub index: u32,
    /// When it arrived.
    pub at: Duration,
    /// The payload.
    pub data: Vec<u8>,
    /// Whether the server dropped it.
    pub dropped: bool,
    /// The reply and when it was sent, if any.
    pub reply: Option<(Duration, Vec<u8>)>,
}

impl Ping {
    /// How long the server held the ping before replying: the true RTT floor.
    pub fn hold(&self) -> Option<Duration> {
        self.reply.as_ref().map(|(t, _)| t.saturating_sub(self.at))
    }

    /// The payload as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

impl Trace {
    /// Replaces `from` with `to` in every output line (e.g. the private work
    /// directory, so reports show `UDPPingerClient.py`, not `/tmp/netgrade-x1/UDPPingerClient.py`).
    pub fn replace_in_output(&mut self, from: &str, to: &str) {
        if from.is_empty() {
            return;
        }
        for e in &mut self.events {
            if let EventKind::Output { line, .. } | EventKind::InstanceEnded { stderr: line, .. } =
                &mut e.kind
                && line.contains(from)
            {
                *line = line.replace(from, to);
            }
        }
    }

    /// The datagrams server `server` received, with its decisions and replies.
    pub fn pings(&self, server: &str) -> Vec<Ping> {
        let mut pings: Vec<Ping> = Vec::new();
        for e in &self.events {
            match &e.kind {
                EventKind::Datagram {
                    server: s,
                    dir: Dir::In,
                    index,
                    data,
                    ..
                } if s == server => pings.push(Ping {
                    index: *index,
                    at: e.at,
                    data: data.clone(),
                    dropped: false,
                    reply: None,
                }),
                EventKind::Dropped { server: s, index } if s == server => {
                    if let Some(p) = pings.iter_mut().find(|p| p.index == *index) {
                        p.dropped = true;
                    }
                }
                EventKind::Datagram {
                    server: s,
                    dir: Dir::Out,
                    index,
                    data,
                    ..
                } if s == server => {
                    if let Some(p) = pings.iter_mut().find(|p| p.index == *index) {
                        p.reply = Some((e.at, data.clone()));
                    }
                }
                _ => {}
            }
        }
        pings
    }

    /// Lines the program printed on `stream`, in order.
    pub fn lines(&self, stream: Stream) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Output { stream: s, line } if *s == stream => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    /// How and when the program ended, if it ran.
    pub fn exit(&self) -> Option<(Duration, &ExitKind)> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::Exited { exit } => Some((e.at, exit)),
            _ => None,
        })
    }

    /// When the program started, if it did.
    pub fn started(&self) -> Option<Duration> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::Started { .. } => Some(e.at),
            _ => None,
        })
    }

    /// Stray traffic grouped by transport and destination, with counts, in order of first sight.
    pub fn strays(&self) -> Vec<(Transport, SocketAddr, usize)> {
        let mut out: Vec<(Transport, SocketAddr, usize)> = Vec::new();
        for e in &self.events {
            if let EventKind::Stray { transport, to, .. } = &e.kind {
                match out.iter_mut().find(|(t, a, _)| t == transport && a == to) {
                    Some(entry) => entry.2 += 1,
                    None => out.push((*transport, *to, 1)),
                }
            }
        }
        out
    }

    /// The most any UDP reply left after it was due (its datagram's arrival
    /// plus the delay the server chose): how far the servers fell behind.
    pub fn reply_lateness(&self) -> Duration {
        use std::collections::HashMap;
        let mut arrived: HashMap<(&str, u32), Duration> = HashMap::new();
        let mut delay: HashMap<(&str, u32), Duration> = HashMap::new();
        let mut late = Duration::ZERO;
        for e in &self.events {
            match &e.kind {
                EventKind::Datagram {
                    server,
                    dir: Dir::In,
                    index,
                    ..
                } => {
                    arrived.insert((server, *index), e.at);
                }
                EventKind::Delayed {
                    server,
                    index,
                    delay: d,
                } => {
                    delay.insert((server, *index), *d);
                }
                EventKind::Datagram {
                    server,
                    dir: Dir::Out,
                    index,
                    ..
                } => {
                    let key = (server.as_str(), *index);
                    if let (Some(a), Some(d)) = (arrived.get(&key), delay.get(&key)) {
                        late = late.max(e.at.saturating_sub(*a + *d));
                    }
                }
                EventKind::LateReply { late: l, .. } => late = late.max(*l),
                _ => {}
            }
        }
        late
    }

    /// Captured traffic grouped by transport, destination and server, with
    /// counts, in order of first sight.
    pub fn captured(&self) -> Vec<(Transport, SocketAddr, &str, usize)> {
        let mut out: Vec<(Transport, SocketAddr, &str, usize)> = Vec::new();
        for e in &self.events {
            if let EventKind::Captured {
                transport,
                to,
                server,
                ..
            } = &e.kind
            {
                match out
                    .iter_mut()
                    .find(|(t, a, s, _)| t == transport && a == to && s == server)
                {
                    Some(entry) => entry.3 += 1,
                    None => out.push((*transport, *to, server, 1)),
                }
            }
        }
        out
    }

    /// The stderr lines an instance of the server printed between `since`
    /// and its [`EventKind::ServerEnded`] at `until`.
    pub fn stderr_between(&self, since: Duration, until: Duration) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e.at >= since && e.at <= until)
            .filter_map(|e| match &e.kind {
                EventKind::Output {
                    stream: Stream::Stderr,
                    line,
                } => Some(line.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Where the run's recording was cut, if it was: for a check's message,
    /// e.g. `the recording of this run was cut at 64 MiB of traffic at 3.2 s
    /// (1200 events dropped)`.
    pub fn cut_note(&self) -> Option<String> {
        let cuts: Vec<String> = self
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::RecordingCut {
                    budget,
                    limit,
                    dropped,
                    ..
                } => Some(format!(
                    "at {} MiB of {} at {:.1} s ({dropped} events dropped)",
                    limit / (1024 * 1024),
                    budget.name(),
                    e.at.as_secs_f64()
                )),
                _ => None,
            })
            .collect();
        (!cuts.is_empty()).then(|| {
            format!(
                "the recording of this run was cut {}: evidence after that is missing",
                cuts.join(" and ")
            )
        })
    }

    /// Whether the server hit its recording cap.
    pub fn capped(&self, server: &str) -> Option<u32> {
        self.events.iter().find_map(|e| match &e.kind {
            EventKind::RecordingCapped { server: s, limit } if s == server => Some(*limit),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_join_arrivals_drops_and_replies() {
        let rec = Recorder::new();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let dg = |dir, index, data: &str| EventKind::Datagram {
            server: "pinger".into(),
            dir,
            peer,
            index,
            data: data.as_bytes().to_vec(),
        };
        let ms = Duration::from_millis;
        rec.record_at(ms(10), dg(Dir::In, 1, "Ping 1 x"));
        rec.record_at(ms(60), dg(Dir::Out, 1, "PING 1 X"));
        rec.record_at(ms(70), dg(Dir::In, 2, "Ping 2 y"));
        rec.record_at(
            ms(70),
            EventKind::Dropped {
                server: "pinger".into(),
                index: 2,
            },
        );
        let pings = rec.snapshot().pings("pinger");
        assert_eq!(pings.len(), 2);
        assert_eq!(pings[0].hold(), Some(ms(50)));
        assert!(pings[1].dropped);
        assert_eq!(pings[1].reply, None);
        assert!(rec.snapshot().pings("other").is_empty());
    }

    fn line(n: usize) -> EventKind {
        EventKind::Line {
            server: "smtp".into(),
            conn: 1,
            dir: Dir::In,
            bytes: vec![b'x'; n],
        }
    }

    #[test]
    fn a_budget_keeps_what_fits_then_counts_what_it_drops() {
        let size = weight(&line(1000)).unwrap().1;
        let rec = Recorder::with_limits(3 * size, 1 << 20);
        for i in 0..10 {
            rec.record_at(Duration::from_millis(i), line(1000));
        }
        rec.record(EventKind::Exited {
            exit: ExitKind::Exited { code: 0 },
        });
        let trace = rec.snapshot();
        let lines = trace
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Line { .. }));
        assert_eq!(lines.count(), 3);
        let cut: Vec<_> = trace
            .events
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::RecordingCut {
                    budget,
                    dropped,
                    dropped_bytes,
                    ..
                } => Some((e.at, budget, dropped, dropped_bytes)),
                _ => None,
            })
            .collect();
        assert_eq!(
            cut,
            [(Duration::from_millis(3), Budget::Traffic, 7, 7 * size)]
        );
        assert!(trace.exit().is_some(), "how the run ended is always kept");
        let note = trace.cut_note().unwrap();
        assert!(
            note.contains("of traffic at 0.0 s (7 events dropped)"),
            "{note}"
        );
        assert_eq!(rec.room(Budget::Traffic), Some(0));
        assert_eq!(rec.room(Budget::Messages), Some(1 << 20));
    }

    #[test]
    fn budgets_are_separate_and_an_uncut_trace_has_no_note() {
        let rec = Recorder::with_limits(1 << 20, 10);
        rec.record(line(10));
        rec.record(EventKind::Delivered {
            server: "smtp".into(),
            conn: 1,
            from: "a@b".into(),
            to: vec!["c@d".into()],
            data: b"Subject: x\r\n\r\nhi\r\n".to_vec(),
        });
        rec.record(line(10));
        let trace = rec.snapshot();
        assert_eq!(trace.events.len(), 3, "{:?}", trace.events);
        assert!(matches!(
            trace.events[1].kind,
            EventKind::RecordingCut {
                budget: Budget::Messages,
                dropped: 1,
                ..
            }
        ));
        assert!(Recorder::new().snapshot().cut_note().is_none());
    }

    #[test]
    fn a_tapped_recorder_hands_events_on_and_keeps_none() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1001);
        let rec = Recorder::with_tap(tx);
        for i in 0..1000 {
            rec.record_at(Duration::from_millis(i), line(100));
        }
        rec.record_at(
            Duration::from_millis(5),
            EventKind::Output {
                stream: Stream::Stdout,
                line: "hi".into(),
            },
        );
        assert!(rec.snapshot().events.is_empty());
        assert!(!rec.keeps());
        assert_eq!(rec.room(Budget::Traffic), None);
        assert_eq!(rec.last_event(), Some(Duration::from_millis(999)));
        assert_eq!(rec.last_output(), Some(Duration::from_millis(5)));
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 1001);
        assert_eq!(rec.take_dropped(), 0);
        // A printer that does not keep up loses events, counted, never memory.
        for i in 0..1500 {
            rec.record_at(Duration::from_millis(i), line(100));
        }
        assert_eq!(rec.take_dropped(), 499);
        assert_eq!(rec.take_dropped(), 0);
    }
}
