//! Line charts for reports: loss curves, learning-rate range tests, accuracy per epoch. One small
//! builder, [`LinePlot`], written as PNG or SVG by the file extension.
//!
//! Text in PNGs needs a TrueType font, found at run time (see [`LinePlot::write`]); SVGs leave the
//! text to the viewer and need none.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

/// Why a plot could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The file name ends in neither `.png` nor `.svg`.
    #[error("{path}: unknown plot format (the file name must end in .png or .svg)")]
    UnknownFormat {
        /// The file the plot was to be written to.
        path: PathBuf,
    },
    /// Nothing can be drawn: no series, no plottable point, or an image too small.
    #[error("nothing to plot in `{title}`: {reason}")]
    NoData {
        /// The plot's title.
        title: String,
        /// What is missing.
        reason: String,
    },
    /// No TrueType font for PNG text could be found or loaded; the message says what to do.
    #[error("{0}")]
    Font(String),
    /// plotters failed while drawing.
    #[error("drawing `{title}` failed: {message}")]
    Draw {
        /// The plot's title.
        title: String,
        /// plotters' error.
        message: String,
    },
    /// The file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file the plot was to be written to.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The file formats a plot can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotFormat {
    /// A raster image (`.png`); its text needs a TrueType font.
    Png,
    /// A vector image (`.svg`); its text is left to the viewer.
    Svg,
}

impl PlotFormat {
    /// The format named by `path`'s extension (case-insensitive).
    pub fn from_path(path: &Path) -> Result<Self, PlotError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(PlotFormat::Png),
            Some("svg") => Ok(PlotFormat::Svg),
            _ => Err(PlotError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// Where the legend box sits inside the plotting area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendPosition {
    /// The top left corner.
    UpperLeft,
    /// The top right corner (the default).
    UpperRight,
    /// The bottom left corner.
    LowerLeft,
    /// The bottom right corner.
    LowerRight,
}

/// One labelled line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The name in the legend.
    pub label: String,
    /// The `(x, y)` points, joined in order.
    pub points: Vec<(f64, f64)>,
}

/// A labelled vertical line across the plot, e.g. a suggested learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// The name in the legend.
    pub label: String,
    /// Where the line crosses the x axis.
    pub x: f64,
}

/// A line chart: series of `(x, y)` points, axis labels, optional logarithmic axes and vertical
/// markers.
///
/// ```no_run
/// use ember_lab::LinePlot;
/// LinePlot::new("test accuracy")
///     .x_label("epoch")
///     .y_label("accuracy (%)")
///     .series("sgd", vec![(1.0, 35.0), (2.0, 48.0)])
///     .write(std::path::Path::new("accuracy.png"))?;
/// # Ok::<(), ember_lab::PlotError>(())
/// ```
///
/// Points with a non-finite coordinate (or a non-positive one on a logarithmic axis) are left out,
/// and a line is broken where they were, so a diverged loss does not stretch the axes.
#[derive(Clone, Debug, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    log_x: bool,
    log_y: bool,
    y_range: Option<(f64, f64)>,
    series: Vec<Series>,
    /// Shaded spreads `(x, low, high)`, by index of the series they belong to.
    bands: Vec<(usize, Band)>,
    markers: Vec<Marker>,
    legend: LegendPosition,
    size: (u32, u32),
}

/// A shaded band: `(x, low, high)` points.
type Band = Vec<(f64, f64, f64)>;

/// Tableau's 10 colours: distinguishable, and readable when printed in grey.
const SERIES_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const MARKER_COLORS: [RGBColor; 3] = [
    RGBColor(0, 0, 0),
    RGBColor(120, 120, 120),
    RGBColor(150, 0, 90),
];

impl LinePlot {
    /// An empty plot titled `title`: linear axes, legend upper right, 900×560.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: false,
            log_y: false,
            y_range: None,
            series: Vec::new(),
            bands: Vec::new(),
            markers: Vec::new(),
            legend: LegendPosition::UpperRight,
            size: (900, 560),
        }
    }

    /// The x axis' label.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// The y axis' label.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// A logarithmic x axis (points with x <= 0 are left out).
    pub fn log_x(mut self, on: bool) -> Self {
        self.log_x = on;
        self
    }

    /// A logarithmic y axis (points with y <= 0 are left out).
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }

    /// Shows only `low..=high` on the y axis; points outside are left out (the line breaks there)
    /// instead of stretching the axis.
    pub fn y_range(mut self, low: f64, high: f64) -> Self {
        self.y_range = Some((low, high));
        self
    }

    /// Adds a line labelled `label` through `points`, in the next of ten colours.
    pub fn series(mut self, label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        self.series.push(Series {
            label: label.into(),
            points,
        });
        self
    }

    /// Shades the band between `low` and `high` at each `x` around the series added last, in its
    /// colour (e.g. the spread of a metric over seeds). Points with a non-finite value are left out.
    ///
    /// # Panics
    ///
    /// When no series has been added yet.
    pub fn band(mut self, points: Vec<(f64, f64, f64)>) -> Self {
        let index = self
            .series
            .len()
            .checked_sub(1)
            .expect("LinePlot::band follows the series it shades");
        let points = points
            .into_iter()
            .filter(|&(x, low, high)| self.plottable((x, low)) && self.plottable((x, high)))
            .collect();
        self.bands.push((index, points));
        self
    }

    /// Adds a dashed vertical line at `x` labelled `label` (left out if `x` cannot be plotted).
    pub fn marker(mut self, label: impl Into<String>, x: f64) -> Self {
        self.markers.push(Marker {
            label: label.into(),
            x,
        });
        self
    }

    /// Where the legend box sits (upper right by default).
    pub fn legend(mut self, position: LegendPosition) -> Self {
        self.legend = position;
        self
    }

    /// Image size in pixels (PNG) or user units (SVG): 900×560 by default, at least 200×150.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// Renders the plot and writes it to `path`, as PNG or SVG by its extension. The file is written
    /// atomically (a sibling temporary file renamed over `path`), so a reader never sees half a plot.
    ///
    /// PNG text is drawn with the TrueType font named by the `EMBER_FONT` environment variable, or
    /// else the first of DejaVu Sans / Liberation Sans found in the usual system folders.
    pub fn write(&self, path: &Path) -> Result<(), PlotError> {
        let bytes = match PlotFormat::from_path(path)? {
            PlotFormat::Png => self.render_png()?,
            PlotFormat::Svg => self.render_svg()?.into_bytes(),
        };
        ember_train::write_atomically(path, &bytes).map_err(|source| PlotError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The plot as PNG file bytes.
    pub fn render_png(&self) -> Result<Vec<u8>, PlotError> {
        let lines = self.lines()?;
        ensure_font()?;
        let (width, height) = self.size;
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, self.size).into_drawing_area();
            self.draw_on(&root, &lines)?;
            root.present().map_err(|e| self.draw_error(e))?;
        }
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &rgb,
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| self.draw_error(e))?;
        Ok(png)
    }

    /// The plot as an SVG document.
    pub fn render_svg(&self) -> Result<String, PlotError> {
        let lines = self.lines()?;
        let mut svg = String::new();
        {
            let root =
                FontFreeSvg(SVGBackend::with_string(&mut svg, self.size)).into_drawing_area();
            self.draw_on(&root, &lines)?;
            root.present().map_err(|e| self.draw_error(e))?;
        }
        Ok(svg)
    }

    fn draw_error(&self, e: impl std::fmt::Display) -> PlotError {
        PlotError::Draw {
            title: self.title.clone(),
            message: e.to_string(),
        }
    }

    fn plottable(&self, (x, y): (f64, f64)) -> bool {
        let in_range = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
        in_range(x, self.log_x)
            && in_range(y, self.log_y)
            && self
                .y_range
                .is_none_or(|(low, high)| (low..=high).contains(&y))
    }

    /// Each series split into runs of consecutive plottable points.
    fn lines(&self) -> Result<Vec<Runs>, PlotError> {
        let no_data = |reason: String| PlotError::NoData {
            title: self.title.clone(),
            reason,
        };
        if self.series.is_empty() {
            return Err(no_data("no series".into()));
        }
        if self.size.0 < 200 || self.size.1 < 150 {
            // Smaller leaves no room between the caption, tick labels and legend.
            return Err(no_data(format!(
                "a {}×{} image is too small (at least 200×150)",
                self.size.0, self.size.1
            )));
        }
        if let Some((low, high)) = self.y_range {
            if !(low.is_finite() && high.is_finite() && low < high) {
                return Err(no_data(format!("empty y range [{low}, {high}]")));
            }
        }
        self.series
            .iter()
            .map(|series| {
                let mut runs: Runs = Vec::new();
                let mut current = Vec::new();
                for &point in &series.points {
                    if self.plottable(point) {
                        current.push(point);
                    } else if !current.is_empty() {
                        runs.push(std::mem::take(&mut current));
                    }
                }
                if !current.is_empty() {
                    runs.push(current);
                }
                if runs.is_empty() {
                    let what = if series.points.is_empty() {
                        "no points"
                    } else {
                        "no finite point inside the axes"
                    };
                    return Err(no_data(format!("series `{}` has {what}", series.label)));
                }
                Ok(runs)
            })
            .collect()
    }

    fn draw_on<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        lines: &[Runs],
    ) -> Result<(), PlotError> {
        let band_points = || {
            self.bands
                .iter()
                .flat_map(|(_, b)| b.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
        };
        let points = || {
            lines
                .iter()
                .flatten()
                .flatten()
                .copied()
                .chain(band_points())
        };
        let markers = self
            .markers
            .iter()
            .map(|m| m.x)
            .filter(|&x| x.is_finite() && (!self.log_x || x > 0.0));
        let x = axis_range(points().map(|p| p.0).chain(markers), self.log_x);
        let y = match self.y_range {
            Some((low, high)) => (low, high),
            None => axis_range(points().map(|p| p.1), self.log_y),
        };
        // Whole-number x (epochs) gets one tick per value rather than ticks at 1.1, 1.2, ...
        let whole = points().all(|p| p.0.fract() == 0.0);
        let x_ticks = match points()
            .map(|p| p.0)
            .fold(None, |span: Option<(f64, f64)>, v| {
                Some(span.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            }) {
            Some((lo, hi)) if whole && !self.log_x && hi - lo <= 20.0 => (hi - lo) as usize + 1,
            _ => 10,
        };
        let chart = Axes {
            lines,
            x_ticks,
            y_bounds: y,
        };
        match (self.log_x, self.log_y) {
            (false, false) => self.draw_chart(root, &chart, x.0..x.1, y.0..y.1),
            (true, false) => self.draw_chart(root, &chart, (x.0..x.1).log_scale(), y.0..y.1),
            (false, true) => self.draw_chart(root, &chart, x.0..x.1, (y.0..y.1).log_scale()),
            (true, true) => {
                self.draw_chart(root, &chart, (x.0..x.1).log_scale(), (y.0..y.1).log_scale())
            }
        }
    }

    fn draw_chart<DB, X, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        axes: &Axes,
        x: X,
        y: Y,
    ) -> Result<(), PlotError>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let err = |e| self.draw_error(e);
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(axes.x_ticks)
            .x_label_formatter(&|v| format_tick(*v))
            .y_label_formatter(&|v| format_tick(*v))
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()
            .map_err(err)?;

        let mut legend = Vec::new();
        for (index, band) in &self.bands {
            if band.len() < 2 {
                continue;
            }
            let color = SERIES_COLORS[index % SERIES_COLORS.len()];
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, low, _)| (x, low))
                .chain(band.iter().rev().map(|&(x, _, high)| (x, high)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.18).filled(),
                )))
                .map_err(err)?;
        }
        for (i, (series, runs)) in self.series.iter().zip(axes.lines).enumerate() {
            let color = SERIES_COLORS[i % SERIES_COLORS.len()];
            for run in runs {
                chart
                    .draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))
                    .map_err(err)?;
            }
            legend.push((series.label.as_str(), color, false));
        }
        for (i, marker) in self.markers.iter().enumerate() {
            if !(marker.x.is_finite() && (!self.log_x || marker.x > 0.0)) {
                continue;
            }
            let color = MARKER_COLORS[i % MARKER_COLORS.len()];
            chart
                .draw_series(DashedLineSeries::new(
                    [(marker.x, axes.y_bounds.0), (marker.x, axes.y_bounds.1)],
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            legend.push((marker.label.as_str(), color, true));
        }
        let (x_px, y_px) = chart.plotting_area().get_pixel_range();
        self.draw_legend(root, (x_px, y_px), &legend)
    }

    /// The legend box, drawn here rather than by plotters: plotters sizes its legend through the
    /// font even for SVG, and this measures text through the backend (see [`FontFreeSvg`]).
    fn draw_legend<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        (x_px, y_px): (std::ops::Range<i32>, std::ops::Range<i32>),
        entries: &[(&str, RGBColor, bool)],
    ) -> Result<(), PlotError> {
        let err = |e| self.draw_error(e);
        if entries.is_empty() {
            return Ok(());
        }
        let style = TextStyle::from(("sans-serif", 14).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let mut text_width = 0;
        let mut line_height = 0;
        for (label, _, _) in entries {
            let (w, h) = root.estimate_text_size(label, &style).map_err(err)?;
            text_width = text_width.max(w as i32);
            line_height = line_height.max(h as i32 + 6);
        }
        let (pad, swatch, gap, margin) = (8, 24, 8, 10);
        let width = pad + swatch + gap + text_width + pad;
        let height = 2 * pad + line_height * entries.len() as i32;
        let left = match self.legend {
            LegendPosition::UpperLeft | LegendPosition::LowerLeft => x_px.start + margin,
            LegendPosition::UpperRight | LegendPosition::LowerRight => x_px.end - margin - width,
        };
        let top = match self.legend {
            LegendPosition::UpperLeft | LegendPosition::UpperRight => y_px.start + margin,
            LegendPosition::LowerLeft | LegendPosition::LowerRight => y_px.end - margin - height,
        };
        let corners = [(left, top), (left + width, top + height)];
        root.draw(&Rectangle::new(corners, WHITE.mix(0.85).filled()))
            .map_err(err)?;
        root.draw(&Rectangle::new(corners, RGBColor(160, 160, 160)))
            .map_err(err)?;
        for (i, (label, color, dashed)) in entries.iter().enumerate() {
            let y = top + pad + line_height * i as i32 + line_height / 2;
            let x = left + pad;
            let segments = if *dashed {
                vec![(x, x + 9), (x + 15, x + swatch)]
            } else {
                vec![(x, x + swatch)]
            };
            for (x0, x1) in segments {
                root.draw(&PathElement::new(
                    vec![(x0, y), (x1, y)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            }
            root.draw(&Text::new(label.to_string(), (x + swatch + gap, y), &style))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A series as runs of consecutive plottable points (a line is broken between runs).
type Runs = Vec<Vec<(f64, f64)>>;

/// What [`LinePlot::draw_chart`] needs besides the coordinate ranges.
struct Axes<'a> {
    /// Each series' runs of plottable points.
    lines: &'a [Runs],
    /// At most this many x ticks.
    x_ticks: usize,
    /// The y axis bounds (where markers start and end).
    y_bounds: (f64, f64),
}

/// The axis bounds for `values`, padded a little so lines do not run along the frame.
fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        let (low, high) = (low.log10(), high.log10());
        let pad = if high > low { 0.03 * (high - low) } else { 0.3 };
        (10f64.powf(low - pad), 10f64.powf(high + pad))
    } else {
        let pad = if high > low {
            0.04 * (high - low)
        } else {
            0.1 * low.abs().max(1.0)
        };
        (low - pad, high + pad)
    }
}

/// A short tick label: plain decimals from 0.001 to 10,000, scientific notation outside.
fn format_tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e4).contains(&a) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Where PNG text gets its glyphs from, tried in order after `EMBER_FONT`.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a font for PNG text once per process. plotters' `ab_glyph` text needs the font bytes
/// for the whole process, so they are leaked on purpose (one font, a few hundred KB).
fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FONT.get_or_init(register_font)
        .as_ref()
        .map(|_| ())
        .map_err(|message| PlotError::Font(message.clone()))
}

fn register_font() -> Result<PathBuf, String> {
    let register = |path: &Path, bytes: Vec<u8>| {
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map(|()| path.to_path_buf())
            .map_err(|_| format!("{}: not a TrueType/OpenType font", path.display()))
    };
    if let Some(path) = std::env::var_os("EMBER_FONT") {
        let path = PathBuf::from(path);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("EMBER_FONT={}: {e}", path.display()))?;
        return register(&path, bytes);
    }
    for path in FONT_PATHS.iter().map(Path::new) {
        if let Ok(bytes) = std::fs::read(path) {
            return register(path, bytes);
        }
    }
    Err(
        "no font found to draw the text of a PNG plot: install one (Debian/Ubuntu: \
         `apt-get install fonts-dejavu-core`), point EMBER_FONT at a .ttf file, or write the plot \
         as .svg (which needs no font)"
            .into(),
    )
}

/// The SVG backend with a font-free text size estimate. plotters measures text (captions, tick
/// labels) through the registered font even for SVG, where the viewer draws the text; estimating
/// from the character count instead keeps SVG output independent of the fonts installed here.
struct FontFreeSvg<'a>(SVGBackend<'a>);

impl DrawingBackend for FontFreeSvg<'_> {
    type ErrorType = <SVGBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_text(text, style, pos)
    }
    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        // About 0.55 em per character for a sans-serif face; one em high.
        let size = style.size();
        let width = 0.55 * size * text.chars().count() as f64;
        Ok((width.ceil() as u32, size.ceil() as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot() -> LinePlot {
        LinePlot::new("loss")
            .x_label("lr")
            .y_label("loss")
            .log_x(true)
            .series(
                "raw",
                vec![(1e-4, 2.3), (1e-3, 2.0), (1e-2, 1.5), (1e-1, f64::NAN)],
            )
            .series("smoothed", vec![(1e-4, 2.3), (1e-3, 2.2), (1e-2, 1.9)])
            .marker("max_lr", 5e-3)
            .marker("min_lr", 3.5e-3)
    }

    #[test]
    fn writes_png_and_svg_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("loss.png");
        plot().write(&png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.len() > 1000, "{} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

        let svg = dir.path().join("loss.SVG");
        plot().write(&svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..40.min(text.len())]);
        assert!(text.contains("max_lr") && text.contains("smoothed"));

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");
    }

    #[test]
    fn unknown_extension_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["loss.jpg", "loss"] {
            let path = dir.path().join(name);
            let err = plot().write(&path).unwrap_err();
            assert!(matches!(err, PlotError::UnknownFormat { .. }), "{err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(!path.exists());
        }
    }

    #[test]
    fn empty_series_are_refused_by_name() {
        let err = LinePlot::new("accuracy").render_svg().unwrap_err();
        assert!(err.to_string().contains("no series"), "{err}");
        let err = LinePlot::new("accuracy")
            .series("sgd", vec![(1.0, 0.5)])
            .series("adam", vec![])
            .render_svg()
            .unwrap_err();
        assert!(
            err.to_string().contains("series `adam` has no points"),
            "{err}"
        );
        let err = LinePlot::new("loss")
            .log_y(true)
            .series("diverged", vec![(1.0, f64::NAN), (2.0, -1.0)])
            .render_png()
            .unwrap_err();
        assert!(err.to_string().contains("`diverged`"), "{err}");
    }

    #[test]
    fn y_range_breaks_lines_instead_of_stretching_the_axis() {
        let plot = LinePlot::new("loss")
            .y_range(0.0, 3.0)
            .series("raw", vec![(1.0, 2.0), (2.0, 1e9), (3.0, 1.0), (4.0, 1.5)]);
        let lines = plot.lines().unwrap();
        assert_eq!(
            lines,
            vec![vec![vec![(1.0, 2.0)], vec![(3.0, 1.0), (4.0, 1.5)]]]
        );
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.05), "0.05");
        assert_eq!(format_tick(2.5), "2.5");
        assert_eq!(format_tick(1500.0), "1500");
        assert_eq!(format_tick(1e-5), "1e-5");
        assert_eq!(format_tick(2.5e-5), "2.5e-5");
        assert_eq!(format_tick(-0.125), "-0.125");
    }
}
