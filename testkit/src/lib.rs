//! Tools for testing dojobber job suites and the engine itself.
//!
//! - Your own suite: [`record`] a real run, [`check_invariants`] on it,
//!   [`Trace::render_untimed`] for snapshots, [`dry_run_text`] for what a
//!   no-act run finds, [`render_plan`] for the order of the first round,
//!   [`check_idempotent`] / [`assert_idempotent`] for "a second run
//!   changes nothing".
//! - Your own suite under random settings: [`strategy::run_settings`] draws
//!   [`RunSettings`] (workers, tries, retry delays, no-act, fail-fast) to
//!   [`apply`](RunSettings::apply) to your real runner; [`record`] keeps the
//!   runner's settings ([`SimConfig::from_runner`]), so [`check_invariants`]
//!   holds the run to them. [`Redactions`] makes times and temporary paths
//!   stable for snapshots. [`SharedBuffer`] collects printed output.
//! - [`Mock`] and [`Suite`]: jobs with scripted behaviour that record every call.
//! - [`simulate`]: drives the machine with a virtual clock, so suites with
//!   long retry delays run in microseconds, and returns a [`Trace`] whose
//!   [`render`](Trace::render) is made for snapshot tests.
//! - [`strategy`]: proptest strategies for random suites and runs.
//!
//! A test of a suite of your own, in ten lines:
//!
//! ```
//! use std::collections::BTreeSet;
//! use std::sync::Mutex;
//! use dojobber::{bail, dep, Context, Job, JobRef, JobResult, Runner};
//! use dojobber_testkit::{check_idempotent, check_invariants, dry_run_text, record};
//!
//! /// The world the suite changes: here, a set of installed tools.
//! static INSTALLED: Mutex<BTreeSet<&str>> = Mutex::new(BTreeSet::new());
//!
//! struct Install(&'static str);
//! impl Job for Install {
//!     fn name(&self) -> String { format!("Install {}", self.0) }
//!     fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
//!         if !INSTALLED.lock().unwrap().contains(self.0) { bail!("{} is missing", self.0) }
//!         Ok(())
//!     }
//!     fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
//!         INSTALLED.lock().unwrap().insert(self.0);
//!         Ok(())
//!     }
//! }
//!
//! struct DevBox;
//! impl Job for DevBox {
//!     fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(Install("git")), dep(Install("cargo"))] }
//!     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
//! }
//!
//! // #[test] fn dev_box() -> Result<(), Box<dyn std::error::Error>> {
//! let runner = || Runner::new(DevBox, ()).retry_delay(std::time::Duration::ZERO);
//! let dry = dry_run_text(runner())?;
//! assert_eq!(dry.lines().next(), Some(r#"Install git: check fails ("git is missing"), would run"#));
//! let first = record(runner())?;
//! check_invariants(&first.record)?;
//! assert_eq!(first.finished.report().names_with(dojobber::Status::Fixed), ["Install git", "Install cargo"]);
//! let phases = first.record.trace.render_untimed();
//! assert!(phases.starts_with("round 1\n  Install git.check: fail \"git is missing\"\n  Install git.run: pass\n"));
//! check_idempotent(runner)?; // a second run only checks, and passes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! // }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod buffer;
mod checks;
mod invariants;
mod mock;
mod record;
mod redact;
mod settings;
mod sim;
pub mod strategy;

pub use buffer::SharedBuffer;
pub use checks::{
    IdempotenceError, Offender, assert_idempotent, check_idempotent, dry_run_text, render_plan,
};
pub use invariants::{Invariant, Violation, check_invariants};
pub use mock::{Act, Call, CallLog, Mock, Rule, Suite, SuiteError, UnknownDep};
pub use record::{Recorded, TraceRecorder, record, runner_for};
pub use redact::Redactions;
pub use settings::RunSettings;
pub use sim::{Abandoned, SimConfig, Simulation, Trace, TraceEntry, simulate};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
