//! The machine's own account of a run while it goes: its configuration,
//! its round, whether the run is over, and the report card mid-run.

use std::time::Duration;

use dojobber::engine::{Defaults, Machine, MachineConfig, MachineError, Step};
use dojobber::observe::Event;
use dojobber::{Failure, Outcome, Phase, Status};
use dojobber_testkit::{Act, Mock, SimConfig, Suite, check_invariants, simulate};

/// Performs one step the way the mocks say, at time zero, returning the
/// phase and whether the machine said the run was over when it handed it
/// out; `None` when done.
fn step(machine: &mut Machine, suite: &Suite, runs: &mut [u32]) -> Option<(Phase, bool)> {
    match machine.poll(Duration::ZERO) {
        Step::Perform(task) => {
            let over = machine.is_run_over();
            let name = machine.plan().name(task.job).to_owned();
            let mock = suite.mock(&name).expect("a mock");
            let outcome = match mock.decide(task.phase, task.attempt, runs[task.job.index()]) {
                Act::Pass => Outcome::Pass,
                Act::Fail(message) | Act::Panic(message) => Outcome::Fail(Failure::new(message)),
            };
            if task.phase == Phase::Run {
                runs[task.job.index()] += 1;
            }
            machine
                .handle_outcome(task, outcome, Duration::ZERO)
                .expect("the phase handed out");
            Some((task.phase, over))
        }
        Step::Done => None,
        other => panic!("nothing waits at time zero: {other:?}"),
    }
}

fn machine(suite: &Suite, config: MachineConfig) -> Machine {
    let plan = suite.plan(Defaults {
        tries: 3,
        retry_delay: Duration::ZERO,
    });
    Machine::new(plan, config)
}

#[test]
fn the_machine_keeps_the_configuration_it_was_given() {
    let suite = Suite::new([Mock::new("Only")]);
    let config = MachineConfig {
        no_act: true,
        cleanup: false,
        ..MachineConfig::default()
    };
    let machine = machine(&suite, config);
    assert!(machine.config().no_act);
    assert!(!machine.config().cleanup);
}

#[test]
fn round_and_run_over_follow_the_run() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Flaky"]),
        Mock::new("Flaky").check_fails_until_runs(2, "not yet"),
    ]);
    let mut machine = machine(&suite, MachineConfig::default());
    let mut runs = vec![0; machine.plan().len()];
    assert_eq!(machine.round(), 1);
    assert!(!machine.is_run_over());
    let mut rounds_seen = vec![machine.round()];
    let mut over_when_handed_out = Vec::new();
    let mut statuses_mid_run = None;
    while let Some(phase_and_over) = step(&mut machine, &suite, &mut runs) {
        over_when_handed_out.push(phase_and_over);
        if rounds_seen.last() != Some(&machine.round()) {
            rounds_seen.push(machine.round());
        }
        let card = machine.report_card();
        if statuses_mid_run.is_none()
            && card.job_at(0).expect("the report has every job").tries() == 1
        {
            statuses_mid_run = Some((
                card.job_at(0).expect("the report has every job").status(),
                card.job_at(1).expect("the report has every job").status(),
            ));
        }
    }
    assert_eq!(rounds_seen, [1, 2]);
    assert_eq!(machine.round(), 2);
    assert!(machine.is_run_over());
    // The run is over when the cleanups are handed out, not before.
    use Phase::*;
    assert_eq!(
        over_when_handed_out,
        [
            (Check, false),
            (Run, false),
            (Recheck, false),
            (Check, false),
            (Run, false),
            (Recheck, false),
            (Check, false),
            (Cleanup, true),
        ]
    );
    // After Flaky's first failed try, it is still pending, and so is Root.
    assert_eq!(statuses_mid_run, Some((Status::Pending, Status::Pending)));
    assert_eq!(machine.report_card().rounds, 2);
}

#[test]
fn a_no_act_run_refuses_to_clean_up() {
    let suite = Suite::new([Mock::new("Dusty").check(Act::fail("dusty"))]);
    let config = MachineConfig {
        no_act: true,
        cleanup: false,
        ..MachineConfig::default()
    };
    let mut machine = machine(&suite, config);
    let mut runs = vec![0; 1];
    while step(&mut machine, &suite, &mut runs).is_some() {}
    assert_eq!(
        machine.start_cleanup(),
        Err(MachineError::CleanupNotAllowed(
            "no-act runs have nothing to clean"
        ))
    );
    assert_eq!(machine.poll(Duration::ZERO), Step::Done);
}

#[test]
fn an_acting_run_with_cleanup_off_hands_out_no_cleanup_until_asked() {
    let suite = Suite::new([Mock::new("Dusty").check_fails_until_runs(1, "dusty")]);
    let config = MachineConfig {
        cleanup: false,
        ..MachineConfig::default()
    };
    let mut machine = machine(&suite, config);
    let mut runs = vec![0; 1];
    let mut phases = Vec::new();
    while let Step::Perform(task) = machine.poll(Duration::ZERO) {
        phases.push(task.phase);
        let outcome = if task.phase == Phase::Check {
            Outcome::Fail(Failure::new("dusty"))
        } else {
            Outcome::Pass
        };
        machine
            .handle_outcome(task, outcome, Duration::ZERO)
            .unwrap();
    }
    assert_eq!(phases, [Phase::Check, Phase::Run, Phase::Recheck]);
    machine.start_cleanup().unwrap();
    assert_eq!(
        step(&mut machine, &suite, &mut runs),
        Some((Phase::Cleanup, true))
    );
    assert_eq!(step(&mut machine, &suite, &mut runs), None);
}

#[test]
fn nothing_else_is_handed_out_while_a_phase_is_in_flight() {
    let suite = Suite::new([Mock::new("Root").deps(["A"]), Mock::new("A")]);
    let mut machine = machine(&suite, MachineConfig::default());
    let Step::Perform(task) = machine.poll(Duration::ZERO) else {
        panic!("A's check comes first");
    };
    assert_eq!(machine.poll(Duration::ZERO), Step::Idle);
    assert_eq!(machine.poll(Duration::from_secs(60)), Step::Idle);
    machine
        .handle_outcome(task, Outcome::Pass, Duration::ZERO)
        .unwrap();
    let Step::Perform(next) = machine.poll(Duration::ZERO) else {
        panic!("Root's check is next");
    };
    assert_eq!(machine.plan().name(next.job), "Root");
}

/// A job that failed a try and waits in the ready queue for its retry when
/// the run stops (here: cancelled while it waits for its delay) still
/// finishes, failed, with an event.
#[test]
fn a_stop_while_a_retry_waits_finishes_the_job() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Slow"]),
        Mock::new("Slow")
            .retry_delay(Duration::from_secs(10))
            .check(Act::fail("no")),
    ]);
    let sim = simulate(&suite, SimConfig::new().cancel_at(Duration::from_secs(5)));
    let slow = sim.plan.find("Slow").unwrap();
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::JobFinished { job, .. } if *job == slow)),
        "Slow's JobFinished is missing"
    );
    assert_eq!(sim.report.elapsed, Duration::from_secs(5));
    assert_eq!(sim.report.stopped, Some(dojobber::StopReason::Cancelled));
    check_invariants(&sim).unwrap();
}

/// With one phase at a time, a wait for a retry's delay must end at the
/// run's deadline, where the run stops, not at the retry.
#[test]
fn a_wait_for_a_retry_does_not_outlast_the_deadline() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Slow"]),
        Mock::new("Slow")
            .retry_delay(Duration::from_secs(10))
            .check(Act::fail("no")),
    ]);
    let sim = simulate(&suite, SimConfig::new().deadline(Duration::from_secs(5)));
    assert_eq!(
        sim.report.elapsed,
        Duration::from_secs(5),
        "the run stops at its deadline"
    );
    check_invariants(&sim).unwrap();
}

/// The same with fail-fast: the second round's first job fails for good,
/// and the next one, already queued for its retry, finishes too.
#[test]
fn a_fail_fast_stop_finishes_the_jobs_queued_for_a_retry() {
    let suite = Suite::new([
        Mock::new("Root").deps(["First", "Second"]),
        Mock::new("First").tries(2).check(Act::fail("no")),
        Mock::new("Second").tries(3).check(Act::fail("no")),
    ]);
    let sim = simulate(
        &suite,
        SimConfig::new().defaults(3, Duration::ZERO).fail_fast(),
    );
    let second = sim.plan.find("Second").unwrap();
    assert!(
        sim.events
            .iter()
            .any(|e| matches!(e, Event::JobFinished { job, .. } if *job == second)),
        "Second's JobFinished is missing"
    );
    assert_eq!(sim.report.job("Second").unwrap().tries(), 1);
    check_invariants(&sim).unwrap();
}

/// A phase over its job's time limit fails its try, and the failure says
/// the limit as people write it.
#[test]
fn time_limits_are_named_as_people_write_them() {
    let cases = [
        (Duration::from_millis(250), "250ms"),
        (Duration::from_millis(999), "999ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_secs(59), "59s"),
        (Duration::from_secs(60), "1m 0s"),
        (Duration::from_secs(125), "2m 5s"),
    ];
    for (limit, said) in cases {
        let suite = Suite::new([Mock::new("Slow")
            .tries(1)
            .time_limit(limit)
            .takes(limit + Duration::from_millis(1))]);
        let sim = simulate(&suite, SimConfig::new());
        check_invariants(&sim).unwrap();
        let job = sim.report.job_at(0).expect("the report has every job");
        let error = job.last_error().unwrap();
        // One worker sees it late, when it returns, and says when (when
        // that reads differently from the limit: not `1m 0s` twice).
        let message = format!("timed out after {said}");
        assert!(error.message.starts_with(&message), "{error:?}");
    }
    // A phase that takes exactly its limit is in time.
    let suite = Suite::new([Mock::new("Punctual")
        .time_limit(Duration::from_secs(1))
        .takes(Duration::from_secs(1))]);
    for workers in [1, 2] {
        let sim = simulate(&suite, SimConfig::new().workers(workers));
        let punctual = sim.report.job_at(0).expect("the report has every job");
        assert_eq!(punctual.status(), Status::Passed, "{workers} workers");
    }
}

/// The machine's own account of a stop and of the phases in flight.
#[test]
fn stopped_and_in_flight_say_where_the_run_is() {
    let suite = Suite::new([
        Mock::new("Root").deps(["A", "B"]),
        Mock::new("A"),
        Mock::new("B"),
    ]);
    let config = MachineConfig {
        workers: 2,
        ..MachineConfig::default()
    };
    let mut machine = machine(&suite, config);
    assert_eq!((machine.stopped(), machine.in_flight()), (None, 0));
    let Step::Perform(a) = machine.poll(Duration::ZERO) else {
        panic!("A first");
    };
    assert_eq!(machine.in_flight(), 1);
    let Step::Perform(b) = machine.poll(Duration::ZERO) else {
        panic!("B beside A");
    };
    assert_eq!(machine.in_flight(), 2);
    machine.stop(dojobber::engine::StopReason::Cancelled);
    assert_eq!(
        machine.stopped(),
        Some(dojobber::engine::StopReason::Cancelled)
    );
    // A second stop changes nothing.
    machine.stop(dojobber::engine::StopReason::FailFast);
    assert_eq!(
        machine.stopped(),
        Some(dojobber::engine::StopReason::Cancelled)
    );
    for task in [a, b] {
        machine
            .handle_outcome(task, Outcome::Pass, Duration::ZERO)
            .unwrap();
    }
    assert_eq!(machine.in_flight(), 0);
    while let Step::Perform(task) = machine.poll(Duration::ZERO) {
        assert_eq!(
            task.phase,
            Phase::Cleanup,
            "nothing but cleanups after a stop"
        );
        machine
            .handle_outcome(task, Outcome::Pass, Duration::ZERO)
            .unwrap();
    }
    let report = machine.report_card();
    assert_eq!(report.stopped, Some(dojobber::StopReason::Cancelled));
    assert_eq!(report.job("Root").unwrap().status(), Status::Blocked);
    assert_eq!(
        report.job("Root").unwrap().blocked_reason(),
        Some(dojobber::StopReason::Cancelled)
    );
}

/// With phases in flight, the machine asks to be woken at the run's
/// deadline, where the run stops, rather than only when a phase reports.
#[test]
fn a_run_in_flight_wakes_at_its_deadline() {
    let suite = Suite::new([Mock::new("Root").deps(["A"]), Mock::new("A")]);
    let config = MachineConfig {
        workers: 2,
        deadline: Some(Duration::from_secs(5)),
        ..MachineConfig::default()
    };
    let mut machine = machine(&suite, config);
    let Step::Perform(a) = machine.poll(Duration::ZERO) else {
        panic!("A first");
    };
    assert_eq!(
        machine.poll(Duration::from_secs(1)),
        Step::Wait(Duration::from_secs(5))
    );
    // At the deadline the run stops: the machine asks to cancel A's phase;
    // it goes on here, and then nothing.
    assert_eq!(machine.poll(Duration::from_secs(5)), Step::Abandon(a));
    assert_eq!(machine.poll(Duration::from_secs(5)), Step::Idle);
    assert_eq!(
        machine.stopped(),
        Some(dojobber::engine::StopReason::Deadline)
    );
    machine
        .handle_outcome(a, Outcome::Pass, Duration::from_secs(6))
        .unwrap();
    assert_eq!(machine.poll(Duration::from_secs(6)), Step::Done);
    assert_eq!(
        machine.report_card().job("Root").unwrap().status(),
        Status::Blocked
    );
}

/// Once a run has stopped, its deadline is no reason to wake: only the
/// phases in flight are awaited.
#[test]
fn a_stopped_run_waits_only_for_its_phases_in_flight() {
    let suite = Suite::new([Mock::new("Root").deps(["A"]), Mock::new("A")]);
    let config = MachineConfig {
        workers: 2,
        deadline: Some(Duration::from_secs(5)),
        ..MachineConfig::default()
    };
    let mut machine = machine(&suite, config);
    let Step::Perform(a) = machine.poll(Duration::ZERO) else {
        panic!("A first");
    };
    machine.stop(dojobber::engine::StopReason::Cancelled);
    assert_eq!(machine.poll(Duration::from_secs(1)), Step::Abandon(a));
    assert_eq!(machine.poll(Duration::from_secs(1)), Step::Idle);
    machine
        .handle_outcome(a, Outcome::Pass, Duration::from_secs(2))
        .unwrap();
    assert_eq!(machine.poll(Duration::from_secs(2)), Step::Done);
}
