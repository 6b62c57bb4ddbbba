//! How close the parallel drivers come to the ideal on jobs that wait.
//!
//! Every job's check sleeps 2 ms and fails, its run sleeps 2 ms, its recheck
//! sleeps 2 ms and passes: three phases of 2 ms per job, and a run for every
//! job, so every job also gets a (no-op) cleanup at the end. The graphs are
//! random DAGs of 200 and 2,000 jobs (1 to 3 deps on earlier jobs, and a
//! root over every job nothing depends on). Drivers:
//!
//! - `threads`: `workers(n)`, jobs sleeping with `std::thread::sleep`;
//! - `async`: `run_async` with `workers(n)` on a multi-thread tokio runtime,
//!   [`AsyncJob`]s sleeping with `tokio::time::sleep`;
//! - `async-task`: the same, with the driver itself in a task
//!   (`tokio::spawn(runner.run_async())`) rather than on the thread that
//!   called `block_on` (as `#[tokio::main]` does);
//! - `async-blk`: the async driver with the thread driver's plain jobs, each
//!   phase on tokio's blocking threads.
//!
//! For each driver and n, the wall time of a whole run (median of
//! `EFFICIENCY_RUNS` runs, 3 by default; `EFFICIENCY_ONLY=threads,async`
//! runs only those drivers; discovery and cleanups included)
//! is divided by the ideal `max(critical path, total work / n)`, with 2 ms
//! per phase: that is `ratio`. The other columns say where the difference
//! goes, each as a factor:
//!
//! - `bound`: a lower bound on the makespan of any schedule of this graph
//!   on n slots (see [`energetic_bound`]), over the ideal: the ideal itself
//!   cannot always be reached;
//! - `sched`: the makespan of the machine's own schedule in virtual time
//!   (phases of exactly 2 ms, no overhead), over the ideal: the scheduling
//!   policy alone (ready jobs in id order);
//! - `lpf`: the same for a longest-path-first policy (of the ready jobs,
//!   the one with the longest chain of jobs still behind it), for comparison;
//! - `sleep`: how long one "2 ms" sleep really takes on that driver,
//!   measured alone, over 2 ms;
//! - `rest`: wall time up to the end of the main run (before cleanups) over
//!   sched x sleep: what the driver adds on top;
//! - `cleanup`: the time from the end of the main run to the end;
//! - `own`: ratio / (bound x sleep): the whole run against the best any
//!   scheduler could do with these sleeps.
//!
//! Run with `cargo bench -p dojobber --bench efficiency --features tokio`.

mod common;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Shape, Spread, human, time_runs};
use dojobber::engine::{Machine, MachineConfig, Plan, Step};
use dojobber::observe::{Event, Observer};
use dojobber::{
    AsyncJob, Context, Failure, Job, JobRef, JobResult, Outcome, Phase, PhaseFuture, Runner,
    async_dep,
};

/// How long every phase waits.
const PHASE: Duration = Duration::from_millis(2);
/// Check (fails), run, recheck (passes).
const PHASES_PER_JOB: u32 = 3;

const SIZES: [usize; 2] = [200, 2_000];
const THREAD_WORKERS: [usize; 3] = [4, 16, 64];
const ASYNC_IN_FLIGHT: [usize; 4] = [4, 16, 64, 1_000];
/// The async driver inside a task, on a worker thread.
const ASYNC_TASK_IN_FLIGHT: [usize; 2] = [64, 1_000];
/// The async driver with plain jobs (on tokio's blocking threads).
const ASYNC_BLOCKING_IN_FLIGHT: [usize; 3] = [4, 16, 64];

fn main() {
    let runs = std::env::var("EFFICIENCY_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    // EFFICIENCY_ONLY=async-blk,threads runs only those drivers.
    let only = std::env::var("EFFICIENCY_ONLY").unwrap_or_default();
    let chosen = |driver: &str| only.is_empty() || only.split(',').any(|d| d == driver);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let thread_sleep = measure_thread_sleep();
    let tokio_sleep = runtime.block_on(measure_tokio_sleep());
    print_header(
        runs,
        thread_sleep,
        tokio_sleep,
        runtime.metrics().num_workers(),
    );
    for jobs in SIZES {
        let shape = Arc::new(Shape::random_dag(jobs));
        let plan = shape.plan();
        let path = shape.longest_path();
        let rows = THREAD_WORKERS
            .iter()
            .map(|&n| ("threads", n, thread_sleep))
            .chain(ASYNC_IN_FLIGHT.iter().map(|&n| ("async", n, tokio_sleep)))
            .chain(
                ASYNC_TASK_IN_FLIGHT
                    .iter()
                    .map(|&n| ("async-task", n, tokio_sleep)),
            )
            .chain(
                ASYNC_BLOCKING_IN_FLIGHT
                    .iter()
                    .map(|&n| ("async-blk", n, thread_sleep)),
            );
        for (driver, n, sleep) in rows.filter(|(driver, ..)| chosen(driver)) {
            let critical = PHASE * PHASES_PER_JOB * path as u32;
            let work = PHASE * PHASES_PER_JOB * jobs as u32 / n as u32;
            let ideal = critical.max(work);
            let bound = energetic_bound(&shape, n);
            let sched = machine_makespan(&plan, n);
            let lpf = longest_path_first_makespan(&shape, n);
            let (mut main_ends, mut tails) = (Vec::new(), Vec::new());
            let spread = time_runs(runs, || {
                let (start, marker) = (Instant::now(), EndOfMain::default());
                let end = Arc::clone(&marker.0);
                let report = match driver {
                    "threads" => run_threads(&shape, n, marker),
                    "async" => runtime.block_on(run_async(Arc::clone(&shape), n, marker)),
                    "async-task" => {
                        let run = runtime.spawn(run_async(Arc::clone(&shape), n, marker));
                        runtime.block_on(run).expect("the task ends")
                    }
                    _ => runtime.block_on(run_async_blocking(&shape, n, marker)),
                };
                assert!(report.is_success(), "every job passes");
                let end = end.lock().unwrap().expect("the main run ended");
                main_ends.push(end - start);
                tails.push(end.elapsed());
            });
            let median = |mut times: Vec<Duration>| {
                times.sort();
                times[times.len() / 2]
            };
            let (main, tail) = (median(main_ends), median(tails));
            let ratio = |d: Duration| d.as_secs_f64() / ideal.as_secs_f64();
            let sleep_factor = sleep.as_secs_f64() / PHASE.as_secs_f64();
            let rest = main.as_secs_f64() / (sched.as_secs_f64() * sleep_factor);
            println!(
                "| {jobs:<5} | {driver:<10} | {n:<5} | {:<25} | {:<8} | {:.3} | {:.3} | {:.3} \
                 | {:.3} | {:.3} | {:.3} | {:<8} | {:.3} |",
                wall(spread),
                human(ideal),
                ratio(spread.median),
                ratio(bound),
                ratio(sched),
                ratio(lpf),
                sleep_factor,
                rest,
                human(tail),
                ratio(spread.median) / (ratio(bound) * sleep_factor),
            );
        }
        println!(
            "|       | ({jobs} jobs: longest path {path} jobs = {}, total work {}) |",
            human(PHASE * PHASES_PER_JOB * path as u32),
            human(PHASE * PHASES_PER_JOB * jobs as u32),
        );
    }
}

/// What was measured alone, and the table's head.
fn print_header(runs: usize, thread_sleep: Duration, tokio_sleep: Duration, workers: usize) {
    println!(
        "one 2 ms sleep, measured alone: std::thread::sleep {}, tokio::time::sleep {} \
         ({} tokio workers)",
        human(thread_sleep),
        human(tokio_sleep),
        workers,
    );
    println!("median of {runs} runs per row");
    println!();
    println!(
        "| jobs  | driver     | n     | wall (min-max)            | ideal    | ratio | bound \
         | sched | lpf   | sleep | rest  | cleanup  | own   |"
    );
    println!(
        "|-------|------------|-------|---------------------------|----------|-------|-------\
         |-------|-------|-------|-------|----------|-------|"
    );
}

fn wall(spread: Spread) -> String {
    format!(
        "{} ({}-{})",
        human(spread.median),
        human(spread.min),
        human(spread.max)
    )
}

/// A job of a [`Shape`] for the thread driver: three phases of 2 ms.
struct Sleeper {
    id: u32,
    shape: Arc<Shape>,
}

impl Job for Sleeper {
    fn name(&self) -> String {
        Shape::name(self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        let shape = &self.shape;
        shape.deps_of(self.id, |id| {
            dojobber::dep(Sleeper {
                id,
                shape: Arc::clone(shape),
            })
        })
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        std::thread::sleep(PHASE);
        if cx.is_recheck() {
            Ok(())
        } else {
            dojobber::bail!("not yet")
        }
    }
    fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
        std::thread::sleep(PHASE);
        Ok(())
    }
}

/// A job of a [`Shape`] for the async driver: three phases of 2 ms.
struct AsyncSleeper {
    id: u32,
    shape: Arc<Shape>,
}

impl Job for AsyncSleeper {
    fn name(&self) -> String {
        Shape::name(self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        let shape = &self.shape;
        shape.deps_of(self.id, |id| {
            async_dep(AsyncSleeper {
                id,
                shape: Arc::clone(shape),
            })
        })
    }
}
impl AsyncJob for AsyncSleeper {
    fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        let recheck = cx.is_recheck();
        Box::pin(async move {
            tokio::time::sleep(PHASE).await;
            if recheck {
                Ok(())
            } else {
                dojobber::bail!("not yet")
            }
        })
    }
    fn run<'a>(&'a self, _: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(PHASE).await;
            Ok(())
        })
    }
}

/// Notes when the main run ends (before the cleanups).
#[derive(Default)]
struct EndOfMain(Arc<Mutex<Option<Instant>>>);

impl Observer for EndOfMain {
    fn on_event(&mut self, event: &Event, _: &Plan) {
        if let Event::RunFinished { .. } = event {
            *self.0.lock().unwrap() = Some(Instant::now());
        }
    }
}

fn run_threads(shape: &Arc<Shape>, workers: usize, marker: EndOfMain) -> dojobber::Report {
    let root = Sleeper {
        id: shape.root(),
        shape: Arc::clone(shape),
    };
    Runner::new(root, ())
        .workers(workers)
        .output(std::io::sink())
        .observe(marker)
        .run()
        .expect("a DAG")
        .into_report()
}

async fn run_async(shape: Arc<Shape>, in_flight: usize, marker: EndOfMain) -> dojobber::Report {
    let root = async_dep(AsyncSleeper {
        id: shape.root(),
        shape,
    });
    Runner::from_ref(root, ())
        .workers(in_flight)
        .output(std::io::sink())
        .observe(marker)
        .run_async()
        .await
        .expect("a DAG")
        .into_report()
}

async fn run_async_blocking(
    shape: &Arc<Shape>,
    in_flight: usize,
    marker: EndOfMain,
) -> dojobber::Report {
    let root = Sleeper {
        id: shape.root(),
        shape: Arc::clone(shape),
    };
    Runner::new(root, ())
        .workers(in_flight)
        .output(std::io::sink())
        .observe(marker)
        .run_async()
        .await
        .expect("a DAG")
        .into_report()
}

/// The mean of 100 back-to-back 2 ms thread sleeps.
fn measure_thread_sleep() -> Duration {
    let start = Instant::now();
    for _ in 0..100 {
        std::thread::sleep(PHASE);
    }
    start.elapsed() / 100
}

/// The mean of 100 back-to-back 2 ms tokio sleeps, in a task.
async fn measure_tokio_sleep() -> Duration {
    tokio::spawn(async {
        let start = Instant::now();
        for _ in 0..100 {
            tokio::time::sleep(PHASE).await;
        }
        start.elapsed() / 100
    })
    .await
    .expect("the task ends")
}

/// Drives the real machine in virtual time, every phase taking exactly
/// [`PHASE`] and no overhead: the makespan of its own decisions.
fn machine_makespan(plan: &Plan, in_flight: usize) -> Duration {
    let config = MachineConfig {
        workers: in_flight,
        // Cleanups are no-ops, and are timed apart.
        cleanup: false,
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(plan.clone(), config);
    let mut flying = BinaryHeap::new();
    let mut now = Duration::ZERO;
    loop {
        match machine.poll(now) {
            Step::Perform(task) => flying.push(Reverse((now + PHASE, task))),
            Step::Idle => {
                let Reverse((at, task)) = flying.pop().expect("a phase in flight");
                now = at;
                let outcome = match task.phase {
                    Phase::Check => Outcome::Fail(Failure::new("not yet")),
                    _ => Outcome::Pass,
                };
                machine
                    .handle_outcome(task, outcome, now)
                    .expect("in flight");
            }
            Step::Done => return now,
            other => panic!("unexpected step {other:?}"),
        }
        while machine.poll_event().is_some() {}
    }
}

/// A lower bound on the makespan of any schedule of the graph's phases on
/// `slots` slots, at least the ideal: for every a and b, the phases that
/// cannot start before a (their chain of phases from the start is that
/// long) and cannot end after T - b (their chain to the end is that long)
/// all run between a and T - b, so T >= a + b + max(their work / slots,
/// one phase). With a = b = 0 it is total work / slots; along a longest
/// path, the critical path.
fn energetic_bound(shape: &Shape, slots: usize) -> Duration {
    let jobs = shape.len();
    let mut depth = vec![0usize; jobs];
    for (job, deps) in shape.deps.iter().enumerate() {
        depth[job] = 1 + deps.iter().map(|&d| depth[d as usize]).max().unwrap_or(0);
    }
    let mut height = vec![1usize; jobs];
    for (job, deps) in shape.deps.iter().enumerate().rev() {
        for &dep in deps {
            height[dep as usize] = height[dep as usize].max(height[job] + 1);
        }
    }
    let per_job = PHASES_PER_JOB as usize;
    let levels = per_job * shape.longest_path();
    // count[a][b]: phases with at least a phases before and b phases after.
    let mut count = vec![vec![0usize; levels + 1]; levels + 1];
    for job in 0..jobs {
        for phase in 0..per_job {
            let before = per_job * (depth[job] - 1) + phase;
            let after = per_job * (height[job] - 1) + (per_job - 1 - phase);
            count[before][after] += 1;
        }
    }
    for a in (0..levels).rev() {
        for b in (0..=levels).rev() {
            count[a][b] += count[a + 1][b];
        }
    }
    for row in &mut count {
        for b in (0..levels).rev() {
            row[b] += row[b + 1];
        }
    }
    let mut best = 0f64;
    for (a, row) in count.iter().enumerate() {
        for (b, &phases) in row.iter().enumerate() {
            if phases > 0 {
                // At least one whole phase, however many slots.
                let window = (phases as f64 / slots as f64).max(1.0);
                best = best.max((a + b) as f64 + window);
            }
        }
    }
    PHASE.mul_f64(best)
}

/// List scheduling in virtual time with another policy: of the ready jobs,
/// the one with the longest chain of jobs still to run through it (itself
/// included) first, then the smallest id. A job holds its slot for its
/// three phases, as with the machine (a try's next phase goes first).
fn longest_path_first_makespan(shape: &Shape, slots: usize) -> Duration {
    let jobs = shape.len();
    let mut dependents = vec![Vec::new(); jobs];
    for (job, deps) in shape.deps.iter().enumerate() {
        for &dep in deps {
            dependents[dep as usize].push(job);
        }
    }
    // Dependents have larger ids: one pass from the end.
    let mut below = vec![0u32; jobs];
    for job in (0..jobs).rev() {
        below[job] = 1 + dependents[job].iter().map(|&d| below[d]).max().unwrap_or(0);
    }
    let mut waiting: Vec<usize> = shape.deps.iter().map(Vec::len).collect();
    let mut ready: BinaryHeap<(u32, Reverse<usize>)> = (0..jobs)
        .filter(|&job| waiting[job] == 0)
        .map(|job| (below[job], Reverse(job)))
        .collect();
    let mut running: BinaryHeap<Reverse<(Duration, usize)>> = BinaryHeap::new();
    let mut now = Duration::ZERO;
    let length = PHASE * PHASES_PER_JOB;
    loop {
        while running.len() < slots {
            let Some((_, Reverse(job))) = ready.pop() else {
                break;
            };
            running.push(Reverse((now + length, job)));
        }
        let Some(Reverse((at, job))) = running.pop() else {
            return now;
        };
        now = at;
        for &dependent in &dependents[job] {
            waiting[dependent] -= 1;
            if waiting[dependent] == 0 {
                ready.push((below[dependent], Reverse(dependent)));
            }
        }
    }
}
