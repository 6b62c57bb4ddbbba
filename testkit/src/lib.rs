#![doc = include_str!("../README.md")]
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
