//! The coordinator: a run whose executor sends each try of a job to the
//! work queue of its job's label instead of calling the job. It is an
//! executor on the engine's driver seam ([`dojobber::engine::driver`]):
//! the session's `step` asks the machine, lends storage, reports
//! outcomes and publishes events exactly as in a local run, so observers
//! see the same events and the machine makes every decision.
//!
//! The seam hands out phases; a worker performs a whole try (check → run
//! → recheck, as the machine would hand them out: it knows the job's kind
//! and whether the run is no-act), so a try's local storage stays on one
//! host. The executor sends the try when `step` hands out its first
//! phase, and answers each phase `step` hands out with the outcome its
//! worker reported for it. The machine's stops and time limits reach a
//! try through `Executor::abandon`: a try no worker took yet is given up
//! (claimed for the coordinator, so none will run it); the claim of a try
//! a worker took is cut before the abandoned phase's outcome goes back to
//! the machine, and the worker, whose claim is a compare-and-set before
//! each further phase, performs no further phase (it reports the try
//! stopped). The phase under way goes on there and reports when it ends,
//! as a thread's phase does. A worker that dies holding a try is noticed
//! when its claim stays unchanged for an ack wait: after the machine
//! abandoned the try, or after another worker reported the try lost
//! (JetStream handed it again: only a suspicion, its holder may be slow).
//! A run the worker renewed its claim for just before the cut landed
//! still runs (one KV round-trip's window).

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{consumer, kv};
use dojobber::engine::driver::{Came, Done, Executor, Next, Role, Session, Work};
use dojobber::engine::{JobId, Plan, Task};
use dojobber::{
    CancelHandle, Failure, Job, JobKind, JobRef, Observer, Outcome, Phase, Report, Runner, dep,
};
use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, nats};
use crate::transport::{LEASE_KEY, Served, Settings, Transport};
use crate::wire::{
    self, CleanupRequest, News, TryRequest, WireOutcome, WorkerReport, args_key, claim_key,
    fingerprint, runs_on,
};
use crate::worker::{COORDINATOR, CUT};

/// A distributed run of a suite: a [`Runner`]'s run whose phases are
/// performed by [`Worker`](crate::Worker)s.
///
/// ```no_run
/// use dojobber::{dep, Job};
/// use dojobber_nats::Coordinator;
///
/// struct Table;
/// impl Job<String> for Table {
///     fn runs_on(&self) -> Option<String> { Some("db".into()) }
/// }
///
/// # async fn run() -> Result<(), dojobber_nats::Error> {
/// let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
/// let report = Coordinator::new(client, "provision", Table, "prod".to_string())
///     .tries(3)
///     .run()
///     .await?;
/// assert!(report.is_success());
/// # Ok(()) }
/// ```
///
/// The settings are a [`Runner`]'s (the builder methods here set the inner
/// runner's): give one whole with [`from_runner`](Self::from_runner).
pub struct Coordinator<A> {
    client: async_nats::Client,
    suite: String,
    runner: Runner<A>,
    settings: Settings,
    lease_wait: Duration,
}

/// A distributed run that has ended: the plan it ran and its report
/// ([`Coordinator::run_to_end`]), for pictures of the run.
///
/// ```no_run
/// use dojobber::Group;
/// use dojobber_nats::Coordinator;
///
/// # async fn run() -> Result<(), dojobber_nats::Error> {
/// let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
/// let ran = Coordinator::new(client, "suite", Group::<()>::new("All"), ()).run_to_end().await?;
/// println!("{} jobs, all passed: {}", ran.plan.len(), ran.report.is_success());
/// # Ok(()) }
/// ```
pub struct Coordinated {
    /// The plan that was run.
    pub plan: Arc<Plan>,
    /// What happened to every job.
    pub report: Report,
}

/// What the command line writes and summarises (`dojobber-cli`'s
/// `--report-json`, `--graph`, `--html`, the summary).
impl dojobber_cli::Ran for Coordinated {
    fn plan(&self) -> &Plan {
        &self.plan
    }
    fn report(&self) -> Report {
        self.report.clone()
    }
}

impl<A> Coordinator<A>
where
    A: Serialize + Send + Sync + 'static,
{
    /// A run of everything `root` needs, with `args` (sent to the workers,
    /// which rebuild the graph from them). Defaults as a local run's, but
    /// 16 tries in flight at once.
    pub fn new(client: async_nats::Client, suite: &str, root: impl Job<A>, args: A) -> Self {
        Self::from_ref(client, suite, dep(root), args)
    }

    /// Like [`new`](Self::new), for a root already behind a [`JobRef`].
    pub fn from_ref(client: async_nats::Client, suite: &str, root: JobRef<A>, args: A) -> Self {
        Self::from_runner(client, suite, Runner::from_ref(root, args).workers(16))
    }

    /// A run with everything `runner` was set to: tries, retry delay,
    /// no-act, cleanup, workers (here: tries in flight at once, over all
    /// workers), fail-fast, deadline, group limits, verbosity and output,
    /// observers, cancel handle.
    ///
    /// ```no_run
    /// use dojobber::{Group, Runner};
    /// use dojobber_nats::Coordinator;
    ///
    /// # async fn run() -> Result<(), dojobber_nats::Error> {
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    /// let runner = Runner::new(Group::<()>::new("Nothing"), ()).workers(8).fail_fast(true);
    /// let report = Coordinator::from_runner(client, "suite", runner).run().await?;
    /// # Ok(()) }
    /// ```
    pub fn from_runner(client: async_nats::Client, suite: &str, runner: Runner<A>) -> Self {
        Coordinator {
            client,
            suite: suite.to_owned(),
            runner,
            settings: Settings::default(),
            lease_wait: Duration::ZERO,
        }
    }

    fn with(mut self, set: impl FnOnce(Runner<A>) -> Runner<A>) -> Self {
        self.runner = set(self.runner);
        self
    }

    /// Tries for jobs that do not choose their own ([`Runner::tries`]).
    pub fn tries(self, tries: u32) -> Self {
        self.with(|runner| runner.tries(tries))
    }

    /// Retry delay for jobs that do not choose their own
    /// ([`Runner::retry_delay`]).
    pub fn retry_delay(self, delay: Duration) -> Self {
        self.with(|runner| runner.retry_delay(delay))
    }

    /// Only check: no run, no retry, no cleanup ([`Runner::no_act`]).
    pub fn no_act(self, no_act: bool) -> Self {
        self.with(|runner| runner.no_act(no_act))
    }

    /// Whether cleanups happen when the run ends ([`Runner::cleanup`]).
    pub fn cleanup(self, cleanup: bool) -> Self {
        self.with(|runner| runner.cleanup(cleanup))
    }

    /// How many tries may be in flight at once, over all workers
    /// ([`Runner::workers`]; 0 is refused when the run starts, as a local
    /// run's).
    pub fn workers(self, in_flight: usize) -> Self {
        self.with(|runner| runner.workers(in_flight))
    }

    /// After the first job that failed for good, start no new try
    /// ([`Runner::fail_fast`]).
    pub fn fail_fast(self, fail_fast: bool) -> Self {
        self.with(|runner| runner.fail_fast(fail_fast))
    }

    /// No new phase starts after `limit` from the run's start
    /// ([`Runner::deadline`]).
    pub fn deadline(self, limit: Duration) -> Self {
        self.with(|runner| runner.deadline(limit))
    }

    /// At most `limit` jobs of `group` in a try at once
    /// ([`Runner::group_limit`]).
    pub fn group_limit(self, group: impl Into<String>, limit: usize) -> Self {
        self.with(|runner| runner.group_limit(group, limit))
    }

    /// Adds an observer of the run's events ([`Runner::observe`]).
    pub fn observe(self, observer: impl Observer + 'static) -> Self {
        self.with(|runner| runner.observe(observer))
    }

    /// The transport's timings (the same as the workers').
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Stops the run when `handle` is cancelled, from any thread: no new
    /// try starts, tries no worker took are given up, and tries under way
    /// on workers report when they end ([`Runner::cancel_handle`]).
    pub fn cancel_handle(self, handle: CancelHandle) -> Self {
        self.with(|runner| runner.cancel_handle(handle))
    }

    /// When another coordinator holds the suite's lease, wait up to
    /// `wait` for it to be released or to expire instead of refusing at
    /// once.
    pub fn wait_for_lease(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// Runs the suite on the workers to the end, cleanups included, and
    /// returns the report.
    ///
    /// Fails when the suite cannot start (the same errors as a local
    /// run's), when another coordinator runs the suite, or when the server
    /// cannot be used; failing jobs are in the report.
    pub async fn run(self) -> Result<Report, Error> {
        Ok(self.run_to_end().await?.report)
    }

    /// Like [`run`](Self::run), keeping the plan too (for pictures of the
    /// run).
    ///
    /// ```no_run
    /// use dojobber::Group;
    /// use dojobber_nats::Coordinator;
    ///
    /// # async fn run() -> Result<(), dojobber_nats::Error> {
    /// let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    /// let ran = Coordinator::new(client, "suite", Group::<()>::new("All"), ())
    ///     .run_to_end()
    ///     .await?;
    /// assert_eq!(ran.report.jobs().len(), ran.plan.len());
    /// # Ok(()) }
    /// ```
    pub async fn run_to_end(self) -> Result<Coordinated, Error> {
        let names = wire::Names::new(&self.suite)?;
        let session = self.runner.into_session()?;
        let labels: Vec<Option<String>> = session
            .plan()
            .ids()
            .map(|id| runs_on(&**session.job(id)))
            .collect();
        for label in labels.iter().flatten() {
            wire::check_token("label", label)?;
        }
        let args = serde_json::to_vec(session.args()).map_err(|e| Error::Args(e.to_string()))?;
        let transport = Transport::open(self.client.clone(), names, self.settings).await?;
        let run = new_run_id();
        let cancel = session.cancel_handle().clone();
        let lease = Lease::take(&transport, &run, self.lease_wait, &cancel).await?;
        let result = async {
            transport
                .runs
                .put(args_key(&run), args.into())
                .await
                .map_err(nats("cannot store the run's arguments"))?;
            let link = Arc::new(Link {
                fingerprint: fingerprint(session.plan(), &labels),
                labels,
                no_act: session.config().no_act,
                transport: transport.clone(),
                client: self.client,
                run: run.clone(),
                tries: Mutex::new(HashMap::new()),
                ran_on: Mutex::new(HashMap::new()),
                broken: Mutex::new(None),
                unserved: Mutex::new(HashSet::new()),
            });
            let _reader = AbortOnDrop(listen(&link).await?);
            let session = Arc::new(session);
            drive(&session, &link).await;
            let broken = link.broken().take();
            if let Some(error) = broken {
                return Err(error);
            }
            let plan = Arc::clone(session.plan());
            let report = match Arc::try_unwrap(session) {
                Ok(session) => session.into_report(),
                Err(_) => unreachable!("every worker of the run has ended"),
            };
            Ok(Coordinated { plan, report })
        }
        .await;
        lease.release().await;
        result
    }
}

/// A run id: unique per coordinator run, usable in subjects and keys.
fn new_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("r{nanos:x}-{}", std::process::id())
}

/// A task that ends when this is dropped (the run's future dropped, or a
/// panic unwinding through it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The coordinator's hold on its suite: a key in a bucket whose keys
/// expire, refreshed while the run lasts. Every write checks the revision
/// this coordinator last wrote, so one whose lease expired never
/// overwrites or deletes a newer coordinator's.
struct Lease {
    store: kv::Store,
    /// The revision last written.
    revision: Arc<Mutex<u64>>,
    /// Stops refreshing when dropped (the lease then expires).
    _refresher: AbortOnDrop<()>,
}

impl Lease {
    async fn take(
        transport: &Transport,
        run: &str,
        wait: Duration,
        cancel: &CancelHandle,
    ) -> Result<Lease, Error> {
        let store = transport.lease_bucket().await?;
        let give_up = Instant::now() + wait;
        let revision = loop {
            match store.create(LEASE_KEY, run.to_owned().into()).await {
                Ok(revision) => break revision,
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if Instant::now() >= give_up || cancel.is_cancelled() {
                        let holder = store
                            .get(LEASE_KEY)
                            .await
                            .ok()
                            .flatten()
                            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                            .unwrap_or_else(|| "(expired just now)".into());
                        return Err(Error::LeaseHeld {
                            suite: transport.names.suite().to_owned(),
                            holder,
                        });
                    }
                    // Waiting for the holder's key to go: released or expired.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => return Err(nats("cannot take the suite's lease")(error)),
            }
        };
        let revision = Arc::new(Mutex::new(revision));
        let refresher = {
            let (store, run, revision) = (store.clone(), run.to_owned(), Arc::clone(&revision));
            let every = transport.settings.lease_ttl / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let last = *lock(&revision);
                    match store.update(LEASE_KEY, run.clone().into(), last).await {
                        Ok(new) => *lock(&revision) = new,
                        Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            tracing::error!(
                                "the suite's lease expired and another coordinator took it: \
                                 workers refuse this run's tries from now on"
                            );
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "cannot refresh the lease"),
                    }
                }
            })
        };
        Ok(Lease {
            store,
            revision,
            _refresher: AbortOnDrop(refresher),
        })
    }

    async fn release(self) {
        let last = *lock(&self.revision);
        drop(self._refresher);
        if let Err(error) = self
            .store
            .delete_expect_revision(LEASE_KEY, Some(last))
            .await
        {
            tracing::warn!(%error, "cannot release the lease (another holds it, or it expires by itself)");
        }
    }
}

/// What the executor, the report reader and the sending tasks share: the
/// run on the server and the tries in flight.
struct Link {
    fingerprint: String,
    labels: Vec<Option<String>>,
    no_act: bool,
    transport: Transport,
    client: async_nats::Client,
    run: String,
    /// Per job, its try on the workers (the latest).
    tries: Mutex<HashMap<JobId, RemoteTry>>,
    /// Per job whose run executed: the worker and the try, for its cleanup.
    ran_on: Mutex<HashMap<JobId, (String, u32)>>,
    /// Reports can no longer come back: why. Every phase then fails.
    broken: Mutex<Option<Error>>,
    /// Labels already named as having no worker, so each is named once.
    unserved: Mutex<HashSet<Option<String>>>,
}

/// One try on the workers, as the coordinator follows it.
struct RemoteTry {
    attempt: u32,
    /// Outcomes reported and not yet asked for.
    pending: VecDeque<(Phase, Outcome)>,
    /// Why the try ended early (refused, lost, given up, never sent): the
    /// outcome of every phase the machine still asks for; later reports
    /// are dropped.
    ended: Option<Outcome>,
    /// The machine abandoned the phase in flight (a time limit, a stop).
    abandoned: bool,
    /// JetStream handed the try to a second worker: its holder was silent
    /// for an ack wait, maybe dead.
    suspect: bool,
    /// Phase reports heard so far: its worker is alive.
    heard: u64,
    /// Rung when any of the above changes.
    news: Arc<Notify>,
}

/// A try being watched (abandoned, or its holder suspected dead): its
/// claim's revision when last seen (a worker refreshes it while it
/// lives), the worker that holds it, and when that was.
struct Silence {
    revision: Option<u64>,
    holder: Option<String>,
    since: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    fn tries(&self) -> MutexGuard<'_, HashMap<JobId, RemoteTry>> {
        lock(&self.tries)
    }

    fn broken(&self) -> MutexGuard<'_, Option<Error>> {
        lock(&self.broken)
    }

    /// Takes a worker's report of a try in flight.
    fn take_report(&self, report: WorkerReport) {
        if report.run != self.run {
            return;
        }
        let job = JobId::from_index(report.job_id as usize);
        let mut tries = self.tries();
        let Some(remote) = tries.get_mut(&job) else {
            return;
        };
        if remote.ended.is_some() || remote.attempt != report.attempt {
            return;
        }
        match report.news {
            News::Phase { phase, outcome, .. } => {
                if phase == Phase::Run {
                    lock(&self.ran_on).insert(job, (report.worker.clone(), report.attempt));
                }
                remote.pending.push_back((phase, outcome.into()));
                remote.heard += 1;
            }
            News::Refused { reason } | News::Stopped { reason } => {
                remote.ended = Some(fail(reason));
            }
            // Only a suspicion: its holder may be slow, not dead. The
            // try ends if the holder's claim stays still for an ack wait.
            News::Lost { .. } => remote.suspect = true,
        }
        remote.news.notify_one();
    }

    /// Ends try `attempt` of `job` early with `outcome`, unless it ended.
    fn end(&self, job: JobId, attempt: u32, outcome: Outcome) {
        let mut tries = self.tries();
        if let Some(remote) = tries.get_mut(&job)
            && remote.attempt == attempt
            && remote.ended.is_none()
        {
            remote.ended = Some(outcome);
            remote.news.notify_one();
        }
    }

    /// Reports can no longer come back: every try in flight fails.
    fn break_down(&self, error: Error) {
        let reason = format!("the coordinator lost its reports: {error}");
        self.broken().get_or_insert(error);
        for remote in self.tries().values_mut() {
            remote.ended.get_or_insert_with(|| fail(reason.clone()));
            remote.news.notify_one();
        }
    }
}

/// Reads the run's reports (an ordered consumer, which survives
/// reconnections) into the tries in flight.
async fn listen(link: &Arc<Link>) -> Result<tokio::task::JoinHandle<()>, Error> {
    let transport = &link.transport;
    let consumer = transport
        .reports
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: transport.names.report_subject(&link.run),
            ..Default::default()
        })
        .await
        .map_err(nats("cannot read the run's reports"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats("cannot read the run's reports"))?;
    let link = Arc::clone(link);
    Ok(tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "reading reports");
                    continue;
                }
            };
            match serde_json::from_slice::<WorkerReport>(&message.payload) {
                Ok(report) => link.take_report(report),
                Err(error) => tracing::warn!(%error, "a report that cannot be read; ignored"),
            }
        }
        link.break_down(Error::Nats {
            context: "reading the run's reports",
            error: "the subscription ended".into(),
        });
    }))
}

/// The executor: the watcher is the run's own task; each worker is a
/// tokio task that sends tries and awaits their phases' outcomes.
struct Remote<A> {
    session: Arc<Session<A>>,
    link: Arc<Link>,
    /// Itself, for the workers it starts.
    me: Weak<Remote<A>>,
    start: Instant,
    /// The most workers the run can use.
    workers: usize,
    /// Workers started (changed under the session's lock).
    started: AtomicUsize,
    handles: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The first panic of a worker (an observer's), for the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    worker_bell: Semaphore,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Notify>,
}

impl<A: Send + Sync + 'static> Executor for Remote<A> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn wake_workers(&self, count: usize) {
        self.worker_bell.add_permits(count.min(self.workers));
    }
    fn wake_watcher(&self) {
        self.watcher_bell.notify_one();
    }
    fn abandon(&self, task: Task) {
        if task.phase == Phase::Cleanup {
            return;
        }
        let mut tries = self.link.tries();
        if let Some(remote) = tries.get_mut(&task.job)
            && remote.attempt == task.attempt
        {
            remote.abandoned = true;
            remote.news.notify_one();
        }
    }
    fn can_add_worker(&self) -> bool {
        self.started.load(Ordering::SeqCst) < self.workers
    }
    fn add_worker(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        let remote = self
            .me
            .upgrade()
            .expect("the executor outlives its workers");
        let handle = tokio::spawn(async move { remote.worker().await });
        lock(&self.handles).push(handle);
    }
}

/// Runs the session with remote workers: up to `most_in_flight` worker
/// tasks, started as work comes, this task watching the timers.
async fn drive<A: Send + Sync + 'static>(session: &Arc<Session<A>>, link: &Arc<Link>) {
    let remote = Arc::new_cyclic(|me| Remote {
        session: Arc::clone(session),
        link: Arc::clone(link),
        me: me.clone(),
        start: Instant::now(),
        workers: session.most_in_flight(),
        started: AtomicUsize::new(0),
        handles: Mutex::new(Vec::new()),
        panic: Mutex::new(None),
        worker_bell: Semaphore::new(0),
        watcher_bell: Arc::new(Notify::new()),
    });
    let _subscription = session.cancel_handle().subscribe({
        let bell = Arc::clone(&remote.watcher_bell);
        move || bell.notify_one()
    });
    // Worker tasks still running when this future is dropped or unwinds
    // are ended with it.
    let _workers = AbortWorkers(&remote.handles);
    let watching = AssertUnwindSafe(remote.work(Role::Watcher))
        .catch_unwind()
        .await;
    if let Err(panic) = watching {
        session.break_down(&*remote);
        std::panic::resume_unwind(panic);
    }
    loop {
        let handles = std::mem::take(&mut *lock(&remote.handles));
        if handles.is_empty() {
            break;
        }
        // Each still aborted if this future is dropped meanwhile.
        for mut handle in handles.into_iter().map(AbortOnDrop) {
            // A worker catches its own panics (kept below).
            let _ = (&mut handle.0).await;
        }
    }
    let panic = lock(&remote.panic).take();
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}

/// Aborts the worker tasks left when dropped.
struct AbortWorkers<'a>(&'a Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Drop for AbortWorkers<'_> {
    fn drop(&mut self) {
        for handle in lock(self.0).drain(..) {
            handle.abort();
        }
    }
}

impl<A: Send + Sync + 'static> Remote<A> {
    /// A worker's whole life; a panic stops the run and is kept for the
    /// caller.
    async fn worker(&self) {
        let work = AssertUnwindSafe(self.work(Role::Worker));
        if let Err(panic) = work.catch_unwind().await {
            self.session.break_down(self);
            // Wakes the other worker tasks, whichever try they await.
            self.link.break_down(Error::Nats {
                context: "the run",
                error: "a worker task panicked (an observer?)".into(),
            });
            lock(&self.panic).get_or_insert(panic);
        }
    }

    async fn work(&self, role: Role) {
        let session = &self.session;
        let mut came = Came::Start;
        loop {
            let next = session.step(role, came, self);
            came = match next {
                Next::Perform(work) => Came::Finished(self.perform(work).await),
                Next::Sleep(until) => {
                    match role {
                        Role::Worker => self
                            .worker_bell
                            .acquire()
                            .await
                            .expect("the bell is never closed")
                            .forget(),
                        Role::Watcher | Role::Alone => {
                            let until =
                                until.map_or(Duration::MAX, |at| at.saturating_sub(self.now()));
                            let _ = tokio::time::timeout(until, self.watcher_bell.notified()).await;
                        }
                    }
                    Came::Woke
                }
                Next::Done => return,
            };
        }
    }

    /// Performs a phase on the workers: its outcome as they report it.
    async fn perform(&self, work: Work) -> Done {
        let Work { task, local } = work;
        let outcome = match task.phase {
            Phase::Cleanup => self.cleanup(task).await,
            _ => self.phase(task).await,
        };
        Done {
            task,
            local,
            outcome,
            at: self.now(),
        }
    }

    /// A phase of a try: sends the try if this is its first phase, then
    /// waits for what its worker reports.
    async fn phase(&self, task: Task) -> Outcome {
        let first = match self.session.plan().kind(task.job) {
            JobKind::RunOnly => Phase::Run,
            _ => Phase::Check,
        };
        let (news, new_try) = {
            // `broken` read under the tries' lock: a break-down after this
            // look finds the try inserted here, and ends it.
            let mut tries = self.link.tries();
            if let Some(error) = &*self.link.broken() {
                return fail(format!("the coordinator lost its reports: {error}"));
            }
            let new_try = task.phase == first
                && tries
                    .get(&task.job)
                    .is_none_or(|remote| remote.attempt != task.attempt);
            if new_try {
                let remote = RemoteTry {
                    attempt: task.attempt,
                    pending: VecDeque::new(),
                    ended: None,
                    abandoned: false,
                    suspect: false,
                    heard: 0,
                    news: Arc::new(Notify::new()),
                };
                tries.insert(task.job, remote);
            }
            match tries.get(&task.job) {
                Some(remote) if remote.attempt == task.attempt => {
                    (Arc::clone(&remote.news), new_try)
                }
                _ => return fail(format!("{} of a try never sent", task.phase)),
            }
        };
        if new_try {
            self.send_try(task);
        }
        // Until its worker first reports: a try unheard of for an ack wait
        // may have no worker at all, which is worth saying.
        let mut unheard_since = new_try.then(Instant::now);
        let mut watch: Option<(u64, Silence)> = None;
        // Whether the claim was cut (or the try given up) since the
        // machine abandoned it: tried once before any outcome goes back,
        // so the machine starts no next try while this one may go on.
        let mut cut = false;
        loop {
            let notified = news.notified();
            let (outcome, abandoned, suspect, heard) = {
                let mut tries = self.link.tries();
                let remote = tries
                    .get_mut(&task.job)
                    .expect("a try in flight stays until its next");
                (
                    take_outcome(remote, task.phase),
                    remote.abandoned,
                    remote.suspect,
                    remote.heard,
                )
            };
            if abandoned && !cut {
                cut = true;
                let seen = self.watch_claim(task, true, None).await;
                watch = seen.map(|silence| (heard, silence));
                continue;
            }
            if let Some(outcome) = outcome {
                return outcome;
            }
            let mut wake = None;
            if abandoned || suspect {
                let ack_wait = self.link.transport.settings.ack_wait;
                // Its worker spoke since the last look: look afresh.
                let last = watch.take().filter(|(seen, _)| *seen == heard);
                match last {
                    Some((seen, silence)) if silence.since.elapsed() < ack_wait => {
                        wake = Some(silence.since + ack_wait);
                        watch = Some((seen, silence));
                    }
                    last => {
                        let last = last.map(|(_, silence)| silence);
                        // None: the try ended, and the next look finds its outcome.
                        let seen = self.watch_claim(task, abandoned, last).await;
                        watch = seen.map(|silence| (heard, silence));
                        continue;
                    }
                }
            }
            if let Some(since) = unheard_since {
                let at = since + self.link.transport.settings.ack_wait;
                if heard > 0 {
                    unheard_since = None;
                } else if Instant::now() >= at {
                    unheard_since = None;
                    self.name_if_unserved(task).await;
                    continue;
                } else {
                    wake = Some(wake.map_or(at, |wake: Instant| wake.min(at)));
                }
            }
            match wake {
                Some(wake) => {
                    let _ = tokio::time::timeout_at(wake, notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Warns, once per label, when a try has had no word for an ack wait
    /// and no worker serves its label: else a missing worker would look
    /// like a hang. Decides nothing: the try still waits for a worker, its
    /// time limit or the run's deadline.
    async fn name_if_unserved(&self, task: Task) {
        let label = self.link.labels[task.job.index()].clone();
        if lock(&self.link.unserved).contains(&label) {
            return;
        }
        let why = match self.link.transport.served(label.as_deref()).await {
            Some(Served::Never) => "none has ever served this suite".to_owned(),
            Some(Served::NotNow { queued }) => {
                format!("none is serving now, {queued} tries queued")
            }
            Some(Served::Yes) | None => return,
        };
        if !lock(&self.link.unserved).insert(label.clone()) {
            return;
        }
        let name = self.session.plan().name(task.job);
        match &label {
            Some(label) => tracing::warn!(
                job = name,
                "waiting for a worker with label {label}: {why}; start one with `--labels {label}`"
            ),
            None => tracing::warn!(job = name, "waiting for a worker: {why}; start one"),
        }
    }

    /// Publishes a try without waiting for the server's acknowledgement
    /// (so tries go out back to back); a try the server never took fails.
    fn send_try(&self, task: Task) {
        let link = &self.link;
        let request = TryRequest {
            run: link.run.clone(),
            job: self.session.plan().name(task.job).to_owned(),
            job_id: task.job.index() as u32,
            attempt: task.attempt,
            no_act: link.no_act,
            plan: link.fingerprint.clone(),
        };
        let payload = serde_json::to_vec(&request).expect("serialisable");
        let subject = link
            .transport
            .names
            .try_subject(link.labels[task.job.index()].as_deref());
        let id = format!("{}.try.{}.{}", link.run, request.job_id, request.attempt);
        let link = Arc::clone(link);
        tokio::spawn(async move {
            if let Err(error) = link.transport.publish(subject, payload.into(), &id).await {
                let failure = format!("cannot send the try to the work queue: {error}");
                link.end(task.job, task.attempt, fail(failure));
            }
        });
    }

    /// Looks at the claim of a try being watched. When `cut` (the machine
    /// abandoned it): claims it for the coordinator if no worker has, and
    /// ends it; else cuts the worker's claim, so it performs no further
    /// phase. Ends the try if the claim has not moved since `last` (its
    /// worker died), cutting it first. Else returns the claim as seen now,
    /// to look again after an ack wait.
    async fn watch_claim(&self, task: Task, cut: bool, last: Option<Silence>) -> Option<Silence> {
        let (job, attempt) = (task.job, task.attempt);
        let runs = &self.link.transport.runs;
        let claim = claim_key(&self.link.run, job.index() as u32, attempt);
        let name = self.session.plan().name(job);
        let mut last = last;
        // A worker may write between a read and a write: read again.
        for _ in 0..3 {
            let since = Instant::now();
            let entry = match runs.entry(claim.clone()).await {
                Ok(None) if !cut => {
                    return Some(Silence {
                        revision: None,
                        holder: None,
                        since,
                    });
                }
                Ok(None) => match runs.create(&claim, COORDINATOR.into()).await {
                    Ok(_) => {
                        let label = self.link.labels[job.index()].as_deref();
                        let failure = format!(
                            "given up before any worker with label {} took it \
                             (the run was stopped, or the job is over its time limit)",
                            label.unwrap_or(wire::ANY_LABEL)
                        );
                        tracing::warn!(job = name, "{failure}");
                        self.link.end(job, attempt, fail(failure));
                        return None;
                    }
                    // A worker claimed it just now.
                    Err(_) => continue,
                },
                Ok(Some(entry)) => entry,
                // The server cannot tell now: look again later.
                Err(_) => break,
            };
            let value = String::from_utf8_lossy(&entry.value).into_owned();
            if value == COORDINATOR {
                // Given up by this coordinator already: its outcome is there.
                return None;
            }
            let holder = match value.as_str() {
                CUT => last.as_ref().and_then(|last| last.holder.clone()),
                _ => Some(value.clone()),
            };
            let still = last
                .as_ref()
                .is_some_and(|last| last.revision == Some(entry.revision));
            if still || (cut && value != CUT) {
                // Cut: the worker's next compare-and-set fails.
                let Ok(revision) = runs.update(&claim, CUT.into(), entry.revision).await else {
                    // It wrote just now: alive.
                    last = None;
                    continue;
                };
                if !still {
                    return Some(Silence {
                        revision: Some(revision),
                        holder,
                        since: Instant::now(),
                    });
                }
                let ack_wait = self.link.transport.settings.ack_wait;
                let holder = holder.unwrap_or_else(|| "?".into());
                let failure =
                    format!("worker {holder} took this try and went silent for {ack_wait:?}: lost");
                tracing::warn!(job = name, "{failure}");
                self.link.end(job, attempt, fail(failure));
                return None;
            }
            return Some(Silence {
                revision: Some(entry.revision),
                holder,
                since,
            });
        }
        Some(Silence {
            revision: last.as_ref().and_then(|last| last.revision),
            holder: last.and_then(|last| last.holder),
            since: Instant::now(),
        })
    }

    /// A cleanup: a request to the worker that ran the job's run.
    async fn cleanup(&self, task: Task) -> Outcome {
        let ran_on = lock(&self.link.ran_on).get(&task.job).cloned();
        let Some((worker, attempt)) = ran_on else {
            // The machine counts a run that a refused or lost try never
            // began: nothing ran, nothing to clean.
            return Outcome::Pass;
        };
        let request = CleanupRequest {
            run: self.link.run.clone(),
            job_id: task.job.index() as u32,
            attempt,
        };
        let payload = serde_json::to_vec(&request).expect("serialisable");
        let subject = self.link.transport.names.cleanup_subject(&worker);
        let timeout = self.link.transport.settings.cleanup_timeout;
        let answer = self.link.client.request(subject, payload.into());
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(reply)) => match serde_json::from_slice::<WireOutcome>(&reply.payload) {
                Ok(outcome) => outcome.into(),
                Err(error) => fail(format!("worker {worker} answered nonsense: {error}")),
            },
            Ok(Err(error)) => fail(format!("worker {worker} did not clean up: {error}")),
            Err(_) => fail(format!("worker {worker} did not answer within {timeout:?}")),
        }
    }
}

/// The outcome of `wanted` if its worker reported it, or the try's if it
/// ended early. Outcomes of phases before it, which the machine did not
/// ask for (a stop cut the try), are dropped.
fn take_outcome(remote: &mut RemoteTry, wanted: Phase) -> Option<Outcome> {
    while remote
        .pending
        .front()
        .is_some_and(|(phase, _)| *phase < wanted)
    {
        remote.pending.pop_front();
    }
    match remote.pending.front() {
        Some((phase, _)) if *phase == wanted => remote.pending.pop_front().map(|(_, o)| o),
        _ => remote.ended.clone(),
    }
}

fn fail(message: String) -> Outcome {
    Outcome::Fail(Failure::new(message))
}
