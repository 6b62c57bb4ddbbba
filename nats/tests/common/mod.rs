//! What the distributed tests share: a real server, and the demo program
//! started as workers and coordinators, as a user would start them.

#![allow(dead_code)] // each test file uses its own part

pub mod server;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use server::NatsServer;

/// The longest any process of these tests may take; past it, the test
/// fails as hung.
pub const HANG: Duration = Duration::from_secs(60);

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub what: String,
    /// Its stderr's lines as they come, with when each came, once
    /// [`watch_stderr`](Proc::watch_stderr) took the pipe.
    pub lines: Option<Lines>,
}

/// Lines a process wrote, each with when it was read.
pub type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

impl Proc {
    /// Reads its stderr on a thread from now on, keeping each line with
    /// when it came (for [`wait_for_line`](Proc::wait_for_line)).
    pub fn watch_stderr(mut self) -> Proc {
        let pipe = self.child.stderr.take().expect("stderr piped");
        let lines: Lines = Arc::default();
        let keep = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                keep.lock().unwrap().push((Instant::now(), line));
            }
        });
        self.lines = Some(lines);
        self
    }

    /// Waits until it wrote a line on stderr containing `text`; returns
    /// when the line was read and the line. Fails the test after [`HANG`].
    pub fn wait_for_line(&self, text: &str) -> (Instant, String) {
        let lines = self.lines.as_ref().expect("stderr watched");
        let until = Instant::now() + HANG;
        loop {
            if let Some(found) = lines
                .lock()
                .unwrap()
                .iter()
                .find(|(_, line)| line.contains(text))
            {
                return found.clone();
            }
            assert!(
                Instant::now() < until,
                "{} never said {text:?}; it said:\n{}",
                self.what,
                self.said()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it wrote on stderr so far, when watched.
    pub fn said(&self) -> String {
        let lines = self
            .lines
            .as_ref()
            .map(|lines| lines.lock().unwrap().clone());
        let lines = lines.unwrap_or_default();
        lines.iter().map(|(_, line)| format!("{line}\n")).collect()
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to end, failing the test if it takes longer
    /// than [`HANG`]; returns its status, stdout and stderr.
    pub fn finish(mut self) -> Finished {
        let until = Instant::now() + HANG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > until {
                self.kill();
                panic!("{} did not end within {HANG:?}: hung", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let read = |pipe: Option<&mut dyn std::io::Read>| {
            let mut text = String::new();
            if let Some(pipe) = pipe {
                pipe.read_to_string(&mut text).expect("read a pipe");
            }
            text
        };
        let stdout = read(self.child.stdout.as_mut().map(|p| p as _));
        let mut stderr = read(self.child.stderr.as_mut().map(|p| p as _));
        if let Some(lines) = &self.lines {
            // The reading thread ends at the pipe's end, soon after the process.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(lines) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            stderr = self.said();
        }
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a coordinator ended.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The JSON report it printed.
    pub fn report(&self) -> dojobber::Report {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no report ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// The status of job `name` in the report.
    pub fn status(&self, name: &str) -> dojobber::Status {
        let report = self.report();
        report
            .job(name)
            .unwrap_or_else(|| panic!("no job {name} in the report"))
            .status()
    }
}

/// A short ack wait, for the tests that kill a worker and wait for its
/// try to come back: give it to the workers and the coordinator. Tests
/// that kill nothing keep the default (30 s), which no load reaches.
pub const SHORT_ACK_WAIT: [&str; 2] = ["--ack-wait", "1500ms"];

/// The demo program in `mode`, with the server, suite and lease TTL of a
/// test (`extra` may set other timings).
pub fn demo(server: &NatsServer, suite: &str, mode: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dojobber-nats-demo"));
    command
        .arg(mode)
        .args(["--nats", &server.url(), "--suite", suite]);
    if !extra.contains(&"--lease-ttl") {
        command.args(["--lease-ttl", "10s"]);
    }
    command.args(extra).stdin(Stdio::null());
    command
}

/// Starts a worker.
pub fn worker(server: &NatsServer, suite: &str, name: &str, labels: &str, extra: &[&str]) -> Proc {
    let mut command = demo(server, suite, "worker", extra);
    command.args(["--name", name]);
    if !labels.is_empty() {
        command.args(["--labels", labels]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a worker");
    Proc {
        child,
        what: format!("worker {name}"),
        lines: None,
    }
}

/// Starts a coordinator of `jobs` (JSON) in `dir`: 16 tries in flight,
/// quiet, the JSON report on stdout.
pub fn coordinate(
    server: &NatsServer,
    suite: &str,
    dir: &Path,
    jobs: &str,
    extra: &[&str],
) -> Proc {
    let quiet = ["-j", "16", "-q", "--report-json", "/dev/stdout"];
    coordinator(server, suite, dir, jobs, &[extra, &quiet].concat())
}

/// Starts a coordinator of `jobs` (JSON) in `dir` with only `flags`.
pub fn coordinator(
    server: &NatsServer,
    suite: &str,
    dir: &Path,
    jobs: &str,
    flags: &[&str],
) -> Proc {
    let child = demo(server, suite, "coordinate", flags)
        .arg("--dir")
        .arg(dir)
        .args(["--spec", jobs])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a coordinator");
    Proc {
        child,
        what: "the coordinator".into(),
        lines: None,
    }
}

/// Waits until `path` exists (an event a job makes), failing the test as
/// hung after [`HANG`].
pub fn wait_for_file(path: &Path) {
    let until = Instant::now() + HANG;
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The content of a file a job made: the worker that ran it.
pub fn made_by(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
