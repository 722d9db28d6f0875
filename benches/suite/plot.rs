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

/// A line drawn against a second y axis on the right.
pub struct Secondary<'a> {
    /// The right axis' description.
    pub y_desc: &'a str,
    /// The line.
    pub line: Line<'a>,
}

/// Draws `lines` (and optionally a `secondary` line on a right-hand axis)
/// into the SVG file `path`.
pub fn draw(
    path: &Path,
    title: &str,
    x_desc: &str,
    lines: &[Line],
    secondary: Option<Secondary>,
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let (x_min, x_max) = all().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| (a.min(x), b.max(x)));
    let y_max = all().map(|(_, y)| y).fold(0.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let x_range = || (x_min..x_max.max(x_min * 2.0)).log_scale();
    let secondary_top = secondary.as_ref().map_or(1.0, |s| {
        s.line.points.iter().map(|&(_, y)| y).fold(0.0, f64::max) * 1.15
    });
    // Always a dual-coordinate chart (the right axis only drawn when used):
    // the secondary coordinates must be set before the mesh is drawn, or
    // the primary labels go on the right axis too.
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(if secondary.is_some() { 64 } else { 0 })
        .build_cartesian_2d(x_range(), 0f64..y_max.max(1.0))
        .map_err(|e| fail(&e))?
        .set_secondary_coord(x_range(), 0f64..secondary_top.max(1.0));
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("throughput (MB/s)")
        .light_line_style(WHITE)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
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
    if let Some(secondary) = secondary {
        chart
            .configure_secondary_axes()
            .y_desc(secondary.y_desc)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| fail(&e))?;
        let color = BLACK.mix(0.6);
        let points = secondary.line.points;
        chart
            .draw_secondary_series(LineSeries::new(
                points.clone(),
                ShapeStyle::from(color).stroke_width(2),
            ))
            .map_err(|e| fail(&e))?
            .label(secondary.line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_secondary_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
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
