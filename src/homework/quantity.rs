//! Numbers as students write them in answers, with their units: `40`,
//! `40 URLs`, `1.5 s`, `1500 ms`, `7,500 seconds`, `2.5e3`, `12 Mbps`,
//! `1.5 MB`. Each unit belongs to a dimension (time, data, rate, count) and
//! converts to its base (seconds, bits, bits per second); an answer is
//! compared with the expected value in the question's unit.

/// What a quantity measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// Seconds.
    Time,
    /// Bits.
    Data,
    /// Bits per second.
    Rate,
    /// Things counted (URLs, segments, messages): any other word.
    Count,
}

impl Dimension {
    /// `a time`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Dimension::Time => "a time",
            Dimension::Data => "an amount of data",
            Dimension::Rate => "a rate",
            Dimension::Count => "a count",
        }
    }
}

/// A unit: how it is written, its dimension, and its size in the base.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    /// The name it was written with (or the question's).
    pub name: &'static str,
    /// What it measures.
    pub dimension: Dimension,
    /// One of it, in the dimension's base unit.
    pub factor: f64,
}

/// Known units. Case matters where it means something: `b` is a bit, `B`
/// a byte, `Mb` a megabit, `MB` a megabyte; `m` alone is not a unit.
const UNITS: &[(&[&str], Dimension, f64)] = &[
    (
        &["s", "sec", "secs", "second", "seconds"],
        Dimension::Time,
        1.0,
    ),
    (
        &["ms", "msec", "msecs", "millisecond", "milliseconds"],
        Dimension::Time,
        1e-3,
    ),
    (
        &["us", "µs", "μs", "usec", "microsecond", "microseconds"],
        Dimension::Time,
        1e-6,
    ),
    (&["min", "mins", "minute", "minutes"], Dimension::Time, 60.0),
    (
        &["h", "hr", "hrs", "hour", "hours"],
        Dimension::Time,
        3600.0,
    ),
    (&["b", "bit", "bits"], Dimension::Data, 1.0),
    (
        &["kb", "Kb", "kbit", "kbits", "kilobit", "kilobits"],
        Dimension::Data,
        1e3,
    ),
    (
        &["Mb", "Mbit", "Mbits", "megabit", "megabits"],
        Dimension::Data,
        1e6,
    ),
    (
        &["Gb", "Gbit", "Gbits", "gigabit", "gigabits"],
        Dimension::Data,
        1e9,
    ),
    (&["B", "byte", "bytes"], Dimension::Data, 8.0),
    (&["KB", "kB", "kilobyte", "kilobytes"], Dimension::Data, 8e3),
    (&["MB", "megabyte", "megabytes"], Dimension::Data, 8e6),
    (&["GB", "gigabyte", "gigabytes"], Dimension::Data, 8e9),
    (&["bps", "b/s", "bit/s"], Dimension::Rate, 1.0),
    (&["kbps", "Kbps", "kb/s", "kbit/s"], Dimension::Rate, 1e3),
    (&["Mbps", "Mb/s", "Mbit/s"], Dimension::Rate, 1e6),
    (&["Gbps", "Gb/s", "Gbit/s"], Dimension::Rate, 1e9),
    (&["Bps", "B/s"], Dimension::Rate, 8.0),
    (&["KBps", "KB/s", "kB/s"], Dimension::Rate, 8e3),
    (&["MBps", "MB/s"], Dimension::Rate, 8e6),
];

/// The unit written `name` (a count for any other word).
pub fn unit(name: &str) -> Unit {
    for (names, dimension, factor) in UNITS {
        if let Some(n) = names.iter().find(|n| **n == name) {
            return Unit {
                name: n,
                dimension: *dimension,
                factor: *factor,
            };
        }
    }
    // Long names in any case: `Seconds`, `MS`.
    let lower = name.to_lowercase();
    for (names, dimension, factor) in UNITS {
        if let Some(n) = names
            .iter()
            .find(|n| n.len() > 2 && n.to_lowercase() == lower)
        {
            return Unit {
                name: n,
                dimension: *dimension,
                factor: *factor,
            };
        }
    }
    Unit {
        name: "",
        dimension: Dimension::Count,
        factor: 1.0,
    }
}

/// A number as answered, with the unit written after it, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    /// The number as written.
    pub value: f64,
    /// The unit written after it.
    pub unit: Option<Unit>,
}

impl Quantity {
    /// Reads an answer: a number (`7500`, `7,500`, `7 500`, `1.5`, `1,5`,
    /// `2.5e3`, `2.5 × 10^3`, `≈ 40`), then a unit or a word, if any.
    pub fn parse(text: &str) -> Result<Quantity, String> {
        // Working before the result: `D_cs = N·F/u_s = 400,000 s` and
        // `6 × 2 RTT = 12 × 40 ms = 0.48 s` are the number after the last `=`.
        // An `=` inside parentheses is the working after the result:
        // `1,440 URLs (360 segments = …)`.
        let first = text.lines().next().unwrap_or_default();
        let mut depth = 0i32;
        let mut last_eq = None;
        for (i, c) in first.char_indices() {
            match c {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                '=' if depth == 0 => last_eq = Some(i),
                _ => {}
            }
        }
        let text = match last_eq.map(|i| &first[i + 1..]) {
            Some(after) if !after.trim().is_empty() => after,
            _ => first,
        };
        let t = text
            .trim()
            .trim_start_matches(['≈', '~', '='])
            .trim()
            .trim_end_matches('.');
        let end = t
            .char_indices()
            .find(|(_, c)| {
                !(c.is_ascii_digit()
                    || matches!(c, '.' | ',' | '-' | '+' | ' ' | '\u{a0}' | '\u{202f}'))
            })
            .map_or(t.len(), |(i, _)| i);
        // `2.5e3`: the exponent belongs to the number.
        let (mut number, mut rest) = t.split_at(end);
        if let Some(exp) = rest.strip_prefix(['e', 'E'])
            && exp.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        {
            let digits = exp
                .char_indices()
                .skip(1)
                .find(|(_, c)| !c.is_ascii_digit())
                .map_or(exp.len(), |(i, _)| i);
            number = &t[..end + 1 + digits];
            rest = &exp[digits..];
        }
        let mut value = number_value(number.trim())
            .ok_or_else(|| format!("`{}` does not start with a number", text.trim()))?;
        let mut rest = rest.trim();
        // `2.5 × 10^3`, `2.5 x 10^3`, `2.5*10^3`.
        if let Some(power) = ["× 10^", "x 10^", "*10^", "* 10^", "×10^", "x10^"]
            .iter()
            .find_map(|p| rest.strip_prefix(p))
        {
            let digits = power
                .char_indices()
                .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
                .map_or(power.len(), |(i, _)| i);
            let exp: i32 = power[..digits].parse().map_err(|_| {
                format!("`{}`: the power of ten is not a whole number", text.trim())
            })?;
            value *= 10f64.powi(exp);
            rest = power[digits..].trim();
        }
        let word = rest
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '(')
            .next()
            .unwrap_or_default()
            .trim_end_matches('.');
        Ok(Quantity {
            value,
            unit: (!word.is_empty()).then(|| unit(word)),
        })
    }

    /// Its value in `want`'s unit: `Err` when it is written in a unit of
    /// another dimension. A number without a unit is taken in `want`.
    pub fn in_unit(&self, want: Unit) -> Result<f64, String> {
        match self.unit {
            None => Ok(self.value),
            Some(u) if u.dimension == Dimension::Count && want.dimension == Dimension::Count => {
                Ok(self.value)
            }
            Some(u) if u.dimension == want.dimension => Ok(self.value * u.factor / want.factor),
            Some(u) => Err(format!(
                "the answer is {} ({}), the question asks for {}",
                u.dimension.describe(),
                if u.name.is_empty() { "a word" } else { u.name },
                want.dimension.describe()
            )),
        }
    }
}

/// `7,500` and `7 500` are 7500; `1,5` is 1.5 (a decimal comma); `1,500.5` is 1500.5.
fn number_value(text: &str) -> Option<f64> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    let thousands = |s: &str| {
        let mut groups = s.split(',');
        let first = groups.next().unwrap_or_default();
        !first.is_empty()
            && first.trim_start_matches(['-', '+']).len() <= 3
            && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
    };
    let normal = if compact.contains(',') {
        let (int, frac) = compact.split_once('.').unwrap_or((&compact, ""));
        if thousands(int) {
            if frac.is_empty() {
                int.replace(',', "")
            } else {
                format!("{}.{frac}", int.replace(',', ""))
            }
        } else if !compact.contains('.') && compact.matches(',').count() == 1 {
            compact.replace(',', ".")
        } else {
            return None;
        }
    } else {
        compact
    };
    normal.parse().ok().filter(|v: &f64| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Result<f64, String> {
        Quantity::parse(text)?.in_unit(unit("s"))
    }

    #[test]
    fn numbers_and_units_as_students_write_them() {
        assert_eq!(secs("1.5 s"), Ok(1.5));
        assert_eq!(secs("1500 ms"), Ok(1.5));
        assert_eq!(secs("1500ms"), Ok(1.5));
        assert_eq!(secs("7,500 seconds"), Ok(7500.0));
        assert_eq!(secs("7 500 s"), Ok(7500.0));
        assert_eq!(secs("2.5e3"), Ok(2500.0));
        assert_eq!(secs("2.5 × 10^3 s"), Ok(2500.0));
        assert_eq!(secs("1,5 s"), Ok(1.5));
        assert_eq!(secs("≈ 2 hours"), Ok(7200.0));
        assert_eq!(secs("125 min."), Ok(7500.0));
        assert_eq!(secs("D_cs = N·F/u_s = 400,000 s"), Ok(400_000.0));
        assert_eq!(secs("7.41 h\n(26,667 s)"), Ok(7.41 * 3600.0));
        assert_eq!(secs("6 × 2 RTT = 12 × 40 ms = 0.48 s"), Ok(0.48));
        assert_eq!(secs("1,440 s (90 min × 60 = 5400 s / 15 × 4)"), Ok(1440.0));
        let urls = unit("URLs");
        assert_eq!(Quantity::parse("40 URLs").unwrap().in_unit(urls), Ok(40.0));
        assert_eq!(Quantity::parse("40").unwrap().in_unit(urls), Ok(40.0));
        assert_eq!(
            Quantity::parse("40 urls (plus the MPD)")
                .unwrap()
                .in_unit(urls),
            Ok(40.0)
        );
    }

    #[test]
    fn bits_and_bytes_are_told_apart() {
        let mbit = unit("Mb");
        assert_eq!(Quantity::parse("1 MB").unwrap().in_unit(mbit), Ok(8.0));
        assert_eq!(Quantity::parse("8 Mb").unwrap().in_unit(mbit), Ok(8.0));
        let mbps = unit("Mbps");
        assert_eq!(Quantity::parse("1500 kbps").unwrap().in_unit(mbps), Ok(1.5));
    }

    #[test]
    fn another_dimension_is_named() {
        let e = secs("12 Mbps").unwrap_err();
        assert_eq!(
            e,
            "the answer is a rate (Mbps), the question asks for a time"
        );
        assert!(Quantity::parse("about forty").is_err());
    }
}
