//! What a coordinator refuses before it uses the server: no server is
//! needed (the client connects in the background, to nothing).

use dojobber::{Group, SetupError};
use dojobber_nats::{Coordinator, Error};

#[test]
fn no_tries_in_flight_is_refused_as_a_local_run_refuses_no_workers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let refused = runtime.block_on(async {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect("nats://127.0.0.1:1")
            .await
            .unwrap();
        Coordinator::new(client, "zero", Group::<()>::new("Nothing"), ())
            .workers(0)
            .run()
            .await
    });
    runtime.shutdown_background();
    match refused {
        Err(Error::Setup(SetupError::ZeroWorkers)) => {}
        other => panic!("not refused as workers(0): {:?}", other.map(|_| ())),
    }
}
