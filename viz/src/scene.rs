//! A laid-out picture (boxes, labels and arrows at positions) and its SVG,
//! written with the `svg` crate's document model.

use svg::Document;
use svg::node::element::path::Data;
use svg::node::element::{Group, Path, Rectangle, Text, Title};

use crate::source::{self, Job, LegendEntry};
use crate::{Style, font, names};

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
/// The status strip along the bottom of a collapsed box.
const BAR_HEIGHT: f32 = 7.0;
/// How far the shadow box behind a collapsed box sticks out.
const STACK_OFFSET: f32 = 4.0;

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
    /// The tooltip: the full name (escaped), or a collapsed box's members.
    pub title: String,
    pub lines: Vec<Line>,
    pub width: f32,
    pub height: f32,
    pub fill: Option<&'static str>,
    pub text_colour: &'static str,
    /// Dashed outline.
    pub dummy: bool,
    /// For a collapsed box: the share of each status colour along its
    /// bottom edge, as (web colour, count).
    pub bar: Option<Vec<(&'static str, usize)>>,
}

impl Label {
    pub(crate) fn new(job: &Job, style: &Style, details: bool) -> Label {
        let (name, second) = source::label(job, style, details);
        let mut lines: Vec<Line> = name
            .split('\n')
            .map(|line| Line {
                text: line.to_owned(),
                size: FONT_SIZE,
            })
            .collect();
        if let Some(second) = second {
            lines.push(Line {
                text: second,
                size: DETAIL_FONT_SIZE,
            });
        }
        let bar = job.members.as_ref().map(|members| {
            source::STATUS_ORDER
                .iter()
                .map(|&status| {
                    let colour = source::colours(status)
                        .map_or("#ffffff", |(fill, _)| source::web_colour(fill));
                    let word = source::status_word(status);
                    let n = members
                        .statuses
                        .iter()
                        .filter(|&&s| source::status_word(s) == word)
                        .count();
                    (colour, n)
                })
                .filter(|&(_, n)| n > 0)
                .collect()
        });
        let title = source::tooltip(job, style).unwrap_or_else(|| names::printable(&job.name));
        let (fill, text_colour) = match (&bar, source::colours(job.status)) {
            (None, Some((fill, text))) => {
                (Some(source::web_colour(fill)), source::web_colour(text))
            }
            _ => (None, "#000000"),
        };
        Label::sized(title, lines, fill, text_colour, job.dummy, bar)
    }

    /// A box for `lines`, measured with the embedded font.
    fn sized(
        title: String,
        lines: Vec<Line>,
        fill: Option<&'static str>,
        text_colour: &'static str,
        dummy: bool,
        bar: Option<Vec<(&'static str, usize)>>,
    ) -> Label {
        let text_width = lines
            .iter()
            .map(|line| font::text_width(&line.text, line.size))
            .fold(0.0f32, f32::max);
        let mut height: f32 = lines.iter().map(|line| line.size * LINE_HEIGHT).sum();
        if bar.is_some() {
            height += BAR_HEIGHT;
        }
        Label {
            title,
            lines,
            width: (text_width + 2.0 * PAD_X).max(MIN_WIDTH).ceil(),
            height: (height + 2.0 * PAD_Y).ceil(),
            fill,
            text_colour,
            dummy,
            bar,
        }
    }

    /// A sample box of the legend.
    pub(crate) fn legend(entry: &LegendEntry) -> Label {
        let (fill, text_colour) = match source::colours(entry.status) {
            Some((fill, text)) => (Some(source::web_colour(fill)), source::web_colour(text)),
            None => (None, "#000000"),
        };
        let line = Line {
            text: entry.text.to_owned(),
            size: DETAIL_FONT_SIZE,
        };
        let bar = entry.collapsed.then(|| {
            vec![
                (source::web_colour("darkgreen"), 3),
                (source::web_colour("red"), 1),
            ]
        });
        Label::sized(
            entry.text.to_owned(),
            vec![line],
            fill,
            text_colour,
            entry.dummy,
            bar,
        )
    }
}

/// A job's box, placed.
#[derive(Clone, Debug)]
pub(crate) struct NodeBox {
    pub centre: Point,
    pub label: Label,
}

/// An arrow, or a piece of one that several arrows share (a bundle's
/// trunk): a smooth path, and its head when it reaches a job.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    pub path: Data,
    pub head: Option<[Point; 3]>,
}

impl Segment {
    /// A piece with no head through `points`, top to bottom: between
    /// layers a cubic curve leaving and entering vertically, inside a
    /// layer's band a straight drop, alternately, starting with a curve.
    pub(crate) fn piece(points: &[Point]) -> Segment {
        Segment {
            path: Segment::path(points),
            head: None,
        }
    }

    /// A whole arrow through `points`, a [`piece`](Self::piece) whose
    /// points come in pairs after the first. The head is at the last
    /// point, or at the first when `reversed`.
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
        Segment {
            path: Segment::path(&points),
            head: Some([
                tip,
                Point {
                    x: back.x - ARROW_HALF_WIDTH,
                    y: back.y,
                },
                Point {
                    x: back.x + ARROW_HALF_WIDTH,
                    y: back.y,
                },
            ]),
        }
    }

    fn path(points: &[Point]) -> Data {
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
        data
    }
}

/// A whole picture.
#[derive(Clone, Debug)]
pub(crate) struct Scene {
    pub width: f32,
    pub height: f32,
    pub nodes: Vec<NodeBox>,
    pub edges: Vec<Segment>,
    /// The legend's sample boxes, placed below the graph.
    pub legend: Vec<NodeBox>,
}

/// Space between the legend's sample boxes, and above the legend.
const LEGEND_GAP: f32 = 10.0;
const LEGEND_MARGIN: f32 = 12.0;

impl Scene {
    /// Adds a legend of `entries` in a row under the graph, widening the
    /// picture if the row is wider.
    pub(crate) fn add_legend(&mut self, entries: &[LegendEntry]) {
        let labels: Vec<Label> = entries.iter().map(Label::legend).collect();
        let row_height = labels.iter().map(|l| l.height).fold(0.0f32, f32::max);
        let centre_y = self.height + LEGEND_GAP + STACK_OFFSET + row_height / 2.0;
        let mut x = LEGEND_MARGIN;
        for label in labels {
            let centre = Point {
                x: x + label.width / 2.0,
                y: centre_y,
            };
            x += label.width + LEGEND_GAP;
            self.legend.push(NodeBox { centre, label });
        }
        self.width = self.width.max(x - LEGEND_GAP + LEGEND_MARGIN);
        self.height = centre_y + row_height / 2.0 + LEGEND_MARGIN;
    }

    /// The picture as an SVG document: edges under boxes, every box a
    /// group with a `<title>` (the job's name, shown as a tooltip), and
    /// the legend's boxes last, in a group of class `legend`.
    pub(crate) fn to_svg(&self) -> String {
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
            let Some([a, b, c]) = edge.head else {
                continue;
            };
            let head = Data::new()
                .move_to((r(a.x), r(a.y)))
                .line_to((r(b.x), r(b.y)))
                .line_to((r(c.x), r(c.y)))
                .close();
            heads = heads.add(Path::new().set("d", head));
        }
        let text_group = |class: &str| {
            Group::new()
                .set("class", class)
                .set("font-family", font::CSS_FAMILIES)
                .set("text-anchor", "middle")
                .set("stroke-width", 1.2)
        };
        let mut jobs = text_group("jobs");
        for node in &self.nodes {
            jobs = jobs.add(node_group(node, "job"));
        }
        let width = self.width.ceil().max(1.0);
        let height = self.height.ceil().max(1.0);
        let mut document = Document::new()
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
        if !self.legend.is_empty() {
            let mut legend = text_group("legend");
            for node in &self.legend {
                legend = legend.add(node_group(node, "legend-entry"));
            }
            document = document.add(legend);
        }
        let mut out = document.to_string();
        out.push('\n');
        out
    }
}

/// One box: a `<g>` of class `class` with its tooltip, outline (a shadow
/// box behind it when collapsed), status strip and lines of text.
fn node_group(node: &NodeBox, class: &str) -> Group {
    let (ascent, descent) = font::vertical_metrics(1.0);
    let label = &node.label;
    let left = node.centre.x - label.width / 2.0;
    let top = node.centre.y - label.height / 2.0;
    let outline = |x: f32, y: f32, fill: &str| {
        let rect = Rectangle::new()
            .set("x", r(x))
            .set("y", r(y))
            .set("width", label.width)
            .set("height", label.height)
            .set("rx", CORNER_RADIUS)
            .set("fill", fill)
            .set("stroke", "#000000");
        if label.dummy {
            rect.set("stroke-dasharray", "5 3")
        } else {
            rect
        }
    };
    let mut group = Group::new()
        .set("class", class)
        .add(Title::new(label.title.clone()));
    if label.bar.is_some() {
        group = group.add(outline(left + STACK_OFFSET, top - STACK_OFFSET, "#ffffff"));
    }
    group = group.add(outline(left, top, label.fill.unwrap_or("#ffffff")));
    let text_height: f32 = label.lines.iter().map(|l| l.size * LINE_HEIGHT).sum();
    let bar_height = if label.bar.is_some() { BAR_HEIGHT } else { 0.0 };
    let mut line_top = node.centre.y - (text_height + bar_height) / 2.0;
    for line in &label.lines {
        let line_height = line.size * LINE_HEIGHT;
        // Centre the glyphs' ascent+descent box in the line box.
        let baseline =
            line_top + (line_height - (ascent + descent) * line.size) / 2.0 + ascent * line.size;
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
    if let Some(bar) = &label.bar {
        // The strip: each status's share of the inner width, in order.
        let inner = label.width - 2.0 * CORNER_RADIUS;
        let total: usize = bar.iter().map(|&(_, n)| n).sum();
        let y = line_top + 1.0;
        let mut x = left + CORNER_RADIUS;
        for &(colour, n) in bar {
            let w = inner * n as f32 / total.max(1) as f32;
            group = group.add(
                Rectangle::new()
                    .set("x", r(x))
                    .set("y", r(y))
                    .set("width", r(w))
                    .set("height", BAR_HEIGHT - 2.0)
                    .set("fill", colour)
                    .set("stroke", "none"),
            );
            x += w;
        }
        group = group.add(
            Rectangle::new()
                .set("x", r(left + CORNER_RADIUS))
                .set("y", r(y))
                .set("width", r(inner))
                .set("height", BAR_HEIGHT - 2.0)
                .set("fill", "none")
                .set("stroke", "#000000")
                .set("stroke-width", 0.6),
        );
    }
    group
}
