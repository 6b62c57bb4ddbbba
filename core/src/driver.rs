//! The drivers: they own the job values, the arguments, the storages and
//! the clock, perform what the machine hands out, and report back. They
//! make no scheduling decision of their own.
//!
//! - [`Session::drive_sequential`]: one phase at a time on the caller's
//!   thread; its order is the reference order.
//! - [`Session::drive_threads`]: up to n phases at once on n scoped worker
//!   threads; results come back over a channel. A phase cannot be killed:
//!   one over its time limit has already failed its try in the machine, and
//!   the driver waits for it to return before the job may be retried.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};

use crate::cancel::CancelHandle;
use crate::event::Outcome;
use crate::graph::JobTable;
use crate::job::{Context, Job, Phase};
use crate::machine::{Machine, Step, StopReason, Task};
use crate::output::Observer;
use crate::storage::{GlobalStorage, LocalStorage};

/// A run in progress: the machine and everything the jobs touch.
pub(crate) struct Session<A> {
    pub(crate) machine: Machine,
    /// Shared, so async tasks can hold them.
    pub(crate) jobs: Arc<JobTable<A>>,
    pub(crate) args: Arc<A>,
    pub(crate) global: Arc<GlobalStorage>,
    /// Per job: the try its local storage belongs to, and the storage.
    pub(crate) locals: Vec<(u32, LocalStorage)>,
    pub(crate) observers: Vec<Box<dyn Observer>>,
    pub(crate) clock: Instant,
    pub(crate) cancel: CancelHandle,
}

/// A phase for a worker, with the job's local storage lent to it.
struct Work {
    task: Task,
    local: LocalStorage,
}

/// A phase done, with the storage back and when it ended.
struct Done {
    task: Task,
    local: LocalStorage,
    outcome: Outcome,
    at: Duration,
}

impl<A: Sync + 'static> Session<A> {
    /// One phase at a time, in the reference order.
    pub(crate) fn drive_sequential(&mut self) {
        let mut now = self.clock.elapsed();
        loop {
            if self.cancel.is_cancelled() {
                self.machine.stop(StopReason::Cancelled);
            }
            let step = self.machine.poll(now);
            tracing::trace!(?step, "machine step");
            match step {
                Step::Perform(task) => {
                    let local = lend_local(&mut self.locals, task);
                    let job = &*self.jobs[task.job.index()];
                    let (outcome, local) = perform(job, &self.args, &self.global, task, local);
                    self.locals[task.job.index()].1 = local;
                    // The end of this phase is the start of the next: one clock read.
                    now = self.clock.elapsed();
                    self.machine
                        .report(task.job, task.phase, outcome, now)
                        .expect("the driver reports exactly the phase it was handed");
                }
                Step::Wait(deadline) => {
                    self.cancel.sleep(deadline.saturating_sub(now));
                    now = self.clock.elapsed();
                }
                Step::Idle | Step::Abandon(_) => {
                    unreachable!("the sequential driver has nothing in flight when it polls")
                }
                Step::Done => {
                    self.publish_events();
                    return;
                }
            }
            self.publish_events();
        }
    }

    /// Up to `workers` phases at once on as many threads.
    pub(crate) fn drive_threads(&mut self, workers: usize) {
        let Session {
            machine,
            jobs,
            args,
            global,
            locals,
            observers,
            clock,
            cancel,
        } = self;
        let (jobs, args, global, clock) = (&**jobs, &**args, &**global, &*clock);
        let (wake, cancelled) = crossbeam_channel::bounded(1);
        let _subscription = cancel.subscribe(move || {
            let _ = wake.try_send(());
        });
        std::thread::scope(|scope| {
            let (work_sender, work) = crossbeam_channel::unbounded::<Work>();
            let (done_sender, done) = crossbeam_channel::unbounded::<Done>();
            for _ in 0..workers {
                let (work, done_sender) = (work.clone(), done_sender.clone());
                scope.spawn(move || {
                    for Work { task, local } in work {
                        let job = &*jobs[task.job.index()];
                        let (outcome, local) = perform(job, args, global, task, local);
                        let at = clock.elapsed();
                        let done = Done {
                            task,
                            local,
                            outcome,
                            at,
                        };
                        if done_sender.send(done).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_sender);
            loop {
                if cancel.is_cancelled() {
                    machine.stop(StopReason::Cancelled);
                }
                let now = clock.elapsed();
                let step = machine.poll(now);
                tracing::trace!(?step, "machine step");
                let finished = match step {
                    // One cleanup at a time with nothing else in flight:
                    // done here, without a round trip to a worker.
                    Step::Perform(task) if task.phase == Phase::Cleanup => {
                        let local = lend_local(locals, task);
                        let job = &*jobs[task.job.index()];
                        let (outcome, local) = perform(job, args, global, task, local);
                        let at = clock.elapsed();
                        Some(Done {
                            task,
                            local,
                            outcome,
                            at,
                        })
                    }
                    Step::Perform(task) => {
                        let local = lend_local(locals, task);
                        work_sender
                            .send(Work { task, local })
                            .expect("workers live as long as the scope");
                        None
                    }
                    // A thread cannot be interrupted: the phase goes on and
                    // reports when it returns; the machine ignores its outcome.
                    Step::Abandon(_) => None,
                    Step::Wait(deadline) => {
                        wait_for(&done, &cancelled, Some(deadline.saturating_sub(now)))
                    }
                    Step::Idle => wait_for(&done, &cancelled, None),
                    Step::Done => break,
                };
                if let Some(done) = finished {
                    locals[done.task.job.index()].1 = done.local;
                    machine
                        .report(done.task.job, done.task.phase, done.outcome, done.at)
                        .expect("the driver reports exactly the phases it was handed");
                }
                publish(machine, observers);
            }
            drop(work_sender);
            publish(machine, observers);
        });
    }

    fn publish_events(&mut self) {
        publish(&mut self.machine, &mut self.observers);
    }
}

/// Takes a job's local storage for a phase, emptied if the phase starts a new try.
pub(crate) fn lend_local(locals: &mut [(u32, LocalStorage)], task: Task) -> LocalStorage {
    let (attempt, local) = &mut locals[task.job.index()];
    if *attempt != task.attempt {
        *attempt = task.attempt;
        *local = LocalStorage::default();
    }
    std::mem::take(local)
}

/// Waits for a phase to finish, a cancel, or `timeout`, whichever comes first.
fn wait_for(
    done: &Receiver<Done>,
    cancelled: &Receiver<()>,
    timeout: Option<Duration>,
) -> Option<Done> {
    let timeout = match timeout {
        Some(timeout) => crossbeam_channel::after(timeout),
        None => crossbeam_channel::never(),
    };
    select! {
        recv(done) -> done => done.ok(),
        recv(cancelled) -> _ => None,
        recv(timeout) -> _ => None,
    }
}

pub(crate) fn publish(machine: &mut Machine, observers: &mut [Box<dyn Observer>]) {
    while let Some(event) = machine.poll_event() {
        for observer in observers.iter_mut() {
            observer.on_event(&event, machine.plan());
        }
    }
}

/// Calls the user code of one phase; a panic becomes its failure.
pub(crate) fn perform<A: 'static>(
    job: &dyn Job<A>,
    args: &A,
    global: &GlobalStorage,
    task: Task,
    mut local: LocalStorage,
) -> (Outcome, LocalStorage) {
    let mut cx = Context::new(args, &mut local, global, task.phase, task.attempt);
    let outcome = Outcome::from_call(catch_unwind(AssertUnwindSafe(|| match task.phase {
        Phase::Check | Phase::Recheck => job.check(&mut cx),
        Phase::Run => job.run(&mut cx),
        Phase::Cleanup => job.cleanup(&mut cx),
    })));
    (outcome, local)
}
