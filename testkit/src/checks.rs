//! Checks of a user's own suite: is it idempotent, what would a dry run
//! do, what is its plan.

use std::fmt::{self, Write as _};

use dojobber::engine::Plan;
use dojobber::{Job, JobKind, JobRef, Phase, Report, Runner, SetupError, Status};

use crate::invariants::{Violation, check_invariants};
use crate::record::record;
use crate::sim::Simulation;

/// A job that did not pass the second run of [`check_idempotent`] as it should.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offender {
    /// The job's name.
    pub job: String,
    /// Its status in the second run.
    pub status: Status,
    /// What it did wrong, e.g. `its run executed`.
    pub why: Vec<String>,
}

impl fmt::Display for Offender {
    /// `PickTimeAndDate: fixed: its first check failed ("No time picked yet."), its run executed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.job, self.status, self.why.join(", "))
    }
}

/// Why [`check_idempotent`] failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IdempotenceError {
    /// The suite cannot start.
    #[error("the suite cannot start: {0}")]
    Setup(#[from] SetupError),
    /// A run broke one of the engine's rules (see
    /// [`check_invariants`](crate::check_invariants)): a bug in the engine,
    /// not in the suite.
    #[error("run {run} broke a rule of the engine: {violation}")]
    Broken {
        /// 1 or 2: which run.
        run: u8,
        /// The rule, and the job at fault.
        violation: Violation,
    },
    /// The second run was not a clean pass.
    #[error("{}", describe(offenders))]
    NotIdempotent {
        /// The jobs at fault, in the reference order.
        offenders: Vec<Offender>,
        /// The report of the first run.
        first_run: Box<Report>,
        /// The report of the second run.
        second_run: Box<Report>,
    },
}

fn describe(offenders: &[Offender]) -> String {
    let mut text = format!(
        "not idempotent: in the second run, {} {} not pass at the first check without running:",
        offenders.len(),
        if offenders.len() == 1 {
            "job did"
        } else {
            "jobs did"
        }
    );
    for offender in offenders {
        let _ = write!(text, "\n  {offender}");
    }
    text
}

/// Runs the suite twice, each time with a fresh runner from `make_runner`,
/// and checks that the second run is a clean pass: every job passes at its
/// first check and no run executes. (A run-only job has no check: it must
/// pass at its first try; its run is what it does.) The first run may do
/// anything.
///
/// Both runs are recorded with the runner's settings and held to the
/// engine's rules ([`check_invariants`](crate::check_invariants)), so a
/// runner with several workers, fail-fast or a deadline is checked as it
/// really ran.
///
/// Returns the offending jobs otherwise, each with what it did wrong. A
/// suite keeps its state in the world (files, services), not in the run's
/// global storage, which starts empty each run.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
/// use dojobber::{bail, Context, Job, JobResult, Runner};
/// use dojobber_testkit::{check_idempotent, IdempotenceError};
///
/// static BOILED: AtomicBool = AtomicBool::new(false);
/// struct BoilWater;
/// impl Job for BoilWater {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult {
///         if !BOILED.load(SeqCst) { bail!("the water is cold") }
///         Ok(())
///     }
///     fn run(&self, _: &mut Context<'_, ()>) -> JobResult { BOILED.store(true, SeqCst); Ok(()) }
/// }
/// check_idempotent(|| Runner::new(BoilWater, ()))?;
///
/// // A job whose check never sees its own work is not idempotent.
/// struct Forgetful;
/// impl Job for Forgetful {
///     fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
///         if cx.is_recheck() { Ok(()) } else { bail!("forgot") }
///     }
/// }
/// let Err(IdempotenceError::NotIdempotent { offenders, .. }) = check_idempotent(|| Runner::new(Forgetful, ())) else {
///     panic!("Forgetful runs every time");
/// };
/// assert_eq!(offenders[0].to_string(), "Forgetful: fixed: its first check failed (\"forgot\"), its run executed");
/// # Ok::<(), IdempotenceError>(())
/// ```
pub fn check_idempotent<A: Sync + 'static>(
    mut make_runner: impl FnMut() -> Runner<A>,
) -> Result<(), IdempotenceError> {
    let first = record(make_runner())?;
    let second = record(make_runner())?;
    for (run, recorded) in [(1, &first), (2, &second)] {
        check_invariants(&recorded.record)
            .map_err(|violation| IdempotenceError::Broken { run, violation })?;
    }
    let offenders = offenders(&second.record);
    if offenders.is_empty() {
        Ok(())
    } else {
        Err(IdempotenceError::NotIdempotent {
            offenders,
            first_run: Box::new(first.record.report),
            second_run: Box::new(second.record.report),
        })
    }
}

/// The jobs of a run that did not pass at their first check without running.
fn offenders(run: &Simulation) -> Vec<Offender> {
    let plan = &run.plan;
    plan.ids()
        .filter_map(|id| {
            let name = plan.name(id);
            let report = run
                .report
                .job_at(id.index())
                .expect("the report has every job");
            let run_only = plan.kind(id) == JobKind::RunOnly;
            let mut why = Vec::new();
            let first_check = run.trace.of(name).find(|e| e.phase == Phase::Check);
            if let Some(entry) = first_check
                && !run_only
                && let dojobber::Outcome::Fail(failure) = &entry.outcome
            {
                why.push(format!("its first check failed ({:?})", failure.message));
            }
            let ran = run
                .trace
                .of(name)
                .any(|e| e.phase == Phase::Run && e.performed);
            if ran && !run_only {
                why.push("its run executed".into());
            }
            if report.tries() > 1 {
                why.push(format!("it took {} tries", report.tries()));
            }
            match report.status() {
                Status::Blocked => {
                    why.push(format!("blocked by {}", report.blocked_by().unwrap_or("?")))
                }
                Status::Failed => why.push(match report.last_error() {
                    Some(error) => format!("failed ({:?})", error.message),
                    None => "failed".into(),
                }),
                _ => {}
            }
            (!why.is_empty()).then(|| Offender {
                job: name.to_owned(),
                status: report.status(),
                why,
            })
        })
        .collect()
}

/// Asserts that running the suite of `root` a second time changes
/// nothing: see [`check_idempotent`]. Both runs use the [`Runner`]'s
/// defaults (3 tries, 1 s apart); for other settings, call
/// [`check_idempotent`] with a closure that builds the runner.
///
/// # Panics
/// With the list of offending jobs, if the suite is not idempotent or
/// cannot start.
///
/// ```
/// use dojobber::{Context, Job, JobResult};
/// use dojobber_testkit::assert_idempotent;
///
/// struct AlwaysFine;
/// impl Job<String> for AlwaysFine {
///     fn check(&self, _: &mut Context<'_, String>) -> JobResult { Ok(()) }
/// }
/// assert_idempotent(AlwaysFine, "args".to_owned());
/// ```
#[track_caller]
pub fn assert_idempotent<A: Clone + Sync + 'static>(root: impl Job<A>, args: A) {
    let root: JobRef<A> = dojobber::dep(root);
    if let Err(error) = check_idempotent(|| Runner::from_ref(JobRef::clone(&root), args.clone())) {
        panic!("{error}");
    }
}

/// What a dry run (no-act: first checks only) of `runner` finds, one line
/// per job in the reference order:
///
/// ```text
/// ValidateMovie: check passes
/// PickTimeAndDate: check fails ("No time picked yet."), would run
/// DetermineDetails: not checked, waits for PickTimeAndDate
/// FluffPillows: run-only, would run
/// PrepareRoom: group, passes
/// ```
///
/// Made for snapshots. The runner is run in no-act mode whatever it was
/// set to; fails only when the suite cannot start.
///
/// ```
/// use dojobber::{bail, dep, Context, Job, JobRef, JobResult, Runner};
/// use dojobber_testkit::dry_run_text;
///
/// struct Kettle;
/// impl Job for Kettle {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { bail!("cold") }
/// }
/// struct Tea;
/// impl Job for Tea {
///     fn deps(&self, _: &()) -> Vec<JobRef> { vec![dep(Kettle)] }
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
/// assert_eq!(
///     dry_run_text(Runner::new(Tea, ()))?,
///     "Kettle: check fails (\"cold\"), would run\nTea: not checked, waits for Kettle\n",
/// );
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub fn dry_run_text<A: Sync + 'static>(runner: Runner<A>) -> Result<String, SetupError> {
    let recorded = record(runner.no_act(true))?;
    let run = &recorded.record;
    let plan = &run.plan;
    let mut text = String::new();
    for id in plan.ids() {
        let name = plan.name(id);
        let report = run
            .report
            .job_at(id.index())
            .expect("the report has every job");
        let check = run.trace.of(name).find(|e| e.phase == Phase::Check);
        let _ = write!(text, "{name}: ");
        match (report.status(), plan.kind(id), check) {
            (Status::Blocked, _, _) => {
                let by = report.blocked_by().unwrap_or("?");
                let _ = write!(text, "not checked, waits for {by}");
            }
            (_, JobKind::Dummy, _) => text.push_str("group, passes"),
            (_, JobKind::RunOnly, _) => text.push_str("run-only, would run"),
            (_, JobKind::Normal, Some(entry)) => match &entry.outcome {
                dojobber::Outcome::Pass => text.push_str("check passes"),
                dojobber::Outcome::Fail(failure) => {
                    let _ = write!(text, "check fails ({:?}), would run", failure.message);
                }
            },
            (_, JobKind::Normal, None) => {
                let why = report.last_error().map(|e| e.message.as_str());
                let _ = write!(text, "cannot start ({:?})", why.unwrap_or("?"));
            }
        }
        text.push('\n');
    }
    Ok(text)
}

/// The plan as text, one line per job in the reference order (the order of
/// the first round): number, name, kind, tries, retry delay and deps.
///
/// ```
/// use std::time::Duration;
/// use dojobber_testkit::{render_plan, Mock, Suite};
///
/// let suite = Suite::new([
///     Mock::new("Tea").deps(["Kettle", "Cups"]),
///     Mock::new("Kettle").retry_delay(Duration::from_millis(500)),
///     Mock::new("Cups").kind(dojobber::JobKind::Dummy),
/// ]);
/// assert_eq!(render_plan(&suite.plan(Default::default())), "\
/// 1. Kettle: normal, 3 tries, 0.5s apart
/// 2. Cups: dummy, 3 tries, 1s apart
/// 3. Tea: normal, 3 tries, 1s apart; needs Kettle, Cups
/// ");
/// ```
pub fn render_plan(plan: &Plan) -> String {
    let width = plan.len().to_string().len();
    let mut text = String::new();
    for id in plan.ids() {
        let kind = match plan.kind(id) {
            JobKind::Normal => "normal",
            JobKind::Dummy => "dummy",
            JobKind::RunOnly => "run-only",
        };
        let tries = plan.tries(id);
        let _ = write!(
            text,
            "{:>width$}. {}: {kind}, {tries} {}, {}s apart",
            id.index() + 1,
            plan.name(id),
            if tries == 1 { "try" } else { "tries" },
            plan.retry_delay(id).as_secs_f64(),
        );
        let deps: Vec<&str> = plan.deps(id).iter().map(|&dep| plan.name(dep)).collect();
        if !deps.is_empty() {
            let _ = write!(text, "; needs {}", deps.join(", "));
        }
        if let Some(why) = plan.broken(id) {
            let _ = write!(text, "; broken: {why}");
        }
        text.push('\n');
    }
    text
}
