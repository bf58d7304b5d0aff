//! A homework's plot: curves of expressions over one parameter (the
//! minimum distribution time against the number of peers, client-server
//! and P2P), with the student's other numbers, drawn as an SVG that the
//! Markdown report links, since instructors would rather look than read.

use std::fmt::Write as _;

use super::expr::Expr;
use super::variant::{Variant, number};
use crate::spec::PlotSpec;

/// Points computed per curve.
const POINTS: usize = 96;
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 380.0;
/// Margins: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (78.0, 20.0, 56.0, 56.0);
/// The longest title line, in characters, before it is split at its `(`.
const TITLE_LINE: usize = 64;
/// Curve colours, in order (distinguishable, and in grey scale too).
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// The plot of `spec` for `variant`, as SVG text.
pub fn svg(spec: &PlotSpec, variant: &Variant) -> Result<String, String> {
    let xs = samples(spec);
    let mut curves = Vec::new();
    for series in &spec.series {
        let e = Expr::parse(&series.expect)?;
        let mut vars = variant.numbers();
        let mut points = Vec::with_capacity(xs.len());
        for &x in &xs {
            vars.insert(spec.x.clone(), x);
            points.push((x, e.eval(&vars)?));
        }
        curves.push((series.name.as_str(), points));
    }
    let top = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let (left, right, up, down) = MARGIN;
    let (w, h) = (WIDTH - left - right, HEIGHT - up - down);
    let sx = |x: f64| left + w * position(spec, x);
    let sy = |y: f64| up + h * (1.0 - y / top);
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, line) in title_lines(&variant.fill(&spec.title)).iter().enumerate() {
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
            WIDTH / 2.0,
            20 + 17 * i,
            escape(line)
        );
    }
    // Axes, ticks and labels.
    let _ = writeln!(
        out,
        "<path d=\"M{left} {up} V{} H{}\" stroke=\"black\" fill=\"none\"/>",
        up + h,
        left + w
    );
    for x in ticks(spec) {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n<path d=\"M{:.1} {:.1} v5\" stroke=\"black\"/>\n",
            sx(x),
            up + h + 18.0,
            number(x),
            sx(x),
            up + h
        );
    }
    for k in 0..=4 {
        let y = top * f64::from(k) / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n<path d=\"M{:.1} {:.1} H{:.1}\" stroke=\"#ddd\"/>\n",
            left - 6.0,
            sy(y) + 4.0,
            number((y * 1000.0).round() / 1000.0),
            left,
            sy(y),
            left + w
        );
    }
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n<text x=\"16\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {})\">{}</text>\n",
        left + w / 2.0,
        HEIGHT - 14.0,
        escape(&spec.x),
        up + h / 2.0,
        up + h / 2.0,
        escape(spec.unit.as_deref().unwrap_or(""))
    );
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>\n",
            path.join(" "),
            left + 10.0,
            up + 16.0 + 16.0 * i as f64,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}

/// The title in one line, or two split before its `(` when it is long.
fn title_lines(title: &str) -> Vec<String> {
    match title.find(" (") {
        Some(i) if title.chars().count() > TITLE_LINE => {
            vec![title[..i].to_string(), title[i + 1..].to_string()]
        }
        _ => vec![title.to_string()],
    }
}

/// Where `x` lies along the axis, from 0 to 1.
fn position(spec: &PlotSpec, x: f64) -> f64 {
    if spec.log {
        (x.ln() - spec.from.ln()) / (spec.to.ln() - spec.from.ln())
    } else {
        (x - spec.from) / (spec.to - spec.from)
    }
}

/// The values of the parameter the curves are computed at.
fn samples(spec: &PlotSpec) -> Vec<f64> {
    (0..POINTS)
        .map(|i| {
            let t = i as f64 / (POINTS - 1) as f64;
            if spec.log {
                (spec.from.ln() + t * (spec.to.ln() - spec.from.ln())).exp()
            } else {
                spec.from + t * (spec.to - spec.from)
            }
        })
        .collect()
}

/// Tick values on the x axis: the ends, and the powers of ten between on a
/// log scale (a fifth of the way on a linear one).
fn ticks(spec: &PlotSpec) -> Vec<f64> {
    let mut out = vec![spec.from];
    if spec.log {
        let mut p = 10f64.powf(spec.from.log10().floor() + 1.0);
        while p < spec.to {
            out.push(p);
            p *= 10.0;
        }
    } else {
        out.extend((1..5).map(|k| spec.from + (spec.to - spec.from) * f64::from(k) / 5.0));
    }
    out.push(spec.to);
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ParamValue;

    #[test]
    fn curves_are_drawn_from_the_variant() {
        let spec: PlotSpec = serde_saphyr::from_str(
            "title: D against N, F = {F} Gbit\nx: N\nfrom: 1\nto: 1000\nlog: true\nunit: seconds\nseries:\n  - { name: client-server, expect: \"N * F * 1000 / us\" }\n  - { name: P2P, expect: \"N * F * 1000 / (us + N)\" }\n",
        )
        .unwrap();
        let v = Variant {
            student: "ada".into(),
            values: [
                ("F".to_string(), ParamValue::Number(20.0)),
                ("us".to_string(), ParamValue::Number(50.0)),
            ]
            .into(),
        };
        let svg = svg(&spec, &v).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.contains(">D against N, F = 20 Gbit</text>"), "{svg}");
        assert_eq!(
            title_lines(
                "Minimum distribution time against N (F = 20 Gbit, u_s = 50 Mbps, d_min = 1 Mbps)"
            ),
            [
                "Minimum distribution time against N",
                "(F = 20 Gbit, u_s = 50 Mbps, d_min = 1 Mbps)"
            ]
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">client-server</text>") && svg.contains(">P2P</text>"));
        assert!(svg.contains(">100</text>"), "a tick at each power of ten");
        assert_eq!(svg, super::svg(&spec, &v).unwrap(), "the same every time");
    }
}
