//! Errors of the journal. Every message names the database file, the
//! operation that failed and what an operator can do about it.

use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

/// Error of a journal operation.
///
/// Sources sit behind `Arc` so that one failed commit can be reported to
/// every request of its batch.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error(
        "journal {}: cannot open: {source}; check that the state directory exists and is writable",
        path.display()
    )]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error(
        "journal {}: PRAGMA {pragma} is {found}, expected {expected}; \
         put the state directory on a local file system that supports shared memory",
        path.display()
    )]
    Pragma { path: PathBuf, pragma: &'static str, expected: &'static str, found: String },

    #[error(
        "journal {}: migration to schema version {version} failed: {source}; \
         the file was left at the previous version, restore a backup if the error persists",
        path.display()
    )]
    Migrate {
        path: PathBuf,
        version: u32,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error(
        "journal {}: schema version {found} is newer than the {supported} this floorwatch supports; \
         run the floorwatch release that wrote it or restore a backup",
        path.display()
    )]
    SchemaTooNew { path: PathBuf, found: u32, supported: u32 },

    #[error(
        "journal {}: cannot start the writer thread: {source}; check the process and memory limits",
        path.display()
    )]
    Spawn {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    #[error(
        "journal {}: {operation} failed: {source}; check free disk space and file permissions",
        path.display()
    )]
    Write {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error(
        "journal {}: the batch was rolled back after {operation} failed, so none of its writes \
         were committed; retry the request",
        path.display()
    )]
    RolledBack { path: PathBuf, operation: &'static str },

    #[error("journal {}: {operation} failed: {source}", path.display())]
    Read {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: Arc<rusqlite::Error>,
    },

    #[error(
        "journal {}: table {table}, row {row}: {detail}; the file was changed outside floorwatch or is damaged",
        path.display()
    )]
    Corrupt { path: PathBuf, table: &'static str, row: i64, detail: String },

    #[error("journal {}: {operation} rejected: {detail}", path.display())]
    InvalidRequest { path: PathBuf, operation: &'static str, detail: String },

    #[error("journal {}: the writer has shut down, so no more writes are accepted", path.display())]
    Closed { path: PathBuf },

    #[error(
        "journal {}: the writer thread stopped before answering; see the log for the cause",
        path.display()
    )]
    WriterGone { path: PathBuf },
}
