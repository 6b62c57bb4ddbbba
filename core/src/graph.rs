//! Discovery: from a root job value to a [`JobGraph`], by following deps.
//!
//! This is the one place besides the drivers that calls user code
//! (`name`, `deps`, `kind`, `tries`, `retry_delay`); every call is guarded
//! so a panic marks that job broken instead of unwinding into the caller.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::job::JobRef;
use crate::plan::{Defaults, JobId, JobSpec, NameIndex, Plan, SetupError};
use crate::report::Failure;

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
            crate::event::drop_caught(job);
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
    /// without being tried and its dependents are blocked.
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
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn discover(root: JobRef<A>, args: &A, defaults: Defaults) -> Result<Self, SetupError> {
        let root_name = catch_unwind(AssertUnwindSafe(|| root.name())).map_err(|payload| {
            SetupError::RootNamePanicked {
                message: Failure::from_panic(&*payload).message,
            }
        })?;
        let mut jobs = vec![root];
        let mut specs = vec![JobSpec::new(root_name)];
        let mut by_name = NameIndex::default();
        by_name.insert_new(0, |i| &specs[i as usize].name);
        let mut next = 0;
        while next < jobs.len() {
            let job = JobRef::clone(&jobs[next]);
            let described = catch_unwind(AssertUnwindSafe(|| {
                let limits = (job.time_limit(), job.concurrency_group());
                (
                    job.kind(),
                    job.tries(),
                    job.retry_delay(),
                    limits,
                    job.deps(args),
                )
            }));
            let (kind, tries, retry_delay, (time_limit, group), deps) = match described {
                Ok(described) => described,
                Err(payload) => {
                    specs[next].broken = Some(Failure::from_panic(&*payload).message);
                    next += 1;
                    continue;
                }
            };
            specs[next].kind = kind;
            specs[next].tries = tries;
            specs[next].retry_delay = retry_delay;
            specs[next].time_limit = time_limit;
            specs[next].group = group;
            let mut dep_indexes = Vec::with_capacity(deps.len());
            for dep in deps {
                let name = match catch_unwind(AssertUnwindSafe(|| dep.name())) {
                    Ok(name) => name,
                    Err(payload) => {
                        let panic = Failure::from_panic(&*payload).message;
                        specs[next].broken = Some(format!("a dep's name() {panic}"));
                        continue;
                    }
                };
                let index = match by_name.find(&name, |i| &specs[i as usize].name) {
                    Some(known) => {
                        let known_job = &jobs[known as usize];
                        if type_of(known_job) != type_of(&dep) {
                            return Err(SetupError::DuplicateName {
                                name,
                                first: known_job.type_name().to_owned(),
                                second: dep.type_name().to_owned(),
                            });
                        }
                        known as usize
                    }
                    None => {
                        let index = jobs.len();
                        specs.push(JobSpec::new(name));
                        jobs.push(dep);
                        let new = u32::try_from(index).expect("more than u32::MAX jobs");
                        by_name.insert_new(new, |i| &specs[i as usize].name);
                        index
                    }
                };
                dep_indexes.push(index);
            }
            specs[next].deps = dep_indexes;
            next += 1;
        }
        tracing::debug!(jobs = jobs.len(), "job graph discovered");

        let (plan, ids) = Plan::from_discovered(specs, by_name, defaults)?;
        let mut numbered: Vec<Option<JobRef<A>>> = vec![None; plan.len()];
        for (job, id) in jobs.into_iter().zip(ids) {
            let id = id.expect("every discovered job is reachable from the root");
            numbered[id.index()] = Some(job);
        }
        let jobs = numbered
            .into_iter()
            .map(|job| job.expect("ids are a permutation"))
            .collect();
        Ok(JobGraph {
            plan,
            jobs: JobTable(jobs),
        })
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
