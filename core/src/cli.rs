//! The command line every dojobber program gets for free.
//!
//! Flatten [`RunArgs`] into your own clap parser and hand your runner to
//! [`RunArgs::execute`]: it applies the flags, shows progress, prints the
//! summary, writes the reports and returns the exit code.
//!
//! ```no_run
//! use clap::Parser;
//! use dojobber::{cli::RunArgs, Context, Job, JobResult, Runner};
//!
//! struct Hello;
//! impl Job<String> for Hello {
//!     fn check(&self, cx: &mut Context<'_, String>) -> JobResult {
//!         println!("hello, {}", cx.args());
//!         Ok(())
//!     }
//! }
//!
//! #[derive(Parser)]
//! struct Cli {
//!     /// Whom to greet.
//!     #[arg(long, default_value = "world")]
//!     name: String,
//!     #[command(flatten)]
//!     run: RunArgs,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     cli.run.execute(Runner::new(Hello, cli.name))
//! }
//! ```
//!
//! Ctrl-C cancels the run: phases under way finish, cleanups run, the
//! report is complete (jobs not reached are blocked, `cancelled`); a second
//! Ctrl-C exits at once.
//!
//! Exit codes: 0 when every job passed, 1 when some job failed or is
//! blocked, 2 when the suite could not start (a cycle, a duplicate job name,
//! an unknown `--only` job, bad flags) or a file asked for could not be
//! written; the message is on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cancel::CancelHandle;
use crate::event::Event;
use crate::job::{JobKind, Phase};
use crate::output::{Observer, Verbosity};
use crate::plan::{JobId, Plan};
use crate::report::{Report, Status};
use crate::runner::Runner;

/// The flags of a dojobber program, as a clap argument group:
/// `#[command(flatten)] run: RunArgs`.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct RunArgs {
    /// Only check: run nothing, retry nothing, clean nothing; the summary
    /// lists what would run.
    #[arg(short = 'n', long)]
    pub no_act: bool,
    /// Print one line per phase of every job.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Verbose, plus error chains and cleanups.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Print no summary at the end.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Run up to N phases at once, on N threads (1: one at a time, in the
    /// reference order).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// Stop starting new jobs after the first one that failed for good.
    #[arg(long)]
    pub fail_fast: bool,
    /// Start no new phase after this long: `90s`, `10m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Tries for jobs that do not set their own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tries: Option<u32>,
    /// Least time between a failed try and the next, for jobs that do not
    /// set their own: `0`, `500ms`, `2s`, `1m 30s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub retry_delay: Option<Duration>,
    /// Leave cleanups undone.
    #[arg(long)]
    pub no_cleanup: bool,
    /// Run only this job and what it needs.
    #[arg(long, value_name = "JOB")]
    pub only: Option<String>,
    /// Print the jobs in the order they are tried, with their deps; run nothing.
    #[arg(long)]
    pub list: bool,
    /// Write the report as JSON to this file, even when jobs fail.
    #[arg(long, value_name = "PATH")]
    pub report_json: Option<PathBuf>,
    /// Write every event as a line of JSON to this file, as it happens.
    #[arg(long, value_name = "PATH")]
    pub events_json: Option<PathBuf>,
    /// Draw the graph after the run to this file (.dot, .svg or .png).
    #[arg(long, value_name = "PATH")]
    pub graph: Option<PathBuf>,
    /// Draw the plan, before anything runs, to this file (.dot, .svg or .png).
    #[arg(long, value_name = "PATH")]
    pub graph_before: Option<PathBuf>,
    /// Show a progress display on stderr.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub progress: When,
    /// Colour the summary.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub color: When,
}

impl Default for RunArgs {
    /// What a command line with none of the flags means.
    fn default() -> Self {
        RunArgs {
            no_act: false,
            verbose: false,
            debug: false,
            quiet: false,
            jobs: 1,
            fail_fast: false,
            deadline: None,
            tries: None,
            retry_delay: None,
            no_cleanup: false,
            only: None,
            list: false,
            report_json: None,
            events_json: None,
            graph: None,
            graph_before: None,
            progress: When::Auto,
            color: When::Auto,
        }
    }
}

/// `auto` (when stderr or stdout is a terminal), `always` or `never`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// When the stream is a terminal.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl When {
    fn enabled(self, is_terminal: bool) -> bool {
        match self {
            When::Auto => is_terminal,
            When::Always => true,
            When::Never => false,
        }
    }
}

/// How a dojobber program exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: every job passed.
    Success = 0,
    /// 1: some job failed or is blocked.
    JobsFailed = 1,
    /// 2: the suite could not start, or a file asked for could not be written.
    CannotStart = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Draws the job graph for `--graph PATH`: the plan, and the report after
/// the run. `dojobber-viz` provides one; dojobber itself draws nothing.
pub type GraphWriter<'a> =
    &'a dyn Fn(&Path, &Plan, Option<&Report>) -> Result<(), Box<dyn std::error::Error>>;

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

impl RunArgs {
    /// The printer's verbosity the flags ask for.
    pub fn verbosity(&self) -> Verbosity {
        match (self.debug, self.verbose) {
            (true, _) => Verbosity::Debug,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Quiet,
        }
    }

    /// Applies the flags that configure a run: tries, retry delay,
    /// no-act, cleanup, verbosity. [`execute`](Self::execute) calls it.
    pub fn configure<A: 'static>(&self, mut runner: Runner<A>) -> Runner<A> {
        if let Some(tries) = self.tries {
            runner = runner.tries(tries);
        }
        if let Some(delay) = self.retry_delay {
            runner = runner.retry_delay(delay);
        }
        if let Some(deadline) = self.deadline {
            runner = runner.deadline(deadline);
        }
        runner
            .jobs(usize::from(self.jobs))
            .fail_fast(self.fail_fast)
            .no_act(self.no_act)
            .cleanup(!self.no_cleanup)
            .verbosity(self.verbosity())
    }

    /// Runs `runner` as the flags say and returns the exit code: the one
    /// call a program makes. `--graph` fails here, since drawing needs
    /// dojobber-viz: use [`execute_with_graph`](Self::execute_with_graph).
    pub fn execute<A: Sync + 'static>(&self, runner: Runner<A>) -> ExitCode {
        self.run(runner, None).into()
    }

    /// [`execute`](Self::execute), with a writer for `--graph`.
    pub fn execute_with_graph<A: Sync + 'static>(
        &self,
        runner: Runner<A>,
        graph: GraphWriter<'_>,
    ) -> ExitCode {
        self.run(runner, Some(graph)).into()
    }

    fn run<A: Sync + 'static>(
        &self,
        runner: Runner<A>,
        graph_writer: Option<GraphWriter<'_>>,
    ) -> Exit {
        let color = self.color.enabled(io::stdout().is_terminal());
        let mut runner = self.configure(runner);
        if let Some(only) = &self.only {
            runner = match runner.only(only) {
                Ok(runner) => runner,
                Err(error) => return cannot_start(error),
            };
        }
        if self.list {
            return match runner.graph() {
                Ok(graph) => {
                    print!("{}", list(graph.plan()));
                    Exit::Success
                }
                Err(error) => cannot_start(error),
            };
        }
        if (self.graph.is_some() || self.graph_before.is_some()) && graph_writer.is_none() {
            return cannot_start("--graph needs a graph writer: call execute_with_graph");
        }
        if let (Some(path), Some(draw)) = (&self.graph_before, graph_writer) {
            let drawn = runner
                .graph()
                .map_err(|error| error.to_string())
                .and_then(|graph| {
                    draw(path, graph.plan(), None).map_err(|error| error.to_string())
                });
            if let Err(error) = drawn {
                return cannot_start(format!("cannot draw {}: {error}", path.display()));
            }
        }

        let failures = Arc::new(Mutex::new(Vec::new()));
        if let Some(path) = &self.events_json {
            match EventStream::create(path, Arc::clone(&failures)) {
                Ok(stream) => runner = runner.observe(stream),
                Err(error) => {
                    return cannot_start(format!("cannot write {}: {error}", path.display()));
                }
            }
        }
        cancel_on_ctrl_c(runner.cancel.clone());
        let bar = self.progress_bar();
        if let Some(bar) = &bar {
            runner = runner
                .output(BarWriter::new(bar.clone()))
                .observe(Progress::new(bar.clone()));
        }

        let finished = match runner.run() {
            Ok(finished) => finished,
            Err(error) => return cannot_start(error),
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = finished.report();
        if let Some(path) = &self.report_json {
            let written = write_atomically(path, |out| {
                serde_json::to_writer_pretty(&mut *out, &report)?;
                out.write_all(b"\n")
            });
            if let Err(error) = written {
                failures
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(format!("cannot write {}: {error}", path.display()));
            }
        }
        if let (Some(path), Some(draw)) = (&self.graph, graph_writer)
            && let Err(error) = draw(path, finished.plan(), Some(&report))
        {
            failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("cannot draw {}: {error}", path.display()));
        }
        if !self.quiet {
            print!("{}", summary(&report, color));
        }
        let failures = failures.lock().unwrap_or_else(PoisonError::into_inner);
        for failure in failures.iter() {
            eprintln!("error: {failure}");
        }
        if !failures.is_empty() {
            Exit::CannotStart
        } else if report.success() {
            Exit::Success
        } else {
            Exit::JobsFailed
        }
    }

    fn progress_bar(&self) -> Option<ProgressBar> {
        if !self.progress.enabled(io::stderr().is_terminal()) {
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

/// Makes the first Ctrl-C cancel `handle`; a second Ctrl-C exits at once
/// with status 130. The process-wide handler is installed once; the handle
/// of the latest call is the one Ctrl-C cancels.
fn cancel_on_ctrl_c(handle: CancelHandle) {
    static CURRENT: Mutex<Option<CancelHandle>> = Mutex::new(None);
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let current = CURRENT.lock().unwrap_or_else(PoisonError::into_inner);
            match current.as_ref() {
                Some(handle) if !handle.is_cancelled() => {
                    eprintln!("cancelling: phases under way finish, then cleanups run (Ctrl-C again to quit now)");
                    handle.cancel();
                }
                _ => std::process::exit(130),
            }
        });
        if let Err(error) = installed {
            tracing::debug!(%error, "Ctrl-C stays with the program's own handler");
        }
    });
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
}

fn cannot_start(error: impl std::fmt::Display) -> Exit {
    eprintln!("error: {error}");
    Exit::CannotStart
}

/// The jobs in the order they are tried, one per line, with their kind
/// when not normal and their deps: `DetermineDetails (dummy) <- ValidateMovie, PickTimeAndDate`.
pub fn list(plan: &Plan) -> String {
    let mut text = String::new();
    for id in plan.ids() {
        text.push_str(plan.name(id));
        match plan.kind(id) {
            JobKind::Normal => {}
            JobKind::Dummy => text.push_str(" (dummy)"),
            JobKind::RunOnly => text.push_str(" (run-only)"),
        }
        let deps = plan.deps(id);
        if !deps.is_empty() {
            let names: Vec<&str> = deps.iter().map(|&dep| plan.name(dep)).collect();
            let _ = write!(text, " <- {}", names.join(", "));
        }
        text.push('\n');
    }
    text
}

/// The end-of-run summary: counts by status and time taken, then each
/// failed job with its tries and last error, each blocked job with the dep
/// that blocked it. After a no-act run it is a plan: what would run.
pub fn summary(report: &Report, color: bool) -> String {
    let paint = |style: Style, text: &str| style.force_styling(color).apply_to(text).to_string();
    let count = |status| {
        report
            .jobs
            .iter()
            .filter(|job| job.status == status)
            .count()
    };
    let mut text = String::new();
    if report.no_act {
        let _ = writeln!(
            text,
            "no-act: {} jobs: {} pass as they are, {} would run, {} wait for them",
            report.jobs.len(),
            count(Status::Passed),
            count(Status::Failed),
            count(Status::Blocked),
        );
        let would_run: Vec<_> = report
            .jobs
            .iter()
            .filter(|job| job.status == Status::Failed)
            .collect();
        if !would_run.is_empty() {
            let _ = writeln!(text, "{}", paint(Style::new().yellow(), "would run:"));
            for job in would_run {
                let why = job.last_error.as_ref().map_or("", |e| e.message.as_str());
                let _ = writeln!(text, "  {}: {why}", job.name);
            }
        }
        return text;
    }
    let _ = writeln!(
        text,
        "{} jobs in {:.2}s: {} passed, {} fixed, {} failed, {} blocked",
        report.jobs.len(),
        report.elapsed.as_secs_f64(),
        paint(Style::new().green(), &count(Status::Passed).to_string()),
        paint(Style::new().green(), &count(Status::Fixed).to_string()),
        paint(Style::new().red(), &count(Status::Failed).to_string()),
        paint(Style::new().yellow(), &count(Status::Blocked).to_string()),
    );
    for job in report
        .jobs
        .iter()
        .filter(|job| job.status == Status::Failed)
    {
        let why = job.last_error.as_ref().map_or("", |e| e.message.as_str());
        let _ = writeln!(
            text,
            "{} {} after {} {}: {why}",
            paint(Style::new().red().bold(), "failed"),
            job.name,
            job.tries,
            if job.tries == 1 { "try" } else { "tries" },
        );
    }
    for job in report
        .jobs
        .iter()
        .filter(|job| job.status == Status::Blocked)
    {
        let by = job.blocked_by.as_deref().unwrap_or("?");
        let _ = writeln!(
            text,
            "{} {} by {by}",
            paint(Style::new().yellow(), "blocked"),
            job.name
        );
    }
    if let Some(failure) = &report.cleanup_failure {
        let _ = writeln!(
            text,
            "{} {failure}",
            paint(Style::new().red().bold(), "error")
        );
    }
    if let Some(reason) = &report.stopped {
        let _ = writeln!(
            text,
            "{} early: {reason}",
            paint(Style::new().yellow(), "stopped")
        );
    }
    text
}

/// Writes a file so that readers see the old content or the new, never
/// half of it: `write` fills a temporary file in the same directory, which
/// then replaces `path`. When `write` fails, `path` is untouched and the
/// temporary file is removed.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("report.json");
/// dojobber::cli::write_atomically(&path, |out| out.write_all(b"{}\n"))?;
/// assert_eq!(std::fs::read_to_string(&path)?, "{}\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = BufWriter::new(temp.as_file());
        write(&mut out)?;
        out.flush()?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// `--events-json`: one JSON object per event, flushed as it happens.
struct EventStream {
    out: BufWriter<File>,
    path: PathBuf,
    broken: bool,
    failures: Arc<Mutex<Vec<String>>>,
}

impl EventStream {
    fn create(path: &Path, failures: Arc<Mutex<Vec<String>>>) -> io::Result<EventStream> {
        Ok(EventStream {
            out: BufWriter::new(File::create(path)?),
            path: path.to_owned(),
            broken: false,
            failures,
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
            self.broken = true;
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("cannot write {}: {error}", self.path.display()));
        }
    }
}

/// The progress display: jobs done of all, failures so far, and the jobs
/// in a phase right now.
struct Progress {
    bar: ProgressBar,
    sized: bool,
    failed: usize,
    in_phase: BTreeMap<JobId, Phase>,
}

impl Progress {
    fn new(bar: ProgressBar) -> Progress {
        Progress {
            bar,
            sized: false,
            failed: 0,
            in_phase: BTreeMap::new(),
        }
    }
}

impl Observer for Progress {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if !self.sized {
            self.bar.set_length(plan.len() as u64);
            self.sized = true;
        }
        match event {
            Event::PhaseStarted { task, .. } if task.phase != Phase::Cleanup => {
                self.in_phase.insert(task.job, task.phase);
            }
            Event::PhaseFinished { task, .. } => {
                self.in_phase.remove(&task.job);
            }
            Event::JobFinished { status, .. } => {
                if *status == Status::Failed {
                    self.failed += 1;
                }
                self.bar.inc(1);
            }
            Event::JobBlocked { .. } => self.bar.inc(1),
            _ => return,
        }
        let mut message = String::new();
        if self.failed > 0 {
            let _ = write!(message, "{} failed  ", self.failed);
        }
        let now: Vec<String> = self
            .in_phase
            .iter()
            .take(4)
            .map(|(&job, phase)| format!("{}.{phase}", plan.name(job)))
            .collect();
        message.push_str(&now.join(", "));
        self.bar.set_message(message);
    }
}

/// Prints whole lines above the progress display, so verbose output and
/// the display never garble each other.
struct BarWriter {
    bar: ProgressBar,
    pending: Vec<u8>,
}

impl BarWriter {
    fn new(bar: ProgressBar) -> BarWriter {
        BarWriter {
            bar,
            pending: Vec::new(),
        }
    }
}

impl Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.bar
                .println(String::from_utf8_lossy(&line[..line.len() - 1]));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BarWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.bar.println(String::from_utf8_lossy(&self.pending));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Program {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        Program::try_parse_from(std::iter::once("program").chain(args.iter().copied()))
            .map(|program| program.run)
    }

    #[test]
    fn every_flag_parses() {
        let args = parse(&[
            "-n",
            "-v",
            "-d",
            "-q",
            "-j",
            "8",
            "--fail-fast",
            "--deadline",
            "10m",
            "--tries",
            "4",
            "--retry-delay",
            "1m 30s",
            "--no-cleanup",
            "--only",
            "Food",
            "--list",
            "--report-json",
            "r.json",
            "--events-json",
            "e.jsonl",
            "--graph",
            "g.png",
            "--graph-before",
            "plan.svg",
            "--progress",
            "never",
            "--color",
            "always",
        ])
        .unwrap();
        assert!(
            args.no_act && args.verbose && args.debug && args.quiet && args.no_cleanup && args.list
        );
        assert_eq!(args.tries, Some(4));
        assert_eq!((args.jobs, args.fail_fast), (8, true));
        assert_eq!(args.deadline, Some(Duration::from_secs(600)));
        assert_eq!(args.retry_delay, Some(Duration::from_secs(90)));
        assert_eq!(args.only.as_deref(), Some("Food"));
        assert_eq!(args.report_json, Some(PathBuf::from("r.json")));
        assert_eq!(args.events_json, Some(PathBuf::from("e.jsonl")));
        assert_eq!(args.graph, Some(PathBuf::from("g.png")));
        assert_eq!(args.graph_before, Some(PathBuf::from("plan.svg")));
        assert_eq!((args.progress, args.color), (When::Never, When::Always));
        assert_eq!(args.verbosity(), Verbosity::Debug);
    }

    #[test]
    fn defaults_change_nothing() {
        let args = parse(&[]).unwrap();
        assert_eq!(args, RunArgs::default());
        assert_eq!(args.verbosity(), Verbosity::Quiet);
    }

    #[test]
    fn retry_delay_takes_plain_seconds_and_units() {
        assert_eq!(
            parse(&["--retry-delay", "0"]).unwrap().retry_delay,
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse(&["--retry-delay", "1.5"]).unwrap().retry_delay,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse(&["--retry-delay", "250ms"]).unwrap().retry_delay,
            Some(Duration::from_millis(250))
        );
    }

    #[test]
    fn bad_values_are_errors_that_name_the_flag() {
        for (args, flag) in [
            (&["--tries", "0"][..], "--tries"),
            (&["--tries", "many"][..], "--tries"),
            (&["-j", "0"][..], "--jobs"),
            (&["--deadline", "whenever"][..], "--deadline"),
            (&["--retry-delay", "soon"][..], "--retry-delay"),
            (&["--retry-delay=-1"][..], "--retry-delay"),
            (&["--progress", "sometimes"][..], "--progress"),
            (&["--color", "plaid"][..], "--color"),
            (
                &["--jobs-that-do-not-exist"][..],
                "--jobs-that-do-not-exist",
            ),
        ] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{args:?}");
            assert!(error.to_string().contains(flag), "{args:?}: {error}");
        }
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "old\n").unwrap();
        let interrupted = write_atomically(&path, |out| {
            out.write_all(b"{\"half\": ")?;
            Err(io::Error::other("interrupted"))
        });
        assert_eq!(interrupted.unwrap_err().to_string(), "interrupted");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "the temporary file is gone");
        write_atomically(&path, |out| out.write_all(b"new\n")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    }

    #[test]
    fn bar_writer_prints_whole_lines_only() {
        let bar = ProgressBar::hidden();
        let mut writer = BarWriter::new(bar);
        writer.write_all(b"Food.check: pa").unwrap();
        assert_eq!(writer.pending, b"Food.check: pa");
        writer.write_all(b"ss\nPizza").unwrap();
        assert_eq!(writer.pending, b"Pizza");
    }
}
