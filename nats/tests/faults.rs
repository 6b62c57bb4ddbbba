//! The faults of a distributed run, each against a real nats-server, with
//! the demo program started as a user would. No test sleeps for timing:
//! each waits for an event it can see (a file a job makes, a process that
//! ends), bounded by `common::HANG`.

mod common;

use common::{NatsServer, SHORT_ACK_WAIT, coordinate, coordinator, made_by, wait_for_file, worker};
use std::time::{Duration, Instant};

use dojobber::{FailureKind, Phase, Status, StopReason};

/// A gate (its run waits for the `release` file) with a job after it.
const GATED: &str = r#"[
    {"name": "gate", "label": "slow", "gate": true},
    {"name": "after", "deps": ["gate"]}
]"#;

#[test]
fn a_worker_killed_mid_phase_loses_its_try_which_the_next_try_redoes_elsewhere() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut first = worker(&server, "kill", "first", "slow", &SHORT_ACK_WAIT);
    let coordinator = coordinate(&server, "kill", dir.path(), GATED, &SHORT_ACK_WAIT);
    wait_for_file(&dir.path().join("gate.started"));
    assert_eq!(made_by(&dir.path().join("gate.started")), "first");
    first.kill();
    std::fs::write(dir.path().join("release"), "").unwrap();
    let _second = worker(&server, "kill", "second", "slow", &SHORT_ACK_WAIT);

    let finished = coordinator.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    let report = finished.report();
    let gate = report.job("gate").unwrap();
    assert_eq!((gate.status(), gate.tries()), (Status::Fixed, 2));
    assert!(
        finished
            .stderr
            .contains("failed: gate run try 1: worker first took this try and went silent"),
        "{}",
        finished.stderr
    );
    assert_eq!(made_by(&dir.path().join("gate.done")), "second");
    assert_eq!(finished.status("after"), Status::Fixed);
}

/// The ack wait of [`SHORT_ACK_WAIT`].
const ACK_WAIT: Duration = Duration::from_millis(1500);

/// How long past the ack wait a dead worker may go unreported: the claim
/// is renewed every third of it, so a loss is seen within one ack wait of
/// the last renewal; the rest is for a loaded machine.
const REPORTED_WITHIN: Duration = Duration::from_secs(10);

/// The fleet's usual shape: one worker per label. Its worker killed in
/// the middle of a try and never restarted, the try is declared lost by
/// the coordinator alone (no other worker is there to be handed it
/// again), said on stderr by the run's printer (the demo installs no
/// tracing subscriber), retried, and the run's deadline ends the retry
/// with a reason naming the dead worker.
#[test]
fn a_worker_killed_mid_try_with_no_other_for_its_label_is_reported_and_named_at_the_deadline() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = worker(&server, "alone", "web1", "web", &SHORT_ACK_WAIT);
    let jobs = r#"[
        {"name": "free"},
        {"name": "gate", "label": "web", "gate": true, "deps": ["free"]}
    ]"#;
    let flags = [&SHORT_ACK_WAIT[..], &["--tries", "3", "--deadline", "20s"]].concat();
    let coordinator = coordinate(&server, "alone", dir.path(), jobs, &flags).watch_stderr();
    wait_for_file(&dir.path().join("gate.started"));
    web1.kill();
    let killed = Instant::now();

    let (said_at, line) = coordinator.wait_for_line("worker web1 went silent with try 1");
    let took = said_at.duration_since(killed);
    eprintln!("one worker for the label: the loss was said {took:?} after the kill: {line}");
    assert!(took < ACK_WAIT + REPORTED_WITHIN, "{took:?}: {line}");
    assert!(line.starts_with("warning: gate: "), "{line}");
    coordinator.wait_for_line("waiting for a worker with label web: none is serving now");

    let finished = coordinator.finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let report = finished.report();
    assert_eq!(report.stopped, Some(StopReason::Deadline));
    let gate = report.job("gate").unwrap();
    assert_eq!((gate.status(), gate.tries()), (Status::Failed, 2));
    let error = gate.last_error().unwrap().to_string();
    assert!(
        error.starts_with(
            "run deadline passed during its try, whose last phase was lost: \
             given up before any worker with label web took it"
        ) && error.contains("worker web1, which served it, went silent"),
        "{error}"
    );
    // The lost run, the recheck the machine asked for after it, the
    // retry's check, and the cleanup of the lost run, which nobody ran:
    // nobody reported performing them, and they say so.
    let unperformed: Vec<_> = gate
        .phases()
        .iter()
        .filter(|phase| !phase.performed)
        .collect();
    let phases: Vec<_> = unperformed
        .iter()
        .map(|phase| (phase.phase, phase.attempt))
        .collect();
    assert_eq!(
        phases,
        [
            (Phase::Run, 1),
            (Phase::Recheck, 1),
            (Phase::Check, 2),
            (Phase::Cleanup, 2)
        ],
        "{:?}",
        gate.phases()
    );
    let (cleanup, lost) = unperformed.split_last().unwrap();
    assert!(
        lost.iter()
            .all(|phase| phase.error.as_ref().unwrap().kind == FailureKind::Lost)
    );
    assert!(cleanup.passed && cleanup.error.is_none(), "{cleanup:?}");
    // The report names the worker that took the lost try; no worker took
    // the retry.
    assert_eq!(gate.performers(), [Some("web1".to_owned()), None]);
    assert!(
        gate.phases()
            .iter()
            .any(|phase| phase.performed && phase.phase == Phase::Check),
        "the first check was performed"
    );
    assert_eq!(finished.status("free"), Status::Fixed);
}

/// Waits until a try of suite `suite` is claimed (a `.claim.` key in its
/// runs bucket), failing the test as hung after [`common::HANG`].
fn wait_for_claim(server: &NatsServer, suite: &str) {
    use futures_util::TryStreamExt;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let names = dojobber_nats::Names::new(suite).unwrap();
        let until = Instant::now() + common::HANG;
        loop {
            if let Ok(bucket) = js.get_key_value(names.runs_bucket()).await
                && let Ok(keys) = bucket.keys().await
                && let Ok(keys) = keys.try_collect::<Vec<String>>().await
                && keys.iter().any(|key| key.contains(".claim."))
            {
                return;
            }
            assert!(Instant::now() < until, "no try of {suite} was ever claimed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// A worker killed while its check blocks (a long check, before any run)
/// is seen too: the try is claimed at its first keep-alive, and the claim
/// then stops moving.
#[test]
fn a_worker_killed_during_a_long_check_is_reported_lost() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = worker(&server, "checking", "web1", "web", &SHORT_ACK_WAIT);
    let jobs = r#"[{"name": "slow", "label": "web", "check_gate": true}]"#;
    // Not quiet: the summary goes to stderr, the report to stdout.
    let flags = [
        &SHORT_ACK_WAIT[..],
        &[
            "--tries",
            "1",
            "--deadline",
            "20s",
            "--report-json",
            "/dev/stdout",
        ],
    ]
    .concat();
    let coordinator = coordinator(&server, "checking", dir.path(), jobs, &flags).watch_stderr();
    wait_for_file(&dir.path().join("slow.checking"));
    wait_for_claim(&server, "checking");
    web1.kill();
    let killed = Instant::now();

    let (said_at, line) = coordinator.wait_for_line("worker web1 went silent with try 1");
    let took = said_at.duration_since(killed);
    eprintln!("killed in its check: the loss was said {took:?} after the kill: {line}");
    assert!(took < ACK_WAIT + REPORTED_WITHIN, "{took:?}: {line}");

    let finished = coordinator.finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let report = finished.report();
    let slow = report.job("slow").unwrap();
    assert_eq!((slow.status(), slow.tries()), (Status::Failed, 1));
    assert_eq!(slow.last_error().unwrap().kind, FailureKind::Lost);
    assert_eq!(slow.performed_by(1), Some("web1"));
    // The summary names the worker of the failed try.
    assert!(
        finished.stderr.contains(
            "failed slow after 1 try (on web1): worker web1 took this try and went silent"
        ),
        "{}",
        finished.stderr
    );
    assert!(!dir.path().join("slow.done").exists(), "nobody ran the job");
}

/// The same kill with a second worker for the label: the loss is said as
/// soon, and the retry goes to the other worker.
#[test]
fn a_worker_killed_mid_try_with_another_for_its_label_is_reported_and_its_try_redone() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = worker(&server, "pair", "web1", "web", &SHORT_ACK_WAIT);
    let coordinator = coordinate(
        &server,
        "pair",
        dir.path(),
        r#"[{"name": "gate", "label": "web", "gate": true}]"#,
        &SHORT_ACK_WAIT,
    )
    .watch_stderr();
    wait_for_file(&dir.path().join("gate.started"));
    assert_eq!(made_by(&dir.path().join("gate.started")), "web1");
    let _web2 = worker(&server, "pair", "web2", "web", &SHORT_ACK_WAIT);
    web1.kill();
    let killed = Instant::now();
    std::fs::write(dir.path().join("release"), "").unwrap();

    let (said_at, line) = coordinator.wait_for_line("worker web1 went silent with try 1");
    let took = said_at.duration_since(killed);
    eprintln!("two workers for the label: the loss was said {took:?} after the kill: {line}");
    assert!(took < ACK_WAIT + REPORTED_WITHIN, "{took:?}: {line}");

    let finished = coordinator.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    let gate = finished.report();
    let gate = gate.job("gate").unwrap();
    assert_eq!((gate.status(), gate.tries()), (Status::Fixed, 2));
    assert_eq!(made_by(&dir.path().join("gate.done")), "web2");
}

#[test]
fn a_label_no_worker_serves_fails_its_jobs_at_their_time_limit_and_the_rest_goes_on() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _any = worker(&server, "nolabel", "anyone", "", &[]);
    let jobs = r#"[
        {"name": "free"},
        {"name": "ghostly", "label": "ghost", "time_limit_ms": 1000},
        {"name": "haunted", "deps": ["ghostly"]}
    ]"#;
    let finished = coordinate(&server, "nolabel", dir.path(), jobs, &["--tries", "1"]).finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert_eq!(
        finished.status("free"),
        Status::Fixed,
        "{}\n{}",
        finished.stderr,
        finished.stdout
    );
    let report = finished.report();
    let ghostly = report.job("ghostly").unwrap();
    assert_eq!(ghostly.status(), Status::Failed);
    let error = ghostly.last_error().unwrap().to_string();
    assert!(error.contains("timed out after 1s"), "{error}");
    assert!(
        finished
            .stderr
            .contains("given up before any worker with label ghost took it"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.status("haunted"), Status::Blocked);
}

#[test]
fn a_label_no_worker_serves_fails_its_jobs_at_the_run_deadline() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _any = worker(&server, "deadline", "anyone", "", &[]);
    let jobs = r#"[
        {"name": "free"},
        {"name": "ghostly", "label": "ghost"},
        {"name": "haunted", "deps": ["ghostly"]}
    ]"#;
    // The deadline is past an ack wait: the coordinator names the label
    // with no worker while it waits.
    let flags = [&SHORT_ACK_WAIT[..], &["--deadline", "4s"]].concat();
    let finished = coordinate(&server, "deadline", dir.path(), jobs, &flags).finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let report = finished.report();
    assert_eq!(report.stopped, Some(StopReason::Deadline));
    assert_eq!(finished.status("ghostly"), Status::Failed);
    assert!(
        finished.stderr.contains(
            "failed: ghostly check try 1: given up before any worker with label ghost took it"
        ),
        "{}",
        finished.stderr
    );
    let waiting = "waiting for a worker with label ghost: none has ever served this suite; \
                   start one with `--labels ghost`";
    assert_eq!(
        finished.stderr.matches(waiting).count(),
        1,
        "{}",
        finished.stderr
    );
    assert_eq!(finished.status("haunted"), Status::Blocked);
}

#[test]
fn a_server_restarted_mid_run_leaves_a_run_that_completes() {
    let mut server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    // A try lost in the restart comes back after an ack wait.
    let _worker = worker(&server, "restart", "steady", "slow", &SHORT_ACK_WAIT);
    let coordinator = coordinate(&server, "restart", dir.path(), GATED, &SHORT_ACK_WAIT);
    wait_for_file(&dir.path().join("gate.started"));
    server.restart();
    std::fs::write(dir.path().join("release"), "").unwrap();

    let finished = coordinator.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    // Fixed, or passed when a try lost in the restart was followed by one
    // whose check found the work done.
    assert!(finished.report().is_success());
    assert_eq!(made_by(&dir.path().join("gate.done")), "steady");
}

#[test]
fn a_new_coordinator_converges_after_one_was_killed_and_ignores_its_reports() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _worker = worker(&server, "dead", "steady", "slow", &[]);
    let short_lease = ["--lease-ttl", "1500ms"];
    let mut dead = coordinate(&server, "dead", dir.path(), GATED, &short_lease);
    wait_for_file(&dir.path().join("gate.started"));
    dead.kill();
    // The dead run's try ends on the worker and reports to the dead run.
    std::fs::write(dir.path().join("release"), "").unwrap();
    wait_for_file(&dir.path().join("gate.done"));

    let next = coordinate(
        &server,
        "dead",
        dir.path(),
        GATED,
        &["--lease-ttl", "1500ms", "--wait-for-lease", "30s"],
    )
    .finish();
    assert!(next.status.success(), "{}", next.stderr);
    let report = next.report();
    let gate = report.job("gate").unwrap();
    // Its own check, not the dead run's run and recheck.
    assert_eq!((gate.status(), gate.tries()), (Status::Passed, 1));
    assert_eq!(next.status("after"), Status::Fixed);
}

#[test]
fn tries_a_killed_coordinator_left_in_the_queue_are_not_run_for_the_next_run() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _worker = worker(&server, "stale", "steady", "slow", &[]);
    let dead_jobs = r#"[
        {"name": "gate", "label": "slow", "gate": true},
        {"name": "stale", "label": "later"}
    ]"#;
    let short_lease = ["--lease-ttl", "1500ms"];
    let mut dead = coordinate(&server, "stale", dir.path(), dead_jobs, &short_lease);
    wait_for_file(&dir.path().join("gate.started"));
    dead.kill();
    std::fs::write(dir.path().join("release"), "").unwrap();

    let next_jobs = r#"[
        {"name": "marker"},
        {"name": "fresh", "label": "later", "deps": ["marker"]}
    ]"#;
    let wait = ["--lease-ttl", "1500ms", "--wait-for-lease", "30s"];
    let next = coordinate(&server, "stale", dir.path(), next_jobs, &wait);
    // The next run holds the lease once it has made the marker.
    wait_for_file(&dir.path().join("marker.done"));
    // Its queue holds the dead run's try first, then the next run's.
    let _late = worker(&server, "stale", "late", "later", &[]);
    let next = next.finish();
    assert!(next.status.success(), "{}", next.stderr);
    assert_eq!(made_by(&dir.path().join("fresh.done")), "late");
    assert!(
        !dir.path().join("stale.done").exists(),
        "the dead run's try ran"
    );
}

#[test]
fn a_second_coordinator_on_the_same_suite_refuses() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _worker = worker(&server, "twice", "steady", "slow", &[]);
    let first = coordinate(&server, "twice", dir.path(), GATED, &[]);
    wait_for_file(&dir.path().join("gate.started"));

    let second = coordinate(&server, "twice", dir.path(), GATED, &[]).finish();
    assert_eq!(second.status.code(), Some(2), "{}", second.stdout);
    assert!(
        second
            .stderr
            .contains("error: suite \"twice\" is already being run by coordinator run r"),
        "{}",
        second.stderr
    );
    std::fs::write(dir.path().join("release"), "").unwrap();
    let first = first.finish();
    assert!(first.status.success(), "{}", first.stderr);
}

#[test]
fn a_worker_of_another_suite_version_refuses_the_try() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _worker = worker(&server, "version", "old", "", &["--other-version"]);
    let jobs = r#"[{"name": "motd"}]"#;
    let finished = coordinate(&server, "version", dir.path(), jobs, &["--tries", "1"]).finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert_eq!(finished.status("motd"), Status::Failed);
    assert!(
        finished.stderr.contains(
            "failed: motd check try 1: worker old's graph differs from the coordinator's"
        ),
        "{}",
        finished.stderr
    );
    assert!(!dir.path().join("motd.done").exists(), "nothing ran");
}

/// A worker that ran its job and died before the run's cleanups: the
/// cleanup finds nobody listening for it, fails at once naming the dead
/// worker, and is recorded as not performed; the rest of the run is
/// cleaned up as usual.
#[test]
fn a_cleanup_whose_worker_died_is_said_and_recorded_as_not_performed() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut web1 = worker(&server, "gone", "web1", "web", &SHORT_ACK_WAIT);
    let _db1 = worker(&server, "gone", "db1", "db", &SHORT_ACK_WAIT);
    let jobs = r#"[
        {"name": "quick", "label": "web"},
        {"name": "slow", "label": "db", "check_gate": true}
    ]"#;
    let flags = [&SHORT_ACK_WAIT[..], &["-v", "--report-json", "/dev/stdout"]].concat();
    let coordinator = coordinator(&server, "gone", dir.path(), jobs, &flags).watch_stderr();
    // quick's try is over (its recheck reported) while slow's check waits.
    coordinator.wait_for_line("quick.recheck: pass");
    wait_for_file(&dir.path().join("slow.checking"));
    web1.kill();
    wait_until_nobody_listens(&server, "dojobber.gone.cleanup.web1");
    std::fs::write(dir.path().join("release"), "").unwrap();

    let finished = coordinator.finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("worker web1, which ran the job, is gone: its cleanup was not performed"),
        "{}",
        finished.stderr
    );
    let report = finished.report();
    let quick = report.job("quick").unwrap();
    assert_eq!(quick.status(), Status::Fixed);
    let cleanup = quick
        .phases()
        .iter()
        .find(|phase| phase.phase == Phase::Cleanup)
        .unwrap();
    assert!(!cleanup.performed && !cleanup.passed, "{cleanup:?}");
    assert!(
        !dir.path().join("quick.cleaned").exists(),
        "nobody cleaned quick"
    );
    assert_eq!(made_by(&dir.path().join("slow.cleaned")), "db1");
}

/// Waits until the server has dropped every subscription to `subject`
/// (a killed worker's connection closed), so the run's next request to it
/// finds nobody, whatever the timing.
fn wait_until_nobody_listens(server: &NatsServer, subject: &'static str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let until = Instant::now() + common::HANG;
        loop {
            let asked = client.request(subject, "".into());
            match tokio::time::timeout(Duration::from_secs(1), asked).await {
                Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => {
                    return;
                }
                _ => assert!(Instant::now() < until, "{subject} still has a listener"),
            }
        }
    });
}
