//! Reading a pinger client's output the way an instructor would.
//!
//! Real submissions print in many shapes: `RTT: 0.000163`, `RTT = 0.419 ms`,
//! a bare `0.0871`, `b'PING 1 …'`, `Ping 3: Request timed out.`. This module
//! turns each stdout line into an [`Obs`]ervation — the reply of ping N, a
//! timeout, an RTT value with its unit, or a statistics line — which the
//! pinger checks then line up with what the server saw.

use std::sync::LazyLock;

use regex::Regex;

use crate::trace::Ping;

/// Time unit of a printed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Seconds (the default when the line names no unit).
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
}

impl Unit {
    fn to_secs(self, v: f64) -> f64 {
        match self {
            Unit::Seconds => v,
            Unit::Millis => v / 1e3,
            Unit::Micros => v / 1e6,
        }
    }
}

/// A number printed with its unit, converted to seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// The value in seconds.
    pub secs: f64,
    /// The number as printed.
    pub raw: f64,
    /// Whether the line named its unit.
    pub unit_named: bool,
}

/// What one output line says.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// It shows the reply to the ping with this server index.
    Reply(u32),
    /// It reports a timeout.
    Timeout,
    /// It reports an RTT.
    Rtt(Value),
}

/// One classified line.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// 1-based line number in stdout.
    pub number: usize,
    /// The text.
    pub text: &'a str,
    /// What it says, in order of appearance.
    pub obs: Vec<Obs>,
    /// Whether it is a statistics line (min/max/avg/loss), not a per-ping line.
    pub stats: bool,
}

static IP_PORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?|\blocalhost(:\d+)?").unwrap()
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*(ms|msec|millisec\w*|us|µs|microsec\w*|s|sec|secs|seconds?)?\b").unwrap()
});
static RTT_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)rtt|round[\s_-]*trip|\btime\b|elapsed|took|delay|latency").unwrap()
});
static MS_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\d\s*ms\b|\bms\b|millisec").unwrap());
static STATS_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(min|max|avg|average|mean|minimum|maximum|loss|lost|rate|statistics|summary)\b",
    )
    .unwrap()
});
static BARE_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^[\s:=(\[]*-?\d+(\.\d+)?(e[-+]?\d+)?\s*(ms|msec|s|sec|secs|seconds?)?[\s)\].]*$",
    )
    .unwrap()
});

/// The default pattern of a timeout line: "Request timed out", any case and punctuation.
pub const DEFAULT_TIMEOUT_PATTERN: &str = r"(?i)request[\s_-]*timed?[\s_-]*out";

/// Parses a number with its unit from `text` after position `from`.
fn value_at(text: &str, from: usize, line_names_ms: bool) -> Option<Value> {
    let caps = NUMBER.captures(&text[from..])?;
    let raw: f64 = caps.get(1)?.as_str().parse().ok()?;
    let (unit, named) = match caps.get(2).map(|m| m.as_str().to_ascii_lowercase()) {
        Some(u) if u.starts_with("ms") || u.starts_with("msec") || u.starts_with("milli") => {
            (Unit::Millis, true)
        }
        Some(u) if u == "us" || u == "µs" || u.starts_with("micro") => (Unit::Micros, true),
        Some(_) => (Unit::Seconds, true),
        None if line_names_ms => (Unit::Millis, true),
        None => (Unit::Seconds, false),
    };
    Some(Value {
        secs: unit.to_secs(raw),
        raw,
        unit_named: named,
    })
}

/// Finds the value after a keyword match, or the last number of the line.
fn rtt_value(text: &str) -> Option<Value> {
    let cleaned = IP_PORT.replace_all(text, " ");
    let names_ms = MS_WORD.is_match(&cleaned);
    if let Some(m) = RTT_WORD.find(&cleaned)
        && let Some(v) = value_at(&cleaned, m.end(), names_ms)
    {
        return Some(v);
    }
    if BARE_VALUE.is_match(&cleaned) {
        return value_at(&cleaned, 0, names_ms);
    }
    None
}

/// Reply text of a ping as a student would print it (decoded, trimmed).
pub fn reply_text(p: &Ping) -> Option<String> {
    let (_, data) = p.reply.as_ref()?;
    let t = String::from_utf8_lossy(data).trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Classifies every stdout line against the pings the server answered.
pub fn classify<'a>(lines: &[&'a str], pings: &[Ping], timeout: &Regex) -> Vec<Line<'a>> {
    let replies: Vec<(u32, String)> = pings
        .iter()
        .filter_map(|p| Some((p.index, reply_text(p)?)))
        .collect();
    let mut next_reply = 0usize;
    let mut out = Vec::with_capacity(lines.len());
    for (i, text) in lines.iter().enumerate() {
        let mut obs = Vec::new();
        let mut rest = text.to_string();
        // Replies are matched in order: a reply printed twice counts once.
        while let Some((index, reply)) = replies.get(next_reply) {
            match rest.find(reply.as_str()) {
                Some(pos) => {
                    obs.push(Obs::Reply(*index));
                    rest.replace_range(pos..pos + reply.len(), " ");
                    next_reply += 1;
                }
                None => break,
            }
        }
        // A reply printed out of order (after a timeout mixed them up) still counts as shown.
        if obs.is_empty()
            && let Some(k) = replies[next_reply.min(replies.len())..]
                .iter()
                .position(|(_, r)| rest.contains(r.as_str()))
        {
            let (index, reply) = &replies[next_reply + k];
            obs.push(Obs::Reply(*index));
            rest = rest.replace(reply.as_str(), " ");
            next_reply += k + 1;
        }
        let stats = STATS_WORD.is_match(&rest) && !timeout.is_match(&rest);
        if timeout.is_match(&rest) {
            obs.push(Obs::Timeout);
        } else if !stats && let Some(v) = rtt_value(&rest) {
            obs.push(Obs::Rtt(v));
        }
        out.push(Line {
            number: i + 1,
            text,
            obs,
            stats,
        });
    }
    out
}

/// The RTT printed for each ping index: the first RTT after its reply and
/// before the next reply or timeout; or, when no reply is printed at all,
/// the k-th RTT line for the k-th answered ping.
pub fn rtts_by_ping<'a>(
    lines: &'a [Line<'a>],
    answered: &[u32],
) -> Vec<(u32, Option<(&'a Line<'a>, Value)>)> {
    let any_reply = lines
        .iter()
        .any(|l| l.obs.iter().any(|o| matches!(o, Obs::Reply(_))));
    let mut found: Vec<(u32, Option<(&Line, Value)>)> =
        answered.iter().map(|i| (*i, None)).collect();
    if any_reply {
        let mut current: Option<u32> = None;
        for line in lines {
            for o in &line.obs {
                match o {
                    Obs::Reply(i) => current = Some(*i),
                    Obs::Timeout => current = None,
                    Obs::Rtt(v) => {
                        if let Some(i) = current.take()
                            && let Some(slot) = found.iter_mut().find(|(idx, _)| *idx == i)
                        {
                            slot.1 = Some((line, v.clone()));
                        }
                    }
                }
            }
        }
    } else {
        let rtts = lines.iter().flat_map(|l| {
            l.obs.iter().filter_map(move |o| match o {
                Obs::Rtt(v) => Some((l, v.clone())),
                _ => None,
            })
        });
        for (slot, rtt) in found.iter_mut().zip(rtts) {
            slot.1 = Some(rtt);
        }
    }
    found
}

/// Statistics a stats line reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Minimum RTT.
    pub min: Option<Value>,
    /// Maximum RTT.
    pub max: Option<Value>,
    /// Average RTT.
    pub avg: Option<Value>,
    /// Loss rate in percent.
    pub loss_percent: Option<f64>,
}

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b((?:min|avg|max|mdev|average)(?:/(?:min|avg|max|mdev|average))+)\b[^\d]*((?:-?\d+(?:\.\d+)?/)+-?\d+(?:\.\d+)?)").unwrap()
});
static MIN_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bmin(imum)?\b").unwrap());
static MAX_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\bmax(imum)?\b").unwrap());
static AVG_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(avg|average|mean)\b").unwrap());
static LOSS_WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)\b(loss|lost)\b").unwrap());
static PERCENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(-?\d+(?:\.\d+)?)\s*(%)?").unwrap());

/// Reads min/max/avg RTT and the loss rate from the statistics lines.
pub fn stats(lines: &[Line<'_>]) -> Stats {
    let mut s = Stats::default();
    for line in lines.iter().filter(|l| l.stats) {
        let text = IP_PORT.replace_all(line.text, " ");
        let names_ms = MS_WORD.is_match(&text);
        if let Some(c) = COMBINED.captures(&text) {
            let names: Vec<String> = c[1].split('/').map(|n| n.to_ascii_lowercase()).collect();
            let unit_tail = &text[c.get(2).map(|m| m.end()).unwrap_or(0)..];
            for (name, num) in names.iter().zip(c[2].split('/')) {
                let Some(v) = value_at(
                    &format!("{num}{}", &unit_tail[..unit_tail.len().min(8)]),
                    0,
                    names_ms,
                ) else {
                    continue;
                };
                match name.as_str() {
                    "min" => s.min = s.min.take().or(Some(v)),
                    "max" => s.max = s.max.take().or(Some(v)),
                    "avg" | "average" => s.avg = s.avg.take().or(Some(v)),
                    _ => {}
                }
            }
        }
        let after = |re: &Regex| {
            re.find(&text)
                .and_then(|m| value_at(&text, m.end(), names_ms))
        };
        if s.min.is_none() {
            s.min = after(&MIN_WORD);
        }
        if s.max.is_none() {
            s.max = after(&MAX_WORD);
        }
        if s.avg.is_none() {
            s.avg = after(&AVG_WORD);
        }
        if s.loss_percent.is_none()
            && let Some(m) = LOSS_WORD.find(&text)
            && let Some(c) = PERCENT.captures(&text[m.end()..])
            && let Ok(v) = c[1].parse::<f64>()
        {
            s.loss_percent = Some(if c.get(2).is_some() || v > 1.0 {
                v
            } else {
                v * 100.0
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ping(index: u32, reply: Option<&str>) -> Ping {
        Ping {
            index,
            at: Duration::ZERO,
            data: vec![],
            dropped: reply.is_none(),
            reply: reply.map(|r| (Duration::from_millis(50), r.as_bytes().to_vec())),
        }
    }

    fn timeout() -> Regex {
        Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap()
    }

    #[test]
    fn rtt_values_in_the_shapes_students_print() {
        let v = rtt_value("RTT: 0.000163").unwrap();
        assert_eq!((v.secs, v.unit_named), (0.000163, false));
        let v = rtt_value("Reply from 127.0.0.1:   RTT = 0.419 ms").unwrap();
        assert!((v.secs - 0.000419).abs() < 1e-12 && v.unit_named);
        let v = rtt_value("0.0871").unwrap();
        assert_eq!(v.secs, 0.0871);
        let v = rtt_value("Round trip time: 87.1 milliseconds").unwrap();
        assert!((v.secs - 0.0871).abs() < 1e-12);
        let v = rtt_value("RTT: 0 seconds").unwrap();
        assert_eq!(v.secs, 0.0);
        let v = rtt_value("rtt=1.5e-02s").unwrap();
        assert!((v.secs - 0.015).abs() < 1e-12);
        assert_eq!(rtt_value("Sending ping to localhost:12000"), None);
        assert_eq!(rtt_value("hello world"), None);
    }

    #[test]
    fn lines_are_attributed_to_pings() {
        let pings = vec![
            ping(1, Some("PING 1 17.5")),
            ping(2, None),
            ping(3, Some("PING 3 19.25")),
        ];
        let out = [
            "b'PING 1 17.5'",
            "RTT: 0.05 s",
            "Ping 2: Request timed out.",
            "Reply: PING 3 19.25 RTT = 51 ms",
        ];
        let lines = classify(&out, &pings, &timeout());
        assert_eq!(lines[0].obs, vec![Obs::Reply(1)]);
        assert_eq!(lines[2].obs, vec![Obs::Timeout]);
        assert_eq!(lines[3].obs[0], Obs::Reply(3));
        let rtts = rtts_by_ping(&lines, &[1, 3]);
        assert_eq!(rtts[0].1.as_ref().unwrap().1.secs, 0.05);
        assert!((rtts[1].1.as_ref().unwrap().1.secs - 0.051).abs() < 1e-12);
    }

    #[test]
    fn without_printed_replies_rtts_are_taken_in_order() {
        let pings = vec![ping(1, Some("PING 1 A")), ping(2, Some("PING 2 B"))];
        let lines = classify(
            &["RTT 0.1", "Request timed out", "RTT 0.2"],
            &pings,
            &timeout(),
        );
        let rtts = rtts_by_ping(&lines, &[1, 2]);
        assert_eq!(rtts[1].1.as_ref().unwrap().1.secs, 0.2);
    }

    #[test]
    fn statistics_lines() {
        let lines = classify(
            &[
                "Min RTT: 0.041 s",
                "Max RTT: 0.199 s",
                "Avg RTT: 0.102 s",
                "Packet loss: 30.0%",
            ],
            &[],
            &timeout(),
        );
        let s = stats(&lines);
        assert_eq!(s.min.unwrap().secs, 0.041);
        assert_eq!(s.max.unwrap().secs, 0.199);
        assert_eq!(s.avg.unwrap().secs, 0.102);
        assert_eq!(s.loss_percent, Some(30.0));

        let lines = classify(
            &["rtt min/avg/max = 41.0/102.5/199.0 ms, loss rate 0.3"],
            &[],
            &timeout(),
        );
        let s = stats(&lines);
        assert!((s.min.unwrap().secs - 0.041).abs() < 1e-12);
        assert!((s.avg.unwrap().secs - 0.1025).abs() < 1e-12);
        assert_eq!(s.loss_percent, Some(30.0));
    }
}
