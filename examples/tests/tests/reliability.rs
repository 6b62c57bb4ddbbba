//! The watch_movie binary under a careless or hostile user: the report's
//! mode, a symbolic link or a pipe as the report path, leftovers of a
//! killed run, SIGTERM, and a reader that goes away. Signals are sent for
//! real; the tests wait on lines the program prints, never on time.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
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

#[test]
fn outputs_on_stdout_hold_it_alone_and_the_summary_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // stdout redirected to a file, the report through `/dev/stdout`: the
    // summary once overwrote the report's start.
    let file = dir.path().join("out.json");
    let output = watch_movie()
        .arg("--report-json")
        .arg(link_to(dir.path(), "/dev/stdout"))
        .stdout(std::fs::File::create(&file).unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    assert!(
        stderr(&output).starts_with("20 jobs in "),
        "{}",
        stderr(&output)
    );
    // A pipe, with `-` for stdout.
    let output = watch_movie().args(["--report-json", "-"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    assert!(
        stderr(&output).starts_with("20 jobs in "),
        "{}",
        stderr(&output)
    );
    let output = watch_movie().args(["--events-json", "-"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    for line in stdout(&output).lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(event["event"].is_string(), "{line}");
    }
    assert!(
        stderr(&output).starts_with("20 jobs in "),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("-").exists() && !Path::new("-").exists());
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
    assert!(
        err.contains(
            "cancelling: phases under way finish, then cleanups run \
             (a second signal exits at once, writing the report as it stands)\n"
        ),
        "worded for any signal, not Ctrl-C alone: {err}"
    );
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

/// A FIFO at `path` and its reader, which never reads and holds little:
/// the program's write of more than the returned size blocks until the
/// program is stopped.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // mkfifo and F_SETPIPE_SZ: libc calls
fn stalled_fifo(path: &Path) -> (std::fs::File, usize) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o644) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    // SAFETY: an open descriptor of a pipe; the smallest size is a page.
    let size = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        size > 0,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    (reader, size as usize)
}

#[cfg(target_os = "linux")]
#[test]
fn a_signal_after_the_run_skips_the_outputs_not_written_but_the_report_and_keeps_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.svg");
    let drawn = watch_movie()
        .arg("-q")
        .arg("--graph")
        .arg(&whole)
        .output()
        .unwrap();
    assert_eq!(drawn.status.code(), Some(1), "{}", stderr(&drawn));
    let svg_size = std::fs::metadata(&whole).unwrap().len() as usize;
    std::fs::remove_file(&whole).unwrap();

    // The picture goes to a FIFO nobody reads: its write cannot end.
    let fifo = dir.path().join("run.svg");
    let (_reader, room) = stalled_fifo(&fifo);
    assert!(
        svg_size > room,
        "the picture ({svg_size} bytes) overflows the pipe ({room})"
    );
    let (report, page) = (dir.path().join("report.json"), dir.path().join("run.html"));
    let mut child = watch_movie()
        .arg("--report-json")
        .arg(&report)
        .arg("--graph")
        .arg(&fifo)
        .arg("--html")
        .arg(&page)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The summary comes before the outputs.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut summary = String::new();
    out.read_line(&mut summary).unwrap();
    assert!(summary.starts_with("20 jobs in "), "{summary}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    out.read_to_string(&mut summary).unwrap();
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "the run's: {err}");
    assert!(
        err.starts_with(
            "stopping: the report is written, the other outputs not written yet are skipped \
             (signal twice more to quit at once)\n"
        ),
        "{err}"
    );
    let stopped = |flag: &str, path: &Path, how: &str| {
        err.contains(&format!(
            "error: {flag} {}: {how}: stopped by a signal; the exit code is the run's\n",
            path.display()
        ))
    };
    // The pipe's write may have begun before the signal, or not.
    assert!(
        stopped("--graph", &fifo, "not written") || stopped("--graph", &fifo, "cut short"),
        "{err}"
    );
    assert!(stopped("--html", &page, "not written"), "{err}");
    // A signal never skips the report the run produced.
    assert!(!err.contains("error: --report-json"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    assert_eq!(
        names(dir.path()),
        ["report.json", "run.svg"],
        "no temporary file is left"
    );
}

/// Whether `name` has the form of the temporary files outputs are
/// written to: `.NAME.PID.RANDOM.dojobber-tmp`.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".dojobber-tmp")
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
    let left = names(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(&format!(".report.json.{pid}.")) && is_temporary(&left[0]),
        "{left:?}"
    );

    // Another output's leftover, and one with a name that is not UTF-8,
    // go too: every leftover of a dead process in the folder.
    let other = ".run.html.2147483647.Xy7.dojobber-tmp";
    std::fs::write(dir.path().join(other), "half").unwrap();
    let odd = std::ffi::OsStr::from_bytes(b".r\xff.svg.2147483647.0.dojobber-tmp");
    std::fs::write(dir.path().join(odd), "half").unwrap();
    let rerun = watch_movie().arg("-q").args(args).output().unwrap();
    assert_eq!(rerun.status.code(), Some(1), "{}", stderr(&rerun));
    assert_eq!(names(dir.path()), ["report.json"]);
}

/// The outputs' names in [`links_planted_at_every_temporary_name_are_never_followed`].
const OUTPUTS: [(&str, &str); 5] = [
    ("--report-json", "r.json"),
    ("--html", "run.html"),
    ("--graph", "g.svg"),
    ("--graph-before", "plan.svg"),
    ("--events-json", "e.jsonl"),
];

/// Another user plants symbolic links to a file of the victim's at every
/// name an output's temporary file could have under a predictable scheme
/// (the one before: `.NAME.PID.N.dojobber-tmp`, for this PID and the next
/// ones, and the usual patterns of editors and tools), then the victim
/// runs the program in that folder: no link is followed, none is replaced
/// or removed, and the victim's file never changes.
#[test]
fn links_planted_at_every_temporary_name_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    // The shell's PID is the program's: it waits for the links, then execs.
    let mut command = Command::new("sh");
    command
        .args(["-c", "read -r planted && exec \"$0\" \"$@\""])
        .arg(example("watch_movie"))
        .args(["-q", "--progress", "never"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (flag, name) in OUTPUTS {
        command.args([flag, name]);
    }
    let mut child = command.spawn().unwrap();
    let pid = child.id();
    let mut planted = Vec::new();
    for (_, name) in OUTPUTS {
        for next in pid..pid + 64 {
            for counter in 0..8 {
                planted.push(format!(".{name}.{next}.{counter}.dojobber-tmp"));
            }
            planted.push(format!(".{name}.{next}.dojobber-tmp"));
        }
        for pattern in [
            ".{}.tmp",
            "{}.tmp",
            ".{}.swp",
            "{}~",
            ".{}.dojobber-tmp",
            "{}.new",
        ] {
            planted.push(pattern.replace("{}", name));
        }
    }
    for name in &planted {
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    for name in &planted {
        let link = dir.path().join(name);
        let meta = std::fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_symlink(), "{name} was replaced");
        assert_eq!(std::fs::read_link(&link).unwrap(), victim, "{name}");
    }
    for (_, name) in OUTPUTS {
        let meta = std::fs::symlink_metadata(dir.path().join(name)).unwrap();
        assert!(meta.is_file(), "{name} is a file of its own");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    let mut left = names(dir.path());
    left.retain(|name| !planted.contains(name));
    assert_eq!(
        left,
        [
            "e.jsonl",
            "g.svg",
            "plan.svg",
            "r.json",
            "run.html",
            "victim.txt"
        ],
        "no temporary file is left"
    );
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
/// Issue 20, item 17: `hangs --help` described itself with the doc
/// comment of the flags' struct (`The flags of a dojobber program, as a
/// clap argument group`), which is for the programmer, not the user.
#[test]
fn hangs_help_describes_the_program() {
    let output = Command::new(example("hangs"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        help.starts_with("A suite with a check that never returns"),
        "{help}"
    );
    assert!(!help.contains("argument group"), "{help}");
}

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

/// Two signals close together after the run's end, before its outputs
/// (the summary waits on a full stdout): the report the run produced is
/// written all the same, whichever way they land (the first may still
/// find the run lending its report, and the second then writes it as the
/// run stood). The events come through a FIFO, whose last line says the
/// cleanups are over: no clock decides anything.
#[cfg(target_os = "linux")]
#[test]
#[allow(unsafe_code)] // mkfifo and F_SETPIPE_SZ: libc calls
fn two_signals_before_the_outputs_never_lose_the_report() {
    use std::os::unix::io::AsRawFd;
    let dir = tempfile::tempdir().unwrap();
    let (report, events) = (dir.path().join("report.json"), dir.path().join("e.jsonl"));
    let name = std::ffi::CString::new(events.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    // stdout: a pipe already full, so the summary waits for the test.
    let (mut summary, mut full) = std::io::pipe().unwrap();
    // SAFETY: an open descriptor of a pipe; the smallest size is a page.
    let room = unsafe { libc::fcntl(full.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert!(
        room > 0,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    full.write_all(&vec![b'.'; room as usize]).unwrap();
    let mut child = watch_movie()
        .arg("--report-json")
        .arg(&report)
        .arg("--events-json")
        .arg(&events)
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = BufReader::new(std::fs::File::open(&events).unwrap());
    let mut seen = String::new();
    wait_for_line(&mut stream, &mut seen, r#"{"event":"cleanup_finished"}"#);
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    kill(pid, Signal::SIGTERM).unwrap();
    let mut out = Vec::new();
    summary.read_to_end(&mut out).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(1 | 130)), "{status:?}: {err}");
    assert!(!err.contains("--report-json"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20, "{err}");
}
