//! The rules every run keeps, checked against a run's record.

use std::fmt;
use std::time::Duration;

use dojobber::engine::{JobId, Plan};
use dojobber::observe::Event;
use dojobber::{FailureKind, JobKind, JobReport, Outcome, Phase, Status, StopReason};

use crate::sim::Simulation;

/// One rule of the engine, as [`check_invariants`] checks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invariant {
    /// No phase of a job starts before every dep has passed.
    DepsPassFirst,
    /// Every job whose deps all passed is tried.
    ReadyJobsAreTried,
    /// A job with a failed or blocked dep is reported blocked and never tried.
    BlockedJobsAreNotTried,
    /// A job is tried at most its tries.
    AtMostTries,
    /// A job is not tried again before its retry delay has passed since
    /// its previous try ended.
    RetryDelay,
    /// Run happens only after a failed check, recheck only after a run; a
    /// failed check is followed by run and recheck (when acting).
    PhaseOrder,
    /// In no-act mode only first checks happen: no run, no retry, no cleanup.
    NoActOnlyChecks,
    /// The reported status agrees with the trace: passed (without its run
    /// executing), fixed (passed after its run executed), failed, blocked;
    /// and so do the reported tries, errors, times and events.
    StatusAgreesWithTrace,
    /// Cleanup is called once per job whose run executed, most recent run
    /// first, stopping at the first failing cleanup.
    CleanupOrder,
    /// Within each round, jobs are tried in the reference order (the
    /// depth-first post-order from the root, deps in declaration order),
    /// each at most once; a job is first tried in the round its last dep
    /// passed, and a failed job with tries left is tried again in the next
    /// round; a round starts only for such retries. Several at a time, a
    /// first try starts only when no ready, untried job comes before it:
    /// one with a longer chain of jobs waiting on it, or as long a chain
    /// and earlier in the reference order.
    ReferenceOrderInRounds,
    /// Time never goes backwards (several phases at a time: for each
    /// job); a phase ends after it starts.
    Time,
    /// At most `workers` phases at once; at most a concurrency
    /// group's limit of its jobs in a try at once.
    Concurrency,
    /// A phase that takes longer than its job's time limit fails its try,
    /// "timed out", and none fails so before its limit.
    TimeLimit,
    /// Once the run stops (fail-fast after a job failed for good, the
    /// deadline, a cancellation), no new try starts, and no new phase
    /// either unless the stop is fail-fast; jobs left untried are blocked.
    Stop,
}

impl Invariant {
    /// The rule, as a sentence.
    pub fn rule(self) -> &'static str {
        match self {
            Invariant::DepsPassFirst => "no phase of a job starts before every dep has passed",
            Invariant::ReadyJobsAreTried => "every job whose deps all passed is tried",
            Invariant::BlockedJobsAreNotTried => {
                "a job with a failed or blocked dep is blocked and never tried"
            }
            Invariant::AtMostTries => "a job is tried at most its tries",
            Invariant::RetryDelay => {
                "a job is not tried again before its retry delay has passed since its previous try ended"
            }
            Invariant::PhaseOrder => {
                "run happens only after a failed check, recheck only after a run"
            }
            Invariant::NoActOnlyChecks => "in no-act mode only first checks happen",
            Invariant::StatusAgreesWithTrace => "the reported outcome agrees with the trace",
            Invariant::CleanupOrder => {
                "cleanup is called once per job whose run executed, most recent run first, until one fails"
            }
            Invariant::ReferenceOrderInRounds => {
                "each round tries jobs in the depth-first post-order of the reference, each once"
            }
            Invariant::Time => "time never goes backwards",
            Invariant::Concurrency => {
                "at most workers phases, and a group's limit of its jobs, at once"
            }
            Invariant::TimeLimit => "a phase over its time limit, and only such a phase, times out",
            Invariant::Stop => "after a stop, no new try starts",
        }
    }
}

/// A broken rule: which one, the job at fault (when one is), and what
/// happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub invariant: Invariant,
    /// The job that broke it, by name.
    pub job: Option<String>,
    /// What happened.
    pub detail: String,
}

impl fmt::Display for Violation {
    /// `Popcorn: a job is tried at most its tries (try 6 of 5)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(job) = &self.job {
            write!(f, "{job}: ")?;
        }
        write!(f, "{} ({})", self.invariant.rule(), self.detail)
    }
}

impl std::error::Error for Violation {}

/// Checks every rule of [`Invariant`] against a run's record: a
/// [`simulate`](crate::simulate)d run or a [`record`](crate::record)ed real
/// one. Returns the first rule broken, naming the job at fault.
///
/// Reads the events (and the plan, the report and `config.machine`); the
/// trace is derived from the events.
///
/// ```
/// use std::time::Duration;
/// use dojobber_testkit::{check_invariants, simulate, Act, Mock, SimConfig, Suite};
///
/// let suite = Suite::new([
///     Mock::new("Root").deps(["Flaky", "Broken"]),
///     Mock::new("Flaky").retry_delay(Duration::from_secs(30)).check_fails_until_runs(2, "not yet"),
///     Mock::new("Broken").check(Act::fail("never")),
/// ]);
/// let mut sim = simulate(&suite, SimConfig::new());
/// check_invariants(&sim)?;
///
/// // Tamper with the record: claim Flaky passed without fixing anything.
/// let mut json = serde_json::to_value(&sim.report).unwrap();
/// let jobs = json["jobs"].as_array_mut().unwrap();
/// let flaky = jobs.iter_mut().find(|job| job["name"] == "Flaky").unwrap();
/// flaky["status"] = "passed".into();
/// sim.report = serde_json::from_value(json).unwrap();
/// let violation = check_invariants(&sim).unwrap_err();
/// assert_eq!(violation.job.as_deref(), Some("Flaky"));
/// assert!(violation.to_string().starts_with("Flaky: the reported outcome agrees with the trace"));
/// # Ok::<(), dojobber_testkit::Violation>(())
/// ```
pub fn check_invariants(run: &Simulation) -> Result<(), Violation> {
    let mut checker = Checker::new(run);
    for event in &run.events {
        checker.event(event)?;
    }
    checker.finish()
}

/// Where one job stands, as told by the events so far.
#[derive(Clone, Debug, Default)]
struct Track {
    /// Tries started.
    tries: u32,
    /// The phases of the current (or last) try: phase, passed, performed.
    phases: Vec<(Phase, bool)>,
    /// The last try's result, once it is over.
    try_result: Option<bool>,
    /// The round of the last try.
    try_round: u32,
    /// When the last try ended.
    try_end: Option<Duration>,
    /// The phase handed out and not finished.
    in_flight: Option<Phase>,
    /// Whether a run executed (in any try).
    ran: bool,
    /// Whether it finished with a pass.
    passed: bool,
    /// The status its `JobFinished`/`JobBlocked` event gave.
    finished: Option<Status>,
    /// The dep its `JobBlocked` event named.
    blocked_by: Option<JobId>,
    /// Deps not passed yet.
    unpassed_deps: usize,
    /// The round in which its last dep passed (1 without deps).
    ready_round: Option<u32>,
    /// The message of its last failing phase.
    last_error: Option<String>,
    /// Time spent in performed phases.
    busy: Duration,
    /// When the phase in flight started.
    phase_started: Duration,
    /// The round whose end it must be retried after (failed with tries left).
    retry_due: Option<u32>,
    /// How many cleanups it got.
    cleanups: u32,
    /// Whether one of its phases timed out (and may have run on).
    timed_out: bool,
    /// Whether its try under way counts against its concurrency group.
    in_group_try: bool,
    /// The time of its latest event.
    last_time: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Main,
    Cleanup,
    CleanupOver,
}

struct Checker<'a> {
    run: &'a Simulation,
    plan: &'a Plan,
    no_act: bool,
    jobs: Vec<Track>,
    /// Position of each job in the reference order, computed from the deps.
    position: Vec<usize>,
    /// Per job, the longest chain of jobs from it up through its
    /// dependents, itself included: several at a time, longer goes first.
    chain: Vec<usize>,
    round: u32,
    /// Position of the last job tried in this round.
    last_position: Option<usize>,
    tries_in_round: u32,
    stage: Stage,
    now: Duration,
    /// Every executed run, in order.
    runs: Vec<JobId>,
    /// The cleanups the run must make, in order, once the main run is over.
    expected_cleanups: Vec<JobId>,
    cleanups: Vec<(JobId, bool)>,
    run_finished: bool,
    /// Several phases at once: no rounds, ready jobs go as slots free up.
    parallel: bool,
    /// Why the run stopped, as the report says.
    stopped: Option<StopReason>,
    /// Whether the stop cuts tries short (a deadline, a cancellation).
    interrupts: bool,
    /// A job failed for good (what stops a fail-fast run).
    final_failure_seen: bool,
    /// Phases handed out and not finished, by the events.
    in_flight: usize,
    /// Per concurrency group of the plan: its limit and the jobs in a try.
    groups: Vec<(Option<usize>, usize)>,
    /// Whether a phase timed out: its time ran on after its event.
    any_timed_out: bool,
    /// When the last phase of the main run ended.
    last_main_phase_end: Duration,
    /// When the first job failed for good (by the latest event then).
    first_final_failure_at: Duration,
    /// When the main run finished.
    run_finished_at: Duration,
}

impl<'a> Checker<'a> {
    fn new(run: &'a Simulation) -> Checker<'a> {
        let plan = &run.plan;
        let jobs = plan
            .ids()
            .map(|id| {
                let unpassed_deps = plan.deps(id).len();
                Track {
                    unpassed_deps,
                    ready_round: (unpassed_deps == 0).then_some(1),
                    ..Track::default()
                }
            })
            .collect();
        Checker {
            run,
            plan,
            no_act: run.config.machine.no_act,
            jobs,
            position: reference_positions(plan),
            chain: dependent_chains(plan),
            round: 0,
            last_position: None,
            tries_in_round: 0,
            stage: Stage::Main,
            now: Duration::ZERO,
            runs: Vec::new(),
            expected_cleanups: Vec::new(),
            cleanups: Vec::new(),
            run_finished: false,
            parallel: run.config.machine.workers > 1,
            stopped: run.report.stopped,
            interrupts: run
                .report
                .stopped
                .is_some_and(|reason| reason != StopReason::FailFast),
            final_failure_seen: false,
            in_flight: 0,
            groups: plan
                .group_names()
                .iter()
                .map(|name| {
                    let limit = run
                        .config
                        .group_limits
                        .iter()
                        .filter(|(group, _)| group == name)
                        .map(|&(_, limit)| limit)
                        .min();
                    (limit, 0)
                })
                .collect(),
            any_timed_out: false,
            last_main_phase_end: Duration::ZERO,
            first_final_failure_at: Duration::ZERO,
            run_finished_at: Duration::ZERO,
        }
    }

    /// Whether the run may have stopped by now: its deadline or its
    /// cancellation has passed, or (fail-fast) a job failed for good.
    fn stop_passed(&self) -> Option<&'static str> {
        let machine = &self.run.config.machine;
        if machine.fail_fast && self.final_failure_seen {
            Some("a job failed for good in a fail-fast run")
        } else if machine.deadline.is_some_and(|at| self.now >= at) {
            Some("the deadline passed")
        } else if self.run.config.cancel_at.is_some_and(|at| self.now >= at) {
            Some("the run was cancelled")
        } else {
            None
        }
    }

    /// The try under way of `job` is over: it leaves its group.
    fn end_try(&mut self, job: JobId) {
        let track = &mut self.jobs[job.index()];
        if std::mem::take(&mut track.in_group_try)
            && let Some(group) = self.plan.group(job)
        {
            self.groups[group].1 -= 1;
        }
    }

    fn name(&self, job: JobId) -> String {
        self.plan.name(job).to_owned()
    }

    fn fail(&self, invariant: Invariant, job: Option<JobId>, detail: String) -> Violation {
        Violation {
            invariant,
            job: job.map(|job| self.name(job)),
            detail,
        }
    }

    fn check(
        &self,
        ok: bool,
        invariant: Invariant,
        job: JobId,
        detail: impl FnOnce() -> String,
    ) -> Result<(), Violation> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(invariant, Some(job), detail()))
        }
    }

    /// One phase at a time, event times never go backwards. Several at a
    /// time, a driver may report a phase with the time it really ended,
    /// after events of other jobs with later times: then only each job's
    /// own times never go backwards.
    fn time(&mut self, at: Duration, job: Option<JobId>) -> Result<(), Violation> {
        let since = match job {
            Some(job) if self.parallel => self.jobs[job.index()].last_time,
            _ => self.now,
        };
        if at < since {
            return Err(self.fail(
                Invariant::Time,
                job,
                format!("an event at {at:?} after one at {since:?}"),
            ));
        }
        if let Some(job) = job {
            self.jobs[job.index()].last_time = at;
        }
        self.now = self.now.max(at);
        Ok(())
    }

    fn event(&mut self, event: &Event) -> Result<(), Violation> {
        match event {
            Event::RoundStarted { round } => self.round_started(*round),
            Event::TryStarted { job, attempt } => self.try_started(*job, *attempt),
            Event::PhaseStarted { task, at } => {
                self.time(*at, Some(task.job))?;
                self.in_flight += 1;
                let max = self.run.config.machine.workers;
                if self.in_flight > max {
                    return Err(self.fail(
                        Invariant::Concurrency,
                        Some(task.job),
                        format!(
                            "its {} made {} phases at once, over {max}",
                            task.phase, self.in_flight
                        ),
                    ));
                }
                if task.phase == Phase::Cleanup {
                    self.cleanup_started(task.job, task.attempt, *at)
                } else {
                    self.phase_started(task.job, task.phase, task.attempt, *at)?;
                    let track = &mut self.jobs[task.job.index()];
                    track.in_flight = Some(task.phase);
                    track.phase_started = *at;
                    Ok(())
                }
            }
            Event::PhaseFinished {
                task,
                outcome,
                at,
                performed,
            } => {
                self.time(*at, Some(task.job))?;
                let job = task.job;
                if *performed {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.time_limit(job, task.phase, outcome, *at)?;
                    let track = &mut self.jobs[job.index()];
                    let in_flight = track.in_flight.take();
                    track.busy += at.saturating_sub(track.phase_started);
                    self.check(
                        in_flight == Some(task.phase),
                        Invariant::PhaseOrder,
                        job,
                        || format!("{} finished but was not started", task.phase),
                    )?;
                } else {
                    self.check(
                        task.phase != Phase::Cleanup,
                        Invariant::CleanupOrder,
                        job,
                        || "a cleanup decided without calling the job".into(),
                    )?;
                    self.engine_phase(job, task.phase, outcome)?;
                    self.phase_started(job, task.phase, task.attempt, *at)?;
                }
                if task.phase == Phase::Cleanup {
                    self.cleanups.push((job, outcome.is_pass()));
                    return Ok(());
                }
                self.last_main_phase_end = *at;
                self.phase_finished(job, task.phase, outcome, *performed, *at)
            }
            Event::JobFinished { job, status, tries } => self.job_finished(*job, *status, *tries),
            Event::JobBlocked { job, by } => self.job_blocked(*job, *by),
            Event::RunFinished { at } => {
                self.time(*at, None)?;
                self.run_finished()
            }
            Event::CleanupFinished => {
                if self.stage != Stage::Cleanup {
                    return Err(self.fail(
                        Invariant::CleanupOrder,
                        None,
                        "cleanups finished without the run being over".into(),
                    ));
                }
                self.stage = Stage::CleanupOver;
                Ok(())
            }
            // Only what observers are told: the phase's record says the rest.
            Event::WaitingForAbandoned { .. } => Ok(()),
            // A driver's word to the user, not a transition.
            Event::Warning { .. } => Ok(()),
            // `Event` may grow: an event this checker does not know yet is
            // a rule it cannot hold the run to, so it says so.
            other => Err(self.fail(
                Invariant::StatusAgreesWithTrace,
                None,
                format!("an event the checker does not know: {other:?}"),
            )),
        }
    }

    fn round_started(&mut self, round: u32) -> Result<(), Violation> {
        let invariant = Invariant::ReferenceOrderInRounds;
        if self.stage != Stage::Main {
            return Err(self.fail(invariant, None, format!("round {round} after the run")));
        }
        if round != self.round + 1 {
            return Err(self.fail(
                invariant,
                None,
                format!("round {round} follows round {}", self.round),
            ));
        }
        if self.parallel && round > 1 {
            return Err(self.fail(
                invariant,
                None,
                format!("round {round} with several phases at once"),
            ));
        }
        if self.round >= 1 {
            if self.tries_in_round == 0 && self.round > 1 && self.stopped.is_none() {
                return Err(self.fail(
                    invariant,
                    None,
                    format!("round {} tried nothing", self.round),
                ));
            }
            // Every retry due in the round that ends was made in it.
            if let Some(job) = self
                .plan
                .ids()
                .find(|job| self.jobs[job.index()].retry_due == Some(self.round))
            {
                return Err(self.fail(
                    invariant,
                    Some(job),
                    format!("failed in round {} with tries left", self.round - 1),
                ));
            }
            let pending = self.plan.ids().any(|job| {
                let track = &self.jobs[job.index()];
                track.retry_due == Some(self.round + 1)
            });
            if !pending {
                // A job that failed its last try without finishing is
                // being given more tries than it has.
                if let Some(job) = self.plan.ids().find(|job| {
                    let track = &self.jobs[job.index()];
                    track.try_result == Some(false) && track.finished.is_none()
                }) {
                    return Err(self.fail(
                        Invariant::AtMostTries,
                        Some(job),
                        format!(
                            "round {round} started though it used its {} tries",
                            self.plan.tries(job)
                        ),
                    ));
                }
                return Err(self.fail(
                    invariant,
                    None,
                    format!("round {round} started with no retry due"),
                ));
            }
        }
        self.round = round;
        self.last_position = None;
        self.tries_in_round = 0;
        Ok(())
    }

    fn try_started(&mut self, job: JobId, attempt: u32) -> Result<(), Violation> {
        let track = &self.jobs[job.index()];
        if self.stage != Stage::Main {
            return Err(self.fail(
                Invariant::PhaseOrder,
                Some(job),
                "tried after the run was over".into(),
            ));
        }
        self.check(
            attempt == track.tries + 1,
            Invariant::StatusAgreesWithTrace,
            job,
            || format!("try {attempt} after {} tries", track.tries),
        )?;
        self.check(track.finished.is_none(), Invariant::PhaseOrder, job, || {
            format!("tried again after it finished {:?}", track.finished)
        })?;
        if let Some(phase) = track.in_flight {
            return Err(self.fail(
                Invariant::PhaseOrder,
                Some(job),
                format!("try {attempt} began while its {phase} was under way"),
            ));
        }
        if track.tries > 0 {
            self.check(
                track.try_result == Some(false),
                Invariant::PhaseOrder,
                job,
                || {
                    format!(
                        "try {attempt} began though try {} did not fail",
                        track.tries
                    )
                },
            )?;
        }
        self.check(
            attempt <= self.plan.tries(job),
            Invariant::AtMostTries,
            job,
            || format!("try {attempt} of {}", self.plan.tries(job)),
        )?;
        self.check(
            !(self.no_act && attempt > 1),
            Invariant::NoActOnlyChecks,
            job,
            || format!("try {attempt} in no-act mode"),
        )?;
        self.check(
            self.plan.broken(job).is_none(),
            Invariant::StatusAgreesWithTrace,
            job,
            || "a job that could not be described was tried".into(),
        )?;
        self.deps_passed(job)?;
        if let Some(stop) = self.stop_passed() {
            return Err(self.fail(
                Invariant::Stop,
                Some(job),
                format!("try {attempt} began after {stop}"),
            ));
        }
        let position = self.position[job.index()];
        if self.parallel {
            self.ready_in_order(job, attempt)?;
        } else {
            self.due_in_round_and_order(job, attempt)?;
        }
        self.enter_group(job, attempt)?;
        let track = &mut self.jobs[job.index()];
        track.tries = attempt;
        track.phases.clear();
        track.try_result = None;
        track.try_round = self.round;
        track.retry_due = None;
        self.last_position = Some(position);
        self.tries_in_round += 1;
        Ok(())
    }

    /// One at a time: a try starts in the round it is due in, and after
    /// the tries of that round that come before it in the reference order.
    fn due_in_round_and_order(&self, job: JobId, attempt: u32) -> Result<(), Violation> {
        let track = &self.jobs[job.index()];
        let position = self.position[job.index()];
        // The round it is due in.
        let due_round = if attempt == 1 {
            track.ready_round
        } else {
            track.retry_due
        };
        self.check(
            due_round == Some(self.round),
            Invariant::ReferenceOrderInRounds,
            job,
            || match due_round {
                Some(due) => {
                    format!("try {attempt} in round {}, due in round {due}", self.round)
                }
                None => format!("try {attempt} in round {} was not due", self.round),
            },
        )?;
        // The order within the round.
        if let Some(last) = self.last_position
            && position <= last
        {
            let before = self
                .plan
                .ids()
                .find(|other| self.position[other.index()] == last)
                .map(|other| self.name(other))
                .unwrap_or_default();
            return Err(self.fail(
                Invariant::ReferenceOrderInRounds,
                Some(job),
                format!(
                    "tried after {before} in round {}, though it comes {} in the reference order",
                    self.round,
                    if position == last {
                        "at the same place"
                    } else {
                        "before it"
                    }
                ),
            ));
        }
        Ok(())
    }

    /// A try enters its concurrency group, which must have room.
    fn enter_group(&mut self, job: JobId, attempt: u32) -> Result<(), Violation> {
        if let Some(group) = self.plan.group(job) {
            let (limit, trying) = self.groups[group];
            if limit.is_some_and(|limit| trying >= limit) {
                return Err(self.fail(
                    Invariant::Concurrency,
                    Some(job),
                    format!(
                        "try {attempt} began with {trying} jobs of group {} in a try, its limit",
                        self.plan.group_names()[group]
                    ),
                ));
            }
            self.groups[group].1 += 1;
            self.jobs[job.index()].in_group_try = true;
        }
        Ok(())
    }

    /// Several at a time: a job's first try starts only when no job that
    /// comes before it is ready and untried (unless that job's group is
    /// full): none with a longer chain of dependents, none with as long a
    /// chain and earlier in the reference order.
    fn ready_in_order(&self, job: JobId, attempt: u32) -> Result<(), Violation> {
        if attempt > 1 {
            return Ok(());
        }
        let position = self.position[job.index()];
        let chain = self.chain[job.index()];
        let comes_before = |other: JobId| {
            let other_chain = self.chain[other.index()];
            other_chain > chain || other_chain == chain && self.position[other.index()] < position
        };
        let passed_over = self.plan.ids().find(|&other| {
            let track = &self.jobs[other.index()];
            let group_full = self.plan.group(other).is_some_and(|group| {
                let (limit, trying) = self.groups[group];
                limit.is_some_and(|limit| trying >= limit)
            });
            comes_before(other)
                && track.tries == 0
                && track.finished.is_none()
                && track.unpassed_deps == 0
                && !group_full
        });
        match passed_over {
            Some(other) => Err(self.fail(
                Invariant::ReferenceOrderInRounds,
                Some(job),
                format!(
                    "tried while {} was ready and untried, though it comes before it",
                    self.name(other)
                ),
            )),
            None => Ok(()),
        }
    }

    fn deps_passed(&self, job: JobId) -> Result<(), Violation> {
        if let Some(&dep) = self
            .plan
            .deps(job)
            .iter()
            .find(|dep| !self.jobs[dep.index()].passed)
        {
            return Err(self.fail(
                Invariant::DepsPassFirst,
                Some(job),
                format!("started before its dep {} passed", self.name(dep)),
            ));
        }
        Ok(())
    }

    /// The start of a phase of a try: dep, order, delay and no-act rules.
    fn phase_started(
        &mut self,
        job: JobId,
        phase: Phase,
        attempt: u32,
        at: Duration,
    ) -> Result<(), Violation> {
        let track = &self.jobs[job.index()];
        if self.no_act {
            self.check(
                phase == Phase::Check,
                Invariant::NoActOnlyChecks,
                job,
                || format!("{phase} in no-act mode"),
            )?;
        }
        self.check(
            self.stage == Stage::Main,
            Invariant::PhaseOrder,
            job,
            || format!("{phase} after the run was over"),
        )?;
        self.check(track.tries > 0, Invariant::PhaseOrder, job, || {
            format!("{phase} before its first try")
        })?;
        // No phase starts at or after the deadline or the cancellation (a
        // run-only job's recheck is only its run's outcome), unless the run
        // had already stopped fail-fast, which lets tries under way finish.
        let fail_fast_stop = self.stopped == Some(StopReason::FailFast);
        let run_only_recheck = phase == Phase::Recheck && self.plan.kind(job) == JobKind::RunOnly;
        if !(fail_fast_stop || run_only_recheck) {
            let machine = &self.run.config.machine;
            let stop = if machine.deadline.is_some_and(|deadline| at >= deadline) {
                Some("the deadline")
            } else if self.run.config.cancel_at.is_some_and(|cancel| at >= cancel) {
                Some("the cancellation")
            } else {
                None
            };
            if let Some(stop) = stop {
                return Err(self.fail(
                    Invariant::Stop,
                    Some(job),
                    format!("its {phase} began at {at:?}, after {stop}"),
                ));
            }
        }
        self.check(attempt == track.tries, Invariant::PhaseOrder, job, || {
            format!("{phase} of try {attempt} during try {}", track.tries)
        })?;
        self.check(
            track.in_flight.is_none(),
            Invariant::PhaseOrder,
            job,
            || format!("{phase} began while another phase was under way"),
        )?;
        self.deps_passed(job)?;
        let expected = match track.phases.as_slice() {
            [] => Some(Phase::Check),
            [(Phase::Check, false)] if !self.no_act => Some(Phase::Run),
            [(Phase::Check, false), (Phase::Run, _)] => Some(Phase::Recheck),
            _ => None,
        };
        if expected != Some(phase) {
            let detail = match (phase, track.phases.as_slice()) {
                (Phase::Run, [(Phase::Check, true), ..]) => "run after a passed check".to_owned(),
                (Phase::Run, _) => "run without a failed check before it".to_owned(),
                (Phase::Recheck, _) => "recheck without a run before it".to_owned(),
                _ => format!("{phase} after {:?} in try {attempt}", track.phases),
            };
            return Err(self.fail(Invariant::PhaseOrder, Some(job), detail));
        }
        if phase == Phase::Check && attempt > 1 {
            let delay = self.plan.retry_delay(job);
            let ended = track.try_end.unwrap_or_default();
            self.check(at >= ended + delay, Invariant::RetryDelay, job, || {
                format!(
                    "try {attempt} began at {at:?}, {:?} after try {} ended; its delay is {delay:?}",
                    at.saturating_sub(ended),
                    attempt - 1,
                )
            })?;
        }
        Ok(())
    }

    /// A phase the machine decided without the job's code: only a dummy's
    /// check (a pass), a run-only job's check (a fail) and recheck (the run's).
    fn engine_phase(&self, job: JobId, phase: Phase, outcome: &Outcome) -> Result<(), Violation> {
        let kind = self.plan.kind(job);
        let track = &self.jobs[job.index()];
        let ok = match (kind, phase) {
            (JobKind::Dummy, Phase::Check) => outcome.is_pass(),
            (JobKind::RunOnly, Phase::Check) => !outcome.is_pass(),
            (JobKind::RunOnly, Phase::Recheck) => {
                matches!(track.phases.last(), Some((Phase::Run, passed)) if *passed == outcome.is_pass())
            }
            _ => false,
        };
        self.check(ok, Invariant::PhaseOrder, job, || {
            format!("the machine decided the {phase} of a {kind:?} job as {outcome:?}")
        })
    }

    /// Whether `outcome` is the machine's "timed out" for a job with a limit.
    fn timed_out(&self, job: JobId, phase: Phase, outcome: &Outcome) -> bool {
        phase != Phase::Cleanup
            && self.plan.time_limit(job).is_some()
            && matches!(outcome, Outcome::Fail(f) if f.kind == FailureKind::TimedOut)
    }

    /// A performed phase over its job's time limit timed out, and one
    /// that timed out was over it.
    fn time_limit(
        &mut self,
        job: JobId,
        phase: Phase,
        outcome: &Outcome,
        at: Duration,
    ) -> Result<(), Violation> {
        let Some(limit) = self
            .plan
            .time_limit(job)
            .filter(|_| phase != Phase::Cleanup)
        else {
            return Ok(());
        };
        let took = at.saturating_sub(self.jobs[job.index()].phase_started);
        let timed_out = self.timed_out(job, phase, outcome);
        if took > limit && !timed_out {
            return Err(self.fail(
                Invariant::TimeLimit,
                Some(job),
                format!(
                    "its {phase} took {took:?}, over its limit of {limit:?}, yet did not time out"
                ),
            ));
        }
        if timed_out && took < limit {
            return Err(self.fail(
                Invariant::TimeLimit,
                Some(job),
                format!("its {phase} timed out after {took:?}, under its limit of {limit:?}"),
            ));
        }
        if timed_out {
            self.jobs[job.index()].timed_out = true;
            self.any_timed_out = true;
        }
        Ok(())
    }

    fn phase_finished(
        &mut self,
        job: JobId,
        phase: Phase,
        outcome: &Outcome,
        performed: bool,
        at: Duration,
    ) -> Result<(), Violation> {
        let kind = self.plan.kind(job);
        // User code runs for every phase of a normal job and for a run-only
        // job's run; the machine decides the rest.
        let should_perform = match kind {
            JobKind::Normal => true,
            JobKind::Dummy => false,
            JobKind::RunOnly => phase == Phase::Run,
        };
        self.check(
            performed == should_perform,
            Invariant::PhaseOrder,
            job,
            || {
                format!(
                    "the {phase} of a {kind:?} job {} the job",
                    if performed { "called" } else { "did not call" }
                )
            },
        )?;
        let passed = outcome.is_pass();
        if let Outcome::Fail(failure) = outcome {
            self.jobs[job.index()].last_error = Some(failure.message.clone());
        }
        // A phase that timed out fails its try, whatever the phase; its
        // outcome, a run's included, no longer counts.
        let timed_out = performed && self.timed_out(job, phase, outcome);
        let ran = phase == Phase::Run && !timed_out;
        if ran {
            self.runs.push(job);
        }
        let no_act = self.no_act;
        let track = &mut self.jobs[job.index()];
        if ran {
            track.ran = true;
        }
        track.phases.push((phase, passed));
        let over = timed_out
            || match phase {
                Phase::Check => passed || no_act,
                Phase::Run => false,
                Phase::Recheck | Phase::Cleanup => true,
            };
        if over {
            track.try_result = Some(passed);
            track.try_end = Some(at);
            if !passed && !no_act && track.tries < self.plan.tries(job) {
                track.retry_due = Some(self.round + 1);
            }
            self.end_try(job);
        }
        Ok(())
    }

    fn job_finished(&mut self, job: JobId, status: Status, tries: u32) -> Result<(), Violation> {
        let track = &self.jobs[job.index()];
        let invariant = Invariant::StatusAgreesWithTrace;
        self.check(self.stage == Stage::Main, invariant, job, || {
            format!("finished {status} after the run was over")
        })?;
        self.check(track.finished.is_none(), invariant, job, || {
            format!("finished twice, as {:?} then {status}", track.finished)
        })?;
        self.check(tries == track.tries, invariant, job, || {
            format!(
                "finished after {tries} tries, but the trace has {}",
                track.tries
            )
        })?;
        let expected = if track.tries == 0 {
            self.check(self.plan.broken(job).is_some(), invariant, job, || {
                format!("finished {status} without a try")
            })?;
            Status::Failed
        } else if track.try_result.is_none() {
            // Only a stop that cuts tries short ends one in the middle.
            self.check(self.interrupts, invariant, job, || {
                format!("finished {status} in the middle of a try")
            })?;
            Status::Failed
        } else {
            match (track.try_result == Some(true), track.ran) {
                (true, false) => Status::Passed,
                (true, true) => Status::Fixed,
                (false, _) => {
                    self.check(
                        self.no_act
                            || self.stopped.is_some()
                            || track.tries == self.plan.tries(job),
                        Invariant::AtMostTries,
                        job,
                        || {
                            format!(
                                "given up after {} of its {} tries",
                                track.tries,
                                self.plan.tries(job)
                            )
                        },
                    )?;
                    Status::Failed
                }
            }
        };
        self.check(status == expected, invariant, job, || {
            format!("finished {status}, but the trace says {expected}")
        })?;
        // A job out of tries (or one that could not be described) fails
        // for good and stops a fail-fast run; one denied its retry or cut
        // short fails because the run stopped.
        let out_of_tries = track.tries == 0
            || track.try_result == Some(false)
                && (self.no_act || track.tries == self.plan.tries(job));
        if track.tries > 0 && track.try_result.is_none() {
            self.end_try(job);
            self.jobs[job.index()].last_error = self
                .stopped
                .map(|reason| format!("{reason} during its try"));
        }
        if status == Status::Failed && out_of_tries && !self.final_failure_seen {
            self.final_failure_seen = true;
            self.first_final_failure_at = self.now;
        }
        let track = &mut self.jobs[job.index()];
        track.finished = Some(status);
        track.retry_due = None;
        if status.is_success() {
            track.passed = true;
            for &dependent in self.plan.dependents(job) {
                let track = &mut self.jobs[dependent.index()];
                track.unpassed_deps -= 1;
                if track.unpassed_deps == 0 {
                    track.ready_round = Some(self.round);
                }
            }
        }
        Ok(())
    }

    fn job_blocked(&mut self, job: JobId, by: Option<JobId>) -> Result<(), Violation> {
        let track = &self.jobs[job.index()];
        let invariant = Invariant::BlockedJobsAreNotTried;
        self.check(track.finished.is_none(), invariant, job, || {
            format!("blocked after it finished {:?}", track.finished)
        })?;
        self.check(track.tries == 0, invariant, job, || {
            format!("blocked after {} tries", track.tries)
        })?;
        if let Some(&dep) = self.plan.deps(job).iter().find(|dep| {
            let dep = &self.jobs[dep.index()];
            dep.finished.is_none() && dep.try_result == Some(false)
        }) {
            return Err(self.fail(
                Invariant::StatusAgreesWithTrace,
                Some(dep),
                format!(
                    "its try {} failed and it never finished, yet {} was blocked",
                    self.jobs[dep.index()].tries,
                    self.name(job)
                ),
            ));
        }
        let first_unpassed = self.plan.deps(job).iter().copied().find(|dep| {
            matches!(
                self.jobs[dep.index()].finished,
                Some(Status::Failed | Status::Blocked)
            )
        });
        self.check(first_unpassed == by, invariant, job, || {
            format!(
                "blocked by {}, but its first failed or blocked dep is {}",
                by.map_or("none".into(), |dep| self.name(dep)),
                first_unpassed.map_or("none".into(), |dep| self.name(dep))
            )
        })?;
        if by.is_none() {
            self.check(self.stopped.is_some(), invariant, job, || {
                "blocked by no dep, though the run did not stop".into()
            })?;
        }
        let track = &mut self.jobs[job.index()];
        track.finished = Some(Status::Blocked);
        track.blocked_by = by;
        Ok(())
    }

    fn run_finished(&mut self) -> Result<(), Violation> {
        if self.stage != Stage::Main {
            return Err(self.fail(
                Invariant::StatusAgreesWithTrace,
                None,
                "the run finished twice".into(),
            ));
        }
        self.run_finished = true;
        self.run_finished_at = self.now;
        if self.in_flight > 0 {
            let job = self
                .plan
                .ids()
                .find(|job| self.jobs[job.index()].in_flight.is_some());
            return Err(self.fail(
                Invariant::PhaseOrder,
                job,
                format!("the run finished with {} phases in flight", self.in_flight),
            ));
        }
        if self.round > 1 && self.tries_in_round == 0 && self.stopped.is_none() {
            return Err(self.fail(
                Invariant::ReferenceOrderInRounds,
                None,
                format!("round {} tried nothing", self.round),
            ));
        }
        self.every_job_has_a_status()?;
        self.stopped_in_time()?;
        // Several at a time, there are no rounds: the report counts the
        // most tries any job used.
        let rounds = if self.parallel {
            self.jobs.iter().map(|job| job.tries).max().unwrap_or(0)
        } else {
            self.round
        };
        if rounds != self.run.report.rounds {
            return Err(self.fail(
                Invariant::StatusAgreesWithTrace,
                None,
                format!(
                    "the report says {} rounds, the events {rounds}",
                    self.run.report.rounds
                ),
            ));
        }
        // Each job whose run executed, most recent run first.
        let mut seen = vec![false; self.plan.len()];
        self.expected_cleanups = self
            .runs
            .iter()
            .rev()
            .copied()
            .filter(|job| !std::mem::replace(&mut seen[job.index()], true))
            .collect();
        self.stage = Stage::Cleanup;
        Ok(())
    }

    /// When the run finishes, every job has a status, and a job without
    /// one says which rule the run broke.
    fn every_job_has_a_status(&self) -> Result<(), Violation> {
        for job in self.plan.ids() {
            let track = &self.jobs[job.index()];
            if track.finished.is_some() {
                continue;
            }
            if track.unpassed_deps == 0 && track.tries == 0 {
                return Err(self.fail(
                    Invariant::ReadyJobsAreTried,
                    Some(job),
                    "every dep passed, yet it was never tried".into(),
                ));
            }
            if track.retry_due.is_some() && self.stopped.is_some() {
                return Err(self.fail(
                    Invariant::StatusAgreesWithTrace,
                    Some(job),
                    format!(
                        "the run stopped with its try {} failed, yet it never finished",
                        track.tries
                    ),
                ));
            }
            if track.retry_due.is_some() {
                return Err(self.fail(
                    Invariant::ReferenceOrderInRounds,
                    Some(job),
                    format!(
                        "the run ended with try {} failed and tries left",
                        track.tries
                    ),
                ));
            }
            return Err(self.fail(
                Invariant::StatusAgreesWithTrace,
                Some(job),
                "the run ended without a status for it".into(),
            ));
        }
        Ok(())
    }

    /// A stop at a deadline or cancellation ends the run then, or when
    /// the phases in flight then come back. On a real clock the machine
    /// learns the time only when a worker takes its turn, which a busy
    /// machine delays: there, no phase after the stop is the rule
    /// (checked as each phase starts).
    fn stopped_in_time(&self) -> Result<(), Violation> {
        let machine = &self.run.config.machine;
        let stop_at = [machine.deadline, self.run.config.cancel_at]
            .into_iter()
            .flatten()
            .min();
        if let Some(stop_at) = stop_at
            && !self.run.real_clock
            && !self.any_timed_out
            && self.now > stop_at
            && self.now > self.last_main_phase_end
        {
            return Err(self.fail(
                Invariant::Stop,
                None,
                format!(
                    "the run went on until {:?}, past its stop at {stop_at:?}, with nothing in flight after {:?}",
                    self.now, self.last_main_phase_end
                ),
            ));
        }
        Ok(())
    }

    fn cleanup_started(&mut self, job: JobId, attempt: u32, at: Duration) -> Result<(), Violation> {
        let invariant = Invariant::CleanupOrder;
        if self.no_act {
            return Err(self.fail(
                Invariant::NoActOnlyChecks,
                Some(job),
                "cleanup in no-act mode".into(),
            ));
        }
        self.check(self.stage == Stage::Cleanup, invariant, job, || {
            "cleanup before the run was over, or after the cleanups".into()
        })?;
        if self.in_flight > 1 {
            return Err(self.fail(
                invariant,
                Some(job),
                "its cleanup began while another phase was under way".into(),
            ));
        }
        let index = self.cleanups.len();
        if let Some(&(failed, _)) = self.cleanups.iter().find(|(_, passed)| !passed) {
            return Err(self.fail(
                invariant,
                Some(job),
                format!("cleaned after {}'s cleanup failed", self.name(failed)),
            ));
        }
        let track = &self.jobs[job.index()];
        self.check(track.ran, invariant, job, || {
            "cleaned though its run never executed".into()
        })?;
        self.check(track.cleanups == 0, invariant, job, || {
            "cleaned twice".into()
        })?;
        let expected = self.expected_cleanups.get(index).copied();
        self.check(expected == Some(job), invariant, job, || {
            format!(
                "cleanup {} should be {}'s, the most recent run not cleaned yet",
                index + 1,
                expected.map_or("nobody".into(), |job| self.name(job))
            )
        })?;
        self.check(attempt == track.tries, invariant, job, || {
            format!(
                "cleanup of try {attempt}, but its last try is {}",
                track.tries
            )
        })?;
        let track = &mut self.jobs[job.index()];
        track.cleanups += 1;
        track.in_flight = Some(Phase::Cleanup);
        track.phase_started = at;
        Ok(())
    }

    /// One job's entry in the report says what its events say: name,
    /// status, tries, what blocked it, its last error, its time, its deps.
    fn job_agrees_with_report(&self, job: JobId, reported: JobReport<'_>) -> Result<(), Violation> {
        let invariant = Invariant::StatusAgreesWithTrace;
        let track = &self.jobs[job.index()];
        let check = |ok: bool, detail: &dyn Fn() -> String| self.check(ok, invariant, job, detail);
        check(reported.name() == self.plan.name(job), &|| {
            format!("reported as {:?}", reported.name())
        })?;
        let status = track.finished.unwrap_or(Status::Pending);
        check(reported.status() == status, &|| {
            format!(
                "reported {}, but the trace says {status}",
                reported.status()
            )
        })?;
        check(reported.tries() == track.tries, &|| {
            format!(
                "reported {} tries, the trace has {}",
                reported.tries(),
                track.tries
            )
        })?;
        let blocked_by = track.blocked_by.map(|dep| self.name(dep));
        check(reported.blocked_by() == blocked_by.as_deref(), &|| {
            format!(
                "reported blocked by {:?}, the trace says {blocked_by:?}",
                reported.blocked_by()
            )
        })?;
        let last_error = match status {
            Status::Failed => track
                .last_error
                .clone()
                .or_else(|| self.plan.broken(job).map(str::to_owned)),
            _ => None,
        };
        let reported_failure = reported.last_error();
        let reported_error = reported_failure.map(|e| e.message.clone());
        // A job that failed a try and then passed may report the old
        // error; a failed job reports its last one. A timeout's phase that
        // returned later says when in the report (`returned_after`), and
        // its message adds that for people to the traced one.
        let returned_later = match (reported_failure, &last_error) {
            (Some(reported), Some(traced)) if track.timed_out => {
                reported.returned_after.is_some() && reported.message.starts_with(traced.as_str())
            }
            _ => false,
        };
        let agrees = reported_error == last_error || returned_later;
        if status == Status::Failed {
            check(agrees, &|| {
                format!("reported error {reported_error:?}, the trace's is {last_error:?}")
            })?;
        }
        // A phase that timed out may run on, and its time counts when
        // it comes back.
        let time_agrees = if track.timed_out {
            reported.time() >= track.busy
        } else {
            reported.time() == track.busy
        };
        check(time_agrees, &|| {
            format!(
                "reported {:?} spent in its phases, the trace {:?}",
                reported.time(),
                track.busy
            )
        })?;
        let deps: Vec<&str> = self
            .plan
            .deps(job)
            .iter()
            .map(|&d| self.plan.name(d))
            .collect();
        check(reported.deps().eq(deps.iter().copied()), &|| {
            let reported: Vec<&str> = reported.deps().collect();
            format!("reported deps {reported:?}, the plan's are {deps:?}")
        })?;
        // A job whose deps all passed was tried; one with a dep that did
        // not pass was blocked.
        let blocked_reason = (status == Status::Blocked && track.blocked_by.is_none())
            .then_some(self.stopped)
            .flatten();
        check(reported.blocked_reason() == blocked_reason, &|| {
            format!(
                "reported blocked for {:?}, the trace says {blocked_reason:?}",
                reported.blocked_reason()
            )
        })?;
        if track.unpassed_deps == 0 && self.plan.broken(job).is_none() && self.stopped.is_none() {
            self.check(track.tries > 0, Invariant::ReadyJobsAreTried, job, || {
                "every dep passed, yet it was never tried".into()
            })?;
        } else if track.unpassed_deps > 0 {
            self.check(
                status == Status::Blocked && track.tries == 0,
                Invariant::BlockedJobsAreNotTried,
                job,
                || {
                    format!(
                        "{status} after {} tries with a dep that did not pass",
                        track.tries
                    )
                },
            )?;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Violation> {
        let report = &self.run.report;
        let invariant = Invariant::StatusAgreesWithTrace;
        if !self.run_finished {
            return Err(self.fail(invariant, None, "the run never finished".into()));
        }
        if let Some(job) = self
            .plan
            .ids()
            .find(|job| self.jobs[job.index()].in_flight.is_some())
        {
            return Err(self.fail(
                Invariant::PhaseOrder,
                Some(job),
                "a phase never finished".into(),
            ));
        }
        if report.no_act != self.no_act {
            return Err(self.fail(
                invariant,
                None,
                format!("the report says no_act = {}", report.no_act),
            ));
        }
        if report.jobs().len() != self.plan.len() {
            return Err(self.fail(
                invariant,
                None,
                format!(
                    "the report has {} jobs, the plan {}",
                    report.jobs().len(),
                    self.plan.len()
                ),
            ));
        }
        let mut latest = self.now;
        for job in self.plan.ids() {
            let track = &self.jobs[job.index()];
            let reported = report
                .job_at(job.index())
                .expect("the report has every job of the plan");
            self.job_agrees_with_report(job, reported)?;
            latest = latest.max(track.try_end.unwrap_or_default());
        }
        // A driver may poll after the last event (a phase that timed out
        // may even come back then), so the run may end after it.
        if report.elapsed < latest {
            return Err(self.fail(
                invariant,
                None,
                format!(
                    "the report says the run took {:?}, the events end at {latest:?}",
                    report.elapsed
                ),
            ));
        }
        self.finish_stop()?;
        self.finish_cleanups()
    }

    /// The run stopped when, and why, its options say it must have.
    fn finish_stop(&self) -> Result<(), Violation> {
        let machine = &self.run.config.machine;
        let ended = self.run_finished_at;
        let fail_fast = machine.fail_fast && self.final_failure_seen;
        let fail_fast_at = fail_fast.then_some(self.first_final_failure_at);
        let deadline = machine.deadline.filter(|&at| at <= ended);
        let cancel = self.run.config.cancel_at.filter(|&at| at <= ended);
        let must_stop = fail_fast || deadline.is_some() || cancel.is_some();
        let unknown_cancel = self.run.config.cancel_at.is_none();
        let fail = |detail: String| Err(self.fail(Invariant::Stop, None, detail));
        match self.stopped {
            None if must_stop => fail(format!(
                "the run did not stop, though {}",
                if fail_fast {
                    "a job failed for good in a fail-fast run"
                } else if deadline.is_some() {
                    "it went on past its deadline"
                } else {
                    "it was cancelled before it ended"
                }
            )),
            // A recorded run's cancellation time is unknown.
            Some(reason) if !(must_stop || reason == StopReason::Cancelled && unknown_cancel) => {
                fail(format!("the run stopped ({reason}) with no cause"))
            }
            Some(reason) => {
                // A fail-fast stop before any deadline or cancellation is
                // the one reported.
                let first_cause = [deadline, cancel].into_iter().flatten().min();
                let fail_fast_first =
                    fail_fast_at.is_some_and(|at| first_cause.is_none_or(|other| at < other));
                if fail_fast_first && reason != StopReason::FailFast {
                    fail(format!(
                        "a job failed for good at {:?} in a fail-fast run, yet the run reports it stopped: {reason}",
                        self.first_final_failure_at
                    ))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    fn finish_cleanups(&self) -> Result<(), Violation> {
        let invariant = Invariant::CleanupOrder;
        let report = &self.run.report;
        let failed = self.cleanups.iter().find(|(_, passed)| !passed);
        let reported = report.cleanup_failure.as_ref().map(|f| f.job.clone());
        let traced = failed.map(|&(job, _)| self.name(job));
        if reported != traced {
            return Err(self.fail(
                invariant,
                failed.map(|&(job, _)| job),
                format!("the report names the failed cleanup {reported:?}, the trace {traced:?}"),
            ));
        }
        let cleaned = self.stage == Stage::CleanupOver;
        // Cleanups happen when the machine hands them out at the end of an
        // acting run, or when started by hand (a recorded run's config says
        // so); never in no-act mode.
        let expected = self.run.config.machine.cleanup && !self.no_act;
        if !expected {
            let first = self.cleanups.first().map(|&(job, _)| job);
            if first.is_some() || cleaned {
                return Err(self.fail(
                    if self.no_act {
                        Invariant::NoActOnlyChecks
                    } else {
                        invariant
                    },
                    first,
                    "cleanups though cleanup was off".into(),
                ));
            }
            return Ok(());
        }
        if !cleaned {
            return Err(self.fail(invariant, None, "the cleanups never finished".into()));
        }
        if failed.is_none() && self.cleanups.len() < self.expected_cleanups.len() {
            let job = self.expected_cleanups[self.cleanups.len()];
            return Err(self.fail(
                invariant,
                Some(job),
                "its run executed, yet it was never cleaned".into(),
            ));
        }
        Ok(())
    }
}

/// Per job, the longest chain of jobs from it up through its dependents,
/// itself included, computed from the deps alone (longest first, memoised,
/// without recursion).
fn dependent_chains(plan: &Plan) -> Vec<usize> {
    let mut dependents = vec![Vec::new(); plan.len()];
    for job in plan.ids() {
        for dep in plan.deps(job) {
            dependents[dep.index()].push(job);
        }
    }
    let mut chain = vec![0usize; plan.len()];
    for job in plan.ids() {
        if chain[job.index()] > 0 {
            continue;
        }
        // (job, index of its next dependent to visit)
        let mut stack = vec![(job, 0usize)];
        while let Some((at, next)) = stack.pop() {
            match dependents[at.index()].get(next) {
                Some(&up) if chain[up.index()] == 0 => {
                    stack.push((at, next));
                    stack.push((up, 0));
                }
                Some(_) => stack.push((at, next + 1)),
                None => {
                    let above = dependents[at.index()]
                        .iter()
                        .map(|up| chain[up.index()])
                        .max();
                    chain[at.index()] = 1 + above.unwrap_or(0);
                }
            }
        }
    }
    chain
}

/// Each job's place in the reference order, computed from the deps alone:
/// the depth-first post-order from the root, deps in declaration order.
fn reference_positions(plan: &Plan) -> Vec<usize> {
    let mut position = vec![usize::MAX; plan.len()];
    if plan.is_empty() {
        return position;
    }
    let mut visited = vec![false; plan.len()];
    let mut next = 0;
    // (job, index of its next dep to visit)
    let mut stack = vec![(plan.root(), 0usize)];
    visited[plan.root().index()] = true;
    while let Some((job, dep_index)) = stack.pop() {
        match plan.deps(job).get(dep_index) {
            Some(&dep) => {
                stack.push((job, dep_index + 1));
                if !visited[dep.index()] {
                    visited[dep.index()] = true;
                    stack.push((dep, 0));
                }
            }
            None => {
                position[job.index()] = next;
                next += 1;
            }
        }
    }
    position
}
