//! A distributed run is a local run whose phases happen elsewhere: its
//! observers see the same events, and its report has the same statuses.
//! One suite, run locally and by a coordinator with a worker in this
//! process, each in its own directory. One phase at a time, the order is
//! the reference order in both, and times are the only difference; with
//! several, the final statuses are the same.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{HANG, NatsServer};
use dojobber::observe::Event;
use dojobber::{Context, Group, Job, JobRef, JobResult, Outcome, Report, Runner, bail, dep};
use dojobber_nats::{Coordinator, Settings, Worker};
use dojobber_testkit::TraceRecorder;

fn file(cx: &Context<'_, PathBuf>, name: &str) -> PathBuf {
    cx.args().join(name)
}

/// Fixed by its run; cleaned up; runs on the `water` worker.
struct Kettle;
impl Job<PathBuf> for Kettle {
    fn runs_on(&self) -> Option<String> {
        Some("water".into())
    }
    fn check(&self, cx: &mut Context<'_, PathBuf>) -> JobResult {
        if !file(cx, "kettle").exists() {
            bail!("the water is cold");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, PathBuf>) -> JobResult {
        std::fs::write(file(cx, "kettle"), "hot")?;
        Ok(())
    }
    fn cleanup(&self, cx: &mut Context<'_, PathBuf>) -> JobResult {
        std::fs::write(file(cx, "kettle.cleaned"), "")?;
        Ok(())
    }
}

/// Passes once its dep is there.
struct Cups;
impl Job<PathBuf> for Cups {
    fn deps(&self, _: &PathBuf) -> Vec<JobRef<PathBuf>> {
        vec![dep(Kettle)]
    }
    fn check(&self, _: &mut Context<'_, PathBuf>) -> JobResult {
        Ok(())
    }
}

/// Its first run fails, its second fixes it.
struct Flaky;
impl Job<PathBuf> for Flaky {
    fn check(&self, cx: &mut Context<'_, PathBuf>) -> JobResult {
        if !file(cx, "flaky.done").exists() {
            bail!("not done");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, PathBuf>) -> JobResult {
        if !file(cx, "flaky.tried").exists() {
            std::fs::write(file(cx, "flaky.tried"), "")?;
            bail!("the first try fails");
        }
        std::fs::write(file(cx, "flaky.done"), "")?;
        Ok(())
    }
}

/// Fails for good, with its own number of tries: what needs it is blocked.
struct Broken;
impl Job<PathBuf> for Broken {
    fn tries(&self) -> Option<u32> {
        Some(2)
    }
    fn check(&self, _: &mut Context<'_, PathBuf>) -> JobResult {
        bail!("no milk")
    }
    fn run(&self, _: &mut Context<'_, PathBuf>) -> JobResult {
        Err(anyhow::anyhow!("the shop is shut").context("the milk is off"))
    }
}

struct WithMilk;
impl Job<PathBuf> for WithMilk {
    fn deps(&self, _: &PathBuf) -> Vec<JobRef<PathBuf>> {
        vec![dep(Broken)]
    }
    fn check(&self, _: &mut Context<'_, PathBuf>) -> JobResult {
        Ok(())
    }
}

fn root(_: &PathBuf) -> JobRef<PathBuf> {
    dep(Group::new("Tea")
        .with_dep(dep(Cups))
        .with_dep(dep(Flaky))
        .with_dep(dep(WithMilk)))
}

fn runner(dir: &Path, recorder: &TraceRecorder) -> Runner<PathBuf> {
    let dir = dir.to_owned();
    Runner::from_ref(root(&dir), dir)
        .retry_delay(Duration::ZERO)
        .observe(recorder.clone())
}

/// The events with their times taken out.
fn untimed(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .map(|mut event| {
            match &mut event {
                Event::PhaseStarted { at, .. }
                | Event::PhaseFinished { at, .. }
                | Event::RunFinished { at } => *at = Duration::ZERO,
                _ => {}
            }
            event
        })
        .collect()
}

fn statuses(report: &Report) -> Vec<(String, dojobber::Status, u32)> {
    report
        .jobs()
        .map(|job| (job.name().to_owned(), job.status(), job.tries()))
        .collect()
}

/// Runs `runner` on a coordinator of suite `suite`, with one worker (of
/// the `water` label, `slots` tries per label at once) in this process.
fn coordinated(server: &NatsServer, suite: &str, slots: usize, runner: Runner<PathBuf>) -> Report {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Nothing is killed: the default ack wait, which no load reaches.
    let settings = Settings::default();
    let report = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let worker = Worker::new(client.clone(), suite, "w1", root)
            .unwrap()
            .labels(["water"])
            .unwrap()
            .slots(slots)
            .settings(settings);
        tokio::spawn(worker.serve());
        let run = Coordinator::from_runner(client, suite, runner)
            .settings(settings)
            .run();
        tokio::time::timeout(HANG, run)
            .await
            .expect("the run ends")
            .expect("the run starts")
    });
    runtime.shutdown_background();
    report
}

#[test]
fn a_coordinated_run_shows_its_observers_the_events_of_a_local_run() {
    let server = NatsServer::start();
    let local_dir = tempfile::tempdir().unwrap();
    let remote_dir = tempfile::tempdir().unwrap();

    let local = TraceRecorder::default();
    let local_report = runner(local_dir.path(), &local)
        .run()
        .unwrap()
        .into_report();
    let remote = TraceRecorder::default();
    let remote_report = coordinated(&server, "same", 1, runner(remote_dir.path(), &remote));

    // Held to every rule of the engine, as a local run's record is.
    let simulation = remote.simulation(remote_report.clone()).expect("events");
    assert_eq!(dojobber_testkit::check_invariants(&simulation), Ok(()));
    let events = untimed(local.events());
    assert_eq!(untimed(remote.events()), events);
    assert_eq!(statuses(&remote_report), statuses(&local_report));
    // The run saw every kind of outcome: a fix, a retry, a failure with
    // its causes, a block, a cleanup.
    let failed = events.iter().any(|event| {
        matches!(event, Event::PhaseFinished { outcome: Outcome::Fail(failure), .. }
            if failure.causes == ["the shop is shut"])
    });
    assert!(failed, "{events:#?}");
    assert!(events.contains(&Event::CleanupFinished));
    assert!(remote_dir.path().join("kettle.cleaned").exists());
}

#[test]
fn a_coordinated_run_with_tries_in_parallel_ends_as_a_local_parallel_run_does() {
    let server = NatsServer::start();
    let local_dir = tempfile::tempdir().unwrap();
    let remote_dir = tempfile::tempdir().unwrap();

    let local = TraceRecorder::default();
    let local_report = runner(local_dir.path(), &local)
        .workers(4)
        .run()
        .unwrap()
        .into_report();
    let remote = TraceRecorder::default();
    let remote_runner = runner(remote_dir.path(), &remote).workers(4);
    let remote_report = coordinated(&server, "parallel", 2, remote_runner);

    // Held to the rules of a run with four phases at once.
    let config = dojobber_testkit::SimConfig::new().workers(4);
    let simulation = remote
        .simulation_with(remote_report.clone(), &config)
        .expect("events");
    assert_eq!(dojobber_testkit::check_invariants(&simulation), Ok(()));
    assert_eq!(statuses(&remote_report), statuses(&local_report));
}
