//! A coordinated run whose future is dropped (a `select!` or a timeout in
//! the embedding program) leaves nothing running behind it: its lease is
//! no longer refreshed, so it expires and the next run takes the suite.
//! And a run whose lease another coordinator took says so to its
//! observers. Coordinator and worker in one process, against a real server.

mod common;

use std::time::Duration;

use common::{HANG, NatsServer};
use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{CancelHandle, Context, Job, JobResult, Status};
use dojobber_nats::{Coordinator, Settings, Worker};

/// A job only a worker labelled `ghost` may run: none is started, so its
/// try waits for ever.
struct Ghostly;
impl Job<String> for Ghostly {
    fn runs_on(&self) -> Option<String> {
        Some("ghost".into())
    }
}

/// A job any worker runs, passing at once.
struct Free;
impl Job<String> for Free {
    fn check(&self, _: &mut Context<'_, String>) -> JobResult {
        Ok(())
    }
}

#[test]
fn a_dropped_run_stops_refreshing_its_lease_and_the_next_run_takes_the_suite() {
    let server = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = Settings {
        lease_ttl: Duration::from_secs(2),
        ..Settings::default()
    };

    let report = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let worker = Worker::new(client.clone(), "dropped", "w1", |_: &String| {
            dojobber::dep(Free)
        })
        .unwrap()
        .settings(settings);
        tokio::spawn(worker.serve());

        let stuck = Coordinator::new(client.clone(), "dropped", Ghostly, "args".to_string())
            .settings(settings)
            .run();
        let stuck = tokio::spawn(stuck);
        // The lease is taken: the stuck run is under way.
        let js = async_nats::jetstream::new(client.clone());
        tokio::time::timeout(HANG, async {
            loop {
                if let Ok(lease) = js.get_key_value("dojobber_lease_dropped").await
                    && let Ok(Some(_)) = lease.get("coordinator").await
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the stuck run takes the lease");
        stuck.abort();
        let _ = stuck.await;

        // Its lease expires (no refresh any more) within its TTL.
        Coordinator::new(client, "dropped", Free, "args".to_string())
            .settings(settings)
            .wait_for_lease(HANG)
            .run()
            .await
            .expect("the next run takes the suite")
    });
    runtime.shutdown_background();

    assert_eq!(report.job("Free").unwrap().status(), Status::Passed);
}

/// Passes each warning of the run on.
struct Warnings(tokio::sync::mpsc::UnboundedSender<String>);
impl Observer for Warnings {
    fn on_event(&mut self, event: &Event, _: &Plan) {
        if let Event::Warning { message, .. } = event {
            let _ = self.0.send(message.clone());
        }
    }
}

#[test]
fn a_run_whose_lease_another_coordinator_took_warns_its_observers() {
    let server = NatsServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = Settings {
        lease_ttl: Duration::from_secs(3),
        ..Settings::default()
    };

    let (said, report) = runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let (warnings, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let cancel = CancelHandle::new();
        let stuck = Coordinator::new(client.clone(), "taken", Ghostly, "args".to_string())
            .settings(settings)
            .observe(Warnings(warnings))
            .cancel_handle(cancel.clone())
            .run();
        let stuck = tokio::spawn(stuck);
        let js = async_nats::jetstream::new(client.clone());
        let lease = tokio::time::timeout(HANG, async {
            loop {
                if let Ok(lease) = js.get_key_value("dojobber_lease_taken").await
                    && let Ok(Some(_)) = lease.get("coordinator").await
                {
                    return lease;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the run takes the lease");
        // Another coordinator takes the suite, as if the lease had expired.
        lease.delete("coordinator").await.unwrap();
        lease.create("coordinator", "another".into()).await.unwrap();
        let said = tokio::time::timeout(HANG, async {
            loop {
                let message = heard.recv().await.expect("the run warns before it ends");
                if message.contains("lease") {
                    return message;
                }
            }
        })
        .await
        .expect("the run says its lease was taken");
        cancel.cancel();
        let report = tokio::time::timeout(HANG, stuck)
            .await
            .expect("a cancelled run ends")
            .unwrap()
            .expect("the run ends with a report");
        (said, report)
    });
    runtime.shutdown_background();

    assert_eq!(
        said,
        "the suite's lease expired and another coordinator took it: \
         workers refuse this run's tries from now on"
    );
    assert_eq!(report.job("Ghostly").unwrap().status(), Status::Failed);
}
