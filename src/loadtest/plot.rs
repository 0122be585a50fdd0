//! The run's timeline as a picture (`bullpen loadtest --plot FILE.svg`): answers and
//! failures a second above, the answers' p50 and p99 below (log scale), and marks across both
//! at the moments something was done to the system (a drill's kill, a switchover).

use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::report::Second;

const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 560);

/// Something that happened during the run, drawn as a vertical line: seconds from the run's
/// start, and what it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub at: f64,
    pub label: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MarkError {
    #[error("line {line}: expected `UNIX_SECONDS LABEL`, got {text:?}")]
    Line { line: usize, text: String },
}

/// Marks from the lines of a marks file, `UNIX_SECONDS LABEL` each (a drill appends one when
/// it acts, while the load runs), placed on a run that started at `started` (Unix seconds).
/// Blank lines are skipped; a line that does not parse is an error naming it.
pub fn parse_marks(text: &str, started: f64) -> Result<Vec<Mark>, MarkError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let (at, label) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            match at.parse::<f64>() {
                Ok(at) if at.is_finite() => Ok(Mark {
                    at: at - started,
                    label: label.trim().to_owned(),
                }),
                _ => Err(MarkError::Line {
                    line: index + 1,
                    text: line.to_owned(),
                }),
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("cannot draw the timeline: {0}")]
pub struct PlotError(String);

/// Draws `timeline` with `marks` into the SVG file at `path`, under `title`.
pub fn plot(
    path: &Path,
    title: &str,
    timeline: &[Second],
    marks: &[Mark],
) -> Result<(), PlotError> {
    draw(path, title, timeline, marks).map_err(|error| PlotError(error.to_string()))
}

fn draw(
    path: &Path,
    title: &str,
    timeline: &[Second],
    marks: &[Mark],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FONT, 18))?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2 - 20);
    let end = timeline
        .iter()
        .map(|second| second.at as f64 + 1.0)
        .chain(marks.iter().map(|mark| mark.at + 1.0))
        .fold(1.0, f64::max);

    let most = timeline
        .iter()
        .map(|second| second.requests as f64)
        .fold(1.0, f64::max)
        * 1.15;
    let per_second = |value: fn(&Second) -> u64| {
        timeline
            .iter()
            .map(|second| (second.at as f64, value(second) as f64))
            .collect()
    };
    Panel {
        y_desc: "per second",
        x_desc: "",
        lines: vec![
            Line("answered", BLUE, per_second(|s| s.requests - s.failed)),
            Line("failed", RED, per_second(|s| s.failed)),
        ],
        labelled: true,
    }
    .draw(&upper, 0.0..end, 0.0..most, marks)?;

    let answered = || {
        timeline
            .iter()
            .filter(|second| second.requests > second.failed)
    };
    let slowest = answered()
        .map(|second| second.ok_p99_ms)
        .fold(1.0, f64::max)
        * 2.0;
    let fastest = answered()
        .map(|second| second.ok_p50_ms)
        .filter(|ms| *ms > 0.0)
        .fold(slowest, f64::min)
        .max(0.002)
        / 2.0;
    let quantile = |value: fn(&Second) -> f64| {
        answered()
            .map(|second| (second.at as f64, value(second).max(fastest)))
            .collect()
    };
    Panel {
        y_desc: "ms (answers)",
        x_desc: "seconds into the run",
        lines: vec![
            Line("p50", RGBColor(0, 140, 70), quantile(|s| s.ok_p50_ms)),
            Line("p99", MAGENTA, quantile(|s| s.ok_p99_ms)),
        ],
        labelled: false,
    }
    .draw(&lower, 0.0..end, (fastest..slowest).log_scale(), marks)?;
    root.present()
}

/// A series drawn: its legend, colour and points (seconds, value).
struct Line(&'static str, RGBColor, Vec<(f64, f64)>);

/// One half of the picture: lines over the run's seconds, a legend, and the marks across.
struct Panel {
    y_desc: &'static str,
    x_desc: &'static str,
    lines: Vec<Line>,
    /// Whether the marks are labelled here (once per picture is enough).
    labelled: bool,
}

impl Panel {
    fn draw<Y>(
        self,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
        x: std::ops::Range<f64>,
        y: Y,
        marks: &[Mark],
    ) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .x_label_area_size(if self.x_desc.is_empty() { 28 } else { 36 })
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .label_style((FONT, 12))
            .draw()?;
        let (low, high) = {
            let range = chart.y_range();
            (range.start, range.end)
        };
        for Line(legend, colour, points) in self.lines {
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(legend)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        let grey = RGBColor(90, 90, 90);
        chart.draw_series(marks.iter().map(|mark| {
            PathElement::new([(mark.at, low), (mark.at, high)], grey.stroke_width(1))
        }))?;
        if self.labelled {
            chart.draw_series(marks.iter().enumerate().map(|(index, mark)| {
                // Labels step down so marks close together stay readable.
                let height = high * (0.97 - 0.08 * (index % 3) as f64);
                Text::new(format!(" {}", mark.label), (mark.at, height), (FONT, 12))
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(at: u64, requests: u64, failed: u64) -> Second {
        Second {
            at,
            requests,
            failed,
            mean_ms: 2.0,
            max_ms: 9.0,
            ok_p50_ms: 1.5,
            ok_p99_ms: 4.0 + at as f64,
        }
    }

    #[test]
    fn marks_are_placed_on_the_run_and_bad_lines_named() {
        let marks = parse_marks("1000.5 kill m1\n\n1004 switchover\n", 1000.0).expect("marks");
        assert_eq!(
            marks,
            vec![
                Mark {
                    at: 0.5,
                    label: "kill m1".to_owned()
                },
                Mark {
                    at: 4.0,
                    label: "switchover".to_owned()
                },
            ]
        );
        let error = parse_marks("1000 ok\nsoon kill\n", 1000.0).expect_err("a bad line");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn the_timeline_is_drawn_with_its_marks() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("run.svg");
        let timeline: Vec<Second> = (0..10)
            .map(|at| second(at, 100, u64::from(at == 4) * 7))
            .collect();
        let marks = [Mark {
            at: 3.5,
            label: "primary killed".to_owned(),
        }];
        plot(&path, "a drill", &timeline, &marks).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        for text in ["a drill", "primary killed", "answered", "failed", "p99"] {
            assert!(svg.contains(text), "{text} missing");
        }
        // An empty run still draws (axes, no lines) rather than failing.
        plot(&path, "nothing sent", &[], &[]).expect("drawn");
    }
}
