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

/// Suites whose tries fail and are retried after a real delay of 1 or 2
/// ms (a job's own delay may be zero), with no time limit and no
/// deadline: the thread pool runs them with no watcher thread. Group
/// limits and no-act are allowed; fail-fast and cancels are not (they
/// make what runs depend on timing).
fn retried_without_a_watcher()
-> impl Strategy<Value = (dojobber_testkit::Suite, dojobber_testkit::SimConfig, usize)> {
    let delay = Duration::from_millis(2);
    let shape = SuiteShape {
        graph: GraphShape {
            jobs: 2..=14,
            max_deps: 4,
            max_depth: 5,
        },
        script: ScriptShape {
            max_retry_delay: delay,
            ..ScriptShape::without_time()
        },
        run: RunShape {
            max_retry_delay: delay,
            max_workers: 1,
            group_limits: true,
            ..RunShape::default()
        },
    };
    (scenarios(shape), 2..=4usize, 1..=2u64).prop_map(|((suite, mut config), workers, delay)| {
        config.defaults.retry_delay = config
            .defaults
            .retry_delay
            .max(Duration::from_millis(delay));
        (suite, config, workers)
    })
}

/// What no interleaving changes in a run of a scripted suite: each job's
/// status, tries and the dep it is blocked by, every call of its check,
/// run and recheck (sorted), and whether a cleanup failed (which one
/// depends on the order the runs ended in, so not that).
fn outcome(report: &dojobber::Report, log: &dojobber_testkit::CallLog) -> Vec<String> {
    let mut outcome: Vec<String> = report
        .jobs()
        .map(|job| {
            format!(
                "{} {} tries {} blocked by {:?}",
                job.name(),
                job.status(),
                job.tries(),
                job.blocked_by()
            )
        })
        .collect();
    let mut calls: Vec<String> = log
        .calls()
        .into_iter()
        .filter(|call| call.phase != dojobber::Phase::Cleanup)
        .map(|call| {
            format!(
                "{} {} try {} {:?}",
                call.job, call.phase, call.attempt, call.act
            )
        })
        .collect();
    calls.sort();
    outcome.extend(calls);
    outcome.push(format!(
        "a cleanup failed: {}",
        report.cleanup_failure.is_some()
    ));
    outcome
}

/// `suite` fresh, run with `config`'s settings on `workers`, with its
/// events recorded; the report and the calls its jobs received.
fn run_fresh(
    suite: &dojobber_testkit::Suite,
    config: &dojobber_testkit::SimConfig,
    workers: usize,
    recorder: &TraceRecorder,
) -> (dojobber::Report, dojobber_testkit::CallLog) {
    let fresh = suite.fresh();
    let mut runner = Runner::from_ref(fresh.root_job(), ())
        .tries(config.defaults.tries)
        .retry_delay(config.defaults.retry_delay)
        .no_act(config.machine.no_act)
        .cleanup(config.machine.cleanup)
        .workers(workers)
        .observe(recorder.clone())
        .output(std::io::sink());
    for (group, limit) in &config.group_limits {
        runner = runner.group_limit(group.clone(), *limit);
    }
    let report = runner.run().expect("the suite is valid").into_report();
    (report, fresh.log().clone())
}

proptest! {
    // A hang costs its bound on every shrinking step: two minutes of
    // shrinking at most.
    #![proptest_config(ProptestConfig {
        max_shrink_time: 120_000,
        ..ProptestConfig::with_cases(96)
    })]

    /// The thread pool with no watcher: a retry's timer is watched only by
    /// sleeping workers, and the worker that reports a failed try sleeps
    /// until its retry unless the machine hands it a phase that was
    /// waiting for room. If that were wrong, a retry would never start and
    /// the run would hang: the run gets 30 s before the test says so
    /// (it takes milliseconds). Under every interleaving, the pool ends
    /// as the sequential driver does, and keeps every invariant.
    #[test]
    fn the_pool_without_a_watcher_retries_as_the_sequential_driver_does(
        (suite, config, workers) in retried_without_a_watcher()
    ) {
        quiet_scripted_panics();
        let plan = suite.plan(config.defaults);
        prop_assert!(!plan.has_time_limits() && config.machine.deadline.is_none());

        let (sequential, sequential_log) = run_fresh(&suite, &config, 1, &TraceRecorder::default());

        let recorder = TraceRecorder::default();
        let (ended, ends) = std::sync::mpsc::channel();
        let pool = {
            let (suite, config, recorder) = (suite.clone(), config.clone(), recorder.clone());
            std::thread::spawn(move || {
                let _ = ended.send(run_fresh(&suite, &config, workers, &recorder));
            })
        };
        let Ok((pooled, pooled_log)) = ends.recv_timeout(Duration::from_secs(30)) else {
            let so_far = recorder.trace().render_untimed();
            return Err(TestCaseError::fail(format!(
                "the pool of {workers} did not end in 30 s: a retry was never started\n\
                 plan:\n{}trace so far:\n{so_far}",
                render_plan(&plan)
            )));
        };
        pool.join().expect("the run's thread ends once it has sent");

        let mut pool_config = config.clone();
        pool_config.machine.workers = workers;
        let real = recorder
            .simulation_with(pooled.clone(), &pool_config)
            .expect("a run has events");
        prop_assert_eq!(
            outcome(&pooled, &pooled_log),
            outcome(&sequential, &sequential_log),
            "{}",
            explain(&real, &format!("the pool of {workers} ends otherwise than one worker"))
        );
        keeps_the_invariants(&real)?;
    }
}
