//! User code's panics, caught: the value a caught panic leaves and the
//! values whose `Drop` is user code (job values, stored values, observers,
//! a panic's payload) go through here, so one panicking `Drop` fails one
//! job and never the run.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Drops `value`, catching a panic in its `Drop` (user code: a job, a
/// stored value, a panic's payload). A panic payload that panics again
/// when dropped is leaked: nothing could drop it.
pub(crate) fn drop_caught<T>(value: T) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(value)))
        && let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload)))
    {
        std::mem::forget(again);
    }
}

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a
/// `String`), or a placeholder for any other payload.
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a payload that is not a string)")
}

/// The message of a caught panic (`panicked: ...`, as its failure says);
/// its payload is user code's value too, dropped as one.
pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = format!("panicked: {}", panic_text(&*payload));
    drop_caught(payload);
    message
}
