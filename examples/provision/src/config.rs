//! The desired state as written in TOML, and its validation into
//! [`Desired`]: every mistake is found here, before any job exists, with
//! the line and column of the entry at fault.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dojobber::JobRef;
use serde::Deserialize;
use toml::Spanned;

use super::Provision;
use super::db::{Database, Refused, Seed, Share, SharedDatabase, Table};
use super::jobs::{Absent, Content, Directory, File, Needs, OnHost, Symlink, Target};
use super::paths::RelPath;

/// A value in `[vars]` or in a seed row: TOML's string, integer, float or
/// boolean. (Arrays, tables and dates are refused.)
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A string.
    Text(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// A boolean; SQLite stores it as 0 or 1.
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer, a float or a boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Integer)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Real(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Text(text) => write!(f, "{text:?}"),
            Scalar::Integer(n) => write!(f, "{n}"),
            Scalar::Real(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl rusqlite::ToSql for Scalar {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Scalar::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Scalar::Integer(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            Scalar::Real(x) => ToSqlOutput::Owned(Value::Real(*x)),
            Scalar::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
        })
    }
}

impl From<&Scalar> for minijinja::Value {
    fn from(value: &Scalar) -> minijinja::Value {
        match value {
            Scalar::Text(text) => text.as_str().into(),
            Scalar::Integer(n) => (*n).into(),
            Scalar::Real(x) => (*x).into(),
            Scalar::Bool(b) => (*b).into(),
        }
    }
}

/// Permission bits, written in octal in the file: `mode = 0o640`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode(u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a permission mode, an octal integer like 0o644")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Mode, E> {
                match u32::try_from(v) {
                    Ok(mode) if mode <= 0o7777 => Ok(Mode(mode)),
                    _ if v < 0 => Err(E::custom(format!(
                        "mode {v} is not a permission mode: write modes in octal, like 0o644"
                    ))),
                    _ => Err(E::custom(format!(
                        "mode {v:#o} is not a permission mode (at most 0o7777): write modes in octal, like 0o644"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Mode, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The file as written. Unknown keys are errors everywhere.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    vars: BTreeMap<String, Scalar>,
    #[serde(default)]
    dir: Vec<RawDir>,
    #[serde(default)]
    file: Vec<RawFile>,
    #[serde(default)]
    symlink: Vec<RawSymlink>,
    #[serde(default)]
    absent: Vec<RawAbsent>,
    database: Option<RawDatabase>,
}

/// A file for several hosts: `[vars]` for every host, and a section per
/// host (`[hosts.db]`, `[[hosts.db.file]]`, ...) in the one-host format.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHosts {
    #[serde(default)]
    vars: BTreeMap<String, Scalar>,
    hosts: BTreeMap<Spanned<String>, RawConfig>,
}

type Deps = Vec<Spanned<String>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    path: Spanned<String>,
    mode: Option<Spanned<Mode>>,
    #[serde(default)]
    deps: Deps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: Spanned<String>,
    content: Option<String>,
    template: Option<Spanned<String>>,
    mode: Option<Spanned<Mode>>,
    #[serde(default)]
    deps: Deps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymlink {
    path: Spanned<String>,
    target: Spanned<String>,
    #[serde(default)]
    deps: Deps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbsent {
    path: Spanned<String>,
    #[serde(default)]
    deps: Deps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    path: Spanned<String>,
    mode: Option<Spanned<Mode>>,
    /// A key under which the run's shared values get where the database
    /// is and its tables, for other entries' (other hosts') templates.
    share: Option<Spanned<String>>,
    #[serde(default)]
    deps: Deps,
    #[serde(default)]
    table: Vec<RawTable>,
    #[serde(default)]
    seed: Vec<RawSeed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: Spanned<String>,
    columns: Spanned<Vec<String>>,
    #[serde(default)]
    deps: Deps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    table: Spanned<String>,
    rows: Spanned<Vec<BTreeMap<String, Scalar>>>,
    #[serde(default)]
    deps: Deps,
}

/// Why a desired-state file was refused. Nothing was changed on disk.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", dojobber::text::escaped(&path.display().to_string()))]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid: bad TOML, an unknown key, a wrong type, or
    /// an entry that cannot be (a path out of the target, a dep on nothing,
    /// two entries for one path, bad SQL, a template that does not render).
    #[error("{0}")]
    Invalid(Box<Invalid>),
}

/// A mistake in the file, where it is and which entry it is in.
#[derive(Debug)]
pub struct Invalid {
    /// The file, as given.
    pub origin: String,
    /// Line of the mistake, from 1.
    pub line: usize,
    /// Column of the mistake, from 1, in characters.
    pub column: usize,
    /// The entry at fault, by its job name (`file etc/motd`), when known.
    pub entry: Option<String>,
    /// What is wrong.
    pub message: String,
    /// The line of the file, for the caret display.
    source_line: String,
}

impl fmt::Display for Invalid {
    /// ```text
    /// provision.toml:12:1: file etc/motd: unknown field `colour`, expected one of ...
    ///    |
    /// 12 | colour = "red"
    ///    | ^
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every part may come from the file: shown with the one escaping
        // rule for terminals, so no byte of it acts on the terminal.
        let origin = dojobber::text::escaped(&self.origin);
        write!(f, "{origin}:{}:{}: ", self.line, self.column)?;
        if let Some(entry) = &self.entry {
            write!(f, "{}: ", dojobber::text::escaped(entry))?;
        }
        writeln!(f, "{}", dojobber::text::escaped(&self.message))?;
        let (shown, caret) = excerpt(&self.source_line, self.column);
        let gutter = " ".repeat(self.line.to_string().len());
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{} | {shown}", self.line)?;
        write!(f, "{gutter} | {}^", " ".repeat(caret))
    }
}

/// The most characters of the offending line an error shows.
const MAX_LINE_CHARS: usize = 200;

/// The part of a line an error shows, escaped, around the column (from
/// 1), and where the caret goes in it: a long line is cut, saying so.
fn excerpt(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = column.saturating_sub(1).min(chars.len());
    let start = match at < MAX_LINE_CHARS {
        true => 0,
        false => at - MAX_LINE_CHARS / 2,
    };
    let end = (start + MAX_LINE_CHARS).min(chars.len());
    let piece = |range: std::ops::Range<usize>| {
        dojobber::text::escaped(&chars[range].iter().collect::<String>()).into_owned()
    };
    let before = if start > 0 { "… " } else { "" };
    let caret = before.chars().count() + piece(start..at).chars().count();
    let mut shown = format!("{before}{}", piece(start..end));
    if start > 0 || end < chars.len() {
        let cut = chars.len() - (end - start);
        shown.push_str(&format!(" … (line cut: {cut} more characters)"));
    }
    (shown, caret)
}

/// The desired state, checked whole: every path inside the target, every
/// dep naming an entry, every table's SQL and every seed row accepted by
/// SQLite, every template rendered. Its entries are the jobs of a run.
pub struct Desired {
    /// Every job, the target's first, then in file order by kind.
    pub(super) jobs: Vec<JobRef<Provision>>,
    names: Vec<String>,
    /// The jobs no other job needs, in the same order: the root's deps.
    tops: Vec<usize>,
    /// The file it was made from, to make it again on another host.
    pub(super) source: SourceText,
}

/// A desired-state file's text, and whether it is the several-host form.
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub(super) struct SourceText {
    pub(super) origin: String,
    pub(super) text: String,
    pub(super) hosts: bool,
}

impl SourceText {
    /// Checks the text again (another host's copy of the file).
    pub(super) fn parse(&self) -> Result<Desired, ConfigError> {
        if self.hosts {
            Desired::parse_hosts(&self.text, &self.origin)
        } else {
            Desired::parse(&self.text, &self.origin)
        }
    }
}

impl fmt::Debug for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desired")
            .field("jobs", &self.names)
            .finish()
    }
}

/// The name of the job for the target directory itself.
pub const TARGET_JOB: &str = "target";

impl Desired {
    /// Reads and checks a desired-state file.
    pub fn load(path: &Path) -> Result<Desired, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Desired::parse(&source, &path.display().to_string())
    }

    /// Checks desired-state TOML; `origin` names it in errors.
    pub fn parse(source: &str, origin: &str) -> Result<Desired, ConfigError> {
        let here = Source {
            text: source,
            origin,
        };
        let raw: RawConfig = here.toml()?;
        let mut builder = Builder::new(here, false);
        builder.add_host(None, raw, BTreeMap::new())?;
        builder.finish()
    }

    /// Reads and checks a desired-state file for several hosts.
    pub fn load_hosts(path: &Path) -> Result<Desired, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Desired::parse_hosts(&source, &path.display().to_string())
    }

    /// Checks desired-state TOML for several hosts: `[vars]` for all of
    /// them, then a section per host (`[hosts.db]`, `[[hosts.app1.file]]`)
    /// in the one-host format. A host's jobs are named after it (`db:
    /// table users`) and run on the workers labelled with its name; `deps`
    /// name a job of the same host (`table users`) or of another one
    /// (`db: table users`).
    ///
    /// ```
    /// use dojobber_example_provision::Desired;
    ///
    /// let desired = Desired::parse_hosts(
    ///     r#"
    ///     [[hosts.db.dir]]
    ///     path = "data"
    ///     [[hosts.app.file]]
    ///     path = "app.conf"
    ///     content = "db = data\n"
    ///     deps = ["db: dir data"]
    ///     "#,
    ///     "hosts.toml",
    /// )?;
    /// assert_eq!(
    ///     desired.job_names(),
    ///     ["app: target", "app: file app.conf", "db: target", "db: dir data"],
    /// );
    /// # Ok::<(), dojobber_example_provision::ConfigError>(())
    /// ```
    pub fn parse_hosts(source: &str, origin: &str) -> Result<Desired, ConfigError> {
        let here = Source {
            text: source,
            origin,
        };
        let raw: RawHosts = here.toml()?;
        let mut builder = Builder::new(here, true);
        if raw.hosts.is_empty() {
            return Err(here.invalid(0..0, None, "no `[hosts.NAME]` section: name a host"));
        }
        for (host, config) in raw.hosts {
            let name = host.get_ref();
            let fine = name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if name.is_empty() || !fine {
                return Err(here.invalid(
                    host.span(),
                    Some(&format!("[hosts.{name}]")),
                    "a host's name is its workers' label: letters, digits, `-` and `_` only",
                ));
            }
            builder.add_host(Some(name.clone()), config, raw.vars.clone())?;
        }
        builder.finish()
    }

    /// The names of the jobs, the target's first, then in file order by
    /// kind: dirs, files, symlinks, absent paths, database, tables, seeds.
    pub fn job_names(&self) -> &[String] {
        &self.names
    }

    /// The jobs no other job needs: what the root job groups.
    pub(super) fn tops(&self) -> impl Iterator<Item = JobRef<Provision>> + '_ {
        self.tops.iter().map(|&id| JobRef::clone(&self.jobs[id]))
    }
}

/// The text being checked, to turn spans into errors.
#[derive(Clone, Copy)]
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Source<'_> {
    /// The text as TOML of type `T`, or where it is not.
    fn toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(self.text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let entry = entry_at(self.text, span.start);
            self.invalid(span, entry.as_deref(), error.message().trim_end())
        })
    }

    fn invalid(&self, span: Range<usize>, entry: Option<&str>, message: &str) -> ConfigError {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        ConfigError::Invalid(Box::new(Invalid {
            origin: self.origin.to_owned(),
            line: self.text[..start].matches('\n').count() + 1,
            column: self.text[line_start..start].chars().count() + 1,
            entry: entry.map(str::to_owned),
            message: message.to_owned(),
            source_line: self.text[line_start..line_end].trim_end().to_owned(),
        }))
    }
}

/// Which entry the byte at `offset` is in, by its job name, found in a
/// second, schema-free parse (the first one failed on the schema): the
/// entry whose header (`[[file]]`, `[database]`) comes last before it.
fn entry_at(source: &str, offset: usize) -> Option<String> {
    use toml::de::{DeTable, DeValue};
    let document = DeTable::parse(source).ok()?;
    // `file etc/motd`, or `[[file]]` when the entry has no path (yet).
    let name = |kind: &str, header: &str, table: &DeTable<'_>, key: &str| match table
        .get(key)
        .map(|v| v.get_ref())
    {
        Some(DeValue::String(text)) => format!("{kind} {text}"),
        _ => header.to_owned(),
    };
    // (where the entry starts, its name)
    let mut entries: Vec<(usize, String)> = Vec::new();
    let mut items = |kind: &str, key: &str, value: &toml::Spanned<DeValue<'_>>| {
        if let DeValue::Array(items) = value.get_ref() {
            for item in items.iter() {
                if let DeValue::Table(table) = item.get_ref() {
                    let header = match kind {
                        "table" | "seed" => format!("[[database.{kind}]]"),
                        _ => format!("[[{kind}]]"),
                    };
                    entries.push((item.span().start, name(kind, &header, table, key)));
                }
            }
        }
    };
    let mut tables = Vec::new();
    for (key, value) in document.get_ref() {
        let key = key.get_ref().as_ref();
        match (key, value.get_ref()) {
            ("database", DeValue::Table(database)) => {
                tables.push((
                    value.span().start,
                    name("database", "[database]", database, "path"),
                ));
                for (nested, value) in database {
                    match nested.get_ref().as_ref() {
                        "table" => items("table", "name", value),
                        "seed" => items("seed", "table", value),
                        _ => {}
                    }
                }
            }
            (_, DeValue::Table(_)) => tables.push((value.span().start, format!("[{key}]"))),
            ("dir" | "file" | "symlink" | "absent", _) => items(key, "path", value),
            _ => {}
        }
    }
    entries.extend(tables);
    entries
        .into_iter()
        .filter(|(start, _)| *start <= offset)
        .max_by_key(|(start, _)| *start)
        .map(|(_, name)| name)
}

/// An entry on its way to becoming a job.
struct Pending {
    name: String,
    /// The host whose workers run it, in a file for several hosts.
    host: Option<Arc<str>>,
    /// Where the entry is named in the file, for errors about it.
    span: Range<usize>,
    needs: Vec<usize>,
    extra: Deps,
    make: Box<dyn FnOnce(Needs) -> JobRef<Provision>>,
    /// The shared keys its template reads (`shared.KEY`), where.
    reads: Vec<(String, Range<usize>)>,
}

struct Builder<'a> {
    source: Source<'a>,
    /// Whether it is a file for several hosts.
    hosts: bool,
    pending: Vec<Pending>,
    /// The entry that shares each key (`[database] share = KEY`).
    shares: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    /// The host whose section is being read, if any.
    host: Option<Arc<str>>,
    /// The entry of its target directory.
    target: usize,
    /// Its path entries: path -> (entry, whether it is a directory).
    paths: BTreeMap<RelPath, (usize, bool)>,
    /// Where its writes make temporary files: the directories of the file
    /// and symlink entries, `None` for the target itself.
    staging: BTreeSet<Option<RelPath>>,
}

const DEFAULT_DIR_MODE: u32 = 0o755;
const DEFAULT_FILE_MODE: u32 = 0o644;

impl<'a> Builder<'a> {
    fn new(source: Source<'a>, hosts: bool) -> Self {
        Builder {
            source,
            hosts,
            pending: Vec::new(),
            shares: HashMap::new(),
            by_name: HashMap::new(),
            host: None,
            target: 0,
            paths: BTreeMap::new(),
            staging: BTreeSet::new(),
        }
    }

    /// `name` as the job of the current host calls it: `db: table users`.
    fn qualified(&self, name: &str) -> String {
        match &self.host {
            Some(host) => format!("{host}: {name}"),
            None => name.to_owned(),
        }
    }

    fn error(&self, span: Range<usize>, entry: &str, message: impl fmt::Display) -> ConfigError {
        self.source.invalid(span, Some(entry), &message.to_string())
    }

    /// Adds the entries of one host (`None`: the only one), whose
    /// template variables are `vars` and then its own.
    fn add_host(
        &mut self,
        host: Option<String>,
        raw: RawConfig,
        mut vars: BTreeMap<String, Scalar>,
    ) -> Result<(), ConfigError> {
        self.host = host.map(Arc::from);
        self.paths.clear();
        self.staging.clear();
        // `finish_host` replaces `make` once the staging directories are known.
        self.target = self.add(
            TARGET_JOB.to_owned(),
            0..0,
            Vec::new(),
            Vec::new(),
            Box::new(|needs| dojobber::dep(Target::new(needs, Vec::new()))),
        )?;
        vars.extend(raw.vars);
        // A var named `shared` hides the run's shared values.
        let reads_shared = !vars.contains_key(SHARED_VAR);
        let vars: BTreeMap<String, minijinja::Value> = vars
            .iter()
            .map(|(name, value)| (name.clone(), value.into()))
            .collect();

        self.add_dirs(raw.dir)?;
        self.add_files(raw.file, &vars, reads_shared)?;
        self.add_symlinks(raw.symlink)?;
        self.add_absents(raw.absent)?;
        if let Some(database) = raw.database {
            self.database(database)?;
        }

        self.check_nesting()?;
        let staging = std::mem::take(&mut self.staging).into_iter().collect();
        self.pending[self.target].make =
            Box::new(move |needs| dojobber::dep(Target::new(needs, staging)));
        Ok(())
    }

    fn add_dirs(&mut self, raw: Vec<RawDir>) -> Result<(), ConfigError> {
        for dir in raw {
            let path = self.path("dir", &dir.path)?;
            let mode = self.mode(&format!("dir {path}"), dir.mode, DEFAULT_DIR_MODE)?;
            let job_path = path.clone();
            self.add_path("dir", path, true, &dir.path, dir.deps, move |needs| {
                dojobber::dep(Directory {
                    path: job_path,
                    mode,
                    needs,
                })
            })?;
        }
        Ok(())
    }

    /// The file entries, their templates rendered (with stand-ins for the
    /// shared values they read) so that a bad one is refused now.
    fn add_files(
        &mut self,
        raw: Vec<RawFile>,
        vars: &BTreeMap<String, minijinja::Value>,
        reads_shared: bool,
    ) -> Result<(), ConfigError> {
        for file in raw {
            let path = self.path("file", &file.path)?;
            let name = format!("file {path}");
            let mode = self.mode(&name, file.mode, DEFAULT_FILE_MODE)?;
            let mut reads = Vec::new();
            let content = match (file.content, &file.template) {
                (Some(content), None) => Content::Fixed(content),
                (None, Some(template)) => {
                    let keys = match reads_shared {
                        true => shared_keys(template.get_ref())
                            .map_err(|why| self.error(template.span(), &name, why))?,
                        false => Vec::new(),
                    };
                    // Checked here with stand-ins for the shared values.
                    let stand_ins = keys
                        .iter()
                        .map(|key| (key.clone(), SharedDatabase::stand_in()));
                    let checked = self.render(&name, template, &with_shared(vars, stand_ins))?;
                    if keys.is_empty() {
                        Content::Fixed(checked)
                    } else {
                        reads = keys
                            .iter()
                            .map(|key| (key.clone(), template.span()))
                            .collect();
                        Content::ReadsShared {
                            template: template.get_ref().clone(),
                            vars: vars.clone(),
                            keys,
                        }
                    }
                }
                (Some(_), Some(template)) => {
                    return Err(self.error(
                        template.span(),
                        &name,
                        "has both `content` and `template`: give one",
                    ));
                }
                (None, None) => {
                    return Err(self.error(
                        file.path.span(),
                        &name,
                        "has neither `content` nor `template`: give one",
                    ));
                }
            };
            self.staging.insert(path.parent());
            let job_path = path.clone();
            let id = self.add_path("file", path, false, &file.path, file.deps, move |needs| {
                dojobber::dep(File {
                    path: job_path,
                    content,
                    mode,
                    needs,
                })
            })?;
            self.pending[id].reads = reads;
        }
        Ok(())
    }

    fn add_symlinks(&mut self, raw: Vec<RawSymlink>) -> Result<(), ConfigError> {
        for link in raw {
            let path = self.path("symlink", &link.path)?;
            let target = PathBuf::from(link.target.get_ref());
            if let Err(why) = path.check_link(&target) {
                return Err(self.error(link.target.span(), &format!("symlink {path}"), why));
            }
            self.staging.insert(path.parent());
            let job_path = path.clone();
            self.add_path(
                "symlink",
                path,
                false,
                &link.path,
                link.deps,
                move |needs| {
                    dojobber::dep(Symlink {
                        path: job_path,
                        target,
                        needs,
                    })
                },
            )?;
        }
        Ok(())
    }

    fn add_absents(&mut self, raw: Vec<RawAbsent>) -> Result<(), ConfigError> {
        for absent in raw {
            let path = self.path("absent", &absent.path)?;
            let job_path = path.clone();
            self.add_path(
                "absent",
                path,
                false,
                &absent.path,
                absent.deps,
                move |needs| {
                    dojobber::dep(Absent {
                        path: job_path,
                        needs,
                    })
                },
            )?;
        }
        Ok(())
    }

    /// Resolves the deps the file names and makes the jobs.
    fn finish(mut self) -> Result<Desired, ConfigError> {
        self.resolve_extra_deps()?;
        self.resolve_shared_reads()?;
        let mut jobs = Vec::with_capacity(self.pending.len());
        let mut names = Vec::with_capacity(self.pending.len());
        let mut all_needs = Vec::with_capacity(self.pending.len());
        for pending in self.pending {
            let mut needs = pending.needs;
            let mut seen = std::collections::HashSet::new();
            needs.retain(|&dep| seen.insert(dep));
            all_needs.push(needs.clone());
            let job = (pending.make)(Needs(needs));
            jobs.push(match pending.host {
                Some(host) => dojobber::dep(OnHost { host, job }),
                None => job,
            });
            names.push(pending.name);
        }
        let tops = tops(&all_needs);
        let source = SourceText {
            origin: self.source.origin.to_owned(),
            text: self.source.text.to_owned(),
            hosts: self.hosts,
        };
        Ok(Desired {
            jobs,
            names,
            tops,
            source,
        })
    }

    /// An entry's mode, or the default. TOML reads `644` and `0o644` as
    /// integers alike, so the text decides: only octal is a mode (`644`
    /// would be `0o1204`).
    fn mode(
        &self,
        entry: &str,
        mode: Option<Spanned<Mode>>,
        default: u32,
    ) -> Result<u32, ConfigError> {
        let Some(mode) = mode else {
            return Ok(default);
        };
        let written = self.source.text.get(mode.span()).unwrap_or_default().trim();
        if !written.starts_with("0o") {
            let digits = written.trim_start_matches(['+', '0']);
            let octal = if !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
            {
                digits.to_owned()
            } else {
                format!("{:o}", mode.get_ref().0)
            };
            return Err(self.error(
                mode.span(),
                entry,
                format_args!("mode {written} is not octal: write modes in octal: 0o{octal}"),
            ));
        }
        Ok(mode.into_inner().0)
    }

    fn path(&self, kind: &str, path: &Spanned<String>) -> Result<RelPath, ConfigError> {
        RelPath::parse(path.get_ref())
            .map_err(|why| self.error(path.span(), &format!("{kind} {}", path.get_ref()), why))
    }

    fn render(
        &self,
        name: &str,
        template: &Spanned<String>,
        vars: &minijinja::Value,
    ) -> Result<String, ConfigError> {
        render(template.get_ref(), vars.clone())
            .map_err(|message| self.error(template.span(), name, message))
    }

    /// The line, from 1, of a byte of the file.
    fn line_of(&self, offset: usize) -> usize {
        let text = self.source.text;
        text[..offset.min(text.len())].matches('\n').count() + 1
    }

    fn add(
        &mut self,
        name: String,
        span: Range<usize>,
        needs: Vec<usize>,
        extra: Deps,
        make: Box<dyn FnOnce(Needs) -> JobRef<Provision>>,
    ) -> Result<usize, ConfigError> {
        let name = self.qualified(&name);
        if let Some(&first) = self.by_name.get(&name) {
            let line = self.line_of(self.pending[first].span.start);
            return Err(self.error(
                span,
                &name,
                format_args!("declared twice (first at line {line})"),
            ));
        }
        let id = self.pending.len();
        self.by_name.insert(name.clone(), id);
        self.pending.push(Pending {
            name,
            host: self.host.clone(),
            span,
            needs,
            extra,
            make,
            reads: Vec::new(),
        });
        Ok(id)
    }

    fn add_path(
        &mut self,
        kind: &str,
        path: RelPath,
        is_dir: bool,
        spanned: &Spanned<String>,
        extra: Deps,
        make: impl FnOnce(Needs) -> JobRef<Provision> + 'static,
    ) -> Result<usize, ConfigError> {
        let name = format!("{kind} {path}");
        if let Some(&(first, _)) = self.paths.get(&path) {
            let other = &self.pending[first];
            let line = self.line_of(other.span.start);
            return Err(self.error(
                spanned.span(),
                &name,
                format_args!(
                    "the same path as {} (line {line}): one entry per path",
                    other.name
                ),
            ));
        }
        let id = self.add(name, spanned.span(), Vec::new(), extra, Box::new(make))?;
        self.paths.insert(path, (id, is_dir));
        Ok(id)
    }

    fn database(&mut self, database: RawDatabase) -> Result<(), ConfigError> {
        let path = self.path("database", &database.path)?;
        let name = format!("database {path}");
        let mode = self.mode(&name, database.mode, DEFAULT_FILE_MODE)?;
        let job_path = path.clone();
        let db_id = self.add_path(
            "database",
            path.clone(),
            false,
            &database.path,
            database.deps,
            move |needs| {
                dojobber::dep(Database {
                    path: job_path,
                    mode,
                    needs,
                })
            },
        )?;

        // Every table and seed goes through SQLite once, in memory, so bad
        // SQL is refused before anything runs; nothing in the file can
        // reach a database on disk from there.
        let scratch =
            super::db::scratch().map_err(|error| self.error(database.path.span(), &name, error))?;
        let tables = self.add_tables(&path, db_id, &scratch, database.table)?;
        if let Some(key) = database.share {
            self.add_share(&path, &name, db_id, &tables, key)?;
        }
        self.add_seeds(&path, &scratch, &tables, database.seed)
    }

    /// The tables of the database `path` (entry `db_id`), each created in
    /// the scratch database; their entries by name.
    fn add_tables(
        &mut self,
        path: &RelPath,
        db_id: usize,
        scratch: &rusqlite::Connection,
        raw: Vec<RawTable>,
    ) -> Result<HashMap<String, usize>, ConfigError> {
        let mut tables: HashMap<String, usize> = HashMap::new();
        for table in raw {
            let table_name = table.name.get_ref().clone();
            let job_name = format!("table {table_name}");
            if table_name.is_empty() {
                return Err(self.error(table.name.span(), "table", "has an empty name"));
            }
            if table.columns.get_ref().is_empty() {
                return Err(self.error(table.columns.span(), &job_name, "has no columns"));
            }
            if let Some(&first) = self.by_name.get(&self.qualified(&job_name)) {
                let line = self.line_of(self.pending[first].span.start);
                return Err(self.error(
                    table.name.span(),
                    &job_name,
                    format_args!("declared twice (first at line {line})"),
                ));
            }
            let create = format!(
                "CREATE TABLE {} ({})",
                quote(&table_name),
                table.columns.get_ref().join(", ")
            );
            super::db::create_in_scratch(scratch, &table_name, &create).map_err(|refused| {
                let message = match refused {
                    Refused::NotCreateTable(action) => format!(
                        "columns must only define columns: they make SQLite do {action}, not just create table {table_name:?}"
                    ),
                    Refused::Sql(error) => format!("SQLite refuses its schema: {error}"),
                };
                self.error(table.columns.span(), &job_name, message)
            })?;
            // The schema as SQLite keeps it, to compare with on disk.
            let sql: String = scratch
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [&table_name],
                    |row| row.get(0),
                )
                .map_err(|error| self.error(table.name.span(), &job_name, error))?;
            let job_path = path.clone();
            let job_table = table_name.clone();
            let id = self.add(
                job_name,
                table.name.span(),
                vec![db_id],
                table.deps,
                Box::new(move |needs| {
                    dojobber::dep(Table {
                        database: job_path,
                        name: job_table,
                        sql,
                        needs,
                    })
                }),
            )?;
            tables.insert(table_name, id);
        }
        Ok(tables)
    }

    /// The job that shares where the database is, once its tables are there.
    fn add_share(
        &mut self,
        path: &RelPath,
        name: &str,
        db_id: usize,
        tables: &HashMap<String, usize>,
        key: Spanned<String>,
    ) -> Result<(), ConfigError> {
        let job_key = key.get_ref().clone();
        let job_name = format!("share {job_key}");
        if job_key.is_empty() {
            return Err(self.error(key.span(), name, "share: the key is empty"));
        }
        if let Some(&first) = self.shares.get(&job_key) {
            let line = self.line_of(self.pending[first].span.start);
            return Err(self.error(
                key.span(),
                name,
                format_args!("share: {job_key:?} is shared already (line {line})"),
            ));
        }
        // Shared once every table is there.
        let mut needs = vec![db_id];
        needs.extend(tables.values().copied());
        needs.sort_unstable();
        let job_path = path.clone();
        let id = self.add(
            job_name,
            key.span(),
            needs,
            Vec::new(),
            Box::new(move |needs| {
                dojobber::dep(Share {
                    database: job_path,
                    key: job_key,
                    needs,
                })
            }),
        )?;
        self.shares.insert(key.into_inner(), id);
        Ok(())
    }

    /// The seeds of the database's tables: every row goes into the
    /// scratch database too, and two rows of one seed with one key (the
    /// primary key, or a UNIQUE column) are refused.
    fn add_seeds(
        &mut self,
        path: &RelPath,
        scratch: &rusqlite::Connection,
        tables: &HashMap<String, usize>,
        raw: Vec<RawSeed>,
    ) -> Result<(), ConfigError> {
        for seed in raw {
            let table_name = seed.table.get_ref().clone();
            let job_name = format!("seed {table_name}");
            let Some(&table_id) = tables.get(&table_name) else {
                return Err(self.error(
                    seed.table.span(),
                    &job_name,
                    format_args!("no table named {table_name:?} is declared in the database"),
                ));
            };
            let rows = seed.rows.get_ref();
            if rows.is_empty() {
                return Err(self.error(seed.rows.span(), &job_name, "has no rows"));
            }
            let keys = super::db::keys(scratch, &table_name)
                .map_err(|error| self.error(seed.table.span(), &job_name, error))?;
            // (key, its values as written) -> the first row with them
            let mut seen: HashMap<(usize, String), usize> = HashMap::new();
            for (i, row) in rows.iter().enumerate() {
                if row.is_empty() {
                    return Err(self.error(
                        seed.rows.span(),
                        &job_name,
                        format_args!("row {} has no columns", i + 1),
                    ));
                }
                for (k, key) in keys.iter().enumerate() {
                    let Some(values) = key
                        .iter()
                        .map(|column| row.get(column).map(|value| format!("{column} = {value}")))
                        .collect::<Option<Vec<_>>>()
                    else {
                        continue;
                    };
                    if key.is_empty() {
                        continue;
                    }
                    let values = values.join(", ");
                    if let Some(first) = seen.insert((k, values.clone()), i) {
                        let what = match k {
                            0 => "primary key".to_owned(),
                            _ => format!("UNIQUE ({})", key.join(", ")),
                        };
                        return Err(self.error(
                            seed.rows.span(),
                            &job_name,
                            format_args!(
                                "rows {} and {} both have {values}: one row per {what}",
                                first + 1,
                                i + 1
                            ),
                        ));
                    }
                }
                super::db::insert(scratch, &table_name, row).map_err(|error| {
                    self.error(
                        seed.rows.span(),
                        &job_name,
                        format_args!("SQLite refuses row {}: {error}", i + 1),
                    )
                })?;
            }
            let job_path = path.clone();
            let rows = seed.rows.into_inner();
            self.add(
                job_name,
                seed.table.span(),
                vec![table_id],
                seed.deps,
                Box::new(move |needs| {
                    dojobber::dep(Seed {
                        database: job_path,
                        table: table_name,
                        rows,
                        needs,
                    })
                }),
            )?;
        }
        Ok(())
    }

    /// Every path entry needs the nearest declared directory above it (or
    /// the target), and nothing may be declared inside a non-directory.
    fn check_nesting(&mut self) -> Result<(), ConfigError> {
        let mut needs = Vec::new();
        for (path, &(id, _)) in &self.paths {
            let parent = path
                .ancestors()
                .find_map(|ancestor| self.paths.get(&ancestor).map(|&found| (ancestor, found)));
            match parent {
                None => needs.push((id, self.target)),
                Some((_, (parent, true))) => needs.push((id, parent)),
                Some((ancestor, (parent, false))) => {
                    let entry = &self.pending[id];
                    return Err(self.error(
                        entry.span.clone(),
                        &entry.name,
                        format_args!(
                            "is inside {ancestor}, which is declared as {}, not as a directory",
                            self.pending[parent].name
                        ),
                    ));
                }
            }
        }
        for (id, parent) in needs {
            self.pending[id].needs.insert(0, parent);
        }
        Ok(())
    }

    /// An entry whose template reads `shared.KEY` needs the entry that
    /// shares KEY, on whichever host.
    fn resolve_shared_reads(&mut self) -> Result<(), ConfigError> {
        for id in 0..self.pending.len() {
            for (key, span) in std::mem::take(&mut self.pending[id].reads) {
                let Some(&sharer) = self.shares.get(&key) else {
                    let entry = &self.pending[id];
                    return Err(self.error(
                        span,
                        &entry.name,
                        format_args!(
                            "template: reads shared.{key}, but no database shares {key:?} (`share = {key:?}`)"
                        ),
                    ));
                };
                self.pending[id].needs.push(sharer);
            }
        }
        Ok(())
    }

    fn resolve_extra_deps(&mut self) -> Result<(), ConfigError> {
        for id in 0..self.pending.len() {
            let extra = std::mem::take(&mut self.pending[id].extra);
            for wanted in extra {
                // A job of the entry's own host first, then as written
                // (`db: table users`, a job of another host).
                let own = self.pending[id]
                    .host
                    .as_ref()
                    .and_then(|host| self.by_name.get(&format!("{host}: {}", wanted.get_ref())));
                match own.or_else(|| self.by_name.get(wanted.get_ref())) {
                    Some(&dep) => self.pending[id].needs.push(dep),
                    None => {
                        let entry = &self.pending[id];
                        return Err(self.error(
                            wanted.span(),
                            &entry.name,
                            format_args!(
                                "deps: no entry is named {:?}{}",
                                wanted.get_ref(),
                                self.suggest(wanted.get_ref())
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn suggest(&self, wanted: &str) -> String {
        let wanted = wanted.to_lowercase();
        let best = self
            .pending
            .iter()
            .map(|entry| {
                let score = strsim::jaro_winkler(&wanted, &entry.name.to_lowercase());
                (score, entry.name.as_str())
            })
            .filter(|&(score, _)| score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(a.1)));
        match best {
            Some((_, name)) => format!("; did you mean {name}?"),
            None => String::new(),
        }
    }
}

/// The template variable that holds the run's shared values.
const SHARED_VAR: &str = "shared";

/// Renders a template as every file entry's is: strict about undefined
/// variables, trailing newline kept. The error is one line.
pub(super) fn render(template: &str, vars: minijinja::Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(|error| error.to_string())?;
    env.set_syntax(syntax);
    env.render_str(template, vars).map_err(|error| {
        let mut message = format!("template: {}", error.kind());
        if let Some(detail) = error.detail() {
            message.push_str(": ");
            message.push_str(detail);
        }
        if let Some(line) = error.line() {
            message.push_str(&format!(" (line {line} of the template)"));
        }
        message
    })
}

/// The variables, plus `shared`: the shared values by key.
pub(super) fn with_shared(
    vars: &BTreeMap<String, minijinja::Value>,
    shared: impl IntoIterator<Item = (String, SharedDatabase)>,
) -> minijinja::Value {
    let shared: BTreeMap<String, minijinja::Value> = shared
        .into_iter()
        .map(|(key, value)| {
            let fields = BTreeMap::from([
                ("location", minijinja::Value::from(value.location)),
                ("tables", minijinja::Value::from(value.tables)),
            ]);
            (key, minijinja::Value::from(fields))
        })
        .collect();
    let mut vars = vars.clone();
    if !shared.is_empty() {
        vars.insert(SHARED_VAR.to_owned(), minijinja::Value::from(shared));
    }
    minijinja::Value::from(vars)
}

/// The keys of the shared values a template reads (`shared.KEY.location`),
/// in order; an error when it reads `shared` in another way.
fn shared_keys(template: &str) -> Result<Vec<String>, String> {
    let env = minijinja::Environment::new();
    // A template that does not compile is reported when it is rendered.
    let Ok(compiled) = env.template_from_str(template) else {
        return Ok(Vec::new());
    };
    let mut keys = BTreeSet::new();
    for variable in compiled.undeclared_variables(true) {
        let mut parts = variable.split('.');
        if parts.next() != Some(SHARED_VAR) {
            continue;
        }
        match parts.next() {
            Some(key) => keys.insert(key.to_owned()),
            None => {
                return Err(format!(
                    "template: read shared values as `{SHARED_VAR}.KEY.location` or `{SHARED_VAR}.KEY.tables`"
                ));
            }
        };
    }
    Ok(keys.into_iter().collect())
}

/// The jobs that no other job needs, in order; then any job they do not
/// lead to, which can only be in (or under) a cycle of deps, so that
/// discovery finds and reports it.
fn tops(needs: &[Vec<usize>]) -> Vec<usize> {
    let mut needed = vec![false; needs.len()];
    for &dep in needs.iter().flatten() {
        needed[dep] = true;
    }
    let mut tops: Vec<usize> = (0..needs.len()).filter(|&id| !needed[id]).collect();
    let mut reached = vec![false; needs.len()];
    let mut stack = tops.clone();
    while let Some(id) = stack.pop() {
        if !std::mem::replace(&mut reached[id], true) {
            stack.extend(&needs[id]);
        }
    }
    tops.extend((0..needs.len()).filter(|&id| !reached[id]));
    tops
}

/// An SQL identifier in double quotes, inner quotes doubled.
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_keys_are_what_a_template_reads_under_shared() {
        let template = "a {{ shared.db.location }} {{ shared.db.tables | join(\",\") }} {{ port }} {{ shared.cache.location }}";
        assert_eq!(shared_keys(template).unwrap(), ["cache", "db"]);
        assert_eq!(shared_keys("{{ port }}").unwrap(), Vec::<String>::new());
        assert!(shared_keys("{{ shared }}").is_err());
    }

    #[test]
    fn a_template_renders_the_shared_values_it_reads() {
        let vars = BTreeMap::from([("port".to_owned(), minijinja::Value::from(80))]);
        let shared = SharedDatabase {
            location: "/db/x.db".into(),
            tables: vec!["a".into(), "b".into()],
        };
        let vars = with_shared(&vars, [("db".to_owned(), shared)]);
        let text = render(
            "{{ shared.db.location }} {{ shared.db.tables | join(\",\") }} {{ port }}",
            vars,
        );
        assert_eq!(text.unwrap(), "/db/x.db a,b 80");
    }
}
