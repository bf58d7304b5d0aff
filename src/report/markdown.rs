//! The Markdown report, for a GitHub step summary: a check table for one run, a grade book
//! with collapsed details for several.

use std::fmt::{self, Write as _};

use super::{
    Totals, WRITE_TO_STRING, clean, clean_lines, evidence_line, fraction, lost_ids, program_line,
};
use crate::outcome::{RunOutcome, RunStatus, Status};

/// Renders one `## netgrade: {lab}` section per lab, in the order the labs first appear.
///
/// A lab with one run gets its check table; a lab with several gets a grade book, then each
/// run's table in a collapsed `<details>`.
pub fn render(outs: &[RunOutcome]) -> String {
    let mut s = String::new();
    write_report(&mut s, outs).expect(WRITE_TO_STRING);
    s
}

/// GitHub's limit on a step's summary: it shows none of a larger one.
pub const STEP_SUMMARY_LIMIT: usize = 1024 * 1024;

/// Room kept for the note that says what was left out.
const NOTE_ROOM: usize = 1024;

/// [`render`], at most `limit` bytes long: when the whole report is longer,
/// each lab keeps its grade book (cut too if need be) and as many runs'
/// details as fit, and a note says how many were left out and that
/// `full` (where the whole report is) has them.
pub fn render_within(outs: &[RunOutcome], limit: usize, full: &str) -> String {
    let whole = render(outs);
    if whole.len() <= limit {
        return whole;
    }
    let budget = limit.saturating_sub(NOTE_ROOM);
    let mut s = String::new();
    let (mut rows_left_out, mut details_left_out) = (0, 0);
    for (lab, runs) in by_lab(outs) {
        let mut head = String::new();
        lab_head(&mut head, lab, &runs).expect(WRITE_TO_STRING);
        if s.len() + head.len() > budget {
            // Even the grade book is too long: keep its first rows.
            let mut kept = 0;
            for line in head.split_inclusive('\n') {
                if s.len() + line.len() > budget {
                    break;
                }
                s.push_str(line);
                kept += 1;
            }
            rows_left_out += head.lines().count().saturating_sub(kept);
            details_left_out += runs.len();
            continue;
        }
        s.push_str(&head);
        if runs.len() == 1 {
            continue;
        }
        for run in runs {
            let mut details = String::new();
            run_details(&mut details, run).expect(WRITE_TO_STRING);
            if s.len() + details.len() > budget {
                details_left_out += 1;
            } else {
                s.push_str(&details);
            }
        }
    }
    let _ = writeln!(
        s,
        "> **Trimmed:** GitHub shows a step summary only under 1 MiB, so {}{} not shown here. The whole report is in {}.",
        if details_left_out > 0 {
            format!(
                "the details of {details_left_out} run{}",
                if details_left_out == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        },
        match (rows_left_out, details_left_out) {
            (0, _) => " are".to_string(),
            (r, 0) => format!("{r} lines of the grade book are"),
            (r, _) => format!(" and {r} lines of the grade book are"),
        },
        text(full)
    );
    s
}

/// The runs of each lab, labs in the order they first appear.
fn by_lab(outs: &[RunOutcome]) -> Vec<(&str, Vec<&RunOutcome>)> {
    let mut labs: Vec<(&str, Vec<&RunOutcome>)> = Vec::new();
    for out in outs {
        match labs.iter_mut().find(|(lab, _)| *lab == out.lab) {
            Some((_, runs)) => runs.push(out),
            None => labs.push((&out.lab, vec![out])),
        }
    }
    labs
}

/// Writes [`render`]'s text.
fn write_report(s: &mut String, outs: &[RunOutcome]) -> fmt::Result {
    if outs.is_empty() {
        return writeln!(s, "## netgrade\n\nNo runs.");
    }
    for (lab, runs) in by_lab(outs) {
        lab_head(s, lab, &runs)?;
        if runs.len() > 1 {
            for run in runs {
                run_details(s, run)?;
            }
        }
    }
    Ok(())
}

/// A lab's heading, then its one run's table, or for several runs a grade book.
fn lab_head(s: &mut String, lab: &str, runs: &[&RunOutcome]) -> fmt::Result {
    writeln!(s, "## netgrade: {}\n", text(lab))?;
    if let [run] = runs {
        return write_run(s, run);
    }
    writeln!(
        s,
        "| | submission | score | checks not passed |\n|---|---|--:|---|"
    )?;
    for run in runs {
        let (score, lost) = match run.status {
            RunStatus::Graded => (
                fraction(run.score, run.max_score),
                lost_ids(run)
                    .iter()
                    .map(|id| code(id))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            RunStatus::Error => ("—".to_string(), "not graded: internal error".to_string()),
        };
        writeln!(
            s,
            "| {} | {} | {score} | {lost} |",
            run_emoji(run),
            text(&run.submission)
        )?;
    }
    writeln!(s, "\n{}\n", Totals::of(runs.iter().copied()))
}

/// One run of several, in a collapsed `<details>`.
fn run_details(s: &mut String, run: &RunOutcome) -> fmt::Result {
    let score = match run.status {
        RunStatus::Graded => fraction(run.score, run.max_score),
        RunStatus::Error => "not graded".to_string(),
    };
    writeln!(
        s,
        "<details><summary>{} {} — {score}</summary>\n",
        run_emoji(run),
        html(&run.submission)
    )?;
    write_run(s, run)?;
    writeln!(s, "</details>\n")
}

/// One run: a summary line, the check table, evidence of the checks that did not pass,
/// the program and the notes.
fn write_run(s: &mut String, out: &RunOutcome) -> fmt::Result {
    let score = match out.status {
        RunStatus::Graded => format!("score **{}**", fraction(out.score, out.max_score)),
        RunStatus::Error => "⚠️ **not graded: internal error**".to_string(),
    };
    writeln!(
        s,
        "**{}** · {score} · seed {}\n",
        text(&out.submission),
        out.seed
    )?;
    if !out.checks.is_empty() {
        writeln!(s, "| | check | points | details |\n|---|---|--:|---|")?;
        for c in &out.checks {
            let mut details = c.message.as_deref().map(text).unwrap_or_default();
            if let Some(hint) = c.hint.as_deref().filter(|_| !c.passed()) {
                if !details.is_empty() {
                    details.push_str("<br>");
                }
                write!(details, "<em>hint: {}</em>", text(hint))?;
            }
            writeln!(
                s,
                "| {} | {} {}{} | {} | {details} |",
                status_emoji(c.status),
                code(&c.id),
                text(&c.title),
                c.case
                    .as_ref()
                    .map(|k| format!(" (case {})", code(k)))
                    .unwrap_or_default(),
                match c.fraction {
                    Some(f) => format!("{} ({f})", fraction(c.points, c.max_points)),
                    None => fraction(c.points, c.max_points),
                }
            )?;
        }
        writeln!(s)?;
    }
    for f in &out.figures {
        if let Some(file) = &f.file {
            writeln!(s, "![{}]({file})\n", text(&f.title))?;
        }
    }
    for c in out
        .checks
        .iter()
        .filter(|c| !c.passed() && !c.evidence.is_empty())
    {
        let lines: Vec<String> = differences_first(&c.evidence)
            .iter()
            .map(|e| evidence_line(e).into_owned())
            .collect();
        let fence = "`".repeat(longest_backtick_run(&lines.concat()).max(2) + 1);
        writeln!(
            s,
            "<details><summary>{} {}: evidence</summary>\n\n{fence}text\n{}\n{fence}\n\n</details>\n",
            status_emoji(c.status),
            html(&c.id),
            lines.join("\n")
        )?;
    }
    if let Some(program) = &out.program {
        writeln!(s, "program: {}\n", text(&program_line(program)))?;
        for line in super::instance_lines(program) {
            writeln!(s, "{}\n", text(&line))?;
        }
    }
    let diagnoses = out.program.iter().flat_map(|p| &p.diagnoses);
    let notes: Vec<String> = diagnoses
        .map(|d| ("diagnosis", d))
        .chain(out.notes.iter().map(|n| ("note", n)))
        .map(|(label, note)| format!("- {label}: {}\n", text(note)))
        .collect();
    if !notes.is_empty() {
        writeln!(s, "{}", notes.concat())?;
    }
    Ok(())
}

/// A run of identical characters shorter than this is shown as is.
const SAME_RUN: usize = 24;

/// Characters kept before the first difference, for context.
const CONTEXT: usize = 8;

/// Evidence lines with the differing bytes first: a line that starts as
/// the one above it did (after their labels, `expected:` and `got:`)
/// shows `…(N characters as above)…` for all but the last few characters
/// they share, so a difference late in a long line is not cut off.
fn differences_first(evidence: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(evidence.len());
    for (i, line) in evidence.iter().enumerate() {
        let Some(above) = i.checked_sub(1).map(|j| &evidence[j]) else {
            out.push(line.clone());
            continue;
        };
        let (label, body) = labelled(line);
        let (_, above_body) = labelled(above);
        let same = body
            .chars()
            .zip(above_body.chars())
            .take_while(|(a, b)| a == b)
            .count();
        if same < SAME_RUN || same == body.chars().count() {
            out.push(line.clone());
            continue;
        }
        let skipped = same - CONTEXT;
        let rest: String = body.chars().skip(skipped).collect();
        out.push(format!("{label}…({skipped} characters as above)…{rest}"));
    }
    out
}

/// `("got: ", "PING 1 …")`: a short label ending in `: ` (none when the
/// line has none), and the rest.
fn labelled(line: &str) -> (&str, &str) {
    match line.find(": ") {
        Some(at) if (at <= 24 && !line[..at].contains(' ')) || at <= 12 => line.split_at(at + 2),
        _ => ("", line),
    }
}

/// The emoji for a check status.
fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅",
        Status::Fail => "❌",
        Status::Error => "⚠️",
        Status::Skip => "⏭️",
        Status::Pending => "⏳",
    }
}

/// The emoji for a run: full marks, points lost or not graded.
fn run_emoji(out: &RunOutcome) -> &'static str {
    match out.status {
        RunStatus::Error => "⚠️",
        RunStatus::Graded if out.full_marks() => "✅",
        RunStatus::Graded => "❌",
    }
}

/// Escapes `&`, `<` and `>` for HTML (in `<summary>`), after [`clean`]ing control characters.
fn html(raw: &str) -> String {
    clean(raw)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text safe in a table cell, shown as it reads: lines joined with `<br>`, code spans kept,
/// everything else [`escape`]d.
fn text(raw: &str) -> String {
    clean_lines(raw)
        .map(|line| inline(&line, Place::Cell))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Where Markdown text goes: a table cell (a `|` ends the cell, even in a
/// code span) or a block of its own (a `#` or `!` may start a heading or
/// an image).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A cell of a GitHub table.
    Cell,
    /// A paragraph or list item of its own.
    Block,
}

/// One line of [`text`]. A code span is a run of backticks up to the next run of the same
/// length, as in CommonMark; inside it only a cell's `|` is escaped (entities would show
/// as is, and GitHub tables unescape `\|` even in code).
pub(crate) fn inline(line: &str, place: Place) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        out.push_str(&escape(&rest[..open], place));
        let from_tick = &rest[open..];
        let ticks = backtick_run(from_tick);
        let (piece, after) = match closing_run(&from_tick[ticks..], ticks) {
            Some(close) => {
                let (span, after) = from_tick.split_at(2 * ticks + close);
                match place {
                    Place::Cell => (span.replace('|', r"\|"), after),
                    Place::Block => (span.to_string(), after),
                }
            }
            None => (escape(&from_tick[..ticks], place), &from_tick[ticks..]),
        };
        out.push_str(&piece);
        rest = after;
    }
    out.push_str(&escape(rest, place));
    out
}

/// Escapes text outside code spans: `&`, `<` and `>` as entities; backslash, backtick and
/// `* _ [ ] ~ |`, which Markdown would act on, with a backslash; in a block also `#` and `!`.
fn escape(text: &str, place: Place) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '*' | '_' | '[' | ']' | '~' | '|' | '`' => {
                out.push('\\');
                out.push(c);
            }
            '#' | '!' if place == Place::Block => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Byte offset of the first run of exactly `n` backticks in `s`.
fn closing_run(s: &str, n: usize) -> Option<usize> {
    let mut from = 0;
    while let Some(found) = s[from..].find('`') {
        let start = from + found;
        let len = backtick_run(&s[start..]);
        if len == n {
            return Some(start);
        }
        from = start + len;
    }
    None
}

/// Length of the run of backticks that `s` starts with.
fn backtick_run(s: &str) -> usize {
    s.len() - s.trim_start_matches('`').len()
}

/// An inline code span that holds `raw` whatever backticks it contains.
fn code(raw: &str) -> String {
    let raw = clean(raw).replace('|', r"\|");
    let fence = "`".repeat(longest_backtick_run(&raw) + 1);
    let pad = if raw.starts_with('`') || raw.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{raw}{pad}{fence}")
}

/// Length of the longest run of backticks in `s`.
pub(crate) fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn one_run_gets_a_check_table() {
        insta::assert_snapshot!(render(&sample_outcomes()[..1]));
    }

    #[test]
    fn several_runs_get_a_gradebook_and_collapsed_details() {
        insta::assert_snapshot!(render(&sample_outcomes()));
    }

    #[test]
    fn evidence_shows_the_differing_bytes_first() {
        let same = "x".repeat(90);
        let evidence = vec![
            format!("expected: {same}ABC"),
            format!("got: {same}ABD"),
            "short: line".to_string(),
        ];
        let shown = differences_first(&evidence);
        assert_eq!(shown[0], evidence[0]);
        assert_eq!(shown[1], "got: …(84 characters as above)…xxxxxxABD");
        assert_eq!(shown[2], "short: line");
        // Identical lines, and short shared starts, stay whole.
        let twice = vec![format!("a: {same}"), format!("b: {same}")];
        assert_eq!(differences_first(&twice), twice);
    }

    #[test]
    fn step_summaries_are_trimmed_under_the_limit_with_a_note() {
        let one = sample_outcomes();
        let mut outs = Vec::new();
        for i in 0..300 {
            let mut run = one[i % 2].clone();
            run.submission = format!("class/student-{i:03}");
            outs.push(run);
        }
        let whole = render(&outs);
        let limit = whole.len() / 3;
        let trimmed = render_within(&outs, limit, "grades.md");
        assert!(trimmed.len() <= limit, "{} > {limit}", trimmed.len());
        assert!(trimmed.contains("student-299"), "the grade book is whole");
        assert!(trimmed.contains("The whole report is in grades.md."));
        assert!(trimmed.contains("the details of "));
        // Small enough: nothing changes.
        assert_eq!(
            render_within(&outs[..2], STEP_SUMMARY_LIMIT, "x"),
            render(&outs[..2])
        );
        // A limit below the grade book cuts its rows.
        let tiny = render_within(&outs, 4096, "grades.md");
        assert!(tiny.len() <= 4096, "{}", tiny.len());
        assert!(
            tiny.contains("lines of the grade book are not shown"),
            "{tiny}"
        );
    }

    #[test]
    fn cells_and_code_are_escaped() {
        assert_eq!(
            text("a|b <i>&\x1b\nnext"),
            r"a\|b &lt;i&gt;&amp;\\x1b<br>next"
        );
        assert_eq!(
            text("use `a<b|c>` & ``x`<y``"),
            r"use `a<b\|c>` &amp; ``x`<y``"
        );
        assert_eq!(
            text(r"odd ` <i> *x* a\b [l](u)"),
            r"odd \` &lt;i&gt; \*x\* a\\b \[l\](u)"
        );
        assert_eq!(code("x`y|"), r"``x`y\|``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(longest_backtick_run("a```b``"), 3);
    }
}
