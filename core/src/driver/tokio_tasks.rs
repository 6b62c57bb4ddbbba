//! The tokio executor (`Runner::run_async`): workers are tasks on the
//! caller's runtime, the run's own task is the watcher.
//!
//! An async job's phase runs inside its worker, so the next phase needs no
//! hand-off; an abandoned one is cancelled (its future dropped) and reports
//! a failure. A plain job's phase goes to tokio's blocking threads and,
//! like a thread's, runs on when abandoned. The clock is tokio's, so tests
//! with paused time run in virtual time.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use super::{Came, Done, Executor, Next, Role, Session, Work, perform};
use crate::asynchronous::start_phase;
use crate::event::{Failure, Outcome};
use crate::job::Context;
use crate::machine::Task;

/// How to cancel a job's phase in flight, and the other end, until its
/// worker takes it.
type Cancel = (AbortHandle, Option<AbortRegistration>);

struct Tasks {
    start: Instant,
    workers: usize,
    worker_bell: Semaphore,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Notify>,
    /// Per job, while a phase of it is in flight.
    aborts: Mutex<Vec<Option<Cancel>>>,
}

impl Executor for Tasks {
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
}

impl Tasks {
    fn aborts(&self) -> MutexGuard<'_, Vec<Option<Cancel>>> {
        self.aborts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn work<A: Send + Sync + 'static>(&self, session: &Arc<Session<A>>, role: Role) {
        let mut came = Came::Start;
        loop {
            let next = session.step(&mut session.lock(), role, came, self);
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

    /// Performs a phase: an async job's here, cancellable; a plain job's on
    /// a blocking thread.
    async fn perform<A: Send + Sync + 'static>(
        &self,
        session: &Arc<Session<A>>,
        work: Work,
    ) -> Done {
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
                let session = Arc::clone(session);
                let blocking = tokio::task::spawn_blocking(move || {
                    let job = &*session.jobs[task.job.index()];
                    perform(job, &session.args, &session.global, task, local)
                });
                let (outcome, local) = match blocking.await {
                    Ok(performed) => performed,
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                };
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

/// Runs the session on tokio tasks: up to `workers` workers (no more than
/// can ever be busy at once), this task watching the timers.
pub(crate) async fn drive<A: Send + Sync + 'static>(session: &Arc<Session<A>>) {
    let (workers, jobs) = {
        let run = session.lock();
        (run.machine.most_in_flight(), run.machine.plan().len())
    };
    let tasks = Arc::new(Tasks {
        start: Instant::now(),
        workers,
        worker_bell: Semaphore::new(0),
        watcher_bell: Arc::new(Notify::new()),
        aborts: Mutex::new((0..jobs).map(|_| None).collect()),
    });
    let _subscription = session.cancel.subscribe({
        let bell = Arc::clone(&tasks.watcher_bell);
        move || bell.notify_one()
    });
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (tasks, session) = (Arc::clone(&tasks), Arc::clone(session));
        running.spawn(async move {
            let work = AssertUnwindSafe(tasks.work(&session, Role::Worker));
            if let Err(panic) = work.catch_unwind().await {
                session.break_down(&*tasks);
                std::panic::resume_unwind(panic);
            }
        });
    }
    let watching = AssertUnwindSafe(tasks.work(session, Role::Watcher))
        .catch_unwind()
        .await;
    if let Err(panic) = watching {
        session.break_down(&*tasks);
        std::panic::resume_unwind(panic);
    }
    while let Some(ended) = running.join_next().await {
        if let Err(error) = ended
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}
