//! The job graph as plain data: names, kinds, tries, delays and dependency
//! edges, numbered in the reference order. The [`Plan`] knows nothing of
//! job values or user code; it is what the machine schedules from.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;
use std::time::Duration;

use hashbrown::HashTable;

use fixedbitset::FixedBitSet;
use petgraph::Direction;
use petgraph::algo::{astar, kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{DfsPostOrder, GraphBase, GraphRef, IntoNeighbors, NodeFiltered, Visitable};

use crate::phase::JobKind;

/// A job's number in its [`Plan`]. Ids follow the reference order (the
/// depth-first post-order from the root, deps in declaration order), so a
/// job's deps always have smaller ids than the job, and the root has the
/// largest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct JobId(u32);

impl JobId {
    /// The id as an index into per-job vectors.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id of the `index`-th job of the reference order.
    ///
    /// ```
    /// use dojobber::engine::JobId;
    /// assert_eq!(JobId::from_index(4).index(), 4);
    /// ```
    pub fn from_index(index: usize) -> JobId {
        JobId(u32::try_from(index).expect("more than u32::MAX jobs"))
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Why a suite could not start. Nothing has run when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Jobs depend on each other in a circle; the list starts and ends with
    /// the same job.
    #[error("dependency cycle: {}", .cycle.join(" -> "))]
    Cycle {
        /// `[A, B, C, A]`: A depends on B, B on C, C on A.
        cycle: Vec<String>,
    },
    /// Two jobs of different types claim the same name.
    #[error("two different jobs are named {name:?}: {first} and {second}")]
    DuplicateName {
        /// The name both claim.
        name: String,
        /// The job found first: its Rust type when discovery found it,
        /// `job spec N` (its index) in the specs given to [`Plan::new`].
        first: String,
        /// The job found second, in the same form.
        second: String,
    },
    /// A job (or the run's default) asks for zero tries.
    #[error("{job} has 0 tries; every job needs at least 1")]
    ZeroTries {
        /// `job "Name"`, or `the run's default`.
        job: String,
    },
    /// A job was asked for by a name that no job of the graph has.
    #[error("no job is named {name:?}{}", close_matches(.close))]
    UnknownJob {
        /// The name asked for.
        name: String,
        /// The names of the graph that look like it, closest first.
        close: Vec<String>,
    },
    /// `workers(0)`: a run needs at least one worker.
    #[error("workers(0): at least one worker is needed")]
    ZeroWorkers,
    /// `group_limit(group, 0)`: a group needs room for at least one job.
    #[error("group_limit({group:?}, 0): a group needs room for at least one job")]
    ZeroGroupLimit {
        /// The group's name.
        group: String,
    },
    /// More concurrency groups than a run can number (65,536).
    #[error("concurrency group {group:?} is one too many: a run has at most 65,536")]
    TooManyGroups {
        /// The first group past the limit.
        group: String,
    },
    /// A hand-made plan's root is past its specs.
    #[error("the root is spec {root}, but there are {specs} specs")]
    RootOutOfRange {
        /// The root's index.
        root: usize,
        /// How many specs were given.
        specs: usize,
    },
    /// A spec of a hand-made plan has a dep past the specs.
    #[error("spec {spec} ({name}) has dep {dep}, but there are {specs} specs")]
    DepOutOfRange {
        /// The spec's index.
        spec: usize,
        /// Its name.
        name: String,
        /// The dep's index.
        dep: usize,
        /// How many specs were given.
        specs: usize,
    },
    /// The system refused a worker thread of the thread pool.
    /// (The message keeps the source's text, as it always said it.)
    #[error("workers({workers}): could not start worker thread {number} of {wanted}: {source}")]
    WorkerThread {
        /// The workers asked for.
        workers: usize,
        /// Which thread, from 1.
        number: usize,
        /// The threads the run needed (fewer than `workers` for a plan
        /// with fewer jobs).
        wanted: usize,
        /// Why the system refused it.
        #[source]
        source: SpawnError,
    },
    /// A thread pool larger than the system can map: past
    /// `vm.max_map_count`, a started thread aborts the process.
    #[error(
        "workers({workers}): {wanted} worker threads need about {needed} memory mappings, \
         but the system allows a process {limit} (vm.max_map_count, {setting}) and this \
         one has {in_use}: at most {fit} workers fit; use fewer, or raise vm.max_map_count"
    )]
    TooManyThreads {
        /// The workers asked for.
        workers: usize,
        /// The threads the run needed.
        wanted: usize,
        /// The memory mappings those threads need, about.
        needed: usize,
        /// The system's limit of mappings per process.
        limit: usize,
        /// The mappings this process already has.
        in_use: usize,
        /// How many workers would fit.
        fit: usize,
        /// Where the limit is set.
        setting: &'static str,
    },
    /// The root job's `name()` panicked, so there is nothing to name the run by.
    #[error("the root job's name() panicked: {message}")]
    RootNamePanicked {
        /// The panic message.
        message: String,
    },
}

/// The system's refusal of a thread ([`SetupError::WorkerThread`]'s
/// source): an [`std::io::Error`], shared so that the error stays `Clone`,
/// and compared by its kind and text.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SpawnError(pub std::sync::Arc<std::io::Error>);

impl PartialEq for SpawnError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl Eq for SpawnError {}

fn close_matches(close: &[String]) -> String {
    match close {
        [] => String::new(),
        names => format!("; did you mean {}?", names.join(", ")),
    }
}

/// The defaults for jobs that do not choose their own tries and retry delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Tries per job; at least 1.
    pub tries: u32,
    /// Least time between the end of a failed try and the next try.
    pub retry_delay: Duration,
}

impl Default for Defaults {
    /// 3 tries, 1 second apart.
    fn default() -> Self {
        Defaults {
            tries: 3,
            retry_delay: Duration::from_secs(1),
        }
    }
}

/// One job as discovered, before the plan numbers it: the input of
/// [`Plan::new`], for drivers and test harnesses that build graphs from data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobSpec {
    /// Unique name.
    pub name: String,
    /// How its phases are treated.
    pub kind: JobKind,
    /// Its own tries, or `None` for the default.
    pub tries: Option<u32>,
    /// Its own retry delay, or `None` for the default.
    pub retry_delay: Option<Duration>,
    /// Indexes of its deps in the spec list, in declaration order.
    pub deps: Vec<usize>,
    /// Set when the job could not even be described (its `deps()`
    /// panicked, say): it fails with this message without being tried.
    pub broken: Option<String>,
    /// Longest time one phase may take; `None`: no limit.
    pub time_limit: Option<Duration>,
    /// The concurrency group it belongs to, if any.
    pub group: Option<String>,
}

impl JobSpec {
    /// A normal job with default tries and delay, no deps.
    ///
    /// ```
    /// use dojobber::JobKind;
    /// use dojobber::engine::JobSpec;
    /// let spec = JobSpec::new("A");
    /// assert_eq!((spec.kind, spec.deps.len()), (JobKind::Normal, 0));
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        JobSpec {
            name: name.into(),
            kind: JobKind::Normal,
            tries: None,
            retry_delay: None,
            deps: Vec::new(),
            broken: None,
            time_limit: None,
            group: None,
        }
    }
}

/// The numbered job graph the machine schedules: per job its name, kind,
/// tries, retry delay and deps, in the reference order.
#[derive(Clone, Debug)]
pub struct Plan {
    names: Vec<String>,
    kinds: Vec<JobKind>,
    tries: PerJob<u32>,
    retry_delays: PerJob<Duration>,
    broken: HashMap<JobId, String>,
    time_limits: HashMap<JobId, Duration>,
    /// Names of the concurrency groups, indexed by `job_groups`.
    group_names: Vec<String>,
    job_groups: PerJob<Option<u16>>,
    /// For a discovered plan, made at the first [`find`](Self::find):
    /// most runs never look a job up by name, and a million names index
    /// in 10 MB. `Plan::new` makes it at once, to find duplicate names.
    by_name: OnceLock<NameIndex>,
    /// Deps of job `i` are `dep_list[dep_start[i]..dep_start[i + 1]]`.
    dep_start: Vec<u32>,
    dep_list: Vec<JobId>,
    /// Dependents, laid out like the deps.
    dependent_start: Vec<u32>,
    dependent_list: Vec<JobId>,
}

/// A value of every job that most jobs take from the run's defaults: the
/// list is made only when a job has its own, so a plan whose jobs all take
/// the default holds none.
#[derive(Clone, Debug)]
struct PerJob<T> {
    default: T,
    /// Empty while every job has the default.
    each: Vec<T>,
}

impl<T: Copy + PartialEq> PerJob<T> {
    /// `len` jobs with the default but those `values` name.
    fn from_sparse(default: T, len: usize, values: impl IntoIterator<Item = (JobId, T)>) -> Self {
        let mut each = Vec::new();
        for (id, value) in values {
            if value != default {
                if each.is_empty() {
                    each = vec![default; len];
                }
                each[id.index()] = value;
            }
        }
        PerJob { default, each }
    }

    fn get(&self, id: JobId) -> T {
        self.each.get(id.index()).copied().unwrap_or(self.default)
    }
}

/// Finds jobs by name without a second copy of the names: a hash table of
/// indexes into a list of names that its owner keeps.
#[derive(Clone, Debug, Default)]
pub(crate) struct NameIndex {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
}

impl NameIndex {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        NameIndex {
            table: HashTable::with_capacity(capacity),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// The index of `name`; `name_of` reads the owner's list.
    pub(crate) fn find<'a>(&self, name: &str, name_of: impl Fn(u32) -> &'a str) -> Option<u32> {
        let hash = self.hasher.hash_one(name);
        self.table.find(hash, |&i| name_of(i) == name).copied()
    }

    /// The index of `name` if it is known; else records `new_index` for it
    /// and returns `None`, and the caller puts `name` at `new_index`. The
    /// name is hashed once either way.
    pub(crate) fn find_or_insert<'a>(
        &mut self,
        name: &str,
        new_index: u32,
        name_of: impl Fn(u32) -> &'a str,
    ) -> Option<u32> {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(name);
        match self.table.entry(
            hash,
            |&i| name_of(i) == name,
            |&i| hasher.hash_one(name_of(i)),
        ) {
            hashbrown::hash_table::Entry::Occupied(known) => Some(*known.get()),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(new_index);
                None
            }
        }
    }

    /// Records that `name_of(index)` is new; the caller checked with `find`.
    pub(crate) fn insert_new<'a>(&mut self, index: u32, name_of: impl Fn(u32) -> &'a str) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(name_of(index));
        self.table
            .insert_unique(hash, index, |&i| hasher.hash_one(name_of(i)));
    }
}

/// Jobs numbered in the order they were found, before the plan puts them
/// in the reference order: what discovery collects, and what [`Plan::new`]
/// makes of its specs. Values that most jobs leave to the defaults are
/// listed only for the jobs that set them, by index, in index order.
#[derive(Debug, Default)]
pub(crate) struct Discovered {
    names: Vec<String>,
    kinds: Vec<JobKind>,
    /// Deps of job `i` are `dep_list[dep_start[i]..dep_start[i + 1]]`;
    /// jobs list their deps in index order, each closed by `end_deps`.
    dep_start: Vec<u32>,
    dep_list: Vec<u32>,
    tries: Vec<(u32, u32)>,
    retry_delays: Vec<(u32, Duration)>,
    time_limits: Vec<(u32, Duration)>,
    groups: Vec<(u32, String)>,
    broken: Vec<(u32, String)>,
}

/// What a job says of itself besides its name and deps.
pub(crate) struct Described {
    pub(crate) kind: JobKind,
    pub(crate) tries: Option<u32>,
    pub(crate) retry_delay: Option<Duration>,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) group: Option<String>,
}

impl Discovered {
    /// Only the root, named `root_name`, found.
    pub(crate) fn new(root_name: String) -> Self {
        let mut found = Discovered {
            dep_start: vec![0],
            ..Discovered::default()
        };
        found.add(root_name);
        found
    }

    /// Adds a normal job with no values of its own; returns its index.
    #[inline]
    pub(crate) fn add(&mut self, name: String) -> u32 {
        let index = len_u32(self.names.len());
        self.names.push(name);
        self.kinds.push(JobKind::Normal);
        index
    }

    /// How many jobs were found.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The name of job `index`.
    #[inline]
    pub(crate) fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }

    /// Sets what job `index` says of itself.
    #[inline]
    pub(crate) fn describe(&mut self, index: u32, described: Described) {
        self.kinds[index as usize] = described.kind;
        if let Some(tries) = described.tries {
            self.tries.push((index, tries));
        }
        if let Some(delay) = described.retry_delay {
            self.retry_delays.push((index, delay));
        }
        if let Some(limit) = described.time_limit {
            self.time_limits.push((index, limit));
        }
        if let Some(group) = described.group {
            self.groups.push((index, group));
        }
    }

    /// Marks job `index` broken: it fails with `message` without being tried.
    pub(crate) fn set_broken(&mut self, index: u32, message: String) {
        self.broken.push((index, message));
    }

    /// Adds a dep of the job whose deps are being listed.
    #[inline]
    pub(crate) fn push_dep(&mut self, dep: u32) {
        self.dep_list.push(dep);
    }

    /// Closes the deps of the job whose deps were being listed.
    #[inline]
    pub(crate) fn end_deps(&mut self) {
        self.dep_start.push(len_u32(self.dep_list.len()));
    }

    fn from_specs(specs: Vec<JobSpec>) -> Self {
        let count = specs.len();
        let mut found = Discovered {
            dep_start: Vec::with_capacity(count + 1),
            names: Vec::with_capacity(count),
            kinds: Vec::with_capacity(count),
            ..Discovered::default()
        };
        found.dep_start.push(0);
        for spec in specs {
            let index = found.add(spec.name);
            found.describe(
                index,
                Described {
                    kind: spec.kind,
                    tries: spec.tries,
                    retry_delay: spec.retry_delay,
                    time_limit: spec.time_limit,
                    group: spec.group,
                },
            );
            if let Some(message) = spec.broken {
                found.set_broken(index, message);
            }
            for dep in spec.deps {
                debug_assert!(dep < count, "Plan::new checks the indexes");
                found.push_dep(len_u32(dep));
            }
            found.end_deps();
        }
        found
    }

    fn deps_view(&self) -> DepsView<'_> {
        DepsView {
            start: &self.dep_start,
            list: &self.dep_list,
        }
    }
}

/// Discovered deps as a graph petgraph walks, without a copy in a graph of
/// its own. A job's neighbours come last declared first, as petgraph's
/// `Graph` yields them, so the order its walks take is the same.
#[derive(Clone, Copy)]
struct DepsView<'a> {
    start: &'a [u32],
    list: &'a [u32],
}

impl DepsView<'_> {
    fn deps(&self, index: u32) -> &[u32] {
        let i = index as usize;
        &self.list[self.start[i] as usize..self.start[i + 1] as usize]
    }
}

impl GraphBase for DepsView<'_> {
    type NodeId = u32;
    type EdgeId = ();
}

impl GraphRef for DepsView<'_> {}

impl Visitable for DepsView<'_> {
    type Map = FixedBitSet;
    fn visit_map(&self) -> FixedBitSet {
        FixedBitSet::with_capacity(self.start.len() - 1)
    }
    fn reset_map(&self, map: &mut FixedBitSet) {
        map.clear();
        map.grow(self.start.len() - 1);
    }
}

impl<'a> IntoNeighbors for DepsView<'a> {
    type Neighbors = std::iter::Rev<std::iter::Copied<std::slice::Iter<'a, u32>>>;
    fn neighbors(self, index: u32) -> Self::Neighbors {
        let i = index as usize;
        self.list[self.start[i] as usize..self.start[i + 1] as usize]
            .iter()
            .copied()
            .rev()
    }
}

/// Reorders `items` in place so that item `i` is the one that was at
/// `order[i]`; `order` is a permutation of the indexes.
pub(crate) fn reorder<T>(items: &mut [T], order: &[u32]) {
    assert_eq!(items.len(), order.len(), "one place per item");
    let mut placed = FixedBitSet::with_capacity(items.len());
    for start in 0..items.len() {
        if placed.put(start) {
            continue;
        }
        // Follow the cycle of the permutation through `start`.
        let mut at = start;
        loop {
            let from = order[at] as usize;
            if from == start {
                break;
            }
            items.swap(at, from);
            placed.insert(from);
            at = from;
        }
    }
}

impl Plan {
    /// Checks and numbers a discovered graph.
    ///
    /// Arguments: `specs`, the jobs (deps as indexes into `specs`); `root`,
    /// the index of the root job, from which only reachable jobs are kept;
    /// `defaults`, for jobs that do not choose tries or delay.
    ///
    /// Returns the plan and, per spec, its [`JobId`] (`None` when the spec
    /// is not reachable from the root). Fails on a cycle (naming every job
    /// of one), on two specs with one name, on zero tries, or on a root or
    /// dep index past the specs.
    ///
    /// Complexity: O(jobs + edges); a cycle, or a spec the root does not
    /// reach, costs another O(jobs + edges) (a petgraph `Graph` and its
    /// `toposort`).
    ///
    /// ```
    /// use dojobber::engine::{Defaults, JobSpec, Plan};
    ///
    /// let mut a = JobSpec::new("A");
    /// a.deps = vec![1, 2];
    /// let specs = vec![a, JobSpec::new("B"), JobSpec::new("C")];
    /// let (plan, ids) = Plan::new(specs, 0, Defaults::default())?;
    /// let order: Vec<_> = plan.ids().map(|id| plan.name(id)).collect();
    /// assert_eq!(order, ["B", "C", "A"]);
    /// assert_eq!(ids[0], Some(plan.root()));
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn new(
        specs: Vec<JobSpec>,
        root: usize,
        defaults: Defaults,
    ) -> Result<(Plan, Vec<Option<JobId>>), SetupError> {
        let count = specs.len();
        if root >= count {
            return Err(SetupError::RootOutOfRange { root, specs: count });
        }
        for (index, spec) in specs.iter().enumerate() {
            if let Some(dep) = spec.deps.iter().find(|&&dep| dep >= count) {
                return Err(SetupError::DepOutOfRange {
                    spec: index,
                    name: spec.name.clone(),
                    dep: *dep,
                    specs: count,
                });
            }
        }
        let (plan, order) = Self::build(Discovered::from_specs(specs), root, defaults, false)?;
        let mut ids = vec![None; count];
        for (id, &old) in plan.ids().zip(&order) {
            ids[old as usize] = Some(id);
        }
        Ok((plan, ids))
    }

    /// [`Plan::new`] for jobs whose names are known to be unique, rooted
    /// at job 0, every job reachable from it.
    ///
    /// Returns the plan and, per [`JobId`], the job's discovery number.
    pub(crate) fn from_discovered(
        found: Discovered,
        defaults: Defaults,
    ) -> Result<(Plan, Vec<u32>), SetupError> {
        let count = found.len();
        let (plan, order) = Self::build(found, 0, defaults, true)?;
        assert_eq!(order.len(), count, "every discovered job is reachable");
        Ok((plan, order))
    }

    /// Numbers the jobs reachable from `root` in the reference order and
    /// moves them into a plan; returns it and, per id, the job's index in
    /// `found`.
    fn build(
        found: Discovered,
        root: usize,
        defaults: Defaults,
        names_are_unique: bool,
    ) -> Result<(Plan, Vec<u32>), SetupError> {
        assert!(root < found.len(), "root index out of range");
        if defaults.tries == 0 {
            return Err(SetupError::ZeroTries {
                job: "the run's default".into(),
            });
        }
        let Ordered {
            order,
            old_to_new,
            dep_start: plan_start,
            dep_list: plan_list,
        } = Ordered::walk(&found, root)?;

        let Discovered {
            mut names,
            kinds,
            dep_start: _,
            dep_list: _,
            tries,
            retry_delays,
            time_limits,
            groups,
            broken,
        } = found;
        let new_id = |old: u32| match old_to_new[old as usize] {
            u32::MAX => None,
            id => Some(JobId(id)),
        };
        // Each job in the reference order: its name is checked, then its tries.
        let zero_tries = tries
            .iter()
            .filter(|&&(_, tries)| tries == 0)
            .filter_map(|&(old, _)| new_id(old))
            .min();
        let checked = zero_tries.map_or(order.len(), |id| id.index() + 1);
        let by_name = match names_are_unique {
            true => OnceLock::new(),
            false => OnceLock::from(unique_index(&names, &order[..checked])?),
        };
        if let Some(id) = zero_tries {
            return Err(SetupError::ZeroTries {
                job: format!("job {:?}", names[order[id.index()] as usize]),
            });
        }

        let len = order.len();
        let mut groups: Vec<(JobId, String)> = renumbered(groups, new_id).collect();
        groups.sort_unstable_by_key(|&(id, _)| id);
        let mut group_names = Vec::new();
        let mut group_numbers = HashMap::new();
        let job_groups = groups
            .into_iter()
            .map(|(id, name)| {
                let index = group_index(&mut group_names, &mut group_numbers, name)?;
                Ok((id, Some(index)))
            })
            .collect::<Result<Vec<_>, SetupError>>()?;
        let mut plan = Plan {
            kinds: order.iter().map(|&old| kinds[old as usize]).collect(),
            tries: PerJob::from_sparse(defaults.tries, len, renumbered(tries, new_id)),
            retry_delays: PerJob::from_sparse(
                defaults.retry_delay,
                len,
                renumbered(retry_delays, new_id),
            ),
            broken: renumbered(broken, new_id).collect(),
            time_limits: renumbered(time_limits, new_id).collect(),
            group_names,
            job_groups: PerJob::from_sparse(None, len, job_groups),
            by_name,
            dep_start: plan_start,
            dep_list: plan_list,
            dependent_start: Vec::new(),
            dependent_list: Vec::new(),
            names: Vec::new(),
        };
        if names.len() > len {
            // The names the root does not reach go last, and are dropped.
            let unreached = (0..len_u32(names.len())).filter(|&old| new_id(old).is_none());
            let all: Vec<u32> = order.iter().copied().chain(unreached).collect();
            reorder(&mut names, &all);
            names.truncate(len);
        } else {
            reorder(&mut names, &order);
        }
        drop(old_to_new);
        names.shrink_to_fit();
        plan.names = names;
        plan.index_dependents();
        Ok((plan, order))
    }

    /// Fills the dependents lists by counting sort over the deps lists.
    fn index_dependents(&mut self) {
        let mut counts = vec![0u32; self.len() + 1];
        for dep in &self.dep_list {
            counts[dep.index() + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        self.dependent_start = counts.clone();
        let mut next = counts;
        let mut dependents = vec![JobId(0); self.dep_list.len()];
        for id in self.ids() {
            for &dep in self.deps(id) {
                let slot = &mut next[dep.index()];
                dependents[*slot as usize] = id;
                *slot += 1;
            }
        }
        self.dependent_list = dependents;
    }

    /// How many jobs the plan holds.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the plan holds no job (never true for a discovered plan).
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The root job: the last of the reference order.
    pub fn root(&self) -> JobId {
        JobId::from_index(self.len() - 1)
    }

    /// Every job, in the reference order.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = JobId> + ExactSizeIterator + use<> {
        (0..len_u32(self.len())).map(JobId)
    }

    /// The job's name.
    pub fn name(&self, id: JobId) -> &str {
        &self.names[id.index()]
    }

    /// The job called `name`, if there is one. The first call indexes
    /// every name (O(jobs)); later ones cost a hash.
    ///
    /// ```
    /// use dojobber::engine::{Defaults, JobSpec, Plan};
    /// let (plan, _) = Plan::new(vec![JobSpec::new("TurnOnTV")], 0, Defaults::default())?;
    /// assert_eq!(plan.find("TurnOnTV"), Some(plan.root()));
    /// assert_eq!(plan.find("TurnOnTv"), None);
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn find(&self, name: &str) -> Option<JobId> {
        let name_of = |i: u32| self.names[i as usize].as_str();
        let by_name = self.by_name.get_or_init(|| {
            let mut by_name = NameIndex::with_capacity(self.names.len());
            for id in 0..len_u32(self.names.len()) {
                by_name.insert_new(id, name_of);
            }
            by_name
        });
        by_name.find(name, name_of).map(JobId)
    }

    /// The job called `name`, or an error naming the closest names the
    /// plan has (at most three, closest first).
    ///
    /// ```
    /// use dojobber::engine::{Defaults, JobSpec, Plan};
    /// let (plan, _) = Plan::new(vec![JobSpec::new("TurnOnTV")], 0, Defaults::default())?;
    /// let err = plan.find_or_suggest("TurnOnTv").unwrap_err();
    /// assert_eq!(err.to_string(), "no job is named \"TurnOnTv\"; did you mean TurnOnTV?");
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn find_or_suggest(&self, name: &str) -> Result<JobId, SetupError> {
        if let Some(id) = self.find(name) {
            return Ok(id);
        }
        let wanted = name.to_lowercase();
        let mut scored: Vec<(f64, &str)> = self
            .names
            .iter()
            .map(|candidate| {
                let score = strsim::jaro_winkler(&wanted, &candidate.to_lowercase());
                (score, candidate.as_str())
            })
            .filter(|&(score, _)| score >= 0.8)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        Err(SetupError::UnknownJob {
            name: name.to_owned(),
            close: scored
                .iter()
                .take(3)
                .map(|(_, n)| (*n).to_owned())
                .collect(),
        })
    }

    /// The job's kind.
    pub fn kind(&self, id: JobId) -> JobKind {
        self.kinds[id.index()]
    }

    /// How many tries the job gets.
    pub fn tries(&self, id: JobId) -> u32 {
        self.tries.get(id)
    }

    /// The least time between a failed try's end and the next try.
    pub fn retry_delay(&self, id: JobId) -> Duration {
        self.retry_delays.get(id)
    }

    /// The longest time one phase of the job may take, if limited.
    pub fn time_limit(&self, id: JobId) -> Option<Duration> {
        self.time_limits.get(&id).copied()
    }

    /// Whether any job of the plan has a time limit.
    pub fn has_time_limits(&self) -> bool {
        !self.time_limits.is_empty()
    }

    /// The job's concurrency group, as an index into [`group_names`](Self::group_names).
    pub fn group(&self, id: JobId) -> Option<usize> {
        self.job_groups.get(id).map(usize::from)
    }

    /// The names of the concurrency groups its jobs belong to.
    pub fn group_names(&self) -> &[String] {
        &self.group_names
    }

    /// Why the job fails without being tried, if it could not be described.
    pub fn broken(&self, id: JobId) -> Option<&str> {
        self.broken.get(&id).map(String::as_str)
    }

    /// The job's deps, in declaration order.
    pub fn deps(&self, id: JobId) -> &[JobId] {
        let i = id.index();
        &self.dep_list[self.dep_start[i] as usize..self.dep_start[i + 1] as usize]
    }

    /// The jobs that depend on this one, in the reference order.
    pub fn dependents(&self, id: JobId) -> &[JobId] {
        let i = id.index();
        &self.dependent_list[self.dependent_start[i] as usize..self.dependent_start[i + 1] as usize]
    }
}

/// The specs `root` reaches in the reference order (petgraph's walk from
/// the root), each spec's id in the plan, and the deps in that order with
/// those ids: the first part of [`Plan::build`].
struct Ordered {
    /// Per id, the spec's index in the discovered jobs.
    order: Vec<u32>,
    /// Per spec, its id (`u32::MAX`: not reached).
    old_to_new: Vec<u32>,
    dep_start: Vec<u32>,
    dep_list: Vec<JobId>,
}

impl Ordered {
    /// A dep after its dependent means a cycle, which is an error naming it.
    fn walk(found: &Discovered, root: usize) -> Result<Ordered, SetupError> {
        let view = found.deps_view();
        // petgraph's walk from the root gives the reference order, and on
        // a graph without cycles every dep comes before its dependents.
        let mut order = Vec::with_capacity(found.len());
        let mut dfs = DfsPostOrder::new(view, len_u32(root));
        while let Some(index) = dfs.next(view) {
            order.push(index);
        }
        drop(dfs);
        let mut old_to_new = vec![u32::MAX; found.len()];
        for (id, &old) in order.iter().enumerate() {
            old_to_new[old as usize] = len_u32(id);
        }
        // The deps in the reference order, with the ids of the plan.
        let mut plan_start = Vec::with_capacity(order.len() + 1);
        let mut plan_list = Vec::with_capacity(view.list.len());
        plan_start.push(0);
        let mut dep_after_dependent = false;
        for (id, &old) in order.iter().enumerate() {
            for &dep in view.deps(old) {
                let dep = old_to_new[dep as usize];
                dep_after_dependent |= dep as usize >= id;
                plan_list.push(JobId(dep));
            }
            plan_start.push(len_u32(plan_list.len()));
        }
        // A dep after its dependent means a cycle; specs the root does not
        // reach were not walked. Either way petgraph's toposort decides.
        if dep_after_dependent || order.len() < found.len() {
            let graph = petgraph_graph(view);
            if toposort(&graph, None).is_err() {
                return Err(SetupError::Cycle {
                    cycle: find_cycle(&graph, &found.names),
                });
            }
            assert!(!dep_after_dependent, "an order of a graph without cycles");
        }
        Ok(Ordered {
            order,
            old_to_new,
            dep_start: plan_start,
            dep_list: plan_list,
        })
    }
}

#[inline]
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("more than u32::MAX jobs or edges")
}

/// The `(index, value)` pairs of the jobs the plan keeps, with their ids.
fn renumbered<T>(
    values: Vec<(u32, T)>,
    new_id: impl Fn(u32) -> Option<JobId>,
) -> impl Iterator<Item = (JobId, T)> {
    values
        .into_iter()
        .filter_map(move |(old, value)| Some((new_id(old)?, value)))
}

/// The index of the group called `name` in `group_names`, adding it if
/// new; a group past the 65,536 a plan can number is an error naming it.
fn group_index(
    group_names: &mut Vec<String>,
    numbers: &mut HashMap<String, u16>,
    name: String,
) -> Result<u16, SetupError> {
    if let Some(&index) = numbers.get(&name) {
        return Ok(index);
    }
    let Ok(index) = u16::try_from(group_names.len()) else {
        return Err(SetupError::TooManyGroups { group: name });
    };
    numbers.insert(name.clone(), index);
    group_names.push(name);
    Ok(index)
}

/// An index of the names of the jobs `order` lists (by their place in
/// it), or the error naming the first job whose name an earlier one has.
fn unique_index(names: &[String], order: &[u32]) -> Result<NameIndex, SetupError> {
    let mut by_name = NameIndex::with_capacity(order.len());
    let name_of = |id: u32| names[order[id as usize] as usize].as_str();
    for (id, &old) in order.iter().enumerate() {
        if let Some(first) = by_name.find_or_insert(&names[old as usize], len_u32(id), name_of) {
            return Err(SetupError::DuplicateName {
                name: names[old as usize].clone(),
                first: format!("job spec {}", order[first as usize]),
                second: format!("job spec {old}"),
            });
        }
    }
    Ok(by_name)
}

/// The deps as a petgraph `Graph`, for its toposort and cycle search.
fn petgraph_graph(view: DepsView<'_>) -> DiGraph<(), ()> {
    let count = view.start.len() - 1;
    let mut graph = DiGraph::<(), ()>::with_capacity(count, view.list.len());
    for _ in 0..count {
        graph.add_node(());
    }
    for index in 0..len_u32(count) {
        for &dep in view.deps(index) {
            graph.add_edge(
                NodeIndex::new(index as usize),
                NodeIndex::new(dep as usize),
                (),
            );
        }
    }
    graph
}

/// Names every job of one cycle, starting from the cycle's job that was
/// discovered first: `[A, B, C, A]`. Only called when `toposort` found one.
fn find_cycle(graph: &DiGraph<(), ()>, names: &[String]) -> Vec<String> {
    let component = kosaraju_scc(graph)
        .into_iter()
        .filter(|scc| {
            scc.len() > 1 || graph.contains_edge(scc[0], scc[0]) // a self-dep
        })
        .min_by_key(|scc| scc.iter().min().copied())
        .expect("toposort reported a cycle");
    let start = *component.iter().min().expect("components are not empty");
    let in_component = |node: NodeIndex| component.contains(&node);
    let within = NodeFiltered::from_fn(graph, in_component);
    // The shortest way back to `start` from its first dep inside the cycle.
    let first_step = graph
        .neighbors_directed(start, Direction::Outgoing)
        .filter(|&next| in_component(next))
        .min()
        .expect("a node of a cycle has a successor in it");
    let (_, path) = astar(&within, first_step, |n| n == start, |_| 1, |_| 0)
        .expect("inside a strongly connected component every node reaches every other");
    std::iter::once(start)
        .chain(path)
        .map(|node| names[node.index()].clone())
        .collect()
}

/// Plans are shared between a run's threads.
const _: () = {
    const fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Plan>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_per_job_are_listed_only_once_one_differs() {
        let tries = PerJob::from_sparse(3, 6, [(JobId(1), 3), (JobId(3), 3)]);
        assert!(tries.each.is_empty());
        let tries = PerJob::from_sparse(3, 6, [(JobId(1), 3), (JobId(4), 5)]);
        let all: Vec<u32> = (0..6).map(|i| tries.get(JobId::from_index(i))).collect();
        assert_eq!(all, [3, 3, 3, 3, 5, 3]);
    }

    #[test]
    fn indexes_past_the_specs_are_errors_that_name_them() {
        let mut a = JobSpec::new("A");
        a.deps = vec![1, 5];
        let specs = || vec![a.clone(), JobSpec::new("B")];
        let error = Plan::new(specs(), 0, Defaults::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "spec 0 (A) has dep 5, but there are 2 specs"
        );
        let error = Plan::new(specs(), 2, Defaults::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the root is spec 2, but there are 2 specs"
        );
    }

    #[test]
    fn a_group_past_the_65536th_is_an_error_that_names_it() {
        let specs = |groups: usize| -> Vec<JobSpec> {
            let mut root = JobSpec::new("root");
            root.deps = (1..=groups).collect();
            let members = (0..groups).map(|i| JobSpec {
                group: Some(format!("g{i}")),
                ..JobSpec::new(format!("j{i}"))
            });
            std::iter::once(root).chain(members).collect()
        };
        let (plan, _) = Plan::new(specs(65_536), 0, Defaults::default()).unwrap();
        assert_eq!(plan.group_names().len(), 65_536);
        let error = Plan::new(specs(65_537), 0, Defaults::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "concurrency group \"g65536\" is one too many: a run has at most 65,536"
        );
    }

    #[test]
    fn reorder_puts_each_item_where_the_order_says() {
        let mut items = ["a", "b", "c", "d", "e"];
        reorder(&mut items, &[3, 0, 4, 1, 2]);
        assert_eq!(items, ["d", "a", "e", "b", "c"]);
    }

    fn specs(edges: &[(&str, &[&str])]) -> Vec<JobSpec> {
        let index = |name: &str| edges.iter().position(|(n, _)| *n == name).unwrap();
        edges
            .iter()
            .map(|(name, deps)| {
                let mut spec = JobSpec::new(*name);
                spec.deps = deps.iter().map(|d| index(d)).collect();
                spec
            })
            .collect()
    }

    #[test]
    fn cycle_error_lists_the_whole_cycle() {
        let graph = specs(&[
            ("Root", &["A"]),
            ("A", &["B"]),
            ("B", &["C"]),
            ("C", &["A"]),
        ]);
        let err = Plan::new(graph, 0, Defaults::default()).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: A -> B -> C -> A");
    }

    #[test]
    fn a_job_depending_on_itself_is_a_cycle() {
        let err =
            Plan::new(specs(&[("Selfish", &["Selfish"])]), 0, Defaults::default()).unwrap_err();
        assert_eq!(err.to_string(), "dependency cycle: Selfish -> Selfish");
    }

    #[test]
    fn zero_tries_names_the_job() {
        let mut graph = specs(&[("Root", &["Lazy"]), ("Lazy", &[])]);
        graph[1].tries = Some(0);
        let err = Plan::new(graph, 0, Defaults::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job \"Lazy\" has 0 tries; every job needs at least 1"
        );
        let zero_default = Defaults {
            tries: 0,
            ..Defaults::default()
        };
        let err = Plan::new(specs(&[("Root", &[])]), 0, zero_default).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the run's default has 0 tries; every job needs at least 1"
        );
    }

    #[test]
    fn ids_follow_post_order_and_dependents_are_indexed() {
        // D -> [B, C], B -> [A], C -> [A]
        let graph = specs(&[("D", &["B", "C"]), ("B", &["A"]), ("C", &["A"]), ("A", &[])]);
        let (plan, ids) = Plan::new(graph, 0, Defaults::default()).unwrap();
        let names: Vec<_> = plan.ids().map(|id| plan.name(id)).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
        let a = plan.find("A").unwrap();
        let dependents: Vec<_> = plan.dependents(a).iter().map(|&d| plan.name(d)).collect();
        assert_eq!(dependents, ["B", "C"]);
        assert_eq!(
            ids,
            [
                Some(plan.root()),
                Some(JobId(1)),
                Some(JobId(2)),
                Some(JobId(0))
            ]
        );
    }

    #[test]
    fn two_specs_with_one_name_are_an_error() {
        let graph = specs(&[("Root", &["A", "B"]), ("A", &[]), ("B", &[])]);
        let mut graph = graph;
        graph[2].name = "A".into();
        let err = Plan::new(graph, 0, Defaults::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "two different jobs are named \"A\": job spec 1 and job spec 2"
        );
    }

    #[test]
    fn unreachable_specs_are_left_out() {
        let graph = specs(&[("Root", &[]), ("Orphan", &[])]);
        let (plan, ids) = Plan::new(graph, 0, Defaults::default()).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!(ids[1], None);
    }
}
