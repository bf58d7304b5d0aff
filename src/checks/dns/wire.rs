//! DNS messages read octet by octet, as the checks need them: each name
//! with the compression pointers it was reached through, each record with
//! its TTL and data, so a message can say at which byte a client went wrong.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Pointers followed before a name is taken for a loop.
const MAX_JUMPS: usize = 64;

/// A domain name as it sits in a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name {
    /// Its text, labels joined by dots, with the final dot (`.` for the root).
    pub text: String,
    /// Where what follows the name starts.
    pub end: usize,
    /// The compression pointers it was read through: (where the pointer
    /// is, the offset it points to), in order.
    pub pointers: Vec<(usize, usize)>,
}

impl Name {
    /// Its text in lower case, without the final dot (`example.com`).
    pub fn plain(&self) -> String {
        plain(&self.text)
    }
}

/// `text` in lower case without its final dot.
pub fn plain(text: &str) -> String {
    let t = text.strip_suffix('.').unwrap_or(text);
    t.to_ascii_lowercase()
}

/// Reads the name at `at`: labels (at most 63 octets each) ending with a zero
/// octet, or with a pointer (two octets, the top two bits set, the other 14
/// an offset from the start of the message). `None` when it does not read.
pub fn read_name(msg: &[u8], at: usize) -> Option<Name> {
    let mut labels: Vec<String> = Vec::new();
    let mut pos = at;
    let mut end = None;
    let mut pointers = Vec::new();
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => {
                let text = if labels.is_empty() {
                    ".".to_string()
                } else {
                    format!("{}.", labels.join("."))
                };
                return Some(Name {
                    text,
                    end: end.unwrap_or(pos + 1),
                    pointers,
                });
            }
            l if l & 0xC0 == 0xC0 => {
                let low = *msg.get(pos + 1)?;
                let target = (usize::from(l & 0x3F) << 8) | usize::from(low);
                end.get_or_insert(pos + 2);
                pointers.push((pos, target));
                if pointers.len() > MAX_JUMPS {
                    return None;
                }
                pos = target;
            }
            l if l & 0xC0 != 0 => return None,
            l => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(l))?;
                labels.push(label.iter().map(|&b| show_octet(b)).collect());
                pos += 1 + usize::from(l);
            }
        }
    }
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
    /// Anything else.
    Other,
}

/// A resource record.
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
    /// Its data.
    pub data: Data,
}

impl Record {
    /// `www.example.com. 86400 A 10.0.0.1`, for evidence.
    pub fn show(&self) -> String {
        let data = match &self.data {
            Data::A(a) => a.to_string(),
            Data::Aaaa(a) => a.to_string(),
            Data::Name(n) => n.text.clone(),
            Data::Mx(p, n) => format!("{p} {}", n.text),
            Data::Other => "…".into(),
        };
        format!(
            "{} {} {} {data}",
            self.owner.text,
            self.ttl,
            type_name(self.rtype)
        )
    }
}

/// A message, as far as it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// The ID.
    pub id: u16,
    /// The flags word.
    pub flags: u16,
    /// The first question: its name, type and class.
    pub question: Option<(Name, u16, u16)>,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section.
    pub authority: Vec<Record>,
    /// The additional section.
    pub additional: Vec<Record>,
}

impl Message {
    /// RCODE (the header's four bits).
    pub fn rcode(&self) -> u8 {
        (self.flags & 0xF) as u8
    }

    /// TC.
    pub fn truncated(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// The addresses of the answer section's A records.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.answers
            .iter()
            .filter_map(|r| match r.data {
                Data::A(a) => Some(a),
                _ => None,
            })
            .collect()
    }
}

/// Reads `msg` whole; `None` when any part of it does not read.
pub fn parse(msg: &[u8]) -> Option<Message> {
    if msg.len() < 12 {
        return None;
    }
    let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let mut m = Message {
        id: word(0),
        flags: word(2),
        ..Message::default()
    };
    let mut at = 12;
    for i in 0..word(4) {
        let name = read_name(msg, at)?;
        let fixed = msg.get(name.end..name.end + 4)?;
        at = name.end + 4;
        if i == 0 {
            let t = u16::from_be_bytes([fixed[0], fixed[1]]);
            let c = u16::from_be_bytes([fixed[2], fixed[3]]);
            m.question = Some((name, t, c));
        }
    }
    for (section, count) in [(0, word(6)), (1, word(8)), (2, word(10))] {
        for _ in 0..count {
            let (record, next) = read_record(msg, at)?;
            at = next;
            match section {
                0 => m.answers.push(record),
                1 => m.authority.push(record),
                _ => m.additional.push(record),
            }
        }
    }
    Some(m)
}

fn read_record(msg: &[u8], at: usize) -> Option<(Record, usize)> {
    let owner = read_name(msg, at)?;
    let fixed = msg.get(owner.end..owner.end + 10)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = owner.end + 10;
    let rdata = msg.get(start..start + rdlen)?;
    let data = match (rtype, rdlen) {
        (1, 4) => Data::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        (28, 16) => Data::Aaaa(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).ok()?)),
        (2 | 5, _) => Data::Name(read_name(msg, start)?),
        (15, 3..) => Data::Mx(
            u16::from_be_bytes([rdata[0], rdata[1]]),
            read_name(msg, start + 2)?,
        ),
        _ => Data::Other,
    };
    let record = Record {
        owner,
        rtype,
        class,
        ttl,
        data,
    };
    Some((record, start + rdlen))
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

/// Octets as hex, `03 77 77 77`; at most `max` of them, then `…`.
pub fn hex(bytes: &[u8], max: usize) -> String {
    let mut s: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        s.push("…".into());
    }
    s.join(" ")
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

    #[test]
    fn names_are_read_through_pointers_and_loops_stop() {
        // "example.com" at 12, then "www" + a pointer to 12 at 25.
        let mut m = vec![0u8; 12];
        m.extend_from_slice(&encoded("example.com"));
        m.extend_from_slice(&[3, b'w', b'w', b'w', 0xC0, 12]);
        let n = read_name(&m, 25).unwrap();
        assert_eq!(n.text, "www.example.com.");
        assert_eq!((n.end, n.pointers.clone()), (31, vec![(29, 12)]));
        assert_eq!(n.plain(), "www.example.com");
        m.extend_from_slice(&[0xC0, 31]);
        assert_eq!(read_name(&m, 31), None, "a pointer to itself");
        assert_eq!(read_name(&[0x40], 0), None, "not a label length");
        assert_eq!(hex(&encoded("a.b"), 3), "01 61 01 …");
        assert_eq!(type_number("mx"), Some(15));
        assert_eq!(type_name(65), "TYPE65");
    }
}
