//! A strict bencode reader that also reports departures from the canonical
//! form.
//!
//! [`decode`] reads one value that must span the whole input. Breaks of the
//! grammar (a byte that cannot start a value, a string longer than what is
//! left, an unterminated list, bytes after the end) are errors, each with the
//! offset where reading stopped. Departures from the canonical form that a
//! lenient client would still read (keys out of order, a duplicate key, an
//! integer with a leading zero or `-0`, a string length with a leading zero)
//! do not stop the reading: they are listed in [`Decoded::departures`], so a
//! check can say "the reply reads, but its keys are not sorted".

use std::fmt;

/// Nesting deeper than this is refused (a tracker reply is two levels deep).
const MAX_DEPTH: usize = 32;

/// A bencoded value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `i…e`.
    Int(i64),
    /// `N:…`.
    Bytes(Vec<u8>),
    /// `l…e`.
    List(Vec<Value>),
    /// `d…e`: pairs in the order sent (a duplicate key is kept once, first).
    Dict(Vec<(Vec<u8>, Value)>),
}

impl Value {
    /// The value of `key`, when this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        match self {
            Value::Dict(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for messages: `an integer`, `a list`…
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Bytes(_) => "a byte string",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dictionary",
        }
    }
}

/// Where and why the input stops being bencode, or is not canonical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// Offset of the offending byte in the input.
    pub offset: usize,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// A value read, with the ways its encoding departs from the canonical one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The value.
    pub value: Value,
    /// Departures from the canonical form, in input order.
    pub departures: Vec<Error>,
}

/// Reads `input` as exactly one bencoded value.
pub fn decode(input: &[u8]) -> Result<Decoded, Error> {
    let mut r = Reader {
        input,
        at: 0,
        departures: Vec::new(),
    };
    let value = r.value(0)?;
    if r.at < input.len() {
        return Err(r.error(format!(
            "{} bytes after the end of the value",
            input.len() - r.at
        )));
    }
    Ok(Decoded {
        value,
        departures: r.departures,
    })
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
    departures: Vec<Error>,
}

impl Reader<'_> {
    fn error(&self, message: String) -> Error {
        Error {
            offset: self.at,
            message,
        }
    }

    fn depart(&mut self, offset: usize, message: String) {
        self.departures.push(Error { offset, message });
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.at)
            .copied()
            .ok_or_else(|| self.error("the input ends in the middle of a value".into()))
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        match self.peek()? {
            b'i' => self.int().map(Value::Int),
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => self.list(depth),
            b'd' => self.dict(depth),
            b => Err(self.error(format!(
                "byte {} cannot start a value (expected i, l, d or a digit)",
                show_byte(b)
            ))),
        }
    }

    /// Reads digits up to `end`; returns them and where they began.
    fn digits(&mut self, end: u8, what: &str) -> Result<(usize, String), Error> {
        let start = self.at;
        while self.peek()?.is_ascii_digit() {
            self.at += 1;
        }
        let b = self.peek()?;
        if b != end {
            return Err(self.error(format!(
                "byte {} in {what} (expected a digit or {})",
                show_byte(b),
                show_byte(end)
            )));
        }
        let digits = String::from_utf8_lossy(&self.input[start..self.at]).into_owned();
        self.at += 1;
        Ok((start, digits))
    }

    fn int(&mut self) -> Result<i64, Error> {
        self.at += 1;
        let negative = self.peek()? == b'-';
        if negative {
            self.at += 1;
        }
        let (start, digits) = self.digits(b'e', "an integer")?;
        if digits.is_empty() {
            return Err(Error {
                offset: start,
                message: "an integer without digits".into(),
            });
        }
        let text = digits;
        let n: i64 = text.parse().map_err(|_| Error {
            offset: start,
            message: format!("integer {text} is too large"),
        })?;
        if text.len() > 1 && text.starts_with('0') {
            self.depart(start, format!("integer {text} has a leading zero"));
        } else if negative && n == 0 {
            self.depart(start - 1, "integer -0 (zero is i0e)".into());
        }
        Ok(if negative { -n } else { n })
    }

    fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let (start, digits) = self.digits(b':', "a string length")?;
        let text = digits;
        if text.len() > 1 && text.starts_with('0') {
            self.depart(start, format!("string length {text} has a leading zero"));
        }
        let left = self.input.len() - self.at;
        let len = text
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= left)
            .ok_or_else(|| Error {
                offset: start,
                message: format!("a string of {text} bytes, but only {left} bytes follow"),
            })?;
        let s = self.input[self.at..self.at + len].to_vec();
        self.at += len;
        Ok(s)
    }

    fn list(&mut self, depth: usize) -> Result<Value, Error> {
        self.at += 1;
        let mut items = Vec::new();
        while self.peek()? != b'e' {
            items.push(self.value(depth + 1)?);
        }
        self.at += 1;
        Ok(Value::List(items))
    }

    fn dict(&mut self, depth: usize) -> Result<Value, Error> {
        self.at += 1;
        let mut pairs: Vec<(Vec<u8>, Value)> = Vec::new();
        while self.peek()? != b'e' {
            let key_at = self.at;
            if !self.peek()?.is_ascii_digit() {
                return Err(self.error(format!(
                    "a dictionary key must be a byte string, not byte {}",
                    show_byte(self.peek()?)
                )));
            }
            let key = self.bytes()?;
            let value = self.value(depth + 1)?;
            let previous = pairs.last().map(|(k, _)| k.clone());
            self.check_order(previous.as_deref(), &key, key_at);
            if pairs.iter().any(|(k, _)| *k == key) {
                if previous.as_deref() != Some(key.as_slice()) {
                    self.depart(key_at, format!("key {} appears twice", show_key(&key)));
                }
                continue;
            }
            pairs.push((key, value));
        }
        self.at += 1;
        Ok(Value::Dict(pairs))
    }

    fn check_order(&mut self, previous: Option<&[u8]>, key: &[u8], at: usize) {
        let Some(previous) = previous else { return };
        let k = show_key(key);
        match previous.cmp(key) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => self.depart(at, format!("key {k} appears twice")),
            std::cmp::Ordering::Greater => self.depart(
                at,
                format!(
                    "key {k} comes after {}: keys must be sorted as raw byte strings",
                    show_key(previous)
                ),
            ),
        }
    }
}

/// A byte for messages: `'x'` when printable, else `0xNN`.
fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("0x{b:02x}")
    }
}

/// A key for messages: quoted text, with escapes for other bytes.
pub fn show_key(key: &[u8]) -> String {
    format!("\"{}\"", key.escape_ascii())
}
