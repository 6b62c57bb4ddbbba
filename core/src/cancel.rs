//! A handle to stop a run from another thread: a signal handler, a UI, a test.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Stops a run when cancelled: no new phase starts, phases in flight finish
/// (the async driver cancels them), cleanups run, and the report is
/// complete, with the jobs never reached blocked for the reason
/// `cancelled`. Clones share one flag; it is safe to use from any thread.
///
/// ```
/// use dojobber::{CancelHandle, Context, Job, JobResult, Runner, Status};
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
/// assert_eq!((deploy.status, deploy.blocked_reason.as_deref()), (Status::Blocked, Some("cancelled")));
/// # Ok::<(), dojobber::SetupError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct CancelHandle {
    inner: Arc<Inner>,
}

/// Wakes a driver that waits on something other than the handle.
type Waker = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    cancelled: Mutex<bool>,
    changed: Condvar,
    /// Drivers waiting on channels, by subscription number.
    wakers: Mutex<Vec<(u64, Waker)>>,
    next_subscription: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field(
                "cancelled",
                &*self
                    .cancelled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            )
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
        *self.lock_flag() = true;
        self.inner.changed.notify_all();
        let wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, wake) in wakers.iter() {
            wake();
        }
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        *self.lock_flag()
    }

    /// Sleeps for `duration`, or less if cancelled meanwhile; tells whether
    /// the handle is cancelled.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let flag = self.lock_flag();
        let (flag, _) = self
            .inner
            .changed
            .wait_timeout_while(flag, duration, |cancelled| !*cancelled)
            .unwrap_or_else(PoisonError::into_inner);
        *flag
    }

    /// Calls `wake` when the handle is cancelled (at once if it already
    /// is), for as long as the subscription lives.
    pub(crate) fn subscribe(&self, wake: impl Fn() + Send + Sync + 'static) -> Subscription {
        let id = self
            .inner
            .next_subscription
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wake: Waker = Box::new(wake);
        if self.is_cancelled() {
            wake();
        }
        let mut wakers = self
            .inner
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        wakers.push((id, wake));
        Subscription {
            handle: self.clone(),
            id,
        }
    }

    fn lock_flag(&self) -> std::sync::MutexGuard<'_, bool> {
        self.inner
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A driver's wake-up call for a cancel; unsubscribes when dropped.
pub(crate) struct Subscription {
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
