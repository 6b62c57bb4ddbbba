//! SVG and PNG: the pure-Rust pictures, the choice of renderer, errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use dojobber::Report;
use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_viz::{Format, Options, Renderer, Style, VizError, render, write_graph};

fn movie_report() -> Report {
    movie::runner(MovieArgs::default())
        .output(std::io::sink())
        .run()
        .expect("the movie suite sets up")
        .into_report()
}

const PURE: Options = Options {
    details: false,
    renderer: Renderer::PureRust,
    style: Style::DEFAULT,
};

/// No legend, no collapse, no wrapping: one box per job and nothing else.
const PLAIN: Options = Options {
    style: Style::PLAIN,
    ..PURE
};

/// A decoded PNG: width, height, and RGBA pixels.
fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<[u8; 4]>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::ALPHA);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a sane size")];
    let info = reader.next_frame(&mut buffer).expect("PNG pixels");
    assert_eq!(info.color_type, png::ColorType::Rgba);
    let pixels = buffer[..info.buffer_size()]
        .chunks_exact(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    (info.width, info.height, pixels)
}

fn count(pixels: &[[u8; 4]], rgb: [u8; 3]) -> usize {
    pixels.iter().filter(|p| p[..3] == rgb).count()
}

#[test]
fn the_movie_png_decodes_with_status_colours() {
    let png = render(&movie_report(), Format::Png, &PURE).unwrap();
    let (width, height, pixels) = decode(&png);
    // 20 jobs in 7 layers, drawn at twice the SVG's size.
    assert!((1000..4000).contains(&width), "width {width}");
    assert!((600..3000).contains(&height), "height {height}");
    assert!(
        pixels.iter().all(|p| p[3] == 255),
        "the background is opaque"
    );
    let area = pixels.len();
    // Each colour fills whole boxes: thousands of pixels, well short of all.
    for (name, rgb) in [
        ("passed green", [0x00, 0xff, 0x00]),
        ("fixed darkgreen", [0x00, 0x64, 0x00]),
        ("failed red", [0xff, 0x00, 0x00]),
    ] {
        let n = count(&pixels, rgb);
        assert!(n > 5_000 && n < area / 4, "{name}: {n} pixels of {area}");
    }
}

#[test]
fn the_movie_before_a_run_has_no_fill() {
    let runner = movie::runner(MovieArgs::default()).output(std::io::sink());
    let graph = runner.graph().unwrap();
    let png = render(graph.plan(), Format::Png, &PURE).unwrap();
    let (_, _, pixels) = decode(&png);
    for rgb in [[0x00, 0xff, 0x00], [0x00, 0x64, 0x00], [0xff, 0x00, 0x00]] {
        assert_eq!(count(&pixels, rgb), 0, "{rgb:?} before any run");
    }
}

fn plan_of(names: &[&str]) -> Plan {
    let specs = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut spec = JobSpec::new(*name);
            spec.deps = (i + 1..names.len()).take(1).collect();
            spec
        })
        .collect();
    Plan::new(specs, 0, Defaults::default()).unwrap().0
}

/// Dark pixels in the middle of a one-job picture: inside the box, clear
/// of its outline, where the label is.
fn ink_inside_the_box(png: &[u8]) -> usize {
    let (width, height, pixels) = decode(png);
    let (width, height) = (width as usize, height as usize);
    let mut ink = 0;
    for y in height * 2 / 5..height * 3 / 5 {
        for x in width * 3 / 10..width * 7 / 10 {
            let p = pixels[y * width + x];
            if u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]) < 200 {
                ink += 1;
            }
        }
    }
    ink
}

#[test]
fn labels_are_drawn_with_the_embedded_font() {
    // The text is drawn whatever fonts the machine has (or lacks): the
    // middle of a box labelled HHHH has ink, one labelled with spaces none.
    let letters = render(&plan_of(&["HHHH"]), Format::Png, &PLAIN).unwrap();
    let blanks = render(&plan_of(&["    "]), Format::Png, &PLAIN).unwrap();
    let ink = ink_inside_the_box(&letters);
    assert!(ink > 150, "HHHH left {ink} dark pixels");
    assert_eq!(ink_inside_the_box(&blanks), 0);
}

#[test]
fn every_job_and_dep_is_in_the_svg() {
    let report = movie_report();
    let svg = String::from_utf8(render(&report, Format::Svg, &PURE).unwrap()).unwrap();
    let boxes = svg.matches("<g class=\"job\">").count();
    assert_eq!(boxes, report.jobs().len());
    let deps: usize = report.jobs().map(|job| job.deps().len()).sum();
    let arrows = svg.split("class=\"deps\"").nth(1).unwrap();
    let arrows = arrows
        .split("</g>")
        .next()
        .unwrap()
        .matches("<path")
        .count();
    assert_eq!(arrows, deps);
    for job in report.jobs() {
        assert!(svg.contains(&format!("<title>{}</title>", job.name())));
    }
}

#[test]
fn arrows_point_down_from_a_job_to_its_deps() {
    // Root on top, its dep below: in the SVG the root's box comes first
    // and is higher (smaller y); the arrowhead's tip is at the dep's top.
    let plan = plan_of(&["Root", "Dep"]);
    let svg = String::from_utf8(render(&plan, Format::Svg, &PURE).unwrap()).unwrap();
    let ys: Vec<f32> = svg
        .split("<rect")
        .skip(2) // the background
        .map(|rect| attribute(rect, "y"))
        .collect();
    let titles: Vec<&str> = svg
        .split("<title>")
        .skip(1)
        .map(|t| t.split('<').next().unwrap())
        .collect();
    let root = titles.iter().position(|&t| t == "Root").unwrap();
    let dep = titles.iter().position(|&t| t == "Dep").unwrap();
    assert!(ys[root] < ys[dep], "the root is above its dep: {ys:?}");
    let head = svg.split("class=\"arrowheads\"").nth(1).unwrap();
    let tip_y = first_point_y(head);
    assert!(
        (tip_y - ys[dep]).abs() < 0.5,
        "tip {tip_y}, dep top {}",
        ys[dep]
    );
}

fn attribute(element: &str, name: &str) -> f32 {
    let value = element
        .split(&format!(" {name}=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("NaN");
    value.parse().unwrap_or(f32::NAN)
}

/// The y of an arrowhead path's first point (`d="M x,y L ..."`): its tip.
fn first_point_y(element: &str) -> f32 {
    let d = element.split(" d=\"").nth(1).unwrap();
    let first = d
        .trim_start_matches('M')
        .split(['L', ' '])
        .find(|s| !s.is_empty());
    first.unwrap().split(',').nth(1).unwrap().parse().unwrap()
}

#[test]
fn the_format_comes_from_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let report = movie_report();
    for (file, starts) in [
        ("g.dot", b"digraph".as_slice()),
        ("g.GV", b"digraph".as_slice()),
        ("g.svg", b"<svg".as_slice()),
        ("g.png", b"\x89PNG".as_slice()),
    ] {
        let path = dir.path().join(file);
        write_graph(&path, &report, &PURE).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(starts), "{file}");
    }
    let path = dir.path().join("g.jpg");
    let error = write_graph(&path, &report, &PURE).unwrap_err();
    assert!(matches!(error, VizError::UnknownFormat { .. }));
    assert!(error.to_string().contains(".dot, .svg or .png"), "{error}");
    assert!(!path.exists(), "nothing is written for an unknown format");
    let missing = dir.path().join("no/such/dir/g.svg");
    let error = write_graph(&missing, &report, &PURE).unwrap_err();
    assert!(matches!(error, VizError::Io { .. }), "{error}");
}

#[test]
fn a_thousand_jobs_render_in_one_picture() {
    // A wide, deep graph: job i depends on i+1 .. i+3 and on i*2 and i*3.
    let n = 1_000;
    let specs = (0..n)
        .map(|i| {
            let mut spec = JobSpec::new(format!("job {i}"));
            let mut deps: Vec<usize> = (i + 1..n.min(i + 4)).collect();
            deps.extend([i * 2, i * 3].into_iter().filter(|&d| d > i + 3 && d < n));
            spec.deps = deps;
            spec
        })
        .collect();
    let plan = Plan::new(specs, 0, Defaults::default()).unwrap().0;
    let svg = String::from_utf8(render(&plan, Format::Svg, &PURE).unwrap()).unwrap();
    assert_eq!(svg.matches("<g class=\"job\">").count(), n);
}

// The renderer and Graphviz's `dot`. `renderer_follows_path` checks what
// the renderers do with the `dot` this process's PATH finds (or does not);
// the tests below it run it again in a child process whose PATH has no
// `dot`, or a `dot` that fails, so both cases are tested on every machine
// without touching this process's environment.

/// Where PATH finds an executable `dot`, if it does.
fn dot_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("dot"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[test]
fn renderer_follows_path() {
    let plan = plan_of(&["Root", "Dep"]);
    let forced = Options {
        renderer: Renderer::Graphviz,
        ..Options::default()
    };
    let auto = Options::default();
    // Set by the tests below for the child process they start.
    let expect = std::env::var("DOJOBBER_VIZ_EXPECT_DOT").ok();
    let expect = expect.as_deref().unwrap_or(match dot_on_path() {
        Some(_) => "working",
        None => "missing",
    });
    let ours = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap().contains("class=\"jobs\"");
    match expect {
        "working" => {
            let svg = render(&plan, Format::Svg, &forced).expect("dot draws");
            assert!(
                String::from_utf8(svg)
                    .unwrap()
                    .contains("Generated by graphviz")
            );
            let svg = render(&plan, Format::Svg, &auto).unwrap();
            assert!(!ours(svg), "Auto uses dot when it is there");
            let png = render(&plan, Format::Png, &forced).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
            graphviz_reads_awkward_names(&forced);
        }
        "missing" => {
            let error = render(&plan, Format::Svg, &forced).unwrap_err();
            assert!(matches!(error, VizError::DotNotFound), "{error:?}");
            assert!(error.to_string().contains("not on PATH"), "{error}");
            let error = render(&plan, Format::Png, &forced).unwrap_err();
            assert!(matches!(error, VizError::DotNotFound), "{error:?}");
            assert!(ours(render(&plan, Format::Svg, &auto).unwrap()));
            let png = render(&plan, Format::Png, &auto).unwrap();
            assert!(png.starts_with(b"\x89PNG"));
        }
        "failing" => {
            let error = render(&plan, Format::Svg, &forced).unwrap_err();
            match &error {
                VizError::DotFailed { message } => {
                    assert!(message.contains("syntax error in line 1"), "{message}")
                }
                other => panic!("expected DotFailed, got {other:?}"),
            }
            assert!(ours(render(&plan, Format::Svg, &auto).unwrap()));
        }
        other => panic!("DOJOBBER_VIZ_EXPECT_DOT={other}?"),
    }
    // DOT never needs Graphviz.
    let dot = render(&plan, Format::Dot, &forced).unwrap();
    assert!(dot.starts_with(b"digraph dojobber {"));
}

/// Graphviz itself (not only graphviz-rust's parser) reads every awkward
/// name back: the text of each box in its SVG is the job's name.
fn graphviz_reads_awkward_names(forced: &Options) {
    let names = [
        "say \"hi\"",
        "C:\\temp\\",
        "\\",
        "\\\"",
        "two\nlines",
        "\\n is not a newline",
        "{ braces } [brackets]; a -> b",
        "<html><b>bold</b></html>",
        "node",
        "Strict",
        "ünïcödé ✓",
        "\\N \\G \\L",
    ];
    let plan = plan_of(&names);
    let svg = String::from_utf8(render(&plan, Format::Svg, forced).unwrap()).unwrap();
    let xml = resvg::usvg::roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let document = resvg::usvg::roxmltree::Document::parse_with_options(&svg, xml).unwrap();
    let mut shown: Vec<String> = document
        .descendants()
        .filter(|node| node.attribute("class") == Some("node"))
        .map(|node| {
            let lines: Vec<&str> = node
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text())
                .collect();
            lines.join("\n")
        })
        .collect();
    // A line break is shown escaped, as every control character is.
    let mut expected: Vec<String> = names.iter().map(|n| n.replace('\n', "\\u{a}")).collect();
    shown.sort();
    expected.sort();
    assert_eq!(shown, expected, "dot's SVG:\n{svg}");
}

/// Runs `renderer_follows_path` in a child process with `path` as its
/// whole PATH, and checks that it ran and passed.
fn run_child(path: &Path, expect: &str) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["renderer_follows_path", "--exact", "--test-threads=1"])
        .env("PATH", path)
        .env("DOJOBBER_VIZ_EXPECT_DOT", expect)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child with PATH={path:?} failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn forced_graphviz_without_dot_is_a_clear_error() {
    let empty = tempfile::tempdir().unwrap();
    run_child(empty.path(), "missing");
}

#[cfg(unix)]
#[test]
fn a_failing_dot_is_an_error_when_forced_and_a_fallback_otherwise() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let dot = dir.path().join("dot");
    std::fs::write(
        &dot,
        "#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&dot, std::fs::Permissions::from_mode(0o755)).unwrap();
    run_child(dir.path(), "failing");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Whatever the names, the pure-Rust SVG is well-formed and every box
    /// keeps its job's name as its title.
    #[test]
    fn any_names_give_valid_svg(
        names in proptest::collection::hash_set(proptest::prelude::any::<String>(), 1..5)
    ) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let plan = plan_of(&names);
        let svg = String::from_utf8(render(&plan, Format::Svg, &PURE).unwrap()).unwrap();
        let options = resvg::usvg::Options::default();
        let tree = resvg::usvg::Tree::from_str(&svg, &options);
        proptest::prop_assert!(tree.is_ok(), "{:?} for\n{}", tree.err(), svg);
        let document = resvg::usvg::roxmltree::Document::parse(&svg).unwrap();
        let titles = document
            .descendants()
            .filter(|node| node.has_tag_name("title"))
            .filter(|title| title.parent().and_then(|g| g.attribute("class")) == Some("job"))
            .count();
        proptest::prop_assert_eq!(titles, names.len());
    }
}
