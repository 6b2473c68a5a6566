//! Inline SVG charts: a run's Gantt timeline and a node's rows and duration per run. Presentation
//! attributes only (no `style`), like the DAG, so the page's CSP needs no `'unsafe-inline'`.

use std::collections::HashSet;
use std::fmt::Write as _;

use super::health::Health;
use super::page::{attr, duration, num, text};

const FONT: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// One bar of a Gantt chart.
pub struct GanttBar<'a> {
    pub node: &'a str,
    /// Milliseconds from the run's start.
    pub start_ms: i64,
    pub duration_ms: i64,
    pub health: Health,
    /// The run status word (`ok`, `failed`, `skipped`, …).
    pub status: &'a str,
}

/// A step of 1, 2 or 5 × 10ⁿ ms giving at most `max_ticks` ticks over `span`.
fn tick_step(span: i64, max_ticks: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if span / (step * m) < max_ticks {
                return step * m;
            }
        }
        step = step.saturating_mul(10);
        if step > i64::MAX / 10 {
            return step;
        }
    }
}

/// The run's nodes on a time axis, one row each in start order; bars of the `critical` nodes
/// (the chain that held the run up) are outlined thicker and carry the class `critical`.
pub fn gantt(bars: &[GanttBar<'_>], critical: &HashSet<&str>) -> String {
    let label_w = bars
        .iter()
        .map(|b| b.node.chars().count())
        .max()
        .unwrap_or(4) as f64
        * 7.4
        + 16.0;
    let plot_w = 900.0;
    let row_h = 22.0;
    let top = 26.0;
    let span = bars
        .iter()
        .map(|b| b.start_ms + b.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = label_w + plot_w + 20.0;
    let height = top + bars.len() as f64 * row_h + 10.0;
    let x = |ms: i64| label_w + ms as f64 / span as f64 * plot_w;
    let mut out = String::with_capacity(2048 + bars.len() * 400);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"gantt\" width=\"{width:.0}\" \
         height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"{FONT}\" \
         font-size=\"11\" role=\"img\" aria-label=\"timeline of {} nodes over {}\">",
        bars.len(),
        duration(span)
    );
    let step = tick_step(span, 10);
    let mut t = 0;
    while t <= span {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#eceff1\"/>\
             <text x=\"{0:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"#607d8b\">{3}</text>",
            x(t),
            top - 6.0,
            height - 6.0,
            text(&duration(t))
        );
        t += step;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let is_critical = critical.contains(b.node);
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#102027\"{}>{}</text>",
            label_w - 8.0,
            y + 15.0,
            if is_critical {
                " font-weight=\"bold\""
            } else {
                ""
            },
            text(b.node)
        );
        let x0 = x(b.start_ms);
        let w = (x(b.start_ms + b.duration_ms) - x0).max(2.0);
        let _ = writeln!(
            out,
            "<rect class=\"bar{}\" data-node=\"{}\" data-status=\"{}\" x=\"{x0:.1}\" y=\"{:.1}\" \
             width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{}\" stroke=\"{}\" \
             stroke-width=\"{}\"><title>{}: {} from +{} to +{} ({})</title></rect>",
            if is_critical { " critical" } else { "" },
            attr(b.node),
            attr(b.status),
            y + 3.0,
            row_h - 6.0,
            b.health.fill(),
            b.health.stroke(),
            if is_critical { "2.5" } else { "1" },
            text(b.node),
            text(b.status),
            duration(b.start_ms),
            duration(b.start_ms + b.duration_ms),
            duration(b.duration_ms)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One run of a node in [`runs_chart`].
pub struct RunPoint<'a> {
    pub run_id: &'a str,
    /// Rows inserted + updated.
    pub rows: i64,
    pub duration_ms: i64,
    pub health: Health,
}

/// Rows written (bars, left scale) and duration (line, right scale) per run, oldest first.
pub fn runs_chart(points: &[RunPoint<'_>]) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 170.0, 64.0, 64.0, 14.0, 22.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max_rows = points.iter().map(|p| p.rows).max().unwrap_or(0).max(1);
    let max_ms = points
        .iter()
        .map(|p| p.duration_ms)
        .max()
        .unwrap_or(0)
        .max(1);
    let n = points.len().max(1) as f64;
    let slot = plot_w / n;
    let mut out = String::with_capacity(1024 + points.len() * 300);
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"runs-chart\" width=\"{w}\" \
         height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" font-size=\"10\" \
         role=\"img\" aria-label=\"rows written and duration of the last {} runs\">",
        points.len()
    );
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#90a4ae\"/>\
         <text x=\"{2}\" y=\"{3}\" text-anchor=\"end\" fill=\"#455a64\">{4} rows</text>\
         <text x=\"{2}\" y=\"{0}\" text-anchor=\"end\" fill=\"#455a64\">0</text>\
         <text x=\"{5}\" y=\"{3}\" fill=\"#6a1b9a\">{6}</text>\
         <text x=\"{5}\" y=\"{0}\" fill=\"#6a1b9a\">0 s</text>",
        top + plot_h,
        left + plot_w,
        left - 4.0,
        top + 8.0,
        text(&num(max_rows)),
        left + plot_w + 4.0,
        text(&duration(max_ms)),
    );
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let bh = p.rows as f64 / max_rows as f64 * plot_h;
        let bx = left + i as f64 * slot + slot * 0.15;
        let _ = writeln!(
            out,
            "<rect class=\"rows\" data-run=\"{}\" x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" \
             height=\"{bh:.1}\" fill=\"{}\" stroke=\"{}\"><title>{}: {} rows written in {}</title></rect>",
            attr(p.run_id),
            top + plot_h - bh,
            slot * 0.7,
            p.health.fill(),
            p.health.stroke(),
            text(p.run_id),
            text(&num(p.rows)),
            text(&duration(p.duration_ms))
        );
        let cx = left + (i as f64 + 0.5) * slot;
        let cy = top + plot_h - p.duration_ms as f64 / max_ms as f64 * plot_h;
        let _ = write!(line, "{}{cx:.1},{cy:.1}", if i == 0 { "M" } else { " L" });
        let _ = writeln!(
            out,
            "<circle class=\"duration\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"2.5\" fill=\"#6a1b9a\"/>"
        );
    }
    if !line.is_empty() {
        let _ = writeln!(
            out,
            "<path d=\"{line}\" fill=\"none\" stroke=\"#6a1b9a\" stroke-width=\"1.5\"/>"
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_few() {
        assert_eq!(tick_step(1, 10), 1);
        assert_eq!(tick_step(95, 10), 10);
        assert_eq!(tick_step(12_000, 10), 2000);
        assert_eq!(tick_step(3_600_000, 10), 500_000);
    }

    #[test]
    fn gantt_places_parallel_bars_side_by_side_in_time() {
        let bars = [
            GanttBar {
                node: "a",
                start_ms: 0,
                duration_ms: 1000,
                health: Health::Ok,
                status: "ok",
            },
            GanttBar {
                node: "b",
                start_ms: 0,
                duration_ms: 4000,
                health: Health::Failed,
                status: "failed",
            },
            GanttBar {
                node: "c<",
                start_ms: 4000,
                duration_ms: 0,
                health: Health::Stale,
                status: "skipped",
            },
        ];
        let critical: HashSet<&str> = ["b"].into_iter().collect();
        let svg = gantt(&bars, &critical);
        assert_eq!(svg.matches("<rect class=\"bar").count(), 3);
        assert_eq!(svg.matches("class=\"bar critical\"").count(), 1);
        assert!(svg.contains("data-node=\"c&lt;\""));
        // a and b start at the same x; b is four times as long.
        let x_of = |node: &str| {
            let i = svg.find(&format!("data-node=\"{node}\"")).unwrap();
            let rest = &svg[i..];
            let x: f64 = rest[rest.find(" x=\"").unwrap() + 4..]
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let w: f64 = rest[rest.find("width=\"").unwrap() + 7..]
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            (x, w)
        };
        let (ax, aw) = x_of("a");
        let (bx, bw) = x_of("b");
        assert_eq!(ax, bx);
        assert!((bw / aw - 4.0).abs() < 0.01, "{aw} {bw}");
        assert!(!svg.contains("style="));
    }

    #[test]
    fn runs_chart_has_a_bar_and_a_point_per_run() {
        let pts = [
            RunPoint {
                run_id: "r1",
                rows: 10,
                duration_ms: 100,
                health: Health::Ok,
            },
            RunPoint {
                run_id: "r2",
                rows: 0,
                duration_ms: 300,
                health: Health::Failed,
            },
        ];
        let svg = runs_chart(&pts);
        assert_eq!(svg.matches("<rect class=\"rows\"").count(), 2);
        assert_eq!(svg.matches("<circle class=\"duration\"").count(), 2);
        assert!(runs_chart(&[]).contains("</svg>"));
    }
}
