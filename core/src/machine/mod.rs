//! The state machine that decides everything and touches nothing.
//!
//! It knows jobs only by [`JobId`], through a [`Plan`]. It never calls user
//! code, never reads the clock, never sleeps, spawns or locks: time comes in
//! as `now` (time since the run started, on the driver's clock), decisions
//! come out of [`Machine::poll`] as [`Step`]s, and every transition is also
//! an [`Event`] for observers. A driver loops:
//!
//! ```
//! use std::time::Duration;
//! use dojobber::{Outcome, Status};
//! use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, Plan, Step};
//!
//! let (plan, _) = Plan::new(vec![JobSpec::new("Only")], 0, Defaults::default())?;
//! let mut machine = Machine::new(plan, MachineConfig::default());
//! let now = Duration::ZERO;
//! loop {
//!     match machine.poll(now) {
//!         Step::Perform(task) => machine.handle_outcome(task, Outcome::Pass, now)?,
//!         Step::Wait(_) | Step::Idle | Step::Abandon(_) => unreachable!("nothing waits here"),
//!         Step::Done => break,
//!     }
//! }
//! assert_eq!(machine.report_card().job_at(0).unwrap().status(), Status::Passed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Its parts, each with its own tests: the ready queue (`ready.rs`), the
//! timers (`timers.rs`: retry delays, phase limits, the deadline), the
//! concurrency groups (`groups.rs`) and the cleanup stage (`cleanup.rs`).
//! This file holds each job's state and the rules that move it.

mod cleanup;
mod groups;
mod phase_log;
mod ready;
mod sequence;
mod timers;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{Event, Outcome, Performer, Task};
use crate::phase::{JobKind, Phase};
use crate::plan::{JobId, Plan};
use crate::report::{
    CleanupFailure, Failure, FailureKind, NewJob, PhaseRecord, Report, ReportTable, Status,
    StopReason, nanos,
};
use crate::text::humane;

use cleanup::Cleanups;
use groups::Groups;
use phase_log::PhaseLog;
use ready::ReadyQueue;
pub use sequence::{first_phase, next_phase};
use timers::Timers;

/// How the machine runs a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Only the first check of each job: no run, no retry, no cleanup.
    pub no_act: bool,
    /// Hand out cleanups when the run ends. When off, call
    /// [`Machine::start_cleanup`] later.
    pub cleanup: bool,
    /// How many phases may be in flight at once. With 1, jobs go in the
    /// reference order, in rounds; with more, whatever is ready goes, and
    /// a retry waits only for its own delay.
    pub workers: usize,
    /// After the first job that failed for good, start no new try.
    pub fail_fast: bool,
    /// No new phase starts at or after this time since the run's start.
    pub deadline: Option<Duration>,
}

impl Default for MachineConfig {
    /// Acting, with cleanup, one phase at a time, keep going after failures,
    /// no deadline.
    fn default() -> Self {
        MachineConfig {
            no_act: false,
            cleanup: true,
            workers: 1,
            fail_fast: false,
            deadline: None,
        }
    }
}

/// What the driver should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// Call this phase of the job, then hand its outcome to
    /// [`Machine::handle_outcome`].
    Perform(Task),
    /// Nothing can start before this time (since the run's start): poll
    /// again then, or as soon as a phase in flight reports.
    Wait(Duration),
    /// Phases are in flight and nothing else can start until one reports.
    Idle,
    /// Cancel this phase in flight if you can, and report it either way
    /// when it ends. Either it is over its time limit: its try has failed
    /// already and its outcome no longer counts; or the run was cancelled or
    /// its deadline passed: its outcome counts (a cancelled phase reports a
    /// failure). Drivers that cannot cancel a phase let it run on.
    Abandon(Task),
    /// The run and its cleanups are over; [`Machine::report_card`] tells how it went.
    Done,
}

/// The driver fed the machine something it did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    /// A report for a phase that was not handed out, or was already reported.
    #[error("report for {job:?}.{phase} that the machine did not ask for")]
    UnexpectedReport {
        /// The job's name (or its id, if the id is unknown).
        job: String,
        /// The phase reported.
        phase: Phase,
    },
    /// [`Machine::start_cleanup`] before the run ended, after a cleanup, or in no-act mode.
    #[error("cleanup cannot start: {0}")]
    CleanupNotAllowed(&'static str),
}

/// Where a job stands in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// Not tried yet, or waiting for deps.
    Waiting,
    /// A try is under way.
    Trying,
    /// The last try failed; it may have tries left.
    Failed,
    Passed,
    Fixed,
    /// Never tried: by the dep that did not pass, or else the stop.
    Blocked {
        by: Option<JobId>,
        reason: Option<StopReason>,
    },
}

/// A job's phase handed to the driver and not reported yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flight {
    /// None.
    Landed,
    /// Handed out at `since`.
    Flying { phase: Phase, since: Nanos },
    /// Given up on (over its time limit): its report will not count, and
    /// a retry may be owed once it comes back.
    Abandoned {
        phase: Phase,
        since: Nanos,
        retry_owed: bool,
    },
}

impl Flight {
    fn phase(self) -> Option<Phase> {
        match self {
            Flight::Landed => None,
            Flight::Flying { phase, .. } | Flight::Abandoned { phase, .. } => Some(phase),
        }
    }
}

/// A time since the run's start in nanoseconds (584 years at most), half
/// a `Duration`: a million jobs keep three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Nanos(u64);

impl Nanos {
    const ZERO: Nanos = Nanos(0);

    fn of(time: Duration) -> Nanos {
        Nanos(nanos(time))
    }

    fn get(self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

#[derive(Clone, Debug)]
struct JobState {
    progress: Progress,
    flight: Flight,
    tries_used: u32,
    /// Deps that have not passed yet; the job is ready at 0.
    unpassed_deps: u32,
    /// Earliest start of the next try.
    not_before: Nanos,
    /// Time spent in phases so far.
    busy: Nanos,
    /// Its run has executed (in any try): a pass is a fix.
    ran: bool,
    last_error: Option<Box<Failure>>,
}

impl JobState {
    /// Whether `task` is this job's phase in flight.
    fn is_flying(&self, task: Task) -> bool {
        self.flight.phase() == Some(task.phase) && self.tries_used == task.attempt
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    /// Checking, running, retrying.
    Main,
    /// Handing out cleanups, most recent run first.
    Cleanup,
    /// Over; cleanup may still be started by hand.
    Over,
}

/// The scheduler of one run: see the [engine docs](crate::engine).
///
/// Semantics, which every driver reproduces:
/// - a job is tried only when all its deps have passed; a try is check,
///   and if that fails, run then recheck;
/// - with one phase in flight at a time, tries come in rounds; a round
///   takes the jobs in the reference order and tries each at most once;
///   jobs unblocked by a pass earlier in the round are tried in that round;
///   another round starts while a failed job has tries left. With more in
///   flight, ready jobs start in the reference order as slots free up and
///   a failed job is retried as soon as its delay allows;
/// - a job is not tried again before its retry delay has passed since its
///   previous try ended;
/// - jobs never tried because a dep did not pass end up blocked.
#[derive(Debug)]
pub struct Machine {
    /// Shared, so a finished run can lend it out without its machine.
    plan: Arc<Plan>,
    config: MachineConfig,
    jobs: Vec<JobState>,
    ready: ReadyQueue,
    timers: Timers,
    groups: Groups,
    cleanups: Cleanups,
    /// One at a time: jobs whose try failed in this round, for the next.
    retry_next_round: Vec<JobId>,
    /// Next phases of tries under way, handed out before any new try.
    continuations: VecDeque<Task>,
    /// Phases to abandon, to tell the driver.
    to_abandon: VecDeque<Task>,
    /// Phases abandoned at their time limit that have not come back, and
    /// whether observers were told the run waits only for them.
    over_limit: Vec<(Task, bool)>,
    in_flight: usize,
    round: u32,
    stage: Stage,
    stopped: Option<StopReason>,
    /// The latest time the machine was told, in nanoseconds as its phase
    /// records keep times: one comparison per phase, not a `Duration`'s two.
    last_seen: Nanos,
    /// When the latest phase came back.
    last_landing: Nanos,
    /// When the run stopped, if it did for a reason the machine saw arise
    /// (the deadline, a final failure); a cancel is known only when told.
    stopped_at: Option<Duration>,
    events: VecDeque<Event>,
    /// Every phase record so far, for the report.
    phase_log: PhaseLog,
    /// The worker elsewhere that performed each try, by job and try, when
    /// the driver names one ([`handle_outcome_by`](Self::handle_outcome_by));
    /// empty in a local run.
    performers: BTreeMap<(JobId, u32), String>,
    /// No events are recorded until the main stage ends: nobody reads them.
    main_events_muted: bool,
}

impl Machine {
    /// A machine ready to schedule `plan`.
    ///
    /// # Panics
    /// If `config.workers` is 0: drivers check their own input
    /// before building a machine.
    #[must_use]
    pub fn new(plan: Plan, config: MachineConfig) -> Machine {
        assert!(config.workers > 0, "workers must be at least 1");
        let jobs: Vec<JobState> = plan
            .ids()
            .map(|id| JobState {
                progress: Progress::Waiting,
                flight: Flight::Landed,
                tries_used: 0,
                unpassed_deps: u32::try_from(plan.deps(id).len()).expect("too many deps"),
                not_before: Nanos::ZERO,
                busy: Nanos::ZERO,
                ran: false,
                last_error: None,
            })
            .collect();
        let mut ready = ReadyQueue::new(&plan, config.workers > 1);
        for id in plan.ids().filter(|id| jobs[id.index()].unpassed_deps == 0) {
            ready.push(id);
        }
        Machine {
            groups: Groups::new(plan.group_names().len()),
            plan: Arc::new(plan),
            timers: Timers::new(config.deadline),
            config,
            jobs,
            ready,
            cleanups: Cleanups::default(),
            retry_next_round: Vec::new(),
            continuations: VecDeque::new(),
            to_abandon: VecDeque::new(),
            over_limit: Vec::new(),
            in_flight: 0,
            round: 1,
            stage: Stage::Main,
            stopped: None,
            last_seen: Nanos::ZERO,
            last_landing: Nanos::ZERO,
            stopped_at: None,
            events: VecDeque::from([Event::RoundStarted { round: 1 }]),
            phase_log: PhaseLog::default(),
            performers: BTreeMap::new(),
            main_events_muted: false,
        }
    }

    /// Allows at most `limit` jobs of the concurrency group `group` in a
    /// try at once. A group no job of the plan belongs to is ignored.
    ///
    /// # Panics
    /// If `limit` is 0: drivers check their own input.
    pub fn limit_group(&mut self, group: &str, limit: usize) {
        assert!(limit > 0, "group limits must be at least 1");
        if let Some(index) = self
            .plan
            .group_names()
            .iter()
            .position(|known| known == group)
        {
            self.groups.limit(index, limit);
        }
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The plan being run, to keep after the machine is gone.
    pub(crate) fn shared_plan(&self) -> Arc<Plan> {
        Arc::clone(&self.plan)
    }

    /// The most phases that can ever be in flight at once: `workers`,
    /// or fewer when the plan has fewer jobs with phases, or its
    /// concurrency groups hold them back. Drivers start no more workers.
    ///
    /// ```
    /// use dojobber::JobKind;
    /// use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, Plan};
    ///
    /// let mut specs: Vec<JobSpec> = (0..3)
    ///     .map(|n| JobSpec { group: Some("apt".into()), ..JobSpec::new(format!("pkg{n}")) })
    ///     .collect();
    /// // A dummy root, which has no phases to perform.
    /// specs.push(JobSpec { deps: vec![0, 1, 2], kind: JobKind::Dummy, ..JobSpec::new("all") });
    /// let (plan, _) = Plan::new(specs, 3, Defaults::default())?;
    /// let mut machine = Machine::new(plan, MachineConfig { workers: 100, ..MachineConfig::default() });
    /// assert_eq!(machine.most_in_flight(), 3);
    /// machine.limit_group("apt", 1);
    /// assert_eq!(machine.most_in_flight(), 1);
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    #[must_use]
    pub fn most_in_flight(&self) -> usize {
        let mut ungrouped = 0usize;
        let mut per_group = vec![0usize; self.plan.group_names().len()];
        for id in self.plan.ids() {
            if self.plan.kind(id) == JobKind::Dummy || self.plan.broken(id).is_some() {
                continue;
            }
            match self.plan.group(id) {
                Some(group) => per_group[group] += 1,
                None => ungrouped += 1,
            }
        }
        let grouped: usize = per_group
            .iter()
            .enumerate()
            .map(|(group, &members)| self.groups.room(group, members))
            .sum();
        (ungrouped + grouped).clamp(1, self.config.workers)
    }

    /// The earliest time at which [`poll`](Self::poll) may answer
    /// differently without a report: a retry's delay, a phase's time
    /// limit, the run's deadline. A driver whose workers are all busy
    /// keeps one watcher that polls then.
    #[must_use]
    pub fn next_timer(&self) -> Option<Duration> {
        let running = self.stopped.is_none();
        let timer = self.timers.earliest(running, running);
        match self.retry_waiting_in_place().filter(|_| running) {
            Some(retry) => Some(timer.map_or(retry, |timer| timer.min(retry))),
            None => timer,
        }
    }

    /// One at a time, a job retried in a new round waits for its delay at
    /// the head of the ready queue, not in the timers: when it may start.
    fn retry_waiting_in_place(&self) -> Option<Duration> {
        if !self.in_rounds() {
            return None;
        }
        let job = self.ready.next_up()?;
        let not_before = self.jobs[job.index()].not_before;
        (not_before > self.last_seen).then(|| not_before.get())
    }

    /// The configuration the machine was made with.
    pub fn config(&self) -> MachineConfig {
        self.config
    }

    fn in_rounds(&self) -> bool {
        self.config.workers == 1
    }

    /// Decides what the driver does next, at time `now`.
    ///
    /// Phases of tries under way come first, then new tries in the
    /// reference order, up to `workers` phases at once.
    ///
    /// When the run has nothing left to do but wait for phases abandoned
    /// at their time limit (which a thread cannot stop), it says so once
    /// for each ([`Event::WaitingForAbandoned`]).
    pub fn poll(&mut self, now: Duration) -> Step {
        let step = self.decide(now);
        if matches!(step, Step::Idle) && !self.over_limit.is_empty() {
            self.tell_waiting_for_abandoned();
        }
        step
    }

    /// [`poll`](Self::poll)'s decision.
    fn decide(&mut self, now: Duration) -> Step {
        // Made once: the phase handed out starts then too.
        let now_nanos = Nanos::of(now);
        self.last_seen = self.last_seen.max(now_nanos);
        if self.timers.deadline_passed(now) {
            let deadline = self.timers.deadline().expect("a deadline passed");
            self.stop_at(StopReason::Deadline, Some(deadline));
        }
        self.expire_phases(now);
        while let Some(task) = self.to_abandon.pop_front() {
            // Skipped if it reported meanwhile.
            if self.jobs[task.job.index()].is_flying(task) {
                return Step::Abandon(task);
            }
        }
        loop {
            if self.in_flight >= self.config.workers {
                return self.until_something_changes(now, false);
            }
            if let Some(task) = self.continuations.pop_front() {
                return self.hand_out(task, now, now_nanos);
            }
            match self.stage {
                Stage::Main => {
                    if let Some(step) = self.next_in_main(now) {
                        return step;
                    }
                }
                Stage::Cleanup => {
                    if self.in_flight > 0 {
                        return Step::Idle;
                    }
                    match self.cleanups.next() {
                        Some(job) => {
                            let attempt = self.jobs[job.index()].tries_used;
                            let task = Task {
                                job,
                                phase: Phase::Cleanup,
                                attempt,
                            };
                            return self.hand_out(task, now, now_nanos);
                        }
                        None => {
                            self.stage = Stage::Over;
                            self.emit(Event::CleanupFinished);
                        }
                    }
                }
                Stage::Over => {
                    return if self.in_flight > 0 {
                        Step::Idle
                    } else {
                        Step::Done
                    };
                }
            }
        }
    }

    /// One decision of the main stage: a step for the driver, or `None`
    /// when the machine moved on by itself (a try started without user
    /// code, a new round, the end of the run) and should look again.
    fn next_in_main(&mut self, now: Duration) -> Option<Step> {
        if self.stopped.is_some() {
            if self.in_flight > 0 {
                return Some(self.until_something_changes(now, false));
            }
            self.end_main();
            return None;
        }
        while let Some(job) = self.timers.pop_due_retry(now) {
            self.ready.push(job);
        }
        if let Some(job) = self.ready.peek() {
            let not_before = self.jobs[job.index()].not_before.get();
            if not_before > now {
                // One at a time, the reference order waits in place.
                debug_assert!(self.in_rounds());
                return Some(self.wait_until(not_before));
            }
            self.ready.pop();
            match self.plan.group(job) {
                Some(group) if self.groups.is_full(group) => self.groups.hold(group, job),
                _ => self.start_try(job),
            }
            return None;
        }
        if self.in_flight > 0 {
            return Some(self.until_something_changes(now, true));
        }
        if let Some(at) = self.timers.next_retry() {
            return Some(self.wait_until(at));
        }
        if !self.retry_next_round.is_empty() {
            self.round += 1;
            self.emit(Event::RoundStarted { round: self.round });
            for job in std::mem::take(&mut self.retry_next_round) {
                self.ready.push(job);
            }
            return None;
        }
        self.end_main();
        None
    }

    /// `Wait` until `at`, or until the run's deadline if that comes first.
    fn wait_until(&self, at: Duration) -> Step {
        Step::Wait(
            self.timers
                .deadline()
                .map_or(at, |deadline| deadline.min(at)),
        )
    }

    /// `Wait` until the earliest time something can change without a
    /// report (a retry's delay if a slot is free, a phase's time limit, the
    /// run's deadline), or `Idle` when only a report can change anything.
    fn until_something_changes(&self, now: Duration, slot_free: bool) -> Step {
        let running = self.stopped.is_none();
        // A passed deadline has already stopped the run.
        let deadline = running && !self.timers.deadline_passed(now);
        match self.timers.earliest(slot_free && running, deadline) {
            Some(at) => Step::Wait(at.max(now)),
            None => Step::Idle,
        }
    }

    /// Tells the machine how a phase it handed out (`task`) went, at time
    /// `now`, performed here ([`Performer::Here`]).
    ///
    /// Fails, changing nothing, when that task is not in flight.
    pub fn handle_outcome(
        &mut self,
        task: Task,
        outcome: Outcome,
        now: Duration,
    ) -> Result<(), MachineError> {
        self.handle_outcome_by(task, outcome, Performer::Here, now)
    }

    /// Like [`handle_outcome`](Self::handle_outcome), saying who performed
    /// the phase: a worker elsewhere is kept for the phase's try (the
    /// first the try names; [`JobReport::performed_by`](crate::report::JobReport::performed_by)),
    /// and a phase performed by nobody is recorded as not `performed`.
    /// Nothing else changes with it: the machine decides nothing by who.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, Performer, Plan, Step};
    /// use dojobber::Outcome;
    ///
    /// let (plan, _) = Plan::new(vec![JobSpec::new("Web")], 0, Defaults::default())?;
    /// let mut machine = Machine::new(plan, MachineConfig::default());
    /// let Step::Perform(task) = machine.poll(Duration::ZERO) else { unreachable!() };
    /// let web1 = Performer::Worker("web1".into());
    /// machine.handle_outcome_by(task, Outcome::Pass, web1, Duration::from_secs(1))?;
    /// let report = machine.into_report_card();
    /// assert_eq!(report.job("Web").unwrap().performed_by(1), Some("web1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Fails, changing nothing, when that task is not in flight.
    pub fn handle_outcome_by(
        &mut self,
        task: Task,
        outcome: Outcome,
        performer: Performer,
        now: Duration,
    ) -> Result<(), MachineError> {
        let Task { job, phase, .. } = task;
        let Some(state) = self.jobs.get_mut(job.index()) else {
            return Err(MachineError::UnexpectedReport {
                job: job.to_string(),
                phase,
            });
        };
        if !state.is_flying(task) {
            return Err(MachineError::UnexpectedReport {
                job: self.plan.name(job).to_owned(),
                phase,
            });
        }
        // In nanoseconds, as the phase's record and the job's busy time keep
        // them: no `Duration` is made and taken apart again on the way.
        let end = Nanos::of(now);
        self.last_seen = self.last_seen.max(end);
        self.last_landing = self.last_landing.max(end);
        let flight = std::mem::replace(&mut state.flight, Flight::Landed);
        let (Flight::Flying { since, .. } | Flight::Abandoned { since, .. }) = flight else {
            unreachable!("a phase in flight is flying or abandoned")
        };
        state.busy = Nanos(state.busy.0.saturating_add(end.0.saturating_sub(since.0)));
        let attempt = state.tries_used;
        let this_phase = Task {
            job,
            phase,
            attempt,
        };
        self.in_flight -= 1;
        let by_nobody = match performer {
            Performer::Here => false,
            Performer::Worker(name) => {
                self.performers.entry((job, attempt)).or_insert(name);
                false
            }
            Performer::Nobody => true,
        };
        if let Flight::Abandoned { retry_owed, .. } = flight {
            self.came_back(this_phase, since.get(), retry_owed, now);
            return Ok(());
        }
        if phase != Phase::Cleanup
            && let Some(limit) = self.plan.time_limit(job)
            && now.saturating_sub(since.get()) > limit
        {
            // A driver with no watcher reports it late: its record ends at
            // the limit, as when a watcher gives up on it there, and the
            // error says when it really returned.
            let mut failure = timed_out(limit);
            say_returned_after(&mut failure, now.saturating_sub(since.get()));
            let outcome = Outcome::Fail(failure.clone());
            let at_limit = Nanos::of(since.get() + limit);
            self.finish_phase(this_phase, since, outcome, now, at_limit);
            self.try_failed(job, failure, now);
            return Ok(());
        }
        // The phase's record takes the failure; it is copied only when it
        // also ends the try, not for a check that fails on the way to a run.
        let passed = outcome.is_pass();
        if by_nobody {
            self.phase_over(this_phase, since, outcome, now, end, false);
        } else {
            self.finish_phase(this_phase, since, outcome, now, end);
        }
        if phase == Phase::Cleanup {
            if !passed {
                self.cleanups.failed(CleanupFailure {
                    job: self.plan.name(job).to_owned(),
                    error: self.last_recorded_failure(job),
                });
            }
            return Ok(());
        }
        let kind = self.plan.kind(job);
        if phase == Phase::Run {
            self.jobs[job.index()].ran = true;
            self.cleanups.ran(job);
        }
        if let Some(next) = next_phase(kind, phase, passed, self.config.no_act) {
            self.continue_try(job, next);
            return Ok(());
        }
        if kind == JobKind::RunOnly && phase == Phase::Run {
            // A run-only job has no check: its run's outcome is the recheck's.
            let recheck = Task {
                job,
                phase: Phase::Recheck,
                attempt,
            };
            let outcome = match passed {
                true => Outcome::Pass,
                false => Outcome::Fail(self.last_recorded_failure(job)),
            };
            self.phase_over(recheck, end, outcome, now, end, false);
        }
        if passed {
            self.job_passed(job);
        } else {
            let failure = self.last_recorded_failure(job);
            self.try_failed(job, failure, now);
        }
        Ok(())
    }

    /// A copy of the failure of `job`'s phase recorded last, which failed.
    fn last_recorded_failure(&self, job: JobId) -> Failure {
        let (last_job, last) = self.phase_log.last().expect("a phase was recorded");
        assert_eq!(last_job, job, "the phase recorded last is the job's");
        last.error
            .as_deref()
            .cloned()
            .expect("the phase recorded last failed")
    }

    /// Records no more events until the main stage is over (every job has
    /// its status), and drops those of it not yet taken: only the
    /// cleanups' events follow. For drivers whose
    /// observers read only those (a quiet printer prints only a failing
    /// cleanup), so a large run makes no event per phase. Scheduling is
    /// unchanged.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, Plan, Step};
    /// use dojobber::Outcome;
    /// use dojobber::observe::Event;
    ///
    /// let (plan, _) = Plan::new(vec![JobSpec::new("Only")], 0, Defaults::default())?;
    /// let mut machine = Machine::new(plan, MachineConfig::default());
    /// machine.mute_main_events();
    /// let Step::Perform(task) = machine.poll(Duration::ZERO) else { unreachable!() };
    /// machine.handle_outcome(task, Outcome::Pass, Duration::ZERO)?;
    /// assert!(matches!(machine.poll(Duration::ZERO), Step::Done));
    /// // Only the cleanup stage's end, with nothing to clean.
    /// assert_eq!(machine.poll_event(), Some(Event::CleanupFinished));
    /// assert_eq!(machine.poll_event(), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mute_main_events(&mut self) {
        self.main_events_muted = true;
        if self.stage == Stage::Main {
            self.events.clear();
        }
    }

    /// The next event not yet taken, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether [`poll_event`](Self::poll_event) has an event: most of a
    /// driver's turns have none (the main stage's are muted when nobody
    /// reads them), and skip publishing.
    /// Inlined into the drivers' generic `step`, which is compiled in the
    /// user's crate: otherwise a call across crates on every turn.
    #[inline]
    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Stops the run: no new try starts, and unless the reason is
    /// fail-fast, no new phase either: tries under way end with their
    /// phase in flight, which finishes (an async driver may cancel it and
    /// report it failed). Cleanups still run. Jobs never tried are reported
    /// blocked with the reason. Stopping a stopped run changes nothing.
    pub fn stop(&mut self, reason: StopReason) {
        self.stop_at(reason, None);
    }

    /// [`stop`](Self::stop), for a reason that arose at time `at`.
    fn stop_at(&mut self, reason: StopReason, at: Option<Duration>) {
        if self.stopped.is_some() || self.stage != Stage::Main {
            return;
        }
        self.stopped = Some(reason);
        self.stopped_at = at;
        // Failed jobs waiting for a retry will not get it: those queued for
        // the next round or for their delay, and those already back in
        // line (a new round, or held by their group).
        let queued_again = self
            .ready
            .drain()
            .into_iter()
            .chain(self.groups.drain_held())
            .filter(|job| self.jobs[job.index()].progress == Progress::Failed)
            .collect::<Vec<_>>();
        let waiting: Vec<JobId> = self
            .retry_next_round
            .drain(..)
            .chain(self.timers.drain_retries())
            .chain(queued_again)
            .collect();
        for job in waiting {
            self.retry_denied(job);
        }
        if !reason.lets_tries_finish() {
            for task in std::mem::take(&mut self.continuations) {
                self.try_interrupted(task.job, reason);
            }
            // The phases in flight: the driver cancels those it can. Their
            // outcome still counts, whether cancelled or not.
            for (index, state) in self.jobs.iter().enumerate() {
                if let Flight::Flying { phase, .. } = state.flight {
                    self.to_abandon.push_back(Task {
                        job: JobId::from_index(index),
                        phase,
                        attempt: state.tries_used,
                    });
                }
            }
        }
    }

    /// Why the run stopped early, if it did.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Starts the cleanups after a run made with `cleanup: false`;
    /// [`poll`](Self::poll) then hands them out.
    pub fn start_cleanup(&mut self) -> Result<(), MachineError> {
        if self.stage != Stage::Over {
            return Err(MachineError::CleanupNotAllowed("the run is not over"));
        }
        if self.cleanups.is_done() {
            return Err(MachineError::CleanupNotAllowed("it has already run"));
        }
        if self.config.no_act {
            return Err(MachineError::CleanupNotAllowed(
                "no-act runs have nothing to clean",
            ));
        }
        self.cleanups.start(self.plan.len());
        self.stage = Stage::Cleanup;
        Ok(())
    }

    /// Whether the main run is over (every job has its final status).
    pub fn is_run_over(&self) -> bool {
        self.stage != Stage::Main
    }

    /// The round under way (or the last one), from 1.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// How many phases are in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Where every job stands now; final once [`poll`](Self::poll) said `Done`.
    #[must_use]
    pub fn report_card(&self) -> Report {
        let mut table = self.new_table();
        for id in self.plan.ids() {
            let last_error = self.jobs[id.index()].last_error.as_deref().cloned();
            self.push_job(&mut table, id, last_error);
        }
        let (phases, ends) = self.phase_log.clone().into_job_order(self.jobs.len());
        table.set_phases(phases, ends);
        self.report_of(table, self.stopped, self.last_seen.get())
    }

    /// The report if the program ended at `now` without waiting for the
    /// phases in flight: what a program writes when told to exit at once.
    /// A job with a try under way has failed, interrupted by the stop (or
    /// by a cancel, if the run was not stopped); a job never tried is
    /// blocked, as at the end of a run. Cleanups have not run: the jobs'
    /// records show none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dojobber::{FailureKind, Status, StopReason};
    /// use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, Plan, Step};
    ///
    /// let specs = vec![JobSpec::new("Hangs"), JobSpec { deps: vec![0], ..JobSpec::new("Root") }];
    /// let (plan, _) = Plan::new(specs, 1, Defaults::default())?;
    /// let mut machine = Machine::new(plan, MachineConfig::default());
    /// let Step::Perform(_hangs) = machine.poll(Duration::ZERO) else { unreachable!() };
    /// machine.stop(StopReason::Cancelled);
    /// let report = machine.report_if_ended_now(Duration::from_secs(3));
    /// let hangs = report.job("Hangs").unwrap();
    /// assert_eq!(hangs.status(), Status::Failed);
    /// assert_eq!(hangs.last_error().unwrap().kind, FailureKind::Interrupted(StopReason::Cancelled));
    /// assert_eq!(report.job("Root").unwrap().blocked_by(), Some("Hangs"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn report_if_ended_now(&self, now: Duration) -> Report {
        let reason = self.stopped.unwrap_or(StopReason::Cancelled);
        let mut table = self.new_table();
        let mut ended = Vec::with_capacity(self.jobs.len());
        for id in self.plan.ids() {
            let state = &self.jobs[id.index()];
            let mut last_error = state.last_error.as_deref().cloned();
            let progress = match state.progress {
                Progress::Trying => {
                    let during = match state.flight {
                        Flight::Flying { phase, .. } => {
                            format!("its {phase}, which never returned")
                        }
                        Flight::Landed | Flight::Abandoned { .. } => "its try".to_owned(),
                    };
                    let failure = Failure::new(format!("{reason} during {during}"))
                        .with_kind(FailureKind::Interrupted(reason));
                    last_error = Some(failure);
                    Progress::Failed
                }
                Progress::Waiting => {
                    // Deps come first in the reference order: theirs is known.
                    let by = self.plan.deps(id).iter().copied().find(|dep| {
                        matches!(
                            ended[dep.index()],
                            Progress::Failed | Progress::Blocked { .. }
                        )
                    });
                    Progress::Blocked {
                        by,
                        reason: by.is_none().then_some(reason),
                    }
                }
                progress => progress,
            };
            if let Flight::Abandoned { since, .. } = state.flight
                && let Some(error) = &mut last_error
                && error.kind == FailureKind::TimedOut
            {
                let took = humane(now.saturating_sub(since.get()));
                let _ = write!(error.message, " (it had not returned after {took})");
            }
            ended.push(progress);
            self.push_job_as(&mut table, id, progress, last_error);
        }
        let (phases, ends) = self.phase_log.clone().into_job_order(self.jobs.len());
        table.set_phases(phases, ends);
        self.report_of(table, Some(reason), self.last_seen.get().max(now))
    }

    /// The report, taking the phase records and the jobs' last errors out
    /// of the machine instead of copying them. The job states are freed
    /// before the phase records are put in job order, so a large run does
    /// not hold both at once.
    #[must_use]
    pub fn into_report_card(mut self) -> Report {
        let mut table = self.new_table();
        for id in self.plan.ids() {
            let last_error = self.jobs[id.index()].last_error.take();
            self.push_job(&mut table, id, last_error.map(|failure| *failure));
        }
        let job_count = self.jobs.len();
        self.jobs = Vec::new();
        let phase_log = std::mem::take(&mut self.phase_log);
        let (phases, ends) = phase_log.into_job_order(job_count);
        table.set_phases(phases, ends);
        self.report_of(table, self.stopped, self.last_seen.get())
    }

    /// An empty table for every job of the plan.
    fn new_table(&self) -> ReportTable {
        let plan = &self.plan;
        let name_bytes = plan.ids().map(|id| plan.name(id).len()).sum();
        let dep_count = plan.ids().map(|id| plan.deps(id).len()).sum();
        ReportTable::new(self.plan.len(), name_bytes, dep_count)
    }

    /// Adds job `id` to `table`, with its last error.
    fn push_job(&self, table: &mut ReportTable, id: JobId, last_error: Option<Failure>) {
        let progress = self.jobs[id.index()].progress;
        self.push_job_as(table, id, progress, last_error);
    }

    /// Adds job `id` to `table` as standing at `progress`.
    fn push_job_as(
        &self,
        table: &mut ReportTable,
        id: JobId,
        progress: Progress,
        last_error: Option<Failure>,
    ) {
        let state = &self.jobs[id.index()];
        let (status, blocked_by, blocked_reason) = match progress {
            Progress::Passed => (Status::Passed, None, None),
            Progress::Fixed => (Status::Fixed, None, None),
            Progress::Failed => (Status::Failed, None, None),
            Progress::Blocked { by, reason } => (Status::Blocked, by, reason),
            Progress::Waiting | Progress::Trying => (Status::Pending, None, None),
        };
        let job = NewJob {
            name: self.plan.name(id),
            status,
            tries: state.tries_used,
            time: state.busy.get(),
            last_error,
            blocked_by: blocked_by.map(JobId::index),
            blocked_reason,
            performed_by: self.performed_by(id),
        };
        let deps = self.plan.deps(id).iter().map(|dep| dep.index());
        table.push(job, deps);
    }

    /// Who performed each try of job `id` (try 1 first, one per try
    /// used), when a worker elsewhere performed any; empty otherwise.
    fn performed_by(&self, id: JobId) -> Vec<Option<String>> {
        let mut tries = Vec::new();
        for (&(_, attempt), name) in self.performers.range((id, 0)..=(id, u32::MAX)) {
            let at = attempt.saturating_sub(1) as usize;
            if tries.len() <= at {
                tries.resize(at + 1, None);
            }
            tries[at] = Some(name.clone());
        }
        if !tries.is_empty() {
            let used = self.jobs[id.index()].tries_used as usize;
            tries.resize(tries.len().max(used), None);
        }
        tries
    }

    /// The report of the whole run, with `jobs` in the reference order,
    /// stopped for `stopped` after `elapsed`.
    fn report_of(
        &self,
        jobs: ReportTable,
        stopped: Option<StopReason>,
        elapsed: Duration,
    ) -> Report {
        let rounds = if self.in_rounds() {
            self.round
        } else {
            jobs.most_tries()
        };
        let cleanup_failure = self.cleanups.failure().cloned();
        Report::new(
            self.config.no_act,
            rounds,
            elapsed,
            stopped,
            cleanup_failure,
            jobs,
        )
    }

    /// Hands `task` out at `now`, which is `since` in nanoseconds.
    fn hand_out(&mut self, task: Task, now: Duration, since: Nanos) -> Step {
        let state = &mut self.jobs[task.job.index()];
        debug_assert_eq!(state.flight, Flight::Landed);
        state.flight = Flight::Flying {
            phase: task.phase,
            since,
        };
        self.in_flight += 1;
        if task.phase != Phase::Cleanup
            && let Some(limit) = self.plan.time_limit(task.job)
        {
            self.timers.limit_phase(task, now + limit);
        }
        self.emit(Event::PhaseStarted { task, at: now });
        Step::Perform(task)
    }

    /// Gives up on phases in flight past their time limit: their try fails
    /// now, and the driver is told to abandon them.
    fn expire_phases(&mut self, now: Duration) {
        loop {
            let jobs = &self.jobs;
            let flying = |task: Task| {
                let state = &jobs[task.job.index()];
                state.is_flying(task) && matches!(state.flight, Flight::Flying { .. })
            };
            let Some(task) = self.timers.pop_expired_phase(now, flying) else {
                return;
            };
            let limit = self
                .plan
                .time_limit(task.job)
                .expect("only limited phases have deadlines");
            let failure = timed_out(limit);
            let state = &mut self.jobs[task.job.index()];
            let Flight::Flying { phase, since } = state.flight else {
                unreachable!("only flying phases expire")
            };
            state.flight = Flight::Abandoned {
                phase,
                since,
                retry_owed: false,
            };
            self.to_abandon.push_back(task);
            self.over_limit.push((task, false));
            let outcome = Outcome::Fail(failure.clone());
            // The record ends at the limit, however late the watcher saw it.
            let at_limit = Nanos::of(since.get() + limit);
            self.finish_phase(task, since, outcome, now, at_limit);
            self.try_failed(task.job, failure, now);
        }
    }

    /// An abandoned phase reported: its job may now be retried. Its
    /// timeout, in its record and as the job's error, now says when it
    /// really returned: at the limit if the driver could cancel it, later
    /// if it ran on.
    fn came_back(&mut self, task: Task, since: Duration, retry_owed: bool, now: Duration) {
        let job = task.job;
        self.over_limit.retain(|(waited, _)| *waited != task);
        let took = now.saturating_sub(since);
        let state = &mut self.jobs[job.index()];
        if let Some(error) = &mut state.last_error
            && error.kind == FailureKind::TimedOut
        {
            say_returned_after(error, took);
        }
        if let Some(error) = self.phase_log.error_of(job, task) {
            say_returned_after(error, took);
        }
        if retry_owed {
            self.queue_retry(job);
        }
    }

    /// Tells observers, once for each, of the phases abandoned at their
    /// time limit when the run waits only for them. Recorded even when the
    /// main events are muted: someone should know why the run goes on.
    fn tell_waiting_for_abandoned(&mut self) {
        if self.in_flight != self.over_limit.len() {
            return;
        }
        for (task, told) in &mut self.over_limit {
            if !*told {
                *told = true;
                let started = match self.jobs[task.job.index()].flight {
                    Flight::Abandoned { since, .. } => since.get(),
                    Flight::Landed | Flight::Flying { .. } => {
                        unreachable!("a phase over its limit is abandoned until it returns")
                    }
                };
                self.events.push_back(Event::WaitingForAbandoned {
                    task: *task,
                    started,
                });
            }
        }
    }

    /// A phase the driver performed is over: it started at `since`. One
    /// whose outcome was lost was performed by nobody the run knows of.
    fn finish_phase(
        &mut self,
        task: Task,
        since: Nanos,
        outcome: Outcome,
        at: Duration,
        end: Nanos,
    ) {
        let performed =
            !matches!(&outcome, Outcome::Fail(failure) if failure.kind == FailureKind::Lost);
        self.phase_over(task, since, outcome, at, end, performed);
    }

    /// A phase is over: observers get the event, the report its record.
    /// It ended at `at`, which is `end` in the record's nanoseconds.
    fn phase_over(
        &mut self,
        task: Task,
        start: Nanos,
        outcome: Outcome,
        at: Duration,
        end: Nanos,
        performed: bool,
    ) {
        // The record takes the failure; it is copied only when the event,
        // which keeps the outcome, is recorded too.
        let (error, event_outcome) = match (outcome, self.records_events()) {
            (Outcome::Pass, records) => (None, records.then_some(Outcome::Pass)),
            (Outcome::Fail(failure), true) => (
                Some(Box::new(failure.clone())),
                Some(Outcome::Fail(failure)),
            ),
            (Outcome::Fail(failure), false) => (Some(Box::new(failure)), None),
        };
        let record = PhaseRecord {
            phase: task.phase,
            attempt: task.attempt,
            start_nanos: start.0,
            end_nanos: end.0,
            passed: error.is_none(),
            performed,
            error,
        };
        self.phase_log.push(task.job, record);
        if let Some(outcome) = event_outcome {
            self.events.push_back(Event::PhaseFinished {
                task,
                outcome,
                at,
                performed,
            });
        }
    }

    /// Whether events are recorded now: always, except in the main stage
    /// after [`mute_main_events`](Self::mute_main_events).
    fn records_events(&self) -> bool {
        !self.main_events_muted || self.stage != Stage::Main
    }

    /// Records `event` for [`poll_event`](Self::poll_event), if events are
    /// recorded now.
    fn emit(&mut self, event: Event) {
        if self.records_events() {
            self.events.push_back(event);
        }
    }

    fn continue_try(&mut self, job: JobId, phase: Phase) {
        if let Some(reason) = self.stopped
            && !reason.lets_tries_finish()
        {
            self.try_interrupted(job, reason);
            return;
        }
        let attempt = self.jobs[job.index()].tries_used;
        self.continuations.push_back(Task {
            job,
            phase,
            attempt,
        });
    }

    fn start_try(&mut self, job: JobId) {
        let state = &mut self.jobs[job.index()];
        assert!(
            matches!(state.progress, Progress::Waiting | Progress::Failed),
            "a job is tried only while it is not done"
        );
        if let Some(message) = self.plan.broken(job) {
            self.fail_for_good(job, Some(Failure::new(message)));
            self.after_final_failure(self.last_seen.get());
            return;
        }
        state.progress = Progress::Trying;
        state.tries_used += 1;
        let attempt = state.tries_used;
        if let Some(group) = self.plan.group(job) {
            self.groups.enter(group);
        }
        self.emit(Event::TryStarted { job, attempt });
        let check = Task {
            job,
            phase: Phase::Check,
            attempt,
        };
        let end = self.last_seen;
        let now = end.get();
        let kind = self.plan.kind(job);
        let first = first_phase(kind, self.config.no_act);
        match (kind, first) {
            (JobKind::Normal, Some(first)) => self.continue_try(job, first),
            (JobKind::Dummy, _) => {
                self.phase_over(check, end, Outcome::Pass, now, end, false);
                self.job_passed(job);
            }
            (JobKind::RunOnly | JobKind::Normal, first) => {
                let why = match first {
                    Some(_) => "run-only jobs have no check",
                    None => "run-only jobs cannot pass in no-act mode",
                };
                let failure = Failure::new(why);
                self.phase_over(check, end, Outcome::Fail(failure.clone()), now, end, false);
                match first {
                    Some(first) => self.continue_try(job, first),
                    None => self.try_failed(job, failure, now),
                }
            }
        }
    }

    /// A try is over: its job leaves its concurrency group.
    fn try_ended(&mut self, job: JobId) {
        if let Some(group) = self.plan.group(job) {
            for held in self.groups.leave(group) {
                self.ready.push(held);
            }
        }
    }

    fn job_passed(&mut self, job: JobId) {
        self.try_ended(job);
        let state = &mut self.jobs[job.index()];
        state.progress = if state.ran {
            Progress::Fixed
        } else {
            Progress::Passed
        };
        let status = if state.ran {
            Status::Fixed
        } else {
            Status::Passed
        };
        let tries = state.tries_used;
        self.emit(Event::JobFinished { job, status, tries });
        for &dependent in self.plan.dependents(job) {
            let waiting = &mut self.jobs[dependent.index()].unpassed_deps;
            *waiting -= 1;
            if *waiting == 0 {
                // Dependents come later in the reference order, so this
                // round still reaches them.
                self.ready.push(dependent);
            }
        }
    }

    fn try_failed(&mut self, job: JobId, failure: Failure, now: Duration) {
        self.try_ended(job);
        let state = &mut self.jobs[job.index()];
        state.progress = Progress::Failed;
        state.last_error = Some(Box::new(failure));
        state.not_before = Nanos::of(now + self.plan.retry_delay(job));
        let tries = state.tries_used;
        let retry = !self.config.no_act && tries < self.plan.tries(job) && self.stopped.is_none();
        if !retry {
            self.fail_for_good(job, None);
            self.after_final_failure(now);
        } else if let Flight::Abandoned { retry_owed, .. } = &mut state.flight {
            *retry_owed = true;
        } else {
            self.queue_retry(job);
        }
    }

    /// A try cut short by a stop before its next phase: the job fails, for good.
    /// A phase of it whose outcome was lost (a remote worker gone silent)
    /// is named: it is why the try never got further.
    fn try_interrupted(&mut self, job: JobId, reason: StopReason) {
        self.try_ended(job);
        let lost = self
            .phase_log
            .last()
            .filter(|(last_job, _)| *last_job == job)
            .and_then(|(_, record)| record.error.as_deref())
            .filter(|error| error.kind == FailureKind::Lost);
        let message = match lost {
            Some(lost) => format!("{reason} during its try, whose last phase was lost: {lost}"),
            None => format!("{reason} during its try"),
        };
        let failure = Failure::new(message).with_kind(FailureKind::Interrupted(reason));
        self.fail_for_good(job, Some(failure));
    }

    fn queue_retry(&mut self, job: JobId) {
        if self.stopped.is_some() {
            self.retry_denied(job);
        } else if self.in_rounds() {
            self.retry_next_round.push(job);
        } else {
            let at = self.jobs[job.index()].not_before.get();
            self.timers.retry_at(job, at);
        }
    }

    /// A failed job that was owed a retry will not get it: the run stopped.
    fn retry_denied(&mut self, job: JobId) {
        self.fail_for_good(job, None);
    }

    /// The job has failed with no try to come: keeps why (when given, else
    /// its last try's error stands) and tells observers.
    fn fail_for_good(&mut self, job: JobId, failure: Option<Failure>) {
        let state = &mut self.jobs[job.index()];
        state.progress = Progress::Failed;
        if let Some(failure) = failure {
            state.last_error = Some(Box::new(failure));
        }
        let tries = state.tries_used;
        self.emit(Event::JobFinished {
            job,
            status: Status::Failed,
            tries,
        });
    }

    fn after_final_failure(&mut self, now: Duration) {
        if self.config.fail_fast {
            self.stop_at(StopReason::FailFast, Some(now));
        }
    }

    /// When the main run ended: after a stop, at the stop or when the last
    /// phase in flight then came back (a driver polls a little later;
    /// nothing ran meanwhile); else now.
    fn main_ended_at(&self) -> Duration {
        match self.stopped_at {
            Some(at) => at.max(self.last_landing.get()),
            None => self.last_seen.get(),
        }
    }

    /// Marks every job never tried as blocked, then moves on to cleanup.
    fn end_main(&mut self) {
        for id in self.plan.ids() {
            if self.jobs[id.index()].progress != Progress::Waiting {
                continue;
            }
            let by = self.plan.deps(id).iter().copied().find(|dep| {
                matches!(
                    self.jobs[dep.index()].progress,
                    Progress::Failed | Progress::Blocked { .. }
                )
            });
            let reason = match by {
                Some(_) => None,
                None => Some(
                    self.stopped
                        .expect("a ready job is left untried only by a stop"),
                ),
            };
            self.jobs[id.index()].progress = Progress::Blocked { by, reason };
            self.emit(Event::JobBlocked { job: id, by });
        }
        self.emit(Event::RunFinished {
            at: self.main_ended_at(),
        });
        self.stage = if self.config.cleanup && !self.config.no_act {
            self.cleanups.start(self.plan.len());
            Stage::Cleanup
        } else {
            Stage::Over
        };
    }
}

fn timed_out(limit: Duration) -> Failure {
    Failure::new(format!("timed out after {}", humane(limit))).with_kind(FailureKind::TimedOut)
}

/// Records in a timeout how long its phase really took, as a field
/// (`Failure::returned_after`) and, for people, in its message:
/// `timed out after 1s (it returned after 1.5s)`.
/// Nothing is added when it returned at the limit (a cancelled phase).
fn say_returned_after(timeout: &mut Failure, took: Duration) {
    let said = humane(took);
    if !timeout.message.ends_with(&format!(" {said}")) {
        let _ = write!(timeout.message, " (it returned after {said})");
        timeout.returned_after = Some(took);
    }
}

#[cfg(test)]
mod tests {
    /// A large run keeps one state per job for the whole run.
    #[test]
    fn job_states_stay_small() {
        assert!(size_of::<super::JobState>() <= 88);
    }
}
