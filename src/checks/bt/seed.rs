//! The `bt-seed` checks: netgrade's leecher downloads from the student's
//! peer (`leech` probes), and each check reads what it saw
//! ([`EventKind::Leech`]). A step the peer never reached is charged by the
//! check of the step before it alone: the others say "not judged".

use crate::checks::{Ctx, Verdict};
use crate::servers::peer::leecher::{End, LeechReport};
use crate::spec::CheckSpec;
use crate::trace::EventKind;

use super::hex;

/// The leech probes a check reads (its `probe`/`probes`, or every one), with
/// their reports in order; a probe that never ran has none. Of a swarm
/// download, the first instance's part: the others are `swarm`'s.
fn reports<'a>(spec: &CheckSpec, ctx: &Ctx<'a>) -> Vec<(&'a str, Option<&'a LeechReport>)> {
    let named: Vec<&str> = match (&spec.probe, &spec.probes) {
        (Some(p), _) => vec![p.as_str()],
        (None, Some(ps)) => ps.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    ctx.lab
        .probes
        .iter()
        .filter(|p| p.leech.is_some())
        .filter(|p| named.is_empty() || named.contains(&p.id.value.as_str()))
        .map(|p| {
            let swarm = p.leech.as_ref().is_some_and(|l| l.swarm);
            let report = ctx.trace.events.iter().find_map(|e| match &e.kind {
                EventKind::Leech {
                    probe,
                    instance,
                    report,
                } if *probe == p.id.value && (!swarm || *instance == 1) => Some(&**report),
                _ => None,
            });
            (p.id.value.as_str(), report)
        })
        .collect()
}

fn not_judged(step: &str) -> Verdict {
    Verdict::skip(format!(
        "not judged: the peer did not get that far (see `{step}`)"
    ))
}

/// Runs `judge` over every report; the first failure is the verdict, with
/// the probe named.
fn each(
    spec: &CheckSpec,
    ctx: &Ctx,
    judge: impl Fn(&LeechReport) -> Result<String, Verdict>,
) -> Verdict {
    let mut evidence = Vec::new();
    let all = reports(spec, ctx);
    if all.is_empty() {
        return Verdict::skip("not judged: the lab has no leech probe for this check");
    }
    for (probe, report) in all {
        let Some(report) = report else {
            return Verdict::skip(format!(
                "not judged: probe `{probe}` did not run (the server had stopped; see `runs`)"
            ));
        };
        match judge(report) {
            Ok(line) => evidence.push(format!("{probe}: {line}")),
            Err(mut v) => {
                if let Some(m) = &mut v.message {
                    *m = format!("probe `{probe}`: {m}");
                }
                return v;
            }
        }
    }
    Verdict::pass().with_evidence(evidence)
}

/// `handshake-reply`: the peer answers the handshake with 68 right bytes.
pub fn handshake_reply(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    each(spec, ctx, |r| {
        if r.handshake.is_some() {
            return Ok(format!(
                "handshake: {}",
                hex(&r.handshake_raw[..r.handshake_raw.len().min(28)])
            ));
        }
        let got = if r.handshake_raw.is_empty() {
            "no byte of a handshake came back".to_string()
        } else {
            format!(
                "{} bytes came back: {}",
                r.handshake_raw.len(),
                hex(&r.handshake_raw[..r.handshake_raw.len().min(48)])
            )
        };
        Err(Verdict::fail(format!(
            "{got}; the session ended: {}. Answer a handshake with yours: 19, \"BitTorrent protocol\", 8 reserved bytes, the same info_hash, your 20-byte peer_id (68 bytes)",
            r.end
        )))
    })
}

/// `bitfield`: right after the handshake, a bitfield of the right length
/// saying the peer has every piece (or haves that do).
pub fn bitfield(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    each(spec, ctx, |r| {
        if r.handshake.is_none() {
            return Err(not_judged("handshake-reply"));
        }
        if let Some((kind, detail)) = r
            .deviations
            .iter()
            .find(|(k, _)| k == "bad-bitfield" || k == "late-bitfield")
        {
            return Err(Verdict::fail(format!(
                "{kind}: {detail}; the bitfield has one bit per piece, the first piece in the high bit of the first byte, spare bits zero, and comes first after the handshake"
            )));
        }
        if !r.missing.is_empty() {
            let missing: Vec<String> = r.missing.iter().take(8).map(u32::to_string).collect();
            let said = r.bitfield.as_ref().map_or("no bitfield".into(), |b| {
                format!("bitfield {}", hex(&b.bits))
            });
            return Err(Verdict::fail(format!(
                "the peer seeds the whole file but said it lacks piece(s) {} ({said}): set a bit for every piece you have, `bits[i // 8] |= 0x80 >> (i % 8)`",
                missing.join(", ")
            )));
        }
        Ok(match &r.bitfield {
            Some(b) => format!("bitfield {}", hex(&b.bits)),
            None => format!("{} haves", r.haves.len()),
        })
    })
}

/// `unchokes`: after `interested`, an unchoke comes.
pub fn unchokes(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    each(spec, ctx, |r| {
        if r.handshake.is_none() {
            return Err(not_judged("handshake-reply"));
        }
        let Some(interested) = r.interested_at else {
            return Err(not_judged("bitfield"));
        };
        match r.unchoke_delay() {
            Some(d) => Ok(format!("unchoked {} ms after interested", d.as_millis())),
            None => Err(Verdict::fail(format!(
                "the leecher said interested at {} ms and was never unchoked ({}): answer interested with unchoke (length 1, id 1), then serve requests",
                interested.as_millis(),
                r.end
            ))),
        }
    })
}

/// `serves-pieces`: every block requested comes back, right, byte for byte,
/// and every piece's SHA-1 matches.
pub fn serves_pieces(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    each(spec, ctx, |r| {
        if r.handshake.is_none() {
            return Err(not_judged("handshake-reply"));
        }
        if r.unchoked_at.is_none() {
            return Err(not_judged(if r.interested_at.is_none() {
                "bitfield"
            } else {
                "unchokes"
            }));
        }
        if let Some(p) = r.failed().first() {
            return Err(Verdict::fail(format!(
                "piece {} came back wrong{}: its SHA-1 is not the torrent's; read `length` bytes at offset index × piece_length + begin of the file, and send them as `piece` (id 7) with the same index and begin",
                p.index,
                p.first_difference.map_or(String::new(), |o| format!(
                    ", first at byte {o} of the piece"
                ))
            )));
        }
        if let Some((kind, detail)) = r
            .deviations
            .iter()
            .find(|(k, _)| k == "wrong-block" || k == "unrequested-block")
        {
            return Err(Verdict::fail(format!("{kind}: {detail}")));
        }
        if r.end != End::Completed {
            let got = r.verified().len();
            return Err(Verdict::fail(format!(
                "{got} piece(s) came back, then the session ended: {}",
                r.end
            )));
        }
        Ok(format!(
            "{} pieces, {} blocks, all right, in {} ms",
            r.verified().len(),
            r.blocks.len(),
            r.elapsed.as_millis()
        ))
    })
}

/// `handles-cancel`: after a request and its cancel, the peer keeps the
/// connection and serves what comes next (a block sent anyway is allowed).
pub fn handles_cancel(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let cancelling: Vec<&str> = ctx
        .lab
        .probes
        .iter()
        .filter(|p| p.leech.as_ref().is_some_and(|l| l.cancel))
        .map(|p| p.id.value.as_str())
        .collect();
    each(spec, ctx, |r| {
        if r.handshake.is_none() {
            return Err(not_judged("handshake-reply"));
        }
        let Some(c) = &r.cancel else {
            return if r.unchoked_at.is_none() {
                Err(not_judged("unchokes"))
            } else {
                Ok("no cancel sent on this connection".into())
            };
        };
        let (i, b, l) = c.block;
        if r.end == End::Completed && c.served_after > 0 {
            return Ok(format!(
                "cancel {i}/{b}/{l}: {}; {} block(s) served after it",
                if c.sent_anyway { "sent anyway (allowed)" } else { "not sent" },
                c.served_after
            ));
        }
        Err(Verdict::fail(format!(
            "after cancel {i}/{b}/{l} at {} ms, {} block(s) were served, then the session ended: {}; a cancel (id 8) only withdraws that request: drop it from your queue if it is there, and keep serving",
            c.at.as_millis(),
            c.served_after,
            r.end
        )))
    })
    .or_skip_if(cancelling.is_empty())
}

/// `swarm`: every instance serves its part of a swarm download (a `swarm`
/// leech probe), each on the port it was told. The first instance's own
/// faults are the other checks'; this one charges what only a second
/// instance shows (a port fixed in the code, a file written where another
/// instance reads).
pub fn swarm(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let named: Vec<&str> = match (&spec.probe, &spec.probes) {
        (Some(p), _) => vec![p.as_str()],
        (None, Some(ps)) => ps.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let probes: Vec<&str> = ctx
        .lab
        .probes
        .iter()
        .filter(|p| p.leech.as_ref().is_some_and(|l| l.swarm))
        .map(|p| p.id.value.as_str())
        .filter(|id| named.is_empty() || named.contains(id))
        .collect();
    if probes.is_empty() {
        return Verdict::skip(
            "not judged: the lab has no swarm download (`leech: { swarm: true }`)",
        );
    }
    let mut evidence = Vec::new();
    for probe in probes {
        let parts: Vec<(u8, &LeechReport)> = ctx
            .trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Leech {
                    probe: p,
                    instance,
                    report,
                } if p == probe => Some((*instance, &**report)),
                _ => None,
            })
            .collect();
        if parts.is_empty() {
            return Verdict::skip(format!(
                "not judged: probe `{probe}` did not run (the server had stopped; see `runs`)"
            ));
        }
        for (instance, report) in parts {
            match swarm_part(ctx, instance, report) {
                Ok(line) => evidence.push(format!("{probe}, instance {instance}: {line}")),
                Err(m) => {
                    return Verdict::fail(format!("probe `{probe}`, instance {instance}: {m}"))
                        .with_evidence(instance_evidence(ctx, instance));
                }
            }
        }
    }
    Verdict::pass().with_evidence(evidence)
}

/// How one instance's part of a swarm download went.
fn swarm_part(ctx: &Ctx, instance: u8, r: &LeechReport) -> Result<String, String> {
    let (told, listened) = started(ctx, instance);
    if let (Some(port), Some(at)) = (told, listened)
        && at.port() != port
    {
        return Err(format!(
            "it listens on port {}, not on {port}, the port it was told: listen on the PORT argument, never on a fixed port, so several peers can run on one machine",
            at.port()
        ));
    }
    if let (Some(port), None) = (told, listened) {
        let ended = ended(ctx, instance);
        return Err(format!(
            "it never listened on port {port}, the port it was told{}: listen on the PORT argument, never on a fixed port, so several peers can run on one machine",
            ended.map_or(String::new(), |(exit, stderr)| format!(
                "; it {}{}",
                exit.describe(),
                last_line(stderr).map_or(String::new(), |l| format!(": {l}"))
            ))
        ));
    }
    let wanted = r
        .blocks
        .iter()
        .map(|b| b.index)
        .collect::<std::collections::BTreeSet<_>>();
    if let Some(p) = r.failed().first() {
        return Err(format!(
            "piece {} came back wrong: its SHA-1 is not the torrent's (this instance reads the file in its own folder)",
            p.index
        ));
    }
    if r.end != End::Completed {
        return Err(format!(
            "{} of its piece(s) came back, then the session ended: {}",
            r.verified().len(),
            r.end
        ));
    }
    Ok(format!(
        "{} pieces ({} asked), all right, in {} ms",
        r.verified().len(),
        wanted.len(),
        r.elapsed.as_millis()
    ))
}

/// The port instance `k` was told and where it listened (instance 1: the
/// program's `Listening`).
fn started(ctx: &Ctx, k: u8) -> (Option<u16>, Option<std::net::SocketAddr>) {
    ctx.trace
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::InstanceStarted {
                instance,
                port,
                addr,
                ..
            } if *instance == k => Some((Some(*port), *addr)),
            EventKind::Listening { addr, .. } if k == 1 => Some((None, Some(*addr))),
            _ => None,
        })
        .unwrap_or((None, None))
}

/// How instance `k` (2 and on) ended, and the end of its stderr.
fn ended<'a>(ctx: &Ctx<'a>, k: u8) -> Option<(&'a crate::outcome::ExitKind, &'a str)> {
    ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::InstanceEnded {
            instance,
            exit,
            stderr,
        } if *instance == k => Some((exit, stderr.as_str())),
        _ => None,
    })
}

/// The last non-empty line of `text` (a traceback's error).
fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// What the report shows of instance `k`: its end and the end of its stderr.
fn instance_evidence(ctx: &Ctx, k: u8) -> Vec<String> {
    let Some((exit, stderr)) = ended(ctx, k) else {
        return Vec::new();
    };
    let mut out = vec![format!("instance {k}: {}", exit.describe())];
    out.extend(
        stderr
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|l| format!("instance {k} stderr: {l}")),
    );
    out
}

trait OrSkip {
    fn or_skip_if(self, no_cancel: bool) -> Verdict;
}

impl OrSkip for Verdict {
    fn or_skip_if(self, no_cancel: bool) -> Verdict {
        if no_cancel {
            Verdict::skip("not judged: the lab has no leech probe with `cancel: true`")
        } else {
            self
        }
    }
}
