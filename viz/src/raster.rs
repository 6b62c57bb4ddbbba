//! SVG to PNG in pure Rust: usvg parses (with the embedded font standing in
//! for every font family), resvg draws, tiny-skia encodes.

use resvg::{tiny_skia, usvg};

use crate::VizError;
use crate::font;

/// Pixels per SVG unit for pictures small enough: sharp on high-density
/// screens.
const SCALE: f32 = 2.0;
/// The longest side and the pixel count a PNG may reach; larger pictures
/// are scaled down to fit (a 10,000-job graph still gives a PNG, if not a
/// readable one: use SVG for those).
const MAX_SIDE: f32 = 16_384.0;
const MAX_PIXELS: f32 = 64_000_000.0;

/// Rasterises an SVG document.
pub(crate) fn svg_to_png(svg: &str) -> Result<Vec<u8>, VizError> {
    let options = usvg::Options {
        font_family: font::FAMILY.to_owned(),
        fontdb: font::database(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| VizError::Raster(e.to_string()))?;
    let size = tree.size();
    let (w, h) = (size.width(), size.height());
    let scale = SCALE
        .min(MAX_SIDE / w)
        .min(MAX_SIDE / h)
        .min((MAX_PIXELS / (w * h)).sqrt());
    let width = (w * scale).ceil().max(1.0) as u32;
    let height = (h * scale).ceil().max(1.0) as u32;
    let mut pixmap = tiny_skia::Pixmap::new(width, height)
        .ok_or_else(|| VizError::Raster(format!("cannot allocate a {width}x{height} image")))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| VizError::Raster(e.to_string()))
}
