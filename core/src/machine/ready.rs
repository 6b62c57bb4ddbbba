//! The ready queue: jobs whose deps have passed, waiting for a try.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::plan::{JobId, Plan};

/// Jobs ready for a try, most urgent first, then smallest id (the
/// reference order). One phase at a time, urgency is off and the reference
/// order alone decides; with several, a job's urgency is the longest chain
/// of jobs waiting on it, so what holds up the most starts first.
#[derive(Debug)]
pub(super) struct ReadyQueue {
    heap: BinaryHeap<Reverse<(u32, JobId)>>,
    /// Per job, `u32::MAX` less its chain; empty when urgency is off.
    urgency: Vec<u32>,
}

impl ReadyQueue {
    pub(super) fn new(plan: &Plan, by_urgency: bool) -> ReadyQueue {
        ReadyQueue {
            heap: BinaryHeap::new(),
            urgency: if by_urgency {
                chain_urgency(plan)
            } else {
                Vec::new()
            },
        }
    }

    pub(super) fn push(&mut self, job: JobId) {
        let urgency = self.urgency.get(job.index()).copied().unwrap_or(0);
        self.heap.push(Reverse((urgency, job)));
    }

    /// The job that goes next, left in the queue.
    pub(super) fn peek(&self) -> Option<JobId> {
        self.heap.peek().map(|Reverse((_, job))| *job)
    }

    pub(super) fn pop(&mut self) -> Option<JobId> {
        self.heap.pop().map(|Reverse((_, job))| job)
    }

    /// Empties the queue, in no particular order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = JobId> + '_ {
        self.heap.drain().map(|Reverse((_, job))| job)
    }
}

/// Per job, `u32::MAX` less the longest chain of jobs (itself included)
/// from it up through its dependents: the smaller, the sooner to start.
/// One pass, dependents first, since they have the larger ids.
fn chain_urgency(plan: &Plan) -> Vec<u32> {
    let mut chain = vec![0u32; plan.len()];
    for id in plan.ids().rev() {
        let above = plan.dependents(id).iter().map(|d| chain[d.index()]).max();
        chain[id.index()] = 1 + above.unwrap_or(0);
    }
    chain.into_iter().map(|length| u32::MAX - length).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Defaults, JobSpec};

    /// `Leaf` (id 0) and the head of a chain of two (`Head`, id 1), both
    /// under `Root` (id 3).
    fn plan() -> Plan {
        let specs = vec![
            JobSpec::new("Leaf"),
            JobSpec::new("Head"),
            JobSpec {
                deps: vec![1],
                ..JobSpec::new("Tail")
            },
            JobSpec {
                deps: vec![0, 2],
                ..JobSpec::new("Root")
            },
        ];
        Plan::new(specs, 3, Defaults::default()).unwrap().0
    }

    fn drained_in_order(mut queue: ReadyQueue) -> Vec<usize> {
        std::iter::from_fn(|| queue.pop())
            .map(JobId::index)
            .collect()
    }

    #[test]
    fn without_urgency_jobs_come_in_the_reference_order() {
        let plan = plan();
        let mut queue = ReadyQueue::new(&plan, false);
        for id in [3, 1, 0, 2] {
            queue.push(JobId::from_index(id));
        }
        assert_eq!(queue.peek(), Some(JobId::from_index(0)));
        assert_eq!(drained_in_order(queue), [0, 1, 2, 3]);
    }

    #[test]
    fn with_urgency_the_longest_chain_goes_first() {
        let plan = plan();
        let mut queue = ReadyQueue::new(&plan, true);
        queue.push(JobId::from_index(0));
        queue.push(JobId::from_index(1));
        // Head holds up Tail and Root; Leaf only Root.
        assert_eq!(drained_in_order(queue), [1, 0]);
    }

    #[test]
    fn draining_empties_the_queue() {
        let plan = plan();
        let mut queue = ReadyQueue::new(&plan, true);
        queue.push(JobId::from_index(2));
        queue.push(JobId::from_index(0));
        let mut drained: Vec<usize> = queue.drain().map(JobId::index).collect();
        drained.sort_unstable();
        assert_eq!(drained, [0, 2]);
        assert_eq!(queue.pop(), None);
    }
}
