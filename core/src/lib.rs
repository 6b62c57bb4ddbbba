//! dojobber orchestrates small, single-purpose, idempotent jobs.
//!
//! A [`Job`] knows how to **check** that the world is as it should be and how
//! to **run** to make it so, and names the jobs it depends on. From a root
//! job, a [`Runner`] discovers the graph and takes every job through check,
//! then (if needed) run and recheck, in dependency order; it retries
//! failures in rounds, blocks what depends on a failure while the rest goes
//! on, cleans up, and returns a [`Report`] of what passed, what it fixed,
//! what failed and what was blocked.
//!
//! ```
//! use dojobber::{bail, dep, Context, Job, JobRef, JobResult, Runner, Status};
//!
//! struct BoilWater;
//! impl Job for BoilWater {
//!     fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
//!         match cx.global().get::<bool>("boiled") {
//!             Some(true) => Ok(()),
//!             _ => bail!("the water is cold"),
//!         }
//!     }
//!     fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
//!         cx.global().insert("boiled", true);
//!         Ok(())
//!     }
//! }
//!
//! struct MakeTea;
//! impl Job for MakeTea {
//!     fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(BoilWater)] }
//!     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
//! }
//!
//! let report = Runner::new(MakeTea, ()).run()?.into_report();
//! assert_eq!(report.job("BoilWater").unwrap().status, Status::Fixed);
//! assert_eq!(report.job("MakeTea").unwrap().status, Status::Passed);
//! # Ok::<(), dojobber::SetupError>(())
//! ```
//!
//! The layers, from the inside out: [`Plan`] (the graph as data),
//! [`Machine`] (the scheduler: no I/O, no clock, no user code), and the
//! [`Runner`]'s sequential driver, which calls the jobs.
//!
//! The command line a program gets for free (`-v`, `-n`, `--report-json`,
//! `--graph`, ...) is the `dojobber-cli` crate; this one has no argument
//! parser or terminal code.

#![warn(missing_docs)]

#[cfg(feature = "tokio")]
mod asynchronous;
mod cancel;
mod driver;
mod event;
mod graph;
mod job;
pub mod machine;
mod output;
mod plan;
mod report;
mod runner;
mod storage;

pub use anyhow::{self, bail};
#[cfg(feature = "tokio")]
pub use asynchronous::{AsyncJob, PhaseFuture, async_dep};
pub use cancel::CancelHandle;
pub use event::{Event, EventRecord, Outcome, Task};
pub use graph::JobGraph;
pub use job::{Context, Group, Job, JobKind, JobRef, JobResult, Phase, dep};
pub use machine::{Machine, MachineConfig, MachineError, Step};
pub use output::{Observer, Printer, SharedBuffer, Verbosity};
pub use plan::{Defaults, JobId, JobSpec, Plan, SetupError};
pub use report::{
    CleanupFailure, Failure, FailureKind, JobReport, PhaseRecord, Report, Status, StopReason,
};
pub use runner::{CleanupError, Finished, Runner};
pub use storage::{GlobalStorage, LocalStorage, WrongType};
