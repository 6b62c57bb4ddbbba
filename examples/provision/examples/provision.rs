//! Converge a directory tree and a SQLite database to a declarative file:
//! `cargo run --example provision -- --target /tmp/demo -v`.
//!
//! `--config FILE` is the desired state (default: the sample,
//! `examples/provision/provision.toml`); `--target DIR` the directory to converge
//! (default: a new one under the system temp dir, printed at start). The
//! run flags (`-n`, `-v`, `--report-json`, `--list`, ...) come from
//! `dojobber_cli::RunArgs`. Exit status: 0 when every job passed, 1 when
//! some job failed or is blocked, 2 when the file is invalid (nothing is
//! touched then), the suite cannot start or the flags are wrong.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    use std::path::PathBuf;

    use clap::Parser;
    use dojobber_cli::{Exit, RunArgs};
    use dojobber_example_provision::{self as provision, Desired};

    /// Converge a directory tree and a SQLite database to the state a TOML
    /// file describes, one small idempotent job per entry.
    #[derive(Parser, Debug)]
    #[command(version)]
    struct Cli {
        /// The desired state, as TOML.
        #[arg(long, value_name = "FILE", default_value = provision::SAMPLE_CONFIG)]
        config: PathBuf,
        /// The directory to converge [default: a new directory under the
        /// system temp dir].
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        #[command(flatten)]
        run: RunArgs,
    }

    let cli = Cli::parse();
    if let Err(error) = cli.run.check_inputs([("--config", cli.config.as_path())]) {
        dojobber_cli::say!("error: {}", dojobber_cli::escaped(&error.to_string()));
        return Exit::CannotStart.into();
    }
    // Every mistake in the file is found before anything is touched.
    let desired = match Desired::load(&cli.config) {
        Ok(desired) => desired,
        Err(error) => {
            dojobber_cli::say!("error: {error}");
            return Exit::CannotStart.into();
        }
    };
    let target = match cli.target {
        Some(target) => std::path::absolute(&target).unwrap_or(target),
        None => match provision::fresh_target() {
            Ok(target) => target,
            Err(error) => {
                dojobber_cli::say!("error: cannot make a target directory: {error}");
                return Exit::CannotStart.into();
            }
        },
    };
    dojobber_cli::say!("target: {}", target.display());
    cli.run.execute(provision::runner(desired, target))
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    dojobber_cli::say!("error: provision manages Unix modes and symlinks: it runs on Unix only");
    std::process::ExitCode::from(2)
}
