//! BitTorrent checks, read from what the lab's tracker and peers recorded:
//! each announce decoded ([`EventKind::Announce`]), each peer wire message
//! both ways with its time ([`EventKind::PeerMessage`]), the peers' protocol
//! faults ([`EventKind::Deviation`]), the torrents the run made and the file
//! the program wrote.

pub mod download;
pub mod seed;
pub mod tracker;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::servers::tracker::AnnounceRecord;
use crate::spec::ServerKind;
use crate::torrent::Metainfo;
use crate::trace::{Dir, EventKind};

use super::Ctx;

/// The largest block a request may ask for (BEP 3 clients use 16 KiB).
pub const BLOCK: u32 = 16 * 1024;

/// One peer wire message as a reference peer saw it.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// When.
    pub at: Duration,
    /// In: sent by the program; Out: by the reference peer.
    pub dir: Dir,
    /// `handshake`, `interested`, `request`, `piece` …
    pub name: &'a str,
    /// Index, begin, length where the message names a block.
    pub block: Option<(u32, u32, u32)>,
    /// The first bytes on the wire.
    pub head: &'a [u8],
}

/// One connection of the program to a reference peer.
#[derive(Debug, Default)]
pub struct Conn<'a> {
    /// Its messages in order.
    pub msgs: Vec<Msg<'a>>,
    /// The peer's protocol faults on it: (kind, detail).
    pub faults: Vec<(&'a str, &'a str)>,
}

impl Conn<'_> {
    /// Messages named `name` sent by the program.
    pub fn sent<'s>(&'s self, name: &'s str) -> impl Iterator<Item = (usize, &'s Msg<'s>)> + 's {
        self.msgs
            .iter()
            .enumerate()
            .filter(move |(_, m)| m.dir == Dir::In && m.name == name)
    }

    /// Whether the peer recorded a fault of this kind.
    pub fn fault(&self, kind: &str) -> Option<&str> {
        self.faults
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
    }
}

/// What a BitTorrent client's run shows: the case's torrent, the announces,
/// the connections to each peer, and the output.
#[derive(Debug)]
pub struct Swarm<'a> {
    /// The torrent the program was given (named in its arguments).
    pub torrent: Option<(&'a str, &'a Metainfo)>,
    /// Every announce the tracker got, in order.
    pub announces: Vec<&'a AnnounceRecord>,
    /// The tracker's address, as the lab gives it.
    pub tracker: Option<String>,
    /// Connections by (peer, number).
    pub conns: BTreeMap<(&'a str, u32), Conn<'a>>,
    /// The peers seeding the case's torrent, by name, in the lab's order.
    pub peers: Vec<&'a str>,
    /// The output's name (the argument after the torrent, or `file:`).
    pub output_name: Option<String>,
    /// What the program wrote there.
    pub output: Option<&'a [u8]>,
    /// The program ended in failure (a usage error, a crash reading the
    /// torrent, the time limit) before it sent any announce: `runs` is
    /// the check that charges it.
    pub ended_unannounced: bool,
}

impl<'a> Swarm<'a> {
    /// The swarm of `ctx`'s run; `file` overrides where the output is.
    pub fn of(ctx: &Ctx<'a>, file: Option<&str>) -> Swarm<'a> {
        let args = &ctx.lab.program.args;
        let torrent_arg = args.iter().position(|a| a.ends_with(".torrent"));
        let wanted = torrent_arg.map(|i| args[i].trim_end_matches(".torrent"));
        let mut torrents = Vec::new();
        let mut announces = Vec::new();
        let mut conns: BTreeMap<(&str, u32), Conn> = BTreeMap::new();
        let peer_names: Vec<&str> = ctx
            .lab
            .servers
            .iter()
            .filter(|s| s.kind.value == ServerKind::Peer)
            .map(|s| s.name.as_str())
            .collect();
        for e in &ctx.trace.events {
            match &e.kind {
                EventKind::Torrent { name, meta } => torrents.push((name.as_str(), meta)),
                EventKind::Announce { record, .. } => announces.push(record),
                EventKind::PeerMessage {
                    server,
                    conn,
                    dir,
                    name,
                    block,
                    head,
                } => conns.entry((server, *conn)).or_default().msgs.push(Msg {
                    at: e.at,
                    dir: *dir,
                    name,
                    block: *block,
                    head,
                }),
                EventKind::Deviation {
                    server,
                    conn,
                    kind,
                    detail,
                } if peer_names.contains(&server.as_str()) => conns
                    .entry((server, *conn))
                    .or_default()
                    .faults
                    .push((kind, detail)),
                _ => {}
            }
        }
        let torrent = match wanted {
            Some(w) => torrents.iter().find(|(n, _)| *n == w).copied(),
            None => torrents.first().copied(),
        };
        let first = ctx.lab.torrents.first().map(|t| t.name.as_str());
        let peers = ctx
            .lab
            .servers
            .iter()
            .filter(|s| s.kind.value == ServerKind::Peer)
            .filter(|s| s.torrent.as_deref().or(first) == torrent.map(|(n, _)| n))
            .map(|s| s.name.as_str())
            .collect();
        let output_name = file
            .map(str::to_string)
            .or_else(|| torrent_arg.and_then(|i| args.get(i + 1)).cloned());
        let output = output_name.as_deref().and_then(|want| {
            ctx.trace.events.iter().find_map(|e| match &e.kind {
                EventKind::FileWritten { path, bytes } if same_path(path, want) => {
                    Some(bytes.as_slice())
                }
                _ => None,
            })
        });
        let tracker = ctx
            .lab
            .servers
            .iter()
            .find(|s| s.kind.value == ServerKind::Tracker)
            .map(|s| format!("{}:{}", s.host, s.port));
        let failed = ctx
            .trace
            .exit()
            .is_some_and(|(_, exit)| *exit != crate::outcome::ExitKind::Exited { code: 0 });
        Swarm {
            ended_unannounced: failed && announces.is_empty(),
            torrent,
            announces,
            tracker,
            conns,
            peers,
            output_name,
            output,
        }
    }

    /// Connections on which the program completed a handshake.
    pub fn shaken(&self) -> impl Iterator<Item = (&(&'a str, u32), &Conn<'a>)> {
        self.conns.iter().filter(|(_, c)| {
            c.msgs
                .iter()
                .any(|m| m.dir == Dir::In && m.name == "handshake")
        })
    }

    /// Whether any block was sent to the program.
    pub fn got_blocks(&self) -> bool {
        self.conns.values().any(|c| {
            c.msgs
                .iter()
                .any(|m| m.dir == Dir::Out && m.name == "piece")
        })
    }

    /// The pieces of the output that fail their SHA-1 (or are missing);
    /// `None` without an output.
    pub fn bad_pieces(&self) -> Option<Vec<u32>> {
        let (_, meta) = self.torrent?;
        let out = self.output?;
        let info = &meta.info;
        Some(
            (0..info.pieces.len())
                .filter(|&i| {
                    let start = i as u64 * info.piece_length;
                    let end = (start + info.piece_size(i)).min(out.len() as u64);
                    start >= out.len() as u64
                        || crate::torrent::sha1(&out[start as usize..end as usize])
                            != info.pieces[i]
                })
                .map(|i| i as u32)
                .collect(),
        )
    }

    /// The pieces whose every byte some peer sent to the program.
    pub fn delivered(&self) -> BTreeSet<u32> {
        let Some((_, meta)) = self.torrent else {
            return BTreeSet::new();
        };
        let mut got: BTreeMap<u32, u64> = BTreeMap::new();
        for c in self.conns.values() {
            for m in c
                .msgs
                .iter()
                .filter(|m| m.dir == Dir::Out && m.name == "piece")
            {
                if let Some((i, _, l)) = m.block {
                    *got.entry(i).or_default() += u64::from(l);
                }
            }
        }
        got.into_iter()
            .filter(|(i, n)| *n >= meta.info.piece_size(*i as usize))
            .map(|(i, _)| i)
            .collect()
    }

    /// Which pieces of the output fail their SHA-1 (or are missing), and
    /// whether the length is right: `None` when all is right.
    pub fn output_fault(&self) -> Option<String> {
        let (_, meta) = self.torrent?;
        let name = self.output_name.as_deref().unwrap_or("the output");
        let Some(out) = self.output else {
            return Some(format!("the program wrote no {name}"));
        };
        let info = &meta.info;
        let want = info.total_length();
        let bad: Vec<usize> = (0..info.pieces.len())
            .filter(|&i| {
                let start = i as u64 * info.piece_length;
                let end = (start + info.piece_size(i)).min(out.len() as u64);
                start >= out.len() as u64
                    || crate::torrent::sha1(&out[start as usize..end as usize]) != info.pieces[i]
            })
            .collect();
        if out.len() as u64 != want {
            let mut m = format!("{name} is {} bytes; the file is {want}", out.len());
            if let Some(&first) = bad.first() {
                m.push_str(&format!(
                    "; piece {first} (bytes {}–{}) is the first that differs",
                    first as u64 * info.piece_length,
                    first as u64 * info.piece_length + info.piece_size(first) - 1
                ));
            }
            return Some(m);
        }
        let &first = bad.first()?;
        Some(format!(
            "{name} differs from the file in {} of {} pieces, first piece {first} (bytes {}–{}): its SHA-1 is not the torrent's",
            bad.len(),
            info.pieces.len(),
            first as u64 * info.piece_length,
            first as u64 * info.piece_length + info.piece_size(first) - 1
        ))
    }

    /// Why nothing could be downloaded, when an earlier step failed: the
    /// check that charges it. `None` when the program got as far as
    /// receiving blocks.
    pub fn blocker(&self) -> Option<&'static str> {
        if self.got_blocks() {
            return None;
        }
        if self.ended_unannounced {
            return Some("runs");
        }
        let announced = self.announces.iter().any(|a| a.outcome.is_ok());
        if !announced {
            return Some("announce");
        }
        if self.shaken().next().is_none()
            || self.conns.values().any(|c| {
                c.fault("connection")
                    .is_some_and(|d| d.contains("handshake"))
            })
        {
            return Some("handshake");
        }
        let requested = |c: &Conn| c.sent("request").next().is_some();
        if self
            .conns
            .values()
            .all(|c| c.sent("interested").next().is_none())
        {
            return Some("interested-before-request");
        }
        if self.conns.values().any(requested) {
            return Some("requests-blocks");
        }
        None
    }
}

/// Whether the recorded `path` is the program's `want` (`./out.bin`, `out.bin`).
fn same_path(path: &str, want: &str) -> bool {
    path.trim_start_matches("./") == want.trim_start_matches("./")
}

/// A short hex view of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A time for people: `12 ms`.
pub fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
