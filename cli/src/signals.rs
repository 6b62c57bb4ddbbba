//! Ctrl-C, SIGTERM and SIGHUP during a run.
//!
//! The first signal cancels the run: phases under way finish, cleanups
//! run, the report is complete. A phase abandoned at its time limit may
//! never return (a thread cannot be stopped): the run says so when it
//! waits only for such phases ([`AbandonHint`]), and a second signal then
//! exits at once with status 130, writing first the report as it stands
//! (the jobs under way failed, those not tried blocked) and the summary,
//! and naming the cleanups it leaves undone.

use std::io::Write;
use std::sync::{Arc, Mutex, Once, PoisonError};

use dojobber::engine::Plan;
use dojobber::{CancelHandle, Event, Observer, Phase, Report};

use crate::OutputFile;

/// What a second signal writes before the program exits.
pub(crate) struct ExitNow {
    /// `--report-json`, shared with the end of the run: whoever takes it
    /// first writes it, under this lock.
    pub(crate) report: Arc<Mutex<Option<OutputFile>>>,
    /// Print the summary (not `--quiet`), in colour or not.
    pub(crate) summary: Option<bool>,
    /// An output took stdout: the summary goes to stderr.
    pub(crate) stdout_taken: bool,
}

impl ExitNow {
    /// Writes the run's report as it stands, if a run is under way, and
    /// says what is left undone.
    fn write(&self, handle: &CancelHandle) {
        let Some(report) = handle.report_if_ended_now() else {
            return;
        };
        let mut file = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = file.take() {
            let written = file.write(|out| {
                serde_json::to_writer_pretty(&mut *out, &report)?;
                out.write_all(b"\n")
            });
            if let Err(error) = written {
                eprintln!("error: {error}");
            }
        }
        if let Some(color) = self.summary {
            crate::print_human(&crate::summary(&report, color), self.stdout_taken);
        }
        let undone = cleanups_not_run(&report);
        if !undone.is_empty() {
            eprintln!("cleanups not run: {}", undone.join(", "));
        }
    }
}

/// The jobs whose run executed and whose cleanup did not run (none in
/// no-act mode).
fn cleanups_not_run(report: &Report) -> Vec<&str> {
    if report.no_act {
        return Vec::new();
    }
    report
        .jobs()
        .filter(|job| {
            let phases = job.phases();
            phases.iter().any(|p| p.phase == Phase::Run && p.performed)
                && !phases.iter().any(|p| p.phase == Phase::Cleanup)
        })
        .map(|job| job.name())
        .collect()
}

/// What the process-wide handler acts on: the run under way, or the
/// outputs written after it.
enum Current {
    /// The first signal cancels `handle`; a second does what `exit` says.
    Run { handle: CancelHandle, exit: ExitNow },
    /// The first signal stops the outputs not written yet (`handle`); a
    /// second exits at once.
    Outputs { handle: CancelHandle },
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Makes the first Ctrl-C, SIGTERM or SIGHUP cancel the run's `handle`; a
/// second one writes what `exit` says and exits with status 130.
pub(crate) fn cancel_during_the_run(handle: CancelHandle, exit: ExitNow) {
    set_current(Current::Run { handle, exit });
}

/// After the run: the first signal cancels `handle`, which stops the
/// outputs not written yet; a second exits at once with status 130.
pub(crate) fn stop_outputs_on_signals(handle: CancelHandle) {
    set_current(Current::Outputs { handle });
}

/// Makes a signal quit at once (status 130), as when no run is under way:
/// for a program that goes on after `execute` returns.
pub(crate) fn quit_on_signals() {
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = None;
}

/// Installs the process-wide handler once; the latest call's state is the
/// one it acts on.
fn set_current(current: Current) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        if let Err(error) = ctrlc::set_handler(on_signal) {
            tracing::debug!(%error, "signals stay with the program's own handler");
        }
    });
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(current);
}

fn on_signal() {
    let current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    match current.as_ref() {
        Some(Current::Run { handle, .. }) if !handle.is_cancelled() => {
            eprintln!(
                "cancelling: phases under way finish, then cleanups run (a second signal exits at once, writing the report as it stands)"
            );
            handle.cancel();
        }
        Some(Current::Run { handle, exit }) => {
            eprintln!("exiting without waiting for the phases under way");
            exit.write(handle);
            std::process::exit(130)
        }
        Some(Current::Outputs { handle }) if !handle.is_cancelled() => {
            eprintln!(
                "stopping: the outputs not written yet are skipped (a second signal quits at once)"
            );
            handle.cancel();
        }
        Some(Current::Outputs { .. }) | None => std::process::exit(130),
    }
}

/// Tells the operator, once, how to end a run that waits only for
/// phases abandoned at their time limit (the printer names them).
pub(crate) struct AbandonHint<W> {
    cancel: CancelHandle,
    out: W,
    told: bool,
}

impl<W: Write + Send> AbandonHint<W> {
    pub(crate) fn new(cancel: CancelHandle, out: W) -> Self {
        AbandonHint {
            cancel,
            out,
            told: false,
        }
    }
}

impl<W: Write + Send> Observer for AbandonHint<W> {
    fn reads_main_events(&self) -> bool {
        false
    }

    fn on_event(&mut self, event: &Event, _plan: &Plan) {
        if !matches!(event, Event::WaitingForAbandoned { .. }) || self.told {
            return;
        }
        self.told = true;
        let how = if self.cancel.is_cancelled() {
            "Ctrl-C again"
        } else {
            "Ctrl-C twice"
        };
        // Best effort, as the printer's lines.
        let _ = writeln!(
            self.out,
            "{how} to exit without waiting: the report is written as it stands, cleanups are not run"
        );
    }
}
