//! Runnable dojobber programs. The suites live here, as a library, so that
//! tests can run them in-process; `examples/` holds their command lines.

pub mod movie;
pub mod provision;
