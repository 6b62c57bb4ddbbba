//! A suite spread over workers with labels, against a real nats-server.

mod common;

use common::{NatsServer, coordinate, made_by, worker};
use dojobber::Status;

const JOBS: &str = r#"[
    {"name": "table", "label": "db"},
    {"name": "app", "label": "app", "deps": ["table"]},
    {"name": "motd"}
]"#;

#[test]
fn each_job_runs_and_cleans_up_on_a_worker_with_its_label_and_a_second_run_changes_nothing() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _db = worker(&server, "labels", "db-host", "db", &[]);
    let _app = worker(&server, "labels", "app-host", "app,eu", &[]);

    let page = dir.path().join("run.html");
    let html = ["--html", page.to_str().unwrap()];
    let first = coordinate(&server, "labels", dir.path(), JOBS, &html).finish();
    assert!(first.status.success(), "{}\n{}", first.stdout, first.stderr);
    for job in ["table", "app", "motd"] {
        assert_eq!(first.status(job), Status::Fixed, "{job}");
    }
    // The report and the page name the worker of each try.
    let report = first.report();
    let performed_by = |job: &str| report.job(job).unwrap().performers().to_vec();
    assert_eq!(performed_by("table"), [Some("db-host".to_owned())]);
    assert_eq!(performed_by("app"), [Some("app-host".to_owned())]);
    let motd = report.job("motd").unwrap().performed_by(1);
    assert!(matches!(motd, Some("db-host" | "app-host")), "{motd:?}");
    let json: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(
        json["jobs"][0]["performed_by"],
        serde_json::json!(["db-host"]),
        "{json}"
    );
    let page = std::fs::read_to_string(&page).unwrap();
    assert!(page.contains(r#""performed_by":["db-host"]"#), "{page}");
    assert!(page.contains(r#""performed_by":["app-host"]"#), "{page}");
    // Each cleanup is recorded as performed: its worker did it.
    let cleanup = report
        .job("table")
        .unwrap()
        .phases()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (cleanup.phase, cleanup.performed),
        (dojobber::Phase::Cleanup, true)
    );
    assert_eq!(made_by(&dir.path().join("table.done")), "db-host");
    assert_eq!(made_by(&dir.path().join("app.done")), "app-host");
    // Each cleanup ran where its job's run did, with that try's local storage.
    assert_eq!(made_by(&dir.path().join("table.cleaned")), "db-host");
    assert_eq!(made_by(&dir.path().join("app.cleaned")), "app-host");

    let second = coordinate(&server, "labels", dir.path(), JOBS, &[]).finish();
    assert!(second.status.success(), "{}", second.stderr);
    for job in ["table", "app", "motd"] {
        assert_eq!(second.status(job), Status::Passed, "{job}");
    }
}

#[test]
fn a_value_one_host_shares_is_what_another_host_reads() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _db = worker(&server, "shared", "db-host", "db", &[]);
    let _app = worker(&server, "shared", "app-host", "app", &[]);
    let jobs = r#"[
        {"name": "schema", "label": "db", "shares": "schema version"},
        {"name": "app", "label": "app", "needs": "schema version", "deps": ["schema"]}
    ]"#;
    let finished = coordinate(&server, "shared", dir.path(), jobs, &["--tries", "1"]).finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert_eq!(made_by(&dir.path().join("app.got")), "db-host");
    assert_eq!(made_by(&dir.path().join("app.done")), "app-host");
}

#[test]
fn a_worker_with_two_slots_performs_two_tries_of_a_label_at_once() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _both = worker(&server, "slots", "both", "slow", &["--slots", "2"]);
    let jobs = r#"[
        {"name": "one", "label": "slow", "gate": true},
        {"name": "two", "label": "slow", "gate": true}
    ]"#;
    let coordinator = coordinate(&server, "slots", dir.path(), jobs, &[]);
    // Each gate waits for the release: both started means both at once.
    common::wait_for_file(&dir.path().join("one.started"));
    common::wait_for_file(&dir.path().join("two.started"));
    std::fs::write(dir.path().join("release"), "").unwrap();
    let finished = coordinator.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
}

#[test]
fn a_no_act_run_only_checks_on_the_workers() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _db = worker(&server, "noact", "db-host", "db", &[]);
    let jobs = r#"[{"name": "table", "label": "db"}]"#;
    let finished = coordinate(&server, "noact", dir.path(), jobs, &["--no-act"]).finish();
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert_eq!(finished.status("table"), Status::Failed);
    assert_eq!(
        finished.stderr.trim(),
        "failed: table check try 1: table is not done"
    );
    assert!(
        !dir.path().join("table.done").exists(),
        "a no-act run ran table"
    );
}

/// The keys of the suite's runs bucket: each run's arguments, and a claim
/// per try that ran something.
fn runs_bucket_keys(server: &NatsServer, suite: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let names = dojobber_nats::Names::new(suite).unwrap();
        let bucket = js.get_key_value(names.runs_bucket()).await.unwrap();
        let mut keys: Vec<String> = bucket.keys().await.unwrap().try_collect().await.unwrap();
        keys.sort();
        keys
    })
}

#[test]
fn a_try_is_claimed_before_its_run_and_a_try_whose_check_passes_is_not_claimed() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let _db = worker(&server, "claims", "db-host", "db", &[]);
    let _app = worker(&server, "claims", "app-host", "app,eu", &[]);

    let first = coordinate(&server, "claims", dir.path(), JOBS, &[]).finish();
    assert!(first.status.success(), "{}", first.stderr);
    let second = coordinate(&server, "claims", dir.path(), JOBS, &[]).finish();
    assert!(second.status.success(), "{}", second.stderr);
    assert_eq!(second.status("table"), Status::Passed);

    let keys = runs_bucket_keys(&server, "claims");
    let args: Vec<&String> = keys.iter().filter(|key| key.ends_with(".args")).collect();
    assert_eq!(args.len(), 2, "{keys:?}");
    let claims: Vec<&String> = keys.iter().filter(|key| key.contains(".claim.")).collect();
    // Three jobs ran once each, in the first run; the second run ran none.
    assert_eq!(claims.len(), 3, "{keys:?}");
    let runs: std::collections::BTreeSet<&str> = claims
        .iter()
        .map(|key| key.split_once(".claim.").unwrap().0)
        .collect();
    assert_eq!(runs.len(), 1, "{keys:?}");
}
