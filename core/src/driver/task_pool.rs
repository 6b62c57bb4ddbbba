//! The one async executor (feature `tokio`): workers are tokio tasks on the
//! caller's runtime, started as work comes. In a run with time limits or a
//! deadline, the run's own task is the watcher. Otherwise, as in the thread
//! pool, there is no watcher: the run's own future is a worker (a chain
//! runs in it alone, with no task started and no wake-up; on the thread of
//! `block_on`, it leaves the pool to a task once there is work for two,
//! unless that work is async phases that finish when first polled),
//! sleeping workers watch the retry timers, and a cancel starts one more
//! worker, which tells the machine and abandons the phases in flight even
//! when every worker is busy. How a phase is performed is the one thing
//! that differs between its users, and is a [`PerformPhase`]: the job's own
//! code (`Runner::run_async`, `tokio_tasks.rs`), or a message to a remote
//! worker (dojobber-nats's coordinator). The clock is tokio's, so tests
//! with paused time run in virtual time.
//!
//! Worker tasks still running when the run's future is dropped (or
//! unwinds) are aborted with it: no part of a run outlives its future.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Came, Done, Executor, Next, Role, Session, Work};
use crate::event::{Outcome, Performer, Task};
use crate::storage::LocalStorage;

/// How the task pool performs a phase: the narrow part of an async
/// executor that differs between drivers (quinn has one driver over its
/// `Runtime` trait in the same way). Everything else (starting workers,
/// sleeping, waking, the watcher, panics) is [`drive_tasks`]'s.
///
/// ```
/// use std::sync::Arc;
/// use dojobber::engine::driver::{PerformPhase, Session, Work, drive_tasks};
/// use dojobber::prelude::*;
/// use dojobber::{LocalStorage, Outcome};
///
/// /// Performs every phase on the worker's task, as a plain call.
/// struct Inline;
/// impl PerformPhase<()> for Inline {
///     async fn perform(&self, session: &Arc<Session<()>>, work: Work) -> (Outcome, LocalStorage) {
///         let done = session.perform(work, || std::time::Duration::ZERO);
///         (done.outcome, done.local)
///     }
/// }
///
/// struct Kettle;
/// impl Job for Kettle {
///     fn check(&self, _: &mut Context<'_, ()>) -> JobResult { Ok(()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let session = Arc::new(Runner::new(Kettle, ()).into_session()?);
/// drive_tasks(&session, Inline).await;
/// let report = Arc::try_unwrap(session).ok().unwrap().into_report();
/// assert!(report.is_success());
/// # Ok::<(), SetupError>(()) }).unwrap();
/// ```
pub trait PerformPhase<A>: Send + Sync + 'static {
    /// Performs `work` (its local storage lent with it); its outcome and
    /// the storage back. A panic here (not in user code, which a
    /// performer catches) stops the run and reaches the caller of
    /// [`drive_tasks`].
    fn perform(
        &self,
        session: &Arc<Session<A>>,
        work: Work,
    ) -> impl Future<Output = (Outcome, LocalStorage)> + Send;

    /// Like [`perform`](Self::perform), saying who performed the phase:
    /// what the pool calls. By default [`perform`](Self::perform), done
    /// here ([`Performer::Here`]); an executor that performs phases
    /// elsewhere implements this too, naming its worker for the report.
    fn perform_by(
        &self,
        session: &Arc<Session<A>>,
        work: Work,
    ) -> impl Future<Output = (Outcome, LocalStorage, Performer)> + Send {
        let performing = self.perform(session, work);
        async move {
            let (outcome, local) = performing.await;
            (outcome, local, Performer::Here)
        }
    }

    /// Whether `work` may be tried on the run's own thread before the
    /// workers the run wants are started: a phase that never blocks its
    /// thread (an async job's), so that, polled once, it either finishes
    /// (a run of such phases then needs no other thread at all) or waits,
    /// and the workers start then. By default no: a phase that blocks
    /// would hold up every other phase ready beside it.
    fn tries_without_blocking(&self, _session: &Arc<Session<A>>, _work: &Work) -> bool {
        false
    }

    /// The machine handed `task` out; called before any worker can see it.
    fn handed_out(&self, _task: Task) {}

    /// The machine asks to cancel `task` if possible; its worker reports
    /// it either way. Called under the session's lock: be quick.
    fn abandon(&self, _task: Task) {}

    /// A worker task panicked outside user code: the run is stopping, and
    /// phases still awaited should end.
    fn broke_down(&self) {}
}

/// The executor: the pool's workers and bells around a [`PerformPhase`].
struct TaskPool<A, P> {
    session: Arc<Session<A>>,
    performer: P,
    /// Itself, for the workers it starts.
    me: Weak<TaskPool<A, P>>,
    /// Where workers start: the caller's runtime (a cancel may come from
    /// a thread outside it).
    runtime: tokio::runtime::Handle,
    start: Instant,
    /// The most workers the run can use.
    workers: usize,
    /// Workers started so far, the run's own task among them when it is
    /// one: one more each time the machine has a phase and no worker
    /// sleeps, up to `workers` (changed under the session's lock), and one
    /// past it for a cancel (see [`drive_tasks`]).
    started: AtomicUsize,
    /// No watcher: workers sleep on `worker_bell` until the machine's next
    /// timer, and [`Executor::wake_watcher`] wakes one of them.
    workers_watch: bool,
    /// The run's own future is a worker outside the runtime's tasks (on
    /// the thread of `block_on`): it leaves the pool once the run has
    /// work for a second worker it cannot try itself first (see
    /// `TaskPool::work`).
    own_outside: bool,
    /// Workers it added meanwhile, to start from inside the runtime.
    unspawned: AtomicUsize,
    /// Set once a phase tried on the run's own thread waited or was slow
    /// (see [`PerformPhase::tries_without_blocking`]): from then on the
    /// workers added start at once.
    spread: AtomicBool,
    /// The workers' tasks, aborted if the run's future is dropped.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// The first panic of a worker (an observer's), for the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    worker_bell: Semaphore,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Notify>,
}

/// A phase tried on the run's own thread that takes longer than this has
/// kept the run's other ready phases waiting long enough (tokio's rule of
/// thumb for the time between two awaits): the run spreads from then on.
const SLOW_PHASE: Duration = Duration::from_micros(100);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<A: Send + Sync + 'static, P: PerformPhase<A>> Executor for TaskPool<A, P> {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }
    fn wake_workers(&self, count: usize) {
        self.worker_bell
            .add_permits(count.min(self.started.load(Ordering::SeqCst)));
    }
    fn wake_watcher(&self) {
        if self.workers_watch {
            self.worker_bell.add_permits(1);
        } else {
            self.watcher_bell.notify_one();
        }
    }
    fn handed_out(&self, task: Task) {
        self.performer.handed_out(task);
    }
    fn abandon(&self, task: Task) {
        self.performer.abandon(task);
    }
    fn can_add_worker(&self) -> bool {
        self.started.load(Ordering::SeqCst) < self.workers
    }
    fn add_worker(&self) {
        self.started.fetch_add(1, Ordering::SeqCst);
        if self.own_outside && tokio::task::try_id().is_none() {
            // The run's own future, outside the runtime's tasks: it is
            // about to leave the pool to a task, which spawns these from
            // inside the runtime (see `TaskPool::work`).
            self.unspawned.fetch_add(1, Ordering::SeqCst);
        } else {
            self.spawn_worker(Begin::Start);
        }
    }
    fn workers_watch(&self) -> bool {
        self.workers_watch
    }
}

/// How a worker begins: with its first turn, or in the place of the
/// run's own future as it leaves the pool (see [`TaskPool::work`]).
enum Begin {
    /// With its first turn.
    Start,
    /// By starting the workers the run's own future added, then doing
    /// what its last turn told it.
    InPlaceOf(Next),
}

impl<A: Send + Sync + 'static, P: PerformPhase<A>> TaskPool<A, P> {
    /// Starts a worker task.
    fn spawn_worker(&self, begin: Begin) {
        let pool = self
            .me
            .upgrade()
            .expect("the executor outlives its workers");
        let handle = self.runtime.spawn(async move { pool.worker(begin).await });
        lock(&self.handles).push(handle);
    }

    /// A worker's whole life; a panic stops the run and is kept for the
    /// caller.
    async fn worker(&self, begin: Begin) {
        let work = AssertUnwindSafe(self.work(Role::Worker, begin));
        if let Err(panic) = work.catch_unwind().await {
            self.session.break_down(self);
            self.performer.broke_down();
            lock(&self.panic).get_or_insert(panic);
        }
    }

    /// Waits for every worker started to end, its task dropped (so no
    /// worker holds the session any more): a worker is started only by a
    /// live one once the watcher is done, so when none is left to await,
    /// none will start.
    async fn all_workers_ended(&self) {
        loop {
            let handles = std::mem::take(&mut *lock(&self.handles));
            if handles.is_empty() {
                return;
            }
            // Each still aborted if the run's future is dropped meanwhile.
            for mut handle in handles.into_iter().map(AbortOnDrop) {
                // A worker catches its own panics (kept in `panic`).
                let _ = (&mut handle.0).await;
            }
        }
    }

    /// The loop of a worker (or the watcher): step, perform or sleep, step
    /// again. The run's own future, when it is a worker outside the
    /// runtime's tasks (`own_outside`: on the thread of `block_on`), leaves
    /// the pool the first time the run has work for a second worker: a
    /// task starts the workers added and does what its turn said, in its
    /// place. Else that thread would take phases as a third thread beside
    /// the runtime's, and each worker would be started from outside it
    /// (both cost wake-ups across threads); a chain never leaves. Before
    /// leaving, it tries an async phase itself ([`TaskPool::try_first`]),
    /// and lets the workers added go when nothing waits for them
    /// ([`TaskPool::stay_or_leave`]): a fan-out of async phases that finish
    /// at once then runs on that thread alone, with no wake-up of another.
    async fn work(&self, role: Role, begin: Begin) {
        let session = &self.session;
        let mut next = match begin {
            Begin::Start => session.step(role, Came::Start, self),
            Begin::InPlaceOf(next) => {
                for _ in 0..self.unspawned.swap(0, Ordering::SeqCst) {
                    self.spawn_worker(Begin::Start);
                }
                next
            }
        };
        loop {
            let mut trying = false;
            if self.unspawned.load(Ordering::SeqCst) > 0 && tokio::task::try_id().is_none() {
                match self.stay_or_leave(&next) {
                    Stay::Trying => trying = true,
                    Stay::Alone => {}
                    Stay::Leave => return self.spawn_worker(Begin::InPlaceOf(next)),
                }
            }
            let came = match next {
                Next::Perform(work) => {
                    let task = work.task;
                    // Each branch makes its own future, pinned where it
                    // is made, so that the two share one place in this
                    // future (a future moved once more takes room twice,
                    // and every worker's task would copy the room).
                    let (outcome, local, performed_by) = if trying {
                        let performing = std::pin::pin!(self.performer.perform_by(session, work));
                        self.try_first(performing).await
                    } else {
                        self.performer.perform_by(session, work).await
                    };
                    Came::Finished(Done {
                        task,
                        local,
                        outcome,
                        at: self.now(),
                        performed_by,
                    })
                }
                Next::Sleep(until) => {
                    self.sleep(role, until).await;
                    Came::Woke
                }
                Next::Done => return,
            };
            next = session.step(role, came, self);
        }
    }

    /// Whether the run's own future, outside the runtime's tasks with
    /// workers added and not yet started, goes on with `next` itself or
    /// leaves the pool to them (see [`TaskPool::work`]).
    fn stay_or_leave(&self, next: &Next) -> Stay {
        if self.spread.load(Ordering::SeqCst) {
            return Stay::Leave;
        }
        if let Next::Perform(work) = next
            && self.performer.tries_without_blocking(&self.session, work)
        {
            return Stay::Trying;
        }
        if self.session.phases_waiting() == 0 {
            // Nothing for them to take: they are not needed after all.
            let unneeded = self.unspawned.swap(0, Ordering::SeqCst);
            self.started.fetch_sub(unneeded, Ordering::SeqCst);
            return Stay::Alone;
        }
        Stay::Leave
    }

    /// Performs a phase on the run's own thread (outside the runtime's
    /// tasks) while the workers the run added wait unstarted: if it waits,
    /// they start at once (from this thread, which goes on as a worker
    /// beside them); if it takes long, they start after it, in this
    /// future's place. Either way the run spreads from then on. A run whose
    /// phases all finish at once (async checks that find the world in
    /// order) thus runs on this thread alone, with no wake-up of another.
    async fn try_first<T>(&self, mut performing: Pin<&mut impl Future<Output = T>>) -> T {
        let started = Instant::now();
        let mut polled = false;
        let done = std::future::poll_fn(|cx| {
            let poll = performing.as_mut().poll(cx);
            if poll.is_pending() && !polled {
                polled = true;
                self.spread.store(true, Ordering::SeqCst);
                for _ in 0..self.unspawned.swap(0, Ordering::SeqCst) {
                    self.spawn_worker(Begin::Start);
                }
            }
            poll
        })
        .await;
        if started.elapsed() > SLOW_PHASE {
            self.spread.store(true, Ordering::SeqCst);
        }
        done
    }

    /// Sleeps until rung, or until `until` since the run's start.
    async fn sleep(&self, role: Role, until: Option<Duration>) {
        let until = until.map(|at| at.saturating_sub(self.now()));
        match role {
            // Told a time only when workers watch the timers; else no
            // timer is made for a sleep.
            Role::Worker => {
                let rung = self.worker_bell.acquire();
                let permit = match until {
                    Some(until) => tokio::time::timeout(until, rung).await.ok(),
                    None => Some(rung.await),
                };
                if let Some(permit) = permit {
                    permit.expect("the bell is never closed").forget();
                }
            }
            Role::Watcher | Role::Alone => {
                let until = until.unwrap_or(Duration::MAX);
                let _ = tokio::time::timeout(until, self.watcher_bell.notified()).await;
            }
        }
    }
}

/// What the run's own future does with workers added and not started.
enum Stay {
    /// Tries the phase itself first ([`TaskPool::try_first`]).
    Trying,
    /// Goes on alone (performs the phase, sleeps or ends): nothing waits
    /// for the workers added, so they are let go unstarted.
    Alone,
    /// Leaves the pool to a task that starts them.
    Leave,
}

/// A task that ends when this is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Aborts the worker tasks left when dropped.
struct AbortWorkers<'a>(&'a Mutex<Vec<JoinHandle<()>>>);

impl Drop for AbortWorkers<'_> {
    fn drop(&mut self) {
        for handle in lock(self.0).drain(..) {
            handle.abort();
        }
    }
}

/// Runs the session on tokio tasks, each phase performed by `performer`:
/// up to [`Session::most_in_flight`] workers (started only as work
/// comes). In a run with time limits or a deadline, this task watches the
/// timers and the cancel handle; otherwise it is a worker itself, and a
/// cancel starts one more worker to tell the machine. Returns when every
/// worker has ended; a worker's panic (an observer's, the performer's) is
/// resumed here.
pub async fn drive_tasks<A, P>(session: &Arc<Session<A>>, performer: P)
where
    A: Send + Sync + 'static,
    P: PerformPhase<A>,
{
    let (workers, limited) = {
        let run = session.lock();
        let limited =
            run.machine.plan().has_time_limits() || run.machine.config().deadline.is_some();
        (run.machine.most_in_flight(), limited)
    };
    // A phase that never returns must still meet its limit: then a watcher.
    let role = if limited { Role::Watcher } else { Role::Worker };
    let pool = Arc::new_cyclic(|me| TaskPool {
        session: Arc::clone(session),
        performer,
        me: me.clone(),
        runtime: tokio::runtime::Handle::current(),
        start: Instant::now(),
        workers,
        started: AtomicUsize::new(usize::from(role == Role::Worker)),
        workers_watch: role == Role::Worker,
        own_outside: role == Role::Worker && tokio::task::try_id().is_none(),
        unspawned: AtomicUsize::new(0),
        spread: AtomicBool::new(false),
        handles: Mutex::new(Vec::new()),
        panic: Mutex::new(None),
        worker_bell: Semaphore::new(0),
        watcher_bell: Arc::new(Notify::new()),
    });
    let subscription = session.cancel_handle().subscribe(match role {
        Role::Worker => {
            // Every worker may be busy with a phase that would wait on: one
            // more steps in, the machine hears of the cancel and abandons
            // them (once; later cancels change nothing).
            let pool = Arc::downgrade(&pool);
            let once = std::sync::Once::new();
            Box::new(move || {
                if let Some(pool) = pool.upgrade() {
                    once.call_once(|| {
                        // Spawned at once, from whatever thread cancels.
                        pool.started.fetch_add(1, Ordering::SeqCst);
                        pool.spawn_worker(Begin::Start);
                    });
                }
            }) as Box<dyn Fn() + Send + Sync>
        }
        _ => {
            let bell = Arc::clone(&pool.watcher_bell);
            Box::new(move || bell.notify_one())
        }
    });
    let _workers = AbortWorkers(&pool.handles);
    let own_turns = AssertUnwindSafe(pool.work(role, Begin::Start))
        .catch_unwind()
        .await;
    if let Err(panic) = own_turns {
        session.break_down(&*pool);
        pool.performer.broke_down();
        std::panic::resume_unwind(panic);
    }
    // The run's own future may have left the pool to a task: a cancel
    // may start a worker until the run is over. None does once this is
    // dropped, so those started are then all awaited.
    pool.all_workers_ended().await;
    drop(subscription);
    pool.all_workers_ended().await;
    let panic = lock(&pool.panic).take();
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}
