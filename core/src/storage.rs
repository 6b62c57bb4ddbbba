//! Typed key-value storage for jobs: [`LocalStorage`] lives for one try of
//! one job, [`GlobalStorage`] for the whole run and all its jobs.
//!
//! Both are keyed by string and hold values of any `'static` type. Reading a
//! missing key, or a key holding another type, gives `None`; never a panic.
//!
//! The global storage also holds *shared* values (serde, as JSON): in a
//! local run they stay in the process; a run over several hosts backs them
//! with a [`SharedBackend`] (dojobber-nats: the run's key-value bucket),
//! so a job reads and writes them with the same calls either way.

use std::any::{Any, type_name};
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

use compact_str::CompactString;
use serde::Serialize;

use crate::caught::drop_caught;
use serde::de::DeserializeOwned;

type Value = Box<dyn Any + Send + Sync>;

/// A key held a value of another type than the one asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage key {key:?} does not hold a value of type {expected}")]
pub struct WrongType {
    /// The key that was asked for.
    pub key: String,
    /// The type the caller asked for.
    pub expected: &'static str,
}

/// Storage private to one try of one job: `check`, `run` and the recheck
/// of a try share it, and the next try starts empty.
///
/// ```
/// use dojobber::LocalStorage;
///
/// let mut local = LocalStorage::default();
/// local.insert("runran", true);
/// assert_eq!(local.get::<bool>("runran"), Some(&true));
/// assert_eq!(local.get::<u32>("runran"), None); // another type
/// assert_eq!(local.get::<bool>("missing"), None);
/// ```
#[derive(Default)]
pub struct LocalStorage {
    /// `None` until something is stored: most tries store nothing. A try
    /// that stores one value (the common case: "my run ran") keeps it and
    /// its key in one allocation, a short key inline; only a second key
    /// makes a map. A million jobs may each keep theirs until the cleanups.
    values: Option<Box<dyn Slot>>,
}

/// What a [`LocalStorage`] holds: one value with its key ([`One`]), or a
/// map of them ([`Many`]).
trait Slot: Send + Sync {
    /// The value under `key`.
    fn get(&self, key: &str) -> Option<&dyn Any>;
    /// The value under `key`, to change.
    fn get_mut(&mut self, key: &str) -> Option<&mut dyn Any>;
    /// Whether `key` holds a value.
    fn contains_key(&self, key: &str) -> bool;
    /// Every key.
    fn keys(&self) -> Vec<&str>;
    /// The map, if this is one.
    fn as_map(&mut self) -> Option<&mut BTreeMap<CompactString, Value>>;
    /// The values as a map, to hold a second key.
    fn into_map(self: Box<Self>) -> BTreeMap<CompactString, Value>;
}

/// A single key and its value, in one allocation.
struct One<T> {
    key: CompactString,
    value: T,
}

impl<T: Any + Send + Sync> Slot for One<T> {
    fn get(&self, key: &str) -> Option<&dyn Any> {
        (self.key == key).then_some(&self.value)
    }
    fn get_mut(&mut self, key: &str) -> Option<&mut dyn Any> {
        (self.key == key).then_some(&mut self.value)
    }
    fn contains_key(&self, key: &str) -> bool {
        self.key == key
    }
    fn keys(&self) -> Vec<&str> {
        vec![&self.key]
    }
    fn as_map(&mut self) -> Option<&mut BTreeMap<CompactString, Value>> {
        None
    }
    fn into_map(self: Box<Self>) -> BTreeMap<CompactString, Value> {
        let One { key, value } = *self;
        BTreeMap::from([(key, Box::new(value) as Value)])
    }
}

/// Two keys or more.
struct Many(BTreeMap<CompactString, Value>);

impl Slot for Many {
    fn get(&self, key: &str) -> Option<&dyn Any> {
        self.0.get(key).map(|value| &**value as &dyn Any)
    }
    fn get_mut(&mut self, key: &str) -> Option<&mut dyn Any> {
        self.0
            .get_mut(key)
            .map(|value| &mut **value as &mut dyn Any)
    }
    fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(CompactString::as_str).collect()
    }
    fn as_map(&mut self) -> Option<&mut BTreeMap<CompactString, Value>> {
        Some(&mut self.0)
    }
    fn into_map(self: Box<Self>) -> BTreeMap<CompactString, Value> {
        let mut many = *self;
        std::mem::take(&mut many.0)
    }
}

impl Drop for Many {
    /// Each value is user code whose `Drop` may panic: each is dropped on
    /// its own and its panic caught, so one cannot stop the others.
    fn drop(&mut self) {
        drop_each_caught(std::mem::take(&mut self.0).into_values());
    }
}

impl LocalStorage {
    /// The value under `key`, if there is one of type `T`.
    pub fn get<T: Any>(&self, key: &str) -> Option<&T> {
        self.values.as_ref()?.get(key)?.downcast_ref()
    }

    /// A mutable reference to the value under `key`, if there is one of type `T`.
    pub fn get_mut<T: Any>(&mut self, key: &str) -> Option<&mut T> {
        self.values.as_mut()?.get_mut(key)?.downcast_mut()
    }

    /// Stores `value` under `key`, replacing whatever was there. A key of
    /// up to 24 bytes is kept without an allocation of its own.
    pub fn insert<T: Any + Send + Sync>(&mut self, key: impl AsRef<str>, value: T) {
        let key = key.as_ref();
        let values: Box<dyn Slot> = match self.values.take() {
            None => Box::new(One {
                key: key.into(),
                value,
            }),
            Some(mut values) => {
                if let Some(map) = values.as_map() {
                    if let Some(old) = map.insert(key.into(), Box::new(value)) {
                        drop_caught(old);
                    }
                    values
                } else if values.contains_key(key) {
                    // The value replaced is user code, whose `Drop` may panic.
                    drop_caught(values);
                    Box::new(One {
                        key: key.into(),
                        value,
                    })
                } else {
                    let mut map = values.into_map();
                    map.insert(key.into(), Box::new(value));
                    Box::new(Many(map))
                }
            }
        };
        self.values = Some(values);
    }

    /// Removes `key`; tells whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(values) = self.values.as_mut() else {
            return false;
        };
        let now_empty = if let Some(map) = values.as_map() {
            let Some(value) = map.remove(key) else {
                return false;
            };
            drop_caught(value);
            map.is_empty()
        } else if values.contains_key(key) {
            true
        } else {
            return false;
        };
        if now_empty && let Some(values) = self.values.take() {
            drop_caught(values);
        }
        true
    }

    /// Whether `key` holds a value of any type.
    pub fn contains_key(&self, key: &str) -> bool {
        self.values
            .as_ref()
            .is_some_and(|values| values.contains_key(key))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        // A map is never left empty: its last removal drops it.
        self.values.is_none()
    }
}

impl Drop for LocalStorage {
    /// The values are user code whose `Drop` may panic: a single one is
    /// dropped under `catch_unwind`, a map's each on its own.
    #[inline]
    fn drop(&mut self) {
        // Most tries store nothing: their storage's drop is this test.
        if let Some(values) = self.values.take() {
            drop_caught(values);
        }
    }
}

/// Drops each stored value on its own, catching its panic: user code, and
/// a second panic while one unwinds would abort.
#[cold]
fn drop_each_caught(values: impl IntoIterator<Item = Value>) {
    for value in values {
        crate::caught::drop_caught(value);
    }
}

impl std::fmt::Debug for LocalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.values.iter().flat_map(|values| values.keys()))
            .finish()
    }
}

/// Storage shared by every job of a run, safe to use from many threads.
///
/// Values are read by cloning them out, and changed in place with
/// [`update`](Self::update), which holds the lock for the closure.
///
/// ```
/// use dojobber::GlobalStorage;
///
/// let global = GlobalStorage::default();
/// global.insert("Start-DateTime", String::from("Saturday 19:00"));
/// assert_eq!(global.get::<String>("Start-DateTime").as_deref(), Some("Saturday 19:00"));
///
/// let count = global.update("pop_failcount", || 0u32, |n| { *n += 1; *n });
/// assert_eq!(count, Ok(1));
/// assert!(global.update("Start-DateTime", || 0u32, |n| *n).is_err()); // a String is there
/// ```
#[derive(Default)]
pub struct GlobalStorage {
    values: RwLock<HashMap<String, Value>>,
    /// Where the shared values live: `None` is this process.
    shared: Option<Box<dyn SharedBackend>>,
    /// The shared values of a local run.
    in_process: RwLock<HashMap<String, Vec<u8>>>,
}

/// Where a run's shared values live when they must outlive one process:
/// raw JSON bytes by key. Implemented by drivers that run jobs on several
/// hosts (dojobber-nats backs it with the run's key-value bucket); a job
/// author uses [`GlobalStorage::get_shared`] and company instead.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use dojobber::{GlobalStorage, SharedBackend};
///
/// #[derive(Default)]
/// struct Remote(Mutex<HashMap<String, Vec<u8>>>);
/// impl SharedBackend for Remote {
///     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, dojobber::BoxError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn put(&self, key: &str, json: Vec<u8>) -> Result<(), dojobber::BoxError> {
///         self.0.lock().unwrap().insert(key.to_owned(), json);
///         Ok(())
///     }
///     fn remove(&self, key: &str) -> Result<(), dojobber::BoxError> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let global = GlobalStorage::with_shared_backend(Remote::default());
/// global.insert_shared("schema version", &3u32)?;
/// assert_eq!(global.get_shared::<u32>("schema version")?, Some(3));
/// # Ok::<(), dojobber::SharedError>(())
/// ```
pub trait SharedBackend: Send + Sync {
    /// The JSON stored under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BoxError>;
    /// Stores `json` under `key`, replacing whatever was there.
    fn put(&self, key: &str, json: Vec<u8>) -> Result<(), BoxError>;
    /// Removes `key` (no error when it is missing).
    fn remove(&self, key: &str) -> Result<(), BoxError>;
}

/// The error a [`SharedBackend`] gives: any error that crosses threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A shared value could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError {
    /// The backend (a server, in a run over several hosts) failed.
    #[error("shared storage, key {key:?}: {error}")]
    Backend {
        /// The key.
        key: String,
        /// What the backend said.
        error: BoxError,
    },
    /// The value does not (de)serialise as the type asked for.
    #[error("shared storage, key {key:?}: {error}")]
    Value {
        /// The key.
        key: String,
        /// What serde said.
        error: serde_json::Error,
    },
}

impl GlobalStorage {
    /// A global storage whose shared values live in `backend` rather than
    /// in this process: what a driver running jobs on several hosts gives
    /// each of its phases.
    pub fn with_shared_backend(backend: impl SharedBackend + 'static) -> Self {
        let mut storage = GlobalStorage::default();
        storage.shared = Some(Box::new(backend));
        storage
    }

    /// The shared value under `key`, if there is one. Shared values are
    /// apart from the others (`get` does not see them) and are stored as
    /// JSON, so they reach every host of a distributed run; a value that
    /// does not read as a `T` is an error.
    ///
    /// ```
    /// use dojobber::GlobalStorage;
    ///
    /// let global = GlobalStorage::default(); // a local run: kept in the process
    /// global.insert_shared("database", &("db-1", 5432u16))?;
    /// assert_eq!(global.get_shared::<(String, u16)>("database")?, Some(("db-1".into(), 5432)));
    /// assert_eq!(global.get_shared::<u32>("missing")?, None);
    /// assert!(global.get_shared::<u32>("database").is_err()); // not a u32
    /// assert!(global.remove_shared("database")?);
    /// # Ok::<(), dojobber::SharedError>(())
    /// ```
    pub fn get_shared<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SharedError> {
        let json = match &self.shared {
            Some(backend) => backend.get(key).map_err(|error| SharedError::Backend {
                key: key.to_owned(),
                error,
            })?,
            None => {
                let values = self
                    .in_process
                    .read()
                    .unwrap_or_else(PoisonError::into_inner);
                values.get(key).cloned()
            }
        };
        json.map(|json| serde_json::from_slice(&json))
            .transpose()
            .map_err(|error| SharedError::Value {
                key: key.to_owned(),
                error,
            })
    }

    /// Stores `value` under `key` in the shared values, replacing whatever
    /// was there (see [`get_shared`](Self::get_shared)).
    pub fn insert_shared<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SharedError> {
        let json = serde_json::to_vec(value).map_err(|error| SharedError::Value {
            key: key.to_owned(),
            error,
        })?;
        match &self.shared {
            Some(backend) => backend
                .put(key, json)
                .map_err(|error| SharedError::Backend {
                    key: key.to_owned(),
                    error,
                }),
            None => {
                let mut values = self
                    .in_process
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                values.insert(key.to_owned(), json);
                Ok(())
            }
        }
    }

    /// Removes the shared value under `key`; tells whether it was there.
    pub fn remove_shared(&self, key: &str) -> Result<bool, SharedError> {
        match &self.shared {
            Some(backend) => {
                let backend_error = |error| SharedError::Backend {
                    key: key.to_owned(),
                    error,
                };
                let was_there = backend.get(key).map_err(backend_error)?.is_some();
                backend.remove(key).map_err(backend_error)?;
                Ok(was_there)
            }
            None => {
                let mut values = self
                    .in_process
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                Ok(values.remove(key).is_some())
            }
        }
    }

    /// A clone of the value under `key`, if there is one of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        values.get(key)?.downcast_ref::<T>().cloned()
    }

    /// Stores `value` under `key`, replacing whatever was there.
    pub fn insert<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        values.insert(key.into(), Box::new(value));
    }

    /// Changes the value under `key` in place, first storing `default()` if
    /// the key is missing, and returns what `change` returns. Fails, changing
    /// nothing, when the key holds another type.
    pub fn update<T, R>(
        &self,
        key: &str,
        default: impl FnOnce() -> T,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R, WrongType>
    where
        T: Any + Send + Sync,
    {
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        let value = values
            .entry(key.to_owned())
            .or_insert_with(|| Box::new(default()));
        match value.downcast_mut::<T>() {
            Some(value) => Ok(change(value)),
            None => Err(WrongType {
                key: key.to_owned(),
                expected: type_name::<T>(),
            }),
        }
    }

    /// Removes `key`; tells whether it was there.
    pub fn remove(&self, key: &str) -> bool {
        let mut values = self.values.write().unwrap_or_else(PoisonError::into_inner);
        values.remove(key).is_some()
    }

    /// Whether `key` holds a value of any type.
    pub fn contains_key(&self, key: &str) -> bool {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        values.contains_key(key)
    }
}

impl Drop for GlobalStorage {
    /// As [`LocalStorage`]'s: each value dropped on its own, its panic caught.
    fn drop(&mut self) {
        let values = self
            .values
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        drop_each_caught(std::mem::take(values).into_values());
    }
}

impl std::fmt::Debug for GlobalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values = self.values.read().unwrap_or_else(PoisonError::into_inner);
        let mut keys: Vec<_> = values.keys().collect();
        keys.sort();
        f.debug_set().entries(keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn global_storage_is_shared_across_threads() {
        let global = Arc::new(GlobalStorage::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let global = Arc::clone(&global);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        global.update("n", || 0u64, |n| *n += 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(global.get::<u64>("n"), Some(8000));
    }

    #[test]
    fn wrong_type_changes_nothing() {
        let global = GlobalStorage::default();
        global.insert("k", "text");
        let err = global.update("k", || 1u8, |n| *n += 1).unwrap_err();
        assert_eq!(err.key, "k");
        assert!(err.to_string().contains("u8"), "{err}");
        assert_eq!(global.get::<&str>("k"), Some("text"));
    }

    #[test]
    fn shared_values_round_trip_as_json_apart_from_the_typed_ones() {
        let global = GlobalStorage::default();
        global.insert("k", 1u8);
        global.insert_shared("k", "text").unwrap();
        assert_eq!(global.get::<u8>("k"), Some(1));
        assert_eq!(
            global.get_shared::<String>("k").unwrap().as_deref(),
            Some("text")
        );
        let err = global.get_shared::<u8>("k").unwrap_err();
        assert!(
            matches!(err, SharedError::Value { ref key, .. } if key == "k"),
            "{err}"
        );
        assert!(global.remove_shared("k").unwrap());
        assert!(!global.remove_shared("k").unwrap());
        assert_eq!(global.get::<u8>("k"), Some(1));
    }

    /// A backend whose server is away: every call fails.
    struct Unreachable;
    impl SharedBackend for Unreachable {
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, BoxError> {
            Err("server unreachable".into())
        }
        fn put(&self, _: &str, _: Vec<u8>) -> Result<(), BoxError> {
            Err("server unreachable".into())
        }
        fn remove(&self, _: &str) -> Result<(), BoxError> {
            Err("server unreachable".into())
        }
    }

    #[test]
    fn a_failing_backend_is_an_error_naming_the_key() {
        let global = GlobalStorage::with_shared_backend(Unreachable);
        for err in [
            global.insert_shared("db", &1u8).unwrap_err(),
            global.get_shared::<u8>("db").unwrap_err(),
            global.remove_shared("db").unwrap_err(),
        ] {
            assert!(matches!(err, SharedError::Backend { .. }));
            assert_eq!(
                err.to_string(),
                r#"shared storage, key "db": server unreachable"#
            );
        }
        // Typed values stay in the process.
        global.insert("db", 1u8);
        assert_eq!(global.get::<u8>("db"), Some(1));
    }

    #[test]
    fn local_storage_holds_one_key_then_many_then_none() {
        let mut local = LocalStorage::default();
        local.insert("ran", true);
        local.insert(String::from("ran"), 2u8); // the same key, another type
        assert_eq!(
            (local.get::<bool>("ran"), local.get::<u8>("ran")),
            (None, Some(&2))
        );
        assert_eq!(format!("{local:?}"), r#"{"ran"}"#);
        let long = "a key longer than twenty-four bytes";
        local.insert(long, String::from("kept"));
        assert_eq!(local.get::<String>(long).map(String::as_str), Some("kept"));
        assert_eq!(local.get::<u8>("ran"), Some(&2));
        *local.get_mut::<u8>("ran").unwrap() += 1;
        local.insert("ran", 4u8);
        assert_eq!(local.get::<u8>("ran"), Some(&4));
        assert!(local.contains_key(long) && !local.contains_key("other"));
        assert!(!local.remove("other"));
        assert!(local.remove("ran"));
        assert_eq!(format!("{local:?}"), format!("{{{long:?}}}"));
        assert!(local.remove(long));
        assert!(local.is_empty() && !local.remove(long));
        local.insert("again", 1u32);
        assert!(local.remove("again") && local.is_empty());
    }

    /// Panics when dropped, counting the drops.
    struct Bomb(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Bomb {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            panic!("bomb");
        }
    }

    #[test]
    fn a_stored_value_whose_drop_panics_is_caught_when_replaced_removed_or_dropped() {
        let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut local = LocalStorage::default();
        local.insert("one", Bomb(Arc::clone(&drops)));
        local.insert("one", Bomb(Arc::clone(&drops)));
        local.insert("two", Bomb(Arc::clone(&drops)));
        local.insert("two", 2u8);
        local.insert("three", Bomb(Arc::clone(&drops)));
        assert!(local.remove("three"));
        local.insert("four", Bomb(Arc::clone(&drops)));
        drop(local);
        assert_eq!(
            drops.load(std::sync::atomic::Ordering::SeqCst),
            5,
            "every bomb"
        );
    }

    #[test]
    fn local_storage_get_mut_and_remove() {
        let mut local = LocalStorage::default();
        local.insert("n", 1u32);
        *local.get_mut::<u32>("n").unwrap() += 1;
        assert_eq!(local.get::<u32>("n"), Some(&2));
        assert!(local.remove("n"));
        assert!(!local.remove("n"));
        assert!(local.is_empty());
    }
}
