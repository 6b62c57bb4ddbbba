//! The watch_movie binary under a careless or hostile user: the report's
//! mode, a symbolic link or a pipe as the report path, leftovers of a
//! killed run, SIGTERM, and a reader that goes away. Signals are sent for
//! real; the tests wait on lines the program prints, never on time.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod support;
use support::{example, stderr, stdout};

fn watch_movie() -> Command {
    let mut command = Command::new(example("watch_movie"));
    command
        .env_remove("RUST_LOG")
        .args(["--progress", "never", "--color", "never"]);
    command
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn the_report_and_the_event_stream_follow_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let (report, events) = (dir.path().join("r.json"), dir.path().join("e.jsonl"));
    for (umask, expected) in [("027", 0o640), ("002", 0o664)] {
        let output = Command::new("sh")
            .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
            .arg(example("watch_movie"))
            .args(["-q", "--report-json"])
            .arg(&report)
            .arg("--events-json")
            .arg(&events)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert_eq!(mode(&report), expected, "report, umask {umask}");
        assert_eq!(mode(&events), expected, "events, umask {umask}");
        std::fs::remove_file(&report).unwrap();
        std::fs::remove_file(&events).unwrap();
    }
}

#[test]
fn a_symbolic_link_at_the_report_path_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    let real = dir.path().join("reports/latest.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("report.json");
    std::os::unix::fs::symlink("reports/latest.json", &link).unwrap();
    let output = watch_movie()
        .arg("-q")
        .arg("--report-json")
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    assert_eq!(names(&dir.path().join("reports")), ["latest.json"]);
}

/// A symbolic link in a temporary folder to `device`: what a test hands
/// the program instead of the device itself, so that a regression (a file
/// renamed over the path) replaces the link, never the machine's `/dev`.
fn link_to(dir: &Path, device: &str) -> std::path::PathBuf {
    let link = dir.join(device.trim_start_matches("/dev/"));
    std::os::unix::fs::symlink(device, &link).unwrap();
    link
}

#[test]
fn a_report_to_dev_stdout_goes_down_the_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let output = watch_movie()
        .arg("-q")
        .arg("--report-json")
        .arg(link_to(dir.path(), "/dev/stdout"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
}

/// Starts watch_movie with `args` and waits until it prints the line
/// `until` on stderr; returns the child and what it printed so far.
/// `--retry-delay 1h` keeps a run going until something stops it.
fn start_and_wait_for(args: &[&str], until: &str) -> (Child, String) {
    let mut child = watch_movie()
        .args(["-d", "--retry-delay", "1h"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "ended before {until:?}: {seen}"
        );
        seen.push_str(&line);
        if line.trim_end() == until {
            break;
        }
    }
    child.stderr = Some(lines.into_inner());
    (child, seen)
}

fn finish(mut child: Child, mut seen: String) -> (Output, String) {
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (output, seen)
}

const ROUND_ONE_ENDS: &str = "SitOnCouch.recheck: fail \"No space on couch.\"";

#[test]
fn sigterm_cancels_like_ctrl_c_cleanups_run_and_the_report_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let (child, seen) =
        start_and_wait_for(&["--report-json", report.to_str().unwrap()], ROUND_ONE_ENDS);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let (output, err) = finish(child, seen);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("cancelling: phases under way finish"), "{err}");
    assert!(err.contains("CleanCouch.cleanup running"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["stopped"], "cancelled");
    assert!(
        stdout(&output).contains("stopped early: cancelled"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn the_temporary_file_of_a_killed_run_is_removed_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let args = ["--report-json", report.to_str().unwrap()];
    let (child, seen) = start_and_wait_for(&args, ROUND_ONE_ENDS);
    let pid = child.id();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let (output, _) = finish(child, seen);
    assert_eq!(output.status.code(), None, "killed");
    assert_eq!(
        names(dir.path()),
        [format!(".report.json.{pid}.0.dojobber-tmp")]
    );

    let rerun = watch_movie().arg("-q").args(args).output().unwrap();
    assert_eq!(rerun.status.code(), Some(1), "{}", stderr(&rerun));
    assert_eq!(names(dir.path()), ["report.json"]);
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    for args in [&["--list"][..], &[][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = watch_movie().args(args).stdout(writer).output().unwrap();
        let expected = if args.is_empty() { 1 } else { 0 };
        assert_eq!(
            output.status.code(),
            Some(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{args:?}");
    }
}

/// Starts `program` with `args` and waits until it prints the line
/// `until` on stderr; returns the child and what it printed so far.
fn start_program_and_wait_for(program: &str, args: &[&str], until: &str) -> (Child, String) {
    let mut child = Command::new(example(program))
        .env_remove("RUST_LOG")
        .args(["--progress", "never", "--color", "never"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    wait_for_line(&mut lines, &mut seen, until);
    child.stderr = Some(lines.into_inner());
    (child, seen)
}

fn wait_for_line(lines: &mut impl BufRead, seen: &mut String, until: &str) {
    loop {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "ended before {until:?}: {seen}"
        );
        seen.push_str(&line);
        if line.trim_end().starts_with(until) {
            return;
        }
    }
}

/// A check past its time limit never returns: once everything else is
/// done the run says it waits only for it, the first SIGTERM cancels, and
/// the second writes the report as it stands (the check timed out and had
/// not returned, the cleanup not run is named) and the summary, and exits
/// with 130. Alone and with a pool.
#[test]
fn a_second_signal_writes_the_report_of_a_run_that_waits_for_a_hung_phase() {
    for workers in ["1", "4"] {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        let args = ["-j", workers, "--report-json", report.to_str().unwrap()];
        let hint = "Ctrl-C twice to exit without waiting";
        let (mut child, mut seen) = start_program_and_wait_for("hangs", &args, hint);
        let pid = Pid::from_raw(child.id() as i32);
        let waiting = "waiting for Hangs.check, abandoned at its 50ms time limit: \
                       it cannot be stopped, and the run ends when it returns\n";
        assert!(seen.contains(waiting), "{seen}");
        kill(pid, Signal::SIGTERM).unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        wait_for_line(&mut lines, &mut seen, "cancelling:");
        kill(pid, Signal::SIGTERM).unwrap();
        child.stderr = Some(lines.into_inner());
        let (output, err) = finish(child, seen);
        assert_eq!(output.status.code(), Some(130), "{err}");
        assert!(err.contains("cleanups not run: Cleaned"), "{err}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(report["stopped"], "cancelled");
        let jobs = report["jobs"].as_array().unwrap();
        let hangs = jobs.iter().find(|job| job["name"] == "Hangs").unwrap();
        assert_eq!(hangs["status"], "failed");
        let error = hangs["last_error"]["message"].as_str().unwrap();
        assert!(
            error.starts_with("timed out after 50ms (it had not returned after "),
            "{error}"
        );
        let root = jobs.iter().find(|job| job["name"] == "Root").unwrap();
        assert_eq!(
            (&root["status"], &root["blocked_by"]),
            (&"blocked".into(), &"Hangs".into())
        );
        assert!(
            stdout(&output).contains("failed Hangs"),
            "{}",
            stdout(&output)
        );
    }
}
