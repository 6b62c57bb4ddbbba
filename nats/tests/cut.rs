//! A try the machine abandons goes no further on its worker: cancelled
//! while its check runs, its run never starts (the coordinator cuts the
//! try's claim; the worker's compare-and-set before the run fails).
//! Coordinator and worker in one process, against a real server.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::{HANG, NatsServer};
use dojobber::{CancelHandle, Context, Job, JobResult, Status, StopReason, bail};
use dojobber_nats::{Coordinator, Settings, Worker};
use futures_util::StreamExt;

/// Tells the test that `Held`'s check is running.
static CHECKING: Mutex<Option<mpsc::Sender<()>>> = Mutex::new(None);
/// Lets `Held`'s check end.
static RELEASED: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());
/// `Held`'s check passes (the second run).
static CONVERGED: AtomicBool = AtomicBool::new(false);
/// `Held`'s run was called.
static RAN: AtomicBool = AtomicBool::new(false);

/// A job whose check waits for the test, then fails (first run) or
/// passes (second run).
struct Held;
impl Job<String> for Held {
    fn runs_on(&self) -> Option<String> {
        Some("held".into())
    }
    fn check(&self, _: &mut Context<'_, String>) -> JobResult {
        if let Some(checking) = CHECKING.lock().unwrap().take() {
            let _ = checking.send(());
        }
        let (released, changed) = &RELEASED;
        let mut released = released.lock().unwrap();
        while !*released {
            released = changed.wait(released).unwrap();
        }
        if !CONVERGED.load(Ordering::SeqCst) {
            bail!("held is not done");
        }
        Ok(())
    }
    fn run(&self, _: &mut Context<'_, String>) -> JobResult {
        RAN.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// Waits until the coordinator cut a try's claim (or gave it up) in the
/// suite's runs bucket.
async fn claim_cut(client: &async_nats::Client, suite: &str) {
    let js = async_nats::jetstream::new(client.clone());
    let runs = js
        .get_key_value(format!("dojobber_runs_{suite}"))
        .await
        .unwrap();
    loop {
        let mut keys = runs.keys().await.unwrap();
        while let Some(key) = keys.next().await {
            let value = runs.get(key.unwrap()).await.unwrap().unwrap_or_default();
            if &value[..] == b"cut:coordinator" || &value[..] == b"coordinator" {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_try_cancelled_during_its_check_never_starts_its_run() {
    let server = NatsServer::start();
    let (checking, is_checking) = mpsc::channel();
    *CHECKING.lock().unwrap() = Some(checking);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Nothing is killed: an ack wait no load reaches.
    let settings = Settings {
        ack_wait: Duration::from_secs(30),
        ..Settings::default()
    };
    let cancel = CancelHandle::new();

    let (first, second) = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        // One slot: the worker ends a try before it takes the next.
        let worker = Worker::new(client.clone(), "cut", "w1", |_: &String| {
            dojobber::dep(Held)
        })
        .unwrap()
        .labels(["held"])
        .unwrap()
        .settings(settings);
        tokio::spawn(worker.serve());
        let run = Coordinator::new(client.clone(), "cut", Held, "args".to_string())
            .settings(settings)
            .cancel_handle(cancel.clone())
            .run();
        let run = tokio::spawn(run);

        tokio::task::spawn_blocking(move || is_checking.recv_timeout(HANG))
            .await
            .unwrap()
            .expect("Held's check started");
        cancel.cancel();
        tokio::time::timeout(HANG, claim_cut(&client, "cut"))
            .await
            .expect("the coordinator cuts the try");
        {
            let (released, changed) = &RELEASED;
            *released.lock().unwrap() = true;
            changed.notify_all();
        }
        let first = tokio::time::timeout(HANG, run)
            .await
            .expect("the cancelled run ends")
            .unwrap()
            .unwrap();
        // The worker takes the next try of its only slot once the first
        // is over: after this run, the first try's run started or never will.
        CONVERGED.store(true, Ordering::SeqCst);
        let second = Coordinator::new(client, "cut", Held, "args".to_string())
            .settings(settings)
            .run();
        let second = tokio::time::timeout(HANG, second)
            .await
            .expect("the second run ends")
            .unwrap();
        (first, second)
    });
    runtime.shutdown_background();

    assert_eq!(first.stopped, Some(StopReason::Cancelled));
    assert_eq!(first.job("Held").unwrap().status(), Status::Failed);
    assert_eq!(second.job("Held").unwrap().status(), Status::Passed);
    assert!(
        !RAN.load(Ordering::SeqCst),
        "Held's run started after the cut"
    );
}
