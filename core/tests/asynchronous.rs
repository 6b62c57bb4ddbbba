//! The async driver: the same final statuses as the sequential driver,
//! async and blocking jobs in one suite, cancelled over-time phases,
//! cancellation, and a thousand phases at once. Tokio's clock is paused,
//! so sleeps inside jobs take no real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dojobber::{
    AsyncJob, CancelHandle, Context, Group, Job, JobResult, PhaseFuture, Runner, Status, async_dep,
    bail, dep,
};
use dojobber_testkit::Suite;
use dojobber_testkit::strategy::{ScriptShape, SuiteShape, quiet_scripted_panics, suites};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// `(name, status, tries)` per job.
fn outcome(report: dojobber::Report) -> Vec<(String, Status, u32)> {
    report
        .jobs()
        .map(|job| (job.name().to_owned(), job.status(), job.tries()))
        .collect()
}

fn fresh_runner(suite: &Suite, workers: usize) -> Runner<()> {
    // A fresh suite: mocks count their own runs in the suite's call log.
    let suite = Suite::new(suite.mocks().to_vec());
    Runner::from_ref(suite.root_job(), ())
        .retry_delay(Duration::ZERO)
        .workers(workers)
        .output(std::io::sink())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn final_statuses_are_those_of_the_sequential_driver(
        suite in suites(SuiteShape { script: ScriptShape::without_time(), ..SuiteShape::default() })
    ) {
        quiet_scripted_panics();
        let sequential = outcome(fresh_runner(&suite, 1).run().unwrap().into_report());
        for workers in [1, 4, 16] {
            let report = runtime()
                .block_on(fresh_runner(&suite, workers).run_async())
                .unwrap()
                .into_report();
            prop_assert_eq!(&outcome(report), &sequential, "with {} tasks", workers);
        }
    }
}

/// Waits on the network, as async jobs do; counts how many wait at once.
struct Fetch {
    n: usize,
    waiting: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Job for Fetch {
    fn name(&self) -> String {
        format!("fetch {}", self.n)
    }
}
impl AsyncJob for Fetch {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async move {
            let now = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[test]
fn a_thousand_async_phases_wait_at_once() {
    let (waiting, most) = (Arc::default(), Arc::new(AtomicUsize::new(0)));
    let fetches = (0..1000).map(|n| {
        async_dep(Fetch {
            n,
            waiting: Arc::clone(&waiting),
            most: Arc::clone(&most),
        })
    });
    let rt = runtime();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let root = Group::new("all").with_deps(fetches);
    let report = rt
        .block_on(Runner::new(root, ()).workers(1000).run_async())
        .unwrap()
        .into_report();
    assert!(report.is_success());
    assert_eq!(most.load(Ordering::SeqCst), 1000);
    // In virtual time, all of them took the 2 s of one.
    let elapsed = rt.block_on(async move { started.elapsed() });
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

/// Never answers within its limit.
struct Hangs;
impl Job for Hangs {
    fn tries(&self) -> Option<u32> {
        Some(2)
    }
    fn time_limit(&self) -> Option<Duration> {
        Some(Duration::from_secs(5))
    }
}
impl AsyncJob for Hangs {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
    }
}

#[test]
fn an_over_time_async_phase_is_cancelled_and_fails_its_try() {
    let rt = runtime();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let report = rt
        .block_on(
            Runner::from_ref(async_dep(Hangs), ())
                .workers(2)
                .retry_delay(Duration::from_secs(1))
                .run_async(),
        )
        .unwrap()
        .into_report();
    let hangs = report.job("Hangs").unwrap();
    assert_eq!((hangs.status(), hangs.tries()), (Status::Failed, 2));
    let error = hangs.last_error().unwrap();
    assert_eq!(error.message, "timed out after 5s");
    // Two tries of 5 s and a 1 s delay; not the hour the check asked for.
    let elapsed = rt.block_on(async move { started.elapsed() });
    assert!(elapsed < Duration::from_secs(12), "{elapsed:?}");
}

/// A blocking job: plain `Job`, run on tokio's blocking threads.
struct Blocking;
impl Job for Blocking {
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if cx.is_recheck() {
            Ok(())
        } else {
            bail!("not yet")
        }
    }
}

/// An async job that needs the blocking one.
struct AfterBlocking;
impl Job for AfterBlocking {
    fn deps(&self, _: &()) -> Vec<dojobber::JobRef> {
        vec![dep(Blocking)]
    }
}
impl AsyncJob for AfterBlocking {
    fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async move {
            if cx.is_recheck() {
                return Ok(());
            }
            tokio::task::yield_now().await;
            bail!("not yet either")
        })
    }
}

#[test]
fn blocking_and_async_jobs_share_a_suite() {
    let report = runtime()
        .block_on(
            Runner::from_ref(async_dep(AfterBlocking), ())
                .workers(4)
                .run_async(),
        )
        .unwrap()
        .into_report();
    assert_eq!(report.job("Blocking").unwrap().status(), Status::Fixed);
    assert_eq!(report.job("AfterBlocking").unwrap().status(), Status::Fixed);
}

#[test]
fn an_async_job_runs_under_the_sequential_driver_too() {
    let report = Runner::from_ref(async_dep(AfterBlocking), ())
        .run()
        .unwrap()
        .into_report();
    assert!(report.is_success(), "{report:?}");
}

/// Cancels the run, then waits on, like its sibling.
struct PullsThePlug;
impl Job<CancelHandle> for PullsThePlug {}
impl AsyncJob<CancelHandle> for PullsThePlug {
    fn check<'a>(&'a self, cx: &'a mut Context<'_, CancelHandle>) -> PhaseFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cx.args().cancel();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
    }
}

struct Waits;
impl Job<CancelHandle> for Waits {}
impl AsyncJob<CancelHandle> for Waits {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, CancelHandle>) -> PhaseFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
    }
}

/// Never gets a worker: both are busy until the cancel.
struct Queued;
impl Job<CancelHandle> for Queued {
    fn check(&self, _: &mut Context<'_, CancelHandle>) -> JobResult {
        Ok(())
    }
}

#[test]
fn cancelling_cancels_async_phases_in_flight() {
    let cancel = CancelHandle::new();
    let root = Group::new("Root")
        .with_dep(async_dep(Waits))
        .with_dep(async_dep(PullsThePlug))
        .with_dep(dep(Queued));
    let rt = runtime();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let report = rt
        .block_on(
            Runner::new(root, cancel.clone())
                .workers(2)
                .cancel_handle(cancel)
                .run_async(),
        )
        .unwrap()
        .into_report();
    assert_eq!(report.stopped, Some(dojobber::StopReason::Cancelled));
    for name in ["Waits", "PullsThePlug"] {
        let job = report.job(name).unwrap();
        assert_eq!(job.status(), Status::Failed, "{name}");
        assert_eq!(
            job.last_error().unwrap().message,
            "cancelled during its try"
        );
    }
    let queued = report.job("Queued").unwrap();
    assert_eq!(
        (queued.status(), queued.blocked_reason()),
        (Status::Blocked, Some(dojobber::StopReason::Cancelled))
    );
    let elapsed = rt.block_on(async move { started.elapsed() });
    assert!(
        elapsed < Duration::from_secs(60),
        "the waits were cut short: {elapsed:?}"
    );
}

/// Opens on its run; its cleanup closes it after a (virtual) minute.
struct Valve(Arc<AtomicUsize>);
impl Job for Valve {}
impl AsyncJob for Valve {
    fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        let open = cx.is_recheck();
        Box::pin(async move { if open { Ok(()) } else { bail!("shut") } })
    }
    fn cleanup<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[test]
fn put_off_async_cleanups_run_as_futures_on_the_runtime() {
    let closed = Arc::new(AtomicUsize::new(0));
    let rt = runtime();
    rt.block_on(async {
        let mut finished = Runner::from_ref(async_dep(Valve(Arc::clone(&closed))), ())
            .cleanup(false)
            .workers(4)
            .run_async()
            .await
            .unwrap();
        assert_eq!(closed.load(Ordering::SeqCst), 0, "put off");
        finished.cleanup_async().await.unwrap();
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        assert!(finished.cleanup_async().await.is_err(), "only once");
    });
}

/// An observer with a bug.
struct Clumsy;
impl dojobber::observe::Observer for Clumsy {
    fn on_event(&mut self, event: &dojobber::observe::Event, _: &dojobber::observe::Plan) {
        if matches!(event, dojobber::observe::Event::JobFinished { .. }) {
            panic!("the observer tripped");
        }
    }
}

#[test]
fn a_panicking_observer_ends_an_async_run_with_its_panic() {
    let suite = Suite::new(
        std::iter::once(dojobber_testkit::Mock::new("Root").deps((1..20).map(|n| format!("J{n}"))))
            .chain((1..20).map(|n| dojobber_testkit::Mock::new(format!("J{n}")))),
    );
    let rt = runtime();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(fresh_runner(&suite, 8).observe(Clumsy).run_async())
    }));
    let panic = run.err().expect("the observer's panic reaches the caller");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"the observer tripped"));
}

/// An async job and a plain one that claim one name are two different jobs:
/// the error names both Rust types, the async one's own (not an adapter's).
#[test]
fn an_async_job_and_a_plain_one_under_one_name_is_an_error_naming_both_types() {
    struct Twin;
    impl Job for Twin {}
    impl AsyncJob for Twin {}
    struct PlainTwin;
    impl Job for PlainTwin {
        fn name(&self) -> String {
            "Twin".into()
        }
    }
    let root = Group::new("Both").with_deps([async_dep(Twin), dep(PlainTwin)]);
    let error = Runner::new(root, ())
        .run()
        .err()
        .expect("two jobs named Twin");
    let text = error.to_string();
    assert!(
        text.starts_with("two different jobs are named \"Twin\": "),
        "{text}"
    );
    assert!(
        text.contains("::Twin and ") && text.ends_with("::PlainTwin"),
        "{text}"
    );
}

/// An async job's sync face (the sequential driver) runs its async phases,
/// never the `Job` impl's default check.
#[test]
fn the_sequential_driver_runs_an_async_jobs_own_phases() {
    struct Light;
    impl Job for Light {}
    impl AsyncJob for Light {
        fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
            let on = cx.is_recheck();
            Box::pin(async move { if on { Ok(()) } else { bail!("off") } })
        }
    }
    let report = Runner::from_ref(async_dep(Light), ())
        .run()
        .unwrap()
        .into_report();
    assert_eq!(report.job("Light").unwrap().status(), Status::Fixed);
}

/// Notes the thread its check runs on.
struct OnThread(
    Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>,
    Option<Duration>,
);
impl Job for OnThread {
    fn time_limit(&self) -> Option<Duration> {
        self.1
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
        Ok(())
    }
}

/// A quick plain phase runs in its worker's task (here, on the caller's
/// thread: the runtime has no other); in a run with time limits, on one of
/// tokio's blocking threads, where one past its limit can run on.
#[test]
fn a_plain_phase_runs_in_its_worker_unless_the_run_has_time_limits() {
    for (limit, here) in [(None, true), (Some(Duration::from_secs(60)), false)] {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let report = runtime()
            .block_on(
                Runner::new(OnThread(Arc::clone(&seen), limit), ())
                    .workers(4)
                    .output(std::io::sink())
                    .run_async(),
            )
            .unwrap()
            .into_report();
        assert!(report.is_success());
        let on_caller = *seen.lock().unwrap() == Some(std::thread::current().id());
        assert_eq!(on_caller, here, "time limit {limit:?}");
    }
}

/// Waits for ever; counts its phases started and dropped.
struct Forever {
    n: usize,
    started: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

/// Counts a drop.
struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Job for Forever {
    fn name(&self) -> String {
        format!("forever {}", self.n)
    }
}
impl AsyncJob for Forever {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async move {
            let _guard = Dropped(Arc::clone(&self.dropped));
            self.started.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        })
    }
}

/// Dropping the run's future ends it: the phase it performs itself and
/// those in its worker tasks are dropped (the tasks aborted).
#[test]
fn dropping_the_run_drops_its_phases_in_flight() {
    let (started, dropped) = (Arc::new(AtomicUsize::new(0)), Arc::default());
    let forever = (0..3).map(|n| {
        async_dep(Forever {
            n,
            started: Arc::clone(&started),
            dropped: Arc::clone(&dropped),
        })
    });
    let root = Group::new("all").with_deps(forever);
    let runtime = runtime();
    runtime.block_on(async {
        let run = Runner::new(root, ()).workers(3).run_async();
        let gave_up = tokio::time::timeout(Duration::from_secs(60), run).await;
        assert!(gave_up.is_err(), "the phases wait for ever");
        // The aborted tasks drop their futures when the runtime next runs
        // them (with the runtime still up: shutting it down drops them all).
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert_eq!(started.load(Ordering::SeqCst), 3);
        assert_eq!(dropped.load(Ordering::SeqCst), 3);
    });
}

/// Notes the thread its check runs on; the one before it in a chain.
struct Link(usize, Arc<std::sync::Mutex<Vec<std::thread::ThreadId>>>);
impl Job for Link {
    fn name(&self) -> String {
        format!("link {}", self.0)
    }
    fn deps(&self, _: &()) -> Vec<dojobber::JobRef> {
        match self.0 {
            0 => Vec::new(),
            n => vec![async_dep(Link(n - 1, Arc::clone(&self.1)))],
        }
    }
}
impl AsyncJob for Link {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        self.1.lock().unwrap().push(std::thread::current().id());
        Box::pin(async { Ok(()) })
    }
}

/// With nothing to watch (no time limit, no deadline), the run's own
/// future is one of its workers: a chain, one phase ready at a time, runs
/// in it alone, on the thread that awaits it, even on a multi-thread
/// runtime.
#[test]
fn a_chain_runs_in_the_runs_own_future() {
    let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime
        .block_on(
            Runner::from_ref(async_dep(Link(20, Arc::clone(&threads))), ())
                .workers(8)
                .run_async(),
        )
        .unwrap()
        .into_report();
    assert!(report.is_success());
    let threads = threads.lock().unwrap();
    assert_eq!(threads.len(), 21);
    assert!(threads.iter().all(|&id| id == std::thread::current().id()));
}

/// An async job whose check passes at once, noting whether it ran outside
/// any tokio task (in the future `block_on` awaits).
struct Quick(usize, Arc<std::sync::Mutex<Vec<bool>>>);
impl Job for Quick {
    fn name(&self) -> String {
        format!("quick {}", self.0)
    }
}
impl AsyncJob for Quick {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async {
            self.1.lock().unwrap().push(tokio::task::try_id().is_none());
            Ok(())
        })
    }
}

/// Twenty async phases ready side by side that each finish when first
/// polled need no other worker: the run's own future performs them all
/// (on the paused clock none takes any time, so none counts as slow), and
/// the plain group after them too, with no task started.
#[test]
fn async_phases_that_finish_at_once_run_in_the_runs_own_future_side_by_side() {
    let outside = Arc::new(std::sync::Mutex::new(Vec::new()));
    let quick = (0..20).map(|n| async_dep(Quick(n, Arc::clone(&outside))));
    let root = Group::new("all").with_deps(quick);
    let report = runtime()
        .block_on(Runner::new(root, ()).workers(8).run_async())
        .unwrap()
        .into_report();
    assert!(report.is_success());
    assert_eq!(*outside.lock().unwrap(), vec![true; 20]);
}

/// Meets its twin: its check waits until both have started.
struct Meeting(usize, Arc<tokio::sync::Barrier>);
impl Job for Meeting {
    fn name(&self) -> String {
        format!("meeting {}", self.0)
    }
}
impl AsyncJob for Meeting {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async {
            self.1.wait().await;
            Ok(())
        })
    }
}

/// A phase tried in the run's own future that waits lets the workers
/// start: two phases that wait for each other both finish, on a
/// multi-thread runtime and on a current-thread one.
#[test]
fn a_phase_that_waits_lets_the_other_workers_start() {
    let multi_thread = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for runtime in [multi_thread, runtime()] {
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let twins = (0..2).map(|n| async_dep(Meeting(n, Arc::clone(&barrier))));
        let root = Group::new("both").with_deps(twins);
        let report = runtime
            .block_on(Runner::new(root, ()).workers(4).run_async())
            .unwrap()
            .into_report();
        assert!(report.is_success());
    }
}

/// Fails its first try (its check and recheck); its retry waits the
/// run's delay, and its check passes then.
struct SecondTime(AtomicUsize);
impl Job for SecondTime {}
impl AsyncJob for SecondTime {
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
        Box::pin(async move {
            if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
                bail!("not yet")
            }
            Ok(())
        })
    }
}

/// With no watcher (no time limit, no deadline), the worker that saw the
/// try fail sleeps until its retry is due, and wakes by itself.
#[test]
fn a_retry_waits_its_delay_without_a_watcher() {
    let rt = runtime();
    let started = rt.block_on(async { tokio::time::Instant::now() });
    let report = rt
        .block_on(
            Runner::from_ref(async_dep(SecondTime(AtomicUsize::new(0))), ())
                .retry_delay(Duration::from_secs(10))
                .workers(4)
                .output(std::io::sink())
                .run_async(),
        )
        .unwrap()
        .into_report();
    let job = report.job("SecondTime").unwrap();
    assert!(job.status().is_success(), "{:?}", job.status());
    assert_eq!(job.tries(), 2);
    let elapsed = rt.block_on(async move { started.elapsed() });
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(11)).contains(&elapsed),
        "{elapsed:?}"
    );
}
