//! DNS messages read field by field (RFC 1035 §4.1), for the checks of
//! both sides of the DNS labs: what a student's client sent and was sent
//! back, and what a student's server answered netgrade's probes.
//!
//! A message reads as far as it goes: the fields before a fault, and the
//! fault located ([`WireError`]: its offset, the field, what is wrong with
//! it). Each name keeps the compression pointers it was reached through and
//! each record its offset, TTL and data, so a check can say at which byte a
//! program went wrong and what the bytes there are.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Jumps a name may take through compression pointers before it is a loop.
const MAX_JUMPS: usize = 64;

/// The 12-octet header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// ID (offset 0).
    pub id: u16,
    /// The flags word (offset 2).
    pub flags: u16,
    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT (offsets 4, 6, 8, 10).
    pub counts: [u16; 4],
}

impl Header {
    /// QR (bit 15 of the flags).
    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// OPCODE (bits 11–14).
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xF) as u8
    }
    /// TC.
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// RD.
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    /// RCODE (bits 0–3).
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }
}

/// A domain name as it sits in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// Its text, labels joined by dots, with the final dot (`.` for the
    /// root); octets other than printable ASCII, and `.` and `\` inside a
    /// label, as `\DDD` (as master files write them).
    pub text: String,
    /// Where what follows the name starts.
    pub end: usize,
    /// The compression pointers it was read through: (where the pointer
    /// is, the offset it points to), in order.
    pub pointers: Vec<(usize, usize)>,
}

impl Name {
    /// Its text in lower case, without the final dot (`example.com`; empty:
    /// the root).
    pub fn plain(&self) -> String {
        plain(&self.text)
    }
}

/// `text` in lower case without its final dot.
pub fn plain(text: &str) -> String {
    let t = text.strip_suffix('.').unwrap_or(text);
    t.to_ascii_lowercase()
}

/// A question as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The name, lower-cased, without the final dot (empty: the root).
    pub name: String,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Where the question starts.
    pub at: usize,
}

/// What a record holds, for the types the checks read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Data {
    /// An A record's address.
    A(Ipv4Addr),
    /// An AAAA record's address.
    Aaaa(Ipv6Addr),
    /// A CNAME's or NS's name.
    Name(Name),
    /// An MX record's preference and exchange.
    Mx(u16, Name),
    /// A CNAME, NS or MX whose name does not read.
    Unreadable,
    /// Anything else.
    Other,
}

/// A resource record as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its owner name.
    pub owner: Name,
    /// TYPE.
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// TTL, 32 bits.
    pub ttl: u32,
    /// RDATA, raw.
    pub rdata: Vec<u8>,
    /// RDATA decoded.
    pub data: Data,
    /// Where the record starts.
    pub at: usize,
}

impl Record {
    /// The address of an A record.
    pub fn a(&self) -> Option<Ipv4Addr> {
        match self.data {
            Data::A(a) => Some(a),
            _ => None,
        }
    }

    /// `www.example.com. 86400 A 10.0.0.1`, for evidence.
    pub fn show(&self) -> String {
        let data = match &self.data {
            Data::A(a) => a.to_string(),
            Data::Aaaa(a) => a.to_string(),
            Data::Name(n) => n.text.clone(),
            Data::Mx(p, n) => format!("{p} {}", n.text),
            Data::Unreadable | Data::Other => "…".into(),
        };
        format!(
            "{} {} {} {data}",
            self.owner.text,
            self.ttl,
            type_name(self.rtype)
        )
    }
}

/// Where and why a message stops reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    /// The offset of the field at fault.
    pub offset: usize,
    /// The field, for people: `the TTL of answer 1`.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.field, self.offset, self.problem
        )
    }
}

/// A message, read as far as it goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The header (zeros when the message is shorter than one).
    pub header: Header,
    /// The questions read.
    pub questions: Vec<Question>,
    /// The answer records read.
    pub answers: Vec<Record>,
    /// The authority records read.
    pub authority: Vec<Record>,
    /// The additional records read.
    pub additional: Vec<Record>,
    /// Octets after the last record the counts announce.
    pub trailing: usize,
    /// Where reading stopped, if it did before the end.
    pub error: Option<WireError>,
}

impl Message {
    /// Whether every part read: all the counts announce, and the names in
    /// the records' data.
    pub fn whole(&self) -> bool {
        self.error.is_none()
            && [&self.answers, &self.authority, &self.additional]
                .into_iter()
                .flatten()
                .all(|r| r.data != Data::Unreadable)
    }

    /// The addresses of the answer section's A records.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.answers.iter().filter_map(Record::a).collect()
    }
}

/// Reads `msg` field by field.
pub fn parse(msg: &[u8]) -> Message {
    let mut p = Message::default();
    if msg.len() < 12 {
        p.error = Some(WireError {
            offset: 0,
            field: "the header".into(),
            problem: format!(
                "the message is {} octet(s), shorter than the 12-octet header",
                msg.len()
            ),
        });
        return p;
    }
    let u16_at = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    p.header = Header {
        id: u16_at(0),
        flags: u16_at(2),
        counts: [u16_at(4), u16_at(6), u16_at(8), u16_at(10)],
    };
    let mut r = Reader { msg, pos: 12 };
    for i in 0..p.header.counts[0] {
        match r.question(usize::from(i) + 1) {
            Ok(q) => p.questions.push(q),
            Err(e) => {
                p.error = Some(e);
                return p;
            }
        }
    }
    for (section, count) in ["answer", "authority", "additional"]
        .into_iter()
        .zip(&p.header.counts[1..])
    {
        for i in 0..*count {
            match r.record(section, usize::from(i) + 1) {
                Ok(rec) => match section {
                    "answer" => p.answers.push(rec),
                    "authority" => p.authority.push(rec),
                    _ => p.additional.push(rec),
                },
                Err(e) => {
                    p.error = Some(e);
                    return p;
                }
            }
        }
    }
    p.trailing = msg.len() - r.pos;
    p
}

/// Reads `msg` whole; `None` when any part of it does not read
/// ([`Message::whole`]).
pub fn parse_whole(msg: &[u8]) -> Option<Message> {
    Some(parse(msg)).filter(Message::whole)
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn need(&self, n: usize, field: &str) -> Result<(), WireError> {
        if self.pos + n <= self.msg.len() {
            return Ok(());
        }
        Err(WireError {
            offset: self.pos,
            field: field.into(),
            problem: format!(
                "the message ends here ({} octet(s) in all); {n} more are needed",
                self.msg.len()
            ),
        })
    }

    fn u16(&mut self, field: &str) -> Result<u16, WireError> {
        self.need(2, field)?;
        let v = u16::from_be_bytes([self.msg[self.pos], self.msg[self.pos + 1]]);
        self.pos += 2;
        Ok(v)
    }

    fn question(&mut self, n: usize) -> Result<Question, WireError> {
        let at = self.pos;
        let name = self.name(&format!("the name of question {n}"))?.plain();
        let qtype = self.u16(&format!("the QTYPE of question {n}"))?;
        let qclass = self.u16(&format!("the QCLASS of question {n}"))?;
        Ok(Question {
            name,
            qtype,
            qclass,
            at,
        })
    }

    fn record(&mut self, section: &str, n: usize) -> Result<Record, WireError> {
        let at = self.pos;
        let what = format!("{section} {n}");
        let owner = self.name(&format!("the name of {what}"))?;
        let rtype = self.u16(&format!("the TYPE of {what}"))?;
        let class = self.u16(&format!("the CLASS of {what}"))?;
        let ttl_field = format!("the TTL of {what}");
        self.need(4, &ttl_field)?;
        let m = self.msg;
        let ttl = u32::from_be_bytes([
            m[self.pos],
            m[self.pos + 1],
            m[self.pos + 2],
            m[self.pos + 3],
        ]);
        self.pos += 4;
        let len_at = self.pos;
        let rdlength = usize::from(self.u16(&format!("the RDLENGTH of {what}"))?);
        if self.pos + rdlength > m.len() {
            let left = m.len() - self.pos;
            let mut problem =
                format!("it says {rdlength} octet(s) of RDATA follow, but only {left} remain");
            // Read with a 2-octet TTL, would the record end where the data does?
            let short = u16::from_be_bytes([m[len_at - 2], m[len_at - 1]]);
            if usize::from(short) <= left + 2 {
                problem.push_str(&format!(
                    "; the TTL before it looks packed in 2 octets ({}): a TTL takes 4 (struct '>I', not '>H')",
                    hex(&m[len_at - 4..len_at - 2])
                ));
            }
            return Err(WireError {
                offset: len_at,
                field: format!("the RDLENGTH of {what}"),
                problem,
            });
        }
        let start = self.pos;
        let rdata = m[start..start + rdlength].to_vec();
        self.pos += rdlength;
        Ok(Record {
            owner,
            rtype,
            class,
            ttl,
            data: decode(m, rtype, start, &rdata),
            rdata,
            at,
        })
    }

    /// A name at the current position, following pointers; the position
    /// moves past the name's own octets.
    fn name(&mut self, field: &str) -> Result<Name, WireError> {
        let name = read_name(self.msg, self.pos, field)?;
        self.pos = name.end;
        Ok(name)
    }
}

/// The data of a record of type `rtype` whose RDATA, `rdata`, starts at
/// `start` of `msg` (names in it may point anywhere in the message).
fn decode(msg: &[u8], rtype: u16, start: usize, rdata: &[u8]) -> Data {
    let name = |at: usize| read_name(msg, at, "").ok();
    match (rtype, rdata.len()) {
        (1, 4) => Data::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        (28, 16) => Data::Aaaa(Ipv6Addr::from(
            <[u8; 16]>::try_from(rdata).unwrap_or_default(),
        )),
        (2 | 5, _) => name(start).map_or(Data::Unreadable, Data::Name),
        (15, 3..) => name(start + 2).map_or(Data::Unreadable, |n| {
            Data::Mx(u16::from_be_bytes([rdata[0], rdata[1]]), n)
        }),
        _ => Data::Other,
    }
}

/// Reads the name at `start` of `msg`: labels (at most 63 octets each)
/// ending with a zero octet, or with a pointer (two octets, the top two bits
/// set, the other 14 an offset from the start of the message). An error
/// names `field` and where in the name it went wrong.
pub fn read_name(msg: &[u8], start: usize, field: &str) -> Result<Name, WireError> {
    let err = |offset: usize, problem: String| WireError {
        offset,
        field: field.into(),
        problem,
    };
    let mut labels: Vec<String> = Vec::new();
    let mut octets = 0;
    let mut pos = start;
    let mut end = None;
    let mut pointers = Vec::new();
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(err(pos, "the message ends inside the name".into()));
        };
        match len & 0xC0 {
            0x00 if len == 0 => {
                end.get_or_insert(pos + 1);
                break;
            }
            0x00 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or_else(|| {
                        err(
                            pos,
                            format!("a label of {len} octet(s) runs past the end of the message"),
                        )
                    })?;
                labels.push(label.iter().map(|&b| show_octet(b)).collect());
                octets += label.len() + 1;
                pos += 1 + usize::from(len);
            }
            0xC0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(err(
                        pos,
                        "the message ends inside a compression pointer".into(),
                    ));
                };
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                end.get_or_insert(pos + 2);
                pointers.push((pos, target));
                if pointers.len() > MAX_JUMPS || target >= msg.len() {
                    return Err(err(
                        pos,
                        format!(
                            "the compression pointer {} points at offset {target}, outside the message or in a loop",
                            hex(&[len, low])
                        ),
                    ));
                }
                pos = target;
            }
            _ => {
                return Err(err(
                    pos,
                    format!(
                        "the length octet {len:02x} is neither a label length (up to 3f) nor a pointer (c0…)"
                    ),
                ));
            }
        }
        if octets > 255 {
            return Err(err(start, "the name is longer than 255 octets".into()));
        }
    }
    let text = if labels.is_empty() {
        ".".to_string()
    } else {
        format!("{}.", labels.join("."))
    };
    Ok(Name {
        text,
        end: end.unwrap_or(pos + 1),
        pointers,
    })
}

/// An octet of a label as text: printable ASCII as it is, `\DDD` otherwise
/// (as master files write them).
fn show_octet(b: u8) -> String {
    if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
        (b as char).to_string()
    } else {
        format!("\\{b:03}")
    }
}

/// A type's mnemonic (`A`, `MX`, `TYPE65`).
pub fn type_name(t: u16) -> String {
    match t {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        41 => "OPT".into(),
        255 => "ANY".into(),
        other => format!("TYPE{other}"),
    }
}

/// A type's number from its mnemonic, for the types a client lab asks.
pub fn type_number(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "ANY" => 255,
        _ => return None,
    })
}

/// Octets as hex: `01 2c`.
pub fn hex(bytes: &[u8]) -> String {
    hex_max(bytes, bytes.len())
}

/// Octets as hex, `03 77 77 77`; at most `max` of them, then `…`.
pub fn hex_max(bytes: &[u8], max: usize) -> String {
    let mut s: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        s.push("…".into());
    }
    s.join(" ")
}

/// The octets of `msg` from `at`, at most `n`, as hex.
pub fn hex_at(msg: &[u8], at: usize, n: usize) -> String {
    let end = (at + n).min(msg.len());
    hex(msg.get(at..end).unwrap_or_default())
}

/// `name` encoded as labels: `03 77 77 77 07 … 00`.
pub fn encoded(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(ttl: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        m.extend_from_slice(ttl);
        m.extend_from_slice(&[0, 4, 10, 0, 0, 1]);
        m
    }

    #[test]
    fn a_response_reads_with_offsets() {
        let p = parse(&response(&[0, 0, 1, 44]));
        assert_eq!(p.error, None);
        assert_eq!(p.header.id, 0x1234);
        assert!(p.header.qr() && p.header.rd());
        assert_eq!(p.questions[0].name, "www.example.com");
        assert_eq!(p.answers[0].owner.plain(), "www.example.com");
        assert_eq!(p.answers[0].owner.pointers, vec![(33, 12)]);
        assert_eq!(p.answers[0].ttl, 300);
        assert_eq!(p.answers[0].a(), Some([10, 0, 0, 1].into()));
        assert_eq!(p.answers[0].at, 33);
        assert_eq!(p.addresses(), vec![Ipv4Addr::new(10, 0, 0, 1)]);
        assert_eq!(p.answers[0].show(), "www.example.com. 300 A 10.0.0.1");
        assert!(parse_whole(&response(&[0, 0, 1, 44])).is_some());
    }

    #[test]
    fn a_ttl_in_two_octets_is_named() {
        let p = parse(&response(&[1, 44]));
        let e = p.error.unwrap();
        assert_eq!(e.field, "the RDLENGTH of answer 1");
        assert!(e.problem.contains("packed in 2 octets (01 2c)"), "{e}");
        assert_eq!(parse_whole(&response(&[1, 44])), None);
    }

    #[test]
    fn pointers_loops_and_bad_lengths_are_errors() {
        let mut m = vec![0; 12];
        m[5] = 1;
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        let e = parse(&m).error.unwrap();
        assert!(e.problem.contains("loop"), "{e}");
        m.truncate(12);
        m.extend_from_slice(&[0x45, b'a']);
        assert!(parse(&m).error.unwrap().problem.contains("45"));
        let e = parse(&[1, 2, 3]).error.unwrap();
        assert_eq!(e.field, "the header");
    }

    #[test]
    fn names_are_read_through_pointers_and_loops_stop() {
        // "example.com" at 12, then "www" + a pointer to 12 at 25.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&encoded("example.com"));
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xC0, 12]);
        let n = read_name(&m, 25, "").unwrap();
        assert_eq!(n.text, "www.example.com.");
        assert_eq!((n.end, n.pointers.clone()), (31, vec![(29, 12)]));
        assert_eq!(n.plain(), "www.example.com");
        m.extend_from_slice(&[0xC0, 31]);
        assert!(read_name(&m, 31, "").is_err(), "a pointer to itself");
        assert!(read_name(&[0x40], 0, "").is_err(), "not a label length");
        assert_eq!(hex_max(&encoded("a.b"), 3), "01 61 01 …");
        assert_eq!(hex(&encoded("a")), "01 61 00");
        assert_eq!(type_number("mx"), Some(15));
        assert_eq!(type_name(65), "TYPE65");
    }

    #[test]
    fn a_name_in_data_that_does_not_read_leaves_the_message_not_whole() {
        // The answer is a CNAME whose data is a pointer past the end.
        let mut m = response(&[0, 0, 1, 44]);
        m[36] = 5;
        let at = m.len() - 6;
        m.truncate(at);
        m.extend_from_slice(&[0, 2, 0xC0, 0xFF]);
        let p = parse(&m);
        assert_eq!(p.error, None);
        assert_eq!(p.answers[0].data, Data::Unreadable);
        assert!(!p.whole() && parse_whole(&m).is_none());
    }
}
