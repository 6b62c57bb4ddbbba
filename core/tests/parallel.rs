//! The machine with several phases in flight, driven in virtual time by
//! the testkit's simulator: overlapping phases, retry delays that hold no
//! worker, concurrency groups, fail-fast, time limits, cancellation and
//! the run deadline.

use std::time::Duration;

use dojobber::{Phase, Status};
use dojobber_testkit::{Mock, SimConfig, Simulation, Suite, TraceEntry, simulate};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A job of a virtual suite: each phase takes 1 s, retries are immediate.
fn job(name: &'static str) -> Mock {
    Mock::new(name).takes(secs(1)).retry_delay(Duration::ZERO)
}

/// A check that fails until the job has run `runs` times.
fn needs_runs(mock: Mock, runs: u32) -> Mock {
    mock.check_fails_until_runs(runs, "not yet")
}

fn run(mocks: &[Mock], config: SimConfig) -> Simulation {
    simulate(&Suite::new(mocks.to_vec()), config)
}

fn parallel(workers: usize) -> SimConfig {
    SimConfig::new().workers(workers).cleanup(false)
}

/// The phases the machine abandoned, by job name, with when.
fn abandoned(run: &Simulation) -> Vec<(String, Duration)> {
    run.abandoned
        .iter()
        .map(|(task, at)| (run.plan.name(task.job).to_owned(), *at))
        .collect()
}

/// The most spans of `filter` in flight at one time.
fn most_at_once(spans: &[TraceEntry], filter: impl Fn(&TraceEntry) -> bool) -> usize {
    let mut edges: Vec<(Duration, i32)> = spans
        .iter()
        .filter(|s| filter(s))
        .flat_map(|s| [(s.at, 1), (s.end, -1)])
        .collect();
    edges.sort_by_key(|&(at, delta)| (at, delta)); // ends before starts at equal times
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

fn passed_at(spans: &[TraceEntry], job: &str) -> Duration {
    spans
        .iter()
        .filter(|s| s.job == job && s.outcome.is_pass() && s.phase != Phase::Run)
        .map(|s| s.end)
        .next()
        .unwrap_or_else(|| panic!("{job} never passed"))
}

fn status(run: &Simulation, job: &str) -> Status {
    run.report.job(job).unwrap().status()
}

#[test]
fn independent_jobs_overlap_up_to_the_worker_count_and_deps_are_honoured() {
    let specs = [
        job("Root").deps(["A", "B", "C", "D", "E"]),
        job("A").takes(secs(3)),
        needs_runs(job("B").takes(secs(1)), 1),
        job("C").deps(["B"]).takes(secs(2)),
        job("D").takes(secs(5)),
        job("E").deps(["A", "C"]),
    ];
    let run = run(&specs, parallel(3));
    assert!(run.report.is_success(), "{:?}", run.report);
    assert_eq!(most_at_once(&run.performed, |_| true), 3);
    for spec in &specs {
        for span in run.performed.iter().filter(|s| s.job == spec.name()) {
            for dep in spec.dep_names() {
                assert!(
                    span.at >= passed_at(&run.performed, dep),
                    "{} before {dep}",
                    span.job
                );
            }
        }
    }
    // Done with the critical path: B's three phases, C, E, Root = 3+2+1+1 s.
    assert_eq!(run.performed.iter().map(|s| s.end).max(), Some(secs(7)));
}

#[test]
fn a_retry_waiting_for_its_delay_holds_no_worker() {
    let specs = [
        job("Root").deps(["Flaky", "Long1", "Long2"]),
        needs_runs(job("Flaky"), 2).retry_delay(secs(10)),
        job("Long1").takes(secs(4)),
        job("Long2").takes(secs(4)),
    ];
    let run = run(&specs, parallel(2));
    let flaky: Vec<_> = run.performed.iter().filter(|s| s.job == "Flaky").collect();
    // Try 1: check 0-1, run 1-2, recheck 2-3; retry at 3 + 10 s.
    assert_eq!(
        (flaky[3].attempt, flaky[3].phase, flaky[3].at),
        (2, Phase::Check, secs(13))
    );
    // Meanwhile both workers went to the long jobs, the second as soon as
    // Flaky's first try freed its worker.
    let long2 = run.performed.iter().find(|s| s.job == "Long2").unwrap();
    assert_eq!(long2.at, secs(3));
    assert!(run.report.is_success());
}

#[test]
fn a_concurrency_group_limits_its_jobs_whatever_the_workers() {
    let mut specs = vec![job("Root").deps(["a1", "a2", "a3", "a4", "a5", "other1", "other2"])];
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        specs.push(needs_runs(job(name).group("apt"), 1));
    }
    specs.push(job("other1").takes(secs(3)));
    specs.push(job("other2").takes(secs(3)));
    let run = run(&specs, parallel(8).limit_group("apt", 2));
    assert!(run.report.is_success());
    let in_apt = |s: &TraceEntry| s.job.starts_with('a');
    // A try (check, run, recheck) holds its place in the group.
    let tries: Vec<TraceEntry> = ["a1", "a2", "a3", "a4", "a5"]
        .iter()
        .map(|job| {
            let phases: Vec<&TraceEntry> = run.performed.iter().filter(|s| s.job == *job).collect();
            TraceEntry {
                at: phases.first().unwrap().at,
                end: phases.last().unwrap().end,
                ..phases[0].clone()
            }
        })
        .collect();
    assert_eq!(most_at_once(&tries, |_| true), 2);
    assert_eq!(
        most_at_once(&run.performed, |s| !in_apt(s) && s.job != "Root"),
        2,
        "others are not held back"
    );
}

#[test]
fn fail_fast_starts_no_new_try_after_a_final_failure() {
    let specs = [
        job("Root").deps(["Doomed", "Slow", "Later"]),
        needs_runs(job("Doomed"), 99).tries(1),
        job("Slow").takes(secs(10)),
        job("Later").deps(["Slow"]),
    ];
    let run = run(&specs, parallel(2).fail_fast());
    assert_eq!(status(&run, "Doomed"), Status::Failed);
    assert_eq!(
        status(&run, "Slow"),
        Status::Passed,
        "a try under way finishes"
    );
    let later = run.report.job("Later").unwrap();
    assert_eq!(
        (later.status(), later.blocked_reason()),
        (Status::Blocked, Some(dojobber::StopReason::FailFast))
    );
    assert_eq!(run.report.stopped, Some(dojobber::StopReason::FailFast));
}

/// A job whose phases take 5 s against a 2 s limit, with 2 tries 1 s apart.
fn hangs_past_its_limit() -> [Mock; 2] {
    [
        job("Root").deps(["Hangs"]),
        job("Hangs")
            .takes(secs(5))
            .time_limit(secs(2))
            .tries(2)
            .retry_delay(secs(1)),
    ]
}

#[test]
fn an_over_time_phase_fails_its_try_and_the_job_waits_for_it_to_return() {
    let specs = hangs_past_its_limit();
    let run = run(&specs, parallel(4));
    assert_eq!(
        abandoned(&run),
        [("Hangs".to_owned(), secs(2)), ("Hangs".to_owned(), secs(7))]
    );
    let hangs = run.report.job("Hangs").unwrap();
    assert_eq!((hangs.status(), hangs.tries()), (Status::Failed, 2));
    let error = hangs.last_error().unwrap();
    assert_eq!(error.message, "timed out after 2s (it returned after 5s)");
    assert_eq!(error.returned_after, Some(secs(5)));
    assert!(error.causes.is_empty(), "{error:?}");
    // The phase's record says it too, and the JSON carries it as a field.
    let phases = hangs.phases();
    let last = phases.last().unwrap().error.as_deref().unwrap();
    assert_eq!(last.returned_after, Some(secs(5)));
    let json = serde_json::to_value(&run.report).unwrap();
    let hangs_json = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|job| job["name"] == "Hangs")
        .unwrap();
    assert_eq!(hangs_json["last_error"]["returned_after_secs"], 5.0);
    let read: dojobber::Report = serde_json::from_value(json).unwrap();
    assert_eq!(read, run.report);
    // Its delay ran out at 3 s, but the retry waited for the first check
    // to return, at 5 s.
    let second = run.performed.iter().find(|s| s.attempt == 2).unwrap();
    assert_eq!(second.at, secs(5));
}

#[test]
fn a_cancellable_over_time_phase_is_abandoned_at_its_limit() {
    let specs = hangs_past_its_limit();
    let run = run(&specs, parallel(4).abandoned_phases_stop());
    assert_eq!(
        abandoned(&run),
        [("Hangs".to_owned(), secs(2)), ("Hangs".to_owned(), secs(5))]
    );
    let error = run.report.job("Hangs").unwrap().last_error().unwrap();
    // The second try started at 3 s and was cancelled at its 2 s limit.
    assert_eq!(error.message, "timed out after 2s");
}

#[test]
fn cancelling_lets_phases_in_flight_finish_and_blocks_what_was_not_reached() {
    let specs = [
        job("Root").deps(["Running", "Interrupted", "NotReached"]),
        job("Running").takes(secs(10)),
        needs_runs(job("Interrupted"), 1).takes(secs(2)),
        job("NotReached").deps(["Running"]),
    ];
    let run = run(&specs, parallel(2).cancel_at(secs(3)));
    // The machine asks to cancel what is in flight; threads cannot, so the
    // phases run on and their outcomes count.
    assert_eq!(
        abandoned(&run),
        [
            ("Running".to_owned(), secs(3)),
            ("Interrupted".to_owned(), secs(3))
        ]
    );
    assert_eq!(
        status(&run, "Running"),
        Status::Passed,
        "its check finished and counts"
    );
    // Interrupted's check failed at 2 s; its run started 2-4 s; no recheck.
    let interrupted = run.report.job("Interrupted").unwrap();
    assert_eq!(interrupted.status(), Status::Failed);
    assert_eq!(
        interrupted.last_error().unwrap().message,
        "cancelled during its try"
    );
    let not_reached = run.report.job("NotReached").unwrap();
    assert_eq!(
        (not_reached.status(), not_reached.blocked_reason()),
        (Status::Blocked, Some(dojobber::StopReason::Cancelled))
    );
    assert_eq!(run.report.stopped, Some(dojobber::StopReason::Cancelled));
    assert_eq!(
        run.performed.last().unwrap().end,
        secs(10),
        "the driver waited for the phase to return"
    );
}

#[test]
fn the_run_deadline_stops_new_phases() {
    let specs = [
        job("Root").deps(["First", "Second"]),
        job("First").takes(secs(4)),
        job("Second").deps(["First"]),
    ];
    // Threads: the phase in flight at the deadline runs on and counts.
    let run = run(&specs, parallel(2).deadline(secs(3)));
    assert_eq!(run.report.stopped, Some(dojobber::StopReason::Deadline));
    assert_eq!(
        status(&run, "First"),
        Status::Passed,
        "the phase in flight finished"
    );
    let second = run.report.job("Second").unwrap();
    assert_eq!(
        (second.status(), second.blocked_reason()),
        (Status::Blocked, Some(dojobber::StopReason::Deadline))
    );
}

#[test]
fn one_worker_keeps_the_reference_order_and_rounds() {
    let specs = [
        job("Root").deps(["Flaky", "Steady"]),
        needs_runs(job("Flaky"), 2).retry_delay(secs(100)),
        job("Steady"),
    ];
    let run = run(&specs, parallel(1));
    let order: Vec<String> = run
        .performed
        .iter()
        .map(|s| format!("{}.{}", s.job, s.phase))
        .collect();
    assert_eq!(
        order,
        [
            "Flaky.check",
            "Flaky.run",
            "Flaky.recheck",
            "Steady.check",
            "Flaky.check",
            "Flaky.run",
            "Flaky.recheck",
            "Root.check"
        ]
    );
    assert_eq!(run.report.rounds, 2);
}

#[test]
fn the_run_deadline_cuts_a_wait_for_a_retry_short() {
    let specs = [
        job("Root").deps(["Flaky"]),
        needs_runs(job("Flaky"), 2).retry_delay(secs(3600)),
    ];
    for workers in [1, 2] {
        let config = parallel(workers).deadline(secs(10)).abandoned_phases_stop();
        let run = run(&specs, config);
        assert_eq!(run.report.stopped, Some(dojobber::StopReason::Deadline));
        assert_eq!(
            run.report.elapsed,
            secs(10),
            "{workers} workers: woke at the deadline"
        );
        let flaky = run.report.job("Flaky").unwrap();
        assert_eq!((flaky.status(), flaky.tries()), (Status::Failed, 1));
    }
}

#[test]
fn several_at_a_time_the_job_holding_up_the_longest_chain_starts_first() {
    let specs = [
        job("Root").deps(["Short1", "Short2", "Short3", "Top"]),
        job("Short1"),
        job("Short2"),
        job("Short3"),
        job("Top").deps(["Middle"]),
        job("Middle").deps(["Bottom"]),
        job("Bottom"),
    ];
    let run = run(&specs, parallel(2));
    let started: Vec<(&str, Duration)> = run
        .performed
        .iter()
        .map(|s| (s.job.as_str(), s.at))
        .collect();
    // Bottom comes after the short jobs in the reference order, but three
    // jobs wait on it: it starts at once, beside the first short job.
    assert!(started.contains(&("Bottom", secs(0))), "{started:?}");
    assert!(started.contains(&("Short1", secs(0))), "{started:?}");
    // The chain and the short jobs then share the workers: 4 s in all,
    // where the reference order would take 5 s (the chain would start late).
    assert_eq!(run.performed.iter().map(|s| s.end).max(), Some(secs(4)));
}
