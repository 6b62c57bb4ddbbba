//! The invariant checker catches every kind of broken run: each test takes
//! a correct simulated run, breaks one rule in its record, and expects that
//! rule, and the job at fault, in the violation.

use std::time::Duration;

use dojobber::engine::{Defaults, JobId};
use dojobber::observe::Event;
use dojobber::{Phase, Status};
use dojobber_testkit::{
    Act, Invariant, Mock, SimConfig, Simulation, Suite, Violation, check_invariants, simulate,
};

fn zero_delay() -> SimConfig {
    SimConfig::new().defaults(3, Duration::ZERO)
}

/// A correct run, checked before it is broken.
fn run(suite: &Suite, config: SimConfig) -> Simulation {
    let sim = simulate(suite, config);
    check_invariants(&sim).expect("the machine's own run keeps every rule");
    sim
}

fn id(sim: &Simulation, name: &str) -> JobId {
    sim.plan.find(name).expect("the job is in the plan")
}

/// The job an event is about, if it is about one.
fn job_of(event: &Event) -> Option<JobId> {
    match event {
        Event::TryStarted { job, .. }
        | Event::JobFinished { job, .. }
        | Event::JobBlocked { job, .. } => Some(*job),
        Event::PhaseStarted { task, .. } | Event::PhaseFinished { task, .. } => Some(task.job),
        _ => None,
    }
}

/// Indexes of the events of `name`'s try `attempt`: from its `TryStarted`
/// to its last phase (and its `JobFinished`, if the try finished it).
fn try_events(sim: &Simulation, name: &str, attempt: u32) -> std::ops::Range<usize> {
    let job = id(sim, name);
    let start = sim
        .events
        .iter()
        .position(|e| *e == Event::TryStarted { job, attempt })
        .expect("the try happened");
    let mut end = start + 1;
    for (i, event) in sim.events.iter().enumerate().skip(start + 1) {
        match event {
            Event::TryStarted { job: other, .. } if *other == job => break,
            Event::RunFinished { .. } => break,
            e if job_of(e) == Some(job) => end = i + 1,
            _ => {}
        }
    }
    start..end
}

/// The `PhaseStarted` and `PhaseFinished` events of one phase.
fn phase_events(sim: &Simulation, name: &str, phase: Phase, attempt: u32) -> Vec<usize> {
    let job = id(sim, name);
    sim.events
        .iter()
        .enumerate()
        .filter(|(_, e)| match e {
            Event::PhaseStarted { task, .. } | Event::PhaseFinished { task, .. } => {
                task.job == job && task.phase == phase && task.attempt == attempt
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

fn remove(sim: &mut Simulation, mut indexes: Vec<usize>) {
    indexes.sort_unstable();
    for i in indexes.into_iter().rev() {
        sim.events.remove(i);
    }
}

/// Moves the events in `block` to just before index `to` (`to < block.start`).
fn move_before(sim: &mut Simulation, block: std::ops::Range<usize>, to: usize) {
    let moved: Vec<Event> = sim.events.drain(block).collect();
    sim.events.splice(to..to, moved);
}

#[track_caller]
fn expect_violation(sim: &Simulation, invariant: Invariant, job: &str) -> Violation {
    let violation = check_invariants(sim).expect_err("the broken run is caught");
    assert_eq!(
        (violation.invariant, violation.job.as_deref()),
        (invariant, Some(job)),
        "{violation}"
    );
    assert!(
        violation.to_string().starts_with(&format!("{job}: ")),
        "the message names the job: {violation}"
    );
    violation
}

#[test]
fn a_job_tried_before_its_dep_passed() {
    let suite = Suite::new([Mock::new("Root").deps(["Dep"]), Mock::new("Dep")]);
    let mut sim = run(&suite, zero_delay());
    let root = try_events(&sim, "Root", 1);
    let dep = try_events(&sim, "Dep", 1);
    move_before(&mut sim, root, dep.start);
    let violation = expect_violation(&sim, Invariant::DepsPassFirst, "Root");
    assert!(violation.detail.contains("Dep"), "{violation}");
}

#[test]
fn a_ready_job_never_tried() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Broken", "Idle"]),
        Mock::new("Broken").tries(1).check(Act::fail("no")),
        Mock::new("Idle"),
    ]);
    let mut sim = run(&suite, zero_delay());
    let idle = try_events(&sim, "Idle", 1);
    remove(&mut sim, idle.collect());
    expect_violation(&sim, Invariant::ReadyJobsAreTried, "Idle");
}

#[test]
fn a_job_blocked_by_the_wrong_dep() {
    let suite = Suite::new([
        Mock::new("Root").deps(["First", "Second"]),
        Mock::new("First").tries(1).check(Act::fail("no")),
        Mock::new("Second").tries(1).check(Act::fail("no")),
    ]);
    let mut sim = run(&suite, zero_delay());
    let root = id(&sim, "Root");
    let second = id(&sim, "Second");
    for event in &mut sim.events {
        if let Event::JobBlocked { job, by } = event
            && *job == root
        {
            *by = Some(second);
        }
    }
    expect_violation(&sim, Invariant::BlockedJobsAreNotTried, "Root");
}

#[test]
fn a_job_reported_tried_though_blocked() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Broken"]),
        Mock::new("Broken").tries(1).check(Act::fail("no")),
    ]);
    let mut sim = run(&suite, zero_delay());
    tamper(&mut sim, "Root", "tries", 1.into());
    expect_violation(&sim, Invariant::StatusAgreesWithTrace, "Root");
}

#[test]
fn a_job_tried_more_than_its_tries() {
    let suite = Suite::new([Mock::new("Stubborn").check(Act::fail("never"))]);
    let mut sim = run(&suite, zero_delay());
    // The same run, judged by a plan that allows only two tries.
    sim.plan = suite.plan(Defaults {
        tries: 2,
        retry_delay: Duration::ZERO,
    });
    let violation = expect_violation(&sim, Invariant::AtMostTries, "Stubborn");
    assert!(violation.detail.contains("used its 2 tries"), "{violation}");
}

#[test]
fn a_job_given_up_with_tries_left() {
    let suite = Suite::new([Mock::new("Stubborn").check(Act::fail("never"))]);
    let mut sim = run(&suite, zero_delay());
    sim.plan = suite.plan(Defaults {
        tries: 4,
        retry_delay: Duration::ZERO,
    });
    expect_violation(&sim, Invariant::AtMostTries, "Stubborn");
}

#[test]
fn a_retry_before_its_delay() {
    let suite = Suite::new([Mock::new("Hasty").check_fails_until_runs(2, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    sim.plan = suite.plan(Defaults {
        tries: 3,
        retry_delay: Duration::from_secs(10),
    });
    let violation = expect_violation(&sim, Invariant::RetryDelay, "Hasty");
    assert!(violation.detail.contains("its delay is 10s"), "{violation}");
}

#[test]
fn a_recheck_without_a_run() {
    let suite = Suite::new([Mock::new("Lazy").check_fails_until_runs(1, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    let run_phase = phase_events(&sim, "Lazy", Phase::Run, 1);
    remove(&mut sim, run_phase);
    let violation = expect_violation(&sim, Invariant::PhaseOrder, "Lazy");
    assert!(
        violation.detail.contains("recheck without a run"),
        "{violation}"
    );
}

#[test]
fn a_run_after_a_passed_check() {
    let suite = Suite::new([Mock::new("Eager").check_fails_until_runs(1, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    let job = id(&sim, "Eager");
    for event in &mut sim.events {
        if let Event::PhaseFinished { task, outcome, .. } = event
            && task.job == job
            && task.phase == Phase::Check
        {
            *outcome = dojobber::Outcome::Pass;
        }
    }
    let violation = expect_violation(&sim, Invariant::PhaseOrder, "Eager");
    assert!(
        violation.detail.contains("run after a passed check"),
        "{violation}"
    );
}

#[test]
fn a_failed_check_left_without_run_and_recheck() {
    let suite = Suite::new([Mock::new("Quitter").tries(1).check(Act::fail("no"))]);
    let mut sim = run(&suite, zero_delay());
    let mut gone = phase_events(&sim, "Quitter", Phase::Run, 1);
    gone.extend(phase_events(&sim, "Quitter", Phase::Recheck, 1));
    remove(&mut sim, gone);
    expect_violation(&sim, Invariant::StatusAgreesWithTrace, "Quitter");
}

#[test]
fn a_run_in_no_act_mode() {
    let suite = Suite::new([Mock::new("Busy").check_fails_until_runs(1, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    sim.config = sim.config.no_act();
    expect_violation(&sim, Invariant::NoActOnlyChecks, "Busy");
}

#[test]
fn a_status_that_disagrees_with_the_trace() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Fixed", "Fine"]),
        Mock::new("Fixed").check_fails_until_runs(1, "not yet"),
        Mock::new("Fine"),
    ]);
    for (job, wrong) in [
        ("Fixed", Status::Passed),
        ("Fine", Status::Fixed),
        ("Root", Status::Failed),
    ] {
        let mut sim = run(&suite, zero_delay());
        tamper(&mut sim, job, "status", wrong.as_str().into());
        expect_violation(&sim, Invariant::StatusAgreesWithTrace, job);
    }
}

#[test]
fn a_finished_event_that_disagrees_with_the_trace() {
    let suite = Suite::new([Mock::new("Fixed").check_fails_until_runs(1, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    for event in &mut sim.events {
        if let Event::JobFinished { status, .. } = event {
            *status = Status::Passed;
        }
    }
    expect_violation(&sim, Invariant::StatusAgreesWithTrace, "Fixed");
}

#[test]
fn a_reported_time_that_disagrees_with_the_trace() {
    let suite = Suite::new([Mock::new("Slow").takes(Duration::from_secs(2))]);
    let mut sim = run(&suite, zero_delay());
    tamper(&mut sim, "Slow", "time_secs", 1.0.into());
    expect_violation(&sim, Invariant::StatusAgreesWithTrace, "Slow");
}

/// Changes one field of one job of the run's report, as its JSON has it.
fn tamper(sim: &mut Simulation, job: &str, field: &str, value: serde_json::Value) {
    let mut json = serde_json::to_value(&sim.report).unwrap();
    let jobs = json["jobs"].as_array_mut().unwrap();
    let entry = jobs.iter_mut().find(|entry| entry["name"] == job).unwrap();
    entry[field] = value;
    sim.report = serde_json::from_value(json).unwrap();
}

fn two_runs() -> Suite {
    Suite::new([
        Mock::new("Root").deps(["First", "Second"]),
        Mock::new("First").check_fails_until_runs(1, "x"),
        Mock::new("Second").check_fails_until_runs(1, "x"),
    ])
}

#[test]
fn cleanups_in_the_order_of_the_runs() {
    let mut sim = run(&two_runs(), zero_delay());
    // Cleanups: Second, then First. Put First's first.
    let first = phase_events(&sim, "First", Phase::Cleanup, 1);
    let second = phase_events(&sim, "Second", Phase::Cleanup, 1);
    let to = second[0];
    move_before(&mut sim, first[0]..first[1] + 1, to);
    let violation = expect_violation(&sim, Invariant::CleanupOrder, "First");
    assert!(violation.detail.contains("Second"), "{violation}");
}

#[test]
fn a_cleanup_missing() {
    let mut sim = run(&two_runs(), zero_delay());
    let first = phase_events(&sim, "First", Phase::Cleanup, 1);
    remove(&mut sim, first);
    expect_violation(&sim, Invariant::CleanupOrder, "First");
}

#[test]
fn a_cleanup_after_a_failed_one() {
    let suite = two_runs();
    let mut sim = run(&suite, zero_delay());
    let second = phase_events(&sim, "Second", Phase::Cleanup, 1);
    if let Event::PhaseFinished { outcome, .. } = &mut sim.events[second[1]] {
        *outcome = dojobber::Outcome::Fail(dojobber::Failure::new("stuck"));
    }
    sim.report.cleanup_failure = Some(dojobber::CleanupFailure {
        job: "Second".into(),
        error: dojobber::Failure::new("stuck"),
    });
    let violation = expect_violation(&sim, Invariant::CleanupOrder, "First");
    assert!(
        violation.detail.contains("Second's cleanup failed"),
        "{violation}"
    );
}

#[test]
fn a_round_out_of_the_reference_order() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Left", "Right"]),
        Mock::new("Left"),
        Mock::new("Right"),
    ]);
    let mut sim = run(&suite, zero_delay());
    let left = try_events(&sim, "Left", 1);
    let right = try_events(&sim, "Right", 1);
    move_before(&mut sim, right, left.start);
    let violation = expect_violation(&sim, Invariant::ReferenceOrderInRounds, "Left");
    assert!(
        violation.detail.contains("tried after Right"),
        "{violation}"
    );
}

#[test]
fn a_retry_in_the_same_round() {
    let suite = Suite::new([Mock::new("Flaky").check_fails_until_runs(2, "not yet")]);
    let mut sim = run(&suite, zero_delay());
    let round_two = sim
        .events
        .iter()
        .position(|e| *e == Event::RoundStarted { round: 2 })
        .unwrap();
    sim.events.remove(round_two);
    sim.report.rounds = 1;
    let violation = expect_violation(&sim, Invariant::ReferenceOrderInRounds, "Flaky");
    assert!(violation.detail.contains("due in round 2"), "{violation}");
}

#[test]
fn time_going_backwards() {
    let suite = Suite::new([Mock::new("Slow").takes(Duration::from_secs(2))]);
    let mut sim = run(&suite, zero_delay());
    for event in &mut sim.events {
        if let Event::PhaseFinished { at, .. } = event {
            *at = Duration::ZERO;
        }
    }
    // Started at 0 s, so ending at 0 s is fine for the clock, not for the report.
    expect_violation(&sim, Invariant::StatusAgreesWithTrace, "Slow");
    let mut sim = run(&suite.fresh(), zero_delay());
    for event in &mut sim.events {
        if let Event::PhaseStarted { at, .. } = event {
            *at = Duration::from_secs(5);
        }
    }
    expect_violation(&sim, Invariant::Time, "Slow");
}

#[test]
fn the_checker_reads_real_runs_too() {
    let suite = two_runs();
    let runner = dojobber::Runner::from_ref(suite.root_job(), ())
        .retry_delay(Duration::ZERO)
        .output(std::io::sink());
    let recorded = dojobber_testkit::record(runner).unwrap();
    check_invariants(&recorded.record).unwrap();
    assert_eq!(
        recorded.record.trace.render_untimed(),
        "round 1\n  First.check: fail \"x\"\n  First.run: pass\n  First.recheck: pass\n  \
         Second.check: fail \"x\"\n  Second.run: pass\n  Second.recheck: pass\n  Root.check: pass\n\
         cleanup\n  Second.cleanup: pass\n  First.cleanup: pass\n"
    );
    // The mocks' calls, as the real driver made them.
    let calls: Vec<String> = suite
        .log()
        .calls()
        .iter()
        .map(|c| format!("{}.{}", c.job, c.phase))
        .collect();
    assert_eq!(calls.len(), 9, "{calls:?}");
}

#[test]
fn more_phases_at_once_than_workers() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Left", "Right"]),
        Mock::new("Left").takes(Duration::from_secs(2)),
        Mock::new("Right").takes(Duration::from_secs(2)),
    ]);
    let mut sim = run(&suite, zero_delay().workers(2));
    sim.config = sim.config.workers(1);
    expect_violation(&sim, Invariant::Concurrency, "Right");
}

#[test]
fn more_jobs_of_a_group_at_once_than_its_limit() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Left", "Right"]),
        Mock::new("Left").group("db").takes(Duration::from_secs(2)),
        Mock::new("Right").group("db").takes(Duration::from_secs(2)),
    ]);
    let mut sim = run(&suite, zero_delay().workers(2));
    sim.config = sim.config.limit_group("db", 1);
    let violation = expect_violation(&sim, Invariant::Concurrency, "Right");
    assert!(violation.detail.contains("group db"), "{violation}");
}

#[test]
fn a_group_limit_holds_jobs_back_in_the_reference_order() {
    let suite = Suite::new([
        Mock::new("Root").deps(["A", "B", "C"]),
        Mock::new("A").group("db").takes(Duration::from_secs(2)),
        Mock::new("B").group("db").takes(Duration::from_secs(2)),
        Mock::new("C").takes(Duration::from_secs(2)),
    ]);
    let sim = run(&suite, zero_delay().workers(3).limit_group("db", 1));
    let starts: Vec<(String, u64)> = sim
        .trace
        .entries
        .iter()
        .map(|e| (e.job.clone(), e.at.as_secs()))
        .collect();
    // B waits for A's slot in the group; C, in no group, goes at once.
    assert_eq!(
        starts,
        [
            ("A".to_owned(), 0),
            ("C".to_owned(), 0),
            ("B".to_owned(), 2),
            ("Root".to_owned(), 4)
        ]
    );
}

#[test]
fn a_phase_over_its_limit_that_did_not_time_out() {
    let slow = |limit: Option<Duration>| {
        let mock = Mock::new("Slow").takes(Duration::from_secs(3));
        Suite::new([match limit {
            Some(limit) => mock.time_limit(limit),
            None => mock,
        }])
    };
    let mut sim = run(&slow(None), zero_delay());
    sim.plan = slow(Some(Duration::from_secs(1))).plan(Defaults {
        tries: 3,
        retry_delay: Duration::ZERO,
    });
    expect_violation(&sim, Invariant::TimeLimit, "Slow");
}

#[test]
fn a_phase_that_timed_out_before_its_limit() {
    let slow = |limit: u64| {
        Suite::new([Mock::new("Slow")
            .tries(1)
            .takes(Duration::from_secs(3))
            .time_limit(Duration::from_secs(limit))])
    };
    // With several workers the phase is abandoned at its limit.
    let mut sim = run(&slow(1), zero_delay().workers(2));
    assert_eq!(
        sim.trace.entries[0].end,
        Duration::from_secs(1),
        "{}",
        sim.trace.render()
    );
    sim.plan = slow(2).plan(Defaults::default());
    let violation = expect_violation(&sim, Invariant::TimeLimit, "Slow");
    assert!(violation.detail.contains("under its limit"), "{violation}");
}

#[test]
fn a_try_after_a_fail_fast_stop() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Doomed", "Later"]),
        Mock::new("Doomed").tries(1).check(Act::fail("no")),
        Mock::new("Later"),
    ]);
    let mut sim = run(&suite, zero_delay());
    sim.config = sim.config.fail_fast();
    expect_violation(&sim, Invariant::Stop, "Later");
}

#[test]
fn a_phase_after_the_deadline() {
    let suite = Suite::new([
        Mock::new("Root").deps(["Early", "Late"]),
        Mock::new("Early").takes(Duration::from_secs(5)),
        Mock::new("Late"),
    ]);
    let mut sim = run(&suite, zero_delay());
    sim.config = sim.config.deadline(Duration::from_secs(5));
    let violation = expect_violation(&sim, Invariant::Stop, "Late");
    assert!(
        violation.detail.contains("after the deadline"),
        "{violation}"
    );
}

#[test]
fn a_run_that_goes_on_past_its_cancellation() {
    let suite = Suite::new([Mock::new("Flaky")
        .retry_delay(Duration::from_secs(10))
        .check_fails_until_runs(2, "not yet")]);
    let mut sim = run(&suite, zero_delay().cancel_at(Duration::from_secs(20)));
    // The retry at 10 s came before the cancellation; claim it came after.
    sim.config.cancel_at = Some(Duration::from_secs(5));
    let violation = expect_violation(&sim, Invariant::Stop, "Flaky");
    assert!(
        violation.detail.contains("after the cancellation"),
        "{violation}"
    );
}
