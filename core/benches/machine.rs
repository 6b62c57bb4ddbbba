//! Framework time per job on large graphs of no-op jobs.
//!
//! Every job's check fails once, its run passes, its recheck passes, so each
//! job costs three phases. `machine_*` drives the bare machine (plan built
//! outside the timing); `runner_*` is a whole run with real job values:
//! discovery, planning, scheduling, panic guards and storage.
//!
//! Run with `cargo bench -p dojobber --bench machine`.

use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use divan::counter::ItemsCount;
use dojobber::engine::{Machine, MachineConfig, Step};
use dojobber::{Context, Failure, Job, JobRef, JobResult, Outcome, Phase, Runner};

mod common;

use common::Shape;

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

/// Drives the machine as a driver of no-op jobs would: every check fails,
/// every run and recheck passes.
fn drive(mut machine: Machine) -> Machine {
    let now = Duration::ZERO;
    loop {
        match machine.poll(now) {
            Step::Perform(task) => {
                let outcome = match task.phase {
                    Phase::Check => Outcome::Fail(Failure::new("not yet")),
                    _ => Outcome::Pass,
                };
                machine.handle_outcome(task, outcome, now).unwrap();
                while machine.poll_event().is_some() {}
            }
            Step::Done => return machine,
            other => panic!("unexpected step {other:?}"),
        }
    }
}

#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn machine_random_dag(bencher: Bencher, jobs: usize) {
    let plan = Shape::random_dag(jobs).plan();
    bencher
        .counter(ItemsCount::new(jobs))
        .with_inputs(|| Machine::new(plan.clone(), MachineConfig::default()))
        .bench_local_values(drive);
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn machine_chain_1m(bencher: Bencher) {
    let plan = Shape::chain(1_000_000).plan();
    bencher
        .counter(ItemsCount::new(1_000_000usize))
        .with_inputs(|| Machine::new(plan.clone(), MachineConfig::default()))
        .bench_local_values(drive);
}

/// A no-op job of a [`Shape`], making its deps on demand.
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
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if cx.is_recheck() {
            Ok(())
        } else {
            dojobber::bail!("not yet")
        }
    }
}

fn run_all(shape: &Arc<Shape>) -> dojobber::Finished<()> {
    let root = NoOp {
        id: shape.root(),
        shape: Arc::clone(shape),
    };
    Runner::new(root, ()).run().expect("a DAG")
}

#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn runner_random_dag(bencher: Bencher, jobs: usize) {
    let shape = Arc::new(Shape::random_dag(jobs));
    bencher
        .counter(ItemsCount::new(jobs))
        .bench_local(|| run_all(&shape));
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn runner_chain_1m(bencher: Bencher) {
    let shape = Arc::new(Shape::chain(1_000_000));
    bencher
        .counter(ItemsCount::new(1_000_000usize))
        .bench_local(|| run_all(&shape));
}

/// The user code a run of [`NoOp`] jobs cannot avoid, without the
/// framework: each job's `deps()`, each dep's `name()`, and the three
/// phases. Subtract it from `runner_*` for the framework's own time.
#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn user_code_only_random_dag(bencher: Bencher, jobs: usize) {
    let shape = Arc::new(Shape::random_dag(jobs));
    let args = ();
    bencher.counter(ItemsCount::new(jobs)).bench_local(|| {
        let (mut local, global) = (
            dojobber::LocalStorage::default(),
            dojobber::GlobalStorage::default(),
        );
        let mut names = 0usize;
        for id in 0..jobs as u32 {
            let job = NoOp {
                id,
                shape: Arc::clone(&shape),
            };
            for dep in job.deps(&args) {
                names += dep.name().len();
            }
            for phase in [Phase::Check, Phase::Run, Phase::Recheck] {
                let mut cx = Context::new(&args, &mut local, &global, phase, 1);
                let result = match phase {
                    Phase::Run => job.run(&mut cx),
                    _ => job.check(&mut cx),
                };
                divan::black_box(result.is_ok());
            }
        }
        names
    });
}
