//! The ready queue: jobs whose deps have passed, waiting for a try.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use crate::plan::{JobId, Plan};

/// Jobs ready for a try, most urgent first, then smallest id (the
/// reference order). One phase at a time, urgency is off and the reference
/// order alone decides; with several, a job's urgency is the longest chain
/// of jobs waiting on it, so what holds up the most starts first.
///
/// Jobs often become ready in that order (the jobs with no deps at the
/// start, in the reference order; a job's dependents have larger ids than
/// it): those wait in a FIFO, cheaper than the heap, which holds the rest.
/// The queue's front is the smaller of the two fronts.
#[derive(Debug)]
pub(super) struct ReadyQueue {
    /// Keys pushed in ascending order, so sorted.
    ascending: VecDeque<(u32, JobId)>,
    /// Keys that came after a larger one.
    heap: BinaryHeap<Reverse<(u32, JobId)>>,
    /// Per job, `u32::MAX` less its chain; empty when urgency is off.
    urgency: Vec<u32>,
}

impl ReadyQueue {
    pub(super) fn new(plan: &Plan, by_urgency: bool) -> ReadyQueue {
        ReadyQueue {
            ascending: VecDeque::new(),
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
        let key = (urgency, job);
        if self.ascending.back().is_none_or(|&last| last <= key) {
            self.ascending.push_back(key);
        } else {
            self.heap.push(Reverse(key));
        }
    }

    /// The job that goes next, left in the queue.
    pub(super) fn peek(&self) -> Option<JobId> {
        let key = if self.front_is_ascending()? {
            self.ascending.front()
        } else {
            self.heap.peek().map(|Reverse(key)| key)
        };
        key.map(|&(_, job)| job)
    }

    pub(super) fn pop(&mut self) -> Option<JobId> {
        let key = if self.front_is_ascending()? {
            self.ascending.pop_front()
        } else {
            self.heap.pop().map(|Reverse(key)| key)
        };
        key.map(|(_, job)| job)
    }

    /// Whether the next job is the FIFO's (rather than the heap's); `None`
    /// when the queue is empty.
    fn front_is_ascending(&self) -> Option<bool> {
        match (self.ascending.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(first), Some(Reverse(top))) => Some(first < top),
        }
    }

    /// Empties the queue, in no particular order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = JobId> + '_ {
        let heap = self.heap.drain().map(|Reverse(key)| key);
        self.ascending.drain(..).chain(heap).map(|(_, job)| job)
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

    proptest::proptest! {
        /// Whatever the order of pushes and pops, each pop gives the
        /// smallest key waiting (urgency, then id), as one heap would.
        #[test]
        fn pops_give_the_smallest_waiting(
            ops in proptest::collection::vec(proptest::option::of(0usize..4), 0..40),
            by_urgency: bool,
        ) {
            let plan = plan();
            let mut queue = ReadyQueue::new(&plan, by_urgency);
            let urgency = chain_urgency(&plan);
            let key = |id: usize| (if by_urgency { urgency[id] } else { 0 }, id);
            let mut waiting: Vec<usize> = Vec::new();
            for op in ops {
                match op {
                    Some(id) => {
                        queue.push(JobId::from_index(id));
                        waiting.push(id);
                    }
                    None => {
                        let smallest = waiting.iter().copied().min_by_key(|&id| key(id));
                        if let Some(id) = smallest {
                            let at = waiting.iter().position(|&w| w == id).unwrap();
                            waiting.swap_remove(at);
                        }
                        let expected = smallest.map(JobId::from_index);
                        proptest::prop_assert_eq!(queue.peek(), expected);
                        proptest::prop_assert_eq!(queue.pop(), expected);
                    }
                }
            }
            let mut drained: Vec<usize> = queue.drain().map(JobId::index).collect();
            drained.sort_unstable();
            waiting.sort_unstable();
            proptest::prop_assert_eq!(drained, waiting);
        }
    }
}
