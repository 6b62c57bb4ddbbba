//! The outcome of a run, per job, serialisable with serde.

use std::time::Duration;

use crate::job::Phase;

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

/// Why a run stopped before every job had its chance.
///
/// In a report and its JSON it reads as today's words: `cancelled`,
/// `run deadline passed`, `fail-fast: a job failed`.
///
/// ```
/// use dojobber::StopReason;
/// assert_eq!(serde_json::to_string(&StopReason::Deadline)?, r#""run deadline passed""#);
/// assert_eq!(StopReason::Cancelled.to_string(), "cancelled");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StopReason {
    /// Someone cancelled the run.
    #[serde(rename = "cancelled")]
    Cancelled,
    /// The whole-run deadline passed.
    #[serde(rename = "run deadline passed")]
    Deadline,
    /// A job failed for good and the run is fail-fast.
    #[serde(rename = "fail-fast: a job failed")]
    FailFast,
}

impl StopReason {
    /// The reason as words, for reports: `cancelled`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Cancelled => "cancelled",
            StopReason::Deadline => "run deadline passed",
            StopReason::FailFast => "fail-fast: a job failed",
        }
    }

    /// Whether tries under way still finish (fail-fast) or stop at their
    /// current phase (cancellation, deadline).
    pub(crate) fn lets_tries_finish(self) -> bool {
        self == StopReason::FailFast
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a phase failed: the error's message and the chain of its causes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// The error's own message, one line as the user wrote it.
    pub message: String,
    /// The errors that caused it, outermost first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<String>,
    /// Whose failure it is: the job's own error, or one the engine decided
    /// (a time limit, a stop). Absent from JSON for the job's own error.
    #[serde(default, skip_serializing_if = "FailureKind::is_error")]
    pub kind: FailureKind,
}

/// What kind of [`Failure`] a phase had: code need not read its message.
///
/// ```
/// use dojobber::{Failure, FailureKind, StopReason};
/// assert_eq!(Failure::new("no remote").kind, FailureKind::Error);
/// let json = r#"{"message":"cancelled during its try","kind":{"interrupted":"cancelled"}}"#;
/// let failure: Failure = serde_json::from_str(json)?;
/// assert_eq!(failure.kind, FailureKind::Interrupted(StopReason::Cancelled));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The job's code returned an error or panicked, or the job could not
    /// be set up.
    #[default]
    Error,
    /// The phase ran over its job's time limit (the message says which).
    TimedOut,
    /// The run stopped between two phases of the job's try.
    Interrupted(StopReason),
}

impl FailureKind {
    /// Whether it is the job's own error.
    pub fn is_error(&self) -> bool {
        *self == FailureKind::Error
    }
}

impl Failure {
    /// A failure with a message and no causes.
    ///
    /// ```
    /// let failure = dojobber::Failure::new("Still popping...");
    /// assert_eq!(failure.to_string(), "Still popping...");
    /// ```
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            causes: Vec::new(),
            kind: FailureKind::Error,
        }
    }

    /// This failure, of another kind.
    pub fn with_kind(self, kind: FailureKind) -> Failure {
        Failure { kind, ..self }
    }

    /// The message and causes of an error returned by user code.
    ///
    /// ```
    /// use anyhow::Context;
    /// let err = Err::<(), _>(std::fmt::Error).context("rendering invite").unwrap_err();
    /// let failure = dojobber::Failure::from_error(&err);
    /// assert_eq!(failure.message, "rendering invite");
    /// assert_eq!(failure.causes, ["an error occurred when formatting an argument"]);
    /// ```
    pub fn from_error(error: &anyhow::Error) -> Failure {
        Failure {
            message: error.to_string(),
            causes: error.chain().skip(1).map(ToString::to_string).collect(),
            kind: FailureKind::Error,
        }
    }

    /// [`Failure::from_error`], taking the error: a message of its own with
    /// no cause (what `bail!` with arguments makes) moves into the failure
    /// instead of being formatted again, which a failing check would pay
    /// for every time.
    pub(crate) fn from_owned_error(error: anyhow::Error) -> Failure {
        if error.source().is_some() {
            return Failure::from_error(&error);
        }
        // Only the error itself can be a `String` here: no context wraps it.
        match error.downcast::<String>() {
            Ok(message) => Failure::new(message),
            Err(error) => Failure::from_error(&error),
        }
    }

    /// The failure of user code that panicked, from the panic's payload.
    ///
    /// ```
    /// let payload = std::panic::catch_unwind(|| panic!("no remote")).unwrap_err();
    /// assert_eq!(dojobber::Failure::from_panic(&*payload).message, "panicked: no remote");
    /// ```
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Failure {
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a payload that is not a string)");
        Failure::new(format!("panicked: {text}"))
    }
}

impl std::fmt::Display for Failure {
    /// The message; with `{:#}`, the causes too, joined by `: `.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if f.alternate() {
            for cause in &self.causes {
                write!(f, ": {cause}")?;
            }
        }
        Ok(())
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
    /// Why its last try failed, if it did; boxed, so a job that did not
    /// fail costs no more than a pointer.
    pub last_error: Option<Box<Failure>>,
    /// For a blocked job, its first dep that did not pass.
    pub blocked_by: Option<String>,
    /// For a job blocked with no dep to blame, why: the run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<StopReason>,
    /// Time spent in its phases.
    #[serde(with = "seconds", rename = "time_secs")]
    pub time: Duration,
    /// Its deps' names, in declaration order.
    pub deps: Vec<String>,
    /// Its phases in the order they finished, each failed one with its
    /// error: a run's error stays here when the recheck then fails too.
    #[serde(default)]
    pub phases: Vec<PhaseRecord>,
}

impl JobReport {
    /// The error of its last try's run, if that run failed: the cause
    /// behind a recheck's failure.
    ///
    /// ```
    /// use dojobber::{Context, Job, JobResult, Runner, anyhow::{Context as _, bail}};
    ///
    /// struct Repo;
    /// impl Job for Repo {
    ///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("no repo") }
    ///     fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
    ///         Err(std::io::Error::other("No such file or directory")).context("running git init")
    ///     }
    /// }
    /// let report = Runner::new(Repo, ()).output(std::io::sink()).run()?.into_report();
    /// let repo = report.job("Repo").unwrap();
    /// assert_eq!(repo.last_error.as_ref().unwrap().message, "no repo");
    /// let run = repo.run_error().unwrap();
    /// assert_eq!(format!("{run:#}"), "running git init: No such file or directory");
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn run_error(&self) -> Option<&Failure> {
        let last_try = self.phases.iter().map(|phase| phase.attempt).max()?;
        self.phases
            .iter()
            .filter(|phase| phase.attempt == last_try && phase.phase == Phase::Run)
            .find_map(|phase| phase.error.as_deref())
    }
}

/// One phase of one try of a job, as it went.
///
/// A large run keeps one per phase of every job, so it is small: 32 bytes,
/// its times as nanoseconds since the run started (read them with
/// [`start`](Self::start) and [`end`](Self::end)).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseRecord {
    /// Which phase.
    pub phase: Phase,
    /// Which try, from 1 (a cleanup carries the last try's number).
    pub attempt: u32,
    #[serde(with = "nanos_as_seconds", rename = "start_secs")]
    pub(crate) start_nanos: u64,
    #[serde(with = "nanos_as_seconds", rename = "end_secs")]
    pub(crate) end_nanos: u64,
    /// Whether it passed.
    pub passed: bool,
    /// Whether user code was called: a dummy job's check, a run-only job's
    /// check and recheck are decided by the machine.
    pub performed: bool,
    /// Why it failed; boxed, so a passing phase costs no more than a pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<Failure>>,
}

impl PhaseRecord {
    /// When it was handed out, since the run started.
    ///
    /// ```
    /// let json = r#"{"phase":"check","attempt":1,"start_secs":0.25,"end_secs":1.5,
    ///                "passed":true,"performed":true}"#;
    /// let record: dojobber::PhaseRecord = serde_json::from_str(json)?;
    /// assert_eq!(record.start(), std::time::Duration::from_millis(250));
    /// assert_eq!(record.end() - record.start(), std::time::Duration::from_millis(1250));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn start(&self) -> Duration {
        Duration::from_nanos(self.start_nanos)
    }

    /// When it finished (or was given up on, past its time limit), since
    /// the run started.
    pub fn end(&self) -> Duration {
        Duration::from_nanos(self.end_nanos)
    }
}

/// A time since the run's start as whole nanoseconds (584 years fit).
pub(crate) fn nanos(since_start: Duration) -> u64 {
    u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX)
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
    /// Why the run stopped before every job had its chance, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
    /// The cleanup that failed, if one did.
    pub cleanup_failure: Option<CleanupFailure>,
    /// Every job, in the reference order.
    pub jobs: Vec<JobReport>,
}

impl Report {
    /// The version of the JSON format this crate writes. 2 added each
    /// job's `phases` and a failure's `kind`; version 1 reports still read.
    pub const VERSION: u32 = 2;

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

/// Nanoseconds as seconds in floating point, as `seconds` writes a duration.
mod nanos_as_seconds {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(nanos: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        super::seconds::serialize(&Duration::from_nanos(*nanos), serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        super::seconds::deserialize(deserializer).map(super::nanos)
    }
}

#[cfg(test)]
mod tests {
    use anyhow::{Context as _, anyhow};

    use super::Failure;

    /// A large run keeps one record per phase of every job, and one
    /// report per job, most of which did not fail.
    #[test]
    fn phase_records_and_job_reports_stay_small() {
        assert!(size_of::<super::PhaseRecord>() <= 32);
        assert!(size_of::<super::JobReport>() <= 128);
    }

    /// A record's times read back from JSON as they were written.
    #[test]
    fn phase_record_times_survive_json() {
        let json = r#"{"phase":"run","attempt":2,"start_secs":1.000002,"end_secs":3.5,"passed":false,"performed":true,"error":{"message":"no"}}"#;
        let record: super::PhaseRecord = serde_json::from_str(json).unwrap();
        assert_eq!(record.start(), std::time::Duration::from_micros(1_000_002));
        assert_eq!(record.end(), std::time::Duration::from_millis(3500));
        assert_eq!(serde_json::to_string(&record).unwrap(), json);
    }

    /// Every shape of error reads the same taken as borrowed.
    #[test]
    fn an_owned_error_makes_the_same_failure_as_a_borrowed_one() {
        let errors = || {
            vec![
                anyhow!("{} is not there", "j1"),
                anyhow!("a literal"),
                anyhow!(std::fmt::Error),
                Err::<(), _>(anyhow!("{} inner", 1))
                    .context("outer")
                    .unwrap_err(),
                Err::<(), _>(anyhow!("inner"))
                    .context(format!("outer {}", 2))
                    .unwrap_err(),
                Err::<(), _>(std::fmt::Error)
                    .context(String::from("owned context"))
                    .unwrap_err(),
            ]
        };
        for (borrowed, owned) in errors().into_iter().zip(errors()) {
            let expected = Failure::from_error(&borrowed);
            assert_eq!(Failure::from_owned_error(owned), expected, "{borrowed:#}");
        }
    }
}
