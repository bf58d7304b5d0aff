//! Warnings about labs that load and validate, and still cannot grade fairly:
//! a pinger that, with the lab's seed, loses none of the pings the lab
//! expects (so a correct client cannot show its timeout and loses those
//! points) or all of them; a title or hint that names another number of pings
//! than the lab asks for.
//!
//! The losses are computed with the pinger's own draw ([`pinger::decide`] on
//! [`crate::servers::pinger_config`]), so the warning and the server cannot
//! disagree.

use std::sync::LazyLock;

use regex::Regex;

use super::{CheckKind, CheckSpec, Lab, ServerKind, ServerSpec};
use crate::checks::params;
use crate::servers::{pinger, pinger_config};

/// Something about a lab that costs a correct submission points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Line in the lab file (from 1; 0 when unknown).
    pub line: usize,
    /// Column in the lab file (from 1; 0 when unknown).
    pub column: usize,
    /// What is wrong, with the evidence.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl Warning {
    /// The warning for people: `path` and the line of `source` it is about,
    /// as errors are shown.
    pub fn render(&self, path: &str, source: &str, color: bool) -> String {
        super::SpecError::new(path, source, self.line, self.column, self.message.clone())
            .with_help(self.help.clone())
            .render_warning(color)
    }
}

/// Every warning about `lab`, in the order of the file.
pub fn warnings(lab: &Lab) -> Vec<Warning> {
    let mut out: Vec<Warning> = Vec::new();
    if lab.cases.is_empty() {
        pinger_losses(lab, &mut out);
        ping_numbers(lab, &mut out);
    } else {
        // Each case runs with its own settings and checks.
        for case in &lab.cases {
            let mut found = Vec::new();
            let case_lab = lab.for_case(case);
            pinger_losses(&case_lab, &mut found);
            ping_numbers(&case_lab, &mut found);
            for mut w in found {
                w.message = format!("in case `{}`: {}", case.id.value, w.message);
                out.push(w);
            }
        }
    }
    heartbeat_windows(lab, &mut out);
    out.sort_by_key(|w| (w.line, w.column));
    out
}

/// A `detects-stop` window that a correct heartbeat server cannot meet: one
/// that ends after the second client starts, or begins before the longest
/// gap of lost heartbeats is over (a server deciding at that silence would
/// call a loss a stop).
fn heartbeat_windows(lab: &Lab, out: &mut Vec<Warning>) {
    for check in checks_of(lab, &[CheckKind::DetectsStop]) {
        let Some(hb) = lab
            .probes
            .iter()
            .filter(|p| check.probe.as_deref().is_none_or(|id| id == p.id.value))
            .find_map(|p| p.heartbeat.as_ref())
        else {
            continue;
        };
        let min = check.min_wait.map_or(2.5, |d| d.get().as_secs_f64());
        let max = check.max_wait.map_or(5.0, |d| d.get().as_secs_f64());
        let silence = hb.silence.get().as_secs_f64();
        let every = hb.interval.get().as_secs_f64();
        let mut lost: Vec<u32> = hb.lost.clone();
        lost.sort_unstable();
        lost.dedup();
        let run = lost
            .iter()
            .map(|&s| (0..).take_while(|k| lost.contains(&(s + k))).count())
            .max()
            .unwrap_or(0);
        let gap = every * (run as f64 + 1.0);
        let (line, column) = (
            check.id.referenced.line() as usize,
            check.id.referenced.column() as usize,
        );
        if max >= silence {
            out.push(Warning {
                line,
                column,
                message: format!(
                    "`{}` accepts a stop reported up to {max} s after the last heartbeat, but the second client starts {silence} s after it",
                    check.id.value
                ),
                help: format!("make `max_wait` shorter than the probe's `silence` ({silence} s), or the silence longer"),
            });
        }
        if gap >= min {
            out.push(Warning {
                line,
                column,
                message: format!(
                    "`{}` wants the stop reported {min} s after the last heartbeat at the earliest, but lost heartbeats leave a gap of {gap} s while the client is still sending: a server that decides at {min} s calls that loss a stop",
                    check.id.value
                ),
                help: "lose fewer heartbeats in a row, or make `min_wait` longer than the longest gap".into(),
            });
        }
    }
}

/// Seeds tried for a suggestion.
const SEEDS_TRIED: u64 = 10_000;

/// `[3, 6, 7]`.
fn list(pings: &[u32]) -> String {
    let shown: Vec<String> = pings.iter().map(u32::to_string).collect();
    format!("[{}]", shown.join(", "))
}

/// `pings 2 and 5`, `ping 3`, `pings 1, 2 and 4`.
fn pings_text(pings: &[u32]) -> String {
    match pings {
        [] => "no ping".into(),
        [one] => format!("ping {one}"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u32::to_string).collect();
            format!("pings {} and {last}", init.join(", "))
        }
    }
}

/// `` `waits-for-timeout` and `reports-timeouts` (3 points) ``.
fn checks_text(checks: &[&CheckSpec]) -> String {
    let ids: Vec<String> = checks.iter().map(|c| format!("`{}`", c.id.value)).collect();
    let points: f64 = checks.iter().map(|c| c.points).sum();
    let ids = match ids.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    };
    let points = crate::outcome::fmt_points(points);
    let unit = if points == "1" { "point" } else { "points" };
    format!("{ids} ({points} {unit})")
}

/// The checks of `lab` of one of `kinds`.
fn checks_of<'a>(lab: &'a Lab, kinds: &[CheckKind]) -> Vec<&'a CheckSpec> {
    lab.checks
        .iter()
        .filter(|c| c.kind().is_some_and(|k| kinds.contains(&k)))
        .collect()
}

/// Which of pings 1..=`count` the pinger `server` drops with `seed`.
fn lost(server: &ServerSpec, seed: u64, count: u32) -> Vec<u32> {
    let config = pinger_config(server, seed);
    (1..=count)
        .filter(|i| pinger::decide(&config, *i).is_none())
        .collect()
}

/// `want` of `count` pings, spread out: 1 of 5 → `[3]`, 3 of 10 → `[3, 5, 8]`.
fn spread(count: u32, want: u32) -> Vec<u32> {
    (1..=want)
        .map(|i| ((f64::from(i) * f64::from(count + 1)) / f64::from(want + 1)).round() as u32)
        .map(|p| p.clamp(1, count))
        .collect()
}

/// What to change so that some of `count` pings are lost and some answered.
fn remedy(lab: &Lab, server: &ServerSpec, count: u32) -> String {
    if count < 2 {
        return "with a single ping a client cannot both lose one and get a reply: expect more pings (`count` of `ping-count`)".into();
    }
    let loss = server.loss.as_ref().map(|l| l.value).filter(|l| *l > 0.0);
    // As many losses as the rate means (the handout's 30 % without one), at least one, not all.
    let rate = loss.unwrap_or(0.3);
    let want = ((rate * f64::from(count)).round() as u32).clamp(1, count - 1);
    let drop = format!("`drop: {}`", list(&spread(count, want)));
    let seed = loss.and_then(|_| {
        (1..=SEEDS_TRIED)
            .filter(|s| *s != lab.seed)
            .map(|s| (s, lost(server, s, count)))
            .find(|(_, l)| l.len() == want as usize)
    });
    match seed {
        Some((s, l)) => format!(
            "choose another seed (e.g. `seed: {s}` drops {} of the {count}) or list the lost pings, e.g. {drop}",
            pings_text(&l)
        ),
        None => format!("list the lost pings, e.g. {drop}"),
    }
}

/// A pinger that loses none of the pings the lab expects, or all of them.
fn pinger_losses(lab: &Lab, out: &mut Vec<Warning>) {
    if !params::has_ping_checks(lab) {
        return;
    }
    // The checks read the lab's first pinger.
    let Some(server) = params::server(lab, ServerKind::UdpPinger) else {
        return;
    };
    let count = params::ping_count(lab);
    let lost = lost(server, lab.seed, count);
    let source = match (&server.drop, server.loss.as_ref().map(|l| l.value)) {
        (Some(drop), _) => format!("`drop: {}`", list(drop)),
        (None, Some(loss)) if loss > 0.0 => {
            format!("with the lab's seed {}, `loss: {loss}`", lab.seed)
        }
        _ => "a pinger with neither `drop` nor `loss`".into(),
    };
    let expected = format!(
        "the {count} ping{} the lab expects",
        if count == 1 { "" } else { "s" }
    );
    // At the losses the warning is about: `loss`, else the server's kind.
    let at = match (&server.drop, &server.loss) {
        (None, Some(loss)) => loss.referenced,
        _ => server.kind.referenced,
    };
    let (line, column) = (at.line() as usize, at.column() as usize);
    let need_loss = checks_of(
        lab,
        &[CheckKind::WaitsForTimeout, CheckKind::ReportsTimeouts],
    );
    if lost.is_empty() && !need_loss.is_empty() {
        out.push(Warning {
            line,
            column,
            message: format!(
                "server `{}`: {source} drops none of {expected}, so a correct client gets no points for {}: without a lost ping they have nothing to judge",
                server.name,
                checks_text(&need_loss)
            ),
            help: remedy(lab, server, count),
        });
    }
    let need_reply = checks_of(lab, &[CheckKind::PrintsReplies, CheckKind::ReportsRtt]);
    if lost.len() == count as usize && count > 0 && !need_reply.is_empty() {
        out.push(Warning {
            line,
            column,
            message: format!(
                "server `{}`: {source} drops every one of {expected}, so a correct client gets no points for {}: without a reply they have nothing to judge",
                server.name,
                checks_text(&need_reply)
            ),
            help: remedy(lab, server, count),
        });
    }
}

/// `range(1, 11)` in a check's text.
static RANGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)").unwrap());
/// `10 pings`, `ten times`.
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty) (pings|times)\b").unwrap()
});

/// The number `word` means (`10`, `ten`).
fn number(word: &str) -> Option<u32> {
    const WORDS: [(&str, u32); 14] = [
        ("one", 1),
        ("two", 2),
        ("three", 3),
        ("four", 4),
        ("five", 5),
        ("six", 6),
        ("seven", 7),
        ("eight", 8),
        ("nine", 9),
        ("ten", 10),
        ("eleven", 11),
        ("twelve", 12),
        ("fifteen", 15),
        ("twenty", 20),
    ];
    word.parse().ok().or_else(|| {
        WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))
            .map(|(_, n)| *n)
    })
}

/// A title or hint of a pinger lab that names another number of pings than
/// the lab expects (a lab copied from `udp-pinger` and given `count: 5`).
fn ping_numbers(lab: &Lab, out: &mut Vec<Warning>) {
    if !params::has_ping_checks(lab) {
        return;
    }
    let count = params::ping_count(lab);
    let first = params::first_seq(lab);
    let end = u64::from(first) + u64::from(count);
    for check in &lab.checks {
        let texts = [("title", Some(&check.title)), ("hint", check.hint.as_ref())];
        for (field, text) in texts {
            let Some(text) = text else { continue };
            let shown = params::expand(text, check, lab);
            let mut found = None;
            if let Some(c) = RANGE.captures(&shown) {
                let (a, b): (u64, u64) = (c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0));
                if (a, b) != (u64::from(first), end) {
                    found = Some((
                        c[0].to_string(),
                        "`range({first_seq}, {end_seq})`",
                        format!("`range({first}, {end})`"),
                    ));
                }
            }
            if found.is_none()
                && let Some(c) = AMOUNT.captures(&shown)
                && number(&c[1]).is_some_and(|n| n != count)
            {
                found = Some((
                    c[0].to_string(),
                    if c[2].eq_ignore_ascii_case("pings") {
                        "`{count} pings`"
                    } else {
                        "`{count} times`"
                    },
                    format!("`{count} {}`", &c[2]),
                ));
            }
            if let Some((said, placeholder, becomes)) = found {
                out.push(Warning {
                    line: check.id.referenced.line() as usize,
                    column: check.id.referenced.column() as usize,
                    message: format!(
                        "check `{}`: its {field} says `{said}`, but the lab expects {count} pings from {first} (`count` and `first_seq` of its ping checks)",
                        check.id.value
                    ),
                    help: format!(
                        "write {placeholder}, which netgrade fills in from the lab: {becomes}"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(seed: u64, pinger: &str, count: u32) -> Lab {
        let yaml = format!(
            "name: t\ntitle: t\nseed: {seed}\nservers:\n  - {{ name: pinger, kind: udp-pinger, port: 12000, {pinger} }}\nprogram:\n  entry: [client.py]\nchecks:\n  - {{ id: ping-count, title: \"Exactly {{count}} pings\", points: 1, count: {count}, hint: \"e.g. range({{first_seq}}, {{end_seq}})\" }}\n  - {{ id: waits-for-timeout, title: w, points: 2 }}\n  - {{ id: reports-timeouts, title: t, points: 1 }}\n  - {{ id: reports-rtt, title: r, points: 2 }}\n"
        );
        crate::spec::load_str("t.yaml", &yaml).unwrap()
    }

    /// The losses the running pinger makes, datagram by datagram.
    fn server_lost(lab: &Lab, count: u32) -> Vec<u32> {
        let config = pinger_config(&lab.servers[0], lab.seed);
        (1..=count)
            .filter(|i| pinger::decide(&config, *i).is_none())
            .collect()
    }

    #[test]
    fn a_seed_that_loses_no_ping_is_caught_with_a_seed_that_does() {
        // Find a seed whose 20 % loses none of 5 pings, as the server decides.
        let seed = (1..1000)
            .find(|s| server_lost(&lab(*s, "loss: 0.2", 5), 5).is_empty())
            .unwrap();
        let lab = lab(seed, "loss: 0.2", 5);
        let w = warnings(&lab);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains(&format!(
                "with the lab's seed {seed}, `loss: 0.2` drops none of the 5 pings the lab expects"
            )),
            "{}",
            w[0].message
        );
        assert!(
            w[0].message
                .contains("`waits-for-timeout` and `reports-timeouts` (3 points)"),
            "{}",
            w[0].message
        );
        assert_eq!(w[0].line, 5);
        // The suggested seed loses one ping when the server runs with it.
        let help = &w[0].help;
        let suggested: u64 = help
            .split("`seed: ")
            .nth(1)
            .and_then(|s| s.split('`').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{help}"));
        let lost = server_lost(&super::tests::lab(suggested, "loss: 0.2", 5), 5);
        assert_eq!(lost.len(), 1, "{help}");
        assert!(
            help.contains(&format!("drops ping {} of the 5", lost[0])),
            "{help}"
        );
        assert!(help.contains("`drop: [3]`"), "{help}");
    }

    #[test]
    fn a_stop_window_no_correct_heartbeat_server_can_meet_is_caught() {
        let lab = |probe: &str, check: &str| {
            let yaml = format!(
                "name: t\ntitle: t\nprogram:\n  role: server\n  entry: [s.py]\nprobes:\n  - {{ id: b, heartbeat: {{ {probe} }} }}\nchecks:\n  - {{ id: detects-stop, title: t, points: 1, {check} }}\n"
            );
            crate::spec::load_str("t.yaml", &yaml).unwrap()
        };
        let fine = lab("lost: [4, 8, 9]", "min_wait: 2500ms, max_wait: 5s");
        assert_eq!(warnings(&fine), vec![]);
        let late = warnings(&lab("silence: 4s", "max_wait: 5s"));
        assert_eq!(late.len(), 1, "{late:?}");
        assert!(late[0].message.contains(
            "up to 5 s after the last heartbeat, but the second client starts 4 s after it"
        ));
        let gap = warnings(&lab("lost: [3, 4, 5, 6]", "min_wait: 2s"));
        assert_eq!(gap.len(), 1, "{gap:?}");
        assert!(
            gap[0]
                .message
                .contains("leave a gap of 2.5 s while the client is still sending"),
            "{gap:?}"
        );
    }

    #[test]
    fn a_seed_that_loses_some_pings_is_fine() {
        let seed = (1..1000)
            .find(|s| server_lost(&lab(*s, "loss: 0.3", 10), 10).len() == 3)
            .unwrap();
        assert_eq!(warnings(&lab(seed, "loss: 0.3", 10)), vec![]);
        assert_eq!(warnings(&lab(1, "drop: [3, 6, 7]", 10)), vec![]);
    }

    #[test]
    fn a_schedule_past_the_last_ping_or_over_every_ping_is_caught() {
        let w = warnings(&lab(1, "drop: [6, 7]", 5));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message
                .contains("`drop: [6, 7]` drops none of the 5 pings the lab expects"),
            "{}",
            w[0].message
        );
        assert!(
            w[0].help
                .starts_with("list the lost pings, e.g. `drop: [2, 4]`"),
            "{}",
            w[0].help
        );
        let w = warnings(&lab(1, "drop: [1, 2, 3]", 3));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].message.contains("drops every one of the 3 pings")
                && w[0].message.contains("`reports-rtt` (2 points)"),
            "{}",
            w[0].message
        );
        assert!(w[0].help.contains("`drop: [2]`"), "{}", w[0].help);
    }

    #[test]
    fn a_hint_copied_from_the_ten_ping_lab_is_caught() {
        let yaml = "name: t\ntitle: t\nservers:\n  - { name: pinger, kind: udp-pinger, port: 12000, drop: [2] }\nprogram:\n  entry: [client.py]\nchecks:\n  - id: ping-count\n    title: Exactly ten pings reach the server\n    points: 1\n    count: 5\n    hint: Loop, e.g. `for seq in range(1, 11):`.\n";
        let lab = crate::spec::load_str("t.yaml", yaml).unwrap();
        let w = warnings(&lab);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].message.contains("its title says `ten pings`"), "{w:?}");
        assert!(w[0].help.contains("`{count} pings`") && w[0].help.contains("`5 pings`"));
        assert!(
            w[1].message.contains("its hint says `range(1, 11)`"),
            "{w:?}"
        );
        assert!(w[1].help.contains("`range(1, 6)`"), "{w:?}");
        let shown = w[0].render("t.yaml", yaml, false);
        assert!(shown.starts_with("warning: "), "{shown}");
        assert!(shown.contains("--> t.yaml:8:9"), "{shown}");
        assert!(shown.contains("ten pings"), "the line itself: {shown}");
    }

    #[test]
    fn the_built_in_labs_have_no_warnings() {
        for name in crate::spec::builtin_names() {
            let lab = crate::spec::load_builtin(name).unwrap().unwrap();
            assert_eq!(warnings(&lab), vec![], "{name}");
        }
    }
}
