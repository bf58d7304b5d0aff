//! Checks over a UDP pinger client's traffic and output.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use super::output::{self, DEFAULT_TIMEOUT_PATTERN, Line, Obs, Value};
use super::{Ctx, Verdict, millis, quote, secs, tail};
use crate::outcome::ExitKind;
use crate::spec::{CheckSpec, Dur};
use crate::trace::{Ping, Stream, Transport};

const DEFAULT_COUNT: u32 = 10;
/// How far below the server-side hold time a reported RTT may be (clock granularity).
const RTT_SLACK_BELOW: f64 = 0.005;
/// Most offending items listed as evidence.
const MAX_EVIDENCE: usize = 10;

/// The pings of the lab's pinger, or a failure when none arrived.
fn pings_or_fail(ctx: &Ctx, what: &str) -> Result<Vec<Ping>, Verdict> {
    let (name, addr) = ctx.pinger().unwrap_or(("pinger", "the server".into()));
    let pings = ctx.trace.pings(name);
    if !pings.is_empty() {
        return Ok(pings);
    }
    let why = match ctx.trace.exit() {
        Some((_, exit @ (ExitKind::Exited { .. } | ExitKind::Signaled { .. })))
            if *exit != (ExitKind::Exited { code: 0 }) =>
        {
            format!(
                "the program {} before sending one (see `runs`)",
                exit.describe()
            )
        }
        _ => match ctx.trace.strays().first() {
            Some((Transport::Udp, to, n)) => format!(
                "the program sent {n} datagram{} to UDP {to} instead; send to port {port} (the handout's, also passed as an argument); {what} could not be checked",
                if *n == 1 { "" } else { "s" },
                port = addr.rsplit(':').next().unwrap_or_default()
            ),
            Some((Transport::Tcp, to, _)) => format!(
                "the program tried to open a TCP connection to {to} instead; the pinger speaks UDP: create the socket with SOCK_DGRAM and use sendto/recvfrom; {what} could not be checked"
            ),
            None => format!(
                "send your pings to that address (or to the host and port netgrade passes as arguments); {what} could not be checked"
            ),
        },
    };
    Err(Verdict::fail(format!(
        "no ping reached the server at UDP {addr}: {why}"
    )))
}

/// The program's last output lines, both streams.
fn stdout_tail(ctx: &Ctx, n: usize) -> Vec<String> {
    let mut out = tail(ctx, Stream::Stdout, n);
    out.extend(tail(ctx, Stream::Stderr, n));
    out
}

fn ping_line(p: &Ping) -> String {
    let fate = match (&p.reply, p.dropped) {
        (_, true) => "dropped by the server".to_string(),
        (Some(_), _) => format!(
            "answered after {}",
            p.hold().map(millis).unwrap_or_default()
        ),
        (None, false) => "not answered (the run ended first)".to_string(),
    };
    format!(
        "ping {} at {}: {} — {fate}",
        p.index,
        secs(p.at),
        quote(&p.data)
    )
}

pub(super) fn ping_count(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let want = spec.count.unwrap_or(DEFAULT_COUNT) as usize;
    let (name, _) = ctx.pinger().unwrap_or(("pinger", String::new()));
    let pings = match pings_or_fail(ctx, "the number of pings") {
        Ok(p) => p,
        Err(v) => return v.with_evidence(stdout_tail(ctx, 5)),
    };
    let got = pings.len();
    if let Some(limit) = ctx.trace.capped(name) {
        return Verdict::fail(format!(
            "the program sent more than {limit} datagrams; the handout asks for {want} pings"
        ));
    }
    if got == want {
        return Verdict::pass();
    }
    let mut message = format!("{got} pings reached the server; expected exactly {want}");
    if got < want {
        match ctx.trace.exit() {
            Some((_, ExitKind::TimedOut { .. })) => message.push_str(
                " (the program was stopped at the time limit while waiting, see `waits-for-timeout`)",
            ),
            Some((_, ExitKind::Exited { code })) if *code != 0 => {
                message.push_str(&format!(" (the program crashed with status {code}, see `runs`)"))
            }
            _ => message.push_str(": check the bounds of your loop"),
        }
    } else {
        message.push_str(": check the bounds of your loop, e.g. `for seq in range(1, 11)`");
    }
    let skip = pings.len().saturating_sub(3);
    Verdict::fail(message).with_evidence(pings[skip..].iter().map(ping_line).collect())
}

static PING_FIELDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S+) +(\S+) +(.+)$").unwrap());

/// What is wrong with ping `k` (1-based) whose payload is `data`, if anything.
fn format_problem(data: &[u8], k: u32, first_seq: u32) -> Option<String> {
    let want_seq = first_seq + k - 1;
    let Ok(text) = std::str::from_utf8(data) else {
        return Some("is not text (not valid UTF-8)".into());
    };
    let text = text.trim_end_matches(['\n', '\r']);
    let Some(c) = PING_FIELDS.captures(text) else {
        return Some(format!(
            "does not have the three fields `Ping <seq> <time>` (expected `Ping {want_seq} <time>`)"
        ));
    };
    if !c[1].eq_ignore_ascii_case("ping") {
        return Some(format!("starts with `{}` instead of `Ping`", &c[1]));
    }
    match c[2].parse::<i64>() {
        Ok(seq) if seq == i64::from(want_seq) => {}
        Ok(seq) => {
            return Some(format!(
                "has sequence number {seq}; expected {want_seq} (pings are numbered {first_seq}, {}, … in order)",
                first_seq + 1
            ));
        }
        Err(_) => {
            return Some(format!(
                "has sequence number `{}`, which is not a whole number",
                &c[2]
            ));
        }
    }
    let time = c[3].trim();
    if !time.bytes().any(|b| b.is_ascii_digit()) {
        return Some(format!(
            "has `{time}` as its time; send the time the ping was sent, e.g. `time.time()`"
        ));
    }
    None
}

pub(super) fn ping_format(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let first_seq = spec.first_seq.unwrap_or(1);
    let pings = match pings_or_fail(ctx, "the ping format") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let problems: Vec<String> = pings
        .iter()
        .zip(1u32..)
        .filter_map(|(p, k)| {
            format_problem(&p.data, k, first_seq)
                .map(|why| format!("ping {k}: {} {why}", quote(&p.data)))
        })
        .collect();
    if problems.is_empty() {
        return Verdict::pass();
    }
    // The most common mistake, numbering from 0 (or 2), deserves one clear sentence.
    let offsets: Vec<Option<i64>> = pings
        .iter()
        .zip(1u32..)
        .map(|(p, k)| {
            let text = std::str::from_utf8(&p.data).ok()?;
            let seq: i64 = PING_FIELDS.captures(text.trim_end())?[2].parse().ok()?;
            Some(seq - i64::from(first_seq + k - 1))
        })
        .collect();
    if let Some(Some(off)) = offsets.first()
        && *off != 0
        && offsets.iter().all(|o| *o == Some(*off))
    {
        let last = i64::from(first_seq) + *off + pings.len() as i64 - 1;
        let message = format!(
            "the pings are numbered {} to {last}; the handout numbers them {first_seq} to {}: start the sequence at {first_seq}",
            i64::from(first_seq) + off,
            u64::from(first_seq) + pings.len() as u64 - 1
        );
        return Verdict::fail(message).with_evidence(problems.into_iter().take(3).collect());
    }
    let message = if problems.len() == 1 {
        problems[0].clone()
    } else {
        format!(
            "{} of {} pings are malformed; the first: {}",
            problems.len(),
            pings.len(),
            problems[0]
        )
    };
    Verdict::fail(message).with_evidence(problems.into_iter().take(MAX_EVIDENCE).collect())
}

pub(super) fn waits_for_timeout(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let min = spec.min_wait.unwrap_or(Dur::from_millis(750)).get();
    let max = spec.max_wait.unwrap_or(Dur::from_secs(3)).get();
    let pings = match pings_or_fail(ctx, "the waits after lost pings") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let exit = ctx.trace.exit();
    let mut evidence = Vec::new();
    let mut failure: Option<String> = None;
    let mut observed = 0;
    for (i, p) in pings.iter().enumerate().filter(|(_, p)| p.dropped) {
        let (gap, after) = match pings.get(i + 1) {
            Some(next) => (
                next.at.saturating_sub(p.at),
                format!("ping {} arrived", next.index),
            ),
            None => match exit {
                Some((_, ExitKind::TimedOut { limit_ms })) => {
                    evidence.push(ping_line(p));
                    failure.get_or_insert(format!(
                        "after ping {} was lost the program sent nothing more and was still waiting at the time limit ({}): it never gave up on the reply; set a timeout of one second on the socket",
                        p.index,
                        Dur::from_millis(*limit_ms)
                    ));
                    continue;
                }
                Some((at, ExitKind::Exited { .. })) => {
                    (at.saturating_sub(p.at), "the program exited".to_string())
                }
                _ => continue,
            },
        };
        observed += 1;
        let line = format!(
            "ping {} lost at {}; {} {} later",
            p.index,
            secs(p.at),
            after,
            secs(gap)
        );
        if gap < min {
            failure.get_or_insert(format!(
                "after ping {} was lost, {after} only {} later; expected about 1 s (at least {}): the socket timeout is too short",
                p.index,
                secs(gap),
                Dur(min)
            ));
            evidence.push(format!("{line}  ← too soon"));
        } else if gap > max {
            failure.get_or_insert(format!(
                "after ping {} was lost, {after} {} later; expected about 1 s (at most {}): the socket timeout is too long",
                p.index,
                secs(gap),
                Dur(max)
            ));
            evidence.push(format!("{line}  ← too late"));
        } else {
            evidence.push(line);
        }
    }
    match failure {
        Some(message) => Verdict::fail(message).with_evidence(evidence),
        None if observed == 0 => Verdict::skip(
            "no lost ping could be observed in this run (the program sent too few pings), so there was no timeout to measure",
        ),
        None => Verdict::pass().with_evidence(evidence),
    }
}

/// Output lines classified against the pinger's traffic.
fn classified<'a>(ctx: &'a Ctx, pings: &[Ping], pattern: Option<&str>) -> (Vec<Line<'a>>, Regex) {
    let timeout = Regex::new(pattern.unwrap_or(DEFAULT_TIMEOUT_PATTERN))
        .unwrap_or_else(|_| Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap());
    let lines = ctx.trace.lines(Stream::Stdout);
    (output::classify(&lines, pings, &timeout), timeout)
}

pub(super) fn reports_timeouts(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match pings_or_fail(ctx, "which pings were lost") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let (lines, _) = classified(ctx, &pings, spec.pattern.as_deref());
    let lost: Vec<u32> = pings
        .iter()
        .filter(|p| p.dropped)
        .map(|p| p.index)
        .collect();
    let reported: Vec<&Line> = lines
        .iter()
        .filter(|l| l.obs.contains(&Obs::Timeout))
        .collect();
    if lost.is_empty() {
        return Verdict::skip("no ping was lost in this run, so there was no timeout to report");
    }
    if reported.len() == lost.len() {
        return Verdict::pass();
    }
    let lost_list = lost
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let message = if reported.is_empty() {
        format!(
            "{} ping{} lost (ping {lost_list}) but the output has no \"Request timed out\" line",
            lost.len(),
            if lost.len() == 1 { " was" } else { "s were" }
        )
    } else {
        format!(
            "{} ping{} lost (ping {lost_list}) but the output has {} \"Request timed out\" line{}",
            lost.len(),
            if lost.len() == 1 { " was" } else { "s were" },
            reported.len(),
            if reported.len() == 1 { "" } else { "s" }
        )
    };
    let mut evidence: Vec<String> = reported
        .iter()
        .take(MAX_EVIDENCE)
        .map(|l| format!("stdout line {}: {}", l.number, l.text))
        .collect();
    if reported.is_empty() {
        evidence = stdout_tail(ctx, 6);
    }
    Verdict::fail(message).with_evidence(evidence)
}

pub(super) fn prints_replies(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match pings_or_fail(ctx, "the replies") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let (lines, _) = classified(ctx, &pings, spec.pattern.as_deref());
    let shown: Vec<u32> = lines
        .iter()
        .flat_map(|l| l.obs.iter())
        .filter_map(|o| match o {
            Obs::Reply(i) => Some(*i),
            _ => None,
        })
        .collect();
    let answered: Vec<&Ping> = pings.iter().filter(|p| p.reply.is_some()).collect();
    if answered.is_empty() {
        return Verdict::skip(
            "the server answered no ping in this run, so there was no reply to print",
        );
    }
    let missing: Vec<&&Ping> = answered
        .iter()
        .filter(|p| !shown.contains(&p.index))
        .collect();
    if missing.is_empty() {
        return Verdict::pass();
    }
    let first = missing[0];
    let reply = first
        .reply
        .as_ref()
        .map(|(_, d)| quote(d))
        .unwrap_or_default();
    let message = format!(
        "{} of {} replies never appear in the output; the server answered ping {} with {reply}, and no stdout line contains it",
        missing.len(),
        answered.len(),
        first.index
    );
    let mut evidence: Vec<String> = missing
        .iter()
        .take(MAX_EVIDENCE)
        .map(|p| {
            format!(
                "missing: reply to ping {}: {}",
                p.index,
                p.reply.as_ref().map(|(_, d)| quote(d)).unwrap_or_default()
            )
        })
        .collect();
    evidence.extend(stdout_tail(ctx, 4));
    Verdict::fail(message).with_evidence(evidence)
}

/// Why `v` is not an acceptable report of a ping the server held for `hold`.
fn rtt_problem(v: &Value, hold: Duration, tolerance: Duration) -> Option<String> {
    let h = hold.as_secs_f64();
    let t = tolerance.as_secs_f64();
    if v.secs >= h - RTT_SLACK_BELOW && v.secs <= h + t {
        return None;
    }
    let ms = v.raw / 1000.0;
    Some(if v.raw == 0.0 {
        format!(
            "is 0, but the true RTT is {:.3} s: the value was truncated to a whole number (e.g. `%d` or int()); print it with decimals",
            h
        )
    } else if !v.unit_named && ms >= h - RTT_SLACK_BELOW && ms <= h + t {
        format!(
            "reads as {} s, but the true RTT is {:.3} s: it looks like milliseconds; print seconds, or write \"ms\" after the number",
            v.raw, h
        )
    } else if v.secs < h {
        format!(
            "is {:.6} s, less than the {:.3} s the server held the ping: measure from just before sendto to just after recvfrom",
            v.secs, h
        )
    } else {
        format!(
            "is {:.6} s, more than the true RTT {:.3} s allows (tolerance {}): measure from just before sendto to just after recvfrom",
            v.secs,
            h,
            Dur(tolerance)
        )
    })
}

pub(super) fn reports_rtt(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let tolerance = spec.tolerance.unwrap_or(Dur::from_millis(100)).get();
    let pings = match pings_or_fail(ctx, "the round-trip times") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let (lines, _) = classified(ctx, &pings, None);
    let answered: Vec<u32> = pings
        .iter()
        .filter(|p| p.reply.is_some())
        .map(|p| p.index)
        .collect();
    if answered.is_empty() {
        return Verdict::skip(
            "the server answered no ping in this run, so there was no RTT to report",
        );
    }
    let rtts = output::rtts_by_ping(&lines, &answered);
    let mut evidence = Vec::new();
    let mut failure = None;
    for (index, found) in &rtts {
        let ping = pings
            .iter()
            .find(|p| p.index == *index)
            .expect("answered ping");
        let hold = ping.hold().unwrap_or_default();
        match found {
            None => {
                evidence.push(format!(
                    "ping {index}: server held it {}; no RTT found in the output",
                    millis(hold)
                ));
                failure.get_or_insert(format!(
                    "no RTT was printed for ping {index} (true RTT {:.3} s); print it after the reply, e.g. `RTT: 0.087 s`",
                    hold.as_secs_f64()
                ));
            }
            Some((line, v)) => match rtt_problem(v, hold, tolerance) {
                None => evidence.push(format!(
                    "ping {index}: server held it {}; line {}: {} ✓",
                    millis(hold),
                    line.number,
                    line.text
                )),
                Some(why) => {
                    evidence.push(format!(
                        "ping {index}: server held it {}; line {}: {}  ← {why}",
                        millis(hold),
                        line.number,
                        line.text
                    ));
                    failure.get_or_insert(format!(
                        "the RTT printed for ping {index} (line {}: {}) {why}",
                        line.number,
                        line.text.trim()
                    ));
                }
            },
        }
    }
    match failure {
        Some(m) => {
            Verdict::fail(m).with_evidence(evidence.into_iter().take(MAX_EVIDENCE).collect())
        }
        None => Verdict::pass(),
    }
}

pub(super) fn reports_stats(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let tolerance = spec.tolerance.unwrap_or(Dur::from_millis(100)).get();
    let count = spec.count.unwrap_or(DEFAULT_COUNT);
    let pings = match pings_or_fail(ctx, "the statistics") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let (lines, _) = classified(ctx, &pings, None);
    let stats = output::stats(&lines);
    let holds: Vec<Duration> = pings.iter().filter_map(Ping::hold).collect();
    let lost = pings.iter().filter(|p| p.dropped).count();
    let sent = pings.len().max(count as usize);
    let expected_loss = 100.0 * (lost + sent - pings.len()) as f64 / sent as f64;

    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    if holds.is_empty() {
        evidence.push("no ping was answered, so there is no min/max/avg RTT to print".into());
    } else {
        let min = *holds.iter().min().unwrap();
        let max = *holds.iter().max().unwrap();
        let avg = holds.iter().sum::<Duration>() / holds.len() as u32;
        for (name, want, got) in [
            ("minimum", min, &stats.min),
            ("maximum", max, &stats.max),
            ("average", avg, &stats.avg),
        ] {
            match got {
                None => problems.push(format!(
                    "no {name} RTT found (expected about {:.3} s)",
                    want.as_secs_f64()
                )),
                Some(v) => match rtt_problem(v, want, tolerance) {
                    None => evidence.push(format!(
                        "{name} RTT {:.6} s; true {:.3} s ✓",
                        v.secs,
                        want.as_secs_f64()
                    )),
                    Some(why) => problems.push(format!("the {name} RTT {why}")),
                },
            }
        }
    }
    match stats.loss_percent {
        None => problems.push(format!("no packet-loss rate found (expected {expected_loss:.0}%)")),
        Some(p) if (p - expected_loss).abs() <= 1.0 => evidence.push(format!("loss {p}%; true {expected_loss:.0}% ✓")),
        Some(p) => problems.push(format!(
            "the loss rate reads as {p}%, but {lost} of {sent} pings were lost: {expected_loss:.0}%; print lost / sent × 100 with a % sign"
        )),
    }
    if problems.is_empty() {
        return Verdict::pass();
    }
    let stats_lines: Vec<String> = lines
        .iter()
        .filter(|l| l.stats)
        .map(|l| format!("stdout line {}: {}", l.number, l.text))
        .collect();
    if stats_lines.is_empty() {
        evidence.push("no statistics line (with min, max, avg or loss) in the output".into());
    }
    evidence.extend(stats_lines.into_iter().take(MAX_EVIDENCE));
    evidence.extend(problems.iter().skip(1).cloned());
    Verdict::fail(problems[0].clone()).with_evidence(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_format_problems_are_specific() {
        assert_eq!(format_problem(b"Ping 1 1700000000.5", 1, 1), None);
        assert_eq!(
            format_problem(b"ping 2 Sat Nov 21 10:52:14 2026", 2, 1),
            None
        );
        assert_eq!(format_problem(b"Ping 1 1795258545857", 1, 1), None);
        assert!(
            format_problem(b"Ping 0 1700000000.5", 1, 1)
                .unwrap()
                .contains("sequence number 0; expected 1")
        );
        assert!(
            format_problem(b"Ping 1 time", 1, 1)
                .unwrap()
                .contains("`time` as its time")
        );
        assert!(
            format_problem(b"test", 1, 1)
                .unwrap()
                .contains("three fields")
        );
        assert!(
            format_problem(b"Pong 1 2", 1, 1)
                .unwrap()
                .contains("instead of `Ping`")
        );
        assert!(
            format_problem(b"\xff\xfe", 1, 1)
                .unwrap()
                .contains("not text")
        );
    }

    #[test]
    fn rtt_problems_name_the_mistake() {
        let hold = Duration::from_millis(87);
        let tol = Duration::from_millis(100);
        let v = |raw: f64, secs: f64, named: bool| Value {
            raw,
            secs,
            unit_named: named,
        };
        assert_eq!(rtt_problem(&v(0.0875, 0.0875, false), hold, tol), None);
        assert_eq!(rtt_problem(&v(87.5, 0.0875, true), hold, tol), None);
        assert!(
            rtt_problem(&v(87.5, 87.5, false), hold, tol)
                .unwrap()
                .contains("milliseconds")
        );
        assert!(
            rtt_problem(&v(0.0, 0.0, false), hold, tol)
                .unwrap()
                .contains("truncated")
        );
        assert!(
            rtt_problem(&v(0.5, 0.5, false), hold, tol)
                .unwrap()
                .contains("more than")
        );
        assert!(
            rtt_problem(&v(0.01, 0.01, false), hold, tol)
                .unwrap()
                .contains("less than")
        );
    }
}
