#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// Prints a line for people on stderr, like `eprintln!`; when stderr
/// cannot be written either (`2>/dev/full`, a closed descriptor), nothing,
/// where `eprintln!` would panic: the exit code says the rest. Every
/// program on this crate writes its own lines for people with it.
///
/// ```
/// dojobber_cli::say!("error: --count: {} is not a number", "ten");
/// ```
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod args;
mod files;
mod progress;
mod signals;
mod summary;
mod terminal;

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{CancelHandle, Finished, Report, Runner};
use dojobber_viz::html::RunView;
use dojobber_viz::{Format, GraphSource};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use args::{RunArgs, When};
pub use files::{OutputError, OutputFile};

pub use dojobber::text::escaped;
use files::{Destination, Gate};
pub use summary::{list, summary};

use progress::{BarWriter, Progress};
use signals::AbandonHint;

/// How a dojobber program exits.
///
/// ```
/// use dojobber_cli::Exit;
///
/// let code: std::process::ExitCode = Exit::CannotStart.into();
/// assert_eq!(code, std::process::ExitCode::from(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: every job passed.
    Success = 0,
    /// 1: some job failed or is blocked, or a cleanup failed.
    JobsFailed = 1,
    /// 2: the suite could not start: bad flags, a file that cannot be
    /// written, two flags naming one file, a cycle, an unknown job.
    CannotStart = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// A run that has ended, as the command line reads it: the plan it ran
/// and what happened. [`Finished`] is one; a run another executor made
/// (see [`RunArgs::execute_with`]) may be another.
///
/// ```
/// use dojobber::{Group, Runner};
/// use dojobber_cli::Ran;
///
/// let finished = Runner::new(Group::<()>::new("Nothing"), ()).run()?;
/// assert_eq!(Ran::plan(&finished).len(), 1);
/// assert!(Ran::report(&finished).is_success());
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub trait Ran {
    /// The plan that was run.
    fn plan(&self) -> &Plan;
    /// What happened to every job.
    fn report(&self) -> Report;
}

impl<A: Sync + 'static> Ran for Finished<A> {
    fn plan(&self) -> &Plan {
        Finished::plan(self)
    }
    fn report(&self) -> Report {
        Finished::report(self)
    }
}

/// What the end of the run needs from before it.
struct Watched {
    /// The event stream's failures, said after the run.
    failures: Arc<Mutex<Vec<String>>>,
    /// `--report-json`, shared with the signal handler.
    report_file: Arc<Mutex<Option<OutputFile>>>,
    graph: Option<(OutputFile, Format)>,
    html: Option<OutputFile>,
    to_stdout: bool,
    /// The picture `--graph-before` drew, which `--open` shows when
    /// nothing else is drawn.
    drawn: Option<PathBuf>,
    bar: Option<ProgressBar>,
    color: bool,
    /// Cancelled by a signal after the run: the outputs not written yet
    /// (but the report) are skipped.
    stop: CancelHandle,
}

/// The files the flags ask for, opened before the run.
struct Outputs {
    report: Option<OutputFile>,
    html: Option<OutputFile>,
    graph: Option<(OutputFile, Format)>,
    graph_before: Option<(OutputFile, Format)>,
    events: Option<EventStream>,
    /// Whether one of them is stdout: then the summary goes to stderr,
    /// so that stdout holds that output alone.
    to_stdout: bool,
}

impl RunArgs {
    /// Runs `runner` as the flags say and returns the exit code: the one
    /// call a program makes.
    ///
    /// With `RUST_BACKTRACE` set, a failing check (an expected result here)
    /// would capture a backtrace in every `anyhow::Error` it makes, which
    /// nothing shows: unless `-d` is given or `RUST_LIB_BACKTRACE` is set,
    /// it sets `RUST_LIB_BACKTRACE=0` first (see [`skip_error_backtraces`]).
    /// Panics keep their backtraces.
    pub fn execute<A: Sync + 'static>(&self, runner: Runner<A>) -> ExitCode {
        self.execute_with(runner, Runner::run)
    }

    /// Like [`execute`](Self::execute), with `run` performing the run the
    /// flags configured instead of [`Runner::run`]: the hook for another
    /// executor (`dojobber-nats` runs it on remote workers). Everything
    /// else is the same: the flags are checked and the files opened
    /// before `run` is called, observers and the cancel on Ctrl-C/SIGTERM
    /// are on the runner it gets, and what it returns is written and
    /// summarised. An `Err` from `run` is a run that could not start
    /// (exit 2, the message on stderr).
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    /// use dojobber_cli::RunArgs;
    ///
    /// let flags = RunArgs { quiet: true, ..RunArgs::default() };
    /// let runner = Runner::new(Group::<()>::new("Nothing"), ());
    /// let code = flags.execute_with(runner, |runner| runner.workers(2).run());
    /// assert_eq!(code, std::process::ExitCode::SUCCESS);
    /// ```
    pub fn execute_with<A, R, E>(
        &self,
        runner: Runner<A>,
        run: impl FnOnce(Runner<A>) -> Result<R, E>,
    ) -> ExitCode
    where
        A: 'static,
        R: Ran,
        E: std::fmt::Display,
    {
        if !self.debug {
            skip_error_backtraces();
        }
        let exit = self.run(runner, run);
        // Later signals find no run and no output to stop: they quit.
        signals::quit_on_signals();
        exit.into()
    }

    /// Validates the flags, opens the outputs, draws the plan, runs with
    /// the observers and the signal handler on, then writes the outputs.
    fn run<A: 'static, R: Ran, E: std::fmt::Display>(
        &self,
        runner: Runner<A>,
        run: impl FnOnce(Runner<A>) -> Result<R, E>,
    ) -> Exit {
        let runner = match self.validate(runner) {
            Ok(runner) => runner,
            Err(exit) => return exit,
        };
        let mut outputs = match self.open_outputs() {
            Ok(outputs) => outputs,
            Err(error) => return cannot_start(error),
        };
        let drawn = match self.before_the_run(&runner, &mut outputs) {
            ControlFlow::Continue(drawn) => drawn,
            ControlFlow::Break(exit) => return exit,
        };
        let (runner, watched) = self.observe(runner, outputs, drawn);
        let finished = match run(runner) {
            Ok(finished) => finished,
            Err(error) => return cannot_start(error),
        };
        signals::run_ended();
        self.after_the_run(&finished, watched)
    }

    /// Configures the runner and refuses what cannot start: an unknown
    /// `--only` job, `--open` with nothing to open.
    fn validate<A: 'static>(&self, runner: Runner<A>) -> Result<Runner<A>, Exit> {
        let mut runner = self.configure(runner);
        if let Some(only) = &self.only {
            runner = runner.only(only).map_err(cannot_start)?;
        }
        if self.open && self.html.is_none() && self.graph.is_none() && self.graph_before.is_none() {
            return Err(cannot_start(
                "--open: nothing to open: add --html, --graph or --graph-before",
            ));
        }
        if self.open
            && let Some(html) = &self.html
            && Destination::of(html) == Destination::Stdout
        {
            let why = "the page goes to stdout: there is no file to open";
            return Err(cannot_start(format!(
                "--open --html {}: {why}",
                html.display()
            )));
        }
        Ok(runner)
    }

    /// `--graph-before` and `--list`, which need the plan and no run:
    /// breaks with the exit code when nothing is to run; else goes on with
    /// the picture drawn, if any.
    fn before_the_run<A: 'static>(
        &self,
        runner: &Runner<A>,
        outputs: &mut Outputs,
    ) -> ControlFlow<Exit, Option<PathBuf>> {
        let mut drawn = None;
        if !self.list && outputs.graph_before.is_none() {
            return ControlFlow::Continue(drawn);
        }
        let graph = match runner.graph() {
            Ok(graph) => graph,
            Err(error) => return ControlFlow::Break(cannot_start(error)),
        };
        if let Some((file, format)) = outputs.graph_before.take() {
            let path = file.path().to_owned();
            let options = self.graph_options();
            if let Err(error) = file.write(|out| draw(out, graph.plan(), format, &options)) {
                return ControlFlow::Break(cannot_start(error));
            }
            drawn = Some(path);
        }
        // --list takes no flag that needs a run (clap refuses them).
        if self.list {
            print_human(&list(graph.plan()), outputs.to_stdout);
            if self.open
                && let Some(path) = drawn
                && let Err(error) = open_in_viewer(&path)
            {
                say!("error: {}", escaped(&error));
            }
            return ControlFlow::Break(Exit::Success);
        }
        ControlFlow::Continue(drawn)
    }

    /// Puts the event stream, the progress display and the signal handler
    /// on the run; returns the runner and what the end of the run needs.
    fn observe<A: 'static>(
        &self,
        mut runner: Runner<A>,
        outputs: Outputs,
        drawn: Option<PathBuf>,
    ) -> (Runner<A>, Watched) {
        let failures = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut stream) = outputs.events {
            stream.failures = Some(Arc::clone(&failures));
            runner = runner.observe(stream);
        }
        let color = self.color.enabled(if outputs.to_stdout {
            terminal::is_colour_terminal(&io::stderr())
        } else {
            terminal::is_colour_terminal(&io::stdout())
        });
        let report_file = Arc::new(Mutex::new(outputs.report));
        let exit_now = signals::ExitNow {
            report: Arc::clone(&report_file),
            summary: (!self.quiet).then_some(color),
            stdout_taken: outputs.to_stdout,
        };
        let cancel = runner.current_cancel_handle();
        // Cancelled by a signal after the run: skips the outputs not written yet.
        let stop = CancelHandle::new();
        signals::watch(cancel.clone(), exit_now, stop.clone());
        let bar = self.progress_bar();
        if let Some(bar) = &bar {
            runner = runner
                .output(BarWriter::new(bar.clone()))
                .observe(Progress::new(bar.clone()))
                .observe(AbandonHint::new(
                    cancel.clone(),
                    BarWriter::new(bar.clone()),
                ));
        } else {
            runner = runner.observe(AbandonHint::new(cancel.clone(), io::stderr()));
        }
        let watched = Watched {
            failures,
            report_file,
            graph: outputs.graph,
            html: outputs.html,
            to_stdout: outputs.to_stdout,
            drawn,
            bar,
            color,
            stop,
        };
        (runner, watched)
    }

    /// Prints the summary, writes the report (whatever signal came) and
    /// the pictures and the page (unless a signal came), opens one with
    /// `--open`, and returns the run's exit code.
    fn after_the_run<R: Ran>(&self, finished: &R, watched: Watched) -> Exit {
        let Watched {
            failures,
            report_file,
            graph,
            html,
            to_stdout,
            mut drawn,
            bar,
            color,
            stop,
        } = watched;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = Arc::new(finished.report());
        if !self.quiet {
            print_human(&summary(&report, color), to_stdout);
        }
        let mut failures =
            std::mem::take(&mut *failures.lock().unwrap_or_else(PoisonError::into_inner));
        // The pictures and the page need the plan on their threads.
        let mut plan = None;
        let mut shared_plan =
            || Arc::clone(plan.get_or_insert_with(|| Arc::new(finished.plan().clone())));
        // Taken under its lock: a second signal during the run writes it
        // as the run stood, and then it is gone.
        let report_file = report_file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(file) = report_file {
            // A signal does not skip it: only quitting does.
            let written = file.write(|out| {
                serde_json::to_writer_pretty(&mut *out, &*report)?;
                out.write_all(b"\n")
            });
            failures.extend(written.err().map(|error| error.to_string()));
        }
        if let Some((file, format)) = graph {
            let path = file.path().to_owned();
            let (plan, report) = (shared_plan(), Arc::clone(&report));
            let options = self.graph_options();
            let written = write_unless_stopped(&stop, file, move |out| {
                draw(out, (&*plan, &*report), format, &options)
            });
            match written {
                Ok(()) => drawn = Some(path),
                Err(error) => failures.push(error),
            }
        }
        if let Some(file) = html {
            let path = file.path().to_owned();
            let (plan, report, flags) = (shared_plan(), Arc::clone(&report), self.clone());
            let written = write_unless_stopped(&stop, file, move |out| {
                let page = dojobber_viz::html::page(&flags.run_view(&plan, &report));
                out.write_all(page.as_bytes())
            });
            match written {
                // The page, when written, is what --open shows.
                Ok(()) => drawn = Some(path),
                Err(error) => failures.push(error),
            }
        }
        if self.open
            && !stop.is_cancelled()
            && let Some(path) = drawn
            && let Err(error) = open_in_viewer(&path)
        {
            failures.push(error);
        }
        for failure in &failures {
            say!("error: {}; the exit code is the run's", escaped(failure));
        }
        // A failed cleanup may leave a lock behind: a script must see it.
        if report.is_success() && report.cleanup_failure.is_none() {
            Exit::Success
        } else {
            Exit::JobsFailed
        }
    }

    /// Opens every file the flags name and checks every picture format,
    /// before anything runs. The event stream comes last: it is the one
    /// file opening truncates.
    fn open_outputs(&self) -> Result<Outputs, OutputError> {
        let to_stdout = self.check_destinations()?;
        let picture = |flag, path: &Path| {
            let format =
                Format::from_path(path).map_err(|error| OutputError::new(flag, path, error))?;
            Ok::<_, OutputError>((OutputFile::prepare(flag, path)?, format))
        };
        let report = self
            .report_json
            .as_deref()
            .map(|path| OutputFile::prepare("--report-json", path))
            .transpose()?;
        let html = self
            .html
            .as_deref()
            .map(|path| {
                let is_html = path.extension().is_some_and(|ext| {
                    ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm")
                }) || files::is_dash(path);
                if !is_html {
                    return Err(OutputError::new("--html", path, "name it .html"));
                }
                OutputFile::prepare("--html", path)
            })
            .transpose()?;
        let graph = self
            .graph
            .as_deref()
            .map(|path| picture("--graph", path))
            .transpose()?;
        let graph_before = self
            .graph_before
            .as_deref()
            .map(|path| picture("--graph-before", path))
            .transpose()?;
        let events = self
            .events_json
            .as_deref()
            .map(|path| EventStream::open("--events-json", path))
            .transpose()?;
        Ok(Outputs {
            report,
            html,
            graph,
            graph_before,
            events,
            to_stdout,
        })
    }

    /// Refuses an output flag that names one of the program's input
    /// files, `inputs` (each with the flag that named it): the run would
    /// overwrite what it reads. Files that exist are compared by device
    /// and inode (a link or another path to the same file is the same
    /// file), names not taken yet by path. Call it before reading the
    /// inputs; on an error, print it and exit with [`Exit::CannotStart`].
    ///
    /// ```
    /// use dojobber_cli::RunArgs;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = dir.path().join("cfg.toml");
    /// std::fs::write(&config, "")?;
    /// let flags = RunArgs { report_json: Some(config.clone()), ..RunArgs::default() };
    /// let error = flags.check_inputs([("--config", &*config)]).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     format!("--report-json {0}: the input --config {0}: it would be overwritten", config.display())
    /// );
    /// let elsewhere = RunArgs { report_json: Some(dir.path().join("r.json")), ..RunArgs::default() };
    /// assert!(elsewhere.check_inputs([("--config", &*config)]).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_inputs<'a>(
        &self,
        inputs: impl IntoIterator<Item = (&'a str, &'a Path)>,
    ) -> Result<(), OutputError> {
        let inputs: Vec<_> = inputs
            .into_iter()
            .map(|(flag, path)| (flag, path, Destination::of(path)))
            .filter(|(_, _, input)| {
                matches!(input, Destination::Existing(..) | Destination::Path(_))
            })
            .collect();
        for (flag, path) in self.outputs() {
            let output = Destination::of(path);
            if let Some((input_flag, input_path, _)) =
                inputs.iter().find(|(_, _, input)| *input == output)
            {
                let why = format!(
                    "the input {input_flag} {}: it would be overwritten",
                    input_path.display()
                );
                return Err(OutputError::new(flag, path, why));
            }
        }
        Ok(())
    }

    /// Every output flag given, with its path.
    fn outputs(&self) -> impl Iterator<Item = (&'static str, &Path)> {
        [
            ("--report-json", &self.report_json),
            ("--events-json", &self.events_json),
            ("--html", &self.html),
            ("--graph", &self.graph),
            ("--graph-before", &self.graph_before),
        ]
        .into_iter()
        .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
    }

    /// Refuses two flags that name one file (one output would overwrite
    /// the other), stdout included; a device other than stdout
    /// (`/dev/null`) may be named by several. Returns whether an output
    /// goes to stdout.
    fn check_destinations(&self) -> Result<bool, OutputError> {
        let mut seen: Vec<(&str, &Path, Destination)> = Vec::new();
        for (flag, path) in self.outputs() {
            let destination = Destination::of(path);
            if destination != Destination::Device
                && let Some((other, other_path, _)) =
                    seen.iter().find(|(_, _, seen)| *seen == destination)
            {
                let why = format!("the same file as {other} {}", other_path.display());
                return Err(OutputError::new(flag, path, why));
            }
            seen.push((flag, path, destination));
        }
        Ok(seen.iter().any(|(_, _, to)| *to == Destination::Stdout))
    }

    /// The HTML page's view of the run, with the settings the flags chose.
    fn run_view(&self, plan: &Plan, report: &dojobber::Report) -> RunView {
        let mut view = RunView::from_run(plan, report).setting("workers", self.workers.to_string());
        if let Some(tries) = self.tries {
            view = view.setting("tries", tries.to_string());
        }
        if let Some(delay) = self.retry_delay {
            view = view.setting("retry delay", humantime::format_duration(delay).to_string());
        }
        if let Some(deadline) = self.deadline {
            view = view.setting("deadline", humantime::format_duration(deadline).to_string());
        }
        if self.fail_fast {
            view = view.setting("fail-fast", "yes");
        }
        if let Some(only) = &self.only {
            view = view.setting("only", only.clone());
        }
        view
    }

    fn progress_bar(&self) -> Option<ProgressBar> {
        if !self
            .progress
            .enabled(terminal::is_redrawing_terminal(&io::stderr()))
        {
            return None;
        }
        let target = ProgressDrawTarget::term_like(Box::new(console::Term::stderr()));
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let style = ProgressStyle::with_template("{bar:30} {pos}/{len} jobs  {msg}")
            .expect("the template is valid");
        bar.set_style(style);
        Some(bar)
    }
}

/// Draws the plan or the run into `out` as `format`, in the style `options` holds.
fn draw<'a>(
    out: &mut dyn Write,
    source: impl Into<GraphSource<'a>>,
    format: Format,
    options: &dojobber_viz::Options,
) -> io::Result<()> {
    let bytes = dojobber_viz::render(source, format, options).map_err(io::Error::other)?;
    out.write_all(&bytes)
}

/// Sets `RUST_LIB_BACKTRACE=0` when `RUST_BACKTRACE` asks for backtraces
/// and `RUST_LIB_BACKTRACE` says nothing, so that errors (`anyhow`,
/// `std::backtrace::Backtrace::capture`) skip the capture while panics,
/// which read only `RUST_BACKTRACE`, keep theirs. Returns whether it did.
///
/// Changing the environment is sound only while no other thread can read
/// it, so this does it only when the process has one thread (counted in
/// `/proc/self/task`; elsewhere it does nothing). Call it at the start of
/// `main`; [`RunArgs::execute`] calls it too. It changes nothing for
/// errors made before it, as std reads the setting once.
///
/// ```no_run
/// // First thing in `main`, before any thread exists:
/// dojobber_cli::skip_error_backtraces();
/// // ... then parse the flags, build the runner, execute.
/// ```
#[allow(unsafe_code)] // `set_var`, with the process single-threaded: see SAFETY below.
pub fn skip_error_backtraces() -> bool {
    let asks = std::env::var_os("RUST_BACKTRACE").is_some_and(|value| value != "0");
    if !asks || std::env::var_os("RUST_LIB_BACKTRACE").is_some() || !single_threaded() {
        return false;
    }
    // SAFETY: this process has one thread, this one: nothing else reads or
    // writes the environment while it changes.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    true
}

fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// `--open`: shows `path` in the system's viewer (xdg-open and the like,
/// through the `open` crate), and returns when the launcher does.
fn open_in_viewer(path: &Path) -> Result<(), String> {
    open::that(path).map_err(|error| {
        let why = if error.kind() == io::ErrorKind::NotFound {
            "no viewer found (xdg-open, gio, gnome-open or kde-open): open it yourself".to_owned()
        } else {
            format!("the viewer failed: {error}")
        };
        format!("--open {}: {why}", path.display())
    })
}

/// Prints text for people: on stdout, or on stderr when an output took
/// stdout.
pub(crate) fn print_human(text: &str, stdout_taken: bool) {
    if stdout_taken {
        let _ = io::stderr().write_all(text.as_bytes());
    } else {
        print_stdout(text);
    }
}

/// Prints on stdout; a reader that went away (`--list | head -1`) ends
/// the output quietly.
pub(crate) fn print_stdout(text: &str) {
    let mut out = io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    match written {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => {
            say!("error: cannot write to stdout: {error}");
        }
        _ => {}
    }
}

/// Writes `file` with `fill` (drawing included) on a thread of its own and
/// waits for it, unless a signal pulls `stop` first.
///
/// Only this thread puts a regular file in place, and only when no signal
/// came first: a file said "not written" was not (its temporary is
/// removed). A pipe, a device or stdout is written in place as `fill`
/// goes: a signal before its first byte leaves it untouched ("not
/// written"), after it cuts it short ("cut short"). The thread given up on
/// is not stopped: it may go on drawing, or writing to such a pipe, after
/// `execute` returns, until the process ends.
fn write_unless_stopped(
    stop: &CancelHandle,
    mut file: OutputFile,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
) -> Result<(), String> {
    let named = format!("{} {}", file.flag(), file.path().display());
    let not_written = |why: &str| format!("{named}: not written: {why}");
    if stop.is_cancelled() {
        return Err(not_written("stopped by a signal"));
    }
    let temp = file.temp();
    let gate = Arc::new(Gate::default());
    let (done, wait) = mpsc::channel();
    let stopped = done.clone();
    let _subscription = stop.subscribe(move || {
        let _ = stopped.send(None);
    });
    let writer_gate = Arc::clone(&gate);
    let spawned = std::thread::Builder::new()
        .name("dojobber-output".to_owned())
        .spawn(move || {
            let filled = panic::catch_unwind(AssertUnwindSafe(|| file.fill(fill, &writer_gate)));
            let _ = done.send(Some((file, filled)));
        });
    if let Err(error) = spawned {
        return Err(not_written(&format!("no thread to write it: {error}")));
    }
    let cut_unless_untouched = |why: &str| {
        if gate.close() {
            not_written(why)
        } else {
            format!("{named}: cut short: {why}")
        }
    };
    match wait.recv() {
        Ok(Some((_, Err(_)))) => Err(cut_unless_untouched("it panicked")),
        Ok(Some((_, Ok(Err(error))))) => Err(error.to_string()),
        Ok(Some((file, Ok(Ok(()))))) if file.temp().is_none() || !stop.is_cancelled() => {
            file.commit().map_err(|error| error.to_string())
        }
        // Filled, but a signal came first: dropping it removes its temporary.
        Ok(Some(_)) => Err(not_written("stopped by a signal")),
        Ok(None) | Err(_) => {
            if let Some(temp) = temp {
                temp.remove();
            }
            Err(cut_unless_untouched("stopped by a signal"))
        }
    }
}

fn cannot_start(error: impl std::fmt::Display) -> Exit {
    say!("error: {}", escaped(&error.to_string()));
    Exit::CannotStart
}

/// `--events-json`: one JSON object per event, flushed as it happens.
struct EventStream {
    out: io::BufWriter<std::fs::File>,
    broken: bool,
    flag: &'static str,
    path: std::path::PathBuf,
    failures: Option<Arc<Mutex<Vec<String>>>>,
}

impl EventStream {
    fn open(flag: &'static str, path: &Path) -> Result<EventStream, OutputError> {
        Ok(EventStream {
            out: io::BufWriter::new(files::open_stream(flag, path)?),
            broken: false,
            flag,
            path: path.to_owned(),
            failures: None,
        })
    }
}

impl Observer for EventStream {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if self.broken {
            return;
        }
        let written = serde_json::to_writer(&mut self.out, &event.record(plan))
            .map_err(io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| self.out.flush());
        if let Err(error) = written {
            let error = OutputError::new(self.flag, &self.path, error);
            if let Some(failures) = &self.failures {
                failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(error.to_string());
            }
            self.broken = true;
        }
    }
}

/// The README's examples, compiled and run as doctests here, where both the
/// engine and the command line are in reach.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
