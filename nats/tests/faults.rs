//! The faults of a distributed run, each against a real nats-server, with
//! the demo program started as a user would. No test sleeps for timing:
//! each waits for an event it can see (a file a job makes, a process that
//! ends), bounded by `common::HANG`.

mod common;

use common::{NatsServer, SHORT_ACK_WAIT, coordinate, made_by, wait_for_file, worker};
use dojobber::{Status, StopReason};

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

#[test]
fn a_worker_killed_mid_phase_with_no_other_for_its_label_fails_its_job_at_the_time_limit() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut only = worker(&server, "alone", "only", "slow", &SHORT_ACK_WAIT);
    // A first run, so the worker is serving before the timed one starts.
    let warm_up = r#"[{"name": "warm", "label": "slow"}]"#;
    let warmed = coordinate(&server, "alone", dir.path(), warm_up, &SHORT_ACK_WAIT).finish();
    assert!(warmed.status.success(), "{}", warmed.stderr);

    // The gate starts after `free` is over, so the kill cuts only the gate.
    let jobs = r#"[
        {"name": "free"},
        {"name": "gate", "label": "slow", "gate": true, "time_limit_ms": 3000, "deps": ["free"]}
    ]"#;
    let flags = [&SHORT_ACK_WAIT[..], &["--tries", "1"]].concat();
    let coordinator = coordinate(&server, "alone", dir.path(), jobs, &flags);
    wait_for_file(&dir.path().join("gate.started"));
    only.kill();
    let finished = coordinator.finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let report = finished.report();
    let gate = report.job("gate").unwrap();
    assert_eq!(gate.status(), Status::Failed);
    let error = gate.last_error().unwrap().to_string();
    assert!(error.contains("timed out after 3s"), "{error}");
    assert!(
        finished
            .stderr
            .contains("worker only took this try and went silent for 1.5s: lost"),
        "{}",
        finished.stderr
    );
    assert_eq!(finished.status("free"), Status::Fixed);
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
    assert_eq!(finished.status("free"), Status::Fixed);
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
