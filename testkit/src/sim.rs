//! A simulated run: the machine driven directly by a virtual clock that
//! jumps to the next deadline, so suites with long retry delays run in
//! microseconds, and its trace as text.

use std::fmt::Write as _;
use std::time::Duration;

use dojobber::{
    Defaults, Event, Failure, Machine, MachineConfig, Outcome, Phase, Plan, Report, Step,
};

use crate::mock::{Act, Suite};

/// How to run a simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimConfig {
    /// Tries and retry delay for mocks without their own.
    pub defaults: Defaults,
    /// No-act and cleanup.
    pub machine: MachineConfig,
}

impl SimConfig {
    /// Default tries and delay, acting, with cleanup.
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
}

/// Runs `suite` on the machine with a virtual clock: each phase takes its
/// mock's simulated time, and a wait jumps straight to its deadline.
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
/// assert_eq!(sim.report.jobs[0].status, Status::Fixed);
/// assert_eq!(sim.trace.entries.last().unwrap().at, Duration::from_secs(120));
/// ```
pub fn simulate(suite: &Suite, config: SimConfig) -> Simulation {
    let plan = suite.plan(config.defaults);
    let mut machine = Machine::new(plan.clone(), config.machine);
    let mut events = Vec::new();
    let mut runs = vec![0u32; plan.len()];
    let mut now = Duration::ZERO;
    loop {
        let step = machine.poll(now);
        events.extend(std::iter::from_fn(|| machine.poll_event()));
        match step {
            Step::Perform(task) => {
                let mock = suite
                    .mock(plan.name(task.job))
                    .expect("every planned job is a mock");
                let act = mock.decide(task.phase, task.attempt, runs[task.job.index()]);
                if task.phase == Phase::Run {
                    runs[task.job.index()] += 1;
                }
                let outcome = match act {
                    Act::Pass => Outcome::Pass,
                    Act::Fail(message) => Outcome::Fail(Failure::new(message)),
                    Act::Panic(message) => {
                        Outcome::Fail(Failure::new(format!("panicked: {message}")))
                    }
                };
                now += mock.duration_of(task.phase);
                machine
                    .report(task.job, task.phase, outcome, now)
                    .expect("the simulation reports what it was handed");
                events.extend(std::iter::from_fn(|| machine.poll_event()));
            }
            Step::Wait(deadline) => {
                assert!(deadline > now, "a wait is for a later time");
                now = deadline;
            }
            Step::Idle | Step::Abandon(_) => {
                unreachable!("one phase at a time: nothing is in flight when polled")
            }
            Step::Done => break,
        }
    }
    Simulation {
        trace: Trace::from_events(&plan, &events),
        events,
        report: machine.report_card(),
        plan,
        config,
    }
}
