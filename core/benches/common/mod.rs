//! What the benchmarks share: graph shapes as plain data, and timing
//! helpers. Each benchmark uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use dojobber::JobRef;
use dojobber::engine::{Defaults, JobSpec, Plan};

/// Deps per job, by id; every dep has a smaller id than its dependent, and
/// the last job is the root.
pub struct Shape {
    pub deps: Vec<Vec<u32>>,
}

impl Shape {
    /// A random DAG: each job but the first has
    /// 1 to 3 deps on earlier jobs; the root depends on every job nothing
    /// else depends on. The same `jobs` always gives the same graph.
    pub fn random_dag(jobs: usize) -> Shape {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |below: usize| {
            // xorshift64*: a fixed, dependency-free stream.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % below
        };
        let mut deps = vec![Vec::new()];
        let mut has_dependent = vec![false; jobs];
        for job in 1..jobs - 1 {
            let count = 1 + next(3);
            let mut mine: Vec<u32> = (0..count).map(|_| next(job) as u32).collect();
            mine.sort_unstable();
            mine.dedup();
            for &dep in &mine {
                has_dependent[dep as usize] = true;
            }
            deps.push(mine);
        }
        let sinks = (0..jobs - 1)
            .filter(|&j| !has_dependent[j])
            .map(|j| j as u32);
        deps.push(sinks.collect());
        Shape { deps }
    }

    /// A chain: job i depends on job i - 1; the last is the root.
    pub fn chain(jobs: usize) -> Shape {
        let deps = (0..jobs)
            .map(|job| match job {
                0 => Vec::new(),
                _ => vec![job as u32 - 1],
            })
            .collect();
        Shape { deps }
    }

    /// The shape as a plan, jobs named `j<id>`, default tries and delay.
    pub fn plan(&self) -> Plan {
        let specs = self
            .deps
            .iter()
            .enumerate()
            .map(|(job, deps)| {
                let mut spec = JobSpec::new(Shape::name(job as u32));
                spec.deps = deps.iter().map(|&d| d as usize).collect();
                spec
            })
            .collect();
        Plan::new(specs, self.root() as usize, Defaults::default())
            .expect("a DAG")
            .0
    }

    /// The name of job `id`, the same in plans and in job values: `j<id>`.
    pub fn name(id: u32) -> String {
        format!("j{id}")
    }

    /// The deps of job `id`, each made into a job value by `make`.
    pub fn deps_of(&self, id: u32, make: impl Fn(u32) -> JobRef) -> Vec<JobRef> {
        self.deps[id as usize]
            .iter()
            .map(|&dep| make(dep))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.deps.len()
    }

    pub fn root(&self) -> u32 {
        (self.deps.len() - 1) as u32
    }

    /// The most jobs on one path through the graph.
    pub fn longest_path(&self) -> usize {
        let mut depth = vec![0usize; self.deps.len()];
        for (job, deps) in self.deps.iter().enumerate() {
            depth[job] = 1 + deps.iter().map(|&d| depth[d as usize]).max().unwrap_or(0);
        }
        depth.into_iter().max().unwrap_or(0)
    }
}

/// Median of `runs` timings of `f`, with the fastest and slowest.
pub fn time_runs(runs: usize, mut f: impl FnMut()) -> Spread {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    Spread {
        median: times[times.len() / 2],
        min: times[0],
        max: times[times.len() - 1],
    }
}

/// A median with its range.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
}

/// `12.3 ms`, `1.23 s`, `45.6 µs`: a duration with three figures.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 1e-3 {
        format!("{:.1} ms", secs * 1e3)
    } else {
        format!("{:.1} µs", secs * 1e6)
    }
}
