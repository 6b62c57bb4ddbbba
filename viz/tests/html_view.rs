//! The HTML page's input model: a run's report plus its events, from
//! memory or from the `--events-json` stream, come to the same view.

use dojobber::engine::Plan;
use dojobber::observe::Event;
use dojobber::{JobRecord, Phase, Report, Status};
use dojobber_viz::html::{RunView, ViewError, page};

#[path = "common/movie_run.rs"]
mod movie_run;
use movie_run::movie_run;

fn json_lines(events: &[Event], plan: &Plan) -> String {
    events
        .iter()
        .map(|event| serde_json::to_string(&event.record(plan)).unwrap() + "\n")
        .collect()
}

#[test]
fn events_from_memory_and_from_the_json_stream_make_the_same_view() {
    let (report, events, plan) = movie_run();
    let mut from_memory = RunView::from_report(&report);
    from_memory.add_events(&events, &plan).unwrap();
    let mut from_stream = RunView::from_report(&report);
    from_stream
        .add_events_json(json_lines(&events, &plan).as_bytes())
        .unwrap();
    assert_eq!(from_memory, from_stream);
    assert!(from_memory.is_timed());
}

#[test]
fn every_finished_phase_is_one_phase_run_of_its_job() {
    let (report, events, plan) = movie_run();
    let mut view = RunView::from_report(&report);
    view.add_events(&events, &plan).unwrap();
    let finished = events
        .iter()
        .filter(|event| matches!(event, Event::PhaseFinished { .. }))
        .count();
    let phases: usize = view.jobs.iter().map(|job| job.phases.len()).sum();
    assert_eq!(phases, finished);
    for job in &view.jobs {
        for phase in &job.phases {
            // A phase user code ran was handed out first, and took no
            // negative time.
            if phase.performed {
                let start = phase.start_secs.expect("a performed phase was started");
                assert!(start <= phase.end_secs.unwrap(), "{} {:?}", job.name, phase);
            }
            assert_eq!(phase.passed, phase.error.is_none(), "{}", job.name);
        }
        if job.status == Some(Status::Blocked) {
            assert!(job.phases.is_empty(), "{} is blocked", job.name);
        } else {
            assert!(job.ready_secs.is_some(), "{} ran", job.name);
        }
        let tries = job.phases.iter().map(|p| p.attempt).max().unwrap_or(0);
        assert!(tries <= job.tries, "{}", job.name);
    }
    // A job is ready once its deps have finished their tries (cleanups
    // come after the whole run), so never before.
    for job in &view.jobs {
        for &dep in &job.deps {
            let dep_end = view.jobs[dep]
                .phases
                .iter()
                .filter(|p| p.phase != Phase::Cleanup)
                .filter_map(|p| p.end_secs)
                .reduce(f64::max);
            if let (Some(ready), Some(dep_end)) = (job.ready_secs, dep_end) {
                assert!(ready >= dep_end, "{} ready before {}", job.name, dep);
            }
        }
    }
}

#[test]
fn the_report_alone_makes_the_view_its_events_make() {
    let (report, events, plan) = movie_run();
    let view = RunView::from_report(&report);
    assert!(
        view.is_timed(),
        "the report records each phase with its times"
    );
    let mut from_events = view.clone();
    from_events.add_events(&events, &plan).unwrap();
    assert_eq!(view, from_events);
    let tv = view.jobs.iter().find(|job| job.name == "TurnOnTV").unwrap();
    assert_eq!(tv.status, Some(Status::Failed));
    assert_eq!(
        tv.last_error.as_ref().unwrap().message,
        "Remote batteries are dead."
    );
    assert!(
        tv.phases
            .iter()
            .any(|phase| !phase.passed && phase.error.is_some())
    );
    assert_eq!(view.graph_svg.matches("<g class=\"job\"").count(), 20);
    assert!(page(&view).contains("TurnOnTV"));
}

#[test]
fn a_report_without_phases_has_jobs_and_errors_but_no_times() {
    let (run, _, _) = movie_run();
    // What a version 1 report reads as.
    let report = Report::from_jobs(run.jobs().map(|job| JobRecord {
        phases: Vec::new(),
        ..job.to_record()
    }))
    .unwrap();
    let view = RunView::from_report(&report);
    assert!(!view.is_timed());
    assert_eq!(view.jobs.len(), report.jobs().len());
    let tv = view.jobs.iter().find(|job| job.name == "TurnOnTV").unwrap();
    assert_eq!(
        tv.last_error.as_ref().unwrap().message,
        "Remote batteries are dead."
    );
}

#[test]
fn a_bad_event_line_is_named_and_changes_nothing() {
    let (report, events, plan) = movie_run();
    let mut view = RunView::from_report(&report);
    let before = view.clone();
    let mut stream = json_lines(&events, &plan);
    stream.push_str("{\"event\":\"phase_finished\",\"job\":\"TurnOnTV\"}\n");
    let error = view.add_events_json(stream.as_bytes()).unwrap_err();
    let line = events.len() + 1;
    assert!(
        matches!(&error, ViewError::BadLine { line: l, .. } if *l == line),
        "{error}"
    );
    assert!(error.to_string().contains(&format!("line {line}")));
    assert_eq!(view, before);

    let stranger =
        r#"{"event":"phase_started","job":"Stranger","phase":"check","attempt":1,"at_secs":0.1}"#;
    let error = view.add_events_json(stranger.as_bytes()).unwrap_err();
    assert!(matches!(&error, ViewError::UnknownJob { job, line: 1 } if job == "Stranger"));
    assert!(error.to_string().contains("\"Stranger\""));
    assert_eq!(view, before);
}

#[test]
fn kinds_of_event_the_page_does_not_use_are_skipped() {
    let (report, _, _) = movie_run();
    let mut view = RunView::from_report(&report);
    let before = view.clone();
    let stream =
        "{\"event\":\"round_started\",\"round\":1}\n\n{\"event\":\"some_future_event\",\"x\":1}\n";
    view.add_events_json(stream.as_bytes()).unwrap();
    assert_eq!(view, before);
}

/// A made-up run: `pages` fixed `RenderPage` jobs and a `Site` that
/// needs them all.
fn fan_out(pages: usize) -> Report {
    let page = |i: usize| JobRecord {
        tries: 1,
        time: std::time::Duration::from_millis(2),
        ..JobRecord::new(format!("RenderPage {i:05}"), Status::Fixed)
    };
    let mut jobs: Vec<JobRecord> = (0..pages).map(page).collect();
    let mut site = page(0);
    site.name = "Site".to_owned();
    site.deps = jobs.iter().map(|job| job.name.clone()).collect();
    jobs.push(site);
    Report::from_jobs(jobs).unwrap()
}

#[test]
fn a_wide_fan_out_is_one_box_of_the_graph_and_each_job_knows_it() {
    let view = RunView::from_report(&fan_out(100));
    assert_eq!(view.jobs.len(), 101);
    assert_eq!(view.graph_svg.matches("<g class=\"job\"").count(), 2);
    assert!(view.graph_svg.contains("100 × RenderPage"));
    // The box stands where its first page was; the site comes after it.
    let mut boxes = vec![0; 100];
    boxes.push(1);
    assert_eq!(view.graph_boxes, boxes);
}

#[test]
fn the_page_grows_linearly_with_a_wide_fan_out() {
    let size = |pages: usize| page(&RunView::from_report(&fan_out(pages))).len() as f64;
    let (one, two, four) = (size(1_000), size(2_000), size(4_000));
    // Every page adds the same few hundred bytes of data; a graph drawing
    // every page's edge across wrapped rows grew with the square.
    let per_job = (four - two) / 2_000.0;
    assert!(per_job < 400.0, "{per_job} bytes per job");
    assert!(four - two < 2.1 * (two - one), "{one} {two} {four}");
}
