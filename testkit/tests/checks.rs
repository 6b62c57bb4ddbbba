//! The checks a user runs on a suite of their own: idempotence, dry runs,
//! the plan; and the finer points of mocks and simulated time.

use std::time::Duration;

use dojobber::{JobKind, Phase, Runner, Status};
use dojobber_testkit::strategy::{SCRIPTED_PANIC, quiet_scripted_panics, run_settings};
use dojobber_testkit::{
    Act, IdempotenceError, Mock, Offender, Redactions, Rule, SimConfig, Suite, assert_idempotent,
    check_idempotent, check_invariants, dry_run_text, record, simulate,
};

fn runner(suite: &Suite) -> Runner<()> {
    Runner::from_ref(suite.root_job(), ())
        .retry_delay(Duration::ZERO)
        .output(std::io::sink())
}

#[test]
fn a_suite_that_remembers_its_runs_is_idempotent() {
    // One log for both runs: the second run sees the first one's runs.
    let suite = Suite::new([
        Mock::new("Root").deps(["Once", "Twice", "Group", "Fluff"]),
        Mock::new("Once").check_fails_until_runs(1, "not yet"),
        Mock::new("Twice").check_fails_until_runs(2, "not yet"),
        Mock::new("Group").kind(JobKind::Dummy),
        // A run-only job has no check; passing at its first try is enough.
        Mock::new("Fluff").kind(JobKind::RunOnly),
    ]);
    check_idempotent(|| runner(&suite)).unwrap();
    let runs: Vec<String> = suite
        .log()
        .calls()
        .iter()
        .filter(|c| c.phase == Phase::Run)
        .map(|c| c.job.clone())
        .collect();
    assert_eq!(runs, ["Once", "Twice", "Fluff", "Twice", "Fluff"]);
}

#[test]
fn the_jobs_that_are_not_idempotent_are_named_with_what_they_did() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Forgetful", "Fine", "Stubborn", "Late"]),
        // Its check passes only right after its own run.
        Mock::new("Forgetful")
            .check_rule(Rule::Always(Act::fail("forgot")))
            .recheck_rule(Rule::Always(Act::Pass)),
        Mock::new("Fine"),
        Mock::new("Stubborn").tries(1).check(Act::fail("never")),
        Mock::new("Late")
            .kind(JobKind::RunOnly)
            .run_rule(Rule::PerTry(vec![Act::fail("late"), Act::Pass])),
    ]);
    let error = check_idempotent(|| runner(&suite)).unwrap_err();
    let IdempotenceError::NotIdempotent {
        offenders,
        first_run,
        second_run,
    } = &error
    else {
        panic!("{error}");
    };
    let fixed = |why: &[&str]| why.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    assert_eq!(
        offenders,
        &[
            Offender {
                job: "Forgetful".into(),
                status: Status::Fixed,
                why: fixed(&["its first check failed (\"forgot\")", "its run executed"]),
            },
            Offender {
                job: "Stubborn".into(),
                status: Status::Failed,
                why: fixed(&[
                    "its first check failed (\"never\")",
                    "its run executed",
                    "failed (\"never\")"
                ]),
            },
            Offender {
                job: "Late".into(),
                status: Status::Fixed,
                why: fixed(&["it took 2 tries"]),
            },
            Offender {
                job: "Root".into(),
                status: Status::Blocked,
                why: fixed(&["blocked by Stubborn"]),
            },
        ]
    );
    assert_eq!(first_run.job("Root").unwrap().status(), Status::Blocked);
    assert_eq!(second_run.job("Fine").unwrap().status(), Status::Passed);
    assert_eq!(
        error.to_string().lines().next().unwrap(),
        "not idempotent: in the second run, 4 jobs did not pass at the first check without running:"
    );
}

#[test]
fn assert_idempotent_panics_naming_the_jobs() {
    use dojobber::{Context, Job, JobResult, bail};
    struct Forgetful;
    impl Job<u8> for Forgetful {
        fn check(&self, cx: &mut Context<'_, u8>) -> JobResult {
            if cx.is_recheck() {
                Ok(())
            } else {
                bail!("forgot {}", cx.args())
            }
        }
    }
    struct Steady;
    impl Job<u8> for Steady {
        fn check(&self, _: &mut Context<'_, u8>) -> JobResult {
            Ok(())
        }
    }
    assert_idempotent(Steady, 7);
    let panic = std::panic::catch_unwind(|| assert_idempotent(Forgetful, 7)).unwrap_err();
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.ends_with(
            "\n  Forgetful: fixed: its first check failed (\"forgot 7\"), its run executed"
        ),
        "{message}"
    );
}

#[test]
fn a_dry_run_tells_what_each_job_would_do() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Missing", "There", "Group", "Fluff", "Needy"]),
        Mock::new("Missing").check(Act::fail("not installed")),
        Mock::new("There"),
        Mock::new("Group").kind(JobKind::Dummy).deps(["There"]),
        Mock::new("Fluff").kind(JobKind::RunOnly),
        Mock::new("Needy").deps(["Missing"]),
    ]);
    assert_eq!(
        dry_run_text(runner(&suite)).unwrap(),
        "Missing: check fails (\"not installed\"), would run\n\
         There: check passes\n\
         Group: group, passes\n\
         Fluff: run-only, would run\n\
         Needy: not checked, waits for Missing\n\
         Root: not checked, waits for Missing\n"
    );
    // Only checks were called, once each.
    let calls: Vec<(String, Phase)> = suite
        .log()
        .calls()
        .into_iter()
        .map(|c| (c.job, c.phase))
        .collect();
    assert_eq!(
        calls,
        [
            ("Missing".to_owned(), Phase::Check),
            ("There".to_owned(), Phase::Check)
        ]
    );
}

#[test]
fn a_dry_run_names_a_job_that_cannot_start() {
    // A dep the suite lacks makes the job's deps() panic: it cannot be described.
    let suite = Suite::new([Mock::new("Root").deps(["Ghost"])]);
    assert_eq!(
        dry_run_text(runner(&suite)).unwrap(),
        "Root: cannot start (\"panicked: unknown dep \\\"Ghost\\\"\")\n"
    );
}

#[test]
fn each_phase_can_take_its_own_simulated_time() {
    let suite = Suite::new([Mock::new("Dishwasher")
        .takes(Duration::from_secs(1))
        .takes_for(Phase::Run, Duration::from_secs(90))
        .retry_delay(Duration::from_secs(600))
        .check_fails_until_runs(2, "dirty")]);
    let sim = simulate(&suite, SimConfig::new());
    check_invariants(&sim).unwrap();
    let times: Vec<(Phase, u64, u64)> = sim
        .trace
        .entries
        .iter()
        .map(|e| (e.phase, e.at.as_secs(), e.end.as_secs()))
        .collect();
    assert_eq!(
        times,
        [
            (Phase::Check, 0, 1),
            (Phase::Run, 1, 91),
            (Phase::Recheck, 91, 92),
            // The retry waits 600 s after the first try ended.
            (Phase::Check, 692, 693),
            (Phase::Run, 693, 783),
            (Phase::Recheck, 783, 784),
            (Phase::Cleanup, 784, 785),
        ]
    );
    assert_eq!(
        sim.report
            .job_at(0)
            .expect("the report has every job")
            .time(),
        Duration::from_secs(185)
    );
}

#[test]
fn a_panicking_phase_fails_like_the_real_drivers_say() {
    let suite = Suite::new([Mock::new("Grumpy")
        .tries(1)
        .check(Act::Panic(SCRIPTED_PANIC.into()))]);
    let sim = simulate(&suite, SimConfig::new());
    assert_eq!(
        sim.trace.render(),
        "t=+0.000s Grumpy.check: fail \"panicked: scripted panic\"\n\
         t=+0.000s Grumpy.run: pass\n\
         t=+0.000s Grumpy.recheck: fail \"panicked: scripted panic\"\n\
         t=+0.000s Grumpy.cleanup: pass\n"
    );
    // The real driver catches the same panic and reports the same failure.
    quiet_scripted_panics();
    let real = dojobber_testkit::record(runner(&suite.fresh())).unwrap();
    assert_eq!(
        real.record.trace.render_untimed(),
        sim.trace.render_untimed()
    );
}

/// A fan-out of jobs that each need a run, for runs with several workers.
fn fan_out() -> Suite {
    let leaves: Vec<String> = (0..8).map(|n| format!("Leaf{n}")).collect();
    let mut mocks = vec![Mock::new("Root").deps(leaves.iter().map(String::as_str))];
    mocks.extend(
        leaves
            .iter()
            .map(|name| Mock::new(name).check_fails_until_runs(1, "not yet")),
    );
    Suite::new(mocks)
}

#[test]
fn record_holds_a_four_worker_run_to_its_own_settings() {
    let suite = fan_out();
    let recorded = record(runner(&suite).workers(4)).unwrap();
    assert_eq!(recorded.record.config.machine.workers, 4);
    check_invariants(&recorded.record).unwrap();
    assert!(recorded.finished.report().is_success());
}

#[test]
fn record_carries_every_setting_of_the_runner() {
    let suite = fan_out();
    let runner = runner(&suite)
        .workers(3)
        .tries(2)
        .fail_fast(true)
        .group_limit("g0", 1);
    let expected = SimConfig::new()
        .defaults(2, Duration::ZERO)
        .workers(3)
        .fail_fast()
        .limit_group("g0", 1);
    let recorded = record(runner).unwrap();
    assert_eq!(recorded.record.config, expected);
    check_invariants(&recorded.record).unwrap();
}

#[test]
fn check_idempotent_with_four_workers() {
    let suite = fan_out();
    check_idempotent(|| runner(&suite).workers(4)).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
    /// Random settings applied to a real runner: every run keeps the
    /// engine's rules, and a suite that converges ends the same (no-act
    /// aside) whatever the workers, tries and delays.
    #[test]
    fn random_settings_on_a_real_runner_keep_every_rule(settings in run_settings()) {
        let suite = fan_out();
        let recorded = record(settings.apply(runner(&suite)))?;
        check_invariants(&recorded.record)?;
        let report = recorded.finished.report();
        // Nothing has run yet, so a no-act run cannot pass; an acting one
        // fixes every leaf, whatever the workers, tries and delays.
        proptest::prop_assert_eq!(report.is_success(), !settings.no_act);
        check_idempotent(|| settings.acting().apply(runner(&suite)))?;
    }
}

#[test]
fn redactions_make_times_and_paths_stable() {
    let redactions = Redactions::new()
        .path("/tmp/.tmpA1b2/site", "[TARGET]")
        .path("/tmp/.tmpA1b2", "[TMP]");
    assert_eq!(
        redactions.apply(
            "/tmp/.tmpA1b2/site/db and /tmp/.tmpA1b2/x: 12 jobs in 1.25s (3ms each), at 2026-11-29T01:02:03.5Z"
        ),
        "[TARGET]/db and [TMP]/x: 12 jobs in [TIME] ([TIME] each), at [TIMESTAMP]"
    );
    // Names and counts are kept; a name with `$` is taken as it is.
    assert_eq!(
        Redactions::new()
            .path("/a", "$HOME")
            .apply("/a: 3 tries, 2 s3 x"),
        "$HOME: 3 tries, 2 s3 x"
    );
    assert_eq!(
        Redactions::new().apply(r#"{"time_secs":0.000123,"elapsed_secs": 1e-5}"#),
        r#"{"time_secs": "[SECS]","elapsed_secs": "[SECS]"}"#
    );
}
