//! SVG plots of a run (plotters): throughput and latency over time.

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;

/// A named, coloured series of (x, y) points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn chart(path: &Path, title: &str, y_label: &str, lines: &[Line<'_>]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let x_max = lines
        .iter()
        .flat_map(|(_, _, pts)| pts.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let y_max = lines
        .iter()
        .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc(y_label)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, color, points) in lines {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

/// Requests submitted and completed per second (and users, in closed loop).
pub(crate) fn throughput(report: &Report, path: &Path) -> anyhow::Result<()> {
    let series = |f: fn(&super::report::Second) -> usize| -> Vec<(f64, f64)> {
        report
            .series
            .iter()
            .map(|s| (s.t as f64, f(s) as f64))
            .collect()
    };
    let mut lines = vec![
        ("submitted/s", BLUE, series(|s| s.submitted)),
        (
            "completed/s (included or answered)",
            GREEN,
            series(|s| s.completed),
        ),
        ("failed/s", RED, series(|s| s.failed)),
    ];
    if report.series.iter().any(|s| s.users > 0) {
        lines.push(("users", BLACK, series(|s| s.users)));
    }
    chart(
        path,
        &format!("{}: throughput", report.label),
        "per second",
        &lines,
    )
}

/// p50 and p99 latency of the requests submitted in each second.
pub(crate) fn latency(report: &Report, path: &Path) -> anyhow::Result<()> {
    let series = |f: fn(&super::report::Second) -> f64| -> Vec<(f64, f64)> {
        report
            .series
            .iter()
            .filter(|s| s.submitted > s.failed)
            .map(|s| (s.t as f64, f(s)))
            .collect()
    };
    chart(
        path,
        &format!("{}: latency (submission to committed block)", report.label),
        "ms",
        &[
            ("p50", BLUE, series(|s| s.p50_ms)),
            ("p99", RED, series(|s| s.p99_ms)),
        ],
    )
}
