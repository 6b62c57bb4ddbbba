//! Converge a directory tree and a SQLite database to the desired state a
//! TOML file describes: `cargo run --example provision`.
//!
//! Every entry of the file becomes its own job at run time: `dir etc`,
//! `file etc/motd`, `symlink etc/guestbook/current.conf`,
//! `absent var/log/guestbook/debug.log`, `database var/lib/guestbook/guestbook.db`,
//! `table users`, `seed users`. An entry needs the nearest directory
//! declared above it (or `target`, the target directory itself), a table
//! needs the database, a seed its table, and `deps = [...]` in the file
//! adds more by job name. The root, `provision`, groups the entries that
//! no other entry needs.
//!
//! Checks look at the disk and the database, never at a remembered flag;
//! runs change only what the check found wrong. So a second run passes
//! every job at its first check and runs nothing.
//!
//! ```
//! use dojobber::Status;
//! use dojobber_example_provision::{self as provision, Desired};
//!
//! let desired = Desired::parse(
//!     r#"
//!     [[dir]]
//!     path = "etc"
//!     [[file]]
//!     path = "etc/motd"
//!     content = "hello\n"
//!     "#,
//!     "motd.toml",
//! )?;
//! assert_eq!(desired.job_names(), ["target", "dir etc", "file etc/motd"]);
//!
//! let target = tempfile::tempdir()?;
//! let first = provision::runner(desired, target.path()).run()?.into_report();
//! assert_eq!(first.job("file etc/motd").unwrap().status(), Status::Fixed);
//! assert_eq!(std::fs::read_to_string(target.path().join("etc/motd"))?, "hello\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The file's format, by example: `examples/provision/provision.toml`.
//!
//! | entry | keys | job |
//! |---|---|---|
//! | `[vars]` | any name: a string, integer, float or boolean | (template variables) |
//! | `[[dir]]` | `path`, `mode` (default `0o755`) | `dir PATH` |
//! | `[[file]]` | `path`, `content` or `template` (minijinja, `{{ var }}`, `{{ shared.KEY.location }}`), `mode` (default `0o644`) | `file PATH` |
//! | `[[symlink]]` | `path`, `target` (relative, inside the target directory) | `symlink PATH` |
//! | `[[absent]]` | `path` | `absent PATH` |
//! | `[database]` | `path`, `mode` (default `0o644`), `share` (a key) | `database PATH`, `share KEY` |
//! | `[[database.table]]` | `name`, `columns` (SQL column definitions) | `table NAME` |
//! | `[[database.seed]]` | `table`, `rows` (tables of column = value) | `seed TABLE` |
//!
//! Every entry also takes `deps`, a list of job names.
//!
//! A database with `share = "KEY"` has a job `share KEY`, after its
//! tables, that puts where the database is (`location`, an absolute path)
//! and its `tables` in the run's shared values
//! ([`GlobalStorage::insert_shared`](dojobber::GlobalStorage::insert_shared));
//! a template that reads `shared.KEY` needs that job, and is rendered with
//! what it shared. In a local run the values stay in the process; across
//! hosts they reach every host.
//!
//! Several hosts: [`Desired::parse_hosts`] reads a file with a section per
//! host (`examples/provision/provision-hosts.toml`), which `provision_hosts`
//! runs over NATS, one worker per host, each in its own target directory.
//!
//! Checking the file runs none of it: a table's `columns` must make one
//! `CREATE TABLE` of that table, as SQLite's compiler sees it (an
//! authorizer refuses anything else, `ATTACH` and `PRAGMA` included, and
//! nothing is compiled against a database on disk). `-n` and `--list`
//! change nothing.
//!
//! Crashes and company: an interrupted run never stops the next one. New
//! file contents and symlinks are written under a `.provision-tmp-` name
//! and renamed into place; the `target` job removes the ones a crash
//! left. A database write cut short leaves a hot journal, which the
//! database job rolls back. Two runs on one target take turns: the
//! `target` job locks the target directory (`flock`) until its run ends.
//! `PROVISION_KILL_AT` injects crashes for the tests ([`fault`]).
//!
//! Unix only: modes and symlinks are Unix's.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dojobber::{Group, JobRef, Runner};

mod beneath;
mod config;
mod db;
pub mod fault;
mod jobs;
mod paths;
mod vfs;

pub use config::{ConfigError, Desired, Invalid, Scalar, TARGET_JOB};
pub use db::{Database, Seed, Share, SharedDatabase, Table};
pub use jobs::{Absent, Directory, File, Symlink, TEMP_PREFIX, Target};
pub use paths::RelPath;

/// The sample desired-state file, the command line's default.
pub const SAMPLE_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/provision.toml");

/// The sample file for several hosts, the `provision_hosts` example's default.
pub const HOSTS_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/provision-hosts.toml");

/// The name of the root job, which groups every entry.
pub const ROOT_JOB: &str = "provision";

/// What every job of a run is given: where to converge, and the desired
/// state (to find the jobs an entry depends on).
#[derive(Debug)]
pub struct Provision {
    target: PathBuf,
    desired: Arc<Desired>,
}

impl Provision {
    /// The arguments of a run that converges `target` to `desired`.
    pub fn new(desired: Desired, target: impl Into<PathBuf>) -> Provision {
        Provision {
            target: target.into(),
            desired: Arc::new(desired),
        }
    }

    /// The target directory: every path of the desired state is inside it.
    /// Empty where no job runs: on a coordinator, and on a worker before
    /// it sets its own ([`set_target`](Self::set_target)).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Converge `target` on this host: each worker of a run over several
    /// hosts has its own, which the run's arguments do not carry.
    pub fn set_target(&mut self, target: impl Into<PathBuf>) {
        self.target = target.into();
    }

    /// The root job: a group of the entries no other entry needs.
    pub fn root(&self) -> JobRef<Provision> {
        dojobber::dep(Group::new(ROOT_JOB).with_deps(self.desired.tops()))
    }
}

/// The arguments travel as the desired-state file's text, which each host
/// checks again into the same jobs; the target stays behind.
impl serde::Serialize for Provision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.desired.source.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Provision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = config::SourceText::deserialize(deserializer)?;
        let desired = source.parse().map_err(serde::de::Error::custom)?;
        Ok(Provision::new(desired, PathBuf::new()))
    }
}

/// A runner that converges `target` to `desired`. Each job gets one try
/// by default: a try that failed on the disk fails again at once, and the
/// next run of the program is the retry.
pub fn runner(desired: Desired, target: impl Into<PathBuf>) -> Runner<Provision> {
    let args = Provision::new(desired, target);
    Runner::from_ref(args.root(), args)
        .tries(1)
        .retry_delay(Duration::ZERO)
}

/// Makes a new, empty directory under the system temp dir, to converge
/// when no target is given, and leaves it there.
pub fn fresh_target() -> std::io::Result<PathBuf> {
    Ok(tempfile::Builder::new()
        .prefix("provision-")
        .tempdir()?
        .keep())
}
