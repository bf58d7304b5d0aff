//! Answers files as students hand them in.
//!
//! Two forms, told apart by the file's name (`.yaml`/`.yml`, else
//! Markdown or text):
//!
//! - YAML: a mapping from a question's label (or id) to its answer: a
//!   number, a text, a list, or a block (`|`) for several lines.
//! - Markdown: each answer starts on a line with its label — `1.`, `1)`,
//!   `A.`, `a)`, `Q1:`, `Question 1:`, `## 1`, `**1.**`, or the question's
//!   id and a colon (`urls: 40`) — and runs to the next label; code fences
//!   keep a transcript's lines as written.
//!
//! Labels match case-insensitively. Each answer keeps the line it starts
//! on, for messages.

use std::sync::LazyLock;

use regex::Regex;

/// Most bytes of an answers file read; the rest is ignored and said so.
pub const MAX_FILE: usize = 256 * 1024;

/// One answer as handed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Its label as written (`1`, `b`, `urls`).
    pub label: String,
    /// The answer's text, trimmed (a list's items one per line).
    pub text: String,
    /// The items of a YAML list, or the lines of a Markdown list.
    pub items: Vec<String>,
    /// The line of the file it starts on, from 1.
    pub line: usize,
}

/// A label at the start of a Markdown line.
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s{0,3}(?:#{1,6}\s*)?(?:\*\*|__)?(?:q(?:uestion)?\s*)?([0-9]{1,3}[a-z]?|[a-z]|[a-z][\w-]{1,40})(?:\*\*|__)?\s*[.):](?:\*\*|__)?(?:\s+(.*))?$",
    )
    .unwrap()
});
/// A heading that is a label alone: `## 4`, `### Question 2b`.
static HEADING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s{0,3}#{1,6}\s*(?:q(?:uestion)?\s*)?([0-9]{1,3}[a-z]?|[a-z])\s*[.):]?\s*$")
        .unwrap()
});
/// A list item of an answer in Markdown: `- a`, `* a`, `+ a`.
static ITEM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*[-*+]\s+(.*)$").unwrap());

/// The answers in `text`, a file named `name`; `known` are the labels and
/// ids of the lab's questions (a Markdown line starting with another word
/// and a colon is part of the answer before it).
pub fn read(name: &str, text: &str, known: &[String]) -> Result<Vec<Answer>, String> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        read_yaml(text)
    } else {
        Ok(read_markdown(text, known))
    }
}

fn read_yaml(text: &str) -> Result<Vec<Answer>, String> {
    let map: serde_json::Map<String, serde_json::Value> = serde_saphyr::from_str(text)
        .map_err(|e| format!("the answers file is not a YAML mapping of labels to answers: {e}"))?;
    let mut out = Vec::new();
    for (label, value) in map {
        let items: Vec<String> = match &value {
            serde_json::Value::Array(list) => list.iter().map(scalar).collect(),
            _ => Vec::new(),
        };
        let text = if items.is_empty() {
            scalar(&value)
        } else {
            items.join("\n")
        };
        out.push(Answer {
            label,
            text: text.trim().to_string(),
            items,
            line: 0,
        });
    }
    Ok(fill_lines(out, text))
}

/// The line each YAML key starts on.
fn fill_lines(mut answers: Vec<Answer>, text: &str) -> Vec<Answer> {
    for a in &mut answers {
        let key = regex::escape(&a.label);
        let re = Regex::new(&format!(r#"^\s*["']?{key}["']?\s*:"#)).expect("an escaped key");
        a.line = text
            .lines()
            .position(|l| re.is_match(l))
            .map_or(0, |i| i + 1);
    }
    answers.sort_by_key(|a| a.line);
    answers
}

/// A YAML scalar as text: numbers as written by serde, `null` as nothing.
fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn read_markdown(text: &str, known: &[String]) -> Vec<Answer> {
    let mut out: Vec<Answer> = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && let Some(c) = HEADING.captures(line) {
            out.push(Answer {
                label: c[1].to_string(),
                text: String::new(),
                items: Vec::new(),
                line: i + 1,
            });
            continue;
        }
        if !fenced && let Some(c) = LABEL.captures(line) {
            let label = c[1].to_string();
            let is_word =
                label.len() > 1 && !label.chars().next().is_some_and(|d| d.is_ascii_digit());
            if !is_word || known.iter().any(|k| k.eq_ignore_ascii_case(&label)) {
                out.push(Answer {
                    label,
                    text: c.get(2).map_or("", |m| m.as_str()).trim().to_string(),
                    items: Vec::new(),
                    line: i + 1,
                });
                continue;
            }
        }
        let Some(current) = out.last_mut() else {
            continue;
        };
        if !fenced && let Some(item) = ITEM.captures(line) {
            current.items.push(item[1].trim().to_string());
        }
        if !current.text.is_empty() {
            current.text.push('\n');
        }
        current
            .text
            .push_str(if fenced { line } else { line.trim() });
    }
    for a in &mut out {
        a.text = a.text.trim().to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["urls".into(), "record".into()]
    }

    #[test]
    fn yaml_answers_keep_their_labels_lines_and_lists() {
        let text = "urls: 40\n# a comment\nrecord: MX\nset:\n  - a\n  - b\nsession: |\n  C: list\n  S: +OK\n";
        let a = read("answers.yaml", text, &known()).unwrap();
        let labels: Vec<(&str, &str, usize)> = a
            .iter()
            .map(|a| (a.label.as_str(), a.text.as_str(), a.line))
            .collect();
        assert_eq!(
            labels,
            [
                ("urls", "40", 1),
                ("record", "MX", 3),
                ("set", "a\nb", 4),
                ("session", "C: list\nS: +OK", 7)
            ]
        );
        assert_eq!(a[2].items, ["a", "b"]);
        let e = read("answers.yaml", "- 40\n- MX\n", &known()).unwrap_err();
        assert!(e.contains("not a YAML mapping"), "{e}");
    }

    #[test]
    fn markdown_answers_start_at_their_labels() {
        let text = "# Homework 2\n\n1. 40 URLs\n2) MX, because\nthe mail server is named by it\n\n**3.** yes\n## 4\n- a\n- b\nurls: 41\nNote: ignore me\nQ5:\n```\nC: list\nS: +OK 2 messages\n```\n";
        let a = read("answers.md", text, &known()).unwrap();
        let got: Vec<(&str, &str, usize)> = a
            .iter()
            .map(|a| (a.label.as_str(), a.text.as_str(), a.line))
            .collect();
        assert_eq!(
            got,
            [
                ("1", "40 URLs", 3),
                ("2", "MX, because\nthe mail server is named by it", 4),
                ("3", "yes", 7),
                ("4", "- a\n- b", 8),
                ("urls", "41\nNote: ignore me", 11),
                ("5", "C: list\nS: +OK 2 messages", 13),
            ]
        );
        assert_eq!(a[3].items, ["a", "b"]);
    }
}
