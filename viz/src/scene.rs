//! A laid-out picture (boxes, labels and arrows at positions) and its SVG,
//! written with the `svg` crate's document model.

use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Group, Path, Rectangle, Text, Title};

use crate::font;
use crate::source::{self, Job};

const FONT_SIZE: f32 = 14.0;
const DETAIL_FONT_SIZE: f32 = 11.0;
const LINE_HEIGHT: f32 = 1.3;
const PAD_X: f32 = 12.0;
const PAD_Y: f32 = 7.0;
const MIN_WIDTH: f32 = 48.0;
pub(crate) const CORNER_RADIUS: f32 = 6.0;
const ARROW_LENGTH: f32 = 9.0;
const ARROW_HALF_WIDTH: f32 = 4.0;
const EDGE_COLOUR: &str = "#333333";

/// A coordinate rounded to hundredths of a pixel, which is plenty and keeps
/// large SVG files small.
fn r(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point {
    pub x: f32,
    pub y: f32,
}

/// One line of a label: its text, as safe for XML, and font size.
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub text: String,
    pub size: f32,
}

/// What a job's box shows, and the box's size.
#[derive(Clone, Debug)]
pub(crate) struct Label {
    pub name: String,
    pub lines: Vec<Line>,
    pub width: f32,
    pub height: f32,
    pub fill: Option<&'static str>,
    pub text_colour: &'static str,
}

impl Label {
    pub(crate) fn new(job: &Job, details: bool) -> Label {
        let mut lines: Vec<Line> = job
            .name
            .split('\n')
            .map(|line| Line {
                text: xml_safe(line),
                size: FONT_SIZE,
            })
            .collect();
        if details && let Some((tries, time)) = job.outcome {
            lines.push(Line {
                text: source::details(job.status, tries, time),
                size: DETAIL_FONT_SIZE,
            });
        }
        let text_width = lines
            .iter()
            .map(|line| font::text_width(&line.text, line.size))
            .fold(0.0f32, f32::max);
        let height: f32 = lines.iter().map(|line| line.size * LINE_HEIGHT).sum();
        let (fill, text_colour) = match source::colours(job.status) {
            Some((fill, text)) => (Some(source::web_colour(fill)), source::web_colour(text)),
            None => (None, "#000000"),
        };
        Label {
            name: xml_safe(&job.name),
            lines,
            width: (text_width + 2.0 * PAD_X).max(MIN_WIDTH).ceil(),
            height: (height + 2.0 * PAD_Y).ceil(),
            fill,
            text_colour,
        }
    }
}

/// Text as XML 1.0 allows it: control characters (which XML forbids or
/// viewers drop) are shown as Rust-style escapes such as `\u{7}`.
fn xml_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\t' {
            out.push(' ');
        } else if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A job's box, placed.
#[derive(Clone, Debug)]
pub(crate) struct NodeBox {
    pub centre: Point,
    pub label: Label,
}

/// An arrow: a smooth path and its head.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub path: Data,
    pub head: [Point; 3],
}

impl Segment {
    /// A path through `points`, top to bottom, where the points come in
    /// pairs after the first: between layers a cubic curve leaving and
    /// entering vertically, inside a layer's band a straight drop. The head
    /// is at the last point, or at the first when `reversed`.
    pub(crate) fn through(mut points: Vec<Point>, reversed: bool) -> Segment {
        debug_assert!(points.len() >= 2 && points.len().is_multiple_of(2));
        let (tip, back) = if reversed {
            let tip = points[0];
            points[0].y += ARROW_LENGTH;
            (tip, points[0])
        } else {
            let last = points.len() - 1;
            let tip = points[last];
            points[last].y -= ARROW_LENGTH;
            (tip, points[last])
        };
        let mut data = Data::new().move_to((r(points[0].x), r(points[0].y)));
        for (i, pair) in points.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            if i % 2 == 0 {
                let bend = (b.y - a.y) / 2.0;
                data = data.cubic_curve_to((
                    r(a.x),
                    r(a.y + bend),
                    r(b.x),
                    r(b.y - bend),
                    r(b.x),
                    r(b.y),
                ));
            } else {
                data = data.line_to((r(b.x), r(b.y)));
            }
        }
        Segment {
            path: data,
            head: [
                tip,
                Point {
                    x: back.x - ARROW_HALF_WIDTH,
                    y: back.y,
                },
                Point {
                    x: back.x + ARROW_HALF_WIDTH,
                    y: back.y,
                },
            ],
        }
    }
}

/// A whole picture.
#[derive(Clone, Debug)]
pub(crate) struct Scene {
    pub width: f32,
    pub height: f32,
    pub nodes: Vec<NodeBox>,
    pub edges: Vec<Segment>,
}

impl Scene {
    /// The picture as an SVG document: edges under boxes, every box a
    /// group with a `<title>` (the job's name, shown as a tooltip).
    pub(crate) fn to_svg(&self) -> String {
        let (ascent, descent) = font::vertical_metrics(1.0);
        let mut edges = Group::new()
            .set("class", "deps")
            .set("fill", "none")
            .set("stroke", EDGE_COLOUR)
            .set("stroke-width", 1.2);
        let mut heads = Group::new()
            .set("class", "arrowheads")
            .set("fill", EDGE_COLOUR)
            .set("stroke", "none");
        for edge in &self.edges {
            edges = edges.add(Path::new().set("d", edge.path.clone()));
            let [a, b, c] = edge.head;
            let head = Data::new()
                .move_to((r(a.x), r(a.y)))
                .line_to((r(b.x), r(b.y)))
                .line_to((r(c.x), r(c.y)))
                .close();
            heads = heads.add(Path::new().set("d", head));
        }
        let mut jobs = Group::new()
            .set("class", "jobs")
            .set("font-family", font::CSS_FAMILIES)
            .set("text-anchor", "middle")
            .set("stroke-width", 1.2);
        for node in &self.nodes {
            let label = &node.label;
            let left = node.centre.x - label.width / 2.0;
            let top = node.centre.y - label.height / 2.0;
            let mut group = Group::new()
                .set("class", "job")
                .add(Title::new(label.name.clone()));
            group = group.add(
                Rectangle::new()
                    .set("x", r(left))
                    .set("y", r(top))
                    .set("width", label.width)
                    .set("height", label.height)
                    .set("rx", CORNER_RADIUS)
                    .set("fill", label.fill.unwrap_or("#ffffff"))
                    .set("stroke", "#000000"),
            );
            let text_height: f32 = label.lines.iter().map(|l| l.size * LINE_HEIGHT).sum();
            let mut line_top = node.centre.y - text_height / 2.0;
            for line in &label.lines {
                let line_height = line.size * LINE_HEIGHT;
                // Centre the glyphs' ascent+descent box in the line box.
                let baseline = line_top
                    + (line_height - (ascent + descent) * line.size) / 2.0
                    + ascent * line.size;
                group = group.add(
                    Text::new(line.text.clone())
                        .set("x", r(node.centre.x))
                        .set("y", r(baseline))
                        .set("font-size", line.size)
                        .set("fill", label.text_colour)
                        .set("xml:space", "preserve"),
                );
                line_top += line_height;
            }
            jobs = jobs.add(group);
        }
        let width = self.width.ceil().max(1.0);
        let height = self.height.ceil().max(1.0);
        let document = Document::new()
            .set("width", width)
            .set("height", height)
            .set("viewBox", (0, 0, width, height))
            .add(
                Rectangle::new()
                    .set("width", "100%")
                    .set("height", "100%")
                    .set("fill", "#ffffff"),
            )
            .add(edges)
            .add(heads)
            .add(jobs);
        let mut out = document.to_string();
        out.push('\n');
        out
    }
}
