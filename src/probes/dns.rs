//! DNS probes: netgrade as a DNS client of the student's name server.
//!
//! A probe sends one query, built from the lab's question (name, type,
//! class, ID, RD, opcode, several questions, names written with
//! compression pointers) or given as exact bytes (hex, for truncated and
//! garbage messages), over UDP (one datagram) or TCP (RFC 1035 §4.2.2: a
//! 2-octet length before each message), from inside the run's network.
//! It records one [`EventKind::Exchange`]: the bytes sent, the first
//! datagram received (over TCP, the bytes of the stream up to the end of
//! the first message, length prefix included), how it ended and how long it
//! took. The checks decode the recorded bytes with [`crate::dns_wire`].

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::http::Summary;
use crate::dns_wire as wire;
use crate::sandbox::NetNs;
use crate::spec::{DnsProbeSpec, DnsTransport, Dur, ProbeSpec};
use crate::trace::{EventKind, ExchangeEnd, Recorder};

/// Most bytes a probe keeps of what it receives (a UDP datagram's maximum).
pub const MAX_RESPONSE: usize = 65_535;
/// Octets of a message that does not decode shown in hex.
const SHOWN_OCTETS: usize = 48;

/// A DNS probe, ready to send.
#[derive(Clone, Debug)]
pub struct Probe {
    /// The probe's id in the lab.
    pub name: String,
    /// The message, exactly (without TCP's length prefix).
    pub bytes: Vec<u8>,
    /// UDP or TCP.
    pub transport: DnsTransport,
    /// Deadline of the whole exchange.
    pub timeout: Duration,
}

impl Probe {
    /// The probe `spec` describes; its default ID comes from `seed`.
    pub fn from_spec(spec: &ProbeSpec, dns: &DnsProbeSpec, seed: u64) -> Probe {
        Probe {
            name: spec.id.value.clone(),
            bytes: query_bytes(dns, default_id(seed, &spec.id.value)).unwrap_or_default(),
            transport: dns.transport,
            timeout: spec.timeout.get(),
        }
    }
}

/// The ID a probe without one sends: drawn from the lab's seed and the
/// probe's id alone (FNV-1a), so two runs with one seed send the same bytes.
pub fn default_id(seed: u64, probe: &str) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in probe.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer: every input bit reaches the top 16.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((h ^ (h >> 31)) >> 48) as u16
}

/// The questions of a spec: `questions`, else `name` with `type` and `class`.
pub fn questions(spec: &DnsProbeSpec) -> Vec<(String, String, String)> {
    let one = |name: &str, t: &Option<String>, c: &Option<String>| {
        (
            name.to_string(),
            t.clone().unwrap_or_else(|| "A".into()),
            c.clone().unwrap_or_else(|| "IN".into()),
        )
    };
    if !spec.questions.is_empty() {
        return spec
            .questions
            .iter()
            .map(|q| one(&q.name, &q.qtype, &q.class))
            .collect();
    }
    spec.name
        .iter()
        .map(|n| one(n, &spec.qtype, &spec.class))
        .collect()
}

/// The message a spec describes, with `default_id` unless it gives an ID;
/// an error names what does not encode.
pub fn query_bytes(spec: &DnsProbeSpec, default_id: u16) -> Result<Vec<u8>, String> {
    if let Some(hex) = &spec.hex {
        return parse_hex(hex);
    }
    let qs = questions(spec);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&spec.id.unwrap_or(default_id).to_be_bytes());
    let opcode = spec.opcode.unwrap_or(0) & 0xF;
    let rd = u8::from(spec.rd.unwrap_or(true));
    out.extend_from_slice(&[(opcode << 3) | rd, 0]);
    out.extend_from_slice(&(qs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    // Names written so far: (lower-cased suffix labels, offset).
    let mut written: Vec<(Vec<String>, usize)> = Vec::new();
    for (name, qtype, class) in &qs {
        write_name(&mut out, name, spec.compress, &mut written)?;
        out.extend_from_slice(&type_code(qtype)?.to_be_bytes());
        out.extend_from_slice(&class_code(class)?.to_be_bytes());
    }
    Ok(out)
}

/// The labels of `name` (no final dot, `.` or empty for the root).
pub fn labels(name: &str) -> Vec<String> {
    name.trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Writes `name` as labels; with `compress`, ends it with a pointer to the
/// longest suffix already written, else to the header's last octet (0).
fn write_name(
    out: &mut Vec<u8>,
    name: &str,
    compress: bool,
    written: &mut Vec<(Vec<String>, usize)>,
) -> Result<(), String> {
    let labels = labels(name);
    let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
    let mut cut = labels.len();
    let mut target = 11;
    if compress {
        for i in 0..labels.len() {
            if let Some((_, at)) = written.iter().find(|(s, _)| *s == lower[i..]) {
                (cut, target) = (i, *at);
                break;
            }
        }
    }
    for (i, label) in labels[..cut].iter().enumerate() {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "the label `{label}` of `{name}` is not 1–63 octets"
            ));
        }
        if out.len() < 0x3FFF {
            written.push((lower[i..].to_vec(), out.len()));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    if compress {
        out.extend_from_slice(&(0xC000 | target as u16).to_be_bytes());
    } else {
        out.push(0);
    }
    Ok(())
}

/// The code of a type mnemonic (`A`, `MX`, `TYPE65`).
pub fn type_code(t: &str) -> Result<u16, String> {
    use hickory_proto::rr::RecordType;
    if let Some(n) = t.strip_prefix("TYPE").and_then(|n| n.parse().ok()) {
        return Ok(n);
    }
    t.to_ascii_uppercase()
        .parse::<RecordType>()
        .map(u16::from)
        .map_err(|_| format!("`{t}` is not a record type (A, NS, CNAME, MX, TXT, AAAA, TYPE<n> …)"))
}

/// The code of a class mnemonic (`IN`, `CH`, `HS`, `ANY`, `CLASS7`).
pub fn class_code(c: &str) -> Result<u16, String> {
    match c.to_ascii_uppercase().as_str() {
        "IN" => Ok(1),
        "CH" => Ok(3),
        "HS" => Ok(4),
        "NONE" => Ok(254),
        "ANY" => Ok(255),
        other => other
            .strip_prefix("CLASS")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("`{c}` is not a class (IN, CH, HS, ANY, CLASS<n>)")),
    }
}

/// Bytes from hex digits; spaces, tabs and newlines between them are ignored.
pub fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{} hex digits: an octet takes two", digits.len()));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(s, 16).map_err(|_| format!("`{s}` is not a hex octet"))
        })
        .collect()
}

/// A probe for people: `A www.example.com (rd)`, `2 questions: …`, `24 bytes (hex)`.
pub fn describe_spec(spec: &DnsProbeSpec) -> String {
    if let Some(hex) = &spec.hex {
        let n = parse_hex(hex).map_or(0, |b| b.len());
        return format!("{n} bytes given in hex");
    }
    let qs: Vec<String> = questions(spec)
        .into_iter()
        .map(|(n, t, c)| {
            let c = if c == "IN" {
                String::new()
            } else {
                format!(" {c}")
            };
            format!("{t}{c} {n}")
        })
        .collect();
    let mut text = match qs.len() {
        1 => qs[0].clone(),
        n => format!("{n} questions: {}", qs.join(", ")),
    };
    let opcode = spec.opcode.unwrap_or(0);
    if opcode != 0 {
        text.push_str(&format!(", opcode {opcode}"));
    }
    if spec.compress {
        text.push_str(", compressed");
    }
    if spec.transport == DnsTransport::Tcp {
        text.push_str(" over TCP");
    }
    text
}

/// Sends `probe` to `addr` (from inside `netns` when given), reads the
/// answer and records one [`EventKind::Exchange`], stamped when it began.
pub async fn exchange(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    recorder: &Recorder,
) -> Summary {
    exchange_until(addr, netns, probe, recorder, std::future::pending()).await
}

/// Like [`exchange`], and stops waiting when `gone` completes (the server
/// ended: a datagram has no connection to tell it): the exchange ends as
/// [`ExchangeEnd::Closed`], with nothing received.
pub async fn exchange_until(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    recorder: &Recorder,
    gone: impl std::future::Future<Output = ()>,
) -> Summary {
    let at = recorder.now();
    let start = Instant::now();
    let deadline = start + probe.timeout;
    let talk = async {
        match probe.transport {
            DnsTransport::Udp => over_udp(addr, netns, probe, deadline).await,
            DnsTransport::Tcp => over_tcp(addr, netns, probe, deadline).await,
        }
    };
    let (end, received) = tokio::select! {
        done = talk => done,
        () = gone => (ExchangeEnd::Closed, Vec::new()),
    };
    let summary = Summary {
        end: end.clone(),
        received: received.len(),
    };
    let sent = match end {
        ExchangeEnd::ConnectFailed(_) if probe.transport == DnsTransport::Tcp => Vec::new(),
        _ => probe.bytes.clone(),
    };
    recorder.record_at(
        at,
        EventKind::Exchange {
            probe: probe.name.clone(),
            sent,
            received,
            end,
            elapsed: start.elapsed(),
        },
    );
    summary
}

/// A UDP socket connected to `addr`, made inside `netns`.
pub(crate) async fn udp_socket(
    addr: SocketAddr,
    netns: Option<&NetNs>,
) -> std::io::Result<tokio::net::UdpSocket> {
    let make = move || -> std::io::Result<std::net::UdpSocket> {
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let s = std::net::UdpSocket::bind(local)?;
        s.connect(addr)?;
        s.set_nonblocking(true)?;
        Ok(s)
    };
    let socket = match netns {
        None => make()?,
        Some(ns) => {
            let ns = ns.try_clone()?;
            tokio::task::spawn_blocking(move || ns.run(make))
                .await
                .map_err(std::io::Error::other)???
        }
    };
    tokio::net::UdpSocket::from_std(socket)
}

/// One datagram out, the first one back.
async fn over_udp(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    deadline: Instant,
) -> (ExchangeEnd, Vec<u8>) {
    let socket = match udp_socket(addr, netns).await {
        Ok(s) => s,
        Err(e) => return (ExchangeEnd::ConnectFailed(e.to_string()), Vec::new()),
    };
    if let Err(e) = socket.send(&probe.bytes).await {
        return (ExchangeEnd::ConnectFailed(reason(&e)), Vec::new());
    }
    let mut buf = vec![0u8; MAX_RESPONSE];
    match timeout_at(deadline, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => {
            buf.truncate(n);
            (ExchangeEnd::Complete, buf)
        }
        Ok(Err(e)) => (ExchangeEnd::ConnectFailed(reason(&e)), Vec::new()),
        Err(_) => (ExchangeEnd::TimedOut, Vec::new()),
    }
}

/// Why a socket failed, for people: ICMP port unreachable is named.
fn reason(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        "refused (ICMP port unreachable: nothing bound to the port)".into()
    } else {
        e.to_string()
    }
}

/// The message with its length prefix over a new connection; the stream
/// back up to the end of the first message.
async fn over_tcp(
    addr: SocketAddr,
    netns: Option<&NetNs>,
    probe: &Probe,
    deadline: Instant,
) -> (ExchangeEnd, Vec<u8>) {
    let left = deadline.saturating_duration_since(Instant::now());
    let mut stream = match timeout_at(deadline, super::connect(addr, netns, left)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return (ExchangeEnd::ConnectFailed(reason(&e)), Vec::new()),
        Err(_) => {
            let why = format!("no connection within {}", Dur(probe.timeout));
            return (ExchangeEnd::ConnectFailed(why), Vec::new());
        }
    };
    let mut framed = (probe.bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&probe.bytes);
    if timeout_at(deadline, stream.write_all(&framed))
        .await
        .is_err()
    {
        return (ExchangeEnd::TimedOut, Vec::new());
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if got.len() >= 2 {
            let want = 2 + usize::from(u16::from_be_bytes([got[0], got[1]]));
            if got.len() >= want {
                got.truncate(want);
                break ExchangeEnd::Complete;
            }
        }
        match timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => break ExchangeEnd::Closed,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n.min(MAX_RESPONSE + 2 - got.len())]),
            Ok(Err(_)) => break ExchangeEnd::Reset,
            Err(_) => break ExchangeEnd::TimedOut,
        }
    };
    (end, got)
}

/// The DNS message in what a probe received: over TCP without its length
/// prefix (as far as it came); `None` when nothing came.
pub fn message(transport: DnsTransport, received: &[u8]) -> Option<&[u8]> {
    if received.is_empty() {
        return None;
    }
    match transport {
        DnsTransport::Udp => Some(received),
        DnsTransport::Tcp => received.get(2..).filter(|m| !m.is_empty()),
    }
}

/// How a lab's probes reach the student's server: `UDP` or `TCP`.
pub fn probes_transport(lab: &crate::spec::Lab) -> &'static str {
    if lab.probes_over_udp() { "UDP" } else { "TCP" }
}

/// One probe's exchange in one line, for the transcript: the query and
/// the response decoded (`query A www.example.com (rd) id 1234 ->
/// NOERROR rd id 1234, answer: …`), hex where a message does not decode.
pub fn describe_exchange(
    spec: &DnsProbeSpec,
    sent: &[u8],
    received: &[u8],
    end: &ExchangeEnd,
) -> String {
    let query = if spec.hex.is_some() || sent.is_empty() {
        let bytes = if sent.is_empty() {
            query_bytes(spec, 0).unwrap_or_default()
        } else {
            sent.to_vec()
        };
        format!(
            "{} octet(s) {}",
            bytes.len(),
            wire::hex_max(&bytes, SHOWN_OCTETS)
        )
    } else {
        one_message(sent)
    };
    let not_sent = if sent.is_empty() { " (not sent)" } else { "" };
    let response = match message(spec.transport, received) {
        None => "nothing".to_string(),
        Some(m) => one_message(m),
    };
    let end = match (end, spec.transport) {
        (ExchangeEnd::Closed, DnsTransport::Udp) => "the server ended".to_string(),
        (end, _) => end.to_string(),
    };
    format!("{query}{not_sent} -> {response} ({end})")
}

/// A message in one line: decoded, with its ID and length; its first
/// octets in hex when it does not decode.
fn one_message(m: &[u8]) -> String {
    let mut summary = crate::servers::dns::summarize(m);
    let read = wire::parse(m).questions;
    let shown = |q: &wire::Question| {
        let t = hickory_proto::rr::RecordType::from(q.qtype);
        (format!("{}.", q.name), t.to_string())
    };
    // A first name that ends in a pointer into the header reads here.
    if let (Some(s), Some(q)) = (summary.as_mut(), read.first())
        && s.question.is_none()
    {
        let (name, qtype) = shown(q);
        s.question = Some(crate::trace::DnsQuestion {
            name,
            qtype,
            qclass: if q.qclass == 1 {
                "IN".into()
            } else {
                format!("CLASS{}", q.qclass)
            },
        });
    }
    let mut text = crate::servers::dns::describe_message(summary.as_ref(), m.len(), true);
    if read.len() > 1 {
        let more: Vec<String> = read[1..]
            .iter()
            .map(|q| {
                let (name, qtype) = shown(q);
                format!("{qtype} {name}")
            })
            .collect();
        text.push_str(&format!(" [and {}]", more.join(", ")));
    }
    match &summary {
        Some(s) if s.error.is_none() => format!("{text} [id {:04x}, {} octets]", s.id, m.len()),
        Some(s) => format!(
            "{text} [id {:04x}, {} octets: {}]",
            s.id,
            m.len(),
            wire::hex_max(m, SHOWN_OCTETS)
        ),
        None => format!("{} octet(s) {}", m.len(), wire::hex_max(m, SHOWN_OCTETS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> DnsProbeSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_question_is_encoded_as_rfc_1035_says() {
        let q = query_bytes(&spec("{name: www.example.com, id: 4660}"), 0).unwrap();
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        assert_eq!(q, want);
        let q = query_bytes(&spec("{name: a.b, type: MX, rd: false, opcode: 3}"), 7).unwrap();
        assert_eq!(&q[..4], &[0, 7, 3 << 3, 0]);
        assert_eq!(&q[q.len() - 4..], &[0, 15, 0, 1]);
    }

    #[test]
    fn compression_points_at_the_longest_earlier_suffix_or_the_header() {
        let one = query_bytes(&spec("{name: www.example.com, compress: true}"), 1).unwrap();
        assert_eq!(
            &one[12..],
            b"\x03www\x07example\x03com\xc0\x0b\x00\x01\x00\x01"
        );
        let two = query_bytes(
            &spec(
                "{questions: [{name: www.example.com}, {name: mail.Example.com}], compress: true}",
            ),
            1,
        )
        .unwrap();
        // `example.com` of the first name starts at 16.
        assert!(
            two.ends_with(b"\x04mail\xc0\x10\x00\x01\x00\x01"),
            "{two:02x?}"
        );
        // hickory reads both names back whole.
        let m = hickory_proto::op::Message::from_vec(&two).unwrap();
        assert_eq!(m.queries[1].name().to_ascii(), "mail.example.com.");
        let m = hickory_proto::op::Message::from_vec(&one).unwrap();
        assert_eq!(m.queries[0].name().to_ascii(), "www.example.com.");
    }

    #[test]
    fn hex_gives_exact_bytes_and_errors_say_why() {
        assert_eq!(parse_hex("ab 01\n ff").unwrap(), [0xab, 1, 0xff]);
        assert!(parse_hex("abc").unwrap_err().contains("3 hex digits"));
        assert!(parse_hex("zz").unwrap_err().contains("`zz`"));
        assert!(type_code("BOGUS").is_err());
        assert_eq!(type_code("TYPE65").unwrap(), 65);
        assert_eq!(class_code("CLASS7").unwrap(), 7);
    }

    #[test]
    fn default_ids_follow_the_seed_alone() {
        assert_eq!(default_id(1, "a"), default_id(1, "a"));
        assert_ne!(default_id(1, "a"), default_id(2, "a"));
        assert_ne!(default_id(1, "a"), default_id(1, "b"));
    }

    /// A program on PATH or in /usr/sbin.
    fn which(program: &str) -> Option<std::path::PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    }

    /// A UDP and TCP port free on loopback just now.
    fn free_port() -> u16 {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let t = std::net::TcpListener::bind(s.local_addr().unwrap());
        match t {
            Ok(t) => t.local_addr().unwrap().port(),
            Err(_) => free_port(),
        }
    }

    fn probe(name: &str, yaml: &str, timeout: Duration) -> Probe {
        let dns = spec(yaml);
        Probe {
            name: name.into(),
            bytes: query_bytes(&dns, 0x5a5a).unwrap(),
            transport: dns.transport,
            timeout,
        }
    }

    /// The probes against a real name server: dnsmasq, on loopback, with
    /// host records; over UDP and TCP, with a compressed name, and hex.
    #[tokio::test]
    async fn probes_talk_to_dnsmasq_over_udp_and_tcp() {
        let Some(dnsmasq) = which("dnsmasq") else {
            eprintln!("skipped: dnsmasq is not installed (.ci/run installs it)");
            return;
        };
        let port = free_port();
        let mut server = tokio::process::Command::new(dnsmasq)
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--pid-file=",
                "--user=root",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local=/example.com/",
                "--host-record=www.example.com,10.0.0.1,300",
            ])
            .arg(format!("--port={port}"))
            .kill_on_drop(true)
            .spawn()
            .expect("dnsmasq starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let recorder = Recorder::new();
        let www = probe("www", "{name: www.example.com}", Duration::from_millis(300));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = exchange(addr, None, &www, &recorder).await;
            if s.end == ExchangeEnd::Complete {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dnsmasq never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let long = Duration::from_secs(5);
        for (name, yaml) in [
            ("tcp", "{name: www.example.com, transport: tcp}"),
            ("compressed", "{name: www.example.com, compress: true}"),
            ("missing", "{name: nothere.example.com}"),
            ("status", "{name: www.example.com, opcode: 2}"),
        ] {
            let s = exchange(addr, None, &probe(name, yaml, long), &recorder).await;
            assert_eq!(s.end, ExchangeEnd::Complete, "{name}");
        }
        let trace = recorder.snapshot();
        let answer = |id: &str| {
            trace
                .events
                .iter()
                .rev()
                .find_map(|e| match &e.kind {
                    EventKind::Exchange {
                        probe, received, ..
                    } if probe == id => Some(received.clone()),
                    _ => None,
                })
                .unwrap()
        };
        for (id, transport) in [
            ("www", DnsTransport::Udp),
            ("tcp", DnsTransport::Tcp),
            ("compressed", DnsTransport::Udp),
        ] {
            let received = answer(id);
            let p = wire::parse(message(transport, &received).unwrap());
            assert_eq!(p.error, None, "{id}");
            assert_eq!(p.header.id, 0x5a5a, "{id}");
            assert_eq!(p.questions[0].name, "www.example.com", "{id}");
            assert_eq!(p.answers[0].a(), Some([10, 0, 0, 1].into()), "{id}");
            assert_eq!(p.answers[0].ttl, 300, "{id}");
        }
        // The TCP answer came with its length prefix, and the whole message.
        let tcp = answer("tcp");
        assert_eq!(
            usize::from(u16::from_be_bytes([tcp[0], tcp[1]])),
            tcp.len() - 2
        );
        assert_eq!(wire::parse(&answer("missing")).header.rcode(), 3);
        let status = wire::parse(&answer("status")).header;
        // Without an upstream to pass it to, dnsmasq refuses another opcode.
        assert_eq!((status.id, status.opcode(), status.rcode()), (0x5a5a, 2, 5));
        let line = describe_exchange(
            &spec("{name: www.example.com}"),
            &www.bytes,
            &answer("www"),
            &ExchangeEnd::Complete,
        );
        assert!(
            line.contains("answer: www.example.com. 300 A 10.0.0.1"),
            "{line}"
        );
        let _ = server.kill().await;
    }
}
