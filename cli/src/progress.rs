//! The progress display on stderr, and the writer that keeps verbose lines
//! above it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use dojobber::engine::{JobId, Plan};
use dojobber::observe::{Event, Observer};
use dojobber::{Phase, Status};
use indicatif::ProgressBar;

/// The progress display: jobs done of all, failures so far, and the jobs
/// in a phase right now.
pub(crate) struct Progress {
    bar: ProgressBar,
    sized: bool,
    failed: usize,
    in_phase: BTreeMap<JobId, Phase>,
}

impl Progress {
    pub(crate) fn new(bar: ProgressBar) -> Progress {
        Progress {
            bar,
            sized: false,
            failed: 0,
            in_phase: BTreeMap::new(),
        }
    }
}

impl Observer for Progress {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if !self.sized {
            self.bar.set_length(plan.len() as u64);
            self.sized = true;
        }
        match event {
            Event::PhaseStarted { task, .. } if task.phase != Phase::Cleanup => {
                self.in_phase.insert(task.job, task.phase);
            }
            Event::PhaseFinished { task, .. } => {
                self.in_phase.remove(&task.job);
            }
            Event::JobFinished { status, .. } => {
                if *status == Status::Failed {
                    self.failed += 1;
                }
                self.bar.inc(1);
            }
            Event::JobBlocked { .. } => self.bar.inc(1),
            _ => return,
        }
        let mut message = String::new();
        if self.failed > 0 {
            let _ = write!(message, "{} failed  ", self.failed);
        }
        let now: Vec<String> = self
            .in_phase
            .iter()
            .take(4)
            .map(|(&job, phase)| format!("{}.{phase}", dojobber::text::escaped(plan.name(job))))
            .collect();
        message.push_str(&now.join(", "));
        self.bar.set_message(message);
    }
}

/// Prints whole lines above the progress display, so verbose output and
/// the display never garble each other.
pub(crate) struct BarWriter {
    bar: ProgressBar,
    pending: Vec<u8>,
}

impl BarWriter {
    pub(crate) fn new(bar: ProgressBar) -> BarWriter {
        BarWriter {
            bar,
            pending: Vec::new(),
        }
    }
}

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.bar
                .println(String::from_utf8_lossy(&line[..line.len() - 1]));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BarWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.bar.println(String::from_utf8_lossy(&self.pending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_writer_prints_whole_lines_only() {
        let bar = ProgressBar::hidden();
        let mut writer = BarWriter::new(bar);
        writer.write_all(b"Food.check: pa").unwrap();
        assert_eq!(writer.pending, b"Food.check: pa");
        writer.write_all(b"ss\nPizza").unwrap();
        assert_eq!(writer.pending, b"Pizza");
    }
}
