//! [`Journal`], the cloneable handle to the journal file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use jiff::Timestamp;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::read;
use super::schema::{self, ConnectionSettings};
use super::writer::{Reply, Request, WriteRequest, Writer};
use super::{
    AppendOutcome, ExceptionRecord, JournalEntry, JournalOptions, NewException, RosterSnapshot, RosterVersionRecord,
    RosterVersionSummary, StoreError,
};
use crate::domain::Agent;

/// Handle to an open journal; clones share the same writer thread and
/// reader connection.
///
/// Writes (`append`, `put_agents`, `publish_roster`, `add_exception`) are
/// async: they wait for room in the writer's queue, then for the commit.
/// When such a future is dropped after the request was queued, the write
/// still happens; only the reply is lost.
///
/// Reads are blocking calls on one shared read-only connection, so they run
/// one at a time. Call them at start-up or from `spawn_blocking`, not on an
/// async worker thread while a big read is expected.
///
/// Dropping the last handle lets the writer commit what is queued and exit
/// on its own; [`Journal::shutdown`] does the same and waits for it.
#[derive(Debug, Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    requests: mpsc::Sender<Request>,
    /// The read-only connection, shared by every clone.
    reader: Mutex<Connection>,
    /// Taken by the first `shutdown` to join the thread.
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    settings: ConnectionSettings,
}

// === impl Journal ===

impl Journal {
    /// Opens or creates the journal file at `path`, migrates its schema,
    /// sets WAL mode and `synchronous=FULL`, and starts the writer thread.
    ///
    /// Blocks on file I/O; migrations of a big file can take a while.
    pub fn open(path: &Path, options: JournalOptions) -> Result<Journal, StoreError> {
        let (writer_conn, settings) = schema::open_writer(path)?;
        let reader = schema::open_reader(path)?;

        let (requests, receiver) = mpsc::channel(options.queue.max(1));
        let spawn_error = |source| StoreError::Spawn { path: path.to_path_buf(), source: Arc::new(source) };
        let writer = Writer::new(path.to_path_buf(), writer_conn, receiver, &options).map_err(spawn_error)?;
        let writer_thread = std::thread::Builder::new()
            .name("journal-writer".to_string())
            .spawn(move || writer.run())
            .map_err(spawn_error)?;

        tracing::info!(
            path = %path.display(),
            schema_version = settings.schema_version,
            journal_mode = %settings.journal_mode,
            synchronous = settings.synchronous,
            batch_max = options.batch_max,
            batch_delay_ms = options.batch_delay.as_millis() as u64,
            queue = options.queue,
            "journal opened"
        );

        let shared = Shared {
            path: path.to_path_buf(),
            requests,
            reader: Mutex::new(reader),
            writer_thread: Mutex::new(Some(writer_thread)),
            settings,
        };
        Ok(Journal { shared: Arc::new(shared) })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Returns the pragmas read back from the writer connection at open.
    pub fn settings(&self) -> &ConnectionSettings {
        &self.shared.settings
    }

    /// Appends entries and waits for their commit. The outcomes are in the
    /// order of `entries`. An event whose (source, source event id) is
    /// already journaled, earlier in the same call included, is `Duplicate`.
    ///
    /// On error nothing of this call was committed.
    pub async fn append(&self, entries: Vec<JournalEntry>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.append_returning(entries).await.map(|(_, outcomes)| outcomes)
    }

    /// Like [`Journal::append`], but hands the entries back with their
    /// outcomes, so a caller that needs them after the commit (the ingest
    /// pipeline) does not copy them first.
    pub async fn append_returning(
        &self,
        entries: Vec<JournalEntry>,
    ) -> Result<(Vec<JournalEntry>, Vec<AppendOutcome>), StoreError> {
        if entries.is_empty() {
            return Ok((entries, Vec::new()));
        }
        self.request(|reply| WriteRequest::Append { entries, reply }).await
    }

    /// Inserts or updates agents by id. Agents not listed are kept.
    pub async fn put_agents(&self, agents: Vec<Agent>) -> Result<(), StoreError> {
        if agents.is_empty() {
            return Ok(());
        }
        self.request(|reply| WriteRequest::PutAgents { agents, reply }).await
    }

    /// Publishes a roster version and returns its number.
    ///
    /// In one transaction it stores the record for the history and, for
    /// each listed agent, replaces the current activities that start inside
    /// `[period_start, period_end)` with the record's activities. Activities
    /// of other agents, and those starting outside the period, stay.
    ///
    /// Rejects a record with an empty period, or with an activity that
    /// belongs to an unlisted agent, starts outside the period or does not
    /// end after its start.
    pub async fn publish_roster(&self, record: RosterVersionRecord) -> Result<u64, StoreError> {
        self.check_roster(&record)?;
        self.request(|reply| WriteRequest::PublishRoster { record, reply }).await
    }

    /// Stores an approved exception and returns its id. Rejects one whose
    /// end is not after its start.
    pub async fn add_exception(&self, exception: NewException) -> Result<u64, StoreError> {
        if exception.end <= exception.start {
            return Err(self.invalid(
                "add exception",
                format!(
                    "exception for agent {} ends at {}, not after its start {}; give an end after the start",
                    exception.agent_id, exception.end, exception.start
                ),
            ));
        }
        self.request(|reply| WriteRequest::AddException { exception, reply }).await
    }

    /// Waits until every request queued before this call is committed and
    /// the writer thread has ended. Later writes fail with
    /// [`StoreError::Closed`]; reads keep working. Calling it again returns
    /// at once.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        if self.shared.requests.send(Request::Shutdown(reply)).await.is_ok() {
            // An error here means the writer ended without answering; the
            // join below reports whether it panicked.
            let _ = done.await;
        }

        let thread = lock(&self.shared.writer_thread).take();
        let Some(thread) = thread else {
            return Ok(());
        };
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        match joined {
            Ok(Ok(())) => Ok(()),
            _ => Err(StoreError::WriterGone { path: self.shared.path.clone() }),
        }
    }

    /// Returns every entry with an effective time at or after `from`, in
    /// sequence order. See [`Journal::for_each_since`] for large ranges.
    pub fn read_journal_since(&self, from: Timestamp) -> Result<Vec<(u64, JournalEntry)>, StoreError> {
        let mut entries = Vec::new();
        self.for_each_since(from, |seq, entry| entries.push((seq, entry)))?;
        Ok(entries)
    }

    /// Calls `f` for every entry with an effective time at or after `from`,
    /// in sequence order, without collecting them; returns how many there
    /// were. The reader connection is locked for the whole call, so `f` must
    /// not call read methods of this journal: they would deadlock.
    pub fn for_each_since(&self, from: Timestamp, f: impl FnMut(u64, JournalEntry)) -> Result<usize, StoreError> {
        read::for_each_since(&self.reader(), &self.shared.path, from, f)
    }

    /// Returns up to `limit` entries with an effective time at or after
    /// `from` and a sequence number above `after_seq`, in sequence order.
    /// Passing the last seq of one page as `after_seq` reads the next.
    pub fn read_journal_page(
        &self,
        from: Timestamp,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, JournalEntry)>, StoreError> {
        read::read_page(&self.reader(), &self.shared.path, from, after_seq, limit)
    }

    /// Returns the agent directory, ordered by id.
    pub fn load_agents(&self) -> Result<Vec<Agent>, StoreError> {
        read::load_agents(&self.reader(), &self.shared.path)
    }

    /// Returns the current roster and its version.
    pub fn load_roster(&self) -> Result<RosterSnapshot, StoreError> {
        read::load_roster(&self.reader(), &self.shared.path)
    }

    /// Returns the roster history, oldest version first.
    pub fn roster_versions(&self) -> Result<Vec<RosterVersionSummary>, StoreError> {
        read::roster_versions(&self.reader(), &self.shared.path)
    }

    /// Returns the publication stored as `version`, if there is one.
    pub fn roster_version(&self, version: u64) -> Result<Option<RosterVersionRecord>, StoreError> {
        read::roster_version(&self.reader(), &self.shared.path, version)
    }

    /// Returns the exceptions that overlap `[start, end)`, ordered by start.
    pub fn exceptions_overlapping(&self, start: Timestamp, end: Timestamp) -> Result<Vec<ExceptionRecord>, StoreError> {
        read::exceptions_overlapping(&self.reader(), &self.shared.path, start, end)
    }

    /// Returns the exceptions that end after `from`, ordered by start: the
    /// ones that can still excuse time from `from` on.
    pub fn load_exceptions_since(&self, from: Timestamp) -> Result<Vec<ExceptionRecord>, StoreError> {
        read::exceptions_since(&self.reader(), &self.shared.path, from)
    }

    async fn request<T>(&self, build: impl FnOnce(Reply<T>) -> WriteRequest) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .requests
            .send(Request::Write(build(reply)))
            .await
            .map_err(|_| StoreError::Closed { path: self.shared.path.clone() })?;
        answer.await.map_err(|_| StoreError::WriterGone { path: self.shared.path.clone() })?
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        lock(&self.shared.reader)
    }

    fn invalid(&self, operation: &'static str, detail: String) -> StoreError {
        StoreError::InvalidRequest { path: self.shared.path.clone(), operation, detail }
    }

    fn check_roster(&self, record: &RosterVersionRecord) -> Result<(), StoreError> {
        let operation = "publish roster";
        if record.period_end <= record.period_start {
            return Err(self.invalid(
                operation,
                format!(
                    "period {} – {} is empty; give a period end after its start",
                    record.period_start, record.period_end
                ),
            ));
        }

        let agents: HashSet<&str> = record.agent_ids.iter().map(String::as_str).collect();
        for activity in &record.activities {
            let what = format!(
                "{} for agent {} at {} – {}",
                activity.activity, activity.agent_id, activity.start, activity.end
            );
            if !agents.contains(activity.agent_id.as_str()) {
                return Err(self.invalid(
                    operation,
                    format!("{what}: the agent is not in agent_ids; list every agent the publication changes"),
                ));
            }
            if activity.start < record.period_start || activity.start >= record.period_end {
                return Err(self.invalid(
                    operation,
                    format!(
                        "{what}: starts outside the period {} – {}; widen the period or drop the activity",
                        record.period_start, record.period_end
                    ),
                ));
            }
            if activity.end <= activity.start {
                return Err(self.invalid(operation, format!("{what}: does not end after its start")));
            }
        }
        Ok(())
    }
}

/// Locks `mutex`, ignoring poisoning: a panic while reading leaves a
/// SQLite connection usable, and the thread handle has no invariant.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
