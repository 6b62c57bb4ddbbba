//! The database's files reached beneath the target's handle, as every
//! other path is ([`super::beneath`]).
//!
//! SQLite names its files by path (the database, then `-journal`, `-wal`,
//! `-shm` beside it) and looks each name up again at every open, check and
//! unlink: a directory on the way swapped for a symlink would take its
//! writes, or a journal's removal, outside the target. So a database is
//! given to SQLite under a name of ours, `/.provision-beneath/FD/PATH`,
//! and SQLite's unix VFS is told, through `xSetSystemCall` (its own way to
//! replace the system calls it makes), to open, look at and unlink such
//! names beneath the directory handle `FD`, following no symlink, and to
//! refuse a regular file with more than one name (a hard link out of the
//! target). Every other name goes to the usual call unchanged.
//!
//! The handle must stay open while the connection is: [`super::db`]'s
//! `Db` owns both.

// SQLite's system-call table is a C interface: replacing its calls is
// unsafe by nature, and this module is the one place that does it.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int};
use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd, RawFd};
use std::sync::OnceLock;

use rusqlite::ffi;

use super::beneath::{self, Blocked};
use super::paths::RelPath;

/// How the names of ours start.
const PREFIX: &str = "/.provision-beneath";

/// The name SQLite is given for the database `path` beneath `root`.
pub(super) fn name(root: BorrowedFd<'_>, path: &RelPath) -> String {
    format!("{PREFIX}/{}/{path}", root.as_raw_fd())
}

/// A call as SQLite keeps it, whatever its real type.
type AnyCall = unsafe extern "C" fn();
type OpenCall = unsafe extern "C" fn(*const c_char, c_int, c_int) -> c_int;
type AccessCall = unsafe extern "C" fn(*const c_char, c_int) -> c_int;
type StatCall = unsafe extern "C" fn(*const c_char, *mut libc::stat) -> c_int;
type UnlinkCall = unsafe extern "C" fn(*const c_char) -> c_int;

/// SQLite's own calls, for every other name.
struct Originals {
    open: OpenCall,
    access: AccessCall,
    stat: StatCall,
    lstat: StatCall,
    unlink: UnlinkCall,
}

/// Kept before any call is replaced.
static ORIGINALS: OnceLock<Originals> = OnceLock::new();

/// Puts the calls in place, once per process, before the first database
/// is opened.
pub(super) fn install() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    match INSTALLED.get_or_init(replace_calls) {
        Ok(()) => Ok(()),
        Err(why) => Err(anyhow::anyhow!("cannot set up SQLite's file access: {why}")),
    }
}

fn replace_calls() -> Result<(), String> {
    // SAFETY: sqlite3_vfs_find initialises SQLite and returns the unix VFS
    // or null; its xGetSystemCall and xSetSystemCall take a call's name
    // and a pointer of the type SQLite calls it with (the casts below
    // match the `osOpen`, `osAccess`, `osStat`, `osLstat` and `osUnlink`
    // macros of SQLite's os_unix.c). This runs once, before any
    // connection of ours opens a file.
    unsafe {
        let vfs = ffi::sqlite3_vfs_find(c"unix".as_ptr());
        if vfs.is_null() {
            return Err("SQLite has no unix VFS".into());
        }
        let (Some(get), Some(set)) = ((*vfs).xGetSystemCall, (*vfs).xSetSystemCall) else {
            return Err("SQLite's unix VFS cannot replace its system calls".into());
        };
        let original = |name: &CStr| {
            get(vfs, name.as_ptr()).ok_or_else(|| format!("SQLite has no {name:?} call"))
        };
        let originals = Originals {
            open: std::mem::transmute::<AnyCall, OpenCall>(original(c"open")?),
            access: std::mem::transmute::<AnyCall, AccessCall>(original(c"access")?),
            stat: std::mem::transmute::<AnyCall, StatCall>(original(c"stat")?),
            lstat: std::mem::transmute::<AnyCall, StatCall>(original(c"lstat")?),
            unlink: std::mem::transmute::<AnyCall, UnlinkCall>(original(c"unlink")?),
        };
        if ORIGINALS.set(originals).is_err() {
            return Err("SQLite's calls were kept twice".into());
        }
        let replacements: [(&CStr, AnyCall); 5] = [
            (
                c"open",
                std::mem::transmute::<OpenCall, AnyCall>(open as OpenCall),
            ),
            (
                c"access",
                std::mem::transmute::<AccessCall, AnyCall>(access as AccessCall),
            ),
            (
                c"stat",
                std::mem::transmute::<StatCall, AnyCall>(stat as StatCall),
            ),
            (
                c"lstat",
                std::mem::transmute::<StatCall, AnyCall>(lstat as StatCall),
            ),
            (
                c"unlink",
                std::mem::transmute::<UnlinkCall, AnyCall>(unlink as UnlinkCall),
            ),
        ];
        for (name, call) in replacements {
            if set(vfs, name.as_ptr(), Some(call)) != ffi::SQLITE_OK {
                return Err(format!("SQLite refuses to replace its {name:?} call"));
            }
        }
        Ok(())
    }
}

/// A name of ours, split: the handle and the path beneath it.
enum Ours {
    /// `/.provision-beneath` itself, or a name that is not well formed.
    Prefix,
    /// The directory `parts` beneath the handle (its last part is the
    /// entry the call is about).
    Beneath(RawFd, Vec<String>),
}

/// Whether a name SQLite gives is one of ours.
///
/// # Safety
/// `path` is a NUL-terminated string.
unsafe fn ours(path: *const c_char) -> Option<Ours> {
    // SAFETY: the caller's.
    let path = unsafe { CStr::from_ptr(path) }.to_bytes();
    let rest = path.strip_prefix(PREFIX.as_bytes())?;
    if !(rest.is_empty() || rest.starts_with(b"/")) {
        return None;
    }
    let Ok(rest) = std::str::from_utf8(rest) else {
        return Some(Ours::Prefix);
    };
    let mut parts = rest.split('/').filter(|part| !part.is_empty());
    let Some(Ok(fd)) = parts.next().map(str::parse::<RawFd>) else {
        return Some(Ours::Prefix);
    };
    Some(Ours::Beneath(fd, parts.map(str::to_owned).collect()))
}

fn set_errno(code: c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the thread's errno.
    unsafe {
        *libc::__errno_location() = code;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: the thread's errno.
    unsafe {
        *libc::__error() = code;
    }
}

/// `-1` with `errno` set, as a failed call returns.
fn fail(code: c_int) -> c_int {
    set_errno(code);
    -1
}

fn errno_of(error: &std::io::Error) -> c_int {
    error.raw_os_error().unwrap_or(libc::EIO)
}

/// The directory an entry of ours is in, and the entry's name (`.` for
/// the handle's directory itself): `Err(errno)` when it cannot be reached
/// without following a symlink.
fn parent(fd: RawFd, parts: &[String]) -> Result<(OwnedFd, CString), c_int> {
    // SAFETY: the fd of a name of ours is the target handle that the
    // connection's `Db` keeps open.
    let root = unsafe { BorrowedFd::borrow_raw(fd) };
    let (dir, name) = match parts.split_last() {
        None => (&[][..], "."),
        Some((name, dir)) => (dir, name.as_str()),
    };
    let dir = beneath::open_dir_beneath(root, dir).map_err(|blocked| match blocked {
        Blocked::Missing => libc::ENOENT,
        Blocked::Symlink(_) => libc::ELOOP,
        Blocked::Os(error) => errno_of(&error),
    })?;
    let name = CString::new(name).map_err(|_| libc::EINVAL)?;
    Ok((dir, name))
}

unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_int) -> c_int {
    // SAFETY: SQLite passes a NUL-terminated name.
    match unsafe { ours(path) } {
        None => match ORIGINALS.get() {
            Some(originals) => unsafe { (originals.open)(path, flags, mode) },
            None => fail(libc::ENOSYS),
        },
        Some(Ours::Prefix) => fail(libc::ENOENT),
        Some(Ours::Beneath(fd, parts)) => open_beneath(fd, &parts, flags, mode),
    }
}

fn open_beneath(fd: RawFd, parts: &[String], flags: c_int, mode: c_int) -> c_int {
    let (dir, name) = match parent(fd, parts) {
        Ok(found) => found,
        Err(code) => return fail(code),
    };
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: a directory handle and a NUL-terminated name.
    let opened = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    if opened < 0 {
        return opened;
    }
    // SAFETY: just opened, ours to close on refusal.
    let file = unsafe { OwnedFd::from_raw_fd(opened) };
    let Ok(found) = rustix::fs::fstat(&file) else {
        return fail(libc::EIO);
    };
    let kind = found.st_mode & libc::S_IFMT;
    if kind == libc::S_IFREG && found.st_nlink > 1 {
        // A hard link: its other name may be outside the target.
        return fail(libc::EMLINK);
    }
    if kind != libc::S_IFREG && kind != libc::S_IFDIR {
        return fail(libc::EINVAL);
    }
    // O_NONBLOCK was only for the open (a FIFO swapped in must not block it).
    // SAFETY: fcntl on an open fd.
    unsafe { libc::fcntl(opened, libc::F_SETFL, flags & !libc::O_NONBLOCK) };
    std::os::fd::IntoRawFd::into_raw_fd(file)
}

unsafe extern "C" fn access(path: *const c_char, how: c_int) -> c_int {
    // SAFETY: SQLite passes a NUL-terminated name.
    match unsafe { ours(path) } {
        None => match ORIGINALS.get() {
            Some(originals) => unsafe { (originals.access)(path, how) },
            None => fail(libc::ENOSYS),
        },
        Some(Ours::Prefix) => fail(libc::ENOENT),
        Some(Ours::Beneath(fd, parts)) => {
            let (dir, name) = match parent(fd, &parts) {
                Ok(found) => found,
                Err(code) => return fail(code),
            };
            // The name itself is not followed either: a symlink is there
            // (F_OK) but neither readable nor writable through it.
            let mut found = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: a directory handle, a name, room for the answer.
            let looked = unsafe {
                libc::fstatat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    found.as_mut_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if looked < 0 || how == libc::F_OK {
                return looked;
            }
            // SAFETY: fstatat succeeded.
            if unsafe { found.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return fail(libc::EACCES);
            }
            // SAFETY: as above.
            unsafe { libc::faccessat(dir.as_raw_fd(), name.as_ptr(), how, 0) }
        }
    }
}

unsafe extern "C" fn stat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    // SAFETY: SQLite passes a NUL-terminated name and room for the answer.
    match unsafe { ours(path) } {
        None => match ORIGINALS.get() {
            Some(originals) => unsafe { (originals.stat)(path, buf) },
            None => fail(libc::ENOSYS),
        },
        Some(Ours::Prefix) => fail(libc::ENOENT),
        Some(Ours::Beneath(fd, parts)) => match parent(fd, &parts) {
            // SAFETY: a directory handle, a name, SQLite's buffer.
            Ok((dir, name)) => unsafe {
                libc::fstatat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    buf,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            },
            Err(code) => fail(code),
        },
    }
}

/// SQLite follows the symlinks of a name itself, by `lstat` and
/// `readlink`, to make it absolute: for names of ours nothing is a
/// symlink to follow, so the name stays ours.
unsafe extern "C" fn lstat(path: *const c_char, buf: *mut libc::stat) -> c_int {
    // SAFETY: SQLite passes a NUL-terminated name and room for the answer.
    match unsafe { ours(path) } {
        None => match ORIGINALS.get() {
            Some(originals) => unsafe { (originals.lstat)(path, buf) },
            None => fail(libc::ENOSYS),
        },
        Some(_) => fail(libc::ENOENT),
    }
}

unsafe extern "C" fn unlink(path: *const c_char) -> c_int {
    // SAFETY: SQLite passes a NUL-terminated name.
    match unsafe { ours(path) } {
        None => match ORIGINALS.get() {
            Some(originals) => unsafe { (originals.unlink)(path) },
            None => fail(libc::ENOSYS),
        },
        Some(Ours::Prefix) => fail(libc::ENOENT),
        Some(Ours::Beneath(fd, parts)) => match parent(fd, &parts) {
            // SAFETY: a directory handle and a name; unlinkat never follows it.
            Ok((dir, name)) => unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) },
            Err(code) => fail(code),
        },
    }
}
