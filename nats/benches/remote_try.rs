//! Framework time per remote try: a coordinator (in this process) and 1,
//! 2 and 4 worker processes (this program again, 1 slot each) on
//! loopback, on a suite of no-op tries (independent jobs whose check
//! passes: one phase per try, so a try is the whole protocol: send, pull,
//! perform, report, ack). The coordinator keeps its default 16 tries in
//! flight.
//!
//! Two figures per row, both from whole `Coordinator::run` calls (opening
//! the streams, the lease, discovery, storing the arguments and the end
//! included; only connecting the client is not):
//!
//! - `whole`: a run of 10,000 jobs over 10,000;
//! - `diff`: (a run of 11,000 jobs − a run of 1,000) / 10,000, so what a
//!   run pays once cancels out: the time per try when the queue is full.
//!
//! Each is the median of `REMOTE_TRY_RUNS` runs (3 by default). Wall-clock
//! figures: noisy on a busy machine, so the load average is printed. The
//! CPU time each process used during the 10k runs (from `/proc`, in 10 ms
//! ticks), per try, says where the work goes whatever the load: the
//! coordinator (this process), the workers (all of them), the server.
//! So do the wake-ups of each per try (its threads' voluntary context
//! switches): they count hand-offs between threads, and barely move on a
//! busy machine, where CPU times swell.
//!
//! Each number of workers has two rows, in the same minutes on the same
//! server: `dojobber` (a `Coordinator` and `Worker` processes) and `bare`,
//! the protocol's floor: the same messages per try, with the same
//! concurrency, sent with bare async-nats calls (`common/bare.rs`, which
//! says why each message is needed). What `dojobber` costs above `bare`
//! is ours.
//!
//! `cargo bench -p dojobber-nats --bench remote_try`

mod common;

use std::time::{Duration, Instant};

use common::{BenchArgs, Graph, NatsServer, Workers, bare, cpu_time, load_average, root, wake_ups};
use dojobber_nats::Coordinator;

const WHOLE: usize = 10_000;
const SMALL: usize = 1_000;
const LARGE: usize = SMALL + WHOLE;

fn main() {
    common::serve_if_worker();
    bare::serve_if_worker();
    let runs = std::env::var("REMOTE_TRY_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let server = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    println!(
        "no-op tries, 1 slot per worker, 16 tries in flight; median of {runs} runs; \
         load average {} at the start",
        load_average()
    );
    println!();
    println!(
        "| workers | client   | whole: 10k run | µs per try | diff: 11k − 1k run | µs per try \
         | CPU µs per try: coordinator | workers | server \
         | wake-ups per try: coordinator | workers | server |"
    );
    println!(
        "|---------|----------|----------------|------------|--------------------|------------\
         |-----------------------------|---------|--------\
         |--------------------------------|---------|--------|"
    );
    let server_pid = server.pid().expect("the server runs").to_string();
    for workers in [1, 2, 4] {
        let suite = format!("bench{workers}");
        let processes = Workers::start(&server, &suite, workers, 1);
        let row = Row {
            runs,
            workers,
            server_pid: &server_pid,
        };
        row.print("dojobber", &processes, |jobs| {
            runtime.block_on(run(&server, &suite, jobs))
        });
        drop(processes);

        // The protocol's floor, on the same server, in the same minutes.
        let suite = format!("bare{workers}");
        runtime.block_on(bare::make_streams(&server.url(), &suite));
        let processes = Workers::start_bare(&server, &suite, workers);
        row.print("bare", &processes, |jobs| {
            bare::run(&runtime, &server.url(), &suite, jobs)
        });
    }
    println!();
    println!("load average {} at the end", load_average());
}

/// What the two rows of a number of workers share.
struct Row<'a> {
    /// Runs per median.
    runs: usize,
    /// Worker processes.
    workers: usize,
    server_pid: &'a str,
}

impl Row<'_> {
    /// Times `run` (a whole run of so many jobs) with `processes` serving,
    /// and prints the row of `client`.
    fn print(&self, client: &str, processes: &Workers, run: impl Fn(usize) -> Duration) {
        let (runs, workers, server_pid) = (self.runs, self.workers, self.server_pid);
        let pids: Vec<String> = processes.pids().iter().map(u32::to_string).collect();
        let cpu = || {
            let of = |pid: &str| cpu_time(pid).unwrap_or_default();
            let workers: Duration = pids.iter().map(|pid| of(pid)).sum();
            [of("self"), workers, of(server_pid)]
        };
        let wakes = || {
            let of = |pid: &str| wake_ups(pid).unwrap_or_default();
            let workers: u64 = pids.iter().map(|pid| of(pid)).sum();
            [of("self"), workers, of(server_pid)]
        };
        // The first run also waits for the workers to be serving.
        run(SMALL);
        let median = |jobs| {
            let mut times: Vec<Duration> = (0..runs).map(|_| run(jobs)).collect();
            times.sort();
            times[times.len() / 2]
        };
        let (before, woken_before) = (cpu(), wakes());
        let whole = median(WHOLE);
        let (after, woken_after) = (cpu(), wakes());
        let (small, large) = (median(SMALL), median(LARGE));
        let diff = large.saturating_sub(small);
        let per_try = |time: Duration| time.as_secs_f64() * 1e6 / WHOLE as f64;
        let cpu_per_try =
            |i: usize| (after[i] - before[i]).as_secs_f64() * 1e6 / (runs * WHOLE) as f64;
        let wakes_per_try =
            |i: usize| (woken_after[i] - woken_before[i]) as f64 / (runs * WHOLE) as f64;
        println!(
            "| {workers:<7} | {client:<8} | {:<14} | {:>10.1} | {:<18} | {:>10.1} | {:>27.0} | {:>7.0} | {:>6.0} \
             | {:>30.1} | {:>7.1} | {:>6.1} |",
            common::human(whole),
            per_try(whole),
            common::human(diff),
            per_try(diff),
            cpu_per_try(0),
            cpu_per_try(1),
            cpu_per_try(2),
            wakes_per_try(0),
            wakes_per_try(1),
            wakes_per_try(2),
        );
    }
}

/// One coordinator run of `jobs` no-op jobs; how long it took.
async fn run(server: &NatsServer, suite: &str, jobs: usize) -> Duration {
    let client = async_nats::connect(server.url()).await.expect("connect");
    let args = BenchArgs {
        graph: Graph::Independent(jobs),
        sleep_ms: None,
    };
    let started = Instant::now();
    let report = Coordinator::from_ref(client, suite, root(&args), args)
        .run()
        .await
        .expect("the run happens");
    let elapsed = started.elapsed();
    assert!(report.is_success(), "every no-op try passes");
    elapsed
}
