//! The runner and its sequential driver with real job values: graph
//! errors, panics, storage, cleanup, output, and deep graphs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dojobber::observe::Verbosity;
use dojobber::{
    Context, Group, Job, JobKind, JobRef, JobResult, Phase, Runner, SetupError, Status, bail, dep,
};
use dojobber_testkit::SharedBuffer;

/// A job that depends on the jobs named, by name, and whose check passes.
struct Named {
    name: &'static str,
    deps: &'static [&'static str],
    tries: Option<u32>,
}

impl Job for Named {
    fn name(&self) -> String {
        self.name.into()
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.deps.iter().map(|name| named(name)).collect()
    }
    fn tries(&self) -> Option<u32> {
        self.tries
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// The jobs of a small cyclic graph: Root -> A -> B -> C -> A.
fn named(name: &str) -> JobRef {
    let (name, deps): (&'static str, &'static [&'static str]) = match name {
        "Root" => ("Root", &["A"]),
        "A" => ("A", &["B"]),
        "B" => ("B", &["C"]),
        "C" => ("C", &["A"]),
        _ => ("Leaf", &[]),
    };
    dep(Named {
        name,
        deps,
        tries: None,
    })
}

#[test]
fn a_cycle_is_an_error_listing_the_whole_cycle_and_nothing_runs() {
    let err = Runner::from_ref(named("Root"), ()).run().err().unwrap();
    assert_eq!(err.to_string(), "dependency cycle: A -> B -> C -> A");
    assert_eq!(
        err,
        SetupError::Cycle {
            cycle: vec!["A".into(), "B".into(), "C".into(), "A".into()]
        }
    );
}

mod app {
    pub struct Setup;
    impl dojobber::Job for Setup {}
}
mod db {
    pub struct Setup;
    impl dojobber::Job for Setup {}
}

#[test]
fn two_different_jobs_with_one_name_is_an_error_naming_both() {
    let root = Group::new("Root").with_deps([dep(app::Setup), dep(db::Setup)]);
    let err = Runner::new(root, ()).run().err().unwrap();
    assert_eq!(
        err.to_string(),
        "two different jobs are named \"Setup\": runner::app::Setup and runner::db::Setup"
    );
}

#[test]
fn zero_tries_is_an_error_for_a_job_and_for_the_default() {
    let lazy = Named {
        name: "Lazy",
        deps: &[],
        tries: Some(0),
    };
    let err = Runner::new(lazy, ()).run().err().unwrap();
    assert_eq!(
        err.to_string(),
        "job \"Lazy\" has 0 tries; every job needs at least 1"
    );
    let err = Runner::new(Group::new("G"), ())
        .tries(0)
        .run()
        .err()
        .unwrap();
    assert_eq!(
        err,
        SetupError::ZeroTries {
            job: "the run's default".into()
        }
    );
}

/// A job whose phases do what its fields say, and that records its calls.
#[derive(Default)]
struct Scripted {
    name: &'static str,
    deps: Vec<&'static str>,
    check_panics: bool,
    run_panics: bool,
    deps_panic: bool,
    fixed_by_run: bool,
    cleanup_fails: bool,
    log: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn new(name: &'static str, log: &Arc<Mutex<Vec<String>>>) -> Self {
        Scripted {
            name,
            log: Arc::clone(log),
            ..Scripted::default()
        }
    }
    fn note(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}.{what}", self.name));
    }
}

impl Job for Scripted {
    fn name(&self) -> String {
        self.name.into()
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        assert!(!self.deps_panic, "cannot list deps");
        self.deps
            .iter()
            .map(|name| dep(Scripted::new(name, &self.log)))
            .collect()
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.note(cx.phase().as_str());
        assert!(!self.check_panics, "check exploded");
        if self.fixed_by_run && cx.global().get::<bool>(self.name).is_none() {
            bail!("not yet");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.note("run");
        assert!(!self.run_panics, "run exploded");
        cx.global().insert(self.name, true);
        Ok(())
    }
    fn cleanup(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.note("cleanup");
        if self.cleanup_fails {
            bail!("duster stuck");
        }
        Ok(())
    }
}

#[test]
fn a_panic_in_check_fails_that_job_only() {
    let log = Arc::default();
    let root = Group::new("Root").with_deps([
        dep(Scripted {
            check_panics: true,
            ..Scripted::new("Explodes", &log)
        }),
        dep(Scripted::new("Calm", &log)),
    ]);
    let report = Runner::new(root, ())
        .tries(2)
        .retry_delay(Duration::ZERO)
        .run()
        .unwrap()
        .into_report();
    let explodes = report.job("Explodes").unwrap();
    assert_eq!(explodes.status(), Status::Failed);
    assert_eq!(explodes.tries(), 2);
    assert_eq!(
        explodes.last_error().unwrap().message,
        "panicked: check exploded"
    );
    assert_eq!(report.job("Calm").unwrap().status(), Status::Passed);
    assert_eq!(report.job("Root").unwrap().status(), Status::Blocked);
}

#[test]
fn a_panic_in_run_is_reported_and_the_recheck_decides() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let job = Scripted {
        run_panics: true,
        fixed_by_run: true,
        ..Scripted::new("Clumsy", &log)
    };
    let lines = SharedBuffer::default();
    let report = Runner::new(job, ())
        .tries(1)
        .verbosity(Verbosity::Verbose)
        .output(lines.clone())
        .run()
        .unwrap()
        .into_report();
    assert_eq!(
        lines.text(),
        "Clumsy.check: fail\nClumsy.run: fail \"panicked: run exploded\"\n\
         Clumsy.recheck: fail \"not yet\"\n"
    );
    assert_eq!(report.job("Clumsy").unwrap().status(), Status::Failed);
}

#[test]
fn a_panic_in_deps_fails_that_job_and_blocks_its_dependents() {
    let log = Arc::default();
    let root = Group::new("Root").with_deps([
        dep(Scripted {
            deps_panic: true,
            ..Scripted::new("NoDeps", &log)
        }),
        dep(Scripted::new("Calm", &log)),
    ]);
    let report = Runner::new(root, ()).run().unwrap().into_report();
    let broken = report.job("NoDeps").unwrap();
    assert_eq!((broken.status(), broken.tries()), (Status::Failed, 0));
    assert_eq!(
        broken.last_error().unwrap().message,
        "panicked: cannot list deps"
    );
    assert_eq!(report.job("Calm").unwrap().status(), Status::Passed);
    assert_eq!(report.job("Root").unwrap().blocked_by(), Some("NoDeps"));
}

#[test]
fn cleanups_run_once_most_recent_run_first_and_stop_at_a_failure() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let fixed = |name| Scripted {
        fixed_by_run: true,
        ..Scripted::new(name, &log)
    };
    let root = Group::new("Root").with_deps([
        dep(fixed("First")),
        dep(Scripted {
            cleanup_fails: true,
            ..fixed("Second")
        }),
        dep(fixed("Third")),
        dep(Scripted::new("NeverRan", &log)),
    ]);
    let lines = SharedBuffer::default();
    let report = Runner::new(root, ())
        .output(lines.clone())
        .run()
        .unwrap()
        .into_report();
    let cleanups: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|call| call.ends_with(".cleanup"))
        .cloned()
        .collect();
    assert_eq!(cleanups, ["Third.cleanup", "Second.cleanup"]);
    assert_eq!(
        lines.text(),
        "Second.cleanup: fail \"duster stuck\"\n",
        "printed even when quiet"
    );
    let failure = report.cleanup_failure.unwrap();
    assert_eq!(
        failure.to_string(),
        "cleanup of Second failed: duster stuck"
    );
}

#[test]
fn cleanup_can_be_put_off_and_run_by_hand() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let job = Scripted {
        fixed_by_run: true,
        ..Scripted::new("Dust", &log)
    };
    let mut finished = Runner::new(job, ()).cleanup(false).run().unwrap();
    assert!(!log.lock().unwrap().contains(&"Dust.cleanup".to_string()));
    finished.cleanup().unwrap();
    assert_eq!(
        log.lock().unwrap().last().map(String::as_str),
        Some("Dust.cleanup")
    );
    assert!(finished.cleanup().is_err(), "a second cleanup is refused");
}

/// Records, per try, whether its local storage was empty when it began.
struct Forgetful;
impl Job for Forgetful {
    fn tries(&self) -> Option<u32> {
        Some(3)
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if !cx.is_recheck() {
            let fresh = cx.local().is_empty();
            cx.global()
                .update("fresh at check", Vec::new, |seen: &mut Vec<bool>| {
                    seen.push(fresh)
                })?;
            bail!("try again");
        }
        match cx.local().get::<u32>("ran in try") {
            Some(&attempt) if attempt == cx.attempt() => bail!("run's note seen, as it should be"),
            _ => bail!("run's note lost within the try"),
        }
    }
    fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
        let attempt = cx.attempt();
        cx.local_mut().insert("ran in try", attempt);
        Ok(())
    }
}

#[test]
fn local_storage_is_shared_within_a_try_and_empty_at_the_next() {
    let finished = Runner::new(Forgetful, ())
        .retry_delay(Duration::ZERO)
        .run()
        .unwrap();
    let report = finished.report();
    let job = report.job("Forgetful").unwrap();
    assert_eq!(job.tries(), 3);
    assert_eq!(
        job.last_error().unwrap().message,
        "run's note seen, as it should be"
    );
    assert_eq!(
        finished.global().get::<Vec<bool>>("fresh at check"),
        Some(vec![true, true, true])
    );
}

struct Producer;
impl Job for Producer {
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if !cx.global().contains_key("token") {
            bail!("no token");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
        cx.global().insert("token", String::from("s3cret"));
        Ok(())
    }
}

struct Consumer;
impl Job for Consumer {
    fn deps(&self, _: &()) -> Vec<JobRef> {
        vec![dep(Producer)]
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        match cx.global().get::<String>("token") {
            Some(token) if token == "s3cret" => Ok(()),
            other => bail!("got {other:?}"),
        }
    }
}

#[test]
fn global_storage_is_shared_by_all_jobs_of_a_run() {
    let report = Runner::new(Consumer, ()).run().unwrap().into_report();
    assert_eq!(report.job("Producer").unwrap().status(), Status::Fixed);
    assert_eq!(report.job("Consumer").unwrap().status(), Status::Passed);
}

/// Link `n` of a chain; it holds its dep, as users' jobs may.
struct Link {
    n: u32,
    next: Option<JobRef>,
}
impl Job for Link {
    fn name(&self) -> String {
        format!("link {}", self.n)
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.next.iter().cloned().collect()
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

#[test]
fn a_deep_chain_neither_recurses_when_run_nor_when_dropped() {
    const DEPTH: u32 = 100_000;
    let mut chain: Option<JobRef> = None;
    for n in 0..DEPTH {
        chain = Some(dep(Link { n, next: chain }));
    }
    let report = Runner::from_ref(chain.unwrap(), ())
        .run()
        .unwrap()
        .into_report();
    assert_eq!(report.jobs().len(), DEPTH as usize);
    assert!(report.is_success());
    assert_eq!(
        report.job_at(0).expect("the report has every job").name(),
        "link 0",
        "the deepest dep goes first"
    );
}

struct Invite(&'static str);
impl Job for Invite {
    fn name(&self) -> String {
        format!("Invite {}", self.0)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

#[test]
fn jobs_built_from_data_join_the_graph_through_a_group() {
    let friends = ["Wendell Bagg", "Lawyer Cat"];
    let group = Group::new("InviteFriends").with_deps(friends.map(|f| dep(Invite(f))));
    let graph = Runner::new(group, ()).graph().unwrap();
    let plan = graph.plan();
    let names: Vec<_> = plan.ids().map(|id| plan.name(id)).collect();
    assert_eq!(
        names,
        ["Invite Wendell Bagg", "Invite Lawyer Cat", "InviteFriends"]
    );
    assert_eq!(plan.kind(plan.root()), JobKind::Dummy);
}

#[test]
fn debug_output_adds_error_chains_and_cleanup_lines() {
    struct Chained;
    impl Job for Chained {
        fn tries(&self) -> Option<u32> {
            Some(1)
        }
        fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
            if cx.is_recheck() {
                return Ok(());
            }
            let io = std::io::Error::other("disk on fire");
            Err(anyhow::Error::new(io).context("reading state"))
        }
    }
    let lines = SharedBuffer::default();
    Runner::new(Chained, ())
        .verbosity(Verbosity::Debug)
        .output(lines.clone())
        .run()
        .unwrap();
    assert_eq!(
        lines.text(),
        "Chained.check: fail\n    error: reading state\n    caused by: disk on fire\n\
         Chained.run: pass\nChained.recheck: pass\n\
         Chained.cleanup running\nChained.cleanup: pass\n"
    );
}

#[test]
fn report_round_trips_through_json() {
    let report = Runner::new(Consumer, ()).run().unwrap().into_report();
    let json = serde_json::to_string(&report).unwrap();
    let back: dojobber::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["version"], 2);
    assert_eq!(value["jobs"][0]["status"], "fixed");
    assert!(value["jobs"][0]["time_secs"].is_f64());
    let phases = value["jobs"][0]["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["check", "run", "recheck", "cleanup"]);
    assert!(phases[1]["start_secs"].is_f64() && phases[1]["end_secs"].is_f64());
}

#[test]
fn a_version_1_report_still_reads() {
    let json = r#"{"version":1,"no_act":false,"rounds":1,"elapsed_secs":0.5,
        "stopped":"run deadline passed","cleanup_failure":null,"jobs":[
        {"name":"Late","status":"blocked","tries":0,"last_error":null,"blocked_by":null,
         "blocked_reason":"run deadline passed","time_secs":0.0,"deps":[]}]}"#;
    let report: dojobber::Report = serde_json::from_str(json).unwrap();
    assert_eq!(report.stopped, Some(dojobber::StopReason::Deadline));
    let late = report.job("Late").unwrap();
    assert_eq!(late.blocked_reason(), Some(dojobber::StopReason::Deadline));
    assert!(late.phases().is_empty());
}

#[test]
fn a_failing_runs_own_error_stays_in_the_report() {
    struct GitInit;
    impl Job for GitInit {
        fn tries(&self) -> Option<u32> {
            Some(2)
        }
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            anyhow::bail!("no repository")
        }
        fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
            let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
            Err(anyhow::Error::new(io).context("running git init"))
        }
    }
    let report = Runner::new(GitInit, ())
        .output(std::io::sink())
        .retry_delay(std::time::Duration::ZERO)
        .run()
        .unwrap()
        .into_report();
    let job = report.job("GitInit").unwrap();
    assert_eq!(job.status(), Status::Failed);
    assert_eq!(job.last_error().unwrap().message, "no repository");
    let run = job.run_error().expect("the run's error is kept");
    assert_eq!(run.message, "running git init");
    assert_eq!(run.causes, ["No such file or directory"]);
    // Every failed phase of every try keeps its own error; passing ones none.
    let failed: Vec<(u32, Phase, &str)> = job
        .phases()
        .iter()
        .filter_map(|p| Some((p.attempt, p.phase, p.error.as_ref()?.message.as_str())))
        .collect();
    assert_eq!(
        failed,
        [
            (1, Phase::Check, "no repository"),
            (1, Phase::Run, "running git init"),
            (1, Phase::Recheck, "no repository"),
            (2, Phase::Check, "no repository"),
            (2, Phase::Run, "running git init"),
            (2, Phase::Recheck, "no repository"),
        ]
    );
    assert!(job.phases().iter().all(|p| p.passed == p.error.is_none()));
    assert!(job.phases().iter().all(|p| p.start() <= p.end()));
}

/// `into_report` moves the phase records and errors out of the machine
/// instead of copying them; the report is the same as `report`'s.
#[test]
fn into_report_is_the_report_with_every_phase_and_error() {
    struct Flaky;
    impl Job for Flaky {
        fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
            match cx.attempt() {
                1 => anyhow::bail!("not yet"),
                _ => Ok(()),
            }
        }
        fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
            anyhow::bail!("run refused")
        }
    }
    struct Leaf;
    impl Job for Leaf {
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            Ok(())
        }
    }
    let root = Group::new("Root").with_deps([dep(Flaky), dep(Leaf)]);
    let finished = Runner::new(root, ())
        .output(std::io::sink())
        .retry_delay(Duration::ZERO)
        .run()
        .unwrap();
    let copied = finished.report();
    let moved = finished.into_report();
    assert_eq!(moved, copied);
    let flaky = moved.job("Flaky").unwrap();
    assert_eq!(flaky.status(), Status::Fixed);
    assert_eq!(
        flaky.phases().len(),
        5,
        "check, run, recheck, check, cleanup"
    );
    let run = flaky
        .phases()
        .iter()
        .find(|p| p.phase == Phase::Run)
        .unwrap();
    assert_eq!(run.error.as_ref().unwrap().message, "run refused");
}

/// A panic payload that panics again when dropped.
struct Bomb;
impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("the payload went off");
    }
}

struct ThrowsABomb;
impl Job for ThrowsABomb {
    fn tries(&self) -> Option<u32> {
        Some(2)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        std::panic::panic_any(Bomb)
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_fails_its_job_only() {
    for workers in [1, 2] {
        let root = Group::new("Root")
            .with_dep(dep(ThrowsABomb))
            .with_dep(named("Leaf"));
        let report = Runner::new(root, ())
            .retry_delay(Duration::ZERO)
            .workers(workers)
            .output(std::io::sink())
            .run()
            .unwrap()
            .into_report();
        let bomb = report.job("ThrowsABomb").unwrap();
        assert_eq!(
            (bomb.status(), bomb.tries()),
            (Status::Failed, 2),
            "{workers} workers"
        );
        assert_eq!(
            bomb.last_error().unwrap().message,
            "panicked: (a payload that is not a string)"
        );
        assert_eq!(report.job("Leaf").unwrap().status(), Status::Passed);
    }
}

/// A job whose `Drop` panics, after noting that it ran.
struct BadDrop(Arc<AtomicBool>);
impl Job for BadDrop {
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}
impl Drop for BadDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        panic!("dropped badly");
    }
}

#[test]
fn a_panic_in_a_jobs_drop_is_caught_and_the_other_jobs_are_dropped() {
    let (bad, other) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    struct Flags(Arc<AtomicBool>);
    impl Job for Flags {
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            Ok(())
        }
    }
    impl Drop for Flags {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let root = Group::new("Root")
        .with_dep(dep(Flags(Arc::clone(&other))))
        .with_dep(dep(BadDrop(Arc::clone(&bad))));
    let finished = Runner::new(root, ()).output(std::io::sink()).run().unwrap();
    assert!(finished.report().is_success());
    drop(finished);
    assert!(bad.load(Ordering::SeqCst), "the bad job was dropped");
    assert!(other.load(Ordering::SeqCst), "and so was the other");
}

/// Discovery drops the second value of a job it found before, and on a
/// setup error every value: a `Drop` that panics there is caught too.
#[test]
fn a_panic_in_the_drop_of_a_job_discovery_drops_is_caught() {
    /// Makes its deps afresh: two values of one job, or a job and another
    /// type under its name.
    struct Twice(Vec<Arc<AtomicBool>>, bool);
    impl Job for Twice {
        fn deps(&self, _: &()) -> Vec<JobRef> {
            let mut deps: Vec<JobRef> = self
                .0
                .iter()
                .map(|flag| dep(BadDrop(Arc::clone(flag))))
                .collect();
            if self.1 {
                deps.push(dep(Other));
            }
            deps
        }
    }
    struct Other;
    impl Job for Other {
        fn name(&self) -> String {
            "BadDrop".into()
        }
    }
    let flags = [(); 3].map(|()| Arc::new(AtomicBool::new(false)));
    let root = Twice(flags[..2].to_vec(), false);
    let finished = Runner::new(root, ()).output(std::io::sink()).run().unwrap();
    assert!(
        flags[1].load(Ordering::SeqCst),
        "the second value is dropped at discovery"
    );
    assert_eq!(
        finished.report().job("BadDrop").unwrap().status(),
        Status::Passed
    );
    drop(finished);
    assert!(flags[0].load(Ordering::SeqCst), "the first with the run");

    let root = Twice(flags[2..].to_vec(), true);
    let Err(error) = Runner::new(root, ()).output(std::io::sink()).run() else {
        panic!("two jobs named BadDrop ran");
    };
    assert!(
        matches!(error, dojobber::SetupError::DuplicateName { .. }),
        "{error}"
    );
    assert!(flags[2].load(Ordering::SeqCst), "dropped with the error");
}

#[test]
fn into_report_drops_the_job_values_and_reports_every_job() {
    struct Tracked(Arc<AtomicBool>);
    impl Job for Tracked {
        fn deps(&self, _: &()) -> Vec<JobRef> {
            vec![dep(Named {
                name: "Leaf",
                deps: &[],
                tries: None,
            })]
        }
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            Ok(())
        }
    }
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let report = Runner::new(Tracked(Arc::clone(&dropped)), ())
        .run()
        .unwrap()
        .into_report();
    assert!(dropped.load(Ordering::SeqCst));
    let statuses: Vec<_> = report.jobs().map(|j| (j.name(), j.status())).collect();
    assert_eq!(
        statuses,
        [("Leaf", Status::Passed), ("Tracked", Status::Passed)]
    );
}

/// A stored value whose `Drop` panics, after noting that it was dropped.
struct StoredBomb(Arc<AtomicBool>);
impl Drop for StoredBomb {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
        panic!("the stored value went off");
    }
}

/// Stores two such values in the run's global storage and two in its
/// try's local storage, which the run drops when it ends.
struct StoresBombs(Vec<Arc<AtomicBool>>);
impl Job for StoresBombs {
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        for (key, flag) in ["a", "b"].into_iter().zip(&self.0) {
            cx.global().insert(key, StoredBomb(Arc::clone(flag)));
        }
        for (key, flag) in ["c", "d"].into_iter().zip(&self.0[2..]) {
            cx.local_mut().insert(key, StoredBomb(Arc::clone(flag)));
        }
        Ok(())
    }
}

#[test]
fn stored_values_whose_drop_panics_are_each_dropped_and_caught() {
    for workers in [1, 2] {
        let flags: Vec<Arc<AtomicBool>> = (0..4).map(|_| Arc::default()).collect();
        let finished = Runner::new(StoresBombs(flags.clone()), ())
            .workers(workers)
            .output(std::io::sink())
            .run()
            .unwrap();
        let report =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finished.into_report()))
                .expect("no panic escapes the end of a run");
        assert!(report.is_success(), "{workers} workers");
        assert!(
            flags.iter().all(|flag| flag.load(Ordering::SeqCst)),
            "every stored value was dropped ({workers} workers)"
        );
    }
}
