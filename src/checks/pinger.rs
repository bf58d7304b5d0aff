//! Checks over a UDP pinger client's traffic and output.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

mod timeline;

use super::output::{self, DEFAULT_TIMEOUT_PATTERN, Line, Obs, Value};
use super::params::{self, DEFAULT_COUNT};
use super::{Ctx, Verdict, millis, quote, secs, tail};
use crate::outcome::ExitKind;
use crate::spec::{CheckSpec, Dur};
use crate::trace::{Ping, Stream, Transport};
use timeline::{Bound, Expect, Fit, Span, Timeline};

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

/// The pings, or — when none reached the server — a skip that says why:
/// with no ping there is nothing for the other checks to judge, and the
/// fault is `ping-count`'s (and `runs`' when the program crashed).
fn pings_or_skip(ctx: &Ctx, what: &str) -> Result<Vec<Ping>, Verdict> {
    pings_or_fail(ctx, what).map_err(|_| {
        Verdict::skip(format!(
            "not checked: no ping reached the server, so {what} could not be judged (see `ping-count`)"
        ))
    })
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
        let first = u64::from(params::first_seq(ctx.lab));
        message.push_str(&format!(
            ": check the bounds of your loop, e.g. `for seq in range({first}, {})`",
            first + want as u64
        ));
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
    let count = spec.count.unwrap_or_else(|| params::ping_count(ctx.lab));
    let pings = match pings_or_skip(ctx, "the ping format") {
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
            (u64::from(first_seq) + u64::from(count)).saturating_sub(1)
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
    let min = spec.min_wait.unwrap_or(params::DEFAULT_MIN_WAIT);
    let max = spec.max_wait.unwrap_or(params::DEFAULT_MAX_WAIT);
    let wanted = params::wait_wanted(min, max);
    let (min, max) = (min.get(), max.get());
    let pings = match pings_or_skip(ctx, "the waits after lost pings") {
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
                        "after ping {} was lost the program sent nothing more and was still waiting at the time limit ({}): it never gave up on the reply; set a timeout on the socket ({wanted})",
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
                "after ping {} was lost, {after} only {} later; expected {wanted} (at least {}): the socket timeout is too short",
                p.index,
                secs(gap),
                Dur(min)
            ));
            evidence.push(format!("{line}  ← too soon"));
        } else if gap > max {
            failure.get_or_insert(format!(
                "after ping {} was lost, {after} {} later; expected {wanted} (at most {}): the socket timeout is too long",
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
        None if observed == 0 && !pings.iter().any(|p| p.dropped) => Verdict::skip(format!(
            "the server lost none of the {} pings in this run, so there was no timeout to measure",
            pings.len()
        )),
        None if observed == 0 => Verdict::skip(
            "no lost ping could be observed in this run (the program sent too few pings), so there was no timeout to measure",
        ),
        None => Verdict::pass().with_evidence(evidence),
    }
}

/// Output lines classified against the pinger's traffic.
fn classified<'a>(ctx: &'a Ctx, pings: &[Ping], pattern: Option<&str>) -> (Vec<Line<'a>>, Regex) {
    let timeout = super::compiled(pattern.unwrap_or(DEFAULT_TIMEOUT_PATTERN))
        .or_else(|| super::compiled(DEFAULT_TIMEOUT_PATTERN))
        .expect("the default pattern is a regex");
    let lines = ctx.trace.lines(Stream::Stdout);
    (output::classify(&lines, pings, &timeout), timeout)
}

pub(super) fn reports_timeouts(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match pings_or_skip(ctx, "which pings were lost") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let (lines, _) = classified(ctx, &pings, spec.pattern.as_deref());
    let lost: Vec<u32> = pings
        .iter()
        .filter(|p| p.dropped)
        .map(|p| p.index)
        .collect();
    // A reply that left after the program had moved on was, for the program, lost too.
    let (name, _) = ctx.pinger().unwrap_or(("pinger", String::new()));
    let late = Timeline::new(ctx.trace, name, &pings, Duration::ZERO)
        .spans
        .iter()
        .filter(|s| !s.in_time())
        .count();
    let reported: Vec<&Line> = lines
        .iter()
        .filter(|l| l.obs.contains(&Obs::Timeout))
        .collect();
    if lost.is_empty() && late == 0 {
        return Verdict::skip("no ping was lost in this run, so there was no timeout to report");
    }
    if (lost.len()..=lost.len() + late).contains(&reported.len()) {
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
    let pings = match pings_or_skip(ctx, "the replies") {
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

/// reports-rtt and reports-stats: how far above the server-side RTT a value
/// may be, on top of what the run's load explains (see [`timeline`]).
const DEFAULT_TOLERANCE: Dur = Dur::from_millis(100);

/// The run's timeline around the pings, with the check's tolerance.
fn timeline_of(spec: &CheckSpec, ctx: &Ctx, pings: &[Ping]) -> Timeline {
    let tolerance = spec.tolerance.unwrap_or(DEFAULT_TOLERANCE).get();
    let (name, _) = ctx.pinger().unwrap_or(("pinger", String::new()));
    Timeline::new(ctx.trace, name, pings, tolerance)
}

/// `ping 4: server held it 87 ms (accepted 0.082–0.190 s)`.
fn held(span: &Span, e: &Expect) -> String {
    let (lo, hi) = e.range(0.0);
    format!(
        "ping {}: server held it {:.0} ms (accepted {:.3}–{hi:.3} s)",
        span.index,
        span.hold * 1e3,
        lo.max(0.0)
    )
}

pub(super) fn reports_rtt(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let pings = match pings_or_skip(ctx, "the round-trip times") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let timeline = timeline_of(spec, ctx, &pings);
    let timed = timeline.in_time().count();
    if timed == 0 {
        return Verdict::skip(
            "the server answered no ping in time for the program to see it, so there was no RTT to report",
        );
    }
    let (lines, _) = classified(ctx, &pings, None);
    let rtts = output::rtts_by_ping(&lines, &pings);
    let mut evidence = Vec::new();
    let mut wrong = None;
    let mut wrongs = 0;
    let mut long = Vec::new();
    for span in &timeline.spans {
        if !span.in_time() {
            evidence.push(format!(
                "ping {}: the reply left the server at {:.3} s, after {} ({:.3} s): not expected to be timed",
                span.index,
                span.reply_at,
                span.end.map_or("the program moved on", |(_, what)| what),
                span.end.map_or(0.0, |(at, _)| at)
            ));
            continue;
        }
        let e = timeline.ping(span);
        let found = rtts
            .iter()
            .find(|(i, _)| *i == span.index)
            .and_then(|(_, f)| f.as_ref());
        let Some((line, v)) = found else {
            evidence.push(format!("{}; no RTT found in the output", held(span, &e)));
            wrongs += 1;
            wrong.get_or_insert(format!(
                "no RTT was printed for ping {} (true RTT {:.3} s); print it with the reply, e.g. `RTT: 0.087 s`",
                span.index, span.hold
            ));
            continue;
        };
        let shown = format!("{}; line {}: {}", held(span, &e), line.number, line.text);
        let about = |why: &str| {
            format!(
                "the RTT printed for ping {} (line {}: {}) {why}",
                span.index,
                line.number,
                line.text.trim()
            )
        };
        match timeline::judge(v, &e) {
            Fit::Ok => evidence.push(format!("{shown} ✓")),
            Fit::Long(why) => {
                evidence.push(format!("{shown}  ← {why}"));
                long.push(about(&why));
            }
            Fit::Wrong(why) => {
                evidence.push(format!("{shown}  ← {why}"));
                wrongs += 1;
                wrong.get_or_insert(about(&why));
            }
        }
    }
    let evidence: Vec<String> = evidence.into_iter().take(MAX_EVIDENCE).collect();
    // One long RTT is a hiccup of a busy machine; most of them are the program's doing.
    let too_long = long.len() * 2 > timed;
    // Partial credit counts the pings whose RTT was right.
    let right = timed - wrongs - if too_long { long.len() } else { 0 };
    if let Some(m) = wrong {
        return Verdict::fail(m)
            .with_evidence(evidence)
            .with_share(right, timed);
    }
    if too_long {
        return Verdict::fail(format!(
            "{} of {timed} RTTs are longer than the round trip explains; the first: {}",
            long.len(),
            long[0]
        ))
        .with_evidence(evidence)
        .with_share(right, timed);
    }
    Verdict::pass()
}

/// The RTT the program printed for every ping it could time, if it printed them all.
fn printed_rtts(lines: &[Line], pings: &[Ping], timeline: &Timeline) -> Option<Vec<Value>> {
    let rtts = output::rtts_by_ping(lines, pings);
    timeline
        .in_time()
        .map(|s| {
            rtts.iter()
                .find(|(i, _)| *i == s.index)
                .and_then(|(_, f)| f.as_ref())
                .map(|(_, v)| v.clone())
        })
        .collect()
}

/// One summary figure: its name, how to pick it from per-ping values, and
/// which bound it keeps to.
struct Figure {
    name: &'static str,
    pick: fn(&[f64]) -> f64,
    bound: Bound,
    /// The matching server-side figure, in words.
    held: &'static str,
}

const FIGURES: [Figure; 3] = [
    Figure {
        name: "minimum",
        pick: timeline::min,
        bound: Bound::Allowance,
        held: "the shortest time the server held a ping",
    },
    Figure {
        name: "maximum",
        pick: timeline::max,
        bound: Bound::Window,
        held: "the longest time the server held a ping",
    },
    Figure {
        name: "average",
        pick: timeline::mean,
        bound: Bound::Allowance,
        held: "the average time the server held a ping",
    },
];

/// Whether `v` is `f` of the RTTs the program printed (to their precision).
fn agrees_with_printed(v: &Value, f: &Figure, printed: &[Value]) -> bool {
    let secs: Vec<f64> = printed.iter().map(|p| p.secs).collect();
    let finest = printed.iter().map(|p| p.step).fold(0.0, f64::max);
    let slack = timeline::SLACK + v.step.max(finest).min(timeline::MAX_STEP);
    (v.secs - (f.pick)(&secs)).abs() <= slack
}

/// What is wrong with one summary figure, if anything; or the evidence that it is right.
///
/// A figure passes when it agrees with the RTTs the program printed (a wrong
/// RTT is `reports-rtt`'s fault, not the summary's), or with the run's timeline.
fn figure_problem(
    f: &Figure,
    got: Option<&Value>,
    timeline: &Timeline,
    printed: Option<&[Value]>,
    sent: usize,
) -> Result<String, String> {
    let Some(e) = timeline.summary(f.pick, f.bound, f.held) else {
        return Err(String::new());
    };
    let name = f.name;
    let Some(v) = got else {
        return Err(format!(
            "no {name} RTT found (expected about {:.3} s)",
            e.floor
        ));
    };
    let why = timeline::problem(v, &e);
    if why.is_none() || printed.is_some_and(|p| agrees_with_printed(v, f, p)) {
        return Ok(format!(
            "{name} RTT {:.6} s; true {:.3} s ✓",
            v.secs, e.floor
        ));
    }
    let answered = timeline.in_time().count();
    if let Some(p) = printed {
        let secs: Vec<f64> = p.iter().map(|v| v.secs).collect();
        let want = (f.pick)(&secs);
        if name == "average" && sent > answered {
            let over_all = secs.iter().sum::<f64>() / sent as f64;
            if (v.secs - over_all).abs() <= timeline::SLACK + v.step.min(timeline::MAX_STEP) {
                return Err(format!(
                    "the average RTT is {:.3} s, the sum of the RTTs divided by all {sent} pings; the lost pings have no RTT: divide by the number of replies ({answered}), which gives {want:.3} s",
                    v.secs
                ));
            }
        }
        if name == "minimum" && v.raw == 0.0 && !v.whole {
            return Err(format!(
                "the minimum RTT is 0, but the shortest RTT printed is {want:.3} s: the minimum seems to start at 0, and no RTT is smaller; start it at the first RTT (or float('inf'))"
            ));
        }
        if !v.unit_named && (v.raw / 1e3 - want).abs() <= timeline::SLACK {
            return Err(format!(
                "the {name} RTT reads as {} s, but the RTTs printed give {want:.3} s: it looks like milliseconds; print seconds, or write \"ms\" after the number",
                v.raw
            ));
        }
        return Err(format!(
            "the {name} RTT is {:.6} s, but the {name} of the RTTs printed for each ping is {want:.6} s (and of the true RTTs about {:.3} s): compute it over the list of RTTs of the answered pings",
            v.secs, e.floor
        ));
    }
    let spans: Vec<&Span> = timeline.in_time().collect();
    if name == "average" && sent > answered {
        // No RTT per ping to compare with: the sum over the true RTTs, divided by every ping sent.
        let over_all = Expect {
            floor: spans.iter().map(|s| s.hold).sum::<f64>() / sent as f64,
            window: None,
            cap: spans
                .iter()
                .map(|s| s.hold + timeline.allowance)
                .sum::<f64>()
                / sent as f64,
            late: timeline.late,
            since_first: None,
            held: "the average hold",
        };
        if over_all.accepts(v.secs, v.step) {
            return Err(format!(
                "the average RTT is {:.3} s, about the sum of the true RTTs divided by all {sent} pings; the lost pings have no RTT: divide by the number of replies ({answered}), which gives about {:.3} s",
                v.secs, e.floor
            ));
        }
    }
    Err(format!("the {name} RTT {}", why.unwrap_or_default()))
}

/// What is wrong with the printed loss rate, if anything; or the evidence that it is right.
fn loss_problem(
    loss: Option<output::Loss>,
    lost: (usize, usize),
    sent: usize,
) -> Result<String, String> {
    let pct = |n: usize| 100.0 * n as f64 / sent as f64;
    let (lo, hi) = (pct(lost.0), pct(lost.1));
    let expected = if lost.0 == lost.1 {
        format!("{lo:.0}%")
    } else {
        format!("{lo:.0}–{hi:.0}%")
    };
    let lost_text = if lost.0 == lost.1 {
        lost.0.to_string()
    } else {
        format!("{}–{}", lost.0, lost.1)
    };
    let Some(l) = loss else {
        return Err(format!("no packet-loss rate found (expected {expected})"));
    };
    if l.percent >= lo - 1.0 && l.percent <= hi + 1.0 {
        return Ok(format!("loss {}%; true {expected} ✓", l.percent));
    }
    if l.form == output::LossForm::Count && (lost.0..=lost.1).contains(&(l.raw as usize)) {
        return Err(format!(
            "the output gives the number of pings lost ({}), not the loss rate: print lost / sent × 100 with a % sign ({expected})",
            l.raw
        ));
    }
    Err(format!(
        "the loss rate reads as {}%, but {lost_text} of {sent} pings were lost: {expected}; print lost / sent × 100 with a % sign",
        l.percent
    ))
}

pub(super) fn reports_stats(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let count = spec.count.unwrap_or_else(|| params::ping_count(ctx.lab));
    let pings = match pings_or_skip(ctx, "the statistics") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let timeline = timeline_of(spec, ctx, &pings);
    let (lines, _) = classified(ctx, &pings, None);
    let stats = output::stats(&lines);
    let printed = printed_rtts(&lines, &pings, &timeline);
    let sent = pings.len().max(count as usize);
    let unanswered = sent - timeline.spans.len();
    let late = timeline.spans.iter().filter(|s| !s.in_time()).count();

    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    if timeline.in_time().next().is_none() {
        evidence.push("no ping was answered, so there is no min/max/avg RTT to print".into());
    } else {
        for (f, got) in FIGURES.iter().zip([&stats.min, &stats.max, &stats.avg]) {
            match figure_problem(f, got.as_ref(), &timeline, printed.as_deref(), sent) {
                Ok(line) => evidence.push(line),
                Err(problem) => problems.push(problem),
            }
        }
    }
    match loss_problem(stats.loss, (unanswered, unanswered + late), sent) {
        Ok(line) => evidence.push(line),
        Err(problem) => problems.push(problem),
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
    use crate::outcome::{ExitKind, Status};
    use crate::trace::{Dir, Event, EventKind, Trace};

    /// A scripted trace event.
    #[derive(Clone, Debug)]
    pub(super) enum Ev {
        Start,
        In(u32),
        Delay(u32, u64),
        Drop(u32),
        Out(u32),
        Print(String),
        Exit,
    }

    /// A trace built from a script of (milliseconds since the run started, event).
    pub(super) fn trace(script: &[(u64, Ev)]) -> Trace {
        let peer = "127.0.0.1:40000".parse().unwrap();
        let datagram = |dir, index: u32, word: &str| EventKind::Datagram {
            server: "pinger".into(),
            dir,
            peer,
            index,
            data: format!("{word} {index} 1795258519.7").into_bytes(),
        };
        let mut events: Vec<Event> = script
            .iter()
            .map(|(ms, ev)| Event {
                at: Duration::from_millis(*ms),
                kind: match ev {
                    Ev::Start => EventKind::Started {
                        command: vec!["python3".into()],
                    },
                    Ev::In(i) => datagram(Dir::In, *i, "Ping"),
                    Ev::Out(i) => datagram(Dir::Out, *i, "PING"),
                    Ev::Delay(i, d) => EventKind::Delayed {
                        server: "pinger".into(),
                        index: *i,
                        delay: Duration::from_millis(*d),
                    },
                    Ev::Drop(i) => EventKind::Dropped {
                        server: "pinger".into(),
                        index: *i,
                    },
                    Ev::Print(line) => EventKind::Output {
                        stream: Stream::Stdout,
                        line: line.clone(),
                    },
                    Ev::Exit => EventKind::Exited {
                        exit: ExitKind::Exited { code: 0 },
                    },
                },
            })
            .collect();
        events.sort_by_key(|e| e.at);
        Trace { events }
    }

    /// The server's fate for each of ten pings: the hold in ms, or `None` (dropped).
    const HOLDS: [Option<u64>; 10] = [
        Some(87),
        Some(120),
        None,
        Some(64),
        Some(150),
        None,
        None,
        Some(45),
        Some(190),
        Some(101),
    ];

    /// How a scripted client behaves.
    struct Client {
        /// How much later than scheduled the server's replies leave (ms).
        late: u64,
        /// From a reply (or the end of a timeout) to the next ping's arrival (ms).
        gap: u64,
        /// The lines printed for an answered ping: (seq, hold in s, reply time in s).
        print: fn(u32, f64, f64) -> Vec<String>,
        /// Lines printed at the end: (holds of the answered pings in s).
        summary: fn(&[f64]) -> Vec<String>,
    }

    /// The trace of a client pinging ten times, starting at 0 and sending ping 1 at 50 ms.
    fn run(c: &Client) -> Trace {
        let mut script = vec![(0, Ev::Start)];
        let mut t = 50;
        let mut holds = Vec::new();
        for (seq, fate) in (1u32..).zip(HOLDS) {
            script.push((t, Ev::In(seq)));
            match fate {
                Some(hold) => {
                    let hold = hold + c.late;
                    script.push((t, Ev::Delay(seq, hold - c.late)));
                    script.push((t + hold, Ev::Out(seq)));
                    let lines = (c.print)(seq, hold as f64 / 1e3, (t + hold) as f64 / 1e3);
                    for line in lines {
                        script.push((t + hold + 1, Ev::Print(line)));
                    }
                    holds.push(hold as f64 / 1e3);
                    t += hold + c.gap;
                }
                None => {
                    script.push((t, Ev::Drop(seq)));
                    script.push((t + 1000, Ev::Print("Request timed out".into())));
                    t += 1000 + c.gap;
                }
            }
        }
        for line in (c.summary)(&holds) {
            script.push((t, Ev::Print(line)));
        }
        script.push((t + 5, Ev::Exit));
        trace(&script)
    }

    fn no_summary(_: &[f64]) -> Vec<String> {
        Vec::new()
    }

    fn correct(seq: u32, hold: f64, _: f64) -> Vec<String> {
        vec![
            format!("PING {seq} 1795258519.7"),
            format!("RTT: {:.6} s", hold + 0.0004),
        ]
    }

    fn summary(holds: &[f64]) -> Vec<String> {
        let min = holds.iter().copied().fold(f64::INFINITY, f64::min);
        let max = holds.iter().copied().fold(0.0, f64::max);
        let avg = holds.iter().sum::<f64>() / holds.len() as f64;
        vec![
            format!("Min RTT: {min:.6} s"),
            format!("Max RTT: {max:.6} s"),
            format!("Avg RTT: {avg:.6} s"),
            "Packet loss: 30.0%".into(),
        ]
    }

    /// Grades `trace` with check `id` of the udp-pinger-stats lab.
    fn grade(id: &str, trace: &Trace) -> Verdict {
        let lab = crate::spec::load_builtin("udp-pinger-stats")
            .expect("built-in lab")
            .expect("valid lab");
        let spec = lab
            .checks
            .iter()
            .find(|c| c.id.value == id)
            .expect("check in the lab");
        super::super::check(spec, &Ctx { trace, lab: &lab })
    }

    fn passes(id: &str, trace: &Trace) {
        let v = grade(id, trace);
        assert_eq!(v.status, Status::Pass, "{id}: {v:?}");
    }

    fn fails_with(id: &str, trace: &Trace, words: &str) -> Verdict {
        let v = grade(id, trace);
        assert_eq!(v.status, Status::Fail, "{id}: {v:?}");
        let m = v.message.clone().unwrap_or_default();
        assert!(m.contains(words), "{id}: {m}\n{:#?}", v.evidence);
        v
    }

    #[test]
    fn a_correct_client_passes_on_an_idle_machine() {
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: correct,
            summary,
        });
        passes("reports-rtt", &t);
        passes("reports-stats", &t);
        passes("reports-timeouts", &t);
    }

    #[test]
    fn a_correct_client_passes_on_a_heavily_loaded_machine() {
        // Replies leave 250 ms late, and the client takes 300 ms to notice a
        // reply and 400 ms to send the next ping: 300 ms above every hold.
        fn slow(seq: u32, hold: f64, _: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", hold + 0.3),
            ]
        }
        fn slow_summary(holds: &[f64]) -> Vec<String> {
            let slow: Vec<f64> = holds.iter().map(|h| h + 0.3).collect();
            summary(&slow)
        }
        let t = run(&Client {
            late: 250,
            gap: 400,
            print: slow,
            summary: slow_summary,
        });
        passes("reports-rtt", &t);
        passes("reports-stats", &t);
    }

    #[test]
    fn one_long_rtt_is_a_hiccup_most_are_a_mistake() {
        // Ping 5's RTT is 170 ms too long (the client was descheduled once).
        fn hiccup(seq: u32, hold: f64, _: f64) -> Vec<String> {
            let extra = if seq == 5 { 0.17 } else { 0.0004 };
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", hold + extra),
            ]
        }
        fn hiccups(seq: u32, hold: f64, _: f64) -> Vec<String> {
            let extra = if seq < 8 { 0.17 } else { 0.0004 };
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", hold + extra),
            ]
        }
        let client = |print| Client {
            late: 0,
            gap: 180,
            print,
            summary: no_summary,
        };
        passes("reports-rtt", &run(&client(hiccup)));
        // Four of seven: the program's doing.
        fails_with(
            "reports-rtt",
            &run(&client(hiccups)),
            "4 of 7 RTTs are longer",
        );
    }

    #[test]
    fn a_summary_that_agrees_with_the_printed_rtts_is_not_blamed_for_them() {
        // Every RTT includes a 1 s pause (reports-rtt's fault); the summary
        // computes min, max and average of those RTTs correctly.
        fn slept(seq: u32, hold: f64, _: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", hold + 1.0005),
            ]
        }
        fn slept_summary(holds: &[f64]) -> Vec<String> {
            let slept: Vec<f64> = holds.iter().map(|h| h + 1.0005).collect();
            summary(&slept)
        }
        let t = run(&Client {
            late: 2,
            gap: 1003,
            print: slept,
            summary: slept_summary,
        });
        fails_with("reports-rtt", &t, "a sleep");
        passes("reports-stats", &t);
    }

    #[test]
    fn a_summary_without_rtts_per_ping_is_held_to_the_timeline() {
        fn silent(_: u32, _: f64, _: f64) -> Vec<String> {
            Vec::new()
        }
        let client = |summary| Client {
            late: 2,
            gap: 1003,
            print: silent,
            summary,
        };
        passes("reports-stats", &run(&client(summary)));
        fn slept_summary(holds: &[f64]) -> Vec<String> {
            let slept: Vec<f64> = holds.iter().map(|h| h + 1.0005).collect();
            summary(&slept)
        }
        fails_with(
            "reports-stats",
            &run(&client(slept_summary)),
            "the minimum RTT is 1.048 s, 1.001 s more than the shortest time the server held a ping",
        );
        fn over_ten(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[2] = format!("Avg RTT: {:.6} s", holds.iter().sum::<f64>() / 10.0);
            lines
        }
        fails_with(
            "reports-stats",
            &run(&client(over_ten)),
            "about the sum of the true RTTs divided by all 10 pings",
        );
    }

    #[test]
    fn milliseconds_without_a_unit_fail() {
        fn ms(seq: u32, hold: f64, _: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.3}", hold * 1e3 + 0.4),
            ]
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: ms,
            summary: no_summary,
        });
        fails_with("reports-rtt", &t, "looks like milliseconds");
    }

    #[test]
    fn whole_seconds_fail() {
        fn whole(seq: u32, hold: f64, _: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {} seconds", hold as u64),
            ]
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: whole,
            summary: no_summary,
        });
        fails_with("reports-rtt", &t, "truncated to a whole number");
    }

    #[test]
    fn time_since_the_program_started_fails() {
        fn since_start(seq: u32, _: f64, reply_at: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", reply_at - 0.03),
            ]
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: since_start,
            summary: no_summary,
        });
        let v = fails_with("reports-rtt", &t, "taken once, before the loop");
        assert!(v.message.unwrap().contains("ping 2"));
    }

    #[test]
    fn an_rtt_that_includes_a_sleep_fails() {
        // `start = time.time(); time.sleep(1); sendto(...)`: the pings are a
        // second apart, so the timeline alone would allow it.
        fn slept(seq: u32, hold: f64, _: f64) -> Vec<String> {
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", hold + 1.0005),
            ]
        }
        let t = run(&Client {
            late: 2,
            gap: 1003,
            print: slept,
            summary: no_summary,
        });
        let v = fails_with("reports-rtt", &t, "a sleep");
        assert!(v.message.unwrap().contains("a median 2 ms behind schedule"));
    }

    #[test]
    fn the_rtt_of_another_ping_fails_when_the_timeline_rules_it_out() {
        // Each line shows the previous ping's RTT (an off-by-one in a list).
        fn previous(seq: u32, _: f64, _: f64) -> Vec<String> {
            let before = HOLDS[..seq as usize - 1].iter().rev().flatten().next();
            vec![
                format!("PING {seq} 1795258519.7"),
                format!("RTT: {:.6} s", before.map_or(0.0, |h| *h as f64 / 1e3)),
            ]
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: previous,
            summary: no_summary,
        });
        let v = grade("reports-rtt", &t);
        assert_eq!(v.status, Status::Fail, "{v:?}");
        // Ping 10 shows ping 9's 0.190 s: within the cap of its 0.101 s hold
        // (plus 100 ms), but only 0.110 s passed from reply 9 to the exit.
        let ten = v
            .evidence
            .iter()
            .find(|e| e.starts_with("ping 10:"))
            .unwrap();
        assert!(ten.contains("only 0.110 s passed"), "{ten}");
        assert!(ten.contains("the program ended"), "{ten}");
    }

    #[test]
    fn statistics_averaged_over_the_timeouts_fail() {
        fn over_ten(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[2] = format!("Avg RTT: {:.6} s", holds.iter().sum::<f64>() / 10.0);
            lines
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: correct,
            summary: over_ten,
        });
        fails_with("reports-stats", &t, "divided by all 10 pings");
    }

    #[test]
    fn a_minimum_that_starts_at_zero_fails() {
        fn from_zero(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[0] = "Min RTT: 0.000000 s".into();
            lines
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: correct,
            summary: from_zero,
        });
        fails_with("reports-stats", &t, "minimum seems to start at 0");
    }

    #[test]
    fn loss_rates_in_other_words_pass_and_counts_fail() {
        fn windows(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[3] = "    Packets: Sent = 10, Received = 7, Lost = 3 (30% loss),".into();
            lines
        }
        fn fraction(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[3] = "loss rate: 0.3".into();
            lines
        }
        fn count(holds: &[f64]) -> Vec<String> {
            let mut lines = summary(holds);
            lines[3] = "Packets lost: 3".into();
            lines
        }
        for summary in [windows, fraction] {
            let t = run(&Client {
                late: 0,
                gap: 2,
                print: correct,
                summary,
            });
            passes("reports-stats", &t);
        }
        let t = run(&Client {
            late: 0,
            gap: 2,
            print: correct,
            summary: count,
        });
        fails_with(
            "reports-stats",
            &t,
            "the number of pings lost (3), not the loss rate",
        );
    }

    #[test]
    fn a_reply_the_program_could_not_wait_for_counts_as_lost() {
        // Ping 1's reply leaves 1.1 s late, after the client gave up and sent ping 2.
        let t = trace(&[
            (0, Ev::Start),
            (50, Ev::In(1)),
            (50, Ev::Delay(1, 100)),
            (1050, Ev::Print("Request timed out".into())),
            (1052, Ev::In(2)),
            (1052, Ev::Drop(2)),
            (1150, Ev::Out(1)),
            (2052, Ev::Print("Request timed out".into())),
            (2054, Ev::In(3)),
            (2054, Ev::Delay(3, 60)),
            (2114, Ev::Out(3)),
            (2115, Ev::Print("PING 3 1795258519.7".into())),
            (2115, Ev::Print("RTT: 0.060500 s".into())),
            (2120, Ev::Exit),
        ]);
        passes("reports-timeouts", &t);
        passes("reports-rtt", &t);
    }

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
}
