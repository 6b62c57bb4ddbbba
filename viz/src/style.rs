//! How a picture stays readable: the legend, collapsed fan-outs, short
//! labels and wrapped ranks. DOT text keeps every job whatever the style.

/// What the pictures (SVG and PNG, from either renderer) do to stay
/// readable on large or oddly named graphs. Each field is meant to map to
/// one command-line flag.
///
/// ```
/// use dojobber_viz::{Options, Style};
///
/// // Every job in its own box, however many deps of one kind a job has.
/// let options = Options {
///     style: Style { collapse_over: None, ..Style::default() },
///     ..Options::default()
/// };
/// assert!(options.style.legend);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// Draw a legend of the colours and outlines (on by default).
    pub legend: bool,
    /// When a job has more than this many deps of one kind (the same name
    /// up to its first space or punctuation, trailing digits dropped:
    /// `RenderPage about.md`, `RenderPage 12`), the picture draws them as
    /// one box, `50 × RenderPage`, with their statuses counted. `None`
    /// draws every job. DOT output always keeps every job.
    pub collapse_over: Option<usize>,
    /// Longest label line, in characters: a longer name is shortened in
    /// the middle with `…`, and the full name goes in the box's tooltip
    /// (SVG `<title>`, DOT `tooltip` and `comment`). At least 8.
    pub label_chars: usize,
    /// A rank (row of jobs) wider than this many pixels is wrapped into
    /// several rows, like Graphviz's `unflatten`, so the picture's aspect
    /// stays near a screen's. `None` keeps every rank on one row. Graphviz
    /// is given the same rows as `minlen` on edges; it staggers the rank
    /// but packs it less tightly than the pure-Rust renderer.
    pub wrap_width: Option<u32>,
}

impl Style {
    /// The default style: legend, fan-outs of more than 8 collapsed,
    /// labels of at most 40 characters, ranks wrapped past 1,200 px.
    pub const DEFAULT: Style = Style {
        legend: true,
        collapse_over: Some(8),
        label_chars: 40,
        wrap_width: Some(1_200),
    };

    /// Everything as it is: no legend, no collapse, no wrapping; labels
    /// are still shortened and escaped.
    pub const PLAIN: Style = Style {
        legend: false,
        collapse_over: None,
        label_chars: Style::DEFAULT.label_chars,
        wrap_width: None,
    };
}

impl Default for Style {
    fn default() -> Self {
        Style::DEFAULT
    }
}
