//! Reading an announce reply: the fields the scenarios judge, and the peers
//! listed in either form (BEP 23's compact string or BEP 3's dictionaries).

use std::net::Ipv4Addr;

use super::bencode::{Value, show_key};
use super::{Exchange, FakePeer, quote};
use crate::probes::http;

/// How a reply lists peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerForm {
    /// A byte string of 6-byte entries (BEP 23).
    Compact,
    /// A list of dictionaries with `ip`, `port` and maybe `peer id` (BEP 3).
    Dictionaries,
}

/// One peer as a reply lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The address as text (compact entries are written as dotted quads).
    pub ip: String,
    /// The port; may be out of range when a dictionary says so.
    pub port: i64,
    /// The `peer id`, in the dictionary form when sent.
    pub peer_id: Option<Vec<u8>>,
}

impl Listed {
    /// `127.1.0.1:40000`.
    pub fn show(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Whether this entry is `peer`, which announced from `ip`.
    pub fn is(&self, peer: &FakePeer, ip: Ipv4Addr) -> bool {
        let by_id = self.peer_id.as_deref() == Some(&peer.peer_id[..]);
        by_id || (self.ip == ip.to_string() && self.port == i64::from(peer.port))
    }
}

/// A reply that a client can use: a dictionary without `failure reason`
/// whose `peers` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// `interval`, when it is an integer.
    pub interval: Option<i64>,
    /// `complete`, when it is an integer.
    pub complete: Option<i64>,
    /// `incomplete`, when it is an integer.
    pub incomplete: Option<i64>,
    /// The form of `peers`.
    pub form: PeerForm,
    /// The peers listed.
    pub peers: Vec<Listed>,
}

impl Reply {
    /// The peers as `ip:port, ip:port` (or `none`).
    pub fn show_peers(&self) -> String {
        if self.peers.is_empty() {
            return "no peers".into();
        }
        let list: Vec<String> = self.peers.iter().map(Listed::show).collect();
        list.join(", ")
    }
}

/// Why an exchange holds no dictionary: nothing, HTML, broken bencode…
pub fn not_a_dict(ex: &Exchange) -> Option<String> {
    if ex.received.is_empty() {
        return Some(format!("nothing came back ({})", ex.end));
    }
    let body = &ex.body;
    match &ex.bencode {
        Err(_) if body.is_empty() => Some(format!(
            "the body is empty ({}; {})",
            ex.status_line.as_deref().unwrap_or("no status line"),
            ex.end
        )),
        Err(_) if body.trim_ascii_start().starts_with(b"<") => Some(format!(
            "the body is HTML, not bencode: {}",
            quote(body, 80)
        )),
        Err(e) => Some(format!(
            "the body is not bencode: {} {} of the body",
            e.message,
            http::evidence(body, e.offset)
        )),
        Ok(d) if !matches!(d.value, Value::Dict(_)) => Some(format!(
            "the body is {}, not a dictionary: {}",
            d.value.kind(),
            quote(body, 80)
        )),
        Ok(_) => None,
    }
}

/// The reply of a good announce, or why a client could not use it.
pub fn read(ex: &Exchange) -> Result<Reply, String> {
    if let Some(why) = not_a_dict(ex) {
        return Err(why);
    }
    let dict = ex.dict().expect("a dictionary");
    if let Some(reason) = dict.get(b"failure reason") {
        let text = match reason {
            Value::Bytes(b) => quote(b, 120),
            other => format!("({})", other.kind()),
        };
        return Err(format!("the tracker refused it: failure reason {text}"));
    }
    let peers = dict.get(b"peers").ok_or("the reply has no `peers` key")?;
    let (form, peers) = peers_of(peers)?;
    let int = |k: &[u8]| match dict.get(k) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    Ok(Reply {
        interval: int(b"interval"),
        complete: int(b"complete"),
        incomplete: int(b"incomplete"),
        form,
        peers,
    })
}

/// Reads `peers` in either form.
pub fn peers_of(v: &Value) -> Result<(PeerForm, Vec<Listed>), String> {
    match v {
        Value::Bytes(b) if b.len() % 6 != 0 => Err(format!(
            "compact `peers` is {} bytes long, not a multiple of 6 (4 address bytes and 2 port bytes per peer)",
            b.len()
        )),
        Value::Bytes(b) => Ok((PeerForm::Compact, b.chunks_exact(6).map(compact).collect())),
        Value::List(items) => {
            let peers = items.iter().enumerate().map(|(i, p)| dict_peer(i, p));
            Ok((PeerForm::Dictionaries, peers.collect::<Result<_, _>>()?))
        }
        other => Err(format!(
            "`peers` is {}: it must be a byte string (compact) or a list of dictionaries",
            other.kind()
        )),
    }
}

fn compact(entry: &[u8]) -> Listed {
    Listed {
        ip: Ipv4Addr::new(entry[0], entry[1], entry[2], entry[3]).to_string(),
        port: i64::from(u16::from_be_bytes([entry[4], entry[5]])),
        peer_id: None,
    }
}

fn dict_peer(i: usize, p: &Value) -> Result<Listed, String> {
    let Value::Dict(_) = p else {
        return Err(format!(
            "entry {i} of `peers` is {}, not a dictionary",
            p.kind()
        ));
    };
    let ip = match p.get(b"ip") {
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => {
            return Err(format!(
                "`ip` of peer {i} is {}, not a string",
                other.kind()
            ));
        }
        None => return Err(format!("peer {i} has no `ip` key")),
    };
    let port = match p.get(b"port") {
        Some(Value::Int(n)) => *n,
        Some(other) => {
            return Err(format!(
                "`port` of peer {i} is {}, not an integer",
                other.kind()
            ));
        }
        None => return Err(format!("peer {i} has no `port` key")),
    };
    let peer_id = match p.get(b"peer id") {
        Some(Value::Bytes(b)) => Some(b.clone()),
        Some(other) => {
            return Err(format!(
                "{} of peer {i} is {}, not a string",
                show_key(b"peer id"),
                other.kind()
            ));
        }
        None => None,
    };
    Ok(Listed { ip, port, peer_id })
}
