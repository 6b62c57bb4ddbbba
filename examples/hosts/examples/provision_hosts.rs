//! The provision example across several hosts, over NATS JetStream: one
//! desired-state file with a section per host (the sample:
//! `examples/provision/provision-hosts.toml`), one worker per host converging its
//! own target directory, and a coordinator that runs the whole graph,
//! cross-host dependencies included. `examples/hosts/run` starts it
//! all on one machine.
//!
//! ```text
//! provision_hosts worker --suite provision --name db --labels db --target /tmp/hosts/db
//! provision_hosts worker --suite provision --name app1 --labels app1 --target /tmp/hosts/app1
//! provision_hosts coordinate --suite provision -v --report-json report.json
//! ```
//!
//! Both modes are `dojobber_nats::cli`'s (`--nats URL`, `--creds`, TLS,
//! ...); the coordinator takes every flag of a local run (`-n`, `-v`,
//! `--deadline`, `--graph`, ...) and exits as one does (2 when the file is
//! invalid: nothing is touched then). A worker serves the jobs of the
//! hosts its labels name (the `[hosts.NAME]` sections), in the directory
//! `--target` gives it: the run's arguments carry the file, never a
//! host's paths.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    hosts::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    dojobber_cli::say!("error: provision manages Unix modes and symlinks: it runs on Unix only");
    std::process::ExitCode::from(2)
}

#[cfg(unix)]
mod hosts {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::time::Duration;

    use clap::{Parser, Subcommand};
    use dojobber::Runner;
    use dojobber_cli::Exit;
    use dojobber_example_provision::{self as provision, Desired, Provision};
    use dojobber_nats::cli::{Coordinate, Serve};

    /// Converge several hosts, each a directory tree and maybe a SQLite
    /// database, to one TOML file with a section per host.
    #[derive(Parser)]
    #[command(version)]
    struct Cli {
        #[command(subcommand)]
        mode: Mode,
    }

    // Parsed once per process: the size of a variant does not matter.
    #[allow(clippy::large_enum_variant)]
    #[derive(Subcommand)]
    enum Mode {
        /// Run the whole file: send each job's tries to its host's workers.
        // A flag given twice takes the last value: `examples/hosts/run`
        // gives `-j`, and whoever runs it may give it again.
        #[command(args_override_self = true)]
        Coordinate {
            /// The desired state of every host, as TOML.
            #[arg(long, value_name = "FILE", default_value = provision::HOSTS_CONFIG)]
            config: PathBuf,
            #[command(flatten)]
            coordinate: Coordinate,
        },
        /// Serve the jobs of the hosts its labels name, in its own directory.
        Worker {
            /// The directory it converges.
            #[arg(long, value_name = "DIR")]
            target: PathBuf,
            #[command(flatten)]
            serve: Serve,
        },
    }

    pub fn main() -> ExitCode {
        // Developers' logs, only when asked for (`RUST_LOG=debug`): what an
        // operator must know comes on stderr without them.
        if let Some(level) = std::env::var_os("RUST_LOG") {
            let level = level.to_str().and_then(|level| level.parse().ok());
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_max_level(level.unwrap_or(tracing::Level::WARN))
                .init();
        }
        match Cli::parse().mode {
            Mode::Coordinate { config, coordinate } => {
                // Every mistake in the file is found before the server is reached.
                let desired = match Desired::load_hosts(&config) {
                    Ok(desired) => desired,
                    Err(error) => return cannot_start(error),
                };
                // No job runs here: the workers have the targets.
                let args = Provision::new(desired, PathBuf::new());
                let runner = Runner::from_ref(args.root(), args)
                    .tries(1)
                    .retry_delay(Duration::ZERO);
                coordinate.execute(runner)
            }
            Mode::Worker { target, serve } => {
                let target = std::path::absolute(&target).unwrap_or(target);
                serve_in(target, &serve)
            }
        }
    }

    /// `Serve::execute`, plus this host's own directory in each run's
    /// arguments.
    fn serve_in(target: PathBuf, serve: &Serve) -> ExitCode {
        serve.execute_with(Provision::root, move |worker| {
            worker.host_args(move |args: &mut Provision| args.set_target(target.clone()))
        })
    }

    fn cannot_start(error: impl std::fmt::Display) -> ExitCode {
        dojobber_cli::say!("error: {error}");
        Exit::CannotStart.into()
    }
}
