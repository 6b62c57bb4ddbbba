//! The drivers: one core, several executors.
//!
//! The core (this file) is everything a driver does but perform a phase:
//! it asks the machine what to do, lends a job its local storage, reports
//! outcomes, publishes events, passes a cancel on to the machine and tells
//! the executor which phases to abandon. It makes no decision: every
//! answer comes from [`Machine::poll`].
//!
//! An executor says how a phase is performed and how its result comes
//! back. Its workers share the [`Session`] behind one short lock and each
//! calls [`Session::step`] for itself: a worker that finishes a phase
//! reports it and takes its next phase in the same lock, with no other
//! thread woken. A worker wakes a sleeping one only when the machine has
//! more work than the busy workers can take (it hands the phase over
//! through `handoff`). In a run with time limits or a deadline, one
//! watcher, which performs nothing, sleeps until the machine's next timer
//! or a cancel, so timers fire even when every worker is busy. Otherwise
//! there is none: only a failed try makes a timer (its retry), and the
//! worker that reports it sleeps until the timer unless the machine gives
//! it a phase that was waiting for room (so no other worker could start);
//! sleeping workers watch the timers.
//!
//! - [`threads`]: the caller's thread alone (`workers(1)`, the reference
//!   order), or a pool of scoped threads with the caller's thread as the
//!   watcher or, with nothing to watch, as one of the workers.
//! - `task_pool` (feature `tokio`): the one async executor, workers as
//!   tokio tasks (the run's own task the watcher or, with nothing to
//!   watch, one of the workers) over a `PerformPhase` (how a phase is
//!   performed); public as `engine::driver::drive_tasks`, which
//!   dojobber-nats's coordinator uses too.
//! - `tokio_tasks` (feature `tokio`): `run_async`'s `PerformPhase`; async
//!   phases run inside the worker and can be cancelled; plain ones run
//!   there too while they are quick, else on tokio's blocking threads.

#[cfg(feature = "tokio")]
pub(crate) mod task_pool;
pub(crate) mod threads;
#[cfg(feature = "tokio")]
pub(crate) mod tokio_tasks;

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cancel::{CancelHandle, ReportSubscription};
use crate::caught::drop_caught;
use crate::event::Task;
use crate::event::{Outcome, Performer};
use crate::graph::JobTable;
use crate::job::{Context, Job, JobRef};
use crate::machine::{Machine, MachineConfig, Step};
use crate::output::Observer;
use crate::phase::Phase;
use crate::plan::{JobId, Plan};
use crate::report::{Report, StopReason};
use crate::storage::{GlobalStorage, LocalStorage};

/// A run: what the jobs touch, and the machine behind the workers' lock.
///
/// Made by [`Runner::into_session`](crate::Runner::into_session); driven
/// by an [`Executor`]'s workers, each calling [`step`](Self::step) for
/// itself (see the [module](crate::engine::driver) for a whole driver).
pub struct Session<A> {
    pub(crate) jobs: JobTable<A>,
    pub(crate) args: A,
    pub(crate) global: GlobalStorage,
    pub(crate) cancel: CancelHandle,
    /// The sync executors' clock (the tokio one reads tokio's).
    pub(crate) clock: Instant,
    /// The plan, readable without the lock.
    pub(crate) plan: Arc<Plan>,
    /// Shared (weakly) with the cancel handle, which may ask for the
    /// report as it stands from another thread (a second Ctrl-C).
    pub(crate) run: Arc<Mutex<Run>>,
    /// Lends that report to the cancel handle until the run ends.
    reporting: ReportSubscription,
}

/// What the workers share, behind the session's lock: the machine, the
/// lent local storages, the observers. Only [`Session::step`] (and the
/// crate's own drivers) take the lock.
pub(crate) struct Run {
    pub(crate) machine: Machine,
    /// The local storages kept between phases, by job index, with the try
    /// they belong to: empty until a job keeps something, then one slot
    /// per job (24 bytes each, less than a map's entry for each job that
    /// keeps one). A run whose jobs store nothing costs nothing here.
    locals: Vec<(u32, LocalStorage)>,
    observers: Vec<Box<dyn Observer>>,
    /// Phases the machine handed out for sleeping workers to take.
    handoff: VecDeque<Work>,
    /// Workers asleep with nothing to do.
    idle_workers: usize,
    /// When the sleeping watcher wakes by itself (`Duration::MAX`: only
    /// when woken); `None` while it is awake or there is none.
    watcher_wakes: Option<Duration>,
    /// A worker panicked outside user code (an observer): everyone stops.
    broken: bool,
}

/// A phase for a worker, with the job's local storage lent to it.
pub struct Work {
    /// The phase: which job, which phase, which try.
    pub task: Task,
    /// The job's local storage for this try (empty at a try's start);
    /// given back in [`Done::local`].
    pub local: LocalStorage,
}

/// A phase performed, with the storage back and when it ended.
pub struct Done {
    /// The phase, as [`Work::task`] handed it out.
    pub task: Task,
    /// The storage lent with it, back (an executor that performs the
    /// phase elsewhere gives back the empty storage it was lent).
    pub local: LocalStorage,
    /// What came of it.
    pub outcome: Outcome,
    /// When it ended, on the executor's clock ([`Executor::now`]).
    pub at: Duration,
    /// Who performed it: [`Performer::Here`] for a phase performed in
    /// this process; an executor that performs it elsewhere names the
    /// worker, for the report.
    pub performed_by: Performer,
}

/// What a worker does in the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Performs phases; sleeps, when there is nothing to do, until woken.
    Worker,
    /// Performs nothing: sleeps until the machine's next timer or a
    /// cancel, then polls, handing any phase over to a worker.
    Watcher,
    /// The only one: performs phases and watches the timers (`workers(1)`).
    Alone,
}

/// Why a worker calls [`Session::step`].
pub enum Came {
    /// It has just started.
    Start,
    /// It slept and woke (rung, or its time came).
    Woke,
    /// It performed a phase.
    Finished(Done),
}

/// What a worker does next.
pub enum Next {
    /// Perform this phase, then step with [`Came::Finished`].
    Perform(Work),
    /// Sleep until rung, or until this time since the run's start.
    Sleep(Option<Duration>),
    /// The run is over: stop.
    Done,
}

/// How phases are performed: what differs between drivers. The core calls
/// these under the session's lock, so they must be quick (no I/O, no
/// waiting: ring a bell, set a flag, spawn a task).
pub trait Executor {
    /// Time since the run started, on the executor's clock.
    fn now(&self) -> Duration;
    /// Wakes up to `count` workers sleeping in [`Role::Worker`].
    fn wake_workers(&self, count: usize);
    /// Wakes the watcher (or the worker that is alone).
    fn wake_watcher(&self);
    /// The machine handed `task` out; called before any worker can see it.
    fn handed_out(&self, _task: Task) {}
    /// The machine asks to cancel `task` if possible; its worker reports
    /// it either way.
    fn abandon(&self, _task: Task) {}
    /// Whether [`add_worker`](Self::add_worker) may start one more worker
    /// (executors that start their workers lazily).
    fn can_add_worker(&self) -> bool {
        false
    }
    /// Starts one more worker, which steps in with [`Came::Start`].
    fn add_worker(&self) {}
    /// Whether sleeping workers also watch the timers: an executor with no
    /// watcher, whose workers sleep until the time [`Next::Sleep`] gives
    /// them and whose [`wake_watcher`](Self::wake_watcher) wakes one of
    /// them. Otherwise a worker is told to sleep until woken.
    fn workers_watch(&self) -> bool {
        false
    }
}

impl<A> Session<A> {
    /// A session around a machine, its observers and the jobs' inputs.
    pub(crate) fn new(
        mut machine: Machine,
        observers: Vec<Box<dyn Observer>>,
        jobs: JobTable<A>,
        args: A,
        cancel: CancelHandle,
    ) -> Session<A> {
        let plan = machine.shared_plan();
        if !observers
            .iter()
            .any(|observer| observer.reads_main_events())
        {
            machine.mute_main_events();
        }
        let clock = Instant::now();
        let run = Arc::new(Mutex::new(Run {
            locals: Vec::new(),
            machine,
            observers,
            handoff: VecDeque::new(),
            idle_workers: 0,
            watcher_wakes: None,
            broken: false,
        }));
        let reporting = cancel.lend_reports({
            let run = Arc::downgrade(&run);
            move || {
                let run = run.upgrade()?;
                let run = run.lock().unwrap_or_else(PoisonError::into_inner);
                Some(run.machine.report_if_ended_now(clock.elapsed()))
            }
        });
        Session {
            jobs,
            args,
            global: GlobalStorage::default(),
            cancel,
            clock,
            run,
            reporting,
            plan,
        }
    }

    /// The plan being run, readable without the lock; clone the `Arc` to
    /// keep it after [`into_report`](Self::into_report).
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The run's arguments, as every job is handed them.
    pub fn args(&self) -> &A {
        &self.args
    }

    /// The job value behind `id` (ids are the plan's).
    ///
    /// ```
    /// use dojobber::prelude::*;
    ///
    /// struct Kettle;
    /// impl Job for Kettle {}
    ///
    /// let session = Runner::new(Kettle, ()).into_session()?;
    /// assert_eq!(session.job(session.plan().root()).name(), "Kettle");
    /// # Ok::<(), SetupError>(())
    /// ```
    pub fn job(&self, id: JobId) -> &JobRef<A> {
        &self.jobs[id.index()]
    }

    /// The run's global storage, which [`perform`](Self::perform) lends to
    /// every phase: an embedding program may fill it before the run.
    ///
    /// ```
    /// use dojobber::prelude::*;
    ///
    /// struct Kettle;
    /// impl Job for Kettle {}
    ///
    /// let session = Runner::new(Kettle, ()).into_session()?;
    /// session.global().insert("litres", 2_u32);
    /// assert_eq!(session.global().get::<u32>("litres"), Some(2));
    /// # Ok::<(), SetupError>(())
    /// ```
    pub fn global(&self) -> &GlobalStorage {
        &self.global
    }

    /// The handle that stops the run: an executor subscribes to it
    /// ([`CancelHandle::subscribe`]) to wake its watcher.
    pub fn cancel_handle(&self) -> &CancelHandle {
        &self.cancel
    }

    /// The machine's settings (workers, no-act, cleanup, ...).
    pub fn config(&self) -> MachineConfig {
        self.lock().machine.config()
    }

    /// The most workers the run can keep busy at once
    /// ([`Machine::most_in_flight`]): start no more.
    pub fn most_in_flight(&self) -> usize {
        self.lock().machine.most_in_flight()
    }

    /// The report, built once the job values, the arguments and the
    /// storages are dropped: a large run does not hold them and its report
    /// at once, nor the plan's names and the report's. Call it once every
    /// worker has stepped to [`Next::Done`].
    pub fn into_report(self) -> Report {
        let Session {
            jobs,
            args,
            global,
            run,
            plan,
            reporting,
            ..
        } = self;
        // Once withdrawn, the cancel handle holds the run no more.
        drop(reporting);
        drop(jobs);
        // The machine's is then the only handle: the report takes its names.
        // The arguments and observers are user code, whose `Drop` may panic
        // (the storages catch their values' own).
        drop_caught(args);
        drop((global, plan));
        let run = Arc::into_inner(run)
            .expect("only the session holds the run once its reports are withdrawn")
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        run.observers.into_iter().for_each(drop_caught);
        drop((run.locals, run.handoff));
        run.machine.into_report_card()
    }

    /// How many phases handed out wait for a worker to take them.
    #[cfg(feature = "tokio")]
    pub(crate) fn phases_waiting(&self) -> usize {
        self.lock().handoff.len()
    }

    /// The run's shared state. A panic under the lock (an observer's)
    /// stops the run rather than poisoning every worker. Held for one
    /// [`step`](Self::step), never while performing a phase.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One turn of a worker: takes in what it brings, then tells it what to
    /// do next. The whole loop of every driver, under the session's lock,
    /// which it takes: `session.step(role, came, &executor)`.
    ///
    /// Every [`Next::Perform`] must come back, once, as
    /// [`Came::Finished`] with the same task (an abandoned phase too, as a
    /// failure if it was cancelled). A worker told [`Next::Sleep`] sleeps
    /// until its executor wakes it (or, watcher or alone, until the time
    /// given), then steps with [`Came::Woke`]; told [`Next::Done`], it ends.
    ///
    /// # Panics
    ///
    /// When an executor brings a [`Done`] for a phase this session did not
    /// hand out, or brings one twice: an executor's bug, which would
    /// otherwise corrupt the run.
    ///
    /// A first turn, alone (the [module](crate::engine::driver) has a
    /// whole driver):
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use dojobber::engine::driver::{Came, Executor, Next, Role};
    /// use dojobber::prelude::*;
    ///
    /// struct Inline(Instant);
    /// impl Executor for Inline {
    ///     fn now(&self) -> Duration { self.0.elapsed() }
    ///     fn wake_workers(&self, _count: usize) {}
    ///     fn wake_watcher(&self) {}
    /// }
    ///
    /// struct Kettle;
    /// impl Job for Kettle {}
    ///
    /// let session = Runner::new(Kettle, ()).into_session()?;
    /// let executor = Inline(Instant::now());
    /// let Next::Perform(work) = session.step(Role::Alone, Came::Start, &executor) else {
    ///     unreachable!("a new run's first turn is a phase to perform");
    /// };
    /// assert_eq!(work.task.phase, Phase::Check);
    /// # Ok::<(), SetupError>(())
    /// ```
    pub fn step(&self, role: Role, came: Came, executor: &impl Executor) -> Next {
        let mut guard = self.lock();
        let run = &mut *guard;
        // The clock is read once per turn. Alone, a phase that just ended
        // brings the time it ended: nobody polled since, so that is now as
        // far as the machine can tell. With several workers, another may
        // have polled later meanwhile: read it under the lock, so times
        // never go backwards.
        let mut landed = None;
        match came {
            Came::Start => {}
            Came::Woke if role == Role::Worker => {
                run.idle_workers -= 1;
                if executor.workers_watch() {
                    // When the others wake is no longer known: as if never,
                    // so the next timer made rings one of them.
                    run.watcher_wakes = (run.idle_workers > 0).then_some(Duration::MAX);
                }
            }
            Came::Woke => run.watcher_wakes = None,
            Came::Finished(Done {
                task,
                local,
                outcome,
                at,
                performed_by,
            }) => {
                landed = Some(at).filter(|_| role == Role::Alone);
                run.finish(task, local, outcome, performed_by, at);
            }
        }
        let now = landed.unwrap_or_else(|| executor.now());
        if run.broken {
            return Next::Done;
        }
        // Before anything is handed out, a cancel is seen: it stops the run
        // before any job it would have blocked can start. `decide` sees it
        // before each poll.
        let mut next = match run.handoff.pop_front() {
            Some(work) if role != Role::Watcher => {
                self.see_cancel(run);
                Next::Perform(work)
            }
            handed => {
                if let Some(work) = handed {
                    run.handoff.push_front(work);
                }
                self.decide(run, role, now, executor)
            }
        };
        if matches!(next, Next::Perform(_)) {
            self.feed_idle_workers(run, now, executor);
        }
        match &mut next {
            Next::Sleep(until) => match role {
                Role::Worker => {
                    run.idle_workers += 1;
                    if executor.workers_watch() {
                        let wakes = until.unwrap_or(Duration::MAX);
                        run.watcher_wakes = Some(run.watcher_wakes.map_or(wakes, |w| w.min(wakes)));
                    } else {
                        *until = None;
                    }
                }
                Role::Watcher => run.watcher_wakes = Some(until.unwrap_or(Duration::MAX)),
                Role::Alone => {}
            },
            Next::Done => {
                executor.wake_workers(usize::MAX);
                executor.wake_watcher();
            }
            Next::Perform(_) => {}
        }
        if role == Role::Worker {
            run.tell_watcher(executor);
        }
        if run.machine.has_events() {
            run.publish();
        }
        next
    }

    /// Tells the machine of a cancel, if there was one.
    fn see_cancel(&self, run: &mut Run) {
        if self.cancel.is_cancelled() {
            run.machine.stop(StopReason::Cancelled);
        }
    }

    /// Polls the machine until it says what this worker does.
    fn decide(&self, run: &mut Run, role: Role, now: Duration, executor: &impl Executor) -> Next {
        loop {
            self.see_cancel(run);
            let step = run.machine.poll(now);
            tracing::trace!(?step, ?role, "machine step");
            match step {
                Step::Perform(task) => {
                    let work = run.lend(task, executor);
                    if role != Role::Watcher {
                        return Next::Perform(work);
                    }
                    run.handoff.push_back(work);
                    if run.idle_workers >= run.handoff.len() {
                        executor.wake_workers(1);
                    } else if executor.can_add_worker() {
                        executor.add_worker();
                    }
                }
                Step::Abandon(task) => executor.abandon(task),
                Step::Wait(at) => return Next::Sleep(Some(at)),
                Step::Idle => return Next::Sleep(None),
                Step::Done => return Next::Done,
            }
        }
    }

    /// A worker that has its own phase asks the machine for more while
    /// others sleep (or more can start), and wakes (or starts) one for each
    /// phase it gets.
    fn feed_idle_workers(&self, run: &mut Run, now: Duration, executor: &impl Executor) {
        loop {
            let sleeper = run.idle_workers > run.handoff.len();
            if !sleeper && !executor.can_add_worker() {
                return;
            }
            match run.machine.poll(now) {
                Step::Perform(task) => {
                    let work = run.lend(task, executor);
                    run.handoff.push_back(work);
                    if sleeper {
                        executor.wake_workers(1);
                    } else {
                        executor.add_worker();
                    }
                }
                Step::Abandon(task) => executor.abandon(task),
                Step::Wait(_) | Step::Idle | Step::Done => return,
            }
        }
    }

    /// Tells the run's observers (its printer among them) something the
    /// user must know that is no transition of the machine: an
    /// [`Event::Warning`](crate::Event::Warning), shown at every verbosity.
    /// Takes the session's lock: call it from no observer.
    ///
    /// ```
    /// use dojobber::prelude::*;
    ///
    /// struct Kettle;
    /// impl Job for Kettle {}
    ///
    /// let session = Runner::new(Kettle, ()).into_session()?;
    /// session.warn(None, "the kitchen's worker went silent");
    /// # Ok::<(), SetupError>(())
    /// ```
    pub fn warn(&self, job: Option<JobId>, message: impl Into<String>) {
        let event = crate::event::Event::Warning {
            job,
            message: message.into(),
        };
        let mut run = self.lock();
        let run = &mut *run;
        for observer in &mut run.observers {
            observer.on_event(&event, run.machine.plan());
        }
    }

    /// Stops every worker after a panic outside user code (an observer's,
    /// or the executor's own): their next step is [`Next::Done`].
    pub fn break_down(&self, executor: &impl Executor) {
        self.lock().broken = true;
        executor.wake_workers(usize::MAX);
        executor.wake_watcher();
    }

    /// Performs a phase on this thread (a panic in the job's code is its
    /// failure); `now` reads the executor's clock when it ends.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use dojobber::engine::driver::{Came, Executor, Next, Role};
    /// use dojobber::prelude::*;
    ///
    /// struct Inline(Instant);
    /// impl Executor for Inline {
    ///     fn now(&self) -> Duration { self.0.elapsed() }
    ///     fn wake_workers(&self, _count: usize) {}
    ///     fn wake_watcher(&self) {}
    /// }
    ///
    /// struct Kettle;
    /// impl Job for Kettle {
    ///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("cold") }
    /// }
    ///
    /// let session = Runner::new(Kettle, ()).into_session()?;
    /// let executor = Inline(Instant::now());
    /// if let Next::Perform(work) = session.step(Role::Alone, Came::Start, &executor) {
    ///     let done = session.perform(work, || executor.now());
    ///     assert!(!done.outcome.is_pass());
    ///     // Then: session.step(Role::Alone, Came::Finished(done), &executor).
    /// }
    /// # Ok::<(), SetupError>(())
    /// ```
    pub fn perform(&self, work: Work, now: impl Fn() -> Duration) -> Done
    where
        A: 'static,
    {
        let Work { task, mut local } = work;
        let job = &*self.jobs[task.job.index()];
        let outcome = perform(job, &self.args, &self.global, task, &mut local);
        Done {
            task,
            local,
            outcome,
            at: now(),
            performed_by: Performer::Here,
        }
    }
}

impl Run {
    /// Takes a job's local storage for a phase, emptied if the phase starts
    /// a new try.
    fn lend(&mut self, task: Task, executor: &impl Executor) -> Work {
        // Looked up only when some job stores something.
        let local = match self.locals.get_mut(task.job.index()) {
            Some((attempt, local)) if *attempt == task.attempt => std::mem::take(local),
            Some((_, last_try)) if !last_try.is_empty() => {
                // The last try's values: user code, whose `Drop` may panic.
                drop_caught(std::mem::take(last_try));
                LocalStorage::default()
            }
            _ => LocalStorage::default(),
        };
        executor.handed_out(task);
        Work { task, local }
    }

    /// A phase performed: keeps the try's local storage if it holds
    /// something and reports the outcome. Inlined into the generic `step`
    /// (compiled in the user's crate), and given a [`Done`]'s parts rather
    /// than the whole, so the outcome is not moved once more per phase.
    #[inline]
    fn finish(
        &mut self,
        task: Task,
        local: LocalStorage,
        outcome: Outcome,
        performed_by: Performer,
        at: Duration,
    ) {
        if !local.is_empty() {
            if self.locals.is_empty() {
                let jobs = self.machine.plan().len();
                self.locals = (0..jobs).map(|_| (0, LocalStorage::default())).collect();
            }
            self.locals[task.job.index()] = (task.attempt, local);
        }
        self.machine
            .handle_outcome_by(task, outcome, performed_by, at)
            .expect("the driver reports exactly the phases it was handed");
    }

    /// Wakes the watcher if the machine now has a timer before its alarm.
    fn tell_watcher(&mut self, executor: &impl Executor) {
        if let (Some(wakes), Some(timer)) = (self.watcher_wakes, self.machine.next_timer())
            && timer < wakes
        {
            self.watcher_wakes = Some(timer);
            executor.wake_watcher();
        }
    }

    fn publish(&mut self) {
        while let Some(event) = self.machine.poll_event() {
            for observer in &mut self.observers {
                observer.on_event(&event, self.machine.plan());
            }
        }
    }
}

/// Calls the user code of one phase; a panic becomes its failure. The
/// storage is lent, not moved in and out: a phase's values move as little
/// as they can.
pub(crate) fn perform<A: 'static>(
    job: &dyn Job<A>,
    args: &A,
    global: &GlobalStorage,
    task: Task,
    local: &mut LocalStorage,
) -> Outcome {
    let mut cx = Context::new(args, local, global, task.phase, task.attempt);
    Outcome::from_call(catch_unwind(AssertUnwindSafe(|| match task.phase {
        Phase::Check | Phase::Recheck => job.check(&mut cx),
        Phase::Run => job.run(&mut cx),
        Phase::Cleanup => job.cleanup(&mut cx),
    })))
}
