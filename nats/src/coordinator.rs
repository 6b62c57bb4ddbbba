//! The coordinator: runs the machine as a local run does, and performs
//! each try by sending it to the work queue of its job's label instead of
//! calling the job. Workers report each phase back; the coordinator hands
//! the machine each report when the machine asks for that phase, so the
//! machine still makes every decision.
//!
//! A try is one message: the worker that takes it performs check → run →
//! recheck as the machine would hand them out (it knows the job's kind
//! and whether the run is no-act), so a try's local storage stays on one
//! host. The machine's stops and time limits reach a try only on this
//! side: a try no worker took yet is given up (claimed, so none will run
//! it); the phases of a try a worker took go on there, report when they
//! end (as a thread's phase does), and the reports the machine no longer
//! wants are dropped. A worker that dies holding an abandoned try, with
//! no other worker of its label to report it lost, is noticed when it
//! stops refreshing its claim for an ack wait.

use std::collections::{HashMap, VecDeque};

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{consumer, kv};
use dojobber::engine::{Defaults, JobGraph, JobId, Machine, MachineConfig, Step, StopReason, Task};
use dojobber::{
    CancelHandle, Failure, Job, JobKind, JobRef, Observer, Outcome, Phase, Report, dep,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, nats};
use crate::transport::{LEASE_KEY, Settings, Transport};
use crate::wire::{
    self, CleanupRequest, News, TryRequest, WireOutcome, WorkerReport, args_key, claim_key,
    plan_fingerprint, runs_on,
};
use crate::worker::COORDINATOR;

/// How often a waiting coordinator looks at its cancel handle.
const CANCEL_LOOK: Duration = Duration::from_millis(50);

/// A distributed run of a suite, configured like a
/// [`Runner`](dojobber::Runner).
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
pub struct Coordinator<A> {
    client: async_nats::Client,
    suite: String,
    root: JobRef<A>,
    args: A,
    defaults: Defaults,
    config: MachineConfig,
    group_limits: Vec<(String, usize)>,
    observers: Vec<Box<dyn Observer>>,
    settings: Settings,
    lease_wait: Duration,
    cancel: Option<CancelHandle>,
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
        Coordinator {
            client,
            suite: suite.to_owned(),
            root,
            args,
            defaults: Defaults::default(),
            config: MachineConfig {
                workers: 16,
                ..MachineConfig::default()
            },
            group_limits: Vec::new(),
            observers: Vec::new(),
            settings: Settings::default(),
            lease_wait: Duration::ZERO,
            cancel: None,
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

    /// Whether cleanups happen when the run ends.
    pub fn cleanup(mut self, cleanup: bool) -> Self {
        self.config.cleanup = cleanup;
        self
    }

    /// How many phases may be in flight at once, over all workers (the
    /// name a local run's setting has, `Runner::workers`).
    pub fn workers(mut self, in_flight: usize) -> Self {
        self.config.workers = in_flight.max(1);
        self
    }

    /// After the first job that failed for good, start no new try.
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.config.fail_fast = fail_fast;
        self
    }

    /// No new phase starts after `limit` from the run's start.
    pub fn deadline(mut self, limit: Duration) -> Self {
        self.config.deadline = Some(limit);
        self
    }

    /// At most `limit` jobs of `group` in a try at once.
    pub fn group_limit(mut self, group: impl Into<String>, limit: usize) -> Self {
        self.group_limits.push((group.into(), limit));
        self
    }

    /// Adds an observer of the run's events.
    pub fn observe(mut self, observer: impl Observer + 'static) -> Self {
        self.observers.push(Box::new(observer));
        self
    }

    /// The transport's timings (the same as the workers').
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Stops the run when `handle` is cancelled, from any thread: no new
    /// try starts, tries no worker took are given up, and tries under way
    /// on workers report when they end.
    pub fn cancel_handle(mut self, handle: CancelHandle) -> Self {
        self.cancel = Some(handle);
        self
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
        let names = wire::Names::new(&self.suite)?;
        if let Some((group, _)) = self.group_limits.iter().find(|(_, limit)| *limit == 0) {
            return Err(dojobber::SetupError::BadConfig(format!(
                "group_limit({group:?}, 0): a group needs room for at least one job"
            ))
            .into());
        }
        let graph = JobGraph::discover(JobRef::clone(&self.root), &self.args, self.defaults)?;
        let labels: Vec<Option<String>> =
            graph.plan().ids().map(|id| runs_on(&graph, id)).collect();
        for label in labels.iter().flatten() {
            wire::check_token("label", label)?;
        }
        let args = serde_json::to_vec(&self.args).map_err(|e| Error::Args(e.to_string()))?;
        let transport = Transport::open(self.client.clone(), names, self.settings).await?;
        let run = new_run_id();
        let lease = Lease::take(&transport, &run, self.lease_wait).await?;
        let result = async {
            transport
                .runs
                .put(args_key(&run), args.into())
                .await
                .map_err(nats("cannot store the run's arguments"))?;
            let reports = listen(&transport, &run).await?;
            let mut machine = Machine::new(graph.plan().clone(), self.config);
            for (group, limit) in &self.group_limits {
                machine.limit_group(group, *limit);
            }
            let mut drive = Drive {
                fingerprint: plan_fingerprint(&graph),
                labels,
                machine,
                observers: self.observers,
                transport: transport.clone(),
                client: self.client,
                run: run.clone(),
                clock: Instant::now(),
                remote: HashMap::new(),
                ran_on: HashMap::new(),
                silent: HashMap::new(),
                cancel: self.cancel,
                incoming: reports,
            };
            drive.drive().await?;
            Ok(drive.machine.report_card())
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
/// expire, refreshed while the run lasts.
struct Lease {
    store: kv::Store,
    refresher: tokio::task::JoinHandle<()>,
}

impl Lease {
    async fn take(transport: &Transport, run: &str, wait: Duration) -> Result<Lease, Error> {
        let store = transport.lease_bucket().await?;
        let give_up = Instant::now() + wait;
        loop {
            match store.create(LEASE_KEY, run.to_owned().into()).await {
                Ok(_) => break,
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                    if Instant::now() >= give_up {
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
        }
        let refresher = {
            let (store, run) = (store.clone(), run.to_owned());
            let every = transport.settings.lease_ttl / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(error) = store.put(LEASE_KEY, run.clone().into()).await {
                        tracing::warn!(%error, "cannot refresh the lease");
                    }
                }
            })
        };
        Ok(Lease { store, refresher })
    }

    async fn release(self) {
        self.refresher.abort();
        if let Err(error) = self.store.delete(LEASE_KEY).await {
            tracing::warn!(%error, "cannot release the lease; it expires by itself");
        }
    }
}

/// What comes back to the coordinator.
enum Incoming {
    Worker(WorkerReport),
    Cleanup(JobId, Outcome),
    /// A try the server did not take, and why.
    NotSent(Task, String),
}

/// Reads the run's reports (an ordered consumer, which survives
/// reconnections) into a channel.
async fn listen(transport: &Transport, run: &str) -> Result<Reports, Error> {
    let consumer = transport
        .reports
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: transport.names.report_subject(run),
            ..Default::default()
        })
        .await
        .map_err(nats("cannot read the run's reports"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(nats("cannot read the run's reports"))?;
    let (sender, receiver) = mpsc::unbounded_channel();
    let forward = sender.clone();
    let reader = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(%error, "reading reports");
                    continue;
                }
            };
            match serde_json::from_slice::<WorkerReport>(&message.payload) {
                Ok(report) => {
                    if forward.send(Incoming::Worker(report)).is_err() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "a report that cannot be read; ignored"),
            }
        }
    });
    Ok(Reports {
        sender,
        receiver,
        reader,
    })
}

/// What comes back, in one channel: the reports the reader forwards and
/// the cleanups' answers.
struct Reports {
    sender: mpsc::UnboundedSender<Incoming>,
    receiver: mpsc::UnboundedReceiver<Incoming>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Reports {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One try on the workers, as the coordinator follows it.
struct Remote {
    attempt: u32,
    /// The phase the machine handed out and waits for.
    wanted: Option<Phase>,
    /// Outcomes not yet asked for.
    pending: VecDeque<(Phase, Outcome)>,
    /// Refused, lost or given up: later reports are dropped.
    over: bool,
    /// Why the try ended early (refused, lost, never sent): the outcome of
    /// every phase the machine still asks for in this try.
    ended: Option<Outcome>,
}

/// An abandoned try being watched: the claim's revision when last seen
/// changing (a worker refreshes it while it lives); `None` when there was
/// no claim to read.
struct Silence {
    attempt: u32,
    revision: Option<u64>,
    since: Duration,
}

/// The run in progress.
struct Drive {
    fingerprint: String,
    labels: Vec<Option<String>>,
    machine: Machine,
    observers: Vec<Box<dyn Observer>>,
    transport: Transport,
    client: async_nats::Client,
    run: String,
    clock: Instant,
    remote: HashMap<JobId, Remote>,
    /// Per job whose run executed: the worker and the try, for its cleanup.
    ran_on: HashMap<JobId, (String, u32)>,
    /// Abandoned tries whose worker may be dead.
    silent: HashMap<JobId, Silence>,
    cancel: Option<CancelHandle>,
    incoming: Reports,
}

impl Drive {
    async fn drive(&mut self) -> Result<(), Error> {
        loop {
            let now = self.clock.elapsed();
            let cancelled = self.cancel.as_ref().map(CancelHandle::is_cancelled);
            if cancelled == Some(true) {
                self.machine.stop(StopReason::Cancelled);
            }
            let step = self.machine.poll(now);
            tracing::trace!(?step, "machine step");
            match step {
                Step::Perform(task) => self.perform(task),
                Step::Abandon(task) => self.abandon(task).await,
                Step::Wait(_) | Step::Idle => {
                    let machine_timer = match step {
                        Step::Wait(until) => Some(until),
                        _ => None,
                    };
                    // The cancel handle cannot wake a task: look at it often.
                    let cancel_look = (cancelled == Some(false)).then_some(now + CANCEL_LOOK);
                    let wake = [machine_timer, self.next_silence_check(), cancel_look]
                        .into_iter()
                        .flatten()
                        .min();
                    match wake {
                        Some(wake) => {
                            let sleep = tokio::time::sleep(wake.saturating_sub(now));
                            tokio::select! {
                                incoming = self.incoming.receiver.recv() => self.take(incoming)?,
                                () = sleep => {}
                            }
                        }
                        None => {
                            let incoming = self.incoming.receiver.recv().await;
                            self.take(incoming)?;
                        }
                    }
                    self.check_silence().await;
                }
                Step::Done => break,
            }
            self.publish_events();
        }
        self.publish_events();
        Ok(())
    }

    fn publish_events(&mut self) {
        while let Some(event) = self.machine.poll_event() {
            for observer in &mut self.observers {
                observer.on_event(&event, self.machine.plan());
            }
        }
    }

    fn perform(&mut self, task: Task) {
        if task.phase == Phase::Cleanup {
            return self.cleanup(task);
        }
        let first_phase = match self.machine.plan().kind(task.job) {
            JobKind::RunOnly => Phase::Run,
            _ => Phase::Check,
        };
        let new_try = task.phase == first_phase
            && self
                .remote
                .get(&task.job)
                .is_none_or(|remote| remote.attempt != task.attempt);
        if new_try {
            self.remote.insert(
                task.job,
                Remote {
                    attempt: task.attempt,
                    wanted: Some(task.phase),
                    pending: VecDeque::new(),
                    over: false,
                    ended: None,
                },
            );
            self.send_try(task);
        } else if let Some(remote) = self.remote.get_mut(&task.job) {
            remote.wanted = Some(task.phase);
            self.deliver(task.job);
        }
    }

    /// Publishes a try without waiting for the server's acknowledgement
    /// (so tries go out back to back); a try the server never took fails.
    fn send_try(&mut self, task: Task) {
        let request = TryRequest {
            run: self.run.clone(),
            job: self.machine.plan().name(task.job).to_owned(),
            job_id: task.job.index() as u32,
            attempt: task.attempt,
            no_act: self.machine.config().no_act,
            plan: self.fingerprint.clone(),
        };
        let payload = serde_json::to_vec(&request).expect("serialisable");
        let subject = self
            .transport
            .names
            .try_subject(self.labels[task.job.index()].as_deref());
        let id = format!("{}.try.{}.{}", self.run, request.job_id, request.attempt);
        let (transport, sender) = (self.transport.clone(), self.incoming.sender.clone());
        tokio::spawn(async move {
            if let Err(error) = transport.publish(subject, payload.into(), &id).await {
                let _ = sender.send(Incoming::NotSent(task, error));
            }
        });
    }

    /// A phase over its time limit or cut by a stop: a try no worker took
    /// yet is given up (claimed by the coordinator, so no worker will run
    /// it) and reported failed now; a try a worker took reports when it
    /// ends, as a thread's phase does, and is watched in case its worker
    /// died (see [`check_silence`](Self::check_silence)).
    async fn abandon(&mut self, task: Task) {
        if task.phase == Phase::Cleanup {
            return;
        }
        let live = self
            .remote
            .get(&task.job)
            .is_some_and(|remote| !remote.over && remote.attempt == task.attempt);
        if live {
            self.give_up_or_watch(task.job, task.attempt, None).await;
        }
    }

    /// Claims the try for the coordinator if no worker has, and fails it;
    /// else watches its claim. `last`: the claim as last seen.
    async fn give_up_or_watch(&mut self, job: JobId, attempt: u32, last: Option<Silence>) {
        let runs = &self.transport.runs;
        let claim = claim_key(&self.run, job.index() as u32, attempt);
        let entry = match runs.entry(claim.clone()).await {
            Ok(None) => match runs.create(&claim, COORDINATOR.into()).await {
                Ok(_) => {
                    let label = self.labels[job.index()].as_deref().unwrap_or("(any)");
                    let failure = format!("no worker with label {label} took the try");
                    tracing::warn!(job = self.machine.plan().name(job), "{failure}");
                    self.end(job, fail(failure));
                    return;
                }
                // A worker claimed it just now: read its claim next time.
                Err(_) => None,
            },
            Ok(Some(entry)) => Some(entry),
            // The server cannot tell now: look again later.
            Err(_) => None,
        };
        let since = self.clock.elapsed();
        let seen = entry.map(|entry| {
            (
                String::from_utf8_lossy(&entry.value).into_owned(),
                entry.revision,
            )
        });
        let watch = match (seen, last) {
            (Some((holder, _)), _) if holder == COORDINATOR => return,
            (Some((holder, revision)), Some(last)) if Some(revision) == last.revision => {
                let ack_wait = self.transport.settings.ack_wait;
                let failure = format!(
                    "worker {holder} went silent for {ack_wait:?} during this try, \
                     and no other worker of its label took it back"
                );
                tracing::warn!(job = self.machine.plan().name(job), "{failure}");
                self.end(job, fail(failure));
                return;
            }
            (Some((_, revision)), _) => Silence {
                attempt,
                revision: Some(revision),
                since,
            },
            (None, last) => Silence {
                attempt,
                revision: last.and_then(|last| last.revision),
                since,
            },
        };
        self.silent.insert(job, watch);
    }

    /// When the next watched try is due for a look.
    fn next_silence_check(&self) -> Option<Duration> {
        let ack_wait = self.transport.settings.ack_wait;
        self.silent
            .values()
            .map(|watch| watch.since + ack_wait)
            .min()
    }

    /// Looks again at the abandoned tries watched for an ack wait: a try
    /// whose worker stopped refreshing its claim fails (it died, and no
    /// other worker of the label took the try back to report it lost); a
    /// try still unclaimed is given up.
    async fn check_silence(&mut self) {
        let ack_wait = self.transport.settings.ack_wait;
        let now = self.clock.elapsed();
        let due: Vec<JobId> = self
            .silent
            .iter()
            .filter(|(_, watch)| watch.since + ack_wait <= now)
            .map(|(&job, _)| job)
            .collect();
        for job in due {
            let Some(watch) = self.silent.remove(&job) else {
                continue;
            };
            let live = self
                .remote
                .get(&job)
                .is_some_and(|remote| !remote.over && remote.attempt == watch.attempt);
            if live {
                self.give_up_or_watch(job, watch.attempt, Some(watch)).await;
            }
        }
    }

    fn cleanup(&mut self, task: Task) {
        let Some((worker, attempt)) = self.ran_on.get(&task.job).cloned() else {
            // The machine counts a run that a refused or lost try never
            // began: nothing ran, nothing to clean.
            self.report(task, Outcome::Pass);
            return;
        };
        let request = CleanupRequest {
            run: self.run.clone(),
            job_id: task.job.index() as u32,
            attempt,
        };
        let payload = serde_json::to_vec(&request).expect("serialisable");
        let subject = self.transport.names.cleanup_subject(&worker);
        let (client, sender) = (self.client.clone(), self.incoming.sender.clone());
        let timeout = self.transport.settings.cleanup_timeout;
        tokio::spawn(async move {
            let answer = tokio::time::timeout(timeout, client.request(subject, payload.into()));
            let outcome = match answer.await {
                Ok(Ok(reply)) => match serde_json::from_slice::<WireOutcome>(&reply.payload) {
                    Ok(outcome) => outcome.into(),
                    Err(error) => fail(format!("worker {worker} answered nonsense: {error}")),
                },
                Ok(Err(error)) => fail(format!("worker {worker} did not clean up: {error}")),
                Err(_) => fail(format!("worker {worker} did not answer within {timeout:?}")),
            };
            let _ = sender.send(Incoming::Cleanup(task.job, outcome));
        });
    }

    /// Takes what came back; fails when nothing can come back any more.
    fn take(&mut self, incoming: Option<Incoming>) -> Result<(), Error> {
        match incoming {
            None => Err(Error::Nats {
                context: "reading the run's reports",
                error: "the subscription ended".into(),
            }),
            Some(Incoming::Cleanup(job, outcome)) => {
                let attempt = self.ran_on.get(&job).map_or(0, |(_, attempt)| *attempt);
                let task = Task {
                    job,
                    phase: Phase::Cleanup,
                    attempt,
                };
                self.report(task, outcome);
                Ok(())
            }
            Some(Incoming::NotSent(task, error)) => {
                let live = self
                    .remote
                    .get(&task.job)
                    .is_some_and(|remote| remote.attempt == task.attempt);
                if live {
                    let failure = format!("cannot send the try to the work queue: {error}");
                    self.end(task.job, fail(failure));
                }
                Ok(())
            }
            Some(Incoming::Worker(report)) => {
                self.take_report(report);
                Ok(())
            }
        }
    }

    fn take_report(&mut self, report: WorkerReport) {
        if report.run != self.run || report.job_id as usize >= self.machine.plan().len() {
            return;
        }
        let job = JobId::from_index(report.job_id as usize);
        let Some(remote) = self.remote.get(&job) else {
            return;
        };
        if remote.over || remote.attempt != report.attempt {
            return;
        }
        match report.news {
            News::Phase { phase, outcome, .. } => {
                // Its worker is alive, and an abandoned phase is now reported.
                self.silent.remove(&job);
                if phase == Phase::Run {
                    self.ran_on
                        .insert(job, (report.worker.clone(), report.attempt));
                }
                if let Some(remote) = self.remote.get_mut(&job) {
                    remote.pending.push_back((phase, outcome.into()));
                }
                self.deliver(job);
            }
            News::Refused { reason } => self.end(job, fail(reason)),
            News::Lost { holder } => {
                let ack_wait = self.transport.settings.ack_wait;
                let failure = format!(
                    "worker {holder} took this try and went silent for {ack_wait:?}: \
                     lost (JetStream handed it to worker {}, which gave it back)",
                    report.worker
                );
                self.end(job, fail(failure));
            }
        }
    }

    /// Ends a remote try early: every phase the machine still asks for
    /// in it fails with `outcome`; later reports of it are dropped.
    fn end(&mut self, job: JobId, outcome: Outcome) {
        if let Some(remote) = self.remote.get_mut(&job) {
            remote.over = true;
            remote.ended = Some(outcome);
        }
        self.deliver(job);
    }

    /// Reports the outcome of the phase the machine waits for, if it came.
    fn deliver(&mut self, job: JobId) {
        let Some(remote) = self.remote.get_mut(&job) else {
            return;
        };
        let Some(wanted) = remote.wanted else { return };
        // Outcomes of phases the machine will not ask for (a stop cut the
        // try) are dropped.
        while remote
            .pending
            .front()
            .is_some_and(|(phase, _)| *phase < wanted)
        {
            remote.pending.pop_front();
        }
        let outcome = match remote.pending.front() {
            Some((phase, _)) if *phase == wanted => remote.pending.pop_front().map(|(_, o)| o),
            _ => remote.ended.clone(),
        };
        let Some(outcome) = outcome else { return };
        remote.wanted = None;
        let task = Task {
            job,
            phase: wanted,
            attempt: remote.attempt,
        };
        self.report(task, outcome);
    }

    fn report(&mut self, task: Task, outcome: Outcome) {
        let now = self.clock.elapsed();
        if let Err(error) = self.machine.handle_outcome(task, outcome, now) {
            tracing::error!(%error, "a report the machine did not ask for; ignored");
        }
    }
}

fn fail(message: String) -> Outcome {
    Outcome::Fail(Failure::new(message))
}
