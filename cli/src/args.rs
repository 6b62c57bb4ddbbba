//! The flags: [`RunArgs`], parsed by clap, and what they change on a runner.

use std::path::PathBuf;
use std::time::Duration;

use dojobber::Runner;
use dojobber::observe::Verbosity;

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
    /// Run up to N phases at once, on N worker threads (1: one at a time,
    /// in the reference order). `--jobs` is the same, as in make and cargo.
    #[arg(short = 'j', long, visible_alias = "jobs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
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
    /// Print the jobs in the order they are tried, with their deps; run
    /// nothing. With --graph-before, draw the plan too.
    #[arg(long, conflicts_with_all = ["report_json", "events_json", "graph", "html"])]
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
    /// Draw every job in --graph and --graph-before pictures: no fan-out
    /// of many deps of one kind collapsed into one box.
    #[arg(long)]
    pub no_collapse: bool,
    /// Write the run as one self-contained HTML page to this file (.html):
    /// summary, failures, timeline, concurrency, graph, table of jobs.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Open what was written (--html, else --graph, else --graph-before)
    /// in the system's viewer.
    #[arg(long)]
    pub open: bool,
    /// Show a progress display on stderr (auto: when stderr is a terminal
    /// and TERM is not dumb).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = When::Auto)]
    pub progress: When,
    /// Colour the summary (auto: when the stream it goes to is a terminal,
    /// stdout or stderr when an output takes stdout, NO_COLOR is unset or
    /// empty and TERM is not dumb).
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
            workers: 1,
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
            no_collapse: false,
            html: None,
            open: false,
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
    pub(crate) fn enabled(self, is_terminal: bool) -> bool {
        match self {
            When::Auto => is_terminal,
            When::Always => true,
            When::Never => false,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

impl RunArgs {
    /// The printer's verbosity the flags ask for.
    ///
    /// ```
    /// use dojobber::observe::Verbosity;
    /// use dojobber_cli::RunArgs;
    ///
    /// let args = RunArgs { verbose: true, ..RunArgs::default() };
    /// assert_eq!(args.verbosity(), Verbosity::Verbose);
    /// ```
    pub fn verbosity(&self) -> Verbosity {
        match (self.debug, self.verbose) {
            (true, _) => Verbosity::Debug,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Quiet,
        }
    }

    /// How `--graph` and `--graph-before` draw: viz's defaults, with every
    /// job drawn under `--no-collapse`.
    ///
    /// ```
    /// use dojobber_cli::RunArgs;
    ///
    /// assert_eq!(RunArgs::default().graph_options().style.collapse_over, Some(8));
    /// let every_job = RunArgs { no_collapse: true, ..RunArgs::default() };
    /// assert_eq!(every_job.graph_options().style.collapse_over, None);
    /// ```
    pub fn graph_options(&self) -> dojobber_viz::Options {
        let mut options = dojobber_viz::Options::default();
        if self.no_collapse {
            options.style.collapse_over = None;
        }
        options
    }

    /// Applies the flags that configure a run: tries, retry delay,
    /// deadline, workers, fail-fast, no-act, cleanup, verbosity.
    /// [`execute`](Self::execute) calls it.
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    /// use dojobber_cli::RunArgs;
    ///
    /// let args = RunArgs { no_act: true, ..RunArgs::default() };
    /// let runner = args.configure(Runner::new(Group::<()>::new("Nothing"), ()));
    /// assert!(runner.run()?.report().no_act);
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
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
            .workers(usize::from(self.workers))
            .fail_fast(self.fail_fast)
            .no_act(self.no_act)
            .cleanup(!self.no_cleanup)
            .verbosity(self.verbosity())
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
            "--report-json",
            "r.json",
            "--events-json",
            "e.jsonl",
            "--graph",
            "g.png",
            "--graph-before",
            "plan.svg",
            "--no-collapse",
            "--html",
            "run.html",
            "--open",
            "--progress",
            "never",
            "--color",
            "always",
        ])
        .unwrap();
        assert!(args.no_act && args.verbose && args.debug && args.quiet && args.no_cleanup);
        assert_eq!(args.tries, Some(4));
        assert_eq!((args.workers, args.fail_fast), (8, true));
        assert_eq!(args.deadline, Some(Duration::from_secs(600)));
        assert_eq!(args.retry_delay, Some(Duration::from_secs(90)));
        assert_eq!(args.only.as_deref(), Some("Food"));
        assert_eq!(args.report_json, Some(PathBuf::from("r.json")));
        assert_eq!(args.events_json, Some(PathBuf::from("e.jsonl")));
        assert_eq!(args.graph, Some(PathBuf::from("g.png")));
        assert_eq!(args.graph_before, Some(PathBuf::from("plan.svg")));
        assert!(args.open && args.no_collapse);
        assert_eq!(args.html, Some(PathBuf::from("run.html")));
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
    fn list_refuses_the_flags_that_need_a_run() {
        for flag in ["--report-json", "--events-json", "--graph", "--html"] {
            let error = parse(&["--list", flag, "x.svg"]).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{flag}");
            assert!(error.to_string().contains(flag), "{flag}: {error}");
        }
        let args = parse(&["--list", "--graph-before", "plan.svg", "--open"]).unwrap();
        assert!(args.list && args.open);
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
            (&["-j", "0"][..], "--workers"),
            (&["--jobs", "0"][..], "--workers"),
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
}
