//! What a run prints on stdout: `--list` and the end-of-run summary.

use std::fmt::Write as _;

use console::Style;
use dojobber::engine::Plan;
use dojobber::text::{MAX_REASON_CHARS, escaped, shortened};
use dojobber::{JobKind, Report, Status};

/// The jobs in the order they are tried, one per line, with their kind
/// when not normal and their deps: `DetermineDetails (dummy) <- ValidateMovie, PickTimeAndDate`.
///
/// ```
/// use dojobber::{dep, Group, Runner};
///
/// let root = Group::new("Evening").with_dep(dep(Group::new("Snacks")));
/// let graph = Runner::new(root, ()).graph()?;
/// assert_eq!(dojobber_cli::list(graph.plan()), "Snacks (dummy)\nEvening (dummy) <- Snacks\n");
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn list(plan: &Plan) -> String {
    let mut text = String::new();
    for id in plan.ids() {
        text.push_str(&escaped(plan.name(id)));
        match plan.kind(id) {
            JobKind::Normal => {}
            JobKind::Dummy => text.push_str(" (dummy)"),
            JobKind::RunOnly => text.push_str(" (run-only)"),
        }
        let deps = plan.deps(id);
        if !deps.is_empty() {
            let names: Vec<_> = deps.iter().map(|&dep| escaped(plan.name(dep))).collect();
            let _ = write!(text, " <- {}", names.join(", "));
        }
        text.push('\n');
    }
    text
}

/// The end-of-run summary: counts by status and time taken, then each
/// failed job with its tries and last error (and its run's error when the
/// recheck failed after it), each blocked job with the dep that blocked it
/// or the stop that did. After a no-act run it is a plan: what would run.
///
/// ```
/// use dojobber::{Group, Runner};
///
/// let runner = Runner::new(Group::<()>::new("Nothing"), ()).output(std::io::sink());
/// let report = runner.run()?.into_report();
/// let text = dojobber_cli::summary(&report, false);
/// assert!(text.starts_with("1 job in "), "{text}");
/// assert!(text.ends_with(": 1 passed, 0 fixed, 0 failed, 0 blocked\n"), "{text}");
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn summary(report: &Report, color: bool) -> String {
    let paint = |style: Style, text: &str| style.force_styling(color).apply_to(text).to_string();
    let count = |status| report.jobs().filter(|job| job.status() == status).count();
    let mut text = String::new();
    if report.no_act {
        let _ = writeln!(
            text,
            "no-act: {}: {} pass as they are, {} would run, {} wait for them",
            jobs(report.jobs().len()),
            count(Status::Passed),
            count(Status::Failed),
            count(Status::Blocked),
        );
        let would_run: Vec<_> = report
            .jobs()
            .filter(|job| job.status() == Status::Failed)
            .collect();
        if !would_run.is_empty() {
            let _ = writeln!(text, "{}", paint(Style::new().yellow(), "would run:"));
            for job in would_run {
                let why = job.last_error().map_or("", |e| e.message.as_str());
                let _ = writeln!(text, "  {}: {}", escaped(job.name()), reason(why));
            }
        }
        return text;
    }
    let _ = writeln!(
        text,
        "{} in {:.2}s: {} passed, {} fixed, {} failed, {} blocked",
        jobs(report.jobs().len()),
        report.elapsed.as_secs_f64(),
        paint(Style::new().green(), &count(Status::Passed).to_string()),
        paint(Style::new().green(), &count(Status::Fixed).to_string()),
        paint(Style::new().red(), &count(Status::Failed).to_string()),
        paint(Style::new().yellow(), &count(Status::Blocked).to_string()),
    );
    for job in report.jobs().filter(|job| job.status() == Status::Failed) {
        let why = job.last_error().map_or("", |e| e.message.as_str());
        let _ = writeln!(
            text,
            "{} {} after {} {}{}: {}",
            paint(Style::new().red().bold(), "failed"),
            escaped(job.name()),
            job.tries(),
            if job.tries() == 1 { "try" } else { "tries" },
            performers(job),
            reason(why),
        );
        // The recheck's error alone hides why the run failed. (A run-only
        // job's last error is its run's; a timed-out run's gains a cause.)
        let is_last = |run: &dojobber::Failure| {
            job.last_error()
                .is_some_and(|last| last.message == run.message && last.kind == run.kind)
        };
        if let Some(run) = job.run_error()
            && !is_last(run)
        {
            let _ = writeln!(text, "  its run failed: {}", reason(&format!("{run:#}")));
        }
    }
    for job in report.jobs().filter(|job| job.status() == Status::Blocked) {
        let why = match (&job.blocked_by(), job.blocked_reason()) {
            (Some(dep), _) => format!(" by {}", escaped(dep)),
            (None, Some(why)) => format!(": {why}"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            text,
            "{} {}{why}",
            paint(Style::new().yellow(), "blocked"),
            escaped(job.name())
        );
    }
    if let Some(failure) = &report.cleanup_failure {
        let _ = writeln!(
            text,
            "{} {}",
            paint(Style::new().red().bold(), "error"),
            reason(&failure.to_string())
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

/// The workers elsewhere that performed a job's tries, as ` (on web1)`
/// or ` (try 1 on web1, try 2 on web2)`; empty in a local run.
fn performers(job: dojobber::JobReport<'_>) -> String {
    let named: Vec<(u32, &str)> = (1..=job.tries())
        .filter_map(|attempt| Some((attempt, job.performed_by(attempt)?)))
        .collect();
    match named.as_slice() {
        [] => String::new(),
        [(_, worker)] if job.tries() == 1 => format!(" (on {})", escaped(worker)),
        tries => {
            let tries: Vec<String> = tries
                .iter()
                .map(|(attempt, worker)| format!("try {attempt} on {}", escaped(worker)))
                .collect();
            format!(" ({})", tries.join(", "))
        }
    }
}

/// `1 job`, `2 jobs`.
fn jobs(count: usize) -> String {
    match count {
        1 => "1 job".to_owned(),
        n => format!("{n} jobs"),
    }
}

/// An error as the summary shows it: cut to [`MAX_REASON_CHARS`], escaped.
fn reason(text: &str) -> String {
    escaped(&shortened(text, MAX_REASON_CHARS)).into_owned()
}

#[cfg(test)]
mod tests {
    use dojobber::anyhow::{self, Context as _};
    use dojobber::{Context, Job, JobResult, Runner, bail};

    /// A repository whose `git init` cannot start: the run fails, then
    /// the recheck, with its own message.
    struct Repo;
    impl Job for Repo {
        fn tries(&self) -> Option<u32> {
            Some(1)
        }
        fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
            bail!("no repository in work/")
        }
        fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
            let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
            Err(anyhow::Error::new(missing)).context("running git init")
        }
    }

    #[test]
    fn the_summary_shows_a_failed_runs_own_error_under_the_rechecks() {
        let report = Runner::new(Repo, ())
            .output(std::io::sink())
            .run()
            .unwrap()
            .into_report();
        let text = super::summary(&report, false);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "failed Repo after 1 try: no repository in work/",
                "  its run failed: running git init: No such file",
            ]
        );
    }

    #[test]
    fn names_and_errors_are_escaped() {
        struct Hostile;
        impl Job for Hostile {
            fn name(&self) -> String {
                "Clear\u{1b}[2J".to_owned()
            }
            fn tries(&self) -> Option<u32> {
                Some(1)
            }
            fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
                bail!("fake\r\nline")
            }
        }
        let root = dojobber::Group::new("Root\t").with_dep(dojobber::dep(Hostile));
        let runner = Runner::new(root, ()).output(std::io::sink());
        assert_eq!(
            super::list(runner.graph().unwrap().plan()),
            "Clear\\u{1b}[2J\nRoot\\t (dummy) <- Clear\\u{1b}[2J\n"
        );
        let text = super::summary(&runner.run().unwrap().into_report(), false);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "failed Clear\\u{1b}[2J after 1 try: fake\\r\\nline",
                "blocked Root\\t by Clear\\u{1b}[2J",
            ]
        );
    }

    #[test]
    fn a_run_only_jobs_error_is_said_once() {
        struct Once;
        impl Job for Once {
            fn kind(&self) -> dojobber::JobKind {
                dojobber::JobKind::RunOnly
            }
            fn tries(&self) -> Option<u32> {
                Some(1)
            }
            fn run(&self, _: &mut Context<'_, ()>) -> JobResult {
                bail!("mirror unreachable")
            }
        }
        let report = Runner::new(Once, ())
            .output(std::io::sink())
            .run()
            .unwrap()
            .into_report();
        let text = super::summary(&report, false);
        assert!(text.starts_with("1 job in "), "{text}");
        assert!(
            text.ends_with("\nfailed Once after 1 try: mirror unreachable\n"),
            "{text}"
        );
    }

    #[test]
    fn a_failed_job_names_the_workers_elsewhere_that_performed_its_tries() {
        use dojobber::{Failure, JobRecord, Report, Status};
        let job = |name: &str, tries: u32, by: &[Option<&str>]| JobRecord {
            tries,
            last_error: Some(Failure::new("down")),
            performed_by: by.iter().map(|by| by.map(str::to_owned)).collect(),
            ..JobRecord::new(name, Status::Failed)
        };
        let report = Report::from_jobs([
            job("Web", 2, &[Some("web1"), Some("web2")]),
            job("Db", 1, &[Some("db\u{1b}1")]),
            job("Lost", 2, &[Some("web1"), None]),
            job("Here", 1, &[]),
        ])
        .unwrap();
        let text = super::summary(&report, false);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "failed Web after 2 tries (try 1 on web1, try 2 on web2): down",
                "failed Db after 1 try (on db\\u{1b}1): down",
                "failed Lost after 2 tries (try 1 on web1): down",
                "failed Here after 1 try: down",
            ],
            "{text}"
        );
    }
}
