//! The thread executors: the caller's thread alone (`workers(1)`), or a pool
//! of scoped worker threads with the caller's thread as the watcher.
//!
//! A thread cannot be interrupted: an abandoned phase runs on, and its job
//! is not retried until it returns (the machine waits for its report).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Came, Executor, Next, Role, Session};
use crate::plan::SetupError;

/// A counting wake-up call: rings are kept until a sleeper takes them, so
/// none is lost between deciding to sleep and sleeping.
#[derive(Default)]
struct Bell {
    rings: Mutex<usize>,
    rung: Condvar,
}

impl Bell {
    fn ring(&self, count: usize) {
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        *rings = rings.saturating_add(count);
        if count == 1 {
            self.rung.notify_one();
        } else {
            self.rung.notify_all();
        }
    }

    /// Sleeps until rung or `timeout` has passed.
    fn wait(&self, timeout: Option<Duration>) {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rings = match timeout {
            Some(timeout) => {
                self.rung
                    .wait_timeout_while(rings, timeout, |rings| *rings == 0)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .rung
                .wait_while(rings, |rings| *rings == 0)
                .unwrap_or_else(PoisonError::into_inner),
        };
        *rings = rings.saturating_sub(1);
    }
}

struct Threads {
    clock: Instant,
    workers: usize,
    worker_bell: Bell,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Bell>,
}

impl Executor for Threads {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }
    fn wake_workers(&self, count: usize) {
        self.worker_bell.ring(count.min(self.workers));
    }
    fn wake_watcher(&self) {
        self.watcher_bell.ring(1);
    }
}

impl Threads {
    fn new(clock: Instant, workers: usize) -> Threads {
        Threads {
            clock,
            workers,
            worker_bell: Bell::default(),
            watcher_bell: Arc::default(),
        }
    }

    /// One worker's whole life: step, perform or sleep, step again.
    fn work<A: 'static>(&self, session: &Session<A>, role: Role) {
        let mut came = Came::Start;
        loop {
            let next = session.step(role, came, self);
            came = match next {
                Next::Perform(work) => Came::Finished(session.perform(work, || self.now())),
                Next::Sleep(until) => {
                    let bell = match role {
                        Role::Worker => &self.worker_bell,
                        Role::Watcher | Role::Alone => &self.watcher_bell,
                    };
                    bell.wait(until.map(|at| at.saturating_sub(self.now())));
                    Came::Woke
                }
                Next::Done => return,
            };
        }
    }

    /// [`work`](Self::work), stopping everyone else if it panics (an
    /// observer's panic: user code in phases is caught where it runs).
    fn work_or_break_down<A: 'static>(&self, session: &Session<A>, role: Role) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.work(session, role))) {
            session.break_down(self);
            resume_unwind(panic);
        }
    }
}

/// Runs the session on the caller's thread alone: one phase at a time, in
/// the reference order.
pub(crate) fn drive_alone<A: Sync + 'static>(session: &Session<A>) {
    let threads = Threads::new(session.clock, 1);
    let _subscription = session.cancel.subscribe(wake_watcher_of(&threads));
    threads.work(session, Role::Alone);
}

/// Runs the session on up to `workers` threads (no more than can ever be
/// busy at once), the caller's thread watching the timers. Fails, before
/// anything runs, if a thread cannot be started.
pub(crate) fn drive_pool<A: Sync + 'static>(
    session: &Session<A>,
    workers: usize,
) -> Result<(), SetupError> {
    let wanted = workers.min(session.lock().machine.most_in_flight());
    let threads = Threads::new(session.clock, wanted);
    let gate = Gate::default();
    std::thread::scope(|scope| {
        let mut started = Vec::with_capacity(wanted);
        for number in 1..=wanted {
            let spawned = std::thread::Builder::new()
                .name(format!("dojobber worker {number}"))
                .spawn_scoped(scope, || {
                    if gate.wait_open() {
                        threads.work_or_break_down(session, Role::Worker);
                    }
                });
            match spawned {
                Ok(worker) => started.push(worker),
                Err(error) => {
                    gate.set(false);
                    return Err(SetupError::WorkerThread {
                        workers,
                        number,
                        wanted,
                        source: crate::plan::SpawnError(std::sync::Arc::new(error)),
                    });
                }
            }
        }
        gate.set(true);
        let _subscription = session.cancel.subscribe(wake_watcher_of(&threads));
        threads.work_or_break_down(session, Role::Watcher);
        // A worker's panic (an observer's) reaches the caller as it was.
        for worker in started {
            if let Err(panic) = worker.join() {
                resume_unwind(panic);
            }
        }
        Ok(())
    })
}

/// A cancel wakes the watcher, which tells the machine.
fn wake_watcher_of(threads: &Threads) -> impl Fn() + Send + Sync + 'static {
    let bell = Arc::clone(&threads.watcher_bell);
    move || bell.ring(1)
}

/// Holds the workers until every thread has started (open) or one could
/// not be (shut): a failed start runs nothing.
#[derive(Default)]
struct Gate {
    open: Mutex<Option<bool>>,
    decided: Condvar,
}

impl Gate {
    fn set(&self, open: bool) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = Some(open);
        self.decided.notify_all();
    }

    fn wait_open(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self
            .decided
            .wait_while(open, |open| open.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        open.unwrap_or(false)
    }
}
