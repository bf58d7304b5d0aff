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
    /// The server dropped received datagram `index` on purpose.
    Dropped {
        /// Server name.
        server: String,
        /// Index of the dropped datagram.
        index: u32,
    },
    /// The server will answer datagram `index` after `delay`.
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

/// An event and when it happened, relative to the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Time since the run started.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind,
}

/// Appends events to a run's trace; cheap to clone and share between tasks.
#[derive(Clone, Debug)]
pub struct Recorder {
    start: Instant,
    /// The wall clock when `start` was taken.
    wall: std::time::SystemTime,
    events: Arc<Mutex<Vec<Event>>>,
    tap: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            wall: std::time::SystemTime::now(),
            events: Arc::new(Mutex::new(Vec::new())),
            tap: None,
        }
    }

    /// The run time of a wall-clock instant (a kernel timestamp of a
    /// datagram's arrival), never before the run started.
    pub fn at_wall(&self, t: std::time::SystemTime) -> Duration {
        t.duration_since(self.wall).unwrap_or_default()
    }

    /// A recorder that also sends each event to `tap` as it happens (for `netgrade serve`).
    pub fn with_tap(tap: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        Recorder {
            tap: Some(tap),
            ..Recorder::new()
        }
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
        if let Some(tap) = &self.tap {
            let _ = tap.send(event.clone());
        }
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }

    /// When the last event was recorded, if any.
    pub fn last_event(&self) -> Option<Duration> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|e| e.at)
            .max()
    }

    /// When the program last printed a line, if it has.
    pub fn last_output(&self) -> Option<Duration> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
            .find(|e| matches!(e.kind, EventKind::Output { .. }))
            .map(|e| e.at)
    }

    /// The trace so far, ordered by time.
    pub fn snapshot(&self) -> Trace {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        events.sort_by_key(|e| e.at);
        Trace { events }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
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
            if let EventKind::Output { line, .. } = &mut e.kind
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
}
