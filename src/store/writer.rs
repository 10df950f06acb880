//! The writer thread: the only read-write connection to the journal file.
//!
//! It takes requests from a bounded channel, runs a batch of them in one
//! transaction (each request inside its own savepoint, so one bad request
//! fails alone), commits, and only then sends the replies. When the commit
//! fails, or SQLite rolls the whole transaction back, every request of the
//! batch gets the error: nothing is acknowledged that is not committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

use super::codec::{encode_entry, millis};
use super::{
    AppendOutcome, JOURNAL_BATCH_ENTRIES, JOURNAL_COMMIT_SECONDS, JOURNAL_QUEUE_DEPTH, JOURNAL_WRITE_ERRORS_TOTAL,
    JournalEntry, JournalOptions, NewException, RosterVersionRecord, StoreError,
};
use crate::domain::Agent;

/// Sender for the result of one request.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A message to the writer thread.
pub(crate) enum Request {
    Write(WriteRequest),
    /// Commit everything queued before this request, stop accepting new
    /// requests, commit what is still buffered, then reply and exit.
    Shutdown(oneshot::Sender<()>),
}

/// A write the writer runs inside a batch.
pub(crate) enum WriteRequest {
    /// The entries come back with their outcomes, so the caller needs no
    /// copy of its own.
    Append {
        entries: Vec<JournalEntry>,
        reply: Reply<(Vec<JournalEntry>, Vec<AppendOutcome>)>,
    },
    PutAgents {
        agents: Vec<Agent>,
        reply: Reply<()>,
    },
    PublishRoster {
        record: RosterVersionRecord,
        reply: Reply<u64>,
    },
    AddException {
        exception: NewException,
        reply: Reply<u64>,
    },
}

/// The state of the writer thread.
pub(crate) struct Writer {
    path: PathBuf,
    conn: Connection,
    rx: mpsc::Receiver<Request>,
    runtime: tokio::runtime::Runtime,
    batch_max: usize,
    batch_delay: Duration,
}

/// A request that ran in the open transaction and waits for the commit.
trait Waiter: Send {
    /// Sends the request's own result if `commit` succeeded, else the
    /// commit error.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Staged<T> {
    reply: Reply<T>,
    result: Result<T, StoreError>,
}

/// Whether the open transaction can still be committed after a request.
enum BatchState {
    Open,
    /// SQLite ended the transaction (for example after an I/O error or a
    /// full disk), or a savepoint could not be undone. The string names the
    /// failed operation.
    Aborted(&'static str),
}

const INSERT_JOURNAL: &str = "INSERT INTO journal (kind, source_kind, source, source_event_id, agent_ref, agent_id, \
     effective_ms, source_ms, received_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT DO NOTHING";

// === impl Writer ===

impl Writer {
    /// Prepares the writer. Fails when tokio cannot build the small runtime
    /// that gives the writer its timer.
    pub(crate) fn new(
        path: PathBuf,
        conn: Connection,
        rx: mpsc::Receiver<Request>,
        options: &JournalOptions,
    ) -> std::io::Result<Writer> {
        // A runtime of its own gives the thread a timer for waiting on the
        // async channel with a deadline.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
        Ok(Writer { path, conn, rx, runtime, batch_max: options.batch_max.max(1), batch_delay: options.batch_delay })
    }

    /// Runs until every handle is dropped or a shutdown request was served.
    pub(crate) fn run(mut self) {
        tracing::debug!(path = %self.path.display(), "journal writer started");

        let mut shutdown_replies = Vec::new();
        while let Some(first) = self.runtime.block_on(self.rx.recv()) {
            let batch = self.collect(first, &mut shutdown_replies);
            commit_batch(&mut self.conn, &self.path, batch);
            metrics::gauge!(JOURNAL_QUEUE_DEPTH).set(self.rx.len() as f64);

            if !shutdown_replies.is_empty() {
                // Senders now fail at once; what is already buffered is
                // still received and committed by this loop.
                self.rx.close();
            }
        }

        if let Err((_, error)) = self.conn.close() {
            tracing::error!(path = %self.path.display(), %error, "journal close failed; SQLite recovers the WAL on next open");
        }
        tracing::info!(path = %self.path.display(), "journal writer stopped");
        for reply in shutdown_replies {
            let _ = reply.send(());
        }
    }

    /// Gathers requests for one batch: stops at `batch_max` entries, at a
    /// shutdown request, or when the queue stays empty until
    /// `batch_delay` after the first request.
    fn collect(&mut self, first: Request, shutdown_replies: &mut Vec<oneshot::Sender<()>>) -> Vec<WriteRequest> {
        let deadline = Instant::now() + self.batch_delay;
        let mut batch = Vec::new();
        let mut entries = 0;

        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Shutdown(reply) => {
                    shutdown_replies.push(reply);
                    break;
                }
                Request::Write(write) => {
                    entries += write.weight();
                    batch.push(write);
                }
            }
            if entries >= self.batch_max {
                break;
            }

            next = match self.rx.try_recv() {
                Ok(request) => Some(request),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    if remaining.is_zero() {
                        None
                    } else {
                        // The timer must be created inside the runtime.
                        let wait = async { tokio::time::timeout(remaining, self.rx.recv()).await };
                        self.runtime.block_on(wait).ok().flatten()
                    }
                }
            };
        }
        batch
    }
}

/// Runs `batch` in one transaction, commits, and replies to every request.
fn commit_batch(conn: &mut Connection, path: &Path, batch: Vec<WriteRequest>) {
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let entries: usize = batch.iter().map(WriteRequest::journal_entries).sum();
    let requests = batch.len();

    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(source) => {
            let error = write_error(path, "begin transaction", source);
            report_batch_error(path, &error, requests);
            for request in batch {
                request.fail(error.clone());
            }
            return;
        }
    };

    let mut waiters: Vec<Box<dyn Waiter>> = Vec::with_capacity(requests);
    let mut pending = batch.into_iter();
    let mut aborted = None;
    for request in pending.by_ref() {
        let (waiter, state) = request.apply(&mut tx, path);
        waiters.push(waiter);
        if let BatchState::Aborted(operation) = state {
            aborted = Some(operation);
            break;
        }
    }

    let commit = match aborted {
        Some(operation) => {
            drop(tx);
            Err(StoreError::RolledBack { path: path.to_path_buf(), operation })
        }
        None => tx.commit().map_err(|source| write_error(path, "commit", source)),
    };

    match &commit {
        Ok(()) => {
            metrics::histogram!(JOURNAL_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
            metrics::histogram!(JOURNAL_BATCH_ENTRIES).record(entries as f64);
        }
        Err(error) => report_batch_error(path, error, requests),
    }

    for waiter in waiters {
        waiter.finish(commit.clone());
    }
    if let Err(error) = commit {
        for request in pending {
            request.fail(error.clone());
        }
    }
}

fn report_batch_error(path: &Path, error: &StoreError, requests: usize) {
    metrics::counter!(JOURNAL_WRITE_ERRORS_TOTAL).increment(1);
    tracing::error!(path = %path.display(), %error, requests, "journal batch not committed; every request of it gets the error");
}

fn write_error(path: &Path, operation: &'static str, source: rusqlite::Error) -> StoreError {
    StoreError::Write { path: path.to_path_buf(), operation, source: Arc::new(source) }
}

/// Runs `op` inside a savepoint of `tx`, undoing its writes when it fails.
fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    path: &Path,
    operation: &'static str,
    op: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> (Result<T, StoreError>, BatchState) {
    let savepoint = match tx.savepoint() {
        Ok(savepoint) => savepoint,
        Err(source) => {
            return (Err(write_error(path, operation, source)), BatchState::Aborted(operation));
        }
    };

    let result = op(&savepoint);
    let state = match &result {
        Ok(_) => match savepoint.commit() {
            Ok(()) => BatchState::Open,
            Err(source) => {
                return (Err(write_error(path, operation, source)), BatchState::Aborted(operation));
            }
        },
        Err(error) => {
            metrics::counter!(JOURNAL_WRITE_ERRORS_TOTAL).increment(1);
            tracing::warn!(path = %path.display(), operation, %error, "journal request failed; its writes are undone");
            // finish() rolls back to the savepoint and releases it.
            match savepoint.finish() {
                Ok(()) => BatchState::Open,
                Err(_) => BatchState::Aborted(operation),
            }
        }
    };

    // A failed statement can make SQLite end the whole transaction.
    if tx.is_autocommit() {
        return (result, BatchState::Aborted(operation));
    }
    (result, state)
}

fn append_entries(conn: &Connection, path: &Path, entries: &[JournalEntry]) -> Result<Vec<AppendOutcome>, StoreError> {
    let mut insert = conn.prepare_cached(INSERT_JOURNAL).map_err(|source| write_error(path, "append", source))?;

    let mut outcomes = Vec::with_capacity(entries.len());
    for entry in entries {
        let row = encode_entry(entry).map_err(|error| StoreError::InvalidRequest {
            path: path.to_path_buf(),
            operation: "append",
            detail: format!("cannot encode entry as JSON: {error}"),
        })?;
        let inserted = insert
            .execute(params![
                row.kind,
                row.source_kind,
                row.source,
                row.source_event_id,
                row.agent_ref,
                row.agent_id,
                row.effective_ms,
                row.source_ms,
                row.received_ms,
                row.body,
            ])
            .map_err(|source| write_error(path, "append", source))?;

        let outcome = if inserted == 1 {
            AppendOutcome::Committed { seq: conn.last_insert_rowid() as u64 }
        } else {
            AppendOutcome::Duplicate
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

fn put_agents(conn: &Connection, path: &Path, agents: &[Agent]) -> Result<(), StoreError> {
    let error = |source| write_error(path, "put agents", source);
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO agents (id, display_name, team, contract_hours, platform_ids) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, team = excluded.team, \
             contract_hours = excluded.contract_hours, platform_ids = excluded.platform_ids",
        )
        .map_err(error)?;

    for agent in agents {
        let platform_ids = serde_json::to_string(&agent.platform_ids).map_err(|json| StoreError::InvalidRequest {
            path: path.to_path_buf(),
            operation: "put agents",
            detail: format!("agent {}: cannot encode platform ids: {json}", agent.id),
        })?;
        upsert
            .execute(params![agent.id, agent.display_name, agent.team, agent.contract_hours, platform_ids])
            .map_err(error)?;
    }
    Ok(())
}

fn publish_roster(conn: &Connection, path: &Path, record: &RosterVersionRecord) -> Result<u64, StoreError> {
    let error = |source| write_error(path, "publish roster", source);
    let request = serde_json::to_string(record).map_err(|json| StoreError::InvalidRequest {
        path: path.to_path_buf(),
        operation: "publish roster",
        detail: format!("cannot encode the publication as JSON: {json}"),
    })?;
    let period_start = millis(record.period_start);
    let period_end = millis(record.period_end);

    conn.execute(
        "INSERT INTO roster_versions (published_at_ms, published_by, comment, period_start_ms, period_end_ms, request) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![millis(record.published_at), record.published_by, record.comment, period_start, period_end, request],
    )
    .map_err(error)?;
    let version = conn.last_insert_rowid() as u64;

    let mut delete = conn
        .prepare_cached("DELETE FROM roster_current WHERE agent_id = ?1 AND start_ms >= ?2 AND start_ms < ?3")
        .map_err(error)?;
    for agent_id in &record.agent_ids {
        delete.execute(params![agent_id, period_start, period_end]).map_err(error)?;
    }

    let mut insert = conn
        .prepare_cached("INSERT INTO roster_current (agent_id, start_ms, end_ms, activity) VALUES (?1, ?2, ?3, ?4)")
        .map_err(error)?;
    for activity in &record.activities {
        insert
            .execute(params![
                activity.agent_id,
                millis(activity.start),
                millis(activity.end),
                activity.activity.as_str()
            ])
            .map_err(error)?;
    }
    Ok(version)
}

fn add_exception(conn: &Connection, path: &Path, exception: &NewException) -> Result<u64, StoreError> {
    conn.execute(
        "INSERT INTO exceptions (agent_id, start_ms, end_ms, reason, approved_by, approved_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            exception.agent_id,
            millis(exception.start),
            millis(exception.end),
            exception.reason,
            exception.approved_by,
            millis(exception.approved_at),
        ],
    )
    .map_err(|source| write_error(path, "add exception", source))?;
    Ok(conn.last_insert_rowid() as u64)
}

// === impl WriteRequest ===

impl WriteRequest {
    /// Returns the weight of the request against `batch_max`: its journal
    /// entries, and at least 1 so that other writes also end a batch.
    fn weight(&self) -> usize {
        self.journal_entries().max(1)
    }

    fn journal_entries(&self) -> usize {
        match self {
            WriteRequest::Append { entries, .. } => entries.len(),
            _ => 0,
        }
    }

    /// Runs the request in the open transaction and returns what waits for
    /// the commit.
    fn apply(self, tx: &mut Transaction<'_>, path: &Path) -> (Box<dyn Waiter>, BatchState) {
        match self {
            WriteRequest::Append { entries, reply } => {
                let (result, state) = in_savepoint(tx, path, "append", |conn| append_entries(conn, path, &entries));
                let result = result.map(|outcomes| (entries, outcomes));
                (Box::new(Staged { reply, result }), state)
            }
            WriteRequest::PutAgents { agents, reply } => {
                let (result, state) = in_savepoint(tx, path, "put agents", |conn| put_agents(conn, path, &agents));
                (Box::new(Staged { reply, result }), state)
            }
            WriteRequest::PublishRoster { record, reply } => {
                let (result, state) =
                    in_savepoint(tx, path, "publish roster", |conn| publish_roster(conn, path, &record));
                (Box::new(Staged { reply, result }), state)
            }
            WriteRequest::AddException { exception, reply } => {
                let (result, state) =
                    in_savepoint(tx, path, "add exception", |conn| add_exception(conn, path, &exception));
                (Box::new(Staged { reply, result }), state)
            }
        }
    }

    /// Replies to the request with `error` without running it.
    fn fail(self, error: StoreError) {
        // A caller that stopped waiting needs no reply.
        match self {
            WriteRequest::Append { reply, .. } => drop(reply.send(Err(error))),
            WriteRequest::PutAgents { reply, .. } => drop(reply.send(Err(error))),
            WriteRequest::PublishRoster { reply, .. } => drop(reply.send(Err(error))),
            WriteRequest::AddException { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

// === impl Staged ===

impl<T: Send> Waiter for Staged<T> {
    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = self.result.and_then(|value| commit.map(|()| value));
        // A caller that stopped waiting needs no reply.
        let _ = self.reply.send(answer);
    }
}
