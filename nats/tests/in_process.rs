//! The library used directly, coordinator and worker in one process, as a
//! program's two modes would use it: a cancelled run.

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
    assert_eq!(after.status, Status::Blocked);
    assert_ne!(report.job("Slow").unwrap().status, Status::Passed);
}
