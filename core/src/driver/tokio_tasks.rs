//! The tokio executor (`Runner::run_async`): workers are tasks on the
//! caller's runtime, the run's own task is the watcher.
//!
//! An async job's phase runs inside its worker, so the next phase needs no
//! hand-off; an abandoned one is cancelled (its future dropped) and reports
//! a failure. A plain job's phase runs inside its worker too, until one
//! takes over 100 µs, and never in a run with time limits or a deadline:
//! then it goes to tokio's blocking threads and, like a thread's, runs on
//! when abandoned. The clock is tokio's, so tests
//! with paused time run in virtual time.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::{Came, Done, Executor, Next, Role, Session, Work, perform};
use crate::event::Outcome;
use crate::event::Task;
use crate::job::Context;
use crate::job::asynchronous::start_phase;
use crate::report::Failure;
use crate::storage::LocalStorage;

/// How to cancel a job's phase in flight, and the other end, until its
/// worker takes it.
type Cancel = (AbortHandle, Option<AbortRegistration>);

struct Tasks<A> {
    session: Arc<Session<A>>,
    /// Itself, for the workers it starts.
    me: Weak<Tasks<A>>,
    start: Instant,
    /// The most workers the run can use.
    workers: usize,
    /// Workers started so far: one more each time the machine has a phase
    /// and no worker sleeps, up to `workers` (changed under the session's
    /// lock).
    started: AtomicUsize,
    /// Workers that have ended, and a call for the watcher when the last does.
    ended: AtomicUsize,
    all_ended: Notify,
    /// The first panic of a worker (an observer's), for the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    worker_bell: Semaphore,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Notify>,
    /// Per job, while a phase of it is in flight.
    aborts: Mutex<Vec<Option<Cancel>>>,
    /// Whether plain jobs' phases go to tokio's blocking threads rather
    /// than run in their workers (see `perform_plain`).
    plain_to_threads: AtomicBool,
}

impl<A: Send + Sync + 'static> Executor for Tasks<A> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn wake_workers(&self, count: usize) {
        self.worker_bell.add_permits(count.min(self.workers));
    }
    fn wake_watcher(&self) {
        self.watcher_bell.notify_one();
    }
    fn handed_out(&self, task: Task) {
        let (handle, registration) = AbortHandle::new_pair();
        self.aborts()[task.job.index()] = Some((handle, Some(registration)));
    }
    fn abandon(&self, task: Task) {
        if let Some((handle, _)) = &self.aborts()[task.job.index()] {
            handle.abort();
        }
    }
    fn can_add_worker(&self) -> bool {
        self.started.load(Ordering::SeqCst) < self.workers
    }
    fn add_worker(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let tasks = self
            .me
            .upgrade()
            .expect("the executor outlives its workers");
        tokio::spawn(async move { tasks.worker().await });
    }
}

impl<A: Send + Sync + 'static> Tasks<A> {
    /// A worker's whole life; a panic stops the run and is kept for the
    /// caller.
    async fn worker(&self) {
        let work = AssertUnwindSafe(self.work(&self.session, Role::Worker));
        if let Err(panic) = work.catch_unwind().await {
            self.session.break_down(self);
            self.panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(panic);
        }
        self.ended.fetch_add(1, Ordering::SeqCst);
        self.all_ended.notify_one();
    }

    /// Waits for every worker started to end.
    async fn all_workers_ended(&self) {
        loop {
            let notified = self.all_ended.notified();
            // Under the lock: no worker starts meanwhile.
            let started = {
                let _run = self.session.lock();
                self.started.load(Ordering::SeqCst)
            };
            if self.ended.load(Ordering::SeqCst) == started {
                return;
            }
            notified.await;
        }
    }

    fn aborts(&self) -> MutexGuard<'_, Vec<Option<Cancel>>> {
        self.aborts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn work(&self, session: &Arc<Session<A>>, role: Role) {
        let mut came = Came::Start;
        loop {
            let next = session.step(role, came, self);
            came = match next {
                Next::Perform(work) => Came::Finished(self.perform(session, work).await),
                Next::Sleep(until) => {
                    match role {
                        Role::Worker => self
                            .worker_bell
                            .acquire()
                            .await
                            .expect("the bell is never closed")
                            .forget(),
                        Role::Watcher | Role::Alone => {
                            let until =
                                until.map_or(Duration::MAX, |at| at.saturating_sub(self.now()));
                            let _ = tokio::time::timeout(until, self.watcher_bell.notified()).await;
                        }
                    }
                    Came::Woke
                }
                Next::Done => return,
            };
        }
    }

    /// Performs a phase: an async job's here, cancellable; a plain job's
    /// as [`perform_plain`](Self::perform_plain) says.
    async fn perform(&self, session: &Arc<Session<A>>, work: Work) -> Done {
        let Work { task, mut local } = work;
        let registration = self.aborts()[task.job.index()]
            .as_mut()
            .and_then(|(_, registration)| registration.take())
            .expect("every phase handed out can be cancelled");
        let done = match session.jobs[task.job.index()].as_async() {
            Some(job) => {
                let outcome = {
                    let mut cx = Context::new(
                        &session.args,
                        &mut local,
                        &session.global,
                        task.phase,
                        task.attempt,
                    );
                    // Polled inside catch_unwind, so a panic while making
                    // the future is caught as well as one while it runs.
                    let phase = async { start_phase(job, &mut cx, task.phase).await };
                    match Abortable::new(AssertUnwindSafe(phase).catch_unwind(), registration).await
                    {
                        Ok(call) => Outcome::from_call(call),
                        Err(_aborted) => Outcome::Fail(Failure::new("the phase was cancelled")),
                    }
                };
                Done {
                    task,
                    local,
                    outcome,
                    at: self.now(),
                }
            }
            None => {
                let (outcome, local) = self.perform_plain(session, task, local).await;
                Done {
                    task,
                    local,
                    outcome,
                    at: self.now(),
                }
            }
        };
        self.aborts()[task.job.index()] = None;
        done
    }
}

/// A plain phase that takes longer than this blocks a runtime thread for
/// too long (tokio's rule of thumb for the time between two awaits): the
/// run's later plain phases go to tokio's blocking threads.
const SLOW_PLAIN_PHASE: Duration = Duration::from_micros(100);

impl<A: Send + Sync + 'static> Tasks<A> {
    /// Performs a plain (synchronous) job's phase: here, on the worker's
    /// own thread, as the thread driver does (a hand-off to a blocking
    /// thread and back costs 5 to 30 µs a phase, more than most phases),
    /// then gives the runtime a turn if the task's budget is spent. Once a
    /// plain phase has taken over [`SLOW_PLAIN_PHASE`], and from the start
    /// in a run with time limits or a deadline, on tokio's blocking
    /// threads instead: there a slow phase keeps no runtime thread from
    /// its other tasks, and one past its limit runs on while the run goes
    /// on.
    async fn perform_plain(
        &self,
        session: &Arc<Session<A>>,
        task: Task,
        mut local: LocalStorage,
    ) -> (Outcome, LocalStorage) {
        if !self.plain_to_threads.load(Ordering::Relaxed) {
            let started = Instant::now();
            let job = &*session.jobs[task.job.index()];
            let outcome = perform(job, &session.args, &session.global, task, &mut local);
            if started.elapsed() > SLOW_PLAIN_PHASE {
                self.plain_to_threads.store(true, Ordering::Relaxed);
            }
            tokio::task::consume_budget().await;
            return (outcome, local);
        }
        let session = Arc::clone(session);
        let blocking = tokio::task::spawn_blocking(move || {
            let job = &*session.jobs[task.job.index()];
            let outcome = perform(job, &session.args, &session.global, task, &mut local);
            (outcome, local)
        });
        match blocking.await {
            Ok(performed) => performed,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

/// Runs the session on tokio tasks: up to `workers` workers (no more than
/// can ever be busy at once, and started only as work comes), this task
/// watching the timers.
pub(crate) async fn drive<A: Send + Sync + 'static>(session: &Arc<Session<A>>) {
    let (workers, jobs, limited) = {
        let run = session.lock();
        let limited =
            run.machine.plan().has_time_limits() || run.machine.config().deadline.is_some();
        (
            run.machine.most_in_flight(),
            run.machine.plan().len(),
            limited,
        )
    };
    let tasks = Arc::new_cyclic(|me| Tasks {
        session: Arc::clone(session),
        me: me.clone(),
        start: Instant::now(),
        workers,
        started: AtomicUsize::new(0),
        ended: AtomicUsize::new(0),
        all_ended: Notify::new(),
        panic: Mutex::new(None),
        worker_bell: Semaphore::new(0),
        watcher_bell: Arc::new(Notify::new()),
        aborts: Mutex::new((0..jobs).map(|_| None).collect()),
        plain_to_threads: AtomicBool::new(limited),
    });
    let _subscription = session.cancel.subscribe({
        let bell = Arc::clone(&tasks.watcher_bell);
        move || bell.notify_one()
    });
    let watching = AssertUnwindSafe(tasks.work(session, Role::Watcher))
        .catch_unwind()
        .await;
    if let Err(panic) = watching {
        session.break_down(&*tasks);
        std::panic::resume_unwind(panic);
    }
    tasks.all_workers_ended().await;
    let panic = tasks
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}
