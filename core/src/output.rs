//! Observers of the machine's events, and the printer behind verbose and
//! debug output.

use std::io::Write;

use crate::event::{Event, Outcome};
use crate::phase::Phase;
use crate::plan::Plan;
use crate::report::Failure;
use crate::text::{MAX_REASON_CHARS, escaped, shortened};

/// Something that follows a run through its events: a printer, a progress
/// display, a recorder. Called on the driver's thread, in event order.
///
/// ```
/// use dojobber::observe::{Event, Observer, Plan};
///
/// #[derive(Default)]
/// struct CountRounds(u32);
/// impl Observer for CountRounds {
///     fn on_event(&mut self, event: &Event, _plan: &Plan) {
///         if let Event::RoundStarted { .. } = event { self.0 += 1 }
///     }
/// }
/// ```
pub trait Observer: Send {
    /// Takes one event; `plan` names the jobs it mentions.
    fn on_event(&mut self, event: &Event, plan: &Plan);

    /// Whether this observer reads the events of the main run (tries,
    /// phases, statuses, the run's end) or only those of the cleanups.
    /// When no observer of a run reads them, the machine does not make
    /// them: a run of a million jobs makes no event per phase. The
    /// default: it reads them.
    fn reads_main_events(&self) -> bool {
        true
    }
}

/// How much the printer says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Only failing cleanups.
    #[default]
    Quiet,
    /// One line per phase: `Job.check: pass`.
    Verbose,
    /// Verbose, plus each failure's error chain and the cleanup lines.
    Debug,
}

/// Prints phases as lines of text, in the reference's format:
///
/// ```text
/// PickTimeAndDate.check: fail
/// PickTimeAndDate.run: pass
/// PickTimeAndDate.recheck: pass
/// Popcorn.recheck: fail "Still popping..."
/// ```
///
/// A failed run, recheck or cleanup shows its reason, on one line and
/// shortened when huge (`-d` prints it whole). Names and messages reach
/// the terminal with control characters escaped (`\u{1b}`, `\n`), so a
/// name cannot move the cursor, clear the screen or fake a line. A
/// failing cleanup, and a run left waiting only for phases abandoned at
/// their time limit, are printed whatever the verbosity.
///
/// ```
/// use dojobber::{dep, bail, Context, Job, JobResult, Runner};
/// use dojobber::observe::{Printer, Verbosity};
///
/// struct TurnOnTv;
/// impl Job for TurnOnTv {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("Remote batteries are dead.") }
/// }
/// let lines = dojobber_testkit::SharedBuffer::default();
/// Runner::new(TurnOnTv, ()).tries(1)
///     .observe(Printer::new(Verbosity::Verbose, lines.clone()))
///     .run()?;
/// assert_eq!(
///     lines.text(),
///     "TurnOnTv.check: fail\nTurnOnTv.run: pass\nTurnOnTv.recheck: fail \"Remote batteries are dead.\"\n"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Printer<W> {
    verbosity: Verbosity,
    out: W,
}

impl<W: Write> Printer<W> {
    /// A printer that writes to `out` (stderr, usually).
    pub fn new(verbosity: Verbosity, out: W) -> Self {
        Printer { verbosity, out }
    }

    fn print_chain(&mut self, failure: &Failure) {
        if self.verbosity < Verbosity::Debug {
            return;
        }
        let _ = writeln!(self.out, "    error: {}", escaped(&failure.message));
        for cause in &failure.causes {
            let _ = writeln!(self.out, "    caused by: {}", escaped(cause));
        }
    }
}

impl<W: Write + Send> Observer for Printer<W> {
    /// Quiet, it prints only failing cleanups.
    fn reads_main_events(&self) -> bool {
        self.verbosity > Verbosity::Quiet
    }

    fn on_event(&mut self, event: &Event, plan: &Plan) {
        // Output is best effort: a closed stderr must not stop the run.
        match event {
            Event::PhaseStarted { task, .. }
                if task.phase == Phase::Cleanup && self.verbosity >= Verbosity::Debug =>
            {
                let name = escaped(plan.name(task.job));
                let _ = writeln!(self.out, "{name}.cleanup running");
            }
            Event::PhaseFinished { task, outcome, .. } => {
                let phase = task.phase;
                let shown = phase == Phase::Cleanup && !outcome.is_pass()
                    || self.verbosity >= Verbosity::Debug
                    || self.verbosity >= Verbosity::Verbose && phase != Phase::Cleanup;
                if !shown {
                    return;
                }
                let name = escaped(plan.name(task.job));
                match outcome {
                    Outcome::Pass => {
                        let _ = writeln!(self.out, "{name}.{phase}: pass");
                    }
                    Outcome::Fail(failure) => {
                        // A failed check is how a job says it needs its run:
                        // its reason is no news.
                        if phase != Phase::Check {
                            let reason = shortened(&failure.message, MAX_REASON_CHARS);
                            let _ = writeln!(self.out, "{name}.{phase}: fail {reason:?}");
                        } else {
                            let _ = writeln!(self.out, "{name}.{phase}: fail");
                        }
                        self.print_chain(failure);
                    }
                }
            }
            Event::WaitingForAbandoned { task, .. } => {
                let limit = plan.time_limit(task.job).map_or_else(String::new, |limit| {
                    format!(" at its {} time limit", crate::text::humane(limit))
                });
                let _ = writeln!(
                    self.out,
                    "waiting for {}.{}, abandoned{limit}: it cannot be stopped, and the run ends when it returns",
                    plan.name(task.job),
                    task.phase
                );
            }
            Event::Warning { job, message } => {
                let about =
                    job.map_or_else(String::new, |job| format!("{}: ", escaped(plan.name(job))));
                let _ = writeln!(self.out, "warning: {about}{}", escaped(message));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Context, Job};
    use crate::runner::Runner;

    /// A job whose name and errors try to take the terminal over.
    struct Hostile;
    impl Job for Hostile {
        fn name(&self) -> String {
            "esc \u{1b}[2J\r".to_owned()
        }
        fn tries(&self) -> Option<u32> {
            Some(1)
        }
        fn check(&self, _: &mut Context<'_, ()>) -> crate::JobResult {
            anyhow::bail!("not \u{1b}[31myet")
        }
        fn run(&self, _: &mut Context<'_, ()>) -> crate::JobResult {
            anyhow::bail!("reset\n{}", "x".repeat(400))
        }
    }

    #[test]
    fn verbose_lines_escape_names_and_give_a_failed_runs_reason_shortened() {
        let lines = dojobber_testkit::SharedBuffer::default();
        Runner::new(Hostile, ())
            .observe(Printer::new(Verbosity::Verbose, lines.clone()))
            .run()
            .unwrap();
        let run_reason = format!("reset\\n{}… (106 more characters)", "x".repeat(294));
        assert_eq!(
            lines.text(),
            format!(
                "esc \\u{{1b}}[2J\\r.check: fail\n\
                 esc \\u{{1b}}[2J\\r.run: fail \"{run_reason}\"\n\
                 esc \\u{{1b}}[2J\\r.recheck: fail \"not \\u{{1b}}[31myet\"\n"
            )
        );
    }
}
