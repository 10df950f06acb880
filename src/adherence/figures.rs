//! Adherence figures of one agent for one local day, kept in whole
//! milliseconds so sums are exact and a recomputation gives identical results.

use crate::domain::AdherenceStatus;

/// Figures of one agent for one local day.
///
/// Scheduled time is split by adherence status, so
/// `scheduled_ms == in_ms + out_ms + neutral_ms + unknown_ms + excused_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// All scheduled activities.
    pub scheduled_ms: i64,
    /// Scheduled work (activities for which `ActivityType::is_work` holds).
    pub scheduled_work_ms: i64,
    pub in_ms: i64,
    pub out_ms: i64,
    /// Neutral by the rule matrix.
    pub neutral_ms: i64,
    /// The agent's source was down; reported as part of neutral time.
    pub unknown_ms: i64,
    pub excused_ms: i64,
    /// Logged in for work during scheduled work.
    pub logged_in_work_ms: i64,
    pub late_login_ms: i64,
    pub early_logout_ms: i64,
    /// Logged in while nothing was scheduled.
    pub unscheduled_login_ms: i64,
    pub alarms: u32,
    /// Set when the per-day history limit was hit, so a recomputation could
    /// not replay every event.
    pub approximate: bool,
}

// === impl DayFigures ===

impl DayFigures {
    /// Adds `ms` of scheduled time spent in `status`.
    pub fn add_scheduled(&mut self, status: AdherenceStatus, is_work: bool, logged_in_for_work: bool, ms: i64) {
        self.scheduled_ms += ms;
        if is_work {
            self.scheduled_work_ms += ms;
            if logged_in_for_work {
                self.logged_in_work_ms += ms;
            }
        }
        match status {
            AdherenceStatus::InAdherence => self.in_ms += ms,
            AdherenceStatus::OutOfAdherence => self.out_ms += ms,
            AdherenceStatus::Neutral => self.neutral_ms += ms,
            AdherenceStatus::Unknown => self.unknown_ms += ms,
            AdherenceStatus::Excused => self.excused_ms += ms,
        }
    }

    /// Neutral time as reported: rule-neutral plus unknown.
    pub fn neutral_total_ms(&self) -> i64 {
        self.neutral_ms + self.unknown_ms
    }

    /// Returns in ÷ (scheduled − neutral − excused) as a percentage, or
    /// `None` when the divisor is zero.
    pub fn adherence_percent(&self) -> Option<f64> {
        let divisor = self.scheduled_ms - self.neutral_total_ms() - self.excused_ms;
        (divisor > 0).then(|| self.in_ms as f64 * 100.0 / divisor as f64)
    }

    /// Returns logged-in work time ÷ scheduled work time as a percentage, or
    /// `None` with no scheduled work.
    pub fn conformance_percent(&self) -> Option<f64> {
        (self.scheduled_work_ms > 0).then(|| self.logged_in_work_ms as f64 * 100.0 / self.scheduled_work_ms as f64)
    }

    /// Adds another agent's figures, for team totals.
    pub fn accumulate(&mut self, other: &DayFigures) {
        self.scheduled_ms += other.scheduled_ms;
        self.scheduled_work_ms += other.scheduled_work_ms;
        self.in_ms += other.in_ms;
        self.out_ms += other.out_ms;
        self.neutral_ms += other.neutral_ms;
        self.unknown_ms += other.unknown_ms;
        self.excused_ms += other.excused_ms;
        self.logged_in_work_ms += other.logged_in_work_ms;
        self.late_login_ms += other.late_login_ms;
        self.early_logout_ms += other.early_logout_ms;
        self.unscheduled_login_ms += other.unscheduled_login_ms;
        self.alarms += other.alarms;
        self.approximate |= other.approximate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adherence_leaves_out_neutral_and_excused() {
        let mut day = DayFigures::default();
        day.add_scheduled(AdherenceStatus::InAdherence, true, true, 3_000);
        day.add_scheduled(AdherenceStatus::OutOfAdherence, true, false, 1_000);
        day.add_scheduled(AdherenceStatus::Neutral, true, true, 500);
        day.add_scheduled(AdherenceStatus::Unknown, true, true, 250);
        day.add_scheduled(AdherenceStatus::Excused, true, false, 250);

        assert_eq!(day.scheduled_ms, 5_000);
        assert_eq!(day.adherence_percent(), Some(75.0));
        assert_eq!(day.conformance_percent(), Some(75.0));
    }

    #[test]
    fn no_scheduled_time_has_no_percentages() {
        let day = DayFigures::default();
        assert_eq!(day.adherence_percent(), None);
        assert_eq!(day.conformance_percent(), None);
    }
}
