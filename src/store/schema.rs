//! Schema, migrations and connection settings of the journal file.
//!
//! The schema version is SQLite's `PRAGMA user_version`. Migration `i` in
//! [`MIGRATIONS`] moves the file from version `i` to `i + 1`. Each runs in
//! its own transaction together with the version bump, so a crash leaves the
//! file at the old or the new version, never in between. Migrations are only
//! ever appended; an applied one is never edited.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::StoreError;

/// How long a connection waits for a lock held by another connection (for
/// example an operator's `sqlite3` shell or a WAL checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, oldest first.
pub(crate) const MIGRATIONS: &[&str] = &[
    // Version 1: journal, agent directory, roster and exceptions.
    //
    // AUTOINCREMENT keeps `seq` and the roster version from ever being
    // reused, even after old rows are deleted, so a seq seen once always
    // names the same entry.
    r#"
    CREATE TABLE journal (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        kind            TEXT    NOT NULL,
        source_kind     TEXT    NOT NULL,
        source          TEXT    NOT NULL,
        source_event_id TEXT,
        agent_ref       TEXT,
        agent_id        TEXT,
        effective_ms    INTEGER NOT NULL,
        source_ms       INTEGER,
        received_ms     INTEGER,
        body            TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX journal_source_event
        ON journal (source, source_event_id) WHERE source_event_id IS NOT NULL;
    CREATE INDEX journal_effective ON journal (effective_ms);

    CREATE TABLE agents (
        id             TEXT PRIMARY KEY,
        display_name   TEXT NOT NULL,
        team           TEXT NOT NULL,
        contract_hours REAL NOT NULL,
        platform_ids   TEXT NOT NULL
    );

    CREATE TABLE roster_versions (
        version         INTEGER PRIMARY KEY AUTOINCREMENT,
        published_at_ms INTEGER NOT NULL,
        published_by    TEXT    NOT NULL,
        comment         TEXT    NOT NULL,
        period_start_ms INTEGER NOT NULL,
        period_end_ms   INTEGER NOT NULL,
        request         TEXT    NOT NULL
    );

    CREATE TABLE roster_current (
        agent_id TEXT    NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms   INTEGER NOT NULL,
        activity TEXT    NOT NULL
    );
    CREATE INDEX roster_current_agent_start ON roster_current (agent_id, start_ms);

    CREATE TABLE exceptions (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id       TEXT    NOT NULL,
        start_ms       INTEGER NOT NULL,
        end_ms         INTEGER NOT NULL,
        reason         TEXT    NOT NULL,
        approved_by    TEXT    NOT NULL,
        approved_at_ms INTEGER NOT NULL
    );
    CREATE INDEX exceptions_start ON exceptions (start_ms);
    "#,
];

/// Schema version this build writes.
pub(crate) fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Settings read back from the writer connection after open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `PRAGMA journal_mode`, `wal` after a successful open.
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 2 is FULL, the only value the journal accepts.
    pub synchronous: i64,
    /// `PRAGMA user_version` after migrations.
    pub schema_version: u32,
}

/// Opens (creating if needed) the file for the writer, sets WAL mode and
/// `synchronous=FULL`, and applies pending migrations.
pub(crate) fn open_writer(path: &Path) -> Result<(Connection, ConnectionSettings), StoreError> {
    let open_error = |source| StoreError::Open { path: path.to_path_buf(), source: Arc::new(source) };

    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;

    // journal_mode is stored in the file; synchronous belongs to the
    // connection and must be set every time.
    let journal_mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(open_error)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Pragma {
            path: path.to_path_buf(),
            pragma: "journal_mode",
            expected: "wal",
            found: journal_mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
    let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0)).map_err(open_error)?;
    if synchronous != 2 {
        return Err(StoreError::Pragma {
            path: path.to_path_buf(),
            pragma: "synchronous",
            expected: "2 (FULL)",
            found: synchronous.to_string(),
        });
    }

    let schema_version = migrate(&mut conn, path)?;
    let settings = ConnectionSettings { journal_mode: journal_mode.to_ascii_lowercase(), synchronous, schema_version };
    Ok((conn, settings))
}

/// Opens a read-only connection. WAL lets it read while the writer commits.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open { path: path.to_path_buf(), source: Arc::new(source) };

    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// Applies every migration the file has not seen yet and returns the
/// resulting schema version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StoreError> {
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|source| StoreError::Open { path: path.to_path_buf(), source: Arc::new(source) })?;
    let latest = latest_version();
    if found > latest {
        return Err(StoreError::SchemaTooNew { path: path.to_path_buf(), found, supported: latest });
    }

    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let migrate_error =
            |source| StoreError::Migrate { path: path.to_path_buf(), version, source: Arc::new(source) };

        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(migrate_error)?;
        tx.execute_batch(sql).map_err(migrate_error)?;
        tx.pragma_update(None, "user_version", version).map_err(migrate_error)?;
        tx.commit().map_err(migrate_error)?;

        tracing::info!(path = %path.display(), from = version - 1, to = version, "journal schema migrated");
    }
    Ok(latest)
}
