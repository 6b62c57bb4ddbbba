//! The integration tests of dojobber's examples, under `tests/`: they
//! build each example program with cargo and run it as a user does
//! (flags, output, exit codes, signals, files written, the HTML page in
//! headless Chromium, the provision example on several hosts over NATS),
//! and drive the suites in-process. They live in this package, apart from
//! the examples' own (`../movie`, `../provision`, `../hosts`), so that
//! `cargo run --example X` builds only what X needs. No library code.
