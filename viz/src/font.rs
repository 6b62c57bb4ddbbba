//! The one font every picture is measured and drawn with: DejaVu Sans,
//! embedded through the `dejavu` crate, so labels render the same on a
//! machine with no fonts installed.

use std::sync::{Arc, OnceLock};

use resvg::usvg::fontdb;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider};

/// The family name the embedded font registers under.
pub(crate) const FAMILY: &str = "DejaVu Sans";

/// What SVG viewers are told to use: the embedded font's family first,
/// then look-alikes a browser will have.
pub(crate) const CSS_FAMILIES: &str = "'DejaVu Sans', Verdana, Arial, sans-serif";

fn data() -> &'static [u8] {
    dejavu::sans::regular()
}

struct Measurer {
    charmap: skrifa::charmap::Charmap<'static>,
    /// Advances and metrics at 1 px per em; scaled by the font size.
    glyphs: GlyphMetrics<'static>,
    ascent: f32,
    descent: f32,
}

fn measurer() -> &'static Measurer {
    static MEASURER: OnceLock<Measurer> = OnceLock::new();
    MEASURER.get_or_init(|| {
        let font = FontRef::new(data()).expect("the embedded DejaVu Sans parses");
        let metrics = font.metrics(Size::new(1.0), LocationRef::default());
        Measurer {
            charmap: font.charmap(),
            glyphs: font.glyph_metrics(Size::new(1.0), LocationRef::default()),
            ascent: metrics.ascent,
            descent: -metrics.descent,
        }
    })
}

/// The width of one line of text at `size` pixels per em, from the font's
/// own advances. A character the font lacks counts as one em.
pub(crate) fn text_width(text: &str, size: f32) -> f32 {
    let m = measurer();
    let ems: f32 = text
        .chars()
        .map(|c| {
            m.charmap
                .map(c)
                .and_then(|gid| m.glyphs.advance_width(gid))
                .unwrap_or(1.0)
        })
        .sum();
    ems * size
}

/// Ascent and descent (both positive) at `size` pixels per em.
pub(crate) fn vertical_metrics(size: f32) -> (f32, f32) {
    let m = measurer();
    (m.ascent * size, m.descent * size)
}

/// A font database holding the embedded font, with every generic family
/// (serif, sans-serif, ...) mapped to it: text drawn from any SVG, whatever
/// family it asks for, uses it rather than vanishing. The machine's fonts,
/// if it has any, are loaded too, only as a fallback for characters
/// DejaVu Sans lacks (Chinese, Japanese, ...); without them such
/// characters show as boxes.
pub(crate) fn database() -> Arc<fontdb::Database> {
    static DATABASE: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    DATABASE
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_font_source(fontdb::Source::Binary(Arc::new(data())));
            db.load_system_fonts();
            db.set_serif_family(FAMILY);
            db.set_sans_serif_family(FAMILY);
            db.set_monospace_family(FAMILY);
            db.set_cursive_family(FAMILY);
            db.set_fantasy_family(FAMILY);
            Arc::new(db)
        })
        .clone()
}
