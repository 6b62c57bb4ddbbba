//! Framework time per job for each driver, on 100,000 no-op jobs.
//!
//! Every job's check passes at once and does nothing else, so a job is one
//! phase, and no job runs or cleans up. The graph is the random DAG of
//! `benches/machine.rs` (1 to 3 deps on earlier jobs, a root over the
//! rest). A whole run is timed: discovery, planning, scheduling, the panic
//! guard and storage of every phase, and the driver's hand-offs. The
//! user code itself (`deps()` building its dep values, `name()`, an `Ok`)
//! is about 0.2 µs per job (`user_code_only_random_dag` in
//! `benches/machine.rs`).
//!
//! - `sequential`: `workers(1)`, on the caller's thread;
//! - `threads_4`: `workers(4)`, four worker threads;
//! - `async_n/4`, `async_n/64`: `run_async` with `workers(n)`, [`AsyncJob`]s,
//!   on a multi-thread tokio runtime (one worker per core), called from
//!   `block_on` as `#[tokio::main]` does: the driver runs on the calling
//!   thread and every phase on a worker;
//! - `async_in_task/n`: the same, with the driver itself in a task
//!   (`tokio::spawn(runner.run_async())`), on a worker;
//! - `async_current_thread/n`: the same on a current-thread runtime;
//! - `async_blocking_4`: `run_async` with `workers(4)` and plain [`Job`]s,
//!   each phase on tokio's blocking threads.
//!
//! Run with `cargo bench -p dojobber --bench overhead --features tokio`;
//! divan prints the time per run and, with the jobs as items, per job.

mod common;

use std::sync::{Arc, LazyLock};

use common::Shape;
use divan::Bencher;
use divan::counter::ItemsCount;
use dojobber::{AsyncJob, Context, Job, JobRef, JobResult, PhaseFuture, Runner, async_dep};

const JOBS: usize = 100_000;

static SHAPE: LazyLock<Arc<Shape>> = LazyLock::new(|| Arc::new(Shape::random_dag(JOBS)));

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

fn main() {
    divan::main();
}

/// A no-op job of a [`Shape`] whose check passes.
struct NoOp {
    id: u32,
    shape: Arc<Shape>,
}

impl Job for NoOp {
    fn name(&self) -> String {
        Shape::name(self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        let shape = &self.shape;
        shape.deps_of(self.id, |id| {
            dojobber::dep(NoOp {
                id,
                shape: Arc::clone(shape),
            })
        })
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// The same, as an async job.
struct AsyncNoOp {
    id: u32,
    shape: Arc<Shape>,
}

impl Job for AsyncNoOp {
    fn name(&self) -> String {
        Shape::name(self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        let shape = &self.shape;
        shape.deps_of(self.id, |id| {
            async_dep(AsyncNoOp {
                id,
                shape: Arc::clone(shape),
            })
        })
    }
}
impl AsyncJob for AsyncNoOp {
    fn check<'a>(&'a self, _: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn sync_runner(workers: usize) -> Runner<()> {
    let root = NoOp {
        id: SHAPE.root(),
        shape: Arc::clone(&SHAPE),
    };
    Runner::new(root, ())
        .workers(workers)
        .output(std::io::sink())
}

fn async_runner(in_flight: usize) -> Runner<()> {
    let root = async_dep(AsyncNoOp {
        id: SHAPE.root(),
        shape: Arc::clone(&SHAPE),
    });
    Runner::from_ref(root, ())
        .workers(in_flight)
        .output(std::io::sink())
}

/// One run outside the timing, to check that every job passed.
fn check(finished: dojobber::Finished<()>) {
    let report = finished.into_report();
    assert!(report.is_success() && report.jobs().len() == JOBS);
}

// The timed closures return the finished run, so that divan drops the job
// values and the storage after the timing, as `benches/machine.rs` does.

#[divan::bench(sample_count = 5, sample_size = 1)]
fn sequential(bencher: Bencher) {
    check(sync_runner(1).run().expect("a DAG"));
    bencher
        .counter(ItemsCount::new(JOBS))
        .bench_local(|| sync_runner(1).run().expect("a DAG"));
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn threads_4(bencher: Bencher) {
    check(sync_runner(4).run().expect("a DAG"));
    bencher
        .counter(ItemsCount::new(JOBS))
        .bench_local(|| sync_runner(4).run().expect("a DAG"));
}

#[divan::bench(args = [4, 64], sample_count = 5, sample_size = 1)]
fn async_n(bencher: Bencher, in_flight: usize) {
    let run = || {
        RUNTIME
            .block_on(async_runner(in_flight).run_async())
            .expect("a DAG")
    };
    check(run());
    bencher.counter(ItemsCount::new(JOBS)).bench_local(run);
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn async_blocking_4(bencher: Bencher) {
    let run = || RUNTIME.block_on(sync_runner(4).run_async()).expect("a DAG");
    check(run());
    bencher.counter(ItemsCount::new(JOBS)).bench_local(run);
}

static CURRENT_THREAD: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

#[divan::bench(args = [4, 64], sample_count = 5, sample_size = 1)]
fn async_current_thread(bencher: Bencher, in_flight: usize) {
    let run = || {
        CURRENT_THREAD
            .block_on(async_runner(in_flight).run_async())
            .expect("a DAG")
    };
    check(run());
    bencher.counter(ItemsCount::new(JOBS)).bench_local(run);
}

#[divan::bench(args = [4, 64], sample_count = 5, sample_size = 1)]
fn async_in_task(bencher: Bencher, in_flight: usize) {
    let run = || {
        RUNTIME
            .block_on(async { tokio::spawn(async_runner(in_flight).run_async()).await })
            .expect("the task ends")
            .expect("a DAG")
    };
    check(run());
    bencher.counter(ItemsCount::new(JOBS)).bench_local(run);
}
