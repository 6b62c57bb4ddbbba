//! The async driver (feature `tokio`): [`Runner::run_async`] runs up to
//! `jobs(n)` phases at once as tasks on the caller's tokio runtime.
//!
//! Jobs whose phases are futures implement [`AsyncJob`] and join a graph
//! through [`async_dep`]; plain [`Job`]s sit in the same suite and run on
//! tokio's blocking threads. An async phase over its time limit, or in
//! flight when the run is cancelled, is cancelled (its task is aborted)
//! and fails its try; a blocking phase cannot be, and is waited for, as in
//! the thread driver.
//!
//! ```
//! use std::time::Duration;
//! use dojobber::{async_dep, AsyncJob, Context, Group, PhaseFuture, Runner, Status};
//!
//! struct Ping(&'static str);
//! impl AsyncJob for Ping {
//!     fn name(&self) -> String { format!("ping {}", self.0) }
//!     fn check<'a>(&'a self, _cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
//!         Box::pin(async move {
//!             tokio::time::sleep(Duration::from_millis(10)).await; // a network round trip
//!             Ok(())
//!         })
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # runtime.block_on(async {
//! let hosts = Group::new("pings").with_deps(["a", "b", "c"].map(|h| async_dep(Ping(h))));
//! let report = Runner::new(hosts, ()).jobs(3).run_async().await?.into_report();
//! assert_eq!(report.job("ping b").unwrap().status, Status::Passed);
//! # Ok::<(), dojobber::SetupError>(())
//! # })?;
//! # Ok(())
//! # }
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use crate::driver::{Session, lend_local, perform, publish};
use crate::event::{Failure, Outcome};
use crate::job::{Context, Job, JobKind, JobRef, JobResult, Phase, short_type_name};
use crate::machine::{Step, StopReason, Task};
use crate::plan::{JobId, SetupError};
use crate::runner::{Finished, Runner};
use crate::storage::LocalStorage;

/// What an async phase returns: a boxed future of its result.
pub type PhaseFuture<'a> = Pin<Box<dyn Future<Output = JobResult> + Send + 'a>>;

/// A job whose phases are futures, for the async driver. Everything but
/// the phases means what it means on [`Job`]; wrap it with [`async_dep`]
/// to put it in a graph.
pub trait AsyncJob<A = ()>: Any + Send + Sync {
    /// See [`Job::name`].
    fn name(&self) -> String {
        short_type_name(std::any::type_name::<Self>())
    }

    /// See [`Job::deps`].
    fn deps(&self, _args: &A) -> Vec<JobRef<A>> {
        Vec::new()
    }

    /// See [`Job::kind`].
    fn kind(&self) -> JobKind {
        JobKind::Normal
    }

    /// See [`Job::tries`].
    fn tries(&self) -> Option<u32> {
        None
    }

    /// See [`Job::retry_delay`].
    fn retry_delay(&self) -> Option<Duration> {
        None
    }

    /// See [`Job::time_limit`]; an over-time async phase is cancelled.
    fn time_limit(&self) -> Option<Duration> {
        None
    }

    /// See [`Job::concurrency_group`].
    fn concurrency_group(&self) -> Option<String> {
        None
    }

    /// See [`Job::check`]. The default fails.
    fn check<'a>(&'a self, _cx: &'a mut Context<'_, A>) -> PhaseFuture<'a> {
        let name = self.name();
        Box::pin(async move { anyhow::bail!("{name} has no check") })
    }

    /// See [`Job::run`].
    fn run<'a>(&'a self, _cx: &'a mut Context<'_, A>) -> PhaseFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// See [`Job::cleanup`].
    fn cleanup<'a>(&'a self, _cx: &'a mut Context<'_, A>) -> PhaseFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// Wraps an async job into a [`JobRef`], for lists of deps and roots.
///
/// Outside the async driver (with [`Runner::run`]), each of its phases runs
/// to completion on a small tokio runtime of its own; tokio forbids that on
/// a runtime's own threads, where such a phase fails with tokio's message:
/// inside a runtime, use [`Runner::run_async`].
pub fn async_dep<A: 'static, J: AsyncJob<A>>(job: J) -> JobRef<A> {
    Arc::new(AsyncAdapter(job))
}

/// An [`AsyncJob`] seen as a [`Job`].
struct AsyncAdapter<J>(J);

impl<A: 'static, J: AsyncJob<A>> Job<A> for AsyncAdapter<J> {
    fn name(&self) -> String {
        self.0.name()
    }
    fn deps(&self, args: &A) -> Vec<JobRef<A>> {
        self.0.deps(args)
    }
    fn kind(&self) -> JobKind {
        self.0.kind()
    }
    fn tries(&self) -> Option<u32> {
        self.0.tries()
    }
    fn retry_delay(&self) -> Option<Duration> {
        self.0.retry_delay()
    }
    fn time_limit(&self) -> Option<Duration> {
        self.0.time_limit()
    }
    fn concurrency_group(&self) -> Option<String> {
        self.0.concurrency_group()
    }
    fn check(&self, cx: &mut Context<'_, A>) -> JobResult {
        block_on(self.0.check(cx))
    }
    fn run(&self, cx: &mut Context<'_, A>) -> JobResult {
        block_on(self.0.run(cx))
    }
    fn cleanup(&self, cx: &mut Context<'_, A>) -> JobResult {
        block_on(self.0.cleanup(cx))
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<J>()
    }
    fn as_async(&self) -> Option<&dyn AsyncJob<A>> {
        Some(&self.0)
    }
}

/// Runs a phase's future for the synchronous drivers.
fn block_on(future: PhaseFuture<'_>) -> JobResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(future)
}

impl<A: Send + Sync + 'static> Runner<A> {
    /// Runs the suite on the caller's tokio runtime (which needs its time
    /// driver: `#[tokio::main]` has it), up to `jobs(n)` phases at once:
    /// async jobs as tasks, the others on tokio's blocking threads. The
    /// semantics are those of [`run`](Runner::run).
    pub async fn run_async(self) -> Result<Finished<A>, SetupError> {
        let mut session = self.start()?;
        // The driver runs as a task of its own: woken by a runtime worker
        // rather than by the caller's thread, each phase costs one wake-up
        // less (tens of microseconds under `block_on`).
        let driving = tokio::spawn(async move {
            session.drive_async().await;
            session
        });
        match driving.await {
            Ok(session) => Ok(Finished { session }),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("the runtime dropped the run's task: {error}"),
        }
    }
}

/// A phase in flight in the async driver.
struct Flying {
    task: Task,
    /// For async phases, which can be cancelled.
    abort: Option<AbortHandle>,
}

/// A phase done, as its task reports it.
struct Landed {
    task: Task,
    local: LocalStorage,
    outcome: Outcome,
    at: Duration,
}

impl<A: Send + Sync + 'static> Session<A> {
    async fn drive_async(&mut self) {
        // Tokio's clock, so that tests with paused time run in virtual time.
        let start = tokio::time::Instant::now();
        let (landed_sender, mut landed) = mpsc::unbounded_channel::<Landed>();
        let cancelled = Arc::new(Notify::new());
        let _subscription = self.cancel.subscribe({
            let cancelled = Arc::clone(&cancelled);
            move || cancelled.notify_one()
        });
        let mut flying: HashMap<JobId, Flying> = HashMap::new();
        let mut stopped = false;
        loop {
            let now = start.elapsed();
            if !stopped && self.cancel.is_cancelled() {
                stopped = true;
                self.machine.stop(StopReason::Cancelled);
                let cancellable: Vec<JobId> = flying
                    .iter()
                    .filter(|(_, phase)| phase.abort.is_some())
                    .map(|(&job, _)| job)
                    .collect();
                for job in cancellable {
                    self.cancel_phase(&mut flying, job, "cancelled", now);
                }
            }
            let step = self.machine.poll(now);
            tracing::trace!(?step, "machine step");
            let landing = match step {
                Step::Perform(task) => {
                    let abort = self.spawn(task, &landed_sender, start);
                    flying.insert(task.job, Flying { task, abort });
                    None
                }
                Step::Abandon(task) => {
                    if flying
                        .get(&task.job)
                        .is_some_and(|phase| phase.abort.is_some())
                    {
                        self.cancel_phase(&mut flying, task.job, "over its time limit", now);
                    }
                    None
                }
                Step::Wait(deadline) => {
                    let sleep = tokio::time::sleep(deadline.saturating_sub(now));
                    tokio::select! {
                        biased; // work that is done counts before a cancel
                        landing = landed.recv() => landing,
                        () = sleep => None,
                        () = cancelled.notified() => None,
                    }
                }
                Step::Idle => tokio::select! {
                    biased;
                    landing = landed.recv() => landing,
                    () = cancelled.notified() => None,
                },
                Step::Done => break,
            };
            if let Some(landing) = landing {
                // A cancelled phase may land anyway: it was already reported.
                let current = flying
                    .get(&landing.task.job)
                    .is_some_and(|phase| phase.task == landing.task);
                if current {
                    flying.remove(&landing.task.job);
                    self.locals[landing.task.job.index()].1 = landing.local;
                    self.machine
                        .report(
                            landing.task.job,
                            landing.task.phase,
                            landing.outcome,
                            landing.at,
                        )
                        .expect("the driver reports exactly the phases it was handed");
                }
            }
            publish(&mut self.machine, &mut self.observers);
        }
        publish(&mut self.machine, &mut self.observers);
    }

    /// Aborts an async phase in flight and reports it failed.
    fn cancel_phase(
        &mut self,
        flying: &mut HashMap<JobId, Flying>,
        job: JobId,
        why: &str,
        now: Duration,
    ) {
        let phase = flying.remove(&job).expect("the phase is in flight");
        if let Some(abort) = phase.abort {
            abort.abort();
        }
        let outcome = Outcome::Fail(Failure::new(format!("{why}: the phase was cancelled")));
        self.machine
            .report(job, phase.task.phase, outcome, now)
            .expect("the phase was in flight");
    }

    /// Starts a phase: an async job's as a task, another's on a blocking
    /// thread. Returns how to cancel it, if it can be.
    fn spawn(
        &mut self,
        task: Task,
        landed: &mpsc::UnboundedSender<Landed>,
        start: tokio::time::Instant,
    ) -> Option<AbortHandle> {
        let local = lend_local(&mut self.locals, task);
        let (jobs, args, global) = (
            Arc::clone(&self.jobs),
            Arc::clone(&self.args),
            Arc::clone(&self.global),
        );
        let landed = landed.clone();
        if jobs[task.job.index()].as_async().is_none() {
            tokio::task::spawn_blocking(move || {
                let (outcome, local) =
                    perform(&*jobs[task.job.index()], &args, &global, task, local);
                let at = start.elapsed();
                let _ = landed.send(Landed {
                    task,
                    local,
                    outcome,
                    at,
                });
            });
            return None;
        }
        let handle = tokio::spawn(async move {
            let mut local = local;
            let outcome = {
                let job = jobs[task.job.index()].as_async().expect("checked above");
                let mut cx = Context::new(&*args, &mut local, &global, task.phase, task.attempt);
                // Polled inside catch_unwind, so a panic while making the
                // future is caught as well as one while it runs.
                let phase = async { start_phase(job, &mut cx, task.phase).await };
                Outcome::from_call(AssertUnwindSafe(phase).catch_unwind().await)
            };
            let at = start.elapsed();
            let _ = landed.send(Landed {
                task,
                local,
                outcome,
                at,
            });
        });
        Some(handle.abort_handle())
    }
}

/// The future of one phase of an async job.
fn start_phase<'a, A: 'static>(
    job: &'a dyn AsyncJob<A>,
    cx: &'a mut Context<'_, A>,
    phase: Phase,
) -> PhaseFuture<'a> {
    match phase {
        Phase::Check | Phase::Recheck => job.check(cx),
        Phase::Run => job.run(cx),
        Phase::Cleanup => job.cleanup(cx),
    }
}
