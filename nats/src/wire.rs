//! What travels between the coordinator and the workers, as serde types
//! (JSON on the wire), and the names of the subjects, streams, consumers
//! and buckets a suite uses.
//!
//! - A [`TryRequest`] goes on the work-queue stream, on the subject of the
//!   job's label ([`Names::try_subject`]); one pull consumer per label
//!   hands it to exactly one worker at a time, redelivering it after the
//!   ack wait if that worker goes silent.
//! - Each [`WorkerReport`] comes back on the outcome stream, on the run's
//!   own subject ([`Names::report_subject`]): a coordinator reads only its
//!   run's subject, so reports of another run never reach it.
//! - A cleanup is a request-reply to the worker that ran the job
//!   ([`Names::cleanup_subject`]): [`CleanupRequest`] in, [`WireOutcome`] out.

use std::time::Duration;

use dojobber::Job;
use dojobber::engine::{JobGraph, Plan};
use dojobber::{Failure, Outcome, Phase};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One try of one job (check → run → recheck), for one worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TryRequest {
    /// The coordinator's run this try belongs to.
    pub run: String,
    /// The job, by name (the worker finds it in its own graph).
    pub job: String,
    /// The job's number in the coordinator's plan; a worker whose plan
    /// numbers it differently is a different suite.
    pub job_id: u32,
    /// Which try, from 1.
    pub attempt: u32,
    /// Only check: a failed check ends the try.
    pub no_act: bool,
    /// The coordinator's [`plan_fingerprint`]; the worker refuses a try
    /// when its own differs.
    pub plan: String,
}

/// A worker's word about one try.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The run the try belongs to.
    pub run: String,
    /// The job's number in the plan.
    pub job_id: u32,
    /// Which try.
    pub attempt: u32,
    /// The worker that speaks.
    pub worker: String,
    /// What it says.
    pub news: News,
}

impl WorkerReport {
    /// An id that is the same when the same report is sent again, for
    /// JetStream's duplicate detection.
    pub fn message_id(&self) -> String {
        let what = match &self.news {
            News::Phase { phase, .. } => phase.as_str(),
            News::Refused { .. } => "refused",
            News::Lost { .. } => "lost",
            News::Stopped { .. } => "stopped",
        };
        let (run, job, attempt) = (&self.run, self.job_id, self.attempt);
        format!("{run}.{job}.{attempt}.{what}.{}", self.worker)
    }
}

/// What a worker says about a try.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum News {
    /// One phase ended.
    Phase {
        /// Which phase.
        phase: Phase,
        /// How it went.
        outcome: WireOutcome,
        /// How long it took on the worker.
        elapsed: Duration,
    },
    /// The worker did not run the try, and why (another suite version, a
    /// job it does not know, arguments it cannot read).
    Refused {
        /// Why, in words.
        reason: String,
    },
    /// The try came back to the queue while another worker holds its
    /// claim: that worker was silent for an ack wait (dead, or only slow).
    /// The coordinator then watches the claim, and ends the try only if
    /// it stays unchanged for an ack wait.
    Lost {
        /// The worker that had taken it.
        holder: String,
    },
    /// The worker performed no further phase of the try: the coordinator
    /// cut it (the machine abandoned it: a stop, a time limit), or its
    /// claim could not be renewed.
    Stopped {
        /// Why, in words.
        reason: String,
    },
}

/// How a phase went, on the wire: `None` passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOutcome {
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
}

impl From<Outcome> for WireOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Pass => WireOutcome { failure: None },
            Outcome::Fail(failure) => WireOutcome {
                failure: Some(failure),
            },
        }
    }
}

impl From<WireOutcome> for Outcome {
    fn from(outcome: WireOutcome) -> Self {
        match outcome.failure {
            None => Outcome::Pass,
            Some(failure) => Outcome::Fail(failure),
        }
    }
}

/// The cleanup of one job, for the worker that ran it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupRequest {
    /// The run.
    pub run: String,
    /// The job's number in the plan.
    pub job_id: u32,
    /// The try whose local storage the cleanup gets.
    pub attempt: u32,
}

/// The label of jobs that name none: any worker serves them.
pub const ANY_LABEL: &str = "_any";

/// Every name a suite uses on the server, derived from the suite's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    suite: String,
}

impl Names {
    /// The names of suite `suite`; fails when the name cannot be part of a
    /// subject, stream or bucket name.
    ///
    /// ```
    /// use dojobber_nats::Names;
    ///
    /// let names = Names::new("provision")?;
    /// assert_eq!(names.try_subject(Some("db")), "dojobber.provision.try.db");
    /// assert_eq!(names.try_subject(None), "dojobber.provision.try._any");
    /// assert!(Names::new("two words").is_err());
    /// # Ok::<(), dojobber_nats::BadName>(())
    /// ```
    pub fn new(suite: &str) -> Result<Names, BadName> {
        check_token("suite", suite)?;
        Ok(Names {
            suite: suite.to_owned(),
        })
    }

    /// The suite's name.
    pub fn suite(&self) -> &str {
        &self.suite
    }

    /// The work-queue stream of tries.
    pub fn tries_stream(&self) -> String {
        format!("DOJOBBER_TRIES_{}", self.suite)
    }

    /// The subject a try of a job with this label goes to.
    pub fn try_subject(&self, label: Option<&str>) -> String {
        format!("dojobber.{}.try.{}", self.suite, label.unwrap_or(ANY_LABEL))
    }

    /// The durable pull consumer that serves one label.
    pub fn consumer(&self, label: Option<&str>) -> String {
        format!("tries-{}", label.unwrap_or(ANY_LABEL))
    }

    /// The stream workers' reports go to.
    pub fn reports_stream(&self) -> String {
        format!("DOJOBBER_REPORTS_{}", self.suite)
    }

    /// The subject of one run's reports.
    pub fn report_subject(&self, run: &str) -> String {
        format!("dojobber.{}.report.{run}", self.suite)
    }

    /// Where a worker answers cleanup requests.
    pub fn cleanup_subject(&self, worker: &str) -> String {
        format!("dojobber.{}.cleanup.{worker}", self.suite)
    }

    /// The key-value bucket of the coordinator's lease.
    pub fn lease_bucket(&self) -> String {
        format!("dojobber_lease_{}", self.suite)
    }

    /// The key-value bucket of the runs' shared storage.
    pub fn shared_bucket(&self) -> String {
        format!("dojobber_shared_{}", self.suite)
    }

    /// The key-value bucket of the live workers: a key per name.
    pub fn workers_bucket(&self) -> String {
        format!("dojobber_workers_{}", self.suite)
    }

    /// The key-value bucket of the runs: arguments and claims.
    pub fn runs_bucket(&self) -> String {
        format!("dojobber_runs_{}", self.suite)
    }
}

/// Key of a run's arguments in the runs bucket.
pub(crate) fn args_key(run: &str) -> String {
    format!("{run}.args")
}

/// Key of the claim on a try in the runs bucket: the first to create it
/// (a worker taking the try, or the coordinator giving it up) owns the try.
pub(crate) fn claim_key(run: &str, job_id: u32, attempt: u32) -> String {
    format!("{run}.claim.{job_id}.{attempt}")
}

/// A name that cannot be used in subjects, streams or buckets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?} may hold only letters, digits, '-' and '_', and not be empty")]
pub struct BadName {
    /// What kind of name: `suite`, `label`, `worker`.
    pub what: &'static str,
    /// The name at fault.
    pub name: String,
}

/// Checks a suite, label or worker name: letters, digits, `-`, `_`.
pub fn check_token(what: &'static str, name: &str) -> Result<(), BadName> {
    let fine = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if fine {
        Ok(())
    } else {
        Err(BadName {
            what,
            name: name.to_owned(),
        })
    }
}

/// The identity of a suite's graph: per job, in plan order, its name,
/// kind, deps and `runs_on` label, hashed (SHA-256, hex). Two programs
/// agree on it only if they would run the same jobs the same way.
///
/// ```
/// use dojobber::engine::{Defaults, JobGraph};
/// use dojobber::{dep, Job, JobRef};
/// use dojobber_nats::plan_fingerprint;
///
/// struct Table;
/// impl Job for Table { fn runs_on(&self) -> Option<String> { Some("db".into()) } }
/// struct App;
/// impl Job for App { fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(Table)] } }
///
/// let graph = JobGraph::discover(dep(App), &(), Defaults::default())?;
/// let again = JobGraph::discover(dep(App), &(), Defaults::default())?;
/// let other = JobGraph::discover(dep(Table), &(), Defaults::default())?;
/// assert_eq!(plan_fingerprint(&graph), plan_fingerprint(&again));
/// assert_ne!(plan_fingerprint(&graph), plan_fingerprint(&other));
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn plan_fingerprint<A: 'static>(graph: &JobGraph<A>) -> String {
    let labels: Vec<_> = graph
        .plan()
        .ids()
        .map(|id| runs_on(&**graph.job(id)))
        .collect();
    fingerprint(graph.plan(), &labels)
}

/// [`plan_fingerprint`] of a plan whose jobs' labels are known, by id.
pub(crate) fn fingerprint(plan: &Plan, labels: &[Option<String>]) -> String {
    let jobs: Vec<_> = plan
        .ids()
        .map(|id| {
            (
                plan.name(id),
                plan.kind(id),
                plan.deps(id)
                    .iter()
                    .map(|dep| dep.index())
                    .collect::<Vec<_>>(),
                &labels[id.index()],
            )
        })
        .collect();
    let canonical = serde_json::to_vec(&jobs).expect("names and numbers serialise");
    let digest = Sha256::digest(&canonical);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A job's label; a panic in `runs_on` counts as no label (the job then
/// fails on whichever worker takes it, if its other code panics too).
pub(crate) fn runs_on<A: 'static>(job: &dyn Job<A>) -> Option<String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.runs_on()))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_through_json() {
        let report = WorkerReport {
            run: "r1".into(),
            job_id: 3,
            attempt: 2,
            worker: "w".into(),
            news: News::Phase {
                phase: Phase::Recheck,
                outcome: Outcome::Fail(Failure::new("cold")).into(),
                elapsed: Duration::from_millis(5),
            },
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains(r#""kind":"phase""#), "{json}");
        assert_eq!(serde_json::from_str::<WorkerReport>(&json).unwrap(), report);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_token("label", "db-eu_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">"] {
            let err = check_token("label", bad).unwrap_err();
            assert_eq!(err.name, bad);
        }
    }
}
