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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::RequestErrorKind;
use async_nats::jetstream::context::{PublishAckFuture, PublishError};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{consumer, kv};
use dojobber::engine::driver::{PerformPhase, Session, Work, drive_tasks};
use dojobber::engine::{JobId, Performer, Plan, Task, first_phase};
use dojobber::observe::Observer;
use dojobber::{
    CancelHandle, Failure, FailureKind, Job, JobRef, LocalStorage, Outcome, Phase, Report, Runner,
    dep,
};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::AbortOnDrop;
use crate::error::{Error, nats};
use crate::remote_try::{Action, ClaimSeen, CutResult, Lost, RemoteTry};
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
        let session = Arc::new(session);
        // The tasks that warn (the lease's refresher, the report reader,
        // the claim watcher) outlive the run's drive: a warning holds the
        // session under this lock, and the run's end clears it under the
        // same lock, so the report never waits on (or races) a warning.
        let warned = Arc::new(Mutex::new(Arc::downgrade(&session)));
        let warn: Warn = {
            let warned = Arc::clone(&warned);
            Arc::new(move |job: Option<JobId>, message: String| {
                let warned = lock(&warned);
                if let Some(session) = warned.upgrade() {
                    session.warn(job, message);
                }
            })
        };
        let lease = Lease::take(&transport, &run, self.lease_wait, &cancel, &warn).await?;
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
                start: Instant::now(),
                tries: Mutex::new(HashMap::new()),
                ran_on: Mutex::new(HashMap::new()),
                broken: Mutex::new(None),
                unserved: Mutex::new(HashSet::new()),
                lost: Mutex::new(HashMap::new()),
                warn,
            });
            let _reader = AbortOnDrop(listen(&link).await?);
            let _claims = AbortOnDrop(watch_claims(&link).await?);
            let (outbox, outgoing) = mpsc::unbounded_channel();
            let _sender = AbortOnDrop(tokio::spawn(send_tries(Arc::clone(&link), outgoing)));
            let performer = RemotePhases {
                link: Arc::clone(&link),
                plan: Arc::clone(session.plan()),
                outbox,
            };
            drive_tasks(&session, performer).await;
            let broken = link.broken().take();
            if let Some(error) = broken {
                return Err(error);
            }
            let plan = Arc::clone(session.plan());
            // A warning from now on has no run to go to.
            *lock(&warned) = Weak::new();
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
        warn: &Warn,
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
                        let expires_within = match store.status().await {
                            Ok(status) => status.max_age(),
                            Err(_) => transport.settings.lease_ttl,
                        };
                        return Err(Error::LeaseHeld {
                            suite: transport.names.suite().to_owned(),
                            holder,
                            expires_within,
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
            let warn = Arc::clone(warn);
            let every = transport.settings.lease_ttl / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let last = *lock(&revision);
                    match store.update(LEASE_KEY, run.clone().into(), last).await {
                        Ok(new) => *lock(&revision) = new,
                        Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                            warn(
                                None,
                                "the suite's lease expired and another coordinator took it: \
                                 workers refuse this run's tries from now on"
                                    .to_owned(),
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

/// What the executor, the report reader, the claim watcher and the
/// sender of tries share: the run on the server and the tries in flight.
struct Link {
    fingerprint: String,
    labels: Vec<Option<String>>,
    no_act: bool,
    transport: Transport,
    client: async_nats::Client,
    run: String,
    /// The run's clock: the tries' times are since this.
    start: Instant,
    /// Per job, its try on the workers (the latest).
    tries: Mutex<HashMap<JobId, Followed>>,
    /// Per job whose run executed: the worker and the try, for its cleanup.
    ran_on: Mutex<HashMap<JobId, (String, u32)>>,
    /// Reports can no longer come back: why. Every phase then fails.
    broken: Mutex<Option<Error>>,
    /// Labels already named as having no worker, so each is named once.
    unserved: Mutex<HashSet<Option<String>>>,
    /// Per label, the last worker declared lost with a try of it.
    lost: Mutex<HashMap<Option<String>, Lost>>,
    /// Tells the run's observers what the user must know (never called
    /// with a lock of this link held: the session's lock comes first).
    warn: Warn,
}

/// Tells the run's observers (its printer on stderr among them) what the
/// user must know, about a job or the whole run: [`Session::warn`].
type Warn = Arc<dyn Fn(Option<JobId>, String) + Send + Sync>;

/// A try on the workers, and the bell of the task awaiting its phase.
struct Followed {
    remote: RemoteTry,
    /// Rung when the try has news.
    news: Arc<Notify>,
}

/// Try `attempt` of `job`, if it is the one in flight.
fn in_flight(
    tries: &mut HashMap<JobId, Followed>,
    job: JobId,
    attempt: u32,
) -> Option<&mut Followed> {
    tries
        .get_mut(&job)
        .filter(|followed| followed.remote.attempt == attempt)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    fn tries(&self) -> MutexGuard<'_, HashMap<JobId, Followed>> {
        lock(&self.tries)
    }

    fn broken(&self) -> MutexGuard<'_, Option<Error>> {
        lock(&self.broken)
    }

    /// The run's clock.
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Calls `change` on try `attempt` of `job` if it is the one in
    /// flight (from the task that awaits its phase).
    fn with_try<R>(
        &self,
        job: JobId,
        attempt: u32,
        change: impl FnOnce(&mut RemoteTry) -> R,
    ) -> Option<R> {
        let mut tries = self.tries();
        let followed = in_flight(&mut tries, job, attempt)?;
        Some(change(&mut followed.remote))
    }

    /// Like [`with_try`](Self::with_try), from elsewhere: rings the bell of
    /// the task that awaits the try's phase.
    fn tell_try<R>(
        &self,
        job: JobId,
        attempt: u32,
        change: impl FnOnce(&mut RemoteTry) -> R,
    ) -> Option<R> {
        let mut tries = self.tries();
        let followed = in_flight(&mut tries, job, attempt)?;
        let result = change(&mut followed.remote);
        followed.news.notify_one();
        Some(result)
    }

    /// Takes a worker's report of a try in flight.
    fn take_report(&self, report: WorkerReport) {
        if report.run != self.run {
            return;
        }
        let job = JobId::from_index(report.job_id as usize);
        if let News::Phase {
            phase: Phase::Run, ..
        } = report.news
        {
            lock(&self.ran_on).insert(job, (report.worker.clone(), report.attempt));
        }
        let refused = match &report.news {
            News::Refused { reason } => Some(reason.clone()),
            _ => None,
        };
        let now = self.now();
        let taken = self.tell_try(job, report.attempt, |remote| {
            let live = !remote.has_ended();
            remote.handle_report_from(&report.worker, report.news, now);
            live
        });
        if let (Some(true), Some(reason)) = (taken, refused) {
            let worker = &report.worker;
            (self.warn)(
                Some(job),
                format!("worker {worker} refused try {}: {reason}", report.attempt),
            );
        }
    }

    /// Takes the claim on a try as the runs bucket shows it.
    fn take_claim(&self, job: JobId, attempt: u32, seen: ClaimSeen) {
        let now = self.now();
        self.tell_try(job, attempt, |remote| remote.handle_claim(seen, now));
    }

    /// Ends try `attempt` of `job` early with `outcome`, unless it ended.
    fn end(&self, job: JobId, attempt: u32, outcome: Outcome) {
        self.tell_try(job, attempt, |remote| remote.end(outcome));
    }

    /// Reports can no longer come back: every try in flight fails.
    fn break_down(&self, error: Error) {
        let reason = format!("the coordinator lost its reports: {error}");
        self.broken().get_or_insert(error);
        for followed in self.tries().values_mut() {
            followed.remote.end(fail(reason.clone()));
            followed.news.notify_one();
        }
    }

    /// The claim key of a try.
    fn claim_key(&self, task: Task) -> String {
        claim_key(&self.run, task.job.index() as u32, task.attempt)
    }
}

/// The claim on a try as its key's value says.
fn claim_seen(value: &[u8], revision: u64) -> ClaimSeen {
    match value {
        b"" => ClaimSeen::Free,
        value if value == COORDINATOR.as_bytes() => ClaimSeen::GivenUp,
        value if value == CUT.as_bytes() => ClaimSeen::Cut { revision },
        name => ClaimSeen::Worker {
            name: String::from_utf8_lossy(name).into_owned(),
            revision,
        },
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

/// Watches the claims on the run's tries: each new revision is a word
/// from the worker that holds one (it writes one at least every third of
/// an ack wait while it lives). A watch that breaks costs only reads:
/// each try's claim is read after an ack wait with no news.
async fn watch_claims(link: &Arc<Link>) -> Result<tokio::task::JoinHandle<()>, Error> {
    let prefix = format!("{}.claim.", link.run);
    let mut watch = link
        .transport
        .runs
        .watch(format!("{prefix}>"))
        .await
        .map_err(nats("cannot watch the run's claims"))?;
    let link = Arc::clone(link);
    Ok(tokio::spawn(async move {
        while let Some(entry) = watch.next().await {
            let Ok(entry) = entry else { continue };
            let Some((job, attempt)) = entry
                .key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once('.'))
                .and_then(|(job, attempt)| Some((job.parse().ok()?, attempt.parse().ok()?)))
            else {
                continue;
            };
            let seen = match entry.operation {
                kv::Operation::Put => claim_seen(&entry.value, entry.revision),
                kv::Operation::Delete | kv::Operation::Purge => ClaimSeen::Free,
            };
            link.take_claim(JobId::from_index(job), attempt, seen);
        }
        tracing::debug!("the watch of claims ended; claims are read instead");
    }))
}

/// How the coordinator performs a phase, on dojobber's task pool
/// ([`drive_tasks`]): each worker task sends tries and awaits their
/// phases' outcomes.
struct RemotePhases {
    link: Arc<Link>,
    plan: Arc<Plan>,
    /// Tries for [`send_tries`] to publish, in the order they were sent.
    outbox: mpsc::UnboundedSender<Outgoing>,
}

impl<A: Send + Sync + 'static> PerformPhase<A> for RemotePhases {
    /// Performs a phase on the workers: its outcome as they report it. The
    /// local storage lent stays empty: a try's lives on its worker.
    async fn perform(&self, session: &Arc<Session<A>>, work: Work) -> (Outcome, LocalStorage) {
        let (outcome, local, _) = self.perform_by(session, work).await;
        (outcome, local)
    }

    /// Performs a phase on the workers, naming the worker that performed
    /// it: the report says who performed each try.
    async fn perform_by(
        &self,
        _session: &Arc<Session<A>>,
        work: Work,
    ) -> (Outcome, LocalStorage, Performer) {
        let Work { task, local } = work;
        let (outcome, performer) = match task.phase {
            Phase::Cleanup => self.cleanup(task).await,
            _ => {
                let outcome = self.phase(task).await;
                let worker = self.link.with_try(task.job, task.attempt, |remote| {
                    remote.performer().map(str::to_owned)
                });
                let performer = worker
                    .flatten()
                    .map_or(Performer::Nobody, Performer::Worker);
                (outcome, performer)
            }
        };
        (outcome, local, performer)
    }

    fn abandon(&self, task: Task) {
        if task.phase == Phase::Cleanup {
            return;
        }
        self.link
            .tell_try(task.job, task.attempt, RemoteTry::handle_abandon);
    }

    /// Wakes the other worker tasks, whichever try they await.
    fn broke_down(&self) {
        self.link.break_down(Error::Nats {
            context: "the run",
            error: "a worker task panicked (an observer?)".into(),
        });
    }
}

impl RemotePhases {
    /// A phase of a try: sends the try if this is its first phase, then
    /// does what the try's [`RemoteTry`] says until it has the outcome.
    async fn phase(&self, task: Task) -> Outcome {
        let link = &self.link;
        let kind = self.plan.kind(task.job);
        let first = first_phase(kind, link.no_act);
        let (news, new_try) = {
            // `broken` read under the tries' lock: a break-down after this
            // look finds the try inserted here, and ends it.
            let mut tries = link.tries();
            if let Some(error) = &*link.broken() {
                return fail(format!("the coordinator lost its reports: {error}"));
            }
            let new_try = Some(task.phase) == first
                && tries
                    .get(&task.job)
                    .is_none_or(|followed| followed.remote.attempt != task.attempt);
            if new_try {
                let ack_wait = link.transport.settings.ack_wait;
                let followed = Followed {
                    remote: RemoteTry::new(task.attempt, ack_wait, link.now()),
                    news: Arc::new(Notify::new()),
                };
                tries.insert(task.job, followed);
            }
            match tries.get_mut(&task.job) {
                Some(followed) if followed.remote.attempt == task.attempt => {
                    followed.remote.ask(task.phase);
                    (Arc::clone(&followed.news), new_try)
                }
                _ => return fail(format!("{} of a try never sent", task.phase)),
            }
        };
        if new_try {
            self.send_try(task);
        }
        loop {
            let notified = news.notified();
            let now = link.now();
            let action = link.with_try(task.job, task.attempt, |remote| remote.poll(now));
            let Some(action) = action else {
                return fail(format!("{} of a try no longer followed", task.phase));
            };
            match action {
                Action::Answer(outcome) => return outcome,
                Action::Wait(Some(at)) => {
                    let _ = tokio::time::timeout_at(link.start + at, notified).await;
                }
                Action::Wait(None) => notified.await,
                Action::GiveUp => self.give_up(task).await,
                Action::Cut { revision } => self.cut(task, revision).await,
                Action::ReadClaim => self.read_claim(task).await,
                Action::AskServed => {
                    self.name_if_unserved(task).await;
                    let now = link.now();
                    link.with_try(task.job, task.attempt, |remote| {
                        remote.handle_served_asked(now)
                    });
                }
            }
        }
    }

    /// Claims an abandoned try for the coordinator, so no worker runs it,
    /// and ends it; a worker that claimed it first is cut instead.
    async fn give_up(&self, task: Task) {
        let link = &self.link;
        match link
            .transport
            .runs
            .create(link.claim_key(task), COORDINATOR.into())
            .await
        {
            Ok(_) => {
                let failure = self.given_up(task);
                (link.warn)(Some(task.job), failure.clone());
                let outcome = Outcome::Fail(Failure::new(failure).with_kind(FailureKind::Lost));
                link.end(task.job, task.attempt, outcome);
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                link.with_try(task.job, task.attempt, RemoteTry::handle_give_up_refused);
            }
            // The server cannot say now: asked again in a moment.
            Err(error) => {
                tracing::warn!(%error, "cannot give up a try; trying again");
                tokio::time::sleep(RETRY_SERVER).await;
            }
        }
    }

    /// Why a try was given up: no worker of its label took it in time,
    /// and the last one lost with a try of it, if any.
    fn given_up(&self, task: Task) -> String {
        let label = &self.link.labels[task.job.index()];
        let mut why = format!(
            "given up before any worker with label {} took it \
             (the run was stopped, or the job is over its time limit)",
            label.as_deref().unwrap_or(wire::ANY_LABEL)
        );
        if let Some(lost) = lock(&self.link.lost).get(label) {
            let worker = lost.worker.as_deref().unwrap_or("?");
            let at = lost.last_heard.as_secs_f64();
            why.push_str(&format!(
                "; worker {worker}, which served it, went silent {at:.1}s into the run"
            ));
        }
        why
    }

    /// Cuts the claim on a try at `revision`: its worker performs no
    /// further phase. When the claim had not moved for an ack wait, its
    /// worker is declared lost, and the user told.
    async fn cut(&self, task: Task, revision: u64) {
        let link = &self.link;
        let runs = &link.transport.runs;
        let result = match runs
            .update(link.claim_key(task), CUT.into(), revision)
            .await
        {
            Ok(revision) => CutResult::Done(revision),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                CutResult::Moved
            }
            Err(error) => {
                tracing::warn!(%error, "cannot cut a claim");
                CutResult::Failed
            }
        };
        let now = link.now();
        let lost = link
            .with_try(task.job, task.attempt, |remote| {
                remote.handle_cut(result, now)
            })
            .flatten();
        if let Some(lost) = lost {
            let ack_wait = link.transport.settings.ack_wait;
            let worker = lost.worker.as_deref().unwrap_or("?");
            (link.warn)(
                Some(task.job),
                format!(
                    "worker {worker} went silent with try {}: no word since {:.1}s into the run, \
                     for {ack_wait:?}; the try is lost",
                    task.attempt,
                    lost.last_heard.as_secs_f64()
                ),
            );
            let label = link.labels[task.job.index()].clone();
            lock(&link.lost).insert(label, lost);
        }
    }

    /// Reads the claim on a try.
    async fn read_claim(&self, task: Task) {
        let link = &self.link;
        let seen = match link.transport.runs.entry(link.claim_key(task)).await {
            Ok(None) => ClaimSeen::Free,
            Ok(Some(entry)) if entry.operation != kv::Operation::Put => ClaimSeen::Free,
            Ok(Some(entry)) => claim_seen(&entry.value, entry.revision),
            Err(error) => {
                tracing::warn!(%error, "cannot read a claim; trying again");
                tokio::time::sleep(RETRY_SERVER).await;
                return;
            }
        };
        let now = link.now();
        link.with_try(task.job, task.attempt, |remote| {
            remote.handle_claim(seen, now)
        });
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
                format!(
                    "none is serving now, {queued} {} queued",
                    tries_word(queued)
                )
            }
            Some(Served::Yes) | None => return,
        };
        if !lock(&self.link.unserved).insert(label.clone()) {
            return;
        }
        let mut message = match &label {
            Some(label) => format!(
                "waiting for a worker with label {label}: {why}; start one with `--labels {label}`"
            ),
            None => format!("waiting for a worker: {why}; start one"),
        };
        if let Some(lost) = lock(&self.link.lost).get(&label) {
            let worker = lost.worker.as_deref().unwrap_or("?");
            message.push_str(&format!(
                " (worker {worker} went silent {:.1}s into the run)",
                lost.last_heard.as_secs_f64()
            ));
        }
        (self.link.warn)(Some(task.job), message);
    }

    /// Hands a try to [`send_tries`], which publishes it without waiting
    /// for the acknowledgements of the tries before it.
    fn send_try(&self, task: Task) {
        let link = &self.link;
        let request = TryRequest {
            run: link.run.clone(),
            job: self.plan.name(task.job).to_owned(),
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
        let outgoing = Outgoing {
            task,
            subject,
            payload: payload.into(),
            id,
        };
        // The sender ends only with the run, after its last phase.
        if let Err(mpsc::error::SendError(outgoing)) = self.outbox.send(outgoing) {
            let failure = fail("the run's sender of tries has ended".into());
            link.end(outgoing.task.job, outgoing.task.attempt, failure);
        }
    }

    /// A cleanup: a request to the worker that ran the job's run, who
    /// performs it.
    async fn cleanup(&self, task: Task) -> (Outcome, Performer) {
        let ran_on = lock(&self.link.ran_on).get(&task.job).cloned();
        let Some((worker, attempt)) = ran_on else {
            // The machine counts a run that a refused or lost try never
            // began (or never said it did): nobody cleans.
            return (Outcome::Pass, Performer::Nobody);
        };
        self.clean_on(task, worker, attempt).await
    }

    /// Asks `worker` to clean up after its run of try `attempt`. A worker
    /// gone from the server (nobody listens for its cleanups) performed
    /// nothing, and the record says so; one that does not answer in time
    /// may have cleaned up, so it keeps the worker's name.
    async fn clean_on(&self, task: Task, worker: String, attempt: u32) -> (Outcome, Performer) {
        let request = CleanupRequest {
            run: self.link.run.clone(),
            job_id: task.job.index() as u32,
            attempt,
        };
        let payload = serde_json::to_vec(&request).expect("serialisable");
        let subject = self.link.transport.names.cleanup_subject(&worker);
        let timeout = self.link.transport.settings.cleanup_timeout;
        let answer = self.link.client.request(subject, payload.into());
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(reply)) => match serde_json::from_slice::<WireOutcome>(&reply.payload) {
                Ok(outcome) => outcome.into(),
                Err(error) => fail(format!("worker {worker} answered nonsense: {error}")),
            },
            Ok(Err(error)) if error.kind() == RequestErrorKind::NoResponders => {
                let gone = fail(format!(
                    "worker {worker}, which ran the job, is gone: its cleanup was not performed"
                ));
                return (gone, Performer::Nobody);
            }
            Ok(Err(error)) => fail(format!("worker {worker} did not clean up: {error}")),
            Err(_) => fail(format!("worker {worker} did not answer within {timeout:?}")),
        };
        (outcome, Performer::Worker(worker))
    }
}

/// A try on its way to the work queue.
struct Outgoing {
    task: Task,
    subject: String,
    payload: bytes::Bytes,
    /// Its message id, so that a try published again is stored once.
    id: String,
}

/// Publishes the run's tries from one task, in the order they come, each
/// as soon as it comes: the server's acknowledgements are awaited
/// meanwhile, all at once. A try whose publish fails is published again
/// (with [`Transport::publish`]'s patience), and fails when the server
/// never took it.
async fn send_tries(link: Arc<Link>, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    let mut unconfirmed = FuturesUnordered::new();
    loop {
        tokio::select! {
            next = outgoing.recv() => {
                let Some(next) = next else { break };
                let message = PublishMessage::build()
                    .payload(next.payload.clone())
                    .message_id(&next.id);
                let ack = link.transport.js.send_publish(next.subject.clone(), message).await;
                unconfirmed.push(confirm(&link, next, ack));
            }
            Some(()) = unconfirmed.next(), if !unconfirmed.is_empty() => {}
        }
    }
    while unconfirmed.next().await.is_some() {}
}

/// Awaits the server's acknowledgement of a try published; publishes it
/// again if there is none, and ends the try if the server never takes it.
async fn confirm(link: &Link, sent: Outgoing, ack: Result<PublishAckFuture, PublishError>) {
    let confirmed = match ack {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    if confirmed {
        return;
    }
    let Outgoing {
        task,
        subject,
        payload,
        id,
    } = sent;
    if let Err(error) = link.transport.publish(subject, payload, &id).await {
        let failure = format!("cannot send the try to the work queue: {error}");
        link.end(task.job, task.attempt, fail(failure));
    }
}

/// How long to wait before asking the server again when it could not say.
const RETRY_SERVER: Duration = Duration::from_millis(200);

/// "try" or "tries", for `count`.
fn tries_word(count: u64) -> &'static str {
    if count == 1 { "try" } else { "tries" }
}

fn fail(message: String) -> Outcome {
    Outcome::Fail(Failure::new(message))
}
