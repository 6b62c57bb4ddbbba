//! What a picture is drawn from: a plan before a run or a report after one,
//! reduced to the same list of jobs.

use std::collections::HashMap;
use std::time::Duration;

use dojobber::{Plan, Report, Status};

/// The graph to draw: the plan before a run (every node unfilled) or the
/// report after one (nodes filled by status).
///
/// Both convert with `From`, so the drawing functions take `&plan` or
/// `&report` directly.
#[derive(Clone, Copy, Debug)]
pub enum GraphSource<'a> {
    /// The jobs and their deps before anything ran: `runner.graph()?.plan()`.
    Plan(&'a Plan),
    /// The outcome of a run: statuses, tries used and time per job.
    Report(&'a Report),
}

impl<'a> From<&'a Plan> for GraphSource<'a> {
    fn from(plan: &'a Plan) -> Self {
        GraphSource::Plan(plan)
    }
}

impl<'a> From<&'a Report> for GraphSource<'a> {
    fn from(report: &'a Report) -> Self {
        GraphSource::Report(report)
    }
}

/// One job as drawn.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub name: String,
    /// Indexes into the job list, in declaration order.
    pub deps: Vec<usize>,
    /// `None` before a run.
    pub status: Option<Status>,
    /// Tries used and time spent, after a run.
    pub outcome: Option<(u32, Duration)>,
}

/// The jobs of a source, in the reference order (deps before dependents).
pub(crate) fn jobs(source: GraphSource<'_>) -> Vec<Job> {
    match source {
        GraphSource::Plan(plan) => plan
            .ids()
            .map(|id| Job {
                name: plan.name(id).to_owned(),
                deps: plan.deps(id).iter().map(|dep| dep.index()).collect(),
                status: None,
                outcome: None,
            })
            .collect(),
        GraphSource::Report(report) => {
            let mut index: HashMap<&str, usize> = report
                .jobs
                .iter()
                .enumerate()
                .map(|(i, job)| (job.name.as_str(), i))
                .collect();
            let mut jobs: Vec<Job> = report
                .jobs
                .iter()
                .map(|job| Job {
                    name: job.name.clone(),
                    deps: Vec::with_capacity(job.deps.len()),
                    status: Some(job.status),
                    outcome: Some((job.tries, job.time)),
                })
                .collect();
            // A report read from JSON may name a dep it has no entry for:
            // draw it as a job of unknown status rather than drop the edge.
            for (i, job) in report.jobs.iter().enumerate() {
                for dep in &job.deps {
                    let next = jobs.len();
                    let dep_index = *index.entry(dep.as_str()).or_insert(next);
                    if dep_index == next {
                        jobs.push(Job {
                            name: dep.clone(),
                            deps: Vec::new(),
                            status: None,
                            outcome: None,
                        });
                    }
                    jobs[i].deps.push(dep_index);
                }
            }
            jobs
        }
    }
}

/// The label's second line when tries and time are shown: `2 tries, 1.5 ms`,
/// or `blocked` for a job that was never tried because of a dep.
pub(crate) fn details(status: Option<Status>, tries: u32, time: Duration) -> String {
    match status {
        Some(Status::Blocked) => return "blocked".to_owned(),
        Some(Status::Pending) if tries == 0 => return "pending".to_owned(),
        _ => {}
    }
    let tries = if tries == 1 {
        "1 try".to_owned()
    } else {
        format!("{tries} tries")
    };
    format!("{tries}, {}", human_duration(time))
}

/// A duration the way people read it: `0 s`, `840 µs`, `12.3 ms`, `2.05 s`.
pub(crate) fn human_duration(time: Duration) -> String {
    let secs = time.as_secs_f64();
    let (value, unit) = if time.is_zero() {
        return "0 s".to_owned();
    } else if secs < 1e-3 {
        (secs * 1e6, "µs")
    } else if secs < 1.0 {
        (secs * 1e3, "ms")
    } else {
        (secs, "s")
    };
    // Three significant digits.
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

/// Fill and text colours for a status, as Graphviz colour names: passed
/// green, fixed darkgreen, failed red; blocked, pending and "before a run"
/// unfilled. White text on dark green, black elsewhere, for contrast.
pub(crate) fn colours(status: Option<Status>) -> Option<(&'static str, &'static str)> {
    match status? {
        Status::Passed => Some(("green", "black")),
        Status::Fixed => Some(("darkgreen", "white")),
        Status::Failed => Some(("red", "black")),
        Status::Blocked | Status::Pending => None,
    }
}

/// The web colour for one of the Graphviz colour names used above, as
/// Graphviz (X11) means it: its `green` is CSS's `lime`.
pub(crate) fn web_colour(name: &str) -> &'static str {
    match name {
        "green" => "#00ff00",
        "darkgreen" => "#006400",
        "red" => "#ff0000",
        "white" => "#ffffff",
        _ => "#000000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (Duration::ZERO, "0 s"),
            (Duration::from_nanos(840_000), "840 µs"),
            (Duration::from_micros(12_345), "12.3 ms"),
            (Duration::from_millis(2_050), "2.05 s"),
            (Duration::from_secs(125), "125 s"),
        ];
        for (time, text) in cases {
            assert_eq!(human_duration(time), text);
        }
        let fixed = Some(Status::Fixed);
        assert_eq!(details(fixed, 1, Duration::ZERO), "1 try, 0 s");
        assert_eq!(
            details(fixed, 3, Duration::from_millis(5)),
            "3 tries, 5.00 ms"
        );
        assert_eq!(details(Some(Status::Blocked), 0, Duration::ZERO), "blocked");
    }
}
