//! The [`Runner`]: configures a run, discovers the graph, and hands the
//! run to a driver (see `driver/`): the caller's thread alone for
//! `workers(1)`, the thread pool for more, tokio tasks for `run_async`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::CancelHandle;
use crate::caught::drop_caught;
use crate::driver::{Session, threads};
use crate::graph::JobGraph;
use crate::job::{Job, JobRef};
use crate::machine::{Machine, MachineConfig, MachineError};
use crate::output::{Observer, Printer, Verbosity};
use crate::plan::{Defaults, Plan, SetupError};
use crate::report::{CleanupFailure, Report};
use crate::storage::GlobalStorage;

/// Configures and starts a run of a suite, from its root job.
///
/// ```
/// use std::time::Duration;
/// use dojobber::{bail, Context, Job, JobResult, Runner, Status};
///
/// struct MakeTea;
/// impl Job<u32> for MakeTea {
///     fn check(&self, cx: &mut Context<'_, u32>) -> JobResult {
///         if cx.global().get::<u32>("cups") != Some(*cx.args()) { bail!("not enough tea") }
///         Ok(())
///     }
///     fn run(&self, cx: &mut Context<'_, u32>) -> JobResult {
///         cx.global().insert("cups", *cx.args());
///         Ok(())
///     }
/// }
///
/// let finished = Runner::new(MakeTea, 2).tries(5).retry_delay(Duration::ZERO).run()?;
/// assert_eq!(finished.report().job("MakeTea").unwrap().status(), Status::Fixed);
/// # Ok::<(), dojobber::SetupError>(())
/// ```
pub struct Runner<A> {
    root: JobRef<A>,
    args: A,
    defaults: Defaults,
    config: MachineConfig,
    verbosity: Verbosity,
    output: Box<dyn Write + Send>,
    observers: Vec<Box<dyn Observer>>,
    pub(crate) cancel: CancelHandle,
    group_limits: Vec<(String, usize)>,
}

impl<A: 'static> Runner<A> {
    /// A run of everything `root` needs, with `args` handed to every job.
    /// Defaults: 3 tries, 1 s retry delay, acting, cleanup on, quiet, output
    /// on stderr.
    pub fn new(root: impl Job<A>, args: A) -> Self {
        Self::from_ref(crate::job::dep(root), args)
    }

    /// Like [`new`](Self::new), for a root already behind a [`JobRef`].
    pub fn from_ref(root: JobRef<A>, args: A) -> Self {
        Runner {
            root,
            args,
            defaults: Defaults::default(),
            config: MachineConfig::default(),
            verbosity: Verbosity::Quiet,
            output: Box::new(std::io::stderr()),
            observers: Vec::new(),
            cancel: CancelHandle::new(),
            group_limits: Vec::new(),
        }
    }

    /// Tries for jobs that do not choose their own.
    pub fn tries(mut self, tries: u32) -> Self {
        self.defaults.tries = tries;
        self
    }

    /// Retry delay for jobs that do not choose their own.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.defaults.retry_delay = delay;
        self
    }

    /// Only check: no run, no retry, no cleanup.
    pub fn no_act(mut self, no_act: bool) -> Self {
        self.config.no_act = no_act;
        self
    }

    /// Whether cleanups happen when the run ends; when off, call
    /// [`Finished::cleanup`] yourself.
    pub fn cleanup(mut self, cleanup: bool) -> Self {
        self.config.cleanup = cleanup;
        self
    }

    /// How much the built-in printer says.
    pub fn verbosity(mut self, verbosity: Verbosity) -> Self {
        self.verbosity = verbosity;
        self
    }

    /// How many phases may run at once, each on its own worker thread.
    /// 1, the default, runs everything on the caller's thread in the
    /// reference order; more runs whatever is ready, and final statuses are
    /// the same for jobs that behave the same whatever the order. No more
    /// threads start than phases can ever run at once (see
    /// [`Machine::most_in_flight`](crate::engine::Machine::most_in_flight)).
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// The name before 0.2.0: a "job" is what you write, a worker runs it.
    #[deprecated(since = "0.2.0", note = "use `Runner::workers`")]
    pub fn jobs(self, workers: usize) -> Self {
        self.workers(workers)
    }

    /// After the first job that failed for good, start no new try; tries
    /// under way finish. Off by default: every branch that can go on does.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.config.fail_fast = fail_fast;
        self
    }

    /// No new phase starts after `limit` from the run's start; jobs never
    /// reached are blocked for the reason `run deadline passed`.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.config.deadline = Some(limit);
        self
    }

    /// At most `limit` jobs of the concurrency group `group` in a try at
    /// once, whatever the number of workers (see [`Job::concurrency_group`]).
    pub fn group_limit(mut self, group: impl Into<String>, limit: usize) -> Self {
        self.group_limits.push((group.into(), limit));
        self
    }

    /// What this runner was set to: default tries and retry delay,
    /// no-act, cleanup, workers, fail-fast, deadline, group limits. For
    /// tools that record a run and must know how it was made (the
    /// testkit's `record` holds the run to these settings).
    ///
    /// ```
    /// let runner = dojobber::Runner::new(dojobber::Group::<()>::new("Tea"), ()).workers(4);
    /// let (defaults, config, group_limits) = runner.settings();
    /// assert_eq!((defaults.tries, config.workers, group_limits.len()), (3, 4, 0));
    /// ```
    pub fn settings(&self) -> (Defaults, MachineConfig, &[(String, usize)]) {
        (self.defaults, self.config, &self.group_limits)
    }

    /// Stops the run when `handle` is cancelled, from any thread.
    pub fn cancel_handle(mut self, handle: CancelHandle) -> Self {
        self.cancel = handle;
        self
    }

    /// The handle that stops this run (a clone): what a command line wires
    /// to Ctrl-C without replacing a handle the program set.
    ///
    /// ```
    /// let runner = dojobber::Runner::new(dojobber::Group::<()>::new("Nothing"), ());
    /// runner.current_cancel_handle().cancel();
    /// assert!(runner.run()?.report().stopped.is_some());
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn current_cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Where the built-in printer writes (stderr by default).
    pub fn output(mut self, out: impl Write + Send + 'static) -> Self {
        self.output = Box::new(out);
        self
    }

    /// Adds an observer of the run's events, after the built-in printer.
    pub fn observe(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// Roots the run at the job called `name` instead: only it and what it
    /// needs will run. Fails, naming close matches, when no job has that name.
    ///
    /// ```
    /// use dojobber::{dep, Group, Job, Runner};
    /// struct Kettle;
    /// impl Job for Kettle {}
    /// let runner = Runner::new(Group::new("Tea").with_dep(dep(Kettle)), ());
    /// let err = runner.only("kettel").err().unwrap();
    /// assert_eq!(err.to_string(), "no job is named \"kettel\"; did you mean Kettle?");
    /// ```
    pub fn only(mut self, name: &str) -> Result<Self, SetupError> {
        let found = self.graph().and_then(|graph| {
            let id = graph.plan().find_or_suggest(name)?;
            Ok(JobRef::clone(graph.job(id)))
        });
        match found {
            Ok(root) => {
                drop_caught(std::mem::replace(&mut self.root, root));
                Ok(self)
            }
            Err(error) => self.refuse(error),
        }
    }

    /// Gives up on the run: drops the runner (job values, arguments and
    /// observers are user code, whose `Drop` may panic) and returns `error`.
    fn refuse<T>(self, error: SetupError) -> Result<T, SetupError> {
        let Runner {
            root,
            args,
            output,
            observers,
            ..
        } = self;
        // Each on its own: a second panic while one unwinds would abort.
        drop_caught(root);
        drop_caught(args);
        drop_caught(output);
        observers.into_iter().for_each(drop_caught);
        Err(error)
    }

    /// Discovers and checks the graph without running anything.
    pub fn graph(&self) -> Result<JobGraph<A>, SetupError> {
        JobGraph::discover(JobRef::clone(&self.root), &self.args, self.defaults)
    }

    /// Runs the suite to the end, then the cleanups (unless turned off):
    /// one phase at a time in the reference order, or with `workers(n)`, up to
    /// n at once on as many threads, the calling thread one of them (the
    /// others start when there is work for them). Blocks the calling thread.
    ///
    /// With one worker the phases run on the calling thread, unless a job
    /// has a time limit: then on one worker thread, while the calling
    /// thread watches the limits (the order is the same).
    ///
    /// Fails only when the suite cannot start (see [`SetupError`]; a
    /// worker thread the system refuses is one, and so is a pool of more
    /// threads than the system can map, `vm.max_map_count` on Linux);
    /// failing jobs are in the report.
    ///
    /// A panic in a job's phase fails that job's try; a panic in the `Drop`
    /// of a job value, of a value in local storage, or of a panic's payload
    /// is caught too (a payload that panics again when dropped is leaked).
    /// Not catchable: a `Drop` that panics while a phase's panic unwinds
    /// aborts the process, as Rust does, and so does any panic under
    /// `panic = "abort"`.
    pub fn run(self) -> Result<Finished<A>, SetupError>
    where
        A: Sync,
    {
        let session = self.start()?;
        let workers = session.lock().machine.config().workers;
        // A time limit needs a watcher besides the phase's thread, which
        // may never return: one worker thread, the caller's thread watching.
        match workers {
            1 if !session.plan().has_time_limits() => threads::drive_alone(&session),
            workers => {
                if let Err(error) = threads::drive_pool(&session, workers) {
                    drop(session.into_report());
                    return Err(error);
                }
            }
        }
        Ok(Finished {
            session: Arc::new(session),
        })
    }

    /// Checks the configuration, discovers the graph and sets up the run
    /// for an executor of your own (see [`engine::driver`](crate::engine::driver)),
    /// which drives it to the end; the run's report is then
    /// [`Session::into_report`]. [`run`](Self::run) is this and the thread
    /// executor.
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    /// let session = Runner::new(Group::<()>::new("Nothing"), ()).workers(4).into_session()?;
    /// assert_eq!((session.plan().len(), session.config().workers), (1, 4));
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn into_session(self) -> Result<Session<A>, SetupError> {
        self.start()
    }

    /// Checks the configuration, discovers the graph and sets up the run.
    pub(crate) fn start(self) -> Result<Session<A>, SetupError> {
        if self.config.workers == 0 {
            return self.refuse(SetupError::ZeroWorkers);
        }
        if let Some((group, _)) = self.group_limits.iter().find(|(_, limit)| *limit == 0) {
            let error = SetupError::ZeroGroupLimit {
                group: group.clone(),
            };
            return self.refuse(error);
        }
        let graph = match self.graph() {
            Ok(graph) => graph,
            Err(error) => return self.refuse(error),
        };
        let (plan, jobs) = graph.into_parts();
        let mut observers = self.observers;
        observers.insert(0, Box::new(Printer::new(self.verbosity, self.output)));
        let mut machine = Machine::new(plan, self.config);
        for (group, limit) in &self.group_limits {
            machine.limit_group(group, *limit);
        }
        Ok(Session::new(
            machine,
            observers,
            jobs,
            self.args,
            self.cancel,
        ))
    }
}

/// A run that has ended: its report, and its cleanups if they were put off.
pub struct Finished<A> {
    /// Shared with the async driver's tasks while cleanups run.
    pub(crate) session: Arc<Session<A>>,
}

impl<A: Sync + 'static> Finished<A> {
    /// What happened to every job.
    pub fn report(&self) -> Report {
        self.session.lock().machine.report_card()
    }

    /// The report, dropping the job values (first, so that a large run
    /// does not hold both).
    pub fn into_report(self) -> Report {
        match Arc::try_unwrap(self.session) {
            Ok(session) => session.into_report(),
            Err(shared) => shared.lock().machine.report_card(),
        }
    }

    /// The plan that was run.
    pub fn plan(&self) -> &Plan {
        &self.session.plan
    }

    /// The global storage as the run left it.
    pub fn global(&self) -> &GlobalStorage {
        &self.session.global
    }

    /// Runs the cleanups of a run made with `cleanup(false)`: each job whose
    /// run executed, most recent first, on this thread. Stops at the first
    /// failing cleanup and returns it. After `Runner::run_async` (feature
    /// `tokio`), use `cleanup_async`: an async job's cleanup cannot
    /// block on a runtime's own thread.
    ///
    /// ```
    /// use dojobber::{Context, Job, JobResult, Runner};
    ///
    /// struct Dust;
    /// impl Job for Dust {
    ///     fn check(&self, cx: &mut Context<'_, ()>) -> JobResult {
    ///         if cx.is_recheck() { Ok(()) } else { dojobber::bail!("dusty") }
    ///     }
    ///     fn cleanup(&self, _: &mut Context<'_, ()>) -> JobResult { dojobber::bail!("duster stuck") }
    /// }
    /// let mut finished = Runner::new(Dust, ()).cleanup(false).run()?;
    /// let failure = finished.cleanup().unwrap_err();
    /// assert_eq!(failure.to_string(), "cleanup of Dust failed: duster stuck");
    /// assert!(finished.cleanup().is_err()); // only once
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn cleanup(&mut self) -> Result<(), CleanupError> {
        self.session.lock().machine.start_cleanup()?;
        threads::drive_alone(&self.session);
        match self.report().cleanup_failure {
            Some(failure) => Err(CleanupError::Failed(failure)),
            None => Ok(()),
        }
    }
}

#[cfg(feature = "tokio")]
impl<A: Send + Sync + 'static> Runner<A> {
    /// Runs the suite on the caller's tokio runtime (which needs its time
    /// driver: `#[tokio::main]` has it), up to `workers(n)` phases at once:
    /// async jobs as tasks, the others in the same tasks (on tokio's
    /// blocking threads once one takes over 100 µs, or when the run has
    /// time limits or a deadline). The semantics are those of
    /// [`run`](Runner::run).
    ///
    /// The run lives in the returned future, and dropping it ends the run
    /// (its worker tasks are aborted, their phases dropped). Without time
    /// limits or a deadline, that future is also one of its workers: a
    /// chain of jobs runs in it alone, starting no task.
    pub async fn run_async(self) -> Result<Finished<A>, SetupError> {
        let session = Arc::new(self.start()?);
        // In this future, not a task of its own: a run with nothing to
        // watch performs its phases here as one of its workers, so a chain
        // starts no task and wakes no thread; and dropping this future
        // ends the run (its worker tasks are aborted).
        crate::driver::tokio_tasks::drive(&session).await;
        Ok(Finished { session })
    }
}

#[cfg(feature = "tokio")]
impl<A: Send + Sync + 'static> Finished<A> {
    /// [`Finished::cleanup`] for a run made with
    /// [`run_async`](Runner::run_async): the cleanups run on the caller's
    /// runtime, async ones as futures.
    ///
    /// ```
    /// use dojobber::{AsyncJob, Context, Job, PhaseFuture, Runner, async_dep};
    ///
    /// struct Tunnel;
    /// impl Job for Tunnel {}
    /// impl AsyncJob for Tunnel {
    ///     fn check<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
    ///         let open = cx.is_recheck();
    ///         Box::pin(async move { if open { Ok(()) } else { dojobber::bail!("closed") } })
    ///     }
    ///     fn cleanup<'a>(&'a self, cx: &'a mut Context<'_, ()>) -> PhaseFuture<'a> {
    ///         Box::pin(async move {
    ///             tokio::task::yield_now().await; // closing takes a round trip
    ///             cx.global().insert("closed", true);
    ///             Ok(())
    ///         })
    ///     }
    /// }
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # runtime.block_on(async {
    /// let mut finished = Runner::from_ref(async_dep(Tunnel), ()).cleanup(false).run_async().await?;
    /// finished.cleanup_async().await.expect("the tunnel closes");
    /// assert_eq!(finished.global().get::<bool>("closed"), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn cleanup_async(&mut self) -> Result<(), CleanupError> {
        self.session.lock().machine.start_cleanup()?;
        crate::driver::tokio_tasks::drive(&self.session).await;
        match self.report().cleanup_failure {
            Some(failure) => Err(CleanupError::Failed(failure)),
            None => Ok(()),
        }
    }
}

/// Why [`Finished::cleanup`] did not clean everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CleanupError {
    /// A job's cleanup failed; those after it did not run.
    #[error(transparent)]
    Failed(CleanupFailure),
    /// Cleanup was not possible: already done, or a no-act run.
    #[error(transparent)]
    NotAllowed(#[from] MachineError),
}
