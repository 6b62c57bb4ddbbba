//! The jobs for the directory tree: the target itself, directories, files,
//! symlinks and paths that must not exist. Each check looks at the disk;
//! each run changes only what its check found wrong, and never replaces a
//! directory or a file it did not expect.

use std::fs;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use dojobber::{Context, JobRef, JobResult, bail};

use super::Provision;
use super::beneath::{self, Found, Root, stat_at};
use super::fault::{self, Kind};
use super::paths::RelPath;

/// How the temporary files of a write start (the new content of a file,
/// a new symlink, before they are renamed into place), so that the next
/// run finds and removes the ones a crash left.
pub const TEMP_PREFIX: &str = ".provision-tmp-";

/// The jobs an entry needs, as positions in the desired state: the entry
/// it is inside, then the deps the file names.
#[derive(Clone, Debug, Default)]
pub struct Needs(pub(super) Vec<usize>);

impl Needs {
    /// The job values, for [`Job::deps`].
    pub(super) fn jobs(&self, args: &Provision) -> Vec<JobRef<Provision>> {
        self.0
            .iter()
            .filter_map(|&id| args.desired.jobs.get(id).cloned())
            .collect()
    }
}

/// An I/O result as a one-line job error: `cannot write etc/motd: Permission denied (os error 13)`.
pub(super) fn os<T>(
    result: std::io::Result<T>,
    what: impl FnOnce() -> String,
) -> anyhow::Result<T> {
    result.map_err(|error| anyhow::anyhow!("{}: {error}", what()))
}

const RUN_ERROR: &str = "provision: the run's error";

/// Keeps a failed run's error for the recheck of the same try (in the
/// job's local storage), then returns the result as it is.
pub(super) fn ran(cx: &mut Context<'_, Provision>, result: JobResult) -> JobResult {
    if let Err(error) = &result {
        cx.local_mut().insert(RUN_ERROR, format!("{error:#}"));
    }
    result
}

/// A failed recheck after a failed run is reported with the run's error
/// first, since it is the cause: `cannot create directory notes: File
/// exists (os error 17)` rather than `notes/todo.txt is missing`. The
/// check itself is always a fresh look at the disk.
pub(super) fn checked(cx: &Context<'_, Provision>, result: JobResult) -> JobResult {
    match (result, cx.local().get::<String>(RUN_ERROR)) {
        (Err(error), Some(run_error)) if cx.is_recheck() => Err(error.context(run_error.clone())),
        (result, _) => result,
    }
}

/// Implements [`dojobber::Job`] for an entry type from its `label`,
/// `needs`, `inspect` (the check) and `converge` (the run).
macro_rules! entry_job {
    ($type:ty) => {
        impl dojobber::Job<$crate::Provision> for $type {
            fn name(&self) -> String {
                self.label()
            }
            fn deps(&self, args: &$crate::Provision) -> Vec<dojobber::JobRef<$crate::Provision>> {
                self.needs.jobs(args)
            }
            fn check(
                &self,
                cx: &mut dojobber::Context<'_, $crate::Provision>,
            ) -> dojobber::JobResult {
                let result = self.inspect(cx.args().target());
                $crate::jobs::checked(cx, result)
            }
            fn run(
                &self,
                cx: &mut dojobber::Context<'_, $crate::Provision>,
            ) -> dojobber::JobResult {
                let result = self.converge(cx.args().target());
                $crate::jobs::ran(cx, result)
            }
        }
    };
}
pub(super) use entry_job;

/// A job of one host, in a file for several hosts: the entry's job, named
/// `HOST: …` and run by the workers labelled `HOST`.
pub struct OnHost {
    pub(super) host: std::sync::Arc<str>,
    pub(super) job: JobRef<Provision>,
}

impl dojobber::Job<Provision> for OnHost {
    fn name(&self) -> String {
        format!("{}: {}", self.host, self.job.name())
    }
    fn deps(&self, args: &Provision) -> Vec<JobRef<Provision>> {
        self.job.deps(args)
    }
    fn kind(&self) -> dojobber::JobKind {
        self.job.kind()
    }
    fn tries(&self) -> Option<u32> {
        self.job.tries()
    }
    fn retry_delay(&self) -> Option<std::time::Duration> {
        self.job.retry_delay()
    }
    fn time_limit(&self) -> Option<std::time::Duration> {
        self.job.time_limit()
    }
    fn concurrency_group(&self) -> Option<String> {
        self.job.concurrency_group()
    }
    fn runs_on(&self) -> Option<String> {
        Some(self.host.to_string())
    }
    fn check(&self, cx: &mut Context<'_, Provision>) -> JobResult {
        self.job.check(cx)
    }
    fn run(&self, cx: &mut Context<'_, Provision>) -> JobResult {
        self.job.run(cx)
    }
    fn cleanup(&self, cx: &mut Context<'_, Provision>) -> JobResult {
        self.job.cleanup(cx)
    }
}

/// Fails when the permission bits differ.
pub(super) fn check_mode(path: &RelPath, found: &Found, mode: u32) -> JobResult {
    let has = found.permissions();
    if has != mode {
        bail!("{path} has mode {has:04o}, wants {mode:04o}");
    }
    Ok(())
}

/// Sets the permission bits of the file `fd` is open on, which the caller
/// checked is the entry. A file with other names (hard links) is refused:
/// one of them may be outside the target, and the mode is the file's.
pub(super) fn set_mode(path: &RelPath, fd: &impl AsFd, found: &Found, mode: u32) -> JobResult {
    if found.is_file() && found.links > 1 {
        bail!(
            "{path} has {} hard links: not changing the mode of a file that other paths (maybe outside the target) share; replace it with a file of its own",
            found.links
        );
    }
    os(beneath::set_mode(fd, mode), || {
        format!("cannot set the mode of {path}")
    })
}

/// The target's handle, through which every entry is reached.
pub(super) fn open_root(root: &Path) -> anyhow::Result<Root> {
    no_target_is_an_error(root)?;
    os(Root::open(root), || {
        format!("cannot open {}", root.display())
    })
}

/// The target directory itself: everything else is inside it. Its check
/// also takes the run's lock on the target and looks for temporary files
/// an interrupted run left; its run removes them.
#[derive(Debug)]
pub struct Target {
    needs: Needs,
    /// Where writes make temporary files: the directories of the file and
    /// symlink entries (`None`: the target itself).
    staging: Vec<Option<RelPath>>,
    /// The target directory, open and locked (`flock`) until the run ends:
    /// two runs on one target take turns.
    lock: Mutex<Option<fs::File>>,
}

impl Target {
    pub(super) fn new(needs: Needs, staging: Vec<Option<RelPath>>) -> Target {
        Target {
            needs,
            staging,
            lock: Mutex::new(None),
        }
    }
    fn label(&self) -> String {
        super::TARGET_JOB.to_owned()
    }
    fn inspect(&self, root: &Path) -> JobResult {
        no_target_is_an_error(root)?;
        // The target itself may be a symlink to a directory: the user named it.
        match fs::metadata(root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!("{} is not a directory", root.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} is missing", root.display())
            }
            Err(error) => bail!("cannot inspect {}: {error}", root.display()),
        }
        self.take_lock(root)?;
        match self.leftovers(&open_root(root)?)?.as_slice() {
            [] => Ok(()),
            [one] => bail!("a temporary file left by an interrupted run: {one}"),
            [first, more @ ..] => bail!(
                "{} temporary files left by an interrupted run: {first} and more",
                more.len() + 1
            ),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        no_target_is_an_error(root)?;
        os(fs::create_dir_all(root), || {
            format!("cannot create {}", root.display())
        })?;
        self.take_lock(root)?;
        let handle = open_root(root)?;
        for leftover in self.leftovers(&handle)? {
            let Some(dir) = handle.parent_of(&leftover)? else {
                continue;
            };
            os(beneath::remove_file(&dir, leftover.name()), || {
                format!("cannot remove {leftover}")
            })?;
        }
        Ok(())
    }

    /// Waits until no other run holds the target, then holds it until
    /// this run ends (the lock goes with the open directory, so also when
    /// the process is killed). Taking it changes nothing on disk.
    fn take_lock(&self, root: &Path) -> JobResult {
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if held.is_some() {
            return Ok(());
        }
        let cannot_lock = || format!("cannot lock {}", root.display());
        let dir = os(fs::File::open(root), cannot_lock)?;
        match dir.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                dojobber_cli::say!(
                    "provision: another run is converging {}: waiting for it to finish",
                    root.display()
                );
                os(dir.lock(), cannot_lock)?;
            }
            Err(fs::TryLockError::Error(error)) => os(Err(error), cannot_lock)?,
        }
        *held = Some(dir);
        Ok(())
    }

    /// The temporary files in the staging directories, by their path.
    fn leftovers(&self, root: &Root) -> anyhow::Result<Vec<RelPath>> {
        let mut found = Vec::new();
        for dir in &self.staging {
            let shown = || match dir {
                Some(dir) => format!("cannot list {dir}"),
                None => "cannot list the target directory".to_owned(),
            };
            // Only a real directory: a symlink here is its entry's business.
            let Some(handle) = root.staging_dir(dir.as_ref())? else {
                continue;
            };
            for name in os(beneath::list(&handle), shown)? {
                let Ok(name) = String::from_utf8(name) else {
                    continue;
                };
                if !name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                let is_dir = os(stat_at(&handle, &name), shown)?.is_some_and(|f| f.is_dir());
                if !is_dir {
                    let path = match dir {
                        Some(dir) => format!("{dir}/{name}"),
                        None => name,
                    };
                    found.push(RelPath::parse(&path).map_err(anyhow::Error::msg)?);
                }
            }
        }
        found.sort();
        Ok(found)
    }
}
entry_job!(Target);

/// A worker that set no target of its own has none, rather than the
/// current directory; every job needs the target's, so nothing runs.
fn no_target_is_an_error(root: &Path) -> JobResult {
    if root.as_os_str().is_empty() {
        bail!("no target directory on this host: give the worker one (--target)");
    }
    Ok(())
}

/// A directory with a mode.
#[derive(Debug)]
pub struct Directory {
    pub(super) path: RelPath,
    pub(super) mode: u32,
    pub(super) needs: Needs,
}

impl Directory {
    fn label(&self) -> String {
        format!("dir {}", self.path)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        match open_root(root)?.look(&self.path)? {
            None => bail!("{} is missing", self.path),
            Some(found) if !found.is_dir() => {
                bail!("{} is {}, not a directory", self.path, found.describe())
            }
            Some(found) => check_mode(&self.path, &found, self.mode),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let root = open_root(root)?;
        let parent = root.make_parent(&self.path)?;
        let name = self.path.name();
        match os(stat_at(&parent, name), || {
            format!("cannot inspect {}", self.path)
        })? {
            None => {
                os(
                    rustix::fs::mkdirat(&parent, name, rustix::fs::Mode::from_raw_mode(0o700))
                        .map_err(std::io::Error::from),
                    || format!("cannot create directory {}", self.path),
                )?;
                fault::point(Kind::Tree);
            }
            Some(found) if !found.is_dir() => bail!(
                "{} is {}: not replacing it with a directory",
                self.path,
                found.describe()
            ),
            Some(_) => {}
        }
        // Opened without following a symlink, then changed through the handle.
        let dir = match beneath::open_subdir(&parent, name) {
            Ok(dir) => dir,
            Err(error) => match stat_at(&parent, name) {
                Ok(Some(found)) if !found.is_dir() => bail!(
                    "{} is {}: not replacing it with a directory",
                    self.path,
                    found.describe()
                ),
                _ => bail!("cannot open directory {}: {error}", self.path),
            },
        };
        let found = os(
            rustix::fs::fstat(&dir).map_err(std::io::Error::from),
            || format!("cannot inspect {}", self.path),
        )?;
        set_mode(&self.path, &dir, &Found::of(&found), self.mode)
    }
}
entry_job!(Directory);

/// What a file must hold.
#[derive(Debug)]
pub(super) enum Content {
    /// Known from the file: text, or a template rendered when it was checked.
    Fixed(String),
    /// A template that reads the run's shared values (`shared.KEY…`),
    /// rendered in each phase with what is shared then.
    ReadsShared {
        template: String,
        vars: std::collections::BTreeMap<String, minijinja::Value>,
        keys: Vec<String>,
    },
}

/// A regular file with exactly this content and mode.
#[derive(Debug)]
pub struct File {
    pub(super) path: RelPath,
    pub(super) content: Content,
    pub(super) mode: u32,
    pub(super) needs: Needs,
}

impl dojobber::Job<Provision> for File {
    fn name(&self) -> String {
        self.label()
    }
    fn deps(&self, args: &Provision) -> Vec<JobRef<Provision>> {
        self.needs.jobs(args)
    }
    fn check(&self, cx: &mut Context<'_, Provision>) -> JobResult {
        let result = self
            .content(cx)
            .and_then(|content| self.inspect(cx.args().target(), &content));
        checked(cx, result)
    }
    fn run(&self, cx: &mut Context<'_, Provision>) -> JobResult {
        let result = self
            .content(cx)
            .and_then(|content| self.converge(cx.args().target(), &content));
        ran(cx, result)
    }
}

impl File {
    fn label(&self) -> String {
        format!("file {}", self.path)
    }
    /// The content it must have in this run.
    fn content(&self, cx: &Context<'_, Provision>) -> anyhow::Result<std::borrow::Cow<'_, str>> {
        let (template, vars, keys) = match &self.content {
            Content::Fixed(content) => return Ok(content.as_str().into()),
            Content::ReadsShared {
                template,
                vars,
                keys,
            } => (template, vars, keys),
        };
        let mut shared = Vec::with_capacity(keys.len());
        for key in keys {
            match cx.global().get_shared::<super::SharedDatabase>(key)? {
                Some(value) => shared.push((key.clone(), value)),
                None => bail!("the run's shared values have no {key:?} yet"),
            }
        }
        let vars = super::config::with_shared(vars, shared);
        let content = super::config::render(template, vars)
            .map_err(|error| anyhow::anyhow!("{}: {error}", self.path))?;
        Ok(content.into())
    }
    fn inspect(&self, root: &Path, content: &str) -> JobResult {
        let root = open_root(root)?;
        let Some(parent) = root.parent_of(&self.path)? else {
            bail!("{} is missing", self.path);
        };
        let cannot_read = || format!("cannot read {}", self.path);
        let name = self.path.name();
        match os(stat_at(&parent, name), cannot_read)? {
            None => bail!("{} is missing", self.path),
            Some(found) if !found.is_file() => {
                bail!("{} is {}, not a file", self.path, found.describe())
            }
            Some(_) => {}
        }
        let Some((file, found)) = os(beneath::open_file(&parent, name), cannot_read)? else {
            bail!("{} is no longer a file", self.path);
        };
        if os(beneath::read_all(&file), cannot_read)? != content.as_bytes() {
            bail!("{} does not have the desired content", self.path);
        }
        check_mode(&self.path, &found, self.mode)
    }
    fn converge(&self, root: &Path, content: &str) -> JobResult {
        let root = open_root(root)?;
        let parent = root.make_parent(&self.path)?;
        let name = self.path.name();
        let cannot_write = || format!("cannot write {}", self.path);
        match os(stat_at(&parent, name), cannot_write)? {
            Some(found) if !(found.is_file() || found.is_symlink()) => bail!(
                "{} is {}: not replacing it with a file",
                self.path,
                found.describe()
            ),
            Some(found) if found.is_file() => {
                if let Some((file, found)) = os(beneath::open_file(&parent, name), cannot_write)?
                    && found.links == 1
                    && beneath::read_all(&file).is_ok_and(|found| found == content.as_bytes())
                {
                    return set_mode(&self.path, &file, &found, self.mode);
                }
            }
            _ => {}
        }
        // A new file next to the old one, renamed over it: readers see the
        // old content or the new, a symlink there is replaced, not
        // followed, and a file with other names (hard links) keeps its
        // content and mode under them.
        let (temp, mut file) = os(beneath::create_temp(&parent, TEMP_PREFIX), cannot_write)?;
        let written = (|| {
            let (head, tail) = content.as_bytes().split_at(content.len() / 2);
            os(file.write_all(head), cannot_write)?;
            fault::point(Kind::Tree);
            os(
                file.write_all(tail).and_then(|()| file.sync_all()),
                cannot_write,
            )?;
            os(beneath::set_mode(&file, self.mode), || {
                format!("cannot set the mode of {}", self.path)
            })?;
            fault::point(Kind::Tree);
            os(beneath::rename(&parent, &temp, name), cannot_write)
        })();
        if written.is_err() {
            let _ = beneath::remove_file(&parent, &temp);
        }
        written
    }
}

/// A symlink pointing at a path inside the target.
#[derive(Debug)]
pub struct Symlink {
    pub(super) path: RelPath,
    pub(super) target: PathBuf,
    pub(super) needs: Needs,
}

impl Symlink {
    fn label(&self) -> String {
        format!("symlink {}", self.path)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        let root = open_root(root)?;
        match root.look(&self.path)? {
            None => bail!("{} is missing", self.path),
            Some(found) if !found.is_symlink() => {
                bail!("{} is {}, not a symlink", self.path, found.describe())
            }
            Some(_) => {
                let cannot_read = || format!("cannot read {}", self.path);
                let Some(parent) = root.parent_of(&self.path)? else {
                    bail!("{} is missing", self.path);
                };
                let points_to = os(beneath::read_link(&parent, self.path.name()), cannot_read)?;
                if points_to != self.target {
                    bail!(
                        "{} points to {}, wants {}",
                        self.path,
                        points_to.display(),
                        self.target.display()
                    );
                }
                Ok(())
            }
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let root = open_root(root)?;
        let parent = root.make_parent(&self.path)?;
        let name = self.path.name();
        let cannot_create = || format!("cannot create symlink {}", self.path);
        if let Some(found) = os(stat_at(&parent, name), cannot_create)?
            && !found.is_symlink()
        {
            bail!(
                "{} is {}: not replacing it with a symlink",
                self.path,
                found.describe()
            );
        }
        // Made under a free name, then renamed over the old link.
        let temp = os(
            beneath::create_temp_symlink(&parent, TEMP_PREFIX, &self.target),
            cannot_create,
        )?;
        fault::point(Kind::Tree);
        let renamed = os(beneath::rename(&parent, &temp, name), cannot_create);
        if renamed.is_err() {
            let _ = beneath::remove_file(&parent, &temp);
        }
        renamed
    }
}
entry_job!(Symlink);

/// A path where nothing may be: a file, a symlink or a whole directory
/// there is removed.
#[derive(Debug)]
pub struct Absent {
    pub(super) path: RelPath,
    pub(super) needs: Needs,
}

impl Absent {
    fn label(&self) -> String {
        format!("absent {}", self.path)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        match open_root(root)?.look(&self.path)? {
            None => Ok(()),
            Some(found) => bail!("{} exists ({})", self.path, found.describe()),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let root = open_root(root)?;
        fault::point(Kind::Tree);
        let Some(parent) = root.parent_of(&self.path)? else {
            return Ok(());
        };
        // A directory is removed level by level beneath its handle; a
        // symlink is removed itself, never what it points to.
        match beneath::remove_tree(&parent, std::ffi::OsStr::new(self.path.name())) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => bail!("cannot remove {}: {error}", self.path),
        }
    }
}
entry_job!(Absent);
