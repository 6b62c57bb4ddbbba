//! The DOT text: snapshots of the movie example and of the sitekit shape,
//! any job name survives a print and a parse (shortened and escaped as
//! drawn, whole in the `comment`), and no name is too long to draw.

mod common;

use dojobber::engine::{Defaults, JobSpec, Plan};
use dojobber::{JobRecord, Report, Status};
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_viz::dot_structures::{Attribute, Graph, Id, Stmt};
use dojobber_viz::{Options, Style, dot_string, graphviz_rust, job_names, to_dot};
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
fn movie_with_its_plan_marks_the_dummy_jobs() {
    let runner = movie_runner();
    let graph = runner.graph().expect("the movie suite sets up");
    let plan = graph.plan().clone();
    let report = runner.run().expect("the movie suite sets up").into_report();
    let dot = dot_string((&plan, &report), &Options::default());
    insta::assert_snapshot!("movie_run_with_plan", dot);
}

#[test]
fn sitekit_keeps_every_job_in_dot() {
    let (plan, report) = common::sitekit::sitekit();
    let graph = to_dot((&plan, &report), &Options::default());
    // Collapsing is for pictures only: all 62 jobs are nodes here.
    assert_eq!(job_names(&graph).len(), 62);
    insta::assert_snapshot!("sitekit", dot_string((&plan, &report), &Options::default()));
}

#[test]
fn the_legend_can_be_left_out() {
    let report = movie_report();
    let with = dot_string(&report, &Options::default());
    let without = Options {
        style: Style {
            legend: false,
            ..Style::default()
        },
        ..Options::default()
    };
    let without = dot_string(&report, &without);
    assert!(with.contains("subgraph cluster_legend"));
    assert!(!without.contains("cluster_legend"));
    assert!(!without.contains("legend:"));
}

#[test]
fn details_add_tries_and_time_to_the_label() {
    let movie = movie_report();
    let time = std::time::Duration::from_millis(12);
    let jobs = movie.jobs().map(|job| JobRecord {
        time,
        ..job.to_record()
    });
    let report = Report::from_jobs(jobs).unwrap();
    let options = Options {
        details: true,
        ..Options::default()
    };
    let names = job_names(&to_dot(&report, &options));
    let bowl = names
        .iter()
        .find(|label| label.starts_with("PopcornBowl\n"))
        .expect("PopcornBowl is drawn");
    let tries = report.job("PopcornBowl").unwrap().tries();
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

/// The value of a node attribute of a parsed graph, as Graphviz reads it
/// (escapes undone the way [`job_names`] undoes them in labels), for each
/// node statement in order.
fn node_attribute(graph: &Graph, name: &str) -> Vec<Option<String>> {
    let Graph::DiGraph { stmts, .. } = graph else {
        panic!("a digraph")
    };
    let read = |value: &Id| {
        let Id::Escaped(quoted) = value else {
            return None;
        };
        let single = graphviz_rust::parse(&format!("digraph {{ n[label={quoted}] }}"))
            .expect("a quoted string parses");
        job_names(&single).pop()
    };
    stmts
        .iter()
        .filter_map(|stmt| match stmt {
            Stmt::Node(node) => {
                Some(
                    node.attributes
                        .iter()
                        .find_map(|Attribute(key, value)| match key {
                            Id::Plain(key) if key == name => read(value),
                            _ => None,
                        }),
                )
            }
            _ => None,
        })
        .collect()
}

/// Whether a name has nothing a picture escapes: no control character
/// (line breaks and tabs included), no U+FFFE or U+FFFF.
fn is_plain(name: &str) -> bool {
    !name
        .chars()
        .any(|c| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}')
}

/// A name as a picture draws it when it is short: every control
/// character, line breaks and tabs included, and every bidirectional
/// override, as a Rust escape (`\u{a}`).
fn as_drawn(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let escaped = dojobber::text::is_hostile(c) || c == '\u{fffe}' || c == '\u{ffff}';
            let text: Vec<char> = if escaped {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            text
        })
        .collect()
}

/// Prints the plan's DOT, parses it back with graphviz-rust, and compares
/// the labels with the names, as drawn.
fn assert_round_trip(names: &[String]) {
    let plan = plan_named(names);
    let dot = dot_string(&plan, &Options::default());
    let parsed = graphviz_rust::parse(&dot)
        .unwrap_or_else(|error| panic!("invalid DOT for {names:?}: {error}\n{dot}"));
    let expected: Vec<String> = plan.ids().map(|id| as_drawn(plan.name(id))).collect();
    assert_eq!(job_names(&parsed), expected, "DOT was:\n{dot}");
}

/// Prints the plan's DOT for any names and checks what holds for every
/// name: the DOT parses, every label is one line, with no control
/// character, no longer than the style's limit, and a name that was
/// shortened is whole in its node's `comment` and `tooltip`.
fn assert_drawable(names: &[String]) -> Result<(), TestCaseError> {
    let plan = plan_named(names);
    let options = Options::default();
    let dot = dot_string(&plan, &options);
    prop_assert!(
        !dot.chars().any(|c| c.is_control() && c != '\n'),
        "raw control character in\n{dot}"
    );
    let parsed = graphviz_rust::parse(&dot).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let labels = job_names(&parsed);
    let comments = node_attribute(&parsed, "comment");
    let tooltips = node_attribute(&parsed, "tooltip");
    prop_assert_eq!(labels.len(), names.len());
    for ((id, label), (comment, tooltip)) in
        plan.ids().zip(&labels).zip(comments.iter().zip(&tooltips))
    {
        let name = plan.name(id);
        prop_assert!(!label.chars().any(char::is_control), "{:?}", label);
        for line in label.lines() {
            prop_assert!(line.chars().count() <= options.style.label_chars);
        }
        prop_assert_eq!(comment, tooltip);
        let plain = is_plain(name);
        if plain && comment.is_none() {
            prop_assert_eq!(label, &as_drawn(name));
        }
        if plain && let Some(comment) = comment {
            prop_assert_eq!(comment, &as_drawn(name));
        }
    }
    Ok(())
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

#[test]
fn control_characters_never_reach_the_dot_raw() {
    let names = ["nul\0byte", "bell\u{7}", "cr\rlf", "esc\u{1b}[31m"].map(String::from);
    let dot = dot_string(&plan_named(&names), &Options::default());
    assert!(dot.contains(r#"label="nul\\u{0}byte""#), "{dot}");
    assert!(!dot.chars().any(|c| c.is_control() && c != '\n'));
    assert_drawable(&names).unwrap();
}

#[test]
fn a_ten_kilobyte_name_is_shortened_and_kept_whole_in_the_comment() {
    let long = format!("Render {}", "page/".repeat(2_000));
    let dot = dot_string(
        &plan_named(std::slice::from_ref(&long)),
        &Options::default(),
    );
    assert!(dot.contains(&format!("comment=\"{long}\"")));
    let parsed = graphviz_rust::parse(&dot).unwrap();
    assert_eq!(
        job_names(&parsed),
        ["Render page/page/page/page…ge/page/page/"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_names_are_drawable(names in prop::collection::hash_set(any::<String>(), 1..6)) {
        // Names are unique within a plan.
        assert_drawable(&names.into_iter().collect::<Vec<_>>())?;
    }

    #[test]
    fn printable_names_survive_a_round_trip(
        names in prop::collection::hash_set(
            "[^\\p{Cc}\\x{FFFE}\\x{FFFF}\\x{061C}\\x{200E}\\x{200F}\\x{2028}\\x{2029}\\x{202A}-\\x{202E}\\x{2066}-\\x{2069}]{0,40}",
            1..6,
        )
    ) {
        assert_round_trip(&names.into_iter().collect::<Vec<_>>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn long_names_give_short_labels(
        names in prop::collection::hash_set(".{200,3000}", 1..4)
    ) {
        assert_drawable(&names.into_iter().collect::<Vec<_>>())?;
    }
}
