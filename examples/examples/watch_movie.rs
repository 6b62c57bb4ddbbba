//! The reference "watch a movie" example: `cargo run --example watch_movie -- -v`.
//!
//! Exit status: 0 when every job passed, 1 when some job failed or is
//! blocked, 2 when the suite cannot start or the flags are wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dojobber::{Report, Status, Verbosity};
use dojobber_examples::movie::{self, MovieArgs};

/// Invite friends over to watch a movie, one small idempotent job at a time.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Only check: run nothing, retry nothing; show what would be done.
    #[arg(short = 'n', long)]
    no_act: bool,
    /// Print one line per phase of every job.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Verbose, plus error chains, cleanups and the jobs' own log lines.
    #[arg(short = 'd', long)]
    debug: bool,
    /// The movie to watch.
    #[arg(long, default_value = "Noises Off")]
    movie: String,
    /// State of the remote's batteries: `charged` or anything else.
    #[arg(long, default_value = "dead")]
    battery_state: String,
    /// There is room on the couch.
    #[arg(long)]
    couch_space: bool,
    /// The try of Popcorn that succeeds.
    #[arg(long, default_value_t = 5)]
    pop_success_try: u32,
    /// The try of PopcornBowl that succeeds (default: its last, 8).
    #[arg(long)]
    bowl_success_try: Option<u32>,
    /// The try of Pizza that succeeds.
    #[arg(long, default_value_t = 3)]
    pizza_success_try: u32,
    /// Write the run's report as JSON to this file.
    #[arg(long, value_name = "PATH")]
    report_json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.debug, cli.verbose) {
        (true, _) => Verbosity::Debug,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Quiet,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if cli.debug {
            tracing::Level::INFO
        } else {
            tracing::Level::WARN
        })
        .init();

    let args = MovieArgs {
        movie: cli.movie,
        battery_state: cli.battery_state,
        couch_space: cli.couch_space,
        pop_success_try: cli.pop_success_try,
        bowl_success_try: cli.bowl_success_try,
        pizza_success_try: cli.pizza_success_try,
    };
    let finished = match movie::runner(args)
        .no_act(cli.no_act)
        .verbosity(verbosity)
        .run()
    {
        Ok(finished) => finished,
        Err(error) => {
            eprintln!("watch_movie: {error}");
            return ExitCode::from(2);
        }
    };
    let report = finished.into_report();
    print_summary(&report);
    if let Some(path) = &cli.report_json
        && let Err(error) = write_report(&report, path)
    {
        eprintln!("watch_movie: cannot write {}: {error}", path.display());
        return ExitCode::from(2);
    }
    if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(report: &Report) {
    for job in &report.jobs {
        match job.status {
            Status::Failed => {
                let error = job.last_error.as_ref().map(|e| e.message.as_str());
                println!(
                    "{}: failed after {} tries: {}",
                    job.name,
                    job.tries,
                    error.unwrap_or("?")
                );
            }
            Status::Blocked => {
                let by = job.blocked_by.as_deref().unwrap_or("?");
                println!("{}: blocked by {by}", job.name);
            }
            _ => {}
        }
    }
    let count = |status| {
        report
            .jobs
            .iter()
            .filter(|job| job.status == status)
            .count()
    };
    println!(
        "{} jobs: {} passed, {} fixed, {} failed, {} blocked",
        report.jobs.len(),
        count(Status::Passed),
        count(Status::Fixed),
        count(Status::Failed),
        count(Status::Blocked)
    );
}

fn write_report(report: &Report, path: &std::path::Path) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json + "\n")
}
