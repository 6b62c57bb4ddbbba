//! A suite with a check that never returns, past its time limit: what an
//! operator sees and can do (`cargo run --example hangs -- -j 4`). The
//! run says it waits only for that check; Ctrl-C twice writes the report
//! as it stands and exits with status 130.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use dojobber::{Context, Group, Job, JobResult, Runner, bail, dep};
use dojobber_cli::RunArgs;

/// A check that never returns: a thread cannot be stopped.
struct Hangs;
impl Job for Hangs {
    fn tries(&self) -> Option<u32> {
        Some(1)
    }
    fn time_limit(&self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        loop {
            std::thread::park();
        }
    }
}

/// Fixed by its run, so it has a cleanup to do.
struct Cleaned;
impl Job for Cleaned {
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if cx.is_recheck() {
            Ok(())
        } else {
            bail!("not yet")
        }
    }
    fn cleanup(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

/// A suite with a check that never returns, past its time limit: what an
/// operator sees and can do. Ctrl-C twice writes the report as it stands.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = Group::new("Root").with_deps([dep(Cleaned), dep(Hangs)]);
    cli.run.execute(Runner::new(root, ()))
}
