//! What a user writes: the [`Job`] trait, its kinds, and the [`Context`]
//! every phase receives.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::phase::{JobKind, Phase};
use crate::storage::{GlobalStorage, LocalStorage};

#[cfg(feature = "tokio")]
pub(crate) mod asynchronous;

/// What `check`, `run` and `cleanup` return.
///
/// It is [`anyhow::Result`], so `?` works on any error type and
/// [`bail!`](crate::bail) makes a one-line failure:
///
/// ```
/// use dojobber::{bail, JobResult};
///
/// fn check_couch(space_left: u32) -> JobResult {
///     if space_left == 0 {
///         bail!("No space on couch.");
///     }
///     Ok(())
/// }
/// assert_eq!(check_couch(0).unwrap_err().to_string(), "No space on couch.");
/// ```
pub type JobResult = anyhow::Result<()>;

/// A shared handle to a job, as held by the graph and by other jobs' deps:
/// made by [`dep`] (or `async_dep`, feature `tokio`), cheap to clone, and
/// seen as the [`Job`] it holds.
pub struct JobRef<A = ()> {
    job: Arc<dyn Job<A>>,
    /// The same job's async phases, for the async driver.
    #[cfg(feature = "tokio")]
    async_job: Option<Arc<dyn asynchronous::AsyncJob<A>>>,
    /// The job's full type name, to tell apart two different jobs that
    /// claim one name.
    type_name: &'static str,
}

impl<A> JobRef<A> {
    /// The job's full Rust type (`my_suite::InstallTool`), which tells two
    /// different jobs that claim the same name apart in error messages.
    ///
    /// ```
    /// struct Kettle;
    /// impl dojobber::Job for Kettle {}
    /// assert!(dojobber::dep(Kettle).type_name().ends_with("::Kettle"));
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The job's async phases, when it was made by `async_dep`.
    #[cfg(feature = "tokio")]
    pub(crate) fn as_async(&self) -> Option<&dyn asynchronous::AsyncJob<A>> {
        self.async_job.as_deref()
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn new_async(
        job: Arc<dyn Job<A>>,
        async_job: Arc<dyn asynchronous::AsyncJob<A>>,
        type_name: &'static str,
    ) -> Self {
        JobRef {
            job,
            async_job: Some(async_job),
            type_name,
        }
    }
}

impl<A> Clone for JobRef<A> {
    fn clone(&self) -> Self {
        JobRef {
            job: Arc::clone(&self.job),
            #[cfg(feature = "tokio")]
            async_job: self.async_job.clone(),
            type_name: self.type_name,
        }
    }
}

impl<A> std::ops::Deref for JobRef<A> {
    type Target = dyn Job<A>;
    fn deref(&self) -> &Self::Target {
        &*self.job
    }
}

/// Wraps a job value into a [`JobRef`], for lists of deps.
///
/// ```
/// use dojobber::{dep, Job, JobRef};
///
/// struct Kettle;
/// impl Job for Kettle {}
/// struct Tea;
/// impl Job for Tea {
///     fn deps(&self, _args: &()) -> Vec<JobRef<()>> {
///         vec![dep(Kettle)]
///     }
/// }
/// assert_eq!(Tea.deps(&()).len(), 1);
/// ```
pub fn dep<A, J: Job<A>>(job: J) -> JobRef<A> {
    JobRef {
        job: Arc::new(job),
        #[cfg(feature = "tokio")]
        async_job: None,
        type_name: std::any::type_name::<J>(),
    }
}

/// A single-purpose, idempotent piece of work.
///
/// `check` verifies that the world is as it should be; `run` tries to make
/// it so. The engine calls `check`, and only if it fails, `run` and then
/// `check` again (the recheck). `A` is the type of the user's arguments,
/// handed to every phase.
///
/// Everything has a default, so a job states only what differs:
///
/// ```
/// use dojobber::{bail, dep, Context, Job, JobRef, JobResult};
///
/// struct Args { movie: String }
///
/// struct ValidateMovie;
/// impl Job<Args> for ValidateMovie {
///     fn check(&self, cx: &mut Context<'_, Args>) -> JobResult {
///         if cx.args().movie != "MST3K" {
///             bail!("{} not one of the available movies.", cx.args().movie);
///         }
///         Ok(())
///     }
/// }
///
/// struct InsertDvd;
/// impl Job<Args> for InsertDvd {
///     fn name(&self) -> String { "InsertDVD".into() }
///     fn deps(&self, _args: &Args) -> Vec<JobRef<Args>> { vec![dep(ValidateMovie)] }
///     fn check(&self, _cx: &mut Context<'_, Args>) -> JobResult { Ok(()) }
/// }
/// # assert_eq!(InsertDvd.name(), "InsertDVD");
/// # assert_eq!(ValidateMovie.name(), "ValidateMovie");
/// ```
///
/// Panics inside `check`, `run`, `cleanup` or `deps` are caught by the
/// drivers and become that job's failure.
pub trait Job<A = ()>: Any + Send + Sync {
    /// The job's name, unique in its graph: two values with the same name
    /// are the same job. Defaults to the type's short name (`PickTimeAndDate`);
    /// jobs built from data override it (`Invite Lawyer Cat`).
    fn name(&self) -> String {
        short_type_name(std::any::type_name::<Self>())
    }

    /// The jobs this one needs, in declaration order; that order decides the
    /// traversal order. Called when the graph is discovered, before the
    /// run, and again whenever it is rediscovered (`Runner::only`,
    /// `Runner::graph`, and so `--only`, `--list`, `--graph-before`): it
    /// should only describe, never change the world.
    fn deps(&self, _args: &A) -> Vec<JobRef<A>> {
        Vec::new()
    }

    /// How the engine treats this job's phases.
    fn kind(&self) -> JobKind {
        JobKind::Normal
    }

    /// How many tries this job gets; `None` takes the run's default.
    fn tries(&self) -> Option<u32> {
        None
    }

    /// The least time between the end of one try and the start of the
    /// next; `None` takes the run's default.
    fn retry_delay(&self) -> Option<Duration> {
        None
    }

    /// The longest time one phase (check, run, recheck) may take; `None`,
    /// the default, is no limit. At the limit, the phase's try fails with
    /// "timed out after 1s" (its record ends there), whatever the driver.
    /// The async driver cancels an async phase; a thread cannot be
    /// stopped, so a plain phase goes on: its job is not retried, and the
    /// run does not end, until it returns; the error then says when
    /// ("timed out after 1s (it returned after 1.5s)"). A run that has
    /// nothing left but such phases says so
    /// ([`Event::WaitingForAbandoned`](crate::Event::WaitingForAbandoned)),
    /// and a program can still exit without them, writing the report as it
    /// stands ([`CancelHandle::report_if_ended_now`](crate::CancelHandle::report_if_ended_now);
    /// a second Ctrl-C in dojobber-cli). With one worker, a suite with a
    /// time limit runs its phases on a worker thread while the calling
    /// thread watches the limits.
    fn time_limit(&self) -> Option<Duration> {
        None
    }

    /// The concurrency group this job belongs to: the runner can limit how
    /// many jobs of a group are in a try at once
    /// ([`Runner::group_limit`](crate::Runner::group_limit)), whatever the
    /// number of workers. `None`, the default: no group.
    fn concurrency_group(&self) -> Option<String> {
        None
    }

    /// Where the job must run when a suite is spread over several hosts
    /// (crate `dojobber-nats`): a label that a worker must carry, e.g.
    /// `"db"`. `None`, the default: any worker. Local runs ignore it.
    ///
    /// ```
    /// use dojobber::Job;
    ///
    /// struct CreateTable;
    /// impl Job for CreateTable {
    ///     fn runs_on(&self) -> Option<String> { Some("db".into()) }
    /// }
    /// assert_eq!(CreateTable.runs_on().as_deref(), Some("db"));
    /// ```
    fn runs_on(&self) -> Option<String> {
        None
    }

    /// Verify the desired state. `Ok` means the job is done.
    ///
    /// The default fails, so a job that forgets to write one never passes
    /// by accident.
    fn check(&self, _cx: &mut Context<'_, A>) -> JobResult {
        anyhow::bail!("{} has no check", self.name())
    }

    /// Try to reach the desired state. For [`JobKind::Normal`] its result is
    /// only reported: the recheck decides. For [`JobKind::RunOnly`] it decides.
    fn run(&self, _cx: &mut Context<'_, A>) -> JobResult {
        Ok(())
    }

    /// Undo temporary things `run` set up; called once after the whole run
    /// if `run` executed at least once.
    fn cleanup(&self, _cx: &mut Context<'_, A>) -> JobResult {
        Ok(())
    }
}

/// A dummy job whose name and deps are decided at run time: the way to
/// group jobs built from data.
///
/// ```
/// use dojobber::{dep, Group, Job, JobKind};
///
/// struct Invite(&'static str);
/// impl Job for Invite {
///     fn name(&self) -> String { format!("Invite {}", self.0) }
/// }
///
/// let friends = ["Wendell Bagg", "Lawyer Cat"];
/// let group: Group = Group::new("InviteFriends")
///     .with_deps(friends.iter().map(|f| dep(Invite(f))));
/// assert_eq!(group.kind(), JobKind::Dummy);
/// assert_eq!(group.deps(&()).len(), 2);
/// assert_eq!(group.name(), "InviteFriends");
/// ```
pub struct Group<A = ()> {
    name: String,
    deps: Vec<JobRef<A>>,
}

impl<A> Group<A> {
    /// A group with no deps yet.
    pub fn new(name: impl Into<String>) -> Self {
        Group {
            name: name.into(),
            deps: Vec::new(),
        }
    }

    /// Adds one dep after those already there.
    pub fn with_dep(mut self, job: JobRef<A>) -> Self {
        self.deps.push(job);
        self
    }

    /// Adds deps after those already there, in the iterator's order.
    pub fn with_deps(mut self, jobs: impl IntoIterator<Item = JobRef<A>>) -> Self {
        self.deps.extend(jobs);
        self
    }
}

impl<A: 'static> Job<A> for Group<A> {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn deps(&self, _args: &A) -> Vec<JobRef<A>> {
        self.deps.clone()
    }
    fn kind(&self) -> JobKind {
        JobKind::Dummy
    }
}

/// What a phase of a job gets: the run's arguments, the job's local storage
/// for this try, the run's global storage, and which phase this is.
pub struct Context<'a, A> {
    args: &'a A,
    local: &'a mut LocalStorage,
    global: &'a GlobalStorage,
    phase: Phase,
    attempt: u32,
}

impl<'a, A> Context<'a, A> {
    /// Assembles a context; drivers and test harnesses call this.
    ///
    /// ```
    /// use dojobber::{Context, GlobalStorage, LocalStorage, Phase};
    ///
    /// let (mut local, global) = (LocalStorage::default(), GlobalStorage::default());
    /// let cx = Context::new(&7u8, &mut local, &global, Phase::Recheck, 2);
    /// assert!(cx.is_recheck());
    /// assert_eq!((*cx.args(), cx.attempt()), (7, 2));
    /// ```
    pub fn new(
        args: &'a A,
        local: &'a mut LocalStorage,
        global: &'a GlobalStorage,
        phase: Phase,
        attempt: u32,
    ) -> Self {
        Context {
            args,
            local,
            global,
            phase,
            attempt,
        }
    }

    /// The user's arguments, the same for every job of the run.
    pub fn args(&self) -> &'a A {
        self.args
    }

    /// This job's storage for the current try: check, run and recheck share
    /// it; the next try starts empty.
    pub fn local(&self) -> &LocalStorage {
        self.local
    }

    /// This job's storage for the current try, to change it.
    pub fn local_mut(&mut self) -> &mut LocalStorage {
        self.local
    }

    /// Storage shared by every job of the run, safe across threads. Its
    /// serde values ([`GlobalStorage::insert_shared`],
    /// [`get_shared`](GlobalStorage::get_shared)) reach every host of a
    /// run over several hosts, with the same calls as in a local run.
    pub fn global(&self) -> &'a GlobalStorage {
        self.global
    }

    /// The phase being performed.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether this call of `check` is the recheck after `run`.
    pub fn is_recheck(&self) -> bool {
        self.phase == Phase::Recheck
    }

    /// Which try this is, counting from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// `a::b::Foo<c::Bar>` becomes `Foo<Bar>`: module paths dropped from every
/// path segment, generics kept.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (i, c) in full.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            continue;
        }
        push_last_segment(&mut out, &full[segment_start..i]);
        out.push(c);
        segment_start = i + c.len_utf8();
    }
    push_last_segment(&mut out, &full[segment_start..]);
    out
}

fn push_last_segment(out: &mut String, path: &str) {
    out.push_str(path.rsplit("::").next().unwrap_or(path));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_type_name_drops_module_paths_everywhere() {
        assert_eq!(
            short_type_name("watch_movie::PickTimeAndDate"),
            "PickTimeAndDate"
        );
        assert_eq!(
            short_type_name("a::b::Foo<c::Bar, d::Baz>"),
            "Foo<Bar, Baz>"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(
            short_type_name("x::Wrap<&'static str>"),
            "Wrap<&'static str>"
        );
    }

    #[test]
    fn default_name_is_the_short_type_name() {
        struct CleanCouch;
        impl Job for CleanCouch {}
        assert_eq!(CleanCouch.name(), "CleanCouch");
    }
}
