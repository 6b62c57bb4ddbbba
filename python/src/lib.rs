//! `dojobber._engine`: the Rust half of the `dojobber-rs` wheel.
//!
//! The Python package (`python/dojobber/__init__.py`) keeps DoJobber's
//! API: it reads the job classes, and hands this module a [`Suite`] (per
//! job its name, deps, tries, retry delay and time limit, by index) and a
//! callback. The engine discovers the graph, schedules it, and calls the
//! callback for each phase with the job's index and the phase; the
//! callback does what the original does in that phase (make the job's
//! instance, call `Check` or `Run`, keep `nodestatus`, print the verbose
//! lines) and answers `None` (passed) or the failure's message.
//!
//! The GIL is held only while the callback runs: the engine runs inside
//! `allow_threads`, and each phase takes the GIL back with `with_gil`, so
//! phases that release it (`time.sleep`, `subprocess`, sockets) overlap
//! with `workers > 1`. A callback that raises (`KeyboardInterrupt`,
//! `SystemExit`: what DoJobber's `except Exception` lets through) cancels
//! the run as Ctrl-C does in the command line, and the exception is handed
//! back beside the report, for the caller to raise after its cleanups.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dojobber::engine::Plan;
use dojobber::{CancelHandle, Context, Job, JobRef, JobResult, Phase, Runner, Status, dep};
use dojobber_cli::{OutputFile, RunArgs};
use dojobber_viz::{Format, Options};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The jobs of a suite, by index: what the engine needs to know of them.
struct Specs {
    names: Vec<String>,
    deps: Vec<Vec<usize>>,
    tries: Vec<Option<u32>>,
    retry_delays: Vec<Option<Duration>>,
    time_limits: Vec<Option<Duration>>,
    index: HashMap<String, usize>,
}

/// The specs and, for a run, the Python callbacks (one per phase: check,
/// run, recheck and, for `main`, cleanup) and what they let escape.
struct Table {
    specs: Arc<Specs>,
    callbacks: Vec<Py<PyAny>>,
    /// The first exception the callback raised; the run is cancelled then.
    escaped: Mutex<Option<PyErr>>,
    cancel: CancelHandle,
}

impl Table {
    fn new(specs: &Arc<Specs>, callbacks: Vec<Py<PyAny>>) -> Arc<Table> {
        Arc::new(Table {
            specs: Arc::clone(specs),
            callbacks,
            escaped: Mutex::new(None),
            cancel: CancelHandle::new(),
        })
    }

    /// Keeps the first exception that escaped and cancels the run.
    fn interrupt(&self, error: PyErr) {
        let mut escaped = self.escaped.lock().unwrap_or_else(PoisonError::into_inner);
        if escaped.is_none() {
            *escaped = Some(error);
        }
        drop(escaped);
        self.cancel.cancel();
    }

    fn take_escaped(&self) -> Option<PyErr> {
        self.escaped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn is_interrupted(&self) -> bool {
        self.escaped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// One job of the suite, as the engine sees it: its index in the table.
/// Two values of one index are the same job (same name, same type).
struct PyJob {
    index: usize,
    table: Arc<Table>,
}

/// A phase's place in the callbacks.
fn phase_code(phase: Phase) -> usize {
    match phase {
        Phase::Check => 0,
        Phase::Run => 1,
        Phase::Recheck => 2,
        Phase::Cleanup => 3,
    }
}

impl PyJob {
    fn call(&self, phase: Phase) -> JobResult {
        if self.table.is_interrupted() {
            dojobber::bail!("not started: the run was interrupted");
        }
        let Some(callback) = self.table.callbacks.get(phase_code(phase)) else {
            dojobber::bail!("no {phase} callback");
        };
        Python::with_gil(|py| match callback.call1(py, (self.index,)) {
            Ok(answer) if answer.is_none(py) => Ok(()),
            Ok(answer) => {
                let message = match answer.bind(py).str() {
                    Ok(text) => text.to_string_lossy().into_owned(),
                    Err(_) => "failed".to_owned(),
                };
                Err(dojobber::anyhow::Error::msg(message))
            }
            Err(error) => {
                let message = format!("interrupted: {error}");
                self.table.interrupt(error);
                Err(dojobber::anyhow::Error::msg(message))
            }
        })
    }
}

impl Job for PyJob {
    fn name(&self) -> String {
        self.table.specs.names[self.index].clone()
    }
    fn deps(&self, _: &()) -> Vec<JobRef> {
        self.table.specs.deps[self.index]
            .iter()
            .map(|&index| {
                dep(PyJob {
                    index,
                    table: Arc::clone(&self.table),
                })
            })
            .collect()
    }
    fn tries(&self) -> Option<u32> {
        self.table.specs.tries[self.index]
    }
    fn retry_delay(&self) -> Option<Duration> {
        self.table.specs.retry_delays[self.index]
    }
    fn time_limit(&self) -> Option<Duration> {
        self.table.specs.time_limits[self.index]
    }
    fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
        self.call(cx.phase())
    }
    fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.call(Phase::Run)
    }
    fn cleanup(&self, _: &mut Context<'_, ()>) -> JobResult {
        self.call(Phase::Cleanup)
    }
}

/// Seconds from Python as a duration, or a `ValueError` naming `what`.
fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, not {value}"
        ))
    })
}

fn seconds_each(what: &str, values: Vec<Option<f64>>) -> PyResult<Vec<Option<Duration>>> {
    values
        .into_iter()
        .map(|value| value.map(|value| seconds(what, value)).transpose())
        .collect()
}

/// A suite of jobs by index: `Suite(names, deps, tries, retry_delays,
/// time_limits)`, each a list with one entry per job (`None` for "the
/// run's default").
#[pyclass(frozen, module = "dojobber._engine")]
struct Suite {
    specs: Arc<Specs>,
}

#[pymethods]
impl Suite {
    #[new]
    fn new(
        names: Vec<String>,
        deps: Vec<Vec<usize>>,
        tries: Vec<Option<u32>>,
        retry_delays: Vec<Option<f64>>,
        time_limits: Vec<Option<f64>>,
    ) -> PyResult<Suite> {
        let count = names.len();
        if [
            deps.len(),
            tries.len(),
            retry_delays.len(),
            time_limits.len(),
        ]
        .iter()
        .any(|&len| len != count)
        {
            return Err(PyValueError::new_err(
                "names, deps, tries, retry_delays and time_limits must be as long as each other",
            ));
        }
        if let Some((job, _)) = deps
            .iter()
            .enumerate()
            .find(|(_, mine)| mine.iter().any(|&d| d >= count))
        {
            return Err(PyValueError::new_err(format!(
                "the deps of {:?} name a job index past the {count} jobs",
                names[job]
            )));
        }
        if let Some(job) = tries.iter().position(|&t| t == Some(0)) {
            return Err(PyValueError::new_err(format!(
                "TRIES of {:?} must be >= 1",
                names[job]
            )));
        }
        let index = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect::<HashMap<_, _>>();
        if index.len() != count {
            return Err(PyValueError::new_err("two jobs have the same name"));
        }
        Ok(Suite {
            specs: Arc::new(Specs {
                names,
                deps,
                tries,
                retry_delays: seconds_each("RETRY_DELAY", retry_delays)?,
                time_limits: seconds_each("TIME_LIMIT", time_limits)?,
                index,
            }),
        })
    }

    /// The indexes of the jobs `root` needs, itself last, in the order a
    /// run with one worker tries them (depth-first post-order, deps in
    /// their order). A cycle is a `ValueError` naming its jobs.
    fn order(&self, py: Python<'_>, root: usize) -> PyResult<Vec<usize>> {
        let plan = py.allow_threads(|| self.plan(root))?;
        Ok(self.indexes(&plan))
    }

    /// The graph of the jobs `root` needs, or of a run when `report` is
    /// given, as `fmt` (`png`, `svg`, `dot`) bytes. No Graphviz needed.
    #[pyo3(signature = (root, fmt, report=None))]
    fn draw(
        &self,
        py: Python<'_>,
        root: usize,
        fmt: &str,
        report: Option<PyRef<'_, Report>>,
    ) -> PyResult<Py<PyBytes>> {
        let format = format_named(fmt)?;
        let bytes = match report {
            Some(run) => {
                let run: &Report = &run;
                py.allow_threads(|| {
                    dojobber_viz::render((&run.plan, &run.report), format, &options())
                })
            }
            None => {
                let plan = py.allow_threads(|| self.plan(root))?;
                py.allow_threads(|| dojobber_viz::render(&plan, format, &options()))
            }
        }
        .map_err(|error| PyRuntimeError::new_err(error.to_string()))?;
        Ok(PyBytes::new(py, &bytes).unbind())
    }

    /// Runs the jobs `root` needs, calling `callbacks[phase](index)` (phase
    /// 0 check, 1 run, 2 recheck, 3 cleanup) for each phase. Returns the
    /// report and the exception a callback let escape, if any (the run
    /// was cancelled at that point).
    #[pyo3(signature = (root, callbacks, *, workers=1, no_act=false, deadline=None, cleanup=false, tries=3, retry_delay=1.0))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        root: usize,
        callbacks: Vec<Py<PyAny>>,
        workers: usize,
        no_act: bool,
        deadline: Option<f64>,
        cleanup: bool,
        tries: u32,
        retry_delay: f64,
    ) -> PyResult<(Report, Option<PyObject>)> {
        self.check_root(root)?;
        let table = Table::new(&self.specs, callbacks);
        let mut runner = Runner::new(
            PyJob {
                index: root,
                table: Arc::clone(&table),
            },
            (),
        )
        .output(std::io::sink())
        .cancel_handle(table.cancel.clone())
        .workers(workers)
        .no_act(no_act)
        .cleanup(cleanup)
        .tries(tries)
        .retry_delay(seconds("default_retry_delay", retry_delay)?);
        if let Some(deadline) = deadline {
            runner = runner.deadline(seconds("deadline", deadline)?);
        }
        let ran = drive(py, runner, &table, workers == 1);
        let escaped = table
            .take_escaped()
            .map(|error| error.into_value(py).into_any());
        let (plan, report) = ran.map_err(|error| PyRuntimeError::new_err(error.to_string()))?;
        Ok((Report::new(plan, report), escaped))
    }

    /// `dojobber.main`: parses `argv` as a dojobber program's command
    /// line, runs the jobs `root` needs with the command line's printer,
    /// summary, files and signal handling, and returns the exit code.
    fn main(
        &self,
        py: Python<'_>,
        root: usize,
        argv: Vec<String>,
        callbacks: Vec<Py<PyAny>>,
    ) -> i32 {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let cli = match <Cli as clap::Parser>::try_parse_from(&argv) {
            Ok(cli) => cli,
            Err(error) => {
                let _ = error.print();
                return error.exit_code();
            }
        };
        if let Err(error) = self.check_root(root) {
            dojobber_cli::say!("{error}");
            return 2;
        }
        let table = Table::new(&self.specs, callbacks);
        let runner = Runner::new(
            PyJob {
                index: root,
                table: Arc::clone(&table),
            },
            (),
        );
        let code = py.allow_threads(|| cli.run.execute(runner));
        let _ = std::io::stderr().flush();
        [0u8, 1, 2]
            .into_iter()
            .find(|&n| std::process::ExitCode::from(n) == code)
            .map_or(1, i32::from)
    }
}

impl Suite {
    fn check_root(&self, root: usize) -> PyResult<()> {
        if root >= self.specs.names.len() {
            return Err(PyValueError::new_err(format!(
                "root {root} is not one of the {} jobs",
                self.specs.names.len()
            )));
        }
        Ok(())
    }

    fn plan(&self, root: usize) -> PyResult<Plan> {
        self.check_root(root)?;
        let table = Table::new(&self.specs, Vec::new());
        let runner = Runner::new(PyJob { index: root, table }, ());
        let graph = runner
            .graph()
            .map_err(|error| PyValueError::new_err(error.to_string()))?;
        Ok(graph.plan().clone())
    }

    fn indexes(&self, plan: &Plan) -> Vec<usize> {
        (0..plan.len())
            .filter_map(|i| {
                let name = plan.name(dojobber::engine::JobId::from_index(i));
                self.specs.index.get(name).copied()
            })
            .collect()
    }
}

/// Runs `runner` to its end. With one worker, on this thread (the
/// reference order, and a `KeyboardInterrupt` raised in the phase that
/// runs when Ctrl-C comes). With more, on a thread of its own while this
/// one (the main thread, where Python handles signals) looks for a
/// signal every 50 ms and cancels the run on one.
fn drive(
    py: Python<'_>,
    runner: Runner<()>,
    table: &Arc<Table>,
    on_this_thread: bool,
) -> Result<(Plan, dojobber::Report), dojobber::SetupError> {
    let run = move || {
        runner
            .run()
            .map(|finished| (finished.plan().clone(), finished.into_report()))
    };
    if on_this_thread {
        return py.allow_threads(run);
    }
    let (sender, receiver) = crossbeam_channel::bounded(1);
    std::thread::scope(|scope| {
        let running = scope.spawn(move || {
            let _ = sender.send(run());
        });
        loop {
            let waited = py.allow_threads(|| receiver.recv_timeout(Duration::from_millis(50)));
            match waited {
                Ok(ran) => return ran,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if let Err(error) = py.check_signals() {
                        table.interrupt(error);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    // Nothing sent: the run's thread panicked. Its panic
                    // goes on, and PyO3 turns it into a PanicException.
                    let panic = running.join().err();
                    std::panic::resume_unwind(
                        panic
                            .unwrap_or_else(|| Box::new("the run's thread ended without a report")),
                    );
                }
            }
        }
    })
}

fn options() -> Options {
    Options::default()
}

fn format_named(fmt: &str) -> PyResult<Format> {
    match fmt.to_ascii_lowercase().as_str() {
        "png" => Ok(Format::Png),
        "svg" => Ok(Format::Svg),
        "dot" | "gv" => Ok(Format::Dot),
        _ => Err(PyValueError::new_err(format!(
            "graph format {fmt:?} is not one of png, svg, dot"
        ))),
    }
}

/// What happened in a run: `dojobber.Report`.
#[pyclass(frozen, module = "dojobber._engine")]
struct Report {
    plan: Plan,
    report: dojobber::Report,
    /// Each job's place in the report, by name (the report's own lookup
    /// is a search).
    index: HashMap<String, usize>,
}

impl Report {
    fn new(plan: Plan, report: dojobber::Report) -> Report {
        let index = report
            .jobs()
            .enumerate()
            .map(|(i, job)| (job.name().to_owned(), i))
            .collect();
        Report {
            plan,
            report,
            index,
        }
    }

    fn job(&self, name: &str) -> PyResult<dojobber::JobReport<'_>> {
        self.index
            .get(name)
            .and_then(|&i| self.report.job_at(i))
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_owned()))
    }

    fn write(&self, flag: &'static str, path: PathBuf, bytes: &[u8]) -> PyResult<()> {
        let file =
            OutputFile::prepare(flag, &path).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        file.write(|out| out.write_all(bytes))
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

#[pymethods]
impl Report {
    /// Whether every job passed or was fixed.
    fn success(&self) -> bool {
        self.report.is_success()
    }

    /// Whether some job passed or was fixed.
    fn partial_success(&self) -> bool {
        self.report.is_partial_success()
    }

    /// The jobs' names, in the reference order.
    fn names(&self) -> Vec<String> {
        self.report
            .jobs()
            .map(|job| job.name().to_owned())
            .collect()
    }

    /// `passed`, `fixed`, `failed` or `blocked`.
    fn status(&self, name: &str) -> PyResult<&'static str> {
        Ok(self.job(name)?.status().as_str())
    }

    /// Tries the job used.
    fn tries(&self, name: &str) -> PyResult<u32> {
        Ok(self.job(name)?.tries())
    }

    /// The message of the job's last failure, if any.
    fn error(&self, name: &str) -> PyResult<Option<String>> {
        Ok(self.job(name)?.last_error().map(|f| f.message.clone()))
    }

    /// The jobs whose last try failed by running over their `TIME_LIMIT`.
    fn timed_out(&self) -> Vec<String> {
        self.report
            .jobs()
            .filter(|job| {
                job.last_error()
                    .is_some_and(|f| f.kind == dojobber::FailureKind::TimedOut)
            })
            .map(|job| job.name().to_owned())
            .collect()
    }

    /// For a blocked job, the dep that blocked it.
    fn blocked_by(&self, name: &str) -> PyResult<Option<String>> {
        Ok(self.job(name)?.blocked_by().map(str::to_owned))
    }

    /// Seconds the job's phases took.
    fn time(&self, name: &str) -> PyResult<f64> {
        Ok(self.job(name)?.time().as_secs_f64())
    }

    /// Names by status: `{"passed": [...], "fixed": [...], ...}`.
    fn by_status(&self) -> HashMap<&'static str, Vec<String>> {
        [
            Status::Passed,
            Status::Fixed,
            Status::Failed,
            Status::Blocked,
        ]
        .into_iter()
        .map(|status| {
            let names = self.report.names_with(status);
            (
                status.as_str(),
                names.into_iter().map(str::to_owned).collect(),
            )
        })
        .collect()
    }

    /// Why the run stopped early (`cancelled`, `run deadline passed`, ...), or None.
    #[getter]
    fn stopped(&self) -> Option<&'static str> {
        self.report.stopped.map(|reason| reason.as_str())
    }

    /// Seconds from the run's start to its end.
    #[getter]
    fn elapsed(&self) -> f64 {
        self.report.elapsed.as_secs_f64()
    }

    /// Rounds of tries.
    #[getter]
    fn rounds(&self) -> u32 {
        self.report.rounds
    }

    /// The report as JSON, the same as a Rust program's `--report-json`.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.report)
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Writes the JSON report to `path` (replaced whole, or not at all).
    fn write_json(&self, path: PathBuf) -> PyResult<()> {
        let mut text = self.to_json()?;
        text.push('\n');
        self.write("report_json", path, text.as_bytes())
    }

    /// Writes the run's self-contained HTML page to `path`.
    fn write_html(&self, path: PathBuf) -> PyResult<()> {
        let view = dojobber_viz::html::RunView::from_run(&self.plan, &self.report);
        self.write("html", path, dojobber_viz::html::page(&view).as_bytes())
    }

    /// Draws the run to `path` (`.png`, `.svg` or `.dot`).
    fn write_graph(&self, path: PathBuf) -> PyResult<()> {
        let format = Format::from_path(&path).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let bytes = dojobber_viz::render((&self.plan, &self.report), format, &options())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        self.write("graph", path, &bytes)
    }

    fn __repr__(&self) -> String {
        let count = |status| self.report.names_with(status).len();
        format!(
            "<dojobber.Report: {} passed, {} fixed, {} failed, {} blocked>",
            count(Status::Passed),
            count(Status::Fixed),
            count(Status::Failed),
            count(Status::Blocked)
        )
    }
}

/// The module `dojobber._engine`.
#[pymodule]
fn _engine(module: &Bound<'_, PyModule>) -> PyResult<()> {
    // A failing Check is an expected result: with RUST_BACKTRACE set, each
    // would capture a backtrace nobody reads (a quarter of a fix run's
    // instructions). Panics keep theirs. Done only while the process has
    // one thread, as changing the environment is sound only then.
    dojobber_cli::skip_error_backtraces();
    module.add_class::<Suite>()?;
    module.add_class::<Report>()?;
    Ok(())
}
