//! A handle to stop a run from another thread: a signal handler, a UI, a test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::report::Report;

/// Stops a run when cancelled: no new phase starts, phases in flight finish
/// (the async driver cancels them), cleanups run, and the report is
/// complete, with the jobs never reached blocked for the reason
/// `cancelled`. Clones share one flag; it is safe to use from any thread.
///
/// ```
/// use dojobber::{CancelHandle, Context, Job, JobResult, Runner, Status, StopReason};
///
/// struct Pull;
/// impl Job<CancelHandle> for Pull {
///     fn check(&self, cx: &mut Context<'_, CancelHandle>) -> JobResult {
///         cx.args().cancel(); // someone pressed Ctrl-C meanwhile
///         Ok(())
///     }
/// }
/// struct Deploy;
/// impl Job<CancelHandle> for Deploy {
///     fn deps(&self, _: &CancelHandle) -> Vec<dojobber::JobRef<CancelHandle>> { vec![dojobber::dep(Pull)] }
/// }
/// let cancel = CancelHandle::new();
/// let report = Runner::new(Deploy, cancel.clone()).cancel_handle(cancel).run()?.into_report();
/// let deploy = report.job("Deploy").unwrap();
/// assert_eq!((deploy.status(), deploy.blocked_reason()), (Status::Blocked, Some(StopReason::Cancelled)));
/// # Ok::<(), dojobber::SetupError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelHandle {
    inner: Arc<Inner>,
}

/// Wakes a driver's watcher.
type Waker = Box<dyn Fn() + Send + Sync>;

/// The report of a run under way, as if it ended now.
type Reporter = Box<dyn Fn() -> Option<Report> + Send + Sync>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Drivers' watchers to wake, by subscription number.
    wakers: Mutex<Vec<(u64, Waker)>>,
    next_subscription: std::sync::atomic::AtomicU64,
    /// The runs under way that this handle stops, by subscription number:
    /// the latest reports.
    reporters: Mutex<Vec<(u64, Reporter)>>,
    /// Whether a run has lent its reports (see [`CancelHandle::has_run`]).
    has_run: AtomicBool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.cancelled.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    /// A handle not cancelled yet.
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// Cancels the run; later calls change nothing.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        let wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, wake) in wakers.iter() {
            wake();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called. Inlined: drivers ask
    /// once per phase.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Calls `wake` when the handle is cancelled (at once if it already
    /// is), for as long as the subscription lives: how a driver's watcher
    /// that sleeps learns of a cancel. `wake` runs on the cancelling thread
    /// and must be quick.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// let handle = dojobber::CancelHandle::new();
    /// let rung = Arc::new(AtomicBool::new(false));
    /// let _subscription = handle.subscribe({
    ///     let rung = Arc::clone(&rung);
    ///     move || rung.store(true, Ordering::SeqCst)
    /// });
    /// handle.cancel();
    /// assert!(rung.load(Ordering::SeqCst));
    /// ```
    pub fn subscribe(&self, wake: impl Fn() + Send + Sync + 'static) -> Subscription {
        let id = self
            .inner
            .next_subscription
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wake: Waker = Box::new(wake);
        // Under the lock, so a cancel now either is seen here or calls it.
        let mut wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.is_cancelled() {
            wake();
        }
        wakers.push((id, wake));
        drop(wakers);
        Subscription {
            handle: self.clone(),
            id,
        }
    }
}

impl CancelHandle {
    /// The report of the run this handle stops, as it would read if the
    /// program ended now without waiting for the phases in flight (see
    /// [`Machine::report_if_ended_now`](crate::engine::Machine::report_if_ended_now)):
    /// what a program writes before it exits on a second Ctrl-C, when a
    /// phase will not return. `None` when no run is under way.
    ///
    /// ```
    /// let handle = dojobber::CancelHandle::new();
    /// assert!(handle.report_if_ended_now().is_none());
    /// ```
    pub fn report_if_ended_now(&self) -> Option<Report> {
        let reporters = self
            .inner
            .reporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        reporters.last().and_then(|(_, report)| report())
    }

    /// Whether a run this handle stops has started (it may have ended
    /// since): with [`report_if_ended_now`](Self::report_if_ended_now)
    /// `None`, the run has ended, and its own report is on its way. A
    /// signal handler tells "no run yet" from "the run is over" by it.
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    ///
    /// let runner = Runner::new(Group::<()>::new("Nothing"), ());
    /// let handle = runner.current_cancel_handle();
    /// assert!(!handle.has_run());
    /// runner.run()?;
    /// assert!(handle.has_run() && handle.report_if_ended_now().is_none());
    /// # Ok::<(), dojobber::SetupError>(())
    /// ```
    pub fn has_run(&self) -> bool {
        self.inner.has_run.load(Ordering::SeqCst)
    }

    /// Makes `report` answer [`report_if_ended_now`](Self::report_if_ended_now)
    /// while the subscription lives. It is called under the handle's lock,
    /// so once the subscription is dropped it is never called again.
    pub(crate) fn lend_reports(
        &self,
        report: impl Fn() -> Option<Report> + Send + Sync + 'static,
    ) -> ReportSubscription {
        self.inner.has_run.store(true, Ordering::SeqCst);
        let id = self.inner.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.inner
            .reporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, Box::new(report)));
        ReportSubscription {
            handle: self.clone(),
            id,
        }
    }
}

/// A run's reports lent to its cancel handle; withdrawn when dropped.
pub(crate) struct ReportSubscription {
    handle: CancelHandle,
    id: u64,
}

impl Drop for ReportSubscription {
    fn drop(&mut self) {
        let inner = &self.handle.inner;
        let mut reporters = inner
            .reporters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        reporters.retain(|(id, _)| *id != self.id);
    }
}

/// A driver's wake-up call for a cancel, from
/// [`CancelHandle::subscribe`]; unsubscribes when dropped.
#[must_use = "dropping the subscription unsubscribes at once"]
pub struct Subscription {
    handle: CancelHandle,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let inner = &self.handle.inner;
        let mut wakers = inner.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        wakers.retain(|(id, _)| *id != self.id);
    }
}
