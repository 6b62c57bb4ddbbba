//! The order of a try's phases: the one rule the machine follows, and
//! that a driver performing a whole try elsewhere (dojobber-nats's
//! workers) follows too, so the two never disagree.

use crate::phase::{JobKind, Phase};

/// The first phase of a try that a driver performs, or `None` when the
/// machine decides the whole try without user code (a dummy job; a
/// run-only job in no-act mode, which cannot pass).
///
/// ```
/// use dojobber::engine::first_phase;
/// use dojobber::{JobKind, Phase};
///
/// assert_eq!(first_phase(JobKind::Normal, false), Some(Phase::Check));
/// assert_eq!(first_phase(JobKind::RunOnly, false), Some(Phase::Run));
/// assert_eq!(first_phase(JobKind::RunOnly, true), None);
/// assert_eq!(first_phase(JobKind::Dummy, false), None);
/// ```
pub fn first_phase(kind: JobKind, no_act: bool) -> Option<Phase> {
    match kind {
        JobKind::Normal => Some(Phase::Check),
        JobKind::RunOnly if !no_act => Some(Phase::Run),
        JobKind::RunOnly | JobKind::Dummy => None,
    }
}

/// The phase of the same try that follows `phase` when it `passed` (or
/// not), or `None` when the try ends there: a check that passed, or failed
/// in no-act mode; a run-only job's run (its outcome is the try's); a
/// recheck; a cleanup, which is no part of a try. Whether the try passed
/// is then `passed`.
///
/// ```
/// use dojobber::engine::next_phase;
/// use dojobber::{JobKind, Phase};
///
/// let normal = JobKind::Normal;
/// assert_eq!(next_phase(normal, Phase::Check, false, false), Some(Phase::Run));
/// assert_eq!(next_phase(normal, Phase::Check, false, true), None);
/// assert_eq!(next_phase(normal, Phase::Check, true, false), None);
/// assert_eq!(next_phase(normal, Phase::Run, false, false), Some(Phase::Recheck));
/// assert_eq!(next_phase(JobKind::RunOnly, Phase::Run, true, false), None);
/// ```
pub fn next_phase(kind: JobKind, phase: Phase, passed: bool, no_act: bool) -> Option<Phase> {
    match phase {
        Phase::Check if passed || no_act => None,
        Phase::Check => Some(Phase::Run),
        Phase::Run if kind == JobKind::RunOnly => None,
        // A run that failed is rechecked too: the recheck says whether the
        // world is as wanted, whatever the run returned.
        Phase::Run => Some(Phase::Recheck),
        Phase::Recheck | Phase::Cleanup => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sequence a try can take, written out.
    #[test]
    fn the_tries_of_each_kind_go_through_these_phases() {
        // (kind, no_act, outcome of each phase in turn, phases performed)
        let cases = [
            (JobKind::Normal, false, &[true][..], &[Phase::Check][..]),
            (
                JobKind::Normal,
                false,
                &[false, true, true],
                &[Phase::Check, Phase::Run, Phase::Recheck],
            ),
            (
                JobKind::Normal,
                false,
                &[false, false, false],
                &[Phase::Check, Phase::Run, Phase::Recheck],
            ),
            (JobKind::Normal, true, &[false], &[Phase::Check]),
            (JobKind::RunOnly, false, &[false], &[Phase::Run]),
            (JobKind::RunOnly, false, &[true], &[Phase::Run]),
            (JobKind::RunOnly, true, &[], &[]),
            (JobKind::Dummy, false, &[], &[]),
        ];
        for (kind, no_act, outcomes, expected) in cases {
            let mut performed = Vec::new();
            let mut phase = first_phase(kind, no_act);
            let mut outcomes = outcomes.iter();
            while let Some(now) = phase {
                performed.push(now);
                let passed = *outcomes.next().expect("an outcome per phase");
                phase = next_phase(kind, now, passed, no_act);
            }
            assert_eq!(performed, expected, "{kind:?} no_act={no_act}");
            assert!(outcomes.next().is_none());
        }
    }
}
