//! Queries on the read-only connection.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use rusqlite::{Connection, params};

use super::codec::{JOURNAL_COLUMNS, StoredJournalRow, millis, parse_activity, timestamp};
use super::{ExceptionRecord, JournalEntry, RosterSnapshot, RosterVersionRecord, RosterVersionSummary, StoreError};
use crate::domain::{Agent, ScheduledActivity};

fn read_error<'a>(path: &'a Path, operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + 'a {
    move |source| StoreError::Read { path: path.to_path_buf(), operation, source: Arc::new(source) }
}

/// Calls `f` for every entry with an effective time at or after `from`, in
/// sequence order, and returns how many there were.
pub(crate) fn for_each_since(
    conn: &Connection,
    path: &Path,
    from: Timestamp,
    mut f: impl FnMut(u64, JournalEntry),
) -> Result<usize, StoreError> {
    let error = read_error(path, "journal replay");
    let sql = format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE effective_ms >= ?1 ORDER BY seq");
    let mut select = conn.prepare_cached(&sql).map_err(&error)?;
    let mut rows = select.query(params![millis(from)]).map_err(&error)?;

    let mut count = 0;
    while let Some(row) = rows.next().map_err(&error)? {
        let (seq, entry) = StoredJournalRow::from_row(row).map_err(&error)?.decode(path)?;
        f(seq, entry);
        count += 1;
    }
    Ok(count)
}

/// Returns up to `limit` entries with an effective time at or after `from`
/// and a sequence number above `after_seq`, in sequence order.
pub(crate) fn read_page(
    conn: &Connection,
    path: &Path,
    from: Timestamp,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, JournalEntry)>, StoreError> {
    let error = read_error(path, "journal page read");
    let sql =
        format!("SELECT {JOURNAL_COLUMNS} FROM journal WHERE effective_ms >= ?1 AND seq > ?2 ORDER BY seq LIMIT ?3");
    let mut select = conn.prepare_cached(&sql).map_err(&error)?;
    // Values beyond i64::MAX cannot be stored, so clamping keeps the meaning.
    let after_seq = i64::try_from(after_seq).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = select.query(params![millis(from), after_seq, limit]).map_err(&error)?;

    let mut page = Vec::new();
    while let Some(row) = rows.next().map_err(&error)? {
        page.push(StoredJournalRow::from_row(row).map_err(&error)?.decode(path)?);
    }
    Ok(page)
}

pub(crate) fn load_agents(conn: &Connection, path: &Path) -> Result<Vec<Agent>, StoreError> {
    let error = read_error(path, "agent directory read");
    let mut select = conn
        .prepare_cached("SELECT rowid, id, display_name, team, contract_hours, platform_ids FROM agents ORDER BY id")
        .map_err(&error)?;
    let mut rows = select.query([]).map_err(&error)?;

    let mut agents = Vec::new();
    while let Some(row) = rows.next().map_err(&error)? {
        let rowid: i64 = row.get(0).map_err(&error)?;
        let platform_ids: String = row.get(5).map_err(&error)?;
        let platform_ids = serde_json::from_str(&platform_ids).map_err(|json| StoreError::Corrupt {
            path: path.to_path_buf(),
            table: "agents",
            row: rowid,
            detail: format!("platform_ids is not a JSON list of strings: {json}"),
        })?;
        agents.push(Agent {
            id: row.get(1).map_err(&error)?,
            display_name: row.get(2).map_err(&error)?,
            team: row.get(3).map_err(&error)?,
            contract_hours: row.get(4).map_err(&error)?,
            platform_ids,
        });
    }
    Ok(agents)
}

pub(crate) fn load_roster(conn: &Connection, path: &Path) -> Result<RosterSnapshot, StoreError> {
    let error = read_error(path, "roster read");
    // One read transaction, so the version matches the activities.
    let tx = conn.unchecked_transaction().map_err(&error)?;

    let version: i64 =
        tx.query_row("SELECT COALESCE(MAX(version), 0) FROM roster_versions", [], |row| row.get(0)).map_err(&error)?;
    let mut select = tx
        .prepare_cached(
            "SELECT rowid, agent_id, start_ms, end_ms, activity FROM roster_current ORDER BY agent_id, start_ms, rowid",
        )
        .map_err(&error)?;
    let mut rows = select.query([]).map_err(&error)?;

    let mut activities = Vec::new();
    while let Some(row) = rows.next().map_err(&error)? {
        let rowid: i64 = row.get(0).map_err(&error)?;
        let activity: String = row.get(4).map_err(&error)?;
        activities.push(ScheduledActivity {
            agent_id: row.get(1).map_err(&error)?,
            start: timestamp(path, "roster_current", rowid, row.get(2).map_err(&error)?)?,
            end: timestamp(path, "roster_current", rowid, row.get(3).map_err(&error)?)?,
            activity: parse_activity(path, "roster_current", rowid, &activity)?,
        });
    }
    Ok(RosterSnapshot { version: version.max(0) as u64, activities })
}

pub(crate) fn roster_versions(conn: &Connection, path: &Path) -> Result<Vec<RosterVersionSummary>, StoreError> {
    let error = read_error(path, "roster history read");
    let mut select = conn
        .prepare_cached(
            "SELECT version, published_at_ms, published_by, comment, period_start_ms, period_end_ms \
             FROM roster_versions ORDER BY version",
        )
        .map_err(&error)?;
    let mut rows = select.query([]).map_err(&error)?;

    let mut versions = Vec::new();
    while let Some(row) = rows.next().map_err(&error)? {
        let version: i64 = row.get(0).map_err(&error)?;
        let at = |index| -> Result<Timestamp, StoreError> {
            timestamp(path, "roster_versions", version, row.get(index).map_err(&error)?)
        };
        versions.push(RosterVersionSummary {
            version: version.max(0) as u64,
            published_at: at(1)?,
            published_by: row.get(2).map_err(&error)?,
            comment: row.get(3).map_err(&error)?,
            period_start: at(4)?,
            period_end: at(5)?,
        });
    }
    Ok(versions)
}

pub(crate) fn roster_version(
    conn: &Connection,
    path: &Path,
    version: u64,
) -> Result<Option<RosterVersionRecord>, StoreError> {
    let error = read_error(path, "roster version read");
    let Ok(version) = i64::try_from(version) else {
        return Ok(None);
    };
    let mut select = conn.prepare_cached("SELECT request FROM roster_versions WHERE version = ?1").map_err(&error)?;
    let mut rows = select.query(params![version]).map_err(&error)?;
    let Some(row) = rows.next().map_err(&error)? else {
        return Ok(None);
    };

    let request: String = row.get(0).map_err(&error)?;
    let record = serde_json::from_str(&request).map_err(|json| StoreError::Corrupt {
        path: path.to_path_buf(),
        table: "roster_versions",
        row: version,
        detail: format!("request is not a valid roster publication: {json}"),
    })?;
    Ok(Some(record))
}

/// Returns the exceptions for which `where_clause` (over `start_ms` and
/// `end_ms`, with `bounds` as parameters `?1`, `?2`, …) holds, ordered by
/// start.
fn select_exceptions(
    conn: &Connection,
    path: &Path,
    where_clause: &str,
    bounds: &[i64],
) -> Result<Vec<ExceptionRecord>, StoreError> {
    let error = read_error(path, "exception read");
    let sql = format!(
        "SELECT id, agent_id, start_ms, end_ms, reason, approved_by, approved_at_ms FROM exceptions \
         WHERE {where_clause} ORDER BY start_ms, id"
    );
    let mut select = conn.prepare_cached(&sql).map_err(&error)?;
    let mut rows = select.query(rusqlite::params_from_iter(bounds)).map_err(&error)?;

    let mut exceptions = Vec::new();
    while let Some(row) = rows.next().map_err(&error)? {
        let id: i64 = row.get(0).map_err(&error)?;
        let at = |index| -> Result<Timestamp, StoreError> {
            timestamp(path, "exceptions", id, row.get(index).map_err(&error)?)
        };
        exceptions.push(ExceptionRecord {
            id: id.max(0) as u64,
            agent_id: row.get(1).map_err(&error)?,
            start: at(2)?,
            end: at(3)?,
            reason: row.get(4).map_err(&error)?,
            approved_by: row.get(5).map_err(&error)?,
            approved_at: at(6)?,
        });
    }
    Ok(exceptions)
}

pub(crate) fn exceptions_overlapping(
    conn: &Connection,
    path: &Path,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<ExceptionRecord>, StoreError> {
    select_exceptions(conn, path, "start_ms < ?2 AND end_ms > ?1", &[millis(start), millis(end)])
}

pub(crate) fn exceptions_since(
    conn: &Connection,
    path: &Path,
    from: Timestamp,
) -> Result<Vec<ExceptionRecord>, StoreError> {
    select_exceptions(conn, path, "end_ms > ?1", &[millis(from)])
}
