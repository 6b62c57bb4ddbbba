//! The jobs for the directory tree: the target itself, directories, files,
//! symlinks and paths that must not exist. Each check looks at the disk;
//! each run changes only what its check found wrong, and never replaces a
//! directory or a file it did not expect.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use dojobber::{Context, JobRef, JobResult, bail};

use super::Provision;
use super::paths::{RelPath, describe, inspect};

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
        impl dojobber::Job<$crate::provision::Provision> for $type {
            fn name(&self) -> String {
                self.label()
            }
            fn deps(
                &self,
                args: &$crate::provision::Provision,
            ) -> Vec<dojobber::JobRef<$crate::provision::Provision>> {
                self.needs.jobs(args)
            }
            fn check(
                &self,
                cx: &mut dojobber::Context<'_, $crate::provision::Provision>,
            ) -> dojobber::JobResult {
                let result = self.inspect(cx.args().target());
                $crate::provision::jobs::checked(cx, result)
            }
            fn run(
                &self,
                cx: &mut dojobber::Context<'_, $crate::provision::Provision>,
            ) -> dojobber::JobResult {
                let result = self.converge(cx.args().target());
                $crate::provision::jobs::ran(cx, result)
            }
        }
    };
}
pub(super) use entry_job;

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

/// The target directory itself: everything else is inside it.
#[derive(Debug)]
pub struct Target {
    pub(super) needs: Needs,
}

impl Target {
    fn label(&self) -> String {
        super::TARGET_JOB.to_owned()
    }
    fn inspect(&self, root: &Path) -> JobResult {
        match inspect(root) {
            Ok(Some(meta)) if meta.is_dir() => Ok(()),
            Ok(Some(meta)) if meta.is_symlink() && root.is_dir() => Ok(()),
            Ok(Some(meta)) => bail!("{} is {}, not a directory", root.display(), describe(&meta)),
            Ok(None) => bail!("{} is missing", root.display()),
            Err(error) => bail!("cannot inspect {}: {error}", root.display()),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        os(fs::create_dir_all(root), || {
            format!("cannot create {}", root.display())
        })
    }
}
entry_job!(Target);

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

/// A regular file with exactly this content and mode.
#[derive(Debug)]
pub struct File {
    pub(super) path: RelPath,
    pub(super) content: String,
    pub(super) mode: u32,
    pub(super) needs: Needs,
}

impl File {
    fn label(&self) -> String {
        format!("file {}", self.path)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        match look(&self.path, root)? {
            (_, None) => bail!("{} is missing", self.path),
            (_, Some(meta)) if !meta.is_file() => {
                bail!("{} is {}, not a file", self.path, describe(&meta))
            }
            (at, Some(meta)) => {
                let content = os(fs::read(at), || format!("cannot read {}", self.path))?;
                if content != self.content.as_bytes() {
                    bail!("{} does not have the desired content", self.path);
                }
                check_mode(&self.path, &meta, self.mode)
            }
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
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
            && fs::read(&at).is_ok_and(|content| content == self.content.as_bytes());
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
                .prefix(".provision-")
                .tempfile_in(dir),
            cannot_write,
        )?;
        os(
            temp.write_all(self.content.as_bytes())
                .and_then(|()| temp.as_file().sync_all()),
            cannot_write,
        )?;
        set_mode(temp.path(), self.mode)?;
        os(temp.persist(&at).map_err(|error| error.error), cannot_write)?;
        Ok(())
    }
}
entry_job!(File);

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
                .prefix(".provision-")
                .make_in(dir, |temp| symlink(&self.target, temp)),
            cannot_create,
        )?;
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
        match look(&self.path, root)? {
            (_, None) => Ok(()),
            (at, Some(meta)) if meta.is_dir() => os(fs::remove_dir_all(at), cannot_remove),
            (at, Some(_)) => os(fs::remove_file(at), cannot_remove),
        }
    }
}
entry_job!(Absent);
