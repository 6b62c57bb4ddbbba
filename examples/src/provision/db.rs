//! The jobs for the SQLite database: the file, each table, each seed set.
//! Checks open the database read-only; runs never drop a table or a row
//! that they did not put there.

use std::collections::BTreeMap;
use std::path::Path;

use dojobber::{JobResult, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::config::{Scalar, quote};
use super::jobs::{Needs, check_mode, entry_job, make_parent, os, set_mode};
use super::paths::{RelPath, describe, inspect};

/// Opens the database at `path` under `root` to look at it: read-only,
/// never creating it.
fn open_to_read(path: &RelPath, root: &Path) -> anyhow::Result<Connection> {
    let at = path.locate(root)?;
    Connection::open_with_flags(
        at,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| anyhow::anyhow!("cannot open database {path}: {error}"))
}

/// Opens the database to change it; it must exist already (the database
/// job makes it).
fn open_to_write(path: &RelPath, root: &Path) -> anyhow::Result<Connection> {
    let at = path.locate(root)?;
    Connection::open_with_flags(
        at,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|error| anyhow::anyhow!("cannot open database {path}: {error}"))
}

/// Whether SQLite can read the file as a database: it reads the schema.
fn readable(connection: &Connection) -> rusqlite::Result<()> {
    connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
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
        if let Err(error) = readable(&connection) {
            bail!("{} is not a SQLite database: {error}", self.path);
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
                // SQLite writes the file only when there is something to
                // write: its header, with the schema version.
                connection
                    .execute_batch("PRAGMA user_version = 0; VACUUM;")
                    .map_err(|error| {
                        anyhow::anyhow!("cannot create database {}: {error}", self.path)
                    })?;
            }
            Some(meta) if !meta.is_file() => bail!(
                "{} is {}: not replacing it with a database",
                self.path,
                describe(&meta)
            ),
            Some(_) => {
                let connection = open_to_read(&self.path, root)?;
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
        let connection = open_to_write(&self.database, root)?;
        match self.schema(&connection)? {
            None => connection
                .execute_batch(&self.sql)
                .map_err(|error| anyhow::anyhow!("cannot create table {}: {error}", self.name)),
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
        let transaction = connection
            .transaction()
            .map_err(|error| anyhow::anyhow!("cannot write table {}: {error}", self.table))?;
        for i in self.missing(&transaction)? {
            insert(&transaction, &self.table, &self.rows[i]).map_err(|error| {
                anyhow::anyhow!("cannot insert row {} into {}: {error}", i + 1, self.table)
            })?;
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
