//! The words plan, report, event and machine share: a job's [`JobKind`]
//! (which phases it has) and the [`Phase`] being performed. Plain data, so
//! the machine needs nothing of the `Job` trait.

/// How the engine treats a job's phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// `check`; if it fails, `run` (its result ignored), then `check` again.
    Normal,
    /// Groups other jobs: always passes, calls no user code.
    Dummy,
    /// Has no check: every try calls `run`, and the run's result decides.
    /// It can never pass in no-act mode.
    RunOnly,
}

/// One of the steps of a job's life that calls user code.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The first `check` of a try.
    Check,
    /// `run`, after a failed check.
    Run,
    /// `check` again, after `run`.
    Recheck,
    /// `cleanup`, once after the whole run, for jobs whose `run` executed.
    Cleanup,
}

impl Phase {
    /// The lower-case name used in output: `check`, `run`, `recheck`, `cleanup`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Check => "check",
            Phase::Run => "run",
            Phase::Recheck => "recheck",
            Phase::Cleanup => "cleanup",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
