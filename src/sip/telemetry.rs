//! Metrics and rate-limited logs of the SIP adapter.
//!
//! The metric names are listed in `docs/integration/sip.md`, which also
//! explains how to read them when an agent shows unknown.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{counter, describe_counter, describe_gauge, gauge};

use super::subscription::Package;

pub const SUBSCRIPTIONS: &str = "floorwatch_sip_subscriptions";
pub const NOTIFY_TOTAL: &str = "floorwatch_sip_notify_total";
pub const PARSE_ERRORS_TOTAL: &str = "floorwatch_sip_parse_errors_total";
pub const REFRESH_FAILURES_TOTAL: &str = "floorwatch_sip_refresh_failures_total";
pub const RESPONSES_SENT_TOTAL: &str = "floorwatch_sip_responses_sent_total";
pub const DROPPED_TOTAL: &str = "floorwatch_sip_dropped_total";
pub const EVENTS_TOTAL: &str = "floorwatch_sip_events_total";

/// Phases the subscription gauge reports, so a phase that empties drops to 0.
const PHASES: [&str; 5] = ["waiting", "requesting", "active", "pending", "failed"];

pub fn describe_metrics() {
    describe_gauge!(SUBSCRIPTIONS, "SIP subscriptions, by event package and state.");
    describe_counter!(NOTIFY_TOTAL, "NOTIFY requests received, by event package and response code.");
    describe_counter!(PARSE_ERRORS_TOTAL, "SIP messages and NOTIFY bodies that failed to parse, by kind.");
    describe_counter!(
        REFRESH_FAILURES_TOTAL,
        "SUBSCRIBE requests (initial or refresh) that failed, by event package and cause."
    );
    describe_counter!(RESPONSES_SENT_TOTAL, "SIP responses sent, by status code.");
    describe_counter!(DROPPED_TOTAL, "Received SIP messages dropped without a response, by reason.");
    describe_counter!(EVENTS_TOTAL, "Agent events the SIP adapter produced, by event package.");
}

/// Sets the subscription gauge from the manager's counts.
pub fn subscriptions(counts: &BTreeMap<(Package, &'static str), usize>, packages: &[Package]) {
    for package in packages {
        for phase in PHASES {
            let n = counts.get(&(*package, phase)).copied().unwrap_or(0);
            gauge!(SUBSCRIPTIONS, "package" => package.event(), "state" => phase).set(n as f64);
        }
    }
}

pub fn notify(package: &'static str, status: u16) {
    counter!(NOTIFY_TOTAL, "package" => package, "code" => status.to_string()).increment(1);
}

pub fn parse_error(kind: &'static str) {
    counter!(PARSE_ERRORS_TOTAL, "kind" => kind).increment(1);
}

pub fn refresh_failure(package: Package, cause: String) {
    counter!(REFRESH_FAILURES_TOTAL, "package" => package.event(), "cause" => cause).increment(1);
}

pub fn response_sent(status: u16) {
    counter!(RESPONSES_SENT_TOTAL, "code" => status.to_string()).increment(1);
}

pub fn dropped(reason: &'static str) {
    counter!(DROPPED_TOTAL, "reason" => reason).increment(1);
}

pub fn events(package: Package, n: usize) {
    counter!(EVENTS_TOTAL, "package" => package.event()).increment(n as u64);
}

/// Lets one log line through per interval and counts the ones held back,
/// so a flood of bad messages cannot flood the log.
#[derive(Debug)]
pub struct LogLimiter {
    interval: Duration,
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub fn new(interval: Duration) -> LogLimiter {
        LogLimiter { interval, last: Mutex::new(None), suppressed: AtomicU64::new(0) }
    }

    /// Returns `Some(suppressed)` when a line may be logged now, with the
    /// number of lines held back since the last one.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < self.interval) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_holds_back_lines_within_interval() {
        let limiter = LogLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limiter.allow(t0), Some(0));
        assert_eq!(limiter.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.allow(t0 + Duration::from_secs(11)), Some(1));
    }
}
