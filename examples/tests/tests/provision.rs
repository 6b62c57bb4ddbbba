//! The provision example: it converges a real tree and database, a second
//! run changes nothing, drift is fixed job by job, no-act touches nothing,
//! and bad input is refused before anything is touched. Each test works in
//! its own temporary directory; some run the suite in-process, others the
//! binary as a user would.

#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use dojobber::{Report, Status};
use dojobber_example_provision::{self as provision, ConfigError, Desired, SAMPLE_CONFIG};
use rusqlite::Connection;

mod support;
use support::{example, stderr, stdout};

// ---------------------------------------------------------------------------
// Helpers

fn sample() -> Desired {
    Desired::load(Path::new(SAMPLE_CONFIG)).expect("the sample is valid")
}

/// Runs the sample suite on `target` in-process.
fn converge(target: &Path) -> Report {
    provision::runner(sample(), target)
        .run()
        .expect("the sample suite starts")
        .into_report()
}

fn names(report: &Report, status: Status) -> BTreeSet<String> {
    report
        .names_with(status)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|&name| name.to_owned()).collect()
}

/// Everything on disk under a directory that a job could change.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir {
        mode: u32,
        modified: SystemTime,
    },
    File {
        mode: u32,
        modified: SystemTime,
        content: Vec<u8>,
    },
    Link {
        target: PathBuf,
    },
}

/// The whole tree under `root`, by relative path: kinds, modes, contents,
/// link targets and modification times. Two equal trees are the same to
/// every job (and to the user).
fn tree(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut nodes = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let node = if meta.is_symlink() {
                Node::Link {
                    target: fs::read_link(&path).unwrap(),
                }
            } else if meta.is_dir() {
                pending.push(path.clone());
                Node::Dir {
                    mode,
                    modified: meta.modified().unwrap(),
                }
            } else {
                Node::File {
                    mode,
                    modified: meta.modified().unwrap(),
                    content: fs::read(&path).unwrap(),
                }
            };
            nodes.insert(path.strip_prefix(root).unwrap().to_path_buf(), node);
        }
    }
    nodes
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn database(target: &Path) -> Connection {
    Connection::open(target.join("var/lib/guestbook/guestbook.db")).unwrap()
}

fn rows(target: &Path, sql: &str) -> Vec<String> {
    let connection = database(target);
    let mut statement = connection.prepare(sql).unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Breaks a converged sample tree in three ways: a file deleted, a mode
/// changed, a table dropped.
fn break_three_things(target: &Path) {
    fs::remove_file(target.join("etc/motd")).unwrap();
    fs::set_permissions(
        target.join("etc/guestbook"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    // (entries refer to users: the bundled SQLite enforces foreign keys.)
    database(target)
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE users;")
        .unwrap();
}

/// Every job of the sample, the root last.
const SAMPLE_JOBS: [&str; 15] = [
    "target",
    "dir etc",
    "dir etc/guestbook",
    "dir var/log/guestbook",
    "dir var/lib/guestbook",
    "file etc/motd",
    "file etc/guestbook/app.conf",
    "symlink etc/guestbook/current.conf",
    "absent var/log/guestbook/debug.log",
    "database var/lib/guestbook/guestbook.db",
    "table users",
    "table entries",
    "seed users",
    "seed entries",
    "provision",
];

fn sample_jobs() -> BTreeSet<String> {
    set(&SAMPLE_JOBS)
}

fn run(args: &[&str]) -> Output {
    Command::new(example("provision"))
        .args(args)
        .args(["--color", "never", "--progress", "never"])
        .output()
        .expect("the example runs")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// The statuses in a JSON report written by `--report-json`.
fn json_statuses(path: &Path) -> BTreeMap<String, String> {
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            (
                job["name"].as_str().unwrap().to_owned(),
                job["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Converging

#[test]
fn the_first_run_converges_the_tree_and_the_database() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    let report = converge(target);
    assert!(report.is_success(), "{report:#?}");
    let all: BTreeSet<String> = report.jobs().map(|job| job.name().to_owned()).collect();
    assert_eq!(all, sample_jobs());
    // The target exists already, nothing is at the absent path, and the
    // root is a group: every other job had work to do.
    let passed = set(&["target", "absent var/log/guestbook/debug.log", "provision"]);
    assert_eq!(names(&report, Status::Passed), passed);
    assert_eq!(
        names(&report, Status::Fixed),
        &sample_jobs() - &passed,
        "every other job was fixed"
    );

    assert_eq!(mode(&target.join("etc")), 0o755);
    assert_eq!(mode(&target.join("etc/guestbook")), 0o750);
    assert_eq!(mode(&target.join("var/log/guestbook")), 0o700);
    assert_eq!(
        fs::read_to_string(target.join("etc/motd")).unwrap(),
        "Welcome. This machine is managed by provision: local changes are undone.\n"
    );
    assert_eq!(mode(&target.join("etc/motd")), 0o644, "the default mode");
    assert_eq!(
        fs::read_to_string(target.join("etc/guestbook/app.conf")).unwrap(),
        "# guestbook, for Wendell Bagg\n\
         listen = \"127.0.0.1:8080\"\n\
         database = \"var/lib/guestbook/guestbook.db\"\n\
         log = \"var/log/guestbook/guestbook.log\"\n\
         debug = false\n",
        "the template, rendered with [vars]"
    );
    assert_eq!(mode(&target.join("etc/guestbook/app.conf")), 0o640);
    assert_eq!(
        fs::read_link(target.join("etc/guestbook/current.conf")).unwrap(),
        Path::new("app.conf")
    );
    assert_eq!(mode(&target.join("var/lib/guestbook/guestbook.db")), 0o640);
    assert_eq!(
        rows(
            target,
            "SELECT name || ' <' || email || '>' FROM users ORDER BY id"
        ),
        [
            "Wendell Bagg <bagg@example.com>",
            "Lawyer Cat <lawyercat@example.com>"
        ]
    );
    assert_eq!(
        rows(
            target,
            "SELECT user_id || ': ' || message FROM entries ORDER BY id"
        ),
        ["1: First!", "2: Objection."]
    );
    // No temporary file is left behind.
    let leftovers: Vec<_> = tree(target)
        .into_keys()
        .filter(|path| path.to_string_lossy().contains(".provision-"))
        .collect();
    assert_eq!(leftovers, Vec::<PathBuf>::new());
}

#[test]
fn a_second_run_passes_every_job_at_its_first_check_and_changes_nothing() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    let before = tree(target);
    let second = converge(target);
    for job in second.jobs() {
        assert_eq!(
            (job.status(), job.tries()),
            (Status::Passed, 1),
            "{}: {:?}",
            job.name(),
            job.last_error()
        );
    }
    assert_eq!(tree(target), before, "not a byte, mode or time changed");
}

#[test]
fn a_third_run_fixes_exactly_what_was_broken() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    break_three_things(target);

    let third = converge(target);
    assert!(third.is_success(), "{third:#?}");
    // The seed set is gone with its table, so it is put back too.
    let broken = set(&[
        "file etc/motd",
        "dir etc/guestbook",
        "table users",
        "seed users",
    ]);
    assert_eq!(names(&third, Status::Fixed), broken);
    assert_eq!(names(&third, Status::Passed), &sample_jobs() - &broken);
    assert!(
        third
            .jobs()
            .filter(|job| job.status() == Status::Passed)
            .all(|job| job.tries() == 1)
    );
    assert!(target.join("etc/motd").is_file());
    assert_eq!(mode(&target.join("etc/guestbook")), 0o750);
    assert_eq!(rows(target, "SELECT name FROM users").len(), 2);
}

#[test]
fn every_kind_of_drift_is_found_and_fixed_by_its_own_job() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    fs::write(target.join("etc/guestbook/app.conf"), "debug = true\n").unwrap();
    fs::remove_file(target.join("etc/guestbook/current.conf")).unwrap();
    symlink("../motd", target.join("etc/guestbook/current.conf")).unwrap();
    fs::write(target.join("var/log/guestbook/debug.log"), "noise\n").unwrap();
    fs::set_permissions(
        target.join("var/lib/guestbook/guestbook.db"),
        fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    database(target)
        .execute_batch("UPDATE users SET email = 'cat@example.com' WHERE id = 2")
        .unwrap();

    let report = converge(target);
    assert!(report.is_success(), "{report:#?}");
    let drifted = set(&[
        "file etc/guestbook/app.conf",
        "symlink etc/guestbook/current.conf",
        "absent var/log/guestbook/debug.log",
        "database var/lib/guestbook/guestbook.db",
        "seed users",
    ]);
    assert_eq!(names(&report, Status::Fixed), drifted);
    assert_eq!(names(&report, Status::Passed), &sample_jobs() - &drifted);

    assert!(
        fs::read_to_string(target.join("etc/guestbook/app.conf"))
            .unwrap()
            .ends_with("debug = false\n")
    );
    assert_eq!(
        fs::read_link(target.join("etc/guestbook/current.conf")).unwrap(),
        Path::new("app.conf")
    );
    assert!(!target.join("var/log/guestbook/debug.log").exists());
    assert_eq!(mode(&target.join("var/lib/guestbook/guestbook.db")), 0o640);
    assert_eq!(
        rows(target, "SELECT email FROM users WHERE id = 2"),
        ["lawyercat@example.com"],
        "the seed row with the same key is replaced"
    );
}

#[test]
fn rows_that_are_not_seeds_are_left_alone() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    database(target)
        .execute_batch("INSERT INTO users VALUES (3, 'Guest', 'guest@example.com')")
        .unwrap();
    let report = converge(target);
    assert_eq!(names(&report, Status::Passed), sample_jobs());
    assert_eq!(
        rows(target, "SELECT name FROM users WHERE id = 3"),
        ["Guest"]
    );
}

// ---------------------------------------------------------------------------
// No-act

#[test]
fn no_act_on_a_broken_tree_lists_what_would_run_and_touches_nothing() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    break_three_things(target);
    let before = tree(target);

    let report = provision::runner(sample(), target)
        .no_act(true)
        .run()
        .unwrap()
        .into_report();
    assert!(report.no_act);
    let would_run = set(&["dir etc/guestbook", "file etc/motd", "table users"]);
    assert_eq!(names(&report, Status::Failed), would_run);
    let waiting = set(&[
        "file etc/guestbook/app.conf",
        "symlink etc/guestbook/current.conf",
        "seed users",
        "seed entries",
        "provision",
    ]);
    assert_eq!(names(&report, Status::Blocked), waiting);
    assert_eq!(
        names(&report, Status::Passed),
        &(&sample_jobs() - &would_run) - &waiting
    );
    assert_eq!(tree(target), before, "no-act changed the disk");

    // What each job found, in the reference order.
    let found: Vec<String> = report
        .jobs()
        .map(|job| match (&job.last_error(), &job.blocked_by()) {
            (Some(error), _) => format!("{}: would run: {}", job.name(), error.message),
            (None, Some(by)) => format!("{}: waits for {by}", job.name()),
            (None, None) => format!("{}: {}", job.name(), job.status()),
        })
        .collect();
    insta::assert_snapshot!("no_act_broken_tree", found.join("\n"));
}

#[test]
fn no_act_from_the_command_line_lists_exactly_the_jobs_that_would_run() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    break_three_things(target);
    let before = tree(target);

    let output = run(&["--target", path_str(target), "-n"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = stdout(&output);
    let would_run: Vec<&str> = summary
        .lines()
        .skip_while(|line| *line != "would run:")
        .skip(1)
        .map(|line| line.trim().split(": ").next().unwrap())
        .collect();
    assert_eq!(
        would_run,
        ["file etc/motd", "dir etc/guestbook", "table users"],
        "{summary}"
    );
    assert!(
        summary.starts_with("no-act: 15 jobs: 7 pass as they are, 3 would run, 5 wait for them\n"),
        "{summary}"
    );
    assert_eq!(tree(target), before, "no-act changed the disk");
}

// ---------------------------------------------------------------------------
// The command line

#[test]
fn the_binary_converges_then_reports_every_job_passed() {
    let target = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("report.json");
    let args = [
        "--target",
        path_str(target.path()),
        "--report-json",
        path_str(&report),
    ];

    let first = run(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(
        stderr(&first),
        format!("target: {}\n", target.path().display())
    );
    assert!(
        stdout(&first).starts_with("15 jobs in "),
        "{}",
        stdout(&first)
    );
    assert!(
        stdout(&first).ends_with(": 3 passed, 12 fixed, 0 failed, 0 blocked\n"),
        "{}",
        stdout(&first)
    );
    let statuses = json_statuses(&report);
    assert_eq!(statuses["file etc/motd"], "fixed");
    assert_eq!(statuses["target"], "passed");

    let second = run(&args);
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    let statuses = json_statuses(&report);
    assert_eq!(statuses.len(), 15);
    for (job, status) in &statuses {
        assert_eq!(status, "passed", "{job}");
    }
}

#[test]
fn without_a_target_it_converges_a_fresh_directory_under_the_temp_dir() {
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let line = stderr(&output);
    let target = PathBuf::from(
        line.strip_prefix("target: ")
            .and_then(|rest| rest.strip_suffix('\n'))
            .unwrap_or_else(|| panic!("the target is printed first: {line}")),
    );
    let converged = fs::read_to_string(target.join("etc/motd"));
    let under_temp = target.starts_with(std::env::temp_dir());
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    fs::remove_dir_all(&target).unwrap();
    assert!(under_temp, "{}", target.display());
    assert!(name.unwrap().starts_with("provision-"));
    assert!(converged.is_ok());
}

#[test]
fn list_shows_the_jobs_made_from_the_file_with_their_deps() {
    let target = tempfile::tempdir().unwrap();
    let output = run(&["--target", path_str(target.path()), "--list"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    insta::assert_snapshot!("list", stdout(&output));
    assert_eq!(tree(target.path()), BTreeMap::new(), "--list runs nothing");
}

// ---------------------------------------------------------------------------
// Failing jobs

#[test]
fn a_path_it_cannot_write_fails_that_job_with_the_os_error_and_the_rest_goes_on() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    // A file where a directory must go: even root cannot make var/log.
    fs::write(target.join("var"), "in the way\n").unwrap();
    let work = tempfile::tempdir().unwrap();
    let report_path = work.path().join("report.json");
    let output = run(&[
        "--target",
        path_str(target),
        "--report-json",
        path_str(&report_path),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let report: Report = serde_json::from_str(&fs::read_to_string(&report_path).unwrap()).unwrap();
    let failed = set(&["dir var/log/guestbook", "dir var/lib/guestbook"]);
    assert_eq!(names(&report, Status::Failed), failed);
    for name in &failed {
        let error = &report
            .job(name)
            .unwrap()
            .last_error()
            .as_ref()
            .unwrap()
            .message;
        assert!(
            error.contains("Not a directory (os error 20)"),
            "{name}: {error}"
        );
    }
    assert!(
        stdout(&output).contains("Not a directory (os error 20)"),
        "the summary shows the OS error: {}",
        stdout(&output)
    );
    // Everything under etc/ does not need var/: it is all done.
    assert_eq!(
        names(&report, Status::Fixed),
        set(&[
            "dir etc",
            "dir etc/guestbook",
            "file etc/motd",
            "symlink etc/guestbook/current.conf",
        ])
    );
    assert_eq!(
        names(&report, Status::Blocked),
        set(&[
            "absent var/log/guestbook/debug.log",
            "database var/lib/guestbook/guestbook.db",
            "table users",
            "table entries",
            "seed users",
            "seed entries",
            "file etc/guestbook/app.conf",
            "provision",
        ])
    );
    assert_eq!(
        fs::read_to_string(target.join("var")).unwrap(),
        "in the way\n"
    );
}

#[test]
fn a_symlink_on_the_way_is_never_followed_out_of_the_target() {
    let target = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), target.path().join("var")).unwrap();
    let report = converge(target.path());
    for name in ["dir var/log/guestbook", "dir var/lib/guestbook"] {
        let job = report.job(name).unwrap();
        assert_eq!(job.status(), Status::Failed, "{name}");
        let error = &job.last_error().unwrap().message;
        assert_eq!(
            error,
            &format!("var is a symlink: not following it to reach {}", &name[4..])
        );
    }
    assert_eq!(
        tree(outside.path()),
        BTreeMap::new(),
        "nothing written outside"
    );
    assert_eq!(report.job("file etc/motd").unwrap().status(), Status::Fixed);
}

#[test]
fn what_it_did_not_expect_is_never_replaced() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge(target).is_success());
    // A directory where a file goes, a table with another schema, and a
    // file that is not a database where the database goes.
    fs::remove_file(target.join("etc/motd")).unwrap();
    fs::create_dir(target.join("etc/motd")).unwrap();
    fs::write(target.join("etc/motd/keep"), "mine\n").unwrap();
    database(target)
        .execute_batch(
            "DROP TABLE entries;
             CREATE TABLE entries (id INTEGER PRIMARY KEY, text TEXT);
             INSERT INTO entries VALUES (7, 'precious');",
        )
        .unwrap();
    let report = converge(target);
    let failed = |name: &str| {
        let job = report.job(name).unwrap();
        assert_eq!(job.status(), Status::Failed, "{name}");
        job.last_error().unwrap().message.clone()
    };
    assert_eq!(
        failed("file etc/motd"),
        "etc/motd is a directory: not replacing it with a file"
    );
    assert!(
        failed("table entries").starts_with("table entries exists with another schema"),
        "{}",
        failed("table entries")
    );
    assert_eq!(
        fs::read_to_string(target.join("etc/motd/keep")).unwrap(),
        "mine\n"
    );
    assert_eq!(rows(target, "SELECT text FROM entries"), ["precious"]);

    // Not a database at all.
    let db = target.join("var/lib/guestbook/guestbook.db");
    fs::write(&db, "just text, not SQLite\n").unwrap();
    let report = converge(target);
    let job = report
        .job("database var/lib/guestbook/guestbook.db")
        .unwrap();
    assert_eq!(job.status(), Status::Failed);
    let error = &job.last_error().unwrap().message;
    assert!(
        error.contains("exists and is not a SQLite database")
            && error.ends_with("not replacing it"),
        "{error}"
    );
    assert_eq!(fs::read_to_string(&db).unwrap(), "just text, not SQLite\n");
}

// ---------------------------------------------------------------------------
// Bad input: refused before any job runs, the disk untouched

/// A file that must be refused: where, which entry, and what is said.
struct Bad {
    toml: &'static str,
    line: usize,
    column: usize,
    entry: &'static str,
    message: &'static str,
}

const BAD: &[Bad] = &[
    Bad {
        toml: "[[file]]\ncontent = \"hi\\n\"\n",
        line: 1,
        column: 1,
        entry: "[[file]]",
        message: "missing field `path`",
    },
    Bad {
        toml: "[[dir]]\npath = \"etc\"\n\n[[file]]\npath = \"etc/motd\"\ncontent = \"hi\\n\"\ncolour = \"red\"\n",
        line: 7,
        column: 1,
        entry: "file etc/motd",
        message: "unknown field `colour`, expected one of `path`, `content`, `template`, `mode`, `deps`",
    },
    Bad {
        toml: "[[file]]\npath = \"etc/motd\"\ncontent = \"hi\\n\"\nmode = \"0644\"\n",
        line: 4,
        column: 8,
        entry: "file etc/motd",
        message: "invalid type: string \"0644\", expected a permission mode, an octal integer like 0o644",
    },
    Bad {
        toml: "[[file]]\npath = \"etc/motd\"\ncontent = 42\n",
        line: 3,
        column: 11,
        entry: "file etc/motd",
        message: "invalid type: integer `42`, expected a string",
    },
    Bad {
        toml: "[[dir]]\npath = \"etc\"\nmode = 0o17777\n",
        line: 3,
        column: 8,
        entry: "dir etc",
        message: "mode 0o17777 is not a permission mode (at most 0o7777)",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\nowner = \"me\"\n",
        line: 3,
        column: 1,
        entry: "database app.db",
        message: "unknown field `owner`",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER\"]\n[[database.seed]]\ntable = \"users\"\nrows = [{ id = 1980-01-01 }]\n",
        line: 8,
        column: 16,
        entry: "seed users",
        message: "expected a string, an integer, a float or a boolean",
    },
    Bad {
        toml: "[vars]\nport = [8080]\n",
        line: 2,
        column: 8,
        entry: "[vars]",
        message: "invalid type: sequence, expected a string, an integer, a float or a boolean",
    },
    Bad {
        toml: "[[file]]\npath = \"a\"\ncontent = \"\"\n\n[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER\"]\n\n[[file]]\npath = \"b\"\ncontent = \"\"\ndeps = [\"file a\", \"table user\"]\n",
        line: 14,
        column: 19,
        entry: "file b",
        message: "deps: no entry is named \"table user\"; did you mean table users?",
    },
    Bad {
        toml: "[[file]]\npath = \"../motd\"\ncontent = \"\"\n",
        line: 2,
        column: 8,
        entry: "file ../motd",
        message: "path \"../motd\" leaves the target directory (`..` is not allowed)",
    },
    Bad {
        toml: "[[dir]]\npath = \"etc/../../x\"\n",
        line: 2,
        column: 8,
        entry: "dir etc/../../x",
        message: "leaves the target directory",
    },
    Bad {
        toml: "[[file]]\npath = \"/etc/motd\"\ncontent = \"\"\n",
        line: 2,
        column: 8,
        entry: "file /etc/motd",
        message: "path \"/etc/motd\" is absolute: paths are relative to the target directory",
    },
    Bad {
        toml: "[[symlink]]\npath = \"etc/passwd\"\ntarget = \"../../etc/passwd\"\n",
        line: 3,
        column: 10,
        entry: "symlink etc/passwd",
        message: "symlink target \"../../etc/passwd\" points out of the target directory",
    },
    Bad {
        toml: "[[symlink]]\npath = \"passwd\"\ntarget = \"/etc/passwd\"\n",
        line: 3,
        column: 10,
        entry: "symlink passwd",
        message: "symlink target \"/etc/passwd\" is absolute",
    },
    Bad {
        toml: "[[symlink]]\npath = \"a/b\"\ntarget = \"c/../../..\"\n",
        line: 3,
        column: 10,
        entry: "symlink a/b",
        message: "has `..` after a name",
    },
    Bad {
        toml: "[[dir]]\npath = \"etc\"\n\n[[file]]\npath = \"./etc/\"\ncontent = \"\"\n",
        line: 5,
        column: 8,
        entry: "file etc",
        message: "the same path as dir etc (line 2): one entry per path",
    },
    Bad {
        toml: "[[absent]]\npath = \"tmp\"\n[[absent]]\npath = \"tmp\"\n",
        line: 4,
        column: 8,
        entry: "absent tmp",
        message: "the same path as absent tmp (line 2)",
    },
    Bad {
        toml: "[[file]]\npath = \"etc\"\ncontent = \"\"\n[[file]]\npath = \"etc/motd\"\ncontent = \"\"\n",
        line: 5,
        column: 8,
        entry: "file etc/motd",
        message: "is inside etc, which is declared as file etc, not as a directory",
    },
    Bad {
        toml: "[[file]]\npath = \"motd\"\ntemplate = \"Hello {{ user }}\"\n",
        line: 3,
        column: 12,
        entry: "file motd",
        message: "template: undefined value: `user` is undefined (line 1 of the template)",
    },
    Bad {
        toml: "[[file]]\npath = \"motd\"\n",
        line: 2,
        column: 8,
        entry: "file motd",
        message: "has neither `content` nor `template`: give one",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER PRIMARY KEY,\"]\n",
        line: 5,
        column: 11,
        entry: "table users",
        message: "SQLite refuses its schema: near \")\": syntax error",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER\"]\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER\"]\n",
        line: 7,
        column: 8,
        entry: "table users",
        message: "declared twice (first at line 4)",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER\"]\n[[database.seed]]\ntable = \"users\"\nrows = [{ id = 1 }, { idd = 2 }]\n",
        line: 8,
        column: 8,
        entry: "seed users",
        message: "SQLite refuses row 2: table users has no column named idd",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.seed]]\ntable = \"users\"\nrows = [{ id = 1 }]\n",
        line: 4,
        column: 9,
        entry: "seed users",
        message: "no table named \"users\" is declared in the database",
    },
    // Issue 20, item 9: TOML reads 644 as decimal, which makes 0o1204.
    Bad {
        toml: "[[dir]]\npath = \"etc\"\nmode = 644\n",
        line: 3,
        column: 8,
        entry: "dir etc",
        message: "write modes in octal: 0o644",
    },
    // Issue 20, item 7: contradictory seed rows, refused before any run.
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER PRIMARY KEY\", \"name TEXT UNIQUE\"]\n[[database.seed]]\ntable = \"users\"\nrows = [{ id = 1, name = \"a\" }, { id = 1, name = \"b\" }]\n",
        line: 8,
        column: 8,
        entry: "seed users",
        message: "rows 1 and 2 both have id = 1: one row per primary key",
    },
    Bad {
        toml: "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"users\"\ncolumns = [\"id INTEGER PRIMARY KEY\", \"name TEXT UNIQUE\"]\n[[database.seed]]\ntable = \"users\"\nrows = [{ id = 1, name = \"a\" }, { id = 2, name = \"a\" }]\n",
        line: 8,
        column: 8,
        entry: "seed users",
        message: "rows 1 and 2 both have name = \"a\": one row per UNIQUE (name)",
    },
];

#[test]
fn bad_input_is_an_error_with_line_column_and_entry() {
    for bad in BAD {
        let error = Desired::parse(bad.toml, "bad.toml").unwrap_err();
        let ConfigError::Invalid(invalid) = &error else {
            panic!("{}: not an Invalid: {error}", bad.entry);
        };
        assert_eq!(
            (
                invalid.line,
                invalid.column,
                invalid.entry.as_deref(),
                invalid.message.contains(bad.message)
            ),
            (bad.line, bad.column, Some(bad.entry), true),
            "{error}"
        );
        let text = error.to_string();
        let first_line = format!("bad.toml:{}:{}: {}: ", bad.line, bad.column, bad.entry);
        assert!(text.starts_with(&first_line), "{text}");
        // The line itself, with a caret under the column.
        let source_line = bad.toml.lines().nth(bad.line - 1).unwrap();
        assert!(
            text.contains(&format!("\n{} | {source_line}\n", bad.line)),
            "{text}"
        );
        assert!(
            text.ends_with(&format!("| {}^", " ".repeat(bad.column - 1))),
            "{text}"
        );
    }
}

#[test]
fn bad_input_exits_2_before_anything_is_touched() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("bad.toml");
    let target = tempfile::tempdir().unwrap();
    fs::write(target.path().join("already-here"), "untouched\n").unwrap();
    let before = tree(target.path());
    for bad in BAD {
        fs::write(&config, bad.toml).unwrap();
        let output = run(&[
            "--config",
            path_str(&config),
            "--target",
            path_str(target.path()),
        ]);
        assert_eq!(output.status.code(), Some(2), "{}", bad.entry);
        let expected = format!(
            "error: {}:{}:{}: {}: ",
            config.display(),
            bad.line,
            bad.column,
            bad.entry
        );
        assert!(
            stderr(&output).starts_with(&expected) && stderr(&output).contains(bad.message),
            "{}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "no job ran");
        assert_eq!(
            tree(target.path()),
            before,
            "{}: the disk changed",
            bad.entry
        );
    }
}

#[test]
fn a_dependency_cycle_in_the_file_exits_2_naming_it_before_anything_runs() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("cycle.toml");
    fs::write(
        &config,
        "[[file]]\npath = \"a\"\ncontent = \"\"\ndeps = [\"file b\"]\n\
         [[file]]\npath = \"b\"\ncontent = \"\"\ndeps = [\"file a\"]\n",
    )
    .unwrap();
    let target = tempfile::tempdir().unwrap();
    let output = run(&[
        "--config",
        path_str(&config),
        "--target",
        path_str(target.path()),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).ends_with("error: dependency cycle: file a -> file b -> file a\n"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "");
    assert_eq!(tree(target.path()), BTreeMap::new());
}

#[test]
fn a_missing_config_file_exits_2() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nowhere.toml");
    let output = run(&["--config", path_str(&missing)]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

/// A database's `share` and a template that reads it, in a local run of
/// one host: the shared values stay in the process, and the same entries
/// work across hosts (`tests/provision_hosts.rs`).
#[test]
fn a_shared_database_is_read_by_a_template_in_a_local_run_and_rerun_passes() {
    let config = r#"
        [[file]]
        path = "app.conf"
        template = "db = {{ shared.main.location }}\ntables = {{ shared.main.tables | join(',') }}\n"
        [database]
        path = "data/app.db"
        share = "main"
        [[database.table]]
        name = "notes"
        columns = ["id INTEGER PRIMARY KEY"]
    "#;
    let desired = || Desired::parse(config, "shared.toml").unwrap();
    assert!(desired().job_names().contains(&"share main".to_owned()));
    let target = tempfile::tempdir().unwrap();
    let first = provision::runner(desired(), target.path())
        .run()
        .unwrap()
        .into_report();
    assert!(first.is_success(), "{first:?}");
    assert_eq!(first.job("file app.conf").unwrap().status(), Status::Fixed);
    let conf = fs::read_to_string(target.path().join("app.conf")).unwrap();
    let db = target.path().join("data/app.db");
    assert_eq!(conf, format!("db = {}\ntables = notes\n", db.display()));

    let second = provision::runner(desired(), target.path())
        .run()
        .unwrap()
        .into_report();
    assert_eq!(names(&second, Status::Passed).len(), second.jobs().len());
}

#[test]
fn a_template_that_reads_a_key_no_database_shares_is_refused() {
    let config = "[[file]]\npath = \"a\"\ntemplate = \"{{ shared.nope.location }}\"\n";
    let error = Desired::parse(config, "bad.toml").unwrap_err().to_string();
    assert!(
        error.contains("reads shared.nope, but no database shares \"nope\""),
        "{error}"
    );
    assert!(error.starts_with("bad.toml:3:12: file a:"), "{error}");
}

// ---------------------------------------------------------------------------
// Issue 20: running as root next to a hostile neighbour

/// Runs a desired state given as text on `target`, in-process.
fn converge_text(toml: &str, target: &Path, no_act: bool) -> Report {
    let desired = Desired::parse(toml, "test.toml").expect("the config is valid");
    provision::runner(desired, target)
        .no_act(no_act)
        .run()
        .expect("the suite starts")
        .into_report()
}

fn error_of(report: &Report, job: &str) -> String {
    let job = report.job(job).unwrap();
    job.last_error()
        .map(|error| error.message.clone())
        .unwrap_or_else(|| format!("no error ({})", job.status()))
}

const USERS: &str = r#"
[database]
path = "app.db"
[[database.table]]
name = "users"
columns = ["id INTEGER PRIMARY KEY", "name TEXT UNIQUE", "role TEXT"]
[[database.seed]]
table = "users"
rows = [{ id = 2, name = "Alice", role = "admin" }]
"#;

/// Item 4: `INSERT OR REPLACE` deleted the app's row 5 to make room for a
/// seed row with the same UNIQUE name. A seed updates its own row (same
/// primary key) and refuses to take another's place, with `-n` too.
#[test]
fn a_seed_never_replaces_a_row_it_does_not_own() {
    let target = tempfile::tempdir().unwrap();
    let target = target.path();
    assert!(converge_text(USERS, target, false).is_success());
    let app = Connection::open(target.join("app.db")).unwrap();
    // The seed's own row, changed: the seed puts its values back.
    app.execute("UPDATE users SET role = 'guest' WHERE id = 2", [])
        .unwrap();
    assert!(converge_text(USERS, target, false).is_success());
    let role: String = app
        .query_row("SELECT role FROM users WHERE id = 2", [], |row| row.get(0))
        .unwrap();
    assert_eq!(role, "admin");

    // The app's own Alice (row 5), once the seed's row 2 is gone.
    app.execute_batch("DELETE FROM users; INSERT INTO users VALUES (5, 'Alice', 'user');")
        .unwrap();
    let conflict = "seed row 1 of table users (id = 2, name = \"Alice\", role = \"admin\") has the UNIQUE name of the row id = 5, which the seed does not own: not replacing it";
    let report = converge_text(USERS, target, true);
    assert_eq!(error_of(&report, "seed users"), conflict, "-n says so");
    let report = converge_text(USERS, target, false);
    assert_eq!(report.job("seed users").unwrap().status(), Status::Failed);
    assert!(error_of(&report, "seed users").contains(conflict));
    let rows: Vec<(i64, String)> = app
        .prepare("SELECT id, name FROM users")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, [(5, "Alice".to_owned())], "row 5 is still there");
}

/// Item 15: `AUTOINCREMENT` makes SQLite's `sqlite_sequence` table too,
/// which is not a second table of the user's.
#[test]
fn an_autoincrement_key_is_accepted_and_converges() {
    let toml = r#"
[database]
path = "app.db"
share = "db"
[[database.table]]
name = "events"
columns = ["id INTEGER PRIMARY KEY AUTOINCREMENT", "what TEXT"]
[[database.seed]]
table = "events"
rows = [{ what = "installed" }]
"#;
    let target = tempfile::tempdir().unwrap();
    assert!(converge_text(toml, target.path(), false).is_success());
    let again = converge_text(toml, target.path(), false);
    assert!(again.is_success());
    assert!(
        again.names_with(Status::Fixed).is_empty(),
        "the rerun changed nothing"
    );
}

/// Item 8: a file entry that is a hard link to a file outside the target
/// (same content, another mode): its mode was changed through the link.
/// The entry is replaced by a file of its own; the outside file keeps
/// its mode and content. A database with other names is refused.
#[test]
fn a_hard_linked_file_is_replaced_not_changed_through_the_link() {
    let site = tempfile::tempdir().unwrap();
    let (target, outside) = (site.path().join("target"), site.path().join("outside"));
    fs::create_dir_all(&target).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("f"), "same\n").unwrap();
    fs::set_permissions(outside.join("f"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::hard_link(outside.join("f"), target.join("f")).unwrap();
    let toml = "[[file]]\npath = \"f\"\ncontent = \"same\\n\"\nmode = 0o600\n";
    assert!(converge_text(toml, &target, false).is_success());
    assert_eq!(mode(&outside.join("f")), 0o644, "the outside file's mode");
    assert_eq!(fs::read_to_string(outside.join("f")).unwrap(), "same\n");
    assert_eq!(mode(&target.join("f")), 0o600);

    Connection::open(outside.join("o.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (a)")
        .unwrap();
    fs::hard_link(outside.join("o.db"), target.join("app.db")).unwrap();
    let toml = "[database]\npath = \"app.db\"\nmode = 0o600\n[[database.table]]\nname = \"u\"\ncolumns = [\"b\"]\n";
    let report = converge_text(toml, &target, false);
    assert!(
        error_of(&report, "database app.db")
            .contains("app.db has 2 hard links: not writing a database"),
        "{}",
        error_of(&report, "database app.db")
    );
    assert_eq!(mode(&outside.join("o.db")), 0o644);
    let tables: i64 = Connection::open(outside.join("o.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(tables, 1, "no table was added outside");
}

/// Item 6: a config error shows the file's text with the one escaping
/// rule: no escape sequence, BEL or NUL reaches the terminal.
#[test]
fn a_config_error_never_prints_control_characters() {
    let toml = "[[dir]]\npath = \"\\u001b]0;owned\\u0007/../x\\u0000\"\n";
    let text = Desired::parse(toml, "ev\u{1b}[2Jil.toml")
        .unwrap_err()
        .to_string();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}]0;owned\\u{7}"), "{text}");
    // A raw control character in the line itself is escaped too.
    let toml = "[[dir]]\npath = \"x\"\nmode = \u{1b}[31m\n";
    let text = Desired::parse(toml, "bad.toml").unwrap_err().to_string();
    assert!(!text.contains('\u{1b}'), "{text:?}");
}

/// Item 17: a config error on a 2 MB line shows 200 characters of it and
/// says it was cut; the caret still points at the column.
#[test]
fn a_config_error_cuts_a_long_line() {
    let toml = format!("x = \"{}\" ", "a".repeat(2_000_000));
    let text = Desired::parse(&toml, "long.toml").unwrap_err().to_string();
    assert!(text.len() < 1_000, "{} bytes", text.len());
    assert!(text.contains("(line cut: "), "{text}");
    let toml = format!("[[dir]]\npath = \"{}\"\nmode = 644\n", "d".repeat(500));
    let text = Desired::parse(&toml, "ok.toml").unwrap_err().to_string();
    assert!(text.contains("\n3 | mode = 644\n  |        ^"), "{text}");
}

/// Item 17: a journal that is a symlink is named as what is wrong, not
/// reported as "not a SQLite database"; nothing is followed through it.
#[test]
fn a_symlinked_journal_is_named() {
    let toml =
        "[database]\npath = \"app.db\"\n[[database.table]]\nname = \"u\"\ncolumns = [\"b\"]\n";
    let target = tempfile::tempdir().unwrap();
    assert!(converge_text(toml, target.path(), false).is_success());
    let elsewhere = tempfile::tempdir().unwrap();
    symlink(
        elsewhere.path().join("j"),
        target.path().join("app.db-journal"),
    )
    .unwrap();
    let report = converge_text(toml, target.path(), false);
    assert_eq!(
        error_of(&report, "database app.db"),
        "app.db-journal is a symlink, not SQLite's file: not opening the database through it; remove it"
    );
    assert!(!elsewhere.path().join("j").exists());
}

/// Item 16: the `provision` program has no crash points: a variable in a
/// user's environment cannot kill it (the fault suite's
/// `provision_faulty` has them).
#[test]
fn the_fault_injection_variables_do_nothing_in_the_program() {
    let target = tempfile::tempdir().unwrap();
    let output = Command::new(example("provision"))
        .args(["--target", path_str(target.path())])
        .args(["--color", "never", "--progress", "never"])
        .env(provision::fault::KILL_AT, "tree:1")
        .env(provision::fault::HOLD_AT, "tree:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("held"));
}
