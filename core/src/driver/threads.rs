//! The thread executors: the caller's thread alone (`workers(1)`), or a pool
//! of scoped worker threads with the caller's thread as the watcher.
//!
//! A thread cannot be interrupted: an abandoned phase runs on, and its job
//! is not retried until it returns (the machine waits for its report).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use super::{Came, Executor, Next, Role, Session};
use crate::plan::SetupError;

/// A counting wake-up call: rings are kept until a sleeper takes them, so
/// none is lost between deciding to sleep and sleeping.
#[derive(Default)]
struct Bell {
    rings: Mutex<usize>,
    rung: Condvar,
}

impl Bell {
    fn ring(&self, count: usize) {
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        *rings = rings.saturating_add(count);
        if count == 1 {
            self.rung.notify_one();
        } else {
            self.rung.notify_all();
        }
    }

    /// Sleeps until rung or `timeout` has passed.
    fn wait(&self, timeout: Option<Duration>) {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rings = match timeout {
            Some(timeout) => {
                self.rung
                    .wait_timeout_while(rings, timeout, |rings| *rings == 0)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .rung
                .wait_while(rings, |rings| *rings == 0)
                .unwrap_or_else(PoisonError::into_inner),
        };
        *rings = rings.saturating_sub(1);
    }
}

struct Threads {
    clock: Instant,
    workers: usize,
    worker_bell: Bell,
    /// Shared with the cancel handle's wake-up call.
    watcher_bell: Arc<Bell>,
    /// A pool with no watcher: every thread sleeps on the watcher's bell
    /// until the machine's next timer (see [`drive_pool`]).
    workers_watch: bool,
}

impl Executor for Threads {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }
    fn wake_workers(&self, count: usize) {
        self.bell(Role::Worker).ring(count.min(self.workers));
    }
    fn wake_watcher(&self) {
        self.watcher_bell.ring(1);
    }
    fn workers_watch(&self) -> bool {
        self.workers_watch
    }
}

impl Threads {
    fn new(clock: Instant, workers: usize, workers_watch: bool) -> Threads {
        Threads {
            clock,
            workers,
            worker_bell: Bell::default(),
            watcher_bell: Arc::default(),
            workers_watch,
        }
    }

    /// The bell a thread in `role` sleeps on.
    fn bell(&self, role: Role) -> &Bell {
        match role {
            Role::Worker if !self.workers_watch => &self.worker_bell,
            _ => &self.watcher_bell,
        }
    }

    /// One worker's whole life: step, perform or sleep, step again.
    fn work<A: 'static>(&self, session: &Session<A>, role: Role) {
        let mut came = Came::Start;
        loop {
            let next = session.step(role, came, self);
            came = match next {
                Next::Perform(work) => Came::Finished(session.perform(work, || self.now())),
                Next::Sleep(until) => {
                    let bell = self.bell(role);
                    bell.wait(until.map(|at| at.saturating_sub(self.now())));
                    Came::Woke
                }
                Next::Done => return,
            };
        }
    }

    /// [`work`](Self::work), stopping everyone else if it panics (an
    /// observer's panic: user code in phases is caught where it runs).
    fn work_or_break_down<A: 'static>(&self, session: &Session<A>, role: Role) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.work(session, role))) {
            session.break_down(self);
            resume_unwind(panic);
        }
    }
}

/// Runs the session on the caller's thread alone: one phase at a time, in
/// the reference order.
pub(crate) fn drive_alone<A: Sync + 'static>(session: &Session<A>) {
    let threads = Threads::new(session.clock, 1, false);
    let _subscription = session.cancel.subscribe(wake_watcher_of(&threads));
    threads.work(session, Role::Alone);
}

/// Runs the session on up to `workers` threads (no more than can ever be
/// busy at once). Fails if the system cannot give the pool its threads:
/// before anything runs if it could never map them, else before the next
/// phase once a thread is refused (see [`lead`]).
///
/// In a run with time limits or a deadline, every thread is started before
/// any phase and the caller's thread is the watcher ([`with_watcher`]): a
/// phase may never return, and its limit must still fire. Otherwise the
/// caller's thread is a worker and the others start the first time the
/// machine has more than one phase to hand out ([`lead`]), so a run with
/// nothing to do at once, a chain, starts no thread at all; every sleeping
/// thread then watches the timers.
pub(crate) fn drive_pool<A: Sync + 'static>(
    session: &Session<A>,
    workers: usize,
) -> Result<(), SetupError> {
    let (wanted, limited) = {
        let run = session.lock();
        let limited =
            run.machine.plan().has_time_limits() || run.machine.config().deadline.is_some();
        (workers.min(run.machine.most_in_flight()), limited)
    };
    room_for_threads(workers, wanted, MapLimit::of_this_system())?;
    if limited || wanted == 1 {
        return with_watcher(session, workers, wanted);
    }
    let threads = Threads::new(session.clock, wanted, true);
    let gate = Gate::default();
    let _subscription = session.cancel.subscribe(wake_watcher_of(&threads));
    std::thread::scope(|scope| {
        let lead = Lead {
            threads: &threads,
            session,
            scope,
            gate: &gate,
            workers,
            wanted,
            started: RefCell::new(None),
        };
        let led = catch_unwind(AssertUnwindSafe(|| lead.work()));
        if led.is_err() {
            session.break_down(&lead);
        }
        // Workers that were started, if any, end once they see the run
        // over or the gate shut; a worker's panic (an observer's) reaches
        // the caller as it was.
        if let Some(Ok(started)) = lead.started.into_inner() {
            for worker in started {
                if let Err(panic) = worker.join() {
                    resume_unwind(panic);
                }
            }
        }
        match led {
            Ok(led) => led,
            Err(panic) => resume_unwind(panic),
        }
    })
}

/// The caller's thread in a pool with no watcher: a worker, which starts
/// the others the first time the machine hands out a phase that no
/// sleeping worker can take.
struct Lead<'scope, 'env, A> {
    threads: &'env Threads,
    session: &'env Session<A>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    gate: &'env Gate,
    /// What the run asked for, and the threads wanted (the lead included).
    workers: usize,
    wanted: usize,
    /// The other workers once started, or why they could not be.
    started: RefCell<Option<Result<Vec<ScopedJoinHandle<'scope, ()>>, SetupError>>>,
}

impl<A: Sync + 'static> Executor for Lead<'_, '_, A> {
    fn now(&self) -> Duration {
        self.threads.now()
    }
    fn wake_workers(&self, count: usize) {
        self.threads.wake_workers(count);
    }
    fn wake_watcher(&self) {
        self.threads.wake_watcher();
    }
    fn workers_watch(&self) -> bool {
        true
    }
    fn can_add_worker(&self) -> bool {
        self.started.borrow().is_none()
    }
    /// Starts every other worker at once (they wait at the gate until all
    /// have started), so a refused thread is known before the next phase.
    fn add_worker(&self) {
        let mut started = Vec::with_capacity(self.wanted - 1);
        let mut refused = None;
        for number in 1..self.wanted {
            let (threads, session, gate) = (self.threads, self.session, self.gate);
            let spawned = std::thread::Builder::new()
                .name(format!("dojobber worker {number}"))
                .spawn_scoped(self.scope, move || {
                    if gate.wait_open() {
                        threads.work_or_break_down(session, Role::Worker);
                    }
                });
            match spawned {
                Ok(worker) => started.push(worker),
                Err(error) => {
                    refused = Some(SetupError::WorkerThread {
                        workers: self.workers,
                        number,
                        wanted: self.wanted - 1,
                        source: crate::plan::SpawnError(Arc::new(error)),
                    });
                    break;
                }
            }
        }
        self.gate.set(refused.is_none());
        *self.started.borrow_mut() = Some(match refused {
            None => Ok(started),
            Some(error) => {
                // Those started end at the shut gate.
                for worker in started {
                    let _ = worker.join();
                }
                Err(error)
            }
        });
    }
}

impl<A: Sync + 'static> Lead<'_, '_, A> {
    /// The lead's whole life, as a worker's, but for a refused thread:
    /// then the run stops before the next phase (the phase the lead was
    /// given is not performed) and the refusal is returned.
    fn work(&self) -> Result<(), SetupError> {
        let session = self.session;
        let mut came = Came::Start;
        loop {
            let next = session.step(Role::Worker, came, self);
            if matches!(&*self.started.borrow(), Some(Err(_))) {
                session.break_down(self);
                drop(next);
                return match self.started.borrow_mut().take() {
                    Some(Err(error)) => Err(error),
                    _ => unreachable!("checked just above"),
                };
            }
            came = match next {
                Next::Perform(work) => Came::Finished(session.perform(work, || self.now())),
                Next::Sleep(until) => {
                    let bell = self.threads.bell(Role::Worker);
                    bell.wait(until.map(|at| at.saturating_sub(self.now())));
                    Came::Woke
                }
                Next::Done => return Ok(()),
            };
        }
    }
}

/// The pool with the caller's thread as its watcher: every worker thread
/// started before any phase. Fails, before anything runs, if a thread
/// cannot be started.
fn with_watcher<A: Sync + 'static>(
    session: &Session<A>,
    workers: usize,
    wanted: usize,
) -> Result<(), SetupError> {
    let threads = Threads::new(session.clock, wanted, false);
    let gate = Gate::default();
    std::thread::scope(|scope| {
        let mut started = Vec::with_capacity(wanted);
        for number in 1..=wanted {
            let spawned = std::thread::Builder::new()
                .name(format!("dojobber worker {number}"))
                .spawn_scoped(scope, || {
                    if gate.wait_open() {
                        threads.work_or_break_down(session, Role::Worker);
                    }
                });
            match spawned {
                Ok(worker) => started.push(worker),
                Err(error) => {
                    gate.set(false);
                    return Err(SetupError::WorkerThread {
                        workers,
                        number,
                        wanted,
                        source: crate::plan::SpawnError(std::sync::Arc::new(error)),
                    });
                }
            }
        }
        gate.set(true);
        let _subscription = session.cancel.subscribe(wake_watcher_of(&threads));
        threads.work_or_break_down(session, Role::Watcher);
        // A worker's panic (an observer's) reaches the caller as it was.
        for worker in started {
            if let Err(panic) = worker.join() {
                resume_unwind(panic);
            }
        }
        Ok(())
    })
}

/// Memory mappings a thread takes: its stack and guard page, and std's
/// alternative signal stack and its guard page.
const MAPS_PER_THREAD: usize = 4;

/// Mappings kept free for what the run maps besides its threads (malloc's
/// per-thread arenas, large allocations).
const MAPS_HEADROOM: usize = 1024;

/// The system's limit on a process's memory mappings (`vm.max_map_count`)
/// and how to count those this process has, read only when needed.
struct MapLimit<Count> {
    limit: usize,
    in_use: Count,
}

impl MapLimit<fn() -> usize> {
    /// Linux's limit, `None` where it cannot be read (no such limit, or no
    /// `/proc`): then nothing is checked. Read once per process: a run's
    /// fixed cost counts, and the setting seldom changes.
    fn of_this_system() -> Option<Self> {
        static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
        let limit = LIMIT.get_or_init(|| {
            let limit = std::fs::read_to_string(MAX_MAP_COUNT).ok()?;
            limit.trim().parse().ok()
        });
        Some(MapLimit {
            limit: (*limit)?,
            in_use: maps_in_use,
        })
    }
}

const MAX_MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

/// The mappings this process has now (a line each in `/proc/self/maps`).
fn maps_in_use() -> usize {
    std::fs::read("/proc/self/maps")
        .map_or(0, |maps| maps.iter().filter(|&&byte| byte == b'\n').count())
}

/// Refuses a pool of `wanted` threads that the system cannot map: past
/// `vm.max_map_count`, a thread that has started aborts the process in
/// std's start-up ("failed to set up alternative stack guard page"), which
/// no program can catch. The mappings in use are counted (a read of
/// `/proc/self/maps`) only when the pool would take over half the limit.
fn room_for_threads<Count: FnOnce() -> usize>(
    workers: usize,
    wanted: usize,
    limit: Option<MapLimit<Count>>,
) -> Result<(), SetupError> {
    let Some(MapLimit { limit, in_use }) = limit else {
        return Ok(());
    };
    let needed = wanted.saturating_mul(MAPS_PER_THREAD);
    if needed.saturating_add(MAPS_HEADROOM) <= limit / 2 {
        return Ok(());
    }
    let in_use = in_use();
    if in_use.saturating_add(needed).saturating_add(MAPS_HEADROOM) <= limit {
        return Ok(());
    }
    let fit = limit.saturating_sub(in_use).saturating_sub(MAPS_HEADROOM) / MAPS_PER_THREAD;
    Err(SetupError::TooManyThreads {
        workers,
        wanted,
        needed,
        limit,
        in_use,
        fit,
        setting: MAX_MAP_COUNT,
    })
}

/// A cancel wakes the watcher, which tells the machine.
fn wake_watcher_of(threads: &Threads) -> impl Fn() + Send + Sync + 'static {
    let bell = Arc::clone(&threads.watcher_bell);
    move || bell.ring(1)
}

/// Holds the workers until every thread has started (open) or one could
/// not be (shut): a failed start runs nothing.
#[derive(Default)]
struct Gate {
    open: Mutex<Option<bool>>,
    decided: Condvar,
}

impl Gate {
    fn set(&self, open: bool) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = Some(open);
        self.decided.notify_all();
    }

    fn wait_open(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self
            .decided
            .wait_while(open, |open| open.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        open.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(limit: usize, in_use: usize) -> Option<MapLimit<impl FnOnce() -> usize>> {
        Some(MapLimit {
            limit,
            in_use: move || in_use,
        })
    }

    #[test]
    fn a_pool_past_the_map_limit_is_refused_naming_the_setting() {
        // Linux's default limit, and what `fix_many -j 20000` wanted.
        let error = room_for_threads(20_000, 20_000, limit(65_530, 500)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "workers(20000): 20000 worker threads need about 80000 memory \
             mappings, but the system allows a process 65530 (vm.max_map_count, \
             /proc/sys/vm/max_map_count) and this one has 500: at most 16001 workers fit; use \
             fewer, or raise vm.max_map_count"
        );
        // Just over and just under what fits.
        assert!(room_for_threads(16_002, 16_002, limit(65_530, 500)).is_err());
        assert!(room_for_threads(20_000, 16_001, limit(65_530, 500)).is_ok());
        // A process that has mapped much already has room for fewer.
        assert!(room_for_threads(10_000, 10_000, limit(65_530, 30_000)).is_err());
    }

    #[test]
    fn small_pools_count_no_mappings_and_no_limit_refuses_nothing() {
        let uncounted = || -> usize { unreachable!("a small pool is not counted") };
        let small = Some(MapLimit {
            limit: 65_530,
            in_use: uncounted,
        });
        assert!(room_for_threads(64, 64, small).is_ok());
        assert!(room_for_threads(1_000_000, 1_000_000, None::<MapLimit<fn() -> usize>>).is_ok());
    }
}
