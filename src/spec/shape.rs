//! The shape of a spec: its YAML tree walked against the lab schema, every
//! problem collected with its position, what was expected and an example.
//!
//! Unknown fields get "did you mean"; a field indented under the wrong
//! parent is named as misindented (and its parent's "missing field" and
//! "is empty" are not charged again); quoted numbers, out-of-range numbers
//! and text where a number belongs say how to write the value.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::tree::{Node, Scalar, Value as Yaml};
use super::{Dur, Size};

/// A problem with the spec's shape, at a position in its text.
#[derive(Debug, Clone)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// What the walk found.
pub struct Checked {
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
    /// The spec as JSON without the values at fault, required fields filled
    /// with the schema's examples: what the rules can still be checked on.
    pub repaired: Value,
    /// Whether a filled-in value is one that rules depend on (a server or
    /// check kind, a role): then rule errors would be guesses.
    pub guessed: bool,
}

/// Walks `root` against `schema` (the lab schema), returning every problem.
pub fn check(root: &Node, schema: &Value) -> Checked {
    let mut walker = Walker {
        root: schema,
        out: Vec::new(),
        pending_up: HashSet::new(),
        bad: HashSet::new(),
        guessed: false,
    };
    let field = Field {
        key: String::new(),
        item: false,
        example: None,
        at: (root.line, root.column),
    };
    walker.walk(root, schema, &field, &Context::default());
    let repaired = walker.repair(root, schema).unwrap_or(Value::Null);
    Checked {
        problems: walker.out,
        repaired,
        guessed: walker.guessed,
    }
}

/// A node's identity, for marking it bad.
fn addr(node: &Node) -> usize {
    std::ptr::from_ref(node) as usize
}

struct Walker<'s> {
    root: &'s Value,
    out: Vec<Problem>,
    /// Nodes whose value is at fault, left out of the repaired spec.
    bad: HashSet<usize>,
    /// Whether the repair invented a kind or role.
    guessed: bool,
    /// Fields the object just walked holds that belong to its parent.
    pending_up: HashSet<String>,
}

/// Where a value sits: its key (or the list it is an item of), the field's
/// example, and the position to blame when the value itself has none.
#[derive(Clone)]
struct Field {
    key: String,
    item: bool,
    example: Option<Value>,
    at: (usize, usize),
}

impl Field {
    /// `port`, or `each entry of drop`, for messages.
    fn name(&self) -> String {
        if self.item {
            format!("each entry of `{}`", self.key)
        } else {
            format!("`{}`", self.key)
        }
    }

    fn example_text(&self) -> Option<String> {
        let example = self.example.as_ref()?;
        Some(if self.item || self.key.is_empty() {
            inline(example)
        } else {
            format!("{}: {}", self.key, inline(example))
        })
    }
}

/// What the enclosing mapping knows: fields that belong to it but sit in
/// a child (a child's walk reports them), and fields a child must not
/// claim as missing because they sit misindented next to it.
#[derive(Default)]
struct Context<'s> {
    parent: Option<(&'s Map<String, Value>, HashSet<String>, String)>,
    expected_elsewhere: HashSet<String>,
}

impl<'s> Walker<'s> {
    fn problem(&mut self, at: (usize, usize), message: String, help: Option<String>) {
        self.out.push(Problem {
            line: at.0,
            column: at.1,
            message,
            help,
        });
    }

    /// The schema a `$ref` names, or the schema itself.
    fn resolve(&self, schema: &'s Value) -> (&'s Value, Option<&'s str>) {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.trim_start_matches("#/$defs/");
                (&self.root["$defs"][name], Some(name))
            }
            None => (schema, None),
        }
    }

    fn walk(&mut self, node: &Node, schema: &'s Value, field: &Field, cx: &Context<'s>) {
        let (target, def) = self.resolve(schema);
        let mut field = field.clone();
        if field.example.is_none() {
            field.example = schema.get("examples").and_then(|e| e.get(0)).cloned();
        }
        match def {
            Some("Duration") => return self.scalar_with(node, &field, "a duration", Dur::parse),
            Some("Size") => {
                return self.scalar_with(node, &field, "a size", |s| Size::parse(s).map(|_| ()));
            }
            _ => {}
        }
        if let Some(branches) = target
            .get("anyOf")
            .or_else(|| target.get("oneOf"))
            .and_then(Value::as_array)
        {
            return self.alternatives(node, branches, def, &field, cx);
        }
        self.typed(node, target, def, &field, cx);
    }

    fn alternatives(
        &mut self,
        node: &Node,
        branches: &'s [Value],
        def: Option<&str>,
        field: &Field,
        cx: &Context<'s>,
    ) {
        let consts: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("const").and_then(Value::as_str))
            .collect();
        if consts.len() == branches.len() {
            return self.one_of(node, &consts, def, field);
        }
        let is_null = |b: &&Value| b.get("type").and_then(Value::as_str) == Some("null");
        if node.is_null() && branches.iter().any(|b| is_null(&b)) {
            return;
        }
        let rest: Vec<&Value> = branches.iter().filter(|b| !is_null(b)).collect();
        if let [only] = rest.as_slice() {
            self.walk(node, only, field, cx);
        }
    }

    fn one_of(&mut self, node: &Node, values: &[&str], def: Option<&str>, field: &Field) {
        let noun = match def {
            Some("ServerKind") => "server kind",
            Some("CheckKind") => "check kind",
            Some("Role") => "role",
            Some("DnsType") => "record type netgrade serves",
            _ => "value",
        };
        let text = match &node.value {
            Yaml::Scalar(t, _) => t.as_str(),
            _ => "",
        };
        if values.contains(&text) {
            return;
        }
        self.bad.insert(addr(node));
        let message = if text.is_empty() {
            format!("{} is empty; it names a {noun}", field.name())
        } else {
            let near = closest(text, values.iter().copied())
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            format!("`{text}` is not a {noun}{near}")
        };
        self.problem(
            (node.line, node.column),
            message,
            Some(format!("write one of: {}", values.join(", "))),
        );
    }

    /// A duration or size: a scalar that `parse` accepts.
    fn scalar_with<T>(
        &mut self,
        node: &Node,
        field: &Field,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) {
        let Yaml::Scalar(text, kind) = &node.value else {
            return self.wrong_type(node, field, what);
        };
        if *kind == Scalar::Null || *kind == Scalar::Bool {
            return self.wrong_type(node, field, what);
        }
        if let Err(e) = parse(text) {
            self.bad.insert(addr(node));
            let help = field.example_text().map(|e| format!("e.g. `{e}`"));
            self.problem(
                (node.line, node.column),
                format!("{}: {e}", field.name()),
                help,
            );
        }
    }

    fn typed(
        &mut self,
        node: &Node,
        schema: &'s Value,
        def: Option<&str>,
        field: &Field,
        cx: &Context<'s>,
    ) {
        let types = types_of(schema);
        let actual = type_of(node);
        let fits = types.is_empty()
            || types
                .iter()
                .any(|t| *t == actual || (*t == "number" && actual == "integer"));
        if !fits {
            self.bad.insert(addr(node));
            if actual == "null" && !cx.expected_elsewhere.is_empty() {
                return; // `program:` left empty, its fields misindented below: charged there.
            }
            let expected = describe(schema, &types);
            return self.wrong_type(node, field, &expected);
        }
        match &node.value {
            Yaml::Map(entries) => self.object(node, entries, schema, def, field, cx),
            Yaml::Seq(items) => self.array(items, schema, field),
            Yaml::Scalar(text, kind) => self.scalar(node, text, *kind, schema, field),
        }
    }

    fn wrong_type(&mut self, node: &Node, field: &Field, expected: &str) {
        self.bad.insert(addr(node));
        let shown = shown(node);
        let name = field.name();
        let (message, help) = match &node.value {
            Yaml::Scalar(t, Scalar::QuotedNumber) => (
                format!("{name} is a number, but `{shown}` is text in quotes"),
                Some(format!(
                    "write it without quotes: `{}`",
                    field_line(field, t)
                )),
            ),
            Yaml::Scalar(t, Scalar::Int | Scalar::Float | Scalar::Bool) if expected == "text" => (
                format!(
                    "{name} is text, but `{shown}` reads as a {}",
                    yaml_word(node)
                ),
                Some(format!(
                    "put it in quotes: `{}`",
                    field_line(field, &format!("\"{t}\""))
                )),
            ),
            Yaml::Scalar(_, Scalar::Null) => (
                format!("{name} is empty; it must be {expected}"),
                field.example_text().map(|e| format!("e.g. `{e}`")),
            ),
            _ => (
                format!("{name} must be {expected}, not {}", yaml_word(node)),
                field.example_text().map(|e| format!("e.g. `{e}`")),
            ),
        };
        let at = if node.is_null() {
            field.at
        } else {
            (node.line, node.column)
        };
        self.problem(at, message, help);
    }

    fn scalar(&mut self, node: &Node, text: &str, kind: Scalar, schema: &Value, field: &Field) {
        let at = (node.line, node.column);
        let before = self.out.len();
        match kind {
            Scalar::Int | Scalar::Float => self.number(node, text, schema, field),
            Scalar::Str | Scalar::QuotedNumber => {
                let min_len = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                let blank = schema.get("pattern").and_then(Value::as_str) == Some("\\S");
                if (text.chars().count() as u64) < min_len || (blank && text.trim().is_empty()) {
                    return self.problem(at, format!("{} is empty", field.name()), None);
                }
                if schema.get("format").and_then(Value::as_str) == Some("regex")
                    && let Err(e) = regex::Regex::new(text)
                {
                    let first = e.to_string();
                    let last = first.lines().last().unwrap_or("").trim().to_string();
                    return self.problem(
                        at,
                        format!("{} is not a valid regular expression: {last}", field.name()),
                        Some("netgrade uses Rust's `regex` syntax (no look-around or backreferences); escape `(`, `[`, `.` and `\\` to match them".into()),
                    );
                }
                if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                    && p != "\\S"
                    && regex::Regex::new(p).is_ok_and(|re| !re.is_match(text))
                {
                    let (message, help) = match field.key.as_str() {
                        "python_packages" => (
                            format!("`{text}` is not a Python package requirement"),
                            Some("write a package name, optionally with versions: `numpy`, `numpy==1.26.4`, `scipy>=1.11,<2` (no URLs, options or markers)".to_string()),
                        ),
                        _ => (
                            format!("`{text}` is not in the form {} takes", field.name()),
                            field.example_text().map(|e| format!("e.g. `{e}`")),
                        ),
                    };
                    self.problem(at, message, help);
                }
            }
            Scalar::Null | Scalar::Bool => {}
        }
        if self.out.len() > before {
            self.bad.insert(addr(node));
        }
    }

    fn number(&mut self, node: &Node, text: &str, schema: &Value, field: &Field) {
        let Some(value) = parse_number(text) else {
            return;
        };
        let (min, max, exclusive) = bounds(schema);
        let below = min.is_some_and(|m| if exclusive { value <= m } else { value < m });
        let above = max.is_some_and(|m| value > m);
        let whole = types_of(schema).contains(&"integer") && value.fract() != 0.0;
        if !(below || above || whole || !value.is_finite()) {
            return;
        }
        self.bad.insert(addr(node));
        let types = types_of(schema);
        let message = format!(
            "{} must be {}; `{}` is {}",
            field.name(),
            describe(schema, &types),
            text,
            if whole {
                "not a whole number"
            } else {
                "out of range"
            }
        );
        let help = field.example_text().map(|e| format!("e.g. `{e}`"));
        self.problem((node.line, node.column), message, help);
    }

    fn array(&mut self, items: &[Node], schema: &'s Value, field: &Field) {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        if (items.len() as u64) < min {
            let help = field.example_text().map(|e| format!("e.g. `{e}`"));
            self.problem(
                field.at,
                format!("{} is an empty list; give at least {min}", field.name()),
                help,
            );
        }
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        let example = field
            .example
            .as_ref()
            .and_then(|e| e.get(0))
            .cloned()
            .or_else(|| item_schema.get("examples").and_then(|e| e.get(0)).cloned());
        for item in items {
            let inner = Field {
                key: field.key.clone(),
                item: true,
                example: example.clone(),
                at: (item.line, item.column),
            };
            self.walk(item, item_schema, &inner, &Context::default());
            self.pending_up.clear();
        }
    }

    fn object(
        &mut self,
        node: &Node,
        entries: &[(super::tree::Key, Node)],
        schema: &'s Value,
        def: Option<&str>,
        field: &Field,
        cx: &Context<'s>,
    ) {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&EMPTY);
        let extra = schema.get("additionalProperties");
        // The document itself is named by its schema's title (the lab, or a zone file).
        let root_title = self.root.get("title").and_then(Value::as_str);
        let what = object_noun(def.or(root_title.filter(|_| field.key.is_empty())), field);
        let present: HashSet<String> = entries.iter().map(|(k, _)| k.text.clone()).collect();
        let moved_down = self.misplaced_into_previous(entries, props, extra);
        let mut moved_up = HashSet::new();
        let mut up = HashSet::new();
        let mut suggested = HashSet::new();
        for (i, (key, value)) in entries.iter().enumerate() {
            let at = (key.line, key.column);
            let inner = Field {
                key: key.text.clone(),
                item: false,
                example: None,
                at,
            };
            let child_cx = Context {
                parent: Some((props, present.clone(), what.clone())),
                expected_elsewhere: moved_down
                    .iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, k)| k.clone())
                    .collect(),
            };
            if let Some(prop) = props.get(&key.text) {
                self.walk(value, prop, &inner, &child_cx);
                moved_up.extend(std::mem::take(&mut self.pending_up));
                continue;
            }
            match extra {
                Some(Value::Bool(false)) => {
                    self.bad.insert(addr(value));
                }
                Some(s @ Value::Object(_)) => {
                    self.walk(value, s, &inner, &child_cx);
                    self.pending_up.clear();
                    continue;
                }
                _ => continue,
            }
            if let Some(owner) = previous_owner(entries, i, &key.text, props, self) {
                self.problem(
                    at,
                    format!(
                        "`{}` is not a field of {what}; it belongs to `{owner}` above",
                        key.text
                    ),
                    Some(format!(
                        "indent it under `{owner}:`, in line with that mapping's other fields"
                    )),
                );
            } else if let Some((parent_props, parent_present, parent_what)) = &cx.parent
                && parent_props.contains_key(&key.text)
                && !parent_present.contains(&key.text)
            {
                up.insert(key.text.clone());
                self.problem(
                    at,
                    format!(
                        "`{}` is indented into {what}, but it is a field of {parent_what}",
                        key.text
                    ),
                    Some(format!("move it left, in line with `{}:`", field.key)),
                );
            } else {
                let near = closest(&key.text, props.keys().map(String::as_str));
                suggested.extend(near.map(String::from));
                let near = near
                    .map(|c| format!("; did you mean `{c}`?"))
                    .unwrap_or_default();
                let fields: Vec<&str> = props.keys().map(String::as_str).collect();
                self.problem(
                    at,
                    format!("unknown field `{}` in {what}{near}", key.text),
                    Some(format!("{what} has: {}", fields.join(", "))),
                );
            }
        }
        moved_up.extend(suggested);
        moved_up.extend(cx.expected_elsewhere.iter().cloned());
        let at = if field.key.is_empty() && !field.item {
            (node.line, node.column)
        } else {
            field.at
        };
        self.required(at, schema, entries, &what, &moved_up);
        self.pending_up = up;
    }

    /// `(index of the entry, key)` for keys that belong to the entry before them.
    fn misplaced_into_previous(
        &self,
        entries: &[(super::tree::Key, Node)],
        props: &'s Map<String, Value>,
        extra: Option<&Value>,
    ) -> Vec<(usize, String)> {
        if !matches!(extra, Some(Value::Bool(false))) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for i in 1..entries.len() {
            let key = &entries[i].0.text;
            if props.contains_key(key) {
                continue;
            }
            if previous_owner(entries, i, key, props, self).is_some() {
                out.push((i - 1, key.clone()));
            }
        }
        out
    }

    /// Reports required fields that are missing, except those in `skip`
    /// (given elsewhere, misindented or misspelt: charged there).
    fn required(
        &mut self,
        at: (usize, usize),
        schema: &Value,
        entries: &[(super::tree::Key, Node)],
        what: &str,
        skip: &HashSet<String>,
    ) {
        let Some(required) = schema.get("required").and_then(Value::as_array) else {
            return;
        };
        for r in required.iter().filter_map(Value::as_str) {
            if entries.iter().any(|(k, _)| k.text == r) || skip.contains(r) {
                continue;
            }
            let example = schema["properties"][r]
                .get("examples")
                .and_then(|e| e.get(0))
                .map(|e| format!("e.g. `{r}: {}`", inline(e)));
            let about = schema["properties"][r]
                .get("description")
                .and_then(Value::as_str)
                .and_then(|d| d.split(['.', '\n']).next())
                .map(|d| format!("`{r}`: {d}"));
            let help = [about, example]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            self.problem(
                at,
                format!("{what} has no `{r}`"),
                (!help.is_empty()).then_some(help),
            );
        }
    }

    /// `node` as JSON, without the values marked bad, required fields filled in.
    fn repair(&mut self, node: &Node, schema: &'s Value) -> Option<Value> {
        if self.bad.contains(&addr(node)) {
            return None;
        }
        let target = self.concrete(schema, node.is_null());
        match &node.value {
            Yaml::Map(entries) => {
                let props = target.get("properties").and_then(Value::as_object);
                let extra = target.get("additionalProperties").filter(|e| e.is_object());
                let mut out = Map::new();
                for (key, value) in entries {
                    let sub = props.and_then(|p| p.get(&key.text)).or(extra);
                    if let Some(sub) = sub
                        && let Some(json) = self.repair(value, sub)
                    {
                        out.insert(key.text.clone(), json);
                    }
                }
                self.fill_required(&mut out, target);
                Some(Value::Object(out))
            }
            Yaml::Seq(items) => {
                let item = target.get("items").unwrap_or(&Value::Bool(true));
                Some(Value::Array(
                    items.iter().filter_map(|i| self.repair(i, item)).collect(),
                ))
            }
            Yaml::Scalar(text, kind) => Some(scalar_json(text, *kind)),
        }
    }

    /// The schema a value is checked against: `$ref` followed, a nullable
    /// alternative narrowed to its non-null branch.
    fn concrete(&self, schema: &'s Value, null: bool) -> &'s Value {
        let (target, _) = self.resolve(schema);
        let branches = target.get("anyOf").and_then(Value::as_array);
        match branches {
            Some(b) if !null => b
                .iter()
                .find(|x| x.get("type").and_then(Value::as_str) != Some("null"))
                .map_or(target, |x| self.concrete(x, null)),
            _ => target,
        }
    }

    fn fill_required(&mut self, out: &mut Map<String, Value>, schema: &'s Value) {
        let Some(required) = schema.get("required").and_then(Value::as_array) else {
            return;
        };
        for r in required.iter().filter_map(Value::as_str) {
            if !out.contains_key(r) {
                let prop = &schema["properties"][r];
                let value = self.placeholder(prop);
                out.insert(r.to_string(), value);
            }
        }
    }

    /// A valid value for a required field that was missing or at fault.
    fn placeholder(&mut self, schema: &'s Value) -> Value {
        if let Some(example) = schema.get("examples").and_then(|e| e.get(0)) {
            return example.clone();
        }
        let (target, def) = self.resolve(schema);
        match def {
            Some("Duration") => return Value::String("1s".into()),
            Some("Size") => return Value::from(1024),
            _ => {}
        }
        if let Some(first) = target
            .get("oneOf")
            .and_then(Value::as_array)
            .and_then(|b| b.first())
            .and_then(|b| b.get("const"))
        {
            self.guessed = true;
            return first.clone();
        }
        match types_of(target).first().copied() {
            Some("integer" | "number") => {
                Value::from(bounds(target).0.unwrap_or(0.0).max(0.0) as u64 + 1)
            }
            Some("boolean") => Value::Bool(false),
            Some("array") => Value::Array(Vec::new()),
            Some("object") => {
                let mut out = Map::new();
                self.fill_required(&mut out, target);
                Value::Object(out)
            }
            _ => Value::String("x".into()),
        }
    }

    /// The properties of the objects a schema describes (or its items describe).
    fn props_of(&self, schema: &'s Value) -> Option<&'s Map<String, Value>> {
        let (target, _) = self.resolve(schema);
        if let Some(branches) = target.get("anyOf").and_then(Value::as_array) {
            return branches.iter().find_map(|b| self.props_of(b));
        }
        if let Some(p) = target.get("properties").and_then(Value::as_object) {
            return Some(p);
        }
        target.get("items").and_then(|i| self.props_of(i))
    }
}

/// The key of the entry before `i` whose value takes field `key`.
fn previous_owner(
    entries: &[(super::tree::Key, Node)],
    i: usize,
    key: &str,
    props: &Map<String, Value>,
    walker: &Walker<'_>,
) -> Option<String> {
    let (prev_key, prev_value) = entries.get(i.checked_sub(1)?)?;
    let prop = props.get(&prev_key.text)?;
    let inner = walker.props_of(prop)?;
    let takes = inner.contains_key(key);
    let already = prev_value.entry(key).is_some()
        || matches!(&prev_value.value, Yaml::Seq(items) if items.last().is_some_and(|n| n.entry(key).is_some()));
    (takes && !already).then(|| prev_key.text.clone())
}

fn object_noun(def: Option<&str>, field: &Field) -> String {
    match def {
        Some("Lab") => "the lab".into(),
        Some("ServerSpec") => "a server".into(),
        Some("CheckSpec") => "a check".into(),
        Some("ProbeSpec") => "a probe".into(),
        Some("InjectSpec") => "an `inject` entry".into(),
        Some("Redaction") => "a redaction".into(),
        Some("ZoneSpec") => "a zone".into(),
        Some("ZoneFile") => "the zone file".into(),
        Some("RecordSpec") => "a record".into(),
        Some("DnsFaults") => "`faults`".into(),
        _ if field.key.is_empty() => "the lab".into(),
        _ => format!("`{}`", field.key),
    }
}

fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn type_of(node: &Node) -> &'static str {
    match &node.value {
        Yaml::Map(_) => "object",
        Yaml::Seq(_) => "array",
        Yaml::Scalar(_, Scalar::Null) => "null",
        Yaml::Scalar(_, Scalar::Bool) => "boolean",
        Yaml::Scalar(_, Scalar::Int) => "integer",
        Yaml::Scalar(_, Scalar::Float) => "number",
        Yaml::Scalar(_, Scalar::Str | Scalar::QuotedNumber) => "string",
    }
}

/// What a value of this kind is, in words: `text`, `a list`, `a number`.
fn yaml_word(node: &Node) -> &'static str {
    match &node.value {
        Yaml::Map(_) => "a mapping",
        Yaml::Seq(_) => "a list",
        Yaml::Scalar(_, Scalar::Null) => "empty",
        Yaml::Scalar(_, Scalar::Bool) => "true or false",
        Yaml::Scalar(_, Scalar::Int | Scalar::Float) => "number",
        Yaml::Scalar(_, Scalar::Str | Scalar::QuotedNumber) => "text",
    }
}

/// What a schema expects, in words: `a whole number from 0 to 65535`.
fn describe(schema: &Value, types: &[&str]) -> String {
    let (min, max, exclusive) = bounds(schema);
    let range = |noun: &str| match (min, max) {
        (Some(a), Some(b)) => format!("{noun} from {} to {}", fmt(a), fmt(b)),
        (Some(a), None) if exclusive => format!("{noun} above {}", fmt(a)),
        (Some(a), None) => format!("{noun}, {} or more", fmt(a)),
        (None, Some(b)) => format!("{noun}, at most {}", fmt(b)),
        (None, None) => noun.to_string(),
    };
    let words: Vec<String> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "integer" => range("a whole number"),
            "number" => range("a number"),
            "string" => "text".to_string(),
            "boolean" => "`true` or `false`".to_string(),
            "array" => "a list".to_string(),
            "object" => "a mapping of fields".to_string(),
            other => other.to_string(),
        })
        .collect();
    if words.is_empty() {
        "a value".into()
    } else {
        words.join(" or ")
    }
}

fn fmt(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Minimum, maximum and whether the minimum is exclusive, with the ranges
/// schemars's integer formats imply.
fn bounds(schema: &Value) -> (Option<f64>, Option<f64>, bool) {
    let get = |k: &str| schema.get(k).and_then(Value::as_f64);
    let implied = match schema.get("format").and_then(Value::as_str) {
        Some("uint16") => (Some(0.0), Some(65535.0)),
        Some("uint32") => (Some(0.0), Some(4294967295.0)),
        Some("uint64") => (Some(0.0), Some(18446744073709551615.0)),
        Some("int32") => (Some(-2147483648.0), Some(2147483647.0)),
        _ => (None, None),
    };
    let exclusive = get("exclusiveMinimum");
    let min = exclusive.or(get("minimum")).or(implied.0);
    let max = get("maximum").or(implied.1);
    (min, max, exclusive.is_some())
}

fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim_start_matches('+');
    if let Some(h) = t.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    if let Some(o) = t.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok().map(|v| v as f64);
    }
    match t {
        ".inf" | ".Inf" | ".INF" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

/// A scalar as JSON, typed as YAML types it.
fn scalar_json(text: &str, kind: Scalar) -> Value {
    match kind {
        Scalar::Null => Value::Null,
        Scalar::Bool => Value::Bool(text.eq_ignore_ascii_case("true")),
        Scalar::Int => text
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| text.parse::<u64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(parse_number(text).unwrap_or(0.0))),
        Scalar::Float => serde_json::Number::from_f64(parse_number(text).unwrap_or(0.0))
            .map_or(Value::Null, Value::Number),
        Scalar::Str | Scalar::QuotedNumber => Value::String(text.to_string()),
    }
}

/// A node as written, for messages: `99999`, `"12000"`.
fn shown(node: &Node) -> String {
    match &node.value {
        Yaml::Scalar(t, Scalar::QuotedNumber) => format!("\"{t}\""),
        Yaml::Scalar(t, _) => t.clone(),
        Yaml::Seq(_) => "[…]".into(),
        Yaml::Map(_) => "{…}".into(),
    }
}

/// `key: value` for a field, or the value alone for a list item.
fn field_line(field: &Field, value: &str) -> String {
    if field.item || field.key.is_empty() {
        value.to_string()
    } else {
        format!("{}: {value}", field.key)
    }
}

/// A JSON value written as inline YAML.
pub fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain = !s.is_empty()
                && !s.starts_with([
                    '{', '[', '*', '&', '!', '|', '>', '\'', '"', '%', '@', '`', '-', '?', '#',
                ])
                && !s.contains(": ")
                && !s.contains(" #")
                && s.trim() == s
                && !matches!(
                    super::tree::scalar_type(s, serde_saphyr::granit_parser::ScalarStyle::Plain),
                    Scalar::Int | Scalar::Float | Scalar::Bool | Scalar::Null
                );
            if plain {
                s.clone()
            } else {
                serde_json::to_string(s).unwrap_or_default()
            }
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The candidate nearest to `word`, if near enough to be a slip.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    candidates
        .map(|c| (distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance with transpositions (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_words_are_suggested() {
        let fields = ["title", "points", "hint", "id"];
        assert_eq!(closest("titel", fields.into_iter()), Some("title"));
        assert_eq!(closest("point", fields.into_iter()), Some("points"));
        assert_eq!(closest("colour", fields.into_iter()), None);
    }

    #[test]
    fn examples_are_written_as_yaml() {
        assert_eq!(inline(&serde_json::json!("20s")), "20s");
        assert_eq!(inline(&serde_json::json!("12")), "\"12\"");
        assert_eq!(inline(&serde_json::json!([3, 6, 7])), "[3, 6, 7]");
        assert_eq!(inline(&serde_json::json!("*.py")), "\"*.py\"");
    }
}
