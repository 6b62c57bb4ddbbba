//! A simulated run: the machine driven directly by a virtual clock that
//! jumps to the next deadline, so suites with long retry delays run in
//! microseconds, and its trace as text.

use std::fmt::Write as _;
use std::time::Duration;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use dojobber::engine::{Defaults, Machine, MachineConfig, Plan, Step, StopReason, Task};
use dojobber::observe::Event;
use dojobber::{Failure, Outcome, Phase, Report};

use crate::mock::{Act, Mock, Suite};

/// How to run a simulation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimConfig {
    /// Tries and retry delay for mocks without their own.
    pub defaults: Defaults,
    /// No-act, cleanup, phases in flight at once, fail-fast, run deadline.
    pub machine: MachineConfig,
    /// Limits on concurrency groups: at most this many jobs of the group
    /// in a try at once (see [`Mock::group`](crate::Mock::group)).
    pub group_limits: Vec<(String, usize)>,
    /// Cancel the run at this (virtual) time, as a
    /// [`CancelHandle`](dojobber::CancelHandle) would.
    pub cancel_at: Option<Duration>,
    /// What a phase the machine abandons does (several workers only).
    pub abandoned: Abandoned,
}

/// What the simulated driver does with a phase the machine abandons
/// ([`Step::Abandon`]): a time limit passed, or the run stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Abandoned {
    /// It runs on to its end, as on a thread.
    #[default]
    RunsOn,
    /// It stops at once and reports a failure, as a cancelled async task.
    Stops,
}

impl SimConfig {
    /// Default tries and delay, acting, with cleanup, one phase at a time.
    pub fn new() -> SimConfig {
        SimConfig::default()
    }

    /// The same, in no-act mode.
    pub fn no_act(mut self) -> SimConfig {
        self.machine.no_act = true;
        self
    }

    /// The same, with `tries` and `retry_delay` as defaults.
    pub fn defaults(mut self, tries: u32, retry_delay: Duration) -> SimConfig {
        self.defaults = Defaults { tries, retry_delay };
        self
    }

    /// The same, with the cleanups at the end of the run on or off.
    pub fn cleanup(mut self, cleanup: bool) -> SimConfig {
        self.machine.cleanup = cleanup;
        self
    }

    /// The same, with up to `workers` phases in flight at once (at least 1).
    pub fn workers(mut self, workers: usize) -> SimConfig {
        self.machine.workers = workers.max(1);
        self
    }

    /// The same, starting no new try after the first job that failed for good.
    pub fn fail_fast(mut self) -> SimConfig {
        self.machine.fail_fast = true;
        self
    }

    /// The same, starting no phase at or after `deadline` (virtual time).
    pub fn deadline(mut self, deadline: Duration) -> SimConfig {
        self.machine.deadline = Some(deadline);
        self
    }

    /// The same, with at most `limit` jobs of `group` in a try at once.
    pub fn limit_group(mut self, group: impl Into<String>, limit: usize) -> SimConfig {
        self.group_limits.push((group.into(), limit.max(1)));
        self
    }

    /// The same, cancelled at `at` (virtual time).
    pub fn cancel_at(mut self, at: Duration) -> SimConfig {
        self.cancel_at = Some(at);
        self
    }

    /// The same, with abandoned phases stopping at once (as async tasks
    /// do) rather than running on (as threads do).
    pub fn abandoned_phases_stop(mut self) -> SimConfig {
        self.abandoned = Abandoned::Stops;
        self
    }
}

/// One phase of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Time the phase started (virtual in a simulation).
    pub at: Duration,
    /// Time it ended.
    pub end: Duration,
    /// The job's name.
    pub job: String,
    /// The phase.
    pub phase: Phase,
    /// The try, from 1.
    pub attempt: u32,
    /// The round of tries it belongs to, from 1 (a cleanup: the last round).
    pub round: u32,
    /// How it went.
    pub outcome: Outcome,
    /// `false` when the machine decided it without calling the job.
    pub performed: bool,
}

/// Every phase of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The phases.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// The phases that `events` (a run's events, in order, as a driver
    /// passes them to observers) tell of; `plan` names the jobs.
    ///
    /// ```
    /// use dojobber_testkit::{simulate, Mock, SimConfig, Suite, Trace};
    ///
    /// let sim = simulate(&Suite::new([Mock::new("Only")]), SimConfig::new());
    /// assert_eq!(Trace::from_events(&sim.plan, &sim.events), sim.trace);
    /// ```
    pub fn from_events(plan: &Plan, events: &[Event]) -> Trace {
        let mut started = vec![Duration::ZERO; plan.len()];
        let mut round = 0;
        let mut entries = Vec::new();
        for event in events {
            match event {
                Event::RoundStarted { round: r } => round = *r,
                Event::PhaseStarted { task, at } => started[task.job.index()] = *at,
                Event::PhaseFinished {
                    task,
                    outcome,
                    at,
                    performed,
                } => entries.push(TraceEntry {
                    at: if *performed {
                        started[task.job.index()]
                    } else {
                        *at
                    },
                    end: *at,
                    job: plan.name(task.job).to_owned(),
                    phase: task.phase,
                    attempt: task.attempt,
                    round,
                    outcome: outcome.clone(),
                    performed: *performed,
                }),
                _ => {}
            }
        }
        Trace { entries }
    }

    /// One line per phase, stable for snapshots:
    /// `t=+2.000s PopcornBowl.recheck: fail "Dishwasher cycle not done yet."`.
    /// Failures show their message on every phase, unlike the verbose printer.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for entry in &self.entries {
            let _ = write!(text, "t=+{:.3}s ", entry.at.as_secs_f64());
            push_phase_line(&mut text, entry);
            text.push('\n');
        }
        text
    }

    /// The same lines without times, under a header per round and one for
    /// the cleanups; phases the machine decided without calling the job
    /// (a dummy's check, a run-only job's check and recheck) end in
    /// `(no call)`. Made for snapshots of real runs, whose times vary.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dojobber_testkit::{simulate, Mock, SimConfig, Suite};
    ///
    /// let suite = Suite::new([Mock::new("Dishes").check_fails_until_runs(2, "dirty")]);
    /// let sim = simulate(&suite, SimConfig::new().defaults(3, Duration::ZERO));
    /// assert_eq!(sim.trace.render_untimed(), "\
    /// round 1
    ///   Dishes.check: fail \"dirty\"
    ///   Dishes.run: pass
    ///   Dishes.recheck: fail \"dirty\"
    /// round 2
    ///   Dishes.check: fail \"dirty\"
    ///   Dishes.run: pass
    ///   Dishes.recheck: pass
    /// cleanup
    ///   Dishes.cleanup: pass
    /// ");
    /// ```
    pub fn render_untimed(&self) -> String {
        let mut text = String::new();
        let mut round = 0;
        let mut cleaning = false;
        for entry in &self.entries {
            if entry.phase == Phase::Cleanup {
                if !cleaning {
                    cleaning = true;
                    text.push_str("cleanup\n");
                }
            } else if entry.round != round {
                round = entry.round;
                let _ = writeln!(text, "round {round}");
            }
            text.push_str("  ");
            push_phase_line(&mut text, entry);
            if !entry.performed {
                text.push_str(" (no call)");
            }
            text.push('\n');
        }
        text
    }

    /// The entries of one job.
    pub fn of<'a>(&'a self, job: &'a str) -> impl Iterator<Item = &'a TraceEntry> + 'a {
        self.entries.iter().filter(move |entry| entry.job == job)
    }
}

/// `Job.phase: pass` or `Job.phase: fail "message"`.
fn push_phase_line(text: &mut String, entry: &TraceEntry) {
    let _ = write!(text, "{}.{}: ", entry.job, entry.phase);
    match &entry.outcome {
        Outcome::Pass => text.push_str("pass"),
        Outcome::Fail(failure) => {
            let _ = write!(text, "fail {:?}", failure.message);
        }
    }
}

/// The record of a run, simulated by [`simulate`] or recorded from a real
/// run by a [`TraceRecorder`](crate::TraceRecorder): what
/// [`check_invariants`](crate::check_invariants) reads.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// Every phase, in order.
    pub trace: Trace,
    /// Every event the machine emitted, in order.
    pub events: Vec<Event>,
    /// The machine's report.
    pub report: Report,
    /// The plan that ran.
    pub plan: Plan,
    /// How it ran. For a recorded run: the defaults are unknown (the plan
    /// has every job's tries and delay), `no_act` is the report's, and
    /// `cleanup` is whether the cleanups happened.
    pub config: SimConfig,
    /// Simulated runs only: every phase the driver performed, as the
    /// driver saw it, in the order they ended (an abandoned phase ends
    /// when it really does, not at its limit).
    pub performed: Vec<TraceEntry>,
    /// Simulated runs only: the phases the machine abandoned, with when.
    pub abandoned: Vec<(Task, Duration)>,
    /// Recorded from a real run: its times are a real clock's, read when a
    /// worker takes its turn, so a stop can be noticed a little after the
    /// last phase ends (a loaded machine's scheduling delay).
    pub real_clock: bool,
}

/// Runs `suite` on the machine with a virtual clock: each phase takes its
/// mock's simulated time, and the clock jumps straight to the next event
/// (a phase's end, a retry's delay, a time limit, the deadline, the
/// cancellation).
///
/// With one worker, it drives the machine as the sequential runner does:
/// a phase blocks the driver, which reports it when it ends, so a phase
/// over its time limit fails then. With several, as the thread pool does:
/// phases overlap, and one over its time limit is abandoned at the limit
/// and runs on to its end, when it is reported and ignored.
///
/// ```
/// use std::time::Duration;
/// use dojobber::Status;
/// use dojobber_testkit::{simulate, Mock, SimConfig, Suite};
///
/// let suite = Suite::new([
///     Mock::new("Dishes").retry_delay(Duration::from_secs(60)).check_fails_until_runs(3, "dirty"),
/// ]);
/// let sim = simulate(&suite, SimConfig::new());
/// assert_eq!(sim.report.job_at(0).unwrap().status(), Status::Fixed);
/// assert_eq!(sim.trace.entries.last().unwrap().at, Duration::from_secs(120));
///
/// // Two workers: the two slow jobs overlap.
/// let suite = Suite::new([
///     Mock::new("Root").deps(["Left", "Right"]),
///     Mock::new("Left").takes(Duration::from_secs(5)),
///     Mock::new("Right").takes(Duration::from_secs(5)),
/// ]);
/// let sim = simulate(&suite, SimConfig::new().workers(2));
/// assert_eq!(sim.report.elapsed, Duration::from_secs(5));
/// assert_eq!(simulate(&suite, SimConfig::new()).report.elapsed, Duration::from_secs(10));
/// ```
pub fn simulate(suite: &Suite, config: SimConfig) -> Simulation {
    let plan = suite.plan(config.defaults);
    let mut machine = Machine::new(plan.clone(), config.machine);
    for (group, limit) in &config.group_limits {
        machine.limit_group(group, *limit);
    }
    let mut events = Vec::new();
    let mut runs = vec![0u32; plan.len()];
    let mut flying = InFlight::default();
    let mut performed = Vec::new();
    let mut abandoned = Vec::new();
    // What the driver saw of a phase it performed.
    let entry =
        |task: Task, outcome: &Outcome, start: Duration, end: Duration, round: u32| TraceEntry {
            at: start,
            end,
            job: plan.name(task.job).to_owned(),
            phase: task.phase,
            attempt: task.attempt,
            round,
            outcome: outcome.clone(),
            performed: true,
        };
    let mut cancel_at = config.cancel_at;
    let mut now = Duration::ZERO;
    loop {
        if cancel_at.is_some_and(|at| now >= at) {
            machine.stop(StopReason::Cancelled);
            cancel_at = None;
        }
        let step = machine.poll(now);
        events.extend(std::iter::from_fn(|| machine.poll_event()));
        // The next thing that happens without the machine: a phase ends,
        // or the run is cancelled.
        let next_landing = flying.next_end();
        let until = |limit: Option<Duration>| {
            [limit, next_landing, cancel_at]
                .into_iter()
                .flatten()
                .min()
                .expect("something is in flight or due")
        };
        match step {
            Step::Perform(task) => {
                let mock = suite
                    .mock(plan.name(task.job))
                    .expect("every planned job is a mock");
                let outcome = perform(mock, task, &mut runs[task.job.index()]);
                let end = now + mock.duration_of(task.phase);
                if config.machine.workers == 1 {
                    // As the sequential runner does: the phase blocks the
                    // driver, which reports it when it ends (late, if it
                    // ran over its time limit).
                    performed.push(entry(task, &outcome, now, end, machine.round()));
                    now = end;
                    machine
                        .handle_outcome(task, outcome, now)
                        .expect("the simulation reports what it was handed");
                    events.extend(std::iter::from_fn(|| machine.poll_event()));
                } else {
                    flying.launch(task, outcome, now, end);
                }
                continue;
            }
            Step::Abandon(task) => {
                abandoned.push((task, now));
                if config.abandoned == Abandoned::Stops {
                    // Cancelled at once: it lands now, failed.
                    let start = flying.cancel(task);
                    let outcome = Outcome::Fail(Failure::new("the phase was cancelled"));
                    performed.push(entry(task, &outcome, start, now, machine.round()));
                    machine
                        .handle_outcome(task, outcome, now)
                        .expect("the simulation reports what it was handed");
                    events.extend(std::iter::from_fn(|| machine.poll_event()));
                }
                // Otherwise it runs on to its end, as on a thread.
                continue;
            }
            Step::Wait(deadline) => {
                let next = until(Some(deadline));
                assert!(
                    next > now || next_landing.is_some_and(|end| end <= now),
                    "the machine waits for {deadline:?} at {now:?}, with nothing to wait for"
                );
                now = next.max(now);
            }
            Step::Idle => now = until(None).max(now),
            Step::Done => break,
        }
        // Land every phase that has ended by now, earliest first.
        while let Some((task, outcome, start, end)) = flying.land_by(now) {
            performed.push(entry(task, &outcome, start, end, machine.round()));
            machine
                .handle_outcome(task, outcome, end)
                .expect("the simulation reports what it was handed");
            events.extend(std::iter::from_fn(|| machine.poll_event()));
        }
    }
    Simulation {
        trace: Trace::from_events(&plan, &events),
        events,
        report: machine.report_card(),
        plan,
        config,
        performed,
        abandoned,
        real_clock: false,
    }
}

/// What a mock does in one phase, as the machine hears it; `runs` counts
/// its runs so far.
fn perform(mock: &Mock, task: Task, runs: &mut u32) -> Outcome {
    let act = mock.decide(task.phase, task.attempt, *runs);
    if task.phase == Phase::Run {
        *runs += 1;
    }
    match act {
        Act::Pass => Outcome::Pass,
        Act::Fail(message) => Outcome::Fail(Failure::new(message)),
        Act::Panic(message) => Outcome::Fail(Failure::new(format!("panicked: {message}"))),
    }
}

/// Phases in flight (several workers), earliest end first; their outcomes
/// by sequence number.
#[derive(Default)]
struct InFlight {
    ends: BinaryHeap<Reverse<(Duration, u64)>>,
    outcomes: HashMap<u64, (Task, Outcome, Duration)>,
    sequence: u64,
}

impl InFlight {
    fn launch(&mut self, task: Task, outcome: Outcome, start: Duration, end: Duration) {
        self.sequence += 1;
        self.ends.push(Reverse((end, self.sequence)));
        self.outcomes.insert(self.sequence, (task, outcome, start));
    }

    fn next_end(&self) -> Option<Duration> {
        self.ends.peek().map(|Reverse((end, _))| *end)
    }

    /// Takes `task` out of flight (cancelled), returning when it started.
    fn cancel(&mut self, task: Task) -> Duration {
        let id = self
            .outcomes
            .iter()
            .find(|(_, (flying, ..))| *flying == task)
            .map(|(&id, _)| id)
            .expect("an abandoned phase is in flight");
        let (_, _, start) = self.outcomes.remove(&id).expect("found above");
        self.ends.retain(|&Reverse((_, other))| other != id);
        start
    }

    /// The earliest phase that has ended by `now`: task, outcome, start, end.
    fn land_by(&mut self, now: Duration) -> Option<(Task, Outcome, Duration, Duration)> {
        let &Reverse((end, id)) = self.ends.peek()?;
        if end > now {
            return None;
        }
        self.ends.pop();
        let (task, outcome, start) = self.outcomes.remove(&id).expect("each phase lands once");
        Some((task, outcome, start, end))
    }
}
