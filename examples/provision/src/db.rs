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
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use super::config::{Scalar, quote};
use super::fault::{self, Kind};
use super::jobs::{Needs, check_mode, entry_job, make_parent, os, set_mode};
use super::paths::{RelPath, describe, inspect};

/// How long a connection waits for another one's lock before giving up:
/// jobs of one run may write one database at once (`-j`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens the database at `path` under `root` to look at it: read-only,
/// never creating it.
fn open_to_read(path: &RelPath, root: &Path) -> anyhow::Result<Connection> {
    open(path, root, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// Opens the database to change it; it must exist already (the database
/// job makes it). Its first read rolls back a hot journal.
fn open_to_write(path: &RelPath, root: &Path) -> anyhow::Result<Connection> {
    open(path, root, OpenFlags::SQLITE_OPEN_READ_WRITE)
}

fn open(path: &RelPath, root: &Path, flags: OpenFlags) -> anyhow::Result<Connection> {
    let at = path.locate(root)?;
    let cannot_open = |error| anyhow::anyhow!("cannot open database {path}: {error}");
    let connection = Connection::open_with_flags(at, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(cannot_open)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(cannot_open)?;
    if fault::database_armed() {
        connection
            .pragma_update(None, "synchronous", "OFF")
            .map_err(cannot_open)?;
    }
    Ok(connection)
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
        let at = self.path.locate(root)?;
        let meta = match os(inspect(&at), || format!("cannot inspect {}", self.path))? {
            None => bail!("{} is missing", self.path),
            Some(meta) if !meta.is_file() => {
                bail!("{} is {}, not a database file", self.path, describe(&meta))
            }
            Some(meta) => meta,
        };
        let connection = open_to_read(&self.path, root)?;
        match readable(&connection) {
            Ok(()) => {}
            Err(error) if hot_journal(&error) => bail!(
                "{} has a hot journal: a write was interrupted, and the run rolls it back",
                self.path
            ),
            Err(error) => bail!("{} is not a SQLite database: {error}", self.path),
        }
        check_mode(&self.path, &meta, self.mode)
    }
    fn converge(&self, root: &Path) -> JobResult {
        let at = self.path.locate(root)?;
        match os(inspect(&at), || format!("cannot inspect {}", self.path))? {
            None => {
                make_parent(&at)?;
                let connection = Connection::open(&at).map_err(|error| {
                    anyhow::anyhow!("cannot create database {}: {error}", self.path)
                })?;
                fault::point(Kind::Database);
                // SQLite writes the file only when there is something to
                // write: its header, with the schema version.
                connection
                    .execute_batch("PRAGMA user_version = 0; VACUUM;")
                    .map_err(|error| {
                        anyhow::anyhow!("cannot create database {}: {error}", self.path)
                    })?;
                fault::point(Kind::Database);
            }
            Some(meta) if !meta.is_file() => bail!(
                "{} is {}: not replacing it with a database",
                self.path,
                describe(&meta)
            ),
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
        set_mode(&at, self.mode)
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

/// Rows that must be in a table. Other rows may be there too.
#[derive(Debug)]
pub struct Seed {
    pub(super) database: RelPath,
    pub(super) table: String,
    pub(super) rows: Vec<BTreeMap<String, Scalar>>,
    pub(super) needs: Needs,
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
    fn inspect(&self, root: &Path) -> JobResult {
        let connection = open_to_read(&self.database, root)?;
        let missing = self.missing(&connection)?;
        match missing.as_slice() {
            [] => Ok(()),
            [row] => bail!(
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
        let transaction = write_transaction(&mut connection)
            .map_err(|error| anyhow::anyhow!("cannot write table {}: {error}", self.table))?;
        for i in self.missing(&transaction)? {
            insert(&transaction, &self.table, &self.rows[i]).map_err(|error| {
                anyhow::anyhow!("cannot insert row {} into {}: {error}", i + 1, self.table)
            })?;
            fault::point(Kind::Database);
        }
        transaction
            .commit()
            .map_err(|error| anyhow::anyhow!("cannot write table {}: {error}", self.table))
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

/// Inserts a row; one with the same key is replaced, so that a seed row
/// whose other values changed converges too.
pub(super) fn insert(
    connection: &Connection,
    table: &str,
    row: &BTreeMap<String, Scalar>,
) -> rusqlite::Result<()> {
    let columns: Vec<String> = row.keys().map(|column| quote(column)).collect();
    let values: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT OR REPLACE INTO {} ({}) VALUES ({})",
        quote(table),
        columns.join(", "),
        values.join(", ")
    );
    connection.execute(&sql, rusqlite::params_from_iter(row.values()))?;
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
            AuthAction::CreateTable { table_name } => main && table_name == table,
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
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .and_then(|mut query| {
                query
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|error| {
                anyhow::anyhow!("cannot read the tables of {}: {error}", self.database)
            })?;
        let location = self.database.locate(root)?;
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
