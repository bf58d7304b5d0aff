//! The CSV grade sheet, for a learning management system or a spreadsheet:
//! a row per submission, a column per check (RFC 4180).

use super::submission_name as name;
use crate::outcome::{RunOutcome, RunStatus, Status, fmt_points};

/// Renders the header and a row per run: `name`, `submission`, `status`,
/// `score`, `max_score`, then each check's points (`pending` for a check
/// a person grades, empty where a run has no such check). Check columns
/// come in the order they first appear.
pub fn render(outs: &[RunOutcome]) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for check in outs.iter().flat_map(|o| &o.checks) {
        if !ids.contains(&check.id.as_str()) {
            ids.push(&check.id);
        }
    }
    let mut lines = Vec::with_capacity(outs.len() + 1);
    let header = ["name", "submission", "status", "score", "max_score"]
        .into_iter()
        .chain(ids.iter().copied());
    lines.push(row(header));
    for out in outs {
        let status = match out.status {
            RunStatus::Graded => "graded",
            RunStatus::Error => "error",
        };
        let fixed = [
            name(&out.submission).to_string(),
            out.submission.clone(),
            status.to_string(),
            fmt_points(out.score),
            fmt_points(out.max_score),
        ];
        let points = ids
            .iter()
            .map(|id| match out.checks.iter().find(|c| c.id == *id) {
                Some(c) if c.status == Status::Pending => "pending".to_string(),
                Some(c) => fmt_points(c.points),
                None => String::new(),
            });
        let cells: Vec<String> = fixed.into_iter().chain(points).collect();
        lines.push(row(cells.iter().map(String::as_str)));
    }
    let mut csv = lines.join("\r\n");
    csv.push_str("\r\n");
    csv
}

/// One CSV line of `cells`.
fn row<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    cells.map(cell).collect::<Vec<_>>().join(",")
}

/// A cell, quoted when it must be. Text a spreadsheet would take for a
/// formula (a student's folder named `=HYPERLINK(…)`) starts with `'`.
fn cell(raw: &str) -> String {
    let text = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) && raw.parse::<f64>().is_err() {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn a_row_per_run_and_a_column_per_check() {
        let csv = render(&sample_outcomes());
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "name,submission,status,score,max_score,runs,waits-for-timeout,ping-format,prints-replies,reports-rtt,server-up"
        );
        assert_eq!(
            lines[1],
            "short-timeout,fixtures/udp-pinger/short-timeout,graded,4.5,10,1,0,3,0.5,0,0"
        );
        assert_eq!(lines[2], "good,fixtures/udp-pinger/good,graded,4,4,1,,3,,,");
        assert_eq!(
            lines[3],
            "broken,fixtures/udp-pinger/broken,error,0,0,,,,,,"
        );
        assert_eq!(lines.len(), 5, "ends with a line break");
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-1.5"), "-1.5");
        assert_eq!(name("class/ada/"), "ada");
        assert_eq!(name("."), ".");
        assert_eq!(name("ada.py"), "ada.py");
    }
}
