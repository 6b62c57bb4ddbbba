//! The reference "watch a movie" example: `cargo run --example watch_movie -- -v`.
//!
//! Its own flags describe the evening; the run flags (`-n`, `-v`, `-d`,
//! `-j`, `--report-json`, `--list`, `--graph`, ...) come from
//! `dojobber_cli::RunArgs`, which draws the graphs with dojobber-viz.
//! Exit status: 0 when every job passed, 1 when some job failed or is
//! blocked, 2 when the suite cannot start or the flags are wrong.

use std::process::ExitCode;

use clap::Parser;
use dojobber_cli::RunArgs;
use dojobber_example_movie::{self as movie, MovieArgs};

/// Invite friends over to watch a movie, one small idempotent job at a time.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The movie to watch: Noises Off, MST3K or Babylon 5.
    #[arg(long, default_value = "Noises Off")]
    movie: String,
    /// State of the remote's batteries: `charged` or anything else.
    #[arg(long, default_value = "dead")]
    battery_state: String,
    /// There is room on the couch.
    #[arg(long)]
    couch_space: bool,
    /// The try of Popcorn that succeeds.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pop_success_try: u32,
    /// The try of PopcornBowl that succeeds (default: its last, 8).
    #[arg(long, value_name = "N")]
    bowl_success_try: Option<u32>,
    /// The try of Pizza that succeeds.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pizza_success_try: u32,
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The jobs' own log lines (fluffing pillows, invites sent) show with -d.
    let level = if cli.run.debug {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(level)
        .init();

    let args = MovieArgs {
        movie: cli.movie,
        battery_state: cli.battery_state,
        couch_space: cli.couch_space,
        pop_success_try: cli.pop_success_try,
        bowl_success_try: cli.bowl_success_try,
        pizza_success_try: cli.pizza_success_try,
    };
    cli.run.execute(movie::runner(args))
}
