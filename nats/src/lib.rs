#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
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

/// A task that ends when this is dropped: with the future that holds it
/// (a run's future dropped, a try ended, a slot aborted) or with a panic
/// unwinding through it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
