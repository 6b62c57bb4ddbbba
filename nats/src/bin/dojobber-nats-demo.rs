//! A suite run over NATS, as a user's program would be: the same binary
//! is the coordinator (`coordinate`) and the workers (`worker`), on
//! `dojobber_nats::cli`, so the coordinator takes every flag of a local
//! run. Its jobs come from data (the run's arguments), so one program
//! serves many shapes: each job makes the file `<dir>/<name>.done`
//! (holding the name of the worker that ran it), may name a label, and
//! may be a *gate*, whose run writes `<name>.started` and waits for
//! `<dir>/release` (a *check gate* does the same in its first check,
//! writing `<name>.checking`). Its cleanup writes `<name>.cleaned`, with the name its
//! run left in the try's local storage. A job that `shares` a key puts its
//! worker's name there in the run's shared storage
//! (`cx.global().insert_shared`); one that `needs` a key writes what it
//! finds there to `<name>.got`.
//!
//! ```text
//! dojobber-nats-demo worker --suite demo --name w1 --labels db
//! dojobber-nats-demo coordinate --suite demo --dir /tmp/d -j 4 --graph run.svg \
//!     --spec '[{"name":"table","label":"db"},{"name":"app","deps":["table"]}]'
//! ```
//!
//! Besides a local run's output, the coordinator prints each failed phase
//! on stderr (`failed: <job> <phase> try <n>: <error>`). Exit codes are a
//! local run's: 0 every job passed, 1 some failed, 2 the run could not
//! happen. Tries are retried at once unless `--retry-delay` says otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{Parser, Subcommand};
use dojobber::engine::Plan;
use dojobber::observe::{Event, Observer};
use dojobber::{Context, Group, Job, JobRef, JobResult, Outcome, Runner, bail, dep};
use dojobber_nats::SharedStorage;
use dojobber_nats::cli::{Coordinate, Serve};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "A data-driven dojobber suite over NATS JetStream")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Mode {
    /// Run the suite: send its tries to the workers.
    Coordinate {
        #[command(flatten)]
        coordinate: Coordinate,
        /// Where the jobs make their files.
        #[arg(long)]
        dir: PathBuf,
        /// The jobs, as JSON: `[{"name", "label"?, "deps"?, "gate"?,
        /// "check_gate"?, "time_limit_ms"?, "shares"?, "needs"?}]`.
        #[arg(long)]
        spec: String,
    },
    /// Serve tries.
    Worker {
        #[command(flatten)]
        serve: Serve,
        /// Behave as another version of the suite: one more job.
        #[arg(long)]
        other_version: bool,
    },
}

/// The run's arguments: what every worker rebuilds the graph from.
#[derive(Clone, Serialize, Deserialize)]
struct Args {
    dir: PathBuf,
    jobs: Vec<Spec>,
}

/// One job, as data.
#[derive(Clone, Serialize, Deserialize)]
struct Spec {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    deps: Vec<String>,
    #[serde(default)]
    gate: bool,
    /// Its first check writes `<name>.checking` and waits for the release.
    #[serde(default)]
    check_gate: bool,
    #[serde(default)]
    time_limit_ms: Option<u64>,
    /// A key its run puts into the run's shared storage (the worker's name).
    #[serde(default)]
    shares: Option<String>,
    /// A key its run reads from the shared storage into `<name>.got`.
    #[serde(default)]
    needs: Option<String>,
}

/// The worker's name, written into the files its jobs make.
static WORKER: OnceLock<String> = OnceLock::new();

struct FileJob {
    spec: Spec,
    all: Arc<Vec<Spec>>,
}

impl FileJob {
    fn done(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.done", self.spec.name))
    }
}

impl Job<Args> for FileJob {
    fn name(&self) -> String {
        self.spec.name.clone()
    }
    fn deps(&self, _args: &Args) -> Vec<JobRef<Args>> {
        self.spec
            .deps
            .iter()
            .filter_map(|dep| self.all.iter().find(|spec| &spec.name == dep))
            .map(|spec| job(spec, &self.all))
            .collect()
    }
    fn runs_on(&self) -> Option<String> {
        self.spec.label.clone()
    }
    fn time_limit(&self) -> Option<Duration> {
        self.spec.time_limit_ms.map(Duration::from_millis)
    }
    fn check(&self, cx: &mut Context<'_, Args>) -> JobResult {
        let dir = &cx.args().dir;
        if self.spec.check_gate && !cx.is_recheck() {
            let worker = WORKER.get().map_or("?", String::as_str);
            write_whole(&dir.join(format!("{}.checking", self.spec.name)), worker)?;
            while !dir.join("release").exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !self.done(dir).exists() {
            bail!("{} is not done", self.spec.name);
        }
        Ok(())
    }
    fn run(&self, cx: &mut Context<'_, Args>) -> JobResult {
        let dir = &cx.args().dir;
        let worker = WORKER.get().map_or("?", String::as_str);
        if self.spec.gate {
            write_whole(&dir.join(format!("{}.started", self.spec.name)), worker)?;
            // Waits on an event the test makes: the release file.
            while !dir.join("release").exists() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(key) = &self.spec.shares {
            cx.global().insert_shared(key, worker)?;
        }
        if let Some(key) = &self.spec.needs {
            let Some(value) = cx.global().get_shared::<String>(key)? else {
                bail!("the shared storage has no {key:?}");
            };
            // The worker's SharedStorage holds the same values.
            let direct = SharedStorage::of(cx)
                .ok_or_else(|| anyhow::anyhow!("not run by a worker"))?
                .get::<String>(key)?;
            if direct.as_ref() != Some(&value) {
                bail!(
                    "SharedStorage::of has {direct:?} under {key:?}, the global storage {value:?}"
                );
            }
            write_whole(&dir.join(format!("{}.got", self.spec.name)), &value)?;
        }
        write_whole(&self.done(dir), worker)?;
        cx.local_mut().insert("ran by", worker.to_owned());
        Ok(())
    }
    /// Writes `<name>.cleaned`: the worker whose run left its local
    /// storage, as the cleanup finds it.
    fn cleanup(&self, cx: &mut Context<'_, Args>) -> JobResult {
        let ran_by = cx
            .local()
            .get::<String>("ran by")
            .map_or("nobody", String::as_str);
        let cleaned = cx.args().dir.join(format!("{}.cleaned", self.spec.name));
        write_whole(&cleaned, ran_by)?;
        Ok(())
    }
}

/// Writes a file the tests wait for as every dojobber output is written
/// (`dojobber_viz::files`): through a temporary beside it with a name
/// nobody can guess, created new, then renamed over it, so a test that
/// sees the file also sees all of its content.
fn write_whole(path: &Path, content: &str) -> std::io::Result<()> {
    dojobber_viz::files::write(path, content.as_bytes())
}

fn job(spec: &Spec, all: &Arc<Vec<Spec>>) -> JobRef<Args> {
    dep(FileJob {
        spec: spec.clone(),
        all: Arc::clone(all),
    })
}

/// The root: a group of every job (plus one, for another version).
fn root(args: &Args, other_version: bool) -> JobRef<Args> {
    let mut specs = args.jobs.clone();
    if other_version {
        specs.push(Spec {
            name: "added-in-v2".into(),
            label: None,
            deps: Vec::new(),
            gate: false,
            check_gate: false,
            time_limit_ms: None,
            shares: None,
            needs: None,
        });
    }
    let all = Arc::new(specs);
    dep(Group::new("all").with_deps(all.iter().map(|spec| job(spec, &all))))
}

/// Prints each failed phase on stderr: `failed: <job> <phase> try <n>: <error>`.
struct Failures;

impl Observer for Failures {
    fn on_event(&mut self, event: &Event, plan: &Plan) {
        if let Event::PhaseFinished {
            task,
            outcome: Outcome::Fail(failure),
            ..
        } = event
        {
            let name = dojobber::text::escaped(plan.name(task.job));
            let failure = dojobber::text::escaped(&failure.to_string()).into_owned();
            dojobber_cli::say!(
                "failed: {name} {} try {}: {failure}",
                task.phase,
                task.attempt
            );
        }
    }
}

fn main() -> ExitCode {
    // Developers' logs, only when asked for (`RUST_LOG=debug`): what a
    // user must know comes through the run's printer without them.
    if let Some(level) = std::env::var_os("RUST_LOG") {
        let level = level.to_str().and_then(|level| level.parse().ok());
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_max_level(level.unwrap_or(tracing::Level::WARN))
            .init();
    }
    match Cli::parse().mode {
        Mode::Worker {
            serve,
            other_version,
        } => {
            WORKER.get_or_init(|| serve.name.clone());
            serve.execute(move |args: &Args| root(args, other_version))
        }
        Mode::Coordinate {
            coordinate,
            dir,
            spec,
        } => {
            let jobs = match serde_json::from_str(&spec) {
                Ok(jobs) => jobs,
                Err(error) => {
                    dojobber_cli::say!("error: --spec: {error}");
                    return ExitCode::from(2);
                }
            };
            let args = Args { dir, jobs };
            let runner = Runner::from_ref(root(&args, false), args)
                .retry_delay(Duration::ZERO)
                .observe(Failures);
            coordinate.execute(runner)
        }
    }
}
