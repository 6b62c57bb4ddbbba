//! dojobber against the published DAG runners dagx (0.3) and dagrs (0.9),
//! in the same run, on the workloads of dagx's own comparison benchmarks:
//!
//! - `independent_10k`: 10,000 no-op tasks with no deps (dojobber: a
//!   `Group` of 10,000 no-op jobs);
//! - `chain_100`: 100 no-op tasks, each needing the one before (dojobber:
//!   the last job is the root);
//! - `fanout_100`: 100 no-op tasks needing one source task (dojobber: the
//!   100 jobs under a `Group`);
//! - `chain_10k`: the chain, 10,000 long;
//! - `random_100k`: the benchmarks' random DAG of 100,000 tasks (0 to 3
//!   deps each); dojobber's root is a no-op job on every task nothing else
//!   needs, which dagx and dagrs leave out (their tasks take fixed inputs).
//!
//! Every iteration builds the graph and runs it; what it returns (the
//! finished graph or run) is dropped after the timing, on both sides. The
//! async runners run in `block_on` on one multi-thread tokio runtime (one
//! worker per core), built once; dojobber's sync drivers run on the bench
//! thread. A dojobber no-op job is a check that passes; a dagx task returns
//! a `u32`; a dagrs action returns an empty output. dojobber runs with the
//! sequential driver, the thread driver (`workers(2)`), and the async driver
//! (`jobs(64)`) called from `block_on` (as `#[tokio::main]` does) or inside
//! a task, and the async driver on the plain jobs (`dojobber_async_64_plain`).
//!
//! Run with `cargo bench -p dojobber --bench compare --features tokio`.

mod common;

use std::sync::{Arc, LazyLock};

use common::Shape;
use divan::Bencher;
use dojobber::{AsyncJob, Context, Group, Job, JobRef, JobResult, PhaseFuture, Runner, async_dep};

const WORKLOADS: [&str; 5] = [
    "independent_10k",
    "chain_100",
    "fanout_100",
    "chain_10k",
    "random_100k",
];

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
});

fn main() {
    divan::main();
}

/// A workload as dojobber jobs: the jobs' deps, and whether a `Group` over
/// every job nothing depends on is the root (else the last job is).
struct Workload {
    shape: Arc<Shape>,
    grouped: bool,
}

fn workload(name: &str) -> Workload {
    let (deps, grouped) = match name {
        "independent_10k" => (vec![Vec::new(); 10_000], true),
        "chain_100" => (
            (0..100u32)
                .map(|i| if i == 0 { Vec::new() } else { vec![i - 1] })
                .collect(),
            false,
        ),
        "fanout_100" => (
            (0..=100u32)
                .map(|i| if i == 0 { Vec::new() } else { vec![0] })
                .collect(),
            true,
        ),
        "chain_10k" => (Shape::chain(10_000).deps, false),
        "random_100k" => (Shape::random_dag(100_000).deps, false),
        other => panic!("no workload {other}"),
    };
    Workload {
        shape: Arc::new(Shape { deps }),
        grouped,
    }
}

impl Workload {
    /// The root job, with `node` making each job of the shape.
    fn root(&self, node: impl Fn(u32, &Arc<Shape>) -> JobRef) -> JobRef {
        let shape = &self.shape;
        if !self.grouped {
            return node(shape.root(), shape);
        }
        let mut needed = vec![false; shape.len()];
        for dep in shape.deps.iter().flatten() {
            needed[*dep as usize] = true;
        }
        let tops = (0..shape.len() as u32).filter(|&id| !needed[id as usize]);
        dojobber::dep(Group::new("all").with_deps(tops.map(|id| node(id, shape))))
    }
}

/// A no-op job whose check passes.
struct NoOp {
    id: u32,
    shape: Arc<Shape>,
}

fn no_op(id: u32, shape: &Arc<Shape>) -> JobRef {
    dojobber::dep(NoOp {
        id,
        shape: Arc::clone(shape),
    })
}

impl Job for NoOp {
    fn name(&self) -> String {
        format!("t{}", self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.shape.deps_of(self.id, |id| no_op(id, &self.shape))
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

fn async_no_op(id: u32, shape: &Arc<Shape>) -> JobRef {
    async_dep(AsyncNoOp {
        id,
        shape: Arc::clone(shape),
    })
}

impl Job for AsyncNoOp {
    fn name(&self) -> String {
        format!("t{}", self.id)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.shape
            .deps_of(self.id, |id| async_no_op(id, &self.shape))
    }
}
impl AsyncJob for AsyncNoOp {
    fn check<'a>(&'a self, _: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Benches a dojobber run of a workload made of `node`s, after checking
/// once, outside the timing, that every job passes.
fn bench_dojobber(
    bencher: Bencher,
    name: &str,
    node: fn(u32, &Arc<Shape>) -> JobRef,
    run: impl Fn(Runner<()>) -> dojobber::Finished<()>,
) {
    let workload = workload(name);
    let runner = || Runner::from_ref(workload.root(node), ()).output(std::io::sink());
    let report = run(runner()).into_report();
    let jobs = workload.shape.len() + usize::from(workload.grouped);
    assert!(report.is_success() && report.jobs().len() == jobs);
    bencher.bench_local(|| run(runner()));
}

#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dojobber_sequential(bencher: Bencher, name: &str) {
    bench_dojobber(bencher, name, no_op, |runner| runner.run().expect("a DAG"));
}

#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dojobber_threads_2(bencher: Bencher, name: &str) {
    bench_dojobber(bencher, name, no_op, |runner| {
        runner.workers(2).run().expect("a DAG")
    });
}

#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dojobber_async_64(bencher: Bencher, name: &str) {
    bench_dojobber(bencher, name, async_no_op, |runner| {
        RUNTIME
            .block_on(runner.workers(64).run_async())
            .expect("a DAG")
    });
}

/// Plain (synchronous) jobs on the async driver: what a suite that mixes a
/// few async jobs into many plain ones pays per plain phase.
#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dojobber_async_64_plain(bencher: Bencher, name: &str) {
    bench_dojobber(bencher, name, no_op, |runner| {
        RUNTIME
            .block_on(runner.workers(64).run_async())
            .expect("a DAG")
    });
}

/// The async driver inside a task, on a worker thread, rather than on the
/// thread that called `block_on`.
#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dojobber_async_64_in_task(bencher: Bencher, name: &str) {
    bench_dojobber(bencher, name, async_no_op, |runner| {
        let run = RUNTIME.spawn(runner.workers(64).run_async());
        let finished = RUNTIME.block_on(run).expect("the task ends");
        finished.expect("a DAG")
    });
}

/// The floor of using a second thread from `block_on`: one empty task
/// spawned on the runtime and awaited. Any async runner that spreads a
/// fan-out over the runtime's threads pays at least this per run (a
/// wake-up of a parked runtime thread, then one of the caller's); on an
/// idle virtual machine it is most of a small fan-out's time.
#[divan::bench(sample_count = 20, max_time = 5)]
fn floor_tokio_spawn_and_join(bencher: Bencher) {
    bencher.bench_local(|| {
        RUNTIME
            .block_on(RUNTIME.spawn(async {}))
            .expect("an empty task ends")
    });
}

/// The floor of using a second thread from a thread pool that starts its
/// threads per run: one empty scoped thread started and joined, as
/// `workers(2)` does once a second phase is ready. Any such pool pays at
/// least this per run that spreads; on an idle virtual machine it is much
/// of a small fan-out's time.
#[divan::bench(sample_count = 20, max_time = 5)]
fn floor_thread_spawn_and_join(bencher: Bencher) {
    bencher.bench_local(|| {
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .spawn_scoped(scope, || {})
                .expect("a thread starts")
                .join()
                .expect("an empty thread ends")
        })
    });
}

mod dagx_tasks {
    use dagx::{Task, task};

    /// A task with no input.
    pub struct Source;

    #[task]
    impl Source {
        async fn run(&self) -> u32 {
            0
        }
    }

    /// A task with one input.
    pub struct Link;

    #[task]
    impl Link {
        async fn run(&self, input: &u32) -> u32 {
            *input
        }
    }

    /// A task with two inputs.
    pub struct Join2;

    #[task]
    impl Join2 {
        async fn run(&self, a: &u32, b: &u32) -> u32 {
            a + b
        }
    }

    /// A task with three inputs.
    pub struct Join3;

    #[task]
    impl Join3 {
        async fn run(&self, a: &u32, b: &u32, c: &u32) -> u32 {
            a + b + c
        }
    }
}

#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dagx(bencher: Bencher, name: &str) {
    use dagx_tasks::{Join2, Join3, Link, Source};
    let shape = workload(name).shape;
    bencher.bench_local(|| {
        RUNTIME.block_on(async {
            let dag = dagx::DagRunner::new();
            match name {
                "independent_10k" => {
                    for _ in 0..10_000 {
                        dag.add_task(Source);
                    }
                }
                "chain_100" => {
                    let first = dag.add_task(Source);
                    let mut last = dag.add_task(Link).depends_on(&first);
                    for _ in 2..100 {
                        last = dag.add_task(Link).depends_on(last);
                    }
                }
                "fanout_100" => {
                    let source = dag.add_task(Source);
                    for _ in 0..100 {
                        dag.add_task(Link).depends_on(&source);
                    }
                }
                "chain_10k" | "random_100k" => {
                    let mut tasks = Vec::with_capacity(shape.len());
                    for deps in &shape.deps[..without_root(name, &shape)] {
                        let dep = |i: usize| &tasks[deps[i] as usize];
                        let task = match deps.len() {
                            0 => dag.add_task(Source).into(),
                            1 => dag.add_task(Link).depends_on(dep(0)),
                            2 => dag.add_task(Join2).depends_on((dep(0), dep(1))),
                            _ => dag.add_task(Join3).depends_on((dep(0), dep(1), dep(2))),
                        };
                        tasks.push(task);
                    }
                }
                other => panic!("no workload {other}"),
            }
            dag.run(|future| {
                tokio::spawn(future);
            })
            .await
            .expect("the DAG runs");
            dag
        })
    });
}

/// How many tasks of the shape dagx and dagrs run: all but the random
/// DAG's root, which joins too many tasks for a task of fixed inputs.
fn without_root(name: &str, shape: &Shape) -> usize {
    match name {
        "random_100k" => shape.len() - 1,
        _ => shape.len(),
    }
}

/// A dagrs action that does nothing.
struct DagrsNoOp;

#[dagrs::async_trait::async_trait]
impl dagrs::Action for DagrsNoOp {
    async fn run(
        &self,
        _: &mut dagrs::InChannels,
        _: &mut dagrs::OutChannels,
        _: Arc<dagrs::EnvVar>,
    ) -> dagrs::Output {
        dagrs::Output::empty()
    }
}

#[divan::bench(args = WORKLOADS, sample_count = 20, max_time = 5)]
fn dagrs(bencher: Bencher, name: &str) {
    let shape = workload(name).shape;
    let tasks = without_root(name, &shape);
    let mut dependents = vec![Vec::new(); tasks];
    for (to, deps) in shape.deps[..tasks].iter().enumerate() {
        for &from in deps {
            dependents[from as usize].push(to);
        }
    }
    bencher.bench_local(|| {
        RUNTIME.block_on(async {
            let mut table = dagrs::NodeTable::new();
            let mut graph = dagrs::Graph::new();
            let ids: Vec<dagrs::NodeId> = (0..tasks)
                .map(|i| {
                    let node =
                        dagrs::DefaultNode::with_action(format!("t{i}"), DagrsNoOp, &mut table);
                    graph.add_node(node).expect("a new node")
                })
                .collect();
            for (from, to) in dependents.iter().enumerate() {
                if !to.is_empty() {
                    let to = to.iter().map(|&to| ids[to]);
                    graph.add_edge(ids[from], to).expect("known nodes");
                }
            }
            graph.async_start().await.expect("the graph runs");
            graph
        })
    });
}
