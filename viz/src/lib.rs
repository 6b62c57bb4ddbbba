#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod collapse;
mod dot;
pub mod files;
mod font;
mod graphviz;
pub mod html;
mod layered;
mod names;
mod raster;
mod scene;
mod source;
mod style;

use std::path::{Path, PathBuf};

pub use graphviz_rust::{self, dot_structures};
pub use source::GraphSource;
pub use style::Style;

/// Who draws SVG and PNG pictures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Renderer {
    /// Graphviz's `dot` when it is on PATH and works, the pure-Rust
    /// renderer otherwise, without complaint.
    #[default]
    Auto,
    /// Graphviz's `dot`, or an error ([`VizError::DotNotFound`],
    /// [`VizError::DotFailed`]).
    Graphviz,
    /// The pure-Rust renderer, even when Graphviz is installed.
    PureRust,
}

/// A picture format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// DOT text, for Graphviz and other tools.
    Dot,
    /// An SVG document.
    Svg,
    /// A PNG image.
    Png,
}

impl Format {
    /// The format a file name asks for by its extension (`.dot` or `.gv`,
    /// `.svg`, `.png`, in any case).
    ///
    /// ```
    /// use std::path::Path;
    /// use dojobber_viz::Format;
    ///
    /// assert_eq!(Format::from_path(Path::new("out/graph.PNG"))?, Format::Png);
    /// assert!(Format::from_path(Path::new("graph.jpg")).is_err());
    /// # Ok::<(), dojobber_viz::VizError>(())
    /// ```
    pub fn from_path(path: &Path) -> Result<Format, VizError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("dot" | "gv") => Ok(Format::Dot),
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(VizError::UnknownFormat {
                path: path.to_owned(),
            }),
        }
    }
}

/// How to draw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// After a run, add a second line to each label: tries used and time
    /// spent (`2 tries, 1.50 ms`). Off by default, which keeps pictures of
    /// the same outcome identical from run to run.
    pub details: bool,
    /// Who draws SVG and PNG; DOT is always printed by graphviz-rust.
    pub renderer: Renderer,
    /// Legend, collapsed fan-outs, label length, wrapped ranks.
    pub style: Style,
}

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VizError {
    /// The file name's extension names no format this crate writes.
    #[error("cannot tell the picture format of {path:?}: name it .dot, .svg or .png")]
    UnknownFormat {
        /// The file name given.
        path: PathBuf,
    },
    /// [`Renderer::Graphviz`] was asked for and no `dot` program is on PATH.
    #[error(
        "Graphviz's `dot` program is not on PATH: install Graphviz, or draw with the pure-Rust renderer"
    )]
    DotNotFound,
    /// [`Renderer::Graphviz`] was asked for and `dot` failed.
    #[error("Graphviz's `dot` failed: {message}")]
    DotFailed {
        /// What `dot` said.
        message: String,
    },
    /// The pure-Rust renderer could not rasterise its SVG.
    #[error("could not rasterise the picture: {0}")]
    Raster(String),
    /// The file could not be written.
    #[error("could not write {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Draws a plan or a report into a file, in the format its extension
/// names: `.dot` (or `.gv`), `.svg` or `.png`.
///
/// Arguments: `path`, the file to write (replaced whole if it exists, as
/// [`files::write`] does: no link planted at a temporary name or swapped
/// in at `path` is followed; its folder must exist); `source`, a `&Plan` (before a run), a `&Report` (after
/// one) or `(&plan, &report)` (after one, dummy jobs told apart);
/// `options`, whether to show tries and time, who draws, and the [`Style`].
/// DOT keeps every job; pictures collapse fan-outs as the style says.
///
/// Returns an error for an unknown extension (before anything is drawn),
/// for `dot` missing or failing when [`Renderer::Graphviz`] is forced, or
/// when the file cannot be written.
///
/// Complexity: for the pure-Rust renderer, O((V + D) log(V + D)) for V
/// jobs and D points where long edges pass layers; 1,000 jobs take
/// milliseconds to lay out. A PNG costs time in proportion to its pixels.
///
/// ```
/// use dojobber::{Context, Job, JobResult, Runner};
/// use dojobber_viz::{Options, Renderer, write_graph};
///
/// struct Done;
/// impl Job for Done {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
///
/// let report = Runner::new(Done, ()).output(std::io::sink()).run()?.into_report();
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("run.svg");
/// let options = Options { details: true, renderer: Renderer::PureRust, ..Options::default() };
/// write_graph(&path, &report, &options)?;
/// assert!(std::fs::read_to_string(&path)?.contains("Done"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_graph<'a>(
    path: &Path,
    source: impl Into<GraphSource<'a>>,
    options: &Options,
) -> Result<(), VizError> {
    let format = Format::from_path(path)?;
    let bytes = render(source, format, options)?;
    files::write(path, &bytes).map_err(|source| VizError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Draws a plan or a report in memory: DOT or SVG text as UTF-8, or PNG
/// bytes. See [`write_graph`] for the arguments and errors.
///
/// ```
/// use dojobber::engine::{Defaults, JobSpec, Plan};
/// use dojobber_viz::{Format, Options, Renderer, render};
///
/// let mut root = JobSpec::new("Root");
/// root.deps = vec![1];
/// let (plan, _) = Plan::new(vec![root, JobSpec::new("Leaf")], 0, Defaults::default())?;
/// let options = Options { renderer: Renderer::PureRust, ..Options::default() };
/// let png = render(&plan, Format::Png, &options)?;
/// assert!(png.starts_with(b"\x89PNG"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render<'a>(
    source: impl Into<GraphSource<'a>>,
    format: Format,
    options: &Options,
) -> Result<Vec<u8>, VizError> {
    let jobs = source::jobs(source.into());
    if format == Format::Dot {
        return Ok(dot::print(&dot::graph(&jobs, options)).into_bytes());
    }
    let jobs = match options.style.collapse_over {
        Some(over) => collapse::collapse(jobs, over).0,
        None => jobs,
    };
    if options.renderer != Renderer::PureRust {
        match graphviz::render(&jobs, options, format) {
            Ok(bytes) => return Ok(bytes),
            Err(error) if options.renderer == Renderer::Graphviz => return Err(error),
            Err(error) => tracing::debug!(%error, "drawing without Graphviz"),
        }
    }
    let svg = pure_svg(&jobs, options);
    match format {
        Format::Svg => Ok(svg.into_bytes()),
        Format::Png => raster::svg_to_png(&svg),
        Format::Dot => unreachable!("handled above"),
    }
}

/// The pure-Rust SVG of a source, as the HTML page shows it, and for each
/// job of the source the position of the box that draws it (its own, or
/// its collapsed fan-out's) among the SVG's `<g class="job">` groups.
pub(crate) fn svg_with_boxes(source: GraphSource<'_>, options: &Options) -> (String, Vec<usize>) {
    let jobs = source::jobs(source);
    let (jobs, boxes) = match options.style.collapse_over {
        Some(over) => collapse::collapse(jobs, over),
        None => {
            let boxes = (0..jobs.len()).collect();
            (jobs, boxes)
        }
    };
    (pure_svg(&jobs, options), boxes)
}

fn pure_svg(jobs: &[source::Job], options: &Options) -> String {
    let style = &options.style;
    let labels = jobs
        .iter()
        .map(|job| scene::Label::new(job, style, options.details))
        .collect();
    let mut scene = layered::layout(jobs, labels, style.wrap_width.map(|w| w as f32));
    if style.legend {
        scene.add_legend(&source::legend(jobs));
    }
    scene.to_svg()
}

/// The graph in graphviz-rust's DOT model: `digraph dojobber`, one node
/// per job with its name as `label` (shortened and escaped as
/// [`Style::label_chars`] says, then whole in `tooltip` and `comment`),
/// one edge per dep, after a run a fill colour per status, and a legend
/// cluster when [`Style::legend`] is on. Print it with graphviz-rust's printer, or use
/// [`dot_string`].
///
/// ```
/// use dojobber::engine::{Defaults, JobSpec, Plan};
/// use dojobber_viz::{Options, job_names, to_dot};
///
/// let (plan, _) = Plan::new(vec![JobSpec::new("Say \"hi\"")], 0, Defaults::default())?;
/// let graph = to_dot(&plan, &Options::default());
/// assert_eq!(job_names(&graph), ["Say \"hi\""]);
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn to_dot<'a>(source: impl Into<GraphSource<'a>>, options: &Options) -> dot_structures::Graph {
    dot::graph(&source::jobs(source.into()), options)
}

/// The graph as DOT text (see [`to_dot`]), ending with a newline.
///
/// ```
/// use dojobber::engine::{Defaults, JobSpec, Plan};
/// use dojobber_viz::{Options, dot_string};
///
/// let mut root = JobSpec::new("Watch Movie");
/// root.deps = vec![1];
/// let (plan, _) = Plan::new(vec![root, JobSpec::new("Buy Popcorn")], 0, Defaults::default())?;
/// let dot = dot_string(&plan, &Options::default());
/// assert!(dot.contains("Watch_Movie -> Buy_Popcorn"));
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn dot_string<'a>(source: impl Into<GraphSource<'a>>, options: &Options) -> String {
    dot::print(&to_dot(source, options))
}

/// The job names of a graph made by [`to_dot`], read back from its node
/// labels, in order: what Graphviz shows in each box (a long name
/// shortened, control characters escaped, the legend left out). Works on a graph
/// parsed from DOT text too ([`graphviz_rust::parse`]); a label with tries
/// and time ([`Options::details`]) reads back with them on a second line.
pub fn job_names(graph: &dot_structures::Graph) -> Vec<String> {
    dot::labels(graph)
}
