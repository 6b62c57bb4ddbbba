//! The files a run writes: the JSON report and the pictures at its end,
//! the event stream as it goes. Each is opened before the first phase, so
//! a path that cannot be written stops the program before it changes
//! anything.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

pub(crate) use dojobber_viz::files::Beside;
use dojobber_viz::files::{Output, folder_of, follow_links};

/// Why a file named on the command line cannot be written: the flag, the
/// path as given, and the cause.
#[derive(Debug)]
pub struct OutputError {
    flag: &'static str,
    path: PathBuf,
    cause: String,
}

impl OutputError {
    pub(crate) fn new(flag: &'static str, path: &Path, cause: impl fmt::Display) -> OutputError {
        OutputError {
            flag,
            path: path.to_owned(),
            cause: cause.to_string(),
        }
    }
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.flag, self.path.display(), self.cause)
    }
}

impl std::error::Error for OutputError {}

/// A file written once, at the end of the run, and opened at its start.
///
/// A regular file (or a name not taken yet) is written to a temporary
/// file beside it, which then replaces it: readers see the old content or
/// the new, never half. The temporary file is named
/// `.NAME.PID.RANDOM.dojobber-tmp`, created new (`O_EXCL`, `O_NOFOLLOW`:
/// a link planted at its name is never followed) beneath a descriptor of
/// its folder; those left behind by killed runs of this user are removed
/// by the next run that writes in that folder. A symbolic link named on
/// the command line is followed and its target replaced. A pipe, a terminal or a device
/// (`/dev/stdout`) is written in place, and `-` is stdout. Files are
/// created with the mode the umask leaves.
pub struct OutputFile {
    flag: &'static str,
    path: PathBuf,
    target: Target,
}

enum Target {
    /// Written to `temp`, renamed over the file it is beside when complete.
    Atomic {
        temp: File,
        beside: Arc<Beside>,
        done: bool,
    },
    /// Written as it is: a pipe, a terminal, a device.
    Plain(File),
}

impl OutputFile {
    /// Opens the file `path` that the flag `flag` names, or says why it
    /// cannot be written.
    ///
    /// ```
    /// use std::io::Write;
    /// use dojobber_cli::OutputFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("report.json");
    /// let file = OutputFile::prepare("--report-json", &path)?;
    /// file.write(|out| out.write_all(b"{}\n"))?;
    /// assert_eq!(std::fs::read_to_string(&path)?, "{}\n");
    ///
    /// let missing = dir.path().join("no/such/folder/report.json");
    /// let error = OutputFile::prepare("--report-json", &missing).err().unwrap();
    /// assert!(error.to_string().starts_with("--report-json "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare(flag: &'static str, path: &Path) -> Result<OutputFile, OutputError> {
        let error = |cause: io::Error| OutputError::new(flag, path, cause);
        if is_dash(path) {
            let stdout = stdout_file().map_err(error)?;
            return Ok(OutputFile {
                flag,
                path: path.to_owned(),
                target: Target::Plain(stdout),
            });
        }
        let target = match Output::open(path).map_err(error)? {
            Output::InPlace(file) => Target::Plain(file),
            Output::Replaced { temp, beside } => Target::Atomic {
                temp,
                beside: Arc::new(beside),
                done: false,
            },
        };
        Ok(OutputFile {
            flag,
            path: path.to_owned(),
            target,
        })
    }

    /// Writes the whole content with `fill`, then puts it in place.
    /// When `fill` or the write fails, a regular file keeps its old content.
    pub fn write(
        mut self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), OutputError> {
        self.fill(fill, &Gate::default())?;
        self.commit()
    }

    /// Writes the whole content with `fill`: a regular file's to its
    /// temporary, synced, for [`commit`](Self::commit) to put in place; a
    /// pipe's, a device's or stdout's in place, from its first byte on
    /// only if `gate` was not closed first.
    pub(crate) fn fill(
        &mut self,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        gate: &Gate,
    ) -> Result<(), OutputError> {
        let written = match &mut self.target {
            Target::Plain(file) => {
                let mut out = BufWriter::new(Gated { file, gate });
                fill(&mut out).and_then(|()| out.flush())
            }
            Target::Atomic { temp, .. } => {
                let mut out = BufWriter::new(&*temp);
                fill(&mut out).and_then(|()| out.flush()).and_then(|()| {
                    drop(out);
                    temp.sync_all()
                })
            }
        };
        written.map_err(|cause| OutputError::new(self.flag, &self.path, cause))
    }

    /// Puts a regular file's filled temporary in place (a pipe, a device
    /// or stdout already has its content).
    pub(crate) fn commit(mut self) -> Result<(), OutputError> {
        match &mut self.target {
            Target::Plain(_) => Ok(()),
            Target::Atomic { beside, done, .. } => beside
                .put_in_place()
                .map(|()| *done = true)
                .map_err(|cause| OutputError::new(self.flag, &self.path, cause)),
        }
    }
}

/// Lets the first byte through to a pipe, a device or stdout unless it
/// was closed first: a write on a thread and the thread that gives up
/// waiting for it agree on whether anything was written.
#[derive(Debug, Default)]
pub(crate) struct Gate(AtomicU8);

const GATE_UNUSED: u8 = 0;
const GATE_PASSED: u8 = 1;
const GATE_CLOSED: u8 = 2;

impl Gate {
    /// Lets the first byte through, unless closed: whether it may.
    fn pass(&self) -> bool {
        self.0
            .compare_exchange(
                GATE_UNUSED,
                GATE_PASSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_or_else(|now| now == GATE_PASSED, |_| true)
    }

    /// Closes the gate unless a byte went through: whether nothing did.
    pub(crate) fn close(&self) -> bool {
        self.0
            .compare_exchange(
                GATE_UNUSED,
                GATE_CLOSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map_or_else(|now| now == GATE_CLOSED, |_| true)
    }
}

/// A file written in place, through a [`Gate`].
struct Gated<'a> {
    file: &'a File,
    gate: &'a Gate,
}

impl Write for Gated<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if !self.gate.pass() {
            return Err(io::Error::other("stopped before its first byte"));
        }
        self.file.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl OutputFile {
    pub(crate) fn flag(&self) -> &'static str {
        self.flag
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file the content goes to first, if any.
    pub(crate) fn temp(&self) -> Option<Arc<Beside>> {
        match &self.target {
            Target::Atomic { beside, .. } => Some(Arc::clone(beside)),
            Target::Plain(_) => None,
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Target::Atomic {
            beside,
            done: false,
            ..
        } = &self.target
        {
            beside.remove();
        }
    }
}

/// Opens the event stream at `path`: created or truncated (a pipe or a
/// device written in place), through the symbolic links `path` names,
/// with the umask's mode; a link that takes the place of the file once
/// its path is resolved is not followed.
pub(crate) fn open_stream(flag: &'static str, path: &Path) -> Result<File, OutputError> {
    let error = |cause: io::Error| OutputError::new(flag, path, cause);
    if is_dash(path) {
        return stdout_file().map_err(error);
    }
    dojobber_viz::files::open_in_place(path).map_err(error)
}

/// Whether `path` is `-`, which names stdout (a file named `-` is `./-`).
pub(crate) fn is_dash(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// This process's stdout as a file of its own (the descriptor duplicated,
/// so the position in a redirected file is shared).
fn stdout_file() -> io::Result<File> {
    #[cfg(unix)]
    let owned = std::os::fd::AsFd::as_fd(&io::stdout()).try_clone_to_owned()?;
    #[cfg(windows)]
    let owned = std::os::windows::io::AsHandle::as_handle(&io::stdout()).try_clone_to_owned()?;
    Ok(File::from(owned))
}

/// What a path names, so that two flags naming one file are told apart
/// from two naming different ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Destination {
    /// This process's stdout: `-`, `/dev/stdout`, `/dev/fd/1`, or the file
    /// or pipe stdout is redirected to.
    Stdout,
    /// A device named by its path (`/dev/null`, `/dev/tty`), even the one
    /// stdout is: any number of flags may name it.
    Device,
    /// A file that exists (a pipe included), by device and inode.
    Existing(u64, u64),
    /// A name not taken yet (or a file whose identity the system does not
    /// tell), with its links and its folder's `..` resolved.
    Path(PathBuf),
}

impl Destination {
    /// What `path` names now; nothing is created or opened for writing.
    ///
    /// `-`, `/dev/stdout` and `/dev/fd/1` are stdout by name. Any other
    /// device is a [`Device`](Destination::Device), even when stdout is that
    /// device (`>/dev/null`): only a file or a pipe stdout is redirected to
    /// is stdout by identity.
    pub(crate) fn of(path: &Path) -> Destination {
        if is_dash(path) {
            return Destination::Stdout;
        }
        let (resolved, in_proc) = follow_links(path).unwrap_or_else(|_| (path.to_owned(), false));
        if in_proc && is_own_stdout(&resolved) {
            return Destination::Stdout;
        }
        match fs::metadata(&resolved) {
            Ok(meta) if is_char_device(&meta) => Destination::Device,
            Ok(meta) => {
                let id = file_id(&meta);
                if id.is_some() && id == stdout_id() {
                    Destination::Stdout
                } else if let Some((dev, ino)) = id {
                    Destination::Existing(dev, ino)
                } else {
                    Destination::Path(fs::canonicalize(&resolved).unwrap_or(resolved))
                }
            }
            Err(_) => {
                let dir = fs::canonicalize(folder_of(&resolved))
                    .unwrap_or_else(|_| folder_of(&resolved).to_owned());
                Destination::Path(match resolved.file_name() {
                    Some(name) => dir.join(name),
                    None => resolved,
                })
            }
        }
    }
}

/// Whether `path`, a link in `/proc` as [`follow_links`] leaves it, is
/// this process's descriptor 1.
fn is_own_stdout(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "1")
        && fs::canonicalize("/proc/self/fd").is_ok_and(|fds| path.parent() == Some(&*fds))
}

/// The identity of the file or pipe stdout is redirected to, if it is one.
fn stdout_id() -> Option<(u64, u64)> {
    let meta = stdout_file().ok()?.metadata().ok()?;
    if is_file_or_pipe(&meta) {
        file_id(&meta)
    } else {
        None
    }
}

#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &fs::Metadata) -> Option<(u64, u64)> {
    None
}

#[cfg(unix)]
fn is_char_device(meta: &fs::Metadata) -> bool {
    std::os::unix::fs::FileTypeExt::is_char_device(&meta.file_type())
}

#[cfg(not(unix))]
fn is_char_device(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn is_file_or_pipe(meta: &fs::Metadata) -> bool {
    meta.is_file() || std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type())
}

#[cfg(not(unix))]
fn is_file_or_pipe(meta: &fs::Metadata) -> bool {
    meta.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "old\n").unwrap();
        let file = OutputFile::prepare("--report-json", &path).unwrap();
        let interrupted = file.write(|out| {
            out.write_all(b"{\"half\": ")?;
            Err(io::Error::other("interrupted"))
        });
        assert_eq!(
            interrupted.unwrap_err().to_string(),
            format!("--report-json {}: interrupted", path.display())
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(names(dir.path()), ["report.json"], "the temporary is gone");
        let file = OutputFile::prepare("--report-json", &path).unwrap();
        file.write(|out| out.write_all(b"new\n")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new\n");
        assert_eq!(names(dir.path()), ["report.json"]);
    }

    /// A file written in place on one end of a pipe, and the other end.
    fn piped() -> (OutputFile, File) {
        let (read, write) = nix::unistd::pipe().unwrap();
        let file = OutputFile {
            flag: "--graph",
            path: PathBuf::from("pipe"),
            target: Target::Plain(File::from(write)),
        };
        (file, File::from(read))
    }

    #[test]
    fn a_closed_gate_keeps_every_byte_from_a_pipe_and_an_open_one_says_so() {
        use std::io::Read;
        let (mut file, mut pipe) = piped();
        let gate = Gate::default();
        assert!(gate.close(), "nothing went through");
        let stopped = file.fill(|out| out.write_all(b"<svg/>"), &gate);
        assert!(stopped.is_err());
        drop(file);
        let mut read = Vec::new();
        pipe.read_to_end(&mut read).unwrap();
        assert!(read.is_empty(), "not written means not one byte");

        let (mut file, mut pipe) = piped();
        let gate = Gate::default();
        file.fill(|out| out.write_all(b"<svg/>"), &gate).unwrap();
        assert!(!gate.close(), "the write began: a stop now cuts it short");
        drop(file);
        let mut read = Vec::new();
        pipe.read_to_end(&mut read).unwrap();
        assert_eq!(read, b"<svg/>");
    }

    #[test]
    fn leftovers_of_dead_processes_go_and_others_stay() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        // No process has this pid (Linux caps them at 2^22).
        let dead = ".report.json.2147483647.0.dojobber-tmp";
        let dead_random = ".report.json.2147483647.Ab3dE9.dojobber-tmp";
        let other_output = ".other.json.2147483647.0.dojobber-tmp";
        let alive = format!(".report.json.{}.99.dojobber-tmp", std::process::id());
        let not_ours = ".report.json.2147483647.0.dojobber-tmp.keep";
        for name in [dead, dead_random, other_output, &alive, not_ours] {
            fs::write(dir.path().join(name), "half").unwrap();
        }
        let non_utf8 = std::ffi::OsStr::from_bytes(b".r\xff.json.2147483647.0.dojobber-tmp");
        fs::write(dir.path().join(non_utf8), "half").unwrap();
        // A link of the temporaries' form is never one of ours: it stays,
        // and what it points to is not touched.
        let victim = dir.path().join("victim");
        fs::write(&victim, "mine").unwrap();
        let link = ".victim.2147483647.1.dojobber-tmp";
        std::os::unix::fs::symlink(&victim, dir.path().join(link)).unwrap();

        let file = OutputFile::prepare("--report-json", &path).unwrap();
        file.write(|out| out.write_all(b"{}\n")).unwrap();
        let mut expected = vec![
            alive,
            link.to_owned(),
            not_ours.to_owned(),
            "report.json".to_owned(),
            "victim".to_owned(),
        ];
        expected.sort();
        assert_eq!(names(dir.path()), expected);
        assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
    }

    #[test]
    fn a_folder_or_a_missing_folder_is_refused_and_names_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let folder = OutputFile::prepare("--graph", dir.path()).err().unwrap();
        assert_eq!(
            folder.to_string(),
            format!("--graph {}: is a folder", dir.path().display())
        );
        let missing = dir.path().join("nowhere/g.png");
        let error = OutputFile::prepare("--graph", &missing).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "--graph {}: the folder {} does not exist",
                missing.display(),
                dir.path().join("nowhere").display()
            )
        );
        assert!(names(dir.path()).is_empty(), "nothing was created");
    }
}
