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
        // A crowd is `tit-for-tat`'s alone.
        .filter(|p| p.leech.as_ref().is_some_and(|l| l.crowd.is_none()))
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

/// `tit-for-tat`: under a crowd of fast and slow leechers (a `crowd` leech
/// probe), the peer keeps the ones it uploads to fastest unchoked, at most
/// `slots` of them plus one optimistic unchoke, and moves the optimistic
/// unchoke round the others. Judged at the middle of each rechoke
/// interval after the first, so a rechoke a little late is never charged;
/// each rule must hold at three samples in four.
pub fn tit_for_tat(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    use crate::servers::peer::crowd::CrowdReport;
    let probe = ctx.lab.probes.iter().find(|p| {
        p.leech.as_ref().is_some_and(|l| l.crowd.is_some())
            && spec.probe.as_ref().is_none_or(|id| *id == p.id.value)
    });
    let Some(probe) = probe else {
        return Verdict::skip(
            "not judged: the lab has no crowd of leechers (`leech: { crowd: {} }`)",
        );
    };
    let report: Option<&CrowdReport> = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Crowd { probe: p, report } if *p == probe.id.value => Some(&**report),
        _ => None,
    });
    let Some(report) = report else {
        return Verdict::skip(format!(
            "not judged: probe `{}` did not run (the server had stopped; see `runs`)",
            probe.id.value
        ));
    };
    let rules = Schedule {
        interval: spec
            .interval
            .map_or(std::time::Duration::from_secs(1), |d| d.get()),
        optimistic: spec
            .optimistic
            .map_or(std::time::Duration::from_secs(3), |d| d.get()),
        slots: spec.slots.unwrap_or(4) as usize,
    };
    if let Some(m) = report.members.iter().find(|m| m.joined.is_none()) {
        return Verdict::skip(format!(
            "not judged: leecher {} never got past the handshake ({}); see `handshake-reply`",
            m.number, m.end
        ));
    }
    match rules.judge(report) {
        Ok(lines) => Verdict::pass().with_evidence(lines),
        Err((message, lines)) => Verdict::fail(message).with_evidence(lines),
    }
}

/// The choking schedule a check judges against.
struct Schedule {
    interval: std::time::Duration,
    optimistic: std::time::Duration,
    slots: usize,
}

impl Schedule {
    /// The sample times: the middle of each interval, from the first whole
    /// interval after the last leecher joined.
    fn samples(
        &self,
        joined: std::time::Duration,
        duration: std::time::Duration,
    ) -> Vec<std::time::Duration> {
        let mut out = Vec::new();
        let mut t = joined + self.interval + self.interval / 2;
        while t + self.interval / 2 <= duration {
            out.push(t);
            t += self.interval;
        }
        out
    }

    /// Passes with the timeline, or fails with why and the timeline.
    fn judge(
        &self,
        report: &crate::servers::peer::crowd::CrowdReport,
    ) -> Result<Vec<String>, (String, Vec<String>)> {
        use crate::servers::peer::crowd::unchoked_at;
        let members = &report.members;
        let fast: Vec<u8> = members
            .iter()
            .filter(|m| m.fast)
            .map(|m| m.number)
            .collect();
        let joined = members
            .iter()
            .filter_map(|m| m.joined)
            .max()
            .unwrap_or_default();
        let samples = self.samples(joined, report.duration);
        if samples.is_empty() {
            return Err((
                format!(
                    "the crowd downloaded for {} ms, too short to judge a {} ms rechoke interval: give the probe a longer `duration`",
                    report.duration.as_millis(),
                    self.interval.as_millis()
                ),
                Vec::new(),
            ));
        }
        let rate = |n: u8, t: std::time::Duration| {
            let m = &members[usize::from(n) - 1];
            human_rate(
                m.bytes_between(t.saturating_sub(self.interval), t),
                self.interval,
            )
        };
        let lines: Vec<String> = samples
            .iter()
            .map(|t| {
                let open = unchoked_at(members, *t);
                let shown: Vec<String> = open
                    .iter()
                    .map(|n| format!("{n}{} ({})", if fast.contains(n) { "" } else { "*" }, rate(*n, *t)))
                    .collect();
                format!(
                    "at {:.1} s unchoked: {}",
                    t.as_secs_f64(),
                    if shown.is_empty() { "none".into() } else { shown.join(", ") }
                )
            })
            .chain([format!(
                "leechers 1–{} are fast, {}–{} slow (*); a rate is what the leecher received in the {} ms before",
                fast.len(),
                fast.len() + 1,
                members.len(),
                self.interval.as_millis()
            )])
            .collect();
        let enough = |good: usize| good * 4 >= samples.len() * 3;
        let cap = self.slots + 1;
        let crowded: Vec<_> = samples
            .iter()
            .filter(|t| unchoked_at(members, **t).len() > cap)
            .collect();
        if !enough(samples.len() - crowded.len()) {
            let t = crowded[0];
            let open = unchoked_at(members, *t);
            return Err((
                format!(
                    "{} of the {} interested leechers were unchoked at once at {:.1} s: tit-for-tat unchokes the {} peers you upload to fastest, plus one optimistic unchoke, and chokes the rest",
                    open.len(),
                    members.len(),
                    t.as_secs_f64(),
                    self.slots
                ),
                lines,
            ));
        }
        let kept = |t: &std::time::Duration| {
            let open = unchoked_at(members, *t);
            fast.iter().take(self.slots).all(|n| open.contains(n))
        };
        if let Some(t) = samples.iter().find(|t| !kept(t))
            && !enough(samples.iter().filter(|t| kept(t)).count())
        {
            let open = unchoked_at(members, *t);
            let choked = fast
                .iter()
                .find(|n| !open.contains(n))
                .copied()
                .unwrap_or(1);
            let slow_open: Vec<String> = open
                .iter()
                .filter(|n| !fast.contains(n))
                .map(|n| format!("{n} ({})", rate(*n, *t)))
                .collect();
            let instead = match slow_open.len() {
                0 => String::new(),
                1 => format!(" while slow leecher {} was unchoked", slow_open[0]),
                _ => format!(
                    " while slow leechers {} and {} were unchoked",
                    slow_open[..slow_open.len() - 1].join(", "),
                    slow_open[slow_open.len() - 1]
                ),
            };
            return Err((
                format!(
                    "at {:.1} s fast leecher {choked} ({} in the {} ms before) was choked{instead}: every {} ms, unchoke the {} peers you uploaded to fastest in the last interval",
                    t.as_secs_f64(),
                    rate(choked, *t),
                    self.interval.as_millis(),
                    self.interval.as_millis(),
                    self.slots
                ),
                lines,
            ));
        }
        let lucky: std::collections::BTreeSet<u8> = samples
            .iter()
            .flat_map(|t| unchoked_at(members, *t))
            .filter(|n| !fast.contains(n))
            .collect();
        // Over a window longer than the optimistic interval, it moves at least once.
        let window = report.duration.saturating_sub(joined + self.interval);
        let want = if window > self.optimistic { 2 } else { 1 };
        let want = want.min(members.len() - fast.len());
        if lucky.len() < want {
            let who = match lucky.iter().next() {
                Some(n) => format!("only slow leecher {n} was"),
                None => "no slow leecher was".into(),
            };
            return Err((
                format!(
                    "{who} ever unchoked in {:.0} s: every {} ms, move the optimistic unchoke to another choked peer, chosen at random or in turn",
                    report.duration.as_secs_f64(),
                    self.optimistic.as_millis()
                ),
                lines,
            ));
        }
        Ok(lines)
    }
}

/// Bytes in `span` as a rate for people.
fn human_rate(bytes: u64, span: std::time::Duration) -> String {
    let per_s = bytes as f64 / span.as_secs_f64().max(1e-3);
    if per_s >= 1e6 {
        format!("{:.1} MB/s", per_s / 1e6)
    } else {
        format!("{:.0} KB/s", per_s / 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::peer::crowd::{CrowdReport, Member};
    use std::time::Duration;

    const S: Duration = Duration::from_secs(1);

    /// A crowd of 4 fast and 4 slow leechers over 9 s (slow ones joining at
    /// 1 s, so samples fall at 2.5 s, 3.5 s …): `open(n, t)` says whether
    /// leecher n is unchoked during second t.
    fn crowd(open: impl Fn(u8, u64) -> bool) -> CrowdReport {
        let members = (1..=8u8)
            .map(|n| {
                let fast = n <= 4;
                let mut m = Member {
                    number: n,
                    fast,
                    joined: Some(if fast { Duration::ZERO } else { S }),
                    end: "time up".into(),
                    ..Member::default()
                };
                let mut was = false;
                for t in 0..9u64 {
                    let now = open(n, t);
                    if now != was {
                        m.chokes.push((S * t as u32, now));
                        was = now;
                    }
                    // Ten buckets a second: 300 KB a second fast, 6 KB slow.
                    for _ in 0..10 {
                        m.received.push(match (now, fast) {
                            (false, _) => 0,
                            (true, true) => 30_000,
                            (true, false) => 600,
                        });
                    }
                }
                m
            })
            .collect();
        CrowdReport {
            members,
            duration: S * 9,
        }
    }

    fn judge(report: &CrowdReport) -> Result<Vec<String>, (String, Vec<String>)> {
        Schedule {
            interval: S,
            optimistic: S * 3,
            slots: 4,
        }
        .judge(report)
    }

    #[test]
    fn tit_for_tat_passes_with_the_fast_four_and_a_moving_fifth() {
        // The optimistic unchoke moves every 3 s: 5, 6, 7.
        let r = crowd(|n, t| n <= 4 || n == 5 + (t / 3) as u8);
        let lines = judge(&r).unwrap();
        assert_eq!(
            lines[0],
            "at 2.5 s unchoked: 1 (300 KB/s), 2 (300 KB/s), 3 (300 KB/s), 4 (300 KB/s), 5* (6 KB/s)"
        );
        assert_eq!(lines.len(), 8, "seven samples and the legend: {lines:?}");
    }

    #[test]
    fn unchoking_everyone_is_not_tit_for_tat() {
        let (m, _) = judge(&crowd(|_, _| true)).unwrap_err();
        assert!(
            m.starts_with("8 of the 8 interested leechers were unchoked at once at 2.5 s"),
            "{m}"
        );
    }

    #[test]
    fn a_fast_leecher_choked_for_slow_ones_is_named_with_its_rate() {
        let r = crowd(|n, _| n != 3);
        let (m, _) = judge(&r).unwrap_err();
        assert!(m.starts_with("7 of the 8"), "{m}");
        let r = crowd(|n, t| (n <= 4 && n != 3) || n == 5 || n == 6 + (t / 3 % 2) as u8);
        let (m, _) = judge(&r).unwrap_err();
        assert!(
            m.starts_with("at 2.5 s fast leecher 3 (0 KB/s in the 1000 ms before) was choked while slow leechers 5 (6 KB/s) and 6 (6 KB/s) were unchoked"),
            "{m}"
        );
    }

    #[test]
    fn an_optimistic_unchoke_that_never_moves_is_charged() {
        let (m, _) = judge(&crowd(|n, _| n <= 5)).unwrap_err();
        assert!(
            m.starts_with("only slow leecher 5 was ever unchoked in 9 s"),
            "{m}"
        );
        let (m, _) = judge(&crowd(|n, _| n <= 4)).unwrap_err();
        assert!(m.starts_with("no slow leecher was ever unchoked"), "{m}");
    }

    #[test]
    fn one_late_rechoke_in_four_samples_is_forgiven() {
        // At 4 s the rechoke came late: a slow leecher still had a fast one's slot.
        let r = crowd(|n, t| {
            let late = t == 4;
            (n <= 4 && !(late && n == 2)) || n == 5 + (t / 3) as u8 || (late && n == 8)
        });
        assert!(judge(&r).is_ok());
    }
}
