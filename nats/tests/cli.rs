//! The command line of a suite over NATS, as a user runs it: the demo
//! program as a worker and as a coordinator with a local run's flags.

mod common;

use std::process::{Command, Stdio};

use common::{NatsServer, coordinator, worker};
use dojobber::Status;

const JOBS: &str = r#"[
    {"name": "table", "label": "db"},
    {"name": "app", "deps": ["table"]}
]"#;

#[test]
fn a_coordinator_writes_the_report_the_graph_the_events_and_the_page_a_local_run_does() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let _db = worker(&server, "cli", "db1", "db", &[]);
    let path = |name: &str| out.path().join(name).to_str().unwrap().to_owned();
    // Links where a predictable temporary of the jobs' files would be
    // (`table.partial` for `table.done`), to a file of someone else's.
    let victim = out.path().join("victim");
    std::fs::write(&victim, "not yours").unwrap();
    for job in ["table", "app"] {
        std::os::unix::fs::symlink(&victim, dir.path().join(format!("{job}.partial"))).unwrap();
    }
    let flags = [
        "-j",
        "4",
        "-v",
        "--report-json",
        &path("report.json"),
        "--graph",
        &path("run.dot"),
        "--events-json",
        &path("events.jsonl"),
        "--html",
        &path("run.html"),
    ];
    let finished = coordinator(&server, "cli", dir.path(), JOBS, &flags).finish();
    assert!(
        finished.status.success(),
        "{}\n{}",
        finished.stdout,
        finished.stderr
    );

    let report: dojobber::Report =
        serde_json::from_slice(&std::fs::read(path("report.json")).unwrap()).unwrap();
    assert_eq!(report.job("table").unwrap().status(), Status::Fixed);
    assert_eq!(report.job("app").unwrap().status(), Status::Fixed);

    let dot = std::fs::read_to_string(path("run.dot")).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    for job in ["table", "app", "all"] {
        assert!(dot.contains(job), "{job} missing from\n{dot}");
    }

    let events = std::fs::read_to_string(path("events.jsonl")).unwrap();
    let kinds: Vec<String> = events
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            event["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("round_started"));
    assert!(kinds.contains(&"run_finished".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"cleanup_finished".to_owned()), "{kinds:?}");

    let page = std::fs::read_to_string(path("run.html")).unwrap();
    assert!(page.contains("<html"), "not a page");

    // -v prints each phase, as a local run does; the summary is on stdout.
    for line in [
        "table.check: fail\n",
        "table.run: pass\n",
        "app.recheck: pass\n",
    ] {
        assert!(finished.stderr.contains(line), "{}", finished.stderr);
    }
    let summary = "1 passed, 2 fixed, 0 failed, 0 blocked";
    assert!(finished.stdout.contains(summary), "{}", finished.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("table.done")).unwrap(),
        "db1"
    );
    // The jobs' files are written through temporaries nobody can guess
    // and leave none behind: the planted links are neither followed nor
    // moved, and the victim is unchanged.
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
    let mut made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    made.sort();
    let expected = [
        "app.cleaned",
        "app.done",
        "app.partial",
        "table.cleaned",
        "table.done",
        "table.partial",
    ];
    assert_eq!(made, expected);
    for job in ["table", "app"] {
        let done = dir.path().join(format!("{job}.done"));
        assert!(
            std::fs::symlink_metadata(&done).unwrap().is_file(),
            "{job}.done"
        );
        let planted = dir.path().join(format!("{job}.partial"));
        assert_eq!(std::fs::read_link(&planted).unwrap(), victim);
    }
}

#[test]
fn list_graph_before_and_flag_checks_come_before_the_server_and_only_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let demo = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dojobber-nats-demo"));
        command
            .args([
                "coordinate",
                "--nats",
                "nats://127.0.0.1:1",
                "--suite",
                "none",
            ])
            .arg("--dir")
            .arg(dir.path())
            .args(["--spec", JOBS])
            .stdin(Stdio::null());
        command
    };
    let listed = demo().arg("--list").output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.find("table").unwrap() < listed.find("app").unwrap(),
        "{listed}"
    );

    // The plan is drawn before the run, which then cannot reach a server.
    let plan = dir.path().join("plan.dot");
    let unreachable = demo().arg("--graph-before").arg(&plan).output().unwrap();
    assert_eq!(unreachable.status.code(), Some(2), "{unreachable:?}");
    let stderr = String::from_utf8(unreachable.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: cannot connect to the NATS server at nats://127.0.0.1:1 (--nats): "
        ),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(&plan).unwrap().contains("table"));

    let only = demo().args(["--only", "app"]).output().unwrap();
    assert_eq!(only.status.code(), Some(2));
    let stderr = String::from_utf8(only.stderr).unwrap();
    assert!(stderr.contains("--only"), "{stderr}");

    // A connection flag's file that is not there is named before connecting.
    let missing = dir.path().join("no-such-ca.pem");
    let no_ca = demo().arg("--tls-ca").arg(&missing).output().unwrap();
    assert_eq!(no_ca.status.code(), Some(2));
    let stderr = String::from_utf8(no_ca.stderr).unwrap();
    let named = format!("error: --tls-ca {}: ", missing.display());
    assert!(stderr.starts_with(&named), "{stderr}");

    // A file that cannot be written stops the run before it connects.
    let unwritable = dir.path().join("no/such/dir/report.json");
    let refused = demo()
        .arg("--report-json")
        .arg(&unwritable)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(stderr.contains("--report-json"), "{stderr}");
}

#[test]
fn sigterm_cancels_a_coordinated_run_which_ends_with_its_report() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Its worker is killed: the run ends an ack wait after that.
    let mut slow = worker(&server, "term", "slow1", "slow", &common::SHORT_ACK_WAIT);
    let report_path = out.path().join("report.json");
    let gated = r#"[
        {"name": "gate", "label": "slow", "gate": true},
        {"name": "after", "deps": ["gate"]}
    ]"#;
    let report_arg = report_path.to_str().expect("a UTF-8 temporary path");
    let flags = [
        &common::SHORT_ACK_WAIT[..],
        &["-q", "--report-json", report_arg],
    ]
    .concat();
    let coordinator = coordinator(&server, "term", dir.path(), gated, &flags);
    common::wait_for_file(&dir.path().join("gate.started"));
    let pid = coordinator.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    // The gate is never released: its worker dies instead. Only a cancel
    // lets the coordinator give up on a try in flight (once the dead
    // worker's claim has stayed still for an ack wait), so the run ends
    // only through the signal, whenever the handler's cancel lands.
    let finished = {
        let mut coordinator = coordinator;
        let mut stderr = coordinator.child.stderr.take().unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("cancelling") {
            let read = std::io::Read::read(&mut stderr, &mut byte).unwrap();
            assert_ne!(read, 0, "{}", String::from_utf8_lossy(&seen));
            seen.push(byte[0]);
        }
        slow.kill();
        coordinator.finish()
    };
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    let report: dojobber::Report =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report.stopped, Some(dojobber::StopReason::Cancelled));
    assert_eq!(report.job("gate").unwrap().status(), Status::Failed);
    assert_eq!(report.job("after").unwrap().status(), Status::Blocked);
}

#[test]
fn with_stderr_full_the_program_exits_with_its_code_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let full = || {
        std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dojobber-nats-demo"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(full())
            .status()
            .unwrap()
            .code()
    };
    let nowhere = ["--nats", "nats://127.0.0.1:1", "--suite", "none"];
    let dir = dir.path().to_str().unwrap();
    let coordinate = |extra: &[&str]| {
        let mut args = vec!["coordinate"];
        args.extend(nowhere);
        args.extend(["--dir", dir]);
        args.extend(extra);
        run(&args)
    };
    // Refused before it starts, each with a line on stderr it cannot write.
    assert_eq!(coordinate(&["--spec", JOBS, "--only", "app"]), Some(2));
    assert_eq!(coordinate(&["--spec", "not json"]), Some(2));
    assert_eq!(coordinate(&["--spec", JOBS]), Some(2), "no server");
    let missing = format!("{dir}/no-such-ca.pem");
    let mut worker = vec!["worker"];
    worker.extend(nowhere);
    worker.extend(["--name", "w", "--tls-ca", &missing]);
    assert_eq!(run(&worker), Some(2));
}

/// A worker started with the stderr piped, as an operator sees it.
fn speaking_worker(server_url: &str, suite: &str, name: &str, extra: &[&str]) -> common::Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_dojobber-nats-demo"))
        .args([
            "worker", "--nats", server_url, "--suite", suite, "--name", name,
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a worker");
    common::Proc {
        child,
        what: format!("worker {name}"),
        lines: None,
    }
    .watch_stderr()
}

#[test]
fn a_worker_says_when_it_is_ready_and_what_it_serves() {
    let server = NatsServer::start();
    let worker = speaking_worker(&server.url(), "hello", "db1", &["--labels", "db,cache"]);
    let (_, line) = worker.wait_for_line("ready");
    let port = server.url().rsplit(':').next().unwrap().to_owned();
    assert!(
        line.contains("worker db1 ready: suite hello on")
            && line.contains(&port)
            && line.contains("labels db, cache and jobs with none"),
        "{line}"
    );
}

#[test]
fn a_worker_given_a_wrong_url_says_so_within_seconds_and_again() {
    // A port nothing listens on: the server's, once it is gone.
    let mut server = NatsServer::start();
    let url = server.url();
    server.stop();
    let worker = speaking_worker(&url, "nowhere", "lost", &[]);
    let (first, line) = worker.wait_for_line("cannot connect to the NATS server at");
    assert!(
        line.contains(&url) && line.contains("trying again"),
        "{line}"
    );
    // Said again while it waits, not only once.
    let lines = worker.lines.as_ref().unwrap();
    let until = first + common::HANG;
    while lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, l)| l.contains("cannot connect"))
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < until,
            "said once only:\n{}",
            worker.said()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_worker_name_a_live_worker_holds_is_refused_and_free_once_that_worker_is_gone() {
    let server = NatsServer::start();
    let ttl = ["--lease-ttl", "1500ms"];
    let mut first = speaking_worker(&server.url(), "names", "web1", &ttl);
    first.wait_for_line("worker web1 ready");

    let second = speaking_worker(&server.url(), "names", "web1", &ttl).finish();
    assert_eq!(second.status.code(), Some(2), "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("worker name \"web1\" is in use by a live worker of suite \"names\""),
        "{}",
        second.stderr
    );

    first.kill();
    // Refused until the dead worker's key expires, then accepted: each
    // attempt is a process that ends (refused) or says it is ready.
    let until = std::time::Instant::now() + common::HANG;
    loop {
        let mut third = speaking_worker(&server.url(), "names", "web1", &ttl);
        let ended = loop {
            if third.said().contains("worker web1 ready") {
                break None;
            }
            if let Some(status) = third.child.try_wait().unwrap() {
                break Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        match ended {
            None => break,
            Some(status) => assert_eq!(status.code(), Some(2), "{}", third.said()),
        }
        assert!(
            std::time::Instant::now() < until,
            "the name was never free again"
        );
    }
}
