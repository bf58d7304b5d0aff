//! The YAML of a lab spec as a tree whose every node knows its line and
//! column, so that every error, not only the first, can point at its value.
//!
//! Scalars are typed as YAML 1.2's core schema types them (what serde-saphyr
//! deserializes): plain `12000` is an integer, quoted `"12000"` a string.
//! Anchors, aliases and `<<` merge keys are resolved.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};

/// A node with its position (1-based line and column).
#[derive(Clone, Debug)]
pub struct Node {
    /// What the node holds.
    pub value: Value,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// A mapping key with its position.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's text.
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The contents of a node.
#[derive(Clone, Debug)]
pub enum Value {
    /// A mapping, in source order.
    Map(Vec<(Key, Node)>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A scalar: its text and its type.
    Scalar(String, Scalar),
}

/// The type of a scalar under YAML 1.2's core schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Int,
    /// A number with a fraction or exponent.
    Float,
    /// Text (every quoted or block scalar, and plain text).
    Str,
    /// Plain text that would be a number if it were not quoted (`"12000"`).
    QuotedNumber,
}

/// One step of a path into the tree.
#[derive(Clone, Copy, Debug)]
pub enum Step<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

/// A YAML syntax error.
#[derive(Debug)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser said.
    pub message: String,
}

/// A problem found while building the tree that does not stop it (a key given twice).
#[derive(Debug)]
pub struct Duplicate {
    /// The key given again.
    pub key: Key,
    /// The line where it was first given.
    pub first_line: usize,
}

impl Node {
    /// The node at `path`, if there is one.
    pub fn get(&self, path: &[Step]) -> Option<&Node> {
        let Some((first, rest)) = path.split_first() else {
            return Some(self);
        };
        let next = match (first, &self.value) {
            (Step::Key(k), Value::Map(entries)) => {
                entries.iter().find(|(key, _)| key.text == *k).map(|e| &e.1)
            }
            (Step::Index(i), Value::Seq(items)) => items.get(*i),
            _ => None,
        }?;
        next.get(rest)
    }

    /// The entry of key `k` in this mapping.
    pub fn entry(&self, k: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(key, _)| key.text == k)
                .map(|(a, b)| (a, b)),
            _ => None,
        }
    }

    /// Whether the node is `null` (written so, or empty).
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Scalar(_, Scalar::Null))
    }
}

/// Parses `text` into a tree; also returns keys given twice in one mapping.
pub fn parse(text: &str) -> Result<(Option<Node>, Vec<Duplicate>), SyntaxError> {
    let mut builder = Builder {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        duplicates: Vec::new(),
    };
    let mut root = None;
    while let Some((event, span)) = builder.next()? {
        match event {
            Event::StreamStart | Event::DocumentStart(..) | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            _ if root.is_some() => {
                return Err(SyntaxError {
                    line: span.start.line(),
                    column: span.start.col() + 1,
                    message: "a lab file holds one YAML document; this is a second one".into(),
                });
            }
            event => root = Some(builder.node(event, span)?),
        }
    }
    Ok((root, builder.duplicates))
}

struct Builder<'a> {
    events: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    duplicates: Vec<Duplicate>,
}

type Parsed<'a> = Option<(Event<'a>, Span)>;

impl<'a> Builder<'a> {
    /// The next event that is data (comments and anchor names are not).
    fn next(&mut self) -> Result<Parsed<'a>, SyntaxError> {
        loop {
            return match self.events.next() {
                None => Ok(None),
                Some(Ok((Event::Comment(..) | Event::Anchor(..), _))) => continue,
                Some(Ok((event, span))) => Ok(Some((event, span))),
                Some(Err(e)) => Err(syntax(&e)),
            };
        }
    }

    /// The next event, which must exist inside a collection.
    fn next_inner(&mut self, span: &Span) -> Result<(Event<'a>, Span), SyntaxError> {
        self.next()?.ok_or_else(|| SyntaxError {
            line: span.start.line(),
            column: span.start.col() + 1,
            message: "the file ends inside this collection".into(),
        })
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, SyntaxError> {
        let (line, column) = (span.start.line(), span.start.col() + 1);
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let kind = if tag.is_some() {
                    Scalar::Str
                } else {
                    scalar_type(&text, style)
                };
                (Value::Scalar(text.into_owned(), kind), anchor)
            }
            Event::SequenceStart(_, anchor, _) => (Value::Seq(self.items(&span)?), anchor),
            Event::MappingStart(_, anchor, _) => (Value::Map(self.entries(&span)?), anchor),
            Event::Alias(id) => {
                let mut node = self.anchors.get(&id).cloned().ok_or(SyntaxError {
                    line,
                    column,
                    message: "this alias names no anchor defined before it".into(),
                })?;
                node.line = line;
                node.column = column;
                return Ok(node);
            }
            _ => {
                return Err(SyntaxError {
                    line,
                    column,
                    message: "unexpected YAML here".into(),
                });
            }
        };
        let node = Node {
            value,
            line,
            column,
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn items(&mut self, span: &Span) -> Result<Vec<Node>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let (event, at) = self.next_inner(span)?;
            if matches!(event, Event::SequenceEnd) {
                return Ok(items);
            }
            items.push(self.node(event, at)?);
        }
    }

    fn entries(&mut self, span: &Span) -> Result<Vec<(Key, Node)>, SyntaxError> {
        let mut entries: Vec<(Key, Node)> = Vec::new();
        let mut merged: Vec<(Key, Node)> = Vec::new();
        loop {
            let (event, at) = self.next_inner(span)?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key_node = self.node(event, at)?;
            let Value::Scalar(text, _) = key_node.value else {
                return Err(SyntaxError {
                    line: key_node.line,
                    column: key_node.column,
                    message: "a key here must be a plain name, not a list or a mapping".into(),
                });
            };
            let key = Key {
                text,
                line: key_node.line,
                column: key_node.column,
            };
            let (event, at) = self.next_inner(span)?;
            let value = self.node(event, at)?;
            if key.text == "<<" {
                merged.extend(merge_sources(value));
                continue;
            }
            if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == key.text) {
                self.duplicates.push(Duplicate {
                    first_line: first.line,
                    key,
                });
                continue;
            }
            entries.push((key, value));
        }
        for (key, value) in merged {
            if !entries.iter().any(|(k, _)| k.text == key.text) {
                entries.push((key, value));
            }
        }
        Ok(entries)
    }
}

/// The entries a `<<` merge key brings: a mapping's, or each of a list of mappings'.
fn merge_sources(value: Node) -> Vec<(Key, Node)> {
    match value.value {
        Value::Map(entries) => entries,
        Value::Seq(items) => items
            .into_iter()
            .flat_map(|n| match n.value {
                Value::Map(entries) => entries,
                _ => Vec::new(),
            })
            .collect(),
        Value::Scalar(..) => Vec::new(),
    }
}

fn syntax(e: &ScanError) -> SyntaxError {
    let marker = e.marker();
    let full = e.to_string();
    let message = match full.find(" at ") {
        Some(i) if full[i..].contains("line") => full[..i].to_string(),
        _ => full,
    };
    SyntaxError {
        line: marker.line().max(1),
        column: marker.col() + 1,
        message,
    }
}

/// The core-schema type of a scalar written with `style`.
pub fn scalar_type(text: &str, style: ScalarStyle) -> Scalar {
    let plain = match style {
        ScalarStyle::Plain => true,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => false,
        _ => return Scalar::Str,
    };
    let looks = if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        Scalar::Null
    } else if matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE") {
        Scalar::Bool
    } else if is_int(text) {
        Scalar::Int
    } else if is_float(text) {
        Scalar::Float
    } else {
        Scalar::Str
    };
    match (plain, looks) {
        (true, t) => t,
        (false, Scalar::Int | Scalar::Float) => Scalar::QuotedNumber,
        (false, _) => Scalar::Str,
    }
}

fn is_int(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if let Some(hex) = t.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| ('0'..='7').contains(&c));
    }
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
}

fn is_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") || matches!(t, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = digits(whole) && digits(frac) && !(whole.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (mantissa.contains('.') || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        parse(text).expect("parses").0.expect("a document")
    }

    #[test]
    fn nodes_know_their_line_and_column() {
        let t = tree("name: x\nservers:\n  - name: pinger\n    port: 12000\n");
        let port = t
            .get(&[Step::Key("servers"), Step::Index(0), Step::Key("port")])
            .unwrap();
        assert_eq!((port.line, port.column), (4, 11));
        assert!(matches!(port.value, Value::Scalar(ref s, Scalar::Int) if s == "12000"));
        let (key, _) = t.entry("servers").unwrap();
        assert_eq!((key.line, key.column), (2, 1));
    }

    #[test]
    fn scalars_are_typed_as_yaml_types_them() {
        use ScalarStyle::*;
        assert_eq!(scalar_type("12000", Plain), Scalar::Int);
        assert_eq!(scalar_type("12000", DoubleQuoted), Scalar::QuotedNumber);
        assert_eq!(scalar_type("0.3", Plain), Scalar::Float);
        assert_eq!(scalar_type("1e3", Plain), Scalar::Float);
        assert_eq!(scalar_type("-5", Plain), Scalar::Int);
        assert_eq!(scalar_type("three", Plain), Scalar::Str);
        assert_eq!(scalar_type("", Plain), Scalar::Null);
        assert_eq!(scalar_type("true", Plain), Scalar::Bool);
        assert_eq!(scalar_type("20s", Plain), Scalar::Str);
        assert_eq!(scalar_type("1.2.3", Plain), Scalar::Str);
        assert_eq!(scalar_type(".", Plain), Scalar::Str);
    }

    #[test]
    fn duplicates_are_reported_and_merges_resolved() {
        let (t, dups) = parse("a: &base {x: 1}\nb:\n  <<: *base\n  y: 2\na: 3\n").unwrap();
        let t = t.unwrap();
        assert_eq!(dups.len(), 1);
        assert_eq!((dups[0].key.line, dups[0].first_line), (5, 1));
        assert!(t.get(&[Step::Key("b"), Step::Key("x")]).is_some());
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        assert!(!e.message.contains(" at line"), "{e:?}");
    }
}
