//! How `Runner::run_async` performs a phase, on the task pool
//! ([`drive_tasks`], `task_pool.rs`): workers are tokio tasks on the
//! caller's runtime; the run's own future is the watcher in a run with
//! time limits or a deadline, else one of the workers.
//!
//! An async job's phase runs inside its worker, so the next phase needs no
//! hand-off; an abandoned one is cancelled (its future dropped) and reports
//! a failure. A plain job's phase runs inside its worker too, until one
//! takes over 100 µs, and never in a run with time limits or a deadline:
//! then it goes to tokio's blocking threads and, like a thread's, runs on
//! when abandoned. The clock is tokio's, so tests with paused time run in
//! virtual time.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use tokio::time::Instant;

use super::task_pool::{PerformPhase, drive_tasks};
use super::{Session, Work, perform};
use crate::event::{Outcome, Task};
use crate::job::Context;
use crate::job::asynchronous::start_phase;
use crate::report::Failure;
use crate::storage::LocalStorage;

/// How to cancel a job's phase in flight, and the other end, until its
/// worker takes it.
type Cancel = (AbortHandle, Option<AbortRegistration>);

/// Performs phases in this process: the job's own code.
struct LocalPhases {
    /// Per job, while a phase of it is in flight.
    aborts: Mutex<Vec<Option<Cancel>>>,
    /// Whether plain jobs' phases go to tokio's blocking threads rather
    /// than run in their workers (see `perform_plain`).
    plain_to_threads: AtomicBool,
}

impl LocalPhases {
    fn aborts(&self) -> MutexGuard<'_, Vec<Option<Cancel>>> {
        self.aborts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<A: Send + Sync + 'static> PerformPhase<A> for LocalPhases {
    fn handed_out(&self, task: Task) {
        let (handle, registration) = AbortHandle::new_pair();
        self.aborts()[task.job.index()] = Some((handle, Some(registration)));
    }

    fn abandon(&self, task: Task) {
        if let Some((handle, _)) = &self.aborts()[task.job.index()] {
            handle.abort();
        }
    }

    /// An async job's phase never blocks its thread (or ought not to): it
    /// can be tried on the run's own thread first.
    fn tries_without_blocking(&self, session: &Arc<Session<A>>, work: &Work) -> bool {
        session.jobs[work.task.job.index()].as_async().is_some()
    }

    /// Performs a phase: an async job's here, cancellable; a plain job's
    /// as [`perform_plain`](LocalPhases::perform_plain) says.
    async fn perform(&self, session: &Arc<Session<A>>, work: Work) -> (Outcome, LocalStorage) {
        let Work { task, mut local } = work;
        let registration = self.aborts()[task.job.index()]
            .as_mut()
            .and_then(|(_, registration)| registration.take())
            .expect("every phase handed out can be cancelled");
        let performed = match session.jobs[task.job.index()].as_async() {
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
                (outcome, local)
            }
            None => self.perform_plain(session, task, local).await,
        };
        self.aborts()[task.job.index()] = None;
        performed
    }
}

/// A plain phase that takes longer than this blocks a runtime thread for
/// too long (tokio's rule of thumb for the time between two awaits): the
/// run's later plain phases go to tokio's blocking threads.
const SLOW_PLAIN_PHASE: Duration = Duration::from_micros(100);

impl LocalPhases {
    /// Performs a plain (synchronous) job's phase: here, on the worker's
    /// own thread, as the thread driver does (a hand-off to a blocking
    /// thread and back costs 5 to 30 µs a phase, more than most phases),
    /// then gives the runtime a turn if the task's budget is spent. Once a
    /// plain phase has taken over [`SLOW_PLAIN_PHASE`], and from the start
    /// in a run with time limits or a deadline, on tokio's blocking
    /// threads instead: there a slow phase keeps no runtime thread from
    /// its other tasks, and one past its limit runs on while the run goes
    /// on.
    async fn perform_plain<A: Send + Sync + 'static>(
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

/// Runs the session on tokio tasks, each phase performed in this process.
pub(crate) async fn drive<A: Send + Sync + 'static>(session: &Arc<Session<A>>) {
    let (jobs, limited) = {
        let run = session.lock();
        let limited =
            run.machine.plan().has_time_limits() || run.machine.config().deadline.is_some();
        (run.machine.plan().len(), limited)
    };
    let performer = LocalPhases {
        aborts: Mutex::new((0..jobs).map(|_| None).collect()),
        plain_to_threads: AtomicBool::new(limited),
    };
    drive_tasks(session, performer).await;
}
