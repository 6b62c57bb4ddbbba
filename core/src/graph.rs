//! Discovery: from a root job value to a [`JobGraph`], by following deps.
//!
//! This is the one place besides the drivers that calls user code
//! (`name`, `deps`, `kind`, `tries`, `retry_delay`); every call is guarded
//! so a panic marks that job broken instead of unwinding into the caller.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::caught::{drop_caught, panic_message};
use crate::job::JobRef;
use crate::plan::{Defaults, Described, Discovered, JobId, NameIndex, Plan, SetupError, reorder};

/// The jobs of a suite, numbered as in their [`Plan`].
pub struct JobGraph<A> {
    plan: Plan,
    jobs: JobTable<A>,
}

/// Job values indexed by [`JobId`]. Dropped dependents first, so a chain
/// of jobs that hold their deps is freed one link at a time instead of by
/// recursion as deep as the chain.
pub(crate) struct JobTable<A>(Vec<JobRef<A>>);

impl<A> std::ops::Deref for JobTable<A> {
    type Target = [JobRef<A>];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<A> Drop for JobTable<A> {
    fn drop(&mut self) {
        // Dependents have larger ids than their deps. A job whose `Drop`
        // panics does not stop the others from being dropped.
        while let Some(job) = self.0.pop() {
            drop_caught(job);
        }
    }
}

impl<A: 'static> JobGraph<A> {
    /// Finds every job reachable from `root` and checks the graph.
    ///
    /// Arguments: `root`, the job to reach; `args`, handed to every
    /// `deps()`; `defaults`, for jobs without their own tries or delay.
    ///
    /// Returns the graph, or the reason it cannot run: a cycle, two
    /// different jobs under one name, zero tries. A job whose `deps()`
    /// (or a dep's `name()`) panics is kept, marked broken: it fails
    /// without being tried and its dependents are blocked. Its failure
    /// is the panic, or for a dep's `name()`, the first such dep's place
    /// and type: `deps()[2] (my_suite::Invite): name() panicked: ...`.
    ///
    /// Complexity: O(jobs + edges) calls of user code and hash lookups,
    /// with no recursion.
    ///
    /// ```
    /// use dojobber::{dep, Job, JobRef};
    /// use dojobber::engine::{Defaults, JobGraph};
    ///
    /// struct Leaf;
    /// impl Job for Leaf {}
    /// struct Root;
    /// impl Job for Root {
    ///     fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(Leaf), dep(Leaf)] }
    /// }
    /// let graph = JobGraph::discover(dep(Root), &(), Defaults::default())?;
    /// assert_eq!(graph.plan().len(), 2); // the same name is the same job
    /// let leaf = graph.plan().find(&dep(Leaf).name()).unwrap();
    /// assert_eq!(graph.plan().deps(graph.plan().root()), [leaf, leaf]);
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn discover(root: JobRef<A>, args: &A, defaults: Defaults) -> Result<Self, SetupError> {
        let root_name = match catch_unwind(AssertUnwindSafe(|| root.name())) {
            Ok(name) => name,
            Err(payload) => {
                let message = panic_message(payload);
                // The root may be the last handle to a value whose `Drop` panics.
                drop_caught(root);
                return Err(SetupError::RootNamePanicked { message });
            }
        };
        // A table from the start: on every way out, a job value whose
        // `Drop` panics is caught like any user code. Until the plan
        // orders it, dependents come first: reversed on the ways out with
        // an error, as the table drops from the end.
        let mut jobs = JobTable(vec![root]);
        let mut found = Discovered::new(root_name);
        let mut by_name = NameIndex::default();
        by_name.insert_new(0, |i| found.name(i));
        let mut next = 0;
        while next < jobs.len() {
            let index = u32::try_from(next).expect("more than u32::MAX jobs");
            let job = JobRef::clone(&jobs[next]);
            let described = catch_unwind(AssertUnwindSafe(|| {
                let described = Described {
                    kind: job.kind(),
                    tries: job.tries(),
                    retry_delay: job.retry_delay(),
                    time_limit: job.time_limit(),
                    group: job.concurrency_group(),
                };
                (described, job.deps(args))
            }));
            let deps = match described {
                Ok((described, deps)) => {
                    found.describe(index, described);
                    deps
                }
                Err(payload) => {
                    found.set_broken(index, panic_message(payload));
                    Vec::new()
                }
            };
            let mut broken_dep = None;
            let mut deps = deps.into_iter().enumerate();
            while let Some((position, dep)) = deps.next() {
                let name = match catch_unwind(AssertUnwindSafe(|| dep.name())) {
                    Ok(name) => name,
                    Err(payload) => {
                        let panic = panic_message(payload);
                        // The dep has no name: its place and type tell it.
                        let type_name = dep.type_name();
                        broken_dep.get_or_insert_with(|| {
                            format!("deps()[{position}] ({type_name}): name() {panic}")
                        });
                        drop_caught(dep);
                        continue;
                    }
                };
                let new_index = u32::try_from(jobs.len()).expect("more than u32::MAX jobs");
                match by_name.find_or_insert(&name, new_index, |i| found.name(i)) {
                    Some(known) => {
                        let known_job = &jobs[known as usize];
                        if type_of(known_job) != type_of(&dep) {
                            let error = SetupError::DuplicateName {
                                name,
                                first: known_job.type_name().to_owned(),
                                second: dep.type_name().to_owned(),
                            };
                            drop_caught(dep);
                            // One by one: a second panic while one unwinds
                            // would abort.
                            deps.for_each(|(_, dep)| drop_caught(dep));
                            jobs.0.reverse();
                            return Err(error);
                        }
                        found.push_dep(known);
                        // A second value of a job found before.
                        drop_caught(dep);
                    }
                    None => {
                        found.add(name);
                        jobs.0.push(dep);
                        found.push_dep(new_index);
                    }
                }
            }
            if let Some(message) = broken_dep {
                found.set_broken(index, message);
            }
            found.end_deps();
            next += 1;
        }
        tracing::debug!(jobs = jobs.len(), "job graph discovered");

        drop(by_name);
        let (plan, order) = match Plan::from_discovered(found, defaults) {
            Ok(built) => built,
            Err(error) => {
                jobs.0.reverse();
                return Err(error);
            }
        };
        reorder(&mut jobs.0, &order);
        jobs.0.shrink_to_fit();
        Ok(JobGraph { plan, jobs })
    }

    /// The graph as data: names, deps, kinds, tries, in the reference order.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The job value numbered `id`.
    pub fn job(&self, id: JobId) -> &JobRef<A> {
        &self.jobs[id.index()]
    }

    /// The plan and the job values, indexed by [`JobId`].
    pub(crate) fn into_parts(self) -> (Plan, JobTable<A>) {
        (self.plan, self.jobs)
    }
}

fn type_of<A: 'static>(job: &JobRef<A>) -> std::any::TypeId {
    let job: &dyn Any = &**job;
    job.type_id()
}
