//! The DNS server's answers, faults and records, without sockets.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};

use super::*;

/// A lab with one dns server holding `zones` (YAML, indented as a server's
/// fields), and extra server fields.
pub(crate) fn lab_with(zones: &str, extra: &str) -> crate::spec::Lab {
    let yaml = format!(
        "name: t\ntitle: T\nservers:\n  - name: dns\n    kind: dns\n    port: 53\n{extra}    zones:\n{zones}program:\n  entry: [client.py]\nchecks:\n  - {{ id: runs, title: r, points: 1 }}\n"
    );
    crate::spec::load_str("t.yaml", &yaml).unwrap_or_else(|e| panic!("{}", e.render(false)))
}

/// The flat zones most tests ask.
pub(crate) const ZONES: &str = r#"      - origin: example.com
        ttl: 300
        records:
          - { name: "@", type: SOA, value: "ns1 hostmaster 2024010101 3600 600 86400 60" }
          - { name: "@", type: NS, value: ns1 }
          - { name: "@", type: NS, value: ns2.example.net. }
          - { name: ns1, type: A, value: 10.0.0.53 }
          - { name: "@", type: MX, value: "10 mail" }
          - { name: "@", type: MX, value: "20 mail.example.net." }
          - { name: mail, type: A, value: 10.0.0.25 }
          - { name: www, type: A, value: 10.0.0.1 }
          - { name: www, type: AAAA, value: "2001:db8::1" }
          - { name: web, type: CNAME, value: www }
          - { name: alias, type: CNAME, value: web.example.com. }
          - { name: out, type: CNAME, value: www.example.net. }
          - { name: away, type: CNAME, value: www.elsewhere.org. }
          - { name: loop1, type: CNAME, value: loop2 }
          - { name: loop2, type: CNAME, value: loop1 }
          - { name: dangling, type: CNAME, value: nothing }
          - { name: a.b.deep, type: A, value: 10.0.0.9 }
          - { name: txt, type: TXT, value: "hello world" }
          - { name: sub, type: NS, value: ns.sub }
          - { name: ns.sub, type: A, value: 10.0.0.77 }
          - { name: other, type: NS, value: ns2.example.net. }
      - origin: example.net
        records:
          - { name: www, type: A, value: 10.1.0.1 }
          - { name: mail, type: A, value: 10.1.0.25 }
          - { name: ns2, type: A, value: 10.1.0.53 }
"#;

fn server(zones: &str, extra: &str) -> DnsConfig {
    let lab = lab_with(zones, extra);
    config(&lab.servers[0], lab.seed)
}

fn flat() -> DnsConfig {
    server(ZONES, "")
}

/// A query for `name` of type `qtype`, with RD set and an ID of 0x1234.
pub(crate) fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

const TO: &str = "127.0.0.1:53";

fn ask_bytes(config: &DnsConfig, message: &Message, transport: Transport) -> Vec<u8> {
    let to: SocketAddr = TO.parse().unwrap();
    respond(&config.zones, to, &message.to_vec().unwrap(), transport).expect("a reply")
}

fn ask(config: &DnsConfig, name: &str, qtype: RecordType) -> Message {
    Message::from_vec(&ask_bytes(config, &query(name, qtype), Transport::Udp)).unwrap()
}

fn shown(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| compact(&r.to_string())).collect()
}

#[test]
fn an_exact_match_is_answered_with_authority_and_the_header_echoed() {
    let reply = ask(&flat(), "www.example.com.", RecordType::A);
    assert_eq!(reply.id, 0x1234);
    assert_eq!(reply.message_type, MessageType::Response);
    assert!(reply.authoritative && reply.recursion_desired);
    assert!(
        !reply.recursion_available,
        "an authoritative server does not recurse"
    );
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(shown(&reply.answers), ["www.example.com. 300 A 10.0.0.1"]);
    assert!(reply.authorities.is_empty() && reply.additionals.is_empty());
    let reply = ask(&flat(), "www.example.com.", RecordType::AAAA);
    assert_eq!(
        shown(&reply.answers),
        ["www.example.com. 300 AAAA 2001:db8::1"]
    );
    // The name as the client wrote it (0x20 letter case).
    let reply = ask(&flat(), "wWw.ExAmple.COM.", RecordType::A);
    assert_eq!(reply.answers[0].name.to_ascii(), "wWw.ExAmple.COM.");
}

#[test]
fn mx_and_ns_answers_bring_the_hosts_addresses_from_any_zone_held() {
    let reply = ask(&flat(), "example.com.", RecordType::MX);
    assert_eq!(
        shown(&reply.answers),
        [
            "example.com. 300 MX 10 mail.example.com.",
            "example.com. 300 MX 20 mail.example.net."
        ]
    );
    assert_eq!(
        shown(&reply.additionals),
        [
            "mail.example.com. 300 A 10.0.0.25",
            "mail.example.net. 3600 A 10.1.0.25"
        ]
    );
    let reply = ask(&flat(), "example.com.", RecordType::NS);
    assert!(reply.authoritative);
    assert_eq!(reply.answers.len(), 2);
    assert_eq!(
        shown(&reply.additionals),
        [
            "ns1.example.com. 300 A 10.0.0.53",
            "ns2.example.net. 3600 A 10.1.0.53"
        ]
    );
}

#[test]
fn cname_chains_are_chased_within_and_across_zones() {
    let reply = ask(&flat(), "alias.example.com.", RecordType::A);
    assert_eq!(
        shown(&reply.answers),
        [
            "alias.example.com. 300 CNAME web.example.com.",
            "web.example.com. 300 CNAME www.example.com.",
            "www.example.com. 300 A 10.0.0.1"
        ]
    );
    assert!(reply.authoritative);
    let reply = ask(&flat(), "out.example.com.", RecordType::A);
    assert_eq!(
        shown(&reply.answers),
        [
            "out.example.com. 300 CNAME www.example.net.",
            "www.example.net. 3600 A 10.1.0.1"
        ]
    );
    // A target in no zone held: the CNAME alone, for the client to follow.
    let reply = ask(&flat(), "away.example.com.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert_eq!(
        shown(&reply.answers),
        ["away.example.com. 300 CNAME www.elsewhere.org."]
    );
    // A loop ends; a dangling target is NXDOMAIN (RFC 6604) with the SOA.
    let reply = ask(&flat(), "loop1.example.com.", RecordType::A);
    assert_eq!(reply.answers.len(), 2);
    let reply = ask(&flat(), "dangling.example.com.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
    // Asked for the CNAME itself: no chase.
    let reply = ask(&flat(), "web.example.com.", RecordType::CNAME);
    assert_eq!(
        shown(&reply.answers),
        ["web.example.com. 300 CNAME www.example.com."]
    );
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let reply = ask(&flat(), "nope.example.com.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::NXDomain);
    assert!(reply.authoritative && reply.answers.is_empty());
    assert_eq!(
        shown(&reply.authorities),
        [
            "example.com. 60 SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 60"
        ]
    );
    for (name, qtype) in [
        ("www.example.com.", RecordType::TXT),
        ("deep.example.com.", RecordType::A),
        ("b.deep.example.com.", RecordType::A),
    ] {
        let reply = ask(&flat(), name, qtype);
        assert_eq!(reply.response_code, ResponseCode::NoError, "{name}");
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(
            reply.authorities[0].record_type(),
            RecordType::SOA,
            "{name}"
        );
    }
    // A zone without an SOA of its own gets one made up.
    let reply = ask(&flat(), "nope.example.net.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::NXDomain);
    assert_eq!(
        shown(&reply.authorities),
        ["example.net. 3600 SOA ns.example.net. hostmaster.example.net. 1 3600 600 86400 3600"]
    );
}

#[test]
fn a_name_below_a_delegation_gets_a_referral_with_glue_and_without_aa() {
    let reply = ask(&flat(), "www.sub.example.com.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::NoError);
    assert!(!reply.authoritative);
    assert!(reply.answers.is_empty());
    assert_eq!(
        shown(&reply.authorities),
        ["sub.example.com. 300 NS ns.sub.example.com."]
    );
    assert_eq!(
        shown(&reply.additionals),
        ["ns.sub.example.com. 300 A 10.0.0.77"]
    );
    // A name server outside the zone: no glue, even from another zone held.
    let reply = ask(&flat(), "other.example.com.", RecordType::A);
    assert!(!reply.authoritative);
    assert_eq!(
        shown(&reply.authorities),
        ["other.example.com. 300 NS ns2.example.net."]
    );
    assert!(reply.additionals.is_empty());
}

#[test]
fn names_outside_the_zones_are_refused_and_so_are_other_classes() {
    let reply = ask(&flat(), "www.google.com.", RecordType::A);
    assert_eq!(reply.response_code, ResponseCode::Refused);
    assert!(!reply.authoritative && reply.answers.is_empty() && reply.authorities.is_empty());
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
    let reply = Message::from_vec(&ask_bytes(&flat(), &chaos, Transport::Udp)).unwrap();
    assert_eq!(reply.response_code, ResponseCode::Refused);
    let reply = ask(&flat(), "example.com.", RecordType::AXFR);
    assert_eq!(reply.response_code, ResponseCode::Refused);
}

#[test]
fn answers_are_compressed_with_pointers_to_the_question() {
    let bytes = ask_bytes(
        &flat(),
        &query("www.example.com.", RecordType::A),
        Transport::Udp,
    );
    // Header (12), question: 3www7example3com0 (17) + type and class (4).
    assert_eq!(&bytes[12..29], b"\x03www\x07example\x03com\x00");
    // The answer's owner name is a pointer to offset 12, the question's name.
    assert_eq!(&bytes[33..35], &[0xC0, 0x0C]);
    assert_eq!(bytes.len(), 33 + 2 + 10 + 4, "{bytes:?}");
    // MX: the exchange `mail.example.com` is `mail` plus a pointer to `example.com`.
    let bytes = ask_bytes(
        &flat(),
        &query("example.com.", RecordType::MX),
        Transport::Udp,
    );
    let at = bytes
        .windows(6)
        .position(|w| w == b"\x04mail\xC0")
        .expect("mail + pointer");
    assert_eq!(bytes[at + 6], 12, "pointer to the question's example.com");
}

#[test]
fn a_large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let big = "x".repeat(300);
    let zones = format!(
        "      - origin: example.com\n        records:\n          - {{ name: big, type: TXT, value: \"{big}\" }}\n          - {{ name: big, type: TXT, value: \"y{big}\" }}\n"
    );
    let config = server(&zones, "");
    let q = query("big.example.com.", RecordType::TXT);
    let reply = Message::from_vec(&ask_bytes(&config, &q, Transport::Udp)).unwrap();
    assert!(reply.truncation);
    assert!(reply.answers.is_empty() && reply.authorities.is_empty());
    assert_eq!(reply.queries, q.queries);
    let bytes = ask_bytes(&config, &q, Transport::Tcp);
    assert!(bytes.len() > 512);
    let reply = Message::from_vec(&bytes).unwrap();
    assert!(!reply.truncation);
    assert_eq!(reply.answers.len(), 2);
    // EDNS with room for it: whole over UDP too, with an OPT record back.
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    let mut q = q.clone();
    q.set_edns(edns);
    let reply = Message::from_vec(&ask_bytes(&config, &q, Transport::Udp)).unwrap();
    assert!(!reply.truncation);
    assert_eq!(reply.answers.len(), 2);
    assert_eq!(reply.edns.as_ref().unwrap().max_payload(), EDNS_PAYLOAD);
}

#[test]
fn malformed_queries_get_formerr_other_opcodes_notimp() {
    let config = flat();
    let to: SocketAddr = TO.parse().unwrap();
    for bytes in [
        &b"\x12\x34\x01"[..],
        b"",
        &[0x12, 0x34, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        assert!(respond(&config.zones, to, bytes, Transport::Udp).is_none());
    }
    let cut = query("example.com.", RecordType::A).to_vec().unwrap()[..20].to_vec();
    let reply =
        Message::from_vec(&respond(&config.zones, to, &cut, Transport::Udp).unwrap()).unwrap();
    assert_eq!(reply.response_code, ResponseCode::FormErr);
    assert_eq!(reply.id, 0x1234);
    let mut q = query("www.example.com.", RecordType::A);
    q.metadata.op_code = OpCode::Status;
    let reply = Message::from_vec(&ask_bytes(&config, &q, Transport::Udp)).unwrap();
    assert_eq!(reply.response_code, ResponseCode::NotImp);
    assert_eq!(reply.op_code, OpCode::Status);
}

#[test]
fn faults_are_decided_by_number_and_the_delay_by_the_seed() {
    let config = server(
        ZONES,
        "    delay: { min: 20ms, max: 200ms }\n    faults: { drop_first: 2, wrong_id: [3], truncated: [4], malformed: [5] }\n",
    );
    let d: Vec<Decision> = (1..=6).map(|i| decide(&config, i)).collect();
    assert!(d[0].dropped && d[1].dropped && !d[2].dropped);
    assert_eq!(
        d.iter().map(|d| d.fault).collect::<Vec<_>>(),
        [
            None,
            None,
            Some(Fault::WrongId),
            Some(Fault::Truncated),
            Some(Fault::Malformed),
            None
        ]
    );
    for x in &d {
        assert!((20..=200).contains(&x.delay.as_millis()), "{x:?}");
    }
    assert_eq!(d, (1..=6).map(|i| decide(&config, i)).collect::<Vec<_>>());
    let reseeded = DnsConfig {
        seed: 99,
        ..config.clone()
    };
    assert_ne!(
        d.iter().map(|x| x.delay).collect::<Vec<_>>(),
        (1..=6)
            .map(|i| decide(&reseeded, i).delay)
            .collect::<Vec<_>>()
    );
}

#[test]
fn damaged_responses_are_damaged_the_way_their_fault_says() {
    let reply = ask_bytes(
        &flat(),
        &query("www.example.com.", RecordType::A),
        Transport::Udp,
    );
    let wrong = damage(&reply, Fault::WrongId);
    assert_eq!(wrong.len(), reply.len());
    assert_ne!(wrong[..2], reply[..2]);
    // The same message but for its addresses: decoys a client that takes
    // the wrong ID prints.
    let (right, decoy) = (
        Message::from_vec(&reply).unwrap(),
        Message::from_vec(&wrong).unwrap(),
    );
    assert_eq!(right.answers.len(), decoy.answers.len());
    assert_eq!(right.answers[0].data.to_string(), "10.0.0.1");
    assert_eq!(decoy.answers[0].data.to_string(), "192.0.2.1");
    assert_eq!(decoy.answers[0].name, right.answers[0].name);
    assert_eq!(wrong[2..wrong.len() - 4], reply[2..reply.len() - 4]);
    // AAAA too, and every section; a message cut short changes no more than it reads.
    let mx = ask_bytes(
        &flat(),
        &query("example.com.", RecordType::MX),
        Transport::Udp,
    );
    let moved = Message::from_vec(&damage(&mx, Fault::WrongId)).unwrap();
    let kept = Message::from_vec(&mx).unwrap();
    assert_eq!(moved.answers, kept.answers, "an MX record is no address");
    for r in &moved.additionals {
        let text = r.data.to_string();
        assert!(
            text.starts_with("192.0.2.") || text.starts_with("100::"),
            "{text}"
        );
    }
    for cut in 0..reply.len() {
        let mut part = reply[..cut].to_vec();
        decoy_addresses(&mut part);
    }
    let cut = damage(&reply, Fault::Truncated);
    assert!(cut.len() < reply.len() && cut.len() > 33, "{cut:?}");
    assert_eq!(
        cut[..12],
        reply[..12],
        "the counts still announce the answer"
    );
    assert!(Message::from_vec(&cut).is_err());
    let bad = damage(&reply, Fault::Malformed);
    assert_eq!(&bad[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
    // The answer's name is a pointer to its own offset.
    assert_eq!(&bad[33..35], &[0xC0, 33]);
    assert!(Message::from_vec(&bad).is_err(), "hickory refuses the loop");
    let summary = summarize(&bad).unwrap();
    assert!(summary.error.is_some());
    assert_eq!(summary.question.unwrap().name, "www.example.com.");
}

#[test]
fn messages_are_summarized_and_described_in_one_line() {
    let q = query("Www.Example.com.", RecordType::A).to_vec().unwrap();
    let s = summarize(&q).unwrap();
    assert_eq!((s.id, s.counts), (0x1234, [1, 0, 0, 0]));
    assert!(!s.response() && s.recursion_desired());
    assert_eq!(
        s.question
            .as_ref()
            .map(|q| (q.name.as_str(), q.qtype.as_str(), q.qclass.as_str())),
        Some(("Www.Example.com.", "A", "IN"))
    );
    assert_eq!(
        describe_message(Some(&s), q.len(), true),
        "query A www.example.com. (rd)"
    );
    let reply = ask_bytes(
        &flat(),
        &query("www.sub.example.com.", RecordType::A),
        Transport::Udp,
    );
    let s = summarize(&reply).unwrap();
    assert_eq!(
        describe_message(Some(&s), reply.len(), true),
        "NOERROR rd, authority: sub.example.com. 300 NS ns.sub.example.com., additional: ns.sub.example.com. 300 A 10.0.0.77"
    );
    assert!(summarize(b"short").is_none());
    assert_eq!(
        describe_message(None, 5, true),
        "not a DNS message (5 bytes, shorter than a header)"
    );
}

/// Damaged queries and responses (flipped bits, cuts, repeats, garbage), fed
/// to the handler and the summaries: a panic fails the test.
#[test]
fn random_and_damaged_bytes_never_panic_the_handler() {
    let config = flat();
    let to: SocketAddr = TO.parse().unwrap();
    let seeds: Vec<Vec<u8>> = [
        query("www.example.com.", RecordType::A),
        query("alias.example.com.", RecordType::MX),
        query("x.sub.example.com.", RecordType::NS),
    ]
    .iter()
    .map(|m| m.to_vec().unwrap())
    .chain([ask_bytes(
        &config,
        &query("example.com.", RecordType::MX),
        Transport::Udp,
    )])
    .collect();
    let seeds: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
    let mut m = super::super::fuzz::bytes::Mutator::new(0x0064_6e73);
    for i in 0..20_000 {
        let mut input = m.input(&seeds);
        input.truncate(65_535);
        let transport = if i % 2 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let reply = respond(&config.zones, to, &input, transport);
        if let Some(reply) = reply {
            assert!(transport == Transport::Tcp || reply.len() <= usize::from(EDNS_PAYLOAD));
            let summary = summarize(&reply).expect("a reply has a header");
            assert!(summary.response());
            assert_eq!(summary.id, u16::from_be_bytes([input[0], input[1]]));
        }
        let _ = describe_message(summarize(&input).as_ref(), input.len(), true);
        for f in [Fault::WrongId, Fault::Truncated, Fault::Malformed] {
            let _ = summarize(&damage(&input, f));
        }
    }
}

#[test]
fn the_transcript_shows_each_query_and_its_fate_without_ids_or_ports() {
    let rec = Recorder::new();
    let shared = Shared::new(flat(), rec.clone());
    let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
    let local: SocketAddr = TO.parse().unwrap();
    let q = query("WWW.example.com.", RecordType::A).to_vec().unwrap();
    shared.record(
        Duration::ZERO,
        Dir::In,
        Transport::Udp,
        1,
        None,
        peer,
        local,
        &q,
        None,
    );
    rec.record_at(
        Duration::ZERO,
        EventKind::Dropped {
            server: "dns".into(),
            index: 1,
        },
    );
    let reply = respond(&shared.config.zones, local, &q, Transport::Udp).unwrap();
    shared.record(
        Duration::ZERO,
        Dir::In,
        Transport::Tcp,
        1,
        Some(1),
        peer,
        local,
        &q,
        None,
    );
    shared.record(
        Duration::ZERO,
        Dir::Out,
        Transport::Tcp,
        1,
        Some(1),
        peer,
        local,
        &damage(&reply, Fault::WrongId),
        Some(Fault::WrongId),
    );
    assert_eq!(
        transcript("dns", &rec.snapshot()),
        [
            "udp #1   -> 127.0.0.1: query A www.example.com. (rd)",
            "udp #1      dropped (no answer)",
            "tcp #1   -> 127.0.0.1 (connection 1): query A www.example.com. (rd)",
            "tcp #1   <- NOERROR aa rd, answer: www.example.com. 300 A 192.0.2.1 [fault: a wrong ID, sent first]",
        ]
    );
}
