//! Rendering through Graphviz's `dot` program, via graphviz-rust.

use std::io::ErrorKind;

use graphviz_rust::cmd::{CommandArg, Format as DotFormat};
use graphviz_rust::dot_structures::Graph;
use graphviz_rust::printer::PrinterContext;

use crate::{Format, VizError};

/// Runs `dot` (found on PATH) on the graph for an SVG or a PNG.
pub(crate) fn render(graph: Graph, format: Format) -> Result<Vec<u8>, VizError> {
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
