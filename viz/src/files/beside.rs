//! The temporary file a regular output is written to, beside the file it
//! replaces, and the sweep of those that killed runs left.
//!
//! A folder an output is written to may be writable by others (the
//! system's temporary folder, a shared report folder), and the program may
//! run as root. So the temporary file gets a name nobody can guess
//! (`.NAME.PID.RANDOM.dojobber-tmp`, the random part from the `tempfile`
//! crate), it is created with `O_CREAT | O_EXCL | O_NOFOLLOW` (a link or a
//! file planted at that name is an error, never followed or reused), and it
//! is created, renamed and removed by name beneath a descriptor of its
//! folder, opened once: a folder of the path swapped for a link meanwhile
//! redirects nothing.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::Path;
#[cfg(not(unix))]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The end of every temporary file's name.
pub(super) const TEMP_SUFFIX: &str = ".dojobber-tmp";

/// The most bytes of the output's name that its temporary's name keeps,
/// so that the temporary's name fits the system's limit (255 bytes).
const NAME_BYTES_KEPT: usize = 160;

/// Random characters in a temporary's name: 62^16, about 2^95 names.
const RANDOM_CHARS: usize = 16;

/// A temporary file beside the file it will replace, in a folder held
/// open: [`put_in_place`](Beside::put_in_place) renames it over that file,
/// [`remove`](Beside::remove) gives up, and so does dropping it before it
/// is put in place (an error on the way leaves no temporary behind).
/// Made by [`Output::open`](super::Output::open).
#[derive(Debug)]
pub struct Beside {
    folder: Folder,
    /// The output's name in the folder.
    name: OsString,
    /// The temporary's name in the folder.
    temp_name: OsString,
    /// Put in place or removed: the temporary's name is no longer ours.
    settled: AtomicBool,
}

/// The folder the output is in: its descriptor (Unix), else its path.
#[cfg(unix)]
type Folder = std::os::fd::OwnedFd;
#[cfg(not(unix))]
type Folder = PathBuf;

impl Beside {
    /// Removes what killed runs left in the folder of `path` (a regular
    /// file's path, its links followed), then creates this run's
    /// temporary file there, empty, with the mode the umask leaves.
    pub(super) fn create(path: &Path) -> io::Result<(File, Beside)> {
        let dir = super::folder_of(path);
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("names no file"))?
            .to_owned();
        let folder = open_folder(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot open the folder {}: {e}", dir.display()),
            )
        })?;
        sweep_leftovers(&folder);
        let (file, temp_name) = create_temp(&folder, dir, &name).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
        let beside = Beside {
            folder,
            name,
            temp_name,
            settled: AtomicBool::new(false),
        };
        Ok((file, beside))
    }

    /// Renames the temporary over the output, in the folder opened at
    /// the start: whatever is at the output's name (a link included) is
    /// replaced, not followed.
    pub fn put_in_place(&self) -> io::Result<()> {
        rename_in(&self.folder, &self.temp_name, &self.name)?;
        self.settled.store(true, Ordering::Release);
        Ok(())
    }

    /// Removes the temporary, if it is still there (once: a name another
    /// process takes afterwards is never removed).
    pub fn remove(&self) {
        if !self.settled.swap(true, Ordering::AcqRel) {
            remove_in(&self.folder, &self.temp_name);
        }
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        self.remove();
    }
}

/// `.NAME.PID.`: what a temporary's name starts with, the output's name
/// cut to [`NAME_BYTES_KEPT`].
fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(cut(name));
    prefix.push(format!(".{}.", std::process::id()));
    prefix
}

#[cfg(unix)]
fn cut(name: &OsStr) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    OsStr::from_bytes(&bytes[..bytes.len().min(NAME_BYTES_KEPT)])
}

#[cfg(not(unix))]
fn cut(name: &OsStr) -> &OsStr {
    name
}

/// The process id in `name` if it is a temporary file's name
/// (`.NAME.PID.RANDOM.dojobber-tmp`, or the earlier `.NAME.PID.N.dojobber-tmp`),
/// whatever the bytes of `NAME`.
pub(super) fn leftover_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(b".")?;
    let rest = rest.strip_suffix(TEMP_SUFFIX.as_bytes())?;
    let mut parts = rest.rsplitn(3, |&b| b == b'.');
    let random = parts.next()?;
    let pid = parts.next()?;
    let output = parts.next()?;
    let is_digits = |part: &[u8]| !part.is_empty() && part.iter().all(u8::is_ascii_digit);
    if output.is_empty() || random.is_empty() || !random.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    if !is_digits(pid) {
        return None;
    }
    std::str::from_utf8(pid)
        .ok()?
        .parse()
        .ok()
        .filter(|&pid| pid > 0)
}

#[cfg(unix)]
fn open_folder(dir: &Path) -> io::Result<Folder> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(open(dir, flags, Mode::empty())?)
}

#[cfg(not(unix))]
fn open_folder(dir: &Path) -> io::Result<Folder> {
    if std::fs::metadata(dir)?.is_dir() {
        Ok(dir.to_owned())
    } else {
        Err(io::Error::other("not a folder"))
    }
}

/// Creates a temporary file with a random name in `folder` (whose path is
/// `dir`): `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0666 less the umask.
/// Returns it and its name.
fn create_temp(folder: &Folder, dir: &Path, name: &OsStr) -> io::Result<(File, OsString)> {
    let prefix = temp_prefix(name);
    // tempfile draws the names and tries again when one is taken; the
    // file is created beneath the folder's descriptor, by name.
    let made = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .rand_bytes(RANDOM_CHARS)
        .disable_cleanup(true)
        .make_in(dir, |path| {
            let temp_name = path
                .file_name()
                .ok_or_else(|| io::Error::other("a temporary name with no name"))?;
            Ok((create_new_in(folder, temp_name)?, temp_name.to_owned()))
        })?;
    let (made, _path) = made.into_parts();
    Ok(made)
}

#[cfg(unix)]
fn create_new_in(folder: &Folder, name: &OsStr) -> io::Result<File> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o666);
    Ok(File::from(openat(folder, name, flags, mode)?))
}

#[cfg(not(unix))]
fn create_new_in(folder: &Folder, name: &OsStr) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(folder.join(name))
}

/// Opens `name` in the folder `dir` for writing, created (0666 less the
/// umask) or truncated, without following a link at `name`: the event
/// stream, written in place.
pub(super) fn create_or_truncate(dir: &Path, name: &OsStr) -> io::Result<File> {
    let folder = open_folder(dir)?;
    open_truncated_in(&folder, name)
}

#[cfg(unix)]
fn open_truncated_in(folder: &Folder, name: &OsStr) -> io::Result<File> {
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::Mode;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(folder, name, flags, Mode::from_bits_truncate(0o666))
        .map(File::from)
        .map_err(|errno| {
            if errno == nix::errno::Errno::ELOOP {
                io::Error::other("a symbolic link took its place: not followed")
            } else {
                io::Error::from(errno)
            }
        })
}

#[cfg(not(unix))]
fn open_truncated_in(folder: &Folder, name: &OsStr) -> io::Result<File> {
    File::create(folder.join(name))
}

#[cfg(unix)]
fn rename_in(folder: &Folder, from: &OsStr, to: &OsStr) -> io::Result<()> {
    Ok(nix::fcntl::renameat(folder, from, folder, to)?)
}

#[cfg(not(unix))]
fn rename_in(folder: &Folder, from: &OsStr, to: &OsStr) -> io::Result<()> {
    std::fs::rename(folder.join(from), folder.join(to))
}

#[cfg(unix)]
fn remove_in(folder: &Folder, name: &OsStr) {
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let _ = unlinkat(folder, name, UnlinkatFlags::NoRemoveDir);
}

#[cfg(not(unix))]
fn remove_in(folder: &Folder, name: &OsStr) {
    let _ = std::fs::remove_file(folder.join(name));
}

/// Removes from `folder` every temporary file that a run of this program
/// left when it was killed: a name of the temporaries' form, a regular
/// file (a link is never one of ours), owned by this user (never another
/// user's), whose process is gone. A live process's file stays.
#[cfg(unix)]
fn sweep_leftovers(folder: &Folder) {
    use std::os::unix::ffi::OsStrExt;

    use nix::fcntl::AtFlags;
    use nix::sys::stat::{SFlag, fstatat};

    let Ok(copy) = folder.try_clone() else {
        return;
    };
    let Ok(mut listing) = nix::dir::Dir::from_fd(copy) else {
        return;
    };
    let leftovers: Vec<(OsString, u32)> = listing
        .iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_bytes();
            leftover_pid(name).map(|pid| (OsStr::from_bytes(name).to_owned(), pid))
        })
        .collect();
    let me = nix::unistd::geteuid().as_raw();
    for (name, pid) in leftovers {
        let Ok(stat) = fstatat(folder, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let regular = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG;
        if regular && stat.st_uid == me && !process_alive(pid) {
            tracing::debug!(file = ?name, "removing what a killed run left");
            remove_in(folder, &name);
        }
    }
}

#[cfg(not(unix))]
fn sweep_leftovers(_folder: &Folder) {
    // Without a way to ask whether a process lives, a leftover is kept
    // rather than a live run's file removed.
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    use nix::errno::Errno;
    use nix::sys::signal::kill;
    use nix::unistd::Pid;
    let Ok(pid) = i32::try_from(pid) else {
        return true;
    };
    // Signal 0 asks whether the process exists; EPERM means it does.
    !matches!(kill(Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised_whatever_the_outputs_name() {
        assert_eq!(leftover_pid(b".r.json.42.0.dojobber-tmp"), Some(42));
        assert_eq!(leftover_pid(b".r.json.42.aZ09xY.dojobber-tmp"), Some(42));
        assert_eq!(leftover_pid(b".\xff\xfe.7.q1.dojobber-tmp"), Some(7));
        for not_ours in [
            &b"r.json.42.0.dojobber-tmp"[..],
            b".r.json.42.0.dojobber-tmp.x",
            b".r.json.x42.0.dojobber-tmp",
            b".r.json.0.0.dojobber-tmp",
            b".r.json.42..dojobber-tmp",
            b"..42.0.dojobber-tmp",
            b".42.0.dojobber-tmp",
            b".r.json.42.a-b.dojobber-tmp",
            b".r.json.99999999999999999999.0.dojobber-tmp",
        ] {
            assert_eq!(
                leftover_pid(not_ours),
                None,
                "{}",
                String::from_utf8_lossy(not_ours)
            );
        }
    }

    #[test]
    fn a_temporary_name_is_recognised_and_fits_the_systems_limit() {
        let dir = tempfile::tempdir().unwrap();
        let long = "n".repeat(255);
        let (_file, beside) = Beside::create(&dir.path().join(&long)).unwrap();
        let temp = beside.temp_name.as_encoded_bytes();
        assert!(temp.len() <= 255, "{}", temp.len());
        assert_eq!(leftover_pid(temp), Some(std::process::id()));
        beside.remove();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_name_is_neither_followed_nor_reused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "mine").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("planted")).unwrap();
        let folder = open_folder(dir.path()).unwrap();
        let planted = OsStr::new("planted");
        assert!(create_new_in(&folder, planted).is_err(), "O_EXCL");
        let error = open_truncated_in(&folder, planted).unwrap_err();
        assert!(error.to_string().contains("not followed"), "{error}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "mine");
    }

    #[test]
    fn a_temporary_dropped_before_it_is_in_place_is_removed_and_one_in_place_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        let (_file, beside) = Beside::create(&path).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(beside);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let (_file, beside) = Beside::create(&path).unwrap();
        beside.put_in_place().unwrap();
        drop(beside);
        assert!(path.is_file(), "the output stays");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
