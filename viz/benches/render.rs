//! Rendering random job graphs with the pure-Rust renderer.
//!
//! `cargo bench -p dojobber-viz`. A random DAG of `n` jobs: every job but
//! the root is a dep of one earlier job (so the root reaches it) and has
//! up to two more deps among the jobs after it, half of them near it and
//! half anywhere, which gives both local structure and long edges.

use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber_viz::{Format, Options, Renderer, Style, render};

fn main() {
    divan::main();
}

fn random_plan(n: usize) -> Plan {
    let mut rng = fastrand::Rng::with_seed(n as u64);
    let mut specs: Vec<JobSpec> = (0..n)
        .map(|i| JobSpec::new(format!("Job {i:05}")))
        .collect();
    for i in 1..n {
        let parent = rng.usize(0..i);
        specs[parent].deps.push(i);
    }
    for (i, spec) in specs.iter_mut().enumerate().take(n.saturating_sub(1)) {
        for _ in 0..rng.usize(0..=2) {
            let dep = if rng.bool() {
                rng.usize(i + 1..n.min(i + 20))
            } else {
                rng.usize(i + 1..n)
            };
            if !spec.deps.contains(&dep) {
                spec.deps.push(dep);
            }
        }
    }
    Plan::new(specs, 0, Defaults::default())
        .expect("deps only point forwards")
        .0
}

const PURE: Options = Options {
    details: false,
    renderer: Renderer::PureRust,
    style: Style::PLAIN,
};

#[divan::bench(args = [100, 1_000, 10_000], sample_count = 10, sample_size = 1)]
fn svg(bencher: divan::Bencher, n: usize) {
    let plan = random_plan(n);
    bencher.bench(|| render(&plan, Format::Svg, &PURE).expect("SVG renders"));
}

#[divan::bench(args = [100, 1_000], sample_count = 5, sample_size = 1)]
fn png(bencher: divan::Bencher, n: usize) {
    let plan = random_plan(n);
    bencher.bench(|| render(&plan, Format::Png, &PURE).expect("PNG renders"));
}
