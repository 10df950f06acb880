//! The journal: floorwatch's embedded database (one SQLite file in the state
//! directory).
//!
//! It stores every accepted agent event and feed health change (the journal
//! proper, replayed after a restart to rebuild the day), the agent
//! directory, the published roster with its version history, and
//! supervisor-approved exceptions.
//!
//! One writer thread owns the only read-write connection. Async callers send
//! it requests over a bounded channel; it groups whatever is queued (up to
//! [`JournalOptions::batch_max`] journal entries) into one transaction,
//! commits with `synchronous=FULL` in WAL mode, and only then replies to
//! each request. So an acknowledged write is on disk, and a full queue makes
//! callers wait instead of growing memory. Reads use a separate read-only
//! connection, which WAL lets run while the writer commits.
//!
//! This module does not validate events, resolve agents or check roster
//! labour rules: callers hand it finished records. It keeps data until
//! something deletes it.
//!
//! NOTE: timestamps are stored as whole milliseconds since the Unix epoch;
//! sub-millisecond parts are truncated toward the past on write.

mod codec;
mod error;
mod journal;
mod read;
mod schema;
mod writer;

#[cfg(test)]
mod tests;

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{AgentEvent, AgentId, ScheduledActivity, SourceKind};

pub use error::StoreError;
pub use journal::Journal;
pub use schema::ConnectionSettings;

/// Histogram of the time from BEGIN to the end of COMMIT of one batch, in
/// seconds.
pub const JOURNAL_COMMIT_SECONDS: &str = "floorwatch_journal_commit_seconds";
/// Histogram of the number of journal entries committed per batch.
pub const JOURNAL_BATCH_ENTRIES: &str = "floorwatch_journal_batch_entries";
/// Gauge of the requests waiting in the writer's queue after each batch.
pub const JOURNAL_QUEUE_DEPTH: &str = "floorwatch_journal_queue_depth";
/// Counter of batches or requests that failed to commit.
pub const JOURNAL_WRITE_ERRORS_TOTAL: &str = "floorwatch_journal_write_errors_total";

/// Tuning of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// Journal entries after which the writer stops adding requests to a
    /// batch and commits. A single request larger than this is still
    /// committed whole, in one batch. Zero counts as 1.
    pub batch_max: usize,
    /// How long the writer waits for more requests once the queue is empty,
    /// counted from the first request of the batch. Zero commits as soon as
    /// the queue is empty; requests that arrive during a commit form the
    /// next batch either way.
    pub batch_delay: Duration,
    /// Capacity of the request queue, in requests (one `append` call is one
    /// request, whatever its number of entries). Callers wait when it is
    /// full. Zero counts as 1.
    pub queue: usize,
}

/// One record of the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalEntry {
    Event(JournaledEvent),
    /// A feed went down (`healthy = false`) or came back.
    SourceHealth {
        source: String,
        kind: SourceKind,
        healthy: bool,
        at: Timestamp,
    },
}

/// An accepted agent event with what the pipeline derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournaledEvent {
    pub event: AgentEvent,
    /// The agent `event.agent_ref` resolved to.
    pub agent_id: AgentId,
    /// The instant the engine uses for the event; replay selects on it.
    pub effective_time: Timestamp,
}

/// Outcome of one appended entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Committed under this journal sequence number. Sequence numbers grow
    /// in commit order and are never reused.
    Committed { seq: u64 },
    /// An event with the same source and source event id is already in the
    /// journal (possibly from the same batch); nothing was written.
    Duplicate,
}

/// A roster publication: the new activities of some agents for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterVersionRecord {
    /// Start of the period, inclusive.
    pub period_start: Timestamp,
    /// End of the period, exclusive.
    pub period_end: Timestamp,
    /// Agents whose activities starting inside the period are replaced.
    pub agent_ids: Vec<AgentId>,
    /// The new activities; each must belong to a listed agent and start
    /// inside the period.
    pub activities: Vec<ScheduledActivity>,
    pub comment: String,
    pub published_by: String,
    pub published_at: Timestamp,
}

/// A line of the roster history, without the activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterVersionSummary {
    pub version: u64,
    pub published_at: Timestamp,
    pub published_by: String,
    pub comment: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
}

/// The roster in force.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RosterSnapshot {
    /// Latest published version; 0 when nothing was ever published.
    pub version: u64,
    /// Activities ordered by agent id, then start.
    pub activities: Vec<ScheduledActivity>,
}

/// A supervisor-approved exception to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewException {
    pub agent_id: AgentId,
    /// Start of the excused period, inclusive.
    pub start: Timestamp,
    /// End of the excused period, exclusive.
    pub end: Timestamp,
    pub reason: String,
    pub approved_by: String,
    pub approved_at: Timestamp,
}

/// A stored exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRecord {
    pub id: u64,
    pub agent_id: AgentId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub reason: String,
    pub approved_by: String,
    pub approved_at: Timestamp,
}

/// Describes the journal metrics to the installed recorder; call once at
/// start-up.
pub fn describe_metrics() {
    use metrics::Unit;

    metrics::describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "Time from BEGIN to the end of COMMIT of one journal batch."
    );
    metrics::describe_histogram!(JOURNAL_BATCH_ENTRIES, Unit::Count, "Journal entries committed in one batch.");
    metrics::describe_gauge!(
        JOURNAL_QUEUE_DEPTH,
        Unit::Count,
        "Requests waiting for the journal writer after its last batch."
    );
    metrics::describe_counter!(
        JOURNAL_WRITE_ERRORS_TOTAL,
        Unit::Count,
        "Journal requests or batches that failed to commit."
    );
}

// === impl JournalOptions ===

impl Default for JournalOptions {
    /// Batches of up to 4096 entries, a 1 ms wait for more requests, and a
    /// queue of 1024 requests.
    fn default() -> Self {
        JournalOptions { batch_max: 4096, batch_delay: Duration::from_millis(1), queue: 1024 }
    }
}

// === impl JournalEntry ===

impl JournalEntry {
    /// Returns the instant replay selects the entry by.
    pub fn effective_time(&self) -> Timestamp {
        match self {
            JournalEntry::Event(event) => event.effective_time,
            JournalEntry::SourceHealth { at, .. } => *at,
        }
    }
}
