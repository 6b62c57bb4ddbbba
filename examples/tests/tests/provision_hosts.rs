//! The provision example across three hosts, run as its README says:
//! `examples/hosts/run`, which starts a real `nats-server -js`, a
//! worker per host and the coordinator. The test fails, never skips, when
//! `nats-server` is missing (the script says how to install it).

#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dojobber::{Phase, Report, Status};
use rusqlite::Connection;

/// The longest a run of the script may take; past it, the test fails as hung.
const HANG: Duration = Duration::from_secs(120);

const HOSTS: [&str; 3] = ["db", "app1", "app2"];

/// Runs `examples/hosts/run` with the hosts' directories under
/// `dir`, starting workers for `hosts` only, with the coordinator's
/// `flags`; returns what it printed and its report.
fn run_script(dir: &Path, hosts: &str, flags: &[&str]) -> (Output, Report) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hosts/run");
    let report = dir.join("report.json");
    let mut child = Command::new(script)
        .env("PROVISION_HOSTS_BIN", support::example("provision_hosts"))
        .env("PROVISION_DIR", dir)
        .env("PROVISION_HOSTS", hosts)
        .env_remove("PROVISION_CONFIG")
        .arg("--report-json")
        .arg(&report)
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the script starts");
    let until = Instant::now() + HANG;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > until {
            // The script stops its server, workers and coordinator on TERM.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let output = child.wait_with_output().expect("wait");
            panic!(
                "the script did not end within {HANG:?}: hung\n{}{}",
                support::stdout(&output),
                support::stderr(&output)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("wait");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|error| {
        panic!(
            "no report ({error}): exit {:?}\n{}",
            output.status,
            support::stderr(&output)
        )
    });
    (output, serde_json::from_str(&text).expect("a report"))
}

fn statuses(report: &Report) -> BTreeMap<String, Status> {
    report
        .jobs()
        .map(|job| (job.name().to_owned(), job.status()))
        .collect()
}

/// Every file and directory under `root`: content (for files), mode and
/// modification time, to tell that nothing changed.
fn tree(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                stack.push(path.clone());
                Vec::new()
            };
            let key = path.strip_prefix(root).unwrap().to_path_buf();
            found.insert(key, (content, meta.mode(), meta.mtime(), meta.mtime_nsec()));
        }
    }
    found
}

/// When a job's first phase was handed out, and when its try ended (its
/// cleanup comes at the end of the run).
fn span(report: &Report, job: &str) -> (Duration, Duration) {
    let phases = &report
        .job(job)
        .unwrap_or_else(|| panic!("no job {job:?}"))
        .phases();
    let first = phases.first().expect("a phase").start();
    let last = phases
        .iter()
        .filter(|phase| phase.phase != Phase::Cleanup)
        .map(|phase| phase.end())
        .max()
        .unwrap();
    (first, last)
}

#[test]
fn one_command_converges_three_hosts_after_the_db_host_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (output, first) = run_script(dir.path(), "db app1 app2", &[]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let jobs = statuses(&first);
    assert_eq!(jobs.len(), 19, "{jobs:?}");
    for (job, status) in &jobs {
        assert!(status.is_success(), "{job}: {status:?}");
    }
    assert_eq!(jobs["db: table entries"], Status::Fixed);
    assert_eq!(jobs["app1: file etc/guestbook/app.conf"], Status::Fixed);

    // Each host's directory has its own part, and only that.
    let db = dir.path().join("db");
    let connection = Connection::open(db.join("var/lib/guestbook/guestbook.db")).unwrap();
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["entries", "users"]);
    assert!(!db.join("etc/guestbook").exists());
    for (host, port) in [("app1", 8080), ("app2", 8081)] {
        let root = dir.path().join(host);
        let conf = std::fs::read_to_string(root.join("etc/guestbook/app.conf")).unwrap();
        assert!(
            conf.contains(&format!("listen = \"0.0.0.0:{port}\"")),
            "{conf}"
        );
        // What the db host shared: where its database is, and its tables.
        let location = db.join("var/lib/guestbook/guestbook.db");
        let shared = format!(
            "database = \"db:{}\"\ntables = \"entries,users\"",
            location.display()
        );
        assert!(conf.contains(&shared), "{conf}");
        assert!(!root.join("var/lib/guestbook").exists(), "{host}");
        // The app host's configuration was written after the db host's
        // tables were made and shared.
        let (conf_start, _) = span(&first, &format!("{host}: file etc/guestbook/app.conf"));
        for db_job in ["db: table entries", "db: share database"] {
            let (_, db_end) = span(&first, db_job);
            assert!(
                conf_start >= db_end,
                "{host}: {conf_start:?} < {db_end:?} ({db_job})"
            );
        }
    }

    let before: Vec<_> = HOSTS
        .iter()
        .map(|host| tree(&dir.path().join(host)))
        .collect();
    let (output, second) = run_script(dir.path(), "db app1 app2", &[]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    for job in second.jobs() {
        assert_eq!(job.status(), Status::Passed, "{}", job.name());
        assert_eq!(
            job.phases().len(),
            1,
            "{}: only its first check",
            job.name()
        );
    }
    let after: Vec<_> = HOSTS
        .iter()
        .map(|host| tree(&dir.path().join(host)))
        .collect();
    assert_eq!(before, after, "the second run changed a host's directory");
}

#[test]
fn a_host_with_no_worker_has_its_jobs_stopped_with_a_reason_while_the_others_converge() {
    let dir = tempfile::tempdir().unwrap();
    let (output, report) = run_script(dir.path(), "db app1", &["--deadline", "15"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        support::stderr(&output)
    );
    for job in report.jobs() {
        if job.name().starts_with("app2: ") {
            assert!(
                !job.status().is_success(),
                "{}: {:?}",
                job.name(),
                job.status()
            );
        } else if job.name() != "provision" {
            assert!(
                job.status().is_success(),
                "{}: {:?}",
                job.name(),
                job.status()
            );
        }
    }
    let target = report.job("app2: target").unwrap();
    assert_eq!(target.status(), Status::Failed);
    let error = &target.last_error().expect("a reason").message;
    assert!(error.contains("deadline"), "{error}");
    let conf = report.job("app2: file etc/guestbook/app.conf").unwrap();
    assert_eq!(conf.status(), Status::Blocked);
    assert!(conf.blocked_by().is_some());
    // Its directory was never touched.
    let app2 = dir.path().join("app2");
    assert!(!app2.exists());
}
