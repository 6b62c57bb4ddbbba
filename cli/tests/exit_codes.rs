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
