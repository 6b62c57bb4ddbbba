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
//! use dojobber::{Defaults, JobSpec, Machine, MachineConfig, Outcome, Plan, Status, Step};
//!
//! let (plan, _) = Plan::new(vec![JobSpec::new("Only")], 0, Defaults::default())?;
//! let mut machine = Machine::new(plan, MachineConfig::default());
//! let now = Duration::ZERO;
//! loop {
//!     match machine.poll(now) {
//!         Step::Perform(task) => machine.report(task.job, task.phase, Outcome::Pass, now)?,
//!         Step::Wait(_) | Step::Idle => unreachable!("nothing waits in this example"),
//!         Step::Done => break,
//!     }
//! }
//! assert_eq!(machine.report_card().jobs[0].status, Status::Passed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use crate::event::{Event, Failure, Outcome};
use crate::job::{JobKind, Phase};
use crate::plan::{JobId, Plan};
use crate::report::{CleanupFailure, JobReport, Report, Status};

/// How the machine runs a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Only the first check of each job: no run, no retry, no cleanup.
    pub no_act: bool,
    /// Hand out cleanups when the run ends. When off, call
    /// [`Machine::start_cleanup`] later.
    pub cleanup: bool,
}

impl Default for MachineConfig {
    /// Acting, with cleanup.
    fn default() -> Self {
        MachineConfig {
            no_act: false,
            cleanup: true,
        }
    }
}

/// One phase of one job for the driver to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Task {
    /// Whose user code to call.
    pub job: JobId,
    /// Which of its methods.
    pub phase: Phase,
    /// The try this phase belongs to, from 1. A new number means the job's
    /// local storage starts empty. Cleanup carries the last try's number.
    pub attempt: u32,
}

/// What the driver should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Call this phase of the job, then [`Machine::report`] its outcome.
    Perform(Task),
    /// Nothing can start before this time (since the run's start); poll
    /// again then.
    Wait(Duration),
    /// Phases are in flight and nothing else can start until one reports.
    Idle,
    /// The run and its cleanups are over; [`Machine::report_card`] tells how it went.
    Done,
}

/// The driver fed the machine something it did not ask for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not tried yet, or waiting for deps.
    Waiting,
    /// A try is under way.
    Trying,
    /// The last try failed; it may have tries left.
    Failed,
    Passed,
    Fixed,
    Blocked,
}

#[derive(Clone, Debug)]
struct JobState {
    state: State,
    tries_used: u32,
    /// Deps that have not passed yet; the job is ready at 0.
    unpassed_deps: u32,
    /// Earliest start of the next try.
    not_before: Duration,
    /// Time spent in phases so far.
    busy: Duration,
    /// When the phase in flight was handed out.
    phase_started: Duration,
    /// The phase handed out and not reported yet.
    in_flight: Option<Phase>,
    ran: bool,
    last_error: Option<Box<Failure>>,
    blocked_by: Option<JobId>,
}

#[derive(Debug)]
enum Stage {
    /// Checking, running, retrying.
    Main,
    /// Handing out cleanups, most recent run first.
    Cleanup(Vec<JobId>),
    /// Over; cleanup may still be started by hand.
    Over,
}

/// The scheduler of one run: see the [module docs](self).
///
/// Semantics, which every driver reproduces:
/// - a job is tried only when all its deps have passed; a try is check,
///   and if that fails, run then recheck;
/// - tries come in rounds; a round takes the jobs in the reference order
///   and tries each at most once; jobs unblocked by a pass earlier in the
///   round are tried in that round; another round starts while a failed job
///   has tries left;
/// - a job is not tried again before its retry delay has passed since its
///   previous try ended;
/// - jobs never tried because a dep did not pass end up blocked.
#[derive(Debug)]
pub struct Machine {
    plan: Plan,
    config: MachineConfig,
    jobs: Vec<JobState>,
    /// Jobs ready to be tried in this round, smallest id (reference order) first.
    ready: BinaryHeap<Reverse<JobId>>,
    /// Jobs whose try failed in this round and that have tries left.
    retry_next_round: Vec<JobId>,
    /// Next phases of tries under way, handed out before any new try.
    continuations: VecDeque<Task>,
    in_flight: usize,
    round: u32,
    /// Every executed run, in order; cleanup walks it backwards.
    runs: Vec<JobId>,
    stage: Stage,
    cleanup_done: bool,
    cleanup_failure: Option<CleanupFailure>,
    last_seen: Duration,
    events: VecDeque<Event>,
}

impl Machine {
    /// A machine ready to schedule `plan`.
    pub fn new(plan: Plan, config: MachineConfig) -> Machine {
        let jobs: Vec<JobState> = plan
            .ids()
            .map(|id| JobState {
                state: State::Waiting,
                tries_used: 0,
                unpassed_deps: u32::try_from(plan.deps(id).len()).expect("too many deps"),
                not_before: Duration::ZERO,
                busy: Duration::ZERO,
                phase_started: Duration::ZERO,
                in_flight: None,
                ran: false,
                last_error: None,
                blocked_by: None,
            })
            .collect();
        let ready = plan
            .ids()
            .filter(|id| jobs[id.index()].unpassed_deps == 0)
            .map(Reverse)
            .collect();
        Machine {
            plan,
            config,
            jobs,
            ready,
            retry_next_round: Vec::new(),
            continuations: VecDeque::new(),
            in_flight: 0,
            round: 1,
            runs: Vec::new(),
            stage: Stage::Main,
            cleanup_done: false,
            cleanup_failure: None,
            last_seen: Duration::ZERO,
            events: VecDeque::from([Event::RoundStarted { round: 1 }]),
        }
    }

    /// The plan being run.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The configuration the machine was made with.
    pub fn config(&self) -> MachineConfig {
        self.config
    }

    /// Decides what the driver does next, at time `now`.
    ///
    /// Phases of a try under way come first, then new tries in the
    /// reference order. One phase is in flight at a time.
    pub fn poll(&mut self, now: Duration) -> Step {
        self.last_seen = self.last_seen.max(now);
        loop {
            if self.in_flight > 0 {
                return Step::Idle;
            }
            if let Some(task) = self.continuations.pop_front() {
                return self.hand_out(task, now);
            }
            match &mut self.stage {
                Stage::Main => {
                    if let Some(&Reverse(id)) = self.ready.peek() {
                        let not_before = self.jobs[id.index()].not_before;
                        if not_before > now {
                            return Step::Wait(not_before);
                        }
                        self.ready.pop();
                        self.start_try(id);
                    } else if !self.retry_next_round.is_empty() {
                        self.round += 1;
                        self.events
                            .push_back(Event::RoundStarted { round: self.round });
                        self.ready
                            .extend(self.retry_next_round.drain(..).map(Reverse));
                    } else {
                        self.end_main();
                    }
                }
                Stage::Cleanup(queue) => match queue.pop() {
                    Some(job) => {
                        let attempt = self.jobs[job.index()].tries_used;
                        return self.hand_out(
                            Task {
                                job,
                                phase: Phase::Cleanup,
                                attempt,
                            },
                            now,
                        );
                    }
                    None => {
                        self.cleanup_done = true;
                        self.stage = Stage::Over;
                        self.events.push_back(Event::CleanupFinished);
                    }
                },
                Stage::Over => return Step::Done,
            }
        }
    }

    /// Tells the machine how a phase it handed out went, at time `now`.
    ///
    /// Fails, changing nothing, when that phase of that job is not in flight.
    pub fn report(
        &mut self,
        job: JobId,
        phase: Phase,
        outcome: Outcome,
        now: Duration,
    ) -> Result<(), MachineError> {
        self.last_seen = self.last_seen.max(now);
        let Some(state) = self.jobs.get_mut(job.index()) else {
            return Err(MachineError::UnexpectedReport {
                job: job.to_string(),
                phase,
            });
        };
        if state.in_flight != Some(phase) {
            return Err(MachineError::UnexpectedReport {
                job: self.plan.name(job).to_owned(),
                phase,
            });
        }
        state.in_flight = None;
        state.busy += now.saturating_sub(state.phase_started);
        let attempt = state.tries_used;
        self.in_flight -= 1;
        self.events.push_back(Event::PhaseFinished {
            task: Task {
                job,
                phase,
                attempt,
            },
            outcome: outcome.clone(),
            at: now,
            performed: true,
        });
        match (phase, outcome) {
            (Phase::Check, Outcome::Pass) | (Phase::Recheck, Outcome::Pass) => {
                self.job_passed(job);
            }
            (Phase::Check, Outcome::Fail(failure)) => {
                if self.config.no_act {
                    self.try_failed(job, failure, now);
                } else {
                    self.continue_try(job, Phase::Run);
                }
            }
            (Phase::Run, outcome) => {
                self.jobs[job.index()].ran = true;
                self.runs.push(job);
                if self.plan.kind(job) == JobKind::RunOnly {
                    // A run-only job has no check: its run's outcome is the recheck's.
                    self.events.push_back(Event::PhaseFinished {
                        task: Task {
                            job,
                            phase: Phase::Recheck,
                            attempt,
                        },
                        outcome: outcome.clone(),
                        at: now,
                        performed: false,
                    });
                    match outcome {
                        Outcome::Pass => self.job_passed(job),
                        Outcome::Fail(failure) => self.try_failed(job, failure, now),
                    }
                } else {
                    self.continue_try(job, Phase::Recheck);
                }
            }
            (Phase::Recheck, Outcome::Fail(failure)) => self.try_failed(job, failure, now),
            (Phase::Cleanup, Outcome::Pass) => {}
            (Phase::Cleanup, Outcome::Fail(failure)) => {
                self.cleanup_failure = Some(CleanupFailure {
                    job: self.plan.name(job).to_owned(),
                    error: failure,
                });
                if let Stage::Cleanup(queue) = &mut self.stage {
                    queue.clear();
                }
            }
        }
        Ok(())
    }

    /// The next event not yet taken, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Starts the cleanups after a run made with `cleanup: false`;
    /// [`poll`](Self::poll) then hands them out.
    pub fn start_cleanup(&mut self) -> Result<(), MachineError> {
        if !matches!(self.stage, Stage::Over) {
            return Err(MachineError::CleanupNotAllowed("the run is not over"));
        }
        if self.cleanup_done {
            return Err(MachineError::CleanupNotAllowed("it has already run"));
        }
        if self.config.no_act {
            return Err(MachineError::CleanupNotAllowed(
                "no-act runs have nothing to clean",
            ));
        }
        self.stage = Stage::Cleanup(self.cleanup_queue());
        Ok(())
    }

    /// Whether the main run is over (every job has its final status).
    pub fn is_run_over(&self) -> bool {
        !matches!(self.stage, Stage::Main)
    }

    /// The round under way (or the last one), from 1.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Where every job stands now; final once [`poll`](Self::poll) said `Done`.
    pub fn report_card(&self) -> Report {
        let jobs = self
            .plan
            .ids()
            .map(|id| {
                let state = &self.jobs[id.index()];
                JobReport {
                    name: self.plan.name(id).to_owned(),
                    status: match state.state {
                        State::Passed => Status::Passed,
                        State::Fixed => Status::Fixed,
                        State::Failed => Status::Failed,
                        State::Blocked => Status::Blocked,
                        State::Waiting | State::Trying => Status::Pending,
                    },
                    tries: state.tries_used,
                    last_error: state.last_error.as_deref().cloned(),
                    blocked_by: state.blocked_by.map(|dep| self.plan.name(dep).to_owned()),
                    time: state.busy,
                    deps: self
                        .plan
                        .deps(id)
                        .iter()
                        .map(|&dep| self.plan.name(dep).to_owned())
                        .collect(),
                }
            })
            .collect();
        Report {
            version: Report::VERSION,
            no_act: self.config.no_act,
            rounds: self.round,
            elapsed: self.last_seen,
            cleanup_failure: self.cleanup_failure.clone(),
            jobs,
        }
    }

    fn hand_out(&mut self, task: Task, now: Duration) -> Step {
        let state = &mut self.jobs[task.job.index()];
        debug_assert!(state.in_flight.is_none());
        state.in_flight = Some(task.phase);
        state.phase_started = now;
        self.in_flight += 1;
        self.events.push_back(Event::PhaseStarted { task, at: now });
        Step::Perform(task)
    }

    fn continue_try(&mut self, job: JobId, phase: Phase) {
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
            matches!(state.state, State::Waiting | State::Failed),
            "a job is tried only while it is not done"
        );
        if let Some(message) = self.plan.broken(job) {
            let failure = Failure::new(message);
            state.state = State::Failed;
            state.last_error = Some(Box::new(failure));
            let tries = state.tries_used;
            self.events.push_back(Event::JobFinished {
                job,
                status: Status::Failed,
                tries,
            });
            return;
        }
        state.state = State::Trying;
        state.tries_used += 1;
        let attempt = state.tries_used;
        self.events.push_back(Event::TryStarted { job, attempt });
        let engine_decides = |phase, outcome| Event::PhaseFinished {
            task: Task {
                job,
                phase,
                attempt,
            },
            outcome,
            at: self.last_seen,
            performed: false,
        };
        match self.plan.kind(job) {
            JobKind::Normal => self.continue_try(job, Phase::Check),
            JobKind::Dummy => {
                self.events
                    .push_back(engine_decides(Phase::Check, Outcome::Pass));
                self.job_passed(job);
            }
            JobKind::RunOnly => {
                let why = if self.config.no_act {
                    "run-only jobs cannot pass in no-act mode"
                } else {
                    "run-only jobs have no check"
                };
                let failure = Failure::new(why);
                self.events
                    .push_back(engine_decides(Phase::Check, Outcome::Fail(failure.clone())));
                if self.config.no_act {
                    let now = self.last_seen;
                    self.try_failed(job, failure, now);
                } else {
                    self.continue_try(job, Phase::Run);
                }
            }
        }
    }

    fn job_passed(&mut self, job: JobId) {
        let state = &mut self.jobs[job.index()];
        state.state = if state.ran {
            State::Fixed
        } else {
            State::Passed
        };
        let status = if state.ran {
            Status::Fixed
        } else {
            Status::Passed
        };
        let tries = state.tries_used;
        self.events
            .push_back(Event::JobFinished { job, status, tries });
        for &dependent in self.plan.dependents(job) {
            let waiting = &mut self.jobs[dependent.index()].unpassed_deps;
            *waiting -= 1;
            if *waiting == 0 {
                // Dependents come later in the reference order, so this
                // round still reaches them.
                self.ready.push(Reverse(dependent));
            }
        }
    }

    fn try_failed(&mut self, job: JobId, failure: Failure, now: Duration) {
        let state = &mut self.jobs[job.index()];
        state.state = State::Failed;
        state.last_error = Some(Box::new(failure));
        state.not_before = now + self.plan.retry_delay(job);
        let tries = state.tries_used;
        if !self.config.no_act && tries < self.plan.tries(job) {
            self.retry_next_round.push(job);
        } else {
            self.events.push_back(Event::JobFinished {
                job,
                status: Status::Failed,
                tries,
            });
        }
    }

    /// Marks every job never tried as blocked, then moves on to cleanup.
    fn end_main(&mut self) {
        for id in self.plan.ids() {
            if self.jobs[id.index()].state != State::Waiting {
                continue;
            }
            let by = *self
                .plan
                .deps(id)
                .iter()
                .find(|dep| matches!(self.jobs[dep.index()].state, State::Failed | State::Blocked))
                .expect("a job left waiting has a dep that did not pass");
            let state = &mut self.jobs[id.index()];
            state.state = State::Blocked;
            state.blocked_by = Some(by);
            self.events.push_back(Event::JobBlocked { job: id, by });
        }
        self.events
            .push_back(Event::RunFinished { at: self.last_seen });
        self.stage = if self.config.cleanup && !self.config.no_act {
            Stage::Cleanup(self.cleanup_queue())
        } else {
            Stage::Over
        };
    }

    /// Jobs whose run executed, as a stack whose top is the most recent run.
    fn cleanup_queue(&self) -> Vec<JobId> {
        let mut seen = vec![false; self.plan.len()];
        let mut most_recent_first: Vec<JobId> = self
            .runs
            .iter()
            .rev()
            .filter(|job| !std::mem::replace(&mut seen[job.index()], true))
            .copied()
            .collect();
        most_recent_first.reverse();
        most_recent_first
    }
}
