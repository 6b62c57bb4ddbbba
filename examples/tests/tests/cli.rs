//! The watch_movie binary as a user runs it: exit codes, the JSON report,
//! the event stream, `--list` and the summary.

use std::path::Path;
use std::process::{Command, Output};

mod support;
use support::{example, stderr, stdout};

fn run(args: &[&str]) -> Output {
    Command::new(example("watch_movie"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the example runs")
}

#[test]
fn exit_code_is_0_when_every_job_passes() {
    let output = run(&[
        "--movie",
        "MST3K",
        "--battery-state",
        "charged",
        "--couch-space",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("20 jobs in "));
}

#[test]
fn exit_code_is_1_when_jobs_fail_and_the_report_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let output = run(&["--report-json", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["version"], 2);
    assert_eq!(report["no_act"], false);
    let jobs = report["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 20);
    let job = |name: &str| jobs.iter().find(|job| job["name"] == name).unwrap().clone();
    assert_eq!(job("TurnOnTV")["status"], "failed");
    assert_eq!(job("TurnOnTV")["tries"], 3);
    assert_eq!(
        job("TurnOnTV")["last_error"]["message"],
        "Remote batteries are dead."
    );
    assert_eq!(job("WatchMovie")["status"], "blocked");
    assert_eq!(job("WatchMovie")["blocked_by"], "StartMovie");
    assert_eq!(job("PopcornBowl")["status"], "fixed");
    assert!(job("PopcornBowl")["time_secs"].is_f64());
}

#[test]
fn exit_code_is_2_when_the_suite_cannot_start() {
    let unknown = run(&["--only", "TurnOnTv"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr(&unknown),
        "error: no job is named \"TurnOnTv\"; did you mean TurnOnTV?\n"
    );
    assert_eq!(stdout(&unknown), "", "nothing ran");
    let bad_flag = run(&["--tries", "0"]);
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(
        stderr(&bad_flag).contains("--tries"),
        "{}",
        stderr(&bad_flag)
    );
}

#[test]
fn only_runs_the_subgraph_of_a_job() {
    let output = run(&["--only", "Food", "-v"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("4 jobs in "),
        "{}",
        stdout(&output)
    );
    assert!(!stderr(&output).contains("TurnOnTV"));
}

#[test]
fn events_are_streamed_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let output = run(&["--events-json", path.to_str().unwrap(), "-q"]);
    assert_eq!(output.status.code(), Some(1));
    let text = std::fs::read_to_string(&path).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "round_started");
    assert_eq!(events.last().unwrap()["event"], "cleanup_finished");
    let first_phase = events
        .iter()
        .find(|e| e["event"] == "phase_finished")
        .unwrap();
    assert_eq!(first_phase["job"], "ValidateMovie");
    assert_eq!(first_phase["phase"], "check");
    assert_eq!(first_phase["outcome"], "pass");
    let blocked: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "job_blocked")
        .map(|e| e["job"].as_str().unwrap())
        .collect();
    assert_eq!(blocked, ["StartMovie", "WatchMovie"]);
}

#[test]
fn list_prints_the_reference_order_and_runs_nothing() {
    let output = run(&["--list"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stderr(&output), "");
    insta::assert_snapshot!("list", stdout(&output));
}

#[test]
fn summary_of_the_default_run() {
    let output = run(&["--color", "never"]);
    insta::with_settings!({filters => vec![(r"in \d+\.\d+s", "in [time]")]}, {
        insta::assert_snapshot!("summary", stdout(&output));
    });
}

#[test]
fn summary_of_a_run_past_its_deadline_says_why_jobs_are_blocked() {
    let output = run(&["--color", "never", "--deadline", "0s"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(!stdout(&output).contains('?'), "{}", stdout(&output));
    insta::with_settings!({filters => vec![(r"in \d+\.\d+s", "in [time]")]}, {
        insta::assert_snapshot!("deadline_summary", stdout(&output));
    });
}

#[test]
fn summary_of_a_no_act_run_is_a_plan() {
    let output = run(&["-n", "--color", "never"]);
    assert_eq!(output.status.code(), Some(1));
    insta::assert_snapshot!("no_act_summary", stdout(&output));
}

#[test]
fn verbose_lines_go_to_stderr_in_the_reference_format() {
    let output = run(&["-v", "-q"]);
    let verbose = stderr(&output);
    assert!(verbose.starts_with("ValidateMovie.check: pass\nPickTimeAndDate.check: fail\n"));
    assert!(verbose.contains("TurnOnTV.recheck: fail \"Remote batteries are dead.\"\n"));
    assert_eq!(stdout(&output), "", "-q prints no summary");
}

#[test]
fn graphs_are_drawn_before_and_after_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (dir.path().join("plan.dot"), dir.path().join("run.png"));
    let output = run(&[
        "-q",
        "--graph-before",
        before.to_str().unwrap(),
        "--graph",
        after.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let dot = std::fs::read_to_string(&before).unwrap();
    assert!(
        dot.contains("WatchMovie") && dot.contains("Invite Lawyer Cat"),
        "{dot}"
    );
    assert!(std::fs::read(&after).unwrap().starts_with(b"\x89PNG"));
    let unknown = run(&[
        "-q",
        "--graph",
        dir.path().join("run.gif").to_str().unwrap(),
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("name it .dot, .svg or .png"),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn provision_draws_its_graph_after_the_run() {
    let target = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let picture = work.path().join("x.png");
    let output = Command::new(example("provision"))
        .args(["--target", target.path().to_str().unwrap()])
        .args(["-q", "--progress", "never", "--graph"])
        .arg(&picture)
        .output()
        .expect("the example runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let png = std::fs::read(&picture).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG was drawn");
    assert!(
        png.len() > 1000,
        "with something in it: {} bytes",
        png.len()
    );
}

#[test]
fn eight_workers_end_with_the_statuses_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let statuses = |jobs: &str| {
        let path = dir.path().join(format!("report-{jobs}.json"));
        let output = run(&["-q", "-j", jobs, "--report-json", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        report["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|job| {
                (
                    job["name"].to_string(),
                    job["status"].to_string(),
                    job["tries"].to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses("8"), statuses("1"));
}

/// Runs provision on `target` with `args`, verbose, so that any phase that
/// ran would print a line.
fn provision(target: &std::path::Path, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(example("provision"))
        .arg("--target")
        .arg(target)
        .args(["-v", "--progress", "never", "--color", "never"])
        .args(args)
        .output()
        .expect("the example runs")
}

#[test]
fn bad_output_paths_and_formats_stop_the_program_before_any_job_runs() {
    let work = tempfile::tempdir().unwrap();
    let a_file = work.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let missing = work.path().join("missing/out.json");
    let under_a_file = a_file.join("out.json");
    let jpg = work.path().join("x.jpg");
    let folder = work.path().to_owned();
    let in_proc = std::path::PathBuf::from("/proc/out.json");
    let missing_png = missing.with_extension("png");
    let missing_html = missing.with_extension("html");
    let cases: Vec<(&str, &std::path::Path, &str)> = vec![
        ("--report-json", &missing, "does not exist"),
        ("--report-json", &under_a_file, "Not a directory"),
        ("--report-json", &folder, "is a folder"),
        ("--report-json", &in_proc, "cannot create a file in /proc"),
        ("--events-json", &missing, "does not exist"),
        ("--graph", &jpg, "name it .dot, .svg or .png"),
        ("--graph-before", &jpg, "name it .dot, .svg or .png"),
        ("--graph", &missing_png, "does not exist"),
        ("--html", &jpg, "name it .html"),
        ("--html", &missing_html, "does not exist"),
    ];
    for (flag, path, why) in cases {
        let target = tempfile::tempdir().unwrap();
        let output = provision(target.path(), &[flag.as_ref(), path.as_ref()]);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {path:?}: {err}");
        let message = err.lines().last().unwrap_or_default();
        assert!(
            message.starts_with(&format!("error: {flag} {}: ", path.display()))
                && message.contains(why),
            "{flag} {path:?}: {err}"
        );
        assert!(!err.contains(".check:"), "no phase ran: {err}");
        assert_eq!(stdout(&output), "", "no summary");
        let touched: Vec<_> = std::fs::read_dir(target.path()).unwrap().collect();
        assert!(
            touched.is_empty(),
            "{flag} {path:?}: the target was touched: {touched:?}"
        );
        assert!(!jpg.exists() && !missing.parent().unwrap().exists());
    }
    let mut left: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["a-file"], "no temporary file was left");
}

#[cfg(unix)]
#[test]
fn a_report_that_cannot_be_written_after_the_run_keeps_the_runs_exit_code() {
    // /dev/full opens for writing and refuses every byte. The program is
    // given a link to it, so that a regression that renames a file over
    // the path replaces the link, not the machine's /dev/full.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::os::unix::fs::symlink("/dev/full", &full).unwrap();
    let passing = [
        "--movie",
        "MST3K",
        "--battery-state",
        "charged",
        "--couch-space",
    ];
    for (args, code) in [(&passing[..], 0), (&[][..], 1)] {
        let output = Command::new(example("watch_movie"))
            .args(args)
            .args(["-q", "--report-json"])
            .arg(&full)
            .output()
            .expect("the example runs");
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        assert_eq!(
            stderr(&output),
            format!(
                "error: --report-json {}: No space left on device (os error 28); \
                 the exit code is the run's\n",
                full.display()
            )
        );
    }
}

/// Runs watch_movie with `--graph` and `--open` and PATH set to `path`
/// only, so no real viewer can start.
fn open_with_path(path: &std::path::Path, picture: &std::path::Path) -> Output {
    Command::new(example("watch_movie"))
        .env("PATH", path)
        .args(["-q", "--open", "--graph"])
        .arg(picture)
        .output()
        .expect("the example runs")
}

#[cfg(unix)]
fn fake_viewer(dir: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("xdg-open");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn open_without_a_viewer_says_so_and_keeps_the_picture_and_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("bin");
    std::fs::create_dir(&empty).unwrap();
    let picture = dir.path().join("run.svg");
    let output = open_with_path(&empty, &picture);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "error: --open {}: no viewer found (xdg-open, gio, gnome-open or kde-open): \
             open it yourself; the exit code is the run's\n",
            picture.display()
        )
    );
    assert!(std::fs::read_to_string(&picture).unwrap().contains("<svg"));
}

#[cfg(unix)]
#[test]
fn open_hands_the_written_picture_to_the_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let asked = dir.path().join("asked");
    fake_viewer(&bin, &format!("printf '%s' \"$1\" > '{}'", asked.display()));
    let picture = dir.path().join("run.png");
    let output = open_with_path(&bin, &picture);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        picture.to_str().unwrap()
    );
    assert!(std::fs::read(&picture).unwrap().starts_with(b"\x89PNG"));

    fake_viewer(&bin, "exit 3");
    let failed = open_with_path(&bin, &picture);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).starts_with(&format!(
            "error: --open {}: the viewer failed: ",
            picture.display()
        )),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn open_with_no_picture_to_open_stops_before_any_job_runs() {
    let output = run(&["-v", "--open"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "error: --open: nothing to open: add --html, --graph or --graph-before\n"
    );
    assert_eq!(stdout(&output), "");
}

#[test]
fn open_with_the_page_on_stdout_stops_before_any_job_runs() {
    for page in ["-", "/dev/stdout"] {
        let output = run(&["-v", "--html", page, "--open"]);
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(
            stderr(&output),
            format!(
                "error: --open --html {page}: the page goes to stdout: there is no file to open\n"
            )
        );
        assert_eq!(stdout(&output), "");
    }
}

#[cfg(unix)]
#[test]
fn two_flags_naming_one_file_stop_the_program_before_any_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(path("old.json"), "old").unwrap();
    std::os::unix::fs::symlink(path("old.json"), path("link.json")).unwrap();
    std::fs::create_dir(path("sub")).unwrap();
    let (x, old, link, dotted) = (
        path("x.json"),
        path("old.json"),
        path("link.json"),
        path("sub/../x.json"),
    );
    let (svg, stdout_link) = (path("a.svg"), path("stdout"));
    std::os::unix::fs::symlink("/dev/stdout", &stdout_link).unwrap();
    let cases = [
        ("--report-json", &x, "--events-json", &x),
        ("--report-json", &old, "--events-json", &link),
        ("--report-json", &x, "--events-json", &dotted),
        ("--graph", &svg, "--graph-before", &svg),
        (
            "--report-json",
            &"-".to_owned(),
            "--events-json",
            &stdout_link,
        ),
    ];
    for (first, first_path, second, second_path) in cases {
        let output = run(&["-v", first, first_path, second, second_path]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        let (first_path, second_path) = (Path::new(first_path), Path::new(second_path));
        assert_eq!(
            stderr(&output),
            format!(
                "error: {second} {}: the same file as {first} {}\n",
                second_path.display(),
                first_path.display()
            )
        );
        assert_eq!(stdout(&output), "");
    }
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["link.json", "old.json", "stdout", "sub"],
        "nothing written"
    );
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "old");
    // A device other than stdout may be named twice.
    let output = run(&[
        "-q",
        "--report-json",
        "/dev/null",
        "--events-json",
        "/dev/null",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
}

#[test]
fn dev_null_may_be_named_twice_when_stdout_is_dev_null() {
    // As under cron or nohup: stdout is /dev/null, a device named by its
    // path, not stdout.
    let output = Command::new(example("watch_movie"))
        .args(["--report-json", "/dev/null", "--events-json", "/dev/null"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stderr(&output), "", "the summary stays on stdout");
}

#[test]
fn dev_fd_1_is_stdout() {
    let output = run(&["-q", "--report-json", "/dev/fd/1"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["jobs"].as_array().unwrap().len(), 20);
    let output = run(&["-q", "--report-json", "-", "--events-json", "/dev/fd/1"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "error: --events-json /dev/fd/1: the same file as --report-json -\n"
    );
}

#[test]
fn list_draws_the_plan_with_graph_before_and_refuses_what_needs_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.dot");
    let output = run(&["--list", "--graph-before", plan.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), stdout(&run(&["--list"])));
    assert!(
        std::fs::read_to_string(&plan)
            .unwrap()
            .contains("WatchMovie")
    );
    for flag in ["--report-json", "--events-json", "--graph", "--html"] {
        let path = dir.path().join("out.html");
        let output = run(&["--list", flag, path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(2), "{flag}");
        assert!(
            stderr(&output).contains("'--list' cannot be used with")
                && stderr(&output).contains(flag),
            "{flag}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "");
        assert!(!path.exists());
    }
}

#[test]
fn control_characters_reach_the_terminal_escaped() {
    let output = run(&[
        "-v",
        "--color",
        "never",
        "--movie",
        "esc \x1b[31mred\r\x1b[2J\n",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let (out, err) = (stdout(&output), stderr(&output));
    for text in [&out, &err] {
        assert!(
            !text.contains(['\x1b', '\r']),
            "nothing raw reaches the terminal: {text:?}"
        );
    }
    assert!(
        out.contains(": esc \\u{1b}[31mred\\r\\u{1b}[2J\\n not one of the available movies.\n"),
        "{out}"
    );
}

/// `2>/dev/full` too: nothing can be said, nothing panics, and the exit
/// code is the run's.
#[cfg(target_os = "linux")]
#[test]
fn a_full_stdout_and_stderr_end_with_the_runs_exit_code_quietly() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [&[][..], &["-v"][..], &["--list"][..]] {
        let status = Command::new(example("watch_movie"))
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .stdout(full())
            .stderr(full())
            .status()
            .unwrap();
        let expected = if args == ["--list"] { 0 } else { 1 };
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

/// Runs watch_movie on a terminal (a pseudo-terminal's far end as stdout
/// and stderr) with `env` set, and returns all it printed.
#[cfg(target_os = "linux")]
fn on_a_terminal(env: &[(&str, &str)]) -> String {
    use std::io::Read;
    let pty = nix::pty::openpty(None, None).unwrap();
    let terminal = std::fs::File::from(pty.slave);
    let mut command = Command::new(example("watch_movie"));
    command
        .args(["--movie", "MST3K", "--battery-state", "charged"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdout(terminal.try_clone().unwrap())
        .stderr(terminal);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    // Only the child holds the terminal now: reading ends when it exits.
    drop(command);
    let mut printed = Vec::new();
    let mut screen = std::fs::File::from(pty.master);
    // Linux says EIO once the last holder of the far end closes it.
    let _ = screen.read_to_end(&mut printed);
    assert_eq!(child.wait().unwrap().code(), Some(1));
    String::from_utf8_lossy(&printed).into_owned()
}

/// Whether `text` holds a colour or style (SGR: `ESC [ 1 ; 31 m`).
fn has_colours(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(rest.len());
        rest[end..].starts_with('m')
    })
}

/// Whether `text` moves the cursor back to redraw a line: an escape
/// sequence, or a carriage return (the terminal turns `\n` into `\r\n`).
fn redraws(text: &str) -> bool {
    text.replace("\r\n", "\n").contains(['\r', '\x1b'])
}

#[cfg(target_os = "linux")]
#[test]
fn no_color_and_a_dumb_terminal_are_honoured() {
    let coloured = on_a_terminal(&[]);
    assert!(
        has_colours(&coloured),
        "a terminal gets colours: {coloured:?}"
    );
    assert!(redraws(&coloured), "and a progress display: {coloured:?}");

    let no_color = on_a_terminal(&[("NO_COLOR", "1")]);
    assert!(no_color.contains("20 jobs in "), "{no_color:?}");
    assert!(!has_colours(&no_color), "{no_color:?}");
    let dumb = on_a_terminal(&[("TERM", "dumb")]);
    assert!(dumb.starts_with("20 jobs in "), "{dumb:?}");
    assert!(!redraws(&dumb), "nothing but plain lines: {dumb:?}");
}

/// An output flag that names provision's own `--config` (by its name, a
/// symbolic link or a hard link to it) stops the program before anything
/// runs, naming both flags, and the file is left as it was.
#[cfg(unix)]
#[test]
fn an_output_over_the_input_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("cfg.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../provision/provision.toml"),
        &config,
    )
    .unwrap();
    let before = std::fs::read(&config).unwrap();
    let link = work.path().join("link.json");
    std::os::unix::fs::symlink(&config, &link).unwrap();
    let hard = work.path().join("hard.json");
    std::fs::hard_link(&config, &hard).unwrap();
    for (flag, path) in [
        ("--report-json", &config),
        ("--events-json", &link),
        ("--report-json", &hard),
    ] {
        let target = tempfile::tempdir().unwrap();
        let args: [&std::ffi::OsStr; 4] = [
            "--config".as_ref(),
            config.as_ref(),
            flag.as_ref(),
            path.as_ref(),
        ];
        let output = provision(target.path(), &args);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {path:?}: {err}");
        assert_eq!(
            err,
            format!(
                "error: {flag} {}: the input --config {}: it would be overwritten\n",
                path.display(),
                config.display()
            )
        );
        assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
        assert_eq!(std::fs::read(&config).unwrap(), before);
    }
}
