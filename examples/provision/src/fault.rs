//! Fault injection for the crash tests, off unless asked for:
//! `PROVISION_KILL_AT=KIND:N` (`KIND` is `tree` or `database`, `N` counts
//! from 1) makes the process `SIGKILL` itself at the `N`th point of that
//! kind it passes, in the middle of a write. The fault suite
//! (`tests/provision_faults.rs`) crashes a run exactly where it chooses,
//! with no timing luck, then checks that the next run converges.
//!
//! `PROVISION_HOLD_AT=KIND:N` instead stops there, in the middle of the
//! write, prints `provision: held` on stderr and waits for a line (or the
//! end) on stdin: a test makes a second run meet this one mid-write.
//!
//! `PROVISION_NO_OPENAT2=1` makes path resolution go one component at a
//! time, as on a kernel without `openat2`.
//!
//! All three exist only with the `fault-injection` feature, which only the
//! `provision_faulty` example turns on: the `provision` program ignores
//! them, so no variable in a user's environment can kill or hold it.

#[cfg(feature = "fault-injection")]
use std::sync::OnceLock;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::{AtomicUsize, Ordering};

/// The environment variable that arms a kill.
pub const KILL_AT: &str = "PROVISION_KILL_AT";

/// The environment variable that arms a hold.
pub const HOLD_AT: &str = "PROVISION_HOLD_AT";

/// The environment variable that makes paths resolve without `openat2`.
pub const NO_OPENAT2: &str = "PROVISION_NO_OPENAT2";

/// What happens at the armed point.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Hold,
}

/// Where a run can be killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Within a change of the tree: between writing a temporary file and
    /// renaming it, between making a directory and setting its mode, ...
    Tree,
    /// Within a database write: inside a transaction, before its commit.
    Database,
}

#[cfg(feature = "fault-injection")]
impl Kind {
    fn parse(text: &str) -> Option<Kind> {
        match text {
            "tree" => Some(Kind::Tree),
            "database" => Some(Kind::Database),
            _ => None,
        }
    }
}

#[cfg(feature = "fault-injection")]
/// The armed point, read once: `None` when neither variable is set to
/// `KIND:N`.
fn armed() -> Option<(Action, Kind, usize)> {
    static ARMED: OnceLock<Option<(Action, Kind, usize)>> = OnceLock::new();
    *ARMED.get_or_init(|| {
        let parse = |variable, action| {
            let text = std::env::var(variable).ok()?;
            let (kind, nth) = text.split_once(':')?;
            Some((action, Kind::parse(kind)?, nth.parse().ok()?))
        };
        parse(KILL_AT, Action::Kill).or_else(|| parse(HOLD_AT, Action::Hold))
    })
}

/// Whether a kill is armed at a database point. Then the database is
/// written with `synchronous = OFF`: SQLite marks a rollback journal hot
/// only once it syncs it, in the commit, so a kill inside a transaction
/// leaves the hot journal that a kill inside a commit leaves (the window
/// a `kill -9` at a random moment hits) instead of a cold one.
pub(super) fn database_armed() -> bool {
    #[cfg(feature = "fault-injection")]
    return matches!(armed(), Some((Action::Kill, Kind::Database, _)));
    #[cfg(not(feature = "fault-injection"))]
    false
}

/// Whether the tests asked for path resolution without `openat2`.
pub(super) fn no_openat2() -> bool {
    #[cfg(feature = "fault-injection")]
    return std::env::var_os(NO_OPENAT2).is_some_and(|value| value == "1");
    #[cfg(not(feature = "fault-injection"))]
    false
}

/// A point where a crash would leave a write half done: the process kills
/// itself (or holds) here if this is the armed point.
#[cfg(not(feature = "fault-injection"))]
pub(super) fn point(_kind: Kind) {}

/// A point where a crash would leave a write half done: the process kills
/// itself (or holds) here if this is the armed point.
#[cfg(feature = "fault-injection")]
pub(super) fn point(kind: Kind) {
    static PASSED: AtomicUsize = AtomicUsize::new(0);
    let Some((action, armed, nth)) = armed() else {
        return;
    };
    if armed != kind || PASSED.fetch_add(1, Ordering::SeqCst) + 1 != nth {
        return;
    }
    match action {
        // SAFETY: kill(2) with our own pid; it does not return.
        #[allow(unsafe_code)] // the crash being injected
        Action::Kill => unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        },
        Action::Hold => {
            dojobber_cli::say!("provision: held");
            let _ = std::io::stdin().read_line(&mut String::new());
        }
    }
}
