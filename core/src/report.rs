//! The outcome of a run, per job, serialisable with serde.

use std::time::Duration;

use crate::event::Failure;

/// Where a job ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed without its run executing: it was already as it should be.
    Passed,
    /// Passed after its run executed.
    Fixed,
    /// Its tries are used up without a pass.
    Failed,
    /// Never tried: a dep failed or is blocked.
    Blocked,
    /// Not decided yet: only seen in a report taken while the run goes on.
    Pending,
}

impl Status {
    /// Whether the job is done: passed or fixed.
    pub fn is_success(self) -> bool {
        matches!(self, Status::Passed | Status::Fixed)
    }

    /// The lower-case name used in output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Fixed => "fixed",
            Status::Failed => "failed",
            Status::Blocked => "blocked",
            Status::Pending => "pending",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to one job.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobReport {
    /// The job's name.
    pub name: String,
    /// Where it ended up.
    pub status: Status,
    /// Tries used (0 for a blocked job).
    pub tries: u32,
    /// Why its last try failed, if it did.
    pub last_error: Option<Failure>,
    /// For a blocked job, its first dep that did not pass.
    pub blocked_by: Option<String>,
    /// For a job blocked with no dep to blame, why: the run stopped
    /// (`cancelled`, `run deadline passed`, `fail-fast: a job failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<String>,
    /// Time spent in its phases.
    #[serde(with = "seconds", rename = "time_secs")]
    pub time: Duration,
    /// Its deps' names, in declaration order.
    pub deps: Vec<String>,
}

/// A cleanup that failed; the cleanups after it did not run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("cleanup of {job} failed: {error}")]
pub struct CleanupFailure {
    /// The job whose cleanup failed.
    pub job: String,
    /// Why.
    pub error: Failure,
}

/// The outcome of a run: one entry per job, in the reference order.
///
/// ```
/// use dojobber::{dep, Job, Runner, Status};
///
/// struct Done;
/// impl Job for Done {
///     fn check(&self, _cx: &mut dojobber::Context<'_, ()>) -> dojobber::JobResult { Ok(()) }
/// }
/// let report = Runner::new(Done, ()).run()?.into_report();
/// assert!(report.is_success());
/// assert_eq!(report.job("Done").unwrap().status, Status::Passed);
/// let json = serde_json::to_string(&report)?;
/// assert!(json.contains(r#""status":"passed""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The format's version: [`Report::VERSION`].
    pub version: u32,
    /// Whether this was a no-act run.
    pub no_act: bool,
    /// How many rounds of tries the run took, one phase at a time; with
    /// several phases at once there are no rounds, and this is the most
    /// tries any job used.
    pub rounds: u32,
    /// Time from the run's start to its last phase.
    #[serde(with = "seconds", rename = "elapsed_secs")]
    pub elapsed: Duration,
    /// Why the run stopped before every job had its chance, if it did:
    /// `cancelled`, `run deadline passed`, `fail-fast: a job failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The cleanup that failed, if one did.
    pub cleanup_failure: Option<CleanupFailure>,
    /// Every job, in the reference order.
    pub jobs: Vec<JobReport>,
}

impl Report {
    /// The version of the JSON format this crate writes.
    pub const VERSION: u32 = 1;

    /// Whether every job passed or was fixed.
    pub fn is_success(&self) -> bool {
        self.jobs.iter().all(|job| job.status.is_success())
    }

    /// Whether at least one job passed or was fixed: the run made progress,
    /// or found things already done.
    pub fn is_partial_success(&self) -> bool {
        self.jobs.iter().any(|job| job.status.is_success())
    }

    /// The job called `name`.
    pub fn job(&self, name: &str) -> Option<&JobReport> {
        self.jobs.iter().find(|job| job.name == name)
    }

    /// The names of the jobs with this status, in the reference order.
    pub fn names_with(&self, status: Status) -> Vec<&str> {
        self.jobs
            .iter()
            .filter(|job| job.status == status)
            .map(|job| job.name.as_str())
            .collect()
    }
}

/// Durations as seconds in floating point, the way people read them in JSON.
mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}
