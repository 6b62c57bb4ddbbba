//! The movie example run with four workers, for the HTML page's tests
//! (`tests/html_view.rs`, `tests/html_browser.rs`, which include this file
//! by path): its report, every event, and its plan.

use std::sync::{Arc, Mutex};

use dojobber::Report;
use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber_example_movie::{self as movie, MovieArgs};

/// Keeps every event of a run.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl Observer for Recorder {
    fn on_event(&mut self, event: &Event, _plan: &Plan) {
        self.0.lock().unwrap().push(event.clone());
    }
}

/// The movie example run with four workers: its report, events and plan.
pub fn movie_run() -> (Report, Vec<Event>, Plan) {
    let recorder = Recorder::default();
    let runner = movie::runner(MovieArgs::default())
        .output(std::io::sink())
        .workers(4)
        .observe(recorder.clone());
    let plan = runner.graph().unwrap().plan().clone();
    let report = runner.run().unwrap().into_report();
    let events = recorder.0.lock().unwrap().clone();
    (report, events, plan)
}
