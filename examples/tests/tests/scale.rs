//! The scale example's baseline (`--engine none`) runs the same suite to
//! the same end as dojobber, so the two are timed on the same work.

use std::process::Command;

mod support;
use support::{example, stderr, stdout};

fn counts(engine: &str, shape: &str, mode: &str) -> String {
    let output = Command::new(example("scale"))
        .args(["--engine", engine, "--shape", shape, "--mode", mode])
        .args(["--jobs", "2000"])
        .output()
        .expect("the example runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn the_baseline_ends_every_suite_as_dojobber_does() {
    for shape in ["random", "chain"] {
        for mode in ["pass", "fix", "fix-local"] {
            let by_hand = counts("none", shape, mode);
            assert_eq!(by_hand, counts("dojobber", shape, mode), "{shape} {mode}");
            let fixed = if mode == "pass" { 0 } else { 2000 };
            assert_eq!(
                by_hand,
                format!(
                    "2001 jobs: {} passed, {fixed} fixed, 0 failed, 0 blocked\n",
                    2001 - fixed
                ),
                "{shape} {mode}"
            );
        }
    }
}
