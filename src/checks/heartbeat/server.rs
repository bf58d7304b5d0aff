//! The `udp-heartbeat-server` checks: netgrade's heartbeat client
//! ([`crate::probes::heartbeat`]) sends `<seq> <timestamp>` to the
//! student's server, loses some, backdates each timestamp by a seeded
//! one-way delay, falls silent, and then a second client starts.
//!
//! Every check reads the server's output against that timeline:
//! `reports-lost` the sequence numbers named on lines that speak of a loss,
//! `one-way-delay` the duration printed for each heartbeat (paired by the
//! number the line names, else in order), `detects-stop` when a line first
//! says the client stopped, `keeps-running` whether the server outlived the
//! first client and went on to the second. The server's own clock is the
//! machine's, so a printed delay is bounded below by the true one and above
//! by when netgrade read the line: a server that ran late is never charged
//! for it.

use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::checks::output::{self, Value};
use crate::checks::{Ctx, Verdict, quote, secs};
use crate::outcome::ExitKind;
use crate::spec::{CheckSpec, HeartbeatProbeSpec};
use crate::trace::{EventKind, Stream};

/// A line that says heartbeats were lost.
static LOSS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\blost\b|\bloss\b|\bmissing\b|\bmiss(ed)?\b|\bdropped\b|\bskipped\b|\bnot (been )?(received|arrived?)\b|\bgap\b").unwrap()
});
/// A line that says the client stopped.
static STOP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(stopp?ed|stops|dead|died|is down|went down|gone|disconnected|inactive|offline|terminated|not (responding|alive|active)|no longer (alive|active|sending|running)|lost (contact|connection)|has ended|shut ?down|has quit|quit)\b|client\b[^\n]{0,40}\btimed?[\s_-]?out\b").unwrap()
});
/// A word that says the number after it is a delay.
static DELAY_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)delay|latency|one[\s_-]?way|took|transit|elapsed|\btime\b|diff").unwrap()
});
/// An integer standing alone, perhaps the start of a range `8-9`, `8 to 9`.
static SEQ: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(\d+)(?:\s*(?:-|–|\bto\b|\.\.|through)\s*(\d+))?").unwrap());
/// What follows a number that is not a sequence number: a unit, a count.
static NOT_SEQ_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(ms\b|msec|s\b|sec|seconds?\b|%|heartbeats\b|packets\b|pings\b|messages\b|datagrams\b|times\b|in a row\b|consecutive\b|total\b)").unwrap()
});

/// How far a printed delay may stray beyond what the run's timeline allows
/// (float printing, the two clock reads on either side), by default.
const DEFAULT_TOLERANCE: Duration = Duration::from_millis(20);
/// The earliest a stop may be reported after the last heartbeat, by default.
const DEFAULT_MIN_WAIT: Duration = Duration::from_millis(2500);
/// The latest, by default.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(5);

/// One heartbeat of the probe, as sent (or lost).
#[derive(Clone, Debug)]
struct Beat {
    at: Duration,
    client: u8,
    seq: u32,
    delay: Duration,
    lost: bool,
}

/// One line the server printed on stdout.
#[derive(Clone, Debug)]
struct Printed<'a> {
    at: Duration,
    number: usize,
    text: &'a str,
}

impl Printed<'_> {
    fn shown(&self) -> String {
        format!("line {} {}", self.number, quote(self.text.as_bytes()))
    }
}

/// The probe's record: its heartbeats and the server's output.
struct Run<'a> {
    spec: &'a HeartbeatProbeSpec,
    beats: Vec<Beat>,
    lines: Vec<Printed<'a>>,
}

impl<'a> Run<'a> {
    /// The heartbeat probe the check names (`probe`), else the lab's first;
    /// `Err` with the verdict when it never ran.
    fn of(spec: &CheckSpec, ctx: &Ctx<'a>, owner: bool) -> Result<Run<'a>, Verdict> {
        let probe = ctx
            .lab
            .probes
            .iter()
            .find(|p| {
                p.heartbeat.is_some() && spec.probe.as_deref().is_none_or(|id| id == p.id.value)
            })
            .ok_or_else(|| Verdict::skip("not judged: the lab sends no heartbeats"))?;
        let name = probe.id.value.as_str();
        let beats: Vec<Beat> = ctx
            .trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Heartbeat {
                    probe,
                    client,
                    seq,
                    delay,
                    lost,
                    ..
                } if probe == name => Some(Beat {
                    at: e.at,
                    client: *client,
                    seq: *seq,
                    delay: *delay,
                    lost: *lost,
                }),
                _ => None,
            })
            .collect();
        if !beats.iter().any(|b| !b.lost) {
            return Err(match (owner, never_served(ctx)) {
                (true, Some(why)) => Verdict::fail(why),
                (true, None) => Verdict::fail("no heartbeat was sent: the server ended first"),
                (false, _) => Verdict::skip(
                    "not judged: no heartbeat reached the server (see `keeps-running`)",
                ),
            });
        }
        let lines = ctx
            .trace
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Output {
                    stream: Stream::Stdout,
                    line,
                } => Some((e.at, line.as_str())),
                _ => None,
            })
            .enumerate()
            .map(|(i, (at, text))| Printed {
                at,
                number: i + 1,
                text,
            })
            .collect();
        let spec = probe.heartbeat.as_ref().expect("a heartbeat probe");
        Ok(Run { spec, beats, lines })
    }

    /// The first client's heartbeats.
    fn first(&self) -> impl Iterator<Item = &Beat> {
        self.beats.iter().filter(|b| b.client == 1)
    }

    /// When the first client's last heartbeat left.
    fn last_of_first(&self) -> Duration {
        self.first()
            .filter(|b| !b.lost)
            .map(|b| b.at)
            .last()
            .unwrap_or_default()
    }

    /// When the second client started; the end of the record when it never did.
    fn second_started(&self) -> Duration {
        self.beats
            .iter()
            .find(|b| b.client == 2)
            .map_or(Duration::MAX, |b| b.at)
    }

    /// Lines printed while the first client was sending or silent.
    fn before_second(&self) -> impl Iterator<Item = &Printed<'a>> {
        let until = self.second_started();
        self.lines.iter().filter(move |l| l.at < until)
    }

    /// Whether the output came all at once at the end: stdout the program
    /// kept in a buffer until it was stopped.
    fn buffered(&self) -> bool {
        let (Some(first), Some(last)) = (self.lines.first(), self.lines.last()) else {
            return false;
        };
        self.lines.len() >= 3
            && last.at.saturating_sub(first.at) < Duration::from_millis(50)
            && first.at > self.last_of_first()
    }

    /// The longest wait between two heartbeats of the first client, and the
    /// lost ones in it.
    fn longest_gap(&self) -> (Duration, Vec<u32>) {
        let sent: Vec<&Beat> = self.first().filter(|b| !b.lost).collect();
        sent.windows(2)
            .map(|w| {
                let lost = (w[0].seq + 1..w[1].seq).collect();
                (w[1].at.saturating_sub(w[0].at), lost)
            })
            .max_by_key(|(gap, _)| *gap)
            .unwrap_or_default()
    }
}

/// Why the server was never sent a heartbeat, when it never bound a port.
fn never_served(ctx: &Ctx) -> Option<String> {
    ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::NotListening { waited, exited } => Some(format!(
            "the server did not bind a UDP port within {}{}: netgrade sends its heartbeats as UDP datagrams to the port it is given, so bind a SOCK_DGRAM socket (`serverSocket.bind((\"\", port))`) and loop on recvfrom",
            secs(*waited),
            if *exited { " (it had exited)" } else { "" }
        )),
        _ => None,
    })
}

/// The sequence numbers a loss line names: integers standing alone, ranges
/// expanded; not durations, percentages, counts or clock readings.
fn named_seqs(text: &str) -> Vec<u32> {
    let text = output::without_addresses(text);
    let mut out = Vec::new();
    for c in SEQ.captures_iter(&text) {
        let m = c.get(0).expect("match");
        let before = text[..m.start()].chars().next_back();
        let after = &text[m.end()..];
        if before.is_some_and(|b| b.is_alphanumeric() || b == '.' || b == '_')
            || after.starts_with(|a: char| a.is_alphanumeric() || a == '.' || a == '_')
            || NOT_SEQ_AFTER.is_match(after)
        {
            continue;
        }
        let Ok(a) = c[1].parse::<u32>() else { continue };
        let b = c.get(2).and_then(|b| b.as_str().parse::<u32>().ok());
        match b {
            Some(b) if b > a && b - a < 1000 => out.extend(a..=b),
            Some(b) => out.extend([a, b]),
            None => out.push(a),
        }
    }
    out
}

/// Whether `line` speaks of lost heartbeats (and not of the client stopping).
fn is_loss(line: &str) -> bool {
    LOSS.is_match(line) && !STOP.is_match(line)
}

/// `reports-lost`: every lost sequence number of the first client is named
/// on a line that speaks of a loss, and no heartbeat that arrived is.
pub fn reports_lost(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let run = match Run::of(spec, ctx, false) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let lost: Vec<u32> = run.first().filter(|b| b.lost).map(|b| b.seq).collect();
    if lost.is_empty() {
        return Verdict::skip("not judged: the lab loses no heartbeat");
    }
    let received: Vec<u32> = run.first().filter(|b| !b.lost).map(|b| b.seq).collect();
    let loss_lines: Vec<&Printed> = run.before_second().filter(|l| is_loss(l.text)).collect();
    let evidence: Vec<String> = loss_lines.iter().take(8).map(|l| l.shown()).collect();
    let named: Vec<u32> = loss_lines.iter().flat_map(|l| named_seqs(l.text)).collect();
    let missing: Vec<u32> = lost
        .iter()
        .copied()
        .filter(|s| !named.contains(s))
        .collect();
    let wrongly: Vec<u32> = named
        .iter()
        .copied()
        .filter(|s| received.contains(s))
        .collect();
    let lost_text = list(&lost);
    if loss_lines.is_empty() {
        return Verdict::fail(format!(
            "heartbeats {lost_text} never arrived, and the server printed nothing about a loss: when heartbeat n arrives after m, print that m+1 to n-1 were lost (e.g. `Heartbeat 4 lost`)"
        ))
        .with_evidence(last_printed(&run));
    }
    if !missing.is_empty() {
        return Verdict::fail(format!(
            "heartbeats {lost_text} never arrived, but the server's loss lines do not name {}: print the sequence numbers that were lost, not only how many",
            list(&missing)
        ))
        .with_evidence(evidence);
    }
    if let Some(first) = wrongly.first() {
        return Verdict::fail(format!(
            "heartbeat {first} arrived, but a loss line names it (the lost ones were {lost_text}): when n arrives after m, the lost ones are m+1 to n-1"
        ))
        .with_evidence(evidence);
    }
    Verdict::pass().with_evidence(evidence)
}

/// `1, 4 and 9`.
fn list(seqs: &[u32]) -> String {
    let words: Vec<String> = seqs.iter().map(u32::to_string).collect();
    match words.as_slice() {
        [] => "none".into(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The server's last few lines, or that it printed none.
fn last_printed(run: &Run) -> Vec<String> {
    if run.lines.is_empty() {
        return vec!["the server printed nothing on stdout".into()];
    }
    let from = run.lines.len().saturating_sub(5);
    run.lines[from..].iter().map(Printed::shown).collect()
}

/// `Heartbeat 3`, `beat #3`, `HB 3`: the heartbeat a line is about.
static BEAT_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:heart)?beat\s*(?:no\.?|num(?:ber)?)?\s*#?\s*[:=]?\s*(\d+)\b(?:\s*[:,)\]-])?|\bhb\s*#?\s*(\d+)\b").unwrap()
});

/// The delays a line may state, and the heartbeat it names.
fn stated(text: &str) -> (Vec<Value>, Option<u32>) {
    let mut label = None;
    let text = BEAT_LABEL.replace_all(text, |c: &regex::Captures| {
        label = label.or_else(|| c.get(1).or(c.get(2)).and_then(|n| n.as_str().parse().ok()));
        " "
    });
    let (values, other) = output::durations(&text);
    let label = label.or(other);
    let worded = DELAY_WORD.is_match(&text);
    let values = values
        .into_iter()
        .filter(|v| worded || v.unit_named || !v.whole)
        .collect();
    (values, label)
}

/// Whether `v` states `truth`: at least the true delay (the timestamp is
/// that old when it leaves), at most what it was when netgrade read the
/// line, each side widened by `slack` and half the printed precision. A
/// value printed more coarsely than the delay itself (`0 s` for 183 ms)
/// states nothing. A value without a unit may be seconds or milliseconds.
fn states(v: &Value, (low, high): (Duration, Duration), slack: Duration) -> bool {
    let (low, high) = (low.as_secs_f64(), high.as_secs_f64());
    let fits = |x: f64, step: f64| {
        step < low
            && x >= low - slack.as_secs_f64() - step / 2.0
            && x <= high + slack.as_secs_f64() + step / 2.0
    };
    fits(v.secs, v.step) || (!v.unit_named && fits(v.raw / 1e3, v.step / 1e3))
}

/// `one-way-delay`: a delay is printed for each heartbeat of the first
/// client that arrived, and each one is its true one-way delay (the
/// seeded backdating) within the tolerance and what the timeline allows.
pub fn one_way_delay(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let run = match Run::of(spec, ctx, false) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let slack = spec.tolerance.map_or(DEFAULT_TOLERANCE, |d| d.get());
    let beats: Vec<&Beat> = run.first().filter(|b| !b.lost).collect();
    let lines: Vec<(&Printed, Vec<Value>, Option<u32>)> = run
        .before_second()
        .filter(|l| !is_loss(l.text) && !STOP.is_match(l.text))
        .filter_map(|l| {
            let (values, label) = stated(l.text);
            (!values.is_empty()).then_some((l, values, label))
        })
        .collect();
    if lines.is_empty() {
        return Verdict::fail(format!(
            "the server printed no delay for any of the {} heartbeats that arrived: print `now - timestamp` for each, e.g. `Heartbeat 3: one-way delay 0.1234 s`",
            beats.len()
        ))
        .with_evidence(last_printed(&run));
    }
    let mut evidence = Vec::new();
    let mut j = 0;
    for (line, values, label) in &lines {
        if let Some(k) = label.and_then(|n| beats.iter().position(|b| b.seq == n))
            && k >= j
        {
            j = k;
        }
        let Some(beat) = beats.get(j) else { break };
        let late = line.at.saturating_sub(beat.at);
        let bounds = (beat.delay, beat.delay + late);
        if !values.iter().any(|v| states(v, bounds, slack)) {
            let truth = beat.delay.as_secs_f64();
            let nearest = values
                .iter()
                .min_by(|a, b| (a.secs - truth).abs().total_cmp(&(b.secs - truth).abs()))
                .expect("a value");
            return Verdict::fail(format!(
                "heartbeat {} left with a timestamp {} old (its one-way delay), but {} says {}: compute `time.time() - float(timestamp)` as soon as it arrives, and print it in seconds with a few decimals, or in ms",
                beat.seq,
                secs(beat.delay),
                line.shown(),
                said(nearest)
            ))
            .with_evidence(evidence);
        }
        evidence.push(format!(
            "heartbeat {}: delay {} — {}",
            beat.seq,
            secs(beat.delay),
            line.shown()
        ));
        j += 1;
    }
    if j < beats.len() {
        let unmatched: Vec<u32> = beats[j..].iter().map(|b| b.seq).collect();
        return Verdict::fail(format!(
            "no delay was printed for heartbeat{} {}: print one line with the delay for every heartbeat that arrives",
            if unmatched.len() > 1 { "s" } else { "" },
            list(&unmatched)
        ))
        .with_evidence(evidence);
    }
    Verdict::pass().with_evidence(evidence)
}

/// A printed value for people: `0 s (whole seconds)`, `0.5 s`, `183 (no
/// unit: read as seconds or ms)`.
fn said(v: &Value) -> String {
    let coarse = if v.whole { " (whole seconds)" } else { "" };
    if v.unit_named {
        format!("{} s{coarse}", v.secs)
    } else {
        format!("{} (no unit: read as seconds, or as ms){coarse}", v.raw)
    }
}

/// `detects-stop`: after the first client's last heartbeat, a line says it
/// stopped, no sooner than `min_wait` and no later than `max_wait`; no such
/// line while it was sending.
pub fn detects_stop(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let run = match Run::of(spec, ctx, false) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let (min, max) = (
        spec.min_wait.map_or(DEFAULT_MIN_WAIT, |d| d.get()),
        spec.max_wait.map_or(DEFAULT_MAX_WAIT, |d| d.get()),
    );
    let last = run.last_of_first();
    let stops: Vec<&Printed> = run.lines.iter().filter(|l| STOP.is_match(l.text)).collect();
    if run.buffered() {
        return Verdict::fail(format!(
            "all {} lines of the server's output reached netgrade at once, after the heartbeats: its stdout is block-buffered, so when it said the client stopped cannot be told; flush after each line (`print(..., flush=True)`, `fflush(stdout)`, `System.out.flush()`)",
            run.lines.len()
        ));
    }
    if let Some(early) = stops.iter().find(|l| l.at < last) {
        let (gap, lost) = run.longest_gap();
        return Verdict::fail(format!(
            "{} says the client stopped at {}, while it was still sending (a heartbeat every {}; the longest wait was {}, heartbeat{} {} lost): decide it stopped only after the silence the lab names ({})",
            early.shown(),
            secs(early.at.saturating_sub(run.beats[0].at)),
            secs(run.spec.interval.get()),
            secs(gap),
            if lost.len() == 1 { "" } else { "s" },
            list(&lost),
            window(min, max)
        ));
    }
    let said = stops.iter().find(|l| l.at < run.second_started());
    match said {
        Some(l) if l.at.saturating_sub(last) < min => Verdict::fail(format!(
            "{} says the client stopped {} after its last heartbeat; the lab waits {} of silence before deciding",
            l.shown(),
            secs(l.at.saturating_sub(last)),
            secs(min)
        )),
        Some(l) if l.at.saturating_sub(last) > max => Verdict::fail(format!(
            "{} says the client stopped, but {} after its last heartbeat; the lab asks within {}: use a receive timeout (`settimeout`) of the silence you wait for",
            l.shown(),
            secs(l.at.saturating_sub(last)),
            secs(max)
        )),
        Some(l) => Verdict::pass().with_evidence(vec![format!(
            "{} after the last heartbeat: {}",
            secs(l.at.saturating_sub(last)),
            l.shown()
        )]),
        None => {
            let later = stops.first().map(|l| {
                format!(
                    "; it said so only when the next client's heartbeat came ({}): a server that waits in recvfrom without a timeout cannot tell",
                    l.shown()
                )
            });
            Verdict::fail(format!(
                "after the client's last heartbeat the server said nothing about it stopping within {}{}: set a timeout on the socket (`serverSocket.settimeout(1)`) and, once the silence the lab names has passed ({}), print that the client stopped",
                secs(run.spec.silence.get()),
                later.unwrap_or_default(),
                window(min, max)
            ))
            .with_evidence(last_printed(&run))
        }
    }
}

/// `the report 2.500 s to 5.000 s after the last heartbeat`.
fn window(min: Duration, max: Duration) -> String {
    format!(
        "the report {} to {} after the last heartbeat",
        secs(min),
        secs(max)
    )
}

/// `keeps-running`: the server outlives the first client and serves the
/// second: it never ends during the heartbeats, and once it printed for the
/// first client it prints for the second.
pub fn keeps_running(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let run = match Run::of(spec, ctx, true) {
        Ok(r) => r,
        Err(v) => return v,
    };
    let last = run.last_of_first();
    let ended = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::ServerEnded { exit, since, .. } if *exit != ExitKind::Stopped => {
            Some((e.at, exit, *since))
        }
        _ => None,
    });
    if let Some((at, exit, since)) = ended {
        let when = if at >= last {
            format!(
                "{} after the first client's last heartbeat",
                secs(at - last)
            )
        } else {
            "while the first client was still sending".to_string()
        };
        let evidence = ctx
            .trace
            .stderr_between(since, at)
            .iter()
            .rev()
            .take(6)
            .rev()
            .map(|l| format!("stderr: {l}"))
            .collect();
        return Verdict::fail(format!(
            "the server {} {when}: a heartbeat server runs until it is stopped; after deciding a client stopped, go on waiting for the next one",
            exit.describe()
        ))
        .with_evidence(evidence);
    }
    let second = run.second_started();
    // A line for each heartbeat (not a loss, not a stop) while the first
    // client sent: then the second client's heartbeats get lines too.
    let spoke_first = run.lines.iter().any(|l| {
        l.at >= run.beats[0].at
            && l.at <= last + run.spec.interval.get()
            && !is_loss(l.text)
            && !STOP.is_match(l.text)
    });
    let spoke_second = run.lines.iter().any(|l| l.at >= second);
    if second != Duration::MAX && spoke_first && !spoke_second && !run.buffered() {
        return Verdict::fail(format!(
            "after the first client stopped, a second one sent {} heartbeats and the server printed nothing for them: once it decides a client stopped, it must go on receiving",
            run.beats.iter().filter(|b| b.client == 2).count()
        ))
        .with_evidence(last_printed(&run));
    }
    Verdict::pass()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_lines_name_sequence_numbers_not_counts_or_units() {
        assert_eq!(named_seqs("Heartbeat 4 lost"), [4]);
        assert_eq!(named_seqs("Lost 2 heartbeats: 8, 9"), [8, 9]);
        assert_eq!(named_seqs("Packets 8-9 lost"), [8, 9]);
        assert_eq!(named_seqs("missing heartbeats from 7 to 9"), [7, 8, 9]);
        assert_eq!(named_seqs("lost packet from ('127.0.0.1', 40022): 4"), [4]);
        assert_eq!(named_seqs("loss rate 25%"), Vec::<u32>::new());
        assert_eq!(named_seqs("lost after 0.5 s"), Vec::<u32>::new());
        assert!(named_seqs("Total lost: 3 packets").is_empty());
    }

    #[test]
    fn stop_lines_and_loss_lines_are_told_apart() {
        for stop in [
            "Client stopped",
            "No heartbeat for 3 seconds: the client application has stopped",
            "client is dead",
            "Client timed out",
            "Lost contact with the client",
        ] {
            assert!(STOP.is_match(stop), "{stop}");
            assert!(!is_loss(stop), "{stop}");
        }
        for loss in [
            "Heartbeat 4 lost",
            "Missing: 8 9",
            "packet 4 was not received",
        ] {
            assert!(is_loss(loss), "{loss}");
            assert!(!STOP.is_match(loss), "{loss}");
        }
        assert!(!STOP.is_match("Heartbeat 3 received, delay 0.12 s"));
    }

    #[test]
    fn printed_delays_are_read_in_their_units() {
        let truth = (Duration::from_millis(183), Duration::from_millis(185));
        let slack = DEFAULT_TOLERANCE;
        let read = |t: &str| stated(t).0;
        let ok = |t: &str| read(t).iter().any(|v| states(v, truth, slack));
        assert!(ok("Heartbeat 3: one-way delay 0.1834 s"));
        assert!(ok("seq 3 delay = 183.6 ms"));
        assert!(ok("3 1764745678.123456 0.18351"));
        assert!(ok("Delay: 183.52"), "a bare number may be ms");
        assert!(!ok("Heartbeat 3: delay 0"));
        assert!(
            !ok("Heartbeat 3, one-way delay 0 s"),
            "whole seconds say nothing"
        );
        assert_eq!(stated("Heartbeat 12: delay 0.500 s").1, Some(12));
        assert_eq!(stated("beat #12 took 183 ms").1, Some(12));
        assert!(!ok("Heartbeat 3: delay 0.5000 s"));
        assert!(!ok("Heartbeat 3: delay 183.5 s"));
        assert!(read("Heartbeat 3 received at 10:55:24").is_empty());
    }
}
