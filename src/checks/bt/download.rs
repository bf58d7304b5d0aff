//! The `bt-download` checks: a student's BitTorrent client downloads the
//! case's torrent through the lab's tracker from the lab's peers.
//!
//! One fault is charged once: a check whose step the program never reached
//! because an earlier step failed says "not judged" and names the check
//! that charges it ([`Swarm::blocker`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::checks::{Ctx, Verdict};
use crate::outcome::ExitKind;
use crate::servers::tracker::AnnounceEvent;
use crate::spec::CheckSpec;
use crate::trace::{Dir, Stream};

use super::{BLOCK, Conn, Swarm, hex, ms};

/// Longest request target shown in evidence.
const SHOWN_TARGET: usize = 160;

fn shown(target: &str) -> String {
    if target.len() <= SHOWN_TARGET {
        return format!("GET {target}");
    }
    let cut = (0..=SHOWN_TARGET)
        .rev()
        .find(|&i| target.is_char_boundary(i))
        .unwrap_or(0);
    format!("GET {}…", &target[..cut])
}

fn not_judged(step: &str) -> Verdict {
    Verdict::skip(format!(
        "not judged: the program did not get that far (see `{step}`)"
    ))
}

/// The check that charges why a BitTorrent client could not download at
/// all (a refused announce, no handshake, no interested, requests no peer
/// serves), when the lab is one; `None` otherwise.
pub fn stopped_by(ctx: &Ctx) -> Option<&'static str> {
    if !ctx
        .lab
        .servers
        .iter()
        .any(|s| s.kind.value == crate::spec::ServerKind::Tracker)
    {
        return None;
    }
    let s = Swarm::of(ctx, None);
    if s.ended_unannounced {
        return None;
    }
    s.blocker().or_else(|| {
        (s.output.is_none() && !bad_requests(&s).is_empty()).then_some("requests-blocks")
    })
}

/// `announce`: the first announce names the torrent and the client properly.
pub fn announce(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let Some((_, meta)) = s.torrent else {
        return Verdict::skip("not judged: the run made no torrent");
    };
    if s.ended_unannounced {
        return Verdict::skip(
            "not judged: the program ended before it sent an announce (see `runs`)",
        );
    }
    let Some(first) = s.announces.first() else {
        return Verdict::fail(format!(
            "the tracker ({}) got no announce: GET the torrent's announce URL ({}) with the torrent's info_hash before contacting peers",
            s.tracker.as_deref().unwrap_or("?"),
            meta.announce
        ));
    };
    let evidence = vec![shown(&first.target)];
    let a = match &first.announce {
        Err(why) => {
            return Verdict::fail(format!(
                "the first announce was refused: {why}{}",
                refusal_hint(why)
            ))
            .with_evidence(evidence);
        }
        Ok(a) => a,
    };
    let keys = query_keys(&first.target);
    let missing: Vec<&str> = ["uploaded", "downloaded", "left"]
        .into_iter()
        .filter(|k| !keys.contains(k))
        .collect();
    let fault = if a.info_hash != meta.info_hash {
        Some(format!(
            "info_hash {} is not the torrent's ({}): hash the bencoded `info` dictionary exactly as its bytes appear in the .torrent file",
            a.info_hash, meta.info_hash
        ))
    } else if a.peer_id.iter().all(|&b| b == a.peer_id[0]) {
        Some(format!(
            "the peer_id is 20 bytes of {:#04x}: every client of the swarm would have the same id; make it unique, e.g. `-PY0001-` and 12 random digits (BEP 20)",
            a.peer_id[0]
        ))
    } else if !missing.is_empty() {
        Some(format!(
            "the announce has no {}: a tracker needs uploaded, downloaded and left (0, 0 and the file's length at the start)",
            missing.join(", ")
        ))
    } else if a.left != meta.info.total_length() {
        Some(format!(
            "left={} in the first announce, but nothing was downloaded yet: left is the file's length, {}",
            a.left,
            meta.info.total_length()
        ))
    } else if a.event != Some(AnnounceEvent::Started) {
        Some(format!(
            "the first announce says event={}: the first one of a download says event=started",
            a.event.map_or("(none)", AnnounceEvent::as_str)
        ))
    } else {
        None
    };
    match fault {
        Some(f) => Verdict::fail(f).with_evidence(evidence),
        None => Verdict::pass().with_evidence(evidence),
    }
}

/// What to do about a refused announce.
fn refusal_hint(why: &str) -> &'static str {
    if why.contains("is 40 bytes") {
        " (40 hex digits): send the SHA-1's 20 raw bytes, percent-escaped, e.g. `urllib.parse.quote_from_bytes(digest)`"
    } else if why.contains("not 20") {
        ": info_hash and peer_id are 20 raw bytes each, percent-escaped byte by byte"
    } else if why.contains("missing port") || why.contains("invalid port") {
        ": give the port your client listens on, e.g. `port=6881`"
    } else if why.contains("unknown torrent") {
        ": hash the bencoded `info` dictionary exactly as its bytes appear in the .torrent file"
    } else {
        ""
    }
}

/// The keys of a request target's query.
fn query_keys(target: &str) -> Vec<&str> {
    target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .filter_map(|p| p.split('=').next())
        .filter(|k| !k.is_empty())
        .collect()
}

/// `completed-event`: once the file is whole, an announce says so.
pub fn completed_event(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    if !s.announces.iter().any(|a| a.announce.is_ok()) {
        return not_judged("announce");
    }
    let completed = s.announces.iter().find(|r| {
        r.announce
            .as_ref()
            .is_ok_and(|a| a.event == Some(AnnounceEvent::Completed))
    });
    match completed {
        Some(r) => match &r.announce {
            Ok(a) if a.left != 0 => Verdict::fail(format!(
                "the event=completed announce says left={}: when the download is done, left=0",
                a.left
            ))
            .with_evidence(vec![shown(&r.target)]),
            _ => Verdict::pass().with_evidence(vec![shown(&r.target)]),
        },
        None if s.output_fault().is_some() => {
            not_judged(charged_elsewhere(&s).unwrap_or("file-exact"))
        }
        None => Verdict::fail(
            "the download finished, but no announce said event=completed: announce once more, with event=completed and left=0, when every piece is verified",
        )
        .with_evidence(s.announces.iter().map(|r| shown(&r.target)).collect()),
    }
}

/// `handshake`: every connection opens with a right handshake for the torrent.
pub fn handshake(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    if s.conns.is_empty() {
        if s.ended_unannounced {
            return not_judged("runs");
        }
        if !s.announces.iter().any(|a| a.outcome.is_ok()) {
            return not_judged("announce");
        }
        let ports: Vec<String> = ctx
            .lab
            .servers
            .iter()
            .filter(|sv| s.peers.contains(&sv.name.as_str()))
            .map(|sv| format!("{}:{}", sv.host, sv.port))
            .collect();
        return Verdict::fail(format!(
            "the program connected to none of the peers the tracker listed ({}){}: after the announce, connect to each peer of `peers`, read as bytes, 6 per peer (4 of IPv4 address, 2 of port, big-endian), not as text",
            ports.join(", "),
            exit_note(ctx)
        ));
    }
    let opened = s.conns.len();
    let shaken = s.shaken().count();
    let flood = if opened > 2 * s.peers.len().max(1) {
        format!(
            " (of {opened} connections the program opened to the lab's peers, {shaken} began with a handshake; a client needs one connection per peer)"
        )
    } else {
        String::new()
    };
    for ((peer, conn), c) in &s.conns {
        let bad = c.faults.iter().find(|(k, d)| {
            *k == "connection" && (d.contains("handshake") || d.contains("info_hash"))
        });
        if let Some((_, detail)) = bad {
            let sent = c
                .msgs
                .iter()
                .find(|m| m.dir == Dir::In && m.name == "handshake")
                .map(|m| format!("sent: {}", hex(m.head)));
            return Verdict::fail(format!(
                "connection {conn} to {peer}: {detail}{flood}; a handshake is 68 bytes: 19, \"BitTorrent protocol\", 8 reserved bytes, the 20-byte info_hash, the 20-byte peer_id"
            ))
            .with_evidence(sent.into_iter().collect());
        }
    }
    let first = s.shaken().next().and_then(|(_, c)| {
        c.msgs
            .iter()
            .find(|m| m.dir == Dir::In && m.name == "handshake")
    });
    Verdict::pass().with_evidence(
        first
            .map(|m| format!("first 32 bytes: {}", hex(m.head)))
            .into_iter()
            .collect(),
    )
}

/// `interested-before-request`: no request on a connection before `interested`.
pub fn interested_before_request(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let mut judged = 0;
    let mut bad = Vec::new();
    for ((peer, conn), c) in &s.conns {
        let Some((ri, r)) = c.sent("request").next() else {
            continue;
        };
        judged += 1;
        if c.sent("interested").next().is_none_or(|(ii, _)| ii > ri) {
            bad.push(format!(
                "connection {conn} to {peer}: request {} at {} with no interested before it",
                block(r.block),
                ms(r.at)
            ));
        }
    }
    if judged == 0 {
        return no_requests(&s);
    }
    match bad.first() {
        Some(first) => Verdict::fail(format!(
            "{first}: send interested (length 1, id 2) after the bitfield, then wait for unchoke before requesting"
        ))
        .with_evidence(bad),
        None => Verdict::pass(),
    }
}

fn block(b: Option<(u32, u32, u32)>) -> String {
    b.map_or("?".into(), |(i, o, l)| format!("{i}/{o}/{l}"))
}

fn no_requests(s: &Swarm) -> Verdict {
    match s.blocker() {
        Some(step) => not_judged(step),
        None => Verdict::skip("not judged: the program sent no request"),
    }
}

/// `respects-choke`: after `interested`, no request until the peer unchokes.
pub fn respects_choke(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let mut judged = 0;
    let mut bad = Vec::new();
    for ((peer, conn), c) in &s.conns {
        let Some((ii, interested)) = c.sent("interested").next() else {
            continue; // charged by interested-before-request
        };
        let unchoke = c
            .msgs
            .iter()
            .position(|m| m.dir == Dir::Out && m.name == "unchoke");
        let requests: Vec<_> = c.sent("request").filter(|(ri, _)| *ri > ii).collect();
        if requests.is_empty() {
            continue;
        }
        judged += 1;
        if let Some((_, r)) = requests
            .iter()
            .find(|(ri, _)| unchoke.is_none_or(|u| *ri < u))
        {
            bad.push(format!(
                "connection {conn} to {peer}: interested at {}, request {} at {}, before the peer's unchoke{}",
                ms(interested.at),
                block(r.block),
                ms(r.at),
                unchoke.map_or(String::new(), |u| format!(" (at {})", ms(c.msgs[u].at)))
            ));
        }
    }
    if judged == 0 {
        return match s.blocker() {
            Some(step) => not_judged(step),
            None => not_judged("interested-before-request"),
        };
    }
    match bad.first() {
        Some(first) => Verdict::fail(format!(
            "{first}: a choked peer ignores requests; wait for unchoke (id 1) after interested"
        ))
        .with_evidence(bad),
        None => Verdict::pass(),
    }
}

/// A request that is not a valid block: peer, connection, (index, begin,
/// length), and why.
type BadRequest<'a> = (&'a str, u32, (u32, u32, u32), String);

/// The requests that are not valid blocks of the torrent (or ask a peer
/// for a piece it does not have).
fn bad_requests<'a>(s: &'a Swarm) -> Vec<BadRequest<'a>> {
    let Some((_, meta)) = s.torrent else {
        return Vec::new();
    };
    let info = &meta.info;
    let pieces = info.pieces.len() as u32;
    let mut out = Vec::new();
    for ((peer, conn), c) in &s.conns {
        for (_, m) in c.sent("request") {
            let Some((i, b, l)) = m.block else { continue };
            let why = if i >= pieces {
                Some(format!(
                    "piece {i} does not exist: the torrent has {pieces} pieces, 0 to {}{}",
                    pieces - 1,
                    if info.total_length() % info.piece_length == 0 {
                        format!(
                            " ({} bytes is exactly {pieces} × {}: there is no short last piece)",
                            info.total_length(),
                            info.piece_length
                        )
                    } else {
                        String::new()
                    }
                ))
            } else if l == 0 {
                Some("a block of 0 bytes".into())
            } else if l > BLOCK {
                Some(format!(
                    "{l} bytes at once: peers serve blocks of at most {BLOCK} bytes (16 KiB)"
                ))
            } else if u64::from(b) + u64::from(l) > info.piece_size(i as usize) {
                Some(format!(
                    "bytes {b}–{} are past the end of piece {i}, which is {} bytes",
                    u64::from(b) + u64::from(l) - 1,
                    info.piece_size(i as usize)
                ))
            } else {
                None
            };
            let why = why.or_else(|| {
                c.fault("request-missing-piece")
                    .filter(|d| d.starts_with(&format!("request {i}/{b}/{l} ")))
                    .map(|_| format!("{peer} does not have piece {i} (see its bitfield and haves)"))
            });
            if let Some(why) = why {
                out.push((*peer, *conn, (i, b, l), why));
            }
        }
    }
    out
}

/// `requests-blocks`: every request is a block of at most 16 KiB inside a
/// piece the peer has.
pub fn requests_blocks(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let total: usize = s.conns.values().map(|c| c.sent("request").count()).sum();
    if total == 0 {
        return no_requests(&s);
    }
    let bad = bad_requests(&s);
    let Some((peer, conn, req, why)) = bad.first() else {
        return Verdict::pass().with_evidence(vec![format!("{total} requests, all valid blocks")]);
    };
    Verdict::fail(format!(
        "{} of {total} requests were not valid blocks; first, request {} to {peer} (connection {conn}): {why}",
        bad.len(),
        block(Some(*req))
    ))
    .with_evidence(
        bad.iter()
            .skip(1)
            .take(4)
            .map(|(p, c, r, w)| format!("request {} to {p} (connection {c}): {w}", block(Some(*r))))
            .collect(),
    )
}

/// `file-exact`: the output is the torrent's content, byte for byte.
/// Pieces a lying peer corrupted, and a download a vanishing peer stopped,
/// are charged by `verifies-pieces` and `survives-peer-loss`.
pub fn file_exact(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, spec.file.as_deref());
    let Some(fault) = s.output_fault() else {
        return Verdict::pass();
    };
    if let Some(step) = charged_elsewhere(&s) {
        return not_judged(step);
    }
    let total = s.torrent.map_or(0, |(_, m)| m.info.pieces.len());
    let delivered = s.delivered().len();
    let mut why = fault;
    if s.output.is_none() && total > 0 && delivered == total {
        why.push_str(&format!(
            ", though every one of the {total} pieces reached it"
        ));
        if let Some((_, m)) = s.torrent
            && m.info.total_length() % m.info.piece_length == 0
        {
            why.push_str(&format!(
                " ({} bytes is exactly {total} × {}: there is no short last piece to wait for)",
                m.info.total_length(),
                m.info.piece_length
            ));
        }
    }
    Verdict::fail(format!("{why}{}", exit_note(ctx))).with_evidence(stderr_tail(ctx))
}

/// The check that charges a failed download in this case, when it is not
/// `file-exact`'s: an earlier step, requests no peer serves, pieces a liar
/// corrupted, a peer that vanished.
fn charged_elsewhere(s: &Swarm) -> Option<&'static str> {
    if s.output.is_none() {
        if let Some(step) = s.blocker() {
            return Some(step);
        }
        if !bad_requests(s).is_empty() {
            return Some("requests-blocks");
        }
    }
    let lied: BTreeSet<u32> = corrupted(s).into_iter().map(|(_, p, _)| p).collect();
    if let Some(bad) = s.bad_pieces()
        && !lied.is_empty()
        && !bad.is_empty()
        && bad.iter().all(|p| lied.contains(p))
    {
        return Some("verifies-pieces");
    }
    if cut(s).is_some() {
        return Some("survives-peer-loss");
    }
    None
}

/// The first connection a peer closed in the middle of a piece: (peer,
/// connection, piece, when).
fn cut<'a>(s: &Swarm<'a>) -> Option<(&'a str, u32, u32, std::time::Duration)> {
    s.conns.iter().find_map(|((peer, conn), c)| {
        c.msgs
            .iter()
            .find(|m| m.name == "piece (cut)")
            .map(|m| (*peer, *conn, m.block.map_or(0, |b| b.0), m.at))
    })
}

/// How the program ended, when not by itself with status 0: `; it was
/// stopped at the time limit (20 s)`.
fn exit_note(ctx: &Ctx) -> String {
    match ctx.trace.exit() {
        Some((_, ExitKind::Exited { code: 0 })) | None => String::new(),
        Some((_, ExitKind::Exited { code })) => format!("; it exited with status {code}"),
        Some((_, ExitKind::TimedOut { limit_ms })) => format!(
            "; it was still running at the time limit ({} s)",
            limit_ms / 1000
        ),
        Some((_, other)) => format!("; it ended: {other:?}"),
    }
}

/// The program's last lines of standard error (a traceback's end).
fn stderr_tail(ctx: &Ctx) -> Vec<String> {
    let lines = ctx.trace.lines(Stream::Stderr);
    lines
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|l| format!("stderr: {l}"))
        .collect()
}

/// The corrupted pieces the program was sent: (peer, piece, when).
fn corrupted(s: &Swarm) -> Vec<(String, u32, std::time::Duration)> {
    let mut out = Vec::new();
    for ((peer, _), c) in &s.conns {
        for (kind, detail) in &c.faults {
            if *kind != "corrupted-on-purpose" {
                continue;
            }
            let piece = detail
                .strip_prefix("piece ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok());
            let at = c
                .msgs
                .iter()
                .filter(|m| m.dir == Dir::Out && m.name == "piece")
                .find(|m| m.block.map(|b| b.0) == piece)
                .map(|m| m.at);
            if let (Some(piece), Some(at)) = (piece, at) {
                out.push((peer.to_string(), piece, at));
            }
        }
    }
    out
}

/// `verifies-pieces`: a piece whose SHA-1 fails is fetched again and never
/// kept.
pub fn verifies_pieces(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let bad = corrupted(&s);
    let Some((liar, _, _)) = bad.first() else {
        if let Some(step) = s.blocker() {
            return not_judged(step);
        }
        return Verdict::skip(
            "not judged: no corrupted block reached the program (it asked no lying peer for a piece)",
        );
    };
    let Some((_, meta)) = s.torrent else {
        return Verdict::skip("not judged: the run made no torrent");
    };
    let info = &meta.info;
    if let Some(out) = s.output {
        for (peer, piece, _) in &bad {
            let start = (*piece as u64 * info.piece_length) as usize;
            let end = (start + info.piece_size(*piece as usize) as usize).min(out.len());
            if start < out.len()
                && crate::torrent::sha1(&out[start..end]) != info.pieces[*piece as usize]
            {
                return Verdict::fail(format!(
                    "piece {piece} came from {peer} with a byte flipped, and went into {} as it came: compute each piece's SHA-1 and compare it with the torrent's `pieces` before keeping it; fetch a piece that fails again, from another peer",
                    s.output_name.as_deref().unwrap_or("the output")
                ));
            }
        }
        if s.output_fault().is_none() {
            return Verdict::pass().with_evidence(vec![format!(
                "{} corrupted piece(s) from {liar} discarded and fetched again",
                bad.len()
            )]);
        }
    }
    let refetched = |piece: u32, at| {
        s.conns.values().any(|c: &Conn| {
            c.sent("request")
                .any(|(_, m)| m.at > at && m.block.map(|b| b.0) == Some(piece))
        })
    };
    if s.output.is_none() && !bad_requests(&s).is_empty() {
        return not_judged("requests-blocks");
    }
    match bad.iter().find(|(_, p, at)| !refetched(*p, *at)) {
        Some((peer, piece, at)) => Verdict::fail(format!(
            "piece {piece} came from {peer} at {} with a byte flipped, and the program never asked for it again{}: check each piece's SHA-1, and fetch a piece that fails again from another peer",
            ms(*at),
            exit_note(ctx)
        ))
        .with_evidence(stderr_tail(ctx)),
        None => Verdict::skip(
            "not judged: the corrupted piece was fetched again, but the download did not finish (see `file-exact`, `runs`)",
        ),
    }
}

/// `survives-peer-loss`: a peer closing mid-piece does not stop the download.
pub fn survives_peer_loss(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let Some((peer, conn, piece, at)) = cut(&s) else {
        if let Some(step) = s.blocker() {
            return not_judged(step);
        }
        return Verdict::skip(
            "not judged: no peer closed a connection on the program (it asked no vanishing peer for a piece)",
        );
    };
    if s.output.is_none() && !bad_requests(&s).is_empty() {
        return not_judged("requests-blocks");
    }
    let ok_exit = matches!(ctx.trace.exit(), Some((_, ExitKind::Exited { code: 0 })));
    match s.output_fault() {
        None if ok_exit => Verdict::pass().with_evidence(vec![format!(
            "{peer} closed connection {conn} in the middle of piece {piece} at {}; the download went on",
            ms(at)
        )]),
        fault => Verdict::fail(format!(
            "{peer} closed connection {conn} in the middle of piece {piece} at {}, and the download did not recover: {}{}; catch the error on that connection, put its unfinished pieces back, and go on with the other peers",
            ms(at),
            fault.unwrap_or_else(|| "the output is right".into()),
            exit_note(ctx)
        ))
        .with_evidence(stderr_tail(ctx)),
    }
}

/// `multiple-peers`: blocks come from more than one peer.
pub fn multiple_peers(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let mut from: BTreeMap<&str, usize> = BTreeMap::new();
    for ((peer, _), c) in &s.conns {
        let n = c
            .msgs
            .iter()
            .filter(|m| m.dir == Dir::Out && m.name == "piece")
            .count();
        if n > 0 {
            *from.entry(peer).or_default() += n;
        }
    }
    let counts: Vec<String> = from
        .iter()
        .map(|(p, n)| format!("{p}: {n} blocks"))
        .collect();
    match from.len() {
        0 => match s.blocker() {
            Some(step) => not_judged(step),
            None => Verdict::skip("not judged: no block was downloaded"),
        },
        1 => Verdict::fail(format!(
            "every block came from one peer ({}), though the tracker listed {} ({}) and none of them has every piece: connect to several peers and download from each what it has",
            counts[0],
            s.peers.len(),
            s.peers.join(", ")
        )),
        _ => Verdict::pass().with_evidence(counts),
    }
}

/// `pipelining`: several requests in flight on a connection.
pub fn pipelining(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let mut best: Option<(usize, &str, u32)> = None;
    for ((peer, conn), c) in &s.conns {
        let (mut open, mut most) = (0usize, 0usize);
        for m in &c.msgs {
            match (m.dir, m.name) {
                (Dir::In, "request") => open += 1,
                (Dir::Out, "piece") | (Dir::In, "cancel") => open = open.saturating_sub(1),
                _ => {}
            }
            most = most.max(open);
        }
        if best.is_none_or(|(b, _, _)| most > b) {
            best = Some((most, peer, *conn));
        }
    }
    match best {
        None | Some((0, _, _)) => no_requests(&s),
        Some((1, _, _)) => Verdict::fail(
            "never more than one request was outstanding: the program waits for each block before asking for the next, a round trip per 16 KiB; keep about 5 requests in flight on each connection",
        ),
        Some((n, peer, conn)) => Verdict::pass().with_evidence(vec![format!(
            "up to {n} requests outstanding on connection {conn} to {peer}"
        )]),
    }
}

/// The pieces each of the case's peers has (or gains), as the lab says.
fn holders<'a>(ctx: &Ctx<'a>, s: &Swarm<'a>, pieces: u32) -> BTreeMap<&'a str, BTreeSet<u32>> {
    ctx.lab
        .servers
        .iter()
        .filter(|sv| s.peers.contains(&sv.name.as_str()))
        .map(|sv| {
            let mut has: BTreeSet<u32> = match &sv.has {
                Some(h) => h.iter().copied().filter(|&p| p < pieces).collect(),
                None => (0..pieces).collect(),
            };
            has.extend(sv.gains.iter().flatten().copied().filter(|&p| p < pieces));
            (sv.name.as_str(), has)
        })
        .collect()
}

/// How many first pieces of each connection `rarest-first` judges.
const FIRST_PICKS: usize = 3;

/// `rarest-first`: on each connection, the program asks first for pieces
/// that fewest peers have. Judged over the first [`FIRST_PICKS`] distinct
/// pieces asked on each connection: at least three in four of them all
/// must be among the rarest (a choice in index order takes none when the
/// rarest are the later pieces; a random choice rarely three in four).
/// Availability is what the lab's peers have, which their bitfields and
/// haves tell the program.
pub fn rarest_first(_spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let s = Swarm::of(ctx, None);
    let Some((_, meta)) = s.torrent else {
        return Verdict::skip("not judged: the run made no torrent");
    };
    let pieces = meta.info.pieces.len() as u32;
    let holders = holders(ctx, &s, pieces);
    let mut firsts: Vec<(&str, u32, Vec<u32>)> = Vec::new();
    for ((peer, conn), c) in &s.conns {
        let mut order: Vec<u32> = Vec::new();
        for (_, m) in c.sent("request") {
            if let Some((p, _, _)) = m.block
                && !order.contains(&p)
                && order.len() < FIRST_PICKS
            {
                order.push(p);
            }
        }
        if !order.is_empty() {
            firsts.push((peer, *conn, order));
        }
    }
    if firsts.is_empty() {
        return no_requests(&s);
    }
    let count = |i: u32| holders.values().filter(|h| h.contains(&i)).count();
    let fewest = (0..pieces).map(count).filter(|&n| n > 0).min().unwrap_or(0);
    let rare: BTreeSet<u32> = (0..pieces).filter(|&i| count(i) == fewest).collect();
    if rare.len() as u32 == pieces || holders.len() < 2 {
        return Verdict::skip("not judged: no piece has fewer copies than the others here");
    }
    let total: usize = firsts.iter().map(|(_, _, o)| o.len()).sum();
    let hits: usize = firsts
        .iter()
        .map(|(_, _, o)| o.iter().filter(|p| rare.contains(p)).count())
        .sum();
    let evidence: Vec<String> = firsts
        .iter()
        .map(|(peer, conn, o)| {
            let o: Vec<String> = o.iter().map(u32::to_string).collect();
            format!("connection {conn} to {peer}: first pieces {}", o.join(", "))
        })
        .collect();
    if hits * 4 >= total * 3 {
        return Verdict::pass().with_evidence(vec![format!(
            "{hits} of the {total} first pieces asked on each connection are among the {} that only {fewest} peers have",
            rare.len()
        )]);
    }
    let rare_list: Vec<String> = rare.iter().take(8).map(u32::to_string).collect();
    Verdict::fail(format!(
        "only {hits} of the {total} first pieces asked on each connection are among the {} pieces only {fewest} of the {} peers have ({}…): count each piece's copies over the peers' bitfields and haves, and ask each peer first for the rarest it has",
        rare.len(),
        holders.len(),
        rare_list.join(", ")
    ))
    .with_evidence(evidence)
}
