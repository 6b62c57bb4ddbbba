//! Why a coordinator or a worker could not do its part.

use dojobber::SetupError;

use crate::wire::BadName;

/// A distributed run or a worker could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The suite cannot run: the same errors as a local run's.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// A suite, label or worker name that cannot be used on the server.
    #[error(transparent)]
    BadName(#[from] BadName),
    /// Another coordinator holds the suite's lease.
    #[error(
        "suite {suite:?} is already being run by coordinator run {holder}: \
         one coordinator per suite at a time. If that coordinator is dead, its lease \
         expires within {expires_within:?} of its last refresh: run again then, or give \
         --wait-for-lease (say 30s) to wait for it"
    )]
    LeaseHeld {
        /// The suite.
        suite: String,
        /// The run id of the coordinator that holds the lease.
        holder: String,
        /// The lease's lifetime: a dead coordinator's lease is gone this
        /// long after its last refresh.
        expires_within: std::time::Duration,
    },
    /// A live worker of the suite already has this worker's name.
    #[error(
        "worker name {name:?} is in use by a live worker of suite {suite:?}: \
         names are unique (a dead worker's name is free {expires:?} after its end)"
    )]
    NameInUse {
        /// The suite.
        suite: String,
        /// The name.
        name: String,
        /// How long a dead worker's name stays taken.
        expires: std::time::Duration,
    },
    /// The run's arguments cannot be sent.
    #[error("cannot serialise the run's arguments: {0}")]
    Args(String),
    /// No server answered at the address given.
    #[error("cannot connect to the NATS server at {url} (--nats): {error}")]
    Connect {
        /// The address (or comma-separated addresses) tried.
        url: String,
        /// The client's error.
        error: String,
    },
    /// A file a connection flag names cannot be used.
    #[error("{flag} {path}: {error}")]
    File {
        /// The flag: `--creds`, `--tls-ca`, ...
        flag: &'static str,
        /// The file it names.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        error: String,
    },
    /// The server refused or could not be reached.
    #[error("{context}: {error}")]
    Nats {
        /// What was being done.
        context: &'static str,
        /// The client's error.
        error: String,
    },
}

/// Wraps an async-nats error with what was being done.
pub(crate) fn nats<E: std::fmt::Display>(context: &'static str) -> impl FnOnce(E) -> Error {
    move |error| Error::Nats {
        context,
        error: error.to_string(),
    }
}
