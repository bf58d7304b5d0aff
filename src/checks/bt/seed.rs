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
/// their reports in order; a probe that never ran has none.
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
            let report = ctx.trace.events.iter().find_map(|e| match &e.kind {
                EventKind::Leech { probe, report } if *probe == p.id.value => Some(&**report),
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
