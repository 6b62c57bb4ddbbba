//! Writing an output file where another local user may plant links: the
//! one way every dojobber output is written ([`write_graph`](crate::write_graph),
//! [`html::write_page`](crate::html::write_page), and the command line's
//! `--report-json`, `--html`, `--graph`, `--events-json`).
//!
//! A program may run as root in a folder others can write to (the system's
//! temporary folder, a shared report folder). So a regular file is never
//! opened by its name for writing: its content goes to a temporary file
//! beside it, with a name nobody can guess (`.NAME.PID.RANDOM.dojobber-tmp`),
//! created new (`O_CREAT | O_EXCL | O_NOFOLLOW`: a link or a file planted
//! at that name is never followed or reused), then renamed over it; create,
//! rename and remove go by name beneath a descriptor of the folder, opened
//! once, so a folder of the path swapped for a link meanwhile redirects
//! nothing, and a link swapped in at the output's name is replaced, not
//! followed. Readers see the old content or the new, never half. The
//! temporaries that killed runs of this user left are removed by the next
//! write in that folder.
//!
//! The links of the path as given are followed once, when it is opened (a
//! user who names a link means its target); a pipe, a terminal or a device
//! (`/dev/stdout`) is written in place. Files get the mode the umask leaves.
//!
//! It lives here, in the lowest crate that writes files, so that viz's
//! writers and the command line's share it.

mod beside;

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use beside::Beside;

/// Where an output's bytes go, once its path is opened.
#[derive(Debug)]
pub enum Output {
    /// A pipe, a terminal or a device, open for writing (appending).
    InPlace(File),
    /// A regular file, or a name not taken yet: `temp` is the new
    /// temporary file beside it, to fill, sync and put in place with
    /// `beside` (dropped before that, `beside` removes it).
    Replaced {
        /// The temporary file, empty, open for writing.
        temp: File,
        /// The temporary's place: puts it over the output, or removes it.
        beside: Beside,
    },
}

impl Output {
    /// Opens what `path` leads to for writing: a device or a pipe in place,
    /// a regular file (or a new name) through a temporary beside it.
    /// A folder, or a path whose folder does not exist, is an error;
    /// nothing is created then.
    ///
    /// ```
    /// use std::io::Write;
    /// use dojobber_viz::files::Output;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("report.json");
    /// let Output::Replaced { mut temp, beside } = Output::open(&path)? else {
    ///     unreachable!("a new name is a regular file");
    /// };
    /// temp.write_all(b"{}\n")?;
    /// beside.put_in_place()?;
    /// assert_eq!(std::fs::read_to_string(&path)?, "{}\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: &Path) -> io::Result<Output> {
        let (resolved, in_proc) = follow_links(path)?;
        match fs::metadata(&resolved) {
            Ok(meta) if meta.is_dir() => Err(io::Error::other("is a folder")),
            // `/dev/stdout` names whatever stdout is through `/proc`: never
            // replace that, add to it.
            Ok(meta) if !meta.is_file() || in_proc => OpenOptions::new()
                .append(true)
                .open(&resolved)
                .map(Output::InPlace),
            Ok(_) => Output::replacing(&resolved),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let dir = folder_of(&resolved);
                if dir.is_dir() {
                    Output::replacing(&resolved)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("the folder {} does not exist", dir.display()),
                    ))
                }
            }
            Err(error) => Err(error),
        }
    }

    fn replacing(resolved: &Path) -> io::Result<Output> {
        let (temp, beside) = Beside::create(resolved)?;
        Ok(Output::Replaced { temp, beside })
    }
}

/// Writes `bytes` to `path` as [`Output`] does: a regular file replaced
/// whole through a temporary beside it (or left as it was when the write
/// fails), a device or a pipe written in place.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("graph.dot");
/// dojobber_viz::files::write(&path, b"digraph {}\n")?;
/// assert_eq!(std::fs::read(&path)?, b"digraph {}\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match Output::open(path)? {
        Output::InPlace(mut file) => file.write_all(bytes),
        // On an error, dropping `beside` removes the temporary.
        Output::Replaced { mut temp, beside } => temp
            .write_all(bytes)
            .and_then(|()| temp.sync_all())
            .and_then(|()| beside.put_in_place()),
    }
}

/// Opens what `path` leads to for writing in place, created (0666 less
/// the umask) or truncated: a stream read as it is written. A device or a
/// pipe is opened as it is; a regular file by name beneath a descriptor of
/// its folder, and a link that takes its place once the path is resolved
/// is not followed.
///
/// ```
/// use std::io::Write;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("events.jsonl");
/// dojobber_viz::files::open_in_place(&path)?.write_all(b"{}\n")?;
/// assert_eq!(std::fs::read(&path)?, b"{}\n");
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn open_in_place(path: &Path) -> io::Result<File> {
    let (resolved, in_proc) = follow_links(path)?;
    match fs::metadata(&resolved) {
        Ok(meta) if meta.is_dir() => Err(io::Error::other("is a folder")),
        Ok(meta) if !meta.is_file() || in_proc => OpenOptions::new().append(true).open(&resolved),
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => {
            let dir = folder_of(&resolved);
            if !dir.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the folder {} does not exist", dir.display()),
                ));
            }
            let name: &OsStr = resolved
                .file_name()
                .ok_or_else(|| io::Error::other("names no file"))?;
            beside::create_or_truncate(dir, name)
        }
    }
}

/// `path` with each symbolic link replaced by its target, up to a link in
/// `/proc` (`/dev/stdout` leads to `/proc/self/fd/1`, and `/dev/fd/1` is
/// in it through its folder), whose target names an open file
/// (`pipe:[1234]`), not a path: that one is returned, its folder
/// resolved (`/proc/PID/fd/1`), with `true`.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out.svg");
/// assert_eq!(dojobber_viz::files::follow_links(&path)?, (path, false));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn follow_links(path: &Path) -> io::Result<(PathBuf, bool)> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(dir) = fs::canonicalize(folder_of(&path))
                    && dir.starts_with("/proc")
                    && let Some(name) = path.file_name()
                {
                    return Ok((dir.join(name), true));
                }
                let target = fs::read_link(&path)?;
                path = folder_of(&path).join(target);
            }
            Ok(_) => return Ok((path, false)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok((path, false)),
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// The folder `path` is in: its parent, or `.` for a bare name.
///
/// ```
/// use std::path::Path;
/// use dojobber_viz::files::folder_of;
///
/// assert_eq!(folder_of(Path::new("out/graph.svg")), Path::new("out"));
/// assert_eq!(folder_of(Path::new("graph.svg")), Path::new("."));
/// ```
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}
