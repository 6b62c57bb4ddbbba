//! The library used directly, coordinator and worker in one process, as a
//! program's two modes would use it: a cancelled run, and one job code
//! path for shared values in a local run and a distributed one.

mod common;

use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

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
