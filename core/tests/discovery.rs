//! Discovery against a plain model of it. Random suites are written as a
//! user writes them (job structs whose `name()` and `deps()` return
//! `dep(...)`s, some setting their kind, tries, delay, time limit or
//! group), with one name reached by several paths, values of one name
//! that list different deps, a second type claiming a name, cycles, and
//! jobs whose `name()`, `tries()`, `deps()` or `Drop` panic. What
//! `JobGraph::discover`, a `Runner` and `Runner::only` make of them must
//! be what a breadth-first walk by name with a `HashMap` says: the same
//! jobs and deps in the reference order (depth-first post-order from the
//! root), the same broken jobs and errors, `deps()` called once per job
//! and discovery on the value found first, a run whose checks pass
//! failing only the broken jobs and blocking what needs them, and every
//! job value dropped once, with no panic escaping.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dojobber::engine::{Defaults, JobGraph, Plan};
use dojobber::{Context, Job, JobKind, JobRef, JobResult, Report, Runner, SetupError, Status, dep};
use proptest::prelude::*;

/// One name of a suite: what every value with that name says of itself.
#[derive(Clone, Debug)]
struct NameSpec {
    kind: JobKind,
    tries: Option<u32>,
    retry_delay: Option<Duration>,
    time_limit: Option<Duration>,
    group: Option<String>,
    /// The deps a value lists, per variant: values of one name and type
    /// may list different deps, and the one found first is used.
    variants: Vec<Vec<DepRef>>,
    name_panics: bool,
    /// `tries()` panics, which is asked before `deps()`.
    tries_panic: bool,
    deps_panic: bool,
    drop_panics: bool,
}

/// A dep as a job lists it: which name, which variant of its deps, and
/// whether the value is of the impostor type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DepRef {
    name: usize,
    variant: usize,
    impostor: bool,
}

const ROOT: DepRef = DepRef {
    name: 0,
    variant: 0,
    impostor: false,
};

/// The suite's names and a log of every job value made from it.
struct Suite {
    names: Vec<NameSpec>,
    values: Mutex<Vec<ValueLog>>,
}

/// One job value: what it is, and how often `deps()` and `Drop` ran on it.
#[derive(Debug)]
struct ValueLog {
    made_as: DepRef,
    deps_calls: u32,
    drops: u32,
}

impl Suite {
    fn new(names: Vec<NameSpec>) -> Arc<Suite> {
        Arc::new(Suite {
            names,
            values: Mutex::new(Vec::new()),
        })
    }

    /// A new job value for `made_as`, logged.
    fn make(self: &Arc<Suite>, made_as: DepRef) -> JobRef {
        let mut values = self.values.lock().unwrap();
        values.push(ValueLog {
            made_as,
            deps_calls: 0,
            drops: 0,
        });
        let value = values.len() - 1;
        let suite = Arc::clone(self);
        match made_as.impostor {
            false => dep(Node::<false> {
                suite,
                made_as,
                value,
            }),
            true => dep(Node::<true> {
                suite,
                made_as,
                value,
            }),
        }
    }
}

/// A job value of the suite. `Node<true>` is the impostor: another type
/// that claims the same names.
struct Node<const IMPOSTOR: bool> {
    suite: Arc<Suite>,
    made_as: DepRef,
    /// Its index in the suite's log.
    value: usize,
}

impl<const IMPOSTOR: bool> Node<IMPOSTOR> {
    fn spec(&self) -> &NameSpec {
        &self.suite.names[self.made_as.name]
    }
}

impl<const IMPOSTOR: bool> Job for Node<IMPOSTOR> {
    fn name(&self) -> String {
        if self.spec().name_panics {
            panic!("name of job {} exploded", self.made_as.name);
        }
        job_name(self.made_as.name)
    }

    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.suite.values.lock().unwrap()[self.value].deps_calls += 1;
        if self.spec().deps_panic {
            // Before any value is made: a value dropped while this
            // unwinds must not panic again.
            panic!("deps of job {} exploded", self.made_as.name);
        }
        self.spec().variants[self.made_as.variant]
            .iter()
            .map(|&dep| self.suite.make(dep))
            .collect()
    }

    fn kind(&self) -> JobKind {
        self.spec().kind
    }

    fn tries(&self) -> Option<u32> {
        if self.spec().tries_panic {
            panic!("tries of job {} exploded", self.made_as.name);
        }
        self.spec().tries
    }

    fn retry_delay(&self) -> Option<Duration> {
        self.spec().retry_delay
    }

    fn time_limit(&self) -> Option<Duration> {
        self.spec().time_limit
    }

    fn concurrency_group(&self) -> Option<String> {
        self.spec().group.clone()
    }

    fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
        Ok(())
    }
}

impl<const IMPOSTOR: bool> Drop for Node<IMPOSTOR> {
    fn drop(&mut self) {
        self.suite.values.lock().unwrap()[self.value].drops += 1;
        if self.spec().drop_panics {
            panic!("drop of job {} exploded", self.made_as.name);
        }
    }
}

fn job_name(name: usize) -> String {
    format!("job {name}")
}

fn type_name(impostor: bool) -> &'static str {
    match impostor {
        false => std::any::type_name::<Node<false>>(),
        true => std::any::type_name::<Node<true>>(),
    }
}

/// What the model found by walking the suite breadth first by name.
struct Found {
    /// Names in the order they were found; the root first.
    order: Vec<usize>,
    /// Per name, the value found first, which the job is.
    used: HashMap<usize, DepRef>,
    /// Per name, its deps by name, in declaration order.
    deps: HashMap<usize, Vec<usize>>,
    /// Per broken name, its failure: its `deps()` panic, or the panic of
    /// its first dep whose `name()` panics, with that dep's place and type.
    broken: HashMap<usize, String>,
    /// Whose `deps()` panicked: it could not describe itself either.
    undescribed: HashSet<usize>,
}

/// One job of the expected plan, in the reference order.
#[derive(Debug, PartialEq)]
struct PlannedJob {
    name: String,
    deps: Vec<String>,
    kind: JobKind,
    tries: u32,
    retry_delay: Duration,
    time_limit: Option<Duration>,
    group: Option<String>,
    broken: Option<String>,
}

/// The model's answer: what discovery must give.
enum Expected {
    Plan(Vec<PlannedJob>),
    /// A cycle: the first job found that is on one at its ends, each
    /// job a dep of the one before it (`deps`: every job's, by name).
    Cycle {
        first: String,
        deps: HashMap<String, Vec<String>>,
    },
    Error(SetupError),
}

/// The model's walk from one root value: whose `deps()` ran (even when
/// the walk ends in an error), the names found and the value used for
/// each, and the answer.
struct Walk {
    called: Vec<DepRef>,
    order: Vec<usize>,
    used: HashMap<usize, DepRef>,
    expected: Expected,
}

/// Walks the suite from `root` as discovery documents it.
fn model(names: &[NameSpec], root: DepRef, defaults: Defaults) -> Walk {
    if names[root.name].name_panics {
        let message = format!("panicked: name of job {} exploded", root.name);
        return Walk {
            called: Vec::new(),
            order: Vec::new(),
            used: HashMap::new(),
            expected: Expected::Error(SetupError::RootNamePanicked { message }),
        };
    }
    let mut found = Found {
        order: vec![root.name],
        used: HashMap::from([(root.name, root)]),
        deps: HashMap::new(),
        broken: HashMap::new(),
        undescribed: HashSet::new(),
    };
    let mut called = Vec::new();
    let mut next = 0;
    while next < found.order.len() {
        let job = found.order[next];
        next += 1;
        let value = found.used[&job];
        if names[job].tries_panic {
            let message = format!("panicked: tries of job {job} exploded");
            found.broken.insert(job, message);
            found.undescribed.insert(job);
            found.deps.insert(job, Vec::new());
            continue;
        }
        called.push(value);
        if names[job].deps_panic {
            let message = format!("panicked: deps of job {job} exploded");
            found.broken.insert(job, message);
            found.undescribed.insert(job);
            found.deps.insert(job, Vec::new());
            continue;
        }
        let mut deps = Vec::new();
        for (position, &dep) in names[job].variants[value.variant].iter().enumerate() {
            if names[dep.name].name_panics {
                let message = format!(
                    "deps()[{position}] ({}): name() panicked: name of job {} exploded",
                    type_name(dep.impostor),
                    dep.name
                );
                found.broken.entry(job).or_insert(message);
                continue;
            }
            match found.used.get(&dep.name) {
                Some(known) if known.impostor != dep.impostor => {
                    let error = SetupError::DuplicateName {
                        name: job_name(dep.name),
                        first: type_name(known.impostor).to_owned(),
                        second: type_name(dep.impostor).to_owned(),
                    };
                    return Walk {
                        called,
                        order: found.order,
                        used: found.used,
                        expected: Expected::Error(error),
                    };
                }
                Some(_) => {}
                None => {
                    found.used.insert(dep.name, dep);
                    found.order.push(dep.name);
                }
            }
            deps.push(dep.name);
        }
        found.deps.insert(job, deps);
    }
    let expected = plan_of(names, &found, root.name, defaults);
    Walk {
        called,
        order: found.order,
        used: found.used,
        expected,
    }
}

/// The plan of what the walk found, or why there is none.
fn plan_of(names: &[NameSpec], found: &Found, root: usize, defaults: Defaults) -> Expected {
    if let Some(&first) = found.order.iter().find(|&&job| reaches(found, job, job)) {
        let deps = found
            .deps
            .iter()
            .map(|(&job, deps)| {
                (
                    job_name(job),
                    deps.iter().map(|&dep| job_name(dep)).collect(),
                )
            })
            .collect();
        return Expected::Cycle {
            first: job_name(first),
            deps,
        };
    }
    let order = post_order(found, root);
    let described = |job: &usize| !found.undescribed.contains(job);
    if let Some(&lazy) = order
        .iter()
        .filter(|job| described(job))
        .find(|&&job| names[job].tries == Some(0))
    {
        return Expected::Error(SetupError::ZeroTries {
            job: format!("job {:?}", job_name(lazy)),
        });
    }
    let jobs = order
        .iter()
        .map(|job| {
            let deps = found.deps[job].iter().map(|&dep| job_name(dep)).collect();
            let spec = &names[*job];
            match described(job) {
                true => PlannedJob {
                    name: job_name(*job),
                    deps,
                    kind: spec.kind,
                    tries: spec.tries.unwrap_or(defaults.tries),
                    retry_delay: spec.retry_delay.unwrap_or(defaults.retry_delay),
                    time_limit: spec.time_limit,
                    group: spec.group.clone(),
                    broken: found.broken.get(job).cloned(),
                },
                false => PlannedJob {
                    name: job_name(*job),
                    deps,
                    kind: JobKind::Normal,
                    tries: defaults.tries,
                    retry_delay: defaults.retry_delay,
                    time_limit: None,
                    group: None,
                    broken: found.broken.get(job).cloned(),
                },
            }
        })
        .collect();
    Expected::Plan(jobs)
}

/// Whether `to` is reached from `from` by at least one dep.
fn reaches(found: &Found, from: usize, to: usize) -> bool {
    let mut seen = HashSet::new();
    let mut stack = found.deps[&from].clone();
    while let Some(job) = stack.pop() {
        if job == to {
            return true;
        }
        if seen.insert(job) {
            stack.extend(&found.deps[&job]);
        }
    }
    false
}

/// The reference order: depth-first post-order from `root`, deps in
/// declaration order, each job at its first visit (the graph has no cycle).
fn post_order(found: &Found, root: usize) -> Vec<usize> {
    fn visit(found: &Found, job: usize, seen: &mut HashSet<usize>, order: &mut Vec<usize>) {
        if !seen.insert(job) {
            return;
        }
        for &dep in &found.deps[&job] {
            visit(found, dep, seen, order);
        }
        order.push(job);
    }
    let mut order = Vec::new();
    visit(found, root, &mut HashSet::new(), &mut order);
    order
}

/// The plan as the model's list.
fn planned(plan: &Plan) -> Vec<PlannedJob> {
    plan.ids()
        .map(|id| PlannedJob {
            name: plan.name(id).to_owned(),
            deps: plan
                .deps(id)
                .iter()
                .map(|&dep| plan.name(dep).to_owned())
                .collect(),
            kind: plan.kind(id),
            tries: plan.tries(id),
            retry_delay: plan.retry_delay(id),
            time_limit: plan.time_limit(id),
            group: plan
                .group(id)
                .map(|group| plan.group_names()[group].clone()),
            broken: plan.broken(id).map(str::to_owned),
        })
        .collect()
}

/// Holds a discovery's result (plan or error) to the model's answer.
fn check_result(
    plan: Result<&Plan, &SetupError>,
    expected: &Expected,
) -> Result<(), TestCaseError> {
    match (plan, expected) {
        (Ok(plan), Expected::Plan(jobs)) => {
            prop_assert_eq!(&planned(plan), jobs);
            for id in plan.ids() {
                prop_assert_eq!(plan.find(plan.name(id)), Some(id));
            }
        }
        (Err(SetupError::Cycle { cycle }), Expected::Cycle { first, deps }) => {
            prop_assert!(cycle.len() >= 2, "{:?}", cycle);
            prop_assert_eq!(
                &cycle[0],
                first,
                "the cycle starts at the first job found on one"
            );
            prop_assert_eq!(cycle.first(), cycle.last());
            let inner: HashSet<&String> = cycle[1..].iter().collect();
            prop_assert_eq!(inner.len(), cycle.len() - 1, "no job twice in {:?}", cycle);
            for link in cycle.windows(2) {
                prop_assert!(
                    deps[&link[0]].contains(&link[1]),
                    "{:?} is not a cycle",
                    cycle
                );
            }
        }
        (Err(error), Expected::Error(want)) => prop_assert_eq!(error, want),
        (got, _) => prop_assert!(false, "discovery gave {:?}", got.map(Plan::len)),
    }
    Ok(())
}

/// `deps()` ran once on each value the model's walks used, once per
/// walk, and on no other; every value made was dropped once.
fn check_values(suite: &Suite, called: &[DepRef]) -> Result<(), TestCaseError> {
    let values = suite.values.lock().unwrap();
    let mut got: Vec<DepRef> = Vec::new();
    for value in values.iter() {
        prop_assert_eq!(value.drops, 1, "{:?} dropped once", value);
        got.extend((0..value.deps_calls).map(|_| value.made_as));
    }
    let key = |dep: &DepRef| (dep.name, dep.variant, dep.impostor);
    let mut want = called.to_vec();
    got.sort_by_key(key);
    want.sort_by_key(key);
    prop_assert_eq!(got, want, "deps() ran on the first value of each name");
    Ok(())
}

/// A run whose checks all pass: a broken job fails untried with its
/// broken mark, the jobs a failure reaches are blocked by a dep that did
/// not pass, and every other job passes (a run-only job, with no check,
/// is fixed). Jobs and their deps are the plan's, in its order.
fn check_report(plan: &Plan, report: &Report) -> Result<(), TestCaseError> {
    prop_assert_eq!(report.jobs().len(), plan.len());
    for (id, job) in plan.ids().zip(report.jobs()) {
        prop_assert_eq!(job.name(), plan.name(id));
        let plan_deps: Vec<&str> = plan.deps(id).iter().map(|&dep| plan.name(dep)).collect();
        prop_assert_eq!(job.deps().collect::<Vec<_>>(), plan_deps);
        let not_passed: Vec<&str> = job
            .deps()
            .filter(|&dep| !report.job(dep).unwrap().status().is_success())
            .collect();
        if !not_passed.is_empty() {
            prop_assert_eq!(job.status(), Status::Blocked, "{}", job.name());
            let by = job.blocked_by().unwrap_or_default();
            prop_assert!(not_passed.contains(&by), "{} blocked by {}", job.name(), by);
        } else if let Some(message) = plan.broken(id) {
            prop_assert_eq!(
                (job.status(), job.tries()),
                (Status::Failed, 0),
                "{}",
                job.name()
            );
            let error = job.last_error().map(|failure| failure.message.as_str());
            prop_assert_eq!(error, Some(message), "{}", job.name());
        } else {
            let status = match plan.kind(id) {
                JobKind::RunOnly => Status::Fixed,
                JobKind::Normal | JobKind::Dummy => Status::Passed,
            };
            prop_assert_eq!(job.status(), status, "{}", job.name());
        }
    }
    Ok(())
}

/// `f`, with a panic that escapes it as a test failure.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| TestCaseError::fail(format!("a panic escaped {what}")))
}

fn suites() -> impl Strategy<Value = Vec<NameSpec>> {
    (1usize..20).prop_flat_map(|count| {
        // Most deps are to later names, so most suites have no cycle.
        let dep = (
            0..count,
            0usize..2,
            prop::bool::weighted(0.03),
            prop::bool::weighted(0.97),
        );
        let name = (
            prop::sample::select(vec![JobKind::Normal, JobKind::Dummy, JobKind::RunOnly]),
            prop::option::weighted(0.2, prop_oneof![9 => 1u32..4, 1 => Just(0)]),
            prop::option::weighted(0.2, 0u64..3),
            prop::option::weighted(0.2, 1u64..3),
            prop::option::weighted(0.2, 0u8..3),
            prop::collection::vec(prop::collection::vec(dep, 1..5), 1..=2),
            prop::bool::weighted(0.03),
            prop::bool::weighted(0.02),
            prop::bool::weighted(0.04),
            prop::bool::weighted(0.08),
        );
        prop::collection::vec(name, count).prop_map(|names| {
            let variant_counts: Vec<usize> = names.iter().map(|name| name.5.len()).collect();
            names
                .into_iter()
                .enumerate()
                .map(|(index, name)| {
                    let (
                        kind,
                        tries,
                        delay,
                        limit,
                        group,
                        variants,
                        name_p,
                        tries_p,
                        deps_p,
                        drop_p,
                    ) = name;
                    let variants = variants
                        .into_iter()
                        .map(|deps| {
                            deps.into_iter()
                                .filter(|&(dep, _, _, later)| !later || dep > index)
                                .map(|(dep, variant, impostor, _)| DepRef {
                                    name: dep,
                                    variant: variant % variant_counts[dep],
                                    impostor,
                                })
                                .collect()
                        })
                        .collect();
                    NameSpec {
                        kind,
                        tries,
                        retry_delay: delay.map(Duration::from_secs),
                        time_limit: limit.map(Duration::from_secs),
                        group: group.map(|g| format!("group {g}")),
                        variants,
                        name_panics: name_p,
                        tries_panic: tries_p,
                        deps_panic: deps_p,
                        drop_panics: drop_p,
                    }
                })
                .collect()
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn discovery_is_a_walk_by_name(
        names in suites(),
        default_tries in 1u32..3,
        workers in 1usize..4,
        only in prop::option::weighted(0.3, any::<prop::sample::Index>()),
    ) {
        let defaults = Defaults { tries: default_tries, ..Defaults::default() };
        let walk = model(&names, ROOT, defaults);

        let suite = Suite::new(names.clone());
        let root = suite.make(ROOT);
        let discovered = no_panic("discovery", || JobGraph::discover(root, &(), defaults))?;
        check_result(discovered.as_ref().map(JobGraph::plan), &walk.expected)?;
        no_panic("dropping the graph", || drop(discovered))?;
        check_values(&suite, &walk.called)?;

        // A run discovers the same, runs it, and leaves nothing behind.
        let suite = Suite::new(names.clone());
        let root = suite.make(ROOT);
        let runner = Runner::from_ref(root, ()).tries(default_tries).workers(workers);
        let ran = no_panic("a run", || {
            runner.run().map(|finished| (finished.plan().clone(), finished.into_report()))
        })?;
        check_result(ran.as_ref().map(|(plan, _)| plan), &walk.expected)?;
        if let Ok((plan, report)) = &ran {
            check_report(plan, report)?;
        }
        check_values(&suite, &walk.called)?;

        // `only` rediscovers from the value the graph holds for the job,
        // which may list other deps than the first walk's values of them.
        let (Some(only), Expected::Plan(_)) = (only, &walk.expected) else {
            return Ok(());
        };
        let job = walk.order[only.index(walk.order.len())];
        let sub_walk = model(&names, walk.used[&job], defaults);
        let suite = Suite::new(names);
        let runner = Runner::from_ref(suite.make(ROOT), ()).tries(default_tries);
        let ran = no_panic("a run of one job", || {
            let runner = runner.only(&job_name(job)).expect("the job was found");
            runner.run().map(|finished| (finished.plan().clone(), finished.into_report()))
        })?;
        check_result(ran.as_ref().map(|(plan, _)| plan), &sub_walk.expected)?;
        if let Ok((plan, report)) = &ran {
            check_report(plan, report)?;
        }
        let called = [walk.called, sub_walk.called].concat();
        check_values(&suite, &called)?;
    }
}

/// The root of a suite, whose `name()` panics if `name_panics`, whose deps
/// are a cycle if `cycle`, and whose `Drop` panics.
fn exploding_root(name_panics: bool, cycle: bool) -> (Arc<Suite>, JobRef) {
    let root = NameSpec {
        kind: JobKind::Normal,
        tries: None,
        retry_delay: None,
        time_limit: None,
        group: None,
        variants: vec![if cycle { vec![ROOT] } else { Vec::new() }],
        name_panics,
        tries_panic: false,
        deps_panic: false,
        drop_panics: true,
    };
    let suite = Suite::new(vec![root]);
    let root = suite.make(ROOT);
    (suite, root)
}

#[test]
fn discovery_catches_the_drop_of_a_root_whose_name_panics() {
    let (suite, root) = exploding_root(true, false);
    let discovered = catch_unwind(AssertUnwindSafe(|| {
        JobGraph::discover(root, &(), Defaults::default()).err()
    }));
    let error = discovered.expect("no panic escapes discovery");
    assert_eq!(
        error.unwrap().to_string(),
        "the root job's name() panicked: panicked: name of job 0 exploded"
    );
    assert_eq!(suite.values.lock().unwrap()[0].drops, 1);
}

/// A panic's payload is user code's value too.
struct PayloadThatPanicsOnDrop;

impl Drop for PayloadThatPanicsOnDrop {
    fn drop(&mut self) {
        panic!("the payload exploded");
    }
}

#[test]
fn discovery_catches_the_drop_of_a_panics_payload() {
    struct Root;
    impl Job for Root {
        fn deps(&self, _: &()) -> Vec<JobRef> {
            std::panic::panic_any(PayloadThatPanicsOnDrop);
        }
    }
    let discovered = catch_unwind(|| JobGraph::discover(dep(Root), &(), Defaults::default()));
    let graph = discovered.expect("no panic escapes discovery").unwrap();
    let plan = graph.plan();
    assert_eq!(
        plan.broken(plan.root()),
        Some("panicked: (a payload that is not a string)")
    );
}

#[test]
fn a_runner_catches_its_roots_drop_on_a_setup_error() {
    let refusals: [fn(Runner<()>) -> Option<SetupError>; 4] = [
        |runner| runner.run().err(),
        |runner| runner.workers(0).run().err(),
        |runner| runner.group_limit("g", 0).into_session().err(),
        |runner| runner.only("no such job").err(),
    ];
    for (case, refuse) in refusals.into_iter().enumerate() {
        for name_panics in [false, true] {
            let (suite, root) = exploding_root(name_panics, !name_panics);
            let ran = catch_unwind(AssertUnwindSafe(|| refuse(Runner::from_ref(root, ()))));
            let error = ran.expect("no panic escapes a refused run");
            let refused_by_config = matches!(case, 1 | 2);
            assert!(
                match error {
                    Some(SetupError::ZeroWorkers | SetupError::ZeroGroupLimit { .. }) =>
                        refused_by_config,
                    Some(SetupError::Cycle { .. } | SetupError::RootNamePanicked { .. }) => {
                        !refused_by_config
                    }
                    _ => false,
                },
                "case {case}: {error:?}"
            );
            assert!(
                suite
                    .values
                    .lock()
                    .unwrap()
                    .iter()
                    .all(|value| value.drops == 1),
                "case {case}: every value is dropped once"
            );
        }
    }
}

#[test]
fn a_dep_whose_name_panics_is_told_by_its_place_and_type() {
    struct Calm;
    impl Job for Calm {
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            Ok(())
        }
    }
    struct Nameless(&'static str);
    impl Job for Nameless {
        fn name(&self) -> String {
            panic!("{} has no name", self.0)
        }
    }
    struct Root;
    impl Job for Root {
        fn deps(&self, _: &()) -> Vec<JobRef> {
            vec![dep(Calm), dep(Nameless("first")), dep(Nameless("second"))]
        }
    }
    let report = Runner::new(Root, ()).run().unwrap().into_report();
    let root = report.job("Root").unwrap();
    assert_eq!((root.status(), root.tries()), (Status::Failed, 0));
    assert_eq!(
        root.last_error().unwrap().message,
        format!(
            "deps()[1] ({}): name() panicked: first has no name",
            std::any::type_name::<Nameless>()
        )
    );
    assert_eq!(root.deps().collect::<Vec<_>>(), ["Calm"]);
    assert_eq!(report.job("Calm").unwrap().status(), Status::Passed);
}

#[test]
fn a_duplicate_name_drops_the_deps_left_one_by_one() {
    struct Same;
    impl Job for Same {
        fn name(&self) -> String {
            "Same".into()
        }
    }
    struct Other;
    impl Job for Other {
        fn name(&self) -> String {
            "Same".into()
        }
    }
    struct Explodes(&'static str, Arc<Mutex<Vec<&'static str>>>);
    impl Job for Explodes {
        fn name(&self) -> String {
            self.0.into()
        }
    }
    impl Drop for Explodes {
        fn drop(&mut self) {
            self.1.lock().unwrap().push(self.0);
            panic!("{} exploded", self.0);
        }
    }
    struct Root(Arc<Mutex<Vec<&'static str>>>);
    impl Job for Root {
        fn deps(&self, _: &()) -> Vec<JobRef> {
            vec![
                dep(Same),
                dep(Other),
                dep(Explodes("first", Arc::clone(&self.0))),
                dep(Explodes("second", Arc::clone(&self.0))),
            ]
        }
    }
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let root = dep(Root(Arc::clone(&dropped)));
    let discovered = catch_unwind(AssertUnwindSafe(|| {
        JobGraph::discover(root, &(), Defaults::default()).err()
    }));
    let error = discovered.expect("no panic escapes discovery");
    assert!(
        matches!(error, Some(SetupError::DuplicateName { .. })),
        "{error:?}"
    );
    assert_eq!(*dropped.lock().unwrap(), ["first", "second"]);
}
