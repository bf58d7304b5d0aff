//! What the run's own timeline allows a printed RTT to be.
//!
//! Every bound comes from server-side timestamps in the trace. A sequential
//! client (send, wait for the reply or the timeout, print, next) can only have
//! timed ping k between
//!
//! - the moment it could start timing: no earlier than the previous reply left
//!   the server (it had to receive that reply first), or the program's start
//!   for the first ping; and
//! - the moment it had to stop: no later than ping k+1 reached the server (it
//!   sends the next ping after timing this one), or the program's end.
//!
//! That window is a hard bound: a value above it is not the RTT of this ping.
//! The floor is what the server held the ping: no RTT can be shorter.
//!
//! The window is loose when the program idles between pings (a pause, a
//! timeout), and an RTT that includes such a pause must still fail. So a
//! value is also expected to be at most `tolerance` above the hold, plus what
//! the run's load explains: twice the median time the server's own replies
//! left later than scheduled (a busy machine wakes the client late just as
//! it wakes the server, once when it sends and once when it receives). A value
//! above that but inside the window is [`Fit::Long`]: one such value is a
//! hiccup of a busy machine; most of a run's values that long are the
//! program's own doing (a sleep or other work inside the timed section).

use std::collections::HashMap;
use std::time::Duration;

use crate::checks::output::Value;
use crate::trace::{EventKind, Ping, Trace};

/// How far below the server-side hold a value may be (clock granularity).
pub(super) const SLACK: f64 = 0.005;
/// The most a value's printed precision widens its range: `0.1 s` is not
/// precise enough for RTTs of 40–200 ms, `0.09 s` is.
pub(super) const MAX_STEP: f64 = 0.010;
/// Values this large are clock readings (seconds since 1970), not durations.
const EPOCH_LIKE: f64 = 1e8;
/// The client is delayed twice by a busy machine: sending and receiving.
const LOAD_FACTOR: f64 = 2.0;

/// One answered ping on the server's timeline, in seconds since the run started.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Span {
    /// Server index.
    pub index: u32,
    /// How long the server held it: the floor of its RTT.
    pub hold: f64,
    /// When the reply left the server.
    pub reply_at: f64,
    /// When the program could have started timing it, and what that moment is.
    pub begin: (f64, &'static str),
    /// When the program must have stopped timing it, and what that moment is.
    pub end: Option<(f64, &'static str)>,
    /// The first ping's arrival, for a later ping.
    pub first_at: Option<f64>,
}

impl Span {
    /// Whether the reply left before the program moved on (sent its next
    /// ping, or ended): only then could it have seen the reply and timed it.
    pub fn in_time(&self) -> bool {
        self.end.is_none_or(|(end, _)| self.reply_at <= end)
    }

    /// The longest interval the program can have timed.
    fn window(&self) -> Option<f64> {
        self.end.map(|(end, _)| end - self.begin.0)
    }
}

/// The run's timeline: every answered ping and how busy the machine was.
#[derive(Clone, Debug)]
pub(super) struct Timeline {
    /// Answered pings, in order.
    pub spans: Vec<Span>,
    /// How much later than scheduled the server's replies typically left (the median).
    pub late: f64,
    /// The allowance above the hold: tolerance plus what the load explains.
    pub allowance: f64,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Timeline {
    /// The timeline of `pings` (server `server`'s, in arrival order) in `trace`.
    pub fn new(trace: &Trace, server: &str, pings: &[Ping], tolerance: Duration) -> Self {
        let delays: HashMap<u32, Duration> = trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Delayed {
                    server: s,
                    index,
                    delay,
                } if s == server => Some((*index, *delay)),
                _ => None,
            })
            .collect();
        let mut lateness: Vec<Duration> = pings
            .iter()
            .filter_map(|p| Some(p.hold()?.saturating_sub(*delays.get(&p.index)?)))
            .collect();
        lateness.sort_unstable();
        // The median: one reply held up by a hiccup says little about the run.
        let late = lateness.get(lateness.len() / 2).map_or(0.0, |d| secs(*d));
        let started = trace.started().map_or(0.0, secs);
        let exit = trace.exit().map(|(at, _)| secs(at));
        let first_at = pings.first().map(|p| secs(p.at));
        let spans = pings
            .iter()
            .enumerate()
            .filter_map(|(pos, p)| {
                let (reply_at, _) = p.reply.as_ref()?;
                let begin = pings[..pos]
                    .iter()
                    .filter_map(|q| q.reply.as_ref().map(|(d, _)| *d))
                    .filter(|d| *d <= p.at)
                    .max()
                    .map(|d| (secs(d), "the previous reply left the server"))
                    .filter(|(d, _)| *d >= started)
                    .unwrap_or((started, "the program started"));
                let end = match pings.get(pos + 1) {
                    Some(next) => Some((secs(next.at), "the next ping reached the server")),
                    None => exit.map(|e| (e, "the program ended")),
                };
                Some(Span {
                    index: p.index,
                    hold: secs(p.hold()?),
                    reply_at: secs(*reply_at),
                    begin,
                    end,
                    first_at: first_at.filter(|_| pos > 0),
                })
            })
            .collect();
        Timeline {
            spans,
            late,
            allowance: secs(tolerance) + LOAD_FACTOR * late,
        }
    }

    /// The answered pings whose reply left in time for the program to see it.
    pub fn in_time(&self) -> impl Iterator<Item = &Span> {
        self.spans.iter().filter(|s| s.in_time())
    }

    /// What the RTT printed for one ping may be.
    pub fn ping(&self, s: &Span) -> Expect {
        let window = s.window().zip(s.end).map(|(w, (end, to))| {
            (
                w,
                format!(
                    "between the moment {} ({:.3} s) and the moment {to} ({end:.3} s)",
                    s.begin.1, s.begin.0
                ),
            )
        });
        Expect {
            floor: s.hold,
            window,
            cap: s.hold + self.allowance,
            late: self.late,
            since_first: s.first_at.map(|f| s.reply_at - f),
            held: "the server held the ping",
        }
    }

    /// What a summary figure over the in-time pings may be: `pick` chooses
    /// among the per-ping values (min, max or mean). A minimum or mean
    /// reflects the typical RTT, so it keeps to the allowance above the holds
    /// ([`Bound::Allowance`]); a maximum may be the one hiccup of a busy
    /// machine, so it only keeps to the timeline ([`Bound::Window`]).
    pub fn summary(
        &self,
        pick: fn(&[f64]) -> f64,
        bound: Bound,
        held: &'static str,
    ) -> Option<Expect> {
        let spans: Vec<&Span> = self.in_time().collect();
        if spans.is_empty() {
            return None;
        }
        let holds: Vec<f64> = spans.iter().map(|s| s.hold).collect();
        let caps: Vec<f64> = holds.iter().map(|h| h + self.allowance).collect();
        let windows: Option<Vec<f64>> = spans.iter().map(|s| s.window()).collect();
        let cap = match (bound, &windows) {
            (Bound::Window, Some(_)) => f64::INFINITY,
            _ => pick(&caps),
        };
        Some(Expect {
            floor: pick(&holds),
            window: windows.map(|w| {
                (
                    pick(&w),
                    "for it on the run's timeline (each ping timed at most from the previous reply leaving the server to the next ping reaching it)".into(),
                )
            }),
            cap,
            late: self.late,
            since_first: None,
            held,
        })
    }
}

/// Which upper bound a summary figure keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Bound {
    /// The holds plus the allowance (and the timeline).
    Allowance,
    /// The timeline only.
    Window,
}

/// The smallest of `v`.
pub(super) fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// The largest of `v`.
pub(super) fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The mean of `v`.
pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// What a printed RTT (or summary figure) may be.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Expect {
    /// What the server held the ping: no RTT can be shorter.
    pub floor: f64,
    /// The longest the timeline allows, and the words for that interval.
    pub window: Option<(f64, String)>,
    /// The most the hold plus the tolerance and the run's load explain.
    pub cap: f64,
    /// How late the server's replies typically left (the median).
    pub late: f64,
    /// For a ping after the first: from the first ping's arrival to this reply.
    pub since_first: Option<f64>,
    /// What the floor is, in words: "the server held the ping".
    pub held: &'static str,
}

impl Expect {
    /// The accepted range for a value printed with precision `step`.
    pub fn range(&self, step: f64) -> (f64, f64) {
        let step = step.min(MAX_STEP);
        let hi = match &self.window {
            Some((w, _)) => (w + SLACK).min(self.cap),
            None => self.cap,
        };
        (self.floor - SLACK - step, hi + step)
    }

    /// Whether a value of `secs` printed with precision `step` is in range.
    pub fn accepts(&self, secs: f64, step: f64) -> bool {
        let (lo, hi) = self.range(step);
        (lo..=hi).contains(&secs)
    }
}

/// How a printed value compares with what the timeline allows.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Fit {
    /// Within the range.
    Ok,
    /// Longer than the hold plus the allowance, though the timeline allows
    /// it: why. Once, a hiccup; in most of a run's values, a mistake.
    Long(String),
    /// Impossible or mismeasured: why.
    Wrong(String),
}

/// How `v` fits what `e` allows.
pub(super) fn judge(v: &Value, e: &Expect) -> Fit {
    if e.accepts(v.secs, v.step) {
        return Fit::Ok;
    }
    let h = e.floor;
    if v.raw < 0.0 {
        return Fit::Wrong(format!(
            "is negative ({}): subtract the time taken before sendto from the time taken after recvfrom, not the other way round",
            v.raw
        ));
    }
    if v.raw >= EPOCH_LIKE {
        return Fit::Wrong(format!(
            "is {}, a clock reading (seconds since 1970), not a duration: print the difference between the time after recvfrom and the time before sendto",
            v.raw
        ));
    }
    if !v.unit_named && e.accepts(v.raw / 1e3, v.step / 1e3) {
        return Fit::Wrong(format!(
            "reads as {} s, but the true RTT is {h:.3} s: it looks like milliseconds; print seconds, or write \"ms\" after the number",
            v.raw
        ));
    }
    let (lo, _) = e.range(v.step);
    if v.secs < lo {
        return Fit::Wrong(too_small(v, h));
    }
    too_large(v, e)
}

/// Why `v` is not an acceptable value under `e`, if it is not (a long value counts).
pub(super) fn problem(v: &Value, e: &Expect) -> Option<String> {
    match judge(v, e) {
        Fit::Ok => None,
        Fit::Long(why) | Fit::Wrong(why) => Some(why),
    }
}

fn too_small(v: &Value, h: f64) -> String {
    if v.raw == 0.0 && v.whole {
        format!(
            "is 0, but the true RTT is {h:.3} s: the value was truncated to a whole number (e.g. `%d` or int()); print it with decimals"
        )
    } else if v.step > MAX_STEP {
        format!(
            "is {} s, printed too coarsely for a true RTT of {h:.3} s: print at least 3 decimals of seconds (or milliseconds with \"ms\")",
            v.raw
        )
    } else if v.raw == 0.0 {
        format!(
            "is 0, but the server alone held the ping {h:.3} s: the two time stamps are the same; take one just before sendto and one just after recvfrom"
        )
    } else {
        format!(
            "is {:.6} s, less than the {h:.3} s the server held the ping: measure from just before sendto to just after recvfrom",
            v.secs
        )
    }
}

fn too_large(v: &Value, e: &Expect) -> Fit {
    let h = e.floor;
    if let Some((w, between)) = &e.window
        && v.secs > w + SLACK + v.step.min(MAX_STEP)
    {
        if let Some(since) = e.since_first
            && v.secs + SLACK >= since
        {
            return Fit::Wrong(format!(
                "is {:.3} s, as long as the whole run up to this reply ({since:.3} s since the first ping arrived): the start time seems to be taken once, before the loop; take it again just before each sendto",
                v.secs
            ));
        }
        return Fit::Wrong(format!(
            "is {:.3} s, but only {w:.3} s passed {between}: no RTT can be that long; take the start time just before sendto and the end time just after recvfrom",
            v.secs
        ));
    }
    Fit::Long(format!(
        "is {:.3} s, {:.3} s more than {} ({h:.3} s), while the reference server's own replies left a median {:.0} ms behind schedule, so at most {:.3} s more is explained: the extra time was spent inside the program between its two time stamps (a sleep, or other work, between the start time and sendto or between recvfrom and the end time?)",
        v.secs,
        v.secs - h,
        e.held,
        e.late * 1e3,
        e.cap - h
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Ev, trace};
    use super::*;

    fn value(secs: f64, step: f64) -> Value {
        Value {
            secs,
            raw: secs,
            unit_named: false,
            step,
            whole: false,
        }
    }

    fn timeline(script: &[(u64, Ev)], tolerance_ms: u64) -> Timeline {
        let t = trace(script);
        Timeline::new(
            &t,
            "pinger",
            &t.pings("pinger"),
            Duration::from_millis(tolerance_ms),
        )
    }

    use Ev::*;

    #[test]
    fn windows_run_from_the_previous_reply_to_the_next_ping() {
        let t = timeline(
            &[
                (0, Start),
                (50, In(1)),
                (50, Delay(1, 100)),
                (150, Out(1)),
                (160, In(2)),
                (160, Drop(2)),
                (1170, In(3)),
                (1170, Delay(3, 80)),
                (1250, Out(3)),
                (1260, Exit),
            ],
            100,
        );
        assert_eq!(t.spans.len(), 2);
        let (a, b) = (&t.spans[0], &t.spans[1]);
        assert_eq!(a.begin.0, 0.0);
        assert_eq!(a.end.unwrap().0, 0.16);
        assert!((a.window().unwrap() - 0.16).abs() < 1e-9);
        // After the lost ping 2, ping 3 could be timed from reply 1 on.
        assert_eq!(b.begin.0, 0.15);
        assert_eq!(b.end.unwrap().0, 1.26);
        assert_eq!(t.late, 0.0);
        assert!((t.allowance - 0.1).abs() < 1e-9);
    }

    #[test]
    fn one_late_reply_does_not_widen_the_allowance() {
        let t = timeline(
            &[
                (0, Start),
                (10, In(1)),
                (10, Delay(1, 100)),
                (400, Out(1)),
                (410, In(2)),
                (410, Delay(2, 100)),
                (512, Out(2)),
                (520, In(3)),
                (520, Delay(3, 100)),
                (621, Out(3)),
                (700, Exit),
            ],
            100,
        );
        assert!((t.late - 0.002).abs() < 1e-9, "{}", t.late);
    }

    #[test]
    fn a_busy_server_widens_the_allowance() {
        // Scheduled 100 ms, left after 350 ms: the machine was 250 ms behind.
        let t = timeline(
            &[
                (0, Start),
                (10, In(1)),
                (10, Delay(1, 100)),
                (360, Out(1)),
                (2000, Exit),
            ],
            100,
        );
        assert!((t.late - 0.25).abs() < 1e-9);
        assert!((t.allowance - 0.6).abs() < 1e-9);
    }

    #[test]
    fn a_reply_after_the_program_moved_on_is_not_expected_to_be_timed() {
        let t = timeline(
            &[
                (0, Start),
                (10, In(1)),
                (10, Delay(1, 100)),
                (1010, In(2)),
                (1060, Out(1)),
                (1060, Delay(2, 40)),
                (1100, Out(2)),
                (1200, Exit),
            ],
            100,
        );
        let timed: Vec<u32> = t.in_time().map(|s| s.index).collect();
        assert_eq!(timed, [2]);
        // Reply 1 left after ping 2 arrived: ping 2 may be timed from the start.
        assert_eq!(t.spans[1].begin.0, 0.0);
    }

    fn expect(floor: f64, window: Option<f64>, cap: f64) -> Expect {
        Expect {
            floor,
            window: window.map(|w| (w, "between two moments".into())),
            cap,
            late: 0.0,
            since_first: Some(2.0),
            held: "the server held the ping",
        }
    }

    #[test]
    fn the_range_is_the_hold_to_the_tighter_of_window_and_cap() {
        let e = expect(0.087, Some(0.120), 0.187);
        assert_eq!(problem(&value(0.0875, 1e-4), &e), None);
        assert_eq!(problem(&value(0.083, 1e-3), &e), None);
        // 0.09 printed with two decimals may stand for 0.087.
        assert_eq!(problem(&value(0.08, 0.01), &e), None);
        let m = problem(&value(0.15, 1e-3), &e).unwrap();
        assert!(m.contains("only 0.120 s passed between two moments"), "{m}");
        let m = problem(&value(0.01, 1e-3), &e).unwrap();
        assert!(m.contains("less than the 0.087 s"), "{m}");
        // A wide window leaves the cap.
        let e = expect(0.087, Some(1.2), 0.187);
        let m = problem(&value(1.087, 1e-3), &e).unwrap();
        assert!(m.contains("1.000 s more than the server held"), "{m}");
        assert!(m.contains("a sleep"), "{m}");
        // No window: the cap alone.
        let e = expect(0.087, None, 0.187);
        assert_eq!(problem(&value(0.18, 1e-3), &e), None);
        assert!(problem(&value(0.2, 1e-3), &e).is_some());
    }

    #[test]
    fn mistakes_are_named() {
        let e = expect(0.087, Some(0.2), 0.187);
        let named = |raw: f64, secs: f64, unit_named: bool, step: f64, whole: bool| {
            problem(
                &Value {
                    secs,
                    raw,
                    unit_named,
                    step,
                    whole,
                },
                &e,
            )
            .unwrap()
        };
        assert!(named(87.5, 87.5, false, 0.1, false).contains("milliseconds"));
        assert!(named(0.0, 0.0, true, 1.0, true).contains("truncated"));
        assert!(named(0.0, 0.0, false, 1e-6, false).contains("time stamps are the same"));
        assert!(named(-0.087, -0.087, false, 1e-3, false).contains("negative"));
        assert!(named(1795258519.7, 1795258519.7, false, 0.1, false).contains("clock reading"));
        assert!(named(0.0, 0.0, false, 0.1, false).contains("coarsely"));
        // As long as the whole run so far: timed from the start.
        assert!(named(2.1, 2.1, false, 1e-3, false).contains("taken once, before the loop"));
    }
}
