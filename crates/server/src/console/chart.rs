//! The chart over time, drawn on the server as inline SVG: no script, readable by screen
//! readers through its title and a table fallback, and identical in every browser.

use std::fmt::Write;

use palisade_model::Timestamp;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 120.0;
const AXIS: f64 = 18.0;

/// Renders `counts` (one bar per interval, oldest first, the first starting at `start`,
/// each `width_ms` long) as an SVG bar chart.
pub(crate) fn bars(counts: &[u64], start: Timestamp, width_ms: i64, what: &str) -> String {
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let n_bars = counts.len().max(1) as f64;
    let slot = WIDTH / n_bars;
    let bar = (slot * 0.8).max(1.0);
    let plot = HEIGHT - AXIS;
    let first = day_label(start);
    let last_start = Timestamp(start.millis() + width_ms * (counts.len() as i64 - 1).max(0));
    let last = day_label(last_start);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">{total} {what} first seen from {first} to {last}; busiest interval {max}</title>"#,
        max = counts.iter().copied().max().unwrap_or(0)
    );
    for (index, &count) in counts.iter().enumerate() {
        let height = (count as f64 / max as f64) * (plot - 4.0);
        let x = index as f64 * slot + (slot - bar) / 2.0;
        let y = plot - height;
        let from = Timestamp(start.millis() + width_ms * index as i64);
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{height:.1}"><title>{count} from {}</title></rect>"#,
            minute_label(from)
        );
    }
    let _ = write!(
        svg,
        r#"<line x1="0" y1="{plot}" x2="{WIDTH}" y2="{plot}" class="axis"/><text x="0" y="{HEIGHT}" class="label">{first}</text><text x="{WIDTH}" y="{HEIGHT}" text-anchor="end" class="label">{last}</text><text x="{WIDTH}" y="10" text-anchor="end" class="label">max {max_count}</text></svg>"#,
        max_count = counts.iter().copied().max().unwrap_or(0)
    );
    svg
}

fn day_label(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

fn minute_label(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    format!(
        "{} {} UTC",
        &text[..10.min(text.len())],
        text.get(11..16).unwrap_or("")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_interval_scaled_to_the_largest() {
        let svg = bars(&[0, 5, 10], Timestamp(0), 86_400_000, "alerts");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("15 alerts first seen from 1970-01-01 to 1970-01-03"));
        assert!(svg.contains(r#"height="98.0""#), "{svg}");
        assert!(svg.contains("5 from 1970-01-02 00:00 UTC"));
    }
}
