//! A worker: the suite's own program in worker mode. It serves the tries
//! of its labels (and of jobs with no label), up to `slots` tries per
//! label at a time, with the job values of its own graph, rebuilt from
//! the root and the run's arguments. It runs only job types compiled into it: a try
//! names a job, never code.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, kv};
use dojobber::engine::{Defaults, JobGraph, JobId};
use dojobber::{Context, GlobalStorage, JobKind, JobRef, LocalStorage, Outcome, Phase};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{Error, nats};
use crate::shared::SharedStorage;
use crate::transport::{LEASE_KEY, Settings, Transport};
use crate::wire::{
    self, CleanupRequest, News, TryRequest, WireOutcome, WorkerReport, args_key, check_token,
    claim_key, plan_fingerprint,
};

/// Builds the root job from the run's arguments.
pub type RootFn<A> = Arc<dyn Fn(&A) -> JobRef<A> + Send + Sync>;

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
    settings: Settings,
    slots: usize,
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

/// Runs a worker remembers; older ones are forgotten.
const KEEP_RUNS: usize = 8;

struct Shared<A> {
    transport: Transport,
    /// The coordinator's lease: a try runs only while its run holds it.
    /// Made by the first coordinator (its TTL is theirs), found on first use.
    lease: tokio::sync::OnceCell<(kv::Store, Duration)>,
    /// The last run seen holding the lease, and when it was read.
    lease_seen: Mutex<Option<(String, Instant)>>,
    name: String,
    root: RootFn<A>,
    /// Per run id, its state, or why the run's arguments cannot be used.
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
            settings: Settings::default(),
            slots: 1,
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
    /// default), each on a thread of tokio's blocking pool.
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = slots.max(1);
        self
    }

    /// The transport's timings (the same as the coordinator's).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Serves tries and cleanups until the connection fails for good.
    pub async fn serve(self) -> Result<(), Error> {
        let names = wire::Names::new(&self.suite)?;
        let transport = Transport::open(self.client.clone(), names, self.settings).await?;
        let shared = Arc::new(Shared {
            transport,
            lease: tokio::sync::OnceCell::new(),
            lease_seen: Mutex::new(None),
            name: self.name.clone(),
            root: self.root,
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
        tracing::info!(worker = %self.name, labels = ?self.labels, "worker serving");
        while let Some(ended) = tasks.join_next().await {
            if let Ok(Err(error)) = ended {
                return Err(error);
            }
        }
        Ok(())
    }
}

/// Takes one try of a label at a time, for ever (one slot).
async fn serve_label<A>(
    shared: Arc<Shared<A>>,
    consumer: jetstream::consumer::PullConsumer,
) -> Result<(), Error>
where
    A: DeserializeOwned + Send + Sync + 'static,
{
    loop {
        let batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(error) => {
                // The server is away: the client reconnects by itself.
                tracing::warn!(%error, "cannot fetch tries; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while let Some(message) = batch.next().await {
            match message {
                Ok(message) => take_try(&shared, message).await,
                Err(error) => tracing::warn!(%error, "a fetch failed"),
            }
        }
    }
}

/// Claims a try, performs it, reports each phase, acks.
async fn take_try<A>(shared: &Arc<Shared<A>>, message: jetstream::Message)
where
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
    let runs = &shared.transport.runs;
    let claim = claim_key(&request.run, request.job_id, request.attempt);
    let revision = match runs.create(&claim, shared.name.clone().into()).await {
        Ok(revision) => revision,
        Err(error) if error.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
            let holder = runs
                .get(&claim)
                .await
                .ok()
                .flatten()
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            // The coordinator gave the try up or cut it: nothing to say.
            if holder != COORDINATOR && holder != CUT {
                let news = News::Lost { holder };
                if !shared.report(&request, news).await {
                    return;
                }
            }
            let _ = message.ack().await;
            return;
        }
        Err(error) => {
            // Left unacked: it comes back when the server does.
            tracing::warn!(%error, "cannot claim a try");
            return;
        }
    };
    let claim = Arc::new(Claim {
        runs: runs.clone(),
        key: claim,
        name: shared.name.clone(),
        revision: tokio::sync::Mutex::new(Some(revision)),
    });
    // Tells JetStream (ack) and the coordinator (a new revision of the
    // claim) that this worker is alive while it performs the try.
    let progress = {
        let (message, claim) = (message.clone(), Arc::clone(&claim));
        let every = shared.transport.settings.ack_wait / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = message.ack_with(AckKind::Progress).await;
                claim.refresh().await;
            }
        })
    };
    let delivered = perform_try(shared, &request, &claim).await;
    progress.abort();
    if delivered {
        let _ = message.ack().await;
    }
}

/// The claim value of a try the coordinator gave up.
pub(crate) const COORDINATOR: &str = "coordinator";

/// The claim value of a try the coordinator cut: its worker performs no
/// further phase. Not a worker name (those are tokens).
pub(crate) const CUT: &str = "cut:coordinator";

/// This worker's claim on a try it performs: every write is a
/// compare-and-set on the revision it last wrote, so it fails once the
/// coordinator cut the try.
struct Claim {
    runs: kv::Store,
    key: String,
    name: String,
    /// The revision this worker last wrote; `None` once the try is cut.
    revision: tokio::sync::Mutex<Option<u64>>,
}

impl Claim {
    /// Before a further phase: renews the claim; `Err` (why) when the
    /// try must go no further.
    async fn renew(&self) -> Result<(), String> {
        let mut revision = self.revision.lock().await;
        let Some(last) = *revision else {
            return Err("the coordinator cut the try".into());
        };
        let mut tries = 0;
        loop {
            match self
                .runs
                .update(&self.key, self.name.clone().into(), last)
                .await
            {
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
    async fn refresh(&self) {
        let mut revision = self.revision.lock().await;
        match *revision {
            Some(last) => match self
                .runs
                .update(&self.key, self.name.clone().into(), last)
                .await
            {
                Ok(new) => *revision = Some(new),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    *revision = None;
                }
                Err(_) => {}
            },
            None => {
                if let Ok(Some(entry)) = self.runs.entry(&self.key).await {
                    let _ = self
                        .runs
                        .update(&self.key, entry.value, entry.revision)
                        .await;
                }
            }
        }
    }
}

/// Performs the phases of a try and reports each; tells whether every
/// report reached the server.
async fn perform_try<A>(shared: &Arc<Shared<A>>, request: &TryRequest, claim: &Claim) -> bool
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
    let mut phase = match state.graph.plan().kind(id) {
        JobKind::RunOnly => Phase::Run,
        _ => Phase::Check,
    };
    let mut local = LocalStorage::default();
    loop {
        let started = Instant::now();
        let (outcome, back) = {
            let state = Arc::clone(&state);
            let attempt = request.attempt;
            tokio::task::spawn_blocking(move || perform(&state, id, phase, attempt, local))
                .await
                .expect("perform catches the job's panics")
        };
        local = back;
        let elapsed = started.elapsed();
        let passed = outcome.is_pass();
        let run_only = state.graph.plan().kind(id) == JobKind::RunOnly;
        let next = match phase {
            Phase::Check if passed || request.no_act => None,
            Phase::Check => Some(Phase::Run),
            Phase::Run if run_only => None,
            Phase::Run => Some(Phase::Recheck),
            Phase::Recheck | Phase::Cleanup => None,
        };
        let news = News::Phase {
            phase,
            outcome: WireOutcome::from(outcome),
            elapsed,
        };
        match next {
            Some(next) => {
                if !shared.report(request, news).await {
                    return false;
                }
                // The machine may have stopped the try meanwhile.
                if let Err(why) = claim.renew().await {
                    let reason = format!("worker {} did not start its {next}: {why}", shared.name);
                    return shared.report(request, News::Stopped { reason }).await;
                }
                phase = next;
            }
            None => {
                // Its run executed: its cleanup gets this try's storage,
                // kept before the last report, after which it may come.
                if phase != Phase::Check {
                    let mut kept = state.kept.lock().unwrap_or_else(PoisonError::into_inner);
                    kept.insert(request.job_id, (request.attempt, local));
                }
                return shared.report(request, news).await;
            }
        }
    }
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

/// Answers cleanup requests for jobs this worker ran.
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
        if runs.len() >= KEEP_RUNS {
            drop(runs.remove(0));
        }
        runs.push((run.to_owned(), state.clone()));
        state
    }

    async fn build_run_state(&self, run: &str) -> Result<RunState<A>, String> {
        let bytes = match self.transport.runs.get(args_key(run)).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(format!("the arguments of run {run} are not on the server")),
            Err(error) => return Err(format!("cannot read the arguments of run {run}: {error}")),
        };
        let args: A = serde_json::from_slice(&bytes).map_err(|error| {
            format!(
                "worker {} cannot read the arguments of run {run} ({error}): \
                 it was built from another version of the suite",
                self.name
            )
        })?;
        let root = {
            let root = &self.root;
            catch_unwind(AssertUnwindSafe(|| root(&args)))
                .map_err(|_| format!("worker {}: building the root job panicked", self.name))?
        };
        let graph = JobGraph::discover(root, &args, Defaults::default())
            .map_err(|error| format!("worker {} cannot build the graph: {error}", self.name))?;
        let global = GlobalStorage::default();
        let runtime = tokio::runtime::Handle::current();
        SharedStorage::new(self.transport.shared.clone(), run, runtime).lend_to(&global);
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
