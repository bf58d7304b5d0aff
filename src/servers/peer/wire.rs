//! The BitTorrent peer wire protocol (BEP 3): the 68-byte handshake and the
//! length-prefixed messages, encoded and decoded incrementally from a byte
//! stream with bounded lengths and precise errors.

use std::fmt;

/// The protocol string of the handshake.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Length of a handshake: 1 + 19 + 8 + 20 + 20.
pub const HANDSHAKE_LEN: usize = 68;
/// The largest block a peer asks for or sends (16 KiB).
pub const BLOCK_MAX: u32 = 16 * 1024;

/// The opening message of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Extension bits (all zero for plain BEP 3).
    pub reserved: [u8; 8],
    /// SHA-1 of the torrent's bencoded info dictionary.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// The 68 bytes on the wire.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }
}

/// One message after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A zero length prefix.
    KeepAlive,
    /// Id 0.
    Choke,
    /// Id 1.
    Unchoke,
    /// Id 2.
    Interested,
    /// Id 3.
    NotInterested,
    /// Id 4: the sender now has this piece.
    Have(u32),
    /// Id 5: one bit per piece, high bit first.
    Bitfield(Vec<u8>),
    /// Id 6: asks for a block.
    Request {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// Id 7: a block.
    Piece {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// The block.
        data: Vec<u8>,
    },
    /// Id 8: withdraws a request.
    Cancel {
        /// Piece index.
        index: u32,
        /// Offset in the piece.
        begin: u32,
        /// Block length.
        length: u32,
    },
    /// Any other id (extensions such as BEP 6 or BEP 10), kept as is.
    Unknown {
        /// The message id.
        id: u8,
        /// The bytes after the id.
        payload: Vec<u8>,
    },
}

impl Message {
    /// The message's name as BEP 3 spells it (`not interested`, `keep-alive`).
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Choke => "choke",
            Message::Unchoke => "unchoke",
            Message::Interested => "interested",
            Message::NotInterested => "not interested",
            Message::Have(_) => "have",
            Message::Bitfield(_) => "bitfield",
            Message::Request { .. } => "request",
            Message::Piece { .. } => "piece",
            Message::Cancel { .. } => "cancel",
            Message::Unknown { .. } => "unknown",
        }
    }

    /// Appends the message, length prefix included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let triple = |out: &mut Vec<u8>, id: u8, a: u32, b: u32, c: u32| {
            out.extend_from_slice(&13u32.to_be_bytes());
            out.push(id);
            for v in [a, b, c] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        };
        match self {
            Message::KeepAlive => out.extend_from_slice(&0u32.to_be_bytes()),
            Message::Choke => bare(out, 0),
            Message::Unchoke => bare(out, 1),
            Message::Interested => bare(out, 2),
            Message::NotInterested => bare(out, 3),
            Message::Have(i) => {
                out.extend_from_slice(&5u32.to_be_bytes());
                out.push(4);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Message::Bitfield(bits) => with_payload(out, 5, &[], bits),
            Message::Request {
                index,
                begin,
                length,
            } => triple(out, 6, *index, *begin, *length),
            Message::Piece { index, begin, data } => {
                let mut head = [0u8; 8];
                head[..4].copy_from_slice(&index.to_be_bytes());
                head[4..].copy_from_slice(&begin.to_be_bytes());
                with_payload(out, 7, &head, data);
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => triple(out, 8, *index, *begin, *length),
            Message::Unknown { id, payload } => with_payload(out, *id, &[], payload),
        }
    }

    /// The message on its own, as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn bare(out: &mut Vec<u8>, id: u8) {
    out.extend_from_slice(&1u32.to_be_bytes());
    out.push(id);
}

fn with_payload(out: &mut Vec<u8>, id: u8, head: &[u8], body: &[u8]) {
    let len = 1 + head.len() + body.len();
    out.extend_from_slice(&(len as u32).to_be_bytes());
    out.push(id);
    out.extend_from_slice(head);
    out.extend_from_slice(body);
}

/// What went wrong in a stream, and at which byte (counted from the first
/// byte of the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// Offset of the offending byte in the stream.
    pub offset: u64,
    /// What was seen and what was expected.
    pub what: String,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for WireError {}

/// Bounds on what a decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The torrent's piece count: a bitfield must be exactly this many bits
    /// (rounded up to bytes), and spare bits must be zero.
    pub pieces: u32,
    /// The largest block a piece message may carry.
    pub max_block: u32,
}

impl Limits {
    /// Limits for a torrent of `pieces` pieces, blocks up to 16 KiB + 16 KiB of slack
    /// (a peer sends what was asked; a longer block is refused by the caller).
    pub fn new(pieces: u32) -> Self {
        Limits {
            pieces,
            max_block: 2 * BLOCK_MAX,
        }
    }

    /// The bitfield's length in bytes.
    pub fn bitfield_len(&self) -> usize {
        (self.pieces as usize).div_ceil(8)
    }

    /// The longest message accepted, in bytes after the length prefix.
    pub fn max_len(&self) -> usize {
        (9 + self.max_block as usize).max(1 + self.bitfield_len())
    }
}

/// Decodes a byte stream, handshake first, then messages; data may arrive
/// split or glued in any way. The buffer holds at most one message beyond
/// what was pushed and not yet taken. After an error the stream is poisoned:
/// every later call returns the same error.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    offset: u64,
    limits: Limits,
    failed: Option<WireError>,
}

impl Decoder {
    /// A decoder at the start of a connection.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            buf: Vec::new(),
            offset: 0,
            limits,
            failed: None,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes pushed and not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The handshake, once all 68 bytes are in; a wrong first byte or
    /// protocol string fails as soon as it arrives.
    pub fn handshake(&mut self) -> Result<Option<Handshake>, WireError> {
        self.check()?;
        if let Some(&b) = self.buf.first()
            && b != 19
        {
            return self.fail(0, format!("protocol name length {b}, expected 19"));
        }
        for (i, (&got, &want)) in self.buf.iter().skip(1).zip(PROTOCOL).enumerate() {
            if got != want {
                return self.fail(
                    1 + i,
                    format!(
                        "{:?} in the protocol name, expected {:?} (\"BitTorrent protocol\")",
                        got as char, want as char
                    ),
                );
            }
        }
        if self.buf.len() < HANDSHAKE_LEN {
            return Ok(None);
        }
        let b = &self.buf[..HANDSHAKE_LEN];
        let hs = Handshake {
            reserved: b[20..28].try_into().expect("8 bytes"),
            info_hash: b[28..48].try_into().expect("20 bytes"),
            peer_id: b[48..68].try_into().expect("20 bytes"),
        };
        self.consume(HANDSHAKE_LEN);
        Ok(Some(hs))
    }

    /// The next whole message, or `None` until more bytes arrive. Returns
    /// the message and the stream offset of its length prefix.
    pub fn message(&mut self) -> Result<Option<(Message, u64)>, WireError> {
        self.check()?;
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
        if len > self.limits.max_len() {
            return self.fail(
                0,
                format!(
                    "length prefix {len}, longer than the longest message accepted ({} bytes)",
                    self.limits.max_len()
                ),
            );
        }
        if len > 0
            && let Some(&id) = self.buf.get(4)
        {
            self.check_length(id, len)?;
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let at = self.offset;
        let msg = if len == 0 {
            Message::KeepAlive
        } else {
            self.parse(len)?
        };
        self.consume(4 + len);
        Ok(Some((msg, at)))
    }

    /// Checks the length prefix against the id, as soon as the id is in.
    fn check_length(&mut self, id: u8, len: usize) -> Result<(), WireError> {
        let want = match id {
            0..=3 => Some(1),
            4 => Some(5),
            5 => Some(1 + self.limits.bitfield_len()),
            6 | 8 => Some(13),
            _ => None,
        };
        if let Some(want) = want
            && want != len
        {
            let name = [
                "choke",
                "unchoke",
                "interested",
                "not interested",
                "have",
                "bitfield",
                "request",
                "piece",
                "cancel",
            ][id as usize];
            return self.fail(
                0,
                format!("length prefix {len} for a {name} message (id {id}), expected {want}"),
            );
        }
        if id == 7 && len < 9 {
            return self.fail(
                0,
                format!("length prefix {len} for a piece message (id 7), expected at least 9"),
            );
        }
        Ok(())
    }

    /// Parses a whole message of `len` bytes after the prefix.
    fn parse(&mut self, len: usize) -> Result<Message, WireError> {
        let body = &self.buf[4..4 + len];
        let u = |i: usize| u32::from_be_bytes(body[i..i + 4].try_into().expect("4 bytes"));
        Ok(match body[0] {
            0 => Message::Choke,
            1 => Message::Unchoke,
            2 => Message::Interested,
            3 => Message::NotInterested,
            4 => Message::Have(u(1)),
            5 => {
                let bits = body[1..].to_vec();
                let spare = (8 - self.limits.pieces % 8) % 8;
                if spare > 0 && bits.last().is_some_and(|b| b & ((1u8 << spare) - 1) != 0) {
                    return self.fail(4 + len - 1, format!("spare bits set in the bitfield's last byte (the torrent has {} pieces)", self.limits.pieces));
                }
                Message::Bitfield(bits)
            }
            6 => Message::Request {
                index: u(1),
                begin: u(5),
                length: u(9),
            },
            7 => Message::Piece {
                index: u(1),
                begin: u(5),
                data: body[9..].to_vec(),
            },
            8 => Message::Cancel {
                index: u(1),
                begin: u(5),
                length: u(9),
            },
            id => Message::Unknown {
                id,
                payload: body[1..].to_vec(),
            },
        })
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n);
        self.offset += n as u64;
    }

    fn check(&self) -> Result<(), WireError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail<T>(&mut self, at: usize, what: String) -> Result<T, WireError> {
        let e = WireError {
            offset: self.offset + at as u64,
            what,
        };
        self.failed = Some(e.clone());
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs() -> Handshake {
        Handshake {
            reserved: [0, 0, 0, 0, 0, 0x10, 0, 0],
            info_hash: [7; 20],
            peer_id: *b"-NG0001-abcdefghijkl",
        }
    }

    fn all() -> Vec<Message> {
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(3),
            Message::Bitfield(vec![0b1010_0000]),
            Message::Request {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Piece {
                index: 2,
                begin: 0,
                data: vec![9; 100],
            },
            Message::Cancel {
                index: 1,
                begin: 16384,
                length: 16384,
            },
            Message::Unknown {
                id: 20,
                payload: vec![0, b'd', b'e'],
            },
        ]
    }

    fn stream() -> Vec<u8> {
        let mut s = hs().encode().to_vec();
        for m in all() {
            m.encode(&mut s);
        }
        s
    }

    fn decode_in_chunks(chunk: usize) -> (Handshake, Vec<Message>) {
        let s = stream();
        let mut d = Decoder::new(Limits::new(3));
        let (mut h, mut msgs) = (None, Vec::new());
        for part in s.chunks(chunk) {
            d.push(part);
            if h.is_none() {
                h = d.handshake().unwrap();
                if h.is_none() {
                    continue;
                }
            }
            while let Some((m, _)) = d.message().unwrap() {
                msgs.push(m);
            }
        }
        assert_eq!(d.pending(), 0);
        assert_eq!(d.offset(), s.len() as u64);
        (h.unwrap(), msgs)
    }

    #[test]
    fn handshake_bytes_follow_bep3() {
        let b = hs().encode();
        assert_eq!(b[0], 19);
        assert_eq!(&b[1..20], b"BitTorrent protocol");
        assert_eq!(b[25], 0x10);
        assert_eq!(&b[28..48], &[7; 20]);
        assert_eq!(&b[48..], b"-NG0001-abcdefghijkl");
    }

    #[test]
    fn message_bytes_follow_bep3() {
        assert_eq!(Message::KeepAlive.to_bytes(), [0, 0, 0, 0]);
        assert_eq!(Message::Interested.to_bytes(), [0, 0, 0, 1, 2]);
        assert_eq!(Message::Have(258).to_bytes(), [0, 0, 0, 5, 4, 0, 0, 1, 2]);
        assert_eq!(
            Message::Request {
                index: 1,
                begin: 2,
                length: 3
            }
            .to_bytes(),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]
        );
        assert_eq!(
            Message::Piece {
                index: 1,
                begin: 2,
                data: vec![0xaa]
            }
            .to_bytes(),
            [0, 0, 0, 10, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0xaa]
        );
    }

    #[test]
    fn every_split_decodes_the_same() {
        for chunk in [1, 2, 3, 5, 7, 13, 68, 69, 1000] {
            let (h, msgs) = decode_in_chunks(chunk);
            assert_eq!(h, hs(), "chunk {chunk}");
            assert_eq!(msgs, all(), "chunk {chunk}");
        }
    }

    #[test]
    fn message_offsets_point_at_their_length_prefix() {
        let mut d = Decoder::new(Limits::new(3));
        d.push(&stream());
        d.handshake().unwrap().unwrap();
        assert_eq!(d.message().unwrap().unwrap().1, 68);
        assert_eq!(d.message().unwrap().unwrap().1, 72);
        assert_eq!(d.message().unwrap().unwrap().1, 77);
    }

    #[test]
    fn wrong_protocol_fails_at_the_byte() {
        let mut d = Decoder::new(Limits::new(3));
        d.push(b"\x13BitTorrent");
        assert_eq!(d.handshake(), Ok(None));
        d.push(b" Protocol");
        let e = d.handshake().unwrap_err();
        assert_eq!(e.offset, 12);
        assert!(e.what.contains("'P'"), "{e}");
        assert_eq!(d.handshake().unwrap_err(), e, "poisoned");
        let mut d = Decoder::new(Limits::new(3));
        d.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(
            d.handshake().unwrap_err().to_string(),
            "byte 0: protocol name length 71, expected 19"
        );
    }

    #[test]
    fn huge_length_prefix_fails_before_buffering() {
        let mut d = Decoder::new(Limits::new(3));
        d.push(&[0x80, 0, 0, 0]);
        let e = d.message().unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.what.contains("2147483648"), "{e}");
        assert!(
            e.what.contains(&Limits::new(3).max_len().to_string()),
            "{e}"
        );
    }

    #[test]
    fn wrong_fixed_lengths_fail_on_the_id() {
        let mut d = Decoder::new(Limits::new(3));
        d.push(&[0, 0, 0, 1, 2, 0, 0, 0, 3, 4]);
        assert_eq!(d.message().unwrap().unwrap().0, Message::Interested);
        let e = d.message().unwrap_err();
        assert_eq!(e.offset, 5);
        assert_eq!(
            e.what,
            "length prefix 3 for a have message (id 4), expected 5"
        );
        let mut d = Decoder::new(Limits::new(20));
        d.push(&[0, 0, 0, 2, 5]);
        assert!(
            d.message()
                .unwrap_err()
                .what
                .contains("bitfield message (id 5), expected 4")
        );
        let mut d = Decoder::new(Limits::new(3));
        d.push(&[0, 0, 0, 5, 7]);
        assert!(d.message().unwrap_err().what.contains("at least 9"));
    }

    #[test]
    fn bitfield_spare_bits_must_be_zero() {
        let mut d = Decoder::new(Limits::new(3));
        d.push(&[0, 0, 0, 2, 5, 0b1110_0001]);
        let e = d.message().unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.what.contains("spare bits"), "{e}");
        let mut d = Decoder::new(Limits::new(8));
        d.push(&[0, 0, 0, 2, 5, 0xff]);
        assert_eq!(
            d.message().unwrap().unwrap().0,
            Message::Bitfield(vec![0xff])
        );
    }

    #[test]
    fn piece_longer_than_max_block_is_refused() {
        let l = Limits::new(1);
        let mut d = Decoder::new(l);
        let big = Message::Piece {
            index: 0,
            begin: 0,
            data: vec![0; l.max_block as usize + 1],
        };
        d.push(&big.to_bytes()[..4]);
        assert!(d.message().is_err());
        let mut d = Decoder::new(l);
        d.push(
            &Message::Piece {
                index: 0,
                begin: 0,
                data: vec![0; l.max_block as usize],
            }
            .to_bytes(),
        );
        assert!(matches!(d.message(), Ok(Some((Message::Piece { .. }, 0)))));
    }
}
