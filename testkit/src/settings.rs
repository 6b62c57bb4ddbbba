//! Random run settings for a user's own suite: what a property test
//! applies to the real [`Runner`] it builds.

use std::time::Duration;

use dojobber::Runner;
use proptest::prelude::*;

/// Settings of one real run: what [`run_settings`] draws and
/// [`apply`](RunSettings::apply) sets on a runner. A suite whose jobs do
/// not depend on each other's timing ends the same whatever they are
/// (no-act and fail-fast aside), and every run keeps the engine's rules:
/// [`record`](crate::record) the run, then
/// [`check_invariants`](crate::check_invariants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSettings {
    /// Phases at once ([`Runner::workers`]).
    pub workers: usize,
    /// Default tries ([`Runner::tries`]).
    pub tries: u32,
    /// Default retry delay ([`Runner::retry_delay`]), in real time.
    pub retry_delay: Duration,
    /// Only check ([`Runner::no_act`]).
    pub no_act: bool,
    /// Start no try after a job failed for good ([`Runner::fail_fast`]).
    pub fail_fast: bool,
}

impl Default for RunSettings {
    /// The runner's own defaults but for the retry delay: one worker,
    /// 3 tries, no delay, acting, no fail-fast.
    fn default() -> Self {
        RunSettings {
            workers: 1,
            tries: 3,
            retry_delay: Duration::ZERO,
            no_act: false,
            fail_fast: false,
        }
    }
}

impl RunSettings {
    /// `runner` with these settings; the rest of it (observers, group
    /// limits, deadline, output) as it was.
    ///
    /// ```
    /// use dojobber::{Group, Runner};
    /// use dojobber_testkit::{RunSettings, SimConfig};
    ///
    /// let settings = RunSettings { workers: 4, ..RunSettings::default() };
    /// let runner = settings.apply(Runner::new(Group::<()>::new("Tea"), ()));
    /// assert_eq!(SimConfig::from_runner(&runner).machine.workers, 4);
    /// ```
    pub fn apply<A: 'static>(&self, runner: Runner<A>) -> Runner<A> {
        runner
            .workers(self.workers)
            .tries(self.tries)
            .retry_delay(self.retry_delay)
            .no_act(self.no_act)
            .fail_fast(self.fail_fast)
    }

    /// The same settings, acting: for a run that must change the world,
    /// such as both runs of [`check_idempotent`](crate::check_idempotent).
    pub fn acting(&self) -> RunSettings {
        RunSettings {
            no_act: false,
            ..self.clone()
        }
    }
}

/// Random [`RunSettings`]: 1 to 8 workers (one run in three with 1, the
/// reference order), 1 to 4 tries, a retry delay of 0 to 2 ms, no-act one
/// run in five, fail-fast one run in four. The delays are real, so they
/// are short.
///
/// ```
/// use proptest::prelude::*;
/// use dojobber_testkit::strategy::run_settings;
///
/// proptest! {
///     #![proptest_config(ProptestConfig::with_cases(8))]
///     fn settings_are_in_range(settings in run_settings()) {
///         prop_assert!((1..=8).contains(&settings.workers) && settings.tries >= 1);
///     }
/// }
/// # settings_are_in_range();
/// ```
pub fn run_settings() -> BoxedStrategy<RunSettings> {
    (
        prop_oneof![1 => Just(1usize), 2 => 2..=8usize],
        1..=4u32,
        0..=2u64,
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.25),
    )
        .prop_map(
            |(workers, tries, delay_ms, no_act, fail_fast)| RunSettings {
                workers,
                tries,
                retry_delay: Duration::from_millis(delay_ms),
                no_act,
                fail_fast,
            },
        )
        .boxed()
}
