//! One try on the workers, as the coordinator follows it: a sans-IO
//! machine, like dojobber's own. It is told what happens (a worker's
//! report, the claim as the runs bucket shows it, the machine abandoning
//! the try, what came of the I/O it asked for) with the time, on the
//! run's clock; [`RemoteTry::poll`] says what to do next. It reads no
//! clock and does no I/O: the coordinator's executor does both and feeds
//! the results back, and the unit tests below drive it in virtual time.
//!
//! A worker that takes a try claims it (a key in the runs bucket) before
//! anything that may change the world, and writes a new revision of the
//! claim at least every third of the ack wait while it holds the try. So
//! a claim whose revision stays unchanged for an ack wait means its
//! worker is dead (or cut off): the try is declared lost, the claim cut
//! first (a compare-and-set on the revision last seen, which fails if
//! the worker wrote meanwhile), whatever JetStream does with the message.

use std::collections::VecDeque;
use std::time::Duration;

use dojobber::{Failure, FailureKind, Outcome, Phase};

use crate::wire::News;

/// The claim on a try as the runs bucket shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClaimSeen {
    /// Nobody has claimed the try.
    Free,
    /// Worker `name` holds it; `revision` moves while it lives.
    Worker {
        /// The worker.
        name: String,
        /// The key's revision.
        revision: u64,
    },
    /// The coordinator cut it; its worker still writes new revisions of
    /// the cut value while it lives.
    Cut {
        /// The key's revision.
        revision: u64,
    },
    /// The coordinator gave the try up before any worker took it.
    GivenUp,
}

/// What the executor does next for a try, as [`RemoteTry::poll`] says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Action {
    /// The outcome of the phase asked for: give it to the machine.
    Answer(Outcome),
    /// No worker holds the try and the machine abandoned it: claim it for
    /// the coordinator (a `create`), then [`RemoteTry::handle_given_up`].
    GiveUp,
    /// Cut the claim at `revision` (a compare-and-set), then
    /// [`RemoteTry::handle_cut`].
    Cut {
        /// The revision last seen.
        revision: u64,
    },
    /// Read the claim, then [`RemoteTry::handle_claim`].
    ReadClaim,
    /// No word of the try for an ack wait: say so if no worker serves its
    /// label, then [`RemoteTry::handle_served_asked`].
    AskServed,
    /// Nothing until news, or until this time.
    Wait(Option<Duration>),
}

/// How a compare-and-set of the claim went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CutResult {
    /// Cut: the new revision.
    Done(u64),
    /// The claim moved since it was seen (its worker wrote).
    Moved,
    /// The server could not say.
    Failed,
}

/// A worker declared lost with its try: who, and when it was last heard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lost {
    /// The worker that held the try (`None`: not known).
    pub(crate) worker: Option<String>,
    /// When its claim last moved, on the run's clock.
    pub(crate) last_heard: Duration,
}

/// The claim as last seen, and when it last moved.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    /// The worker that holds (or held, once cut) the claim, if known.
    worker: Option<String>,
    revision: u64,
    cut: bool,
    /// When this revision was first seen.
    since: Duration,
}

/// One try on the workers.
#[derive(Debug)]
pub(crate) struct RemoteTry {
    /// Which try of its job.
    pub(crate) attempt: u32,
    ack_wait: Duration,
    /// The phase the machine asks the outcome of, if any.
    asked: Option<Phase>,
    /// Outcomes reported and not yet asked for.
    pending: VecDeque<(Phase, Outcome)>,
    /// Why the try ended early (refused, stopped, lost, given up, never
    /// sent): the outcome of every phase the machine still asks for;
    /// later reports are dropped.
    ended: Option<Outcome>,
    /// The machine abandoned the try (a time limit, a stop): its claim is
    /// to be cut, or the try given up.
    abandoned: bool,
    /// The claim, once seen held.
    held: Option<Held>,
    /// The worker that reported the try's first phase.
    reporter: Option<String>,
    /// The coordinator asked to read the claim (a worker reported it lost).
    look: bool,
    /// A report came from a worker.
    heard: bool,
    /// When the try or any news of it last came (a report, a claim that
    /// moved, a look at the claim that found it free).
    last_news: Duration,
    /// When to ask next whether any worker serves the label, while none
    /// has spoken of the try.
    ask_served_at: Duration,
    /// While a cut is asked for: when the claim last moved before it.
    /// The watch may show the coordinator's own cut before the cut's
    /// answer comes; that write is no word from the worker.
    cutting: Option<Duration>,
}

impl RemoteTry {
    /// Try `attempt`, sent at `now`; its claim is silent after `ack_wait`.
    pub(crate) fn new(attempt: u32, ack_wait: Duration, now: Duration) -> RemoteTry {
        RemoteTry {
            attempt,
            ack_wait,
            asked: None,
            pending: VecDeque::new(),
            ended: None,
            abandoned: false,
            held: None,
            reporter: None,
            look: false,
            heard: false,
            last_news: now,
            ask_served_at: now + ack_wait,
            cutting: None,
        }
    }

    /// The machine asks for the outcome of `phase` of this try.
    pub(crate) fn ask(&mut self, phase: Phase) {
        self.asked = Some(phase);
    }

    /// Whether the try ended early (its outcome is known for any phase).
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// [`handle_report`](Self::handle_report) from `worker`, which is the
    /// try's performer if it reports a phase first.
    pub(crate) fn handle_report_from(&mut self, worker: &str, news: News, now: Duration) {
        if self.ended.is_none() && self.reporter.is_none() && matches!(news, News::Phase { .. }) {
            self.reporter = Some(worker.to_owned());
        }
        self.handle_report(news, now);
    }

    /// Who performed the try as far as the coordinator knows: the worker
    /// that reported its phases, else the one that held its claim (a try
    /// lost with its worker); `None`: nobody (refused, or given up).
    pub(crate) fn performer(&self) -> Option<&str> {
        let holder = self.held.as_ref().and_then(|held| held.worker.as_deref());
        self.reporter.as_deref().or(holder)
    }

    /// A worker's word about this try, at `now`. Tells the worker whose
    /// report says it performed a run (for its cleanup).
    pub(crate) fn handle_report(&mut self, news: News, now: Duration) {
        if self.ended.is_some() {
            return;
        }
        self.last_news = now;
        match news {
            News::Phase { phase, outcome, .. } => {
                self.heard = true;
                self.pending.push_back((phase, outcome.into()));
            }
            News::Refused { reason } | News::Stopped { reason } => {
                self.heard = true;
                self.ended = Some(fail(reason));
            }
            // Only a suspicion, from a worker JetStream handed the try to
            // again: its holder may be slow. Look at the claim.
            News::Lost { .. } => self.look = true,
        }
    }

    /// The claim as seen at `now` (watched or read).
    pub(crate) fn handle_claim(&mut self, seen: ClaimSeen, now: Duration) {
        self.look = false;
        let (worker, revision, cut) = match seen {
            ClaimSeen::Free => {
                self.last_news = self.last_news.max(now);
                return;
            }
            // Its outcome comes from giving it up.
            ClaimSeen::GivenUp => return,
            ClaimSeen::Worker { name, revision } => (Some(name), revision, false),
            ClaimSeen::Cut { revision } => (None, revision, true),
        };
        match &mut self.held {
            // Seen before, or older than what was seen (a watch behind a
            // read): nothing new.
            Some(held) if revision <= held.revision => {}
            Some(held) => {
                held.revision = revision;
                held.cut |= cut;
                held.since = now;
                if worker.is_some() {
                    held.worker = worker;
                }
                self.last_news = now;
            }
            None => {
                self.held = Some(Held {
                    worker,
                    revision,
                    cut,
                    since: now,
                });
                self.last_news = now;
            }
        }
    }

    /// The machine abandoned the phase in flight (a time limit, a stop).
    pub(crate) fn handle_abandon(&mut self) {
        self.abandoned = true;
    }

    /// Giving the try up failed: a worker claimed it just now.
    pub(crate) fn handle_give_up_refused(&mut self) {
        self.look = true;
    }

    /// Ends the try early with `outcome` (given up, never sent, the
    /// reports lost), unless it ended.
    pub(crate) fn end(&mut self, outcome: Outcome) {
        self.ended.get_or_insert(outcome);
    }

    /// What came of a cut asked for at `now`; `Some` when it declared the
    /// try's worker lost (the try has ended).
    pub(crate) fn handle_cut(&mut self, result: CutResult, now: Duration) -> Option<Lost> {
        let held = self.held.as_mut()?;
        match result {
            CutResult::Done(revision) => {
                // Seen up to this cut's own write, the claim last moved
                // before the cut; a later revision is the worker, alive.
                let last_heard = match self.cutting.take() {
                    Some(before) if held.revision <= revision => before,
                    _ => held.since,
                };
                let silent = now >= last_heard + self.ack_wait;
                let lost = Lost {
                    worker: held.worker.clone(),
                    last_heard,
                };
                held.revision = held.revision.max(revision);
                held.cut = true;
                if !silent {
                    // Cut for the machine: the phase under way goes on.
                    held.since = now;
                    return None;
                }
                self.ended
                    .get_or_insert_with(|| lost_failure(&lost, self.ack_wait));
                Some(lost)
            }
            CutResult::Moved => {
                self.cutting = None;
                self.look = true;
                None
            }
            // Looked at again after a while.
            CutResult::Failed => {
                self.cutting = None;
                held.since = held.since.max(now.saturating_sub(self.ack_wait / 2));
                None
            }
        }
    }

    /// The coordinator asked whether any worker serves the label, at `now`.
    pub(crate) fn handle_served_asked(&mut self, now: Duration) {
        self.ask_served_at = now + self.ack_wait;
    }

    /// What to do next, at `now`.
    pub(crate) fn poll(&mut self, now: Duration) -> Action {
        if self.abandoned {
            match &self.held {
                None if self.ended.is_none() && !self.look => return Action::GiveUp,
                Some(held) if !held.cut && self.ended.is_none() => {
                    self.cutting = Some(held.since);
                    return Action::Cut {
                        revision: held.revision,
                    };
                }
                _ => {}
            }
        }
        if let Some(outcome) = self.take_outcome() {
            return Action::Answer(outcome);
        }
        if self.look {
            return Action::ReadClaim;
        }
        let wake = match &self.held {
            Some(held) => {
                let silent_at = held.since + self.ack_wait;
                if now >= silent_at {
                    self.cutting = Some(held.since);
                    return Action::Cut {
                        revision: held.revision,
                    };
                }
                silent_at
            }
            None => {
                // Not claimed: the claim may have been missed (a watch that
                // broke), so it is read after an ack wait with no news.
                let look_at = self.last_news + self.ack_wait;
                if !self.heard && now >= self.ask_served_at {
                    return Action::AskServed;
                }
                if now >= look_at {
                    self.last_news = now;
                    return Action::ReadClaim;
                }
                match self.heard {
                    true => look_at,
                    false => look_at.min(self.ask_served_at),
                }
            }
        };
        Action::Wait(Some(wake))
    }

    /// The outcome of the phase asked for if its worker reported it, or
    /// the try's if it ended early. Outcomes of phases before it, which
    /// the machine did not ask for (a stop cut the try), are dropped.
    fn take_outcome(&mut self) -> Option<Outcome> {
        let wanted = self.asked?;
        while self
            .pending
            .front()
            .is_some_and(|(phase, _)| *phase < wanted)
        {
            self.pending.pop_front();
        }
        let outcome = match self.pending.front() {
            Some((phase, _)) if *phase == wanted => self.pending.pop_front().map(|(_, o)| o),
            _ => self.ended.clone(),
        };
        if outcome.is_some() {
            self.asked = None;
        }
        outcome
    }
}

/// The failure of a try whose worker went silent.
pub(crate) fn lost_failure(lost: &Lost, ack_wait: Duration) -> Outcome {
    let worker = lost.worker.as_deref().unwrap_or("?");
    let at = lost.last_heard.as_secs_f64();
    Outcome::Fail(
        Failure::new(format!(
            "worker {worker} took this try and went silent: no word since {at:.1}s into the run, \
             for {ack_wait:?}: lost"
        ))
        .with_kind(FailureKind::Lost),
    )
}

fn fail(message: String) -> Outcome {
    Outcome::Fail(Failure::new(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireOutcome;

    const ACK: Duration = Duration::from_secs(30);

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn phase(phase: Phase, passed: bool) -> News {
        let outcome = match passed {
            true => Outcome::Pass,
            false => Outcome::Fail(Failure::new("no")),
        };
        News::Phase {
            phase,
            outcome: WireOutcome::from(outcome),
            elapsed: Duration::ZERO,
        }
    }

    fn worker(name: &str, revision: u64) -> ClaimSeen {
        ClaimSeen::Worker {
            name: name.into(),
            revision,
        }
    }

    fn answered(action: Action) -> Outcome {
        match action {
            Action::Answer(outcome) => outcome,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn a_try_answers_each_phase_its_worker_reports_in_order() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Check);
        assert_eq!(remote.poll(secs(0.1)), Action::Wait(Some(ACK)));
        remote.handle_report(phase(Phase::Check, false), secs(1.0));
        remote.handle_report(phase(Phase::Run, true), secs(2.0));
        assert!(!answered(remote.poll(secs(2.0))).is_pass());
        // Nothing asked: nothing answered.
        assert!(matches!(remote.poll(secs(2.0)), Action::Wait(_)));
        remote.ask(Phase::Run);
        assert!(answered(remote.poll(secs(2.0))).is_pass());
    }

    #[test]
    fn the_performer_is_the_worker_that_reported_else_the_claims_holder() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        assert_eq!(remote.performer(), None);
        remote.handle_claim(worker("web1", 3), secs(0.5));
        assert_eq!(remote.performer(), Some("web1"));
        remote.handle_report_from("web2", phase(Phase::Check, false), secs(1.0));
        remote.handle_report_from("web3", phase(Phase::Run, true), secs(2.0));
        assert_eq!(remote.performer(), Some("web2"));
        let mut refused = RemoteTry::new(1, ACK, Duration::ZERO);
        let reason = "another version".to_owned();
        refused.handle_report_from("web1", News::Refused { reason }, secs(1.0));
        assert_eq!(refused.performer(), None);
    }

    #[test]
    fn a_claim_renewed_within_each_ack_wait_is_never_lost() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        let mut now = Duration::ZERO;
        for revision in 1..100 {
            remote.handle_claim(worker("w1", revision), now);
            now += ACK / 3;
            assert_eq!(remote.poll(now), Action::Wait(Some(now - ACK / 3 + ACK)));
        }
    }

    #[test]
    fn a_claim_unchanged_for_an_ack_wait_is_cut_and_its_try_lost_naming_the_worker() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Check);
        remote.handle_report(phase(Phase::Check, false), secs(1.0));
        remote.handle_claim(worker("web1", 7), secs(1.0));
        assert!(!answered(remote.poll(secs(1.0))).is_pass());
        remote.ask(Phase::Run);
        remote.handle_claim(worker("web1", 9), secs(11.0));
        // The last renewal at 11 s: silent at 41 s, not before.
        assert_eq!(remote.poll(secs(40.9)), Action::Wait(Some(secs(41.0))));
        assert_eq!(remote.poll(secs(41.0)), Action::Cut { revision: 9 });
        let lost = remote.handle_cut(CutResult::Done(10), secs(41.1)).unwrap();
        assert_eq!(lost.worker.as_deref(), Some("web1"));
        assert_eq!(lost.last_heard, secs(11.0));
        let Outcome::Fail(failure) = answered(remote.poll(secs(41.1))) else {
            panic!("a lost try fails");
        };
        assert_eq!(failure.kind, FailureKind::Lost);
        assert!(
            failure
                .message
                .starts_with("worker web1 took this try and went silent: no word since 11.0s"),
            "{failure}"
        );
        // Any phase the machine asks for next ends the same way.
        remote.ask(Phase::Recheck);
        assert!(!answered(remote.poll(secs(41.2))).is_pass());
    }

    /// The watch may show the coordinator's own cut before the cut's
    /// answer comes: that write is no word from the worker, which is lost
    /// at once, not one more ack wait later.
    #[test]
    fn the_cut_seen_by_the_watch_before_its_answer_is_no_word_from_the_worker() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("web1", 7), secs(1.0));
        assert_eq!(remote.poll(secs(31.0)), Action::Cut { revision: 7 });
        remote.handle_claim(ClaimSeen::Cut { revision: 8 }, secs(31.01));
        let lost = remote.handle_cut(CutResult::Done(8), secs(31.02));
        let lost = lost.expect("the worker was silent for an ack wait before the cut");
        assert_eq!(lost.worker.as_deref(), Some("web1"));
        assert_eq!(lost.last_heard, secs(1.0));
        assert!(!answered(remote.poll(secs(31.02))).is_pass());
    }

    /// A cut value written after the coordinator's cut (a higher revision)
    /// is the worker, alive: its try goes on.
    #[test]
    fn a_cut_value_written_after_the_cut_is_the_worker_alive() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("web1", 7), secs(1.0));
        assert_eq!(remote.poll(secs(31.0)), Action::Cut { revision: 7 });
        remote.handle_claim(ClaimSeen::Cut { revision: 9 }, secs(31.5));
        assert_eq!(remote.handle_cut(CutResult::Done(8), secs(31.6)), None);
        assert!(matches!(remote.poll(secs(31.6)), Action::Wait(_)));
    }

    #[test]
    fn a_worker_that_writes_while_it_is_cut_is_alive_and_looked_at_again() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("w", 3), secs(0.0));
        assert_eq!(remote.poll(secs(30.0)), Action::Cut { revision: 3 });
        assert_eq!(remote.handle_cut(CutResult::Moved, secs(30.0)), None);
        assert_eq!(remote.poll(secs(30.0)), Action::ReadClaim);
        remote.handle_claim(worker("w", 4), secs(30.1));
        assert_eq!(remote.poll(secs(30.1)), Action::Wait(Some(secs(60.1))));
    }

    #[test]
    fn a_report_of_a_lost_try_from_another_worker_only_makes_it_look() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("w1", 3), secs(1.0));
        remote.handle_report(
            News::Lost {
                holder: "w1".into(),
            },
            secs(2.0),
        );
        assert_eq!(remote.poll(secs(2.0)), Action::ReadClaim);
        remote.handle_claim(worker("w1", 3), secs(2.1));
        // Unchanged since 1 s: still alive until 31 s.
        assert_eq!(remote.poll(secs(2.1)), Action::Wait(Some(secs(31.0))));
    }

    #[test]
    fn an_abandoned_try_no_worker_took_is_given_up() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Check);
        remote.handle_abandon();
        assert_eq!(remote.poll(secs(1.0)), Action::GiveUp);
        remote.end(fail("given up".into()));
        assert!(!answered(remote.poll(secs(1.0))).is_pass());
    }

    #[test]
    fn an_abandoned_try_a_worker_claimed_meanwhile_is_cut_and_waits_for_its_phase() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Check);
        remote.handle_abandon();
        assert_eq!(remote.poll(secs(1.0)), Action::GiveUp);
        remote.handle_give_up_refused();
        assert_eq!(remote.poll(secs(1.0)), Action::ReadClaim);
        remote.handle_claim(worker("w", 5), secs(1.0));
        assert_eq!(remote.poll(secs(1.0)), Action::Cut { revision: 5 });
        assert_eq!(remote.handle_cut(CutResult::Done(6), secs(1.1)), None);
        // The phase under way goes on there: its outcome is awaited, and
        // its worker, cut, still writes while it lives.
        assert_eq!(remote.poll(secs(1.1)), Action::Wait(Some(secs(31.1))));
        remote.handle_claim(ClaimSeen::Cut { revision: 7 }, secs(20.0));
        remote.handle_report(phase(Phase::Check, true), secs(25.0));
        assert!(answered(remote.poll(secs(25.0))).is_pass());
    }

    #[test]
    fn a_cut_worker_that_goes_silent_is_lost_too() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("w", 5), secs(1.0));
        remote.handle_abandon();
        assert_eq!(remote.poll(secs(2.0)), Action::Cut { revision: 5 });
        assert_eq!(remote.handle_cut(CutResult::Done(6), secs(2.0)), None);
        assert_eq!(remote.poll(secs(32.0)), Action::Cut { revision: 6 });
        let lost = remote.handle_cut(CutResult::Done(7), secs(32.0)).unwrap();
        assert_eq!(lost.worker.as_deref(), Some("w"));
        assert!(!answered(remote.poll(secs(32.0))).is_pass());
    }

    #[test]
    fn a_try_nobody_speaks_of_asks_every_ack_wait_whether_its_label_is_served() {
        let mut remote = RemoteTry::new(1, ACK, secs(5.0));
        remote.ask(Phase::Check);
        assert_eq!(remote.poll(secs(6.0)), Action::Wait(Some(secs(35.0))));
        assert_eq!(remote.poll(secs(35.0)), Action::AskServed);
        remote.handle_served_asked(secs(35.0));
        // The claim is read too, in case it was missed.
        assert_eq!(remote.poll(secs(35.0)), Action::ReadClaim);
        remote.handle_claim(ClaimSeen::Free, secs(35.0));
        assert_eq!(remote.poll(secs(35.0)), Action::Wait(Some(secs(65.0))));
        assert_eq!(remote.poll(secs(65.0)), Action::AskServed);
    }

    #[test]
    fn a_try_with_word_from_its_worker_never_asks_about_its_label() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Check);
        remote.handle_report(phase(Phase::Check, false), secs(1.0));
        answered(remote.poll(secs(1.0)));
        remote.ask(Phase::Run);
        assert_eq!(remote.poll(secs(31.0)), Action::ReadClaim);
    }

    #[test]
    fn reports_after_an_early_end_are_dropped() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.handle_report(
            News::Refused {
                reason: "other version".into(),
            },
            secs(1.0),
        );
        remote.handle_report(phase(Phase::Check, true), secs(2.0));
        remote.ask(Phase::Check);
        let Outcome::Fail(failure) = answered(remote.poll(secs(2.0))) else {
            panic!("refused");
        };
        assert_eq!(failure.message, "other version");
    }

    #[test]
    fn a_claim_seen_late_by_a_watch_does_not_go_back() {
        let mut remote = RemoteTry::new(1, ACK, Duration::ZERO);
        remote.ask(Phase::Run);
        remote.handle_claim(worker("w", 8), secs(10.0));
        remote.handle_claim(worker("w", 7), secs(20.0));
        assert_eq!(remote.poll(secs(20.0)), Action::Wait(Some(secs(40.0))));
    }
}
