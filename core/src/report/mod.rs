//! The outcome of a run, per job, serialisable with serde.

use std::time::Duration;

use crate::phase::Phase;

mod table;

pub(crate) use table::{NewJob, ReportTable};

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

    /// The name before 0.2.0.
    #[deprecated(since = "0.2.0", note = "use `Status::is_success`")]
    pub fn succeeded(self) -> bool {
        self.is_success()
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
#[non_exhaustive]
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
    /// For a phase that timed out ([`FailureKind::TimedOut`]) and returned
    /// later: how long it really took, from its start. The message says
    /// it too, for people (`timed out after 1s (it returned after 1.5s)`).
    /// JSON: `returned_after_secs`, absent otherwise.
    ///
    /// ```
    /// use std::time::Duration;
    /// let json = r#"{"message":"timed out after 1s (it returned after 1.5s)",
    ///                "kind":"timed_out","returned_after_secs":1.5}"#;
    /// let failure: dojobber::Failure = serde_json::from_str(json)?;
    /// assert_eq!(failure.returned_after, Some(Duration::from_millis(1500)));
    /// let json = r#"{"message":"timed out after 1s","kind":"timed_out"}"#;
    /// let failure: dojobber::Failure = serde_json::from_str(json)?;
    /// assert_eq!(failure.returned_after, None);
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[serde(
        default,
        with = "optional_seconds",
        rename = "returned_after_secs",
        skip_serializing_if = "Option::is_none"
    )]
    pub returned_after: Option<Duration>,
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
#[non_exhaustive]
pub enum FailureKind {
    /// The job's code returned an error or panicked, or the job could not
    /// be set up.
    #[default]
    Error,
    /// The phase ran over its job's time limit (the message says which).
    TimedOut,
    /// The run stopped between two phases of the job's try.
    Interrupted(StopReason),
    /// No outcome came back: the phase was handed to another process (a
    /// dojobber-nats worker) that went silent, or none took it before it
    /// was given up. Its record says it was not `performed`: nobody
    /// reported running its code.
    Lost,
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
            returned_after: None,
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
            returned_after: None,
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
        Failure::new(format!("panicked: {}", crate::caught::panic_text(payload)))
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

/// What happened to one job: a view into its [`Report`], cheap to copy.
///
/// ```
/// use dojobber::{Context, Job, JobResult, Runner, Status, bail};
///
/// struct Remote;
/// impl Job for Remote {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("batteries dead") }
/// }
/// let report = Runner::new(Remote, ()).tries(1).output(std::io::sink()).run()?.into_report();
/// let remote = report.job("Remote").unwrap();
/// assert_eq!((remote.name(), remote.status(), remote.tries()), ("Remote", Status::Failed, 1));
/// assert_eq!(remote.last_error().unwrap().message, "batteries dead");
/// assert_eq!(remote.phases().len(), 4); // check, run, recheck, cleanup
/// assert_eq!(remote.deps().count(), 0);
/// # Ok::<(), dojobber::SetupError>(())
/// ```
#[derive(Clone, Copy)]
pub struct JobReport<'a> {
    table: &'a ReportTable,
    index: usize,
}

impl<'a> JobReport<'a> {
    /// The job's name.
    pub fn name(self) -> &'a str {
        self.table.name(self.index)
    }

    /// Where it ended up.
    pub fn status(self) -> Status {
        self.table.status(self.index)
    }

    /// Tries used (0 for a blocked job).
    pub fn tries(self) -> u32 {
        self.table.tries(self.index)
    }

    /// Why its last try failed, if it did.
    pub fn last_error(self) -> Option<&'a Failure> {
        self.table.last_error(self.index)
    }

    /// For a blocked job, its first dep that did not pass.
    pub fn blocked_by(self) -> Option<&'a str> {
        let by = self.table.blocked_by(self.index)?;
        Some(self.table.name(by as usize))
    }

    /// For a job blocked with no dep to blame, why: the run stopped.
    pub fn blocked_reason(self) -> Option<StopReason> {
        self.table.blocked_reason(self.index)
    }

    /// Time spent in its phases.
    pub fn time(self) -> Duration {
        self.table.time(self.index)
    }

    /// Its deps' names, in declaration order.
    pub fn deps(
        self,
    ) -> impl ExactSizeIterator<Item = &'a str> + DoubleEndedIterator + Clone + use<'a> {
        let table = self.table;
        let deps = table.deps(self.index).iter();
        deps.map(move |&dep| table.name(dep as usize))
    }

    /// Its phases in the order they finished, each failed one with its
    /// error: a run's error stays here when the recheck then fails too.
    pub fn phases(self) -> &'a [PhaseRecord] {
        self.table.phases(self.index)
    }

    /// The worker elsewhere that performed try `attempt` (from 1), when a
    /// driver across hosts ran the job (dojobber-nats: the worker's name);
    /// `None` in a local run, and for a try no worker took.
    ///
    /// ```
    /// use dojobber::{JobRecord, Report, Status};
    /// let web = JobRecord {
    ///     tries: 2,
    ///     performed_by: vec![Some("web1".into()), Some("web2".into())],
    ///     ..JobRecord::new("Web", Status::Fixed)
    /// };
    /// let report = Report::from_jobs([web])?;
    /// let web = report.job("Web").unwrap();
    /// assert_eq!((web.performed_by(1), web.performed_by(2)), (Some("web1"), Some("web2")));
    /// assert_eq!(web.performed_by(3), None);
    /// # Ok::<(), dojobber::InvalidReport>(())
    /// ```
    pub fn performed_by(self, attempt: u32) -> Option<&'a str> {
        let at = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.performers().get(at)?.as_deref()
    }

    /// The worker elsewhere that performed each try, try 1 first (`None`
    /// for a try no worker took); empty in a local run. See
    /// [`performed_by`](Self::performed_by).
    ///
    /// ```
    /// use dojobber::{Job, Runner};
    /// struct Here;
    /// impl Job for Here {
    ///     fn check(&self, _: &mut dojobber::Context<'_, ()>) -> dojobber::JobResult { Ok(()) }
    /// }
    /// let report = Runner::new(Here, ()).output(std::io::sink()).run()?.into_report();
    /// assert!(report.job("Here").unwrap().performers().is_empty());
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn performers(self) -> &'a [Option<String>] {
        self.table.performed_by(self.index)
    }

    /// The job's outcome as an owned [`JobRecord`], to change or to build
    /// another report from.
    ///
    /// ```
    /// use dojobber::{JobRecord, Report, Status};
    ///
    /// let report = Report::from_jobs([JobRecord::new("Kettle", Status::Failed)])?;
    /// let fixed = report.jobs().map(|job| JobRecord { status: Status::Fixed, ..job.to_record() });
    /// assert!(Report::from_jobs(fixed)?.is_success());
    /// # Ok::<(), dojobber::InvalidReport>(())
    /// ```
    pub fn to_record(self) -> JobRecord {
        JobRecord {
            name: self.name().to_owned(),
            status: self.status(),
            tries: self.tries(),
            last_error: self.last_error().cloned(),
            blocked_by: self.blocked_by().map(str::to_owned),
            blocked_reason: self.blocked_reason(),
            time: self.time(),
            deps: self.deps().map(str::to_owned).collect(),
            phases: self.phases().to_vec(),
            performed_by: self.performers().to_vec(),
        }
    }

    /// Its place in the report: jobs come in the reference order, so this
    /// is its [`JobId`](crate::engine::JobId)'s index in the plan that ran.
    ///
    /// ```
    /// use dojobber::{JobRecord, Report, Status};
    /// let report = Report::from_jobs([
    ///     JobRecord::new("Kettle", Status::Fixed),
    ///     JobRecord::new("Tea", Status::Fixed),
    /// ])?;
    /// let tea = report.job("Tea").unwrap();
    /// assert_eq!(tea.index(), 1);
    /// assert_eq!(report.job_at(tea.index()).unwrap().name(), "Tea");
    /// # Ok::<(), dojobber::InvalidReport>(())
    /// ```
    pub fn index(self) -> usize {
        self.index
    }

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
    /// assert_eq!(repo.last_error().unwrap().message, "no repo");
    /// let run = repo.run_error().unwrap();
    /// assert_eq!(format!("{run:#}"), "running git init: No such file or directory");
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn run_error(self) -> Option<&'a Failure> {
        let phases = self.phases();
        let last_try = phases.iter().map(|phase| phase.attempt).max()?;
        phases
            .iter()
            .filter(|phase| phase.attempt == last_try && phase.phase == Phase::Run)
            .find_map(|phase| phase.error.as_deref())
    }
}

impl std::fmt::Debug for JobReport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let deps: Vec<&str> = self.deps().collect();
        f.debug_struct("JobReport")
            .field("name", &self.name())
            .field("status", &self.status())
            .field("tries", &self.tries())
            .field("last_error", &self.last_error())
            .field("blocked_by", &self.blocked_by())
            .field("blocked_reason", &self.blocked_reason())
            .field("time", &self.time())
            .field("deps", &deps)
            .field("phases", &self.phases())
            .finish()
    }
}

/// One job's outcome, owned: what a report is made of when built by hand
/// ([`Report::from_jobs`]) and what each job of its JSON reads as.
///
/// ```
/// use dojobber::{JobRecord, Report, Status};
///
/// let job = |name: &str, deps: &[&str]| JobRecord {
///     deps: deps.iter().map(|&dep| dep.to_owned()).collect(),
///     ..JobRecord::new(name, Status::Passed)
/// };
/// let report = Report::from_jobs([job("Kettle", &[]), job("Tea", &["Kettle"])])?;
/// assert_eq!(report.job("Tea").unwrap().deps().collect::<Vec<_>>(), ["Kettle"]);
/// # Ok::<(), dojobber::InvalidReport>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRecord {
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
    /// For a job blocked with no dep to blame, why: the run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_reason: Option<StopReason>,
    /// Time spent in its phases.
    #[serde(with = "seconds", rename = "time_secs")]
    pub time: Duration,
    /// Its deps' names, in declaration order.
    pub deps: Vec<String>,
    /// Its phases in the order they finished.
    #[serde(default)]
    pub phases: Vec<PhaseRecord>,
    /// The worker elsewhere that performed each try, try 1 first (`None`
    /// for a try no worker took); empty in a local run, and absent from
    /// its JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performed_by: Vec<Option<String>>,
}

impl JobRecord {
    /// A job with this name and status, no tries, deps or phases.
    ///
    /// ```
    /// use dojobber::{JobRecord, Status};
    /// let kettle = JobRecord::new("Kettle", Status::Passed);
    /// assert_eq!((kettle.tries, kettle.deps.len()), (0, 0));
    /// ```
    pub fn new(name: impl Into<String>, status: Status) -> JobRecord {
        JobRecord {
            name: name.into(),
            status,
            tries: 0,
            last_error: None,
            blocked_by: None,
            blocked_reason: None,
            time: Duration::ZERO,
            deps: Vec::new(),
            phases: Vec::new(),
            performed_by: Vec::new(),
        }
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
    /// check and recheck are decided by the machine; a phase whose outcome
    /// was lost ([`FailureKind::Lost`]) was performed by nobody the run knows.
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

/// Why a time read into a report is refused: it holds 584 years at most.
fn too_long(time: Duration) -> String {
    format!(
        "a time of {} s is past the 584 years a report holds",
        time.as_secs()
    )
}

/// Why jobs cannot make a [`Report`]: two share a name, a time is past
/// the 584 years a report holds, or its lists would pass 2³² items.
///
/// ```
/// use dojobber::{JobRecord, Report, Status};
/// let twice = [JobRecord::new("Kettle", Status::Fixed), JobRecord::new("Kettle", Status::Passed)];
/// let error = Report::from_jobs(twice).unwrap_err();
/// assert_eq!(error.to_string(), "jobs 0 and 1 are both named \"Kettle\"");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReport(pub(crate) String);

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
/// The jobs are stored run-wide (a million-job report costs a few hundred
/// bytes per job) and read through [`jobs`](Self::jobs) and
/// [`job`](Self::job), each a [`JobReport`].
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
/// assert_eq!(report.job("Done").unwrap().status(), Status::Passed);
/// assert_eq!(report.jobs().map(|job| job.name()).collect::<Vec<_>>(), ["Done"]);
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
    /// Time from the run's start to its last phase. Like the phases'
    /// times, kept in nanoseconds: it stops at about 584 years.
    #[serde(with = "seconds", rename = "elapsed_secs")]
    pub elapsed: Duration,
    /// Why the run stopped before every job had its chance, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
    /// The cleanup that failed, if one did.
    pub cleanup_failure: Option<CleanupFailure>,
    /// Every job, in the reference order.
    jobs: ReportTable,
}

impl Report {
    /// The version of the JSON format this crate writes. 2 added each
    /// job's `phases` and a failure's `kind`; version 1 reports still read.
    pub const VERSION: u32 = 2;

    /// A report of `jobs`, the run's settings and outcome given.
    pub(crate) fn new(
        no_act: bool,
        rounds: u32,
        elapsed: Duration,
        stopped: Option<StopReason>,
        cleanup_failure: Option<CleanupFailure>,
        jobs: ReportTable,
    ) -> Report {
        Report {
            version: Report::VERSION,
            no_act,
            rounds,
            elapsed,
            stopped,
            cleanup_failure,
            jobs,
        }
    }

    /// A report of `jobs` (deps before dependents, as a run reports them),
    /// made by hand: a finished, not no-act run of no rounds that took no
    /// time; set the other fields as needed. A dep or blocker that names
    /// no job of the list is kept as a name. Fails when two jobs share a
    /// name, or a time is past 584 years ([`InvalidReport`]).
    ///
    /// ```
    /// use dojobber::{JobRecord, Report, Status};
    ///
    /// let mut report = Report::from_jobs([JobRecord::new("Kettle", Status::Fixed)])?;
    /// report.rounds = 1;
    /// assert!(report.is_success());
    /// # Ok::<(), dojobber::InvalidReport>(())
    /// ```
    pub fn from_jobs(jobs: impl IntoIterator<Item = JobRecord>) -> Result<Report, InvalidReport> {
        let jobs = ReportTable::from_records(jobs.into_iter().collect())?;
        Ok(Report::new(false, 0, Duration::ZERO, None, None, jobs))
    }

    /// Every job, in the reference order (deps before the jobs that need
    /// them).
    ///
    /// ```
    /// use dojobber::{JobRecord, Report, Status};
    /// let report = Report::from_jobs([
    ///     JobRecord::new("Kettle", Status::Fixed),
    ///     JobRecord::new("Tea", Status::Blocked),
    /// ])?;
    /// let fixed: Vec<&str> = report.jobs().filter(|job| job.status() == Status::Fixed).map(|job| job.name()).collect();
    /// assert_eq!(fixed, ["Kettle"]);
    /// # Ok::<(), dojobber::InvalidReport>(())
    /// ```
    pub fn jobs(
        &self,
    ) -> impl ExactSizeIterator<Item = JobReport<'_>> + DoubleEndedIterator + Clone {
        self.jobs.views()
    }

    /// The job called `name`. It looks through the jobs (O(jobs)): to
    /// read many, go through [`jobs`](Self::jobs) once.
    pub fn job(&self, name: &str) -> Option<JobReport<'_>> {
        self.jobs().find(|job| job.name() == name)
    }

    /// The job at `index` in the reference order: the job whose
    /// [`JobId`](crate::engine::JobId) has this index in the plan that ran;
    /// `None` past the last job. See [`JobReport::index`].
    pub fn job_at(&self, index: usize) -> Option<JobReport<'_>> {
        (index < self.jobs.len()).then(|| self.jobs.view(index))
    }

    /// Whether every job passed or was fixed.
    pub fn is_success(&self) -> bool {
        self.jobs().all(|job| job.status().is_success())
    }

    /// Whether at least one job passed or was fixed: the run made progress,
    /// or found things already done.
    pub fn is_partial_success(&self) -> bool {
        self.jobs().any(|job| job.status().is_success())
    }

    /// The name before 0.2.0.
    #[deprecated(since = "0.2.0", note = "use `Report::is_success`")]
    pub fn success(&self) -> bool {
        self.is_success()
    }

    /// The name before 0.2.0.
    #[deprecated(since = "0.2.0", note = "use `Report::is_partial_success`")]
    pub fn partial_success(&self) -> bool {
        self.is_partial_success()
    }

    /// The names of the jobs with this status, in the reference order.
    pub fn names_with(&self, status: Status) -> Vec<&str> {
        self.jobs()
            .filter(|job| job.status() == status)
            .map(JobReport::name)
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

/// An optional duration as `seconds` writes one (absent is `None`).
mod optional_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::seconds::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(deserializer)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
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
        let time = super::seconds::deserialize(deserializer)?;
        u64::try_from(time.as_nanos()).map_err(|_| serde::de::Error::custom(super::too_long(time)))
    }
}

/// Reports are read on other threads than the run's.
const _: () = {
    const fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Report>();
    shared_between_threads::<JobReport<'static>>();
};

#[cfg(test)]
mod tests {
    use anyhow::{Context as _, anyhow};

    use super::Failure;

    /// A large run keeps one record per phase of every job, most of which
    /// did not fail.
    #[test]
    fn phase_records_stay_small() {
        assert!(size_of::<super::PhaseRecord>() <= 32);
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
