//! The machine's rules on random suites: every run the machine schedules,
//! simulated in virtual time or driven by the sequential runner, keeps
//! every invariant the testkit checks.

use std::time::Duration;

use dojobber::Runner;
use dojobber_testkit::strategy::{
    GraphShape, RunShape, ScriptShape, SuiteShape, quiet_scripted_panics, scenarios,
};
use dojobber_testkit::{Simulation, check_invariants, record, render_plan, simulate};
use proptest::prelude::*;

fn explain(sim: &Simulation, what: &str) -> String {
    format!(
        "{what}\nplan:\n{}config: {:?}\ntrace:\n{}",
        render_plan(&sim.plan),
        sim.config,
        sim.trace.render()
    )
}

fn keeps_the_invariants(sim: &Simulation) -> Result<(), TestCaseError> {
    check_invariants(sim).map_err(|v| TestCaseError::fail(explain(sim, &v.to_string())))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn simulated_runs_keep_every_invariant((suite, config) in scenarios(SuiteShape::default())) {
        keeps_the_invariants(&simulate(&suite, config))?;
    }

    /// Several workers, fail-fast, deadlines, cancellations, group limits
    /// and time limits, in any combination.
    #[test]
    fn runs_with_every_option_keep_every_invariant(
        (suite, config) in scenarios(SuiteShape { run: RunShape::everything(), ..SuiteShape::default() })
    ) {
        keeps_the_invariants(&simulate(&suite, config))?;
    }



    #[test]
    fn larger_graphs_keep_every_invariant(
        (suite, config) in scenarios(SuiteShape {
            graph: GraphShape { jobs: 10..=40, max_deps: 6, max_depth: 12 },
            script: ScriptShape { max_tries: 3, ..ScriptShape::default() },
            run: RunShape::everything(),
        })
    ) {
        keeps_the_invariants(&simulate(&suite, config))?;
    }

    #[test]
    fn the_sequential_runner_keeps_every_invariant_and_matches_the_simulation(
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
        let real = record(runner).expect("the suite is valid").run;
        keeps_the_invariants(&real)?;
        prop_assert_eq!(real.trace.render_untimed(), sim.trace.render_untimed());
        let statuses = |run: &Simulation| -> Vec<_> {
            run.report.jobs.iter().map(|j| (j.name.clone(), j.status, j.tries)).collect()
        };
        prop_assert_eq!(statuses(&real), statuses(&sim));
    }
}
