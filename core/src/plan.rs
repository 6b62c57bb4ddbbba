//! The job graph as plain data: names, kinds, tries, delays and dependency
//! edges, numbered in the reference order. The [`Plan`] knows nothing of
//! job values or user code; it is what the machine schedules from.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Duration;

use hashbrown::HashTable;

use petgraph::Direction;
use petgraph::algo::{astar, kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{DfsPostOrder, NodeFiltered};

use crate::job::JobKind;

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
    /// The run's configuration makes no sense, e.g. zero workers.
    #[error("{0}")]
    BadConfig(String),
    /// The root job's `name()` panicked, so there is nothing to name the run by.
    #[error("the root job's name() panicked: {message}")]
    RootNamePanicked {
        /// The panic message.
        message: String,
    },
}

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
    by_name: NameIndex,
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
    /// Empty while every job so far has the default.
    each: Vec<T>,
    len: usize,
}

impl<T: Copy + PartialEq> PerJob<T> {
    fn new(default: T) -> Self {
        PerJob {
            default,
            each: Vec::new(),
            len: 0,
        }
    }

    /// Adds the next job's value.
    fn push(&mut self, value: T) {
        if self.each.is_empty() && value != self.default {
            self.each = vec![self.default; self.len];
        }
        if !self.each.is_empty() || value != self.default {
            self.each.push(value);
        }
        self.len += 1;
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

    /// Changes every index, for when the list is reordered; names and so
    /// hashes stay.
    pub(crate) fn renumber(&mut self, new_index: impl Fn(u32) -> u32) {
        for index in self.table.iter_mut() {
            *index = new_index(*index);
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

impl Plan {
    /// Checks and numbers a discovered graph.
    ///
    /// Arguments: `specs`, the jobs (deps as indexes into `specs`); `root`,
    /// the index of the root job, from which only reachable jobs are kept;
    /// `defaults`, for jobs that do not choose tries or delay.
    ///
    /// Returns the plan and, per spec, its [`JobId`] (`None` when the spec
    /// is not reachable from the root). Fails on a cycle (naming every job
    /// of one) or on zero tries.
    ///
    /// Complexity: O(jobs + edges); a cycle costs another O(jobs + edges).
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
        Self::build(specs, root, defaults, None)
    }

    /// [`Plan::new`] for specs whose names are known to be unique, with the
    /// index of them by spec number that discovery built, rooted at spec 0.
    /// Saves hashing every name a second time.
    pub(crate) fn from_discovered(
        specs: Vec<JobSpec>,
        names: NameIndex,
        defaults: Defaults,
    ) -> Result<(Plan, Vec<Option<JobId>>), SetupError> {
        Self::build(specs, 0, defaults, Some(names))
    }

    fn build(
        specs: Vec<JobSpec>,
        root: usize,
        defaults: Defaults,
        unique_names: Option<NameIndex>,
    ) -> Result<(Plan, Vec<Option<JobId>>), SetupError> {
        assert!(root < specs.len(), "root index out of range");
        if defaults.tries == 0 {
            return Err(SetupError::ZeroTries {
                job: "the run's default".into(),
            });
        }
        let edges = specs.iter().map(|spec| spec.deps.len()).sum();
        let mut graph = DiGraph::<(), ()>::with_capacity(specs.len(), edges);
        for _ in &specs {
            graph.add_node(());
        }
        for (index, spec) in specs.iter().enumerate() {
            for &dep in &spec.deps {
                graph.add_edge(NodeIndex::new(index), NodeIndex::new(dep), ());
            }
        }
        if toposort(&graph, None).is_err() {
            return Err(SetupError::Cycle {
                cycle: find_cycle(&graph, &specs),
            });
        }

        // petgraph yields a node's neighbours most recent edge first and
        // DfsPostOrder stacks them, so the first declared dep is visited first.
        let mut old_to_new = vec![None; specs.len()];
        let mut order = Vec::with_capacity(specs.len());
        let mut dfs = DfsPostOrder::new(&graph, NodeIndex::new(root));
        while let Some(node) = dfs.next(&graph) {
            old_to_new[node.index()] = Some(JobId::from_index(order.len()));
            order.push(node.index());
        }

        let mut specs = specs;
        let mut plan = Plan {
            names: Vec::with_capacity(order.len()),
            kinds: Vec::with_capacity(order.len()),
            tries: PerJob::new(defaults.tries),
            retry_delays: PerJob::new(defaults.retry_delay),
            broken: HashMap::new(),
            time_limits: HashMap::new(),
            group_names: Vec::new(),
            job_groups: PerJob::new(None),
            by_name: NameIndex::with_capacity(if unique_names.is_some() {
                0
            } else {
                order.len()
            }),
            dep_start: Vec::with_capacity(order.len() + 1),
            dep_list: Vec::new(),
            dependent_start: Vec::new(),
            dependent_list: Vec::new(),
        };
        plan.dep_start.push(0);
        for &old in &order {
            let spec = &mut specs[old];
            let id = JobId::from_index(plan.names.len());
            let name = std::mem::take(&mut spec.name);
            let names = &plan.names;
            let duplicate = match unique_names {
                Some(_) => None,
                None => plan.by_name.find(&name, |i| &names[i as usize]),
            };
            if let Some(first) = duplicate {
                return Err(SetupError::DuplicateName {
                    name,
                    first: format!("job spec {}", order[first as usize]),
                    second: format!("job spec {old}"),
                });
            }
            let tries = spec.tries.unwrap_or(defaults.tries);
            if tries == 0 {
                return Err(SetupError::ZeroTries {
                    job: format!("job {name:?}"),
                });
            }
            plan.dep_list.extend(
                spec.deps
                    .iter()
                    .map(|&dep| old_to_new[dep].expect("deps of reachable jobs are reachable")),
            );
            plan.dep_start.push(len_u32(plan.dep_list.len()));
            if let Some(message) = spec.broken.take() {
                plan.broken.insert(id, message);
            }
            if let Some(limit) = spec.time_limit {
                plan.time_limits.insert(id, limit);
            }
            let group = spec.group.take().map(|name| plan.group_index(name));
            plan.job_groups.push(group);
            plan.kinds.push(spec.kind);
            plan.tries.push(tries);
            plan.retry_delays
                .push(spec.retry_delay.unwrap_or(defaults.retry_delay));
            plan.names.push(name);
            if unique_names.is_none() {
                let names = &plan.names;
                plan.by_name.insert_new(id.0, |i| &names[i as usize]);
            }
        }
        if let Some(mut by_spec) = unique_names {
            by_spec.renumber(|spec| old_to_new[spec as usize].expect("specs are reachable").0);
            plan.by_name = by_spec;
        }
        plan.index_dependents();
        Ok((plan, old_to_new))
    }

    /// The index of the group called `name`, adding it if new.
    fn group_index(&mut self, name: String) -> u16 {
        let index = match self.group_names.iter().position(|known| *known == name) {
            Some(index) => index,
            None => {
                self.group_names.push(name);
                self.group_names.len() - 1
            }
        };
        u16::try_from(index).expect("fewer than 65,536 concurrency groups")
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
        // Not the names: they may have been taken for a report.
        self.kinds.len()
    }

    /// Whether the plan holds no job (never true for a discovered plan).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
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

    /// The job called `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<JobId> {
        self.by_name
            .find(name, |i| &self.names[i as usize])
            .map(JobId)
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

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).expect("more than u32::MAX jobs or edges")
}

/// Names every job of one cycle, starting from the cycle's job that was
/// discovered first: `[A, B, C, A]`. Only called when `toposort` found one.
fn find_cycle(graph: &DiGraph<(), ()>, specs: &[JobSpec]) -> Vec<String> {
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
        .map(|node| specs[node.index()].name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_per_job_are_listed_only_once_one_differs() {
        let mut tries = PerJob::new(3);
        for _ in 0..4 {
            tries.push(3);
        }
        assert!(tries.each.is_empty());
        tries.push(5);
        tries.push(3);
        let all: Vec<u32> = (0..6).map(|i| tries.get(JobId::from_index(i))).collect();
        assert_eq!(all, [3, 3, 3, 3, 5, 3]);
        let mut first = PerJob::new(None);
        first.push(Some(1u16));
        first.push(None);
        assert_eq!((first.get(JobId(0)), first.get(JobId(1))), (Some(1), None));
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
