//! Mock jobs with scripted behaviour, and suites of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber::{Context, Job, JobKind, JobRef, JobResult, Phase, SetupError};

/// What one phase of a mock job does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    /// Returns `Ok(())`.
    Pass,
    /// Returns an error with this message.
    Fail(String),
    /// Panics with this message.
    Panic(String),
}

impl Act {
    /// A failure with `message`.
    pub fn fail(message: impl Into<String>) -> Act {
        Act::Fail(message.into())
    }
}

/// How a mock decides a phase, given what happened to it so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The same act every time.
    Always(Act),
    /// One act per try (the first for try 1, ...); the last repeats.
    PerTry(Vec<Act>),
    /// Fails with the message until the job's run has executed `runs`
    /// times (over all tries), then passes.
    UntilRuns {
        /// Runs needed before passing.
        runs: u32,
        /// The failure message before that.
        message: String,
    },
}

impl Rule {
    fn decide(&self, attempt: u32, runs_so_far: u32) -> Act {
        match self {
            Rule::Always(act) => act.clone(),
            Rule::PerTry(acts) => {
                let index = (attempt.max(1) as usize - 1).min(acts.len().saturating_sub(1));
                acts.get(index).cloned().unwrap_or(Act::Pass)
            }
            Rule::UntilRuns { runs, message } if runs_so_far < *runs => Act::Fail(message.clone()),
            Rule::UntilRuns { .. } => Act::Pass,
        }
    }
}

/// One recorded call of a mock job's code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The job's name.
    pub job: String,
    /// Which method.
    pub phase: Phase,
    /// The try it belonged to.
    pub attempt: u32,
    /// What the mock did.
    pub act: Act,
}

/// A job whose behaviour is scripted, for tests of the engine and of
/// suites. Build with [`Mock::new`] and the builder methods; by default it
/// has no deps, is normal, and its check passes.
///
/// ```
/// use dojobber_testkit::{Act, Mock};
///
/// // Fails its check until its run has executed twice.
/// let popcorn = Mock::new("Popcorn").deps(["PopcornBowl"]).tries(5)
///     .check_fails_until_runs(2, "Still popping...");
/// let bowl = Mock::new("PopcornBowl").check(Act::Pass);
/// # let _ = (popcorn, bowl);
/// ```
#[derive(Clone, Debug)]
pub struct Mock {
    name: String,
    deps: Vec<String>,
    kind: JobKind,
    tries: Option<u32>,
    retry_delay: Option<Duration>,
    check: Rule,
    recheck: Option<Rule>,
    run: Rule,
    cleanup: Rule,
    takes: Duration,
    /// Per phase (check, run, recheck, cleanup), a time that overrides `takes`.
    phase_takes: [Option<Duration>; 4],
    group: Option<String>,
    time_limit: Option<Duration>,
}

impl Mock {
    /// A normal job whose check passes.
    pub fn new(name: impl Into<String>) -> Mock {
        Mock {
            name: name.into(),
            deps: Vec::new(),
            kind: JobKind::Normal,
            tries: None,
            retry_delay: None,
            check: Rule::Always(Act::Pass),
            recheck: None,
            run: Rule::Always(Act::Pass),
            cleanup: Rule::Always(Act::Pass),
            takes: Duration::ZERO,
            phase_takes: [None; 4],
            group: None,
            time_limit: None,
        }
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its deps, by name, in declaration order.
    pub fn deps<S: Into<String>>(mut self, deps: impl IntoIterator<Item = S>) -> Mock {
        self.deps = deps.into_iter().map(Into::into).collect();
        self
    }

    /// Its kind.
    pub fn kind(mut self, kind: JobKind) -> Mock {
        self.kind = kind;
        self
    }

    /// Its own tries.
    pub fn tries(mut self, tries: u32) -> Mock {
        self.tries = Some(tries);
        self
    }

    /// Its own retry delay.
    pub fn retry_delay(mut self, delay: Duration) -> Mock {
        self.retry_delay = Some(delay);
        self
    }

    /// What every check does (and every recheck, unless set apart).
    pub fn check(mut self, act: Act) -> Mock {
        self.check = Rule::Always(act);
        self
    }

    /// What the check does, by rule.
    pub fn check_rule(mut self, rule: Rule) -> Mock {
        self.check = rule;
        self
    }

    /// What the recheck does, when it differs from the check.
    pub fn recheck_rule(mut self, rule: Rule) -> Mock {
        self.recheck = Some(rule);
        self
    }

    /// Check and recheck fail with `message` until run has executed `runs` times.
    pub fn check_fails_until_runs(self, runs: u32, message: impl Into<String>) -> Mock {
        self.check_rule(Rule::UntilRuns {
            runs,
            message: message.into(),
        })
    }

    /// What every run does.
    pub fn run(mut self, act: Act) -> Mock {
        self.run = Rule::Always(act);
        self
    }

    /// What the run does, by rule.
    pub fn run_rule(mut self, rule: Rule) -> Mock {
        self.run = rule;
        self
    }

    /// What the cleanup does.
    pub fn cleanup(mut self, act: Act) -> Mock {
        self.cleanup = Rule::Always(act);
        self
    }

    /// Simulated time each phase takes (see [`simulate`](crate::simulate)).
    pub fn takes(mut self, duration: Duration) -> Mock {
        self.takes = duration;
        self
    }

    /// Simulated time one phase takes, overriding [`takes`](Self::takes)
    /// for that phase.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dojobber::Phase;
    /// use dojobber_testkit::Mock;
    ///
    /// let slow_run = Mock::new("Dishwasher")
    ///     .takes(Duration::from_secs(1))
    ///     .takes_for(Phase::Run, Duration::from_secs(90));
    /// assert_eq!(slow_run.duration_of(Phase::Run), Duration::from_secs(90));
    /// assert_eq!(slow_run.duration_of(Phase::Check), Duration::from_secs(1));
    /// ```
    pub fn takes_for(mut self, phase: Phase, duration: Duration) -> Mock {
        self.phase_takes[phase_index(phase)] = Some(duration);
        self
    }

    /// Simulated time each phase takes, as set by [`takes`](Self::takes).
    pub fn duration(&self) -> Duration {
        self.takes
    }

    /// Simulated time `phase` takes.
    pub fn duration_of(&self, phase: Phase) -> Duration {
        self.phase_takes[phase_index(phase)].unwrap_or(self.takes)
    }

    /// Its deps, by name, in declaration order.
    pub fn dep_names(&self) -> &[String] {
        &self.deps
    }

    /// Its concurrency group: with a limit on the group (see
    /// [`SimConfig::limit_group`](crate::SimConfig::limit_group)), at most
    /// that many of its jobs are in a try at once.
    pub fn group(mut self, group: impl Into<String>) -> Mock {
        self.group = Some(group.into());
        self
    }

    /// The longest (simulated) time one of its phases may take; a phase
    /// over it fails its try with "timed out after ...".
    pub fn time_limit(mut self, limit: Duration) -> Mock {
        self.time_limit = Some(limit);
        self
    }

    /// Its concurrency group, if it has one.
    pub fn group_name(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// Its time limit per phase, if it has one.
    pub fn phase_time_limit(&self) -> Option<Duration> {
        self.time_limit
    }

    /// Its kind.
    pub fn job_kind(&self) -> JobKind {
        self.kind
    }

    /// Its own tries, if it has them.
    pub fn own_tries(&self) -> Option<u32> {
        self.tries
    }

    /// Its own retry delay, if it has one.
    pub fn own_retry_delay(&self) -> Option<Duration> {
        self.retry_delay
    }

    /// The same mock under another name (the deps stay).
    pub fn renamed(mut self, name: impl Into<String>) -> Mock {
        self.name = name.into();
        self
    }

    /// What `phase` of try `attempt` does after `runs_so_far` runs.
    pub fn decide(&self, phase: Phase, attempt: u32, runs_so_far: u32) -> Act {
        let rule = match phase {
            Phase::Check => &self.check,
            Phase::Recheck => self.recheck.as_ref().unwrap_or(&self.check),
            Phase::Run => &self.run,
            Phase::Cleanup => &self.cleanup,
        };
        rule.decide(attempt, runs_so_far)
    }
}

fn phase_index(phase: Phase) -> usize {
    match phase {
        Phase::Check => 0,
        Phase::Run => 1,
        Phase::Recheck => 2,
        Phase::Cleanup => 3,
    }
}

/// Every call made to a suite's mocks, in order, shared by its job values.
#[derive(Clone, Debug, Default)]
pub struct CallLog(Arc<Mutex<Vec<Call>>>);

impl CallLog {
    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times `job`'s run has executed.
    pub fn runs_of(&self, job: &str) -> u32 {
        let calls = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = calls
            .iter()
            .filter(|call| call.job == job && call.phase == Phase::Run)
            .count();
        u32::try_from(runs).expect("fewer than u32::MAX runs")
    }

    /// Records a call and returns what it does.
    fn record(&self, mock: &Mock, phase: Phase, attempt: u32) -> Act {
        let mut calls = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let runs = calls
            .iter()
            .filter(|call| call.job == mock.name && call.phase == Phase::Run)
            .count();
        let act = mock.decide(phase, attempt, u32::try_from(runs).unwrap_or(u32::MAX));
        calls.push(Call {
            job: mock.name.clone(),
            phase,
            attempt,
            act: act.clone(),
        });
        act
    }
}

/// A set of mock jobs, the first of which is the root.
///
/// It gives a [`Plan`] for driving the machine directly (see
/// [`simulate`](crate::simulate)) and real job values for the drivers
/// ([`Suite::root_job`]), sharing one [`CallLog`].
#[derive(Clone, Debug)]
pub struct Suite {
    mocks: Arc<[Mock]>,
    /// Mock index by name.
    index: Arc<HashMap<String, usize>>,
    log: CallLog,
}

/// A suite named a dep that none of its mocks has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mock {job:?} depends on {dep:?}, which the suite does not have")]
pub struct UnknownDep {
    /// The mock with the bad dep.
    pub job: String,
    /// The name that matches no mock.
    pub dep: String,
}

impl Suite {
    /// A suite of `mocks`; the first is the root.
    ///
    /// # Panics
    /// If `mocks` is empty: a suite needs a root.
    pub fn new(mocks: impl IntoIterator<Item = Mock>) -> Suite {
        let mocks: Arc<[Mock]> = mocks.into_iter().collect();
        assert!(!mocks.is_empty(), "a suite needs at least its root");
        let index = mocks
            .iter()
            .enumerate()
            .rev() // the first mock of a name wins
            .map(|(i, mock)| (mock.name.clone(), i))
            .collect();
        Suite {
            mocks,
            index: Arc::new(index),
            log: CallLog::default(),
        }
    }

    /// The mocks, root first.
    pub fn mocks(&self) -> &[Mock] {
        &self.mocks
    }

    /// The mock called `name`.
    pub fn mock(&self, name: &str) -> Option<&Mock> {
        self.index.get(name).map(|&i| &self.mocks[i])
    }

    /// The same mocks with a new, empty [`CallLog`]: a suite as if it had
    /// never run. (Clones share one log; the log is what
    /// [`Mock::check_fails_until_runs`] counts runs in, for real runs.)
    pub fn fresh(&self) -> Suite {
        Suite {
            mocks: Arc::clone(&self.mocks),
            index: Arc::clone(&self.index),
            log: CallLog::default(),
        }
    }

    /// Every call the suite's job values received.
    pub fn log(&self) -> &CallLog {
        &self.log
    }

    /// The specs of the suite's jobs, root first, for [`Plan::new`].
    pub fn specs(&self) -> Result<Vec<JobSpec>, UnknownDep> {
        self.mocks
            .iter()
            .map(|mock| {
                let deps = mock
                    .deps
                    .iter()
                    .map(|dep| {
                        self.index.get(dep).copied().ok_or_else(|| UnknownDep {
                            job: mock.name.clone(),
                            dep: dep.clone(),
                        })
                    })
                    .collect::<Result<_, _>>()?;
                Ok(JobSpec {
                    kind: mock.kind,
                    tries: mock.tries,
                    retry_delay: mock.retry_delay,
                    deps,
                    group: mock.group.clone(),
                    time_limit: mock.time_limit,
                    ..JobSpec::new(mock.name.clone())
                })
            })
            .collect()
    }

    /// The suite's plan, as the machine would get it.
    ///
    /// # Panics
    /// If a mock names a dep the suite lacks, or the plan is invalid: test
    /// suites are written by hand, and a broken one is a bug in the test.
    pub fn plan(&self, defaults: Defaults) -> Plan {
        self.try_plan(defaults).expect("the suite is valid")
    }

    /// The suite's plan, or why it cannot be made.
    pub fn try_plan(&self, defaults: Defaults) -> Result<Plan, SuiteError> {
        let (plan, _) = Plan::new(self.specs()?, 0, defaults)?;
        Ok(plan)
    }

    /// The root as a real job value, for [`dojobber::Runner`]; its deps
    /// are the suite's other mocks, and every call lands in [`Suite::log`].
    pub fn root_job(&self) -> JobRef<()> {
        self.job_ref(0)
    }

    fn job_ref(&self, index: usize) -> JobRef<()> {
        dojobber::dep(MockJob {
            suite: self.clone(),
            index,
        })
    }
}

/// Why a suite has no plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SuiteError {
    /// A dep names no mock.
    #[error(transparent)]
    UnknownDep(#[from] UnknownDep),
    /// The plan is invalid: a cycle, zero tries.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// A mock as a real [`Job`].
struct MockJob {
    suite: Suite,
    index: usize,
}

impl MockJob {
    fn mock(&self) -> &Mock {
        &self.suite.mocks[self.index]
    }

    fn act(&self, phase: Phase, attempt: u32) -> JobResult {
        match self.suite.log.record(self.mock(), phase, attempt) {
            Act::Pass => Ok(()),
            Act::Fail(message) => Err(anyhow::anyhow!(message)),
            Act::Panic(message) => std::panic::panic_any(message),
        }
    }
}

impl Job for MockJob {
    fn name(&self) -> String {
        self.mock().name.clone()
    }
    fn deps(&self, _args: &()) -> Vec<JobRef<()>> {
        self.mock()
            .deps
            .iter()
            .map(|dep| {
                // Surfaces as this job's broken deps, like any panic in deps().
                let index = self.suite.index.get(dep).copied();
                self.suite
                    .job_ref(index.unwrap_or_else(|| panic!("unknown dep {dep:?}")))
            })
            .collect()
    }
    fn kind(&self) -> JobKind {
        self.mock().kind
    }
    fn tries(&self) -> Option<u32> {
        self.mock().tries
    }
    fn retry_delay(&self) -> Option<Duration> {
        self.mock().retry_delay
    }
    fn time_limit(&self) -> Option<Duration> {
        self.mock().time_limit
    }
    fn concurrency_group(&self) -> Option<String> {
        self.mock().group.clone()
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.act(cx.phase(), cx.attempt())
    }
    fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.act(Phase::Run, cx.attempt())
    }
    fn cleanup(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.act(Phase::Cleanup, cx.attempt())
    }
}
