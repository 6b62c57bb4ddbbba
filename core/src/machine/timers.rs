//! The machine's timers: retry delays, phase time limits and the run's
//! deadline. They only hold times; the machine says what each means.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use crate::plan::JobId;

use super::Task;

/// Every time at which the machine may change its mind without a report.
#[derive(Debug, Default)]
pub(super) struct Timers {
    /// Failed jobs waiting for their retry delay, earliest first.
    retries: BinaryHeap<Reverse<(Duration, JobId)>>,
    /// When each limited phase in flight runs out of time, earliest first;
    /// entries whose phase has reported stay until they come up.
    phase_limits: BinaryHeap<Reverse<(Duration, JobId, u32, crate::phase::Phase)>>,
    /// No new phase starts at or after this time.
    deadline: Option<Duration>,
}

impl Timers {
    pub(super) fn new(deadline: Option<Duration>) -> Timers {
        Timers {
            deadline,
            ..Timers::default()
        }
    }

    pub(super) fn retry_at(&mut self, job: JobId, at: Duration) {
        self.retries.push(Reverse((at, job)));
    }

    /// A job whose retry delay is over by `now`, if any.
    pub(super) fn pop_due_retry(&mut self, now: Duration) -> Option<JobId> {
        let &Reverse((at, job)) = self.retries.peek()?;
        (at <= now).then(|| {
            self.retries.pop();
            job
        })
    }

    pub(super) fn next_retry(&self) -> Option<Duration> {
        self.retries.peek().map(|Reverse((at, _))| *at)
    }

    /// Forgets every retry, returning whose.
    pub(super) fn drain_retries(&mut self) -> impl Iterator<Item = JobId> + '_ {
        self.retries.drain().map(|Reverse((_, job))| job)
    }

    pub(super) fn limit_phase(&mut self, task: Task, at: Duration) {
        self.phase_limits
            .push(Reverse((at, task.job, task.attempt, task.phase)));
    }

    /// The next phase over its limit by `now` for which `in_flight` holds;
    /// entries for which it does not are dropped on the way.
    pub(super) fn pop_expired_phase(
        &mut self,
        now: Duration,
        in_flight: impl Fn(Task) -> bool,
    ) -> Option<Task> {
        while let Some(&Reverse((at, job, attempt, phase))) = self.phase_limits.peek() {
            let task = Task {
                job,
                phase,
                attempt,
            };
            let flying = in_flight(task);
            if flying && at > now {
                return None;
            }
            self.phase_limits.pop();
            if flying {
                return Some(task);
            }
        }
        None
    }

    pub(super) fn next_phase_limit(&self) -> Option<Duration> {
        self.phase_limits.peek().map(|Reverse((at, ..))| *at)
    }

    pub(super) fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    pub(super) fn deadline_passed(&self, now: Duration) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// The earliest timer, counting retries and the deadline only if asked
    /// (a stopped run has neither).
    pub(super) fn earliest(&self, retries: bool, deadline: bool) -> Option<Duration> {
        let retry = self.next_retry().filter(|_| retries);
        let deadline = self.deadline.filter(|_| deadline);
        [retry, self.next_phase_limit(), deadline]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phase::Phase;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn task(job: usize) -> Task {
        Task {
            job: JobId::from_index(job),
            phase: Phase::Check,
            attempt: 1,
        }
    }

    #[test]
    fn retries_come_due_in_time_order() {
        let mut timers = Timers::new(None);
        timers.retry_at(JobId::from_index(1), secs(5));
        timers.retry_at(JobId::from_index(2), secs(3));
        assert_eq!(timers.next_retry(), Some(secs(3)));
        assert_eq!(timers.pop_due_retry(secs(2)), None);
        assert_eq!(timers.pop_due_retry(secs(4)), Some(JobId::from_index(2)));
        assert_eq!(timers.pop_due_retry(secs(4)), None);
        assert_eq!(timers.pop_due_retry(secs(5)), Some(JobId::from_index(1)));
    }

    #[test]
    fn a_phase_expires_at_its_limit_unless_it_has_landed() {
        let mut timers = Timers::new(None);
        timers.limit_phase(task(0), secs(2));
        timers.limit_phase(task(1), secs(3));
        assert_eq!(timers.pop_expired_phase(secs(1), |_| true), None);
        // Job 0 has landed: its entry goes, and job 1 is not due yet.
        assert_eq!(
            timers.pop_expired_phase(secs(2), |t| t.job.index() != 0),
            None
        );
        assert_eq!(timers.next_phase_limit(), Some(secs(3)));
        assert_eq!(timers.pop_expired_phase(secs(3), |_| true), Some(task(1)));
        assert_eq!(timers.next_phase_limit(), None);
    }

    #[test]
    fn the_earliest_timer_counts_what_is_asked() {
        let mut timers = Timers::new(Some(secs(10)));
        timers.retry_at(JobId::from_index(0), secs(4));
        timers.limit_phase(task(1), secs(7));
        assert_eq!(timers.earliest(true, true), Some(secs(4)));
        assert_eq!(timers.earliest(false, true), Some(secs(7)));
        assert!(!timers.deadline_passed(secs(9)));
        assert!(timers.deadline_passed(secs(10)));
        assert_eq!(timers.drain_retries().count(), 1);
        assert_eq!(timers.earliest(true, false), Some(secs(7)));
    }
}
