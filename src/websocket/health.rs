//! Source health and sequence bookkeeping, as pure state machines.
//!
//! [`HealthTracker`] decides when a source turns healthy or unhealthy from
//! connection opens, closes and activity, with `now` passed in. It reports
//! transitions only; the caller sends them to the pipeline. [`SeqTracker`]
//! classifies a feed's `seq` numbers as in order, gap, duplicate or restart.
//! Neither does I/O or reads a clock.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Health of the sources one server or client feeds.
///
/// Invariant: a source is reported healthy only while at least one
/// connection for it is open and it sent an event or heartbeat within
/// `silence_timeout`. After its last connection closes, it is reported
/// unhealthy once `grace` passes without a new connection. An entry is
/// removed once its last connection is closed and the grace is over, so the
/// map contains at most one entry per open connection plus recent closes.
#[derive(Debug)]
pub struct HealthTracker {
    silence_timeout: Duration,
    /// Keep a source's entry after its grace ran out. A client, with its
    /// one fixed source, sets this so it reports a long outage only once.
    retain_closed: bool,
    grace: Duration,
    sources: HashMap<String, SourceState>,
}

#[derive(Debug)]
struct SourceState {
    open: usize,
    last_activity: Option<Instant>,
    /// When the last connection closed, while none is open.
    closed_at: Option<Instant>,
    /// Last state sent to the pipeline; `None` before the first report.
    reported: Option<bool>,
}

/// A health change to send to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    pub source: String,
    pub healthy: bool,
}

/// Classification of one `seq` number relative to the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The first number seen, the next one, or an event without `seq`.
    InOrder,
    /// Numbers `first..=last` were skipped; the event itself is new.
    Gap { first: u64, last: u64 },
    /// At or below the highest number seen: a replay, dropped.
    Duplicate { last_seen: u64 },
    /// The first number after a reconnect went backwards: the feed
    /// restarted its numbering, so the event is taken as new.
    Restarted { last_seen: u64 },
}

/// The highest `seq` seen on one feed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqTracker {
    last: Option<u64>,
    /// Set by [`SeqTracker::reconnected`] until the next numbered event.
    after_reconnect: bool,
}

// === impl HealthTracker ===

impl HealthTracker {
    /// Creates a tracker that removes a source once it is closed and reported.
    pub fn new(silence_timeout: Duration, grace: Duration) -> HealthTracker {
        HealthTracker { silence_timeout, retain_closed: false, grace, sources: HashMap::new() }
    }

    /// Creates a tracker that keeps closed sources, for a client's fixed source.
    pub fn retaining(silence_timeout: Duration, grace: Duration) -> HealthTracker {
        HealthTracker { silence_timeout, retain_closed: true, grace, sources: HashMap::new() }
    }

    /// Records that a connection for `source` opened.
    pub fn opened(&mut self, source: &str, _now: Instant) {
        let state = self.sources.entry(source.to_string()).or_insert(SourceState {
            open: 0,
            last_activity: None,
            closed_at: None,
            reported: None,
        });
        state.open += 1;
        state.closed_at = None;
    }

    /// Records an event or heartbeat; returns a change when the source was
    /// not reported healthy before.
    pub fn activity(&mut self, source: &str, now: Instant) -> Option<HealthChange> {
        let state = self.sources.get_mut(source)?;
        state.last_activity = Some(now);
        if state.open > 0 && state.reported != Some(true) {
            state.reported = Some(true);
            return Some(HealthChange { source: source.to_string(), healthy: true });
        }
        None
    }

    /// Records that a connection for `source` closed.
    pub fn closed(&mut self, source: &str, now: Instant) {
        if let Some(state) = self.sources.get_mut(source) {
            state.open = state.open.saturating_sub(1);
            if state.open == 0 {
                state.closed_at = Some(now);
            }
        }
    }

    /// Marks `source` unhealthy at once, without grace: for a client that
    /// cannot connect at all. Returns a change unless already reported.
    pub fn unreachable(&mut self, source: &str) -> Option<HealthChange> {
        let state = self.sources.entry(source.to_string()).or_insert(SourceState {
            open: 0,
            last_activity: None,
            closed_at: None,
            reported: None,
        });
        if state.reported == Some(false) {
            return None;
        }
        state.reported = Some(false);
        Some(HealthChange { source: source.to_string(), healthy: false })
    }

    /// Returns the changes due at `now`: silence past the timeout, and
    /// closes whose grace ran out. Forgets sources with nothing open.
    pub fn poll(&mut self, now: Instant) -> Vec<HealthChange> {
        let mut changes = Vec::new();
        let silence_timeout = self.silence_timeout;
        let grace = self.grace;
        let retain_closed = self.retain_closed;

        self.sources.retain(|source, state| {
            if state.open == 0 {
                let grace_over = state.closed_at.is_none_or(|closed| now >= closed + grace);
                if !grace_over {
                    return true;
                }
                if state.reported == Some(true) {
                    state.reported = Some(false);
                    changes.push(HealthChange { source: source.clone(), healthy: false });
                }
                state.closed_at = None;
                return retain_closed;
            }

            let silent = state.last_activity.is_some_and(|last| now >= last + silence_timeout);
            if silent && state.reported == Some(true) {
                state.reported = Some(false);
                changes.push(HealthChange { source: source.clone(), healthy: false });
            }
            true
        });
        changes
    }

    /// Returns the next instant at which [`HealthTracker::poll`] may report
    /// a change, or `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.sources
            .values()
            .filter_map(|state| {
                if state.open == 0 {
                    return state.closed_at.map(|closed| closed + self.grace);
                }
                if state.reported == Some(true) {
                    return state.last_activity.map(|last| last + self.silence_timeout);
                }
                None
            })
            .min()
    }

    /// Number of sources tracked, for tests and a sanity bound.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }
}

// === impl SeqTracker ===

impl SeqTracker {
    /// Classifies `seq` without recording it; call [`SeqTracker::record`]
    /// once the event is processed.
    pub fn check(&self, seq: Option<u64>) -> SeqVerdict {
        let (Some(seq), Some(last)) = (seq, self.last) else {
            return SeqVerdict::InOrder;
        };
        if seq <= last {
            if self.after_reconnect {
                return SeqVerdict::Restarted { last_seen: last };
            }
            return SeqVerdict::Duplicate { last_seen: last };
        }
        if seq > last.saturating_add(1) {
            return SeqVerdict::Gap { first: last + 1, last: seq - 1 };
        }
        SeqVerdict::InOrder
    }

    /// Records a processed event's `seq`.
    pub fn record(&mut self, seq: Option<u64>) {
        let Some(seq) = seq else { return };
        match self.check(Some(seq)) {
            SeqVerdict::Duplicate { .. } => {}
            SeqVerdict::Restarted { .. } => self.last = Some(seq),
            SeqVerdict::InOrder | SeqVerdict::Gap { .. } => self.last = Some(self.last.map_or(seq, |l| l.max(seq))),
        }
        self.after_reconnect = false;
    }

    /// Notes a new connection: the next numbered event may restart the
    /// numbering instead of being a duplicate.
    pub fn reconnected(&mut self) {
        self.after_reconnect = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SILENCE: Duration = Duration::from_secs(10);
    const GRACE: Duration = Duration::from_secs(2);

    fn tracker() -> HealthTracker {
        HealthTracker::new(SILENCE, GRACE)
    }

    fn change(healthy: bool) -> HealthChange {
        HealthChange { source: "feed".into(), healthy }
    }

    #[test]
    fn first_activity_reports_healthy() {
        let now = Instant::now();
        let mut health = tracker();
        health.opened("feed", now);
        assert_eq!(health.activity("feed", now), Some(change(true)));
        assert_eq!(health.activity("feed", now), None);
    }

    #[test]
    fn silence_reports_unhealthy_then_recovers() {
        let now = Instant::now();
        let mut health = tracker();
        health.opened("feed", now);
        health.activity("feed", now);

        assert_eq!(health.next_deadline(), Some(now + SILENCE));
        assert!(health.poll(now + SILENCE - Duration::from_millis(1)).is_empty());
        assert_eq!(health.poll(now + SILENCE), vec![change(false)]);
        assert_eq!(health.activity("feed", now + SILENCE * 2), Some(change(true)));
    }

    #[test]
    fn close_reports_unhealthy_after_grace() {
        let now = Instant::now();
        let mut health = tracker();
        health.opened("feed", now);
        health.activity("feed", now);
        health.closed("feed", now);

        assert!(health.poll(now + GRACE / 2).is_empty());
        assert_eq!(health.poll(now + GRACE), vec![change(false)]);
        assert_eq!(health.tracked_sources(), 0);
    }

    #[test]
    fn reconnect_within_grace_reports_nothing() {
        let now = Instant::now();
        let mut health = tracker();
        health.opened("feed", now);
        health.activity("feed", now);
        health.closed("feed", now);
        health.opened("feed", now + GRACE / 2);

        assert!(health.poll(now + GRACE).is_empty());
        assert_eq!(health.activity("feed", now + GRACE), None);
    }

    #[test]
    fn second_connection_keeps_source_up() {
        let now = Instant::now();
        let mut health = tracker();
        health.opened("feed", now);
        health.opened("feed", now);
        health.activity("feed", now);
        health.closed("feed", now);

        assert!(health.poll(now + GRACE).is_empty());
    }

    #[test]
    fn unreachable_reports_once() {
        let mut health = HealthTracker::retaining(SILENCE, GRACE);
        assert_eq!(health.unreachable("feed"), Some(change(false)));
        assert_eq!(health.unreachable("feed"), None);
        assert!(health.poll(Instant::now()).is_empty());
        assert_eq!(health.unreachable("feed"), None);
    }

    #[test]
    fn retained_source_reports_outage_once() {
        let now = Instant::now();
        let mut health = HealthTracker::retaining(SILENCE, GRACE);
        health.opened("feed", now);
        health.activity("feed", now);
        health.closed("feed", now);

        assert_eq!(health.poll(now + GRACE), vec![change(false)]);
        assert_eq!(health.unreachable("feed"), None);
        assert_eq!(health.next_deadline(), None);
    }

    #[test]
    fn seq_in_order_and_gap() {
        let mut seq = SeqTracker::default();
        assert_eq!(seq.check(Some(5)), SeqVerdict::InOrder);
        seq.record(Some(5));
        assert_eq!(seq.check(Some(6)), SeqVerdict::InOrder);
        assert_eq!(seq.check(Some(9)), SeqVerdict::Gap { first: 6, last: 8 });
    }

    #[test]
    fn seq_replay_is_duplicate() {
        let mut seq = SeqTracker::default();
        seq.record(Some(5));
        assert_eq!(seq.check(Some(5)), SeqVerdict::Duplicate { last_seen: 5 });
        assert_eq!(seq.check(Some(2)), SeqVerdict::Duplicate { last_seen: 5 });
    }

    #[test]
    fn seq_restart_after_reconnect() {
        let mut seq = SeqTracker::default();
        seq.record(Some(500));
        seq.reconnected();
        assert_eq!(seq.check(Some(1)), SeqVerdict::Restarted { last_seen: 500 });
        seq.record(Some(1));
        assert_eq!(seq.check(Some(2)), SeqVerdict::InOrder);
    }

    #[test]
    fn seq_missing_is_in_order() {
        let seq = SeqTracker::default();
        assert_eq!(seq.check(None), SeqVerdict::InOrder);
    }
}
