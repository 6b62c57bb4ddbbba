//! Concurrency groups: how many jobs of each are in a try, and who waits.

use crate::plan::JobId;

/// Per concurrency group of the plan (by the plan's group index): its
/// limit, the jobs in a try, and ready jobs held back by the limit.
#[derive(Debug)]
pub(super) struct Groups {
    groups: Vec<Group>,
}

#[derive(Debug, Default)]
struct Group {
    limit: Option<usize>,
    trying: usize,
    held: Vec<JobId>,
}

impl Groups {
    pub(super) fn new(count: usize) -> Groups {
        Groups {
            groups: (0..count).map(|_| Group::default()).collect(),
        }
    }

    pub(super) fn limit(&mut self, group: usize, limit: usize) {
        self.groups[group].limit = Some(limit);
    }

    /// Whether a job of `group` must wait for one to leave.
    pub(super) fn is_full(&self, group: usize) -> bool {
        let group = &self.groups[group];
        group.limit.is_some_and(|limit| group.trying >= limit)
    }

    /// Holds a ready job back until a job of its group leaves.
    pub(super) fn hold(&mut self, group: usize, job: JobId) {
        self.groups[group].held.push(job);
    }

    /// A job of `group` starts a try.
    pub(super) fn enter(&mut self, group: usize) {
        self.groups[group].trying += 1;
    }

    /// A job of `group` ended its try: the jobs held back go back in line.
    pub(super) fn leave(&mut self, group: usize) -> Vec<JobId> {
        let group = &mut self.groups[group];
        group.trying -= 1;
        std::mem::take(&mut group.held)
    }

    /// Every held job, released from every group.
    pub(super) fn drain_held(&mut self) -> impl Iterator<Item = JobId> + '_ {
        self.groups
            .iter_mut()
            .flat_map(|group| group.held.drain(..))
    }

    /// How many of `members` jobs in `group` can be in a try at once.
    pub(super) fn room(&self, group: usize, members: usize) -> usize {
        self.groups[group]
            .limit
            .map_or(members, |limit| limit.min(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_group_holds_jobs_until_one_leaves() {
        let mut groups = Groups::new(2);
        groups.limit(0, 1);
        assert!(!groups.is_full(0));
        groups.enter(0);
        assert!(groups.is_full(0));
        groups.hold(0, JobId::from_index(7));
        assert_eq!(groups.leave(0), [JobId::from_index(7)]);
        assert!(!groups.is_full(0));
    }

    #[test]
    fn an_unlimited_group_is_never_full() {
        let mut groups = Groups::new(1);
        for _ in 0..1000 {
            groups.enter(0);
        }
        assert!(!groups.is_full(0));
        assert_eq!(groups.room(0, 12), 12);
    }

    #[test]
    fn room_is_the_limit_or_the_members() {
        let mut groups = Groups::new(1);
        groups.limit(0, 3);
        assert_eq!(groups.room(0, 2), 2);
        assert_eq!(groups.room(0, 5), 3);
        groups.hold(0, JobId::from_index(1));
        assert_eq!(groups.drain_held().count(), 1);
    }
}
