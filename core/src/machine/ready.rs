//! The ready queue: jobs whose deps have passed, waiting for a try.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use fixedbitset::FixedBitSet;

use crate::plan::{JobId, Plan};

/// Jobs ready for a try, most urgent first, then smallest id (the
/// reference order). One phase at a time, urgency is off and the reference
/// order alone decides ([`InOrder`]); with several, a job's urgency is the
/// longest chain of jobs waiting on it, so what holds up the most starts
/// first ([`ByUrgency`]).
#[derive(Debug)]
pub(super) enum ReadyQueue {
    InOrder(InOrder),
    ByUrgency(ByUrgency),
}

impl ReadyQueue {
    pub(super) fn new(plan: &Plan, by_urgency: bool) -> ReadyQueue {
        if by_urgency {
            ReadyQueue::ByUrgency(ByUrgency {
                ascending: VecDeque::new(),
                heap: BinaryHeap::new(),
                urgency: chain_urgency(plan),
            })
        } else {
            ReadyQueue::InOrder(InOrder::new(plan.len()))
        }
    }

    /// Adds a job that is not in the queue.
    pub(super) fn push(&mut self, job: JobId) {
        match self {
            ReadyQueue::InOrder(queue) => queue.push(job),
            ReadyQueue::ByUrgency(queue) => queue.push(job),
        }
    }

    /// The job that goes next, left in the queue.
    pub(super) fn peek(&mut self) -> Option<JobId> {
        match self {
            ReadyQueue::InOrder(queue) => queue.first().map(JobId::from_index),
            ReadyQueue::ByUrgency(queue) => queue.peek(),
        }
    }

    /// The job that goes next, for a caller that cannot move the cursor.
    pub(super) fn next_up(&self) -> Option<JobId> {
        match self {
            ReadyQueue::InOrder(queue) => queue.search().map(|(_, index)| JobId::from_index(index)),
            ReadyQueue::ByUrgency(queue) => queue.peek(),
        }
    }

    pub(super) fn pop(&mut self) -> Option<JobId> {
        match self {
            ReadyQueue::InOrder(queue) => queue.pop(),
            ReadyQueue::ByUrgency(queue) => queue.pop(),
        }
    }

    /// Empties the queue, in no particular order.
    pub(super) fn drain(&mut self) -> Vec<JobId> {
        match self {
            ReadyQueue::InOrder(queue) => queue.drain(),
            ReadyQueue::ByUrgency(queue) => queue.drain(),
        }
    }
}

/// The ready jobs as bits by id: the next is the lowest set bit. In a
/// round, jobs become ready ahead of the one just started (a job's
/// dependents have larger ids), so the cursor moves forward and the search
/// is amortised: it goes back only when a job is pushed below it.
#[derive(Debug)]
pub(super) struct InOrder {
    ready: FixedBitSet,
    /// The block of bits below which none is set.
    cursor: usize,
    /// How many bits are set: an empty queue answers without a search.
    waiting: usize,
}

impl InOrder {
    fn new(jobs: usize) -> InOrder {
        InOrder {
            ready: FixedBitSet::with_capacity(jobs),
            cursor: 0,
            waiting: 0,
        }
    }

    fn push(&mut self, job: JobId) {
        let index = job.index();
        debug_assert!(!self.ready.contains(index), "a job is ready once");
        self.ready.insert(index);
        self.waiting += 1;
        self.cursor = self.cursor.min(index / BLOCK_BITS);
    }

    /// The lowest ready id and its block, searched from the cursor.
    fn search(&self) -> Option<(usize, usize)> {
        if self.waiting == 0 {
            return None;
        }
        let blocks = self.ready.as_slice();
        let offset = blocks.get(self.cursor..)?.iter().position(|&b| b != 0)?;
        let block = self.cursor + offset;
        Some((
            block,
            block * BLOCK_BITS + blocks[block].trailing_zeros() as usize,
        ))
    }

    /// The lowest ready id; the blocks skipped on the way stay skipped.
    fn first(&mut self) -> Option<usize> {
        match self.search() {
            Some((block, index)) => {
                self.cursor = block;
                Some(index)
            }
            None => {
                // Nothing is set: the next push puts the cursor at its block.
                self.cursor = usize::MAX;
                None
            }
        }
    }

    fn pop(&mut self) -> Option<JobId> {
        let index = self.first()?;
        self.ready.remove(index);
        self.waiting -= 1;
        Some(JobId::from_index(index))
    }

    fn drain(&mut self) -> Vec<JobId> {
        let drained = self.ready.ones().map(JobId::from_index).collect();
        self.ready.clear();
        self.waiting = 0;
        drained
    }
}

const BLOCK_BITS: usize = fixedbitset::Block::BITS as usize;

/// Keys are (urgency, id). Jobs often become ready in that order (the
/// jobs with no deps at the start, in the reference order; a job's
/// dependents have larger ids than it): those wait in a FIFO, cheaper than
/// the heap, which holds the rest. The queue's front is the smaller of the
/// two fronts.
#[derive(Debug)]
pub(super) struct ByUrgency {
    /// Keys pushed in ascending order, so sorted.
    ascending: VecDeque<(u32, JobId)>,
    /// Keys that came after a larger one.
    heap: BinaryHeap<Reverse<(u32, JobId)>>,
    /// Per job, `u32::MAX` less its chain.
    urgency: Vec<u32>,
}

impl ByUrgency {
    fn push(&mut self, job: JobId) {
        let key = (self.urgency[job.index()], job);
        if self.ascending.back().is_none_or(|&last| last <= key) {
            self.ascending.push_back(key);
        } else {
            self.heap.push(Reverse(key));
        }
    }

    fn peek(&self) -> Option<JobId> {
        let key = if self.front_is_ascending()? {
            self.ascending.front()
        } else {
            self.heap.peek().map(|Reverse(key)| key)
        };
        key.map(|&(_, job)| job)
    }

    fn pop(&mut self) -> Option<JobId> {
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

    fn drain(&mut self) -> Vec<JobId> {
        let heap = self.heap.drain().map(|Reverse(key)| key);
        self.ascending
            .drain(..)
            .chain(heap)
            .map(|(_, job)| job)
            .collect()
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
        let mut drained: Vec<usize> = queue.drain().into_iter().map(JobId::index).collect();
        drained.sort_unstable();
        assert_eq!(drained, [0, 2]);
        assert_eq!(queue.pop(), None);
    }

    /// 150 jobs in chains of two under a root: ids past one block of bits.
    fn wide_plan() -> Plan {
        let mut specs: Vec<JobSpec> = (0..150)
            .map(|n| JobSpec {
                deps: if n % 2 == 1 { vec![n - 1] } else { vec![] },
                ..JobSpec::new(format!("j{n}"))
            })
            .collect();
        specs.push(JobSpec {
            deps: (0..150).collect(),
            ..JobSpec::new("Root")
        });
        Plan::new(specs, 150, Defaults::default()).unwrap().0
    }

    proptest::proptest! {
        /// Whatever the order of pushes and pops, each pop gives the
        /// smallest key waiting (urgency, then id), as one heap would.
        #[test]
        fn pops_give_the_smallest_waiting(
            ops in proptest::collection::vec(proptest::option::of(0usize..151), 0..300),
            by_urgency: bool,
        ) {
            let plan = wide_plan();
            let mut queue = ReadyQueue::new(&plan, by_urgency);
            let urgency = chain_urgency(&plan);
            let key = |id: usize| (if by_urgency { urgency[id] } else { 0 }, id);
            let mut waiting: Vec<usize> = Vec::new();
            for op in ops {
                match op {
                    // The machine never pushes a job that is waiting.
                    Some(id) if waiting.contains(&id) => {}
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
            let mut drained: Vec<usize> = queue.drain().into_iter().map(JobId::index).collect();
            drained.sort_unstable();
            waiting.sort_unstable();
            proptest::prop_assert_eq!(drained, waiting);
        }
    }
}
