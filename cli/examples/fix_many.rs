//! A fix-mode run of many jobs through the command line, for measuring:
//! every check fails until its run has run, so each job makes one error.
//! `cargo build --release -p dojobber-cli --example fix_many`, then time
//! `fix_many --count 100000 -q` with and without `RUST_BACKTRACE=1`
//! (`RUST_LIB_BACKTRACE=1` brings back the capture for comparison).

use clap::Parser;
use dojobber::{Context, Group, Job, JobResult, Runner, bail, dep};
use dojobber_cli::RunArgs;

/// One job of many: fixed by its run.
struct Fix(u32);

impl Job for Fix {
    fn name(&self) -> String {
        format!("fix {}", self.0)
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        if cx.local().get::<bool>("ran").is_none() {
            bail!("not fixed yet");
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, ()>) -> JobResult {
        cx.local_mut().insert("ran", true);
        Ok(())
    }
}

/// Fix COUNT jobs under one group.
#[derive(Parser)]
struct Cli {
    /// How many jobs.
    #[arg(long, default_value_t = 10_000)]
    count: u32,
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let root = Group::new("all").with_deps((0..cli.count).map(|i| dep(Fix(i))));
    cli.run.execute(Runner::new(root, ()))
}
