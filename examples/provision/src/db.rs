//! The jobs for the SQLite database: the file, each table, each seed set.
//! Checks open the database read-only; runs never drop a table or a row
//! that they did not put there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dojobber::{JobResult, bail};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use super::beneath::{self, Root, stat_at};
use super::config::{Scalar, quote};
use super::fault::{self, Kind};
use super::jobs::{Needs, check_mode, entry_job, open_root, os, set_mode};
use super::paths::RelPath;

/// How long a connection waits for another one's lock before giving up:
/// jobs of one run may write one database at once (`-j`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to a database beneath the target, and the target's
/// handle that the database's name refers to ([`super::vfs`]): the
/// connection is dropped first.
pub(super) struct Db {
    connection: Connection,
    _root: Root,
}

impl std::ops::Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl std::ops::DerefMut for Db {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

/// Opens the database at `path` under `root` to look at it: read-only,
/// never creating it.
fn open_to_read(path: &RelPath, root: &Path) -> anyhow::Result<Db> {
    open(path, root, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// Opens the database to change it; it must exist already (the database
/// job makes it). Its first read rolls back a hot journal.
fn open_to_write(path: &RelPath, root: &Path) -> anyhow::Result<Db> {
    open(path, root, OpenFlags::SQLITE_OPEN_READ_WRITE)
}

/// Opens the database beneath the target's handle: SQLite reaches it and
/// its journal only through the handle, never through a symlink, and
/// refuses a file with other names (hard links).
fn open(path: &RelPath, root: &Path, flags: OpenFlags) -> anyhow::Result<Db> {
    let root = open_root(root)?;
    check_companions(path, &root)?;
    super::vfs::install()?;
    let cannot_open = |error| anyhow::anyhow!("cannot open database {path}: {error}");
    let name = super::vfs::name(root.fd(), path);
    let connection = Connection::open_with_flags(name, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(cannot_open)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(cannot_open)?;
    if fault::database_armed() {
        connection
            .pragma_update(None, "synchronous", "OFF")
            .map_err(cannot_open)?;
    }
    Ok(Db {
        connection,
        _root: root,
    })
}

/// The files SQLite keeps beside a database.
const COMPANIONS: [&str; 3] = ["-journal", "-wal", "-shm"];

/// Fails when a file SQLite keeps beside the database (its journal) is
/// there but is not a regular file: SQLite would not open it (it follows
/// no symlink here), and the error would only say it cannot read the
/// database.
fn check_companions(path: &RelPath, root: &Root) -> JobResult {
    let Some(parent) = root.parent_of(path)? else {
        return Ok(());
    };
    for suffix in COMPANIONS {
        let name = format!("{}{suffix}", path.name());
        let found = os(stat_at(&parent, &name), || {
            format!("cannot inspect {path}{suffix}")
        })?;
        if let Some(found) = found
            && !found.is_file()
        {
            bail!(
                "{path}{suffix} is {}, not SQLite's file: not opening the database through it; remove it",
                found.describe()
            );
        }
    }
    Ok(())
}

/// A transaction that takes the write lock at its start. A deferred one
/// would read first and then ask for the write lock, and SQLite answers
/// "database is locked" at once, without the busy timeout, when another
/// connection (a job of the same run under `-j`) is writing: two readers
/// that both want to write would wait on each other for ever.
fn write_transaction(connection: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    connection.transaction_with_behavior(TransactionBehavior::Immediate)
}

/// Whether SQLite can read the file as a database: it reads the schema.
fn readable(connection: &Connection) -> rusqlite::Result<()> {
    connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
}

/// Whether a read-only connection failed because a write was interrupted
/// (`kill -9`, a power cut) and left a hot journal, which only a
/// read-write connection can roll back.
fn hot_journal(error: &rusqlite::Error) -> bool {
    error.sqlite_error().is_some_and(|error| {
        error.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK
            || error.extended_code == rusqlite::ffi::SQLITE_READONLY_RECOVERY
    })
}

/// The SQLite database file, with a mode.
#[derive(Debug)]
pub struct Database {
    pub(super) path: RelPath,
    pub(super) mode: u32,
    pub(super) needs: Needs,
}

impl Database {
    fn label(&self) -> String {
        format!("database {}", self.path)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        let found = match open_root(root)?.look(&self.path)? {
            None => bail!("{} is missing", self.path),
            Some(found) if !found.is_file() => {
                bail!("{} is {}, not a database file", self.path, found.describe())
            }
            Some(found) => found,
        };
        if found.links > 1 {
            bail!("{}", self.shared_by_links(found.links));
        }
        let connection = open_to_read(&self.path, root)?;
        match readable(&connection) {
            Ok(()) => {}
            Err(error) if hot_journal(&error) => bail!(
                "{} has a hot journal: a write was interrupted, and the run rolls it back",
                self.path
            ),
            Err(error) => bail!("{} is not a SQLite database: {error}", self.path),
        }
        check_mode(&self.path, &found, self.mode)
    }
    fn shared_by_links(&self, links: u64) -> String {
        format!(
            "{} has {links} hard links: not writing a database that other paths (maybe outside the target) share",
            self.path
        )
    }
    fn converge(&self, root: &Path) -> JobResult {
        let handle = open_root(root)?;
        let parent = handle.make_parent(&self.path)?;
        let name = self.path.name();
        match os(stat_at(&parent, name), || {
            format!("cannot inspect {}", self.path)
        })? {
            None => self.create(root)?,
            Some(found) if !found.is_file() => bail!(
                "{} is {}: not replacing it with a database",
                self.path,
                found.describe()
            ),
            Some(found) if found.links > 1 => bail!("{}", self.shared_by_links(found.links)),
            Some(_) => {
                // Read-write, so that SQLite rolls back a hot journal.
                let connection = open_to_write(&self.path, root)?;
                if let Err(error) = readable(&connection) {
                    bail!(
                        "{} exists and is not a SQLite database ({error}): not replacing it",
                        self.path
                    );
                }
            }
        }
        // The mode is set through a handle on the file just checked.
        let cannot = || format!("cannot set the mode of {}", self.path);
        let Some((file, found)) = os(beneath::open_file(&parent, name), cannot)? else {
            bail!("{} is no longer a file", self.path);
        };
        set_mode(&self.path, &file, &found, self.mode)
    }
    /// Makes a new, empty database.
    fn create(&self, root: &Path) -> JobResult {
        let cannot_create =
            |error| anyhow::anyhow!("cannot create database {}: {error}", self.path);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let connection = open(&self.path, root, flags)?;
        fault::point(Kind::Database);
        // SQLite writes the file only when there is something to
        // write: its header, with the schema version.
        connection
            .execute_batch("PRAGMA user_version = 0; VACUUM;")
            .map_err(cannot_create)?;
        fault::point(Kind::Database);
        Ok(())
    }
}
entry_job!(Database);

/// A table with the schema the file gives.
#[derive(Debug)]
pub struct Table {
    pub(super) database: RelPath,
    pub(super) name: String,
    /// The `CREATE TABLE` statement as SQLite keeps it.
    pub(super) sql: String,
    pub(super) needs: Needs,
}

impl Table {
    fn label(&self) -> String {
        format!("table {}", self.name)
    }
    /// The table's schema in the database, `None` when it has no such table.
    fn schema(&self, connection: &Connection) -> anyhow::Result<Option<String>> {
        connection
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&self.name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|error| {
                anyhow::anyhow!("cannot read the schema of {}: {error}", self.database)
            })
    }
    fn inspect(&self, root: &Path) -> JobResult {
        let connection = open_to_read(&self.database, root)?;
        match self.schema(&connection)? {
            None => bail!("table {} is missing", self.name),
            Some(sql) if sql != self.sql => {
                bail!("table {} has another schema: {sql}", self.name)
            }
            Some(_) => Ok(()),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let mut connection = open_to_write(&self.database, root)?;
        match self.schema(&connection)? {
            None => {
                let cannot_create =
                    |error| anyhow::anyhow!("cannot create table {}: {error}", self.name);
                let transaction = write_transaction(&mut connection).map_err(cannot_create)?;
                // One statement: the file's check made sure `sql` is one
                // `CREATE TABLE` of this table and nothing else.
                transaction.execute(&self.sql, []).map_err(cannot_create)?;
                fault::point(Kind::Database);
                transaction.commit().map_err(cannot_create)
            }
            Some(sql) if sql != self.sql => bail!(
                "table {} exists with another schema ({sql}): not dropping its rows; migrate it by hand",
                self.name
            ),
            Some(_) => Ok(()),
        }
    }
}
entry_job!(Table);

/// Rows that must be in a table. Other rows may be there too. A seed
/// inserts its rows, or updates the row with the same primary key (its
/// own); it never replaces a row that only shares a UNIQUE value with it.
#[derive(Debug)]
pub struct Seed {
    pub(super) database: RelPath,
    pub(super) table: String,
    pub(super) rows: Vec<BTreeMap<String, Scalar>>,
    pub(super) needs: Needs,
}

/// What writing one seed row takes.
enum Write {
    /// No row has its key: a new row.
    Insert,
    /// The row with its primary key (these values) is the seed's: update it.
    Update(Vec<(String, Value)>),
    /// Another row has one of its UNIQUE values: the job fails, saying so.
    Conflict(String),
}

impl Seed {
    fn label(&self) -> String {
        format!("seed {}", self.table)
    }
    /// The rows not in the table, by their position (from 0).
    fn missing(&self, connection: &Connection) -> anyhow::Result<Vec<usize>> {
        let mut missing = Vec::new();
        for (i, row) in self.rows.iter().enumerate() {
            let present = row_present(connection, &self.table, row)
                .map_err(|error| anyhow::anyhow!("cannot read table {}: {error}", self.table))?;
            if !present {
                missing.push(i);
            }
        }
        Ok(missing)
    }
    /// How each missing row gets in, by position.
    fn plan(&self, connection: &Connection) -> anyhow::Result<Vec<(usize, Write)>> {
        let cannot_read = |error| anyhow::anyhow!("cannot read table {}: {error}", self.table);
        let keys = keys(connection, &self.table).map_err(cannot_read)?;
        let mut writes = Vec::new();
        for i in self.missing(connection)? {
            let write =
                plan_row(connection, &self.table, &keys, i, &self.rows[i]).map_err(cannot_read)?;
            writes.push((i, write));
        }
        Ok(writes)
    }
    fn inspect(&self, root: &Path) -> JobResult {
        let connection = open_to_read(&self.database, root)?;
        let writes = self.plan(&connection)?;
        if let Some((_, Write::Conflict(why))) = writes
            .iter()
            .find(|(_, write)| matches!(write, Write::Conflict(_)))
        {
            bail!("{why}");
        }
        match writes.as_slice() {
            [] => Ok(()),
            [(row, _)] => bail!(
                "table {} lacks row {}: {}",
                self.table,
                row + 1,
                show(&self.rows[*row])
            ),
            rows => bail!(
                "table {} lacks {} of its {} seed rows",
                self.table,
                rows.len(),
                self.rows.len()
            ),
        }
    }
    fn converge(&self, root: &Path) -> JobResult {
        let mut connection = open_to_write(&self.database, root)?;
        let cannot_write = |error| anyhow::anyhow!("cannot write table {}: {error}", self.table);
        let transaction = write_transaction(&mut connection).map_err(cannot_write)?;
        for (i, write) in self.plan(&transaction)? {
            let row = &self.rows[i];
            let written = match write {
                Write::Insert => insert(&transaction, &self.table, row),
                Write::Update(key) => update(&transaction, &self.table, &key, row),
                // Dropping the transaction rolls back what this run wrote.
                Write::Conflict(why) => bail!("{why}"),
            };
            written.map_err(|error| {
                anyhow::anyhow!("cannot write row {} into {}: {error}", i + 1, self.table)
            })?;
            fault::point(Kind::Database);
        }
        transaction.commit().map_err(cannot_write)
    }
}
entry_job!(Seed);

/// `id = 1, name = "wendell"`.
fn show(row: &BTreeMap<String, Scalar>) -> String {
    row.iter()
        .map(|(column, value)| format!("{column} = {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `id = 5`, a row of the table by its key.
fn show_key(key: &[(String, Value)]) -> String {
    key.iter()
        .map(|(column, value)| match value {
            Value::Text(text) => format!("{column} = {text:?}"),
            Value::Integer(n) => format!("{column} = {n}"),
            Value::Real(x) => format!("{column} = {x}"),
            Value::Null => format!("{column} = NULL"),
            Value::Blob(bytes) => format!("{column} = a blob of {} bytes", bytes.len()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column sets that tell the rows of a table apart: its primary key
/// first (empty when it has none), then each UNIQUE constraint.
pub(super) fn keys(connection: &Connection, table: &str) -> rusqlite::Result<Vec<Vec<String>>> {
    let columns = |sql: &str, arg: &str| -> rusqlite::Result<Vec<String>> {
        let mut query = connection.prepare(sql)?;
        let names = query.query_map([arg], |row| row.get::<_, Option<String>>(0))?;
        // An expression in an index has no name: no seed row gives it.
        Ok(names
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect())
    };
    let mut keys = vec![columns(
        "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
        table,
    )?];
    let indexes = columns(
        "SELECT name FROM pragma_index_list(?1) WHERE \"unique\" AND origin <> 'pk'",
        table,
    )?;
    for index in indexes {
        keys.push(columns(
            "SELECT name FROM pragma_index_info(?1) ORDER BY seqno",
            &index,
        )?);
    }
    Ok(keys)
}

/// The key of the row whose `columns` have the seed row's values, if any.
fn row_with(
    connection: &Connection,
    table: &str,
    primary: &[String],
    columns: &[String],
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<Option<Vec<(String, Value)>>> {
    let shown: Vec<String> = if primary.is_empty() {
        vec!["rowid".to_owned()]
    } else {
        primary.to_vec()
    };
    let selected: Vec<String> = shown.iter().map(|column| quote(column)).collect();
    let condition: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{} IS ?{}", quote(column), i + 1))
        .collect();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} LIMIT 1",
        selected.join(", "),
        quote(table),
        condition.join(" AND ")
    );
    let values = columns.iter().map(|column| &row[column]);
    connection
        .query_row(&sql, rusqlite::params_from_iter(values), |found| {
            (0..shown.len())
                .map(|i| Ok((shown[i].clone(), found.get::<_, Value>(i)?)))
                .collect()
        })
        .optional()
}

/// Whether a missing seed row is inserted, updates its own row (the one
/// with its primary key), or would take the place of a row that is not
/// its own (one with the same UNIQUE value).
fn plan_row(
    connection: &Connection,
    table: &str,
    keys: &[Vec<String>],
    index: usize,
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<Write> {
    let primary = &keys[0];
    let given = |key: &[String]| !key.is_empty() && key.iter().all(|c| row.contains_key(c));
    let own = match given(primary) {
        true => row_with(connection, table, primary, primary, row)?,
        false => None,
    };
    for key in &keys[1..] {
        if !given(key) {
            continue;
        }
        match row_with(connection, table, primary, key, row)? {
            Some(other) if Some(&other) != own.as_ref() => {
                return Ok(Write::Conflict(format!(
                    "seed row {} of table {table} ({}) has the UNIQUE {} of the row {}, which the seed does not own: not replacing it",
                    index + 1,
                    show(row),
                    key.join(", "),
                    show_key(&other)
                )));
            }
            _ => {}
        }
    }
    Ok(match own {
        Some(key) => Write::Update(key),
        None => Write::Insert,
    })
}

/// Whether a row with exactly these values (`IS`, so NULL-safe) is there.
fn row_present(
    connection: &Connection,
    table: &str,
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<bool> {
    let condition: Vec<String> = row
        .keys()
        .enumerate()
        .map(|(i, column)| format!("{} IS ?{}", quote(column), i + 1))
        .collect();
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM {} WHERE {})",
        quote(table),
        condition.join(" AND ")
    );
    connection.query_row(&sql, rusqlite::params_from_iter(row.values()), |found| {
        found.get(0)
    })
}

/// Inserts a row. A plain `INSERT`: a row with the same key is never
/// replaced (`OR REPLACE` would delete it), the constraint fails instead.
pub(super) fn insert(
    connection: &Connection,
    table: &str,
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<()> {
    let columns: Vec<String> = row.keys().map(|column| quote(column)).collect();
    let values: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(table),
        columns.join(", "),
        values.join(", ")
    );
    connection.execute(&sql, rusqlite::params_from_iter(row.values()))?;
    Ok(())
}

/// Gives the seed's own row (found by `key`) the seed row's values.
fn update(
    connection: &Connection,
    table: &str,
    key: &[(String, Value)],
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<()> {
    let set: Vec<String> = row
        .keys()
        .enumerate()
        .map(|(i, column)| format!("{} = ?{}", quote(column), i + 1))
        .collect();
    let condition: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, (column, _))| format!("{} IS ?{}", quote(column), row.len() + i + 1))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE {}",
        quote(table),
        set.join(", "),
        condition.join(" AND ")
    );
    let values: Vec<&dyn rusqlite::ToSql> = row
        .values()
        .map(|value| value as &dyn rusqlite::ToSql)
        .chain(key.iter().map(|(_, value)| value as &dyn rusqlite::ToSql))
        .collect();
    connection.execute(&sql, values.as_slice())?;
    Ok(())
}

/// An in-memory database to try the file's SQL on while the file is
/// checked. It can attach no other database.
pub(super) fn scratch() -> rusqlite::Result<Connection> {
    let scratch = Connection::open_in_memory()?;
    scratch.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    // Which rows a seed refers to is a matter of order, which deps decide
    // at run time.
    scratch.execute_batch("PRAGMA foreign_keys = OFF")?;
    Ok(scratch)
}

/// Why a table's SQL was refused.
#[derive(Debug)]
pub(super) enum Refused {
    /// It is (or contains) something other than creating the table.
    NotCreateTable(String),
    /// SQLite's compiler refuses it.
    Sql(rusqlite::Error),
}

/// Creates the table in the scratch database, if `sql` is exactly one
/// `CREATE TABLE` of `table` in the main database. SQLite's own compiler
/// is the judge: while the statement is prepared, an authorizer denies
/// every action but creating that table (and writing its row of the
/// schema), so whatever the columns hide (a second statement, `ATTACH`,
/// `PRAGMA`, a temp table, a `SELECT`) fails to compile and never runs.
pub(super) fn create_in_scratch(
    scratch: &Connection,
    table: &str,
    sql: &str,
) -> Result<(), Refused> {
    let denied: Arc<Mutex<Option<String>>> = Arc::default();
    let first_denied = Arc::clone(&denied);
    let table = table.to_owned();
    let allow_only_create = move |cx: AuthContext<'_>| {
        let main = cx.database_name == Some("main");
        let allowed = match cx.action {
            // `AUTOINCREMENT` makes SQLite's own counter table with it.
            AuthAction::CreateTable { table_name } => {
                main && (table_name == table || table_name == "sqlite_sequence")
            }
            // The index of a UNIQUE or PRIMARY KEY constraint.
            AuthAction::CreateIndex { table_name, .. } => main && table_name == table,
            // Its row of the schema; a CHECK constraint reads its columns.
            AuthAction::Insert { table_name } | AuthAction::Update { table_name, .. } => {
                main && table_name == "sqlite_master"
            }
            AuthAction::Read { table_name, .. } => {
                main && (table_name == "sqlite_master" || table_name == table)
            }
            // SQLite's own functions in CHECK and DEFAULT: the scratch
            // database has no others, and cannot load any.
            AuthAction::Function { .. } => true,
            _ => false,
        };
        if allowed {
            return Authorization::Allow;
        }
        if let Ok(mut denied) = first_denied.lock() {
            denied.get_or_insert_with(|| action_text(&cx));
        }
        Authorization::Deny
    };
    scratch
        .authorizer(Some(allow_only_create))
        .map_err(Refused::Sql)?;
    let compiled = scratch.prepare(sql).map_err(Refused::Sql);
    let denied = denied
        .lock()
        .map(|denied| denied.clone())
        .unwrap_or_default();
    let result = match (compiled, denied) {
        (_, Some(action)) => Err(Refused::NotCreateTable(action)),
        (Err(error), None) => Err(error),
        (Ok(mut statement), None) => statement.execute([]).map(drop).map_err(Refused::Sql),
    };
    scratch
        .authorizer(None::<fn(AuthContext<'_>) -> Authorization>)
        .map_err(Refused::Sql)?;
    result
}

/// What SQLite was asked to do, for the error: `ATTACH "../outside.db"`.
fn action_text(cx: &AuthContext<'_>) -> String {
    let in_db = cx
        .database_name
        .map(|name| format!(" in database {name:?}"))
        .unwrap_or_default();
    match cx.action {
        AuthAction::Attach { filename } => format!("ATTACH {filename:?}"),
        AuthAction::Detach { database_name } => format!("DETACH {database_name:?}"),
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => match pragma_value {
            Some(value) => format!("PRAGMA {pragma_name} = {value}"),
            None => format!("PRAGMA {pragma_name}"),
        },
        AuthAction::Delete { table_name } => format!("DELETE FROM {table_name:?}{in_db}"),
        AuthAction::Insert { table_name } => format!("INSERT INTO {table_name:?}{in_db}"),
        AuthAction::Update {
            table_name,
            column_name,
        } => format!("UPDATE {table_name:?} SET {column_name:?}{in_db}"),
        AuthAction::Read { table_name, .. } => format!("a read of {table_name:?}{in_db}"),
        AuthAction::Select => "a SELECT".to_owned(),
        AuthAction::CreateTable { table_name } => {
            format!("CREATE TABLE {table_name:?}{in_db}")
        }
        AuthAction::CreateTempTable { table_name } => format!("CREATE TEMP TABLE {table_name:?}"),
        AuthAction::Function { function_name } => format!("a call of {function_name}()"),
        ref other => format!("{other:?}{in_db}"),
    }
}

/// What a database's `share` puts into the run's shared values: where the
/// database is on its host, and its tables. Templates read it as
/// `shared.KEY.location` and `shared.KEY.tables`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SharedDatabase {
    /// The database file's absolute path on its host.
    pub location: String,
    /// Its tables' names, sorted.
    pub tables: Vec<String>,
}

impl SharedDatabase {
    /// What a template is checked with before any run.
    pub(super) fn stand_in() -> SharedDatabase {
        SharedDatabase {
            location: String::new(),
            tables: Vec::new(),
        }
    }
}

/// Tells the run where a database is and which tables it has: under a
/// key of the run's shared values (`cx.global().insert_shared`), which
/// another host's jobs read. The run's shared values start empty, so its
/// check looks at the database and shares what it finds, each run; that
/// changes nothing on disk, and a second run still passes every check.
#[derive(Debug)]
pub struct Share {
    pub(super) database: RelPath,
    pub(super) key: String,
    pub(super) needs: Needs,
}

impl Share {
    fn label(&self) -> String {
        format!("share {}", self.key)
    }
}

impl dojobber::Job<super::Provision> for Share {
    fn name(&self) -> String {
        self.label()
    }
    fn deps(&self, args: &super::Provision) -> Vec<dojobber::JobRef<super::Provision>> {
        self.needs.jobs(args)
    }
    fn check(&self, cx: &mut dojobber::Context<'_, super::Provision>) -> JobResult {
        let root = cx.args().target();
        let connection = open_to_read(&self.database, root)?;
        let tables = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
            .and_then(|mut query| {
                query
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|error| {
                anyhow::anyhow!("cannot read the tables of {}: {error}", self.database)
            })?;
        let location = root.join(self.database.to_string());
        let shared = SharedDatabase {
            location: location.display().to_string(),
            tables,
        };
        cx.global().insert_shared(&self.key, &shared)?;
        Ok(())
    }
    /// Nothing on disk is its own: the recheck shares again.
    fn run(&self, _cx: &mut dojobber::Context<'_, super::Provision>) -> JobResult {
        Ok(())
    }
}
