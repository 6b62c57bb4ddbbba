//! A large suite written as a user writes one, for timing whole runs:
//! `cargo run --release --example scale -- --shape random --jobs 1000000 --mode fix`.
//!
//! Each job is a small struct with its id; its deps come from the shape in
//! the run's arguments, one `dep(...)` per edge, and the root is a `Group`
//! of the jobs nothing else needs. In `pass` mode every check passes; in
//! `fix` mode every check fails until the job's `run` has executed, so each
//! job goes check → run → recheck. The shapes are the ones
//! `bench/python-reference/compare.py` builds for the original Python
//! DoJobber, from the same random stream.
//!
//! Like every program on dojobber-cli, it keeps `RUST_BACKTRACE=1` from
//! capturing a backtrace for each failing check
//! (`dojobber_cli::skip_error_backtraces`).
//!
//! It prints one line with the counts; the time a user waits is the whole
//! process, so time it from outside (`/usr/bin/time -v`, hyperfine).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, ValueEnum};
use dojobber::{Context, Group, Job, JobRef, JobResult, Runner, Status, bail, dep};

#[derive(Parser, Debug)]
struct Cli {
    /// The graph's shape.
    #[arg(long, value_enum, default_value = "random")]
    shape: Shape,
    /// How many jobs, not counting the root group.
    #[arg(long, default_value_t = 10_000)]
    jobs: u32,
    /// Whether checks pass at once or fail until the job has run.
    #[arg(long, value_enum, default_value = "fix")]
    mode: Mode,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Shape {
    /// Job i needs job i - 1.
    Chain,
    /// Job i needs 0 to 3 earlier jobs (1.5 on average), drawn from xorshift64*.
    Random,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Mode {
    /// Every check passes.
    Pass,
    /// Every check fails until run has executed; the recheck passes.
    Fix,
}

/// The run's arguments: every job's deps, by id, and the mode.
struct Suite {
    deps: Vec<Vec<u32>>,
    mode: Mode,
}

/// One job of the suite.
struct Node {
    id: u32,
    fixed: AtomicBool,
}

fn node(id: u32) -> JobRef<Suite> {
    dep(Node {
        id,
        fixed: AtomicBool::new(false),
    })
}

impl Job<Suite> for Node {
    fn name(&self) -> String {
        format!("j{}", self.id)
    }

    fn deps(&self, suite: &Suite) -> Vec<JobRef<Suite>> {
        suite.deps[self.id as usize]
            .iter()
            .map(|&d| node(d))
            .collect()
    }

    fn check(&self, cx: &mut Context<'_, Suite>) -> JobResult {
        if cx.args().mode == Mode::Fix && !self.fixed.load(Ordering::Relaxed) {
            bail!("j{} is not there yet", self.id);
        }
        Ok(())
    }

    fn run(&self, _cx: &mut Context<'_, Suite>) -> JobResult {
        self.fixed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Every job's deps. The random stream is xorshift64* from a fixed seed,
/// so the Python script draws the same graph.
fn shape_deps(shape: Shape, jobs: u32) -> Vec<Vec<u32>> {
    match shape {
        Shape::Chain => (0..jobs)
            .map(|id| if id == 0 { Vec::new() } else { vec![id - 1] })
            .collect(),
        Shape::Random => {
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            let mut below = move |bound: u64| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % bound
            };
            (0..jobs)
                .map(|id| match id {
                    0 => Vec::new(),
                    _ => {
                        let count = below(4);
                        let mut mine: Vec<u32> =
                            (0..count).map(|_| below(u64::from(id)) as u32).collect();
                        mine.sort_unstable();
                        mine.dedup();
                        mine
                    }
                })
                .collect()
        }
    }
}

fn main() -> ExitCode {
    // As every program on dojobber-cli does: a failing check is an expected
    // result here, so `RUST_BACKTRACE=1` must not capture a backtrace for
    // each one (panics keep theirs).
    dojobber_cli::skip_error_backtraces();
    let cli = Cli::parse();
    if cli.jobs == 0 {
        eprintln!("error: --jobs must be at least 1");
        return ExitCode::from(2);
    }
    let deps = shape_deps(cli.shape, cli.jobs);
    let mut needed = vec![false; deps.len()];
    for &d in deps.iter().flatten() {
        needed[d as usize] = true;
    }
    let sinks = (0..cli.jobs).filter(|&id| !needed[id as usize]).map(node);
    let root = Group::new("Root").with_deps(sinks);
    let suite = Suite {
        deps,
        mode: cli.mode,
    };
    let finished = match Runner::new(root, suite).run() {
        Ok(finished) => finished,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let report = finished.into_report();
    let count = |status| report.jobs().filter(|j| j.status() == status).count();
    println!(
        "{} jobs: {} passed, {} fixed, {} failed, {} blocked",
        report.jobs().len(),
        count(Status::Passed),
        count(Status::Fixed),
        count(Status::Failed),
        count(Status::Blocked),
    );
    if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
