//! The testkit's own properties: the strategies make the shapes they
//! promise, and the checker accepts the documented behaviour. The
//! engine's properties on random suites (every run keeps every invariant,
//! the real drivers against the simulation) are core's
//! `tests/properties.rs`.

use std::time::Duration;

use dojobber::engine::{Defaults, JobId, Plan};
use dojobber_testkit::strategy::{
    GraphShape, RunShape, ScriptShape, SuiteShape, sim_configs, suites,
};
use dojobber_testkit::{Simulation, Suite, check_invariants, render_plan, simulate};
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
