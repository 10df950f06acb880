//! Liveness of the sources that publish over gRPC ingest.
//!
//! A source is up while at least one ingest stream carries it and it sent a
//! batch within the silence timeout. When its last stream closes it goes
//! down after a grace period (a quick reconnect does not flap it); a bridge
//! can also report its own health with `source_healthy`, which wins until
//! the bridge reports again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most distinct gRPC sources tracked; batches for more are rejected.
pub const MAX_SOURCES: usize = 1024;

/// Health change the caller must report to the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthReport {
    Up(String),
    Down(String),
}

/// See the module documentation.
#[derive(Debug)]
pub struct GrpcSourceHealth {
    sources: Mutex<HashMap<String, Entry>>,
    silence: Duration,
    grace: Duration,
}

#[derive(Debug)]
struct Entry {
    streams: usize,
    last_seen: Instant,
    /// When the last stream closed, while no stream is open.
    closed_at: Option<Instant>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    /// Down because of silence or disconnect; the next batch brings it up.
    DownImplicit,
    /// The bridge reported itself down; only the bridge brings it up again.
    DownReported,
}

/// Too many distinct sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManySources;

// === impl GrpcSourceHealth ===

impl GrpcSourceHealth {
    pub fn new(silence: Duration, grace: Duration) -> GrpcSourceHealth {
        GrpcSourceHealth { sources: Mutex::new(HashMap::new()), silence, grace }
    }

    /// Registers a stream carrying `source`.
    pub fn stream_opened(&self, source: &str, now: Instant) -> Result<(), TooManySources> {
        let mut sources = self.lock();
        if !sources.contains_key(source) && sources.len() >= MAX_SOURCES {
            return Err(TooManySources);
        }
        let entry = sources.entry(source.to_string()).or_insert(Entry {
            streams: 0,
            last_seen: now,
            closed_at: None,
            state: State::Up,
        });
        entry.streams += 1;
        entry.closed_at = None;
        Ok(())
    }

    /// Records a batch; `reported` is the batch's `source_healthy` field.
    /// Returns what to report, if the health changed.
    pub fn batch(&self, source: &str, reported: Option<bool>, now: Instant) -> Option<HealthReport> {
        let mut sources = self.lock();
        let entry = sources.get_mut(source)?;
        entry.last_seen = now;
        let next = match (reported, entry.state) {
            (Some(true), _) => State::Up,
            (Some(false), _) => State::DownReported,
            (None, State::DownImplicit) => State::Up,
            (None, state) => state,
        };
        transition(source, entry, next)
    }

    /// Unregisters a stream carrying `source`.
    pub fn stream_closed(&self, source: &str, now: Instant) {
        let mut sources = self.lock();
        if let Some(entry) = sources.get_mut(source) {
            entry.streams = entry.streams.saturating_sub(1);
            if entry.streams == 0 {
                entry.closed_at = Some(now);
            }
        }
    }

    /// Returns the sources that went down: silent too long, or without a
    /// stream for longer than the grace period. Forgets sources that have
    /// been down with no stream for a long time.
    pub fn poll(&self, now: Instant) -> Vec<HealthReport> {
        let mut sources = self.lock();
        let mut reports = Vec::new();
        for (source, entry) in sources.iter_mut() {
            let silent = now.saturating_duration_since(entry.last_seen) >= self.silence;
            let gone = entry.closed_at.is_some_and(|at| now.saturating_duration_since(at) >= self.grace);
            if (silent || gone) && entry.state == State::Up {
                reports.extend(transition(source, entry, State::DownImplicit));
            }
        }
        // Keep memory bounded: a source gone for a day is forgotten; it is
        // reported down already and comes back as new.
        sources.retain(|_, e| {
            e.streams > 0
                || e.closed_at.is_none_or(|at| now.saturating_duration_since(at) < Duration::from_secs(86_400))
        });
        reports
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn transition(source: &str, entry: &mut Entry, next: State) -> Option<HealthReport> {
    let was_up = entry.state == State::Up;
    entry.state = next;
    match (was_up, next == State::Up) {
        (true, false) => Some(HealthReport::Down(source.to_string())),
        (false, true) => Some(HealthReport::Up(source.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health() -> GrpcSourceHealth {
        GrpcSourceHealth::new(Duration::from_secs(90), Duration::from_secs(10))
    }

    #[test]
    fn closed_stream_goes_down_after_grace() {
        let health = health();
        let t0 = Instant::now();
        health.stream_opened("cti", t0).unwrap();
        health.stream_closed("cti", t0);

        assert!(health.poll(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(health.poll(t0 + Duration::from_secs(10)), vec![HealthReport::Down("cti".into())]);
    }

    #[test]
    fn reconnect_within_grace_stays_up() {
        let health = health();
        let t0 = Instant::now();
        health.stream_opened("cti", t0).unwrap();
        health.stream_closed("cti", t0);
        health.stream_opened("cti", t0 + Duration::from_secs(2)).unwrap();

        assert!(health.poll(t0 + Duration::from_secs(11)).is_empty());
    }

    #[test]
    fn silence_goes_down_and_next_batch_comes_up() {
        let health = health();
        let t0 = Instant::now();
        health.stream_opened("cti", t0).unwrap();

        assert_eq!(health.poll(t0 + Duration::from_secs(90)), vec![HealthReport::Down("cti".into())]);
        assert_eq!(health.batch("cti", None, t0 + Duration::from_secs(91)), Some(HealthReport::Up("cti".into())));
    }

    #[test]
    fn reported_down_needs_reported_up() {
        let health = health();
        let t0 = Instant::now();
        health.stream_opened("cti", t0).unwrap();

        assert_eq!(health.batch("cti", Some(false), t0), Some(HealthReport::Down("cti".into())));
        assert_eq!(health.batch("cti", None, t0), None);
        assert_eq!(health.batch("cti", Some(true), t0), Some(HealthReport::Up("cti".into())));
    }

    #[test]
    fn source_limit_rejects_new_sources() {
        let health = health();
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES {
            health.stream_opened(&format!("s-{i}"), t0).unwrap();
        }
        assert_eq!(health.stream_opened("one-more", t0), Err(TooManySources));
        assert!(health.stream_opened("s-0", t0).is_ok());
    }
}
