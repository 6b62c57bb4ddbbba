//! Ctrl-C, SIGTERM and SIGHUP during a run.
//!
//! The first signal cancels the run: phases under way finish, cleanups
//! run, the report is complete. A phase abandoned at its time limit may
//! never return (a thread cannot be stopped): the run says so when it
//! waits only for such phases ([`AbandonHint`]), and a second signal then
//! exits at once with status 130, writing first the report as it stands
//! (the jobs under way failed, those not tried blocked) and the summary,
//! and naming the cleanups it leaves undone. After the run, see [`Asked`].

use std::io::Write;
use std::sync::{Arc, Mutex, Once, PoisonError};

use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{CancelHandle, Phase, Report};

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
    /// Writes `report`, the run's as it stands, and says what is left
    /// undone.
    fn write(&self, report: &Report) {
        let mut file = self.report.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = file.take() {
            let written = file.write(|out| {
                serde_json::to_writer_pretty(&mut *out, report)?;
                out.write_all(b"\n")
            });
            if let Err(error) = written {
                say!("error: {error}");
            }
        }
        if let Some(color) = self.summary {
            crate::print_human(&crate::summary(report, color), self.stdout_taken);
        }
        let undone = cleanups_not_run(report);
        if !undone.is_empty() {
            say!("cleanups not run: {}", undone.join(", "));
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

/// What a signal does, as [`Asked::respond`] decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Response {
    /// Cancel the run: phases under way finish, cleanups run.
    CancelRun,
    /// Write the report as the run stands and the summary, then exit 130.
    ExitWritingTheReport,
    /// The run has ended: skip the outputs not written yet, except the
    /// report, and tell the user that two more signals quit.
    SkipOutputs,
    /// Already skipping; one more signal quits.
    OnceMoreQuits,
    /// Exit 130 at once, whatever is not written yet.
    Quit,
}

/// What the signals so far asked for: the handler's memory, which decides
/// what the next one does and does nothing itself.
///
/// During the run the first signal cancels it and a second exits at once,
/// writing the report as it stands. After the run the report it produced
/// is always written: the first signal skips the other outputs not written
/// yet and says so; only two more, asked after being told, quit before the
/// report is written. So two signals close together, whether they land
/// during the run, after it or across its end, never lose the report.
#[derive(Debug, Default)]
pub(crate) struct Asked {
    run_cancelled: bool,
    told: bool,
    after_told: u32,
}

impl Asked {
    /// What a signal does now, with the run under way (`run_ended` false)
    /// or over.
    pub(crate) fn respond(&mut self, run_ended: bool) -> Response {
        if !run_ended {
            if self.run_cancelled {
                return Response::ExitWritingTheReport;
            }
            self.run_cancelled = true;
            return Response::CancelRun;
        }
        if !self.told {
            self.told = true;
            return Response::SkipOutputs;
        }
        self.after_told += 1;
        if self.after_told < 2 {
            Response::OnceMoreQuits
        } else {
            Response::Quit
        }
    }
}

/// What the process-wide handler acts on.
struct Current {
    asked: Asked,
    /// Set by the main thread when the run has returned.
    run_ended: bool,
    /// The first signal during the run cancels it.
    run: CancelHandle,
    /// What a second signal during the run writes.
    exit: ExitNow,
    /// Cancelled by the first signal after the run: the outputs not
    /// written yet, but the report, are skipped.
    outputs: CancelHandle,
    /// Whether there is a report to write (`--report-json`).
    has_report: bool,
}

static CURRENT: Mutex<Option<Current>> = Mutex::new(None);

/// Signals from now on: during the run, the first Ctrl-C, SIGTERM or
/// SIGHUP cancels `run` and a second writes what `exit` says and exits
/// with status 130; after it (see [`run_ended`]) a signal cancels
/// `outputs` and the report is still written.
pub(crate) fn watch(run: CancelHandle, exit: ExitNow, outputs: CancelHandle) {
    let has_report = exit
        .report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some();
    set_current(Current {
        asked: Asked::default(),
        run_ended: false,
        run,
        exit,
        outputs,
        has_report,
    });
}

/// The run has returned: the signals from now on are for the outputs.
pub(crate) fn run_ended() {
    if let Some(current) = CURRENT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_mut()
    {
        current.run_ended = true;
    }
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
    let mut current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(current) = current.as_mut() else {
        std::process::exit(130)
    };
    let report = if current.run_ended {
        None
    } else {
        current.run.report_if_ended_now()
    };
    // No report from a run that has started: it has just ended, and its
    // own report is on its way.
    let run_ended = current.run_ended || (report.is_none() && current.run.has_run());
    match current.asked.respond(run_ended) {
        Response::CancelRun => {
            say!(
                "cancelling: phases under way finish, then cleanups run (a second signal exits at once, writing the report as it stands)"
            );
            current.run.cancel();
        }
        Response::ExitWritingTheReport => {
            say!("exiting without waiting for the phases under way");
            if let Some(report) = &report {
                current.exit.write(report);
            }
            std::process::exit(130)
        }
        Response::SkipOutputs => {
            let skipped = if current.has_report {
                "the report is written, the other outputs not written yet are skipped"
            } else {
                "the outputs not written yet are skipped"
            };
            say!("stopping: {skipped} (signal twice more to quit at once)");
            current.outputs.cancel();
        }
        Response::OnceMoreQuits => {
            say!("stopping: one more signal quits at once");
        }
        Response::Quit => std::process::exit(130),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sequence of signals, each landing during the run or after it:
    /// the report is lost only by quitting after the run, and that takes
    /// two signals after the one that told the user.
    #[test]
    fn the_report_is_lost_only_by_two_signals_after_being_told() {
        // Each signal lands during the run (false) or after it (true);
        // once after, every later one is after too.
        for ended_at in 0..=5 {
            let mut asked = Asked::default();
            let responses: Vec<Response> = (0..5).map(|n| asked.respond(n >= ended_at)).collect();
            let told_at = responses.iter().position(|r| *r == Response::SkipOutputs);
            if let Some(quit) = responses.iter().position(|r| *r == Response::Quit) {
                let told_at = told_at.expect("quits only once told");
                assert_eq!(quit - told_at, 2, "{ended_at}: {responses:?}");
            }
            match ended_at {
                0 => assert_eq!(
                    responses,
                    [
                        Response::SkipOutputs,
                        Response::OnceMoreQuits,
                        Response::Quit,
                        Response::Quit,
                        Response::Quit,
                    ]
                ),
                1 => assert_eq!(
                    responses[..3],
                    [
                        Response::CancelRun,
                        Response::SkipOutputs,
                        Response::OnceMoreQuits
                    ],
                    "a second signal just after the run keeps the report"
                ),
                _ => assert_eq!(
                    responses[..2],
                    [Response::CancelRun, Response::ExitWritingTheReport]
                ),
            }
        }
    }
}
