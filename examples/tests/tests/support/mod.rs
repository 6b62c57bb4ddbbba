//! What the tests that run example programs share: building an example
//! once and reading what it printed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, PoisonError};

/// Builds the example `name` once per test binary (cargo releases its lock
/// while tests run) and returns the path of its executable, as cargo
/// reports it. `provision_faulty` is built with the crash points
/// (`--features fault-injection`), which no other example has.
pub fn example(name: &str) -> PathBuf {
    // Each example is built in its own package, with that package's
    // features, as `cargo run --example NAME` from the root builds it.
    let package = match name {
        "provision" | "provision_faulty" => "dojobber-example-provision",
        "provision_hosts" => "dojobber-example-hosts",
        _ => "dojobber-example-movie",
    };
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["build", "--quiet", "--message-format=json", "-p", package])
        .args(["--example", name])
        .args(match name {
            "provision_faulty" => &["--features", "fault-injection"][..],
            _ => &[],
        })
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable");
    built.insert(name.to_owned(), path.clone());
    path
}

/// What the program printed on stdout.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What the program printed on stderr.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
