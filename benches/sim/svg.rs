//! A line plot of shares over time, written as SVG by hand.

use std::fmt::Write;

/// One line: its legend, its values per bucket, whether it is drawn dashed.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
    pub dashed: bool,
}

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 560.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 364.0;
const COLOURS: [&str; 8] = [
    "#1b6ac9", "#d2452b", "#2a9d4b", "#8a4fbf", "#e08a00", "#6b4a2f", "#c2408f", "#3a9fb0",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The plot: `series` against time, each value the share (0..1) in a bucket of
/// `bucket` seconds, drawn at the bucket's middle.
pub fn plot(title: &str, y_label: &str, bucket: f64, series: &[Series]) -> String {
    let buckets = series.iter().map(|s| s.values.len()).max().unwrap_or(1);
    let x_max = ((buckets as f64 * bucket) / 10.0).ceil().max(1.0) * 10.0;
    let top_value =
        (series.iter().flat_map(|s| s.values.iter().flatten())).fold(0.0f64, |a, &b| a.max(b));
    let step = if top_value <= 0.1 {
        0.02
    } else if top_value <= 0.25 {
        0.05
    } else {
        0.1
    };
    let y_max = ((top_value / step).ceil().max(1.0)) * step;
    let x = |t: f64| LEFT + (RIGHT - LEFT) * t / x_max;
    let y = |v: f64| BOTTOM - (BOTTOM - TOP) * v / y_max;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">{}</text>",
        (LEFT + RIGHT) / 2.0,
        escape(title)
    );
    // Grid, ticks and tick labels.
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{RIGHT}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{3:.0}</text>",
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            v * 100.0
        );
        v += step;
    }
    let mut t = 0.0;
    while t <= x_max + 1e-9 {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{BOTTOM}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#444\"/>\n\
             <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3:.0}</text>",
            x(t),
            BOTTOM + 5.0,
            BOTTOM + 19.0,
            t
        );
        t += 10.0;
    }
    let _ = writeln!(
        out,
        "<polyline points=\"{LEFT},{TOP} {LEFT},{BOTTOM} {RIGHT},{BOTTOM}\" fill=\"none\" stroke=\"#444\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">virtual time (s)</text>\n\
         <text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 40.0,
        (TOP + BOTTOM) / 2.0,
        escape(y_label)
    );
    // The lines, and the legend beside the plot.
    for (k, s) in series.iter().enumerate() {
        let colour = if s.dashed {
            "#777"
        } else {
            COLOURS[k % COLOURS.len()]
        };
        let dash = if s.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let points: Vec<String> = (s.values.iter().enumerate())
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .map(|(i, v)| format!("{:.1},{:.1}", x((i as f64 + 0.5) * bucket), y(v)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
            points.join(" ")
        );
        let ly = TOP + 8.0 + 22.0 * k as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>\n\
             <text x=\"{3}\" y=\"{4}\">{5}</text>",
            RIGHT + 16.0,
            ly,
            RIGHT + 40.0,
            RIGHT + 46.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}
