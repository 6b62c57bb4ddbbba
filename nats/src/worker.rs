//! A worker: the suite's own program in worker mode. It serves the tries
//! of its labels (and of jobs with no label), up to `slots` tries per
//! label at a time, with the job values of its own graph, rebuilt from
//! the root and the run's arguments. It runs only job types compiled into it: a try
//! names a job, never code.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::StatusCode;
use async_nats::jetstream::consumer::pull::BatchConfig;
use async_nats::jetstream::{self, AckKind, kv};
use dojobber::engine::{Defaults, JobGraph, JobId, first_phase, next_phase};
use dojobber::{Context, GlobalStorage, JobRef, LocalStorage, Outcome, Phase};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AbortOnDrop;
use crate::error::{Error, nats};
use crate::shared::SharedStorage;
use crate::transport::{LEASE_KEY, Presence, Settings, Transport};
use crate::wire::{
    self, CleanupRequest, News, TryRequest, WireOutcome, WorkerReport, args_key, check_token,
    claim_key, plan_fingerprint,
};

/// Builds the root job from the run's arguments.
pub type RootFn<A> = Arc<dyn Fn(&A) -> JobRef<A> + Send + Sync>;

/// Sets in the run's arguments what this host has of its own.
type HostArgsFn<A> = Arc<dyn Fn(&mut A) + Send + Sync>;

/// A worker of a suite, ready to serve.
///
/// ```no_run
/// use dojobber::{dep, Job};
/// use dojobber_nats::Worker;
///
/// struct Table;
/// impl Job<String> for Table {}
///
/// # async fn serve() -> Result<(), dojobber_nats::Error> {
/// let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
/// Worker::new(client, "provision", "db-host-1", |_: &String| dep(Table))?
///     .labels(["db"])?
///     .serve()
///     .await
/// # }
/// ```
pub struct Worker<A> {
    client: async_nats::Client,
    suite: String,
    name: String,
    labels: Vec<String>,
    root: RootFn<A>,
    host_args: Option<HostArgsFn<A>>,
    settings: Settings,
    slots: usize,
    /// Whether it says on stderr when it is ready (and each try, with `each_try`).
    announce: Option<Announce>,
}

/// What a worker says on stderr.
#[derive(Clone, Copy, Debug)]
struct Announce {
    each_try: bool,
}

/// What a worker keeps of one run: its graph and storages.
struct RunState<A> {
    graph: JobGraph<A>,
    args: A,
    fingerprint: String,
    /// Global storage, shared by the tries this worker performs in the run.
    global: GlobalStorage,
    /// Per job whose run executed here: the try and its local storage,
    /// for the cleanup.
    kept: Mutex<HashMap<u32, (u32, LocalStorage)>>,
}

struct Shared<A> {
    transport: Transport,
    /// The coordinator's lease: a try runs only while its run holds it.
    /// Made by the first coordinator (its TTL is theirs), found on first use.
    lease: tokio::sync::OnceCell<(kv::Store, Duration)>,
    /// The last run seen holding the lease, and when it was read.
    lease_seen: Mutex<Option<(String, Instant)>>,
    name: String,
    root: RootFn<A>,
    host_args: Option<HostArgsFn<A>>,
    /// Says a line on stderr per try.
    each_try: bool,
    /// The latest run's id, and its state or why its arguments cannot be
    /// used (a Vec: empty before the first).
    runs: Mutex<Vec<KnownRun<A>>>,
}

/// A run id, and its state or why the run's arguments cannot be used.
type KnownRun<A> = (String, Result<Arc<RunState<A>>, String>);

impl<A> Worker<A>
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    /// A worker named `name` (unique among the suite's workers) for suite
    /// `suite`, building the graph with `root`. It serves jobs with no
    /// label; add its labels with [`labels`](Self::labels).
    pub fn new(
        client: async_nats::Client,
        suite: &str,
        name: &str,
        root: impl Fn(&A) -> JobRef<A> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        wire::Names::new(suite)?;
        check_token("worker", name)?;
        Ok(Worker {
            client,
            suite: suite.to_owned(),
            name: name.to_owned(),
            labels: Vec::new(),
            root: Arc::new(root),
            host_args: None,
            settings: Settings::default(),
            slots: 1,
            announce: None,
        })
    }

    /// The labels this worker carries: it serves jobs whose
    /// [`runs_on`](dojobber::Job::runs_on) names one of them.
    pub fn labels<S: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = S>,
    ) -> Result<Self, Error> {
        for label in labels {
            let label = label.into();
            check_token("label", &label)?;
            self.labels.push(label);
        }
        Ok(self)
    }

    /// How many tries of each label it performs at once (at least 1, the
    /// default), each phase on a thread of its own while it runs (the
    /// runtime's other tasks move off it meanwhile).
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// The transport's timings (the same as the coordinator's).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets in each run's arguments, before the graph is built, what only
    /// this host knows (its own paths, say): the coordinator sends the
    /// same arguments to every worker. The graph must come out the same
    /// as the coordinator's, or the worker refuses the run's tries.
    ///
    /// ```no_run
    /// # use dojobber::{dep, Job};
    /// # use dojobber_nats::Worker;
    /// #[derive(serde::Deserialize)]
    /// struct Args { #[serde(skip)] root_dir: std::path::PathBuf }
    /// struct Table;
    /// impl Job<Args> for Table {}
    ///
    /// # async fn serve(client: async_nats::Client) -> Result<(), dojobber_nats::Error> {
    /// Worker::new(client, "provision", "db-host-1", |_: &Args| dep(Table))?
    ///     .host_args(|args: &mut Args| args.root_dir = "/srv/db".into())
    ///     .serve()
    ///     .await
    /// # }
    /// ```
    pub fn host_args(mut self, set: impl Fn(&mut A) + Send + Sync + 'static) -> Self {
        self.host_args = Some(Arc::new(set));
        self
    }

    /// Says on stderr when it is ready (its name, labels, suite and
    /// server) and, with `each_try`, a line per try it performs: a worker
    /// program's own output, whatever its logging setup.
    ///
    /// ```no_run
    /// # use dojobber::{dep, Job};
    /// # use dojobber_nats::Worker;
    /// # struct Table;
    /// # impl Job<String> for Table {}
    /// # async fn serve(client: async_nats::Client) -> Result<(), dojobber_nats::Error> {
    /// Worker::new(client, "provision", "db-host-1", |_: &String| dep(Table))?
    ///     .announce(true)
    ///     .serve()
    ///     .await
    /// # }
    /// ```
    pub fn announce(mut self, each_try: bool) -> Self {
        self.announce = Some(Announce { each_try });
        self
    }

    /// Serves tries and cleanups until the connection fails for good.
    /// Refuses to start ([`Error::NameInUse`]) while a live worker of the
    /// suite has its name: each holds a presence key, which expires a
    /// lease TTL after its worker's end.
    pub async fn serve(self) -> Result<(), Error> {
        self.serve_until(std::future::pending()).await
    }

    /// Like [`serve`](Self::serve), until `stop` is ready (a signal, say):
    /// then it leaves, its name free at once for the next worker that
    /// takes it. Tries it holds come back to the queue after an ack wait.
    ///
    /// ```no_run
    /// # use dojobber::{dep, Job};
    /// # use dojobber_nats::Worker;
    /// # struct Table;
    /// # impl Job<String> for Table {}
    /// # async fn serve(client: async_nats::Client) -> Result<(), dojobber_nats::Error> {
    /// let stop = async { tokio::time::sleep(std::time::Duration::from_secs(60)).await };
    /// Worker::new(client, "provision", "db-host-1", |_: &String| dep(Table))?
    ///     .serve_until(stop)
    ///     .await
    /// # }
    /// ```
    pub async fn serve_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        let names = wire::Names::new(&self.suite)?;
        let transport = Transport::open(self.client.clone(), names, self.settings).await?;
        let presence = Presence {
            labels: self.labels.clone(),
            instance: format!(
                "{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
            ),
        };
        let instance = presence.instance.clone();
        let presence_task = hold_name(&transport, &self.name, presence).await?;
        let shared = Arc::new(Shared {
            transport,
            lease: tokio::sync::OnceCell::new(),
            lease_seen: Mutex::new(None),
            name: self.name.clone(),
            root: self.root,
            host_args: self.host_args,
            each_try: self.announce.is_some_and(|announce| announce.each_try),
            runs: Mutex::new(Vec::new()),
        });
        let cleanups = self
            .client
            .subscribe(shared.transport.names.cleanup_subject(&self.name))
            .await
            .map_err(nats("cannot listen for cleanups"))?;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(serve_cleanups(
            Arc::clone(&shared),
            self.client.clone(),
            cleanups,
        ));
        let labels = self.labels.iter().map(|l| Some(l.clone())).chain([None]);
        for label in labels {
            let consumer = shared.transport.consumer(label.as_deref()).await?;
            for _ in 0..self.slots {
                tasks.spawn(serve_label(Arc::clone(&shared), consumer.clone()));
            }
        }
        tasks.spawn(presence_task);
        tracing::info!(worker = %self.name, labels = ?self.labels, "worker serving");
        if self.announce.is_some() {
            let info = self.client.server_info();
            let labels = match self.labels.is_empty() {
                true => "no label: only jobs with none".to_owned(),
                false => format!("labels {} and jobs with none", self.labels.join(", ")),
            };
            dojobber_cli::say!(
                "worker {} ready: suite {} on {}:{}, {labels}, {} at a time each",
                self.name,
                self.suite,
                info.host,
                info.port,
                self.slots
            );
        }
        let served = async {
            while let Some(ended) = tasks.join_next().await {
                if let Ok(Err(error)) = ended {
                    return Err(error);
                }
            }
            Ok(())
        };
        let served = tokio::select! {
            served = served => served,
            () = stop => Ok(()),
        };
        tasks.abort_all();
        leave_name(&shared.transport, &self.name, &instance).await;
        served
    }
}

/// Deletes this worker's presence key, if it is still this process's.
async fn leave_name(transport: &Transport, name: &str, instance: &str) {
    let Ok(bucket) = transport.presence_bucket().await else {
        return;
    };
    let Ok(Some(entry)) = bucket.entry(name).await else {
        return;
    };
    let ours = serde_json::from_slice::<Presence>(&entry.value)
        .is_ok_and(|present| present.instance == instance);
    if ours {
        let _ = bucket
            .delete_expect_revision(name, Some(entry.revision))
            .await;
    }
}

/// Takes the worker's name in the suite's presence bucket, refused while
/// a live worker holds it; returns the task that keeps it (a refresh every
/// third of the key's lifetime) for as long as the worker serves.
async fn hold_name(
    transport: &Transport,
    name: &str,
    presence: Presence,
) -> Result<impl std::future::Future<Output = Result<(), Error>> + use<>, Error> {
    let bucket = transport.presence_bucket().await?;
    let value: bytes::Bytes = serde_json::to_vec(&presence).expect("serialisable").into();
    let in_use = || Error::NameInUse {
        suite: transport.names.suite().to_owned(),
        name: name.to_owned(),
        expires: transport.settings.lease_ttl,
    };
    let mut revision = match bucket.create(name, value.clone()).await {
        Ok(revision) => revision,
        Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => return Err(in_use()),
        Err(error) => return Err(nats("cannot register the worker's name")(error)),
    };
    let every = transport.settings.lease_ttl / 3;
    let name = name.to_owned();
    Ok(async move {
        loop {
            tokio::time::sleep(every).await;
            match bucket.update(&name, value.clone(), revision).await {
                Ok(new) => revision = new,
                // Expired while the server was away: taken again if free.
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    match bucket.create(&name, value.clone()).await {
                        Ok(new) => revision = new,
                        Err(error) => tracing::warn!(%error, "cannot take the worker's name again"),
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot refresh the worker's presence"),
            }
        }
    })
}

/// How long a pull request waits at the server for a try.
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// Takes one try of a label at a time, for ever (one slot). The slot has
/// one inbox for ever, and asks for the next try (a pull request for one
/// message) only when it is free, so no try waits on a busy worker while
/// another is free, and a try costs no subscription of its own (as a
/// `fetch` would). A try frees its slot when its last phase ends, before
/// its last report: the next try is asked for while that report travels,
/// and the try ends (report, ack) in a task of its own.
async fn serve_label<A>(
    shared: Arc<Shared<A>>,
    consumer: jetstream::consumer::PullConsumer,
) -> Result<(), Error>
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    let client = shared.transport.js.client();
    let inbox = client.new_inbox();
    let mut deliveries = client
        .subscribe(inbox.clone())
        .await
        .map_err(nats("cannot listen for tries"))?;
    // Whether a pull request is waiting at the server for its answer.
    let mut asked = false;
    let slot = Arc::new(Semaphore::new(1));
    // The tries taken, ended when this slot is (aborted with it).
    let mut tries = tokio::task::JoinSet::new();
    // How long a pull request may go unanswered: reset with each request.
    let unanswered = tokio::time::sleep(PULL_EXPIRES * 2);
    tokio::pin!(unanswered);
    loop {
        while tries.try_join_next().is_some() {}
        let free = Arc::clone(&slot)
            .acquire_owned()
            .await
            .expect("the slot is never closed");
        if !asked {
            let request = BatchConfig {
                batch: 1,
                expires: Some(PULL_EXPIRES),
                ..Default::default()
            };
            if let Err(error) = consumer.request_batch(request, inbox.clone().into()).await {
                // The server is away: the client reconnects by itself.
                tracing::warn!(%error, "cannot ask for tries; asking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            asked = true;
            let deadline = tokio::time::Instant::now() + PULL_EXPIRES * 2;
            unanswered.as_mut().reset(deadline);
        }
        // The server answers every request, with a try or a word that it
        // expired; one it lost (it restarted) is asked again.
        let answer = tokio::select! {
            answer = deliveries.next() => Ok(answer),
            () = &mut unanswered => Err(()),
        };
        match answer {
            Ok(Some(message)) => match message.status {
                None | Some(StatusCode::OK) => {
                    asked = false;
                    let message = jetstream::Message {
                        message,
                        context: shared.transport.js.clone(),
                    };
                    tries.spawn(take_try(Arc::clone(&shared), message, free));
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // Expired, or ended by the server.
                Some(_) => asked = false,
            },
            Ok(None) => {
                return Err(Error::Nats {
                    context: "listening for tries",
                    error: "the subscription ended".into(),
                });
            }
            Err(_) => asked = false,
        }
    }
}

/// Claims a try when it must, performs it, reports each phase, acks.
///
/// The round-trips of a try, and why each is needed:
/// - the pull request and the delivery: JetStream hands each try to one
///   worker, and hands it again when that worker goes silent;
/// - the claim (a `create` in the runs bucket), only before the try's
///   first phase that may change something (its run; at the same time as
///   the failed check's report), or before anything when JetStream hands
///   the try again, or at the first keep-alive of a try still unclaimed
///   (a check longer than a third of the ack wait, so that a worker that
///   dies in it is seen): the first claim wins, so a try is
///   never run twice (the second worker reports it lost) nor after the
///   coordinator gave it up. A check whose outcome makes the try end (it
///   passed, or no-act) changes nothing, so that try is never claimed; if
///   the coordinator gives it up meanwhile (its time limit, a stop), the
///   report is dropped, and the check may still be running while the
///   job's next try starts elsewhere;
/// - once claimed, the claim renewed (a compare-and-set) before each
///   further phase, while the last phase's report travels: a try the
///   coordinator cut (a stop, a time limit) goes no further;
/// - the lease, read at most every half of its TTL: tries of a run whose
///   coordinator is gone are not run;
/// - one report per phase, each stored (and acknowledged) before the next
///   phase, so the coordinator reads them in order, and the last one
///   before the ack: a try acked has been reported;
/// - the ack, which takes the try off the work queue.
async fn take_try<A>(
    shared: Arc<Shared<A>>,
    message: jetstream::Message,
    slot: OwnedSemaphorePermit,
) where
    A: DeserializeOwned + Send + Sync + 'static,
{
    let request: TryRequest = match serde_json::from_slice(&message.payload) {
        Ok(request) => request,
        Err(error) => {
            tracing::error!(%error, "a try that is not a TryRequest; dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    match shared.holds_lease(&request.run).await {
        Ok(true) => {}
        Ok(false) => {
            // Its coordinator is gone (or done): the next run must not
            // find this try running beside its own. Said on the run's
            // subject, in case its coordinator lives but lost the lease.
            let reason = format!(
                "run {} no longer holds the suite's lease: its tries are not run",
                request.run
            );
            if shared.report(&request, News::Refused { reason }).await {
                let _ = message.ack().await;
            }
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the lease");
            return;
        }
    }
    let claim = Arc::new(Claim::new(&request));
    // Handed again: it may have run on the worker that went silent.
    let redelivered = message.info().map_or(true, |info| info.delivered > 1);
    if redelivered && let Claimed::NotOurs { ack } = shared.claim(&request, &claim).await {
        if ack {
            let _ = message.ack().await;
        }
        return;
    }
    let request = Arc::new(request);
    // A task of its own: a phase performed on this task's thread
    // ([`perform_here`]) holds this task for as long as it lasts.
    let _keep_alive = AbortOnDrop(tokio::spawn(keep_alive(
        Arc::clone(&shared),
        message.clone(),
        Arc::clone(&request),
        Arc::clone(&claim),
    )));
    if perform_try(&shared, &request, &claim, slot).await {
        let _ = message.ack().await;
    }
}

/// Tells JetStream (ack) and the coordinator (a new revision of the claim)
/// that this worker is alive while it holds a try, every third of the ack
/// wait. A try still unclaimed then (a long check) is claimed, once: the
/// coordinator watches a claim, so a worker that dies in any phase is
/// seen, while a try whose check passes quickly is never claimed. Never
/// ends: aborted when the try ends.
async fn keep_alive<A>(
    shared: Arc<Shared<A>>,
    message: jetstream::Message,
    request: Arc<TryRequest>,
    claim: Arc<Claim>,
) where
    A: DeserializeOwned + Send + Sync + 'static,
{
    let every = shared.transport.settings.ack_wait / 3;
    let mut asked = false;
    loop {
        tokio::time::sleep(every).await;
        let _ = message.ack_with(AckKind::Progress).await;
        if claim.is_ours() {
            claim.refresh(&shared.transport.runs, &shared.name).await;
        } else if !asked {
            // Not ours: the try's next phase, if any, says so again.
            asked = true;
            let _ = shared.claim(&request, &claim).await;
        }
    }
}

/// A try's claim in the runs bucket, and whether this worker holds it.
/// Once it does, every write is a compare-and-set on the revision it last
/// wrote, so one fails once the coordinator cut the try.
struct Claim {
    key: String,
    ours: AtomicBool,
    /// The revision this worker last wrote; `None` before it claims the
    /// try, and once the try is cut.
    revision: tokio::sync::Mutex<Option<u64>>,
}

impl Claim {
    fn new(request: &TryRequest) -> Claim {
        Claim {
            key: claim_key(&request.run, request.job_id, request.attempt),
            ours: AtomicBool::new(false),
            revision: tokio::sync::Mutex::new(None),
        }
    }

    fn is_ours(&self) -> bool {
        self.ours.load(Ordering::Relaxed)
    }

    /// Before a further phase of a try this worker claimed: renews the
    /// claim; `Err` (why) when the try must go no further.
    async fn renew(&self, runs: &kv::Store, name: &str) -> Result<(), String> {
        let mut revision = self.revision.lock().await;
        let Some(last) = *revision else {
            return Err("the coordinator cut the try".into());
        };
        let mut tries = 0;
        loop {
            match runs.update(&self.key, name.to_owned().into(), last).await {
                Ok(new) => {
                    *revision = Some(new);
                    return Ok(());
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    *revision = None;
                    return Err("the coordinator cut the try".into());
                }
                Err(error) if tries < 3 => {
                    tracing::warn!(%error, "cannot renew a claim; trying again");
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => return Err(format!("cannot renew its claim: {error}")),
            }
        }
    }

    /// While a phase goes on: a new revision of the claim (cut or not),
    /// so the coordinator sees this worker alive.
    async fn refresh(&self, runs: &kv::Store, name: &str) {
        let mut revision = self.revision.lock().await;
        match *revision {
            Some(last) => match runs.update(&self.key, name.to_owned().into(), last).await {
                Ok(new) => *revision = Some(new),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    *revision = None;
                }
                Err(_) => {}
            },
            None => {
                if let Ok(Some(entry)) = runs.entry(&self.key).await {
                    let _ = runs.update(&self.key, entry.value, entry.revision).await;
                }
            }
        }
    }
}

/// What came of claiming a try.
enum Claimed {
    Ours,
    /// Another worker or the coordinator holds it, or the server could not
    /// say; `ack`: whether the try may leave the queue.
    NotOurs {
        ack: bool,
    },
}

/// The claim value of a try the coordinator gave up.
pub(crate) const COORDINATOR: &str = "coordinator";

/// The claim value of a try the coordinator cut: its worker performs no
/// further phase. Not a worker name (those are tokens).
pub(crate) const CUT: &str = "cut:coordinator";

/// Performs the phases of a try, claiming it before its run, and reports
/// each; tells whether the try may leave the queue (every report reached
/// the server, or another holds the claim). Frees `slot` once its last
/// phase has ended.
async fn perform_try<A>(
    shared: &Arc<Shared<A>>,
    request: &TryRequest,
    claim: &Claim,
    slot: OwnedSemaphorePermit,
) -> bool
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    let state = match shared.run_state(&request.run).await {
        Ok(state) => state,
        Err(reason) => return shared.report(request, News::Refused { reason }).await,
    };
    let Some(id) = state.graph.plan().find(&request.job) else {
        let reason = format!(
            "worker {} has no job named {:?}: it was built from another version of the suite",
            shared.name, request.job
        );
        return shared.report(request, News::Refused { reason }).await;
    };
    if id.index() as u32 != request.job_id || state.fingerprint != request.plan {
        let reason = format!(
            "worker {}'s graph differs from the coordinator's (plan {} here, {} there): \
             it was built from another version of the suite",
            shared.name,
            short(&state.fingerprint),
            short(&request.plan)
        );
        return shared.report(request, News::Refused { reason }).await;
    }
    let kind = state.graph.plan().kind(id);
    let Some(mut phase) = first_phase(kind, request.no_act) else {
        // The machine decides such a try itself and sends none.
        let reason = format!(
            "worker {}: job {:?} has no phase to perform",
            shared.name, request.job
        );
        return shared.report(request, News::Refused { reason }).await;
    };
    let mut local = LocalStorage::default();
    // The phases performed and how they went, for the line per try.
    let mut performed = Vec::new();
    loop {
        if phase != Phase::Check && !claim.is_ours() {
            match shared.claim(request, claim).await {
                Claimed::Ours => {}
                Claimed::NotOurs { ack } => return ack,
            }
        }
        let started = Instant::now();
        let (outcome, back) = perform_here(&state, id, phase, request.attempt, local).await;
        local = back;
        let elapsed = started.elapsed();
        let next = next_phase(kind, phase, outcome.is_pass(), request.no_act);
        let word = if outcome.is_pass() { "pass" } else { "fail" };
        performed.push(format!("{phase} {word}"));
        let news = News::Phase {
            phase,
            outcome: WireOutcome::from(outcome),
            elapsed,
        };
        let Some(next) = next else {
            drop(slot);
            // Its run executed: its cleanup gets this try's storage,
            // kept before the last report, after which it may come.
            if phase != Phase::Check {
                let mut kept = state.kept.lock().unwrap_or_else(PoisonError::into_inner);
                kept.insert(request.job_id, (request.attempt, local));
            }
            if shared.each_try {
                let job = dojobber::text::escaped(&request.job);
                let attempt = request.attempt;
                dojobber_cli::say!("{job} try {attempt}: {}", performed.join(", "));
            }
            return shared.report(request, news).await;
        };
        // Before a run, its claim and the check's report go out together.
        let reported = if next == Phase::Run && !claim.is_ours() {
            let (reported, claimed) =
                tokio::join!(shared.report(request, news), shared.claim(request, claim));
            if let Claimed::NotOurs { ack } = claimed {
                return reported && ack;
            }
            reported
        } else {
            // The machine may have stopped the try meanwhile: the claim is
            // renewed while the report travels.
            let renew = async {
                match claim.is_ours() {
                    true => claim.renew(&shared.transport.runs, &shared.name).await,
                    false => Ok(()),
                }
            };
            let (reported, renewed) = tokio::join!(shared.report(request, news), renew);
            if !reported {
                return false;
            }
            if let Err(why) = renewed {
                let reason = format!("worker {} did not start its {next}: {why}", shared.name);
                return shared.report(request, News::Stopped { reason }).await;
            }
            true
        };
        if !reported {
            return false;
        }
        phase = next;
    }
}

/// Performs one phase of a try on this task's thread, the runtime's other
/// tasks (the try's keep-alive among them) moved to another thread while
/// it runs (`block_in_place`): a quick phase (most checks) costs no
/// hand-off to a blocking thread and back, and a slow one holds no thread
/// the runtime needs. On a current-thread runtime, which cannot move its
/// tasks, on tokio's blocking pool.
async fn perform_here<A: Send + Sync + 'static>(
    state: &Arc<RunState<A>>,
    id: JobId,
    phase: Phase,
    attempt: u32,
    local: LocalStorage,
) -> (Outcome, LocalStorage) {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(|| perform(state, id, phase, attempt, local));
    }
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || perform(&state, id, phase, attempt, local))
        .await
        .expect("perform catches the job's panics")
}

/// Calls one phase of a job; a panic becomes its failure.
fn perform<A: 'static>(
    state: &RunState<A>,
    id: JobId,
    phase: Phase,
    attempt: u32,
    mut local: LocalStorage,
) -> (Outcome, LocalStorage) {
    let job = state.graph.job(id);
    let mut cx = Context::new(&state.args, &mut local, &state.global, phase, attempt);
    let outcome = Outcome::from_call(catch_unwind(AssertUnwindSafe(|| match phase {
        Phase::Check | Phase::Recheck => job.check(&mut cx),
        Phase::Run => job.run(&mut cx),
        Phase::Cleanup => job.cleanup(&mut cx),
    })));
    (outcome, local)
}

/// Answers cleanup requests for jobs this worker ran, each in a task of
/// its own: the coordinator's machine decides how many run at once, as it
/// does for tries.
async fn serve_cleanups<A>(
    shared: Arc<Shared<A>>,
    client: async_nats::Client,
    mut requests: async_nats::Subscriber,
) -> Result<(), Error>
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    while let Some(message) = requests.next().await {
        let Some(reply) = message.reply else { continue };
        let (shared, client) = (Arc::clone(&shared), client.clone());
        tokio::spawn(async move {
            let outcome = match serde_json::from_slice::<CleanupRequest>(&message.payload) {
                Ok(request) => shared.cleanup(request).await,
                Err(error) => Outcome::Fail(dojobber::Failure::new(format!(
                    "a cleanup request that cannot be read: {error}"
                ))),
            };
            let answer = serde_json::to_vec(&WireOutcome::from(outcome)).expect("serialisable");
            if let Err(error) = client.publish(reply, answer.into()).await {
                tracing::warn!(%error, "cannot answer a cleanup");
            }
        });
    }
    Ok(())
}

impl<A> Shared<A>
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    /// Publishes a report on the run's subject, trying again while the
    /// server is away, up to the publish patience. Tells whether it got
    /// through.
    async fn report(&self, request: &TryRequest, news: News) -> bool {
        let report = WorkerReport {
            run: request.run.clone(),
            job_id: request.job_id,
            attempt: request.attempt,
            worker: self.name.clone(),
            news,
        };
        let payload: bytes::Bytes = serde_json::to_vec(&report).expect("serialisable").into();
        let subject = self.transport.names.report_subject(&request.run);
        match self
            .transport
            .publish(subject, payload, &report.message_id())
            .await
        {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, "cannot publish a report; the try will come back");
                false
            }
        }
    }

    /// Claims a try for this worker (the first `create` of its key wins).
    /// When another holds it, says so: a worker's claim means this copy
    /// was handed again after that worker went silent (lost); the
    /// coordinator's means it gave the try up (nothing to say).
    async fn claim(&self, request: &TryRequest, claim: &Claim) -> Claimed {
        let runs = &self.transport.runs;
        // Held across the `create`: the keep-alive and the try's next
        // phase may claim at once; the second finds the claim ours.
        let mut revision = claim.revision.lock().await;
        if claim.is_ours() {
            return Claimed::Ours;
        }
        match runs.create(&claim.key, self.name.clone().into()).await {
            Ok(new) => {
                *revision = Some(new);
                claim.ours.store(true, Ordering::Relaxed);
                Claimed::Ours
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                let holder = runs
                    .get(&claim.key)
                    .await
                    .ok()
                    .flatten()
                    .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                    .unwrap_or_default();
                // The coordinator gave the try up or cut it: nothing to say.
                if holder == COORDINATOR || holder == CUT {
                    return Claimed::NotOurs { ack: true };
                }
                let ack = self.report(request, News::Lost { holder }).await;
                Claimed::NotOurs { ack }
            }
            Err(error) => {
                // Left unacked: it comes back when the server does.
                tracing::warn!(%error, "cannot claim a try");
                Claimed::NotOurs { ack: false }
            }
        }
    }

    /// Whether run `run` holds the suite's lease. A run seen holding it
    /// less than half the lease's TTL ago is taken at its word: another
    /// run can take the lease only after it expires (or is released at
    /// the end of a run, which leaves no try to run).
    async fn holds_lease(&self, run: &str) -> Result<bool, String> {
        let (js, bucket) = (&self.transport.js, self.transport.names.lease_bucket());
        let (lease, ttl) = self
            .lease
            .get_or_try_init(|| async {
                // The coordinator made it before it sent any try.
                let store = js.get_key_value(bucket).await.map_err(|e| e.to_string())?;
                let status = store.status().await.map_err(|e| e.to_string())?;
                Ok::<_, String>((store, status.max_age()))
            })
            .await?;
        let seen = self
            .lease_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some((holder, at)) = seen
            && holder == run
            && at.elapsed() < *ttl / 2
        {
            return Ok(true);
        }
        let read_at = Instant::now();
        let holder = lease.get(LEASE_KEY).await.map_err(|e| e.to_string())?;
        let holds = holder.as_deref() == Some(run.as_bytes());
        if holds {
            let mut seen = self
                .lease_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *seen = Some((run.to_owned(), read_at));
        }
        Ok(holds)
    }

    /// The state of run `run`: built on its first try here, from the
    /// arguments the coordinator stored.
    async fn run_state(&self, run: &str) -> Result<Arc<RunState<A>>, String> {
        if let Some((_, state)) = self.lock_runs().iter().find(|(id, _)| id == run) {
            return state.clone();
        }
        let state = self.build_run_state(run).await.map(Arc::new);
        let mut runs = self.lock_runs();
        if let Some((_, known)) = runs.iter().find(|(id, _)| id == run) {
            return known.clone();
        }
        // A try of a new run means the older ones are over: one run holds
        // the suite's lease at a time, and a run ends after its cleanups.
        // Their job values go (and what they hold, such as a lock on a
        // directory the new run's jobs take again), once their last phase
        // still under way here ends.
        let over = std::mem::replace(&mut *runs, vec![(run.to_owned(), state.clone())]);
        drop(runs);
        drop(over);
        state
    }

    async fn build_run_state(&self, run: &str) -> Result<RunState<A>, String> {
        let bytes = match self.transport.runs.get(args_key(run)).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(format!("the arguments of run {run} are not on the server")),
            Err(error) => return Err(format!("cannot read the arguments of run {run}: {error}")),
        };
        let mut args: A = serde_json::from_slice(&bytes).map_err(|error| {
            format!(
                "worker {} cannot read the arguments of run {run} ({error}): \
                 it was built from another version of the suite",
                self.name
            )
        })?;
        let root = {
            let (root, host_args) = (&self.root, &self.host_args);
            catch_unwind(AssertUnwindSafe(|| {
                if let Some(host_args) = host_args {
                    host_args(&mut args);
                }
                root(&args)
            }))
            .map_err(|_| format!("worker {}: building the root job panicked", self.name))?
        };
        let graph = JobGraph::discover(root, &args, Defaults::default())
            .map_err(|error| format!("worker {} cannot build the graph: {error}", self.name))?;
        let runtime = tokio::runtime::Handle::current();
        let global =
            SharedStorage::new(self.transport.shared.clone(), run, runtime).global_storage();
        Ok(RunState {
            fingerprint: plan_fingerprint(&graph),
            graph,
            args,
            global,
            kept: Mutex::new(HashMap::new()),
        })
    }

    async fn cleanup(&self, request: CleanupRequest) -> Outcome {
        let state = self
            .lock_runs()
            .iter()
            .find(|(id, _)| *id == request.run)
            .and_then(|(_, state)| state.clone().ok());
        let Some(state) = state else {
            return fail(format!(
                "worker {} no longer holds run {} (restarted?): cleanup not done",
                self.name, request.run
            ));
        };
        let kept = {
            let mut kept = state.kept.lock().unwrap_or_else(PoisonError::into_inner);
            kept.remove(&request.job_id)
        };
        let local = match kept {
            Some((attempt, local)) if attempt == request.attempt => local,
            _ => LocalStorage::default(),
        };
        let id = JobId::from_index(request.job_id as usize);
        if id.index() >= state.graph.plan().len() {
            return fail(format!("worker {} has no job {id}", self.name));
        }
        let attempt = request.attempt;
        tokio::task::spawn_blocking(move || perform(&state, id, Phase::Cleanup, attempt, local).0)
            .await
            .expect("perform catches the job's panics")
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, Vec<KnownRun<A>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn fail(message: String) -> Outcome {
    Outcome::Fail(dojobber::Failure::new(message))
}

/// The first 12 hex digits of a fingerprint, for messages.
fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}
