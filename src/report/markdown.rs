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

/// Writes [`render`]'s text.
fn write_report(s: &mut String, outs: &[RunOutcome]) -> fmt::Result {
    if outs.is_empty() {
        return writeln!(s, "## netgrade\n\nNo runs.");
    }
    let mut labs: Vec<&str> = Vec::new();
    for out in outs {
        if !labs.contains(&out.lab.as_str()) {
            labs.push(&out.lab);
        }
    }
    for lab in labs {
        let runs: Vec<&RunOutcome> = outs.iter().filter(|o| o.lab == lab).collect();
        writeln!(s, "## netgrade: {}\n", text(lab))?;
        if let [run] = runs[..] {
            write_run(s, run)?;
            continue;
        }
        writeln!(
            s,
            "| | submission | score | checks not passed |\n|---|---|--:|---|"
        )?;
        for run in &runs {
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
        writeln!(s, "\n{}\n", Totals::of(runs.iter().copied()))?;
        for run in runs {
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
            writeln!(s, "</details>\n")?;
        }
    }
    Ok(())
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
                fraction(c.points, c.max_points)
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
        let lines: Vec<_> = c.evidence.iter().map(|e| evidence_line(e)).collect();
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
        .map(|line| inline(&line))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// One line of [`text`]. A code span is a run of backticks up to the next run of the same
/// length, as in CommonMark; inside it only `|` is escaped (entities would show as is, and
/// GitHub tables unescape `\|` even in code).
fn inline(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('`') {
        out.push_str(&escape(&rest[..open]));
        let from_tick = &rest[open..];
        let ticks = backtick_run(from_tick);
        let (piece, after) = match closing_run(&from_tick[ticks..], ticks) {
            Some(close) => {
                let (span, after) = from_tick.split_at(2 * ticks + close);
                (span.replace('|', r"\|"), after)
            }
            None => (escape(&from_tick[..ticks]), &from_tick[ticks..]),
        };
        out.push_str(&piece);
        rest = after;
    }
    out.push_str(&escape(rest));
    out
}

/// Escapes text outside code spans: `&`, `<` and `>` as entities; backslash, backtick and
/// `* _ [ ] ~ |`, which Markdown would act on, with a backslash.
fn escape(text: &str) -> String {
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
fn longest_backtick_run(s: &str) -> usize {
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
