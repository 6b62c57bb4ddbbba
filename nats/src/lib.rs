//! dojobber beyond one machine: a [`Coordinator`] runs the machine exactly
//! as a local run does and sends each try of a job to a NATS JetStream
//! work queue; [`Worker`]s (the suite's own program in worker mode) take
//! the tries of their labels, perform them with their own job values, and
//! report each phase back.
//!
//! - A job names where it must run with
//!   [`Job::runs_on`](dojobber::Job::runs_on); jobs that name nothing go
//!   to any worker.
//! - The run's arguments travel once (serde, in a key-value bucket); each
//!   worker rebuilds the graph from them and refuses a try when its graph
//!   differs from the coordinator's ([`plan_fingerprint`]).
//! - At-least-once delivery, the ack wait and redelivery are JetStream's.
//!   A worker holding a try renews its claim on it (a key in the runs
//!   bucket) every third of the ack wait: a claim unchanged for an ack
//!   wait means its worker is dead, and the coordinator declares the try
//!   lost by itself (whether or not another worker is there to be handed
//!   it again), says so, and the machine retries it as any failed try.
//! - One coordinator per suite at a time: a lease in a key-value bucket.
//! - Connection options (credentials, TLS) are async-nats's own: connect
//!   the [`async_nats::Client`] as you need and hand it over, or let
//!   [`cli::Connection`] connect as its flags say (`--nats URL`,
//!   `--creds FILE`, `--tls-ca FILE`, `--tls-cert FILE --tls-key FILE`).
//!
//! A suite program gets both modes, with a local run's flags, from
//! [`cli`]: `coordinate --suite NAME` (`-j N`: tries in flight at once,
//! over all workers, 16 unless given) and `worker --suite NAME --name W
//! --labels a,b`.
//!
//! A program that builds its own [`Coordinator`] or [`Worker`] (rather
//! than [`cli`], which starts its own runtime) needs tokio with the
//! `rt-multi-thread`, `macros` and `time` features, and a
//! multi-threaded runtime: a worker performs each phase on tokio's
//! blocking pool. `serde` with `derive` makes the run's arguments
//! travel. Logs for developers go to `tracing`; what a user must know
//! goes through the run's printer ([`dojobber::Event::Warning`]) or, for
//! a worker, on stderr ([`Worker::announce`]), with no subscriber.
//!
//! Each worker has its own [`GlobalStorage`](dojobber::GlobalStorage) per
//! run (values of any type, in its process), whose shared values
//! ([`insert_shared`](dojobber::GlobalStorage::insert_shared),
//! [`get_shared`](dojobber::GlobalStorage::get_shared)) are the run's
//! storage across hosts: [`SharedStorage`], serde values in a key-value
//! bucket. A job uses the same calls in a local run.

#![warn(missing_docs)]

pub mod cli;
mod coordinator;
mod error;
mod remote_try;
mod shared;
mod transport;
mod wire;
mod worker;

pub use async_nats;
pub use coordinator::{Coordinated, Coordinator};
pub use dojobber::SharedError;
pub use error::Error;
pub use shared::SharedStorage;
pub use transport::Settings;
pub use wire::{
    ANY_LABEL, BadName, CleanupRequest, Names, News, TryRequest, WireOutcome, WorkerReport,
    check_token, plan_fingerprint,
};
pub use worker::{RootFn, Worker};
