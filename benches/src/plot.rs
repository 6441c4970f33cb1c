//! The SVG plot: throughput against batch size for the ring and io_uring (the syscall
//! baseline as a flat line), and the latency distribution (CDF) of the batch-32 READs and
//! the syscall. SVG backend only, so no font or system libraries are needed.

use std::path::Path;

use plotters::prelude::*;

use crate::{report::BATCHES, CaseResult};

const SERIES: [(&str, RGBColor); 5] = [
    ("ring/read64", RGBColor(200, 30, 30)),
    ("ring/nop", RGBColor(240, 130, 40)),
    ("io_uring/read64", RGBColor(30, 60, 200)),
    ("io_uring/nop", RGBColor(60, 160, 220)),
    ("ring/fetch_add", RGBColor(140, 60, 160)),
];

const LATENCY: [(&str, RGBColor); 5] = [
    ("ring/read64/b32", RGBColor(200, 30, 30)),
    ("ring/read64/b1", RGBColor(240, 130, 40)),
    ("io_uring/read64/b32", RGBColor(30, 60, 200)),
    ("io_uring/read64/b1", RGBColor(60, 160, 220)),
    ("syscall/pread64", RGBColor(40, 140, 40)),
];

type Error = Box<dyn std::error::Error>;

/// Writes the plot of `cases` to `path`.
pub fn write_svg(cases: &[CaseResult], path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (1280, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(640);
    throughput(cases, &left)?;
    latency(cases, &right)?;
    root.present()?;
    Ok(())
}

fn find<'a>(cases: &'a [CaseResult], name: &str) -> Option<&'a CaseResult> {
    cases.iter().find(|c| c.name == name && c.measured())
}

fn throughput<DB: DrawingBackend>(
    cases: &[CaseResult],
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let all: Vec<f64> = cases
        .iter()
        .filter(|c| c.measured())
        .map(|c| c.ops_per_sec)
        .collect();
    let hi = all.iter().cloned().fold(1e6, f64::max) * 2.0;
    let lo = all.iter().cloned().fold(hi, f64::min).max(1e3) / 2.0;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput vs batch size", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.3f64..8.3f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("batch (log2)")
        .y_desc("ops/s")
        .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round()))
        .draw()?;
    for (prefix, color) in SERIES {
        let points: Vec<(f64, f64)> = BATCHES
            .iter()
            .filter_map(|b| {
                find(cases, &format!("{prefix}/b{b}"))
                    .map(|c| (f64::from(*b).log2(), c.ops_per_sec))
            })
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(prefix)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    for (name, color) in [
        ("syscall/pread64", RGBColor(40, 140, 40)),
        ("syscall/pwrite64", RGBColor(120, 120, 120)),
    ] {
        if let Some(c) = find(cases, name) {
            let y = c.ops_per_sec;
            chart
                .draw_series(LineSeries::new(vec![(0.0, y), (8.0, y)], color))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn latency<DB: DrawingBackend>(
    cases: &[CaseResult],
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let shown: Vec<(&CaseResult, RGBColor)> = LATENCY
        .iter()
        .filter_map(|(n, c)| {
            find(cases, n)
                .filter(|r| !r.samples.is_empty())
                .map(|r| (r, *c))
        })
        .collect();
    let max = shown
        .iter()
        .filter_map(|(r, _)| r.samples.last().copied())
        .max()
        .unwrap_or(1000)
        .max(100) as f64;
    let min = shown
        .iter()
        .filter_map(|(r, _)| r.samples.first().copied())
        .min()
        .unwrap_or(10)
        .max(10) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "latency distribution (CDF; see notes for what is timed)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min / 1.2..max * 1.2).log_scale(), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("ns")
        .y_desc("fraction")
        .draw()?;
    for (r, color) in shown {
        let n = r.samples.len();
        let step = (n / 400).max(1);
        let points: Vec<(f64, f64)> = r
            .samples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i == n - 1)
            .map(|(i, v)| ((*v).max(1) as f64, (i + 1) as f64 / n as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(r.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
