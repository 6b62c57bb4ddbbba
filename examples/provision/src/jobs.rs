//! The jobs for the directory tree: the target itself, directories, files,
//! symlinks and paths that must not exist. Each check looks at the disk;
//! each run changes only what its check found wrong, and never replaces a
//! directory or a file it did not expect.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use dojobber::{Context, JobRef, JobResult, bail};

use super::Provision;
use super::fault::{self, Kind};
use super::paths::{RelPath, describe, inspect};

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

/// The permission bits of a file, as `0644`.
pub(super) fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Fails when the permission bits differ.
pub(super) fn check_mode(path: &RelPath, meta: &fs::Metadata, mode: u32) -> JobResult {
    let has = mode_of(meta);
    if has != mode {
        bail!("{path} has mode {has:04o}, wants {mode:04o}");
    }
    Ok(())
}

/// Sets the permission bits, without following a symlink (there is none:
/// the caller just made or checked the entry).
pub(super) fn set_mode(path: &Path, mode: u32) -> JobResult {
    os(
        fs::set_permissions(path, fs::Permissions::from_mode(mode)),
        || format!("cannot set the mode of {}", path.display()),
    )
}

/// Creates the directories up to `path`'s parent that are not declared
/// themselves, with the default mode.
pub(super) fn make_parent(path: &Path) -> JobResult {
    if let Some(parent) = path.parent() {
        os(fs::create_dir_all(parent), || {
            format!("cannot create directory {}", parent.display())
        })?;
    }
    Ok(())
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
        match inspect(root) {
            Ok(Some(meta)) if meta.is_dir() => {}
            Ok(Some(meta)) if meta.is_symlink() && root.is_dir() => {}
            Ok(Some(meta)) => bail!("{} is {}, not a directory", root.display(), describe(&meta)),
            Ok(None) => bail!("{} is missing", root.display()),
            Err(error) => bail!("cannot inspect {}: {error}", root.display()),
        }
        self.take_lock(root)?;
        match self.leftovers(root)?.as_slice() {
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
        for leftover in self.leftovers(root)? {
            let at = leftover.locate(root)?;
            os(fs::remove_file(at), || format!("cannot remove {leftover}"))?;
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
                eprintln!(
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
    fn leftovers(&self, root: &Path) -> anyhow::Result<Vec<RelPath>> {
        let mut found = Vec::new();
        for dir in &self.staging {
            let at = match dir {
                Some(dir) => dir.locate(root)?,
                None => root.to_path_buf(),
            };
            let shown = || match dir {
                Some(dir) => format!("cannot list {dir}"),
                None => format!("cannot list {}", root.display()),
            };
            // Only a real directory: a symlink here is its entry's business.
            match os(inspect(&at), shown)? {
                Some(meta) if meta.is_dir() => {}
                _ => continue,
            }
            for entry in os(fs::read_dir(&at), shown)? {
                let entry = os(entry, shown)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let is_dir = os(entry.file_type(), shown)?.is_dir();
                if name.starts_with(TEMP_PREFIX) && !is_dir {
                    let path = match dir {
                        Some(dir) => format!("{dir}/{name}"),
                        None => name.to_owned(),
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

/// Looks at an entry's path on disk, without following a symlink there.
fn look(path: &RelPath, root: &Path) -> anyhow::Result<(PathBuf, Option<fs::Metadata>)> {
    let at = path.locate(root)?;
    let meta = os(inspect(&at), || format!("cannot inspect {path}"))?;
    Ok((at, meta))
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
        match look(&self.path, root)? {
            (_, None) => bail!("{} is missing", self.path),
            (_, Some(meta)) if !meta.is_dir() => {
                bail!("{} is {}, not a directory", self.path, describe(&meta))
            }
            (_, Some(meta)) => check_mode(&self.path, &meta, self.mode),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let (at, meta) = look(&self.path, root)?;
        match meta {
            None => {
                make_parent(&at)?;
                os(fs::create_dir(&at), || {
                    format!("cannot create directory {}", self.path)
                })?;
                fault::point(Kind::Tree);
            }
            Some(meta) if !meta.is_dir() => bail!(
                "{} is {}: not replacing it with a directory",
                self.path,
                describe(&meta)
            ),
            Some(_) => {}
        }
        set_mode(&at, self.mode)
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
        match look(&self.path, root)? {
            (_, None) => bail!("{} is missing", self.path),
            (_, Some(meta)) if !meta.is_file() => {
                bail!("{} is {}, not a file", self.path, describe(&meta))
            }
            (at, Some(meta)) => {
                let found = os(fs::read(at), || format!("cannot read {}", self.path))?;
                if found != content.as_bytes() {
                    bail!("{} does not have the desired content", self.path);
                }
                check_mode(&self.path, &meta, self.mode)
            }
        }
    }
    fn converge(&self, root: &Path, content: &str) -> JobResult {
        let (at, meta) = look(&self.path, root)?;
        if let Some(meta) = &meta
            && !(meta.is_file() || meta.is_symlink())
        {
            bail!(
                "{} is {}: not replacing it with a file",
                self.path,
                describe(meta)
            );
        }
        let same = meta.as_ref().is_some_and(|meta| meta.is_file())
            && fs::read(&at).is_ok_and(|found| found == content.as_bytes());
        if same {
            return set_mode(&at, self.mode);
        }
        // A new file next to the old one, renamed over it: readers see the
        // old content or the new, and a symlink there is replaced, not
        // followed.
        make_parent(&at)?;
        let dir = at.parent().unwrap_or(Path::new("."));
        let cannot_write = || format!("cannot write {}", self.path);
        let mut temp = os(
            tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir),
            cannot_write,
        )?;
        let (head, tail) = content.as_bytes().split_at(content.len() / 2);
        os(temp.write_all(head), cannot_write)?;
        fault::point(Kind::Tree);
        os(
            temp.write_all(tail)
                .and_then(|()| temp.as_file().sync_all()),
            cannot_write,
        )?;
        set_mode(temp.path(), self.mode)?;
        fault::point(Kind::Tree);
        os(temp.persist(&at).map_err(|error| error.error), cannot_write)?;
        Ok(())
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
        match look(&self.path, root)? {
            (_, None) => bail!("{} is missing", self.path),
            (_, Some(meta)) if !meta.is_symlink() => {
                bail!("{} is {}, not a symlink", self.path, describe(&meta))
            }
            (at, Some(_)) => {
                let points_to = os(fs::read_link(at), || format!("cannot read {}", self.path))?;
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
        let (at, meta) = look(&self.path, root)?;
        if let Some(meta) = meta
            && !meta.is_symlink()
        {
            bail!(
                "{} is {}: not replacing it with a symlink",
                self.path,
                describe(&meta)
            );
        }
        make_parent(&at)?;
        let dir = at.parent().unwrap_or(Path::new("."));
        let cannot_create = || format!("cannot create symlink {}", self.path);
        // Made under a free name, then renamed over the old link.
        let temp = os(
            tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .make_in(dir, |temp| symlink(&self.target, temp)),
            cannot_create,
        )?;
        fault::point(Kind::Tree);
        os(
            temp.persist(&at).map_err(|error| error.error),
            cannot_create,
        )?;
        Ok(())
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
        match look(&self.path, root)? {
            (_, None) => Ok(()),
            (_, Some(meta)) => bail!("{} exists ({})", self.path, describe(&meta)),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let cannot_remove = || format!("cannot remove {}", self.path);
        fault::point(Kind::Tree);
        match look(&self.path, root)? {
            (_, None) => Ok(()),
            (at, Some(meta)) if meta.is_dir() => os(fs::remove_dir_all(at), cannot_remove),
            (at, Some(_)) => os(fs::remove_file(at), cannot_remove),
        }
    }
}
entry_job!(Absent);
