//! Per-student variants: a homework lab's parameters (file sizes, rates,
//! numbers of peers, an HTTP response's dates) drawn from a seed that comes
//! from the lab's seed and the student's identity, so neighbours get
//! different numbers and the same student always the same ones.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::expr::Expr;
use crate::spec::{ParamSpec, ParamValue};

/// One student's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Whose variant it is.
    pub student: String,
    /// Each parameter's value, by name.
    pub values: BTreeMap<String, ParamValue>,
}

/// FNV-1a: a stable hash of a student's identity (the same on every
/// machine and in every version, unlike the standard library's).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Variant {
    /// The variant of `student` for a lab of `params` and `seed`.
    pub fn draw(params: &BTreeMap<String, ParamSpec>, seed: u64, student: &str) -> Variant {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(student.trim()));
        let values = params
            .iter()
            .map(|(name, spec)| (name.clone(), spec.draw(&mut rng)))
            .collect();
        Variant {
            student: student.trim().to_string(),
            values,
        }
    }

    /// The numeric parameters, for expressions.
    pub fn numbers(&self) -> BTreeMap<String, f64> {
        self.values
            .iter()
            .filter_map(|(k, v)| match v {
                ParamValue::Number(n) => Some((k.clone(), *n)),
                ParamValue::Text(_) => None,
            })
            .collect()
    }

    /// `text` with each `{…}` that is a parameter or an expression over
    /// them replaced by its value (`{F}`, `{N * F / us}`); other braces stay.
    pub fn fill(&self, text: &str) -> String {
        let numbers = self.numbers();
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let inner = after[..close].trim();
            let value = match self.values.get(inner) {
                Some(ParamValue::Text(t)) => Some(t.clone()),
                Some(ParamValue::Number(n)) => Some(number(*n)),
                None => Expr::parse(inner)
                    .ok()
                    .filter(|e| !e.names().is_empty() || inner.contains(['+', '*', '/', '-']))
                    .and_then(|e| e.eval(&numbers).ok())
                    .map(number),
            };
            match value {
                Some(v) => out.push_str(&v),
                None => out.push_str(&rest[open..open + close + 2]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// A number for people: whole numbers without decimals, others with up to
/// six significant digits (`40`, `7500`, `1.5`, `0.000133333`).
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let digits = (6 - v.abs().log10().floor() as i32 - 1).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl ParamSpec {
    /// One draw: a value of `choose`, or a number of `min`..=`max` on the
    /// `step` grid (default step 1).
    fn draw(&self, rng: &mut ChaCha8Rng) -> ParamValue {
        if let Some(choices) = self.choose.as_ref().filter(|c| !c.is_empty()) {
            return choices[rng.random_range(0..choices.len())].clone();
        }
        let (min, max) = (self.min.unwrap_or(0.0), self.max.unwrap_or(0.0));
        let step = self.step.unwrap_or(1.0).abs().max(f64::MIN_POSITIVE);
        let steps = ((max - min) / step).floor().max(0.0) as u64;
        let k = rng.random_range(0..=steps);
        // Rounded to the step's decimals, so 0.1 steps give 0.3, not 0.30000000000000004.
        let v = min + step * k as f64;
        ParamValue::Number((v * 1e9).round() / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BTreeMap<String, ParamSpec> {
        serde_saphyr::from_str(
            "rates: { choose: [3, 4, 5, 6] }\nhours: { min: 1, max: 3 }\nsize: { min: 0.5, max: 2.5, step: 0.1 }\nserver: { choose: [gaia.cs.umass.edu, www.example.com] }\n",
        )
        .unwrap()
    }

    #[test]
    fn one_student_one_variant_and_neighbours_differ() {
        let p = params();
        let ada = Variant::draw(&p, 1, "ada");
        assert_eq!(ada, Variant::draw(&p, 1, " ada "));
        let others: Vec<Variant> = ["alan", "grace", "edsger", "barbara"]
            .iter()
            .map(|s| Variant::draw(&p, 1, s))
            .collect();
        assert!(others.iter().any(|v| v.values != ada.values));
        assert_ne!(Variant::draw(&p, 2, "ada").values, ada.values);
        let ParamValue::Number(size) = ada.values["size"] else {
            panic!()
        };
        assert!(
            (0.5..=2.5).contains(&size) && (size * 10.0).fract() == 0.0,
            "{size}"
        );
    }

    #[test]
    fn questions_are_filled_with_values_and_expressions() {
        let v = Variant {
            student: "ada".into(),
            values: [
                ("F".to_string(), ParamValue::Number(15e9)),
                ("N".to_string(), ParamValue::Number(10.0)),
                (
                    "host".to_string(),
                    ParamValue::Text("gaia.cs.umass.edu".into()),
                ),
            ]
            .into(),
        };
        assert_eq!(
            v.fill("{N} peers, a file of {F / 1e9} Gbit from {host}; f\"{seq}\" stays"),
            "10 peers, a file of 15 Gbit from gaia.cs.umass.edu; f\"{seq}\" stays"
        );
        assert_eq!(number(1.0 / 7500.0), "0.000133333");
        assert_eq!(number(2.5), "2.5");
    }
}
