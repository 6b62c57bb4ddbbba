//! The async driver (feature `tokio`): [`Runner::run_async`] runs up to
//! `workers(n)` phases at once as tasks on the caller's tokio runtime.
//!
//! Jobs whose phases are futures implement [`AsyncJob`] and join a graph
//! through [`async_dep`]; plain [`Job`]s sit in the same suite and run in
//! the driver's tasks, as on a thread, until one takes over 100 µs (then,
//! and in a run with time limits or a deadline, on tokio's blocking
//! threads). An async phase over its time limit, or in flight when the run
//! is cancelled, is cancelled (its task is aborted) and fails its try; a
//! plain phase cannot be, and is waited for, as in the thread driver.
//!
//! ```
//! use std::time::Duration;
//! use dojobber::{async_dep, AsyncJob, Context, Group, Job, PhaseFuture, Runner, Status};
//!
//! struct Ping(&'static str);
//! impl Job for Ping {
//!     fn name(&self) -> String { format!("ping {}", self.0) }
//! }
//! impl AsyncJob for Ping {
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
//! let report = Runner::new(hosts, ()).workers(3).run_async().await?.into_report();
//! assert_eq!(report.job("ping b").unwrap().status(), Status::Passed);
//! # Ok::<(), dojobber::SetupError>(())
//! # })?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::driver::tokio_tasks;
use crate::job::{Context, Job, JobKind, JobRef, JobResult, Phase};
use crate::plan::SetupError;
use crate::runner::{CleanupError, Finished, Runner};

/// What an async phase returns: a boxed future of its result.
pub type PhaseFuture<'a> = Pin<Box<dyn Future<Output = JobResult> + Send + 'a>>;

/// A job whose phases are futures, for the async driver.
///
/// What a job is (its name, deps, kind, tries, delays, time limit, group)
/// is its [`Job`] impl, often empty; this trait gives its phases, which
/// replace the `Job`'s own. Wrap it with [`async_dep`] to put it in a graph
/// ([`dep`](crate::dep) would take the `Job`'s synchronous phases).
pub trait AsyncJob<A = ()>: Job<A> {
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
    let job = Arc::new(job);
    JobRef::new_async(
        Arc::new(AsyncAdapter(Arc::clone(&job))),
        job,
        std::any::type_name::<J>(),
    )
}

/// An [`AsyncJob`] seen as a [`Job`] by the synchronous drivers: its own
/// `Job` impl for what it is, its async phases run to completion.
struct AsyncAdapter<J>(Arc<J>);

impl<A: 'static, J: AsyncJob<A>> Job<A> for AsyncAdapter<J> {
    fn name(&self) -> String {
        Job::name(&*self.0)
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
        block_on(AsyncJob::check(&*self.0, cx))
    }
    fn run(&self, cx: &mut Context<'_, A>) -> JobResult {
        block_on(AsyncJob::run(&*self.0, cx))
    }
    fn cleanup(&self, cx: &mut Context<'_, A>) -> JobResult {
        block_on(AsyncJob::cleanup(&*self.0, cx))
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
    /// driver: `#[tokio::main]` has it), up to `workers(n)` phases at once:
    /// async jobs as tasks, the others in the same tasks (on tokio's
    /// blocking threads once one takes over 100 µs, or when the run has
    /// time limits or a deadline). The semantics are those of
    /// [`run`](Runner::run).
    pub async fn run_async(self) -> Result<Finished<A>, SetupError> {
        let session = Arc::new(self.start()?);
        // The watcher runs as a task of its own: woken by a runtime worker
        // rather than by the caller's thread (tens of microseconds less per
        // wake-up under `block_on`).
        let driving = tokio::spawn(async move {
            tokio_tasks::drive(&session).await;
            session
        });
        let session = match driving.await {
            Ok(session) => session,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => panic!("the runtime dropped the run's task: {error}"),
        };
        Ok(Finished { session })
    }
}

impl<A: Send + Sync + 'static> Finished<A> {
    /// [`Finished::cleanup`] for a run made with
    /// [`run_async`](Runner::run_async): the cleanups run on the caller's
    /// runtime, async ones as futures.
    ///
    /// ```
    /// use dojobber::{AsyncJob, Context, Job, PhaseFuture, Runner, async_dep};
    ///
    /// struct Tunnel;
    /// impl Job for Tunnel {}
    /// impl AsyncJob for Tunnel {
    ///     fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
    ///         let open = cx.is_recheck();
    ///         Box::pin(async move { if open { Ok(()) } else { dojobber::bail!("closed") } })
    ///     }
    ///     fn cleanup<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
    ///         Box::pin(async move {
    ///             tokio::task::yield_now().await; // closing takes a round trip
    ///             cx.global().insert("closed", true);
    ///             Ok(())
    ///         })
    ///     }
    /// }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # runtime.block_on(async {
    /// let mut finished = Runner::from_ref(async_dep(Tunnel), ()).cleanup(false).run_async().await?;
    /// finished.cleanup_async().await.expect("the tunnel closes");
    /// assert_eq!(finished.global().get::<bool>("closed"), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn cleanup_async(&mut self) -> Result<(), CleanupError> {
        self.session.lock().machine.start_cleanup()?;
        tokio_tasks::drive(&self.session).await;
        match self.report().cleanup_failure {
            Some(failure) => Err(CleanupError::Failed(failure)),
            None => Ok(()),
        }
    }
}

/// The future of one phase of an async job.
pub(crate) fn start_phase<'a, A: 'static>(
    job: &'a dyn AsyncJob<A>,
    cx: &'a mut Context<'_, A>,
    phase: Phase,
) -> PhaseFuture<'a> {
    match phase {
        Phase::Check | Phase::Recheck => AsyncJob::check(job, cx),
        Phase::Run => AsyncJob::run(job, cx),
        Phase::Cleanup => AsyncJob::cleanup(job, cx),
    }
}
