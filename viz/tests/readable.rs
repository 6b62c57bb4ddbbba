//! Pictures that stay readable: a legend in each, wide fan-outs collapsed,
//! wide ranks wrapped, long and odd names shortened and escaped.

mod common;

use common::sitekit::sitekit;
use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_viz::{Format, Options, Renderer, Style, render};
use proptest::prelude::*;
use resvg::usvg::roxmltree::{Document, Node};

const PURE: Options = Options {
    details: false,
    renderer: Renderer::PureRust,
    style: Style::DEFAULT,
};

fn svg_of<'a>(source: impl Into<dojobber_viz::GraphSource<'a>>, options: &Options) -> String {
    String::from_utf8(render(source, Format::Svg, options).unwrap()).unwrap()
}

/// A PNG's width and height, from its header.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// The SVG's width attribute, in pixels.
fn svg_width(svg: &str) -> f32 {
    svg_size(svg).0
}

/// The SVG's width and height attributes, in pixels.
fn svg_size(svg: &str) -> (f32, f32) {
    let document = Document::parse(svg).unwrap();
    let root = document.root_element();
    let read = |name| root.attribute(name).unwrap().parse().unwrap();
    (read("width"), read("height"))
}

/// The `<g>` groups of a class, and the texts of each.
fn groups(svg: &str, class: &str) -> Vec<Vec<String>> {
    let document = Document::parse(svg).unwrap();
    document
        .descendants()
        .filter(|node| node.has_tag_name("g") && node.attribute("class") == Some(class))
        .map(|group| {
            group
                .children()
                .filter(|node| node.has_tag_name("text"))
                .map(text_of)
                .collect()
        })
        .collect()
}

/// The text inside an element, without the line breaks the SVG writer
/// puts around it.
fn text_of(node: Node<'_, '_>) -> String {
    let text: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    text.strip_prefix('\n')
        .and_then(|t| t.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_owned()
}

fn titles(svg: &str) -> Vec<String> {
    let document = Document::parse(svg).unwrap();
    document
        .descendants()
        .filter(|node| node.has_tag_name("title"))
        .map(text_of)
        .collect()
}

#[test]
fn every_picture_has_a_legend() {
    let runner = movie::runner(MovieArgs::default()).output(std::io::sink());
    let plan = runner.graph().unwrap().plan().clone();
    let report = runner.run().unwrap().into_report();
    let words = |svg: &str| -> Vec<String> { groups(svg, "legend-entry").concat() };
    assert_eq!(
        words(&svg_of(&plan, &PURE)),
        ["not run", "dummy (groups its deps)"]
    );
    assert_eq!(
        words(&svg_of((&plan, &report), &PURE)),
        [
            "passed",
            "fixed",
            "failed",
            "blocked",
            "not run",
            "dummy (groups its deps)"
        ]
    );
    // A report alone does not know the dummies, so none is claimed.
    assert_eq!(words(&svg_of(&report, &PURE)).len(), 5);
    let (plan, report) = sitekit();
    let legend = words(&svg_of((&plan, &report), &PURE));
    assert_eq!(legend.last().unwrap(), "n × kind: jobs of one kind");
    let plain = Options {
        style: Style::PLAIN,
        ..PURE
    };
    assert!(groups(&svg_of((&plan, &report), &plain), "legend-entry").is_empty());
}

#[test]
fn dummy_jobs_have_dashed_outlines() {
    let runner = movie::runner(MovieArgs::default()).output(std::io::sink());
    let plan = runner.graph().unwrap().plan().clone();
    let plain = Options {
        style: Style::PLAIN,
        ..PURE
    };
    let svg = svg_of(&plan, &plain);
    let dashed = svg.matches("stroke-dasharray").count();
    let dummies = plan
        .ids()
        .filter(|&id| plan.kind(id) == dojobber::JobKind::Dummy)
        .count();
    assert_eq!(dashed, dummies);
    assert!(dummies > 0);
}

#[test]
fn sitekit_collapsed_fits_in_2500_px() {
    let (plan, report) = sitekit();
    let png = render((&plan, &report), Format::Png, &PURE).unwrap();
    let (width, height) = png_size(&png);
    assert!(width <= 2_500, "{width} px wide");
    assert!(height <= 2_500, "{height} px high");
    let svg = svg_of((&plan, &report), &PURE);
    let boxes = groups(&svg, "job");
    // 50 pages in one box, the 12 other jobs in their own.
    assert_eq!(boxes.len(), 13);
    assert!(boxes.contains(&vec![
        "50 × RenderPage".to_owned(),
        "48 fixed, 2 failed".to_owned()
    ]));
    // Its tooltip names the pages, with their statuses.
    let tooltip = titles(&svg)
        .into_iter()
        .find(|t| t.starts_with("RenderPage blog/post-01.md: fixed\n"))
        .expect("the collapsed box's tooltip");
    assert!(tooltip.contains("RenderPage blog/post-08.md: failed"));
    assert!(tooltip.ends_with("… and 10 more"));
}

#[test]
fn collapsing_is_off_with_no_threshold_and_the_expanded_ranks_wrap() {
    let (plan, report) = sitekit();
    let expanded = Options {
        style: Style {
            collapse_over: None,
            ..Style::DEFAULT
        },
        ..PURE
    };
    let svg = svg_of((&plan, &report), &expanded);
    assert_eq!(groups(&svg, "job").len(), 62);
    let unwrapped = Options {
        style: Style {
            wrap_width: None,
            ..expanded.style
        },
        ..PURE
    };
    let flat = svg_of((&plan, &report), &unwrapped);
    assert_eq!(groups(&flat, "job").len(), 62);
    // 50 boxes side by side are over 8,000 px; wrapped, far less.
    assert!(svg_width(&flat) > 8_000.0, "{}", svg_width(&flat));
    assert!(
        svg_width(&svg) < svg_width(&flat) / 2.0,
        "{}",
        svg_width(&svg)
    );
}

#[test]
fn fan_outs_at_or_under_the_threshold_stay_apart() {
    let (plan, report) = sitekit();
    let options = Options {
        style: Style {
            collapse_over: Some(50),
            ..Style::DEFAULT
        },
        ..PURE
    };
    assert_eq!(groups(&svg_of((&plan, &report), &options), "job").len(), 62);
    let options = Options {
        style: Style {
            collapse_over: Some(49),
            ..Style::DEFAULT
        },
        ..PURE
    };
    assert_eq!(groups(&svg_of((&plan, &report), &options), "job").len(), 13);
}

/// A root needing `leaves` jobs named `m0`, `m1`, ... .
fn fan_out(leaves: usize) -> Plan {
    let mut root = JobSpec::new("Root");
    root.deps = (1..=leaves).collect();
    let specs = std::iter::once(root)
        .chain((0..leaves).map(|i| JobSpec::new(format!("m{i}"))))
        .collect();
    Plan::new(specs, 0, Defaults::default()).unwrap().0
}

#[test]
fn an_expanded_fan_out_over_wrapped_rows_grows_linearly_and_straight_down() {
    let expanded = Options {
        style: Style {
            collapse_over: None,
            ..Style::DEFAULT
        },
        ..PURE
    };
    let size = |leaves| svg_of(&fan_out(leaves), &expanded).len() as f64;
    let (one, two, four) = (size(500), size(1_000), size(2_000));
    // The edges share one trunk down the wrapped rows, drawn once, and a
    // branch each; a whole path per edge through every row above its dep
    // grew with the square.
    assert!(four - two < 2.2 * (two - one), "{one} {two} {four}");
    // Its rows stay under one another: as wide as one row, however tall.
    let tall = svg_of(&fan_out(4_000), &expanded);
    assert!(svg_width(&tall) < 2_000.0, "{}", svg_width(&tall));
    // Every dep still has its own arrowhead.
    let svg = svg_of(&fan_out(500), &expanded);
    let heads = svg.split("class=\"arrowheads\"").nth(1).unwrap();
    assert_eq!(
        heads.split("</g>").next().unwrap().matches("<path").count(),
        500
    );
}

fn one_job(name: &str) -> Plan {
    Plan::new(vec![JobSpec::new(name)], 0, Defaults::default())
        .unwrap()
        .0
}

#[test]
fn a_ten_kilobyte_name_gives_an_ordinary_picture() {
    let name = format!("Job{}", "x".repeat(10_240));
    let plan = one_job(&name);
    let svg = svg_of(&plan, &PURE);
    assert!(svg_width(&svg) < 800.0, "{}", svg_width(&svg));
    assert_eq!(titles(&svg)[0], name, "the tooltip keeps the whole name");
    let (width, height) = png_size(&render(&plan, Format::Png, &PURE).unwrap());
    assert!(width < 1_600 && height < 400, "{width}x{height}");
}

#[test]
fn control_characters_are_escaped_in_the_svg() {
    let svg = svg_of(&one_job("a\0\u{7}\tb\nc\u{1b}[31m"), &PURE);
    assert!(!svg.chars().any(|c| c.is_control() && c != '\n'));
    // Line breaks and tabs too: a name is one line, showing what it holds.
    assert_eq!(
        groups(&svg, "job")[0],
        ["a\\u{0}\\u{7}\\u{9}b\\u{a}c\\u{1b}[31m"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However long or odd a name, its picture is of ordinary size, its
    /// label is one short line (line breaks shown as `\u{a}`), and nothing
    /// raw reaches the SVG.
    #[test]
    fn any_name_gives_a_bounded_picture(name in ".{0,3000}", breaks in 0usize..6) {
        let mut name = name;
        for i in 0..breaks {
            let at = name.char_indices().nth(i * 7).map_or(name.len(), |(at, _)| at);
            name.insert(at, '\n');
        }
        let svg = svg_of(&one_job(&name), &PURE);
        prop_assert!(svg_width(&svg) < 800.0, "{}", svg_width(&svg));
        prop_assert!(!svg.chars().any(|c| c.is_control() && c != '\n'));
        let lines = &groups(&svg, "job")[0];
        prop_assert_eq!(lines.len(), 1);
        for line in lines {
            prop_assert!(line.chars().count() <= PURE.style.label_chars);
        }
    }
}
