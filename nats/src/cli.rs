//! The command line of a suite over NATS: one program, two modes, with
//! the same flags a local run has.
//!
//! - `coordinate`: runs the suite, sending its tries to the workers. It
//!   takes every flag of a local run ([`RunArgs`], from `dojobber-cli`:
//!   `-j` (tries in flight at once, over all workers; 16 unless given), `-n`, `-v`, `-d`,
//!   `-q`, `--tries`, `--retry-delay`, `--deadline`, `--fail-fast`,
//!   `--no-cleanup`, `--list`, `--report-json`, `--events-json`,
//!   `--graph`, `--graph-before`, `--html`, `--open`, ...), checks them
//!   and opens every file before anything is sent, cancels on Ctrl-C or
//!   SIGTERM (tries under way finish), and exits as a local run does
//!   (0 all passed, 1 some job failed or is blocked, 2 could not start:
//!   bad flags, another coordinator holds the suite, no server). With `-n`
//!   (check only), 1 says that something would run: some check failed.
//!   What a user must know while it runs (a worker gone silent with a
//!   try, a label no worker serves, a worker refusing a try) comes on
//!   stderr as `warning: ...` lines, with or without `-v` and whatever
//!   the program's logging.
//! - `worker`: serves the suite's tries: `--name` (unique in the suite:
//!   refused while a live worker holds it), `--labels a,b` (the jobs whose
//!   `runs_on` names one of them; jobs with no label go to any worker),
//!   `--slots K` (tries of each label at once), `-v` (a line per try). It
//!   says when it is ready, and every few seconds why it cannot reach the
//!   server. [`Serve::execute_with`] gives it this host's own arguments.
//!
//! Both connect with [`Connection`]: `--nats URL` (default
//! `nats://127.0.0.1:4222`; a comma-separated list for a cluster),
//! `--suite NAME`, and the client's own security options: `--creds FILE`
//! (a NATS credentials file: JWT and NKey seed), `--tls-ca FILE` (trust
//! this CA; implies TLS), `--tls-cert FILE --tls-key FILE` (a client
//! certificate). `--ack-wait` and `--lease-ttl` are the transport's
//! timings ([`Settings`]): give coordinator and workers the same.
//!
//! A suite whose modes need nothing more flattens [`Mode`]:
//!
//! ```no_run
//! use clap::Parser;
//! use dojobber::{dep, Context, Job, JobRef, JobResult};
//! use dojobber_nats::cli::Mode;
//!
//! struct Table;
//! impl Job<String> for Table {
//!     fn runs_on(&self) -> Option<String> { Some("db".into()) }
//!     fn check(&self, _: &mut Context<'_, String>) -> JobResult { Ok(()) }
//! }
//!
//! /// provision: `provision coordinate --suite prod --graph run.svg`,
//! /// `provision worker --suite prod --name db1 --labels db`.
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     mode: Mode,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let root = |_: &String| -> JobRef<String> { dep(Table) };
//!     Cli::parse().mode.execute(root, "prod".to_string())
//! }
//! ```
//!
//! A suite whose modes take flags of their own (the run's arguments, say)
//! flattens [`Coordinate`] and [`Serve`] into its own subcommands and
//! calls their `execute` (see `src/bin/dojobber-nats-demo.rs`). Call these
//! from a plain `fn main`: each `execute` starts its own tokio runtime.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dojobber::{JobRef, Runner};
use dojobber_cli::{Exit, RunArgs};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Coordinator, Error, Settings, Worker};

/// How to reach the suite on the server: the flags both modes share.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[group(id = "dojobber-nats-connection")]
pub struct Connection {
    /// The NATS server (several, comma-separated, for a cluster).
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The suite's name on the server: its streams, buckets and lease.
    #[arg(long, value_name = "NAME")]
    pub suite: String,
    /// A NATS credentials file (JWT and NKey seed) to connect with.
    #[arg(long, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// Trust the server certificates this CA (PEM) signed; connects with TLS.
    #[arg(long, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for TLS; needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How long a silent worker keeps a try before JetStream hands it to
    /// another: `30s`, `1500ms`. The same for coordinator and workers.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub ack_wait: Duration,
    /// How long a dead coordinator's lease keeps the suite: `15s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "15s")]
    pub lease_ttl: Duration,
}

impl Connection {
    /// The transport's timings these flags give.
    ///
    /// ```
    /// use clap::Parser;
    /// use dojobber_nats::cli::Connection;
    ///
    /// #[derive(Parser)]
    /// struct Cli { #[command(flatten)] connection: Connection }
    /// let cli = Cli::parse_from(["x", "--suite", "s", "--ack-wait", "1500ms"]);
    /// assert_eq!(cli.connection.settings().ack_wait, std::time::Duration::from_millis(1500));
    /// ```
    pub fn settings(&self) -> Settings {
        Settings {
            ack_wait: self.ack_wait,
            lease_ttl: self.lease_ttl,
            ..Settings::default()
        }
    }

    /// Connects as the flags say, with async-nats's own credentials and TLS
    /// options; fails at once, naming the address, when no server answers
    /// (the coordinator's way: a wrong `--nats` is said before anything
    /// else). Files the flags name are checked first, each error naming
    /// its flag.
    ///
    /// ```no_run
    /// use clap::Parser;
    /// use dojobber_nats::cli::Connection;
    ///
    /// #[derive(Parser)]
    /// struct Cli { #[command(flatten)] connection: Connection }
    /// # async fn connect() -> Result<(), dojobber_nats::Error> {
    /// let cli = Cli::parse_from(["x", "--suite", "s", "--nats", "nats://10.0.0.5:4222"]);
    /// let client = cli.connection.connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(&self) -> Result<async_nats::Client, Error> {
        self.connect_with(async_nats::ConnectOptions::new()).await
    }

    /// Like [`connect`](Self::connect), but waits for the server to come
    /// up (the workers' way: they may start before it).
    pub async fn connect_retrying(&self) -> Result<async_nats::Client, Error> {
        self.connect_with(async_nats::ConnectOptions::new().retry_on_initial_connect())
            .await
    }

    async fn connect_with(
        &self,
        mut options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, Error> {
        let readable = |flag: &'static str, path: &PathBuf| {
            std::fs::metadata(path)
                .and_then(|meta| match meta.is_file() {
                    true => Ok(()),
                    false => Err(std::io::Error::other("not a file")),
                })
                .map_err(|error| Error::File {
                    flag,
                    path: path.clone(),
                    error: error.to_string(),
                })
        };
        let files = [
            ("--tls-ca", &self.tls_ca),
            ("--tls-cert", &self.tls_cert),
            ("--tls-key", &self.tls_key),
        ];
        for (flag, path) in files {
            if let Some(path) = path {
                readable(flag, path)?;
            }
        }
        if let Some(creds) = &self.creds {
            options = options
                .credentials_file(creds)
                .await
                .map_err(|error| Error::File {
                    flag: "--creds",
                    path: creds.clone(),
                    error: error.to_string(),
                })?;
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        let servers: Vec<&str> = self.nats.split(',').map(str::trim).collect();
        options
            .connect(servers)
            .await
            .map_err(|error| Error::Connect {
                url: self.nats.clone(),
                error: error.to_string(),
            })
    }
}

/// Tries in flight at once, over all workers, when `-j` is not given: a
/// local run's default (1) would keep every worker but one idle.
pub const DEFAULT_IN_FLIGHT: u16 = 16;

/// `coordinate`: run the suite on the workers, with a local run's flags;
/// `-j` (tries in flight at once, over all workers) defaults to
/// [`DEFAULT_IN_FLIGHT`].
///
/// ```
/// use clap::Parser;
/// use dojobber_nats::cli::{Coordinate, DEFAULT_IN_FLIGHT};
///
/// #[derive(Parser)]
/// struct Cli { #[command(flatten)] coordinate: Coordinate }
/// let cli = Cli::parse_from(["x", "--suite", "s"]);
/// assert_eq!(cli.coordinate.run.workers, DEFAULT_IN_FLIGHT);
/// let cli = Cli::parse_from(["x", "--suite", "s", "-j", "1"]);
/// assert_eq!(cli.coordinate.run.workers, 1);
/// ```
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[group(id = "dojobber-nats-coordinate")]
#[command(mut_arg("workers", |arg| arg
    .default_value("16") // DEFAULT_IN_FLIGHT (the example checks)
    .help("Tries in flight at once, over all workers (each try runs on one worker)")))]
pub struct Coordinate {
    /// Where the suite is.
    #[command(flatten)]
    pub connection: Connection,
    /// When another coordinator holds the suite, wait this long for it to
    /// end instead of refusing at once: `0`, `30s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    pub wait_for_lease: Duration,
    /// The flags of a local run.
    #[command(flatten)]
    pub run: RunArgs,
}

impl Coordinate {
    /// Runs `runner` (the suite's root and arguments, and anything the
    /// program set on it, such as observers) on the workers as the flags
    /// say, and returns the exit code. Starts its own tokio runtime: call
    /// it from a plain `fn main`.
    ///
    /// ```no_run
    /// use clap::Parser;
    /// use dojobber::{Group, Runner};
    /// use dojobber_nats::cli::Coordinate;
    ///
    /// #[derive(Parser)]
    /// struct Cli {
    ///     #[command(flatten)]
    ///     coordinate: Coordinate,
    ///     /// The run's own argument.
    ///     #[arg(long)]
    ///     env: String,
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     let cli = Cli::parse();
    ///     let runner = Runner::new(Group::<String>::new("All"), cli.env.clone());
    ///     cli.coordinate.execute(runner)
    /// }
    /// ```
    pub fn execute<A>(&self, runner: Runner<A>) -> ExitCode
    where
        A: Serialize + Send + Sync + 'static,
    {
        if self.run.only.is_some() {
            // Workers rebuild the whole graph from the root: a run rooted
            // elsewhere would be refused by every one of them.
            dojobber_cli::say!("error: --only: a distributed run runs the whole suite");
            return Exit::CannotStart.into();
        }
        self.run.execute_with(runner, |runner| {
            let runtime = runtime()?;
            runtime.block_on(async {
                let options = saying_connection_events("coordinator".into());
                let client = self.connection.connect_with(options).await?;
                Coordinator::from_runner(client, &self.connection.suite, runner)
                    .settings(self.connection.settings())
                    .wait_for_lease(self.wait_for_lease)
                    .run_to_end()
                    .await
            })
        })
    }
}

/// `worker`: serve the suite's tries.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[group(id = "dojobber-nats-serve")]
pub struct Serve {
    /// Where the suite is.
    #[command(flatten)]
    pub connection: Connection,
    /// This worker's name, unique among the suite's workers.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// The labels it serves, comma-separated (jobs with no label go to
    /// every worker).
    #[arg(long, value_name = "LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Tries of each label it performs at once.
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub slots: u16,
    /// Say a line on stderr per try performed.
    #[arg(short, long)]
    pub verbose: bool,
}

impl Serve {
    /// Serves tries with the graph `root` builds from each run's
    /// arguments, until killed or the server cannot be used (then exit 2,
    /// the error on stderr). Says when it is ready, and every few seconds
    /// while it cannot reach the server, why; refuses a name a live worker
    /// of the suite holds. Starts its own tokio runtime: call it from a
    /// plain `fn main`.
    ///
    /// ```no_run
    /// use clap::Parser;
    /// use dojobber::{dep, Group, JobRef};
    /// use dojobber_nats::cli::Serve;
    ///
    /// #[derive(Parser)]
    /// struct Cli {
    ///     #[command(flatten)]
    ///     serve: Serve,
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     let root = |_: &String| -> JobRef<String> { dep(Group::<String>::new("All")) };
    ///     Cli::parse().serve.execute(root)
    /// }
    /// ```
    pub fn execute<A>(&self, root: impl Fn(&A) -> JobRef<A> + Send + Sync + 'static) -> ExitCode
    where
        A: DeserializeOwned + Send + Sync + 'static,
    {
        self.execute_with(root, |worker| worker)
    }

    /// Like [`execute`](Self::execute), with `configure` setting the rest
    /// of the [`Worker`] before it serves: this host's own arguments
    /// ([`Worker::host_args`]), say, so a fleet program is one `main` with
    /// two modes.
    ///
    /// ```no_run
    /// use std::path::PathBuf;
    /// use clap::{Parser, Subcommand};
    /// use dojobber::{dep, Group, JobRef, Runner};
    /// use dojobber_nats::cli::{Coordinate, Serve};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Args { #[serde(skip)] target: PathBuf }
    ///
    /// fn root(_: &Args) -> JobRef<Args> { dep(Group::<Args>::new("All")) }
    ///
    /// #[derive(Parser)]
    /// enum Cli {
    ///     Coordinate(Coordinate),
    ///     Worker {
    ///         #[command(flatten)]
    ///         serve: Serve,
    ///         /// The directory this host converges.
    ///         #[arg(long)]
    ///         target: PathBuf,
    ///     },
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     match Cli::parse() {
    ///         Cli::Coordinate(coordinate) => {
    ///             let args = Args { target: PathBuf::new() };
    ///             coordinate.execute(Runner::from_ref(root(&args), args))
    ///         }
    ///         Cli::Worker { serve, target } => serve.execute_with(root, move |worker| {
    ///             worker.host_args(move |args: &mut Args| args.target = target.clone())
    ///         }),
    ///     }
    /// }
    /// ```
    pub fn execute_with<A>(
        &self,
        root: impl Fn(&A) -> JobRef<A> + Send + Sync + 'static,
        configure: impl FnOnce(Worker<A>) -> Worker<A>,
    ) -> ExitCode
    where
        A: DeserializeOwned + Send + Sync + 'static,
    {
        let served = runtime().and_then(|runtime| {
            runtime.block_on(async {
                let client = self.connect_saying().await?;
                let worker = Worker::new(client, &self.connection.suite, &self.name, root)?
                    .labels(self.labels.iter().cloned())?
                    .slots(usize::from(self.slots))
                    .settings(self.connection.settings())
                    .announce(self.verbose);
                configure(worker).serve_until(stop_signal()).await
            })
        });
        match served {
            Ok(()) => Exit::Success.into(),
            Err(error) => {
                dojobber_cli::say!("error: {}", dojobber::text::escaped(&error.to_string()));
                Exit::CannotStart.into()
            }
        }
    }

    /// Connects, saying every few seconds why it cannot yet, and later
    /// when the connection is lost and back.
    async fn connect_saying(&self) -> Result<async_nats::Client, Error> {
        loop {
            let options = saying_connection_events(format!("worker {}", self.name));
            match self.connection.connect_with(options).await {
                Ok(client) => return Ok(client),
                Err(error @ Error::Connect { .. }) => {
                    let error = dojobber::text::escaped(&error.to_string()).into_owned();
                    dojobber_cli::say!(
                        "worker {}: {error}; trying again in {RECONNECT_EVERY:?}",
                        self.name
                    );
                    tokio::time::sleep(RECONNECT_EVERY).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Ready at Ctrl-C, SIGTERM or SIGHUP, so a worker stopped by its
/// service manager leaves its name free at once; never ready when the
/// program set its own handler.
async fn stop_signal() {
    let signalled = Arc::new(tokio::sync::Notify::new());
    let bell = Arc::clone(&signalled);
    match ctrlc::set_handler(move || bell.notify_one()) {
        Ok(()) => signalled.notified().await,
        Err(_) => std::future::pending().await,
    }
}

/// Connection options that say on stderr when the server is lost and
/// when it is back (`who` is the speaker): a user must know, whatever
/// the program's logging.
fn saying_connection_events(who: String) -> async_nats::ConnectOptions {
    let lost = Arc::new(AtomicBool::new(false));
    async_nats::ConnectOptions::new().event_callback(move |event| {
        let (who, lost) = (who.clone(), Arc::clone(&lost));
        async move {
            match event {
                async_nats::Event::Disconnected => {
                    lost.store(true, Ordering::Relaxed);
                    dojobber_cli::say!("{who}: lost the NATS server; reconnecting");
                }
                async_nats::Event::Connected if lost.swap(false, Ordering::Relaxed) => {
                    dojobber_cli::say!("{who}: the NATS server is back");
                }
                _ => {}
            }
        }
    })
}

/// How often a worker that cannot reach the server tries again (and says so).
const RECONNECT_EVERY: Duration = Duration::from_secs(3);

/// The two modes, for a suite whose modes take no flags of their own.
// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Run the suite: send its tries to the workers.
    Coordinate(Coordinate),
    /// Serve the suite's tries.
    Worker(Serve),
}

impl Mode {
    /// Coordinates a run of `root(&args)` with `args`, or serves tries
    /// with `root`, as the mode says; returns the exit code.
    pub fn execute<A>(
        &self,
        root: impl Fn(&A) -> JobRef<A> + Send + Sync + 'static,
        args: A,
    ) -> ExitCode
    where
        A: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        match self {
            Mode::Coordinate(coordinate) => coordinate.execute(Runner::from_ref(root(&args), args)),
            Mode::Worker(serve) => serve.execute(root),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Error::Nats {
            context: "cannot start the async runtime",
            error: error.to_string(),
        })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(text).map_err(|e| e.to_string())
}
