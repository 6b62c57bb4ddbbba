//! Properties of the engine on random suites: every simulated run keeps
//! every invariant, the strategies make the shapes they promise, and the
//! real sequential driver does what the simulation does.

use std::time::Duration;

use dojobber::Runner;
use dojobber::engine::{Defaults, JobId, Plan};
use dojobber_testkit::strategy::{
    GraphShape, RunShape, ScriptShape, SuiteShape, quiet_scripted_panics, scenarios, sim_configs,
    suites,
};
use dojobber_testkit::{Simulation, Suite, check_invariants, record, render_plan, simulate};
use proptest::prelude::*;

/// What to print when a property fails: the violation, the plan, the trace.
fn explain(sim: &Simulation, what: &str) -> String {
    format!(
        "{what}\nplan:\n{}config: {:?}\ntrace:\n{}",
        render_plan(&sim.plan),
        sim.config,
        sim.trace.render()
    )
}

/// The longest chain of deps from the root, root included.
fn depth(plan: &Plan) -> usize {
    let mut depth_of = vec![1usize; plan.len()];
    // Deps have smaller ids, so going down the ids visits dependents first.
    for id in plan.ids().rev() {
        for &dep in plan.deps(id) {
            depth_of[dep.index()] = depth_of[dep.index()].max(depth_of[id.index()] + 1);
        }
    }
    depth_of.into_iter().max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simulated_runs_keep_every_invariant((suite, config) in scenarios(SuiteShape::default())) {
        let sim = simulate(&suite, config);
        if let Err(violation) = check_invariants(&sim) {
            return Err(TestCaseError::fail(explain(&sim, &violation.to_string())));
        }
    }

    /// Several workers, fail-fast, deadlines, cancellations, group limits
    /// and time limits, in any combination.
    #[test]
    fn runs_with_every_option_keep_every_invariant(
        (suite, config) in scenarios(SuiteShape { run: RunShape::everything(), ..SuiteShape::default() })
    ) {
        let sim = simulate(&suite, config);
        if let Err(violation) = check_invariants(&sim) {
            return Err(TestCaseError::fail(explain(&sim, &violation.to_string())));
        }
    }


    #[test]
    fn deep_and_wide_graphs_keep_every_invariant(
        (suite, config) in scenarios(SuiteShape {
            graph: GraphShape { jobs: 10..=40, max_deps: 6, max_depth: 12 },
            script: ScriptShape { max_tries: 3, ..ScriptShape::default() },
            run: RunShape::everything(),
        })
    ) {
        let sim = simulate(&suite, config);
        if let Err(violation) = check_invariants(&sim) {
            return Err(TestCaseError::fail(explain(&sim, &violation.to_string())));
        }
    }

    #[test]
    fn random_graphs_have_the_shape_asked_for(
        ((jobs, max_deps, max_depth), suite) in (1..30usize, 0..5usize, 1..7usize)
            .prop_flat_map(|(jobs, max_deps, max_depth)| {
                let shape = SuiteShape {
                    graph: GraphShape { jobs: jobs..=jobs, max_deps, max_depth },
                    ..SuiteShape::default()
                };
                (Just((jobs, max_deps, max_depth)), suites(shape))
            })
    ) {
        let plan = suite.plan(Defaults::default());
        // Every mock is reachable from the root, and none was lost.
        prop_assert_eq!(plan.len(), suite.mocks().len());
        // As many jobs as asked for, or as the fan-in and depth leave room for.
        let room: usize = (0..max_depth as u32).map(|level| max_deps.pow(level)).sum();
        prop_assert_eq!(plan.len(), jobs.min(room));
        prop_assert!(depth(&plan) <= max_depth, "depth {} > {max_depth}", depth(&plan));
        for id in plan.ids() {
            prop_assert!(plan.deps(id).len() <= max_deps, "{} has too many deps", plan.name(id));
        }
        prop_assert_eq!(plan.name(plan.root()), "J0");
    }

    #[test]
    fn scripts_stay_within_their_limits(
        suite in suites(SuiteShape {
            graph: GraphShape { jobs: 1..=8, max_deps: 2, max_depth: 4 },
            script: ScriptShape {
                max_tries: 2,
                max_retry_delay: Duration::from_millis(700),
                max_takes: Duration::from_millis(300),
                ..ScriptShape::default()
            },
            run: RunShape::default(),
        }),
        config in sim_configs(2, Duration::from_millis(700)),
    ) {
        let plan = suite.plan(config.defaults);
        for id in plan.ids() {
            prop_assert!((1..=2).contains(&plan.tries(id)));
            prop_assert!(plan.retry_delay(id) <= Duration::from_millis(700));
        }
        let sim = simulate(&suite, config.clone());
        for entry in &sim.trace.entries {
            prop_assert!(entry.end - entry.at <= Duration::from_millis(300), "{entry:?}");
        }
    }

    /// The sequential driver, calling real job values, makes the same
    /// phases in the same order, with the same outcomes and statuses, as
    /// the simulation of the same suite, when no retry has to wait.
    #[test]
    fn the_sequential_driver_agrees_with_the_simulation(
        (suite, config) in scenarios(SuiteShape::without_time())
    ) {
        quiet_scripted_panics();
        let sim = simulate(&suite, config.clone());
        let runner = Runner::from_ref(suite.fresh().root_job(), ())
            .tries(config.defaults.tries)
            .retry_delay(Duration::ZERO)
            .no_act(config.machine.no_act)
            .cleanup(config.machine.cleanup)
            .output(std::io::sink());
        let real = record(runner).expect("the suite is valid").record;
        prop_assert_eq!(render_plan(&real.plan), render_plan(&sim.plan));
        prop_assert_eq!(
            real.trace.render_untimed(),
            sim.trace.render_untimed(),
            "{}",
            explain(&sim, "the real run's phases differ")
        );
        let statuses = |sim: &Simulation| -> Vec<String> {
            sim.report.jobs()
                .map(|job| format!("{} {} {} {:?}", job.name(), job.status(), job.tries(), job.blocked_by()))
                .collect()
        };
        prop_assert_eq!(statuses(&real), statuses(&sim));
        prop_assert_eq!(&real.report.cleanup_failure, &sim.report.cleanup_failure);
        if let Err(violation) = check_invariants(&real) {
            return Err(TestCaseError::fail(explain(&real, &violation.to_string())));
        }
    }

    /// The thread-pool driver, with real job values on real threads, keeps
    /// every invariant too (its order of events depends on the threads, so
    /// there is no one trace to compare).
    #[test]
    fn the_thread_pool_driver_keeps_every_invariant(
        (suite, config) in scenarios(SuiteShape {
            run: RunShape {
                max_workers: 4,
                group_limits: true,
                max_retry_delay: Duration::ZERO,
                ..RunShape::default()
            },
            ..SuiteShape::without_time()
        })
    ) {
        quiet_scripted_panics();
        let mut runner = Runner::from_ref(suite.root_job(), ())
            .tries(config.defaults.tries)
            .retry_delay(Duration::ZERO)
            .no_act(config.machine.no_act)
            .cleanup(config.machine.cleanup)
            .workers(config.machine.workers)
            .fail_fast(config.machine.fail_fast)
            .output(std::io::sink());
        for (group, limit) in &config.group_limits {
            runner = runner.group_limit(group.clone(), *limit);
        }
        // The record carries the runner's settings: workers, fail-fast, group limits.
        let real = record(runner).expect("the suite is valid").record;
        if let Err(violation) = check_invariants(&real) {
            return Err(TestCaseError::fail(explain(&real, &violation.to_string())));
        }
    }
}

/// A handful of hand-made suites, to see that the random ones are not
/// all the checker ever passed.
#[test]
fn the_checker_accepts_the_documented_behaviour() {
    use dojobber_testkit::{Act, Mock};
    let suite = Suite::new([
        Mock::new("Root").deps(["Flaky", "Group", "Pizza", "Broken"]),
        Mock::new("Flaky")
            .retry_delay(Duration::from_secs(600))
            .takes(Duration::from_secs(1))
            .check_fails_until_runs(2, "not yet"),
        Mock::new("Group")
            .kind(dojobber::JobKind::Dummy)
            .deps(["Flaky"]),
        Mock::new("Pizza").kind(dojobber::JobKind::RunOnly),
        Mock::new("Broken").check(Act::Panic("boom".into())),
    ]);
    for config in [
        dojobber_testkit::SimConfig::new(),
        dojobber_testkit::SimConfig::new().no_act(),
        dojobber_testkit::SimConfig::new().cleanup(false),
    ] {
        let sim = simulate(&suite, config);
        check_invariants(&sim).unwrap_or_else(|v| panic!("{}", explain(&sim, &v.to_string())));
    }
    // And the root is last, as the reference order has it.
    let plan = suite.plan(Defaults::default());
    assert_eq!(plan.root(), JobId::from_index(plan.len() - 1));
}
