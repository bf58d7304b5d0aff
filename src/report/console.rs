//! The report for people, in a terminal or a CI log: one block per run, then a grade book.

use std::fmt::{self, Write as _};

use anstyle::{AnsiColor, Style};

use super::{
    Totals, WRITE_TO_STRING, clean, clean_lines, evidence_line, fraction, lost_ids, program_line,
};
use crate::outcome::{RunOutcome, RunStatus, Status};

/// The styles in use; all plain when colour is off, so no escape code is ever written.
#[derive(Default)]
struct Palette {
    pass: Style,
    fail: Style,
    partial: Style,
    error: Style,
    skip: Style,
    strong: Style,
    dim: Style,
    hint: Style,
}

impl Palette {
    /// The colour palette, or plain styles when `color` is false.
    fn new(color: bool) -> Self {
        if !color {
            return Palette::default();
        }
        Palette {
            pass: AnsiColor::Green.on_default().bold(),
            fail: AnsiColor::Red.on_default().bold(),
            partial: AnsiColor::Yellow.on_default().bold(),
            error: AnsiColor::Magenta.on_default().bold(),
            skip: Style::new().dimmed(),
            strong: Style::new().bold(),
            dim: Style::new().dimmed(),
            hint: AnsiColor::Cyan.on_default(),
        }
    }

    /// Symbol and style for a check status.
    fn status(&self, status: Status) -> (&'static str, Style) {
        match status {
            Status::Pass => ("✓", self.pass),
            Status::Fail => ("✗", self.fail),
            Status::Error => ("!", self.error),
            Status::Skip => ("-", self.skip),
            Status::Pending => ("…", self.hint),
        }
    }

    /// Style of a score: green for full marks, red for nothing, yellow in between.
    fn score(&self, out: &RunOutcome) -> Style {
        if out.full_marks() {
            self.pass
        } else if out.status == RunStatus::Error || out.score <= 0.0 {
            self.fail
        } else {
            self.partial
        }
    }
}

/// Renders one run: header, one line per check (with message, evidence and hint when it did
/// not pass), the program, notes and the score.
pub fn render_run(out: &RunOutcome, color: bool) -> String {
    let mut s = String::new();
    write_run(&mut s, out, &Palette::new(color)).expect(WRITE_TO_STRING);
    s
}

/// Writes [`render_run`]'s text.
fn write_run(s: &mut String, out: &RunOutcome, p: &Palette) -> fmt::Result {
    let strong = p.strong;
    writeln!(
        s,
        "{strong}{} · {} · seed {}{strong:#}",
        clean(&out.lab),
        clean(&out.submission),
        out.seed
    )?;
    let id_width = out
        .checks
        .iter()
        .map(|c| c.id.chars().count())
        .max()
        .unwrap_or(0);
    let points: Vec<String> = out
        .checks
        .iter()
        .map(|c| match c.fraction {
            // Partial credit says for how much was right.
            Some(f) => format!("{} ({f})", fraction(c.points, c.max_points)),
            None => fraction(c.points, c.max_points),
        })
        .collect();
    let points_width = points.iter().map(String::len).max().unwrap_or(0);
    for (check, points) in out.checks.iter().zip(&points) {
        let (symbol, style) = p.status(check.status);
        // A check that judges one case says which.
        let case = check
            .case
            .as_ref()
            .map(|c| format!(" (case {})", clean(c)))
            .unwrap_or_default();
        writeln!(
            s,
            "  {style}{symbol}{style:#} {:<id_width$}  {points:>points_width$}   {}{case}",
            clean(&check.id),
            clean(&check.title)
        )?;
        if check.passed() {
            // A pass can carry a note (what was accepted, and why).
            for line in check.message.iter().flat_map(|m| clean_lines(m)) {
                let dim = p.dim;
                writeln!(s, "      {dim}note:{dim:#} {line}")?;
            }
            continue;
        }
        for line in check.message.iter().flat_map(|m| clean_lines(m)) {
            writeln!(s, "      {line}")?;
        }
        let dim = p.dim;
        for line in &check.evidence {
            writeln!(s, "      {dim}│{dim:#} {}", evidence_line(line))?;
        }
        // A skipped check is nobody's fault: its advice would mislead.
        if let Some(hint) = check.hint.as_ref().filter(|_| check.status != Status::Skip) {
            let style = p.hint;
            let mut lines = clean_lines(hint);
            if let Some(first) = lines.next() {
                writeln!(s, "      {style}hint:{style:#} {first}")?;
            }
            for line in lines {
                writeln!(s, "            {line}")?;
            }
        }
    }
    // One program line per case in a lab of several cases.
    let programs: Vec<(String, &crate::outcome::ProgramSummary)> = if out.cases.is_empty() {
        out.program
            .iter()
            .map(|p| ("program".to_string(), p))
            .collect()
    } else {
        out.cases
            .iter()
            .filter_map(|c| {
                c.program
                    .as_ref()
                    .map(|p| (format!("case {}", clean(&c.id)), p))
            })
            .collect()
    };
    for (label, program) in programs {
        writeln!(s, "  {label}: {}", program_line(program))?;
        for line in super::instance_lines(program) {
            writeln!(s, "  {line}")?;
        }
        for diagnosis in &program.diagnoses {
            for line in clean_lines(diagnosis) {
                writeln!(s, "  diagnosis: {line}")?;
            }
        }
    }
    match out.status {
        RunStatus::Graded => {
            for line in out.notes.iter().flat_map(|n| clean_lines(n)) {
                writeln!(s, "  note: {line}")?;
            }
            let style = p.score(out);
            let pending = out.pending_points();
            let pending = if pending > 0.0 {
                format!(
                    " ({} point{} pending: graded by a person)",
                    crate::outcome::fmt_points(pending),
                    if pending == 1.0 { "" } else { "s" }
                )
            } else {
                String::new()
            };
            writeln!(
                s,
                "  {style}score {}{style:#}{pending}",
                fraction(out.score, out.max_score)
            )
        }
        RunStatus::Error => {
            let error = p.fail;
            for line in out.notes.iter().flat_map(|n| clean_lines(n)) {
                writeln!(s, "  {error}!{error:#} {line}")?;
            }
            writeln!(s, "  {error}not graded: internal error{error:#}")
        }
    }
}

/// Renders the grade book shown after a batch of runs: one row per run with its submission,
/// score and the ids of the checks that lost points, then the totals.
pub fn render_gradebook(outs: &[RunOutcome], color: bool) -> String {
    let mut s = String::new();
    write_gradebook(&mut s, outs, &Palette::new(color)).expect(WRITE_TO_STRING);
    s
}

/// Writes [`render_gradebook`]'s text.
fn write_gradebook(s: &mut String, outs: &[RunOutcome], p: &Palette) -> fmt::Result {
    let several_labs = outs.iter().any(|o| o.lab != outs[0].lab);
    let rows: Vec<(String, String)> = outs
        .iter()
        .map(|o| {
            let name = if several_labs {
                format!("{} · {}", clean(&o.lab), clean(&o.submission))
            } else {
                clean(&o.submission).into_owned()
            };
            let score = match o.status {
                RunStatus::Graded => fraction(o.score, o.max_score),
                RunStatus::Error => "—".to_string(),
            };
            (name, score)
        })
        .collect();
    let name_width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .chain([10])
        .max()
        .unwrap_or(0);
    let score_width = rows
        .iter()
        .map(|(_, sc)| sc.chars().count())
        .chain([5])
        .max()
        .unwrap_or(0);
    let strong = p.strong;
    writeln!(
        s,
        "{strong}{:<name_width$}  {:>score_width$}  not passed{strong:#}",
        "submission", "score"
    )?;
    for (out, (name, score)) in outs.iter().zip(&rows) {
        let style = p.score(out);
        let lost = match out.status {
            RunStatus::Graded => lost_ids(out).join(", "),
            RunStatus::Error => "not graded: internal error".to_string(),
        };
        let line = format!("{name:<name_width$}  {style}{score:>score_width$}{style:#}  {lost}");
        writeln!(s, "{}", line.trim_end())?;
    }
    writeln!(s, "{strong}{}{strong:#}", Totals::of(outs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn runs_render_for_people() {
        for (i, out) in sample_outcomes().iter().enumerate() {
            insta::assert_snapshot!(format!("run_{i}"), render_run(out, false));
        }
    }

    #[test]
    fn gradebook_lists_scores_and_lost_checks() {
        insta::assert_snapshot!(render_gradebook(&sample_outcomes(), false));
    }

    #[test]
    fn gradebook_names_the_lab_when_there_are_several() {
        let mut outs = sample_outcomes();
        outs[1].lab = "tcp-echo".to_string();
        let book = render_gradebook(&outs, false);
        assert!(
            book.contains("tcp-echo · fixtures/udp-pinger/good"),
            "{book}"
        );
    }

    #[test]
    fn no_escape_codes_without_colour_and_no_student_escapes_with_it() {
        let outs = sample_outcomes();
        let plain: String = outs
            .iter()
            .map(|o| render_run(o, false))
            .collect::<String>()
            + &render_gradebook(&outs, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        let colored = render_run(&outs[0], true);
        assert!(
            colored.contains("\x1b[1m\x1b[32m✓\x1b[0m runs"),
            "{colored:?}"
        );
        assert!(colored.contains(r"\x1b[31mPWNED\0"), "{colored:?}");
        assert!(!colored.contains("\x1b[31mPWNED"), "{colored:?}");
    }
}
