//! The record of every phase of the run, in one list for the run rather
//! than one per job: a large run makes no allocation per job for it, and
//! the report takes the list as it is, put in job order in place.

use crate::event::Task;
use crate::plan::JobId;
use crate::report::{Failure, PhaseRecord};

/// Every phase record of the run, in the order the phases finished, with
/// the job of each.
#[derive(Clone, Debug, Default)]
pub(super) struct PhaseLog {
    records: Vec<PhaseRecord>,
    /// `jobs[i]` is the index of the job of `records[i]`.
    jobs: Vec<u32>,
}

impl PhaseLog {
    pub(super) fn push(&mut self, job: JobId, record: PhaseRecord) {
        self.records.push(record);
        self.jobs
            .push(u32::try_from(job.index()).expect("a JobId is a u32"));
    }

    /// The record that came last, and its job.
    pub(super) fn last(&self) -> Option<(JobId, &PhaseRecord)> {
        let job = JobId::from_index(*self.jobs.last()? as usize);
        Some((job, self.records.last()?))
    }

    /// The error of `task`'s record, the latest of its job for that phase
    /// and try, if it failed. Searched from the end: for the rare phase
    /// that comes back after its time limit.
    pub(super) fn error_of(&mut self, job: JobId, task: Task) -> Option<&mut Failure> {
        let job = u32::try_from(job.index()).expect("a JobId is a u32");
        let at = self
            .jobs
            .iter()
            .zip(&self.records)
            .rposition(|(&of, record)| {
                of == job && record.phase == task.phase && record.attempt == task.attempt
            })?;
        self.records[at].error.as_deref_mut()
    }

    /// The records in job order, each job's in the order they finished,
    /// and where each of the `job_count` jobs' records end (they start
    /// where the previous job's end). Sorted in place, by a counting sort
    /// whose permutation is applied by swaps: no second list of records.
    pub(super) fn into_job_order(self, job_count: usize) -> (Vec<PhaseRecord>, Vec<usize>) {
        let PhaseLog {
            mut records,
            jobs: mut places,
        } = self;
        let mut starts = vec![0; job_count];
        for &job in &places {
            starts[job as usize] += 1;
        }
        // Each job's count becomes where its records end...
        let mut end = 0;
        for slot in &mut starts {
            end += *slot;
            *slot = end;
        }
        // ...then, filled from the back, where they start; each record's
        // job becomes its place.
        for place in places.iter_mut().rev() {
            let job = *place as usize;
            starts[job] -= 1;
            *place = u32::try_from(starts[job]).expect("fewer than 2^32 records");
        }
        for at in 0..records.len() {
            // Each swap puts the record found at `at` in its place.
            while places[at] as usize != at {
                let place = places[at] as usize;
                records.swap(at, place);
                places.swap(at, place);
            }
        }
        let mut ends = starts;
        if !ends.is_empty() {
            ends.remove(0);
            ends.push(records.len());
        }
        (records, ends)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::PhaseLog;
    use crate::phase::Phase;
    use crate::plan::JobId;
    use crate::report::PhaseRecord;

    /// A record that says which job it belongs to and when it came.
    fn record(job: u32, order: u64) -> PhaseRecord {
        PhaseRecord {
            phase: Phase::Check,
            attempt: job,
            start_nanos: order,
            end_nanos: order,
            passed: true,
            performed: true,
            error: None,
        }
    }

    proptest! {
        /// Each job gets exactly its records, in the order they came.
        #[test]
        fn job_order_keeps_each_jobs_records_in_order(
            job_count in 1usize..20,
            jobs in prop::collection::vec(0u32..20, 0..200),
        ) {
            let jobs: Vec<u32> = jobs.into_iter().map(|job| job % job_count as u32).collect();
            let mut log = PhaseLog::default();
            for (order, &job) in jobs.iter().enumerate() {
                log.push(JobId::from_index(job as usize), record(job, order as u64));
            }
            let (records, ends) = log.into_job_order(job_count);
            prop_assert_eq!(ends.len(), job_count);
            let mut start = 0;
            for (job, &end) in ends.iter().enumerate() {
                let expected: Vec<u64> = (0..jobs.len() as u64)
                    .filter(|&order| jobs[order as usize] as usize == job)
                    .collect();
                let got: Vec<u64> = records[start..end].iter().map(|r| r.start_nanos).collect();
                prop_assert_eq!(got, expected);
                prop_assert!(records[start..end].iter().all(|r| r.attempt as usize == job));
                start = end;
            }
            prop_assert_eq!(start, records.len());
        }
    }

    #[test]
    fn the_last_record_names_its_job() {
        let mut log = PhaseLog::default();
        assert!(log.last().is_none());
        log.push(JobId::from_index(3), record(3, 0));
        log.push(JobId::from_index(1), record(1, 1));
        assert_eq!(
            log.last().map(|(job, r)| (job, r.start_nanos)),
            Some((JobId::from_index(1), 1))
        );
    }
}
