//! One agent's scheduled activities in the shape the engine needs: sorted
//! slots in epoch milliseconds, grouped into shifts.
//!
//! A shift is a chain of activities that touch (one ends where the next
//! starts). Figures of a whole shift count toward the local day on which the
//! shift starts, so a night shift is not split at midnight.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::domain::{ActivityType, ScheduledActivity};

/// One scheduled activity, `start_ms` inclusive and `end_ms` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub start_ms: i64,
    pub end_ms: i64,
    pub activity: ActivityType,
    /// Index into [`Schedule::shifts`].
    pub shift: u32,
}

/// A chain of touching slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Start of the first work activity, where late logins are measured from.
    pub first_work_start_ms: Option<i64>,
    /// Local date of `start_ms`: the day the shift's figures count toward.
    pub day: Date,
}

/// An agent's schedule. Overlapping activities are allowed (the roster
/// check reports them); the one that started last wins a lookup.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    slots: Vec<Slot>,
    shifts: Vec<Shift>,
}

// === impl Schedule ===

impl Schedule {
    /// Builds a schedule from activities of one agent, in any order.
    pub fn new(activities: &[ScheduledActivity], tz: &TimeZone) -> Schedule {
        let mut slots: Vec<Slot> = activities
            .iter()
            .filter(|a| a.end > a.start)
            .map(|a| Slot {
                start_ms: a.start.as_millisecond(),
                end_ms: a.end.as_millisecond(),
                activity: a.activity,
                shift: 0,
            })
            .collect();
        slots.sort_by_key(|s| (s.start_ms, s.end_ms));

        let mut shifts: Vec<Shift> = Vec::new();
        for slot in &mut slots {
            let joins_previous = shifts.last().is_some_and(|shift| slot.start_ms <= shift.end_ms);
            if !joins_previous {
                shifts.push(Shift {
                    start_ms: slot.start_ms,
                    end_ms: slot.end_ms,
                    first_work_start_ms: None,
                    day: local_date(slot.start_ms, tz),
                });
            }
            let index = shifts.len() - 1;
            let shift = &mut shifts[index];
            shift.end_ms = shift.end_ms.max(slot.end_ms);
            if slot.activity.is_work() && shift.first_work_start_ms.is_none() {
                shift.first_work_start_ms = Some(slot.start_ms);
            }
            slot.shift = index as u32;
        }

        Schedule { slots, shifts }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn shift(&self, index: u32) -> &Shift {
        &self.shifts[index as usize]
    }

    /// Returns the index of the slot covering `t`; with overlaps, the one
    /// that started last.
    pub fn slot_at(&self, t: i64) -> Option<usize> {
        let shift = self.open_shift_at(t)?;
        let after = self.slots.partition_point(|s| s.start_ms <= t);
        (0..after).rev().take_while(|&i| self.slots[i].shift == shift).find(|&i| self.slots[i].end_ms > t)
    }

    pub fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    /// Returns the first slot start or end strictly after `t`.
    pub fn next_boundary_after(&self, t: i64) -> Option<i64> {
        let after = self.slots.partition_point(|s| s.start_ms <= t);
        let mut next = self.slots.get(after).map(|s| s.start_ms);

        // Shifts do not overlap, so only slots of the shift open at `t` can
        // end after it.
        if let Some(shift) = self.open_shift_at(t) {
            for slot in self.slots[..after].iter().rev().take_while(|s| s.shift == shift) {
                if slot.end_ms > t {
                    next = Some(next.map_or(slot.end_ms, |n| n.min(slot.end_ms)));
                }
            }
        }
        next
    }

    /// Returns the shift that has started at or before `t` and not ended.
    fn open_shift_at(&self, t: i64) -> Option<u32> {
        let after = self.slots.partition_point(|s| s.start_ms <= t);
        let shift = self.slots.get(after.checked_sub(1)?)?.shift;
        (self.shifts[shift as usize].end_ms > t).then_some(shift)
    }
}

/// Returns the local date of an instant in `tz`.
pub fn local_date(ms: i64, tz: &TimeZone) -> Date {
    Timestamp::from_millisecond(ms).map(|ts| tz.to_datetime(ts).date()).unwrap_or(Date::ZERO)
}

/// Returns the instant local `date` starts in `tz` (midnight, or the first
/// instant after a gap at midnight).
pub fn day_start_ms(date: Date, tz: &TimeZone) -> i64 {
    date.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_millisecond()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(start: &str, end: &str, activity: ActivityType) -> ScheduledActivity {
        ScheduledActivity { agent_id: "a-1".into(), start: start.parse().unwrap(), end: end.parse().unwrap(), activity }
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").unwrap()
    }

    #[test]
    fn touching_slots_form_one_shift() {
        let schedule = Schedule::new(
            &[
                activity("2026-12-07T08:00:00Z", "2026-12-07T10:00:00Z", ActivityType::PhoneDuty),
                activity("2026-12-07T10:00:00Z", "2026-12-07T10:15:00Z", ActivityType::Break),
                activity("2026-12-07T13:00:00Z", "2026-12-07T15:00:00Z", ActivityType::PhoneDuty),
            ],
            &amsterdam(),
        );
        assert_eq!(schedule.slot(0).shift, 0);
        assert_eq!(schedule.slot(1).shift, 0);
        assert_eq!(schedule.slot(2).shift, 1);
        assert_eq!(schedule.shift(0).end_ms, ms("2026-12-07T10:15:00Z"));
    }

    #[test]
    fn slot_lookup_is_start_inclusive_end_exclusive() {
        let schedule = Schedule::new(
            &[activity("2026-12-07T08:00:00Z", "2026-12-07T10:00:00Z", ActivityType::PhoneDuty)],
            &amsterdam(),
        );
        assert_eq!(schedule.slot_at(ms("2026-12-07T07:59:59.999Z")), None);
        assert_eq!(schedule.slot_at(ms("2026-12-07T08:00:00Z")), Some(0));
        assert_eq!(schedule.slot_at(ms("2026-12-07T09:59:59.999Z")), Some(0));
        assert_eq!(schedule.slot_at(ms("2026-12-07T10:00:00Z")), None);
    }

    #[test]
    fn later_start_wins_overlap() {
        let schedule = Schedule::new(
            &[
                activity("2026-12-07T08:00:00Z", "2026-12-07T12:00:00Z", ActivityType::PhoneDuty),
                activity("2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", ActivityType::Meeting),
            ],
            &amsterdam(),
        );
        let at = schedule.slot_at(ms("2026-12-07T09:10:00Z")).unwrap();
        assert_eq!(schedule.slot(at).activity, ActivityType::Meeting);
        let after = schedule.slot_at(ms("2026-12-07T09:40:00Z")).unwrap();
        assert_eq!(schedule.slot(after).activity, ActivityType::PhoneDuty);
    }

    #[test]
    fn next_boundary_sees_starts_and_ends() {
        let schedule = Schedule::new(
            &[
                activity("2026-12-07T08:00:00Z", "2026-12-07T12:00:00Z", ActivityType::PhoneDuty),
                activity("2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", ActivityType::Meeting),
            ],
            &amsterdam(),
        );
        assert_eq!(schedule.next_boundary_after(ms("2026-12-07T07:00:00Z")), Some(ms("2026-12-07T08:00:00Z")));
        assert_eq!(schedule.next_boundary_after(ms("2026-12-07T08:00:00Z")), Some(ms("2026-12-07T09:00:00Z")));
        assert_eq!(schedule.next_boundary_after(ms("2026-12-07T09:00:00Z")), Some(ms("2026-12-07T09:30:00Z")));
        assert_eq!(schedule.next_boundary_after(ms("2026-12-07T09:30:00Z")), Some(ms("2026-12-07T12:00:00Z")));
        assert_eq!(schedule.next_boundary_after(ms("2026-12-07T12:00:00Z")), None);
    }

    #[test]
    fn night_shift_counts_to_start_day() {
        let schedule = Schedule::new(
            &[activity("2026-12-07T21:00:00Z", "2026-12-08T02:00:00Z", ActivityType::PhoneDuty)],
            &amsterdam(),
        );
        assert_eq!(schedule.shift(0).day, jiff::civil::date(2026, 12, 7));
    }
}
