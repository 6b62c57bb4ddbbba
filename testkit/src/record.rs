//! Recording real runs: an [`Observer`] that keeps a run's events, so a run
//! of real jobs gets the same [`Trace`] and invariant checks as a simulated
//! one.

use std::sync::{Arc, Mutex, PoisonError};

use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{Finished, Report, Runner, SetupError};

use crate::mock::Suite;
use crate::sim::{SimConfig, Simulation, Trace};

/// An [`Observer`] that records every event of a run, with the plan.
///
/// Clones share one recording: give one to
/// [`Runner::observe`](dojobber::Runner::observe) and read from another.
/// [`record`] does both for you.
///
/// ```
/// use dojobber::{Context, Job, JobResult, Runner};
/// use dojobber_testkit::TraceRecorder;
///
/// struct Kettle;
/// impl Job for Kettle {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// let recorder = TraceRecorder::default();
/// let finished = Runner::new(Kettle, ()).observe(recorder.clone()).run()?;
/// assert_eq!(recorder.trace().render_untimed(), "round 1\n  Kettle.check: pass\n");
/// # let _ = finished;
/// # Ok::<(), dojobber::SetupError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct TraceRecorder(Arc<Mutex<Recording>>);

#[derive(Debug, Default)]
struct Recording {
    plan: Option<Plan>,
    events: Vec<Event>,
}

impl TraceRecorder {
    /// Every event so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// The plan of the run, once its first event has been seen.
    pub fn plan(&self) -> Option<Plan> {
        self.lock().plan.clone()
    }

    /// The phases so far (empty before the first event).
    pub fn trace(&self) -> Trace {
        let recording = self.lock();
        match &recording.plan {
            Some(plan) => Trace::from_events(plan, &recording.events),
            None => Trace::default(),
        }
    }

    /// The run as a [`Simulation`] for [`check_invariants`](crate::check_invariants),
    /// with the run's `report`; `None` before the first event.
    ///
    /// `config.machine.no_act` is the report's; `config.machine.cleanup` is
    /// whether the cleanups happened (so the checker does not ask for
    /// cleanups the user put off); `config.defaults` are the defaults, as
    /// the recorder cannot see the run's (every job's own tries and delay
    /// are in the plan, which is all the checker reads).
    pub fn simulation(&self, report: Report) -> Option<Simulation> {
        self.simulation_with(report, &SimConfig::new())
    }

    /// The same, for a run made with `config`'s settings (see
    /// [`runner_for`]), so the checker holds the run to its workers, group
    /// limits, fail-fast and deadline.
    pub fn simulation_with(&self, report: Report, config: &SimConfig) -> Option<Simulation> {
        let recording = self.lock();
        let plan = recording.plan.clone()?;
        let events = recording.events.clone();
        let mut config = config.clone();
        config.machine.no_act = report.no_act;
        config.machine.cleanup = events
            .iter()
            .any(|event| matches!(event, Event::CleanupFinished));
        Some(Simulation {
            trace: Trace::from_events(&plan, &events),
            events,
            report,
            plan,
            config,
            performed: Vec::new(),
            abandoned: Vec::new(),
            real_clock: true,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Observer for TraceRecorder {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        let mut recording = self.lock();
        if recording.plan.is_none() {
            recording.plan = Some(plan.clone());
        }
        recording.events.push(event.clone());
    }
}

/// A real run and its record.
pub struct Recorded<A> {
    /// The run, for its report, global storage or put-off cleanups.
    pub finished: Finished<A>,
    /// What the run did: its events, phases, report and settings, in the
    /// shape a simulation has, for
    /// [`check_invariants`](crate::check_invariants) and
    /// [`Trace::render_untimed`].
    pub record: Simulation,
}

/// Runs `runner` with a [`TraceRecorder`] and returns the run with its
/// record, which carries the runner's settings (workers, tries, delays,
/// no-act, fail-fast, deadline, group limits: see
/// [`SimConfig::from_runner`]), so the invariant checker holds the run to
/// them.
///
/// Fails only when the suite cannot start (see [`SetupError`]).
///
/// ```
/// use dojobber::{bail, Context, Job, JobResult, Runner};
/// use dojobber_testkit::{check_invariants, record};
///
/// struct Tea;
/// impl Job for Tea {
///     fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
///         if cx.is_recheck() { Ok(()) } else { bail!("no tea") }
///     }
/// }
/// let recorded = record(Runner::new(Tea, ()))?;
/// check_invariants(&recorded.record)?;
/// assert_eq!(
///     recorded.record.trace.render_untimed(),
///     "round 1\n  Tea.check: fail \"no tea\"\n  Tea.run: pass\n  Tea.recheck: pass\ncleanup\n  Tea.cleanup: pass\n",
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn record<A: Sync + 'static>(runner: Runner<A>) -> Result<Recorded<A>, SetupError> {
    let config = SimConfig::from_runner(&runner);
    let recorder = TraceRecorder::default();
    let finished = runner.observe(recorder.clone()).run()?;
    let record = recorder
        .simulation_with(finished.report(), &config)
        .expect("every run emits at least its first round's event");
    Ok(Recorded { finished, record })
}

impl SimConfig {
    /// The settings `runner` will run with, for holding its real run to
    /// them ([`TraceRecorder::simulation_with`]): default tries and retry
    /// delay, no-act, cleanup, workers, fail-fast, deadline (in real time)
    /// and group limits. The inverse of [`runner_for`].
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    /// use dojobber_testkit::SimConfig;
    ///
    /// let runner = Runner::new(Group::<()>::new("Tea"), ()).workers(4).fail_fast(true);
    /// assert_eq!(SimConfig::from_runner(&runner), SimConfig::new().workers(4).fail_fast());
    /// ```
    pub fn from_runner<A: 'static>(runner: &Runner<A>) -> SimConfig {
        let (defaults, machine, group_limits) = runner.settings();
        SimConfig {
            defaults,
            machine,
            group_limits: group_limits.to_vec(),
            ..SimConfig::new()
        }
    }
}

/// A real run of a fresh copy of `suite` with `config`'s settings:
/// default tries and retry delay, no-act, cleanup, workers (threads with
/// [`Runner::run`], tasks with `run_async`), fail-fast, the deadline (in
/// real time) and group limits. `config.cancel_at` is not applied: a real
/// run is cancelled through a [`CancelHandle`](dojobber::CancelHandle).
///
/// ```
/// use dojobber_testkit::{Mock, SimConfig, Suite, check_invariants, runner_for, TraceRecorder};
///
/// let suite = Suite::new([Mock::new("Root").deps(["A", "B"]), Mock::new("A"), Mock::new("B")]);
/// let config = SimConfig::new().workers(2).limit_group("apt", 1);
/// let recorder = TraceRecorder::default();
/// let finished = runner_for(&suite, &config).observe(recorder.clone()).run()?;
/// check_invariants(&recorder.simulation_with(finished.report(), &config).unwrap())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn runner_for(suite: &Suite, config: &SimConfig) -> Runner<()> {
    let machine = &config.machine;
    let mut runner = Runner::from_ref(suite.fresh().root_job(), ())
        .tries(config.defaults.tries)
        .retry_delay(config.defaults.retry_delay)
        .no_act(machine.no_act)
        .cleanup(machine.cleanup)
        .workers(machine.workers)
        .fail_fast(machine.fail_fast)
        .output(std::io::sink());
    if let Some(deadline) = machine.deadline {
        runner = runner.deadline(deadline);
    }
    for (group, limit) in &config.group_limits {
        runner = runner.group_limit(group.clone(), *limit);
    }
    runner
}
