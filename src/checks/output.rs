//! Reading a pinger client's output the way an instructor would.
//!
//! Real submissions print in many shapes: `RTT: 0.000163`, `RTT = 0.419 ms`,
//! a bare `0.0871`, `the ping to 127.0.0.1 is 75.39 ms`, `Sequence 3 0.0871`,
//! `b'PING 1 …'`, `Ping 3: Request timed out.`, `30.0% packet loss`,
//! `Lost = 3 (30% loss)`. This module turns each stdout line into [`Obs`]ervations
//! — the reply of ping N, a timeout, an RTT value with its unit — or marks it a
//! statistics line; [`rtts_by_ping`] then decides which printed RTT belongs to
//! which ping, and [`stats`] reads the summary.
//!
//! Numbers that are clearly something else are never read as an RTT: addresses
//! and ports (`127.0.0.1:12000`, `('127.0.0.1', 12000)`, `port 12000`), the
//! sequence number (`Ping 3`, `seq=3`, `#3`), times of day and dates, epoch
//! timestamps, percentages.

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
    /// One unit of the last printed digit, in seconds (0.001 for `0.087`,
    /// 1 for `0`): how precisely the value was printed.
    pub step: f64,
    /// Whether it was printed as a whole number (no decimals).
    pub whole: bool,
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
    /// The ping number the line names outside any reply (`Ping 3:`, `seq=3`, `#3`).
    pub label: Option<u32>,
}

/// Addresses and ports: `127.0.0.1:12000`, `('127.0.0.1', 12000)`, `localhost`, `port 12000`.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\(\s*['"][^'"]*['"]\s*,\s*\d+\s*\)|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?|\blocalhost(:\d+)?|\bport\s*[:=]?\s*\d+"#,
    )
    .unwrap()
});
/// A duration as Python prints a `timedelta` under an hour: `0:00:00.087123`.
static TIMEDELTA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b0:(\d{2}):(\d{2})(?:\.(\d+))?\b").unwrap());
/// Times of day and dates: `10:55:24`, `10:55:24.123456`, `2026-11-21`, `21/11/2026`.
static CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\b|\b\d{4}-\d{2}-\d{2}(T[\d:.]+)?\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
        .unwrap()
});
/// A ping number: `Ping 3`, `seq=3`, `Sequence 3`, `icmp_seq=3`, `#3`, `rtt[3]`, `3:` at the start.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:ping|seq(?:uence)?|packet|pkt|icmp_seq|reply|request|message|msg)(?:[\s_-]*(?:no\.?|num(?:ber)?))?[\s_-]*#?\s*[:=]?\s*(\d+)|#\s*(\d+)|\w\[(\d+)\]|^\s*\[?(\d+)\]?[:.)]\s",
    )
    .unwrap()
});
static NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(-?\d+(?:\.(\d+))?(?:e([-+]?\d+))?)(?:\s*(ms|msec|millisec\w*|milli-sec\w*|us|µs|microsec\w*|s|sec|secs|seconds?)\b)?").unwrap()
});
/// Words that say a number is an RTT.
static RTT_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)rtt|round[\s_-]*trip").unwrap());
/// Words that say a number is a duration, perhaps an RTT.
static TIME_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\btime\b|elapsed|took|delay|latency|duration|response time").unwrap()
});
/// Words that say a number is some other duration.
static NOT_RTT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)time[\s_-]?out|sleep|waiting|interval|timestamp|clock|version|python").unwrap()
});
static MS_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\d\s*ms\b|\bms\b|milli-?sec").unwrap());
static STATS_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(min|max|avg|average|mean|minim\w*|maxim\w*|loss|lost|rate|statistics|summary)\b|packet_?loss",
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
pub const DEFAULT_TIMEOUT_PATTERN: &str = r"(?i)request[^\n]{0,30}?timed?[\s_-]*out|\bping\b[^\n]{0,30}?\btimed[\s_-]*out|^\W*timed?[\s_-]*out\W*$|\b(solicita|requisi)\w*[^\n]{0,30}?\bexpir|tiempo de espera agotado";

/// Values this large are clock readings (seconds or milliseconds since 1970), not durations.
const EPOCH_LIKE: f64 = 1e8;

/// A number found in a line.
#[derive(Clone, Debug)]
struct Num {
    start: usize,
    raw: f64,
    unit: Option<Unit>,
    /// Decimals printed, less the exponent (`1.5e-02` has 3).
    decimals: i32,
    percent: bool,
}

impl Num {
    fn value(&self, line_names_ms: bool) -> Value {
        let (unit, named) = match self.unit {
            Some(u) => (u, true),
            None if line_names_ms => (Unit::Millis, true),
            None => (Unit::Seconds, false),
        };
        Value {
            secs: unit.to_secs(self.raw),
            raw: self.raw,
            unit_named: named,
            step: unit.to_secs(10f64.powi(-self.decimals)),
            whole: self.decimals <= 0,
        }
    }

    /// Could this be an RTT without a word saying so?
    fn plausible(&self) -> bool {
        (self.unit.is_some() || self.decimals > 0) && !self.epoch_like() && !self.counter_like()
    }

    /// A number of 1000 or more with no unit is a clock reading
    /// (`perf_counter()`, `time.monotonic()`), not an RTT a line states.
    fn counter_like(&self) -> bool {
        self.unit.is_none() && self.raw.abs() >= 1000.0
    }

    fn epoch_like(&self) -> bool {
        self.raw.abs() >= EPOCH_LIKE
    }
}

fn unit_of(text: &str) -> Unit {
    let u = text.to_lowercase();
    if u.starts_with("ms") || u.starts_with("msec") || u.starts_with("milli") {
        Unit::Millis
    } else if u == "us" || u == "µs" || u.starts_with("micro") {
        Unit::Micros
    } else {
        Unit::Seconds
    }
}

/// The numbers of `text` that stand alone (not inside a word like `UDP2`).
fn numbers(text: &str) -> Vec<Num> {
    let mut out = Vec::new();
    for c in NUMBER.captures_iter(text) {
        let whole = c.get(0).expect("match");
        let before = text[..whole.start()].chars().next_back();
        if before.is_some_and(|b| b.is_alphanumeric() || b == '.' || b == '_') {
            continue;
        }
        let after = text[c.get(1).expect("number").end()..].chars().next();
        let glued = c.get(4).is_none() && after.is_some_and(|a| a.is_alphanumeric() || a == '_');
        let Ok(raw) = c[1].parse::<f64>() else {
            continue;
        };
        if glued || !raw.is_finite() {
            continue;
        }
        let decimals = c.get(2).map_or(0, |d| d.len() as i32);
        let exponent = c.get(3).and_then(|e| e.as_str().parse::<i32>().ok());
        out.push(Num {
            start: whole.start(),
            raw,
            unit: c.get(4).map(|u| unit_of(u.as_str())),
            decimals: decimals - exponent.unwrap_or(0),
            percent: after == Some('%'),
        });
    }
    out
}

/// Blanks out addresses, ports, times of day and dates, and the ping
/// number; returns the text left and the ping number, if the line names one.
fn mask(text: &str) -> (String, Option<u32>) {
    let mut s = ADDRESS.replace_all(text, " ").into_owned();
    s = TIMEDELTA
        .replace_all(&s, |c: &regex::Captures| {
            let minutes: u32 = c[1].parse().unwrap_or(0);
            let whole = minutes * 60 + c[2].parse::<u32>().unwrap_or(0);
            match c.get(3) {
                Some(frac) => format!("{whole}.{} s", frac.as_str()),
                None => format!("{whole} s"),
            }
        })
        .into_owned();
    s = CLOCK.replace_all(&s, " ").into_owned();
    let mut label = None;
    let mut cuts = Vec::new();
    for c in LABEL.captures_iter(&s) {
        let Some(n) = (1..=4).find_map(|i| c.get(i)) else {
            continue;
        };
        // `Ping 0.123 s` is a value, not ping number 0; so is `Ping: 58ms`.
        let rest = &s[n.end()..];
        if rest.starts_with('.') && rest[1..].starts_with(|d: char| d.is_ascii_digit())
            || UNIT_AHEAD.is_match(rest)
        {
            continue;
        }
        label = label.or(n.as_str().parse().ok());
        cuts.push(n.range());
    }
    for r in cuts.into_iter().rev() {
        s.replace_range(r, " ");
    }
    (s, label)
}

/// The numbers a line states that may be durations, in order, with the
/// number the line is labelled with (`Heartbeat 3:`, `seq=3`): addresses,
/// ports, times of day, dates and the label are masked first; percentages
/// and clock readings (epoch seconds or milliseconds) are left out.
pub fn durations(text: &str) -> (Vec<Value>, Option<u32>) {
    let (masked, label) = mask(text);
    let names_ms = MS_WORD.is_match(&masked);
    let values = numbers(&masked)
        .into_iter()
        .filter(|n| !n.percent && !n.epoch_like())
        .map(|n| n.value(names_ms))
        .collect();
    (values, label)
}

/// Addresses and ports (`127.0.0.1:12000`, `('127.0.0.1', 40022)`, `port
/// 12000`) blanked out of `text`.
pub fn without_addresses(text: &str) -> String {
    ADDRESS.replace_all(text, " ").into_owned()
}

/// The RTT a (masked) per-ping line reports, if any.
fn rtt_value(masked: &str) -> Option<Value> {
    let nums: Vec<Num> = numbers(masked).into_iter().filter(|n| !n.percent).collect();
    let names_ms = MS_WORD.is_match(masked);
    // After "RTT" or "round trip", the first number is the RTT, whatever it looks like.
    if let Some(m) = RTT_WORD.find(masked) {
        let after: Vec<&Num> = nums.iter().filter(|n| n.start >= m.end()).collect();
        if let Some(n) = after.iter().find(|n| !n.epoch_like()).or(after.first()) {
            return Some(n.value(names_ms));
        }
    }
    if NOT_RTT.is_match(masked) {
        return None;
    }
    if let Some(m) = TIME_WORD.find(masked)
        && let Some(n) = nums.iter().find(|n| n.start >= m.end() && n.plausible())
    {
        return Some(n.value(names_ms));
    }
    if BARE_VALUE.is_match(masked) {
        return nums
            .first()
            .filter(|n| !n.counter_like())
            .map(|n| n.value(names_ms));
    }
    // No word at all: a number with a time unit, else the last decimal number.
    let plausible: Vec<&Num> = nums.iter().filter(|n| n.plausible()).collect();
    plausible
        .iter()
        .find(|n| n.unit.is_some())
        .or(plausible.last())
        .map(|n| n.value(names_ms))
}

/// Reply text of a ping as a student would print it (decoded, trimmed).
pub fn reply_text(p: &Ping) -> Option<String> {
    let (_, data) = p.reply.as_ref()?;
    let t = String::from_utf8_lossy(data).trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// The sequence number a ping carries (`Ping 3 …` → 3), if it has one.
pub fn payload_seq(p: &Ping) -> Option<u32> {
    let text = std::str::from_utf8(&p.data).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
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
        // Colours (`\x1b[31m…\x1b[0m`) are not part of what a person reads.
        let mut rest = ANSI.replace_all(text, "").into_owned();
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
        let says_timeout = timeout.is_match(&rest)
            || (timeout.as_str() == DEFAULT_TIMEOUT_PATTERN
                && LOST_LINE.is_match(&rest)
                && !LOSS_FIGURE.is_match(&rest));
        let stats = STATS_WORD.is_match(&rest) && !says_timeout;
        let (masked, label) = mask(&rest);
        if says_timeout {
            obs.push(Obs::Timeout);
        } else if !stats && let Some(v) = rtt_value(&masked) {
            obs.push(Obs::Rtt(v));
        }
        out.push(Line {
            number: i + 1,
            text,
            obs,
            stats,
            label,
        });
    }
    out
}

/// One observation in output order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok {
    Reply(u32),
    Timeout,
    /// An RTT: the index of the observation in its line.
    Rtt(usize),
}

/// Which printed RTT belongs to which answered ping, decided as a reader
/// would, by what is unambiguous, in this order:
///
/// 1. an RTT on the same line as the one reply on that line belongs to it;
/// 2. RTT lines that name a ping number (`Ping 3: RTT …`, `seq=3`) belong to
///    the answered ping that carried that sequence number, when every such
///    number names an answered ping, each once and in order;
/// 3. otherwise an RTT belongs to the reply printed right next to it: the
///    one before it, or, when the program prints the RTT first, the one after
///    it (whichever reading pairs more lines; the handout's order on a tie);
/// 4. when no reply is printed at all, the k-th RTT belongs to the k-th
///    answered ping.
///
/// Returns every answered ping (by server index, in order) with its RTT line
/// and value, if one was found.
pub fn rtts_by_ping<'a>(
    lines: &'a [Line<'a>],
    pings: &[Ping],
) -> Vec<(u32, Option<(&'a Line<'a>, Value)>)> {
    let answered: Vec<&Ping> = pings.iter().filter(|p| p.reply.is_some()).collect();
    let toks: Vec<(usize, Tok)> = lines
        .iter()
        .enumerate()
        .flat_map(|(l, line)| {
            line.obs.iter().enumerate().map(move |(k, o)| {
                let t = match o {
                    Obs::Reply(i) => Tok::Reply(*i),
                    Obs::Timeout => Tok::Timeout,
                    Obs::Rtt(_) => Tok::Rtt(k),
                };
                (l, t)
            })
        })
        .collect();
    let mut pairing = Pairing {
        toks: &toks,
        taken: vec![false; toks.len()],
        found: answered.iter().map(|p| (p.index, None)).collect(),
    };
    pairing.same_line();
    pairing.by_label(lines, &answered);
    if toks.iter().any(|(_, t)| matches!(t, Tok::Reply(_))) {
        pairing.by_proximity();
    } else {
        pairing.by_order();
    }
    pairing
        .found
        .into_iter()
        .map(|(index, tok)| {
            let found = tok.map(|t| {
                let (l, Tok::Rtt(k)) = toks[t] else {
                    unreachable!("only RTT tokens are paired")
                };
                let Obs::Rtt(v) = &lines[l].obs[k] else {
                    unreachable!("an RTT token points at an RTT")
                };
                (&lines[l], v.clone())
            });
            (index, found)
        })
        .collect()
}

/// The state of [`rtts_by_ping`]'s matching.
struct Pairing<'t> {
    toks: &'t [(usize, Tok)],
    /// Tokens already matched (RTTs and replies).
    taken: Vec<bool>,
    /// Answered ping index → the RTT token matched to it.
    found: Vec<(u32, Option<usize>)>,
}

impl Pairing<'_> {
    fn open(&self, index: u32) -> bool {
        self.found.iter().any(|(i, t)| *i == index && t.is_none())
    }

    fn pair(&mut self, index: u32, rtt: usize, reply: Option<usize>) {
        if let Some(slot) = self.found.iter_mut().find(|(i, _)| *i == index) {
            slot.1 = Some(rtt);
        }
        self.taken[rtt] = true;
        if let Some(r) = reply {
            self.taken[r] = true;
        }
    }

    fn reply_tok(&self, index: u32) -> Option<usize> {
        self.toks.iter().position(|(_, t)| *t == Tok::Reply(index))
    }

    fn same_line(&mut self) {
        let mut start = 0;
        while start < self.toks.len() {
            let line = self.toks[start].0;
            let end = start
                + self.toks[start..]
                    .iter()
                    .take_while(|(l, _)| *l == line)
                    .count();
            let on = start..end;
            start = end;
            let replies: Vec<usize> = on
                .clone()
                .filter(|&t| matches!(self.toks[t].1, Tok::Reply(_)))
                .collect();
            let rtts: Vec<usize> = on
                .filter(|&t| matches!(self.toks[t].1, Tok::Rtt(_)))
                .collect();
            if let ([r], [v]) = (replies.as_slice(), rtts.as_slice())
                && let Tok::Reply(index) = self.toks[*r].1
                && self.open(index)
            {
                self.pair(index, *v, Some(*r));
            }
        }
    }

    fn by_label(&mut self, lines: &[Line<'_>], answered: &[&Ping]) {
        let labelled: Vec<(usize, u32)> = (0..self.toks.len())
            .filter(|&t| !self.taken[t] && matches!(self.toks[t].1, Tok::Rtt(_)))
            .filter_map(|t| Some((t, lines[self.toks[t].0].label?)))
            .collect();
        let seqs: Vec<(u32, Option<u32>)> =
            answered.iter().map(|p| (p.index, payload_seq(p))).collect();
        let mut matched = Vec::new();
        for (t, label) in &labelled {
            let mut with_seq = seqs.iter().filter(|(_, s)| *s == Some(*label));
            match (with_seq.next(), with_seq.next()) {
                (Some((index, _)), None) if self.open(*index) => matched.push((*t, *index)),
                // A number that names no answered ping (or several): the
                // program numbers its lines some other way; trust none of them.
                _ => return,
            }
        }
        if !matched.windows(2).all(|w| w[0].1 < w[1].1) {
            return;
        }
        for (t, index) in matched {
            let reply = self.reply_tok(index);
            self.pair(index, t, reply);
        }
    }

    /// The still open reply right after (or before) token `t`.
    fn neighbour(&self, t: usize, after: bool) -> Option<(u32, usize)> {
        let n = if after {
            t.checked_add(1)?
        } else {
            t.checked_sub(1)?
        };
        match self.toks.get(n)? {
            (_, Tok::Reply(i)) if !self.taken[n] && self.open(*i) => Some((*i, n)),
            _ => None,
        }
    }

    fn by_proximity(&mut self) {
        let open: Vec<usize> = (0..self.toks.len())
            .filter(|&t| !self.taken[t] && matches!(self.toks[t].1, Tok::Rtt(_)))
            .collect();
        let count = |after: bool| {
            open.iter()
                .filter(|&&t| self.neighbour(t, after).is_some())
                .count()
        };
        // `after` here means "the reply comes after the RTT".
        let rtt_first = count(true) > count(false);
        for t in open {
            if let Some((index, r)) = self.neighbour(t, rtt_first) {
                self.pair(index, t, Some(r));
            }
        }
    }

    fn by_order(&mut self) {
        let open: Vec<usize> = (0..self.toks.len())
            .filter(|&t| !self.taken[t] && matches!(self.toks[t].1, Tok::Rtt(_)))
            .collect();
        let pings: Vec<u32> = self
            .found
            .iter()
            .filter(|(_, t)| t.is_none())
            .map(|(i, _)| *i)
            .collect();
        for (index, t) in pings.into_iter().zip(open) {
            self.pair(index, t, None);
        }
    }
}

/// How a loss figure was printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LossForm {
    /// A number after "lost" with no rate word or % sign: probably a count.
    Count,
    /// A number after "loss" or "rate", taken as a percentage.
    Number,
    /// A fraction (`loss rate: 0.3`, `lost 3/10`), converted to a percentage.
    Fraction,
    /// A number with a % sign.
    Percent,
}

/// A loss rate read from the output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loss {
    /// The rate in percent.
    pub percent: f64,
    /// The number as printed.
    pub raw: f64,
    /// How it was printed.
    pub form: LossForm,
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
    /// Loss rate.
    pub loss: Option<Loss>,
}

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b((?:min|avg|max|mdev|stddev|average)(?:/(?:min|avg|max|mdev|stddev|average))+)\b[^\d]*((?:-?\d+(?:\.\d+)?/)+-?\d+(?:\.\d+)?)").unwrap()
});
/// With the default pattern, other ways a program says a ping went
/// unanswered (`Receive timed out` from Java's exception, `No response
/// received`, `packet has been lost`) …
static LOST_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(receive|read|recv|socket)\b[^\n]{0,20}?timed?[\s_-]*out|\bno (response|reply|answer)\b|\b(packet|ping|request|message|datagram)\b[^\n]{0,25}?\b(lost|dropped)\b|\btime[\s_-]?out\b[^\n]{0,12}\berror\b")
        .unwrap()
});
/// … unless the line states a loss figure (a summary: `Packets lost: 3 (30%)`).
static LOSS_FIGURE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\d\s*%|\b(lost|dropped)\s*[:=]\s*\d|\brate\b").unwrap());

/// A time unit right after a number: it is a duration, not a ping's number.
static UNIT_AHEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(ms|msec|millisec\w*|s|sec|secs|seconds?|us|µs)\b").unwrap()
});

/// A terminal escape sequence (colours, cursor moves).
static ANSI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]").unwrap());

/// `min`, `minimum` and how students misspell it (`minimun`, `minumum`).
static MIN_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bmin(i?m[iu]m|imun)?\b").unwrap());
/// `max`, `maximum` and how students misspell it (`maximun`, `maxium`).
static MAX_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bmax(i?m?[iu]m|imun)?\b").unwrap());
static AVG_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(avg|average|mean)\b").unwrap());
static LOSS_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:\b|_|packet)(loss|lost)\b").unwrap());
static RATE_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b(rate|percent\w*|ratio)\b").unwrap());
static SLASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\D{0,12}?(\d+)\s*/\s*(\d+)\b").unwrap());

/// Reads min/max/avg RTT and the loss rate from the statistics lines; when
/// a figure is printed more than once (running statistics, then a summary),
/// the last one counts, and a loss rate (a %, a fraction) counts over a bare
/// number of pings lost.
pub fn stats(lines: &[Line<'_>]) -> Stats {
    let mut s = Stats::default();
    // "Approximate round trip times in milli-seconds:" sets the unit of the lines below it.
    let mut ms_header = false;
    for line in lines {
        let (text, _) = mask(line.text);
        let names_ms = MS_WORD.is_match(&text);
        if !line.stats {
            ms_header |= names_ms && numbers(&text).is_empty();
            continue;
        }
        let names_ms = names_ms || ms_header;
        // "Avg. Ping w/ loss: 370ms" is another statistic (lost pings counted
        // in), printed besides the average RTT: it is neither.
        let figures = numbers(&text);
        if AVG_WORD.is_match(&text)
            && LOSS_WORD.is_match(&text)
            && !COMBINED.is_match(&text)
            && figures.len() == 1
            && !figures[0].percent
        {
            continue;
        }
        combined(&text, names_ms, &mut s);
        let after = |re: &Regex| {
            let m = re.find(&text)?;
            numbers(&text)
                .into_iter()
                .find(|n| n.start >= m.end() && !n.percent)
                .map(|n| n.value(names_ms))
        };
        for (re, slot) in [
            (&*MIN_WORD, &mut s.min),
            (&*MAX_WORD, &mut s.max),
            (&*AVG_WORD, &mut s.avg),
        ] {
            if !COMBINED.is_match(&text)
                && let Some(v) = after(re)
            {
                *slot = Some(v);
            }
        }
        if let Some(l) = loss(&text)
            && s.loss.is_none_or(|old| l.form >= old.form)
        {
            s.loss = Some(l);
        }
    }
    s
}

/// `rtt min/avg/max/mdev = 41.0/102.5/199.0/50.1 ms`.
fn combined(text: &str, names_ms: bool, s: &mut Stats) {
    let Some(c) = COMBINED.captures(text) else {
        return;
    };
    let names: Vec<String> = c[1].split('/').map(|n| n.to_ascii_lowercase()).collect();
    let tail = &text[c.get(2).map_or(0, |m| m.end())..];
    let unit: String = tail.chars().take(8).collect();
    for (name, num) in names.iter().zip(c[2].split('/')) {
        let Some(v) = numbers(&format!("{num}{unit}"))
            .first()
            .map(|n| n.value(names_ms))
        else {
            continue;
        };
        match name.as_str() {
            "min" => s.min = Some(v),
            "max" => s.max = Some(v),
            "avg" | "average" => s.avg = Some(v),
            _ => {}
        }
    }
}

/// The loss rate a (masked) statistics line gives, if any.
fn loss(text: &str) -> Option<Loss> {
    let words: Vec<regex::Match> = LOSS_WORD.find_iter(text).collect();
    let first = words.first()?;
    let nums = numbers(text);
    // `30.0% packet loss`, `Lost = 3 (30% loss)`: the % figure nearest a loss word.
    let distance = |n: &Num| {
        words
            .iter()
            .map(|w| n.start.abs_diff(w.start()).min(n.start.abs_diff(w.end())))
            .min()
            .unwrap_or(usize::MAX)
    };
    if let Some(n) = nums
        .iter()
        .filter(|n| n.percent)
        .min_by_key(|n| distance(n))
    {
        return Some(Loss {
            percent: n.raw,
            raw: n.raw,
            form: LossForm::Percent,
        });
    }
    let rest = &text[first.end()..];
    if let Some(c) = SLASH.captures(rest)
        && let (Ok(a), Ok(b)) = (c[1].parse::<f64>(), c[2].parse::<f64>())
        && b > 0.0
    {
        return Some(Loss {
            percent: 100.0 * a / b,
            raw: a,
            form: LossForm::Fraction,
        });
    }
    let n = nums.iter().find(|n| n.start >= first.end())?;
    let rate = first.as_str().to_ascii_lowercase().ends_with("loss") || RATE_WORD.is_match(text);
    let (percent, form) = if n.decimals > 0 && n.raw <= 1.0 {
        (n.raw * 100.0, LossForm::Fraction)
    } else if rate {
        (n.raw, LossForm::Number)
    } else {
        (n.raw, LossForm::Count)
    };
    Some(Loss {
        percent,
        raw: n.raw,
        form,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ping(index: u32, reply: Option<&str>) -> Ping {
        Ping {
            index,
            at: Duration::ZERO,
            data: format!("Ping {index} 17.5").into_bytes(),
            dropped: reply.is_none(),
            reply: reply.map(|r| (Duration::from_millis(50), r.as_bytes().to_vec())),
        }
    }

    fn timeout() -> Regex {
        Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap()
    }

    fn rtt(text: &str) -> Option<Value> {
        rtt_value(&mask(text).0)
    }

    fn secs(text: &str) -> f64 {
        rtt(text)
            .unwrap_or_else(|| panic!("no RTT in {text:?}"))
            .secs
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn rtt_values_in_the_shapes_students_print() {
        let v = rtt("RTT: 0.000163").unwrap();
        assert_eq!((v.secs, v.unit_named, v.whole), (0.000163, false, false));
        assert!(close(v.step, 1e-6));
        let v = rtt("Reply from 127.0.0.1:   RTT = 0.419 ms").unwrap();
        assert!(close(v.secs, 0.000419) && v.unit_named);
        assert_eq!(secs("0.0871"), 0.0871);
        assert!(close(secs("Round trip time: 87.1 milliseconds"), 0.0871));
        let v = rtt("RTT: 0 seconds").unwrap();
        assert_eq!((v.secs, v.whole), (0.0, true));
        let v = rtt("rtt=1.5e-02s").unwrap();
        assert!(close(v.secs, 0.015) && close(v.step, 0.001));
        assert!(close(secs("RTT: 87 ms"), 0.087));
        assert_eq!(rtt("Sending ping to localhost:12000"), None);
        assert_eq!(rtt("hello world"), None);
    }

    #[test]
    fn rtt_values_without_a_keyword() {
        assert!(close(secs("the ping to 127.0.0.1 is 75.39 ms"), 0.07539));
        assert!(close(secs("Reply from 127.0.0.1: 0.075 s"), 0.075));
        assert!(close(secs("Sequence 3 0.1234"), 0.1234));
        assert!(close(secs("#0 Ping 0.123456s"), 0.123456));
        assert!(close(secs("Ping 4: 87 ms"), 0.087));
        assert!(close(
            secs("Reply from ('127.0.0.1', 12000) in 0.087 seconds"),
            0.087
        ));
        assert!(close(secs("Ping. Round Trip Time 0.0871"), 0.0871));
        assert!(close(secs("#RECV : \"x\"  #RTT : 0.087000"), 0.087));
        assert!(close(secs("bytes=30 time=75.39 ms"), 0.07539));
        assert!(close(secs("RTT:  87123.0  µs"), 0.087123));
        // `print("RTT:", end - start)` with datetimes prints a timedelta.
        let v = rtt("RTT: 0:00:00.087123").unwrap();
        assert!(close(v.secs, 0.087123) && close(v.step, 1e-6) && v.unit_named);
        assert!(close(secs("PING 1 x 0:00:01.5"), 1.5));
    }

    #[test]
    fn numbers_that_are_something_else_are_not_rtts() {
        for text in [
            "Ping 3",
            "Sequence 3",
            "seq=3",
            "Sending to ('127.0.0.1', 12000)",
            "connecting to port 12000",
            "Sent: Ping 1 1795258519.733599",
            "Ping 1 1795258545857",
            "Ping 2 Sat Nov 21 10:55:24 2026",
            "sent at 10:55:24.123456",
            "on 2026-11-21",
            "Timeout set to 1.0 s",
            "sleeping 0.5 s between pings",
            "Loss so far: 30.0%",
            "send time: Sat Nov 21 10:55:24 2026",
            "Python 3.11",
            "Sending 10 pings of 64 bytes",
        ] {
            assert_eq!(rtt(text), None, "{text:?}");
        }
        // After "RTT", a clock reading is still the RTT the student printed.
        assert_eq!(secs("RTT: 1795258519.73"), 1795258519.73);
        assert!(close(secs("RTT for ping 3: 0.05 s"), 0.05));
        assert!(close(secs("rtt[3] = 0.05"), 0.05));
    }

    #[test]
    fn labels_name_the_ping() {
        assert_eq!(mask("Ping 3: RTT 0.05").1, Some(3));
        assert_eq!(mask("seq=4 time=75 ms").1, Some(4));
        assert_eq!(mask("#7 Ping 0.123s").1, Some(7));
        assert_eq!(mask("Ping 0.123 s").1, None);
        assert_eq!(mask("RTT: 0.087").1, None);
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
        let rtts = rtts_by_ping(&lines, &pings);
        assert_eq!(rtts[0].1.as_ref().unwrap().1.secs, 0.05);
        assert!(close(rtts[1].1.as_ref().unwrap().1.secs, 0.051));
    }

    fn paired(out: &[&str], pings: &[Ping]) -> Vec<Option<f64>> {
        let lines = classify(out, pings, &timeout());
        rtts_by_ping(&lines, pings)
            .into_iter()
            .map(|(_, f)| f.map(|(_, v)| v.secs))
            .collect()
    }

    fn three() -> Vec<Ping> {
        vec![
            ping(1, Some("PING 1 A")),
            ping(2, None),
            ping(3, Some("PING 3 C")),
            ping(4, Some("PING 4 D")),
        ]
    }

    #[test]
    fn an_rtt_printed_before_its_reply_belongs_to_that_reply() {
        let out = [
            "RTT: 0.1",
            "PING 1 A",
            "Request timed out",
            "RTT: 0.3",
            "PING 3 C",
            "RTT: 0.4",
            "PING 4 D",
        ];
        assert_eq!(paired(&out, &three()), [Some(0.1), Some(0.3), Some(0.4)]);
        // The handout's order, with no timeout in between, reads the other way.
        let out = [
            "PING 1 A", "RTT: 0.1", "PING 3 C", "RTT: 0.3", "PING 4 D", "RTT: 0.4",
        ];
        assert_eq!(paired(&out, &three()), [Some(0.1), Some(0.3), Some(0.4)]);
        // A missing RTT leaves its ping without one, not the next ping's.
        let out = ["PING 1 A", "PING 3 C", "RTT: 0.3", "PING 4 D", "RTT: 0.4"];
        assert_eq!(paired(&out, &three()), [None, Some(0.3), Some(0.4)]);
    }

    #[test]
    fn ping_numbers_on_rtt_lines_pair_when_they_agree_with_the_pings() {
        // No replies printed, and the RTT of ping 3 is missing: the numbers say which is which.
        let out = ["Ping 1 RTT: 0.1", "Ping 4 RTT: 0.4"];
        assert_eq!(paired(&out, &three()), [Some(0.1), None, Some(0.4)]);
        // Numbers from 0 name no answered ping consistently: order decides.
        let out = [
            "#0 Ping 0.1s",
            "PING 1 A",
            "#1 timed out",
            "#2 Ping 0.3s",
            "PING 3 C",
            "#3 Ping 0.4s",
            "PING 4 D",
        ];
        let pings = three();
        let lines = classify(&out, &pings, &Regex::new("timed out").unwrap());
        let got: Vec<Option<f64>> = rtts_by_ping(&lines, &pings)
            .into_iter()
            .map(|(_, f)| f.map(|(_, v)| v.secs))
            .collect();
        assert_eq!(got, [Some(0.1), Some(0.3), Some(0.4)]);
    }

    #[test]
    fn without_printed_replies_rtts_are_taken_in_order() {
        let pings = vec![ping(1, Some("PING 1 A")), ping(2, Some("PING 2 B"))];
        assert_eq!(
            paired(&["RTT 0.1", "Request timed out", "RTT 0.2"], &pings),
            [Some(0.1), Some(0.2)]
        );
        assert_eq!(
            paired(&["Sequence 1 0.1000", "Sequence 2 0.2000"], &pings),
            [Some(0.1), Some(0.2)]
        );
    }

    fn read(out: &[&str]) -> Stats {
        stats(&classify(out, &[], &timeout()))
    }

    #[test]
    fn statistics_lines() {
        let s = read(&[
            "Min RTT: 0.041 s",
            "Max RTT: 0.199 s",
            "Avg RTT: 0.102 s",
            "Packet loss: 30.0%",
        ]);
        assert_eq!(s.min.unwrap().secs, 0.041);
        assert_eq!(s.max.unwrap().secs, 0.199);
        assert_eq!(s.avg.unwrap().secs, 0.102);
        assert_eq!(s.loss.unwrap().percent, 30.0);

        let s = read(&["rtt min/avg/max = 41.0/102.5/199.0 ms, loss rate 0.3"]);
        assert!(close(s.min.unwrap().secs, 0.041));
        assert!(close(s.avg.unwrap().secs, 0.1025));
        assert!(close(s.max.unwrap().secs, 0.199));
        assert!(close(s.loss.unwrap().percent, 30.0));
    }

    #[test]
    fn loss_rates_as_people_write_them() {
        let percent = |out: &[&str]| read(out).loss.map(|l| (l.percent, l.form));
        for (text, want) in [
            (
                "10 packets transmitted, 7 received, 30.0% packet loss",
                30.0,
            ),
            (
                "Packets: Sent = 10, Received = 7, Lost = 3 (30% loss)",
                30.0,
            ),
            ("loss rate: 0.3", 30.0),
            ("Lost rate:0.300000", 30.0),
            ("Packet loss: 30.0%", 30.0),
            ("Packets lost: 3/10", 30.0),
            ("packet_loss = 30", 30.0),
        ] {
            let got = percent(&[text]).unwrap_or_else(|| panic!("{text}"));
            assert!(close(got.0, want), "{text}: {got:?}");
        }
        assert_eq!(percent(&["Packets lost: 3"]), Some((3.0, LossForm::Count)));
        // A count first, the rate in a summary later: the rate counts.
        assert_eq!(
            percent(&["Lost: 3", "Loss rate: 30%"]),
            Some((30.0, LossForm::Percent))
        );
    }

    #[test]
    fn statistics_in_windows_ping_style() {
        let s = read(&[
            "Ping statistics for 127.0.0.1:12000:",
            "    Packets: Sent = 10, Received = 7, Lost = 3 (30% loss),",
            "Approximate round trip times in milli-seconds:",
            "    Minimum = 41, Maximum = 199, Average = 102",
        ]);
        assert!(close(s.min.unwrap().secs, 0.041));
        assert!(close(s.max.unwrap().secs, 0.199));
        assert!(close(s.avg.unwrap().secs, 0.102));
        assert_eq!(s.loss.unwrap().percent, 30.0);
    }

    #[test]
    fn timeout_lines_are_found_in_their_usual_shapes_and_not_in_banners() {
        let re = Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap();
        for yes in [
            "Request timed out",
            "Request timed out.",
            "Ping 3: Request timed out",
            "Request 3 timed out",
            "request_timeout",
            "Ping 3 timed out",
            "Timed out",
            "TIMEOUT!",
            "Solicitação 3 expirada.",
            "Requisição 3 expirou",
            "Tiempo de espera agotado para ping 3",
        ] {
            assert!(re.is_match(yes), "{yes}");
        }
        for no in [
            "Timeout is 1 second",
            "Sending ping 1 with timeout 1s",
            "PING 3 1795259195.82",
            "RTT: 0.087 s",
            "Packets lost: 3",
        ] {
            assert!(!re.is_match(no), "{no}");
        }
    }

    #[test]
    fn other_ways_of_saying_a_ping_went_unanswered_count_but_summaries_do_not() {
        let re = Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap();
        let lines = [
            "Exception Caught Receive timed out",
            "Message Receive Timeout or Error",
            "No response received within the set timeout period.",
            "packet has been lost.",
            "Packets lost: 3 (30%)",
            "Packet loss rate: 30%",
            "10946.623782255",
            "Calculated Round Trip Time = 180.095 ms",
        ];
        let out = classify(&lines, &[], &re);
        let timeouts: Vec<bool> = out.iter().map(|l| l.obs.contains(&Obs::Timeout)).collect();
        assert_eq!(
            timeouts,
            [true, true, true, true, false, false, false, false]
        );
        // A clock reading is not an RTT; the labelled value is.
        assert!(out[6].obs.is_empty(), "{:?}", out[6].obs);
        assert!(matches!(out[7].obs[..], [Obs::Rtt(_)]), "{:?}", out[7].obs);
    }

    #[test]
    fn stats_with_abbreviations() {
        let s = read(&[
            "Avg. Ping: 100ms",
            "Avg. Ping w/ loss: 370ms",
            "Min. Ping: 58ms",
            "Max. Ping: 180ms",
            "Packets lost: 3 (30%)",
        ]);
        assert!(close(s.min.as_ref().unwrap().secs, 0.058), "{s:?}");
        assert!(close(s.max.as_ref().unwrap().secs, 0.18), "{s:?}");
        assert!(close(s.avg.as_ref().unwrap().secs, 0.1), "{s:?}");
    }

    #[test]
    fn coloured_lines_are_read_without_their_escapes() {
        let re = Regex::new(DEFAULT_TIMEOUT_PATTERN).unwrap();
        let lines = ["\x1b[31mREQUEST TIMED OUT\x1b[0;0m"];
        let out = classify(&lines, &[], &re);
        assert!(out[0].obs.contains(&Obs::Timeout), "{:?}", out[0].obs);
    }

    #[test]
    fn misspelt_minimum_and_maximum_are_read() {
        let s = read(&["Minimun of RTT: 0.06", "Maximun of RTT: 0.19"]);
        assert!(close(s.min.unwrap().secs, 0.06));
        assert!(close(s.max.unwrap().secs, 0.19));
    }
}
