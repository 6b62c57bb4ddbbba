//! The movie example's outcomes for every flag combination the reference
//! documents, and its verbose output, line by line.

use dojobber::observe::Verbosity;
use dojobber::{Report, Status};
use dojobber_example_movie::{self as movie, MovieArgs};
use dojobber_testkit::SharedBuffer;

fn run(args: MovieArgs, no_act: bool) -> (Report, String) {
    let lines = SharedBuffer::default();
    let report = movie::runner(args)
        .no_act(no_act)
        .verbosity(Verbosity::Verbose)
        .output(lines.clone())
        .run()
        .expect("the movie suite is a valid graph")
        .into_report();
    (report, lines.text())
}

/// `name: status` per job, in the reference order.
fn statuses(report: &Report) -> String {
    report
        .jobs()
        .map(|job| format!("{}: {} ({} tries)\n", job.name(), job.status(), job.tries()))
        .collect()
}

#[test]
fn default_flags() {
    let (report, verbose) = run(MovieArgs::default(), false);
    assert_eq!(
        report.names_with(Status::Failed),
        ["TurnOnTV", "SitOnCouch"]
    );
    assert_eq!(
        report.names_with(Status::Blocked),
        ["StartMovie", "WatchMovie"]
    );
    assert_eq!(report.jobs().len(), 20);
    let popcorn = report.job("Popcorn").unwrap();
    assert_eq!((popcorn.status(), popcorn.tries()), (Status::Fixed, 5));
    assert!(!report.is_success());
    assert!(report.is_partial_success());
    insta::assert_snapshot!("default_statuses", statuses(&report));
    insta::assert_snapshot!("default_verbose", verbose);
}

#[test]
fn verbose_output_starts_as_the_reference_does() {
    let (_, verbose) = run(MovieArgs::default(), false);
    let start: Vec<&str> = verbose.lines().take(9).collect();
    assert_eq!(
        start,
        [
            "ValidateMovie.check: pass",
            "PickTimeAndDate.check: fail",
            "PickTimeAndDate.run: pass",
            "PickTimeAndDate.recheck: pass",
            "DetermineDetails.check: pass",
            "Invite Wendell Bagg.check: fail",
            "Invite Wendell Bagg.run: pass",
            "Invite Wendell Bagg.recheck: pass",
            "Invite Lawyer Cat.check: fail",
        ]
    );
}

#[test]
fn everything_passes_with_a_good_movie_charged_batteries_and_couch_space() {
    let args = MovieArgs {
        movie: "MST3K".into(),
        battery_state: "charged".into(),
        couch_space: true,
        ..MovieArgs::default()
    };
    let (report, _) = run(args, false);
    assert!(report.is_success(), "{}", statuses(&report));
}

#[test]
fn an_unavailable_movie_fails_validation_and_blocks_what_needs_it() {
    let args = MovieArgs {
        movie: "Zardoz".into(),
        ..MovieArgs::default()
    };
    let (report, verbose) = run(args, false);
    let validate = report.job("ValidateMovie").unwrap();
    assert_eq!((validate.status(), validate.tries()), (Status::Failed, 3));
    assert_eq!(
        validate.last_error().unwrap().message,
        "Zardoz not one of the available movies."
    );
    for blocked in [
        "DetermineDetails",
        "InsertDVD",
        "InviteFriends",
        "FriendsArrive",
    ] {
        assert_eq!(
            report.job(blocked).unwrap().status(),
            Status::Blocked,
            "{blocked}"
        );
    }
    assert_eq!(report.job("Food").unwrap().status(), Status::Passed);
    assert!(
        verbose.contains("ValidateMovie.recheck: fail \"Zardoz not one of the available movies.\"")
    );
    insta::assert_snapshot!("zardoz_statuses", statuses(&report));
}

#[test]
fn popcorn_that_needs_a_sixth_try_fails_and_blocks_food() {
    let args = MovieArgs {
        pop_success_try: 6,
        ..MovieArgs::default()
    };
    let (report, _) = run(args, false);
    let popcorn = report.job("Popcorn").unwrap();
    assert_eq!((popcorn.status(), popcorn.tries()), (Status::Failed, 5));
    assert_eq!(popcorn.last_error().unwrap().message, "Still popping...");
    let food = report.job("Food").unwrap();
    assert_eq!(
        (food.status(), food.blocked_by()),
        (Status::Blocked, Some("Popcorn"))
    );
}

#[test]
fn no_act_only_checks() {
    let (report, verbose) = run(MovieArgs::default(), true);
    assert!(
        !verbose.contains(".run:"),
        "no run in no-act mode:\n{verbose}"
    );
    assert!(
        !verbose.contains(".recheck:"),
        "no recheck in no-act mode:\n{verbose}"
    );
    assert!(report.jobs().all(|job| job.tries() <= 1));
    assert_eq!(report.job("FluffPillows").unwrap().status(), Status::Failed);
    insta::assert_snapshot!("no_act_verbose", verbose);
    insta::assert_snapshot!("no_act_statuses", statuses(&report));
}
