//! The library used directly, coordinator and worker in one process, as a
//! program's two modes would use it: a cancelled run, and one job code
//! path for shared values in a local run and a distributed one.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{HANG, NatsServer};
use dojobber::{CancelHandle, Context, Job, JobRef, JobResult, Status, StopReason, bail, dep};
use dojobber_nats::{Coordinator, Settings, Worker};

/// Tells the test that `Slow` is running.
static STARTED: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
/// Lets `Slow` finish.
static RELEASED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

struct Slow;
impl Job<String> for Slow {
    fn check(&self, _: &mut Context<'_, String>) -> JobResult {
        bail!("slow is never done before its run")
    }
    fn run(&self, _: &mut Context<'_, String>) -> JobResult {
        if let Some(started) = STARTED.lock().unwrap().as_ref() {
            let _ = started.send(());
        }
        let (released, changed) = &RELEASED;
        let mut released = released.lock().unwrap();
        while !*released {
            released = changed.wait(released).unwrap();
        }
        Ok(())
    }
}

struct After;
impl Job<String> for After {
    fn deps(&self, _: &String) -> Vec<JobRef<String>> {
        vec![dep(Slow)]
    }
    fn check(&self, _: &mut Context<'_, String>) -> JobResult {
        Ok(())
    }
}

#[test]
fn a_cancelled_run_blocks_what_had_not_started_and_waits_for_the_try_under_way() {
    let server = NatsServer::start();
    let (started, is_started) = mpsc::channel();
    *STARTED.lock().unwrap() = Some(started);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Nothing is killed: the default ack wait, which no load reaches.
    let settings = Settings::default();
    let cancel = CancelHandle::new();

    let report = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let worker = Worker::new(client.clone(), "inproc", "w1", |_: &String| dep(After))
            .unwrap()
            .settings(settings);
        tokio::spawn(worker.serve());
        let run = Coordinator::new(client, "inproc", After, "args".to_string())
            .settings(settings)
            .cancel_handle(cancel.clone())
            .run();
        let run = tokio::spawn(run);

        tokio::task::spawn_blocking(move || is_started.recv_timeout(HANG))
            .await
            .unwrap()
            .expect("Slow's run started");
        cancel.cancel();
        let (released, changed) = &RELEASED;
        *released.lock().unwrap() = true;
        changed.notify_all();
        tokio::time::timeout(HANG, run)
            .await
            .expect("the cancelled run ends")
            .unwrap()
            .unwrap()
    });
    runtime.shutdown_background();

    assert_eq!(report.stopped, Some(StopReason::Cancelled));
    let after = report.job("After").unwrap();
    assert_eq!(after.status(), Status::Blocked);
    assert_ne!(report.job("Slow").unwrap().status(), Status::Passed);
}

/// Puts where the database is into the run's shared values, from the
/// "db" host; the run's arguments name the run, so each run shares anew.
struct Publish;
impl Job<String> for Publish {
    fn runs_on(&self) -> Option<String> {
        Some("db".into())
    }
    fn check(&self, cx: &mut Context<'_, String>) -> JobResult {
        match cx.global().get_shared::<(String, u32)>("database")? {
            Some(_) => Ok(()),
            None => bail!("not shared yet"),
        }
    }
    fn run(&self, cx: &mut Context<'_, String>) -> JobResult {
        let where_and_version = (format!("{}: db-1:5432", cx.args()), 3u32);
        cx.global().insert_shared("database", &where_and_version)?;
        Ok(())
    }
}

/// Reads it on the "app" host: it passes when the value is there.
struct Read;
impl Job<String> for Read {
    fn deps(&self, _: &String) -> Vec<JobRef<String>> {
        vec![dep(Publish)]
    }
    fn runs_on(&self) -> Option<String> {
        Some("app".into())
    }
    fn check(&self, cx: &mut Context<'_, String>) -> JobResult {
        let expected = (format!("{}: db-1:5432", cx.args()), 3u32);
        match cx.global().get_shared::<(String, u32)>("database")? {
            Some(found) if found == expected => Ok(()),
            found => bail!("the database is shared as {found:?}, not {expected:?}"),
        }
    }
}

#[test]
fn the_same_jobs_share_a_value_in_a_local_run_and_across_hosts() {
    let local = dojobber::Runner::new(Read, "local".to_string())
        .run()
        .unwrap()
        .into_report();
    assert_eq!(local.job("Publish").unwrap().status(), Status::Fixed);
    assert_eq!(
        local.job("Read").unwrap().status(),
        Status::Passed,
        "{local:?}"
    );

    let server = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        for (name, label) in [("db-host", "db"), ("app-host", "app")] {
            let worker = Worker::new(client.clone(), "sharing", name, |_: &String| dep(Read))
                .unwrap()
                .labels([label])
                .unwrap();
            tokio::spawn(worker.serve());
        }
        let run = Coordinator::new(client, "sharing", Read, "remote".to_string())
            .tries(1)
            .run();
        tokio::time::timeout(HANG, run)
            .await
            .expect("the run ends")
            .unwrap()
    });
    runtime.shutdown_background();
    assert_eq!(report.job("Publish").unwrap().status(), Status::Fixed);
    assert_eq!(
        report.job("Read").unwrap().status(),
        Status::Passed,
        "{report:?}"
    );
}

/// How often each [`LongCheck`] was checked.
static LONG_CHECKS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// When the [`LongCheck`]s' checks ended.
static LONG_CHECKS_ENDED: Mutex<Vec<SystemTime>> = Mutex::new(Vec::new());

/// The ack wait of the long-check test, which each check outlasts.
const LONG_ACK_WAIT: Duration = Duration::from_millis(1500);

/// A check that takes longer than the ack wait, then passes.
struct LongCheck(usize);
impl Job<()> for LongCheck {
    fn name(&self) -> String {
        format!("LongCheck{}", self.0)
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        LONG_CHECKS[self.0].fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(LONG_ACK_WAIT + LONG_ACK_WAIT / 3);
        LONG_CHECKS_ENDED.lock().unwrap().push(SystemTime::now());
        Ok(())
    }
}

struct BothLong;
impl Job<()> for BothLong {
    fn deps(&self, _: &()) -> Vec<JobRef<()>> {
        vec![dep(LongCheck(0)), dep(LongCheck(1))]
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// A worker performs a phase on its slot's thread. Phases that outlast
/// the ack wait on every thread its runtime has must still leave the
/// worker's keep-alive its turn: it claims each try a third of the ack
/// wait into its check (so that a worker dying in it is seen) and keeps
/// JetStream from handing the try again (which would check it twice).
#[test]
fn checks_outlasting_the_ack_wait_on_every_runtime_thread_are_claimed_meanwhile_and_done_once() {
    use futures_util::StreamExt;
    let server = NatsServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let settings = Settings {
        ack_wait: LONG_ACK_WAIT,
        ..Settings::default()
    };
    let (report, claims) = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let worker = Worker::new(client.clone(), "long", "w1", |_: &()| dep(BothLong))
            .unwrap()
            .settings(settings)
            .slots(2);
        tokio::spawn(worker.serve());
        // Each claim's first word, with the server's time of it, from the
        // start (the worker made the runs bucket as it started).
        let js = async_nats::jetstream::new(client.clone());
        let names = dojobber_nats::Names::new("long").unwrap();
        let bucket = loop {
            match js.get_key_value(names.runs_bucket()).await {
                Ok(bucket) => break bucket,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let mut watch = bucket.watch("*.claim.>").await.unwrap();
        let run = Coordinator::new(client, "long", BothLong, ())
            .settings(settings)
            .tries(1)
            .run();
        let report = tokio::time::timeout(HANG, run)
            .await
            .expect("the run ends")
            .unwrap();
        let mut claims: Vec<(String, String, i128)> = Vec::new();
        while claims.len() < 2 {
            let next = tokio::time::timeout(HANG, watch.next()).await;
            let entry = next.expect("both tries claimed").unwrap().unwrap();
            if !claims.iter().any(|(key, _, _)| *key == entry.key) {
                let holder = String::from_utf8(entry.value.to_vec()).unwrap();
                let at = entry.created.unix_timestamp_nanos();
                claims.push((entry.key, holder, at));
            }
        }
        (report, claims)
    });
    runtime.shutdown_background();
    assert!(report.is_success(), "{report:?}");
    for (job, checks) in ["LongCheck0", "LongCheck1"].into_iter().zip(&LONG_CHECKS) {
        let job_report = report.job(job).unwrap();
        assert_eq!(job_report.status(), Status::Passed, "{report:?}");
        assert_eq!(job_report.performed_by(1), Some("w1"));
        assert_eq!(checks.load(Ordering::SeqCst), 1, "{job} checked once");
    }
    // Each long check's try, claimed by its keep-alive while the checks
    // ran; BothLong's quick check passed unclaimed.
    let first_end = *LONG_CHECKS_ENDED.lock().unwrap().iter().min().unwrap();
    let first_end = first_end.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
    for (key, holder, at) in &claims {
        assert_eq!(holder, "w1", "{key}");
        assert!(
            *at < first_end,
            "{key} claimed {} ms after the first check ended",
            (at - first_end) / 1_000_000
        );
    }
}
