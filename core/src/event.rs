//! What the machine tells observers, and what drivers tell the machine.

use std::time::Duration;

use crate::caught::drop_caught;
use crate::phase::Phase;
use crate::plan::JobId;
use crate::report::{Failure, Status};

/// One phase of one job for the driver to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Task {
    /// Whose user code to call.
    pub job: JobId,
    /// Which of its methods.
    pub phase: Phase,
    /// The try this phase belongs to, from 1. A new number means the job's
    /// local storage starts empty. Cleanup carries the last try's number.
    pub attempt: u32,
}

/// How a phase went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok(())`.
    Pass,
    /// An error, or a panic.
    Fail(Failure),
}

impl Outcome {
    /// The outcome of a user call: its result, or the panic it raised.
    ///
    /// ```
    /// use dojobber::Outcome;
    /// assert_eq!(Outcome::from_call(Ok(Ok(()))), Outcome::Pass);
    /// ```
    pub fn from_call(call: std::thread::Result<anyhow::Result<()>>) -> Outcome {
        match call {
            Ok(Ok(())) => Outcome::Pass,
            Ok(Err(error)) => Outcome::Fail(Failure::from_owned_error(error)),
            Err(payload) => {
                let failure = Failure::from_panic(&*payload);
                drop_caught(payload);
                Outcome::Fail(failure)
            }
        }
    }

    /// Whether the phase passed.
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }

    /// The name before 0.2.0.
    #[deprecated(since = "0.2.0", note = "use `Outcome::is_pass`")]
    pub fn passed(&self) -> bool {
        self.is_pass()
    }
}

/// Who performed a phase, as its executor says with the outcome
/// ([`Machine::handle_outcome_by`](crate::engine::Machine::handle_outcome_by)).
///
/// ```
/// use dojobber::engine::Performer;
/// assert_eq!(Performer::default(), Performer::Here);
/// assert_eq!(Performer::Worker("web1".into()).worker(), Some("web1"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Performer {
    /// This process, calling the job's own code: every local driver.
    #[default]
    Here,
    /// A worker elsewhere, by name (dojobber-nats: the worker's name); the
    /// report keeps it for each try.
    Worker(String),
    /// Nobody: there was nothing to perform (dojobber-nats: the cleanup of
    /// a job whose run no worker began). Its record says it was not
    /// `performed`.
    Nobody,
}

impl Performer {
    /// The worker's name, for one elsewhere.
    pub fn worker(&self) -> Option<&str> {
        match self {
            Performer::Worker(name) => Some(name),
            Performer::Here | Performer::Nobody => None,
        }
    }
}

/// One transition of the machine, for observers: printers, progress
/// displays, trace recorders. Events name jobs by id; the [`Plan`](crate::engine::Plan)
/// has their names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A round of tries begins.
    RoundStarted {
        /// From 1.
        round: u32,
    },
    /// A job's try begins; its local storage starts empty.
    TryStarted {
        /// The job.
        job: JobId,
        /// Which try, from 1.
        attempt: u32,
    },
    /// A phase was handed to the driver.
    PhaseStarted {
        /// The phase.
        task: Task,
        /// When.
        at: Duration,
    },
    /// A phase is over.
    PhaseFinished {
        /// The phase.
        task: Task,
        /// How it went.
        outcome: Outcome,
        /// When.
        at: Duration,
        /// `false` when the machine decided it without user code: a dummy
        /// job's check, a run-only job's check and recheck; and when its
        /// outcome was lost ([`FailureKind::Lost`](crate::FailureKind::Lost)).
        performed: bool,
    },
    /// A job has its final status: passed, fixed, or failed with no tries left.
    JobFinished {
        /// The job.
        job: JobId,
        /// Its status.
        status: Status,
        /// Tries used.
        tries: u32,
    },
    /// A job will not be tried: one of its deps did not pass, or the run
    /// stopped before it could start.
    JobBlocked {
        /// The job.
        job: JobId,
        /// Its first dep (in declaration order) that failed or is blocked;
        /// `None` when the run stopped (see [`Report::stopped`](crate::Report::stopped)).
        by: Option<JobId>,
    },
    /// Every job has its final status; cleanups may follow.
    RunFinished {
        /// When.
        at: Duration,
    },
    /// The cleanups are over (or stopped at a failure).
    CleanupFinished,
    /// The run has nothing left to do but wait for this phase, which the
    /// machine abandoned at its time limit (its try has failed) and which
    /// has not returned: a thread cannot be stopped. Made once per such
    /// phase, even when the main events are muted; the run goes on when
    /// it returns.
    WaitingForAbandoned {
        /// The phase.
        task: Task,
        /// When it started.
        started: Duration,
    },
    /// What a driver must tell the user, whatever the program's logging:
    /// dojobber-nats's coordinator says so when a worker went silent with
    /// a try, no worker serves a label, or a worker refused a try. Not a
    /// transition of the machine: printers show it at every verbosity.
    Warning {
        /// The job it is about, if one.
        job: Option<JobId>,
        /// What happened, in words.
        message: String,
    },
}

/// An [`Event`] with its jobs named, in a stable form for machines to read:
/// one JSON object per event, tagged by `"event"`.
///
/// ```
/// use dojobber::observe::Event;
/// use dojobber::engine::{Defaults, JobSpec, Plan};
/// let (plan, _) = Plan::new(vec![JobSpec::new("Food")], 0, Defaults::default())?;
/// let event = Event::JobBlocked { job: plan.root(), by: Some(plan.root()) };
/// let json = serde_json::to_string(&event.record(&plan))?;
/// assert_eq!(json, r#"{"event":"job_blocked","job":"Food","by":"Food"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventRecord<'a> {
    /// See [`Event::RoundStarted`].
    RoundStarted {
        /// From 1.
        round: u32,
    },
    /// See [`Event::TryStarted`].
    TryStarted {
        /// The job's name.
        job: &'a str,
        /// From 1.
        attempt: u32,
    },
    /// See [`Event::PhaseStarted`].
    PhaseStarted {
        /// The job's name.
        job: &'a str,
        /// The phase.
        phase: crate::phase::Phase,
        /// The try.
        attempt: u32,
        /// Seconds since the run started.
        at_secs: f64,
    },
    /// See [`Event::PhaseFinished`].
    PhaseFinished {
        /// The job's name.
        job: &'a str,
        /// The phase.
        phase: crate::phase::Phase,
        /// The try.
        attempt: u32,
        /// Seconds since the run started.
        at_secs: f64,
        /// `pass` or `fail`.
        outcome: &'static str,
        /// Why it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a Failure>,
        /// Whether user code was called.
        performed: bool,
    },
    /// See [`Event::JobFinished`].
    JobFinished {
        /// The job's name.
        job: &'a str,
        /// Its final status.
        status: Status,
        /// Tries used.
        tries: u32,
    },
    /// See [`Event::JobBlocked`].
    JobBlocked {
        /// The job's name.
        job: &'a str,
        /// The dep that blocked it, if one did.
        by: Option<&'a str>,
    },
    /// See [`Event::RunFinished`].
    RunFinished {
        /// Seconds since the run started.
        at_secs: f64,
    },
    /// See [`Event::CleanupFinished`].
    CleanupFinished,
    /// See [`Event::WaitingForAbandoned`].
    WaitingForAbandoned {
        /// The job's name.
        job: &'a str,
        /// The phase.
        phase: crate::phase::Phase,
        /// The try.
        attempt: u32,
        /// Seconds since the run started.
        started_secs: f64,
    },
    /// See [`Event::Warning`].
    Warning {
        /// The job's name, if it is about one.
        #[serde(skip_serializing_if = "Option::is_none")]
        job: Option<&'a str>,
        /// What happened.
        message: &'a str,
    },
}

impl Event {
    /// This event with its jobs named by `plan`, ready to serialise.
    pub fn record<'a>(&'a self, plan: &'a crate::plan::Plan) -> EventRecord<'a> {
        match self {
            Event::RoundStarted { round } => EventRecord::RoundStarted { round: *round },
            Event::TryStarted { job, attempt } => EventRecord::TryStarted {
                job: plan.name(*job),
                attempt: *attempt,
            },
            Event::PhaseStarted { task, at } => EventRecord::PhaseStarted {
                job: plan.name(task.job),
                phase: task.phase,
                attempt: task.attempt,
                at_secs: at.as_secs_f64(),
            },
            Event::PhaseFinished {
                task,
                outcome,
                at,
                performed,
            } => EventRecord::PhaseFinished {
                job: plan.name(task.job),
                phase: task.phase,
                attempt: task.attempt,
                at_secs: at.as_secs_f64(),
                outcome: if outcome.is_pass() { "pass" } else { "fail" },
                error: match outcome {
                    Outcome::Pass => None,
                    Outcome::Fail(failure) => Some(failure),
                },
                performed: *performed,
            },
            Event::JobFinished { job, status, tries } => EventRecord::JobFinished {
                job: plan.name(*job),
                status: *status,
                tries: *tries,
            },
            Event::JobBlocked { job, by } => EventRecord::JobBlocked {
                job: plan.name(*job),
                by: by.map(|dep| plan.name(dep)),
            },
            Event::RunFinished { at } => EventRecord::RunFinished {
                at_secs: at.as_secs_f64(),
            },
            Event::CleanupFinished => EventRecord::CleanupFinished,
            Event::WaitingForAbandoned { task, started } => EventRecord::WaitingForAbandoned {
                job: plan.name(task.job),
                phase: task.phase,
                attempt: task.attempt,
                started_secs: started.as_secs_f64(),
            },
            Event::Warning { job, message } => EventRecord::Warning {
                job: job.map(|job| plan.name(job)),
                message,
            },
        }
    }
}
