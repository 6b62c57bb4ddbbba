//! How close a distributed run comes to the ideal on jobs that wait, next
//! to the local thread driver with as many slots, in the same run.
//!
//! The suite: `Shape::random_dag(200)` (core's benchmark graph: 1 to 3
//! deps on earlier jobs, a root over every job nothing depends on). Every
//! job's check fails at once, its run sleeps 20 ms, its recheck passes:
//! three phases, one of them 20 ms of work, and a run, so every job gets a
//! (no-op) cleanup at the end, which on the workers is one request-reply
//! each.
//!
//! Rows: 1, 2 and 4 worker processes (this program again) with
//! `SLOTS_PER_WORKER` slots each, the coordinator (in this process)
//! allowing as many tries in flight as there are slots; and the thread
//! driver, `Runner::workers(n)`, with the same n. Columns: wall time of
//! the whole run (median of `EFFICIENCY_RUNS`, 3 by default, with the
//! fastest and slowest), the main run alone (up to `RunFinished`, before
//! the cleanups), the ideal `max(critical path, total work / n)` (20 ms
//! per job), and both over the ideal.
//!
//! `cargo bench -p dojobber-nats --bench efficiency`

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BenchArgs, Graph, NatsServer, Spread, Workers, human, load_average, root, time_runs};
use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{Report, Runner};
use dojobber_nats::Coordinator;

const JOBS: usize = 200;
const SLEEP: Duration = Duration::from_millis(20);
const WORKER_PROCESSES: [usize; 3] = [1, 2, 4];
const SLOTS_PER_WORKER: usize = 4;

fn main() {
    common::serve_if_worker();
    let runs = std::env::var("EFFICIENCY_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    let args = BenchArgs {
        graph: Graph::RandomDag(JOBS),
        sleep_ms: Some(SLEEP.as_millis() as u64),
    };
    let shape = args.graph.shape();
    let path = shape.longest_path();
    let server = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    println!(
        "{JOBS} jobs (random DAG, longest path {path} jobs), a 20 ms run each; \
         {SLOTS_PER_WORKER} slots per worker process; median of {runs} runs; \
         load average {} at the start",
        load_average()
    );
    println!();
    println!(
        "| driver         | slots | wall (min-max)               | main run | ideal    \
         | wall/ideal | main/ideal |"
    );
    println!(
        "|----------------|-------|------------------------------|----------|----------\
         |------------|------------|"
    );
    for processes in WORKER_PROCESSES {
        let slots = processes * SLOTS_PER_WORKER;
        let critical = SLEEP * path as u32;
        let ideal = critical.max(SLEEP * JOBS as u32 / slots as u32);
        let row = |driver: String, (spread, main): (Spread, Duration)| {
            let ratio = |d: Duration| d.as_secs_f64() / ideal.as_secs_f64();
            println!(
                "| {driver:<14} | {slots:<5} | {:<28} | {:<8} | {:<8} | {:>10.3} | {:>10.3} |",
                format!(
                    "{} ({}-{})",
                    human(spread.median),
                    human(spread.min),
                    human(spread.max)
                ),
                human(main),
                human(ideal),
                ratio(spread.median),
                ratio(main),
            );
        };

        let suite = format!("efficiency{processes}");
        let workers = Workers::start(&server, &suite, processes, SLOTS_PER_WORKER);
        // The first run also waits for the workers to be serving.
        runtime.block_on(run_remote(
            &server,
            &suite,
            &args,
            slots,
            EndOfMain::default(),
        ));
        let remote = timed(runs, |marker| {
            runtime.block_on(run_remote(&server, &suite, &args, slots, marker))
        });
        drop(workers);
        row(format!("nats {processes}×{SLOTS_PER_WORKER}"), remote);

        let threads = timed(runs, |marker| run_threads(&args, slots, marker));
        row(format!("threads({slots})"), threads);
    }
    println!();
    println!("load average {} at the end", load_average());
}

/// Times `runs` whole runs; the spread, and the median end of the main run.
fn timed(runs: usize, mut run: impl FnMut(EndOfMain) -> Report) -> (Spread, Duration) {
    let mut mains = Vec::new();
    let spread = time_runs(runs, || {
        let (start, marker) = (Instant::now(), EndOfMain::default());
        let end = Arc::clone(&marker.0);
        let report = run(marker);
        assert!(report.is_success(), "every job passes");
        let end = end.lock().unwrap().expect("the main run ended");
        mains.push(end - start);
    });
    mains.sort();
    (spread, mains[mains.len() / 2])
}

async fn run_remote(
    server: &NatsServer,
    suite: &str,
    args: &BenchArgs,
    slots: usize,
    marker: EndOfMain,
) -> Report {
    let client = async_nats::connect(server.url()).await.expect("connect");
    Coordinator::from_ref(client, suite, root(args), args.clone())
        .workers(slots)
        .observe(marker)
        .run()
        .await
        .expect("the run happens")
}

fn run_threads(args: &BenchArgs, slots: usize, marker: EndOfMain) -> Report {
    Runner::from_ref(root(args), args.clone())
        .workers(slots)
        .output(std::io::sink())
        .observe(marker)
        .run()
        .expect("a DAG")
        .into_report()
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
