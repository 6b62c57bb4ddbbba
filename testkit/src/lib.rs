//! Tools for testing dojobber job suites and the engine itself.
//!
//! - [`Mock`] and [`Suite`]: jobs with scripted behaviour that record every call.
//! - [`simulate`]: drives the machine with a virtual clock, so suites with
//!   long retry delays run in microseconds, and returns a [`Trace`] whose
//!   [`render`](Trace::render) is made for snapshot tests.

mod mock;
mod sim;

pub use mock::{Act, Call, CallLog, Mock, Rule, Suite, SuiteError, UnknownDep};
pub use sim::{SimConfig, Simulation, Trace, TraceEntry, simulate};
