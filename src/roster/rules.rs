//! Labour rules for self-rostering agents, and the check of a roster
//! against them.
//!
//! The check is pure: it takes the activities, the agent directory, the site
//! time zone and the rule numbers, and returns every [`Violation`]. Days are
//! local days in the site zone; a shift (a chain of touching activities)
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

/// What the check knows about an agent.
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
    by_agent(activities)
        .values()
        .flat_map(|list| shifts(list, tz))
        .map(|shift| monday_of(shift.date))
        .collect()
}

/// Returns the Monday of the ISO week that contains `date`.
pub fn monday_of(date: Date) -> Date {
    let back = i64::from(date.weekday().to_monday_zero_offset());
    date.checked_sub(Span::new().days(back)).unwrap_or(date)
}

/// The check behind [`check`], with the agent's status supplied by the
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

    violations.sort_by(|a, b| {
        (&a.agent_id, a.date, a.rule).cmp(&(&b.agent_id, b.date, b.rule))
    });
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
                result.push(Shift {
                    date: local_date(activity.start, tz),
                    activities: vec![activity],
                });
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
                detail: Detail::Overlap {
                    first: LocalActivity::of(first, tz),
                    second: LocalActivity::of(second, tz),
                },
            });
        }
    }
}

/// Finds blocks of consecutive work: work activities that touch or
/// overlap. A non-work activity or a gap ends the block.
fn check_blocks(
    sorted: &[&ScheduledActivity],
    tz: &TimeZone,
    rules: &LabourRules,
    violations: &mut Vec<Violation>,
) {
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
fn check_days(
    agent_id: &str,
    agent_shifts: &[Shift<'_>],
    rules: &LabourRules,
    violations: &mut Vec<Violation>,
) {
    let mut seconds_per_day: BTreeMap<Date, i64> = BTreeMap::new();
    for shift in agent_shifts {
        let work: i64 =
            shift.activities.iter().filter(|a| a.activity.is_work()).map(|a| seconds(a)).sum();
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
