//! With `RUST_BACKTRACE=1`, a failing check captures no backtrace unless
//! `-d` is given; panics keep theirs. Each case runs in a process of its
//! own (std decides once per process), started from this test's `main`.

use std::backtrace::BacktraceStatus;
use std::process::{Command, ExitCode};
use std::sync::Mutex;

use dojobber::{Context, Job, JobResult, Runner, anyhow};
use dojobber_cli::RunArgs;

/// What the last error made by the failing check says of its backtrace.
static SEEN: Mutex<Option<BacktraceStatus>> = Mutex::new(None);

struct FailingCheck;
impl Job for FailingCheck {
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        let error = anyhow::anyhow!("not yet");
        *SEEN.lock().unwrap() = Some(error.backtrace().status());
        Err(error)
    }
}

fn case(debug: bool) -> ExitCode {
    let args = RunArgs {
        debug,
        quiet: true,
        no_act: true,
        ..RunArgs::default()
    };
    let _ = args.execute(Runner::new(FailingCheck, ()).output(std::io::sink()));
    let seen = SEEN.lock().unwrap().take();
    let as_expected = match seen {
        Some(BacktraceStatus::Captured) => debug,
        Some(BacktraceStatus::Disabled) => !debug,
        _ => false,
    };
    if !as_expected {
        eprintln!("debug {debug}: the check's error has a backtrace {seen:?}");
        return ExitCode::FAILURE;
    }
    if std::env::var("RUST_BACKTRACE").as_deref() != Ok("1") {
        eprintln!("RUST_BACKTRACE changed: panics would lose their backtraces");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--case=quiet") => return case(false),
        Some("--case=debug") => return case(true),
        _ => {}
    }
    let me = std::env::current_exe().unwrap();
    for mode in ["quiet", "debug"] {
        let status = Command::new(&me)
            .arg(format!("--case={mode}"))
            .env("RUST_BACKTRACE", "1")
            .env_remove("RUST_LIB_BACKTRACE")
            .status()
            .unwrap();
        if !status.success() {
            eprintln!("case {mode} failed");
            return ExitCode::FAILURE;
        }
        println!("backtraces: {mode} ... ok");
    }
    ExitCode::SUCCESS
}
