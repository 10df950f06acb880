//! Conversion between the public record types and table rows.

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{JournalEntry, JournaledEvent, StoreError};
use crate::domain::{ActivityType, AgentEvent, EventKind, SourceKind};

/// Value of `journal.kind` for an agent event.
const KIND_EVENT: &str = "event";
/// Value of `journal.kind` for a feed health change.
const KIND_SOURCE_HEALTH: &str = "source_health";

/// `journal.body` of a feed health change.
#[derive(Serialize, Deserialize)]
struct HealthBody {
    healthy: bool,
}

/// The columns of one `journal` row, borrowed from the entry it encodes.
pub(crate) struct JournalRow<'a> {
    pub kind: &'static str,
    pub source_kind: &'static str,
    pub source: &'a str,
    pub source_event_id: Option<&'a str>,
    pub agent_ref: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub effective_ms: i64,
    pub source_ms: Option<i64>,
    pub received_ms: Option<i64>,
    pub body: String,
}

/// The columns of one `journal` row as read back, in `SELECT` order of
/// [`JOURNAL_COLUMNS`].
pub(crate) struct StoredJournalRow {
    pub seq: i64,
    pub kind: String,
    pub source_kind: String,
    pub source: String,
    pub source_event_id: Option<String>,
    pub agent_ref: Option<String>,
    pub agent_id: Option<String>,
    pub effective_ms: i64,
    pub source_ms: Option<i64>,
    pub received_ms: Option<i64>,
    pub body: String,
}

/// Column list matching [`StoredJournalRow::from_row`].
pub(crate) const JOURNAL_COLUMNS: &str = "seq, kind, source_kind, source, source_event_id, agent_ref, \
     agent_id, effective_ms, source_ms, received_ms, body";

pub(crate) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// Converts stored milliseconds back to a timestamp, naming the row when the
/// value is outside jiff's range.
pub(crate) fn timestamp(path: &Path, table: &'static str, row: i64, ms: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_millisecond(ms).map_err(|error| StoreError::Corrupt {
        path: path.to_path_buf(),
        table,
        row,
        detail: format!("timestamp {ms} ms is out of range: {error}"),
    })
}

pub(crate) fn parse_activity(
    path: &Path,
    table: &'static str,
    row: i64,
    name: &str,
) -> Result<ActivityType, StoreError> {
    ActivityType::parse(name).ok_or_else(|| StoreError::Corrupt {
        path: path.to_path_buf(),
        table,
        row,
        detail: format!("unknown activity {name:?}"),
    })
}

fn parse_source_kind(name: &str) -> Option<SourceKind> {
    [SourceKind::Grpc, SourceKind::WebSocket, SourceKind::Sip].into_iter().find(|kind| kind.as_str() == name)
}

/// Encodes an entry as a `journal` row.
pub(crate) fn encode_entry(entry: &JournalEntry) -> Result<JournalRow<'_>, serde_json::Error> {
    match entry {
        JournalEntry::Event(journaled) => {
            let event = &journaled.event;
            Ok(JournalRow {
                kind: KIND_EVENT,
                source_kind: event.source_kind.as_str(),
                source: &event.source,
                source_event_id: Some(&event.source_event_id),
                agent_ref: Some(&event.agent_ref),
                agent_id: Some(&journaled.agent_id),
                effective_ms: millis(journaled.effective_time),
                source_ms: Some(millis(event.source_time)),
                received_ms: Some(millis(event.received_at)),
                body: serde_json::to_string(&event.kind)?,
            })
        }
        JournalEntry::SourceHealth { source, kind, healthy, at } => Ok(JournalRow {
            kind: KIND_SOURCE_HEALTH,
            source_kind: kind.as_str(),
            source,
            source_event_id: None,
            agent_ref: None,
            agent_id: None,
            effective_ms: millis(*at),
            source_ms: None,
            received_ms: None,
            body: serde_json::to_string(&HealthBody { healthy: *healthy })?,
        }),
    }
}

// === impl StoredJournalRow ===

impl StoredJournalRow {
    pub(crate) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredJournalRow> {
        Ok(StoredJournalRow {
            seq: row.get(0)?,
            kind: row.get(1)?,
            source_kind: row.get(2)?,
            source: row.get(3)?,
            source_event_id: row.get(4)?,
            agent_ref: row.get(5)?,
            agent_id: row.get(6)?,
            effective_ms: row.get(7)?,
            source_ms: row.get(8)?,
            received_ms: row.get(9)?,
            body: row.get(10)?,
        })
    }

    /// Decodes the row into its sequence number and entry.
    pub(crate) fn decode(self, path: &Path) -> Result<(u64, JournalEntry), StoreError> {
        let seq = self.seq;
        let corrupt =
            |detail: String| StoreError::Corrupt { path: path.to_path_buf(), table: "journal", row: seq, detail };

        let source_kind = parse_source_kind(&self.source_kind)
            .ok_or_else(|| corrupt(format!("unknown source kind {:?}", self.source_kind)))?;
        let effective_time = timestamp(path, "journal", seq, self.effective_ms)?;

        let entry = match self.kind.as_str() {
            KIND_EVENT => {
                let missing = |column: &str| corrupt(format!("event row without {column}"));
                let kind: EventKind = serde_json::from_str(&self.body)
                    .map_err(|error| corrupt(format!("body is not a valid event kind: {error}")))?;
                let source_ms = self.source_ms.ok_or_else(|| missing("source_ms"))?;
                let received_ms = self.received_ms.ok_or_else(|| missing("received_ms"))?;
                let event = AgentEvent {
                    source_kind,
                    source: self.source,
                    source_event_id: self.source_event_id.ok_or_else(|| missing("source_event_id"))?,
                    agent_ref: self.agent_ref.ok_or_else(|| missing("agent_ref"))?,
                    source_time: timestamp(path, "journal", seq, source_ms)?,
                    received_at: timestamp(path, "journal", seq, received_ms)?,
                    kind,
                };
                JournalEntry::Event(JournaledEvent {
                    event,
                    agent_id: self.agent_id.ok_or_else(|| missing("agent_id"))?,
                    effective_time,
                })
            }
            KIND_SOURCE_HEALTH => {
                let body: HealthBody = serde_json::from_str(&self.body)
                    .map_err(|error| corrupt(format!("body is not a valid health change: {error}")))?;
                JournalEntry::SourceHealth {
                    source: self.source,
                    kind: source_kind,
                    healthy: body.healthy,
                    at: effective_time,
                }
            }
            other => return Err(corrupt(format!("unknown entry kind {other:?}"))),
        };

        let seq = u64::try_from(seq).map_err(|_| corrupt("negative sequence number".to_string()))?;
        Ok((seq, entry))
    }
}
