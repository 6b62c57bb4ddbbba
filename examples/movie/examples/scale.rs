//! A large suite written as a user writes one, for timing whole runs:
//! `cargo run --release --example scale -- --shape random --jobs 1000000 --mode fix`.
//!
//! Each job is a small struct with its id; its deps come from the shape in
//! the run's arguments, one `dep(...)` per edge, and the root is a `Group`
//! of the jobs nothing else needs. In `pass` mode every check passes; in
//! `fix` mode every check fails until the job's `run` has executed, so each
//! job goes check → run → recheck; `fix-local` is `fix` with the run's
//! mark in the try's local storage instead of the job value. The shapes are the ones
//! `bench/python-reference/compare.py` builds for the original Python
//! DoJobber, from the same random stream.
//!
//! Like every program on dojobber-cli, it keeps `RUST_BACKTRACE=1` from
//! capturing a backtrace for each failing check
//! (`dojobber_cli::skip_error_backtraces`).
//!
//! It prints one line with the counts; the time a user waits is the whole
//! process, so time it from outside (`/usr/bin/time -v`, hyperfine).
//!
//! `--engine none` is the benchmark's baseline, the floor: the same suite,
//! the same job values through the same user code, run by the simplest
//! loop a user would write by hand instead of dojobber ([`run_by_hand`]).
//! What dojobber takes above it is the engine's cost.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, ValueEnum};
use dojobber::{
    Context, GlobalStorage, Group, Job, JobKind, JobRef, JobResult, LocalStorage, Phase, Runner,
    Status, bail, dep,
};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};

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
    /// What runs the suite.
    #[arg(long, value_enum, default_value = "dojobber")]
    engine: Engine,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Engine {
    /// `Runner::run`, one worker: the whole engine.
    Dojobber,
    /// No engine: the baseline loop of `run_by_hand`.
    None,
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
    /// As `fix`, but the run leaves its mark in the try's local storage
    /// (`cx.local_mut()`, one `bool`) rather than in the job value: what
    /// storing one small value costs.
    FixLocal,
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
        let fixed = match cx.args().mode {
            Mode::Pass => true,
            Mode::Fix => self.fixed.load(Ordering::Relaxed),
            Mode::FixLocal => cx.local().get::<bool>("ran").is_some(),
        };
        if !fixed {
            bail!("j{} is not there yet", self.id);
        }
        Ok(())
    }

    fn run(&self, cx: &mut Context<'_, Suite>) -> JobResult {
        match cx.args().mode {
            Mode::FixLocal => cx.local_mut().insert("ran", true),
            Mode::Pass | Mode::Fix => self.fixed.store(true, Ordering::Relaxed),
        }
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

/// The floor, a benchmark baseline: what the suite costs with no engine.
///
/// The jobs are found as dojobber finds them, ordered by petgraph's
/// `toposort`, and each gets check, and on failure run and recheck, unless
/// a dep did not succeed; at the end, cleanup for each job whose run
/// executed, last run first. No retries, time limits, events, report, or
/// caught panics: only the user's code and the bookkeeping no runner can
/// skip. Returns each job's status, in discovery order, or the name of a
/// job on a cycle.
///
/// Each stage is a function kept out of line, so that a profiler
/// (`callgrind_annotate --inclusive=yes`) shows what it costs; dropping the
/// job values and the graph is what is left of this function's own cost.
#[inline(never)]
fn run_by_hand(root: JobRef<Suite>, suite: &Suite) -> Result<Vec<Status>, String> {
    let found = discover_by_hand(root, suite)?;
    Ok(run_in_order(&found, suite))
}

/// What the hand-written discovery finds.
struct Found {
    /// Every job reachable from the root, the root first.
    jobs: Vec<JobRef<Suite>>,
    /// Edges from a dep to the job that needs it, indexed as `jobs`.
    graph: DiGraph<(), ()>,
    /// The jobs, deps first.
    order: Vec<NodeIndex>,
}

/// Every job reachable from `root` (from the root, `deps()` of each, one
/// `name()` per edge since the name is the identity, a map by name, which
/// is dropped at the end), its edges, and an order with deps first.
#[inline(never)]
fn discover_by_hand(root: JobRef<Suite>, suite: &Suite) -> Result<Found, String> {
    let mut jobs = vec![root];
    let mut by_name = HashMap::from([(jobs[0].name(), 0)]);
    let mut graph = DiGraph::new();
    graph.add_node(());
    let mut next = 0;
    while next < jobs.len() {
        for dep in jobs[next].deps(suite) {
            let at = match by_name.entry(dep.name()) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(new) => {
                    jobs.push(dep);
                    graph.add_node(());
                    *new.insert(jobs.len() - 1)
                }
            };
            graph.add_edge(NodeIndex::new(at), NodeIndex::new(next), ());
        }
        next += 1;
    }
    let order = petgraph::algo::toposort(&graph, None)
        .map_err(|cycle| jobs[cycle.node_id().index()].name())?;
    Ok(Found { jobs, graph, order })
}

/// Each job's phases, deps first, then the cleanups; each job's status.
#[inline(never)]
fn run_in_order(found: &Found, suite: &Suite) -> Vec<Status> {
    let Found { jobs, graph, order } = found;
    let global = GlobalStorage::default();
    let mut status = vec![Status::Pending; jobs.len()];
    let mut ran = Vec::new();
    for &node in order {
        let (at, job) = (node.index(), &jobs[node.index()]);
        let mut deps = graph.neighbors_directed(node, Direction::Incoming);
        status[at] = if !deps.all(|d| status[d.index()].is_success()) {
            Status::Blocked
        } else if job.kind() == JobKind::Dummy {
            Status::Passed
        } else {
            // One try's storage, shared by its phases as in a real run.
            let mut local = LocalStorage::default();
            let mut call = |phase| call(job, phase, suite, &mut local, &global);
            if job.kind() == JobKind::Normal && call(Phase::Check).is_ok() {
                Status::Passed
            } else {
                ran.push(at);
                let run = call(Phase::Run);
                let decided = match job.kind() {
                    JobKind::Normal => call(Phase::Recheck),
                    _ => run,
                };
                match decided {
                    Ok(()) => Status::Fixed,
                    Err(_) => Status::Failed,
                }
            }
        };
    }
    for &at in ran.iter().rev() {
        let mut local = LocalStorage::default();
        let _ = call(&jobs[at], Phase::Cleanup, suite, &mut local, &global);
    }
    status
}

/// One phase of one job, as a driver calls it.
fn call(
    job: &JobRef<Suite>,
    phase: Phase,
    suite: &Suite,
    local: &mut LocalStorage,
    global: &GlobalStorage,
) -> JobResult {
    let mut cx = Context::new(suite, local, global, phase, 1);
    match phase {
        Phase::Check | Phase::Recheck => job.check(&mut cx),
        Phase::Run => job.run(&mut cx),
        Phase::Cleanup => job.cleanup(&mut cx),
    }
}

fn main() -> ExitCode {
    // As every program on dojobber-cli does: a failing check is an expected
    // result here, so `RUST_BACKTRACE=1` must not capture a backtrace for
    // each one (panics keep theirs).
    dojobber_cli::skip_error_backtraces();
    let cli = Cli::parse();
    if cli.jobs == 0 {
        dojobber_cli::say!("error: --jobs must be at least 1");
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
    let counted = match cli.engine {
        Engine::Dojobber => Runner::new(root, suite)
            .run()
            .map(|finished| count(finished.into_report().jobs().map(|job| job.status())))
            .map_err(|error| error.to_string()),
        Engine::None => run_by_hand(dep(root), &suite)
            .map(|status| count(status.into_iter()))
            .map_err(|name| format!("{name} is on a cycle")),
    };
    match counted {
        Ok(counts) => {
            let [passed, fixed, failed, blocked] = counts;
            // A closed or full stdout loses the line, not the exit code.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stdout(),
                "{} jobs: {passed} passed, {fixed} fixed, {failed} failed, {blocked} blocked",
                passed + fixed + failed + blocked
            );
            if failed + blocked == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            dojobber_cli::say!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// How many jobs passed, were fixed, failed, were blocked.
fn count(statuses: impl Iterator<Item = Status>) -> [usize; 4] {
    let mut counts = [0; 4];
    for status in statuses {
        match status {
            Status::Passed => counts[0] += 1,
            Status::Fixed => counts[1] += 1,
            Status::Failed => counts[2] += 1,
            Status::Blocked | Status::Pending => counts[3] += 1,
        }
    }
    counts
}
