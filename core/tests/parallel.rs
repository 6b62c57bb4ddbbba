//! The machine with several phases in flight, driven in virtual time:
//! overlapping phases, retry delays that hold no worker, concurrency
//! groups, fail-fast, time limits, cancellation and the run deadline.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use dojobber::{
    Defaults, Failure, JobKind, JobSpec, Machine, MachineConfig, Outcome, Phase, Plan, Report,
    Status, Step, StopReason, Task,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One job of a virtual suite: deps by name, how long each phase takes,
/// and how many runs it needs before its check passes.
#[derive(Clone)]
struct Spec {
    name: &'static str,
    deps: Vec<&'static str>,
    takes: Duration,
    runs_needed: u32,
    tries: Option<u32>,
    retry_delay: Duration,
    group: Option<&'static str>,
    time_limit: Option<Duration>,
}

fn job(name: &'static str) -> Spec {
    Spec {
        name,
        deps: Vec::new(),
        takes: secs(1),
        runs_needed: 0,
        tries: None,
        retry_delay: Duration::ZERO,
        group: None,
        time_limit: None,
    }
}

impl Spec {
    fn deps(mut self, deps: &[&'static str]) -> Self {
        self.deps = deps.to_vec();
        self
    }
    fn takes(mut self, takes: Duration) -> Self {
        self.takes = takes;
        self
    }
    fn needs_runs(mut self, runs: u32) -> Self {
        self.runs_needed = runs;
        self
    }
    fn tries(mut self, tries: u32) -> Self {
        self.tries = Some(tries);
        self
    }
    fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }
    fn group(mut self, group: &'static str) -> Self {
        self.group = Some(group);
        self
    }
    fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }
}

/// A phase as it happened in virtual time.
#[derive(Clone, Debug, PartialEq)]
struct Span {
    job: String,
    phase: Phase,
    attempt: u32,
    start: Duration,
    end: Duration,
    passed: bool,
}

/// How the virtual driver treats [`Step::Abandon`].
#[derive(Clone, Copy, PartialEq)]
enum OnAbandon {
    /// Like threads: the phase runs on to its end.
    RunsOn,
    /// Like async tasks: the phase stops at once.
    Stops,
}

/// Phases in flight, earliest end first: (end, job, phase, attempt, start, passes).
type Flying = BinaryHeap<Reverse<(Duration, u32, Phase, u32, Duration, bool)>>;

struct Run {
    report: Report,
    spans: Vec<Span>,
    abandoned: Vec<(String, Duration)>,
}

/// Drives a machine with `workers` slots in virtual time: each phase takes
/// its job's time; waits jump to the next phase end or deadline. `stop_at`
/// cancels the run at that time.
fn simulate(
    specs: &[Spec],
    config: MachineConfig,
    limits: &[(&str, usize)],
    on_abandon: OnAbandon,
    stop_at: Option<Duration>,
) -> Run {
    let index: HashMap<&str, usize> = specs.iter().enumerate().map(|(i, s)| (s.name, i)).collect();
    let job_specs = specs
        .iter()
        .map(|spec| JobSpec {
            deps: spec.deps.iter().map(|d| index[d]).collect(),
            tries: spec.tries,
            retry_delay: Some(spec.retry_delay),
            group: spec.group.map(String::from),
            time_limit: spec.time_limit,
            kind: JobKind::Normal,
            ..JobSpec::new(spec.name)
        })
        .collect();
    let (plan, _) = Plan::new(
        job_specs,
        0,
        Defaults {
            tries: 3,
            retry_delay: Duration::ZERO,
        },
    )
    .expect("a valid suite");
    let mut machine = Machine::new(plan, config);
    for (group, limit) in limits {
        machine.limit_group(group, *limit);
    }
    let by_id = |machine: &Machine, task: &Task| -> Spec {
        specs[index[machine.plan().name(task.job)]].clone()
    };
    let mut runs: HashMap<String, u32> = HashMap::new();
    let mut flying: Flying = BinaryHeap::new();
    let mut spans = Vec::new();
    let mut abandoned = Vec::new();
    let mut now = Duration::ZERO;
    let mut stop_at = stop_at;
    loop {
        if let Some(at) = stop_at
            && now >= at
        {
            machine.stop(StopReason::Cancelled);
            stop_at = None;
        }
        let step = machine.poll(now);
        let land = |machine: &mut Machine,
                    flying: &mut Flying,
                    spans: &mut Vec<Span>,
                    until: Option<Duration>|
         -> Option<Duration> {
            let &Reverse((end, job, phase, attempt, start, passed)) = flying.peek()?;
            if until.is_some_and(|until| end > until) {
                return None;
            }
            flying.pop();
            let job = dojobber::JobId::from_index(job as usize);
            let outcome = if passed {
                Outcome::Pass
            } else {
                Outcome::Fail(Failure::new("not yet"))
            };
            let task = Task {
                job,
                phase,
                attempt,
            };
            machine.handle_outcome(task, outcome, end).unwrap();
            spans.push(Span {
                job: machine.plan().name(job).to_owned(),
                phase,
                attempt,
                start,
                end,
                passed,
            });
            Some(end)
        };
        match step {
            Step::Perform(task) => {
                let spec = by_id(&machine, &task);
                let ran = runs.entry(spec.name.to_owned()).or_default();
                let passed = match task.phase {
                    Phase::Run => {
                        *ran += 1;
                        true
                    }
                    _ => *ran >= spec.runs_needed,
                };
                let entry = (
                    now + spec.takes,
                    task.job.index() as u32,
                    task.phase,
                    task.attempt,
                    now,
                    passed,
                );
                flying.push(Reverse(entry));
            }
            Step::Abandon(task) => {
                abandoned.push((machine.plan().name(task.job).to_owned(), now));
                if on_abandon == OnAbandon::Stops {
                    let mut rest = BinaryHeap::new();
                    for Reverse(entry) in flying.drain() {
                        if entry.1 as usize == task.job.index() && entry.2 == task.phase {
                            machine.handle_outcome(task, Outcome::Pass, now).unwrap();
                        } else {
                            rest.push(Reverse(entry));
                        }
                    }
                    flying = rest;
                }
            }
            Step::Wait(deadline) => {
                let until = stop_at.map_or(deadline, |at| at.min(deadline));
                now = land(&mut machine, &mut flying, &mut spans, Some(until)).unwrap_or(until);
            }
            Step::Idle => {
                let next = flying
                    .peek()
                    .map(|Reverse(entry)| entry.0)
                    .expect("idle means in flight");
                match stop_at {
                    Some(at) if at < next => now = at,
                    _ => now = land(&mut machine, &mut flying, &mut spans, None).unwrap(),
                }
            }
            Step::Done => break,
        }
    }
    Run {
        report: machine.report_card(),
        spans,
        abandoned,
    }
}

fn parallel(workers: usize) -> MachineConfig {
    MachineConfig {
        max_in_flight: workers,
        cleanup: false,
        ..MachineConfig::default()
    }
}

/// The most spans of `filter` in flight at one time.
fn most_at_once(spans: &[Span], filter: impl Fn(&Span) -> bool) -> usize {
    let mut edges: Vec<(Duration, i32)> = spans
        .iter()
        .filter(|s| filter(s))
        .flat_map(|s| [(s.start, 1), (s.end, -1)])
        .collect();
    edges.sort_by_key(|&(at, delta)| (at, delta)); // ends before starts at equal times
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most as usize
}

fn passed_at(spans: &[Span], job: &str) -> Duration {
    spans
        .iter()
        .filter(|s| s.job == job && s.passed && s.phase != Phase::Run)
        .map(|s| s.end)
        .next()
        .unwrap_or_else(|| panic!("{job} never passed"))
}

fn status(run: &Run, job: &str) -> Status {
    run.report.job(job).unwrap().status
}

#[test]
fn independent_jobs_overlap_up_to_the_worker_count_and_deps_are_honoured() {
    let specs = [
        job("Root").deps(&["A", "B", "C", "D", "E"]),
        job("A").takes(secs(3)),
        job("B").takes(secs(1)).needs_runs(1),
        job("C").deps(&["B"]).takes(secs(2)),
        job("D").takes(secs(5)),
        job("E").deps(&["A", "C"]),
    ];
    let run = simulate(&specs, parallel(3), &[], OnAbandon::RunsOn, None);
    assert!(run.report.success(), "{:?}", run.report);
    assert_eq!(most_at_once(&run.spans, |_| true), 3);
    for spec in &specs {
        for span in run.spans.iter().filter(|s| s.job == spec.name) {
            for dep in &spec.deps {
                assert!(
                    span.start >= passed_at(&run.spans, dep),
                    "{} before {dep}",
                    span.job
                );
            }
        }
    }
    // Done with the critical path: B's three phases, C, E, Root = 3+2+1+1 s.
    assert_eq!(run.spans.iter().map(|s| s.end).max(), Some(secs(7)));
}

#[test]
fn a_retry_waiting_for_its_delay_holds_no_worker() {
    let specs = [
        job("Root").deps(&["Flaky", "Long1", "Long2"]),
        job("Flaky").needs_runs(2).retry_delay(secs(10)),
        job("Long1").takes(secs(4)),
        job("Long2").takes(secs(4)),
    ];
    let run = simulate(&specs, parallel(2), &[], OnAbandon::RunsOn, None);
    let flaky: Vec<_> = run.spans.iter().filter(|s| s.job == "Flaky").collect();
    // Try 1: check 0-1, run 1-2, recheck 2-3; retry at 3 + 10 s.
    assert_eq!(
        (flaky[3].attempt, flaky[3].phase, flaky[3].start),
        (2, Phase::Check, secs(13))
    );
    // Meanwhile both workers went to the long jobs, the second as soon as
    // Flaky's first try freed its worker.
    let long2 = run.spans.iter().find(|s| s.job == "Long2").unwrap();
    assert_eq!(long2.start, secs(3));
    assert!(run.report.success());
}

#[test]
fn a_concurrency_group_limits_its_jobs_whatever_the_workers() {
    let mut specs = vec![job("Root").deps(&["a1", "a2", "a3", "a4", "a5", "other1", "other2"])];
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        specs.push(job(name).group("apt").needs_runs(1));
    }
    specs.push(job("other1").takes(secs(3)));
    specs.push(job("other2").takes(secs(3)));
    let run = simulate(&specs, parallel(8), &[("apt", 2)], OnAbandon::RunsOn, None);
    assert!(run.report.success());
    let in_apt = |s: &Span| s.job.starts_with('a');
    // A try (check, run, recheck) holds its place in the group.
    let tries: Vec<Span> = ["a1", "a2", "a3", "a4", "a5"]
        .iter()
        .map(|job| {
            let phases: Vec<&Span> = run.spans.iter().filter(|s| s.job == *job).collect();
            Span {
                start: phases.first().unwrap().start,
                end: phases.last().unwrap().end,
                ..phases[0].clone()
            }
        })
        .collect();
    assert_eq!(most_at_once(&tries, |_| true), 2);
    assert_eq!(
        most_at_once(&run.spans, |s| !in_apt(s) && s.job != "Root"),
        2,
        "others are not held back"
    );
}

#[test]
fn fail_fast_starts_no_new_try_after_a_final_failure() {
    let specs = [
        job("Root").deps(&["Doomed", "Slow", "Later"]),
        job("Doomed").needs_runs(99).tries(1),
        job("Slow").takes(secs(10)),
        job("Later").deps(&["Slow"]),
    ];
    let config = MachineConfig {
        fail_fast: true,
        ..parallel(2)
    };
    let run = simulate(&specs, config, &[], OnAbandon::RunsOn, None);
    assert_eq!(status(&run, "Doomed"), Status::Failed);
    assert_eq!(
        status(&run, "Slow"),
        Status::Passed,
        "a try under way finishes"
    );
    let later = run.report.job("Later").unwrap();
    assert_eq!(
        (later.status, later.blocked_reason.as_deref()),
        (Status::Blocked, Some("fail-fast: a job failed"))
    );
    assert_eq!(
        run.report.stopped.as_deref(),
        Some("fail-fast: a job failed")
    );
}

/// A job whose phases take 5 s against a 2 s limit, with 2 tries 1 s apart.
fn hangs_past_its_limit() -> [Spec; 2] {
    [
        job("Root").deps(&["Hangs"]),
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
    let run = simulate(&specs, parallel(4), &[], OnAbandon::RunsOn, None);
    assert_eq!(
        run.abandoned,
        [("Hangs".to_owned(), secs(2)), ("Hangs".to_owned(), secs(7))]
    );
    let hangs = run.report.job("Hangs").unwrap();
    assert_eq!((hangs.status, hangs.tries), (Status::Failed, 2));
    let error = hangs.last_error.as_ref().unwrap();
    assert_eq!(error.message, "timed out after 2s");
    assert_eq!(error.causes, ["the phase ended 5.000s after it started"]);
    // Its delay ran out at 3 s, but the retry waited for the first check
    // to return, at 5 s.
    let second = run.spans.iter().find(|s| s.attempt == 2).unwrap();
    assert_eq!(second.start, secs(5));
}

#[test]
fn a_cancellable_over_time_phase_is_abandoned_at_its_limit() {
    let specs = hangs_past_its_limit();
    let run = simulate(&specs, parallel(4), &[], OnAbandon::Stops, None);
    assert_eq!(
        run.abandoned,
        [("Hangs".to_owned(), secs(2)), ("Hangs".to_owned(), secs(5))]
    );
    let error = run.report.job("Hangs").unwrap().last_error.clone().unwrap();
    // The second try started at 3 s and was cancelled at its 2 s limit.
    assert_eq!(error.causes, ["the phase ended 2.000s after it started"]);
}

#[test]
fn cancelling_lets_phases_in_flight_finish_and_blocks_what_was_not_reached() {
    let specs = [
        job("Root").deps(&["Running", "Interrupted", "NotReached"]),
        job("Running").takes(secs(10)),
        job("Interrupted").needs_runs(1).takes(secs(2)),
        job("NotReached").deps(&["Running"]),
    ];
    let run = simulate(&specs, parallel(2), &[], OnAbandon::RunsOn, Some(secs(3)));
    // The machine asks to cancel what is in flight; threads cannot, so the
    // phases run on and their outcomes count.
    assert_eq!(
        run.abandoned,
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
    assert_eq!(interrupted.status, Status::Failed);
    assert_eq!(
        interrupted.last_error.as_ref().unwrap().message,
        "cancelled during its try"
    );
    let not_reached = run.report.job("NotReached").unwrap();
    assert_eq!(
        (not_reached.status, not_reached.blocked_reason.as_deref()),
        (Status::Blocked, Some("cancelled"))
    );
    assert_eq!(run.report.stopped.as_deref(), Some("cancelled"));
    assert_eq!(
        run.spans.last().unwrap().end,
        secs(10),
        "the driver waited for the phase to return"
    );
}

#[test]
fn the_run_deadline_stops_new_phases() {
    let specs = [
        job("Root").deps(&["First", "Second"]),
        job("First").takes(secs(4)),
        job("Second").deps(&["First"]),
    ];
    let config = MachineConfig {
        deadline: Some(secs(3)),
        ..parallel(2)
    };
    let run = simulate(&specs, config, &[], OnAbandon::Stops, None);
    assert_eq!(run.report.stopped.as_deref(), Some("run deadline passed"));
    assert_eq!(
        status(&run, "First"),
        Status::Passed,
        "the phase in flight finished"
    );
    let second = run.report.job("Second").unwrap();
    assert_eq!(
        (second.status, second.blocked_reason.as_deref()),
        (Status::Blocked, Some("run deadline passed"))
    );
}

#[test]
fn one_worker_keeps_the_reference_order_and_rounds() {
    let specs = [
        job("Root").deps(&["Flaky", "Steady"]),
        job("Flaky").needs_runs(2).retry_delay(secs(100)),
        job("Steady"),
    ];
    let run = simulate(&specs, parallel(1), &[], OnAbandon::RunsOn, None);
    let order: Vec<String> = run
        .spans
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
        job("Root").deps(&["Flaky"]),
        job("Flaky").needs_runs(2).retry_delay(secs(3600)),
    ];
    for workers in [1, 2] {
        let config = MachineConfig {
            deadline: Some(secs(10)),
            ..parallel(workers)
        };
        let run = simulate(&specs, config, &[], OnAbandon::Stops, None);
        assert_eq!(run.report.stopped.as_deref(), Some("run deadline passed"));
        assert_eq!(
            run.report.elapsed,
            secs(10),
            "{workers} workers: woke at the deadline"
        );
        let flaky = run.report.job("Flaky").unwrap();
        assert_eq!((flaky.status, flaky.tries), (Status::Failed, 1));
    }
}

#[test]
fn several_at_a_time_the_job_holding_up_the_longest_chain_starts_first() {
    let specs = [
        job("Root").deps(&["Short1", "Short2", "Short3", "Top"]),
        job("Short1"),
        job("Short2"),
        job("Short3"),
        job("Top").deps(&["Middle"]),
        job("Middle").deps(&["Bottom"]),
        job("Bottom"),
    ];
    let run = simulate(&specs, parallel(2), &[], OnAbandon::RunsOn, None);
    let started: Vec<(&str, Duration)> = run
        .spans
        .iter()
        .map(|s| (s.job.as_str(), s.start))
        .collect();
    // Bottom comes after the short jobs in the reference order, but three
    // jobs wait on it: it starts at once, beside the first short job.
    assert!(started.contains(&("Bottom", secs(0))), "{started:?}");
    assert!(started.contains(&("Short1", secs(0))), "{started:?}");
    // The chain and the short jobs then share the workers: 4 s in all,
    // where the reference order would take 5 s (the chain would start late).
    assert_eq!(run.spans.iter().map(|s| s.end).max(), Some(secs(4)));
}
