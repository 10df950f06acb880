//! The final window: weeks close enough to now that the published roster
//! may no longer change by a new publish.
//!
//! With `final_weeks_ahead = 3`, the week that contains now and the two
//! weeks after it are final, and the third week after now's week is the
//! first open one. Precisely: an activity is inside the final window when it
//! starts before 00:00 site time on the Monday `final_weeks_ahead` ISO weeks
//! after the Monday of now's week. Activities in the past are inside the
//! window too. Swaps are not checked against the window: agents may swap
//! hours inside it.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::book::{PeriodUpdate, RosterBook};
use super::rules::{LabourRules, LocalActivity, local_date, monday_of, start_of_day};
use super::violation::{Detail, Rule, Violation};
use crate::domain::{ActivityType, ScheduledActivity};

/// Returns the instant the open weeks begin: activities starting before it
/// are final. Returns None when the window ends past the end of jiff's
/// range (a `final_weeks_ahead` of tens of thousands of weeks).
pub fn final_window_end(now: Timestamp, tz: &TimeZone, rules: &LabourRules) -> Option<Timestamp> {
    let this_monday = monday_of(local_date(now, tz));
    let weeks = Span::new().try_weeks(i64::from(rules.final_weeks_ahead)).ok()?;
    let open_monday = this_monday.checked_add(weeks).ok()?;
    start_of_day(open_monday, tz)
}

/// Lists the activities that `update` would add, remove or change inside
/// the final window, compared with `previous`. Only the agents and period
/// the update replaces are compared. An activity that moved or changed type
/// but kept its start is reported once, as changed.
pub fn changes_inside_final_window(
    previous: &RosterBook,
    update: &PeriodUpdate,
    now: Timestamp,
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<Violation> {
    let Some(window_end) = final_window_end(now, tz, rules) else {
        return Vec::new();
    };
    let window_end = window_end.min(update.end);
    if window_end <= update.start {
        return Vec::new();
    }

    let mut violations = Vec::new();
    for agent in &update.agent_ids {
        let old: Vec<&ScheduledActivity> = previous
            .activities_in(agent, update.start, window_end)
            .filter(|a| a.start >= update.start && a.start < window_end)
            .collect();
        let new: Vec<&ScheduledActivity> = update
            .activities
            .iter()
            .filter(|a| &a.agent_id == agent && a.start >= update.start && a.start < window_end)
            .collect();
        diff_agent(&old, &new, tz, rules, &mut violations);
    }

    violations.sort_by(|a, b| (&a.agent_id, a.date).cmp(&(&b.agent_id, b.date)));
    tracing::debug!(
        changes = violations.len(),
        window_end = %window_end,
        "compared roster update with the final window"
    );
    violations
}

type Key = (Timestamp, Timestamp, ActivityType);

fn diff_agent(
    old: &[&ScheduledActivity],
    new: &[&ScheduledActivity],
    tz: &TimeZone,
    rules: &LabourRules,
    violations: &mut Vec<Violation>,
) {
    // Multisets, so an activity listed twice and then once counts as removed.
    let mut counts: BTreeMap<Key, i64> = BTreeMap::new();
    for a in old {
        *counts.entry((a.start, a.end, a.activity)).or_default() -= 1;
    }
    for a in new {
        *counts.entry((a.start, a.end, a.activity)).or_default() += 1;
    }

    let mut removed: Vec<&ScheduledActivity> = Vec::new();
    let mut added: Vec<&ScheduledActivity> = Vec::new();
    for (key, count) in counts {
        let source = if count < 0 { old } else { new };
        let Some(&activity) = source.iter().find(|a| (a.start, a.end, a.activity) == key) else {
            continue;
        };
        for _ in 0..count.unsigned_abs() {
            if count < 0 {
                removed.push(activity);
            } else {
                added.push(activity);
            }
        }
    }

    let limit = f64::from(rules.final_weeks_ahead);
    for before in removed {
        let paired = added.iter().position(|a| a.start == before.start);
        let (detail, subject) = match paired {
            Some(index) => {
                let after = added.remove(index);
                let detail =
                    Detail::Changed { before: LocalActivity::of(before, tz), after: LocalActivity::of(after, tz) };
                (detail, after)
            }
            None => (Detail::Removed { activity: LocalActivity::of(before, tz) }, before),
        };
        violations.push(change(subject, detail, limit, tz));
    }
    for after in added {
        let detail = Detail::Added { activity: LocalActivity::of(after, tz) };
        violations.push(change(after, detail, limit, tz));
    }
}

fn change(subject: &ScheduledActivity, detail: Detail, limit: f64, tz: &TimeZone) -> Violation {
    Violation {
        agent_id: subject.agent_id.clone(),
        date: local_date(subject.start, tz),
        rule: Rule::ChangeInsideFinalWindow,
        value: subject.end.duration_since(subject.start).as_secs_f64() / 3600.0,
        limit,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("test instant must parse")
    }

    fn activity(start: &str, end: &str, kind: ActivityType) -> ScheduledActivity {
        ScheduledActivity { agent_id: "a-1".into(), start: ts(start), end: ts(end), activity: kind }
    }

    /// Wednesday 2026-12-09 in week 50; weeks 50, 51 and 52 are final.
    fn now() -> Timestamp {
        ts("2026-12-09T10:00:00Z")
    }

    fn previous() -> RosterBook {
        RosterBook::from_activities(vec![
            activity("2026-12-21T08:00:00Z", "2026-12-21T11:00:00Z", ActivityType::PhoneDuty),
            activity("2026-12-28T08:00:00Z", "2026-12-28T11:00:00Z", ActivityType::PhoneDuty),
        ])
    }

    fn update(activities: Vec<ScheduledActivity>) -> PeriodUpdate {
        let mut update =
            PeriodUpdate::from_activities(ts("2026-12-20T23:00:00Z"), ts("2027-01-03T23:00:00Z"), activities);
        update.agent_ids.insert("a-1".into());
        update
    }

    #[test]
    fn window_ends_three_mondays_ahead() {
        let end = final_window_end(now(), &amsterdam(), &LabourRules::default());
        assert_eq!(end, Some(ts("2026-12-27T23:00:00Z")));
    }

    #[test]
    fn window_end_from_sunday_night() {
        // Sunday 23:30 local still belongs to week 50.
        let end = final_window_end(ts("2026-12-13T22:30:00Z"), &amsterdam(), &LabourRules::default());
        assert_eq!(end, Some(ts("2026-12-27T23:00:00Z")));
    }

    #[test]
    fn huge_window_does_not_panic() {
        let rules = LabourRules { final_weeks_ahead: u32::MAX, ..LabourRules::default() };
        assert_eq!(final_window_end(now(), &amsterdam(), &rules), None);
    }

    #[test]
    fn unchanged_roster_has_no_changes() {
        let got = changes_inside_final_window(
            &previous(),
            &update(previous().activities("a-1").to_vec()),
            now(),
            &amsterdam(),
            &LabourRules::default(),
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn removal_in_final_week_flagged() {
        let new = vec![activity("2026-12-28T08:00:00Z", "2026-12-28T11:00:00Z", ActivityType::PhoneDuty)];
        let got = changes_inside_final_window(&previous(), &update(new), now(), &amsterdam(), &LabourRules::default());
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0].detail, Detail::Removed { .. }), "{got:?}");
    }

    #[test]
    fn change_in_open_week_allowed() {
        let new = vec![activity("2026-12-21T08:00:00Z", "2026-12-21T11:00:00Z", ActivityType::PhoneDuty)];
        let got = changes_inside_final_window(&previous(), &update(new), now(), &amsterdam(), &LabourRules::default());
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn same_start_reported_as_changed() {
        let new = vec![
            activity("2026-12-21T08:00:00Z", "2026-12-21T10:00:00Z", ActivityType::Training),
            activity("2026-12-28T08:00:00Z", "2026-12-28T11:00:00Z", ActivityType::PhoneDuty),
        ];
        let got = changes_inside_final_window(&previous(), &update(new), now(), &amsterdam(), &LabourRules::default());
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0].detail, Detail::Changed { .. }), "{got:?}");
    }

    #[test]
    fn addition_in_final_week_flagged() {
        let mut new = previous().activities("a-1").to_vec();
        new.push(activity("2026-12-22T08:00:00Z", "2026-12-22T09:00:00Z", ActivityType::Meeting));
        let got = changes_inside_final_window(&previous(), &update(new), now(), &amsterdam(), &LabourRules::default());
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0].detail, Detail::Added { .. }), "{got:?}");
    }
}
