//! Rendering through Graphviz's `dot` program, via graphviz-rust.

use std::io::ErrorKind;

use graphviz_rust::cmd::{CommandArg, Format as DotFormat};
use graphviz_rust::printer::PrinterContext;

use crate::source::Job;
use crate::{Format, Options, VizError, dot, layered, scene};

/// Runs `dot` (found on PATH) on the jobs for an SVG or a PNG. Wide ranks
/// are wrapped as the pure-Rust renderer wraps them, by lengthening the
/// edges into the jobs it moves down (`minlen`).
pub(crate) fn render(jobs: &[Job], options: &Options, format: Format) -> Result<Vec<u8>, VizError> {
    let rows = match options.style.wrap_width {
        Some(max_width) => {
            let widths: Vec<f32> = jobs
                .iter()
                .map(|job| scene::Label::new(job, &options.style, options.details).width)
                .collect();
            layered::wrap_rows(jobs, &widths, max_width as f32)
        }
        None => Vec::new(),
    };
    let graph = dot::graph_with_rows(jobs, options, &rows);
    let format = match format {
        Format::Svg => DotFormat::Svg,
        Format::Png => DotFormat::Png,
        Format::Dot => unreachable!("DOT text is printed, not rendered"),
    };
    graphviz_rust::exec(
        graph,
        &mut PrinterContext::default(),
        vec![CommandArg::Format(format)],
    )
    .map_err(|error| match error.kind() {
        ErrorKind::NotFound => VizError::DotNotFound,
        _ => VizError::DotFailed {
            message: error.to_string().trim().to_owned(),
        },
    })
}
