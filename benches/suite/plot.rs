//! SVG plots of the sweeps (`plotters`): throughput vs write size and vs
//! concurrent streams, on a logarithmic x axis.

use std::path::Path;

use plotters::prelude::*;

/// A named line of (x, MB/s) points.
pub struct Line<'a> {
    /// Legend text.
    pub label: &'a str,
    /// The points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// Draws `lines` into the SVG file `path`.
pub fn draw(path: &Path, title: &str, x_desc: &str, lines: &[Line]) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let (x_min, x_max) = all().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let y_max = all().map(|(_, y)| y).fold(0.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_min..x_max.max(x_min * 2.0)).log_scale(),
            0f64..y_max.max(1.0),
        )
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("throughput (MB/s)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| fail(&e))?;
    let colors = [BLUE, RED, GREEN, MAGENTA];
    for (line, color) in lines.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(line.points.clone(), color.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(
                line.points
                    .iter()
                    .map(|&p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| fail(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}
