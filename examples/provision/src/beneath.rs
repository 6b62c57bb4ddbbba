//! Every path of the desired state is reached from a handle on the target
//! directory, never by its name: a directory on the way that another user
//! swaps for a symlink (between a check and a write, or in the middle of
//! one) is refused, not followed, so no job reads, writes, changes the
//! mode of or deletes anything outside the target.
//!
//! How: the entry's directory is opened beneath the target's handle with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6 and later);
//! where the kernel lacks it (`ENOSYS`, or another Unix), one component at
//! a time with `openat(O_NOFOLLOW | O_DIRECTORY)`. The entry itself is
//! then used through that directory's handle with the `*at` calls, never
//! following a symlink there either (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `unlinkat`, `renameat`, `fchmod` on what was opened).

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read as _};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::jobs::os;
use super::paths::RelPath;

/// What a job found at a path, without following a symlink there.
#[derive(Clone, Copy, Debug)]
pub struct Found {
    /// Its kind and permission bits.
    pub mode: u32,
    /// How many names the file has (hard links).
    pub links: u64,
}

impl Found {
    // The types of `st_mode` and `st_nlink` differ between platforms.
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn of(stat: &Stat) -> Found {
        Found {
            mode: stat.st_mode as u32,
            links: stat.st_nlink as u64,
        }
    }
    fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.mode as _)
    }
    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == FileType::Directory
    }
    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == FileType::RegularFile
    }
    /// Whether it is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.kind() == FileType::Symlink
    }
    /// The permission bits, as `0o644`.
    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
    /// `a directory`, `a file`, `a symlink`, or `something else`, for messages.
    pub fn describe(&self) -> &'static str {
        match self.kind() {
            FileType::Directory => "a directory",
            FileType::RegularFile => "a file",
            FileType::Symlink => "a symlink",
            _ => "something else (not a file, directory or symlink)",
        }
    }
}

/// Why a directory on the way to an entry could not be opened.
pub(super) enum Blocked {
    /// Missing, or not a directory: then nothing can be inside it.
    Missing,
    /// This many leading components lead to a symlink.
    Symlink(usize),
    Os(io::Error),
}

impl From<Errno> for Blocked {
    fn from(errno: Errno) -> Blocked {
        Blocked::Os(errno.into())
    }
}

/// The flags of every directory handle: read (to list it), no symlink.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Whether this kernel refused `openat2` once (`ENOSYS`): then every
/// later open goes one component at a time at once.
#[cfg(any(target_os = "linux", target_os = "android"))]
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// The fault suite runs the component-at-a-time way too, on a kernel that
/// has `openat2`: `PROVISION_NO_OPENAT2=1` (in the fault-injection build).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn openat2_allowed() -> bool {
    !NO_OPENAT2.load(Ordering::Relaxed) && !super::fault::no_openat2()
}

/// The target directory, opened once by the name the user gave (a symlink
/// there is the user's choice); everything inside is reached from it.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the target directory.
    pub fn open(path: &Path) -> io::Result<Root> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Root { fd })
    }

    /// The handle, for the database's file names ([`super::vfs`]).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory `parts` (the target itself when empty), never
    /// through a symlink.
    fn open_dir(&self, parts: &[String]) -> Result<OwnedFd, Blocked> {
        open_dir_beneath(self.fd.as_fd(), parts)
    }

    /// The directory `path` is in, or `None` when it is missing (or a file
    /// stands where a directory on the way should be). An error names a
    /// symlink on the way.
    pub fn parent_of(&self, path: &RelPath) -> anyhow::Result<Option<OwnedFd>> {
        self.dir(path, path.parent_parts())
    }

    /// The directory `dir` (`None`: the target itself), as for [`parent_of`](Self::parent_of).
    pub fn staging_dir(&self, dir: Option<&RelPath>) -> anyhow::Result<Option<OwnedFd>> {
        match dir {
            None => os(self.open_dir(&[]).map_err(blocked_io).map(Some), || {
                "cannot open the target directory".to_owned()
            }),
            Some(dir) => self.dir(dir, dir.parts()),
        }
    }

    fn dir(&self, path: &RelPath, parts: &[String]) -> anyhow::Result<Option<OwnedFd>> {
        match self.open_dir(parts) {
            Ok(fd) => Ok(Some(fd)),
            Err(Blocked::Missing) => Ok(None),
            Err(Blocked::Symlink(len)) => Err(path.symlink_on_the_way(len)),
            Err(Blocked::Os(error)) => Err(anyhow::anyhow!("cannot reach {path}: {error}")),
        }
    }

    /// What is at `path`, without following a symlink anywhere.
    pub fn look(&self, path: &RelPath) -> anyhow::Result<Option<Found>> {
        let Some(parent) = self.parent_of(path)? else {
            return Ok(None);
        };
        os(stat_at(&parent, path.name()), || {
            format!("cannot inspect {path}")
        })
    }

    /// The directory `path` is in, making the missing directories on the
    /// way (mode `0o755`, as the directories the file does not declare).
    pub fn make_parent(&self, path: &RelPath) -> anyhow::Result<OwnedFd> {
        let parts = path.parent_parts();
        let mut at = os(self.open_dir(&[]).map_err(blocked_io), || {
            format!("cannot reach {path}")
        })?;
        for (i, part) in parts.iter().enumerate() {
            match rustix::fs::mkdirat(&at, part.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(errno) => {
                    return Err(anyhow::anyhow!(
                        "cannot create directory {}: {}",
                        path.prefix(i + 1),
                        io::Error::from(errno)
                    ));
                }
            }
            at = match rustix::fs::openat(&at, part.as_str(), dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::LOOP | Errno::NOTDIR) if is_symlink_at(&at, part) => {
                    return Err(path.symlink_on_the_way(i + 1));
                }
                Err(errno) => {
                    return Err(anyhow::anyhow!(
                        "cannot create directory {}: {}",
                        path.prefix(i + 1),
                        io::Error::from(errno)
                    ));
                }
            };
        }
        Ok(at)
    }
}

/// An `io::Error` for a blocked open, when only the OS error matters.
fn blocked_io(blocked: Blocked) -> io::Error {
    match blocked {
        Blocked::Missing => Errno::NOENT.into(),
        Blocked::Symlink(_) => Errno::LOOP.into(),
        Blocked::Os(error) => error,
    }
}

fn is_symlink_at(dir: &impl AsFd, name: &str) -> bool {
    matches!(stat_at(dir, name), Ok(Some(found)) if found.is_symlink())
}

/// Opens the directory `parts` beneath `root`, following no symlink.
pub(super) fn open_dir_beneath(root: BorrowedFd<'_>, parts: &[String]) -> Result<OwnedFd, Blocked> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if openat2_allowed() {
        use rustix::fs::ResolveFlags;
        let path = if parts.is_empty() {
            ".".to_owned()
        } else {
            parts.join("/")
        };
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: a rename elsewhere raced the lookup; the kernel asks to retry.
        for _ in 0..16 {
            match rustix::fs::openat2(root, &path, dir_flags(), Mode::empty(), resolve) {
                Ok(fd) => return Ok(fd),
                Err(Errno::NOSYS) => {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                    break;
                }
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOENT) => return Err(Blocked::Missing),
                // A symlink on the way (ELOOP; ENOTDIR when it is the last
                // component) or a file, or a way out (EXDEV): the walk
                // below says which, without following anything.
                Err(Errno::LOOP | Errno::NOTDIR | Errno::XDEV) => break,
                Err(errno) => return Err(errno.into()),
            }
        }
    }
    walk(root, parts)
}

/// One component at a time, each opened `O_NOFOLLOW | O_DIRECTORY` from
/// the one before.
fn walk(root: BorrowedFd<'_>, parts: &[String]) -> Result<OwnedFd, Blocked> {
    let mut at = rustix::fs::openat(root, ".", dir_flags(), Mode::empty())?;
    for (i, part) in parts.iter().enumerate() {
        at = match rustix::fs::openat(&at, part.as_str(), dir_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Blocked::Missing),
            // ELOOP for a symlink; ENOTDIR for a file (or, on some
            // systems, a symlink): look at what is there.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(match stat_at(&at, part) {
                    Ok(Some(found)) if found.is_symlink() => Blocked::Symlink(i + 1),
                    Ok(_) => Blocked::Missing,
                    Err(error) => Blocked::Os(error),
                });
            }
            Err(errno) => return Err(errno.into()),
        };
    }
    Ok(at)
}

/// What is at `name` in `dir`, not following a symlink: `None` when
/// nothing is.
pub fn stat_at(dir: &impl AsFd, name: &str) -> io::Result<Option<Found>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(Found::of(&stat))),
        Err(Errno::NOENT | Errno::NOTDIR) => Ok(None),
        Err(errno) => Err(errno.into()),
    }
}

/// Opens the regular file `name` in `dir` to read it: `None` when it is
/// not a regular file (any more). Never follows a symlink, and never
/// blocks on a FIFO swapped in.
pub fn open_file(dir: &impl AsFd, name: &str) -> io::Result<Option<(fs::File, Found)>> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match rustix::fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::LOOP | Errno::NOTDIR | Errno::NXIO) => return Ok(None),
        Err(errno) => return Err(errno.into()),
    };
    let found = Found::of(&rustix::fs::fstat(&fd)?);
    if !found.is_file() {
        return Ok(None);
    }
    Ok(Some((fs::File::from(fd), found)))
}

/// The whole content of an open file.
pub fn read_all(mut file: &fs::File) -> io::Result<Vec<u8>> {
    let mut content = Vec::new();
    file.read_to_end(&mut content)?;
    Ok(content)
}

/// Sets the permission bits of what `fd` is open on: the file that was
/// checked, whatever its name leads to now.
pub fn set_mode(fd: &impl AsFd, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::fchmod(fd, Mode::from_raw_mode(mode as _))?)
}

/// Opens the directory `name` in `dir`, not following a symlink.
pub fn open_subdir(dir: &impl AsFd, name: &str) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?)
}

/// A fresh name in `dir` for a temporary file: `.provision-tmp-` and
/// twelve random characters, which nobody can plant in advance.
fn temp_name(prefix: &str) -> String {
    let mut name = prefix.to_owned();
    name.extend((0..12).map(|_| fastrand::alphanumeric()));
    name
}

/// Makes a new file in `dir` under a fresh temporary name (`O_CREAT |
/// O_EXCL | O_NOFOLLOW`, mode `0o600` until the caller sets its own).
pub fn create_temp(dir: &impl AsFd, prefix: &str) -> io::Result<(String, fs::File)> {
    let flags = OFlags::WRONLY
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::NOCTTY
        | OFlags::CLOEXEC;
    loop {
        let name = temp_name(prefix);
        match rustix::fs::openat(dir, name.as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((name, fs::File::from(fd))),
            Err(Errno::EXIST) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Makes a symlink to `target` in `dir` under a fresh temporary name.
pub fn create_temp_symlink(dir: &impl AsFd, prefix: &str, target: &Path) -> io::Result<String> {
    loop {
        let name = temp_name(prefix);
        match rustix::fs::symlinkat(target, dir, name.as_str()) {
            Ok(()) => return Ok(name),
            Err(Errno::EXIST) => continue,
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Renames `from` over `to`, both in `dir`: a symlink at `to` is
/// replaced, not followed.
pub fn rename(dir: &impl AsFd, from: &str, to: &str) -> io::Result<()> {
    Ok(rustix::fs::renameat(dir, from, dir, to)?)
}

/// Removes the non-directory `name` in `dir` (a symlink itself, never
/// what it points to).
pub fn remove_file(dir: &impl AsFd, name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// What a symlink `name` in `dir` holds.
pub fn read_link(dir: &impl AsFd, name: &str) -> io::Result<std::path::PathBuf> {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
    Ok(OsStr::from_bytes(target.as_bytes()).into())
}

/// The names in the directory `dir` is open on, but `.` and `..`.
pub fn list(dir: &impl AsFd) -> io::Result<Vec<Vec<u8>>> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes `name` in `dir` and, when it is a directory, everything in it:
/// each level is opened `O_NOFOLLOW` from the one above, so a directory
/// swapped for a symlink in the middle stops the removal (an error) and
/// nothing behind the symlink is touched.
pub fn remove_tree(dir: &impl AsFd, name: &OsStr) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        // Linux says EISDIR for a directory, POSIX EPERM.
        Err(Errno::ISDIR | Errno::PERM) => {}
        other => return Ok(other?),
    }
    let inner = rustix::fs::openat(dir, name, dir_flags(), Mode::empty())?;
    for entry in list(&inner)? {
        remove_tree(&inner, OsStr::from_bytes(&entry))?;
    }
    drop(inner);
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(text: &str) -> RelPath {
        RelPath::parse(text).unwrap()
    }

    #[test]
    fn a_symlink_on_the_way_is_named_and_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("f"), "outside").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("a")).unwrap();
        let handle = Root::open(root.path()).unwrap();
        let error = handle.look(&rel("a/f")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a is a symlink: not following it to reach a/f"
        );
        let error = handle.make_parent(&rel("a/b/f")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a is a symlink: not following it to reach a/b/f"
        );
        // The last component is looked at, not followed.
        assert!(handle.look(&rel("a")).unwrap().unwrap().is_symlink());
        assert!(handle.look(&rel("missing/f")).unwrap().is_none());
    }

    #[test]
    fn remove_tree_removes_a_link_not_what_it_points_to() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), "keep").unwrap();
        fs::create_dir_all(root.path().join("d/e")).unwrap();
        fs::write(root.path().join("d/e/f"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("d/link")).unwrap();
        let handle = Root::open(root.path()).unwrap();
        remove_tree(&handle.fd(), OsStr::new("d")).unwrap();
        assert!(!root.path().join("d").exists());
        assert!(outside.path().join("keep").exists());
    }
}
