//! The machine's rules on random suites: every run the machine schedules,
//! simulated in virtual time or driven by the sequential runner, keeps
//! every invariant the testkit checks, and the sequential runner does
//! what the simulation does. (The testkit's own properties, that its
//! strategies make the shapes they promise, are in testkit's tests.)

use std::time::Duration;

use dojobber::Runner;
use dojobber_testkit::strategy::{
    GraphShape, RunShape, ScriptShape, SuiteShape, quiet_scripted_panics, scenarios,
};
use dojobber_testkit::{
    Simulation, TraceRecorder, check_invariants, record, render_plan, runner_for, simulate,
};
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
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// More jobs than one word of the one-worker ready queue's bits holds:
    /// the reference order and its rounds hold across the words.
    #[test]
    fn graphs_wider_than_a_word_keep_every_invariant(
        (suite, config) in scenarios(SuiteShape {
            graph: GraphShape { jobs: 65..=150, max_deps: 4, max_depth: 20 },
            script: ScriptShape { max_tries: 3, ..ScriptShape::default() },
            ..SuiteShape::default()
        })
    ) {
        keeps_the_invariants(&simulate(&suite, config))?;
    }
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
}

/// Real runs with several workers: scripts without time (a real run
/// cannot replay virtual time), and every option a real run can take
/// but a cancel: workers, fail-fast, group limits and a deadline of a
/// few milliseconds of real time.
fn real_scenarios() -> impl Strategy<Value = (dojobber_testkit::Suite, dojobber_testkit::SimConfig)>
{
    scenarios(SuiteShape {
        script: ScriptShape::without_time(),
        run: RunShape {
            max_retry_delay: Duration::ZERO,
            max_cancel_at: None,
            max_deadline: Some(Duration::from_millis(3)),
            ..RunShape::everything()
        },
        ..SuiteShape::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn real_thread_runs_keep_every_invariant((suite, config) in real_scenarios()) {
        quiet_scripted_panics();
        let recorder = TraceRecorder::default();
        let finished = runner_for(&suite, &config)
            .observe(recorder.clone())
            .run()
            .expect("the suite is valid");
        let real = recorder.simulation_with(finished.report(), &config).expect("a run has events");
        keeps_the_invariants(&real)?;
    }

    #[test]
    fn real_async_runs_keep_every_invariant((suite, config) in real_scenarios()) {
        quiet_scripted_panics();
        let recorder = TraceRecorder::default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let finished = runtime
            .block_on(runner_for(&suite, &config).observe(recorder.clone()).run_async())
            .expect("the suite is valid");
        let real = recorder.simulation_with(finished.report(), &config).expect("a run has events");
        keeps_the_invariants(&real)?;
    }
}
