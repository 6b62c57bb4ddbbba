//! The DOT text: snapshots of the movie example, and any job name survives
//! a print and a parse.

use dojobber::{Defaults, JobSpec, Plan, Report, Status};
use dojobber_examples::movie::{self, MovieArgs};
use dojobber_viz::{Options, dot_string, graphviz_rust, job_names, to_dot};
use proptest::prelude::*;

fn movie_runner() -> dojobber::Runner<MovieArgs> {
    movie::runner(MovieArgs::default()).output(std::io::sink())
}

fn movie_report() -> Report {
    movie_runner()
        .run()
        .expect("the movie suite sets up")
        .into_report()
}

#[test]
fn movie_before_a_run() {
    let graph = movie_runner().graph().expect("the movie suite sets up");
    let dot = dot_string(graph.plan(), &Options::default());
    insta::assert_snapshot!("movie_before", dot);
}

#[test]
fn movie_after_a_default_run() {
    let report = movie_report();
    // The statuses the colours below stand for, so a change in the suite
    // shows up here rather than as a mystery in the snapshot.
    assert_eq!(
        report.names_with(Status::Failed),
        ["TurnOnTV", "SitOnCouch"]
    );
    let dot = dot_string(&report, &Options::default());
    insta::assert_snapshot!("movie_after", dot);
}

#[test]
fn details_add_tries_and_time_to_the_label() {
    let mut report = movie_report();
    for job in &mut report.jobs {
        job.time = std::time::Duration::from_millis(12);
    }
    let options = Options {
        details: true,
        ..Options::default()
    };
    let names = job_names(&to_dot(&report, &options));
    let bowl = names
        .iter()
        .find(|label| label.starts_with("PopcornBowl\n"))
        .expect("PopcornBowl is drawn");
    let tries = report.job("PopcornBowl").unwrap().tries;
    assert_eq!(*bowl, format!("PopcornBowl\n{tries} tries, 12.0 ms"));
}

/// A plan whose jobs carry `names` (distinct), each depending on the next two.
fn plan_named(names: &[String]) -> Plan {
    let specs = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut spec = JobSpec::new(name.clone());
            spec.deps = (i + 1..names.len().min(i + 3)).collect();
            spec
        })
        .collect();
    Plan::new(specs, 0, Defaults::default())
        .expect("a forward-only graph has no cycle")
        .0
}

/// Prints the plan's DOT, parses it back with graphviz-rust, and compares
/// the labels with the names.
fn assert_round_trip(names: &[String]) {
    let plan = plan_named(names);
    let dot = dot_string(&plan, &Options::default());
    let parsed = graphviz_rust::parse(&dot)
        .unwrap_or_else(|error| panic!("invalid DOT for {names:?}: {error}\n{dot}"));
    let expected: Vec<&str> = plan.ids().map(|id| plan.name(id)).collect();
    assert_eq!(job_names(&parsed), expected, "DOT was:\n{dot}");
}

#[test]
fn awkward_names_survive_a_round_trip() {
    let names = [
        "say \"hi\"",
        "C:\\temp\\",
        "\\",
        "\\\"",
        "two\nlines",
        "\\n is not a newline",
        "{ braces } [brackets]; a -> b",
        "<html><b>bold</b></html>",
        "node",
        "digraph",
        "Strict",
        "ünïcödé ✓ 日本語",
        "",
        "   ",
        "-- // # /* comment */",
        "tab\there",
    ];
    assert_round_trip(&names.map(String::from));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_names_survive_a_round_trip(names in prop::collection::hash_set(any::<String>(), 1..6)) {
        // Names are unique within a plan.
        assert_round_trip(&names.into_iter().collect::<Vec<_>>());
    }
}
