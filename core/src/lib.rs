#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel;
mod caught;
mod driver;
mod event;
mod graph;
mod job;
mod machine;
mod output;
mod phase;
mod plan;
mod report;
mod runner;
mod storage;
pub mod text;

pub use anyhow::{self, bail};
pub use cancel::CancelHandle;
pub use event::Outcome;
/// Moved to [`dojobber::observe`](crate::observe); these paths go in the next release.
#[doc(hidden)]
pub use event::{Event, EventRecord};
#[cfg(feature = "tokio")]
pub use job::asynchronous::{AsyncJob, PhaseFuture, async_dep};
pub use job::{Context, Group, Job, JobRef, JobResult, dep};
/// Moved to [`dojobber::observe`](crate::observe); these paths go in the next release.
#[doc(hidden)]
pub use output::{Observer, Printer, Verbosity};
pub use phase::{JobKind, Phase};
pub use plan::{SetupError, SpawnError};
pub use report::{
    CleanupFailure, Failure, FailureKind, InvalidReport, JobRecord, JobReport, PhaseRecord, Report,
    Status, StopReason,
};
pub use runner::{CleanupError, Finished, Runner};
pub use storage::{BoxError, GlobalStorage, LocalStorage, SharedBackend, SharedError, WrongType};
/// Moved to [`dojobber::text`](crate::text); these paths go in the next release.
#[doc(hidden)]
pub use text::{MAX_REASON_CHARS, escaped, is_hostile, shortened};

/// What a job author needs, in one import.
///
/// ```
/// use dojobber::prelude::*;
///
/// struct Kettle;
/// impl Job for Kettle {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("cold") }
/// }
/// struct Tea;
/// impl Job for Tea {
///     fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(Kettle)] }
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// let report = Runner::new(Tea, ()).tries(1).run()?.into_report();
/// assert_eq!(report.job("Tea").map(|job| job.status()), Some(Status::Blocked));
/// # Ok::<(), SetupError>(())
/// ```
pub mod prelude {
    #[cfg(feature = "tokio")]
    pub use crate::job::asynchronous::{AsyncJob, PhaseFuture, async_dep};
    pub use crate::job::{Context, Group, Job, JobRef, JobResult, dep};
    pub use crate::phase::{JobKind, Phase};
    pub use crate::plan::SetupError;
    pub use crate::report::{Report, Status};
    pub use crate::runner::{Finished, Runner};
    pub use anyhow::bail;
}

/// What an observer of a run sees, in one place: the `Observer` trait,
/// the `Event`s it is given, the `Plan` that names their jobs and the
/// `JobId`s they name them by; and the printer behind `-v`/`-d`.
///
/// ```
/// use dojobber::observe::{Event, JobId, Observer, Plan};
/// use dojobber::prelude::*;
///
/// /// The names of the jobs that finished, in order.
/// struct Finished(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
/// impl Observer for Finished {
///     fn on_event(&mut self, event: &Event, plan: &Plan) {
///         if let Event::JobFinished { job, .. } = event {
///             let job: JobId = *job;
///             self.0.lock().unwrap().push(plan.name(job).to_owned());
///         }
///     }
/// }
///
/// struct Kettle;
/// impl Job for Kettle {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// let names = std::sync::Arc::default();
/// Runner::new(Kettle, ()).observe(Finished(std::sync::Arc::clone(&names))).run()?;
/// assert_eq!(*names.lock().unwrap(), ["Kettle"]);
/// # Ok::<(), SetupError>(())
/// ```
pub mod observe {
    pub use crate::event::{Event, EventRecord, Outcome, Task};
    pub use crate::output::{Observer, Printer, Verbosity};
    pub use crate::plan::{JobId, Plan};
}

/// The layers under the [`Runner`], for embedding the engine: a driver of
/// your own, a simulator, a viewer of plans.
///
/// Discovery turns a root job into a [`JobGraph`](engine::JobGraph) (the
/// job values and their [`Plan`](engine::Plan)); the
/// [`Machine`](engine::Machine) schedules a plan, handing out
/// [`Task`](engine::Task)s through [`Step`](engine::Step)s and emitting
/// [`Event`]s. It performs no I/O, reads no clock and calls no user code:
/// the caller does all three.
///
/// ```
/// use dojobber::engine::{JobSpec, Machine, MachineConfig, Plan, Step};
/// use dojobber::Outcome;
/// use std::time::Duration;
///
/// let mut root = JobSpec::new("Root");
/// root.deps = vec![1];
/// let (plan, _ids) = Plan::new(vec![root, JobSpec::new("Leaf")], 0, Default::default())?;
/// let mut machine = Machine::new(plan, MachineConfig::default());
/// let Step::Perform(task) = machine.poll(Duration::ZERO) else { panic!("a check first") };
/// assert_eq!(machine.plan().name(task.job), "Leaf");
/// machine.handle_outcome(task, Outcome::Pass, Duration::ZERO)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod engine {
    pub use crate::event::{Performer, Task};
    pub use crate::graph::JobGraph;
    pub use crate::machine::{Machine, MachineConfig, MachineError, Step, first_phase, next_phase};
    pub use crate::plan::{Defaults, JobId, JobSpec, Plan};
    /// Why a run stopped early: the report's word, and what
    /// [`Machine::stop`](crate::engine::Machine::stop) is told.
    pub use crate::report::StopReason;

    pub mod driver {
        //! The driver seam: how to write an executor, the part of a driver
        //! that says how a phase is performed and how its outcome comes back.
        //!
        //! Everything else a driver does (asking the machine, lending local
        //! storage, reporting outcomes, publishing events to observers,
        //! passing a cancel on, telling which phases to abandon) is
        //! [`Session::step`], which the built-in executors (the caller's
        //! thread, the thread pool, tokio tasks) call too. An executor makes
        //! no decision: it performs what `step` hands out and sleeps when told.
        //!
        //! - [`Runner::into_session`](crate::Runner::into_session) checks the
        //!   settings, discovers the graph and gives the [`Session`].
        //! - Each of the executor's workers loops: `step` with why it came
        //!   ([`Came`]), then does what [`Next`] says: perform a [`Work`] and
        //!   come back with its [`Done`], sleep, or end.
        //! - One worker may do everything ([`Role::Alone`], the reference
        //!   order); with several, one watcher ([`Role::Watcher`]) performs
        //!   nothing and sleeps until the machine's next timer (retry delays,
        //!   time limits, the deadline) or a cancel
        //!   ([`CancelHandle::subscribe`](crate::CancelHandle::subscribe)),
        //!   and workers ([`Role::Worker`]) sleep until the [`Executor`] wakes
        //!   them. Start at most [`Session::most_in_flight`] workers, or start
        //!   them as work comes ([`Executor::can_add_worker`]).
        //! - When every worker has ended, [`Session::into_report`].
        //!
        //! The unit is one phase: the machine decides after each phase what
        //! comes next (a run after a failed check, unless no-act or a stop).
        //! An executor that performs a whole try elsewhere in one message
        //! (`dojobber-nats` sends check → run → recheck to one remote worker,
        //! so the try's local storage stays there) maps onto it per phase: it
        //! sends the try when `step` hands out its first phase, and answers
        //! each phase `step` hands out with the outcome the remote side
        //! reported for it; outcomes of phases the machine no longer asks for
        //! (a stop cut the try) are dropped. The local storage lent with such
        //! a phase stays empty and is given back as it came.
        //!
        //! A whole driver, every phase on the caller's thread:
        //!
        //! ```
        //! use std::time::{Duration, Instant};
        //! use dojobber::engine::driver::{Came, Executor, Next, Role};
        //! use dojobber::prelude::*;
        //!
        //! /// One worker, alone: nobody to wake.
        //! struct Inline(Instant);
        //! impl Executor for Inline {
        //!     fn now(&self) -> Duration { self.0.elapsed() }
        //!     fn wake_workers(&self, _count: usize) {}
        //!     fn wake_watcher(&self) {}
        //! }
        //!
        //! struct Kettle;
        //! impl Job for Kettle {
        //!     fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        //!         if cx.is_recheck() { Ok(()) } else { bail!("cold") }
        //!     }
        //! }
        //!
        //! let session = Runner::new(Kettle, ()).into_session()?;
        //! let executor = Inline(Instant::now());
        //! let mut came = Came::Start;
        //! loop {
        //!     came = match session.step(Role::Alone, came, &executor) {
        //!         Next::Perform(work) => Came::Finished(session.perform(work, || executor.now())),
        //!         Next::Sleep(until) => {
        //!             let until = until.unwrap_or(Duration::ZERO);
        //!             std::thread::sleep(until.saturating_sub(executor.now()));
        //!             Came::Woke
        //!         }
        //!         Next::Done => break,
        //!     };
        //! }
        //! let report = session.into_report();
        //! assert_eq!(report.job("Kettle").map(|job| job.status()), Some(Status::Fixed));
        //! # Ok::<(), SetupError>(())
        //! ```

        /// Re-exported for [`CancelHandle::subscribe`](crate::CancelHandle::subscribe),
        /// which wakes a watcher on a cancel.
        pub use crate::cancel::Subscription;
        #[cfg(feature = "tokio")]
        pub use crate::driver::task_pool::{PerformPhase, drive_tasks};
        pub use crate::driver::{Came, Done, Executor, Next, Role, Session, Work};
    }
}
