//! Storage shared by every job of a distributed run, on every host: a
//! JetStream key-value bucket, with serde values. A worker makes it the
//! [`SharedBackend`] of each run's global storage, so a job's
//! `cx.global().insert_shared(..)` / `get_shared(..)` reach every host,
//! and the same job keeps them in its process in a local run.

use async_nats::jetstream::kv;
use dojobber::{BoxError, Context, SharedBackend, SharedError};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The key under which a worker puts the run's [`SharedStorage`] into each
/// run's local global storage.
const GLOBAL_KEY: &str = "dojobber-nats shared storage";

/// The run's storage across hosts. Each run starts empty; its values are
/// kept on the server for a day.
///
/// A job needs no more than its global storage's shared values, which a
/// worker backs with this (and a local run keeps in its process):
///
/// ```
/// use dojobber::{Context, Job, JobResult, bail};
///
/// struct CreateTable;
/// impl Job<String> for CreateTable {
///     fn check(&self, cx: &mut Context<'_, String>) -> JobResult {
///         match cx.global().get_shared::<u32>("schema version")? {
///             Some(3) => Ok(()),
///             _ => bail!("no table yet"),
///         }
///     }
///     fn run(&self, cx: &mut Context<'_, String>) -> JobResult {
///         cx.global().insert_shared("schema version", &3u32)?;
///         Ok(())
///     }
/// }
/// ```
///
/// [`SharedStorage::of`] reaches the same values when run by a worker.
#[derive(Clone)]
pub struct SharedStorage {
    store: kv::Store,
    run: String,
    runtime: tokio::runtime::Handle,
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
    /// in a local run. The same values as
    /// [`GlobalStorage::get_shared`](dojobber::GlobalStorage::get_shared)
    /// and company, which work in a local run too.
    pub fn of<A>(cx: &Context<'_, A>) -> Option<SharedStorage> {
        cx.global().get::<SharedStorage>(GLOBAL_KEY)
    }

    /// A run's global storage whose shared values are these, also
    /// reachable with [`of`](Self::of).
    pub(crate) fn global_storage(self) -> dojobber::GlobalStorage {
        let global = dojobber::GlobalStorage::with_shared_backend(self.clone());
        global.insert(GLOBAL_KEY, self);
        global
    }

    /// The value under `key`, if there is one. Blocks the phase's thread
    /// for a round trip to the server.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SharedError> {
        let found = self.get_json(key).map_err(|e| server(key, e))?;
        found
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .map_err(|error| SharedError::Value {
                key: key.to_owned(),
                error,
            })
    }

    /// Stores `value` under `key`, replacing whatever was there.
    pub fn insert<T: Serialize>(&self, key: &str, value: &T) -> Result<(), SharedError> {
        let bytes = serde_json::to_vec(value).map_err(|error| SharedError::Value {
            key: key.to_owned(),
            error,
        })?;
        self.put_json(key, bytes).map_err(|e| server(key, e))
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) -> Result<(), SharedError> {
        self.remove_key(key).map_err(|e| server(key, e))
    }

    fn get_json(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        let found = self
            .runtime
            .block_on(self.store.get(self.bucket_key(key)))?;
        Ok(found.map(|bytes| bytes.to_vec()))
    }

    fn put_json(&self, key: &str, json: Vec<u8>) -> Result<(), BoxError> {
        self.runtime
            .block_on(self.store.put(self.bucket_key(key), json.into()))?;
        Ok(())
    }

    fn remove_key(&self, key: &str) -> Result<(), BoxError> {
        self.runtime
            .block_on(self.store.delete(self.bucket_key(key)))?;
        Ok(())
    }

    /// `<run>.<key in hex>`: any key, in the characters a bucket allows.
    fn bucket_key(&self, key: &str) -> String {
        let hex: String = key.bytes().map(|byte| format!("{byte:02x}")).collect();
        format!("{}.{hex}", self.run)
    }
}

/// Blocks the phase's thread (out of the runtime while the phase runs)
/// for a round trip to the server.
impl SharedBackend for SharedStorage {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError> {
        self.get_json(key)
    }
    fn put(&self, key: &str, json: Vec<u8>) -> Result<(), BoxError> {
        self.put_json(key, json)
    }
    fn remove(&self, key: &str) -> Result<(), BoxError> {
        self.remove_key(key)
    }
}

fn server(key: &str, error: BoxError) -> SharedError {
    SharedError::Backend {
        key: key.to_owned(),
        error,
    }
}
