//! The `udp-heartbeat-client` checks (the UDP Pinger lab's optional
//! exercise 2): the student's client sends heartbeats, `seq timestamp`, at
//! an interval to netgrade's echo server, which loses some replies.
//!
//! Everything is judged on the server's side: the heartbeats as they
//! arrived and when. A timestamp is judged against the arrival times, not
//! against netgrade's clock: the gaps between timestamps must match the
//! gaps between arrivals, so an epoch float, milliseconds, `time.ctime()`
//! or an `HH:MM:SS` string all pass, and a constant or a sequence number
//! in the time's place does not.

use std::time::Duration;

use crate::checks::{Ctx, Verdict};
use crate::outcome::ExitKind;
use crate::spec::{CheckKind, CheckSpec};
use crate::trace::Ping;

/// The interval a lab asks for by default.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How long after a lost reply the next heartbeat may come by default,
/// beyond the interval (a one-second timeout, then the next send).
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(3);
/// How far a timestamp's advance may stray from the arrivals' (fractional
/// timestamps; whole seconds get one second more).
const SLACK: f64 = 0.35;

/// One heartbeat as sent: its sequence number and its timestamp in
/// seconds (on whatever clock the program used), if it has them.
#[derive(Clone, Debug, PartialEq)]
struct Beat {
    seq: Option<i64>,
    time: Option<f64>,
    /// Whether the timestamp has only whole seconds.
    coarse: bool,
}

/// Reads a heartbeat's text: the first integer word is its sequence
/// number; a timestamp is an epoch number (seconds or milliseconds) or a
/// clock time `HH:MM:SS[.fff]` anywhere in the text.
fn parse(text: &str) -> Beat {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '='))
        .filter(|w| !w.is_empty())
        .collect();
    let mut seq = None;
    let mut time = None;
    let mut coarse = false;
    for w in &words {
        let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != ':');
        if let Some(t) = clock_time(w) {
            coarse = !w.contains('.');
            time.get_or_insert(t);
            continue;
        }
        let Ok(v) = w.parse::<f64>() else { continue };
        if v >= 1e12 {
            time.get_or_insert(v / 1000.0);
        } else if v >= 1e8 {
            coarse = !w.contains('.');
            time.get_or_insert(v);
        } else if seq.is_none() && !w.contains('.') {
            seq = w.parse::<i64>().ok();
        }
    }
    Beat { seq, time, coarse }
}

/// Seconds since midnight of `HH:MM:SS[.fff]`.
fn clock_time(w: &str) -> Option<f64> {
    let parts: Vec<&str> = w.split(':').collect();
    let [h, m, s] = parts[..] else { return None };
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    let s: f64 = s.parse().ok()?;
    (h < 24 && m < 60 && s < 61.0).then(|| f64::from(h * 3600 + m * 60) + s)
}

fn interval(spec: &CheckSpec) -> Duration {
    spec.interval.map_or(DEFAULT_INTERVAL, |d| d.get())
}

/// The heartbeats, or a verdict when none reached the server.
fn beats(ctx: &Ctx) -> Result<Vec<Ping>, Verdict> {
    let (name, addr) = ctx.pinger().unwrap_or(("heartbeat", "the server".into()));
    let pings = ctx.trace.pings(name);
    if pings.is_empty() {
        return Err(Verdict::fail(format!(
            "no heartbeat reached the server at UDP {addr}: send them to the host and port netgrade passes as arguments"
        )));
    }
    Ok(pings)
}

/// The heartbeats the lab expects (`sends-heartbeats`' `count`, else 10).
fn expected(ctx: &Ctx) -> u32 {
    ctx.lab
        .checks
        .iter()
        .filter(|c| c.kind() == Some(CheckKind::SendsHeartbeats))
        .find_map(|c| c.count)
        .unwrap_or(10)
}

/// `sends-heartbeats`: `count` heartbeats, each with a sequence number one
/// above the last and a timestamp that advances as the arrivals do, paced
/// at least half an interval apart (not a burst).
pub fn sends_heartbeats(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match beats(ctx) {
        Ok(p) => p,
        Err(v) => return v,
    };
    let every = interval(spec);
    let parsed: Vec<Beat> = pings.iter().map(|p| parse(&p.text())).collect();
    let shown = |i: usize| format!("heartbeat {} {:?}", pings[i].index, pings[i].text());
    if let Some(i) = parsed.iter().position(|b| b.seq.is_none()) {
        return Verdict::fail(format!(
            "{} has no sequence number: send `f\"{{seq}} {{time.time()}}\"`, seq counting up by one",
            shown(i)
        ));
    }
    if let Some(i) = parsed.iter().position(|b| b.time.is_none()) {
        return Verdict::fail(format!(
            "{} has no timestamp the server can read (an epoch time like 1795258519.73, or HH:MM:SS): the server computes the one-way delay from it",
            shown(i)
        ));
    }
    for i in 1..parsed.len() {
        let (a, b) = (&parsed[i - 1], &parsed[i]);
        if b.seq != a.seq.map(|s| s + 1) {
            return Verdict::fail(format!(
                "{} follows {}: each heartbeat's sequence number is one above the last, so the server can tell which were lost",
                shown(i),
                shown(i - 1)
            ));
        }
        let arrived = pings[i].at.saturating_sub(pings[i - 1].at);
        if arrived < every / 2 {
            return Verdict::fail(format!(
                "{} came {} ms after the one before; heartbeats go out every {} ms: sleep until the next one is due (a reply, or its timeout, does not replace the interval)",
                shown(i),
                arrived.as_millis(),
                every.as_millis()
            ));
        }
        let (ta, tb) = (a.time.unwrap_or(0.0), b.time.unwrap_or(0.0));
        let slack = SLACK + if a.coarse || b.coarse { 1.0 } else { 0.0 };
        let advanced = tb - ta;
        if (advanced - arrived.as_secs_f64()).abs() > slack {
            return Verdict::fail(format!(
                "{}'s timestamp is {advanced:.3} s after the one before, but it arrived {:.3} s after it: take the time just before each send (`time.time()`), not once for all",
                shown(i),
                arrived.as_secs_f64()
            ));
        }
    }
    let want = expected(ctx) as usize;
    let ended = matches!(ctx.trace.exit(), Some((_, ExitKind::Exited { .. })));
    if pings.len() != want && ended {
        return Verdict::fail(format!(
            "{} heartbeats reached the server; the lab asks for {want}",
            pings.len()
        ));
    }
    let gaps: Vec<f64> = pings
        .windows(2)
        .map(|w| w[1].at.saturating_sub(w[0].at).as_secs_f64())
        .collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len().max(1) as f64;
    Verdict::pass().with_evidence(vec![format!(
        "{} heartbeats, sequence {} to {}, {mean:.2} s apart on average",
        pings.len(),
        parsed[0].seq.unwrap_or(0),
        parsed[parsed.len() - 1].seq.unwrap_or(0)
    )])
}

/// `no-hang-on-loss`: after each heartbeat whose reply the server dropped,
/// the next heartbeat comes within the interval plus `max_wait`.
pub fn no_hang_on_loss(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match beats(ctx) {
        Ok(p) => p,
        Err(_) => {
            return Verdict::skip(
                "not judged: no heartbeat reached the server (see `sends-heartbeats`)",
            );
        }
    };
    let limit = interval(spec) + spec.max_wait.map_or(DEFAULT_MAX_WAIT, |d| d.get());
    match hang(ctx, &pings, limit) {
        Some(message) => Verdict::fail(message),
        None if !pings.iter().any(|p| p.dropped) => {
            Verdict::skip("not judged: no reply was lost (no heartbeat the lab drops was sent)")
        }
        None => {
            let after: Vec<String> = pings
                .windows(2)
                .filter(|w| w[0].dropped)
                .map(|w| {
                    format!(
                        "after heartbeat {} (reply lost) the next came {} ms later",
                        w[0].index,
                        w[1].at.saturating_sub(w[0].at).as_millis()
                    )
                })
                .collect();
            Verdict::pass().with_evidence(after)
        }
    }
}

/// Why the program hung after a lost reply, if it did: the next heartbeat
/// came too late, or never while the program ran on.
fn hang(ctx: &Ctx, pings: &[Ping], limit: Duration) -> Option<String> {
    for w in pings.windows(2) {
        let gap = w[1].at.saturating_sub(w[0].at);
        if w[0].dropped && gap > limit {
            return Some(format!(
                "the reply to heartbeat {} was lost, and the next came {:.1} s later (at most {:.1} s): wait for a reply with a timeout (`settimeout(1)`), then go on",
                w[0].index,
                gap.as_secs_f64(),
                limit.as_secs_f64()
            ));
        }
    }
    let last = pings.last()?;
    let (end, exit) = ctx.trace.exit()?;
    let stalled = end.saturating_sub(last.at);
    (last.dropped && matches!(exit, ExitKind::TimedOut { .. }) && stalled > limit).then(|| {
        format!(
            "the reply to heartbeat {} was lost, and nothing more came for {:.1} s until the time limit stopped the program: it waited forever in recvfrom; set a timeout (`settimeout(1)`) and catch `socket.timeout`",
            last.index,
            stalled.as_secs_f64()
        )
    })
}

/// Whether the program hung on a lost reply: `no-hang-on-loss` charges
/// it, so `runs` (the lab's `stops`) does not again.
pub fn hung_on_loss(ctx: &Ctx) -> bool {
    let Some(spec) = ctx
        .lab
        .checks
        .iter()
        .find(|c| c.kind() == Some(CheckKind::NoHangOnLoss))
    else {
        return false;
    };
    let Ok(pings) = beats(ctx) else { return false };
    let limit = interval(spec) + spec.max_wait.map_or(DEFAULT_MAX_WAIT, |d| d.get());
    hang(ctx, &pings, limit).is_some()
        && matches!(ctx.trace.exit(), Some((_, ExitKind::TimedOut { .. })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_read_as_people_write_them() {
        let b = parse("3 1795258519.7335");
        assert_eq!(
            (b.seq, b.time, b.coarse),
            (Some(3), Some(1795258519.7335), false)
        );
        let b = parse("Heartbeat 4 1795258519");
        assert_eq!((b.seq, b.coarse), (Some(4), true));
        let b = parse("5 Thu Dec  3 03:55:12 2026");
        assert_eq!(
            (b.seq, b.time),
            (Some(5), Some(3.0 * 3600.0 + 55.0 * 60.0 + 12.0))
        );
        let b = parse("seq=6, time=1795258519733");
        assert_eq!(b.time, Some(1795258519.733));
        assert_eq!(parse("7").time, None);
        assert_eq!(parse("time").seq, None);
        assert_eq!(clock_time("25:00:00"), None);
    }
}
