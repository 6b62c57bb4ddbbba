//! A coordinated run whose future is dropped (a `select!` or a timeout in
//! the embedding program) leaves nothing running behind it: its lease is
//! no longer refreshed, so it expires and the next run takes the suite.
//! Coordinator and worker in one process, against a real server.

mod common;

use std::time::Duration;

use common::{HANG, NatsServer};
use dojobber::{Context, Job, JobResult, Status};
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
