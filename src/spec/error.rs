//! Spec errors with file, line and column, rendered rustc-style.

use std::fmt;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// An error in a lab spec, located in its source text.
#[derive(Debug, Clone)]
pub struct SpecError {
    /// File name as given (or `<builtin>/NAME.yaml`).
    pub path: String,
    /// The whole YAML text.
    pub source: String,
    /// 1-based line; 0 when unknown.
    pub line: usize,
    /// 1-based column; 0 when unknown.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when netgrade can tell.
    pub help: Option<String>,
}

impl SpecError {
    /// A new error at `line:column` of `source`.
    pub fn new(
        path: &str,
        source: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            path: path.to_string(),
            source: source.to_string(),
            line,
            column,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a suggestion.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the suggestion of an error already recorded.
    pub fn set_help(&mut self, help: impl Into<String>) {
        self.help = Some(help.into());
    }

    /// Byte range of the token at the error position, for highlighting.
    fn span(&self) -> Option<std::ops::Range<usize>> {
        if self.line == 0 {
            return None;
        }
        let start_of_line: usize = self
            .source
            .split_inclusive('\n')
            .take(self.line - 1)
            .map(str::len)
            .sum();
        let line_text = self.source[start_of_line..].lines().next().unwrap_or("");
        let col_byte = line_text
            .char_indices()
            .nth(self.column.saturating_sub(1))
            .map(|(i, _)| i)
            .unwrap_or(line_text.len());
        let rest = &line_text[col_byte..];
        let len = rest.find([':', ',', '}', ']', '#']).unwrap_or(rest.len());
        let len = rest[..len].trim_end().len().max(1);
        let start = start_of_line + col_byte;
        Some(start..(start + len).min(self.source.len()))
    }

    /// Renders the error with a source snippet, coloured when `color` is set.
    pub fn render(&self, color: bool) -> String {
        self.render_at(
            Level::ERROR,
            format!("invalid lab spec: {}", self.message),
            color,
        )
    }

    /// Renders it as a warning: the same snippet, titled `warning:`.
    pub fn render_warning(&self, color: bool) -> String {
        self.render_at(Level::WARNING, self.message.clone(), color)
    }

    fn render_at(&self, level: Level<'_>, title: String, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut group = Group::with_title(level.primary_title(title));
        match self.span() {
            Some(span) if !self.source.is_empty() => {
                group = group.element(
                    Snippet::source(self.source.as_str())
                        .path(self.path.as_str())
                        .fold(true)
                        .annotation(AnnotationKind::Primary.span(span)),
                );
            }
            _ => {
                group = group.element(Level::NOTE.message(format!("in {}", self.path)));
            }
        }
        if let Some(help) = &self.help {
            group = group.element(Level::HELP.message(help.as_str()));
        }
        renderer.render(&[group])
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for SpecError {}

/// Every error found in one spec file, in the order of their lines.
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// Renders each error with its snippet, and a count when there are several.
    pub fn render(&self, color: bool) -> String {
        let mut out: Vec<String> = self.0.iter().map(|e| e.render(color)).collect();
        if self.0.len() > 1 {
            let path = self.0.first().map(|e| e.path.as_str()).unwrap_or("");
            out.push(format!(
                "{} errors in {path}; fix them all and run `netgrade validate` again\n",
                self.0.len()
            ));
        }
        out.join("\n")
    }

    /// The errors, sorted by position (errors without one first).
    pub fn sorted(mut errors: Vec<SpecError>) -> Self {
        errors.sort_by_key(|e| (e.line, e.column));
        SpecErrors(errors)
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for SpecErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_snippet_pointing_at_the_token() {
        let src = "name: x\ntitle: y\nbogus: 3\n";
        let e =
            SpecError::new("lab.yaml", src, 3, 1, "unknown field `bogus`").with_help("remove it");
        let text = e.render(false);
        assert!(text.contains("lab.yaml:3:1"), "{text}");
        assert!(text.contains("bogus: 3"), "{text}");
        assert!(text.contains("^^^^^"), "{text}");
        assert!(text.contains("help: remove it"), "{text}");
        assert_eq!(e.to_string(), "lab.yaml:3:1: unknown field `bogus`");
    }
}
