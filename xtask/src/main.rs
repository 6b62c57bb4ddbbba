//! Maintenance tasks for the dojobber workspace, run as `cargo xtask <task>`
//! (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask viz`: draws the watch_movie example's job graph before
//!   and after a default run into `docs/` (SVG and PNG), the pictures the
//!   README shows, and the 62-job "sitekit" shape with its 50-page fan-out
//!   collapsed (the default) and, with `--expanded`, drawn in full.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use dojobber_examples::movie::{self, MovieArgs};
use dojobber_viz::{Options, Renderer, Style};

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
        println!("wrote {}", path.display());
    }
    Ok(())
}
