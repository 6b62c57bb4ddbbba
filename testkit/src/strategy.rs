//! [proptest](mod@proptest) strategies for random suites: job graphs of a given shape
//! (size, fan-in, depth) with random scripts, and random run configurations.
//!
//! ```
//! use proptest::prelude::*;
//! use dojobber_testkit::{check_invariants, simulate, strategy::{scenarios, SuiteShape}};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(16))]
//!     // In a test file, put `#[test]` here.
//!     fn every_run_keeps_the_rules((suite, config) in scenarios(SuiteShape::default())) {
//!         let sim = simulate(&suite, config);
//!         if let Err(violation) = check_invariants(&sim) {
//!             return Err(TestCaseError::fail(format!("{violation}\n{}", sim.trace.render())));
//!         }
//!     }
//! }
//! # every_run_keeps_the_rules();
//! ```

use std::ops::RangeInclusive;
use std::time::Duration;

use dojobber::JobKind;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::mock::{Act, Mock, Rule, Suite};
use crate::sim::SimConfig;

pub use crate::settings::run_settings;

/// The message of every panic the strategies script, so a panic hook can
/// tell them from real ones (see [`quiet_scripted_panics`]).
pub const SCRIPTED_PANIC: &str = "scripted panic";

/// The message of every failure the strategies script.
pub const SCRIPTED_FAILURE: &str = "scripted failure";

/// The shape of random job graphs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphShape {
    /// How many jobs, root included. Fewer when `max_deps` and `max_depth`
    /// leave no room for more (with `max_deps: 1, max_depth: 3`, at most 3).
    pub jobs: RangeInclusive<usize>,
    /// Fan-in: the most deps one job has.
    pub max_deps: usize,
    /// The most jobs on one chain of deps from the root, root included.
    pub max_depth: usize,
}

impl Default for GraphShape {
    /// 1 to 12 jobs, up to 3 deps each, chains of up to 5.
    fn default() -> Self {
        GraphShape {
            jobs: 1..=12,
            max_deps: 3,
            max_depth: 5,
        }
    }
}

/// What random scripts may contain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptShape {
    /// Own tries, from 1 to this (or the run's default).
    pub max_tries: u32,
    /// Own retry delays, from zero to this, in whole milliseconds (or the
    /// run's default). Zero: every job's own delay is zero.
    pub max_retry_delay: Duration,
    /// Simulated time per phase, from zero to this, in whole milliseconds.
    pub max_takes: Duration,
    /// Whether phases may panic, not only fail.
    pub panics: bool,
    /// Whether jobs may be dummy or run-only, not only normal.
    pub kinds: bool,
    /// Whether cleanups may fail.
    pub failing_cleanups: bool,
    /// Whether jobs may have a time limit per phase (from 1 ms to
    /// `max_takes`), so that some phases time out.
    pub time_limits: bool,
    /// Whether jobs may belong to the concurrency groups [`GROUPS`].
    pub groups: bool,
}

/// The concurrency groups random jobs may belong to.
pub const GROUPS: [&str; 2] = ["g0", "g1"];

impl Default for ScriptShape {
    /// Up to 4 tries, delays up to 5 s, phases up to 2 s, panics, every
    /// kind, failing cleanups, time limits, groups.
    fn default() -> Self {
        ScriptShape {
            max_tries: 4,
            max_retry_delay: Duration::from_secs(5),
            max_takes: Duration::from_secs(2),
            panics: true,
            kinds: true,
            failing_cleanups: true,
            time_limits: true,
            groups: true,
        }
    }
}

impl ScriptShape {
    /// Scripts a real run can replay as a simulation does: no retry delay
    /// (so no sleeping), no simulated time, no time limit.
    pub fn without_time() -> ScriptShape {
        ScriptShape {
            max_retry_delay: Duration::ZERO,
            max_takes: Duration::ZERO,
            time_limits: false,
            ..ScriptShape::default()
        }
    }
}

/// The shape of random run configurations (see [`run_configs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunShape {
    /// Default tries, from 1 to this.
    pub max_tries: u32,
    /// Default retry delay, from zero to this, in whole milliseconds.
    pub max_retry_delay: Duration,
    /// Whether runs may be no-act (one time in five).
    pub no_act: bool,
    /// Whether runs may put off their cleanups (one time in ten).
    pub cleanup_off: bool,
    /// Phases in flight at once, from 1 to this (half the runs use 1).
    pub max_workers: usize,
    /// Whether runs may be fail-fast (one time in five).
    pub fail_fast: bool,
    /// Whether runs may have a deadline, up to this (one time in five).
    pub max_deadline: Option<Duration>,
    /// Whether runs may be cancelled, up to this time (one time in five).
    pub max_cancel_at: Option<Duration>,
    /// Whether runs may limit the concurrency groups [`GROUPS`] (to 1 or 2).
    pub group_limits: bool,
}

impl Default for RunShape {
    /// The sequential runs of the reference: up to 4 tries, delays up to
    /// 5 s, no-act and put-off cleanups allowed; one phase at a time, no
    /// fail-fast, deadline, cancellation or group limit.
    fn default() -> Self {
        RunShape {
            max_tries: 4,
            max_retry_delay: Duration::from_secs(5),
            no_act: true,
            cleanup_off: true,
            max_workers: 1,
            fail_fast: false,
            max_deadline: None,
            max_cancel_at: None,
            group_limits: false,
        }
    }
}

impl RunShape {
    /// Every option the machine has: up to 4 workers, fail-fast,
    /// deadlines and cancellations within 30 s, group limits.
    pub fn everything() -> RunShape {
        RunShape {
            max_workers: 4,
            fail_fast: true,
            max_deadline: Some(Duration::from_secs(30)),
            max_cancel_at: Some(Duration::from_secs(30)),
            group_limits: true,
            ..RunShape::default()
        }
    }
}

/// The shape of random suites, and of the runs to run them with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuiteShape {
    /// The graph.
    pub graph: GraphShape,
    /// The scripts.
    pub script: ScriptShape,
    /// The runs, for [`scenarios`].
    pub run: RunShape,
}

impl SuiteShape {
    /// Default graphs, with scripts and runs a real sequential run
    /// replays exactly as a simulation does: no time (no delay, no
    /// simulated time, no time limit), one phase at a time.
    pub fn without_time() -> SuiteShape {
        SuiteShape {
            graph: GraphShape::default(),
            script: ScriptShape::without_time(),
            run: RunShape {
                max_retry_delay: Duration::ZERO,
                ..RunShape::default()
            },
        }
    }
}

/// Random suites of mocks named `J0` (the root), `J1`, ..., whose graph
/// has the given shape and whose mocks follow random scripts (see
/// [`mocks`]).
///
/// Every job is reachable from the root; deps are in random declaration
/// order; shared deps (diamonds) are common.
pub fn suites(shape: SuiteShape) -> BoxedStrategy<Suite> {
    let SuiteShape { graph, script, .. } = shape;
    let max_deps = graph.max_deps;
    let max_depth = graph.max_depth;
    let jobs = (*graph.jobs.start()).max(1)..=(*graph.jobs.end()).max(1);
    jobs.prop_flat_map(move |n| {
        (
            vec(any::<Index>(), n),
            vec(vec((any::<Index>(), any::<Index>()), 0..=max_deps), n),
            vec(mocks(script.clone()), n),
        )
    })
    .prop_map(move |(parents, extras, mocks)| {
        let deps = build_graph(&parents, &extras, max_deps, max_depth);
        let names: Vec<String> = (0..deps.len()).map(|i| format!("J{i}")).collect();
        Suite::new(
            mocks
                .into_iter()
                .zip(deps)
                .enumerate()
                .map(|(i, (mock, deps))| {
                    mock.renamed(names[i].clone())
                        .deps(deps.iter().map(|&d| names[d].clone()))
                }),
        )
    })
    .boxed()
}

/// The deps of each job, root first: a tree from the root (each job's
/// parent picked among earlier jobs with room), plus extra edges to jobs
/// deeper down, so every path goes strictly down a level and the graph
/// has no cycle and no chain longer than `max_depth`.
fn build_graph(
    parents: &[Index],
    extras: &[Vec<(Index, Index)>],
    max_deps: usize,
    max_depth: usize,
) -> Vec<Vec<usize>> {
    let mut deps: Vec<Vec<usize>> = vec![Vec::new()];
    let mut level = vec![1usize];
    for parent in parents.iter().skip(1) {
        let room: Vec<usize> = (0..deps.len())
            .filter(|&i| deps[i].len() < max_deps && level[i] < max_depth)
            .collect();
        if room.is_empty() {
            break;
        }
        let p = room[parent.index(room.len())];
        let new = deps.len();
        deps[p].push(new);
        level.push(level[p] + 1);
        deps.push(Vec::new());
    }
    for (i, extra) in extras.iter().enumerate().take(deps.len()) {
        for (target, place) in extra {
            if deps[i].len() >= max_deps {
                break;
            }
            let deeper: Vec<usize> = (0..deps.len())
                .filter(|&j| level[j] > level[i] && !deps[i].contains(&j))
                .collect();
            if deeper.is_empty() {
                break;
            }
            let j = deeper[target.index(deeper.len())];
            let at = place.index(deps[i].len() + 1);
            deps[i].insert(at, j);
        }
    }
    deps
}

/// One scripted act: mostly passes and failures, with panics if allowed.
pub fn acts(panics: bool) -> BoxedStrategy<Act> {
    if panics {
        prop_oneof![
            5 => Just(Act::Pass),
            4 => Just(Act::fail(SCRIPTED_FAILURE)),
            1 => Just(Act::Panic(SCRIPTED_PANIC.into())),
        ]
        .boxed()
    } else {
        prop_oneof![
            5 => Just(Act::Pass),
            4 => Just(Act::fail(SCRIPTED_FAILURE)),
        ]
        .boxed()
    }
}

/// A rule per try (one act per try, the last repeating), or sometimes
/// "fail until the run has executed K times".
fn rules(panics: bool, max_tries: u32) -> BoxedStrategy<Rule> {
    let per_try = vec(acts(panics), 1..=max_tries.max(1) as usize + 1).prop_map(Rule::PerTry);
    prop_oneof![
        4 => per_try,
        1 => (0..=3u32).prop_map(|runs| Rule::UntilRuns { runs, message: SCRIPTED_FAILURE.into() }),
    ]
    .boxed()
}

fn millis_up_to(max: Duration) -> BoxedStrategy<Duration> {
    let max = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max == 0 {
        return Just(Duration::ZERO).boxed();
    }
    prop_oneof![
        1 => Just(Duration::ZERO),
        2 => (0..=max).prop_map(Duration::from_millis),
    ]
    .boxed()
}

/// Random mocks (named `Job`, without deps): kind, own tries and retry
/// delay (or none), simulated time per phase, and per try what check,
/// recheck, run and cleanup do.
pub fn mocks(shape: ScriptShape) -> BoxedStrategy<Mock> {
    let kind = if shape.kinds {
        prop_oneof![
            6 => Just(JobKind::Normal),
            1 => Just(JobKind::Dummy),
            1 => Just(JobKind::RunOnly),
        ]
        .boxed()
    } else {
        Just(JobKind::Normal).boxed()
    };
    let tries = proptest::option::weighted(0.7, 1..=shape.max_tries.max(1));
    let delay = proptest::option::weighted(0.7, millis_up_to(shape.max_retry_delay));
    let takes = vec(millis_up_to(shape.max_takes), 4);
    let check = rules(shape.panics, shape.max_tries);
    let recheck = proptest::option::of(rules(shape.panics, shape.max_tries));
    let run = vec(acts(shape.panics), 1..=shape.max_tries.max(1) as usize).prop_map(Rule::PerTry);
    let time_limit = if shape.time_limits && !shape.max_takes.is_zero() {
        let max = u64::try_from(shape.max_takes.as_millis()).unwrap_or(u64::MAX);
        proptest::option::weighted(0.2, (1..=max).prop_map(Duration::from_millis)).boxed()
    } else {
        Just(None).boxed()
    };
    let group = if shape.groups {
        proptest::option::weighted(0.3, proptest::sample::select(GROUPS.to_vec())).boxed()
    } else {
        Just(None).boxed()
    };
    let cleanup = if shape.failing_cleanups {
        prop_oneof![5 => Just(Act::Pass), 1 => Just(Act::fail(SCRIPTED_FAILURE))].boxed()
    } else {
        Just(Act::Pass).boxed()
    };
    let limits = (time_limit, group);
    (
        kind, tries, delay, takes, check, recheck, run, cleanup, limits,
    )
        .prop_map(
            |(kind, tries, delay, takes, check, recheck, run, cleanup, (time_limit, group))| {
                let mut mock = Mock::new("Job")
                    .kind(kind)
                    .check_rule(check)
                    .run_rule(run)
                    .cleanup(cleanup);
                if let Some(tries) = tries {
                    mock = mock.tries(tries);
                }
                if let Some(delay) = delay {
                    mock = mock.retry_delay(delay);
                }
                if let Some(recheck) = recheck {
                    mock = mock.recheck_rule(recheck);
                }
                if let Some(limit) = time_limit {
                    mock = mock.time_limit(limit);
                }
                if let Some(group) = group {
                    mock = mock.group(group);
                }
                let phases = [
                    dojobber::Phase::Check,
                    dojobber::Phase::Run,
                    dojobber::Phase::Recheck,
                    dojobber::Phase::Cleanup,
                ];
                for (phase, takes) in phases.into_iter().zip(takes) {
                    mock = mock.takes_for(phase, takes);
                }
                mock
            },
        )
        .boxed()
}

/// Random sequential run configurations: default tries from 1 to
/// `max_tries`, a default retry delay up to `max_retry_delay` (whole
/// milliseconds), no-act one time in five, cleanup off one time in ten.
/// The same as [`run_configs`] with a [`RunShape::default`] of those limits.
pub fn sim_configs(max_tries: u32, max_retry_delay: Duration) -> BoxedStrategy<SimConfig> {
    run_configs(RunShape {
        max_tries,
        max_retry_delay,
        ..RunShape::default()
    })
}

fn sometimes<T: std::fmt::Debug + Clone + 'static>(
    allowed: bool,
    value: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    if allowed {
        proptest::option::weighted(0.2, value).boxed()
    } else {
        Just(None).boxed()
    }
}

/// Random run configurations of the given shape.
pub fn run_configs(shape: RunShape) -> BoxedStrategy<SimConfig> {
    let workers = if shape.max_workers > 1 {
        prop_oneof![Just(1), 2..=shape.max_workers].boxed()
    } else {
        Just(1).boxed()
    };
    let limits = if shape.group_limits {
        vec(proptest::option::of(1..=2usize), GROUPS.len()).boxed()
    } else {
        Just(vec![None; GROUPS.len()]).boxed()
    };
    (
        (
            1..=shape.max_tries.max(1),
            millis_up_to(shape.max_retry_delay),
        ),
        proptest::bool::weighted(if shape.no_act { 0.2 } else { 0.0 }),
        proptest::bool::weighted(if shape.cleanup_off { 0.9 } else { 1.0 }),
        workers,
        proptest::bool::weighted(if shape.fail_fast { 0.2 } else { 0.0 }),
        sometimes(
            shape.max_deadline.is_some(),
            millis_up_to(shape.max_deadline.unwrap_or_default()),
        ),
        sometimes(
            shape.max_cancel_at.is_some(),
            millis_up_to(shape.max_cancel_at.unwrap_or_default()),
        ),
        limits,
    )
        .prop_map(
            |(
                (tries, retry_delay),
                no_act,
                cleanup,
                workers,
                fail_fast,
                deadline,
                cancel_at,
                limits,
            )| {
                // Through the builders, so options the machine gains keep
                // their defaults.
                let mut config = SimConfig::new()
                    .defaults(tries, retry_delay)
                    .cleanup(cleanup)
                    .workers(workers);
                if no_act {
                    config = config.no_act();
                }
                if fail_fast {
                    config = config.fail_fast();
                }
                if let Some(deadline) = deadline {
                    config = config.deadline(deadline);
                }
                if let Some(at) = cancel_at {
                    config = config.cancel_at(at);
                }
                for (group, limit) in GROUPS.iter().zip(limits) {
                    if let Some(limit) = limit {
                        config = config.limit_group(*group, limit);
                    }
                }
                config
            },
        )
        .boxed()
}

/// A random suite of `shape` and a random configuration of `shape.run`
/// to run it with.
pub fn scenarios(shape: SuiteShape) -> BoxedStrategy<(Suite, SimConfig)> {
    let configs = run_configs(shape.run.clone());
    (suites(shape), configs).boxed()
}

/// Installs a panic hook that keeps quiet about the panics the strategies
/// script (those whose message is [`SCRIPTED_PANIC`]) and reports every
/// other panic as the hook before it did. For tests that run random
/// suites through a real driver, which catches those panics: their
/// messages would bury the test's own output.
///
/// Installs the hook once per process; later calls do nothing.
pub fn quiet_scripted_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            if message != Some(SCRIPTED_PANIC) {
                previous(info);
            }
        }));
    });
}
