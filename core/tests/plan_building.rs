//! Plan building against the plain way to do it with petgraph: every spec
//! a node of a `Graph`, `toposort` for cycles, `DfsPostOrder` from the root
//! for the reference order, then each job's name and tries checked in that
//! order. The plan walks the specs' deps in place; on any specs (cycles,
//! self-deps, repeated deps, unreachable specs, repeated names, zero
//! tries) it must give the same plan or the same error.

use std::collections::HashSet;
use std::time::Duration;

use dojobber::JobKind;
use dojobber::SetupError;
use dojobber::engine::{Defaults, JobId, JobSpec, Plan};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::DfsPostOrder;
use proptest::prelude::*;

/// The plan as plain lists: per job in the reference order its name, deps
/// (as ids), kind, tries, retry delay, time limit, group and broken
/// message; and per spec its id.
type Expected = (
    Vec<(
        String,
        Vec<usize>,
        JobKind,
        u32,
        Duration,
        Option<Duration>,
        Option<String>,
        Option<String>,
    )>,
    Vec<Option<usize>>,
);

/// What a plan must be, or the error it must give (a cycle only as a kind:
/// which cycle is named is `find_cycle`'s, the same code either way).
fn expected(specs: &[JobSpec], root: usize, defaults: Defaults) -> Result<Expected, String> {
    let mut graph = DiGraph::<(), ()>::new();
    for _ in specs {
        graph.add_node(());
    }
    for (index, spec) in specs.iter().enumerate() {
        for &dep in &spec.deps {
            graph.add_edge(NodeIndex::new(index), NodeIndex::new(dep), ());
        }
    }
    if toposort(&graph, None).is_err() {
        return Err("cycle".into());
    }
    let mut order = Vec::new();
    let mut dfs = DfsPostOrder::new(&graph, NodeIndex::new(root));
    while let Some(node) = dfs.next(&graph) {
        order.push(node.index());
    }
    let mut ids = vec![None; specs.len()];
    for (id, &old) in order.iter().enumerate() {
        ids[old] = Some(id);
    }
    let mut jobs = Vec::new();
    for (id, &old) in order.iter().enumerate() {
        let spec = &specs[old];
        if let Some(first) = order[..id].iter().find(|&&o| specs[o].name == spec.name) {
            return Err(SetupError::DuplicateName {
                name: spec.name.clone(),
                first: format!("job spec {first}"),
                second: format!("job spec {old}"),
            }
            .to_string());
        }
        let tries = spec.tries.unwrap_or(defaults.tries);
        if tries == 0 {
            return Err(SetupError::ZeroTries {
                job: format!("job {:?}", spec.name),
            }
            .to_string());
        }
        jobs.push((
            spec.name.clone(),
            spec.deps.iter().map(|&dep| ids[dep].unwrap()).collect(),
            spec.kind,
            tries,
            spec.retry_delay.unwrap_or(defaults.retry_delay),
            spec.time_limit,
            spec.group.clone(),
            spec.broken.clone(),
        ));
    }
    Ok((jobs, ids))
}

fn built(specs: Vec<JobSpec>, root: usize, defaults: Defaults) -> Result<Expected, String> {
    let (plan, ids) = Plan::new(specs, root, defaults).map_err(|err| match err {
        SetupError::Cycle { .. } => "cycle".to_string(),
        other => other.to_string(),
    })?;
    let jobs = plan
        .ids()
        .map(|id| {
            (
                plan.name(id).to_owned(),
                plan.deps(id).iter().map(|dep| dep.index()).collect(),
                plan.kind(id),
                plan.tries(id),
                plan.retry_delay(id),
                plan.time_limit(id),
                plan.group(id)
                    .map(|group| plan.group_names()[group].clone()),
                plan.broken(id).map(str::to_owned),
            )
        })
        .collect();
    for id in plan.ids() {
        assert_eq!(
            plan.find(plan.name(id)),
            Some(id),
            "every job is found by name"
        );
    }
    assert_eq!(plan.find("no such job"), None);
    let groups_used: HashSet<usize> = plan.ids().filter_map(|id| plan.group(id)).collect();
    let group_names: HashSet<&String> = plan.group_names().iter().collect();
    assert_eq!(
        (groups_used.len(), group_names.len()),
        (plan.group_names().len(), plan.group_names().len()),
        "each group named once, and only the groups of jobs the root reaches"
    );
    let ids = ids.into_iter().map(|id| id.map(JobId::index)).collect();
    Ok((jobs, ids))
}

fn specs() -> impl Strategy<Value = (Vec<JobSpec>, usize)> {
    (1usize..24).prop_flat_map(|count| {
        let spec = (
            0u8..30,
            prop::collection::vec(0..count, 0..4),
            prop::option::weighted(0.2, 0u32..3),
            prop::option::weighted(0.2, 0u64..3),
            prop::option::weighted(0.2, 1u64..3),
            prop::option::weighted(0.2, 0u8..3),
            prop::option::weighted(0.1, Just("broken".to_string())),
            prop::sample::select(vec![JobKind::Normal, JobKind::Dummy, JobKind::RunOnly]),
        );
        // Most specs have only later specs as deps, so most suites have no cycle.
        let later = prop::bool::weighted(0.9);
        (prop::collection::vec((spec, later), count), 0..count).prop_map(move |(specs, root)| {
            let specs = specs
                .into_iter()
                .enumerate()
                .map(|(index, (spec, later))| {
                    let (name, deps, tries, delay, limit, group, broken, kind) = spec;
                    let deps = deps
                        .into_iter()
                        .filter(|&dep| !later || dep > index)
                        .collect();
                    JobSpec {
                        name: format!("job {name}"),
                        kind,
                        tries,
                        retry_delay: delay.map(Duration::from_secs),
                        deps,
                        broken,
                        time_limit: limit.map(Duration::from_secs),
                        group: group.map(|g| format!("group {g}")),
                    }
                })
                .collect();
            (specs, root)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_plan_is_what_petgraphs_graph_gives((specs, root) in specs(), default_tries in 1u32..3) {
        let defaults = Defaults { tries: default_tries, ..Defaults::default() };
        let want = expected(&specs, root, defaults);
        prop_assert_eq!(built(specs, root, defaults), want);
    }
}

#[test]
fn a_cycle_the_root_does_not_reach_is_still_a_cycle() {
    let mut a = JobSpec::new("A");
    a.deps = vec![2];
    let mut b = JobSpec::new("B");
    b.deps = vec![1];
    let err = Plan::new(vec![JobSpec::new("Root"), a, b], 0, Defaults::default()).unwrap_err();
    assert_eq!(err.to_string(), "dependency cycle: A -> B -> A");
}

/// Specs the root does not reach take the petgraph path (their cycles are
/// still errors, above) but leave nothing in the plan: not their names,
/// groups, broken marks or time limits, and neither their zero tries nor a
/// name they share with a reached spec is an error.
#[test]
fn specs_the_root_does_not_reach_leave_nothing_behind() {
    let mut root = JobSpec::new("Root");
    root.deps = vec![1];
    let mut reached = JobSpec::new("Reached");
    reached.group = Some("apt".into());
    let unreached = JobSpec {
        tries: Some(0),
        group: Some("unreached group".into()),
        broken: Some("never described".into()),
        time_limit: Some(Duration::from_secs(1)),
        deps: vec![1, 3],
        ..JobSpec::new("Orphan")
    };
    let same_name = JobSpec::new("Reached");
    let specs = vec![root, reached, unreached, same_name];
    let (plan, ids) = Plan::new(specs, 0, Defaults::default()).unwrap();
    let names: Vec<&str> = plan.ids().map(|id| plan.name(id)).collect();
    assert_eq!(names, ["Reached", "Root"]);
    assert_eq!(
        ids,
        [Some(plan.root()), Some(JobId::from_index(0)), None, None]
    );
    assert_eq!(plan.group_names(), ["apt"]);
    assert_eq!(plan.find("Orphan"), None);
    assert!(
        plan.ids()
            .all(|id| plan.broken(id).is_none() && plan.time_limit(id).is_none())
    );
    assert_eq!(plan.dependents(JobId::from_index(0)), [plan.root()]);
}
