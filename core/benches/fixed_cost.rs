//! A run's fixed cost, in a loop for `perf stat` and callgrind (whose
//! counts other load does not move): `runs` runs of a chain of 100 no-op
//! jobs or a fan-out 1 -> 100 under a `Group`, as in `compare`, on one
//! driver: `seq` (`workers(1)`), `threads` (`workers(2)`), `async` (async
//! jobs) or `plain` (plain jobs) under `run_async` with `workers(64)` in
//! `block_on` on a multi-thread runtime. Prints the wall time per run.
//!
//! `cargo bench -p dojobber --features tokio --bench fixed_cost -- async chain 3000`,
//! or its binary (`target/release/deps/fixed_cost-*`) under
//! `valgrind --tool=callgrind` or `perf stat -e context-switches,task-clock`.
use std::sync::Arc;

use dojobber::{AsyncJob, Context, Group, Job, JobRef, JobResult, PhaseFuture, Runner, async_dep};

struct Deps(Vec<Vec<u32>>);

struct NoOp(u32, Arc<Deps>, bool);
fn node(id: u32, deps: &Arc<Deps>, asynchronous: bool) -> JobRef {
    let job = NoOp(id, Arc::clone(deps), asynchronous);
    if asynchronous {
        async_dep(job)
    } else {
        dojobber::dep(job)
    }
}
impl Job for NoOp {
    fn name(&self) -> String {
        format!("t{}", self.0)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.1.0[self.0 as usize]
            .iter()
            .map(|&d| node(d, &self.1, self.2))
            .collect()
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}
impl AsyncJob for NoOp {
    fn check<'a>(&'a self, _: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn main() {
    // `cargo bench` adds `--bench`.
    let args: Vec<String> = std::env::args().filter(|arg| arg != "--bench").collect();
    let [_, driver, workload, runs] = &args[..] else {
        panic!("usage: fixed_cost seq|threads|async|plain chain|fanout RUNS");
    };
    let runs: usize = runs.parse().expect("a number of runs");
    let asynchronous = driver == "async";
    let (deps, grouped): (Vec<Vec<u32>>, bool) = match workload.as_str() {
        "chain" => (
            (0..100u32)
                .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
                .collect(),
            false,
        ),
        _ => (
            (0..=100u32)
                .map(|i| if i == 0 { vec![] } else { vec![0] })
                .collect(),
            true,
        ),
    };
    let deps = Arc::new(Deps(deps));
    let root = || {
        if grouped {
            dojobber::dep(
                Group::new("all").with_deps((1..=100).map(|i| node(i, &deps, asynchronous))),
            )
        } else {
            node(99, &deps, asynchronous)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..runs {
        let runner = Runner::from_ref(root(), ()).output(std::io::sink());
        let finished = match driver.as_str() {
            "seq" => runner.run().unwrap(),
            "threads" => runner.workers(2).run().unwrap(),
            "async" | "plain" => runtime.block_on(runner.workers(64).run_async()).unwrap(),
            _ => panic!("driver"),
        };
        assert!(finished.into_report().is_success());
    }
    println!(
        "{:.1} us/run",
        started.elapsed().as_secs_f64() * 1e6 / runs as f64
    );
}
