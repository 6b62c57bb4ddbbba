//! Storage shared by every job of a distributed run, on every host: a
//! JetStream key-value bucket, with serde values. A local
//! [`GlobalStorage`](dojobber::GlobalStorage) holds values of any type in
//! one process; this one holds what serialises, for all the workers.

use async_nats::jetstream::kv;
use dojobber::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The key under which a worker puts the run's [`SharedStorage`] into each
/// run's local global storage.
const GLOBAL_KEY: &str = "dojobber-nats shared storage";

/// The run's storage across hosts. Each run starts empty; its values are
/// kept on the server for a day.
///
/// ```no_run
/// use dojobber::{Context, Job, JobResult, bail};
/// use dojobber_nats::SharedStorage;
///
/// struct CreateTable;
/// impl Job<String> for CreateTable {
///     fn check(&self, cx: &mut Context<'_, String>) -> JobResult {
///         let shared = SharedStorage::of(cx).expect("run by a worker");
///         match shared.get::<u32>("schema version")? {
///             Some(3) => Ok(()),
///             _ => bail!("no table yet"),
///         }
///     }
///     fn run(&self, cx: &mut Context<'_, String>) -> JobResult {
///         let shared = SharedStorage::of(cx).expect("run by a worker");
///         shared.insert("schema version", &3u32)?;
///         Ok(())
///     }
/// }
/// ```
#[derive(Clone)]
pub struct SharedStorage {
    store: kv::Store,
    run: String,
    runtime: tokio::runtime::Handle,
}

/// A shared value could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The server refused or could not be reached.
    #[error("shared storage, key {key:?}: {error}")]
    Server {
        /// The key.
        key: String,
        /// The client's error.
        error: String,
    },
    /// The value does not (de)serialise as the type asked for.
    #[error("shared storage, key {key:?}: {error}")]
    Value {
        /// The key.
        key: String,
        /// Why.
        error: String,
    },
}

impl SharedStorage {
    pub(crate) fn new(store: kv::Store, run: &str, runtime: tokio::runtime::Handle) -> Self {
        SharedStorage {
            store,
            run: run.to_owned(),
            runtime,
        }
    }

    /// The run's shared storage, as a worker lends it to a phase; `None`
    /// in a local run.
    pub fn of<A>(cx: &Context<'_, A>) -> Option<SharedStorage> {
        cx.global().get::<SharedStorage>(GLOBAL_KEY)
    }

    /// Makes it reachable from the phases of a worker's run.
    pub(crate) fn lend_to(self, global: &dojobber::GlobalStorage) {
        global.insert(GLOBAL_KEY, self);
    }

    /// The value under `key`, if there is one. Blocks the phase's thread
    /// for a round trip to the server.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SharedError> {
        let found = self
            .runtime
            .block_on(self.store.get(self.bucket_key(key)))
            .map_err(|e| server(key, e))?;
        found
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|e| SharedError::Value {
                key: key.to_owned(),
                error: e.to_string(),
            })
    }

    /// Stores `value` under `key`, replacing whatever was there.
    pub fn insert<T: Serialize>(&self, key: &str, value: &T) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|e| SharedError::Value {
            key: key.to_owned(),
            error: e.to_string(),
        })?;
        self.runtime
            .block_on(self.store.put(self.bucket_key(key), bytes.into()))
            .map(drop)
            .map_err(|e| server(key, e))
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) -> Result<(), SharedError> {
        self.runtime
            .block_on(self.store.delete(self.bucket_key(key)))
            .map_err(|e| server(key, e))
    }

    /// `<run>.<key in hex>`: any key, in the characters a bucket allows.
    fn bucket_key(&self, key: &str) -> String {
        let hex: String = key.bytes().map(|byte| format!("{byte:02x}")).collect();
        format!("{}.{hex}", self.run)
    }
}

fn server(key: &str, error: impl std::fmt::Display) -> SharedError {
    SharedError::Server {
        key: key.to_owned(),
        error: error.to_string(),
    }
}
