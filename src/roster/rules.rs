//! Labour rules for self-rostering agents, and the check of a roster
//! against them.
//!
//! The check is pure: it takes the activities, the agent directory, the site
//! time zone and the rule numbers, and returns every [`Violation`]. Days are
//! local days in the site zone. A shift (a chain of touching activities)
//! that crosses midnight counts toward the day it starts, and toward the ISO
//! week that day is in. Durations are real elapsed time, so a night shift
//! over the spring-forward change is an hour shorter than the wall clock
//! shows. The final-window rule compares two rosters and lives in
//! [`super::final_window`].

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::{Deserialize, Serialize};

use super::directory::AgentLookup;
pub use super::violation::{Detail, LocalActivity, Rule, Violation};
use crate::domain::{ActivityType, ScheduledActivity};

/// The numbers behind the labour rules; every one is configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabourRules {
    /// Smallest contract, hours per week.
    pub min_contract_hours: f64,
    /// Largest contract, hours per week.
    pub max_contract_hours: f64,
    /// Longest block of consecutive work, hours. A break or other non-work
    /// activity ends a block.
    pub max_block_hours: f64,
    /// Most work in one local day, hours.
    pub max_day_hours: f64,
    /// A week becomes final this many weeks ahead; changes inside that
    /// window are flagged.
    pub final_weeks_ahead: u32,
}

impl Default for LabourRules {
    fn default() -> Self {
        LabourRules {
            min_contract_hours: 15.0,
            max_contract_hours: 28.0,
            max_block_hours: 3.0,
            max_day_hours: 6.0,
            final_weeks_ahead: 3,
        }
    }
}

/// Agent facts the check uses, from the directory or the roster file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AgentStatus {
    /// Not in the directory: reported as `unknown_agent`; the weekly rules
    /// are skipped.
    Unknown,
    /// Known; without contract hours the weekly rules are skipped.
    Known { contract_hours: Option<f64> },
}

/// A chain of touching or overlapping activities of one agent.
struct Shift<'a> {
    /// The local day the shift counts toward: the day it starts.
    date: Date,
    activities: Vec<&'a ScheduledActivity>,
}

/// Checks `activities` against the labour rules, for the ISO weeks they
/// touch: every week that contains the start of a shift in the roster is
/// checked for every agent in the roster, so an agent who scheduled nothing
/// in such a week is reported. Agents absent from the roster are not
/// checked. The final-window rule is not part of this check.
pub fn check<L: AgentLookup + ?Sized>(
    agents: &L,
    activities: &[ScheduledActivity],
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<Violation> {
    let weeks = weeks_touched(activities, tz);
    check_weeks(agents, activities, &weeks, tz, rules)
}

/// Checks `activities` like [`check`], but checks the weekly contract hours
/// for exactly the ISO weeks whose Mondays are in `weeks`.
pub fn check_weeks<L: AgentLookup + ?Sized>(
    agents: &L,
    activities: &[ScheduledActivity],
    weeks: &BTreeSet<Date>,
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<Violation> {
    let status = |agent: &str| match agents.find_agent(agent) {
        None => AgentStatus::Unknown,
        Some(agent) => AgentStatus::Known { contract_hours: Some(agent.contract_hours) },
    };
    check_with(&status, activities, weeks, tz, rules)
}

/// Returns the Mondays of the ISO weeks that contain a shift start.
pub fn weeks_touched(activities: &[ScheduledActivity], tz: &TimeZone) -> BTreeSet<Date> {
    by_agent(activities).values().flat_map(|list| shifts(list, tz)).map(|shift| monday_of(shift.date)).collect()
}

/// Returns the Monday of the ISO week that contains `date`.
pub fn monday_of(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(Span::new().days(back)).unwrap_or(date)
}

/// Checks like [`check_weeks`], with the agent's status supplied by the
/// caller, so a roster file with its own contract hours can be checked.
pub(crate) fn check_with(
    status: &dyn Fn(&str) -> AgentStatus,
    activities: &[ScheduledActivity],
    weeks: &BTreeSet<Date>,
    tz: &TimeZone,
    rules: &LabourRules,
) -> Vec<Violation> {
    let mut violations = Vec::new();

    for (agent_id, list) in by_agent(activities) {
        let agent_shifts = shifts(&list, tz);

        let contract_hours = match status(agent_id) {
            AgentStatus::Unknown => {
                violations.push(unknown_agent(agent_id, &list, tz));
                None
            }
            AgentStatus::Known { contract_hours } => contract_hours,
        };

        if let Some(hours) = contract_hours {
            check_contract_range(agent_id, hours, weeks, rules, &mut violations);
            check_weekly_hours(agent_id, hours, &agent_shifts, weeks, &mut violations);
        }
        check_overlaps(&list, tz, &mut violations);
        check_blocks(&list, tz, rules, &mut violations);
        check_days(agent_id, &agent_shifts, rules, &mut violations);
    }

    violations.sort_by(|a, b| (&a.agent_id, a.date, a.rule).cmp(&(&b.agent_id, b.date, b.rule)));
    tracing::debug!(
        activities = activities.len(),
        weeks = weeks.len(),
        violations = violations.len(),
        "roster checked against labour rules"
    );
    violations
}

/// Groups activities per agent, each list sorted by start.
fn by_agent(activities: &[ScheduledActivity]) -> BTreeMap<&str, Vec<&ScheduledActivity>> {
    let mut grouped: BTreeMap<&str, Vec<&ScheduledActivity>> = BTreeMap::new();
    for activity in activities {
        grouped.entry(activity.agent_id.as_str()).or_default().push(activity);
    }
    for list in grouped.values_mut() {
        list.sort_by_key(|a| (a.start, a.end));
    }
    grouped
}

/// Splits one agent's sorted activities into shifts.
fn shifts<'a>(sorted: &[&'a ScheduledActivity], tz: &TimeZone) -> Vec<Shift<'a>> {
    let mut result: Vec<Shift<'a>> = Vec::new();
    let mut chain_end: Option<Timestamp> = None;

    for &activity in sorted {
        match (result.last_mut(), chain_end) {
            (Some(shift), Some(end)) if activity.start <= end => {
                shift.activities.push(activity);
                chain_end = Some(end.max(activity.end));
            }
            _ => {
                result.push(Shift { date: local_date(activity.start, tz), activities: vec![activity] });
                chain_end = Some(activity.end);
            }
        }
    }
    result
}

fn check_contract_range(
    agent_id: &str,
    hours: f64,
    weeks: &BTreeSet<Date>,
    rules: &LabourRules,
    violations: &mut Vec<Violation>,
) {
    let limit = if hours < rules.min_contract_hours {
        rules.min_contract_hours
    } else if hours > rules.max_contract_hours {
        rules.max_contract_hours
    } else {
        return;
    };
    let Some(&date) = weeks.first() else {
        return;
    };
    violations.push(Violation {
        agent_id: agent_id.to_string(),
        date,
        rule: Rule::ContractHoursRange,
        value: hours,
        limit,
        detail: Detail::None,
    });
}

/// Compares the work of each checked week with the contract, in whole
/// minutes. Extra hours come on top of the contract and are left out.
fn check_weekly_hours(
    agent_id: &str,
    contract_hours: f64,
    agent_shifts: &[Shift<'_>],
    weeks: &BTreeSet<Date>,
    violations: &mut Vec<Violation>,
) {
    let mut seconds_per_week: BTreeMap<Date, i64> = weeks.iter().map(|&monday| (monday, 0)).collect();
    for shift in agent_shifts {
        if let Some(total) = seconds_per_week.get_mut(&monday_of(shift.date)) {
            *total += shift
                .activities
                .iter()
                .filter(|a| a.activity.is_work() && a.activity != ActivityType::ExtraHours)
                .map(|a| seconds(a))
                .sum::<i64>();
        }
    }

    let contract_minutes = (contract_hours * 60.0).round() as i64;
    for (monday, total) in seconds_per_week {
        let scheduled_minutes = (total as f64 / 60.0).round() as i64;
        if scheduled_minutes != contract_minutes {
            violations.push(Violation {
                agent_id: agent_id.to_string(),
                date: monday,
                rule: Rule::WeeklyContractHours,
                value: scheduled_minutes as f64 / 60.0,
                limit: contract_hours,
                detail: Detail::None,
            });
        }
    }
}

fn check_overlaps(sorted: &[&ScheduledActivity], tz: &TimeZone, violations: &mut Vec<Violation>) {
    for (index, first) in sorted.iter().enumerate() {
        for second in sorted[index + 1..].iter().take_while(|a| a.start < first.end) {
            let overlap_end = first.end.min(second.end);
            let overlap = overlap_end.duration_since(second.start).as_secs();
            violations.push(Violation {
                agent_id: first.agent_id.clone(),
                date: local_date(second.start, tz),
                rule: Rule::OverlappingActivities,
                value: overlap as f64 / 3600.0,
                limit: 0.0,
                detail: Detail::Overlap { first: LocalActivity::of(first, tz), second: LocalActivity::of(second, tz) },
            });
        }
    }
}

/// Finds blocks of consecutive work: work activities that touch or
/// overlap. A non-work activity or a gap ends the block.
fn check_blocks(sorted: &[&ScheduledActivity], tz: &TimeZone, rules: &LabourRules, violations: &mut Vec<Violation>) {
    let Some(first) = sorted.first() else {
        return;
    };
    let limit_seconds = (rules.max_block_hours * 3600.0).round() as i64;
    let mut flag = |start: Timestamp, end: Timestamp| {
        let length = end.duration_since(start).as_secs();
        if length > limit_seconds {
            violations.push(Violation {
                agent_id: first.agent_id.clone(),
                date: local_date(start, tz),
                rule: Rule::MaxBlockHours,
                value: length as f64 / 3600.0,
                limit: rules.max_block_hours,
                detail: Detail::Block { start: tz.to_datetime(start), end: tz.to_datetime(end) },
            });
        }
    };

    let mut block: Option<(Timestamp, Timestamp)> = None;
    for activity in sorted {
        if !activity.activity.is_work() {
            if let Some((start, end)) = block.take() {
                flag(start, end);
            }
            continue;
        }
        block = match block {
            Some((start, end)) if activity.start <= end => Some((start, end.max(activity.end))),
            Some((start, end)) => {
                flag(start, end);
                Some((activity.start, activity.end))
            }
            None => Some((activity.start, activity.end)),
        };
    }
    if let Some((start, end)) = block {
        flag(start, end);
    }
}

/// Sums the work (extra hours included) per local day, each shift counted
/// toward the day it starts.
fn check_days(agent_id: &str, agent_shifts: &[Shift<'_>], rules: &LabourRules, violations: &mut Vec<Violation>) {
    let mut seconds_per_day: BTreeMap<Date, i64> = BTreeMap::new();
    for shift in agent_shifts {
        let work: i64 = shift.activities.iter().filter(|a| a.activity.is_work()).map(|a| seconds(a)).sum();
        *seconds_per_day.entry(shift.date).or_default() += work;
    }

    let limit_seconds = (rules.max_day_hours * 3600.0).round() as i64;
    for (date, total) in seconds_per_day {
        if total > limit_seconds {
            violations.push(Violation {
                agent_id: agent_id.to_string(),
                date,
                rule: Rule::MaxDayHours,
                value: total as f64 / 3600.0,
                limit: rules.max_day_hours,
                detail: Detail::None,
            });
        }
    }
}

fn unknown_agent(agent_id: &str, sorted: &[&ScheduledActivity], tz: &TimeZone) -> Violation {
    let date = sorted.first().map_or(Date::ZERO, |a| local_date(a.start, tz));
    Violation {
        agent_id: agent_id.to_string(),
        date,
        rule: Rule::UnknownAgent,
        value: sorted.len() as f64,
        limit: 0.0,
        detail: Detail::None,
    }
}

fn seconds(activity: &ScheduledActivity) -> i64 {
    activity.end.duration_since(activity.start).as_secs()
}

pub(crate) fn local_date(instant: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(instant).date()
}

// === impl LocalActivity ===

impl LocalActivity {
    pub(crate) fn of(activity: &ScheduledActivity, tz: &TimeZone) -> LocalActivity {
        LocalActivity {
            activity: activity.activity,
            start: tz.to_datetime(activity.start),
            end: tz.to_datetime(activity.end),
        }
    }
}

/// Returns the local start of `date` in `tz` as an instant. Where midnight
/// falls in a gap, the first instant after the gap is used.
pub(crate) fn start_of_day(date: Date, tz: &TimeZone) -> Option<Timestamp> {
    let midnight = DateTime::from_parts(date, jiff::civil::Time::midnight());
    tz.to_ambiguous_timestamp(midnight).compatible().ok()
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;
    use crate::domain::Agent;
    use crate::i18n::Locale;

    fn amsterdam() -> TimeZone {
        TimeZone::get("Europe/Amsterdam").expect("bundled tzdb must contain Europe/Amsterdam")
    }

    /// Builds an activity from local wall-clock times in Amsterdam.
    fn local(agent: &str, start: &str, end: &str, activity: ActivityType) -> ScheduledActivity {
        let tz = amsterdam();
        let instant = |text: &str| {
            let datetime: DateTime = text.parse().expect("test datetime must parse");
            tz.to_ambiguous_timestamp(datetime).compatible().expect("test datetime must exist")
        };
        ScheduledActivity { agent_id: agent.into(), start: instant(start), end: instant(end), activity }
    }

    fn phone(agent: &str, start: &str, end: &str) -> ScheduledActivity {
        local(agent, start, end, ActivityType::PhoneDuty)
    }

    fn agent(id: &str, contract_hours: f64) -> Agent {
        Agent {
            id: id.into(),
            display_name: id.into(),
            team: "team-noord".into(),
            contract_hours,
            platform_ids: Vec::new(),
        }
    }

    /// Five mornings of 3 h in week 50 of 2026: 15 h.
    fn fifteen_hours(agent: &str) -> Vec<ScheduledActivity> {
        (7..=11)
            .map(|day| phone(agent, &format!("2026-12-{day:02}T09:00"), &format!("2026-12-{day:02}T12:00")))
            .collect()
    }

    fn run(agents: &[Agent], activities: &[ScheduledActivity]) -> Vec<Violation> {
        check(agents, activities, &amsterdam(), &LabourRules::default())
    }

    fn rules_of(violations: &[Violation]) -> Vec<Rule> {
        violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn valid_week_has_no_violations() {
        let violations = run(&[agent("a-1", 15.0)], &fifteen_hours("a-1"));
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn contract_above_maximum_flagged() {
        let violations = run(&[agent("a-1", 32.0)], &fifteen_hours("a-1"));
        let range = violations.iter().find(|v| v.rule == Rule::ContractHoursRange);
        assert_eq!(range.map(|v| v.limit), Some(28.0), "{violations:?}");
    }

    #[test]
    fn contract_below_minimum_flagged() {
        let violations = run(&[agent("a-1", 12.0)], &fifteen_hours("a-1"));
        assert!(rules_of(&violations).contains(&Rule::ContractHoursRange), "{violations:?}");
    }

    #[test]
    fn short_week_flagged_on_monday() {
        let mut activities = fifteen_hours("a-1");
        activities.pop();
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert_eq!(rules_of(&violations), vec![Rule::WeeklyContractHours]);
        assert_eq!(violations[0].date, date(2026, 12, 7));
        assert_eq!(violations[0].value, 12.0);
    }

    #[test]
    fn long_week_flagged() {
        let mut activities = fifteen_hours("a-1");
        activities.push(phone("a-1", "2026-12-12T09:00", "2026-12-12T10:00"));
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert_eq!(rules_of(&violations), vec![Rule::WeeklyContractHours]);
    }

    #[test]
    fn extra_hours_not_counted_in_week() {
        let mut activities = fifteen_hours("a-1");
        activities.push(local("a-1", "2026-12-12T09:00", "2026-12-12T11:00", ActivityType::ExtraHours));
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn half_hour_contract_compared_in_minutes() {
        let mut activities = fifteen_hours("a-1");
        activities.push(phone("a-1", "2026-12-12T09:00", "2026-12-12T09:30"));
        let violations = run(&[agent("a-1", 15.5)], &activities);
        assert!(violations.is_empty(), "{violations:?}");
    }

    #[test]
    fn empty_week_inside_roster_flagged() {
        // a-2 works week 50 only; a-1's activity in week 51 makes the roster
        // cover week 51 too, where a-2 has nothing.
        let mut activities = fifteen_hours("a-2");
        activities.extend(fifteen_hours("a-1"));
        activities.push(phone("a-1", "2026-12-14T09:00", "2026-12-14T12:00"));
        let violations = run(&[agent("a-1", 15.0), agent("a-2", 15.0)], &activities);
        let a2: Vec<(Rule, Date)> =
            violations.iter().filter(|v| v.agent_id == "a-2").map(|v| (v.rule, v.date)).collect();
        assert_eq!(a2, vec![(Rule::WeeklyContractHours, date(2026, 12, 14))]);
    }

    #[test]
    fn four_hour_block_flagged() {
        let activities = vec![phone("a-117", "2026-12-07T09:00", "2026-12-07T13:00")];
        let violations = check(&[agent("a-117", 15.0)], &activities, &amsterdam(), &LabourRules::default());
        let block = violations.iter().find(|v| v.rule == Rule::MaxBlockHours).expect("block violation");
        assert_eq!(
            block.text(Locale::En),
            "a-117 on Mon 2026-12-07: block 09:00–13:00 is 4.0 h, more than the 3.0 h maximum"
        );
        assert_eq!(
            block.text(Locale::Nl),
            "a-117 op ma 2026-12-07: blok 09:00–13:00 duurt 4,0 uur, meer dan het maximum van 3,0 uur"
        );
    }

    #[test]
    fn three_hour_block_allowed() {
        let activities = vec![phone("a-1", "2026-12-07T09:00", "2026-12-07T12:00")];
        let violations = run(&[agent("a-1", 3.0)], &activities);
        assert!(!rules_of(&violations).contains(&Rule::MaxBlockHours), "{violations:?}");
    }

    #[test]
    fn touching_work_merges_into_one_block() {
        let activities = vec![
            phone("a-1", "2026-12-07T09:00", "2026-12-07T11:00"),
            local("a-1", "2026-12-07T11:00", "2026-12-07T13:00", ActivityType::Training),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(rules_of(&violations).contains(&Rule::MaxBlockHours), "{violations:?}");
    }

    #[test]
    fn break_ends_block() {
        let activities = vec![
            phone("a-1", "2026-12-07T09:00", "2026-12-07T11:00"),
            local("a-1", "2026-12-07T11:00", "2026-12-07T11:15", ActivityType::Break),
            phone("a-1", "2026-12-07T11:15", "2026-12-07T13:15"),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(!rules_of(&violations).contains(&Rule::MaxBlockHours), "{violations:?}");
    }

    #[test]
    fn gap_ends_block() {
        let activities = vec![
            phone("a-1", "2026-12-07T09:00", "2026-12-07T11:00"),
            phone("a-1", "2026-12-07T11:30", "2026-12-07T13:30"),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(!rules_of(&violations).contains(&Rule::MaxBlockHours), "{violations:?}");
    }

    /// 3 h + 3 h + 1 h of work split by breaks: 7 h in one day.
    fn seven_hour_day(agent: &str, day: &str) -> Vec<ScheduledActivity> {
        vec![
            phone(agent, &format!("{day}T08:00"), &format!("{day}T11:00")),
            local(agent, &format!("{day}T11:00"), &format!("{day}T11:30"), ActivityType::Lunch),
            phone(agent, &format!("{day}T11:30"), &format!("{day}T14:30")),
            phone(agent, &format!("{day}T16:00"), &format!("{day}T17:00")),
        ]
    }

    #[test]
    fn seven_hour_day_flagged() {
        let violations = run(&[agent("a-1", 15.0)], &seven_hour_day("a-1", "2026-12-07"));
        let day = violations.iter().find(|v| v.rule == Rule::MaxDayHours).expect("day violation");
        assert_eq!((day.date, day.value), (date(2026, 12, 7), 7.0));
    }

    #[test]
    fn six_hour_day_allowed() {
        let mut activities = seven_hour_day("a-1", "2026-12-07");
        activities.pop();
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(!rules_of(&violations).contains(&Rule::MaxDayHours), "{violations:?}");
    }

    #[test]
    fn extra_hours_count_toward_day() {
        let mut activities = seven_hour_day("a-1", "2026-12-07");
        activities.pop();
        activities.push(local("a-1", "2026-12-07T16:00", "2026-12-07T17:00", ActivityType::ExtraHours));
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(rules_of(&violations).contains(&Rule::MaxDayHours), "{violations:?}");
    }

    #[test]
    fn night_shift_counts_toward_start_day() {
        let activities = vec![
            phone("a-1", "2026-12-07T20:00", "2026-12-07T23:00"),
            local("a-1", "2026-12-07T23:00", "2026-12-07T23:30", ActivityType::Break),
            phone("a-1", "2026-12-07T23:30", "2026-12-08T02:30"),
            local("a-1", "2026-12-08T02:30", "2026-12-08T03:00", ActivityType::Break),
            phone("a-1", "2026-12-08T03:00", "2026-12-08T04:00"),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        let days: Vec<(Date, f64)> =
            violations.iter().filter(|v| v.rule == Rule::MaxDayHours).map(|v| (v.date, v.value)).collect();
        assert_eq!(days, vec![(date(2026, 12, 7), 7.0)]);
    }

    #[test]
    fn spring_night_shift_is_seven_real_hours() {
        let activities = vec![phone("a-1", "2024-03-30T22:00", "2024-03-31T06:00")];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        let day = violations.iter().find(|v| v.rule == Rule::MaxDayHours).expect("day violation");
        assert_eq!((day.date, day.value), (date(2024, 3, 30), 7.0));
    }

    #[test]
    fn autumn_night_shift_is_nine_real_hours() {
        let activities = vec![phone("a-1", "2024-10-26T22:00", "2024-10-27T06:00")];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        let block = violations.iter().find(|v| v.rule == Rule::MaxBlockHours).expect("block violation");
        assert_eq!(block.value, 9.0);
    }

    #[test]
    fn overlap_flagged_with_both_activities() {
        let activities = vec![
            phone("a-1", "2026-12-07T09:00", "2026-12-07T11:00"),
            local("a-1", "2026-12-07T10:30", "2026-12-07T10:45", ActivityType::Break),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        let overlap = violations.iter().find(|v| v.rule == Rule::OverlappingActivities).expect("overlap violation");
        assert_eq!(
            overlap.text(Locale::En),
            "a-1 on Mon 2026-12-07: phone duty 09:00–11:00 overlaps break 10:30–10:45 by 0.25 h"
        );
    }

    #[test]
    fn touching_activities_do_not_overlap() {
        let activities = vec![
            phone("a-1", "2026-12-07T09:00", "2026-12-07T10:00"),
            local("a-1", "2026-12-07T10:00", "2026-12-07T10:15", ActivityType::Break),
        ];
        let violations = run(&[agent("a-1", 15.0)], &activities);
        assert!(!rules_of(&violations).contains(&Rule::OverlappingActivities), "{violations:?}");
    }

    #[test]
    fn unknown_agent_flagged_once() {
        let activities = fifteen_hours("a-404");
        let violations = run(&[agent("a-1", 15.0)], &activities);
        let unknown: Vec<f64> = violations.iter().filter(|v| v.rule == Rule::UnknownAgent).map(|v| v.value).collect();
        assert_eq!(unknown, vec![5.0]);
    }

    #[test]
    fn unknown_agent_text_in_dutch() {
        let activities = vec![phone("a-404", "2026-12-07T09:00", "2026-12-07T10:00")];
        let violations = run(&[], &activities);
        assert_eq!(
            violations[0].text(Locale::Nl),
            "a-404 op ma 2026-12-07: medewerker staat niet in de medewerkerslijst (1 activiteit); voeg de medewerker toe of verbeter de id"
        );
    }

    #[test]
    fn week_of_sunday_is_previous_monday() {
        assert_eq!(monday_of(date(2026, 12, 13)), date(2026, 12, 7));
    }

    #[test]
    fn week_of_monday_is_itself() {
        assert_eq!(monday_of(date(2026, 12, 7)), date(2026, 12, 7));
    }
}
