//! Autolab: the autograder's last line of output, `{"scores": {...}}`,
//! a score per problem. Autolab shows the rest of the output as feedback.

use crate::outcome::{RunOutcome, Status};

/// `{"scores": {"runs": 1, "ping-format": 3, …}}`: each check's points under
/// its id (the names of the assessment's problems), as students see them
/// ([`RunOutcome::student_view`] is the caller's to apply: hidden checks
/// come as one `hidden-checks` problem). Checks a person grades are left
/// out, for Autolab's own grading of those problems.
pub fn scores_line(out: &RunOutcome) -> String {
    let mut scores = serde_json::Map::new();
    for c in out.checks.iter().filter(|c| c.status != Status::Pending) {
        let key = match &c.case {
            Some(case) => format!("{} [{case}]", c.id),
            None => c.id.clone(),
        };
        let points = scores
            .get(&key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        scores.insert(key, serde_json::json!(points + c.points));
    }
    let line = serde_json::json!({ "scores": scores });
    format!("{line}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn one_line_of_scores_by_check() {
        let line = scores_line(&sample_outcomes()[0]);
        assert_eq!(line.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["scores"]["ping-format"], 3.0);
        assert_eq!(v["scores"]["prints-replies"], 0.5);
        assert_eq!(v["scores"].as_object().unwrap().len(), 6);
    }
}
