//! Homework checks: each reads the student's answer to its question from
//! the answers file as recorded ([`EventKind::Answers`]) and the student's
//! variant ([`EventKind::Variant`]), and compares it with the expected
//! answer: a number with its unit (`numeric`, `expression`), an option
//! (`choice`), a text (`exact`, `regex`), members (`set`). A `manual`
//! question is pending until a person grades it.
//!
//! Messages name the answer as written and its line, what is wrong with
//! it (another unit, a factor of 1000 or 8, a wrong answer the lab knows),
//! and the expected answer only when the lab shows expected answers
//! (`show_expected`).

use super::{Ctx, Verdict};
use crate::homework::answers::Answer;
use crate::homework::quantity::{Quantity, unit};
use crate::homework::variant::{Variant, number};
use crate::homework::{self, expr::Expr, letter};
use crate::outcome::Status;
use crate::spec::{CheckSpec, Expected};
use crate::trace::EventKind;

/// What every homework check reads.
struct Sheet<'a> {
    variant: Variant,
    answers: &'a [Answer],
    file: &'a str,
    problem: Option<&'a str>,
    /// Whether the expected answer may be shown.
    show: bool,
}

impl<'a> Sheet<'a> {
    fn of(ctx: &Ctx<'a>) -> Sheet<'a> {
        let mut sheet = Sheet {
            variant: Variant {
                student: String::new(),
                values: Default::default(),
            },
            answers: &[],
            file: "",
            problem: Some("no answers file was read"),
            show: homework::show_expected(ctx.lab, std::time::SystemTime::now()),
        };
        for e in &ctx.trace.events {
            match &e.kind {
                EventKind::Variant { student, values } => {
                    sheet.variant = Variant {
                        student: student.clone(),
                        values: values.iter().cloned().collect(),
                    };
                }
                EventKind::Answers {
                    file,
                    answers,
                    problem,
                } => {
                    sheet.answers = answers;
                    sheet.file = file;
                    sheet.problem = problem.as_deref();
                }
                _ => {}
            }
        }
        sheet
    }

    /// The answer to `spec`, by its label or id; `Err` with the verdict
    /// when there is none.
    fn answer(&self, spec: &CheckSpec, ctx: &Ctx) -> Result<&'a Answer, Verdict> {
        if let Some(problem) = self.problem {
            return Err(Verdict::fail(format!(
                "{problem}: hand in an answers file (answers.yaml, or answers.md with a line `1.` per answer)"
            )));
        }
        let labels = homework::labels(ctx.lab)
            .into_iter()
            .find(|(c, _)| c.id.value == spec.id.value)
            .map(|(_, l)| l)
            .unwrap_or_default();
        let found = self.answers.iter().rev().find(|a| {
            labels
                .iter()
                .any(|l| l.eq_ignore_ascii_case(a.label.trim()))
        });
        match found {
            Some(a) if !a.text.trim().is_empty() => Ok(a),
            Some(a) => Err(Verdict::fail(format!(
                "the answer labelled `{}` (line {} of {}) is empty",
                a.label, a.line, self.file
            ))),
            None => {
                let seen: Vec<&str> = self
                    .answers
                    .iter()
                    .map(|a| a.label.as_str())
                    .take(12)
                    .collect();
                Err(Verdict::fail(format!(
                    "{} has no answer labelled `{}` (or `{}`); its labels are: {}",
                    self.file,
                    labels.first().map_or("", String::as_str),
                    spec.id.value,
                    if seen.is_empty() {
                        "none".into()
                    } else {
                        seen.join(", ")
                    }
                )))
            }
        }
    }

    /// `, the expected answer is 40 URLs` when the lab shows it.
    fn expected(&self, text: &str) -> String {
        if self.show {
            format!("; the expected answer is {text}")
        } else {
            String::new()
        }
    }
}

/// `"40 URLs" (line 3)`.
fn quoted(a: &Answer) -> String {
    let first = a.text.lines().next().unwrap_or_default();
    let shown: String = first.chars().take(80).collect();
    format!("`{shown}` (line {})", a.line)
}

/// How far `got` may be from `want`: `within` absolute (in the unit) or
/// relative (`2%`); 1% by default.
fn margin(spec: &CheckSpec, want: f64) -> f64 {
    let relative = |pct: f64| want.abs() * pct / 100.0;
    match &spec.within {
        Some(Expected::Number(n)) => n.abs(),
        Some(Expected::Text(t)) => t
            .trim()
            .strip_suffix('%')
            .and_then(|p| p.trim().parse::<f64>().ok())
            .map_or_else(|| relative(1.0), relative),
        _ => relative(1.0),
    }
}

/// `numeric` and `expression`: the answer's number, converted from its unit
/// to the question's, within the margin of the expected value.
pub fn numeric(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let want = match homework::expected_number(spec, &sheet.variant) {
        Ok(w) => w,
        Err(e) => {
            return Verdict {
                status: Status::Error,
                message: Some(format!("the lab's expected answer cannot be computed: {e}")),
                evidence: Vec::new(),
                share: None,
            };
        }
    };
    let unit_name = spec.unit.as_deref().unwrap_or("");
    let wanted_unit = unit(unit_name);
    let with_unit = |v: f64| {
        if unit_name.is_empty() {
            number(v)
        } else {
            format!("{} {unit_name}", number(v))
        }
    };
    let got = match Quantity::parse(&answer.text).and_then(|q| q.in_unit(wanted_unit)) {
        Ok(g) => g,
        Err(why) => {
            return Verdict::fail(format!(
                "the answer {}: {why}{}",
                quoted(answer),
                sheet.expected(&with_unit(want))
            ));
        }
    };
    let tolerance = margin(spec, want);
    if (got - want).abs() <= tolerance {
        return Verdict::pass().with_evidence(vec![format!(
            "{} is {}",
            quoted(answer),
            with_unit(got)
        )]);
    }
    if let Some(says) = known_mistake(spec, &sheet.variant, got, tolerance) {
        return Verdict::fail(format!(
            "the answer {} is {}: {says}",
            quoted(answer),
            with_unit(got)
        ));
    }
    let why = factor(got, want)
        .map(|f| format!(" — off by a factor of {f}"))
        .unwrap_or_default();
    Verdict::fail(format!(
        "the answer {} is {}, not the expected value{why}{}",
        quoted(answer),
        with_unit(got),
        sheet.expected(&with_unit(want))
    ))
}

/// The lab's known wrong answer `got` is, if any: what to tell the student.
fn known_mistake(spec: &CheckSpec, variant: &Variant, got: f64, tolerance: f64) -> Option<String> {
    spec.mistakes.iter().find_map(|m| {
        let value = match &m.answer {
            Expected::Number(n) => Some(*n),
            Expected::Text(t) => Expr::parse(t).ok()?.eval(&variant.numbers()).ok(),
            Expected::List(_) => None,
        }?;
        ((got - value).abs() <= tolerance.max(value.abs() * 1e-9)).then(|| variant.fill(&m.says))
    })
}

/// A telling ratio between an answer and the expected value: 1000 (ms for
/// s, kbit for Mbit), 8 (bits for bytes), 60 (minutes for seconds).
fn factor(got: f64, want: f64) -> Option<String> {
    if got == 0.0 || want == 0.0 {
        return None;
    }
    let ratio = got / want;
    [
        (1000.0, "1000: a unit (ms for s, kbit for Mbit)?"),
        (8.0, "8: bits for bytes?"),
        (60.0, "60: minutes for seconds?"),
        (3600.0, "3600: hours for seconds?"),
    ]
    .iter()
    .find(|(f, _)| ((ratio / f) - 1.0).abs() < 0.02 || ((ratio * f) - 1.0).abs() < 0.02)
    .map(|(_, what)| what.to_string())
}

/// Text compared the way people mean it: lower case, single spaces, no
/// quotes, backticks or final period.
fn normal(text: &str) -> String {
    let t = text
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '`' | '*'))
        .trim_end_matches(['.', '!'])
        .trim();
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `choice`: the option the answer names (its letter, `B`, `(b)`, `B)`, or
/// its text) is the expected one.
pub fn choice(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let options: Vec<String> = spec.options.iter().map(|o| sheet.variant.fill(o)).collect();
    let want = match &spec.expect {
        Some(Expected::Text(t)) => option_index(t, &options),
        Some(Expected::Number(n)) => Some(*n as usize).filter(|i| *i >= 1).map(|i| i - 1),
        _ => None,
    };
    let Some(want) = want else {
        return Verdict {
            status: Status::Error,
            message: Some("the lab's expected option is none of its options".into()),
            evidence: Vec::new(),
            share: None,
        };
    };
    let shown = |i: usize| {
        format!(
            "{}. {}",
            letter(i),
            options.get(i).map_or("", String::as_str)
        )
    };
    match option_index(&answer.text, &options) {
        Some(i) if i == want => Verdict::pass().with_evidence(vec![shown(i)]),
        Some(i) => Verdict::fail(format!(
            "the answer {} chooses {}{}",
            quoted(answer),
            shown(i),
            sheet.expected(&shown(want))
        )),
        None => Verdict::fail(format!(
            "the answer {} names none of the options: write its letter ({})",
            quoted(answer),
            (0..options.len())
                .map(letter)
                .map(String::from)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The option `text` names: a letter alone (`B`, `b)`, `(B)`, `B.`), or an
/// option's text.
fn option_index(text: &str, options: &[String]) -> Option<usize> {
    let t = text.trim();
    let first: String = t
        .trim_start_matches('(')
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    let after = t.trim_start_matches('(').chars().nth(first.len());
    if first.len() == 1 && after.is_none_or(|c| !c.is_alphanumeric()) {
        let i = (first.to_ascii_uppercase().as_bytes()[0] - b'A') as usize;
        if i < options.len() {
            return Some(i);
        }
    }
    let n = normal(t);
    if let Some(i) = options.iter().position(|o| normal(o) == n) {
        return Some(i);
    }
    // An option's text, then its reasons: `Yes, because Connection: Keep-Alive`.
    options
        .iter()
        .enumerate()
        .filter(|(_, o)| {
            let o = normal(o);
            !o.is_empty()
                && n.strip_prefix(o.as_str())
                    .is_some_and(|rest| rest.starts_with(|c: char| !c.is_alphanumeric()))
        })
        .max_by_key(|(_, o)| o.len())
        .map(|(i, _)| i)
}

/// `exact`: the answer is the expected text, but for case, spaces, quotes
/// and a final period; a one-word answer may come first, before its
/// reasons (`MX, because …`).
pub fn exact(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let Some(Expected::Text(want)) = &spec.expect else {
        return lab_error("`exact` needs `expect:` a text");
    };
    let want = sheet.variant.fill(want);
    let (n, w) = (normal(&answer.text), normal(&want));
    let first_word = n
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
        .next()
        .unwrap_or_default();
    // A one-word answer (an abbreviation, a record type) may come with
    // words around it on its first line: `The MPD (Media Presentation Description)`.
    let first_line = n.lines().next().unwrap_or_default();
    let as_word = !w.contains(' ')
        && first_line
            .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '.'))
            .any(|word| word.trim_end_matches('.') == w);
    if n == w || first_word.trim_end_matches('.') == w || as_word {
        return Verdict::pass().with_evidence(vec![quoted(answer)]);
    }
    let is = |t: &str| {
        let t = normal(&sheet.variant.fill(t));
        t == n || t == first_word
    };
    if let Some(m) = spec
        .mistakes
        .iter()
        .find(|m| matches!(&m.answer, Expected::Text(t) if is(t)))
    {
        return Verdict::fail(format!(
            "the answer {}: {}",
            quoted(answer),
            sheet.variant.fill(&m.says)
        ));
    }
    Verdict::fail(format!(
        "the answer {} is not the expected one{}",
        quoted(answer),
        sheet.expected(&format!("`{want}`"))
    ))
}

/// `regex`: the answer matches the pattern.
pub fn regex(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let Some(Expected::Text(pattern)) = &spec.expect else {
        return lab_error("`regex` needs `expect:` a pattern");
    };
    let Some(re) = super::compiled(&sheet.variant.fill(pattern)) else {
        return lab_error("the lab's pattern is not a regular expression");
    };
    if re.is_match(answer.text.trim()) {
        return Verdict::pass().with_evidence(vec![quoted(answer)]);
    }
    Verdict::fail(format!(
        "the answer {} is not what the question asks for{}",
        quoted(answer),
        sheet.expected(&format!("an answer matching `{pattern}`"))
    ))
}

/// `set`: the answer's members (a list, or separated by commas,
/// semicolons, new lines or `and`) are the expected ones, in any order.
pub fn set(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let Some(Expected::List(want)) = &spec.expect else {
        return lab_error("`set` needs `expect:` a list");
    };
    let want: Vec<String> = want
        .iter()
        .map(|w| normal(&sheet.variant.fill(w)))
        .collect();
    let got: Vec<String> = members(answer);
    let missing: Vec<&str> = want
        .iter()
        .filter(|w| !got.contains(w))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = got
        .iter()
        .filter(|g| !want.contains(g))
        .map(String::as_str)
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Verdict::pass().with_evidence(vec![format!(
            "{} members: {}",
            got.len(),
            got.join(", ")
        )]);
    }
    let mut parts = Vec::new();
    if !extra.is_empty() {
        parts.push(format!("{} should not be there", extra.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(if sheet.show {
            format!("{} missing", missing.join(", "))
        } else {
            format!(
                "{} member{} missing",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" }
            )
        });
    }
    Verdict::fail(format!(
        "the answer {}: {}",
        quoted(answer),
        parts.join("; ")
    ))
}

/// The members an answer lists.
fn members(answer: &Answer) -> Vec<String> {
    let raw: Vec<String> = if answer.items.is_empty() {
        answer
            .text
            .split([',', ';', '\n'])
            .flat_map(|p| p.split(" and "))
            .map(String::from)
            .collect()
    } else {
        answer.items.clone()
    };
    let mut out: Vec<String> = raw
        .iter()
        .map(|m| normal(m))
        .filter(|m| !m.is_empty())
        .collect();
    out.dedup();
    out
}

/// `manual`: pending until a person grades it; the answer is shown.
pub fn manual(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    let sheet = Sheet::of(ctx);
    let evidence = match sheet.answer(spec, ctx) {
        Ok(a) => a.text.lines().take(12).map(String::from).collect(),
        Err(v) => vec![v.message.unwrap_or_default()],
    };
    Verdict {
        status: Status::Pending,
        message: Some("graded by a person: pending".into()),
        evidence,
        share: None,
    }
}

fn lab_error(message: &str) -> Verdict {
    Verdict {
        status: Status::Error,
        message: Some(message.into()),
        evidence: Vec::new(),
        share: None,
    }
}

/// A POP3 line without its line ending.
fn pop3_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

/// `1 498`: a listing line (message number and size).
fn listing(text: &str) -> Option<(u64, u64)> {
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let size = words.next()?.parse().ok()?;
    words.next().is_none().then_some((n, size))
}

/// `pop3-session`: the student's transcript, its client lines replayed
/// against the lab's POP3 server ([`crate::homework::replay`]): each
/// server line they wrote that states something checkable — a status
/// (`+OK`, `-ERR`), a listing line (`1 498`) — is what the server really
/// said at that point; and the session leaves the maildrop as its mode
/// asks (`delete`: every message gone after QUIT; `keep`: none).
pub fn pop3_session(spec: &CheckSpec, ctx: &Ctx) -> Verdict {
    use crate::homework::replay::{self, Said};
    let sheet = Sheet::of(ctx);
    let answer = match sheet.answer(spec, ctx) {
        Ok(a) => a,
        Err(v) => return v,
    };
    let said = replay::transcript(&answer.text);
    if !said.iter().any(|s| s.who == 'C') {
        return Verdict::fail(format!(
            "the answer (line {}) has no client line: write each command as `C: list` and each server line as `S: +OK …`",
            answer.line
        ));
    }
    let Some((server, prepended)) = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Replayed {
            question,
            server,
            prepended,
        } if *question == spec.id.value => Some((server.as_str(), *prepended as usize)),
        _ => None,
    }) else {
        return lab_error("the transcript was not replayed: the lab has no pop3 server");
    };
    // The server's replies, one group per command it received.
    let mut replies: Vec<(String, Vec<String>)> = Vec::new();
    for e in &ctx.trace.events {
        if let EventKind::Line {
            server: s,
            dir,
            bytes,
            ..
        } = &e.kind
            && s == server
        {
            match dir {
                crate::trace::Dir::In => replies.push((pop3_text(bytes), Vec::new())),
                crate::trace::Dir::Out => {
                    if let Some((_, lines)) = replies.last_mut() {
                        lines.push(pop3_text(bytes));
                    }
                }
            }
        }
    }
    let replies = replies
        .get(prepended.min(replies.len())..)
        .unwrap_or_default();
    // The student's commands, each with the server lines written after it.
    let mut groups: Vec<(&Said, Vec<&Said>)> = Vec::new();
    for s in &said {
        match s.who {
            'C' => groups.push((s, Vec::new())),
            _ => {
                if let Some((_, lines)) = groups.last_mut() {
                    lines.push(s);
                }
            }
        }
    }
    let at = |s: &Said| format!("line {} of the transcript, `{}: {}`", s.line, s.who, s.text);
    for ((command, written), (_, real)) in groups.iter().zip(replies) {
        let status = |t: &str| {
            let t = t.trim_start();
            if t.starts_with("+OK") || t.starts_with("+ok") {
                Some("+OK")
            } else if t.to_ascii_uppercase().starts_with("-ERR") {
                Some("-ERR")
            } else {
                None
            }
        };
        let real_status = real.first().and_then(|l| status(l));
        if let Some(first) = written.iter().find(|w| status(&w.text).is_some())
            && status(&first.text) != real_status
        {
            return Verdict::fail(format!(
                "{}: to `{}` the server answers `{}`",
                at(first),
                command.text,
                real.first().map_or("nothing", String::as_str)
            ));
        }
        let wrote: Vec<(&Said, (u64, u64))> = written
            .iter()
            .filter_map(|w| listing(&w.text).map(|l| (*w, l)))
            .collect();
        let truth: Vec<(u64, u64)> = real.iter().skip(1).filter_map(|l| listing(l)).collect();
        if wrote.is_empty() {
            continue;
        }
        for (i, (w, l)) in wrote.iter().enumerate() {
            if truth.get(i) != Some(l) {
                let listed: Vec<String> = truth.iter().map(|(n, s)| format!("`{n} {s}`")).collect();
                let why = if listed.is_empty() && replay::mode(spec) == "after-delete" {
                    ": after QUIT in download-and-delete mode every message is gone for good, so the next session's LIST shows none"
                } else {
                    ""
                };
                return Verdict::fail(format!(
                    "{}: to `{}` the server lists {}{why}",
                    at(w),
                    command.text,
                    if listed.is_empty() {
                        "no message".to_string()
                    } else {
                        listed.join(", ")
                    }
                ));
            }
        }
        if wrote.len() < truth.len() {
            return Verdict::fail(format!(
                "to `{}` ({}) the server lists {} messages, the transcript {}",
                command.text,
                at(command),
                truth.len(),
                wrote.len()
            ));
        }
    }
    session_outcome(spec, ctx, server, &groups)
}

/// Whether the session left the maildrop as its mode asks.
fn session_outcome(
    spec: &CheckSpec,
    ctx: &Ctx,
    server: &str,
    groups: &[(
        &crate::homework::replay::Said,
        Vec<&crate::homework::replay::Said>,
    )],
) -> Verdict {
    let mode = crate::homework::replay::mode(spec);
    let end = ctx.trace.events.iter().find_map(|e| match &e.kind {
        EventKind::Maildrop {
            server: s,
            updated,
            deleted,
            remaining,
            ..
        } if s == server => Some((*updated, deleted, remaining)),
        _ => None,
    });
    let deletes: Vec<String> = groups
        .iter()
        .filter(|(c, _)| c.text.to_ascii_lowercase().starts_with("dele"))
        .map(|(c, _)| format!("`{}` (line {})", c.text, c.line))
        .collect();
    match (mode, end) {
        ("delete" | "keep", None | Some((false, _, _))) => Verdict::fail(
            "the session never reaches QUIT: without it the server deletes nothing and the session is not over (RFC 1939's UPDATE state); end it with `C: quit`",
        ),
        ("delete", Some((true, _, remaining))) if !remaining.is_empty() => {
            let left: Vec<String> = remaining.iter().map(u32::to_string).collect();
            Verdict::fail(format!(
                "in download-and-delete mode every message is deleted after it is retrieved, but after QUIT message{} {} remain{}: `C: dele n` after each `C: retr n`",
                if left.len() == 1 { "" } else { "s" },
                left.join(", "),
                if left.len() == 1 { "s" } else { "" }
            ))
        }
        ("keep", Some((true, deleted, _))) if !deleted.is_empty() => Verdict::fail(format!(
            "in download-and-keep mode nothing is deleted, but {} delete{} at QUIT",
            deletes.join(", "),
            if deletes.len() == 1 {
                "s a message"
            } else {
                " messages"
            }
        )),
        _ => Verdict::pass().with_evidence(vec![format!(
            "{} commands replayed; the server agreed with every line the transcript states",
            groups.len()
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_named_by_letter_or_text() {
        let options = vec!["A".to_string(), "MX".to_string(), "CNAME".to_string()];
        assert_eq!(option_index("B", &options), Some(1));
        assert_eq!(option_index("(b) because", &options), Some(1));
        assert_eq!(option_index("c.", &options), Some(2));
        assert_eq!(option_index("mx", &options), Some(1));
        assert_eq!(option_index("D", &options), None);
        let yes_no = vec!["Yes".to_string(), "No".to_string()];
        assert_eq!(
            option_index("Yes, because Connection: Keep-Alive", &yes_no),
            Some(0)
        );
        assert_eq!(option_index("no.", &yes_no), Some(1));
        assert_eq!(option_index("Nope", &yes_no), None);
    }

    #[test]
    fn telling_factors_are_named() {
        assert!(factor(7.5, 7500.0).unwrap().starts_with("1000"));
        assert!(factor(8.0, 1.0).unwrap().starts_with('8'));
        assert_eq!(factor(41.0, 40.0), None);
    }
}
