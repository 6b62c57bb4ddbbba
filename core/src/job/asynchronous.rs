//! Async jobs (feature `tokio`): jobs whose phases are futures implement
//! [`AsyncJob`] and join a graph through [`async_dep`]. The async driver,
//! [`Runner::run_async`](crate::Runner::run_async), runs up to
//! `workers(n)` phases at once as tasks on the caller's tokio runtime;
//! plain [`Job`]s sit in the same suite and run in the driver's tasks, as
//! on a thread, until one takes over 100 µs (then, and in a run with time
//! limits or a deadline, on tokio's blocking threads). An async phase over
//! its time limit, or in flight when the run is cancelled, is cancelled
//! (its task is aborted) and fails its try; a plain phase cannot be, and
//! is waited for, as in the thread driver.
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

use super::{Context, Job, JobRef, JobResult};
use crate::phase::{JobKind, Phase};

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
/// Outside the async driver (with [`Runner::run`](crate::Runner::run)), each of its phases runs
/// to completion on a small tokio runtime of its own; tokio forbids that on
/// a runtime's own threads, where such a phase fails with tokio's message:
/// inside a runtime, use [`Runner::run_async`](crate::Runner::run_async).
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
