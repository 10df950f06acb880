//! Observable occurrences: one struct per occurrence whose `emit()` writes
//! the log line and updates the metric with the same labels, so logs and
//! metrics never disagree.
//!
//! Occurrences driven by outside input log under a budget (a bounded set of
//! seen codes, or a number of lines per window), so a misbehaving source
//! cannot flood the log. The metrics still count every occurrence.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use metrics::{counter, gauge};

use super::metrics::{
    EVENTS_REJECTED_TOTAL, LABEL_REASON, LABEL_SOURCE, LABEL_STREAM, SOURCE_HEALTHY, STREAM_COALESCED_TOTAL,
    UNKNOWN_STATE_CODES_TOTAL,
};

/// A state event carried a code with no `[state_codes]` entry.
#[derive(Debug, Clone, Copy)]
pub struct UnknownStateCode<'a> {
    pub code: &'a str,
    pub source: &'a str,
}

/// Ingest rejected an event.
#[derive(Debug, Clone, Copy)]
pub struct EventRejected<'a> {
    pub source: &'a str,
    /// The event field at fault, such as `agent_ref`.
    pub field: &'static str,
    /// Short snake_case reason from a fixed set, such as `unknown_agent`;
    /// it becomes a metric label.
    pub reason: &'static str,
}

/// A slow stream client skipped updates that were coalesced into a later
/// state.
#[derive(Debug, Clone, Copy)]
pub struct StreamClientLagged {
    pub stream: &'static str,
    pub skipped: u64,
}

/// A source became healthy or unhealthy.
#[derive(Debug, Clone, Copy)]
pub struct SourceHealthChanged<'a> {
    pub source: &'a str,
    pub healthy: bool,
}

/// Remembers which (source, code) pairs were already logged, up to a fixed
/// number of pairs.
#[derive(Debug)]
pub(crate) struct SeenCodes {
    capacity: usize,
    state: Mutex<SeenState>,
}

#[derive(Debug, Default)]
struct SeenState {
    seen: HashSet<(String, String)>,
    overflow_logged: bool,
}

/// Outcome of [`SeenCodes::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sighting {
    /// First time: log it.
    New,
    /// Logged before: stay quiet.
    Repeat,
    /// The set is full and this is the first pair turned away: log that
    /// further codes go unlogged.
    FirstOverflow,
    /// The set is full and the overflow was logged already.
    Overflow,
}

/// Allows a fixed number of log lines per window and counts the rest.
#[derive(Debug)]
pub(crate) struct LogBudget {
    lines_per_window: u32,
    window: Duration,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

/// Distinct unknown (source, code) pairs that are logged; later ones are
/// only counted.
const UNKNOWN_CODES_LOGGED: usize = 1024;

static UNKNOWN_CODES: LazyLock<SeenCodes> = LazyLock::new(|| SeenCodes::new(UNKNOWN_CODES_LOGGED));
static REJECTED_BUDGET: LazyLock<LogBudget> = LazyLock::new(|| LogBudget::new(20, Duration::from_secs(10)));
static LAGGED_BUDGET: LazyLock<LogBudget> = LazyLock::new(|| LogBudget::new(10, Duration::from_secs(10)));

/// Maximum characters of a code shown in a log line; the rest is cut.
const MAX_LOGGED_CODE_CHARS: usize = 64;

// === impl UnknownStateCode ===

impl UnknownStateCode<'_> {
    pub fn emit(self) {
        counter!(UNKNOWN_STATE_CODES_TOTAL, LABEL_SOURCE => self.source.to_owned()).increment(1);

        let code: String = self.code.chars().take(MAX_LOGGED_CODE_CHARS).collect();
        match UNKNOWN_CODES.observe(self.source, &code) {
            Sighting::New => tracing::warn!(
                source = self.source,
                code = %code,
                "unknown platform state code; map it in [state_codes] (logged once per code)"
            ),
            Sighting::FirstOverflow => tracing::warn!(
                source = self.source,
                limit = UNKNOWN_CODES_LOGGED,
                "too many distinct unknown state codes; further codes are counted but not logged"
            ),
            Sighting::Repeat | Sighting::Overflow => {}
        }
    }
}

// === impl EventRejected ===

impl EventRejected<'_> {
    pub fn emit(self) {
        counter!(
            EVENTS_REJECTED_TOTAL,
            LABEL_SOURCE => self.source.to_owned(),
            LABEL_REASON => self.reason,
        )
        .increment(1);

        if let Some(suppressed) = REJECTED_BUDGET.admit(Instant::now()) {
            tracing::warn!(
                source = self.source,
                field = self.field,
                reason = self.reason,
                suppressed_before = suppressed,
                "event rejected"
            );
        }
    }
}

// === impl StreamClientLagged ===

impl StreamClientLagged {
    pub fn emit(self) {
        counter!(STREAM_COALESCED_TOTAL, LABEL_STREAM => self.stream).increment(self.skipped);

        if let Some(suppressed) = LAGGED_BUDGET.admit(Instant::now()) {
            tracing::info!(
                stream = self.stream,
                skipped = self.skipped,
                suppressed_before = suppressed,
                "slow stream client; updates coalesced"
            );
        }
    }
}

// === impl SourceHealthChanged ===

impl SourceHealthChanged<'_> {
    pub fn emit(self) {
        let value = if self.healthy { 1.0 } else { 0.0 };
        gauge!(SOURCE_HEALTHY, LABEL_SOURCE => self.source.to_owned()).set(value);

        if self.healthy {
            tracing::info!(source = self.source, "source healthy");
        } else {
            tracing::warn!(source = self.source, "source unhealthy; its agents' adherence is unknown");
        }
    }
}

// === impl SeenCodes ===

impl SeenCodes {
    pub(crate) fn new(capacity: usize) -> SeenCodes {
        SeenCodes { capacity, state: Mutex::new(SeenState::default()) }
    }

    pub(crate) fn observe(&self, source: &str, code: &str) -> Sighting {
        // A panic while holding the lock leaves the set consistent, so a
        // poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

        let pair = (source.to_owned(), code.to_owned());
        if state.seen.contains(&pair) {
            return Sighting::Repeat;
        }
        if state.seen.len() < self.capacity {
            state.seen.insert(pair);
            return Sighting::New;
        }
        if state.overflow_logged {
            Sighting::Overflow
        } else {
            state.overflow_logged = true;
            Sighting::FirstOverflow
        }
    }
}

// === impl LogBudget ===

impl LogBudget {
    pub(crate) fn new(lines_per_window: u32, window: Duration) -> LogBudget {
        LogBudget { lines_per_window, window, state: Mutex::new(BudgetState::default()) }
    }

    /// Returns `Some(suppressed)` when a line may be logged at `now`, where
    /// `suppressed` counts the lines dropped since the last one logged.
    /// Returns `None` when the window's budget is spent.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());

        let expired = state.window_start.is_none_or(|start| now.saturating_duration_since(start) >= self.window);
        if expired {
            state.window_start = Some(now);
            state.logged = 0;
        }

        if state.logged < self.lines_per_window {
            state.logged += 1;
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_codes_logs_each_pair_once() {
        let seen = SeenCodes::new(2);
        assert_eq!(seen.observe("feed", "Pauze2"), Sighting::New);
        assert_eq!(seen.observe("feed", "Pauze2"), Sighting::Repeat);
        assert_eq!(seen.observe("other", "Pauze2"), Sighting::New);
    }

    #[test]
    fn seen_codes_reports_overflow_once() {
        let seen = SeenCodes::new(1);
        assert_eq!(seen.observe("feed", "A"), Sighting::New);
        assert_eq!(seen.observe("feed", "B"), Sighting::FirstOverflow);
        assert_eq!(seen.observe("feed", "C"), Sighting::Overflow);
    }

    #[test]
    fn log_budget_counts_suppressed_lines() {
        let budget = LogBudget::new(2, Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(budget.admit(start), Some(0));
        assert_eq!(budget.admit(start), Some(0));
        assert_eq!(budget.admit(start), None);
        assert_eq!(budget.admit(start + Duration::from_secs(1)), None);

        let next_window = start + Duration::from_secs(10);
        assert_eq!(budget.admit(next_window), Some(2));
    }
}

/// Events of one commit, counted per source kind.
#[derive(Debug, Clone, Copy)]
pub struct EventsIngested {
    /// Adapter kind: grpc, websocket or sip.
    pub source: &'static str,
    pub accepted: u64,
    pub duplicates: u64,
}

/// An alarm was raised or cleared.
#[derive(Debug, Clone, Copy)]
pub struct AlarmChanged<'a> {
    pub agent_id: &'a str,
    /// Alarm kind, such as `not_logged_in`.
    pub kind: &'static str,
    pub raised: bool,
}

// === impl EventsIngested ===

impl EventsIngested {
    pub fn emit(self) {
        if self.accepted > 0 {
            counter!(super::metrics::EVENTS_INGESTED_TOTAL, super::metrics::LABEL_SOURCE_KIND => self.source)
                .increment(self.accepted);
        }
        if self.duplicates > 0 {
            counter!(super::metrics::INGEST_DUPLICATES_TOTAL, super::metrics::LABEL_SOURCE_KIND => self.source)
                .increment(self.duplicates);
            tracing::debug!(source_kind = self.source, duplicates = self.duplicates, "duplicate events dropped");
        }
    }
}

// === impl AlarmChanged ===

impl AlarmChanged<'_> {
    pub fn emit(self) {
        if self.raised {
            counter!(super::metrics::ALARMS_RAISED_TOTAL, "kind" => self.kind).increment(1);
            tracing::info!(agent_id = self.agent_id, kind = self.kind, "alarm raised");
        } else {
            counter!(super::metrics::ALARMS_CLEARED_TOTAL, "kind" => self.kind).increment(1);
            tracing::info!(agent_id = self.agent_id, kind = self.kind, "alarm cleared");
        }
    }
}
