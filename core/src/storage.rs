//! Typed key-value storage for jobs: [`LocalStorage`] lives for one try of
//! one job, [`GlobalStorage`] for the whole run and all its jobs.
//!
//! Both are keyed by string and hold values of any `'static` type. Reading a
//! missing key, or a key holding another type, gives `None`; never a panic.

use std::any::{Any, type_name};
use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock};

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
    /// `None` until something is stored: most tries store nothing, and
    /// dropping an empty map still walks an iterator, once per phase.
    values: Option<BTreeMap<String, Value>>,
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

    /// Stores `value` under `key`, replacing whatever was there.
    pub fn insert<T: Any + Send + Sync>(&mut self, key: impl Into<String>, value: T) {
        let values = self.values.get_or_insert_with(BTreeMap::new);
        values.insert(key.into(), Box::new(value));
    }

    /// Removes `key`; tells whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.values
            .as_mut()
            .is_some_and(|values| values.remove(key).is_some())
    }

    /// Whether `key` holds a value of any type.
    pub fn contains_key(&self, key: &str) -> bool {
        self.values
            .as_ref()
            .is_some_and(|values| values.contains_key(key))
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.values.as_ref().is_none_or(BTreeMap::is_empty)
    }
}

impl std::fmt::Debug for LocalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries(self.values.iter().flat_map(BTreeMap::keys))
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
}

impl GlobalStorage {
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
