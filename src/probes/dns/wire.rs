//! A DNS message read field by field, each with its byte offset, so that a
//! check can say which field of a student's response is wrong, where, and
//! what its bytes are (RFC 1035 §4.1).

use std::fmt;

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

/// A resource record as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The owner name, lower-cased, without the final dot.
    pub name: String,
    /// TYPE.
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA, raw.
    pub rdata: Vec<u8>,
    /// Where the record starts.
    pub at: usize,
}

impl Record {
    /// The address of an A record.
    pub fn a(&self) -> Option<std::net::Ipv4Addr> {
        (self.rtype == 1 && self.rdata.len() == 4).then(|| {
            std::net::Ipv4Addr::new(self.rdata[0], self.rdata[1], self.rdata[2], self.rdata[3])
        })
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
pub struct Parsed {
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

/// Reads `msg` field by field.
pub fn parse(msg: &[u8]) -> Parsed {
    let mut p = Parsed::default();
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
        let name = self.name(&format!("the name of question {n}"))?;
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
        let name = self.name(&format!("the name of {what}"))?;
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
        let rdata = m[self.pos..self.pos + rdlength].to_vec();
        self.pos += rdlength;
        Ok(Record {
            name,
            rtype,
            class,
            ttl,
            rdata,
            at,
        })
    }

    /// A name at the current position, following pointers; the position
    /// moves past the name's own octets.
    fn name(&mut self, field: &str) -> Result<String, WireError> {
        let (name, end) = read_name(self.msg, self.pos, field)?;
        self.pos = end;
        Ok(name)
    }
}

/// The name at `start` of `msg` (lower-cased, no final dot) and where its
/// own octets end.
pub fn read_name(msg: &[u8], start: usize, field: &str) -> Result<(String, usize), WireError> {
    let err = |offset: usize, problem: String| WireError {
        offset,
        field: field.into(),
        problem,
    };
    let mut labels: Vec<String> = Vec::new();
    let mut pos = start;
    let mut end = None;
    let mut jumps = 0;
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
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
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
                jumps += 1;
                if jumps > MAX_JUMPS || target >= msg.len() {
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
        if labels.iter().map(|l| l.len() + 1).sum::<usize>() > 255 {
            return Err(err(start, "the name is longer than 255 octets".into()));
        }
    }
    Ok((labels.join("."), end.unwrap_or(pos + 1)))
}

/// Octets as hex: `01 2c`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The octets of `msg` from `at`, at most `n`, as hex.
pub fn hex_at(msg: &[u8], at: usize, n: usize) -> String {
    let end = (at + n).min(msg.len());
    hex(msg.get(at..end).unwrap_or_default())
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
        assert_eq!(p.answers[0].name, "www.example.com");
        assert_eq!(p.answers[0].ttl, 300);
        assert_eq!(p.answers[0].a(), Some([10, 0, 0, 1].into()));
        assert_eq!(p.answers[0].at, 33);
    }

    #[test]
    fn a_ttl_in_two_octets_is_named() {
        let p = parse(&response(&[1, 44]));
        let e = p.error.unwrap();
        assert_eq!(e.field, "the RDLENGTH of answer 1");
        assert!(e.problem.contains("packed in 2 octets (01 2c)"), "{e}");
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
}
