//! What the page shows, as plain data: a run's report plus, when they are
//! at hand, its phases with times. Filled from a [`Report`] and from the
//! run's events, in memory ([`Event`]) or as the `--events-json` stream.

use std::collections::HashMap;
use std::io::BufRead;

use dojobber::engine::Plan;
use dojobber::observe::{Event, EventRecord};
use dojobber::{CleanupFailure, Failure, Phase, PhaseRecord, Report, Status};

use crate::{GraphSource, Options, Renderer, Style};

/// A run as the HTML page shows it: the report's summary and jobs, each
/// job's phases (from the report, or from the events), and the job graph
/// drawn by this crate.
///
/// ```
/// use dojobber::{Context, Job, JobResult, Runner};
/// use dojobber_viz::html::RunView;
///
/// struct Done;
/// impl Job for Done {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// let report = Runner::new(Done, ()).output(std::io::sink()).run()?.into_report();
/// let mut view = RunView::from_report(&report);
/// assert!(view.is_timed(), "the report has every phase with its times");
/// assert_eq!(view.jobs[0].phases.len(), 1);
/// // Events, from memory or a stream, replace them.
/// view.add_events_json(r#"{"event":"phase_finished","job":"Done","phase":"check","attempt":1,"at_secs":0.5,"outcome":"pass","performed":true}"#.as_bytes())?;
/// assert_eq!(view.jobs[0].phases[0].end_secs, Some(0.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunView {
    /// Whether this was a no-act run.
    pub no_act: bool,
    /// Rounds of tries (see [`Report::rounds`]).
    pub rounds: u32,
    /// Seconds from the run's start to its last phase.
    pub elapsed_secs: f64,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The cleanup that failed, if one did.
    pub cleanup_failure: Option<CleanupFailure>,
    /// Settings of the run worth showing (`workers`, `fail-fast`, ...), as
    /// the caller knows them: a report does not hold them.
    pub settings: Vec<(String, String)>,
    /// Every job, in the report's order (deps before dependents).
    pub jobs: Vec<JobView>,
    /// The job graph as SVG, drawn by this crate's pure-Rust renderer
    /// with the default [`Style`]: one `<g class="job">` per box, a job's
    /// box titled with its name (escaped), a wide fan-out of one kind one
    /// box for all its jobs.
    pub graph_svg: String,
    /// For each job of [`jobs`](Self::jobs), the position of the box that
    /// draws it among the graph's `<g class="job">` groups.
    pub graph_boxes: Vec<usize>,
}

/// One job of a [`RunView`].
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JobView {
    /// Its name.
    pub name: String,
    /// Where it ended up; `None` for a dep the report names but has no
    /// entry for.
    pub status: Option<Status>,
    /// Tries used.
    pub tries: u32,
    /// Seconds spent in its phases.
    pub time_secs: f64,
    /// Its deps, as indexes into [`RunView::jobs`], in declaration order.
    pub deps: Vec<usize>,
    /// Why its last try failed, if it did.
    pub last_error: Option<Failure>,
    /// For a blocked job, the dep that blocked it.
    pub blocked_by: Option<String>,
    /// For a job blocked by a stop, why.
    pub blocked_reason: Option<String>,
    /// Its phases in the order they finished; empty for a report of
    /// version 1 when the events are not at hand.
    pub phases: Vec<PhaseRun>,
    /// When its last dep finished (0 for a job with no deps): from then
    /// on it could start. `None` without phase times.
    pub ready_secs: Option<f64>,
    /// The worker elsewhere that performed each try, try 1 first
    /// ([`JobReport::performed_by`](dojobber::JobReport::performed_by));
    /// empty in a local run, and then absent from the page's data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub performed_by: Vec<Option<String>>,
}

/// One phase of one try of a job.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PhaseRun {
    /// Which phase.
    pub phase: Phase,
    /// Which try, from 1.
    pub attempt: u32,
    /// Seconds since the run started when it was handed out; `None` when
    /// the machine decided it without user code, or the times are unknown.
    pub start_secs: Option<f64>,
    /// Seconds since the run started when it finished.
    pub end_secs: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed.
    pub error: Option<Failure>,
    /// Whether user code was called (a dummy job's check is decided by
    /// the machine).
    pub performed: bool,
}

impl PhaseRun {
    /// The phase as the report recorded it.
    fn from_record(record: &PhaseRecord) -> PhaseRun {
        PhaseRun {
            phase: record.phase,
            attempt: record.attempt,
            start_secs: record.performed.then_some(record.start().as_secs_f64()),
            end_secs: Some(record.end().as_secs_f64()),
            passed: record.passed,
            error: record.error.as_deref().cloned(),
            performed: record.performed,
        }
    }
}

/// Why events could not be added to a [`RunView`]; the view is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// A line of the event stream is not an event.
    #[error("event stream line {line}: {message}")]
    BadLine {
        /// From 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// An event names a job the report does not have: the events are of
    /// another run.
    #[error("event stream line {line} names job {job:?}, which the report does not have")]
    UnknownJob {
        /// From 1 (for in-memory events, the event's position from 1).
        line: usize,
        /// The name.
        job: String,
    },
}

/// The events the page uses, owned, in the form `--events-json` writes
/// them ([`EventRecord`]); the others are skipped.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line {
    PhaseStarted {
        job: String,
        phase: Phase,
        attempt: u32,
        at_secs: f64,
    },
    PhaseFinished {
        job: String,
        phase: Phase,
        attempt: u32,
        at_secs: f64,
        outcome: String,
        #[serde(default)]
        error: Option<Failure>,
        performed: bool,
    },
    #[serde(other)]
    Other,
}

impl Line {
    fn from_record(record: EventRecord<'_>) -> Line {
        match record {
            EventRecord::PhaseStarted {
                job,
                phase,
                attempt,
                at_secs,
            } => Line::PhaseStarted {
                job: job.to_owned(),
                phase,
                attempt,
                at_secs,
            },
            EventRecord::PhaseFinished {
                job,
                phase,
                attempt,
                at_secs,
                outcome,
                error,
                performed,
            } => Line::PhaseFinished {
                job: job.to_owned(),
                phase,
                attempt,
                at_secs,
                outcome: outcome.to_owned(),
                error: error.cloned(),
                performed,
            },
            _ => Line::Other,
        }
    }
}

impl RunView {
    /// The view of a report, phases and their times included: a page from
    /// the report alone has its timeline too (a report of version 1 has no
    /// phases; then only the events can add them).
    pub fn from_report(report: &Report) -> RunView {
        RunView::from_source(report, GraphSource::Report(report))
    }

    /// [`from_report`](Self::from_report), with the plan that ran, so the
    /// graph draws dummy jobs as such.
    pub fn from_run(plan: &Plan, report: &Report) -> RunView {
        RunView::from_source(report, GraphSource::Run(plan, report))
    }

    fn from_source(report: &Report, source: GraphSource<'_>) -> RunView {
        let (deps, missing) = crate::source::report_deps(report);
        let mut jobs: Vec<JobView> = report
            .jobs()
            .zip(deps)
            .map(|(job, deps)| JobView {
                name: job.name().to_owned(),
                status: Some(job.status()),
                tries: job.tries(),
                time_secs: job.time().as_secs_f64(),
                deps,
                last_error: job.last_error().cloned(),
                blocked_by: job.blocked_by().map(str::to_owned),
                blocked_reason: job.blocked_reason().map(|reason| reason.to_string()),
                phases: job.phases().iter().map(PhaseRun::from_record).collect(),
                ready_secs: None,
                performed_by: job.performers().to_vec(),
            })
            .collect();
        // A report read from JSON may name a dep it has no entry for: shown
        // as a job of unknown status, as the picture does.
        jobs.extend(missing.into_iter().map(|name| JobView {
            name,
            status: None,
            tries: 0,
            time_secs: 0.0,
            deps: Vec::new(),
            last_error: None,
            blocked_by: None,
            blocked_reason: None,
            phases: Vec::new(),
            ready_secs: None,
            performed_by: Vec::new(),
        }));
        // Drawn as `--graph` draws it, fan-outs collapsed, so the picture
        // grows with what it shows rather than with every edge of a wide
        // fan-out; the page draws its own legend. The boxes are in the
        // layout's order, one `g.job` each.
        let options = Options {
            details: true,
            renderer: Renderer::PureRust,
            style: Style {
                legend: false,
                ..Style::DEFAULT
            },
        };
        let (graph_svg, graph_boxes) = crate::svg_with_boxes(source, &options);
        let mut view = RunView {
            no_act: report.no_act,
            rounds: report.rounds,
            elapsed_secs: report.elapsed.as_secs_f64(),
            stopped: report.stopped.map(|reason| reason.to_string()),
            cleanup_failure: report.cleanup_failure.clone(),
            settings: Vec::new(),
            jobs,
            graph_svg,
            graph_boxes,
        };
        view.derive_ready_times();
        view
    }

    /// Adds a setting to show in the summary (`workers` = `4`).
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> RunView {
        self.settings.push((name.into(), value.into()));
        self
    }

    /// Whether the phases have times, so that the timeline and the
    /// concurrency chart can be drawn.
    pub fn is_timed(&self) -> bool {
        self.jobs
            .iter()
            .flat_map(|job| &job.phases)
            .any(|phase| phase.end_secs.is_some())
    }

    /// The name before 0.2.0.
    #[deprecated(since = "0.2.0", note = "use `RunView::is_timed`")]
    pub fn timed(&self) -> bool {
        self.is_timed()
    }

    /// Adds the phases of the run's events as an observer saw them, with
    /// the plan that names their jobs. Fails, changing nothing, when an
    /// event names a job the report does not have.
    pub fn add_events<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a Event>,
        plan: &Plan,
    ) -> Result<(), ViewError> {
        let lines = events
            .into_iter()
            .map(|event| Line::from_record(event.record(plan)))
            .collect();
        self.add_lines(lines)
    }

    /// Adds the phases of an event stream as `--events-json` writes it:
    /// one JSON object a line; blank lines and kinds of event the page does
    /// not use are skipped. Fails, changing nothing, on a line that is not
    /// an event or names a job the report does not have.
    pub fn add_events_json(&mut self, reader: impl BufRead) -> Result<(), ViewError> {
        let mut lines = Vec::new();
        for (number, text) in reader.lines().enumerate() {
            let line = number + 1;
            let text = text.map_err(|error| ViewError::BadLine {
                line,
                message: error.to_string(),
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let event = serde_json::from_str(&text).map_err(|error| ViewError::BadLine {
                line,
                message: error.to_string(),
            })?;
            lines.push(event);
        }
        self.add_lines(lines)
    }

    fn add_lines(&mut self, lines: Vec<Line>) -> Result<(), ViewError> {
        let index: HashMap<&str, usize> = self
            .jobs
            .iter()
            .enumerate()
            .map(|(i, job)| (job.name.as_str(), i))
            .collect();
        let mut phases: Vec<Vec<PhaseRun>> = vec![Vec::new(); self.jobs.len()];
        // Phases handed out and not finished yet, by job, phase and try.
        let mut started: HashMap<(usize, Phase, u32), f64> = HashMap::new();
        let find = |job: &str, line: usize| {
            index
                .get(job)
                .copied()
                .ok_or_else(|| ViewError::UnknownJob {
                    line,
                    job: job.to_owned(),
                })
        };
        for (number, event) in lines.into_iter().enumerate() {
            let line = number + 1;
            match event {
                Line::PhaseStarted {
                    job,
                    phase,
                    attempt,
                    at_secs,
                } => {
                    started.insert((find(&job, line)?, phase, attempt), at_secs);
                }
                Line::PhaseFinished {
                    job,
                    phase,
                    attempt,
                    at_secs,
                    outcome,
                    error,
                    performed,
                } => {
                    let job = find(&job, line)?;
                    phases[job].push(PhaseRun {
                        phase,
                        attempt,
                        start_secs: started.remove(&(job, phase, attempt)),
                        end_secs: Some(at_secs),
                        passed: outcome == "pass",
                        error,
                        performed,
                    });
                }
                Line::Other => {}
            }
        }
        // The events replace what the report recorded of a job's phases.
        for (job, phases) in self.jobs.iter_mut().zip(phases) {
            if !phases.is_empty() {
                job.phases = phases;
            }
        }
        self.derive_ready_times();
        Ok(())
    }

    /// A job is ready when its last dep has finished its last try (or at
    /// the start, without deps); deps come before dependents in the list.
    fn derive_ready_times(&mut self) {
        let finished: Vec<Option<f64>> = self
            .jobs
            .iter()
            .map(|job| {
                job.phases
                    .iter()
                    .filter(|phase| phase.phase != Phase::Cleanup)
                    .filter_map(|phase| phase.end_secs)
                    .reduce(f64::max)
            })
            .collect();
        for job in &mut self.jobs {
            if job.phases.is_empty() {
                job.ready_secs = None;
                continue;
            }
            job.ready_secs = job
                .deps
                .iter()
                .map(|&dep| finished[dep])
                .try_fold(0.0f64, |ready, dep| dep.map(|end| ready.max(end)));
        }
    }
}
