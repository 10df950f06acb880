//! The adherence rule matrix: for each scheduled activity, which state groups
//! count as in adherence, which are neutral, and how long an agent may be out
//! of adherence before an alarm.
//!
//! This module only stores and checks the matrix. The adherence engine
//! applies it.

use std::collections::BTreeSet;

use crate::domain::{ActivityType, AdherenceStatus, NotReadyReason, StateGroup};

use super::parse::{Checker, RawRule};

/// Name of the pseudo-activity for "nothing scheduled" in config files.
pub const NOTHING_SCHEDULED: &str = "none";

/// One row of the matrix. Groups in neither list are out of adherence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdherenceRule {
    /// The scheduled activity; `None` when nothing is scheduled.
    pub activity: Option<ActivityType>,
    pub in_adherence: Vec<StateGroup>,
    pub neutral: Vec<StateGroup>,
    /// Seconds out of adherence before an alarm is raised.
    pub threshold_seconds: u64,
}

/// The whole matrix: one rule per activity and one for nothing scheduled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdherenceConfig {
    pub rules: Vec<AdherenceRule>,
}

// === impl AdherenceRule ===

impl AdherenceRule {
    /// Classifies a state group under this rule: in adherence, neutral, or
    /// out of adherence.
    pub fn status(&self, group: StateGroup) -> AdherenceStatus {
        if self.in_adherence.contains(&group) {
            AdherenceStatus::InAdherence
        } else if self.neutral.contains(&group) {
            AdherenceStatus::Neutral
        } else {
            AdherenceStatus::OutOfAdherence
        }
    }

    /// Returns the activity name as config files write it.
    pub fn activity_name(&self) -> &'static str {
        self.activity.map_or(NOTHING_SCHEDULED, ActivityType::as_str)
    }
}

// === impl AdherenceConfig ===

impl AdherenceConfig {
    /// Returns the rule for a scheduled activity, or for nothing scheduled
    /// when `activity` is `None`. Validation guarantees one exists for every
    /// activity; `None` is returned only for a hand-built config without one.
    pub fn rule_for(&self, activity: Option<ActivityType>) -> Option<&AdherenceRule> {
        self.rules.iter().find(|rule| rule.activity == activity)
    }
}

impl Default for AdherenceConfig {
    fn default() -> Self {
        AdherenceConfig { rules: default_rules() }
    }
}

/// Returns the built-in matrix, used when the config has no
/// `[[adherence.rule]]` entries; config/floorwatch.toml spells out the same
/// matrix.
pub fn default_rules() -> Vec<AdherenceRule> {
    use NotReadyReason as R;
    use StateGroup as G;

    let handling_calls = [G::Available, G::Ringing, G::OnCallInbound, G::OnCallOutbound, G::Held, G::WrapUp];
    // A call that runs into a break, training or the end of the day is not
    // held against the agent.
    let finishing_call = [G::OnCallInbound, G::OnCallOutbound, G::Held, G::WrapUp];
    let every_not_ready = NotReadyReason::ALL.map(G::NotReady);

    let rule = |activity, in_adherence: &[StateGroup], neutral: &[StateGroup], threshold_seconds| AdherenceRule {
        activity,
        in_adherence: in_adherence.to_vec(),
        neutral: neutral.to_vec(),
        threshold_seconds,
    };

    let break_in = [G::NotReady(R::Break), G::NotReady(R::Lunch), G::LoggedOut];
    // A laptop that sleeps during a break loses its registration, which tells
    // nothing about adherence to the break.
    let break_neutral = [G::Ringing, G::OnCallInbound, G::OnCallOutbound, G::Held, G::WrapUp, G::Unreachable];

    let mut team_day_in = vec![G::LoggedOut];
    team_day_in.extend(every_not_ready);

    let nothing_neutral: Vec<StateGroup> = StateGroup::ALL.into_iter().filter(|g| *g != G::LoggedOut).collect();

    vec![
        rule(Some(ActivityType::PhoneDuty), &handling_calls, &[], 120),
        rule(Some(ActivityType::ExtraHours), &handling_calls, &[], 120),
        rule(Some(ActivityType::Break), &break_in, &break_neutral, 300),
        rule(Some(ActivityType::Lunch), &break_in, &break_neutral, 300),
        rule(Some(ActivityType::Training), &[G::NotReady(R::Training), G::NotReady(R::Other)], &finishing_call, 300),
        rule(Some(ActivityType::Meeting), &[G::NotReady(R::Meeting), G::NotReady(R::Other)], &finishing_call, 300),
        rule(Some(ActivityType::Coaching), &[G::NotReady(R::Coaching), G::NotReady(R::Other)], &finishing_call, 300),
        rule(Some(ActivityType::TeamDay), &team_day_in, &[G::Unreachable], 600),
        rule(Some(ActivityType::SentHome), &[G::LoggedOut, G::Unreachable], &finishing_call, 300),
        rule(None, &[G::LoggedOut], &nothing_neutral, 120),
    ]
}

/// Checks the configured rules and converts them; returns the built-in
/// matrix when the section is absent.
pub(crate) fn build_rules(raw: Option<Vec<RawRule>>, default_threshold: u64, checker: &mut Checker) -> AdherenceConfig {
    let Some(raw_rules) = raw else {
        return AdherenceConfig::default();
    };

    let mut rules = Vec::new();
    let mut seen: Vec<Option<ActivityType>> = Vec::new();

    for (index, raw) in raw_rules.into_iter().enumerate() {
        let key = format!("adherence.rule[{index}]");
        let Some(activity) = parse_activity(raw.activity.as_deref(), &key, checker) else {
            continue;
        };

        if seen.contains(&activity) {
            let name = activity.map_or(NOTHING_SCHEDULED, ActivityType::as_str);
            checker.problem(
                &format!("{key}.activity"),
                format!("a second rule for activity \"{name}\""),
                "keep one [[adherence.rule]] per activity and merge the lists",
            );
            continue;
        }
        seen.push(activity);

        let in_adherence = parse_groups(&raw.in_adherence, &format!("{key}.in"), checker);
        let neutral = parse_groups(&raw.neutral, &format!("{key}.neutral"), checker);
        for (position, group) in neutral.iter().enumerate() {
            if in_adherence.contains(group) {
                checker.problem(
                    &format!("{key}.neutral[{position}]"),
                    format!("state group \"{group}\" is listed both in \"in\" and in \"neutral\""),
                    "remove it from one of the two lists",
                );
            }
        }

        rules.push(AdherenceRule {
            activity,
            in_adherence,
            neutral,
            threshold_seconds: raw.threshold_seconds.unwrap_or(default_threshold),
        });
    }

    let missing: Vec<&str> = ActivityType::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .filter(|activity| !seen.contains(activity))
        .map(|activity| activity.map_or(NOTHING_SCHEDULED, ActivityType::as_str))
        .collect();
    if !missing.is_empty() {
        let quoted: Vec<String> = missing.iter().map(|name| format!("\"{name}\"")).collect();
        checker.problem(
            "adherence.rule",
            format!("no rule for activity {}", quoted.join(", ")),
            format!(
                "add an [[adherence.rule]] with activity = {} (and so on for each), or remove every \
                 [[adherence.rule]] to use the built-in matrix",
                quoted[0]
            ),
        );
    }

    AdherenceConfig { rules }
}

/// Returns `Some(activity)` for a valid name (`Some(None)` for "none"), or
/// `None` after reporting a problem.
fn parse_activity(name: Option<&str>, key: &str, checker: &mut Checker) -> Option<Option<ActivityType>> {
    let Some(name) = name else {
        checker.problem(
            key,
            "missing key \"activity\"",
            format!("add activity = \"phone_duty\" (or another activity, or \"{NOTHING_SCHEDULED}\")"),
        );
        return None;
    };

    if name.trim().eq_ignore_ascii_case(NOTHING_SCHEDULED) {
        return Some(None);
    }
    match ActivityType::parse(name) {
        Some(activity) => Some(Some(activity)),
        None => {
            checker.problem(
                &format!("{key}.activity"),
                format!("unknown activity \"{name}\""),
                format!("use one of {}, or \"{NOTHING_SCHEDULED}\"", activity_names()),
            );
            None
        }
    }
}

/// Parses a list of group names, reporting unknown and repeated names.
fn parse_groups(names: &[String], key: &str, checker: &mut Checker) -> Vec<StateGroup> {
    let mut groups = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, name) in names.iter().enumerate() {
        let entry_key = format!("{key}[{index}]");
        let Some(group) = StateGroup::parse(name.trim()) else {
            checker.problem(
                &entry_key,
                format!("unknown state group \"{name}\""),
                format!("use one of {}", state_group_names()),
            );
            continue;
        };
        if !seen.insert(group) {
            checker.problem(
                &entry_key,
                format!("state group \"{group}\" is listed twice"),
                "remove the repeated entry",
            );
            continue;
        }
        groups.push(group);
    }
    groups
}

/// Returns every state group name, comma-separated, for fix texts.
pub(crate) fn state_group_names() -> String {
    StateGroup::ALL.map(StateGroup::as_str).join(", ")
}

fn activity_names() -> String {
    ActivityType::ALL.map(ActivityType::as_str).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rules_cover_every_activity_once() {
        let rules = default_rules();
        for activity in ActivityType::ALL.into_iter().map(Some).chain([None]) {
            let count = rules.iter().filter(|r| r.activity == activity).count();
            assert_eq!(count, 1, "{activity:?}");
        }
    }

    #[test]
    fn default_rules_keep_in_and_neutral_apart() {
        for rule in default_rules() {
            for group in &rule.neutral {
                assert!(!rule.in_adherence.contains(group), "{} {group}", rule.activity_name());
            }
        }
    }

    #[test]
    fn phone_duty_break_is_out_of_adherence() {
        let config = AdherenceConfig::default();
        let rule = config.rule_for(Some(ActivityType::PhoneDuty)).expect("default has phone duty");
        let status = rule.status(StateGroup::NotReady(NotReadyReason::Break));
        assert_eq!(status, AdherenceStatus::OutOfAdherence);
    }

    #[test]
    fn call_running_into_lunch_is_neutral() {
        let config = AdherenceConfig::default();
        let rule = config.rule_for(Some(ActivityType::Lunch)).expect("default has lunch");
        assert_eq!(rule.status(StateGroup::OnCallInbound), AdherenceStatus::Neutral);
        assert_eq!(rule.status(StateGroup::Available), AdherenceStatus::OutOfAdherence);
    }
}
