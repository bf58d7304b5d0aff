//! The JSON report: every run as the outcome model serializes it, under the netgrade version.

use serde::Serialize;

use crate::outcome::RunOutcome;

/// The whole JSON document.
#[derive(Serialize)]
struct Document<'a> {
    netgrade: &'static str,
    runs: &'a [RunOutcome],
}

/// Renders `{"netgrade": "<version>", "runs": [...]}` as pretty JSON ending with a newline.
///
/// Text is kept exactly as it was (JSON escapes control characters itself).
pub fn render(outs: &[RunOutcome]) -> String {
    let document = Document {
        netgrade: env!("CARGO_PKG_VERSION"),
        runs: outs,
    };
    let mut json = serde_json::to_string_pretty(&document).expect("outcomes always serialize");
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_outcomes;

    #[test]
    fn json_wraps_the_runs_in_a_versioned_document() {
        let json = render(&sample_outcomes());
        assert!(json.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["netgrade"], env!("CARGO_PKG_VERSION"));
        assert_eq!(value["runs"].as_array().unwrap().len(), 3);
        assert_eq!(
            value["runs"][0]["checks"][3]["evidence"][0],
            "line 2: \x1b[31mPWNED\x00 | <b>&</b> ```"
        );
        insta::with_settings!({filters => vec![(r#""netgrade": "[^"]+""#, r#""netgrade": "[version]""#)]}, {
            insta::assert_snapshot!(json);
        });
    }
}
