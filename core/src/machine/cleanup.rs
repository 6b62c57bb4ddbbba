//! The cleanup stage: which jobs are cleaned, in which order, and how it went.

use crate::plan::JobId;
use crate::report::CleanupFailure;

/// Every executed run, and the cleanups they owe: each job whose run
/// executed is cleaned once, most recent run first, one at a time; the
/// first failure ends the stage.
#[derive(Debug, Default)]
pub(super) struct Cleanups {
    /// Every executed run, in order.
    runs: Vec<JobId>,
    /// Cleanups to hand out: a stack whose top is the most recent run.
    queue: Vec<JobId>,
    done: bool,
    failure: Option<CleanupFailure>,
}

impl Cleanups {
    pub(super) fn ran(&mut self, job: JobId) {
        self.runs.push(job);
    }

    /// Lines up one cleanup per job whose run executed, by its latest run.
    pub(super) fn start(&mut self, jobs: usize) {
        let mut seen = vec![false; jobs];
        let mut most_recent_first: Vec<JobId> = self
            .runs
            .iter()
            .rev()
            .filter(|job| !std::mem::replace(&mut seen[job.index()], true))
            .copied()
            .collect();
        most_recent_first.reverse();
        self.queue = most_recent_first;
    }

    /// The next job to clean; `None` once the stage is over.
    pub(super) fn next(&mut self) -> Option<JobId> {
        let next = self.queue.pop();
        if next.is_none() {
            self.done = true;
        }
        next
    }

    /// A cleanup failed: the stage ends after it.
    pub(super) fn failed(&mut self, failure: CleanupFailure) {
        self.failure = Some(failure);
        self.queue.clear();
    }

    pub(super) fn is_done(&self) -> bool {
        self.done
    }

    pub(super) fn failure(&self) -> Option<&CleanupFailure> {
        self.failure.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Failure;

    fn ids(ids: &[usize]) -> Vec<JobId> {
        ids.iter().copied().map(JobId::from_index).collect()
    }

    #[test]
    fn each_job_is_cleaned_once_most_recent_run_first() {
        let mut cleanups = Cleanups::default();
        for job in ids(&[0, 1, 0, 2]) {
            cleanups.ran(job);
        }
        cleanups.start(3);
        let order: Vec<JobId> = std::iter::from_fn(|| cleanups.next()).collect();
        assert_eq!(order, ids(&[2, 0, 1]));
        assert!(cleanups.is_done());
    }

    #[test]
    fn a_failure_ends_the_stage() {
        let mut cleanups = Cleanups::default();
        for job in ids(&[0, 1]) {
            cleanups.ran(job);
        }
        cleanups.start(2);
        assert_eq!(cleanups.next(), Some(JobId::from_index(1)));
        cleanups.failed(CleanupFailure {
            job: "j1".into(),
            error: Failure::new("stuck"),
        });
        assert_eq!(cleanups.next(), None);
        assert_eq!(cleanups.failure().unwrap().job, "j1");
    }

    #[test]
    fn nothing_ran_nothing_to_clean() {
        let mut cleanups = Cleanups::default();
        assert!(!cleanups.is_done());
        cleanups.start(4);
        assert_eq!(cleanups.next(), None);
        assert!(cleanups.is_done());
    }
}
