//! Framework time per remote try: the demo program's coordinator and 1, 2
//! and 4 worker processes on loopback, a suite of no-op tries (every job's
//! check passes: one phase per try). The time per try is the difference
//! between a run of 2,200 jobs and one of 200, over 2,000, so connecting,
//! setting up and discovery cancel out. Wall-clock figures: noisy on a
//! busy machine.
//!
//! `cargo bench -p dojobber-nats --bench remote_try`

#[allow(dead_code)] // restart() is for the fault tests
#[path = "../tests/common/server.rs"]
mod server;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use server::NatsServer;

const SMALL: usize = 200;
const LARGE: usize = 2_200;

fn main() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..LARGE {
        std::fs::write(dir.path().join(format!("j{i}.done")), "").unwrap();
    }
    println!("workers  µs per try (1 slot each; coordinator: 16 in flight)");
    for workers in [1, 2, 4] {
        let suite = format!("bench{workers}");
        let mut children: Vec<Child> = (0..workers)
            .map(|w| {
                demo(&server, &suite)
                    .args(["worker", "--name", &format!("w{w}")])
                    .spawn()
                    .unwrap()
            })
            .collect();
        // The first run also waits for the workers to be serving.
        run(&server, &suite, dir.path(), SMALL);
        let small = run(&server, &suite, dir.path(), SMALL);
        let large = run(&server, &suite, dir.path(), LARGE);
        let per_try = large.saturating_sub(small) / (LARGE - SMALL) as u32;
        println!("{workers:>7}  {:>10.1}", per_try.as_secs_f64() * 1e6);
        for child in &mut children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn demo(server: &NatsServer, suite: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dojobber-nats-demo"));
    command
        .args(["--nats", &server.url(), "--suite", suite])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// One coordinator run of `jobs` passing jobs; how long it took.
fn run(server: &NatsServer, suite: &str, dir: &std::path::Path, jobs: usize) -> Duration {
    let specs: Vec<String> = (0..jobs).map(|i| format!(r#"{{"name":"j{i}"}}"#)).collect();
    let started = Instant::now();
    let status = demo(server, suite)
        .args(["coordinate", "--dir"])
        .arg(dir)
        .args(["--jobs", &format!("[{}]", specs.join(","))])
        .status()
        .unwrap();
    assert!(status.success(), "the bench run failed");
    started.elapsed()
}
