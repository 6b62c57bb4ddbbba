//! What the NATS benchmarks share: a suite of jobs on a graph shape, and
//! the benchmark program started again as a worker process (`<bench>
//! worker URL SUITE NAME SLOTS`), as a user's program is both coordinator
//! and worker. The coordinator runs in the benchmark's own process.
#![allow(dead_code)] // each benchmark uses its own part

#[allow(dead_code)] // restart() is for the fault tests, pid() for remote_try
#[path = "../../tests/common/server.rs"]
pub mod server;

#[path = "../../../core/benches/common/mod.rs"]
pub mod shape;

pub mod bare;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use dojobber::{Context, Job, JobRef, JobResult, dep};
use dojobber_nats::Worker;
use serde::{Deserialize, Serialize};

pub use server::NatsServer;
#[allow(unused_imports)] // each benchmark uses its own part
pub use shape::{Shape, Spread, human, time_runs};

/// The run's arguments: the graph and what each job does, from which
/// every worker rebuilds the same graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchArgs {
    pub graph: Graph,
    /// `None`: every check passes (one no-op phase per try). `Some(ms)`:
    /// the check fails, the run sleeps `ms`, the recheck passes.
    pub sleep_ms: Option<u64>,
}

/// A graph shape, by how it is made.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Graph {
    /// `n` jobs with no deps, under a root job.
    Independent(usize),
    /// `Shape::random_dag(n)`: `n` jobs, the root included.
    RandomDag(usize),
}

impl Graph {
    pub fn shape(self) -> Shape {
        match self {
            Graph::Independent(jobs) => Shape {
                deps: (0..jobs)
                    .map(|_| Vec::new())
                    .chain([(0..jobs as u32).collect()])
                    .collect(),
            },
            Graph::RandomDag(jobs) => Shape::random_dag(jobs),
        }
    }
}

/// One job of the shape.
struct BenchJob {
    id: u32,
    shape: Arc<Shape>,
}

impl Job<BenchArgs> for BenchJob {
    fn name(&self) -> String {
        Shape::name(self.id)
    }
    fn deps(&self, _: &BenchArgs) -> Vec<JobRef<BenchArgs>> {
        let shape = &self.shape;
        self.shape.deps[self.id as usize]
            .iter()
            .map(|&id| {
                dep(BenchJob {
                    id,
                    shape: Arc::clone(shape),
                })
            })
            .collect()
    }
    fn check(&self, cx: &mut Context<'_, BenchArgs>) -> JobResult {
        if cx.args().sleep_ms.is_some() && !cx.is_recheck() {
            dojobber::bail!("not yet");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, BenchArgs>) -> JobResult {
        if let Some(ms) = cx.args().sleep_ms {
            std::thread::sleep(Duration::from_millis(ms));
        }
        Ok(())
    }
}

/// The root job of a run with `args`.
pub fn root(args: &BenchArgs) -> JobRef<BenchArgs> {
    let shape = Arc::new(args.graph.shape());
    dep(BenchJob {
        id: shape.root(),
        shape,
    })
}

/// If this process was started as a worker, serves until killed and
/// never returns.
pub fn serve_if_worker() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("worker") {
        return;
    }
    let [_, _, url, suite, name, slots] = &args[..] else {
        panic!("usage: {} worker URL SUITE NAME SLOTS", args[0]);
    };
    let slots: usize = slots.parse().expect("SLOTS is a number");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.expect("connect");
        Worker::new(client, suite, name, root)
            .expect("good names")
            .slots(slots)
            .serve()
            .await
            .expect("the worker serves");
    });
    std::process::exit(0);
}

/// Worker processes, killed when dropped.
pub struct Workers(Vec<Child>);

impl Workers {
    /// Starts `count` worker processes of `suite` with `slots` each.
    pub fn start(server: &NatsServer, suite: &str, count: usize, slots: usize) -> Workers {
        Workers::spawn(count, |w| {
            vec![
                "worker".into(),
                server.url(),
                suite.into(),
                format!("w{w}"),
                slots.to_string(),
            ]
        })
    }

    /// Starts `count` bare workers of `suite` ([`bare`]), one slot each.
    pub fn start_bare(server: &NatsServer, suite: &str, count: usize) -> Workers {
        Workers::spawn(count, |_| {
            vec!["bare-worker".into(), server.url(), suite.into()]
        })
    }

    /// Starts `count` copies of this program, copy `w` with `args(w)`.
    fn spawn(count: usize, args: impl Fn(usize) -> Vec<String>) -> Workers {
        let program = std::env::current_exe().expect("the benchmark's own path");
        let children = (0..count)
            .map(|w| {
                Command::new(&program)
                    .args(args(w))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("start a worker")
            })
            .collect();
        Workers(children)
    }
}

impl Workers {
    /// The worker processes' ids.
    pub fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The load average over the last minute, for the record.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/PID/stat` (in clock ticks of 10 ms); `None` off Linux.
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// How many times the threads of a process have waited so far (their
/// voluntary context switches, summed over its live threads from
/// `/proc/PID/task/*/status`): each is one wake-up later, so they count
/// hand-offs between threads, and unlike CPU time barely move with the
/// machine's load; `None` off Linux.
pub fn wake_ups(pid: &str) -> Option<u64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut waits = 0;
    for thread in threads {
        let Ok(status) = std::fs::read_to_string(thread.ok()?.path().join("status")) else {
            continue; // ended meanwhile
        };
        let count = status
            .lines()
            .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))?;
        waits += count.trim().parse::<u64>().ok()?;
    }
    Some(waits)
}
