//! The thread-pool driver with real threads: same final statuses as the
//! sequential driver whatever the number of workers, panics isolated,
//! cancellation, concurrency groups and time limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{CancelHandle, Context, Group, Job, JobRef, JobResult, Runner, Status, bail, dep};
use dojobber_testkit::Suite;
use dojobber_testkit::strategy::{ScriptShape, SuiteShape, quiet_scripted_panics, suites};
use proptest::prelude::*;

/// `(name, status, tries)` per job after running `suite` on `workers`.
fn outcome(suite: &Suite, workers: usize) -> Vec<(String, Status, u32)> {
    // A fresh suite: mocks count their own runs in the suite's call log.
    let suite = Suite::new(suite.mocks().to_vec());
    let report = Runner::from_ref(suite.root_job(), ())
        .retry_delay(Duration::ZERO)
        .workers(workers)
        .output(std::io::sink())
        .run()
        .expect("generated suites are valid")
        .into_report();
    report
        .jobs()
        .map(|job| (job.name().to_owned(), job.status(), job.tries()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn final_statuses_do_not_depend_on_the_number_of_workers(
        suite in suites(SuiteShape { script: ScriptShape::without_time(), ..SuiteShape::default() })
    ) {
        quiet_scripted_panics();
        let sequential = outcome(&suite, 1);
        for workers in [2, 4, 16] {
            prop_assert_eq!(&outcome(&suite, workers), &sequential, "with {} workers", workers);
        }
    }
}

/// Counts how many jobs are in a check at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

struct Busy {
    n: usize,
    group: Option<&'static str>,
    gauge: Gauge,
}

impl Job for Busy {
    fn name(&self) -> String {
        format!("busy {}", self.n)
    }
    fn concurrency_group(&self) -> Option<String> {
        self.group.map(String::from)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        let now = self.gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.gauge.most.fetch_max(now, Ordering::SeqCst);
        for _ in 0..2_000 {
            std::thread::yield_now();
        }
        self.gauge.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_concurrency_group_caps_its_jobs_on_real_threads() {
    let gauge = Gauge::default();
    let jobs = (0..12).map(|n| {
        dep(Busy {
            n,
            group: Some("apt"),
            gauge: gauge.clone(),
        })
    });
    let report = Runner::new(Group::new("Root").with_deps(jobs), ())
        .workers(8)
        .group_limit("apt", 2)
        .run()
        .unwrap()
        .into_report();
    assert!(report.is_success());
    let most = gauge.most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} jobs of the group at once");
}

struct Explodes;
impl Job for Explodes {
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        panic!("kaboom")
    }
}

struct Calm(usize);
impl Job for Calm {
    fn name(&self) -> String {
        format!("calm {}", self.0)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

#[test]
fn a_panic_on_a_worker_fails_that_job_only() {
    let root = Group::new("Root")
        .with_dep(dep(Explodes))
        .with_deps((0..20).map(|n| dep(Calm(n))));
    let report = Runner::new(root, ())
        .workers(4)
        .tries(2)
        .retry_delay(Duration::ZERO)
        .run()
        .unwrap()
        .into_report();
    let explodes = report.job("Explodes").unwrap();
    assert_eq!((explodes.status(), explodes.tries()), (Status::Failed, 2));
    assert_eq!(explodes.last_error().unwrap().message, "panicked: kaboom");
    assert_eq!(report.names_with(Status::Passed).len(), 20);
}

/// Cancels the run from inside, as a Ctrl-C handler would from outside.
struct PullsThePlug;
impl Job<CancelHandle> for PullsThePlug {
    fn check(&self, cx: &mut Context<'_, CancelHandle>) -> JobResult {
        if cx.is_recheck() {
            cx.args().cancel();
            return Ok(());
        }
        bail!("not yet")
    }
}

struct Tidy;
impl Job<CancelHandle> for Tidy {
    fn deps(&self, _: &CancelHandle) -> Vec<JobRef<CancelHandle>> {
        vec![dep(PullsThePlug)]
    }
    fn check(&self, _: &mut Context<'_, CancelHandle>) -> JobResult {
        Ok(())
    }
}

struct Cleaned(Arc<Mutex<Vec<String>>>);
impl Job<CancelHandle> for Cleaned {
    fn check(&self, cx: &mut Context<'_, CancelHandle>) -> JobResult {
        if cx.is_recheck() {
            Ok(())
        } else {
            bail!("dirty")
        }
    }
    fn run(&self, _: &mut Context<'_, CancelHandle>) -> JobResult {
        self.0.lock().unwrap().push("run".into());
        Ok(())
    }
    fn cleanup(&self, _: &mut Context<'_, CancelHandle>) -> JobResult {
        self.0.lock().unwrap().push("cleanup".into());
        Ok(())
    }
}

/// Tidy is blocked by the cancel in every timing: it waits for
/// PullsThePlug, which cancels in its recheck before passing.
#[test]
fn cancelling_blocks_what_was_not_reached_and_still_cleans_up() {
    for workers in [1, 3] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancelHandle::new();
        let root = Group::new("Root")
            .with_dep(dep(Cleaned(Arc::clone(&log))))
            .with_dep(dep(Tidy));
        let report = Runner::new(root, cancel.clone())
            .workers(workers)
            .cancel_handle(cancel)
            .run()
            .unwrap()
            .into_report();
        assert_eq!(
            report.stopped,
            Some(dojobber::StopReason::Cancelled),
            "{workers} workers"
        );
        let tidy = report.job("Tidy").unwrap();
        assert_eq!(tidy.status(), Status::Blocked, "{workers} workers");
        assert_eq!(
            tidy.blocked_reason(),
            Some(dojobber::StopReason::Cancelled),
            "{report:#?}"
        );
        assert_eq!(report.job("PullsThePlug").unwrap().status(), Status::Fixed);
        // With several workers the cancel may land before, during or after
        // Cleaned's try; whatever the timing, a job whose run executed is
        // cleaned up once, after it, and no other is.
        let log = log.lock().unwrap().clone();
        match workers {
            1 => assert_eq!(log, ["run", "cleanup"], "the reference order"),
            _ if log.is_empty() => {}
            _ => assert_eq!(log, ["run", "cleanup"], "{workers} workers"),
        }
    }
}

/// A check that blocks until the run's observer sees it time out.
struct Stuck(crossbeam_channel::Receiver<()>);
impl Job for Stuck {
    fn tries(&self) -> Option<u32> {
        Some(1)
    }
    fn time_limit(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.0.recv().ok();
        Ok(())
    }
}

/// Releases the stuck check once its try has been failed for it.
struct Release(crossbeam_channel::Sender<()>);
impl Observer for Release {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if let Event::JobFinished { job, status, .. } = event
            && plan.name(*job) == "Stuck"
            && *status == Status::Failed
        {
            let _ = self.0.send(());
        }
    }
}

#[test]
fn an_over_time_phase_on_a_thread_fails_its_try_and_is_waited_for() {
    let (release, stuck) = crossbeam_channel::bounded(1);
    let report = Runner::new(Stuck(stuck), ())
        .workers(2)
        .observe(Release(release))
        .run()
        .unwrap()
        .into_report();
    let job = report.job("Stuck").unwrap();
    assert_eq!(job.status(), Status::Failed);
    let error = job.last_error().unwrap();
    // Released at once, it may return within the same millisecond.
    assert!(
        error.message.starts_with("timed out after 20ms"),
        "{error:?}"
    );
}

/// A check that waits on its channel, which the test releases only once
/// the run says it waits for nothing else. (The minute is a guard that
/// fails the test instead of hanging it, should the run never say so.)
struct Hangs(crossbeam_channel::Receiver<()>);
impl Job for Hangs {
    fn tries(&self) -> Option<u32> {
        Some(1)
    }
    fn time_limit(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        match self.0.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Ok(()),
            Err(_) => bail!("never released"),
        }
    }
}

/// Beside `Hangs`, a job that passes at once.
struct Quick;
impl Job for Quick {
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// Notes each phase the run says it waits for, and releases `Hangs`.
struct ReleaseWhenWaiting(crossbeam_channel::Sender<()>, Arc<Mutex<Vec<String>>>);
impl Observer for ReleaseWhenWaiting {
    fn reads_main_events(&self) -> bool {
        false
    }
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if let Event::WaitingForAbandoned { task, .. } = event {
            let said = format!("{}.{}", plan.name(task.job), task.phase);
            self.1.lock().unwrap().push(said);
            let _ = self.0.send(());
        }
    }
}

/// Both thread drivers (one worker, and a pool): once everything else is
/// done, the run says, once, that it waits only for the abandoned check;
/// the check's record ends at its limit, and its error says when it
/// really returned.
#[test]
fn a_run_left_waiting_only_for_an_abandoned_phase_says_so_once() {
    for workers in [1, 2, 4] {
        let (release, hangs) = crossbeam_channel::bounded(1);
        let said = Arc::new(Mutex::new(Vec::new()));
        let root = Group::new("Root").with_deps([dep(Hangs(hangs)), dep(Quick)]);
        let lines = dojobber_testkit::SharedBuffer::default();
        let report = Runner::new(root, ())
            .workers(workers)
            .output(lines.clone())
            .observe(ReleaseWhenWaiting(release, Arc::clone(&said)))
            .run()
            .unwrap()
            .into_report();
        assert_eq!(*said.lock().unwrap(), ["Hangs.check"], "{workers} workers");
        assert_eq!(
            lines.text(),
            "waiting for Hangs.check, abandoned at its 20ms time limit: \
             it cannot be stopped, and the run ends when it returns\n",
            "the quiet printer says it too"
        );
        assert_eq!(report.job("Quick").unwrap().status(), Status::Passed);
        let hangs = report.job("Hangs").unwrap();
        assert_eq!(hangs.status(), Status::Failed, "{workers} workers");
        let check = &hangs.phases()[0];
        assert_eq!(check.end() - check.start(), Duration::from_millis(20));
        let error = check.error.as_deref().unwrap();
        assert!(
            error.message.starts_with("timed out after 20ms"),
            "{error:?}"
        );
        assert_eq!(hangs.last_error(), Some(error));
    }
}

/// Notes the name of the thread each check runs on.
struct Where(usize, Arc<Mutex<std::collections::HashSet<String>>>);
impl Job for Where {
    fn name(&self) -> String {
        format!("where {}", self.0)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed").to_owned();
        self.1.lock().unwrap().insert(name);
        Ok(())
    }
}

#[test]
fn far_more_workers_than_jobs_start_no_more_threads_than_jobs() {
    let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let root = Group::new("Root").with_deps((0..50).map(|n| dep(Where(n, Arc::clone(&threads)))));
    let report = Runner::new(root, ())
        .workers(100_000)
        .run()
        .expect("as many threads as jobs start")
        .into_report();
    assert!(report.is_success());
    let threads = threads.lock().unwrap();
    assert!(
        (1..=50).contains(&threads.len()),
        "{} threads ran checks",
        threads.len()
    );
    // The caller's thread is one of the workers.
    let caller = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_owned();
    assert!(
        threads.iter().all(|name| *name == caller
            || name
                .strip_prefix("dojobber worker ")
                .and_then(|number| number.parse::<usize>().ok())
                .is_some_and(|number| (1..50).contains(&number))),
        "{threads:?}"
    );
}

#[test]
fn a_concurrency_group_bounds_the_threads_too() {
    let threads = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let root =
        Group::new("Root").with_deps((0..20).map(|n| dep(Grouped(Where(n, Arc::clone(&threads))))));
    let report = Runner::new(root, ())
        .workers(64)
        .group_limit("one at a time", 1)
        .run()
        .unwrap()
        .into_report();
    assert!(report.is_success());
    assert_eq!(
        *threads.lock().unwrap(),
        ["dojobber worker 1".to_owned()].into(),
        "one group of limit 1: one worker"
    );
}

/// [`Where`] in a concurrency group.
struct Grouped(Where);
impl Job for Grouped {
    fn name(&self) -> String {
        self.0.name()
    }
    fn concurrency_group(&self) -> Option<String> {
        Some("one at a time".into())
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.0.check(cx)
    }
}

/// Counts the checks that ran.
struct Counted(usize, Arc<AtomicUsize>);
impl Job for Counted {
    fn name(&self) -> String {
        format!("counted {}", self.0)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The child's side of the test below: 5,000 threads cannot start in 2 GB
/// of address space (each stack takes 2 MB).
fn refused_threads_in_a_small_address_space() {
    let checks = Arc::new(AtomicUsize::new(0));
    let root =
        Group::new("Root").with_deps((0..5_000).map(|n| dep(Counted(n, Arc::clone(&checks)))));
    let error = Runner::new(root, ())
        .workers(5_000)
        .run()
        .err()
        .expect("5,000 threads do not fit in 2 GB");
    assert_eq!(checks.load(Ordering::SeqCst), 0, "nothing ran");
    println!("refused: {error}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_thread_the_system_refuses_is_an_error_and_nothing_runs() {
    const NAME: &str = "a_thread_the_system_refuses_is_an_error_and_nothing_runs";
    if std::env::var_os("DOJOBBER_SMALL_ADDRESS_SPACE").is_some() {
        return refused_threads_in_a_small_address_space();
    }
    // In a nearly full address space a thread can also be created and
    // then fail inside std's own start-up, before any dojobber code runs
    // on it ("failed to allocate an alternative stack", a few runs in a
    // hundred): no program can catch that. Such a run is tried again, a
    // bounded number of times; any other outcome fails the test at once.
    const STD_START_UP: &str = "failed to allocate an alternative stack";
    for _ in 0..5 {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -v 2000000 && exec "$0" --exact "$1" --nocapture --test-threads 1"#)
            .arg(std::env::current_exe().unwrap())
            .arg(NAME)
            .env("DOJOBBER_SMALL_ADDRESS_SPACE", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() && stderr.contains(STD_START_UP) {
            continue;
        }
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("refused: workers(5000): could not start worker thread "),
            "{stdout}"
        );
        return;
    }
    panic!("five runs in a row lost a thread in std's start-up");
}

/// An observer with a bug.
struct Clumsy;
impl Observer for Clumsy {
    fn on_event(&mut self, event: &Event, _: &Plan) {
        if matches!(event, Event::JobFinished { .. }) {
            panic!("the observer tripped");
        }
    }
}

#[test]
fn a_panicking_observer_ends_the_run_with_its_panic_on_every_driver() {
    for workers in [1, 2, 8] {
        let root = Group::new("Root").with_deps((0..20).map(|n| dep(Calm(n))));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Runner::new(root, ())
                .workers(workers)
                .observe(Clumsy)
                .output(std::io::sink())
                .run()
        }));
        let panic = run.err().expect("the observer's panic reaches the caller");
        assert_eq!(
            panic.downcast_ref::<&str>(),
            Some(&"the observer tripped"),
            "{workers} workers"
        );
    }
}

/// Fails its first try (check and recheck), passes its second.
struct SecondTime(AtomicUsize);
impl Job for SecondTime {
    fn retry_delay(&self) -> Option<Duration> {
        Some(Duration::from_millis(5))
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        if self.0.fetch_add(1, Ordering::SeqCst) < 2 {
            bail!("not yet");
        }
        Ok(())
    }
}

/// Passes at once, well within its time limit.
struct Limited;
impl Job for Limited {
    fn time_limit(&self) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// One worker with a time limit in the plan runs on a worker thread with
/// the caller's thread watching: a retry waiting out its delay in the
/// next round wakes the watcher (it once slept for good).
#[test]
fn one_worker_with_a_time_limit_waits_out_retry_delays() {
    let root = Group::new("Root").with_deps([dep(Limited), dep(SecondTime(AtomicUsize::new(0)))]);
    let report = Runner::new(root, ())
        .workers(1)
        .output(std::io::sink())
        .run()
        .unwrap()
        .into_report();
    let second = report.job("SecondTime").unwrap();
    assert_eq!((second.status(), second.tries()), (Status::Fixed, 2));
    assert_eq!(report.rounds, 2, "the reference order's rounds");
    assert!(report.is_success());
}
