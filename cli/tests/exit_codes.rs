//! The exit code of a run whose jobs all converged but whose cleanup
//! failed: a lock left behind must be visible to a script.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use dojobber::{Context, Job, JobResult, Runner, bail};
use dojobber_cli::{Exit, RunArgs};

/// Takes a lock to do its work, and cannot give it back.
#[derive(Default)]
struct Locked {
    ran: AtomicBool,
}

impl Job for Locked {
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        if !self.ran.load(Ordering::SeqCst) {
            bail!("not done yet");
        }
        Ok(())
    }
    fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.ran.store(true, Ordering::SeqCst);
        Ok(())
    }
    fn cleanup(&self, _: &mut Context<'_, ()>) -> JobResult {
        bail!("cannot remove the lock file")
    }
}

fn quiet() -> RunArgs {
    RunArgs {
        quiet: true,
        ..RunArgs::default()
    }
}

#[test]
fn a_failed_cleanup_exits_1_like_a_failed_job() {
    let code = quiet().execute(Runner::new(Locked::default(), ()).output(std::io::sink()));
    assert_eq!(code, ExitCode::from(Exit::JobsFailed));
}

#[test]
fn skipped_cleanups_leave_the_exit_code_at_0() {
    let flags = RunArgs {
        no_cleanup: true,
        ..quiet()
    };
    let code = flags.execute(Runner::new(Locked::default(), ()).output(std::io::sink()));
    assert_eq!(code, ExitCode::SUCCESS);
}

/// The example `fix_many`, built for this test, as cargo names it.
fn fix_many() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--message-format=json",
            "-p",
            "dojobber-cli",
        ])
        .args(["--example", "fix_many"])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("cargo writes UTF-8")
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "fix_many")
        .find_map(|message| message["executable"].as_str().map(Into::into))
        .expect("cargo names the example's executable")
}

/// More worker threads than `vm.max_map_count` can map once aborted the
/// process in std's thread start-up (exit 134); the run is refused first.
#[cfg(target_os = "linux")]
#[test]
fn more_workers_than_the_system_can_map_exit_2_naming_the_setting() {
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .expect("Linux has vm.max_map_count")
        .trim()
        .parse()
        .expect("a number");
    // Each thread takes at least two mappings (its stack and its guard
    // page): half the limit in threads can never fit, whatever else the
    // process has mapped.
    let workers = limit / 2 + 1;
    assert!(
        workers <= 2_000_000,
        "vm.max_map_count is {limit}: this test would discover {workers} jobs"
    );
    let workers = workers.to_string();
    let output = std::process::Command::new(fix_many())
        .args(["-q", "--count", &workers, "-j", &workers])
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("workers({workers}): ")),
        "{stderr}"
    );
    assert!(stderr.contains("/proc/sys/vm/max_map_count"), "{stderr}");
    assert!(!stderr.contains("stack guard page"), "{stderr}");
}
