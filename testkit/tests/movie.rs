//! Snapshots of the movie example's runs, phase by phase and without
//! times, for every flag combination the reference documents, and of its
//! plan; every run is also held to the engine's invariants.

use dojobber::{Runner, Status};
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_testkit::{
    IdempotenceError, Simulation, check_idempotent, check_invariants, dry_run_text, record,
    render_plan,
};

fn runner(args: MovieArgs, no_act: bool) -> Runner<MovieArgs> {
    movie::runner(args).no_act(no_act).output(std::io::sink())
}

/// Runs the suite, checks the invariants, and returns the record.
fn run(args: MovieArgs, no_act: bool) -> Simulation {
    let recorded = record(runner(args, no_act)).expect("the movie suite is a valid graph");
    if let Err(violation) = check_invariants(&recorded.record) {
        panic!("{violation}\n{}", recorded.record.trace.render_untimed());
    }
    recorded.record
}

/// The trace, then one line per job: status and tries.
fn snapshot_text(run: &Simulation) -> String {
    let mut text = run.trace.render_untimed();
    text.push_str("statuses\n");
    for job in run.report.jobs() {
        text.push_str(&format!(
            "  {}: {} ({} tries)\n",
            job.name(),
            job.status(),
            job.tries()
        ));
    }
    text
}

fn mst3k_charged_couch_space() -> MovieArgs {
    MovieArgs {
        movie: "MST3K".into(),
        battery_state: "charged".into(),
        couch_space: true,
        ..MovieArgs::default()
    }
}

#[test]
fn default_flags() {
    let run = run(MovieArgs::default(), false);
    assert_eq!(
        run.report.names_with(Status::Blocked),
        ["StartMovie", "WatchMovie"]
    );
    insta::assert_snapshot!("default", snapshot_text(&run));
}

#[test]
fn mst3k_charged_batteries_and_couch_space() {
    let run = run(mst3k_charged_couch_space(), false);
    assert!(run.report.is_success());
    insta::assert_snapshot!("mst3k_charged_couch_space", snapshot_text(&run));
}

#[test]
fn zardoz() {
    let args = MovieArgs {
        movie: "Zardoz".into(),
        ..MovieArgs::default()
    };
    let run = run(args, false);
    assert_eq!(
        run.report.job("ValidateMovie").unwrap().status(),
        Status::Failed
    );
    insta::assert_snapshot!("zardoz", snapshot_text(&run));
}

#[test]
fn popcorn_succeeds_on_the_sixth_try() {
    let args = MovieArgs {
        pop_success_try: 6,
        ..MovieArgs::default()
    };
    let run = run(args, false);
    assert_eq!(run.report.job("Popcorn").unwrap().status(), Status::Failed);
    insta::assert_snapshot!("pop_success_try_6", snapshot_text(&run));
}

#[test]
fn no_act() {
    let run = run(MovieArgs::default(), true);
    assert!(
        run.trace
            .entries
            .iter()
            .all(|e| e.phase == dojobber::Phase::Check)
    );
    insta::assert_snapshot!("no_act", snapshot_text(&run));
}

#[test]
fn dry_run() {
    let text = dry_run_text(runner(MovieArgs::default(), false)).unwrap();
    assert_eq!(text.lines().count(), 20, "one line per job");
    insta::assert_snapshot!("dry_run", text);
}

/// The plan, and so the order of the first round.
#[test]
fn plan_and_first_round() {
    let graph = runner(MovieArgs::default(), false).graph().unwrap();
    let plan = graph.plan();
    insta::assert_snapshot!("plan", render_plan(plan));
    // The first round tries jobs in the plan's order; PopcornBowl's
    // dishwasher needs more tries, so Popcorn and what needs it wait.
    let run = run(mst3k_charged_couch_space(), false);
    let first_round: Vec<&str> = run
        .trace
        .entries
        .iter()
        .filter(|e| e.round == 1 && e.phase == dojobber::Phase::Check)
        .map(|e| e.job.as_str())
        .collect();
    let waiting = ["Popcorn", "Food", "StartMovie", "WatchMovie"];
    let planned: Vec<&str> = plan
        .ids()
        .map(|id| plan.name(id))
        .filter(|name| !waiting.contains(name))
        .collect();
    assert_eq!(first_round, planned);
}

/// The movie keeps what it did in the run's global storage, which starts
/// empty every run: a second run does it all again, and the idempotence
/// check says so, job by job.
#[test]
fn the_movie_is_not_idempotent_across_runs() {
    let error = check_idempotent(|| runner(mst3k_charged_couch_space(), false))
        .expect_err("the movie's state lives in one run's global storage");
    let IdempotenceError::NotIdempotent { offenders, .. } = &error else {
        panic!("{error}");
    };
    let names: Vec<&str> = offenders.iter().map(|o| o.job.as_str()).collect();
    assert!(names.contains(&"PickTimeAndDate"), "{error}");
    insta::assert_snapshot!("not_idempotent", error.to_string());
}
