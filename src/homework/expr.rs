//! Arithmetic over a variant's parameters: the expected value of an
//! `expression` question (`rates * hours * 60 / segment`, `max(N * F /
//! us, F / dmin)`), written in the lab's YAML.
//!
//! The grammar: numbers (`1.5`, `2e6`), parameter names, `+ - * / ^`,
//! unary minus, parentheses, and the functions `max`, `min` (any number of
//! arguments), `ceil`, `floor`, `round`, `abs`, `sqrt`, `log2`. `^` binds
//! tightest and to the right. Errors say where (the character offset) and
//! what was expected.

use std::collections::BTreeMap;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A number.
    Num(f64),
    /// A parameter, by name.
    Var(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// `a op b`.
    Bin(char, Box<Expr>, Box<Expr>),
    /// `f(a, …)`.
    Call(String, Vec<Expr>),
}

/// The functions an expression may call, with how many arguments (`None`:
/// one or more).
const FUNCTIONS: [(&str, Option<usize>); 8] = [
    ("max", None),
    ("min", None),
    ("ceil", Some(1)),
    ("floor", Some(1)),
    ("round", Some(1)),
    ("abs", Some(1)),
    ("sqrt", Some(1)),
    ("log2", Some(1)),
];

impl Expr {
    /// Parses `text`; the error names the offset and what was expected.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut p = Parser {
            chars: text.char_indices().collect(),
            at: 0,
            text,
        };
        let e = p.sum()?;
        p.skip();
        match p.peek() {
            None => Ok(e),
            Some(c) => Err(p.error(&format!("`{c}` where the expression should end"))),
        }
    }

    /// The parameters it names, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Num(_) => {}
            Expr::Var(v) => {
                if !out.contains(&v.as_str()) {
                    out.push(v);
                }
            }
            Expr::Neg(e) => e.collect(out),
            Expr::Bin(_, a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.collect(out)),
        }
    }

    /// Its value with `vars`; an error names an unknown parameter, or a
    /// result that is not a finite number (a division by zero).
    pub fn eval(&self, vars: &BTreeMap<String, f64>) -> Result<f64, String> {
        let v = match self {
            Expr::Num(n) => *n,
            Expr::Var(name) => *vars
                .get(name)
                .ok_or_else(|| format!("`{name}` is no parameter of the lab"))?,
            Expr::Neg(e) => -e.eval(vars)?,
            Expr::Bin(op, a, b) => {
                let (a, b) = (a.eval(vars)?, b.eval(vars)?);
                match op {
                    '+' => a + b,
                    '-' => a - b,
                    '*' => a * b,
                    '/' => a / b,
                    _ => a.powf(b),
                }
            }
            Expr::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(vars))
                    .collect::<Result<Vec<f64>, String>>()?;
                match f.as_str() {
                    "max" => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    "min" => vals.iter().copied().fold(f64::INFINITY, f64::min),
                    "ceil" => vals[0].ceil(),
                    "floor" => vals[0].floor(),
                    "round" => vals[0].round(),
                    "abs" => vals[0].abs(),
                    "sqrt" => vals[0].sqrt(),
                    _ => vals[0].log2(),
                }
            }
        };
        if v.is_finite() {
            Ok(v)
        } else {
            Err(
                "the expression has no finite value with these parameters (a division by zero?)"
                    .into(),
            )
        }
    }
}

struct Parser<'a> {
    chars: Vec<(usize, char)>,
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|(_, c)| *c)
    }

    fn skip(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    fn offset(&self) -> usize {
        self.chars.get(self.at).map_or(self.text.len(), |(i, _)| *i)
    }

    fn error(&self, what: &str) -> String {
        format!(
            "{what} at character {} of `{}`",
            self.offset() + 1,
            self.text
        )
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut e = self.product()?;
        loop {
            if self.eat('+') {
                e = Expr::Bin('+', Box::new(e), Box::new(self.product()?));
            } else if self.eat('-') {
                e = Expr::Bin('-', Box::new(e), Box::new(self.product()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        loop {
            if self.eat('*') || self.eat('·') || self.eat('×') {
                e = Expr::Bin('*', Box::new(e), Box::new(self.unary()?));
            } else if self.eat('/') {
                e = Expr::Bin('/', Box::new(e), Box::new(self.unary()?));
            } else {
                return Ok(e);
            }
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.eat('+');
        self.power()
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.atom()?;
        if self.eat('^') {
            return Ok(Expr::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        self.skip();
        match self.peek() {
            Some('(') => {
                self.at += 1;
                let e = self.sum()?;
                if !self.eat(')') {
                    return Err(self.error("a `)` missing"));
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => self.name(),
            Some(c) => Err(self.error(&format!("`{c}` where a number, a name or `(` should be"))),
            None => Err(self.error("the expression ends where a number, a name or `(` should be")),
        }
    }

    fn number(&mut self) -> Result<Expr, String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.at += 1;
        }
        // An exponent: `2e6`, `1.5E-3`.
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.at;
            self.at += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.at += 1;
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
            } else {
                self.at = save;
            }
        }
        let text: String = self.chars[start..self.at].iter().map(|(_, c)| c).collect();
        text.parse()
            .map(Expr::Num)
            .map_err(|_| format!("`{text}` is not a number in `{}`", self.text))
    }

    fn name(&mut self) -> Result<Expr, String> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().map(|(_, c)| c).collect();
        if !self.eat('(') {
            return Ok(Expr::Var(name));
        }
        let Some((_, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
            let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _)| *f).collect();
            return Err(format!(
                "`{name}` is no function in `{}`; the functions are {}",
                self.text,
                known.join(", ")
            ));
        };
        let mut args = vec![self.sum()?];
        while self.eat(',') {
            args.push(self.sum()?);
        }
        if !self.eat(')') {
            return Err(self.error(&format!("a `)` missing after the arguments of `{name}`")));
        }
        if arity.is_some_and(|n| n != args.len()) {
            return Err(format!(
                "`{name}` takes one argument, not {} (in `{}`)",
                args.len(),
                self.text
            ));
        }
        Ok(Expr::Call(name, args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, vars: &[(&str, f64)]) -> f64 {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        Expr::parse(text).unwrap().eval(&vars).unwrap()
    }

    #[test]
    fn arithmetic_as_written_in_the_textbook() {
        assert_eq!(value("5 * 2 * 60 / 15", &[]), 40.0);
        assert_eq!(
            value(
                "rates * hours * 60 / segment",
                &[("rates", 5.0), ("hours", 2.0), ("segment", 15.0)]
            ),
            40.0
        );
        assert_eq!(value("2 ^ 3 ^ 2", &[]), 512.0);
        assert_eq!(value("-2 ^ 2", &[]), -4.0);
        assert_eq!(value("1.5e3 + 2E-1", &[]), 1500.2);
        // D_P2P ≥ max{F/u_s, F/d_min, NF/(u_s + N u)}.
        let vars = [
            ("N", 10.0),
            ("F", 15e9),
            ("us", 30e6),
            ("dmin", 2e6),
            ("u", 300e3),
        ];
        let d = value("max(F / us, F / dmin, N * F / (us + N * u))", &vars);
        assert_eq!(d, 7500.0);
        assert_eq!(value("ceil(7 / 2) + floor(7 / 2) + round(2.5)", &[]), 10.0);
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let e = Expr::parse("2 * (3 + 4").unwrap_err();
        assert!(e.contains("a `)` missing at character 11"), "{e}");
        let e = Expr::parse("avg(1, 2)").unwrap_err();
        assert!(e.contains("`avg` is no function"), "{e}");
        let e = Expr::parse("2 $ 3").unwrap_err();
        assert!(
            e.contains("`$` where the expression should end at character 3"),
            "{e}"
        );
        let vars = BTreeMap::new();
        let e = Expr::parse("F / 0").unwrap().eval(&vars).unwrap_err();
        assert!(e.contains("`F` is no parameter"), "{e}");
        assert_eq!(Expr::parse("a * b + a").unwrap().names(), ["a", "b"]);
    }
}
