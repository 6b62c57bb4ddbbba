//! `cargo xtask` with stdout and stderr on `/dev/full`: nothing can be
//! said, nothing panics, and the exit code is the task's (as the demo's
//! and the examples' own tests hold theirs: nats/tests/cli.rs,
//! examples/tests/tests/cli.rs).

#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Stdio};

use dojobber_example_movie::{self as movie, MovieArgs};

fn full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
}

/// `cargo xtask ARGS` with both streams full; its exit code.
fn into_full_streams(args: &[&Path]) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(full())
        .stderr(full())
        .status()
        .expect("xtask starts")
        .code()
}

#[test]
fn with_stdout_and_stderr_full_xtask_exits_with_its_code_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let report = movie::runner(MovieArgs::default())
        .output(std::io::sink())
        .run()
        .unwrap()
        .into_report();
    let report_path = dir.path().join("r.json");
    std::fs::write(&report_path, serde_json::to_string(&report).unwrap()).unwrap();
    let page = dir.path().join("run.html");

    // Written, then `wrote PATH` on a full stdout.
    let html = Path::new("html");
    let code = into_full_streams(&[html, &report_path, Path::new("-o"), &page]);
    assert_eq!(code, Some(0));
    assert!(page.exists());

    // Refused, with an error on a full stderr.
    let missing = dir.path().join("missing.json");
    let other = dir.path().join("other.html");
    let code = into_full_streams(&[html, &missing, Path::new("-o"), &other]);
    assert_eq!(code, Some(1));
    assert!(!other.exists());

    // No such task: clap's usage error.
    assert_eq!(into_full_streams(&[Path::new("no-such-task")]), Some(2));
}
