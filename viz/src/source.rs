//! What a picture is drawn from: a plan before a run or a report after one,
//! reduced to the same list of jobs.

use std::collections::HashMap;
use std::time::Duration;

use dojobber::engine::Plan;
use dojobber::{JobKind, Report, Status};

use crate::Style;
use crate::names;

/// The graph to draw: the plan before a run (every node unfilled) or the
/// report after one (nodes filled by status), or both, which also tells
/// dummy jobs apart (a report alone does not record kinds).
///
/// All convert with `From`, so the drawing functions take `&plan`,
/// `&report` or `(&plan, &report)` directly.
#[derive(Clone, Copy, Debug)]
pub enum GraphSource<'a> {
    /// The jobs and their deps before anything ran: `runner.graph()?.plan()`.
    Plan(&'a Plan),
    /// The outcome of a run: statuses, tries used and time per job.
    Report(&'a Report),
    /// The outcome of a run and the plan it ran, for the kinds of job.
    Run(&'a Plan, &'a Report),
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

impl<'a> From<(&'a Plan, &'a Report)> for GraphSource<'a> {
    fn from((plan, report): (&'a Plan, &'a Report)) -> Self {
        GraphSource::Run(plan, report)
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
    /// A dummy job (it only groups its deps), when the plan is known.
    pub dummy: bool,
    /// For a box standing for several jobs of one kind: who they are.
    pub members: Option<Members>,
}

/// The jobs a collapsed box stands for.
#[derive(Clone, Debug)]
pub(crate) struct Members {
    /// Their names, in the reference order.
    pub names: Vec<String>,
    /// Their statuses (`None` before a run).
    pub statuses: Vec<Option<Status>>,
}

impl Job {
    /// A job of the plan or the report, not (yet) collapsed.
    pub(crate) fn single(name: String, status: Option<Status>) -> Job {
        Job {
            name,
            deps: Vec::new(),
            status,
            outcome: None,
            dummy: false,
            members: None,
        }
    }
}

/// The jobs of a source, in the reference order (deps before dependents).
pub(crate) fn jobs(source: GraphSource<'_>) -> Vec<Job> {
    match source {
        GraphSource::Plan(plan) => plan
            .ids()
            .map(|id| Job {
                deps: plan.deps(id).iter().map(|dep| dep.index()).collect(),
                dummy: plan.kind(id) == JobKind::Dummy,
                ..Job::single(plan.name(id).to_owned(), None)
            })
            .collect(),
        GraphSource::Run(plan, report) => {
            let mut jobs = jobs(GraphSource::Report(report));
            for job in &mut jobs {
                job.dummy = plan
                    .find(&job.name)
                    .is_some_and(|id| plan.kind(id) == JobKind::Dummy);
            }
            jobs
        }
        GraphSource::Report(report) => {
            let (deps, missing) = report_deps(report);
            let mut jobs: Vec<Job> = report
                .jobs()
                .zip(deps)
                .map(|(job, deps)| Job {
                    deps,
                    outcome: Some((job.tries(), job.time())),
                    ..Job::single(job.name().to_owned(), Some(job.status()))
                })
                .collect();
            jobs.extend(missing.into_iter().map(|name| Job::single(name, None)));
            jobs
        }
    }
}

/// Each of the report's jobs' deps, as indexes into its jobs, and the
/// names of the deps it has no entry for, which take the indexes after
/// its jobs, in the order first named. A report read from JSON may name
/// such a dep: the picture and the run page show it as a job of unknown
/// status rather than drop the edge.
pub(crate) fn report_deps(report: &Report) -> (Vec<Vec<usize>>, Vec<String>) {
    let mut index: HashMap<&str, usize> = report
        .jobs()
        .enumerate()
        .map(|(i, job)| (job.name(), i))
        .collect();
    let known = index.len();
    let mut missing = Vec::new();
    let deps = report
        .jobs()
        .map(|job| {
            job.deps()
                .map(|dep| {
                    *index.entry(dep).or_insert_with(|| {
                        missing.push(dep.to_owned());
                        known + missing.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    (deps, missing)
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
/// green, fixed darkgreen, failed red, blocked lightgrey; pending and
/// "before a run" unfilled. White text on dark green, black elsewhere, for
/// contrast.
pub(crate) fn colours(status: Option<Status>) -> Option<(&'static str, &'static str)> {
    match status? {
        Status::Passed => Some(("green", "black")),
        Status::Fixed => Some(("darkgreen", "white")),
        Status::Failed => Some(("red", "black")),
        Status::Blocked => Some(("lightgrey", "black")),
        Status::Pending => None,
    }
}

/// The web colour for one of the Graphviz colour names used above, as
/// Graphviz (X11) means it: its `green` is CSS's `lime`.
pub(crate) fn web_colour(name: &str) -> &'static str {
    match name {
        "green" => "#00ff00",
        "darkgreen" => "#006400",
        "red" => "#ff0000",
        "lightgrey" => "#d3d3d3",
        "white" => "#ffffff",
        _ => "#000000",
    }
}

/// What a status is called in legends and counts; `None` is a job that
/// did not run (before a run, or never reached).
pub(crate) fn status_word(status: Option<Status>) -> &'static str {
    match status {
        Some(Status::Pending) | None => "not run",
        Some(status) => status.as_str(),
    }
}

/// Statuses in the order legends and counts list them.
pub(crate) const STATUS_ORDER: [Option<Status>; 5] = [
    Some(Status::Passed),
    Some(Status::Fixed),
    Some(Status::Failed),
    Some(Status::Blocked),
    None,
];

fn same_word(a: Option<Status>, b: Option<Status>) -> bool {
    status_word(a) == status_word(b)
}

/// The text in a job's box, one entry per line: the name, shortened and
/// escaped, then the status counts of a collapsed box, then tries and
/// time when `details` asks and the run gave them. The second part is
/// drawn smaller.
pub(crate) fn label(job: &Job, style: &Style, details: bool) -> (String, Option<String>) {
    let name = names::shortened(&job.name, style.label_chars);
    let second = if let Some(members) = &job.members {
        members.statuses.iter().any(Option::is_some).then(|| {
            STATUS_ORDER
                .iter()
                .filter_map(|&status| {
                    let n = members
                        .statuses
                        .iter()
                        .filter(|&&s| same_word(s, status))
                        .count();
                    (n > 0).then(|| format!("{n} {}", status_word(status)))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    } else if details {
        job.outcome
            .map(|(tries, time)| self::details(job.status, tries, time))
    } else {
        None
    };
    (name, second)
}

/// Names listed in a collapsed box's tooltip before `… and N more`.
const TOOLTIP_MEMBERS: usize = 40;

/// The tooltip a box needs beyond its label: every member of a collapsed
/// box (with its status), or the full name of a shortened one.
pub(crate) fn tooltip(job: &Job, style: &Style) -> Option<String> {
    if let Some(members) = &job.members {
        let mut lines: Vec<String> = members
            .names
            .iter()
            .zip(&members.statuses)
            .take(TOOLTIP_MEMBERS)
            .map(|(name, &status)| {
                let name = names::shortened(name, style.label_chars);
                match status {
                    Some(_) => format!("{name}: {}", status_word(status)),
                    None => name,
                }
            })
            .collect();
        if members.names.len() > TOOLTIP_MEMBERS {
            lines.push(format!(
                "… and {} more",
                members.names.len() - TOOLTIP_MEMBERS
            ));
        }
        return Some(lines.join("\n"));
    }
    let printable = names::printable(&job.name);
    (names::shortened(&job.name, style.label_chars) != printable).then_some(printable)
}

/// One entry of a legend: how a kind of box looks and what it means.
#[derive(Clone, Debug)]
pub(crate) struct LegendEntry {
    pub text: &'static str,
    pub status: Option<Status>,
    pub dummy: bool,
    pub collapsed: bool,
}

/// The legend for a picture of `workers`: each status after a run (only "not
/// run" before one), then dummy jobs and collapsed boxes when the picture
/// has any (a report alone does not say which jobs are dummies).
pub(crate) fn legend(jobs: &[Job]) -> Vec<LegendEntry> {
    let after_run = jobs.iter().any(|job| job.outcome.is_some());
    let entry = |text, status| LegendEntry {
        text,
        status,
        dummy: false,
        collapsed: false,
    };
    let mut entries: Vec<LegendEntry> = if after_run {
        STATUS_ORDER
            .iter()
            .map(|&status| entry(status_word(status), status))
            .collect()
    } else {
        vec![entry("not run", None)]
    };
    if jobs.iter().any(|job| job.dummy) {
        entries.push(LegendEntry {
            dummy: true,
            ..entry("dummy (groups its deps)", None)
        });
    }
    if jobs.iter().any(|job| job.members.is_some()) {
        entries.push(LegendEntry {
            collapsed: true,
            ..entry("n × kind: jobs of one kind", None)
        });
    }
    entries
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

    /// A dep the report has no entry for takes the index after its jobs,
    /// once however often it is named; the picture and the run page both
    /// show it, with no status.
    #[test]
    fn deps_a_report_lacks_come_after_its_jobs() {
        use dojobber::JobRecord;
        let mut tea = JobRecord::new("Tea", Status::Blocked);
        tea.deps = vec!["Kettle".into(), "Water".into(), "Cup".into()];
        let mut cup = JobRecord::new("Cup", Status::Fixed);
        cup.deps = vec!["Water".into()];
        let mut kettle = JobRecord::new("Kettle", Status::Fixed);
        kettle.deps = vec!["Water".into()];
        let report = Report::from_jobs([kettle, cup, tea]).expect("names differ");
        let (deps, missing) = report_deps(&report);
        assert_eq!(deps, [vec![3], vec![3], vec![0, 3, 1]]);
        assert_eq!(missing, ["Water"]);
        let drawn = jobs(GraphSource::Report(&report));
        let names: Vec<_> = drawn.iter().map(|job| (&*job.name, job.status)).collect();
        assert_eq!(names[3], ("Water", None));
        let view = crate::html::RunView::from_report(&report);
        assert_eq!(view.jobs[3].name, "Water");
        assert_eq!(view.jobs[3].status, None);
        assert_eq!(view.jobs[2].deps, [0, 3, 1]);
    }
}
