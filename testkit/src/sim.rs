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
}

/// One phase of a simulated run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEntry {
    /// Virtual time the phase started.
    pub at: Duration,
    /// Virtual time it ended.
    pub end: Duration,
    /// The job's name.
    pub job: String,
    /// The phase.
    pub phase: Phase,
    /// The try, from 1.
    pub attempt: u32,
    /// How it went.
    pub outcome: Outcome,
    /// `false` when the machine decided it without calling the job.
    pub performed: bool,
}

/// Every phase of a simulated run, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The phases.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// One line per phase, stable for snapshots:
    /// `t=+2.000s PopcornBowl.recheck: fail "Dishwasher cycle not done yet."`.
    /// Failures show their message on every phase, unlike the verbose printer.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for entry in &self.entries {
            let _ = write!(
                text,
                "t=+{:.3}s {}.{}: ",
                entry.at.as_secs_f64(),
                entry.job,
                entry.phase
            );
            match &entry.outcome {
                Outcome::Pass => text.push_str("pass"),
                Outcome::Fail(failure) => {
                    let _ = write!(text, "fail {:?}", failure.message);
                }
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

/// The outcome of a simulated run.
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
    let mut recorder = Recorder {
        machine: Machine::new(plan.clone(), config.machine),
        events: Vec::new(),
        started: vec![Duration::ZERO; plan.len()],
        entries: Vec::new(),
    };
    let mut runs = vec![0u32; plan.len()];
    let mut now = Duration::ZERO;
    loop {
        let step = recorder.machine.poll(now);
        recorder.absorb_events();
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
                now += mock.duration();
                recorder
                    .machine
                    .report(task.job, task.phase, outcome, now)
                    .expect("the simulation reports what it was handed");
                recorder.absorb_events();
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
        trace: Trace {
            entries: recorder.entries,
        },
        events: recorder.events,
        report: recorder.machine.report_card(),
        plan,
    }
}

/// The machine, and what its events say so far.
struct Recorder {
    machine: Machine,
    events: Vec<Event>,
    /// Per job, when its phase in flight started.
    started: Vec<Duration>,
    entries: Vec<TraceEntry>,
}

impl Recorder {
    fn absorb_events(&mut self) {
        while let Some(event) = self.machine.poll_event() {
            match &event {
                Event::PhaseStarted { task, at } => self.started[task.job.index()] = *at,
                Event::PhaseFinished {
                    task,
                    outcome,
                    at,
                    performed,
                } => self.entries.push(TraceEntry {
                    at: if *performed {
                        self.started[task.job.index()]
                    } else {
                        *at
                    },
                    end: *at,
                    job: self.machine.plan().name(task.job).to_owned(),
                    phase: task.phase,
                    attempt: task.attempt,
                    outcome: outcome.clone(),
                    performed: *performed,
                }),
                _ => {}
            }
            self.events.push(event);
        }
    }
}
