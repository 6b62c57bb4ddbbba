//! The machine's scheduling rules, driven by the testkit's virtual clock:
//! retry delays of minutes are checked without sleeping.

use std::time::Duration;

use dojobber::engine::{Defaults, JobSpec, Machine, MachineConfig, MachineError, Plan, Step, Task};
use dojobber::observe::Event;
use dojobber::{JobKind, Outcome, Phase, Status};
use dojobber_testkit::{Act, Mock, SimConfig, Suite, simulate};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `Job.phase` for every phase of the trace, in order.
fn phases(suite: &Suite, config: SimConfig) -> Vec<String> {
    simulate(suite, config)
        .trace
        .entries
        .iter()
        .map(|e| format!("{}.{}", e.job, e.phase))
        .collect()
}

#[test]
fn jobs_are_tried_in_depth_first_post_order_with_deps_in_declaration_order() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Left", "Right", "Shared"]),
        Mock::new("Left").deps(["Shared", "Leaf"]),
        Mock::new("Right").deps(["Leaf"]),
        Mock::new("Shared"),
        Mock::new("Leaf"),
    ]);
    assert_eq!(
        phases(&suite, SimConfig::new()),
        [
            "Shared.check",
            "Leaf.check",
            "Left.check",
            "Right.check",
            "Root.check"
        ]
    );
}

#[test]
fn retries_come_in_rounds_and_each_round_tries_a_job_once() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Flaky", "Steady", "Stubborn"]),
        Mock::new("Flaky").check_fails_until_runs(2, "not yet"),
        Mock::new("Steady"),
        Mock::new("Stubborn").check(Act::fail("never")),
    ]);
    let sim = simulate(&suite, SimConfig::new().defaults(3, Duration::ZERO));
    insta::assert_snapshot!(sim.trace.render());
    let rounds = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::RoundStarted { .. }))
        .count();
    assert_eq!(
        rounds, 3,
        "Stubborn keeps rounds going until its 3 tries are used"
    );
    let report = &sim.report;
    assert_eq!(report.job("Flaky").unwrap().status(), Status::Fixed);
    assert_eq!(report.job("Flaky").unwrap().tries(), 2);
    assert_eq!(report.job("Steady").unwrap().status(), Status::Passed);
    assert_eq!(report.job("Stubborn").unwrap().status(), Status::Failed);
    assert_eq!(report.job("Stubborn").unwrap().tries(), 3);
    assert_eq!(report.job("Root").unwrap().status(), Status::Blocked);
    assert_eq!(report.job("Root").unwrap().blocked_by(), Some("Stubborn"));
    assert_eq!(report.job("Root").unwrap().tries(), 0);
}

#[test]
fn a_job_unblocked_by_a_retry_is_tried_in_the_same_round() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Dependent"]),
        Mock::new("Dependent").deps(["Flaky"]),
        Mock::new("Flaky").check_fails_until_runs(2, "not yet"),
    ]);
    let sim = simulate(&suite, SimConfig::new().defaults(3, Duration::ZERO));
    let mut round = 0;
    let mut tried_in_round = Vec::new();
    for event in &sim.events {
        match event {
            Event::RoundStarted { round: r } => round = *r,
            Event::TryStarted { job, attempt } => {
                tried_in_round.push((sim.plan.name(*job).to_owned(), *attempt, round));
            }
            _ => {}
        }
    }
    let expected = [
        ("Flaky", 1, 1),
        ("Flaky", 2, 2),
        ("Dependent", 1, 2),
        ("Root", 1, 2),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(j, a, r)| (j.to_string(), *a, *r))
        .collect();
    assert_eq!(tried_in_round, expected);
    assert!(sim.report.is_success());
}

#[test]
fn a_retry_waits_for_its_delay_after_the_previous_try_ends() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Slow", "Fast"]),
        Mock::new("Slow")
            .retry_delay(secs(600))
            .takes(secs(1))
            .check_fails_until_runs(2, "warming up"),
        Mock::new("Fast")
            .retry_delay(Duration::ZERO)
            .check_fails_until_runs(2, "warming up"),
    ]);
    let sim = simulate(&suite, SimConfig::new());
    let starts = |job: &str| -> Vec<(u32, Phase, Duration)> {
        sim.trace
            .of(job)
            .map(|e| (e.attempt, e.phase, e.at))
            .collect()
    };
    // Slow's first try: check 0-1 s, run 1-2 s, recheck 2-3 s; retry at 3 + 600 s.
    assert_eq!(starts("Slow")[3], (2, Phase::Check, secs(603)));
    // The sequential order waits in place: Fast, after Slow in the round,
    // is retried only after Slow's retry, though its own delay is zero.
    let fast_retry = starts("Fast")[3];
    assert_eq!((fast_retry.0, fast_retry.1), (2, Phase::Check));
    assert!(fast_retry.2 >= secs(606), "{fast_retry:?}");
    assert!(sim.report.is_success());
}

#[test]
fn no_act_only_checks_and_run_only_jobs_fail() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Broken", "Fluff", "Group", "Fine"]),
        Mock::new("Broken").check(Act::fail("not there")),
        Mock::new("Fluff").kind(JobKind::RunOnly),
        Mock::new("Group").kind(JobKind::Dummy),
        Mock::new("Fine"),
    ]);
    let sim = simulate(&suite, SimConfig::new().no_act());
    assert_eq!(
        sim.trace.render(),
        "t=+0.000s Broken.check: fail \"not there\"\n\
         t=+0.000s Fluff.check: fail \"run-only jobs cannot pass in no-act mode\"\n\
         t=+0.000s Group.check: pass\n\
         t=+0.000s Fine.check: pass\n"
    );
    let status = |job: &str| sim.report.job(job).unwrap().status();
    assert_eq!(status("Broken"), Status::Failed);
    assert_eq!(status("Fluff"), Status::Failed);
    assert_eq!(status("Group"), Status::Passed);
    assert_eq!(status("Root"), Status::Blocked);
    assert_eq!(
        sim.report.job("Broken").unwrap().tries(),
        1,
        "no retries in no-act mode"
    );
    assert!(sim.report.no_act);
}

#[test]
fn a_run_only_job_is_decided_by_its_run() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Pizza"]),
        Mock::new("Pizza")
            .kind(JobKind::RunOnly)
            .run_rule(dojobber_testkit::Rule::PerTry(vec![
                Act::fail("late"),
                Act::Pass,
            ])),
    ]);
    let sim = simulate(&suite, SimConfig::new().defaults(3, Duration::ZERO));
    let pizza: Vec<_> = sim
        .trace
        .of("Pizza")
        .filter(|e| e.phase != Phase::Cleanup)
        .map(|e| (e.phase, e.outcome.is_pass(), e.performed))
        .collect();
    assert_eq!(
        pizza,
        [
            (Phase::Check, false, false),
            (Phase::Run, false, true),
            (Phase::Recheck, false, false),
            (Phase::Check, false, false),
            (Phase::Run, true, true),
            (Phase::Recheck, true, false),
        ]
    );
    assert_eq!(sim.report.job("Pizza").unwrap().status(), Status::Fixed);
}

#[test]
fn cleanups_unwind_the_runs_most_recent_first_once_each() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Twice", "Once"]),
        Mock::new("Twice").check_fails_until_runs(2, "again"),
        Mock::new("Once").check_fails_until_runs(1, "once"),
    ]);
    let sim = simulate(&suite, SimConfig::new().defaults(3, Duration::ZERO));
    let cleanups: Vec<_> = sim
        .trace
        .entries
        .iter()
        .filter(|e| e.phase == Phase::Cleanup)
        .map(|e| e.job.as_str())
        .collect();
    // Runs: Twice (round 1), Once (round 1), Twice (round 2).
    assert_eq!(cleanups, ["Twice", "Once"]);
}

#[test]
fn a_failing_cleanup_stops_the_cleanups_after_it() {
    let suite = Suite::new([
        Mock::new("Root").deps(["First", "Second", "Third"]),
        Mock::new("First").check_fails_until_runs(1, "x"),
        Mock::new("Second")
            .check_fails_until_runs(1, "x")
            .cleanup(Act::fail("stuck")),
        Mock::new("Third").check_fails_until_runs(1, "x"),
    ]);
    let sim = simulate(&suite, SimConfig::new());
    let cleanups: Vec<_> = sim
        .trace
        .entries
        .iter()
        .filter(|e| e.phase == Phase::Cleanup)
        .map(|e| (e.job.as_str(), e.outcome.is_pass()))
        .collect();
    assert_eq!(cleanups, [("Third", true), ("Second", false)]);
    let failure = sim.report.cleanup_failure.expect("the failure is reported");
    assert_eq!(failure.job, "Second");
    assert_eq!(failure.error.message, "stuck");
}

#[test]
fn a_broken_job_fails_untried_and_blocks_its_dependents() {
    let mut broken = JobSpec::new("Broken");
    broken.broken = Some("panicked: no deps today".into());
    let mut root = JobSpec::new("Root");
    root.deps = vec![1, 2];
    let specs = vec![root, broken, JobSpec::new("Fine")];
    let (plan, _) = Plan::new(specs, 0, Defaults::default()).unwrap();
    let report = drive_passing(Machine::new(plan, MachineConfig::default()));
    let broken = report.job("Broken").unwrap();
    assert_eq!((broken.status(), broken.tries()), (Status::Failed, 0));
    assert_eq!(
        broken.last_error().unwrap().message,
        "panicked: no deps today"
    );
    assert_eq!(report.job("Fine").unwrap().status(), Status::Passed);
    assert_eq!(report.job("Root").unwrap().blocked_by(), Some("Broken"));
}

#[test]
fn reports_the_machine_did_not_ask_for_are_errors_that_change_nothing() {
    let (plan, _) = Plan::new(vec![JobSpec::new("Only")], 0, Defaults::default()).unwrap();
    let mut machine = Machine::new(plan, MachineConfig::default());
    let only = machine.plan().root();
    let check = Task {
        job: only,
        phase: Phase::Check,
        attempt: 1,
    };
    let err = machine
        .handle_outcome(check, Outcome::Pass, Duration::ZERO)
        .unwrap_err();
    assert_eq!(
        err,
        MachineError::UnexpectedReport {
            job: "Only".into(),
            phase: Phase::Check
        }
    );
    assert_eq!(
        err.to_string(),
        "report for \"Only\".check that the machine did not ask for"
    );
    let Step::Perform(task) = machine.poll(Duration::ZERO) else {
        panic!("the job is still to be checked");
    };
    assert_eq!(task, check);
    let wrong_phase = Task {
        phase: Phase::Run,
        ..check
    };
    let wrong_try = Task {
        attempt: 2,
        ..check
    };
    let unknown = Task {
        job: dojobber::engine::JobId::from_index(7),
        ..check
    };
    for wrong in [wrong_phase, wrong_try, unknown] {
        assert!(
            machine
                .handle_outcome(wrong, Outcome::Pass, Duration::ZERO)
                .is_err(),
            "{wrong:?}"
        );
    }
    machine
        .handle_outcome(check, Outcome::Pass, Duration::ZERO)
        .unwrap();
    assert_eq!(machine.poll(Duration::ZERO), Step::Done);
}

#[test]
fn cleanup_put_off_runs_when_started_by_hand_and_only_once() {
    let mut spec = JobSpec::new("Dust");
    spec.tries = Some(1);
    let (plan, _) = Plan::new(vec![spec], 0, Defaults::default()).unwrap();
    let config = MachineConfig {
        cleanup: false,
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(plan, config);
    let dust = machine.plan().root();
    let drive = |machine: &mut Machine, performed: &mut Vec<Phase>| loop {
        match machine.poll(Duration::ZERO) {
            Step::Perform(task) => {
                performed.push(task.phase);
                let outcome = match task.phase {
                    Phase::Check => Outcome::Fail(dojobber::Failure::new("dusty")),
                    _ => Outcome::Pass,
                };
                assert_eq!(task.job, dust);
                machine
                    .handle_outcome(task, outcome, Duration::ZERO)
                    .unwrap();
            }
            Step::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    };
    let mut performed = Vec::new();
    drive(&mut machine, &mut performed);
    assert_eq!(performed, [Phase::Check, Phase::Run, Phase::Recheck]);
    machine.start_cleanup().unwrap();
    drive(&mut machine, &mut performed);
    assert_eq!(performed.last(), Some(&Phase::Cleanup));
    assert!(matches!(
        machine.start_cleanup(),
        Err(MachineError::CleanupNotAllowed(_))
    ));
}

#[test]
fn cleanup_cannot_start_before_the_run_is_over() {
    let (plan, _) = Plan::new(vec![JobSpec::new("A")], 0, Defaults::default()).unwrap();
    let mut machine = Machine::new(plan, MachineConfig::default());
    assert_eq!(
        machine.start_cleanup().unwrap_err().to_string(),
        "cleanup cannot start: the run is not over"
    );
}

/// Drives a machine whose phases all pass, returning its report.
fn drive_passing(mut machine: Machine) -> dojobber::Report {
    loop {
        match machine.poll(Duration::ZERO) {
            Step::Perform(task) => machine
                .handle_outcome(task, Outcome::Pass, Duration::ZERO)
                .unwrap(),
            Step::Done => return machine.report_card(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Every step a machine hands out on a fixed script (a job's first check
/// fails for every third job, every run and recheck passes, every second
/// cleanup fails), its events, and its report.
fn drive_script(mute: bool, workers: usize) -> (Vec<Step>, Vec<Event>, dojobber::Report) {
    // Job i needs jobs i + 1 and i + 2: a ladder with the root at 0.
    let specs: Vec<JobSpec> = (0..12)
        .map(|i| JobSpec {
            deps: [i + 1, i + 2].into_iter().filter(|&d| d < 12).collect(),
            tries: Some(2),
            ..JobSpec::new(format!("J{i}"))
        })
        .collect();
    let (plan, _) = Plan::new(specs, 0, Defaults::default()).unwrap();
    let config = MachineConfig {
        workers,
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(plan, config);
    if mute {
        machine.mute_main_events();
    }
    let (mut steps, mut in_flight) = (Vec::new(), Vec::new());
    let now = Duration::ZERO;
    loop {
        let step = machine.poll(now);
        steps.push(step);
        match step {
            Step::Perform(task) => in_flight.push(task),
            Step::Done => break,
            Step::Wait(_) | Step::Idle | Step::Abandon(_) => {
                let task = in_flight.remove(0);
                let fails = match task.phase {
                    Phase::Check => task.job.index() % 3 == 0 && task.attempt == 1,
                    Phase::Cleanup => task.job.index() % 2 == 0,
                    Phase::Run | Phase::Recheck => false,
                };
                let outcome = if fails {
                    Outcome::Fail(dojobber::Failure::new("scripted"))
                } else {
                    Outcome::Pass
                };
                machine.handle_outcome(task, outcome, now).unwrap();
            }
        }
    }
    let events = std::iter::from_fn(|| machine.poll_event()).collect();
    (steps, events, machine.report_card())
}

#[test]
fn muting_the_main_events_changes_no_decision_and_keeps_the_cleanups_events() {
    for workers in [1, 3] {
        let (steps, events, report) = drive_script(false, workers);
        let (muted_steps, muted_events, muted_report) = drive_script(true, workers);
        assert_eq!(muted_steps, steps);
        assert_eq!(muted_report, report);
        assert!(
            report.cleanup_failure.is_some(),
            "the script reaches a failing cleanup"
        );
        let run_finished = events
            .iter()
            .position(|event| matches!(event, Event::RunFinished { .. }))
            .unwrap();
        assert_eq!(muted_events, events[run_finished + 1..]);
    }
}

/// A driver across hosts says who performed each phase: the report keeps
/// the worker of each try, and a phase performed by nobody (the cleanup
/// of a run no worker began) is recorded as not performed. A local run's
/// JSON has no `performed_by`.
#[test]
fn the_report_keeps_who_performed_each_try() {
    use dojobber::engine::Performer;
    use dojobber::{Failure, FailureKind};

    let spec = JobSpec {
        tries: Some(2),
        retry_delay: Some(Duration::ZERO),
        ..JobSpec::new("Web")
    };
    let (plan, _) = Plan::new(vec![spec], 0, Defaults::default()).unwrap();
    let config = MachineConfig {
        cleanup: true,
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(plan, config);
    let mut now = Duration::ZERO;
    loop {
        match machine.poll(now) {
            Step::Perform(task) => {
                let (outcome, by) = match (task.attempt, task.phase) {
                    (_, Phase::Cleanup) => (Outcome::Pass, Performer::Nobody),
                    (1, Phase::Check) => (
                        Outcome::Fail(Failure::new("down")),
                        Performer::Worker("web1".into()),
                    ),
                    (1, _) => (
                        Outcome::Fail(Failure::new("lost").with_kind(FailureKind::Lost)),
                        Performer::Worker("web1".into()),
                    ),
                    (_, Phase::Check) => (
                        Outcome::Fail(Failure::new("down")),
                        Performer::Worker("web2".into()),
                    ),
                    _ => (Outcome::Pass, Performer::Worker("web2".into())),
                };
                now += secs(1);
                machine.handle_outcome_by(task, outcome, by, now).unwrap();
            }
            Step::Wait(at) => now = at.max(now),
            Step::Done => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let report = machine.into_report_card();
    let web = report.job("Web").unwrap();
    assert_eq!((web.status(), web.tries()), (Status::Fixed, 2));
    assert_eq!(
        web.performers(),
        [Some("web1".to_owned()), Some("web2".to_owned())]
    );
    assert_eq!(web.performed_by(2), Some("web2"));
    let performed: Vec<(Phase, u32, bool)> = web
        .phases()
        .iter()
        .map(|record| (record.phase, record.attempt, record.performed))
        .collect();
    assert_eq!(
        performed,
        [
            (Phase::Check, 1, true),
            (Phase::Run, 1, false),
            (Phase::Recheck, 1, false),
            (Phase::Check, 2, true),
            (Phase::Run, 2, true),
            (Phase::Recheck, 2, true),
            (Phase::Cleanup, 2, false),
        ]
    );
    let json = serde_json::to_string(&report).unwrap();
    assert!(json.contains(r#""performed_by":["web1","web2"]"#), "{json}");
    let read: dojobber::Report = serde_json::from_str(&json).unwrap();
    assert_eq!(read, report);

    let (plan, _) = Plan::new(vec![JobSpec::new("Here")], 0, Defaults::default()).unwrap();
    let local = drive_passing(Machine::new(plan, MachineConfig::default()));
    assert!(local.job("Here").unwrap().performers().is_empty());
    let json = serde_json::to_string(&local).unwrap();
    assert!(!json.contains("performed_by"), "{json}");
}
