//! The provision example across several hosts, over NATS JetStream: one
//! desired-state file with a section per host (the sample:
//! `examples/provision-hosts.toml`), one worker per host converging its
//! own target directory, and a coordinator that runs the whole graph,
//! cross-host dependencies included. `examples/distributed/run` starts it
//! all on one machine.
//!
//! ```text
//! provision_hosts worker --nats nats://127.0.0.1:4222 --host db --target /tmp/hosts/db
//! provision_hosts worker --nats nats://127.0.0.1:4222 --host app1 --target /tmp/hosts/app1
//! provision_hosts coordinate --nats nats://127.0.0.1:4222 --report-json report.json
//! ```
//!
//! A worker serves the jobs of its host (the `[hosts.NAME]` section of
//! that name), in the directory it is given: the run's arguments carry
//! the file, never a host's paths. The coordinator prints a summary on
//! stderr; exit 0 when every job passed, 1 when some job failed or is
//! blocked, 2 when the file is invalid (nothing is touched then) or the
//! run cannot start.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    hosts::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("error: provision manages Unix modes and symlinks: it runs on Unix only");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod hosts {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::{Parser, Subcommand};
    use dojobber::{Printer, Report, Verbosity};
    use dojobber_cli::Exit;
    use dojobber_examples::provision::{self, Desired, Provision};
    use dojobber_nats::{Coordinator, Settings, Worker, async_nats};

    /// Converge several hosts, each a directory tree and maybe a SQLite
    /// database, to one TOML file with a section per host.
    #[derive(Parser)]
    #[command(version)]
    struct Cli {
        /// The NATS server (with JetStream).
        #[arg(long, global = true, default_value = "nats://127.0.0.1:4222")]
        nats: String,
        /// The suite's name on the server: its queues, lease and storage.
        #[arg(long, global = true, default_value = "provision")]
        suite: String,
        #[command(subcommand)]
        mode: Mode,
    }

    #[derive(Subcommand)]
    enum Mode {
        /// Run the whole file: send each job's tries to its host's workers.
        Coordinate {
            /// The desired state of every host, as TOML.
            #[arg(long, value_name = "FILE", default_value = provision::HOSTS_CONFIG)]
            config: PathBuf,
            /// Stop starting jobs after this many seconds: a host whose
            /// worker never comes has its jobs failed or blocked then.
            #[arg(long, value_name = "SECONDS")]
            deadline: Option<f64>,
            /// Only check: change nothing on any host.
            #[arg(short = 'n', long)]
            no_act: bool,
            /// Print each phase as it ends.
            #[arg(short, long)]
            verbose: bool,
            /// Write the run's report as JSON to FILE.
            #[arg(long, value_name = "FILE")]
            report_json: Option<PathBuf>,
        },
        /// Serve the jobs of one host.
        Worker {
            /// The host this worker is: a `[hosts.NAME]` section of the file.
            #[arg(long)]
            host: String,
            /// The directory it converges.
            #[arg(long, value_name = "DIR")]
            target: PathBuf,
            /// Its name among the suite's workers [default: the host's].
            #[arg(long)]
            name: Option<String>,
        },
    }

    pub fn main() -> ExitCode {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::WARN)
            .init();
        let cli = Cli::parse();
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return Exit::CannotStart.into();
            }
        };
        runtime.block_on(run(cli))
    }

    async fn run(cli: Cli) -> ExitCode {
        // The mode's inputs are checked before the server is reached.
        match cli.mode {
            Mode::Coordinate {
                config,
                deadline,
                no_act,
                verbose,
                report_json,
            } => {
                let desired = match Desired::load_hosts(&config) {
                    Ok(desired) => desired,
                    Err(error) => return cannot_start(error),
                };
                let Some(client) = connect(&cli.nats).await else {
                    return Exit::CannotStart.into();
                };
                let args = Provision::new(desired, PathBuf::new());
                let mut coordinator = Coordinator::from_ref(client, &cli.suite, args.root(), args)
                    .tries(1)
                    .retry_delay(Duration::ZERO)
                    .no_act(no_act);
                if verbose {
                    coordinator =
                        coordinator.observe(Printer::new(Verbosity::Verbose, std::io::stderr()));
                }
                if let Some(seconds) = deadline {
                    match Duration::try_from_secs_f64(seconds) {
                        Ok(limit) => coordinator = coordinator.deadline(limit),
                        Err(error) => {
                            return cannot_start(format!("--deadline {seconds}: {error}"));
                        }
                    }
                }
                match coordinator.run().await {
                    Ok(report) => finish(&report, report_json),
                    Err(error) => cannot_start(error),
                }
            }
            Mode::Worker { host, target, name } => {
                let target = std::path::absolute(&target).unwrap_or(target);
                let name = name.unwrap_or_else(|| host.clone());
                let Some(client) = connect(&cli.nats).await else {
                    return Exit::CannotStart.into();
                };
                let worker = Worker::new(client, &cli.suite, &name, Provision::root)
                    .and_then(|worker| worker.labels([host.clone()]));
                let worker = match worker {
                    Ok(worker) => worker.host_args(move |args: &mut Provision| {
                        args.set_target(target.clone());
                    }),
                    Err(error) => return cannot_start(error),
                };
                eprintln!("worker {name}: serving host {host}");
                match worker.settings(Settings::default()).serve().await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => cannot_start(error),
                }
            }
        }
    }

    async fn connect(url: &str) -> Option<async_nats::Client> {
        match async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
        {
            Ok(client) => Some(client),
            Err(error) => {
                eprintln!("error: cannot connect to {url}: {error}");
                None
            }
        }
    }

    fn cannot_start(error: impl std::fmt::Display) -> ExitCode {
        eprintln!("error: {error}");
        Exit::CannotStart.into()
    }

    fn finish(report: &Report, report_json: Option<PathBuf>) -> ExitCode {
        eprint!("{}", dojobber_cli::summary(report, false));
        if let Some(path) = report_json {
            let written = serde_json::to_vec_pretty(report)
                .map_err(std::io::Error::other)
                .and_then(|json| std::fs::write(&path, json));
            if let Err(error) = written {
                eprintln!("error: cannot write {}: {error}", path.display());
                return Exit::CannotStart.into();
            }
        }
        if report.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}
