//! Durations and sizes as instructors write them in YAML: `1s`, `250ms`, `1.5s`, `64KiB`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A duration written as `250ms`, `1s`, `1.5s`, `2m`, or a bare number of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }

    /// A duration of `s` seconds.
    pub const fn from_secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }

    /// The wrapped duration.
    pub fn get(self) -> Duration {
        self.0
    }

    /// Parses `250ms`, `1s`, `1.5 s`, `2m`, `100us` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: f64 = num.parse().map_err(|_| {
            format!("`{text}` is not a duration; write it like `250ms`, `1s` or `1.5s`")
        })?;
        // Exactly the units the README documents: ms, s and m.
        let scale = match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 1e-3,
            "m" => 60.0,
            other => {
                return Err(format!(
                    "`{other}` in `{text}` is not a time unit; use ms, s or m, e.g. `{}{}`",
                    num,
                    suggest_unit(other)
                ));
            }
        };
        let secs = value * scale;
        if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
            return Err(format!("`{text}` is out of range (0 to 24 hours)"));
        }
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

/// The documented unit a written-out one means (`sec` → `s`).
fn suggest_unit(unit: &str) -> &'static str {
    let u = unit.to_ascii_lowercase();
    if u.starts_with("ms") || u.starts_with("milli") || u == "msec" {
        "ms"
    } else if u.starts_with("min") {
        "m"
    } else {
        "s"
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1000.0;
        if ms < 1000.0 {
            if ms.fract() == 0.0 {
                write!(f, "{} ms", ms as u64)
            } else {
                write!(f, "{ms:.1} ms")
            }
        } else {
            let s = ms / 1000.0;
            if (s * 10.0).fract().abs() < 1e-9 {
                write!(f, "{} s", trim_float(s, 1))
            } else {
                write!(f, "{} s", trim_float(s, 3))
            }
        }
    }
}

/// Formats `x` with at most `digits` decimals and no trailing zeros.
pub fn trim_float(x: f64, digits: usize) -> String {
    let s = format!("{x:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as `250ms` or `1s`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                Dur::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Dur::parse(&v.to_string()).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: `250ms`, `1s`, `1.5s`, `2m`, or a number of seconds.",
            "anyOf": [
                {"type": "string", "pattern": "^\\s*[0-9.]+\\s*(ms|s|m)?\\s*$"},
                {"type": "number", "minimum": 0}
            ]
        })
    }
}

/// A byte size written as `64KiB`, `1MiB`, `4096` or `10kB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

impl Size {
    /// Parses `64KiB`, `1 MiB`, `10kB`, `4096`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let value: u64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write it like `64KiB` or `1MiB`"))?;
        let scale: u64 = match unit.trim() {
            "" | "B" | "bytes" => 1,
            "k" | "kB" | "KB" => 1000,
            "K" | "KiB" => 1024,
            "MB" => 1_000_000,
            "M" | "MiB" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            other => {
                return Err(format!(
                    "`{other}` in `{text}` is not a size unit; use KiB or MiB"
                ));
            }
        };
        value
            .checked_mul(scale)
            .map(Size)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as `64KiB` or `1MiB`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Size::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size in bytes: `64KiB`, `1MiB`, `10kB`, or a number.",
            "anyOf": [
                {"type": "string", "pattern": "^\\s*[0-9]+\\s*(B|bytes|k|kB|KB|K|KiB|MB|M|MiB|G|GiB)?\\s*$"},
                {"type": "integer", "minimum": 0}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_units_instructors_write() {
        assert_eq!(Dur::parse("250ms").unwrap(), Dur::from_millis(250));
        assert_eq!(Dur::parse("1s").unwrap(), Dur::from_secs(1));
        assert_eq!(Dur::parse("1.5 s").unwrap(), Dur::from_millis(1500));
        assert_eq!(Dur::parse("2").unwrap(), Dur::from_secs(2));
        assert_eq!(Dur::parse("2m").unwrap(), Dur::from_secs(120));
        assert!(Dur::parse("fast").unwrap_err().contains("not a duration"));
        // Only the documented units, and the error names the one meant.
        for (written, meant) in [
            ("20 sec", "`20s`"),
            ("20 seconds", "`20s`"),
            ("20min", "`20m`"),
            ("3 msec", "`3ms`"),
        ] {
            let e = Dur::parse(written).unwrap_err();
            assert!(
                e.contains("use ms, s or m") && e.contains(meant),
                "{written}: {e}"
            );
        }
        assert!(
            Dur::parse("3 hours")
                .unwrap_err()
                .contains("not a time unit")
        );
    }

    #[test]
    fn durations_display_for_people() {
        assert_eq!(Dur::from_millis(250).to_string(), "250 ms");
        assert_eq!(Dur::from_secs(20).to_string(), "20 s");
        assert_eq!(Dur::from_millis(1500).to_string(), "1.5 s");
        assert_eq!(Dur::from_millis(1234).to_string(), "1.234 s");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(Size::parse("64KiB").unwrap(), Size(65536));
        assert_eq!(Size::parse("1 MiB").unwrap(), Size(1 << 20));
        assert_eq!(Size::parse("4096").unwrap(), Size(4096));
        assert!(Size::parse("lots").is_err());
    }
}
